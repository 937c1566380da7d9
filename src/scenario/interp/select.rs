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
//! it waits on the kernel's select over its receive arms. A send arm
//! waiting for room is retried every [`SELECT_POLL`] (the kernel has no
//! wait for "room on one of these queues").

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::{Ipc, Message, OnFull, PortName, ReceiveError, SendErrorKind, Wait};
use mkipc_sim::{Dist, ProcError};

use super::{fail, Env, Flow, Host, EXPECT_FAILED};
use crate::scenario::expr::{Expr, Pattern};
use crate::scenario::flow::{Pending, SELECT_POLL};
use crate::scenario::value::{Show, Value};
use crate::scenario::{Arm, ArmKind, Dest};

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

impl<H: Host> Env<'_, H> {
    /// A message carrying `value` (see the codec in `scenario::value`).
    pub(super) fn message_with(&mut self, value: Option<&Value>) -> Message {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        let offered = self.h.now().as_nanos() as u64;
        match value {
            None => Message::from_u64(id, offered),
            Some(v) => {
                let mut body = offered.to_le_bytes().to_vec();
                body.extend_from_slice(&v.encode());
                Message::new(id, body)
            }
        }
    }

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
            Dest::Var(slot) => match self.state.vars.get(*slot).and_then(Option::as_ref) {
                Some(&Value::Queue(q)) if (q as usize) < self.shared.scenario.queues.len() => {
                    Ok(q as usize)
                }
                other => {
                    let vars = &self.shared.scenario.processes[self.me].vars;
                    let name = vars.get(*slot).map_or("?", String::as_str);
                    let what = other.map_or("no value".to_string(), |v| self.show(v));
                    Err(fail(
                        line,
                        &format!("send {name}"),
                        format!("`{name}` holds {what}, not a port or mailbox"),
                    ))
                }
            },
        }
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

    /// `receive Q [PATTERN] [timeout D]`: the first message matching the
    /// pattern, set-aside ones first; `expect`: the next message, which must
    /// match.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn receive_matching(
        &mut self,
        queue: usize,
        pattern: Option<&Pattern>,
        timeout: Option<Duration>,
        expect: bool,
        in_forever: bool,
        line: usize,
        what: &str,
    ) -> Result<Flow, ProcError> {
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
            self.count_taken(Some(queue), p.offered);
            if !ok {
                return Err(self.mismatch(line, what, p.value.as_ref()));
            }
            self.bind(binds);
            return Ok(Flow::Next);
        }
        let src = self
            .queue_name(queue, false)
            .map_err(|e| fail(line, what, e))?;
        let deadline = timeout.map(|t| self.h.now().saturating_add(t));
        loop {
            let w = match deadline {
                None => Wait::Forever,
                Some(d) => Wait::For(d.saturating_sub(self.h.now())),
            };
            match self.timed(|p| p.receive_with(src, w)) {
                Ok(msg) => {
                    let (offered, value) = decode(&msg);
                    let mut binds = Vec::new();
                    if matches_value(pattern, value.as_ref(), &mut binds) {
                        self.count_taken(Some(queue), offered);
                        self.bind(binds);
                        self.last_request = Some(msg);
                        return Ok(Flow::Next);
                    }
                    if expect {
                        self.count_taken(Some(queue), offered);
                        return Err(self.mismatch(line, what, value.as_ref()));
                    }
                    self.state.pending[queue].push_back(Pending { offered, value });
                }
                Err(_) if in_forever => return Ok(Flow::Break),
                Err(e) => return Err(fail(line, what, e)),
            }
        }
    }

    fn mismatch(&self, line: usize, what: &str, got: Option<&Value>) -> ProcError {
        let got = got.map_or("a message with no value".to_string(), |v| self.show(v));
        self.check_failed(fail(line, what, format!("{EXPECT_FAILED}: got {got}")))
    }

    /// `try-send`: whether the message went (a full queue is not an error).
    pub(super) fn try_send(
        &mut self,
        dest: &Dest,
        value: Option<&Expr>,
        line: usize,
    ) -> Result<bool, ProcError> {
        let q = self.dest_queue(dest, line)?;
        let value = self.eval_opt(value, line)?;
        let what = format!("try-send {}", self.shared.scenario.queues[q].name);
        let name = self.queue_name(q, true).map_err(|e| fail(line, &what, e))?;
        let msg = self.message_with(value.as_ref());
        let r = self.timed(|p| p.send_with(name, msg, OnFull::Fail));
        match r {
            Err(e) if e.kind() == SendErrorKind::Full => Ok(false),
            r => {
                self.count_send(Some(q), &r);
                r.map(|_| true).map_err(|e| fail(line, &what, e))
            }
        }
    }

    /// Runs a `select`: the index of the arm taken, or `None` when a
    /// receive failed inside a `forever` (leave it).
    pub(super) fn select(
        &mut self,
        arms: &[Arm],
        line: usize,
        in_forever: bool,
    ) -> Result<Option<usize>, ProcError> {
        let mut enabled = Vec::with_capacity(arms.len());
        for arm in arms {
            enabled.push(match &arm.guard {
                None => true,
                Some(g) => self.eval(g, arm.line)?.truthy(),
            });
        }
        let timeout = arms.iter().enumerate().find_map(|(i, a)| match a.kind {
            ArmKind::Timeout(d) if enabled[i] => Some((i, d)),
            _ => None,
        });
        let deadline = timeout.map(|(_, d)| self.h.now().saturating_add(d));
        let scn = Arc::clone(&self.shared.scenario);
        loop {
            // Set-aside messages first, then one try of each arm in order.
            for (i, arm) in arms.iter().enumerate() {
                if let (true, ArmKind::Receive { queue, pattern }) = (enabled[i], &arm.kind) {
                    if let Some((offered, binds)) = self.take_pending(*queue, pattern.as_ref()) {
                        self.count_taken(Some(*queue), offered);
                        self.bind(binds);
                        return Ok(Some(i));
                    }
                }
            }
            let mut sources: Vec<(PortName, usize)> = Vec::new();
            let mut sending = false;
            for (i, arm) in arms.iter().enumerate() {
                if !enabled[i] {
                    continue;
                }
                match &arm.kind {
                    ArmKind::Receive { queue, .. } => {
                        let what = format!("select: receive {}", scn.queues[*queue].name);
                        let src = self
                            .queue_name(*queue, false)
                            .map_err(|e| fail(arm.line, &what, e))?;
                        if !sources.contains(&(src, *queue)) {
                            sources.push((src, *queue));
                        }
                    }
                    ArmKind::Send { dest, value } => {
                        if self.try_send(dest, value.as_ref(), arm.line)? {
                            return Ok(Some(i));
                        }
                        sending = true;
                    }
                    ArmKind::Timeout(_) => {}
                }
            }
            let remaining = deadline.map(|d| d.saturating_sub(self.h.now()));
            if let (Some((i, _)), Some(Duration::ZERO)) = (timeout, remaining) {
                return Ok(Some(i));
            }
            if sources.is_empty() && !sending {
                return match (timeout, remaining) {
                    (Some((i, _)), Some(r)) => {
                        self.h.pause(Dist::fixed(r), false);
                        Ok(Some(i))
                    }
                    _ => Err(fail(
                        line,
                        "select",
                        "no arm is enabled (every guard is false)",
                    )),
                };
            }
            // Wait for a message; with a send arm waiting for room, only
            // for a poll interval, then try the sends again.
            let w = match (sending, remaining) {
                (true, Some(r)) => Wait::For(r.min(SELECT_POLL)),
                (true, None) => Wait::For(SELECT_POLL),
                (false, Some(r)) => Wait::For(r),
                (false, None) => Wait::Forever,
            };
            if sources.is_empty() {
                if let Wait::For(d) = w {
                    self.h.pause(Dist::fixed(d), false);
                }
                continue;
            }
            let names: Vec<PortName> = sources.iter().map(|s| s.0).collect();
            match self.timed(|p| p.select_with(&names, w)) {
                Ok(msg) => {
                    let on = msg.received_on();
                    let found = sources.iter().find(|s| Some(s.0) == on);
                    let queue = match (found, sources.as_slice()) {
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
                        if let (true, ArmKind::Receive { queue: q, pattern }) =
                            (enabled[i], &arm.kind)
                        {
                            let mut binds = Vec::new();
                            if *q == queue
                                && matches_value(pattern.as_ref(), value.as_ref(), &mut binds)
                            {
                                self.count_taken(Some(queue), offered);
                                self.bind(binds);
                                self.last_request = Some(msg);
                                return Ok(Some(i));
                            }
                        }
                    }
                    self.state.pending[queue].push_back(Pending { offered, value });
                }
                Err(ReceiveError::TimedOut) if sending || timeout.is_some() => {}
                Err(_) if in_forever => return Ok(None),
                Err(e) => return Err(fail(line, "select", e)),
            }
        }
    }
}
