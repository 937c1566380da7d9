//! One statement that is not a block: its start, and the finish of its
//! operation (blocks are run by `exec.rs`, receives and `select` by
//! `select.rs`).

use std::sync::Arc;

use mkipc_kernel::runtime::{Destination, Source};
use mkipc_kernel::{
    CallError, Ipc, Message, OnFull, PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};
use mkipc_sim::machine::{call_not_sent, call_reply, call_request, CallStart, Ctx, Step};
use mkipc_sim::{Inherit, ProcError};

use super::{done, fail, Flow, Resume, ScriptMachine, ASSERT_FAILED};
use crate::scenario::expr::set_index;
use crate::scenario::flow::Code;
use crate::scenario::{Dest, Op, Right, Stmt};

fn wait(timeout: Option<std::time::Duration>) -> Wait {
    timeout.map_or(Wait::Forever, Wait::For)
}

impl ScriptMachine {
    /// Runs one statement that is not a block, or starts its operation.
    pub(super) fn stmt<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        s: &Stmt,
    ) -> Result<Flow, ProcError> {
        let line = s.line;
        if self.shared.is_stopped() {
            return Err(fail(line, "stopped", "the run timed out"));
        }
        let scenario = Arc::clone(&self.shared.scenario);
        let qname = |q: usize| scenario.queues[q].name.clone();
        let flow = match &s.op {
            Op::Send {
                queue,
                on_full,
                value,
            } => self.send_stmt(cx, code, *queue, *on_full, value.as_ref(), line)?,
            Op::SendVia {
                var,
                on_full,
                value,
            } => {
                let queue = self.dest_queue(&Dest::Var(*var), line)?;
                self.send_stmt(cx, code, queue, *on_full, value.as_ref(), line)?
            }
            Op::Receive {
                queue,
                timeout,
                pattern,
                expect,
            } => self.receive_start(cx, code, *queue, pattern.as_ref(), *timeout, *expect, line)?,
            Op::ReceiveVia {
                var,
                timeout,
                pattern,
                expect,
            } => {
                let verb = if *expect { "expect" } else { "receive" };
                let queue = self.held_queue(*var, verb, line)?;
                self.receive_start(cx, code, queue, pattern.as_ref(), *timeout, *expect, line)?
            }
            Op::Assign { var, index, value } => {
                let v = self.eval(value, line)?;
                let name = &scenario.processes[self.me].vars[*var];
                match index {
                    None => self.state.vars[*var] = Some(v),
                    Some(i) => {
                        let i = self.eval(i, line)?;
                        let Some(array) = self.state.vars[*var].as_mut() else {
                            return Err(fail(
                                line,
                                &format!("{name}[...] = ..."),
                                format!("`{name}` has no value yet"),
                            ));
                        };
                        set_index(array, i, v)
                            .map_err(|m| fail(line, &format!("{name}[...] = ..."), m))?;
                    }
                }
                Flow::Next
            }
            Op::Assert { cond } => {
                if !self.eval(cond, line)?.truthy() {
                    let e = fail(
                        line,
                        ASSERT_FAILED,
                        format!("{}{}", cond.text, self.values_of(cond)),
                    );
                    return Err(self.check_failed(e));
                }
                Flow::Next
            }
            // Blocks are flattened by `compile` and run by `run_code`.
            Op::If { .. }
            | Op::While { .. }
            | Op::Select(_)
            | Op::SelectAny(_)
            | Op::TrySend { .. }
            | Op::Repeat(..)
            | Op::Forever(..) => Flow::Next,
            Op::SendTo { proc } => {
                let pid = match self.pid_of(*proc, line)? {
                    Ok(pid) => pid,
                    Err(pause) => return Ok(Flow::Stop(pause)),
                };
                let msg = self.message_with(cx, None);
                self.send_op(cx, code, Destination::Task(pid), msg, OnFull::Block, None)?
            }
            Op::ReceiveFrom { proc, timeout } => {
                let pid = match self.pid_of(*proc, line)? {
                    Ok(pid) => pid,
                    Err(pause) => return Ok(Flow::Stop(pause)),
                };
                self.direct_op(cx, code, Source::Task(pid), wait(*timeout))?
            }
            Op::ReceiveAny { timeout } => {
                self.direct_op(cx, code, Source::AnyTask, wait(*timeout))?
            }
            Op::Call { .. } | Op::CallVia { .. } => {
                let (queue, value) = match &s.op {
                    Op::CallVia { var, value, .. } => (self.held_queue(*var, "call", line)?, value),
                    Op::Call { queue, value, .. } => (*queue, value),
                    _ => return Err(fail(line, "call", "not a call")),
                };
                let queue = &queue;
                let what = format!("call {}", qname(*queue));
                let Some(dest) = self.name_for(cx, *queue, true, line, &what)? else {
                    return Ok(self.waiting(Resume::None));
                };
                let value = self.eval_opt(value.as_ref(), line)?;
                let msg = self.message_with(cx, value.as_ref());
                self.note_wait(cx);
                match cx.call(dest, msg) {
                    CallStart::Done(r) => {
                        let flow = self.called(cx, code, *queue, r)?;
                        self.after_op(code, flow)
                    }
                    CallStart::Pending => self.waiting(Resume::Called { queue: *queue }),
                    CallStart::InTwo(msg) => match call_request(cx.ipc(), msg) {
                        Err(e) => {
                            let flow = self.called(cx, code, *queue, Err(e))?;
                            self.after_op(code, flow)
                        }
                        Ok((msg, reply)) => {
                            let sent = cx.send(Destination::Name(dest), msg, OnFull::Block);
                            match done(sent) {
                                Some(r) => self.call_sent(cx, code, *queue, reply, r)?,
                                None => self.waiting(Resume::Call {
                                    queue: *queue,
                                    reply,
                                    replied: false,
                                }),
                            }
                        }
                    },
                }
            }
            Op::Reply { value } => {
                let value = self.eval_opt(value.as_ref(), line)?;
                let Some(request) = self.last_request.take() else {
                    return Err(fail(line, "reply", "no request has been received"));
                };
                let msg = self.message_with(cx, value.as_ref());
                // What `Ipc::reply` does: a send on the request's send-once
                // right, which never waits for room.
                let to = match request.reply() {
                    Some(right) if !right.name.is_dead() => Ok(right.name),
                    Some(_) => Err(SendErrorKind::DestinationDead),
                    None => Err(SendErrorKind::InvalidDestination),
                };
                match to {
                    Err(kind) => {
                        let flow = self.sent(cx, code, None, Err(kind.with(msg)))?;
                        self.after_op(code, flow)
                    }
                    Ok(to) => {
                        self.send_op(cx, code, Destination::Name(to), msg, OnFull::Block, None)?
                    }
                }
            }
            Op::Work(d) => {
                self.state.at.pc += 1;
                Flow::Stop(Step::Pause {
                    time: *d,
                    busy: true,
                })
            }
            Op::Sleep(d) => {
                self.state.at.pc += 1;
                Flow::Stop(Step::Pause {
                    time: *d,
                    busy: false,
                })
            }
            Op::Spawn(child) => {
                let proc = &scenario.processes[*child];
                let mut inherit = Vec::new();
                for (q, right) in &proc.rights {
                    let name = match right {
                        Right::Receive => self.names[*q].recv.take(),
                        Right::Send => self.names[*q].send,
                    };
                    let Some(name) = name else {
                        return Err(fail(line, &format!("spawn {}", proc.name), format!(
                            "this process no longer holds the right to `{}` it must hand on (spawned twice?)",
                            qname(*q)
                        )));
                    };
                    inherit.push(match right {
                        Right::Receive => Inherit::receive(name),
                        Right::Send => Inherit::copy_send(name),
                    });
                }
                let shared = Arc::clone(&self.shared);
                let child = *child;
                cx.spawn(&proc.name, &inherit, move |rights| {
                    ScriptMachine::from_rights(&shared, child, rights)
                })
                .map_err(|e| fail(line, &format!("spawn {}", proc.name), e))?;
                self.after_op(code, Flow::Next)
            }
            Op::Exit(code) => Flow::Exit(*code),
            Op::Mech(m) => self.mech_stmt(cx, code, m, line)?,
            Op::Destroy(q) => {
                let what = format!("destroy {}", qname(*q));
                let Some(name) = self.name_for(cx, *q, false, line, &what)? else {
                    return Ok(self.waiting(Resume::None));
                };
                // A stackless process hands over before the destroy, as a
                // coroutine would (`Ctx::ipc_point`); the statement runs
                // again in the next step (its queue's name is at hand).
                if matches!(cx.ipc_point(), mkipc_sim::machine::Op::Pending) {
                    return Ok(self.waiting(Resume::None));
                }
                if let Some(hook) = &self.shared.before_destroy {
                    (hook.0)();
                }
                let r = if scenario.queues[*q].is_mailbox() {
                    cx.ipc().mailbox_destroy(name)
                } else {
                    self.names[*q].recv = None;
                    cx.ipc().destroy(name)
                };
                r.map_err(|e| fail(line, &what, e))?;
                self.after_op(code, Flow::Next)
            }
        };
        Ok(flow)
    }

    /// The step ends waiting for the operation `resume` describes.
    pub(super) fn waiting(&mut self, resume: Resume) -> Flow {
        self.resume = resume;
        Flow::Stop(Step::Wait)
    }

    /// `send Q [POLICY] [VALUE]`: starts the send.
    fn send_stmt<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        queue: usize,
        on_full: OnFull,
        value: Option<&crate::scenario::Expr>,
        line: usize,
    ) -> Result<Flow, ProcError> {
        let what = format!("send {}", self.scenario().queues[queue].name);
        let Some(dest) = self.name_for(cx, queue, true, line, &what)? else {
            return Ok(self.waiting(Resume::None));
        };
        let value = self.eval_opt(value, line)?;
        let msg = self.message_with(cx, value.as_ref());
        self.send_op(cx, code, Destination::Name(dest), msg, on_full, Some(queue))
    }

    /// Starts the send of the statement at the program counter, counted
    /// for `queue`, and finishes it if it completes at once.
    pub(super) fn send_op<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        dest: Destination,
        msg: Message,
        on_full: OnFull,
        queue: Option<usize>,
    ) -> Result<Flow, ProcError> {
        Ok(match done(cx.send(dest, msg, on_full)) {
            Some(r) => {
                let flow = self.sent(cx, code, queue, r)?;
                self.after_op(code, flow)
            }
            None => self.waiting(Resume::Send { queue }),
        })
    }

    /// Finishes the send of the statement at the program counter (`queue`:
    /// the queue it counts for, `None` for direct and reply messages).
    pub(super) fn sent<C: Ctx<Self>>(
        &mut self,
        _cx: &mut C,
        code: &[Code],
        queue: Option<usize>,
        r: Result<Sent, SendError>,
    ) -> Result<Flow, ProcError> {
        let scenario = Arc::clone(&self.shared.scenario);
        match code.get(self.state.at.pc) {
            Some(Code::Do(s)) => match &s.op {
                Op::Send { on_full, .. } | Op::SendVia { on_full, .. } => {
                    let q = queue.unwrap_or_default();
                    self.count_send(Some(q), &r);
                    match r {
                        Ok(_) => Ok(Flow::Next),
                        Err(e) if e.kind() == SendErrorKind::Full && *on_full == OnFull::Fail => {
                            Ok(Flow::Next)
                        }
                        Err(e)
                            if e.kind() == SendErrorKind::DestinationDead
                                && scenario.queues[q].is_pipe() =>
                        {
                            Err(fail(
                                s.line,
                                &format!("send {}", scenario.queues[q].name),
                                crate::scenario::mech::broken_pipe(&scenario.queues[q]),
                            ))
                        }
                        Err(e) => Err(fail(
                            s.line,
                            &format!("send {}", scenario.queues[q].name),
                            e,
                        )),
                    }
                }
                Op::SendTo { proc } => {
                    self.count_send(None, &r);
                    r.map_err(|e| {
                        fail(
                            s.line,
                            &format!("send-to {}", scenario.processes[*proc].name),
                            e,
                        )
                    })?;
                    Ok(Flow::Next)
                }
                Op::Reply { .. } => {
                    let r = r.map(|_| Sent::Delivered);
                    self.count_send(None, &r);
                    r.map_err(|e| fail(s.line, "reply", e))?;
                    Ok(Flow::Next)
                }
                _ => Err(ProcError::msg(format!(
                    "line {}: a send finished where none was started",
                    s.line
                ))),
            },
            Some(Code::TrySend { end, line, .. }) => {
                let q = queue.unwrap_or_default();
                match r {
                    Err(e) if e.kind() == SendErrorKind::Full => Ok(Flow::Next),
                    r => {
                        self.count_send(Some(q), &r);
                        let what = format!("try-send {}", scenario.queues[q].name);
                        r.map_err(|e| fail(*line, &what, e))?;
                        self.state.at.pc = *end;
                        Ok(Flow::Stay)
                    }
                }
            }
            _ => Err(ProcError::msg("a send finished where none was started")),
        }
    }

    /// `receive-from` / `receive-any`: starts the receive (the host passes
    /// over its own control messages, see the os backend's `Ctx`).
    fn direct_op<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        source: Source<'_>,
        w: Wait,
    ) -> Result<Flow, ProcError> {
        self.note_wait(cx);
        Ok(match done(cx.receive(source, w)) {
            Some(r) => {
                let flow = self.direct_received(cx, code, r)?;
                self.after_op(code, flow)
            }
            None => self.waiting(Resume::Direct),
        })
    }

    /// Finishes a `receive-from` / `receive-any`.
    pub(super) fn direct_received<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        r: Result<Message, ReceiveError>,
    ) -> Result<Flow, ProcError> {
        let (line, what) = match code.get(self.state.at.pc) {
            Some(Code::Do(s)) => match &s.op {
                Op::ReceiveFrom { proc, .. } => (
                    s.line,
                    format!(
                        "receive-from {}",
                        self.shared.scenario.processes[*proc].name
                    ),
                ),
                _ => (s.line, "receive-any".to_string()),
            },
            _ => (0, "receive-any".to_string()),
        };
        match r {
            Ok(msg) => {
                self.count_receive(cx, None, &msg);
                self.last_request = Some(Box::new(msg));
                Ok(Flow::Next)
            }
            Err(_) if self.in_forever() => Ok(Flow::Break),
            Err(e) => Err(fail(line, &what, e)),
        }
    }

    /// A call's request went (or not): on to the receive of the reply.
    pub(super) fn call_sent<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        queue: usize,
        reply: PortName,
        r: Result<Sent, SendError>,
    ) -> Result<Flow, ProcError> {
        if let Err(e) = r {
            let e = call_not_sent(cx.ipc(), reply, e);
            let flow = self.called(cx, code, queue, Err(e))?;
            return Ok(self.after_op(code, flow));
        }
        // The reply's receive belongs to the call, as in `Ipc::call_with`:
        // it starts in the step whose send completed.
        self.note_wait(cx);
        Ok(match done(cx.receive(Source::Name(reply), Wait::Forever)) {
            Some(r) => {
                let r = call_reply(cx.ipc(), reply, r);
                let flow = self.called(cx, code, queue, r)?;
                self.after_op(code, flow)
            }
            None => self.waiting(Resume::Call {
                queue,
                reply,
                replied: true,
            }),
        })
    }

    /// Finishes a `call`.
    pub(super) fn called<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        queue: usize,
        r: Result<Message, CallError>,
    ) -> Result<Flow, ProcError> {
        let (line, pattern) = match code.get(self.state.at.pc) {
            Some(Code::Do(s)) => match &s.op {
                Op::Call { reply, .. } | Op::CallVia { reply, .. } => (s.line, reply.as_ref()),
                _ => (s.line, None),
            },
            _ => (0, None),
        };
        match r {
            Ok(reply) => {
                self.count_send(Some(queue), &Ok(Sent::Delivered));
                self.count_receive(cx, None, &reply);
                if let Some(pattern) = pattern {
                    let value = super::select::decode(&reply).1;
                    let mut binds = Vec::new();
                    if !super::select::matches_value(Some(pattern), value.as_ref(), &mut binds) {
                        let what = format!("call {}", self.shared.scenario.queues[queue].name);
                        return Err(self.mismatch(line, &what, value.as_ref()));
                    }
                    self.bind(binds);
                }
                Ok(Flow::Next)
            }
            Err(_) if self.in_forever() => Ok(Flow::Break),
            Err(e) => Err(fail(
                line,
                &format!("call {}", self.shared.scenario.queues[queue].name),
                e,
            )),
        }
    }
}
