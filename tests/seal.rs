//! Layout 1.1's claim and seal (layout-spec.md sections 8.1 and 9.5) on real regions: what the producer's
//! verdict says, what the consumer delivers, and that a region of minor 0 keeps its reserved words.

use std::sync::atomic::Ordering;
use tasker_ring::layout::control;
use tasker_ring::{
    record_type, region_path, ReadError, Region, RegionConfig, RingId, RingMemory, SealOutcome, WriteError,
};

fn fresh(name: &str) -> (Region, std::path::PathBuf) {
    let dir = std::env::temp_dir();
    let path = region_path(&dir, &format!("seal-{name}-{}", std::process::id())).unwrap();
    let _ = std::fs::remove_file(&path);
    (Region::create(&path, &RegionConfig::default()).unwrap(), path)
}

#[test]
fn the_seal_takes_back_exactly_what_was_not_claimed() {
    let (region, _path) = fresh("claimed");
    let mut events = region.producer(RingId::Events).unwrap();
    let mut consumer = region.consumer(RingId::Events).unwrap();
    for n in 0..4u8 {
        events.try_write(record_type::STEP_EVENT, &[b'0' + n; 40]).unwrap();
    }
    let start = consumer.position();
    assert_eq!(consumer.read_batch(2, |_| {}).unwrap(), 2);
    let SealOutcome::Claimed { up_to } = events.seal() else {
        panic!("a 1.1 consumer claims")
    };
    assert_eq!(up_to.wrapping_sub(start), 2 * 56, "two 40-byte messages claimed");
    // The other two are never delivered; the consumer stays sealed.
    let mut late = 0;
    assert_eq!(
        consumer.read_batch(16, |_| late += 1),
        Err(ReadError::Sealed { claimed: up_to })
    );
    assert_eq!(late, 0);
    assert!(consumer.is_sealed());
    assert_eq!(events.try_write(record_type::STEP_EVENT, b"x"), Err(WriteError::Sealed));
    // Sealing again reports the same verdict.
    assert_eq!(events.seal(), SealOutcome::Claimed { up_to });
    region.unlink().unwrap();
}

#[test]
fn a_consumer_taking_a_sealed_ring_delivers_nothing() {
    let (region, _path) = fresh("taken-sealed");
    let mut events = region.producer(RingId::Events).unwrap();
    events.try_write(record_type::STEP_EVENT, b"{}").unwrap();
    let start = region
        .ring(RingId::Events)
        .control()
        .consumer_position
        .value
        .load(Ordering::Relaxed);
    assert_eq!(
        events.seal(),
        SealOutcome::Unclaimed {
            consumer_position: start
        }
    );
    let mut consumer = region.consumer(RingId::Events).unwrap();
    assert_eq!(
        consumer.read_batch(16, |_| panic!("delivered")),
        Err(ReadError::Sealed { claimed: start })
    );
    region.unlink().unwrap();
}

#[test]
fn a_claim_word_someone_else_wrote_is_a_typed_error_and_a_producer_fault() {
    let (region, _path) = fresh("corrupt");
    let mut events = region.producer(RingId::Events).unwrap();
    let mut consumer = region.consumer(RingId::Events).unwrap();
    events.try_write(record_type::STEP_EVENT, b"{}").unwrap();
    let ring = region.ring(RingId::Events);
    let claim = &ring.control().consumer_position.claim;
    let start = claim.load(Ordering::Relaxed);
    claim.store(start.wrapping_add(4096 * 8), Ordering::Relaxed);
    assert!(matches!(
        consumer.read_batch(16, |_| panic!("delivered")),
        Err(ReadError::ClaimCorrupt { expected, .. }) if expected == start
    ));
    assert!(matches!(events.seal(), SealOutcome::ClaimFault { .. }));
    drop(consumer);
    region.unlink().unwrap();
}

/// A region whose header says minor 0 (a 1.0 creator): the consumer never touches the 1.1 words (reserved
/// there), and the producer's seal falls back to the consumer position.
#[test]
fn a_minor_0_region_keeps_its_reserved_words() {
    let (region, path) = fresh("minor0");
    drop(region);
    let mut image = std::fs::read(&path).unwrap();
    image[10] = 0; // layout_minor
    let ctl = control::SIZE; // events control block at 1024
    image[ctl + control::CONSUMER_CLAIM..ctl + control::CONSUMER_CLAIM + 4].fill(0);
    std::fs::write(&path, &image).unwrap();
    let region = Region::attach(&path).unwrap();
    assert_eq!(region.layout().header.layout_minor, 0);
    let mut events = region.producer(RingId::Events).unwrap();
    let mut consumer = region.consumer(RingId::Events).unwrap();
    events.try_write(record_type::STEP_EVENT, b"{}").unwrap();
    assert_eq!(consumer.read_batch(16, |_| {}).unwrap(), 1);
    let position = consumer.position();
    assert!(!consumer.is_sealed());
    assert_eq!(
        events.seal(),
        SealOutcome::Unclaimed {
            consumer_position: position
        }
    );
    drop(consumer);
    let image = std::fs::read(&path).unwrap();
    let word = |at: usize, len: usize| image[ctl + at..ctl + at + len].iter().all(|b| *b == 0);
    assert!(word(control::CONSUMER_CLAIM, 4), "the claim word stays zero on minor 0");
    assert!(
        word(control::CLAIMING_IDENTITY, 8),
        "claiming_identity stays zero on minor 0"
    );
    region.unlink().unwrap();
}

#[test]
fn a_consumer_declares_claiming_and_clears_it_on_release() {
    let (region, _path) = fresh("declare");
    let ring = region.ring(RingId::Events);
    let line = &ring.control().consumer;
    let consumer = region.consumer(RingId::Events).unwrap();
    let identity = line.identity.load(Ordering::Relaxed);
    assert_ne!(identity, 0);
    assert_eq!(line.claiming_identity.load(Ordering::Relaxed), identity);
    drop(consumer);
    assert_eq!(line.claiming_identity.load(Ordering::Relaxed), 0);
    assert_eq!(line.identity.load(Ordering::Relaxed), 0);
    region.unlink().unwrap();
}

#[test]
fn a_seal_during_a_batch_ends_it_after_the_claimed_group() {
    // read_batch claims a group of scanned messages with one CAS before handing any of them out; a seal
    // that lands while the group is delivered keeps exactly that group the consumer's.
    let limits = tasker_ring::RingLimits {
        max_frame: 128,
        max_message: 4096,
    };
    let (mut events, mut consumer) = tasker_ring::heap_channel(1024, limits, 0);
    for n in 0..10u8 {
        events.try_write(record_type::STEP_EVENT, &[n; 8]).unwrap();
    }
    let mut seen = Vec::new();
    let mut outcome = None;
    let result = consumer.read_batch(usize::MAX, |m| {
        seen.push(m.payload[0]);
        if outcome.is_none() {
            outcome = Some(events.seal());
        }
    });
    // Records of 24 bytes; a group closes once it spans an eighth of the ring (128 bytes): 6 records.
    let up_to = 6 * 24;
    assert_eq!(outcome, Some(SealOutcome::Claimed { up_to }));
    assert_eq!(
        seen,
        [0, 1, 2, 3, 4, 5],
        "the claimed group is delivered whole, nothing after it"
    );
    assert_eq!(result, Err(ReadError::Sealed { claimed: up_to }));
}
