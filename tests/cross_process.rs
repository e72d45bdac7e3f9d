//! Two processes, one region: the test binary re-executes itself as a writer and a reader. The writer
//! sends 1M frames of random sizes (some fragmented) carrying a counter and a checksum; the reader checks a
//! gapless, intact stream. Positions start just below 2^32 so they wrap during the run.
//!
//! `TASKER_RING_XPROC_FRAMES` overrides the frame count.

mod support_stream;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support_stream::{check, payload};
use tasker_ring::{record_type, Region, RegionConfig, RingId};

const ROLE: &str = "TASKER_RING_XPROC_ROLE";
const PATH: &str = "TASKER_RING_XPROC_PATH";
const FRAMES: &str = "TASKER_RING_XPROC_FRAMES";

fn frame_count() -> u64 {
    std::env::var(FRAMES)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000)
}

fn writer(path: &Path, n: u64) {
    let region = Region::attach(path).expect("attach");
    let mut producer = region.producer(RingId::Events).expect("producer role");
    let mut buf = Vec::new();
    for i in 0..n {
        payload(i, &mut buf);
        producer
            .write_blocking(record_type::STEP_EVENT, &buf, Duration::from_secs(60))
            .expect("write");
    }
}

fn reader(path: &Path, n: u64) {
    let region = Region::attach(path).expect("attach");
    let mut consumer = region.consumer(RingId::Events).expect("consumer role");
    let mut expected = 0u64;
    let mut last_progress = Instant::now();
    let mut fragmented = 0u64;
    while expected < n {
        let got = consumer
            .read_batch(256, |m| {
                let p = m.payload;
                assert_eq!(check(p), expected, "gap or reorder");
                if p.len() > 4000 {
                    fragmented += 1;
                }
                expected += 1;
            })
            .expect("read");
        if got == 0 {
            assert!(
                last_progress.elapsed() < Duration::from_secs(60),
                "stalled at message {expected}"
            );
            std::thread::yield_now();
        } else {
            last_progress = Instant::now();
        }
    }
    assert!(fragmented > 0, "the run must include fragmented messages");
    println!("reader: {n} messages intact and gapless, {fragmented} fragmented");
}

#[test]
fn child_role() {
    let (Ok(role), Ok(path)) = (std::env::var(ROLE), std::env::var(PATH)) else {
        return;
    };
    let path = PathBuf::from(path);
    match role.as_str() {
        "writer" => writer(&path, frame_count()),
        "reader" => reader(&path, frame_count()),
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, path: &Path) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn a_million_frames_cross_processes_intact() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let path = tasker_ring::default_dir().join(format!("tasker-ring-xproc-{}.ring", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = RegionConfig {
        events_capacity: 1 << 16,
        completions_capacity: 1 << 12,
        max_frame_size: 2048,
        max_message_size: 1 << 20,
        initial_position: u32::MAX - 4095,
    };
    let region = Region::create(&path, &config).unwrap();
    let started = Instant::now();
    let reader = spawn("reader", &path);
    let writer = spawn("writer", &path);
    let w = writer.wait_with_output().unwrap();
    let r = reader.wait_with_output().unwrap();
    region.unlink().unwrap();
    assert!(w.status.success(), "writer failed: {w:?}");
    assert!(r.status.success(), "reader failed: {r:?}");
    let out = String::from_utf8_lossy(&r.stdout);
    assert!(out.contains("intact and gapless"), "{out}");
    let ctl = region.ring(RingId::Events);
    let head = tasker_ring::RingMemory::control(&ctl)
        .producer_position
        .value
        .load(std::sync::atomic::Ordering::Acquire);
    assert!(head < config.initial_position, "positions wrapped past 2^32");
    println!("{} frames in {:?}", frame_count(), started.elapsed());
}
