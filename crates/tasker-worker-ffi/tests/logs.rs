//! `poll_worker_logs` and `log_stderr`, through the C ABI.
//!
//! The subscriber's level and whether it prints to stderr are fixed by the first bootstrap in a process.
//! This binary's own process therefore bootstraps only at "debug" (with `log_stderr` false, to keep the
//! test output quiet); the "warn" level and both `log_stderr` values are checked in child processes: this
//! binary run again with `TASKER_LOGS_CHILD` set, running only `child` (which does nothing without it).
//! The buffer's overflow record is tested in `src/logs.rs` (4096+ records are not worth a worker here).

use tasker_test_support::ffi as support;

use serde_json::{json, Value};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};
use support::api;

/// Set (to the `log_stderr` value) in a child process.
const CHILD: &str = "TASKER_LOGS_CHILD";
const UNKNOWN_EVENT: &str = "00000000-0000-0000-0000-00000000beef";
const RESULT: &str = r#"{"step_uuid":"00000000-0000-0000-0000-000000000002","success":true}"#;

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64
}

/// Checks one record's shape: exactly the five keys, with their types.
fn check_shape(r: &Value, after_ms: u64) {
    let o = r.as_object().unwrap_or_else(|| panic!("not an object: {r}"));
    let mut keys: Vec<&str> = o.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["fields", "level", "message", "target", "ts_unix_ms"], "{r}");
    let ts = r["ts_unix_ms"].as_u64().unwrap_or_else(|| panic!("ts_unix_ms: {r}"));
    assert!(ts >= after_ms && ts <= now_ms(), "ts_unix_ms {ts} out of range: {r}");
    assert!(
        ["error", "warn", "info", "debug", "trace"].contains(&r["level"].as_str().unwrap_or("")),
        "{r}"
    );
    assert!(r["target"].is_string() && r["message"].is_string(), "{r}");
    let fields = r["fields"].as_object().unwrap_or_else(|| panic!("fields: {r}"));
    for (k, v) in fields {
        assert!(
            v.is_string() || v.is_number() || v.is_boolean(),
            "field {k} = {v} in {r}"
        );
    }
}

/// The first record with this message.
fn find<'a>(records: &'a [Value], message: &str) -> Option<&'a Value> {
    records.iter().find(|r| r["message"] == message)
}

#[test]
fn debug_records_come_back_once_with_their_shape() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let api = api();
    let t0 = now_ms();
    let boot = api.bootstrap(
        r#"{"transport":"ffi","log_level":"debug","log_stderr":false,"source":{"kind":"synthetic","count":1}}"#,
    );
    assert_eq!(boot["status"], "started", "{boot}");
    let worker_id = boot["worker_id"].as_str().unwrap();
    assert_eq!(api.complete(UNKNOWN_EVENT, RESULT), 0);

    let records = api.logs().expect("records after a debug bootstrap");
    for r in &records {
        check_shape(r, t0);
    }
    let ts: Vec<u64> = records.iter().map(|r| r["ts_unix_ms"].as_u64().unwrap()).collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ts:?}");

    let config = find(&records, "bootstrap config accepted").expect("the debug record");
    assert_eq!(
        (&config["level"], &config["target"]),
        (&json!("debug"), &json!("tasker_worker"))
    );
    assert_eq!(
        config["fields"],
        json!({"namespace": "default", "transport": "Ffi", "log_stderr": false})
    );
    let started = find(&records, "worker started").expect("the info record");
    assert_eq!(started["level"], "info");
    assert_eq!(started["fields"]["worker_id"], worker_id);
    let refused = find(&records, "completion refused").expect("the warn record");
    assert_eq!(refused["level"], "warn");
    assert!(
        refused["fields"]["refusal"].as_str().is_some_and(|s| !s.is_empty()),
        "{refused}"
    );
    assert!(
        records.iter().all(|r| r["target"] != "tasker_worker::logs"),
        "nothing dropped: {records:?}"
    );

    assert!(api.logs().is_none(), "a poll empties the buffer");
    api.stop();
}

/// Run in a child process only (see the module doc): bootstraps at "warn" with the given `log_stderr`,
/// and checks that a warn record is buffered and the info and debug ones of the bootstrap are not.
#[test]
fn child() {
    let Some(log_stderr) = std::env::var_os(CHILD) else {
        return;
    };
    let log_stderr = log_stderr.to_str().unwrap();
    let api = api();
    let boot = api.bootstrap(&format!(
        r#"{{"transport":"ffi","log_level":"warn","log_stderr":{log_stderr},"source":{{"kind":"synthetic","count":1}}}}"#
    ));
    assert_eq!(boot["status"], "started", "{boot}");
    assert_eq!(api.complete(UNKNOWN_EVENT, RESULT), 0);
    let records = api.logs().expect("the refusal's warn record");
    let refused = find(&records, "completion refused").expect("the warn record");
    assert_eq!(refused["level"], "warn");
    for r in &records {
        assert!(
            matches!(r["level"].as_str(), Some("warn" | "error")),
            "below the level: {r}"
        );
    }
    assert!(find(&records, "worker started").is_none());
    assert!(find(&records, "bootstrap config accepted").is_none());
    assert!(api.logs().is_none());
    api.stop();
}

#[test]
fn warn_level_and_log_stderr_in_child_processes() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for log_stderr in [true, false] {
        let out = Command::new(&exe)
            .args(["child", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD, log_stderr.to_string())
            .output()
            .expect("run this test binary again");
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success() && stdout.contains("1 passed"),
            "child with log_stderr {log_stderr} failed:\n{stdout}\n{stderr}"
        );
        assert_eq!(
            stderr.contains("completion refused"),
            log_stderr,
            "stderr of the child with log_stderr {log_stderr}:\n{stderr}"
        );
        assert!(!stderr.contains("worker started"), "below the level:\n{stderr}");
    }
}
