#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn
//! One-way cross-thread latency of one ring: `tasker-ring` against `rtrb` and `crossbeam-channel`.
//!
//! The companion of `benches/throughput.rs`: same three implementations, same payloads (same case names),
//! same buffer size, same pinning, so the two benches line up. Where throughput keeps the ring full and
//! lets the consumer drain backlogs, this bench keeps exactly one message in flight and times each one.
//!
//! What is measured, per message: from the moment the producer thread reads the clock (before it writes
//! the message into the transport) to the moment the consumer thread, busy-polling, has copied the whole
//! payload out, checked it and released it, then reads the clock again. Both clocks are `Instant`s
//! measured from one shared base (`now_ns`), so the difference is a one-way latency across cores.
//!
//! - The producer keeps a copy of the case's payload; for each message it writes a send timestamp (bytes
//!   0..8, nanoseconds since the base) and a sequence number (bytes 8..16) into that copy, then sends it
//!   exactly as `throughput.rs` does (`Producer::try_write` / an rtrb chunk with a length prefix / a fresh
//!   `Vec` into a bounded crossbeam channel): the copy into the transport is part of the latency.
//! - It does not send the next message until the consumer has taken the previous one (the consumer bumps
//!   an atomic counter the producer polls), so nothing ever queues: each figure is pure one-way latency,
//!   not time spent behind earlier messages.
//! - The consumer copies every payload into a scratch buffer (as the TS side copies out of shared memory),
//!   checks its length, last byte and sequence number, and only then reads the clock.
//!
//! Criterion's figure is the mean one-way latency (`iter_custom` returns the sum of the `iters`
//! latencies). Every latency is also recorded in an HDR histogram per (implementation, case), across all
//! of criterion's calls (warm-up included); after the group, p50/p99/max are printed and, in a real
//! `cargo bench` run, written to `target/criterion/latency/<impl>/<case>/percentiles.json`
//! (`scripts/bench-report` prints the table). Criterion's test mode (`cargo test --release
//! --bench latency`) sends one message per case and prints the percentiles without writing them.
//!
//! Threads: as in `throughput.rs`, the bench thread (the consumer) is pinned to the first allowed CPU and
//! each long-lived producer thread to the second; regions, rings and producer threads are built outside
//! the timed part (the crossbeam channel and its producer once per case). Both sides busy-poll; only after
//! a long spin (`SPIN_LIMIT`) do they yield the core, so a host with a single CPU still makes progress.
//!
//! Results depend heavily on the core-to-core path (same CCX or not, VM or bare metal): compare
//! implementations within one run, not across machines.

mod common;

use common::{
    cases, copy_into, pin_to, rtrb_take, Case, Group, RegionFile, Sink, CONSUMER_CPU, PRODUCER_CPU, RING_BYTES,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use hdrhistogram::Histogram;
use rtrb::RingBuffer;
use std::hint::spin_loop;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Consumer, MappedRing, RingId, WriteError};

/// Bytes of each payload the producer overwrites per message: send timestamp, then sequence number.
const STAMP_BYTES: usize = 16;
/// Polls spent spinning before a waiting thread starts yielding its core (tens of microseconds, far
/// longer than one hand-off, so on two CPUs a waiting side never sleeps while a message is in flight).
const SPIN_LIMIT: u32 = 1 << 12;

/// Nanoseconds since a base `Instant` shared by every thread (set on first use, in `latency` before any
/// thread is spawned). `Instant` is the monotonic clock, the same on every CPU.
fn now_ns() -> u64 {
    static BASE: OnceLock<Instant> = OnceLock::new();
    u64::try_from(BASE.get_or_init(Instant::now).elapsed().as_nanos()).expect("fits u64")
}

/// Busy-poll backoff: spin `SPIN_LIMIT` times, then yield the core on every further poll.
struct Poll(u32);

impl Poll {
    fn new() -> Self {
        Self(0)
    }

    /// Waits a little; returns `true` once it has started yielding (a hint to check on the peer).
    fn wait(&mut self) -> bool {
        if self.0 < SPIN_LIMIT {
            self.0 += 1;
            spin_loop();
            false
        } else {
            thread::yield_now();
            true
        }
    }
}

/// Hand-off state shared by one producer thread and the consumer.
struct Pace {
    /// Messages the consumer has taken so far (written by the consumer only).
    taken: AtomicU64,
    /// Set when the feeder is dropped, so a producer stuck waiting (the consumer panicked) gives up.
    stop: AtomicBool,
}

impl Pace {
    fn stopped(&self) -> bool {
        // Acquire: pairs with the Release store in `Feeder::drop`.
        self.stop.load(Ordering::Acquire)
    }
}

/// One sample's request to a producer thread: send this payload this many times.
type Job = (Arc<[u8]>, u64);

/// A long-lived producer thread, pinned, that sends one paced, stamped message at a time.
struct Feeder {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
    pace: Arc<Pace>,
    /// The consumer's count of messages taken (its copy of `pace.taken`).
    taken: u64,
}

impl Feeder {
    /// Spawns the producer; `try_send` sends one message if there is room and says whether it did.
    fn spawn(mut try_send: impl FnMut(&[u8]) -> bool + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let pace = Arc::new(Pace {
            taken: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&pace);
        let thread = thread::Builder::new()
            .name("bench-producer".into())
            .spawn(move || {
                pin_to(PRODUCER_CPU);
                let pace = shared;
                let mut msg = Vec::new();
                let mut sent = 0u64;
                while let Ok((payload, n)) = rx.recv() {
                    msg.clear();
                    msg.extend_from_slice(&payload);
                    for _ in 0..n {
                        let mut poll = Poll::new();
                        // Acquire: pairs with the consumer's Release store of `taken` in `Feeder::run`.
                        while pace.taken.load(Ordering::Acquire) < sent {
                            if pace.stopped() {
                                return;
                            }
                            poll.wait();
                        }
                        msg[8..STAMP_BYTES].copy_from_slice(&sent.to_le_bytes());
                        msg[..8].copy_from_slice(&now_ns().to_le_bytes());
                        let mut poll = Poll::new();
                        while !try_send(&msg) {
                            if pace.stopped() {
                                return;
                            }
                            poll.wait();
                        }
                        sent += 1;
                    }
                }
            })
            .expect("spawn producer");
        Self {
            jobs: Some(tx),
            thread: Some(thread),
            pace,
            taken: 0,
        }
    }

    /// Asks for `n` copies of `payload` and takes them with `try_take` (which fills `sink` and says
    /// whether a message was there), recording each one-way latency in `hist`. Returns their sum.
    fn run(
        &mut self,
        payload: &Arc<[u8]>,
        n: u64,
        sink: &mut Sink,
        hist: &mut Histogram<u64>,
        mut try_take: impl FnMut(&mut Sink) -> bool,
    ) -> Duration {
        let jobs = self.jobs.as_ref().expect("feeder running");
        jobs.send((Arc::clone(payload), n)).expect("producer alive");
        let mut total = 0u64;
        for _ in 0..n {
            let mut poll = Poll::new();
            while !try_take(sink) {
                if poll.wait() {
                    let thread = self.thread.as_ref().expect("feeder running");
                    assert!(!thread.is_finished(), "producer thread exited");
                }
            }
            let now = now_ns();
            let (stamp, seq) = stamp(sink);
            assert_eq!(seq, self.taken, "message sequence");
            let latency = now.checked_sub(stamp).expect("send stamp not after receipt");
            total += latency;
            hist.saturating_record(latency);
            self.taken += 1;
            // Release: pairs with the producer's Acquire load of `taken` before it sends the next message.
            self.pace.taken.store(self.taken, Ordering::Release);
        }
        Duration::from_nanos(total)
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        // Release: pairs with the Acquire load in `Pace::stopped`.
        self.pace.stop.store(true, Ordering::Release);
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !thread::panicking() {
                panic!("producer thread panicked");
            }
        }
    }
}

/// Latencies of every (implementation, case) run, in the order they ran.
struct Latencies(Vec<(&'static str, String, Histogram<u64>)>);

impl Latencies {
    /// The histogram of `imp` on `case`, created empty (1 ns to 60 s, 3 significant digits) on first use.
    fn of(&mut self, imp: &'static str, case: &Case) -> &mut Histogram<u64> {
        let at = match self.0.iter().position(|(i, c, _)| *i == imp && *c == case.name) {
            Some(at) => at,
            None => {
                let hist = Histogram::new_with_bounds(1, 60_000_000_000, 3).expect("histogram bounds");
                self.0.push((imp, case.name.clone(), hist));
                self.0.len() - 1
            }
        };
        &mut self.0[at].2
    }
}

/// The region's events ring, for the whole run. Fields drop in order: the producer thread is joined, the
/// consumer role released, then the file unlinked.
struct Ours {
    feeder: Feeder,
    consumer: Consumer<MappedRing>,
    _file: RegionFile,
}

impl Ours {
    fn new() -> Self {
        let file = RegionFile::create("tasker-ring-latency-bench");
        let consumer = file.region.consumer(RingId::Events).expect("consumer role");
        let mut producer = file.region.producer(RingId::Events).expect("producer role");
        let feeder = Feeder::spawn(move |msg| match producer.try_write(record_type::STEP_EVENT, msg) {
            Ok(()) => true,
            Err(WriteError::Full { .. }) => false,
            Err(e) => panic!("try_write: {e}"),
        });
        Self {
            feeder,
            consumer,
            _file: file,
        }
    }

    fn bench(&mut self, group: &mut Group<'_>, case: &Case, hist: &mut Histogram<u64>) {
        let mut sink = Sink::new(&case.payload);
        let Self { feeder, consumer, .. } = self;
        group.bench_function(BenchmarkId::new("tasker_ring", &case.name), |b| {
            b.iter_custom(|iters| {
                feeder.run(&case.payload, iters, &mut sink, hist, |sink| {
                    consumer
                        .read_batch(1, |m| sink.take(m.payload, &[]))
                        .expect("read_batch")
                        == 1
                })
            })
        });
    }
}

/// An rtrb byte ring of the same capacity, for the whole run: 4-byte length prefix + payload per message.
struct Rtrb {
    feeder: Feeder,
    consumer: rtrb::Consumer<u8>,
}

impl Rtrb {
    fn new() -> Self {
        let (mut producer, consumer) = RingBuffer::<u8>::new(RING_BYTES as usize);
        let feeder = Feeder::spawn(move |msg| {
            let prefix = u32::try_from(msg.len()).expect("payload fits u32").to_le_bytes();
            match producer.write_chunk_uninit(prefix.len() + msg.len()) {
                Ok(mut chunk) => {
                    let (first, second) = chunk.as_mut_slices();
                    copy_into(first, second, 0, &prefix);
                    copy_into(first, second, prefix.len(), msg);
                    // SAFETY: the two copies above initialised every slot of the chunk.
                    unsafe { chunk.commit_all() };
                    true
                }
                Err(_) => false,
            }
        });
        Self { feeder, consumer }
    }

    fn bench(&mut self, group: &mut Group<'_>, case: &Case, hist: &mut Histogram<u64>) {
        let mut sink = Sink::new(&case.payload);
        let Self { feeder, consumer } = self;
        group.bench_function(BenchmarkId::new("rtrb", &case.name), |b| {
            b.iter_custom(|iters| feeder.run(&case.payload, iters, &mut sink, hist, |sink| rtrb_take(consumer, sink)))
        });
    }
}

/// A bounded crossbeam channel holding `RING_BYTES` of this case's payloads (built per case, with its
/// producer thread, outside the timed part); one fresh `Vec` per message.
fn bench_crossbeam(group: &mut Group<'_>, case: &Case, hist: &mut Histogram<u64>) {
    let slots = (RING_BYTES as usize / case.payload.len()).max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(slots);
    let mut feeder = Feeder::spawn(move |msg| match tx.try_send(msg.to_vec()) {
        Ok(()) => true,
        Err(crossbeam_channel::TrySendError::Full(_)) => false,
        Err(e) => panic!("try_send: {e}"),
    });
    let mut sink = Sink::new(&case.payload);
    group.bench_function(BenchmarkId::new("crossbeam", &case.name), |b| {
        b.iter_custom(|iters| {
            feeder.run(&case.payload, iters, &mut sink, hist, |sink| match rx.try_recv() {
                Ok(msg) => {
                    sink.take(&msg, &[]);
                    true
                }
                Err(crossbeam_channel::TryRecvError::Empty) => false,
                Err(e) => panic!("try_recv: {e}"),
            })
        })
    });
}

/// Whether criterion is taking measurements (`cargo bench`), as opposed to its test mode (`cargo test`
/// runs bench binaries without `--bench`; `--test` forces it), `--list` or `--profile-time`: only then
/// are percentiles written, so a quick check never overwrites a real run's.
fn measuring() -> bool {
    let args: Vec<String> = std::env::args().collect();
    let has = |flag: &str| args.iter().any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    has("--bench") && !has("--test") && !has("--list") && !has("--profile-time")
}

/// Criterion's output directory, found as criterion finds it: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `criterion` in the target dir holding this bench binary (the
/// nearest ancestor with cargo's `CACHEDIR.TAG`), else `target/criterion`.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return home.into();
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|dir| dir.join("CACHEDIR.TAG").is_file())
                .map(|dir| dir.join("criterion"))
        })
        .unwrap_or_else(|| PathBuf::from("target/criterion"))
}

/// Prints p50/p99/max of every histogram that recorded something and, when measuring, writes them to
/// `<criterion dir>/latency/<impl>/<case>/percentiles.json`.
fn report(latencies: &Latencies) {
    let write = measuring();
    let dir = criterion_dir().join("latency");
    println!("one-way latency (every message of every criterion call, warm-up included):");
    println!(
        "{:<12} {:<18} {:>10} {:>10} {:>12} {:>10}",
        "impl", "case", "p50 ns", "p99 ns", "max ns", "messages"
    );
    for (imp, case, hist) in &latencies.0 {
        if hist.is_empty() {
            continue;
        }
        let (p50, p99, max, count) = (
            hist.value_at_quantile(0.5),
            hist.value_at_quantile(0.99),
            hist.max(),
            hist.len(),
        );
        println!("{imp:<12} {case:<18} {p50:>10} {p99:>10} {max:>12} {count:>10}");
        if write {
            let at = dir.join(imp).join(case);
            let json = serde_json::json!({ "p50_ns": p50, "p99_ns": p99, "max_ns": max, "count": count });
            let written = std::fs::create_dir_all(&at)
                .and_then(|()| std::fs::write(at.join("percentiles.json"), format!("{json}\n")));
            if let Err(e) = written {
                eprintln!("could not write {}: {e}", at.join("percentiles.json").display());
            }
        }
    }
    if write {
        println!("percentiles written under {}", dir.display());
    }
}

fn latency(c: &mut Criterion) {
    now_ns(); // fixes the shared clock base before any producer starts
    pin_to(CONSUMER_CPU);
    let mut ours = Ours::new();
    let mut rtrb = Rtrb::new();
    let mut latencies = Latencies(Vec::new());
    let mut group = c.benchmark_group("latency");
    for case in cases() {
        ours.bench(&mut group, &case, latencies.of("tasker_ring", &case));
        rtrb.bench(&mut group, &case, latencies.of("rtrb", &case));
        bench_crossbeam(&mut group, &case, latencies.of("crossbeam", &case));
    }
    group.finish();
    drop((ours, rtrb));
    report(&latencies);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(4))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(50);
    targets = latency
}
criterion_main!(benches);

/// The send timestamp and sequence number of the payload a [`Sink`] last took (its first 16 bytes).
fn stamp(sink: &Sink) -> (u64, u64) {
    let word = |at: usize| u64::from_le_bytes(sink.scratch[at..at + 8].try_into().expect("8 bytes"));
    (word(0), word(8))
}
