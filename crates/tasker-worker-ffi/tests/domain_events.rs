//! `poll_domain_events` through the C ABI, on a worker over a SQLite store (the per-poll transport plays
//! the handlers): nothing before the first call, then a linear task run to completion gives
//! `step.completed` x4 and `task.completed` with their metadata, and a step failing with a retryable error
//! gives `step.retry_requested` until its attempts run out, then `step.failed`. The log's bounds (the
//! oldest dropped and counted) are tested in tasker-worker-core (`domain_events.rs`): 4096+ steps are not
//! worth a worker here.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tasker_test_support::ffi as support;

fn client(op: &str, args: Value) -> Value {
    let answer = support::api().client(&json!({"op": op, "args": args}).to_string());
    assert_eq!(answer["success"], true, "{answer}");
    answer["data"].clone()
}

fn create(namespace: &str) -> Value {
    client(
        "create_task",
        json!({"name": "linear_workflow", "namespace": namespace, "version": "1.0.0",
               "context": {"even_number": 2}, "initiator": "test", "source_system": "cargo", "reason": "events",
               "correlation_id": format!("corr-{namespace}")}),
    )
}

fn failure(event: &Value) -> String {
    json!({"step_uuid": event["step_uuid"], "success": false, "status": "error",
           "error": {"message": "boom", "error_type": "handler_error", "retryable": true},
           "metadata": {"retryable": true}})
    .to_string()
}

/// Answers each step event with `answer` until `done` holds for the domain events gathered so far
/// (fails after 30 s); returns those events.
fn run_until(answer: impl Fn(&Value) -> String, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let api = support::api();
    let until = Instant::now() + Duration::from_secs(30);
    let mut events = Vec::new();
    loop {
        if let Some(e) = api.poll() {
            let e: Value = serde_json::from_str(&e).unwrap();
            assert_eq!(api.complete(e["event_id"].as_str().unwrap(), &answer(&e)), 1);
        }
        if let Some(batch) = api.domain_events() {
            assert_eq!(batch["dropped"], 0, "{batch}");
            events.extend(batch["events"].as_array().unwrap().iter().cloned());
            if done(&events) {
                return events;
            }
        }
        assert!(Instant::now() < until, "not done; domain events so far: {events:#?}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn names(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["eventName"].as_str().unwrap()).collect()
}

#[test]
fn a_task_to_completion_and_a_step_out_of_retries() {
    let api = support::api();
    assert!(api.domain_events().is_none(), "nothing recorded before the first call");
    let dir = support::TempDir::new("events");
    let boot = api.bootstrap(
        &json!({"transport": "ffi", "log_level": "warn", "log_stderr": false,
                "database_url": format!("sqlite:{}", dir.0.join("events.db").display()), "region_dir": dir.0})
        .to_string(),
    );
    assert_eq!(boot["status"], "started", "{boot}");
    let worker_id = boot["worker_id"].as_str().unwrap();

    let task = create("events_ok");
    let task_uuid = task["task_uuid"].as_str().unwrap();
    let t0 = std::time::SystemTime::now();
    let events = run_until(
        |e| tasker_store::templates::reference_result(e).unwrap().to_string(),
        |events| names(events).contains(&"task.completed"),
    );
    assert_eq!(
        names(&events),
        [
            "step.completed",
            "step.completed",
            "step.completed",
            "step.completed",
            "task.completed"
        ]
    );
    let steps = client("list_task_steps", json!({"task_uuid": task_uuid}));
    let mut ids = std::collections::HashSet::new();
    for (i, e) in events.iter().enumerate() {
        assert!(ids.insert(e["eventId"].as_str().unwrap().to_string()), "unique ids");
        assert_eq!(e["eventVersion"], "1.0");
        let m = &e["metadata"];
        assert_eq!(
            (&m["taskUuid"], &m["namespace"], &m["correlationId"], &m["firedBy"]),
            (
                &json!(task_uuid),
                &json!("events_ok"),
                &json!("corr-events_ok"),
                &json!(worker_id)
            ),
            "{e}"
        );
        let fired_at = m["firedAt"].as_str().unwrap();
        assert!(fired_at.len() == 24 && fired_at.ends_with('Z'), "{fired_at}");
        if i < 4 {
            assert_eq!(m["stepUuid"], steps[i]["step_uuid"], "{e}");
            assert_eq!(m["stepName"], format!("linear_step_{}", i + 1));
            let result = &e["payload"]["execution_result"];
            assert_eq!(
                (&result["success"], &e["payload"]["attempts"]),
                (&json!(true), &json!(1))
            );
            assert!(result["result"]["value"].is_i64(), "{e}");
            assert_eq!(
                result["result"], steps[i]["results"]["result"],
                "the result as persisted"
            );
        } else {
            let m = m.as_object().unwrap();
            assert!(!m.contains_key("stepUuid") && !m.contains_key("stepName"), "{m:?}");
            assert_eq!(e["payload"], json!({}));
        }
    }
    assert!(fired_after(&events[0], t0));

    // linear's steps get 3 attempts: retried after 1 s, then 2 s, then failed for good.
    let task = create("events_fail");
    let events = run_until(failure, |events| names(events).contains(&"step.failed"));
    assert_eq!(
        names(&events),
        ["step.retry_requested", "step.retry_requested", "step.failed"]
    );
    let attempts: Vec<(&Value, &Value)> = events
        .iter()
        .map(|e| (&e["payload"]["attempts"], &e["payload"]["backoff_ms"]))
        .collect();
    assert_eq!(
        attempts,
        [
            (&json!(1), &json!(1000)),
            (&json!(2), &json!(2000)),
            (&json!(3), &Value::Null)
        ]
    );
    for e in &events {
        assert_eq!(
            (&e["metadata"]["taskUuid"], &e["metadata"]["stepName"]),
            (&task["task_uuid"], &json!("linear_step_1"))
        );
        assert_eq!(e["payload"]["execution_result"]["error"]["message"], "boom");
    }
    assert!(api.domain_events().is_none(), "each event once");
    api.stop();
}

/// Whether the event's `firedAt` is not before `t` (to the millisecond).
fn fired_after(event: &Value, t: std::time::SystemTime) -> bool {
    let ms = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    event["metadata"]["firedAt"].as_str().unwrap() >= tasker_store::iso8601(ms).as_str()
}
