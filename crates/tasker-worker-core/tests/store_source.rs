//! The worker fed by the step store, with a thread standing in for the TS side: every step of linear and
//! diamond tasks runs once with the right dependency results and is persisted; unread claims are given back
//! on stop without using an attempt; bad store URLs fail bootstrap with a clear error; a PostgreSQL server
//! that goes away mid-run is retried with backoff and nothing is lost when it comes back.

use tasker_store::test_support as pg;
mod support;

use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{block_on, store_config, wait_until};
use tasker_ring::{Region, RingId};
use tasker_store::templates::{reference_result, template};
use tasker_store::{ConnectError, Store};
use tasker_worker_core::store_source::StoreSourceError;
use tasker_worker_core::{BootstrapError, Worker, WorkerConfig};

/// The TS side: answers every event with the reference handler's result until `stop` is set; returns the
/// events seen.
fn handler_side(region_path: &Path, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Value>> {
    let region = Region::attach(region_path).unwrap();
    std::thread::spawn(move || {
        let mut events = region.consumer(RingId::Events).unwrap();
        let mut completions = region.producer(RingId::Completions).unwrap();
        let mut seen = Vec::new();
        while !stop.load(Ordering::Acquire) {
            let mut batch = Vec::new();
            events
                .read_batch(64, |m| batch.push(serde_json::from_slice::<Value>(m.payload).unwrap()))
                .unwrap();
            if batch.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            for event in batch {
                support::answer(&mut completions, &event);
                seen.push(event);
            }
        }
        seen
    })
}

#[test]
fn every_step_of_linear_and_diamond_tasks_runs_once_and_is_persisted() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    let tasks = 150;
    block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store
            .enqueue("default", "linear", tasks, br#"{"even_number": 2}"#)
            .await
            .unwrap();
        store
            .enqueue("default", "diamond", tasks, br#"{"even_number": 4}"#)
            .await
            .unwrap();
        store.close().await;
    });
    let mut worker = Worker::bootstrap(store_config(dir.path(), &url)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let side = handler_side(&worker.status().region_path.unwrap(), Arc::clone(&stop));
    let steps = |w: &Worker| w.metrics().source.unwrap()["steps"].clone();
    wait_until("every step complete", Duration::from_secs(60), || {
        let s = steps(&worker);
        s["complete"] == 8 * tasks && s["ready"] == 0 && s["claimed"] == 0 && s["pending"] == 0
    });
    stop.store(true, Ordering::Release);
    let seen = side.join().unwrap();
    let m = worker.metrics();
    let source = m.source.clone().unwrap();
    assert_eq!(source["backend"], "sqlite");
    assert_eq!(source["completed"], 8 * tasks, "{source}");
    assert_eq!(
        (source["refused"].as_u64(), source["failed"].as_u64()),
        (Some(0), Some(0))
    );
    assert_eq!(source["latency"]["count"], 8 * tasks);
    assert!(source["latency"]["p99_ms"].as_f64().unwrap() >= source["latency"]["p50_ms"].as_f64().unwrap());
    assert_eq!(m.completed_count, 8 * tasks as u64);
    let steps: std::collections::HashSet<_> = seen.iter().map(|e| e["step_uuid"].as_str().unwrap()).collect();
    assert_eq!((seen.len(), steps.len()), (8 * tasks, 8 * tasks), "each step ran once");
    for e in &seen {
        assert_eq!(e["task_sequence_step"]["workflow_step"]["attempts"], 1);
        let name = e["task_sequence_step"]["workflow_step"]["name"].as_str().unwrap();
        let (t, n) = match name {
            "linear_step_4" => ("linear", 2),
            "diamond_end" => ("diamond", 4),
            _ => continue,
        };
        let value = reference_result(e).unwrap()["result"]["value"].as_i64();
        assert_eq!(
            value,
            template(t).unwrap().expected_final(n),
            "{t} final from its dependency results"
        );
    }
    worker.stop();
    let status = block_on(async { Store::connect(&url).await.unwrap().status().await.unwrap() });
    assert_eq!(
        (status.complete, status.tasks_complete),
        (8 * tasks as u64, 2 * tasks as u64)
    );
}

#[test]
fn unread_claims_are_released_on_stop_without_using_an_attempt() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store.enqueue("default", "diamond", 2000, b"{}").await.unwrap();
        store.close().await;
    });
    // Nobody reads: the worker claims what fits in a 64 KiB ring and holds it.
    let mut worker = Worker::bootstrap(WorkerConfig {
        events_capacity: 64 << 10,
        max_frame_size: 16 << 10,
        ..store_config(dir.path(), &url)
    })
    .unwrap();
    wait_until("claims", Duration::from_secs(30), || {
        worker.metrics().source.unwrap()["steps"]["claimed"].as_u64() > Some(0)
    });
    std::thread::sleep(Duration::from_millis(300));
    let m = worker.metrics();
    let claimed = m.source.unwrap()["claimed"].as_u64().unwrap();
    assert!(
        claimed > 0 && claimed < 2000,
        "claims bounded by the ring's room: {claimed}"
    );
    assert_eq!(m.in_flight_count, 0, "nothing was read");
    assert!(
        m.pending_count > 0 && m.pending_count <= claimed,
        "claimed events wait unread in the ring"
    );
    worker.stop();
    let (status, reclaimed) = block_on(async {
        let store = Store::connect(&url).await.unwrap();
        let status = store.status().await.unwrap();
        let again = store.claim(5000, Duration::from_secs(30)).await.unwrap();
        (status, again)
    });
    assert_eq!((status.claimed, status.ready), (0, 2000), "every claim given back");
    assert_eq!(reclaimed.len(), 2000);
    assert!(
        reclaimed.iter().all(|c| c.attempts == 1),
        "no attempt used by the released claims"
    );
}

/// A draining worker withdraws its open claim request. Steps that become ready during
/// the drain stay ready for other workers (before, the worker claimed them and never dispatched them).
#[test]
fn a_draining_worker_claims_nothing_new() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store.enqueue("default", "linear", 10, b"{}").await.unwrap();
        store.close().await;
    });
    // Nobody reads: the 10 roots wait unread in the ring, and the worker keeps a claim request open for
    // the rest of the ring's room. The drain cannot end before its 60 s deadline.
    let mut worker = Worker::bootstrap(WorkerConfig {
        shutdown_timeout_ms: 60_000,
        ..store_config(dir.path(), &url)
    })
    .unwrap();
    // Written into the ring, not only claimed: steps the store thread claimed and the pump has not taken yet
    // go back at once when the drain begins (they were never dispatched).
    wait_until("the 10 roots in the ring", Duration::from_secs(30), || {
        worker.metrics().pending_count == 10
    });
    worker.begin_graceful_shutdown();
    block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store.enqueue("default", "linear", 5, b"{}").await.unwrap();
        store.close().await;
    });
    // The store thread polls an open request every 2-50 ms: a second is ample for it to claim.
    std::thread::sleep(Duration::from_millis(1000));
    let status = block_on(async { Store::connect(&url).await.unwrap().status().await.unwrap() });
    assert_eq!(
        (status.claimed, status.ready),
        (10, 5),
        "steps ready during the drain are not claimed"
    );
    assert_eq!(worker.metrics().source.unwrap()["claimed"], 10);
    worker.stop();
    let status = block_on(async { Store::connect(&url).await.unwrap().status().await.unwrap() });
    assert_eq!(
        (status.claimed, status.ready),
        (0, 15),
        "the unread claims went back at stop"
    );
}

/// Issue 21 (an idle worker's CPU): on SQLite an idle worker waits on an inotify watch of the WAL file, not
/// on a 50 ms poll: idle for 1.5 s it looks at the store a handful of times (the doubling idle delay up to
/// the 1 s slow poll; polling would look ~25 times), and another process's enqueue still reaches it, woken
/// by the write.
#[cfg(target_os = "linux")]
#[test]
fn an_idle_sqlite_worker_waits_on_the_wal_file_and_an_enqueue_wakes_it() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    block_on(async { Store::connect(&url).await.unwrap().close().await });
    let mut worker = Worker::bootstrap(store_config(dir.path(), &url)).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let source = worker.metrics().source.unwrap();
    assert_eq!(source["idle_wait"], "wal_watch", "{source}");
    let looked = source["idle_looks"].as_u64().unwrap() + source["time"]["empty_claims"].as_u64().unwrap();
    assert!(
        looked <= 12,
        "idle, the store was looked at {looked} times in 1.5 s: {source}"
    );
    block_on(async {
        let store = Store::connect(&url).await.unwrap();
        store
            .enqueue("default", "linear", 1, br#"{"even_number": 2}"#)
            .await
            .unwrap();
        store.close().await;
    });
    wait_until("the enqueued root in the ring", Duration::from_secs(30), || {
        worker.metrics().pending_count == 1
    });
    let source = worker.metrics().source.unwrap();
    assert!(source["wal_wakes"].as_u64().unwrap() >= 1, "{source}");
    worker.stop();
}

#[test]
fn bad_store_urls_fail_bootstrap_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let err = |url: &str| match Worker::bootstrap(store_config(dir.path(), url)) {
        Err(e @ BootstrapError::Store(_)) => e.to_string(),
        Err(other) => panic!("{url}: wrong error kind: {other}"),
        Ok(_) => panic!("{url}: bootstrap succeeded"),
    };
    let invalid = err("mysql://localhost/x");
    assert!(invalid.contains("invalid store URL"), "{invalid}");
    let started = Instant::now();
    let unreachable = err("postgres://tasker:secret@127.0.0.1:1/tasker");
    assert!(unreachable.contains("unreachable"), "{unreachable}");
    assert!(!unreachable.contains("secret"), "password redacted: {unreachable}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "bounded by connect_timeout_ms"
    );
    let missing_dir = err(&format!("sqlite:{}", dir.path().join("no/such/dir/x.db").display()));
    assert!(missing_dir.starts_with("step store:"), "{missing_dir}");
    assert!(
        std::fs::read_dir(dir.path()).unwrap().next().is_none(),
        "a failed bootstrap leaves no region behind"
    );
}

#[test]
fn an_unreachable_store_keeps_its_source_chain() {
    use std::error::Error;
    let dir = tempfile::tempdir().unwrap();
    let err = match Worker::bootstrap(store_config(dir.path(), "postgres://tasker:secret@127.0.0.1:1/tasker")) {
        Err(e) => e,
        Ok(_) => panic!("bootstrap succeeded"),
    };
    assert!(
        matches!(
            &err,
            BootstrapError::Store(StoreSourceError::Connect(ConnectError::Unreachable { .. }))
        ),
        "{err:?}"
    );
    // BootstrapError -> StoreSourceError -> ConnectError -> the last attempt's sqlx error.
    let chain: Vec<&dyn Error> = std::iter::successors(Some(&err as &dyn Error), |e| (*e).source()).collect();
    assert!(chain.len() >= 4, "{chain:?}");
    assert!(chain[1].downcast_ref::<StoreSourceError>().is_some(), "{chain:?}");
    let connect = chain
        .iter()
        .find_map(|e| e.downcast_ref::<ConnectError>())
        .expect("a ConnectError in the chain");
    assert!(matches!(connect, ConnectError::Unreachable { .. }), "{connect:?}");
    assert_eq!(
        err.to_string(),
        format!("step store: {connect}"),
        "the message is unchanged"
    );
}

#[test]
fn a_store_outage_is_retried_with_backoff_and_nothing_is_lost() {
    let Some(cluster) = pg::PgCluster::start("a_store_outage_is_retried_with_backoff_and_nothing_is_lost") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let tasks = 400;
    block_on(async {
        let store = Store::connect(&cluster.url).await.unwrap();
        store
            .enqueue("default", "diamond", tasks, br#"{"even_number": 2}"#)
            .await
            .unwrap();
        store.close().await;
    });
    let mut worker = Worker::bootstrap(store_config(dir.path(), &cluster.url)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let side = handler_side(&worker.status().region_path.unwrap(), Arc::clone(&stop));
    let source = |w: &Worker| w.metrics().source.unwrap();
    wait_until("some progress", Duration::from_secs(60), || {
        source(&worker)["completed"].as_u64() > Some(100)
    });
    cluster.stop_server();
    wait_until("store errors counted", Duration::from_secs(30), || {
        source(&worker)["store_errors"].as_u64() > Some(0)
    });
    std::thread::sleep(Duration::from_millis(1500));
    let during = source(&worker);
    assert!(worker.is_running(), "the worker keeps running without its store");
    assert!(during["last_error"].is_string(), "{during}");
    let errors = during["store_errors"].as_u64().unwrap();
    assert!(
        errors < 40,
        "retries back off (100 ms doubling to 5 s), not a busy loop: {errors} in 1.5 s"
    );
    cluster.start_server();
    wait_until("every step complete after the outage", Duration::from_secs(120), || {
        let s = source(&worker);
        s["steps"]["complete"] == 4 * tasks && s["steps"]["age_ms"].as_u64() < Some(500)
    });
    stop.store(true, Ordering::Release);
    let seen = side.join().unwrap();
    worker.stop();
    let status = block_on(async { Store::connect(&cluster.url).await.unwrap().status().await.unwrap() });
    assert_eq!(
        (status.complete, status.error, status.claimed),
        (4 * tasks as u64, 0, 0),
        "{status:?}"
    );
    // At least once: a result lost with a connection is run again; each step still completes once.
    assert!(seen.len() >= 4 * tasks, "{} events for {} steps", seen.len(), 4 * tasks);
}
