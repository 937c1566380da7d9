//! The kernel's synchronisation primitives, in one place.
//!
//! Everything else imports locks from here, never from `parking_lot` or `std`
//! directly, so that building with `RUSTFLAGS="--cfg loom"` swaps in loom's
//! model-checked versions without touching the rest of the crate.

#[cfg(not(loom))]
pub(crate) use parking_lot::{Mutex, MutexGuard};

#[cfg(not(loom))]
pub(crate) use std::sync::Arc;

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Thread-local storage: per OS thread, or per modelled thread under loom
/// (whose threads share one OS thread).
#[cfg(not(loom))]
pub(crate) use std::thread_local;

#[cfg(loom)]
pub(crate) use loom::thread_local;

#[cfg(not(loom))]
pub(crate) mod thread {
    pub(crate) use std::thread::{current, park, park_timeout, yield_now, Thread};
}

#[cfg(loom)]
pub(crate) use loom::sync::Arc;

#[cfg(loom)]
pub(crate) mod thread {
    pub(crate) use loom::thread::{current, park, yield_now, Thread};
    /// loom has no timed park; a timed wait is modelled as a yield (the
    /// caller re-checks its wait and its deadline, as after a spurious wake).
    pub(crate) fn park_timeout(_d: std::time::Duration) {
        loom::thread::yield_now();
    }
}

/// A mutex with parking_lot's infallible `lock()`, over loom's mutex.
#[cfg(loom)]
pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);

#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

#[cfg(loom)]
impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        Mutex(loom::sync::Mutex::new(value))
    }
    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        self.0.lock().unwrap()
    }
}
