//! The store on a real PostgreSQL cluster started by the test (SKIPPED loudly without the binaries).

mod common;

use common::pg::PgCluster;
use common::scenarios::*;
use std::time::{Duration, Instant};
use tasker_store::{ConnectError, Store, StoreOptions};

async fn store(test: &str) -> Option<(PgCluster, Store)> {
    let pg = PgCluster::start(test)?;
    let s = Store::connect_with(&pg.url, fast_options()).await.unwrap();
    assert!(s.is_postgres());
    Some((pg, s))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_linear_and_diamond_run_to_completion() {
    let Some((_pg, s)) = store("pg_linear_and_diamond_run_to_completion").await else {
        return;
    };
    let mut listener = s.listen().await.unwrap();
    linear_and_diamond_to_completion(&s).await;
    tokio::time::timeout(Duration::from_secs(5), listener.recv())
        .await
        .expect("a NOTIFY")
        .unwrap();
    bad_input_is_typed(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_task_complete_is_said_once_per_task() {
    let Some((pg, a)) = store("pg_task_complete").await else {
        return;
    };
    let b = Store::connect_with(&pg.url, fast_options()).await.unwrap();
    task_complete_once_per_task(&a, &b, "postgres", Some(&pg.url)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_corrupt_step_goes_to_error_and_the_rest_is_claimed() {
    let Some((pg, s)) = store("pg_corrupt_step").await else {
        return;
    };
    a_corrupt_step_goes_to_error_and_the_rest_is_claimed(&s, &pg.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_a_corrupt_parent_result_fails_only_its_child() {
    let Some((pg, s)) = store("pg_corrupt_result").await else {
        return;
    };
    a_corrupt_parent_result_fails_only_its_child(&s, &pg.url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_checkpoints_and_history() {
    let Some((_pg, s)) = store("pg_history").await else {
        return;
    };
    checkpoints_and_attempt_history(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_contexts_round_trip() {
    let Some((_pg, s)) = store("pg_contexts").await else {
        return;
    };
    contexts_round_trip_exactly(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_visibility_expiry_reclaims_and_refuses_stale() {
    let Some((_pg, s)) = store("pg_visibility_expiry").await else {
        return;
    };
    visibility_expiry_and_stale_completion(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_retryable_failures_back_off_then_error() {
    let Some((_pg, s)) = store("pg_retry").await else {
        return;
    };
    retry_backoff_then_error_then_retry_errors(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_verify_finds_wrong_results() {
    let Some((_pg, s)) = store("pg_verify").await else {
        return;
    };
    verify_reports_correct_and_wrong_results(&s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn pg_concurrent_claimers_never_share_a_step() {
    let Some((pg, s)) = store("pg_concurrent_claimers").await else {
        return;
    };
    // Two pools (as two worker processes would have), eight claim loops in all.
    let other = Store::connect_with(&pg.url, fast_options()).await.unwrap();
    concurrent_claimers_never_share(&[s, other], 500, 8).await;
}

#[tokio::test]
async fn pg_unreachable_and_invalid_urls_are_typed_and_fast() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t0 = Instant::now();
    let opts = StoreOptions {
        connect_timeout: Duration::from_millis(500),
        ..StoreOptions::default()
    };
    let e = Store::connect_with(&format!("postgres://u:secret@127.0.0.1:{port}/x"), opts)
        .await
        .unwrap_err();
    assert!(
        matches!(e, ConnectError::Unreachable { attempts, .. } if attempts > 1),
        "{e:?}"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    assert!(!e.to_string().contains("secret"), "password redacted: {e}");
    println!("{e}");
    let e = Store::connect("postgresql://[::1").await.unwrap_err();
    assert!(matches!(e, ConnectError::InvalidUrl { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 8)]
async fn pg_throughput() {
    let Some((_pg, s)) = store("pg_throughput").await else {
        return;
    };
    throughput(&s, "postgres 1 loop", 1000, 1, 256).await;
    throughput(&s, "postgres 4 loops", 2000, 4, 256).await;
}

/// The client calls on one cluster (a cluster per scenario would start six servers).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pg_client_calls() {
    use common::client_ops::*;
    let Some(pg) = PgCluster::start("pg_client_calls") else {
        return;
    };
    // Each scenario on a database of its own: they count tasks and steps from zero.
    for (i, scenario) in ["health", "create", "list", "cancel", "history", "templates"]
        .iter()
        .enumerate()
    {
        let db = format!("client_{i}");
        raw_sql(&pg.url, &format!("CREATE DATABASE {db}")).await;
        let url = pg.url.rsplit_once('/').map(|(base, _)| format!("{base}/{db}")).unwrap();
        let s = Store::connect_with(&url, fast_options()).await.unwrap();
        match *scenario {
            "health" => health_reports_backend_schema_and_counts(&s, "postgres").await,
            "create" => create_get_and_idempotency(&s).await,
            "list" => list_pages_and_filters(&s).await,
            "cancel" => cancel_stops_pending_and_lets_running_finish(&s).await,
            "history" => steps_and_history_after_a_retry(&s).await,
            _ => registered_templates_run(&s, &url, "postgres").await,
        }
        s.close().await;
    }
}
