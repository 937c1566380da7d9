//! Scenario files: a small TOML format for IPC experiments.
//!
//! A scenario names the queues (ports and mailboxes, each with a capacity
//! and an owner), the processes with a short script each, the faults to
//! inject and the invariants to check. `mkipc run FILE` runs it in the
//! simulator (or on threads, or on real processes with `--backend os`),
//! `mkipc explore FILE` runs it under many schedules, and `mkipc check FILE`
//! ([`check_topology`]) reports, without running it, the wait-for cycles its
//! topology allows. The format, in full:
//!
//! ```toml
//! name = "bounded buffer"             # optional title
//! description = "why this is here"    # optional, printed before the report
//! seed = 7                            # optional default seed (--seed overrides)
//!
//! [[mailbox]]                         # indirect communication by name
//! name = "jobs"
//! capacity = 8                        # 0 (rendezvous), n (bounded) or "unbounded"
//! owner = "consumer"                  # optional: the mailbox dies when its owner exits
//! on_full = "block"                   # optional: block | fail | drop-newest | drop-oldest
//! senders = ["producer"]              # optional access lists (default: everyone)
//! receivers = ["consumer"]
//!
//! [[port]]                            # a Mach port: one receiver, send rights handed out
//! name = "requests"
//! capacity = 4
//! receiver = "server"                 # holds the receive right (alias: owner)
//! senders = ["client"]                # hold send rights
//!
//! [[process]]
//! name = "producer"
//! script = """
//! repeat 20
//!   work exp(2ms)                     # fixed: 2ms; exp(mean); uniform(lo, hi)
//!   send jobs
//! end
//! """
//!
//! [[process]]
//! name = "helper"
//! start = "spawned"                   # started by another script's `spawn helper`
//! script = "exit 0"
//!
//! [[fault]]
//! kill = "producer"
//! at = "15ms"                         # or: step = 40, or: chance = 0.01 (per step)
//!
//! [invariants]
//! no_message_lost = true              # every message sent is received
//! never_exceeds = { jobs = 8 }        # checked after every scheduling step
//! ```
//!
//! Script statements, one per line (`#` starts a comment):
//!
//! | statement | meaning |
//! |---|---|
//! | `send Q [POLICY]` | send to port or mailbox `Q` (policy: `block`, `fail`, `drop-newest`, `drop-oldest`; default the queue's `on_full`) |
//! | `receive Q [timeout D]` | receive from `Q` (the receiver of a port, or a reader of a mailbox) |
//! | `send-to P`, `receive-from P`, `receive-any` | direct communication, naming the process |
//! | `call Q`, `reply` | RPC: send a request with a reply right and wait; answer the last request |
//! | `work D`, `sleep D` | be busy / asleep for a duration `D` |
//! | `repeat N` ... `end`, `forever` ... `end` | loops; a `forever` loop ends when a receive in it fails (timeout, source gone) |
//! | `spawn P`, `exit [CODE]`, `destroy Q` | start a `spawned` process, stop, destroy a queue this process owns |
//! | `send Q [POLICY] VALUE`, `receive Q PATTERN`, `expect Q PATTERN` | messages with values ([`Value`]); selective receive |
//! | `x = EXPR`, `a[i] = EXPR`, `if`/`else`, `while`, `assert EXPR` | per-process variables, choice, checks |
//! | `select` with `on receive`/`on send`/`on timeout` arms, `try-send Q V else` | the first arm that can proceed; send if there is room |
//! | `close P`, `load V x`, `store V EXPR`, `lock M`, `unlock M` | pipes and FIFOs (`[[pipe]]`, `[[fifo]]`: end of file, broken pipe), shared variables (`[[shared]]`) and locks (`[[lock]]`), all kernel objects (`mech.rs`, [`MechOp`]) |
//! | `select any` ... `end` | any arm that can proceed (a nondeterministic choice) |
//! | `receive V`, `expect V`, `on receive V`, `call V` | on the queue a variable holds |
//! | `call Q VALUE -> PATTERN`, `reply VALUE` | RPC with values |
//! | `end: STATEMENT` | waiting forever at this receive or select is a valid end |
//!
//! `[params]` (named integers, overridden by `--set NAME=VALUE`, see
//! [`parse_with`]) and families (`count = N`: processes `name[0]`.., and
//! mailboxes too, whose bare name is the tuple of its members) size a
//! model. The whole language, with its grammar, is in
//! `examples/scenarios/README.md`; expressions in [`Expr`], values and the
//! message codec in [`Value`]. The interpreter runs a flattened script with
//! a program counter as a state machine (`interp.rs`: `ScriptMachine`, a
//! `mkipc_sim::machine::Machine`) whose whole state (position, variables,
//! messages a selective receive set aside, names, the pending operation) is
//! `Clone + Eq + Hash` data, so a model checker can snapshot and hash it;
//! every backend runs that one interpreter.
//!
//! Every name is checked before anything runs: an unknown process or queue,
//! a capacity that is not a number, or a script that receives from a port
//! it holds no right to is an error naming the file, line and column
//! ([`ScenarioError`]), never a panic. Blocks nest at most [`MAX_NESTING`]
//! deep (a deeper file is an error at the block one level too far),
//! expressions at most [`MAX_EXPR_DEPTH`] deep and [`MAX_EXPR_TOKENS`] long,
//! and no part of the parser or the interpreter recurses per block, so no
//! file can overflow a stack.
//!
//! ## Backends
//!
//! Each backend is one [`Backend`] ([`SimBackend`], [`ThreadsBackend`],
//! [`OsBackend`]): [`Backend::check`] refuses what it cannot run before
//! anything starts ([`Unsupported`]), [`Backend::run`] runs it or says why
//! it could not ([`RunError`]).
//!
//! | backend | runs | supports |
//! |---|---|---|
//! | `sim` ([`run_sim`]) | the deterministic simulator, virtual time | everything |
//! | `threads` ([`run_threads`]) | kernel tasks on OS threads, real time | no faults, no mailbox owners or access lists, no pipes or FIFOs |
//! | `os` ([`run_os`]) | real Linux processes (the `mkipc-os` crate), real time | see below |
//!
//! On `--backend threads` the run is stopped at `--timeout` (default 10 s):
//! the report names each process still running and what it is blocked on
//! ([`Kernel::blocked_on`](mkipc_kernel::Kernel::blocked_on)); their kernel
//! tasks are exited (a blocked send or receive fails with `TaskExited`,
//! sleeps are cut short) and their threads joined. `never_exceeds` is checked
//! on the kernel's high-water mark of each queue, read before the queue can
//! die (as each process ends, before a `destroy`, at the end of the run).
//!
//! On `--backend os` each process is a re-executed `mkipc` (the binary calls
//! `mkipc_os::child_main(OS_ROLES)` first in `main`) that parses the scenario
//! text it is sent and runs the same interpreter on an
//! [`mkipc_os::OsProcess`]; `work` and `sleep` are real sleeps times
//! `--time-scale`. Ports are POSIX queues whose rights travel as descriptors;
//! system mailboxes are named POSIX queues; `send-to`/`receive-from` are
//! pipes between processes that start together; `spawn` starts a grandchild,
//! which reports to its spawner. Every example scenario runs there
//! (`deadlock.toml` usually deadlocks for real and is killed at
//! `--timeout`). [`check_os`] refuses, before anything starts and naming the
//! feature and why: mailbox access lists (per-process grants), faults by step
//! or chance (and any fault on a spawned process), a mailbox owned by a
//! spawned process, direct communication with a spawned process,
//! `drop-oldest` sends to a port, `never_exceeds` on a queue the coordinator
//! cannot watch (a port, an unbounded or owned mailbox) unless the capacity
//! guarantees it, a capacity above `/proc/sys/fs/mqueue/msg_max` for a
//! non-root user, and pipes and FIFOs (end of file needs to know when the
//! last write end closed). Shared variables and locks are one-slot POSIX
//! queues there. Results are not deterministic; queue lengths are sampled.
//!
//! ```
//! let text = r#"
//! [[port]]
//! name = "p"
//! capacity = 1
//! receiver = "b"
//! senders = ["a"]
//!
//! [[process]]
//! name = "a"
//! script = "send p"
//!
//! [[process]]
//! name = "b"
//! script = "receive p"
//! "#;
//! let scenario = mkipc::scenario::parse("inline.toml", text).unwrap();
//! let outcome = mkipc::scenario::run_sim(&scenario, &Default::default()).unwrap();
//! assert!(outcome.result.ok);
//! assert_eq!(outcome.result.messages.received, 1);
//! ```

pub mod backend;
mod blocks;
mod check;
mod error;
mod expr;
mod flow;
mod interp;
mod mech;
mod os;
mod parse;
mod print;
mod record;
mod report;
mod run;
mod script;
mod topology;
mod value;

use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::{Capacity, OnFull};
use mkipc_sim::Dist;

pub(crate) use backend::sim::builder_for;
pub use backend::sim::{
    build_sim, run_sim, setup_sim, spawn_script_copies, RunOptions, SimHandles, SimOutcome,
};
pub use backend::threads::{check_threads, run_threads, run_threads_traced};
pub use backend::{
    Backend, BackendKind, OsBackend, RunError, SimBackend, ThreadsBackend, ThreadsOptions,
    Unsupported,
};
pub use blocks::MAX_NESTING;
pub use check::{
    check_refusal, check_scenario, check_scenario_parallel, replay_scenario, ScenarioCheck,
};
pub use error::ScenarioError;
pub use expr::{Expr, Pattern, MAX_EXPR_DEPTH, MAX_EXPR_TOKENS};
pub use mech::MechOp;
pub use os::{check_os, run_os, run_os_traced, OsOptions, OS_ROLES, ROLE as OS_ROLE};
pub use parse::{
    load, load_with, parse, parse_override, parse_with, read_bounded, MAX_FILE_SIZE, MAX_PROCESSES,
    MAX_SCRIPTS_SIZE,
};
pub use print::from_model;
pub use record::Recorder;
pub use report::{
    instance_of, InvariantResult, MessageTotals, ProcessResult, QueueResult, RunResult,
};
pub use topology::{
    check_topology, CycleStep, StuckWait, TimedWait, TopologyReport, Verdict, WaitCycle,
};
pub use value::{Value, MAX_VALUE_DEPTH, MAX_VALUE_SIZE};

/// A checked scenario: every name resolved to an index.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The file it came from.
    pub file: String,
    /// The text it was parsed from (the os backend ships it to each process,
    /// which parses it again).
    pub source: Arc<str>,
    /// Its title.
    pub name: String,
    /// What it shows.
    pub description: String,
    /// Default seed.
    pub seed: u64,
    /// Ports and mailboxes.
    pub queues: Vec<Queue>,
    /// Processes, in declaration order.
    pub processes: Vec<Process>,
    /// Faults to inject.
    pub faults: Vec<Fault>,
    /// Invariants to check.
    pub invariants: Invariants,
    /// The symbols the scripts use, by index ([`Value::Sym`]).
    pub symbols: Vec<String>,
    /// The `[params]`, after any `--set` overrides.
    pub params: std::collections::BTreeMap<String, i64>,
    /// The `--set` overrides the scenario was parsed with.
    pub overrides: Vec<(String, i64)>,
}

/// A port or mailbox.
#[derive(Clone, Debug)]
pub struct Queue {
    /// Its name.
    pub name: String,
    /// Its capacity.
    pub capacity: Capacity,
    /// What a plain `send` does when it is full.
    pub on_full: OnFull,
    /// Port or mailbox, with who holds what.
    pub kind: QueueKind,
    /// What the scenario declared it as: a plain queue, or one of the
    /// course's mechanisms built on one (`mech.rs`).
    pub role: QueueRole,
}

/// What a queue stands for: a plain port or mailbox, or one of the
/// mechanisms built on one (see `mech.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueRole {
    /// A `[[port]]` or `[[mailbox]]`.
    Queue,
    /// A `[[pipe]]`: a port whose send rights are its write ends.
    Pipe,
    /// A `[[fifo]]`: a named pipe, opened by name.
    Fifo,
    /// A `[[shared]]` variable with its initial value: a one-slot mailbox
    /// holding its value.
    Shared(i64),
    /// A `[[lock]]`: a one-slot mailbox holding its token.
    Lock,
}

/// The two kinds of queue.
#[derive(Clone, Debug)]
pub enum QueueKind {
    /// A port: one receiver, some senders (process indices).
    Port {
        /// Holder of the receive right.
        receiver: usize,
        /// Holders of send rights.
        senders: Vec<usize>,
    },
    /// A named mailbox.
    Mailbox {
        /// The owning process, or `None` for a system mailbox.
        owner: Option<usize>,
        /// Who may send (`None`: everyone).
        senders: Option<Vec<usize>>,
        /// Who may receive (`None`: everyone).
        receivers: Option<Vec<usize>>,
    },
}

impl Queue {
    /// Whether this is a mailbox.
    pub fn is_mailbox(&self) -> bool {
        matches!(self.kind, QueueKind::Mailbox { .. })
    }

    /// What the report calls its kind: `port`, `mailbox`, `pipe`,
    /// `fifo`, `shared` (a shared variable) or `lock`.
    pub fn kind_name(&self) -> &'static str {
        match (self.role, &self.kind) {
            (QueueRole::Queue, QueueKind::Port { .. }) => "port",
            (QueueRole::Queue, QueueKind::Mailbox { .. }) => "mailbox",
            (QueueRole::Pipe, _) => "pipe",
            (QueueRole::Fifo, _) => "fifo",
            (QueueRole::Shared(_), _) => "shared",
            (QueueRole::Lock, _) => "lock",
        }
    }

    /// Whether this is a pipe or a FIFO (end of file, broken pipe).
    pub fn is_pipe(&self) -> bool {
        matches!(self.role, QueueRole::Pipe | QueueRole::Fifo)
    }

    /// Whether this is a shared variable or a lock (reached only through
    /// `load`/`store`/`lock`/`unlock`).
    pub fn is_memory(&self) -> bool {
        matches!(self.role, QueueRole::Shared(_) | QueueRole::Lock)
    }

    /// Whether this is a mailbox with an owner or access lists (which name
    /// pids, so a backend must know every pid before the run starts).
    pub(crate) fn has_access_rules(&self) -> bool {
        matches!(
            &self.kind,
            QueueKind::Mailbox { owner, senders, receivers }
                if owner.is_some() || senders.is_some() || receivers.is_some()
        )
    }
}

/// A right a process starts with (to a port).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Right {
    /// The receive right.
    Receive,
    /// A send right.
    Send,
}

/// A process and its script.
#[derive(Clone, Debug)]
pub struct Process {
    /// Its name.
    pub name: String,
    /// Started only by another process's `spawn`.
    pub spawned: bool,
    /// What it does.
    pub script: Vec<Stmt>,
    /// The port rights it starts with, in inheritance order: its own, then
    /// those it passes on to the processes it spawns.
    pub rights: Vec<(usize, Right)>,
    /// Its variables' names, by slot (slot 0 is `id`).
    pub vars: Vec<String>,
    /// Its index in its family (`count = N`), 0 for a single process.
    pub id: i64,
    /// `server = true`: may be left waiting at a receive when every other
    /// process has ended (a valid end state, not a deadlock).
    pub server: bool,
    /// The lines (in the file) of its `end:`-labelled statements: when it
    /// has any, waiting forever is a valid end state there and only there
    /// (`server` no longer matters).
    pub valid_ends: Vec<usize>,
    /// `expect_error = true`: ending with an error (a send to a dead
    /// destination, a failed receive) does not fail the run.
    pub expect_error: bool,
}

/// A statement with its line in the file.
#[derive(Clone, Debug)]
pub struct Stmt {
    /// 1-based line in the scenario file.
    pub line: usize,
    /// What it does.
    pub op: Op,
}

/// Script operations (see the module docs).
#[derive(Clone, Debug)]
pub enum Op {
    /// Send to a queue.
    Send {
        /// The queue.
        queue: usize,
        /// What to do when it is full.
        on_full: OnFull,
        /// The value the message carries, if any.
        value: Option<Expr>,
    },
    /// Send to the queue a variable holds (`send reply_to v`).
    SendVia {
        /// The variable's slot.
        var: usize,
        /// What to do when it is full.
        on_full: OnFull,
        /// The value the message carries, if any.
        value: Option<Expr>,
    },
    /// Receive from a queue: the first message matching `pattern` (any
    /// message without one); `expect`: the next message, which must match.
    Receive {
        /// The queue.
        queue: usize,
        /// Give up after this long.
        timeout: Option<Duration>,
        /// Which message to take, binding its parts.
        pattern: Option<Pattern>,
        /// Take the next message and fail the process if it does not match.
        expect: bool,
    },
    /// Receive from the queue a variable holds (`receive mine PATTERN`),
    /// as [`Op::Receive`] does from a named one.
    ReceiveVia {
        /// The variable's slot.
        var: usize,
        /// Give up after this long.
        timeout: Option<Duration>,
        /// Which message to take, binding its parts.
        pattern: Option<Pattern>,
        /// Take the next message and fail the process if it does not match.
        expect: bool,
    },
    /// `x = EXPR` or `x[INDEX] = EXPR`.
    Assign {
        /// The variable's slot.
        var: usize,
        /// The element to set, for an array.
        index: Option<Expr>,
        /// The new value.
        value: Expr,
    },
    /// `if COND` ... `else` ... `end`.
    If {
        /// The condition.
        cond: Expr,
        /// Run when it holds.
        then: Vec<Stmt>,
        /// Run when it does not.
        otherwise: Vec<Stmt>,
    },
    /// `while COND` ... `end`.
    While {
        /// The condition, checked before each turn.
        cond: Expr,
        /// The loop body.
        body: Vec<Stmt>,
    },
    /// `select` with `on` arms: the first arm that can proceed.
    Select(Vec<Arm>),
    /// `select any`: any arm that can proceed, a nondeterministic choice
    /// (`Ctx::choose`: the simulator's seeded stream, every one of them
    /// under the checker).
    SelectAny(Vec<Arm>),
    /// `try-send Q [VALUE] else` ... `end`: send if there is room now, else
    /// run `otherwise`.
    TrySend {
        /// Where to.
        dest: Dest,
        /// The value the message carries, if any.
        value: Option<Expr>,
        /// Run when the queue is full.
        otherwise: Vec<Stmt>,
    },
    /// `assert COND`: the process fails, naming the values, if it is false.
    Assert {
        /// The condition.
        cond: Expr,
    },
    /// Send directly to a process.
    SendTo {
        /// The process.
        proc: usize,
    },
    /// Receive directly from a process.
    ReceiveFrom {
        /// The process.
        proc: usize,
        /// Give up after this long.
        timeout: Option<Duration>,
    },
    /// Receive directly from any process.
    ReceiveAny {
        /// Give up after this long.
        timeout: Option<Duration>,
    },
    /// RPC on a queue: `call Q [VALUE] [-> PATTERN]`.
    Call {
        /// The queue.
        queue: usize,
        /// The value the request carries, if any.
        value: Option<Expr>,
        /// The reply must match it (its variables are bound), if given.
        reply: Option<Pattern>,
    },
    /// RPC on the queue a variable holds (`call next VALUE -> PATTERN`).
    CallVia {
        /// The variable's slot.
        var: usize,
        /// The value the request carries, if any.
        value: Option<Expr>,
        /// The reply must match it (its variables are bound), if given.
        reply: Option<Pattern>,
    },
    /// Answer the last request received: `reply [VALUE]`.
    Reply {
        /// The value the reply carries, if any.
        value: Option<Expr>,
    },
    /// Busy for a duration.
    Work(Dist),
    /// Asleep for a duration.
    Sleep(Dist),
    /// A counted loop.
    Repeat(u64, Vec<Stmt>),
    /// A loop ended by a failing receive.
    Forever(Vec<Stmt>),
    /// Start a `spawned` process.
    Spawn(usize),
    /// Stop with an exit code.
    Exit(i32),
    /// Destroy a queue this process owns.
    Destroy(usize),
    /// Pipes and shared memory: `close`, `load`, `store`, `lock`, `unlock`
    /// (`mech.rs`).
    Mech(MechOp),
}

/// Where a send goes.
#[derive(Clone, Debug)]
pub enum Dest {
    /// A declared queue.
    Queue(usize),
    /// The queue a variable holds (its slot).
    Var(usize),
}

/// One arm of a `select`.
#[derive(Clone, Debug)]
pub struct Arm {
    /// Its `on` line in the file.
    pub line: usize,
    /// What it waits for.
    pub kind: ArmKind,
    /// The arm is considered only when this holds.
    pub guard: Option<Expr>,
    /// Run when the arm is taken.
    pub body: Vec<Stmt>,
}

/// What a `select` arm waits for.
#[derive(Clone, Debug)]
pub enum ArmKind {
    /// A message (matching the pattern, if any) on a queue.
    Receive {
        /// The queue.
        queue: usize,
        /// Which message.
        pattern: Option<Pattern>,
    },
    /// A message (matching the pattern, if any) on the queue a variable
    /// holds when the `select` starts.
    ReceiveVia {
        /// The variable's slot.
        var: usize,
        /// Which message.
        pattern: Option<Pattern>,
    },
    /// Room to send on a queue.
    Send {
        /// Where to.
        dest: Dest,
        /// The value the message carries, if any.
        value: Option<Expr>,
    },
    /// Nothing else could proceed for this long.
    Timeout(Duration),
}

/// When a fault strikes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultWhen {
    /// At a virtual time.
    At(Duration),
    /// At a scheduling step.
    Step(u64),
    /// With this probability at every step.
    Chance(f64),
}

/// A process to kill.
#[derive(Clone, Debug)]
pub struct Fault {
    /// The process.
    pub proc: usize,
    /// When.
    pub when: FaultWhen,
}

/// What must hold.
#[derive(Clone, Debug, Default)]
pub struct Invariants {
    /// Every message sent is received (checked at the end).
    pub no_message_lost: bool,
    /// `(queue, k)`: the queue never holds more than `k` (after every step).
    pub never_exceeds: Vec<(usize, usize)>,
}

/// Whether running `stmts` does nothing at all: no statement, or only loops
/// around nothing. The interpreter skips such a `repeat` (a billion turns of
/// nothing would never yield to the scheduler), and a `forever` around
/// nothing is refused when the script is parsed.
pub(crate) fn does_nothing(stmts: &[Stmt]) -> bool {
    walk(stmts)
        .iter()
        .all(|s| matches!(s.op, Op::Repeat(..) | Op::Forever(..)))
}

/// Every statement of `stmts` and of the blocks inside it, in the order
/// they are written (a block's statement before its body). An explicit
/// stack, not recursion: however deep a tree is, walking it cannot
/// overflow a stack.
pub(crate) fn walk(stmts: &[Stmt]) -> Vec<&Stmt> {
    let mut out = Vec::new();
    let mut stack = vec![stmts.iter()];
    while let Some(iter) = stack.last_mut() {
        match iter.next() {
            None => {
                stack.pop();
            }
            Some(s) => {
                out.push(s);
                // Pushed in reverse, so the first block is walked first.
                for body in s.op.blocks().into_iter().rev() {
                    stack.push(body.iter());
                }
            }
        }
    }
    out
}

impl Op {
    /// The statement lists inside this statement, in the order written.
    pub fn blocks(&self) -> Vec<&[Stmt]> {
        match self {
            Op::Repeat(_, body) | Op::Forever(body) | Op::While { body, .. } => vec![body],
            Op::If {
                then, otherwise, ..
            } => vec![then, otherwise],
            Op::TrySend { otherwise, .. } => vec![otherwise],
            Op::Select(arms) | Op::SelectAny(arms) => {
                arms.iter().map(|a| a.body.as_slice()).collect()
            }
            Op::Send { .. }
            | Op::SendVia { .. }
            | Op::Receive { .. }
            | Op::ReceiveVia { .. }
            | Op::Assign { .. }
            | Op::Assert { .. }
            | Op::SendTo { .. }
            | Op::ReceiveFrom { .. }
            | Op::ReceiveAny { .. }
            | Op::Call { .. }
            | Op::CallVia { .. }
            | Op::Reply { .. }
            | Op::Work(_)
            | Op::Sleep(_)
            | Op::Spawn(_)
            | Op::Exit(_)
            | Op::Destroy(_)
            | Op::Mech(_) => Vec::new(),
        }
    }
}

impl Process {
    /// Whether it may be left waiting forever at the end of a run
    /// (`server = true` or an `end:` label): a verdict only the simulator
    /// and the checker can give.
    pub fn may_wait_forever(&self) -> bool {
        self.server || !self.valid_ends.is_empty()
    }
}

impl Scenario {
    /// The index of a process by name.
    pub fn process_index(&self, name: &str) -> Option<usize> {
        self.processes.iter().position(|p| p.name == name)
    }
    /// The index of a queue by name.
    pub fn queue_index(&self, name: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.name == name)
    }
}
