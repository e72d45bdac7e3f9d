//! The reading side of a ring.
//!
//! Invariants (layout-spec.md, "Consume protocol"):
//! - Only the consumer stores `consumer_position`, with Release, after it has finished reading every byte
//!   before it; the producer may then overwrite them.
//! - Bytes between `consumer_position` and `producer_position` (loaded with Acquire) are whole records.
//!   Every length read from them is bounds-checked before use ([`crate::frame::check_prefix`]); anything
//!   wrong is a typed [`ReadError`], after which the consumer stays poisoned.
//! - Payloads of unfragmented messages are handed out in place (zero copy) until released; fragmented
//!   messages are reassembled into a buffer owned by the consumer, and their fragments released as read.

use crate::error::{ReadError, RoleError};
use crate::frame::{check_prefix, check_span, FrameHeader, RecordContext};
use crate::layout::{flags, record_type, CLAIM_SEALED, FRAME_ALIGN, FRAME_HEADER};
use crate::liveness::ProcessIdentity;
use crate::memory::RingMemory;
use crate::producer::RingLimits;
use crate::role::{self, Takeover};
use crate::sync::{fence, Ordering};
use std::ops::Deref;

/// The consumer of one ring. Single-threaded by construction (`&mut self`); `Send`.
///
/// Get one from [`Region::consumer`](crate::Region::consumer), from [`Consumer::new`] over any
/// [`RingMemory`], or with its producer from [`heap_channel`](crate::heap_channel). Messages come one at
/// a time ([`Self::read`], zero copy until the guard drops) or in batches ([`Self::read_batch`]).
pub struct Consumer<M: RingMemory> {
    mem: M,
    capacity: usize,
    limits: RingLimits,
    /// Local consumer position: everything before it is consumed (released when `released != tail`).
    tail: u32,
    /// Last value stored to `consumer_position`.
    released: u32,
    /// Last loaded `producer_position`.
    cached_head: u32,
    /// Sequence expected at `tail`.
    next_seq: u64,
    /// Type of the fragmented message being reassembled, if any.
    assembling: Option<u16>,
    /// Reassembly buffer (kept between messages to reuse its allocation).
    assembled: Vec<u8>,
    /// The previous holder left mid-message: skip continuation fragments until a message starts.
    skip_partial: bool,
    /// Taken over from a dead consumer, whose stored `next_sequence` may be ahead of its stored position:
    /// adopt the first record's sequence instead of checking it.
    resync_seq: bool,
    /// Local mirror of the shared `open_message` flag.
    open_message: bool,
    /// Layout 1.1 (a region of minor >= 1): claim messages before delivering them, so a seal is honoured.
    claims: bool,
    /// The last value this consumer stored to the claim word (a position; never the seal bit).
    claimed: u32,
    poisoned: Option<ReadError>,
    /// [`Self::read_batch`]'s scanned-ahead messages (allocated once, at [`CLAIM_GROUP`]).
    group: Vec<Found>,
    frames: u64,
    bytes: u64,
    sleeps: u64,
}

/// Where a found message's payload is.
#[derive(Clone, Copy, Debug)]
enum Location {
    /// In the ring at this data offset and length.
    Ring(usize, usize),
    /// In the consumer's reassembly buffer.
    Assembled,
}

#[derive(Clone, Copy, Debug)]
struct Found {
    record_type: u16,
    sequence: u64,
    location: Location,
    /// Position after the message's last record.
    end: u32,
    /// Sequence expected after it.
    next_seq: u64,
    /// Non-padding records from the consumer position to `end`.
    records: u64,
    /// Their payload bytes.
    record_bytes: u64,
}

/// A message delivered to a [`Consumer::read_batch`] callback; the payload is valid only during the call.
#[derive(Debug)]
pub struct Message<'a> {
    /// Record type code.
    pub record_type: u16,
    /// Sequence number of the message's last record.
    pub sequence: u64,
    /// The payload (in place in the ring, or reassembled).
    pub payload: &'a [u8],
}

/// A message read with [`Consumer::read`]; its bytes stay reserved until this guard drops.
///
/// ```
/// use tasker_ring::{heap_channel, record_type, RingLimits};
///
/// let limits = RingLimits { max_frame: 256, max_message: 4096 };
/// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
/// producer.try_write(record_type::COMPLETION, b"done")?;
///
/// let guard = consumer.read()?.expect("a message");
/// assert_eq!((guard.record_type(), guard.sequence()), (record_type::COMPLETION, 0));
/// assert_eq!(&*guard.payload(), b"done"); // in place in the ring: no copy
/// assert_eq!(producer.free_space(), 1024 - 24); // still reserved...
/// drop(guard);
/// assert_eq!(producer.free_space(), 1024); // ...until the guard drops
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct ReadGuard<'c, M: RingMemory> {
    consumer: &'c mut Consumer<M>,
    found: Found,
}

/// Most messages [`Consumer::read_batch`] scans ahead and claims with one CAS before delivering them.
pub const CLAIM_GROUP: usize = 32;

/// [`Consumer::read_batch`] closes a claim group once it spans this many bytes of the ring. Small messages
/// share a claim; a message of this size or more gets its own, so the scan never runs ahead through records
/// the consumer has not touched yet (each header there is a cache miss that depends on the previous one, where
/// reading in order lets the hardware prefetcher stream them: measured on 2.7 KB events, rtrb_parity).
pub const CLAIM_SPAN: u32 = 2048;

/// [`Consumer::read_batch`] releases what it delivered once `capacity / RELEASE_EVERY` bytes are read (and
/// closes a claim group at that size), so a producer waiting on a full ring is not held for a whole batch.
pub const RELEASE_EVERY: usize = 8;

/// Reassembly buffer bytes kept allocated between messages (larger ones are freed once read).
pub const ASSEMBLY_KEEP: usize = 256 * 1024;

/// A payload view: borrowed from the ring (or a loom-tracked copy), or from the reassembly buffer. It
/// dereferences to `[u8]` either way ([`ReadGuard::payload`]).
pub enum Payload<'a, M: RingMemory + 'a> {
    /// Bytes in the ring.
    Ring(M::Bytes<'a>),
    /// Bytes reassembled from fragments.
    Assembled(&'a [u8]),
}

impl<M: RingMemory> Deref for Payload<'_, M> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Self::Ring(bytes) => bytes,
            Self::Assembled(bytes) => bytes,
        }
    }
}

impl<M: RingMemory> Consumer<M> {
    /// Takes the consumer role of the ring in `mem` (limits as for [`crate::Producer::new`]). Dropping the
    /// consumer releases what it read and gives the role back.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tasker_ring::{Consumer, HeapRing, RingLimits, RoleError};
    ///
    /// let ring = Arc::new(HeapRing::new(1024, 0));
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let _consumer = Consumer::new(Arc::clone(&ring), limits, "completions")?;
    /// let again = Consumer::new(ring, limits, "completions");
    /// assert!(matches!(again, Err(RoleError::Taken { role: "consumer", .. })));
    /// # Ok::<(), RoleError>(())
    /// ```
    ///
    /// # Errors
    /// [`RoleError::Taken`] when a live process, this one included, holds the consumer role. A role
    /// recorded for a dead process is taken over: the sequence is adopted from the next record and the
    /// rest of a message it was reassembling is skipped.
    pub fn new(mem: M, limits: RingLimits, ring: &'static str) -> Result<Self, RoleError> {
        let control = mem.control();
        let takeover = role::take(&control.consumer, ring, "consumer")?;
        // Acquire: pairs with a previous consumer's Release store of its own position.
        let tail = control.consumer_position.value.load(Ordering::Acquire);
        // Relaxed: stored by the previous consumer before its Release of `consumer_position`.
        let next_seq = control.consumer_stats.next_sequence.load(Ordering::Relaxed);
        let stats = &control.consumer_stats;
        // Relaxed: stored before the previous consumer's Release of `consumer_position`, loaded above.
        let open_message = stats.open_message.load(Ordering::Relaxed) != 0;
        let dead_predecessor = matches!(takeover, Takeover::FromDead(_));
        let (frames, bytes, sleeps) = (
            stats.frames.load(Ordering::Relaxed),
            stats.bytes.load(Ordering::Relaxed),
            stats.sleeps.load(Ordering::Relaxed),
        );
        let capacity = mem.capacity();
        let claims = mem.layout_minor() >= 1;
        let (claimed, poisoned) = if claims {
            declare_claiming(&mem, tail)
        } else {
            (tail, None)
        };
        Ok(Self {
            mem,
            capacity,
            limits,
            tail,
            released: tail,
            cached_head: tail,
            next_seq,
            assembling: None,
            assembled: Vec::new(),
            skip_partial: open_message || dead_predecessor,
            resync_seq: dead_predecessor,
            open_message,
            claims,
            claimed,
            poisoned,
            group: Vec::with_capacity(CLAIM_GROUP),
            frames,
            bytes,
            sleeps,
        })
    }

    /// The consumer position (free-running).
    pub fn position(&self) -> u32 {
        self.tail
    }

    /// Published bytes not yet consumed (refreshes the producer position), headers and padding included.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// producer.try_write(record_type::STEP_EVENT, b"hello")?;
    /// assert_eq!((consumer.position(), consumer.pending_bytes()), (0, 24));
    /// drop(consumer.read()?);
    /// assert_eq!((consumer.position(), consumer.pending_bytes()), (24, 0));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn pending_bytes(&mut self) -> usize {
        self.refresh_head();
        self.cached_head.wrapping_sub(self.tail) as usize
    }

    /// Reads the next message, if one is whole. Padding and skippable records are passed over; fragments
    /// are reassembled. The message is released when the guard drops.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// assert!(consumer.read()?.is_none());
    ///
    /// producer.try_write(record_type::STEP_EVENT, &[1; 500])?; // three fragments
    /// let message = consumer.read()?.expect("reassembled");
    /// assert_eq!(&*message.payload(), &[1; 500][..]);
    /// assert_eq!(message.sequence(), 2); // the sequence of its last fragment
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// A [`ReadError`] when the published bytes break a reader's check: positions out of span
    /// (`PositionsCorrupt`, `Misaligned`), a bad record header (`LengthTooSmall`, `FrameTooLarge`,
    /// `Straddles`, `LengthPastPublished`, `BadPadding`, `UnknownRecordType`, `UnknownFlags`), a
    /// `SequenceGap`, a `FragmentOutOfOrder` or a reassembled `MessageTooLarge`. Each names the offending
    /// position; the consumer is poisoned and returns the same error from then on.
    pub fn read(&mut self) -> Result<Option<ReadGuard<'_, M>>, ReadError> {
        match self.next()? {
            Some(found) => {
                self.claim_or_drop(&found)?;
                Ok(Some(ReadGuard { consumer: self, found }))
            }
            None => {
                self.release();
                Ok(None)
            }
        }
    }

    /// Reads up to `max` whole messages, calling `f` for each, and releases them. Returns how many were
    /// delivered. On a read error, what was delivered is released first.
    ///
    /// Messages are scanned ahead in groups (up to [`CLAIM_GROUP`] of them spanning at most [`CLAIM_SPAN`]
    /// bytes or an eighth of the ring; a reassembled message ends its group), claimed with one CAS per group
    /// (layout 1.1, spec 9.5: every message is claimed before it is handed out), then delivered. What was
    /// delivered is released with one store once an eighth of the ring is read and at the end of the batch,
    /// so a producer waiting on a full ring gets room while a long batch is still being read.
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// for n in 0..3u8 {
    ///     producer.try_write(record_type::STEP_EVENT, &[n])?;
    /// }
    /// let mut seen = Vec::new();
    /// assert_eq!(consumer.read_batch(2, |m| seen.push((m.sequence, m.payload[0])))?, 2);
    /// assert_eq!(consumer.read_batch(16, |m| seen.push((m.sequence, m.payload[0])))?, 1);
    /// assert_eq!(seen, [(0, 0), (1, 1), (2, 2)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::read`]: a [`ReadError`] for the first record that breaks a check, after the messages
    /// before it were delivered and released.
    pub fn read_batch<F>(&mut self, max: usize, mut f: F) -> Result<usize, ReadError>
    where
        F: FnMut(Message<'_>),
    {
        let release_every = (self.capacity / RELEASE_EVERY) as u32;
        let mut group = std::mem::take(&mut self.group);
        let mut delivered = 0;
        let outcome = loop {
            if delivered == max {
                break Ok(());
            }
            // Scan ahead: each in-place message is consumed locally as it is found (its bytes stay reserved
            // until `release`, after delivery); a reassembled one must be delivered before the next scan
            // reuses the buffer, so it closes the group.
            group.clear();
            let want = (max - delivered).min(CLAIM_GROUP);
            let start = self.tail;
            let mut failed = None;
            while group.len() < want {
                match self.next() {
                    Ok(Some(found)) => {
                        group.push(found);
                        if matches!(found.location, Location::Assembled) {
                            break;
                        }
                        self.consume(&found);
                        if found.end.wrapping_sub(start) >= release_every.min(CLAIM_SPAN) {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
            }
            let Some(last) = group.last().copied() else {
                break failed.map_or(Ok(()), Err);
            };
            // One claim for the whole group, before any of it is handed out.
            if let Err(e) = self.claim_or_drop(&last) {
                break Err(e);
            }
            for found in &group {
                let payload = self.payload(found);
                f(Message {
                    record_type: found.record_type,
                    sequence: found.sequence,
                    payload: &payload,
                });
            }
            if matches!(last.location, Location::Assembled) {
                self.consume(&last);
            }
            delivered += group.len();
            if let Some(e) = failed {
                break Err(e);
            }
            if self.tail.wrapping_sub(self.released) >= release_every {
                self.release();
            }
        };
        self.group = group;
        self.release();
        outcome.map(|()| delivered)
    }

    /// Publishes "sleeping" and re-checks for data (io_uring's NEED_WAKEUP handshake). Returns `true` if
    /// the caller may sleep until the doorbell; `false` if data arrived meanwhile (the flag is cleared).
    ///
    /// ```
    /// use tasker_ring::{heap_channel, record_type, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
    /// assert!(consumer.prepare_sleep()); // empty: sleep until the producer rings
    /// consumer.wake(); // woken (a doorbell, a timeout): clear the flag, then read
    ///
    /// producer.try_write(record_type::STEP_EVENT, b"x")?;
    /// assert!(!consumer.prepare_sleep()); // data is there: read instead of sleeping
    /// assert!(!producer.consumer_needs_wakeup()); // and no doorbell is needed
    /// # Ok::<(), tasker_ring::WriteError>(())
    /// ```
    pub fn prepare_sleep(&mut self) -> bool {
        // Relaxed: ordered by the SeqCst fence below.
        self.mem.control().consumer_sleeping.value.store(1, Ordering::Relaxed);
        // SeqCst fence: pairs with the producer's SeqCst fence in `consumer_needs_wakeup`. Either the
        // producer sees the flag, or the reload below sees its publish: no lost wake-up.
        fence(Ordering::SeqCst);
        self.refresh_head();
        if self.cached_head != self.tail {
            self.wake();
            return false;
        }
        // Wrapping, as every statistic: counting continues from the value in shared memory (issue 20).
        self.sleeps = self.sleeps.wrapping_add(1);
        // Relaxed: statistics only.
        self.mem
            .control()
            .consumer_stats
            .sleeps
            .store(self.sleeps, Ordering::Relaxed);
        true
    }

    /// Clears the sleeping flag (after a doorbell, a timeout or a change of mind).
    pub fn wake(&self) {
        // Relaxed: the flag only gates doorbells; data is ordered by the positions.
        self.mem.control().consumer_sleeping.value.store(0, Ordering::Relaxed);
    }

    /// Tells whether the process holding the producer role still runs (for maintenance ticks: a reader
    /// that finds nothing to read and a dead producer reports it instead of waiting forever).
    pub fn producer_liveness(&self) -> (u32, crate::liveness::Liveness) {
        role::holder(&self.mem.control().producer)
    }

    /// `Err(PeerDead)` when the process recorded in the producer role is dead. Call it on maintenance ticks
    /// when a read found nothing; after an error, one more read drains what the producer published before
    /// it died (a frame it was writing was never published: the consumer cannot see it).
    ///
    /// ```
    /// use tasker_ring::{heap_channel, RingLimits};
    ///
    /// let limits = RingLimits { max_frame: 256, max_message: 4096 };
    /// let (producer, consumer) = heap_channel(1024, limits, 0);
    /// assert_eq!(consumer.check_producer(), Ok(())); // held by this process, which is alive
    /// drop(producer);
    /// assert_eq!(consumer.check_producer(), Ok(())); // a free role is not a dead producer
    /// ```
    ///
    /// # Errors
    /// [`PeerDead`](crate::PeerDead) with the producer's pid when that process is gone, or its pid now
    /// belongs to a later process.
    pub fn check_producer(&self) -> Result<(), crate::error::PeerDead> {
        match self.producer_liveness() {
            (pid, crate::liveness::Liveness::Dead) => Err(crate::error::PeerDead { role: "producer", pid }),
            _ => Ok(()),
        }
    }

    /// Stamps the consumer heartbeat (call on maintenance ticks, not per event).
    pub fn heartbeat(&self) {
        role::heartbeat(&self.mem.control().consumer);
    }

    fn refresh_head(&mut self) {
        // Acquire: pairs with the producer's Release store of `producer_position`; every record before it
        // is fully written.
        let head = self.mem.control().producer_position.value.load(Ordering::Acquire);
        if head != self.cached_head {
            self.cached_head = head;
            // Relaxed: informational mirror of the private cache; skipped on empty polls.
            self.mem
                .control()
                .consumer_stats
                .cached_producer_position
                .store(head, Ordering::Relaxed);
        }
    }

    fn payload(&self, found: &Found) -> Payload<'_, M> {
        match found.location {
            // SAFETY: the range was bounds-checked against the ring and the published span by `scan`, and
            // stays ours until `consume` + `release`.
            Location::Ring(off, len) => Payload::Ring(unsafe { self.mem.read(off, len) }),
            Location::Assembled => Payload::Assembled(&self.assembled),
        }
    }

    /// Whether the producer sealed the ring (layout 1.1, spec 9.5): how an idle consumer, with nothing to
    /// claim, learns of it on its maintenance ticks. Always false on a region of minor 0.
    pub fn is_sealed(&self) -> bool {
        // Relaxed: informational; the claim CAS decides what is delivered.
        self.claims && self.mem.control().consumer_position.claim.load(Ordering::Relaxed) & CLAIM_SEALED != 0
    }

    /// Bytes the reassembly buffer holds allocated now (at most [`ASSEMBLY_KEEP`] between messages).
    pub fn reassembly_capacity(&self) -> usize {
        self.assembled.capacity()
    }

    /// Empties the reassembly buffer, keeping at most [`ASSEMBLY_KEEP`] bytes of its allocation: one message
    /// near the message limit (64 MiB) must not pin that much memory for the consumer's lifetime.
    fn reset_assembled(&mut self) {
        self.assembled.clear();
        if self.assembled.capacity() > ASSEMBLY_KEEP {
            self.assembled.shrink_to(ASSEMBLY_KEEP);
        }
    }

    /// Marks `found` consumed locally (the store to shared memory happens in `release`).
    fn consume(&mut self, found: &Found) {
        self.tail = found.end;
        self.next_seq = found.next_seq;
        // Wrapping: the statistics continue from the values in shared memory, which a peer may have set
        // anywhere (issue 20, the boundary-value cases); they are counters, never sizes.
        self.frames = self.frames.wrapping_add(found.records);
        self.bytes = self.bytes.wrapping_add(found.record_bytes);
        if matches!(found.location, Location::Assembled) {
            self.reset_assembled();
        }
    }

    /// Claims `found` before it is delivered (layout 1.1, spec 9.5). When the producer sealed first, the
    /// message is dropped undelivered (consumed, released) and the consumer stays sealed.
    fn claim_or_drop(&mut self, found: &Found) -> Result<(), ReadError> {
        if let Err(e) = self.claim(found.end) {
            if self.tail != found.end {
                self.consume(found);
            }
            self.release();
            self.poisoned = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Moves the claim word from `claimed` to `end` (a no-op without claims or when already there).
    fn claim(&mut self, end: u32) -> Result<(), ReadError> {
        if !self.claims || end == self.claimed {
            return Ok(());
        }
        let claim = &self.mem.control().consumer_position.claim;
        // AcqRel: pairs with the producer's SeqCst `fetch_or` in `Producer::seal`; exactly one of the two
        // wins the word. Acquire on failure: the seal bit is all we read.
        match claim.compare_exchange(self.claimed, end, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => {
                self.claimed = end;
                Ok(())
            }
            Err(found) => Err(claim_failure(self.claimed, found)),
        }
    }

    /// Stores the consumer position if it moved, handing the space back to the producer.
    fn release(&mut self) {
        if self.released == self.tail {
            return;
        }
        // The position never runs ahead of the claim (spec 9.5): padding and skipped records past the last
        // delivered message are claimed with it. A seal found here loses nothing (nothing was delivered).
        if self.poisoned.is_none() {
            if let Err(e) = self.claim(self.tail) {
                self.poisoned = Some(e);
            }
        }
        let control = self.mem.control();
        let stats = &control.consumer_stats;
        let open = self.assembling.is_some();
        if open != self.open_message {
            self.open_message = open;
            // Relaxed: rides on the Release store of `consumer_position` below.
            stats.open_message.store(open as u32, Ordering::Relaxed);
        }
        // Relaxed: statistics; they ride on the Release store below.
        stats.next_sequence.store(self.next_seq, Ordering::Relaxed);
        stats.frames.store(self.frames, Ordering::Relaxed);
        stats.bytes.store(self.bytes, Ordering::Relaxed);
        // Release: pairs with the producer's Acquire load of `consumer_position`; our reads of the bytes
        // before `tail` happen before it may overwrite them.
        control.consumer_position.value.store(self.tail, Ordering::Release);
        self.released = self.tail;
    }

    fn next(&mut self) -> Result<Option<Found>, ReadError> {
        if let Some(e) = &self.poisoned {
            return Err(e.clone());
        }
        self.scan().inspect_err(|e| self.poisoned = Some(e.clone()))
    }

    /// Copies `N` bytes of record header at data offset `off` (bounds checked by the caller).
    fn header_bytes<const N: usize>(&self, off: usize) -> [u8; N] {
        // SAFETY: `off + N` lies inside a record the published span covers (checked before each call).
        let bytes = unsafe { self.mem.read(off, N) };
        let mut out = [0u8; N];
        out.copy_from_slice(&bytes);
        out
    }

    /// Walks records from `tail` to the next whole message.
    fn scan(&mut self) -> Result<Option<Found>, ReadError> {
        let mut pos = self.tail;
        let mut seq = self.next_seq;
        let (mut records, mut record_bytes) = (0u64, 0u64);
        loop {
            let mut available = check_span(pos, self.cached_head, self.capacity)?;
            if available == 0 {
                self.refresh_head();
                available = check_span(pos, self.cached_head, self.capacity)?;
                if available == 0 {
                    // Padding, skipped records and fragments before `pos` are consumed.
                    self.tail = pos;
                    self.next_seq = seq;
                    self.frames = self.frames.wrapping_add(records);
                    self.bytes = self.bytes.wrapping_add(record_bytes);
                    return Ok(None);
                }
            }
            let ctx = RecordContext {
                position: pos,
                capacity: self.capacity,
                available,
                max_frame: self.limits.max_frame as usize,
            };
            let off = ctx.offset();
            let mut header = FrameHeader::decode_prefix(self.header_bytes::<FRAME_ALIGN>(off));
            check_prefix(&header, &ctx)?;
            let next = pos.wrapping_add(header.footprint() as u32);
            if header.record_type == record_type::PADDING {
                pos = next;
                continue;
            }
            header = header.with_sequence(self.header_bytes::<8>(off + FRAME_ALIGN));
            // An abort marker restarts the sequence (a producer that took over after a crash may not know
            // it exactly); so does the first record a consumer reads after taking over from a dead one.
            if header.flags & flags::ABORT != 0 || self.resync_seq {
                seq = header.sequence;
                self.resync_seq = false;
            }
            if header.sequence != seq {
                return Err(ReadError::SequenceGap {
                    position: pos,
                    expected: seq,
                    found: header.sequence,
                });
            }
            // Wrapping: a hostile or crashed peer may write sequence u64::MAX (an abort marker adopts it).
            seq = seq.wrapping_add(1);
            records += 1;
            record_bytes += header.payload_len() as u64;
            let body = Location::Ring(off + FRAME_HEADER, header.payload_len());
            let frag = header.flags & (flags::BEGIN | flags::END);
            if header.flags & flags::ABORT != 0 {
                self.assembling = None;
                self.reset_assembled();
                self.skip_partial = false;
                pos = next;
                continue;
            }
            match (frag, self.assembling) {
                (flags::UNFRAGMENTED, None) if !record_type::is_delivered(header.record_type) => {}
                (flags::UNFRAGMENTED, None) => {
                    self.skip_partial = false;
                    return Ok(Some(Found {
                        record_type: header.record_type,
                        sequence: header.sequence,
                        location: body,
                        end: next,
                        next_seq: seq,
                        records,
                        record_bytes,
                    }));
                }
                (flags::BEGIN, None) => {
                    self.skip_partial = false;
                    self.assembling = Some(header.record_type);
                    self.append(&header, off, pos)?;
                }
                (0 | flags::END, None) if self.skip_partial => {}
                (0, Some(t)) if t == header.record_type => self.append(&header, off, pos)?,
                (flags::END, Some(t)) if t == header.record_type => {
                    self.append(&header, off, pos)?;
                    self.assembling = None;
                    if !record_type::is_delivered(t) {
                        self.reset_assembled();
                    } else {
                        return Ok(Some(Found {
                            record_type: t,
                            sequence: seq.wrapping_sub(1),
                            location: Location::Assembled,
                            end: next,
                            next_seq: seq,
                            records,
                            record_bytes,
                        }));
                    }
                }
                _ => {
                    return Err(ReadError::FragmentOutOfOrder {
                        position: pos,
                        flags: header.flags,
                    })
                }
            }
            pos = next;
        }
    }

    fn append(&mut self, header: &FrameHeader, off: usize, position: u32) -> Result<(), ReadError> {
        let len = header.payload_len();
        let size = (self.assembled.len() + len) as u64;
        if size > self.limits.max_message {
            return Err(ReadError::MessageTooLarge {
                position,
                size,
                max: self.limits.max_message,
            });
        }
        // SAFETY: `off + 16 + len` was checked against the ring and the published span by `check_prefix`.
        let bytes = unsafe { self.mem.read(off + FRAME_HEADER, len) };
        self.assembled.extend_from_slice(&bytes);
        Ok(())
    }
}

impl<M: RingMemory> Drop for Consumer<M> {
    fn drop(&mut self) {
        self.release();
        let line = &self.mem.control().consumer;
        if self.claims {
            let mine = ProcessIdentity::current().word();
            // Relaxed: rides on the identity's Release in `role::release` below. A CAS, not a store: a
            // rival that took the role over (judging us dead) declared its own word, which must stay.
            let _ = line
                .claiming_identity
                .compare_exchange(mine, 0, Ordering::Relaxed, Ordering::Relaxed);
        }
        role::release(line);
    }
}

/// Declares this consumer as claiming (spec 9.5, at role take) and resets the claim to the position `tail`.
/// Returns the claim and, for a sealed ring or a corrupt claim word, the sticky error.
fn declare_claiming<M: RingMemory>(mem: &M, tail: u32) -> (u32, Option<ReadError>) {
    let control = mem.control();
    // SeqCst: pairs with the producer's SeqCst loads after its seal (Dekker): either the load below sees
    // the seal, or the producer sees this consumer claiming.
    control
        .consumer
        .claiming_identity
        .store(ProcessIdentity::current().word(), Ordering::SeqCst);
    // SeqCst: the second half of the pair above.
    let found = control.consumer_position.claim.load(Ordering::SeqCst);
    if found & CLAIM_SEALED != 0 {
        return (
            found & !CLAIM_SEALED,
            Some(ReadError::Sealed {
                claimed: found & !CLAIM_SEALED,
            }),
        );
    }
    // A dead predecessor may have claimed past its released position: what it claimed and did not run is
    // read again, as any unreleased read is. AcqRel/Acquire: pairs with the producer's seal, as in `claim`.
    match control
        .consumer_position
        .claim
        .compare_exchange(found, tail, Ordering::AcqRel, Ordering::Acquire)
    {
        Ok(_) => (tail, None),
        Err(now) => (tail, Some(claim_failure(tail, now))),
    }
}

/// The error for a claim word that did not hold this consumer's last claim.
fn claim_failure(expected: u32, found: u32) -> ReadError {
    if found & CLAIM_SEALED != 0 {
        ReadError::Sealed {
            claimed: found & !CLAIM_SEALED,
        }
    } else {
        ReadError::ClaimCorrupt { expected, found }
    }
}

impl<M: RingMemory> ReadGuard<'_, M> {
    /// Record type code.
    pub fn record_type(&self) -> u16 {
        self.found.record_type
    }

    /// Sequence number of the message's last record.
    pub fn sequence(&self) -> u64 {
        self.found.sequence
    }

    /// The payload, in place (unfragmented) or reassembled.
    pub fn payload(&self) -> Payload<'_, M> {
        self.consumer.payload(&self.found)
    }
}

impl<M: RingMemory> Drop for ReadGuard<'_, M> {
    fn drop(&mut self) {
        let found = self.found;
        self.consumer.consume(&found);
        self.consumer.release();
    }
}
