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
async fn a_corrupt_step_goes_to_error_and_the_rest_is_claimed() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("store.db").display());
    let s = Store::connect_with(&url, fast_options()).await.unwrap();
    common::scenarios::a_corrupt_step_goes_to_error_and_the_rest_is_claimed(&s, &url).await;
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
