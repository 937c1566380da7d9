//! The stateful checker branches on `Ctx::choose`: every alternative of
//! every choice a step makes is a transition of its own, trails record the
//! choices, and `Checker::replay` follows them.

use mkipc_kernel::runtime::{Destination, WaitOutcome};
use mkipc_kernel::{Capacity, Message, OnFull, PortName};
use mkipc_sim::check::{Checker, Encode, Encoder, ReplayError, Trail};
use mkipc_sim::machine::{Ctx, Machine, Op, Step};
use mkipc_sim::{FailureReason, Inherit};

/// Picks one of three; after 2, one of two; only the path 2 then 1 sends
/// on a rendezvous port nobody receives from (a deadlock).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Picky {
    out: PortName,
    picked: Vec<usize>,
    done: bool,
}

impl Machine for Picky {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        if resumed.is_some() || self.done {
            return Step::Exit(Ok(()));
        }
        let first = cx.choose(3);
        self.picked.push(first);
        if first == 2 {
            let second = cx.choose(2);
            self.picked.push(second);
            if second == 1 {
                self.done = true;
                let msg = Message::from_u64(1, 7);
                return match cx.send(Destination::Name(self.out), msg, OnFull::Block) {
                    Op::Pending => Step::Wait,
                    Op::Done(_) => Step::Exit(Ok(())),
                };
            }
        }
        self.done = true;
        Step::Yield
    }
}

impl Encode for Picky {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.name(self.out);
        e.value(&self.picked);
        e.value(&self.done);
    }
}

fn setup(w: &mut mkipc_sim::check::World<Picky>) {
    let port = w.port("nobody", Capacity::Zero).unwrap();
    w.spawn_with("picky", &[Inherit::send(port)], |n| Picky {
        out: n[0].name,
        picked: Vec::new(),
        done: false,
    })
    .unwrap();
}

#[test]
fn smoke_a_bug_behind_one_alternative_is_found_and_replays() {
    for reduction in [true, false] {
        let out = Checker::new().reduction(reduction).run(setup);
        let f = out.failure().expect("the deadlock behind choices 2, 1");
        assert!(matches!(f.reason, FailureReason::Deadlock(_)), "{f}");
        assert_eq!(f.trail.choices(0), &[2, 1], "{}", f.trail);
        assert_eq!(f.trail.to_string(), "0/2/1");
        let replay = Checker::new().replay(&f.trail, setup).unwrap();
        assert!(
            matches!(replay.failure, Some(FailureReason::Deadlock(_))),
            "{replay}"
        );
        assert!(
            replay.steps[0].did.iter().any(|d| d == "chooses 2 of 3"),
            "{replay}"
        );
        // Through the printed form too.
        let parsed: Trail = f.trail.to_string().parse().unwrap();
        assert_eq!(parsed, f.trail);
    }
}

#[test]
fn every_alternative_is_explored() {
    let mut ends = Vec::new();
    let out = Checker::new().keep_going().run_with_ends(setup, |end| {
        let m = end.view.machine(mkipc_sim::ProcId(0)).unwrap();
        ends.push((m.picked.clone(), end.failure.is_some()));
    });
    assert!(out.stats.complete, "{}", out.stats);
    ends.sort();
    assert_eq!(
        ends,
        vec![
            (vec![0], false),
            (vec![1], false),
            (vec![2, 0], false),
            (vec![2, 1], true),
        ]
    );
}

#[test]
fn a_choice_out_of_range_diverges() {
    let trail: Trail = "0/5".parse().unwrap();
    assert!(matches!(
        Checker::new().replay(&trail, setup),
        Err(ReplayError::Diverged { index: 0, proc: 0 })
    ));
    // More choices than the step makes.
    let trail: Trail = "0/1/1".parse().unwrap();
    assert!(matches!(
        Checker::new().replay(&trail, setup),
        Err(ReplayError::Diverged { index: 0, proc: 0 })
    ));
    // An old trail (no choices) still replays: every choice 0.
    let replay = Checker::new()
        .replay(&"0,0".parse().unwrap(), setup)
        .unwrap();
    assert!(replay.failure.is_none(), "{replay}");
}
