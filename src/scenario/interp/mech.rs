//! The mechanisms' statements (`crate::scenario::mech`): `close` of a
//! pipe's end, end of file on a read, `load`/`store` of a shared variable
//! and `lock`/`unlock`, each a start and a finish like every other
//! operation of the machine.

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Ipc, Message, OnFull, SendError, Sent, Wait};
use mkipc_sim::machine::{Ctx, Step};
use mkipc_sim::ProcError;

use super::select::{decode, matches_value};
use super::{done, fail, Flow, Resume, ScriptMachine, EXPECT_FAILED};
use crate::scenario::expr::Pattern;
use crate::scenario::flow::Code;
use crate::scenario::mech::{self, MechOp, EOF};
use crate::scenario::value::Value;
use crate::scenario::{Op, Stmt};

/// A `load`, `store`, `lock` or `unlock` under way.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum MechWait {
    /// Taking the cell's message or the lock's token; for a `store`, the
    /// value it will put instead.
    Taking { store: Option<Value> },
    /// Putting `value` into the cell (a `load` puts back what it took),
    /// or the token (`unlock`, `value: None`): `started` once the send is
    /// under way (else it starts at the next step).
    Putting { value: Option<Value>, started: bool },
}

impl ScriptMachine {
    /// Runs one of the mechanisms' statements, or starts its operation.
    pub(super) fn mech_stmt<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        op: &MechOp,
        line: usize,
    ) -> Result<Flow, ProcError> {
        match op {
            MechOp::Close(q) => {
                let what = format!("close {}", self.scenario().queues[*q].name);
                // A stackless process hands over before the close, as a
                // coroutine would (`Ctx::ipc_point`): the statement runs
                // again in the next step.
                let holds = self.names[*q].recv.is_some() || self.names[*q].send.is_some();
                if holds && matches!(cx.ipc_point(), mkipc_sim::machine::Op::Pending) {
                    return Ok(self.waiting(Resume::None));
                }
                let r = if let Some(name) = self.names[*q].recv.take() {
                    // The read end: the port dies, every write is a broken pipe.
                    cx.ipc().destroy(name)
                } else if let Some(name) = self.names[*q].send.take() {
                    // A write end: the last one gone is end of file.
                    cx.ipc().deallocate(name)
                } else {
                    return Err(fail(line, &what, "this process has already closed its end"));
                };
                r.map_err(|e| fail(line, &what, e))?;
                Ok(self.after_op(code, Flow::Next))
            }
            MechOp::Load { cell, .. } => self.take(cx, code, *cell, None, line),
            MechOp::Store { cell, value } => {
                let v = self.eval(value, line)?;
                self.take(cx, code, *cell, Some(v), line)
            }
            MechOp::Lock(q) => self.take(cx, code, *q, None, line),
            MechOp::Unlock(q) => {
                let msg = mech::cell_message(None);
                self.put(cx, code, *q, msg, line)
            }
        }
    }

    /// The statement at the program counter, if it is one of ours.
    fn mech_at<'c>(&self, code: &'c [Code]) -> Result<(&'c MechOp, usize), ProcError> {
        match code.get(self.state.at.pc) {
            Some(Code::Do(Stmt {
                op: Op::Mech(m),
                line,
            })) => Ok((m, *line)),
            _ => Err(ProcError::msg(
                "a memory access finished where none was started",
            )),
        }
    }

    /// Starts taking the message of cell (or lock) `q`.
    fn take<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        q: usize,
        store: Option<Value>,
        line: usize,
    ) -> Result<Flow, ProcError> {
        let what = self.mech_what(q);
        let Some(name) = self.name_for(cx, q, false, line, &what)? else {
            return Ok(self.waiting(Resume::None));
        };
        match done(cx.receive(Source::Name(name), Wait::Forever)) {
            Some(r) => {
                let flow = self.taken(cx, code, store, r)?;
                Ok(match flow {
                    // The put starts in the next step: one operation a step.
                    Flow::Again => Flow::Stop(Step::Yield),
                    flow => self.after_op(code, flow),
                })
            }
            None => Ok(self.waiting(Resume::Mech(MechWait::Taking { store }))),
        }
    }

    /// The take finished: a `lock` is done; a `load` binds the value and
    /// puts it back, a `store` puts the new one (at the next step).
    fn taken<C: Ctx<Self>>(
        &mut self,
        _cx: &mut C,
        code: &[Code],
        store: Option<Value>,
        r: Result<Message, mkipc_kernel::ReceiveError>,
    ) -> Result<Flow, ProcError> {
        let (op, line) = self.mech_at(code)?;
        let q = op.queue();
        let msg = r.map_err(|e| fail(line, &self.mech_what(q), mech::cell_gone(&e)))?;
        self.count_mech(0, 1);
        match op {
            MechOp::Lock(_) => Ok(Flow::Next),
            MechOp::Load { var, .. } => {
                let value = decode(&msg).1.unwrap_or(Value::Int(0));
                if let Some(slot) = self.state.vars.get_mut(*var) {
                    *slot = Some(value.clone());
                }
                self.resume = Resume::Mech(MechWait::Putting {
                    value: Some(value),
                    started: false,
                });
                Ok(Flow::Again)
            }
            MechOp::Store { .. } => {
                self.resume = Resume::Mech(MechWait::Putting {
                    value: store,
                    started: false,
                });
                Ok(Flow::Again)
            }
            MechOp::Close(_) | MechOp::Unlock(_) => Err(ProcError::msg(format!(
                "line {line}: a take finished where none was started"
            ))),
        }
    }

    /// Starts putting `msg` into cell (or lock) `q`: it never waits (the
    /// cell is empty: this process took its message).
    fn put<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        q: usize,
        msg: Message,
        line: usize,
    ) -> Result<Flow, ProcError> {
        let value = decode(&msg).1;
        let what = self.mech_what(q);
        let Some(name) = self.name_for(cx, q, true, line, &what)? else {
            // Again from the put (an `unlock`'s is the put of no value).
            return Ok(self.waiting(Resume::Mech(MechWait::Putting {
                value,
                started: false,
            })));
        };
        match done(cx.send(Destination::Name(name), msg, OnFull::Fail)) {
            Some(r) => {
                let flow = self.put_done(code, r)?;
                Ok(self.after_op(code, flow))
            }
            None => Ok(self.waiting(Resume::Mech(MechWait::Putting {
                value,
                started: true,
            }))),
        }
    }

    fn put_done(&mut self, code: &[Code], r: Result<Sent, SendError>) -> Result<Flow, ProcError> {
        let (op, line) = self.mech_at(code)?;
        match r {
            Ok(_) => {
                self.count_mech(1, 0);
                Ok(Flow::Next)
            }
            Err(e) => {
                let why = match op {
                    MechOp::Unlock(_) if e.kind() == mkipc_kernel::SendErrorKind::Full => {
                        "the lock is not held".to_string()
                    }
                    _ => e.to_string(),
                };
                Err(fail(line, &self.mech_what(op.queue()), why))
            }
        }
    }

    /// Finishes (or goes on with) the operation of a memory statement.
    pub(super) fn mech_continue<C: Ctx<Self>>(
        &mut self,
        cx: &mut C,
        code: &[Code],
        wait: MechWait,
        resumed: Option<WaitOutcome>,
    ) -> Result<Flow, ProcError> {
        match wait {
            MechWait::Taking { store } => {
                let r = super::received_outcome(resumed)?;
                match self.taken(cx, code, store, r)? {
                    Flow::Again => Ok(Flow::Stop(Step::Yield)),
                    flow => Ok(self.after_op(code, flow)),
                }
            }
            MechWait::Putting { started: true, .. } => {
                let r = super::sent_outcome(resumed)?;
                let flow = self.put_done(code, r)?;
                Ok(self.after_op(code, flow))
            }
            MechWait::Putting {
                value,
                started: false,
            } => {
                if resumed.is_some() {
                    return Err(super::wrong_outcome("nothing", resumed));
                }
                // The put after a take starts here.
                let (op, line) = self.mech_at(code)?;
                let q = op.queue();
                let msg = mech::cell_message(value.as_ref());
                self.put(cx, code, q, msg, line)
            }
        }
    }

    /// Counts kernel messages of the mechanisms (not the run's messages).
    pub(super) fn count_mech(&self, sent: u64, received: u64) {
        let mut c = self.shared.counters();
        if let Some(m) = c.mech.get_mut(self.me) {
            m.0 += sent;
            m.1 += received;
        }
    }

    fn mech_what(&self, q: usize) -> String {
        let queue = &self.scenario().queues[q];
        format!("{} `{}`", queue.kind_name(), queue.name)
    }

    /// The symbol a read at end of file gives.
    fn eof_value(&self) -> Value {
        let i = self
            .scenario()
            .symbols
            .iter()
            .position(|s| s == EOF)
            .unwrap_or(0);
        Value::Sym(i as u32)
    }

    /// Whether the read end of pipe `q` has seen end of file.
    pub(super) fn at_eof(&self, q: usize) -> bool {
        self.eof.contains(&q)
    }

    /// A receive on pipe `q` met end of file (now, or before: it stays):
    /// in a `forever` loop it ends the loop; elsewhere a pattern that
    /// matches `EOF` (a variable, `_`, `EOF`) takes it, an `expect` of
    /// anything else fails, and any other receive fails the process.
    pub(super) fn eof_read(
        &mut self,
        q: usize,
        pattern: Option<&Pattern>,
        expect: bool,
        line: usize,
    ) -> Result<Flow, ProcError> {
        if let Err(at) = self.eof.binary_search(&q) {
            self.eof.insert(at, q);
        }
        if self.in_forever() {
            // The `while read line` idiom: end of file ends the loop.
            return Ok(Flow::Break);
        }
        let v = self.eof_value();
        let mut binds = Vec::new();
        if pattern.is_some() && matches_value(pattern, Some(&v), &mut binds) {
            for (slot, v) in binds {
                if let Some(var) = self.state.vars.get_mut(slot) {
                    *var = Some(v);
                }
            }
            return Ok(Flow::Next);
        }
        let queue = &self.scenario().queues[q];
        if expect {
            let e = fail(
                line,
                &format!("expect {}", queue.name),
                format!("{EXPECT_FAILED}: got end of file ({EOF})"),
            );
            return Err(self.check_failed(e));
        }
        Err(fail(
            line,
            &format!("receive {}", queue.name),
            mech::eof_error(queue),
        ))
    }
}
