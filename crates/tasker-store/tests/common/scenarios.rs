//! Scenarios run against both backends.

use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::{Duration, Instant};
use tasker_store::templates::{reference_result, template};
use tasker_store::{ClaimedStep, CompletionOutcome, Mismatch, Store, StoreOptions, Uuid, VerifyReport};

pub fn fast_options() -> StoreOptions {
    StoreOptions {
        connect_timeout: Duration::from_secs(10),
        max_connections: Some(16),
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(1),
    }
}

const LONG: Duration = Duration::from_secs(30);

fn failure(step_uuid: &Value, retryable: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "step_uuid": step_uuid, "success": false, "result": null, "status": "error",
        "error": { "message": "boom", "error_type": "handler_error", "retryable": retryable, "context": {} },
        "metadata": { "retryable": retryable }
    }))
    .unwrap()
}

/// Claims, computes the reference math, completes until nothing is left; returns (final values seen by
/// template, steps done). Checks each event's dependency results against its step definition.
pub async fn drain(store: &Store, batch: usize) -> (Vec<(String, i64)>, u64) {
    let mut finals = Vec::new();
    let mut done = 0;
    let mut idle = 0;
    loop {
        let claimed = store.claim(batch, LONG).await.unwrap();
        if claimed.is_empty() {
            let s = store.status().await.unwrap();
            if s.ready + s.claimed + s.pending == 0 {
                return (finals, done);
            }
            idle += 1;
            assert!(idle < 2000, "stuck: {s:?}");
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let mut items = Vec::with_capacity(claimed.len());
        for c in &claimed {
            let ev = &c.event_value();
            assert_eq!(ev["event_id"], c.claim_token.to_string());
            let tss = &ev["task_sequence_step"];
            assert_eq!(tss["workflow_step"]["attempts"], c.attempts);
            let deps: HashSet<&str> = tss["step_definition"]["dependencies"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_str().unwrap())
                .collect();
            let got: HashSet<&str> = tss["dependency_results"]["results"]
                .as_object()
                .unwrap()
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(deps, got, "dependency results of {}", c.step_name);
            let result = reference_result(ev).unwrap();
            if is_final(c) {
                finals.push((c.step_name.clone(), result["result"]["value"].as_i64().unwrap()));
            }
            items.push((c.claim_token, serde_json::to_vec(&result).unwrap()));
        }
        for (o, c) in store.complete_batch(&items).await.unwrap().iter().zip(&claimed) {
            // The built-in templates have one sink: its completion, and only its, finishes the task.
            let CompletionOutcome::Completed { task_complete, .. } = o else {
                panic!("{o:?}");
            };
            assert_eq!(*task_complete, is_final(c), "{} {o:?}", c.step_name);
        }
        done += items.len() as u64;
    }
}

/// The last step of a built-in template.
fn is_final(c: &ClaimedStep) -> bool {
    c.step_name == "linear_step_4" || c.step_name == "diamond_end"
}

pub async fn linear_and_diamond_to_completion(store: &Store) {
    store
        .enqueue("linear_workflow_ts", "linear", 20, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    store
        .enqueue("diamond_workflow_ts", "diamond_workflow", 25, br#"{"even_number": 6}"#)
        .await
        .unwrap();
    let (finals, done) = drain(store, 32).await;
    assert_eq!(done, 45 * 4);
    let linear = template("linear").unwrap().expected_final(2).unwrap();
    let diamond = template("diamond").unwrap().expected_final(6).unwrap();
    assert_eq!(linear, 65536);
    assert_eq!(diamond, 1296 + 72);
    assert_eq!(
        finals
            .iter()
            .filter(|(n, v)| n == "linear_step_4" && *v == linear)
            .count(),
        20
    );
    assert_eq!(
        finals
            .iter()
            .filter(|(n, v)| n == "diamond_end" && *v == diamond)
            .count(),
        25
    );
    let s = store.status().await.unwrap();
    assert_eq!(
        (s.tasks, s.tasks_complete, s.complete, s.error),
        (45, 45, 180, 0),
        "{s:?}"
    );
    assert_eq!(s.oldest_claim_age, None);
}

pub async fn bad_input_is_typed(store: &Store) {
    assert!(matches!(
        store.enqueue("ns", "nope", 1, b"{}").await,
        Err(tasker_store::EnqueueError::UnknownTemplate(_))
    ));
    assert!(matches!(
        store.enqueue("ns", "linear", 1, b"[1]").await,
        Err(tasker_store::EnqueueError::InvalidContext(_))
    ));
    let out = store
        .complete_batch(&[
            (Uuid::now_v7(), b"{}".to_vec()),
            (Uuid::now_v7(), br#"{"success":true}"#.to_vec()),
        ])
        .await
        .unwrap();
    assert!(matches!(out[0], CompletionOutcome::Invalid(_)));
    assert_eq!(out[1], CompletionOutcome::Refused);
}

pub async fn visibility_expiry_and_stale_completion(store: &Store) {
    store
        .enqueue("ns", "linear", 1, br#"{"even_number": 4}"#)
        .await
        .unwrap();
    let a = store.claim(10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(a.len(), 1);
    assert!(
        store.claim(10, LONG).await.unwrap().is_empty(),
        "a live claim is not claimable"
    );
    let s = store.status().await.unwrap();
    assert_eq!(s.claimed, 1);
    assert!(s.oldest_claim_age.is_some());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(store.status().await.unwrap().claims_expired, 1);
    let b = store.claim(10, LONG).await.unwrap();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].step_uuid, a[0].step_uuid);
    assert_ne!(b[0].claim_token, a[0].claim_token);
    assert_eq!(b[0].attempts, 2);
    assert_eq!(b[0].event_value()["task_sequence_step"]["workflow_step"]["attempts"], 2);
    let stale = serde_json::to_vec(&reference_result(&a[0].event_value()).unwrap()).unwrap();
    let fresh = serde_json::to_vec(&reference_result(&b[0].event_value()).unwrap()).unwrap();
    assert_eq!(
        store
            .complete_batch(&[(a[0].claim_token, stale.clone())])
            .await
            .unwrap(),
        vec![CompletionOutcome::Refused]
    );
    assert_eq!(
        store
            .complete_batch(&[(b[0].claim_token, fresh.clone()), (b[0].claim_token, fresh)])
            .await
            .unwrap(),
        vec![
            CompletionOutcome::Completed {
                ready_children: 1,
                task_complete: false
            },
            CompletionOutcome::Refused
        ]
    );
    // extend keeps a claim past its first deadline.
    let c = store.claim(10, Duration::from_millis(200)).await.unwrap();
    assert_eq!(c[0].step_name, "linear_step_2");
    assert_eq!(
        c[0].event_value()["task_sequence_step"]["dependency_results"]["results"]["linear_step_1"]["result"]["value"],
        16
    );
    assert_eq!(
        store.extend(&[c[0].claim_token, a[0].claim_token], LONG).await.unwrap(),
        1
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store.claim(10, LONG).await.unwrap().is_empty(),
        "extended claim stays held"
    );
}

pub async fn retry_backoff_then_error_then_retry_errors(store: &Store) {
    store
        .enqueue("ns", "linear", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let mut backoffs = Vec::new();
    let mut t0 = Instant::now();
    for attempt in 1..=3 {
        let c = loop {
            let c = store.claim(1, LONG).await.unwrap();
            if !c.is_empty() {
                break c;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        if attempt > 1 {
            backoffs.push(t0.elapsed());
        }
        assert_eq!(c[0].attempts, attempt);
        t0 = Instant::now(); // the backoff starts inside complete_batch, after this
        let out = store
            .complete_batch(&[(c[0].claim_token, failure(&c[0].event_value()["step_uuid"], true))])
            .await
            .unwrap();
        if attempt < 3 {
            assert_eq!(
                out,
                vec![CompletionOutcome::RetryScheduled {
                    attempts: attempt,
                    backoff: store.backoff(attempt)
                }]
            );
            assert!(
                store.claim(1, LONG).await.unwrap().is_empty(),
                "no claim during the backoff"
            );
        } else {
            assert_eq!(out, vec![CompletionOutcome::Failed { attempts: 3 }]);
        }
    }
    assert!(
        backoffs[0] >= Duration::from_millis(40) && backoffs[1] >= Duration::from_millis(90),
        "{backoffs:?}"
    );
    let s = store.status().await.unwrap();
    assert_eq!((s.error, s.tasks_error, s.ready, s.pending), (1, 1, 0, 3), "{s:?}");
    // Non-retryable: error at once.
    store
        .enqueue("ns", "diamond", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let c = store.claim(1, LONG).await.unwrap();
    let out = store
        .complete_batch(&[(c[0].claim_token, failure(&c[0].event_value()["step_uuid"], false))])
        .await
        .unwrap();
    assert_eq!(out, vec![CompletionOutcome::Failed { attempts: 1 }]);
    assert_eq!(store.status().await.unwrap().error, 2);
    // retry_errors: back to ready with attempts reset, then both tasks finish.
    assert_eq!(store.retry_errors().await.unwrap(), 2);
    let c = store.claim(10, LONG).await.unwrap();
    assert_eq!(c.len(), 2);
    assert!(c.iter().all(|c| c.attempts == 1));
    let items: Vec<_> = c
        .iter()
        .map(|c| {
            (
                c.claim_token,
                serde_json::to_vec(&reference_result(&c.event_value()).unwrap()).unwrap(),
            )
        })
        .collect();
    store.complete_batch(&items).await.unwrap();
    let (_, done) = drain(store, 8).await;
    assert_eq!(done, 6);
    let s = store.status().await.unwrap();
    assert_eq!((s.tasks_complete, s.error), (2, 0));
}

/// Claims and completes (with `result(step)`) until nothing is claimable; returns the steps completed.
async fn complete_claimable(store: &Store, result: impl Fn(&ClaimedStep) -> Value) -> usize {
    let mut done = 0;
    loop {
        let claimed = store.claim(64, LONG).await.unwrap();
        if claimed.is_empty() {
            return done;
        }
        let items: Vec<_> = claimed
            .iter()
            .map(|c| (c.claim_token, serde_json::to_vec(&result(c)).unwrap()))
            .collect();
        for o in store.complete_batch(&items).await.unwrap() {
            assert!(matches!(o, CompletionOutcome::Completed { .. }), "{o:?}");
        }
        done += items.len();
    }
}

/// `Store::verify`: unfinished tasks are counted, not checked; reference results match; a wrong final value
/// and a context without `even_number` are mismatches, found past the first page (5000 tasks).
pub async fn verify_reports_correct_and_wrong_results(store: &Store) {
    assert_eq!(store.verify().await.unwrap(), VerifyReport::default());
    store
        .enqueue("ns", "linear", 20, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    store
        .enqueue("ns", "diamond", 25, br#"{"even_number": 6}"#)
        .await
        .unwrap();
    let r = store.verify().await.unwrap();
    assert_eq!((r.tasks, r.checked, r.mismatches), (45, 0, 0), "{r:?}");
    drain(store, 32).await;
    let all_good = VerifyReport {
        tasks: 45,
        checked: 45,
        mismatches: 0,
        examples: Vec::new(),
    };
    assert_eq!(store.verify().await.unwrap(), all_good);

    // A page of unfinished tasks, held claimed so that only the next two tasks' steps are claimable.
    store
        .enqueue("ns", "linear", 5000, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let mut held = 0;
    loop {
        let c = store.claim(500, Duration::from_secs(600)).await.unwrap();
        if c.is_empty() {
            break;
        }
        held += c.len();
    }
    assert_eq!(held, 5000);
    let wrong = store
        .enqueue("ns", "diamond", 1, br#"{"even_number": 4}"#)
        .await
        .unwrap()[0];
    let no_input = store
        .enqueue("ns", "linear", 1, br#"{"note": "no even_number"}"#)
        .await
        .unwrap()[0];
    let diamond = template("diamond").unwrap();
    assert_eq!(diamond.final_step().unwrap().name, "diamond_end");
    assert_eq!(template("linear").unwrap().final_step().unwrap().name, "linear_step_4");
    let expected = diamond.expected_final(4).unwrap();
    let done = complete_claimable(store, |c| {
        if c.task_uuid == no_input {
            // A handler that ignores the input (the reference handler refuses a context without even_number).
            return json!({"step_uuid": c.step_uuid, "success": true, "result": {"value": 7, "operation": "square"}});
        }
        assert_eq!(c.task_uuid, wrong, "only the two new tasks are claimable");
        let mut r = reference_result(&c.event_value()).unwrap();
        if c.step_name == "diamond_end" {
            assert_eq!(r["result"]["value"], expected);
            r["result"]["value"] = json!(expected + 1);
        }
        r
    })
    .await;
    assert_eq!(done, 8);
    let r = store.verify().await.unwrap();
    let mut examples = vec![
        Mismatch {
            task_uuid: wrong,
            template: "diamond".into(),
            expected: Some(expected),
            got: Some(expected + 1),
            reason: None,
        },
        Mismatch {
            task_uuid: no_input,
            template: "linear".into(),
            expected: None,
            got: Some(7),
            reason: Some("task context has no integer even_number".into()),
        },
    ];
    examples.sort_by_key(|m| m.task_uuid);
    assert_eq!(
        r,
        VerifyReport {
            tasks: 5047,
            checked: 47,
            mismatches: 2,
            examples
        }
    );
}

/// `claimers` concurrent claim loops over `tasks` diamond tasks: no step is handed out twice, all finish.
/// The loops are spread over `stores` (separate pools, as separate worker processes would have).
pub async fn concurrent_claimers_never_share(stores: &[Store], tasks: usize, claimers: usize) {
    stores[0]
        .enqueue("ns", "diamond", tasks, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let mut handles = Vec::new();
    for i in 0..claimers {
        let store = stores[i % stores.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut idle = 0;
            loop {
                let c = store.claim(8, LONG).await.unwrap();
                if c.is_empty() {
                    let s = store.status().await.unwrap();
                    if s.ready + s.claimed + s.pending == 0 {
                        return seen;
                    }
                    idle += 1;
                    assert!(idle < 5000, "stuck {s:?}");
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                let items: Vec<_> = c
                    .iter()
                    .map(|c| {
                        (
                            c.claim_token,
                            serde_json::to_vec(&reference_result(&c.event_value()).unwrap()).unwrap(),
                        )
                    })
                    .collect();
                for o in store.complete_batch(&items).await.unwrap() {
                    assert!(matches!(o, CompletionOutcome::Completed { .. }), "{o:?}");
                }
                seen.extend(c.iter().map(|c| c.step_uuid));
            }
        }));
    }
    let mut all = Vec::new();
    let mut per = Vec::new();
    for h in handles {
        let s = h.await.unwrap();
        per.push(s.len());
        all.extend(s);
    }
    let unique: HashSet<_> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "a step was claimed twice");
    assert_eq!(all.len(), tasks * 4);
    assert!(
        per.iter().filter(|n| **n > 0).count() > 1,
        "claims were not shared: {per:?}"
    );
    let s = stores[0].status().await.unwrap();
    assert_eq!(s.tasks_complete as usize, tasks);
}

/// Claim + complete throughput of `claimers` loops over `tasks` linear tasks; prints steps/s.
pub async fn throughput(store: &Store, label: &str, tasks: usize, claimers: usize, batch: usize) {
    let t0 = Instant::now();
    store
        .enqueue("ns", "linear", tasks, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let enq = t0.elapsed();
    let t1 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..claimers {
        let store = store.clone();
        handles.push(tokio::spawn(async move { drain(&store, batch).await.1 }));
    }
    let mut done = 0;
    for h in handles {
        done += h.await.unwrap();
    }
    let el = t1.elapsed();
    assert_eq!(done as usize, tasks * 4);
    println!(
        "THROUGHPUT {label}: enqueue {tasks} tasks in {:.0} ms ({:.0} tasks/s); claim+complete {done} steps \
         with {claimers} loop(s), batch {batch}, in {:.2} s = {:.0} steps/s",
        enq.as_secs_f64() * 1000.0,
        tasks as f64 / enq.as_secs_f64(),
        el.as_secs_f64(),
        done as f64 / el.as_secs_f64()
    );
}

/// Runs one statement on the store's database behind the `Store` API's back (to corrupt rows the API
/// would never write). `url` is the store's own.
pub async fn raw_sql(url: &str, statement: &str) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
        pool.close().await;
    } else {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query(statement).execute(&pool).await.unwrap();
        pool.close().await;
    }
}

/// A step whose rows cannot make an event (its task's context is not JSON) goes to `error` inside the
/// claim's own transaction; the other claimable steps are claimed and nothing is left claimed by nobody.
/// A claim that committed first and then failed would leave the whole batch claimed with an
/// attempt used until the deadline.
pub async fn a_corrupt_step_goes_to_error_and_the_rest_is_claimed(store: &Store, url: &str) {
    store
        .enqueue("good", "linear", 2, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    store
        .enqueue("bad", "linear", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    raw_sql(url, "UPDATE tasks SET context = 'not json' WHERE namespace = 'bad'").await;
    let claimed = store
        .claim(10, LONG)
        .await
        .expect("one corrupt step does not fail the claim");
    assert_eq!(claimed.len(), 2, "the two good roots are claimed");
    assert!(claimed
        .iter()
        .all(|c| c.event_value()["task_sequence_step"]["task"]["namespace"] == "good"));
    let s = store.status().await.unwrap();
    assert_eq!((s.claimed, s.error, s.ready), (2, 1, 0), "{s:?}");
    assert_eq!(
        store.held_claims(100).await.unwrap().len(),
        2,
        "no claim without an event"
    );
    assert!(
        store.claim(10, LONG).await.unwrap().is_empty(),
        "the corrupt step is not offered again"
    );
}

/// A parent's stored result that is not JSON fails only the child whose event embeds it (`corrupt_step`);
/// the other task's child is claimed with a well-formed event.
pub async fn a_corrupt_parent_result_fails_only_its_child(store: &Store, url: &str) {
    store
        .enqueue("good", "linear", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    store
        .enqueue("bad", "linear", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let roots = store.claim(10, LONG).await.unwrap();
    assert_eq!(roots.len(), 2);
    let items: Vec<_> = roots
        .iter()
        .map(|c| (c.claim_token, reference_result(&c.event_value()).unwrap().to_string()))
        .collect();
    store.complete_batch(&items).await.unwrap();
    raw_sql(
        url,
        "UPDATE step_results SET results = '{\"not json' \
         WHERE step_id = (SELECT first_step FROM tasks WHERE namespace = 'bad')",
    )
    .await;
    let claimed = store
        .claim(10, LONG)
        .await
        .expect("a corrupt result does not fail the claim");
    assert_eq!(claimed.len(), 1, "only the good task's second step is claimed");
    let event = claimed[0].event_value();
    assert_eq!(event["task_sequence_step"]["task"]["namespace"], "good");
    assert!(
        event["task_sequence_step"]["dependency_results"]["results"]["linear_step_1"].is_object(),
        "{event}"
    );
    let s = store.status().await.unwrap();
    assert_eq!((s.claimed, s.error, s.complete), (1, 1, 2), "{s:?}");
}

/// A context with characters COPY and JSON treat specially (tab, newline, backslash, quote, non-ASCII)
/// comes back in the event exactly as enqueued.
pub async fn contexts_round_trip_exactly(store: &Store) {
    let context = json!({"even_number": 2, "note": "tab\there\nnew line \\ back \"quoted\" é ✓"});
    store
        .enqueue("ctx", "linear", 2, context.to_string().as_bytes())
        .await
        .unwrap();
    let claimed = store.claim(10, LONG).await.unwrap();
    assert_eq!(claimed.len(), 2);
    for c in &claimed {
        assert_eq!(c.event_value()["task_sequence_step"]["task"]["context"], context);
    }
}

/// Claims until one step is claimed or 3 s pass (a backoff or a deadline may be running out).
async fn claim_one(store: &Store, visibility: Duration) -> ClaimedStep {
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let mut claimed = store.claim(1, visibility).await.unwrap();
        if let Some(c) = claimed.pop() {
            return c;
        }
        assert!(Instant::now() < until, "nothing became claimable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A checkpoint yield puts the step back without using an attempt and its next event carries the
/// checkpoint; the history lists the yield, an expired claim, a retried failure and the final success, in
/// order, with their results; stale, foreign and malformed yields change nothing.
pub async fn checkpoints_and_attempt_history(store: &Store) {
    use tasker_store::{AttemptOutcome, YieldOutcome};
    let task = store
        .enqueue("history", "linear", 1, br#"{"even_number": 2}"#)
        .await
        .unwrap()[0];
    let first = claim_one(store, LONG).await;
    let checkpoint = json!({"cursor": {"page": 3}, "items_processed": 30, "accumulated_results": [1, 2]});
    let yielded = store
        .checkpoint_yield(first.claim_token, checkpoint.to_string().as_bytes())
        .await
        .unwrap();
    assert_eq!(yielded, YieldOutcome::Yielded);
    assert_eq!(
        store.checkpoint_yield(first.claim_token, b"{}").await.unwrap(),
        YieldOutcome::Refused,
        "the yield ended that claim"
    );
    let s = store.status().await.unwrap();
    assert_eq!((s.ready, s.claimed), (1, 0), "{s:?}");

    // Claimed again: same attempt number, the checkpoint in the event; this claim then expires.
    let second = claim_one(store, Duration::from_millis(1)).await;
    assert_eq!(second.step_uuid, first.step_uuid);
    assert_eq!(second.attempts, first.attempts, "a yield does not use an attempt");
    assert_eq!(
        second.event_value()["task_sequence_step"]["workflow_step"]["checkpoint"],
        checkpoint
    );
    for bad in [&b"not json"[..], b"[1, 2]"] {
        assert!(matches!(
            store.checkpoint_yield(second.claim_token, bad).await.unwrap(),
            YieldOutcome::Invalid(_)
        ));
    }
    assert_eq!(
        store.checkpoint_yield(Uuid::new_v4(), b"{}").await.unwrap(),
        YieldOutcome::Refused,
        "an id this store never made"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Third attempt fails (retryable), fourth succeeds.
    let third = claim_one(store, LONG).await;
    assert_eq!(third.attempts, second.attempts + 1);
    let step_uuid = third.event_value()["step_uuid"].clone();
    let out = store
        .complete_batch(&[(third.claim_token, failure(&step_uuid, true))])
        .await
        .unwrap();
    assert!(matches!(out[0], CompletionOutcome::RetryScheduled { .. }), "{out:?}");
    let fourth = claim_one(store, LONG).await;
    let result = reference_result(&fourth.event_value()).unwrap();
    store
        .complete_batch(&[(fourth.claim_token, result.to_string())])
        .await
        .unwrap();

    let history = store
        .step_history(task, first.step_uuid)
        .await
        .unwrap()
        .expect("the step exists");
    let outcomes: Vec<_> = history.iter().map(|a| (a.attempt, a.outcome)).collect();
    assert_eq!(
        outcomes,
        vec![
            (1, AttemptOutcome::CheckpointYielded),
            (1, AttemptOutcome::ClaimExpired),
            (2, AttemptOutcome::RetryScheduled),
            (3, AttemptOutcome::Succeeded),
        ]
    );
    assert!(history.windows(2).all(|w| w[0].claimed_at_ms <= w[1].claimed_at_ms));
    let failed: Value = serde_json::from_str(history[2].result.as_deref().unwrap()).unwrap();
    assert_eq!(failed["error"]["message"], "boom");
    let succeeded: Value = serde_json::from_str(history[3].result.as_deref().unwrap()).unwrap();
    assert_eq!(succeeded, result);
    assert_eq!(store.step_history(task, Uuid::new_v4()).await.unwrap(), None);
    assert_eq!(store.step_history(Uuid::new_v4(), first.step_uuid).await.unwrap(), None);
}

/// `task_complete` on a template with two sinks (`left` and `right`, after `root`): the completion of a
/// task's second sink says it finished the task, whether that sink completes alone, in one batch with the
/// other, or in a batch that runs concurrently with the other's on another handle (`a` and `b`): exactly one
/// completion per task says so. On PostgreSQL (`pg_url`) the two concurrent batches are held before their
/// commits (see [`with_counts_locked`]), so both have read the other's sinks by then unless the task lock
/// orders them.
pub async fn task_complete_once_per_task(a: &Store, b: &Store, unique: &str, pg_url: Option<&str>) {
    let name = format!("fan_{unique}");
    let text = json!({
        "name": name, "namespace_name": "fan", "version": "1.0.0",
        "steps": [
            {"name": "root", "handler": {"callable": "Fan.Root"}},
            {"name": "left", "handler": {"callable": "Fan.Left"}, "depends_on_steps": ["root"]},
            {"name": "right", "handler": {"callable": "Fan.Right"}, "depends_on_steps": ["root"]}
        ]
    });
    tasker_store::registry::register_text(&text.to_string(), false, "test").unwrap();
    a.enqueue("fan", &format!("fan/{name}@1.0.0"), 40, b"{}").await.unwrap();
    let ok = |c: &ClaimedStep| {
        (
            c.claim_token,
            serde_json::to_vec(&json!({"step_uuid": c.step_uuid, "success": true, "result": {}})).unwrap(),
        )
    };
    let done = |ready_children, task_complete| CompletionOutcome::Completed {
        ready_children,
        task_complete,
    };
    let roots = a.claim(100, LONG).await.unwrap();
    assert_eq!(roots.len(), 40);
    let out = a
        .complete_batch(&roots.iter().map(ok).collect::<Vec<_>>())
        .await
        .unwrap();
    assert!(out.iter().all(|o| *o == done(2, false)), "{out:?}");
    let mut sinks: Vec<ClaimedStep> = Vec::new();
    while sinks.len() < 80 {
        let c = a.claim(100, LONG).await.unwrap();
        assert!(!c.is_empty(), "80 sinks ready");
        sinks.extend(c);
    }
    let mut by_task: std::collections::BTreeMap<Uuid, Vec<ClaimedStep>> = Default::default();
    for c in sinks {
        by_task.entry(c.task_uuid).or_default().push(c);
    }
    let tasks: Vec<Vec<ClaimedStep>> = by_task.into_values().collect();
    assert!(tasks.iter().all(|t| t.len() == 2));
    // One sink, then the other: the second finishes the task.
    for t in &tasks[..10] {
        assert_eq!(a.complete_batch(&[ok(&t[0])]).await.unwrap(), [done(0, false)]);
        assert_eq!(a.complete_batch(&[ok(&t[1])]).await.unwrap(), [done(0, true)]);
    }
    // Both in one batch: the last of them gets the credit.
    let batch: Vec<_> = tasks[10..20].iter().flat_map(|t| [ok(&t[0]), ok(&t[1])]).collect();
    let out = a.complete_batch(&batch).await.unwrap();
    let finished: Vec<bool> = out
        .iter()
        .map(|o| {
            matches!(
                o,
                CompletionOutcome::Completed {
                    task_complete: true,
                    ..
                }
            )
        })
        .collect();
    assert_eq!(finished, [false, true].repeat(10), "{out:?}");
    // Each task's two sinks in two concurrent batches on two handles: one of the two says it finished it.
    let (left, right): (Vec<_>, Vec<_>) = tasks[20..].iter().map(|t| (ok(&t[0]), ok(&t[1]))).unzip();
    let both = async { tokio::join!(a.complete_batch(&left), b.complete_batch(&right)) };
    let (l, r) = match pg_url {
        Some(url) => with_counts_locked(url, 2, both).await,
        None => both.await,
    };
    let (l, r) = (l.unwrap(), r.unwrap());
    for (i, (l, r)) in l.iter().zip(&r).enumerate() {
        let finishes = [l, r]
            .iter()
            .filter(|o| {
                matches!(
                    o,
                    CompletionOutcome::Completed {
                        task_complete: true,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(finishes, 1, "task {i} of the concurrent batches: {l:?} {r:?}");
    }
    let s = a.status().await.unwrap();
    assert_eq!((s.tasks, s.tasks_complete), (40, 40), "{s:?}");
}

/// Runs `f` while another connection holds every step-count row (PostgreSQL): a completion's last
/// statement before its commit updates one, so each completion running in `f` stops there, after all its
/// reads. Released once `waiters` sessions wait on a lock (fails after 30 s).
async fn with_counts_locked<T>(url: &str, waiters: i64, f: impl std::future::Future<Output = T>) -> T {
    use sqlx::Connection;
    let mut holder = sqlx::PgConnection::connect(url).await.unwrap();
    let mut watcher = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query("SELECT 1 FROM step_counts FOR UPDATE")
        .execute(&mut holder)
        .await
        .unwrap();
    let release = async {
        let deadline = Instant::now() + LONG;
        loop {
            let waiting: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()",
            )
            .fetch_one(&mut watcher)
            .await
            .unwrap();
            if waiting >= waiters {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{waiting} of {waiters} sessions waiting on a lock"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        sqlx::query("COMMIT").execute(&mut holder).await.unwrap();
    };
    let (out, ()) = tokio::join!(f, release);
    out
}
