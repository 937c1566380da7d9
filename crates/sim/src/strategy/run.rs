//! Running a [`Model`]: each process as a [`Machine`] ([`ModelMachine`]),
//! built on the stateful checker's [`World`] ([`Model::setup`],
//! [`Model::check`], [`Model::verdicts`]) or on a [`Sim`]
//! ([`Model::install`], with the faults).
//!
//! The machine is the model's semantics, and it is the scenario
//! language's: the statements [`Action`]'s `Display` prints do, in the
//! script interpreter, what the machine does here (a send that fails for
//! any reason but a full queue under `fail` fails the process; a receive
//! or call that fails ends a server's `forever` loop, and fails any other
//! process; `reply` answers the last message received). `tests/model_print.rs`
//! (root package) checks that the two agree on random models.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{
    CallError, CarriedRight, Ipc, Message, OnFull, PortName, ReceiveError, SendError,
    SendErrorKind, Sent, Wait,
};

use super::model::{Action, Model, Policy, QueueKind};
use crate::builder::Inherit;
use crate::check::{CheckOutcome, Checker, Encode, Encoder, World};
use crate::machine::{
    call_not_sent, call_outcome, call_reply, call_request, CallStart, Ctx, Machine, MailboxUse, Op,
    Step,
};
use crate::process::ProcError;
use crate::report::FailureReason;
use crate::sim::Sim;
use crate::time::{ms, Dist};
use crate::ProcId;

/// What a model's process waits for between two steps.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Pending {
    None,
    Send,
    Receive,
    /// A call's request, its reply port.
    CallSend(PortName),
    /// A call's reply, on this port.
    CallReply(PortName),
    /// A call the runner makes as one operation (`CallStart::Pending`).
    Call,
}

/// One process of a [`Model`] as a state machine: its program counter, the
/// names it holds per queue, `x`, the reply right of the last message it
/// received, and what it waits for.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct ModelMachine {
    actions: Arc<[Action]>,
    pc: usize,
    server: bool,
    /// Per queue: the name this process sends to or receives from it by.
    names: Vec<Option<PortName>>,
    /// Mailboxes still to open (queue index, label), last first.
    to_open: Vec<(usize, String)>,
    /// The value last received (`x`), -1 at first.
    x: i64,
    /// The last message received, by its reply right (`None`: nothing
    /// received yet, or already replied to).
    request: Option<Option<CarriedRight>>,
    pending: Pending,
}

impl ModelMachine {
    /// `x`: the value last received (or the reply the last call got), -1
    /// before any.
    pub fn x(&self) -> i64 {
        self.x
    }

    /// The index of the action it is at (its program's length once done).
    pub fn at(&self) -> usize {
        self.pc
    }

    fn new(model: &Model, me: usize, rights: &[CarriedRight]) -> ModelMachine {
        let mut names = vec![None; model.queues.len()];
        let mut k = 0;
        for (i, q) in model.queues.iter().enumerate() {
            if let QueueKind::Port { receiver } = q.kind {
                if receiver == me {
                    names[i] = rights.get(k).map(|r| r.name);
                    k += 1;
                }
            }
        }
        for (i, q) in model.queues.iter().enumerate() {
            if let QueueKind::Port { receiver } = q.kind {
                if receiver != me {
                    names[i] = rights.get(k).map(|r| r.name);
                    k += 1;
                }
            }
        }
        let to_open = (0..model.queues.len())
            .rev()
            .filter(|&i| model.queues[i].kind == QueueKind::Mailbox)
            .map(|i| (i, format!("q{i}")))
            .collect();
        let program = &model.procs[me];
        ModelMachine {
            actions: program.actions.clone().into(),
            pc: 0,
            server: program.server,
            names,
            to_open,
            x: -1,
            request: None,
            pending: Pending::None,
        }
    }

    /// The rights process `me` starts with: receive rights to its ports,
    /// then send rights to everyone else's (what [`ModelMachine::new`]
    /// reads back).
    fn inherit(model: &Model, me: usize, ports: &[Option<PortName>]) -> Vec<CarriedRight> {
        let mut own = Vec::new();
        let mut others = Vec::new();
        for (q, name) in model.queues.iter().zip(ports) {
            if let (QueueKind::Port { receiver }, Some(name)) = (q.kind, *name) {
                if receiver == me {
                    own.push(Inherit::receive(name));
                } else {
                    others.push(Inherit::send(name));
                }
            }
        }
        own.extend(others);
        own
    }

    fn name(&self, queue: usize) -> Result<PortName, ProcError> {
        self.names
            .get(queue)
            .copied()
            .flatten()
            .ok_or_else(|| ProcError::msg(format!("holds no right to q{queue}")))
    }

    /// On to the next action (a server back to its first after its last).
    fn advance(&mut self) -> Step {
        self.pending = Pending::None;
        self.pc += 1;
        if self.pc >= self.actions.len() {
            if self.server {
                self.pc = 0;
            } else {
                return Step::Exit(Ok(()));
            }
        }
        Step::Yield
    }

    /// A receive or call failed: a server's loop ends (cleanly), any other
    /// process fails.
    fn failed_wait(&mut self, what: String) -> Step {
        self.pending = Pending::None;
        if self.server {
            Step::Exit(Ok(()))
        } else {
            Step::Exit(Err(ProcError::msg(what)))
        }
    }

    fn sent(&mut self, r: Result<Sent, SendError>) -> Step {
        match r {
            Ok(_) => self.advance(),
            Err(e)
                if e.kind() == SendErrorKind::Full
                    && matches!(
                        self.actions[self.pc],
                        Action::Send {
                            policy: Policy::Fail,
                            ..
                        }
                    ) =>
            {
                self.advance()
            }
            Err(e) => {
                self.pending = Pending::None;
                Step::Exit(Err(ProcError::msg(format!(
                    "{}: {}",
                    self.actions[self.pc],
                    e.kind()
                ))))
            }
        }
    }

    fn received(&mut self, r: Result<Message, ReceiveError>) -> Step {
        match r {
            Ok(m) => {
                self.x = m.as_u64().map_or(-1, |v| v as i64);
                self.request = Some(m.reply());
                self.advance()
            }
            Err(e) => self.failed_wait(format!("{}: {e}", self.actions[self.pc])),
        }
    }

    fn called(&mut self, r: Result<Message, CallError>) -> Step {
        match r {
            Ok(m) => {
                self.x = m.as_u64().map_or(-1, |v| v as i64);
                self.advance()
            }
            Err(e) => self.failed_wait(format!("{}: {e}", self.actions[self.pc])),
        }
    }

    /// The call's request went (or not): on to the receive of its reply,
    /// in the same step (as `Ipc::call_with`).
    fn call_sent<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        reply: PortName,
        r: Result<Sent, SendError>,
    ) -> Step {
        if let Err(e) = r {
            let e = call_not_sent(cx.ipc(), reply, e);
            return self.called(Err(e));
        }
        match cx.receive(Source::Name(reply), Wait::Forever) {
            Op::Done(r) => {
                let r = call_reply(cx.ipc(), reply, r);
                self.called(r)
            }
            Op::Pending => {
                self.pending = Pending::CallReply(reply);
                Step::Wait
            }
        }
    }

    fn resume<C: Ctx<Self>>(&mut self, cx: &mut C, outcome: WaitOutcome) -> Step {
        match (self.pending, outcome) {
            (Pending::Send, WaitOutcome::Sent(r)) => self.sent(r),
            (Pending::Receive, WaitOutcome::Received(r)) => self.received(r),
            (Pending::CallSend(reply), WaitOutcome::Sent(r)) => self.call_sent(cx, reply, r),
            (Pending::CallReply(reply), WaitOutcome::Received(r)) => {
                let r = call_reply(cx.ipc(), reply, r);
                self.called(r)
            }
            (Pending::Call, o) => self.called(call_outcome(o)),
            (p, o) => Step::Exit(Err(ProcError::msg(format!(
                "resumed with {o:?} while waiting for {p:?}"
            )))),
        }
    }

    fn send_op<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        to: PortName,
        msg: Message,
        on: OnFull,
    ) -> Step {
        match cx.send(Destination::Name(to), msg, on) {
            Op::Done(r) => self.sent(r),
            Op::Pending => {
                self.pending = Pending::Send;
                Step::Wait
            }
        }
    }
}

impl Machine for ModelMachine {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        if let Some(outcome) = resumed {
            return self.resume(cx, outcome);
        }
        if let Some((queue, label)) = self.to_open.pop() {
            return match cx.ipc().mailbox_open(&label) {
                Ok(name) => {
                    self.names[queue] = Some(name);
                    Step::Yield
                }
                Err(e) => Step::Exit(Err(e.into())),
            };
        }
        let Some(&action) = self.actions.get(self.pc) else {
            return Step::Exit(Ok(()));
        };
        let name = |q: usize| self.name(q);
        match action {
            Action::Send {
                queue,
                value,
                policy,
            } => match name(queue) {
                Ok(to) => self.send_op(
                    cx,
                    to,
                    Message::from_u64(1, u64::from(value)),
                    policy.on_full(),
                ),
                Err(e) => Step::Exit(Err(e)),
            },
            Action::Receive { queue, timeout } => {
                let from = match name(queue) {
                    Ok(n) => n,
                    Err(e) => return Step::Exit(Err(e)),
                };
                let wait = timeout.map_or(Wait::Forever, |t| Wait::For(ms(u64::from(t))));
                cx.mark_valid_end(self.server);
                match cx.receive(Source::Name(from), wait) {
                    Op::Done(r) => self.received(r),
                    Op::Pending => {
                        self.pending = Pending::Receive;
                        Step::Wait
                    }
                }
            }
            Action::Call { queue, value } => {
                let to = match name(queue) {
                    Ok(n) => n,
                    Err(e) => return Step::Exit(Err(e)),
                };
                cx.mark_valid_end(false);
                match cx.call(to, Message::from_u64(1, u64::from(value))) {
                    CallStart::Done(r) => self.called(r),
                    CallStart::Pending => {
                        self.pending = Pending::Call;
                        Step::Wait
                    }
                    CallStart::InTwo(msg) => match call_request(cx.ipc(), msg) {
                        Err(e) => self.called(Err(e)),
                        Ok((msg, reply)) => {
                            match cx.send(Destination::Name(to), msg, OnFull::Block) {
                                Op::Done(r) => self.call_sent(cx, reply, r),
                                Op::Pending => {
                                    self.pending = Pending::CallSend(reply);
                                    Step::Wait
                                }
                            }
                        }
                    },
                }
            }
            Action::Reply { value } => {
                let msg = Message::from_u64(1, u64::from(value));
                match self.request.take() {
                    None => Step::Exit(Err(ProcError::msg("reply: no request has been received"))),
                    Some(Some(right)) if !right.name.is_dead() => {
                        self.send_op(cx, right.name, msg, OnFull::Block)
                    }
                    Some(Some(_)) => self.sent(Err(SendErrorKind::DestinationDead.with(msg))),
                    Some(None) => self.sent(Err(SendErrorKind::InvalidDestination.with(msg))),
                }
            }
            Action::AssertNot { value } => {
                if self.x == i64::from(value) {
                    Step::Exit(Err(ProcError::msg(format!(
                        "assertion failed: x != {value}"
                    ))))
                } else {
                    self.advance()
                }
            }
            Action::Choose { n } => {
                self.x = cx.choose(usize::from(n)) as i64;
                self.advance()
            }
            Action::Sleep { ms: t } => {
                let step = Step::Pause {
                    time: Dist::Fixed(ms(u64::from(t))),
                    busy: false,
                };
                match self.advance() {
                    Step::Yield => step,
                    // The last action: the process ends after the sleep.
                    _ => {
                        self.pc = self.actions.len();
                        step
                    }
                }
            }
        }
    }

    fn is_server(&self) -> bool {
        self.server
    }

    /// From the actions left (all of them for a server): exactly, so the
    /// checker's reduction may step a sole sender or receiver alone.
    fn may_use_mailbox(&self, mailbox: &str, how: MailboxUse) -> bool {
        let Some(queue) = mailbox
            .strip_prefix('q')
            .and_then(|i| i.parse::<usize>().ok())
        else {
            return true;
        };
        let left = if self.server {
            &self.actions[..]
        } else {
            &self.actions[self.pc.min(self.actions.len())..]
        };
        left.iter().any(|a| match *a {
            Action::Send {
                queue: q, policy, ..
            } if q == queue => {
                how == match policy {
                    Policy::Block => MailboxUse::Send,
                    Policy::Fail | Policy::DropNewest => MailboxUse::TrySend,
                    Policy::DropOldest => MailboxUse::Other,
                }
            }
            // A call's request carries a right: not a plain send.
            Action::Call { queue: q, .. } if q == queue => how == MailboxUse::Other,
            Action::Receive { queue: q, timeout } if q == queue => {
                how == if timeout.is_none() {
                    MailboxUse::Receive
                } else {
                    MailboxUse::Other
                }
            }
            _ => false,
        })
    }
}

impl Encode for ModelMachine {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.u64(self.pc as u64);
        for n in &self.names {
            match n {
                Some(n) => e.name(*n),
                None => e.u64(u64::MAX),
            }
        }
        e.u64(self.to_open.len() as u64);
        e.value(&self.x);
        match self.request {
            None => e.u64(0),
            Some(None) => e.u64(1),
            Some(Some(r)) => {
                e.u64(2);
                e.name(r.name);
            }
        }
        match self.pending {
            Pending::None => e.u64(0),
            Pending::Send => e.u64(1),
            Pending::Receive => e.u64(2),
            Pending::CallSend(p) => {
                e.u64(3);
                e.name(p);
            }
            Pending::CallReply(p) => {
                e.u64(4);
                e.name(p);
            }
            Pending::Call => e.u64(5),
        }
    }
}

/// The verdict of one end state, as far as two runners of the same model
/// must agree on it: the messages of a failure are each runner's own, so
/// a failed process is named, not its error.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Verdict {
    /// A valid end.
    Ok,
    /// Nobody can step and someone waits where it may not.
    Deadlock,
    /// A process (named) ended with an error.
    Failed(String),
    /// A process (named) panicked.
    Panicked(String),
    /// Anything else (a final check, a leak, an invariant): its name.
    Other(String),
}

impl Verdict {
    /// The verdict on an end state that failed with `reason` (`None`: a
    /// valid end).
    pub fn of(reason: Option<&FailureReason>) -> Verdict {
        match reason {
            None => Verdict::Ok,
            Some(FailureReason::Deadlock(_)) => Verdict::Deadlock,
            Some(FailureReason::ProcessFailed { proc, .. }) => Verdict::Failed(proc.clone()),
            Some(FailureReason::Panicked { proc, .. }) => Verdict::Panicked(proc.clone()),
            Some(
                FailureReason::FinalCheck { name, .. } | FailureReason::Invariant { name, .. },
            ) => Verdict::Other(name.clone()),
            Some(other) => Verdict::Other(other.to_string()),
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Ok => f.write_str("ok"),
            Verdict::Deadlock => f.write_str("deadlock"),
            Verdict::Failed(p) => write!(f, "{p} failed"),
            Verdict::Panicked(p) => write!(f, "{p} panicked"),
            Verdict::Other(what) => write!(f, "{what}"),
        }
    }
}

/// Why a model could not be checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum CheckRefusal {
    /// The model is not well formed ([`Model::validate`]).
    Invalid(String),
    /// The model injects faults, which the stateful checker does not.
    Faults,
    /// The search stopped before covering the whole space (its reason).
    Incomplete(String),
}

impl fmt::Display for CheckRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckRefusal::Invalid(why) => write!(f, "not a well-formed model: {why}"),
            CheckRefusal::Faults => f.write_str("the stateful checker injects no faults"),
            CheckRefusal::Incomplete(why) => write!(f, "search incomplete: {why}"),
        }
    }
}

impl std::error::Error for CheckRefusal {}

impl Model {
    /// Builds the model on the stateful checker's world: the queues (ports
    /// owned by the world, then handed to their processes; system
    /// mailboxes `q{i}`), then each process `p{i}` with its rights, a
    /// server declared one. Faults are not built (the checker has none).
    pub fn setup(&self, w: &mut World<ModelMachine>) -> Result<(), String> {
        self.validate()?;
        let mut ports = Vec::with_capacity(self.queues.len());
        for (i, q) in self.queues.iter().enumerate() {
            let label = format!("q{i}");
            ports.push(match q.kind {
                QueueKind::Mailbox => {
                    w.mailbox(&label, q.capacity).map_err(|e| e.to_string())?;
                    None
                }
                QueueKind::Port { .. } => {
                    Some(w.port(&label, q.capacity).map_err(|e| e.to_string())?)
                }
            });
        }
        let model = Arc::new(self.clone());
        for me in 0..self.procs.len() {
            let inherit = ModelMachine::inherit(self, me, &ports);
            let m = Arc::clone(&model);
            let id = w
                .spawn_with(&format!("p{me}"), &inherit, move |rights| {
                    ModelMachine::new(&m, me, rights)
                })
                .map_err(|e| e.to_string())?;
            if self.procs[me].server {
                w.server(id);
            }
        }
        Ok(())
    }

    /// Checks the model with `checker` (faults refused).
    pub fn check(&self, checker: &Checker) -> Result<CheckOutcome, CheckRefusal> {
        self.validate().map_err(CheckRefusal::Invalid)?;
        if !self.faults.is_empty() {
            return Err(CheckRefusal::Faults);
        }
        let mut failed = None;
        let out = checker.run(|w| failed = self.setup(w).err());
        match failed {
            Some(e) => Err(CheckRefusal::Invalid(e)),
            None => Ok(out),
        }
    }

    /// Every verdict some end state of the model has, by a complete search
    /// of `checker` (which should [`keep_going`](Checker::keep_going): else
    /// only the first failure is seen), or why there is none.
    pub fn verdicts(&self, checker: &Checker) -> Result<BTreeSet<Verdict>, CheckRefusal> {
        self.validate().map_err(CheckRefusal::Invalid)?;
        if !self.faults.is_empty() {
            return Err(CheckRefusal::Faults);
        }
        let mut verdicts = BTreeSet::new();
        let mut failed = None;
        let out = checker.run_with_ends(
            |w| failed = self.setup(w).err(),
            |end| {
                verdicts.insert(Verdict::of(end.failure));
            },
        );
        if let Some(e) = failed {
            return Err(CheckRefusal::Invalid(e));
        }
        if !out.stats.complete {
            let why = match &out.stats.stopped {
                Some(why) => why.clone(),
                None if !out.failures.is_empty() => {
                    "stopped at the first failure (use keep_going)".to_string()
                }
                None => out.stats.to_string(),
            };
            return Err(CheckRefusal::Incomplete(why));
        }
        Ok(verdicts)
    }

    /// Builds the model on a simulator: queues, processes (as stackless
    /// machines), servers declared, and the faults (kills at virtual times).
    pub fn install(&self, sim: &mut Sim) -> Result<(), String> {
        self.validate()?;
        let mut ports = Vec::with_capacity(self.queues.len());
        for (i, q) in self.queues.iter().enumerate() {
            let label = format!("q{i}");
            ports.push(match q.kind {
                QueueKind::Mailbox => {
                    sim.mailbox(&label, q.capacity).map_err(|e| e.to_string())?;
                    None
                }
                QueueKind::Port { .. } => {
                    Some(sim.port(&label, q.capacity).map_err(|e| e.to_string())?)
                }
            });
        }
        let model = Arc::new(self.clone());
        for me in 0..self.procs.len() {
            let inherit = ModelMachine::inherit(self, me, &ports);
            let m = Arc::clone(&model);
            let id = sim
                .spawn_machine(&format!("p{me}"), &inherit, move |rights| {
                    ModelMachine::new(&m, me, rights)
                })
                .map_err(|e| e.to_string())?;
            if self.procs[me].server {
                sim.server(id);
            }
        }
        for k in &self.faults {
            sim.kill_at_time(ProcId(k.proc as u32), ms(u64::from(k.at_ms)));
        }
        Ok(())
    }
}
