//! The state shared by the scheduler loop and the running process.
//!
//! A run has one [`Core`] behind an `Rc`: the kernel, the virtual clock, the
//! ready queue, per-process bookkeeping, the trace. The scheduler loop
//! (module `driver`) owns the processes' bodies (coroutines, or stackless
//! machines, [`Body`]) and resumes one at a time; the running process reaches the
//! `Core` through its [`Proc`](crate::Proc) handle and hands control back
//! with a [`Suspend`] request. Nothing here is shared
//! between threads: only one piece of code runs at any moment, which is what
//! makes a run deterministic.
//!
//! Waits are registered in the kernel by the process's index
//! ([`Waker::Id`]): nothing is allocated per wait and nothing is called on
//! a wake. The kernel lists the ids whose waits completed, in completion
//! order; [`Core::apply_wakes`] moves those processes to the ready queue
//! (a `Send + Sync` waker and a locked queue of our own, which a
//! single-threaded run does not need, are gone).

use std::cell::{Cell, RefCell};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;

use corosensei::Coroutine;
use mkipc_kernel::runtime::Waker;
use mkipc_kernel::{Kernel, Pid, PortName};

use crate::process::{ExitStatus, ProcResult};
use crate::rng::SimRng;
use crate::scheduler::dpor::Obj;
use crate::scheduler::{DporTrail, Scheduler};
use crate::stack::{Canary, PooledStack, StackPool};
use crate::stats::ProcStats;
use crate::tables::{Interner, PidMap};
use crate::time::Nanos;
use crate::trace::{Event, EventKind, Target, TraceBuffer};
use crate::ProcId;

/// What a process asks of the scheduler loop when it gives control back.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Suspend {
    /// A scheduling point: stay runnable, let the scheduler choose.
    Yield,
    /// Blocked in the kernel until woken, or until the deadline.
    Block { deadline: Option<Nanos> },
    /// Busy or asleep until the virtual time.
    Timer { until: Nanos },
    /// Wait until that process has ended.
    Join(ProcId),
    /// A scheduling point already chose (and counted) the next process; this
    /// one is back in the ready queue.
    SwitchTo(ProcId),
}

pub(crate) type Co = Coroutine<(), Suspend, ProcResult, PooledStack>;

/// What runs a process: a coroutine (a closure on its own stack), or a
/// state machine the loop steps itself (module `stackless`). The coroutine
/// handle (64 bytes) is boxed, so that the loop's slot of every process is
/// 16 bytes, not 72: a closure already pays a stack page, a stackless
/// process should not pay for a handle it does not have.
pub(crate) enum Body {
    Co(Box<Co>),
    Machine(Box<dyn Stackless>),
}

/// A body the loop resumes without a coroutine: a stepped machine (module
/// `stackless`) or a polled future (module `async_proc`).
pub(crate) trait Stackless {
    /// Runs until the process hands over (with the [`Suspend`] request a
    /// coroutine would have yielded) or ends.
    fn resume(&mut self) -> Resumed;
}

/// What a process's body did when the loop resumed it: suspended with a
/// request, or ended.
pub(crate) type Resumed = corosensei::CoroutineResult<Suspend, ProcResult>;

/// The result of a scheduling point taken where the process is (not in
/// the loop): see [`Core::point_in_place`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Point {
    /// This process goes on (nobody else was ready, or it was picked again).
    Continue,
    /// That process was picked (and the step counted); this one is back in
    /// the ready queue: hand over with [`Suspend::SwitchTo`].
    Switch(ProcId),
    /// The loop must take this point (a spawn or kill pending, per-step
    /// faults or invariants): hand over with [`Suspend::Yield`].
    ToLoop,
}

/// Where a process is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum PState {
    Ready,
    Running,
    Blocked,
    Timer,
    Joining(ProcId),
    Done,
}

/// Bookkeeping for one simulated process.
pub(crate) struct ProcMeta {
    /// The name given at spawn, shared with every process and run that
    /// gave the same one (`Core::names`).
    pub name: Rc<str>,
    pub pid: Pid,
    pub state: PState,
    /// Bumped whenever a pending timer of this process becomes stale.
    pub epoch: u64,
    pub timed_out: bool,
    pub killed: bool,
    /// What it is blocked on (`true` = sending), while blocked in the kernel.
    pub blocked_on: Option<(bool, Target)>,
    /// When its current kernel wait began (virtual ns), while it waits: a
    /// process stuck at the end is credited the wait up to the end.
    pub blocked_since: Option<u64>,
    /// The sender of the last message it received: a deadlock report takes
    /// it as a hint that the sender waits on this process (a server answers
    /// the client whose request it took last).
    pub last_from: Option<Pid>,
    /// Its counters, boxed at the first count ([`ProcMeta::stats_mut`]):
    /// an idle process has counted nothing yet, and a million of them
    /// should not hold 88 MB of zeros.
    counters: Option<Box<ProcStats>>,
    /// How it ended, once it has (boxed: 8 bytes, not 32, while it runs).
    pub status: Option<Box<ExitStatus>>,
    /// The processes waiting for it to end, boxed at the first.
    // One pointer inline (a `Vec` is three words): the box is the point.
    #[allow(clippy::box_collection)]
    pub joiners: Option<Box<Vec<ProcId>>>,
    /// Declared a server ([`Sim::server`](crate::Sim::server)): may be left
    /// waiting at a receive when everyone else has finished.
    pub server: bool,
    /// Declared to end with an error ([`Sim::expect_error`](crate::Sim::expect_error)).
    pub expect_error: bool,
}

impl ProcMeta {
    /// A process that has not run yet: ready, or (`status` given) already ended.
    pub fn new(name: Rc<str>, pid: Pid, status: Option<ExitStatus>) -> ProcMeta {
        ProcMeta {
            name,
            pid,
            state: if status.is_some() {
                PState::Done
            } else {
                PState::Ready
            },
            epoch: 0,
            timed_out: false,
            killed: false,
            blocked_on: None,
            blocked_since: None,
            last_from: None,
            counters: None,
            status: status.map(Box::new),
            joiners: None,
            server: false,
            expect_error: false,
        }
    }

    /// Its counters so far (all zero until it counted something).
    pub fn stats(&self) -> ProcStats {
        self.counters.as_deref().copied().unwrap_or_default()
    }

    /// Its counters, to change: made at the first change.
    #[inline]
    pub fn stats_mut(&mut self) -> &mut ProcStats {
        self.counters.get_or_insert_with(Box::default)
    }

    /// Credits `waited` nanoseconds of blocking, if any (a wait that took
    /// no virtual time makes no counters).
    #[inline]
    pub fn add_blocked(&mut self, waited: u64) {
        if waited > 0 {
            let st = self.stats_mut();
            st.blocked = st
                .blocked
                .saturating_add(std::time::Duration::from_nanos(waited));
        }
    }

    /// How it ended, if it has.
    pub fn status(&self) -> Option<ExitStatus> {
        self.status.as_deref().cloned()
    }
}

/// A port or mailbox whose occupancy the report follows.
pub(crate) struct Watched {
    pub label: Rc<str>,
    pub holder: Pid,
    pub name: PortName,
    pub is_mailbox: bool,
    pub capacity: Option<mkipc_kernel::Capacity>,
    pub len: usize,
    pub max_len: usize,
    pub messages: u64,
    pub drops: u64,
    /// Integral of the queue length over virtual time (messages x ns).
    pub area: u128,
}

/// A pending timer: `(when, sequence, process, epoch)`, earliest first.
pub(crate) type TimerEntry = Reverse<(Nanos, u64, u32, u64)>;

/// Everything one run shares (module docs).
pub(crate) struct Core {
    pub kernel: Kernel,
    pub init: Pid,
    pub clock: Cell<Nanos>,
    pub step: Cell<u64>,
    pub max_steps: u64,
    pub fast_path: Cell<bool>,
    pub procs: RefCell<Vec<ProcMeta>>,
    pub ready: RefCell<VecDeque<ProcId>>,
    pub timers: RefCell<BinaryHeap<TimerEntry>>,
    pub timer_seq: Cell<u64>,
    /// Coroutines created since the loop last looked (spawns from inside processes).
    pub spawned: RefCell<Vec<(ProcId, Body, Option<Canary>)>>,
    /// The process chosen at each real choice point: the schedule.
    pub choices: RefCell<Vec<ProcId>>,
    /// Scratch for the ids the kernel reports woken ([`Core::apply_wakes`]).
    pub woken: RefCell<Vec<u64>>,
    pub kill_requests: RefCell<Vec<ProcId>>,
    pub tracing: bool,
    /// The events so far, bounded by `SimBuilder::trace_limit`.
    pub trace: RefCell<TraceBuffer>,
    /// Process names and labels, one copy of each, kept across resets.
    pub names: RefCell<Interner>,
    /// The label of each labelled name, by pid and name.
    pub labels: RefCell<PidMap<Rc<str>>>,
    /// The label of each port made with `Sim::port`, by kernel queue id
    /// (the id outlives the setup task's name): `queue_stats` shows it.
    pub port_labels: RefCell<Vec<(u64, Rc<str>)>>,
    pub watched: RefCell<Vec<Watched>>,
    /// Which watched queue a name denotes: `(pid, name) -> index into
    /// watched`, by identity (recorded where the sim saw the right made or
    /// handed over), never by label text. Deadlock reports use it to find
    /// who serves a call's destination.
    pub queue_of: RefCell<PidMap<usize>>,
    /// The watched queue a registered service's right denotes, by service name.
    pub services: RefCell<BTreeMap<String, usize>>,
    /// The watched queue of each mailbox, by its kernel name (the kernel's
    /// key for a live mailbox).
    pub mailboxes: RefCell<BTreeMap<String, usize>>,
    pub world_rng: RefCell<SimRng>,
    pub sched: RefCell<Box<dyn Scheduler>>,
    pub sched_rng: RefCell<SimRng>,
    pub stacks: Rc<StackPool>,
    /// Under DPOR exploration: where each step's footprint is recorded.
    pub dpor: Option<DporTrail>,
}

impl Core {
    pub fn now(&self) -> Nanos {
        self.clock.get()
    }

    /// Records an event (when tracing).
    #[inline(always)]
    pub fn emit(&self, proc: ProcId, kind: EventKind) {
        if self.tracing {
            self.record(proc, kind);
        }
    }

    fn record(&self, proc: ProcId, kind: EventKind) {
        self.trace.borrow_mut().push(Event {
            step: self.step.get(),
            time: std::time::Duration::from_nanos(self.clock.get()),
            proc,
            kind,
        });
    }

    /// How the kernel wakes process `id`: by its index, nothing allocated.
    pub fn new_waker(&self, id: ProcId) -> Waker {
        Waker::Id(u64::from(id.0))
    }

    #[inline]
    pub fn is_killed(&self, id: ProcId) -> bool {
        self.procs.borrow()[id.0 as usize].killed
    }

    pub fn label_of(&self, pid: Pid, name: PortName) -> Option<Rc<str>> {
        self.labels.borrow().get(pid, name).cloned()
    }

    pub fn has_label(&self, pid: Pid, name: PortName) -> bool {
        self.labels.borrow().get(pid, name).is_some()
    }

    /// The shared copy of a name or label (`Core::names`).
    pub fn intern(&self, text: &str) -> Rc<str> {
        self.names.borrow_mut().get(text)
    }

    pub fn set_label(&self, pid: Pid, name: PortName, label: Rc<str>) {
        self.labels.borrow_mut().insert(pid, name, label);
    }

    /// Whether a scheduling point may make the loop's decision itself: the
    /// loop would do nothing at this step but wake processes and choose
    /// (no spawn or kill pending, no per-step faults or invariants).
    #[inline]
    pub fn may_choose_in_place(&self) -> bool {
        self.fast_path.get()
            && self.step.get() < self.max_steps
            && self.spawned.borrow().is_empty()
            && self.kill_requests.borrow().is_empty()
    }

    /// A scheduling point of the running process `id`, taken where it is
    /// when the loop would only wake processes and choose at this step: it
    /// goes to the back of the ready queue, woken processes are moved
    /// behind it, the scheduler picks. The order of operations is the
    /// loop's, so the run is the same either way
    /// (`tests/determinism.rs::fast_path_and_slow_path_agree`).
    #[inline]
    pub fn point_in_place(&self, id: ProcId) -> Point {
        if !self.may_choose_in_place() {
            return Point::ToLoop;
        }
        if !self.kernel.has_woken() && self.ready.borrow().is_empty() {
            // Nobody else could run: the loop would pick this process again.
            self.step.set(self.step.get() + 1);
            if let Some(d) = &self.dpor {
                d.begin_alone(id);
            }
            return Point::Continue;
        }
        // This process goes to the back of the ready queue (its state is
        // set below, once it is known whether it stays the running one:
        // neither waking nor choosing reads the states of ready processes).
        self.ready.borrow_mut().push_back(id);
        self.apply_wakes();
        let next = self.pick();
        self.step.set(self.step.get() + 1);
        if next == id {
            return Point::Continue;
        }
        let mut procs = self.procs.borrow_mut();
        procs[id.0 as usize].state = PState::Ready;
        procs[next.0 as usize].state = PState::Running;
        Point::Switch(next)
    }

    /// Moves processes whose kernel waits completed to the ready queue, in
    /// wake order.
    pub fn apply_wakes(&self) {
        if !self.kernel.has_woken() {
            return;
        }
        let mut woken = self.woken.borrow_mut();
        self.kernel.take_woken(&mut woken);
        let mut procs = self.procs.borrow_mut();
        let mut ready = self.ready.borrow_mut();
        for id in woken.drain(..) {
            let id = id as u32; // an index `new_waker` gave
            if let Some(d) = &self.dpor {
                // The step that just ended completed `id`'s wait.
                d.woke(id);
            }
            let m = &mut procs[id as usize];
            if m.state == PState::Blocked {
                m.state = PState::Ready;
                m.epoch += 1;
                ready.push_back(ProcId(id));
            }
        }
    }

    /// The current step touches `obj` (recorded under DPOR exploration).
    #[inline]
    pub fn touch(&self, obj: Obj, write: bool) {
        if let Some(d) = &self.dpor {
            d.touch(obj, write);
        }
    }

    /// The current step touches what `name` denotes in `pid`'s space (a
    /// port set: several queues, so global). An invalid or dead name only
    /// reads the task's own space: nothing.
    #[inline]
    pub fn touch_name(&self, pid: Pid, name: PortName, write: bool) {
        if let Some(d) = &self.dpor {
            match self.kernel.object_key(pid, name) {
                Some((1, _)) => d.multi_queue(),
                Some((kind, id)) => d.touch(Obj::Kernel(kind, id), write),
                None => {}
            }
        }
    }

    /// The current step is dependent with every other (under DPOR).
    #[inline]
    pub fn touch_global(&self) {
        if let Some(d) = &self.dpor {
            d.touch_global();
        }
    }

    /// Whether sends must record the global arrival order (DPOR, once the
    /// model was seen receiving from several queues at once).
    #[inline]
    pub fn stamps(&self) -> bool {
        self.dpor.as_ref().is_some_and(DporTrail::stamps)
    }

    /// Takes the next process off the (non-empty) ready queue, asking the
    /// scheduler when there is a choice and recording the choice.
    pub fn pick(&self) -> ProcId {
        let mut ready = self.ready.borrow_mut();
        let idx = if ready.len() > 1 {
            let i = self
                .sched
                .borrow_mut()
                .choose(&ready, &mut self.sched_rng.borrow_mut());
            let i = i.min(ready.len() - 1);
            self.choices.borrow_mut().push(ready[i]);
            i
        } else {
            0
        };
        if let Some(d) = &self.dpor {
            d.begin(ready[idx], &ready);
        }
        if idx == 0 {
            ready.pop_front()
        } else {
            ready.swap_remove_back(idx)
        }
        .expect("ready is not empty")
    }

    /// Arms a timer for `id` at `when`; returns nothing, the loop fires it.
    pub fn add_timer(&self, id: ProcId, when: Nanos) {
        let seq = self.timer_seq.get();
        self.timer_seq.set(seq + 1);
        let epoch = self.procs.borrow()[id.0 as usize].epoch;
        self.timers
            .borrow_mut()
            .push(Reverse((when, seq, id.0, epoch)));
    }

    /// The watched queue `name` denotes in `pid`'s space, if the sim knows.
    pub fn queue_of(&self, pid: Pid, name: PortName) -> Option<usize> {
        self.queue_of.borrow().get(pid, name).copied()
    }

    /// Records that `name` in `pid`'s space denotes watched queue `queue`.
    pub fn set_queue_of(&self, pid: Pid, name: PortName, queue: usize) {
        self.queue_of.borrow_mut().insert(pid, name, queue);
    }

    /// Adds a queue to the report, unless it is already there; returns its
    /// index in `watched`.
    /// The kernel's queue statistics, ports made by `Sim::port` labelled.
    pub fn queue_stats(&self) -> Vec<mkipc_kernel::introspect::QueueStats> {
        let labels = self.port_labels.borrow();
        let mut stats = self.kernel.queue_stats();
        for q in stats.iter_mut().filter(|q| q.kind == "port") {
            if let Some((_, label)) = labels.iter().find(|(id, _)| *id == q.queue_id) {
                q.label = label.to_string();
            }
        }
        stats
    }

    pub fn watch(&self, label: Rc<str>, holder: Pid, name: PortName, is_mailbox: bool) -> usize {
        let mut watched = self.watched.borrow_mut();
        if let Some(i) = watched
            .iter()
            .position(|w| w.holder == holder && w.name == name)
        {
            return i;
        }
        let index = watched.len();
        self.set_queue_of(holder, name, index);
        watched.push(Watched {
            label,
            holder,
            name,
            is_mailbox,
            capacity: None,
            len: 0,
            max_len: 0,
            messages: 0,
            drops: 0,
            area: 0,
        });
        index
    }

    /// Refreshes the occupancy figures of watched queues held by a live task.
    pub fn sample_watched(&self) {
        let mut watched = self.watched.borrow_mut();
        for w in watched.iter_mut() {
            if let Ok(s) = self.kernel.port_status(w.holder, w.name) {
                w.len = s.queue_len;
                w.max_len = w.max_len.max(s.max_queue_len).max(s.queue_len);
                w.messages = s.messages_sent;
                w.drops = s.messages_dropped;
                w.capacity = Some(s.capacity);
            } else {
                // The holder is gone (or moved the right on): nothing queued
                // that we can see; counters keep their last values.
                w.len = 0;
            }
        }
    }

    /// Moves the clock to `to`, accumulating queue-length x time.
    pub fn advance_clock(&self, to: Nanos) {
        let now = self.clock.get();
        if to <= now {
            return;
        }
        self.sample_watched();
        for w in self.watched.borrow_mut().iter_mut() {
            w.area += w.len as u128 * (to - now) as u128;
        }
        self.clock.set(to);
    }
}
