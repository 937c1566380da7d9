//! Lanes: the per-port path that rights-free messages take outside the kernel lock.
//!
//! A port whose state allows it (capacity `Bounded(n)` or `Unbounded`, in no
//! port set, not a direct link, not closed, nobody blocked on it, no
//! send-possible request, only small rights-free messages queued) can be
//! given a lane: a lock-free FIFO whose producers and consumers touch
//! separate cache lines, a ring ([`Lane`](crate::lane::Lane)) for a bounded
//! port and linked blocks ([`ListLane`](crate::lane::ListLane)) for an
//! unbounded one, which grow with the stream up to the memory ceiling, so
//! a producer running far ahead of its consumer never leaves the lane. A thread-backed [`Task`](crate::Task)
//! sends a rights-free message with a body of at most
//! [`INLINE_BODY`](crate::message::INLINE_BODY) bytes, and receives with a
//! plain `receive` on one receive right, through the lane when it holds a
//! *grant* for it; anything else takes the locked general path.
//!
//! # One rule keeps the two paths in agreement
//!
//! **Every locked operation starts by fencing and draining every open lane**
//! (`Kernel::lock_raw`): the lanes' messages move into their ports' locked
//! queues, oldest first, with their arrival stamps, sequence numbers and
//! counts, before the operation looks at anything. So a locked operation
//! sees exactly the state it would have seen had every lane message taken
//! the locked path: statistics, snapshots, the canonical encoding,
//! introspection, port death, `close` and capacity changes need no lane
//! code of their own, and a message sent with rights after lane messages is
//! queued behind them. A lane opens again only through a grant, under the
//! lock, when the port is eligible; queued messages then move back into it
//! (keeping their stamps), so the lane is always the *whole* queue while it
//! is open.
//!
//! # Grants and generations
//!
//! A grant (lane and generation) is cached per OS thread, keyed by kernel,
//! task, name and direction, so the fast path needs no name lookup. A grant
//! is only as good as the right behind it: every change to any task's name
//! space counts in [`Lanes::epoch`], and a lane enabled after such a change
//! gets a new generation, which fails every older grant's push and pop (the
//! generation is in the lane's head and tail words, so the check is part of
//! the reserving compare-and-swap). A lane that stays open across no name
//! change keeps its generation, so producer and consumer grants survive each
//! other's trips through the locked path. A refused grant is cached too:
//! the next few operations on that name and direction take the locked path
//! without asking again, so a port that stays ineligible (a waiter, a
//! message the lane cannot carry) pays for no grant per operation.
//!
//! # Blocking
//!
//! The lane itself never blocks. Full, fenced or stale mean "take the locked
//! path", where blocking is the same waiter machinery as always; a lane
//! opens only when nobody is blocked on its port, and registering a waiter
//! is a locked operation, which fences the lane first. So a wake-up cannot
//! be lost: a push either lands before the fence (and the drain hands it to
//! the locked state the waiter looks at) or fails and takes the locked
//! path, which finds the waiter. Before falling back, a blocking operation
//! yields a few times on a full or empty lane, as crossbeam's channels spin
//! before they park.
//!
//! # Waiting on an open lane
//!
//! The one exception: a receive without a deadline (`Wait::Forever`) that
//! finds its open lane empty after those yields sleeps *on the lane*,
//! without fencing it, so that a consumer catching up with its producers
//! does not close the lane for everyone (a fence, a locked wait, a locked
//! hand-off and a new grant per catch-up; with two consumers, a refused
//! grant then sent whole backlogs through drain and refill on every
//! operation). The lane keeps its sleepers (`Sleepers`, a count and a
//! list under a mutex, on a cache line of their own):
//!
//! * the receiver announces itself (the list, and a SeqCst `fetch_add` of
//!   the count), looks at the lane once more (`Lane::idle`: a SeqCst load of
//!   the tail, then the head) and sleeps only if nothing was reserved past
//!   the head and the lane is still open under its generation; otherwise it
//!   takes itself out and pops again (or takes the locked path if fenced);
//! * a push, after its reservation (a SeqCst compare-and-swap of the tail),
//!   loads the count (SeqCst) and, if anyone sleeps, wakes one (takes it
//!   out of the list, sets its flag, unparks it);
//! * a fence, after marking the words (SeqCst), loads the count and wakes
//!   them all; they find the lane fenced and take the locked path, where
//!   they register as waiters as before.
//!
//! Why no wake-up is lost: the four accesses (the count's announcement, the
//! look's tail load; the tail's reservation or mark, the push's or fence's
//! count load) are all SeqCst, so they have one total order: either the look
//! comes after the reservation or mark (and sees it), or the count load
//! comes after the announcement (and wakes someone). A woken receiver that
//! finds the message taken by another announces itself again, so every
//! push that found sleepers leaves one awake receiver behind it. The
//! announcement has its own word: nothing but the kernel, fenced, ever
//! writes the tail outside a push (an earlier attempt looked with a
//! read-modify-write of the tail itself and lost a refilled message in
//! loom). loom models SeqCst accesses as acquire/release only but SeqCst
//! fences fully, so under loom a fence sits between each announcement and
//! its load (`sync::loom_sc_fence`); the real build relies on the SeqCst
//! accesses alone, which the C++ model allows, and pays no fence per push.
//! The models are in `tests/loom.rs` (`lane_sleeper_*`, `lane_two_sleepers_*`).
//!
//! A receiver sleeping on a lane is not a registered waiter: `port_status`,
//! `blocked_on` and the statistics do not count it until a locked
//! operation's fence wakes it. A receiver woken by a fence (or whose last
//! look found one) takes the general path without asking for a grant, so
//! it registers under the lock if nothing is queued, and an observer that
//! polls sees it on a later look. A receive with a deadline keeps the
//! locked wait, so no deadline is waited in two places.

//! # The typed path
//!
//! `Ipc::send_small_with` / `receive_small_with` (a thread-backed task's
//! typed operations) use the same grants, lanes and fallbacks as `send` and
//! `receive`; only the value crossing the API differs. A typed send builds
//! its entry from the bytes (`Kernel::lane_send_small`), with no `Message`;
//! a typed receive copies the popped entry into a `SmallMessage`
//! (`Received`, the one generic receive path): the entry's body is flat (a
//! length and 16 bytes), so that is a few fixed-size moves and nothing to
//! drop. On any miss the `Message` the operation stands for is built (or
//! the one the locked path returned is converted), so order, capacity,
//! blocking, numbers and errors are the `Message` path's.
//!
//! # Joining an open lane
//!
//! A thread that asks for a grant while the port's lane is open (a consumer
//! arriving after its producer streamed into the lane, a second producer)
//! is granted that lane as it is, under the lock but without fencing it
//! (`State::join_open_lane`): an open lane has seen no locked operation
//! since its grant checked the port, so the port is still eligible and the
//! lane is its whole queue; only the asking task's right to the name is
//! checked. Fencing instead drained the whole backlog into the locked queue
//! and the grant refilled it, twice O(backlog).
//!
//! # Order across lanes
//!
//! A fence that drains several lanes merges their messages by a kernel-wide
//! clock (one counter, touched by producers only) before stamping them, so
//! a select over several ports still takes the oldest message first. Today
//! at most one lane is open at a time (every grant follows a fence and
//! opens only its own lane), and one lane needs no merge, so the clock is
//! *armed* only when a grant opens a lane beside another open one: until
//! then a push takes no number (0) and pays for no shared read-modify-write
//! (it was one of the five locked instructions of each streamed message,
//! and the costliest in `perf`). Armed, it stays armed. A push that took
//! no number while another lane opened is concurrent with every push to
//! that lane it did not see, so putting it first is a valid order; a push
//! ordered after any push to the new lane sees the armed flag (it is stored
//! before that lane is enabled) and takes a larger number.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::num::NonZeroU64;

use smallvec::SmallVec;

use super::hold::StateGuard;
use super::queue::MsgQueue;
use super::space::Obj;
use super::{KMessage, PortId, State};
use crate::capacity::Capacity;
use crate::lane::{Idle, Lane, ListLane, PopError, PushError, GEN_MASK, POS_LIMIT};
use crate::message::{Body, Message, SmallMessage, INLINE_BODY};
use crate::name::{Pid, PortName};
use crate::sync::{
    loom_sc_fence, thread, thread_local, Arc, AtomicBool, AtomicU64, AtomicUsize, Mutex, Ordering,
};
use crate::Kernel;

/// The largest lane a bounded port gets (its capacity, rounded down to a
/// power of two, up to this).
const MAX_BOUNDED_LANE: usize = 4096;
/// The smallest unbounded lane (two blocks of linked slots).
const MIN_LIST_LANE: usize = 2 * crate::lane::list::BLOCK_CAP as usize;
/// How many times a blocking operation yields on a full or empty lane
/// before it takes the locked path (and maybe blocks there).
#[cfg(not(loom))]
const SPIN_YIELDS: u32 = 16;
#[cfg(loom)]
const SPIN_YIELDS: u32 = 0;
/// Grants each thread keeps.
const CACHE_SIZE: usize = 8;
/// After a refused grant, how many operations on that name and direction
/// take the locked path without asking again. Asking costs a look at the
/// name, the port and its lane under the lock; while a port stays
/// ineligible (a queue longer than its lane, a waiter, a message the lane
/// cannot carry) every operation asked, a fifth of an unbounded stream's
/// samples in `perf` when unbounded lanes were fixed rings.
const DENIED_SKIPS: u32 = 64;
/// A refilled message's `order`: its original stamp, with this bit.
const REFILLED: u64 = 1 << 63;

/// A message in a lane. The body is stored flat (a length and 16 bytes,
/// zero past the length), not as a [`Body`]: the entry has no drop glue
/// and the typed receive copies it out with fixed-size moves.
pub(crate) struct LaneMsg {
    /// The kernel-wide lane clock when it was pushed, or `REFILLED | stamp`
    /// for a message moved in from the locked queue.
    order: u64,
    id: u32,
    sender: Pid,
    len: u32,
    bytes: [u8; INLINE_BODY],
}

impl LaneMsg {
    /// An entry for a body of at most [`INLINE_BODY`] bytes.
    #[inline(always)]
    fn new(order: u64, id: u32, sender: Pid, body: &[u8]) -> LaneMsg {
        let bytes = crate::message::flat_body(body);
        LaneMsg {
            order,
            id,
            sender,
            len: body.len() as u32,
            bytes,
        }
    }
}

/// The kernel-wide lane clock, on a cache line of its own, and whether it
/// is armed (module docs).
#[repr(align(128))]
pub(crate) struct Clock {
    now: AtomicU64,
    armed: AtomicBool,
}

impl Clock {
    /// A pushed message's `order`: the next tick if armed, else 0.
    #[inline(always)]
    fn tick(&self) -> u64 {
        if self.armed.load(Ordering::Relaxed) {
            self.now.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            0
        }
    }
}

/// A lane's FIFO: a ring for a bounded port, linked blocks for an
/// unbounded one (so a long stream never outgrows it). The two have one
/// shape; a pop's number is its message's sequence number (the FIFO
/// numbers pops from the port's `seqno` when the lane opens).
enum LaneFifo {
    Ring(Lane<LaneMsg>),
    List(ListLane<LaneMsg>),
}

/// Forwards each operation to the flavour (one predictable branch).
macro_rules! each_flavour {
    ($fifo:expr, $f:ident => $e:expr) => {
        match $fifo {
            LaneFifo::Ring($f) => $e,
            LaneFifo::List($f) => $e,
        }
    };
}

impl LaneFifo {
    #[inline(always)]
    fn push(&self, gen: u32, m: LaneMsg) -> Result<(), PushError<LaneMsg>> {
        each_flavour!(self, f => f.push(gen, m))
    }
    #[inline(always)]
    fn pop(&self, gen: u32) -> Result<(LaneMsg, u64), PopError> {
        each_flavour!(self, f => f.pop(gen))
    }
    fn fence(&self) -> bool {
        each_flavour!(self, f => f.fence())
    }
    fn idle(&self, gen: u32) -> Idle {
        each_flavour!(self, f => f.idle(gen))
    }
    fn drain(&self, each: impl FnMut(LaneMsg, u64)) {
        each_flavour!(self, f => f.drain(each))
    }
    fn reopen(
        &self,
        gen: u32,
        max_len: usize,
        next: u64,
        values: impl IntoIterator<Item = LaneMsg>,
    ) -> Result<(u64, u64), LaneMsg> {
        each_flavour!(self, f => f.reopen(gen, max_len, next, values))
    }
    fn capacity(&self) -> usize {
        each_flavour!(self, f => f.capacity())
    }
    /// Messages taken and put so far.
    fn positions(&self) -> (u64, u64) {
        each_flavour!(self, f => f.positions())
    }
    fn max_len(&self) -> usize {
        each_flavour!(self, f => f.max_len())
    }
    fn is_open(&self) -> bool {
        each_flavour!(self, f => f.is_open())
    }
    fn open_under(&self, gen: u32) -> bool {
        each_flavour!(self, f => f.open_under(gen))
    }
    #[inline(always)]
    fn unbounded(&self) -> bool {
        matches!(self, LaneFifo::List(_))
    }
}

/// What a grant shares with the threads that hold it.
pub(crate) struct PortLane {
    fifo: LaneFifo,
    clock: Arc<Clock>,
    sleepers: Sleepers,
}

impl PortLane {
    fn new(fifo: LaneFifo, clock: Arc<Clock>) -> PortLane {
        PortLane {
            fifo,
            clock,
            sleepers: Sleepers {
                count: AtomicUsize::new(0),
                list: Mutex::new(Vec::new()),
            },
        }
    }

    /// Fences the lane and wakes every receiver sleeping on it (they find
    /// it fenced and take the locked path). Returns whether it was open.
    fn fence(&self) -> bool {
        let was_open = self.fifo.fence();
        loom_sc_fence();
        if self.sleepers.count.load(Ordering::SeqCst) != 0 {
            self.sleepers.wake_all();
        }
        was_open
    }

    /// After a push: wakes one sleeping receiver, if any. The load is SeqCst,
    /// after the push's SeqCst reservation (module docs, "Waiting on an
    /// open lane"); in a stream nobody sleeps, and it reads a line nobody
    /// writes.
    #[inline(always)]
    fn pushed(&self) {
        loom_sc_fence();
        if self.sleepers.count.load(Ordering::SeqCst) != 0 {
            self.sleepers.wake_one();
        }
    }
}

/// One receiving thread's way to sleep on a lane and be woken.
struct Sleeper {
    thread: thread::Thread,
    /// Set (under the sleepers' mutex) by whoever removed it from the list.
    woken: AtomicBool,
}

#[cfg(not(loom))]
thread_local! {
    static SLEEPER: RefCell<Option<Arc<Sleeper>>> = const { RefCell::new(None) };
}

#[cfg(loom)]
thread_local! {
    static SLEEPER: RefCell<Option<Arc<Sleeper>>> = RefCell::new(None);
}

fn this_sleeper() -> Arc<Sleeper> {
    SLEEPER.with(|s| {
        s.borrow_mut()
            .get_or_insert_with(|| {
                Arc::new(Sleeper {
                    thread: thread::current(),
                    woken: AtomicBool::new(false),
                })
            })
            .clone()
    })
}

/// The receivers sleeping on an open lane, on a cache line of their own:
/// producers read `count` after every push, and it changes only when a
/// receiver goes to sleep or is woken.
#[repr(align(128))]
struct Sleepers {
    /// How many are in `list` (changed under its mutex, read without it).
    count: AtomicUsize,
    list: Mutex<Vec<Arc<Sleeper>>>,
}

impl Sleepers {
    /// Announces `me` (the count's SeqCst read-modify-write is what the
    /// receiver's last look orders against).
    fn register(&self, me: &Arc<Sleeper>) {
        let mut list = self.list.lock();
        me.woken.store(false, Ordering::Relaxed);
        list.push(me.clone());
        self.count.fetch_add(1, Ordering::SeqCst);
    }

    /// Takes `me` out again if nobody woke it (a last look that found work).
    fn unregister(&self, me: &Arc<Sleeper>) {
        let mut list = self.list.lock();
        if let Some(i) = list.iter().position(|s| Arc::ptr_eq(s, me)) {
            list.remove(i);
            self.count.fetch_sub(1, Ordering::SeqCst);
        }
    }

    #[cold]
    fn wake_one(&self) {
        let woken = {
            let mut list = self.list.lock();
            if list.is_empty() {
                return;
            }
            let s = list.remove(0);
            self.count.fetch_sub(1, Ordering::SeqCst);
            s.woken.store(true, Ordering::Release);
            s
        };
        woken.thread.unpark();
    }

    #[cold]
    fn wake_all(&self) {
        let woken = {
            let mut list = self.list.lock();
            let all = std::mem::take(&mut *list);
            self.count.fetch_sub(all.len(), Ordering::SeqCst);
            for s in &all {
                s.woken.store(true, Ordering::Release);
            }
            all
        };
        for s in woken {
            s.thread.unpark();
        }
    }
}

/// The kernel's record of one port's lane (under the lock).
struct Entry {
    lane: Arc<PortLane>,
    gen: u32,
    /// [`Lanes::epoch`] when the lane was last enabled.
    epoch: u64,
    /// Ring positions and the queue's counters when it was last enabled.
    head0: u64,
    tail0: u64,
    seqno0: u64,
    open: bool,
}

/// Every port's lane, kept in the kernel state.
pub(crate) struct Lanes {
    clock: Arc<Clock>,
    by_port: BTreeMap<PortId, Entry>,
    /// The open lanes (what a fence drains).
    pub(crate) open: SmallVec<[PortId; 4]>,
    /// Changes to any task's name space (see the module docs).
    pub(crate) epoch: u64,
}

impl Lanes {
    pub(crate) fn new() -> Lanes {
        Lanes {
            clock: Arc::new(Clock {
                now: AtomicU64::new(0),
                armed: AtomicBool::new(false),
            }),
            by_port: BTreeMap::new(),
            open: SmallVec::new(),
            epoch: 0,
        }
    }
    /// Fences every lane for good (they are being forgotten).
    fn retire_all(&mut self) {
        for e in self.by_port.values() {
            e.lane.fence();
        }
        self.by_port.clear();
        self.open.clear();
    }
}

/// A snapshot has no lanes (they are drained when it is taken, and the
/// threads' grants belong to the live kernel); restoring one retires the
/// kernel's lanes, so every grant fails and is asked for again.
impl Clone for Lanes {
    fn clone(&self) -> Lanes {
        Lanes::with_epoch(self.epoch)
    }
    fn clone_from(&mut self, source: &Lanes) {
        self.restored(source.epoch);
    }
}

impl Lanes {
    /// No lanes, at this epoch: the lanes of a kernel started from a
    /// snapshot taken at `epoch`.
    pub(crate) fn with_epoch(epoch: u64) -> Lanes {
        let mut lanes = Lanes::new();
        lanes.epoch = epoch;
        lanes
    }

    /// A snapshot taken at `epoch` was restored: every lane is retired and
    /// the epoch moves past both, so no grant taken before works.
    pub(crate) fn restored(&mut self, epoch: u64) {
        self.retire_all();
        self.epoch = self.epoch.max(epoch).wrapping_add(1);
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        self.retire_all();
    }
}

/// What a thread caches to use a lane.
#[derive(Clone)]
struct Grant {
    lane: Arc<PortLane>,
    gen: u32,
}

/// A kernel-wide id per kernel value (a thread's grants are keyed by it).
pub(crate) fn next_kernel_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl State {
    /// Fences every open lane and moves its messages into its port's queue
    /// (see the module docs). Called by `Kernel::lock_raw` whenever a lane
    /// is open.
    #[cold]
    pub(crate) fn fence_lanes(&mut self) {
        let open = std::mem::take(&mut self.lanes.open);
        // Fence them all before draining any: from here no push completes.
        for id in &open {
            if let Some(e) = self.lanes.by_port.get(id) {
                e.lane.fence();
            }
        }
        let State {
            lanes,
            ports,
            next_stamp,
            ..
        } = self;
        if let [id] = open[..] {
            // One lane (the usual case): straight into its queue.
            let Some(e) = lanes.by_port.get_mut(&id) else {
                return;
            };
            let Some(p) = ports.get_mut(id) else {
                e.open = false;
                e.lane.fifo.drain(|_, _| {});
                return;
            };
            settle(e, &mut p.queue);
            e.lane
                .fifo
                .drain(|m, _| queue_lane_message(&mut p.queue, next_stamp, m));
            return;
        }
        let mut all: Vec<(PortId, LaneMsg)> = Vec::new();
        for &id in &open {
            let Some(e) = lanes.by_port.get_mut(&id) else {
                continue;
            };
            match ports.get_mut(id) {
                Some(p) => settle(e, &mut p.queue),
                None => e.open = false,
            }
            e.lane.fifo.drain(|m, _| all.push((id, m)));
        }
        // Refilled messages (older than any pushed one) first, then by the
        // lane clock; a stable sort, so each lane keeps its own order.
        all.sort_by_key(|(_, m)| if m.order & REFILLED != 0 { 0 } else { m.order });
        for (id, m) in all {
            if let Some(p) = ports.get_mut(id) {
                queue_lane_message(&mut p.queue, next_stamp, m);
            }
        }
    }

    /// The lane of the port `pid`'s `name` denotes, if it has one.
    fn lane_of(&self, pid: Pid, name: PortName) -> Option<Arc<PortLane>> {
        let port = match self.task(pid)?.space.get(name).ok()? {
            Obj::Port { port, .. } => port,
            _ => return None,
        };
        self.lanes.by_port.get(&port).map(|e| e.lane.clone())
    }

    /// A grant for the lane of the port `pid`'s `name` denotes, for sending
    /// (`send`) or receiving, if that lane is open now (the lock held, not
    /// fenced): the lane as it is, no fence, drain or refill. Sound because
    /// an open lane has seen no locked operation since its grant checked
    /// the port (every locked operation fences first): the port is still
    /// eligible, its lane is its whole queue, and no name space changed
    /// (the epoch is checked all the same); only this task's right to the
    /// name is looked at, as `lane_grant` does.
    fn join_open_lane(&self, pid: Pid, name: PortName, send: bool) -> Option<Grant> {
        let task = self.task(pid)?;
        let port = match task.space.get(name).ok()? {
            Obj::Port { port, receive, .. } if send || receive => port,
            _ => return None,
        };
        let e = self.lanes.by_port.get(&port)?;
        if !e.open || e.epoch != self.lanes.epoch || !e.lane.fifo.open_under(e.gen) {
            return None;
        }
        Some(Grant {
            lane: e.lane.clone(),
            gen: e.gen,
        })
    }

    /// Opens (or keeps open) the lane of the port `pid`'s `name` denotes,
    /// for sending (`send`) or receiving, if the port's state allows it.
    /// All lanes are fenced and drained (the lock was just taken).
    fn lane_grant(&mut self, pid: Pid, name: PortName, send: bool) -> Option<Grant> {
        debug_assert!(self.lanes.open.is_empty(), "a grant follows a fence");
        let task = self.task(pid)?;
        let port = match task.space.get(name).ok()? {
            Obj::Port { port, receive, .. } if send || receive => port,
            _ => return None,
        };
        let memory_limit = self.config.queue_memory_limit;
        let p = self.ports.get(port)?;
        let q = &p.queue;
        if p.set.is_some()
            || p.link.is_some()
            || q.closed
            || !q.blocked_senders.is_empty()
            || !q.blocked_receivers.is_empty()
            || !q.send_possible.is_empty()
            || !q.handed.is_empty()
        {
            return None;
        }
        let per_message = super::queue::message_cost(INLINE_BODY, 0, false);
        let by_memory = memory_limit / per_message;
        // (capacity, generation, tail position) of the port's lane so far.
        let existing = self
            .lanes
            .by_port
            .get(&port)
            .map(|e| (e.lane.fifo.capacity(), e.gen, e.lane.fifo.positions().1));
        let want = match q.capacity {
            Capacity::Zero => return None,
            Capacity::Bounded(n) => prev_power_of_two(n.min(MAX_BOUNDED_LANE).min(by_memory)),
            // Linked blocks, up to the memory ceiling; a ceiling too low
            // for two blocks leaves the port on the locked path.
            Capacity::Unbounded if by_memory < MIN_LIST_LANE => return None,
            Capacity::Unbounded => by_memory,
        };
        // (A ring has at least two slots: a bounded(1) port has no lane.)
        if want < 2 || q.messages.len() > want {
            return None;
        }
        if !q.messages.is_empty()
            && !q
                .messages
                .iter()
                .all(|m| m.carried.is_none() && m.body.len() <= INLINE_BODY)
        {
            return None;
        }
        let unbounded = q.capacity == Capacity::Unbounded;
        if existing.is_none_or(|(cap, _, tail)| cap != want || tail >= POS_LIMIT / 2) {
            if existing.is_none() {
                // A new lane: forget those of ports that died.
                let ports = &self.ports;
                self.lanes.by_port.retain(|id, _| ports.contains(*id));
            }
            let gen = existing.map_or(0, |(_, gen, _)| gen.wrapping_add(1) & GEN_MASK);
            let fifo = if unbounded {
                LaneFifo::List(ListLane::new(want))
            } else {
                LaneFifo::Ring(Lane::new(want))
            };
            let lane = Arc::new(PortLane::new(fifo, self.lanes.clock.clone()));
            let entry = Entry {
                lane,
                gen,
                epoch: self.lanes.epoch,
                head0: 0,
                tail0: 0,
                seqno0: 0,
                open: false,
            };
            if let Some(old) = self.lanes.by_port.insert(port, entry) {
                old.lane.fence();
            }
        }
        let epoch = self.lanes.epoch;
        let e = self.lanes.by_port.get_mut(&port).expect("just made");
        if e.epoch != epoch {
            e.gen = e.gen.wrapping_add(1) & GEN_MASK;
            e.epoch = epoch;
        }
        // Number the ring's pops from the port's sequence number and move
        // what is queued into it, stamps kept, so that the lane is the whole
        // queue; then open it (`Lane::reopen` does the three in the order
        // that keeps an in-flight pop's number right).
        if !self.lanes.open.is_empty() {
            // Two lanes open at once: their messages need the clock.
            self.lanes.clock.armed.store(true, Ordering::Relaxed);
        }
        let q = &mut self.ports.get_mut(port).expect("live").queue;
        let (seqno, max_len) = (q.seqno, q.max_len);
        let queued = std::iter::from_fn(|| {
            q.pop()
                .map(|m| LaneMsg::new(REFILLED | m.stamp.get(), m.id, m.sender, &m.body))
        });
        // The positions it opened at, not read after: other threads' grants
        // of this generation may push and pop as soon as it is open.
        let Ok((head, tail)) = e.lane.fifo.reopen(e.gen, max_len, seqno, queued) else {
            unreachable!("the lane was sized for the queue");
        };
        e.head0 = head;
        e.tail0 = tail;
        e.seqno0 = seqno;
        e.open = true;
        self.lanes.open.push(port);
        Some(Grant {
            lane: e.lane.clone(),
            gen: e.gen,
        })
    }
}

/// Carries a fenced lane's counts (messages received and accepted through
/// it, its high-water mark) over to its port's queue, before its drain.
fn settle(e: &mut Entry, q: &mut MsgQueue) {
    e.open = false;
    let (head, tail) = e.lane.fifo.positions();
    q.seqno = e.seqno0.wrapping_add(head - e.head0);
    q.accepted += tail - e.tail0;
    q.max_len = q.max_len.max(e.lane.fifo.max_len());
}

/// Queues a drained lane message: a pushed one gets its arrival stamp now,
/// a refilled one keeps the stamp it had.
fn queue_lane_message(q: &mut MsgQueue, next_stamp: &mut u64, m: LaneMsg) {
    let stamp = if m.order & REFILLED != 0 {
        NonZeroU64::new(m.order & !REFILLED).unwrap_or(NonZeroU64::MIN)
    } else {
        super::take_stamp(next_stamp)
    };
    let cost = super::queue::message_cost(m.len as usize, 0, false);
    q.push_with(cost, || KMessage {
        id: m.id,
        sender: m.sender,
        stamp,
        body: Body::from_flat(m.len, m.bytes),
        carried: None,
    });
}

fn prev_power_of_two(n: usize) -> usize {
    if n == 0 {
        0
    } else {
        1 << (usize::BITS - 1 - n.leading_zeros())
    }
}

/// A cached grant, or a cached refusal.
struct Cached {
    kernel: u64,
    pid: Pid,
    name: PortName,
    send: bool,
    /// `None`: the last ask was refused.
    grant: Option<Grant>,
    /// For a refusal: the port's lane, if it has one. While another
    /// thread's grant holds it open, a refusal is not followed: every
    /// locked operation of this thread would fence it and drain its whole
    /// backlog, and the other threads' next grant refill it (with two
    /// consumers and two producers that was most of the time, at 0.02x).
    lane: Option<Arc<PortLane>>,
    /// For a refusal: operations left that take the locked path without
    /// asking again ([`DENIED_SKIPS`]).
    skips: Cell<u32>,
}

/// What a thread's cache says about a name and direction.
enum Lookup<R> {
    /// A grant, and what was done with it.
    Granted(R),
    /// A grant was refused lately: take the locked path, do not ask.
    Denied,
    /// Nothing cached, or a refusal whose skips are used up: ask.
    Ask,
}

#[cfg(not(loom))]
thread_local! {
    static GRANTS: RefCell<Vec<Cached>> = const { RefCell::new(Vec::new()) };
}

#[cfg(loom)]
thread_local! {
    static GRANTS: RefCell<Vec<Cached>> = RefCell::new(Vec::new());
}

/// What a lane attempt found.
enum Miss {
    /// No grant, or a fenced or stale lane: ask for a grant.
    Fenced,
    /// Full (send) or empty (receive).
    Busy,
    /// A receiver that waited on the lane found it fenced: it takes the
    /// general path and waits there, registered, without asking for a grant
    /// (so that whoever fenced sees it as a blocked receiver on a later look).
    Woken,
}

/// How a lane send ended.
pub(crate) enum LaneSend {
    /// Queued in the lane.
    Sent,
    /// Take the locked path; `regrant`: ask for a grant on the way (the
    /// lane was missing, fenced or stale).
    Locked { regrant: bool },
}

/// Runs `f` on this thread's cached grant for (kernel, pid, name,
/// direction), if it has one. By reference: cloning the grant's `Arc` would
/// be an atomic operation on a count that producer and consumer share (it
/// was a fifth of a stream's samples in `perf`).
#[inline(always)]
fn with_cached<R>(
    kernel: u64,
    pid: Pid,
    name: PortName,
    send: bool,
    f: impl FnOnce(&Grant) -> R,
) -> Lookup<R> {
    GRANTS.with(|cell| {
        let cache = cell.borrow();
        let Some(c) = cache
            .iter()
            .find(|c| c.kernel == kernel && c.pid == pid && c.name == name && c.send == send)
        else {
            return Lookup::Ask;
        };
        match &c.grant {
            Some(g) => Lookup::Granted(f(g)),
            None if c.lane.as_ref().is_some_and(|l| l.fifo.is_open()) => Lookup::Ask,
            None => match c.skips.get() {
                0 => Lookup::Ask,
                left => {
                    c.skips.set(left - 1);
                    Lookup::Denied
                }
            },
        }
    })
}

/// Caches a grant, or a refusal (with the port's lane, if it has one).
fn remember(
    kernel: u64,
    pid: Pid,
    name: PortName,
    send: bool,
    grant: Result<Grant, Option<Arc<PortLane>>>,
) {
    let (grant, lane) = match grant {
        Ok(g) => (Some(g), None),
        Err(lane) => (None, lane),
    };
    GRANTS.with(|cell| {
        let mut cache = cell.borrow_mut();
        let found = cache
            .iter()
            .position(|c| c.kernel == kernel && c.pid == pid && c.name == name && c.send == send);
        let skips = if grant.is_some() { 0 } else { DENIED_SKIPS };
        match found {
            Some(i) => {
                cache[i].grant = grant;
                cache[i].lane = lane;
                cache[i].skips.set(skips);
            }
            None => {
                if cache.len() >= CACHE_SIZE {
                    cache.remove(0);
                }
                cache.push(Cached {
                    kernel,
                    pid,
                    name,
                    send,
                    grant,
                    lane,
                    skips: Cell::new(skips),
                });
            }
        }
    })
}

/// Pushes through a grant, yielding up to `yields` times while a bounded
/// lane is full.
#[inline(always)]
fn push_through(g: &Grant, mut m: LaneMsg, mut yields: u32) -> Result<(), (LaneMsg, Miss)> {
    loop {
        match g.lane.fifo.push(g.gen, m) {
            Ok(()) => {
                g.lane.pushed();
                return Ok(());
            }
            Err(PushError::Full(back)) if yields > 0 && !g.lane.fifo.unbounded() => {
                yields -= 1;
                m = back;
                crate::sync::thread::yield_now();
            }
            Err(PushError::Full(back)) => return Err((back, Miss::Busy)),
            Err(PushError::Fenced(back)) => return Err((back, Miss::Fenced)),
        }
    }
}

/// Pops through a grant, yielding up to `yields` times while the lane is
/// empty: the entry and its sequence number. (The caller builds the
/// `Message` at its return: moving a built `Message` through nested
/// `Result`s and `Option`s copied it in odd-sized pieces that stalled on
/// store forwarding, a third of the stream's samples in `perf annotate`.)
#[inline(always)]
fn pop_through(g: &Grant, mut yields: u32) -> Result<(LaneMsg, u64), Miss> {
    loop {
        match g.lane.fifo.pop(g.gen) {
            // The ring numbers its pops with their sequence numbers.
            Ok((m, seqno)) => return Ok((m, seqno)),
            Err(PopError::Empty) if yields > 0 => {
                yields -= 1;
                crate::sync::thread::yield_now();
            }
            Err(PopError::Empty) => return Err(Miss::Busy),
            Err(PopError::Fenced) => return Err(Miss::Fenced),
        }
    }
}

/// Pops through a grant as [`pop_through`]; then, if `park` and the lane
/// stayed open and empty, sleeps on it until a push or a fence wakes it,
/// and pops again (module docs, "Waiting on an open lane").
#[inline(always)]
fn pop_or_park(g: &Grant, yields: u32, park: bool) -> Result<(LaneMsg, u64), Miss> {
    let mut waited = false;
    loop {
        match pop_through(g, yields) {
            Err(Miss::Busy) if park => {}
            // Fenced while it waited: wait on the locked path, registered.
            Err(Miss::Fenced) if waited => return Err(Miss::Woken),
            done => return done,
        }
        park_on(g)?;
        waited = true;
    }
}

/// Sleeps on the lane of `g` (its receiver found it empty): announces
/// itself, looks once more, and sleeps unless that look found a push or a
/// fence. `Err(Fenced)`: take the locked path.
#[cold]
fn park_on(g: &Grant) -> Result<(), Miss> {
    let me = this_sleeper();
    let sleepers = &g.lane.sleepers;
    sleepers.register(&me);
    loom_sc_fence();
    match g.lane.fifo.idle(g.gen) {
        Idle::Empty => {
            // Whoever sets the flag has taken us out of the list.
            while !me.woken.load(Ordering::Acquire) {
                thread::park();
            }
            Ok(())
        }
        Idle::Busy => {
            sleepers.unregister(&me);
            // A push between its reservation and its write: let it finish.
            thread::yield_now();
            Ok(())
        }
        Idle::Fenced => {
            sleepers.unregister(&me);
            Err(Miss::Woken)
        }
    }
}

impl Kernel {
    /// The lock for a thread whose lane operation found its lane fenced, on
    /// its way to ask for a grant: `None` (and the lock not kept) if, once
    /// the lock is taken, that lane is open again under the thread's grant:
    /// another thread's grant re-opened it meanwhile, so the caller tries
    /// the lane again instead of fencing it. Otherwise the lock, fenced as
    /// `lock_raw`'s. Without this, threads that found the lane fenced while
    /// one of them held the lock each fenced it in turn once they got the
    /// lock, each draining the whole backlog and refilling it with its
    /// grant, while the next ones found it fenced: a convoy that kept two
    /// producers and two consumers at 0.02-0.1x of crossbeam.
    ///
    /// Also `None` when the thread has no grant (or a stale one) but the
    /// port its name denotes has an open lane it may use: it is granted
    /// that lane as it is (`State::join_open_lane`), unfenced. Without this,
    /// a consumer that arrived after its producer had streamed into the lane
    /// fenced it, drained the whole backlog into the locked queue and
    /// refilled it on its grant (twice O(backlog): a fifth of an unbounded
    /// stream's samples in `perf`).
    fn lock_unless_reopened(&self, pid: Pid, name: PortName, send: bool) -> Option<StateGuard<'_>> {
        let mut st = self.state_guard();
        if !st.lanes.open.is_empty() {
            let reopened = with_cached(self.id(), pid, name, send, |g| {
                g.lane.fifo.open_under(g.gen)
            });
            if matches!(reopened, Lookup::Granted(true)) {
                return None;
            }
            if let Some(grant) = st.join_open_lane(pid, name, send) {
                drop(st);
                remember(self.id(), pid, name, send, Ok(grant));
                return None;
            }
            st.fence_lanes();
        }
        Some(st)
    }

    /// Sends `msg` from `pid` to `name` through the port's lane, if this
    /// thread holds a grant for it (its body is copied into the entry; the
    /// caller drops the message once sent). `spin`:
    /// yield a few times on a full lane first (a blocking send).
    #[inline]
    pub(crate) fn lane_send(
        &self,
        pid: Pid,
        name: PortName,
        msg: &mut Message,
        spin: bool,
    ) -> LaneSend {
        if msg.carries_rights() || msg.body.len() > INLINE_BODY {
            return LaneSend::Locked { regrant: false };
        }
        let sent = with_cached(self.id(), pid, name, true, |g| {
            let m = LaneMsg::new(g.lane.clock.tick(), msg.id, pid, &msg.body);
            match push_through(g, m, if spin { SPIN_YIELDS } else { 0 }) {
                Ok(()) => LaneSend::Sent,
                Err((_, miss)) => {
                    // The message still has its body. Full (an unbounded
                    // lane at the memory ceiling): the locked path decides,
                    // and the lane stays granted.
                    LaneSend::Locked {
                        regrant: matches!(miss, Miss::Fenced),
                    }
                }
            }
        });
        match sent {
            Lookup::Granted(LaneSend::Sent) => {
                tracing::trace!(target: "mkipc::ipc", %pid, dest = ?name, sent = "delivered", lane = true, "send");
                LaneSend::Sent
            }
            Lookup::Granted(locked) => locked,
            Lookup::Denied => LaneSend::Locked { regrant: false },
            Lookup::Ask => LaneSend::Locked { regrant: true },
        }
    }

    /// A typed send (`Ipc::send_small_with`) through the port's lane, if
    /// this thread holds a grant for it: the bytes go straight into the
    /// lane's entry, no `Message` built. On `Locked` nothing was sent and
    /// the caller builds the `Message` for the locked path (as
    /// [`lane_send`](Kernel::lane_send) would have left it).
    #[inline]
    pub(crate) fn lane_send_small(
        &self,
        pid: Pid,
        name: PortName,
        id: u32,
        body: &[u8],
        spin: bool,
    ) -> LaneSend {
        if body.len() > INLINE_BODY {
            return LaneSend::Locked { regrant: false };
        }
        let sent = with_cached(self.id(), pid, name, true, |g| {
            let m = LaneMsg::new(g.lane.clock.tick(), id, pid, body);
            match push_through(g, m, if spin { SPIN_YIELDS } else { 0 }) {
                Ok(()) => LaneSend::Sent,
                Err((_, miss)) => LaneSend::Locked {
                    regrant: matches!(miss, Miss::Fenced),
                },
            }
        });
        match sent {
            Lookup::Granted(LaneSend::Sent) => {
                tracing::trace!(target: "mkipc::ipc", %pid, dest = ?name, sent = "delivered", lane = true, "send");
                LaneSend::Sent
            }
            Lookup::Granted(locked) => locked,
            Lookup::Denied => LaneSend::Locked { regrant: false },
            Lookup::Ask => LaneSend::Locked { regrant: true },
        }
    }

    /// The locked fast path of a send that asks for a grant on the way
    /// (one lock for both): true when the message was queued.
    pub(crate) fn send_fast_granting(&self, pid: Pid, name: PortName, msg: &mut Message) -> bool {
        match self.lock_unless_reopened(pid, name, true) {
            Some(st) => self.send_fast_granting_in(st, pid, name, msg),
            // Open again under this thread's grant: push once more.
            None => {
                matches!(self.lane_send(pid, name, msg, false), LaneSend::Sent)
                    || self.send_fast_granting_in(self.lock_raw(), pid, name, msg)
            }
        }
    }

    /// The locked fast send and the grant, under `st` (fenced).
    fn send_fast_granting_in(
        &self,
        mut st: StateGuard<'_>,
        pid: Pid,
        name: PortName,
        msg: &mut Message,
    ) -> bool {
        let sent = st.try_fast_send(pid, super::Destination::Name(name), msg);
        let grant = if sent {
            st.lane_grant(pid, name, true)
        } else {
            None
        };
        let grant = grant.ok_or_else(|| st.lane_of(pid, name));
        drop(st);
        remember(self.id(), pid, name, true, grant);
        if sent {
            tracing::trace!(target: "mkipc::ipc", %pid, dest = ?name, sent = "delivered", "send");
        }
        sent
    }

    /// Receives for `pid` on its receive right `name`: through the port's
    /// lane if this thread holds a grant, else through the locked fast
    /// path, asking for a grant on the way. `None`: take the general path.
    /// `spin`: yield a few times on an empty lane first (a receive that
    /// may wait).
    /// `park`: a receive without a deadline, which may sleep on an open
    /// empty lane instead of taking the locked path to block there.
    /// `R`: what the caller wants back, a [`Message`] or (the typed
    /// receive) a [`SmallMessage`] copied straight out of the entry.
    #[inline]
    pub(crate) fn lane_receive<R: Received>(
        &self,
        pid: Pid,
        name: PortName,
        spin: bool,
        park: bool,
    ) -> Option<R> {
        let yields = if spin { SPIN_YIELDS } else { 0 };
        match with_cached(self.id(), pid, name, false, |g| {
            pop_or_park(g, yields, park)
        }) {
            Lookup::Granted(Ok((m, seqno))) => {
                tracing::trace!(target: "mkipc::ipc", %pid, source = ?name, id = m.id, lane = true, "receive");
                return Some(R::from_lane(m, name, seqno));
            }
            // Open and empty, or refused lately: the general path decides
            // (and may block).
            Lookup::Granted(Err(Miss::Busy | Miss::Woken)) | Lookup::Denied => return None,
            Lookup::Granted(Err(Miss::Fenced)) | Lookup::Ask => {}
        }
        self.lane_receive_granting(pid, name, yields, park)
    }

    /// A receive whose thread holds no open grant: the locked fast path,
    /// asking for a grant on the same lock; then the lane, if granted.
    #[inline(never)]
    fn lane_receive_granting<R: Received>(
        &self,
        pid: Pid,
        name: PortName,
        yields: u32,
        park: bool,
    ) -> Option<R> {
        let kernel = self.id();
        let mut st = match self.lock_unless_reopened(pid, name, false) {
            Some(st) => st,
            None => {
                // Open again under this thread's grant: pop once more.
                match with_cached(kernel, pid, name, false, |g| pop_or_park(g, yields, park)) {
                    Lookup::Granted(Ok((m, seqno))) => {
                        tracing::trace!(target: "mkipc::ipc", %pid, source = ?name, id = m.id, lane = true, "receive");
                        return Some(R::from_lane(m, name, seqno));
                    }
                    Lookup::Granted(Err(Miss::Busy | Miss::Woken)) | Lookup::Denied => return None,
                    Lookup::Granted(Err(Miss::Fenced)) | Lookup::Ask => self.lock_raw(),
                }
            }
        };
        let got = st.try_fast_receive(pid, super::Source::Name(name));
        // A message the lane could not have carried says this port's traffic
        // takes the locked path anyway: opening its lane would only add a
        // fence to every send.
        let lane_sized = got
            .as_ref()
            .is_none_or(|m| m.body.len() <= INLINE_BODY && !m.carries_rights());
        let grant = if lane_sized {
            st.lane_grant(pid, name, false)
        } else {
            None
        };
        let cached = grant.clone().ok_or_else(|| st.lane_of(pid, name));
        drop(st);
        remember(kernel, pid, name, false, cached);
        if let Some(m) = got {
            tracing::trace!(target: "mkipc::ipc", %pid, source = ?name, id = m.id, "receive");
            return Some(R::from_message(m));
        }
        let (m, seqno) = pop_or_park(&grant?, yields, park).ok()?;
        tracing::trace!(target: "mkipc::ipc", %pid, source = ?name, id = m.id, lane = true, "receive");
        Some(R::from_lane(m, name, seqno))
    }
}

/// What a lane receive hands its caller: a [`Message`] (`receive`), or for
/// the typed receive a [`SmallMessage`] copied out of the entry (no
/// `Message` built), or the `Message` the locked path returned when it is
/// not small.
pub(crate) trait Received: Sized {
    /// A message popped from the lane, received on `name`, numbered `seqno`.
    fn from_lane(m: LaneMsg, name: PortName, seqno: u64) -> Self;
    /// A message the locked path received.
    fn from_message(m: Message) -> Self;
}

impl Received for Message {
    #[inline(always)]
    fn from_lane(m: LaneMsg, name: PortName, seqno: u64) -> Message {
        Message::received(m.id, Body::from_flat(m.len, m.bytes), m.sender, name, seqno)
    }
    fn from_message(m: Message) -> Message {
        m
    }
}

impl Received for Result<SmallMessage, Message> {
    #[inline(always)]
    fn from_lane(m: LaneMsg, name: PortName, seqno: u64) -> Self {
        Ok(SmallMessage::from_lane(
            m.id, m.len, m.bytes, m.sender, name, seqno,
        ))
    }
    fn from_message(m: Message) -> Self {
        SmallMessage::from_message(m)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use crate::{Capacity, Ipc, Kernel, Message};

    /// (open lanes, messages in the locked queues), looked at without
    /// fencing.
    fn peek(kernel: &Kernel) -> (usize, usize) {
        let st = kernel.inner.state.lock();
        let queued = st.ports.iter().map(|(_, p)| p.queue.messages.len()).sum();
        (st.lanes.open.len(), queued)
    }

    #[test]
    fn a_plain_stream_takes_the_lane_and_a_locked_operation_drains_it() {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Bounded(8)).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        for i in 0..3 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
        }
        assert_eq!(peek(&kernel), (1, 0), "the messages are in the lane");
        // A locked operation sees them, drained into the queue.
        let status = rx.port_status(port).unwrap();
        assert_eq!((status.queue_len, status.messages_sent), (3, 3));
        assert_eq!(peek(&kernel), (0, 3));
        // The receiver's grant moves them back into the lane.
        let m = rx.receive(port).unwrap();
        assert_eq!((m.as_u64(), m.trailer().unwrap().seqno), (Some(0), 0));
        assert_eq!(peek(&kernel), (1, 0));
        let m = rx.receive(port).unwrap();
        assert_eq!((m.as_u64(), m.trailer().unwrap().seqno), (Some(1), 1));
        assert_eq!(m.sender(), Some(tx.pid()));
        // A message with a right goes behind the lane's, through the lock.
        let own = tx.port_allocate(Capacity::Unbounded).unwrap();
        let with_right = Message::from_u64(2, 9).with_right(own, crate::Disposition::MakeSend);
        tx.send(to_rx, with_right).unwrap();
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(2));
        let m = rx.receive(port).unwrap();
        assert_eq!(
            (m.id, m.rights().len(), m.trailer().unwrap().seqno),
            (2, 1, 3)
        );
        let status = rx.port_status(port).unwrap();
        assert_eq!(
            (status.queue_len, status.max_queue_len, status.seqno),
            (0, 3, 4)
        );
    }

    #[test]
    fn a_name_change_retires_older_grants() {
        let kernel = Kernel::new();
        let rx = kernel.spawn_task();
        let tx = kernel.spawn_task();
        let port = rx.port_allocate(Capacity::Unbounded).unwrap();
        rx.register("rx", port).unwrap();
        let to_rx = tx.look_up("rx").unwrap();
        for i in 0..2 {
            tx.send(to_rx, Message::from_u64(1, i)).unwrap();
        }
        tx.deallocate(to_rx).unwrap();
        // The receiver's grant opens the lane again, under a new generation.
        assert_eq!(rx.receive(port).unwrap().as_u64(), Some(0));
        assert_eq!(peek(&kernel), (1, 0));
        // The sender's cached grant is stale: its push fails, the send
        // takes the locked path and finds the name gone.
        let e = tx.send(to_rx, Message::from_u64(1, 2)).unwrap_err();
        assert_eq!(e.kind(), crate::SendErrorKind::InvalidDestination);
        assert_eq!(rx.port_status(port).unwrap().queue_len, 1);
    }
}
