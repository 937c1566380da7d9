//! Snapshots: a deep copy of a kernel's whole state, to put back later or to
//! start another kernel from. A stateful model checker branches on them: it
//! snapshots a state, runs one process's step, restores, runs another's.
//!
//! ```
//! use mkipc_kernel::{Capacity, Kernel};
//! let kernel = Kernel::new();
//! let pid = kernel.create_task();
//! let before = kernel.snapshot();
//! kernel.port_allocate(pid, Capacity::Unbounded).unwrap();
//! assert_eq!(kernel.stats().ports, 1);
//! kernel.restore(&before);
//! assert_eq!(kernel.stats().ports, 0);
//! // A snapshot can also start a kernel of its own.
//! let other = Kernel::from_snapshot(&before);
//! assert!(other.is_alive(pid));
//! ```

use std::fmt;

use super::{Kernel, State, WaitState, WaitToken};
use crate::name::Pid;

/// A deep copy of everything a [`Kernel`] knows: tasks and their name
/// spaces, ports with their queued messages, port sets, mailboxes, the name
/// service, pending waits with their parked messages, the arrival-stamp
/// counter and the configuration.
///
/// It shares no state with the kernel it came from: operations on that
/// kernel do not change the snapshot, and a snapshot can be restored any
/// number of times ([`Kernel::restore`]) or start a new kernel
/// ([`Kernel::from_snapshot`]).
///
/// One thing is shared rather than copied: the [`Waker`](crate::runtime::Waker) of
/// each pending wait (an `Arc`, or a plain id). A restored wait keeps the waker it had when
/// the snapshot was taken, and calls it when it completes. A model checker
/// that restores states should register a no-op waker and poll
/// ([`Kernel::wait_done`]) instead of relying on wakers.
///
/// [`KernelSnapshot::canonical`] encodes the state so that equal futures
/// encode equally as often as possible (see DESIGN.md, "Snapshots and the
/// canonical state").
#[derive(Clone)]
pub struct KernelSnapshot {
    pub(super) state: State,
}

impl fmt::Debug for KernelSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KernelSnapshot")
            .field("tasks", &self.state.tasks.iter().flatten().count())
            .field("ports", &self.state.ports.len())
            .field("mailboxes", &self.state.mailboxes.len())
            .field("waits", &self.state.waits.len())
            .finish()
    }
}

impl State {
    /// Makes every object shareable with the snapshots cloned from here.
    fn share(&mut self) {
        self.ports.share();
        self.sets.share();
        self.mailboxes.share();
        self.waits.share();
        for t in self.tasks.iter_mut().flatten() {
            t.share();
        }
        self.mailbox_names.share();
        self.services.share();
    }
}

impl Kernel {
    /// A copy of the kernel's whole state, sharing its objects (each copied when
    /// the kernel first changes it; see [`KernelSnapshot`]).
    ///
    /// Taken under the kernel lock, so it is a state between two operations.
    pub fn snapshot(&self) -> KernelSnapshot {
        let mut st = self.lock_raw();
        // From now on the kernel shares its objects with the snapshot, and
        // copies one when it first changes it.
        st.share();
        let mut state = st.clone();
        // Wakers due for calling belong to this kernel's run (none are left
        // between operations: the lock guard calls them on release).
        state.to_wake.clear();
        state.woken.clear();
        KernelSnapshot { state }
    }

    /// Puts the state of `snap` back into this kernel: every handle to it
    /// (tasks, clones of the `Kernel`) now sees the snapshot's state. The
    /// kernel's allocations are reused where the shapes allow.
    ///
    /// Nothing is woken: a wait pending in the snapshot keeps the waker it
    /// had then (see [`KernelSnapshot`]); a wait pending now and absent from
    /// the snapshot is simply gone (its token then reads as abandoned).
    pub fn restore(&self, snap: &KernelSnapshot) {
        let mut st = self.lock_raw();
        let due = std::mem::take(&mut st.to_wake);
        let woken = std::mem::take(&mut st.woken);
        st.clone_from(&snap.state);
        st.to_wake = due;
        st.woken = woken;
    }

    /// A new kernel, independent of any other, in the state of `snap`.
    pub fn from_snapshot(snap: &KernelSnapshot) -> Kernel {
        Kernel::from_state(snap.state.clone())
    }

    /// Whether the wait behind `token` has completed, so that
    /// [`Kernel::wait_take`] would return its outcome now, without taking
    /// it. A wait whose record is gone (taken already, or its task exited)
    /// counts as done: `wait_take` reports it as abandoned. For a checker
    /// that polls instead of relying on wakers.
    pub fn wait_done(&self, pid: Pid, token: WaitToken) -> bool {
        let _ = pid;
        let st = self.lock_raw();
        match st.waits.get(token.id()) {
            Some(rec) => matches!(rec.state, WaitState::Done(_)),
            None => true,
        }
    }
}
