//! The machine itself: every operation finished later gives what it gives
//! when finished at once, and a clone taken at any step goes on as the
//! original would.
//!
//! The reference is the simulator's own run ([`run_sim`]: `ProcCtx`, every
//! operation [`Op::Done`]). The test driver runs the same scripts on the
//! same simulator and seed, but its [`Ctx`] answers [`Op::Pending`] to every
//! send and receive and performs it before the next step, handing the
//! outcome in; and it replaces the machine by a clone of itself at every
//! step (checking that the clone is equal and hashes alike). The operations
//! reach the kernel in the same order either way, so the trace, the report
//! and every process's final variables must be identical.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{
    CarriedRight, IpcError, Message, OnFull, Pid, PortName, ReceiveError, SendError, Sent, Wait,
};
use mkipc_sim::machine::{receive_blocking, send_blocking, CallStart, Ctx, Machine, Op, Step};
use mkipc_sim::{Proc, ProcError, ProcResult, Sim};
use proptest::prelude::*;

use super::{ScriptMachine, Shared};
use crate::scenario::backend::sim::{run_sim_with, SpawnScript};
use crate::scenario::value::Value;
use crate::scenario::{parse, run_sim, RunOptions, Scenario};

/// How the test driver runs a machine.
#[derive(Clone, Copy, Debug)]
struct Mode {
    /// Every send and receive answers `Op::Pending`; the driver performs it
    /// before the next step.
    defer: bool,
    /// The machine is replaced by a clone of itself before every step.
    clone: bool,
    /// `call` is made as two operations (`CallStart::InTwo`), not by the
    /// simulator's own call.
    call_in_two: bool,
}

/// Each process's final variables, by process index, in the order they ended.
type Finals = Arc<Mutex<Vec<(usize, Vec<Option<Value>>)>>>;

/// An operation a step left pending.
enum Deferred {
    Send(Destination, Message, OnFull),
    Receive(Src, Wait),
}

/// A [`Source`] that owns its names.
enum Src {
    Name(PortName),
    Any(Vec<PortName>),
    Task(Pid),
    AnyTask,
}

struct TestCtx<'a> {
    proc: &'a Proc,
    mode: Mode,
    pending: Option<Deferred>,
    finals: Finals,
}

impl Ctx<ScriptMachine> for TestCtx<'_> {
    type Ipc = Proc;
    fn choose(&mut self, n: usize) -> usize {
        self.proc.choose(n)
    }
    fn ipc(&self) -> &Proc {
        self.proc
    }
    fn now(&self) -> Duration {
        self.proc.now()
    }
    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> Op<Result<Sent, SendError>> {
        assert!(self.pending.is_none(), "two operations pending at once");
        if !self.mode.defer {
            return Op::Done(send_blocking(self.proc, dest, msg, on_full));
        }
        self.pending = Some(Deferred::Send(dest, msg, on_full));
        Op::Pending
    }
    fn receive(&mut self, source: Source<'_>, wait: Wait) -> Op<Result<Message, ReceiveError>> {
        assert!(self.pending.is_none(), "two operations pending at once");
        if !self.mode.defer {
            return Op::Done(receive_blocking(self.proc, source, wait));
        }
        let src = match source {
            Source::Name(n) => Src::Name(n),
            Source::Any(names) => Src::Any(names.to_vec()),
            Source::Task(pid) => Src::Task(pid),
            Source::AnyTask => Src::AnyTask,
        };
        self.pending = Some(Deferred::Receive(src, wait));
        Op::Pending
    }
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        if self.mode.call_in_two {
            CallStart::InTwo(msg)
        } else {
            CallStart::Done(mkipc_kernel::Ipc::call_with(
                self.proc,
                dest,
                msg,
                Wait::Forever,
            ))
        }
    }
    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> ScriptMachine + Send + 'static,
    {
        let (mode, finals) = (self.mode, Arc::clone(&self.finals));
        self.proc
            .spawn(name, inherit, move |p| {
                drive(p, make(p.inherited()), mode, finals)
            })
            .map(drop)
    }
}

fn hash_of(m: &ScriptMachine) -> u64 {
    let mut h = DefaultHasher::new();
    m.hash(&mut h);
    h.finish()
}

/// Performs a deferred operation, as the simulator's `ProcCtx` would have.
fn perform(p: &Proc, op: Deferred) -> WaitOutcome {
    match op {
        Deferred::Send(dest, msg, on_full) => {
            WaitOutcome::Sent(send_blocking(p, dest, msg, on_full))
        }
        Deferred::Receive(src, wait) => {
            let source = match &src {
                Src::Name(n) => Source::Name(*n),
                Src::Any(names) => Source::Any(names),
                Src::Task(pid) => Source::Task(*pid),
                Src::AnyTask => Source::AnyTask,
            };
            WaitOutcome::Received(receive_blocking(p, source, wait))
        }
    }
}

/// The test driver: runs `m` to its end on simulated process `p`.
fn drive(p: &Proc, mut m: ScriptMachine, mode: Mode, finals: Finals) -> ProcResult {
    if m.is_server() {
        p.declare_server();
    }
    if m.expects_error() {
        p.declare_expect_error();
    }
    let mut cx = TestCtx {
        proc: p,
        mode,
        pending: None,
        finals: Arc::clone(&finals),
    };
    let mut outcome = None;
    let result = loop {
        if mode.clone {
            let copy = m.clone();
            if copy != m || hash_of(&copy) != hash_of(&m) {
                break Err(ProcError::msg("a clone differs from its machine"));
            }
            // Go on from the clone: the original is gone.
            m = copy;
        }
        match m.step(&mut cx, outcome.take()) {
            Step::Yield => {}
            Step::Wait => match cx.pending.take() {
                Some(op) => outcome = Some(perform(p, op)),
                None => break Err(ProcError::msg("the machine waits for nothing")),
            },
            Step::Pause { time, busy } => {
                if busy {
                    p.work(time)
                } else {
                    p.sleep(time)
                }
            }
            Step::Exit(r) => break r,
        }
        if cx.pending.is_some() {
            break Err(ProcError::msg(
                "an operation is pending but the step did not wait",
            ));
        }
    };
    finals
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((m.process(), m.vars().to_vec()));
    result
}

/// What a run gave: trace hash, report, final variables (sorted).
#[derive(Debug, PartialEq)]
struct Outcome {
    trace: u64,
    report: String,
    finals: Vec<(usize, Vec<Option<Value>>)>,
}

fn run_driven(scn: &Scenario, seed: u64, mode: Mode) -> Outcome {
    let finals: Finals = Arc::default();
    let f = Arc::clone(&finals);
    let spawn: SpawnScript<'_> = &move |sim: &mut Sim, name, inherit, make| {
        let f = Arc::clone(&f);
        sim.spawn_with(name, inherit, move |p| {
            drive(p, make(p.inherited()), mode, f)
        })
    };
    let opts = RunOptions {
        seed: Some(seed),
        ..RunOptions::default()
    };
    let out = run_sim_with(scn, &opts, |s| Shared::new(s, false), spawn).unwrap();
    let mut finals = finals.lock().unwrap().clone();
    finals.sort();
    Outcome {
        trace: out.report.trace.hash(),
        report: serde_json::to_string(&out.result).unwrap(),
        finals,
    }
}

const AT_ONCE: Mode = Mode {
    defer: false,
    clone: false,
    call_in_two: false,
};
const DEFERRED_CLONED: Mode = Mode {
    defer: true,
    clone: true,
    call_in_two: false,
};

/// Runs `text` on the simulator as `mkipc run` does, and with the test
/// driver operation by operation and clone by clone: all three agree.
fn check_agree(text: &str, seed: u64) -> Result<(), TestCaseError> {
    let scn = parse("generated.toml", text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let reference = run_sim(
        &scn,
        &RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        },
    )
    .unwrap();
    let at_once = run_driven(&scn, seed, AT_ONCE);
    prop_assert_eq!(at_once.trace, reference.report.trace.hash(), "{}", text);
    prop_assert_eq!(
        &at_once.report,
        &serde_json::to_string(&reference.result).unwrap()
    );
    let deferred = run_driven(&scn, seed, DEFERRED_CLONED);
    prop_assert_eq!(&deferred, &at_once, "{}", text);
    Ok(())
}

// ----- random scripts -----------------------------------------------------

/// A statement of a generated script.
#[derive(Clone, Debug)]
enum G {
    Send(usize, &'static str),
    Receive(usize, &'static str, Option<u8>),
    Expect(usize, &'static str),
    TrySend(usize, &'static str, Vec<G>),
    Select(Vec<(Arm, Vec<G>)>, Option<u8>),
    Repeat(u8, Vec<G>),
    If(&'static str, Vec<G>, Vec<G>),
    While(u8, Vec<G>),
    Forever(usize),
    Assign(&'static str),
    Work(u8),
    Sleep(u8),
    SendTo(usize),
    ReceiveFrom(usize, u8),
    ReceiveAny(u8),
    Call(usize),
    Reply,
    Spawn,
    // Wide scenarios only (`generated_wide`):
    /// `v = mQ`, then `send v VALUE`.
    ViaSend(usize, &'static str),
    /// `v = mQ`, then `receive v PATTERN timeout Nms`.
    ViaReceive(usize, &'static str, u8),
    /// `lock lk ... unlock lk` around the body.
    Locked(Vec<G>),
    /// `unlock lk` alone (an error unless held).
    Unlock,
    /// `load c x`.
    Load,
    /// `store c EXPR`.
    Store(&'static str),
    /// `send pp VALUE` (the writer) or `receive pp x` (the reader).
    Pipe(&'static str),
    /// The reader's `forever` loop of `receive pp x` (end of file ends it).
    PipeRead,
    /// `close pp`.
    Close,
    /// `destroy ma` (by its owner, `p1`).
    Destroy,
}

#[derive(Clone, Debug)]
enum Arm {
    Receive(usize, &'static str),
    Send(usize, &'static str, Option<&'static str>),
}

const VALUES: &[&str] = &["x", "(A, x)", "(B, y)", "x + 1", "7", "(A, 1)"];
const PATTERNS: &[&str] = &["x", "(A, y)", "_", "7", "(B, _)", "(A, 1)"];
const CONDS: &[&str] = &["x > 1", "y == 0", "x == 7", "y < 3"];
const ASSIGNS: &[&str] = &["x = 0", "y = y + 1", "x = 7", "y = 0"];

/// What no schedule makes fail (for the checker's comparison): sends to
/// unbounded mailboxes, receives that end a `forever` when they time out,
/// patterns that bind integers only.
fn safe_leaf(queues: usize) -> impl Strategy<Value = G> {
    let q = 0..queues;
    let v = proptest::sample::select(VALUES);
    prop_oneof![
        (q.clone(), v).prop_map(|(q, v)| G::Send(q, v)),
        proptest::sample::select(ASSIGNS).prop_map(G::Assign),
        (1u8..3).prop_map(G::Work),
        (1u8..3).prop_map(G::Sleep),
        q.prop_map(G::Forever),
    ]
}

fn leaf(queues: usize, procs: usize, safe: bool) -> BoxedStrategy<G> {
    if safe {
        return safe_leaf(queues).boxed();
    }
    let q = 0..queues;
    let v = proptest::sample::select(VALUES);
    let pat = proptest::sample::select(PATTERNS);
    prop_oneof![
        (q.clone(), v.clone()).prop_map(|(q, v)| G::Send(q, v)),
        (q.clone(), pat.clone(), proptest::option::of(1u8..4))
            .prop_map(|(q, p, t)| G::Receive(q, p, t)),
        (q.clone(), pat).prop_map(|(q, p)| G::Expect(q, p)),
        proptest::sample::select(ASSIGNS).prop_map(G::Assign),
        (1u8..3).prop_map(G::Work),
        (1u8..3).prop_map(G::Sleep),
        (0..procs).prop_map(G::SendTo),
        (0..procs, 1u8..4).prop_map(|(p, t)| G::ReceiveFrom(p, t)),
        (1u8..4).prop_map(G::ReceiveAny),
        q.clone().prop_map(G::Call),
        Just(G::Reply),
        q.prop_map(G::Forever),
    ]
    .boxed()
}

/// Patterns that bind integers only.
const SAFE_PATTERNS: &[&str] = &["(A, y)", "_", "7", "(B, _)", "(A, 1)"];

fn script(queues: usize, procs: usize, spawner: bool, safe: bool) -> impl Strategy<Value = Vec<G>> {
    let stmt = leaf(queues, procs, safe).prop_recursive(2, 24, 4, move |inner| {
        let body = proptest::collection::vec(inner, 0..3);
        let v = proptest::sample::select(VALUES);
        let pat = proptest::sample::select(if safe { SAFE_PATTERNS } else { PATTERNS });
        let arm = prop_oneof![
            (0..queues, pat).prop_map(|(q, p)| Arm::Receive(q, p)),
            (
                0..queues,
                v.clone(),
                proptest::option::of(proptest::sample::select(CONDS))
            )
                .prop_map(|(q, v, c)| Arm::Send(q, v, c)),
        ];
        prop_oneof![
            (0..queues, v, body.clone()).prop_map(|(q, v, b)| G::TrySend(q, v, b)),
            (
                proptest::collection::vec((arm, body.clone()), 1..3),
                // Always a timeout: a select whose send arms find no room
                // polls, and without one would poll to the step limit.
                (1u8..4).prop_map(Some)
            )
                .prop_map(|(arms, t)| G::Select(arms, t)),
            (1u8..3, body.clone()).prop_map(|(n, b)| G::Repeat(n, b)),
            (proptest::sample::select(CONDS), body.clone(), body.clone())
                .prop_map(|(c, t, e)| G::If(c, t, e)),
            (1u8..3, body).prop_map(|(n, b)| G::While(n, b)),
        ]
    });
    // The first process spawns the helper (a spawned process must be).
    (proptest::collection::vec(stmt, 1..6), 0usize..6).prop_map(move |(mut s, at)| {
        if spawner {
            s.insert(at.min(s.len()), G::Spawn);
        }
        s
    })
}

/// Writes statements as script text; `depth` names the `while` counters.
fn write(out: &mut String, stmts: &[G], indent: usize, depth: usize, names: &[String]) {
    let pad = " ".repeat(indent);
    for s in stmts {
        match s {
            G::Send(q, v) => out.push_str(&format!("{pad}send m{q} {v}\n")),
            G::Receive(q, p, t) => {
                let t = t.map_or(String::new(), |t| format!(" timeout {t}ms"));
                out.push_str(&format!("{pad}receive m{q} {p}{t}\n"));
            }
            G::Expect(q, p) => out.push_str(&format!("{pad}expect m{q} {p} timeout 2ms\n")),
            G::TrySend(q, v, b) => {
                out.push_str(&format!("{pad}try-send m{q} {v} else\n"));
                write(out, b, indent + 2, depth + 1, names);
                out.push_str(&format!("{pad}end\n"));
            }
            G::Select(arms, t) => {
                out.push_str(&format!("{pad}select\n"));
                for (arm, body) in arms {
                    match arm {
                        Arm::Receive(q, p) => out.push_str(&format!("{pad}on receive m{q} {p}\n")),
                        Arm::Send(q, v, c) => {
                            let c = c.map_or(String::new(), |c| format!(" if {c}"));
                            out.push_str(&format!("{pad}on send m{q} {v}{c}\n"));
                        }
                    }
                    write(out, body, indent + 2, depth + 1, names);
                }
                if let Some(t) = t {
                    out.push_str(&format!("{pad}on timeout {t}ms\n{pad}  y = y + 1\n"));
                }
                out.push_str(&format!("{pad}end\n"));
            }
            G::Repeat(n, b) => {
                out.push_str(&format!("{pad}repeat {n}\n"));
                write(out, b, indent + 2, depth + 1, names);
                out.push_str(&format!("{pad}end\n"));
            }
            G::If(c, t, e) => {
                out.push_str(&format!("{pad}if {c}\n"));
                write(out, t, indent + 2, depth + 1, names);
                out.push_str(&format!("{pad}else\n"));
                write(out, e, indent + 2, depth + 1, names);
                out.push_str(&format!("{pad}end\n"));
            }
            G::While(n, b) => {
                let w = format!("w{depth}");
                out.push_str(&format!("{pad}{w} = 0\n{pad}while {w} < {n}\n"));
                out.push_str(&format!("{pad}  {w} = {w} + 1\n"));
                write(out, b, indent + 2, depth + 1, names);
                out.push_str(&format!("{pad}end\n"));
            }
            G::Forever(q) => out.push_str(&format!(
                "{pad}forever\n{pad}  receive m{q} (A, y) timeout 2ms\n{pad}  y = y + 1\n{pad}end\n"
            )),
            G::Assign(a) => out.push_str(&format!("{pad}{a}\n")),
            G::Work(d) => out.push_str(&format!("{pad}work {d}ms\n")),
            G::Sleep(d) => out.push_str(&format!("{pad}sleep uniform(0ms, {d}ms)\n")),
            G::SendTo(p) => out.push_str(&format!("{pad}send-to {}\n", names[*p])),
            G::ReceiveFrom(p, t) => {
                out.push_str(&format!("{pad}receive-from {} timeout {t}ms\n", names[*p]))
            }
            G::ReceiveAny(t) => out.push_str(&format!("{pad}receive-any timeout {t}ms\n")),
            G::Call(q) => out.push_str(&format!("{pad}call m{q}\n")),
            G::Reply => out.push_str(&format!("{pad}reply\n")),
            G::Spawn => out.push_str(&format!("{pad}spawn helper\n")),
            G::ViaSend(q, v) => {
                let q = via(*q);
                out.push_str(&format!("{pad}v = {q}\n{pad}send v {v}\n"))
            }
            G::ViaReceive(q, p, t) => {
                let q = via(*q);
                out.push_str(&format!("{pad}v = {q}\n{pad}receive v {p} timeout {t}ms\n"))
            }
            G::Locked(b) => {
                out.push_str(&format!("{pad}lock lk\n"));
                write(out, b, indent, depth, names);
                out.push_str(&format!("{pad}unlock lk\n"));
            }
            G::Unlock => out.push_str(&format!("{pad}unlock lk\n")),
            G::Load => out.push_str(&format!("{pad}load c x\n")),
            G::Store(e) => out.push_str(&format!("{pad}store c {e}\n")),
            // Written per role by `scenario_text_wide`.
            G::Pipe(v) => out.push_str(&format!("{pad}send pp {v}\n")),
            G::PipeRead => out.push_str(&format!(
                "{pad}forever\n{pad}  receive pp x\n{pad}  y = y + 1\n{pad}end\n"
            )),
            G::Close => out.push_str(&format!("{pad}close pp\n")),
            G::Destroy => out.push_str(&format!("{pad}destroy ma\n")),
        }
    }
}

/// A scenario: `caps.len()` mailboxes, the processes' scripts (the first
/// may spawn `helper`, the last script).
fn scenario_text(caps: &[&str], scripts: &[Vec<G>]) -> String {
    let mut out = String::new();
    for (i, c) in caps.iter().enumerate() {
        out.push_str(&format!("[[mailbox]]\nname = \"m{i}\"\ncapacity = {c}\n\n"));
    }
    let n = scripts.len() - 1;
    let names: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
    for (i, s) in scripts.iter().enumerate() {
        let (name, start) = if i < n {
            (names[i].clone(), "")
        } else {
            ("helper".to_string(), "start = \"spawned\"\n")
        };
        let mut text = String::from("x = 0\ny = 0\nw0 = 0\nw1 = 0\nw2 = 0\nw3 = 0\n");
        // The helper talks to no one directly (it starts late).
        let peers: Vec<String> = if i < n { names.clone() } else { Vec::new() };
        if peers.is_empty() {
            let direct_free: Vec<G> = s.iter().filter(|g| !is_direct(g)).cloned().collect();
            write(&mut text, &direct_free, 0, 0, &names);
        } else {
            let mine: Vec<G> = s.iter().map(|g| not_to_self(g, i, n)).collect();
            write(&mut text, &mine, 0, 0, &names);
        }
        out.push_str(&format!(
            "[[process]]\nname = \"{name}\"\n{start}script = \"\"\"\n{text}\"\"\"\n\n"
        ));
    }
    out
}

fn is_direct(g: &G) -> bool {
    matches!(g, G::SendTo(_) | G::ReceiveFrom(..) | G::Spawn)
}

/// Direct statements name another process than `me` (of `n`).
fn not_to_self(g: &G, me: usize, n: usize) -> G {
    match g {
        G::SendTo(p) if *p % n == me => G::SendTo((me + 1) % n),
        G::SendTo(p) => G::SendTo(*p % n),
        G::ReceiveFrom(p, t) if *p % n == me => G::ReceiveFrom((me + 1) % n, *t),
        G::ReceiveFrom(p, t) => G::ReceiveFrom(*p % n, *t),
        G::Spawn if me != 0 => G::Assign("y = 0"),
        other => other.clone(),
    }
}

fn generated() -> impl Strategy<Value = (String, u64)> {
    generated_with(false)
}

/// Random scenarios; `safe`: ones no schedule makes fail ([`safe_leaf`]).
fn generated_with(safe: bool) -> impl Strategy<Value = (String, u64)> {
    let caps: &'static [&'static str] = if safe {
        &["\"unbounded\""]
    } else {
        &["0", "1", "2", "\"unbounded\""]
    };
    let caps = proptest::collection::vec(proptest::sample::select(caps), 2..4);
    (caps, 2usize..4, any::<u64>())
        .prop_flat_map(move |(caps, procs, seed)| {
            let q = caps.len();
            let scripts: Vec<_> = (0..=procs)
                .map(|i| script(q, procs, i == 0, safe).boxed())
                .collect();
            (Just(caps), scripts, Just(seed % 1000))
        })
        .prop_map(|(caps, scripts, seed)| (scenario_text(&caps, &scripts), seed))
}

/// The queue a `v = ...` of [`generated_wide`] names: `m{q}`, or (`q` =
/// [`VIA_RULED`]) the mailbox with access lists, which only variables name
/// (the static checks would refuse a statement naming it that breaks its
/// rules; through a variable, the kernel refuses it in the run).
fn via(q: usize) -> String {
    if q == VIA_RULED {
        "ma".to_string()
    } else {
        format!("m{q}")
    }
}

const VIA_RULED: usize = 9;

/// The statements of [`generated_wide`] the narrow generator has not:
/// queues through variables, a lock, a shared variable, a pipe, destroys.
fn wide_leaf(queues: usize) -> BoxedStrategy<G> {
    let viaq = prop_oneof![0..queues, Just(VIA_RULED)];
    let v = proptest::sample::select(VALUES);
    let pat = proptest::sample::select(PATTERNS);
    prop_oneof![
        (viaq.clone(), v.clone()).prop_map(|(q, v)| G::ViaSend(q, v)),
        (viaq, pat, 1u8..4).prop_map(|(q, p, t)| G::ViaReceive(q, p, t)),
        Just(G::Unlock),
        Just(G::Load),
        proptest::sample::select(&["x + 1", "7", "y"][..]).prop_map(G::Store),
        proptest::sample::select(&["x", "1", "y + 1"][..]).prop_map(G::Pipe),
        Just(G::Close),
        Just(G::Destroy),
    ]
    .boxed()
}

/// A script of [`generated_wide`]: the narrow statements, the wide ones,
/// and `lock ... unlock` blocks around some of them.
fn wide_script(queues: usize, procs: usize, spawner: bool) -> impl Strategy<Value = Vec<G>> {
    let one = prop_oneof![
        3 => leaf(queues, procs, false),
        2 => wide_leaf(queues),
    ];
    let stmt = prop_oneof![
        4 => one.clone(),
        1 => proptest::collection::vec(one, 0..3).prop_map(G::Locked),
    ];
    (proptest::collection::vec(stmt, 1..7), 0usize..6).prop_map(move |(mut s, at)| {
        if spawner {
            s.insert(at.min(s.len()), G::Spawn);
        }
        s
    })
}

/// How a process uses the pipe.
#[derive(Clone, Copy, PartialEq)]
enum PipeEnd {
    Reader,
    Writer,
    None,
}

/// Pipe statements by role: the reader (`p1`) reads, in a `forever` loop
/// that end of file ends, the writer (`p0`) writes, and a
/// process with no end does neither.
fn pipe_role(g: &G, end: PipeEnd) -> Vec<G> {
    match g {
        G::Locked(b) => vec![G::Locked(
            b.iter().flat_map(|g| pipe_role(g, end)).collect(),
        )],
        G::Pipe(_) if end == PipeEnd::Reader => vec![G::PipeRead],
        G::Pipe(_) | G::Close if end == PipeEnd::None => vec![G::Assign("y = 0")],
        // Only `ma`'s owner, `p1`, may destroy it.
        G::Destroy if end != PipeEnd::Reader => vec![G::Assign("x = 7")],
        other => vec![other.clone()],
    }
}

/// Random scenarios over every construct the simulator runs stackless and
/// a coroutine runs point for point alike: the narrow generator's
/// mailboxes (one of them with access lists and, sometimes, an owner) and
/// statements (calls included), plus queues through variables, a lock, a
/// shared variable, a pipe from `p0` to `p1`, destroys.
fn generated_wide() -> impl Strategy<Value = (String, u64)> {
    let caps = proptest::collection::vec(
        proptest::sample::select(&["0", "1", "2", "\"unbounded\""][..]),
        2..4,
    );
    (caps, 2usize..4, any::<u64>(), any::<bool>())
        .prop_flat_map(|(caps, procs, seed, owned)| {
            let q = caps.len();
            let scripts: Vec<_> = (0..=procs)
                .map(|i| wide_script(q, procs, i == 0).boxed())
                .collect();
            (Just(caps), scripts, Just(seed % 1000), Just(owned))
        })
        .prop_map(|(caps, scripts, seed, owned)| {
            let scripts: Vec<Vec<G>> = scripts
                .iter()
                .enumerate()
                .map(|(i, s)| {
                    let end = match i {
                        1 => PipeEnd::Reader,
                        0 => PipeEnd::Writer,
                        _ => PipeEnd::None,
                    };
                    s.iter().flat_map(|g| pipe_role(g, end)).collect()
                })
                .collect();
            let text = scenario_text(&caps, &scripts);
            let rules = if owned {
                "owner = \"p1\"\nsenders = [\"p0\"]\n"
            } else {
                "owner = \"p1\"\nreceivers = [\"p0\"]\n"
            };
            let decls = format!("[[mailbox]]\nname = \"ma\"\ncapacity = 1\n{rules}\n");
            let decls = decls
                + "[[lock]]\nname = \"lk\"\n\n[[shared]]\nname = \"c\"\n\n\
                         [[pipe]]\nname = \"pp\"\ncapacity = 2\nreader = \"p1\"\n\
                         writers = [\"p0\"]\n\n";
            (format!("{decls}{text}"), seed)
        })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Random small scripts (sends, receives with patterns, expects,
    /// selects, try-sends, loops, if/while, assignments, direct messages,
    /// calls and replies, a spawn; 2-3 processes) run on the simulator
    /// alike whether each operation completes at once or is finished at
    /// the next step, and whether the machine goes on from a clone of
    /// itself at every step: same trace, same report, same final variables.
    #[test]
    fn deferred_and_cloned_machines_run_as_the_simulator((text, seed) in generated()) {
        check_agree(&text, seed)?;
    }
}

#[test]
fn every_example_runs_alike_deferred_and_cloned() {
    for b in crate::bundled::SCENARIOS {
        let scn = parse(&b.file(), b.text).unwrap();
        let at_once = run_driven(&scn, scn.seed, AT_ONCE);
        let deferred = run_driven(&scn, scn.seed, DEFERRED_CLONED);
        assert_eq!(deferred, at_once, "{}", b.name);
    }
}

/// RPC made of two operations (a send with a send-once reply right, a
/// receive on the reply port), as the model checker makes it: the same
/// counts as the simulator's own call, and a server that ends without
/// replying gives the caller the kernel's "no reply".
#[test]
fn a_call_in_two_operations_counts_as_one() {
    let text = r#"
[[port]]
name = "rpc"
capacity = 1
receiver = "server"
senders = ["client"]

[[process]]
name = "client"
script = """
repeat 3
  call rpc
end
call rpc
"""

[[process]]
name = "server"
expect_error = true
script = """
repeat 3
  receive rpc
  work 1ms
  reply
end
receive rpc
"""
"#;
    let scn = parse("rpc.toml", text).unwrap();
    let reference = run_sim(&scn, &RunOptions::default()).unwrap().result;
    for defer in [false, true] {
        let mode = Mode {
            defer,
            clone: true,
            call_in_two: true,
        };
        let out = run_driven(&scn, scn.seed, mode);
        let result: serde_json::Value = serde_json::from_str(&out.report).unwrap();
        assert_eq!(
            result["messages"],
            serde_json::to_value(&reference.messages).unwrap()
        );
        let client = &result["processes"][0];
        // (The simulator's own per-process figures see the kernel's
        // send-once notification as a message received: not compared.)
        assert_eq!(client["sent"], reference.processes[0].sent, "{result}");
        assert_eq!(
            result["queues"],
            serde_json::to_value(&reference.queues).unwrap()
        );
        let status = client["status"].as_str().unwrap();
        assert!(
            status.contains(": call rpc: ") && status.contains("without replying"),
            "{status}"
        );
        assert_eq!(
            reference.processes[0].status, status,
            "the same error as the simulator's own call"
        );
    }
}

/// Under the model checker's stamps (offered at 0, every id 1), two
/// machines that did the same things at different times are equal.
#[test]
fn canonical_stamps_make_equal_states_equal() {
    let text = r#"
[[mailbox]]
name = "m"
capacity = 4

[[process]]
name = "p"
script = """
sleep uniform(1ms, 9ms)
send m 1
receive m x
"""
"#;
    let scn = Arc::new(parse("m.toml", text).unwrap());
    let states = |canonical: bool, seed: u64| {
        let shared = Shared::new(Arc::clone(&scn), false);
        let shared = Arc::new(if canonical {
            shared.canonical_messages()
        } else {
            shared
        });
        let seen: Arc<Mutex<Vec<ScriptMachine>>> = Arc::default();
        let s = Arc::clone(&seen);
        let mut sim = Sim::builder().seed(seed).build();
        sim.mailbox("m", mkipc_kernel::Capacity::Bounded(4))
            .unwrap();
        let m = ScriptMachine::new(&shared, 0, &[], &[]);
        sim.spawn_with("p", &[], move |p| {
            let mut m = m;
            let mut cx = TestCtx {
                proc: p,
                mode: AT_ONCE,
                pending: None,
                finals: Arc::default(),
            };
            loop {
                s.lock().unwrap().push(m.clone());
                match m.step(&mut cx, None) {
                    Step::Pause { time, .. } => p.sleep(time),
                    Step::Exit(r) => return r,
                    _ => {}
                }
            }
        })
        .unwrap();
        sim.run().unwrap();
        let v = seen.lock().unwrap().clone();
        v
    };
    let (a, b) = (states(true, 1), states(true, 2));
    assert_eq!(a.len(), b.len());
    assert!(
        a == b,
        "canonical stamps: the same states whatever the clock"
    );
    assert!(
        states(false, 1) != states(false, 2),
        "with real stamps the set-aside or last message differs by its time"
    );
}

// ----- under the stateful model checker -------------------------------------

fn bundled(name: &str, overrides: &[(&str, i64)]) -> Scenario {
    let b = crate::bundled::find(name).unwrap();
    let overrides: Vec<(String, i64)> =
        overrides.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    crate::scenario::parse_with(&b.file(), b.text, &overrides).unwrap()
}

/// The examples' verdicts under the stateful checker: the deadlocks are
/// found, the fixed master-worker verified.
#[test]
fn the_checker_gives_the_examples_their_verdicts() {
    use crate::scenario::check_scenario;
    use mkipc_sim::check::Checker;
    use mkipc_sim::FailureReason;

    let c = check_scenario(&bundled("deadlock", &[]), &Checker::new()).unwrap();
    let f = c.outcome.failure().expect("deadlock.toml deadlocks");
    assert!(matches!(f.reason, FailureReason::Deadlock(_)), "{f}");

    let buggy = bundled("master-worker-buggy", &[]);
    let c = check_scenario(&buggy, &Checker::new()).unwrap();
    let f = c
        .outcome
        .failure()
        .expect("the buggy master deadlocks at capacity 1");
    assert!(matches!(f.reason, FailureReason::Deadlock(_)), "{f}");

    let fixed = bundled(
        "master-worker-select",
        &[("NJOBS", 2), ("NWORKERS", 2), ("CAP", 1)],
    );
    let c = check_scenario(&fixed, &Checker::new()).unwrap();
    assert!(c.outcome.is_verified(), "{}", c.outcome);
    assert_eq!(c.unchecked, ["no message lost"]);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 12,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The simulator's run of a random script (fixed durations, no direct
    /// addressing) ends in one of the end states the stateful checker finds
    /// for it: the same interpreter, stepped by the checker on the kernel's
    /// non-blocking core, reaches what the simulator's one schedule reached.
    #[test]
    fn the_simulators_end_is_one_the_checker_finds((text, seed) in generated_with(true)) {
        let text = text
            .replace("uniform(0ms, 1ms)", "1ms")
            .replace("uniform(0ms, 2ms)", "2ms");
        let scn = parse("generated.toml", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let direct = scn.processes.iter().any(|p| {
            crate::scenario::walk(&p.script)
                .iter()
                .any(|s| matches!(s.op, crate::scenario::Op::SendTo { .. } | crate::scenario::Op::ReceiveFrom { .. }))
        });
        let sim = run_driven(&scn, seed, AT_ONCE);
        let report: serde_json::Value = serde_json::from_str(&sim.report).unwrap();
        if direct || report["ok"] != true {
            // Direct addressing is refused by the checker; a failed run
            // ends the checker's path at the failure, elsewhere.
            return Ok(());
        }
        let mut ends = Vec::new();
        let checker = mkipc_sim::check::Checker::new().keep_going().max_memory(4 << 20);
        let c = crate::scenario::check::check_with_ends(&scn, &checker, |end| {
            if end.failure.is_none() {
                let mut finals: Vec<(usize, Vec<Option<Value>>)> = (0..end.view.procs())
                    .filter_map(|i| end.view.machine(mkipc_sim::ProcId(i as u32)))
                    .map(|m| (m.process(), m.vars().to_vec()))
                    .collect();
                finals.sort();
                ends.push(finals);
            }
        })
        .map_err(TestCaseError::fail)?;
        if !c.outcome.stats.complete {
            return Ok(());
        }
        prop_assert!(
            ends.contains(&sim.finals),
            "{}\nsimulator: {:?}\nchecker ({} end states): {:?}",
            text,
            sim.finals,
            ends.len(),
            ends.iter().take(5).collect::<Vec<_>>()
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Every script runs stackless on the simulator (`backend/sim.rs`) and
    /// gets the run it gets on a coroutine (the test driver, operation by
    /// operation): same trace, same report, same final variables; calls,
    /// select send arms (send-possible notifications), queues through
    /// variables, mailboxes with access rules, pipes, shared variables and
    /// locks, destroys included.
    #[test]
    fn stackless_scripts_run_as_on_coroutines((text, seed) in generated_wide()) {
        check_agree(&text, seed)?;
    }
}

/// Every answer of a script about a queue, from the per-run table and from
/// a walk of the script: they must agree.
fn uses_agree(scn: &Scenario) -> Result<(), TestCaseError> {
    use mkipc_sim::machine::MailboxUse as U;
    let table = super::MailboxUses::new(scn);
    for (me, p) in scn.processes.iter().enumerate() {
        for q in 0..scn.queues.len() {
            for how in super::MailboxUses::ALL {
                prop_assert_eq!(
                    table.may(me, q, how),
                    super::script_may_use(&p.script, q, how),
                    "process {} queue {} {:?}",
                    me,
                    q,
                    how
                );
            }
        }
    }
    // An index past the table is any use.
    prop_assert!(table.may(0, scn.queues.len(), U::Send));
    Ok(())
}

/// The master of master-worker selects over `results`, sends to `jobs`
/// from a select arm (a try: it is taken only when there is room) and
/// plainly (the STOPs), never receives from `jobs`; its workers receive
/// plainly from `jobs` and send plainly to `results`: the table says
/// exactly that. Its select has one receive queue, so it takes from
/// `results` without waiting (`Other`) but compares arrivals there only
/// with its notify port, while a request is out (`asked_select`).
#[test]
fn the_use_table_reads_master_worker() {
    use mkipc_sim::machine::MailboxUse as U;
    let text = include_str!("../../../bench/models/master-worker.toml");
    let scn = parse("master-worker.toml", text).unwrap();
    let shared = Arc::new(Shared::new(Arc::new(scn.clone()), false));
    let q = |name: &str| scn.queues.iter().position(|q| q.name == name).unwrap();
    let (jobs, results) = (q("jobs"), q("results"));
    let (master, worker) = (0, 1);
    let t = shared.uses();
    assert!(t.may(master, jobs, U::TrySend) && t.may(master, jobs, U::Send));
    assert!(!t.may(master, jobs, U::Other));
    assert!(!t.may(master, jobs, U::Receive) && !t.may(master, jobs, U::Select));
    assert!(t.may(master, results, U::Other) && !t.may(master, results, U::Receive));
    assert!(!t.may(master, results, U::Select) && t.may(master, results, U::Other));
    assert!(t.asked_select(master, results) && !t.asked_select(master, jobs));
    assert!(!t.asked_select(worker, results));
    assert!(t.may(worker, jobs, U::Receive) && !t.may(worker, jobs, U::Select));
    assert!(t.may(worker, results, U::Send) && !t.may(worker, results, U::Other));
    uses_agree(&scn).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The per-run table of mailbox uses answers as walking the script
    /// does, for every generated script, queue and use.
    #[test]
    fn the_use_table_agrees_with_the_script((text, _seed) in generated_wide()) {
        let scn = parse("generated.toml", &text).map_err(|e| TestCaseError::fail(e.to_string()))?;
        uses_agree(&scn)?;
    }
}
