//! `Ctx::choose`: a machine's nondeterministic choice, drawn from the run's
//! seeded stream on the simulator (a seed replays it).

use std::sync::{Arc, Mutex};

use mkipc_kernel::runtime::WaitOutcome;
use mkipc_sim::machine::{Ctx, Machine, Step};
use mkipc_sim::Sim;

/// Makes `left` choices among three and records them.
#[derive(Clone, Debug)]
struct Chooser {
    left: u32,
    seen: Arc<Mutex<Vec<usize>>>,
}

impl Machine for Chooser {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, _resumed: Option<WaitOutcome>) -> Step {
        if self.left == 0 {
            return Step::Exit(Ok(()));
        }
        self.left -= 1;
        assert_eq!(cx.choose(0), 0);
        assert_eq!(cx.choose(1), 0);
        let c = cx.choose(3);
        assert!(c < 3, "choose(3) gave {c}");
        self.seen.lock().unwrap().push(c);
        Step::Yield
    }
}

fn choices(seed: u64) -> Vec<usize> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut sim = Sim::builder().seed(seed).build();
    let s = Arc::clone(&seen);
    sim.spawn_machine("chooser", &[], move |_| Chooser { left: 40, seen: s })
        .unwrap();
    sim.run().unwrap();
    let v = seen.lock().unwrap().clone();
    v
}

#[test]
fn a_seed_replays_the_choices_and_every_alternative_comes_up() {
    let a = choices(7);
    assert_eq!(a.len(), 40);
    assert_eq!(a, choices(7), "the same seed must give the same choices");
    for alt in 0..3 {
        assert!(a.contains(&alt), "alternative {alt} never chosen in {a:?}");
    }
    assert_ne!(a, choices(8), "another seed should give other choices");
}
