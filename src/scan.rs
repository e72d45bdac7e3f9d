//! Read-only decoding of a ring's records for the inspector (`tasker-ring dump` and `tail`).
//!
//! Two parts:
//! - [`Scanner`]: a pure decoder over a **copy** of ring bytes starting at a free-running position. It applies
//!   exactly the reader's checks of layout-spec.md section 9.2 (through [`check_span`] and [`check_prefix`],
//!   the functions the real [`crate::Consumer`] uses) and section 9.3's rules for each record, but instead of
//!   delivering messages it yields every [`Record`]: padding, whole messages (reassembled from fragments),
//!   skippable messages, abort markers, partial messages and, at most once and last, a corrupt record.
//!   After a corrupt record the length of that record cannot be trusted, so nothing past it can be found:
//!   the scanner stops there (as a poisoned consumer would).
//! - [`capture`]: copies the bytes of a live ring through a read-only [`RegionView`] without writing a
//!   byte, moving a position or taking a role, and re-reads the positions after copying (seqlock style) so
//!   bytes the producer may have overwritten meanwhile are dropped rather than decoded.
//!
//! Why a copy: the producer keeps writing while the inspector reads. A copy cannot change under the checks,
//! and the re-read of the positions tells which part of the copy is certainly intact.

use crate::error::ReadError;
use crate::frame::{check_prefix, check_span, FrameHeader, RecordContext};
use crate::layout::{flags, record_type, COMPLETION_ID_LEN, FRAME_ALIGN, FRAME_HEADER};
use crate::region::{Layout, RegionView, RingId, RingSnapshot};
use crate::sync::{fence, Ordering};
use std::borrow::Cow;
use std::collections::VecDeque;

/// The sizes a scanner checks records against (from the region header and the ring's descriptor).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingGeometry {
    /// Ring capacity in bytes (a power of two).
    pub capacity: usize,
    /// Largest frame record (`max_frame_size`).
    pub max_frame: u32,
    /// Largest reassembled message (`max_message_size`).
    pub max_message: u64,
}

impl RingGeometry {
    /// The geometry of ring `id` of a validated layout.
    pub fn of(layout: &Layout, id: RingId) -> Self {
        Self {
            capacity: layout.rings[id.index()].capacity as usize,
            max_frame: layout.header.max_frame_size,
            max_message: layout.header.max_message_size,
        }
    }
}

/// What the scanner assumes about its starting position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScanOptions {
    /// Sequence expected of the first non-padding record; `None` adopts whatever it carries (an inspector
    /// starting at an arbitrary position cannot know it) and checks continuity from there.
    pub expected_sequence: Option<u64>,
    /// The start may lie inside a message (the consumer released some of its fragments, or the scan starts
    /// at an arbitrary record): continuation fragments before the first `BEGIN`, unfragmented message or
    /// abort are reported as a [`Record::Partial`] with `begins_before` set, exactly where a consumer taking
    /// the role with `skip_partial` would skip them. When `false` they are `FragmentOutOfOrder`.
    pub mid_message: bool,
}

impl ScanOptions {
    /// An inspector's defaults: adopt the first sequence, and allow the start to be inside a message.
    pub const INSPECT: Self = Self {
        expected_sequence: None,
        mid_message: true,
    };
}

/// The header fields of one non-padding record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameInfo {
    /// Free-running position of the record.
    pub position: u32,
    /// Its `length` field (header plus payload, before alignment).
    pub length: u32,
    /// Its record type.
    pub record_type: u16,
    /// Its flags (`BEGIN`, `END`, `ABORT`).
    pub flags: u16,
    /// Its sequence number.
    pub sequence: u64,
}

impl FrameInfo {
    /// Position after the record (its start plus its footprint).
    pub fn end(&self) -> u32 {
        self.position
            .wrapping_add(((self.length as usize + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)) as u32)
    }
}

/// A message: one unfragmented record, or the fragments of one message with their payloads concatenated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScannedMessage<'a> {
    /// Record type of every fragment.
    pub record_type: u16,
    /// Every record of the message, in order (one for an unfragmented message).
    pub frames: Vec<FrameInfo>,
    /// The payload: borrowed from the copy for one record, reassembled otherwise.
    pub payload: Cow<'a, [u8]>,
}

impl ScannedMessage<'_> {
    /// Position of the first record.
    pub fn first_position(&self) -> u32 {
        self.frames[0].position
    }

    /// Position of the last record.
    pub fn last_position(&self) -> u32 {
        self.frames[self.frames.len() - 1].position
    }

    /// Position after the last record.
    pub fn end_position(&self) -> u32 {
        self.frames[self.frames.len() - 1].end()
    }

    /// Sequence of the first record.
    pub fn first_sequence(&self) -> u64 {
        self.frames[0].sequence
    }

    /// Sequence of the last record: the message's sequence as a consumer delivers it.
    pub fn sequence(&self) -> u64 {
        self.frames[self.frames.len() - 1].sequence
    }

    /// Whether the message spans more than one record.
    pub fn is_fragmented(&self) -> bool {
        self.frames.len() > 1
    }
}

/// How a partial message ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PartialEnd {
    /// With its `END` fragment: only its beginning lies before the scan's start.
    End,
    /// An abort marker follows: the writer abandoned it and readers discard it.
    Aborted,
    /// A new message starts before its `END` (only after the scan's start: continuation fragments whose
    /// `BEGIN` was released by the consumer are skipped that way).
    Interrupted,
    /// The copy ends before its `END`: the rest is not published yet (a streamed write in progress).
    Unpublished,
    /// A corrupt record follows it.
    Corrupt,
}

impl PartialEnd {
    /// Stable lower-case name (used in `--json`).
    pub fn name(self) -> &'static str {
        match self {
            Self::End => "end",
            Self::Aborted => "aborted",
            Self::Interrupted => "interrupted",
            Self::Unpublished => "unpublished",
            Self::Corrupt => "corrupt",
        }
    }
}

/// One thing found in the ring, in position order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record<'a> {
    /// A padding record from `position` to the ring's end.
    Padding {
        /// Its position.
        position: u32,
        /// Its length (bytes to the ring's end).
        length: u32,
    },
    /// A whole message a consumer delivers (type below 0x8000).
    Message(ScannedMessage<'a>),
    /// A whole message of a skippable type (0x8000 and up, NOOP included) that consumers skip.
    Skippable(ScannedMessage<'a>),
    /// An abort marker (`END|ABORT`, empty payload): readers discard what they assembled, and the sequence
    /// restarts from its own.
    Abort(FrameInfo),
    /// Fragments of a message that is not whole in this copy.
    Partial {
        /// The fragments found and their payloads.
        message: ScannedMessage<'a>,
        /// The message's `BEGIN` lies before the scan's start.
        begins_before: bool,
        /// What follows the last fragment found.
        ends: PartialEnd,
    },
    /// A record that fails a check of layout-spec.md 9.2 or 9.3. Always the last record of a scan: its
    /// length cannot be trusted, so the next record cannot be found.
    Corrupt {
        /// Position of the offending record.
        position: u32,
        /// The check that failed, exactly as a consumer would report it.
        error: ReadError,
    },
}

impl Record<'_> {
    /// Position of the record (the first fragment's, for messages).
    pub fn position(&self) -> u32 {
        match self {
            Self::Padding { position, .. } | Self::Corrupt { position, .. } => *position,
            Self::Message(m) | Self::Skippable(m) | Self::Partial { message: m, .. } => m.first_position(),
            Self::Abort(f) => f.position,
        }
    }
}

/// Fragments being collected.
#[derive(Debug)]
struct Assembly<'a> {
    record_type: u16,
    frames: Vec<FrameInfo>,
    payload: Cow<'a, [u8]>,
}

impl<'a> Assembly<'a> {
    fn new(frame: FrameInfo, payload: &'a [u8]) -> Self {
        Self {
            record_type: frame.record_type,
            frames: vec![frame],
            payload: Cow::Borrowed(payload),
        }
    }

    fn push(&mut self, frame: FrameInfo, payload: &[u8]) {
        self.frames.push(frame);
        self.payload.to_mut().extend_from_slice(payload);
    }

    fn into_message(self) -> ScannedMessage<'a> {
        ScannedMessage {
            record_type: self.record_type,
            frames: self.frames,
            payload: self.payload,
        }
    }
}

/// Decodes the records in a copy of ring bytes. An iterator of [`Record`]s in position order; it never
/// panics and never reads outside the copy, whatever the bytes and positions.
///
/// ```
/// use tasker_ring::frame::FrameHeader;
/// use tasker_ring::scan::{Record, RingGeometry, ScanOptions, Scanner};
/// use tasker_ring::{flags, record_type, ReadError};
///
/// // Ring bytes from position 0: a message, then a record of a type no reader knows.
/// let (record_type, flags) = (record_type::STEP_EVENT, flags::UNFRAGMENTED);
/// let message = FrameHeader { length: 16 + 8, record_type, flags, sequence: 0 };
/// let unknown = FrameHeader { record_type: 0x0042, sequence: 1, ..message };
/// let mut bytes = Vec::new();
/// bytes.extend_from_slice(&message.encode());
/// bytes.extend_from_slice(br#"{"n":12}"#);
/// bytes.extend_from_slice(&unknown.encode());
/// bytes.extend_from_slice(&[0; 8]);
///
/// let geometry = RingGeometry { capacity: 256, max_frame: 128, max_message: 1024 };
/// let end = bytes.len() as u32; // the producer position
/// let records: Vec<Record> = Scanner::new(&bytes, 0, end, geometry, ScanOptions::INSPECT).collect();
/// assert!(matches!(&records[0], Record::Message(m) if *m.payload == *br#"{"n":12}"#));
/// // The scan stops at a corrupt record: its length cannot be trusted.
/// assert!(matches!(records[1], Record::Corrupt { position: 24, error: ReadError::UnknownRecordType { .. } }));
/// assert_eq!(records.len(), 2);
/// ```
#[derive(Debug)]
pub struct Scanner<'a> {
    bytes: &'a [u8],
    start: u32,
    end: u32,
    geometry: RingGeometry,
    pos: u32,
    /// Sequence expected next (`None`: adopt the next record's).
    seq: Option<u64>,
    /// Continuation fragments without a `BEGIN` are skipped (reported as partial), as after a hand-over.
    skip_partial: bool,
    assembling: Option<Assembly<'a>>,
    /// A run of continuation fragments whose `BEGIN` lies before the start.
    orphans: Option<Assembly<'a>>,
    /// Padding met while fragments are open; reported after them, to keep position order.
    held: Vec<Record<'a>>,
    out: VecDeque<Record<'a>>,
    done: bool,
}

impl<'a> Scanner<'a> {
    /// A scanner over `bytes`, the ring's bytes from free-running position `start` on (as
    /// [`RegionView::copy_ring_bytes`] returns them), up to the producer position `end`.
    ///
    /// `start` and `end` get the span checks S1-S2 first (a failure is the scan's only record). If `bytes`
    /// holds less than `end - start`, only what it holds counts as published.
    pub fn new(bytes: &'a [u8], start: u32, end: u32, geometry: RingGeometry, options: ScanOptions) -> Self {
        let mut scanner = Self {
            bytes,
            start,
            end,
            geometry,
            pos: start,
            seq: options.expected_sequence,
            skip_partial: options.mid_message,
            assembling: None,
            orphans: None,
            held: Vec::new(),
            out: VecDeque::new(),
            done: false,
        };
        let sane = geometry.capacity.is_power_of_two() && geometry.capacity >= 2 * FRAME_HEADER;
        if !sane {
            // Not a ring this layout allows; report it as the positions being unusable.
            scanner.fail(
                start,
                ReadError::PositionsCorrupt {
                    consumer: start,
                    producer: end,
                },
            );
            return scanner;
        }
        match check_span(start, end, geometry.capacity) {
            Err(error) => scanner.fail(start, error),
            Ok(span) if bytes.len() < span => {
                let held = (bytes.len() & !(FRAME_ALIGN - 1)) as u32;
                scanner.end = start.wrapping_add(held);
            }
            Ok(_) => {}
        }
        scanner
    }

    /// Where the scan is: after the last record decoded, or at the corrupt record.
    pub fn position(&self) -> u32 {
        self.pos
    }

    /// Sequence expected of the next record (`None` if no non-padding record was read yet and none was
    /// expected).
    pub fn next_sequence(&self) -> Option<u64> {
        self.seq
    }

    /// The position the scan ends at (the producer position, or less if the copy was shorter).
    pub fn end(&self) -> u32 {
        self.end
    }

    /// Reports every open fragment run with how it ends, then held padding.
    fn close_open(&mut self, ends: PartialEnd) {
        if let Some(a) = self.assembling.take() {
            self.out.push_back(Record::Partial {
                message: a.into_message(),
                begins_before: false,
                ends,
            });
        }
        self.close_orphans(ends);
        self.out.extend(self.held.drain(..));
    }

    fn close_orphans(&mut self, ends: PartialEnd) {
        if let Some(a) = self.orphans.take() {
            self.out.push_back(Record::Partial {
                message: a.into_message(),
                begins_before: true,
                ends,
            });
            self.out.extend(self.held.drain(..));
        }
    }

    fn fail(&mut self, position: u32, error: ReadError) {
        self.close_open(PartialEnd::Corrupt);
        self.out.push_back(Record::Corrupt { position, error });
        self.done = true;
    }

    fn check_size(&self, position: u32, size: usize) -> Result<(), ReadError> {
        if size as u64 > self.geometry.max_message {
            return Err(ReadError::MessageTooLarge {
                position,
                size: size as u64,
                max: self.geometry.max_message,
            });
        }
        Ok(())
    }

    /// Decodes one record (layout-spec.md 9.1 steps 2-3).
    fn step(&mut self) {
        let available = self.end.wrapping_sub(self.pos) as usize;
        if available == 0 {
            self.close_open(PartialEnd::Unpublished);
            self.done = true;
            return;
        }
        if let Err(error) = self.record() {
            self.fail(self.pos, error);
        }
    }

    fn record(&mut self) -> Result<(), ReadError> {
        let pos = self.pos;
        let available = self.end.wrapping_sub(pos) as usize;
        // `pos` lies in `start..end` and `end - start <= bytes.len()`, both multiples of 8: the prefix is
        // inside the copy. Every later read is bounded by `check_prefix` against `available`.
        let at = pos.wrapping_sub(self.start) as usize;
        let mut prefix = [0u8; FRAME_ALIGN];
        prefix.copy_from_slice(&self.bytes[at..at + FRAME_ALIGN]);
        let mut header = FrameHeader::decode_prefix(prefix);
        let ctx = RecordContext {
            position: pos,
            capacity: self.geometry.capacity,
            available,
            max_frame: self.geometry.max_frame as usize,
        };
        check_prefix(&header, &ctx)?;
        let next = pos.wrapping_add(header.footprint() as u32);
        if header.record_type == record_type::PADDING {
            let padding = Record::Padding {
                position: pos,
                length: header.length,
            };
            if self.assembling.is_some() || self.orphans.is_some() {
                self.held.push(padding);
            } else {
                self.out.push_back(padding);
            }
            self.pos = next;
            return Ok(());
        }
        let mut seq_bytes = [0u8; 8];
        seq_bytes.copy_from_slice(&self.bytes[at + FRAME_ALIGN..at + FRAME_HEADER]);
        header = header.with_sequence(seq_bytes);
        // R8: an abort marker restarts the sequence; so does the first record when none is expected.
        let expected = match self.seq {
            Some(s) if header.flags & flags::ABORT == 0 => s,
            _ => header.sequence,
        };
        if header.sequence != expected {
            return Err(ReadError::SequenceGap {
                position: pos,
                expected,
                found: header.sequence,
            });
        }
        self.seq = Some(expected.wrapping_add(1));
        let frame = FrameInfo {
            position: pos,
            length: header.length,
            record_type: header.record_type,
            flags: header.flags,
            sequence: header.sequence,
        };
        let payload: &'a [u8] = &self.bytes[at + FRAME_HEADER..at + header.length as usize];
        if header.flags & flags::ABORT != 0 {
            self.close_open(PartialEnd::Aborted);
            self.skip_partial = false;
            self.out.push_back(Record::Abort(frame));
            self.pos = next;
            return Ok(());
        }
        let skippable = !record_type::is_delivered(header.record_type);
        match (
            header.flags & flags::UNFRAGMENTED,
            self.assembling.as_ref().map(|a| a.record_type),
        ) {
            (flags::UNFRAGMENTED, None) => {
                // A consumer delivers (or skips) it; a skippable one leaves `skip_partial` as it is.
                self.close_orphans(PartialEnd::Interrupted);
                let message = Assembly::new(frame, payload).into_message();
                if skippable {
                    self.out.push_back(Record::Skippable(message));
                } else {
                    self.skip_partial = false;
                    self.out.push_back(Record::Message(message));
                }
            }
            (flags::BEGIN, None) => {
                self.skip_partial = false;
                self.close_orphans(PartialEnd::Interrupted);
                self.check_size(pos, payload.len())?;
                self.assembling = Some(Assembly::new(frame, payload));
            }
            (0 | flags::END, None) if self.skip_partial => {
                if self
                    .orphans
                    .as_ref()
                    .is_some_and(|o| o.record_type != frame.record_type)
                {
                    self.close_orphans(PartialEnd::Interrupted);
                }
                match &mut self.orphans {
                    Some(run) => run.push(frame, payload),
                    None => self.orphans = Some(Assembly::new(frame, payload)),
                }
                if header.flags & flags::END != 0 {
                    self.close_orphans(PartialEnd::End);
                }
            }
            (0, Some(t)) if t == header.record_type => {
                let size = self.assembling.as_ref().map_or(0, |a| a.payload.len()) + payload.len();
                self.check_size(pos, size)?;
                if let Some(a) = &mut self.assembling {
                    a.push(frame, payload);
                }
            }
            (flags::END, Some(t)) if t == header.record_type => {
                let size = self.assembling.as_ref().map_or(0, |a| a.payload.len()) + payload.len();
                self.check_size(pos, size)?;
                if let Some(mut a) = self.assembling.take() {
                    a.push(frame, payload);
                    let message = a.into_message();
                    self.out.push_back(if skippable {
                        Record::Skippable(message)
                    } else {
                        Record::Message(message)
                    });
                    self.out.extend(self.held.drain(..));
                }
            }
            _ => {
                return Err(ReadError::FragmentOutOfOrder {
                    position: pos,
                    flags: header.flags,
                })
            }
        }
        self.pos = next;
        Ok(())
    }
}

impl<'a> Iterator for Scanner<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        loop {
            if let Some(record) = self.out.pop_front() {
                return Some(record);
            }
            if self.done {
                return None;
            }
            self.step();
        }
    }
}

impl std::iter::FusedIterator for Scanner<'_> {}

/// Which bytes of a copy [`capture`] keeps once it has re-read the positions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trust {
    /// Only bytes the consumer had not released when the copy ended. The producer writes only below
    /// `consumer_position + capacity`, so these are certainly intact. `dump` uses this.
    Unconsumed,
    /// Also released bytes that are still at least half a ring ahead of the producer's published position
    /// when the copy ended. The producer only writes past its published position what it is about to
    /// publish (one message, or the finished fragments of a streamed one), so these are intact unless more
    /// than half a ring was in flight unpublished. `tail` uses this, since a live consumer releases records
    /// within microseconds of their publication.
    Recent,
}

/// A copy of part of a live ring, cut to the part that is certainly intact.
#[derive(Clone, Debug)]
pub struct Capture {
    /// The ring copied.
    pub ring: RingId,
    /// Its geometry.
    pub geometry: RingGeometry,
    /// The control block, loaded before the copy.
    pub before: RingSnapshot,
    /// The control block, re-loaded after the copy.
    pub after: RingSnapshot,
    /// Where the copy started (the requested position).
    pub requested: u32,
    /// First position kept: `requested`, or later when bytes may have been overwritten while copying.
    pub start: u32,
    /// The producer position loaded before the copy: every record before it is whole.
    pub end: u32,
    /// The ring's bytes from `start` to `end` (or, when the positions are corrupt, up to a capacity of them).
    pub bytes: Vec<u8>,
}

impl Capture {
    /// Bytes between the requested position and the first one kept (consumed or possibly overwritten
    /// while copying).
    pub fn dropped(&self) -> u32 {
        self.start.wrapping_sub(self.requested)
    }

    /// A scanner over the kept bytes.
    pub fn scanner(&self, options: ScanOptions) -> Scanner<'_> {
        Scanner::new(&self.bytes, self.start, self.end, self.geometry, options)
    }
}

/// Whether free-running position `a` lies after `b` (positions a capacity or so apart at most, so the
/// signed distance decides).
fn after(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// Copies ring `id` of a read-only view from `from` (default: the consumer position) up to the producer
/// position, then re-reads the positions and drops the leading bytes that `trust` does not vouch for.
///
/// Never writes to the region. If the positions break the span checks the copy is kept whole (at most a
/// capacity), and the scanner reports them as its only record.
///
/// ```
/// use tasker_ring::scan::{capture, Record, ScanOptions, Trust};
/// use tasker_ring::{record_type, region_path, Region, RegionConfig, RegionView, RingId};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let nanos = std::time::UNIX_EPOCH.elapsed()?.as_nanos();
/// # let name = format!("tasker-ring-doc-scan-{}-{nanos}", std::process::id());
/// let path = region_path(&std::env::temp_dir(), &name)?;
/// let small = RegionConfig {
///     events_capacity: 4096,
///     completions_capacity: 4096,
///     max_frame_size: 1024,
///     ..RegionConfig::default()
/// };
/// let region = Region::create(&path, &small)?;
/// let mut events = region.producer(RingId::Events)?;
/// events.try_write(record_type::STEP_EVENT, br#"{"n":1}"#)?;
/// events.try_write(record_type::STEP_EVENT, &[b' '; 3000])?; // three fragments
///
/// // The inspector's side: a read-only mapping, a copy, its decoding. Nothing is consumed.
/// let view = RegionView::attach(&path)?;
/// let snapshot = capture(&view, RingId::Events, None, Trust::Unconsumed);
/// assert_eq!((snapshot.start, snapshot.end, snapshot.dropped()), (0, 3072, 0));
/// let records: Vec<Record> = snapshot.scanner(ScanOptions::INSPECT).collect();
/// assert!(matches!(&records[0], Record::Message(m) if m.sequence() == 0));
/// assert!(matches!(&records[1], Record::Message(m) if m.frames.len() == 3 && m.payload.len() == 3000));
/// assert_eq!(records.len(), 2);
///
/// region.unlink()?;
/// # Ok(()) }
/// ```
pub fn capture(view: &RegionView, id: RingId, from: Option<u32>, trust: Trust) -> Capture {
    let geometry = RingGeometry::of(view.layout(), id);
    let cap = geometry.capacity;
    let before = view.snapshot(id);
    let requested = from.unwrap_or(before.consumer_position);
    let end = before.producer_position;
    let span = end.wrapping_sub(requested) as usize;
    let mut bytes = view.copy_ring_bytes(id, requested, span.min(cap));
    // Acquire fence: the copy's loads are ordered before the reloads below (a seqlock reader's fence).
    // If the copy saw a byte the producer wrote over an old one, the reload sees the consumer position
    // that allowed that write.
    fence(Ordering::Acquire);
    let after_copy = view.snapshot(id);
    let mut start = requested;
    if check_span(requested, end, cap).is_ok() {
        // The first position still certainly intact: the consumer position now (the producer writes only
        // below it plus a capacity), or for `Recent` half a ring behind the producer if that is earlier.
        let c2 = after_copy.consumer_position;
        let floor = match trust {
            Trust::Unconsumed => c2,
            Trust::Recent => {
                let half_behind = after_copy.producer_position.wrapping_sub(cap as u32 / 2);
                if after(c2, half_behind) {
                    half_behind
                } else {
                    c2
                }
            }
        };
        let cut = if !after(floor, requested) {
            0
        } else if after(floor, end) {
            span
        } else {
            floor.wrapping_sub(requested) as usize
        };
        if cut > 0 {
            bytes.drain(..cut);
            start = requested.wrapping_add(cut as u32);
        }
    }
    Capture {
        ring: id,
        geometry,
        before,
        after: after_copy,
        requested,
        start,
        end,
        bytes,
    }
}

/// A record type's name: `step_event`, `completion`, `noop`, `padding`, or its code (`0x8001`).
///
/// ```
/// use tasker_ring::scan::{flags_name, type_name};
/// use tasker_ring::{flags, record_type};
///
/// assert_eq!(type_name(record_type::STEP_EVENT), "step_event");
/// assert_eq!(type_name(0x8001), "0x8001");
/// assert_eq!(flags_name(flags::UNFRAGMENTED), "BEGIN|END");
/// assert_eq!(flags_name(0), "-");
/// assert_eq!(flags_name(flags::END | 0x10), "END|0x0010");
/// ```
pub fn type_name(t: u16) -> Cow<'static, str> {
    match t {
        record_type::PADDING => "padding".into(),
        record_type::STEP_EVENT => "step_event".into(),
        record_type::COMPLETION => "completion".into(),
        record_type::NOOP => "noop".into(),
        _ => format!("{t:#06x}").into(),
    }
}

/// Flag names joined by `|` (`BEGIN|END`), `-` for none, unknown bits in hex.
pub fn flags_name(f: u16) -> String {
    let mut parts = Vec::new();
    for (bit, name) in [(flags::BEGIN, "BEGIN"), (flags::END, "END"), (flags::ABORT, "ABORT")] {
        if f & bit != 0 {
            parts.push(name.to_string());
        }
    }
    if f & !flags::KNOWN != 0 {
        parts.push(format!("{:#06x}", f & !flags::KNOWN));
    }
    if parts.is_empty() {
        "-".to_string()
    } else {
        parts.join("|")
    }
}

/// A completion payload split into its 36-byte event id and the JSON after it (layout-spec.md section 7);
/// `None` if it is too short or the prefix is not printable ASCII.
///
/// ```
/// use tasker_ring::scan::completion_parts;
///
/// let payload = br#"0190f3a2-7c1e-7b3a-9d2e-000000000003{"success":true}"#;
/// let (event_id, result) = completion_parts(payload).expect("a completion");
/// assert_eq!(event_id, "0190f3a2-7c1e-7b3a-9d2e-000000000003");
/// assert_eq!(result, br#"{"success":true}"#);
/// assert!(completion_parts(b"too short").is_none());
/// ```
pub fn completion_parts(payload: &[u8]) -> Option<(&str, &[u8])> {
    if payload.len() < COMPLETION_ID_LEN {
        return None;
    }
    let (id, rest) = payload.split_at(COMPLETION_ID_LEN);
    if !id.iter().all(|b| b.is_ascii_graphic()) {
        return None;
    }
    std::str::from_utf8(id).ok().map(|id| (id, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Region, RegionConfig};
    use proptest::prelude::*;
    use std::os::unix::fs::FileExt;
    use std::path::{Path, PathBuf};

    const CAP: usize = 256;
    const GEO: RingGeometry = RingGeometry {
        capacity: CAP,
        max_frame: 64,
        max_message: 1024,
    };
    const FRESH: ScanOptions = ScanOptions {
        expected_sequence: Some(0),
        mid_message: false,
    };

    /// Encodes records into a ring image starting at `start`; returns the bytes from `start` to the end.
    struct Builder {
        bytes: Vec<u8>,
        start: u32,
        seq: u64,
    }

    impl Builder {
        fn new(start: u32) -> Self {
            Self {
                bytes: Vec::new(),
                start,
                seq: 0,
            }
        }

        fn pos(&self) -> u32 {
            self.start.wrapping_add(self.bytes.len() as u32)
        }

        fn frame(&mut self, t: u16, f: u16, payload: &[u8]) -> &mut Self {
            let h = FrameHeader {
                length: (FRAME_HEADER + payload.len()) as u32,
                record_type: t,
                flags: f,
                sequence: self.seq,
            };
            self.seq += 1;
            self.bytes.extend_from_slice(&h.encode());
            self.bytes.extend_from_slice(payload);
            while self.bytes.len() % FRAME_ALIGN != 0 {
                self.bytes.push(0);
            }
            self
        }

        fn pad(&mut self) -> &mut Self {
            let to_end = CAP - (self.pos() as usize & (CAP - 1));
            let h = FrameHeader {
                length: to_end as u32,
                record_type: record_type::PADDING,
                flags: 0,
                sequence: 0,
            };
            let mut rec = vec![0xEE; to_end];
            rec[..to_end.min(16)].copy_from_slice(&h.encode()[..to_end.min(16)]);
            self.bytes.extend_from_slice(&rec);
            self
        }

        fn scan(&self, options: ScanOptions) -> Vec<Record<'_>> {
            let end = self.pos();
            Scanner::new(&self.bytes, self.start, end, GEO, options).collect()
        }
    }

    fn payloads<'a>(records: &'a [Record<'a>]) -> Vec<&'a [u8]> {
        records
            .iter()
            .filter_map(|r| match r {
                Record::Message(m) => Some(&*m.payload),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn decodes_messages_padding_and_fragments_across_the_u32_wrap() {
        let mut b = Builder::new(u32::MAX - 39);
        b.frame(record_type::STEP_EVENT, flags::UNFRAGMENTED, br#"{"n":1}"#);
        b.pad();
        assert_eq!(b.pos(), 0);
        b.frame(record_type::STEP_EVENT, flags::BEGIN, &[b'a'; 48])
            .frame(record_type::STEP_EVENT, 0, &[b'b'; 48])
            .frame(record_type::STEP_EVENT, flags::END, b"cc");
        let records = b.scan(FRESH);
        assert_eq!(records.len(), 3, "{records:?}");
        assert!(matches!(
            records[1],
            Record::Padding {
                position: 0xffff_fff0,
                length: 16
            }
        ));
        let Record::Message(m) = &records[2] else {
            panic!("{records:?}")
        };
        assert_eq!((m.first_position(), m.last_position(), m.end_position()), (0, 128, 152));
        assert_eq!((m.first_sequence(), m.sequence(), m.frames.len()), (1, 3, 3));
        assert_eq!(m.payload.len(), 98);
        assert!(matches!(m.payload, Cow::Owned(_)));
        let Record::Message(first) = &records[0] else { panic!() };
        assert!(matches!(first.payload, Cow::Borrowed(b"{\"n\":1}")));
    }

    #[test]
    fn padding_inside_a_message_is_reported_after_it() {
        let mut b = Builder::new(192);
        b.frame(record_type::STEP_EVENT, flags::BEGIN, &[1; 40]);
        b.pad();
        b.frame(record_type::STEP_EVENT, flags::END, &[2; 4]);
        let records = b.scan(FRESH);
        assert!(matches!(&records[0], Record::Message(m) if m.payload.len() == 44));
        assert!(matches!(
            records[1],
            Record::Padding {
                position: 248,
                length: 8
            }
        ));
        assert_eq!(records.len(), 2);
    }

    #[test]
    fn skippable_abort_and_partial_records() {
        let mut b = Builder::new(0);
        b.frame(0x9000, flags::UNFRAGMENTED, b"ext")
            .frame(record_type::COMPLETION, flags::BEGIN, &[3; 48])
            .frame(record_type::NOOP, flags::END | flags::ABORT, b"")
            .frame(record_type::STEP_EVENT, flags::BEGIN, b"open");
        let records = b.scan(FRESH);
        assert!(matches!(&records[0], Record::Skippable(m) if m.record_type == 0x9000));
        assert!(matches!(
            &records[1],
            Record::Partial { begins_before: false, ends: PartialEnd::Aborted, message } if message.payload.len() == 48
        ));
        assert!(matches!(&records[2], Record::Abort(f) if f.sequence == 2));
        assert!(matches!(
            &records[3],
            Record::Partial {
                begins_before: false,
                ends: PartialEnd::Unpublished,
                ..
            }
        ));
        assert_eq!(records.len(), 4);
    }

    #[test]
    fn continuation_fragments_at_the_start_are_partial_or_out_of_order() {
        let mut b = Builder::new(64);
        b.seq = 7;
        b.frame(record_type::STEP_EVENT, 0, &[1; 8])
            .frame(record_type::STEP_EVENT, flags::END, &[2; 8])
            .frame(record_type::STEP_EVENT, flags::UNFRAGMENTED, b"{}");
        let records = b.scan(ScanOptions::INSPECT);
        assert!(matches!(
            &records[0],
            Record::Partial { begins_before: true, ends: PartialEnd::End, message } if message.first_sequence() == 7
        ));
        assert_eq!(payloads(&records), vec![&b"{}"[..]]);
        let strict = b.scan(ScanOptions {
            expected_sequence: Some(7),
            mid_message: false,
        });
        assert!(matches!(
            strict[..],
            [Record::Corrupt {
                position: 64,
                error: ReadError::FragmentOutOfOrder { .. }
            }]
        ));
        let gap = b.scan(FRESH);
        assert!(matches!(
            gap[..],
            [Record::Corrupt {
                error: ReadError::SequenceGap {
                    expected: 0,
                    found: 7,
                    ..
                },
                ..
            }]
        ));
    }

    #[test]
    fn corruption_stops_the_scan_after_what_came_before() {
        let mut b = Builder::new(0);
        b.frame(record_type::STEP_EVENT, flags::UNFRAGMENTED, b"ok")
            .frame(record_type::STEP_EVENT, flags::BEGIN, &[5; 48])
            .frame(record_type::STEP_EVENT, flags::END, b"x");
        b.bytes[88..92].copy_from_slice(&3u32.to_le_bytes());
        let records = b.scan(FRESH);
        assert_eq!(payloads(&records), vec![&b"ok"[..]]);
        assert!(matches!(
            &records[1],
            Record::Partial {
                ends: PartialEnd::Corrupt,
                ..
            }
        ));
        assert_eq!(
            records[2],
            Record::Corrupt {
                position: 88,
                error: ReadError::LengthTooSmall {
                    position: 88,
                    length: 3
                }
            }
        );
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn bad_spans_and_short_copies() {
        let b = Builder::new(0);
        let r: Vec<_> = Scanner::new(&b.bytes, 0, 512, GEO, FRESH).collect();
        assert!(matches!(
            r[..],
            [Record::Corrupt {
                error: ReadError::PositionsCorrupt { .. },
                ..
            }]
        ));
        let r: Vec<_> = Scanner::new(&b.bytes, 4, 8, GEO, FRESH).collect();
        assert!(matches!(
            r[..],
            [Record::Corrupt {
                error: ReadError::Misaligned { .. },
                ..
            }]
        ));
        let mut b = Builder::new(0);
        b.frame(record_type::STEP_EVENT, flags::UNFRAGMENTED, b"abc");
        let r: Vec<_> = Scanner::new(&b.bytes[..20], 0, 24, GEO, FRESH).collect();
        assert!(matches!(
            r[..],
            [Record::Corrupt {
                error: ReadError::LengthPastPublished { .. },
                ..
            }]
        ));
    }

    #[test]
    fn names_and_completion_prefix() {
        assert_eq!(type_name(record_type::STEP_EVENT), "step_event");
        assert_eq!(type_name(0x8001), "0x8001");
        assert_eq!(flags_name(flags::UNFRAGMENTED), "BEGIN|END");
        assert_eq!(flags_name(0), "-");
        assert_eq!(flags_name(0x12), "END|0x0010");
        let payload = b"0190f3a2-7c1e-7b3a-9d2e-000000000001{\"success\":true}";
        let (id, json) = completion_parts(payload).unwrap();
        assert_eq!(id, "0190f3a2-7c1e-7b3a-9d2e-000000000001");
        assert_eq!(json, b"{\"success\":true}");
        assert!(completion_parts(b"short").is_none());
    }

    /// A region file in a directory removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "tasker-ring-scan-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn file(&self) -> PathBuf {
            self.0.join("r.ring")
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        /// Write a message of this type and size (all or nothing; skipped when full).
        Write(u16, usize),
        /// A blocking write that times out at once when the ring is short: leaves a partial message.
        Stream(usize),
        /// Read up to this many messages.
        Read(usize),
    }

    fn op() -> impl Strategy<Value = Op> {
        let t = prop_oneof![
            4 => Just(record_type::STEP_EVENT),
            2 => Just(record_type::COMPLETION),
            1 => Just(0x8123u16),
        ];
        prop_oneof![
            6 => (t, 0..200usize).prop_map(|(t, n)| Op::Write(t, n)),
            1 => (100..400usize).prop_map(Op::Stream),
            3 => (1..4usize).prop_map(Op::Read),
        ]
    }

    fn config(initial_position: u32) -> RegionConfig {
        RegionConfig {
            events_capacity: CAP as u32,
            completions_capacity: CAP as u32,
            max_frame_size: 64,
            max_message_size: 1024,
            initial_position,
        }
    }

    fn line4(path: &Path) -> (bool, u64) {
        // Consumer statistics line of the events ring: open_message at +4, next_sequence at +8.
        let bytes = std::fs::read(path).unwrap();
        let at = crate::layout::EVENTS_CONTROL_OFFSET as usize + crate::layout::control::CONSUMER_STATS;
        let open = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) != 0;
        let next = u64::from_le_bytes(bytes[at + 8..at + 16].try_into().unwrap());
        (open, next)
    }

    /// Runs `ops` over the events ring of a fresh region and returns it with no role held (still mapped
    /// read-write, so a fresh consumer can take over).
    fn run_ops(scratch: &Scratch, start: u32, ops: &[Op]) -> Region {
        let region = Region::create(&scratch.file(), &config(start)).unwrap();
        let mut p = region.producer(RingId::Events).unwrap();
        let mut c = region.consumer(RingId::Events).unwrap();
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Write(t, n) => {
                    let _ = p.try_write(*t, &vec![b'a' + (i % 26) as u8; *n]);
                }
                Op::Stream(n) => {
                    let _ = p.write_blocking(record_type::STEP_EVENT, &vec![b'S'; *n], std::time::Duration::ZERO);
                }
                Op::Read(n) => {
                    let _ = c.read_batch(*n, |_| {});
                }
            }
        }
        drop(c);
        drop(p);
        region
    }

    fn scan_view(path: &Path, options: ScanOptions) -> Vec<(String, u16, u64, Vec<u8>)> {
        let view = RegionView::attach(path).unwrap();
        let cap = capture(&view, RingId::Events, None, Trust::Unconsumed);
        assert_eq!(cap.dropped(), 0, "nobody consumes while we copy");
        cap.scanner(options)
            .map(|r| match r {
                Record::Message(m) => ("message".into(), m.record_type, m.sequence(), m.payload.into_owned()),
                Record::Corrupt { error, .. } => (format!("corrupt {error:?}"), 0, 0, Vec::new()),
                _ => ("other".into(), 0, 0, Vec::new()),
            })
            .filter(|(k, ..)| k != "other")
            .collect()
    }

    /// What a fresh consumer taking the role now delivers, then its error (if any), in the scan's shape.
    fn drain(region: &Region) -> Vec<(String, u16, u64, Vec<u8>)> {
        let mut c = region.consumer(RingId::Events).unwrap();
        let mut out = Vec::new();
        loop {
            let mut batch = Vec::new();
            let r = c.read_batch(8, |m| {
                batch.push(("message".to_string(), m.record_type, m.sequence, m.payload.to_vec()));
            });
            out.extend(batch);
            match r {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    out.push((format!("corrupt {e:?}"), 0, 0, Vec::new()));
                    break;
                }
            }
        }
        out
    }

    fn start_position() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            (0u32..64).prop_map(|k| u32::MAX - 7 - 8 * k),
            any::<u32>().prop_map(|x| x & !7)
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        #[test]
        fn never_panics_on_arbitrary_bytes(
            bytes in prop::collection::vec(any::<u8>(), 0..600),
            start in any::<u32>(),
            len in prop_oneof![0u32..600, any::<u32>()],
            cap_log in 6u32..10,
            max_frame in 0u32..600,
            max_message in 0u64..2000,
            seq in prop::option::of(any::<u64>()),
            mid in any::<bool>(),
        ) {
            let geometry = RingGeometry { capacity: 1 << cap_log, max_frame, max_message };
            let options = ScanOptions { expected_sequence: seq, mid_message: mid };
            let end = start.wrapping_add(len);
            let records: Vec<_> = Scanner::new(&bytes, start, end, geometry, options).collect();
            let mut last = None::<u32>;
            for (i, r) in records.iter().enumerate() {
                let at = r.position().wrapping_sub(start);
                prop_assert!(at <= len, "record outside the span");
                if let Some(prev) = last {
                    prop_assert!(at >= prev, "records in position order");
                }
                last = Some(at);
                if matches!(r, Record::Corrupt { .. }) {
                    prop_assert_eq!(i, records.len() - 1, "corrupt is last");
                }
            }
        }

        #[test]
        fn agrees_with_a_consumer_on_valid_rings(start in start_position(), ops in prop::collection::vec(op(), 1..60)) {
            let scratch = Scratch::new();
            let region = run_ops(&scratch, start, &ops);
            let (open, next) = line4(&scratch.file());
            let strict = ScanOptions { expected_sequence: Some(next), mid_message: open };
            let scanned = scan_view(&scratch.file(), strict);
            prop_assert_eq!(&scanned, &scan_view(&scratch.file(), ScanOptions::INSPECT));
            prop_assert!(scanned.iter().all(|(k, ..)| k == "message"), "valid ring: {:?}", scanned);
            prop_assert_eq!(scanned, drain(&region));
        }

        #[test]
        fn agrees_with_a_consumer_on_corrupted_rings(
            start in start_position(),
            ops in prop::collection::vec(op(), 1..40),
            flips in prop::collection::vec((0..CAP, any::<u8>()), 1..6),
        ) {
            let scratch = Scratch::new();
            let region = run_ops(&scratch, start, &ops);
            let data = region.layout().rings[0].data_offset;
            let file = std::fs::OpenOptions::new().write(true).open(scratch.file()).unwrap();
            for (off, b) in flips {
                file.write_at(&[b], data + off as u64).unwrap();
            }
            let (open, next) = line4(&scratch.file());
            let strict = ScanOptions { expected_sequence: Some(next), mid_message: open };
            prop_assert_eq!(scan_view(&scratch.file(), strict), drain(&region));
        }
    }
}
