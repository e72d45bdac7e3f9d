//! tasker-ring: shared-memory single-producer/single-consumer rings between the tasker Rust worker core
//! and TypeScript step handlers.
//!
//! A region (one file, usually under `/dev/shm`) holds a header page and two rings: `events`
//! (Rust -> TS) and `completions` (TS -> Rust). The byte-level contract is `layout-spec.md`; this crate is
//! its reference implementation.
//!
//! ```
//! use tasker_ring::{record_type, region_path, Region, RegionConfig, RingId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = std::env::temp_dir();
//! # let nanos = std::time::UNIX_EPOCH.elapsed()?.as_nanos();
//! # let name = format!("tasker-ring-doc-crate-{}-{nanos}", std::process::id());
//! // A worker puts its region in `tasker_ring::default_dir()` (`/dev/shm` on Linux).
//! let path = region_path(&dir, &name)?;
//! let region = Region::create(&path, &RegionConfig::default())?;
//!
//! let mut events = region.producer(RingId::Events)?;
//! events.try_write(record_type::STEP_EVENT, br#"{"event_id":"..."}"#)?;
//!
//! // The reading side usually lives in another process (`Region::attach`); here it shares the mapping.
//! let mut reader = region.consumer(RingId::Events)?;
//! let message = reader.read()?.expect("one whole message");
//! assert_eq!(message.record_type(), record_type::STEP_EVENT);
//! assert_eq!(&*message.payload(), br#"{"event_id":"..."}"#);
//! drop(message); // releases its bytes to the producer
//!
//! region.unlink()?; // the mapping stays valid until the region and its rings are dropped
//! # Ok(()) }
//! ```

pub mod consumer;
pub mod error;
pub mod frame;
pub mod layout;
pub mod liveness;
pub mod memory;
pub mod producer;
#[cfg(not(loom))]
pub mod region;
mod role;
#[cfg(not(loom))]
pub mod scan;
#[cfg(not(loom))]
pub mod stale;
pub(crate) mod sync;

pub use consumer::{Consumer, Message, Payload, ReadGuard};
pub use error::{AttachError, ConfigError, CreateError, HeaderError, PeerDead, ReadError, RoleError, WriteError};
pub use layout::{flags, record_type};
pub use memory::{HeapRing, RingMemory};
pub use producer::{MessageWriter, Producer, RingLimits, SealOutcome};
#[cfg(not(loom))]
pub use region::{
    default_dir, region_path, Layout, MappedRing, PeerSnapshot, Region, RegionConfig, RegionNameError, RegionView,
    RingId, RingSnapshot, MAX_REGION_NAME,
};

/// A producer/consumer pair over one heap ring (tests, loom, in-process use).
///
/// `limits` are not checked: `max_frame` must be a multiple of 8, at least 32 and at most half of
/// `capacity` (a region checks its configuration; a heap ring trusts its caller).
///
/// ```
/// use tasker_ring::{heap_channel, record_type, RingLimits};
///
/// let limits = RingLimits { max_frame: 256, max_message: 4096 };
/// let (mut producer, mut consumer) = heap_channel(1024, limits, 0);
/// producer.try_write(record_type::STEP_EVENT, b"hello").unwrap();
///
/// let message = consumer.read().unwrap().expect("a whole message");
/// assert_eq!(message.record_type(), record_type::STEP_EVENT);
/// assert_eq!(&*message.payload(), b"hello");
/// ```
///
/// # Panics
/// If `capacity` is not a power of two of at least 64, or `initial_position` is not a multiple of 8
/// (as [`HeapRing::new`]).
pub fn heap_channel(
    capacity: usize,
    limits: RingLimits,
    initial_position: u32,
) -> (Producer<std::sync::Arc<HeapRing>>, Consumer<std::sync::Arc<HeapRing>>) {
    let ring = std::sync::Arc::new(HeapRing::new(capacity, initial_position));
    let producer = Producer::new(std::sync::Arc::clone(&ring), limits, "heap").expect("fresh ring");
    let consumer = Consumer::new(ring, limits, "heap").expect("fresh ring");
    (producer, consumer)
}
