//! The C ABI, exercised the way the TS side uses it: the built `libtasker_worker.so` is loaded with
//! libloading and driven through its exported functions only.
//!
//! Every test here touches the library's one global worker, so they run one at a time (`serial()`).

use tasker_test_support::ffi as support;

use serde_json::Value;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};
use support::{api, run_ffi_handler, run_ring_handler, Api, CompletionTemplate, EventIds, TempDir};

const EVENTS: u64 = 100_000;
const GENEROUS: Duration = Duration::from_secs(120);

/// Serialises the tests and starts each from "no worker running".
fn serial() -> MutexGuard<'static, ()> {
    static SERIAL: Mutex<()> = Mutex::new(());
    let guard = SERIAL.lock().unwrap_or_else(|p| p.into_inner());
    api().stop();
    guard
}

fn u(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} missing in {v}"))
}

fn assert_all_completed(m: &Value, n: u64) {
    assert_eq!(u(m, "completed_count"), n, "{m}");
    assert_eq!(u(m, "refused_completions"), 0, "{m}");
    assert_eq!(u(m, "in_flight_count"), 0, "{m}");
    assert_eq!(u(m, "pending_count"), 0, "{m}");
    assert_eq!(u(m, "failed_count"), 0, "{m}");
}

fn started(v: &Value) -> &str {
    assert_eq!(v["status"], "started", "{v}");
    v["worker_id"].as_str().unwrap()
}

#[test]
fn abi_version_is_abi_1_and_the_layout_version() {
    assert_eq!(
        api().abi_version(),
        (
            1,
            u32::from(tasker_ring::layout::LAYOUT_MAJOR),
            u32::from(tasker_ring::layout::LAYOUT_MINOR)
        )
    );
}

#[test]
fn ring_transport_moves_100k_events_and_their_completions() {
    let _serial = serial();
    let api = api();
    let dir = TempDir::new("ring");
    let t0 = Instant::now();
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ring","log_level":"warn","region_dir":{},"source":{{"kind":"synthetic","count":{EVENTS}}}}}"#,
        dir.json()
    ));
    let worker_id = started(&boot).to_owned();
    assert_eq!(boot["handle_id"], worker_id.as_str());
    assert_eq!(boot["transport"], "ring");
    assert_eq!(
        (u(&boot, "layout_major"), u(&boot, "layout_minor")),
        (
            u64::from(tasker_ring::layout::LAYOUT_MAJOR),
            u64::from(tasker_ring::layout::LAYOUT_MINOR)
        )
    );
    let region_path = std::path::PathBuf::from(boot["region_path"].as_str().expect("region_path"));
    assert!(region_path.starts_with(&dir.0), "{boot}");
    assert!(boot["doorbell_path"].is_string(), "{boot}");

    let mut len = 0usize;
    // SAFETY: a writable size_t.
    let base = unsafe { (api.map_ring_region)(&mut len) };
    assert!(!base.is_null());
    assert_eq!(len as u64, std::fs::metadata(&region_path).unwrap().len());
    // SAFETY: the mapping is at least a header page long and stays mapped until released below.
    let magic = unsafe { std::slice::from_raw_parts(base, 8) };
    assert_eq!(magic, b"TSKRRING");

    let answered = run_ring_handler(&region_path, EVENTS, GENEROUS);
    assert_eq!(answered, EVENTS);
    let m = api.wait_metrics(GENEROUS, |m| u(m, "completed_count") == EVENTS);
    assert_all_completed(&m, EVENTS);
    let elapsed = t0.elapsed();
    eprintln!("ring transport: {EVENTS} events and completions in {elapsed:?}");

    assert_eq!(
        api.stop(),
        serde_json::json!({"status":"stopped","worker_id":worker_id})
    );
    assert!(!region_path.exists(), "stop unlinks the region file");
    // SAFETY: still mapped (released just below).
    assert_eq!(unsafe { std::slice::from_raw_parts(base, 8) }, b"TSKRRING");
    assert_eq!(api.release(base), 1);
    assert_eq!(api.release(base), 0, "released once per map");
}

#[test]
fn ffi_transport_moves_100k_events_and_their_completions() {
    let _serial = serial();
    let api = api();
    let t0 = Instant::now();
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ffi","log_level":"warn","source":{{"kind":"synthetic","count":{EVENTS}}}}}"#
    ));
    started(&boot);
    assert_eq!(boot["transport"], "ffi");
    assert!(
        boot["region_path"].is_null() && boot["doorbell_path"].is_null(),
        "{boot}"
    );
    let mut len = 7usize;
    assert!(
        // SAFETY: a writable size_t.
        unsafe { (api.map_ring_region)(&mut len) }.is_null(),
        "no region on the ffi transport"
    );
    assert_eq!(len, 0);

    let (done, last) = run_ffi_handler(api, EVENTS, GENEROUS);
    assert_eq!(done, EVENTS);
    let m = api.metrics();
    assert_all_completed(&m, EVENTS);
    eprintln!("ffi transport: {EVENTS} events and completions in {:?}", t0.elapsed());
    assert!(api.poll().is_none(), "the source is exhausted");

    // A second completion for an already completed event is refused and counted; the worker runs on.
    let (id, result) = last.unwrap();
    // SAFETY: valid C strings for the call.
    assert_eq!(unsafe { (api.complete_step_event)(id.as_ptr(), result.as_ptr()) }, 0);
    let m = api.metrics();
    assert_eq!(
        (u(&m, "completed_count"), u(&m, "refused_completions")),
        (EVENTS, 1),
        "{m}"
    );
    assert!(api.running());
    api.stop();
}

/// Polls until an event arrives (the pump fills the queue within a few ms).
fn poll_wait(api: &Api) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(e) = api.poll() {
            return e;
        }
        assert!(Instant::now() < deadline, "no event within 10 s");
        std::thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn bad_input_is_refused_clearly_and_nothing_is_lost() {
    let _serial = serial();
    let api = api();
    let template = CompletionTemplate::success();
    let worker_id =
        started(&api.bootstrap(r#"{"transport":"ffi","log_level":"warn","source":{"kind":"synthetic","count":3}}"#))
            .to_owned();

    // Bootstrap with bad input: a clear error, and the running worker is untouched.
    let error = |v: Value, needle: &str| {
        assert_eq!(v["status"], "error", "{v}");
        let message = v["message"].as_str().unwrap();
        assert!(message.contains(needle), "{needle:?} not in {message:?}");
    };
    error(api.bootstrap_raw(Some(b"\xff\xfe\0")), "not valid UTF-8");
    error(api.bootstrap("{"), "invalid bootstrap config");
    error(api.bootstrap("[1,2]"), "invalid bootstrap config");
    error(
        api.bootstrap(r#"{"namespcae":"x"}"#),
        "unknown field `namespcae`; did you mean `namespace`?",
    );
    error(
        api.bootstrap(r#"{"source":{"kind":"synthetic","cuont":1}}"#),
        "unknown field `cuont` in `source` (kind `synthetic`); did you mean `count`?",
    );
    error(api.bootstrap(r#"{"source":{"kind":"stroe"}}"#), "did you mean `store`?");
    error(api.bootstrap(r#"{"transport":"pigeon"}"#), "pigeon");
    error(api.bootstrap(r#"{"log_level":"loud"}"#), "log_level");
    error(api.bootstrap(r#"{"events_capacity":1000}"#), "ring settings");
    error(api.bootstrap(r#"{"completion_timeout_ms":0}"#), "completion_timeout_ms");
    // Well-formed input while running: the running worker answers.
    for config in [None, Some(&b"\0"[..]), Some(&b"{}\0"[..])] {
        let v = api.bootstrap_raw(config);
        assert_eq!(v["status"], "already_running", "{v}");
        assert_eq!(
            (v["worker_id"].as_str(), v["handle_id"].as_str()),
            (Some(&*worker_id), Some(&*worker_id))
        );
    }
    assert!(api.running());
    assert_eq!(api.status()["worker_id"], worker_id.as_str());

    // Completions with bad input: refused, the worker keeps running, the event stays completable.
    let event = poll_wait(api);
    let ids: EventIds<'_> = serde_json::from_str(&event).unwrap();
    let good = template.for_step(ids.step_uuid);
    let id0 = format!("{}\0", ids.event_id);
    let good0 = format!("{good}\0");
    assert_eq!(api.complete_raw(None, Some(good0.as_bytes())), 0, "NULL event id");
    assert_eq!(api.complete_raw(Some(id0.as_bytes()), None), 0, "NULL result");
    assert_eq!(api.complete_raw(None, None), 0, "both NULL");
    assert_eq!(
        api.complete_raw(Some(b"\xff\xfe\0"), Some(good0.as_bytes())),
        0,
        "invalid UTF-8 id"
    );
    assert_eq!(
        api.complete_raw(Some(id0.as_bytes()), Some(b"\xff\xfe\0")),
        0,
        "invalid UTF-8 result"
    );
    let refused_by_worker = [
        ("not-a-uuid", good.clone()),
        ("00000000-0000-0000-0000-00000000beef", good.clone()),
        (ids.event_id, "{".to_owned()),
        (ids.event_id, "[]".to_owned()),
        (ids.event_id, r#"{"success":true}"#.to_owned()),
        (ids.event_id, format!(r#"{{"step_uuid":"{}"}}"#, ids.step_uuid)),
        (
            ids.event_id,
            format!(r#"{{"step_uuid":"{}","success":"yes"}}"#, ids.step_uuid),
        ),
    ];
    for (id, result) in &refused_by_worker {
        assert_eq!(api.complete(id, result), 0, "{id} {result}");
    }
    let m = api.metrics();
    assert_eq!(
        u(&m, "refused_completions"),
        refused_by_worker.len() as u64 + 5,
        "every refusal is counted, the 3 NULL and 2 non-UTF-8 calls included: {m}"
    );
    assert_eq!(
        u(&m, "in_flight_count"),
        1,
        "refused results leave the event in flight: {m}"
    );
    assert!(api.running());
    assert_eq!(api.complete(ids.event_id, &good), 1, "the event is still completable");
    assert_eq!(api.complete(ids.event_id, &good), 0, "but only once");

    // The other two events come through untouched.
    for _ in 0..2 {
        let event = poll_wait(api);
        let ids: EventIds<'_> = serde_json::from_str(&event).unwrap();
        assert_eq!(api.complete(ids.event_id, &template.for_step(ids.step_uuid)), 1);
    }
    let m = api.metrics();
    assert_eq!(
        (
            u(&m, "completed_count"),
            u(&m, "failed_count"),
            u(&m, "in_flight_count"),
            u(&m, "pending_count")
        ),
        (3, 0, 0, 0),
        "{m}"
    );

    // Pointer arguments elsewhere.
    // SAFETY: NULL is allowed for each of these.
    unsafe {
        (api.free_rust_string)(std::ptr::null_mut());
        assert!((api.map_ring_region)(std::ptr::null_mut()).is_null());
    }
    assert_eq!(api.release(std::ptr::null()), 0);
    let not_ours = [0u8; 8];
    assert_eq!(api.release(not_ours.as_ptr()), 0);
    let mut len = 0usize;
    assert!(
        // SAFETY: a writable size_t.
        unsafe { (api.map_ring_region)(&mut len) }.is_null(),
        "ffi transport has no region"
    );

    // Stop twice.
    assert_eq!(
        api.stop(),
        serde_json::json!({"status":"stopped","worker_id":worker_id})
    );
    assert_eq!(api.stop(), serde_json::json!({"status":"not_running"}));
    assert!(!api.running());
    let status = api.status();
    assert_eq!(
        (status["running"].as_bool(), status["worker_core_status"].as_str()),
        (Some(false), Some("stopped"))
    );
    assert_eq!(api.graceful()["status"], "stopped");
    assert!(api.poll().is_none());
    // SAFETY: no arguments.
    unsafe {
        (api.cleanup_timeouts)();
        (api.check_starvation_warnings)();
    }
}

#[test]
fn bootstrap_defaults_replacement_and_setup_errors() {
    let _serial = serial();
    let api = api();
    // NULL and "" mean the defaults: the ring transport under the default directory, fed by the step store
    // TASKER_DATABASE_URL names (this binary's tests run one at a time, so the variable is theirs).
    let dir = TempDir::new("defaults");
    let db = dir.0.join("default.db");
    std::env::set_var("TASKER_DATABASE_URL", format!("sqlite:{}", db.display()));
    for config in [None, Some(&b"\0"[..])] {
        let boot = api.bootstrap_raw(config);
        let worker_id = started(&boot).to_owned();
        assert_eq!(boot["transport"], "ring", "{boot}");
        let region = std::path::PathBuf::from(boot["region_path"].as_str().unwrap());
        assert!(region.starts_with(tasker_ring::default_dir()), "{boot}");
        assert!(region.exists());
        assert_eq!(api.status()["namespace"], "default");
        let m = api.metrics();
        assert_eq!(m["source"]["backend"], "sqlite", "the store is the default source: {m}");
        assert!(m["source"]["database"].as_str().unwrap().ends_with("default.db"), "{m}");
        assert!(db.exists(), "the store named by TASKER_DATABASE_URL was created");
        assert_eq!(api.stop()["worker_id"], worker_id.as_str());
        assert!(!region.exists());
    }
    std::env::remove_var("TASKER_DATABASE_URL");
    // The top-level database_url (a seed-style config) wins over the environment and source.database_url.
    std::env::set_var(
        "TASKER_DATABASE_URL",
        format!("sqlite:{}", dir.0.join("env.db").display()),
    );
    started(&api.bootstrap(&format!(
        r#"{{"log_level":"warn","transport":"ffi","database_url":"sqlite:{}","source":{{"kind":"store","database_url":"sqlite:{}"}}}}"#,
        dir.0.join("top.db").display(),
        dir.0.join("inner.db").display()
    )));
    let m = api.metrics();
    std::env::remove_var("TASKER_DATABASE_URL");
    assert!(m["source"]["database"].as_str().unwrap().ends_with("top.db"), "{m}");
    api.stop();
    assert!(!dir.0.join("env.db").exists() && !dir.0.join("inner.db").exists());
    // A stopped worker is replaced; a failed set-up changes nothing.
    let first = started(&api.bootstrap(
        r#"{"transport":"ffi","log_level":"warn","namespace":"a","source":{"kind":"synthetic","count":0}}"#,
    ))
    .to_owned();
    api.stop();
    let v = api
        .bootstrap(r#"{"transport":"ring","region_dir":"/nonexistent/tasker-ffi-test","source":{"kind":"synthetic"}}"#);
    assert_eq!(v["status"], "error", "{v}");
    assert!(v["message"].as_str().unwrap().contains("worker setup failed"), "{v}");
    assert_eq!(
        api.status()["worker_id"],
        first.as_str(),
        "the stopped worker is still the one reported"
    );
    let second = started(&api.bootstrap(
        r#"{"transport":"ffi","log_level":"warn","namespace":"b","source":{"kind":"synthetic","count":0}}"#,
    ))
    .to_owned();
    assert_ne!(first, second);
    let status = api.status();
    assert_eq!(
        (status["worker_id"].as_str(), status["namespace"].as_str()),
        (Some(&*second), Some("b"))
    );
    api.stop();
}

#[test]
fn graceful_shutdown_returns_at_once_and_drains() {
    let _serial = serial();
    let api = api();
    let template = CompletionTemplate::success();

    // Everything handed out is completed: the worker stops by itself once nothing is outstanding.
    started(&api.bootstrap(r#"{"transport":"ffi","log_level":"warn","source":{"kind":"synthetic","count":5}}"#));
    api.wait_metrics(Duration::from_secs(10), |m| u(m, "pending_count") == 5);
    let first = poll_wait(api);
    let t = Instant::now();
    let g = api.graceful();
    assert!(t.elapsed() < Duration::from_millis(100), "returns at once");
    assert_eq!(g["status"], "draining", "{g}");
    assert_eq!((u(&g, "pending_count"), u(&g, "in_flight_count")), (4, 1), "{g}");
    assert!(api.running(), "draining counts as running");
    assert_eq!(api.graceful()["status"], "draining", "repeatable");
    let mut events = vec![first];
    while let Some(e) = api.poll() {
        events.push(e);
    }
    assert_eq!(
        events.len(),
        5,
        "events already claimed are still handed out while draining"
    );
    for e in &events {
        let ids: EventIds<'_> = serde_json::from_str(e).unwrap();
        assert_eq!(api.complete(ids.event_id, &template.for_step(ids.step_uuid)), 1);
    }
    wait_stopped(api);
    assert_eq!(api.graceful()["status"], "stopped");
    let m = api.metrics();
    assert_eq!((u(&m, "completed_count"), u(&m, "failed_count")), (5, 0), "{m}");
    assert_eq!(api.stop(), serde_json::json!({"status":"not_running"}));

    // Past the shutdown timeout the event in flight fails as a timeout; the four never polled are given back
    // to the source (released), not failed.
    started(&api.bootstrap(
        r#"{"transport":"ffi","log_level":"warn","shutdown_timeout_ms":100,"source":{"kind":"synthetic","count":5}}"#,
    ));
    api.wait_metrics(Duration::from_secs(10), |m| u(m, "pending_count") == 5);
    let e = poll_wait(api);
    assert_eq!(api.graceful()["status"], "draining");
    wait_stopped(api);
    let m = api.metrics();
    assert_eq!(
        (
            u(&m, "failed_count"),
            u(&m, "timed_out_count"),
            u(&m, "released_count"),
            u(&m, "in_flight_count"),
            u(&m, "pending_count")
        ),
        (1, 1, 4, 0, 0),
        "{m}"
    );
    let ids: EventIds<'_> = serde_json::from_str(&e).unwrap();
    assert_eq!(
        api.complete(ids.event_id, &template.for_step(ids.step_uuid)),
        0,
        "too late"
    );
    api.stop();
}

fn wait_stopped(api: &Api) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while api.running() {
        assert!(Instant::now() < deadline, "worker did not stop: {}", api.status());
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn timeouts_and_starvation_through_the_c_api() {
    let _serial = serial();
    let api = api();
    let template = CompletionTemplate::success();
    started(&api.bootstrap(
        r#"{"transport":"ffi","log_level":"warn","completion_timeout_ms":300,"starvation_threshold_ms":50,
            "source":{"kind":"synthetic","count":1}}"#,
    ));
    let e = poll_wait(api);
    std::thread::sleep(Duration::from_millis(80));
    // SAFETY: no arguments.
    unsafe { (api.check_starvation_warnings)() };
    let m = api.metrics();
    assert_eq!(
        (m["starvation_detected"].as_bool(), u(&m, "starving_event_count")),
        (Some(true), 1),
        "{m}"
    );
    assert!(u(&m, "oldest_in_flight_age_ms") >= 50, "{m}");
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: no arguments.
    unsafe { (api.cleanup_timeouts)() };
    let m = api.metrics();
    assert_eq!(
        (
            u(&m, "timed_out_count"),
            u(&m, "failed_count"),
            u(&m, "in_flight_count")
        ),
        (1, 1, 0),
        "{m}"
    );
    let ids: EventIds<'_> = serde_json::from_str(&e).unwrap();
    assert_eq!(
        api.complete(ids.event_id, &template.for_step(ids.step_uuid)),
        0,
        "timed out: refused"
    );
    assert_eq!(u(&api.metrics(), "refused_completions"), 1);
    api.stop();
}

#[test]
fn a_mapping_outlives_its_worker_until_released() {
    let _serial = serial();
    let api = api();
    let dir = TempDir::new("map");
    let config = format!(
        r#"{{"transport":"ring","log_level":"warn","region_dir":{},"source":{{"kind":"synthetic","count":0}}}}"#,
        dir.json()
    );
    started(&api.bootstrap(&config));
    let (mut len1, mut len2) = (0usize, 0usize);
    // SAFETY: writable size_t values.
    let (a, b) = unsafe { ((api.map_ring_region)(&mut len1), (api.map_ring_region)(&mut len2)) };
    assert!(!a.is_null());
    assert_eq!((a, len1), (b, len2), "repeated maps return the same mapping");
    assert_eq!(api.release(a), 1);
    api.stop();
    let mut len = 1usize;
    assert!(
        // SAFETY: a writable size_t.
        unsafe { (api.map_ring_region)(&mut len) }.is_null(),
        "a stopped worker hands out no mapping"
    );
    assert_eq!(len, 0);
    // A new worker replaces the stopped one; the old mapping is still held by the outstanding map.
    started(&api.bootstrap(&config));
    let mut len3 = 0usize;
    // SAFETY: a writable size_t.
    let c = unsafe { (api.map_ring_region)(&mut len3) };
    assert!(!c.is_null() && c != a);
    // SAFETY: `a` is still mapped: one map of it is outstanding.
    assert_eq!(unsafe { std::slice::from_raw_parts(a, 8) }, b"TSKRRING");
    assert_eq!(api.release(a), 1, "the last release unmaps the old region");
    assert_eq!(api.release(a), 0);
    api.stop();
    // SAFETY: `c` is still mapped (its worker stopped, but the map is outstanding).
    assert_eq!(unsafe { std::slice::from_raw_parts(c, 8) }, b"TSKRRING");
    assert_eq!(api.release(c), 1);
}

#[test]
fn ring_refusals_are_kept_with_their_event_ids_until_drained() {
    let _serial = serial();
    let api = api();
    let dir = TempDir::new("refusals");
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ring","log_level":"error","region_dir":{},"source":{{"kind":"synthetic","count":0}}}}"#,
        dir.json()
    ));
    started(&boot);
    assert_eq!(api.refusals(), None, "nothing refused yet");
    let region = tasker_ring::Region::attach(std::path::Path::new(boot["region_path"].as_str().unwrap())).unwrap();
    let mut completions = region.producer(tasker_ring::RingId::Completions).unwrap();
    // Written into shared memory like any completion; the worker decides later.
    let never_read = "0190f3a2-7c1e-7b3a-9d2e-00000000dead";
    let result = r#"{"step_uuid":"0190f3a2-7c1e-7b3a-9d2e-00000000beef","success":true}"#;
    completions
        .try_write(
            tasker_ring::record_type::COMPLETION,
            format!("{never_read}{result}").as_bytes(),
        )
        .unwrap();
    api.wait_metrics(GENEROUS, |m| u(m, "refused_completions") == 1);
    let batch = api.refusals().expect("the refusal, with its id");
    assert_eq!(batch["dropped"], 0, "{batch}");
    let refusals = batch["refusals"].as_array().unwrap();
    assert_eq!(refusals.len(), 1, "{batch}");
    assert_eq!(refusals[0]["event_id"], never_read);
    assert_eq!(refusals[0]["kind"], "not_in_flight");
    assert!(
        refusals[0]["message"].as_str().unwrap().contains("not in flight"),
        "{batch}"
    );
    assert!(u(&refusals[0], "at_unix_ms") > 1_700_000_000_000);
    assert_eq!(api.refusals(), None, "drained: each refusal is returned once");
    drop(completions);
    drop(region);
    api.stop();
}

/// Issue 20: `release_ring_region` was keyed by the address alone, so once a mapping had been released and
/// the system placed a newer one at the same address, a stale release of the old address released the newer
/// mapping under its holder. A mapping taken with `map_ring_region_handle` is released only by its own
/// handle: neither a stale handle nor an address releases it.
#[test]
fn a_mapping_handle_releases_only_its_own_mapping() {
    let _serial = serial();
    let api = api();
    let dir = TempDir::new("map-handle");
    let config = format!(
        r#"{{"transport":"ring","log_level":"error","region_dir":{},"source":{{"kind":"synthetic","count":0}}}}"#,
        dir.json()
    );
    started(&api.bootstrap(&config));
    let (a, len, h1) = api.map_handle();
    assert!(!a.is_null() && len > 0 && h1 != 0);
    let (a2, _, h2) = api.map_handle();
    assert_eq!(a2, a, "the same mapping");
    assert_ne!(h2, h1, "a handle per call");
    assert_eq!(api.release_handle(h1), 1);
    assert_eq!(api.release_handle(h1), 0, "a handle releases once");
    assert_eq!(api.release(a), 0, "an address never releases a mapping taken by handle");
    assert_eq!(api.release_handle(h2), 1);
    api.stop();
    // The old region is unmapped when the next bootstrap replaces its worker; the new one may well land
    // at the same address.
    started(&api.bootstrap(&config));
    let (c, _, h3) = api.map_handle();
    assert!(!c.is_null());
    eprintln!("the new mapping reused the old address: {}", c == a);
    assert_eq!(api.release_handle(h1), 0, "stale handle");
    assert_eq!(api.release_handle(h2), 0, "stale handle");
    assert_eq!(api.release(a), 0, "stale address");
    api.stop();
    started(&api.bootstrap(&config));
    // SAFETY: `c` is still mapped: its handle is outstanding, whatever the stale releases above tried.
    assert_eq!(unsafe { std::slice::from_raw_parts(c, 8) }, b"TSKRRING");
    assert_eq!(api.release_handle(h3), 1);
    let (none, len, handle) = {
        api.stop();
        api.map_handle()
    };
    assert!(
        none.is_null() && len == 0 && handle == 0,
        "no running ring worker: NULL, 0, 0"
    );
}
