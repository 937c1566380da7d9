//! The interpreter's main loop: the flattened script ([`compile`]) run
//! with a program counter and loop frames, never a recursion per block.

use mkipc_sim::ProcError;

use super::{fail, Env, Flow, Host};
use crate::scenario::flow::{compile, Code, Frame};
use crate::scenario::{Op, Stmt};

/// A script may run this many statements in a row without communicating
/// or waiting; then it is stopped as an endless loop (a loop of
/// assignments would otherwise never yield to the simulator's scheduler).
pub(crate) const MAX_LOCAL_STEPS: u64 = 1_000_000;

impl<H: Host> Env<'_, H> {
    /// Runs a script to its end: a loop over its flattened code with an
    /// explicit [`Position`], never a recursion per block, so however
    /// deeply a script nests it runs on the smallest coroutine stack.
    pub(super) fn run(&mut self, stmts: &[Stmt]) -> Result<Flow, ProcError> {
        let code = compile(stmts);
        while let Some(c) = code.get(self.state.at.pc) {
            self.local_steps += 1;
            if self.local_steps > MAX_LOCAL_STEPS {
                return Err(fail(
                    self.line_of(c),
                    "endless loop",
                    format!(
                        "{MAX_LOCAL_STEPS} statements in a row without communicating or waiting"
                    ),
                ));
            }
            let at = &mut self.state.at;
            match c {
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
                }
                Code::Jump(to) => at.pc = *to,
                Code::Branch { cond, to, line } => {
                    if self.shared.is_stopped() {
                        return Err(fail(*line, "stopped", "the run timed out"));
                    }
                    let holds = self.eval(cond, *line)?.truthy();
                    let at = &mut self.state.at;
                    at.pc = if holds { at.pc + 1 } else { *to };
                }
                Code::TrySend {
                    dest,
                    value,
                    end,
                    line,
                } => {
                    self.local_steps = 0;
                    let sent = self.try_send(dest, *value, *line)?;
                    let at = &mut self.state.at;
                    at.pc = if sent { *end } else { at.pc + 1 };
                }
                Code::Select { arms, starts, line } => {
                    self.local_steps = 0;
                    let in_forever = self.in_forever();
                    match self.select(arms, *line, in_forever)? {
                        Some(i) => self.state.at.pc = starts.get(i).copied().unwrap_or(code.len()),
                        None => self.leave_forever(&code)?,
                    }
                }
                Code::Do(stmt) => {
                    if !matches!(stmt.op, Op::Assign { .. } | Op::Assert { .. }) {
                        self.local_steps = 0;
                    }
                    let in_forever = self.in_forever();
                    match self.stmt(stmt, in_forever)? {
                        Flow::Next => self.state.at.pc += 1,
                        exit @ Flow::Exit(_) => return Ok(exit),
                        Flow::Break => self.leave_forever(&code)?,
                    }
                }
            }
        }
        Ok(Flow::Next)
    }

    /// Records a failed check for the whole run, and returns its error.
    pub(super) fn check_failed(&self, e: ProcError) -> ProcError {
        let name = &self.shared.scenario.processes[self.me].name;
        self.shared.record_check_failure(format!("`{name}` {e}"));
        e
    }

    fn in_forever(&self) -> bool {
        self.state.at.loops.iter().any(|f| f.left.is_none())
    }

    /// A receive failed inside a `forever`: leave the innermost one (and
    /// the `repeat`s inside it).
    fn leave_forever(&mut self, code: &[Code<'_>]) -> Result<(), ProcError> {
        let at = &mut self.state.at;
        loop {
            match at.loops.pop() {
                Some(Frame { start, left: None }) => {
                    at.pc = match code.get(start) {
                        Some(Code::Enter { end, .. }) => end + 1,
                        _ => code.len(),
                    };
                    return Ok(());
                }
                Some(_) => {}
                None => {
                    at.pc = code.len();
                    return Ok(());
                }
            }
        }
    }

    fn line_of(&self, c: &Code<'_>) -> usize {
        match c {
            Code::Do(s) => s.line,
            Code::Enter { line, .. }
            | Code::Branch { line, .. }
            | Code::Select { line, .. }
            | Code::TrySend { line, .. } => *line,
            Code::End { .. } | Code::Jump(_) => 0,
        }
    }
}
