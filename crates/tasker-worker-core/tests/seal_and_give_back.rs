//! Layout 1.1 in the worker, fed by the step store, with this test standing in for the TS side:
//! - at the drain deadline the worker seals the events ring before giving unread events back, so the reader
//!   delivers none of them (issue 20, major 4: before, a reader could still run a step another worker had
//!   just claimed);
//! - a GIVE_BACK record returns read events to the store without using an attempt;
//! - a CHECKPOINT record yields the step: it is persisted, the attempt is not counted, and the step comes
//!   back carrying `workflow_step.checkpoint`.

mod support;

use serde_json::Value;
use std::time::Duration;
use support::{block_on, store_config, wait_until};
use tasker_ring::{record_type, ReadError, Region, RingId};
use tasker_store::Store;
use tasker_worker_core::{Worker, WorkerConfig};

fn enqueue(url: &str, tasks: usize) {
    block_on(async {
        let store = Store::connect(url).await.unwrap();
        store.enqueue("default", "linear", tasks, b"{}").await.unwrap();
        store.close().await;
    });
}

fn store_status(url: &str) -> tasker_store::StoreStatus {
    block_on(async {
        let store = Store::connect(url).await.unwrap();
        let status = store.status().await.unwrap();
        store.close().await;
        status
    })
}

/// Reads up to `n` events (waiting up to 10 s for them).
fn read_events(events: &mut tasker_ring::Consumer<tasker_ring::MappedRing>, n: usize) -> Vec<Value> {
    let mut got = Vec::new();
    wait_until("events in the ring", Duration::from_secs(10), || {
        events
            .read_batch(n - got.len(), |m| {
                got.push(serde_json::from_slice::<Value>(m.payload).unwrap())
            })
            .unwrap();
        got.len() == n
    });
    got
}

#[test]
fn the_drain_deadline_seals_the_ring_before_unread_events_go_back() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    enqueue(&url, 10);
    let mut worker = Worker::bootstrap(WorkerConfig {
        shutdown_timeout_ms: 300,
        ..store_config(dir.path(), &url)
    })
    .unwrap();
    let region = Region::attach(&worker.status().region_path.unwrap()).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    wait_until("the 10 roots in the ring", Duration::from_secs(30), || {
        worker.metrics().pending_count == 10
    });
    // Two are read (and never answered); eight wait unread when the drain's deadline passes.
    let read = read_events(&mut events, 2);
    worker.begin_graceful_shutdown();
    wait_until("the drain to end", Duration::from_secs(30), || !worker.is_running());
    // The reader delivers none of the eight: they are back in the store, maybe already another worker's.
    let mut late = Vec::new();
    let outcome = events.read_batch(64, |m| late.push(m.payload.len()));
    assert!(matches!(outcome, Err(ReadError::Sealed { .. })), "{outcome:?}");
    assert!(late.is_empty(), "{} events delivered after the seal", late.len());
    drop(events);
    worker.stop();
    let status = store_status(&url);
    assert_eq!(
        (status.claimed, status.ready),
        (0, 10),
        "the 8 unread went back, the 2 read failed as timeouts"
    );
    let failed = worker.metrics();
    assert_eq!((failed.released_count, failed.failed_count), (8, 2), "{failed:?}");
    assert_eq!(read.len(), 2);
}

#[test]
fn given_back_events_return_without_an_attempt_and_checkpoints_come_back_with_the_step() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("steps.db").display());
    enqueue(&url, 3);
    let mut worker = Worker::bootstrap(store_config(dir.path(), &url)).unwrap();
    let region = Region::attach(&worker.status().region_path.unwrap()).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    let mut completions = region.producer(RingId::Completions).unwrap();
    let first = read_events(&mut events, 3);
    let id = |e: &Value| e["event_id"].as_str().unwrap().to_string();
    let step = |e: &Value| e["step_uuid"].as_str().unwrap().to_string();
    // Give two back in one record; yield the third with a checkpoint.
    let mut give_back = id(&first[0]).into_bytes();
    give_back.extend_from_slice(id(&first[1]).as_bytes());
    completions.try_write(record_type::GIVE_BACK, &give_back).unwrap();
    let checkpoint = serde_json::json!({
        "step_uuid": step(&first[2]), "cursor": {"page": 7}, "items_processed": 70
    });
    let mut record = id(&first[2]).into_bytes();
    serde_json::to_writer(&mut record, &checkpoint).unwrap();
    completions.try_write(record_type::CHECKPOINT, &record).unwrap();
    // A give-back of an event no longer in flight is refused visibly.
    completions
        .try_write(record_type::GIVE_BACK, id(&first[0]).as_bytes())
        .unwrap();

    // All three steps come back: same steps, attempts unchanged, the third with its checkpoint.
    let again = read_events(&mut events, 3);
    for e in &again {
        let original = first
            .iter()
            .find(|f| step(f) == step(e))
            .expect("the same steps come back");
        assert_ne!(id(e), id(original), "a new claim, a new event id");
        assert_eq!(
            e["task_sequence_step"]["workflow_step"]["attempts"],
            original["task_sequence_step"]["workflow_step"]["attempts"],
            "no attempt used"
        );
        let carried = &e["task_sequence_step"]["workflow_step"]["checkpoint"];
        if step(e) == step(&first[2]) {
            assert_eq!(carried["cursor"]["page"], 7, "{e}");
            assert_eq!(carried["items_processed"], 70);
        } else {
            assert!(carried.is_null(), "{e}");
        }
    }
    let m = worker.metrics();
    assert_eq!(
        (m.given_back_count, m.checkpoint_count, m.refused_completions),
        (2, 1, 1),
        "{m:?}"
    );
    assert_eq!(m.source.as_ref().unwrap()["checkpoints"], 1);
    let refusals = worker.drain_refusals();
    assert!(
        format!("{refusals:?}").contains(&id(&first[0])),
        "the second give-back of {} is in the refusal log: {refusals:?}",
        id(&first[0])
    );
    drop(events);
    worker.stop();
}
