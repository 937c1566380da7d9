//! The script language of a process: one statement per line, `repeat N` /
//! `forever` blocks closed by `end`, `#` comments. Names are resolved and
//! rights checked here, so a script that cannot run is an error before
//! anything runs (see the table in the module docs of [`super`]).

use std::time::Duration;

use mkipc_kernel::OnFull;
use mkipc_sim::Dist;

use std::cell::RefCell;

use super::error::ScenarioError;
use super::expr::{parse_expr, parse_pattern, Expr, ExprOp, Names, Pattern};
use super::{Dest, Op, Queue, QueueKind, Stmt};

/// What a script may refer to, and where its text sits in the file.
pub(crate) struct ScriptCtx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// For each byte offset of the script (and one past its end), the byte
    /// offset in `text` it came from (escapes make the two differ).
    pub offsets: Vec<usize>,
    /// The byte offset in `text` where each of its lines starts (the first
    /// is 0), computed once per file: a statement's line is a binary search
    /// here, not a count of the newlines before it, which made a script of
    /// n lines take time in n².
    pub line_starts: &'a [usize],
    pub queues: &'a [Queue],
    pub procs: &'a [(String, bool)],
    /// The process whose script this is.
    pub me: usize,
    /// What names mean (params, symbols, this process's variables).
    pub names: Names<'a>,
    /// `send v ...` to a variable `v`: (slot, offset), checked once the
    /// whole script is read (the variable must be set somewhere).
    pub dynamic_dests: RefCell<Vec<(usize, usize)>>,
    /// The lines of the statements labelled `end:` (valid end states).
    pub valid_ends: RefCell<Vec<usize>>,
    /// Sends whose value is one variable: (slot, offset); a variable never
    /// set there is more likely a misspelt policy.
    pub single_word_values: RefCell<Vec<(usize, usize)>>,
    /// Every variable an expression reads: (slot, offset of the expression).
    pub reads: RefCell<Vec<(usize, usize)>>,
}

/// What `send_parts` read.
pub(crate) struct SendParts {
    pub dest: Dest,
    pub on_full: OnFull,
    pub value: Option<Expr>,
    pub guard: Option<Expr>,
}

impl SendParts {
    fn into_op(self) -> Op {
        match self.dest {
            Dest::Queue(queue) => Op::Send {
                queue,
                on_full: self.on_full,
                value: self.value,
            },
            Dest::Var(var) => Op::SendVia {
                var,
                on_full: self.on_full,
                value: self.value,
            },
        }
    }
}

/// What `receive_parts` read.
pub(crate) struct ReceiveParts {
    pub src: Dest,
    pub pattern: Option<Pattern>,
    pub timeout: Option<Duration>,
    pub guard: Option<Expr>,
}

/// Whether `name` can name a variable (lower case or `_` first, then
/// letters, digits and `_`).
pub(crate) fn is_variable_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub(crate) struct Line<'a> {
    /// Offset of the line within the script.
    pub offset: usize,
    /// The line without its comment.
    pub code: &'a str,
}

/// A statement line cut into words, with offsets within the script.
pub(crate) struct Words<'a> {
    /// Offset of the first word.
    pub at: usize,
    /// The first word.
    pub word: &'a str,
    /// The other words.
    pub args: Vec<&'a str>,
    /// The text after the first word.
    pub rest: &'a str,
    /// Offset of `rest`.
    pub arg_at: usize,
}

impl<'a> Words<'a> {
    pub fn of(line: &Line<'a>) -> Option<Words<'a>> {
        let indent = line.code.len() - line.code.trim_start().len();
        let code = line.code.trim();
        if code.is_empty() {
            return None;
        }
        let at = line.offset + indent;
        let mut words = code.split_whitespace();
        let word = words.next().unwrap_or_default();
        let args: Vec<&str> = words.collect();
        let rest = code[word.len()..].trim();
        let arg_at = at + code.find(rest).filter(|_| !rest.is_empty()).unwrap_or(0);
        Some(Words {
            at,
            word,
            args,
            rest,
            arg_at,
        })
    }
}

/// Where `sub`, a slice of `whole`, starts in it.
pub(crate) fn offset_in(whole: &str, sub: &str) -> usize {
    (sub.as_ptr() as usize)
        .saturating_sub(whole.as_ptr() as usize)
        .min(whole.len())
}

/// Splits `text` at the first whole word `word`: what is before it and
/// what is after it (trimmed), if it is there.
pub(crate) fn split_word<'t>(text: &'t str, word: &str) -> (&'t str, Option<&'t str>) {
    let mut from = 0;
    while let Some(i) = text[from..].find(word).map(|i| i + from) {
        let before_ok = i == 0 || text[..i].ends_with(char::is_whitespace);
        let after = &text[i + word.len()..];
        let after_ok = after.is_empty() || after.starts_with(char::is_whitespace);
        if before_ok && after_ok {
            return (text[..i].trim_end(), Some(after.trim()));
        }
        from = i + word.len();
    }
    (text, None)
}

impl ScriptCtx<'_> {
    /// The offset in the file of the script's byte `script_offset`.
    fn file_offset(&self, script_offset: usize) -> usize {
        self.offsets
            .get(script_offset)
            .or(self.offsets.last())
            .copied()
            .unwrap_or(0)
    }

    pub(crate) fn err(&self, script_offset: usize, message: impl Into<String>) -> ScenarioError {
        ScenarioError::at(
            self.file,
            self.text,
            self.file_offset(script_offset),
            message,
        )
    }

    /// The 1-based line of the script's byte `script_offset` in the file
    /// (the line `err` would name).
    pub(crate) fn line_no(&self, script_offset: usize) -> usize {
        let at = self.file_offset(script_offset);
        self.line_starts.partition_point(|&start| start <= at)
    }

    /// Parses a whole script.
    pub fn parse(&self, script: &str) -> Result<Vec<Stmt>, ScenarioError> {
        let mut lines = Vec::new();
        let mut offset = 0;
        for raw in script.split_inclusive('\n') {
            let code = raw.split('#').next().unwrap_or("").trim_end();
            lines.push(Line { offset, code });
            offset += raw.len();
        }
        self.statements(script, &lines)
    }

    /// An expression in `text` (a slice of the script `script`).
    pub(crate) fn expr(&self, script: &str, text: &str) -> Result<Expr, ScenarioError> {
        let at = offset_in(script, text);
        let e = parse_expr(text, &self.names).map_err(|(o, m)| self.err(at + o, m))?;
        let mut reads = self.reads.borrow_mut();
        for &slot in &e.reads {
            reads.push((slot, at));
        }
        Ok(e)
    }

    /// A pattern in `text` (a slice of the script `script`).
    pub(crate) fn pattern(&self, script: &str, text: &str) -> Result<Pattern, ScenarioError> {
        parse_pattern(text, &self.names)
            .map_err(|(at, m)| self.err(offset_in(script, text) + at, m))
    }

    /// A statement that is not a block; `None` when the line is none of
    /// them (the caller then says it is unknown).
    pub(crate) fn simple(&self, script: &str, w: &Words<'_>) -> Result<Option<Op>, ScenarioError> {
        let (at, word, args, rest, arg_at) = (w.at, w.word, &w.args, w.rest, w.arg_at);
        let op = match word {
            "send" => {
                let send = self.send_parts(script, rest, arg_at, false)?;
                if rest.is_empty() {
                    return Err(self.err(
                        at,
                        "write `send QUEUE`, `send QUEUE POLICY` or `send QUEUE [POLICY] VALUE`",
                    ));
                }
                send.into_op()
            }
            "receive" | "expect" => {
                if rest.is_empty() {
                    return Err(self.err(at, format!("write `{word} QUEUE [PATTERN] [timeout D]`")));
                }
                let r = self.receive_parts(script, rest, arg_at, false)?;
                if word == "expect" && r.pattern.is_none() {
                    return Err(self.err(
                        at,
                        "write `expect QUEUE PATTERN`: the pattern the next message must match",
                    ));
                }
                let expect = word == "expect";
                match r.src {
                    Dest::Queue(queue) => Op::Receive {
                        queue,
                        timeout: r.timeout,
                        pattern: r.pattern,
                        expect,
                    },
                    Dest::Var(var) => Op::ReceiveVia {
                        var,
                        timeout: r.timeout,
                        pattern: r.pattern,
                        expect,
                    },
                }
            }
            "call" => {
                let usage = "write `call QUEUE [VALUE] [-> PATTERN]`";
                let (left, reply) = match rest.split_once("->") {
                    Some((l, r)) => (l.trim_end(), Some(r.trim())),
                    None => (rest, None),
                };
                if left.is_empty() {
                    return Err(self.err(at, usage));
                }
                let reply = match reply {
                    Some("") => {
                        return Err(self.err(
                            arg_at + left.len(),
                            format!("{usage}: the pattern the reply must match goes after `->`"),
                        ))
                    }
                    Some(p) => Some(self.pattern(script, p)?),
                    None => None,
                };
                let name = left.split_whitespace().next().unwrap_or_default();
                let value_text = left[name.len()..].trim();
                let value = if value_text.is_empty() {
                    None
                } else {
                    Some(self.expr(script, value_text)?)
                };
                match self.dest(name, arg_at)? {
                    Dest::Queue(queue) => {
                        if let Some(why) =
                            super::mech::plain_use_refusal(&self.queues[queue], "call")
                        {
                            return Err(self.err(arg_at, why));
                        }
                        Op::Call {
                            queue,
                            value,
                            reply,
                        }
                    }
                    Dest::Var(var) => Op::CallVia { var, value, reply },
                }
            }
            "reply" => Op::Reply {
                value: if rest.is_empty() {
                    None
                } else {
                    Some(self.expr(script, rest)?)
                },
            },
            "send-to" => {
                let [p] = args.as_slice() else {
                    return Err(self.err(at, "write `send-to PROCESS`"));
                };
                Op::SendTo {
                    proc: self.process(p, arg_at)?,
                }
            }
            "receive-from" => {
                let (p, timeout) = match args.as_slice() {
                    [p] => (*p, None),
                    [p, "timeout", d] => (*p, Some(self.duration(d, arg_at)?)),
                    _ => return Err(self.err(at, "write `receive-from PROCESS`")),
                };
                Op::ReceiveFrom {
                    proc: self.process(p, arg_at)?,
                    timeout,
                }
            }
            "receive-any" => {
                let timeout = match args.as_slice() {
                    [] => None,
                    ["timeout", d] => Some(self.duration(d, arg_at)?),
                    _ => return Err(self.err(at, "write `receive-any` or `receive-any timeout D`")),
                };
                Op::ReceiveAny { timeout }
            }
            "work" | "sleep" => {
                if rest.is_empty() {
                    return Err(
                        self.err(at, format!("`{word}` needs a duration, e.g. `{word} 2ms`"))
                    );
                }
                let d = parse_dist(rest).map_err(|m| self.err(arg_at, m))?;
                if word == "work" {
                    Op::Work(d)
                } else {
                    Op::Sleep(d)
                }
            }
            "spawn" => {
                let [p] = args.as_slice() else {
                    return Err(self.err(at, "write `spawn PROCESS`"));
                };
                let proc = self.process(p, arg_at)?;
                if !self.procs[proc].1 {
                    return Err(self.err(arg_at, format!(
                            "process `{p}` starts with the run; give it `start = \"spawned\"` to spawn it"
                        )));
                }
                Op::Spawn(proc)
            }
            "exit" => match args.as_slice() {
                [] => Op::Exit(0),
                [c] => Op::Exit(c.parse().map_err(|_| {
                    self.err(arg_at, format!("exit code must be a number, found `{c}`"))
                })?),
                _ => return Err(self.err(at, "write `exit` or `exit CODE`")),
            },
            "destroy" => {
                let [q] = args.as_slice() else {
                    return Err(self.err(at, "write `destroy QUEUE`"));
                };
                let queue = self.queue_name(q, arg_at)?;
                let owns = match &self.queues[queue].kind {
                    QueueKind::Port { receiver, .. } => *receiver == self.me,
                    QueueKind::Mailbox { owner, .. } => *owner == Some(self.me),
                };
                if !owns {
                    return Err(self.err(
                        arg_at,
                        format!(
                            "process `{}` cannot destroy `{q}`: only its owner (receiver) can",
                            self.procs[self.me].0
                        ),
                    ));
                }
                Op::Destroy(queue)
            }
            "assert" => {
                if rest.is_empty() {
                    return Err(self.err(at, "write `assert CONDITION`, e.g. `assert x == 3`"));
                }
                Op::Assert {
                    cond: self.expr(script, rest)?,
                }
            }
            "close" | "load" | "store" | "lock" | "unlock" => {
                return super::mech::statement(self, script, w)
            }
            _ => match self.assignment(script, w)? {
                Some(op) => op,
                None => return Ok(None),
            },
        };
        Ok(Some(op))
    }

    /// `x = EXPR` or `x[EXPR] = EXPR`.
    fn assignment(&self, script: &str, w: &Words<'_>) -> Result<Option<Op>, ScenarioError> {
        let code = &script[w.at.min(script.len())..];
        let code = code.lines().next().unwrap_or("");
        let code = code.split('#').next().unwrap_or("").trim_end();
        // `NAME =` or `NAME[`: an assignment (whatever errors follow).
        let name_len = code
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(code.len());
        let name = &code[..name_len];
        let after = code[name_len..].trim_start();
        let is_assign = (after.starts_with('=') && !after.starts_with("=="))
            || (after.starts_with('[') && !name.is_empty());
        if name.is_empty() || !is_assign {
            return Ok(None);
        }
        let after_at = w.at + offset_in(code, after);
        let (index, value_text) = if let Some(inside) = after.strip_prefix('[') {
            // The index runs to the `]` that closes it.
            let mut depth = 1usize;
            let close = inside.char_indices().find_map(|(i, c)| {
                match c {
                    '[' => depth += 1,
                    ']' => depth -= 1,
                    _ => {}
                }
                (depth == 0).then_some(i)
            });
            let Some(close) = close else {
                return Err(self.err(after_at, "this `[` has no `]`"));
            };
            let rest = inside[close + 1..].trim_start();
            let Some(value) = rest.strip_prefix('=').filter(|_| !rest.starts_with("==")) else {
                return Err(self.err(
                    w.at,
                    "write `NAME = EXPRESSION` or `NAME[INDEX] = EXPRESSION`",
                ));
            };
            (Some(self.expr(script, &inside[..close])?), value.trim())
        } else {
            (None, after[1..].trim())
        };
        if value_text.is_empty() {
            return Err(self.err(after_at, "write `NAME = EXPRESSION`"));
        }
        if name == "id"
            || name.starts_with(|c: char| c.is_ascii_uppercase())
            || self.queues.iter().any(|q| q.name == name)
            || self.names.queue_families.contains_key(name)
        {
            return Err(self.err(
                w.at,
                format!(
                    "`{name}` cannot be assigned: it is a process's index (`id`), a symbol or \
                     `[params]` name (upper case), or a port or mailbox"
                ),
            ));
        }
        let value = self.expr(script, value_text)?;
        Ok(Some(Op::Assign {
            var: self.names.bind(name),
            index,
            value,
        }))
    }

    /// Splits a trailing `if GUARD` off `rest` (only when `guarded`; `after`
    /// names what the guard follows, for the error of an empty one).
    fn guard<'r>(
        &self,
        script: &str,
        rest: &'r str,
        arg_at: usize,
        guarded: bool,
        after: &str,
    ) -> Result<(&'r str, Option<Expr>), ScenarioError> {
        let (rest, guard) = if guarded {
            split_word(rest, "if")
        } else {
            (rest, None)
        };
        let guard = match guard {
            Some("") => {
                return Err(self.err(
                    arg_at + rest.len(),
                    format!("write `if CONDITION` after the {after}"),
                ))
            }
            Some(g) => Some(self.expr(script, g)?),
            None => None,
        };
        Ok((rest, guard))
    }

    /// `QUEUE [POLICY] [VALUE] [if GUARD]` after `send`, `try-send` or
    /// `on send` (a guard only when `guarded`).
    pub(crate) fn send_parts(
        &self,
        script: &str,
        rest: &str,
        arg_at: usize,
        guarded: bool,
    ) -> Result<SendParts, ScenarioError> {
        let (rest, guard) = self.guard(script, rest, arg_at, guarded, "value")?;
        let mut words = rest.split_whitespace();
        let name = words.next().unwrap_or_default();
        let after = rest[name.len()..].trim_start();
        let (policy, value_text) = match after.split_whitespace().next() {
            Some(p) if parse_policy(p).is_some() => (parse_policy(p), after[p.len()..].trim()),
            _ => (None, after),
        };
        let value = if value_text.is_empty() {
            None
        } else {
            let value = self.expr(script, value_text)?;
            // `send q blok`: a misspelt policy reads as a variable never set.
            if let [ExprOp::Var(slot)] = value.code.as_slice() {
                self.single_word_values
                    .borrow_mut()
                    .push((*slot, offset_in(script, value_text)));
            }
            Some(value)
        };
        let dest = self.dest(name, arg_at)?;
        let on_full = policy.unwrap_or(match dest {
            Dest::Queue(q) => self.queues[q].on_full,
            Dest::Var(_) => OnFull::Block,
        });
        Ok(SendParts {
            dest,
            on_full,
            value,
            guard,
        })
    }

    /// Where a send or call to `name` goes: a declared queue (this process
    /// must hold a send right), else the queue a variable holds.
    fn dest(&self, name: &str, at: usize) -> Result<Dest, ScenarioError> {
        Ok(
            if self.queues.iter().any(|q| q.name == name)
                || !is_variable_name(name)
                || self.names.queue_families.contains_key(name)
            {
                Dest::Queue(self.queue(name, at, true)?)
            } else {
                let slot = self.names.var(name);
                self.dynamic_dests.borrow_mut().push((slot, at));
                Dest::Var(slot)
            },
        )
    }

    /// `QUEUE [PATTERN] [timeout D] [if GUARD]` after `receive`, `expect`
    /// or `on receive` (a guard only when `guarded`).
    pub(crate) fn receive_parts(
        &self,
        script: &str,
        rest: &str,
        arg_at: usize,
        guarded: bool,
    ) -> Result<ReceiveParts, ScenarioError> {
        let (rest, guard) = self.guard(script, rest, arg_at, guarded, "pattern")?;
        let (rest, timeout) = split_word(rest, "timeout");
        let timeout = match timeout {
            None => None,
            Some(d) => {
                let d_at = offset_in(script, d);
                if guarded {
                    return Err(self.err(
                        d_at,
                        "a `select` arm has no timeout of its own: add an `on timeout D` arm",
                    ));
                }
                if d.is_empty() {
                    return Err(self.err(arg_at, "write `receive QUEUE timeout D`"));
                }
                Some(self.duration(d, d_at)?)
            }
        };
        let name = rest.split_whitespace().next().unwrap_or_default();
        let src = if self.queues.iter().any(|q| q.name == name)
            || !is_variable_name(name)
            || self.names.queue_families.contains_key(name)
        {
            Dest::Queue(self.queue(name, arg_at, false)?)
        } else {
            let slot = self.names.var(name);
            self.dynamic_dests.borrow_mut().push((slot, arg_at));
            Dest::Var(slot)
        };
        if let (true, Dest::Queue(queue)) = (guarded, &src) {
            if let Some(why) = super::mech::plain_use_refusal(&self.queues[*queue], "select") {
                return Err(self.err(arg_at, why));
            }
        }
        let pattern_text = rest[name.len()..].trim();
        let pattern = if pattern_text.is_empty() {
            None
        } else {
            Some(self.pattern(script, pattern_text)?)
        };
        Ok(ReceiveParts {
            src,
            pattern,
            timeout,
            guard,
        })
    }

    pub(crate) fn queue_name(&self, name: &str, at: usize) -> Result<usize, ScenarioError> {
        if let Some(members) = self.names.queue_families.get(name) {
            return Err(self.err(
                at,
                format!(
                    "`{name}` is a family of {} mailboxes: name one, `{name}[0]`..`{name}[{}]`, \
                     or hold one in a variable (`mine = {name}[id]`, then `receive mine`)",
                    members.len(),
                    members.len().saturating_sub(1)
                ),
            ));
        }
        self.queues
            .iter()
            .position(|q| q.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
                let hint = if name.contains('[') {
                    ": a queue chosen by an index goes through a variable \
                     (`q = family[k]`, then `send q` or `receive q`)"
                } else {
                    ""
                };
                self.err(
                    at,
                    format!(
                        "unknown port or mailbox `{name}` (declared: {}){hint}",
                        list(&known)
                    ),
                )
            })
    }

    /// Resolves a queue and checks this process may send to it or receive from it.
    fn queue(&self, name: &str, at: usize, sending: bool) -> Result<usize, ScenarioError> {
        let queue = self.queue_name(name, at)?;
        if let Some(why) = super::mech::plain_use_refusal(&self.queues[queue], "") {
            return Err(self.err(at, why));
        }
        let me = self.me;
        let who = &self.procs[me].0;
        let ok = match &self.queues[queue].kind {
            QueueKind::Port { receiver, senders } => {
                if sending {
                    senders.contains(&me)
                } else {
                    *receiver == me
                }
            }
            QueueKind::Mailbox {
                owner,
                senders,
                receivers,
            } => {
                let list = if sending { senders } else { receivers };
                *owner == Some(me) || list.as_ref().is_none_or(|l| l.contains(&me))
            }
        };
        if ok {
            return Ok(queue);
        }
        let message = match (&self.queues[queue].kind, sending) {
            (QueueKind::Port { .. }, true) => format!(
                "process `{who}` sends to port `{name}` but holds no send right to it (add it to the port's `senders`)"
            ),
            (QueueKind::Port { .. }, false) => format!(
                "process `{who}` receives from port `{name}` but holds no right to it: only its `receiver` may receive"
            ),
            (QueueKind::Mailbox { .. }, true) => format!(
                "process `{who}` sends to mailbox `{name}` but is not in its `senders`"
            ),
            (QueueKind::Mailbox { .. }, false) => format!(
                "process `{who}` receives from mailbox `{name}` but is not in its `receivers`"
            ),
        };
        Err(self.err(at, message))
    }

    fn process(&self, name: &str, at: usize) -> Result<usize, ScenarioError> {
        self.procs.iter().position(|p| p.0 == name).ok_or_else(|| {
            let known: Vec<&str> = self.procs.iter().map(|p| p.0.as_str()).collect();
            self.err(
                at,
                format!("unknown process `{name}` (declared: {})", list(&known)),
            )
        })
    }

    pub(crate) fn duration(&self, text: &str, at: usize) -> Result<Duration, ScenarioError> {
        parse_duration(text).map_err(|m| self.err(at, m))
    }
}

pub(crate) fn list(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

pub(crate) fn parse_policy(p: &str) -> Option<OnFull> {
    Some(match p {
        "block" => OnFull::Block,
        "fail" => OnFull::Fail,
        "drop-newest" => OnFull::DropNewest,
        "drop-oldest" => OnFull::DropOldest,
        _ => return None,
    })
}

/// `250us`, `3ms`, `1.5s`, `20ns`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let bad = || format!("`{t}` is not a duration (write e.g. 250us, 3ms, 1.5s)");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(bad)?;
    let (num, unit) = t.split_at(split);
    let value: f64 = num.parse().map_err(|_| bad())?;
    let nanos_per = match unit.trim() {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(bad()),
    };
    let nanos = value * nanos_per;
    if !nanos.is_finite() || !(0.0..=1e18).contains(&nanos) {
        return Err(bad());
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// `3ms`, `exp(2ms)`, `uniform(1ms, 3ms)`.
pub(crate) fn parse_dist(text: &str) -> Result<Dist, String> {
    let t = text.trim();
    let inner = |prefix: &str| {
        t.strip_prefix(prefix)
            .and_then(|r| r.trim_start().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
    };
    if let Some(arg) = inner("exponential").or_else(|| inner("exp")) {
        return Ok(Dist::exponential(parse_duration(arg)?));
    }
    if let Some(args) = inner("uniform") {
        let (lo, hi) = args
            .split_once(',')
            .ok_or_else(|| format!("write `uniform(LOW, HIGH)`, found `{t}`"))?;
        let (lo, hi) = (parse_duration(lo)?, parse_duration(hi)?);
        if hi < lo {
            return Err(format!(
                "uniform({lo:?}, {hi:?}): the low bound is above the high one"
            ));
        }
        return Ok(Dist::uniform(lo, hi));
    }
    parse_duration(t)
        .map(Dist::fixed)
        .map_err(|_| format!("`{t}` is not a duration: write 3ms, exp(3ms) or uniform(1ms, 5ms)"))
}
