//! The only place the ring imports atomics and cells.
//!
//! Under `--cfg loom` these are loom's model-checked types; otherwise the std ones. Everything in the
//! protocol (producer, consumer, heap ring) goes through this module, so the loom tests exercise the same
//! code that runs over the mapping.

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;
#[cfg(loom)]
pub(crate) use loom::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

#[cfg(not(loom))]
pub(crate) use core::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

/// A std `UnsafeCell` with loom's closure-based API, so code is written once for both.
#[cfg(not(loom))]
#[derive(Debug, Default)]
#[repr(transparent)]
pub(crate) struct UnsafeCell<T>(core::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    /// Wraps `value`.
    pub(crate) const fn new(value: T) -> Self {
        Self(core::cell::UnsafeCell::new(value))
    }
}

/// Spin/yield helper used by blocking writers; loom needs an explicit yield to make progress.
pub(crate) fn spin_wait(backoff: &crossbeam_utils::Backoff) {
    #[cfg(loom)]
    {
        let _ = backoff;
        loom::thread::yield_now();
    }
    #[cfg(not(loom))]
    {
        if backoff.is_completed() {
            std::thread::sleep(std::time::Duration::from_micros(50));
        } else {
            backoff.snooze();
        }
    }
}
