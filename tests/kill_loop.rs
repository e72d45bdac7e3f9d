//! Kill loops (sled-style: this test binary re-executes itself as the child role). Each iteration SIGKILLs
//! one side of a fresh region at a random moment while messages stream, then checks the survivor:
//!
//! - **producer killed** (the parent reads): every message read is whole (checksum) and in order with no
//!   gap, including after a kill in the middle of a frame or of a fragmented message; the parent gets a
//!   typed `PeerDead` from `Consumer::check_producer` instead of waiting forever; a restarted producer
//!   takes the role over from the dead holder on the same region and the stream goes on from the next
//!   counter.
//! - **consumer killed** (the parent writes): `write_blocking` fails with `WriteError::PeerDead` instead of
//!   hanging; a restarted consumer takes the role over on the same region and reads every message from at
//!   or before the first one the dead consumer had not been handed (at-least-once) to the end, gapless.
//!
//! Detection time (kill to typed error) is printed as p50/p99/max; the assertion bound is generous (5 s).
//! `TASKER_KILL_ITERATIONS` (default 100; the long form runs 1000) and `TASKER_KILL_SEED` (printed).

mod support_stream;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support_stream::{check, payload};
use tasker_ring::{record_type, Region, RegionConfig, RingId, WriteError};

const ROLE: &str = "TASKER_KILL_ROLE";
const PATH: &str = "TASKER_KILL_PATH";
const START: &str = "TASKER_KILL_START";
const END: &str = "TASKER_KILL_END";
/// The generous bound on detecting a dead peer (the target is 1 s; the figure is printed).
const DETECTION_BOUND: Duration = Duration::from_secs(5);
/// Messages a restarted producer writes before it exits.
const AFTER_RESTART: u64 = 200;

fn iterations() -> u64 {
    std::env::var("TASKER_KILL_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100)
}

/// xorshift64*: reproducible kill points from a printed seed.
struct Rng(u64);

impl Rng {
    fn from_env(test: &str) -> Self {
        let seed = std::env::var("TASKER_KILL_SEED")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                let t = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                t.as_nanos() as u64 ^ u64::from(std::process::id())
            });
        println!("{test}: TASKER_KILL_SEED={seed}");
        Self(seed | 1)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Frames of 1 KiB, so one message in 64 spans up to 12 fragments and a kill often lands inside one.
fn config() -> RegionConfig {
    RegionConfig {
        events_capacity: 1 << 16,
        completions_capacity: 1 << 12,
        max_frame_size: 1024,
        max_message_size: 1 << 16,
        initial_position: 0,
    }
}

/// Child: takes the producer role (over a dead holder if need be) and writes from `START`, up to `END`
/// when given, else until killed.
fn writer(path: &Path) {
    let region = Region::attach(path).expect("attach");
    let mut producer = region.producer(RingId::Events).expect("producer role");
    let start = env_u64(START).unwrap_or(0);
    let end = env_u64(END).unwrap_or(u64::MAX);
    let mut buf = Vec::new();
    for i in start..end {
        payload(i, &mut buf);
        producer
            .write_blocking(record_type::STEP_EVENT, &buf, Duration::from_secs(60))
            .expect("write");
    }
}

/// Child: takes the consumer role (over a dead holder if need be), checks every message, prints
/// `delivered <counter>` as it hands each one over (before its position is released), and
/// `done first=<c0>` once it read `END - 1`.
fn reader(path: &Path) {
    let region = Region::attach(path).expect("attach");
    let mut consumer = region.consumer(RingId::Events).expect("consumer role");
    let end = env_u64(END);
    let mut first: Option<u64> = None;
    let mut next: Option<u64> = None;
    let started = Instant::now();
    loop {
        let got = consumer
            .read_batch(64, |m| {
                let counter = check(m.payload);
                if let Some(n) = next {
                    assert_eq!(counter, n, "gap or reorder");
                }
                first.get_or_insert(counter);
                next = Some(counter + 1);
                // A line per message, written (stdout is line-buffered) before the release.
                println!("delivered {counter}");
            })
            .expect("read");
        if got > 0 {
            if end.is_some_and(|e| next == Some(e)) {
                println!("done first={}", first.unwrap());
                return;
            }
        } else {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "reader stalled at {next:?}"
            );
            std::thread::yield_now();
        }
    }
}

#[test]
fn child_role() {
    let (Ok(role), Ok(path)) = (std::env::var(ROLE), std::env::var(PATH)) else {
        return;
    };
    match role.as_str() {
        "writer" => writer(Path::new(&path)),
        "reader" => reader(Path::new(&path)),
        other => panic!("unknown role {other}"),
    }
}

fn spawn(role: &str, path: &Path, start: Option<u64>, end: Option<u64>) -> Child {
    let mut c = Command::new(std::env::current_exe().unwrap());
    c.args(["--exact", "child_role", "--nocapture", "--test-threads=1"])
        .env(ROLE, role)
        .env(PATH, path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(s) = start {
        c.env(START, s.to_string());
    }
    if let Some(e) = end {
        c.env(END, e.to_string());
    }
    c.spawn().unwrap()
}

/// A fresh region per iteration, removed (file) when dropped.
struct Fresh {
    path: PathBuf,
    region: Region,
}

impl Fresh {
    fn new(tag: &str, i: u64) -> Self {
        let path = std::env::temp_dir().join(format!("tasker-kill-{tag}-{}-{i}.ring", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let region = Region::create(&path, &config()).unwrap();
        Self { path, region }
    }
}

impl Drop for Fresh {
    fn drop(&mut self) {
        let _ = self.region.unlink();
    }
}

/// The number after `key` in a line of the child's output (the harness may print before it on the line).
fn after(line: &str, key: &str) -> Option<u64> {
    let at = line.find(key)? + key.len();
    line[at..].trim().parse().ok()
}

/// The counter of a `delivered <counter>` line.
fn delivered(line: &str) -> Option<u64> {
    after(line, "delivered ")
}

/// p50 / p99 / max of detection times, for the log.
fn summary(mut d: Vec<Duration>) -> String {
    d.sort();
    let at = |q: f64| d[((d.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:?}, p99 {:?}, max {:?} over {} kills",
        at(0.5),
        at(0.99),
        at(1.0),
        d.len()
    )
}

fn finish(child: Child, what: &str) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{what} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn killing_the_producer_loses_nothing_published_and_a_restart_resumes() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let mut rng = Rng::from_env("producer kills");
    let mut detections = Vec::new();
    let mut mid_message = 0u64;
    for i in 0..iterations() {
        let fresh = Fresh::new("p", i);
        let mut consumer = fresh.region.consumer(RingId::Events).unwrap();
        let mut child = spawn("writer", &fresh.path, None, None);
        let mut next = 0u64;
        let read = |consumer: &mut tasker_ring::Consumer<_>, next: &mut u64| {
            consumer
                .read_batch(256, |m| {
                    assert_eq!(check(m.payload), *next, "gap or reorder");
                    *next += 1;
                })
                .unwrap_or_else(|e| panic!("iteration {i}: a torn or corrupt frame: {e}"))
        };
        // Read while the writer streams, for a random 0-30 ms after its first message, then kill it.
        let spawned = Instant::now();
        while next == 0 {
            read(&mut consumer, &mut next);
            assert!(spawned.elapsed() < Duration::from_secs(30), "the writer never wrote");
        }
        let kill_at = Instant::now() + Duration::from_micros(rng.below(30_000));
        while Instant::now() < kill_at {
            read(&mut consumer, &mut next);
        }
        child.kill().unwrap();
        let killed = Instant::now();
        // Not reaped yet (a zombie until `wait`): it must already count as dead.
        let detected = loop {
            if read(&mut consumer, &mut next) == 0 {
                if let Err(dead) = consumer.check_producer() {
                    assert_eq!(dead.pid, child.id());
                    break killed.elapsed();
                }
                assert!(
                    killed.elapsed() < DETECTION_BOUND,
                    "iteration {i}: no PeerDead after the kill"
                );
                std::thread::yield_now();
            }
        };
        detections.push(detected);
        // What it published before dying is still readable; a half-written frame never is.
        while read(&mut consumer, &mut next) > 0 {}
        let _ = child.wait();
        // Relaxed: this thread is the flag's only writer (the consumer); nothing else is read through it.
        let open = tasker_ring::RingMemory::control(&fresh.region.ring(RingId::Events))
            .consumer_stats
            .open_message
            .load(std::sync::atomic::Ordering::Relaxed);
        if open != 0 {
            // The producer died between fragments: the part read so far is never delivered.
            mid_message += 1;
        }
        // A restarted producer takes the dead holder's role on the same region and goes on.
        let restarted = spawn("writer", &fresh.path, Some(next), Some(next + AFTER_RESTART));
        let end = next + AFTER_RESTART;
        let since = Instant::now();
        while next < end {
            if read(&mut consumer, &mut next) == 0 {
                assert!(
                    since.elapsed() < Duration::from_secs(30),
                    "iteration {i}: stalled at {next}"
                );
                std::thread::yield_now();
            }
        }
        finish(restarted, "the restarted writer");
    }
    println!(
        "producer kills: consumer detected PeerDead {}; {mid_message} kills left a fragmented message open",
        summary(detections)
    );
}

#[test]
fn killing_the_consumer_fails_the_writer_and_a_restart_reads_on() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let mut rng = Rng::from_env("consumer kills");
    let mut detections = Vec::new();
    let mut redelivered = 0u64;
    for i in 0..iterations() {
        let fresh = Fresh::new("c", i);
        let mut producer = fresh.region.producer(RingId::Events).unwrap();
        let mut child = spawn("reader", &fresh.path, None, None);
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut buf = Vec::new();
        let mut written = 0u64;
        // Stream until the reader has been handed something, then for a random 0-30 ms more, then kill it.
        let mut line = String::new();
        payload(written, &mut buf);
        producer
            .write_blocking(record_type::STEP_EVENT, &buf, Duration::from_secs(30))
            .unwrap();
        written += 1;
        // The harness prints its own lines first ("running 1 test", then "test child_role ... " with no
        // newline before the test's own output).
        while delivered(&line).is_none() {
            line.clear();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let mut err = String::new();
                child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
                panic!(
                    "iteration {i}: the reader ended early: {}\n{err}",
                    child.wait().unwrap()
                );
            }
        }
        let kill_at = Instant::now() + Duration::from_micros(rng.below(30_000));
        while Instant::now() < kill_at {
            payload(written, &mut buf);
            match producer.try_write(record_type::STEP_EVENT, &buf) {
                Ok(()) => written += 1,
                Err(WriteError::Full { .. }) => std::thread::yield_now(),
                Err(e) => panic!("iteration {i}: {e}"),
            }
        }
        child.kill().unwrap();
        let killed = Instant::now();
        let detected = loop {
            payload(written, &mut buf);
            match producer.write_blocking(record_type::STEP_EVENT, &buf, DETECTION_BOUND) {
                Ok(()) => written += 1,
                Err(WriteError::PeerDead { pid }) => {
                    assert_eq!(pid, child.id());
                    break killed.elapsed();
                }
                Err(e) => panic!("iteration {i}: expected PeerDead, got {e}"),
            }
        };
        detections.push(detected);
        let _ = child.wait();
        let mut rest = String::new();
        stdout.read_to_string(&mut rest).unwrap();
        let last_delivered = format!("{line}{rest}").lines().filter_map(delivered).max().unwrap();
        // A restarted consumer takes the role over and reads to the last message written.
        let restarted = spawn("reader", &fresh.path, None, Some(written));
        let out = finish(restarted, "the restarted reader");
        let first: u64 = out
            .lines()
            .find_map(|l| after(l, "done first="))
            .unwrap_or_else(|| panic!("iteration {i}: no done line in {out}"));
        assert!(
            first <= last_delivered + 1,
            "iteration {i}: the restart began at {first}, after {}, the first message the dead reader was \
             never handed: lost",
            last_delivered + 1
        );
        redelivered += last_delivered + 1 - first;
    }
    println!(
        "consumer kills: writer got PeerDead {}; {redelivered} messages delivered again after restarts",
        summary(detections)
    );
}
