//! tasker-ring: shared-memory single-producer/single-consumer rings between the tasker Rust worker core
//! and TypeScript step handlers.
//!
//! A region (one file, usually under `/dev/shm`) holds a header page and two rings: `events`
//! (Rust -> TS) and `completions` (TS -> Rust). The byte-level contract is `layout-spec.md`; this crate is
//! its reference implementation.
//!
//! ```no_run
//! use tasker_ring::{record_type, Region, RegionConfig, RingId};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let region = Region::create("/dev/shm/example.ring".as_ref(), &RegionConfig::default())?;
//! let mut events = region.producer(RingId::Events)?;
//! events.try_write(record_type::STEP_EVENT, br#"{"event_id":"..."}"#)?;
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
pub use error::{AttachError, CreateError, PeerDead, ReadError, RoleError, WriteError};
pub use layout::{flags, record_type};
pub use memory::{HeapRing, RingMemory};
pub use producer::{MessageWriter, Producer, RingLimits};
#[cfg(not(loom))]
pub use region::{
    default_dir, region_path, Layout, MappedRing, PeerSnapshot, Region, RegionConfig, RegionNameError, RegionView,
    RingId, RingSnapshot, MAX_REGION_NAME,
};

/// A producer/consumer pair over one heap ring (tests, loom, in-process use).
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
