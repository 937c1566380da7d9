//! A script flattened for the interpreter, and the interpreter's state.
//!
//! [`compile`] turns a statement tree into a flat list of [`Code`]: plain
//! statements, and the jumps and loop markers of the blocks around them.
//! The interpreter runs it with a program counter and a stack of loop
//! frames, never recursing per block, so no nesting can overflow the
//! simulator's small coroutine stacks.
//!
//! [`ScriptState`] is everything a running script knows: where it is
//! ([`Position`]), its variables, and the messages a selective receive has
//! set aside. It is plain data (`Clone`, `Eq`, `Hash`) on purpose: a model
//! checker can snapshot it, compare two states and hash them. (Kernel
//! objects are outside it: the reply right of the last request, the
//! process's port names.)

use std::collections::VecDeque;
use std::time::Duration;

use super::expr::Expr;
use super::value::Value;
use super::{Arm, Dest, Op, Stmt};

/// One instruction of a flattened script.
#[derive(Clone, Debug)]
pub(crate) enum Code<'s> {
    /// A statement that is not a block.
    Do(&'s Stmt),
    /// The start of a `repeat` (`times`: how often, 0 when its body does
    /// nothing) or a `forever` (`times: None`); `end` indexes its `End`.
    Enter {
        times: Option<u64>,
        end: usize,
        line: usize,
    },
    /// The end of the loop that starts at index `start`.
    End { start: usize },
    /// `if` / `while`: go on if `cond` holds, else jump to `to`.
    Branch {
        cond: &'s Expr,
        to: usize,
        line: usize,
    },
    /// Go to `to`.
    Jump(usize),
    /// A `select`: arm `i`'s statements start at `starts[i]`.
    Select {
        arms: &'s [Arm],
        starts: Vec<usize>,
        line: usize,
    },
    /// `try-send`: on success jump to `end`, else run what follows.
    TrySend {
        dest: &'s Dest,
        value: Option<&'s Expr>,
        end: usize,
        line: usize,
    },
}

/// Where a running script is: the index of its next instruction and the
/// loops it is inside, innermost last.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Position {
    /// Index into the flattened code.
    pub pc: usize,
    /// The open `repeat`/`forever` loops.
    pub loops: Vec<Frame>,
}

/// A loop being run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Frame {
    /// Index of the loop's `Enter`.
    pub start: usize,
    /// Turns left, this one included (`None`: a `forever`).
    pub left: Option<u64>,
}

/// A message a selective receive passed over, kept for a later receive.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Pending {
    /// When it was offered (nanoseconds since the start of the run).
    pub offered: u64,
    /// What it carries.
    pub value: Option<Value>,
}

/// The whole state of one running script (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ScriptState {
    /// Where it is.
    pub at: Position,
    /// Its variables by slot (`None`: not set yet).
    pub vars: Vec<Option<Value>>,
    /// Per queue, the messages received but not yet taken, oldest first.
    pub pending: Vec<VecDeque<Pending>>,
}

/// What is still to do while flattening.
enum Work<'s> {
    /// Statements to flatten.
    List(std::slice::Iter<'s, Stmt>),
    /// The end of the loop whose `Enter` is at this index.
    LoopEnd(usize),
    /// The end of an `if`'s `then`: the `Branch` index and the `else` part.
    Else(usize, &'s [Stmt]),
    /// The end of an `if`: the `Jump` over the `else` part.
    IfEnd(usize),
    /// The end of a `while` whose `Branch` is at this index.
    WhileEnd(usize),
    /// The end of a `try-send`'s `else` part.
    TrySendEnd(usize),
    /// The start of arm `i` of the `select` at the index.
    ArmStart(usize, usize),
    /// The end of an arm: jump to the end of the `select`.
    ArmEnd,
    /// The end of the `select` at the index.
    SelectEnd(usize),
}

/// A jump not yet patched (an arm's exit).
const UNPATCHED: usize = usize::MAX;

/// Flattens a statement tree into [`Code`] with an explicit work stack (no
/// recursion per level).
pub(crate) fn compile(stmts: &[Stmt]) -> Vec<Code<'_>> {
    let mut code: Vec<Code<'_>> = Vec::new();
    let mut work = vec![Work::List(stmts.iter())];
    while let Some(item) = work.pop() {
        let here = code.len();
        match item {
            Work::List(mut iter) => {
                let Some(s) = iter.next() else {
                    continue;
                };
                work.push(Work::List(iter));
                match &s.op {
                    Op::Repeat(n, body) => {
                        let times = if super::does_nothing(body) { 0 } else { *n };
                        code.push(Code::Enter {
                            times: Some(times),
                            end: 0,
                            line: s.line,
                        });
                        work.push(Work::LoopEnd(here));
                        work.push(Work::List(body.iter()));
                    }
                    Op::Forever(body) => {
                        code.push(Code::Enter {
                            times: None,
                            end: 0,
                            line: s.line,
                        });
                        work.push(Work::LoopEnd(here));
                        work.push(Work::List(body.iter()));
                    }
                    Op::If {
                        cond,
                        then,
                        otherwise,
                    } => {
                        code.push(Code::Branch {
                            cond,
                            to: 0,
                            line: s.line,
                        });
                        work.push(Work::Else(here, otherwise));
                        work.push(Work::List(then.iter()));
                    }
                    Op::While { cond, body } => {
                        code.push(Code::Branch {
                            cond,
                            to: 0,
                            line: s.line,
                        });
                        work.push(Work::WhileEnd(here));
                        work.push(Work::List(body.iter()));
                    }
                    Op::TrySend {
                        dest,
                        value,
                        otherwise,
                    } => {
                        code.push(Code::TrySend {
                            dest,
                            value: value.as_ref(),
                            end: 0,
                            line: s.line,
                        });
                        work.push(Work::TrySendEnd(here));
                        work.push(Work::List(otherwise.iter()));
                    }
                    Op::Select(arms) => {
                        code.push(Code::Select {
                            arms,
                            starts: vec![0; arms.len()],
                            line: s.line,
                        });
                        work.push(Work::SelectEnd(here));
                        for (i, arm) in arms.iter().enumerate().rev() {
                            work.push(Work::ArmEnd);
                            work.push(Work::List(arm.body.iter()));
                            work.push(Work::ArmStart(here, i));
                        }
                    }
                    _ => code.push(Code::Do(s)),
                }
            }
            Work::LoopEnd(start) => {
                code.push(Code::End { start });
                if let Some(Code::Enter { end, .. }) = code.get_mut(start) {
                    *end = here;
                }
            }
            Work::Else(branch, otherwise) => {
                code.push(Code::Jump(0));
                if let Some(Code::Branch { to, .. }) = code.get_mut(branch) {
                    *to = here + 1;
                }
                work.push(Work::IfEnd(here));
                work.push(Work::List(otherwise.iter()));
            }
            Work::IfEnd(jump) => {
                if let Some(Code::Jump(to)) = code.get_mut(jump) {
                    *to = here;
                }
            }
            Work::WhileEnd(branch) => {
                code.push(Code::Jump(branch));
                if let Some(Code::Branch { to, .. }) = code.get_mut(branch) {
                    *to = here + 1;
                }
            }
            Work::TrySendEnd(at) => {
                if let Some(Code::TrySend { end, .. }) = code.get_mut(at) {
                    *end = here;
                }
            }
            Work::ArmStart(select, i) => {
                if let Some(Code::Select { starts, .. }) = code.get_mut(select) {
                    if let Some(s) = starts.get_mut(i) {
                        *s = here;
                    }
                }
            }
            Work::ArmEnd => code.push(Code::Jump(UNPATCHED)),
            Work::SelectEnd(select) => {
                // Inner selects patched theirs already: what is left is ours.
                for c in &mut code[select..] {
                    if let Code::Jump(to @ UNPATCHED) = c {
                        *to = here;
                    }
                }
            }
        }
    }
    code
}

/// How long a `select` waiting for room on a queue sleeps between tries
/// (the kernel has no wait for "room on one of these queues").
pub(crate) const SELECT_POLL: Duration = Duration::from_micros(10);
