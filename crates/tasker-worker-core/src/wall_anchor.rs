//! The system clock tied to the monotonic clock once, for wall-clock stamps another thread or process compares
//! with its own (`enqueued_at_us`, the wake legs, the bare doorbell's stamps).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Reads tried by [`WallAnchor::now`]; the one with the shortest monotonic gap around it is kept.
const TRIES: usize = 7;

/// The system clock at one monotonic instant. Invariant: `epoch_ns` was read between two monotonic reads at
/// most `uncertainty` apart, `at` their midpoint, so any later stamp `epoch_ns + (t - at)` is off the system
/// clock by at most half of it (plus the clocks' drift since).
#[derive(Clone, Copy, Debug)]
pub struct WallAnchor {
    at: Instant,
    epoch_ns: u128,
    uncertainty: Duration,
}

impl WallAnchor {
    /// Anchors now. A single `SystemTime::now()` beside an `Instant::now()` is off by however long the thread
    /// was held between them: on this 2-core VM a stalled virtual CPU made that 140-260 us in 3 of ~10
    /// bench runs (latencies came out negative; the offset itself held still over 20 s of paired reads, single
    /// pairs off by 20-246 us); the read with the shortest gap of [`TRIES`] is kept.
    pub fn now() -> Self {
        let mut best: Option<Self> = None;
        for _ in 0..TRIES {
            let before = Instant::now();
            let epoch_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
            let uncertainty = before.elapsed();
            let read = Self {
                at: before + uncertainty / 2,
                epoch_ns,
                uncertainty,
            };
            if best.is_none_or(|b| read.uncertainty < b.uncertainty) {
                best = Some(read);
            }
        }
        best.expect("TRIES > 0")
    }

    /// `t` on the system clock, in nanoseconds since the Unix epoch (`t` before the anchor counts back).
    pub fn epoch_ns(&self, t: Instant) -> u128 {
        match t.checked_duration_since(self.at) {
            Some(after) => self.epoch_ns + after.as_nanos(),
            None => self.epoch_ns.saturating_sub((self.at - t).as_nanos()),
        }
    }

    /// `t` on the system clock, in microseconds since the Unix epoch.
    pub fn epoch_us(&self, t: Instant) -> f64 {
        self.epoch_ns(t) as f64 / 1000.0
    }

    /// The anchor's own monotonic instant (stamps are counted from it).
    pub fn instant(&self) -> Instant {
        self.at
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_follow_the_monotonic_clock_from_the_system_clock_read() {
        let anchor = WallAnchor::now();
        let system_us = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as f64 / 1000.0;
        let ours_us = anchor.epoch_us(Instant::now());
        // Both read the same system clock a moment apart: they agree to well within a second.
        assert!((system_us - ours_us).abs() < 1e6, "{system_us} vs {ours_us}");
        let later = anchor.instant() + Duration::from_micros(1500);
        assert_eq!(anchor.epoch_ns(later) - anchor.epoch_ns(anchor.instant()), 1_500_000);
        let earlier = anchor.instant() - Duration::from_micros(250);
        assert_eq!(anchor.epoch_ns(anchor.instant()) - anchor.epoch_ns(earlier), 250_000);
    }
}
