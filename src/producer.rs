//! The writing side of a ring.
//!
//! Invariants (layout-spec.md, "Publish protocol"):
//! - Only the producer writes bytes in `[producer_position, consumer_position + capacity)`, and only the
//!   producer stores `producer_position`.
//! - A record becomes visible only when `producer_position` is stored past it with Release, after every
//!   byte of it is written; so a reader never sees a partly written frame, and a producer killed mid-frame
//!   leaves nothing visible.
//! - No record straddles the ring's end: a padding record fills the tail and writing restarts at offset 0.
//! - Messages larger than `max_frame - 16` bytes are split into fragments (BEGIN ... END).

use crate::error::{RoleError, WriteError};
use crate::frame::FrameHeader;
use crate::layout::{align_frame, flags, record_type, FRAME_ALIGN, FRAME_HEADER};
use crate::liveness::Liveness;
use crate::memory::RingMemory;
use crate::role::{self, Takeover};
use crate::sync::{fence, spin_wait, Ordering};
use crossbeam_utils::Backoff;
use std::io;
use std::time::{Duration, Instant};

mod seal;
pub use seal::SealOutcome;

/// How often a waiting writer checks that the consumer process still exists.
const LIVENESS_CHECK_EVERY: Duration = Duration::from_millis(100);

/// Size limits a ring enforces, copied from the region header.
///
/// ```
/// use tasker_ring::RingLimits;
///
/// let limits = RingLimits { max_frame: 256, max_message: 4096 };
/// assert_eq!(limits.max_payload(), 240); // a frame is a 16-byte header and its payload
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingLimits {
    /// Largest frame record (header + payload), a multiple of 8 and at most half the capacity.
    pub max_frame: u32,
    /// Largest message, fragments reassembled.
    pub max_message: u64,
}

impl RingLimits {
    /// Payload bytes one frame can carry.
    pub fn max_payload(&self) -> usize {
        self.max_frame as usize - FRAME_HEADER
    }

    /// Bytes a message of `len` payload bytes occupies in a ring, without padding: its full frames and its
    /// last one, aligned.
    ///
    /// ```
    /// use tasker_ring::RingLimits;
    ///
    /// let limits = RingLimits { max_frame: 64, max_message: 4096 };
    /// assert_eq!(limits.message_footprint(2734), 57 * 64); // 56 full frames of 48 bytes, then 46
    /// ```
    pub fn message_footprint(&self, len: usize) -> u64 {
        let per = self.max_payload();
        let frames = len.div_ceil(per).max(1);
        let last = len - (frames - 1) * per;
        // Saturating: a length near 2^64 (a hostile size) must not wrap into a small footprint.
        ((frames - 1) as u64)
            .saturating_mul(u64::from(self.max_frame))
            .saturating_add(align_frame(FRAME_HEADER + last) as u64)
    }

    /// Worst-case bytes a message of `len` payload bytes occupies: its frames plus the padding that may
    /// precede the first one (less than that frame's footprint). An all-or-nothing write
    /// ([`Producer::try_write`], [`Producer::try_write_with`]) of it fits an empty ring of `capacity` bytes
    /// whenever this is at most `capacity`.
    ///
    /// ```
    /// use tasker_ring::RingLimits;
    ///
    /// let limits = RingLimits { max_frame: 64, max_message: 4096 };
    /// assert_eq!(limits.worst_case_footprint(2734), 3704); // fits a 4 KiB ring
    /// assert_eq!(limits.worst_case_footprint(4096), 5528); // does not
    /// ```
    pub fn worst_case_footprint(&self, len: usize) -> u64 {
        let first = align_frame(FRAME_HEADER + len.min(self.max_payload()));
        self.message_footprint(len).saturating_add((first - FRAME_ALIGN) as u64)
    }

    /// The largest message an all-or-nothing write always fits into a ring of `capacity` bytes (the largest
    /// length whose [worst-case footprint](Self::worst_case_footprint) is at most `capacity`), at most
    /// `max_message`; 0 when not even an empty message fits.
    ///
    /// ```
    /// use tasker_ring::RingLimits;
    ///
    /// let limits = RingLimits { max_frame: 64, max_message: 1 << 20 };
    /// assert_eq!(limits.largest_message_in(4096), 3024); // 63 full frames, then up to 56 bytes of padding
    /// assert_eq!(RingLimits { max_message: 2000, ..limits }.largest_message_in(4096), 2000);
    /// ```
    pub fn largest_message_in(&self, capacity: u64) -> u64 {
        let fits = |len: u64| usize::try_from(len).is_ok_and(|len| self.worst_case_footprint(len) <= capacity);
        if !fits(0) {
            return 0;
        }
        // The footprint grows with the length: the largest fitting length by bisection, `lo` always fits.
        let (mut lo, mut hi) = (0u64, self.max_message);
        while lo < hi {
            let mid = lo + (hi - lo).div_ceil(2);
            if fits(mid) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        lo
    }
}

/// Counters the producer mirrors into its statistics line on publish.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    frames: u64,
    bytes: u64,
    pads: u64,
}

/// The producer of one ring. Single-threaded by construction (`&mut self`); `Send`.
///
/// Get one from [`Region::producer`](crate::Region::producer), from [`Producer::new`] over any
/// [`RingMemory`], or with its consumer from [`heap_channel`](crate::heap_channel):
///
/// ```
/// use tasker_ring::{heap_channel, record_type, RingLimits};
///
/// let limits = RingLimits { max_frame: 256, max_message: 4096 };
/// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
/// producer.try_write(record_type::STEP_EVENT, br#"{"n":1}"#)?;
/// producer.try_write(record_type::STEP_EVENT, &[b'x'; 600])?; // larger than a frame: three fragments
///
/// assert_eq!(&*consumer.read()?.expect("first").payload(), br#"{"n":1}"#);
/// assert_eq!(consumer.read()?.expect("second").payload().len(), 600);
/// assert!(consumer.read()?.is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<M: RingMemory> {
    mem: M,
    capacity: usize,
    limits: RingLimits,
    /// Local copy of `producer_position` (only this side stores it).
    head: u32,
    /// Last loaded `consumer_position` (rtrb's cached index: refreshed only when space looks short).
    cached_tail: u32,
    /// Sequence of the next non-padding record.
    next_seq: u64,
    tally: Tally,
    full_stalls: u64,
    doorbells: u64,
    /// A blocking write published part of a message and gave up: the next write first aborts it.
    abort_pending: bool,
    /// Local mirror of the shared `open_message` flag.
    open_message: bool,
    /// Reused buffer for moving a fragment from the ring's tail end to its start (grows to the largest
    /// fragment once, so a write allocates nothing in steady state).
    relocate_scratch: Vec<u8>,
    /// [`Self::seal`]'s verdict once it ran: nothing is published any more.
    seal: Option<SealOutcome>,
}

/// What [`Producer::try_write_single`] did.
enum Single {
    /// Written and published.
    Written,
    /// The frame would fit an empty ring but not the free space now: nothing written.
    Full { needed: u64, free: u64 },
    /// Nothing written: the general path decides (fragments, padding at the ring's end, errors).
    General,
}

/// How a message writer behaves when the ring has no room.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// Publish nothing unless the whole message fits now.
    AllOrNothing,
    /// Publish finished fragments and wait for room until the deadline.
    Stream { deadline: Instant },
}

/// A message being written: fragments are laid down after the producer position, published at the end
/// (or, when streaming, as room runs out). It is the [`io::Write`] that [`Producer::try_write_with`]
/// hands to its fill function.
pub struct MessageWriter<'p, M: RingMemory> {
    producer: &'p mut Producer<M>,
    mode: Mode,
    record_type: u16,
    /// Next byte to write (free-running).
    pos: u32,
    /// Header position of the open fragment.
    frag_start: u32,
    /// Payload bytes in the open fragment.
    frag_len: usize,
    /// The open fragment is the message's first.
    first: bool,
    /// Sequence the open fragment will carry.
    seq: u64,
    /// Payload bytes expected still (a hint for placing the first fragment; 0 if unknown).
    hint: usize,
    tally: Tally,
    /// Payload bytes published while streaming.
    published: u64,
    /// Why the last `write` failed, in the ring's own terms.
    failure: Option<WriteError>,
    /// Producer position when the message started (to tell whether anything was published).
    start: u32,
    /// Position up to which the open fragment may grow with no further check: within its max size, before
    /// the ring's end, and inside the space known free (8-aligned, as all three bounds are).
    limit: u32,
    /// Bytes the whole message needs by its hint (reported in `Full`).
    expected_footprint: u64,
    /// This message is the abort marker for a partly published one (END|ABORT, no payload).
    abort_marker: bool,
}

impl<M: RingMemory> Producer<M> {
    /// Takes the producer role of the ring in `mem`.
    ///
    /// The caller guarantees `limits` are valid for the ring (`max_frame` a multiple of 8, at least 32 and
    /// at most half the capacity); regions check them at create and attach. `ring` names the ring in
    /// errors. Dropping the producer gives the role back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tasker_ring::{HeapRing, Producer, RingLimits, RoleError};
    ///
    /// let ring = Arc::new(HeapRing::new(1024, 0));
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let producer = Producer::new(Arc::clone(&ring), limits, "events")?;
    /// let again = Producer::new(Arc::clone(&ring), limits, "events");
    /// assert!(matches!(again, Err(RoleError::Taken { role: "producer", .. })));
    ///
    /// drop(producer);
    /// Producer::new(ring, limits, "events")?;
    /// # Ok::<(), RoleError>(())
    /// ```
    ///
    /// # Errors
    /// [`RoleError::Taken`] when a live process, this one included, holds the producer role. A role
    /// recorded for a dead process is taken over; a message it left half published is then aborted
    /// before the first write.
    pub fn new(mem: M, limits: RingLimits, ring: &'static str) -> Result<Self, RoleError> {
        let control = mem.control();
        let takeover = role::take(&control.producer, ring, "producer")?;
        // Acquire: pairs with the previous producer's Release store of `producer_position` (if any).
        let head = control.producer_position.value.load(Ordering::Acquire);
        // Acquire: pairs with the consumer's Release store of `consumer_position`.
        let cached_tail = control.consumer_position.value.load(Ordering::Acquire);
        // Relaxed: written before the previous producer's Release of `producer_position`, loaded above.
        let next_seq = control.producer_stats.next_sequence.load(Ordering::Relaxed);
        let stats = &control.producer_stats;
        let tally = Tally {
            frames: stats.frames.load(Ordering::Relaxed),
            bytes: stats.bytes.load(Ordering::Relaxed),
            pads: stats.pads.load(Ordering::Relaxed),
        };
        // Relaxed: stored before the previous producer's Release of `producer_position`, loaded above.
        let open_message = stats.open_message.load(Ordering::Relaxed) != 0;
        let full_stalls = stats.full_stalls.load(Ordering::Relaxed);
        let doorbells = stats.doorbells.load(Ordering::Relaxed);
        let capacity = mem.capacity();
        Ok(Self {
            mem,
            capacity,
            limits,
            head,
            cached_tail,
            next_seq,
            tally,
            full_stalls,
            doorbells,
            // A predecessor that died, or left a streamed message unfinished, may have published the first
            // fragments of a message: abort it. After a crash the abort also resynchronises the sequence
            // (its `next_sequence` may have been stored ahead of a position it never published).
            abort_pending: open_message || matches!(takeover, Takeover::FromDead(_)),
            open_message,
            relocate_scratch: Vec::new(),
            seal: None,
        })
    }

    /// The producer position (free-running): where the next record goes.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// producer.try_write(record_type::STEP_EVENT, b"hello")?;
    /// assert_eq!(producer.position(), 24); // 16-byte header + 5 bytes, rounded up to 8
    /// assert_eq!(producer.consumer_position(), 0); // nothing read yet
    ///
    /// drop(consumer.read()?);
    /// assert_eq!(producer.consumer_position(), 24);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn position(&self) -> u32 {
        self.head
    }

    /// The ring's limits.
    pub fn limits(&self) -> RingLimits {
        self.limits
    }

    /// The consumer position, freshly loaded (the worker learns from it which events have been read). See
    /// [`Self::position`] for an example.
    pub fn consumer_position(&mut self) -> u32 {
        self.refresh_tail();
        self.cached_tail
    }

    /// Bytes free for writing, refreshing the consumer position.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// assert_eq!(producer.free_space(), 1024);
    /// producer.try_write(record_type::STEP_EVENT, &[0; 48])?;
    /// assert_eq!(producer.free_space(), 1024 - 64);
    ///
    /// drop(consumer.read()?); // reading hands the bytes back
    /// assert_eq!(producer.free_space(), 1024);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn free_space(&mut self) -> usize {
        self.refresh_tail();
        // Saturating: a peer-written consumer position can be impossible; writes then fail with
        // `WriteError::ConsumerPositionCorrupt`, and the free space reads as none.
        self.capacity
            .saturating_sub(self.head.wrapping_sub(self.cached_tail) as usize)
    }

    /// Writes `payload` as one message of `record_type` if it fits now; otherwise publishes nothing.
    /// Payloads larger than a frame's are written as fragments, still all or nothing.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits, WriteError};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, _consumer) = heap_channel(1024, limits, 0);
    /// producer.try_write(record_type::STEP_EVENT, br#"{"n":1}"#)?;
    ///
    /// // Nothing reads, so the ring fills up; a full ring publishes nothing.
    /// let full = loop {
    ///     if let Err(e) = producer.try_write(record_type::STEP_EVENT, &[0; 200]) {
    ///         break e;
    ///     }
    /// };
    /// assert!(matches!(full, WriteError::Full { .. }));
    ///
    /// let event = record_type::STEP_EVENT;
    /// assert!(matches!(producer.try_write(event, &[0; 2000]), Err(WriteError::NeverFits { .. })));
    /// assert!(matches!(producer.try_write(event, &[0; 5000]), Err(WriteError::MessageTooLarge { .. })));
    /// let padding = producer.try_write(record_type::PADDING, b"");
    /// assert_eq!(padding, Err(WriteError::InvalidRecordType(record_type::PADDING)));
    /// # Ok::<(), WriteError>(())
    /// ```
    ///
    /// # Errors
    /// Nothing is published on any error.
    /// - [`WriteError::Full`]: not enough free space now; retry once the consumer has read, or use
    ///   [`Self::write_blocking`].
    /// - [`WriteError::NeverFits`]: the message needs more than the ring's capacity at once (use
    ///   [`Self::write_blocking`], which streams it).
    /// - [`WriteError::MessageTooLarge`]: larger than the ring's `max_message`.
    /// - [`WriteError::InvalidRecordType`]: padding, or a type this layout version does not define.
    pub fn try_write(&mut self, record_type: u16, payload: &[u8]) -> Result<(), WriteError> {
        match self.try_write_single(record_type, payload) {
            Single::Written => Ok(()),
            Single::Full { needed, free } => {
                self.count_full_stall();
                Err(WriteError::Full { needed, free })
            }
            Single::General => self.try_write_with(record_type, payload.len(), |w| io::Write::write_all(w, payload)),
        }
    }

    /// Fast path of [`Self::try_write`]: one unfragmented frame that fits before the ring's end. Writes and
    /// publishes it if it fits in the free space; reports `Full` (the general path's error for it: a single
    /// frame's worst case is its footprint, at most half the ring) if not. Returns `General`, having written
    /// nothing, whenever the general path is needed (which then also produces the precise error).
    #[inline]
    fn try_write_single(&mut self, record_type: u16, payload: &[u8]) -> Single {
        let len = payload.len();
        if len > self.limits.max_payload()
            || len as u64 > self.limits.max_message
            || self.abort_pending
            || self.seal.is_some()
            || !record_type::is_writable(record_type)
        {
            return Single::General;
        }
        let footprint = align_frame(FRAME_HEADER + len);
        let off = self.head as usize & (self.capacity - 1);
        if self.capacity - off < footprint {
            return Single::General;
        }
        let end = self.head.wrapping_add(footprint as u32);
        if !self.fits(end) {
            self.refresh_tail();
            if !self.fits(end) {
                let used = self.head.wrapping_sub(self.cached_tail) as usize;
                if used > self.capacity {
                    // An impossible consumer position: the general path names it.
                    return Single::General;
                }
                return Single::Full {
                    needed: footprint as u64,
                    free: (self.capacity - used) as u64,
                };
            }
        }
        let header = FrameHeader {
            length: (FRAME_HEADER + len) as u32,
            record_type,
            flags: flags::UNFRAGMENTED,
            sequence: self.next_seq,
        };
        // SAFETY: `head..end` is free (checked against the consumer position), lies before the ring's end and
        // is unpublished until the Release store in `publish`. The zero word goes first so the header and
        // payload overwrite the part of it they cover, leaving the alignment gap zeroed.
        unsafe {
            self.mem.write(off + footprint - FRAME_ALIGN, &[0u8; FRAME_ALIGN]);
            self.mem.write(off, &header.encode());
            self.mem.write(off + FRAME_HEADER, payload);
        }
        let tally = Tally {
            frames: 1,
            bytes: len as u64,
            pads: 0,
        };
        self.publish(end, self.next_seq.wrapping_add(1), tally, false);
        Single::Written
    }

    /// Writes one message produced by `fill` (for example `serde_json::to_writer`) straight into the ring.
    /// All or nothing: if the message does not fit now, nothing is published and `Full` is returned.
    /// `size_hint` is the expected payload size (0 if unknown); it only steers where the first frame goes.
    ///
    /// ```
    /// use std::io;
    /// use tasker_ring::{heap_channel, record_type, RingLimits, WriteError};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// let event = serde_json::json!({ "event_id": "e-1" });
    /// producer.try_write_with(record_type::STEP_EVENT, 0, |w| Ok(serde_json::to_writer(w, &event)?))?;
    /// assert_eq!(&*consumer.read()?.expect("a message").payload(), br#"{"event_id":"e-1"}"#);
    ///
    /// let failed = producer.try_write_with(record_type::STEP_EVENT, 0, |_| Err(io::Error::other("no")));
    /// assert_eq!(failed, Err(WriteError::Serialize("no".into())));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::try_write`] (`Full`, `NeverFits`, `MessageTooLarge`, `InvalidRecordType`), and
    /// [`WriteError::Serialize`] when `fill` fails. Nothing is published on any error.
    pub fn try_write_with<F>(&mut self, record_type: u16, size_hint: usize, fill: F) -> Result<(), WriteError>
    where
        F: FnOnce(&mut MessageWriter<'_, M>) -> io::Result<()>,
    {
        let worst = self.worst_case_footprint(size_hint);
        if worst > self.capacity as u64 && size_hint as u64 <= self.limits.max_message {
            return Err(WriteError::NeverFits {
                needed: worst,
                capacity: self.capacity as u64,
            });
        }
        self.write_message(record_type, size_hint, Mode::AllOrNothing, fill)
    }

    /// Writes `payload`, waiting for room (spin, then back off to short sleeps) up to `timeout`. Messages
    /// larger than the ring are streamed fragment by fragment as the consumer frees space. On timeout the
    /// published fragments are aborted by the next write.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tasker_ring::{heap_channel, record_type, RingLimits, WriteError};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 1 << 20 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    ///
    /// // Ten times the ring, streamed to a reader on another thread.
    /// let reader = std::thread::spawn(move || loop {
    ///     if let Some(message) = consumer.read().unwrap() {
    ///         return message.payload().len();
    ///     }
    ///     std::thread::yield_now();
    /// });
    /// let big = vec![7u8; 10 * 1024];
    /// producer.write_blocking(record_type::STEP_EVENT, &big, Duration::from_secs(60))?;
    /// assert_eq!(reader.join().unwrap(), big.len());
    ///
    /// // Now nothing reads: the write publishes what fits, then gives up.
    /// let late = producer.write_blocking(record_type::STEP_EVENT, &big, Duration::from_millis(10));
    /// assert!(matches!(late, Err(WriteError::Timeout { published }) if published > 0));
    /// # Ok::<(), WriteError>(())
    /// ```
    ///
    /// # Errors
    /// - [`WriteError::Timeout`]: the deadline passed; `published` payload bytes were already visible,
    ///   and the consumer drops them when the abort marker follows.
    /// - [`WriteError::PeerDead`]: the consumer's process died while the writer waited (checked every
    ///   100 ms).
    /// - [`WriteError::MessageTooLarge`], [`WriteError::InvalidRecordType`]: as [`Self::try_write`].
    pub fn write_blocking(&mut self, record_type: u16, payload: &[u8], timeout: Duration) -> Result<(), WriteError> {
        let deadline = Instant::now() + timeout;
        self.write_message(record_type, payload.len(), Mode::Stream { deadline }, |w| {
            io::Write::write_all(w, payload)
        })
    }

    /// After publishing, tells whether the consumer is asleep and wants a doorbell; the caller then rings
    /// it once. Clears the flag, so concurrent publishes ring at most once per sleep.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// assert!(!producer.consumer_needs_wakeup()); // the consumer is awake
    ///
    /// assert!(consumer.prepare_sleep()); // nothing to read: it may sleep until the doorbell
    /// producer.try_write(record_type::STEP_EVENT, b"wake up")?;
    /// assert!(producer.consumer_needs_wakeup()); // ring the doorbell once...
    /// assert!(!producer.consumer_needs_wakeup()); // ...not twice
    /// # Ok::<(), tasker_ring::WriteError>(())
    /// ```
    pub fn consumer_needs_wakeup(&mut self) -> bool {
        let control = self.mem.control();
        // SeqCst fence: pairs with the consumer's SeqCst fence in `Consumer::prepare_sleep`. Either the
        // consumer's reload of the producer position sees our publish, or we see its sleeping flag.
        fence(Ordering::SeqCst);
        // Relaxed: ordered by the fences above; the CAS makes the doorbell fire once per sleep.
        let woke = control
            .consumer_sleeping
            .value
            .compare_exchange(1, 0, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok();
        if woke {
            // Wrapping, as every statistic: counting continues from the value in shared memory (issue 20).
            self.doorbells = self.doorbells.wrapping_add(1);
            // Relaxed: statistics only.
            control
                .producer_stats
                .doorbells
                .store(self.doorbells, Ordering::Relaxed);
        }
        woke
    }

    /// Stamps the producer heartbeat (call on maintenance ticks, not per event).
    pub fn heartbeat(&self) {
        role::heartbeat(&self.mem.control().producer);
    }

    /// Bytes a message of `len` payload bytes occupies without padding ([`RingLimits::message_footprint`]).
    fn exact_footprint(&self, len: usize) -> u64 {
        self.limits.message_footprint(len)
    }

    /// Worst-case bytes a message of `len` payload bytes occupies ([`RingLimits::worst_case_footprint`]).
    fn worst_case_footprint(&self, len: usize) -> u64 {
        self.limits.worst_case_footprint(len)
    }

    fn write_message<F>(&mut self, record_type: u16, hint: usize, mode: Mode, fill: F) -> Result<(), WriteError>
    where
        F: FnOnce(&mut MessageWriter<'_, M>) -> io::Result<()>,
    {
        if self.seal.is_some() {
            return Err(WriteError::Sealed);
        }
        if !record_type::is_writable(record_type) {
            return Err(WriteError::InvalidRecordType(record_type));
        }
        if hint as u64 > self.limits.max_message {
            return Err(WriteError::MessageTooLarge {
                size: hint as u64,
                max: self.limits.max_message,
            });
        }
        if self.abort_pending {
            self.write_abort()?;
        }
        let mut writer = MessageWriter::new(self, record_type, hint, mode);
        let outcome = writer
            .open_fragment()
            .and_then(|()| fill(&mut writer).map_err(|e| writer.classify(e)));
        // A write that failed fails the message even when `fill` swallowed the error and returned Ok: the
        // bytes after the failure are missing, so publishing would hand the reader a truncated message.
        let outcome = outcome.and_then(|()| match writer.failure.take() {
            Some(swallowed) => Err(swallowed),
            None => writer.finish(),
        });
        if let Err(err) = outcome {
            let partial = writer.producer.head != writer.start;
            drop(writer);
            if partial {
                // Tell the consumer now if there is room; otherwise the next write does it first.
                self.abort_pending = true;
                let _ = self.write_abort();
            }
            if matches!(err, WriteError::Full { .. }) {
                self.count_full_stall();
            }
            return Err(err);
        }
        Ok(())
    }

    /// Counts an all-or-nothing write refused with `Full` (line 3's `full_stalls`).
    fn count_full_stall(&mut self) {
        self.full_stalls = self.full_stalls.wrapping_add(1);
        // Relaxed: statistics only.
        self.mem
            .control()
            .producer_stats
            .full_stalls
            .store(self.full_stalls, Ordering::Relaxed);
    }

    /// Publishes an END|ABORT record so the consumer drops a partly published message.
    fn write_abort(&mut self) -> Result<(), WriteError> {
        let mut writer = MessageWriter::new(self, record_type::NOOP, 0, Mode::AllOrNothing);
        writer.abort_marker = true;
        writer.open_fragment().and_then(|()| writer.finish())?;
        self.abort_pending = false;
        Ok(())
    }

    fn refresh_tail(&mut self) {
        // Acquire: pairs with the consumer's Release store of `consumer_position`, so its reads of the bytes
        // we are about to overwrite happened before.
        self.cached_tail = self.mem.control().consumer_position.value.load(Ordering::Acquire);
        // Relaxed: informational mirror of the private cache.
        self.mem
            .control()
            .producer_stats
            .cached_consumer_position
            .store(self.cached_tail, Ordering::Relaxed);
    }

    /// Whether everything up to `end` (free-running) is free to write.
    fn fits(&self, end: u32) -> bool {
        end.wrapping_sub(self.cached_tail) as usize <= self.capacity
    }

    /// Tells whether the process holding the consumer role still runs (for maintenance ticks): its pid
    /// (0 if the role is free) and liveness.
    ///
    /// ```
    /// use tasker_ring::liveness::Liveness;
    /// use tasker_ring::{heap_channel, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (producer, consumer) = heap_channel(1024, limits, 0);
    /// assert_eq!(producer.consumer_liveness(), (std::process::id(), Liveness::Alive));
    /// drop(consumer);
    /// assert_eq!(producer.consumer_liveness(), (0, Liveness::Absent));
    /// ```
    pub fn consumer_liveness(&self) -> (u32, Liveness) {
        role::holder(&self.mem.control().consumer)
    }

    /// Makes everything before `end` published: stores statistics and the open-message flag, then the
    /// position with Release. `open` says whether a message's fragments stay unfinished after `end`.
    fn publish(&mut self, end: u32, seq: u64, tally: Tally, open: bool) {
        let control = self.mem.control();
        if open != self.open_message {
            self.open_message = open;
            // Relaxed: rides on the Release store of `producer_position` below.
            control
                .producer_stats
                .open_message
                .store(open as u32, Ordering::Relaxed);
        }
        // Wrapping: the statistics continue from the values in shared memory, which a peer may have set
        // anywhere (issue 20, the boundary-value cases); they are counters, never sizes.
        self.tally.frames = self.tally.frames.wrapping_add(tally.frames);
        self.tally.bytes = self.tally.bytes.wrapping_add(tally.bytes);
        self.tally.pads = self.tally.pads.wrapping_add(tally.pads);
        let stats = &control.producer_stats;
        // Relaxed: these ride on the Release store of `producer_position` below.
        stats.next_sequence.store(seq, Ordering::Relaxed);
        stats.frames.store(self.tally.frames, Ordering::Relaxed);
        stats.bytes.store(self.tally.bytes, Ordering::Relaxed);
        stats.pads.store(self.tally.pads, Ordering::Relaxed);
        // Release: pairs with the consumer's Acquire load of `producer_position`; every byte of every
        // record before `end` is written before this store, so the consumer never sees a partial frame.
        control.producer_position.value.store(end, Ordering::Release);
        self.head = end;
        self.next_seq = seq;
    }
}

impl<M: RingMemory> Drop for Producer<M> {
    fn drop(&mut self) {
        role::release(&self.mem.control().producer);
    }
}

impl<'p, M: RingMemory> MessageWriter<'p, M> {
    fn new(producer: &'p mut Producer<M>, record_type: u16, hint: usize, mode: Mode) -> Self {
        let pos = producer.head;
        let seq = producer.next_seq;
        let expected_footprint = producer.exact_footprint(hint);
        Self {
            producer,
            mode,
            record_type,
            pos,
            frag_start: pos,
            frag_len: 0,
            first: true,
            seq,
            hint,
            tally: Tally::default(),
            published: 0,
            failure: None,
            start: pos,
            limit: pos,
            expected_footprint,
            abort_marker: false,
        }
    }

    /// Turns an I/O error out of the caller's fill function back into the ring's own error.
    fn classify(&mut self, e: io::Error) -> WriteError {
        self.failure
            .take()
            .unwrap_or_else(|| WriteError::Serialize(e.to_string()))
    }

    fn capacity(&self) -> usize {
        self.producer.capacity
    }

    fn offset(&self, pos: u32) -> usize {
        pos as usize & (self.capacity() - 1)
    }

    /// Waits (streaming) or fails (all-or-nothing) until everything up to `end` is free.
    fn reserve(&mut self, end: u32) -> Result<(), WriteError> {
        if self.producer.fits(end) {
            return Ok(());
        }
        self.producer.refresh_tail();
        if self.producer.fits(end) {
            return Ok(());
        }
        let used = self.producer.head.wrapping_sub(self.producer.cached_tail);
        if used as usize > self.capacity() {
            return Err(WriteError::ConsumerPositionCorrupt {
                producer: self.producer.head,
                consumer: self.producer.cached_tail,
            });
        }
        match self.mode {
            Mode::AllOrNothing => {
                let needed = (end.wrapping_sub(self.producer.head) as u64).max(self.expected_footprint);
                if needed > self.capacity() as u64 {
                    return Err(WriteError::NeverFits {
                        needed,
                        capacity: self.capacity() as u64,
                    });
                }
                Err(WriteError::Full {
                    needed,
                    free: self.capacity() as u64 - used as u64,
                })
            }
            Mode::Stream { deadline } => {
                // Publish every finished fragment (and padding) before the open one, so the consumer can
                // drain and free room.
                if self.frag_start != self.producer.head {
                    let done = Tally {
                        bytes: self.tally.bytes - self.frag_len as u64,
                        ..self.tally
                    };
                    self.published += done.bytes;
                    self.producer.publish(self.frag_start, self.seq, done, true);
                    self.tally = Tally {
                        frames: 0,
                        bytes: self.frag_len as u64,
                        pads: 0,
                    };
                }
                let backoff = Backoff::new();
                let mut last_liveness_check = Instant::now();
                loop {
                    spin_wait(&backoff);
                    self.producer.refresh_tail();
                    if self.producer.fits(end) {
                        return Ok(());
                    }
                    let now = Instant::now();
                    if now >= deadline {
                        return Err(WriteError::Timeout {
                            published: self.published,
                        });
                    }
                    // Liveness costs a syscall and a /proc read: at most every 100 ms.
                    if now.duration_since(last_liveness_check) >= LIVENESS_CHECK_EVERY {
                        last_liveness_check = now;
                        if let Some(pid) = self.consumer_dead() {
                            return Err(WriteError::PeerDead { pid });
                        }
                    }
                }
            }
        }
    }

    fn consumer_dead(&self) -> Option<u32> {
        let (pid, liveness) = self.producer.consumer_liveness();
        (liveness == Liveness::Dead).then_some(pid)
    }

    /// Opens a fragment at `pos`, first padding to the ring's end if the expected frame would not fit there.
    fn open_fragment(&mut self) -> Result<(), WriteError> {
        let max_payload = self.producer.limits.max_payload();
        let want = align_frame(FRAME_HEADER + self.hint.clamp(1, max_payload));
        let to_end = self.capacity() - self.offset(self.pos);
        if to_end < want {
            self.pad_to_end(self.pos)?;
        }
        self.frag_start = self.pos;
        self.frag_len = 0;
        let header_end = self.pos.wrapping_add(FRAME_HEADER as u32);
        self.reserve(header_end)?;
        self.pos = header_end;
        self.update_limit();
        Ok(())
    }

    /// Recomputes `limit` from the open fragment and the cached consumer position.
    fn update_limit(&mut self) {
        let start = self.frag_start;
        let frag_max = self.producer.limits.max_frame as usize;
        let ring_end = self.capacity() - self.offset(start);
        let free_end = self
            .producer
            .cached_tail
            .wrapping_add(self.capacity() as u32)
            .wrapping_sub(start) as usize;
        let room = frag_max.min(ring_end).min(free_end);
        self.limit = start.wrapping_add(room as u32);
    }

    /// Writes a padding record from `at` to the ring's end and moves `pos` past it.
    fn pad_to_end(&mut self, at: u32) -> Result<(), WriteError> {
        let to_end = self.capacity() - self.offset(at);
        let end = at.wrapping_add(to_end as u32);
        self.reserve(end)?;
        let pad = FrameHeader {
            length: to_end as u32,
            record_type: record_type::PADDING,
            flags: 0,
            sequence: 0,
        };
        let bytes = pad.encode();
        let n = to_end.min(FRAME_HEADER);
        // SAFETY: `at`..`end` is reserved (free and ours) and ends exactly at the ring's end.
        unsafe { self.producer.mem.write(self.offset(at), &bytes[..n]) };
        self.tally.pads += 1;
        self.pos = end;
        Ok(())
    }

    /// Moves the open fragment from the ring's tail end to offset 0, leaving padding behind.
    fn relocate(&mut self) -> Result<(), WriteError> {
        let body_start = self.frag_start.wrapping_add(FRAME_HEADER as u32);
        let to_end = self.capacity() - self.offset(self.frag_start);
        let new_start = self.frag_start.wrapping_add(to_end as u32);
        let new_pos = new_start.wrapping_add((FRAME_HEADER + self.frag_len) as u32);
        self.reserve(align_up32(new_pos))?;
        // SAFETY: the open fragment's bytes were written by us and are not yet published.
        let body_bytes = unsafe { self.producer.mem.read(self.offset(body_start), self.frag_len) };
        let mut body = std::mem::take(&mut self.producer.relocate_scratch);
        body.clear();
        body.extend_from_slice(&body_bytes);
        drop(body_bytes);
        let old_start = self.frag_start;
        self.pos = old_start;
        self.pad_to_end(old_start)?;
        self.frag_start = new_start;
        // SAFETY: `new_start + 16 .. new_pos` is reserved above and lies at the ring's start.
        unsafe { self.producer.mem.write(FRAME_HEADER, &body) };
        self.producer.relocate_scratch = body;
        self.pos = new_pos;
        Ok(())
    }

    /// Closes the open fragment: writes its header and alignment, advances to the next record.
    fn close_fragment(&mut self, last: bool) -> Result<(), WriteError> {
        let length = FRAME_HEADER + self.frag_len;
        let mut frame_flags = if self.first { flags::BEGIN } else { 0 };
        if last {
            frame_flags |= flags::END;
        }
        if self.abort_marker {
            frame_flags = flags::END | flags::ABORT;
        }
        let header = FrameHeader {
            length: length as u32,
            record_type: self.record_type,
            flags: frame_flags,
            sequence: self.seq,
        };
        let aligned_end = self.frag_start.wrapping_add(align_frame(length) as u32);
        self.reserve(aligned_end)?;
        let gap = aligned_end.wrapping_sub(self.pos) as usize;
        // SAFETY: the header slot and alignment gap belong to this reserved, unpublished fragment.
        unsafe {
            self.producer.mem.write(self.offset(self.frag_start), &header.encode());
            if gap > 0 {
                self.producer
                    .mem
                    .write(self.offset(self.pos), &[0u8; FRAME_ALIGN][..gap]);
            }
        }
        self.pos = aligned_end;
        self.seq = self.seq.wrapping_add(1);
        self.tally.frames += 1;
        self.first = false;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), WriteError> {
        self.close_fragment(true)?;
        let (end, seq, tally) = (self.pos, self.seq, self.tally);
        self.producer.publish(end, seq, tally, false);
        Ok(())
    }

    fn write_some(&mut self, buf: &[u8]) -> Result<usize, WriteError> {
        let max_payload = self.producer.limits.max_payload();
        let written = self.tally.bytes + self.published;
        if written + buf.len() as u64 > self.producer.limits.max_message {
            return Err(WriteError::MessageTooLarge {
                size: written + buf.len() as u64,
                max: self.producer.limits.max_message,
            });
        }
        if self.frag_len == max_payload {
            self.close_fragment(false)?;
            self.hint = self.hint.saturating_sub(max_payload);
            self.open_fragment()?;
        }
        let frag_room = self.capacity() - self.offset(self.frag_start) - (FRAME_HEADER + self.frag_len);
        if frag_room == 0 {
            self.relocate()?;
            return Ok(0);
        }
        let n = buf.len().min(max_payload - self.frag_len).min(frag_room);
        let end = self.pos.wrapping_add(n as u32);
        self.reserve(align_up32(end))?;
        // SAFETY: `pos..end` is reserved, unpublished and inside this fragment (checked against frag_room).
        unsafe { self.producer.mem.write(self.offset(self.pos), &buf[..n]) };
        self.pos = end;
        self.frag_len += n;
        self.tally.bytes += n as u64;
        Ok(n)
    }
}

impl<M: RingMemory> io::Write for MessageWriter<'_, M> {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Fast path (serde_json writes many small pieces): the bytes fit in the open fragment's checked room.
        let room = self.limit.wrapping_sub(self.pos) as usize;
        let total = self.tally.bytes + self.published + buf.len() as u64;
        if buf.len() <= room
            && room <= self.producer.limits.max_frame as usize
            && total <= self.producer.limits.max_message
        {
            // SAFETY: `pos..pos + len` lies before `limit`: inside this unpublished fragment, before the ring's
            // end, and inside the free space.
            unsafe { self.producer.mem.write(self.offset(self.pos), buf) };
            self.pos = self.pos.wrapping_add(buf.len() as u32);
            self.frag_len += buf.len();
            self.tally.bytes += buf.len() as u64;
            return Ok(buf.len());
        }
        self.write_slow(buf)
    }

    #[inline]
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.write(buf).map(|_| ())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<M: RingMemory> MessageWriter<'_, M> {
    #[cold]
    fn write_slow(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.write_some(&buf[done..]) {
                Ok(n) => done += n,
                Err(e) => {
                    let msg = e.to_string();
                    self.failure = Some(e);
                    return Err(io::Error::other(msg));
                }
            }
        }
        self.update_limit();
        Ok(done)
    }
}

/// Rounds a free-running position up to the frame alignment (2^32 is a multiple of 8, so wrapping is exact).
fn align_up32(pos: u32) -> u32 {
    pos.wrapping_add(FRAME_ALIGN as u32 - 1) & !(FRAME_ALIGN as u32 - 1)
}
