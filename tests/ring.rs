//! Unit-level behaviour of producer and consumer over a heap ring: frames, wrap, fragments, u32
//! wrap-around, backpressure, streaming, abort, the sleep handshake and roles.

mod support_stream;

use std::io::Write as _;
use std::time::Duration;
use tasker_ring::{heap_channel, record_type, ReadError, RingLimits, WriteError};

const LIMITS: RingLimits = RingLimits {
    max_frame: 128,
    max_message: 1 << 20,
};

fn read_all<M: tasker_ring::RingMemory>(c: &mut tasker_ring::Consumer<M>) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    c.read_batch(usize::MAX, |m| out.push((m.record_type, m.payload.to_vec())))
        .expect("read");
    out
}

#[test]
fn one_frame_round_trips_in_place() {
    let (mut p, mut c) = heap_channel(1024, LIMITS, 0);
    p.try_write(record_type::STEP_EVENT, b"hello").unwrap();
    assert_eq!(p.position(), 24, "16-byte header + 5 bytes, aligned to 8");
    let g = c.read().unwrap().expect("a message");
    assert_eq!(g.record_type(), record_type::STEP_EVENT);
    assert_eq!(&*g.payload(), b"hello");
    assert_eq!(g.sequence(), 0);
    drop(g);
    assert_eq!(c.position(), 24);
    assert!(c.read().unwrap().is_none());
}

#[test]
fn empty_payload_is_a_message() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    p.try_write(record_type::COMPLETION, b"").unwrap();
    assert_eq!(read_all(&mut c), vec![(record_type::COMPLETION, vec![])]);
}

#[test]
fn wrap_pads_the_tail_and_restarts_at_zero() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    for i in 0..20u8 {
        let payload = vec![i; 40 + i as usize];
        p.try_write(record_type::STEP_EVENT, &payload).unwrap();
        let got = read_all(&mut c);
        assert_eq!(got, vec![(record_type::STEP_EVENT, payload)], "message {i}");
    }
    let stats = &p.free_space();
    assert_eq!(*stats, 256);
}

#[test]
fn positions_wrap_past_u32_max() {
    let start = u32::MAX - 255; // multiple of 8, just below 2^32
    let (mut p, mut c) = heap_channel(256, LIMITS, start);
    let mut expected = Vec::new();
    for i in 0..50u32 {
        let payload = i.to_le_bytes().repeat(1 + (i as usize % 10));
        p.try_write(record_type::STEP_EVENT, &payload).unwrap();
        expected.push(payload);
        if i % 2 == 1 {
            let got: Vec<_> = read_all(&mut c).into_iter().map(|(_, b)| b).collect();
            assert_eq!(got, std::mem::take(&mut expected));
        }
    }
    assert!(p.position() < start, "the position wrapped");
    let got: Vec<_> = read_all(&mut c).into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, expected);
}

#[test]
fn large_messages_fragment_and_reassemble() {
    let (mut p, mut c) = heap_channel(1024, LIMITS, u32::MAX - 511);
    let payload: Vec<u8> = (0..600u32).map(|i| (i * 7) as u8).collect();
    p.try_write(record_type::STEP_EVENT, &payload).unwrap();
    let got = read_all(&mut c);
    assert_eq!(got, vec![(record_type::STEP_EVENT, payload)]);
}

#[test]
fn full_ring_publishes_nothing() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    p.try_write(record_type::STEP_EVENT, &[1; 112]).unwrap();
    p.try_write(record_type::STEP_EVENT, &[2; 112]).unwrap();
    let before = p.position();
    let err = p.try_write(record_type::STEP_EVENT, &[3; 8]).unwrap_err();
    assert!(matches!(err, WriteError::Full { needed: 24, free: 0 }), "{err:?}");
    assert_eq!(p.position(), before, "nothing published");
    assert_eq!(
        read_all(&mut c),
        vec![
            (record_type::STEP_EVENT, vec![1; 112]),
            (record_type::STEP_EVENT, vec![2; 112])
        ]
    );
    p.try_write(record_type::STEP_EVENT, &[3; 8]).unwrap();
    assert_eq!(read_all(&mut c), vec![(record_type::STEP_EVENT, vec![3; 8])]);
}

#[test]
fn oversize_messages_are_refused_clearly() {
    let (mut p, _c) = heap_channel(
        256,
        RingLimits {
            max_frame: 128,
            max_message: 1000,
        },
        0,
    );
    assert!(matches!(
        p.try_write(record_type::PADDING, b"x"),
        Err(WriteError::InvalidRecordType(1))
    ));
    assert!(matches!(
        p.try_write(record_type::STEP_EVENT, &[0; 1001]),
        Err(WriteError::MessageTooLarge { size: 1001, max: 1000 })
    ));
    assert!(matches!(
        p.try_write(record_type::STEP_EVENT, &[0; 900]),
        Err(WriteError::NeverFits { .. })
    ));
}

#[test]
fn serde_json_writes_straight_into_the_ring() {
    let (mut p, mut c) = heap_channel(4096, LIMITS, 0);
    let value = serde_json::json!({"event_id": "e-1", "payload": "x".repeat(300)});
    p.try_write_with(record_type::STEP_EVENT, 0, |w| {
        serde_json::to_writer(w, &value).map_err(std::io::Error::other)
    })
    .unwrap();
    let got = read_all(&mut c);
    let back: serde_json::Value = serde_json::from_slice(&got[0].1).unwrap();
    assert_eq!(back, value);
}

#[test]
fn streamed_writes_without_a_hint_stay_contiguous_at_the_wrap() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    for i in 0..40usize {
        let text = format!("{{\"n\":{i},\"pad\":\"{}\"}}", "y".repeat(i % 50));
        p.try_write_with(record_type::STEP_EVENT, 0, |w| {
            std::io::Write::write_all(w, text.as_bytes())
        })
        .unwrap();
        let g = c.read().unwrap().unwrap();
        assert_eq!(&*g.payload(), text.as_bytes());
        assert!(
            matches!(g.payload(), tasker_ring::Payload::Ring(_)),
            "a small message is never split"
        );
    }
}

#[test]
fn blocking_write_streams_a_message_larger_than_the_ring() {
    let (mut p, mut c) = heap_channel(256, LIMITS, u32::MAX - 63);
    let payload: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    let expected = payload.clone();
    let writer = std::thread::spawn(move || {
        p.write_blocking(record_type::STEP_EVENT, &payload, Duration::from_secs(20))
            .unwrap();
        p
    });
    let mut got = None;
    while got.is_none() {
        if let Some(g) = c.read().unwrap() {
            got = Some(g.payload().to_vec());
        }
    }
    writer.join().unwrap();
    assert_eq!(got.unwrap(), expected);
}

#[test]
fn timed_out_stream_is_aborted_and_the_next_message_reads_clean() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    let err = p
        .write_blocking(record_type::STEP_EVENT, &[7; 1000], Duration::from_millis(50))
        .unwrap_err();
    assert!(
        matches!(err, WriteError::Timeout { published } if published > 0),
        "{err:?}"
    );
    // The consumer drains the partial fragments; nothing is delivered yet.
    assert!(read_all(&mut c).is_empty());
    p.try_write(record_type::STEP_EVENT, b"after").unwrap();
    assert_eq!(read_all(&mut c), vec![(record_type::STEP_EVENT, b"after".to_vec())]);
}

#[test]
fn sleep_handshake_sees_data_or_asks_for_a_doorbell() {
    let (mut p, mut c) = heap_channel(256, LIMITS, 0);
    assert!(c.prepare_sleep(), "nothing pending: may sleep");
    p.try_write(record_type::STEP_EVENT, b"x").unwrap();
    assert!(p.consumer_needs_wakeup(), "sleeping consumer wants a doorbell");
    assert!(!p.consumer_needs_wakeup(), "one doorbell per sleep");
    assert!(!c.prepare_sleep(), "data pending: do not sleep");
    assert_eq!(read_all(&mut c).len(), 1);
}

#[test]
fn a_role_is_held_once() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let p = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    let again = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap");
    assert!(matches!(again, Err(tasker_ring::RoleError::Taken { .. })));
    drop(p);
    assert!(
        tasker_ring::Producer::new(ring, LIMITS, "heap").is_ok(),
        "free again after drop"
    );
}

#[test]
fn a_consumer_error_is_sticky() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut p = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    p.try_write(record_type::STEP_EVENT, b"abc").unwrap();
    // Corrupt the record type in place.
    // SAFETY: no consumer exists yet; the producer is idle.
    unsafe { tasker_ring::RingMemory::write(&ring, 4, &0x4242u16.to_le_bytes()) };
    let mut c = tasker_ring::Consumer::new(ring, LIMITS, "heap").unwrap();
    let e1 = c.read().err().unwrap();
    assert!(matches!(
        e1,
        ReadError::UnknownRecordType {
            record_type: 0x4242,
            ..
        }
    ));
    assert_eq!(c.read().err().unwrap(), e1);
}

/// Pid of a process that has exited and been reaped.
fn dead_pid() -> u32 {
    let mut child = std::process::Command::new("true").spawn().expect("spawn true");
    let pid = child.id();
    child.wait().expect("wait");
    pid
}

#[test]
fn a_blocked_writer_reports_a_dead_consumer() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut p = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    let ctl = tasker_ring::RingMemory::control(&ring);
    ctl.consumer
        .identity
        .store(dead_pid() as u64, std::sync::atomic::Ordering::Release);
    p.try_write(record_type::STEP_EVENT, &[0; 112]).unwrap();
    p.try_write(record_type::STEP_EVENT, &[0; 112]).unwrap();
    let started = std::time::Instant::now();
    let err = p
        .write_blocking(record_type::STEP_EVENT, &[1; 8], Duration::from_secs(30))
        .unwrap_err();
    assert!(matches!(err, WriteError::PeerDead { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "detected long before the deadline"
    );
}

#[test]
fn a_producer_taking_over_from_a_dead_one_aborts_its_partial_message() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut c = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").unwrap();
    let mut p1 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    // Fill the ring with the first fragments of a message that never ends, leaving no room for an abort.
    let err = p1
        .write_blocking(record_type::STEP_EVENT, &[9; 600], Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, WriteError::Timeout { .. }), "{err:?}");
    std::mem::forget(p1); // its process "dies" holding the role
    let ctl = tasker_ring::RingMemory::control(&ring);
    ctl.producer
        .identity
        .store(dead_pid() as u64, std::sync::atomic::Ordering::Release);
    let mut got = Vec::new();
    assert_eq!(
        c.read_batch(10, |m| got.push(m.payload.to_vec())).unwrap(),
        0,
        "fragments only, no END"
    );
    let mut p2 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").expect("dead holder is replaced");
    p2.try_write(record_type::STEP_EVENT, b"fresh").unwrap();
    c.read_batch(10, |m| got.push(m.payload.to_vec())).unwrap();
    assert_eq!(got, vec![b"fresh".to_vec()], "the orphaned fragments were discarded");
}

#[test]
fn a_consumer_taking_over_from_a_dead_one_skips_orphaned_fragments() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut p = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    let mut c1 = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").unwrap();
    let big: Vec<u8> = (0..400u32).map(|i| i as u8).collect();
    let writer = std::thread::spawn(move || {
        p.write_blocking(record_type::STEP_EVENT, &big, Duration::from_secs(20))
            .unwrap();
        p
    });
    // c1 consumes (and releases) the first fragments, then "dies" mid-message.
    while tasker_ring::RingMemory::control(&ring)
        .consumer_position
        .value
        .load(std::sync::atomic::Ordering::Acquire)
        == 0
    {
        assert_eq!(c1.read_batch(1, |_| panic!("no whole message yet")).unwrap(), 0);
    }
    std::mem::forget(c1);
    tasker_ring::RingMemory::control(&ring)
        .consumer
        .identity
        .store(dead_pid() as u64, std::sync::atomic::Ordering::Release);
    let mut c2 = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").expect("dead holder is replaced");
    let mut p = loop {
        c2.read_batch(10, |m| {
            panic!("orphaned fragments delivered as a message of {}", m.payload.len())
        })
        .unwrap();
        if writer.is_finished() {
            break writer.join().unwrap();
        }
    };
    c2.read_batch(10, |m| {
        panic!("orphaned fragments delivered as a message of {}", m.payload.len())
    })
    .unwrap();
    p.try_write(record_type::STEP_EVENT, b"next").unwrap();
    let mut got = Vec::new();
    c2.read_batch(10, |m| got.push(m.payload.to_vec())).unwrap();
    assert_eq!(got, vec![b"next".to_vec()]);
}

#[test]
fn a_normal_hand_over_mid_message_is_healed_on_both_sides() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut c1 = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").unwrap();
    let mut p1 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    // p1 publishes the first fragments of a 600-byte message and gives up with the ring full.
    let err = p1
        .write_blocking(record_type::STEP_EVENT, &[9; 600], Duration::from_millis(20))
        .unwrap_err();
    assert!(matches!(err, WriteError::Timeout { .. }), "{err:?}");
    drop(p1); // a clean drop: the abort could not be written, so the shared flag carries it
              // c1 consumes those fragments (releasing them) and is dropped mid-reassembly.
    assert_eq!(c1.read_batch(10, |_| panic!("not whole")).unwrap(), 0);
    drop(c1);
    let mut p2 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    p2.try_write(record_type::STEP_EVENT, b"fresh").unwrap();
    let mut c2 = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").unwrap();
    let mut got = Vec::new();
    c2.read_batch(10, |m| got.push(m.payload.to_vec())).unwrap();
    assert_eq!(got, vec![b"fresh".to_vec()]);
}

#[test]
fn a_role_left_by_an_earlier_process_with_our_pid_is_taken_over() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let me = tasker_ring::liveness::ProcessIdentity::current();
    if me.start_time == 0 {
        return; // no start times on this OS: pid reuse cannot be told apart
    }
    let earlier = tasker_ring::liveness::ProcessIdentity {
        pid: me.pid,
        start_time: me.start_time + 1,
    };
    tasker_ring::RingMemory::control(&ring)
        .producer
        .identity
        .store(earlier.word(), std::sync::atomic::Ordering::Release);
    assert!(
        tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").is_ok(),
        "same pid, other start time: dead"
    );
}

#[test]
fn a_producer_crash_between_sequence_and_position_stores_is_resynchronised() {
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(256, 0));
    let mut c = tasker_ring::Consumer::new(ring.clone(), LIMITS, "heap").unwrap();
    let mut p1 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    p1.try_write(record_type::STEP_EVENT, b"one").unwrap();
    std::mem::forget(p1);
    let ctl = tasker_ring::RingMemory::control(&ring);
    // The crash: next_sequence stored for records whose position was never published.
    ctl.producer_stats
        .next_sequence
        .store(5, std::sync::atomic::Ordering::Relaxed);
    ctl.producer
        .identity
        .store(dead_pid() as u64, std::sync::atomic::Ordering::Release);
    let mut p2 = tasker_ring::Producer::new(ring.clone(), LIMITS, "heap").unwrap();
    p2.try_write(record_type::STEP_EVENT, b"two").unwrap();
    let mut got = Vec::new();
    c.read_batch(10, |m| got.push(m.payload.to_vec())).unwrap();
    assert_eq!(
        got,
        vec![b"one".to_vec(), b"two".to_vec()],
        "the takeover's abort record restarts the sequence"
    );
}

/// Two threads stream a checked sequence through a small heap ring (see `support_stream::two_threads`).
#[test]
fn two_threads_stream_a_checked_sequence() {
    let limits = RingLimits {
        max_frame: 1024,
        max_message: 1 << 16,
    };
    let (p, c) = heap_channel(1 << 14, limits, u32::MAX - 4095);
    support_stream::two_threads(p, c);
}

/// Sequences are u64 counters that wrap: a fragmented message whose fragments straddle `u64::MAX -> 0` is
/// written and read like any other (with overflow checks on, `seq + 1` and `seq - 1` panicked here).
#[test]
fn sequences_wrap_past_u64_max_inside_a_fragmented_message() {
    use std::sync::atomic::Ordering;
    use tasker_ring::RingMemory;
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(1024, 0));
    ring.control()
        .producer_stats
        .next_sequence
        .store(u64::MAX - 1, Ordering::Relaxed);
    ring.control()
        .consumer_stats
        .next_sequence
        .store(u64::MAX - 1, Ordering::Relaxed);
    let mut p = tasker_ring::Producer::new(std::sync::Arc::clone(&ring), LIMITS, "wrap").unwrap();
    let mut c = tasker_ring::Consumer::new(ring, LIMITS, "wrap").unwrap();
    for round in 0..3u8 {
        let payload: Vec<u8> = (0..300u32).map(|i| (i as u8).wrapping_add(round)).collect();
        p.try_write(record_type::STEP_EVENT, &payload).unwrap();
        assert_eq!(
            read_all(&mut c),
            vec![(record_type::STEP_EVENT, payload)],
            "round {round}"
        );
    }
}

/// A consumer position no real consumer can have (here a gigabyte ahead of the producer) is a peer fault:
/// the free space reads as none and a write fails with a typed error, never with arithmetic that wraps (or,
/// with overflow checks on, panics).
#[test]
fn an_impossible_consumer_position_is_a_typed_peer_fault() {
    use std::sync::atomic::Ordering;
    use tasker_ring::RingMemory;
    let ring = std::sync::Arc::new(tasker_ring::HeapRing::new(1024, 0));
    let mut p = tasker_ring::Producer::new(std::sync::Arc::clone(&ring), LIMITS, "corrupt").unwrap();
    ring.control()
        .consumer_position
        .value
        .store(0x4000_0000, Ordering::Release);
    assert_eq!(p.free_space(), 0);
    let err = p.try_write(record_type::STEP_EVENT, b"{}").unwrap_err();
    assert!(
        matches!(
            err,
            WriteError::ConsumerPositionCorrupt {
                producer: 0,
                consumer: 0x4000_0000
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("impossible"), "{err}");
}

/// A fill function that swallows a write error and returns Ok does not publish the truncated message: the
/// write fails with the swallowed error, and the reader sees nothing of it (issue 20, minor 1). Also when
/// the swallowed error comes after fragments were streamed.
#[test]
fn a_swallowed_write_error_publishes_nothing() {
    let limits = RingLimits {
        max_frame: 256,
        max_message: 4096,
    };
    let (mut producer, mut consumer) = heap_channel(8192, limits, 0);
    let outcome = producer.try_write_with(record_type::STEP_EVENT, 0, |w| {
        w.write_all(b"{\"head\":")?;
        let _ = w.write_all(&[b'x'; 5000]); // too large: the error is dropped on purpose
        Ok(())
    });
    assert!(
        matches!(outcome, Err(WriteError::MessageTooLarge { .. })),
        "{outcome:?}"
    );
    // Fragments first (more than one frame), then the swallowed failure.
    let outcome = producer.try_write_with(record_type::STEP_EVENT, 0, |w| {
        w.write_all(&[b'y'; 1000])?;
        let _ = w.write_all(&[b'z'; 4000]);
        Ok(())
    });
    assert!(
        matches!(outcome, Err(WriteError::MessageTooLarge { .. })),
        "{outcome:?}"
    );
    assert!(
        read_all(&mut consumer).is_empty(),
        "nothing of either message is readable"
    );
    producer.try_write(record_type::STEP_EVENT, b"next").unwrap();
    assert_eq!(
        read_all(&mut consumer),
        vec![(record_type::STEP_EVENT, b"next".to_vec())]
    );
}

/// Dropping a producer or consumer whose role another process has since taken over leaves the new
/// holder's identity in place (a blind store of 0 would free a role in use; issue 20, minor).
#[test]
fn dropping_a_role_taken_over_leaves_the_new_holder() {
    use std::sync::atomic::Ordering;
    use std::sync::Arc;
    use tasker_ring::{Consumer, HeapRing, Producer, RingMemory};
    let ring = Arc::new(HeapRing::new(1024, 0));
    let producer = Producer::new(Arc::clone(&ring), LIMITS_SMALL, "events").unwrap();
    let consumer = Consumer::new(Arc::clone(&ring), LIMITS_SMALL, "events").unwrap();
    // Another holder: pid 1 (always alive) with some start time.
    let rival = (7u64 << 32) | 1;
    let control = ring.control();
    control.producer.identity.store(rival, Ordering::SeqCst);
    control.consumer.identity.store(rival, Ordering::SeqCst);
    drop(producer);
    drop(consumer);
    assert_eq!(control.producer.identity.load(Ordering::SeqCst), rival);
    assert_eq!(control.consumer.identity.load(Ordering::SeqCst), rival);
    // A role still held is released as before.
    control.producer.identity.store(0, Ordering::SeqCst);
    drop(Producer::new(Arc::clone(&ring), LIMITS_SMALL, "events").unwrap());
    assert_eq!(control.producer.identity.load(Ordering::SeqCst), 0);
}

const LIMITS_SMALL: RingLimits = RingLimits {
    max_frame: 256,
    max_message: 4096,
};

/// The reassembly buffer grows for a large message and gives the memory back once it is read (issue 20,
/// minor: it kept its peak, up to 64 MiB, forever).
#[test]
fn the_reassembly_buffer_shrinks_after_a_large_message() {
    let limits = RingLimits {
        max_frame: 256,
        max_message: 1 << 20,
    };
    let (mut producer, mut consumer) = heap_channel(4096, limits, 0);
    let big = vec![b'b'; 600 * 1024];
    let writer = std::thread::spawn(move || {
        producer
            .write_blocking(record_type::STEP_EVENT, &big, Duration::from_secs(60))
            .unwrap();
        producer
    });
    let len = loop {
        if let Some(m) = consumer.read().unwrap() {
            break m.payload().len();
        }
        std::thread::yield_now();
    };
    assert_eq!(len, 600 * 1024);
    let mut producer = writer.join().unwrap();
    producer.try_write(record_type::STEP_EVENT, b"small").unwrap();
    assert_eq!(
        read_all(&mut consumer),
        vec![(record_type::STEP_EVENT, b"small".to_vec())]
    );
    assert!(
        consumer.reassembly_capacity() <= tasker_ring::consumer::ASSEMBLY_KEEP,
        "{} bytes kept",
        consumer.reassembly_capacity()
    );
}

#[test]
fn a_long_batch_hands_room_back_before_it_ends() {
    // A producer waiting on a full ring must not wait for the consumer's whole batch: read_batch releases
    // once an eighth of the ring (128 bytes here) is read.
    let (mut p, mut c) = heap_channel(1024, LIMITS, 0);
    let mut written = 0;
    while p.try_write(record_type::STEP_EVENT, &[7; 40]).is_ok() {
        written += 1;
    }
    assert_eq!(written, 18, "18 records of 56 bytes fill 1008 of 1024 bytes");
    let full = p.free_space();
    let mut free_seen = Vec::new();
    let n = c
        .read_batch(usize::MAX, |m| {
            assert_eq!(m.payload, [7; 40]);
            free_seen.push(p.free_space());
        })
        .unwrap();
    assert_eq!(n, written);
    assert_eq!(free_seen[0], full, "nothing released before the first delivery");
    assert!(
        free_seen[written - 1] > full,
        "room handed back during the batch: {free_seen:?}"
    );
    assert_eq!(p.free_space(), 1024, "everything released at the end");
}

#[test]
fn a_full_ring_gives_the_same_error_on_the_fast_path_and_the_general_one() {
    // try_write answers Full for a single frame without entering the general writer; its figures must be
    // the ones the general writer (try_write_with, same payload) reports.
    let (mut p, _c) = heap_channel(1024, LIMITS, 0);
    // 16 records of 64 bytes fill the ring exactly: the next frame starts at offset 0, room to the end.
    while p.try_write(record_type::STEP_EVENT, &[1; 48]).is_ok() {}
    assert_eq!((p.position(), p.free_space()), (1024, 0));
    for len in [1, 8, 40, 100] {
        let fast = p.try_write(record_type::STEP_EVENT, &vec![2; len]).unwrap_err();
        let general = p
            .try_write_with(record_type::STEP_EVENT, len, |w| w.write_all(&vec![2; len]))
            .unwrap_err();
        assert!(matches!(fast, WriteError::Full { .. }), "{fast:?}");
        assert_eq!(fast, general, "payload of {len} bytes");
    }
}
