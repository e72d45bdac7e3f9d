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
#[path = "common/stream.rs"]
mod stream;

use common::{cases, pin_to, Case, Group, Sink, CONSUMER_CPU, RING_BYTES};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;
use stream::{Feeder, Ours, Rtrb, Spin};

fn bench_ours(ours: &mut Ours, group: &mut Group<'_>, case: &Case) {
    let mut sink = Sink::new(&case.payload);
    group.bench_function(BenchmarkId::new("tasker_ring", &case.name), |b| {
        b.iter_custom(|iters| ours.round(&case.payload, iters, &mut sink))
    });
}

fn bench_rtrb(rtrb: &mut Rtrb, group: &mut Group<'_>, case: &Case) {
    let mut sink = Sink::new(&case.payload);
    group.bench_function(BenchmarkId::new("rtrb", &case.name), |b| {
        b.iter_custom(|iters| rtrb.round(&case.payload, iters, &mut sink))
    });
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
        bench_ours(&mut ours, &mut group, &case);
        bench_rtrb(&mut rtrb, &mut group, &case);
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
