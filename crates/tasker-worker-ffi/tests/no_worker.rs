//! Before any bootstrap: every function answers "no worker" without failing. Its own test binary, so the
//! library's global worker is guaranteed never to have been started here.

use tasker_test_support::ffi as support;

use serde_json::json;

#[test]
fn every_function_answers_when_no_worker_was_ever_started() {
    let api = support::api();
    assert!(!api.running());
    assert_eq!(api.status(), json!({"running": false}));
    assert_eq!(api.stop(), json!({"status": "not_running"}));
    assert_eq!(api.stop(), json!({"status": "not_running"}));
    assert_eq!(api.graceful(), json!({"status": "not_running"}));
    let m = api.metrics();
    for key in [
        "pending_count",
        "in_flight_count",
        "completed_count",
        "failed_count",
        "starving_event_count",
        "refused_completions",
        "timed_out_count",
    ] {
        assert_eq!(m[key], 0, "{key} in {m}");
    }
    assert_eq!(m["starvation_detected"], false);
    assert!(api.poll().is_none());
    assert_eq!(api.log(2, Some(b"from js\0"), Some(b"{\"k\":1}\0")), 0, "accepted");
    assert_eq!(
        api.log(9, Some(b"from js\0"), None),
        -1,
        "input is checked all the same"
    );
    assert!(
        api.logs().is_none(),
        "no subscriber, so no log records, before the first bootstrap"
    );
    // A client call without a store named and no worker to take it from: recoverable (bootstrap, retry).
    let answer = api.client(r#"{"op":"get_task","args":{"task_uuid":"0190d2b2-7a5c-7a3e-9b1e-1c2d3e4f5a6b"}}"#);
    assert_eq!(
        (&answer["success"], &answer["recoverable"]),
        (&json!(false), &json!(true)),
        "{answer}"
    );
    assert!(
        answer["error"].as_str().unwrap().contains("no worker is bootstrapped"),
        "{answer}"
    );
    assert_eq!(api.abi_version().0, 1);
    assert_eq!(
        api.complete(
            "00000000-0000-0000-0000-000000000001",
            r#"{"step_uuid":"00000000-0000-0000-0000-000000000002","success":true}"#
        ),
        0
    );
    let mut len = 5usize;
    // SAFETY: a writable size_t.
    assert!(unsafe { (api.map_ring_region)(&mut len) }.is_null());
    assert_eq!(len, 0);
    // SAFETY: no arguments.
    unsafe {
        (api.check_starvation_warnings)();
        (api.cleanup_timeouts)();
    }
}
