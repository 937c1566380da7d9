//! The parallel search gives the same answer whatever the number of
//! workers, and its shards together give the answer of one search.
//!
//! On random models (the generators of `check_soundness.rs`, copied here:
//! ports and mailboxes of every capacity, every `OnFull` policy, receives,
//! selects, timeouts, pauses, choices, a server, failing and panicking
//! processes), with the partial-order reduction on and off:
//! * 1, 2 and 4 workers store the same states, take the same transitions,
//!   reach the same end states and report the same failures with the same
//!   trails, in the same order;
//! * the parallel search (whose cycle proviso works by levels) reaches the
//!   failures and terminal states of the sequential full search;
//! * the shards of a split search, merged, reach the failures and terminal
//!   states of one unsplit search.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use mkipc_kernel::{
    Capacity, Destination, Ipc, Message, OnFull, PortName, ReceiveError, SendError, Sent, Source,
    Wait, WaitOutcome,
};
use mkipc_sim::check::{
    CheckOutcome, Checker, Encode, Encoder, EndState, ProcStatus, Shard, World,
};
use mkipc_sim::machine::{Ctx, Machine, MailboxUse, Op as COp, Step};
use mkipc_sim::{ms, Dist, ExitStatus, FailureReason, Inherit, ProcError};
use proptest::prelude::*;

/// One operation of a generated process.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum MOp {
    /// Send `value` to port `port` with a policy.
    Send {
        port: usize,
        value: u64,
        policy: u8,
    },
    /// Receive from own port `port`: 0 blocks, 1 does not wait, 2 waits 1 ms.
    Receive {
        port: usize,
        wait: u8,
    },
    /// Receive from the first of all own ports.
    Select {
        wait: u8,
    },
    Yield,
    Sleep(u64),
    /// Ends with an error if the last value received is `value`.
    FailIfGot(u64),
    /// Panics if the last value received is `value`.
    PanicIfGot(u64),
    /// A nondeterministic choice among `n`, kept as the last value.
    Choose(u8),
}

#[derive(Clone, Debug)]
struct Model {
    /// Capacity code per port: 0 rendezvous, 1 and 2 bounded, 3 unbounded;
    /// 8 and up a mailbox (anyone sends and receives) of capacity code % 4.
    ports: Vec<u8>,
    /// Operations per process; process `i % procs` owns port `i`.
    procs: Vec<Vec<MOp>>,
    /// Process 0 is a server: it repeats its operations forever, starting
    /// with a blocking receive.
    server: bool,
}

fn capacity(code: u8) -> Capacity {
    match code % 4 {
        0 => Capacity::Zero,
        1 => Capacity::Bounded(1),
        2 => Capacity::Bounded(2),
        _ => Capacity::Unbounded,
    }
}

fn policy(code: u8) -> OnFull {
    match code {
        0 | 1 => OnFull::Block,
        2 => OnFull::Fail,
        3 => OnFull::DropNewest,
        4 => OnFull::DropOldest,
        _ => OnFull::Timeout(ms(1)),
    }
}

fn wait_of(code: u8) -> Wait {
    match code {
        0 => Wait::Forever,
        1 => Wait::NoWait,
        _ => Wait::For(ms(1)),
    }
}

/// A generated process as a machine.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Prog {
    ops: Arc<Vec<MOp>>,
    pc: usize,
    server: bool,
    /// Per port: this process's receive (or mailbox) name.
    own: Vec<Option<PortName>>,
    /// Per port: its send (or mailbox) name.
    send: Vec<Option<PortName>>,
    /// Mailboxes still to open: (port, label).
    to_open: Vec<(usize, String)>,
    last: Option<u64>,
    /// What it saw (not kept by a server, whose loop must close).
    log: Vec<String>,
}

impl Prog {
    fn note(&mut self, s: String) {
        if !self.server {
            self.log.push(s);
        }
    }
    fn sent(&mut self, r: Result<Sent, SendError>) {
        let MOp::Send { port, value, .. } = self.ops[self.pc] else {
            unreachable!()
        };
        self.note(format!("s{port}:{value}:{:?}", r.map_err(|e| e.kind())));
    }
    fn received(&mut self, r: Result<Message, ReceiveError>) {
        match r {
            Ok(m) => {
                self.last = m.as_u64();
                let from = self.own.iter().position(|n| *n == m.received_on());
                self.note(format!("r{from:?}:{:?}", self.last));
            }
            Err(e) => self.note(format!("r:{e:?}")),
        }
    }
    /// After an operation: the next, exiting in the same step after the last.
    fn advance(&mut self) -> Step {
        self.pc += 1;
        if self.pc == self.ops.len() {
            if self.server {
                self.pc = 0;
            } else {
                return Step::Exit(Ok(()));
            }
        }
        Step::Yield
    }
}

impl Machine for Prog {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        match resumed {
            Some(WaitOutcome::Sent(r)) => {
                self.sent(r);
                return self.advance();
            }
            Some(WaitOutcome::Received(r)) => {
                self.received(r);
                return self.advance();
            }
            None => {}
        }
        if let Some((port, label)) = self.to_open.pop() {
            return match cx.ipc().mailbox_open(&label) {
                Ok(name) => {
                    self.own[port] = Some(name);
                    self.send[port] = Some(name);
                    Step::Yield
                }
                Err(e) => Step::Exit(Err(e.into())),
            };
        }
        if self.pc == self.ops.len() {
            return Step::Exit(Ok(()));
        }
        match self.ops[self.pc].clone() {
            MOp::Send {
                port,
                value,
                policy: code,
            } => {
                let Some(to) = self.send[port] else {
                    return self.advance();
                };
                match cx.send(
                    Destination::Name(to),
                    Message::from_u64(1, value),
                    policy(code),
                ) {
                    COp::Done(r) => {
                        self.sent(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Receive { port, wait } => {
                let Some(from) = self.own[port] else {
                    return self.advance();
                };
                match cx.receive(Source::Name(from), wait_of(wait)) {
                    COp::Done(r) => {
                        self.received(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Select { wait } => {
                let names: Vec<PortName> = self.own.iter().flatten().copied().collect();
                if names.is_empty() {
                    return self.advance();
                }
                match cx.receive(Source::Any(&names), wait_of(wait)) {
                    COp::Done(r) => {
                        self.received(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Yield => self.advance(),
            MOp::Sleep(t) => {
                self.pc += 1;
                if self.pc == self.ops.len() && self.server {
                    self.pc = 0;
                }
                Step::Pause {
                    time: Dist::Fixed(ms(t)),
                    busy: false,
                }
            }
            MOp::FailIfGot(v) => {
                if self.last == Some(v) {
                    Step::Exit(Err(ProcError::msg(format!("got {v}"))))
                } else {
                    self.advance()
                }
            }
            MOp::PanicIfGot(v) => {
                if self.last == Some(v) {
                    panic!("got {v}");
                }
                self.advance()
            }
            MOp::Choose(n) => {
                let c = cx.choose(usize::from(n));
                self.last = Some(c as u64);
                self.note(format!("c{c}"));
                self.advance()
            }
        }
    }

    fn is_server(&self) -> bool {
        self.server
    }

    /// From the operations left (all of them for a server, which loops):
    /// the declaration the reduction relies on, exactly.
    fn may_use_mailbox(&self, mailbox: &str, how: MailboxUse) -> bool {
        let Some(port) = mailbox
            .strip_prefix('p')
            .and_then(|i| i.parse::<usize>().ok())
        else {
            return true;
        };
        let left = if self.server {
            &self.ops[..]
        } else {
            &self.ops[self.pc.min(self.ops.len())..]
        };
        left.iter().any(|o| match *o {
            MOp::Send {
                port: p,
                policy: code,
                ..
            } if p == port => {
                how == if policy(code) == OnFull::Block {
                    MailboxUse::Send
                } else {
                    MailboxUse::Other
                }
            }
            MOp::Receive { port: p, wait } if p == port => {
                how == if wait == 0 {
                    MailboxUse::Receive
                } else {
                    MailboxUse::Other
                }
            }
            MOp::Select { wait } => {
                how == MailboxUse::Select || (wait != 0 && how == MailboxUse::Other)
            }
            _ => false,
        })
    }
}

impl Encode for Prog {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.u64(self.pc as u64);
        for n in self.own.iter().chain(&self.send) {
            match n {
                Some(n) => e.name(*n),
                None => e.u64(u64::MAX),
            }
        }
        e.value(&self.to_open.len());
        e.value(&self.last);
        e.value(&self.log);
    }
}

fn op(ports: usize, choices: bool) -> impl Strategy<Value = MOp> {
    let choose = if choices { 1 } else { 0 };
    prop_oneof![
        4 => (0..ports, 0..3u64, 0..6u8).prop_map(|(port, value, policy)| MOp::Send { port, value, policy }),
        3 => (0..ports, 0..3u8).prop_map(|(port, wait)| MOp::Receive { port, wait }),
        1 => (0..3u8).prop_map(|wait| MOp::Select { wait }),
        1 => Just(MOp::Yield),
        1 => (1..3u64).prop_map(MOp::Sleep),
        1 => (0..3u64).prop_map(MOp::FailIfGot),
        1 => (0..3u64).prop_map(MOp::PanicIfGot),
        choose => (2..=3u8).prop_map(MOp::Choose),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    model_of(5, 0..11u8, false)
}

/// Models for the reduced-against-unreduced comparison: more operations,
/// mostly mailboxes (where the reduction applies), choices.
fn por_model() -> impl Strategy<Value = Model> {
    prop_oneof![
        1 => model_of(8, 0..12u8, true),
        2 => model_of(8, 8..12u8, true),
    ]
}

/// Random models of `ops` operations in all (about), capacity codes from
/// `codes`, with choices or not.
fn model_of(ops: usize, codes: std::ops::Range<u8>, choices: bool) -> impl Strategy<Value = Model> {
    (2..=4usize, 1..=3usize, any::<bool>())
        .prop_flat_map(move |(procs, ports, server)| {
            let per = (ops / procs).max(1);
            (
                prop::collection::vec(codes.clone(), ports),
                prop::collection::vec(prop::collection::vec(op(ports, choices), 1..=per), procs),
                Just(server),
            )
        })
        .prop_map(|(ports, mut procs, server)| {
            if server {
                // A server starts each round with a blocking receive on its
                // first port, so its loop waits for the finite input.
                procs[0].insert(0, MOp::Receive { port: 0, wait: 0 });
                // It sends only to ports (not mailboxes, which it may read
                // itself: a loop feeding itself would never end).
                let mailbox = |p: usize| ports[p] >= 8;
                procs[0].retain(|o| match o {
                    MOp::Receive { wait, .. } => *wait == 0,
                    MOp::Send { port, .. } => !mailbox(*port),
                    MOp::Select { .. } | MOp::Sleep(_) => false,
                    _ => true,
                });
            }
            Model {
                ports,
                procs,
                server,
            }
        })
}

/// The rights and machine of process `me`: own ports' receive rights
/// first, then send rights to everyone else's.
fn plan(
    m: &Model,
    me: usize,
    ports: &[PortName],
) -> (
    Vec<mkipc_kernel::CarriedRight>,
    impl Fn(&[mkipc_kernel::CarriedRight]) -> Prog,
) {
    let n = m.procs.len();
    let mailbox = |i: usize| m.ports[i] >= 8;
    let mut inherit = Vec::new();
    let mut own_at = vec![None; ports.len()];
    let mut send_at = vec![None; ports.len()];
    for (i, &p) in ports.iter().enumerate() {
        if i % n == me && !mailbox(i) {
            own_at[i] = Some(inherit.len());
            inherit.push(Inherit::receive(p));
        }
    }
    for (i, &p) in ports.iter().enumerate() {
        if i % n != me && !mailbox(i) {
            send_at[i] = Some(inherit.len());
            inherit.push(Inherit::send(p));
        }
    }
    let to_open: Vec<(usize, String)> = (0..ports.len())
        .filter(|&i| mailbox(i))
        .map(|i| (i, format!("p{i}")))
        .rev()
        .collect();
    let ops = Arc::new(m.procs[me].clone());
    let server = m.server && me == 0;
    let make = move |names: &[mkipc_kernel::CarriedRight]| Prog {
        ops: Arc::clone(&ops),
        pc: 0,
        server,
        own: own_at.iter().map(|k| k.map(|k| names[k].name)).collect(),
        send: send_at.iter().map(|k| k.map(|k| names[k].name)).collect(),
        to_open: to_open.clone(),
        last: None,
        log: Vec::new(),
    };
    (inherit, make)
}

fn status_text(s: &ExitStatus) -> String {
    match s {
        ExitStatus::Panicked(_) => "panicked".into(),
        s => format!("{s:?}"),
    }
}

fn kind(r: Option<&FailureReason>) -> String {
    match r {
        None => "ok".into(),
        Some(FailureReason::Deadlock(_)) => "deadlock".into(),
        Some(FailureReason::Panicked { proc, message }) => format!("panic {proc} {message}"),
        Some(FailureReason::ProcessFailed { proc, error }) => format!("failed {proc} {error}"),
        Some(FailureReason::FinalCheck { name, .. }) => format!("check {name}"),
        Some(other) => format!("other {other}"),
    }
}

/// Builds model `m` in a checker's world.
fn build(m: &Model, w: &mut World<Prog>) {
    let ports: Vec<PortName> = m
        .ports
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            if c >= 8 {
                w.mailbox(&format!("p{i}"), capacity(c)).unwrap()
            } else {
                w.port(&format!("p{i}"), capacity(c)).unwrap()
            }
        })
        .collect();
    for me in 0..m.procs.len() {
        let (inherit, make) = plan(m, me, &ports);
        let id = w.spawn_with(&format!("q{me}"), &inherit, make).unwrap();
        if m.server && me == 0 {
            w.server(id);
        }
    }
}

/// An end state as text: its failure kind, each process's status and log.
fn end_text(end: &EndState<'_, Prog>) -> String {
    let v = &end.view;
    let procs: Vec<String> = (0..v.procs())
        .map(|i| {
            let id = mkipc_sim::ProcId(i as u32);
            let status = match v.status(id).unwrap() {
                ProcStatus::Ended(s) => status_text(&s),
                _ => "Stuck".into(),
            };
            format!("{status} {:?}", v.machine(id).unwrap().log)
        })
        .collect();
    format!("{} {procs:?}", kind(end.failure))
}

/// What a search found.
#[derive(Debug, PartialEq, Eq, Clone, Default)]
struct Seen {
    /// Distinct failure kinds.
    kinds: BTreeSet<String>,
    /// End states where nobody can step.
    terminal: BTreeSet<String>,
    /// Every end state (valid or failing) shown.
    ends: BTreeSet<String>,
}

impl Seen {
    fn union(mut self, other: Seen) -> Seen {
        self.kinds.extend(other.kinds);
        self.terminal.extend(other.terminal);
        self.ends.extend(other.ends);
        self
    }
}

fn record(seen: &Mutex<Seen>, end: &EndState<'_, Prog>) {
    let text = end_text(end);
    let mut s = seen.lock().unwrap();
    s.kinds.insert(kind(end.failure));
    if end.terminal {
        s.terminal.insert(text.clone());
    }
    s.ends.insert(text);
}

fn checker(reduction: bool) -> Checker {
    Checker::new().keep_going().reduction(reduction)
}

/// The parallel search of `m` with `jobs` workers (and a shard).
fn parallel(m: &Model, reduction: bool, jobs: usize, shard: Option<Shard>) -> (Seen, CheckOutcome) {
    let seen = Mutex::new(Seen::default());
    let mut par = checker(reduction).parallel(jobs);
    if let Some(s) = shard {
        par = par.shard(s);
    }
    let out = par.run_with_ends(|w| build(m, w), |end| record(&seen, end));
    (seen.into_inner().unwrap(), out)
}

/// The sequential depth-first search of `m`.
fn sequential(m: &Model, reduction: bool) -> (Seen, CheckOutcome) {
    let seen = Mutex::new(Seen::default());
    let out = checker(reduction).run_with_ends(|w| build(m, w), |end| record(&seen, end));
    (seen.into_inner().unwrap(), out)
}

/// The failures as (reason, trail), in the order reported.
fn failures(out: &CheckOutcome) -> Vec<(String, String)> {
    out.failures
        .iter()
        .map(|f| (f.reason.to_string(), f.trail.to_string()))
        .collect()
}

/// The counts that must not depend on the number of workers.
fn counts(out: &CheckOutcome) -> [u64; 7] {
    let s = &out.stats;
    [
        s.states_stored,
        s.states_matched,
        s.transitions,
        s.end_states,
        s.failures,
        s.states_reduced,
        u64::from(s.complete),
    ]
}

/// Compares 1, 2 and 4 workers on `m`; `None` if the model is too big.
fn same_for_every_job_count(
    m: &Model,
    reduction: bool,
    max_states: u64,
) -> Option<Result<(), String>> {
    let (one, out1) = parallel(m, reduction, 1, None);
    if out1.stats.states_stored > max_states {
        return None;
    }
    if !out1.stats.complete {
        return Some(Err(format!("incomplete: {}", out1.stats)));
    }
    for jobs in [2, 4] {
        let (many, out) = parallel(m, reduction, jobs, None);
        if many != one {
            return Some(Err(format!(
                "{jobs} workers found\n{many:#?}\n1 worker\n{one:#?}"
            )));
        }
        if counts(&out) != counts(&out1) {
            return Some(Err(format!(
                "{jobs} workers:\n{}\n1 worker:\n{}",
                out.stats, out1.stats
            )));
        }
        if failures(&out) != failures(&out1) {
            return Some(Err(format!(
                "{jobs} workers' failures {:#?}\n1 worker's {:#?}",
                failures(&out),
                failures(&out1)
            )));
        }
        if out.stats.workers != jobs {
            return Some(Err(format!(
                "{} workers ran, not {jobs}",
                out.stats.workers
            )));
        }
    }
    Some(Ok(()))
}

/// The parallel search (proviso by levels), reduced or not, finds the
/// failures and terminal states of the sequential full search; unreduced,
/// it stores the same states.
fn agrees_with_sequential(m: &Model, max_states: u64) -> Option<Result<(), String>> {
    let (full, full_out) = sequential(m, false);
    if full_out.stats.states_stored > max_states {
        return None;
    }
    for reduction in [false, true] {
        let (par, out) = parallel(m, reduction, 2, None);
        if par.kinds != full.kinds || par.terminal != full.terminal {
            return Some(Err(format!(
                "parallel (reduction {reduction}) found\n{par:#?}\nthe sequential full search\n{full:#?}"
            )));
        }
        if !reduction
            && (out.stats.states_stored != full_out.stats.states_stored || par.ends != full.ends)
        {
            return Some(Err(format!(
                "parallel:\n{}\nsequential:\n{}",
                out.stats, full_out.stats
            )));
        }
    }
    Some(Ok(()))
}

/// The shards of an `n`-way split, merged, find what one search finds.
fn shards_cover(m: &Model, reduction: bool, n: u32, max_states: u64) -> Option<Result<(), String>> {
    let (whole, out) = parallel(m, reduction, 1, None);
    if out.stats.states_stored > max_states {
        return None;
    }
    let mut merged = Seen::default();
    for i in 0..n {
        let (part, out) = parallel(m, reduction, 2, Some(Shard::new(i, n).unwrap()));
        let s = out.stats.shard.clone().expect("shard stats");
        if (s.index, s.count) != (i, n) || !out.stats.complete {
            return Some(Err(format!("shard {i}/{n}: {}", out.stats)));
        }
        merged = merged.union(part);
    }
    if merged.kinds != whole.kinds || merged.terminal != whole.terminal {
        return Some(Err(format!(
            "{n} shards merged found\n{merged:#?}\none search\n{whole:#?}"
        )));
    }
    if !reduction && merged.ends != whole.ends {
        return Some(Err(format!(
            "{n} shards' ends {merged:#?}\none search's {whole:#?}"
        )));
    }
    Some(Ok(()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, max_global_rejects: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn every_number_of_workers_finds_the_same(m in por_model(), reduction in any::<bool>()) {
        let verdict = same_for_every_job_count(&m, reduction, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }

    #[test]
    fn the_parallel_search_finds_what_the_full_search_finds(m in prop_oneof![model(), por_model()]) {
        let verdict = agrees_with_sequential(&m, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }

    #[test]
    fn merged_shards_find_what_one_search_finds(m in por_model(), reduction in any::<bool>(), n in 2..=3u32) {
        let verdict = shards_cover(&m, reduction, n, 3_000);
        prop_assume!(verdict.is_some());
        if let Some(Err(e)) = verdict {
            prop_assert!(false, "{}\n{:#?}", e, m);
        }
    }
}

/// Without `keep_going`, the first failure (and its trail) is the same for
/// every number of workers, and its trail replays to it.
#[test]
fn the_first_failure_is_the_same_and_replays() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut failing = 0;
    for _ in 0..200 {
        let m = por_model().new_tree(&mut runner).unwrap().current();
        let first = |jobs| Checker::new().parallel(jobs).run(|w| build(&m, w));
        let one = first(1);
        if one.stats.states_stored > 3_000 {
            continue;
        }
        let Some(f) = one.failure() else { continue };
        failing += 1;
        let four = first(4);
        assert_eq!(failures(&one), failures(&four), "{m:#?}");
        assert_eq!(counts(&one), counts(&four), "{m:#?}");
        let replay = Checker::new().replay(&f.trail, |w| build(&m, w)).unwrap();
        assert_eq!(
            replay.failure.as_ref().map(kind_of),
            Some(kind_of(&f.reason)),
            "{m:#?}"
        );
    }
    assert!(failing >= 20, "only {failing} failing models");
}

fn kind_of(r: &FailureReason) -> String {
    kind(Some(r))
}

/// A model big enough to split: the shards take disjoint roots at the same
/// depth and each is smaller than the whole.
#[test]
fn a_big_model_splits_into_smaller_shards() {
    let m = Model {
        ports: vec![11, 11],
        procs: vec![
            vec![
                MOp::Send {
                    port: 0,
                    value: 1,
                    policy: 0,
                },
                MOp::Send {
                    port: 0,
                    value: 2,
                    policy: 0,
                },
                MOp::Receive { port: 1, wait: 0 },
            ],
            vec![
                MOp::Send {
                    port: 1,
                    value: 1,
                    policy: 0,
                },
                MOp::Receive { port: 0, wait: 0 },
                MOp::Send {
                    port: 1,
                    value: 2,
                    policy: 0,
                },
            ],
            vec![
                MOp::Choose(3),
                MOp::Receive { port: 0, wait: 0 },
                MOp::Yield,
            ],
            vec![
                MOp::Choose(2),
                MOp::Receive { port: 1, wait: 0 },
                MOp::Choose(2),
            ],
        ],
        server: false,
    };
    let (whole, out) = parallel(&m, false, 2, None);
    assert!(out.stats.complete);
    let mut merged = Seen::default();
    let mut depth = None;
    for i in 0..3 {
        let (part, o) = parallel(&m, false, 2, Some(Shard::new(i, 3).unwrap()));
        let s = o.stats.shard.clone().unwrap();
        assert!(s.split_depth.is_some(), "{}", o.stats);
        assert!(depth.is_none() || depth == s.split_depth);
        depth = s.split_depth;
        assert!(
            o.stats.states_stored < out.stats.states_stored,
            "{}",
            o.stats
        );
        assert!(s.roots > 0);
        merged = merged.union(part);
    }
    assert_eq!(merged, whole);
}

#[test]
fn shard_parses_and_refuses_bad_input() {
    let s: Shard = "2/5".parse().unwrap();
    assert_eq!((s.index(), s.count()), (2, 5));
    assert_eq!(s.to_string(), "2/5");
    assert!(s.owns(7) && !s.owns(8));
    for bad in ["5/5", "1/0", "x/2", "3", "-1/2", ""] {
        assert!(bad.parse::<Shard>().is_err(), "{bad}");
    }
}

/// A set-up that builds another model for another worker is refused, not
/// searched.
#[test]
fn a_set_up_that_is_not_deterministic_stops_the_search() {
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let m = Model {
        ports: vec![1],
        procs: vec![
            vec![MOp::Send {
                port: 0,
                value: 1,
                policy: 0,
            }],
            vec![MOp::Receive { port: 0, wait: 0 }],
        ],
        server: false,
    };
    let out = Checker::new().parallel(2).run(|w| {
        build(&m, w);
        if calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            w.port("extra", Capacity::Unbounded).unwrap();
        }
    });
    assert!(!out.stats.complete);
    let why = out.stats.stopped.unwrap_or_default();
    assert!(why.contains("not deterministic"), "{why}");
}

/// A process that spins forever (a local step back and forth between two
/// states), or one that panics on its first step.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Spin {
    Bomb,
    Spinner(bool),
}

impl Machine for Spin {
    fn step<C: Ctx<Self>>(&mut self, _: &mut C, _: Option<WaitOutcome>) -> Step {
        match self {
            Spin::Bomb => panic!("boom"),
            Spin::Spinner(b) => {
                *b = !*b;
                Step::Yield
            }
        }
    }
}

impl Encode for Spin {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.value(self);
    }
}

/// The cycle proviso at work: the spinner's step is safe (local) and is
/// tried first (highest index); reduced to it at every state, the search
/// would go round its two states forever and never let the bomb go off.
/// The state whose reduced step returns to an earlier level is expanded in
/// full, so the panic is found, by every number of workers and shard.
#[test]
fn the_cycle_proviso_keeps_a_spinning_process_from_hiding_the_others() {
    let setup = |w: &mut World<Spin>| {
        w.spawn("bomb", |_| Spin::Bomb);
        w.spawn("spinner", |_| Spin::Spinner(false));
    };
    for jobs in [1, 2, 4] {
        let out = Checker::new().keep_going().parallel(jobs).run(setup);
        let whole = out.clone();
        assert!(out.stats.complete, "{}", out.stats);
        assert!(out.stats.states_reduced > 0, "{}", out.stats);
        assert!(
            matches!(
                out.failure().map(|f| &f.reason),
                Some(FailureReason::Panicked { .. })
            ),
            "{out}"
        );
        for i in 0..2 {
            let shard = Shard::new(i, 2).unwrap();
            let out = Checker::new()
                .keep_going()
                .parallel(jobs)
                .shard(shard)
                .run(setup);
            assert!(out.stats.complete);
            assert_eq!(failures(&out), failures(&whole), "{out}");
        }
    }
}

/// Bad input and limits: a visited set that would pass `max_memory` stops
/// the search with the statistics so far, a depth limit cuts it, and both
/// say the search was incomplete; the same for every number of workers.
#[test]
fn limits_stop_the_parallel_search_and_say_so() {
    let m = Model {
        ports: vec![11, 11],
        procs: vec![
            vec![
                MOp::Send {
                    port: 0,
                    value: 1,
                    policy: 0,
                },
                MOp::Send {
                    port: 0,
                    value: 2,
                    policy: 0,
                },
                MOp::Receive { port: 1, wait: 0 },
            ],
            vec![
                MOp::Send {
                    port: 1,
                    value: 1,
                    policy: 0,
                },
                MOp::Receive { port: 0, wait: 0 },
                MOp::Send {
                    port: 1,
                    value: 2,
                    policy: 0,
                },
            ],
            vec![
                MOp::Choose(3),
                MOp::Receive { port: 0, wait: 0 },
                MOp::Yield,
            ],
        ],
        server: false,
    };
    let full = Checker::new()
        .keep_going()
        .parallel(2)
        .run(|w| build(&m, w));
    assert!(full.stats.complete);
    for jobs in [1, 2] {
        let out = Checker::new()
            .keep_going()
            .max_memory(16 << 10)
            .parallel(jobs)
            .run(|w| build(&m, w));
        assert!(!out.stats.complete);
        assert_eq!(
            out.stats.stopped.as_deref(),
            Some("visited set reached --max-memory"),
            "{}",
            out.stats
        );
        assert!(out.stats.states_stored < full.stats.states_stored);
        assert!(out
            .to_string()
            .contains("search incomplete: visited set reached --max-memory"));
        let out = Checker::new()
            .keep_going()
            .max_depth(3)
            .parallel(jobs)
            .run(|w| build(&m, w));
        assert!(!out.stats.complete);
        assert!(out.stats.depth_cuts > 0);
        assert_eq!(out.stats.max_depth, 3);
    }
}
