//! Where step events come from and where their results go.
//!
//! The worker claims events from an [`EventSource`] only when the transport has room for them
//! (backpressure before the claim), and hands every result (a handler's, or a timeout's) back to it.

use crate::event_id::Uuid;
use crate::refusals::RefusalBatch;
use crate::result::StepResult;
use crate::synthetic::StepEventGenerator;
use crate::wall_anchor::WallAnchor;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A claimed step event: its ids and its JSON (a superset of the seed's `FfiStepEvent`).
#[derive(Clone, Debug)]
pub struct SourcedEvent {
    /// `event_id` of the event.
    pub event_id: Uuid,
    /// `step_uuid` of the step it runs (timeout results name it).
    pub step_uuid: Uuid,
    /// The event JSON.
    pub payload: EventPayload,
}

/// A step event's JSON: a tree (the synthetic source stamps fields into it) or text that is written as it is
/// (the step store builds its events as text, so the ring pump copies bytes instead of serialising a tree).
#[derive(Clone, Debug)]
pub enum EventPayload {
    /// A JSON tree, serialised when written.
    Tree(serde_json::Value),
    /// JSON text: its producer guarantees it is JSON (the store builds its events so, see
    /// `tasker_store::ClaimedStep::event`).
    Text(Box<str>),
}

impl EventPayload {
    /// Writes the JSON to `w`.
    pub fn write_to<W: std::io::Write>(&self, mut w: W) -> std::io::Result<()> {
        match self {
            Self::Tree(v) => serde_json::to_writer(w, v).map_err(std::io::Error::other),
            Self::Text(t) => w.write_all(t.as_bytes()),
        }
    }

    /// The JSON's length in bytes when known without serialising it (text).
    pub fn text_len(&self) -> Option<usize> {
        match self {
            Self::Tree(_) => None,
            Self::Text(t) => Some(t.len()),
        }
    }

    /// The JSON as a fresh string (the per-poll transport's C string).
    pub fn to_json_string(&self) -> String {
        match self {
            Self::Tree(v) => v.to_string(),
            Self::Text(t) => t.to_string(),
        }
    }

    /// The JSON as a tree (tests and tools; parses text).
    pub fn to_value(&self) -> serde_json::Value {
        match self {
            Self::Tree(v) => v.clone(),
            Self::Text(t) => serde_json::from_str(t).unwrap_or(serde_json::Value::Null),
        }
    }
}

/// Wakes the ring pump from its quiet wait (nothing outstanding for a while): a source whose events arrive
/// from a thread of its own ([`EventSource::waker`]) calls [`PumpWaker::wake`] after handing a batch over,
/// so the pump needs neither to poll for them nor to sleep in short steps to see them soon.
#[derive(Clone, Debug, Default)]
pub struct PumpWaker(Arc<Mutex<Option<std::thread::Thread>>>);

impl PumpWaker {
    /// The calling thread (the pump) is the one [`Self::wake`] unparks.
    pub fn register_current(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(std::thread::current());
    }

    /// Unparks the registered pump (a no-op before one registered; a wake-up of a pump that is not parked
    /// makes its next park return at once, so none is lost).
    pub fn wake(&self) {
        if let Some(t) = self.0.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            t.unpark();
        }
    }
}

/// A supply of step events and a sink for their results.
pub trait EventSource: Send + 'static {
    /// Appends up to `max` ready events to `out`; returns how many. Called only when the transport has
    /// room for them.
    fn claim(&mut self, max: usize, out: &mut Vec<SourcedEvent>) -> usize;
    /// Takes the result of a claimed event (each event gets exactly one).
    fn complete(&mut self, event_id: Uuid, result: &StepResult<'_>);
    /// Whether no event will ever come again.
    fn is_exhausted(&self) -> bool;
    /// TS has read these events (their handlers start now). A store extends their claims.
    fn read(&mut self, _event_ids: &[Uuid]) {}
    /// Takes back a claimed event no handler ever read (a graceful shutdown's leftovers): a store gives the
    /// claim back without using an attempt. By default it completes as a retryable `worker_shutdown`
    /// failure, so every claimed event still gets exactly one result.
    fn release(&mut self, event_id: Uuid, step_uuid: Uuid) {
        self.complete(event_id, &StepResult::released(step_uuid));
    }
    /// Whether [`Self::checkpoint`] keeps checkpoints (a store does; the synthetic source does not, and the
    /// worker then refuses a checkpoint visibly, leaving the event in flight for a completion).
    fn keeps_checkpoints(&self) -> bool {
        false
    }
    /// The step of a read event yields with `checkpoint` (a JSON object; layout 1.1 CHECKPOINT): a store
    /// persists it, does not count the attempt, and dispatches the step again with
    /// `workflow_step.checkpoint` set. Called only when [`Self::keeps_checkpoints`]; the default gives the
    /// event back.
    fn checkpoint(&mut self, event_id: Uuid, step_uuid: Uuid, _checkpoint: &[u8]) {
        self.release(event_id, step_uuid);
    }
    /// The worker began draining: no claim follows. A source with a claim request open withdraws it, and
    /// gives back at once the steps claimed for it that the worker has not taken (never dispatched, they
    /// would otherwise stay invisible to other workers until the drain ends).
    fn stop_claiming(&mut self) {}
    /// The worker stopped: persist what is pending and give back what is held, before returning. Called
    /// once the pump has exited; nothing is claimed or completed after it.
    fn close(&mut self) {}
    /// The source's own figures for `metrics` (the store's counters, latencies and step counts).
    fn metrics(&self) -> Option<serde_json::Value> {
        None
    }
    /// Moves the results the source refused since the last call (a store: claims that expired and moved
    /// on) into `batch`.
    fn drain_refusals(&mut self, _batch: &mut RefusalBatch) {}
    /// When the next event becomes claimable, if the source knows it (a rate-limited source): an idle pump
    /// wakes then instead of sleeping past it. None: unknown, or nothing scheduled.
    fn next_due(&self) -> Option<Instant> {
        None
    }
    /// The waker this source's own thread calls when it hands events over (see [`PumpWaker`]). None: the
    /// source produces on the pump's thread (or knows its due times), and a quiet pump only needs its
    /// timeout.
    fn waker(&self) -> Option<PumpWaker> {
        None
    }
}

/// Counters of a synthetic run, shared with whoever started it (tests, the demo).
#[derive(Debug, Default)]
pub struct SyntheticStats {
    /// Events claimed.
    pub claimed: AtomicU64,
    /// Results with `success: true`.
    pub succeeded: AtomicU64,
    /// Results with `success: false` (timeouts included).
    pub failed: AtomicU64,
    /// Results for events not claimed or already finished (must stay 0).
    pub unexpected: AtomicU64,
}

impl SyntheticStats {
    /// Results received so far.
    pub fn finished(&self) -> u64 {
        self.succeeded.load(Ordering::Acquire) + self.failed.load(Ordering::Acquire)
    }
}

/// Tasker-shaped events from the fixture, at a configurable size, rate and count.
pub struct SyntheticSource {
    generator: StepEventGenerator,
    remaining: Option<u64>,
    rate_per_sec: Option<u64>,
    started: Instant,
    /// `started` on the system clock, in nanoseconds since the Unix epoch (for `enqueued_at_us`).
    started_epoch_ns: u128,
    stamp_enqueued_at: bool,
    produced: u64,
    /// Rate-limited: the next event, built while waiting for its due time (see `claim`).
    prepared: Option<SourcedEvent>,
    outstanding: HashSet<Uuid>,
    stats: Arc<SyntheticStats>,
}

impl SyntheticSource {
    /// A source of `count` events (None: unlimited) of about `event_bytes` each, at most `rate_per_sec`.
    pub fn new(count: Option<u64>, rate_per_sec: Option<u64>, event_bytes: Option<usize>, seed: u64) -> Self {
        let anchor = WallAnchor::now();
        Self {
            generator: StepEventGenerator::new(event_bytes.unwrap_or(0), seed),
            remaining: count,
            rate_per_sec: rate_per_sec.filter(|r| *r > 0),
            started: anchor.instant(),
            started_epoch_ns: anchor.epoch_ns(anchor.instant()),
            stamp_enqueued_at: false,
            produced: 0,
            prepared: None,
            outstanding: HashSet::new(),
            stats: Arc::new(SyntheticStats::default()),
        }
    }

    /// Draws each event's size uniformly from the configured size (or the fixture's) up to `max_bytes`.
    pub fn with_size_range(mut self, min_bytes: Option<usize>, max_bytes: usize, seed: u64) -> Self {
        self.generator = StepEventGenerator::with_size_range(min_bytes.unwrap_or(0), max_bytes, seed);
        self
    }

    /// Adds a top-level `enqueued_at_us` to every event: epoch microseconds (system clock) of the moment it
    /// became available. With a rate, the k-th event (1-based) is due at start + k / rate (the intended
    /// time, exactly when `claim` first lets it out, so a slow consumer cannot hide its queueing: no
    /// coordinated omission); without one every event is available at the source's start (a burst).
    pub fn with_enqueued_at_stamp(mut self, on: bool) -> Self {
        self.stamp_enqueued_at = on;
        self
    }

    /// The run's counters.
    pub fn stats(&self) -> Arc<SyntheticStats> {
        Arc::clone(&self.stats)
    }

    /// The `k`-th event (1-based) from the generator, stamped when asked.
    fn make(&mut self, k: u64) -> SourcedEvent {
        let at_ns = self.started_epoch_ns + self.due_offset_ns(k);
        // Text, as the store's events are: the ring pump copies bytes, and the per-poll path clones a string
        // (a tree would be deep-cloned and serialised per event, a cost of this stand-in, not of a source).
        let (id, step, text) = self.generator.next_event_text();
        let (Ok(event_id), Ok(step_uuid)) = (Uuid::parse(id.as_bytes()), Uuid::parse(step.as_bytes())) else {
            unreachable!("the generator writes canonical UUIDs");
        };
        let text = if self.stamp_enqueued_at {
            // The event is an object: its last byte is its closing brace.
            let at_us = u64::try_from(at_ns / 1000).unwrap_or(u64::MAX);
            let mut s = String::from(text);
            s.pop();
            s.push_str(&format!(",\"enqueued_at_us\":{at_us}}}"));
            s.into_boxed_str()
        } else {
            text
        };
        SourcedEvent {
            event_id,
            step_uuid,
            payload: EventPayload::Text(text),
        }
    }

    /// Nanoseconds after the start at which the `k`-th event (1-based) is due under the rate (0 without one).
    fn due_offset_ns(&self, k: u64) -> u128 {
        self.rate_per_sec
            .map_or(0, |rate| (u128::from(k) * 1_000_000_000).div_ceil(u128::from(rate)))
    }
}

impl EventSource for SyntheticSource {
    fn claim(&mut self, max: usize, out: &mut Vec<SourcedEvent>) -> usize {
        let mut n = max as u64;
        if let Some(left) = self.remaining {
            n = n.min(left);
        }
        if let Some(rate) = self.rate_per_sec {
            // Integer arithmetic, so `next_due` and the stamps agree with this to the nanosecond: the k-th
            // event is out once elapsed * rate >= k * 1e9.
            let due = self.started.elapsed().as_nanos() * u128::from(rate) / 1_000_000_000;
            n = n.min(u64::try_from(due).unwrap_or(u64::MAX).saturating_sub(self.produced));
        }
        for i in 0..n {
            let event = match self.prepared.take() {
                Some(event) => event,
                None => self.make(self.produced + i + 1),
            };
            self.outstanding.insert(event.event_id);
            out.push(event);
        }
        self.produced += n;
        if let Some(left) = self.remaining.as_mut() {
            *left -= n;
        }
        self.stats.claimed.fetch_add(n, Ordering::Release);
        if n == 0 && self.rate_per_sec.is_some() && self.prepared.is_none() && !self.is_exhausted() {
            // Idle until the next due time: build that event now, so its due time is spent on handing it
            // over rather than on making it (a real source holds an event before it is enqueued; building
            // one from the fixture is this stand-in's own cost, ~50 us with cold caches after an idle gap).
            self.prepared = Some(self.make(self.produced + 1));
        }
        n as usize
    }

    fn complete(&mut self, event_id: Uuid, result: &StepResult<'_>) {
        if !self.outstanding.remove(&event_id) {
            self.stats.unexpected.fetch_add(1, Ordering::Release);
            return;
        }
        let counter = if result.success {
            &self.stats.succeeded
        } else {
            &self.stats.failed
        };
        counter.fetch_add(1, Ordering::Release);
    }

    fn is_exhausted(&self) -> bool {
        self.remaining == Some(0)
    }

    fn next_due(&self) -> Option<Instant> {
        if self.rate_per_sec.is_none() || self.is_exhausted() {
            return None;
        }
        let ns = u64::try_from(self.due_offset_ns(self.produced + 1)).ok()?;
        self.started.checked_add(Duration::from_nanos(ns))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    /// The quiet pump's wake-up: a wake before anyone registered is a no-op; after, it unparks the thread
    /// that registered, whether it is parked already or parks later (the token is kept).
    #[test]
    fn wake_unparks_the_registered_thread() {
        let waker = PumpWaker::default();
        waker.wake();
        let (registered_tx, registered) = std::sync::mpsc::channel();
        let pump = waker.clone();
        let parked = std::thread::spawn(move || {
            pump.register_current();
            registered_tx.send(()).unwrap();
            let start = Instant::now();
            std::thread::park_timeout(Duration::from_secs(120));
            start.elapsed()
        });
        registered.recv().unwrap();
        waker.wake();
        let waited = parked.join().unwrap();
        assert!(
            waited < Duration::from_secs(60),
            "woken by wake(), not by the 120 s timeout: {waited:?}"
        );
    }

    fn epoch_us() -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as u64
    }

    fn stamps(events: &[SourcedEvent]) -> Vec<u64> {
        events
            .iter()
            .map(|e| e.payload.to_value()["enqueued_at_us"].as_u64().expect("stamped"))
            .collect()
    }

    #[test]
    fn no_stamp_unless_asked() {
        let mut source = SyntheticSource::new(Some(3), None, None, 1);
        let mut out = Vec::new();
        assert_eq!(source.claim(10, &mut out), 3);
        assert!(out.iter().all(|e| e.payload.to_value().get("enqueued_at_us").is_none()));
        assert_eq!(source.next_due(), None, "no rate, no schedule");
    }

    #[test]
    fn a_burst_is_stamped_with_the_start() {
        let before = epoch_us();
        let mut source = SyntheticSource::new(Some(5), None, None, 2).with_enqueued_at_stamp(true);
        let after = epoch_us();
        std::thread::sleep(Duration::from_millis(5));
        let mut out = Vec::new();
        assert_eq!(source.claim(3, &mut out), 3);
        assert_eq!(source.claim(3, &mut out), 2);
        let s = stamps(&out);
        assert!(s.iter().all(|&t| t == s[0]), "all available at once: {s:?}");
        assert!((before..=after).contains(&s[0]), "{before} <= {} <= {after}", s[0]);
    }

    #[test]
    fn a_rate_stamps_each_due_time_and_next_due_agrees_with_claim() {
        // 2000 events/s: the k-th event is due 500 us * k after the start.
        let before = epoch_us();
        let mut source = SyntheticSource::new(Some(40), Some(2000), None, 3).with_enqueued_at_stamp(true);
        let mut out = Vec::new();
        let mut prev_due = None;
        while !source.is_exhausted() {
            let due = source.next_due().expect("a rate-limited source knows its next event");
            let n = source.claim(100, &mut out);
            if Instant::now() < due {
                assert_eq!(n, 0, "nothing is let out before its due time");
            }
            if let Some(prev) = prev_due {
                assert!(due >= prev, "due times never go back");
            }
            prev_due = Some(due);
            std::thread::sleep(Duration::from_micros(700));
        }
        assert_eq!(source.next_due(), None, "exhausted");
        let s = stamps(&out);
        assert_eq!(s.len(), 40);
        let start = s[0] - 500;
        assert!(start >= before, "the first event is due one period after the start");
        for (k, t) in s.iter().enumerate() {
            assert_eq!(
                *t,
                start + 500 * (k as u64 + 1),
                "event {k}: the intended time, not the claim time"
            );
        }
        assert!(*s.last().unwrap() <= epoch_us(), "no stamp is in the future");
    }
}
