//! The bare doorbell socket, for the `socket` row of `ts-reader/bench/end-to-end.ts` (issue 21): what a wake
//! costs from the Rust write to the JS `data` callback, with no ring, no pump and no parse, the floor under
//! the ring's idle wake.
//!
//! `doorbell_ping PATH COUNT RATE` binds a [`Doorbell`] at PATH, prints `{"listening":PATH}`, waits (at most
//! 30 s) for one peer (ringing it once when it comes: a warm-up byte the reader skips), then rings it COUNT times, RATE times a second: it sleeps until 200 us before each due
//! time, yields until it, then stamps and rings (one byte, as the worker's pump does). The stamps, wall-clock
//! microseconds taken just before each write, read the way the synthetic source stamps `enqueued_at_us`
//! (a [`WallAnchor`]: the system clock once, then the monotonic clock), are printed at the end as `{"stamps_us":[...]}`.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::time::{Duration, Instant};
use tasker_worker_core::doorbell::Doorbell;
use tasker_worker_core::wall_anchor::WallAnchor;

/// How long before a due time the sleep ends; the rest is spent yielding (a sleep wakes 60-100 us late here).
const SPIN_MARGIN: Duration = Duration::from_micros(200);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(path), Some(count), Some(rate)) = (
        args.first().map(PathBuf::from),
        args.get(1).and_then(|s| s.parse::<usize>().ok()),
        args.get(2).and_then(|s| s.parse::<f64>().ok()).filter(|r| *r > 0.0),
    ) else {
        eprintln!("usage: doorbell_ping PATH COUNT RATE  (RATE > 0 per second)");
        std::process::exit(2);
    };
    let bell = Doorbell::bind(&path).unwrap_or_else(|e| {
        eprintln!("doorbell_ping: cannot bind {}: {e}", path.display());
        std::process::exit(1);
    });
    println!("{}", serde_json::json!({ "listening": path }));
    let waited = Instant::now();
    while bell.ring() == 0 {
        if waited.elapsed() > Duration::from_secs(30) {
            eprintln!("doorbell_ping: nobody connected within 30 s");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    // The ring above reached the peer: one warm-up byte, which the reader skips.
    let wall = WallAnchor::now();
    let origin = wall.instant();
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut stamps = Vec::with_capacity(count);
    for i in 1..=count {
        let due = origin + period.mul_f64(i as f64);
        let now = Instant::now();
        if due > now + SPIN_MARGIN {
            std::thread::sleep(due - now - SPIN_MARGIN);
        }
        while Instant::now() < due {
            std::thread::yield_now();
        }
        stamps.push(wall.epoch_us(Instant::now()));
        if bell.ring() == 0 {
            eprintln!("doorbell_ping: the peer went away after {} rings", i - 1);
            std::process::exit(1);
        }
    }
    println!("{}", serde_json::json!({ "stamps_us": stamps }));
}
