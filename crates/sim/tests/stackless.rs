//! Stackless machine processes ([`Sim::spawn_machine`]: no coroutine, the
//! loop steps the machine) against the reference, the same machine on a
//! coroutine ([`run_on_proc_with`], every operation blocking): for random
//! programs, seeds and schedulers, the two runs are the same run — same
//! schedule, same trace (event for event, step numbers included), same
//! report, same failure.

use std::time::Duration;

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Capacity, CarriedRight, Message, OnFull, PortName, Wait};
use mkipc_sim::machine::{run_on_proc_with, Ctx, Machine, Op, Step, YieldIs};
use mkipc_sim::{Dist, Failure, Inherit, ProcId, Report, SchedulerKind, Sim};
use proptest::prelude::*;

/// What a step of a program does.
#[derive(Clone, Debug)]
enum Act {
    /// Sends to port `k` (mode: block, fail, drop, time out).
    Send(usize, u8),
    /// Receives on its own port (mode: forever, no wait, for a while).
    Receive(u8),
    /// Selects its own port and port `k` (when it holds both receive rights: its own only).
    Select(u8),
    /// Works or sleeps (random durations draw from the run's stream).
    Pause(u8, bool),
    /// Just a scheduling point.
    Yield,
    /// A nondeterministic choice.
    Choose(usize),
    /// Spawns a child that sends twice to port `k`.
    Spawn(usize),
}

fn act() -> impl Strategy<Value = Act> {
    prop_oneof![
        3 => (0..3usize, 0..4u8).prop_map(|(k, m)| Act::Send(k, m)),
        3 => (0..3u8).prop_map(Act::Receive),
        1 => (0..3u8).prop_map(Act::Select),
        1 => (0..4u8, any::<bool>()).prop_map(|(d, b)| Act::Pause(d, b)),
        1 => Just(Act::Yield),
        1 => (0..4usize).prop_map(Act::Choose),
        1 => (0..3usize).prop_map(Act::Spawn),
    ]
}

/// A process running a list of actions, one per step.
#[derive(Debug)]
struct Prog {
    own: PortName,
    to: Vec<PortName>,
    acts: Vec<Act>,
    pc: usize,
    got: u64,
    server: bool,
}

fn dist(d: u8) -> Dist {
    match d {
        0 => Dist::Fixed(Duration::ZERO),
        1 => Dist::Fixed(Duration::from_micros(300)),
        2 => Dist::Uniform(Duration::from_micros(100), Duration::from_millis(2)),
        _ => Dist::Exponential(Duration::from_millis(1)),
    }
}

fn op_step<T>(op: Op<T>) -> Step {
    match op {
        Op::Done(_) => Step::Yield,
        Op::Pending => Step::Wait,
    }
}

impl Machine for Prog {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        if let Some(WaitOutcome::Received(Ok(m))) = resumed {
            self.got += m.as_u64().unwrap_or(0);
        }
        let Some(a) = self.acts.get(self.pc).cloned() else {
            return Step::Exit(Ok(()));
        };
        self.pc += 1;
        match a {
            Act::Send(k, mode) => {
                let on_full = match mode {
                    0 => OnFull::Block,
                    1 => OnFull::Fail,
                    2 => OnFull::DropOldest,
                    _ => OnFull::Timeout(Duration::from_millis(1)),
                };
                let msg = Message::from_u64(1, self.pc as u64);
                op_step(cx.send(Destination::Name(self.to[k]), msg, on_full))
            }
            Act::Receive(mode) => {
                let wait = match mode {
                    0 => Wait::Forever,
                    1 => Wait::NoWait,
                    _ => Wait::For(Duration::from_millis(2)),
                };
                op_step(cx.receive(Source::Name(self.own), wait))
            }
            Act::Select(mode) => {
                let wait = match mode {
                    0 => Wait::For(Duration::from_millis(1)),
                    _ => Wait::NoWait,
                };
                let names = [self.own];
                op_step(cx.receive(Source::Any(&names), wait))
            }
            Act::Pause(d, busy) => Step::Pause {
                time: dist(d),
                busy,
            },
            Act::Yield => Step::Yield,
            Act::Choose(n) => {
                self.got += cx.choose(n) as u64;
                Step::Yield
            }
            Act::Spawn(k) => {
                let to = self.to[k];
                let r = cx.spawn(
                    "child",
                    &[CarriedRight {
                        name: to,
                        disposition: mkipc_kernel::Disposition::CopySend,
                    }],
                    |rights: &[CarriedRight]| Prog {
                        own: rights[0].name,
                        to: vec![rights[0].name; 3],
                        acts: vec![Act::Send(0, 0), Act::Yield, Act::Send(0, 3)],
                        pc: 0,
                        got: 0,
                        server: false,
                    },
                );
                if r.is_err() {
                    return Step::Exit(Err(mkipc_sim::ProcError::msg("spawn failed")));
                }
                Step::Yield
            }
        }
    }
    fn is_server(&self) -> bool {
        self.server
    }
}

/// How the processes of a model are run.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Stackless,
    Coroutine,
}

fn run(
    programs: &[Vec<Act>],
    caps: &[usize],
    sim: Sim,
    kind: Kind,
    yields: YieldIs,
) -> Result<Report, Failure> {
    let mut sim = sim;
    let ports: Vec<PortName> = caps
        .iter()
        .enumerate()
        .map(|(i, &c)| {
            let cap = if c == 0 {
                Capacity::Zero
            } else {
                Capacity::Bounded(c)
            };
            sim.port(&format!("p{i}"), cap).unwrap()
        })
        .collect();
    for (i, acts) in programs.iter().enumerate() {
        let mut inherit = vec![Inherit::receive(ports[i])];
        inherit.extend(ports.iter().map(|&p| Inherit::send(p)));
        let acts = acts.clone();
        let server = i == 0;
        let make = move |r: &[CarriedRight]| Prog {
            own: r[0].name,
            to: r[1..].iter().map(|c| c.name).collect(),
            acts,
            pc: 0,
            got: 0,
            server,
        };
        let id: ProcId = match kind {
            Kind::Stackless => sim
                .spawn_machine_with(&format!("m{i}"), &inherit, yields, make)
                .unwrap(),
            Kind::Coroutine => sim
                .spawn_with(&format!("m{i}"), &inherit, move |p| {
                    run_on_proc_with(p, make(p.inherited()), yields)
                })
                .unwrap(),
        };
        let _ = id;
    }
    sim.run()
}

fn digest(r: &Result<Report, Failure>) -> String {
    match r {
        Ok(report) => format!("ok\n{report:#?}\n{}", report.trace.to_json_lines()),
        Err(f) => format!("err\n{f}\n{f:#?}\n{}", f.report.trace.to_json_lines()),
    }
}

fn programs() -> impl Strategy<Value = (Vec<Vec<Act>>, Vec<usize>)> {
    (
        prop::collection::vec(prop::collection::vec(act(), 0..12), 3),
        prop::collection::vec(0..3usize, 3),
    )
}

fn scheduler() -> impl Strategy<Value = SchedulerKind> {
    prop_oneof![
        Just(SchedulerKind::Random),
        Just(SchedulerKind::RoundRobin),
        Just(SchedulerKind::Pct {
            depth: 2,
            max_steps: 100
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// The stackless run is the coroutine's, for both meanings of `Step::Yield`.
    #[test]
    fn stackless_machines_run_as_on_a_coroutine(
        (programs, caps) in programs(),
        seed in 0..1000u64,
        sched in scheduler(),
        trace in any::<bool>(),
        yields_point in any::<bool>(),
    ) {
        let yields = if yields_point { YieldIs::SchedulingPoint } else { YieldIs::NoOp };
        let builder = Sim::builder().seed(seed).scheduler(sched).trace(trace);
        let a = run(&programs, &caps, builder.clone().build(), Kind::Stackless, yields);
        let b = run(&programs, &caps, builder.build(), Kind::Coroutine, yields);
        prop_assert_eq!(digest(&a), digest(&b));
    }
}

/// A process left waiting at the end is reported stuck with its wait
/// credited, as on a coroutine; a server left at a receive is a valid end.
#[test]
fn a_server_left_waiting_ends_the_run_as_on_a_coroutine() {
    let programs = vec![
        vec![Act::Receive(0), Act::Receive(0)],
        vec![Act::Send(0, 0)],
        vec![],
    ];
    for kind in [Kind::Stackless, Kind::Coroutine] {
        let r = run(
            &programs,
            &[1, 1, 1],
            Sim::builder().seed(3).build(),
            kind,
            YieldIs::SchedulingPoint,
        );
        let report = r.expect("a server left receiving is a valid end");
        assert_eq!(report.procs[0].status, mkipc_sim::ExitStatus::Stuck);
    }
}

/// The machines' ping-pong (the bench's) is the closures' run: same
/// schedule, same trace, same report.
#[test]
fn the_machine_ping_pong_exchanges_what_the_closure_one_does() {
    for seed in 0..4 {
        let mut a = Sim::builder().seed(seed).build();
        mkipc_sim::workload::ping_pong(&mut a, 50).unwrap();
        let a = a.run().unwrap();
        let mut b = Sim::builder().seed(seed).build();
        mkipc_sim::workload::ping_pong_machines(&mut b, 50).unwrap();
        let b = b.run().unwrap();
        for r in [&a, &b] {
            assert!(r.kernel_is_clean());
            assert!(r.procs.iter().all(|p| p.status.is_success()));
            assert_eq!(r.port("ping").unwrap().messages, 50);
            assert_eq!(r.port("pong").unwrap().messages, 50);
        }
        let ops = |r: &Report| {
            r.procs
                .iter()
                .map(|p| p.stats.sent + p.stats.received)
                .sum::<u64>()
        };
        assert_eq!(ops(&a), ops(&b));
    }
}
