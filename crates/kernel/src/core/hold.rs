//! Holding the kernel lock for a whole run: [`Kernel::hold`].
//!
//! A runner that drives every task of a kernel from one thread, one
//! operation after another (the simulator), pays for the kernel's lock on
//! every operation without ever meeting another thread there. It can take
//! the lock once instead, for as long as it runs: while the [`KernelHold`]
//! lives, every operation *this thread* makes goes straight to the state,
//! and any other thread that calls into the kernel blocks on the lock until
//! the hold ends, as it would behind one long operation. Nothing else
//! changes: the same code runs under the same exclusion, in the same order,
//! so a held run gives the results an unheld one gives.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
//! let kernel = Kernel::new();
//! let task = kernel.spawn_task();
//! let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
//! {
//!     let _hold = kernel.hold(); // this thread's operations take no lock now
//!     task.send(port, Message::from_u64(1, 5)).unwrap();
//!     assert_eq!(task.receive(port).unwrap().as_u64(), Some(5));
//! } // other threads may take the lock again
//! ```

use std::marker::PhantomData;

use super::{Kernel, State};
use crate::sync::{AtomicBool, AtomicPtr, AtomicUsize, MutexGuard, Ordering};

/// The kernel lock, held by one thread for as long as this value lives
/// ([`Kernel::hold`]). Not `Send`: the hold belongs to the thread that took
/// it, and ends there.
#[must_use = "the lock is released when the hold is dropped"]
pub struct KernelHold<'a> {
    kernel: &'a Kernel,
    /// `None` for a hold taken inside another hold of the same thread.
    guard: Option<MutexGuard<'a, State>>,
    _not_send: PhantomData<*const ()>,
}

impl std::fmt::Debug for KernelHold<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KernelHold")
            .field("outer", &self.guard.is_some())
            .finish()
    }
}

/// Who holds the lock for a run, and where the state is meanwhile.
pub(crate) struct Held {
    /// The holding thread's [`thread_token`], or 0.
    thread: AtomicUsize,
    /// The locked state, while held (null otherwise).
    state: AtomicPtr<State>,
    /// Whether a [`StateGuard::Held`] is out: taking a second one would
    /// alias the first (where an unheld kernel would deadlock). Only the
    /// holding thread touches it while the hold lasts.
    busy: AtomicBool,
}

impl Held {
    pub(crate) fn new() -> Held {
        Held {
            thread: AtomicUsize::new(0),
            state: AtomicPtr::new(std::ptr::null_mut()),
            busy: AtomicBool::new(false),
        }
    }
}

/// A number unique to the calling thread among the live threads (never 0):
/// the address of a thread-local.
#[cfg(not(loom))]
#[inline(always)]
fn thread_token() -> usize {
    std::thread_local! {
        static TOKEN: u8 = const { 0 };
    }
    TOKEN.with(|t| t as *const u8 as usize)
}

#[cfg(loom)]
fn thread_token() -> usize {
    crate::sync::thread_local! {
        static TOKEN: u8 = 0;
    }
    TOKEN.with(|t| t as *const u8 as usize)
}

/// Access to the locked state: a guard of the lock, or (on the thread that
/// holds the kernel, [`Kernel::hold`]) the held state itself.
pub(crate) enum StateGuard<'a> {
    Lock(MutexGuard<'a, State>),
    Held {
        state: &'a mut State,
        busy: &'a AtomicBool,
    },
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = State;
    #[inline(always)]
    fn deref(&self) -> &State {
        match self {
            StateGuard::Lock(g) => g,
            StateGuard::Held { state, .. } => state,
        }
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut State {
        match self {
            StateGuard::Lock(g) => &mut *g,
            StateGuard::Held { state, .. } => state,
        }
    }
}

impl Drop for StateGuard<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        if let StateGuard::Held { busy, .. } = self {
            busy.store(false, Ordering::Relaxed);
        }
    }
}

impl Kernel {
    /// Takes the kernel lock for as long as the returned hold lives (module
    /// `core::hold`): this thread's operations then take no lock, each
    /// other thread's wait until the hold is dropped. For a runner that
    /// makes every operation of the kernel from one thread (the simulator
    /// holds its kernel for a whole run). A hold taken inside another of
    /// the same thread does nothing.
    ///
    /// Whoever holds the kernel must not wait for another thread that
    /// calls into it (that thread waits for the hold to end).
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
    /// let kernel = Kernel::new();
    /// let task = kernel.spawn_task();
    /// let port = task.port_allocate(Capacity::Unbounded).unwrap();
    /// let hold = kernel.hold();
    /// let inner = kernel.hold(); // already held by this thread: nothing more
    /// task.send(port, Message::from_u64(1, 1)).unwrap();
    /// drop(inner);
    /// drop(hold);
    /// // Released: another thread's operations go through again.
    /// let t = std::thread::spawn(move || task.receive(port).unwrap().as_u64());
    /// assert_eq!(t.join().unwrap(), Some(1));
    /// ```
    pub fn hold(&self) -> KernelHold<'_> {
        let held = &self.inner.held;
        let me = thread_token();
        if held.thread.load(Ordering::Relaxed) == me {
            return KernelHold {
                kernel: self,
                guard: None,
                _not_send: PhantomData,
            };
        }
        let mut guard = self.inner.state.lock();
        let state: *mut State = &mut *guard;
        held.state.store(state, Ordering::Relaxed);
        held.thread.store(me, Ordering::Relaxed);
        KernelHold {
            kernel: self,
            guard: Some(guard),
            _not_send: PhantomData,
        }
    }

    /// The state, locked: straight through on the thread that holds the
    /// kernel, else through the lock.
    #[inline(always)]
    pub(crate) fn state_guard(&self) -> StateGuard<'_> {
        let held = &self.inner.held;
        if held.thread.load(Ordering::Relaxed) == thread_token() {
            // Taking a second guard would alias the first; an unheld
            // kernel would deadlock here instead.
            assert!(
                !held.busy.load(Ordering::Relaxed),
                "the kernel lock was taken twice by one thread"
            );
            held.busy.store(true, Ordering::Relaxed);
            let state = held.state.load(Ordering::Relaxed);
            // SAFETY: this thread holds the kernel (`Kernel::hold`): the
            // mutex is locked by the `KernelHold` that published `state`
            // (a pointer into the mutex, which lives as long as `self`),
            // and it stays locked until that hold clears `thread` on this
            // same thread. Nothing else reaches the state meanwhile: other
            // threads block on the mutex, the hold never touches its
            // guard's data, and `busy` (only this thread writes it while
            // held) rules out a second reference from this thread.
            return StateGuard::Held {
                state: unsafe { &mut *state },
                busy: &held.busy,
            };
        }
        StateGuard::Lock(self.inner.state.lock())
    }
}

impl Drop for KernelHold<'_> {
    fn drop(&mut self) {
        if let Some(guard) = self.guard.take() {
            let held = &self.kernel.inner.held;
            debug_assert!(
                !held.busy.load(Ordering::Relaxed),
                "a hold ended inside an operation"
            );
            held.thread.store(0, Ordering::Relaxed);
            held.state.store(std::ptr::null_mut(), Ordering::Relaxed);
            drop(guard);
        }
    }
}
