//! The step store as an [`EventSource`]: ready steps claimed from SQLite or PostgreSQL, their results
//! persisted in batches.
//!
//! The pump never waits on the database. A `tasker-store` thread owns a current-thread tokio runtime and
//! the [`Store`]; the pump talks to it through channels:
//! - `claim(max)` hands out steps the thread already claimed and, when it has fewer than `max`, asks for
//!   `max - n` more (one request open at a time). The thread claims only that many (the room in the events
//!   ring), and when none is ready it keeps the request and polls again after an idle delay (2 ms doubling
//!   to 50 ms; on PostgreSQL, LISTEN/NOTIFY wakes it and the slow poll backs off to 1 s), or at once when
//!   its own completions made children ready.
//! - Results are buffered and persisted with `complete_batch` when 256 are waiting or the oldest has
//!   waited 20 ms. A failed write keeps them and retries with backoff: nothing is dropped while the worker
//!   lives.
//! - Claims carry a deadline of the completion timeout plus a margin. Reading an event extends its claim;
//!   every held claim is renewed each third of the visibility, so a step waiting unread in the ring is
//!   never claimed by another worker while this one lives, and comes back to others once it dies.
//! - On drop: the thread persists what is buffered (bounded by [`SHUTDOWN_FLUSH`]), then releases every
//!   claim it still holds (never read, or read and not answered) without using an attempt.

use crate::event_id::Uuid;
use crate::refusals::{CompletionRefusal, RefusalBatch, RefusalKind, RefusalLog};
use crate::result::StepResult;
use crate::source::{EventPayload, EventSource, SourcedEvent};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tasker_store::{CompletionOutcome, Store, StoreOptions, StoreStatus};
use tokio::sync::mpsc;

/// Completions per `complete_batch` call, and the buffer size that triggers a write at once.
const FLUSH_BATCH: usize = 256;
/// Longest a result waits in the buffer before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Longest a read event waits for its claim to be extended. Claims last the completion timeout plus a margin
/// (40 s by default) and are renewed every third of that, so extensions are batched, not written per read.
const EXTEND_INTERVAL: Duration = Duration::from_secs(1);
/// Extensions waiting that trigger a write at once.
const EXTEND_BATCH: usize = 4096;
/// First delay before polling again when nothing was ready; doubles per empty claim.
const IDLE_CLAIM_MIN: Duration = Duration::from_millis(2);
/// Longest delay between claims when nothing is ready and nothing notifies us (SQLite).
const IDLE_CLAIM_MAX: Duration = Duration::from_millis(50);
/// Longest delay between claims when nothing is ready on PostgreSQL with LISTEN: notifications wake the
/// worker, and this slow poll covers the rest (a retry whose backoff ended, an expired claim, a notification
/// lost on reconnect).
const IDLE_CLAIM_MAX_LISTENING: Duration = Duration::from_secs(1);
/// First delay after a failed database call; doubles per failure.
const ERROR_BACKOFF_MIN: Duration = Duration::from_millis(100);
/// Longest delay after failed database calls.
const ERROR_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a stopping source keeps trying to persist buffered results and release its claims.
pub const SHUTDOWN_FLUSH: Duration = Duration::from_secs(10);

/// How a [`StoreSource`] connects and claims.
#[derive(Clone, Debug)]
pub struct StoreSourceSettings {
    /// The store URL (see [`tasker_store::resolve_url`]).
    pub url: String,
    /// A claim's deadline: the completion timeout plus a margin.
    pub visibility: Duration,
    /// Bound on connecting at bootstrap.
    pub connect_timeout: Duration,
    /// How often the step counts for `metrics` are refreshed (`None`: never).
    pub status_interval: Option<Duration>,
}

/// What the pump sends the store thread.
enum Command {
    /// Claim up to this many more steps.
    Claim(usize),
    /// Persist this result of a claim.
    Complete(Uuid, Vec<u8>),
    /// These events were read: extend their claims.
    Read(Vec<Uuid>),
    /// Give this claim back.
    Release(Uuid),
    /// The worker is draining: withdraw the open claim request and never claim again.
    StopClaiming,
}

/// Claim-to-persisted latency percentiles, in milliseconds.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct LatencySummary {
    /// Results persisted (samples).
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// Where the store thread's time went: milliseconds spent waiting on each kind of database call, and how
/// many calls (the per-step cost of the store is these divided by the steps).
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StoreTime {
    /// `claim` calls that returned steps, and their time.
    pub claims: u64,
    /// Milliseconds in those.
    pub claim_ms: f64,
    /// `claim` calls that found nothing ready, and their time.
    pub empty_claims: u64,
    /// Milliseconds in those.
    pub empty_claim_ms: f64,
    /// `complete_batch` calls.
    pub completes: u64,
    /// Milliseconds in them.
    pub complete_ms: f64,
    /// `extend` calls (reads and renewals).
    pub extends: u64,
    /// Milliseconds in them.
    pub extend_ms: f64,
    /// Step-count refreshes for `steps`.
    pub status_ms: f64,
}

/// Step counts of the whole store (every worker's), as of `age_ms` ago.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StepCounts {
    /// Waiting for a parent.
    pub pending: u64,
    /// Claimable (or waiting out a retry backoff).
    pub ready: u64,
    /// Claimed by some worker.
    pub claimed: u64,
    /// Complete.
    pub complete: u64,
    /// In error (no attempts left, or a permanent failure).
    pub error: u64,
    /// Age of these counts.
    pub age_ms: u64,
}

/// The `source` section of the worker's metrics for a store source.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct StoreMetrics {
    /// `sqlite` or `postgres`.
    pub backend: &'static str,
    /// The store URL, password redacted.
    pub database: String,
    /// Steps claimed by this worker.
    pub claimed: u64,
    /// Successes persisted.
    pub completed: u64,
    /// Retryable failures scheduled for another attempt.
    pub retried: u64,
    /// Failures persisted as `error` (permanent, or no attempts left).
    pub failed: u64,
    /// Results refused by the store because the claim had expired and moved on (the newer claim won).
    pub refused: u64,
    /// Results the store could not read (no boolean `success`).
    pub invalid: u64,
    /// Claims given back unread.
    pub released: u64,
    /// Claims this worker holds (claimed, result not persisted yet).
    pub held: u64,
    /// Results waiting to be written.
    pub buffered: u64,
    /// Failed database calls (each retried).
    pub store_errors: u64,
    /// The last database error, if any.
    pub last_error: Option<String>,
    /// Claim to persisted result, for results persisted by this worker.
    pub latency: LatencySummary,
    /// Time spent in database calls, by kind.
    pub time: StoreTime,
    /// The store's step counts, when refreshed at least once.
    pub steps: Option<StepCounts>,
}

/// State the store thread publishes for `metrics`.
struct Published {
    metrics: StoreMetrics,
    /// Results the store refused, with their event ids, until the worker drains them.
    refusals: RefusalLog,
    latency_us: Histogram<u64>,
    steps_at: Option<(StoreStatus, Instant)>,
}

/// The step store as a source of step events; see the module docs.
pub struct StoreSource {
    commands: mpsc::UnboundedSender<Command>,
    claimed: std_mpsc::Receiver<Vec<SourcedEvent>>,
    /// Claimed steps handed over by the thread, not yet taken by the pump.
    ready: VecDeque<SourcedEvent>,
    claim_open: bool,
    /// Whether claimed batches may still be handed to the pump; see [`ClaimGate`].
    gate: ClaimGate,
    published: Arc<Mutex<Published>>,
    thread: Option<JoinHandle<()>>,
}

/// Whether the store thread may still hand claimed batches over (false once the worker drains). The thread
/// checks it and sends a batch under the same lock the pump holds to close it and empty the channel, so a
/// batch is either taken back by the pump or never sent (the thread then releases it itself).
#[derive(Clone)]
struct ClaimGate(Arc<Mutex<bool>>);

impl ClaimGate {
    fn open() -> Self {
        Self(Arc::new(Mutex::new(true)))
    }
}

/// Why [`StoreSource::connect`] failed. [`source`](std::error::Error::source) returns the wrapped error;
/// `Display` keeps the one-line text of each failure.
#[derive(Debug)]
pub enum StoreSourceError {
    /// The store thread's tokio runtime could not start.
    Runtime(std::io::Error),
    /// Connecting to the store or running its migrations failed (the URL in it is redacted).
    Connect(tasker_store::ConnectError),
    /// The store thread could not be spawned.
    Spawn(std::io::Error),
    /// The store thread ended before saying whether it connected (it panicked; logged there).
    ThreadExited,
}

impl std::fmt::Display for StoreSourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Runtime(e) => write!(f, "cannot start the store runtime: {e}"),
            Self::Connect(e) => write!(f, "{e}"),
            Self::Spawn(e) => write!(f, "cannot start the store thread: {e}"),
            Self::ThreadExited => write!(f, "the store thread exited during connect"),
        }
    }
}

impl std::error::Error for StoreSourceError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Runtime(e) | Self::Spawn(e) => Some(e),
            Self::Connect(e) => Some(e),
            Self::ThreadExited => None,
        }
    }
}

impl StoreSource {
    /// Connects (retrying with backoff up to `settings.connect_timeout`, then running the migrations) and
    /// starts the store thread. Errors name the store, password redacted.
    pub fn connect(settings: StoreSourceSettings) -> Result<Self, StoreSourceError> {
        let (command_tx, command_rx) = mpsc::unbounded_channel();
        let (claimed_tx, claimed_rx) = std_mpsc::channel();
        let (ready_tx, ready_rx) = std_mpsc::channel::<Result<(), StoreSourceError>>();
        let published = Arc::new(Mutex::new(Published {
            metrics: StoreMetrics {
                database: tasker_store::redact(&settings.url),
                ..StoreMetrics::default()
            },
            refusals: RefusalLog::default(),
            // Constant bounds that satisfy `new_with_bounds` (low >= 1, high >= 2 * low, sigfig <= 5).
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds"),
            steps_at: None,
        }));
        let thread_published = Arc::clone(&published);
        let gate = ClaimGate::open();
        let thread_gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name("tasker-store".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        let _ = ready_tx.send(Err(StoreSourceError::Runtime(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    let options = StoreOptions {
                        connect_timeout: settings.connect_timeout,
                        ..StoreOptions::default()
                    };
                    let store = match Store::connect_with(&settings.url, options).await {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(StoreSourceError::Connect(e)));
                            return;
                        }
                    };
                    lock(&thread_published).metrics.backend = if store.is_postgres() { "postgres" } else { "sqlite" };
                    let _ = ready_tx.send(Ok(()));
                    Driver::new(store, settings, command_rx, claimed_tx, thread_gate, thread_published)
                        .run()
                        .await;
                });
            })
            .map_err(StoreSourceError::Spawn)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                commands: command_tx,
                claimed: claimed_rx,
                ready: VecDeque::new(),
                claim_open: false,
                gate,
                published,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StoreSourceError::ThreadExited)
            }
        }
    }

    fn send(&self, command: Command) {
        // The thread lives until this source is dropped; a send fails only if it panicked (logged there).
        let _ = self.commands.send(command);
    }
}

impl EventSource for StoreSource {
    fn claim(&mut self, max: usize, out: &mut Vec<SourcedEvent>) -> usize {
        if !*lock(&self.gate.0) {
            return 0;
        }
        while let Ok(batch) = self.claimed.try_recv() {
            self.ready.extend(batch);
            self.claim_open = false;
        }
        let n = max.min(self.ready.len());
        out.extend(self.ready.drain(..n));
        if n < max && !self.claim_open {
            self.send(Command::Claim(max - n));
            self.claim_open = true;
        }
        n
    }

    fn complete(&mut self, event_id: Uuid, result: &StepResult<'_>) {
        self.send(Command::Complete(event_id, result.json.to_vec()));
    }

    fn is_exhausted(&self) -> bool {
        false
    }

    fn read(&mut self, event_ids: &[Uuid]) {
        self.send(Command::Read(event_ids.to_vec()));
    }

    fn release(&mut self, event_id: Uuid, _step_uuid: Uuid) {
        self.send(Command::Release(event_id));
    }

    fn stop_claiming(&mut self) {
        {
            let mut open = lock(&self.gate.0);
            *open = false;
            while let Ok(batch) = self.claimed.try_recv() {
                self.ready.extend(batch);
            }
        }
        self.send(Command::StopClaiming);
        for event in std::mem::take(&mut self.ready) {
            self.send(Command::Release(event.event_id));
        }
        self.claim_open = false;
    }

    fn close(&mut self) {
        // Closing the channel ends the thread's loop; steps handed over but never taken are still held by
        // the thread, which releases them on its way out.
        let (closed_tx, _) = mpsc::unbounded_channel();
        drop(std::mem::replace(&mut self.commands, closed_tx));
        self.ready.clear();
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() {
                tracing::error!("the store thread panicked");
            }
        }
    }

    fn metrics(&self) -> Option<serde_json::Value> {
        let p = lock(&self.published);
        let mut m = p.metrics.clone();
        let h = &p.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        m.latency = LatencySummary {
            count: h.len(),
            p50_ms: ms(h.value_at_quantile(0.5)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            max_ms: ms(h.max()),
        };
        m.steps = p.steps_at.as_ref().map(|(s, at)| StepCounts {
            pending: s.pending,
            ready: s.ready,
            claimed: s.claimed,
            complete: s.complete,
            error: s.error,
            age_ms: at.elapsed().as_millis() as u64,
        });
        drop(p);
        serde_json::to_value(m).ok()
    }

    fn drain_refusals(&mut self, batch: &mut RefusalBatch) {
        lock(&self.published).refusals.drain_into(batch);
    }
}

impl Drop for StoreSource {
    fn drop(&mut self) {
        self.close();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn to_store_uuid(id: Uuid) -> tasker_store::Uuid {
    tasker_store::Uuid::from_u128(id.0)
}

/// Exponential backoff after database failures.
struct ErrorBackoff {
    next: Duration,
    until: Option<Instant>,
}

impl ErrorBackoff {
    fn new() -> Self {
        Self {
            next: ERROR_BACKOFF_MIN,
            until: None,
        }
    }
    fn ready(&self, now: Instant) -> bool {
        self.until.is_none_or(|u| now >= u)
    }
    fn failed(&mut self, now: Instant) {
        self.until = Some(now + self.next);
        self.next = (self.next * 2).min(ERROR_BACKOFF_MAX);
    }
    fn succeeded(&mut self) {
        self.next = ERROR_BACKOFF_MIN;
        self.until = None;
    }
}

/// The store thread's state.
struct Driver {
    store: Store,
    settings: StoreSourceSettings,
    commands: mpsc::UnboundedReceiver<Command>,
    claimed_tx: std_mpsc::Sender<Vec<SourcedEvent>>,
    gate: ClaimGate,
    /// Set by [`Command::StopClaiming`]: claim requests are ignored from then on.
    claiming_stopped: bool,
    published: Arc<Mutex<Published>>,
    /// Claims held: token -> when claimed.
    held: HashMap<Uuid, Instant>,
    /// Results waiting to be persisted, with when the oldest arrived.
    buffer: Vec<(tasker_store::Uuid, Vec<u8>)>,
    buffered_since: Option<Instant>,
    /// Read events whose claims are to be extended, with when the oldest arrived.
    to_extend: Vec<tasker_store::Uuid>,
    extend_since: Option<Instant>,
    /// Claims to give back.
    to_release: Vec<tasker_store::Uuid>,
    /// Steps asked for by the pump and not yet delivered.
    want: usize,
    next_claim: Instant,
    idle_delay: Duration,
    next_renewal: Instant,
    next_status: Option<Instant>,
    write_backoff: ErrorBackoff,
    claim_backoff: ErrorBackoff,
    listener: Option<tasker_store::ReadyListener>,
}

impl Driver {
    fn new(
        store: Store,
        settings: StoreSourceSettings,
        commands: mpsc::UnboundedReceiver<Command>,
        claimed_tx: std_mpsc::Sender<Vec<SourcedEvent>>,
        gate: ClaimGate,
        published: Arc<Mutex<Published>>,
    ) -> Self {
        let now = Instant::now();
        Self {
            store,
            next_renewal: now + settings.visibility / 3,
            next_status: settings.status_interval.map(|_| now),
            settings,
            commands,
            claimed_tx,
            gate,
            claiming_stopped: false,
            published,
            held: HashMap::new(),
            buffer: Vec::with_capacity(FLUSH_BATCH),
            buffered_since: None,
            to_extend: Vec::new(),
            extend_since: None,
            to_release: Vec::new(),
            want: 0,
            next_claim: now,
            idle_delay: IDLE_CLAIM_MIN,
            write_backoff: ErrorBackoff::new(),
            claim_backoff: ErrorBackoff::new(),
            listener: None,
        }
    }

    async fn run(mut self) {
        if self.store.is_postgres() {
            match self.store.listen().await {
                Ok(l) => self.listener = Some(l),
                Err(e) => tracing::warn!(error = %e, "LISTEN failed; polling the store instead"),
            }
        }
        loop {
            let wake_at = self.next_wake(Instant::now());
            let notified = async {
                match self.listener.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                command = self.commands.recv() => match command {
                    Some(c) => {
                        self.apply(c);
                        while let Ok(c) = self.commands.try_recv() {
                            self.apply(c);
                        }
                    }
                    None => break,
                },
                woke = notified => match woke {
                    Ok(()) => self.claim_soon(),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection lost; polling the store instead");
                        self.listener = None;
                    }
                },
                _ = tokio::time::sleep_until(wake_at.into()) => {}
            }
            self.work(Instant::now()).await;
        }
        self.shut_down().await;
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Claim(n) if !self.claiming_stopped => self.want = n,
            Command::Claim(_) => {}
            Command::StopClaiming => {
                self.claiming_stopped = true;
                self.want = 0;
            }
            Command::Complete(id, json) => {
                self.buffered_since.get_or_insert_with(Instant::now);
                self.buffer.push((to_store_uuid(id), json));
            }
            Command::Read(ids) => {
                self.extend_since.get_or_insert_with(Instant::now);
                self.to_extend.extend(ids.into_iter().map(to_store_uuid));
            }
            Command::Release(id) => self.to_release.push(to_store_uuid(id)),
        }
    }

    fn claim_soon(&mut self) {
        self.idle_delay = IDLE_CLAIM_MIN;
        self.next_claim = Instant::now();
    }

    /// When the loop must run again without a command.
    fn next_wake(&self, now: Instant) -> Instant {
        let mut at = now + Duration::from_secs(1);
        if let Some(since) = self.buffered_since {
            at = at.min((since + FLUSH_INTERVAL).max(self.write_backoff.until.unwrap_or(now)));
        }
        if let Some(since) = self.extend_since {
            at = at.min(since + EXTEND_INTERVAL);
        }
        if !self.to_release.is_empty() {
            at = at.min(now + FLUSH_INTERVAL);
        }
        if self.want > 0 {
            at = at.min(self.next_claim.max(self.claim_backoff.until.unwrap_or(now)));
        }
        at = at.min(self.next_renewal);
        if let Some(s) = self.next_status {
            at = at.min(s);
        }
        at
    }

    async fn work(&mut self, now: Instant) {
        let flush_due = self.buffer.len() >= FLUSH_BATCH
            || self.buffered_since.is_some_and(|t| now >= t + FLUSH_INTERVAL)
            || self.to_extend.len() >= EXTEND_BATCH
            || self.extend_since.is_some_and(|t| now >= t + EXTEND_INTERVAL)
            || !self.to_release.is_empty();
        if flush_due && self.write_backoff.ready(now) {
            self.write_all().await;
        }
        if now >= self.next_renewal {
            self.renew().await;
        }
        if self.want > 0 && now >= self.next_claim && self.claim_backoff.ready(now) {
            self.claim().await;
        }
        if self.next_status.is_some_and(|s| now >= s) {
            self.refresh_status().await;
        }
        self.publish_gauges();
    }

    fn record_error(&mut self, what: &str, error: &dyn std::fmt::Display) {
        tracing::error!(error = %error, "{what} failed; retrying with backoff");
        let mut p = lock(&self.published);
        p.metrics.store_errors += 1;
        p.metrics.last_error = Some(format!("{what}: {error}"));
    }

    /// Adds one call that started at `started` to the counter and milliseconds `pick` selects.
    fn timed(&self, started: Instant, pick: impl FnOnce(&mut StoreTime) -> (&mut u64, &mut f64)) {
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        let mut p = lock(&self.published);
        let (calls, total) = pick(&mut p.metrics.time);
        *calls += 1;
        *total += ms;
    }

    fn publish_gauges(&self) {
        let mut p = lock(&self.published);
        p.metrics.held = self.held.len() as u64;
        p.metrics.buffered = self.buffer.len() as u64;
    }

    /// Persists buffered results, extends read claims and releases given-back claims. Stops at the first
    /// failure (kept for the next try).
    async fn write_all(&mut self) {
        let now = Instant::now();
        while !self.buffer.is_empty() {
            let n = self.buffer.len().min(FLUSH_BATCH);
            let started = Instant::now();
            let outcome = self.store.complete_batch(&self.buffer[..n]).await;
            self.timed(started, |t| (&mut t.completes, &mut t.complete_ms));
            match outcome {
                Ok(outcomes) => {
                    let persisted_at = Instant::now();
                    let items: Vec<_> = self.buffer.drain(..n).collect();
                    self.account(&items, &outcomes, persisted_at);
                }
                Err(e) => {
                    self.record_error("persisting results", &e);
                    self.write_backoff.failed(now);
                    return;
                }
            }
        }
        self.buffered_since = None;
        if !self.to_extend.is_empty() {
            // Only claims still held: a result already persisted needs no extension.
            self.to_extend.retain(|t| self.held.contains_key(&Uuid(t.as_u128())));
            let started = Instant::now();
            let outcome = self.store.extend(&self.to_extend, self.settings.visibility).await;
            self.timed(started, |t| (&mut t.extends, &mut t.extend_ms));
            match outcome {
                Ok(_) => {
                    self.to_extend.clear();
                    self.extend_since = None;
                }
                Err(e) => {
                    self.record_error("extending claims", &e);
                    self.write_backoff.failed(now);
                    return;
                }
            }
        }
        if !self.to_release.is_empty() {
            match self.store.release(&self.to_release).await {
                Ok(n) => {
                    for t in self.to_release.drain(..) {
                        self.held.remove(&Uuid(t.as_u128()));
                    }
                    lock(&self.published).metrics.released += n;
                }
                Err(e) => {
                    self.record_error("releasing claims", &e);
                    self.write_backoff.failed(now);
                    return;
                }
            }
        }
        self.write_backoff.succeeded();
    }

    /// Counts outcomes, records latencies, and claims again at once when children became ready.
    fn account(
        &mut self,
        items: &[(tasker_store::Uuid, Vec<u8>)],
        outcomes: &[CompletionOutcome],
        persisted_at: Instant,
    ) {
        let mut children_ready = false;
        let mut p = lock(&self.published);
        for ((token, _), outcome) in items.iter().zip(outcomes) {
            let claimed_at = self.held.remove(&Uuid(token.as_u128()));
            let m = &mut p.metrics;
            match outcome {
                CompletionOutcome::Completed { ready_children } => {
                    m.completed += 1;
                    children_ready |= *ready_children > 0;
                }
                CompletionOutcome::RetryScheduled { .. } => m.retried += 1,
                CompletionOutcome::Failed { .. } => m.failed += 1,
                CompletionOutcome::Refused => {
                    m.refused += 1;
                    tracing::warn!(event_id = %token, "result refused: the claim expired and the step moved on");
                    p.refusals.push(CompletionRefusal::now(
                        token.to_string(),
                        RefusalKind::ClaimLost,
                        "the claim expired and the step moved on to another worker; the result was not persisted",
                    ));
                    continue;
                }
                CompletionOutcome::Invalid(why) => {
                    m.invalid += 1;
                    tracing::warn!(event_id = %token, why, "result refused by the store");
                    p.refusals.push(CompletionRefusal::now(
                        token.to_string(),
                        RefusalKind::StoreInvalid,
                        format!("the store refused the result: {why}"),
                    ));
                    continue;
                }
            }
            if let Some(at) = claimed_at {
                let us = persisted_at.saturating_duration_since(at).as_micros() as u64;
                p.latency_us.saturating_record(us.max(1));
            }
        }
        drop(p);
        if children_ready {
            self.claim_soon();
        }
    }

    /// Pushes the deadline of every held claim (unread ones waiting in a full ring included).
    async fn renew(&mut self) {
        let now = Instant::now();
        let tokens: Vec<_> = self.held.keys().map(|id| to_store_uuid(*id)).collect();
        let outcome = self.store.extend(&tokens, self.settings.visibility).await;
        self.timed(now, |t| (&mut t.extends, &mut t.extend_ms));
        match outcome {
            Ok(_) => self.next_renewal = now + self.settings.visibility / 3,
            Err(e) => {
                self.record_error("renewing claims", &e);
                self.next_renewal = now + ERROR_BACKOFF_MIN;
            }
        }
    }

    async fn claim(&mut self) {
        let now = Instant::now();
        let outcome = self.store.claim(self.want, self.settings.visibility).await;
        match &outcome {
            Ok(steps) if steps.is_empty() => self.timed(now, |t| (&mut t.empty_claims, &mut t.empty_claim_ms)),
            _ => self.timed(now, |t| (&mut t.claims, &mut t.claim_ms)),
        }
        match outcome {
            Ok(steps) if steps.is_empty() => {
                self.claim_backoff.succeeded();
                self.next_claim = now + self.idle_delay;
                let max = if self.listener.is_some() {
                    IDLE_CLAIM_MAX_LISTENING
                } else {
                    IDLE_CLAIM_MAX
                };
                self.idle_delay = (self.idle_delay * 2).min(max);
            }
            Ok(steps) => {
                self.claim_backoff.succeeded();
                let claimed_at = Instant::now();
                let mut events = Vec::with_capacity(steps.len());
                for s in steps {
                    let event_id = Uuid(s.claim_token.as_u128());
                    self.held.insert(event_id, claimed_at);
                    events.push(SourcedEvent {
                        event_id,
                        step_uuid: Uuid(s.step_uuid.as_u128()),
                        payload: EventPayload::Text(s.event),
                    });
                }
                lock(&self.published).metrics.claimed += events.len() as u64;
                self.want = 0;
                self.idle_delay = IDLE_CLAIM_MIN;
                let gate = Arc::clone(&self.gate.0);
                let open = lock(&gate);
                if *open {
                    // The pump lives as long as this thread; a failed send means it is gone, and the
                    // claims are released at shutdown.
                    let _ = self.claimed_tx.send(events);
                } else {
                    // Claimed while the worker began draining: never dispatched, so given back at once.
                    self.to_release.extend(events.iter().map(|e| to_store_uuid(e.event_id)));
                }
            }
            Err(e) => {
                self.record_error("claiming steps", &e);
                self.claim_backoff.failed(now);
            }
        }
    }

    async fn refresh_status(&mut self) {
        let now = Instant::now();
        let interval = self.settings.status_interval.unwrap_or(Duration::from_secs(1));
        self.next_status = Some(now + interval);
        let outcome = self.store.step_counts().await;
        lock(&self.published).metrics.time.status_ms += now.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(s) => lock(&self.published).steps_at = Some((s, Instant::now())),
            Err(e) => self.record_error("counting steps", &e),
        }
    }

    /// Persists what is buffered and releases every claim still held, retrying failures until
    /// [`SHUTDOWN_FLUSH`] has passed.
    async fn shut_down(&mut self) {
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        loop {
            let answered: std::collections::HashSet<_> = self.buffer.iter().map(|(t, _)| *t).collect();
            self.to_release.extend(
                self.held
                    .keys()
                    .map(|id| to_store_uuid(*id))
                    .filter(|t| !answered.contains(t)),
            );
            self.to_release.sort_unstable();
            self.to_release.dedup();
            self.to_extend.clear();
            self.write_backoff.succeeded();
            self.write_all().await;
            if self.buffer.is_empty() && self.to_release.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                tracing::error!(
                    results = self.buffer.len(),
                    claims = self.to_release.len(),
                    "store unreachable at shutdown: results not persisted; their steps run again after the claim deadline"
                );
                break;
            }
            tokio::time::sleep(ERROR_BACKOFF_MIN).await;
        }
        self.publish_gauges();
        self.store.close().await;
    }
}
