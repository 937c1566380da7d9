//! The block structure of a script: `repeat`, `forever`, `if`/`else`,
//! `while`, `select` with its `on` arms, and `try-send ... else`, each
//! closed by `end`.
//!
//! Open blocks are kept on an explicit stack, never by recursion, and at
//! most [`MAX_NESTING`] may be open at once: a deeper script is refused at
//! the block that goes one level too far, so no file can exhaust a stack
//! here, in the tree walks after it (checks, drop) or in the interpreter
//! (which runs flattened code and does not recurse at all).

use std::time::Duration;

use super::error::ScenarioError;
use super::expr::Expr;
use super::script::{offset_in, Line, ScriptCtx, Words};
use super::{Arm, ArmKind, Dest, Op, Stmt};

/// How many blocks (`repeat`, `forever`, `if`, `while`, `select`,
/// `try-send ... else`) may be open inside one another.
pub const MAX_NESTING: usize = 100;

/// A block whose `end` has not been read yet.
struct OpenBlock {
    /// Offset of its opening word within the script.
    at: usize,
    /// Its line in the file.
    line: usize,
    kind: BlockKind,
    /// The statements read so far (of the current branch or arm).
    body: Vec<Stmt>,
}

enum BlockKind {
    Repeat(u64),
    Forever,
    If {
        cond: Expr,
        /// The `then` branch once `else` was read.
        then: Option<Vec<Stmt>>,
    },
    While(Expr),
    TrySend(Op),
    Select {
        arms: Vec<Arm>,
        /// The arm whose statements `body` holds.
        current: Option<(usize, ArmKind, Option<Expr>)>,
        /// `select any`: a nondeterministic choice among the ready arms.
        any: bool,
    },
}

/// The statements an `end:` label may mark: those that wait for a message.
const VALID_END_WORDS: [&str; 5] = ["receive", "expect", "receive-from", "receive-any", "select"];

const BLOCKS: &str = "`repeat`, `forever`, `if`, `while`, `select`, `try-send ... else`";

impl ScriptCtx<'_> {
    /// Parses the lines of `script` into statements.
    pub(crate) fn statements(
        &self,
        script: &str,
        lines: &[Line<'_>],
    ) -> Result<Vec<Stmt>, ScenarioError> {
        let mut top = Vec::new();
        let mut open: Vec<OpenBlock> = Vec::new();
        for line in lines {
            let Some(mut w) = Words::of(line) else {
                continue;
            };
            if w.word == "end:" {
                // `end: STATEMENT`: waiting forever there is a valid end.
                let labelled = Line {
                    offset: w.arg_at,
                    code: w.rest,
                };
                match Words::of(&labelled) {
                    Some(inner) if VALID_END_WORDS.contains(&inner.word) => w = inner,
                    _ => {
                        return Err(self.err(
                            w.at,
                            "write `end: STATEMENT` where the statement waits for a message \
                             (`receive`, `expect`, `receive-from`, `receive-any` or `select`): \
                             waiting forever there is then a valid end state",
                        ))
                    }
                }
                let line = self.line_no(w.at);
                self.valid_ends.borrow_mut().push(line);
            }
            let (at, word, rest, arg_at) = (w.at, w.word, w.rest, w.arg_at);
            let opens = match word {
                "repeat" | "forever" | "if" | "while" | "select" => true,
                "try-send" => w.args.last() == Some(&"else"),
                _ => false,
            };
            if opens && open.len() >= MAX_NESTING {
                return Err(self.err(
                    at,
                    format!(
                        "blocks nest too deeply: at most {MAX_NESTING} blocks ({BLOCKS}) may be \
                         open at once, and this `{word}` would be level {}",
                        open.len() + 1
                    ),
                ));
            }
            if let Some(OpenBlock {
                kind: BlockKind::Select { current: None, .. },
                ..
            }) = open.last()
            {
                if word != "on" && word != "end" {
                    return Err(self.err(
                        at,
                        "the statements of a `select` go in its arms: start one with \
                         `on receive QUEUE [PATTERN]`, `on send QUEUE [VALUE]` or `on timeout D`",
                    ));
                }
            }
            let kind = match word {
                "end" => {
                    let Some(block) = open.pop() else {
                        return Err(
                            self.err(at, format!("`end` without a block to close ({BLOCKS})"))
                        );
                    };
                    let stmt = self.close(block)?;
                    match open.last_mut() {
                        Some(parent) => parent.body.push(stmt),
                        None => top.push(stmt),
                    }
                    continue;
                }
                "else" => {
                    match open.last_mut() {
                        Some(OpenBlock {
                            kind:
                                BlockKind::If {
                                    then: then @ None, ..
                                },
                            body,
                            ..
                        }) if rest.is_empty() => *then = Some(std::mem::take(body)),
                        _ => {
                            return Err(self.err(
                                at,
                                "`else` belongs alone on a line inside an `if` block (once)",
                            ))
                        }
                    }
                    continue;
                }
                "on" => {
                    let Some(OpenBlock {
                        kind: BlockKind::Select { arms, current, .. },
                        body,
                        ..
                    }) = open.last_mut()
                    else {
                        return Err(self.err(at, "`on` starts an arm of a `select` block"));
                    };
                    let arm = self.arm(script, &w)?;
                    if let Some((line, kind, guard)) = current.take() {
                        arms.push(Arm {
                            line,
                            kind,
                            guard,
                            body: std::mem::take(body),
                        });
                    }
                    let timeouts = arms
                        .iter()
                        .filter(|a| matches!(a.kind, ArmKind::Timeout(_)))
                        .count();
                    if matches!(arm.0, ArmKind::Timeout(_)) && timeouts > 0 {
                        return Err(self.err(at, "a `select` has at most one `on timeout` arm"));
                    }
                    *current = Some((self.line_no(at), arm.0, arm.1));
                    continue;
                }
                "repeat" => {
                    let n = match w.args.as_slice() {
                        [n] => match n.parse::<u64>() {
                            Ok(n) => n,
                            Err(_) => match self.names.params.get(*n) {
                                Some(&p) => u64::try_from(p).map_err(|_| {
                                    self.err(arg_at, format!("`repeat {n}`: {n} = {p} is negative"))
                                })?,
                                None => {
                                    return Err(self.err(
                                        arg_at,
                                        format!("`repeat` needs a whole number of times (or a `[params]` name), found `{n}`"),
                                    ))
                                }
                            },
                        },
                        _ => return Err(self.err(at, "write `repeat N`, then the statements, then `end`")),
                    };
                    BlockKind::Repeat(n)
                }
                "forever" => {
                    if !rest.is_empty() {
                        return Err(self.err(arg_at, "`forever` takes no argument"));
                    }
                    BlockKind::Forever
                }
                "if" | "while" => {
                    if rest.is_empty() {
                        return Err(self.err(
                            at,
                            format!("write `{word} CONDITION`, then the statements, then `end`"),
                        ));
                    }
                    let cond = self.expr(script, rest)?;
                    if word == "if" {
                        BlockKind::If { cond, then: None }
                    } else {
                        BlockKind::While(cond)
                    }
                }
                "select" => {
                    if !rest.is_empty() && rest != "any" {
                        return Err(self.err(
                            arg_at,
                            "write `select` (the first arm that can proceed) or `select any` \
                             (any arm that can proceed): its arms follow, each starting with `on`",
                        ));
                    }
                    BlockKind::Select {
                        arms: Vec::new(),
                        current: None,
                        any: rest == "any",
                    }
                }
                "try-send" => {
                    let (text, has_else) = match rest.strip_suffix("else") {
                        Some(t) if opens => (t.trim_end(), true),
                        _ => (rest, false),
                    };
                    if text.is_empty() {
                        return Err(self.err(at, "write `try-send QUEUE [VALUE] [else]`"));
                    }
                    let parts = self.send_parts(script, text, arg_at, false)?;
                    let op = Op::TrySend {
                        dest: parts.dest,
                        value: parts.value,
                        otherwise: Vec::new(),
                    };
                    if !has_else {
                        let stmt = Stmt {
                            line: self.line_no(at),
                            op,
                        };
                        match open.last_mut() {
                            Some(parent) => parent.body.push(stmt),
                            None => top.push(stmt),
                        }
                        continue;
                    }
                    BlockKind::TrySend(op)
                }
                _ => {
                    let Some(op) = self.simple(script, &w)? else {
                        return Err(self.err(at, format!(
                            "unknown statement `{word}` (send, receive, expect, send-to, receive-from, \
                             receive-any, call, reply, work, sleep, repeat, forever, if, else, while, \
                             select, on, try-send, assert, end, spawn, exit, destroy, or NAME = VALUE)"
                        )));
                    };
                    let stmt = Stmt {
                        line: self.line_no(at),
                        op,
                    };
                    match open.last_mut() {
                        Some(parent) => parent.body.push(stmt),
                        None => top.push(stmt),
                    }
                    continue;
                }
            };
            open.push(OpenBlock {
                at,
                line: self.line_no(at),
                kind,
                body: Vec::new(),
            });
        }
        if let Some(block) = open.last() {
            return Err(self.err(block.at, "this block has no `end`"));
        }
        self.check_variables(script)?;
        Ok(top)
    }

    /// The statement a block makes once its `end` is read.
    fn close(&self, block: OpenBlock) -> Result<Stmt, ScenarioError> {
        let op = match block.kind {
            BlockKind::Repeat(n) => Op::Repeat(n, block.body),
            BlockKind::Forever => {
                if super::does_nothing(&block.body) {
                    return Err(self.err(
                        block.at,
                        "this `forever` loop has nothing to run and could never end: \
                         put a `receive` (or `call`) in it",
                    ));
                }
                Op::Forever(block.body)
            }
            BlockKind::If { cond, then } => match then {
                Some(then) => Op::If {
                    cond,
                    then,
                    otherwise: block.body,
                },
                None => Op::If {
                    cond,
                    then: block.body,
                    otherwise: Vec::new(),
                },
            },
            BlockKind::While(cond) => Op::While {
                cond,
                body: block.body,
            },
            BlockKind::TrySend(Op::TrySend { dest, value, .. }) => Op::TrySend {
                dest,
                value,
                otherwise: block.body,
            },
            BlockKind::TrySend(other) => other,
            BlockKind::Select {
                mut arms,
                current,
                any,
            } => {
                if let Some((line, kind, guard)) = current {
                    arms.push(Arm {
                        line,
                        kind,
                        guard,
                        body: block.body,
                    });
                }
                if arms.iter().all(|a| matches!(a.kind, ArmKind::Timeout(_))) {
                    return Err(self.err(
                        block.at,
                        "this `select` has no `on receive` or `on send` arm",
                    ));
                }
                if any {
                    Op::SelectAny(arms)
                } else {
                    Op::Select(arms)
                }
            }
        };
        Ok(Stmt {
            line: block.line,
            op,
        })
    }

    /// An `on ...` line of a `select`: the arm's kind and guard.
    fn arm(&self, script: &str, w: &Words<'_>) -> Result<(ArmKind, Option<Expr>), ScenarioError> {
        let what = w.args.first().copied().unwrap_or_default();
        let after = w.rest[what.len()..].trim();
        let after_at = w.arg_at + offset_in(w.rest, after);
        match what {
            "receive" if !after.is_empty() => {
                let r = self.receive_parts(script, after, after_at, true)?;
                let kind = match r.src {
                    Dest::Queue(queue) => ArmKind::Receive { queue, pattern: r.pattern },
                    Dest::Var(var) => ArmKind::ReceiveVia { var, pattern: r.pattern },
                };
                Ok((kind, r.guard))
            }
            "send" if !after.is_empty() => {
                let s = self.send_parts(script, after, after_at, true)?;
                Ok((ArmKind::Send { dest: s.dest, value: s.value }, s.guard))
            }
            "timeout" if !after.is_empty() => {
                let d: Duration = self.duration(after, after_at)?;
                Ok((ArmKind::Timeout(d), None))
            }
            _ => Err(self.err(
                w.at,
                "write `on receive QUEUE [PATTERN] [if COND]`, `on send QUEUE [VALUE] [if COND]` or `on timeout D`",
            )),
        }
    }

    /// Every variable read or used as a destination is set somewhere.
    fn check_variables(&self, _script: &str) -> Result<(), ScenarioError> {
        let bound = self.names.bound.borrow();
        let vars = self.names.vars.borrow();
        let name = |slot: usize| vars.get(slot).cloned().unwrap_or_default();
        for &(slot, at) in self.single_word_values.borrow().iter() {
            if !bound.contains(&slot) {
                return Err(self.err(at, format!(
                    "unknown send policy or unset variable `{}` (policies: block, fail, drop-newest, drop-oldest)",
                    name(slot)
                )));
            }
        }
        for &(slot, at) in self.dynamic_dests.borrow().iter() {
            if !bound.contains(&slot) {
                let known: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
                return Err(self.err(
                    at,
                    format!(
                        "unknown port or mailbox `{}` (declared: {})",
                        name(slot),
                        super::script::list(&known)
                    ),
                ));
            }
        }
        for &(slot, at) in self.reads.borrow().iter() {
            if !bound.contains(&slot) {
                return Err(self.err(at, format!(
                    "variable `{}` is read here but never set in this script (set it with `{0} = ...` or bind it in a receive pattern)",
                    name(slot)
                )));
            }
        }
        Ok(())
    }
}
