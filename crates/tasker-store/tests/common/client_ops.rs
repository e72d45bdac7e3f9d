//! Scenarios of the client calls (create, get, list, cancel, steps, history, health), run against both
//! backends.

use super::scenarios::{drain, raw_sql};
use serde_json::{json, Value};
use std::time::Duration;
use tasker_store::templates::reference_result;
use tasker_store::{
    AttemptOutcome, CancelOutcome, CompletionOutcome, CreateTaskError, NewTask, StepState, Store, TaskFilter,
    TaskStatus, Uuid,
};

const LONG: Duration = Duration::from_secs(30);

/// A request for a task of `name` in `namespace` (version 1.0.0, `{"even_number": 2}`).
pub fn request(name: &str, namespace: &str) -> NewTask {
    serde_json::from_value(json!({
        "name": name, "namespace": namespace, "version": "1.0.0", "context": {"even_number": 2},
        "initiator": "tests", "source_system": "tasker-store", "reason": "client scenario"
    }))
    .unwrap()
}

fn failure(step_uuid: &Value, retryable: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "step_uuid": step_uuid, "success": false, "result": null, "status": "error",
        "error": { "message": "boom", "error_type": "handler_error", "retryable": retryable },
        "metadata": { "retryable": retryable }
    }))
    .unwrap()
}

fn success(c: &tasker_store::ClaimedStep) -> Vec<u8> {
    serde_json::to_vec(&reference_result(&c.event_value()).unwrap()).unwrap()
}

/// create_task: every field of the request comes back; an idempotency key returns the first task; unknown
/// templates and bad requests are typed; get_task of an unknown UUID is None.
pub async fn create_get_and_idempotency(store: &Store) {
    let mut req = request("linear_workflow", "client_ns");
    req.tags = vec!["a".into(), "b".into()];
    req.priority = Some(7);
    req.correlation_id = Some("corr-1".into());
    req.parent_correlation_id = Some("parent-1".into());
    req.idempotency_key = Some("key-1".into());
    let task = store.create_task(&req).await.unwrap();
    assert_eq!(
        (task.name.as_str(), task.namespace.as_str(), task.version.as_str()),
        ("linear_workflow", "client_ns", "1.0.0")
    );
    assert_eq!(task.status, TaskStatus::Pending);
    assert_eq!(task.context, json!({"even_number": 2}));
    assert_eq!((task.priority, task.correlation_id.as_str()), (7, "corr-1"));
    assert_eq!(task.parent_correlation_id.as_deref(), Some("parent-1"));
    assert_eq!(
        (
            task.initiator.as_deref(),
            task.source_system.as_deref(),
            task.reason.as_deref()
        ),
        (Some("tests"), Some("tasker-store"), Some("client scenario"))
    );
    assert_eq!(task.tags, ["a", "b"]);
    assert_eq!(task.idempotency_key.as_deref(), Some("key-1"));
    assert_eq!(task.step_count, 4);
    assert_eq!((task.step_counts.ready, task.step_counts.pending), (1, 3));
    assert_eq!(task.cancelled_at, None);
    assert_eq!(store.get_task(task.task_uuid).await.unwrap(), Some(task.clone()));

    // The same key again (even with another context) returns the first task and creates nothing.
    let mut again = req.clone();
    again.context = json!({"even_number": 4});
    assert_eq!(store.create_task(&again).await.unwrap(), task);
    assert_eq!(store.status().await.unwrap().tasks, 1);

    // The short name works too; no key: a new task each time, with a fresh correlation id.
    let short = store.create_task(&request("linear", "client_ns")).await.unwrap();
    assert_ne!(short.task_uuid, task.task_uuid);
    assert!(
        Uuid::parse_str(&short.correlation_id).is_ok(),
        "{}",
        short.correlation_id
    );
    assert_eq!((short.tags.len(), short.priority), (0, 0));

    // Unknown templates name the known ones; a built-in with another version is unknown.
    let e = store
        .create_task(&request("no_such_template", "client_ns"))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, CreateTaskError::UnknownTemplate { known, .. } if known.iter().any(|k| k == "linear_workflow 1.0.0 (any namespace)")),
        "{e}"
    );
    let mut v2 = request("linear_workflow", "client_ns");
    v2.version = "2.0.0".into();
    assert!(matches!(
        store.create_task(&v2).await,
        Err(CreateTaskError::UnknownTemplate { .. })
    ));
    for (field, value) in [
        ("context", json!([1])),
        ("priority", json!(1u64 << 40)),
        ("initiator", json!(" ")),
    ] {
        let mut bad = serde_json::to_value(json!({
            "name": "linear", "namespace": "n", "version": "1.0.0", "initiator": "i", "source_system": "s",
            "reason": "r"
        }))
        .unwrap();
        bad[field] = value;
        let bad: NewTask = serde_json::from_value(bad).unwrap();
        let e = store.create_task(&bad).await.unwrap_err();
        assert!(matches!(e, CreateTaskError::InvalidRequest(_)), "{field}: {e}");
    }
    assert_eq!(
        store.status().await.unwrap().tasks,
        2,
        "nothing created by a failed request"
    );
    assert_eq!(store.get_task(Uuid::now_v7()).await.unwrap(), None);
}

/// list_tasks: creation order, limit/offset with the total and has_more, namespace and status filters.
pub async fn list_pages_and_filters(store: &Store) {
    let mut created = Vec::new();
    for i in 0..5 {
        let ns = if i % 2 == 0 { "even" } else { "odd" };
        created.push(store.create_task(&request("diamond", ns)).await.unwrap().task_uuid);
    }
    let page = |limit, offset, namespace: Option<&str>, status| TaskFilter {
        limit,
        offset,
        namespace: namespace.map(str::to_string),
        status,
    };
    let all = store.list_tasks(&page(2, 0, None, None)).await.unwrap();
    assert_eq!((all.total_count, all.tasks.len(), all.has_more), (5, 2, true));
    assert_eq!(all.tasks.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), created[..2]);
    let last = store.list_tasks(&page(2, 4, None, None)).await.unwrap();
    assert_eq!((last.total_count, last.tasks.len(), last.has_more), (5, 1, false));
    assert_eq!(last.tasks[0].task_uuid, created[4]);
    let past = store.list_tasks(&page(2, 9, None, None)).await.unwrap();
    assert_eq!((past.total_count, past.tasks.len(), past.has_more), (5, 0, false));
    let even = store.list_tasks(&page(50, 0, Some("even"), None)).await.unwrap();
    assert_eq!(even.total_count, 3);
    assert!(even.tasks.iter().all(|t| t.namespace == "even"));

    // One step claimed: its task is in progress; all are pending otherwise.
    let claimed = store.claim(1, LONG).await.unwrap();
    let busy_task = claimed[0].task_uuid;
    assert!(created.contains(&busy_task));
    let busy = store
        .list_tasks(&page(50, 0, None, Some(TaskStatus::InProgress)))
        .await
        .unwrap();
    assert_eq!(busy.tasks.iter().map(|t| t.task_uuid).collect::<Vec<_>>(), [busy_task]);
    assert_eq!(busy.tasks[0].step_counts.in_progress, 1);
    let pending = store
        .list_tasks(&page(50, 0, None, Some(TaskStatus::Pending)))
        .await
        .unwrap();
    assert_eq!(pending.total_count, 4);
    assert!(pending.tasks.iter().all(|t| t.task_uuid != busy_task));
    // Every status the filter gives is the task's own.
    for status in TaskStatus::ALL {
        for t in store
            .list_tasks(&page(1000, 0, None, Some(status)))
            .await
            .unwrap()
            .tasks
        {
            assert_eq!(store.get_task(t.task_uuid).await.unwrap().unwrap().status, status);
        }
    }
    // Drained: all complete.
    store
        .complete_batch(&[(claimed[0].claim_token, success(&claimed[0]))])
        .await
        .unwrap();
    drain(store, 16).await;
    let done = store
        .list_tasks(&page(50, 0, None, Some(TaskStatus::Complete)))
        .await
        .unwrap();
    assert_eq!(done.total_count, 5);
    assert!(done.tasks.iter().all(|t| t.step_counts.complete == 4));
}

/// cancel_task: pending and ready steps are cancelled at once and never claimed; a running step finishes and
/// its result persists, without making its cancelled children ready; a running step's retryable failure is
/// not retried; repeated, complete and unknown tasks.
pub async fn cancel_stops_pending_and_lets_running_finish(store: &Store) {
    let target = store
        .create_task(&request("diamond", "cancel"))
        .await
        .unwrap()
        .task_uuid;
    let control = store.create_task(&request("linear", "cancel")).await.unwrap().task_uuid;
    let claimed = store.claim(10, LONG).await.unwrap();
    assert_eq!(claimed.len(), 2, "both root steps");
    let running = claimed.iter().find(|c| c.task_uuid == target).unwrap().clone();
    let other = claimed.iter().find(|c| c.task_uuid == control).unwrap().clone();
    assert_eq!(running.step_name, "diamond_start");

    let out = store.cancel_task(target).await.unwrap();
    assert_eq!(
        out,
        CancelOutcome::Cancelled {
            steps_cancelled: 3,
            still_running: 1
        }
    );
    let t = store.get_task(target).await.unwrap().unwrap();
    assert_eq!(t.status, TaskStatus::Cancelled);
    assert!(t.cancelled_at.is_some());
    assert_eq!((t.step_counts.cancelled, t.step_counts.in_progress), (3, 1));
    assert_eq!(store.status().await.unwrap().cancelled, 3);

    // The running step's success persists; its children stay cancelled.
    let result = success(&running);
    assert_eq!(
        store
            .complete_batch(&[
                (running.claim_token, result.clone()),
                (other.claim_token, success(&other))
            ])
            .await
            .unwrap(),
        vec![
            CompletionOutcome::Completed {
                ready_children: 0,
                task_complete: false
            },
            CompletionOutcome::Completed {
                ready_children: 1,
                task_complete: false
            }
        ]
    );
    let (_, done) = drain(store, 8).await;
    assert_eq!(done, 3, "only the control task's steps were claimed");
    let steps = store.task_steps(target).await.unwrap().unwrap();
    let states: Vec<StepState> = steps.iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            StepState::Complete,
            StepState::Cancelled,
            StepState::Cancelled,
            StepState::Cancelled
        ]
    );
    assert_eq!(
        steps[0].results,
        Some(serde_json::from_slice::<Value>(&result).unwrap())
    );
    assert!(steps[0].completed_at.is_some());
    let t = store.get_task(target).await.unwrap().unwrap();
    assert_eq!(
        (t.status, t.step_counts.complete, t.step_counts.cancelled),
        (TaskStatus::Cancelled, 1, 3)
    );
    assert_eq!(
        store.get_task(control).await.unwrap().unwrap().status,
        TaskStatus::Complete
    );

    // Again: nothing more; the first time stays.
    let again = store.cancel_task(target).await.unwrap();
    assert_eq!(
        again,
        CancelOutcome::Cancelled {
            steps_cancelled: 0,
            still_running: 0
        }
    );
    assert_eq!(
        store.get_task(target).await.unwrap().unwrap().cancelled_at,
        t.cancelled_at
    );
    assert_eq!(
        store.cancel_task(control).await.unwrap(),
        CancelOutcome::AlreadyComplete
    );
    assert_eq!(store.get_task(control).await.unwrap().unwrap().cancelled_at, None);
    assert_eq!(
        store.cancel_task(Uuid::now_v7()).await.unwrap(),
        CancelOutcome::NotFound
    );

    // A ready step is never claimed after the cancel.
    let ready = store.create_task(&request("linear", "cancel")).await.unwrap().task_uuid;
    assert_eq!(
        store.cancel_task(ready).await.unwrap(),
        CancelOutcome::Cancelled {
            steps_cancelled: 4,
            still_running: 0
        }
    );
    assert!(store.claim(10, LONG).await.unwrap().is_empty());

    // A running step's retryable failure after the cancel is final.
    let failing = store.create_task(&request("linear", "cancel")).await.unwrap().task_uuid;
    let c = store.claim(1, LONG).await.unwrap().pop().unwrap();
    assert_eq!(c.task_uuid, failing);
    store.cancel_task(failing).await.unwrap();
    let out = store
        .complete_batch(&[(c.claim_token, failure(&c.event_value()["step_uuid"], true))])
        .await
        .unwrap();
    assert_eq!(out, vec![CompletionOutcome::Failed { attempts: 1 }]);
    assert!(store.claim(10, LONG).await.unwrap().is_empty());
    let cancelled = TaskFilter {
        status: Some(TaskStatus::Cancelled),
        ..TaskFilter::default()
    };
    let listed: Vec<Uuid> = (store.list_tasks(&cancelled).await.unwrap().tasks.iter())
        .map(|t| t.task_uuid)
        .collect();
    assert_eq!(listed, [target, ready, failing]);
    let s = store.status().await.unwrap();
    assert_eq!((s.cancelled, s.unfinished()), (3 + 4 + 3, 0), "{s:?}");
}

/// Steps and their history through the client calls: get_step's attempts, result and last error after a
/// retried failure, and the attempt history (claim, failure, retry, success with times).
pub async fn steps_and_history_after_a_retry(store: &Store) {
    let task = store
        .create_task(&request("linear", "history"))
        .await
        .unwrap()
        .task_uuid;
    let first = store.claim(1, LONG).await.unwrap().pop().unwrap();
    let out = store
        .complete_batch(&[(first.claim_token, failure(&first.event_value()["step_uuid"], true))])
        .await
        .unwrap();
    assert!(
        matches!(out[0], CompletionOutcome::RetryScheduled { attempts: 1, .. }),
        "{out:?}"
    );
    let waiting = store.get_step(task, first.step_uuid).await.unwrap().unwrap();
    assert_eq!(
        (waiting.state, waiting.attempts, waiting.max_attempts),
        (StepState::Ready, 1, 3)
    );
    assert!(waiting.next_attempt_at.is_some(), "waiting out its backoff");
    assert_eq!(waiting.last_error.as_ref().unwrap()["error"]["message"], "boom");
    let second = loop {
        if let Some(c) = store.claim(1, LONG).await.unwrap().pop() {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!((second.step_uuid, second.attempts), (first.step_uuid, 2));
    store
        .complete_batch(&[(second.claim_token, success(&second))])
        .await
        .unwrap();

    let step = store.get_step(task, first.step_uuid).await.unwrap().unwrap();
    assert_eq!(
        (step.state, step.attempts, step.name.as_str()),
        (StepState::Complete, 2, "linear_step_1")
    );
    assert_eq!(step.results.as_ref().unwrap()["result"]["value"], 4);
    assert_eq!(step.handler, "LinearWorkflow.StepHandlers.LinearStep1Handler");
    let steps = store.task_steps(task).await.unwrap().unwrap();
    assert_eq!(steps.len(), 4);
    assert_eq!(steps[1].dependencies, ["linear_step_1"]);
    assert_eq!(steps[1].state, StepState::Ready);
    let history = store.step_history(task, first.step_uuid).await.unwrap().unwrap();
    let outcomes: Vec<_> = history.iter().map(|a| (a.attempt, a.outcome)).collect();
    assert_eq!(
        outcomes,
        [(1, AttemptOutcome::RetryScheduled), (2, AttemptOutcome::Succeeded)]
    );
    assert!(history
        .iter()
        .all(|a| a.ended_at_ms.is_some_and(|e| e >= a.claimed_at_ms)));
    assert_eq!(store.get_step(task, Uuid::now_v7()).await.unwrap(), None);
    assert_eq!(store.task_steps(Uuid::now_v7()).await.unwrap(), None);
}

/// A template registered from JSON: its tasks' steps are ordered parents first, carry the registered
/// handlers, initialization and per-step attempts into the events, and run to completion. A template stored
/// by another process (only in the store) is found too.
pub async fn registered_templates_run(store: &Store, url: &str, unique: &str) {
    let name = format!("orders_{unique}");
    let text = json!({
        "name": name, "namespace_name": "shop", "version": "1.0.0", "task_handler": {"callable": "ignored"},
        "steps": [
            {"name": "ship", "handler": {"callable": "Shop.Ship"}, "depends_on_steps": ["validate"],
             "retry": {"retryable": false}},
            {"name": "validate", "handler": {"callable": "Shop.Validate", "initialization": {"strict": true}},
             "retry": {"max_attempts": 5}}
        ]
    });
    tasker_store::registry::register_text(&text.to_string(), false, "test").unwrap();
    let mut req = request(&name, "shop");
    req.context = json!({"order": 17});
    let task = store.create_task(&req).await.unwrap();
    assert_eq!((task.name.as_str(), task.step_count), (name.as_str(), 2));
    let steps = store.task_steps(task.task_uuid).await.unwrap().unwrap();
    let shape: Vec<_> = steps
        .iter()
        .map(|s| (s.name.as_str(), s.handler.as_str(), s.max_attempts))
        .collect();
    assert_eq!(shape, [("validate", "Shop.Validate", 5), ("ship", "Shop.Ship", 1)]);

    let c = store.claim(1, LONG).await.unwrap().pop().unwrap();
    let ev = c.event_value();
    let def = &ev["task_sequence_step"]["step_definition"];
    assert_eq!(def["handler"]["callable"], "Shop.Validate");
    assert_eq!(def["handler"]["initialization"], json!({"strict": true}));
    assert_eq!(ev["task_sequence_step"]["workflow_step"]["max_attempts"], 5);
    assert_eq!(ev["task_sequence_step"]["task"]["context"], json!({"order": 17}));
    let ok = |c: &tasker_store::ClaimedStep| {
        serde_json::to_vec(&json!({"step_uuid": c.step_uuid, "success": true, "result": {"ok": c.step_name}})).unwrap()
    };
    let out = store.complete_batch(&[(c.claim_token, ok(&c))]).await.unwrap();
    assert_eq!(
        out,
        vec![CompletionOutcome::Completed {
            ready_children: 1,
            task_complete: false
        }]
    );
    let c = store.claim(1, LONG).await.unwrap().pop().unwrap();
    assert_eq!(c.step_name, "ship");
    assert_eq!(
        c.event_value()["task_sequence_step"]["workflow_step"]["retryable"],
        false
    );
    let deps = &c.event_value()["task_sequence_step"]["dependency_results"]["results"];
    assert_eq!(deps["validate"]["result"], json!({"ok": "validate"}));
    assert_eq!(
        store.complete_batch(&[(c.claim_token, ok(&c))]).await.unwrap(),
        vec![CompletionOutcome::Completed {
            ready_children: 0,
            task_complete: true
        }],
        "the last step finishes the task"
    );
    assert_eq!(
        store.get_task(task.task_uuid).await.unwrap().unwrap().status,
        TaskStatus::Complete
    );
    assert_eq!(
        store.verify().await.unwrap().checked,
        0,
        "no reference math for a registered template"
    );

    // A template only the store holds (another process registered it and created a task from it).
    let stored_name = format!("stored_{unique}");
    let stored = json!({
        "name": stored_name, "namespace": "shop", "version": "2.0.0",
        "steps": [{"name": "only", "handler": {"callable": "Shop.Only"}, "dependencies": []}]
    });
    let key = format!("shop/{stored_name}@2.0.0");
    raw_sql(
        url,
        &format!("INSERT INTO task_templates (template, definition) VALUES ('{key}', '{stored}')"),
    )
    .await;
    let mut req = request(&stored_name, "shop");
    req.version = "2.0.0".into();
    let task = store.create_task(&req).await.unwrap();
    assert_eq!(task.step_count, 1);
    assert_eq!(
        store.task_steps(task.task_uuid).await.unwrap().unwrap()[0].handler,
        "Shop.Only"
    );
}

/// health: the backend, the newest schema and the counts.
pub async fn health_reports_backend_schema_and_counts(store: &Store, backend: &str) {
    let h = store.health().await.unwrap();
    assert_eq!((h.backend, h.schema_version, h.tasks), (backend, 4, 0));
    store.create_task(&request("diamond", "health")).await.unwrap();
    let h = store.health().await.unwrap();
    assert_eq!(
        (h.tasks, h.steps.ready, h.steps.pending, h.steps.cancelled),
        (1, 1, 3, 0)
    );
}
