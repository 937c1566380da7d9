//! From TOML text to a checked [`Scenario`].
//!
//! `toml` and `serde` read the file into raw tables that keep the byte span
//! of every value ([`toml::Spanned`]); then each name is resolved and each
//! rule checked, and any problem becomes a [`ScenarioError`] pointing at the
//! value's line and column.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use mkipc_kernel::{Capacity, OnFull};
use serde::Deserialize;
use toml::Spanned;

use std::cell::RefCell;

use super::error::ScenarioError;
use super::expr::Names;
use super::mech::{RawLock, RawPipe, RawShared, EOF, PIPE_CAPACITY};
use super::script::{list, parse_duration, parse_policy, ScriptCtx};
use super::{
    Fault, FaultWhen, Invariants, Op, Process, Queue, QueueKind, QueueRole, Right, Scenario, Stmt,
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    name: Option<String>,
    description: Option<String>,
    seed: Option<u64>,
    #[serde(default)]
    mailbox: Vec<RawQueue>,
    #[serde(default)]
    port: Vec<RawQueue>,
    #[serde(default)]
    pipe: Vec<RawPipe>,
    #[serde(default)]
    fifo: Vec<RawPipe>,
    #[serde(default)]
    shared: Vec<RawShared>,
    #[serde(default)]
    lock: Vec<RawLock>,
    #[serde(default)]
    process: Vec<RawProcess>,
    #[serde(default)]
    fault: Vec<RawFault>,
    invariants: Option<RawInvariants>,
    #[serde(default)]
    params: BTreeMap<String, Spanned<toml::Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    capacity: Spanned<toml::Value>,
    on_full: Option<Spanned<String>>,
    owner: Option<Spanned<String>>,
    receiver: Option<Spanned<String>>,
    senders: Option<Vec<Spanned<String>>>,
    receivers: Option<Vec<Spanned<String>>>,
    count: Option<Spanned<toml::Value>>,
}

/// At most this many mailboxes in one family (`[[mailbox]] count = N`),
/// so the family's tuple is a value within [`MAX_VALUE_SIZE`](super::MAX_VALUE_SIZE).
pub const MAX_QUEUE_FAMILY: usize = 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProcess {
    name: Spanned<String>,
    start: Option<Spanned<String>>,
    script: Spanned<String>,
    count: Option<Spanned<toml::Value>>,
    server: Option<bool>,
    expect_error: Option<bool>,
}

/// At most this many processes in a scenario, families expanded.
pub const MAX_PROCESSES: usize = 4096;

/// At most this many bytes of script in a scenario (2 MiB), families
/// expanded: each member of a family (`count = N`) parses and keeps its own
/// copy of the script, so a file within [`MAX_FILE_SIZE`] could otherwise
/// ask for 4096 copies of a script of megabytes. A parsed statement takes a
/// few hundred bytes: 2 MiB of short statements is about 350,000 of them,
/// some 130 MB.
pub const MAX_SCRIPTS_SIZE: usize = 2 << 20;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFault {
    kill: Spanned<String>,
    at: Option<Spanned<String>>,
    step: Option<u64>,
    chance: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInvariants {
    #[serde(default)]
    no_message_lost: bool,
    #[serde(default)]
    never_exceeds: BTreeMap<String, Spanned<toml::Value>>,
}

/// Reads and checks a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
    load_with(path, &[])
}

/// A scenario file is at most this many bytes (16 MiB): far more than any
/// script within the limits needs, and a bound on what reading
/// `/dev/zero` or `/dev/urandom` by mistake can take.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// Reads and checks a scenario file with `[params]` overrides (`--set`).
pub fn load_with(path: &Path, overrides: &[(String, i64)]) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let text = read_bounded(path, MAX_FILE_SIZE)
        .map_err(|e| ScenarioError::file(&file, format!("cannot read the file: {e}")))?;
    parse_with(&file, &text, overrides)
}

/// The text of the file at `path`, refused (not read on) past `limit`
/// bytes: the size is checked while reading, since a device or a pipe
/// (`/dev/zero`, `<(yes)`) has no size to ask for first.
pub fn read_bounded(path: &Path, limit: u64) -> Result<String, String> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > limit {
        return Err(format!("larger than {limit} bytes, the limit"));
    }
    String::from_utf8(bytes).map_err(|_| "stream did not contain valid UTF-8".to_string())
}

/// Parses and checks scenario text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Scenario, ScenarioError> {
    parse_with(file, text, &[])
}

/// Like [`parse`], with `[params]` values replaced (`mkipc run --set NAME=VALUE`).
pub fn parse_with(
    file: &str,
    text: &str,
    overrides: &[(String, i64)],
) -> Result<Scenario, ScenarioError> {
    let raw: RawFile = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ScenarioError::at(file, text, offset, e.message().trim().to_string())
    })?;
    Checker {
        file,
        text,
        overrides,
    }
    .check(raw)
}

/// Reads `NAME=VALUE` (a `--set` argument).
pub fn parse_override(arg: &str) -> Result<(String, i64), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("`--set {arg}`: write NAME=VALUE, e.g. --set NJOBS=11"))?;
    let value = value
        .trim()
        .parse::<i64>()
        .map_err(|_| format!("`--set {arg}`: the value must be a whole number"))?;
    Ok((name.trim().to_string(), value))
}

struct Checker<'a> {
    file: &'a str,
    text: &'a str,
    overrides: &'a [(String, i64)],
}

impl Checker<'_> {
    fn err(&self, span: Range<usize>, message: impl Into<String>) -> ScenarioError {
        ScenarioError::span(self.file, self.text, span, message)
    }

    fn params(&self, raw: &RawFile) -> Result<BTreeMap<String, i64>, ScenarioError> {
        let mut params = BTreeMap::new();
        for (name, v) in &raw.params {
            if !name.starts_with(|c: char| c.is_ascii_uppercase())
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(self.err(
                    v.span(),
                    format!("a param name is upper case (letters, digits, `_`), e.g. NJOBS, not `{name}`"),
                ));
            }
            let toml::Value::Integer(n) = v.get_ref() else {
                return Err(self.err(v.span(), format!("param `{name}` must be a whole number")));
            };
            params.insert(name.clone(), *n);
        }
        for (name, value) in self.overrides {
            match params.get_mut(name) {
                Some(v) => *v = *value,
                None => {
                    let known: Vec<&str> = params.keys().map(String::as_str).collect();
                    return Err(ScenarioError::file(
                        self.file,
                        format!(
                            "`--set {name}=...`: no such param in `[params]` (declared: {})",
                            list(&known)
                        ),
                    ));
                }
            }
        }
        Ok(params)
    }

    /// How many members a `[[process]]` (or, up to `max`, a `[[mailbox]]`)
    /// has (`count`, a number or a param).
    fn count(
        &self,
        count: &Option<Spanned<toml::Value>>,
        params: &BTreeMap<String, i64>,
        max: usize,
    ) -> Result<Option<usize>, ScenarioError> {
        let Some(c) = count else {
            return Ok(None);
        };
        let n = match c.get_ref() {
            toml::Value::Integer(n) => *n,
            toml::Value::String(s) if params.contains_key(s) => params[s],
            other => {
                return Err(self.err(
                    c.span(),
                    format!("`count` is a whole number or a `[params]` name, found {other}"),
                ))
            }
        };
        match usize::try_from(n) {
            Ok(n) if (1..=max).contains(&n) => Ok(Some(n)),
            _ => Err(self.err(
                c.span(),
                format!("`count` must be between 1 and {max}, found {n}"),
            )),
        }
    }

    fn check(&self, raw: RawFile) -> Result<Scenario, ScenarioError> {
        let params = self.params(&raw)?;
        // Processes first: every other section names them. A family
        // (`count = N`) is N processes named `name[0]`..`name[N-1]`.
        let mut procs: Vec<(String, bool)> = Vec::new();
        // For each process: its `[[process]]` entry and its index in it.
        let mut origin: Vec<(usize, i64)> = Vec::new();
        let mut families: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut scripts_size: usize = 0;
        for (raw_index, p) in raw.process.iter().enumerate() {
            let base = p.name.get_ref().clone();
            if base.is_empty() || base.contains(char::is_whitespace) || base.contains(['[', ']']) {
                return Err(self.err(
                    p.name.span(),
                    "a process name must be one word (without brackets)",
                ));
            }
            let count = self.count(&p.count, &params, MAX_PROCESSES)?;
            let names: Vec<String> = match count {
                None => vec![base.clone()],
                Some(n) => (0..n).map(|i| format!("{base}[{i}]")).collect(),
            };
            if procs.len() + names.len() > MAX_PROCESSES {
                return Err(self.err(
                    p.name.span(),
                    format!("at most {MAX_PROCESSES} processes in all"),
                ));
            }
            scripts_size =
                scripts_size.saturating_add(p.script.get_ref().len().saturating_mul(names.len()));
            if scripts_size > MAX_SCRIPTS_SIZE {
                return Err(self.err(
                    p.script.span(),
                    format!(
                        "the scripts are too long: at most {MAX_SCRIPTS_SIZE} bytes in all, each \
                         member of a family (`count = N`) counting its own copy"
                    ),
                ));
            }
            if procs.iter().any(|(n, _)| *n == base) || families.contains_key(&base) {
                return Err(self.err(p.name.span(), format!("process `{base}` is declared twice")));
            }
            if count.is_some() {
                families.insert(
                    base.clone(),
                    (procs.len()..procs.len() + names.len()).collect(),
                );
            }
            for (i, name) in names.into_iter().enumerate() {
                if procs.iter().any(|(n, _)| *n == name) {
                    return Err(
                        self.err(p.name.span(), format!("process `{name}` is declared twice"))
                    );
                }
                let spawned = match &p.start {
                    None => false,
                    Some(s) if s.get_ref() == "run" => false,
                    Some(s) if s.get_ref() == "spawned" => true,
                    Some(s) => {
                        return Err(self.err(
                            s.span(),
                            format!(
                                "`start` is \"run\" (the default) or \"spawned\", not \"{}\"",
                                s.get_ref()
                            ),
                        ))
                    }
                };
                if spawned && count.is_some() {
                    return Err(self.err(
                        p.name.span(),
                        "a family (`count`) starts with the run: it cannot be `spawned`",
                    ));
                }
                procs.push((name, spawned));
                origin.push((raw_index, i as i64));
            }
        }
        let proc_index = |s: &Spanned<String>| -> Result<usize, ScenarioError> {
            if let Some(members) = families.get(s.get_ref()) {
                return Err(self.err(
                    s.span(),
                    format!(
                        "`{0}` is a family of {1} processes: name one, `{0}[0]`..`{0}[{2}]`",
                        s.get_ref(),
                        members.len(),
                        members.len() - 1
                    ),
                ));
            }
            procs
                .iter()
                .position(|(n, _)| n == s.get_ref())
                .ok_or_else(|| {
                    let known: Vec<&str> = procs.iter().map(|p| p.0.as_str()).collect();
                    self.err(
                        s.span(),
                        format!(
                            "unknown process `{}` (declared: {})",
                            s.get_ref(),
                            list(&known)
                        ),
                    )
                })
        };
        let top_level = |s: &Spanned<String>, what: &str| -> Result<usize, ScenarioError> {
            let i = proc_index(s)?;
            if procs[i].1 {
                return Err(self.err(
                    s.span(),
                    format!(
                        "{what} must be a process that starts with the run, and `{}` is spawned",
                        s.get_ref()
                    ),
                ));
            }
            Ok(i)
        };

        let mut queues: Vec<Queue> = Vec::new();
        // A mailbox family (`count = N`) is N mailboxes `name[0]`..`name[N-1]`.
        let mut queue_families: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let sections = raw
            .mailbox
            .iter()
            .map(|q| (q, true))
            .chain(raw.port.iter().map(|q| (q, false)));
        for (q, mailbox) in sections {
            let name = q.name.get_ref().clone();
            if name.is_empty() || name.contains(char::is_whitespace) || name.contains(['[', ']']) {
                return Err(self.err(
                    q.name.span(),
                    "a port or mailbox name must be one word (without brackets)",
                ));
            }
            if queues.iter().any(|x| x.name == name) || queue_families.contains_key(&name) {
                return Err(self.err(q.name.span(), format!("`{name}` is declared twice")));
            }
            let count = self.count(&q.count, &params, MAX_QUEUE_FAMILY)?;
            if let (Some(c), false) = (&q.count, mailbox) {
                return Err(self.err(
                    c.span(),
                    "only a mailbox can be a family (`count`): a port has one receiver",
                ));
            }
            let capacity = self.capacity(&q.capacity, &params)?;
            let on_full = match &q.on_full {
                None => OnFull::Block,
                Some(p) => parse_policy(p.get_ref()).ok_or_else(|| {
                    self.err(
                        p.span(),
                        format!("unknown `on_full` policy \"{}\" (block, fail, drop-newest, drop-oldest)", p.get_ref()),
                    )
                })?,
            };
            let names =
                |l: &Option<Vec<Spanned<String>>>| -> Result<Option<Vec<usize>>, ScenarioError> {
                    l.as_ref()
                        .map(|v| {
                            let mut out = Vec::new();
                            for s in v {
                                match families.get(s.get_ref()) {
                                    Some(members) => out.extend(members),
                                    None => out.push(top_level(s, "a name in an access list")?),
                                }
                            }
                            Ok(out)
                        })
                        .transpose()
                };
            let kind = if mailbox {
                if let Some(r) = &q.receiver {
                    return Err(self.err(
                        r.span(),
                        "a mailbox has no `receiver`: use `receivers` (access list) or `owner`",
                    ));
                }
                QueueKind::Mailbox {
                    owner: q
                        .owner
                        .as_ref()
                        .map(|o| top_level(o, "a mailbox owner"))
                        .transpose()?,
                    senders: names(&q.senders)?,
                    receivers: names(&q.receivers)?,
                }
            } else {
                if let Some(r) = &q.receivers {
                    let span = r.first().map_or(q.name.span(), |s| s.span());
                    return Err(self.err(span, "a port has one `receiver`, not `receivers`"));
                }
                let receiver = match (&q.receiver, &q.owner) {
                    (Some(r), None) | (None, Some(r)) => proc_index(r)?,
                    (Some(_), Some(o)) => {
                        return Err(self.err(
                            o.span(),
                            "give a port's receiver once (`receiver` or `owner`)",
                        ))
                    }
                    (None, None) => {
                        return Err(
                            self.err(q.name.span(), format!("port `{name}` needs a `receiver`"))
                        )
                    }
                };
                let mut senders = Vec::new();
                for s in q.senders.iter().flatten() {
                    match families.get(s.get_ref()) {
                        Some(members) => senders.extend(members),
                        None => senders.push(proc_index(s)?),
                    }
                }
                QueueKind::Port { receiver, senders }
            };
            match count {
                None => queues.push(Queue {
                    name,
                    capacity,
                    on_full,
                    kind,
                    role: QueueRole::Queue,
                }),
                Some(n) => {
                    queue_families.insert(name.clone(), (queues.len()..queues.len() + n).collect());
                    for i in 0..n {
                        queues.push(Queue {
                            name: format!("{name}[{i}]"),
                            capacity,
                            on_full,
                            kind: kind.clone(),
                            role: QueueRole::Queue,
                        });
                    }
                }
            }
        }
        // Pipes and FIFOs: ports whose send rights are the write ends.
        let pipes = raw
            .pipe
            .iter()
            .map(|p| (p, QueueRole::Pipe))
            .chain(raw.fifo.iter().map(|p| (p, QueueRole::Fifo)));
        for (p, role) in pipes {
            let name = p.name.get_ref().clone();
            self.new_queue_name(&p.name, &queues)?;
            let capacity = match &p.capacity {
                None => Capacity::Bounded(PIPE_CAPACITY),
                Some(c) => self.capacity(c, &params)?,
            };
            let receiver = proc_index(&p.reader)?;
            let mut senders = Vec::new();
            for s in &p.writers {
                match families.get(s.get_ref()) {
                    Some(members) => senders.extend(members),
                    None => senders.push(proc_index(s)?),
                }
            }
            if senders.contains(&receiver) {
                return Err(self.err(
                    p.reader.span(),
                    format!(
                        "`{}` cannot be both the reader and a writer of `{name}`",
                        p.reader.get_ref()
                    ),
                ));
            }
            queues.push(Queue {
                name,
                capacity,
                on_full: OnFull::Block,
                kind: QueueKind::Port { receiver, senders },
                role,
            });
        }
        // Shared variables and locks: one-slot system mailboxes.
        let cells = raw
            .shared
            .iter()
            .map(|c| (&c.name, QueueRole::Shared(c.value)))
            .chain(raw.lock.iter().map(|l| (&l.name, QueueRole::Lock)));
        for (n, role) in cells {
            self.new_queue_name(n, &queues)?;
            queues.push(Queue {
                name: n.get_ref().clone(),
                capacity: Capacity::Bounded(1),
                on_full: OnFull::Block,
                kind: QueueKind::Mailbox {
                    owner: None,
                    senders: None,
                    receivers: None,
                },
                role,
            });
        }

        let mut processes = Vec::new();
        // A read at end of file gives the symbol `EOF`: known to every
        // script of a scenario with a pipe, whether it names it or not.
        let symbols = RefCell::new(if queues.iter().any(Queue::is_pipe) {
            vec![EOF.to_string()]
        } else {
            Vec::new()
        });
        let line_starts: Vec<usize> = std::iter::once(0)
            .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        for (me, &(raw_index, id)) in origin.iter().enumerate() {
            let p = &raw.process[raw_index];
            let ctx = ScriptCtx {
                file: self.file,
                text: self.text,
                offsets: source_offsets(self.text, p.script.span().start, p.script.get_ref()),
                line_starts: &line_starts,
                queues: &queues,
                procs: &procs,
                me,
                names: Names {
                    params: &params,
                    queues: &queues,
                    queue_families: &queue_families,
                    symbols: &symbols,
                    vars: RefCell::new(vec!["id".to_string()]),
                    bound: RefCell::new(vec![0]),
                },
                dynamic_dests: RefCell::default(),
                valid_ends: RefCell::default(),
                single_word_values: RefCell::default(),
                reads: RefCell::default(),
            };
            let script = ctx.parse(p.script.get_ref())?;
            processes.push(Process {
                name: procs[me].0.clone(),
                spawned: procs[me].1,
                script,
                rights: Vec::new(),
                vars: ctx.names.vars.into_inner(),
                id,
                server: p.server.unwrap_or(false),
                valid_ends: ctx.valid_ends.into_inner(),
                expect_error: p.expect_error.unwrap_or(false),
            });
        }
        self.spawn_tree(&raw, &origin, &mut processes, &queues)?;

        let mut faults = Vec::new();
        for f in &raw.fault {
            let proc = top_level(&f.kill, "a process killed by a fault")?;
            let when = match (&f.at, f.step, &f.chance) {
                (Some(at), None, None) => {
                    FaultWhen::At(parse_duration(at.get_ref()).map_err(|m| self.err(at.span(), m))?)
                }
                (None, Some(step), None) => FaultWhen::Step(step),
                (None, None, Some(c)) => {
                    let p = *c.get_ref();
                    if !(0.0..=1.0).contains(&p) {
                        return Err(self.err(c.span(), "`chance` is a probability between 0 and 1"));
                    }
                    FaultWhen::Chance(p)
                }
                _ => return Err(self.err(
                    f.kill.span(),
                    "a fault needs exactly one of `at = \"5ms\"`, `step = 40` or `chance = 0.01`",
                )),
            };
            faults.push(Fault { proc, when });
        }

        let mut invariants = Invariants::default();
        if let Some(inv) = &raw.invariants {
            invariants.no_message_lost = inv.no_message_lost;
            for (name, k) in &inv.never_exceeds {
                let queue = queues.iter().position(|q| &q.name == name).ok_or_else(|| {
                    self.err(
                        k.span(),
                        format!("unknown port or mailbox `{name}` in `never_exceeds`"),
                    )
                })?;
                let limit = match k.get_ref() {
                    toml::Value::Integer(n) if *n >= 0 => *n as usize,
                    other => {
                        return Err(self.err(
                            k.span(),
                            format!("the limit must be a whole number, found {other}"),
                        ))
                    }
                };
                invariants.never_exceeds.push((queue, limit));
            }
        }

        // Checked last, so a file's other mistakes are named first.
        if processes.is_empty() {
            return Err(self.err(
                0..0,
                "no processes: a scenario needs at least one `[[process]]` with a `script`",
            ));
        }
        Ok(Scenario {
            file: self.file.to_string(),
            source: Arc::from(self.text),
            name: raw.name.clone().unwrap_or_else(|| self.file.to_string()),
            description: raw
                .description
                .clone()
                .unwrap_or_default()
                .trim()
                .to_string(),
            seed: raw.seed.unwrap_or(0),
            queues,
            processes,
            faults,
            invariants,
            symbols: symbols.into_inner(),
            params,
            overrides: self.overrides.to_vec(),
        })
    }

    /// Checks a new queue's name: one word, not declared before.
    fn new_queue_name(&self, n: &Spanned<String>, queues: &[Queue]) -> Result<(), ScenarioError> {
        let name = n.get_ref();
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(self.err(n.span(), "a queue's name must be one word"));
        }
        if queues.iter().any(|x| &x.name == name) {
            return Err(self.err(n.span(), format!("`{name}` is declared twice")));
        }
        Ok(())
    }

    fn capacity(
        &self,
        v: &Spanned<toml::Value>,
        params: &BTreeMap<String, i64>,
    ) -> Result<Capacity, ScenarioError> {
        match v.get_ref() {
            // A `[params]` name: its value, as a number.
            toml::Value::String(s) if params.contains_key(s) => {
                let n = params[s];
                let raw = Spanned::new(v.span(), toml::Value::Integer(n));
                self.capacity(&raw, &BTreeMap::new())
            }
            toml::Value::Integer(0) => Ok(Capacity::Zero),
            toml::Value::Integer(n) if *n > 0 => Ok(Capacity::Bounded(*n as usize)),
            toml::Value::String(s) if s == "unbounded" => Ok(Capacity::Unbounded),
            toml::Value::String(s) if s == "zero" => Ok(Capacity::Zero),
            other => Err(self.err(
                v.span(),
                format!(
                    "capacity must be a number (0 for a rendezvous, n for bounded) or \"unbounded\", found {other}"
                ),
            )),
        }
    }

    /// Works out who spawns whom, and so which rights each process must
    /// start with to hand on.
    fn spawn_tree(
        &self,
        raw: &RawFile,
        origin: &[(usize, i64)],
        processes: &mut [Process],
        queues: &[Queue],
    ) -> Result<(), ScenarioError> {
        let n = processes.len();
        let mut parent: Vec<Option<usize>> = vec![None; n];
        for (p, proc) in processes.iter().enumerate() {
            let mut children = Vec::new();
            spawns(&proc.script, &mut children);
            for c in children {
                match parent[c] {
                    Some(q) if q != p => {
                        return Err(self.err(
                            raw.process[origin[c].0].name.span(),
                            format!(
                                "process `{}` is spawned by both `{}` and `{}`; give each spawned process one parent",
                                processes[c].name, processes[q].name, processes[p].name
                            ),
                        ))
                    }
                    _ => parent[c] = Some(p),
                }
            }
        }
        for (c, proc) in processes.iter().enumerate() {
            if proc.spawned && parent[c].is_none() {
                return Err(self.err(
                    raw.process[origin[c].0].name.span(),
                    format!(
                        "process `{}` has `start = \"spawned\"` but no script spawns it",
                        proc.name
                    ),
                ));
            }
        }
        // Own port rights, then each ancestor holds its descendants' rights.
        let mut rights: Vec<Vec<(usize, Right)>> = vec![Vec::new(); n];
        for (qi, q) in queues.iter().enumerate() {
            if let QueueKind::Port { receiver, senders } = &q.kind {
                rights[*receiver].push((qi, Right::Receive));
                for s in senders {
                    if !rights[*s].contains(&(qi, Right::Send)) {
                        rights[*s].push((qi, Right::Send));
                    }
                }
            }
        }
        let own = rights.clone();
        for c in 0..n {
            let mut seen = vec![false; n];
            let mut a = parent[c];
            while let Some(p) = a {
                if seen[p] {
                    return Err(self.err(
                        raw.process[origin[c].0].name.span(),
                        "processes spawn each other in a cycle",
                    ));
                }
                seen[p] = true;
                for r in &own[c] {
                    if !rights[p].contains(r) {
                        rights[p].push(*r);
                    }
                }
                a = parent[p];
            }
        }
        for (p, r) in processes.iter_mut().zip(rights) {
            p.rights = r;
        }
        Ok(())
    }
}

fn spawns(stmts: &[Stmt], out: &mut Vec<usize>) {
    for s in super::walk(stmts) {
        if let Op::Spawn(c) = s.op {
            out.push(c);
        }
    }
}

/// Where a string value's content starts, given the offset of its opening quote.
fn content_start(text: &str, quote: usize) -> usize {
    let rest = &text[quote.min(text.len())..];
    if rest.starts_with("\"\"\"") || rest.starts_with("'''") {
        let after = quote + 3;
        // TOML trims a newline right after the opening delimiter.
        if text[after..].starts_with("\r\n") {
            after + 2
        } else if text[after..].starts_with('\n') {
            after + 1
        } else {
            after
        }
    } else {
        quote + 1
    }
}

/// Maps each byte offset of `value`, the decoded content of the TOML string
/// that starts (opening quote) at `quote`, to the byte offset in `text` it
/// was decoded from, plus one entry for the end. Escapes (`\n`, `\u00e9`),
/// line-ending backslashes and CRLF line ends make the two differ, so an
/// error inside a script must be placed through this map.
pub(crate) fn source_offsets(text: &str, quote: usize, value: &str) -> Vec<usize> {
    let basic = text[quote.min(text.len())..].starts_with('"');
    let mut r = content_start(text, quote).min(text.len());
    let mut map = Vec::with_capacity(value.len() + 1);
    for c in value.chars() {
        loop {
            let rest = &text[r..];
            if basic && rest.starts_with('\\') {
                let after = &rest[1..];
                let blanks = after.len() - after.trim_start_matches([' ', '\t']).len();
                if after[blanks..].starts_with('\n') || after[blanks..].starts_with("\r\n") {
                    // A line-ending backslash: it and the blanks after it vanish.
                    let tail = &after[blanks..];
                    r += 1 + blanks + tail.len()
                        - tail.trim_start_matches([' ', '\t', '\n', '\r']).len();
                    continue;
                }
                let len = match after.chars().next() {
                    Some('u') => 6,
                    Some('U') => 10,
                    Some('x') => 4,
                    Some(e) => 1 + e.len_utf8(),
                    None => 1,
                };
                map.extend(std::iter::repeat_n(r, c.len_utf8()));
                r = (r + len).min(text.len());
                while !text.is_char_boundary(r) {
                    r += 1;
                }
                break;
            }
            map.extend(std::iter::repeat_n(r, c.len_utf8()));
            r += if c == '\n' && rest.starts_with("\r\n") {
                2
            } else {
                rest.chars().next().map_or(0, char::len_utf8)
            };
            break;
        }
    }
    map.push(r);
    map
}
