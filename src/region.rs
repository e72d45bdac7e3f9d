//! A region: one shared-memory file holding the header page and the two rings.
//!
//! Creation is exclusive (`O_EXCL | O_NOFOLLOW`, mode 0600), allocates every byte up front
//! (`posix_fallocate`, so a full tmpfs fails here rather than as a SIGBUS later) and writes the ready word
//! last. Attaching validates every header field against the real file length before anything else is
//! touched, and fails with a typed [`AttachError`].

use crate::consumer::Consumer;
use crate::error::{AttachError, ConfigError, CreateError, HeaderError, RoleError};
use crate::layout::*;
use crate::liveness::{now_unix_ms, ProcessIdentity};
use crate::memory::RingMemory;
use crate::producer::{Producer, RingLimits};
use crate::sync::{AtomicU32, Ordering};
use memmap2::{MmapOptions, MmapRaw};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::ptr::NonNull;
use std::sync::Arc;

/// Which ring of a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RingId {
    /// Step events, Rust -> TS (descriptor 0).
    Events,
    /// Completions, TS -> Rust (descriptor 1).
    Completions,
}

impl RingId {
    /// Both rings, in descriptor order.
    pub const ALL: [RingId; 2] = [RingId::Events, RingId::Completions];

    /// Descriptor index.
    pub fn index(self) -> usize {
        match self {
            Self::Events => 0,
            Self::Completions => 1,
        }
    }

    /// Name used in errors and by the inspector.
    pub fn name(self) -> &'static str {
        match self {
            Self::Events => "events",
            Self::Completions => "completions",
        }
    }
}

/// Sizes of a new region. [`Region::create`] refuses one that breaks a layout rule
/// ([`RegionConfig::validate`]).
///
/// ```
/// use tasker_ring::RegionConfig;
///
/// // Small rings: 4 KiB each, frames up to half a ring.
/// let small = RegionConfig {
///     events_capacity: 4096,
///     completions_capacity: 4096,
///     max_frame_size: 2048,
///     ..RegionConfig::default()
/// };
/// assert!(small.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegionConfig {
    /// Events ring data size (power of two, 64 B ..= 1 GiB).
    pub events_capacity: u32,
    /// Completions ring data size (power of two, 64 B ..= 1 GiB).
    pub completions_capacity: u32,
    /// Largest frame record: a multiple of 8, at least 32, at most half the smaller ring.
    pub max_frame_size: u32,
    /// Largest message after reassembly.
    pub max_message_size: u64,
    /// Where both positions of both rings start (a multiple of 8; tests use values just below 2^32).
    pub initial_position: u32,
}

impl Default for RegionConfig {
    fn default() -> Self {
        Self {
            events_capacity: 4 << 20,
            completions_capacity: 1 << 20,
            max_frame_size: 64 << 10,
            max_message_size: 64 << 20,
            initial_position: 0,
        }
    }
}

impl RegionConfig {
    /// Checks the layout rules, in the order of [`ConfigError`]'s variants.
    ///
    /// # Errors
    ///
    /// The first rule broken:
    /// - [`ConfigError::Capacity`]: a ring's capacity is not a power of two in 64 ..= 2^30 (events first).
    /// - [`ConfigError::MaxFrameSize`]: the max frame size is not a multiple of 8 in 32 ..= half the smaller
    ///   ring.
    /// - [`ConfigError::MaxMessageSize`]: the max message size cannot hold one full frame's payload.
    /// - [`ConfigError::InitialPosition`]: the initial position is not a multiple of 8.
    ///
    /// ```
    /// use tasker_ring::{ConfigError, RegionConfig};
    ///
    /// assert_eq!(RegionConfig::default().validate(), Ok(()));
    /// let odd = RegionConfig { events_capacity: 1000, ..RegionConfig::default() };
    /// assert_eq!(
    ///     odd.validate(),
    ///     Err(ConfigError::Capacity { ring: "events", capacity: 1000 })
    /// );
    /// ```
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (ring, capacity) in [
            ("events", self.events_capacity),
            ("completions", self.completions_capacity),
        ] {
            if !capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&capacity) {
                return Err(ConfigError::Capacity { ring, capacity });
            }
        }
        let smaller = self.events_capacity.min(self.completions_capacity);
        if self.max_frame_size % FRAME_ALIGN as u32 != 0
            || self.max_frame_size < MIN_MAX_FRAME
            || self.max_frame_size > smaller / 2
        {
            return Err(ConfigError::MaxFrameSize {
                size: self.max_frame_size,
                max: smaller / 2,
            });
        }
        if self.max_message_size < (self.max_frame_size as usize - FRAME_HEADER) as u64 {
            return Err(ConfigError::MaxMessageSize {
                size: self.max_message_size,
                min: (self.max_frame_size as usize - FRAME_HEADER) as u64,
            });
        }
        if self.initial_position % FRAME_ALIGN as u32 != 0 {
            return Err(ConfigError::InitialPosition {
                position: self.initial_position,
            });
        }
        Ok(())
    }

    /// Descriptors and total size of a region with this configuration.
    fn plan(&self) -> ([RingDescriptor; 2], u64) {
        let events_data = HEADER_SIZE as u64;
        let completions_data = events_data + align_up(self.events_capacity as u64, DATA_ALIGN);
        let size = completions_data + align_up(self.completions_capacity as u64, DATA_ALIGN);
        let ring = |ring_id, control_offset, data_offset, capacity| RingDescriptor {
            control_offset,
            data_offset,
            capacity,
            ring_id,
            initial_position: self.initial_position,
            reserved: 0,
        };
        (
            [
                ring(0, EVENTS_CONTROL_OFFSET, events_data, self.events_capacity),
                ring(
                    1,
                    COMPLETIONS_CONTROL_OFFSET,
                    completions_data,
                    self.completions_capacity,
                ),
            ],
            size,
        )
    }
}

/// The default directory for regions: `/dev/shm` on Linux, the temp dir elsewhere.
pub fn default_dir() -> PathBuf {
    let shm = Path::new("/dev/shm");
    if cfg!(target_os = "linux") && shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    }
}

/// Longest region name [`region_path`] accepts (the file name is the name plus `.ring`).
pub const MAX_REGION_NAME: usize = 200;

/// The region file for `name` in `dir`: `<dir>/<name>.ring` (layout-spec.md 11.1, names). A name is 1 to
/// [`MAX_REGION_NAME`] bytes of ASCII letters, digits, `_`, `-` and `.`, and does not start with `.`, so it
/// is one plain file name: no `/`, no `..`, no hidden file, no NUL, nothing that leaves `dir`.
pub fn region_path(dir: &Path, name: &str) -> Result<PathBuf, RegionNameError> {
    let why = if name.is_empty() {
        Some("is empty")
    } else if name.len() > MAX_REGION_NAME {
        Some("is longer than 200 bytes")
    } else if name.starts_with('.') {
        Some("starts with '.'")
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        Some("may only hold ASCII letters, digits, '_', '-' and '.'")
    } else {
        None
    };
    match why {
        Some(why) => Err(RegionNameError {
            name: name.to_string(),
            why,
        }),
        None => Ok(dir.join(format!("{name}.ring"))),
    }
}

/// A region name [`region_path`] refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionNameError {
    /// The name as given.
    pub name: String,
    /// The rule it breaks.
    pub why: &'static str,
}

impl std::fmt::Display for RegionNameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "region name {:?} {}", self.name, self.why)
    }
}

impl std::error::Error for RegionNameError {}

/// A validated header: the cold fields and the ring table, copied out of shared memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Header fields.
    pub header: RegionHeader,
    /// Ring descriptors, by [`RingId::index`].
    pub rings: [RingDescriptor; 2],
}

impl Layout {
    /// The ring limits every producer and consumer of this region enforces.
    pub fn limits(&self) -> RingLimits {
        RingLimits {
            max_frame: self.header.max_frame_size,
            max_message: self.header.max_message_size,
        }
    }
}

/// A region mapped read-write (creator, or an attached peer). The mapping stays valid while this handle or
/// any ring taken from it lives, even after [`Region::unlink`].
///
/// ```
/// use tasker_ring::{record_type, region_path, Region, RegionConfig, RingId};
///
/// let path = region_path(&std::env::temp_dir(), &format!("doc-region-{}", std::process::id()))?;
/// let region = Region::create(&path, &RegionConfig::default())?;
///
/// // This process writes step events and reads them back (a TS peer would read them instead).
/// let mut events = region.producer(RingId::Events)?;
/// let mut reader = region.consumer(RingId::Events)?;
/// events.try_write(record_type::STEP_EVENT, br#"{"event_id":"a"}"#)?;
/// let message = reader.read()?.expect("one message");
/// assert_eq!(message.record_type(), record_type::STEP_EVENT);
/// assert_eq!(&*message.payload(), br#"{"event_id":"a"}"#);
/// drop(message);
///
/// region.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Region {
    path: PathBuf,
    file: File,
    map: Arc<MmapRaw>,
    layout: Layout,
}

/// A region mapped read-only (the inspector): never writes a byte, takes no role, and only copies out what
/// it reads.
///
/// ```
/// use tasker_ring::{record_type, region_path, Region, RegionConfig, RegionView, RingId};
///
/// let path = region_path(&std::env::temp_dir(), &format!("doc-view-{}", std::process::id()))?;
/// let region = Region::create(&path, &RegionConfig::default())?;
/// region.producer(RingId::Events)?.try_write(record_type::STEP_EVENT, b"hello")?;
///
/// let view = RegionView::attach(&path)?;
/// let events = view.snapshot(RingId::Events);
/// assert_eq!((events.frames, events.bytes), (1, 5));
/// assert_eq!(view.copy_ring_bytes(RingId::Events, 16, 5), b"hello"); // after the 16-byte frame header
///
/// region.unlink()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct RegionView {
    path: PathBuf,
    map: MmapRaw,
    layout: Layout,
}

/// One ring of a mapped region, as [`RingMemory`] for producers and consumers.
pub struct MappedRing {
    _map: Arc<MmapRaw>,
    control: NonNull<RingControl>,
    data: NonNull<u8>,
    capacity: usize,
    layout_minor: u16,
}

// SAFETY: the pointers target a shared mapping kept alive by `_map`; all cross-thread access goes through
// atomics or the SPSC protocol.
unsafe impl Send for MappedRing {}
// SAFETY: as above; `&MappedRing` only exposes atomics and protocol-guarded byte access.
unsafe impl Sync for MappedRing {}

// SAFETY: `control` and `data .. data + capacity` were validated to lie inside the mapping, which `_map`
// keeps alive; capacity is a validated power of two.
unsafe impl RingMemory for MappedRing {
    type Bytes<'a> = &'a [u8];

    #[inline]
    fn control(&self) -> &RingControl {
        // SAFETY: validated offset (128-aligned, inside the header page) of a live mapping, initialised by
        // the creator before the ready word.
        unsafe { self.control.as_ref() }
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.capacity
    }

    #[inline]
    fn layout_minor(&self) -> u16 {
        self.layout_minor
    }

    #[inline]
    unsafe fn read(&self, off: usize, len: usize) -> &[u8] {
        // Checked in release builds too (one compare per copy): a protocol bug becomes a panic, never a read
        // outside the mapping (tests/hostile.rs relies on it).
        assert!(
            off.checked_add(len).is_some_and(|end| end <= self.capacity),
            "ring read {off}+{len} outside the data area"
        );
        // SAFETY: the caller keeps `off + len` within the data area and owns these bytes by the protocol.
        unsafe { std::slice::from_raw_parts(self.data.as_ptr().add(off), len) }
    }

    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        assert!(
            off.checked_add(src.len()).is_some_and(|end| end <= self.capacity),
            "ring write {off}+{} outside the data area",
            src.len()
        );
        // SAFETY: the caller keeps the range within the data area and owns it by the protocol.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), self.data.as_ptr().add(off), src.len()) }
    }
}

fn io_create<'a>(path: &'a Path, step: &'static str) -> impl FnOnce(io::Error) -> CreateError + 'a {
    move |source| CreateError::Io {
        path: path.to_path_buf(),
        step,
        source,
    }
}

impl Region {
    /// Creates a region file at `path` (which must not exist) and initialises it: exclusively, mode 0600,
    /// every byte allocated up front, the ready word written last. On any error after the file was opened
    /// it is removed again.
    ///
    /// ```
    /// use tasker_ring::{region_path, CreateError, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-create-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// assert_eq!(std::fs::metadata(&path)?.len(), region.layout().header.region_size);
    ///
    /// // Never over an existing file.
    /// let again = Region::create(&path, &RegionConfig::default());
    /// assert!(matches!(again, Err(CreateError::AlreadyExists(_))));
    /// region.unlink()?;
    ///
    /// // Nor with sizes that break a layout rule.
    /// let odd = RegionConfig { events_capacity: 1000, ..RegionConfig::default() };
    /// assert!(matches!(Region::create(&path, &odd), Err(CreateError::InvalidConfig(_))));
    /// assert!(!path.exists());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// - [`CreateError::InvalidConfig`]: `config` breaks a layout rule (the [`ConfigError`] says which);
    ///   nothing is created.
    /// - [`CreateError::AlreadyExists`]: a file, directory or symlink is already at `path`.
    /// - [`CreateError::NoSpace`]: the file system cannot hold the whole region.
    /// - [`CreateError::Io`]: any other failure, with its step: `create` (e.g. a missing directory or no
    ///   permission), `allocate` or `map`.
    pub fn create(path: &Path, config: &RegionConfig) -> Result<Self, CreateError> {
        config.validate().map_err(CreateError::InvalidConfig)?;
        let (rings, size) = config.plan();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)
            .map_err(|e| match e.kind() {
                io::ErrorKind::AlreadyExists => CreateError::AlreadyExists(path.to_path_buf()),
                _ => io_create(path, "create")(e),
            })?;
        let built = Self::initialise(path, file, config, rings, size);
        if built.is_err() {
            let _ = std::fs::remove_file(path);
        }
        built
    }

    fn initialise(
        path: &Path,
        file: File,
        config: &RegionConfig,
        rings: [RingDescriptor; 2],
        size: u64,
    ) -> Result<Self, CreateError> {
        allocate(&file, size).map_err(|e| match e.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) => CreateError::NoSpace {
                path: path.to_path_buf(),
                size,
            },
            _ => io_create(path, "allocate")(e),
        })?;
        // Populated (MAP_POPULATE): every page table entry is set up here, once, so the producer's first lap
        // through a ring takes no page fault per new page (measured with end-to-end.ts --legs, issue 21: a
        // 2.7 KB event written to fresh pages after an idle gap spent 8-10 us more between claim and publish (p50, Node, A/B)).
        // The bytes are allocated above already; this only maps them.
        let map = MmapOptions::new()
            .populate()
            .map_raw(&file)
            .map_err(io_create(path, "map"))?;
        let me = ProcessIdentity::current();
        let header = RegionHeader {
            magic: MAGIC,
            layout_major: LAYOUT_MAJOR,
            layout_minor: LAYOUT_MINOR,
            ready: 0,
            feature_bits: 0,
            header_size: HEADER_SIZE,
            ring_count: RING_COUNT,
            region_size: size,
            max_frame_size: config.max_frame_size,
            reserved0: 0,
            max_message_size: config.max_message_size,
            creator_pid: me.pid,
            reserved1: 0,
            creator_start_time: me.start_time,
            created_at_unix_ms: now_unix_ms(),
            reserved2: [0; 6],
        };
        let base = map.as_mut_ptr();
        // SAFETY: the fresh mapping is `size >= HEADER_SIZE` bytes, page-aligned and not yet visible to any
        // reader (the ready word is 0); each write below lies inside the header page.
        unsafe {
            base.cast::<RegionHeader>().write(header);
            for (i, ring) in rings.iter().enumerate() {
                base.add(RING_TABLE_OFFSET + i * size_of::<RingDescriptor>())
                    .cast::<RingDescriptor>()
                    .write(*ring);
                // The fresh file is zero-filled: store the initial values through the atomics in place.
                (*base.add(ring.control_offset as usize).cast::<RingControl>()).init_in_place(config.initial_position);
            }
        }
        // Release: pairs with the Acquire load in `read_layout`; every header byte above is visible to a
        // reader that sees the ready word.
        ready_word(&map).store(READY_VALUE, Ordering::Release);
        let layout = Layout {
            header: RegionHeader {
                ready: READY_VALUE,
                ..header
            },
            rings,
        };
        Ok(Self {
            path: path.to_path_buf(),
            file,
            map: Arc::new(map),
            layout,
        })
    }

    /// Attaches read-write to an existing region after validating it (layout-spec.md 11.2), including that
    /// the file is this process's effective user's and grants nobody else access (A2a). Every header field
    /// is checked against the file's and the mapping's length before any ring is touched.
    ///
    /// ```
    /// use tasker_ring::{region_path, AttachError, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-attach-{}", std::process::id()))?;
    /// let creator = Region::create(&path, &RegionConfig::default())?;
    /// let peer = Region::attach(&path)?;
    /// assert_eq!(peer.layout(), creator.layout());
    /// creator.unlink()?;
    ///
    /// assert!(matches!(Region::attach(&path), Err(AttachError::NotFound(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Opening: [`AttachError::NotFound`], [`AttachError::PermissionDenied`], [`AttachError::Symlink`] (never
    /// opened through a link), [`AttachError::NotARegularFile`]. Ownership:
    /// [`AttachError::WrongOwner`], [`AttachError::InsecureMode`]. Contents, in the order checked:
    /// [`AttachError::Truncated`], [`AttachError::BadMagic`], [`AttachError::NotReady`] (the creator is
    /// still initialising), [`AttachError::BadHeader`] (the ready word; the [`HeaderError`] says which
    /// field), [`AttachError::UnsupportedMajor`], [`AttachError::UnknownFeatures`],
    /// [`AttachError::BadHeader`] (header size, ring count), [`AttachError::Truncated`] or
    /// [`AttachError::SizeMismatch`] (against the header's region size), [`AttachError::BadHeader`] (the
    /// ring table, frame and message limits). [`AttachError::Io`] for any other OS failure.
    pub fn attach(path: &Path) -> Result<Self, AttachError> {
        let file = open_region(path, true)?;
        check_owner_and_mode(path, &file)?;
        let len = file_len(path, &file)?;
        let map = MmapRaw::map_raw(&file).map_err(|source| AttachError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let layout = read_layout(&map, len)?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            map: Arc::new(map),
            layout,
        })
    }

    /// The file path.
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-path-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// assert_eq!(region.path(), path);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated header and ring table, copied out at create or attach (never re-read).
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig, RingId};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-layout-{}", std::process::id()))?;
    /// let config = RegionConfig::default();
    /// let region = Region::create(&path, &config)?;
    /// let layout = region.layout();
    /// assert_eq!(layout.header.max_frame_size, config.max_frame_size);
    /// assert_eq!(layout.rings[RingId::Events.index()].capacity, config.events_capacity);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// One ring's memory, without taking a role (what [`Self::producer`] and [`Self::consumer`] build on).
    /// The ring keeps the mapping alive.
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig, RingId, RingMemory};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-ring-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let completions = region.ring(RingId::Completions);
    /// assert_eq!(completions.capacity(), 1 << 20);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ring(&self, id: RingId) -> MappedRing {
        let d = self.layout.rings[id.index()];
        let base = self.map.as_mut_ptr();
        // SAFETY: offsets and capacity were validated against the mapping's length in `read_layout`.
        let (control, data) = unsafe {
            (
                NonNull::new_unchecked(base.add(d.control_offset as usize).cast::<RingControl>()),
                NonNull::new_unchecked(base.add(d.data_offset as usize)),
            )
        };
        MappedRing {
            _map: Arc::clone(&self.map),
            control,
            data,
            capacity: d.capacity as usize,
            layout_minor: self.layout.header.layout_minor,
        }
    }

    /// Base address of the mapping (what a same-process reader views: `koffi.view(base, len)`). Valid while
    /// this region (or any ring taken from it) lives; [`Self::mapped_len`] bytes long.
    ///
    /// ```
    /// use tasker_ring::{layout::MAGIC, region_path, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-base-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// // SAFETY: the mapping is at least a header page long and lives as long as `region`; the magic is
    /// // written once, before the ready word, and never changes.
    /// let magic = unsafe { std::slice::from_raw_parts(region.base_ptr(), 8) };
    /// assert_eq!(magic, MAGIC);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn base_ptr(&self) -> *mut u8 {
        self.map.as_mut_ptr()
    }

    /// Length of the mapping in bytes (the region size).
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-len-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// assert_eq!(region.mapped_len() as u64, region.layout().header.region_size);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn mapped_len(&self) -> usize {
        self.map.len()
    }

    /// Takes the producer role of ring `id`; dropping the producer gives it back.
    ///
    /// ```
    /// use tasker_ring::{record_type, region_path, Region, RegionConfig, RingId, RoleError};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-producer-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let mut events = region.producer(RingId::Events)?;
    /// events.try_write(record_type::STEP_EVENT, b"{}")?;
    /// let again = region.producer(RingId::Events);
    /// assert!(matches!(again, Err(RoleError::Taken { ring: "events", role: "producer", .. })));
    /// drop(events);
    /// assert!(region.producer(RingId::Events).is_ok());
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`RoleError::Taken`] when a live process, this one included, holds the role. A role recorded for
    /// a dead process is taken over.
    pub fn producer(&self, id: RingId) -> Result<Producer<MappedRing>, RoleError> {
        Producer::new(self.ring(id), self.layout.limits(), id.name())
    }

    /// Takes the consumer role of ring `id`; dropping the consumer gives it back.
    ///
    /// ```
    /// use tasker_ring::{record_type, region_path, Region, RegionConfig, RingId, RoleError};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-consumer-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// region.producer(RingId::Completions)?.try_write(record_type::COMPLETION, b"done")?;
    /// let mut completions = region.consumer(RingId::Completions)?;
    /// let read = completions.read_batch(16, |m| assert_eq!(m.payload, b"done"))?;
    /// assert_eq!(read, 1);
    /// let again = region.consumer(RingId::Completions);
    /// assert!(matches!(again, Err(RoleError::Taken { role: "consumer", .. })));
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// [`RoleError::Taken`] when a live process, this one included, holds the role. A role recorded for
    /// a dead process is taken over.
    pub fn consumer(&self, id: RingId) -> Result<Consumer<MappedRing>, RoleError> {
        Consumer::new(self.ring(id), self.layout.limits(), id.name())
    }

    /// Maintenance check: the file still has its full size. A region truncated under a live mapping turns
    /// the next access past the new end into SIGBUS, so callers check on maintenance ticks.
    ///
    /// ```
    /// use tasker_ring::{region_path, AttachError, Region, RegionConfig};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-size-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// region.check_size()?;
    ///
    /// // Cut back to the header page (nothing past it is touched here).
    /// std::fs::OpenOptions::new().write(true).open(&path)?.set_len(4096)?;
    /// let cut = region.check_size();
    /// assert!(matches!(cut, Err(AttachError::Truncated { actual: 4096, .. })));
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// - [`AttachError::Truncated`]: the file is shorter than the header's region size (or than the header
    ///   page).
    /// - [`AttachError::Io`]: the file's size could not be read.
    pub fn check_size(&self) -> Result<(), AttachError> {
        let len = file_len(&self.path, &self.file)?;
        if len < self.layout.header.region_size {
            return Err(AttachError::Truncated {
                needed: self.layout.header.region_size,
                actual: len,
            });
        }
        Ok(())
    }

    /// Removes the file; the mapping stays valid until every handle (and ring) is dropped.
    ///
    /// ```
    /// use tasker_ring::{record_type, region_path, Region, RegionConfig, RingId};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-unlink-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let mut events = region.producer(RingId::Events)?;
    /// region.unlink()?;
    /// assert!(!path.exists());
    /// events.try_write(record_type::STEP_EVENT, b"{}")?; // still mapped
    /// assert_eq!(region.unlink().map_err(|e| e.kind()), Err(std::io::ErrorKind::NotFound));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The `io::Error` of removing the file: `NotFound` once it is gone, `PermissionDenied` if the directory
    /// forbids it.
    pub fn unlink(&self) -> io::Result<()> {
        std::fs::remove_file(&self.path)
    }
}

/// How many times [`RegionView::snapshot`] re-reads a control block whose positions are out of span.
const SNAPSHOT_RETRIES: usize = 1000;

impl RegionView {
    /// Attaches read-only (`PROT_READ`): the inspector cannot change a byte of a live region. Any user's
    /// file is accepted (see [`Self::attach_owned`]); the header is validated as by [`Region::attach`].
    ///
    /// ```
    /// use tasker_ring::{region_path, AttachError, Region, RegionConfig, RegionView};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-view-attach-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let view = RegionView::attach(&path)?;
    /// assert_eq!(view.layout(), region.layout());
    /// region.unlink()?;
    ///
    /// assert!(matches!(RegionView::attach(&path), Err(AttachError::NotFound(_))));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Region::attach`], without the ownership checks: [`AttachError::NotFound`],
    /// [`AttachError::PermissionDenied`], [`AttachError::Symlink`], [`AttachError::NotARegularFile`],
    /// [`AttachError::Truncated`], [`AttachError::BadMagic`], [`AttachError::NotReady`],
    /// [`AttachError::BadHeader`], [`AttachError::UnsupportedMajor`], [`AttachError::UnknownFeatures`],
    /// [`AttachError::SizeMismatch`], [`AttachError::Io`].
    pub fn attach(path: &Path) -> Result<Self, AttachError> {
        Self::attach_checked(path, false)
    }

    /// As [`Self::attach`], but only a file this process's effective user owns is mapped
    /// ([`AttachError::WrongOwner`] otherwise, checked on the open descriptor, so a file swapped in after
    /// a look at its name is caught too). Another user's file is never mapped: its owner could plant hostile
    /// bytes in it or truncate it under the mapping (SIGBUS). The stale-region sweep attaches this way.
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig, RegionView};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-view-owned-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let view = RegionView::attach_owned(&path)?; // this process's own file
    /// assert_eq!(view.path(), path);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`Self::attach`], plus [`AttachError::WrongOwner`] for another user's file (checked before
    /// anything is mapped).
    pub fn attach_owned(path: &Path) -> Result<Self, AttachError> {
        Self::attach_checked(path, true)
    }

    fn attach_checked(path: &Path, owned_only: bool) -> Result<Self, AttachError> {
        let file = open_region(path, false)?;
        if owned_only {
            check_owner(path, &file)?;
        }
        let len = file_len(path, &file)?;
        let map = MmapOptions::new()
            .map_raw_read_only(&file)
            .map_err(|source| AttachError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let layout = read_layout(&map, len)?;
        Ok(Self {
            path: path.to_path_buf(),
            map,
            layout,
        })
    }

    /// The file path.
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig, RegionView};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-view-path-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// assert_eq!(RegionView::attach(&path)?.path(), path);
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The validated header and ring table, copied out at attach (never re-read).
    ///
    /// ```
    /// use tasker_ring::{region_path, Region, RegionConfig, RegionView};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-view-layout-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let view = RegionView::attach(&path)?;
    /// assert_eq!(view.layout().header.creator_pid, std::process::id());
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// A copy of ring `id`'s control block whose positions are a pair that can have been true at once.
    ///
    /// Each word is loaded atomically, one after the other, not as one snapshot. [`RingSnapshot::load`]
    /// loads the consumer position first, so the pair never shows the consumer past the producer; it
    /// can show the producer more than a capacity ahead if both moved between the two loads, and such a
    /// pair is re-read (up to 1000 times, yielding in between). A pair still out of span after that is
    /// returned as it is: the control block is corrupt. Statistics counters are informational and may
    /// be a little apart (derived values such as lag are clamped by their users).
    ///
    /// ```
    /// use tasker_ring::{record_type, region_path, Region, RegionConfig, RegionView, RingId};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-snapshot-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// let mut events = region.producer(RingId::Events)?;
    /// events.try_write(record_type::STEP_EVENT, b"hello")?; // 16-byte header + 5 bytes, padded to 24
    ///
    /// let snap = RegionView::attach(&path)?.snapshot(RingId::Events);
    /// assert_eq!((snap.producer_position, snap.consumer_position), (24, 0));
    /// assert_eq!(snap.producer.pid, std::process::id());
    /// assert_eq!(snap.consumer.pid, 0); // nobody reads yet
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn snapshot(&self, id: RingId) -> RingSnapshot {
        let d = self.layout.rings[id.index()];
        // SAFETY: validated, 128-aligned offset inside a live read-only mapping; only atomic loads follow,
        // which are plain loads for these lock-free widths and never write.
        let c = unsafe { &*self.map.as_ptr().add(d.control_offset as usize).cast::<RingControl>() };
        let mut snap = RingSnapshot::load(c);
        for _ in 0..SNAPSHOT_RETRIES {
            if snap.producer_position.wrapping_sub(snap.consumer_position) <= d.capacity {
                break;
            }
            std::thread::yield_now();
            snap = RingSnapshot::load(c);
        }
        snap
    }

    /// Copies `len` bytes of ring `id` starting at free-running position `pos` (wrapping at the end); at
    /// most a capacity's worth. A copy, so a concurrent writer can change what is copied, never its bounds.
    ///
    /// ```
    /// use tasker_ring::{record_type, region_path, Region, RegionConfig, RegionView, RingId};
    ///
    /// let path = region_path(&std::env::temp_dir(), &format!("doc-copy-{}", std::process::id()))?;
    /// let region = Region::create(&path, &RegionConfig::default())?;
    /// region.producer(RingId::Events)?.try_write(record_type::STEP_EVENT, b"hello")?;
    ///
    /// let view = RegionView::attach(&path)?;
    /// let header = view.copy_ring_bytes(RingId::Events, 0, 16);
    /// assert_eq!(u32::from_le_bytes(header[..4].try_into()?), 16 + 5); // the frame's length field
    /// assert_eq!(view.copy_ring_bytes(RingId::Events, 16, 5), b"hello");
    /// region.unlink()?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn copy_ring_bytes(&self, id: RingId, pos: u32, len: usize) -> Vec<u8> {
        let d = self.layout.rings[id.index()];
        let cap = d.capacity as usize;
        let len = len.min(cap);
        let mut out = vec![0u8; len];
        let off = pos as usize & (cap - 1);
        let first = len.min(cap - off);
        // SAFETY: both ranges lie inside the validated data area of a live mapping; copying (not
        // borrowing) means a concurrent writer can only change what we copy, never our bounds.
        unsafe {
            let data = self.map.as_ptr().add(d.data_offset as usize);
            std::ptr::copy_nonoverlapping(data.add(off), out.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(data, out.as_mut_ptr().add(first), len - first);
        }
        out
    }
}

/// Identity and heartbeat of one side of a ring, as loaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PeerSnapshot {
    /// Pid holding the role (0: none).
    pub pid: u32,
    /// Its start time (clock ticks since boot; 0 if unknown).
    pub start_time: u64,
    /// Its last heartbeat, Unix milliseconds (0: never).
    pub heartbeat_unix_ms: u64,
}

/// The words of one ring's control block, loaded one by one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingSnapshot {
    /// Producer position.
    pub producer_position: u32,
    /// Consumer position.
    pub consumer_position: u32,
    /// 1 while the consumer sleeps and wants a doorbell.
    pub consumer_sleeping: u32,
    /// Layout 1.1: the claim word (a position, bit 0 the seal); reserved (0) on a region of minor 0.
    pub claim: u32,
    /// Layout 1.1: the pid in the consumer's `claiming_identity` (0 when no consumer declared claiming).
    pub claiming_pid: u32,
    /// Non-padding records published.
    pub frames: u64,
    /// Payload bytes published.
    pub bytes: u64,
    /// Padding records written.
    pub pads: u64,
    /// Writes that found the ring full.
    pub full_stalls: u64,
    /// Doorbells rung.
    pub doorbells: u64,
    /// Records consumed.
    pub frames_read: u64,
    /// Payload bytes consumed.
    pub bytes_read: u64,
    /// Times the consumer went to sleep.
    pub sleeps: u64,
    /// Producer identity.
    pub producer: PeerSnapshot,
    /// Consumer identity.
    pub consumer: PeerSnapshot,
}

impl RingSnapshot {
    /// Loads every word (Acquire for positions: pairs with their Release stores; Relaxed for the rest,
    /// which are informational), the consumer position before the producer position.
    pub fn load(c: &RingControl) -> Self {
        let peer = |p: &crate::layout::PeerLine| PeerSnapshot {
            // Acquire: pairs with the role CAS in `role::take`; the low half of the identity is the pid.
            pid: p.identity.load(Ordering::Acquire) as u32,
            start_time: p.start_time.load(Ordering::Relaxed),
            heartbeat_unix_ms: p.heartbeat_unix_ms.load(Ordering::Relaxed),
        };
        let (ps, cs) = (&c.producer_stats, &c.consumer_stats);
        // The consumer position first: it pairs with the consumer's Release store, which follows the
        // consumer's own Acquire load of a producer position at least as far; so the producer position
        // loaded next (Acquire, pairs with the producer's Release store) is never behind it.
        let consumer_position = c.consumer_position.value.load(Ordering::Acquire);
        Self {
            producer_position: c.producer_position.value.load(Ordering::Acquire),
            consumer_position,
            consumer_sleeping: c.consumer_sleeping.value.load(Ordering::Relaxed),
            // Relaxed: informational (the inspector shows the claim and the seal; it orders nothing by them).
            claim: c.consumer_position.claim.load(Ordering::Relaxed),
            // Relaxed: informational; the low half of the identity word is the pid.
            claiming_pid: c.consumer.claiming_identity.load(Ordering::Relaxed) as u32,
            frames: ps.frames.load(Ordering::Relaxed),
            bytes: ps.bytes.load(Ordering::Relaxed),
            pads: ps.pads.load(Ordering::Relaxed),
            full_stalls: ps.full_stalls.load(Ordering::Relaxed),
            doorbells: ps.doorbells.load(Ordering::Relaxed),
            frames_read: cs.frames.load(Ordering::Relaxed),
            bytes_read: cs.bytes.load(Ordering::Relaxed),
            sleeps: cs.sleeps.load(Ordering::Relaxed),
            producer: peer(&c.producer),
            consumer: peer(&c.consumer),
        }
    }
}

fn ready_word(map: &MmapRaw) -> &AtomicU32 {
    // SAFETY: offset 12 of a page-aligned mapping of at least HEADER_SIZE bytes is a 4-aligned u32 that
    // lives as long as the mapping.
    unsafe { &*map.as_ptr().add(12).cast::<AtomicU32>() }
}

fn open_region(path: &Path, write: bool) -> Result<File, AttachError> {
    let file = OpenOptions::new()
        .read(true)
        .write(write)
        // O_NONBLOCK: opening a FIFO must not block; O_NOFOLLOW: never through a symlink.
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ENOENT) => AttachError::NotFound(path.to_path_buf()),
            Some(libc::EACCES) | Some(libc::EPERM) => AttachError::PermissionDenied(path.to_path_buf()),
            Some(libc::ELOOP) => AttachError::Symlink(path.to_path_buf()),
            Some(libc::EISDIR) => AttachError::NotARegularFile {
                path: path.to_path_buf(),
                kind: "directory",
            },
            Some(libc::ENXIO) => AttachError::NotARegularFile {
                path: path.to_path_buf(),
                kind: "FIFO or socket",
            },
            _ => AttachError::Io {
                path: path.to_path_buf(),
                source: e,
            },
        })?;
    let ft = file
        .metadata()
        .map_err(|source| AttachError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .file_type();
    if !ft.is_file() {
        let kind = if ft.is_dir() {
            "directory"
        } else if ft.is_fifo() {
            "FIFO"
        } else if ft.is_socket() {
            "socket"
        } else {
            "device"
        };
        return Err(AttachError::NotARegularFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    Ok(file)
}

/// A2a: a read-write peer only attaches to a file of its own effective user with no group or other
/// permission bits. Checked on the open descriptor (`fstat`), so a file swapped after the open cannot pass.
/// The open file belongs to this process's effective user; returns its metadata.
fn check_owner(path: &Path, file: &File) -> Result<std::fs::Metadata, AttachError> {
    let meta = file.metadata().map_err(|source| AttachError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if meta.uid() != euid {
        return Err(AttachError::WrongOwner {
            path: path.to_path_buf(),
            owner: meta.uid(),
            euid,
        });
    }
    Ok(meta)
}

fn check_owner_and_mode(path: &Path, file: &File) -> Result<(), AttachError> {
    let meta = check_owner(path, file)?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(AttachError::InsecureMode {
            path: path.to_path_buf(),
            mode,
        });
    }
    Ok(())
}

fn file_len(path: &Path, file: &File) -> Result<u64, AttachError> {
    let len = file
        .metadata()
        .map_err(|source| AttachError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    if len < HEADER_SIZE as u64 {
        return Err(AttachError::Truncated {
            needed: HEADER_SIZE as u64,
            actual: len,
        });
    }
    Ok(len)
}

/// Validates a mapped header against the file length (layout-spec.md, "Attach checks", in that order).
///
/// Every bound is checked against the smaller of `file_len` and the mapping's own length: the file can
/// shrink between the `fstat` and the `mmap`, and only the mapping's bytes may be touched.
fn read_layout(map: &MmapRaw, file_len: u64) -> Result<Layout, AttachError> {
    let file_len = file_len.min(map.len() as u64);
    if (map.len() as u64) < HEADER_SIZE as u64 {
        return Err(AttachError::Truncated {
            needed: HEADER_SIZE as u64,
            actual: map.len() as u64,
        });
    }
    // Acquire: pairs with the creator's Release store of the ready word; the header below is complete.
    let ready = ready_word(map).load(Ordering::Acquire);
    let mut page = [0u8; RING_TABLE_OFFSET + 2 * size_of::<RingDescriptor>()];
    // SAFETY: the mapping holds at least HEADER_SIZE >= 192 bytes; we copy, so later changes by another
    // process cannot alter what we validated.
    unsafe { std::ptr::copy_nonoverlapping(map.as_ptr(), page.as_mut_ptr(), page.len()) };
    let header: RegionHeader = bytemuck::pod_read_unaligned(&page[..size_of::<RegionHeader>()]);
    if header.magic != MAGIC {
        return Err(AttachError::BadMagic(header.magic));
    }
    if ready == 0 {
        return Err(AttachError::NotReady);
    }
    if ready != READY_VALUE {
        return Err(AttachError::BadHeader(HeaderError::ReadyWord { found: ready }));
    }
    if header.layout_major != LAYOUT_MAJOR {
        return Err(AttachError::UnsupportedMajor {
            found: header.layout_major,
            supported: LAYOUT_MAJOR,
        });
    }
    if header.feature_bits & !KNOWN_FEATURES != 0 {
        return Err(AttachError::UnknownFeatures(header.feature_bits & !KNOWN_FEATURES));
    }
    let bad = |why: HeaderError| Err(AttachError::BadHeader(why));
    if header.header_size < HEADER_SIZE || header.header_size as u64 % DATA_ALIGN != 0 {
        return bad(HeaderError::HeaderSize {
            size: header.header_size,
        });
    }
    if header.ring_count < RING_COUNT {
        return bad(HeaderError::RingCount {
            count: header.ring_count,
        });
    }
    if header.region_size > file_len {
        return Err(AttachError::Truncated {
            needed: header.region_size,
            actual: file_len,
        });
    }
    if header.region_size < file_len {
        return Err(AttachError::SizeMismatch {
            header: header.region_size,
            file: file_len,
        });
    }
    let rings: [RingDescriptor; 2] = [0, 1].map(|i| {
        let at = RING_TABLE_OFFSET + i * size_of::<RingDescriptor>();
        bytemuck::pod_read_unaligned(&page[at..at + size_of::<RingDescriptor>()])
    });
    let table_end = align_up(RING_TABLE_OFFSET as u64 + header.ring_count as u64 * 32, LINE as u64);
    let mut smaller = u32::MAX;
    for (i, d) in rings.iter().enumerate() {
        let ring = RingId::ALL[i].name();
        if d.ring_id != i as u32 {
            return bad(HeaderError::RingId {
                descriptor: i,
                ring,
                found: d.ring_id,
            });
        }
        if !d.capacity.is_power_of_two() || !(MIN_CAPACITY..=MAX_CAPACITY).contains(&d.capacity) {
            return bad(HeaderError::Capacity {
                ring,
                capacity: d.capacity,
            });
        }
        // Checked: a hostile offset near 2^64 must not wrap past the bound.
        if d.control_offset % LINE as u64 != 0
            || d.control_offset < table_end
            || d.control_offset
                .checked_add(control::SIZE as u64)
                .is_none_or(|end| end > header.header_size as u64)
        {
            return bad(HeaderError::ControlOffset {
                ring,
                offset: d.control_offset,
            });
        }
        if d.data_offset % LINE as u64 != 0
            || d.data_offset < header.header_size as u64
            || d.data_offset
                .checked_add(d.capacity as u64)
                .is_none_or(|end| end > header.region_size)
        {
            return bad(HeaderError::DataRange {
                ring,
                offset: d.data_offset,
                capacity: d.capacity,
                region_size: header.region_size,
            });
        }
        if d.initial_position % FRAME_ALIGN as u32 != 0 {
            return bad(HeaderError::InitialPosition {
                ring,
                position: d.initial_position,
            });
        }
        smaller = smaller.min(d.capacity);
    }
    let [a, b] = rings;
    // Widened to u128: both ranges were bounded above, but an overlap test must not depend on that order.
    let overlap = |x: (u64, u64), y: (u64, u64)| {
        let (x0, x1, y0, y1) = (x.0 as u128, x.1 as u128, y.0 as u128, y.1 as u128);
        x0 < y0 + y1 && y0 < x0 + x1
    };
    if overlap((a.data_offset, a.capacity as u64), (b.data_offset, b.capacity as u64))
        || overlap(
            (a.control_offset, control::SIZE as u64),
            (b.control_offset, control::SIZE as u64),
        )
    {
        return bad(HeaderError::Overlap);
    }
    let max_frame = header.max_frame_size;
    if max_frame % FRAME_ALIGN as u32 != 0 || max_frame < MIN_MAX_FRAME || max_frame > smaller / 2 {
        return bad(HeaderError::MaxFrame {
            size: max_frame,
            max: smaller / 2,
        });
    }
    if header.max_message_size < (max_frame as usize - FRAME_HEADER) as u64 {
        return bad(HeaderError::MaxMessage {
            size: header.max_message_size,
            min: (max_frame as usize - FRAME_HEADER) as u64,
        });
    }
    Ok(Layout { header, rings })
}

/// Allocates every byte of the file now (tmpfs pages included), so running out of space is an error here.
fn allocate(file: &File, size: u64) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let len = libc::off_t::try_from(size).map_err(|_| io::Error::from_raw_os_error(libc::EFBIG))?;
        // SAFETY: a valid open descriptor and a non-negative length; the call has no memory arguments.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len) };
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(())
    }
    #[cfg(not(target_os = "linux"))]
    {
        file.set_len(size)
    }
}
