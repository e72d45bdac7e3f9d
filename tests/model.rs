//! Property tests: the ring against a `VecDeque<Vec<u8>>` model (random writes of 0 B .. 3x the max frame,
//! streamed writes, reads, batch reads, wrap, fragments, positions near 2^32), and hostile bytes: random
//! corruption of a live ring's data and positions gives typed errors, never a panic or an out-of-bounds
//! read (the heap ring's reads are bounds-checked slices, so an out-of-bounds read would panic here).

use proptest::prelude::*;
use std::collections::VecDeque;
use std::sync::Arc;
use tasker_ring::{record_type, Consumer, HeapRing, Producer, RingLimits, RingMemory, WriteError};

const CAPACITY: usize = 512;
const LIMITS: RingLimits = RingLimits {
    max_frame: 128,
    max_message: 4096,
};

#[derive(Clone, Debug)]
enum Op {
    Write(usize, u8),
    Stream(Vec<usize>, u8),
    Read,
    Batch(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let max = 3 * LIMITS.max_frame as usize;
    prop_oneof![
        4 => (0..=max, any::<u8>()).prop_map(|(n, b)| Op::Write(n, b)),
        1 => (prop::collection::vec(0..80usize, 0..5), any::<u8>()).prop_map(|(c, b)| Op::Stream(c, b)),
        3 => Just(Op::Read),
        2 => (1..6usize).prop_map(Op::Batch),
    ]
}

fn start_position() -> impl Strategy<Value = u32> {
    prop_oneof![
        Just(0u32),
        (0..64u32).prop_map(|k| u32::MAX - 7 - 8 * k),
        any::<u32>().prop_map(|p| p & !7)
    ]
}

fn payload(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| seed.wrapping_add(i as u8).wrapping_mul(31)).collect()
}

fn pair(start: u32) -> (Producer<Arc<HeapRing>>, Consumer<Arc<HeapRing>>, Arc<HeapRing>) {
    let ring = Arc::new(HeapRing::new(CAPACITY, start));
    let p = Producer::new(ring.clone(), LIMITS, "model").unwrap();
    let c = Consumer::new(ring.clone(), LIMITS, "model").unwrap();
    (p, c, ring)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn ring_matches_a_queue(start in start_position(), ops in prop::collection::vec(op(), 1..200)) {
        let (mut p, mut c, _ring) = pair(start);
        let mut model: VecDeque<Vec<u8>> = VecDeque::new();
        for op in ops {
            match op {
                Op::Write(n, seed) => {
                    let bytes = payload(n, seed);
                    match p.try_write(record_type::STEP_EVENT, &bytes) {
                        Ok(()) => model.push_back(bytes),
                        Err(WriteError::Full { .. }) => prop_assert!(!model.is_empty(), "full while empty"),
                        Err(WriteError::NeverFits { .. }) => prop_assert!(n > 2 * LIMITS.max_payload()),
                        Err(e) => prop_assert!(false, "unexpected write error {e:?}"),
                    }
                }
                Op::Stream(chunks, seed) => {
                    let bytes = payload(chunks.iter().sum(), seed);
                    let r = p.try_write_with(record_type::COMPLETION, 0, |w| {
                        let mut at = 0;
                        for n in &chunks {
                            std::io::Write::write_all(w, &bytes[at..at + n])?;
                            at += n;
                        }
                        Ok(())
                    });
                    match r {
                        Ok(()) => model.push_back(bytes),
                        Err(WriteError::Full { .. }) => prop_assert!(!model.is_empty(), "full while empty"),
                        Err(e) => prop_assert!(false, "unexpected stream error {e:?}"),
                    }
                }
                Op::Read => {
                    let got = c.read().unwrap().map(|g| g.payload().to_vec());
                    prop_assert_eq!(got, model.pop_front());
                }
                Op::Batch(n) => {
                    let mut got = Vec::new();
                    let k = c.read_batch(n, |m| got.push(m.payload.to_vec())).unwrap();
                    let want: Vec<_> = (0..n.min(model.len())).filter_map(|_| model.pop_front()).collect();
                    prop_assert_eq!(k, want.len());
                    prop_assert_eq!(got, want);
                }
            }
        }
        let mut rest = Vec::new();
        c.read_batch(usize::MAX, |m| rest.push(m.payload.to_vec())).unwrap();
        prop_assert_eq!(rest, Vec::from(model));
        prop_assert_eq!(p.free_space(), CAPACITY);
    }

    #[test]
    fn corrupt_rings_never_panic(
        start in start_position(),
        sizes in prop::collection::vec(0..300usize, 1..12),
        flips in prop::collection::vec((0..CAPACITY, any::<u8>()), 0..8),
        head in prop::option::of(any::<u32>()),
        tail in prop::option::of(any::<u32>()),
    ) {
        let (mut p, c, ring) = pair(start);
        for (i, n) in sizes.iter().enumerate() {
            let _ = p.try_write(record_type::STEP_EVENT, &payload(*n, i as u8));
        }
        drop(c);
        drop(p);
        for (off, b) in flips {
            // SAFETY: no producer or consumer is live; the offset is inside the data area.
            unsafe { ring.write(off, &[b]) };
        }
        let ctl = ring.control();
        if let Some(h) = head {
            ctl.producer_position.value.store(h, std::sync::atomic::Ordering::Release);
        }
        if let Some(t) = tail {
            ctl.consumer_position.value.store(t, std::sync::atomic::Ordering::Release);
        }
        let mut c = Consumer::new(ring.clone(), LIMITS, "model").unwrap();
        let mut delivered = 0usize;
        loop {
            match c.read_batch(4, |m| delivered += m.payload.len().min(1)) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    prop_assert!(!e.to_string().is_empty());
                    break;
                }
            }
        }
    }
}
