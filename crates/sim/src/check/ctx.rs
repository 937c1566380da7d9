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
/// [`Ctx::receive`] (its last, when it made several), as the
/// partial-order reduction judges it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Started {
    /// A send (else a receive).
    pub send: bool,
    /// The one name it names (`None`: several sources, or a task).
    pub name: Option<PortName>,
    /// Untimed and blocking (`OnFull::Block`, `Wait::Forever`), and the
    /// message carries no right.
    pub plain: bool,
    /// A try (`OnFull::Fail` carrying no right, `Wait::NoWait` or a zero
    /// wait): whether it went (sent, or took a message) rather than find
    /// no room or no message; `None` for any other operation, and for a
    /// try that failed otherwise.
    pub went: Option<bool>,
    /// The operations the step made before this one: tries that did not
    /// go, as a `select` makes them arm after arm (module `por`).
    pub passed: Passed,
}

/// The names a step's tries found no room or no message on, and those it
/// asked for room on ([`CheckCtx::missed`]).
#[derive(Default, Debug)]
pub(crate) struct Missed {
    pub sends: Vec<PortName>,
    pub receives: Vec<PortName>,
    pub room: Vec<PortName>,
}

impl Missed {
    /// Whether a wait for a message on `sources` covers every try that did
    /// not go: each receive's names among the sources, each send's with a
    /// room request out. Then the wait ends when one of them could go, as
    /// a `select`'s does, and blocking lazily (module `por`) only delays
    /// the step to when one can; a wait that leaves a try out would, taken
    /// later, take that try's arm instead.
    pub(crate) fn covered_by(&self, sources: &[PortName]) -> bool {
        self.receives.iter().all(|n| sources.contains(n))
            && self.sends.iter().all(|n| self.room.contains(n))
    }
}

/// The tries a step made, and that did not go, before its last operation
/// ([`Started::passed`]): what a guarded choice looked at and passed over.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Passed {
    /// Each: a send that found no room (else a receive that found no
    /// message), on this one name.
    pub tries: [Option<(bool, PortName)>; Passed::MAX],
    /// An earlier operation was something else (or there were more than
    /// [`Passed::MAX`]): the reduction cannot judge the step.
    pub unjudged: bool,
}

impl Passed {
    /// The most tries a step's footprint keeps.
    pub const MAX: usize = 3;

    /// Notes the operation `prev`, which the step made before another.
    fn note(&mut self, prev: Started) {
        self.unjudged |= prev.passed.unjudged;
        for t in prev.passed.tries.into_iter().flatten() {
            self.push(t);
        }
        match (prev.went, prev.name) {
            (Some(false), Some(name)) => self.push((prev.send, name)),
            _ => self.unjudged = true,
        }
    }

    fn push(&mut self, t: (bool, PortName)) {
        match self.tries.iter_mut().find(|s| s.is_none()) {
            Some(slot) => *slot = Some(t),
            None => self.unjudged = true,
        }
    }
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
    /// The names its tries found no room on (sends) or no message on
    /// (receives), and those it asked for room on ([`Ctx::request_room`]):
    /// whether a wait it ends in covers them (module `por`, lazy blocking).
    pub(crate) missed: Missed,
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
            missed: Missed::default(),
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

    /// What the step did before the operation it starts now
    /// ([`Started::passed`]).
    fn passed_before(&mut self) -> Passed {
        let mut passed = Passed::default();
        if let Some(prev) = self.started.take() {
            passed.note(prev);
        }
        passed
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
        let is_try = on_full == OnFull::Fail && !msg.carries_rights();
        let passed = self.passed_before();
        self.started = Some(Started {
            send: true,
            name: match dest {
                Destination::Name(n) => Some(n),
                Destination::Task(_) => None,
            },
            plain: on_full == OnFull::Block && !msg.carries_rights(),
            went: None,
            passed,
        });
        let (kernel, pid, waker) = (self.ipc.kernel, self.ipc.pid, self.ipc.waker);
        // What the blocking layer's `send_via` does, without the wait.
        match kernel.send_begin(pid, dest, msg, on_full, &|| waker.clone()) {
            Begin::Done(r) => {
                if let Some(st) = self.started.as_mut().filter(|_| is_try) {
                    st.went = match &r {
                        Ok(_) => Some(true),
                        Err(e) if e.kind() == mkipc_kernel::SendErrorKind::Full => Some(false),
                        Err(_) => None,
                    };
                }
                if matches!(&r, Err(e) if e.kind() == mkipc_kernel::SendErrorKind::Full) {
                    if let Destination::Name(n) = dest {
                        self.missed.sends.push(n);
                    }
                }
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
        let passed = self.passed_before();
        self.started = Some(Started {
            send: false,
            name: match source {
                Source::Name(n) => Some(n),
                _ => None,
            },
            plain: wait == Wait::Forever,
            went: None,
            passed,
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
        if matches!(r, Err(ReceiveError::Empty | ReceiveError::TimedOut)) {
            match source {
                Source::Name(n) => self.missed.receives.push(n),
                Source::Any(names) => self.missed.receives.extend_from_slice(names),
                Source::Task(_) | Source::AnyTask => {}
            }
        }
        if let Some(st) = &mut self.started {
            if matches!(&r, Ok(m) if m.carries_rights()) {
                st.plain = false; // it took rights into this task's space
            } else if !may_wait {
                st.went = match &r {
                    Ok(_) => Some(true),
                    Err(ReceiveError::Empty | ReceiveError::TimedOut) => Some(false),
                    Err(_) => None,
                };
            }
            // A receive from several names that took from one, all the
            // others inert (empty ports nobody can send to: no send or
            // send-once right exists, as a select's notify port with no
            // request out), is a receive from that one name.
            if let (Source::Any(names), Ok(m)) = (source, &r) {
                st.name = m.received_on().filter(|&n| {
                    names.iter().all(|&k| {
                        k == n
                            || matches!(kernel.object_key(pid, k), Some((0, _)))
                                && kernel.port_status(pid, k).is_ok_and(|s| {
                                    s.queue_len == 0
                                        && s.send_rights == 0
                                        && s.send_once_rights == 0
                                })
                    })
                });
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
        if asked.is_ok() {
            self.missed.room.push(queue);
        }
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
