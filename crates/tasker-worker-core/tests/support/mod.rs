//! Shared by the store-fed worker tests (`store_source`, `overload`, `seal_and_give_back`): running the store's
//! async API from a test, waiting for a condition, a worker configuration on a store URL, and the handler
//! side's answer to a step event.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Producer, RingMemory};
use tasker_store::templates::reference_result;
use tasker_worker_core::{SourceConfig, WorkerConfig};

/// Runs `f` on a fresh current-thread tokio runtime.
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// Polls `done` every 10 ms until it holds; fails the test after `limit`, naming `what`.
pub fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A ring worker in `dir` fed by the store at `url` (1 MiB events ring, step counts every 100 ms).
pub fn store_config(dir: &Path, url: &str) -> WorkerConfig {
    WorkerConfig {
        region_dir: Some(dir.to_path_buf()),
        events_capacity: 1 << 20,
        completions_capacity: 1 << 18,
        source: SourceConfig::Store {
            database_url: Some(url.to_string()),
            visibility_margin_ms: None,
            connect_timeout_ms: Some(2_000),
            status_interval_ms: Some(100),
        },
        ..WorkerConfig::default()
    }
}

/// Writes the completion of `event`: its id, then the reference handler's result (blocking up to 10 s for
/// room in the completions ring).
pub fn answer<M: RingMemory>(completions: &mut Producer<M>, event: &serde_json::Value) {
    let result = reference_result(event).unwrap();
    let mut payload = event["event_id"].as_str().unwrap().as_bytes().to_vec();
    serde_json::to_writer(&mut payload, &result).unwrap();
    completions
        .write_blocking(record_type::COMPLETION, &payload, Duration::from_secs(10))
        .unwrap();
}
