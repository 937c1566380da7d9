//! [`Proc`]: the handle a simulated process's code runs with.
//!
//! A process is an ordinary closure `FnOnce(&Proc) -> ProcResult`. The
//! handle implements the kernel's [`Ipc`] trait — the same API the
//! thread-backed [`Task`](mkipc_kernel::Task) and the OS backend offer — so one piece of user code
//! runs on every backend. On top of IPC it offers what a simulation needs:
//! [`work`](Proc::work) and [`sleep`](Proc::sleep) in virtual time,
//! [`now`](Proc::now), [`yield_now`](Proc::yield_now), [`spawn`](Proc::spawn)
//! with inherited rights, [`join`](Proc::join) and [`kill`](Proc::kill).
//!
//! Under the simulator every IPC operation starts with a scheduling point
//! (the scheduler may run someone else first) and is recorded in the trace as
//! it starts, blocks and completes. In threaded mode the same handle forwards
//! to a kernel [`Task`](mkipc_kernel::Task) on an OS thread and records nothing.
//!
//! ```
//! use mkipc_sim::{ms, Sim};
//! use mkipc_kernel::{Capacity, Ipc, Message};
//!
//! let mut sim = Sim::builder().seed(1).build();
//! sim.spawn("worker", |p| {
//!     let port = p.port_allocate(Capacity::Bounded(1))?;
//!     p.send(port, Message::from_u64(1, 7))?;
//!     p.work(ms(5));
//!     assert_eq!(p.receive(port)?.as_u64(), Some(7));
//!     assert_eq!(p.now(), ms(5));
//!     Ok(())
//! });
//! let report = sim.run().unwrap();
//! assert!(report.procs[0].status.is_success());
//! ```

use std::cell::{Cell, RefCell};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

use corosensei::Yielder;
use mkipc_kernel::ipc::PortStatus;
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::runtime::{Blocker, WaitOutcome, WaitToken, Waker};
use mkipc_kernel::{
    CallError, Capacity, CarriedRight, Disposition, Ipc, IpcError, Kernel, MailboxConfig, Message,
    NotifyKind, OnFull, Pid, PortName, ReceiveError, SendError, Sent, Wait,
};

use self::thread::ThreadCtx;
pub use crate::exit::{ExitStatus, ProcError, ProcResult};
use crate::runtime::{Core, Point, Suspend};
use crate::scheduler::dpor::{Footprint, Obj};
use crate::time::{to_nanos, Dist};
use crate::trace::{EventKind, SendOutcome, Target};
use crate::ProcId;

mod plain_ops;
pub(crate) mod spawn;
pub(crate) mod thread;

/// The simulated backend of a [`Proc`]: a [`Blocker`] that switches coroutines.
pub(crate) struct SimCtx {
    pub core: Rc<Core>,
    pub id: ProcId,
    pub pid: Pid,
    /// The coroutine's yielder. A raw pointer so that [`Proc`] carries no
    /// lifetime (the conformance suite needs a `'static` process type); see
    /// `suspend` for why it is always valid. Null for a stackless process
    /// (module `stackless`), which has no coroutine: it never suspends.
    pub yielder: *const Yielder<(), Suspend>,
    /// A stackless process's scheduling points not yet taken ([`SimCtx::point`]).
    pub owed_points: Cell<u32>,
    /// A stackless process's hand-over the step must end with, before its
    /// `owed_points` are taken.
    pub owed_switch: Cell<Option<Suspend>>,
    /// A stackless process's next scheduling point was taken before its
    /// operation ([`Ctx::ipc_point`](crate::machine::Ctx::ipc_point)).
    pub granted: Cell<bool>,
    /// The operation in progress, for the "blocked" event: (sending, target).
    pub op: Cell<Option<(bool, Target)>>,
    /// Under DPOR: what the operation in progress touches, touched again by
    /// the step that resumes it after a block (its completion, by a peer or
    /// a timeout, is part of that step too). Boxed when first written, so
    /// a process that never runs under DPOR pays 16 bytes for it.
    pub redo: RefCell<Option<Box<Footprint>>>,
}

impl SimCtx {
    /// How the kernel wakes this process: by its index ([`Core::new_waker`]).
    #[inline]
    pub fn waker(&self) -> Waker {
        self.core.new_waker(self.id)
    }

    /// What the operation in progress touches, to change (module docs of
    /// `scheduler::dpor`): made on first use.
    fn redo_mut(&self) -> std::cell::RefMut<'_, Footprint> {
        std::cell::RefMut::map(self.redo.borrow_mut(), |r| {
            &mut **r.get_or_insert_with(Box::default)
        })
    }

    fn suspend(&self, s: Suspend) {
        // SAFETY: a `SimCtx` is created inside its coroutine's body from the
        // `&Yielder` that body received, and lives only inside a `Proc` that
        // the body owns and lends to user code by reference. `Proc` is neither
        // `Clone`, `Send` nor `Sync` (it holds an `Rc`), and user code only
        // ever sees `&Proc` for the duration of the body, so every call here
        // happens on the coroutine's own stack while the yielder is alive.
        unsafe { (*self.yielder).suspend(s) };
    }

    /// Whether this process may switch to the loop: not while it is being
    /// killed (its coroutine is unwinding for good), nor while a panic
    /// unwinds through it (the panic must reach the loop first).
    pub fn may_suspend(&self) -> bool {
        !self.yielder.is_null() && !self.core.is_killed(self.id) && !std::thread::panicking()
    }

    /// A scheduling point.
    ///
    /// When the loop would only wake processes and choose at this step, the
    /// process does exactly that itself ([`Core::point_in_place`]) and
    /// switches only if someone else was picked.
    ///
    /// A stackless process (module `stackless`) cannot switch in the middle
    /// of a step: a point it cannot take in place is owed, and taken when
    /// the step ends ([`SimCtx::take_owed`]).
    pub fn point(&self) {
        if self.yielder.is_null() {
            if self.granted.replace(false) {
                return; // taken before the operation (`Ctx::ipc_point`)
            }
            self.owed_points.set(self.owed_points.get() + 1);
            let _ = self.take_owed();
            return;
        }
        if !self.may_suspend() {
            return;
        }
        match self.core.point_in_place(self.id) {
            Point::Continue => {}
            Point::ToLoop => self.suspend(Suspend::Yield),
            Point::Switch(next) => self.suspend(Suspend::SwitchTo(next)),
        }
    }

    /// A stackless process's owed scheduling points, taken in place while
    /// they can be: `true` when none is left. Otherwise the hand-over the
    /// step must end with is in `owed_switch` (and the points after it in
    /// `owed_points`).
    pub fn take_owed(&self) -> bool {
        if self.owed_switch.get().is_some() {
            return false;
        }
        while self.owed_points.get() > 0 {
            self.owed_points.set(self.owed_points.get() - 1);
            match self.core.point_in_place(self.id) {
                Point::Continue => {}
                Point::ToLoop => {
                    self.owed_switch.set(Some(Suspend::Yield));
                    return false;
                }
                Point::Switch(next) => {
                    self.owed_switch.set(Some(Suspend::SwitchTo(next)));
                    return false;
                }
            }
        }
        true
    }

    /// A send ended: the figures and the "send completed" event.
    #[inline]
    pub(crate) fn sent_done(&self, to: Target, msg_id: u32, r: &Result<Sent, SendError>) {
        self.op.set(None);
        let outcome = match r {
            Ok(Sent::Delivered) => SendOutcome::Delivered,
            Ok(Sent::Dropped) => SendOutcome::Dropped,
            Ok(Sent::Displaced) => SendOutcome::Displaced,
            Err(e) => SendOutcome::Failed(e.kind()),
        };
        {
            let mut procs = self.core.procs.borrow_mut();
            let st = procs[self.id.0 as usize].stats_mut();
            match outcome {
                SendOutcome::Delivered => st.sent += 1,
                SendOutcome::Dropped | SendOutcome::Displaced => {
                    st.sent += 1;
                    st.drops += 1;
                }
                SendOutcome::Failed(_) => st.send_failures += 1,
            }
        }
        self.core.emit(
            self.id,
            EventKind::SendCompleted {
                to,
                msg_id,
                outcome,
            },
        );
    }

    /// A receive ended: the figures and the "received" (or "receive
    /// failed") event.
    #[inline]
    pub(crate) fn received_done(&self, from: Target, r: Result<&Message, ReceiveError>) {
        self.op.set(None);
        match r {
            Ok(m) => {
                {
                    let mut procs = self.core.procs.borrow_mut();
                    let me = &mut procs[self.id.0 as usize];
                    me.stats_mut().received += 1;
                    me.last_from = m.sender();
                }
                if self.core.tracing {
                    let rights = m.rights().len() + usize::from(m.reply().is_some());
                    let sender = m.sender().map(|p| p.0);
                    self.core.emit(
                        self.id,
                        EventKind::Received {
                            from,
                            msg_id: m.id,
                            sender,
                            rights,
                        },
                    );
                }
            }
            Err(e) => {
                self.core.procs.borrow_mut()[self.id.0 as usize]
                    .stats_mut()
                    .receive_failures += 1;
                self.core
                    .emit(self.id, EventKind::ReceiveFailed { from, error: e });
            }
        }
    }

    /// Under DPOR: the step resuming a blocked operation touches what the
    /// operation touches.
    fn redo_touches(&self) {
        if let Some(d) = &self.core.dpor {
            let redo = self.redo.borrow();
            let Some(redo) = redo.as_deref() else {
                return;
            };
            if redo.global {
                d.touch_global();
            }
            for &(obj, _) in &redo.access {
                d.touch(obj, true);
            }
        }
    }

    fn wait_until(&self, until: u64) {
        if !self.may_suspend() {
            return;
        }
        self.suspend(Suspend::Timer { until });
    }
}

impl Blocker for SimCtx {
    fn kernel(&self) -> &Kernel {
        &self.core.kernel
    }
    fn task_pid(&self) -> Pid {
        self.pid
    }
    fn waker(&self) -> Waker {
        self.core.new_waker(self.id)
    }
    fn block(&self, token: WaitToken, timeout: Option<Duration>) -> WaitOutcome {
        let core = &self.core;
        if !self.may_suspend() {
            return core.kernel.wait_cancel(self.pid, token);
        }
        let since = core.now();
        let deadline = timeout.map(|d| since.saturating_add(to_nanos(d)));
        let op = self.op.get();
        if let Some((sending, target)) = op {
            let kind = if sending {
                EventKind::SendBlocked { to: target }
            } else {
                EventKind::ReceiveBlocked { from: target }
            };
            core.emit(self.id, kind);
        }
        {
            let mut procs = core.procs.borrow_mut();
            let meta = &mut procs[self.id.0 as usize];
            meta.blocked_on = op;
            meta.blocked_since = Some(since);
        }
        let outcome = loop {
            self.suspend(Suspend::Block { deadline });
            if let Some(outcome) = core.kernel.wait_take(self.pid, token) {
                // Completed by a peer's step, which wrote this wait: the
                // resuming step only reads the outcome.
                core.touch(Obj::Wait(self.id.0), false);
                break outcome;
            }
            // A timeout or a kill: cancelling touches the queue.
            self.redo_touches();
            let timed_out =
                std::mem::take(&mut core.procs.borrow_mut()[self.id.0 as usize].timed_out);
            if timed_out || core.is_killed(self.id) {
                if timed_out {
                    core.emit(self.id, EventKind::TimedOut);
                }
                break core.kernel.wait_cancel(self.pid, token);
            }
        };
        let waited = core.now().saturating_sub(since);
        let mut procs = core.procs.borrow_mut();
        let meta = &mut procs[self.id.0 as usize];
        meta.blocked_on = None;
        meta.blocked_since = None;
        meta.add_blocked(waited);
        outcome
    }
}

pub(crate) enum Backend {
    Sim(SimCtx),
    /// Boxed: inline, the threaded context made every simulated process's
    /// handle 16 bytes larger (a million idle processes hold one each).
    Thread(Box<ThreadCtx>),
}

/// The handle a process runs with (see the [module docs](crate::process)).
pub struct Proc {
    pub(crate) backend: Backend,
    pub(crate) id: ProcId,
    /// Boxed slice, not a `Vec`: it never grows, and most processes
    /// inherit nothing (8 bytes less per process).
    pub(crate) inherited: Box<[CarriedRight]>,
}

impl fmt::Debug for Proc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Proc")
            .field("id", &self.id)
            .field("pid", &self.pid())
            .finish()
    }
}

/// Runs `$e` with `$i` bound to the backend's [`Ipc`] implementation,
/// statically dispatched (so the kernel call can be inlined into the wrapper).
macro_rules! on_backend {
    ($self:ident, $i:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sim($i) => $e,
            Backend::Thread(t) => {
                let $i = &t.task;
                $e
            }
        }
    };
}

impl Proc {
    fn sim(&self) -> Option<&SimCtx> {
        match &self.backend {
            Backend::Sim(s) => Some(s),
            Backend::Thread(_) => None,
        }
    }

    #[inline]
    fn point(&self) {
        if let Some(s) = self.sim() {
            s.point();
        }
    }

    #[inline]
    fn emit(&self, kind: EventKind) {
        if let Some(s) = self.sim() {
            s.core.emit(self.id, kind);
        }
    }

    #[inline]
    pub(crate) fn started(&self, sending: bool, target: Target, kind: EventKind) {
        if let Some(s) = self.sim() {
            s.op.set(Some((sending, target)));
            s.core.emit(self.id, kind);
        }
    }

    #[inline]
    pub(crate) fn sent_done(&self, to: Target, msg_id: u32, r: &Result<Sent, SendError>) {
        if let Some(s) = self.sim() {
            s.sent_done(to, msg_id, r);
        }
    }

    #[inline]
    pub(crate) fn received_done(&self, from: Target, r: Result<&Message, ReceiveError>) {
        if let Some(s) = self.sim() {
            s.received_done(from, r);
        }
    }

    /// Under DPOR: the core, if this run records footprints.
    #[inline]
    fn dpor_core(&self) -> Option<&SimCtx> {
        self.sim().filter(|s| s.core.dpor.is_some())
    }

    /// Under DPOR: the operation starting now is dependent with every step.
    #[inline]
    fn touch_global(&self) {
        if let Some(s) = self.dpor_core() {
            s.core.touch_global();
            s.redo_mut().set_global();
        }
    }

    /// Under DPOR: the operation starting now may block and touches (writes)
    /// the queue `name` denotes (and, for a send once the run orders
    /// messages by arrival, the arrival order).
    #[inline]
    fn touch_blocking(&self, name: PortName, send: bool) {
        if let Some(s) = self.dpor_core() {
            let core = &s.core;
            let mut redo = s.redo_mut();
            match core.kernel.object_key(s.pid, name) {
                Some((1, _)) => {
                    if let Some(d) = &core.dpor {
                        d.multi_queue();
                    }
                    redo.set_global();
                }
                Some((kind, id)) => {
                    core.touch(Obj::Kernel(kind, id), true);
                    redo.touch(Obj::Kernel(kind, id), true);
                }
                None => {}
            }
            if send && core.stamps() {
                core.touch(Obj::Stamp, true);
                redo.touch(Obj::Stamp, true);
            }
        }
    }

    /// Under DPOR: the operation starting now receives from several queues
    /// at once, choosing by arrival order: global, and from now on sends
    /// record the arrival order.
    fn touch_multi_queue(&self) {
        if let Some(s) = self.dpor_core() {
            if let Some(d) = &s.core.dpor {
                d.multi_queue();
            }
            s.redo_mut().set_global();
        }
    }

    /// Under DPOR: a non-blocking operation on `name` ended; it wrote the
    /// queue if it succeeded, only read it if it failed.
    #[inline]
    fn touch_nonblocking(&self, name: PortName, ok: bool, send: bool) {
        if let Some(s) = self.dpor_core() {
            s.core.touch_name(s.pid, name, ok);
            if send && ok && s.core.stamps() {
                s.core.touch(Obj::Stamp, true);
            }
        }
    }

    /// Under DPOR: the operation ended; a received message that carried
    /// rights changed name spaces and right counts: global.
    #[inline]
    fn touch_end(&self, received: Option<&Message>) {
        if let Some(s) = self.dpor_core() {
            if received.is_some_and(|m| !m.rights().is_empty() || m.reply().is_some()) {
                s.core.touch_global();
            }
            if let Some(redo) = s.redo.borrow_mut().as_deref_mut() {
                *redo = Footprint::default();
            }
        }
    }

    fn op_done<T>(&self, op: &'static str, r: &Result<T, IpcError>) {
        self.emit(EventKind::Op { op, ok: r.is_ok() });
    }

    fn auto_label(&self, r: &Result<PortName, IpcError>, label: &str) {
        if let (Some(s), Ok(name)) = (self.sim(), r) {
            if !s.core.has_label(s.pid, *name) {
                s.core.set_label(s.pid, *name, s.core.intern(label));
            }
        }
    }

    // ----- the simulation API -------------------------------------------------

    /// This process's id in the run (spawn order, starting at 0).
    pub fn id(&self) -> ProcId {
        self.id
    }

    /// The name given at spawn.
    pub fn name(&self) -> String {
        match &self.backend {
            Backend::Sim(s) => s.core.procs.borrow()[self.id.0 as usize].name.to_string(),
            Backend::Thread(t) => t.name.clone(),
        }
    }

    /// The rights this process inherited at spawn, under its own names, in
    /// the order they were given.
    pub fn inherited(&self) -> &[CarriedRight] {
        &self.inherited
    }

    /// The name of the `i`-th inherited right.
    ///
    /// # Panics
    /// If fewer than `i + 1` rights were inherited.
    pub fn right(&self, i: usize) -> PortName {
        self.inherited[i].name
    }

    /// Time since the start of the run: virtual under the simulator, wall
    /// clock in threaded mode.
    pub fn now(&self) -> Duration {
        match &self.backend {
            Backend::Sim(s) => Duration::from_nanos(s.core.now()),
            Backend::Thread(t) => t.start.elapsed(),
        }
    }

    /// Is busy computing for a duration (fixed, or drawn from a [`Dist`]):
    /// the virtual clock moves on for everyone else meanwhile.
    pub fn work(&self, d: impl Into<Dist>) {
        self.pause(d.into(), true);
    }

    /// Sleeps for a duration (fixed, or drawn from a [`Dist`]).
    pub fn sleep(&self, d: impl Into<Dist>) {
        self.pause(d.into(), false);
    }

    fn pause(&self, d: Dist, busy: bool) {
        match &self.backend {
            Backend::Sim(s) => {
                let until = self.pause_begin(d, busy);
                s.wait_until(until);
            }
            Backend::Thread(t) => std::thread::sleep(d.sample(&mut t.rng.borrow_mut())),
        }
    }

    /// The simulator's side of a pause, up to the wait: the duration drawn,
    /// the event, the figures. Returns when the pause ends (virtual ns).
    pub(crate) fn pause_begin(&self, d: Dist, busy: bool) -> u64 {
        let Some(s) = self.sim() else {
            return 0;
        };
        if !matches!(d, Dist::Fixed(_)) {
            s.core.touch(Obj::Rng, true);
        }
        let duration = d.sample(&mut s.core.world_rng.borrow_mut());
        let kind = if busy {
            EventKind::Work { duration }
        } else {
            EventKind::Sleep { duration }
        };
        s.core.emit(self.id, kind);
        {
            let mut procs = s.core.procs.borrow_mut();
            let st = procs[self.id.0 as usize].stats_mut();
            // Saturating: a process may sleep `Duration::MAX` twice.
            if busy {
                st.working = st.working.saturating_add(duration);
            } else {
                st.sleeping = st.sleeping.saturating_add(duration);
            }
        }
        s.core.now().saturating_add(to_nanos(duration))
    }

    /// A scheduling point without an IPC operation.
    pub fn yield_now(&self) {
        match &self.backend {
            Backend::Sim(s) => s.point(),
            Backend::Thread(_) => std::thread::yield_now(),
        }
    }

    /// A choice among `n` alternatives from the run's seeded RNG: `0`
    /// when `n` is 0 or 1 (nothing drawn), else [`Proc::random_below`]
    /// (what the runners' [`Ctx::choose`](crate::machine::Ctx::choose) does).
    pub fn choose(&self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        self.random_below(n as u64) as usize
    }

    /// A random number in `0..n` from the run's seeded RNG (`n > 0`).
    pub fn random_below(&self, n: u64) -> u64 {
        match &self.backend {
            Backend::Sim(s) => {
                s.core.touch(Obj::Rng, true);
                s.core.world_rng.borrow_mut().below(n)
            }
            Backend::Thread(t) => t.rng.borrow_mut().below(n),
        }
    }

    /// Gives one of this process's names a label for traces and reports. A
    /// receive right or mailbox so labelled also gets a line in the report's
    /// queue statistics (followed while this process holds it).
    pub fn label(&self, name: PortName, label: &str) {
        if let Some(s) = self.sim() {
            let label = s.core.intern(label);
            s.core.set_label(s.pid, name, Rc::clone(&label));
            if let Ok(rights) = s.core.kernel.rights(s.pid, name) {
                if rights.receive || rights.mailbox.is_some() {
                    s.core.watch(label, s.pid, name, rights.mailbox.is_some());
                }
            }
        }
    }

    /// Declares this process a server, as [`Sim::server`](crate::Sim::server)
    /// does from outside (for processes other processes spawn). No effect
    /// on the threaded backend, whose runs have no end-state verdict.
    pub fn declare_server(&self) {
        if let Some(s) = self.sim() {
            s.core.procs.borrow_mut()[self.id.0 as usize].server = true;
        }
    }

    /// Declares whether this process, from now on, may be left waiting at a
    /// receive as a valid end state (`true`, as a server) or not: for a
    /// machine whose valid ends are places, not the whole process
    /// ([`Machine::at_valid_end`](crate::machine::Machine::at_valid_end)).
    /// No effect on the threaded backend.
    pub fn declare_valid_end(&self, at: bool) {
        if let Some(s) = self.sim() {
            s.core.procs.borrow_mut()[self.id.0 as usize].server = at;
        }
    }

    /// Declares that this process may end with an error, as
    /// [`Sim::expect_error`](crate::Sim::expect_error) does from outside.
    /// No effect on the threaded backend.
    pub fn declare_expect_error(&self) {
        if let Some(s) = self.sim() {
            s.core.procs.borrow_mut()[self.id.0 as usize].expect_error = true;
        }
    }

    /// Starts a child process that inherits `inherit` (moved or copied per
    /// their dispositions, like descriptors across `fork`); the child finds
    /// them in [`Proc::inherited`].
    pub fn spawn<F>(&self, name: &str, inherit: &[CarriedRight], f: F) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + Send + 'static,
    {
        match &self.backend {
            Backend::Sim(s) => {
                let id = s.core_spawn(name, inherit, f)?;
                s.point();
                Ok(id)
            }
            Backend::Thread(t) => t.spawn(name, Some(self.pid()), inherit, f),
        }
    }

    /// Waits until process `id` has ended; returns how it ended
    /// ([`ExitStatus::Stuck`] at once for an id no process has, as in
    /// threaded mode).
    pub fn join(&self, id: ProcId) -> ExitStatus {
        match &self.backend {
            Backend::Sim(s) => {
                // Waiting for an exit, which is global; so is the step that
                // resumes after it.
                s.core.touch_global();
                if s.may_suspend() {
                    s.suspend(Suspend::Join(id));
                    s.core.touch_global();
                }
                s.core
                    .procs
                    .borrow()
                    .get(id.0 as usize)
                    .and_then(|m| m.status())
                    .unwrap_or(ExitStatus::Stuck)
            }
            Backend::Thread(t) => t.join(id),
        }
    }

    /// Kills process `id` (as a fault would): its kernel task exits, peers
    /// see the documented errors. Killing oneself ends at once.
    pub fn kill(&self, id: ProcId) {
        match &self.backend {
            Backend::Sim(s) => {
                s.core.touch_global();
                s.core.kill_requests.borrow_mut().push(id);
                if s.may_suspend() {
                    s.suspend(Suspend::Yield);
                }
            }
            Backend::Thread(t) => t.kill(id),
        }
    }
}

impl SimCtx {
    fn core_spawn<F>(&self, name: &str, inherit: &[CarriedRight], f: F) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + 'static,
    {
        spawn::spawn_process(&self.core, name, Some((self.id, self.pid)), inherit, f)
    }
}

macro_rules! plain_ops {
    ($( fn $name:ident(&self $(, $arg:ident : $ty:ty)*) -> $ret:ty; )*) => {
        $(
            fn $name(&self $(, $arg: $ty)*) -> $ret {
                self.point();
                // Rights, ports, sets, notifications, links, mailboxes:
                // not classified, dependent with every step.
                self.touch_global();
                let r = on_backend!(self, i => i.$name($($arg),*));
                self.touch_end(None);
                self.op_done(stringify!($name), &r);
                r
            }
        )*
    };
}

impl Ipc for Proc {
    fn pid(&self) -> Pid {
        match &self.backend {
            Backend::Sim(s) => s.pid,
            Backend::Thread(t) => t.task.pid(),
        }
    }

    plain_ops! {
        fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError>;
        fn port_set_allocate(&self) -> Result<PortName, IpcError>;
        fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError>;
        fn port_set_remove(&self, member: PortName) -> Result<(), IpcError>;
        fn make_right(&self, name: PortName, disposition: Disposition) -> Result<PortName, IpcError>;
        fn deallocate(&self, name: PortName) -> Result<(), IpcError>;
        fn destroy(&self, name: PortName) -> Result<(), IpcError>;
        fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError>;
        fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError>;
        fn close(&self, name: PortName) -> Result<(), IpcError>;
        fn request_notification(&self, name: PortName, kind: NotifyKind, notify: PortName) -> Result<(), IpcError>;
        fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError>;
        fn mailbox_grant(&self, mailbox: PortName, pid: Pid, access: Access) -> Result<(), IpcError>;
        fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError>;
        fn unregister(&self, service: &str) -> Result<(), IpcError>;
    }

    fn rights(&self, name: PortName) -> Result<RightSet, IpcError> {
        if let Some(s) = self.dpor_core() {
            s.core.touch_name(s.pid, name, false);
        }
        on_backend!(self, i => i.rights(name))
    }
    fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError> {
        if let Some(s) = self.dpor_core() {
            s.core.touch_name(s.pid, name, false);
        }
        on_backend!(self, i => i.port_status(name))
    }

    fn mailbox_create(&self, name: &str, config: MailboxConfig) -> Result<PortName, IpcError> {
        self.point();
        self.touch_global();
        let r = on_backend!(self, i => i.mailbox_create(name, config));
        self.touch_end(None);
        self.op_done("mailbox_create", &r);
        self.auto_label(&r, name);
        if let (Some(s), Ok(mailbox)) = (self.sim(), &r) {
            let queue = s.core.watch(s.core.intern(name), s.pid, *mailbox, true);
            s.core
                .mailboxes
                .borrow_mut()
                .insert(name.to_string(), queue);
        }
        r
    }
    fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError> {
        self.point();
        // Reads the table of names (and the mailbox's access list, which
        // only global steps change); the new name is in its own space.
        if let Some(s) = self.dpor_core() {
            s.core.touch(Obj::MailboxNames, false);
        }
        let r = on_backend!(self, i => i.mailbox_open(name));
        self.op_done("mailbox_open", &r);
        self.auto_label(&r, name);
        if let (Some(s), Ok(mailbox)) = (self.sim(), &r) {
            // The kernel resolved `name` to its one live mailbox, the one
            // created last under that name.
            let queue = s.core.mailboxes.borrow().get(name).copied();
            if let Some(queue) = queue {
                s.core.set_queue_of(s.pid, *mailbox, queue);
            }
        }
        r
    }
    fn register(&self, service: &str, right: PortName) -> Result<(), IpcError> {
        self.point();
        self.touch_global();
        let r = on_backend!(self, i => i.register(service, right));
        self.touch_end(None);
        self.op_done("register", &r);
        self.auto_label(&r.map(|_| right), service);
        if let (Some(s), Ok(())) = (self.sim(), &r) {
            let queue = s.core.queue_of(s.pid, right);
            let mut services = s.core.services.borrow_mut();
            match queue {
                Some(queue) => services.insert(service.to_string(), queue),
                None => services.remove(service),
            };
        }
        r
    }
    fn look_up(&self, service: &str) -> Result<PortName, IpcError> {
        self.point();
        self.touch_global();
        let r = on_backend!(self, i => i.look_up(service));
        self.touch_end(None);
        self.op_done("look_up", &r);
        self.auto_label(&r, service);
        if let (Some(s), Ok(name)) = (self.sim(), &r) {
            let queue = s.core.services.borrow().get(service).copied();
            if let Some(queue) = queue {
                s.core.set_queue_of(s.pid, *name, queue);
            }
        }
        r
    }

    fn send_with(&self, dest: PortName, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        if let Backend::Sim(s) = &self.backend {
            if s.core.dpor.is_none() {
                return s.send_direct(dest, msg, on_full);
            }
        }
        self.point();
        let (to, msg_id) = (Target::Name(dest), msg.id);
        let rights = msg.rights().len() + usize::from(msg.reply().is_some());
        self.started(true, to, EventKind::SendStarted { to, msg_id, rights });
        let blocking = matches!(on_full, OnFull::Block | OnFull::Timeout(_));
        if rights > 0 {
            self.touch_global();
        } else if blocking {
            self.touch_blocking(dest, true);
        }
        let r = on_backend!(self, i => i.send_with(dest, msg, on_full));
        if rights == 0 && !blocking {
            self.touch_nonblocking(dest, r.is_ok(), true);
        }
        self.touch_end(None);
        self.sent_done(to, msg_id, &r);
        r
    }
    fn send_to_with(&self, pid: Pid, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        self.point();
        let (to, msg_id) = (Target::Task(pid.0), msg.id);
        let rights = msg.rights().len() + usize::from(msg.reply().is_some());
        self.started(true, to, EventKind::SendStarted { to, msg_id, rights });
        // Direct links are made on first use: not classified.
        self.touch_global();
        let r = on_backend!(self, i => i.send_to_with(pid, msg, on_full));
        self.touch_end(None);
        self.sent_done(to, msg_id, &r);
        r
    }

    fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError> {
        if let Backend::Sim(s) = &self.backend {
            if s.core.dpor.is_none() {
                return s.receive_direct(source, wait);
            }
        }
        self.point();
        let from = Target::Name(source);
        self.started(false, from, EventKind::ReceiveStarted { from });
        let blocking = wait != Wait::NoWait;
        if blocking {
            self.touch_blocking(source, false);
        }
        let r = on_backend!(self, i => i.receive_with(source, wait));
        if !blocking {
            self.touch_nonblocking(source, r.is_ok(), false);
        }
        self.touch_end(r.as_ref().ok());
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
    fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.point();
        let from = match sources {
            [one] => Target::Name(*one),
            _ => Target::AnyOf(sources.len()),
        };
        self.started(false, from, EventKind::ReceiveStarted { from });
        let blocking = wait != Wait::NoWait;
        match sources {
            [one] if blocking => self.touch_blocking(*one, false),
            [_] => {}
            _ => self.touch_multi_queue(),
        }
        let r = on_backend!(self, i => i.select_with(sources, wait));
        if let ([one], false) = (sources, blocking) {
            self.touch_nonblocking(*one, r.is_ok(), false);
        }
        self.touch_end(r.as_ref().ok());
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
    fn select_first_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.point();
        let from = match sources {
            [one] => Target::Name(*one),
            _ => Target::AnyOf(sources.len()),
        };
        self.started(false, from, EventKind::ReceiveStarted { from });
        // Several queues, a choice by their order: not classified.
        self.touch_global();
        let r = on_backend!(self, i => i.select_first_with(sources, wait));
        self.touch_end(None);
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
    fn receive_matching_with(
        &self,
        source: PortName,
        filter: &mkipc_kernel::Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        self.point();
        let from = Target::Name(source);
        self.started(false, from, EventKind::ReceiveStarted { from });
        // Takes a message that may not be the head: ordered against
        // everything (not classified).
        self.touch_global();
        let r = on_backend!(self, i => i.receive_matching_with(source, filter, wait));
        self.touch_end(None);
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
    fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        self.point();
        // Reads a queue: ordered against everything (not classified).
        self.touch_global();
        let r = on_backend!(self, i => i.peek(source));
        self.touch_end(None);
        r
    }
    fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError> {
        self.point();
        let from = Target::Task(pid.0);
        self.started(false, from, EventKind::ReceiveStarted { from });
        self.touch_global();
        let r = on_backend!(self, i => i.receive_from_with(pid, wait));
        self.touch_end(None);
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }
    fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError> {
        self.point();
        let from = Target::AnyTask;
        self.started(false, from, EventKind::ReceiveStarted { from });
        self.touch_multi_queue();
        let r = on_backend!(self, i => i.receive_from_any_with(wait));
        self.touch_end(None);
        self.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }

    fn call_with(&self, dest: PortName, msg: Message, wait: Wait) -> Result<Message, CallError> {
        self.point();
        let (to, msg_id) = (Target::Name(dest), msg.id);
        let rights = msg.rights().len() + 1;
        // The whole call counts as waiting on `dest`'s server, in both halves.
        self.started(true, to, EventKind::SendStarted { to, msg_id, rights });
        // A reply port, a send-once right in the message: not classified.
        self.touch_global();
        let r = on_backend!(self, i => i.call_with(dest, msg, wait));
        self.touch_end(None);
        match &r {
            Err(CallError::Send(e)) => self.sent_done(
                to,
                msg_id,
                &Err(SendError::new(e.kind(), Message::default())),
            ),
            Ok(reply) => {
                self.sent_done(to, msg_id, &Ok(Sent::Delivered));
                self.received_done(to, Ok(reply));
            }
            Err(CallError::Receive(e)) => {
                self.sent_done(to, msg_id, &Ok(Sent::Delivered));
                self.received_done(to, Err(*e));
            }
            Err(CallError::NoReply) => {
                self.sent_done(to, msg_id, &Ok(Sent::Delivered));
                self.received_done(to, Err(ReceiveError::SourceDead));
            }
        }
        r
    }
}

/// Runs `f` with a handle on an OS-thread task (threaded mode).
pub(crate) fn run_threaded<F>(
    ctx: ThreadCtx,
    id: ProcId,
    inherited: Vec<CarriedRight>,
    f: F,
) -> ProcResult
where
    F: FnOnce(&Proc) -> ProcResult,
{
    let p = Proc {
        backend: Backend::Thread(Box::new(ctx)),
        id,
        inherited: inherited.into_boxed_slice(),
    };
    f(&p)
}
