//! The worker: bootstrap, the pump thread that moves events and completions, status, graceful shutdown and
//! stop. No call here ever waits on JS: stop and shutdown change state and return; draining happens while
//! JS keeps polling and completing.

use crate::config::{SourceConfig, Transport, WorkerConfig, WorkerConfigError};
use crate::dispatch::{Dispatch, DispatchMetrics, Refusal};
use crate::doorbell::Doorbell;
use crate::event_id::Uuid;
use crate::refusals::{CompletionRefusal, RefusalBatch, RefusalKind, RefusalLog};
use crate::result::StepResult;
use crate::source::{EventPayload, EventSource, SourcedEvent, SyntheticSource, SyntheticStats};
use crate::store_source::{StoreSource, StoreSourceError, StoreSourceSettings};
use crate::wake_legs::WakeLegs;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Consumer, MappedRing, Producer, Region, RingId, SealOutcome, WriteError};

/// How often the pump runs timeouts, starvation, heartbeats and the region size check.
const MAINTENANCE_EVERY: Duration = Duration::from_millis(100);
/// Idle pump sleep once spinning found nothing (bounds completion pick-up latency when idle).
const IDLE_SLEEP: Duration = Duration::from_millis(1);
/// How long before a source's next due event an idle pump stops sleeping and yields instead (see `idle`).
const DUE_SPIN_MARGIN: Duration = Duration::from_micros(200);
/// Unread bytes in the events ring at or above which a pump step that made progress is followed by a
/// [`PACE_SLEEP`] instead of another step at once: the reader has work for a while (128 KiB is ~48 events
/// of 2.7 KB, ~1.5 ms of handlers at 30k steps/s), so stepping sooner only finds a few completions each time.
/// Measured (`scripts/thread-cpu`, 100 000 steps, interleaved): the pump's CPU per step fell from 7.1-7.3 to
/// 3.1-3.6 us (synthetic source) and from 4.2 to 3.8 us (SQLite), at the same steps/s: CPU the JS thread and
/// the store share two cores with.
const PACE_BACKLOG: u32 = 128 * 1024;
/// How long a pump with a [`PACE_BACKLOG`] waits before its next step. Completions wait at most this much
/// longer to be taken in (the store batches them for up to 20 ms anyway).
const PACE_SLEEP: Duration = Duration::from_micros(500);
/// How long a ring pump with nothing outstanding (no event unread, in flight or waiting to be written) and
/// nothing due keeps its short idle sleeps before it parks instead (see [`QUIET_PARK`]).
const QUIET_AFTER: Duration = Duration::from_millis(50);
/// How long a quiet ring pump parks: a source handing events over from its own thread unparks it at once
/// ([`crate::source::PumpWaker`]), as do a stop and a graceful shutdown; nothing else has work for it while
/// nothing is outstanding. Replaces the 1000 wake-ups a second of [`IDLE_SLEEP`] with 10 (issue 21: idle CPU);
/// each wake-up runs the maintenance (heartbeats every [`MAINTENANCE_EVERY`]), so heartbeats stay about
/// 100 ms apart (the stale-region sweep's grace is 10 s).
const QUIET_PARK: Duration = Duration::from_millis(100);
/// [`QUIET_PARK`] for a source with a [`crate::source::PumpWaker`] (the step store's): it wakes the pump
/// for every hand-over, so the park only paces maintenance (heartbeats 0.5 s apart, well inside the 10 s
/// grace). Measured (end-to-end.ts idle CPU, Node, side by side with a bare timer): the parked pump's 10
/// wake-ups a second cost 0.12 points of a core, ~120 us each on a host that evicts an idle vCPU's caches.
const QUIET_PARK_WOKEN: Duration = Duration::from_millis(500);
/// Most events claimed per pump step.
const CLAIM_BATCH: usize = 1024;
/// Default of `source.visibility_margin_ms`: a claim's deadline is the completion timeout plus this.
const DEFAULT_VISIBILITY_MARGIN_MS: u64 = 10_000;
/// Most completions drained per pump step.
const COMPLETION_BATCH: usize = 1024;

/// The worker's lifecycle phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Claiming and dispatching.
    Running,
    /// Graceful shutdown: no new claims; in-flight events may still complete until the deadline.
    Draining,
    /// Stopped (after `stop`, or at the end of a graceful shutdown).
    Stopped,
}

impl Phase {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Running,
            1 => Self::Draining,
            _ => Self::Stopped,
        }
    }
}

/// Why a worker stopped on its own: nothing moves any more, and status and metrics say so.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerFault {
    /// The phase the worker was in when it happened.
    pub phase: Phase,
    /// What happened, one line.
    pub reason: String,
}

/// Why bootstrap failed. Every variant wraps the error that stopped it; `Display` keeps the one-line text the
/// TS side shows (the configuration's own message, `worker setup failed: ...`, `step store: ...`) and
/// [`source`](std::error::Error::source) returns the error under it (none for a configuration refused on
/// its own terms).
#[derive(Debug)]
pub enum BootstrapError {
    /// The configuration was refused ([`WorkerConfig::validate`]).
    Config(WorkerConfigError),
    /// The worker id does not make a valid region name.
    RegionName(tasker_ring::RegionNameError),
    /// The region could not be created.
    Region(tasker_ring::CreateError),
    /// The doorbell socket could not be bound (the region is removed again).
    Doorbell {
        /// The socket path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A ring role of the fresh region could not be taken.
    Role(tasker_ring::RoleError),
    /// The pump thread could not be spawned.
    Thread(io::Error),
    /// The step store could not be reached or opened.
    Store(StoreSourceError),
}

impl std::fmt::Display for BootstrapError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Config(why) => write!(f, "{why}"),
            Self::RegionName(e) => write!(f, "worker setup failed: {e}"),
            Self::Region(e) => write!(f, "worker setup failed: {e}"),
            Self::Doorbell { path, source } => write!(f, "worker setup failed: {}: {source}", path.display()),
            Self::Role(e) => write!(f, "worker setup failed: {e}"),
            Self::Thread(e) => write!(f, "worker setup failed: {e}"),
            Self::Store(e) => write!(f, "step store: {e}"),
        }
    }
}

impl std::error::Error for BootstrapError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Config(e) => e.source(),
            Self::RegionName(e) => Some(e),
            Self::Region(e) => Some(e),
            Self::Doorbell { source, .. } => Some(source),
            Self::Role(e) => Some(e),
            Self::Thread(e) => Some(e),
            Self::Store(e) => Some(e),
        }
    }
}

/// The seed's `WorkerStatus`, plus the transport's details.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerStatus {
    /// Claiming or draining.
    pub running: bool,
    /// This worker's id.
    pub worker_id: String,
    /// `running`, `draining` or `stopped`.
    pub worker_core_status: Phase,
    /// `ring` or `ffi`.
    pub transport: &'static str,
    /// The region file (ring transport).
    pub region_path: Option<PathBuf>,
    /// The doorbell socket (ring transport).
    pub doorbell_path: Option<PathBuf>,
    /// Namespace served.
    pub namespace: String,
    /// Why the worker stopped on its own, if it did (absent otherwise).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<WorkerFault>,
    /// The largest step event the events ring carries (ring transport; [`WorkerConfig::max_event_bytes`]):
    /// a larger one fails permanently as a `dispatch_error`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_event_bytes: Option<u64>,
    /// Stopped, and still closing its source (a step store persisting buffered results and releasing held
    /// claims, at most about 10 s when the store is unreachable); absent otherwise.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub closing: bool,
}

/// State shared by the pump and the control calls, behind one mutex (held per pump step, never per event
/// by JS on the ring transport).
struct Core {
    dispatch: Dispatch,
    source: Box<dyn EventSource>,
    /// Per-poll transport: claimed events not yet polled.
    ffi_queue: VecDeque<SourcedEvent>,
    /// Per-poll transport: polled events, cloned into the in-flight map as tasker-core does.
    ffi_in_flight: HashMap<Uuid, EventPayload>,
    draining_until: Option<Instant>,
}

struct Shared {
    core: Mutex<Core>,
    phase: AtomicU8,
    stop: AtomicBool,
    config: WorkerConfig,
    /// Ring fills as f64 bits, updated by the pump.
    events_fill: AtomicU64,
    completions_fill: AtomicU64,
    /// Set once, by [`Shared::fail`].
    fault: Mutex<Option<WorkerFault>>,
    /// Completions the ring pump refused, until drained (`Worker::drain_refusals`).
    refusals: Mutex<RefusalLog>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Core> {
        // A panic in a pump step poisons the mutex; the state itself stays consistent per operation.
        self.core.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn phase(&self) -> Phase {
        Phase::from_u8(self.phase.load(Ordering::Acquire))
    }

    fn set_phase(&self, p: Phase) {
        self.phase.store(p as u8, Ordering::Release);
    }

    /// The worker stops on its own: records why (the first fault wins) with the phase it was in, then
    /// stops the pump. Never takes the core lock (a panicking pump may have poisoned it mid-step).
    fn fail(&self, reason: String) {
        let mut fault = self.fault.lock().unwrap_or_else(|p| p.into_inner());
        if fault.is_none() {
            tracing::error!(reason, "the worker stopped on its own");
            *fault = Some(WorkerFault {
                phase: self.phase(),
                reason,
            });
        }
        drop(fault);
        self.stop.store(true, Ordering::Release);
        self.set_phase(Phase::Stopped);
    }

    fn fault(&self) -> Option<WorkerFault> {
        self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn refusals(&self) -> MutexGuard<'_, RefusalLog> {
        self.refusals.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A running (or stopped) worker.
pub struct Worker {
    worker_id: String,
    shared: Arc<Shared>,
    region: Option<Arc<Region>>,
    doorbell_path: Option<PathBuf>,
    pump: Option<JoinHandle<()>>,
    /// The thread that joins the pump and closes the source after [`Worker::begin_stop`].
    closer: Option<JoinHandle<()>>,
    closed: Arc<Closed>,
    synthetic: Option<Arc<SyntheticStats>>,
}

/// Set once a stopping worker's pump has exited and its source is closed (a store: buffered results
/// persisted, held claims released, or given up after its flush bound).
#[derive(Debug, Default)]
pub struct Closed {
    done: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl Closed {
    fn set(&self) {
        *self.done.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    /// Whether the source is closed.
    pub fn is_set(&self) -> bool {
        *self.done.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Waits until the source is closed, at most `timeout` (`None`: without bound); true when it is.
    pub fn wait(&self, timeout: Option<Duration>) -> bool {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        let done = match timeout {
            None => self
                .changed
                .wait_while(done, |done| !*done)
                .unwrap_or_else(|p| p.into_inner()),
            Some(limit) => {
                self.changed
                    .wait_timeout_while(done, limit, |done| !*done)
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
        };
        *done
    }
}

/// What a stopping worker does off the caller's thread: wait for the pump to exit, then close the source.
struct CloseJob {
    pump: JoinHandle<()>,
    shared: Arc<Shared>,
    closed: Arc<Closed>,
}

impl CloseJob {
    fn run(self) {
        let _ = self.pump.join();
        self.shared.lock().source.close();
        self.closed.set();
    }
}

static NEXT_WORKER: AtomicU64 = AtomicU64::new(1);

impl Worker {
    /// Starts a worker: creates the region and doorbell (ring transport) and the pump thread.
    pub fn bootstrap(config: WorkerConfig) -> Result<Self, BootstrapError> {
        config.validate().map_err(BootstrapError::Config)?;
        let n = NEXT_WORKER.fetch_add(1, Ordering::Relaxed);
        let worker_id = format!("worker-ts-{}-{n}", std::process::id());
        let (source, synthetic): (Box<dyn EventSource>, _) = match &config.source {
            SourceConfig::Synthetic {
                count,
                rate_per_sec,
                event_bytes,
                event_bytes_max,
                stamp_enqueued_at,
            } => {
                tracing::warn!(
                    count = ?count,
                    rate_per_sec = ?rate_per_sec,
                    "step events are synthetic (source.kind \"synthetic\"): fabricated by the worker for tests \
                     and benchmarks; no step store is read or written"
                );
                let seed = std::process::id() as u64 ^ n;
                let mut s = SyntheticSource::new(*count, *rate_per_sec, *event_bytes, seed)
                    .with_enqueued_at_stamp(*stamp_enqueued_at);
                if let Some(max) = event_bytes_max {
                    s = s.with_size_range(*event_bytes, *max, seed);
                }
                let stats = s.stats();
                (Box::new(s), Some(stats))
            }
            SourceConfig::Store {
                database_url,
                visibility_margin_ms,
                connect_timeout_ms,
                status_interval_ms,
            } => {
                if let (Some(top), Some(inner)) = (&config.database_url, database_url) {
                    if top != inner {
                        tracing::warn!(
                            database_url = %tasker_store::redact(top),
                            ignored = %tasker_store::redact(inner),
                            "both database_url and source.database_url are set; the top-level one is used"
                        );
                    }
                }
                let url = config.store_url().unwrap_or_else(|| tasker_store::resolve_url(None));
                tracing::info!(database_url = %tasker_store::redact(&url), "step events come from the step store");
                let settings = StoreSourceSettings {
                    url,
                    visibility: Duration::from_millis(
                        config.completion_timeout_ms + visibility_margin_ms.unwrap_or(DEFAULT_VISIBILITY_MARGIN_MS),
                    ),
                    connect_timeout: Duration::from_millis(connect_timeout_ms.unwrap_or(10_000)),
                    status_interval: Some(status_interval_ms.unwrap_or(1000))
                        .filter(|ms| *ms > 0)
                        .map(Duration::from_millis),
                    domain_events: crate::domain_events::global(),
                    worker_id: worker_id.clone(),
                };
                let source = StoreSource::connect(settings).map_err(BootstrapError::Store)?;
                (Box::new(source), None)
            }
        };
        Self::with_source(config, worker_id, source, synthetic)
    }

    /// Starts a worker over any event source.
    pub fn with_source(
        config: WorkerConfig,
        worker_id: String,
        source: Box<dyn EventSource>,
        synthetic: Option<Arc<SyntheticStats>>,
    ) -> Result<Self, BootstrapError> {
        config.validate().map_err(BootstrapError::Config)?;
        let core = Core {
            dispatch: Dispatch::new(
                Duration::from_millis(config.completion_timeout_ms),
                Duration::from_millis(config.starvation_threshold_ms),
            ),
            source,
            ffi_queue: VecDeque::with_capacity(config.ffi_queue_capacity),
            ffi_in_flight: HashMap::with_capacity(config.ffi_queue_capacity),
            draining_until: None,
        };
        let shared = Arc::new(Shared {
            core: Mutex::new(core),
            phase: AtomicU8::new(Phase::Running as u8),
            stop: AtomicBool::new(false),
            config: config.clone(),
            events_fill: AtomicU64::new(0),
            completions_fill: AtomicU64::new(0),
            fault: Mutex::new(None),
            refusals: Mutex::new(RefusalLog::default()),
        });
        let (region, doorbell_path, pump) = match config.transport {
            Transport::Ring => {
                warn_of_undeliverable_events(&config);
                let dir = config.region_dir.clone().unwrap_or_else(tasker_ring::default_dir);
                sweep_stale_regions(&dir);
                let path = tasker_ring::region_path(&dir, &worker_id).map_err(BootstrapError::RegionName)?;
                let region = Arc::new(Region::create(&path, &config.region_config()).map_err(BootstrapError::Region)?);
                let sock = path.with_extension("sock");
                let doorbell = Doorbell::bind(&sock).map_err(|source| {
                    let _ = region.unlink();
                    BootstrapError::Doorbell {
                        path: sock.clone(),
                        source,
                    }
                })?;
                let events = region.producer(RingId::Events).map_err(BootstrapError::Role)?;
                let completions = region.consumer(RingId::Completions).map_err(BootstrapError::Role)?;
                let pump_shared = Arc::clone(&shared);
                let pump_region = Arc::clone(&region);
                // Read once here: off, the pump holds None and its hot path only tests it.
                let legs = WakeLegs::from_env(&worker_id).map(Box::new);
                let pump = std::thread::Builder::new()
                    .name("tasker-ring-pump".into())
                    .spawn(move || {
                        let mut pump = RingPump::new(pump_shared, pump_region, events, completions, doorbell);
                        pump.legs = legs;
                        let shared = Arc::clone(&pump.shared);
                        contain_panic(&shared, &mut pump, RingPump::run, RingPump::release_carry);
                    })
                    .map_err(BootstrapError::Thread)?;
                (Some(region), Some(sock), pump)
            }
            Transport::Ffi => {
                let pump_shared = Arc::clone(&shared);
                let pump = std::thread::Builder::new()
                    .name("tasker-ffi-pump".into())
                    .spawn(move || contain_panic(&pump_shared, &mut (), |_| run_ffi_pump(&pump_shared), |_, _| {}))
                    .map_err(BootstrapError::Thread)?;
                (None, None, pump)
            }
        };
        tracing::info!(worker_id, transport = ?config.transport, "worker started");
        Ok(Self {
            worker_id,
            shared,
            region,
            doorbell_path,
            pump: Some(pump),
            closer: None,
            closed: Arc::new(Closed::default()),
            synthetic,
        })
    }

    /// This worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The region (ring transport), kept mapped for as long as a clone of this Arc lives.
    pub fn region(&self) -> Option<&Arc<Region>> {
        self.region.as_ref()
    }

    /// Counters of the synthetic source, when that is the source.
    pub fn synthetic_stats(&self) -> Option<&Arc<SyntheticStats>> {
        self.synthetic.as_ref()
    }

    /// The lifecycle phase.
    pub fn phase(&self) -> Phase {
        self.shared.phase()
    }

    /// Claiming or draining (not stopped).
    pub fn is_running(&self) -> bool {
        self.phase() != Phase::Stopped
    }

    /// The seed's `WorkerStatus`.
    pub fn status(&self) -> WorkerStatus {
        let phase = self.phase();
        WorkerStatus {
            running: phase != Phase::Stopped,
            worker_id: self.worker_id.clone(),
            worker_core_status: phase,
            transport: match self.shared.config.transport {
                Transport::Ring => "ring",
                Transport::Ffi => "ffi",
            },
            region_path: self.region.as_ref().map(|r| r.path().to_path_buf()),
            doorbell_path: self.doorbell_path.clone(),
            namespace: self.shared.config.namespace.clone(),
            error: self.shared.fault(),
            max_event_bytes: self.shared.config.max_event_bytes(),
            closing: self.is_closing(),
        }
    }

    /// The dispatch metrics.
    pub fn metrics(&self) -> DispatchMetrics {
        let core = self.shared.lock();
        let mut m = core.dispatch.metrics(Instant::now());
        m.source = core.source.metrics();
        drop(core);
        m.worker_error = self.shared.fault();
        m.events_ring_fill = f64::from_bits(self.shared.events_fill.load(Ordering::Relaxed));
        m.completions_ring_fill = f64::from_bits(self.shared.completions_fill.load(Ordering::Relaxed));
        m
    }

    /// The completions refused after they were sent (ring transport: by the dispatch, as the pump reads
    /// them; any transport: by the source, such as a store whose claim expired) since the last call, oldest
    /// first. A per-poll completion's refusal is its call's return value and is not repeated here.
    pub fn drain_refusals(&self) -> RefusalBatch {
        let mut batch = RefusalBatch::default();
        self.shared.refusals().drain_into(&mut batch);
        self.shared.lock().source.drain_refusals(&mut batch);
        batch
    }

    /// Fails events in flight past the completion timeout now; returns how many.
    pub fn cleanup_timeouts(&self) -> usize {
        let mut core = self.shared.lock();
        fail_expired(&mut core, Instant::now())
    }

    /// Counts (and logs) starving events now.
    pub fn check_starvation(&self) -> u64 {
        self.shared.lock().dispatch.check_starvation(Instant::now())
    }

    /// Begins a graceful shutdown: no new claims; in-flight events may complete until the shutdown
    /// timeout, then the rest fail as timeouts. Returns at once.
    pub fn begin_graceful_shutdown(&self) -> Phase {
        let mut core = self.shared.lock();
        if self.phase() == Phase::Running {
            core.draining_until = Some(Instant::now() + Duration::from_millis(self.shared.config.shutdown_timeout_ms));
            self.shared.set_phase(Phase::Draining);
            core.source.stop_claiming();
            tracing::info!(worker_id = self.worker_id, "graceful shutdown started");
        }
        // The phase this call left the worker in: the pump, unparked below, may finish an empty drain at once.
        let phase = self.phase();
        drop(core);
        // A quiet pump (parked) finishes the drain now rather than at its park's timeout.
        if let Some(pump) = &self.pump {
            pump.thread().unpark();
        }
        phase
    }

    /// Stops now and waits until the source is closed (a step store: buffered results persisted and held
    /// claims released, or given up after [`crate::store_source::SHUTDOWN_FLUSH`] when the store is
    /// unreachable). Nothing waits on JS. Safe to call twice. [`Self::begin_stop`] is the same without the
    /// wait.
    pub fn stop(&mut self) {
        self.begin_stop();
        self.wait_closed(None);
    }

    /// Stops now and returns at once: the phase is `Stopped`, nothing is claimed, completed or handed out
    /// any more, and the region's name is unlinked; a thread of its own waits for the pump (it exits within
    /// a step) and then closes the source. [`Self::is_closing`] tells whether that is still under way,
    /// [`Self::wait_closed`] waits for it. Safe to call twice.
    pub fn begin_stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        self.shared.set_phase(Phase::Stopped);
        if let Some(region) = &self.region {
            // The mapping lives on in every Arc (the TS reader's included); only the name goes.
            let _ = region.unlink();
        }
        let Some(pump) = self.pump.take() else {
            return;
        };
        // A quiet pump is parked: it sees the stop now rather than at its park's timeout.
        pump.thread().unpark();
        // The job goes to the thread through this slot, so that it is still here to run inline if the thread
        // cannot be spawned.
        let job = Arc::new(Mutex::new(Some(CloseJob {
            pump,
            shared: Arc::clone(&self.shared),
            closed: Arc::clone(&self.closed),
        })));
        let take = |job: &Mutex<Option<CloseJob>>| job.lock().unwrap_or_else(|p| p.into_inner()).take();
        let for_thread = Arc::clone(&job);
        let spawned = std::thread::Builder::new()
            .name("tasker-worker-stop".into())
            .spawn(move || {
                if let Some(job) = take(&for_thread) {
                    job.run();
                }
            });
        match spawned {
            Ok(closer) => self.closer = Some(closer),
            Err(e) => {
                tracing::warn!(error = %e, "no thread for closing the source; closing it on the caller's");
                if let Some(job) = take(&job) {
                    job.run();
                }
            }
        }
    }

    /// Whether a stop is still closing the source (see [`Self::begin_stop`]).
    pub fn is_closing(&self) -> bool {
        self.closer.is_some() && !self.closed.is_set()
    }

    /// The signal set once a stop has closed the source: waiting on it needs no access to the worker (a
    /// caller can wait without holding the lock it keeps the worker under).
    pub fn closed_signal(&self) -> Arc<Closed> {
        Arc::clone(&self.closed)
    }

    /// Waits until a stop has closed the source, at most `timeout` (`None`: without bound); true when it has
    /// (or no stop is closing anything).
    pub fn wait_closed(&mut self, timeout: Option<Duration>) -> bool {
        let Some(closer) = self.closer.take() else {
            return true;
        };
        if !self.closed.wait(timeout) {
            self.closer = Some(closer);
            return false;
        }
        let _ = closer.join();
        true
    }

    /// Per-poll transport: the next event as JSON, if any. Takes the global mutex, clones the event into
    /// the in-flight map and serialises it to a fresh string: tasker-core's shape, kept as the baseline.
    pub fn poll_event_json(&self) -> Option<String> {
        if self.phase() == Phase::Stopped {
            return None;
        }
        let mut core = self.shared.lock();
        let event = core.ffi_queue.pop_front()?;
        core.dispatch.polled(event.event_id, event.step_uuid, Instant::now());
        core.source.read(&[event.event_id]);
        let json = event.payload.to_json_string();
        core.ffi_in_flight.insert(event.event_id, event.payload.clone());
        Some(json)
    }

    /// Per-poll transport: applies a completion (accepted, or refused with the reason; refusals counted).
    pub fn complete(&self, event_id: &str, result_json: &str) -> Result<(), Refusal> {
        self.complete_bytes(event_id.as_bytes(), result_json.as_bytes())
    }

    /// As [`Self::complete`], for arguments that may not be UTF-8 (the C layer's raw strings): such input is
    /// refused and counted like any other bad completion.
    pub fn complete_bytes(&self, event_id: &[u8], result_json: &[u8]) -> Result<(), Refusal> {
        self.answer(event_id, |core| complete_in(core, event_id, result_json))
    }

    /// Per-poll transport (layout 1.1's GIVE_BACK on the ring): gives back an event TS read and will not run;
    /// the source re-offers it without using an attempt. Refused like a completion (not in flight, bad id,
    /// stopped).
    pub fn give_back(&self, event_id: &[u8]) -> Result<(), Refusal> {
        self.answer(event_id, |core| give_back_in(core, event_id))
    }

    /// Per-poll transport (layout 1.1's CHECKPOINT on the ring): the step yields with `checkpoint` (a JSON
    /// object); the store persists it and dispatches the step again later, its attempt not counted.
    /// Refused: not in flight, bad id, stopped, not a JSON object, another `step_uuid`, or a source that keeps
    /// no checkpoints (the event then stays in flight).
    pub fn checkpoint_yield(&self, event_id: &[u8], checkpoint: &[u8]) -> Result<(), Refusal> {
        self.answer(event_id, |core| checkpoint_in(core, event_id, checkpoint))
    }

    /// A per-poll answer to an event: refused once stopped (the source is closed: what it took now would be
    /// dropped; refused visibly and counted), else applied, and the event's per-poll copy dropped.
    fn answer(&self, event_id: &[u8], apply: impl FnOnce(&mut Core) -> Result<Uuid, Refusal>) -> Result<(), Refusal> {
        let mut core = self.shared.lock();
        let core = &mut *core;
        if self.phase() == Phase::Stopped {
            return Err(core.dispatch.refuse_stopped(event_id));
        }
        let id = apply(core)?;
        core.ffi_in_flight.remove(&id);
        Ok(())
    }
}

/// Completes a read event with `json` and hands the result to the source (both transports).
fn complete_in(core: &mut Core, event_id: &[u8], json: &[u8]) -> Result<Uuid, Refusal> {
    let (id, result) = core.dispatch.complete(event_id, json)?;
    core.source.complete(id, &result);
    Ok(id)
}

/// Takes a read event out of flight and gives it back to the source unrun (both transports).
fn give_back_in(core: &mut Core, event_id: &[u8]) -> Result<Uuid, Refusal> {
    let (id, step_uuid) = core.dispatch.give_back(event_id)?;
    core.source.release(id, step_uuid);
    Ok(id)
}

/// The step of a read event yields with `checkpoint`, handed to the source (both transports).
fn checkpoint_in(core: &mut Core, event_id: &[u8], checkpoint: &[u8]) -> Result<Uuid, Refusal> {
    let kept = core.source.keeps_checkpoints();
    let (id, step_uuid) = core.dispatch.checkpoint(event_id, checkpoint, kept)?;
    core.source.checkpoint(id, step_uuid, checkpoint);
    Ok(id)
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes the regions (and doorbell sockets) that dead workers left in `dir`, by `tasker_ring::stale`'s
/// rules: never a live one. Logged; a failure here never stops the bootstrap.
fn sweep_stale_regions(dir: &std::path::Path) {
    let outcomes = match tasker_ring::stale::sweep(dir, tasker_ring::stale::DEFAULT_GRACE, false) {
        Ok(outcomes) => outcomes,
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "no stale-region sweep");
            return;
        }
    };
    for o in outcomes {
        match (&o.verdict, &o.error) {
            (tasker_ring::stale::Verdict::Remove(why), None) => {
                tracing::info!(region = %o.path.display(), reason = %why, "removed a dead worker's region")
            }
            (tasker_ring::stale::Verdict::Remove(why), Some(e)) => tracing::warn!(
                region = %o.path.display(), reason = %why, error = %e, "could not remove a dead worker's region"
            ),
            (tasker_ring::stale::Verdict::Keep(_), _) => {}
        }
    }
}

/// Says at bootstrap when the events ring cannot carry every event the message limit allows: such an event
/// is failed permanently when it comes (issue 20), so the operator learns it now, with the sizes to change.
fn warn_of_undeliverable_events(config: &WorkerConfig) {
    let Some(max_event) = config.max_event_bytes() else {
        return;
    };
    if max_event >= config.max_message_size {
        return;
    }
    // The defaults (a 4 MiB ring, 64 MiB messages) always differ: said at info, so every default worker does
    // not warn; a configured message limit the ring cannot carry is a warning.
    if config.max_message_size == WorkerConfig::default().max_message_size {
        tracing::info!(
            max_event_bytes = max_event,
            events_capacity = config.events_capacity,
            "step events of at most {max_event} bytes fit the events ring; a larger one fails as a dispatch_error"
        );
    } else {
        tracing::warn!(
            max_event_bytes = max_event,
            max_message_size = config.max_message_size,
            events_capacity = config.events_capacity,
            max_frame_size = config.max_frame_size,
            "{}",
            undeliverable_text(config, max_event)
        );
    }
}

/// The sentence naming the events ring's limit, for the bootstrap warning and each event failed by it.
fn undeliverable_text(config: &WorkerConfig, max_event: u64) -> String {
    format!(
        "the events ring ({} bytes, frames of at most {} bytes) carries step events of at most {max_event} bytes \
         (max_message_size is {}): a larger event fails permanently as a dispatch_error; raise events_capacity \
         to carry larger ones",
        config.events_capacity, config.max_frame_size, config.max_message_size
    )
}

/// Fails expired in-flight events into the source; returns how many.
fn fail_expired(core: &mut Core, now: Instant) -> usize {
    let failed = core.dispatch.cleanup_timeouts(now);
    for (id, result) in &failed {
        core.ffi_in_flight.remove(id);
        core.source.complete(*id, result);
    }
    failed.len()
}

/// Ends a graceful shutdown when nothing is outstanding or the deadline passed; true when stopped. `seal`
/// runs first: the ring transport seals its events ring there, so nothing released below can still be read.
fn finish_draining(shared: &Shared, core: &mut Core, now: Instant, seal: impl FnOnce(&mut Core)) -> bool {
    if shared.phase() != Phase::Draining {
        return false;
    }
    let deadline_passed = core.draining_until.is_some_and(|d| now >= d);
    if core.dispatch.outstanding() > 0 && !deadline_passed {
        return false;
    }
    seal(core);
    release_unread(core);
    for (id, result) in core.dispatch.fail_all(now) {
        core.ffi_in_flight.remove(&id);
        core.source.complete(id, &result);
    }
    shared.set_phase(Phase::Stopped);
    tracing::info!("graceful shutdown finished");
    true
}

/// Applies one record of the completions ring: a COMPLETION, or (layout 1.1) a GIVE_BACK or a CHECKPOINT.
/// Anything refused is logged and kept in the refusal log for TS to see.
fn apply_record(shared: &Shared, core: &mut Core, kind: u16, payload: &[u8]) {
    let refused = |id: &[u8], refusal: Refusal| {
        tracing::warn!(%refusal, record_type = kind, "completion record refused");
        let kind = match refusal {
            Refusal::NotInFlight(_) => RefusalKind::NotInFlight,
            Refusal::InvalidResult(_) => RefusalKind::InvalidResult,
            Refusal::InvalidEventId(_) => RefusalKind::InvalidEventId,
            Refusal::Stopped(_) => RefusalKind::Stopped,
        };
        let id = String::from_utf8_lossy(id);
        shared
            .refusals()
            .push(CompletionRefusal::now(id, kind, refusal.to_string()));
    };
    match kind {
        record_type::COMPLETION if payload.len() >= Uuid::TEXT_LEN => {
            let (id, json) = payload.split_at(Uuid::TEXT_LEN);
            if let Err(refusal) = complete_in(core, id, json) {
                refused(id, refusal);
            }
        }
        record_type::GIVE_BACK if !payload.is_empty() && payload.len() % Uuid::TEXT_LEN == 0 => {
            for id in payload.chunks_exact(Uuid::TEXT_LEN) {
                if let Err(refusal) = give_back_in(core, id) {
                    refused(id, refusal);
                }
            }
        }
        record_type::CHECKPOINT if payload.len() >= Uuid::TEXT_LEN => {
            let (id, json) = payload.split_at(Uuid::TEXT_LEN);
            if let Err(refusal) = checkpoint_in(core, id, json) {
                refused(id, refusal);
            }
        }
        _ => {
            tracing::warn!(
                record_type = kind,
                len = payload.len(),
                "malformed completions-ring record; ignored"
            );
            let id = &payload[..payload.len().min(Uuid::TEXT_LEN)];
            refused(
                id,
                Refusal::InvalidResult(format!(
                    "a record of type {kind:#06x} with a {}-byte payload is not a valid completion, give-back or checkpoint",
                    payload.len()
                )),
            );
        }
    }
}

/// Gives every event no handler has read back to the source (a store re-offers them without using an
/// attempt): the per-poll queue and the events written to the ring but not passed by its consumer.
fn release_unread(core: &mut Core) {
    while let Some(ev) = core.ffi_queue.pop_front() {
        core.dispatch.unqueued();
        core.source.release(ev.event_id, ev.step_uuid);
    }
    for (id, step_uuid) in core.dispatch.take_unread() {
        core.source.release(id, step_uuid);
    }
}

/// Runs a pump; if it panics, the worker stops visibly instead of reporting `running` while nothing moves
/// (and a store source renewing every held claim until stop): the panic is logged and recorded as the
/// worker's fault (status and metrics), then `release_own` gives back what only the pump held, unread
/// events go back to the source, and the source is closed (a store persists buffered results and releases
/// its held claims). The cleanup is contained too: a second panic leaves the claims to their deadline.
fn contain_panic<P>(
    shared: &Shared,
    pump: &mut P,
    run: impl FnOnce(&mut P),
    release_own: impl FnOnce(&mut P, &mut Core),
) {
    let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(pump))) else {
        return;
    };
    let message = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string());
    let thread = std::thread::current().name().unwrap_or("pump").to_string();
    shared.fail(format!("the {thread} thread panicked: {message}"));
    let cleanup = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut core = shared.lock();
        release_own(pump, &mut core);
        release_unread(&mut core);
        core.source.close();
    }));
    if cleanup.is_err() {
        tracing::error!("cleaning up after the pump's panic panicked too; held claims come back after their deadline");
    }
}

/// The source's next due event, while the worker still claims (a draining worker waits for nothing).
fn due_while_running(shared: &Shared, core: &Core) -> Option<Instant> {
    if shared.phase() == Phase::Running {
        core.source.next_due()
    } else {
        None
    }
}

/// Waits a little when a step made no progress: spin, then yield, then short sleeps; but never past
/// `next_due`, when the source's next event becomes claimable (a rate-limited source). The sleep ends
/// [`DUE_SPIN_MARGIN`] before that and the last stretch is spent yielding: a sleep on this VM wakes 60-100 us
/// late (50 us of default timer slack plus the wake-up; p99 ~100 us when quiet), which would otherwise be
/// added to every idle wake. Measured end to end (bench/end-to-end.ts, ring, 50 events/s, p50): 1.1 ms with
/// the plain 1 ms sleeps, 0.7 ms sleeping until the due time, 0.5 ms with the margin. The yielding costs at
/// most the margin per due event (20% of a core at 1000 events/s in theory, +6% process CPU measured; above
/// 5000 events/s the pump yields between all events); without a due event the worker sleeps as before.
///
/// `tried_at` is when the step that found nothing began claiming. A due time after it means the event was not
/// claimable yet when the step tried, even if that time has passed since: the pump yields and tries again at
/// once. Only an event already due at `tried_at` and still not claimed (no room) takes the plain backoff.
/// (Measured: treating every due time already past as "no room" slept a whole [`IDLE_SLEEP`] whenever the
/// due time fell between the claim and this check, which after the sleep-until-due-minus-margin is the common
/// case: due -> claim p50 1.9-3.0 ms instead of microseconds, on every runtime.)
fn idle(backoff: &crossbeam_utils::Backoff, next_due: Option<Instant>, tried_at: Instant) {
    match idle_wait(next_due, tried_at, Instant::now(), backoff.is_completed()) {
        IdleWait::YieldUntil(due) => {
            while Instant::now() < due {
                std::thread::yield_now();
            }
        }
        IdleWait::Sleep(d) => std::thread::sleep(d),
        IdleWait::Snooze => backoff.snooze(),
    }
}

/// How an idle pump waits (see [`idle`]).
#[derive(Debug, PartialEq, Eq)]
enum IdleWait {
    /// Yield until this instant (already past: try again at once).
    YieldUntil(Instant),
    Sleep(Duration),
    /// The backoff's spin or yield step.
    Snooze,
}

/// [`idle`]'s choice at `now`, for a step that began claiming at `tried_at`.
fn idle_wait(next_due: Option<Instant>, tried_at: Instant, now: Instant, backoff_completed: bool) -> IdleWait {
    match next_due.filter(|due| *due > tried_at) {
        Some(due) => {
            let wait = due.saturating_duration_since(now);
            if wait <= DUE_SPIN_MARGIN {
                IdleWait::YieldUntil(due)
            } else if backoff_completed {
                IdleWait::Sleep((wait - DUE_SPIN_MARGIN).min(IDLE_SLEEP))
            } else {
                IdleWait::Snooze
            }
        }
        None if backoff_completed => IdleWait::Sleep(IDLE_SLEEP),
        None => IdleWait::Snooze,
    }
}

/// The per-poll transport's pump: keeps the queue filled (backpressure: never more than its capacity) and
/// runs maintenance. Events leave the queue only through `poll_event_json`.
fn run_ffi_pump(shared: &Shared) {
    let mut batch = Vec::with_capacity(CLAIM_BATCH);
    let mut last_maintenance = Instant::now();
    let backoff = crossbeam_utils::Backoff::new();
    while !shared.stop.load(Ordering::Acquire) {
        let mut progress = false;
        let next_due;
        let tried_at;
        {
            let mut core = shared.lock();
            let core = &mut *core;
            let room = shared
                .config
                .ffi_queue_capacity
                .saturating_sub(core.ffi_queue.len())
                .min(CLAIM_BATCH);
            tried_at = Instant::now();
            if shared.phase() == Phase::Running && room > 0 && !core.source.is_exhausted() {
                let n = core.source.claim(room, &mut batch);
                core.dispatch.queued(n as u64);
                core.ffi_queue.extend(batch.drain(..));
                progress = n > 0;
            }
            let now = Instant::now();
            if now.duration_since(last_maintenance) >= MAINTENANCE_EVERY {
                last_maintenance = now;
                fail_expired(core, now);
                core.dispatch.check_starvation(now);
            }
            if finish_draining(shared, core, now, |_| {}) {
                return;
            }
            next_due = due_while_running(shared, core);
        }
        if progress {
            backoff.reset();
        } else {
            idle(&backoff, next_due, tried_at);
        }
    }
}

/// The ring transport's pump: claims only while the events ring has room, serialises each event straight
/// into the ring, learns from the consumer position which events have been read, drains completions, rings
/// the doorbell for a sleeping consumer, and runs maintenance.
struct RingPump {
    shared: Arc<Shared>,
    region: Arc<Region>,
    events: Producer<MappedRing>,
    completions: Consumer<MappedRing>,
    doorbell: Doorbell,
    /// Claimed events not yet written (the ring filled up mid-batch); written first next time.
    carry: VecDeque<SourcedEvent>,
    batch: Vec<SourcedEvent>,
    /// Running estimate of an event's footprint, for sizing claims and hinting frame placement.
    average_event: usize,
    /// Ids of events the consumer passed in this step (reused buffer).
    newly_read: Vec<Uuid>,
    /// The largest event the events ring carries ([`WorkerConfig::max_event_bytes`]).
    max_event: usize,
    /// The idle-wake diagnostic (`TASKER_WAKE_LEGS`), None unless asked for at bootstrap.
    legs: Option<Box<WakeLegs>>,
    /// A tree payload serialised before it is written (reused; see [`RingPump::write_event`]).
    tree_text: Vec<u8>,
}

/// Above this, the tree payload buffer is given back after use (one huge event must not pin its memory).
const TREE_TEXT_KEEP: usize = 1 << 20;

/// Writes one event into the events ring. A text payload is copied in; a tree is first serialised into
/// `tree_text` (reused), then copied: serde_json writes a 2.7 KB event in ~200 small pieces, and through the
/// ring's writer (bounds, fragment and message-limit checks per piece) that cost 0.8 us more than into a
/// `Vec` (per_event bench: 3.0 us against 1.95 us serialise-only; issue 21), where one extra copy costs
/// ~20-40 ns.
fn write_event(
    events: &mut Producer<MappedRing>,
    tree_text: &mut Vec<u8>,
    payload: &EventPayload,
    hint: usize,
) -> Result<(), WriteError> {
    match payload {
        EventPayload::Text(_) => events.try_write_with(record_type::STEP_EVENT, hint, |w| payload.write_to(w)),
        EventPayload::Tree(tree) => {
            tree_text.clear();
            // Into a Vec a JSON value cannot fail: its keys are strings and the writer never errs.
            serde_json::to_writer(&mut *tree_text, tree).expect("a JSON value serialises into memory");
            let text: &[u8] = tree_text;
            let written = events.try_write_with(record_type::STEP_EVENT, text.len(), |w| io::Write::write_all(w, text));
            if tree_text.capacity() > TREE_TEXT_KEEP {
                *tree_text = Vec::new();
            }
            written
        }
    }
}

impl RingPump {
    fn new(
        shared: Arc<Shared>,
        region: Arc<Region>,
        events: Producer<MappedRing>,
        completions: Consumer<MappedRing>,
        doorbell: Doorbell,
    ) -> Self {
        let max_event =
            (shared.config.max_event_bytes()).map_or(usize::MAX, |n| usize::try_from(n).unwrap_or(usize::MAX));
        Self {
            shared,
            region,
            events,
            completions,
            doorbell,
            carry: VecDeque::with_capacity(CLAIM_BATCH),
            batch: Vec::with_capacity(CLAIM_BATCH),
            average_event: 4096,
            newly_read: Vec::with_capacity(CLAIM_BATCH),
            max_event,
            legs: None,
            tree_text: Vec::new(),
        }
    }

    fn run(&mut self) {
        let mut last_maintenance = Instant::now();
        let backoff = crossbeam_utils::Backoff::new();
        let waker = self.shared.lock().source.waker();
        let quiet_park = if waker.is_some() { QUIET_PARK_WOKEN } else { QUIET_PARK };
        if let Some(waker) = waker {
            waker.register_current();
        }
        // Since when nothing has been outstanding (None: something is, or a step made progress).
        let mut quiet_since: Option<Instant> = None;
        while !self.shared.stop.load(Ordering::Acquire) {
            let shared = Arc::clone(&self.shared);
            let mut core = shared.lock();
            let now = Instant::now();
            let position = self.events.consumer_position();
            core.dispatch.consumer_at(position, now, &mut self.newly_read);
            if !self.newly_read.is_empty() {
                core.source.read(&self.newly_read);
                self.newly_read.clear();
            }
            let mut progress = self.drain_completions(&mut core);
            match shared.phase() {
                Phase::Running => progress |= self.fill_events(&mut core),
                // Claimed but never written: no handler will see them, so they go back at once.
                Phase::Draining => self.release_carry(&mut core),
                Phase::Stopped => {}
            }
            if now.duration_since(last_maintenance) >= MAINTENANCE_EVERY {
                last_maintenance = now;
                self.maintain(&mut core, now);
            }
            if finish_draining(&shared, &mut core, now, |core| self.seal_events(core)) {
                self.release_carry(&mut core);
                // The mapping lives on in every Arc (the TS reader's included); only the name goes.
                let _ = self.region.unlink();
                return;
            }
            let next_due = due_while_running(&shared, &core);
            let backlog = self.events.position().wrapping_sub(position);
            let nothing_outstanding = core.dispatch.outstanding() == 0 && self.carry.is_empty() && next_due.is_none();
            drop(core);
            if progress {
                backoff.reset();
                quiet_since = None;
                if backlog >= PACE_BACKLOG && shared.phase() == Phase::Running {
                    std::thread::sleep(PACE_SLEEP);
                }
            } else {
                self.doorbell.accept_pending();
                let since = match (nothing_outstanding, quiet_since) {
                    (false, _) => None,
                    (true, None) => Some(now),
                    (true, Some(since)) => Some(since),
                };
                quiet_since = since;
                if since.is_some_and(|since| now.duration_since(since) >= QUIET_AFTER) {
                    std::thread::park_timeout(quiet_park);
                } else {
                    idle(&backoff, next_due, now);
                }
            }
        }
        let shared = Arc::clone(&self.shared);
        let mut core = shared.lock();
        // Stopped: the source gives back what it holds on close, so no unread event may stay readable.
        self.seal_events(&mut core);
        self.release_carry(&mut core);
    }

    /// Seals the events ring (layout 1.1): from here on the TS reader delivers nothing it had not claimed,
    /// so the events after its claim can go back to the source without being run twice. What it claimed
    /// counts as read (in flight). Idempotent.
    fn seal_events(&mut self, core: &mut Core) {
        let read_up_to = match self.events.seal() {
            SealOutcome::Claimed { up_to } => up_to,
            SealOutcome::Unclaimed { consumer_position } => {
                if self.events.consumer_liveness().0 != 0 {
                    tracing::warn!(
                        "the events ring's consumer does not claim (layout 1.0): events after its position go back \
                         to the source, and it may still deliver some of them"
                    );
                }
                consumer_position
            }
            SealOutcome::ClaimFault {
                claim,
                consumer_position,
                producer_position,
            } => {
                tracing::error!(
                    claim,
                    consumer_position,
                    producer_position,
                    "the events ring's claim word is impossible; every published event counts as read"
                );
                producer_position
            }
        };
        core.dispatch
            .consumer_at(read_up_to, Instant::now(), &mut self.newly_read);
        if !self.newly_read.is_empty() {
            core.source.read(&self.newly_read);
            self.newly_read.clear();
        }
    }

    /// Gives claimed events that never reached the ring back to the source.
    fn release_carry(&mut self, core: &mut Core) {
        for event in self.carry.drain(..) {
            core.source.release(event.event_id, event.step_uuid);
        }
    }

    fn drain_completions(&mut self, core: &mut Core) -> bool {
        let shared = &self.shared;
        // Each payload is copied out of shared memory once, and only the copy is validated and handed on: the
        // peer can still write the ring's bytes, so a result checked in place could differ from the one the
        // source persists (issue 20). Allocated on the first record, reused for the rest of the batch.
        let mut copy = Vec::new();
        let outcome = self.completions.read_batch(COMPLETION_BATCH, |m| {
            copy.clear();
            copy.extend_from_slice(m.payload);
            apply_record(shared, core, m.record_type, &copy)
        });
        match outcome {
            Ok(n) => n > 0,
            Err(e) => {
                self.shared.fail(format!("the completions ring is corrupt: {e}"));
                false
            }
        }
    }

    /// Claims while the ring has room for them and writes each straight into it.
    fn fill_events(&mut self, core: &mut Core) -> bool {
        if self.carry.is_empty() && !core.source.is_exhausted() {
            let room = self.events.free_space() / self.average_event.max(64);
            if room > 0 {
                core.source.claim(room.min(CLAIM_BATCH), &mut self.batch);
                if let Some(legs) = self.legs.as_mut() {
                    legs.claimed(self.batch.iter().map(|e| e.event_id));
                }
                self.carry.extend(self.batch.drain(..));
            }
        }
        if let Some(legs) = self.legs.as_mut() {
            legs.pass_begins();
        }
        let mut wrote = false;
        while let Some(event) = self.carry.front() {
            let start = self.events.position();
            // The hint is also the size the ring checks for "never fits": the event's own length when known,
            // otherwise the running average, never past what the ring can carry (issue 20: the first events,
            // at the 4 KiB starting average, were refused by a 4 KiB ring whatever their size).
            let hint = event
                .payload
                .text_len()
                .unwrap_or_else(|| self.average_event.min(self.max_event));
            let written = write_event(&mut self.events, &mut self.tree_text, &event.payload, hint);
            match written {
                Ok(()) => {
                    let end = self.events.position();
                    let footprint = end.wrapping_sub(start) as usize;
                    self.average_event = (self.average_event * 7 + footprint) / 8;
                    core.dispatch.written(end, event.event_id, event.step_uuid);
                    if let Some(legs) = self.legs.as_mut() {
                        legs.published(event.event_id);
                    }
                    self.carry.pop_front();
                    wrote = true;
                }
                Err(WriteError::Full { .. }) => break,
                Err(e @ WriteError::ConsumerPositionCorrupt { .. }) => {
                    // The reader's side of the events ring is broken: nothing more can be delivered.
                    self.shared.fail(format!("the events ring is corrupt: {e}"));
                    break;
                }
                Err(e) => {
                    // This event can never be written (larger than the message limit): fail it, keep going.
                    let event = self.carry.pop_front().expect("front exists");
                    tracing::error!(event_id = %event.event_id, error = %e, "step event cannot be dispatched");
                    let why = match e {
                        WriteError::NeverFits { .. } => {
                            format!(
                                "{e}: {}",
                                undeliverable_text(&self.shared.config, self.max_event as u64)
                            )
                        }
                        _ => e.to_string(),
                    };
                    let result = StepResult::undeliverable(event.step_uuid, &why);
                    core.dispatch.queued(1);
                    core.dispatch.polled(event.event_id, event.step_uuid, Instant::now());
                    let _ = core
                        .dispatch
                        .complete(event.event_id.to_string().as_bytes(), &result.json);
                    core.source.complete(event.event_id, &result);
                }
            }
        }
        if wrote && self.events.consumer_needs_wakeup() {
            if let Some(legs) = self.legs.as_mut() {
                legs.ring_begins();
            }
            self.doorbell.ring();
            if let Some(legs) = self.legs.as_mut() {
                legs.rang();
            }
            // The kernel wakes the reader onto this thread's CPU (a socket wake-up is a sync wake-up), where
            // it waited for the pump's next ~7 idle steps of spinning, ~30 us; yielding at once lets it run
            // (perf sched, idle wake on Node: wake-up -> running p50 29 us -> 7 us, 387 of 398 wakes on
            // the pump's CPU). Only a ring pays it: a reader busy draining is never rung.
            std::thread::yield_now();
        }
        wrote
    }

    fn maintain(&mut self, core: &mut Core, now: Instant) {
        fail_expired(core, now);
        core.dispatch.check_starvation(now);
        self.events.heartbeat();
        self.completions.heartbeat();
        let fill = |used: usize, cap: u32| (used as f64 / cap as f64).to_bits();
        let layout = self.region.layout();
        let events_used = self.events.position().wrapping_sub(self.events.consumer_position()) as usize;
        self.shared
            .events_fill
            .store(fill(events_used, layout.rings[0].capacity), Ordering::Relaxed);
        let completions_used = self.completions.pending_bytes();
        self.shared
            .completions_fill
            .store(fill(completions_used, layout.rings[1].capacity), Ordering::Relaxed);
        if let Err(e) = self.region.check_size() {
            self.shared
                .fail(format!("the region file changed size under the worker: {e}"));
        }
    }
}

#[cfg(test)]
mod idle_tests {
    use super::{idle_wait, IdleWait, DUE_SPIN_MARGIN, IDLE_SLEEP};
    use std::time::{Duration, Instant};

    #[test]
    fn an_event_that_became_due_after_the_claim_is_tried_again_at_once() {
        let tried_at = Instant::now();
        let due = tried_at + Duration::from_micros(5);
        let now = due + Duration::from_micros(10); // the due time passed between the claim and the check
        assert_eq!(idle_wait(Some(due), tried_at, now, true), IdleWait::YieldUntil(due));
    }

    #[test]
    fn an_event_due_before_the_claim_and_not_claimed_takes_the_backoff() {
        let tried_at = Instant::now();
        let due = tried_at - Duration::from_micros(5); // due, yet not claimed: no room
        assert_eq!(
            idle_wait(Some(due), tried_at, tried_at, true),
            IdleWait::Sleep(IDLE_SLEEP)
        );
        assert_eq!(idle_wait(Some(due), tried_at, tried_at, false), IdleWait::Snooze);
    }

    #[test]
    fn a_far_due_time_sleeps_until_the_margin_before_it_and_a_near_one_yields() {
        let now = Instant::now();
        let far = now + Duration::from_micros(700);
        assert_eq!(
            idle_wait(Some(far), now, now, true),
            IdleWait::Sleep(Duration::from_micros(700) - DUE_SPIN_MARGIN)
        );
        let very_far = now + Duration::from_secs(1);
        assert_eq!(idle_wait(Some(very_far), now, now, true), IdleWait::Sleep(IDLE_SLEEP));
        let near = now + DUE_SPIN_MARGIN / 2;
        assert_eq!(idle_wait(Some(near), now, now, true), IdleWait::YieldUntil(near));
        assert_eq!(idle_wait(None, now, now, true), IdleWait::Sleep(IDLE_SLEEP));
    }
}
