//! loom models of the publish/consume protocol, the wrap with a padding record, fragments, streamed writes
//! (with relocation at the wrap), the `read()` guard path, role take/release, and the sleep/doorbell
//! handshake. Run with:
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

/// Reads `n` messages through `read()` (the guard path: the message is released when its guard drops).
fn receive_guarded(c: &mut tasker_ring::Consumer<std::sync::Arc<tasker_ring::HeapRing>>, n: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    while got.len() < n {
        match c.read().unwrap() {
            Some(m) => got.push(m.payload().to_vec()),
            None => thread::yield_now(),
        }
    }
    got
}

/// Streams `big` (larger than a 64-byte ring) with `write_blocking` from `start`, fragment by fragment as
/// the consumer frees space, and reads it through the guard path.
fn stream(start: u32, big: Vec<u8>) {
    loom::model(move || {
        let (mut p, mut c) = heap_channel(64, LIMITS, start);
        let sent = big.clone();
        let writer = thread::spawn(move || {
            p.write_blocking(record_type::STEP_EVENT, &sent, std::time::Duration::from_secs(3600))
                .unwrap();
        });
        assert_eq!(receive_guarded(&mut c, 1), vec![big.clone()]);
        writer.join().unwrap();
    });
}

/// A message larger than the ring, streamed by `write_blocking` fragment by fragment as the consumer frees
/// space, read through the guard path: 40 bytes in 16-byte fragments, three frames of up to 32 bytes.
#[test]
fn streamed_write_larger_than_the_ring() {
    stream(0, (0..40u8).collect());
}

/// A streamed message whose open fragment meets the ring's end is relocated to its start (a padding record
/// covers the tail), with the positions about to wrap past u32::MAX.
#[test]
fn streamed_write_relocates_at_the_wrap() {
    stream(u32::MAX - 23, (100..140u8).collect());
}

/// Taking the producer role while its holder releases it (the take's CAS against the release's
/// compare-exchange): the taker finds it held (by this process) or gets it after the release; either way
/// every holder's release frees the line and it can be taken again.
#[test]
fn role_take_races_release() {
    use tasker_ring::{HeapRing, Producer, RingMemory, RoleError};
    loom::model(|| {
        let ring = std::sync::Arc::new(HeapRing::new(64, 0));
        let first = Producer::new(std::sync::Arc::clone(&ring), LIMITS, "events").unwrap();
        let ring2 = std::sync::Arc::clone(&ring);
        let taker = thread::spawn(move || match Producer::new(ring2, LIMITS, "events") {
            Ok(second) => drop(second),
            Err(RoleError::Taken { .. }) => {}
        });
        drop(first);
        taker.join().unwrap();
        let identity = ring
            .control()
            .producer
            .identity
            .load(std::sync::atomic::Ordering::SeqCst);
        assert_eq!(identity, 0, "every holder released the role");
        drop(Producer::new(ring, LIMITS, "events").unwrap());
    });
}

/// Layout 1.1: the producer seals while the consumer claims and delivers. Exactly one of the two wins each
/// claim, so the consumer delivers exactly the messages ending at or before the sealed claim (none is both
/// delivered and handed elsewhere, none is lost between them).
#[test]
fn seal_races_claim() {
    use tasker_ring::{ReadError, SealOutcome};
    loom::model(|| {
        let (mut p, mut c) = heap_channel(128, LIMITS, 0);
        for n in 0..2u8 {
            p.try_write(record_type::STEP_EVENT, &[n; 8]).unwrap();
        }
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            loop {
                // The consumer is returned, so it holds its role until after the seal.
                match c.read_batch(1, |m| got.push(m.payload[0])) {
                    Ok(0) => return (got, c), // both read: nothing more will come
                    Ok(_) if got.len() == 2 => return (got, c),
                    Ok(_) => {}
                    Err(ReadError::Sealed { .. }) => return (got, c),
                    Err(e) => panic!("unexpected {e:?}"),
                }
            }
        });
        let outcome = p.seal();
        let (got, _consumer) = reader.join().unwrap();
        let SealOutcome::Claimed { up_to } = outcome else {
            panic!("the consumer declared claiming at take: {outcome:?}");
        };
        // Each 8-byte message occupies 24 bytes from position 0.
        assert_eq!(up_to as usize, 24 * got.len(), "delivered {got:?}");
        assert_eq!(got, (0..got.len() as u8).collect::<Vec<_>>());
    });
}

/// Layout 1.1: a consumer takes the role while the producer seals (the Dekker pair of `claiming_identity`
/// and the claim word). Whatever the interleaving, the producer's verdict and the consumer's deliveries
/// agree: when the producer saw no claiming consumer (so it counts the message unread), the consumer
/// delivers nothing.
#[test]
fn consumer_take_races_seal() {
    use tasker_ring::{Consumer, HeapRing, Producer, ReadError, SealOutcome};
    loom::model(|| {
        let ring = std::sync::Arc::new(HeapRing::new(128, 0));
        let mut p = Producer::new(std::sync::Arc::clone(&ring), LIMITS, "events").unwrap();
        p.try_write(record_type::STEP_EVENT, &[7; 8]).unwrap();
        let ring2 = std::sync::Arc::clone(&ring);
        let reader = thread::spawn(move || {
            let mut c = Consumer::new(ring2, LIMITS, "events").unwrap();
            let mut got = Vec::new();
            match c.read_batch(1, |m| got.push(m.payload[0])) {
                Ok(_) | Err(ReadError::Sealed { .. }) => (got, c),
                Err(e) => panic!("unexpected {e:?}"),
            }
        });
        let outcome = p.seal();
        let (got, _consumer) = reader.join().unwrap();
        match outcome {
            SealOutcome::Unclaimed { consumer_position } => {
                assert_eq!(consumer_position, 0);
                assert!(
                    got.is_empty(),
                    "the producer counts the message unread; it was delivered"
                );
            }
            SealOutcome::Claimed { up_to } => assert_eq!(up_to as usize, 24 * got.len()),
            other => panic!("{other:?}"),
        }
    });
}
