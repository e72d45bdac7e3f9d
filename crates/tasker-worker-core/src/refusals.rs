//! Completions refused after they left the caller: on the ring transport a completion is written into
//! shared memory and the worker decides later (an event it no longer has in flight, a result it cannot
//! parse), and a step store may refuse a result whose claim expired and went to another worker. Each is
//! counted in the metrics and also kept here, with its event id and reason, until the caller drains them
//! (`poll_completion_refusals`), so a TS worker can tell its user which step's result was not taken.
//!
//! The log is bounded: past [`RefusalLog::CAPACITY`] entries the oldest are dropped and counted.

use serde::Serialize;
use std::collections::VecDeque;
use std::time::{SystemTime, UNIX_EPOCH};

/// Why a completion was refused after it was sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefusalKind {
    /// The event is not in flight: never delivered, already completed, or timed out.
    NotInFlight,
    /// The result is not a step result (`step_uuid`, `success`); the event stays in flight.
    InvalidResult,
    /// The event id is not a canonical UUID.
    InvalidEventId,
    /// The worker had stopped.
    Stopped,
    /// The store refused the result: the claim had expired and the step moved on to another worker.
    ClaimLost,
    /// The store refused the result as invalid for the step.
    StoreInvalid,
}

/// One refused completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CompletionRefusal {
    /// The event id as sent (lossy UTF-8 when it was not text).
    pub event_id: String,
    /// Why.
    pub kind: RefusalKind,
    /// The reason in words.
    pub message: String,
    /// When it was refused (system clock, ms since the Unix epoch).
    pub at_unix_ms: u64,
}

impl CompletionRefusal {
    /// A refusal decided now.
    pub fn now(event_id: impl Into<String>, kind: RefusalKind, message: impl Into<String>) -> Self {
        Self {
            event_id: event_id.into(),
            kind,
            message: message.into(),
            at_unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }
}

/// What one drain returns: the refusals since the last drain, oldest first, and how many were dropped
/// because nobody drained them in time.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RefusalBatch {
    /// Oldest first.
    pub refusals: Vec<CompletionRefusal>,
    /// Refusals dropped (the log was full) since the last drain.
    pub dropped: u64,
}

/// A bounded log of refusals.
#[derive(Debug, Default)]
pub struct RefusalLog {
    entries: VecDeque<CompletionRefusal>,
    dropped: u64,
}

impl RefusalLog {
    /// Most refusals kept between two drains.
    pub const CAPACITY: usize = 1024;

    /// Records one, dropping the oldest when full.
    pub fn push(&mut self, refusal: CompletionRefusal) {
        if self.entries.len() == Self::CAPACITY {
            self.entries.pop_front();
            self.dropped += 1;
        }
        self.entries.push_back(refusal);
    }

    /// Moves everything recorded into `batch` (appending) and resets the log.
    pub fn drain_into(&mut self, batch: &mut RefusalBatch) {
        batch.refusals.extend(self.entries.drain(..));
        batch.dropped += std::mem::take(&mut self.dropped);
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.dropped == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounded_oldest_dropped_and_counted() {
        let mut log = RefusalLog::default();
        assert!(log.is_empty());
        for i in 0..RefusalLog::CAPACITY + 3 {
            log.push(CompletionRefusal::now(i.to_string(), RefusalKind::NotInFlight, "x"));
        }
        let mut batch = RefusalBatch::default();
        log.drain_into(&mut batch);
        assert_eq!(batch.dropped, 3);
        assert_eq!(batch.refusals.len(), RefusalLog::CAPACITY);
        assert_eq!(batch.refusals[0].event_id, "3", "the oldest went first");
        assert!(log.is_empty());
        let json = serde_json::to_value(&batch.refusals[0]).unwrap();
        assert_eq!(json["kind"], "not_in_flight");
    }
}
