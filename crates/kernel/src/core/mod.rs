//! The non-blocking core: every kernel operation completes or registers a waiter.
//!
//! All kernel objects live in one [`State`] behind one lock (a "big kernel
//! lock", as early Mach and uniprocessor L4 had). An operation takes the lock,
//! does all its work — name lookups, right transfers, queueing, hand-off to a
//! waiting receiver, cascades of port deaths and notifications — and releases
//! it. It never parks a thread: when it cannot complete, it records a *wait*
//! (with the [`Waker`] to call when the wait completes) and returns
//! [`Begin::Blocked`]. Whoever runs the task decides what blocking means:
//! [`Task`](crate::Task) parks the OS thread; the simulator switches to another
//! simulated process. Wakers are called after the lock is released.
//!
//! Because there is one lock and no iteration over hash maps, the core is
//! deterministic: the same sequence of calls gives the same results, which is
//! what lets the simulator replay a run event for event.

mod canonical;
mod direct;
mod fifo;
mod footprint;
mod hold;
pub use hold::KernelHold;
use hold::StateGuard;
mod introspect;
mod invariants;
mod lane;
pub(crate) use lane::LaneSend;
mod lifecycle;
mod links;
pub(crate) use links::TaskLinks;
mod mailbox;
mod notify;
pub(crate) use notify::PortRequests;
mod ops;
mod queue;
mod receive;
pub use receive::FastReceive;
mod send;
mod service;
mod snapshot;
pub(crate) mod space;
mod symmetry;
#[cfg(test)]
mod tests;
mod transfer;
mod wait;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::num::NonZeroU64;

use smallvec::SmallVec;

/// The memory a queued message costs against
/// [`KernelConfig::queue_memory_limit`], in bytes: its queue entry, its body
/// of `body_len` bytes and, when it carries `rights` rights (counting the
/// reply right) or was sent through a send-once right (`boxed`), the box
/// that holds them.
///
/// ```
/// // Even an empty message costs its entry.
/// assert!(mkipc_kernel::introspect::queue_cost(0, 0, false) > 0);
/// assert!(mkipc_kernel::introspect::queue_cost(8, 1, true) > mkipc_kernel::introspect::queue_cost(8, 0, false));
/// ```
pub fn queue_cost(body_len: usize, rights: usize, boxed: bool) -> usize {
    queue::message_cost(body_len, rights, boxed)
}

pub use canonical::CanonicalOptions;
pub use introspect::{BlockedOn, KernelStats, QueueStats, TaskRights};
pub use snapshot::KernelSnapshot;

use crate::arena::{Arena, Id};
use crate::capacity::{Capacity, Sent};
use crate::error::{ReceiveError, SendError};
use crate::message::{Body, Message};
use crate::name::{Access, Pid, PortName};
use crate::sync::{Arc, AtomicBool, AtomicU64, Mutex, Ordering};
use queue::MsgQueue;
use space::Space;

pub(crate) type PortId = Id<Port>;
pub(crate) type SetId = Id<PortSet>;
pub(crate) type MailboxId = Id<Mailbox>;
pub(crate) type WaitId = Id<WaitRec>;

/// Something to call when a wait completes: unpark a thread, mark a simulated
/// process runnable. Called without the kernel lock held.
pub trait Wake: Send + Sync {
    /// The wait this waker was registered for has completed (or may have: a
    /// spurious wake is allowed, and the owner re-checks with
    /// [`Kernel::wait_take`]).
    fn wake(&self);
}

/// How a waiter is woken when its wait completes: the seam between the
/// core and whoever runs tasks.
///
/// * [`Waker::Call`]: a shared [`Wake`] handle the kernel calls once its
///   lock is released (a thread-backed [`Task`](crate::Task) unparks its
///   thread). Always a `std` `Arc`, also under loom: the handle's reference
///   count is not what the model checks, and loom's `Arc` cannot hold a
///   trait object.
/// * [`Waker::Id`]: a plain number the runner chose (the simulator's
///   process index). Nothing is allocated or called: the kernel appends the
///   id to its list of *woken ids*, in completion order, and the runner
///   collects them with [`Kernel::take_woken`] (asking
///   [`Kernel::has_woken`], one atomic load, first). A single-threaded
///   runner pays no `Arc` per wait and no lock of its own per wake.
///   Whoever registers id wakers must drain them: the list grows until then.
///
/// ```
/// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
/// use mkipc_kernel::runtime::{Begin, Source, Waker};
/// let kernel = Kernel::new();
/// let a = kernel.spawn_task();
/// let port = a.port_allocate(Capacity::Bounded(1)).unwrap();
/// // Task `a` waits for a message on its port, woken by id 7.
/// let Begin::Blocked(token) =
///     kernel.receive_begin(a.pid(), Source::Name(port), true, &|| Waker::Id(7))
/// else { unreachable!() };
/// assert!(!kernel.has_woken());
/// a.send(port, Message::from_u64(1, 5)).unwrap(); // completes the wait
/// let mut woken = Vec::new();
/// assert!(kernel.has_woken());
/// kernel.take_woken(&mut woken);
/// assert_eq!(woken, [7]);
/// assert!(kernel.wait_take(a.pid(), token).is_some());
/// ```
#[derive(Clone)]
pub enum Waker {
    /// Call this handle (after the kernel lock is released).
    Call(std::sync::Arc<dyn Wake>),
    /// Append this id to the kernel's woken ids ([`Kernel::take_woken`]).
    Id(u64),
}

impl Waker {
    /// A waker that calls `wake`.
    pub fn call(wake: impl Wake + 'static) -> Waker {
        Waker::Call(std::sync::Arc::new(wake))
    }
}

impl<W: Wake + 'static> From<std::sync::Arc<W>> for Waker {
    fn from(wake: std::sync::Arc<W>) -> Waker {
        Waker::Call(wake)
    }
}

impl From<std::sync::Arc<dyn Wake>> for Waker {
    fn from(wake: std::sync::Arc<dyn Wake>) -> Waker {
        Waker::Call(wake)
    }
}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Waker::Call(_) => f.write_str("Waker::Call(..)"),
            Waker::Id(id) => write!(f, "Waker::Id({id})"),
        }
    }
}

/// The identity of a pending operation, returned by [`Begin::Blocked`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct WaitToken {
    id: u64,
    send: bool,
}

/// The result of starting an operation on the non-blocking core.
#[derive(Debug)]
pub enum Begin<T> {
    /// It completed.
    Done(T),
    /// It is waiting; the waker will be called when it completes. Collect the
    /// result with [`Kernel::wait_take`] or give up with [`Kernel::wait_cancel`].
    Blocked(WaitToken),
}

/// The result of a completed wait.
#[derive(Clone, Debug)]
pub enum WaitOutcome {
    /// A send finished.
    Sent(Result<Sent, SendError>),
    /// A receive finished.
    Received(Result<Message, ReceiveError>),
}

/// Where a send goes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Destination {
    /// A port (send, send-once or receive right) or mailbox name.
    Name(PortName),
    /// A task, over the direct link from the sender.
    Task(Pid),
}

/// Where a receive takes from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Source<'a> {
    /// A receive right, port set or mailbox.
    Name(PortName),
    /// The first message on any of these names (select).
    Any(&'a [PortName]),
    /// The direct link from this task.
    Task(Pid),
    /// Any direct link into the receiving task.
    AnyTask,
}

/// How a receive picks its message (beyond where it takes from).
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct ReceiveOptions<'f> {
    /// Selective receive: the oldest message that passes.
    pub filter: Option<&'f crate::Filter>,
    /// Priority select: from the first source (in the order given) that has
    /// a message, not the oldest message of all.
    pub first_ready: bool,
}

/// Kernel-wide settings.
#[derive(Clone, Debug)]
pub struct KernelConfig {
    /// Memory ceiling of each unbounded or bounded queue, in bytes: what its
    /// queued messages cost, counting each message's queue entry, body and
    /// carried rights (so empty messages count too).
    pub queue_memory_limit: usize,
    /// Capacity of a direct link when it is created on first use.
    /// `Bounded(0)`, which [`Capacity::validate`] rejects elsewhere, is taken
    /// as `Zero` (no buffer: a rendezvous).
    pub link_capacity: Capacity,
}

impl Default for KernelConfig {
    fn default() -> Self {
        KernelConfig {
            queue_memory_limit: 64 << 20,
            link_capacity: Capacity::Unbounded,
        }
    }
}

/// A right while the kernel holds it (in a message, a request, the name service).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum KRight {
    Receive(PortId),
    Send(PortId),
    SendOnce(PortId),
    /// A send right that was a dead name when sent.
    DeadSend,
    /// A send-once right that was a dead name when sent.
    DeadSendOnce,
}

/// A message while the kernel holds it. Kept to about one cache line: the
/// rights a message carries (rare on hot paths) live behind a box.
#[derive(Clone, Debug)]
pub(crate) struct KMessage {
    pub id: u32,
    pub sender: Pid,
    /// Global arrival order, used to pick the oldest message across queues.
    /// Never zero, which gives a queue slot (`Option<KMessage>`) its empty
    /// state for free: 48 bytes, not 56.
    pub stamp: NonZeroU64,
    pub body: Body,
    /// Carried rights, reply right and send-once origin, if any.
    pub carried: Option<Box<Carried>>,
}

/// Takes the next arrival stamp from the kernel's counter (a free function so
/// that a path already borrowing a port can take one: disjoint fields).
#[inline(always)]
pub(crate) fn take_stamp(next_stamp: &mut u64) -> NonZeroU64 {
    *next_stamp += 1;
    NonZeroU64::new(*next_stamp).unwrap_or(NonZeroU64::MAX)
}

// The box of rights is 72 bytes (its cost in `queue_cost`), `name_owner` included.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Carried>() == 72);

// A queue slot is an `Option<KMessage>`; the stamp's niche keeps it as small as the message.
const _: () = assert!(std::mem::size_of::<Option<KMessage>>() == std::mem::size_of::<KMessage>());

impl KMessage {
    /// Carries no rights and is not a kernel notification: once handed
    /// over it could go to any plain waiter of its queue (the group
    /// hand-off, `wait.rs`).
    #[inline]
    pub(crate) fn is_plain(&self) -> bool {
        self.carried.is_none() && self.sender != Pid::KERNEL
    }
    /// The port whose send-once right this message was sent through (such
    /// messages bypass bounded limits), if any.
    pub(crate) fn via_send_once(&self) -> Option<PortId> {
        self.carried.as_ref().and_then(|c| c.via_send_once)
    }
}

/// The rights a kernel message carries, with the dispositions the sender used.
#[derive(Clone, Debug, Default)]
pub(crate) struct Carried {
    pub rights: SmallVec<[(KRight, crate::Disposition); 2]>,
    pub reply: Option<(KRight, crate::Disposition)>,
    /// Sent through a send-once right to this port.
    pub via_send_once: Option<PortId>,
    /// For a kernel notification whose body is a name (dead-name,
    /// no-senders): the task whose space the name is in (never the kernel,
    /// pid 0). Only the canonical encoding reads it, to write the name
    /// against that space. (Fits in the box's padding: the cost of a
    /// message's rights does not change.)
    pub name_owner: Option<std::num::NonZeroU32>,
}

impl Carried {
    /// Boxes the rights, or `None` when there are none.
    pub(crate) fn boxed(
        rights: SmallVec<[(KRight, crate::Disposition); 2]>,
        reply: Option<(KRight, crate::Disposition)>,
        via_send_once: Option<PortId>,
    ) -> Option<Box<Carried>> {
        if rights.is_empty() && reply.is_none() && via_send_once.is_none() {
            None
        } else {
            Some(Box::new(Carried {
                rights,
                reply,
                via_send_once,
                name_owner: None,
            }))
        }
    }
}

/// Which task, if any, holds a port's receive right.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Receiver {
    /// A task holds it (under a name in its space, or as a direct link's inbox).
    Task(Pid),
    /// It travels inside a message queued on (or parked at) this queue.
    InTransit(QueueId),
}

/// Which queue a message goes to: a port's or a mailbox's.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub(crate) enum QueueId {
    Port(PortId),
    Mailbox(MailboxId),
}

/// A name as a map key, ordered by slot index, then generation. A task holds
/// at most one live name per slot, so among live names this order is the
/// slot order, whatever the generations are: the canonical state (which
/// leaves generations out) stays sound.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct BySlot(pub PortName);

impl PartialOrd for BySlot {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for BySlot {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.0.index(), self.0.generation()).cmp(&(other.0.index(), other.0.generation()))
    }
}

/// A port: a queue with exactly one receive right.
pub(crate) struct Port {
    pub queue: MsgQueue,
    pub receiver: Receiver,
    pub set: Option<SetId>,
    /// Send rights in existence (user references everywhere + in transit +
    /// service registry). A `u64`: each task may hold 65,535 user references,
    /// so 65,537 tasks overflow a `u32` (which wrapped, firing a spurious
    /// no-senders notification); no number of tasks and messages this
    /// process can hold reaches 2^64.
    pub send_rights: u64,
    /// Send-once rights in existence (`u64` for the same reason).
    pub send_once_rights: u64,
    /// The notifications requested about this port, boxed on the first
    /// request ([`PortRequests`], `notify.rs`): most ports never have one.
    pub requests: Option<Box<PortRequests>>,
    /// `Some((from, to))` for a direct link.
    pub link: Option<(Pid, Pid)>,
    /// Direct links: the sending task has exited (end of stream once drained).
    pub writer_closed: bool,
}

clone_fields!(Port {
    queue,
    receiver,
    set,
    send_rights,
    send_once_rights,
    requests,
    link,
    writer_closed,
});

/// A port set: receive from any member.
pub(crate) struct PortSet {
    pub members: BTreeSet<PortId>,
    pub blocked_receivers: VecDeque<WaitId>,
}

clone_fields!(PortSet {
    members,
    blocked_receivers
});

/// A named mailbox with an owner and an access list.
pub(crate) struct Mailbox {
    /// Shared, so that copying a mailbox on write (a step of the model
    /// checker changes its queue) does not copy its name.
    pub name: std::sync::Arc<str>,
    pub owner: Option<Pid>,
    pub acl: BTreeMap<Pid, Access>,
    pub default_access: Access,
    pub queue: MsgQueue,
}

clone_fields!(Mailbox {
    name,
    owner,
    acl,
    default_access,
    queue,
});

impl Mailbox {
    pub(crate) fn access(&self, pid: Pid) -> Access {
        if self.owner == Some(pid) {
            return Access::ALL;
        }
        self.acl.get(&pid).copied().unwrap_or(self.default_access)
    }
}

/// One place a blocked receiver is registered.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Registration {
    /// On a queue, with the name the receiver used (for the trailer).
    Queue(QueueId, PortName),
    /// On a port set (or a task's direct-link inbox).
    Set(SetId),
}

#[derive(Clone)]
pub(crate) enum WaitState {
    Sending {
        msg: KMessage,
        queue: QueueId,
        /// The user message's names and dispositions, to give rights back on
        /// failure. Boxed: a parked send is rare next to a parked receive,
        /// and inline this 64-byte message made every wait record (a
        /// receive's too: every idle process has one) 48 bytes larger.
        original: Box<Message>,
        /// The send-once destination name the send consumed, if any.
        dest_name: Option<PortName>,
    },
    Receiving {
        registrations: SmallVec<[Registration; 2]>,
        /// A selective receive's filter: only a matching message completes it.
        filter: Option<Box<crate::Filter>>,
    },
    Done(WaitOutcome),
    /// A receive completed with a message handed over from queue `from`
    /// while it waited: the message keeps its place there until the waiter
    /// takes it ([`capacity`](crate::capacity), "A handed message keeps its
    /// place"; `MsgQueue::handed` lists these, and whoever of them takes
    /// first takes the oldest plain one: `Locked::take_handed`).
    Handed(WaitOutcome, QueueId),
}

#[derive(Clone)]
pub(crate) struct WaitRec {
    pub task: Pid,
    pub waker: Waker,
    pub state: WaitState,
}

/// Per-task kernel state: its names and its waits, and, boxed on first use,
/// what only a task that uses direct links or owns mailboxes has
/// ([`TaskLinks`], `links.rs`), so that a task holding one port costs
/// 120 bytes here, not 216 and an inbox port set.
pub(crate) struct TaskState {
    pub space: Space,
    pub links: Option<Box<TaskLinks>>,
    pub waits: SmallVec<[WaitId; 2]>,
}

clone_fields!(TaskState {
    space,
    links,
    waits,
});

/// Everything the kernel knows, behind its one lock.
pub(crate) struct State {
    pub config: KernelConfig,
    /// Indexed by pid; `None` once the task has exited. Slot 0 is the kernel.
    /// Each shared with the snapshots that have it unchanged once a
    /// snapshot was taken (copied on write: [`State::task_mut`]).
    pub tasks: Vec<Option<crate::arena::Cow<TaskState>>>,
    pub ports: Arena<Port>,
    pub sets: Arena<PortSet>,
    pub mailboxes: Arena<Mailbox>,
    /// Shared with snapshots (copied on write), as the name service.
    pub mailbox_names: crate::arena::Cow<BTreeMap<String, MailboxId>>,
    pub services: crate::arena::Cow<BTreeMap<String, (Pid, KRight)>>,
    pub waits: Arena<WaitRec>,
    pub next_stamp: u64,
    /// Wakers to call once the lock is released.
    pub to_wake: SmallVec<[std::sync::Arc<dyn Wake>; 4]>,
    /// Ids of [`Waker::Id`] waiters whose waits completed, in completion
    /// order, until the runner takes them ([`Kernel::take_woken`]).
    pub woken: Vec<u64>,
    /// Rights waiting to be destroyed (a worklist, so cascades do not recurse).
    pub graveyard: Vec<KRight>,
    /// The ports' lanes (`lane.rs`): fenced and drained whenever the lock
    /// is taken, so nothing else here needs to know about them.
    pub lanes: lane::Lanes,
}

clone_fields!(State {
    config,
    tasks,
    ports,
    sets,
    mailboxes,
    mailbox_names,
    services,
    waits,
    next_stamp,
    to_wake,
    woken,
    graveyard,
    lanes,
});

/// A kernel: every port, right, mailbox and task of one IPC world.
///
/// A `Kernel` is a value: many can coexist in one process. Cloning gives
/// another handle to the same kernel.
///
/// ```
/// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
/// let kernel = Kernel::new();
/// let task = kernel.spawn_task();
/// let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
/// task.send(port, Message::new(1, b"hi")).unwrap();
/// assert!(task.try_send(port, Message::new(2, b"full")).is_err()); // bounded(1) is full
/// assert_eq!(&task.receive(port).unwrap().body[..], b"hi");
/// ```
#[derive(Clone)]
pub struct Kernel {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    /// Woken ids, taken without the lock (see [`WokenIds`]).
    woken: WokenIds,
    /// Unique among the kernels of this process: the key of the threads'
    /// cached lane grants (`lane.rs`).
    id: u64,
    /// The thread holding the lock for a whole run, if any (`hold.rs`).
    held: hold::Held,
}

/// Where the ids of completed [`Waker::Id`] waits wait for the runner.
///
/// Most operations complete at most one wait, and a single-threaded runner
/// takes the ids after each: so the oldest id waits in `one`, which the
/// lock guard fills (under the lock) and [`Kernel::take_woken`] empties
/// with one atomic swap, without the lock. Only when `one` is taken, or an
/// operation completed several waits, do ids go to `State::woken`, under
/// the lock, with `more` set (and cleared under the lock when they are
/// taken). `one` only fills while `more` is clear, so it always holds the
/// oldest id: taking `one`, then `State::woken`, keeps completion order.
struct WokenIds {
    /// The oldest woken id, or [`NO_ID`].
    one: AtomicU64,
    /// Whether `State::woken` holds ids (exact under the lock).
    more: AtomicBool,
}

/// An empty [`WokenIds::one`] (an id of this value always goes to the list).
const NO_ID: u64 = u64::MAX;

impl WokenIds {
    fn new() -> WokenIds {
        WokenIds {
            one: AtomicU64::new(NO_ID),
            more: AtomicBool::new(false),
        }
    }

    /// Under the lock: publishes the ids an operation added to `list`.
    #[inline]
    fn publish(&self, list: &mut Vec<u64>) {
        if !self.more.load(Ordering::Relaxed) {
            if let [id] = list[..] {
                if id != NO_ID && self.one.load(Ordering::Relaxed) == NO_ID {
                    list.clear();
                    self.one.store(id, Ordering::Release);
                    return;
                }
            }
        }
        self.more.store(true, Ordering::Release);
    }
}

impl Default for Kernel {
    fn default() -> Self {
        Kernel::new()
    }
}

impl fmt::Debug for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("stats", &self.stats())
            .finish()
    }
}

/// The lock guard; wakes everything the operation completed when dropped.
pub(crate) struct Locked<'a> {
    guard: Option<StateGuard<'a>>,
    woken: &'a WokenIds,
}

impl<'a> Locked<'a> {
    #[inline]
    fn new(guard: StateGuard<'a>, woken: &'a WokenIds) -> Locked<'a> {
        Locked {
            guard: Some(guard),
            woken,
        }
    }
}

impl std::ops::Deref for Locked<'_> {
    type Target = State;
    fn deref(&self) -> &State {
        self.guard.as_ref().expect("locked")
    }
}
impl std::ops::DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut State {
        self.guard.as_mut().expect("locked")
    }
}
impl Drop for Locked<'_> {
    #[inline]
    fn drop(&mut self) {
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        if !guard.woken.is_empty() {
            self.woken.publish(&mut guard.woken);
        }
        if guard.to_wake.is_empty() {
            return;
        }
        let wakers = std::mem::take(&mut guard.to_wake);
        // Release the lock before waking, so a woken thread does not
        // immediately block on it.
        drop(guard);
        for w in wakers {
            w.wake();
        }
    }
}

impl Kernel {
    /// A new, empty kernel with the default [`KernelConfig`].
    pub fn new() -> Kernel {
        Kernel::with_config(KernelConfig::default())
    }

    /// A new, empty kernel.
    pub fn with_config(mut config: KernelConfig) -> Kernel {
        if config.link_capacity == Capacity::Bounded(0) {
            config.link_capacity = Capacity::Zero;
        }
        let state = State {
            config,
            tasks: vec![None],
            ports: Arena::default(),
            sets: Arena::default(),
            mailboxes: Arena::default(),
            mailbox_names: Default::default(),
            services: Default::default(),
            waits: Arena::default(),
            next_stamp: 0,
            to_wake: SmallVec::new(),
            woken: Vec::new(),
            graveyard: Vec::new(),
            lanes: lane::Lanes::new(),
        };
        Kernel::from_state(state)
    }

    /// A kernel around `state`, with a fresh id.
    pub(crate) fn from_state(state: State) -> Kernel {
        Kernel {
            inner: Arc::new(Inner {
                state: Mutex::new(state),
                woken: WokenIds::new(),
                id: lane::next_kernel_id(),
                held: hold::Held::new(),
            }),
        }
    }

    #[inline]
    pub(crate) fn lock(&self) -> Locked<'_> {
        self.locked(self.lock_raw())
    }

    /// The lock guard around a bare one (a fast path that failed goes on
    /// under the lock it took).
    #[inline]
    pub(crate) fn locked<'a>(&'a self, guard: StateGuard<'a>) -> Locked<'a> {
        Locked::new(guard, &self.inner.woken)
    }

    /// Whether a [`Waker::Id`] waiter was woken since the last
    /// [`Kernel::take_woken`]: two atomic loads, no lock.
    #[inline]
    pub fn has_woken(&self) -> bool {
        let w = &self.inner.woken;
        w.one.load(Ordering::Acquire) != NO_ID || w.more.load(Ordering::Acquire)
    }

    /// Appends to `out` the ids of the [`Waker::Id`] waiters whose waits
    /// completed since the last call, in completion order, and forgets
    /// them. When one wait completed since the last call (the usual case)
    /// this is one atomic swap; the lock is taken only for more.
    #[inline]
    pub fn take_woken(&self, out: &mut Vec<u64>) {
        let w = &self.inner.woken;
        if w.one.load(Ordering::Relaxed) != NO_ID {
            let id = w.one.swap(NO_ID, Ordering::Acquire);
            if id != NO_ID {
                out.push(id);
            }
        }
        if w.more.load(Ordering::Acquire) {
            let mut st = self.lock_raw();
            w.more.store(false, Ordering::Relaxed);
            out.append(&mut st.woken);
        }
    }

    /// Lists `id` among the woken ids, as if a [`Waker::Id`] wait had
    /// completed: for a runner whose waiters can also be woken by something
    /// outside the kernel (the simulator's async processes, pending on a
    /// future of their own). The runner takes it with
    /// [`Kernel::take_woken`] in order with the others.
    pub fn wake_id(&self, id: u64) {
        self.lock_unfenced().wake_later(Waker::Id(id));
    }

    /// The bare lock guard, for fast paths that never wake anyone. Every
    /// open lane is fenced and drained first (`lane.rs`), so whoever holds
    /// the guard sees every message in the locked state.
    #[inline]
    pub(crate) fn lock_raw(&self) -> StateGuard<'_> {
        let mut st = self.state_guard();
        if !st.lanes.open.is_empty() {
            st.fence_lanes();
        }
        st
    }

    /// The lock without fencing the lanes, for what looks at no queue and
    /// no name space (`wait_take`, `wake_id`).
    #[inline]
    pub(crate) fn lock_unfenced(&self) -> Locked<'_> {
        self.locked(self.state_guard())
    }

    /// This kernel's id (see `Inner::id`).
    #[inline]
    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }
}

impl State {
    pub(crate) fn task(&self, pid: Pid) -> Option<&TaskState> {
        self.tasks.get(pid.0 as usize).and_then(|t| t.as_deref())
    }
    pub(crate) fn task_mut(&mut self, pid: Pid) -> Option<&mut TaskState> {
        self.tasks
            .get_mut(pid.0 as usize)
            .and_then(|t| t.as_mut())
            .map(crate::arena::Cow::make_mut)
    }
    /// A task's name space, to change it. Every change counts in the lanes'
    /// epoch, so that grants taken before it stop working (`lane.rs`).
    pub(crate) fn space_mut(&mut self, pid: Pid) -> &mut Space {
        debug_assert!(
            self.lanes.open.is_empty(),
            "a name space changes with a lane open"
        );
        self.lanes.epoch = self.lanes.epoch.wrapping_add(1);
        &mut self.task_mut(pid).expect("live task").space
    }
    pub(crate) fn queue(&self, q: QueueId) -> Option<&MsgQueue> {
        match q {
            QueueId::Port(p) => self.ports.get(p).map(|p| &p.queue),
            QueueId::Mailbox(m) => self.mailboxes.get(m).map(|m| &m.queue),
        }
    }
    pub(crate) fn queue_mut(&mut self, q: QueueId) -> Option<&mut MsgQueue> {
        match q {
            QueueId::Port(p) => self.ports.get_mut(p).map(|p| &mut p.queue),
            QueueId::Mailbox(m) => self.mailboxes.get_mut(m).map(|m| &mut m.queue),
        }
    }
    pub(crate) fn stamp(&mut self) -> NonZeroU64 {
        take_stamp(&mut self.next_stamp)
    }
}

impl WaitToken {
    pub(crate) fn from_id(id: WaitId, send: bool) -> WaitToken {
        WaitToken {
            id: id.to_raw(),
            send,
        }
    }
    pub(crate) fn id(self) -> WaitId {
        Id::from_raw(self.id)
    }
    /// Whether this token belongs to a send (else a receive).
    pub fn is_send(self) -> bool {
        self.send
    }
}
