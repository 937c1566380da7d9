//! Hand-written models for the stateful checker's reduction rules
//! (`check/por.rs`): a receive from several buffered queues that blocks
//! lazily, the resumed waiter probed first (session 11), and stubborn sets
//! of several processes (session 12). Each model is run reduced and
//! unreduced: the reduced search must keep every terminal state and
//! failure, and must store fewer states (the rule applies).

use std::collections::BTreeSet;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Capacity, Ipc, Message, OnFull, PortName, Wait};
use mkipc_sim::check::{CheckOutcome, Checker, Encode, Encoder, ProcStatus, World};
use mkipc_sim::machine::{Ctx, Machine, MailboxUse, Op, Step};
use mkipc_sim::{FailureReason, ProcError, ProcId};

/// A process of these models: it opens its mailboxes by label in its
/// first step (`names` empty until then), then runs as its [`P`] says,
/// whose fields index `names`.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Proc {
    labels: Vec<&'static str>,
    names: Vec<PortName>,
    p: P,
    /// Declares its mailbox uses ([`Machine::may_use_mailbox`]) from `p`;
    /// else the default, "anything".
    declares: bool,
}

/// What a process does (one type, as the checker wants).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum P {
    /// Receives `left` messages from any of `from` (one receive, several
    /// names), logging each value.
    Picker {
        from: Vec<usize>,
        left: u8,
        log: Vec<u64>,
    },
    /// Sends `values` to `to`, one per step, plainly.
    Sender { to: usize, values: Vec<u64> },
    /// Receives once from `from` (a rendezvous, so it really waits), then
    /// counts `local` purely local steps, then ends.
    Waiter {
        from: usize,
        got: Option<u64>,
        local: u8,
    },
}

impl Encode for Proc {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.names(&self.names);
        e.value(&self.p);
    }
}

fn value_of(r: Result<Message, mkipc_kernel::ReceiveError>) -> Result<u64, Step> {
    match r {
        Ok(m) => Ok(m.as_u64().unwrap_or(u64::MAX)),
        Err(e) => Err(Step::Exit(Err(e.into()))),
    }
}

impl Machine for Proc {
    fn may_use_mailbox(&self, mailbox: &str, how: MailboxUse) -> bool {
        if !self.declares {
            return true;
        }
        let is = |i: usize| self.labels.get(i) == Some(&mailbox);
        match &self.p {
            P::Picker { from, left, .. } => {
                *left > 0
                    && from.iter().any(|&i| is(i))
                    && how
                        == if from.len() > 1 {
                            MailboxUse::Select
                        } else {
                            MailboxUse::Receive
                        }
            }
            P::Sender { to, values } => !values.is_empty() && is(*to) && how == MailboxUse::Send,
            P::Waiter { from, got, .. } => got.is_none() && is(*from) && how == MailboxUse::Receive,
        }
    }

    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        if self.names.len() < self.labels.len() {
            for l in &self.labels {
                match cx.ipc().mailbox_open(l) {
                    Ok(n) => self.names.push(n),
                    Err(e) => return Step::Exit(Err(e.into())),
                }
            }
            return Step::Yield;
        }
        let names = &self.names;
        match &mut self.p {
            P::Picker { from, left, log } => {
                let r = match resumed {
                    Some(WaitOutcome::Received(r)) => r,
                    Some(_) => return Step::Exit(Err(ProcError::msg("not a receive"))),
                    None => {
                        if *left == 0 {
                            return Step::Exit(Ok(()));
                        }
                        let from: Vec<PortName> = from.iter().map(|&i| names[i]).collect();
                        match cx.receive(Source::Any(&from), Wait::Forever) {
                            Op::Done(r) => r,
                            Op::Pending => return Step::Wait,
                        }
                    }
                };
                match value_of(r) {
                    Ok(v) => {
                        log.push(v);
                        *left -= 1;
                        Step::Yield
                    }
                    Err(s) => s,
                }
            }
            P::Sender { to, values } => {
                if let Some(WaitOutcome::Sent(r)) = resumed {
                    if let Err(e) = r {
                        return Step::Exit(Err(e.into()));
                    }
                    values.remove(0);
                    return Step::Yield;
                }
                let Some(&v) = values.first() else {
                    return Step::Exit(Ok(()));
                };
                match cx.send(
                    Destination::Name(names[*to]),
                    Message::from_u64(1, v),
                    OnFull::Block,
                ) {
                    Op::Done(Ok(_)) => {
                        values.remove(0);
                        Step::Yield
                    }
                    Op::Done(Err(e)) => Step::Exit(Err(e.into())),
                    Op::Pending => Step::Wait,
                }
            }
            P::Waiter { from, got, local } => {
                if got.is_none() {
                    let r = match resumed {
                        Some(WaitOutcome::Received(r)) => r,
                        _ => match cx.receive(Source::Name(names[*from]), Wait::Forever) {
                            Op::Done(r) => r,
                            Op::Pending => return Step::Wait,
                        },
                    };
                    return match value_of(r) {
                        Ok(v) => {
                            *got = Some(v);
                            Step::Yield
                        }
                        Err(s) => s,
                    };
                }
                if *local == 0 {
                    return Step::Exit(Ok(()));
                }
                *local -= 1;
                Step::Yield
            }
        }
    }
}

/// The terminal states (each process's status and machine) and failures.
fn run(
    checker: Checker,
    setup: impl FnOnce(&mut World<Proc>),
) -> (BTreeSet<String>, BTreeSet<String>, CheckOutcome) {
    let mut terminal = BTreeSet::new();
    let mut failures = BTreeSet::new();
    let out = checker.keep_going().run_with_ends(setup, |end| {
        let v = &end.view;
        let procs: Vec<String> = (0..v.procs())
            .map(|i| {
                let id = ProcId(i as u32);
                let status = match v.status(id).unwrap() {
                    ProcStatus::Ended(s) => format!("{s:?}"),
                    other => format!("{other:?}"),
                };
                format!("{status} {:?}", v.machine(id).unwrap())
            })
            .collect();
        if let Some(f) = end.failure {
            failures.insert(match f {
                FailureReason::Deadlock(_) => "deadlock".to_string(),
                other => other.to_string(),
            });
        }
        if end.terminal {
            terminal.insert(format!("{procs:?}"));
        }
    });
    (terminal, failures, out)
}

/// Reduced and unreduced agree; returns (reduced, unreduced) states stored.
fn agree(setup: impl Fn(&mut World<Proc>)) -> (u64, u64, BTreeSet<String>, BTreeSet<String>) {
    let (t1, f1, full) = run(Checker::new().reduction(false), &setup);
    let (t2, f2, reduced) = run(Checker::new(), &setup);
    assert!(full.stats.complete || !f1.is_empty(), "{}", full.stats);
    assert_eq!(f2, f1, "failures");
    assert_eq!(t2, t1, "terminal states");
    (
        reduced.stats.states_stored,
        full.stats.states_stored,
        t1,
        f1,
    )
}

/// Adds a process that opens `labels` and runs `p`.
fn spawn(w: &mut World<Proc>, name: &str, labels: &[&'static str], p: P) {
    let labels = labels.to_vec();
    w.spawn(name, move |_| Proc {
        labels,
        names: Vec::new(),
        p,
        declares: false,
    });
}

/// Adds a process that opens `labels`, runs `p` and declares its uses.
fn spawn_declared(w: &mut World<Proc>, name: &str, labels: &[&'static str], p: P) {
    let labels = labels.to_vec();
    w.spawn(name, move |_| Proc {
        labels,
        names: Vec::new(),
        p,
        declares: true,
    });
}

/// A picker on two buffered mailboxes `a` and `b`, fed by one sender each.
fn two_queues(w: &mut World<Proc>, cap: Capacity, per_sender: u64) {
    w.mailbox("a", cap).unwrap();
    w.mailbox("b", cap).unwrap();
    let picker = P::Picker {
        from: vec![0, 1],
        left: (2 * per_sender) as u8,
        log: Vec::new(),
    };
    // Declared: a mailbox some process may use otherwise than plainly (the
    // default answer) is never blocked on lazily.
    spawn_declared(w, "picker", &["a", "b"], picker);
    for (label, q, base) in [("sa", "a", 10), ("sb", "b", 20)] {
        let values = (base..base + per_sender).collect();
        spawn_declared(w, label, &[q], P::Sender { to: 0, values });
    }
}

/// A receive from several buffered mailboxes that would block is not a
/// transition: the picker steps once a message is there, and takes the
/// oldest, as the one it waited for would have been. Every order in which
/// the picker can see the two senders' values is still reached. (366
/// states reduced, 576 unreduced; 576 reduced without the rule.)
#[test]
fn a_receive_from_several_buffered_queues_blocks_lazily() {
    let (reduced, full, terminal, failures) = agree(|w| two_queues(w, Capacity::Bounded(2), 2));
    assert!(failures.is_empty(), "{failures:?}");
    // Every interleaving of 10,11 with 20,21, each kept in order: C(4,2).
    assert_eq!(terminal.len(), 6, "{terminal:#?}");
    assert!(reduced < full, "reduced {reduced}, unreduced {full}");
}

/// A rendezvous among the names keeps the wait (a sender there needs the
/// waiting receiver): still the same terminal states.
#[test]
fn a_rendezvous_among_the_names_keeps_the_wait() {
    let (_, _, terminal, failures) = agree(|w| two_queues(w, Capacity::Zero, 1));
    assert!(failures.is_empty(), "{failures:?}");
    assert_eq!(terminal.len(), 2, "{terminal:#?}");
}

/// A picker that nobody feeds still deadlocks, with the reduction on: the
/// lazily blocked receive is made to wait when nothing else can step.
#[test]
fn a_picker_nobody_feeds_deadlocks() {
    let setup = |w: &mut World<Proc>| {
        w.mailbox("a", Capacity::Bounded(2)).unwrap();
        w.mailbox("b", Capacity::Bounded(2)).unwrap();
        let picker = P::Picker {
            from: vec![0, 1],
            left: 2,
            log: Vec::new(),
        };
        spawn(w, "picker", &["a", "b"], picker);
        // One value only: the second receive never completes.
        let values = vec![1];
        spawn(w, "sa", &["a"], P::Sender { to: 0, values });
    };
    let (_, failures) = {
        let (t, f, out) = run(Checker::new(), setup);
        assert!(out.failure().is_some(), "{}", out.stats);
        (t, f)
    };
    assert_eq!(failures, BTreeSet::from(["deadlock".to_string()]));
    let (_, unreduced, _) = run(Checker::new().reduction(false), setup);
    assert_eq!(unreduced, failures);
}

/// The process whose wait completed is probed first, whatever its index:
/// its step takes the outcome and is local, so it is the state's whole
/// expansion, while the higher-index senders (two on one mailbox, never
/// safe) would have forced a full expansion.
#[test]
fn the_resumed_waiter_is_probed_first() {
    let setup = |w: &mut World<Proc>| {
        w.mailbox("r", Capacity::Zero).unwrap();
        w.mailbox("c", Capacity::Unbounded).unwrap();
        let waiter = P::Waiter {
            from: 0,
            got: None,
            local: 0,
        };
        spawn_declared(w, "waiter", &["r"], waiter);
        spawn_declared(
            w,
            "s",
            &["r"],
            P::Sender {
                to: 0,
                values: vec![7],
            },
        );
        for label in ["c1", "c2"] {
            let values = vec![1, 2];
            spawn_declared(w, label, &["c"], P::Sender { to: 0, values });
        }
        let drain = P::Picker {
            from: vec![0],
            left: 4,
            log: Vec::new(),
        };
        spawn_declared(w, "drain", &["c"], drain);
    };
    let (reduced, full, terminal, failures) = agree(setup);
    assert!(failures.is_empty(), "{failures:?}");
    assert!(!terminal.is_empty());
    // Without probing the resumed waiter first: RESUMED_LAST states.
    assert!(
        reduced < RESUMED_LAST,
        "reduced {reduced}, unreduced {full}"
    );
}

/// States stored by [`the_resumed_waiter_is_probed_first`]'s model when the
/// resumed waiter is probed in index order (measured with `probe_first`
/// disabled; with it, 11,702; unreduced, 12,862).
const RESUMED_LAST: u64 = 12_091;

/// Runs `setup` with stubborn sets and without (sets of one only): both
/// agree with the full search; returns the states each stored, and the
/// stubborn run's count of states expanded by a set of several.
fn with_and_without_sets(setup: impl Fn(&mut World<Proc>)) -> (u64, u64, u64) {
    let (t0, f0, _) = run(Checker::new().reduction(false), &setup);
    let (t1, f1, sets) = run(Checker::new(), &setup);
    let (t2, f2, ones) = run(Checker::new().stubborn_sets(false), &setup);
    assert_eq!(f1, f0, "failures, stubborn sets");
    assert_eq!(t1, t0, "terminal states, stubborn sets");
    assert_eq!(f2, f0, "failures, sets of one");
    assert_eq!(t2, t0, "terminal states, sets of one");
    assert!(!t0.is_empty());
    (
        sets.stats.states_stored,
        ones.stats.states_stored,
        sets.stats.states_stubborn,
    )
}

/// Two senders and two receivers share one mailbox `q`: no send and no
/// receive is safe alone (each has a rival), but the two senders are a
/// stubborn set (the receivers only receive plainly, which commutes with
/// a plain send), and so are the two receivers.
fn rivals_on_one_mailbox(w: &mut World<Proc>, cap: Capacity) {
    w.mailbox("q", cap).unwrap();
    for (name, values) in [("s1", vec![1, 2]), ("s2", vec![3, 4])] {
        spawn_declared(w, name, &["q"], P::Sender { to: 0, values });
    }
    for name in ["r1", "r2"] {
        let p = P::Picker {
            from: vec![0],
            left: 2,
            log: Vec::new(),
        };
        spawn_declared(w, name, &["q"], p);
    }
}

/// Rival senders (and rival receivers) of one mailbox form a stubborn set:
/// fewer states than with ample sets of one only, and every terminal state
/// (each receiver's log: who got which value in which order) is kept.
#[test]
fn rivals_on_one_mailbox_form_a_stubborn_set() {
    // At capacity 1 too: a send that blocks is a transition (it is not
    // blocked lazily), so blocked senders and receivers are enabled
    // together there as well.
    for cap in [
        Capacity::Bounded(1),
        Capacity::Bounded(2),
        Capacity::Unbounded,
    ] {
        let (sets, ones, expanded) = with_and_without_sets(|w| rivals_on_one_mailbox(w, cap));
        println!("{cap:?}: stubborn sets {sets} states, sets of one {ones}");
        assert!(expanded > 0, "{cap:?}: no state expanded by a set");
        assert!(
            sets < ones,
            "{cap:?}: stubborn sets {sets}, sets of one {ones}"
        );
    }
}

/// The closure: a receiver of `q` is in a set with its rival receiver,
/// never alone. Here one sender puts one value in `q` for two receivers;
/// either may get it, and the other then deadlocks (no server). A set
/// holding one receiver only would lose the terminal state where the
/// other got it.
#[test]
fn a_set_takes_in_every_rival() {
    let setup = |w: &mut World<Proc>| {
        w.mailbox("q", Capacity::Bounded(2)).unwrap();
        spawn_declared(
            w,
            "s",
            &["q"],
            P::Sender {
                to: 0,
                values: vec![5],
            },
        );
        for name in ["r1", "r2"] {
            let p = P::Waiter {
                from: 0,
                got: None,
                local: 1,
            };
            spawn_declared(w, name, &["q"], p);
        }
    };
    let (sets, ones, _) = with_and_without_sets(setup);
    assert!(sets <= ones, "stubborn sets {sets}, sets of one {ones}");
    let (terminal, failures, _) = run(Checker::new(), setup);
    assert_eq!(failures, BTreeSet::from(["deadlock".to_string()]));
    // r1 got 5, or r2 did.
    assert_eq!(
        terminal
            .iter()
            .filter(|t| t.contains("got: Some(5)"))
            .count(),
        2,
        "{terminal:#?}"
    );
}
