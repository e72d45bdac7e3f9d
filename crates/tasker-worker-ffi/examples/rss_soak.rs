//! RSS soak of `libtasker_worker.so` (the reliability suite's long form): one worker moves `RSS_EVENTS` events
//! (default 10 000 000) through one transport (`RSS_TRANSPORT`: `ring`, the default, or `ffi`) natively,
//! not under valgrind, while a sampler thread reads the process's resident set (`VmRSS`) and the
//! worker's completed count every 250 ms. The handler side plays TS in this process (as the TS worker
//! shares its process with the cdylib), so the RSS covers the worker core and the handler together.
//!
//! Prints RSS as each tenth of the run completes and fails (exit 1) if, over the last nine tenths (the
//! first is warm-up: the allocator's arenas, the ring's pages touched once), RSS moves by more than
//! `RSS_BOUND_MIB` (default 4 MiB; a steady leak of one byte per event moves it 8.6 MiB over those 9M
//! events of the default run). Every sample is taken with the worker running and the handler's view of
//! the region still mapped. Run by `scripts/rss-soak`; the library is found as in the leak driver.

use tasker_test_support::ffi as support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{answer_ring_events, api, env_u64, run_ffi_handler, Api, TempDir};
use tasker_ring::Region;

/// Generous: 10M events at the slowest measured rate (ffi, ~0.1 ms each) take under 20 minutes.
const TIMEOUT: Duration = Duration::from_secs(3 * 3600);
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// One sample: events completed so far and the resident set then.
#[derive(Clone, Copy)]
struct Sample {
    completed: u64,
    rss_kib: u64,
}

fn sample(api: &Api) -> Sample {
    let completed = api.metrics()["completed_count"].as_u64().unwrap_or(0);
    Sample {
        completed,
        rss_kib: rss_kib(),
    }
}

fn main() {
    let events = env_u64("RSS_EVENTS", 10_000_000);
    let bound_kib = env_u64("RSS_BOUND_MIB", 4) * 1024;
    let transport = std::env::var("RSS_TRANSPORT").unwrap_or_else(|_| "ring".to_owned());
    assert!(events >= 10, "RSS_EVENTS must be at least 10");
    let api = api();
    let dir = TempDir::new("rss");
    println!(
        "rss soak: {} ({events} events, {transport} transport, bound {} MiB)",
        api.path.display(),
        bound_kib / 1024
    );
    let config = match transport.as_str() {
        "ring" => format!(
            r#"{{"transport":"ring","log_level":"warn","log_stderr":false,"region_dir":{},"source":{{"kind":"synthetic","count":{events}}}}}"#,
            dir.json()
        ),
        "ffi" => format!(
            r#"{{"transport":"ffi","log_level":"warn","log_stderr":false,"source":{{"kind":"synthetic","count":{events}}}}}"#
        ),
        other => panic!("RSS_TRANSPORT={other:?}: expected ring or ffi"),
    };
    println!("  RSS before bootstrap: {:.1} MiB", mib(rss_kib()));
    let boot = api.bootstrap(&config);
    assert_eq!(boot["status"], "started", "{boot}");

    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut samples: Vec<Sample> = Vec::new();
            let started = Instant::now();
            let mut next_tenth = 1u64;
            // Pairs with the Release store in main once every event is completed; the flag guards no
            // other data, it only ends the loop.
            let print = |s: &Sample| {
                println!(
                    "  {:>10} events after {:>6.1?}: RSS {:.1} MiB",
                    s.completed,
                    started.elapsed(),
                    mib(s.rss_kib)
                );
            };
            // Pairs with the Release store in main once every event is completed; the flag guards no
            // other data, it only ends the loop.
            while !stop.load(Ordering::Acquire) {
                let s = sample(api);
                if next_tenth < 10 && s.completed >= events * next_tenth / 10 {
                    print(&s);
                    while next_tenth < 10 && s.completed >= events * next_tenth / 10 {
                        next_tenth += 1;
                    }
                }
                samples.push(s);
                std::thread::sleep(SAMPLE_EVERY);
            }
            let last = sample(api);
            print(&last);
            samples.push(last);
            samples
        })
    };

    let t = Instant::now();
    // The handler's view of the region stays mapped until after the last sample.
    let mut handler_view = None;
    let done = if transport == "ring" {
        let region_path = std::path::PathBuf::from(boot["region_path"].as_str().unwrap());
        let region = handler_view.insert(Region::attach(&region_path).expect("attach the worker's region"));
        answer_ring_events(region, events, TIMEOUT)
    } else {
        run_ffi_handler(api, events, TIMEOUT).0
    };
    api.wait_metrics(TIMEOUT, |m| m["completed_count"] == done);
    let elapsed = t.elapsed();
    // Pairs with the sampler's Acquire load: its last sample is taken now, with the worker running.
    stop.store(true, Ordering::Release);
    let samples = sampler.join().expect("sampler thread");
    api.stop();
    drop(handler_view);
    assert_eq!(done, events, "events lost");
    let m = api.metrics();
    assert_eq!(
        (&m["completed_count"], &m["refused_completions"]),
        (&done.into(), &0.into()),
        "{m}"
    );

    let warm: Vec<u64> = samples
        .iter()
        .filter(|s| s.completed >= events / 10)
        .map(|s| s.rss_kib)
        .collect();
    if warm.len() < 2 {
        eprintln!("rss soak: FAILED: the run was too short to sample after warm-up; raise RSS_EVENTS");
        std::process::exit(1);
    }
    let (lo, hi) = (*warm.iter().min().unwrap(), *warm.iter().max().unwrap());
    let (first, last) = (warm[0], warm[warm.len() - 1]);
    println!(
        "rss soak: {done} events in {:.1?} ({:.0} events/s); after warm-up RSS {:.1}-{:.1} MiB over {} samples, {:+.1} MiB first to last",
        elapsed,
        done as f64 / elapsed.as_secs_f64(),
        mib(lo),
        mib(hi),
        warm.len(),
        (last as f64 - first as f64) / 1024.0
    );
    if hi - lo > bound_kib {
        eprintln!(
            "rss soak: FAILED: RSS moved {:.1} MiB after warm-up (bound {} MiB)",
            mib(hi - lo),
            bound_kib / 1024
        );
        std::process::exit(1);
    }
    println!("rss soak: passed (RSS flat within {} MiB)", bound_kib / 1024);
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
