#![allow(missing_docs)] // criterion_group! generates an undocumented pub fn
//! Cross-thread throughput of one ring: `tasker-ring` against `rtrb` and `crossbeam-channel`.
//!
//! What is measured: one producer thread sends N messages of a fixed payload to a consumer on the
//! bench thread, which receives all N. Criterion reports time per message and payload GiB/s
//! (`Throughput::Bytes` counts payload bytes only, not frame headers or length prefixes).
//!
//! Payloads: 64 B, the `fixtures/step-event.json` fixture compacted with serde_json (2734 B, a real
//! step event) and 64 KiB (a single frame: the region's max frame is 64 KiB + the 16-byte header).
//!
//! Implementations, all carrying the same bytes through the same buffer size (`RING_BYTES`):
//! - `tasker_ring`: a real region (a file in `/dev/shm`, or the temp dir if absent, named uniquely per
//!   run and unlinked when the run ends), events ring. The producer calls `Producer::try_write`; the
//!   consumer calls `Consumer::read_batch` to drain every ready message per check, as the TS poller will.
//! - `rtrb`: a `RingBuffer<u8>` used as a byte stream. The producer reserves `4 + len` bytes with
//!   `write_chunk_uninit`, copies a little-endian u32 length and the payload, and commits once; the
//!   consumer peeks the length with `read_chunk(4)`, then takes `read_chunk(4 + len)` and commits it.
//! - `crossbeam`: a bounded channel of `Vec<u8>` holding `RING_BYTES / len` messages (the same bytes in
//!   flight). The producer allocates a fresh `Vec` per message (`to_vec`); the consumer receives it and
//!   drops it after reading.
//!
//! Consumer work is the same for all three: each payload is copied out into a reusable scratch buffer
//! (as the TS side copies out of shared memory before decoding), its length and last byte are checked,
//! and the buffer is passed through `black_box`. Both sides poll without blocking (`try_*`) and back off
//! the same way when the ring is full or empty: spin briefly, then `yield_now`.
//!
//! Threads: the region and the rtrb ring, each with its own pinned producer thread, live for the whole
//! run (the crossbeam channel, whose capacity depends on the payload, is built per case). Each sample
//! hands its producer a job (payload, N) over a control channel, so no thread is spawned inside a
//! sample; the clock starts just before the job is sent and stops when the consumer has the last
//! message, so the producer's wake-up (microseconds) is inside the sample but negligible next to it
//! (milliseconds). On Linux with two or more CPUs the bench thread is pinned to the first allowed CPU
//! and producers to the second: every case measures a cross-core hand-off (as between the worker and
//! the TS process), never two threads time-sharing one core. Keeping the buffers for the whole run also
//! keeps one implementation from being measured on freshly touched memory while another is not: on a VM a
//! new buffer can run several times slower for its first seconds (BENCHMARKS.md, "Noise").
//!
//! Results depend heavily on the core-to-core path (same CCX or not, VM or bare metal): compare
//! implementations within one run, not across machines.

mod common;

use common::{cases, copy_into, pin_to, skip, Case, Group, RegionFile, Sink, CONSUMER_CPU, PRODUCER_CPU, RING_BYTES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use rtrb::RingBuffer;
use std::hint::spin_loop;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Consumer, MappedRing, RingId, WriteError};

/// Backoff shared by every producer and consumer: spin a little, then yield the core.
struct Spin(u32);

impl Spin {
    fn new() -> Self {
        Self(0)
    }

    fn wait(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            spin_loop();
        } else {
            thread::yield_now();
        }
    }

    fn reset(&mut self) {
        self.0 = 0;
    }
}

/// One sample's request to a producer thread: send this payload this many times.
type Job = (Arc<[u8]>, u64);

/// A long-lived producer thread, pinned, that runs one [`Job`] each time it is handed one.
struct Feeder {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    fn spawn(mut send: impl FnMut(&[u8], u64) + Send + 'static) -> Self {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name("bench-producer".into())
            .spawn(move || {
                pin_to(PRODUCER_CPU);
                while let Ok((payload, n)) = rx.recv() {
                    send(&payload, n);
                }
            })
            .expect("spawn producer");
        Self {
            jobs: Some(tx),
            thread: Some(thread),
        }
    }

    /// Starts the clock, asks for `n` copies of `payload`, runs `receive_n(n)` and stops the clock.
    fn run(&self, payload: &Arc<[u8]>, n: u64, receive_n: impl FnOnce(u64)) -> Duration {
        let start = Instant::now();
        let jobs = self.jobs.as_ref().expect("feeder running");
        jobs.send((Arc::clone(payload), n)).expect("producer alive");
        receive_n(n);
        start.elapsed()
    }
}

impl Drop for Feeder {
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(thread) = self.thread.take() {
            if thread.join().is_err() && !thread::panicking() {
                panic!("producer thread panicked");
            }
        }
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
        let file = RegionFile::create("tasker-ring-bench");
        let consumer = file.region.consumer(RingId::Events).expect("consumer role");
        let mut producer = file.region.producer(RingId::Events).expect("producer role");
        let feeder = Feeder::spawn(move |payload, n| {
            let mut spin = Spin::new();
            for _ in 0..n {
                loop {
                    match producer.try_write(record_type::STEP_EVENT, payload) {
                        Ok(()) => break,
                        Err(WriteError::Full { .. }) => spin.wait(),
                        Err(e) => panic!("try_write: {e}"),
                    }
                }
                spin.reset();
            }
        });
        Self {
            feeder,
            consumer,
            _file: file,
        }
    }

    fn bench(&mut self, group: &mut Group<'_>, case: &Case) {
        let mut sink = Sink::new(&case.payload);
        let Self { feeder, consumer, .. } = self;
        group.bench_function(BenchmarkId::new("tasker_ring", &case.name), |b| {
            b.iter_custom(|iters| {
                feeder.run(&case.payload, iters, |n| {
                    let mut spin = Spin::new();
                    let mut got = 0u64;
                    while got < n {
                        let max = usize::try_from(n - got).unwrap_or(usize::MAX);
                        let k = consumer
                            .read_batch(max, |m| sink.take(m.payload, &[]))
                            .expect("read_batch");
                        if k == 0 {
                            spin.wait();
                        } else {
                            spin.reset();
                            got += k as u64;
                        }
                    }
                })
            })
        });
    }
}

/// An rtrb byte ring of the same capacity, for the whole run.
struct Rtrb {
    feeder: Feeder,
    consumer: rtrb::Consumer<u8>,
}

impl Rtrb {
    fn new() -> Self {
        let (mut producer, consumer) = RingBuffer::<u8>::new(RING_BYTES as usize);
        let feeder = Feeder::spawn(move |payload, n| {
            let prefix = u32::try_from(payload.len()).expect("payload fits u32").to_le_bytes();
            let total = prefix.len() + payload.len();
            let mut spin = Spin::new();
            for _ in 0..n {
                loop {
                    match producer.write_chunk_uninit(total) {
                        Ok(mut chunk) => {
                            let (first, second) = chunk.as_mut_slices();
                            copy_into(first, second, 0, &prefix);
                            copy_into(first, second, prefix.len(), payload);
                            // SAFETY: the two copies above initialised all `total` slots of the chunk.
                            unsafe { chunk.commit_all() };
                            break;
                        }
                        Err(_) => spin.wait(),
                    }
                }
                spin.reset();
            }
        });
        Self { feeder, consumer }
    }

    fn bench(&mut self, group: &mut Group<'_>, case: &Case) {
        let mut sink = Sink::new(&case.payload);
        let Self { feeder, consumer } = self;
        group.bench_function(BenchmarkId::new("rtrb", &case.name), |b| {
            b.iter_custom(|iters| {
                feeder.run(&case.payload, iters, |n| {
                    let mut spin = Spin::new();
                    let mut got = 0u64;
                    while got < n {
                        // Peek the length prefix (a chunk dropped without commit consumes nothing).
                        let len = match consumer.read_chunk(4) {
                            Ok(chunk) => {
                                let (first, second) = chunk.as_slices();
                                let mut prefix = [0u8; 4];
                                prefix[..first.len()].copy_from_slice(first);
                                prefix[first.len()..].copy_from_slice(second);
                                u32::from_le_bytes(prefix) as usize
                            }
                            Err(_) => {
                                spin.wait();
                                continue;
                            }
                        };
                        spin.reset();
                        let chunk = consumer
                            .read_chunk(4 + len)
                            .expect("prefix and payload are committed together");
                        let (first, second) = chunk.as_slices();
                        let (first, second) = skip(first, second, 4);
                        sink.take(first, second);
                        chunk.commit_all();
                        got += 1;
                    }
                })
            })
        });
    }
}

/// A bounded crossbeam channel holding `RING_BYTES` of this case's payloads (built per case).
fn bench_crossbeam(group: &mut Group<'_>, case: &Case) {
    let slots = (RING_BYTES as usize / case.payload.len()).max(1);
    let (tx, rx) = crossbeam_channel::bounded::<Vec<u8>>(slots);
    let feeder = Feeder::spawn(move |payload, n| {
        let mut spin = Spin::new();
        for _ in 0..n {
            let mut msg = payload.to_vec();
            loop {
                match tx.try_send(msg) {
                    Ok(()) => break,
                    Err(crossbeam_channel::TrySendError::Full(back)) => {
                        msg = back;
                        spin.wait();
                    }
                    Err(e) => panic!("try_send: {e}"),
                }
            }
            spin.reset();
        }
    });
    let mut sink = Sink::new(&case.payload);
    group.bench_function(BenchmarkId::new("crossbeam", &case.name), |b| {
        b.iter_custom(|iters| {
            feeder.run(&case.payload, iters, |n| {
                let mut spin = Spin::new();
                let mut got = 0u64;
                while got < n {
                    match rx.try_recv() {
                        Ok(msg) => {
                            spin.reset();
                            sink.take(&msg, &[]);
                            got += 1;
                        }
                        Err(crossbeam_channel::TryRecvError::Empty) => spin.wait(),
                        Err(e) => panic!("try_recv: {e}"),
                    }
                }
            })
        })
    });
}

fn throughput(c: &mut Criterion) {
    pin_to(CONSUMER_CPU);
    let mut ours = Ours::new();
    let mut rtrb = Rtrb::new();
    let mut group = c.benchmark_group("throughput");
    for case in cases() {
        group.throughput(Throughput::Bytes(case.payload.len() as u64));
        ours.bench(&mut group, &case);
        rtrb.bench(&mut group, &case);
        bench_crossbeam(&mut group, &case);
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1))
        .sample_size(20);
    targets = throughput
}
criterion_main!(benches);
