//! Overload: the step store offers work far faster than the handlers finish it (the
//! handler side takes `HANDLER_MS` per step, about a tenth of what the store and ring can move), for
//! `TASKER_OVERLOAD_SECS` (10 in CI, 60 in the long form). Sampled every 250 ms, the run must show:
//! memory flat (RSS after warm-up within a bound), the events ring within its capacity, the store's held
//! claims bounded by what the ring can hold (it stops claiming instead of draining the table), no event
//! timed out or failed (an unread event's clock has not started); and after the load, latency recovers:
//! a small batch enqueued then completes about as fast as the same batch did before the overload.

mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{block_on, store_config};
use tasker_ring::{Region, RingId};
use tasker_store::Store;
use tasker_worker_core::{Worker, WorkerConfig};

/// Handler time per step while overloaded.
const HANDLER_MS: u64 = 3;
/// Bytes of the events ring: room for about 300 of these events, so the bound is visible quickly.
const EVENTS_CAPACITY: u32 = 1 << 20;

fn overload_secs() -> u64 {
    std::env::var("TASKER_OVERLOAD_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn enqueue(url: &str, tasks: u64) {
    block_on(async {
        let store = Store::connect(url).await.unwrap();
        store
            .enqueue("default", "linear", tasks as usize, br#"{"even_number": 2}"#)
            .await
            .unwrap();
        store.close().await;
    });
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The TS side: answers every event with the reference result, sleeping `delay_ms` (shared, changeable)
/// per step first; counts the steps it handled.
fn handler_side(
    region_path: &Path,
    delay_ms: Arc<AtomicU64>,
    handled: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    let region = Region::attach(region_path).unwrap();
    std::thread::spawn(move || {
        let mut events = region.consumer(RingId::Events).unwrap();
        let mut completions = region.producer(RingId::Completions).unwrap();
        while !stop.load(Ordering::Acquire) {
            let mut batch = Vec::new();
            events
                .read_batch(16, |m| {
                    batch.push(serde_json::from_slice::<serde_json::Value>(m.payload).unwrap())
                })
                .unwrap();
            if batch.is_empty() {
                std::thread::sleep(Duration::from_millis(1));
            }
            for event in batch {
                let delay = delay_ms.load(Ordering::Relaxed);
                if delay > 0 {
                    std::thread::sleep(Duration::from_millis(delay));
                }
                support::answer(&mut completions, &event);
                handled.fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

fn steps(worker: &Worker) -> serde_json::Value {
    worker.metrics().source.unwrap()["steps"].clone()
}

/// Enqueues `tasks` linear tasks (4 steps each) and returns how long until all of them are complete.
fn batch_time(url: &str, worker: &Worker, tasks: u64) -> Duration {
    let before = steps(worker)["complete"].as_u64().unwrap_or(0);
    let started = Instant::now();
    enqueue(url, tasks);
    loop {
        let s = steps(worker);
        if s["complete"].as_u64().unwrap_or(0) >= before + 4 * tasks && s["ready"] == 0 && s["claimed"] == 0 {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "batch never completed: {s}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_producer_ten_times_faster_than_the_handlers_stays_bounded_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    enqueue(&url, 1); // creates the schema
    let config = WorkerConfig {
        events_capacity: EVENTS_CAPACITY,
        ..store_config(dir.path(), &url)
    };
    let mut worker = Worker::bootstrap(config).unwrap();
    let delay = Arc::new(AtomicU64::new(0));
    let handled = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let side = handler_side(
        &worker.status().region_path.unwrap(),
        Arc::clone(&delay),
        Arc::clone(&handled),
        Arc::clone(&stop),
    );

    // Baseline: a small batch with fast handlers.
    let baseline = batch_time(&url, &worker, 50);

    // Overload: far more ready steps than the handlers can take in the period, handlers slowed down.
    let secs = overload_secs();
    let per_sec_handled = 1000 / HANDLER_MS;
    enqueue(&url, secs * per_sec_handled * 10 / 4 + 1000);
    delay.store(HANDLER_MS, Ordering::Relaxed);
    let started = Instant::now();
    let handled_at_start = handled.load(Ordering::Relaxed);
    let (mut rss, mut fill, mut held) = (Vec::new(), 0f64, Vec::new());
    while started.elapsed() < Duration::from_secs(secs) {
        std::thread::sleep(Duration::from_millis(250));
        let m = worker.metrics();
        let source = m.source.clone().unwrap();
        rss.push(rss_kib());
        fill = fill.max(m.events_ring_fill);
        held.push(source["held"].as_u64().unwrap());
        assert_eq!(
            (m.timed_out_count, m.failed_count),
            (0, 0),
            "nothing times out or fails: {source}"
        );
    }
    let handled_in_load = handled.load(Ordering::Relaxed) - handled_at_start;
    let ready_left = steps(&worker)["ready"].as_u64().unwrap_or(0);

    // Recovery: full-speed handlers drain the backlog, then a small batch is timed again.
    delay.store(0, Ordering::Relaxed);
    let drain_started = Instant::now();
    loop {
        let s = steps(&worker);
        if s["ready"] == 0 && s["claimed"] == 0 && s["pending"] == 0 {
            break;
        }
        assert!(
            drain_started.elapsed() < Duration::from_secs(600),
            "the backlog never drained: {s}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let drain = drain_started.elapsed();
    let recovered = batch_time(&url, &worker, 50);
    stop.store(true, Ordering::Release);
    side.join().unwrap();
    let m = worker.metrics();
    worker.stop();

    // Memory: after the first quarter (allocators warm), flat within 32 MiB.
    let warm = &rss[rss.len() / 4..];
    let (lo, hi) = (*warm.iter().min().unwrap(), *warm.iter().max().unwrap());
    // Held claims: what the ring holds plus what is being handled, so flat once the ring is full.
    let held_warm = &held[held.len() / 4..];
    let (held_lo, held_hi) = (*held_warm.iter().min().unwrap(), *held_warm.iter().max().unwrap());
    println!(
        "overload {secs} s: handled {handled_in_load} steps ({:.0}/s) with {ready_left} still ready; \
         RSS {} to {} MiB after warm-up; events ring fill max {:.0}%; held claims {held_lo} to {held_hi} \
         after warm-up; drain {drain:?}; 200-step batch {baseline:?} before, {recovered:?} after",
        handled_in_load as f64 / secs as f64,
        lo / 1024,
        hi / 1024,
        fill * 100.0
    );
    assert!(ready_left > 0, "the store offered more than the handlers could take");
    assert!(hi - lo <= 32 * 1024, "RSS grew from {lo} to {hi} KiB under overload");
    assert!(fill <= 1.0, "the ring stays within capacity");
    assert!(
        held_hi <= held_lo + 512 && held_hi < ready_left,
        "the store stops claiming at what the ring holds: held {held_lo} to {held_hi}, {ready_left} left ready"
    );
    assert_eq!((m.timed_out_count, m.failed_count, m.refused_completions), (0, 0, 0));
    assert!(
        recovered <= baseline * 3 + Duration::from_millis(500),
        "latency recovers: {recovered:?} after vs {baseline:?} before"
    );
}
