//! Byte layout of a region, as specified in `layout-spec.md`. Every offset here has a row in that spec's
//! tables; change both together and bump the layout version by the spec's rules.
//!
//! All multi-byte fields are little-endian. The cold header fields are plain data ([`RegionHeader`],
//! [`RingDescriptor`], read and written with `bytemuck`); the hot words live in [`RingControl`], one
//! 128-byte line per writer.

use crate::sync::{AtomicU32, AtomicU64};
use bytemuck::{Pod, Zeroable};

/// First 8 bytes of every region.
pub const MAGIC: [u8; 8] = *b"TSKRRING";
/// Layout major version: readers refuse any other major.
pub const LAYOUT_MAJOR: u16 = 1;
/// Layout minor version: readers of an older minor read only the fields they know.
pub const LAYOUT_MINOR: u16 = 1;
/// Value of the ready word once the creator has finished initialising the region (`"RDY!"`).
pub const READY_VALUE: u32 = u32::from_le_bytes(*b"RDY!");
/// Size of the header page; ring data starts at or after it.
pub const HEADER_SIZE: u32 = 4096;
/// Width of one cache line as the layout counts it (two 64-byte lines: adjacent-line prefetch).
pub const LINE: usize = 128;
/// Byte offset of the ring descriptor table in the header.
pub const RING_TABLE_OFFSET: usize = 128;
/// Number of rings in a region: events (index 0) and completions (index 1).
pub const RING_COUNT: u32 = 2;
/// Byte offset of the events ring's control block.
pub const EVENTS_CONTROL_OFFSET: u64 = 1024;
/// Byte offset of the completions ring's control block.
pub const COMPLETIONS_CONTROL_OFFSET: u64 = 2048;
/// Alignment of every data offset (page).
pub const DATA_ALIGN: u64 = 4096;
/// Feature bits this build understands (none defined in 1.0).
pub const KNOWN_FEATURES: u64 = 0;

/// Smallest ring capacity in bytes.
pub const MIN_CAPACITY: u32 = 64;
/// Largest ring capacity in bytes (2^30) so free-running u32 distances stay unambiguous.
pub const MAX_CAPACITY: u32 = 1 << 30;

/// Size of a frame header.
pub const FRAME_HEADER: usize = 16;
/// Alignment of every record start and record footprint.
pub const FRAME_ALIGN: usize = 8;
/// Smallest allowed max frame size.
pub const MIN_MAX_FRAME: u32 = 32;

/// The region header's cold fields (offsets 0..128). Written before the ready word, read after it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
pub struct RegionHeader {
    /// `MAGIC`.
    pub magic: [u8; 8],
    /// Layout major version.
    pub layout_major: u16,
    /// Layout minor version.
    pub layout_minor: u16,
    /// `READY_VALUE` once initialised, 0 before. Accessed atomically (acquire/release), not through this struct.
    pub ready: u32,
    /// Feature bits (none defined in 1.0; unknown bits are refused).
    pub feature_bits: u64,
    /// Size of the header page in bytes.
    pub header_size: u32,
    /// Number of ring descriptors that follow at offset 128.
    pub ring_count: u32,
    /// Total file size in bytes.
    pub region_size: u64,
    /// Largest frame record (header + payload) a writer may produce.
    pub max_frame_size: u32,
    /// Reserved, zero.
    pub reserved0: u32,
    /// Largest reassembled message; bigger ones are refused by writers and readers.
    pub max_message_size: u64,
    /// Pid of the creating process.
    pub creator_pid: u32,
    /// Reserved, zero.
    pub reserved1: u32,
    /// Creator's process start time (clock ticks since boot, `/proc/<pid>/stat` field 22; 0 if unknown).
    pub creator_start_time: u64,
    /// Wall-clock creation time, milliseconds since the Unix epoch.
    pub created_at_unix_ms: u64,
    /// Reserved, zero.
    pub reserved2: [u64; 6],
}

/// One entry of the ring descriptor table (32 bytes each, from offset 128).
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable, PartialEq, Eq)]
pub struct RingDescriptor {
    /// Byte offset of the ring's control block (a multiple of 128).
    pub control_offset: u64,
    /// Byte offset of the ring's data area.
    pub data_offset: u64,
    /// Data area size in bytes, a power of two in `MIN_CAPACITY..=MAX_CAPACITY`.
    pub capacity: u32,
    /// 0 = events (Rust -> TS), 1 = completions (TS -> Rust).
    pub ring_id: u32,
    /// Position both counters started at (informational: tests start just below 2^32).
    pub initial_position: u32,
    /// Reserved, zero.
    pub reserved: u32,
}

/// A 128-byte line holding one hot word and nothing else that another writer touches.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct PositionLine {
    /// The position (free-running byte counter, wraps at 2^32).
    pub value: AtomicU32,
}

/// Line 1: the consumer's position and (layout 1.1) its claim.
#[repr(C, align(128))]
#[derive(Debug)]
pub struct ConsumerLine {
    /// The consumer position, stored by the consumer with Release once it finished reading the bytes before it.
    pub value: AtomicU32,
    /// Layout 1.1: the position up to which the consumer took responsibility for the messages (it claims them
    /// by CAS before delivering), plus bit 0, [`CLAIM_SEALED`], which the producer sets once to seal the ring.
    /// Reserved (zero, untouched) on a region of minor 0.
    pub claim: AtomicU32,
}

/// Bit 0 of [`ConsumerLine::claim`]: the producer sealed the ring (positions are multiples of 8, so the bit
/// is free). Set once, never cleared.
pub const CLAIM_SEALED: u32 = 1;

/// Statistics written only by the ring's producer (one line).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct ProducerStats {
    /// Last consumer position the producer loaded (informational copy of its private cache).
    pub cached_consumer_position: AtomicU32,
    /// 1 while fragments of a message are published without its END (a streamed write in progress or
    /// abandoned); a producer taking the role then aborts that message first.
    pub open_message: AtomicU32,
    /// Sequence number the next non-padding record will carry.
    pub next_sequence: AtomicU64,
    /// Non-padding records published.
    pub frames: AtomicU64,
    /// Payload bytes published.
    pub bytes: AtomicU64,
    /// Padding records written at the wrap.
    pub pads: AtomicU64,
    /// Writes that found the ring full.
    pub full_stalls: AtomicU64,
    /// Doorbells rung for a sleeping consumer.
    pub doorbells: AtomicU64,
}

/// Statistics written only by the ring's consumer (one line).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct ConsumerStats {
    /// Last producer position the consumer loaded (informational).
    pub cached_producer_position: AtomicU32,
    /// 1 while the consumer has released fragments of a message it has not finished reassembling; a
    /// consumer taking the role then skips that message's remaining fragments.
    pub open_message: AtomicU32,
    /// Sequence number the consumer expects next.
    pub next_sequence: AtomicU64,
    /// Non-padding records consumed (same unit as the producer's `frames`).
    pub frames: AtomicU64,
    /// Payload bytes of the records consumed (same unit as the producer's `bytes`).
    pub bytes: AtomicU64,
    /// Times the consumer published "sleeping".
    pub sleeps: AtomicU64,
}

/// Identity and heartbeat of one side of a ring (one line).
#[repr(C, align(128))]
#[derive(Debug)]
pub struct PeerLine {
    /// The holder in one word, so pid and start time never tear: pid in bits 0..32, the low 32 bits of its
    /// start time in bits 32..64; 0 when the role is free. Taken by CAS, released by a store of 0.
    pub identity: AtomicU64,
    /// The holder's full start time (clock ticks since boot; 0 if unknown). Informational.
    pub start_time: AtomicU64,
    /// Last heartbeat, milliseconds since the Unix epoch (reported as an age; never proof of death).
    pub heartbeat_unix_ms: AtomicU64,
    /// Consumer line only, layout 1.1: the identity word of the consumer that claims before delivering (so
    /// honours a seal); the producer trusts the claim only while this equals `identity`. 0 otherwise, and
    /// always 0 (reserved) in the producer line.
    pub claiming_identity: AtomicU64,
}

/// Control block of one ring: 1024 bytes, eight 128-byte lines.
#[repr(C)]
#[derive(Debug)]
pub struct RingControl {
    /// Line 0: producer position, stored by the producer with Release.
    pub producer_position: PositionLine,
    /// Line 1: consumer position, stored by the consumer with Release, and the 1.1 claim word.
    pub consumer_position: ConsumerLine,
    /// Line 2: 1 while the consumer sleeps and wants a doorbell, else 0.
    pub consumer_sleeping: PositionLine,
    /// Line 3: producer-written statistics.
    pub producer_stats: ProducerStats,
    /// Line 4: consumer-written statistics.
    pub consumer_stats: ConsumerStats,
    /// Line 5: producer identity and heartbeat.
    pub producer: PeerLine,
    /// Line 6: consumer identity and heartbeat.
    pub consumer: PeerLine,
    /// Line 7: reserved.
    pub reserved: PositionLine,
}

impl RingControl {
    /// A control block with both positions at `initial_position` and everything else zero.
    ///
    /// ```
    /// use std::sync::atomic::Ordering;
    /// use tasker_ring::layout::RingControl;
    ///
    /// let control = RingControl::new(64);
    /// assert_eq!(control.producer_position.value.load(Ordering::Relaxed), 64);
    /// assert_eq!(control.consumer_stats.next_sequence.load(Ordering::Relaxed), 0);
    /// assert_eq!(std::mem::size_of::<RingControl>(), tasker_ring::layout::control::SIZE);
    /// ```
    pub fn new(initial_position: u32) -> Self {
        let line = |v: u32| PositionLine {
            value: AtomicU32::new(v),
        };
        let peer = || PeerLine {
            identity: AtomicU64::new(0),
            start_time: AtomicU64::new(0),
            heartbeat_unix_ms: AtomicU64::new(0),
            claiming_identity: AtomicU64::new(0),
        };
        Self {
            producer_position: line(initial_position),
            consumer_position: ConsumerLine {
                value: AtomicU32::new(initial_position),
                claim: AtomicU32::new(initial_position),
            },
            consumer_sleeping: line(0),
            producer_stats: ProducerStats {
                cached_consumer_position: AtomicU32::new(initial_position),
                open_message: AtomicU32::new(0),
                next_sequence: AtomicU64::new(0),
                frames: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                pads: AtomicU64::new(0),
                full_stalls: AtomicU64::new(0),
                doorbells: AtomicU64::new(0),
            },
            consumer_stats: ConsumerStats {
                cached_producer_position: AtomicU32::new(initial_position),
                open_message: AtomicU32::new(0),
                next_sequence: AtomicU64::new(0),
                frames: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                sleeps: AtomicU64::new(0),
            },
            producer: peer(),
            consumer: peer(),
            reserved: line(0),
        }
    }
}

impl RingControl {
    /// Initialises a zero-filled control block in place (the creator's path over the mapping: writing a
    /// `RingControl` by value would copy uninitialised padding bytes into shared memory).
    pub fn init_in_place(&self, initial_position: u32) {
        // Relaxed: the region is not visible to anyone until the creator's Release store of the ready word.
        self.producer_position
            .value
            .store(initial_position, crate::sync::Ordering::Relaxed);
        self.consumer_position
            .value
            .store(initial_position, crate::sync::Ordering::Relaxed);
        self.consumer_position
            .claim
            .store(initial_position, crate::sync::Ordering::Relaxed);
        self.producer_stats
            .cached_consumer_position
            .store(initial_position, crate::sync::Ordering::Relaxed);
        self.consumer_stats
            .cached_producer_position
            .store(initial_position, crate::sync::Ordering::Relaxed);
    }
}

/// Byte offsets inside a control block (spec table "Ring control block").
pub mod control {
    /// Producer position (u32).
    pub const PRODUCER_POSITION: usize = 0;
    /// Consumer position (u32).
    pub const CONSUMER_POSITION: usize = 128;
    /// Layout 1.1: the consumer's claim, bit 0 the producer's seal (u32).
    pub const CONSUMER_CLAIM: usize = 132;
    /// Consumer sleeping flag (u32).
    pub const CONSUMER_SLEEPING: usize = 256;
    /// Producer statistics line.
    pub const PRODUCER_STATS: usize = 384;
    /// Consumer statistics line.
    pub const CONSUMER_STATS: usize = 512;
    /// Producer identity line.
    pub const PRODUCER_PEER: usize = 640;
    /// Consumer identity line.
    pub const CONSUMER_PEER: usize = 768;
    /// Layout 1.1: the identity of the consumer that claims before delivering (u64).
    pub const CLAIMING_IDENTITY: usize = 792;
    /// Size of a control block.
    pub const SIZE: usize = 1024;
}

#[cfg(not(loom))]
const _: () = {
    use core::mem::{offset_of, size_of};
    assert!(size_of::<RegionHeader>() == 128);
    assert!(offset_of!(RegionHeader, ready) == 12);
    assert!(offset_of!(RegionHeader, feature_bits) == 16);
    assert!(offset_of!(RegionHeader, region_size) == 32);
    assert!(offset_of!(RegionHeader, max_frame_size) == 40);
    assert!(offset_of!(RegionHeader, max_message_size) == 48);
    assert!(offset_of!(RegionHeader, creator_pid) == 56);
    assert!(offset_of!(RegionHeader, creator_start_time) == 64);
    assert!(offset_of!(RegionHeader, created_at_unix_ms) == 72);
    assert!(size_of::<RingDescriptor>() == 32);
    assert!(size_of::<RingControl>() == control::SIZE);
    assert!(offset_of!(RingControl, consumer_position) == control::CONSUMER_POSITION);
    assert!(offset_of!(RingControl, consumer_sleeping) == control::CONSUMER_SLEEPING);
    assert!(offset_of!(RingControl, producer_stats) == control::PRODUCER_STATS);
    assert!(offset_of!(RingControl, consumer_stats) == control::CONSUMER_STATS);
    assert!(offset_of!(RingControl, producer) == control::PRODUCER_PEER);
    assert!(offset_of!(RingControl, consumer) == control::CONSUMER_PEER);
    assert!(offset_of!(ProducerStats, next_sequence) == 8);
    assert!(offset_of!(ProducerStats, doorbells) == 48);
    assert!(offset_of!(PeerLine, start_time) == 8);
    assert!(offset_of!(PeerLine, heartbeat_unix_ms) == 16);
    assert!(control::CONSUMER_POSITION + offset_of!(ConsumerLine, claim) == control::CONSUMER_CLAIM);
    assert!(control::CONSUMER_PEER + offset_of!(PeerLine, claiming_identity) == control::CLAIMING_IDENTITY);
};

/// Record type codes (frame header bytes 4..6).
pub mod record_type {
    /// Filler from a record's start to the end of the ring; carries no sequence number.
    pub const PADDING: u16 = 0x0001;
    /// A step event: UTF-8 JSON of the seed's `FfiStepEvent` (events ring).
    pub const STEP_EVENT: u16 = 0x0010;
    /// A completion: 36 ASCII bytes of the event id (canonical UUID) then the `StepExecutionResult` JSON.
    pub const COMPLETION: u16 = 0x0011;
    /// First code of the range reserved for control records (defined by later minors).
    pub const CONTROL_FIRST: u16 = 0x0100;
    /// Last code of the control range.
    pub const CONTROL_LAST: u16 = 0x01FF;
    /// Codes at or above this are extensions a reader that does not know them skips.
    pub const SKIPPABLE_FIRST: u16 = 0x8000;
    /// A skippable no-op; carries the END|ABORT marker a producer writes to abandon a partial message.
    pub const NOOP: u16 = 0x8000;
    /// Layout 1.1, completions ring: one or more 36-byte event ids of step events the consumer read and will
    /// not run (given back to the source without using an attempt).
    pub const GIVE_BACK: u16 = 0x8012;
    /// Layout 1.1, completions ring: a 36-byte event id, then the JSON object of the step's checkpoint.
    pub const CHECKPOINT: u16 = 0x8013;

    /// Whether a reader of this version delivers messages of type `t` (the rest it skips or refuses).
    ///
    /// ```
    /// use tasker_ring::record_type::{is_delivered, CHECKPOINT, NOOP, STEP_EVENT};
    ///
    /// assert!(is_delivered(STEP_EVENT) && is_delivered(CHECKPOINT));
    /// assert!(!is_delivered(NOOP) && !is_delivered(0x8001));
    /// ```
    pub const fn is_delivered(t: u16) -> bool {
        matches!(t, STEP_EVENT | COMPLETION | GIVE_BACK | CHECKPOINT)
    }

    /// Whether a writer may publish messages of type `t` (anything a reader accepts except padding).
    ///
    /// ```
    /// use tasker_ring::record_type::{is_known_or_skippable, is_writable, COMPLETION, PADDING};
    ///
    /// assert!(is_writable(COMPLETION) && is_writable(0x8001));
    /// assert!(!is_writable(PADDING) && is_known_or_skippable(PADDING));
    /// assert!(!is_known_or_skippable(0x0042)); // reserved below 0x8000: a reader refuses it
    /// ```
    pub const fn is_writable(t: u16) -> bool {
        t != PADDING && is_known_or_skippable(t)
    }

    /// Whether a reader of this version may deliver or skip records of type `t`.
    pub const fn is_known_or_skippable(t: u16) -> bool {
        matches!(t, PADDING | STEP_EVENT | COMPLETION) || t >= SKIPPABLE_FIRST
    }
}

/// Frame flag bits (frame header bytes 6..8).
pub mod flags {
    /// First fragment of a message.
    pub const BEGIN: u16 = 0x0001;
    /// Last fragment of a message.
    pub const END: u16 = 0x0002;
    /// With END and an empty payload: the writer abandoned the message; discard what was assembled.
    pub const ABORT: u16 = 0x0004;
    /// An unfragmented message.
    pub const UNFRAGMENTED: u16 = BEGIN | END;
    /// Every defined bit.
    pub const KNOWN: u16 = BEGIN | END | ABORT;
}

/// Length of the event-id prefix of a completion payload.
pub const COMPLETION_ID_LEN: usize = 36;

/// Rounds `n` up to the frame alignment.
///
/// ```
/// use tasker_ring::layout::{align_frame, align_up, FRAME_HEADER};
///
/// assert_eq!(align_frame(FRAME_HEADER + 5), 24); // what a 5-byte message occupies
/// assert_eq!(align_frame(32), 32);
/// assert_eq!(align_up(4097, 4096), 8192);
/// ```
pub const fn align_frame(n: usize) -> usize {
    (n + (FRAME_ALIGN - 1)) & !(FRAME_ALIGN - 1)
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub const fn align_up(n: u64, align: u64) -> u64 {
    (n + (align - 1)) & !(align - 1)
}
