//! The worker end to end through its Rust API, with a thread standing in for the TS side: the ring and
//! per-poll transports, backpressure, timeouts, graceful shutdown with events in flight, stop, the doorbell.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tasker_ring::{record_type, CreateError, Region, RingId};
use tasker_worker_core::{BootstrapError, Phase, SourceConfig, Transport, Worker, WorkerConfig};

const SUCCESS: &str = include_str!("../../../fixtures/completion-success.json");

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("tasker-worker-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn config(dir: &Path, transport: Transport, count: u64) -> WorkerConfig {
    WorkerConfig {
        transport,
        region_dir: Some(dir.to_path_buf()),
        events_capacity: 1 << 20,
        completions_capacity: 1 << 18,
        source: SourceConfig::Synthetic {
            count: Some(count),
            rate_per_sec: None,
            event_bytes: None,
            event_bytes_max: None,
            stamp_enqueued_at: false,
        },
        ..WorkerConfig::default()
    }
}

/// A completion payload for `event`: its id, then a success result naming its step.
fn completion_for(event: &serde_json::Value) -> Vec<u8> {
    let mut result: serde_json::Value = serde_json::from_str(SUCCESS).unwrap();
    result["step_uuid"] = event["step_uuid"].clone();
    let mut out = event["event_id"].as_str().unwrap().as_bytes().to_vec();
    serde_json::to_writer(&mut out, &result).unwrap();
    out
}

fn wait_until(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The TS side over the region: read up to `max` events (0: all), complete those `answer` accepts.
fn ts_side(region_path: &Path, total: u64, answer: impl Fn(u64) -> bool) -> Vec<serde_json::Value> {
    let region = Region::attach(region_path).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    let mut completions = region.producer(RingId::Completions).unwrap();
    let mut seen = Vec::new();
    let start = Instant::now();
    while (seen.len() as u64) < total {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "stalled after {} events",
            seen.len()
        );
        let mut batch = Vec::new();
        events
            .read_batch(64, |m| {
                batch.push(serde_json::from_slice::<serde_json::Value>(m.payload).unwrap())
            })
            .unwrap();
        for event in batch {
            if answer(seen.len() as u64) {
                completions
                    .write_blocking(
                        record_type::COMPLETION,
                        &completion_for(&event),
                        Duration::from_secs(10),
                    )
                    .unwrap();
            }
            seen.push(event);
        }
    }
    seen
}

/// Reads exactly `n` events from the events ring (waiting for them), parsed.
fn read_events(events: &mut tasker_ring::Consumer<tasker_ring::MappedRing>, n: usize) -> Vec<serde_json::Value> {
    let mut seen = Vec::new();
    wait_until("events", Duration::from_secs(10), || {
        events
            .read_batch(n - seen.len(), |m| {
                seen.push(serde_json::from_slice(m.payload).unwrap())
            })
            .unwrap();
        seen.len() == n
    });
    seen
}

#[test]
fn ring_transport_delivers_every_event_once_and_takes_every_completion() {
    let dir = TempDir::new("ring");
    let n = 20_000;
    let mut worker = Worker::bootstrap(config(&dir.0, Transport::Ring, n)).unwrap();
    let path = worker.status().region_path.unwrap();
    let seen = ts_side(&path, n, |_| true);
    let stats = worker.synthetic_stats().unwrap().clone();
    wait_until("all results", Duration::from_secs(30), || stats.finished() == n);
    let ids: std::collections::HashSet<_> = seen
        .iter()
        .map(|e| e["event_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len() as u64, n, "every event delivered once");
    let m = worker.metrics();
    assert_eq!((m.completed_count, m.failed_count, m.refused_completions), (n, 0, 0));
    assert_eq!((m.pending_count, m.in_flight_count), (0, 0));
    assert_eq!(stats.unexpected.load(Ordering::Acquire), 0);
    assert!(seen[0]["task_sequence_step"]["step_definition"]["handler"]["handler_class"].is_string());
    worker.stop();
    worker.stop();
    assert_eq!(worker.phase(), Phase::Stopped);
    assert!(!path.exists(), "stop unlinks the region file");
}

#[test]
fn per_poll_transport_is_the_same_contract_one_event_per_call() {
    let dir = TempDir::new("ffi");
    let n = 2_000;
    let worker = Worker::bootstrap(config(&dir.0, Transport::Ffi, n)).unwrap();
    assert!(worker.status().region_path.is_none());
    let mut done = 0;
    let start = Instant::now();
    while done < n {
        assert!(start.elapsed() < Duration::from_secs(30));
        let Some(json) = worker.poll_event_json() else { continue };
        let event: serde_json::Value = serde_json::from_str(&json).unwrap();
        let payload = completion_for(&event);
        let (id, result) = payload.split_at(36);
        worker
            .complete(std::str::from_utf8(id).unwrap(), std::str::from_utf8(result).unwrap())
            .unwrap();
        let again = worker.complete(std::str::from_utf8(id).unwrap(), std::str::from_utf8(result).unwrap());
        assert!(
            matches!(again, Err(tasker_worker_core::Refusal::NotInFlight(_))),
            "never applied twice"
        );
        done += 1;
    }
    let m = worker.metrics();
    assert_eq!(
        (
            m.completed_count,
            m.refused_completions,
            m.in_flight_count,
            m.pending_count
        ),
        (n, n, 0, 0)
    );
}

#[test]
fn nothing_is_handed_out_after_stop() {
    let dir = TempDir::new("ffi-stop");
    let mut worker = Worker::bootstrap(config(&dir.0, Transport::Ffi, 100)).unwrap();
    wait_until("queued events", Duration::from_secs(10), || {
        worker.metrics().pending_count > 0
    });
    worker.stop();
    assert!(worker.metrics().pending_count > 0, "events still queued");
    assert!(worker.poll_event_json().is_none(), "but none is handed out after stop");
}

#[test]
fn backpressure_stops_claims_while_the_ring_is_full() {
    let dir = TempDir::new("backpressure");
    let worker = Worker::bootstrap(WorkerConfig {
        events_capacity: 64 << 10,
        max_frame_size: 16 << 10,
        ..config(&dir.0, Transport::Ring, 100_000)
    })
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let claimed = worker.synthetic_stats().unwrap().claimed.load(Ordering::Acquire);
    let m = worker.metrics();
    // 64 KiB of ~2.7 KB events: about 23 fit; nobody reads, so nothing more may be claimed.
    assert!(claimed <= 64 << 10 >> 11, "claimed {claimed} with a full ring");
    assert_eq!(m.pending_count, claimed, "everything claimed waits unread in the ring");
    assert_eq!(m.in_flight_count, 0, "no clock runs for unread events");
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        worker.synthetic_stats().unwrap().claimed.load(Ordering::Acquire),
        claimed
    );
}

#[test]
fn unanswered_events_time_out_as_ffi_timeout_and_late_completions_are_refused() {
    let dir = TempDir::new("timeout");
    let n = 10;
    let worker = Worker::bootstrap(WorkerConfig {
        completion_timeout_ms: 200,
        ..config(&dir.0, Transport::Ring, n)
    })
    .unwrap();
    let path = worker.status().region_path.unwrap();
    let region = Region::attach(&path).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    let mut completions = region.producer(RingId::Completions).unwrap();
    let seen = read_events(&mut events, 10);
    let stats = worker.synthetic_stats().unwrap().clone();
    wait_until("timeouts", Duration::from_secs(10), || {
        stats.failed.load(Ordering::Acquire) == n
    });
    let m = worker.metrics();
    assert_eq!((m.failed_count, m.timed_out_count, m.in_flight_count), (n, n, 0));
    completions
        .try_write(record_type::COMPLETION, &completion_for(&seen[0]))
        .unwrap();
    wait_until("the late completion refused", Duration::from_secs(10), || {
        worker.metrics().refused_completions == 1
    });
    // The refusal is kept with its event id for the caller, once.
    let batch = worker.drain_refusals();
    assert_eq!(batch.dropped, 0);
    assert_eq!(batch.refusals.len(), 1, "{batch:?}");
    assert_eq!(batch.refusals[0].kind, tasker_worker_core::RefusalKind::NotInFlight);
    assert_eq!(
        batch.refusals[0].event_id,
        seen[0]["event_id"].as_str().unwrap(),
        "{batch:?}"
    );
    assert!(worker.drain_refusals().refusals.is_empty());
    assert_eq!(
        stats.unexpected.load(Ordering::Acquire),
        0,
        "a late completion never reaches the source"
    );
}

#[test]
fn graceful_shutdown_lets_in_flight_events_finish_then_fails_the_rest() {
    let dir = TempDir::new("graceful");
    let worker = Worker::bootstrap(WorkerConfig {
        shutdown_timeout_ms: 500,
        ..config(&dir.0, Transport::Ring, 1_000)
    })
    .unwrap();
    let path = worker.status().region_path.unwrap();
    let region = Region::attach(&path).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    let mut completions = region.producer(RingId::Completions).unwrap();
    let seen = read_events(&mut events, 10);
    let started = Instant::now();
    assert_eq!(worker.begin_graceful_shutdown(), Phase::Draining);
    assert!(started.elapsed() < Duration::from_millis(50), "returns at once");
    let claimed = worker.synthetic_stats().unwrap().claimed.load(Ordering::Acquire);
    for event in &seen[..5] {
        completions
            .try_write(record_type::COMPLETION, &completion_for(event))
            .unwrap();
    }
    wait_until("the end of draining", Duration::from_secs(10), || {
        worker.phase() == Phase::Stopped
    });
    wait_until("the region file removed", Duration::from_secs(5), || !path.exists());
    let stats = worker.synthetic_stats().unwrap();
    assert_eq!(
        stats.claimed.load(Ordering::Acquire),
        claimed,
        "no claims while draining"
    );
    assert_eq!(stats.succeeded.load(Ordering::Acquire), 5);
    assert_eq!(stats.finished(), claimed, "every claimed event got exactly one result");
    assert_eq!(stats.unexpected.load(Ordering::Acquire), 0);
    let m = worker.metrics();
    assert_eq!((m.pending_count, m.in_flight_count), (0, 0));
}

#[test]
fn a_sleeping_consumer_is_woken_through_the_doorbell() {
    let dir = TempDir::new("doorbell");
    let worker = Worker::bootstrap(WorkerConfig {
        source: SourceConfig::Synthetic {
            count: Some(3),
            rate_per_sec: Some(5),
            event_bytes: None,
            event_bytes_max: None,
            stamp_enqueued_at: false,
        },
        ..config(&dir.0, Transport::Ring, 3)
    })
    .unwrap();
    let status = worker.status();
    let region = Region::attach(&status.region_path.unwrap()).unwrap();
    let mut events = region.consumer(RingId::Events).unwrap();
    let mut bell = std::os::unix::net::UnixStream::connect(status.doorbell_path.unwrap()).unwrap();
    bell.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut woken = 0;
    let mut read = 0;
    while read < 3 {
        read += events.read_batch(16, |_| {}).unwrap();
        if read < 3 && events.prepare_sleep() {
            let mut b = [0u8; 1];
            bell.read_exact(&mut b).expect("a doorbell within 5 s");
            events.wake();
            woken += 1;
        }
    }
    assert!(woken >= 1, "the consumer slept and was rung awake");
}

/// A region whose creator has exited: created here, then its header's creator pid (bytes 56-59,
/// layout-spec.md section 3) set to a child that has been reaped.
#[test]
fn setup_failures_keep_their_sources() {
    use std::error::Error;
    let dir = TempDir::new("setup-sources");
    let bootstrap_err = |config: WorkerConfig| match Worker::bootstrap(config) {
        Err(e) => e,
        Ok(_) => panic!("bootstrap succeeded"),
    };

    // No region directory: the region's `CreateError::Io`, then the OS error.
    let err = bootstrap_err(config(&dir.0.join("missing"), Transport::Ring, 1));
    assert!(
        matches!(err, BootstrapError::Region(CreateError::Io { step: "create", .. })),
        "{err:?}"
    );
    assert!(err.to_string().starts_with("worker setup failed: "), "{err}");
    let create = err
        .source()
        .and_then(|e| e.downcast_ref::<CreateError>())
        .expect("a CreateError source");
    assert_eq!(err.to_string(), format!("worker setup failed: {create}"));
    let io = create
        .source()
        .and_then(|e| e.downcast_ref::<std::io::Error>())
        .expect("an io::Error source");
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);

    // A refused configuration is a message of its own, with nothing underneath.
    let err = bootstrap_err(WorkerConfig {
        completion_timeout_ms: 0,
        ..config(&dir.0, Transport::Ring, 1)
    });
    assert!(matches!(err, BootstrapError::Config(_)), "{err:?}");
    assert!(err.source().is_none());
}

fn dead_region(path: &Path) {
    let region = Region::create(path, &WorkerConfig::default().region_config()).unwrap();
    drop(region);
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead_pid = child.id();
    child.wait().unwrap();
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &dead_pid.to_le_bytes(), 56).unwrap();
}

#[test]
fn bootstrap_removes_dead_workers_regions_and_keeps_live_ones() {
    let dir = TempDir::new("sweep");
    let dead = dir.0.join("worker-ts-dead-1.ring");
    dead_region(&dead);
    let dead_sock = dead.with_extension("sock");
    drop(std::os::unix::net::UnixListener::bind(&dead_sock).unwrap());
    let live = dir.0.join("live.ring");
    let _live = Region::create(&live, &WorkerConfig::default().region_config()).unwrap();
    let stranger = dir.0.join("notes.ring");
    std::fs::write(&stranger, b"not a region").unwrap();

    let mut worker = Worker::bootstrap(config(&dir.0, Transport::Ring, 0)).unwrap();
    assert!(!dead.exists(), "a dead worker's region is removed on the next start");
    assert!(!dead_sock.exists(), "with its doorbell socket");
    assert!(live.exists(), "a live region is never removed");
    assert!(stranger.exists(), "a file that is not a region is never touched");
    worker.stop();
}

/// What a [`PanickingSource`] saw after its panic.
#[derive(Default)]
struct SourceLog {
    released: usize,
    closed: bool,
}

/// Hands out 3 synthetic events on its first claim, then panics on the next one.
struct PanickingSource {
    inner: tasker_worker_core::SyntheticSource,
    claims: usize,
    log: std::sync::Arc<std::sync::Mutex<SourceLog>>,
}

impl tasker_worker_core::EventSource for PanickingSource {
    fn claim(&mut self, max: usize, out: &mut Vec<tasker_worker_core::SourcedEvent>) -> usize {
        self.claims += 1;
        if self.claims > 1 {
            panic!("injected source failure");
        }
        self.inner.claim(max.min(3), out)
    }
    fn complete(&mut self, event_id: tasker_worker_core::Uuid, result: &tasker_worker_core::StepResult<'_>) {
        self.inner.complete(event_id, result);
    }
    fn is_exhausted(&self) -> bool {
        false
    }
    fn release(&mut self, _event_id: tasker_worker_core::Uuid, _step_uuid: tasker_worker_core::Uuid) {
        self.log.lock().unwrap().released += 1;
    }
    fn close(&mut self) {
        self.log.lock().unwrap().closed = true;
    }
}

/// A panic in the pump stops the worker visibly (status and metrics say where and why)
/// and gives the unread events back to the source, which is closed; before, the worker kept reporting
/// `running` while nothing moved.
#[test]
fn a_panic_in_the_pump_stops_the_worker_visibly_and_releases_unread_events() {
    for transport in [Transport::Ring, Transport::Ffi] {
        let dir = TempDir::new(&format!("pump-panic-{transport:?}"));
        let log = std::sync::Arc::new(std::sync::Mutex::new(SourceLog::default()));
        let source = PanickingSource {
            inner: tasker_worker_core::SyntheticSource::new(None, None, None, 1),
            claims: 0,
            log: std::sync::Arc::clone(&log),
        };
        let mut worker = Worker::with_source(
            config(dir.0.as_path(), transport, 0),
            format!("pump-panic-{transport:?}"),
            Box::new(source),
            None,
        )
        .unwrap();
        wait_until("the worker to stop on its own", Duration::from_secs(10), || {
            !worker.is_running()
        });
        let status = worker.status();
        assert_eq!(status.worker_core_status, Phase::Stopped);
        let fault = status.error.expect("status says why it stopped");
        assert_eq!(fault.phase, Phase::Running, "{transport:?}");
        assert!(fault.reason.contains("injected source failure"), "{}", fault.reason);
        let metrics = worker.metrics();
        assert_eq!(metrics.worker_error.as_ref(), Some(&fault));
        let json = serde_json::to_value(&metrics).unwrap();
        assert!(json["worker_error"]["reason"].as_str().unwrap().contains("panicked"));
        {
            let log = log.lock().unwrap();
            assert_eq!(log.released, 3, "{transport:?}: the unread events went back");
            assert!(log.closed, "{transport:?}: the source was closed");
        }
        assert_eq!(worker.metrics().pending_count, 0);
        worker.stop();
    }
}

/// After stop, a result is refused and counted, never taken and dropped.
#[test]
fn results_after_stop_are_refused_visibly() {
    let dir = TempDir::new("ffi-refusals");
    let mut worker = Worker::bootstrap(config(&dir.0, Transport::Ffi, 10)).unwrap();
    let poll = |w: &Worker| loop {
        if let Some(json) = w.poll_event_json() {
            break serde_json::from_str::<serde_json::Value>(&json).unwrap();
        }
    };
    let (a, b) = (poll(&worker), poll(&worker));
    let a_payload = completion_for(&a);
    worker
        .complete(
            a["event_id"].as_str().unwrap(),
            std::str::from_utf8(&a_payload[36..]).unwrap(),
        )
        .unwrap();
    worker.stop();
    let b_id = b["event_id"].as_str().unwrap();
    let b_payload = completion_for(&b);
    match worker.complete(b_id, std::str::from_utf8(&b_payload[36..]).unwrap()) {
        Err(tasker_worker_core::Refusal::Stopped(id)) => assert_eq!(id.to_string(), b_id),
        other => panic!("a result after stop: {other:?}"),
    }
    let m = worker.metrics();
    assert_eq!((m.completed_count, m.refused_completions), (1, 1), "{m:?}");
}

/// The worker with a source standing in for the step store, over the ring: one event, taken by `ts`.
fn one_event_worker(tag: &str, source: Box<dyn tasker_worker_core::EventSource>) -> (TempDir, Worker) {
    let dir = TempDir::new(tag);
    let worker = Worker::with_source(config(&dir.0, Transport::Ring, 0), tag.to_string(), source, None).unwrap();
    (dir, worker)
}

/// What [`TamperingSource`] was handed.
#[derive(Default)]
struct Handed {
    json: Option<Vec<u8>>,
}

/// One synthetic event; when its result arrives, overwrites the completion's bytes in the region file (as a
/// peer writing the ring would) before looking at the result it was handed.
struct TamperingSource {
    inner: tasker_worker_core::SyntheticSource,
    region: std::sync::Arc<std::sync::Mutex<Option<PathBuf>>>,
    handed: std::sync::Arc<std::sync::Mutex<Handed>>,
}

const VALIDATED: &[u8] = br#""success":true,"result":{"marker":"ORIGINAL"#;
const TAMPERED: &[u8] = br#""success":null,"result":{"marker":"TAMPERED"#;

impl tasker_worker_core::EventSource for TamperingSource {
    fn claim(&mut self, max: usize, out: &mut Vec<tasker_worker_core::SourcedEvent>) -> usize {
        self.inner.claim(max, out)
    }
    fn complete(&mut self, event_id: tasker_worker_core::Uuid, result: &tasker_worker_core::StepResult<'_>) {
        use std::os::unix::fs::FileExt;
        let path = self
            .region
            .lock()
            .unwrap()
            .clone()
            .expect("the region path is set before any completion");
        let bytes = std::fs::read(&path).unwrap();
        let at = bytes
            .windows(VALIDATED.len())
            .position(|w| w == VALIDATED)
            .expect("the completion in the completions ring");
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_at(TAMPERED, at as u64).unwrap();
        self.handed.lock().unwrap().json = Some(result.json.to_vec());
        self.inner.complete(event_id, result);
    }
    fn is_exhausted(&self) -> bool {
        self.inner.is_exhausted()
    }
}

/// Issue 20: a completion was validated in shared memory and handed to the source as a view of it, so bytes
/// the peer wrote after the check reached the source (here a `success` that is no longer a boolean). The
/// worker now copies the payload once and validates and hands on only the copy.
#[test]
fn a_completion_is_validated_and_handed_on_as_one_private_copy() {
    let region = std::sync::Arc::new(std::sync::Mutex::new(None));
    let handed = std::sync::Arc::new(std::sync::Mutex::new(Handed::default()));
    let source = TamperingSource {
        inner: tasker_worker_core::SyntheticSource::new(Some(1), None, None, 3),
        region: std::sync::Arc::clone(&region),
        handed: std::sync::Arc::clone(&handed),
    };
    let (_dir, mut worker) = one_event_worker("tamper", Box::new(source));
    let path = worker.status().region_path.unwrap();
    *region.lock().unwrap() = Some(path.clone());
    let attached = Region::attach(&path).unwrap();
    let mut events = attached.consumer(RingId::Events).unwrap();
    let mut completions = attached.producer(RingId::Completions).unwrap();
    let event = read_events(&mut events, 1).remove(0);
    let mut payload = event["event_id"].as_str().unwrap().as_bytes().to_vec();
    payload.extend_from_slice(format!(r#"{{"step_uuid":"{}","#, event["step_uuid"].as_str().unwrap()).as_bytes());
    payload.extend_from_slice(VALIDATED);
    payload.extend_from_slice(br#"-MARKER"}}"#);
    completions.try_write(record_type::COMPLETION, &payload).unwrap();
    wait_until("the result", Duration::from_secs(10), || {
        handed.lock().unwrap().json.is_some()
    });
    let json = handed.lock().unwrap().json.take().unwrap();
    assert_eq!(
        json,
        payload[36..],
        "the source got the bytes that were validated, not the ring's later ones: {}",
        String::from_utf8_lossy(&json)
    );
    let result = tasker_worker_core::StepResult::parse(&json).expect("still a valid result");
    assert!(result.success);
    assert_eq!(worker.metrics().completed_count, 1);
    worker.stop();
}

/// Issue 20: a result whose `step_uuid` named another step than its event's was taken (a store persists it
/// under the event's claim). It is refused visibly as an invalid result; the event stays in flight and its
/// right result is still taken.
#[test]
fn a_result_naming_another_step_is_refused_as_invalid() {
    let source = tasker_worker_core::SyntheticSource::new(Some(1), None, None, 5);
    let (_dir, mut worker) = one_event_worker("wrong-step", Box::new(source));
    let attached = Region::attach(&worker.status().region_path.unwrap()).unwrap();
    let mut events = attached.consumer(RingId::Events).unwrap();
    let mut completions = attached.producer(RingId::Completions).unwrap();
    let event = read_events(&mut events, 1).remove(0);
    let mut wrong = event.clone();
    wrong["step_uuid"] = "0190f3a2-7c1e-7b3a-9d2e-00000000beef".into();
    completions
        .try_write(record_type::COMPLETION, &completion_for(&wrong))
        .unwrap();
    wait_until("the refusal", Duration::from_secs(10), || {
        worker.metrics().refused_completions == 1
    });
    let batch = worker.drain_refusals();
    assert_eq!(batch.refusals.len(), 1, "{batch:?}");
    let refusal = &batch.refusals[0];
    assert_eq!(refusal.kind, tasker_worker_core::RefusalKind::InvalidResult);
    assert_eq!(refusal.event_id, event["event_id"].as_str().unwrap());
    assert!(
        refusal.message.contains("is not the step of event"),
        "{}",
        refusal.message
    );
    let m = worker.metrics();
    assert_eq!((m.completed_count, m.in_flight_count), (0, 1), "{m:?}");
    completions
        .try_write(record_type::COMPLETION, &completion_for(&event))
        .unwrap();
    wait_until("the right result", Duration::from_secs(10), || {
        worker.metrics().completed_count == 1
    });
    worker.stop();
}

/// The results a [`SizedSource`] got: (event size, result JSON).
type SizedResults = std::sync::Arc<std::sync::Mutex<Vec<(usize, Vec<u8>)>>>;

/// Step events of exact sizes (JSON text padded to the byte), and the results they got.
struct SizedSource {
    queue: std::collections::VecDeque<tasker_worker_core::SourcedEvent>,
    results: SizedResults,
    sizes: std::collections::HashMap<tasker_worker_core::Uuid, usize>,
}

impl SizedSource {
    fn new(sizes: &[usize], results: SizedResults) -> Self {
        let mut queue = std::collections::VecDeque::new();
        let mut by_id = std::collections::HashMap::new();
        for (n, &size) in sizes.iter().enumerate() {
            let event_id = tasker_worker_core::Uuid(0x0190_0000_0000_7000_8000_0000_0000_0000 + n as u128);
            let step_uuid = tasker_worker_core::Uuid(0x0190_0000_0000_7000_9000_0000_0000_0000 + n as u128);
            let head = format!(r#"{{"event_id":"{event_id}","step_uuid":"{step_uuid}","pad":""#);
            let text = format!("{head}{}\"}}", "x".repeat(size - head.len() - 2));
            assert_eq!(text.len(), size);
            by_id.insert(event_id, size);
            queue.push_back(tasker_worker_core::SourcedEvent {
                event_id,
                step_uuid,
                payload: tasker_worker_core::EventPayload::Text(text.into()),
            });
        }
        Self {
            queue,
            results,
            sizes: by_id,
        }
    }
}

impl tasker_worker_core::EventSource for SizedSource {
    fn claim(&mut self, max: usize, out: &mut Vec<tasker_worker_core::SourcedEvent>) -> usize {
        let n = max.min(self.queue.len());
        out.extend(self.queue.drain(..n));
        n
    }
    fn complete(&mut self, event_id: tasker_worker_core::Uuid, result: &tasker_worker_core::StepResult<'_>) {
        let size = self.sizes[&event_id];
        self.results.lock().unwrap().push((size, result.json.to_vec()));
    }
    fn is_exhausted(&self) -> bool {
        self.queue.is_empty()
    }
}

/// Issue 20 (spec-only implementation): a 2 734-byte event was refused by a 4 KiB events ring with 64-byte
/// frames ("needs 5528 bytes", the worst case of a 4 096-byte message: the pump's starting size estimate)
/// although its own worst-case footprint, 3 704 bytes, fits. And an event larger than the ring but within
/// the message limit is failed permanently: the status says the limit from bootstrap on, and the failure
/// names it.
#[test]
fn events_up_to_the_rings_real_limit_are_delivered_and_larger_ones_fail_naming_it() {
    let dir = TempDir::new("event-limit");
    let results = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let source = SizedSource::new(&[2734, 3024, 3025], std::sync::Arc::clone(&results));
    let config = WorkerConfig {
        events_capacity: 4096,
        max_frame_size: 64,
        ..config(&dir.0, Transport::Ring, 0)
    };
    assert_eq!(
        config.max_event_bytes(),
        Some(3024),
        "63 frames of 48 bytes and 56 of padding"
    );
    let mut worker = Worker::with_source(config, "event-limit".into(), Box::new(source), None).unwrap();
    let status = worker.status();
    assert_eq!(
        status.max_event_bytes,
        Some(3024),
        "bootstrap says what the events ring carries"
    );
    let attached = Region::attach(&status.region_path.unwrap()).unwrap();
    let mut events = attached.consumer(RingId::Events).unwrap();
    let mut completions = attached.producer(RingId::Completions).unwrap();
    for _ in 0..2 {
        let event = read_events(&mut events, 1).remove(0);
        completions
            .write_blocking(
                record_type::COMPLETION,
                &completion_for(&event),
                Duration::from_secs(10),
            )
            .unwrap();
    }
    wait_until("three results", Duration::from_secs(10), || {
        results.lock().unwrap().len() == 3
    });
    let mut results = results.lock().unwrap().clone();
    results.sort();
    let sizes: Vec<usize> = results.iter().map(|(size, _)| *size).collect();
    assert_eq!(sizes, [2734, 3024, 3025]);
    for (size, json) in &results[..2] {
        let v: serde_json::Value = serde_json::from_slice(json).unwrap();
        assert_eq!(
            v["success"], true,
            "the {size}-byte event was delivered and answered: {v}"
        );
    }
    let failed: serde_json::Value = serde_json::from_slice(&results[2].1).unwrap();
    assert_eq!(failed["error"]["error_type"], "dispatch_error", "{failed}");
    assert_eq!(failed["error"]["retryable"], false, "{failed}");
    let message = failed["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("at most 3024 bytes") && message.contains("events_capacity"),
        "{message}"
    );
    worker.stop();
}

/// Events given as JSON trees (`EventPayload::Tree`, for sources that build events as values), written by
/// the pump through its reused serialisation buffer (issue 21): each arrives as exactly its tree, small,
/// about the fixture's size, and larger than a frame (streamed as fragments); the buffer is reused across
/// events of shrinking size without leaking bytes of an earlier, longer one.
#[test]
fn tree_payloads_arrive_exactly_as_their_trees() {
    struct TreeSource(std::collections::VecDeque<tasker_worker_core::SourcedEvent>);
    impl tasker_worker_core::EventSource for TreeSource {
        fn claim(&mut self, max: usize, out: &mut Vec<tasker_worker_core::SourcedEvent>) -> usize {
            let n = max.min(self.0.len());
            out.extend(self.0.drain(..n));
            n
        }
        fn complete(&mut self, _: tasker_worker_core::Uuid, _: &tasker_worker_core::StepResult<'_>) {}
        fn is_exhausted(&self) -> bool {
            self.0.is_empty()
        }
    }
    let dir = TempDir::new("tree-payloads");
    let pads = [5000usize, 2600, 10, 700];
    let trees: Vec<serde_json::Value> = pads
        .iter()
        .enumerate()
        .map(|(n, pad)| {
            let event_id = tasker_worker_core::Uuid(0x0190_0000_0000_7000_8000_0000_0000_0000 + n as u128);
            let step_uuid = tasker_worker_core::Uuid(0x0190_0000_0000_7000_9000_0000_0000_0000 + n as u128);
            serde_json::json!({
                "event_id": event_id.to_string(),
                "step_uuid": step_uuid.to_string(),
                "pad": "y".repeat(*pad),
                "nested": {"n": n, "quote": "a \"quoted\" \\ text", "list": [1, 2.5, null, true]},
            })
        })
        .collect();
    let source = TreeSource(
        trees
            .iter()
            .enumerate()
            .map(|(n, tree)| tasker_worker_core::SourcedEvent {
                event_id: tasker_worker_core::Uuid(0x0190_0000_0000_7000_8000_0000_0000_0000 + n as u128),
                step_uuid: tasker_worker_core::Uuid(0x0190_0000_0000_7000_9000_0000_0000_0000 + n as u128),
                payload: tasker_worker_core::EventPayload::Tree(tree.clone()),
            })
            .collect(),
    );
    let config = WorkerConfig {
        max_frame_size: 1024,
        ..config(&dir.0, Transport::Ring, 0)
    };
    let mut worker = Worker::with_source(config, "tree-payloads".into(), Box::new(source), None).unwrap();
    let attached = Region::attach(&worker.status().region_path.unwrap()).unwrap();
    let mut events = attached.consumer(RingId::Events).unwrap();
    assert_eq!(read_events(&mut events, trees.len()), trees);
    worker.stop();
}
