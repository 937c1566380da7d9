//! Values in messages, selective receive, `try-send` and `select`.
//!
//! The kernel cannot look into a queue, so a receive with a pattern takes
//! messages in order and sets aside (per process, per queue, oldest first,
//! in [`ScriptState::pending`](crate::scenario::flow::ScriptState)) those
//! that do not match; every later receive on that queue looks there first.
//! This is Erlang's selective receive. A message set aside keeps its value,
//! not its reply right: answer `call`s with receives that take them at once.
//!
//! A `select` takes the first arm, in the order written, that can proceed:
//! a set-aside message, then one non-blocking try of each arm; if none can,
//! it waits on the kernel's select over its receive arms and, when a send
//! arm found its queue full, its own notify port, having asked the kernel
//! for a send-possible notification on each full queue (one request per
//! step, none while one is out); a notification starts a new round. Only a
//! backend without notifications retries every [`SELECT_POLL`]. On a runner
//! whose steps are atomic (`Ctx::selects_in_one_step`: the model checker)
//! the round is one step: a try that finds no room does not end it, and the
//! wait is one operation, `Ctx::receive_or_room` (the requests for the full
//! queues and the receive), made only when no arm can go. So there a
//! `select` is one transition when an arm goes, as a guarded send or
//! receive is in Promela, and none while no arm can: the step that only
//! blocks is not kept (the checker's lazy blocking), and the process steps
//! again, from the `select`'s start, in a state where an arm can go. `select
//! any` first tries one enabled arm alone, chosen by `Ctx::choose`, then
//! goes on in order. As a state machine, a `select` under way is a
//! [`Selecting`]: the guards it evaluated, its deadline, the arm chosen,
//! the arm it tries next, the full queues, and the operation it waits for.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{
    Capacity, Ipc, Message, Notification, OnFull, PortName, ReceiveError, SendError, SendErrorKind,
    Sent, Wait,
};
use mkipc_sim::machine::{Ctx, Step};
use mkipc_sim::{Dist, ProcError};
use smallvec::SmallVec;

use super::{done, fail, Flow, Notify, Resume, ScriptMachine, EXPECT_FAILED, SELECT_POLL};
use crate::scenario::expr::{Expr, Pattern};
use crate::scenario::flow::{ArmHead, Code, Pending};
use crate::scenario::value::{Show, Value};
use crate::scenario::{ArmKind, Dest, Op};

/// A message's offered time and value (`None`: no value, or not one of ours).
pub(super) fn decode(msg: &Message) -> (u64, Option<Value>) {
    let body = &msg.body[..];
    let offered = body
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .map_or(0, u64::from_le_bytes);
    let value = body
        .get(8..)
        .filter(|b| !b.is_empty())
        .and_then(Value::decode);
    (offered, value)
}

/// Whether a message's value matches `pattern` (no pattern: anything).
pub(super) fn matches_value(
    pattern: Option<&Pattern>,
    value: Option<&Value>,
    binds: &mut Vec<(usize, Value)>,
) -> bool {
    match (pattern, value) {
        (None, _) => true,
        (Some(Pattern::Any), _) => true,
        (Some(p), Some(v)) => p.matches(v, binds),
        (Some(_), None) => false,
    }
}

/// A `select` under way (see the module docs).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Selecting {
    /// Per arm, whether its guard held when the `select` started.
    enabled: SmallVec<[bool; 4]>,
    /// The enabled `on timeout` arm, if any.
    timeout_arm: Option<usize>,
    /// When that arm is taken (time since the start of the run).
    deadline: Option<Duration>,
    /// The arm this round tries next (0: the round starts with the
    /// set-aside messages).
    next: usize,
    /// `select any`: the arm chosen (`Ctx::choose`) to be tried first,
    /// alone, before the round in order.
    first: Option<usize>,
    /// The receive arms' names, with their queues, gathered this round.
    sources: SmallVec<[(PortName, usize); 3]>,
    /// Whether a send arm found no room this round.
    sending: bool,
    /// The names of the queues a send arm found full this round, for the
    /// send-possible requests.
    full: SmallVec<[PortName; 2]>,
    /// How many of `full` were asked to notify (one request per step).
    requested: usize,
    /// What it waits for.
    phase: Phase,
}

/// What a [`Selecting`] waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Phase {
    /// Nothing: trying arms.
    Trying,
    /// The try-send of this arm.
    Sending(usize),
    /// A message on the receive arms.
    Receiving,
    /// The end of a poll interval; then a new round.
    Polling,
    /// The end of the timeout; then this arm.
    TimingOut(usize),
    /// The try of the chosen receive arm (`select any`) on this queue.
    First(usize, usize),
}

impl Selecting {
    /// The checker's encoding: as `Hash`, names by what they denote.
    pub(super) fn encode(&self, e: &mut mkipc_sim::check::Encoder<'_>) {
        e.value(&(&self.enabled, self.timeout_arm, self.deadline, self.next));
        e.value(&self.first);
        e.u64(self.sources.len() as u64);
        for &(name, q) in &self.sources {
            e.name(name);
            e.u64(q as u64);
        }
        e.value(&(self.sending, self.phase));
        e.u64(self.full.len() as u64);
        for &name in &self.full {
            e.name(name);
        }
        e.u64(self.requested as u64);
    }

    fn new_round(&mut self) {
        self.next = 0;
        self.sources.clear();
        self.sending = false;
        self.full.clear();
        self.requested = 0;
        self.phase = Phase::Trying;
    }

    /// A send arm found no room on the queue `name` sends to.
    fn found_full(&mut self, name: PortName) {
        self.sending = true;
        if !self.full.contains(&name) {
            self.full.push(name);
        }
    }
}

impl ScriptMachine {
    pub(super) fn eval(&self, e: &Expr, line: usize) -> Result<Value, ProcError> {
        let names = &self.shared.scenario.processes[self.me].vars;
        e.eval(&self.state.vars, names)
            .map_err(|m| fail(line, &format!("`{}`", e.text), m))
    }

    pub(super) fn eval_opt(
        &self,
        e: Option<&Expr>,
        line: usize,
    ) -> Result<Option<Value>, ProcError> {
        e.map(|e| self.eval(e, line)).transpose()
    }

    pub(super) fn show(&self, v: &Value) -> String {
        let scn = &self.shared.scenario;
        Show {
            value: v,
            symbols: &scn.symbols,
            queues: &scn.queues,
        }
        .to_string()
    }

    /// The variables an expression reads, with their values, for messages.
    pub(super) fn values_of(&self, e: &Expr) -> String {
        let names = &self.shared.scenario.processes[self.me].vars;
        let parts: Vec<String> = e
            .reads
            .iter()
            .map(|&slot| {
                let name = names.get(slot).map_or("?", String::as_str);
                match self.state.vars.get(slot).and_then(Option::as_ref) {
                    Some(v) => format!("{name} = {}", self.show(v)),
                    None => format!("{name} not set"),
                }
            })
            .collect();
        if parts.is_empty() {
            String::new()
        } else {
            format!(" ({})", parts.join(", "))
        }
    }

    /// The queue a destination names now.
    pub(super) fn dest_queue(&self, dest: &Dest, line: usize) -> Result<usize, ProcError> {
        match dest {
            Dest::Queue(q) => Ok(*q),
            Dest::Var(slot) => self.held_queue(*slot, "send", line),
        }
    }

    /// The queue variable `slot` holds now (`verb` names the statement in
    /// the error when it holds none).
    pub(super) fn held_queue(
        &self,
        slot: usize,
        verb: &str,
        line: usize,
    ) -> Result<usize, ProcError> {
        match self.state.vars.get(slot).and_then(Option::as_ref) {
            Some(&Value::Queue(q)) if (q as usize) < self.shared.scenario.queues.len() => {
                Ok(q as usize)
            }
            other => {
                let vars = &self.shared.scenario.processes[self.me].vars;
                let name = vars.get(slot).map_or("?", String::as_str);
                let what = other.map_or("no value".to_string(), |v| self.show(v));
                Err(fail(
                    line,
                    &format!("{verb} {name}"),
                    format!("`{name}` holds {what}, not a port or mailbox"),
                ))
            }
        }
    }

    /// A receive arm's queue (as its variable holds it now, for
    /// `on receive VAR`) and pattern; `None` for other arms.
    fn arm_receive<'a>(
        &self,
        arm: &'a ArmHead,
    ) -> Result<Option<(usize, Option<&'a Pattern>)>, ProcError> {
        Ok(match &arm.kind {
            ArmKind::Receive { queue, pattern } => Some((*queue, pattern.as_ref())),
            ArmKind::ReceiveVia { var, pattern } => Some((
                self.held_queue(*var, "select: receive", arm.line)?,
                pattern.as_ref(),
            )),
            ArmKind::Send { .. } | ArmKind::Timeout(_) => None,
        })
    }

    /// Sets a pattern's variables.
    pub(super) fn bind(&mut self, binds: Vec<(usize, Value)>) {
        for (slot, v) in binds {
            if let Some(var) = self.state.vars.get_mut(slot) {
                *var = Some(v);
            }
        }
    }

    /// Takes the first set-aside message on `q` that matches `pattern`.
    fn take_pending(
        &mut self,
        q: usize,
        pattern: Option<&Pattern>,
    ) -> Option<(u64, Vec<(usize, Value)>)> {
        let pending = self.state.pending.get_mut(q)?;
        for i in 0..pending.len() {
            let mut binds = Vec::new();
            if matches_value(pattern, pending[i].value.as_ref(), &mut binds) {
                let p = pending.remove(i)?;
                return Some((p.offered, binds));
            }
        }
        None
    }

    pub(super) fn mismatch(&self, line: usize, what: &str, got: Option<&Value>) -> ProcError {
        let got = got.map_or("a message with no value".to_string(), |v| self.show(v));
        self.check_failed(fail(line, what, format!("{EXPECT_FAILED}: got {got}")))
    }

    /// `receive Q [PATTERN] [timeout D]`: the first message matching the
    /// pattern, set-aside ones first; `expect`: the next message, which must
    /// match. Starts the receive if no set-aside message will do.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receive_start<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        queue: usize,
        pattern: Option<&Pattern>,
        timeout: Option<Duration>,
        expect: bool,
        line: usize,
    ) -> Result<Flow, ProcError> {
        let what = receive_what(&self.shared.scenario, queue, expect);
        let from_pending = if expect {
            self.state
                .pending
                .get_mut(queue)
                .and_then(VecDeque::pop_front)
                .map(|p| {
                    let mut binds = Vec::new();
                    let ok = matches_value(pattern, p.value.as_ref(), &mut binds);
                    (p, ok, binds)
                })
        } else {
            self.take_pending(queue, pattern).map(|(offered, binds)| {
                (
                    Pending {
                        offered,
                        value: None,
                    },
                    true,
                    binds,
                )
            })
        };
        if let Some((p, ok, binds)) = from_pending {
            self.count_taken(cx, Some(queue), p.offered);
            if !ok {
                return Err(self.mismatch(line, &what, p.value.as_ref()));
            }
            self.bind(binds);
            return Ok(Flow::Next);
        }
        if self.at_eof(queue) {
            return self.eof_read(queue, pattern, expect, line);
        }
        let Some(src) = self.name_for(cx, queue, false, line, &what)? else {
            return Ok(self.waiting(Resume::None));
        };
        let deadline = timeout.map(|t| cx.now().saturating_add(t));
        self.receive_op(cx, code, src, deadline)
    }

    /// Starts the receive of the statement at the program counter.
    pub(super) fn receive_op<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        src: PortName,
        deadline: Option<Duration>,
    ) -> Result<Flow, ProcError> {
        self.resume = Resume::None;
        let w = match deadline {
            None => Wait::Forever,
            Some(d) => Wait::For(d.saturating_sub(cx.now())),
        };
        self.note_wait(cx);
        Ok(match done(cx.receive(Source::Name(src), w)) {
            Some(r) => {
                let flow = self.received_on(cx, code, src, deadline, r)?;
                self.after_op(code, flow)
            }
            None => self.waiting(Resume::Receive {
                src,
                deadline,
                waiting: true,
            }),
        })
    }

    /// Finishes the receive of the statement at the program counter:
    /// [`Flow::Again`] when the message did not match and was set aside.
    pub(super) fn received_on<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        src: PortName,
        deadline: Option<Duration>,
        r: Result<Message, ReceiveError>,
    ) -> Result<Flow, ProcError> {
        let Some(Code::Do(s)) = code.get(self.state.at.pc) else {
            return Err(ProcError::msg("a receive finished where none was started"));
        };
        let (queue, pattern, expect) = match &s.op {
            Op::Receive {
                queue,
                pattern,
                expect,
                ..
            } => (*queue, pattern, expect),
            Op::ReceiveVia {
                var,
                pattern,
                expect,
                ..
            } => (self.held_queue(*var, "receive", s.line)?, pattern, expect),
            _ => {
                return Err(ProcError::msg(format!(
                    "line {}: a receive finished where none was started",
                    s.line
                )))
            }
        };
        let line = s.line;
        match r {
            Ok(msg)
                if self.shared.scenario.queues[queue].is_pipe()
                    && crate::scenario::mech::is_eof(&msg) =>
            {
                self.count_mech(0, 1);
                self.eof_read(queue, pattern.as_ref(), *expect, line)
            }
            Ok(msg) => {
                let (offered, value) = decode(&msg);
                let mut binds = Vec::new();
                if matches_value(pattern.as_ref(), value.as_ref(), &mut binds) {
                    self.count_taken(cx, Some(queue), offered);
                    self.bind(binds);
                    self.last_request = Some(Box::new(msg));
                    return Ok(Flow::Next);
                }
                if *expect {
                    self.count_taken(cx, Some(queue), offered);
                    let what = receive_what(&self.shared.scenario, queue, true);
                    return Err(self.mismatch(line, &what, value.as_ref()));
                }
                self.state.pending[queue].push_back(Pending { offered, value });
                self.resume = Resume::Receive {
                    src,
                    deadline,
                    waiting: false,
                };
                Ok(Flow::Again)
            }
            Err(_) if self.in_forever() => Ok(Flow::Break),
            Err(e) => {
                let what = receive_what(&self.shared.scenario, queue, *expect);
                Err(fail(line, &what, e))
            }
        }
    }

    /// `try-send Q [VALUE] else ...`: starts the send (a full queue is not
    /// an error: the `else` part runs).
    pub(super) fn try_send_stmt<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        dest: &Dest,
        value: Option<&Expr>,
        line: usize,
    ) -> Result<Flow, ProcError> {
        let Some((q, msg, name)) = self.try_message(cx, dest, value, line)? else {
            return Ok(self.waiting(Resume::None));
        };
        self.send_op(
            cx,
            code,
            Destination::Name(name),
            msg,
            OnFull::Fail,
            Some(q),
        )
    }

    /// What a try-send sends: the queue, the message and the name
    /// (`None`: the process must hand over before it opens the queue, see
    /// `NoName::HandOver`; nothing was done).
    fn try_message<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        dest: &Dest,
        value: Option<&Expr>,
        line: usize,
    ) -> Result<Option<(usize, Message, PortName)>, ProcError> {
        let q = self.dest_queue(dest, line)?;
        let value = self.eval_opt(value, line)?;
        let what = format!("try-send {}", self.shared.scenario.queues[q].name);
        let Some(name) = self.name_for(cx, q, true, line, &what)? else {
            return Ok(None);
        };
        let msg = self.message_with(cx, value.as_ref());
        Ok(Some((q, msg, name)))
    }

    /// A `select` arm's try-send finished: whether it went.
    fn select_sent(
        &mut self,
        q: usize,
        line: usize,
        r: Result<Sent, SendError>,
    ) -> Result<bool, ProcError> {
        match r {
            Err(e) if e.kind() == SendErrorKind::Full => Ok(false),
            r => {
                self.count_send(Some(q), &r);
                let what = format!("try-send {}", self.shared.scenario.queues[q].name);
                r.map(|_| true).map_err(|e| fail(line, &what, e))
            }
        }
    }

    /// Starts a `select`: evaluates its guards, then runs it.
    pub(super) fn select_start<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        arms: &[ArmHead],
        any: bool,
        _line: usize,
    ) -> Result<Flow, ProcError> {
        let mut enabled = SmallVec::with_capacity(arms.len());
        for arm in arms {
            enabled.push(match &arm.guard {
                None => true,
                Some(g) => self.eval(g, arm.line)?.truthy(),
            });
        }
        // `select any`: which enabled arm to try first, a choice the
        // simulator draws and the checker branches on. Whatever arm that is,
        // the others are then tried in order: every arm that can proceed is
        // taken by some choice, and no choice takes one that cannot.
        let candidates: Vec<usize> = (0..arms.len())
            .filter(|&i| enabled[i] && !matches!(arms[i].kind, ArmKind::Timeout(_)))
            .collect();
        let first = match candidates.len() {
            n if any && n > 1 => candidates.get(cx.choose(n)).copied(),
            _ => None,
        };
        let timeout = arms.iter().enumerate().find_map(|(i, a)| match a.kind {
            ArmKind::Timeout(d) if enabled[i] => Some((i, d)),
            _ => None,
        });
        let sel = Selecting {
            enabled,
            timeout_arm: timeout.map(|t| t.0),
            deadline: timeout.map(|(_, d)| cx.now().saturating_add(d)),
            next: 0,
            first,
            sources: SmallVec::new(),
            sending: false,
            full: SmallVec::new(),
            requested: 0,
            phase: Phase::Trying,
        };
        self.select_continue(cx, code, Box::new(sel), None, true)
    }

    /// Runs the `select` at the program counter on from `sel`, finishing
    /// the operation it waited for with `outcome`; `may_start`: whether
    /// this step may still start an operation.
    pub(super) fn select_continue<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        mut sel: Box<Selecting>,
        outcome: Option<WaitOutcome>,
        mut may_start: bool,
    ) -> Result<Flow, ProcError> {
        let Some(Code::Select {
            arms, starts, line, ..
        }) = code.get(self.state.at.pc)
        else {
            return Err(ProcError::msg("a select went on where none was started"));
        };
        let line = *line;
        // On a runner whose steps are atomic (the checker), a try that
        // finds no room does not end the step: the tries and the wait are
        // one operation, so the `select` is one transition when an arm
        // goes and none while no arm can (module docs).
        let one_step = cx.selects_in_one_step();
        // The arm taken: its statements run next.
        let take = |m: &mut Self, i: usize, may_start: bool| {
            m.resume = Resume::None;
            m.state.at.pc = starts.get(i).copied().unwrap_or(code.len());
            if may_start {
                Flow::Stay
            } else {
                Flow::Stop(Step::Yield)
            }
        };
        // Finish what it waited for.
        match sel.phase {
            Phase::Trying => {
                if outcome.is_some() {
                    return Err(super::wrong_outcome("nothing", outcome));
                }
            }
            Phase::Sending(i) => {
                let r = super::sent_outcome(outcome)?;
                let q = self.arm_queue(&arms[i])?;
                sel.phase = Phase::Trying;
                if self.select_sent(q, arms[i].line, r)? {
                    return Ok(take(self, i, may_start));
                }
                if let Some(name) = self.names[q].send {
                    sel.found_full(name);
                }
            }
            Phase::Receiving => {
                let r = super::received_outcome(outcome)?;
                if let Some(flow) = self.select_received(cx, code, arms, &mut sel, r, line)? {
                    return Ok(match flow {
                        Flow::Stay => take(self, self.taken_arm(&sel), may_start),
                        other => other,
                    });
                }
            }
            Phase::Polling => sel.new_round(),
            Phase::TimingOut(i) => return Ok(take(self, i, may_start)),
            Phase::First(i, queue) => {
                let r = super::received_outcome(outcome)?;
                sel.phase = Phase::Trying;
                if self.first_received(cx, &arms[i], queue, r)? {
                    return Ok(take(self, i, may_start));
                }
            }
        }
        // `select any`: the chosen arm alone first, one non-blocking try.
        if let Some(i) = sel.first {
            let arm = &arms[i];
            if let Some((queue, pattern)) = self.arm_receive(arm)? {
                if let Some((offered, binds)) = self.take_pending(queue, pattern) {
                    self.count_taken(cx, Some(queue), offered);
                    self.bind(binds);
                    return Ok(take(self, i, may_start));
                }
            }
            if !may_start {
                return Ok(self.select_later(sel));
            }
            sel.first = None;
            may_start = false;
            match &arm.kind {
                ArmKind::Receive { .. } | ArmKind::ReceiveVia { .. } => {
                    let queue = self.arm_receive(arm)?.map_or(0, |r| r.0);
                    let what = format!(
                        "select: receive {}",
                        self.shared.scenario.queues[queue].name
                    );
                    let Some(src) = self.name_for(cx, queue, false, arm.line, &what)? else {
                        sel.first = Some(i);
                        return Ok(self.select_hand_over(sel));
                    };
                    match done(cx.receive(Source::Name(src), Wait::For(Duration::ZERO))) {
                        None => {
                            sel.phase = Phase::First(i, queue);
                            return Ok(self.waiting(Resume::Select(sel)));
                        }
                        Some(r) => {
                            if self.first_received(cx, arm, queue, r)? {
                                return Ok(take(self, i, may_start));
                            }
                        }
                    }
                }
                ArmKind::Send { dest, value } => {
                    let Some((q, msg, name)) =
                        self.try_message(cx, dest, value.as_ref(), arm.line)?
                    else {
                        sel.first = Some(i);
                        return Ok(self.select_hand_over(sel));
                    };
                    match done(cx.send(Destination::Name(name), msg, OnFull::Fail)) {
                        None => {
                            sel.phase = Phase::Sending(i);
                            return Ok(self.waiting(Resume::Select(sel)));
                        }
                        Some(r) => {
                            if self.select_sent(q, arm.line, r)? {
                                return Ok(take(self, i, may_start));
                            }
                        }
                    }
                }
                ArmKind::Timeout(_) => {}
            }
        }
        loop {
            // Set-aside messages first, then one try of each arm in order.
            if sel.next == 0 {
                for (i, arm) in arms.iter().enumerate() {
                    if !sel.enabled[i] {
                        continue;
                    }
                    if let Some((queue, pattern)) = self.arm_receive(arm)? {
                        if let Some((offered, binds)) = self.take_pending(queue, pattern) {
                            self.count_taken(cx, Some(queue), offered);
                            self.bind(binds);
                            return Ok(take(self, i, may_start));
                        }
                    }
                }
            }
            while let Some(arm) = arms.get(sel.next) {
                let i = sel.next;
                if !sel.enabled[i] {
                    sel.next += 1;
                    continue;
                }
                match &arm.kind {
                    ArmKind::Receive { .. } | ArmKind::ReceiveVia { .. } => {
                        let queue = self.arm_receive(arm)?.map_or(0, |r| r.0);
                        let what = format!(
                            "select: receive {}",
                            self.shared.scenario.queues[queue].name
                        );
                        let Some(src) = self.name_for(cx, queue, false, arm.line, &what)? else {
                            return Ok(self.select_hand_over(sel));
                        };
                        if !sel.sources.contains(&(src, queue)) {
                            sel.sources.push((src, queue));
                        }
                    }
                    ArmKind::Send { dest, value } => {
                        if !may_start {
                            return Ok(self.select_later(sel));
                        }
                        let Some((q, msg, name)) =
                            self.try_message(cx, dest, value.as_ref(), arm.line)?
                        else {
                            return Ok(self.select_hand_over(sel));
                        };
                        sel.next += 1;
                        match done(cx.send(Destination::Name(name), msg, OnFull::Fail)) {
                            None => {
                                sel.phase = Phase::Sending(i);
                                return Ok(self.waiting(Resume::Select(sel)));
                            }
                            Some(r) => {
                                if self.select_sent(q, arm.line, r)? {
                                    return Ok(take(self, i, false));
                                }
                                if !one_step {
                                    may_start = false;
                                }
                                sel.found_full(name);
                            }
                        }
                        continue;
                    }
                    ArmKind::Timeout(_) => {}
                }
                sel.next += 1;
            }
            let remaining = sel.deadline.map(|d| d.saturating_sub(cx.now()));
            if let (Some(i), Some(Duration::ZERO)) = (sel.timeout_arm, remaining) {
                return Ok(take(self, i, may_start));
            }
            if !may_start {
                return Ok(self.select_later(sel));
            }
            if sel.sources.is_empty() && !sel.sending {
                return match (sel.timeout_arm, remaining) {
                    (Some(i), Some(r)) => {
                        sel.phase = Phase::TimingOut(i);
                        Ok(self.pause_in_select(sel, r))
                    }
                    _ => Err(fail(
                        line,
                        "select",
                        "no arm is enabled (every guard is false)",
                    )),
                };
            }
            let mut names: Vec<PortName> = sel.sources.iter().map(|s| s.0).collect();
            // A send arm waits for room without polling: the kernel is
            // asked to say, by a message on this script's own notify port,
            // when each full queue has room (send-possible notifications),
            // one request per step; then the wait is for a message on the
            // receive arms or the notify port.
            // A full queue this select also receives from gets room when a
            // receiver waits on it, which may be this very select (a
            // rendezvous): its notification would wake it at once, again
            // and again. Such a select polls, as before notifications.
            let mut poll = sel
                .full
                .iter()
                .any(|f| sel.sources.iter().any(|s| s.0 == *f));
            // With `one_step`: the notify port, and the full queues to ask
            // about, for `Ctx::receive_or_room` (the requests and the wait
            // are one operation).
            let mut room: Option<(PortName, Vec<PortName>)> = None;
            if sel.sending && !poll {
                if self.notify == Notify::Unasked {
                    // A scheduling point, which a stackless process may
                    // have to hand over for first.
                    if matches!(cx.ipc_point(), mkipc_sim::machine::Op::Pending) {
                        return Ok(self.select_hand_over(sel));
                    }
                    self.notify = match cx.port_allocate(Capacity::Unbounded) {
                        Ok(n) => Notify::Port(n),
                        Err(_) => Notify::Unsupported,
                    };
                    if !one_step {
                        return Ok(self.select_later(sel));
                    }
                }
                match self.notify {
                    Notify::Port(notify) if one_step => {
                        // A request still out is not made again (below).
                        let ask = sel
                            .full
                            .iter()
                            .copied()
                            .filter(|d| !self.asked.contains(d))
                            .collect();
                        room = Some((notify, ask));
                    }
                    Notify::Port(notify) => {
                        // A request still out is not made again (a new one
                        // would replace it, and the right it dropped would
                        // come back as a send-once notification, waking the
                        // select for nothing).
                        while let Some(&dest) = sel.full.get(sel.requested) {
                            if self.asked.contains(&dest) {
                                sel.requested += 1;
                                continue;
                            }
                            if matches!(cx.ipc_point(), mkipc_sim::machine::Op::Pending) {
                                return Ok(self.select_hand_over(sel));
                            }
                            sel.requested += 1;
                            if cx.ipc().request_send_possible(dest, notify).is_ok() {
                                self.asked.push(dest);
                            } else {
                                // The backend cannot say when there is room
                                // (a queue with no liveness pipe on os):
                                // poll from now on.
                                self.notify = Notify::Unsupported;
                            }
                            return Ok(self.select_later(sel));
                        }
                        names.push(notify);
                    }
                    Notify::Unasked | Notify::Unsupported => poll = true,
                }
            }
            // Wait for a message; where there are no notifications, with a
            // send arm waiting for room, only for a poll interval, then try
            // the sends again.
            let w = match (poll, remaining) {
                (true, Some(r)) => Wait::For(r.min(SELECT_POLL)),
                (true, None) => Wait::For(SELECT_POLL),
                (false, Some(r)) => Wait::For(r),
                (false, None) => Wait::Forever,
            };
            if names.is_empty() && room.is_none() {
                if let Wait::For(d) = w {
                    sel.phase = Phase::Polling;
                    return Ok(self.pause_in_select(sel, d));
                }
                sel.new_round();
                continue;
            }
            self.note_wait(cx);
            let started = match &room {
                Some((notify, ask)) => cx.receive_or_room(&names, ask, *notify, w),
                None => cx.receive(Source::Any(&names), w),
            };
            if let (Some((_, ask)), mkipc_sim::machine::Op::Pending) = (room, &started) {
                // Its requests are out while it waits (`receive_or_room`).
                self.asked.extend(ask);
            }
            let r = match done(started) {
                None => {
                    sel.phase = Phase::Receiving;
                    return Ok(self.waiting(Resume::Select(sel)));
                }
                Some(r) => r,
            };
            may_start = false;
            if let Some(flow) = self.select_received(cx, code, arms, &mut sel, r, line)? {
                return Ok(match flow {
                    Flow::Stay => take(self, self.taken_arm(&sel), may_start),
                    other => self.after_op(code, other),
                });
            }
        }
    }

    /// The try of a `select any`'s chosen receive arm finished: whether it
    /// took a message for the arm (one that does not match is set aside;
    /// an empty queue or an error leaves the round in order to say).
    fn first_received<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        arm: &ArmHead,
        queue: usize,
        r: Result<Message, ReceiveError>,
    ) -> Result<bool, ProcError> {
        let Ok(msg) = r else {
            return Ok(false);
        };
        let (offered, value) = decode(&msg);
        let pattern = self.arm_receive(arm)?.and_then(|r| r.1);
        let mut binds = Vec::new();
        if matches_value(pattern, value.as_ref(), &mut binds) {
            self.count_taken(cx, Some(queue), offered);
            self.bind(binds);
            self.last_request = Some(Box::new(msg));
            return Ok(true);
        }
        self.state.pending[queue].push_back(Pending { offered, value });
        Ok(false)
    }

    /// The `select` goes on at the next step, from where `sel` is.
    fn select_later(&mut self, mut sel: Box<Selecting>) -> Flow {
        sel.phase = Phase::Trying;
        self.resume = Resume::Select(sel);
        Flow::Stop(Step::Yield)
    }

    /// The `select` hands over before an IPC call (`NoName::HandOver`,
    /// `Ctx::ipc_point`), and goes on from `sel` at the next step, where
    /// the call's scheduling point is taken.
    fn select_hand_over(&mut self, mut sel: Box<Selecting>) -> Flow {
        sel.phase = Phase::Trying;
        self.resume = Resume::Select(sel);
        Flow::Stop(Step::Wait)
    }

    /// The `select` pauses for `d`, then goes on (its phase says how).
    fn pause_in_select(&mut self, sel: Box<Selecting>, d: Duration) -> Flow {
        self.resume = Resume::Select(sel);
        Flow::Stop(Step::Pause {
            time: Dist::fixed(d),
            busy: false,
        })
    }

    /// The arm a [`Self::select_received`] took (kept in `next`).
    fn taken_arm(&self, sel: &Selecting) -> usize {
        sel.next
    }

    /// The queue a send arm names now.
    fn arm_queue(&self, arm: &ArmHead) -> Result<usize, ProcError> {
        match &arm.kind {
            ArmKind::Send { dest, .. } => self.dest_queue(dest, arm.line),
            _ => Err(ProcError::msg(format!(
                "line {}: a select's send finished on an arm that does not send",
                arm.line
            ))),
        }
    }

    /// A `select`'s receive finished: `Some(Flow::Stay)` when an arm is
    /// taken (its index in `sel.next`), `Some(Flow::Break)` when it leaves
    /// a `forever`, `None` for a new round.
    fn select_received<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        _code: &[Code],
        arms: &[ArmHead],
        sel: &mut Selecting,
        r: Result<Message, ReceiveError>,
        line: usize,
    ) -> Result<Option<Flow>, ProcError> {
        match r {
            Ok(msg) => {
                let on = msg.received_on();
                if let (Notify::Port(n), Some(on)) = (self.notify, on) {
                    if n == on {
                        // A full queue has room (or died): try again.
                        if let Some(Notification::SendPossible(q) | Notification::DeadName(q)) =
                            msg.notification()
                        {
                            self.asked.retain(|a| *a != q);
                        }
                        if let Some(c) = self.shared.counters().notified.get_mut(self.me) {
                            *c += 1;
                        }
                        sel.new_round();
                        return Ok(None);
                    }
                }
                let found = sel.sources.iter().find(|s| Some(s.0) == on);
                let queue = match (found, sel.sources.as_slice()) {
                    (Some(s), _) | (None, [s]) => s.1,
                    (None, _) => {
                        return Err(fail(
                            line,
                            "select",
                            "the backend did not say which queue the message came from",
                        ))
                    }
                };
                let (offered, value) = decode(&msg);
                for (i, arm) in arms.iter().enumerate() {
                    if !sel.enabled[i] {
                        continue;
                    }
                    if let Some((q, pattern)) = self.arm_receive(arm)? {
                        let mut binds = Vec::new();
                        if q == queue && matches_value(pattern, value.as_ref(), &mut binds) {
                            self.count_taken(cx, Some(queue), offered);
                            self.bind(binds);
                            self.last_request = Some(Box::new(msg));
                            sel.next = i;
                            return Ok(Some(Flow::Stay));
                        }
                    }
                }
                self.state.pending[queue].push_back(Pending { offered, value });
                sel.new_round();
                Ok(None)
            }
            Err(ReceiveError::TimedOut) if sel.sending || sel.timeout_arm.is_some() => {
                sel.new_round();
                Ok(None)
            }
            Err(_) if self.in_forever() => {
                self.resume = Resume::None;
                Ok(Some(Flow::Break))
            }
            Err(e) => Err(fail(line, "select", e)),
        }
    }
}

/// How a receive statement is named in errors.
fn receive_what(scn: &Arc<crate::scenario::Scenario>, queue: usize, expect: bool) -> String {
    let verb = if expect { "expect" } else { "receive" };
    format!("{verb} {}", scn.queues[queue].name)
}
