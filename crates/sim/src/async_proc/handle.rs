//! [`AsyncProc`]: the handle an async process's future runs with, and the
//! futures its operations are.
//!
//! Every operation is written as the closure's [`Proc`] does it, with each
//! place where a coroutine would switch turned into a future that returns
//! `Pending` once, after leaving the hand-over for the runner
//! ([`Shared::handover`], or the owed switch of a scheduling point). So the
//! process hands over where a closure would, and the run is the same.
//!
//! * [`PointFuture`]: a scheduling point, taken in place
//!   ([`SimCtx::take_owed`]); when someone else was picked, or only the loop
//!   may take it, the process hands over and the point is done when it runs
//!   again.
//! * [`Handover`]: a request the loop grants by resuming the process
//!   (a timer for `work`/`sleep`, a join, the yield after a kill request).
//! * [`Blocked`]: a wait in the kernel, as [`SimCtx`]'s `block` does it on a
//!   coroutine: the same "blocked" event and figures, woken by the kernel's
//!   waker, cancelled at its virtual deadline (or when the future is
//!   dropped).

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mkipc_kernel::ipc::PortStatus;
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::runtime::{Begin, Destination, FastReceive, Source, WaitOutcome, WaitToken};
use mkipc_kernel::{
    CallError, Capacity, CarriedRight, Disposition, Filter, Ipc, IpcError, Kernel, MailboxConfig,
    Message, Notification, NotifyKind, OnFull, Pid, PortName, ReceiveError, SendError,
    SendErrorKind, Sent, Wait,
};

use super::AsyncIpc;
use crate::exit::{ExitStatus, ProcResult};
use crate::process::{Backend, Proc, SimCtx};
use crate::runtime::Suspend;
use crate::time::{to_nanos, Dist, Nanos};
use crate::trace::{EventKind, Target};
use crate::ProcId;

/// What the process's futures and its runner share.
pub(crate) struct Shared {
    /// The stackless handle underneath (module `stackless`): its figures,
    /// trace events and bookkeeping are the closure's.
    pub proc: Proc,
    /// The hand-over the pending future asks for.
    pub handover: Cell<Option<Suspend>>,
    /// An operation is in progress (one at a time per process).
    pub busy: Cell<bool>,
    /// Why the process must end now (it misused the API).
    pub misuse: Cell<Option<&'static str>>,
}

impl Shared {
    pub(crate) fn new(proc: Proc) -> Shared {
        Shared {
            proc,
            handover: Cell::new(None),
            busy: Cell::new(false),
            misuse: Cell::new(None),
        }
    }

    pub(crate) fn sim(&self) -> &SimCtx {
        match &self.proc.backend {
            Backend::Sim(s) => s,
            Backend::Thread(_) => unreachable!("an async process is simulated"),
        }
    }
}

/// The handle an async process runs with (see the [module docs](crate::async_proc)).
///
/// It implements [`AsyncIpc`], the kernel's API as futures, and adds what a
/// simulation needs, as [`Proc`] does for closures: [`work`](AsyncProc::work)
/// and [`sleep`](AsyncProc::sleep) in virtual time, [`now`](AsyncProc::now),
/// [`yield_now`](AsyncProc::yield_now), [`spawn_async`](AsyncProc::spawn_async)
/// and [`spawn`](AsyncProc::spawn), [`join`](AsyncProc::join),
/// [`kill`](AsyncProc::kill).
///
/// A process makes one operation at a time: an operation started while
/// another of the same process is pending (two of its futures polled side
/// by side, say by a `join!`) ends the process with an error.
pub struct AsyncProc {
    pub(crate) shared: Rc<Shared>,
}

impl std::fmt::Debug for AsyncProc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncProc")
            .field("id", &self.id())
            .field("pid", &self.shared.sim().pid)
            .finish()
    }
}

/// Ends the operation in progress when dropped.
struct Busy<'a>(&'a Shared);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy.set(false);
    }
}

/// A scheduling point (module docs).
pub(crate) struct PointFuture<'a> {
    shared: &'a Shared,
    handed_over: bool,
}

impl Future for PointFuture<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.handed_over {
            // The loop resumed this process: the point is taken.
            return Poll::Ready(());
        }
        let s = self.shared.sim();
        s.owed_points.set(s.owed_points.get() + 1);
        if s.take_owed() {
            // Went on: what follows is the next step's (under DPOR).
            s.core.touch_global();
            return Poll::Ready(());
        }
        self.handed_over = true;
        Poll::Pending
    }
}

/// A hand-over the loop grants by resuming the process (module docs).
struct Handover<'a> {
    shared: &'a Shared,
    request: Option<Suspend>,
}

impl Future for Handover<'_> {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        match self.request.take() {
            Some(r) => {
                self.shared.handover.set(Some(r));
                Poll::Pending
            }
            None => Poll::Ready(()),
        }
    }
}

/// A wait in the kernel (module docs). Made and first polled in the same
/// step, at the same virtual time.
struct Blocked<'a> {
    shared: &'a Shared,
    /// The wait, until it is taken or cancelled.
    token: Option<WaitToken>,
    deadline: Option<Nanos>,
    /// When the wait began.
    since: Nanos,
    /// Whether the first poll has handed over (the process waits).
    waiting: bool,
}

impl Blocked<'_> {
    /// The wait is over: the process's figures, as `SimCtx::block`'s.
    fn finish(&mut self) {
        let s = self.shared.sim();
        let core = &s.core;
        let since = self.since;
        let mut procs = core.procs.borrow_mut();
        let meta = &mut procs[s.id.0 as usize];
        meta.blocked_on = None;
        meta.blocked_since = None;
        meta.add_blocked(core.now().saturating_sub(since));
    }
}

impl Future for Blocked<'_> {
    type Output = WaitOutcome;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<WaitOutcome> {
        let s = self.shared.sim();
        let core = &s.core;
        let Some(token) = self.token else {
            unreachable!("a finished wait is not polled again");
        };
        if !self.waiting {
            self.waiting = true;
            let since = self.since;
            let op = s.op.get();
            if let Some((sending, target)) = op {
                let kind = if sending {
                    EventKind::SendBlocked { to: target }
                } else {
                    EventKind::ReceiveBlocked { from: target }
                };
                core.emit(s.id, kind);
            }
            let mut procs = core.procs.borrow_mut();
            let meta = &mut procs[s.id.0 as usize];
            meta.blocked_on = op;
            meta.blocked_since = Some(since);
            drop(procs);
            self.shared.handover.set(Some(Suspend::Block {
                deadline: self.deadline,
            }));
            return Poll::Pending;
        }
        let outcome = match core.kernel.wait_take(s.pid, token) {
            Some(outcome) => outcome,
            None => {
                let timed_out =
                    std::mem::take(&mut core.procs.borrow_mut()[s.id.0 as usize].timed_out);
                if !timed_out && !core.is_killed(s.id) {
                    // Woken for nothing: wait on.
                    self.shared.handover.set(Some(Suspend::Block {
                        deadline: self.deadline,
                    }));
                    return Poll::Pending;
                }
                if timed_out {
                    core.emit(s.id, EventKind::TimedOut);
                }
                core.kernel.wait_cancel(s.pid, token)
            }
        };
        self.token = None;
        self.finish();
        Poll::Ready(outcome)
    }
}

impl Drop for Blocked<'_> {
    fn drop(&mut self) {
        // Dropped while waiting (the process was killed, or its code gave
        // the operation up): the wait leaves the kernel.
        if let Some(token) = self.token.take() {
            let s = self.shared.sim();
            let _ = s.core.kernel.wait_cancel(s.pid, token);
            // A process killed or ended mid-wait keeps its figures as a
            // coroutine unwound there does (the end of the run credits a
            // stuck process's wait itself); one that gave the wait up
            // goes on, and is no longer blocked.
            let ended =
                s.core.procs.borrow()[s.id.0 as usize].state == crate::runtime::PState::Done;
            if self.waiting && !ended && !s.core.is_killed(s.id) {
                self.finish();
            }
        }
    }
}

/// The reply port of a call, destroyed when the call ends (or is dropped).
struct ReplyPort<'a> {
    kernel: &'a Kernel,
    pid: Pid,
    name: PortName,
}

impl Drop for ReplyPort<'_> {
    fn drop(&mut self) {
        let _ = self.kernel.destroy(self.pid, self.name);
    }
}

fn expect_sent(outcome: WaitOutcome) -> Result<Sent, SendError> {
    match outcome {
        WaitOutcome::Sent(r) => r,
        WaitOutcome::Received(_) => unreachable!("a send wait completed as a receive"),
    }
}

fn expect_received(outcome: WaitOutcome) -> Result<Message, ReceiveError> {
    match outcome {
        WaitOutcome::Received(r) => r,
        WaitOutcome::Sent(_) => unreachable!("a receive wait completed as a send"),
    }
}

fn timeout_of(wait: Wait) -> Option<Duration> {
    match wait {
        Wait::For(d) => Some(d),
        _ => None,
    }
}

fn send_timeout_of(on_full: OnFull) -> Option<Duration> {
    match on_full {
        OnFull::Timeout(d) => Some(d),
        _ => None,
    }
}

fn may_wait(wait: Wait) -> bool {
    !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO))
}

fn target_of_sources(sources: &[PortName]) -> Target {
    match sources {
        [one] => Target::Name(*one),
        _ => Target::AnyOf(sources.len()),
    }
}

impl AsyncProc {
    fn sim(&self) -> &SimCtx {
        self.shared.sim()
    }

    /// Starts an operation: one at a time (see the type's docs). `None`
    /// when another is pending: the process must end, and the operation
    /// never starts (`std::future::pending`).
    fn enter(&self) -> Option<Busy<'_>> {
        if self.shared.busy.replace(true) {
            self.shared.misuse.set(Some(
                "an async process started an operation while another of its operations was pending",
            ));
            return None;
        }
        Some(Busy(&self.shared))
    }

    /// The scheduling point every operation starts with.
    fn point(&self) -> PointFuture<'_> {
        PointFuture {
            shared: &self.shared,
            handed_over: false,
        }
    }

    fn handover(&self, request: Suspend) -> Handover<'_> {
        Handover {
            shared: &self.shared,
            request: Some(request),
        }
    }

    fn block(&self, token: WaitToken, timeout: Option<Duration>) -> Blocked<'_> {
        let since = self.sim().core.now();
        Blocked {
            shared: &self.shared,
            token: Some(token),
            deadline: timeout.map(|d| since.saturating_add(to_nanos(d))),
            since,
            waiting: false,
        }
    }

    /// An operation that never waits, made by the closure's handle once its
    /// scheduling point is taken here.
    async fn plain<R>(&self, op: impl FnOnce(&Proc) -> R) -> R {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        self.point().await;
        let s = self.sim();
        // The handle's own point is the one just taken.
        s.granted.set(true);
        let r = op(&self.shared.proc);
        s.granted.set(false);
        r
    }

    /// A send, as `Proc::send_with` makes it.
    async fn send_to_dest(
        &self,
        dest: Destination,
        to: Target,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        self.point().await;
        let (p, s) = (&self.shared.proc, self.sim());
        let msg_id = msg.id;
        // `Proc::started`'s event; what a wait reports it waits on (`op`,
        // read only by `Blocked`) is set where the wait starts.
        if s.core.tracing {
            let rights = msg.rights().len() + usize::from(msg.reply().is_some());
            s.core
                .emit(s.id, EventKind::SendStarted { to, msg_id, rights });
        }
        let kernel = &s.core.kernel;
        let mut msg = msg;
        // The kernel's fast paths alone first (`Kernel::send_fast`):
        // nothing changed when they do not apply.
        let fast = match dest {
            Destination::Name(name) => kernel.send_fast(s.pid, name, &mut msg),
            Destination::Task(_) => false,
        };
        let begin = if fast {
            Begin::Done(Ok(Sent::Delivered))
        } else {
            kernel.send_begin(s.pid, dest, msg, on_full, &|| s.waker())
        };
        let r = match begin {
            Begin::Done(r) => r,
            Begin::Blocked(token) => {
                s.op.set(Some((true, to)));
                expect_sent(self.block(token, send_timeout_of(on_full)).await)
            }
        };
        p.sent_done(to, msg_id, &r);
        r
    }

    /// A receive, as `Proc::receive_with` (and the other receives) make
    /// it; `begin` starts it on the kernel's core.
    async fn receive_from_source(
        &self,
        from: Target,
        wait: Wait,
        begin: impl FnOnce(&SimCtx, bool) -> Begin<Result<Message, ReceiveError>>,
    ) -> Result<Message, ReceiveError> {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        self.point().await;
        let (p, s) = (&self.shared.proc, self.sim());
        // `Proc::started`'s event; `op` is set where the wait starts.
        s.core.emit(s.id, EventKind::ReceiveStarted { from });
        // The kernel's answer is matched in a statement of its own, with
        // no await in it: held across the wait below, its 72 bytes would
        // be part of every idle process's future.
        let token = match begin(s, may_wait(wait)) {
            Begin::Blocked(token) => token,
            Begin::Done(r) => {
                let r = match r {
                    Err(ReceiveError::Empty) if wait != Wait::NoWait => Err(ReceiveError::TimedOut),
                    r => r,
                };
                p.received_done(from, r.as_ref().map_err(|e| *e));
                return r;
            }
        };
        s.op.set(Some((false, from)));
        let r = expect_received(self.block(token, timeout_of(wait)).await);
        p.received_done(from, r.as_ref().map_err(|e| *e));
        r
    }

    /// The kernel's side of a call (the blocking layer's `call_with`): a
    /// fresh reply port, the request, the reply.
    async fn call_inner(
        &self,
        dest: PortName,
        mut msg: Message,
        wait: Wait,
    ) -> Result<Message, CallError> {
        let s = self.sim();
        let (kernel, pid) = (&s.core.kernel, s.pid);
        let reply_port = kernel
            .port_allocate(pid, Capacity::Bounded(1))
            .map_err(|_| CallError::Send(SendErrorKind::TaskExited.with(Message::default())))?;
        let reply_port = ReplyPort {
            kernel,
            pid,
            name: reply_port,
        };
        let user_reply = msg.take_reply();
        msg.set_reply(Some(CarriedRight {
            name: reply_port.name,
            disposition: Disposition::MakeSendOnce,
        }));
        let waker = || s.waker();
        let sent = match kernel.send_begin(pid, Destination::Name(dest), msg, OnFull::Block, &waker)
        {
            Begin::Done(r) => r,
            Begin::Blocked(token) => expect_sent(self.block(token, None).await),
        };
        if let Err(e) = sent {
            return Err(CallError::Send(e.map_message(|mut back| {
                back.set_reply(user_reply);
                back
            })));
        }
        let source = Source::Name(reply_port.name);
        let got = match kernel.receive_begin(pid, source, may_wait(wait), &waker) {
            Begin::Done(Err(ReceiveError::Empty)) if wait != Wait::NoWait => {
                Err(ReceiveError::TimedOut)
            }
            Begin::Done(r) => r,
            Begin::Blocked(token) => expect_received(self.block(token, timeout_of(wait)).await),
        };
        match got {
            Ok(reply) if reply.notification() == Some(Notification::SendOnce) => {
                Err(CallError::NoReply)
            }
            Ok(reply) => Ok(reply),
            Err(e) => Err(CallError::Receive(e)),
        }
    }

    // ----- the simulation API -------------------------------------------------

    /// This process's id in the run (spawn order, starting at 0).
    pub fn id(&self) -> ProcId {
        self.shared.proc.id()
    }

    /// The name given at spawn.
    pub fn name(&self) -> String {
        self.shared.proc.name()
    }

    /// The rights this process inherited at spawn, under its own names, in
    /// the order they were given.
    pub fn inherited(&self) -> &[CarriedRight] {
        self.shared.proc.inherited()
    }

    /// The name of the `i`-th inherited right.
    ///
    /// # Panics
    /// If fewer than `i + 1` rights were inherited.
    pub fn right(&self, i: usize) -> PortName {
        self.shared.proc.right(i)
    }

    /// Virtual time since the start of the run.
    pub fn now(&self) -> Duration {
        self.shared.proc.now()
    }

    /// Is busy computing for a duration (fixed, or drawn from a [`Dist`]):
    /// the virtual clock moves on for everyone else meanwhile.
    pub async fn work(&self, d: impl Into<Dist>) {
        self.pause(d.into(), true).await;
    }

    /// Sleeps for a duration (fixed, or drawn from a [`Dist`]).
    pub async fn sleep(&self, d: impl Into<Dist>) {
        self.pause(d.into(), false).await;
    }

    async fn pause(&self, d: Dist, busy: bool) {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        let until = self.shared.proc.pause_begin(d, busy);
        self.handover(Suspend::Timer { until }).await;
    }

    /// A scheduling point without an IPC operation.
    pub async fn yield_now(&self) {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        self.point().await;
    }

    /// A choice among `n` alternatives from the run's seeded RNG
    /// ([`Proc::choose`]).
    pub fn choose(&self, n: usize) -> usize {
        self.shared.proc.choose(n)
    }

    /// A random number in `0..n` from the run's seeded RNG (`n > 0`).
    pub fn random_below(&self, n: u64) -> u64 {
        self.shared.proc.random_below(n)
    }

    /// Gives one of this process's names a label for traces and reports
    /// ([`Proc::label`]).
    pub fn label(&self, name: PortName, label: &str) {
        self.shared.proc.label(name, label);
    }

    /// Declares this process a server ([`Proc::declare_server`]).
    pub fn declare_server(&self) {
        self.shared.proc.declare_server();
    }

    /// Declares whether this process may be left waiting at a receive as a
    /// valid end state from now on ([`Proc::declare_valid_end`]).
    pub fn declare_valid_end(&self, at: bool) {
        self.shared.proc.declare_valid_end(at);
    }

    /// Declares that this process may end with an error
    /// ([`Proc::declare_expect_error`]).
    pub fn declare_expect_error(&self) {
        self.shared.proc.declare_expect_error();
    }

    /// Starts a child async process that inherits `inherit` (as
    /// [`Proc::spawn`]); a scheduling point follows, as there.
    pub async fn spawn_async<F, Fut>(
        &self,
        name: &str,
        inherit: &[CarriedRight],
        make: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(AsyncProc) -> Fut + 'static,
        Fut: Future<Output = ProcResult> + 'static,
    {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        let s = self.sim();
        let id = super::spawn_async_process(&s.core, name, Some((s.id, s.pid)), inherit, make)?;
        self.point().await;
        Ok(id)
    }

    /// Starts a child closure process (on a coroutine) that inherits
    /// `inherit` (as [`Proc::spawn`]); a scheduling point follows.
    pub async fn spawn<F>(
        &self,
        name: &str,
        inherit: &[CarriedRight],
        f: F,
    ) -> Result<ProcId, IpcError>
    where
        F: FnOnce(&Proc) -> ProcResult + 'static,
    {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        let s = self.sim();
        let id =
            crate::process::spawn::spawn_process(&s.core, name, Some((s.id, s.pid)), inherit, f)?;
        self.point().await;
        Ok(id)
    }

    /// Waits until process `id` has ended; returns how it ended
    /// ([`ExitStatus::Stuck`] at once for an id no process has).
    pub async fn join(&self, id: ProcId) -> ExitStatus {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        let core = &self.sim().core;
        core.touch_global();
        self.handover(Suspend::Join(id)).await;
        core.touch_global();
        core.procs
            .borrow()
            .get(id.0 as usize)
            .and_then(|m| m.status())
            .unwrap_or(ExitStatus::Stuck)
    }

    /// Kills process `id` (as a fault would): its kernel task exits, peers
    /// see the documented errors. Killing oneself ends at once.
    pub async fn kill(&self, id: ProcId) {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        let core = &self.sim().core;
        core.touch_global();
        core.kill_requests.borrow_mut().push(id);
        self.handover(Suspend::Yield).await;
    }
}

impl AsyncIpc for AsyncProc {
    fn pid(&self) -> Pid {
        self.sim().pid
    }

    async fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError> {
        self.plain(|p| p.port_allocate(capacity)).await
    }
    async fn port_set_allocate(&self) -> Result<PortName, IpcError> {
        self.plain(|p| p.port_set_allocate()).await
    }
    async fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.port_set_insert(set, member)).await
    }
    async fn port_set_remove(&self, member: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.port_set_remove(member)).await
    }
    async fn make_right(
        &self,
        name: PortName,
        disposition: Disposition,
    ) -> Result<PortName, IpcError> {
        self.plain(|p| p.make_right(name, disposition)).await
    }
    async fn deallocate(&self, name: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.deallocate(name)).await
    }
    async fn destroy(&self, name: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.destroy(name)).await
    }
    async fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError> {
        self.plain(|p| p.mod_refs(name, right, delta)).await
    }
    async fn rights(&self, name: PortName) -> Result<RightSet, IpcError> {
        // No scheduling point, as on a closure: it only reads.
        self.shared.proc.rights(name)
    }
    async fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError> {
        self.shared.proc.port_status(name)
    }
    async fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError> {
        self.plain(|p| p.set_capacity(name, capacity)).await
    }
    async fn request_notification(
        &self,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError> {
        self.plain(|p| p.request_notification(name, kind, notify))
            .await
    }

    // Operations that only forward return the inner future itself (one
    // state machine less in every process that makes them).
    fn send_with(
        &self,
        dest: PortName,
        msg: Message,
        on_full: OnFull,
    ) -> impl Future<Output = Result<Sent, SendError>> {
        self.send_to_dest(Destination::Name(dest), Target::Name(dest), msg, on_full)
    }
    fn receive_with(
        &self,
        source: PortName,
        wait: Wait,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_source(Target::Name(source), wait, move |s, may_wait| {
            // The kernel's fast paths alone first (`Kernel::receive_fast`):
            // nothing changed when they do not apply.
            let waker = || s.waker();
            match s.core.kernel.receive_fast(s.pid, source, may_wait, &waker) {
                FastReceive::Received(m) => Begin::Done(Ok(m)),
                FastReceive::Blocked(token) => Begin::Blocked(token),
                FastReceive::Other => {
                    s.core
                        .kernel
                        .receive_begin(s.pid, Source::Name(source), may_wait, &waker)
                }
            }
        })
    }
    async fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.receive_from_source(target_of_sources(sources), wait, |s, may_wait| {
            s.core
                .kernel
                .receive_begin(s.pid, Source::Any(sources), may_wait, &|| s.waker())
        })
        .await
    }
    async fn call_with(
        &self,
        dest: PortName,
        msg: Message,
        wait: Wait,
    ) -> Result<Message, CallError> {
        let Some(_busy) = self.enter() else {
            return std::future::pending().await;
        };
        self.point().await;
        let p = &self.shared.proc;
        let (to, msg_id) = (Target::Name(dest), msg.id);
        let rights = msg.rights().len() + 1;
        // The whole call counts as waiting on `dest`'s server, in both
        // halves (as on a closure).
        p.started(true, to, EventKind::SendStarted { to, msg_id, rights });
        let r = self.call_inner(dest, msg, wait).await;
        match &r {
            Err(CallError::Send(e)) => p.sent_done(
                to,
                msg_id,
                &Err(SendError::new(e.kind(), Message::default())),
            ),
            Ok(reply) => {
                p.sent_done(to, msg_id, &Ok(Sent::Delivered));
                p.received_done(to, Ok(reply));
            }
            Err(CallError::Receive(e)) => {
                p.sent_done(to, msg_id, &Ok(Sent::Delivered));
                p.received_done(to, Err(*e));
            }
            Err(CallError::NoReply) => {
                p.sent_done(to, msg_id, &Ok(Sent::Delivered));
                p.received_done(to, Err(ReceiveError::SourceDead));
            }
        }
        r
    }

    async fn send_to_with(
        &self,
        pid: Pid,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        self.send_to_dest(Destination::Task(pid), Target::Task(pid.0), msg, on_full)
            .await
    }
    async fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError> {
        self.receive_from_source(Target::Task(pid.0), wait, |s, may_wait| {
            s.core
                .kernel
                .receive_begin(s.pid, Source::Task(pid), may_wait, &|| s.waker())
        })
        .await
    }
    async fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError> {
        self.receive_from_source(Target::AnyTask, wait, |s, may_wait| {
            s.core
                .kernel
                .receive_begin(s.pid, Source::AnyTask, may_wait, &|| s.waker())
        })
        .await
    }
    async fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError> {
        self.plain(|p| p.set_link_capacity(pid, capacity)).await
    }

    async fn mailbox_create(
        &self,
        name: &str,
        config: MailboxConfig,
    ) -> Result<PortName, IpcError> {
        self.plain(|p| p.mailbox_create(name, config)).await
    }
    async fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError> {
        self.plain(|p| p.mailbox_open(name)).await
    }
    async fn mailbox_grant(
        &self,
        mailbox: PortName,
        pid: Pid,
        access: Access,
    ) -> Result<(), IpcError> {
        self.plain(|p| p.mailbox_grant(mailbox, pid, access)).await
    }
    async fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.mailbox_destroy(mailbox)).await
    }
    async fn register(&self, service: &str, right: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.register(service, right)).await
    }
    async fn unregister(&self, service: &str) -> Result<(), IpcError> {
        self.plain(|p| p.unregister(service)).await
    }
    async fn look_up(&self, service: &str) -> Result<PortName, IpcError> {
        self.plain(|p| p.look_up(service)).await
    }

    async fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        self.plain(|p| p.peek(source)).await
    }
    async fn receive_matching_with(
        &self,
        source: PortName,
        filter: &Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        self.receive_from_source(Target::Name(source), wait, |s, may_wait| {
            s.core.kernel.receive_matching_begin(
                s.pid,
                Source::Name(source),
                filter,
                may_wait,
                &|| s.waker(),
            )
        })
        .await
    }
    async fn close(&self, name: PortName) -> Result<(), IpcError> {
        self.plain(|p| p.close(name)).await
    }
    async fn select_first_with(
        &self,
        sources: &[PortName],
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        self.receive_from_source(target_of_sources(sources), wait, |s, may_wait| {
            s.core
                .kernel
                .select_first_begin(s.pid, sources, may_wait, &|| s.waker())
        })
        .await
    }
}
