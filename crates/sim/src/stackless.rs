//! Stackless processes: a [`Machine`] the scheduler loop steps itself, with
//! no coroutine and no stack of its own.
//!
//! A stackless process is its machine value, a [`Proc`] handle without a
//! coroutine, and a [`Phase`] (its payload in a [`Slot`]): what the loop
//! does the next time it resumes the process. [`Runner::resume`] runs from
//! one hand-over to the next:
//! it takes the scheduling points the process owes, then does what the
//! phase says (a step of the machine, an operation to start, a pause, an
//! exit, or the end of a wait), and returns the same [`Suspend`] requests
//! a coroutine yields, so the loop treats both kinds alike.
//!
//! The schedule is the one the same machine gets on a coroutine
//! ([`run_on_proc`](crate::machine::run_on_proc), or a runner whose
//! `Step::Yield` is no scheduling point, [`YieldIs::NoOp`]):
//!
//! - an operation started through [`Ctx::send`] or [`Ctx::receive`] begins
//!   with a scheduling point, taken in place
//!   ([`Core::point_in_place`](crate::runtime::Core)): if the process goes
//!   on, the operation starts at once (and may complete at once,
//!   [`Op::Done`]); if someone else was picked, or only the loop may take
//!   the point, the operation is *deferred*: the machine gets
//!   [`Op::Pending`], the step ends, and the operation starts where the
//!   coroutine's would have, when the process runs again;
//! - an operation that has to wait leaves a wait in the kernel, like the
//!   blocking layer's, with the same trace events and figures;
//! - a machine whose `Step::Yield` is a scheduling point, handed the
//!   outcome of an operation it got as `Op::Pending`, first takes the point
//!   the coroutine took after its `Op::Done` (the machine contract:
//!   a step that finishes an operation at once ends with `Step::Yield`,
//!   and one handed a resumed outcome goes on as the next step would);
//! - [`Ctx::call`] is one operation, as `Proc::call_with` makes it: one
//!   scheduling point (taken in place or deferred, as a send's), then the
//!   request (carrying a send-once right to a fresh reply port) and the
//!   receive of the reply, each of which may wait, with the coroutine's
//!   events and figures (the whole call counts as sending to the server);
//!   the machine gets [`CallStart::Done`], or [`CallStart::Pending`] and
//!   the outcome in its next step ([`call_outcome`](crate::machine::call_outcome));
//! - [`Ctx::spawn`] and operations through [`Ctx::ipc`] that are
//!   scheduling points take them in place, or owe them to the end of the
//!   step (their effect then comes before the switch, not after it: the one
//!   place where a stackless process may interleave differently, DESIGN.md).
//!
//! Under DPOR exploration machines keep running on coroutines (the footprint
//! of each step is recorded by the coroutine path).

use std::time::Duration;

use mkipc_kernel::runtime::{Begin, Destination, FastReceive, Source, WaitOutcome, WaitToken};
use mkipc_kernel::{
    CallError, Capacity, CarriedRight, Disposition, IpcError, Message, OnFull, Pid, PortName,
    ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

use crate::machine::{call_outcome, CallStart, Ctx, Machine, Op, Step, YieldIs};
use crate::process::{Backend, Proc, ProcError, ProcResult, SimCtx};
use crate::runtime::{Resumed, Stackless, Suspend};
use crate::time::{to_nanos, Dist, Nanos};
use crate::trace::{EventKind, Target};

/// A source of a deferred receive, owning its names.
enum OwnedSource {
    Name(PortName),
    Any(Vec<PortName>),
    Task(Pid),
    AnyTask,
}

impl OwnedSource {
    fn of(source: Source<'_>) -> OwnedSource {
        match source {
            Source::Name(n) => OwnedSource::Name(n),
            Source::Any(names) => OwnedSource::Any(names.to_vec()),
            Source::Task(p) => OwnedSource::Task(p),
            Source::AnyTask => OwnedSource::AnyTask,
        }
    }
    fn as_source(&self) -> Source<'_> {
        match self {
            OwnedSource::Name(n) => Source::Name(*n),
            OwnedSource::Any(names) => Source::Any(names),
            OwnedSource::Task(p) => Source::Task(*p),
            OwnedSource::AnyTask => Source::AnyTask,
        }
    }
}

/// An operation whose scheduling point comes first.
enum Deferred {
    Send {
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    },
    Receive {
        source: OwnedSource,
        wait: Wait,
    },
    Call {
        dest: PortName,
        msg: Message,
    },
}

/// What a waiting operation finishes with.
enum WaitingOp {
    Send {
        to: Target,
        msg_id: u32,
    },
    Receive {
        from: Target,
    },
    /// A call's request is being sent (a send-once right to `reply` in it).
    CallSend {
        to: Target,
        msg_id: u32,
        reply: PortName,
    },
    /// A call's reply is awaited on `reply`.
    CallReceive {
        to: Target,
        msg_id: u32,
        reply: PortName,
    },
}

/// An operation waiting in the kernel.
struct Waiting {
    token: WaitToken,
    deadline: Option<Nanos>,
    since: Nanos,
    op: WaitingOp,
}

/// What the next resume does (after the owed scheduling points): a tag,
/// its payload beside it in the runner's one [`Slot`], so that changing
/// the phase, which a machine's operation does several times, moves no
/// message (with the payloads inside the phase, every change moved ~170
/// bytes out and back in).
#[derive(Clone, Copy)]
enum Phase {
    /// A step of the machine, handed the outcome in the slot, if any.
    Step,
    /// Starts the deferred operation in the slot.
    Start,
    /// Works or sleeps as the slot says.
    Pause,
    /// Ends the process with the result in the slot.
    Exit,
    /// Waits for the operation in the slot to complete.
    Waiting,
    /// A step (handed no outcome) whose first scheduling point is taken:
    /// the one `Ctx::ipc_point` asked for.
    Granted,
}

/// The payload of the phase: one at a time (a step's outcome, the
/// operation it deferred or left waiting, its pause or its end), so the
/// runner is no larger than with the payloads inside the phase.
enum Slot {
    Empty,
    /// The outcome the next step is handed.
    Outcome(WaitOutcome),
    Deferred(Deferred),
    Waiting(Waiting),
    Pause {
        time: Dist,
        busy: bool,
    },
    Exit(ProcResult),
}

impl Slot {
    fn take(&mut self) -> Slot {
        std::mem::replace(self, Slot::Empty)
    }
}

/// The machine, or what builds it when the process first runs.
enum Made<M, F> {
    Unmade(Option<F>),
    Made(M),
}

/// A stackless process (module docs).
pub(crate) struct Runner<M, F> {
    proc: Proc,
    machine: Made<M, F>,
    phase: Phase,
    yields: YieldIs,
    /// The phase's payload.
    slot: Slot,
}

impl<M, F> Runner<M, F>
where
    M: Machine,
    F: FnOnce(&[CarriedRight]) -> M + 'static,
{
    pub(crate) fn new(proc: Proc, make: F, yields: YieldIs) -> Runner<M, F> {
        Runner {
            proc,
            machine: Made::Unmade(Some(make)),
            phase: Phase::Step,
            yields,
            slot: Slot::Empty,
        }
    }
}

/// The handle's simulated side (a stackless process is always simulated).
fn sim(p: &Proc) -> &SimCtx {
    match &p.backend {
        Backend::Sim(s) => s,
        Backend::Thread(_) => unreachable!("a stackless process is simulated"),
    }
}

fn target_of_dest(dest: Destination) -> Target {
    match dest {
        Destination::Name(n) => Target::Name(n),
        Destination::Task(p) => Target::Task(p.0),
    }
}

fn target_of_source(source: Source<'_>) -> Target {
    match source {
        Source::Name(n) => Target::Name(n),
        Source::Any([one]) => Target::Name(*one),
        Source::Any(names) => Target::AnyOf(names.len()),
        Source::Task(p) => Target::Task(p.0),
        Source::AnyTask => Target::AnyTask,
    }
}

/// Starts a send as `Proc::send_with` does after its scheduling point.
fn start_send(
    p: &Proc,
    dest: Destination,
    msg: Message,
    on_full: OnFull,
) -> Result<Result<Sent, SendError>, Waiting> {
    let mut msg = msg;
    if send_started_fast(p, dest, &mut msg) {
        return Ok(Ok(Sent::Delivered));
    }
    send_general(p, dest, msg, on_full)
}

/// The start of a send (its "started" event), and the send itself when
/// the kernel's fast paths make it (`Kernel::send_fast`): `true` when sent
/// (and recorded); `false` when they do not apply and nothing changed but
/// the event: go on with [`send_general`]. Inlined into the caller, so that
/// a machine's `Ctx::send` answers `Op::Done(Ok(Sent::Delivered))` from
/// here, not through `start_send`'s wide result written by the callee and
/// read back (a store-forwarding stall at every send in `perf annotate`).
#[inline(always)]
fn send_started_fast(p: &Proc, dest: Destination, msg: &mut Message) -> bool {
    let s = sim(p);
    let (to, msg_id) = (target_of_dest(dest), msg.id);
    // `Proc::started`'s event; what a wait reports it waits on (`op`, read
    // only by `wait`) is set in `send_general`, where a wait may start.
    if s.core.tracing {
        let rights = msg.rights().len() + usize::from(msg.reply().is_some());
        s.core
            .emit(s.id, EventKind::SendStarted { to, msg_id, rights });
    }
    let sent = match dest {
        Destination::Name(name) => s.core.kernel.send_fast(s.pid, name, msg),
        Destination::Task(_) => false,
    };
    if sent {
        p.sent_done(to, msg_id, &Ok(Sent::Delivered));
    }
    sent
}

/// A send [`send_started_fast`] did not make: the kernel's general path.
fn send_general(
    p: &Proc,
    dest: Destination,
    msg: Message,
    on_full: OnFull,
) -> Result<Result<Sent, SendError>, Waiting> {
    let s = sim(p);
    let (to, msg_id) = (target_of_dest(dest), msg.id);
    s.op.set(Some((true, to)));
    match s
        .core
        .kernel
        .send_begin(s.pid, dest, msg, on_full, &|| s.waker())
    {
        Begin::Done(r) => {
            p.sent_done(to, msg_id, &r);
            Ok(r)
        }
        Begin::Blocked(token) => {
            let timeout = match on_full {
                OnFull::Timeout(d) => Some(d),
                _ => None,
            };
            Err(wait(s, token, timeout, WaitingOp::Send { to, msg_id }))
        }
    }
}

/// Starts a receive as `Proc::receive_with` (or `select_with`, ...) does
/// after its scheduling point.
fn start_receive(
    p: &Proc,
    source: Source<'_>,
    wait_for: Wait,
) -> Result<Result<Message, ReceiveError>, Waiting> {
    let s = sim(p);
    let from = target_of_source(source);
    // `Proc::started`'s event; `op` is set below, where a wait may start.
    s.core.emit(s.id, EventKind::ReceiveStarted { from });
    let may_wait = !matches!(wait_for, Wait::NoWait | Wait::For(Duration::ZERO));
    let kernel = &s.core.kernel;
    let waker = || s.waker();
    // The kernel's fast paths alone first (`Kernel::receive_fast`): nothing
    // changed when they do not apply.
    let begin = match source {
        Source::Name(name) => match kernel.receive_fast(s.pid, name, may_wait, &waker) {
            FastReceive::Received(m) => {
                p.received_done(from, Ok(&m));
                return Ok(Ok(m));
            }
            FastReceive::Blocked(token) => {
                s.op.set(Some((false, from)));
                Begin::Blocked(token)
            }
            FastReceive::Other => {
                s.op.set(Some((false, from)));
                kernel.receive_begin(s.pid, source, may_wait, &waker)
            }
        },
        _ => {
            s.op.set(Some((false, from)));
            kernel.receive_begin(s.pid, source, may_wait, &waker)
        }
    };
    let r = match begin {
        Begin::Done(Err(ReceiveError::Empty)) if wait_for != Wait::NoWait => {
            Err(ReceiveError::TimedOut)
        }
        Begin::Done(r) => r,
        Begin::Blocked(token) => {
            let timeout = match wait_for {
                Wait::For(d) => Some(d),
                _ => None,
            };
            return Err(wait(s, token, timeout, WaitingOp::Receive { from }));
        }
    };
    p.received_done(from, r.as_ref().map_err(|e| *e));
    Ok(r)
}

/// Starts a call as `Proc::call_with` does after its scheduling point:
/// one operation (a request carrying a send-once right to a fresh reply
/// port, then the receive of the reply there), with the events and figures
/// of the coroutine's call. Its outcome is what [`call_outcome`] reads.
fn start_call(p: &Proc, dest: PortName, mut msg: Message) -> Result<WaitOutcome, Waiting> {
    let s = sim(p);
    let (to, msg_id) = (Target::Name(dest), msg.id);
    let rights = msg.rights().len() + 1;
    // The whole call counts as waiting on `dest`'s server, in both halves.
    p.started(true, to, EventKind::SendStarted { to, msg_id, rights });
    let kernel = &s.core.kernel;
    let Ok(reply) = kernel.port_allocate(s.pid, Capacity::Bounded(1)) else {
        let e = SendErrorKind::TaskExited.with(Message::default());
        p.sent_done(
            to,
            msg_id,
            &Err(SendError::new(e.kind(), Message::default())),
        );
        return Ok(WaitOutcome::Sent(Err(e)));
    };
    msg.set_reply(Some(CarriedRight {
        name: reply,
        disposition: Disposition::MakeSendOnce,
    }));
    match kernel.send_begin(s.pid, Destination::Name(dest), msg, OnFull::Block, &|| {
        s.waker()
    }) {
        Begin::Done(r) => call_sent(p, to, msg_id, reply, r),
        Begin::Blocked(token) => Err(wait(
            s,
            token,
            None,
            WaitingOp::CallSend { to, msg_id, reply },
        )),
    }
}

/// A call's request went (or not): on to the receive of its reply.
fn call_sent(
    p: &Proc,
    to: Target,
    msg_id: u32,
    reply: PortName,
    r: Result<Sent, SendError>,
) -> Result<WaitOutcome, Waiting> {
    let s = sim(p);
    if let Err(e) = r {
        let _ = s.core.kernel.destroy(s.pid, reply);
        p.sent_done(
            to,
            msg_id,
            &Err(SendError::new(e.kind(), Message::default())),
        );
        let e = e.map_message(|mut back| {
            back.set_reply(None);
            back
        });
        return Ok(WaitOutcome::Sent(Err(e)));
    }
    match s
        .core
        .kernel
        .receive_begin(s.pid, Source::Name(reply), true, &|| s.waker())
    {
        Begin::Done(r) => Ok(call_replied(p, to, msg_id, reply, r)),
        Begin::Blocked(token) => Err(wait(
            s,
            token,
            None,
            WaitingOp::CallReceive { to, msg_id, reply },
        )),
    }
}

/// A call's reply came (or not): the reply port goes, the call is recorded.
fn call_replied(
    p: &Proc,
    to: Target,
    msg_id: u32,
    reply: PortName,
    r: Result<Message, ReceiveError>,
) -> WaitOutcome {
    let s = sim(p);
    let _ = s.core.kernel.destroy(s.pid, reply);
    p.sent_done(to, msg_id, &Ok(Sent::Delivered));
    // Recorded as `Proc::call_with` records what `Ipc::call_with` returned
    // (the kernel's send-once notification: no reply, the source is dead).
    match &r {
        Ok(m) if m.notification() == Some(mkipc_kernel::Notification::SendOnce) => {
            p.received_done(to, Err(ReceiveError::SourceDead));
        }
        Ok(m) => p.received_done(to, Ok(m)),
        Err(e) => p.received_done(to, Err(*e)),
    }
    WaitOutcome::Received(r)
}

/// The start of a wait, as the coroutine's `SimCtx::block`.
fn wait(s: &SimCtx, token: WaitToken, timeout: Option<Duration>, op: WaitingOp) -> Waiting {
    let core = &s.core;
    let since = core.now();
    let deadline = timeout.map(|d| since.saturating_add(to_nanos(d)));
    let current = s.op.get();
    if let Some((sending, target)) = current {
        let kind = if sending {
            EventKind::SendBlocked { to: target }
        } else {
            EventKind::ReceiveBlocked { from: target }
        };
        core.emit(s.id, kind);
    }
    let mut procs = core.procs.borrow_mut();
    let meta = &mut procs[s.id.0 as usize];
    meta.blocked_on = current;
    meta.blocked_since = Some(since);
    Waiting {
        token,
        deadline,
        since,
        op,
    }
}

/// The waiting operation in `slot`, resumed: its outcome (the operation
/// finished as the coroutine's would have), or `None` with the wait (the
/// same, or a call's next one) left in `slot` when it goes on.
fn finish_wait(p: &Proc, slot: &mut Slot) -> Option<WaitOutcome> {
    let s = sim(p);
    let core = &s.core;
    let Slot::Waiting(w) = &*slot else {
        unreachable!("a waiting phase has its operation in the slot")
    };
    let token = w.token;
    let outcome = match core.kernel.wait_take(s.pid, token) {
        Some(outcome) => outcome,
        None => {
            let timed_out = std::mem::take(&mut core.procs.borrow_mut()[s.id.0 as usize].timed_out);
            if !timed_out && !core.is_killed(s.id) {
                return None;
            }
            if timed_out {
                core.emit(s.id, EventKind::TimedOut);
            }
            core.kernel.wait_cancel(s.pid, token)
        }
    };
    let Slot::Waiting(w) = slot.take() else {
        unreachable!("checked above")
    };
    {
        let waited = core.now().saturating_sub(w.since);
        let mut procs = core.procs.borrow_mut();
        let meta = &mut procs[s.id.0 as usize];
        meta.blocked_on = None;
        meta.blocked_since = None;
        meta.add_blocked(waited);
    }
    Some(match (w.op, outcome) {
        (WaitingOp::Send { to, msg_id }, WaitOutcome::Sent(r)) => {
            p.sent_done(to, msg_id, &r);
            WaitOutcome::Sent(r)
        }
        (WaitingOp::Receive { from }, WaitOutcome::Received(r)) => {
            p.received_done(from, r.as_ref().map_err(|e| *e));
            WaitOutcome::Received(r)
        }
        (WaitingOp::CallSend { to, msg_id, reply }, WaitOutcome::Sent(r)) => {
            match call_sent(p, to, msg_id, reply, r) {
                Ok(outcome) => outcome,
                Err(next) => {
                    *slot = Slot::Waiting(next);
                    return None;
                }
            }
        }
        (WaitingOp::CallReceive { to, msg_id, reply }, WaitOutcome::Received(r)) => {
            call_replied(p, to, msg_id, reply, r)
        }
        (_, outcome) => outcome,
    })
}

/// What a step left for the runner (the operation itself in the [`Slot`]).
#[derive(Clone, Copy)]
enum Left {
    Nothing,
    /// The point before an operation through `Ctx::ipc` (`Ctx::ipc_point`).
    Point,
    /// An operation deferred to its scheduling point (`Slot::Deferred`).
    Deferred,
    /// An operation waiting in the kernel (`Slot::Waiting`).
    Waiting,
}

/// The [`Ctx`] of a stackless process's step (module docs).
pub(crate) struct StacklessCtx<'a> {
    proc: &'a Proc,
    yields: YieldIs,
    left: Left,
    slot: &'a mut Slot,
    misuse: Option<&'static str>,
}

impl StacklessCtx<'_> {
    fn defer(&mut self, d: Deferred) {
        *self.slot = Slot::Deferred(d);
        self.left = Left::Deferred;
    }
    fn waiting(&mut self, w: Waiting) {
        *self.slot = Slot::Waiting(w);
        self.left = Left::Waiting;
    }
}

impl StacklessCtx<'_> {
    /// Whether an operation may start: one per step.
    fn idle(&mut self) -> bool {
        if matches!(self.left, Left::Nothing) {
            return true;
        }
        self.misuse = Some("the machine started an operation while another was pending");
        false
    }
}

impl<M: Machine> Ctx<M> for StacklessCtx<'_> {
    type Ipc = Proc;
    fn ipc(&self) -> &Proc {
        self.proc
    }
    fn now(&self) -> Duration {
        self.proc.now()
    }
    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> Op<Result<Sent, SendError>> {
        if !self.idle() {
            return Op::Done(Err(
                mkipc_kernel::SendErrorKind::InvalidDestination.with(msg)
            ));
        }
        let s = sim(self.proc);
        s.owed_points.set(s.owed_points.get() + 1);
        if !s.take_owed() {
            self.defer(Deferred::Send { dest, msg, on_full });
            return Op::Pending;
        }
        let mut msg = msg;
        if send_started_fast(self.proc, dest, &mut msg) {
            return Op::Done(Ok(Sent::Delivered));
        }
        match send_general(self.proc, dest, msg, on_full) {
            Ok(r) => Op::Done(r),
            Err(w) => {
                self.waiting(w);
                Op::Pending
            }
        }
    }
    fn receive(&mut self, source: Source<'_>, wait: Wait) -> Op<Result<Message, ReceiveError>> {
        if !self.idle() {
            return Op::Done(Err(ReceiveError::InvalidName));
        }
        let s = sim(self.proc);
        s.owed_points.set(s.owed_points.get() + 1);
        if !s.take_owed() {
            self.defer(Deferred::Receive {
                source: OwnedSource::of(source),
                wait,
            });
            return Op::Pending;
        }
        match start_receive(self.proc, source, wait) {
            Ok(r) => Op::Done(r),
            Err(w) => {
                self.waiting(w);
                Op::Pending
            }
        }
    }
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        if !self.idle() {
            return CallStart::Done(Err(CallError::Send(
                SendErrorKind::InvalidDestination.with(msg),
            )));
        }
        let s = sim(self.proc);
        s.owed_points.set(s.owed_points.get() + 1);
        if !s.take_owed() {
            self.defer(Deferred::Call { dest, msg });
            return CallStart::Pending;
        }
        match start_call(self.proc, dest, msg) {
            Ok(outcome) => CallStart::Done(call_outcome(outcome)),
            Err(w) => {
                self.waiting(w);
                CallStart::Pending
            }
        }
    }
    fn ipc_point(&mut self) -> Op<()> {
        let s = sim(self.proc);
        if s.granted.get() || !self.idle() {
            return Op::Done(());
        }
        s.owed_points.set(s.owed_points.get() + 1);
        if !s.take_owed() {
            self.left = Left::Point;
            return Op::Pending;
        }
        s.granted.set(true);
        Op::Done(())
    }
    fn choose(&mut self, n: usize) -> usize {
        self.proc.choose(n)
    }
    fn mark_valid_end(&mut self, at: bool) {
        self.proc.declare_valid_end(at);
    }
    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> M + Send + 'static,
    {
        let s = sim(self.proc);
        let yields = self.yields;
        crate::process::spawn::spawn_stackless(&s.core, name, Some((s.id, s.pid)), inherit, |p| {
            Box::new(Runner::new(p, make, yields))
        })?;
        // As `Proc::spawn`: a scheduling point after the spawn.
        s.point();
        Ok(())
    }
}

impl<M, F> Stackless for Runner<M, F>
where
    M: Machine,
    F: FnOnce(&[CarriedRight]) -> M + 'static,
{
    fn resume(&mut self) -> Resumed {
        loop {
            let s = sim(&self.proc);
            if !s.take_owed() {
                let switch = s.owed_switch.take().unwrap_or(Suspend::Yield);
                return Resumed::Yield(switch);
            }
            match std::mem::replace(&mut self.phase, Phase::Step) {
                Phase::Step => {
                    let resumed = match &self.slot {
                        Slot::Outcome(_) => match self.slot.take() {
                            Slot::Outcome(outcome) => Some(outcome),
                            _ => None,
                        },
                        _ => None,
                    };
                    if let Some(handover) = self.step(resumed) {
                        return handover;
                    }
                }
                Phase::Start => {
                    let Slot::Deferred(d) = self.slot.take() else {
                        unreachable!("a starting phase has its operation in the slot")
                    };
                    let started = match d {
                        Deferred::Send { dest, msg, on_full } => {
                            start_send(&self.proc, dest, msg, on_full).map(WaitOutcome::Sent)
                        }
                        Deferred::Receive { source, wait } => {
                            start_receive(&self.proc, source.as_source(), wait)
                                .map(WaitOutcome::Received)
                        }
                        Deferred::Call { dest, msg } => start_call(&self.proc, dest, msg),
                    };
                    match started {
                        Ok(outcome) => self.resumed(outcome),
                        Err(w) => return self.wait(w),
                    }
                }
                Phase::Pause => {
                    let Slot::Pause { time, busy } = self.slot.take() else {
                        unreachable!("a pausing phase has its pause in the slot")
                    };
                    let until = self.proc.pause_begin(time, busy);
                    return Resumed::Yield(Suspend::Timer { until });
                }
                Phase::Exit => {
                    let Slot::Exit(r) = self.slot.take() else {
                        unreachable!("an exiting phase has its result in the slot")
                    };
                    return Resumed::Return(r);
                }
                Phase::Granted => {
                    sim(&self.proc).granted.set(true);
                    if let Some(handover) = self.step(None) {
                        return handover;
                    }
                }
                Phase::Waiting => match finish_wait(&self.proc, &mut self.slot) {
                    Some(outcome) => self.resumed(outcome),
                    None => return self.wait_on(),
                },
            }
        }
    }
}

impl<M, F> Runner<M, F>
where
    M: Machine,
    F: FnOnce(&[CarriedRight]) -> M + 'static,
{
    /// The process ends with `r` when next resumed (whatever the slot held
    /// is dropped).
    fn exit(&mut self, r: ProcResult) {
        self.slot = Slot::Exit(r);
        self.phase = Phase::Exit;
    }

    /// Hands over while `w` waits.
    fn wait(&mut self, w: Waiting) -> Resumed {
        self.slot = Slot::Waiting(w);
        self.wait_on()
    }

    /// Hands over while the operation in the slot waits.
    fn wait_on(&mut self) -> Resumed {
        let deadline = match &self.slot {
            Slot::Waiting(w) => w.deadline,
            _ => None,
        };
        self.phase = Phase::Waiting;
        Resumed::Yield(Suspend::Block { deadline })
    }

    /// The scheduling point a `Step::Yield` is, when it is one.
    fn yield_point(&self) {
        if self.yields == YieldIs::SchedulingPoint {
            let s = sim(&self.proc);
            s.owed_points.set(s.owed_points.get() + 1);
        }
    }

    /// An operation the machine got as `Op::Pending` completed: the next
    /// step gets its outcome, after the point the coroutine took after its
    /// `Op::Done` (module docs).
    fn resumed(&mut self, outcome: WaitOutcome) {
        self.yield_point();
        self.slot = Slot::Outcome(outcome);
        self.phase = Phase::Step;
    }

    /// One step of the machine; sets the phase it leaves, and says how to
    /// hand over when that must be at once (an operation it started waits).
    fn step(&mut self, resumed: Option<WaitOutcome>) -> Option<Resumed> {
        if let Made::Unmade(make) = &mut self.machine {
            let Some(make) = make.take() else {
                self.exit(Err(ProcError::msg("the machine could not be built")));
                return None;
            };
            let machine = make(self.proc.inherited());
            if machine.is_server() {
                self.proc.declare_server();
            }
            if machine.expects_error() {
                self.proc.declare_expect_error();
            }
            self.machine = Made::Made(machine);
        }
        let Made::Made(machine) = &mut self.machine else {
            return None;
        };
        let mut cx = StacklessCtx {
            proc: &self.proc,
            yields: self.yields,
            left: Left::Nothing,
            slot: &mut self.slot,
            misuse: None,
        };
        let step = machine.step(&mut cx, resumed);
        let (left, misuse) = (cx.left, cx.misuse);
        // A point taken before an operation the step did not make is not
        // carried over.
        sim(&self.proc).granted.set(false);
        if let Some(why) = misuse {
            self.exit(Err(ProcError::msg(why)));
            return None;
        }
        let waits = matches!(step, Step::Wait);
        match left {
            Left::Nothing => match step {
                Step::Wait => self.exit(Err(ProcError::msg(
                    "the machine waits, but none of its operations is pending",
                ))),
                Step::Yield => {
                    self.yield_point();
                    self.phase = Phase::Step;
                }
                Step::Pause { time, busy } => {
                    self.slot = Slot::Pause { time, busy };
                    self.phase = Phase::Pause;
                }
                Step::Exit(r) => self.exit(r),
            },
            Left::Deferred | Left::Waiting | Left::Point if !waits => self.exit(Err(
                ProcError::msg("the machine left an operation pending without waiting for it"),
            )),
            Left::Deferred => self.phase = Phase::Start,
            Left::Point => self.phase = Phase::Granted,
            Left::Waiting => {
                // Started in place: the wait is in the kernel.
                return Some(self.wait_on());
            }
        }
        None
    }
}
