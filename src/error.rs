//! Typed errors, one enum per operation: create, attach, take a role, write, read.

use crate::layout::{MAX_CAPACITY, MIN_CAPACITY, MIN_MAX_FRAME, READY_VALUE};
use std::fmt;
use std::io;
use std::path::PathBuf;

/// Why a region could not be created ([`Region::create`](crate::Region::create)).
///
/// ```
/// use std::error::Error;
/// use tasker_ring::{region_path, ConfigError, CreateError, Region, RegionConfig};
///
/// let path = region_path(&std::env::temp_dir(), &format!("doc-create-error-{}", std::process::id()))?;
/// let odd = RegionConfig { initial_position: 3, ..RegionConfig::default() };
/// let Err(err) = Region::create(&path, &odd) else { panic!("created") };
/// assert!(matches!(err, CreateError::InvalidConfig(ConfigError::InitialPosition { position: 3 })));
/// assert_eq!(err.to_string(), "invalid region configuration: initial position 3 must be a multiple of 8");
/// let rule = err.source().and_then(|e| e.downcast_ref::<ConfigError>());
/// assert_eq!(rule, Some(&ConfigError::InitialPosition { position: 3 }));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub enum CreateError {
    /// The configuration breaks a layout rule; nothing was created. Its [`source`](std::error::Error::source)
    /// is the [`ConfigError`].
    InvalidConfig(ConfigError),
    /// A file (or symlink) already exists at the path; regions are created exclusively.
    AlreadyExists(PathBuf),
    /// The file system has no room for the whole region (it is allocated up front, never lazily).
    NoSpace {
        /// Region path.
        path: PathBuf,
        /// Bytes requested.
        size: u64,
    },
    /// Any other I/O failure, with the step that failed (a file this call created is removed again). Its
    /// [`source`](std::error::Error::source) is the `io::Error`.
    Io {
        /// Region path.
        path: PathBuf,
        /// What was being done.
        step: &'static str,
        /// The OS error.
        source: io::Error,
    },
}

/// The process holding the other role of a ring is gone (its pid absent, reused, or a zombie): what it
/// published stays readable, but nothing more will come (or, for a producer, nothing will be freed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerDead {
    /// The dead peer's role: "producer" or "consumer".
    pub role: &'static str,
    /// Its pid.
    pub pid: u32,
}

impl fmt::Display for PeerDead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the {} process {} is gone", self.role, self.pid)
    }
}

impl std::error::Error for PeerDead {}

/// Why a region could not be attached ([`Region::attach`](crate::Region::attach),
/// [`RegionView::attach`](crate::RegionView::attach)) or failed its size check.
#[derive(Debug)]
pub enum AttachError {
    /// No file at the path.
    NotFound(PathBuf),
    /// The OS refused access.
    PermissionDenied(PathBuf),
    /// The path is a symlink; regions are never opened through one.
    Symlink(PathBuf),
    /// Read-write attach: the file belongs to another user than this process's effective user (a peer
    /// never writes into a region someone else created and controls).
    WrongOwner {
        /// Region path.
        path: PathBuf,
        /// The file's owner.
        owner: u32,
        /// This process's effective uid.
        euid: u32,
    },
    /// Read-write attach: the file grants group or other users access (a region is created 0600; anything
    /// wider lets another user read or corrupt the frames).
    InsecureMode {
        /// Region path.
        path: PathBuf,
        /// The file's permission bits.
        mode: u32,
    },
    /// The path is a directory, FIFO, socket or device.
    NotARegularFile {
        /// Region path.
        path: PathBuf,
        /// What it is instead.
        kind: &'static str,
    },
    /// The file is shorter than the header page or than the region size its header records.
    Truncated {
        /// Bytes the layout needs.
        needed: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// The first 8 bytes are not `TSKRRING`: not a region.
    BadMagic([u8; 8]),
    /// The creator has not finished initialising (ready word still 0).
    NotReady,
    /// A layout major version this build does not speak.
    UnsupportedMajor {
        /// Major found in the file.
        found: u16,
        /// Major this build speaks.
        supported: u16,
    },
    /// Feature bits this build does not know.
    UnknownFeatures(u64),
    /// The file is longer than its header says (someone else's file, or a corrupt header).
    SizeMismatch {
        /// Size in the header.
        header: u64,
        /// Size of the file.
        file: u64,
    },
    /// A header field breaks a layout rule. Its [`source`](std::error::Error::source) is the
    /// [`HeaderError`].
    BadHeader(HeaderError),
    /// Any other I/O failure. Its [`source`](std::error::Error::source) is the `io::Error`.
    Io {
        /// Region path.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
}

/// The layout rule a [`RegionConfig`](crate::RegionConfig) breaks, from
/// [`RegionConfig::validate`](crate::RegionConfig::validate) (checked in this order; the first broken rule
/// is reported).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigError {
    /// A ring's capacity is not a power of two in 64 ..= 2^30 (events checked before completions).
    Capacity {
        /// The ring: "events" or "completions".
        ring: &'static str,
        /// Its configured capacity.
        capacity: u32,
    },
    /// The max frame size is not a multiple of 8 in 32 ..= half the smaller ring.
    MaxFrameSize {
        /// The configured max frame size.
        size: u32,
        /// Half the smaller ring's capacity: the largest allowed.
        max: u32,
    },
    /// The max message size is smaller than one full frame's payload (max frame size minus the 16-byte
    /// header).
    MaxMessageSize {
        /// The configured max message size.
        size: u64,
        /// One full frame's payload: the smallest allowed.
        min: u64,
    },
    /// The initial position is not a multiple of 8.
    InitialPosition {
        /// The configured initial position.
        position: u32,
    },
}

/// The header field of a mapped region that breaks a layout rule (layout-spec.md, "Attach checks"), inside
/// [`AttachError::BadHeader`]. Per-ring checks run on the events descriptor first.
///
/// ```
/// use std::error::Error;
/// use std::os::unix::fs::FileExt;
/// use tasker_ring::{region_path, AttachError, HeaderError, Region, RegionConfig};
///
/// let path = region_path(&std::env::temp_dir(), &format!("doc-header-error-{}", std::process::id()))?;
/// let region = Region::create(&path, &RegionConfig::default())?;
/// std::fs::OpenOptions::new().write(true).open(&path)?.write_at(&1u32.to_le_bytes(), 28)?; // ring count
///
/// let Err(err) = Region::attach(&path) else { panic!("attached") };
/// assert!(matches!(err, AttachError::BadHeader(HeaderError::RingCount { count: 1 })));
/// assert_eq!(err.to_string(), "corrupt region header: ring count 1 is below 2");
/// let field = err.source().and_then(|e| e.downcast_ref::<HeaderError>());
/// assert_eq!(field, Some(&HeaderError::RingCount { count: 1 }));
/// region.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderError {
    /// The ready word is neither 0 (still initialising) nor the ready value.
    ReadyWord {
        /// The word found.
        found: u32,
    },
    /// The header size is not a multiple of 4096 of at least 4096.
    HeaderSize {
        /// The header size found.
        size: u32,
    },
    /// Fewer than two rings.
    RingCount {
        /// The ring count found.
        count: u32,
    },
    /// A descriptor's ring id is not its index in the ring table.
    RingId {
        /// The descriptor's index (0: events, 1: completions).
        descriptor: usize,
        /// The ring it should describe: "events" or "completions".
        ring: &'static str,
        /// The ring id found.
        found: u32,
    },
    /// A ring's capacity is not a power of two in 64 ..= 2^30.
    Capacity {
        /// The ring: "events" or "completions".
        ring: &'static str,
        /// The capacity found.
        capacity: u32,
    },
    /// A control block is misaligned, overlaps the ring table, or does not end inside the header page.
    ControlOffset {
        /// The ring: "events" or "completions".
        ring: &'static str,
        /// The control offset found.
        offset: u64,
    },
    /// A data area is misaligned, starts inside the header page, or does not end inside the region.
    DataRange {
        /// The ring: "events" or "completions".
        ring: &'static str,
        /// The data offset found.
        offset: u64,
        /// The ring's capacity.
        capacity: u32,
        /// The region size the header records.
        region_size: u64,
    },
    /// A ring's initial position is not a multiple of 8.
    InitialPosition {
        /// The ring: "events" or "completions".
        ring: &'static str,
        /// The initial position found.
        position: u32,
    },
    /// The two rings' data areas or control blocks overlap.
    Overlap,
    /// The max frame size is not a multiple of 8 in 32 ..= half the smaller ring.
    MaxFrame {
        /// The max frame size found.
        size: u32,
        /// Half the smaller ring's capacity: the largest allowed.
        max: u32,
    },
    /// The max message size is smaller than one full frame's payload.
    MaxMessage {
        /// The max message size found.
        size: u64,
        /// One full frame's payload (max frame size minus the 16-byte header): the smallest allowed.
        min: u64,
    },
}

/// Why a producer or consumer role could not be taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleError {
    /// A live process (possibly this one) already holds the role.
    Taken {
        /// Which ring.
        ring: &'static str,
        /// Which role.
        role: &'static str,
        /// Pid of the holder.
        pid: u32,
    },
}

/// Why a write did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteError {
    /// Not enough free space now; nothing was published. Retry later or use a blocking write.
    Full {
        /// Bytes the message needs (frames, headers and any padding).
        needed: u64,
        /// Bytes free at the last check.
        free: u64,
    },
    /// The message is larger than the region's max message size; nothing was written.
    MessageTooLarge {
        /// Message size.
        size: u64,
        /// Region limit.
        max: u64,
    },
    /// The message can never fit in the ring at once: use the blocking write, which streams fragments.
    NeverFits {
        /// Bytes the message needs.
        needed: u64,
        /// Ring capacity.
        capacity: u64,
    },
    /// A blocking write's deadline passed with part of the message published; an abort record follows.
    Timeout {
        /// Payload bytes published before the deadline.
        published: u64,
    },
    /// The consumer's process is gone (pid absent or reused).
    PeerDead {
        /// The dead consumer's pid.
        pid: u32,
    },
    /// The caller's serialiser failed; nothing was published.
    Serialize(String),
    /// Padding or a type this layout version does not define: nothing was written.
    InvalidRecordType(u16),
    /// The consumer position in shared memory is impossible (ahead of the producer, or more than a capacity
    /// behind it): the peer is faulty or the region corrupt. Nothing was written.
    ConsumerPositionCorrupt {
        /// The producer position.
        producer: u32,
        /// The consumer position as loaded.
        consumer: u32,
    },
    /// The producer sealed the ring (layout 1.1, [`crate::Producer::seal`]): it publishes nothing more.
    Sealed,
}

/// Why a read failed. Every variant names the position of the offending record; the consumer stays
/// poisoned afterwards (a corrupt ring cannot be resynchronised safely).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadError {
    /// The producer is more than a capacity ahead of the consumer (or behind it).
    PositionsCorrupt {
        /// Consumer position.
        consumer: u32,
        /// Producer position.
        producer: u32,
    },
    /// A position is not a multiple of 8.
    Misaligned {
        /// Consumer position.
        consumer: u32,
        /// Producer position.
        producer: u32,
    },
    /// A non-padding record shorter than its header.
    LengthTooSmall {
        /// Record position.
        position: u32,
        /// Its length field.
        length: u32,
    },
    /// A record longer than the region's max frame size.
    FrameTooLarge {
        /// Record position.
        position: u32,
        /// Its length field.
        length: u32,
        /// The limit.
        max: u32,
    },
    /// A record that would run past the end of the ring.
    Straddles {
        /// Record position.
        position: u32,
        /// Its length field.
        length: u32,
        /// Bytes from the record to the ring's end.
        to_end: u32,
    },
    /// A record longer than what the producer has published.
    LengthPastPublished {
        /// Record position.
        position: u32,
        /// Its length field.
        length: u32,
        /// Published bytes from the record on.
        available: u32,
    },
    /// A padding record that does not run exactly to the ring's end, or has flags.
    BadPadding {
        /// Record position.
        position: u32,
        /// Its length field.
        length: u32,
        /// Bytes to the ring's end.
        expected: u32,
    },
    /// A record type this layout version does not define and may not skip.
    UnknownRecordType {
        /// Record position.
        position: u32,
        /// The type code.
        record_type: u16,
    },
    /// Flag bits this layout version does not define.
    UnknownFlags {
        /// Record position.
        position: u32,
        /// The flags.
        flags: u16,
    },
    /// A sequence number other than the next expected one: a lost or replayed record.
    SequenceGap {
        /// Record position.
        position: u32,
        /// Expected sequence.
        expected: u64,
        /// Found sequence.
        found: u64,
    },
    /// A fragment that does not continue the message being assembled (or a malformed abort).
    FragmentOutOfOrder {
        /// Record position.
        position: u32,
        /// Its flags.
        flags: u16,
    },
    /// A reassembled message beyond the region's max message size.
    MessageTooLarge {
        /// Position of the fragment that crossed the limit.
        position: u32,
        /// Size so far.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The producer sealed the ring (layout 1.1): the messages after `claimed` were handed elsewhere and are
    /// never delivered. Not corruption: the producer's orderly end. Sticky, like every read error.
    Sealed {
        /// The position up to which this consumer had claimed (and delivered).
        claimed: u32,
    },
    /// The claim word holds a value neither this consumer nor a seal wrote: a faulty peer or a corrupt region.
    ClaimCorrupt {
        /// The claim this consumer last stored.
        expected: u32,
        /// The value found.
        found: u32,
    },
}

impl fmt::Display for CreateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidConfig(why) => write!(f, "invalid region configuration: {why}"),
            Self::AlreadyExists(p) => write!(f, "{}: already exists (regions are created exclusively)", p.display()),
            Self::NoSpace { path, size } => {
                write!(
                    f,
                    "{}: no space for a {size}-byte region (the file system is full)",
                    path.display()
                )
            }
            Self::Io { path, step, source } => write!(f, "{}: {step}: {source}", path.display()),
        }
    }
}

impl fmt::Display for AttachError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound(p) => write!(f, "{}: no such region", p.display()),
            Self::PermissionDenied(p) => write!(f, "{}: permission denied", p.display()),
            Self::Symlink(p) => write!(
                f,
                "{}: is a symlink; regions are never opened through links",
                p.display()
            ),
            Self::WrongOwner { path, owner, euid } => write!(
                f,
                "{}: owned by uid {owner}, not by this process's uid {euid}; a peer attaches only to its own user's regions",
                path.display()
            ),
            Self::InsecureMode { path, mode } => write!(
                f,
                "{}: mode {mode:04o} grants access to other users; regions must be 0600",
                path.display()
            ),
            Self::NotARegularFile { path, kind } => {
                write!(f, "{}: is a {kind}, not a region file", path.display())
            }
            Self::Truncated { needed, actual } => {
                write!(
                    f,
                    "region truncated: the layout needs {needed} bytes, the file has {actual}"
                )
            }
            Self::BadMagic(m) => write!(f, "not a tasker-ring region (magic {:02x?})", m),
            Self::NotReady => write!(f, "region not ready: its creator has not finished initialising it"),
            Self::UnsupportedMajor { found, supported } => {
                write!(
                    f,
                    "region layout major version {found} is not supported (this build speaks {supported})"
                )
            }
            Self::UnknownFeatures(bits) => write!(f, "region uses unknown feature bits {bits:#x}"),
            Self::SizeMismatch { header, file } => {
                write!(f, "region header says {header} bytes but the file has {file}")
            }
            Self::BadHeader(why) => write!(f, "corrupt region header: {why}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Capacity { ring, capacity } => write!(
                f,
                "{ring} capacity {capacity} must be a power of two in {MIN_CAPACITY}..={MAX_CAPACITY}"
            ),
            Self::MaxFrameSize { size, max } => write!(
                f,
                "max frame size {size} must be a multiple of 8 in {MIN_MAX_FRAME}..={max} (half the smaller ring)"
            ),
            Self::MaxMessageSize { size, min } => write!(
                f,
                "max message size {size} must hold at least one full frame's payload ({min})"
            ),
            Self::InitialPosition { position } => write!(f, "initial position {position} must be a multiple of 8"),
        }
    }
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ReadyWord { found } => {
                write!(f, "ready word {found:#010x} is neither 0 nor {READY_VALUE:#010x}")
            }
            Self::HeaderSize { size } => write!(f, "header size {size} is not a multiple of 4096 of at least 4096"),
            Self::RingCount { count } => write!(f, "ring count {count} is below 2"),
            Self::RingId {
                descriptor,
                ring,
                found,
            } => {
                write!(f, "descriptor {descriptor} ({ring}) has ring id {found}")
            }
            Self::Capacity { ring, capacity } => {
                write!(f, "{ring} capacity {capacity} is not a power of two in 64..=2^30")
            }
            Self::ControlOffset { ring, offset } => {
                write!(f, "{ring} control offset {offset} is outside the header page")
            }
            Self::DataRange {
                ring,
                offset,
                capacity,
                region_size,
            } => write!(
                f,
                "{ring} data {offset}+{capacity} lies outside the region's {region_size} bytes"
            ),
            Self::InitialPosition { ring, position } => {
                write!(f, "{ring} initial position {position} is not a multiple of 8")
            }
            Self::Overlap => write!(f, "the two rings overlap"),
            Self::MaxFrame { size, max } => write!(f, "max frame size {size} is not a multiple of 8 in 32..={max}"),
            Self::MaxMessage { size, min } => {
                write!(f, "max message size {size} is smaller than one frame's payload ({min})")
            }
        }
    }
}

impl fmt::Display for RoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Taken { ring, role, pid } => {
                write!(f, "the {ring} ring's {role} role is held by live pid {pid}")
            }
        }
    }
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Full { needed, free } => write!(f, "ring full: need {needed} bytes, {free} free"),
            Self::MessageTooLarge { size, max } => write!(f, "message of {size} bytes exceeds the {max}-byte limit"),
            Self::NeverFits { needed, capacity } => write!(
                f,
                "message needs {needed} bytes but the ring holds {capacity}: use a blocking write to stream it"
            ),
            Self::Timeout { published } => {
                write!(
                    f,
                    "write timed out after publishing {published} payload bytes; the message was aborted"
                )
            }
            Self::PeerDead { pid } => write!(f, "consumer process {pid} is gone"),
            Self::Serialize(why) => write!(f, "serialising the message failed: {why}"),
            Self::InvalidRecordType(t) => write!(f, "record type {t:#06x} cannot be written"),
            Self::Sealed => write!(f, "the ring is sealed: its producer publishes nothing more"),
            Self::ConsumerPositionCorrupt { producer, consumer } => write!(
                f,
                "the consumer position {consumer:#010x} is impossible for the producer position {producer:#010x} \
                 (a faulty peer or a corrupt region)"
            ),
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PositionsCorrupt { consumer, producer } => {
                write!(
                    f,
                    "corrupt positions: producer {producer} is not within one capacity of consumer {consumer}"
                )
            }
            Self::Misaligned { consumer, producer } => {
                write!(
                    f,
                    "misaligned positions: consumer {consumer}, producer {producer} (must be multiples of 8)"
                )
            }
            Self::LengthTooSmall { position, length } => {
                write!(
                    f,
                    "record at {position}: length {length} is shorter than the 16-byte header"
                )
            }
            Self::FrameTooLarge { position, length, max } => {
                write!(
                    f,
                    "record at {position}: length {length} exceeds the max frame size {max}"
                )
            }
            Self::Straddles {
                position,
                length,
                to_end,
            } => {
                write!(
                    f,
                    "record at {position}: length {length} runs past the ring's end ({to_end} bytes left)"
                )
            }
            Self::LengthPastPublished {
                position,
                length,
                available,
            } => {
                write!(
                    f,
                    "record at {position}: length {length} runs past the {available} published bytes"
                )
            }
            Self::BadPadding {
                position,
                length,
                expected,
            } => write!(
                f,
                "padding at {position}: length {length} must run exactly to the ring's end ({expected}) with no flags"
            ),
            Self::UnknownRecordType { position, record_type } => {
                write!(f, "record at {position}: unknown record type {record_type:#06x}")
            }
            Self::UnknownFlags { position, flags } => write!(f, "record at {position}: unknown flag bits {flags:#06x}"),
            Self::SequenceGap {
                position,
                expected,
                found,
            } => {
                write!(f, "record at {position}: sequence {found}, expected {expected}")
            }
            Self::FragmentOutOfOrder { position, flags } => {
                write!(
                    f,
                    "record at {position}: fragment flags {flags:#x} do not continue the current message"
                )
            }
            Self::MessageTooLarge { position, size, max } => {
                write!(
                    f,
                    "record at {position}: reassembled message of {size} bytes exceeds the {max}-byte limit"
                )
            }
            Self::Sealed { claimed } => write!(
                f,
                "the producer sealed the ring; messages after position {claimed:#010x} went elsewhere"
            ),
            Self::ClaimCorrupt { expected, found } => write!(
                f,
                "the claim word holds {found:#010x}, neither this consumer's claim {expected:#010x} nor a seal \
                 (a faulty peer or a corrupt region)"
            ),
        }
    }
}

impl std::error::Error for CreateError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::InvalidConfig(why) => Some(why),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl std::error::Error for AttachError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::BadHeader(why) => Some(why),
            Self::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl std::error::Error for ConfigError {}
impl std::error::Error for HeaderError {}
impl std::error::Error for RoleError {}
impl std::error::Error for WriteError {}
impl std::error::Error for ReadError {}
