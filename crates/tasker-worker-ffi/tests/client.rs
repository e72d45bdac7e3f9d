//! `client_call` and `log_message` through the C ABI: malformed requests and unknown ops (not recoverable),
//! an unreachable store (recoverable), every op round-tripped on SQLite (the bootstrapped worker's store) and
//! on PostgreSQL (`database_url` in args), and a JS log record coming back from `poll_worker_logs` with its
//! fields. The store-side semantics of each op are tested in tasker-store's scenarios.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use tasker_store::test_support::PgCluster;
use tasker_test_support::ffi as support;

fn ok(answer: Value) -> Value {
    assert_eq!(answer["success"], true, "{answer}");
    assert!(answer.get("error").is_none(), "{answer}");
    answer["data"].clone()
}

fn fails(answer: &Value, recoverable: bool, why: &str) {
    assert_eq!(answer["success"], false, "{answer}");
    assert_eq!(answer["recoverable"], recoverable, "{answer}");
    assert!(answer["error"].as_str().unwrap().contains(why), "{why}: {answer}");
}

fn call(op: &str, args: Value) -> Value {
    support::api().client(&json!({"op": op, "args": args}).to_string())
}

#[test]
fn malformed_requests_and_unknown_ops_are_not_recoverable() {
    let api = support::api();
    fails(&api.client_raw(None), false, "request_json is NULL");
    fails(&api.client_raw(Some(b"\xff\xfe\0")), false, "not valid UTF-8");
    fails(&api.client("{not json"), false, "not JSON");
    fails(&api.client(r#"{"op": 7}"#), false, "no string `op`");
    fails(&call("launch_rockets", json!({})), false, "unknown op `launch_rockets`");
    fails(&call("get_task", json!({"task_uuid": "not-a-uuid"})), false, "bad args");
    fails(
        &call("list_tasks", json!({"status": "finished"})),
        false,
        "unknown task status",
    );
}

#[test]
fn an_unreachable_store_is_recoverable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://u:secret@127.0.0.1:{port}/x");
    let t0 = Instant::now();
    let answer = call("get_task", json!({"task_uuid": uuid(), "database_url": url}));
    fails(&answer, true, "unreachable");
    assert!(!answer.to_string().contains("secret"), "password redacted: {answer}");
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    // health answers, saying the store is not reachable.
    let h = ok(call("health", json!({"database_url": url})));
    assert_eq!(
        (&h["healthy"], &h["store_reachable"], &h["recoverable"]),
        (&json!(false), &json!(false), &json!(true))
    );
}

fn uuid() -> String {
    tasker_store::Uuid::now_v7().to_string()
}

/// Every op on one store: create (idempotent), get, list, steps, a step run by the worker, its history,
/// cancel, health, and the errors of unknown tasks and templates.
fn round_trip(db: Option<&str>, run_step: impl Fn(&str)) {
    let with = |mut args: Value| {
        if let Some(db) = db {
            args["database_url"] = json!(db);
        }
        args
    };
    let request = json!({
        "name": "linear_workflow", "namespace": "ffi", "version": "1.0.0", "context": {"even_number": 2},
        "initiator": "ffi-test", "source_system": "cargo", "reason": "round trip", "tags": ["x"],
        "idempotency_key": "ffi-key"
    });
    let task = ok(call("create_task", with(request.clone())));
    let task_uuid = task["task_uuid"].as_str().unwrap().to_string();
    // The answer is read back after the commit: on the bootstrapped worker's store, the worker may already
    // have claimed the first step (a CI run saw `in_progress`), so its counts and status can move.
    assert!(
        task["status"] == json!("pending") || task["status"] == json!("in_progress"),
        "{task}"
    );
    assert_eq!((&task["step_count"], &task["tags"]), (&json!(4), &json!(["x"])));
    let stable = |t: &Value| {
        (
            t["task_uuid"].clone(),
            t["created_at"].clone(),
            t["correlation_id"].clone(),
        )
    };
    assert_eq!(
        stable(&ok(call("create_task", with(request)))),
        stable(&task),
        "idempotent"
    );
    assert_eq!(
        stable(&ok(call("get_task", with(json!({"task_uuid": task_uuid}))))),
        stable(&task)
    );
    let page = ok(call("list_tasks", with(json!({"namespace": "ffi", "limit": 10}))));
    assert_eq!(
        (&page["total_count"], &page["tasks"][0]["task_uuid"]),
        (&json!(1), &json!(task_uuid))
    );

    let steps = ok(call("list_task_steps", with(json!({"task_uuid": task_uuid}))));
    let first = steps[0]["step_uuid"].as_str().unwrap().to_string();
    assert_eq!(steps[0]["name"], "linear_step_1");
    assert!(
        ["ready", "in_progress"].contains(&steps[0]["state"].as_str().unwrap()),
        "{steps}"
    );
    run_step(&task_uuid);
    let step = ok(call(
        "get_step",
        with(json!({"task_uuid": task_uuid, "step_uuid": first})),
    ));
    assert_eq!(
        (&step["state"], &step["attempts"]),
        (&json!("complete"), &json!(1)),
        "{step}"
    );
    assert_eq!(step["results"]["result"]["value"], 4);
    let history = ok(call(
        "step_audit_history",
        with(json!({"task_uuid": task_uuid, "step_uuid": first})),
    ));
    assert_eq!(history.as_array().unwrap().len(), 1, "{history}");
    assert_eq!(
        (&history[0]["attempt"], &history[0]["outcome"]),
        (&json!(1), &json!("succeeded"))
    );
    assert!(history[0]["claimed_at"].as_str().unwrap().ends_with('Z'));

    let cancelled = ok(call("cancel_task", with(json!({"task_uuid": task_uuid}))));
    assert_eq!(cancelled["task"]["status"], "cancelled", "{cancelled}");
    assert_eq!(
        cancelled["task"]["step_counts"]["cancelled"],
        cancelled["steps_cancelled"]
    );
    let h = ok(call("health", with(json!({}))));
    assert_eq!(
        (&h["healthy"], &h["schema_version"], &h["tasks"]),
        (&json!(true), &json!(4), &json!(1)),
        "{h}"
    );

    let missing = uuid();
    fails(&call("get_task", with(json!({"task_uuid": missing}))), false, "no task");
    fails(
        &call("cancel_task", with(json!({"task_uuid": missing}))),
        false,
        "no task",
    );
    fails(
        &call("get_step", with(json!({"task_uuid": task_uuid, "step_uuid": missing}))),
        false,
        "has no step",
    );
    let unknown = call(
        "create_task",
        with(
            json!({"name": "nope", "namespace": "ffi", "version": "1", "initiator": "i", "source_system": "s",
                    "reason": "r"}),
        ),
    );
    fails(&unknown, false, "unknown template `nope`");
    assert!(
        unknown["error"].as_str().unwrap().contains("linear_workflow 1.0.0"),
        "{unknown}"
    );
}

/// One process, one worker: the SQLite round trip runs against the bootstrapped worker's store (no
/// `database_url`), and its first step is claimed and completed by the worker on the per-poll transport.
/// The log records are checked here too (they need the bootstrap's subscriber).
#[test]
fn round_trip_on_the_bootstrapped_workers_sqlite_store_and_js_logs() {
    let api = support::api();
    let dir = support::TempDir::new("client");
    let db = dir.0.join("client.db");
    // Templates registered at bootstrap: a directory of them (a broken file fails the bootstrap, naming it).
    let templates = dir.0.join("templates");
    std::fs::create_dir(&templates).unwrap();
    std::fs::write(templates.join("bad.json"), "{\"name\": ").unwrap();
    let config = |templates_path: &std::path::Path| {
        json!({"transport": "ffi", "log_level": "info", "log_stderr": false, "templates_path": templates_path,
               "database_url": format!("sqlite:{}", db.display()), "region_dir": dir.0})
        .to_string()
    };
    let boot = api.bootstrap(&config(&templates));
    assert_eq!(boot["status"], "error", "{boot}");
    assert!(
        boot["message"]
            .as_str()
            .unwrap()
            .contains("templates_path: template file"),
        "{boot}"
    );
    std::fs::remove_file(templates.join("bad.json")).unwrap();
    let shop = json!({"name": "ffi_orders", "namespace_name": "shop", "version": "1.0.0",
                      "steps": [{"name": "pick", "handler": {"callable": "Shop.Pick", "initialization": {"bin": 4}}}]});
    std::fs::write(templates.join("orders.json"), shop.to_string()).unwrap();
    let boot = api.bootstrap(&config(&templates));
    assert_eq!(boot["status"], "started", "{boot}");
    let next_event = || {
        let until = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(e) = api.poll() {
                break serde_json::from_str::<Value>(&e).unwrap();
            }
            assert!(Instant::now() < until, "no event");
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    round_trip(None, |task_uuid| {
        let event = next_event();
        assert_eq!(event["task_uuid"], task_uuid);
        let result = tasker_store::templates::reference_result(&event).unwrap();
        assert_eq!(
            api.complete(event["event_id"].as_str().unwrap(), &result.to_string()),
            1
        );
        // Persisted by the worker in the background.
        let step = event["step_uuid"].as_str().unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        while call("get_step", json!({"task_uuid": task_uuid, "step_uuid": step}))["data"]["state"] != "complete" {
            assert!(Instant::now() < until, "the result was not persisted");
            std::thread::sleep(Duration::from_millis(10));
        }
    });

    // A task of the template read at bootstrap, and of one registered by a client call.
    let request = |name: &str| {
        json!({"name": name, "namespace": "shop", "version": "1.0.0", "initiator": "i", "source_system": "s",
               "reason": "r"})
    };
    let task = ok(call("create_task", request("ffi_orders")));
    // The cancelled task's step that was running at the cancel may come first: it finishes.
    let event = loop {
        let e = next_event();
        if e["task_uuid"] == task["task_uuid"] {
            break e;
        }
        let result = tasker_store::templates::reference_result(&e).unwrap();
        assert_eq!(api.complete(e["event_id"].as_str().unwrap(), &result.to_string()), 1);
    };
    let definition = &event["task_sequence_step"]["step_definition"];
    assert_eq!(
        (
            &definition["handler"]["callable"],
            &definition["handler"]["initialization"]
        ),
        (&json!("Shop.Pick"), &json!({"bin": 4}))
    );
    let done = json!({"step_uuid": event["step_uuid"], "success": true, "result": {"picked": true}});
    assert_eq!(api.complete(event["event_id"].as_str().unwrap(), &done.to_string()), 1);
    let inline = json!({"name": "ffi_returns", "namespace": "shop", "version": "1.0.0",
                        "steps": [{"name": "a", "handler": {"callable": "Shop.A"}},
                                  {"name": "b", "handler": {"callable": "Shop.B"}, "dependencies": ["a"]}]});
    let registered = ok(call("register_template", json!({"template": inline})));
    assert_eq!(registered["templates"][0]["steps"], json!(["a", "b"]));
    let task = ok(call("create_task", request("ffi_returns")));
    assert_eq!(task["step_count"], 2);
    let registered = ok(call("register_template", json!({"path": templates})));
    assert_eq!(
        registered["templates"][0]["name"], "ffi_orders",
        "the same definition again is fine"
    );
    fails(
        &call("register_template", json!({"path": dir.0.join("missing.json")})),
        false,
        "missing.json",
    );

    // JS logs: with fields, without, below the level, and refused input.
    api.logs(); // drain the worker's own records
    let fields = br#"{"order_id": 17, "user": {"id": "u1"}, "ok": true}"#;
    let with_nul = |b: &[u8]| [b, b"\0"].concat();
    assert_eq!(api.log(1, Some(b"payment declined\0"), Some(&with_nul(fields))), 0);
    assert_eq!(api.log(2, Some(b"plain\0"), None), 0);
    assert_eq!(api.log(3, Some(b"debug is below info\0"), None), 0);
    assert_eq!(api.log(5, Some(b"x\0"), None), -1, "bad level");
    assert_eq!(api.log(-1, Some(b"x\0"), None), -1, "bad level");
    assert_eq!(api.log(0, None, None), -2, "NULL message");
    assert_eq!(api.log(0, Some(b"\xff\0"), None), -2, "message not UTF-8");
    assert_eq!(api.log(0, Some(b"x\0"), Some(b"[1]\0")), -3, "fields not an object");
    assert_eq!(api.log(0, Some(b"x\0"), Some(b"{\0")), -3, "fields not JSON");
    let records: Vec<Value> = api
        .logs()
        .expect("the JS records")
        .into_iter()
        .filter(|r| r["target"] == "js")
        .collect();
    assert_eq!(records.len(), 2, "{records:?}");
    assert_eq!(
        (&records[0]["level"], &records[0]["message"]),
        (&json!("warn"), &json!("payment declined"))
    );
    assert_eq!(
        records[0]["fields"],
        json!({"order_id": 17, "user": {"id": "u1"}, "ok": true})
    );
    assert_eq!(
        (&records[1]["level"], &records[1]["fields"]),
        (&json!("info"), &json!({}))
    );
    assert_eq!(api.stop()["status"], "stopped");
}

#[test]
fn round_trip_on_postgres_by_database_url() {
    let Some(pg) = PgCluster::start("ffi_client_round_trip") else {
        return;
    };
    // The step is run through the store itself (this binary's worker is the SQLite test's).
    let url = pg.url.clone();
    round_trip(Some(&pg.url), move |task_uuid| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let store = tasker_store::Store::connect(&url).await.unwrap();
            let c = store.claim(1, Duration::from_secs(30)).await.unwrap().pop().unwrap();
            assert_eq!(c.task_uuid.to_string(), task_uuid);
            let result = tasker_store::templates::reference_result(&c.event_value()).unwrap();
            store
                .complete_batch(&[(c.claim_token, result.to_string())])
                .await
                .unwrap();
            store.close().await;
        });
    });
}
