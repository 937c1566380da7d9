//! The checker's [`Ctx`]: operations on the non-blocking core, which never
//! wait. A send or receive that would block leaves a wait in the kernel and
//! answers [`Op::Pending`]; the search then polls the wait.

use std::cell::Cell;
use std::time::Duration;

use mkipc_kernel::runtime::{Begin, Blocker, Destination, Source, WaitOutcome, WaitToken, Waker};
use mkipc_kernel::{
    CarriedRight, IpcError, Kernel, Message, NotifyKind, OnFull, Pid, PortName, ReceiveError,
    SendError, Sent, Wait,
};

use super::world::{new_slot, Slot};
use crate::machine::{Ctx, Machine, Op};
use crate::time::to_nanos;
use crate::trace::Target;

/// The IPC handle a machine gets from [`Ctx::ipc`] in the checker: every
/// operation that completes at once works; one that would block is
/// cancelled, fails, and makes the process fail (a machine waits only
/// through [`Ctx::send`] and [`Ctx::receive`]).
pub struct CheckIpc<'a> {
    kernel: &'a Kernel,
    pid: Pid,
    waker: &'a Waker,
    blocked: Cell<bool>,
}

impl Blocker for CheckIpc<'_> {
    fn kernel(&self) -> &Kernel {
        self.kernel
    }
    fn task_pid(&self) -> Pid {
        self.pid
    }
    fn waker(&self) -> Waker {
        self.waker.clone()
    }
    fn block(&self, token: WaitToken, _timeout: Option<Duration>) -> WaitOutcome {
        self.blocked.set(true);
        self.kernel.wait_cancel(self.pid, token)
    }
}

/// The most choices one step may make (each a branch of the search).
pub(crate) const MAX_CHOICES: usize = 64;

/// The operation a step left pending.
pub(crate) struct Pending {
    pub token: WaitToken,
    pub deadline: Option<u64>,
    pub op: (bool, Target),
    /// A receive from several names: the names (for the partial-order
    /// reduction's lazy blocking, module `por`).
    pub sources: Vec<PortName>,
}

/// The IPC operation a step started through [`Ctx::send`] or
/// [`Ctx::receive`], as the partial-order reduction judges it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    /// A send (else a receive).
    pub send: bool,
    /// The one name it names (`None`: several sources, or a task).
    pub name: Option<PortName>,
    /// Untimed and blocking (`OnFull::Block`, `Wait::Forever`), and the
    /// message carries no right.
    pub plain: bool,
}

/// The context of one step of one process.
pub struct CheckCtx<'a, M> {
    ipc: CheckIpc<'a>,
    now: u64,
    /// The choices to make, in order (missing ones: 0).
    script: &'a [u32],
    /// The choices made: (alternatives, the one taken).
    pub(crate) made: Vec<(u32, u32)>,
    /// A scripted choice was out of range (a trail that does not fit).
    pub(crate) bad_choice: bool,
    /// Whether the step used [`Ctx::ipc`] (any operation there).
    pub(crate) ipc_used: Cell<bool>,
    /// The operation it started, if any.
    pub(crate) started: Option<Started>,
    /// The names [`Ctx::mailbox_open`] gave (not counted in `ipc_used`:
    /// the engine judges whether each open was local).
    pub(crate) opened: Vec<PortName>,
    pub(crate) pending: Option<Pending>,
    /// Set when the machine broke the rules (the process then fails).
    pub(crate) misuse: Option<String>,
    /// Set when the step did something the checker cannot explore.
    pub(crate) unsupported: Option<String>,
    pub(crate) spawned: Vec<Slot<M>>,
    /// What the step did, when replaying.
    pub(crate) log: Option<Vec<String>>,
    /// The sender of the message the step received, if it received one
    /// (a deadlock report's hint: module `explain`).
    pub(crate) got_from: Option<Pid>,
}

impl<'a, M> CheckCtx<'a, M> {
    pub(crate) fn new(
        kernel: &'a Kernel,
        pid: Pid,
        waker: &'a Waker,
        now: u64,
        script: &'a [u32],
        log: bool,
    ) -> CheckCtx<'a, M> {
        CheckCtx {
            ipc: CheckIpc {
                kernel,
                pid,
                waker,
                blocked: Cell::new(false),
            },
            now,
            script,
            made: Vec::new(),
            bad_choice: false,
            ipc_used: Cell::new(false),
            started: None,
            opened: Vec::new(),
            pending: None,
            misuse: None,
            unsupported: None,
            spawned: Vec::new(),
            log: log.then(Vec::new),
            got_from: None,
        }
    }

    /// Whether an operation through [`Ctx::ipc`] tried to block.
    pub(crate) fn blocked_outside(&self) -> bool {
        self.ipc.blocked.get()
    }

    fn note(&mut self, f: impl FnOnce() -> String) {
        if let Some(log) = &mut self.log {
            log.push(f());
        }
    }

    /// A second operation while one is pending is a machine error.
    fn check_idle(&mut self) -> bool {
        if self.pending.is_some() {
            self.misuse = Some(
                "the machine started an operation while another was pending (one per step)"
                    .to_string(),
            );
            return false;
        }
        true
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
        Source::Any(names) => Target::AnyOf(names.len()),
        Source::Task(p) => Target::Task(p.0),
        Source::AnyTask => Target::AnyTask,
    }
}

impl<'a, M: Machine> Ctx<M> for CheckCtx<'a, M> {
    type Ipc = CheckIpc<'a>;

    fn ipc(&self) -> &CheckIpc<'a> {
        self.ipc_used.set(true);
        &self.ipc
    }

    fn pid(&self) -> Pid {
        self.ipc.pid
    }

    fn port_allocate(&mut self, capacity: mkipc_kernel::Capacity) -> Result<PortName, IpcError> {
        let r = mkipc_kernel::Ipc::port_allocate(&self.ipc, capacity);
        if r.is_err() {
            self.ipc_used.set(true);
        }
        r
    }

    fn mailbox_open(&mut self, name: &str) -> Result<PortName, IpcError> {
        let r = mkipc_kernel::Ipc::mailbox_open(&self.ipc, name);
        match r {
            Ok(n) => self.opened.push(n),
            Err(_) => self.ipc_used.set(true),
        }
        r
    }

    fn now(&self) -> Duration {
        Duration::from_nanos(self.now)
    }

    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> Op<Result<Sent, SendError>> {
        if !self.check_idle() {
            return Op::Done(Err(
                mkipc_kernel::SendErrorKind::InvalidDestination.with(msg)
            ));
        }
        let id = msg.id;
        self.started = Some(Started {
            send: true,
            name: match dest {
                Destination::Name(n) => Some(n),
                Destination::Task(_) => None,
            },
            plain: on_full == OnFull::Block && !msg.carries_rights(),
        });
        let (kernel, pid, waker) = (self.ipc.kernel, self.ipc.pid, self.ipc.waker);
        // What the blocking layer's `send_via` does, without the wait.
        match kernel.send_begin(pid, dest, msg, on_full, &|| waker.clone()) {
            Begin::Done(r) => {
                self.note(|| {
                    format!(
                        "send #{id} to {dest:?} ({on_full:?}): {:?}",
                        r.as_ref().map_err(|e| e.kind())
                    )
                });
                Op::Done(r)
            }
            Begin::Blocked(token) => {
                let deadline = match on_full {
                    OnFull::Timeout(d) => Some(self.now.saturating_add(to_nanos(d))),
                    _ => None,
                };
                self.note(|| format!("send #{id} to {dest:?} ({on_full:?}): blocks"));
                self.pending = Some(Pending {
                    token,
                    deadline,
                    op: (true, target_of_dest(dest)),
                    sources: Vec::new(),
                });
                Op::Pending
            }
        }
    }

    fn receive(&mut self, source: Source<'_>, wait: Wait) -> Op<Result<Message, ReceiveError>> {
        if !self.check_idle() {
            return Op::Done(Err(ReceiveError::InvalidName));
        }
        self.started = Some(Started {
            send: false,
            name: match source {
                Source::Name(n) => Some(n),
                _ => None,
            },
            plain: wait == Wait::Forever,
        });
        let (kernel, pid, waker) = (self.ipc.kernel, self.ipc.pid, self.ipc.waker);
        // What the blocking layer's `receive_via` does, without the wait.
        let may_wait = !matches!(wait, Wait::NoWait | Wait::For(Duration::ZERO));
        let r = match kernel.receive_begin(pid, source, may_wait, &|| waker.clone()) {
            Begin::Done(Err(ReceiveError::Empty)) if wait != Wait::NoWait => {
                Err(ReceiveError::TimedOut)
            }
            Begin::Done(r) => r,
            Begin::Blocked(token) => {
                let deadline = match wait {
                    Wait::For(d) => Some(self.now.saturating_add(to_nanos(d))),
                    _ => None,
                };
                self.note(|| format!("receive from {source:?} ({wait:?}): blocks"));
                self.pending = Some(Pending {
                    token,
                    deadline,
                    op: (false, target_of_source(source)),
                    sources: match source {
                        Source::Any(names) => names.to_vec(),
                        _ => Vec::new(),
                    },
                });
                return Op::Pending;
            }
        };
        if matches!(&r, Ok(m) if m.carries_rights()) {
            if let Some(st) = &mut self.started {
                st.plain = false; // it took rights into this task's space
            }
        }
        if let Ok(m) = &r {
            self.got_from = m.sender();
        }
        self.note(|| {
            format!(
                "receive from {source:?} ({wait:?}): {}",
                describe_received(&r)
            )
        });
        Op::Done(r)
    }

    fn selects_in_one_step(&self) -> bool {
        // A step is atomic here: the tries a select makes before it waits
        // are reads no other process can come between.
        true
    }

    fn request_room(&mut self, queue: PortName, notify: PortName) -> bool {
        // Straight to the kernel, not through `Ctx::ipc`: with the receive
        // of `Ctx::receive_or_room` it is one operation, which only blocks
        // when no arm can go (a local step, for the lazy blocking of module
        // `por`: a blocking that is not kept leaves no request behind).
        let (kernel, pid) = (self.ipc.kernel, self.ipc.pid);
        let asked = kernel.request_notification(pid, queue, NotifyKind::SendPossible, notify);
        self.note(|| format!("send-possible request on {queue:?}: {asked:?}"));
        asked.is_ok()
    }

    fn choose(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        if self.made.len() >= MAX_CHOICES || n > u32::MAX as usize {
            if self.unsupported.is_none() {
                self.unsupported = Some(format!(
                    "a machine made more than {MAX_CHOICES} choices in one step, or a choice \
                     among more than 2^32 alternatives (Ctx::choose): unsupported by the \
                     stateful checker"
                ));
            }
            return 0;
        }
        let mut c = self.script.get(self.made.len()).copied().unwrap_or(0);
        if c as usize >= n {
            self.bad_choice = true;
            c = 0;
        }
        self.made.push((n as u32, c));
        self.note(|| format!("chooses {c} of {n}"));
        c as usize
    }

    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> M + Send + 'static,
    {
        let slot = new_slot(self.ipc.kernel, self.ipc.pid, name, inherit, make);
        self.note(|| {
            format!(
                "spawn {name}: {}",
                if slot.is_ok() { "ok" } else { "failed" }
            )
        });
        self.spawned.push(slot?);
        Ok(())
    }
}

pub(crate) fn describe_received(r: &Result<Message, ReceiveError>) -> String {
    match r {
        Ok(m) => match m.as_u64() {
            Some(v) => format!("message #{} ({v})", m.id),
            None => format!("message #{} ({} bytes)", m.id, m.body.len()),
        },
        Err(e) => format!("error: {e}"),
    }
}

pub(crate) fn describe_outcome(o: &WaitOutcome) -> String {
    match o {
        WaitOutcome::Sent(r) => format!("send completed: {:?}", r.as_ref().map_err(|e| e.kind())),
        WaitOutcome::Received(r) => format!("receive completed: {}", describe_received(r)),
    }
}
