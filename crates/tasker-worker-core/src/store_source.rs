//! The step store as an [`EventSource`]: ready steps claimed from SQLite or PostgreSQL, their results
//! persisted in batches.
//!
//! The pump never waits on the database. A `tasker-store` thread owns a current-thread tokio runtime and
//! the [`Store`]; the pump talks to it through channels:
//! - `claim(max)` hands out steps the thread already claimed and, when it has fewer than `max`, asks for
//!   `max - n` more (one request open at a time). The thread claims only that many (the room in the events
//!   ring), and when none is ready it keeps the request and polls again after an idle delay (2 ms doubling
//!   to 50 ms; on PostgreSQL, LISTEN/NOTIFY wakes it and the slow poll backs off to 1 s), or at once when
//!   its own completions made children ready. On SQLite an idle worker waits for the store's WAL file to be
//!   written (inotify on Linux: another process's commit) and claims then, else once a second (a retry
//!   whose backoff ended, an expired claim), as with LISTEN; without inotify it polls every 50 ms, looking
//!   at the WAL index first ([`tasker_store::ChangeProbe`], one `pread`) and claiming only when it changed.
//! - Results are buffered and persisted with `complete_batch` when 256 are waiting or the oldest has
//!   waited 20 ms. A failed write keeps them and retries with backoff: nothing is dropped while the worker
//!   lives.
//! - Each persisted outcome becomes domain events (`step.completed`, `step.retry_requested`, `step.failed`,
//!   and `task.completed` when the store says the success finished its task) in
//!   [`StoreSourceSettings::domain_events`], while that log records: see [`crate::domain_events`]. The
//!   metadata (task, step, name, namespace, correlation id) is the held claim's `ClaimedStep`, kept without
//!   its event text.
//! - Claims carry a deadline of the completion timeout plus a margin. Reading an event extends its claim;
//!   every held claim is renewed each third of the visibility, so a step waiting unread in the ring is
//!   never claimed by another worker while this one lives, and comes back to others once it dies.
//! - On drop: the thread waits for its calls in flight, persists what is buffered (bounded by
//!   [`SHUTDOWN_FLUSH`]), then releases every claim it still holds (never read, or read and not answered)
//!   without using an attempt.
//!
//! The thread keeps two database calls in flight at once, in two lanes: the claim lane (claims only) and
//! the write lane (result batches with the extensions and releases riding along, claim renewals, step
//! counts). The loop polls both alongside the command channel, so a slow claim never holds results back
//! past their flush interval, a slow write never holds a claim back, and commands are taken in while both
//! wait. On PostgreSQL each call has its own pooled connection; on SQLite the store serialises writers,
//! and the overlap hides the hand-off between them. Claims never run ahead of the rest: none starts while
//! [`UNREAD_AHEAD`] handed-over steps wait unread or a full batch of results waits to be written.

use crate::domain_events::{DomainEventLog, EventWriter, StepOutcome};
use crate::event_id::Uuid;
use crate::refusals::{CompletionRefusal, RefusalBatch, RefusalKind, RefusalLog};
use crate::result::StepResult;
use crate::source::{EventPayload, EventSource, PumpWaker, SourcedEvent};
use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tasker_store::{ChangeProbe, ClaimedStep, CompletionOutcome, Store, StoreOptions, StoreStatus, YieldOutcome};
use tokio::sync::mpsc;
// The tokio clock (the std clock outside tests): the unit tests below run the store thread on paused time.
use tokio::time::Instant;

/// Completions per `complete_batch` call, and the buffer size that triggers a write at once.
const FLUSH_BATCH: usize = 256;
/// Longest a result waits in the buffer before it is written.
const FLUSH_INTERVAL: Duration = Duration::from_millis(20);
/// Longest a read event waits for its claim to be extended. Claims last the completion timeout plus a margin
/// (40 s by default) and are renewed every third of that, so extensions are batched, not written per read.
const EXTEND_INTERVAL: Duration = Duration::from_secs(1);
/// Extensions waiting that trigger a write at once.
const EXTEND_BATCH: usize = 4096;
/// Claims handed to the pump and not yet read (waiting in the events ring or the per-poll queue) at or
/// above which no claim starts. With claims in flight alongside writes, the store can claim faster than the
/// handlers read: steps then wait unread in the ring, which adds claim-to-persisted latency (Little's law:
/// every step claimed ahead waits its turn) and no throughput. A claim takes ~3-8 ms (256 steps on SQLite and
/// PostgreSQL here), while the handlers read ~100-250 steps: 256 unread keep them fed. With 1024 (and claims
/// of up to 1024) the p99 at saturation was 58-154 ms against 31-40 ms, for the same steps/s
/// (`scripts/bench-e2e`, BENCHMARKS.md).
const UNREAD_AHEAD: usize = 256;
/// Most steps one claim asks for, whatever the pump's room: with [`UNREAD_AHEAD`], at most
/// `UNREAD_AHEAD + CLAIM_MAX` steps wait unread.
const CLAIM_MAX: usize = 256;
/// First delay before polling again when nothing was ready; doubles per empty claim.
const IDLE_CLAIM_MIN: Duration = Duration::from_millis(2);
/// Longest delay between claims when nothing is ready and nothing notifies us (SQLite).
const IDLE_CLAIM_MAX: Duration = Duration::from_millis(50);
/// Longest delay between claims when nothing is ready on PostgreSQL with LISTEN: notifications wake the
/// worker, and this slow poll covers the rest (a retry whose backoff ended, an expired claim, a notification
/// lost on reconnect). On SQLite, the longest an idle worker goes without claiming while its look at the WAL
/// index shows no commit.
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
    /// Where the outcomes of persisted results go as domain events, while it records
    /// ([`crate::domain_events::global`] for a bootstrapped worker).
    pub domain_events: &'static DomainEventLog,
    /// The worker's id: its domain events' `firedBy`.
    pub worker_id: String,
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
    /// The step yields with this checkpoint (layout 1.1 CHECKPOINT): persist it, the attempt not counted.
    Checkpoint(Uuid, Vec<u8>),
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
/// many calls (the per-step cost of the store is these divided by the steps). A claim and a write may be in
/// flight at once, so the calls' times may add up to more than the wall time; `in_flight_ms` is the wall
/// time with at least one call in flight.
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
    /// Step-count refreshes not made because nothing had committed since the last (SQLite's WAL index).
    pub status_skipped: u64,
    /// Milliseconds during which at least one database call was in flight (at most the sum of the above).
    pub in_flight_ms: f64,
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
    /// Checkpoints persisted (the step yielded and is ready again, its attempt not counted).
    pub checkpoints: u64,
    /// Checkpoints the store refused (the claim had expired and moved on) or found invalid.
    pub checkpoints_refused: u64,
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
    /// How an idle worker learns of new work: `listen` (PostgreSQL's LISTEN), `wal_watch` (an inotify watch
    /// on SQLite's WAL file), or `poll` (every 50 ms at most, looking at SQLite's WAL index first).
    pub idle_wait: &'static str,
    /// Idle claims not made because the WAL index showed no commit since the last one.
    pub idle_looks: u64,
    /// Claims started because the WAL file was written while idle.
    pub wal_wakes: u64,
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
    /// Rung by the store thread after each batch it hands over.
    waker: PumpWaker,
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
        let waker = PumpWaker::default();
        let thread_waker = waker.clone();
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
                    let listener = if store.is_postgres() {
                        match store.listen().await {
                            Ok(l) => Some(l),
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN failed; polling the store instead");
                                None
                            }
                        }
                    } else {
                        None
                    };
                    let probe = store.change_probe();
                    let status_probe = store.change_probe();
                    let wal_watch = probe.as_ref().and_then(|p| match crate::wal_watch::WalWatch::new(p.wal_path()) {
                        Ok(w) => Some(w),
                        Err(e) => {
                            tracing::debug!(error = %e, wal = %p.wal_path().display(), "not watching the WAL file; polling the store");
                            None
                        }
                    });
                    let store = Rc::new(store);
                    Driver::new(
                        store,
                        settings,
                        command_rx,
                        claimed_tx,
                        thread_gate,
                        thread_published,
                        thread_waker,
                    )
                    .with_listener(listener)
                    .with_probe(probe, status_probe)
                    .with_wal_watch(wal_watch)
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
                waker,
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
    fn waker(&self) -> Option<PumpWaker> {
        Some(self.waker.clone())
    }

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

    fn keeps_checkpoints(&self) -> bool {
        true
    }

    fn checkpoint(&mut self, event_id: Uuid, _step_uuid: Uuid, checkpoint: &[u8]) {
        self.send(Command::Checkpoint(event_id, checkpoint.to_vec()));
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
        // An empty histogram's quantiles walk all of its ~33 000 buckets (an idle worker's metrics, each
        // second): they are 0 without asking.
        let quantile = |q: f64| if h.is_empty() { 0 } else { h.value_at_quantile(q) };
        m.latency = LatencySummary {
            count: h.len(),
            p50_ms: ms(quantile(0.5)),
            p99_ms: ms(quantile(0.99)),
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

/// Now as ISO 8601 UTC with milliseconds.
fn now_iso8601() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    tasker_store::iso8601(ms)
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

/// A failed store call, only logged and counted by the driver.
type BoxError = Box<dyn std::error::Error>;

/// The calls the store thread makes: [`Store`]'s, behind a trait so the unit tests can drive the
/// [`Driver`] against an instrumented store (see `tests` below).
trait StepStore: 'static {
    async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<ClaimedStep>, BoxError>;
    async fn complete_batch(&self, items: &[(tasker_store::Uuid, Vec<u8>)])
        -> Result<Vec<CompletionOutcome>, BoxError>;
    async fn extend(&self, tokens: &[tasker_store::Uuid], visibility: Duration) -> Result<u64, BoxError>;
    async fn release(&self, tokens: &[tasker_store::Uuid]) -> Result<u64, BoxError>;
    async fn checkpoint_yield(&self, _token: tasker_store::Uuid, _checkpoint: &[u8]) -> Result<YieldOutcome, BoxError> {
        Err("this store keeps no checkpoints".into())
    }
    async fn step_counts(&self) -> Result<StoreStatus, BoxError>;
    async fn close(&self);
}

impl StepStore for Store {
    async fn claim(&self, max: usize, visibility: Duration) -> Result<Vec<ClaimedStep>, BoxError> {
        Ok(Store::claim(self, max, visibility).await?)
    }
    async fn complete_batch(
        &self,
        items: &[(tasker_store::Uuid, Vec<u8>)],
    ) -> Result<Vec<CompletionOutcome>, BoxError> {
        Ok(Store::complete_batch(self, items).await?)
    }
    async fn extend(&self, tokens: &[tasker_store::Uuid], visibility: Duration) -> Result<u64, BoxError> {
        Ok(Store::extend(self, tokens, visibility).await?)
    }
    async fn release(&self, tokens: &[tasker_store::Uuid]) -> Result<u64, BoxError> {
        Ok(Store::release(self, tokens).await?)
    }
    async fn checkpoint_yield(&self, token: tasker_store::Uuid, checkpoint: &[u8]) -> Result<YieldOutcome, BoxError> {
        Ok(Store::checkpoint_yield(self, token, checkpoint).await?)
    }
    async fn step_counts(&self) -> Result<StoreStatus, BoxError> {
        Ok(Store::step_counts(self).await?)
    }
    async fn close(&self) {
        Store::close(self).await;
    }
}

/// A store call in flight. It owns everything it uses (the store by `Rc`, its inputs moved out of the
/// driver), so the driver's loop can poll it while it mutates its own state between polls.
type Op<T> = Pin<Box<dyn Future<Output = T>>>;

/// Waits for the call in `slot` to finish and empties the slot; pending forever when the slot is empty.
/// Cancel-safe: dropped before the call finishes (another branch of the loop's `select!` won), it leaves
/// the call in its slot, to be polled again on the next turn.
async fn finished<T>(slot: &mut Option<Op<T>>) -> T {
    match slot.as_mut() {
        Some(op) => {
            let out = op.await;
            *slot = None;
            out
        }
        None => std::future::pending().await,
    }
}

/// Adds one call that ran from `started` to `finished` to the counter and milliseconds `pick` selects.
fn record_time(
    published: &Mutex<Published>,
    started: Instant,
    finished: Instant,
    pick: impl FnOnce(&mut StoreTime) -> (&mut u64, &mut f64),
) {
    let ms = finished.saturating_duration_since(started).as_secs_f64() * 1000.0;
    let mut p = lock(published);
    let (calls, total) = pick(&mut p.metrics.time);
    *calls += 1;
    *total += ms;
}

/// A claim call that finished.
struct ClaimDone {
    started: Instant,
    finished: Instant,
    outcome: Result<Vec<ClaimedStep>, BoxError>,
}

/// What one write-lane call carries, moved out of the driver when it starts: at most [`FLUSH_BATCH`]
/// results, the extensions (when due) and the releases waiting then. Whatever it did not do comes back to the driver
/// in its [`FlushDone`].
struct Flush {
    results: Vec<(tasker_store::Uuid, Vec<u8>)>,
    results_since: Option<Instant>,
    extend: Vec<tasker_store::Uuid>,
    extend_since: Option<Instant>,
    release: Vec<tasker_store::Uuid>,
    checkpoints: Vec<(tasker_store::Uuid, Vec<u8>)>,
}

/// A [`Flush`] that finished: the calls run in order (results, extensions, releases) and stop at the first
/// failure, which leaves the rest undone.
struct FlushDone {
    job: Flush,
    started: Instant,
    /// The results' outcomes and when their transaction committed; `None` if not persisted.
    persisted: Option<(Vec<CompletionOutcome>, Instant)>,
    extended: bool,
    /// How many claims were released; `None` if not.
    released: Option<u64>,
    /// The checkpoints' outcomes, in order; `None` if they were not (all) written.
    checkpointed: Option<Vec<YieldOutcome>>,
    error: Option<(&'static str, BoxError)>,
}

/// A write-lane call that finished.
enum WriteDone {
    Flush(FlushDone),
    Renew {
        started: Instant,
        outcome: Result<u64, BoxError>,
    },
    Status {
        outcome: Result<StoreStatus, BoxError>,
    },
}

/// Runs one [`Flush`]: `complete_batch`, then `extend`, then `release`, each skipped when it has nothing to
/// do; stops at the first failure.
async fn run_flush<S: StepStore>(
    store: Rc<S>,
    published: Arc<Mutex<Published>>,
    visibility: Duration,
    job: Flush,
) -> FlushDone {
    let mut done = FlushDone {
        job,
        started: Instant::now(),
        persisted: None,
        extended: false,
        released: None,
        checkpointed: None,
        error: None,
    };
    if !done.job.results.is_empty() {
        let started = Instant::now();
        let outcome = store.complete_batch(&done.job.results).await;
        let finished = Instant::now();
        record_time(&published, started, finished, |t| {
            (&mut t.completes, &mut t.complete_ms)
        });
        match outcome {
            Ok(outcomes) => done.persisted = Some((outcomes, finished)),
            Err(e) => {
                done.error = Some(("persisting results", e));
                return done;
            }
        }
    }
    if !done.job.checkpoints.is_empty() {
        let mut outcomes = Vec::with_capacity(done.job.checkpoints.len());
        for (token, checkpoint) in &done.job.checkpoints {
            match store.checkpoint_yield(*token, checkpoint).await {
                Ok(outcome) => outcomes.push(outcome),
                Err(e) => {
                    done.error = Some(("persisting checkpoints", e));
                    return done;
                }
            }
        }
        done.checkpointed = Some(outcomes);
    }
    if !done.job.extend.is_empty() {
        let started = Instant::now();
        let outcome = store.extend(&done.job.extend, visibility).await;
        record_time(&published, started, Instant::now(), |t| {
            (&mut t.extends, &mut t.extend_ms)
        });
        match outcome {
            Ok(_) => done.extended = true,
            Err(e) => {
                done.error = Some(("extending claims", e));
                return done;
            }
        }
    }
    if !done.job.release.is_empty() {
        match store.release(&done.job.release).await {
            Ok(n) => done.released = Some(n),
            Err(e) => done.error = Some(("releasing claims", e)),
        }
    }
    done
}

/// A claim the store thread holds.
struct Held {
    claimed_at: Instant,
    /// The claimed step, for its domain events; its event text moved out to the pump.
    step: ClaimedStep,
}

/// The store thread's state.
///
/// Invariants:
/// - `held` has exactly the claims this worker holds: a claim's token goes in when its call returns, before
///   its events are handed over (or queued for release), and leaves when its result's outcome is accounted
///   (after the transaction committed) or its release committed.
/// - At most one call per lane is in flight (`claim_op`, `write_op`). Whatever a call works on is moved out
///   of the driver when it starts and accounted, or put back for a retry, when it finishes, so the two lanes
///   never touch the same data: the claim lane only adds to `held`, the write lane only removes from it.
/// - `unread` has the claims handed to the pump and not read, answered or released since: every claim ends
///   in one of those three commands, so it cannot drift (and wedge the claim lane).
/// - A claim is in flight only while the pump has a request open (`want > 0` when it started); the pump
///   sends no other request until the batch answering it was handed over, so `want` is not overwritten
///   under a claim in flight.
struct Driver<S: StepStore> {
    store: Rc<S>,
    settings: StoreSourceSettings,
    commands: mpsc::UnboundedReceiver<Command>,
    claimed_tx: std_mpsc::Sender<Vec<SourcedEvent>>,
    /// Unparks a quiet pump after a batch is sent.
    waker: PumpWaker,
    gate: ClaimGate,
    /// Set by [`Command::StopClaiming`]: claim requests are ignored from then on.
    claiming_stopped: bool,
    published: Arc<Mutex<Published>>,
    /// Claims held, by token.
    held: HashMap<Uuid, Held>,
    /// Claims handed to the pump and not read, answered or released since (a subset of `held`); no claim
    /// starts while there are [`UNREAD_AHEAD`] of them.
    unread: HashSet<Uuid>,
    /// Results waiting to be persisted, with when the oldest arrived.
    buffer: Vec<(tasker_store::Uuid, Vec<u8>)>,
    buffered_since: Option<Instant>,
    /// Results in the write call in flight (counted as buffered until persisted).
    writing: usize,
    /// Read events whose claims are to be extended, with when the oldest arrived.
    to_extend: Vec<tasker_store::Uuid>,
    extend_since: Option<Instant>,
    /// Claims to give back.
    to_release: Vec<tasker_store::Uuid>,
    /// Checkpoints to persist (their claims stay held until they are).
    to_checkpoint: Vec<(tasker_store::Uuid, Vec<u8>)>,
    /// Steps asked for by the pump and not yet delivered.
    want: usize,
    next_claim: Instant,
    idle_delay: Duration,
    /// Something may have become ready after the claim in flight began (its own children, a
    /// notification): if it finds nothing, claim again at once instead of after the idle delay.
    claim_again: bool,
    next_renewal: Instant,
    next_status: Option<Instant>,
    write_backoff: ErrorBackoff,
    claim_backoff: ErrorBackoff,
    listener: Option<tasker_store::ReadyListener>,
    /// SQLite's WAL index, looked at before every claim; see [`Driver::idle_claim_skippable`].
    probe: Option<ChangeProbe>,
    /// SQLite's WAL index again, for the step counts: refreshed only when something committed since.
    status_probe: Option<ChangeProbe>,
    /// SQLite's WAL file watched while idle: a write is a commit somewhere (see [`crate::wal_watch`]).
    wal_watch: Option<crate::wal_watch::WalWatch>,
    /// When the last claim began.
    last_claim_at: Instant,
    /// The claim lane's call in flight.
    claim_op: Option<Op<ClaimDone>>,
    /// The write lane's call in flight.
    write_op: Option<Op<WriteDone>>,
    /// Since when some call has been in flight (for `in_flight_ms`).
    busy_since: Option<Instant>,
}

impl<S: StepStore> Driver<S> {
    fn new(
        store: Rc<S>,
        settings: StoreSourceSettings,
        commands: mpsc::UnboundedReceiver<Command>,
        claimed_tx: std_mpsc::Sender<Vec<SourcedEvent>>,
        gate: ClaimGate,
        published: Arc<Mutex<Published>>,
        waker: PumpWaker,
    ) -> Self {
        let now = Instant::now();
        Self {
            waker,
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
            unread: HashSet::new(),
            buffer: Vec::with_capacity(FLUSH_BATCH),
            buffered_since: None,
            writing: 0,
            to_extend: Vec::new(),
            extend_since: None,
            to_release: Vec::new(),
            to_checkpoint: Vec::new(),
            want: 0,
            next_claim: now,
            idle_delay: IDLE_CLAIM_MIN,
            claim_again: false,
            write_backoff: ErrorBackoff::new(),
            claim_backoff: ErrorBackoff::new(),
            listener: None,
            probe: None,
            status_probe: None,
            wal_watch: None,
            last_claim_at: now,
            claim_op: None,
            write_op: None,
            busy_since: None,
        }
    }

    /// Wakes the claim lane on the store's ready notifications (PostgreSQL LISTEN).
    fn with_listener(mut self, listener: Option<tasker_store::ReadyListener>) -> Self {
        self.listener = listener;
        self
    }

    /// Claims while idle only when the store's WAL index changed, or once every [`IDLE_CLAIM_MAX_LISTENING`].
    fn with_probe(mut self, probe: Option<ChangeProbe>, status_probe: Option<ChangeProbe>) -> Self {
        self.probe = probe;
        self.status_probe = status_probe;
        self
    }

    /// Wakes the idle claim lane on writes to the store's WAL file, and slows its poll to the slow one.
    fn with_wal_watch(mut self, watch: Option<crate::wal_watch::WalWatch>) -> Self {
        self.wal_watch = watch;
        let mut published = lock(&self.published);
        published.metrics.idle_wait = match (&self.listener, &self.wal_watch) {
            (Some(_), _) => "listen",
            (None, Some(_)) => "wal_watch",
            (None, None) => "poll",
        };
        drop(published);
        self
    }

    async fn run(mut self) {
        loop {
            let now = Instant::now();
            self.start_calls(now);
            self.track_busy(now);
            self.publish_gauges();
            let wake_at = self.next_wake(now);
            // Only while idle (the last claim found nothing): while claims find steps, the worker's own
            // commits would wake it for nothing (unread, the kernel folds them into one event).
            let idle = self.idle();
            let notified = async {
                match self.listener.as_mut() {
                    Some(l) => l.recv().await,
                    None => std::future::pending().await,
                }
            };
            let wal_written = async {
                match self.wal_watch.as_mut() {
                    Some(w) if idle => w.changed().await,
                    _ => std::future::pending().await,
                }
            };
            // Calls that finished first: each is ready once, so they cannot starve the commands, and a
            // finished call frees its lane for the next at the top of the loop.
            tokio::select! {
                biased;
                done = finished(&mut self.write_op) => self.finish_write(done),
                done = finished(&mut self.claim_op) => self.finish_claim(done),
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
                        lock(&self.published).metrics.idle_wait = "poll";
                    }
                },
                written = wal_written => match written {
                    Ok(()) => {
                        lock(&self.published).metrics.wal_wakes += 1;
                        self.claim_soon();
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the store's WAL file is no longer watched; polling the store instead");
                        self.wal_watch = None;
                        lock(&self.published).metrics.idle_wait = "poll";
                    }
                },
                _ = tokio::time::sleep_until(wake_at) => {}
            }
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
                self.unread.remove(&id);
                self.buffered_since.get_or_insert_with(Instant::now);
                self.buffer.push((to_store_uuid(id), json));
            }
            Command::Read(ids) => {
                for id in &ids {
                    self.unread.remove(id);
                }
                self.extend_since.get_or_insert_with(Instant::now);
                self.to_extend.extend(ids.into_iter().map(to_store_uuid));
            }
            Command::Release(id) => {
                self.unread.remove(&id);
                self.to_release.push(to_store_uuid(id));
            }
            Command::Checkpoint(id, checkpoint) => {
                self.unread.remove(&id);
                self.to_checkpoint.push((to_store_uuid(id), checkpoint));
            }
        }
    }

    fn claim_soon(&mut self) {
        self.idle_delay = IDLE_CLAIM_MIN;
        self.next_claim = Instant::now();
        // A claim in flight may have looked before these steps became ready.
        self.claim_again |= self.claim_op.is_some();
    }

    /// Whether the write lane has something to write now (backoff aside).
    fn flush_due(&self, now: Instant) -> bool {
        self.buffer.len() >= FLUSH_BATCH
            || self.buffered_since.is_some_and(|t| now >= t + FLUSH_INTERVAL)
            || self.to_extend.len() >= EXTEND_BATCH
            || self.extend_since.is_some_and(|t| now >= t + EXTEND_INTERVAL)
            || !self.to_release.is_empty()
            || !self.to_checkpoint.is_empty()
    }

    /// When the loop must run again without a command or a call finishing. A lane's own deadlines count
    /// only while it is free: a busy lane's call wakes the loop when it finishes (counting its deadlines
    /// then would spin the loop until it does).
    fn next_wake(&self, now: Instant) -> Instant {
        let mut at = now + Duration::from_secs(1);
        if self.write_op.is_none() {
            let mut flush_at: Option<Instant> = None;
            let mut due = |t: Instant| flush_at = Some(flush_at.map_or(t, |f| f.min(t)));
            if let Some(since) = self.buffered_since {
                due(since + FLUSH_INTERVAL);
            }
            if let Some(since) = self.extend_since {
                due(since + EXTEND_INTERVAL);
            }
            if !self.to_release.is_empty() || !self.to_checkpoint.is_empty() {
                due(now);
            }
            if let Some(f) = flush_at {
                at = at.min(f.max(self.write_backoff.until.unwrap_or(now)));
            }
            at = at.min(self.next_renewal);
            if let Some(s) = self.next_status {
                at = at.min(s);
            }
        }
        if self.may_claim() {
            at = at.min(self.next_claim.max(self.claim_backoff.until.unwrap_or(now)));
        }
        at
    }

    /// Whether a claim may start (when its time comes): the lane is free, the pump asked, and neither side
    /// downstream of the claim is behind: fewer than [`UNREAD_AHEAD`] steps wait unread, and less than a full
    /// batch of results waits to be written. Claims in flight alongside writes could otherwise outrun both
    /// (the store's capacity is shared: a claim slows the write beside it), and every step claimed ahead only
    /// waits, unread or unpersisted, adding latency and no throughput. Either condition ends by a command
    /// (Read, Complete, Release) or a write finishing, which both wake the loop; `next_wake` ignores the claim
    /// deadline meanwhile.
    fn may_claim(&self) -> bool {
        self.claim_op.is_none() && self.want > 0 && self.unread.len() < UNREAD_AHEAD && self.buffer.len() < FLUSH_BATCH
    }

    /// Starts what is due on each free lane.
    fn start_calls(&mut self, now: Instant) {
        if self.write_op.is_none() {
            // Renewals and step counts first: each is rare, and would never run under a steady stream of
            // results otherwise.
            if now >= self.next_renewal {
                self.start_renewal();
            } else if self.next_status.is_some_and(|s| now >= s) {
                self.start_status(now);
            } else if self.flush_due(now) && self.write_backoff.ready(now) {
                let job = self.take_flush(now);
                let store = Rc::clone(&self.store);
                let published = Arc::clone(&self.published);
                let visibility = self.settings.visibility;
                self.write_op = Some(Box::pin(async move {
                    WriteDone::Flush(run_flush(store, published, visibility, job).await)
                }));
            }
        }
        if self.may_claim() && now >= self.next_claim && self.claim_backoff.ready(now) {
            if self.idle_claim_skippable(now) {
                lock(&self.published).metrics.idle_looks += 1;
                // As after an empty claim: the looks slow down to the idle poll's cadence.
                self.idle_delay = (self.idle_delay * 2).min(self.idle_delay_max());
                self.next_claim = now + self.idle_delay;
            } else {
                self.last_claim_at = now;
                self.start_claim();
            }
        }
    }

    /// The longest idle delay: the slow poll when something wakes the lane (LISTEN, the WAL file's watch),
    /// else the plain idle poll's.
    fn idle_delay_max(&self) -> Duration {
        if self.listener.is_some() || self.wal_watch.is_some() {
            IDLE_CLAIM_MAX_LISTENING
        } else {
            IDLE_CLAIM_MAX
        }
    }

    /// Whether the claim due now can wait: the last claim found nothing (the idle delay grew), the WAL index
    /// shows no commit since that claim began, and the slow poll is not due. The index is looked at before
    /// every claim, so each look compares with what the last claim saw; a commit during a claim shows at the
    /// next look.
    fn idle_claim_skippable(&mut self, now: Instant) -> bool {
        let Some(probe) = self.probe.as_mut() else {
            return false;
        };
        let changed = probe.changed();
        !changed && self.idle() && now < self.last_claim_at + IDLE_CLAIM_MAX_LISTENING
    }

    /// Whether the claim lane is idle: its last claim found nothing (the idle delay has grown since).
    fn idle(&self) -> bool {
        self.idle_delay > IDLE_CLAIM_MIN
    }

    /// Moves the next results batch, the extensions if due, and the releases out into a [`Flush`].
    fn take_flush(&mut self, now: Instant) -> Flush {
        let results = if self.buffer.len() <= FLUSH_BATCH {
            std::mem::replace(&mut self.buffer, Vec::with_capacity(FLUSH_BATCH))
        } else {
            self.buffer.drain(..FLUSH_BATCH).collect()
        };
        // Results left behind are younger than the batch's oldest: keeping its time flushes them no later.
        let results_since = if self.buffer.is_empty() {
            self.buffered_since.take()
        } else {
            self.buffered_since
        };
        // Only claims still held need extending, and not those whose results this call persists first:
        // pruned at every write, so the list keeps only read steps still waiting for their results.
        if !self.to_extend.is_empty() {
            let answered: HashSet<_> = results.iter().map(|(t, _)| *t).collect();
            let held = &self.held;
            self.to_extend
                .retain(|t| held.contains_key(&Uuid(t.as_u128())) && !answered.contains(t));
            if self.to_extend.is_empty() {
                self.extend_since = None;
            }
        }
        // Extensions go out only when due: by then most read steps were answered and pruned, so while
        // results flow they cost (nearly) nothing.
        let extend_due =
            self.to_extend.len() >= EXTEND_BATCH || self.extend_since.is_some_and(|t| now >= t + EXTEND_INTERVAL);
        let (extend, extend_since) = if extend_due {
            (std::mem::take(&mut self.to_extend), self.extend_since.take())
        } else {
            (Vec::new(), None)
        };
        self.writing = results.len();
        Flush {
            results,
            results_since,
            extend,
            extend_since,
            release: std::mem::take(&mut self.to_release),
            checkpoints: std::mem::take(&mut self.to_checkpoint),
        }
    }

    /// Accounts a finished [`Flush`]: outcomes of committed results, released claims; puts back what it did
    /// not do, for the next try after the write backoff. Returns whether it all succeeded.
    fn finish_flush(&mut self, done: FlushDone) -> bool {
        let FlushDone {
            job,
            started,
            persisted,
            extended,
            released,
            checkpointed,
            error,
        } = done;
        self.writing = 0;
        match persisted {
            Some((outcomes, at)) => self.account(&job.results, &outcomes, at),
            None if !job.results.is_empty() => {
                // Not persisted: back at the front, in their order, ahead of what arrived meanwhile.
                let mut results = job.results;
                results.append(&mut self.buffer);
                self.buffer = results;
                self.buffered_since = earliest(job.results_since, self.buffered_since);
            }
            None => {}
        }
        if !extended && !job.extend.is_empty() {
            self.to_extend.extend(job.extend);
            self.extend_since = earliest(job.extend_since, self.extend_since);
        }
        match released {
            Some(n) => {
                for t in &job.release {
                    self.held.remove(&Uuid(t.as_u128()));
                }
                lock(&self.published).metrics.released += n;
            }
            None => self.to_release.extend(job.release),
        }
        match checkpointed {
            Some(outcomes) => self.account_checkpoints(job.checkpoints, outcomes),
            None => self.to_checkpoint.extend(job.checkpoints),
        }
        match error {
            Some((what, e)) => {
                self.record_error(what, &e);
                self.write_backoff.failed(started);
                false
            }
            None => {
                self.write_backoff.succeeded();
                true
            }
        }
    }

    /// Pushes the deadline of every held claim (unread ones waiting in a full ring included).
    fn start_renewal(&mut self) {
        let tokens: Vec<_> = self.held.keys().map(|id| to_store_uuid(*id)).collect();
        let store = Rc::clone(&self.store);
        let published = Arc::clone(&self.published);
        let visibility = self.settings.visibility;
        self.write_op = Some(Box::pin(async move {
            let started = Instant::now();
            let outcome = store.extend(&tokens, visibility).await;
            record_time(&published, started, Instant::now(), |t| {
                (&mut t.extends, &mut t.extend_ms)
            });
            WriteDone::Renew { started, outcome }
        }));
    }

    fn start_status(&mut self, now: Instant) {
        let interval = self.settings.status_interval.unwrap_or(Duration::from_secs(1));
        self.next_status = Some(now + interval);
        // Counts change only by a commit: with none since the last count (the WAL index unchanged; looked
        // at before the count, so a commit during it shows next time), the last counts are still exact.
        if let Some(probe) = self.status_probe.as_mut() {
            let changed = probe.changed();
            let mut published = lock(&self.published);
            if let (false, Some((_, at))) = (changed, published.steps_at.as_mut()) {
                *at = Instant::now();
                published.metrics.time.status_skipped += 1;
                return;
            }
        }
        let store = Rc::clone(&self.store);
        let published = Arc::clone(&self.published);
        self.write_op = Some(Box::pin(async move {
            let started = Instant::now();
            let outcome = store.step_counts().await;
            lock(&published).metrics.time.status_ms += started.elapsed().as_secs_f64() * 1000.0;
            WriteDone::Status { outcome }
        }));
    }

    fn finish_write(&mut self, done: WriteDone) {
        match done {
            WriteDone::Flush(done) => {
                self.finish_flush(done);
            }
            WriteDone::Renew { started, outcome } => match outcome {
                Ok(_) => self.next_renewal = started + self.settings.visibility / 3,
                Err(e) => {
                    self.record_error("renewing claims", &e);
                    self.next_renewal = started + ERROR_BACKOFF_MIN;
                }
            },
            WriteDone::Status { outcome } => match outcome {
                Ok(s) => lock(&self.published).steps_at = Some((s, Instant::now())),
                Err(e) => self.record_error("counting steps", &e),
            },
        }
    }

    /// Takes in persisted checkpoints: a yielded step is ready again in the store (its claim is gone); a
    /// refused one had lost its claim already; an invalid one is given back, so the step runs again soon.
    fn account_checkpoints(&mut self, job: Vec<(tasker_store::Uuid, Vec<u8>)>, outcomes: Vec<YieldOutcome>) {
        let mut p = lock(&self.published);
        for ((token, _), outcome) in job.into_iter().zip(outcomes) {
            match outcome {
                YieldOutcome::Yielded => {
                    self.held.remove(&Uuid(token.as_u128()));
                    p.metrics.checkpoints += 1;
                }
                YieldOutcome::Refused => {
                    self.held.remove(&Uuid(token.as_u128()));
                    p.metrics.checkpoints_refused += 1;
                    tracing::warn!(event_id = %token, "checkpoint refused: the claim had expired and moved on");
                }
                YieldOutcome::Invalid(why) => {
                    p.metrics.checkpoints_refused += 1;
                    tracing::warn!(event_id = %token, %why, "checkpoint invalid; the step is given back");
                    self.to_release.push(token);
                }
            }
        }
    }

    /// Starts claiming `want` steps, unless the worker began draining.
    fn start_claim(&mut self) {
        // The gate closes before StopClaiming is sent: checking it here too means no claim starts once the
        // drain began, even before that command is taken in. (A claim already in flight is answered by
        // `finish_claim`, which checks the gate again.)
        if !*lock(&self.gate.0) {
            self.want = 0;
            return;
        }
        self.claim_again = false;
        let store = Rc::clone(&self.store);
        let published = Arc::clone(&self.published);
        let (want, visibility) = (self.want.min(CLAIM_MAX), self.settings.visibility);
        self.claim_op = Some(Box::pin(async move {
            let started = Instant::now();
            let outcome = store.claim(want, visibility).await;
            let finished = Instant::now();
            match &outcome {
                Ok(steps) if steps.is_empty() => record_time(&published, started, finished, |t| {
                    (&mut t.empty_claims, &mut t.empty_claim_ms)
                }),
                _ => record_time(&published, started, finished, |t| (&mut t.claims, &mut t.claim_ms)),
            }
            ClaimDone {
                started,
                finished,
                outcome,
            }
        }));
    }

    /// Takes in a finished claim: its steps become held, then go to the pump, or back to the store if the
    /// worker began draining meanwhile.
    fn finish_claim(&mut self, done: ClaimDone) {
        let ClaimDone {
            started,
            finished,
            outcome,
        } = done;
        match outcome {
            Ok(steps) if steps.is_empty() => {
                self.claim_backoff.succeeded();
                if std::mem::take(&mut self.claim_again) {
                    self.next_claim = finished;
                    self.idle_delay = IDLE_CLAIM_MIN;
                } else {
                    self.next_claim = started + self.idle_delay;
                    self.idle_delay = (self.idle_delay * 2).min(self.idle_delay_max());
                }
            }
            Ok(steps) => {
                self.claim_backoff.succeeded();
                self.claim_again = false;
                let mut events = Vec::with_capacity(steps.len());
                for mut step in steps {
                    let event_id = Uuid(step.claim_token.as_u128());
                    events.push(SourcedEvent {
                        event_id,
                        step_uuid: Uuid(step.step_uuid.as_u128()),
                        payload: EventPayload::Text(std::mem::take(&mut step.event)),
                    });
                    self.held.insert(
                        event_id,
                        Held {
                            claimed_at: finished,
                            step,
                        },
                    );
                }
                lock(&self.published).metrics.claimed += events.len() as u64;
                self.want = 0;
                self.idle_delay = IDLE_CLAIM_MIN;
                let gate = Arc::clone(&self.gate.0);
                let open = lock(&gate);
                if *open {
                    // The pump lives as long as this thread; a failed send means it is gone, and the
                    // claims are released at shutdown.
                    self.unread.extend(events.iter().map(|e| e.event_id));
                    let _ = self.claimed_tx.send(events);
                    self.waker.wake();
                } else {
                    // Claimed while the worker began draining: never dispatched, so given back at once.
                    self.to_release.extend(events.iter().map(|e| to_store_uuid(e.event_id)));
                }
            }
            Err(e) => {
                self.record_error("claiming steps", &e);
                self.claim_backoff.failed(started);
            }
        }
    }

    /// Adds the time since the first of the calls in flight began to `in_flight_ms` when none is left.
    fn track_busy(&mut self, now: Instant) {
        let busy = self.claim_op.is_some() || self.write_op.is_some();
        match (busy, self.busy_since) {
            (true, None) => self.busy_since = Some(now),
            (false, Some(since)) => {
                self.busy_since = None;
                lock(&self.published).metrics.time.in_flight_ms +=
                    now.saturating_duration_since(since).as_secs_f64() * 1000.0;
            }
            _ => {}
        }
    }

    fn record_error(&mut self, what: &str, error: &dyn std::fmt::Display) {
        tracing::error!(error = %error, "{what} failed; retrying with backoff");
        let mut p = lock(&self.published);
        p.metrics.store_errors += 1;
        p.metrics.last_error = Some(format!("{what}: {error}"));
    }

    fn publish_gauges(&self) {
        let mut p = lock(&self.published);
        p.metrics.held = self.held.len() as u64;
        p.metrics.buffered = (self.buffer.len() + self.writing) as u64;
    }

    /// Counts outcomes, records latencies and (while the log records) domain events, and claims again at
    /// once when children became ready.
    fn account(
        &mut self,
        items: &[(tasker_store::Uuid, Vec<u8>)],
        outcomes: &[CompletionOutcome],
        persisted_at: Instant,
    ) {
        let mut children_ready = false;
        let log = self.settings.domain_events;
        let recording = log.is_recording();
        let fired_at = if recording { now_iso8601() } else { String::new() };
        let writer = EventWriter {
            fired_at: &fired_at,
            fired_by: &self.settings.worker_id,
        };
        let mut events = Vec::new();
        let mut p = lock(&self.published);
        for ((token, json), outcome) in items.iter().zip(outcomes) {
            let held = self.held.remove(&Uuid(token.as_u128()));
            let m = &mut p.metrics;
            let step_outcome = match outcome {
                CompletionOutcome::Completed {
                    ready_children,
                    task_complete,
                } => {
                    m.completed += 1;
                    children_ready |= *ready_children > 0;
                    StepOutcome::Completed {
                        task_complete: *task_complete,
                    }
                }
                CompletionOutcome::RetryScheduled { backoff, .. } => {
                    m.retried += 1;
                    StepOutcome::RetryRequested { backoff: *backoff }
                }
                CompletionOutcome::Failed { .. } => {
                    m.failed += 1;
                    StepOutcome::Failed
                }
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
            };
            if let Some(held) = held {
                let us = persisted_at.saturating_duration_since(held.claimed_at).as_micros() as u64;
                p.latency_us.saturating_record(us.max(1));
                if recording {
                    writer.step_events(&held.step, step_outcome, json, &mut events);
                }
            }
        }
        drop(p);
        if !events.is_empty() {
            log.push(events);
        }
        if children_ready {
            self.claim_soon();
        }
    }

    /// Waits for the calls in flight and takes in their outcomes, then persists what is buffered and
    /// releases every claim still held and not answered, retrying failures until [`SHUTDOWN_FLUSH`] has
    /// passed.
    async fn shut_down(&mut self) {
        // Both at once (the wait is the longer call, not the sum). A claim's steps become held and are
        // released below (or queued for release at once if the gate had closed); a flush's results are
        // accounted, or back in the buffer to be retried below.
        let (write, claim) = (self.write_op.take(), self.claim_op.take());
        let (write, claim) = tokio::join!(
            async move {
                match write {
                    Some(op) => Some(op.await),
                    None => None,
                }
            },
            async move {
                match claim {
                    Some(op) => Some(op.await),
                    None => None,
                }
            }
        );
        if let Some(done) = write {
            self.finish_write(done);
        }
        if let Some(done) = claim {
            self.finish_claim(done);
        }
        self.track_busy(Instant::now());
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        loop {
            // Checkpoints waiting to be written answer their claims too: they are written below, not released.
            let answered: HashSet<_> = self.buffer.iter().chain(&self.to_checkpoint).map(|(t, _)| *t).collect();
            self.to_release.extend(
                self.held
                    .keys()
                    .map(|id| to_store_uuid(*id))
                    .filter(|t| !answered.contains(t)),
            );
            self.to_release.sort_unstable();
            self.to_release.dedup();
            self.to_extend.clear();
            self.extend_since = None;
            if self.buffer.is_empty() && self.to_release.is_empty() && self.to_checkpoint.is_empty() {
                break;
            }
            let job = self.take_flush(Instant::now());
            let done = run_flush(
                Rc::clone(&self.store),
                Arc::clone(&self.published),
                self.settings.visibility,
                job,
            )
            .await;
            if self.finish_flush(done) {
                continue;
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

/// The earlier of two optional instants.
fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The store thread against an instrumented store, on paused tokio time (no wall-clock waits): calls that
/// wait for each other prove the two lanes overlap, since serialised calls would never finish (the test's
/// virtual-time limit then fails it); the drain and shutdown invariants with a claim in flight.
#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::{Cell, RefCell};
    use tokio::sync::{watch, Semaphore};

    /// A store whose calls can be made to wait for each other or for the test.
    struct Fake {
        /// A claim waits until a `complete_batch` starts after it did.
        claims_wait_for_a_write: Cell<bool>,
        /// A `complete_batch` waits until a claim starts after it did.
        writes_wait_for_a_claim: Cell<bool>,
        /// A claim waits for a permit from the test.
        claims_wait_for_permits: Cell<bool>,
        permits: Semaphore,
        /// A `complete_batch` waits for a permit from the test.
        writes_wait_for_permits: Cell<bool>,
        write_permits: Semaphore,
        claims_started: watch::Sender<u64>,
        writes_started: watch::Sender<u64>,
        in_flight: Cell<u32>,
        max_in_flight: Cell<u32>,
        /// Steps left to claim.
        ready: Cell<usize>,
        tokens: Cell<u128>,
        completed: RefCell<Vec<tasker_store::Uuid>>,
        /// Outcomes of the next completions, in order (then `Completed`, no task finished).
        outcomes: RefCell<VecDeque<CompletionOutcome>>,
        released: RefCell<Vec<tasker_store::Uuid>>,
    }

    impl Fake {
        fn new(ready: usize) -> Rc<Self> {
            Rc::new(Self {
                claims_wait_for_a_write: Cell::new(false),
                writes_wait_for_a_claim: Cell::new(false),
                claims_wait_for_permits: Cell::new(false),
                permits: Semaphore::new(0),
                writes_wait_for_permits: Cell::new(false),
                write_permits: Semaphore::new(0),
                claims_started: watch::Sender::new(0),
                writes_started: watch::Sender::new(0),
                in_flight: Cell::new(0),
                max_in_flight: Cell::new(0),
                ready: Cell::new(ready),
                tokens: Cell::new(0),
                completed: RefCell::default(),
                outcomes: RefCell::default(),
                released: RefCell::default(),
            })
        }

        /// Counts a call in flight until the guard drops.
        fn enter(&self) -> impl Drop + '_ {
            struct Guard<'a>(&'a Cell<u32>);
            impl Drop for Guard<'_> {
                fn drop(&mut self) {
                    self.0.set(self.0.get() - 1);
                }
            }
            self.in_flight.set(self.in_flight.get() + 1);
            self.max_in_flight
                .set(self.max_in_flight.get().max(self.in_flight.get()));
            Guard(&self.in_flight)
        }

        fn step(&self) -> ClaimedStep {
            let n = self.tokens.get() + 1;
            self.tokens.set(n);
            let token = tasker_store::Uuid::from_u128(n);
            ClaimedStep {
                claim_token: token,
                step_uuid: tasker_store::Uuid::from_u128(n << 64),
                task_uuid: tasker_store::Uuid::from_u128(1),
                step_name: "step".into(),
                namespace: "ns".into(),
                correlation_id: "corr".into(),
                attempts: 1,
                event: format!(r#"{{"event_id":"{token}"}}"#).into_boxed_str(),
            }
        }
    }

    impl StepStore for Fake {
        async fn claim(&self, max: usize, _visibility: Duration) -> Result<Vec<ClaimedStep>, BoxError> {
            let _call = self.enter();
            let mut writes = self.writes_started.subscribe();
            self.claims_started.send_modify(|n| *n += 1);
            if self.claims_wait_for_a_write.get() {
                writes.changed().await.unwrap();
            }
            if self.claims_wait_for_permits.get() {
                self.permits.acquire().await.unwrap().forget();
            }
            let n = max.min(self.ready.get());
            self.ready.set(self.ready.get() - n);
            Ok((0..n).map(|_| self.step()).collect())
        }

        async fn complete_batch(
            &self,
            items: &[(tasker_store::Uuid, Vec<u8>)],
        ) -> Result<Vec<CompletionOutcome>, BoxError> {
            let _call = self.enter();
            let mut claims = self.claims_started.subscribe();
            self.writes_started.send_modify(|n| *n += 1);
            if self.writes_wait_for_a_claim.get() {
                claims.changed().await.unwrap();
            }
            if self.writes_wait_for_permits.get() {
                self.write_permits.acquire().await.unwrap().forget();
            }
            self.completed.borrow_mut().extend(items.iter().map(|(t, _)| *t));
            let mut next = self.outcomes.borrow_mut();
            Ok((items.iter())
                .map(|_| {
                    next.pop_front().unwrap_or(CompletionOutcome::Completed {
                        ready_children: 0,
                        task_complete: false,
                    })
                })
                .collect())
        }

        async fn extend(&self, tokens: &[tasker_store::Uuid], _visibility: Duration) -> Result<u64, BoxError> {
            let _call = self.enter();
            Ok(tokens.len() as u64)
        }

        async fn release(&self, tokens: &[tasker_store::Uuid]) -> Result<u64, BoxError> {
            let _call = self.enter();
            self.released.borrow_mut().extend_from_slice(tokens);
            Ok(tokens.len() as u64)
        }

        async fn step_counts(&self) -> Result<StoreStatus, BoxError> {
            Ok(StoreStatus::default())
        }

        async fn close(&self) {}
    }

    /// The pump's side of a driver.
    struct Pump {
        commands: mpsc::UnboundedSender<Command>,
        claimed: std_mpsc::Receiver<Vec<SourcedEvent>>,
        gate: ClaimGate,
        published: Arc<Mutex<Published>>,
    }

    impl Pump {
        fn send(&self, command: Command) {
            self.commands.send(command).unwrap();
        }

        /// The next batch handed over; fails after a minute of (virtual) time.
        async fn next_batch(&self) -> Vec<SourcedEvent> {
            within("a claimed batch", async {
                loop {
                    if let Ok(batch) = self.claimed.try_recv() {
                        return batch;
                    }
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            })
            .await
        }

        fn metrics(&self) -> StoreMetrics {
            lock(&self.published).metrics.clone()
        }
    }

    fn driver(fake: &Rc<Fake>) -> (Driver<Fake>, Pump) {
        driver_with(fake, Box::leak(Box::new(DomainEventLog::new())))
    }

    /// A driver over `fake` that records domain events into `log`.
    fn driver_with(fake: &Rc<Fake>, log: &'static DomainEventLog) -> (Driver<Fake>, Pump) {
        let (commands, command_rx) = mpsc::unbounded_channel();
        let (claimed_tx, claimed) = std_mpsc::channel();
        let gate = ClaimGate::open();
        let published = Arc::new(Mutex::new(Published {
            metrics: StoreMetrics::default(),
            refusals: RefusalLog::default(),
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).unwrap(),
            steps_at: None,
        }));
        let settings = StoreSourceSettings {
            url: "fake".into(),
            visibility: Duration::from_secs(40),
            connect_timeout: Duration::from_secs(1),
            status_interval: None,
            domain_events: log,
            worker_id: "worker-test".into(),
        };
        let driver = Driver::new(
            Rc::clone(fake),
            settings,
            command_rx,
            claimed_tx,
            gate.clone(),
            Arc::clone(&published),
            PumpWaker::default(),
        );
        (
            driver,
            Pump {
                commands,
                claimed,
                gate,
                published,
            },
        )
    }

    /// Runs `f` on a current-thread runtime whose clock is paused: it jumps to the next timer whenever
    /// every task waits, so the timeouts below cost no wall-clock time and cannot fire early.
    fn paused<F: Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(f)
    }

    /// `f`, failing the test if it takes more than a minute of virtual time.
    async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
        tokio::time::timeout(Duration::from_secs(60), f)
            .await
            .unwrap_or_else(|_| panic!("{what}: not done in a minute (calls serialised?)"))
    }

    /// Waits until `done` holds, polling each virtual millisecond (for at most a minute).
    async fn until(what: &str, mut done: impl FnMut() -> bool) {
        within(what, async {
            while !done() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        })
        .await;
    }

    fn result_for(event: &SourcedEvent) -> Command {
        Command::Complete(event.event_id, br#"{"success":true}"#.to_vec())
    }

    #[test]
    fn a_claim_in_flight_does_not_hold_back_results() {
        let fake = Fake::new(100);
        let (driver, pump) = driver(&fake);
        paused(async {
            let side = async {
                pump.send(Command::Claim(4));
                let batch = pump.next_batch().await;
                assert_eq!(batch.len(), 4);
                // The next claim returns only once a results batch was written after it began: with the
                // two calls one after the other, neither would ever finish.
                fake.claims_wait_for_a_write.set(true);
                pump.send(Command::Claim(4));
                until("the second claim began", || *fake.claims_started.borrow() == 2).await;
                for e in &batch {
                    pump.send(result_for(e));
                }
                let second = pump.next_batch().await;
                assert_eq!(second.len(), 4);
                until("the results persisted", || fake.completed.borrow().len() == 4).await;
                let m = pump.metrics();
                assert_eq!((m.claimed, m.completed, m.held), (8, 4, 4), "{m:?}");
                assert_eq!(lock(&pump.published).latency_us.len(), 4);
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
        assert_eq!(fake.max_in_flight.get(), 2, "a claim and a write in flight at once");
        assert_eq!(
            fake.released.borrow().len(),
            4,
            "the unanswered claims released at shutdown"
        );
    }

    /// Persisted outcomes become domain events (with the claimed steps' metadata) once the log records:
    /// nothing before the first drain.
    #[test]
    fn persisted_outcomes_become_domain_events_once_the_log_records() {
        let fake = Fake::new(100);
        let log: &'static DomainEventLog = Box::leak(Box::new(DomainEventLog::new()));
        let (driver, pump) = driver_with(&fake, log);
        paused(async {
            let side = async {
                pump.send(Command::Claim(5));
                let batch = pump.next_batch().await;
                pump.send(result_for(&batch[0]));
                until("the first result persisted", || fake.completed.borrow().len() == 1).await;
                assert_eq!(log.drain(), Default::default(), "not recording before the first drain");
                fake.outcomes.borrow_mut().extend([
                    CompletionOutcome::Completed {
                        ready_children: 0,
                        task_complete: true,
                    },
                    CompletionOutcome::RetryScheduled {
                        attempts: 1,
                        backoff: Duration::from_secs(2),
                    },
                    CompletionOutcome::Failed { attempts: 1 },
                    CompletionOutcome::Refused,
                ]);
                for e in &batch[1..] {
                    pump.send(result_for(e));
                }
                until("the results persisted", || fake.completed.borrow().len() == 5).await;
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
        let events: Vec<serde_json::Value> = (log.drain().events.iter())
            .map(|t| serde_json::from_str(t).unwrap())
            .collect();
        let names: Vec<&str> = events.iter().map(|e| e["eventName"].as_str().unwrap()).collect();
        // The last result was refused (its claim had moved on): no event.
        assert_eq!(
            names,
            [
                "step.completed",
                "task.completed",
                "step.retry_requested",
                "step.failed"
            ]
        );
        let m = &events[0]["metadata"];
        assert_eq!(m["stepUuid"], tasker_store::Uuid::from_u128(2 << 64).to_string());
        assert_eq!(m["taskUuid"], tasker_store::Uuid::from_u128(1).to_string());
        assert_eq!(
            (&m["stepName"], &m["namespace"], &m["correlationId"], &m["firedBy"]),
            (&"step".into(), &"ns".into(), &"corr".into(), &"worker-test".into())
        );
        assert_eq!(
            events[0]["payload"]["execution_result"],
            serde_json::json!({"success": true})
        );
        assert_eq!(events[2]["payload"]["backoff_ms"], 2000);
        assert_eq!(
            events[3]["metadata"]["stepUuid"],
            tasker_store::Uuid::from_u128(4 << 64).to_string()
        );
    }

    #[test]
    fn a_write_in_flight_does_not_hold_back_claims() {
        let fake = Fake::new(100);
        let (driver, pump) = driver(&fake);
        paused(async {
            let side = async {
                pump.send(Command::Claim(2));
                let batch = pump.next_batch().await;
                // The results batch returns only once a claim began after it: with the two calls one after
                // the other, neither would ever finish.
                fake.writes_wait_for_a_claim.set(true);
                for e in &batch {
                    pump.send(result_for(e));
                }
                until("the write began", || *fake.writes_started.borrow() == 1).await;
                pump.send(Command::Claim(3));
                assert_eq!(pump.next_batch().await.len(), 3);
                until("the results persisted", || fake.completed.borrow().len() == 2).await;
                let m = pump.metrics();
                assert_eq!((m.claimed, m.completed, m.held, m.buffered), (5, 2, 3, 0), "{m:?}");
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
        assert_eq!(fake.max_in_flight.get(), 2, "a claim and a write in flight at once");
    }

    #[test]
    fn a_claim_that_returns_after_the_drain_began_is_released_not_dispatched() {
        let fake = Fake::new(100);
        fake.claims_wait_for_permits.set(true);
        let (driver, pump) = driver(&fake);
        paused(async {
            let side = async {
                pump.send(Command::Claim(5));
                until("the claim began", || *fake.claims_started.borrow() == 1).await;
                // What `StoreSource::stop_claiming` does: close the gate, then tell the thread.
                *lock(&pump.gate.0) = false;
                pump.send(Command::StopClaiming);
                pump.send(Command::Claim(5));
                fake.permits.add_permits(1);
                until("the late claim released", || fake.released.borrow().len() == 5).await;
                assert!(
                    pump.claimed.try_recv().is_err(),
                    "nothing handed over after the drain began"
                );
                // Idle for a while: no claim starts again.
                tokio::time::sleep(Duration::from_secs(5)).await;
                assert_eq!(*fake.claims_started.borrow(), 1);
                let m = pump.metrics();
                assert_eq!((m.claimed, m.released, m.held), (5, 5, 0), "{m:?}");
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
    }

    #[test]
    fn shutdown_waits_for_the_claim_in_flight_then_releases_it_and_persists_results() {
        let fake = Fake::new(100);
        let (driver, pump) = driver(&fake);
        paused(async {
            let side = async {
                pump.send(Command::Claim(2));
                let batch = pump.next_batch().await;
                fake.claims_wait_for_permits.set(true);
                pump.send(Command::Claim(3));
                until("the second claim began", || *fake.claims_started.borrow() == 2).await;
                for e in &batch {
                    pump.send(result_for(e));
                }
                let published = Arc::clone(&pump.published);
                // The worker stops (the command channel closes) with the claim still in flight.
                drop(pump);
                tokio::time::sleep(Duration::from_secs(1)).await;
                assert!(
                    fake.released.borrow().is_empty(),
                    "nothing to release before the claim returns"
                );
                fake.permits.add_permits(1);
                published
            };
            let ((), published) = tokio::join!(driver.run(), side);
            let m = lock(&published).metrics.clone();
            assert_eq!(
                (m.claimed, m.completed, m.released, m.held, m.buffered),
                (5, 2, 3, 0, 0),
                "{m:?}"
            );
        });
        assert_eq!(fake.completed.borrow().len(), 2);
        let released: HashSet<_> = fake.released.borrow().iter().map(|t| t.as_u128()).collect();
        assert_eq!(released, HashSet::from([3, 4, 5]), "the late claim's steps given back");
    }

    /// Issue 21, an idle worker's CPU: with a look at the WAL index, an idle driver claims once a second
    /// while nothing commits (about 20 times without one), and at its next look once something does.
    #[test]
    fn an_idle_claim_waits_for_a_commit_or_the_slow_poll() {
        let idle_claims = |probe: Option<ChangeProbe>, index: &std::path::Path| {
            let fake = Fake::new(0);
            let (driver, pump) = driver(&fake);
            let driver = driver.with_probe(probe, None);
            paused(async {
                let side = async {
                    let claims = || *fake.claims_started.borrow();
                    pump.send(Command::Claim(8));
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    let in_900ms = claims();
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let in_1100ms = claims();
                    // A commit (another process's enqueue): claimed at the next look, within the idle delay.
                    fake.ready.set(3);
                    std::fs::write(index, [7u8; 64]).unwrap();
                    let batch = pump.next_batch().await;
                    assert_eq!(batch.len(), 3);
                    drop(pump);
                    (in_900ms, in_1100ms)
                };
                let ((), counts) = tokio::join!(driver.run(), side);
                counts
            })
        };
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("store.db-shm");
        std::fs::write(&index, [1u8; 64]).unwrap();
        let (in_900ms, in_1100ms) = idle_claims(Some(ChangeProbe::for_wal_index(index.clone())), &index);
        assert_eq!((in_900ms, in_1100ms), (1, 2), "one claim, then the slow poll at 1 s");
        let (plain, _) = idle_claims(None, &index);
        assert!(
            plain >= 15,
            "without a look, the idle poll claims every 50 ms at most: {plain}"
        );
    }

    /// The step counts are refreshed only when something committed since the last refresh (SQLite's WAL
    /// index); otherwise the last counts are still exact and only their time is renewed.
    #[test]
    fn step_counts_are_refreshed_only_after_a_commit() {
        let dir = tempfile::tempdir().unwrap();
        let index = dir.path().join("store.db-shm");
        std::fs::write(&index, [1u8; 64]).unwrap();
        let fake = Fake::new(0);
        let (mut driver, pump) = driver(&fake);
        driver.settings.status_interval = Some(Duration::from_millis(100));
        driver.next_status = Some(Instant::now());
        let driver = driver.with_probe(None, Some(ChangeProbe::for_wal_index(index.clone())));
        paused(async {
            let side = async {
                let time = || pump.metrics().time;
                tokio::time::sleep(Duration::from_millis(1050)).await;
                let quiet = time();
                assert_eq!(quiet.status_skipped, 10, "the first count, then ten skipped: {quiet:?}");
                std::fs::write(&index, [2u8; 64]).unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
                let after = time();
                assert_eq!(
                    after.status_skipped, 12,
                    "one real count after the commit, then skipped again: {after:?}"
                );
                assert!(lock(&pump.published).steps_at.is_some());
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
    }

    #[test]
    fn claims_wait_while_handed_over_steps_are_unread_or_results_back_up() {
        let fake = Fake::new(100_000);
        let (driver, pump) = driver(&fake);
        paused(async {
            let side = async {
                let claims = || *fake.claims_started.borrow();
                // A claim asks for CLAIM_MAX steps at most, whatever the pump's room.
                pump.send(Command::Claim(4 * CLAIM_MAX));
                let batch = pump.next_batch().await;
                assert_eq!(batch.len(), CLAIM_MAX);
                // The handlers are UNREAD_AHEAD (= CLAIM_MAX) steps behind: no claim starts until they read.
                assert_eq!(UNREAD_AHEAD, CLAIM_MAX);
                pump.send(Command::Claim(8));
                tokio::time::sleep(Duration::from_secs(5)).await;
                assert_eq!(claims(), 1, "no claim while {UNREAD_AHEAD} steps wait unread");
                pump.send(Command::Read(batch.iter().map(|e| e.event_id).collect()));
                let second = pump.next_batch().await;
                assert_eq!(second.len(), 8);
                let batch: Vec<_> = batch.into_iter().chain(second).collect();
                // A write in flight (held by the test) and a full batch of results waiting behind it: persisting
                // is behind, so the claim waits until that batch went out.
                fake.writes_wait_for_permits.set(true);
                pump.send(result_for(&batch[0]));
                until("the first write began", || *fake.writes_started.borrow() == 1).await;
                for e in &batch[1..=FLUSH_BATCH] {
                    pump.send(result_for(e));
                }
                pump.send(Command::Claim(8));
                tokio::time::sleep(Duration::from_secs(5)).await;
                assert_eq!(claims(), 2, "no claim while a full batch of results waits");
                fake.write_permits.add_permits(2);
                assert_eq!(pump.next_batch().await.len(), 8);
                assert!(*fake.writes_started.borrow() >= 2, "the waiting batch went out first");
                fake.write_permits.add_permits(100);
                until("every result persisted", || {
                    fake.completed.borrow().len() == FLUSH_BATCH + 1
                })
                .await;
                drop(pump);
            };
            tokio::join!(driver.run(), side);
        });
    }
}
