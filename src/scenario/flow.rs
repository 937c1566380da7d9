//! A script flattened for the interpreter, and the interpreter's state.
//!
//! [`compile`] turns a statement tree into a flat list of [`Code`]: plain
//! statements, and the jumps and loop markers of the blocks around them.
//! The interpreter runs it with a program counter and a stack of loop
//! frames, never recursing per block, so no nesting can overflow a stack.
//! A [`Program`] holds the compiled code of every process of a scenario,
//! made once per run and shared (behind an `Arc`) by every running script,
//! which refers to its code by process index and program counter.
//!
//! [`ScriptState`] is the script's own data: where it is ([`Position`]),
//! its variables, and the messages a selective receive has set aside. It
//! is plain data (`Clone`, `Eq`, `Hash`) on purpose. The running script,
//! [`ScriptMachine`](super::interp::ScriptMachine), adds what it knows of
//! the kernel (its names, the last request) and the operation it waits for,
//! and is `Clone + Eq + Hash` as a whole, so a model checker can snapshot
//! it, compare two states and hash them.

use std::collections::VecDeque;
use std::time::Duration;

use smallvec::SmallVec;

use super::expr::Expr;
use super::value::Value;
use super::{ArmKind, Dest, Op, Scenario, Stmt};

/// The compiled scripts of a scenario (see the module docs).
#[derive(Debug)]
pub(crate) struct Program {
    /// Per process, its flattened script.
    pub code: Vec<Vec<Code>>,
    /// Per process, the mailboxes its script names, in order of first use
    /// (it opens them when it starts).
    pub mailboxes: Vec<Vec<usize>>,
}

impl Program {
    /// Compiles every process of `scenario`.
    pub fn new(scenario: &Scenario) -> Program {
        let code = scenario
            .processes
            .iter()
            .map(|p| compile(&p.script))
            .collect();
        let mailboxes = scenario
            .processes
            .iter()
            .map(|p| mailboxes_used(scenario, &p.script))
            .collect();
        Program { code, mailboxes }
    }
}

/// The mailboxes `stmts` name, in order of first use.
fn mailboxes_used(scn: &Scenario, stmts: &[Stmt]) -> Vec<usize> {
    let mut out = Vec::new();
    for s in super::walk(stmts) {
        let named: Vec<usize> = match &s.op {
            Op::Send { queue, .. }
            | Op::Receive { queue, .. }
            | Op::Call { queue, .. }
            | Op::Destroy(queue)
            | Op::TrySend {
                dest: Dest::Queue(queue),
                ..
            } => vec![*queue],
            Op::Select(arms) | Op::SelectAny(arms) => arms
                .iter()
                .filter_map(|a| match &a.kind {
                    ArmKind::Receive { queue, .. }
                    | ArmKind::Send {
                        dest: Dest::Queue(queue),
                        ..
                    } => Some(*queue),
                    _ => None,
                })
                .collect(),
            _ => continue,
        };
        for q in named {
            if scn.queues[q].is_mailbox() && !out.contains(&q) {
                out.push(q);
            }
        }
    }
    out
}

/// A `select` arm without its body (which is compiled after the `Select`).
#[derive(Clone, Debug)]
pub(crate) struct ArmHead {
    /// Its `on` line.
    pub line: usize,
    /// What it waits for.
    pub kind: ArmKind,
    /// Considered only when this holds.
    pub guard: Option<Expr>,
}

/// One instruction of a flattened script.
#[derive(Clone, Debug)]
pub(crate) enum Code {
    /// A statement that is not a block.
    Do(Stmt),
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
    Branch { cond: Expr, to: usize, line: usize },
    /// Go to `to`.
    Jump(usize),
    /// A `select`: arm `i`'s statements start at `starts[i]`; `any`: a
    /// nondeterministic choice among the arms that can proceed.
    Select {
        any: bool,
        arms: Vec<ArmHead>,
        starts: Vec<usize>,
        line: usize,
    },
    /// `try-send`: on success jump to `end`, else run what follows.
    TrySend {
        dest: Dest,
        value: Option<Expr>,
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
    /// The open `repeat`/`forever` loops (inline: a step copies the
    /// state, and most scripts nest a loop or two).
    pub loops: SmallVec<[Frame; 2]>,
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
///
/// Its vectors keep a few items inline ([`SmallVec`]): the model checker
/// copies the state of the script that steps at every transition (it is
/// shared, copied on write, between the states that have it unchanged),
/// and a copy of a small script then allocates nothing. `SmallVec` hashes
/// and compares as the slice it holds, as `Vec` does, so the encoding is
/// the same bytes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct ScriptState {
    /// Where it is.
    pub at: Position,
    /// Its variables by slot (`None`: not set yet).
    pub vars: SmallVec<[Option<Value>; 6]>,
    /// Per queue, the messages received but not yet taken, oldest first.
    pub pending: SmallVec<[VecDeque<Pending>; 3]>,
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
pub(crate) fn compile(stmts: &[Stmt]) -> Vec<Code> {
    let mut code: Vec<Code> = Vec::new();
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
                            cond: cond.clone(),
                            to: 0,
                            line: s.line,
                        });
                        work.push(Work::Else(here, otherwise));
                        work.push(Work::List(then.iter()));
                    }
                    Op::While { cond, body } => {
                        code.push(Code::Branch {
                            cond: cond.clone(),
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
                            dest: dest.clone(),
                            value: value.clone(),
                            end: 0,
                            line: s.line,
                        });
                        work.push(Work::TrySendEnd(here));
                        work.push(Work::List(otherwise.iter()));
                    }
                    Op::Select(arms) | Op::SelectAny(arms) => {
                        code.push(Code::Select {
                            any: matches!(s.op, Op::SelectAny(_)),
                            arms: arms
                                .iter()
                                .map(|a| ArmHead {
                                    line: a.line,
                                    kind: a.kind.clone(),
                                    guard: a.guard.clone(),
                                })
                                .collect(),
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
                    _ => code.push(Code::Do(s.clone())),
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
