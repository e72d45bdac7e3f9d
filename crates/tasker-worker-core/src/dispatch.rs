//! In-flight tracking with tasker-core's semantics, shared by both transports.
//!
//! - `pending`: handed to the transport, not yet read by TS (in the ring, or in the per-poll queue).
//! - `in_flight`: read by TS, not yet completed. An event's clock starts when it is read.
//! - A completion is applied at most once: one for an unknown, completed or timed-out event is refused and
//!   counted; one with an invalid result is refused and the event stays in flight (nothing is lost).
//! - `cleanup_timeouts` fails events in flight longer than the completion timeout (`ffi_timeout`).

use crate::event_id::Uuid;
use crate::result::StepResult;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

/// Why a completion was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No event with this id is in flight (unknown, already completed, or timed out).
    NotInFlight(Uuid),
    /// The result did not pass validation; the event stays in flight.
    InvalidResult(String),
    /// The event id is not a canonical UUID.
    InvalidEventId(String),
    /// The worker has stopped: nothing is completed any more (a store re-offers the step after its claim's
    /// deadline, or has been given it back).
    Stopped(Uuid),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotInFlight(id) => write!(f, "event {id} is not in flight (unknown, completed or timed out)"),
            Self::InvalidResult(why) => write!(f, "invalid result: {why}"),
            Self::InvalidEventId(why) => write!(f, "invalid event id: {why}"),
            Self::Stopped(id) => write!(f, "the worker has stopped; the result for event {id} was not taken"),
        }
    }
}

/// The seed's `FfiDispatchMetrics`, plus what operators need beside it.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct DispatchMetrics {
    /// Handed to the transport, not yet read by TS.
    pub pending_count: u64,
    /// Read by TS, not completed.
    pub in_flight_count: u64,
    /// Completions with `success: true`.
    pub completed_count: u64,
    /// Completions with `success: false`, plus timeouts.
    pub failed_count: u64,
    /// Some event has been in flight longer than the starvation threshold.
    pub starvation_detected: bool,
    /// How many.
    pub starving_event_count: u64,
    /// Age of the oldest in-flight event (0 if none).
    pub oldest_in_flight_age_ms: u64,
    /// Completions refused (unknown, duplicate, timed out, invalid).
    pub refused_completions: u64,
    /// Events failed by `cleanup_timeouts`.
    pub timed_out_count: u64,
    /// Events never read, given back to the source at the end of a graceful shutdown (a store re-offers
    /// them without using an attempt).
    pub released_count: u64,
    /// Events TS read and gave back unrun (layout 1.1 GIVE_BACK: an `events()` loop that ended, an abort);
    /// the source re-offers them without using an attempt.
    pub given_back_count: u64,
    /// Events whose step yielded with a checkpoint (layout 1.1 CHECKPOINT); dispatched again later.
    pub checkpoint_count: u64,
    /// Events ring fill, 0.0-1.0 (ring transport; 0 on ffi).
    pub events_ring_fill: f64,
    /// Completions ring fill, 0.0-1.0 (ring transport; 0 on ffi).
    pub completions_ring_fill: f64,
    /// The event source's own figures (the step store's counters, claim-to-persisted latency and step
    /// counts); absent for sources without any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<serde_json::Value>,
    /// Why the worker stopped on its own (a pump panic, a corrupt completions ring, a truncated region);
    /// absent while it has not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_error: Option<crate::worker::WorkerFault>,
}

/// An event waiting unread in the ring: it is read once the consumer position passes `end`.
#[derive(Clone, Copy, Debug)]
struct Unread {
    end: u32,
    event_id: Uuid,
    step_uuid: Uuid,
}

/// An event TS has read.
#[derive(Clone, Copy, Debug)]
struct InFlight {
    step_uuid: Uuid,
    read_at: Instant,
}

/// The dispatch state.
#[derive(Debug)]
pub struct Dispatch {
    completion_timeout: Duration,
    starvation_threshold: Duration,
    unread: VecDeque<Unread>,
    /// Pending events of the per-poll transport (counted here, held by the transport).
    ffi_pending: u64,
    in_flight: HashMap<Uuid, InFlight>,
    completed: u64,
    failed: u64,
    refused: u64,
    timed_out: u64,
    released: u64,
    given_back: u64,
    checkpoints: u64,
    last_starving: u64,
}

impl Dispatch {
    /// Empty state with the given limits.
    pub fn new(completion_timeout: Duration, starvation_threshold: Duration) -> Self {
        Self {
            completion_timeout,
            starvation_threshold,
            unread: VecDeque::with_capacity(4096),
            ffi_pending: 0,
            in_flight: HashMap::with_capacity(4096),
            completed: 0,
            failed: 0,
            refused: 0,
            timed_out: 0,
            released: 0,
            given_back: 0,
            checkpoints: 0,
            last_starving: 0,
        }
    }

    /// Ring: an event was published ending at position `end`.
    pub fn written(&mut self, end: u32, event_id: Uuid, step_uuid: Uuid) {
        self.unread.push_back(Unread {
            end,
            event_id,
            step_uuid,
        });
    }

    /// Ring: the consumer position is `position`; every event it has passed is now in flight, and its id is
    /// appended to `newly_read`.
    pub fn consumer_at(&mut self, position: u32, now: Instant, newly_read: &mut Vec<Uuid>) {
        while let Some(front) = self.unread.front() {
            // Passed when `position - end` is a small forward distance (both are within one capacity).
            if position.wrapping_sub(front.end) >= 1 << 31 {
                break;
            }
            self.in_flight.insert(
                front.event_id,
                InFlight {
                    step_uuid: front.step_uuid,
                    read_at: now,
                },
            );
            newly_read.push(front.event_id);
            self.unread.pop_front();
        }
    }

    /// Per-poll: `n` more events queued, not yet polled.
    pub fn queued(&mut self, n: u64) {
        self.ffi_pending += n;
    }

    /// Per-poll: an event was polled (read) now.
    pub fn polled(&mut self, event_id: Uuid, step_uuid: Uuid, now: Instant) {
        self.ffi_pending = self.ffi_pending.saturating_sub(1);
        self.in_flight.insert(
            event_id,
            InFlight {
                step_uuid,
                read_at: now,
            },
        );
    }

    /// Applies a completion: validates `json`, then takes the event out of flight. The returned result goes
    /// to the source. Refusals are counted; an invalid result leaves the event in flight.
    pub fn complete<'j>(&mut self, event_id: &[u8], json: &'j [u8]) -> Result<(Uuid, StepResult<'j>), Refusal> {
        let outcome = self.check_completion(event_id, json);
        match &outcome {
            Ok((_, r)) if r.success => self.completed += 1,
            Ok(_) => self.failed += 1,
            Err(_) => self.refused += 1,
        }
        outcome
    }

    /// TS gives back an event it read and will not run (layout 1.1 GIVE_BACK, or the per-poll call): it leaves
    /// flight, and the caller releases `(event_id, step_uuid)` to the source. Refused (and counted) like a
    /// completion when the id is not canonical or the event is not in flight.
    pub fn give_back(&mut self, event_id: &[u8]) -> Result<(Uuid, Uuid), Refusal> {
        let outcome = Uuid::parse(event_id)
            .map_err(|e| Refusal::InvalidEventId(e.to_string()))
            .and_then(|id| {
                self.take_read(id)
                    .map(|step| (id, step))
                    .ok_or(Refusal::NotInFlight(id))
            });
        match outcome {
            Ok(_) => self.given_back += 1,
            Err(_) => self.refused += 1,
        }
        outcome
    }

    /// The step of a read event yields with `checkpoint` (layout 1.1 CHECKPOINT): it leaves flight and the
    /// caller hands it to the source. Refused (and counted): a bad id, an event not in flight, a checkpoint
    /// that is not a JSON object or names another `step_uuid`, or a source that keeps no checkpoints (`kept`
    /// false); the event then stays in flight.
    pub fn checkpoint(&mut self, event_id: &[u8], checkpoint: &[u8], kept: bool) -> Result<(Uuid, Uuid), Refusal> {
        let outcome = self.check_checkpoint(event_id, checkpoint, kept);
        match outcome {
            Ok(_) => self.checkpoints += 1,
            Err(_) => self.refused += 1,
        }
        outcome
    }

    fn check_checkpoint(&mut self, event_id: &[u8], checkpoint: &[u8], kept: bool) -> Result<(Uuid, Uuid), Refusal> {
        #[derive(serde::Deserialize)]
        struct Named<'a> {
            #[serde(borrow)]
            step_uuid: Option<std::borrow::Cow<'a, str>>,
        }
        let id = Uuid::parse(event_id).map_err(|e| Refusal::InvalidEventId(e.to_string()))?;
        let named: Named<'_> = serde_json::from_slice(checkpoint)
            .map_err(|e| Refusal::InvalidResult(format!("the checkpoint is not a JSON object: {e}")))?;
        let step = self.read_step(id).ok_or(Refusal::NotInFlight(id))?;
        if !kept {
            return Err(Refusal::InvalidResult(
                "the event source keeps no checkpoints (the synthetic source); complete the event instead".into(),
            ));
        }
        if let Some(named) = named.step_uuid {
            if Uuid::parse(named.as_bytes()).ok() != Some(step) {
                return Err(Refusal::InvalidResult(format!(
                    "the checkpoint names step {named}, but event {id} runs step {step}"
                )));
            }
        }
        self.take_read(id);
        Ok((id, step))
    }

    /// The step of an event TS has read: in flight, or answered before the consumer position passed it (TS
    /// may answer inside a batch it has not released yet: it was read, evidently; rare, so a scan of the
    /// unread queue is fine).
    fn read_step(&self, id: Uuid) -> Option<Uuid> {
        self.in_flight
            .get(&id)
            .map(|f| f.step_uuid)
            .or_else(|| self.unread.iter().find(|u| u.event_id == id).map(|u| u.step_uuid))
    }

    /// Removes an event TS has read from the state; returns its step.
    fn take_read(&mut self, id: Uuid) -> Option<Uuid> {
        if let Some(f) = self.in_flight.remove(&id) {
            return Some(f.step_uuid);
        }
        let at = self.unread.iter().position(|u| u.event_id == id)?;
        self.unread.remove(at).map(|u| u.step_uuid)
    }

    /// Counts a completion that arrived after the worker stopped and says why it was refused.
    pub fn refuse_stopped(&mut self, event_id: &[u8]) -> Refusal {
        self.refused += 1;
        match Uuid::parse(event_id) {
            Ok(id) => Refusal::Stopped(id),
            Err(e) => Refusal::InvalidEventId(e.to_string()),
        }
    }

    fn check_completion<'j>(&mut self, event_id: &[u8], json: &'j [u8]) -> Result<(Uuid, StepResult<'j>), Refusal> {
        let id = Uuid::parse(event_id).map_err(|e| Refusal::InvalidEventId(e.to_string()))?;
        let result = StepResult::parse(json).map_err(Refusal::InvalidResult)?;
        let step = self.read_step(id).ok_or(Refusal::NotInFlight(id))?;
        check_step(id, step, &result)?;
        self.take_read(id);
        Ok((id, result))
    }

    /// Fails every event in flight longer than the completion timeout; returns their results for the source.
    pub fn cleanup_timeouts(&mut self, now: Instant) -> Vec<(Uuid, StepResult<'static>)> {
        let timeout = self.completion_timeout;
        let mut expired = Vec::new();
        self.in_flight.retain(|id, f| {
            let age = now.saturating_duration_since(f.read_at);
            if age <= timeout {
                return true;
            }
            expired.push((
                *id,
                StepResult::timeout(f.step_uuid, age.as_millis() as u64, timeout.as_millis() as u64),
            ));
            false
        });
        if !expired.is_empty() {
            tracing::warn!(
                count = expired.len(),
                timeout_ms = timeout.as_millis() as u64,
                "failed timed-out events"
            );
        }
        self.timed_out += expired.len() as u64;
        self.failed += expired.len() as u64;
        expired
    }

    /// Events in flight longer than the starvation threshold (no logging, no state change).
    pub fn starving(&self, now: Instant) -> u64 {
        let threshold = self.starvation_threshold;
        self.in_flight
            .values()
            .filter(|f| now.saturating_duration_since(f.read_at) > threshold)
            .count() as u64
    }

    /// Counts events in flight longer than the starvation threshold, warning when the count changes.
    pub fn check_starvation(&mut self, now: Instant) -> u64 {
        let threshold = self.starvation_threshold;
        let starving = self.starving(now);
        if starving > 0 && starving != self.last_starving {
            tracing::warn!(
                starving,
                threshold_ms = threshold.as_millis() as u64,
                "step events in flight past the starvation threshold"
            );
        }
        self.last_starving = starving;
        starving
    }

    /// Events neither completed nor failed yet (pending + in flight).
    pub fn outstanding(&self) -> u64 {
        self.unread.len() as u64 + self.ffi_pending + self.in_flight.len() as u64
    }

    /// Ring: takes the events still unread (`(event_id, step_uuid)`, oldest first) out of the state, for
    /// the source to take back at the end of a graceful shutdown.
    pub fn take_unread(&mut self) -> Vec<(Uuid, Uuid)> {
        self.released += self.unread.len() as u64;
        self.unread.drain(..).map(|u| (u.event_id, u.step_uuid)).collect()
    }

    /// Per-poll: an event queued but never polled was taken back by the source.
    pub fn unqueued(&mut self) {
        self.ffi_pending = self.ffi_pending.saturating_sub(1);
        self.released += 1;
    }

    /// Fails everything still pending or in flight (the end of a graceful shutdown), oldest first.
    pub fn fail_all(&mut self, now: Instant) -> Vec<(Uuid, StepResult<'static>)> {
        let unread = std::mem::take(&mut self.unread);
        for u in unread {
            self.in_flight.insert(
                u.event_id,
                InFlight {
                    step_uuid: u.step_uuid,
                    read_at: now,
                },
            );
        }
        let timeout = self.completion_timeout;
        self.completion_timeout = Duration::ZERO;
        let far = now + Duration::from_nanos(1);
        let failed = self.cleanup_timeouts(far);
        self.completion_timeout = timeout;
        failed
    }

    /// The metrics (ring fills are filled in by the transport).
    pub fn metrics(&self, now: Instant) -> DispatchMetrics {
        let starving = self.starving(now);
        let oldest = self
            .in_flight
            .values()
            .map(|f| now.saturating_duration_since(f.read_at))
            .max();
        DispatchMetrics {
            pending_count: self.unread.len() as u64 + self.ffi_pending,
            in_flight_count: self.in_flight.len() as u64,
            completed_count: self.completed,
            failed_count: self.failed,
            starvation_detected: starving > 0,
            starving_event_count: starving,
            oldest_in_flight_age_ms: oldest.map_or(0, |d| d.as_millis() as u64),
            refused_completions: self.refused,
            timed_out_count: self.timed_out,
            released_count: self.released,
            given_back_count: self.given_back,
            checkpoint_count: self.checkpoints,
            events_ring_fill: 0.0,
            completions_ring_fill: 0.0,
            source: None,
            worker_error: None,
        }
    }
}

/// A result must name the step of the event it completes: one naming another step would be persisted as
/// that step's result. Refused as an invalid result; the event stays in flight.
fn check_step(event_id: Uuid, step_uuid: Uuid, result: &StepResult<'_>) -> Result<(), Refusal> {
    if result.step_uuid == step_uuid {
        return Ok(());
    }
    Err(Refusal::InvalidResult(format!(
        "result `step_uuid` {} is not the step of event {event_id} ({step_uuid})",
        result.step_uuid
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] = br#"{"step_uuid":"00000000-0000-0000-0000-000000000002","success":true}"#;
    const FAIL: &[u8] = br#"{"step_uuid":"00000000-0000-0000-0000-000000000002","success":false}"#;
    const E1: &[u8] = b"00000000-0000-0000-0000-000000000001";

    fn d() -> Dispatch {
        Dispatch::new(Duration::from_millis(30_000), Duration::from_millis(10_000))
    }

    #[test]
    fn the_clock_starts_when_the_consumer_passes_the_frame() {
        let mut d = d();
        let t0 = Instant::now();
        d.written(u32::MAX - 7, Uuid(1), Uuid(2));
        d.written(40, Uuid(3), Uuid(4));
        d.consumer_at(u32::MAX - 15, t0, &mut Vec::new());
        let m = d.metrics(t0);
        assert_eq!(
            (m.pending_count, m.in_flight_count),
            (2, 0),
            "unread events are pending, not in flight"
        );
        let mut newly_read = Vec::new();
        d.consumer_at(u32::MAX - 7, t0 + Duration::from_secs(50), &mut newly_read);
        assert_eq!(newly_read, [Uuid(1)], "the passed event is reported as read, once");
        let m = d.metrics(t0 + Duration::from_secs(50));
        assert_eq!(
            (m.pending_count, m.in_flight_count, m.oldest_in_flight_age_ms),
            (1, 1, 0)
        );
        assert!(
            d.cleanup_timeouts(t0 + Duration::from_secs(60)).is_empty(),
            "read at 50 s: not timed out at 60 s"
        );
        d.consumer_at(48, t0 + Duration::from_secs(60), &mut Vec::new());
        assert_eq!(d.metrics(t0 + Duration::from_secs(60)).in_flight_count, 2);
    }

    #[test]
    fn completions_apply_once_and_refusals_are_counted() {
        let mut d = d();
        let now = Instant::now();
        d.polled(Uuid(1), Uuid(2), now);
        assert!(matches!(d.complete(E1, b"{"), Err(Refusal::InvalidResult(_))));
        assert_eq!(
            d.metrics(now).in_flight_count,
            1,
            "an invalid result leaves the event in flight"
        );
        assert!(matches!(d.complete(b"nope", OK), Err(Refusal::InvalidEventId(_))));
        let (id, r) = d.complete(E1, OK).unwrap();
        assert_eq!((id, r.success, r.step_uuid), (Uuid(1), true, Uuid(2)));
        assert_eq!(
            d.complete(E1, OK).unwrap_err(),
            Refusal::NotInFlight(Uuid(1)),
            "a duplicate is refused"
        );
        d.polled(Uuid(1), Uuid(2), now);
        assert!(!d.complete(E1, FAIL).unwrap().1.success);
        let m = d.metrics(now);
        assert_eq!(
            (
                m.completed_count,
                m.failed_count,
                m.refused_completions,
                m.in_flight_count
            ),
            (1, 1, 3, 0)
        );
    }

    /// Issue 20: a result naming another step than its event's was taken (and persisted as that step's).
    #[test]
    fn a_result_for_another_step_is_refused_and_the_event_stays_in_flight() {
        let mut d = d();
        let now = Instant::now();
        let other = br#"{"step_uuid":"00000000-0000-0000-0000-000000000007","success":true}"#;
        d.polled(Uuid(1), Uuid(2), now);
        match d.complete(E1, other) {
            Err(Refusal::InvalidResult(why)) => assert!(why.contains("is not the step of event"), "{why}"),
            other => panic!("a result for step 7 completing step 2's event: {other:?}"),
        }
        assert_eq!(d.metrics(now).in_flight_count, 1, "the event stays in flight");
        // The same before the consumer position passed the event (answered inside an unreleased batch).
        d.written(64, Uuid(9), Uuid(2));
        let e9 = Uuid(9).to_string();
        assert!(matches!(
            d.complete(e9.as_bytes(), other),
            Err(Refusal::InvalidResult(_))
        ));
        assert_eq!(d.metrics(now).pending_count, 1, "still unread, still outstanding");
        assert!(d.complete(E1, OK).is_ok() && d.complete(e9.as_bytes(), OK).is_ok());
        let m = d.metrics(now);
        assert_eq!((m.completed_count, m.refused_completions, m.in_flight_count), (2, 2, 0));
    }

    #[test]
    fn a_completion_ahead_of_the_consumer_position_is_accepted_once() {
        let mut d = d();
        let now = Instant::now();
        d.written(64, Uuid(1), Uuid(2));
        d.written(128, Uuid(9), Uuid(2));
        assert!(d.complete(E1, OK).is_ok(), "answered inside a batch not yet released");
        assert!(matches!(d.complete(E1, OK), Err(Refusal::NotInFlight(_))));
        d.consumer_at(128, now, &mut Vec::new());
        let m = d.metrics(now);
        assert_eq!(
            (m.pending_count, m.in_flight_count, m.completed_count),
            (0, 1, 1),
            "only event 9 is in flight"
        );
    }

    #[test]
    fn timeouts_fail_with_ffi_timeout_and_late_completions_are_refused() {
        let mut d = d();
        let t0 = Instant::now();
        d.polled(Uuid(1), Uuid(2), t0);
        d.polled(Uuid(5), Uuid(6), t0 + Duration::from_secs(25));
        let failed = d.cleanup_timeouts(t0 + Duration::from_millis(30_001));
        assert_eq!(failed.len(), 1);
        let (id, r) = &failed[0];
        assert_eq!((*id, r.step_uuid, r.success), (Uuid(1), Uuid(2), false));
        let v: serde_json::Value = serde_json::from_slice(&r.json).unwrap();
        assert_eq!(
            (v["error"]["error_type"].as_str(), v["error"]["retryable"].as_bool()),
            (Some("ffi_timeout"), Some(true))
        );
        assert!(matches!(d.complete(E1, OK), Err(Refusal::NotInFlight(_))), "too late");
        let m = d.metrics(t0 + Duration::from_millis(30_001));
        assert_eq!(
            (
                m.failed_count,
                m.timed_out_count,
                m.refused_completions,
                m.in_flight_count
            ),
            (1, 1, 1, 1)
        );
    }

    #[test]
    fn starvation_is_reported_past_the_threshold() {
        let mut d = d();
        let t0 = Instant::now();
        d.polled(Uuid(1), Uuid(2), t0);
        d.polled(Uuid(3), Uuid(4), t0 + Duration::from_secs(5));
        assert_eq!(d.check_starvation(t0 + Duration::from_secs(10)), 0);
        let m = d.metrics(t0 + Duration::from_millis(10_001));
        assert!(m.starvation_detected);
        assert_eq!((m.starving_event_count, m.oldest_in_flight_age_ms), (1, 10_001));
    }

    #[test]
    fn fail_all_ends_a_shutdown_with_nothing_outstanding() {
        let mut d = d();
        let now = Instant::now();
        d.written(64, Uuid(1), Uuid(2));
        d.polled(Uuid(3), Uuid(4), now);
        assert_eq!(d.outstanding(), 2);
        assert_eq!(d.fail_all(now).len(), 2);
        assert_eq!(d.outstanding(), 0);
    }
}
