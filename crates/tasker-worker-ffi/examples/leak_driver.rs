//! Drives `libtasker_worker.so` through its C ABI for `scripts/leak-check`, which runs it under valgrind:
//! bootstrap/stop cycles (ring and ffi transports alternately, each moving a few events, mapping and
//! releasing the region, hitting the refusal paths and draining the log buffer with `poll_worker_logs`),
//! then a run of events through the per-poll transport (poll / complete / free) and one through the ring
//! transport. Logging is at warn with stderr off (`log_stderr` false): records are buffered, not printed.
//!
//! Sizes come from the environment: `LEAK_CYCLES` (default 100), `LEAK_FFI_EVENTS` and
//! `LEAK_RING_EVENTS` (default 100 000 each; scripts/leak-check passes 50 000 in CI and 500 000 in the
//! long form, and says why). The library is `TASKER_LIBRARY_PATH` or the one cargo built beside this
//! binary (`target/<profile>/deps/libtasker_worker.so`). Exits non-zero if any event is lost or refused.

use tasker_test_support::ffi as support;

use std::time::{Duration, Instant};
use support::{api, env_u64, run_ffi_handler, run_ring_handler, Api, TempDir};

/// Generous: under valgrind an event costs up to ~2.5 ms, so the long form's 500 000 per transport take
/// ~20 minutes each.
const TIMEOUT: Duration = Duration::from_secs(3 * 3600);

fn main() {
    let cycles = env_u64("LEAK_CYCLES", 100);
    let ffi_events = env_u64("LEAK_FFI_EVENTS", 100_000);
    let ring_events = env_u64("LEAK_RING_EVENTS", 100_000);
    let api = api();
    let dir = TempDir::new("leak");
    println!(
        "leak driver: {} ({cycles} cycles, {ffi_events} ffi events, {ring_events} ring events)",
        api.path.display()
    );

    let t = Instant::now();
    for i in 0..cycles {
        if i % 2 == 0 {
            ring_cycle(api, &dir, 3);
        } else {
            ffi_cycle(api, 3);
        }
    }
    println!("  {cycles} bootstrap/stop cycles in {:.1?}", t.elapsed());

    let t = Instant::now();
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ffi","log_level":"warn","log_stderr":false,"source":{{"kind":"synthetic","count":{ffi_events}}}}}"#
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    let (done, _) = run_ffi_handler(api, ffi_events, TIMEOUT);
    expect_all_completed(api, done);
    api.stop();
    println!("  {ffi_events} events through the ffi transport in {:.1?}", t.elapsed());

    let t = Instant::now();
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ring","log_level":"warn","log_stderr":false,"region_dir":{},"source":{{"kind":"synthetic","count":{ring_events}}}}}"#,
        dir.json()
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    let mut len = 0usize;
    // SAFETY: a writable size_t.
    let base = unsafe { (api.map_ring_region)(&mut len) };
    assert!(!base.is_null());
    let region_path = std::path::PathBuf::from(boot["region_path"].as_str().unwrap());
    let done = run_ring_handler(&region_path, ring_events, TIMEOUT);
    expect_all_completed(api, done);
    api.stop();
    assert_eq!(api.release(base), 1);
    println!(
        "  {ring_events} events through the ring transport in {:.1?}",
        t.elapsed()
    );
    // Whatever the long runs logged (starvation warnings under valgrind, say): drained and freed too.
    let _ = api.logs();
    println!("leak driver: done");
}

fn expect_all_completed(api: &Api, n: u64) {
    let m = api.wait_metrics(TIMEOUT, |m| m["completed_count"] == n);
    assert_eq!(
        (
            &m["completed_count"],
            &m["refused_completions"],
            &m["in_flight_count"],
            &m["pending_count"]
        ),
        (&n.into(), &0.into(), &0.into(), &0.into()),
        "{m}"
    );
}

/// One ring-transport worker: bootstrap, map twice, move `n` events, status and metrics, a refused
/// bootstrap and completion, graceful shutdown, stop twice, release.
fn ring_cycle(api: &Api, dir: &TempDir, n: u64) {
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ring","log_level":"warn","log_stderr":false,"region_dir":{},"source":{{"kind":"synthetic","count":{n}}}}}"#,
        dir.json()
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    let (mut len, mut len2) = (0usize, 0usize);
    // SAFETY: writable size_t values.
    let (base, again) = unsafe { ((api.map_ring_region)(&mut len), (api.map_ring_region)(&mut len2)) };
    assert!(!base.is_null() && base == again);
    let region_path = std::path::PathBuf::from(boot["region_path"].as_str().unwrap());
    assert_eq!(run_ring_handler(&region_path, n, TIMEOUT), n);
    expect_all_completed(api, n);
    common_paths(api);
    assert_eq!(api.release(base), 1);
    assert_eq!(api.release(again), 1);
}

/// One per-poll worker: bootstrap, move `n` events, the refusal paths, graceful shutdown, stop twice.
fn ffi_cycle(api: &Api, n: u64) {
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ffi","log_level":"warn","log_stderr":false,"source":{{"kind":"synthetic","count":{n}}}}}"#
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    let (done, last) = run_ffi_handler(api, n, TIMEOUT);
    expect_all_completed(api, done);
    let (id, result) = last.unwrap();
    assert_eq!(
        // SAFETY: valid C strings for the call.
        unsafe { (api.complete_step_event)(id.as_ptr(), result.as_ptr()) },
        0,
        "duplicate"
    );
    assert_eq!(api.complete_raw(Some(b"\xff\0"), None), 0);
    assert_eq!(api.complete(id.to_str().unwrap(), r#"{"success":true}"#), 0);
    common_paths(api);
}

fn common_paths(api: &Api) {
    assert_eq!(api.bootstrap("{}")["status"], "already_running");
    assert_eq!(api.bootstrap(r#"{"bogus":1}"#)["status"], "error");
    assert_eq!(api.bootstrap_raw(Some(b"\xff\xfe\0"))["status"], "error");
    assert_eq!(api.status()["running"], true);
    // SAFETY: no arguments / NULL where NULL is allowed.
    unsafe {
        (api.check_starvation_warnings)();
        (api.cleanup_timeouts)();
        (api.free_rust_string)(std::ptr::null_mut());
    }
    assert!(api.poll().is_none());
    // A refusal logs at warn, which the buffer keeps (the first bootstrap set warn, stderr off).
    assert_eq!(
        api.complete(
            "00000000-0000-0000-0000-00000000beef",
            r#"{"step_uuid":"00000000-0000-0000-0000-000000000002","success":true}"#
        ),
        0
    );
    let logs = api.logs().expect("buffered log records");
    assert!(logs.iter().any(|r| r["message"] == "completion refused"), "{logs:?}");
    assert!(api.logs().is_none());
    assert_eq!(api.graceful()["status"], "draining");
    assert!(api.stop()["status"] == "stopped" || !api.running());
    assert_eq!(api.stop()["status"], "not_running");
    assert_eq!(api.metrics()["completed_count"].as_u64().map(|c| c > 0), Some(true));
}
