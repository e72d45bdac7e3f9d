//! The streaming loops `throughput.rs` and `rtrb_parity.rs` share: one long-lived pinned producer thread per
//! implementation, handed jobs (payload, N) over a control channel, and the consumer loop on the bench thread.
//! Both benches time exactly this code, so their figures for `tasker_ring` and `rtrb` are the same measure.

use crate::common::{copy_into, pin_to, rtrb_take, RegionFile, Sink, PRODUCER_CPU, RING_BYTES};
use rtrb::RingBuffer;
use std::hint::spin_loop;
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};
use tasker_ring::{record_type, Consumer, MappedRing, RingId, WriteError};

/// Backoff shared by every producer and consumer: spin a little, then yield the core.
pub struct Spin(u32);

impl Spin {
    pub fn new() -> Self {
        Self(0)
    }

    pub fn wait(&mut self) {
        if self.0 < 64 {
            self.0 += 1;
            spin_loop();
        } else {
            thread::yield_now();
        }
    }

    pub fn reset(&mut self) {
        self.0 = 0;
    }
}

/// One sample's request to a producer thread: send this payload this many times.
type Job = (Arc<[u8]>, u64);

/// A long-lived producer thread, pinned, that runs one [`Job`] each time it is handed one.
pub struct Feeder {
    jobs: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

impl Feeder {
    pub fn spawn(mut send: impl FnMut(&[u8], u64) + Send + 'static) -> Self {
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
    pub fn run(&self, payload: &Arc<[u8]>, n: u64, receive_n: impl FnOnce(u64)) -> Duration {
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
pub struct Ours {
    feeder: Feeder,
    consumer: Consumer<MappedRing>,
    _file: RegionFile,
}

impl Ours {
    pub fn new() -> Self {
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

    /// Streams `n` copies of `payload` through the ring; returns the elapsed time. The producer calls
    /// `Producer::try_write`; the consumer drains every ready message per check with `Consumer::read_batch`.
    pub fn round(&mut self, payload: &Arc<[u8]>, n: u64, sink: &mut Sink) -> Duration {
        let Self { feeder, consumer, .. } = self;
        feeder.run(payload, n, |n| {
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
    }
}

/// An rtrb byte ring of the same capacity, for the whole run.
pub struct Rtrb {
    feeder: Feeder,
    consumer: rtrb::Consumer<u8>,
}

impl Rtrb {
    pub fn new() -> Self {
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

    /// Streams `n` copies of `payload` through the ring; returns the elapsed time. The producer reserves
    /// `4 + len` bytes, copies a length prefix and the payload, and commits once; the consumer peeks the
    /// prefix, then takes and commits the whole record.
    pub fn round(&mut self, payload: &Arc<[u8]>, n: u64, sink: &mut Sink) -> Duration {
        let Self { feeder, consumer } = self;
        feeder.run(payload, n, |n| {
            let mut spin = Spin::new();
            let mut got = 0u64;
            while got < n {
                if !rtrb_take(consumer, sink) {
                    spin.wait();
                    continue;
                }
                spin.reset();
                got += 1;
            }
        })
    }
}
