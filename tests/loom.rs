//! loom models of the publish/consume protocol, the wrap with a padding record, fragments, and the
//! sleep/doorbell handshake. Run with:
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`
//!
//! The heap ring under loom keeps every data byte in a loom cell, so a read of a byte not ordered after
//! its write by the position atomics fails the model.
#![cfg(loom)]

use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::Arc;
use loom::thread;
use tasker_ring::{heap_channel, record_type, RingLimits, WriteError};

const LIMITS: RingLimits = RingLimits {
    max_frame: 32,
    max_message: 1024,
};

/// Writes each message, yielding while the ring is full.
fn send_all(p: &mut tasker_ring::Producer<std::sync::Arc<tasker_ring::HeapRing>>, msgs: &[Vec<u8>]) {
    for m in msgs {
        loop {
            match p.try_write(record_type::STEP_EVENT, m) {
                Ok(()) => break,
                Err(WriteError::Full { .. }) => thread::yield_now(),
                Err(e) => panic!("unexpected {e:?}"),
            }
        }
    }
}

fn receive(c: &mut tasker_ring::Consumer<std::sync::Arc<tasker_ring::HeapRing>>, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        let k = c.read_batch(n - got.len(), |m| got.push(m.payload.to_vec())).unwrap();
        if k == 0 {
            thread::yield_now();
        }
    }
    got
}

fn run(capacity: usize, start: u32, msgs: Vec<Vec<u8>>) {
    loom::model(move || {
        let (mut p, mut c) = heap_channel(capacity, LIMITS, start);
        let sent = msgs.clone();
        let writer = thread::spawn(move || send_all(&mut p, &sent));
        let got = receive(&mut c, msgs.len());
        writer.join().unwrap();
        assert_eq!(got, msgs);
    });
}

#[test]
fn publish_then_consume() {
    run(64, 0, vec![vec![1; 8], vec![2; 3]]);
}

#[test]
fn wrap_with_padding_record() {
    // 16 bytes before the end: the 24-byte frame does not fit, so a padding record fills them.
    run(64, 48, vec![vec![7; 8], vec![9; 8]]);
}

#[test]
fn positions_wrap_at_u32_max() {
    run(64, u32::MAX - 15, vec![vec![3; 8], vec![4; 8]]);
}

#[test]
fn fragmented_message_reassembles() {
    // 20 bytes in two fragments (16 + 4), after a padding record at the wrap.
    run(128, u32::MAX - 23, vec![(0..20u8).collect()]);
}

#[test]
fn backpressure_on_a_full_ring() {
    // Three 40-byte footprints in a 64-byte ring: the producer must wait for the consumer twice.
    run(64, 0, vec![vec![1; 16], vec![2; 16], vec![3; 16]]);
}

#[test]
fn sleep_handshake_never_loses_a_wakeup() {
    loom::model(|| {
        let (mut p, mut c) = heap_channel(64, LIMITS, 0);
        let rang = Arc::new(AtomicBool::new(false));
        let rang2 = rang.clone();
        let writer = thread::spawn(move || {
            p.try_write(record_type::STEP_EVENT, &[5; 4]).unwrap();
            if p.consumer_needs_wakeup() {
                rang2.store(true, Ordering::Release);
            }
        });
        let slept = c.prepare_sleep();
        writer.join().unwrap();
        if slept {
            assert!(
                rang.load(Ordering::Acquire),
                "consumer slept and nobody rang the doorbell"
            );
        } else {
            assert_eq!(c.read_batch(1, |m| assert_eq!(m.payload, [5; 4])).unwrap(), 1);
        }
    });
}
