//! The blocking layer: one [`Ipc`] implementation for every runner of the core.
//!
//! The core never waits. A runner — OS threads ([`Task`](crate::Task)) or the
//! simulator's processes — implements [`Blocker`]: "how do I wait for this
//! token, for at most this long?". Everything else (name lookups, rights,
//! queues, RPC, direct links) is written once, here, so a thread and a
//! simulated process cannot drift apart in behaviour.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
//! use mkipc_kernel::runtime::Blocker;
//!
//! // Code generic over a runner: every `Blocker` is an `Ipc`.
//! fn echo<B: Blocker>(b: &B) -> Option<u64> {
//!     let port = b.port_allocate(Capacity::Bounded(1)).ok()?;
//!     let to = b.make_send(port).ok()?;
//!     b.send(to, Message::from_u64(1, 5)).ok()?;
//!     b.receive(port).ok()?.as_u64()
//! }
//! let kernel = Kernel::new();
//! assert_eq!(echo(&kernel.spawn_task()), Some(5)); // a thread-backed `Task`
//! ```

use std::time::Duration;

use crate::capacity::{Capacity, OnFull, Sent, Wait};
use crate::core::{Begin, Destination, Kernel, LaneSend, Source, WaitOutcome, WaitToken, Waker};
use crate::error::{
    CallError, IpcError, ReceiveError, SendError, SendErrorKind, SmallReceiveError,
};
use crate::ipc::{Ipc, MailboxConfig, PortStatus};
use crate::message::{Message, Notification, NotifyKind, SmallMessage};
use crate::name::{Access, Pid, PortName, RightKind, RightSet};
use crate::Disposition;

/// How a runner waits for the kernel's non-blocking core.
///
/// Implement this and the runner gets the whole [`Ipc`] API.
pub trait Blocker {
    /// The kernel this task lives in.
    fn kernel(&self) -> &Kernel;
    /// The task's pid in that kernel.
    fn task_pid(&self) -> Pid;
    /// The waker the core calls when one of this task's waits completes.
    fn waker(&self) -> Waker;
    /// Waits until the wait `token` completes, or `timeout` passes (then cancels
    /// it with [`Kernel::wait_cancel`]); returns the outcome. `None` waits forever.
    fn block(&self, token: WaitToken, timeout: Option<Duration>) -> WaitOutcome;
    /// Called at the start of every IPC operation with its name: the
    /// simulator's scheduling point. Does nothing by default.
    fn before_ipc(&self, _op: &'static str) {}
    /// Whether plain sends and receives of this task may take a port's lane
    /// outside the kernel lock (`core/lane.rs`). The thread-backed
    /// [`Task`](crate::Task) says yes; a runner that must replay runs
    /// event for event (the simulator) keeps the default: everything it
    /// does then goes through the lock in the order it calls.
    fn uses_lanes(&self) -> bool {
        false
    }
    /// Waits out a send the core started ([`Kernel::send_begin`]): its
    /// result, or, if the core left a wait, [`Blocker::block`] on it (with
    /// the send's timeout, if it has one). For a runner that makes the
    /// core's calls itself around its own bookkeeping (the simulator's
    /// plain operations), so that the waiting is this one.
    fn finish_send(
        &self,
        begin: Begin<Result<Sent, SendError>>,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        match begin {
            Begin::Done(r) => r,
            Begin::Blocked(token) => expect_sent(self.block(token, send_timeout_of(on_full))),
        }
    }
    /// Waits out a receive the core started ([`Kernel::receive_begin`] and
    /// the like), as [`Blocker::finish_send`] a send: a timed receive that
    /// could not start says `TimedOut`, not `Empty`.
    fn finish_receive(
        &self,
        begin: Begin<Result<Message, ReceiveError>>,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        match begin {
            Begin::Done(Err(ReceiveError::Empty)) if wait != Wait::NoWait => {
                Err(ReceiveError::TimedOut)
            }
            Begin::Done(r) => r,
            Begin::Blocked(token) => {
                let timeout = match wait {
                    Wait::For(d) => Some(d),
                    _ => None,
                };
                expect_received(self.block(token, timeout))
            }
        }
    }
}

/// Emits the `tracing` event every IPC operation gets (target `mkipc::ipc`):
/// task, operation, arguments (names, capacity...) and outcome. Without a
/// subscriber this is one relaxed atomic load.
fn traced<T: std::fmt::Debug, E: std::fmt::Debug>(
    op: &'static str,
    pid: Pid,
    args: &dyn std::fmt::Debug,
    result: Result<T, E>,
) -> Result<T, E> {
    tracing::trace!(target: "mkipc::ipc", %pid, op, ?args, outcome = ?result);
    result
}

fn send_timeout_of(on_full: OnFull) -> Option<Duration> {
    match on_full {
        OnFull::Timeout(d) => Some(d),
        _ => None,
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

impl<B: Blocker> BlockingExt for B {}

/// The two generic primitives every blocking operation goes through: the
/// core's `send_begin`/`receive_begin` (its fast path, else its general
/// path under the same lock), then a wait if the core left one.
trait BlockingExt: Blocker {
    fn send_via(
        &self,
        dest: Destination,
        mut msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        if let (true, Destination::Name(name)) = (self.uses_lanes(), dest) {
            let spin = on_full == OnFull::Block;
            match self
                .kernel()
                .lane_send(self.task_pid(), name, &mut msg, spin)
            {
                LaneSend::Sent => return Ok(Sent::Delivered),
                LaneSend::Locked { regrant: false } => {}
                LaneSend::Locked { regrant: true } => {
                    let k = self.kernel();
                    if k.send_fast_granting(self.task_pid(), name, &mut msg) {
                        return Ok(Sent::Delivered);
                    }
                }
            }
        }
        self.send_locked(dest, msg, on_full)
    }

    /// The general path of a send: the core's `send_begin`, then a wait if
    /// it left one.
    fn send_locked(
        &self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let begin = self
            .kernel()
            .send_begin(self.task_pid(), dest, msg, on_full, &|| self.waker());
        self.finish_send(begin, on_full)
    }

    /// A typed send (`Ipc::send_small_with`): the lane takes the bytes as
    /// they are; on a miss the `Message` is built and takes the path
    /// `send_via` would have taken after the same miss. Inlined into the
    /// caller's loop, its miss path out of line.
    #[inline(always)]
    fn send_small_via(
        &self,
        dest: PortName,
        id: u32,
        body: &[u8],
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let regrant = if self.uses_lanes() {
            let spin = on_full == OnFull::Block;
            match self
                .kernel()
                .lane_send_small(self.task_pid(), dest, id, body, spin)
            {
                LaneSend::Sent => return Ok(Sent::Delivered),
                LaneSend::Locked { regrant } => regrant,
            }
        } else {
            false
        };
        self.send_small_missed(dest, Message::new(id, body), on_full, regrant)
    }

    /// A typed send the lane did not take, as its `Message`.
    #[inline(never)]
    fn send_small_missed(
        &self,
        dest: PortName,
        mut msg: Message,
        on_full: OnFull,
        regrant: bool,
    ) -> Result<Sent, SendError> {
        if regrant
            && self
                .kernel()
                .send_fast_granting(self.task_pid(), dest, &mut msg)
        {
            return Ok(Sent::Delivered);
        }
        self.send_locked(Destination::Name(dest), msg, on_full)
    }

    /// A typed receive (`Ipc::receive_small_with`): the lane's entry is
    /// copied straight into a `SmallMessage`; otherwise the general path,
    /// its `Message` converted. Inlined into the caller's loop (so the
    /// `SmallMessage` can stay in registers), its miss path out of line.
    #[inline(always)]
    fn receive_small_via(
        &self,
        source: PortName,
        wait: Wait,
    ) -> Result<SmallMessage, SmallReceiveError> {
        if self.uses_lanes() {
            let spin = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
            let park = wait == Wait::Forever;
            match self.kernel().lane_receive::<Result<SmallMessage, Message>>(
                self.task_pid(),
                source,
                spin,
                park,
            ) {
                Some(Ok(small)) => return Ok(small),
                Some(Err(m)) => return Err(SmallReceiveError::NotSmall(Box::new(m))),
                None => {}
            }
        }
        self.receive_small_missed(source, wait)
    }

    /// A typed receive the lane did not serve: the general path.
    #[inline(never)]
    fn receive_small_missed(
        &self,
        source: PortName,
        wait: Wait,
    ) -> Result<SmallMessage, SmallReceiveError> {
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let begin =
            self.kernel()
                .receive_begin(self.task_pid(), Source::Name(source), may_wait, &|| {
                    self.waker()
                });
        SmallMessage::from_message(self.finish_receive(begin, wait)?)
            .map_err(|m| SmallReceiveError::NotSmall(Box::new(m)))
    }

    fn receive_via(&self, source: Source<'_>, wait: Wait) -> Result<Message, ReceiveError> {
        if let (true, Source::Name(name)) = (self.uses_lanes(), source) {
            let spin = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
            let park = wait == Wait::Forever;
            if let Some(message) = self
                .kernel()
                .lane_receive(self.task_pid(), name, spin, park)
            {
                return Ok(message);
            }
        }
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let begin = self
            .kernel()
            .receive_begin(self.task_pid(), source, may_wait, &|| self.waker());
        self.finish_receive(begin, wait)
    }

    /// A priority select (no fast path: it has several sources).
    fn select_first_via(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let begin = self
            .kernel()
            .select_first_begin(self.task_pid(), sources, may_wait, &|| self.waker());
        self.finish_receive(begin, wait)
    }

    /// A selective receive: no fast path (it takes the head).
    fn receive_matching_via(
        &self,
        source: Source<'_>,
        filter: &crate::Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let begin = self.kernel().receive_matching_begin(
            self.task_pid(),
            source,
            filter,
            may_wait,
            &|| self.waker(),
        );
        self.finish_receive(begin, wait)
    }
}

impl<B: Blocker> Ipc for B {
    fn pid(&self) -> Pid {
        self.task_pid()
    }

    fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError> {
        self.before_ipc("port_allocate");
        traced(
            "port_allocate",
            self.task_pid(),
            &(capacity),
            self.kernel().port_allocate(self.task_pid(), capacity),
        )
    }
    fn port_set_allocate(&self) -> Result<PortName, IpcError> {
        self.before_ipc("port_set_allocate");
        traced(
            "port_set_allocate",
            self.task_pid(),
            &(),
            self.kernel().port_set_allocate(self.task_pid()),
        )
    }
    fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError> {
        self.before_ipc("port_set_insert");
        traced(
            "port_set_insert",
            self.task_pid(),
            &(set, member),
            self.kernel().port_set_insert(self.task_pid(), set, member),
        )
    }
    fn port_set_remove(&self, member: PortName) -> Result<(), IpcError> {
        self.before_ipc("port_set_remove");
        traced(
            "port_set_remove",
            self.task_pid(),
            &(member),
            self.kernel().port_set_remove(self.task_pid(), member),
        )
    }
    fn make_right(&self, name: PortName, disposition: Disposition) -> Result<PortName, IpcError> {
        self.before_ipc("make_right");
        traced(
            "make_right",
            self.task_pid(),
            &(name, disposition),
            self.kernel().make_right(self.task_pid(), name, disposition),
        )
    }
    fn deallocate(&self, name: PortName) -> Result<(), IpcError> {
        self.before_ipc("deallocate");
        traced(
            "deallocate",
            self.task_pid(),
            &(name),
            self.kernel().deallocate(self.task_pid(), name),
        )
    }
    fn destroy(&self, name: PortName) -> Result<(), IpcError> {
        self.before_ipc("destroy");
        traced(
            "destroy",
            self.task_pid(),
            &(name),
            self.kernel().destroy(self.task_pid(), name),
        )
    }
    fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError> {
        self.before_ipc("mod_refs");
        traced(
            "mod_refs",
            self.task_pid(),
            &(name, right, delta),
            self.kernel().mod_refs(self.task_pid(), name, right, delta),
        )
    }
    fn rights(&self, name: PortName) -> Result<RightSet, IpcError> {
        traced(
            "rights",
            self.task_pid(),
            &(name),
            self.kernel().rights(self.task_pid(), name),
        )
    }
    fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError> {
        traced(
            "port_status",
            self.task_pid(),
            &(name),
            self.kernel().port_status(self.task_pid(), name),
        )
    }
    fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError> {
        self.before_ipc("set_capacity");
        traced(
            "set_capacity",
            self.task_pid(),
            &(name, capacity),
            self.kernel().set_capacity(self.task_pid(), name, capacity),
        )
    }
    fn request_notification(
        &self,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError> {
        self.before_ipc("request_notification");
        self.kernel()
            .request_notification(self.task_pid(), name, kind, notify)
    }

    fn send_with(&self, dest: PortName, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        self.before_ipc("send");
        self.send_via(Destination::Name(dest), msg, on_full)
    }
    fn close(&self, name: PortName) -> Result<(), IpcError> {
        self.before_ipc("close");
        traced(
            "close",
            self.task_pid(),
            &(name),
            self.kernel().close(self.task_pid(), name),
        )
    }
    fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        self.before_ipc("peek");
        traced(
            "peek",
            self.task_pid(),
            &(source),
            self.kernel().peek(self.task_pid(), Source::Name(source)),
        )
    }
    fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError> {
        self.before_ipc("receive");
        self.receive_via(Source::Name(source), wait)
    }
    #[inline(always)]
    fn send_small_with(
        &self,
        dest: PortName,
        id: u32,
        body: &[u8],
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        self.before_ipc("send");
        self.send_small_via(dest, id, body, on_full)
    }
    #[inline(always)]
    fn receive_small_with(
        &self,
        source: PortName,
        wait: Wait,
    ) -> Result<SmallMessage, SmallReceiveError> {
        self.before_ipc("receive");
        self.receive_small_via(source, wait)
    }
    fn receive_matching_with(
        &self,
        source: PortName,
        filter: &crate::Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        self.before_ipc("receive_matching");
        self.receive_matching_via(Source::Name(source), filter, wait)
    }
    fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.before_ipc("select");
        self.receive_via(Source::Any(sources), wait)
    }
    fn select_first_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.before_ipc("select_first");
        self.select_first_via(sources, wait)
    }
    fn call_with(&self, dest: PortName, msg: Message, wait: Wait) -> Result<Message, CallError> {
        self.before_ipc("call");
        let pid = self.task_pid();
        let kernel = self.kernel();
        // A fresh reply port per call: the send-once right we hand out can be
        // used exactly once, and if the server drops it we hear about it.
        let reply_port = kernel
            .port_allocate(pid, Capacity::Bounded(1))
            .map_err(|_| CallError::Send(SendErrorKind::TaskExited.with(Message::default())))?;
        let mut msg = msg;
        let user_reply = msg.take_reply();
        msg.set_reply(Some(crate::CarriedRight {
            name: reply_port,
            disposition: Disposition::MakeSendOnce,
        }));
        let result = match self.send_via(Destination::Name(dest), msg, OnFull::Block) {
            Err(e) => Err(CallError::Send(e.map_message(|mut back| {
                back.set_reply(user_reply);
                back
            }))),
            Ok(_) => match self.receive_via(Source::Name(reply_port), wait) {
                Ok(reply) if reply.notification() == Some(Notification::SendOnce) => {
                    Err(CallError::NoReply)
                }
                Ok(reply) => Ok(reply),
                Err(e) => Err(CallError::Receive(e)),
            },
        };
        let _ = kernel.destroy(pid, reply_port);
        result
    }

    fn send_to_with(&self, pid: Pid, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        self.before_ipc("send_to");
        self.send_via(Destination::Task(pid), msg, on_full)
    }
    fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError> {
        self.before_ipc("receive_from");
        self.receive_via(Source::Task(pid), wait)
    }
    fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError> {
        self.before_ipc("receive_from_any");
        self.receive_via(Source::AnyTask, wait)
    }
    fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError> {
        self.before_ipc("set_link_capacity");
        self.kernel()
            .set_link_capacity(self.task_pid(), pid, capacity)
    }

    fn mailbox_create(&self, name: &str, config: MailboxConfig) -> Result<PortName, IpcError> {
        self.before_ipc("mailbox_create");
        let args = (name, config.capacity, config.owner);
        traced(
            "mailbox_create",
            self.task_pid(),
            &args,
            self.kernel().mailbox_create(self.task_pid(), name, config),
        )
    }
    fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError> {
        self.before_ipc("mailbox_open");
        traced(
            "mailbox_open",
            self.task_pid(),
            &(name),
            self.kernel().mailbox_open(self.task_pid(), name),
        )
    }
    fn mailbox_grant(&self, mailbox: PortName, pid: Pid, access: Access) -> Result<(), IpcError> {
        self.before_ipc("mailbox_grant");
        self.kernel()
            .mailbox_grant(self.task_pid(), mailbox, pid, access)
    }
    fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError> {
        self.before_ipc("mailbox_destroy");
        traced(
            "mailbox_destroy",
            self.task_pid(),
            &(mailbox),
            self.kernel().mailbox_destroy(self.task_pid(), mailbox),
        )
    }
    fn register(&self, service: &str, right: PortName) -> Result<(), IpcError> {
        self.before_ipc("register");
        traced(
            "register",
            self.task_pid(),
            &(service, right),
            self.kernel().register(self.task_pid(), service, right),
        )
    }
    fn unregister(&self, service: &str) -> Result<(), IpcError> {
        self.before_ipc("unregister");
        traced(
            "unregister",
            self.task_pid(),
            &(service),
            self.kernel().unregister(self.task_pid(), service),
        )
    }
    fn look_up(&self, service: &str) -> Result<PortName, IpcError> {
        self.before_ipc("look_up");
        traced(
            "look_up",
            self.task_pid(),
            &(service),
            self.kernel().look_up(self.task_pid(), service),
        )
    }
}
