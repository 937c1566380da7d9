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
pub(crate) use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};

/// Under loom, a SeqCst fence; otherwise nothing. The lane's sleepers
/// (`core/lane.rs`) rely on SeqCst read-modify-writes and loads of two
/// words forming one total order (the store-buffering guarantee); loom
/// models SeqCst accesses as acquire/release only, but models SeqCst
/// fences fully, so the models put a fence between each such
/// read-modify-write and the load after it. The C++ model gives the same
/// guarantee without the fences (every one of the four accesses is SeqCst),
/// so the real build does not pay an `mfence` per push.
#[inline(always)]
pub(crate) fn loom_sc_fence() {
    #[cfg(loom)]
    loom::sync::atomic::fence(Ordering::SeqCst);
}

/// A cell written through raw pointers, as `std`'s `UnsafeCell`, with
/// loom's `with`/`with_mut` shape so that loom checks every access of the
/// lane's slots (`crate::lane`) for data races.
#[cfg(not(loom))]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        UnsafeCell(std::cell::UnsafeCell::new(value))
    }
    #[inline(always)]
    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// One step of a wait for another thread to finish a step it has begun
/// (a lane slot being written): a CPU pause for the first rounds, then a
/// yield, so that on one CPU the other thread gets to run. Under loom
/// always a yield (loom requires one in every spin loop).
#[inline]
pub(crate) fn spin_step(round: &mut u32) {
    #[cfg(not(loom))]
    {
        if *round < 6 {
            for _ in 0..(1u32 << *round) {
                std::hint::spin_loop();
            }
            *round += 1;
        } else {
            std::thread::yield_now();
        }
    }
    #[cfg(loom)]
    {
        let _ = round;
        loom::thread::yield_now();
    }
}

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
