//! `libtasker_worker`: the C ABI the TypeScript worker loads (koffi on Node, `bun:ffi`, `Deno.dlopen`).
//!
//! A thin layer over [`tasker_worker_core::Worker`] (the `tasker-worker-core` crate): one worker per process behind one global mutex, JSON in and
//! out as C strings, and the region mapping handed out for the ring transport. Every function catches
//! panics (none crosses the boundary), checks every pointer for NULL and every string for UTF-8, and
//! returns at once: no call ever waits on JS (design.md section 3).
//!
//! Ownership: every `char*` returned here is owned by the caller and must be freed with
//! [`free_rust_string`] (once). Strings passed in are borrowed for the call only. A pointer from
//! [`map_ring_region_handle`] stays valid until its handle is given to [`release_ring_region_handle`] (from
//! [`map_ring_region`], until the matching [`release_ring_region`]), whatever happens to the worker; no view
//! into the mapping may be used after that release.
//!
//! Logging: one tracing subscriber, installed by the first bootstrap at its `log_level`, prints to stderr
//! (unless `log_stderr` is false) and buffers every record for [`poll_worker_logs`] (`logs.rs`).
//!
//! `include/tasker_worker.h` is generated from this file by cbindgen (see `tests/header.rs`).

mod client;
mod logs;

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::ffi::{c_char, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr::null_mut;
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::time::Duration;
use tasker_ring::layout::{LAYOUT_MAJOR, LAYOUT_MINOR};
use tasker_ring::Region;
use tasker_worker_core::{DispatchMetrics, Phase, Worker, WorkerConfig};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The major version of this library's C ABI: bump it when an export's signature or meaning changes (a
/// new export needs no bump: callers look functions up by name). Reported by `tasker_worker_abi_version`.
pub const TASKER_WORKER_ABI_MAJOR: u32 = 1;

// The packing of `tasker_worker_abi_version` has 16 bits for the ABI major and 8 for each layout number.
const _: () = assert!(TASKER_WORKER_ABI_MAJOR >> 16 == 0 && (LAYOUT_MAJOR | LAYOUT_MINOR) >> 8 == 0);

/// `tasker_worker_abi_version()`'s answer.
const ABI_VERSION: u32 = (TASKER_WORKER_ABI_MAJOR << 16) | ((LAYOUT_MAJOR as u32) << 8) | (LAYOUT_MINOR as u32);

/// The process's worker: `None` until the first successful bootstrap; a stopped worker stays here (its
/// status and metrics stay readable) until a new bootstrap replaces it.
static WORKER: Mutex<Option<Worker>> = Mutex::new(None);

/// Stopped workers a bootstrap replaced while their source was still closing (a store flushing to an
/// unreachable database): kept until closed, so that neither the bootstrap nor the drop waits for it.
static CLOSING: Mutex<Vec<Worker>> = Mutex::new(Vec::new());

/// How long `stop_worker` waits, off the global lock, for the source to close before it returns anyway
/// (the closing goes on in the background; `is_worker_running` stays true until it ends).
const STOP_WAIT: Duration = Duration::from_secs(1);

/// Outstanding mappings handed out, each keeping its region mapped until released, even after the worker
/// that created it is gone.
static MAPPINGS: Mutex<Mappings<Arc<Region>>> = Mutex::new(Mappings::new());

/// The tracing subscriber (level from the first bootstrap's `log_level`; stderr if its `log_stderr`; the
/// buffer of `poll_worker_logs`) is installed once.
static LOGGING: Once = Once::new();

/// The mappings handed out: by handle ([`map_ring_region_handle`]: one handle per call, never reused, so a
/// stale handle can only ever name its own, released mapping) and, for callers of the first ABI text, by
/// base address ([`map_ring_region`]: counted per address). `R` keeps a mapping alive (the region's `Arc`).
struct Mappings<R> {
    by_handle: BTreeMap<u64, R>,
    by_base: BTreeMap<usize, (R, usize)>,
    last_handle: u64,
}

impl<R> Mappings<R> {
    const fn new() -> Self {
        Self {
            by_handle: BTreeMap::new(),
            by_base: BTreeMap::new(),
            last_handle: 0,
        }
    }

    /// One more holder of the mapping `region`, released by the handle returned (never 0).
    fn map_handle(&mut self, region: R) -> u64 {
        self.last_handle += 1;
        self.by_handle.insert(self.last_handle, region);
        self.last_handle
    }

    /// Releases the holder `handle`; `None` when no outstanding mapping has it (never handed out, or
    /// released already): a newer mapping, even at the same address, is never touched.
    fn release_handle(&mut self, handle: u64) -> Option<R> {
        self.by_handle.remove(&handle)
    }

    /// One more holder of the mapping `region` at `base`, counted by address (the first ABI text).
    fn map_base(&mut self, base: usize, region: R) {
        self.by_base.entry(base).or_insert((region, 0)).1 += 1;
    }

    /// Releases one address-counted holder at `base`: `Err` when there is none (mappings taken by handle
    /// are released only by their handle). `Ok(Some)` when it was the last one.
    fn release_base(&mut self, base: usize) -> Result<Option<R>, ()> {
        let (_, count) = self.by_base.get_mut(&base).ok_or(())?;
        *count -= 1;
        if *count > 0 {
            return Ok(None);
        }
        Ok(self.by_base.remove(&base).map(|(region, _)| region))
    }
}

fn lock_worker() -> MutexGuard<'static, Option<Worker>> {
    // A panic caught while the lock was held poisons it; the worker's state is consistent per call.
    WORKER.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_mappings() -> MutexGuard<'static, Mappings<Arc<Region>>> {
    MAPPINGS.lock().unwrap_or_else(|p| p.into_inner())
}

fn lock_closing() -> MutexGuard<'static, Vec<Worker>> {
    CLOSING.lock().unwrap_or_else(|p| p.into_inner())
}

/// Keeps a replaced worker until its source is closed (dropping it now would wait for that); drops those
/// that have finished.
fn retire(worker: Option<Worker>) {
    let mut closing = lock_closing();
    closing.extend(worker);
    let finished: Vec<Worker> = {
        let (still, done) = std::mem::take(&mut *closing).into_iter().partition(Worker::is_closing);
        *closing = still;
        done
    };
    drop(closing);
    // Closed already: dropping joins threads that have ended.
    drop(finished);
}

/// Installs the process's subscriber once: a registry with one level filter (the first bootstrap's
/// `log_level`) in front of the stderr printer (only if `log_stderr`) and the buffer of `poll_worker_logs`.
fn init_logging(config: &WorkerConfig) {
    LOGGING.call_once(|| {
        let level = config
            .log_level
            .parse::<tracing::Level>()
            .unwrap_or(tracing::Level::INFO);
        let stderr = config
            .log_stderr
            .then(|| tracing_subscriber::fmt::layer().with_writer(std::io::stderr));
        // try_init: a host that already installed a global subscriber keeps it (and nothing is buffered).
        let _ = tracing_subscriber::registry()
            .with(LevelFilter::from_level(level))
            .with(stderr)
            .with(logs::BufferLayer::global())
            .try_init();
    });
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    }
}

/// Hands `text` to the caller as a C string it frees with `free_rust_string` (NULL if it held a NUL byte,
/// which serde_json never writes: it escapes U+0000).
fn into_c_string(text: String) -> *mut c_char {
    match CString::new(text) {
        Ok(s) => s.into_raw(),
        Err(e) => {
            tracing::error!(error = %e, "string for the caller holds a NUL byte; returning NULL");
            null_mut()
        }
    }
}

fn error_json(message: impl Into<String>) -> Value {
    json!({ "status": "error", "message": message.into() })
}

/// Runs `f` with panics caught; a panic becomes `fallback` (logged).
fn guard<T>(name: &str, fallback: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = panic_message(payload.as_ref());
        let _ = catch_unwind(AssertUnwindSafe(|| {
            tracing::error!(function = name, panic = why, "caught a panic")
        }));
        fallback
    })
}

/// Runs `f` with panics caught and returns its JSON as an owned C string; a panic becomes
/// `{"status":"error","message":...}`.
fn guard_json(name: &str, f: impl FnOnce() -> Value) -> *mut c_char {
    match catch_unwind(AssertUnwindSafe(|| into_c_string(f().to_string()))) {
        Ok(p) => p,
        Err(payload) => {
            let why = panic_message(payload.as_ref());
            guard(name, null_mut(), || {
                tracing::error!(function = name, panic = why, "caught a panic");
                into_c_string(error_json(format!("{name} failed: internal panic: {why}")).to_string())
            })
        }
    }
}

/// Reads a string argument: an error message when it is NULL or not UTF-8.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string that stays valid and unchanged for the call.
unsafe fn str_arg<'a>(p: *const c_char, what: &str) -> Result<&'a str, String> {
    if p.is_null() {
        return Err(format!("{what} is NULL"));
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string valid for the call.
    let text = unsafe { CStr::from_ptr(p) };
    text.to_str().map_err(|e| {
        format!(
            "{what} is not valid UTF-8 (first bad byte at offset {})",
            e.valid_up_to()
        )
    })
}

/// The bytes of a C string argument; NULL reads as empty (which every consumer of it refuses).
///
/// # Safety
/// `p` is NULL or a NUL-terminated string valid for the call.
unsafe fn bytes_arg<'a>(p: *const c_char) -> &'a [u8] {
    if p.is_null() {
        return b"";
    }
    // SAFETY: non-null, and the caller guarantees a NUL-terminated string valid for the call.
    unsafe { CStr::from_ptr(p) }.to_bytes()
}

/// Starts the worker. `config_json` is the bootstrap configuration (`WorkerConfig`: `namespace`,
/// `log_level`, `log_stderr`, `transport` "ring" | "ffi", `region_dir`, ring sizes, timeouts, `source`,
/// `database_url`, `templates_path`); NULL or "" means the defaults. Unknown keys are refused. The task
/// templates of `templates_path` (else `TASKER_TEMPLATE_PATH`) are registered first; one that does not load
/// fails the bootstrap. The store the worker reads becomes `client_call`'s default store.
///
/// Returns JSON (free with `free_rust_string`):
/// - `{"status":"started","handle_id","worker_id","message","transport","region_path","doorbell_path",
///   "layout_major","layout_minor"}` (`region_path` and `doorbell_path` are null on the ffi transport;
///   `handle_id` equals `worker_id`: one handle per worker);
/// - `{"status":"already_running","worker_id","handle_id","message"}` when a worker is running or draining
///   (the running one's ids; nothing changes);
/// - `{"status":"error","message"}` for bad input (invalid UTF-8 or JSON, unknown keys, bad values) or a
///   failed set-up; nothing changes: a running worker keeps running.
///
/// A stopped worker is replaced by a successful bootstrap. The `log_level` and `log_stderr` of the first
/// bootstrap set up logging (stderr and the `poll_worker_logs` buffer) for the life of the process.
///
/// # Safety
/// `config_json` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn bootstrap_worker(config_json: *const c_char) -> *mut c_char {
    guard_json("bootstrap_worker", || {
        let text = if config_json.is_null() {
            ""
        } else {
            // SAFETY: non-null; the caller guarantees a NUL-terminated string valid for the call.
            match unsafe { str_arg(config_json, "config_json") } {
                Ok(text) => text,
                Err(why) => return error_json(why),
            }
        };
        let config = match WorkerConfig::from_json(text) {
            Ok(config) => config,
            Err(why) => return error_json(why.to_string()),
        };
        let mut slot = lock_worker();
        if let Some(running) = slot.as_ref().filter(|w| w.is_running()) {
            return json!({
                "status": "already_running",
                "worker_id": running.worker_id(),
                "handle_id": running.worker_id(),
                "message": "a worker is already running in this process; stop it first",
            });
        }
        init_logging(&config);
        // Registered before the worker claims: its steps' events need their templates.
        if let Err(why) = client::load_templates(config.templates_path.clone()) {
            return error_json(format!("templates_path: {why}"));
        }
        tracing::debug!(
            namespace = %config.namespace,
            transport = ?config.transport,
            log_stderr = config.log_stderr,
            "bootstrap config accepted"
        );
        let store_url = config.store_url();
        let worker = match Worker::bootstrap(config) {
            Ok(worker) => worker,
            Err(e) => return error_json(e.to_string()),
        };
        client::worker_bootstrapped(store_url);
        let status = worker.status();
        let result = json!({
            "status": "started",
            "handle_id": worker.worker_id(),
            "worker_id": worker.worker_id(),
            "message": format!("worker started on the {} transport", status.transport),
            "transport": status.transport,
            "region_path": status.region_path,
            "doorbell_path": status.doorbell_path,
            "layout_major": LAYOUT_MAJOR,
            "layout_minor": LAYOUT_MINOR,
            "max_event_bytes": status.max_event_bytes,
        });
        // The stopped predecessor (if any) is dropped once its source is closed; its pump has exited.
        let predecessor = slot.replace(worker);
        drop(slot);
        retire(predecessor);
        result
    })
}

/// The worker's status as JSON (`running`, `worker_id`, `worker_core_status` "running" | "draining" |
/// "stopped", `transport`, `region_path`, `doorbell_path`, `namespace`), or `{"running":false}` when no
/// worker was ever started. Free with `free_rust_string`.
#[no_mangle]
pub extern "C" fn get_worker_status() -> *mut c_char {
    guard_json("get_worker_status", || match lock_worker().as_ref() {
        Some(worker) => serde_json::to_value(worker.status()).unwrap_or_else(|e| error_json(e.to_string())),
        None => json!({ "running": false }),
    })
}

/// Stops the worker now (its pump exits within a step; nothing waits on JS) and unlinks its region and
/// doorbell files; mappings handed out stay valid until released. Safe to call twice. Returns
/// `{"status":"stopped","worker_id"}`, or `{"status":"not_running"}` when no worker is running. Free
/// with `free_rust_string`.
///
/// The worker's source is closed after the stop (a step store persists buffered results and releases
/// held claims). This call waits for that at most one second, without holding the library's lock; when
/// the store is unreachable the closing goes on in the background (at most about 10 s more):
/// `get_worker_status` shows `"closing":true` and `is_worker_running` stays true until it ends, and the
/// library must stay loaded meanwhile.
#[no_mangle]
pub extern "C" fn stop_worker() -> *mut c_char {
    guard_json("stop_worker", || {
        let (result, closed) = {
            let mut slot = lock_worker();
            match slot.as_mut() {
                Some(worker) => {
                    let was_running = worker.is_running();
                    // Also for a worker that finished a graceful shutdown by itself: unlinks its region file.
                    worker.begin_stop();
                    let result = if was_running {
                        json!({ "status": "stopped", "worker_id": worker.worker_id() })
                    } else {
                        json!({ "status": "not_running" })
                    };
                    (result, Some(worker.closed_signal()))
                }
                None => (json!({ "status": "not_running" }), None),
            }
        };
        // Off the lock: status, metrics and logs stay answerable while a store flush is slow.
        if let Some(closed) = closed {
            if !closed.wait(Some(STOP_WAIT)) {
                tracing::warn!(
                    "stop_worker: the step store did not take the last results and claim releases within {} ms; \
                     it goes on trying in the background",
                    STOP_WAIT.as_millis()
                );
            }
        }
        result
    })
}

/// Begins a graceful shutdown and returns at once: no new events are claimed; events already handed out
/// may still be read and completed until the configured `shutdown_timeout_ms`, then the rest fail as
/// timeouts and the worker stops by itself (watch `get_worker_status`). Returns
/// `{"status":"draining","worker_id","pending_count","in_flight_count"}`,
/// `{"status":"stopped","worker_id"}` (it had already stopped) or `{"status":"not_running"}` (no worker).
/// Free with `free_rust_string`.
#[no_mangle]
pub extern "C" fn transition_to_graceful_shutdown() -> *mut c_char {
    guard_json("transition_to_graceful_shutdown", || {
        let slot = lock_worker();
        let Some(worker) = slot.as_ref() else {
            return json!({ "status": "not_running" });
        };
        match worker.begin_graceful_shutdown() {
            Phase::Running | Phase::Draining => {
                let m = worker.metrics();
                json!({
                    "status": "draining",
                    "worker_id": worker.worker_id(),
                    "pending_count": m.pending_count,
                    "in_flight_count": m.in_flight_count,
                })
            }
            Phase::Stopped => json!({ "status": "stopped", "worker_id": worker.worker_id() }),
        }
    })
}

/// Whether a worker is running or draining, or a stopped one is still closing its source (after
/// `stop_worker`, see there): while true, the library's threads run and it must stay loaded.
#[no_mangle]
pub extern "C" fn is_worker_running() -> bool {
    guard("is_worker_running", false, || {
        lock_worker().as_ref().is_some_and(|w| w.is_running() || w.is_closing())
            || lock_closing().iter().any(Worker::is_closing)
    })
}

/// The dispatch metrics as JSON (`pending_count`, `in_flight_count`, `completed_count`, `failed_count`,
/// `starvation_detected`, `starving_event_count`, `oldest_in_flight_age_ms`, `refused_completions`,
/// `timed_out_count`, `released_count`, `events_ring_fill`, `completions_ring_fill`, and `source` when the
/// worker is fed by the step store); all zero / false when no worker was started. Free with
/// `free_rust_string`.
#[no_mangle]
pub extern "C" fn get_ffi_dispatch_metrics() -> *mut c_char {
    guard_json("get_ffi_dispatch_metrics", || {
        let metrics = match lock_worker().as_ref() {
            Some(worker) => worker.metrics(),
            None => DispatchMetrics::default(),
        };
        serde_json::to_value(metrics).unwrap_or_else(|e| error_json(e.to_string()))
    })
}

/// Counts and logs (tracing warn) events in flight past the starvation threshold. The worker also does
/// this itself every 100 ms; this call only makes it happen now.
#[no_mangle]
pub extern "C" fn check_starvation_warnings() {
    guard("check_starvation_warnings", (), || {
        if let Some(worker) = lock_worker().as_ref() {
            worker.check_starvation();
        }
    })
}

/// Fails events in flight longer than the completion timeout (`error_type: "ffi_timeout"`, retryable).
/// The worker also does this itself every 100 ms; this call only makes it happen now.
#[no_mangle]
pub extern "C" fn cleanup_timeouts() {
    guard("cleanup_timeouts", (), || {
        if let Some(worker) = lock_worker().as_ref() {
            let failed = worker.cleanup_timeouts();
            if failed > 0 {
                tracing::debug!(failed, "cleanup_timeouts failed timed-out events");
            }
        }
    })
}

/// Frees a string returned by this library. NULL is a no-op.
///
/// # Safety
/// `p` is NULL or a pointer returned by a function of this library and not freed yet; it is not used
/// afterwards.
#[no_mangle]
pub unsafe extern "C" fn free_rust_string(p: *mut c_char) {
    guard("free_rust_string", (), || {
        if !p.is_null() {
            // SAFETY: the caller guarantees `p` came from `CString::into_raw` here and is freed only once.
            drop(unsafe { CString::from_raw(p) });
        }
    })
}

/// The per-poll transport (the seed's baseline): the next step event as JSON, or NULL when there is none
/// (nothing queued, no running worker, or the ring transport). The event is in flight from this call on.
/// Free with `free_rust_string`.
#[no_mangle]
pub extern "C" fn poll_step_events() -> *mut c_char {
    guard("poll_step_events", null_mut(), || {
        let slot = lock_worker();
        // A stopped worker's queue is not handed out: nobody would take its results any more.
        match slot
            .as_ref()
            .filter(|w| w.is_running())
            .and_then(Worker::poll_event_json)
        {
            Some(json) => into_c_string(json),
            None => null_mut(),
        }
    })
}

/// The per-poll transport: completes the event `event_id` (canonical UUID text) with `result_json` (a
/// tasker `StepExecutionResult`: an object with `step_uuid` and `success`). Returns 1 when accepted, 0
/// when refused: NULL or non-UTF-8 argument, no worker, an unknown, already completed or timed-out
/// event, or a result missing `step_uuid` / `success`. Refusals by the worker are logged (warn) and
/// counted in `refused_completions`; an event whose result was refused as invalid stays in flight and can
/// still be completed. The strings are only borrowed for the call.
///
/// # Safety
/// Each argument is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn complete_step_event(event_id: *const c_char, result_json: *const c_char) -> i32 {
    // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call, for each argument.
    unsafe {
        answer_event(
            "complete_step_event",
            "completion",
            event_id,
            result_json,
            Worker::complete_bytes,
        )
    }
}

/// The per-poll transport (layout 1.1's GIVE_BACK record on the ring): gives back the event `event_id`,
/// read by a handler loop that will not run it (an `events()` loop that ended, an abort). The source
/// re-offers it without using an attempt. Returns 1 when given back, 0 when refused: NULL or non-UTF-8
/// argument, no worker, a stopped worker, or an event not in flight (never read, completed, given back,
/// timed out). Refusals are logged (warn) and counted in `refused_completions`.
///
/// # Safety
/// `event_id` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn give_back_step_event(event_id: *const c_char) -> i32 {
    // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call; the second
    // argument is a static empty C string.
    unsafe {
        answer_event(
            "give_back_step_event",
            "give-back",
            event_id,
            c"".as_ptr(),
            |w, id, _| w.give_back(id),
        )
    }
}

/// The per-poll transport (layout 1.1's CHECKPOINT record on the ring): the step of event `event_id`
/// yields with `checkpoint_json` (a JSON object: `step_uuid`, `cursor`, `items_processed`, optionally
/// `accumulated_results`). The store persists it and dispatches the step again with
/// `workflow_step.checkpoint` set; the attempt is not counted. Returns 1 when accepted, 0 when refused: NULL
/// or non-UTF-8 argument, no worker, a stopped worker, an event not in flight, a checkpoint that is not a
/// JSON object or names another step, or a source that keeps no checkpoints (the synthetic source; the event
/// then stays in flight). Refusals are logged (warn) and counted in `refused_completions`.
///
/// # Safety
/// Each argument is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn checkpoint_yield_step_event(event_id: *const c_char, checkpoint_json: *const c_char) -> i32 {
    // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call, for each argument.
    unsafe {
        answer_event(
            "checkpoint_yield_step_event",
            "checkpoint",
            event_id,
            checkpoint_json,
            Worker::checkpoint_yield,
        )
    }
}

/// The per-poll answers to an event (complete, give back, checkpoint): borrows both C strings as bytes,
/// hands them to the running worker, and returns 1 when it took them, 0 when refused (logged). NULL and
/// non-UTF-8 arguments go to the worker as bytes, which refuses and counts them like any bad answer.
///
/// # Safety
/// `event_id` and `json` are NULL or NUL-terminated strings valid for the call.
unsafe fn answer_event(
    call: &'static str,
    what: &'static str,
    event_id: *const c_char,
    json: *const c_char,
    apply: impl FnOnce(&Worker, &[u8], &[u8]) -> Result<(), tasker_worker_core::dispatch::Refusal>,
) -> i32 {
    guard(call, 0, || {
        // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call.
        let (id, json) = unsafe { (bytes_arg(event_id), bytes_arg(json)) };
        let slot = lock_worker();
        let Some(worker) = slot.as_ref() else {
            tracing::warn!(event_id = %String::from_utf8_lossy(id), "{what} refused: no worker");
            return 0;
        };
        match apply(worker, id, json) {
            Ok(()) => 1,
            Err(refusal) => {
                tracing::warn!(%refusal, "{what} refused");
                0
            }
        }
    })
}

/// The running worker's region, if it has one.
fn running_region() -> Option<Arc<Region>> {
    let slot = lock_worker();
    slot.as_ref()
        .filter(|w| w.is_running())
        .and_then(|w| w.region())
        .cloned()
}

/// The ring transport's set-up: the base address of the running worker's region mapping (the header
/// page, then the events and completions rings; layout-spec.md), with its length in bytes written to
/// `*len_out` and a handle for [`release_ring_region_handle`] to `*handle_out`. Returns NULL when either
/// pointer is NULL; returns NULL and writes 0 to both when no worker is running or it uses the ffi
/// transport.
///
/// The mapping stays valid until `release_ring_region_handle(handle)`, even if the worker stops or a new
/// one is bootstrapped meanwhile. Each call returns a new handle (the base is the same while the mapping
/// lives); handles are never reused, so releasing one twice, or one of an earlier mapping, is refused and
/// never releases a newer mapping, even one the system placed at the same address. No view into the
/// mapping may be used after its last release: reading it then is a SIGSEGV in every runtime. Close every
/// reader first, then release.
///
/// # Safety
/// `len_out` and `handle_out` are NULL or point to a writable `size_t` and `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn map_ring_region_handle(len_out: *mut usize, handle_out: *mut u64) -> *mut u8 {
    guard("map_ring_region_handle", null_mut(), || {
        if len_out.is_null() || handle_out.is_null() {
            tracing::warn!("map_ring_region_handle: len_out or handle_out is NULL");
            return null_mut();
        }
        let (base, len, handle) = match running_region() {
            Some(region) => {
                let (base, len) = (region.base_ptr(), region.mapped_len());
                (base, len, lock_mappings().map_handle(region))
            }
            None => (null_mut(), 0, 0),
        };
        // SAFETY: both are non-null and the caller guarantees they point to a writable size_t and uint64_t.
        unsafe {
            len_out.write(len);
            handle_out.write(handle);
        }
        base
    })
}

/// Releases the mapping handed out with `handle` by [`map_ring_region_handle`]. Returns 1 when released,
/// 0 for a handle that is not outstanding (0, never handed out, or released already); a newer mapping is
/// never released by an older handle. After the last release of a mapping the library may unmap it at any
/// time (at once if its worker was already replaced): no view into it may be used after this call
/// (SIGSEGV).
#[no_mangle]
pub extern "C" fn release_ring_region_handle(handle: u64) -> i32 {
    guard("release_ring_region_handle", 0, || {
        let released = lock_mappings().release_handle(handle);
        match released {
            // Unmapped (when this was the last owner) outside the lock.
            Some(region) => {
                drop(region);
                1
            }
            None => {
                tracing::warn!(handle, "release_ring_region_handle: not an outstanding mapping handle");
                0
            }
        }
    })
}

/// The first ABI text's form of [`map_ring_region_handle`], kept for programs written to it: the same
/// mapping, released by address with [`release_ring_region`]. Returns NULL when `len_out` is NULL;
/// returns NULL and writes 0 to `*len_out` when no worker is running or it uses the ffi transport.
/// Repeated calls return the same base and are counted.
///
/// Prefer the handle form: an address can name a newer mapping once an older one at the same address is
/// gone, so a stale second release by address would unmap memory another holder still reads.
///
/// # Safety
/// `len_out` is NULL or points to a writable `size_t`.
#[no_mangle]
pub unsafe extern "C" fn map_ring_region(len_out: *mut usize) -> *mut u8 {
    guard("map_ring_region", null_mut(), || {
        if len_out.is_null() {
            tracing::warn!("map_ring_region: len_out is NULL");
            return null_mut();
        }
        let Some(region) = running_region() else {
            // SAFETY: `len_out` is non-null and the caller guarantees it points to a writable size_t.
            unsafe { len_out.write(0) };
            return null_mut();
        };
        let (base, len) = (region.base_ptr(), region.mapped_len());
        lock_mappings().map_base(base as usize, region);
        // SAFETY: as above, `len_out` is non-null and writable.
        unsafe { len_out.write(len) };
        base
    })
}

/// Releases one [`map_ring_region`] of the mapping at `base`. Returns 1 when released, 0 for NULL or an
/// address with no outstanding `map_ring_region` (mappings taken with [`map_ring_region_handle`] are
/// released only by their handle, so a stale address never releases one of those). After the last
/// release the library may unmap the memory at any time (at once if its worker was already replaced): no
/// view into it may be used after this call (SIGSEGV).
#[no_mangle]
pub extern "C" fn release_ring_region(base: *const u8) -> i32 {
    guard("release_ring_region", 0, || {
        if base.is_null() {
            return 0;
        }
        let key = base as usize;
        let released = lock_mappings().release_base(key);
        match released {
            // Unmapped (when this was the last owner) outside the lock.
            Ok(last) => {
                drop(last);
                1
            }
            Err(()) => {
                tracing::warn!(
                    base = key,
                    "release_ring_region: not a mapping handed out by map_ring_region"
                );
                0
            }
        }
    })
}

/// The version of this library's C ABI and of the region layout it writes, packed in one number:
/// `(TASKER_WORKER_ABI_MAJOR << 16) | (LAYOUT_MAJOR << 8) | LAYOUT_MINOR`, i.e. bits 16-31 the ABI major,
/// bits 8-15 the layout major, bits 0-7 the layout minor (layout-spec.md; the same numbers as
/// `bootstrap_worker`'s `layout_major` / `layout_minor`). Callable before any bootstrap.
///
/// A caller compares the ABI major and the layout major with its own and refuses to go on when either
/// differs; any layout minor is accepted (layout-spec.md section 16).
#[no_mangle]
pub extern "C" fn tasker_worker_abi_version() -> u32 {
    guard("tasker_worker_abi_version", ABI_VERSION, || ABI_VERSION)
}

/// The library's log records since the last call, as a JSON array, oldest first, or NULL when there are
/// none. Free with `free_rust_string`. Each record is
/// `{"ts_unix_ms":u64,"level":"error"|"warn"|"info"|"debug"|"trace","target":str,"message":str,
/// "fields":{...}}`, where `fields` holds the event's other fields as JSON strings, numbers or bools
/// (Display / Debug values as strings).
///
/// Records are kept from the first bootstrap on, at its `log_level` (whatever its `log_stderr`), in one
/// process-wide buffer of at most 4096 records and 4 MiB of text (each message or field value cut to 8 KiB,
/// marked `...[truncated from N bytes]`). When it is full the oldest records are dropped, and the next call
/// returns first a record `{"level":"warn","target":"tasker_worker::logs","message":"N log records dropped
/// (buffer full)","fields":{"dropped":N}}`. Nothing is buffered when the host process had already installed
/// its own global tracing subscriber before the first bootstrap.
#[no_mangle]
pub extern "C" fn poll_worker_logs() -> *mut c_char {
    guard("poll_worker_logs", null_mut(), || match logs::drain_global() {
        Some(json) => into_c_string(json),
        None => null_mut(),
    })
}

/// Completions refused after they were sent, since the last call, as JSON
/// `{"refusals":[{"event_id","kind","message","at_unix_ms"}, ...],"dropped":N}` (oldest first), or NULL when
/// there are none (or no worker). Free with `free_rust_string`.
///
/// On the ring transport a completion is written into shared memory and the worker decides on it later:
/// `kind` is `not_in_flight` (never delivered, already completed or timed out), `invalid_result`,
/// `invalid_event_id` or `stopped`. On either transport a step store may refuse a result later:
/// `claim_lost` (the claim expired and the step went to another worker) or `store_invalid`. A per-poll
/// `complete_step_event`'s own refusal is its return value and is not repeated here. Every refusal is also
/// counted in the metrics (`refused_completions`, `source.refused`). At most 1024 are kept between two
/// calls; older ones are dropped and counted in `dropped`. The worker that was replaced by a new bootstrap
/// takes its undrained refusals with it.
#[no_mangle]
pub extern "C" fn poll_completion_refusals() -> *mut c_char {
    guard("poll_completion_refusals", null_mut(), || {
        let batch = match lock_worker().as_ref() {
            Some(worker) => worker.drain_refusals(),
            None => return null_mut(),
        };
        if batch.refusals.is_empty() && batch.dropped == 0 {
            return null_mut();
        }
        match serde_json::to_string(&batch) {
            Ok(json) => into_c_string(json),
            Err(e) => {
                tracing::error!(error = %e, "poll_completion_refusals: serialising failed");
                null_mut()
            }
        }
    })
}

/// The worker core's domain events since the last call, as JSON `{"events":[...],"dropped":N}` (oldest
/// first), or NULL when there are none. Free with `free_rust_string`.
///
/// Off until asked: the first call turns recording on, for the life of the process (before it nothing is
/// recorded or built; it may come before the first bootstrap). From then on the step store source records,
/// once the store has persisted each result: `step.completed`, `step.retry_requested` (a retryable failure,
/// ready again after a backoff), `step.failed` (for good) and `task.completed` (after the success that
/// completed the task's last step). Each event is in tasker-core's `NapiDomainEvent` shape:
/// `{"eventId","eventName","eventVersion":"1.0","metadata":{"taskUuid","stepUuid","stepName","namespace",
/// "correlationId","firedAt","firedBy"},"payload":{...}}`, `stepUuid` and `stepName` absent from task
/// events; a step event's payload is `{"execution_result":<the result JSON as persisted>,"attempts":N}`
/// (`"backoff_ms"` too for a retry; a result over 64 KiB is replaced by null and
/// `"execution_result_omitted_bytes"`), a task event's `{}`. The synthetic source records none. At most 4096
/// events and 4 MiB are kept between two calls; the oldest are dropped, counted in `dropped` and logged as a
/// warning. Events of every worker of the process go to the same log.
#[no_mangle]
pub extern "C" fn poll_domain_events() -> *mut c_char {
    guard("poll_domain_events", null_mut(), || {
        let batch = tasker_worker_core::domain_events::global().drain();
        if batch.events.is_empty() && batch.dropped == 0 {
            return null_mut();
        }
        into_c_string(batch.to_json())
    })
}

/// tasker-core's client calls over the step store, JSON in and out: `request_json` is
/// `{"op": "<op>", "args": {...}}` and the answer `{"success": true, "data": <json>}` or
/// `{"success": false, "error": "<message>", "recoverable": <bool>}`. Ops: `create_task`, `get_task`,
/// `list_tasks`, `cancel_task`, `list_task_steps`, `get_step`, `step_audit_history`, `health`,
/// `register_template` (crates/tasker-worker-ffi/README.md gives their args and data). The store is
/// `args.database_url` when given, else the last bootstrapped worker's. A malformed request or an unknown op
/// is `recoverable: false`; a store outage `recoverable: true`. Blocks the caller for the database round
/// trips (at most 3 s to reach a store not opened yet). Returns a string freed with `free_rust_string`;
/// never NULL except on allocation failure.
///
/// # Safety
/// `request_json` is NULL or a NUL-terminated string valid for the call.
#[no_mangle]
pub unsafe extern "C" fn client_call(request_json: *const c_char) -> *mut c_char {
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call.
        match unsafe { str_arg(request_json, "request_json") } {
            Ok(text) => client::call(text),
            Err(why) => json!({ "success": false, "error": why, "recoverable": false }),
        }
    }))
    .unwrap_or_else(|payload| {
        let why = panic_message(payload.as_ref());
        guard("client_call", (), || {
            tracing::error!(panic = why, "client_call caught a panic")
        });
        json!({ "success": false, "error": format!("client_call failed: internal panic: {why}"), "recoverable": false })
    });
    guard("client_call", null_mut(), || into_c_string(answer.to_string()))
}

/// A JS log record into the library's tracing, as one record of `poll_worker_logs` (target `js`, the
/// message, and the members of `fields_json` as its fields). `level`: 0 error, 1 warn, 2 info, 3 debug,
/// 4 trace; `fields_json` NULL or a JSON object. Returns 0 when accepted (the first bootstrap's `log_level`
/// filters it like any record; before the first bootstrap nothing is recorded), -1 for a bad level, -2 for
/// a NULL or non-UTF-8 message, -3 for fields that are not UTF-8 JSON of an object.
///
/// # Safety
/// `message` and `fields_json` are NULL or NUL-terminated strings valid for the call.
#[no_mangle]
pub unsafe extern "C" fn log_message(level: i32, message: *const c_char, fields_json: *const c_char) -> i32 {
    guard("log_message", logs::LogInputError::Message as i32, || {
        // SAFETY: the caller guarantees NULL or a NUL-terminated string valid for the call.
        let Ok(message) = (unsafe { str_arg(message, "message") }) else {
            return logs::LogInputError::Message as i32;
        };
        let fields = if fields_json.is_null() {
            None
        } else {
            // SAFETY: non-null; the caller guarantees a NUL-terminated string valid for the call.
            match unsafe { str_arg(fields_json, "fields_json") } {
                Ok(text) => Some(text),
                Err(_) => return logs::LogInputError::Fields as i32,
            }
        };
        match logs::emit_js(level, message, fields) {
            Ok(()) => 0,
            Err(e) => e as i32,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panics_become_fallbacks_and_error_json() {
        // The default hook would print the two deliberate panics; nothing else in this binary panics.
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        assert_eq!(guard("t", 7, || panic!("boom")), 7);
        let p = guard_json("t", || panic!("boom {}", 1));
        // SAFETY: a fresh string from `into_c_string`.
        let text = unsafe { CString::from_raw(p) }.into_string().unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["status"], "error");
        std::panic::set_hook(hook);
        assert!(v["message"].as_str().unwrap().contains("boom 1"), "{v}");
    }

    #[test]
    fn abi_version_packs_the_abi_and_layout_numbers() {
        let v = tasker_worker_abi_version();
        assert_eq!(
            (v >> 16, (v >> 8) & 0xff, v & 0xff),
            (1, u32::from(LAYOUT_MAJOR), u32::from(LAYOUT_MINOR))
        );
    }

    /// Issue 20: releases were keyed by address alone, so once a mapping was released and another was
    /// placed at the same address, a stale second release of the old one unmapped the new one under its
    /// holder. Handles are never reused, and an address releases only address-counted holders.
    #[test]
    fn a_stale_release_never_releases_a_newer_mapping_at_the_same_address() {
        let mut maps = Mappings::new();
        let (old, new) = (Arc::new("old region"), Arc::new("new region"));
        let base = 0x7f00_0000_0000;
        let h_old = maps.map_handle(Arc::clone(&old));
        maps.map_base(base, Arc::clone(&old));
        assert!(maps.release_handle(h_old).is_some());
        assert!(
            matches!(maps.release_base(base), Ok(Some(_))),
            "the old mapping's last holder"
        );
        drop(old);
        // The system places the next mapping at the same address; its holder takes it by handle.
        let h_new = maps.map_handle(Arc::clone(&new));
        assert_ne!(h_new, h_old, "handles are never reused");
        assert!(maps.release_handle(h_old).is_none(), "a stale handle is refused");
        assert!(maps.release_base(base).is_err(), "a stale address is refused");
        assert_eq!(Arc::strong_count(&new), 2, "the new mapping is still held");
        assert!(maps.release_handle(h_new).is_some());
        assert_eq!(Arc::strong_count(&new), 1);
        // Address-counted holders keep working as before: counted per call.
        maps.map_base(base, Arc::clone(&new));
        maps.map_base(base, Arc::clone(&new));
        assert!(matches!(maps.release_base(base), Ok(None)));
        assert!(matches!(maps.release_base(base), Ok(Some(_))));
        assert!(maps.release_base(base).is_err());
    }

    #[test]
    fn string_arguments_are_checked() {
        // SAFETY: NULL and NUL-terminated literals.
        unsafe {
            assert_eq!(str_arg(std::ptr::null(), "x").unwrap_err(), "x is NULL");
            assert!(str_arg(c"\xff\xfe".as_ptr(), "x")
                .unwrap_err()
                .contains("not valid UTF-8"));
            assert_eq!(str_arg(c"ok".as_ptr(), "x").unwrap(), "ok");
        }
    }
}
