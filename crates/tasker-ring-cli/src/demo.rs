//! The demo: a Rust "worker" thread writes synthetic step events into the events ring (serialised straight
//! into shared memory) and drains completions; a "handler" thread (standing in for the TS side) reads every
//! ready event in place, parses it, and answers with a completion. Every event must come back exactly once.

use clap::Args;
use std::collections::HashSet;
use std::error::Error;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tasker_ring::layout::COMPLETION_ID_LEN;
use tasker_ring::{record_type, Region, RegionConfig, RingId, WriteError};
use tasker_worker_core::synthetic::{StepEventGenerator, COMPLETION_SUCCESS_FIXTURE};

/// Options of `tasker-ring demo`.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Number of step events to stream.
    #[arg(long, default_value_t = 200_000)]
    events: u64,
    /// Approximate size of each event's JSON in bytes (at least the 2.7 KB fixture).
    #[arg(long, default_value_t = 0)]
    event_bytes: usize,
    /// Directory for the region file (default /dev/shm on Linux).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Events ring capacity in bytes (a power of two).
    #[arg(long, default_value_t = 4 << 20)]
    capacity: u32,
}

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

pub fn run(args: &DemoArgs) -> Result<(), Box<dyn Error>> {
    let dir = args.dir.clone().unwrap_or_else(tasker_ring::default_dir);
    let path = dir.join(format!("tasker-demo-{}.ring", std::process::id()));
    let defaults = RegionConfig::default();
    let config = RegionConfig {
        events_capacity: args.capacity,
        // A frame is at most half the smaller ring: a small events ring gets small frames (the events
        // fragment), so every power of two the layout allows works.
        max_frame_size: defaults.max_frame_size.min(args.capacity / 2),
        ..defaults
    };
    let region = Arc::new(Region::create(&path, &config)?);
    println!(
        "region {} ({} bytes)",
        path.display(),
        region.layout().header.region_size
    );
    let outcome = stream(&region, args);
    region.unlink()?;
    let summary = outcome.map_err(|e| -> Box<dyn Error> { e.to_string().into() })?;
    println!("{summary}");
    Ok(())
}

fn stream(region: &Arc<Region>, args: &DemoArgs) -> Res<String> {
    let total = args.events;
    let done = Arc::new(AtomicBool::new(false));
    let handled = Arc::new(AtomicU64::new(0));
    let handler = {
        let (region, done, handled) = (Arc::clone(region), Arc::clone(&done), Arc::clone(&handled));
        std::thread::spawn(move || handle(&region, &done, &handled))
    };
    let started = Instant::now();
    let worker = work(region, args, &handled, started);
    done.store(true, Ordering::Release);
    let handler = handler.join().map_err(|_| "handler thread panicked")?;
    let (bytes, stalls) = worker?;
    handler?;
    let secs = started.elapsed().as_secs_f64();
    Ok(format!(
        "{total} events ({:.1} MB) out and {total} completions back in {secs:.2} s: {:.0} events/s, {:.0} MB/s; \
         ring-full stalls {stalls}",
        bytes as f64 / 1e6,
        total as f64 / secs,
        bytes as f64 / 1e6 / secs,
    ))
}

/// The Rust worker side: write events, drain completions, check each comes back once.
fn work(region: &Region, args: &DemoArgs, handled: &AtomicU64, started: Instant) -> Res<(u64, u64)> {
    let mut events = region.producer(RingId::Events)?;
    let mut completions = region.consumer(RingId::Completions)?;
    let mut generator = StepEventGenerator::new(args.event_bytes, std::process::id() as u64);
    let mut in_flight: HashSet<String> = HashSet::new();
    let (mut sent, mut stalls, mut last_report) = (0u64, 0u64, Instant::now());
    let mut bad: Option<String> = None;
    while sent < args.events || !in_flight.is_empty() {
        if sent < args.events {
            let (id, event) = generator.next_event();
            let written = events.try_write_with(record_type::STEP_EVENT, 2800, |w| {
                serde_json::to_writer(w, event).map_err(std::io::Error::other)
            });
            match written {
                Ok(()) => {
                    in_flight.insert(id);
                    sent += 1;
                }
                Err(WriteError::Full { .. }) => {
                    stalls += 1;
                    generator.rewind();
                }
                Err(e) => return Err(e.into()),
            }
        }
        completions.read_batch(1024, |m| {
            let id = std::str::from_utf8(&m.payload[..COMPLETION_ID_LEN.min(m.payload.len())]).unwrap_or("");
            if !in_flight.remove(id) && bad.is_none() {
                bad = Some(format!("completion for unknown or repeated event {id:?}"));
            }
        })?;
        if let Some(why) = bad.take() {
            return Err(why.into());
        }
        if last_report.elapsed() >= Duration::from_secs(1) {
            last_report = Instant::now();
            let n = handled.load(Ordering::Relaxed);
            eprintln!(
                "  {n}/{} handled, {:.0} events/s",
                args.events,
                n as f64 / started.elapsed().as_secs_f64()
            );
        }
        if sent == args.events && !in_flight.is_empty() {
            std::thread::yield_now();
        }
    }
    let ring = region.ring(RingId::Events);
    let bytes = tasker_ring::RingMemory::control(&ring)
        .producer_stats
        .bytes
        .load(Ordering::Relaxed);
    Ok((bytes, stalls))
}

/// The handler side (the TS worker's role): read events in place, parse, answer with a completion.
fn handle(region: &Region, done: &AtomicBool, handled: &AtomicU64) -> Res<()> {
    let mut events = region.consumer(RingId::Events)?;
    let mut completions = region.producer(RingId::Completions)?;
    let result: serde_json::Value = serde_json::from_str(COMPLETION_SUCCESS_FIXTURE)?;
    let mut failure: Option<Box<dyn Error + Send + Sync>> = None;
    let mut out = Vec::with_capacity(1024);
    loop {
        let n = events.read_batch(256, |m| {
            if failure.is_some() {
                return;
            }
            let event: serde_json::Value = match serde_json::from_slice(m.payload) {
                Ok(v) => v,
                Err(e) => return failure = Some(format!("event {} is not JSON: {e}", m.sequence).into()),
            };
            let id = event["event_id"].as_str().unwrap_or_default();
            out.clear();
            out.extend_from_slice(id.as_bytes());
            let mut reply = result.clone();
            reply["step_uuid"] = event["step_uuid"].clone();
            if let Err(e) = serde_json::to_writer(&mut out, &reply) {
                return failure = Some(e.into());
            }
            if let Err(e) = completions.write_blocking(record_type::COMPLETION, &out, Duration::from_secs(30)) {
                failure = Some(e.into());
            }
            handled.fetch_add(1, Ordering::Relaxed);
        })?;
        if let Some(e) = failure.take() {
            return Err(e);
        }
        if n == 0 {
            if done.load(Ordering::Acquire) {
                return Ok(());
            }
            std::thread::yield_now();
        }
    }
}
