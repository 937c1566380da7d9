//! Statement merging in the stateful checker (`Checker::statement_merging`,
//! module `check::por`): a local step is merged with the next steps of its
//! process into one transition, and the states in between are not stored.
//! Each model is searched with merging on and off (the reduction on both
//! times) and without any reduction: merging must store fewer states and
//! keep every end state and every failure.

use std::collections::BTreeSet;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Capacity, Ipc, Message, OnFull, PortName, Wait};
use mkipc_sim::check::{CheckOutcome, Checker, Encode, Encoder, ProcStatus, World};
use mkipc_sim::machine::{Ctx, Machine, MailboxUse, Op, Step};
use mkipc_sim::{FailureReason, ProcError, ProcId};

/// A process: it opens the mailbox `out` in its first step, then does
/// `think` local steps (each a `Step::Yield` that only counts), then its
/// [`Job`].
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Proc {
    out: Option<PortName>,
    /// Opens `out` with `Ctx::mailbox_open` (else through `Ctx::ipc`).
    open_via_ctx: bool,
    /// Declares it may destroy `out` ([`MailboxUse::Manage`]).
    manages: bool,
    think: u8,
    job: Job,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum Job {
    /// Sends `value` to `out` (plainly), then ends.
    Send { value: u64, sent: bool },
    /// Receives `left` messages from `out`, logging them; thinks
    /// `between` local steps before each receive.
    Collect {
        left: u8,
        between: u8,
        thought: u8,
        log: Vec<u64>,
    },
    /// Counts `at` up modulo `modulus` forever, one local step each: a
    /// cycle of local steps.
    Spin { at: u8, modulus: u8 },
    /// Panics.
    Panic,
}

impl Encode for Proc {
    fn encode(&self, e: &mut Encoder<'_>) {
        match self.out {
            None => e.u64(0),
            Some(n) => {
                e.u64(1);
                e.name(n);
            }
        }
        e.value(&(self.think, &self.job));
    }
}

impl Machine for Proc {
    fn may_use_mailbox(&self, _mailbox: &str, how: MailboxUse) -> bool {
        if how == MailboxUse::Manage {
            return self.manages;
        }
        match &self.job {
            Job::Send { sent, .. } => !sent && how == MailboxUse::Send,
            Job::Collect { left, .. } => *left > 0 && how == MailboxUse::Receive,
            Job::Spin { .. } | Job::Panic => false,
        }
    }

    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        let Some(out) = self.out else {
            let opened = if self.open_via_ctx {
                cx.mailbox_open("out")
            } else {
                cx.ipc().mailbox_open("out")
            };
            return match opened {
                Ok(n) => {
                    self.out = Some(n);
                    Step::Yield
                }
                Err(e) => Step::Exit(Err(e.into())),
            };
        };
        if self.think > 0 {
            self.think -= 1;
            return Step::Yield;
        }
        match &mut self.job {
            Job::Send { value, sent } => {
                if *sent {
                    return Step::Exit(Ok(()));
                }
                if let Some(WaitOutcome::Sent(Err(e))) = resumed {
                    return Step::Exit(Err(e.into()));
                }
                if resumed.is_none() {
                    let msg = Message::from_u64(1, *value);
                    match cx.send(Destination::Name(out), msg, OnFull::Block) {
                        Op::Pending => return Step::Wait,
                        Op::Done(Err(e)) => return Step::Exit(Err(e.into())),
                        Op::Done(Ok(_)) => {}
                    }
                }
                *sent = true;
                Step::Yield
            }
            Job::Collect {
                left,
                between,
                thought,
                log,
            } => {
                let r = match resumed {
                    Some(WaitOutcome::Received(r)) => r,
                    Some(_) => return Step::Exit(Err(ProcError::msg("not a receive"))),
                    None => {
                        if *left == 0 {
                            return Step::Exit(Ok(()));
                        }
                        if *thought < *between {
                            *thought += 1;
                            return Step::Yield;
                        }
                        match cx.receive(Source::Name(out), Wait::Forever) {
                            Op::Done(r) => r,
                            Op::Pending => return Step::Wait,
                        }
                    }
                };
                match r {
                    Ok(m) => {
                        log.push(m.as_u64().unwrap_or(u64::MAX));
                        *left -= 1;
                        *thought = 0;
                        Step::Yield
                    }
                    Err(e) => Step::Exit(Err(e.into())),
                }
            }
            Job::Spin { at, modulus } => {
                *at = (*at + 1) % *modulus;
                Step::Yield
            }
            Job::Panic => panic!("on purpose"),
        }
    }
}

fn proc(think: u8, job: Job) -> impl FnOnce(&[mkipc_kernel::CarriedRight]) -> Proc {
    move |_| Proc {
        out: None,
        open_via_ctx: false,
        manages: false,
        think,
        job,
    }
}

/// `senders` processes each think `think` steps and send their index; a
/// collector thinks `between` steps before each of its receives.
fn senders(senders: u64, think: u8, between: u8) -> impl Fn(&mut World<Proc>) {
    move |w| {
        w.mailbox("out", Capacity::Bounded(2)).unwrap();
        for v in 0..senders {
            let job = Job::Send {
                value: v,
                sent: false,
            };
            w.spawn_with(&format!("sender{v}"), &[], proc(think, job))
                .unwrap();
        }
        let job = Job::Collect {
            left: senders as u8,
            between,
            thought: 0,
            log: Vec::new(),
        };
        w.spawn_with("collector", &[], proc(think, job)).unwrap();
    }
}

/// What a search found: its outcome, its terminal states (the machines
/// and statuses) and its failures.
fn run(checker: Checker, setup: impl Fn(&mut World<Proc>)) -> (CheckOutcome, BTreeSet<String>) {
    let mut ends = BTreeSet::new();
    let out = checker.keep_going().run_with_ends(&setup, |end| {
        if !end.terminal {
            return;
        }
        let v = &end.view;
        let procs: Vec<String> = (0..v.procs() as u32)
            .map(|k| {
                let id = ProcId(k);
                format!("{:?} {:?}", v.machine(id).map(|m| &m.job), v.status(id))
            })
            .collect();
        ends.insert(procs.join(" | "));
    });
    (out, ends)
}

fn reasons(out: &CheckOutcome) -> BTreeSet<String> {
    out.failures.iter().map(|f| f.reason.to_string()).collect()
}

#[test]
fn smoke() {
    let (out, ends) = run(Checker::new(), senders(2, 2, 1));
    out.assert_verified();
    assert!(out.stats.local_steps_merged > 0, "{}", out.stats);
    // The collector logs the two values in either order.
    assert_eq!(ends.len(), 2, "{ends:#?}");
    assert!(
        out.stats.to_string().contains("local step(s) merged"),
        "{}",
        out.stats
    );
}

#[test]
fn merging_stores_fewer_states_and_keeps_every_end_state() {
    for (n, think, between) in [(2, 3, 0), (2, 2, 2), (3, 2, 1), (3, 3, 2)] {
        let merged = run(Checker::new(), senders(n, think, between));
        let unmerged = run(
            Checker::new().statement_merging(false),
            senders(n, think, between),
        );
        let full = run(Checker::new().reduction(false), senders(n, think, between));
        for (out, _) in [&merged, &unmerged, &full] {
            out.assert_verified();
        }
        assert!(
            merged.0.stats.states_stored < unmerged.0.stats.states_stored,
            "{n} senders, think {think}, between {between}: merged\n{}\nunmerged\n{}",
            merged.0.stats,
            unmerged.0.stats
        );
        assert_eq!(unmerged.0.stats.local_steps_merged, 0);
        assert_eq!(full.0.stats.local_steps_merged, 0);
        assert_eq!(merged.1, full.1, "merging lost or added an end state");
        assert_eq!(unmerged.1, full.1);
        assert_eq!(merged.0.stats.end_states, full.0.stats.end_states);
    }
}

#[test]
fn a_receive_that_would_block_after_local_steps_is_not_merged_into_them() {
    // The collector thinks 3 steps before its receive, with nothing sent
    // yet: the receive would only block (lazily), so the transition is the
    // thinking alone, and the collector later receives both orders.
    let (out, ends) = run(Checker::new(), senders(2, 4, 3));
    out.assert_verified();
    let (full, full_ends) = run(Checker::new().reduction(false), senders(2, 4, 3));
    full.assert_verified();
    assert_eq!(ends, full_ends);
    assert_eq!(ends.len(), 2, "{ends:#?}");
}

#[test]
fn a_cycle_of_local_steps_ends_at_the_bound_and_closes() {
    // A process counting modulo 200 forever, locally: chains of 64 merged
    // steps, each ending in a stored state; the cycle closes on them.
    let setup = |w: &mut World<Proc>| {
        w.mailbox("out", Capacity::Bounded(1)).unwrap();
        w.spawn_with(
            "spin",
            &[],
            proc(
                0,
                Job::Spin {
                    at: 0,
                    modulus: 200,
                },
            ),
        )
        .unwrap();
    };
    let (out, _) = run(Checker::new(), setup);
    assert!(out.stats.complete, "{}", out.stats);
    assert!(out.failures.is_empty(), "{out}");
    let (unmerged, _) = run(Checker::new().statement_merging(false), setup);
    assert!(unmerged.stats.complete);
    // The open, then every value of the counter: 201 states unmerged.
    assert_eq!(unmerged.stats.states_stored, 201, "{}", unmerged.stats);
    // Merged: the initial state, then the counter after the open (0) and
    // after each chain of 1 + 64 steps: 65 k mod 200 takes 200 / gcd(65,
    // 200) = 40 values before it returns to 0.
    assert_eq!(out.stats.states_stored, 41, "{}", out.stats);
    assert_eq!(out.stats.local_steps_merged, 40 * 64, "{}", out.stats);
}

#[test]
fn a_failure_after_local_steps_is_found_and_its_trail_replays() {
    let setup = |w: &mut World<Proc>| {
        w.mailbox("out", Capacity::Bounded(2)).unwrap();
        w.spawn_with(
            "sender",
            &[],
            proc(
                2,
                Job::Send {
                    value: 7,
                    sent: false,
                },
            ),
        )
        .unwrap();
        w.spawn_with("panics", &[], proc(3, Job::Panic)).unwrap();
    };
    let (merged, _) = run(Checker::new(), setup);
    let (full, _) = run(Checker::new().reduction(false), setup);
    assert!(!merged.failures.is_empty());
    assert_eq!(reasons(&merged), reasons(&full));
    assert!(merged.stats.local_steps_merged > 0);
    for f in &merged.failures {
        assert!(matches!(f.reason, FailureReason::Panicked { .. }));
        let replay = Checker::new().replay(&f.trail, setup).expect("replays");
        assert!(
            matches!(replay.failure, Some(FailureReason::Panicked { .. })),
            "{replay:?}"
        );
        // The merged trail is shorter than the steps it stands for.
        let last = replay.steps.last().expect("a step");
        assert!(matches!(last.status, ProcStatus::Ended(_)), "{last:?}");
    }
    let shortest = merged.failures.iter().map(|f| f.trail.len()).min();
    let shortest_full = full.failures.iter().map(|f| f.trail.len()).min();
    assert!(
        shortest < shortest_full,
        "{shortest:?} vs {shortest_full:?}"
    );
}

/// An open of a world mailbox through `Ctx::mailbox_open` is a local step
/// (it only adds a name to the opener's space), merged with the thinking
/// after it; through `Ctx::ipc` it is global; and so it is too when some
/// other process may destroy the mailbox (`MailboxUse::Manage`).
#[test]
fn a_mailbox_open_is_local_unless_someone_may_destroy_the_mailbox() {
    let model = |via_ctx: bool, manager: bool| {
        move |w: &mut World<Proc>| {
            w.mailbox("out", Capacity::Bounded(2)).unwrap();
            for v in 0..2u64 {
                let job = Job::Send {
                    value: v,
                    sent: false,
                };
                w.spawn_with(&format!("sender{v}"), &[], move |_| Proc {
                    out: None,
                    open_via_ctx: via_ctx,
                    manages: false,
                    think: 2,
                    job,
                })
                .unwrap();
            }
            let job = Job::Collect {
                left: 2,
                between: 0,
                thought: 0,
                log: Vec::new(),
            };
            w.spawn_with("collector", &[], move |_| Proc {
                out: None,
                open_via_ctx: via_ctx,
                manages: manager,
                think: 0,
                job,
            })
            .unwrap();
        }
    };
    let (local, local_ends) = run(Checker::new(), model(true, false));
    let (global, global_ends) = run(Checker::new(), model(false, false));
    let (managed, managed_ends) = run(Checker::new(), model(true, true));
    let (full, full_ends) = run(Checker::new().reduction(false), model(true, false));
    for out in [&local, &global, &managed, &full] {
        out.assert_verified();
    }
    assert!(
        local.stats.states_stored < global.stats.states_stored,
        "local\n{}\nglobal\n{}",
        local.stats,
        global.stats
    );
    // The collector may destroy `out`: the senders' opens are global again
    // (the collector's own open is still local: nobody else manages it).
    assert!(
        managed.stats.states_stored > local.stats.states_stored,
        "managed\n{}\nlocal\n{}",
        managed.stats,
        local.stats
    );
    assert_eq!(local_ends, full_ends);
    assert_eq!(global_ends, full_ends);
    assert_eq!(managed_ends, full_ends);
}
