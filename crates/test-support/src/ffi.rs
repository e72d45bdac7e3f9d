//! Loads the built `libtasker_worker.so` with libloading, as the TS side does with koffi / bun:ffi /
//! Deno.dlopen, and plays the TS side of both transports. Shared by the cdylib's integration tests, its
//! examples (the leak driver, the RSS soak) and its benches.

// The helpers take the pointers the library under test handed out, exactly as the TS side passes them back;
// checking those is what the tests are for.
#![allow(clippy::not_unsafe_ptr_arg_deref)]

use serde::Deserialize;
use serde_json::Value;
use std::ffi::{c_char, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Region, RingId};

pub use crate::library_path::library_path;

/// The 23 exported functions, as raw C function pointers.
pub struct Api {
    pub path: PathBuf,
    pub bootstrap_worker: unsafe extern "C" fn(*const c_char) -> *mut c_char,
    pub get_worker_status: unsafe extern "C" fn() -> *mut c_char,
    pub stop_worker: unsafe extern "C" fn() -> *mut c_char,
    pub transition_to_graceful_shutdown: unsafe extern "C" fn() -> *mut c_char,
    pub is_worker_running: unsafe extern "C" fn() -> bool,
    pub get_ffi_dispatch_metrics: unsafe extern "C" fn() -> *mut c_char,
    pub check_starvation_warnings: unsafe extern "C" fn(),
    pub cleanup_timeouts: unsafe extern "C" fn(),
    pub free_rust_string: unsafe extern "C" fn(*mut c_char),
    pub poll_step_events: unsafe extern "C" fn() -> *mut c_char,
    pub complete_step_event: unsafe extern "C" fn(*const c_char, *const c_char) -> i32,
    pub give_back_step_event: unsafe extern "C" fn(*const c_char) -> i32,
    pub checkpoint_yield_step_event: unsafe extern "C" fn(*const c_char, *const c_char) -> i32,
    pub map_ring_region: unsafe extern "C" fn(*mut usize) -> *mut u8,
    pub release_ring_region: unsafe extern "C" fn(*const u8) -> i32,
    pub map_ring_region_handle: unsafe extern "C" fn(*mut usize, *mut u64) -> *mut u8,
    pub release_ring_region_handle: unsafe extern "C" fn(u64) -> i32,
    pub tasker_worker_abi_version: unsafe extern "C" fn() -> u32,
    pub poll_worker_logs: unsafe extern "C" fn() -> *mut c_char,
    pub poll_completion_refusals: unsafe extern "C" fn() -> *mut c_char,
    pub client_call: unsafe extern "C" fn(*const c_char) -> *mut c_char,
    pub log_message: unsafe extern "C" fn(i32, *const c_char, *const c_char) -> i32,
    pub poll_domain_events: unsafe extern "C" fn() -> *mut c_char,
    _lib: libloading::Library,
}

/// The library, loaded once and never unloaded (a worker's threads may outlive a test; dlclose under
/// them would crash the process).
pub fn api() -> &'static Api {
    static API: OnceLock<Api> = OnceLock::new();
    API.get_or_init(|| {
        let path = library_path();
        assert!(
            path.exists(),
            "{} is missing: cargo builds it with this package's lib target",
            path.display()
        );
        // SAFETY: loading our own cdylib; its initialisers have no preconditions.
        let lib = unsafe { libloading::Library::new(&path) }.unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        macro_rules! sym {
            ($name:ident) => {
                // SAFETY: the symbol is one of ours, declared with exactly this signature in src/lib.rs.
                *unsafe { lib.get(concat!(stringify!($name), "\0").as_bytes()) }
                    .unwrap_or_else(|e| panic!("symbol {}: {e}", stringify!($name)))
            };
        }
        Api {
            path: path.clone(),
            bootstrap_worker: sym!(bootstrap_worker),
            get_worker_status: sym!(get_worker_status),
            stop_worker: sym!(stop_worker),
            transition_to_graceful_shutdown: sym!(transition_to_graceful_shutdown),
            is_worker_running: sym!(is_worker_running),
            get_ffi_dispatch_metrics: sym!(get_ffi_dispatch_metrics),
            check_starvation_warnings: sym!(check_starvation_warnings),
            cleanup_timeouts: sym!(cleanup_timeouts),
            free_rust_string: sym!(free_rust_string),
            poll_step_events: sym!(poll_step_events),
            complete_step_event: sym!(complete_step_event),
            give_back_step_event: sym!(give_back_step_event),
            checkpoint_yield_step_event: sym!(checkpoint_yield_step_event),
            map_ring_region: sym!(map_ring_region),
            release_ring_region: sym!(release_ring_region),
            map_ring_region_handle: sym!(map_ring_region_handle),
            release_ring_region_handle: sym!(release_ring_region_handle),
            tasker_worker_abi_version: sym!(tasker_worker_abi_version),
            poll_worker_logs: sym!(poll_worker_logs),
            poll_completion_refusals: sym!(poll_completion_refusals),
            client_call: sym!(client_call),
            log_message: sym!(log_message),
            poll_domain_events: sym!(poll_domain_events),
            _lib: lib,
        }
    })
}

impl Api {
    /// Reads a returned JSON string, frees it and parses it.
    pub fn take_json(&self, p: *mut c_char) -> Value {
        assert!(!p.is_null(), "expected a JSON string, got NULL");
        // SAFETY: a live NUL-terminated string the library just returned.
        let text = unsafe { CStr::from_ptr(p) }.to_str().expect("UTF-8").to_owned();
        // SAFETY: returned by the library, freed exactly once.
        unsafe { (self.free_rust_string)(p) };
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    /// `client_call` with `request` (JSON text): the answer, parsed.
    pub fn client(&self, request: &str) -> Value {
        let c = CString::new(request).unwrap();
        // SAFETY: a valid C string for the call.
        self.take_json(unsafe { (self.client_call)(c.as_ptr()) })
    }

    /// `client_call` with raw bytes (which must end with a NUL) or NULL.
    pub fn client_raw(&self, request: Option<&[u8]>) -> Value {
        let ptr = request.map_or(std::ptr::null(), |b| {
            assert_eq!(b.last(), Some(&0));
            b.as_ptr().cast()
        });
        // SAFETY: NULL or a NUL-terminated buffer valid for the call.
        self.take_json(unsafe { (self.client_call)(ptr) })
    }

    /// `log_message(level, message, fields_json)`; `None` passes NULL.
    pub fn log(&self, level: i32, message: Option<&[u8]>, fields_json: Option<&[u8]>) -> i32 {
        let arg = |b: Option<&[u8]>| {
            b.map_or(std::ptr::null(), |b| {
                assert_eq!(b.last(), Some(&0), "NUL-terminated");
                b.as_ptr().cast::<c_char>()
            })
        };
        // SAFETY: NULL or NUL-terminated buffers valid for the call.
        unsafe { (self.log_message)(level, arg(message), arg(fields_json)) }
    }

    pub fn bootstrap(&self, config: &str) -> Value {
        let c = CString::new(config).unwrap();
        // SAFETY: a valid C string for the call.
        self.take_json(unsafe { (self.bootstrap_worker)(c.as_ptr()) })
    }

    /// Bootstraps with raw bytes (which must end with a NUL) or NULL.
    pub fn bootstrap_raw(&self, config: Option<&[u8]>) -> Value {
        let ptr = config.map_or(std::ptr::null(), |b| {
            assert_eq!(b.last(), Some(&0));
            b.as_ptr().cast()
        });
        // SAFETY: NULL or a NUL-terminated buffer valid for the call.
        self.take_json(unsafe { (self.bootstrap_worker)(ptr) })
    }

    pub fn status(&self) -> Value {
        // SAFETY: no arguments.
        self.take_json(unsafe { (self.get_worker_status)() })
    }

    pub fn stop(&self) -> Value {
        // SAFETY: no arguments.
        self.take_json(unsafe { (self.stop_worker)() })
    }

    pub fn graceful(&self) -> Value {
        // SAFETY: no arguments.
        self.take_json(unsafe { (self.transition_to_graceful_shutdown)() })
    }

    pub fn running(&self) -> bool {
        // SAFETY: no arguments.
        unsafe { (self.is_worker_running)() }
    }

    pub fn metrics(&self) -> Value {
        // SAFETY: no arguments.
        self.take_json(unsafe { (self.get_ffi_dispatch_metrics)() })
    }

    /// Polls one event (per-poll transport): its JSON text, or None.
    pub fn poll(&self) -> Option<String> {
        // SAFETY: no arguments.
        let p = unsafe { (self.poll_step_events)() };
        if p.is_null() {
            return None;
        }
        // SAFETY: a live NUL-terminated string the library just returned.
        let text = unsafe { CStr::from_ptr(p) }.to_str().expect("UTF-8").to_owned();
        // SAFETY: returned by the library, freed exactly once.
        unsafe { (self.free_rust_string)(p) };
        Some(text)
    }

    pub fn complete(&self, event_id: &str, result_json: &str) -> i32 {
        let (id, json) = (CString::new(event_id).unwrap(), CString::new(result_json).unwrap());
        // SAFETY: valid C strings for the call.
        unsafe { (self.complete_step_event)(id.as_ptr(), json.as_ptr()) }
    }

    /// `give_back_step_event`: 1 given back, 0 refused.
    pub fn give_back(&self, event_id: &str) -> i32 {
        let id = CString::new(event_id).unwrap();
        // SAFETY: a valid C string for the call.
        unsafe { (self.give_back_step_event)(id.as_ptr()) }
    }

    /// `checkpoint_yield_step_event`: 1 accepted, 0 refused.
    pub fn checkpoint_yield(&self, event_id: &str, checkpoint_json: &str) -> i32 {
        let (id, json) = (CString::new(event_id).unwrap(), CString::new(checkpoint_json).unwrap());
        // SAFETY: valid C strings for the call.
        unsafe { (self.checkpoint_yield_step_event)(id.as_ptr(), json.as_ptr()) }
    }

    /// `complete_step_event` with raw pointers (NULL or NUL-terminated bytes).
    pub fn complete_raw(&self, event_id: Option<&[u8]>, result_json: Option<&[u8]>) -> i32 {
        let ptr = |b: Option<&[u8]>| {
            b.map_or(std::ptr::null(), |b| {
                assert_eq!(b.last(), Some(&0));
                b.as_ptr().cast::<c_char>()
            })
        };
        // SAFETY: NULL or NUL-terminated buffers valid for the call.
        unsafe { (self.complete_step_event)(ptr(event_id), ptr(result_json)) }
    }

    /// `tasker_worker_abi_version()` unpacked: (ABI major, layout major, layout minor).
    pub fn abi_version(&self) -> (u32, u32, u32) {
        // SAFETY: no arguments.
        let v = unsafe { (self.tasker_worker_abi_version)() };
        (v >> 16, (v >> 8) & 0xff, v & 0xff)
    }

    /// The buffered log records (`poll_worker_logs`) as a JSON array, or None when it returned NULL.
    pub fn logs(&self) -> Option<Vec<Value>> {
        // SAFETY: no arguments.
        let p = unsafe { (self.poll_worker_logs)() };
        if p.is_null() {
            return None;
        }
        match self.take_json(p) {
            Value::Array(records) => Some(records),
            other => panic!("poll_worker_logs returned a non-array: {other}"),
        }
    }

    /// `poll_domain_events`: `{"events","dropped"}` since the last call, or None when it returned NULL.
    pub fn domain_events(&self) -> Option<Value> {
        // SAFETY: no arguments.
        let p = unsafe { (self.poll_domain_events)() };
        (!p.is_null()).then(|| self.take_json(p))
    }

    /// `poll_completion_refusals`: the refusals since the last call, or None when there are none.
    pub fn refusals(&self) -> Option<Value> {
        // SAFETY: no arguments.
        let p = unsafe { (self.poll_completion_refusals)() };
        (!p.is_null()).then(|| self.take_json(p))
    }

    pub fn release(&self, base: *const u8) -> i32 {
        // SAFETY: release_ring_region only compares the address; it never dereferences it.
        unsafe { (self.release_ring_region)(base) }
    }

    /// `map_ring_region_handle`: the base (NULL when there is no ring worker), the length and the handle.
    pub fn map_handle(&self) -> (*mut u8, usize, u64) {
        let (mut len, mut handle) = (usize::MAX, u64::MAX);
        // SAFETY: a writable size_t and uint64_t.
        let base = unsafe { (self.map_ring_region_handle)(&mut len, &mut handle) };
        (base, len, handle)
    }

    pub fn release_handle(&self, handle: u64) -> i32 {
        // SAFETY: no pointer arguments.
        unsafe { (self.release_ring_region_handle)(handle) }
    }

    /// Polls the metrics until `done(metrics)` or the deadline; returns the last metrics.
    pub fn wait_metrics(&self, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let m = self.metrics();
            if done(&m) || Instant::now() >= deadline {
                return m;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The two ids a handler needs from a step event.
#[derive(Deserialize)]
pub struct EventIds<'a> {
    pub event_id: &'a str,
    pub step_uuid: &'a str,
}

/// `fixtures/completion-success.json`, compact, split around its `step_uuid` value so a completion for
/// any step is `prefix + step_uuid + suffix`.
pub struct CompletionTemplate {
    prefix: String,
    suffix: String,
}

impl CompletionTemplate {
    pub fn success() -> Self {
        let fixture: Value =
            serde_json::from_str(include_str!("../../../fixtures/completion-success.json")).expect("fixture");
        let uuid = fixture["step_uuid"].as_str().expect("fixture step_uuid").to_owned();
        let compact = fixture.to_string();
        let at = compact.find(&uuid).expect("uuid in compact fixture");
        Self {
            prefix: compact[..at].to_owned(),
            suffix: compact[at + uuid.len()..].to_owned(),
        }
    }

    /// The result JSON for `step_uuid`.
    pub fn for_step(&self, step_uuid: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + 36 + self.suffix.len());
        s.push_str(&self.prefix);
        s.push_str(step_uuid);
        s.push_str(&self.suffix);
        s
    }
}

/// Plays TS on the per-poll transport: polls, completes every event with success (each must be
/// accepted), until `count` have been completed. Returns the number completed and the last event's id
/// and result JSON.
pub fn run_ffi_handler(api: &Api, count: u64, timeout: Duration) -> (u64, Option<(CString, CString)>) {
    let template = CompletionTemplate::success();
    let deadline = Instant::now() + timeout;
    let mut done = 0u64;
    let mut idle = 0u32;
    let mut last = None;
    while done < count {
        // SAFETY: no arguments.
        let p = unsafe { (api.poll_step_events)() };
        if p.is_null() {
            assert!(
                Instant::now() < deadline,
                "ffi transport: only {done} of {count} events within {timeout:?}"
            );
            idle += 1;
            if idle > 64 {
                std::thread::sleep(Duration::from_micros(200));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        idle = 0;
        // SAFETY: a live NUL-terminated string the library just returned.
        let event = unsafe { CStr::from_ptr(p) }.to_bytes();
        let ids: EventIds<'_> = serde_json::from_slice(event).expect("event JSON with event_id and step_uuid");
        let id = CString::new(ids.event_id).unwrap();
        let result = CString::new(template.for_step(ids.step_uuid)).unwrap();
        // SAFETY: returned by the library, freed exactly once (ids borrowed from it are dead after this).
        unsafe { (api.free_rust_string)(p) };
        // SAFETY: valid C strings for the call.
        let accepted = unsafe { (api.complete_step_event)(id.as_ptr(), result.as_ptr()) };
        assert_eq!(accepted, 1, "completion {done} refused");
        done += 1;
        last = Some((id, result));
    }
    (done, last)
}

/// Plays TS on the ring transport: attaches to the region by path, takes the events consumer and the
/// completions producer, and answers every event with a success completion (payload = 36-byte event id +
/// result JSON) until `count` have been answered. Returns the number answered.
pub fn run_ring_handler(region_path: &Path, count: u64, timeout: Duration) -> u64 {
    let region = Region::attach(region_path).expect("attach the worker's region");
    answer_ring_events(&region, count, timeout)
}

/// `run_ring_handler` on a region the caller attached (and keeps mapped after the answers).
pub fn answer_ring_events(region: &Region, count: u64, timeout: Duration) -> u64 {
    let template = CompletionTemplate::success();
    let mut events = region.consumer(RingId::Events).expect("events consumer role");
    let mut completions = region.producer(RingId::Completions).expect("completions producer role");
    let deadline = Instant::now() + timeout;
    let mut answers: Vec<Vec<u8>> = Vec::with_capacity(256);
    let mut done = 0u64;
    let mut idle = 0u32;
    while done < count {
        answers.clear();
        let n = events
            .read_batch(256, |m| {
                assert_eq!(m.record_type, record_type::STEP_EVENT);
                let ids: EventIds<'_> = serde_json::from_slice(m.payload).expect("event JSON");
                assert_eq!(ids.event_id.len(), 36);
                let mut payload = Vec::with_capacity(36 + 400);
                payload.extend_from_slice(ids.event_id.as_bytes());
                payload.extend_from_slice(template.for_step(ids.step_uuid).as_bytes());
                answers.push(payload);
            })
            .expect("read events");
        if n == 0 {
            assert!(
                Instant::now() < deadline,
                "ring transport: only {done} of {count} events within {timeout:?}"
            );
            idle += 1;
            if idle > 64 {
                std::thread::sleep(Duration::from_micros(200));
            } else {
                std::thread::yield_now();
            }
            continue;
        }
        idle = 0;
        for payload in &answers {
            completions
                .write_blocking(record_type::COMPLETION, payload, Duration::from_secs(30))
                .expect("write completion");
        }
        done += n as u64;
    }
    done
}

/// A number from the environment (the drivers' sizes), `default` when unset; panics naming the variable
/// when it is not a number.
pub fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number")),
        Err(_) => default,
    }
}

/// A fresh directory for region files, removed by `Drop`.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tasker-ffi-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    /// As a JSON string literal for a config.
    pub fn json(&self) -> String {
        serde_json::to_string(&self.0).unwrap()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
