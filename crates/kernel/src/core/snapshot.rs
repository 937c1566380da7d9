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

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use smallvec::SmallVec;

use super::lane::Lanes;
use super::{
    KRight, Kernel, KernelConfig, Mailbox, MailboxId, Port, PortSet, State, TaskState, WaitRec,
    WaitState, WaitToken,
};
use crate::arena::{Arena, Cow, Frozen};
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
///
/// Inside, a snapshot is a table of handles: each object (task, port, set,
/// mailbox, wait, the name service) is shared with the kernel it came from
/// and with the other snapshots that have it unchanged, and the kernel
/// copies an object when it first changes it. Taking, dropping and
/// restoring a snapshot therefore cost a handle per object, not a copy of
/// it; a restore replaces only the objects that differ from the
/// snapshot's, and the objects of the kernel that are still the
/// snapshot's ones stay as they are.
#[derive(Clone)]
pub struct KernelSnapshot {
    frozen: FrozenState,
}

/// A [`State`] as a snapshot keeps it: every object by a shared handle
/// ([`Frozen`]), nothing of what is only the live kernel's (wakers due,
/// woken ids, open lanes).
#[derive(Clone)]
struct FrozenState {
    config: KernelConfig,
    tasks: Vec<Option<Arc<TaskState>>>,
    ports: Frozen<Port>,
    sets: Frozen<PortSet>,
    mailboxes: Frozen<Mailbox>,
    mailbox_names: Arc<BTreeMap<String, MailboxId>>,
    services: Arc<BTreeMap<String, (Pid, KRight)>>,
    waits: Frozen<WaitRec>,
    next_stamp: u64,
    graveyard: Vec<KRight>,
    /// The lanes' epoch (a snapshot has no lanes: `lane.rs`).
    lanes_epoch: u64,
}

impl fmt::Debug for KernelSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.frozen;
        f.debug_struct("KernelSnapshot")
            .field("tasks", &s.tasks.iter().flatten().count())
            .field("ports", &s.ports.len())
            .field("mailboxes", &s.mailboxes.len())
            .field("waits", &s.waits.len())
            .finish()
    }
}

impl KernelSnapshot {
    /// The snapshot's state as a kernel state of its own (sharing every
    /// object with the snapshot): what [`Kernel::from_snapshot`] starts
    /// from, and what the snapshot's canonical encoding reads.
    pub(super) fn state(&self) -> State {
        let f = &self.frozen;
        State {
            config: f.config.clone(),
            tasks: f
                .tasks
                .iter()
                .map(|t| t.as_ref().map(|a| Cow::Shared(Arc::clone(a))))
                .collect(),
            ports: Arena::thawed(&f.ports),
            sets: Arena::thawed(&f.sets),
            mailboxes: Arena::thawed(&f.mailboxes),
            mailbox_names: Cow::Shared(Arc::clone(&f.mailbox_names)),
            services: Cow::Shared(Arc::clone(&f.services)),
            waits: Arena::thawed(&f.waits),
            next_stamp: f.next_stamp,
            to_wake: SmallVec::new(),
            woken: Vec::new(),
            graveyard: f.graveyard.clone(),
            lanes: Lanes::with_epoch(f.lanes_epoch),
        }
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
        // copies one when it first changes it. Every field is named, so a
        // new one cannot be forgotten here. Wakers due and woken ids
        // belong to this kernel's run (none are due between operations:
        // the lock guard calls them on release).
        let State {
            config,
            tasks,
            ports,
            sets,
            mailboxes,
            mailbox_names,
            services,
            waits,
            next_stamp,
            to_wake: _,
            woken: _,
            graveyard,
            lanes,
        } = &mut *st;
        KernelSnapshot {
            frozen: FrozenState {
                config: config.clone(),
                tasks: tasks
                    .iter_mut()
                    .map(|t| t.as_mut().map(Cow::shared))
                    .collect(),
                ports: ports.freeze(),
                sets: sets.freeze(),
                mailboxes: mailboxes.freeze(),
                mailbox_names: mailbox_names.shared(),
                services: services.shared(),
                waits: waits.freeze(),
                next_stamp: *next_stamp,
                graveyard: graveyard.clone(),
                lanes_epoch: lanes.epoch,
            },
        }
    }

    /// Puts the state of `snap` back into this kernel: every handle to it
    /// (tasks, clones of the `Kernel`) now sees the snapshot's state. Only
    /// the objects that differ from the snapshot's are replaced (by the
    /// snapshot's, shared).
    ///
    /// Nothing is woken: a wait pending in the snapshot keeps the waker it
    /// had then (see [`KernelSnapshot`]); a wait pending now and absent from
    /// the snapshot is simply gone (its token then reads as abandoned).
    pub fn restore(&self, snap: &KernelSnapshot) {
        let f = &snap.frozen;
        let mut st = self.lock_raw();
        let State {
            config,
            tasks,
            ports,
            sets,
            mailboxes,
            mailbox_names,
            services,
            waits,
            next_stamp,
            // Due wakers and woken ids stay the live kernel's.
            to_wake: _,
            woken: _,
            graveyard,
            lanes,
        } = &mut *st;
        config.clone_from(&f.config);
        tasks.truncate(f.tasks.len());
        let kept = tasks.len();
        for (t, s) in tasks.iter_mut().zip(&f.tasks) {
            match (t, s) {
                (Some(t), Some(a)) => t.set_shared(a),
                (t, s) => *t = s.as_ref().map(|a| Cow::Shared(Arc::clone(a))),
            }
        }
        tasks.extend(
            f.tasks[kept..]
                .iter()
                .map(|t| t.as_ref().map(|a| Cow::Shared(Arc::clone(a)))),
        );
        ports.thaw_from(&f.ports);
        sets.thaw_from(&f.sets);
        mailboxes.thaw_from(&f.mailboxes);
        mailbox_names.set_shared(&f.mailbox_names);
        services.set_shared(&f.services);
        waits.thaw_from(&f.waits);
        *next_stamp = f.next_stamp;
        graveyard.clone_from(&f.graveyard);
        lanes.restored(f.lanes_epoch);
    }

    /// A new kernel, independent of any other, in the state of `snap`.
    pub fn from_snapshot(snap: &KernelSnapshot) -> Kernel {
        Kernel::from_state(snap.state())
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
            Some(rec) => matches!(rec.state, WaitState::Done(_) | WaitState::Handed(..)),
            None => true,
        }
    }
}
