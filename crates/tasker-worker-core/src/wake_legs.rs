//! The idle wake, leg by leg (issue 21): an opt-in diagnostic in which the ring pump keeps, per event, when
//! it claimed the event from its source, when the event's frame was published in the events ring, and when
//! the doorbell write that woke the reader for it began and returned (the reader's callback may run before
//! the write returns: the woken thread can take the writer's CPU). The JS side adds its own legs (doorbell
//! callback, frame decoded, parsed, handler start) and joins the two by event id (`ts-reader/bench/wake-legs.ts`).
//!
//! Off unless [`WAKE_LEGS_ENV`] names a directory when a ring worker is bootstrapped (read once, there): the
//! pump then holds `Some(WakeLegs)` and, when its thread ends, writes the records to
//! `DIR/wake-legs-WORKER_ID.json` as one JSON object. Off, the pump's hot path pays one `Option` test per
//! claim batch and per written event. An environment variable, not a config key, so that a worker's
//! configuration cannot turn it on by accident; the process's real environment (Bun's `process.env` does
//! not reach the C library's, so the bench sets it for a child it starts).
//!
//! Times are epoch microseconds on the same clocks as the synthetic source's `enqueued_at_us`: the system
//! clock read once at the start plus a monotonic clock since, so legs between them are differences of one
//! monotonic clock plus the (sub-microsecond) gap between two readings of the system clock.

use crate::event_id::Uuid;
use crate::wall_anchor::WallAnchor;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// The environment variable that turns the diagnostic on: the directory the pump writes its records in.
pub const WAKE_LEGS_ENV: &str = "TASKER_WAKE_LEGS";
/// Most events recorded per worker (about 40 MB); later ones are counted in `dropped`, not recorded.
const MAX_RECORDS: usize = 1 << 20;

/// One event's Rust legs, in nanoseconds since [`WakeLegs::anchor`] (0: not reached).
#[derive(Debug, Clone, Copy)]
struct Record {
    event_id: Uuid,
    claimed_ns: u64,
    published_ns: u64,
    ring_begins_ns: u64,
    doorbell_ns: u64,
}

/// The pump's per-event timestamps while the diagnostic is on.
#[derive(Debug)]
pub struct WakeLegs {
    path: PathBuf,
    worker_id: String,
    anchor: Instant,
    /// `anchor` on the system clock, epoch microseconds (fractional).
    anchor_epoch_us: f64,
    records: Vec<Record>,
    /// Records before this index are published or were never written (failed, carried back).
    publish_cursor: usize,
    /// First record published by the current `fill_events` pass (the doorbell that ends it covers these).
    pass_from: usize,
    dropped: u64,
}

impl WakeLegs {
    /// The diagnostic when [`WAKE_LEGS_ENV`] is set to a non-empty path, else None.
    pub fn from_env(worker_id: &str) -> Option<Self> {
        let dir = PathBuf::from(std::env::var_os(WAKE_LEGS_ENV).filter(|p| !p.is_empty())?);
        let path = Self::file_in(&dir, worker_id);
        tracing::warn!(
            path = %path.display(),
            "{WAKE_LEGS_ENV} is set: the ring pump records per-event wake timestamps (a diagnostic, not for production)"
        );
        Some(Self::new(path, worker_id))
    }

    /// The file a worker's records go to in `dir`.
    pub fn file_in(dir: &Path, worker_id: &str) -> PathBuf {
        dir.join(format!("wake-legs-{worker_id}.json"))
    }

    /// A diagnostic writing to `path` when dropped.
    pub fn new(path: PathBuf, worker_id: &str) -> Self {
        let wall = WallAnchor::now();
        let anchor = wall.instant();
        let anchor_epoch_us = wall.epoch_us(anchor);
        Self {
            path,
            worker_id: worker_id.to_string(),
            anchor,
            anchor_epoch_us,
            records: Vec::with_capacity(4096),
            publish_cursor: 0,
            pass_from: 0,
            dropped: 0,
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.anchor.elapsed().as_nanos())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    /// The source handed these events over (in the order they will be written).
    pub fn claimed(&mut self, ids: impl Iterator<Item = Uuid>) {
        let now = self.now_ns();
        for event_id in ids {
            if self.records.len() >= MAX_RECORDS {
                self.dropped += 1;
                continue;
            }
            self.records.push(Record {
                event_id,
                claimed_ns: now,
                published_ns: 0,
                ring_begins_ns: 0,
                doorbell_ns: 0,
            });
        }
    }

    /// A `fill_events` pass begins writing.
    pub fn pass_begins(&mut self) {
        self.pass_from = self.publish_cursor;
    }

    /// `event_id`'s frame is published. Events claimed before it and never written (refused as too large)
    /// are passed over.
    pub fn published(&mut self, event_id: Uuid) {
        let now = self.now_ns();
        let from = self.publish_cursor;
        if let Some(i) = self.records[from..].iter().position(|r| r.event_id == event_id) {
            self.records[from + i].published_ns = now;
            self.publish_cursor = from + i + 1;
        }
    }

    /// The doorbell write for the events published in this pass begins.
    pub fn ring_begins(&mut self) {
        let now = self.now_ns();
        for r in &mut self.records[self.pass_from..self.publish_cursor] {
            r.ring_begins_ns = now;
        }
    }

    /// The doorbell write for the events published in this pass returned.
    pub fn rang(&mut self) {
        let now = self.now_ns();
        for r in &mut self.records[self.pass_from..self.publish_cursor] {
            r.doorbell_ns = now;
        }
    }

    /// The records as JSON: `{"worker_id", "dropped", "legs": [{"event_id", "claimed_us", "published_us",
    /// "ring_begins_us", "doorbell_us"}]}`, times in epoch microseconds, null when not reached (no doorbell:
    /// the reader was awake).
    pub fn to_json(&self) -> serde_json::Value {
        let us = |ns: u64| (ns != 0).then(|| self.anchor_epoch_us + ns as f64 / 1000.0);
        let legs: Vec<serde_json::Value> = self
            .records
            .iter()
            .map(|r| {
                serde_json::json!({
                    "event_id": r.event_id.to_string(),
                    "claimed_us": us(r.claimed_ns),
                    "published_us": us(r.published_ns),
                    "ring_begins_us": us(r.ring_begins_ns),
                    "doorbell_us": us(r.doorbell_ns),
                })
            })
            .collect();
        serde_json::json!({ "worker_id": self.worker_id, "dropped": self.dropped, "legs": legs })
    }
}

impl Drop for WakeLegs {
    /// Writes the records when the pump's thread ends (the worker's stop joins it before it returns).
    fn drop(&mut self) {
        let text = self.to_json().to_string();
        if let Err(e) = std::fs::write(&self.path, text) {
            tracing::error!(path = %self.path.display(), error = %e, "cannot write the wake legs");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{SystemTime, UNIX_EPOCH};

    fn id(n: u128) -> Uuid {
        Uuid(n)
    }

    #[test]
    fn legs_follow_each_event_and_the_doorbell_covers_its_pass_only() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("legs.json");
        let mut legs = WakeLegs::new(path.clone(), "w1");
        legs.claimed([id(1), id(2), id(3)].into_iter());
        legs.pass_begins();
        legs.published(id(1));
        legs.ring_begins();
        legs.rang();
        legs.pass_begins();
        // Event 2 was refused (never written): passed over, never published.
        legs.published(id(3));
        legs.pass_begins();
        legs.claimed([id(4)].into_iter());
        legs.published(id(4));
        legs.ring_begins();
        legs.rang();
        drop(legs);
        let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(v["worker_id"], "w1");
        let l = v["legs"].as_array().unwrap();
        assert_eq!(l.len(), 4);
        let f = |i: usize, k: &str| l[i][k].as_f64();
        assert_eq!(l[0]["event_id"], id(1).to_string());
        assert!(f(0, "claimed_us").unwrap() <= f(0, "published_us").unwrap());
        assert!(f(0, "published_us").unwrap() <= f(0, "ring_begins_us").unwrap());
        assert!(f(0, "ring_begins_us").unwrap() <= f(0, "doorbell_us").unwrap());
        assert_eq!((f(1, "published_us"), f(1, "doorbell_us")), (None, None));
        assert!(
            f(2, "published_us").is_some() && f(2, "doorbell_us").is_none(),
            "no ring in its pass"
        );
        assert!(f(2, "ring_begins_us").is_none());
        assert!(f(3, "doorbell_us").unwrap() >= f(3, "published_us").unwrap());
        // Epoch microseconds, on the system clock's scale.
        let now_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as f64;
        assert!((now_us - f(0, "claimed_us").unwrap()).abs() < 60e6);
    }
}
