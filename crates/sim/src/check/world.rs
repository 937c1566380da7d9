//! The model's initial state ([`World`]), the state the search stores, and
//! the read-only view invariants get ([`CheckView`]).

use std::collections::BTreeSet;
use std::sync::atomic::AtomicU32;
use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::introspect::{KernelStats, QueueStats};
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::runtime::{WaitToken, Wake, Waker};
use mkipc_kernel::{
    Capacity, CarriedRight, Disposition, IpcError, Kernel, KernelConfig, MailboxConfig, Pid,
    PortName,
};

use super::snap::Snap;
use crate::process::ExitStatus;
use crate::trace::Target;
use crate::ProcId;

/// Where a process is, in a stored state.
#[derive(Clone, Debug)]
pub(crate) enum Status {
    /// Steps when chosen.
    Runnable,
    /// Waits for a kernel operation (absolute deadline in ns, if timed).
    Waiting {
        token: WaitToken,
        deadline: Option<u64>,
    },
    /// Its deadline passed: the next step cancels the wait (or takes the
    /// outcome, if a peer completed it since), as the simulator does.
    TimedOut { token: WaitToken },
    /// In `work` or `sleep` until this virtual time (ns).
    Paused { until: u64 },
    /// Ended.
    Ended(ExitStatus),
}

/// One process in a stored state. The machine is shared between the
/// states that have it unchanged (copied on write, when it steps).
#[derive(Clone, Debug)]
pub(crate) struct Slot<M> {
    pub machine: Arc<M>,
    pub status: Status,
    pub name: Arc<str>,
    pub pid: Pid,
    /// The operation it waits in, for deadlock reports.
    pub op: Option<(bool, Target)>,
    /// Its part of the state's encoding as last written (`None`: to write):
    /// cleared when it steps or its status changes.
    pub part: Option<Arc<Part>>,
}

/// A process's part of a state's encoding (its pid, status and machine),
/// with what it was written against: valid while the machine and status
/// are unchanged (the slot clears it otherwise), its task's space version
/// is the same (the names' codes are), and, if its status has a timer,
/// the clock too.
#[derive(Debug)]
pub(crate) struct Part {
    /// Inline up to [`PART_INLINE`] bytes (a script's part is about 100):
    /// a process that steps gets a new part at every transition, in one
    /// allocation (the `Arc`'s), not two.
    pub bytes: smallvec::SmallVec<[u8; PART_INLINE]>,
    pub space_version: u64,
    pub now: u64,
    /// Its number in the collapsed visited set's table of its process
    /// (`u32::MAX`: not known yet), so that it is not looked up again.
    pub number: AtomicU32,
}

/// The bytes a [`Part`] holds without an allocation of their own.
pub(crate) const PART_INLINE: usize = 128;

/// A state of the model: the kernel, every process, the clock.
#[derive(Clone)]
pub(crate) struct State<M> {
    /// Unique per frozen state: lets the engine skip restoring the kernel
    /// it already holds.
    pub id: u64,
    pub kernel: Snap,
    pub slots: Vec<Slot<M>>,
    pub now: u64,
}

/// What a process is doing, as an invariant or a replay sees it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ProcStatus {
    /// It can step.
    Runnable,
    /// Waiting in a send (`sending`) or receive.
    Waiting {
        /// A send (else a receive).
        sending: bool,
    },
    /// In `work` or `sleep` for this much longer.
    Paused(Duration),
    /// Ended so.
    Ended(ExitStatus),
}

impl Status {
    pub(crate) fn public(&self, now: u64) -> ProcStatus {
        match self {
            Status::Runnable => ProcStatus::Runnable,
            Status::Waiting { token, .. } | Status::TimedOut { token } => ProcStatus::Waiting {
                sending: token.is_send(),
            },
            Status::Paused { until } => {
                ProcStatus::Paused(Duration::from_nanos(until.saturating_sub(now)))
            }
            Status::Ended(s) => ProcStatus::Ended(s.clone()),
        }
    }
}

/// The waker of every checker wait: the checker polls instead.
struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}

pub(crate) fn no_waker() -> Waker {
    Arc::new(NoWake).into()
}

/// An invariant over states.
pub(crate) type Invariant<M> = Box<dyn Fn(&CheckView<'_, M>) -> Result<(), String>>;

/// Builds the initial state of a model: its ports, mailboxes, processes,
/// servers, invariants (what [`Checker::run`](super::Checker::run)'s setup
/// gets). Mirrors [`Sim`](crate::Sim)'s set-up API.
pub struct World<M> {
    pub(crate) kernel: Kernel,
    pub(crate) init: Pid,
    pub(crate) slots: Vec<Slot<M>>,
    pub(crate) servers: BTreeSet<u32>,
    pub(crate) expect_error: BTreeSet<u32>,
    pub(crate) invariants: Vec<(String, Invariant<M>)>,
    pub(crate) mailboxes: Vec<PortName>,
    pub(crate) setup_send_rights: Vec<PortName>,
    /// Labels of ports and mailboxes, by kernel object key.
    pub(crate) labels: Vec<((u8, u64), String)>,
    /// The system-owned mailboxes open to every process ([`World::mailbox`]),
    /// by kernel object key: the ones the partial-order reduction may find
    /// a sole sender or receiver of.
    pub(crate) open_mailboxes: Vec<(u8, u64)>,
    /// Those of them with room for a message (not rendezvous).
    pub(crate) buffered_mailboxes: Vec<(u8, u64)>,
    pub(crate) waker: Waker,
}

impl<M> World<M> {
    pub(crate) fn new(config: KernelConfig) -> World<M> {
        let kernel = Kernel::with_config(config);
        let init = kernel.create_task();
        World {
            kernel,
            init,
            slots: Vec::new(),
            servers: BTreeSet::new(),
            expect_error: BTreeSet::new(),
            invariants: Vec::new(),
            mailboxes: Vec::new(),
            setup_send_rights: Vec::new(),
            labels: Vec::new(),
            open_mailboxes: Vec::new(),
            buffered_mailboxes: Vec::new(),
            waker: no_waker(),
        }
    }

    /// The kernel (in its initial state while setting up).
    pub fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The set-up task's pid: it holds what [`World::port`] and
    /// [`World::mailbox`] create until processes inherit it.
    pub fn init_pid(&self) -> Pid {
        self.init
    }

    fn label(&mut self, name: PortName, label: &str) {
        if let Some(key) = self.kernel.object_key(self.init, name) {
            self.labels.push((key, label.to_string()));
        }
    }

    /// Creates a port held by the set-up task, as [`Sim::port`](crate::Sim::port)
    /// does: hand it over with [`Inherit`](crate::Inherit); the set-up
    /// task's own send right is released when the search starts.
    pub fn port(&mut self, label: &str, capacity: Capacity) -> Result<PortName, IpcError> {
        let name = self.kernel.port_allocate(self.init, capacity)?;
        self.kernel
            .make_right(self.init, name, Disposition::MakeSend)?;
        self.setup_send_rights.push(name);
        self.label(name, label);
        Ok(name)
    }

    /// Creates a system-owned named mailbox open to every process, as
    /// [`Sim::mailbox`](crate::Sim::mailbox) does.
    pub fn mailbox(&mut self, label: &str, capacity: Capacity) -> Result<PortName, IpcError> {
        let name = self.mailbox_with(label, MailboxConfig::new(capacity).owner(Owner::System))?;
        if let Some(key) = self.kernel.object_key(self.init, name) {
            self.open_mailboxes.push(key);
            if capacity != Capacity::Zero {
                self.buffered_mailboxes.push(key);
            }
        }
        Ok(name)
    }

    /// Creates a mailbox with any configuration (owned by the set-up task
    /// unless it says otherwise).
    pub fn mailbox_with(
        &mut self,
        label: &str,
        config: MailboxConfig,
    ) -> Result<PortName, IpcError> {
        let name = self.kernel.mailbox_create(self.init, label, config)?;
        self.mailboxes.push(name);
        self.label(name, label);
        Ok(name)
    }

    /// Adds a process that inherits `inherit` from the set-up task and runs
    /// the machine `make` builds from its own names for them, in order.
    pub fn spawn_with(
        &mut self,
        name: &str,
        inherit: &[CarriedRight],
        make: impl FnOnce(&[CarriedRight]) -> M,
    ) -> Result<ProcId, IpcError> {
        let id = ProcId(self.slots.len() as u32);
        let slot = new_slot(&self.kernel, self.init, name, inherit, make)?;
        self.slots.push(slot);
        Ok(id)
    }

    /// Adds a process that inherits nothing.
    pub fn spawn(&mut self, name: &str, make: impl FnOnce(&[CarriedRight]) -> M) -> ProcId {
        let id = ProcId(self.slots.len() as u32);
        let pid = self.kernel.create_task();
        self.slots.push(Slot {
            machine: Arc::new(make(&[])),
            status: Status::Runnable,
            name: name.into(),
            pid,
            op: None,
            part: None,
        });
        id
    }

    /// Declares `proc` a server: it may be left waiting at a receive at the
    /// end (a valid end state), as [`Sim::server`](crate::Sim::server).
    pub fn server(&mut self, proc: ProcId) {
        self.servers.insert(proc.0);
    }

    /// Declares that `proc` may end with an error, as
    /// [`Sim::expect_error`](crate::Sim::expect_error).
    pub fn expect_error(&mut self, proc: ProcId) {
        self.expect_error.insert(proc.0);
    }

    /// Checks `check` at every state; a failure is reported with its trail.
    pub fn invariant(
        &mut self,
        name: &str,
        check: impl Fn(&CheckView<'_, M>) -> Result<(), String> + 'static,
    ) {
        self.invariants.push((name.to_string(), Box::new(check)));
    }

    /// The label of the object `key` denotes, if the world named it.
    pub(crate) fn label_of(&self, key: (u8, u64)) -> Option<&str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, l)| l.as_str())
    }
}

/// A process slot whose task inherits `inherit` from `from`.
pub(crate) fn new_slot<M>(
    kernel: &Kernel,
    from: Pid,
    name: &str,
    inherit: &[CarriedRight],
    make: impl FnOnce(&[CarriedRight]) -> M,
) -> Result<Slot<M>, IpcError> {
    let pid = kernel.create_task();
    let names = if inherit.is_empty() {
        Vec::new()
    } else {
        match kernel.transfer_rights(from, pid, inherit) {
            Ok(n) => n,
            Err(e) => {
                kernel.exit_task(pid);
                return Err(e);
            }
        }
    };
    Ok(Slot {
        machine: Arc::new(make(&names)),
        status: Status::Runnable,
        name: name.into(),
        pid,
        op: None,
        part: None,
    })
}

/// A state as invariants see it (read-only).
pub struct CheckView<'a, M> {
    pub(crate) kernel: &'a Kernel,
    pub(crate) slots: &'a [Slot<M>],
    pub(crate) now: u64,
}

impl<M> CheckView<'_, M> {
    /// The kernel in this state.
    pub fn kernel(&self) -> &Kernel {
        self.kernel
    }
    /// Virtual time.
    pub fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }
    /// How many processes there are.
    pub fn procs(&self) -> usize {
        self.slots.len()
    }
    /// A process's machine.
    pub fn machine(&self, id: ProcId) -> Option<&M> {
        self.slots.get(id.0 as usize).map(|s| &*s.machine)
    }
    /// A process's name.
    pub fn name(&self, id: ProcId) -> Option<&str> {
        self.slots.get(id.0 as usize).map(|s| &*s.name)
    }
    /// A process's kernel task.
    pub fn pid(&self, id: ProcId) -> Option<Pid> {
        self.slots.get(id.0 as usize).map(|s| s.pid)
    }
    /// What a process is doing.
    pub fn status(&self, id: ProcId) -> Option<ProcStatus> {
        self.slots
            .get(id.0 as usize)
            .map(|s| s.status.public(self.now))
    }
    /// The kernel's queue statistics.
    pub fn queue_stats(&self) -> Vec<QueueStats> {
        self.kernel.queue_stats()
    }
    /// The kernel's counts.
    pub fn kernel_stats(&self) -> KernelStats {
        self.kernel.stats()
    }
}
