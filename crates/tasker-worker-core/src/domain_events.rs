//! Domain events: what became of each step result, as tasker-core names it (`step.completed`,
//! `step.retry_requested`, `step.failed`, `task.completed`), recorded by the store source once the store
//! committed the outcome, into a bounded log that the library's `poll_domain_events` drains.
//!
//! - Only the store source records them: the synthetic source's fabricated events belong to no task.
//! - Off until asked: nothing is built until the first drain turns recording on (for the life of the
//!   log); the store source checks one atomic flag per written batch.
//! - Each event is kept as its JSON text in tasker-core's `NapiDomainEvent` shape (camelCase, optional
//!   fields omitted), so a drain only joins texts.
//! - Bounds: at most [`CAPACITY`] events and [`MAX_BYTES`] of text; a step's result over [`MAX_RESULT`] bytes
//!   is left out of its event (its size said instead). When a new event does not fit, the oldest go; the
//!   next drain reports how many (`dropped`) and logs a warning.

use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;
use tasker_store::{ClaimedStep, Uuid};

/// Events held at most; the oldest are dropped to make room.
pub const CAPACITY: usize = 4096;
/// JSON text held at most.
pub const MAX_BYTES: usize = 4 << 20;
/// Largest step result carried in an event's `payload.execution_result`, in bytes.
pub const MAX_RESULT: usize = 64 << 10;
/// `eventVersion` of every event (tasker-core's default).
pub const EVENT_VERSION: &str = "1.0";

/// A step's result was persisted as a success.
pub const STEP_COMPLETED: &str = "step.completed";
/// A step's retryable failure was persisted and the step is ready again after a backoff.
pub const STEP_RETRY_REQUESTED: &str = "step.retry_requested";
/// A step's failure was persisted for good (not retryable, or no attempts left).
pub const STEP_FAILED: &str = "step.failed";
/// A success completed a task's last step.
pub const TASK_COMPLETED: &str = "task.completed";

/// The process's log, the one the library drains.
static GLOBAL: DomainEventLog = DomainEventLog::new();

/// The process's log.
pub fn global() -> &'static DomainEventLog {
    &GLOBAL
}

/// What became of a persisted step result.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepOutcome {
    /// Completed; `task_complete` when it completed its task's last step.
    Completed {
        /// The task is complete too.
        task_complete: bool,
    },
    /// Ready again after `backoff`.
    RetryRequested {
        /// Delay before the next attempt.
        backoff: Duration,
    },
    /// In error for good.
    Failed,
}

/// Events taken by one drain: their JSON texts, oldest first, and how many were dropped before it.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct DomainEventBatch {
    /// Each event's JSON text.
    pub events: Vec<String>,
    /// Events dropped (the log was full) since the previous drain.
    pub dropped: u64,
}

impl DomainEventBatch {
    /// `{"events":[...],"dropped":N}`.
    pub fn to_json(&self) -> String {
        let len: usize = self.events.iter().map(|e| e.len() + 1).sum();
        let mut out = String::with_capacity(len + 32);
        out.push_str(r#"{"events":["#);
        for (i, e) in self.events.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(e);
        }
        out.push_str(r#"],"dropped":"#);
        out.push_str(&self.dropped.to_string());
        out.push('}');
        out
    }
}

#[derive(Default)]
struct Queue {
    events: VecDeque<String>,
    /// Sum of the held texts' lengths.
    bytes: usize,
    dropped: u64,
}

/// A bounded log of domain events (see the module docs), recording once [`Self::start_recording`] ran.
pub struct DomainEventLog {
    recording: AtomicBool,
    queue: Mutex<Queue>,
}

impl fmt::Debug for DomainEventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DomainEventLog")
            .field("recording", &self.is_recording())
            .finish_non_exhaustive()
    }
}

impl Default for DomainEventLog {
    fn default() -> Self {
        Self::new()
    }
}

impl DomainEventLog {
    /// An empty log, not recording.
    pub const fn new() -> Self {
        Self {
            recording: AtomicBool::new(false),
            queue: Mutex::new(Queue {
                events: VecDeque::new(),
                bytes: 0,
                dropped: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // Nothing panics while holding it; should something, the queue is still consistent.
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether events are recorded (a consumer asked for them).
    pub fn is_recording(&self) -> bool {
        self.recording.load(Ordering::Relaxed)
    }

    /// Records events from now on.
    pub fn start_recording(&self) {
        self.recording.store(true, Ordering::Relaxed);
    }

    /// Appends events (JSON texts), dropping the oldest while the log is over its bounds. No-op while not
    /// recording.
    pub fn push(&self, events: impl IntoIterator<Item = String>) {
        if !self.is_recording() {
            return;
        }
        let mut q = self.lock();
        for e in events {
            while !q.events.is_empty() && (q.events.len() >= CAPACITY || q.bytes + e.len() > MAX_BYTES) {
                if let Some(old) = q.events.pop_front() {
                    q.bytes -= old.len();
                    q.dropped += 1;
                }
            }
            q.bytes += e.len();
            q.events.push_back(e);
        }
    }

    /// Takes everything held, oldest first, with the count dropped since the last drain (logged as a
    /// warning when not zero), and starts recording if it had not.
    pub fn drain(&self) -> DomainEventBatch {
        self.start_recording();
        let q = std::mem::take(&mut *self.lock());
        if q.dropped > 0 {
            tracing::warn!(
                dropped = q.dropped,
                "{} domain events dropped (log full: drain it more often)",
                q.dropped
            );
        }
        DomainEventBatch {
            events: q.events.into(),
            dropped: q.dropped,
        }
    }
}

/// `metadata` of an event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata<'a> {
    task_uuid: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_uuid: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    step_name: Option<&'a str>,
    namespace: &'a str,
    correlation_id: &'a str,
    fired_at: &'a str,
    fired_by: &'a str,
}

/// An event without its payload.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Head<'a> {
    event_id: Uuid,
    event_name: &'a str,
    event_version: &'a str,
    metadata: Metadata<'a>,
}

/// Builds events that share a time and a source (`fired_at` ISO 8601, `fired_by` the worker id).
pub struct EventWriter<'a> {
    /// `metadata.firedAt`.
    pub fired_at: &'a str,
    /// `metadata.firedBy`.
    pub fired_by: &'a str,
}

impl EventWriter<'_> {
    /// The events of one persisted result of the claimed step `meta` (its `event` need not be kept): the
    /// step's, then `task.completed` when it finished its task. `result` is the result JSON as persisted
    /// (the store read it as JSON).
    pub fn step_events(&self, meta: &ClaimedStep, outcome: StepOutcome, result: &[u8], out: &mut Vec<String>) {
        let (name, backoff) = match outcome {
            StepOutcome::Completed { .. } => (STEP_COMPLETED, None),
            StepOutcome::RetryRequested { backoff } => (STEP_RETRY_REQUESTED, Some(backoff)),
            StepOutcome::Failed => (STEP_FAILED, None),
        };
        let mut payload = String::with_capacity(result.len().min(MAX_RESULT) + 64);
        payload.push_str(r#"{"execution_result":"#);
        match std::str::from_utf8(result) {
            Ok(text) if text.len() <= MAX_RESULT => payload.push_str(text),
            _ => {
                payload.push_str("null,\"execution_result_omitted_bytes\":");
                payload.push_str(&result.len().to_string());
            }
        }
        payload.push_str(",\"attempts\":");
        payload.push_str(&meta.attempts.to_string());
        if let Some(b) = backoff {
            payload.push_str(",\"backoff_ms\":");
            payload.push_str(&b.as_millis().to_string());
        }
        payload.push('}');
        out.push(self.event(name, meta, true, &payload));
        if outcome == (StepOutcome::Completed { task_complete: true }) {
            out.push(self.event(TASK_COMPLETED, meta, false, "{}"));
        }
    }

    /// One event: `meta`'s task, and its step when `of_step`; `payload` is JSON text.
    fn event(&self, name: &str, meta: &ClaimedStep, of_step: bool, payload: &str) -> String {
        let head = Head {
            event_id: Uuid::now_v7(),
            event_name: name,
            event_version: EVENT_VERSION,
            metadata: Metadata {
                task_uuid: meta.task_uuid,
                step_uuid: of_step.then_some(meta.step_uuid),
                step_name: of_step.then_some(meta.step_name.as_str()),
                namespace: &meta.namespace,
                correlation_id: &meta.correlation_id,
                fired_at: self.fired_at,
                fired_by: self.fired_by,
            },
        };
        // Plain strings, UUIDs and numbers: serialising cannot fail.
        let mut text = serde_json::to_string(&head).unwrap_or_default();
        text.pop(); // the closing brace
        text.push_str(r#","payload":"#);
        text.push_str(payload);
        text.push('}');
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn meta() -> ClaimedStep {
        ClaimedStep {
            claim_token: Uuid::from_u128(3),
            step_uuid: Uuid::from_u128(2),
            task_uuid: Uuid::from_u128(1),
            step_name: "linear_step_4".into(),
            namespace: "ns".into(),
            correlation_id: "corr-1".into(),
            attempts: 2,
            event: Box::default(),
        }
    }

    fn writer() -> EventWriter<'static> {
        EventWriter {
            fired_at: "2026-03-21T12:00:00.000Z",
            fired_by: "worker-ts-1-1",
        }
    }

    fn events(outcome: StepOutcome, result: &[u8]) -> Vec<Value> {
        let mut out = Vec::new();
        writer().step_events(&meta(), outcome, result, &mut out);
        out.iter().map(|t| serde_json::from_str(t).unwrap()).collect()
    }

    #[test]
    fn events_have_tasker_cores_shape() {
        let result = br#"{"success":true,"result":{"value":16}}"#;
        let e = events(StepOutcome::Completed { task_complete: true }, result);
        assert_eq!(e.len(), 2);
        let id = e[0]["eventId"].as_str().unwrap();
        assert!(Uuid::parse_str(id).is_ok(), "{id}");
        assert_ne!(e[0]["eventId"], e[1]["eventId"]);
        let mut step = e[0].clone();
        step.as_object_mut().unwrap().remove("eventId");
        assert_eq!(
            step,
            json!({
                "eventName": "step.completed", "eventVersion": "1.0",
                "metadata": {
                    "taskUuid": Uuid::from_u128(1), "stepUuid": Uuid::from_u128(2), "stepName": "linear_step_4",
                    "namespace": "ns", "correlationId": "corr-1", "firedAt": "2026-03-21T12:00:00.000Z",
                    "firedBy": "worker-ts-1-1"
                },
                "payload": {"execution_result": {"success": true, "result": {"value": 16}}, "attempts": 2}
            })
        );
        // The task's event has no step fields (omitted, not null).
        assert_eq!(e[1]["eventName"], "task.completed");
        let m = e[1]["metadata"].as_object().unwrap();
        assert!(!m.contains_key("stepUuid") && !m.contains_key("stepName"), "{m:?}");
        assert_eq!(e[1]["payload"], json!({}));
    }

    #[test]
    fn retries_failures_and_large_results() {
        let e = events(
            StepOutcome::RetryRequested {
                backoff: Duration::from_millis(2000),
            },
            br#"{"success":false}"#,
        );
        assert_eq!(e.len(), 1);
        assert_eq!(e[0]["eventName"], "step.retry_requested");
        assert_eq!(
            e[0]["payload"],
            json!({"execution_result": {"success": false}, "attempts": 2, "backoff_ms": 2000})
        );
        let e = events(StepOutcome::Failed, br#"{"success":false}"#);
        assert_eq!(e[0]["eventName"], "step.failed");
        let e = events(StepOutcome::Completed { task_complete: false }, b"[]");
        assert_eq!(e.len(), 1, "no task event");
        let big = format!(r#"{{"success":true,"result":"{}"}}"#, "x".repeat(MAX_RESULT));
        let e = events(StepOutcome::Completed { task_complete: false }, big.as_bytes());
        assert_eq!(
            e[0]["payload"],
            json!({"execution_result": null, "execution_result_omitted_bytes": big.len(), "attempts": 2})
        );
    }

    #[test]
    fn nothing_is_kept_until_the_first_drain() {
        let log = DomainEventLog::new();
        log.push(["{}".to_string()]);
        assert_eq!(log.drain(), DomainEventBatch::default());
        log.push(["{\"a\":1}".to_string()]);
        let batch = log.drain();
        assert_eq!(batch.events, ["{\"a\":1}"]);
        assert_eq!(batch.to_json(), r#"{"events":[{"a":1}],"dropped":0}"#);
    }

    #[test]
    fn a_full_log_drops_the_oldest_and_says_how_many() {
        let log = DomainEventLog::new();
        log.start_recording();
        log.push((0..CAPACITY + 10).map(|i| format!("{{\"n\":{i}}}")));
        let batch = log.drain();
        assert_eq!(batch.dropped, 10);
        assert_eq!(batch.events.len(), CAPACITY);
        assert_eq!(batch.events[0], "{\"n\":10}", "the oldest went");
        let parsed: Value = serde_json::from_str(&batch.to_json()).unwrap();
        assert_eq!(parsed["dropped"], 10);
        assert_eq!(parsed["events"].as_array().unwrap().len(), CAPACITY);
        // The count is reported once.
        log.push(["{}".to_string()]);
        assert_eq!(log.drain().dropped, 0);
        // By bytes: events of a quarter of the bound each keep the newest four (a fifth would not fit).
        let quarter = format!("\"{}\"", "y".repeat(MAX_BYTES / 4 - 2));
        log.push((0..6).map(|_| quarter.clone()));
        let batch = log.drain();
        assert_eq!((batch.events.len(), batch.dropped), (4, 2));
    }
}
