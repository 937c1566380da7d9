//! Processes written as explicit state machines.
//!
//! A closure process ([`Sim::spawn`](crate::Sim::spawn)) keeps its state on
//! a coroutine stack: it can block in the middle of a function, but nobody
//! can copy, compare or hash where it is. A [`Machine`] keeps *all* of its
//! state in a value. Whoever runs it calls [`Machine::step`] at each of its
//! scheduling points; a step runs from one scheduling point to the next:
//! it finishes the operation the machine was waiting for (its outcome is
//! handed in), does local work, and starts at most one IPC operation
//! through its [`Ctx`]. If that operation completes at once the step
//! returns [`Step::Yield`]; if it has to wait ([`Op::Pending`]), the step
//! returns [`Step::Wait`] and the next step gets the outcome.
//!
//! Because the state is a value, a machine can run where no stack exists:
//! the stateful model checker (module `check`) clones the whole system
//! (kernel and machines) at every state, hashes it, and never explores a
//! state twice. On the simulator ([`Sim::spawn_machine`](crate::Sim::spawn_machine))
//! the scheduler loop steps the machine itself, with no coroutine: an
//! operation completes at once or answers `Op::Pending` (module
//! `stackless`). On blocking runners ([`run_blocking`], [`run_on_proc`]) the
//! same machine runs with operations that always complete (`Op::Done`): the
//! runner blocks inside the operation instead.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message, OnFull, PortName};
//! use mkipc_kernel::runtime::{Destination, WaitOutcome};
//! use mkipc_sim::machine::{Ctx, Machine, Op, Step};
//! use mkipc_sim::{Inherit, Sim};
//!
//! /// Sends `left` messages to `to`, one per step.
//! #[derive(Clone, PartialEq, Eq, Hash, Debug)]
//! struct Producer { to: PortName, left: u32 }
//!
//! impl Machine for Producer {
//!     fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
//!         if let Some(WaitOutcome::Sent(Err(e))) = resumed {
//!             return Step::Exit(Err(e.into()));
//!         }
//!         if self.left == 0 {
//!             return Step::Exit(Ok(()));
//!         }
//!         self.left -= 1;
//!         let msg = Message::from_u64(1, u64::from(self.left));
//!         match cx.send(Destination::Name(self.to), msg, OnFull::Block) {
//!             Op::Done(Ok(_)) => Step::Yield,
//!             Op::Done(Err(e)) => Step::Exit(Err(e.into())),
//!             Op::Pending => Step::Wait,
//!         }
//!     }
//! }
//!
//! let mut sim = Sim::builder().seed(1).build();
//! let port = sim.port("numbers", Capacity::Bounded(1)).unwrap();
//! let spawned = sim.spawn_machine("producer", &[Inherit::send(port)], |inherited| Producer {
//!     to: inherited[0].name,
//!     left: 3,
//! });
//! sim.spawn_with("consumer", &[Inherit::receive(port)], |p| {
//!     for _ in 0..3 {
//!         p.receive(p.right(0))?;
//!     }
//!     Ok(())
//! })
//! .unwrap();
//! assert!(spawned.is_ok());
//! sim.run().unwrap();
//! ```

use std::time::Duration;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{
    CallError, Capacity, CarriedRight, Disposition, Ipc, IpcError, Message, Notification, OnFull,
    PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

use crate::process::{Proc, ProcError, ProcResult};
use crate::time::Dist;

/// The result of starting an operation through a [`Ctx`].
#[derive(Debug)]
pub enum Op<T> {
    /// It completed (a blocking runner always says this, after waiting).
    Done(T),
    /// It waits: return [`Step::Wait`]; the next [`Machine::step`] is handed
    /// its outcome.
    Pending,
}

/// What a step ended with.
#[derive(Debug)]
pub enum Step {
    /// A scheduling point: step again when the scheduler picks this process.
    Yield,
    /// Waiting for the operation that returned [`Op::Pending`]; the next
    /// step gets its [`WaitOutcome`].
    Wait,
    /// Busy (`work`, `busy: true`) or asleep for a duration of virtual time;
    /// then step again (with no outcome).
    Pause {
        /// How long (sampled by the runner).
        time: Dist,
        /// `work` rather than `sleep`.
        busy: bool,
    },
    /// The process ends with this result.
    Exit(ProcResult),
}

/// A process as a state machine (see the [module docs](crate::machine)).
///
/// The one law every machine keeps: what a step does with the result of
/// its operation does not depend on whether the operation completed at
/// once ([`Op::Done`]) or later ([`Op::Pending`], then handed in as
/// `resumed`). Blocking runners only ever say `Done`; the model checker
/// says `Pending` whenever the kernel would block, and its partial-order
/// reduction relies on the two being the same program.
pub trait Machine: Sized + 'static {
    /// Runs from this scheduling point to the next. `resumed` is the outcome
    /// of the operation the last step left pending ([`Step::Wait`]), `None`
    /// otherwise.
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step;

    /// Whether this process is a server: left waiting at a receive when
    /// every other process has ended is a valid end state, not a deadlock
    /// ([`Proc::declare_server`]). No by default.
    fn is_server(&self) -> bool {
        false
    }

    /// Whether this process may end with an error without failing the run
    /// ([`Proc::declare_expect_error`]). No by default.
    fn expects_error(&self) -> bool {
        false
    }

    /// Whether this process, or any process it starts, may from this state
    /// on use the mailbox named `mailbox` in this way: an operation it
    /// waits in now counts, and a process that may destroy the mailbox
    /// answers `true` for every use. Yes by default, which is always
    /// correct; a machine that answers `false` where it can lets the
    /// stateful checker's partial-order reduction step a sole sender or
    /// sole receiver alone (as SPIN's `xs`/`xr` channel assertions do).
    /// A wrong `false` makes the checker miss states.
    fn may_use_mailbox(&self, mailbox: &str, how: MailboxUse) -> bool {
        let _ = (mailbox, how);
        true
    }

    /// Whether this process, or any process it starts, may from this state
    /// on compare arrivals across queues: receive from several sources
    /// (ports, mailboxes, a port set) two of which may hold messages at
    /// once, where the kernel takes the one that arrived first. A process
    /// waiting in such a receive now counts. Yes by default, which is always
    /// correct; when no live process may, the stateful checker leaves the
    /// order of arrivals across queues out of its states
    /// (`CanonicalOptions::cross_queue_order`), so that two states that
    /// differ only in which of two queues was sent to first are one. A
    /// wrong `false` makes the checker miss states.
    fn may_compare_arrivals(&self) -> bool {
        true
    }

    /// Whether waiting forever where it is now (at a receive) is a valid
    /// end state, as Promela's `end:` labels say: the checker asks it of
    /// every process left waiting at an end state; a machine whose answer
    /// changes from place to place tells the simulator before each receive
    /// ([`Ctx::mark_valid_end`]). By default [`Machine::is_server`]: any
    /// receive of a server.
    fn at_valid_end(&self) -> bool {
        self.is_server()
    }
}

/// How a process may use a mailbox ([`Machine::may_use_mailbox`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MailboxUse {
    /// Send to it.
    Send,
    /// Receive from it alone (`Source::Name`).
    Receive,
    /// Receive from it among other sources (`Source::Any`, a select).
    Select,
    /// A send carrying no rights that gives up on its message, or drops
    /// it, when the mailbox is full (`OnFull::Fail`, `OnFull::Timeout`,
    /// `OnFull::DropNewest`; a select's send arm): it learns whether the
    /// mailbox is full, and nothing else about it.
    TrySend,
    /// Any operation on it other than a plain send (`OnFull::Block`, no
    /// rights carried), a receive that waits forever, or a
    /// [`MailboxUse::TrySend`]: a timed receive or a try, a select that may
    /// take from it without waiting, a send that displaces the oldest
    /// message when full (`OnFull::DropOldest`), a send carrying rights.
    /// (A machine may answer `true` here for its try-sends too: that is
    /// only less precise.)
    Other,
    /// Destroy it, or change who may use it (`mailbox_destroy`,
    /// `mailbox_grant`): what another process's [`Ctx::mailbox_open`] of
    /// it does not commute with.
    Manage,
}

/// Whether a machine's [`Step::Yield`] is a scheduling point on the
/// simulator.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum YieldIs {
    /// It is one, as in the stateful checker, where every step boundary is
    /// one ([`Sim::spawn_machine`](crate::Sim::spawn_machine), [`run_on_proc`]).
    #[default]
    SchedulingPoint,
    /// It is none: the machine's scheduling points are its operations' own
    /// ([`run_blocking`]; the scenario interpreter, whose traces predate
    /// its machine).
    NoOp,
}

/// How a runner starts an RPC call ([`Ctx::call`]).
#[derive(Debug)]
pub enum CallStart {
    /// The runner made the whole call in one blocking operation
    /// ([`Ipc::call_with`]): here is its result.
    Done(Result<Message, CallError>),
    /// The runner has no call of its own: the request is handed back, and
    /// the machine makes the call as two operations, a send carrying a
    /// send-once reply right ([`call_request`]) and a receive on the reply
    /// port ([`call_reply`]).
    InTwo(Message),
    /// The runner makes the whole call as one operation that has to wait
    /// (a stackless process: its scheduling point comes first, or the
    /// request or the reply waits): end the step with [`Step::Wait`]; the
    /// next step is handed the call's outcome, which [`call_outcome`]
    /// turns into what [`Ipc::call_with`] returns.
    Pending,
}

/// What a call the runner made as one operation that had to wait
/// ([`CallStart::Pending`]) returns, from the outcome the next step is
/// handed: [`WaitOutcome::Sent`] with the error when the request was not
/// sent, [`WaitOutcome::Received`] with the receive of the reply otherwise
/// (the kernel's send-once notification: the server dropped the request,
/// [`CallError::NoReply`]). The runner has destroyed the reply port.
pub fn call_outcome(outcome: WaitOutcome) -> Result<Message, CallError> {
    match outcome {
        WaitOutcome::Sent(Err(e)) => Err(CallError::Send(e)),
        // A runner never hands a sent request as a call's end.
        WaitOutcome::Sent(Ok(_)) => Err(CallError::Receive(ReceiveError::SourceDead)),
        WaitOutcome::Received(Ok(reply))
            if reply.notification() == Some(Notification::SendOnce) =>
        {
            Err(CallError::NoReply)
        }
        WaitOutcome::Received(Ok(reply)) => Ok(reply),
        WaitOutcome::Received(Err(e)) => Err(CallError::Receive(e)),
    }
}

/// What a machine can do in a step. Implemented by each runner: the
/// simulator, blocking runners, the model checker.
pub trait Ctx<M> {
    /// The process's IPC handle, for operations that never wait: names and
    /// rights, mailboxes, `reply`, `try_send`, `try_receive`. A blocking
    /// operation called through it is an error of the machine (the checker
    /// reports it); start those with [`Ctx::send`] and [`Ctx::receive`].
    type Ipc: Ipc;
    /// See the associated type.
    fn ipc(&self) -> &Self::Ipc;
    /// Opens the mailbox called `name` ([`Ipc::mailbox_open`]), as
    /// `self.ipc().mailbox_open(name)` does. The model checker counts an
    /// open of a mailbox open to all that no other process may destroy or
    /// regrant ([`MailboxUse::Manage`]) as a local step: it only adds a
    /// name to this process's own space.
    fn mailbox_open(&mut self, name: &str) -> Result<PortName, IpcError> {
        self.ipc().mailbox_open(name)
    }
    /// The process's task (`self.ipc().pid()`; the model checker does not
    /// count it as a use of [`Ctx::ipc`]: it changes nothing).
    fn pid(&self) -> mkipc_kernel::Pid {
        self.ipc().pid()
    }
    /// Allocates a port whose receive right this process holds
    /// ([`Ipc::port_allocate`]), as `self.ipc().port_allocate(capacity)`
    /// does. The model checker counts it as a local step: nobody else
    /// holds a right to the new port, and ports are told apart by what
    /// holds them, not by where they were allocated.
    fn port_allocate(&mut self, capacity: Capacity) -> Result<PortName, IpcError> {
        self.ipc().port_allocate(capacity)
    }
    /// Time since the start of the run.
    fn now(&self) -> Duration;
    /// Starts a send (to a name or, over a direct link, to a task).
    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> Op<Result<Sent, SendError>>;
    /// Starts a receive (from a name, the first of several, a direct link,
    /// or any direct link).
    fn receive(&mut self, source: Source<'_>, wait: Wait) -> Op<Result<Message, ReceiveError>>;
    /// Whether this runner's steps are atomic, so that a machine may make
    /// the non-blocking tries of a `select` and its wait in one step: the
    /// tries that fail change nothing, and the wait is
    /// [`Ctx::receive_or_room`] (the stateful checker). A runner whose
    /// operations are each a scheduling point says no (the default): there
    /// a machine makes one operation per step, as the module docs say.
    fn selects_in_one_step(&self) -> bool {
        false
    }
    /// Starts a wait for a message on one of `sources` or room on one of
    /// the queues `room` names, as one operation: a send-possible request
    /// (Mach's `MACH_SEND_NOTIFY`) for each of `room` on the notify port
    /// `notify`, whose receive right the task holds, then a receive from
    /// `sources` and `notify`. Room comes as that port's send-possible (or
    /// dead-name) notification. A name in `room` must have no request out
    /// already (a second one would replace it, and the right it drops would
    /// come back as a send-once notification). The requests are made only
    /// when it has to wait, and stay out while it waits ([`Op::Pending`]):
    /// when it completes at once with a message (one was there, or the
    /// kernel answered a request at once, which uses it up), none is left
    /// out. A request the kernel refuses ends the operation with
    /// [`ReceiveError::InvalidName`] (those made before it may stay out; a
    /// later request replaces them, at worst one spurious wake-up).
    /// This is how a `select` whose send arms found their queues full waits
    /// in one operation: on a runner with [`Ctx::selects_in_one_step`] the
    /// step that tried every arm ends in this wait, and the checker sees the
    /// whole `select` as one blocked operation (not a transition while no
    /// arm can go, module `check::por`'s lazy blocking).
    fn receive_or_room(
        &mut self,
        sources: &[PortName],
        room: &[PortName],
        notify: PortName,
        wait: Wait,
    ) -> Op<Result<Message, ReceiveError>> {
        let mut names = sources.to_vec();
        names.push(notify);
        // A message there now is taken with no request made.
        match self.receive(Source::Any(&names), Wait::NoWait) {
            Op::Done(Err(ReceiveError::Empty)) => {}
            other => return other,
        }
        for &r in room {
            if !self.request_room(r, notify) {
                return Op::Done(Err(ReceiveError::InvalidName));
            }
        }
        self.receive(Source::Any(&names), wait)
    }
    /// Asks for a send-possible notification on the queue `queue` names,
    /// sent to the notify port `notify`, as part of
    /// [`Ctx::receive_or_room`]; whether the kernel accepted it. By default
    /// through [`Ctx::ipc`]'s `request_send_possible`. The stateful checker
    /// makes it on its kernel directly: there an operation through
    /// `Ctx::ipc` is a global step, and this request belongs to the
    /// receive it precedes (one operation, which may block lazily).
    fn request_room(&mut self, queue: PortName, notify: PortName) -> bool {
        self.ipc().request_send_possible(queue, notify).is_ok()
    }
    /// Starts an RPC call of `msg` to `dest`, waiting for the reply as long
    /// as it takes. A blocking runner with a call of its own (the os
    /// backend's has no reply ports) makes it here; by default the request
    /// comes back ([`CallStart::InTwo`]) and the machine makes the call with
    /// [`send`](Ctx::send) and [`receive`](Ctx::receive), each of which may
    /// wait.
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        let _ = dest;
        CallStart::InTwo(msg)
    }
    /// The scheduling point of an operation through [`Ctx::ipc`] that is
    /// one (every operation of a simulated process but the reads of names,
    /// rights and status), asked for just before the operation. A runner
    /// whose handle takes the point inside the operation says
    /// [`Op::Done`] (the default); so does a stackless process that could
    /// take it in place. [`Op::Pending`] (a stackless process that must
    /// hand over first): end the step with [`Step::Wait`] and make the
    /// operation in the next step (handed no outcome), where this point
    /// has been taken. Without it the operation is made before the
    /// hand-over, not after it (module `stackless`).
    fn ipc_point(&mut self) -> Op<()> {
        Op::Done(())
    }
    /// A nondeterministic choice among `n` alternatives: a number in
    /// `0..n` (`0` when `n` is 0 or 1). The simulator draws it from the
    /// run's seeded random stream, so a seed replays it; blocking runners
    /// from their own seeded stream; the model checker explores every
    /// alternative as its own transition. A machine calls it at most a few
    /// times per step, before or instead of starting its operation.
    fn choose(&mut self, n: usize) -> usize;
    /// The machine is about to wait at a place where waiting forever is
    /// (`true`) or is not a valid end state ([`Machine::at_valid_end`]). A
    /// runner that judges end states from a flag it keeps per process (the
    /// simulator) records it; one that asks the machine (the checker) or
    /// gives no end-state verdict does nothing (the default).
    fn mark_valid_end(&mut self, at: bool) {
        let _ = at;
    }
    /// Starts another process, which inherits `inherit` (moved or copied
    /// per their dispositions) and runs the machine `make` builds from the
    /// rights it received, under its own names, in order.
    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> M + Send + 'static;
}

/// A send on a blocking IPC handle, as an operation that always completes.
pub fn send_blocking<I: Ipc>(
    ipc: &I,
    dest: Destination,
    msg: Message,
    on_full: OnFull,
) -> Result<Sent, SendError> {
    match dest {
        Destination::Name(name) => ipc.send_with(name, msg, on_full),
        Destination::Task(pid) => ipc.send_to_with(pid, msg, on_full),
    }
}

/// A receive on a blocking IPC handle, as an operation that always completes.
pub fn receive_blocking<I: Ipc>(
    ipc: &I,
    source: Source<'_>,
    wait: Wait,
) -> Result<Message, ReceiveError> {
    match source {
        Source::Name(name) => ipc.receive_with(name, wait),
        Source::Any(names) => ipc.select_with(names, wait),
        Source::Task(pid) => ipc.receive_from_with(pid, wait),
        Source::AnyTask => ipc.receive_from_any_with(wait),
    }
}

/// The first half of a call made as two operations (what
/// [`Ipc::call_with`] does in one): allocates a fresh reply port, whose
/// send-once right `msg` carries; send `msg`, then receive the reply on the
/// port ([`call_reply`]; [`call_not_sent`] if the send failed). Any reply
/// right `msg` had is replaced. A fresh port per
/// call: the send-once right can be used once, and if the server drops it
/// the kernel says so (the reply is then [`CallError::NoReply`]).
pub fn call_request<I: Ipc>(ipc: &I, mut msg: Message) -> Result<(Message, PortName), CallError> {
    let reply_port = match ipc.port_allocate(Capacity::Bounded(1)) {
        Ok(port) => port,
        Err(_) => return Err(CallError::Send(SendErrorKind::TaskExited.with(msg))),
    };
    msg.set_reply(Some(CarriedRight {
        name: reply_port,
        disposition: Disposition::MakeSendOnce,
    }));
    Ok((msg, reply_port))
}

/// A call made as two operations whose request could not be sent: the
/// reply port is destroyed, and the error is what [`Ipc::call_with`]
/// would return (the message inside, without the reply right).
pub fn call_not_sent<I: Ipc>(ipc: &I, reply_port: PortName, e: SendError) -> CallError {
    let _ = ipc.destroy(reply_port);
    CallError::Send(e.map_message(|mut back| {
        back.set_reply(None);
        back
    }))
}

/// The second half of a call made as two operations: what the receive on
/// `reply_port` gave, as [`Ipc::call_with`] would return it (the kernel's
/// send-once notification, the server dropped the request, is
/// [`CallError::NoReply`]); the reply port is destroyed.
pub fn call_reply<I: Ipc>(
    ipc: &I,
    reply_port: PortName,
    received: Result<Message, ReceiveError>,
) -> Result<Message, CallError> {
    let result = match received {
        Ok(reply) if reply.notification() == Some(Notification::SendOnce) => {
            Err(CallError::NoReply)
        }
        Ok(reply) => Ok(reply),
        Err(e) => Err(CallError::Receive(e)),
    };
    let _ = ipc.destroy(reply_port);
    result
}

/// Runs `machine` to its end on a runner whose [`Ctx`] always completes
/// operations (never [`Op::Pending`]), pausing with `pause` for
/// [`Step::Pause`]. A machine that says [`Step::Wait`] with nothing
/// pending ends with an error.
pub fn run_blocking<M: Machine, C: Ctx<M>>(
    machine: &mut M,
    cx: &mut C,
    mut pause: impl FnMut(&mut C, Dist, bool),
) -> ProcResult {
    loop {
        match machine.step(cx, None) {
            Step::Yield => {}
            Step::Pause { time, busy } => pause(cx, time, busy),
            Step::Exit(r) => return r,
            Step::Wait => {
                return Err(ProcError::msg(
                    "the machine waits, but none of its operations is pending",
                ))
            }
        }
    }
}

/// A runner of a machine on a simulated closure process, whose operations
/// block on its coroutine, so every operation is [`Op::Done`] (what
/// [`Sim::spawn_machine`](crate::Sim::spawn_machine) runs under DPOR
/// exploration; otherwise machines are stackless, with the same schedule).
pub struct ProcCtx<'a> {
    proc: &'a Proc,
    yields: YieldIs,
}

impl<'a> ProcCtx<'a> {
    /// The runner of a machine on process `proc` (the processes it spawns
    /// run with [`run_on_proc`]).
    pub fn new(proc: &'a Proc) -> ProcCtx<'a> {
        ProcCtx {
            proc,
            yields: YieldIs::SchedulingPoint,
        }
    }

    /// The runner of a machine on process `proc` whose spawned processes
    /// run with [`run_on_proc_with`] and `yields`.
    pub fn with_yields(proc: &'a Proc, yields: YieldIs) -> ProcCtx<'a> {
        ProcCtx { proc, yields }
    }
}

impl<M: Machine + Send> Ctx<M> for ProcCtx<'_> {
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
        Op::Done(send_blocking(self.proc, dest, msg, on_full))
    }
    fn receive(&mut self, source: Source<'_>, wait: Wait) -> Op<Result<Message, ReceiveError>> {
        Op::Done(receive_blocking(self.proc, source, wait))
    }
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        CallStart::Done(self.proc.call_with(dest, msg, Wait::Forever))
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
        let yields = self.yields;
        self.proc
            .spawn(name, inherit, move |p| {
                run_on_proc_with(p, make(p.inherited()), yields)
            })
            .map(drop)
    }
}

/// Runs `machine` to its end as the body of simulated process `proc`,
/// declaring it a server or expecting its error first if it says so
/// ([`Machine::is_server`], [`Machine::expects_error`]).
///
/// [`Step::Yield`] is a scheduling point ([`Proc::yield_now`]), as in the
/// stateful checker, where every step boundary is one: so a step that ends
/// without an operation (and the exit after it) interleaves with the other
/// processes exactly as the checker lets it.
pub fn run_on_proc<M: Machine + Send>(proc: &Proc, machine: M) -> ProcResult {
    run_on_proc_with(proc, machine, YieldIs::SchedulingPoint)
}

/// [`run_on_proc`], with [`Step::Yield`] a scheduling point or not.
pub fn run_on_proc_with<M: Machine + Send>(
    proc: &Proc,
    mut machine: M,
    yields: YieldIs,
) -> ProcResult {
    if machine.is_server() {
        proc.declare_server();
    }
    if machine.expects_error() {
        proc.declare_expect_error();
    }
    let mut cx = ProcCtx::with_yields(proc, yields);
    loop {
        match machine.step(&mut cx, None) {
            Step::Yield if yields == YieldIs::SchedulingPoint => proc.yield_now(),
            Step::Yield => {}
            Step::Pause { time, busy } => {
                if busy {
                    proc.work(time)
                } else {
                    proc.sleep(time)
                }
            }
            Step::Exit(r) => return r,
            Step::Wait => {
                return Err(ProcError::msg(
                    "the machine waits, but none of its operations is pending",
                ))
            }
        }
    }
}
