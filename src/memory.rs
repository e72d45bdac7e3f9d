//! The memory a ring lives in: a control block and a power-of-two data area.
//!
//! [`RingMemory`] is the seam between the protocol (producer, consumer) and where the bytes are: the
//! mapped region in production ([`crate::region::MappedRing`]) or a heap allocation ([`HeapRing`]) for unit
//! tests and loom, whose per-byte cells let loom check every data access against the atomics.

use crate::layout::RingControl;
use crate::sync::UnsafeCell;
use std::ops::Deref;
use std::sync::Arc;

/// Storage for one ring.
///
/// The producer and consumer are generic over it; [`HeapRing`] and [`crate::region::MappedRing`] (and an
/// `Arc` of either) implement it.
///
/// ```
/// use std::sync::atomic::Ordering;
/// use tasker_ring::{HeapRing, RingMemory};
///
/// /// Published bytes not yet consumed, from any ring's control block.
/// fn unread(mem: &impl RingMemory) -> u32 {
///     let control = mem.control();
///     let consumer = control.consumer_position.value.load(Ordering::Acquire);
///     control.producer_position.value.load(Ordering::Acquire).wrapping_sub(consumer)
/// }
/// let ring = HeapRing::new(4096, 8);
/// assert_eq!((ring.capacity(), unread(&ring)), (4096, 0));
/// ```
///
/// # Safety
/// Implementors guarantee that `control()` and the `capacity()`-byte data area stay valid for as long as
/// the value lives, that `capacity()` is a power of two, and that `read`/`write` touch only
/// `off..off + len` of the data area.
pub unsafe trait RingMemory: Send + Sync {
    /// A readable view of ring bytes: a borrowed slice in production, a tracked copy under loom.
    type Bytes<'a>: Deref<Target = [u8]>
    where
        Self: 'a;

    /// The ring's control block.
    fn control(&self) -> &RingControl;

    /// Data area size in bytes (a power of two).
    fn capacity(&self) -> usize;

    /// The layout minor version of the region the ring lives in (the 1.1 claim and seal words are used only
    /// from minor 1 on; section 16 of layout-spec.md). Memory outside a region speaks this crate's minor.
    fn layout_minor(&self) -> u16 {
        crate::layout::LAYOUT_MINOR
    }

    /// Reads `len` bytes at data offset `off`.
    ///
    /// # Safety
    /// `off + len <= capacity()`, and by the protocol no one writes these bytes until the caller releases
    /// them (they lie between the consumer and producer positions).
    unsafe fn read(&self, off: usize, len: usize) -> Self::Bytes<'_>;

    /// Writes `src` at data offset `off`.
    ///
    /// # Safety
    /// `off + src.len() <= capacity()`, and by the protocol the caller (the producer) owns these bytes:
    /// they lie between the producer position and the consumer position plus capacity.
    unsafe fn write(&self, off: usize, src: &[u8]);
}

// SAFETY: forwards to the inner memory, which upholds the contract for as long as the Arc keeps it alive.
unsafe impl<T: RingMemory> RingMemory for Arc<T> {
    type Bytes<'a>
        = T::Bytes<'a>
    where
        Self: 'a;

    #[inline]
    fn control(&self) -> &RingControl {
        (**self).control()
    }

    #[inline]
    fn capacity(&self) -> usize {
        (**self).capacity()
    }

    #[inline]
    fn layout_minor(&self) -> u16 {
        (**self).layout_minor()
    }

    #[inline]
    unsafe fn read(&self, off: usize, len: usize) -> Self::Bytes<'_> {
        // SAFETY: the caller upholds `read`'s contract, which is the inner memory's.
        unsafe { (**self).read(off, len) }
    }

    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        // SAFETY: the caller upholds `write`'s contract, which is the inner memory's.
        unsafe { (**self).write(off, src) }
    }
}

/// A ring in ordinary heap memory (tests, loom, and in-process use).
#[derive(Debug)]
pub struct HeapRing {
    control: RingControl,
    data: Box<[UnsafeCell<u8>]>,
}

impl HeapRing {
    /// A zeroed ring of `capacity` bytes (a power of two, at least 64) with positions at `initial_position`.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use tasker_ring::{record_type, Consumer, HeapRing, Producer, RingLimits};
    ///
    /// // Positions start just below 2^32, so the first messages cross the u32 wrap.
    /// let ring = Arc::new(HeapRing::new(4096, u32::MAX - 31));
    /// let limits = RingLimits { max_frame: 1024, max_message: 1 << 16 };
    /// let mut producer = Producer::new(Arc::clone(&ring), limits, "events")?;
    /// let mut consumer = Consumer::new(ring, limits, "events")?;
    /// for n in 0..4u8 {
    ///     producer.try_write(record_type::STEP_EVENT, &[n; 8])?;
    /// }
    /// assert_eq!(producer.position(), 72); // 4 records of 24 bytes and an 8-byte padding at the ring's end
    /// assert_eq!(consumer.read_batch(8, |m| assert_eq!(m.payload.len(), 8))?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// If `capacity` is not a power of two of at least 64 or `initial_position` is not a multiple of 8
    /// (programming errors in a test set-up; regions validate their configuration with typed errors).
    pub fn new(capacity: usize, initial_position: u32) -> Self {
        assert!(
            capacity.is_power_of_two() && capacity >= 64,
            "capacity must be a power of two >= 64"
        );
        assert!(initial_position % 8 == 0, "initial position must be a multiple of 8");
        Self {
            control: RingControl::new(initial_position),
            data: (0..capacity).map(|_| UnsafeCell::new(0u8)).collect(),
        }
    }
}

// SAFETY: the data cells are only accessed per the SPSC protocol, whose happens-before edges are the
// position atomics; the control block is atomics only.
unsafe impl Sync for HeapRing {}

// SAFETY: `data` has exactly `capacity()` cells for the life of the ring; `read`/`write` index only
// `off..off + len`, which their callers keep in bounds.
unsafe impl RingMemory for HeapRing {
    #[cfg(not(loom))]
    type Bytes<'a> = &'a [u8];
    #[cfg(loom)]
    type Bytes<'a> = Vec<u8>;

    #[inline]
    fn control(&self) -> &RingControl {
        &self.control
    }

    #[inline]
    fn capacity(&self) -> usize {
        self.data.len()
    }

    #[cfg(not(loom))]
    #[inline]
    unsafe fn read(&self, off: usize, len: usize) -> &[u8] {
        let cells = &self.data[off..off + len];
        // SAFETY: `UnsafeCell<u8>` has u8's layout; the protocol gives the reader these bytes exclusively
        // until it releases them, so no write aliases the shared slice.
        unsafe { std::slice::from_raw_parts(cells.as_ptr().cast::<u8>(), len) }
    }

    #[cfg(loom)]
    #[inline]
    unsafe fn read(&self, off: usize, len: usize) -> Vec<u8> {
        // SAFETY: each cell access is tracked by loom, which reports any access not ordered by the protocol.
        self.data[off..off + len]
            .iter()
            .map(|c| c.with(|p| unsafe { *p }))
            .collect()
    }

    #[cfg(not(loom))]
    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        let cells = &self.data[off..off + src.len()];
        // SAFETY: bounds checked by the slice above; the protocol gives the producer these bytes exclusively.
        unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), cells.as_ptr().cast::<u8>().cast_mut(), src.len()) }
    }

    #[cfg(loom)]
    #[inline]
    unsafe fn write(&self, off: usize, src: &[u8]) {
        for (cell, &b) in self.data[off..off + src.len()].iter().zip(src) {
            // SAFETY: loom tracks the write and reports it if the protocol let a reader overlap it.
            cell.with_mut(|p| unsafe { *p = b });
        }
    }
}
