//! A machine says how its end is judged (`Machine::is_server`,
//! `Machine::expects_error`), and `Sim::spawn_machine` declares it so.

use mkipc_kernel::runtime::{Source, WaitOutcome};
use mkipc_kernel::{Capacity, PortName, Wait};
use mkipc_sim::machine::{Ctx, Machine, Op, Step};
use mkipc_sim::{FailureReason, Inherit, ProcError, Sim};

/// Receives on `inbox` forever, or fails at once.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Waiter {
    inbox: PortName,
    server: bool,
    fail: bool,
}

impl Machine for Waiter {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, _resumed: Option<WaitOutcome>) -> Step {
        if self.fail {
            return Step::Exit(Err(ProcError::msg("on purpose")));
        }
        match cx.receive(Source::Name(self.inbox), Wait::Forever) {
            Op::Pending => Step::Wait,
            Op::Done(_) => Step::Yield,
        }
    }
    fn is_server(&self) -> bool {
        self.server
    }
    fn expects_error(&self) -> bool {
        self.fail
    }
}

fn run(server: bool, fail: bool) -> Result<(), FailureReason> {
    let mut sim = Sim::builder().seed(1).build();
    let port = sim.port("inbox", Capacity::Bounded(1)).unwrap();
    sim.spawn_machine("waiter", &[Inherit::receive(port)], move |r| Waiter {
        inbox: r[0].name,
        server,
        fail,
    })
    .unwrap();
    sim.run().map(drop).map_err(|f| f.reason)
}

#[test]
fn a_server_machine_left_waiting_is_a_valid_end() {
    assert!(matches!(run(false, false), Err(FailureReason::Deadlock(_))));
    assert!(run(true, false).is_ok());
}

#[test]
fn a_machine_that_expects_its_error_does_not_fail_the_run() {
    assert!(run(false, true).is_ok());
}
