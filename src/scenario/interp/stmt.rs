//! One statement that is not a block: IPC, time, spawn, assignments and
//! checks (blocks are run by `exec.rs`).

use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::{Ipc, OnFull, SendErrorKind, Sent};
use mkipc_sim::{Inherit, ProcError};

use super::{fail, Env, Flow, Host, ASSERT_FAILED};
use crate::scenario::expr::set_index;
use crate::scenario::{Dest, Op, Right, Stmt};

impl<H: Host> Env<'_, H> {
    /// Runs one statement that is not a block.
    pub(super) fn stmt(&mut self, s: &Stmt, in_forever: bool) -> Result<Flow, ProcError> {
        let line = s.line;
        if self.shared.is_stopped() {
            return Err(fail(line, "stopped", "the run timed out"));
        }
        let scenario = Arc::clone(&self.shared.scenario);
        let qname = |q: usize| scenario.queues[q].name.clone();
        match &s.op {
            Op::Send { .. } | Op::SendVia { .. } => {
                let (queue, on_full, value) = match &s.op {
                    Op::Send {
                        queue,
                        on_full,
                        value,
                    } => (*queue, on_full, value),
                    Op::SendVia {
                        var,
                        on_full,
                        value,
                    } => (self.dest_queue(&Dest::Var(*var), line)?, on_full, value),
                    _ => return Ok(Flow::Next),
                };
                let queue = &queue;
                let what = format!("send {}", qname(*queue));
                let dest = self
                    .queue_name(*queue, true)
                    .map_err(|e| fail(line, &what, e))?;
                let value = self.eval_opt(value.as_ref(), line)?;
                let msg = self.message_with(value.as_ref());
                let r = self.timed(|p| p.send_with(dest, msg, *on_full));
                self.count_send(Some(*queue), &r);
                match r {
                    Ok(_) => {}
                    Err(e) if e.kind() == SendErrorKind::Full && *on_full == OnFull::Fail => {}
                    Err(e) => return Err(fail(line, &what, e)),
                }
            }
            Op::Receive {
                queue,
                timeout,
                pattern,
                expect,
            } => {
                let verb = if *expect { "expect" } else { "receive" };
                let what = format!("{verb} {}", qname(*queue));
                return self.receive_matching(
                    *queue,
                    pattern.as_ref(),
                    *timeout,
                    *expect,
                    in_forever,
                    line,
                    &what,
                );
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
            }
            // Blocks are flattened by `compile` and run by `run`.
            Op::If { .. } | Op::While { .. } | Op::Select(_) | Op::TrySend { .. } => {}
            Op::SendTo { proc } => {
                let pid = self.pid_of(*proc, line)?;
                let msg = self.message();
                let r = self.timed(|p| p.send_to_with(pid, msg, OnFull::Block));
                self.count_send(None, &r);
                r.map_err(|e| {
                    fail(
                        line,
                        &format!("send-to {}", scenario.processes[*proc].name),
                        e,
                    )
                })?;
            }
            Op::ReceiveFrom { proc, timeout } => {
                let pid = self.pid_of(*proc, line)?;
                let r = self.direct_receive(Some(pid), *timeout);
                let what = format!("receive-from {}", scenario.processes[*proc].name);
                return self.received(r, None, in_forever, line, &what);
            }
            Op::ReceiveAny { timeout } => {
                let r = self.direct_receive(None, *timeout);
                return self.received(r, None, in_forever, line, "receive-any");
            }
            Op::Call { queue } => {
                let what = format!("call {}", qname(*queue));
                let dest = self
                    .queue_name(*queue, true)
                    .map_err(|e| fail(line, &what, e))?;
                let msg = self.message();
                match self.timed(|p| p.call(dest, msg)) {
                    Ok(reply) => {
                        self.count_send(Some(*queue), &Ok(Sent::Delivered));
                        self.count_receive(None, &reply);
                    }
                    Err(_) if in_forever => return Ok(Flow::Break),
                    Err(e) => return Err(fail(line, &what, e)),
                }
            }
            Op::Reply => {
                let Some(request) = self.last_request.take() else {
                    return Err(fail(line, "reply", "no request has been received"));
                };
                let msg = self.message();
                let r = self.p.reply(&request, msg).map(|()| Sent::Delivered);
                self.count_send(None, &r);
                r.map_err(|e| fail(line, "reply", e))?;
            }
            Op::Work(d) => {
                let t = self.h.wall_clock().then(Instant::now);
                self.h.pause(*d, true);
                if let Some(t) = t {
                    self.shared.counters().times[self.me].working += t.elapsed();
                }
            }
            Op::Sleep(d) => self.h.pause(*d, false),
            // Loops are flattened by `compile` and run by `run`.
            Op::Repeat(..) | Op::Forever(..) => {}
            Op::Spawn(child) => {
                let proc = &scenario.processes[*child];
                let mut inherit = Vec::new();
                for (q, right) in &proc.rights {
                    let name = match right {
                        Right::Receive => self.recv_names[*q].take(),
                        Right::Send => self.send_names[*q],
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
                self.h
                    .spawn_script(self.shared, *child, &inherit)
                    .map_err(|e| fail(line, &format!("spawn {}", proc.name), e))?;
            }
            Op::Exit(code) => return Ok(Flow::Exit(*code)),
            Op::Destroy(q) => {
                let what = format!("destroy {}", qname(*q));
                self.h.observe_queues();
                let r = if scenario.queues[*q].is_mailbox() {
                    let name = self
                        .queue_name(*q, false)
                        .map_err(|e| fail(line, &what, e))?;
                    self.p.mailbox_destroy(name)
                } else {
                    let name = self
                        .queue_name(*q, false)
                        .map_err(|e| fail(line, &what, e))?;
                    self.recv_names[*q] = None;
                    self.p.destroy(name)
                };
                r.map_err(|e| fail(line, &what, e))?;
            }
        }
        Ok(Flow::Next)
    }
}
