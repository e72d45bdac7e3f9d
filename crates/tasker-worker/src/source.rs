//! Where step events come from and where their results go.
//!
//! The worker claims events from an [`EventSource`] only when the transport has room for them
//! (backpressure before the claim), and hands every result (a handler's, or a timeout's) back to it.

use crate::event_id::Uuid;
use crate::result::StepResult;
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tasker_ring::synthetic::StepEventGenerator;

/// A claimed step event: its ids and its JSON (a superset of the seed's `FfiStepEvent`).
#[derive(Clone, Debug)]
pub struct SourcedEvent {
    /// `event_id` of the event.
    pub event_id: Uuid,
    /// `step_uuid` of the step it runs (timeout results name it).
    pub step_uuid: Uuid,
    /// The event JSON.
    pub payload: serde_json::Value,
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
    /// The worker stopped: persist what is pending and give back what is held, before returning. Called
    /// once the pump has exited; nothing is claimed or completed after it.
    fn close(&mut self) {}
    /// The source's own figures for `metrics` (the store's counters, latencies and step counts).
    fn metrics(&self) -> Option<serde_json::Value> {
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
    produced: u64,
    outstanding: HashSet<Uuid>,
    stats: Arc<SyntheticStats>,
}

impl SyntheticSource {
    /// A source of `count` events (None: unlimited) of about `event_bytes` each, at most `rate_per_sec`.
    pub fn new(count: Option<u64>, rate_per_sec: Option<u64>, event_bytes: Option<usize>, seed: u64) -> Self {
        Self {
            generator: StepEventGenerator::new(event_bytes.unwrap_or(0), seed),
            remaining: count,
            rate_per_sec: rate_per_sec.filter(|r| *r > 0),
            started: Instant::now(),
            produced: 0,
            outstanding: HashSet::new(),
            stats: Arc::new(SyntheticStats::default()),
        }
    }

    /// Draws each event's size uniformly from the configured size (or the fixture's) up to `max_bytes`.
    pub fn with_size_range(mut self, min_bytes: Option<usize>, max_bytes: usize, seed: u64) -> Self {
        self.generator = StepEventGenerator::with_size_range(min_bytes.unwrap_or(0), max_bytes, seed);
        self
    }

    /// The run's counters.
    pub fn stats(&self) -> Arc<SyntheticStats> {
        Arc::clone(&self.stats)
    }
}

impl EventSource for SyntheticSource {
    fn claim(&mut self, max: usize, out: &mut Vec<SourcedEvent>) -> usize {
        let mut n = max as u64;
        if let Some(left) = self.remaining {
            n = n.min(left);
        }
        if let Some(rate) = self.rate_per_sec {
            let due = (self.started.elapsed().as_secs_f64() * rate as f64) as u64;
            n = n.min(due.saturating_sub(self.produced));
        }
        for _ in 0..n {
            let (_, event) = self.generator.next_event();
            let id = |field: &str| event[field].as_str().and_then(|s| Uuid::parse(s.as_bytes()).ok());
            let (Some(event_id), Some(step_uuid)) = (id("event_id"), id("step_uuid")) else {
                unreachable!("the generator writes canonical UUIDs");
            };
            self.outstanding.insert(event_id);
            out.push(SourcedEvent {
                event_id,
                step_uuid,
                payload: event.clone(),
            });
        }
        self.produced += n;
        if let Some(left) = self.remaining.as_mut() {
            *left -= n;
        }
        self.stats.claimed.fetch_add(n, Ordering::Release);
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
}
