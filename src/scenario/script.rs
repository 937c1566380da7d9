//! The script language of a process: one statement per line, `repeat N` /
//! `forever` blocks closed by `end`, `#` comments. Names are resolved and
//! rights checked here, so a script that cannot run is an error before
//! anything runs (see the table in the module docs of [`super`]).

use std::time::Duration;

use mkipc_kernel::OnFull;
use mkipc_sim::Dist;

use super::error::ScenarioError;
use super::{Op, Queue, QueueKind, Stmt};

/// What a script may refer to, and where its text sits in the file.
pub(crate) struct ScriptCtx<'a> {
    pub file: &'a str,
    pub text: &'a str,
    /// For each byte offset of the script (and one past its end), the byte
    /// offset in `text` it came from (escapes make the two differ).
    pub offsets: Vec<usize>,
    pub queues: &'a [Queue],
    pub procs: &'a [(String, bool)],
    /// The process whose script this is.
    pub me: usize,
}

/// How many `repeat`/`forever` blocks may be open inside one another.
///
/// The parser refuses a deeper script with an error at the block that goes
/// one level too far; the interpreter does not recurse per level at all
/// (an explicit frame stack), so the limit only keeps the statement tree's
/// walks (checks, drop) shallow and a file's mistakes readable.
pub const MAX_NESTING: usize = 100;

/// A `repeat` or `forever` block whose `end` has not been read yet.
struct OpenBlock {
    /// Offset of its opening word within the script.
    at: usize,
    /// Its line in the file.
    line: usize,
    kind: BlockKind,
    body: Vec<Stmt>,
}

enum BlockKind {
    Repeat(u64),
    Forever,
}

struct Line<'a> {
    /// Offset of the line within the script.
    offset: usize,
    /// The line without its comment.
    code: &'a str,
}

impl ScriptCtx<'_> {
    fn err(&self, script_offset: usize, message: impl Into<String>) -> ScenarioError {
        let at = self
            .offsets
            .get(script_offset)
            .or(self.offsets.last())
            .copied()
            .unwrap_or(0);
        ScenarioError::at(self.file, self.text, at, message)
    }

    fn line_no(&self, script_offset: usize) -> usize {
        self.err(script_offset, "").line
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
        self.statements(&lines)
    }

    /// Parses the lines into statements. Blocks are kept on an explicit
    /// stack (no recursion per level), and at most [`MAX_NESTING`] may be
    /// open at once, so no script can exhaust a stack here or in the tree
    /// walks after it.
    fn statements(&self, lines: &[Line<'_>]) -> Result<Vec<Stmt>, ScenarioError> {
        let mut top = Vec::new();
        let mut open: Vec<OpenBlock> = Vec::new();
        for line in lines {
            let indent = line.code.len() - line.code.trim_start().len();
            let code = line.code.trim();
            if code.is_empty() {
                continue;
            }
            let at = line.offset + indent;
            let mut words = code.split_whitespace();
            let word = words.next().unwrap_or_default();
            let args: Vec<&str> = words.collect();
            let rest = code[word.len()..].trim();
            let arg_at = at + code.find(rest).filter(|_| !rest.is_empty()).unwrap_or(0);
            if matches!(word, "repeat" | "forever") && open.len() >= MAX_NESTING {
                return Err(self.err(
                    at,
                    format!(
                        "blocks nest too deeply: at most {MAX_NESTING} `repeat`/`forever` blocks \
                         may be open at once, and this `{word}` would be level {}",
                        open.len() + 1
                    ),
                ));
            }
            let op = match word {
                "end" => {
                    let Some(block) = open.pop() else {
                        return Err(self.err(at, "`end` without a `repeat` or `forever` to close"));
                    };
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
                    };
                    let stmt = Stmt { line: block.line, op };
                    match open.last_mut() {
                        Some(parent) => parent.body.push(stmt),
                        None => top.push(stmt),
                    }
                    continue;
                }
                "repeat" => {
                    let n = match args.as_slice() {
                        [n] => n.parse::<u64>().map_err(|_| {
                            self.err(arg_at, format!("`repeat` needs a whole number of times, found `{n}`"))
                        })?,
                        _ => return Err(self.err(at, "write `repeat N`, then the statements, then `end`")),
                    };
                    open.push(OpenBlock { at, line: self.line_no(at), kind: BlockKind::Repeat(n), body: Vec::new() });
                    continue;
                }
                "forever" => {
                    if !args.is_empty() {
                        return Err(self.err(arg_at, "`forever` takes no argument"));
                    }
                    open.push(OpenBlock { at, line: self.line_no(at), kind: BlockKind::Forever, body: Vec::new() });
                    continue;
                }
                "send" => {
                    let (name, policy) = match args.as_slice() {
                        [q] => (*q, None),
                        [q, p] => (*q, Some(*p)),
                        _ => return Err(self.err(at, "write `send QUEUE` or `send QUEUE POLICY`")),
                    };
                    let queue = self.queue(name, arg_at, true)?;
                    let on_full = match policy {
                        None => self.queues[queue].on_full,
                        Some(p) => parse_policy(p).ok_or_else(|| {
                            self.err(arg_at + rest.find(p).unwrap_or(0), format!(
                                "unknown send policy `{p}` (block, fail, drop-newest, drop-oldest)"
                            ))
                        })?,
                    };
                    Op::Send { queue, on_full }
                }
                "receive" => {
                    let (name, timeout) = match args.as_slice() {
                        [q] => (*q, None),
                        [q, "timeout", d] => (*q, Some(self.duration(d, arg_at + rest.find(d).unwrap_or(0))?)),
                        _ => return Err(self.err(at, "write `receive QUEUE` or `receive QUEUE timeout D`")),
                    };
                    let queue = self.queue(name, arg_at, false)?;
                    Op::Receive { queue, timeout }
                }
                "call" => {
                    let [q] = args.as_slice() else {
                        return Err(self.err(at, "write `call QUEUE`"));
                    };
                    Op::Call { queue: self.queue(q, arg_at, true)? }
                }
                "reply" => Op::Reply,
                "send-to" => {
                    let [p] = args.as_slice() else {
                        return Err(self.err(at, "write `send-to PROCESS`"));
                    };
                    Op::SendTo { proc: self.process(p, arg_at)? }
                }
                "receive-from" => {
                    let (p, timeout) = match args.as_slice() {
                        [p] => (*p, None),
                        [p, "timeout", d] => (*p, Some(self.duration(d, arg_at)?)),
                        _ => return Err(self.err(at, "write `receive-from PROCESS`")),
                    };
                    Op::ReceiveFrom { proc: self.process(p, arg_at)?, timeout }
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
                        return Err(self.err(at, format!("`{word}` needs a duration, e.g. `{word} 2ms`")));
                    }
                    let d = parse_dist(rest).map_err(|m| self.err(arg_at, m))?;
                    if word == "work" { Op::Work(d) } else { Op::Sleep(d) }
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
                    [c] => Op::Exit(c.parse().map_err(|_| self.err(arg_at, format!("exit code must be a number, found `{c}`")))?),
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
                        return Err(self.err(arg_at, format!(
                            "process `{}` cannot destroy `{q}`: only its owner (receiver) can",
                            self.procs[self.me].0
                        )));
                    }
                    Op::Destroy(queue)
                }
                other => {
                    return Err(self.err(at, format!(
                        "unknown statement `{other}` (send, receive, send-to, receive-from, receive-any, \
                         call, reply, work, sleep, repeat, forever, end, spawn, exit, destroy)"
                    )))
                }
            };
            let stmt = Stmt {
                line: self.line_no(at),
                op,
            };
            match open.last_mut() {
                Some(parent) => parent.body.push(stmt),
                None => top.push(stmt),
            }
        }
        match open.last() {
            Some(block) => Err(self.err(block.at, "this block has no `end`")),
            None => Ok(top),
        }
    }

    fn queue_name(&self, name: &str, at: usize) -> Result<usize, ScenarioError> {
        self.queues
            .iter()
            .position(|q| q.name == name)
            .ok_or_else(|| {
                let known: Vec<&str> = self.queues.iter().map(|q| q.name.as_str()).collect();
                self.err(
                    at,
                    format!(
                        "unknown port or mailbox `{name}` (declared: {})",
                        list(&known)
                    ),
                )
            })
    }

    /// Resolves a queue and checks this process may send to it or receive from it.
    fn queue(&self, name: &str, at: usize, sending: bool) -> Result<usize, ScenarioError> {
        let queue = self.queue_name(name, at)?;
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

    fn duration(&self, text: &str, at: usize) -> Result<Duration, ScenarioError> {
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
