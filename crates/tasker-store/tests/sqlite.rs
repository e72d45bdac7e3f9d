//! The store on SQLite (a temp file).

mod common;

use common::scenarios::*;
use std::time::{Duration, Instant};
use tasker_store::{ConnectError, ListenError, Store, StoreOptions};

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let s = Store::connect_with(&url, fast_options()).await.unwrap();
    (dir, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn linear_and_diamond_run_to_completion() {
    let (_d, s) = store().await;
    linear_and_diamond_to_completion(&s).await;
    bad_input_is_typed(&s).await;
    assert!(matches!(s.listen().await, Err(ListenError::Unsupported)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn task_complete_is_said_once_per_task() {
    let (dir, a) = store().await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let b = Store::connect_with(&url, fast_options()).await.unwrap();
    task_complete_once_per_task(&a, &b, "sqlite", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_step_goes_to_error_and_the_rest_is_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let s = Store::connect_with(&url, fast_options()).await.unwrap();
    common::scenarios::a_corrupt_step_goes_to_error_and_the_rest_is_claimed(&s, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_corrupt_parent_result_fails_only_its_child() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let s = Store::connect_with(&url, fast_options()).await.unwrap();
    common::scenarios::a_corrupt_parent_result_fails_only_its_child(&s, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn checkpoints_and_history() {
    let (_d, s) = store().await;
    checkpoints_and_attempt_history(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn contexts_round_trip() {
    let (_d, s) = store().await;
    contexts_round_trip_exactly(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn visibility_expiry_reclaims_and_refuses_stale() {
    let (_d, s) = store().await;
    visibility_expiry_and_stale_completion(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retryable_failures_back_off_then_error() {
    let (_d, s) = store().await;
    retry_backoff_then_error_then_retry_errors(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verify_finds_wrong_results() {
    let (_d, s) = store().await;
    verify_reports_correct_and_wrong_results(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers() {
    let (_d, s) = store().await;
    concurrent_claimers_never_share(&[s.clone(), s], 200, 4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bare_path_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bare.db");
    let s = Store::connect_with(path.to_str().unwrap(), fast_options())
        .await
        .unwrap();
    s.enqueue("ns", "linear", 3, br#"{"even_number": 2}"#).await.unwrap();
    s.close().await;
    let s = Store::connect_with(path.to_str().unwrap(), fast_options())
        .await
        .unwrap();
    assert_eq!(
        s.status().await.unwrap().tasks,
        3,
        "migrations are idempotent and data persists"
    );
}

/// Workers (or a worker and `tasker-ring store status`) started at once on a fresh file: SQLite has no
/// advisory lock for sqlx's migrator, so without the store's own serialisation two openers both create
/// the tables and one fails with "table tasks already exists", and an opener can meet "database is locked"
/// while another switches the file to WAL. Each opener here is a separate pool, as separate processes
/// would be, over 50 fresh files (before the fix the first failed within 20).
#[test]
fn concurrent_first_opens_of_a_fresh_file_all_succeed() {
    for round in 0..50 {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(6));
        let openers: Vec<_> = (0..6)
            .map(|_| {
                let (url, barrier) = (url.clone(), barrier.clone());
                std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    barrier.wait();
                    rt.block_on(async {
                        let store = Store::connect_with(&url, fast_options()).await?;
                        store.status().await.expect("status of the migrated store");
                        Ok(())
                    })
                })
            })
            .collect();
        for (i, opener) in openers.into_iter().enumerate() {
            let result: Result<(), ConnectError> = opener.join().unwrap();
            if let Err(e) = result {
                panic!("round {round}, opener {i}: {e}");
            }
        }
    }
}

#[tokio::test]
async fn invalid_urls_and_unreachable_files_are_typed_and_fast() {
    for url in ["", "mysql://localhost/x", "postgres://host:notaport/db"] {
        let e = Store::connect(url).await.unwrap_err();
        assert!(matches!(e, ConnectError::InvalidUrl { .. }), "{url}: {e:?}");
    }
    let t0 = Instant::now();
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(300),
        ..StoreOptions::default()
    };
    let e = Store::connect_with("/nonexistent-dir-tasker/x.db", opts)
        .await
        .unwrap_err();
    assert!(matches!(e, ConnectError::Unreachable { .. }), "{e:?}");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    println!("{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn throughput_sqlite() {
    let (_d, s) = store().await;
    throughput(&s, "sqlite 1 loop", 2000, 1, 256).await;
}

/// A store written by the schema-1 release (fixtures/store-schema1.db: 40 tasks, linear and diamond, with
/// steps pending, ready, claimed with an hour left, complete and in error) opens under the current code, is
/// migrated, and finishes its unfinished work: the old claims are released without using an attempt (their
/// tokens' format is gone), every reachable step completes, and every finished task matches the reference
/// math.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_schema_1_store_is_migrated_and_finishes_its_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/store-schema1.db"),
        &path,
    )
    .unwrap();
    let url = format!("sqlite://{}", path.display());
    let s = Store::connect_with(&url, fast_options()).await.unwrap();
    let st = s.status().await.unwrap();
    assert_eq!(st.tasks, 40);
    assert_eq!(
        (st.pending, st.ready, st.claimed, st.complete, st.error),
        (70, 48, 0, 40, 2),
        "the 8 schema-1 claims are ready again: {st:?}"
    );
    assert_eq!(
        s.step_counts().await.unwrap().steps(),
        160,
        "the counts were carried over"
    );
    let released = s.claim(100, Duration::from_secs(30)).await.unwrap();
    assert_eq!(released.len(), 48);
    assert!(
        released.iter().all(|c| c.attempts == 1
            || c.event_value()["task_sequence_step"]["workflow_step"]["name"] != "linear_step_1"
                && c.event_value()["task_sequence_step"]["workflow_step"]["name"] != "diamond_start"),
        "no attempt used by the release"
    );
    // Complete everything reachable.
    let mut batch = released;
    loop {
        if batch.is_empty() {
            let c = s.step_counts().await.unwrap();
            if c.ready + c.claimed == 0 {
                break;
            }
        }
        let items: Vec<_> = batch
            .iter()
            .map(|c| {
                (
                    c.claim_token,
                    serde_json::to_vec(&tasker_store::templates::reference_result(&c.event_value()).unwrap()).unwrap(),
                )
            })
            .collect();
        s.complete_batch(&items).await.unwrap();
        batch = s.claim(100, Duration::from_secs(30)).await.unwrap();
    }
    let st = s.status().await.unwrap();
    assert_eq!(
        (st.complete, st.error, st.pending, st.claimed, st.ready),
        (152, 2, 6, 0, 0),
        "{st:?}"
    );
    let report = s.verify().await.unwrap();
    assert_eq!(
        (report.tasks, report.checked, report.mismatches),
        (40, 38, 0),
        "{report:?}"
    );
    // Schema 4's additions work on the migrated store: the two tasks in error are listed, one is cancelled
    // (its pending steps counted as cancelled), and new tasks are created after the old ids.
    assert_eq!(s.health().await.unwrap().schema_version, 4);
    let errored = tasker_store::TaskFilter {
        status: Some(tasker_store::TaskStatus::Error),
        ..Default::default()
    };
    let errored = s.list_tasks(&errored).await.unwrap();
    assert_eq!(errored.total_count, 2);
    let out = s.cancel_task(errored.tasks[0].task_uuid).await.unwrap();
    assert_eq!(
        out,
        tasker_store::CancelOutcome::Cancelled {
            steps_cancelled: 3,
            still_running: 0
        }
    );
    let st = s.status().await.unwrap();
    assert_eq!((st.pending, st.cancelled, st.steps()), (3, 3, 160), "{st:?}");
    let task = s
        .create_task(&common::client_ops::request("linear", "after_migration"))
        .await
        .unwrap();
    assert_eq!((task.step_count, s.status().await.unwrap().tasks), (4, 41));
}

/// A completion persisted through another `Store` handle than the claim's (another process, or a restarted
/// one): the task is not in that handle's cache and is read inside the completion's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn completions_through_another_handle_make_children_ready() {
    let (dir, a) = store().await;
    a.enqueue("ns", "diamond", 3, br#"{"even_number": 2}"#).await.unwrap();
    let claimed = a.claim(10, Duration::from_secs(30)).await.unwrap();
    assert_eq!(claimed.len(), 3);
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let b = Store::connect_with(&url, fast_options()).await.unwrap();
    let items: Vec<_> = claimed
        .iter()
        .map(|c| {
            let result = tasker_store::templates::reference_result(&c.event_value()).unwrap();
            (c.claim_token, serde_json::to_vec(&result).unwrap())
        })
        .collect();
    let outcomes = b.complete_batch(&items).await.unwrap();
    assert!(
        outcomes.iter().all(|o| matches!(
            o,
            tasker_store::CompletionOutcome::Completed {
                ready_children: 2,
                task_complete: false
            }
        )),
        "{outcomes:?}"
    );
    assert_eq!(b.step_counts().await.unwrap().ready, 6);
}

mod client {
    use super::common::client_ops::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn create_get_and_idempotency_on_sqlite() {
        let (_d, s) = super::store().await;
        create_get_and_idempotency(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn list_pages_and_filters_on_sqlite() {
        let (_d, s) = super::store().await;
        list_pages_and_filters(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cancel_stops_pending_and_lets_running_finish_on_sqlite() {
        let (_d, s) = super::store().await;
        cancel_stops_pending_and_lets_running_finish(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn steps_and_history_after_a_retry_on_sqlite() {
        let (_d, s) = super::store().await;
        steps_and_history_after_a_retry(&s).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn registered_templates_run_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
        let s = tasker_store::Store::connect_with(&url, super::fast_options())
            .await
            .unwrap();
        registered_templates_run(&s, &url, "sqlite").await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn health_on_sqlite() {
        let (_d, s) = super::store().await;
        health_reports_backend_schema_and_counts(&s, "sqlite").await;
    }
}

/// The WAL is checkpointed off the writer's thread (`lite`), and must still restart while the writer commits
/// back to back: its file (SQLite reuses it from the start after a full checkpoint, so its size is the
/// high-water mark) stays a few MB through 60 000 steps, where a checkpoint that never catches up would leave
/// ~2 KB of WAL per step (~120 MB).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_wal_stays_bounded_while_the_writer_commits_back_to_back() {
    let (dir, s) = store().await;
    s.enqueue("ns", "linear", 15_000, br#"{"even_number": 2}"#)
        .await
        .unwrap();
    let loops: Vec<_> = (0..2)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move { drain(&s, 256).await.1 })
        })
        .collect();
    let mut done = 0;
    for l in loops {
        done += l.await.unwrap();
    }
    assert_eq!(done, 60_000);
    let wal = std::fs::metadata(dir.path().join("store.db-wal")).map_or(0, |m| m.len());
    assert!(
        wal < 32 << 20,
        "the WAL grew to {} MB: checkpoints never caught up",
        wal >> 20
    );
    s.close().await;
}

/// The idle worker's look at the store (issue 21): a commit from another connection (another process's
/// enqueue) shows as a change, an empty claim and reads do not, so an idle worker polls the WAL index instead
/// of the database; a claim that takes steps does.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_change_probe_sees_other_connections_commits_and_not_empty_claims() {
    let (dir, worker) = store().await;
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let client = Store::connect_with(&url, fast_options()).await.unwrap();
    let mut probe = worker.change_probe().expect("an SQLite file store has a WAL index");
    assert_eq!(probe.path(), dir.path().join("store.db-shm"));
    assert!(probe.changed(), "the first look");
    assert!(!probe.changed());
    for _ in 0..3 {
        assert!(worker.claim(10, Duration::from_secs(30)).await.unwrap().is_empty());
        worker.status().await.unwrap();
        assert!(!probe.changed(), "an empty claim or a read commits nothing");
    }
    client
        .enqueue("ns", "linear", 1, br#"{"even_number": 4}"#)
        .await
        .unwrap();
    assert!(probe.changed(), "another connection's enqueue");
    assert!(!probe.changed());
    assert_eq!(worker.claim(10, Duration::from_secs(30)).await.unwrap().len(), 1);
    assert!(probe.changed(), "a claim that took a step");
    assert!(!probe.changed());
}
