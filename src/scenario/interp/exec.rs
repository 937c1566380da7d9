//! The interpreter's main loop: one [`Machine::step`](mkipc_sim::machine::Machine::step)
//! of the flattened script ([`compile`](crate::scenario::flow::compile)),
//! with a program counter and loop frames, never a recursion per block.
//!
//! A step first finishes what the last one left ([`Resume`]), then runs
//! instructions until one starts an operation. An operation that completes
//! at once ([`Op::Done`](mkipc_sim::machine::Op)) is finished at once and
//! ends the step ([`Step::Yield`]): every step starts at most one operation,
//! as every IPC operation of a simulated process is one scheduling point.

use std::sync::Arc;

use mkipc_kernel::runtime::WaitOutcome;
use mkipc_sim::machine::{Ctx, Step};
use mkipc_sim::ProcError;

use super::{fail, Flow, Resume, ScriptMachine};
use crate::scenario::flow::{Code, Frame};

/// A script may run this many statements in a row without communicating
/// or waiting; then it is stopped as an endless loop (a loop of
/// assignments would otherwise never yield to the simulator's scheduler).
pub(crate) const MAX_LOCAL_STEPS: u64 = 1_000_000;

impl ScriptMachine {
    /// One step (see the module docs).
    pub(super) fn run<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        resumed: Option<WaitOutcome>,
    ) -> Result<Step, ProcError> {
        let program = Arc::clone(&self.shared.program);
        let code = &program.code[self.me];
        let flow = match std::mem::take(&mut self.resume) {
            Resume::None => {
                if resumed.is_some() {
                    return Err(super::wrong_outcome("nothing", resumed));
                }
                Flow::Stay
            }
            Resume::Opening(k) => {
                if resumed.is_some() {
                    return Err(super::wrong_outcome("nothing", resumed));
                }
                if let Some(step) = self.open_mailboxes(cx, k) {
                    return Ok(step);
                }
                Flow::Stay
            }
            Resume::AwaitPid { tries } => {
                self.resume = Resume::AwaitPid { tries };
                Flow::Stay
            }
            Resume::Send { queue } => {
                let r = super::sent_outcome(resumed)?;
                self.sent(cx, code, queue, r)?
            }
            Resume::Receive {
                src,
                deadline,
                waiting: true,
            } => {
                let r = super::received_outcome(resumed)?;
                match self.received_on(cx, code, src, deadline, r)? {
                    Flow::Again => self.receive_op(cx, code, src, deadline)?,
                    flow => flow,
                }
            }
            Resume::Receive {
                src,
                deadline,
                waiting: false,
            } => {
                if resumed.is_some() {
                    return Err(super::wrong_outcome("nothing", resumed));
                }
                self.receive_op(cx, code, src, deadline)?
            }
            Resume::Direct => {
                let r = super::received_outcome(resumed)?;
                self.direct_received(cx, code, r)?
            }
            Resume::Call {
                queue,
                reply,
                replied: false,
            } => {
                let r = super::sent_outcome(resumed)?;
                self.call_sent(cx, code, queue, reply, r)?
            }
            Resume::Call {
                queue,
                reply,
                replied: true,
            } => {
                let r = super::received_outcome(resumed)?;
                let r = mkipc_sim::machine::call_reply(cx.ipc(), reply, r);
                self.called(cx, code, queue, r)?
            }
            Resume::Called { queue } => {
                let Some(outcome) = resumed else {
                    return Err(super::wrong_outcome("a call", None));
                };
                let r = mkipc_sim::machine::call_outcome(outcome);
                self.called(cx, code, queue, r)?
            }
            Resume::Select(sel) => self.select_continue(cx, code, sel, resumed, true)?,
            Resume::Mech(wait) => self.mech_continue(cx, code, wait, resumed)?,
        };
        if let Some(step) = self.apply(code, flow) {
            return Ok(step);
        }
        self.run_code(cx, code)
    }

    /// Opens the mailboxes the script uses, from the `k`-th on: one
    /// operation per step; `None` once every one is open.
    fn open_mailboxes<C: Ctx<Self>>(&mut self, cx: &mut C, mut k: usize) -> Option<Step> {
        if k == 0 {
            self.shared.set_pid(self.me, cx.pid());
        }
        let program = Arc::clone(&self.shared.program);
        let used = &program.mailboxes[self.me];
        // A process opens the mailboxes its script uses when it starts, as
        // a program opens its files: a mailbox that dies later is then a
        // dead name ("source is dead"), not a name that was never found.
        while let Some(&q) = used.get(k) {
            k += 1;
            if self.names[q].send.is_none() {
                // The open is a scheduling point: a stackless process may
                // have to hand over before it (`NoName::HandOver`).
                if let Err(super::NoName::HandOver) = self.queue_name(cx, q, true) {
                    self.resume = Resume::Opening(k - 1);
                    return Some(Step::Wait);
                }
                self.resume = Resume::Opening(k);
                return Some(Step::Yield);
            }
        }
        None
    }

    /// Applies a flow to the position: `Some` when the step ends.
    fn apply(&mut self, code: &[Code], flow: Flow) -> Option<Step> {
        match flow {
            Flow::Next => self.state.at.pc += 1,
            Flow::Stay => {}
            Flow::Break => self.leave_forever(code),
            // The statement's operation starts again at the next step.
            Flow::Again => return Some(Step::Yield),
            Flow::Stop(step) => return Some(step),
            Flow::Exit(0) => return Some(Step::Exit(Ok(()))),
            Flow::Exit(code) => return Some(Step::Exit(Err(ProcError::exit(code)))),
        }
        None
    }

    /// What finishing an operation that completed within this step leads
    /// to: the step ends there (one operation per step).
    pub(super) fn after_op(&mut self, code: &[Code], flow: Flow) -> Flow {
        match self.apply(code, flow) {
            Some(step) => Flow::Stop(step),
            None => Flow::Stop(Step::Yield),
        }
    }

    /// Runs instructions from the program counter until one starts an
    /// operation (or the script ends).
    fn run_code<C: Ctx<Self>>(&mut self, cx: &mut C, code: &[Code]) -> Result<Step, ProcError> {
        let mut local_steps: u64 = 0;
        // The line of the last statement run: a loop's `end` and a jump
        // have none of their own (an endless loop stopped there named
        // line 0).
        let mut line = 0;
        loop {
            let Some(c) = code.get(self.state.at.pc) else {
                return Ok(Step::Exit(Ok(())));
            };
            local_steps += 1;
            line = match line_of(c) {
                0 => line,
                own => own,
            };
            if local_steps > MAX_LOCAL_STEPS {
                return Err(fail(
                    line,
                    "endless loop",
                    format!(
                        "{MAX_LOCAL_STEPS} statements in a row without communicating or waiting"
                    ),
                ));
            }
            let at = &mut self.state.at;
            let flow = match c {
                Code::Enter { times, end, line } => {
                    if self.shared.is_stopped() {
                        return Err(fail(*line, "stopped", "the run timed out"));
                    }
                    if *times == Some(0) {
                        at.pc = end + 1;
                    } else {
                        at.loops.push(Frame {
                            start: at.pc,
                            left: *times,
                        });
                        at.pc += 1;
                    }
                    Flow::Stay
                }
                Code::End { start } => {
                    let again = match at.loops.last_mut() {
                        Some(Frame {
                            left: Some(left), ..
                        }) => {
                            *left = left.saturating_sub(1);
                            *left > 0
                        }
                        Some(Frame { left: None, .. }) => true,
                        None => false,
                    };
                    if again {
                        at.pc = start + 1;
                    } else {
                        at.loops.pop();
                        at.pc += 1;
                    }
                    Flow::Stay
                }
                Code::Jump(to) => {
                    at.pc = *to;
                    Flow::Stay
                }
                Code::Branch { cond, to, line } => {
                    if self.shared.is_stopped() {
                        return Err(fail(*line, "stopped", "the run timed out"));
                    }
                    let holds = self.eval(cond, *line)?.truthy();
                    let at = &mut self.state.at;
                    at.pc = if holds { at.pc + 1 } else { *to };
                    Flow::Stay
                }
                Code::TrySend {
                    dest, value, line, ..
                } => self.try_send_stmt(cx, code, dest, value.as_ref(), *line)?,
                Code::Select {
                    arms, line, any, ..
                } => self.select_start(cx, code, arms, *any, *line)?,
                Code::Do(stmt) => self.stmt(cx, code, stmt)?,
            };
            if let Some(step) = self.apply(code, flow) {
                return Ok(step);
            }
        }
    }

    pub(super) fn in_forever(&self) -> bool {
        self.state.at.loops.iter().any(|f| f.left.is_none())
    }

    /// A receive failed inside a `forever`: leave the innermost one (and
    /// the `repeat`s inside it).
    fn leave_forever(&mut self, code: &[Code]) {
        let at = &mut self.state.at;
        loop {
            match at.loops.pop() {
                Some(Frame { start, left: None }) => {
                    at.pc = match code.get(start) {
                        Some(Code::Enter { end, .. }) => end + 1,
                        _ => code.len(),
                    };
                    return;
                }
                Some(_) => {}
                None => {
                    at.pc = code.len();
                    return;
                }
            }
        }
    }
}

fn line_of(c: &Code) -> usize {
    match c {
        Code::Do(s) => s.line,
        Code::Enter { line, .. }
        | Code::Branch { line, .. }
        | Code::Select { line, .. }
        | Code::TrySend { line, .. } => *line,
        Code::End { .. } | Code::Jump(_) => 0,
    }
}
