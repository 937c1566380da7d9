//! Ready-made workloads, shared by the benchmarks (`benches/sim.rs` and
//! `mkipc bench`) so that both measure the same thing.
//!
//! ```
//! use mkipc_sim::{workload, Sim};
//!
//! let mut sim = Sim::builder().seed(1).trace(false).build();
//! workload::ping_pong(&mut sim, 100).unwrap();
//! let report = sim.run().unwrap();
//! assert!(report.kernel_is_clean());
//! ```

use mkipc_kernel::{Capacity, Ipc, IpcError, Message};

use crate::{Inherit, Sim};

/// Scheduled IPC operations one [`ping_pong`] round trip makes: two sends
/// and two receives.
pub const PING_PONG_OPS_PER_ROUND: u64 = 4;

/// Sets up the classic ping-pong on `sim`: process `a` sends `rounds`
/// numbered messages on a `ping` port (bounded(1)) and waits for each on a
/// `pong` port; process `b` echoes every one back. Run it with [`Sim::run`].
///
/// ```
/// let mut sim = mkipc_sim::Sim::builder().seed(1).build();
/// mkipc_sim::workload::ping_pong(&mut sim, 10).unwrap();
/// assert!(sim.run().is_ok());
/// ```
pub fn ping_pong(sim: &mut Sim, rounds: u64) -> Result<(), IpcError> {
    let ping = sim.port("ping", Capacity::Bounded(1))?;
    let pong = sim.port("pong", Capacity::Bounded(1))?;
    sim.spawn_with(
        "a",
        &[Inherit::send(ping), Inherit::receive(pong)],
        move |p| {
            for i in 0..rounds {
                p.send(p.right(0), Message::from_u64(1, i))?;
                p.receive(p.right(1))?;
            }
            Ok(())
        },
    )?;
    sim.spawn_with(
        "b",
        &[Inherit::receive(ping), Inherit::send(pong)],
        move |p| {
            for _ in 0..rounds {
                let m = p.receive(p.right(0))?;
                p.send(p.right(1), m)?;
            }
            Ok(())
        },
    )?;
    Ok(())
}

/// One side of [`ping_pong_machines`]: sends on `out` and receives on
/// `inp`, in that order (`first_send`) or the other, `rounds` times; `b`
/// sends back what it received.
#[derive(Debug)]
struct PingPong {
    out: mkipc_kernel::PortName,
    inp: mkipc_kernel::PortName,
    left: u64,
    sending: bool,
    first_send: bool,
    last: Option<Message>,
}

impl crate::machine::Machine for PingPong {
    fn step<C: crate::machine::Ctx<Self>>(
        &mut self,
        cx: &mut C,
        resumed: Option<mkipc_kernel::runtime::WaitOutcome>,
    ) -> crate::machine::Step {
        use crate::machine::{Op, Step};
        use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
        use mkipc_kernel::{OnFull, Wait};
        match resumed {
            Some(WaitOutcome::Sent(Err(e))) => return Step::Exit(Err(e.into())),
            Some(WaitOutcome::Received(Err(e))) => return Step::Exit(Err(e.into())),
            Some(WaitOutcome::Sent(Ok(_))) => self.sent(),
            Some(WaitOutcome::Received(Ok(m))) => self.received(m),
            None => {}
        }
        if self.left == 0 {
            return Step::Exit(Ok(()));
        }
        if self.sending {
            let msg = match self.last.take() {
                Some(m) => m,
                None => Message::from_u64(1, self.left),
            };
            match cx.send(Destination::Name(self.out), msg, OnFull::Block) {
                Op::Done(Ok(_)) => self.sent(),
                Op::Done(Err(e)) => return Step::Exit(Err(e.into())),
                Op::Pending => return Step::Wait,
            }
        } else {
            match cx.receive(Source::Name(self.inp), Wait::Forever) {
                Op::Done(Ok(m)) => self.received(m),
                Op::Done(Err(e)) => return Step::Exit(Err(e.into())),
                Op::Pending => return Step::Wait,
            }
        }
        Step::Yield
    }
}

impl PingPong {
    fn sent(&mut self) {
        self.sending = false;
        if !self.first_send {
            self.left -= 1;
        }
    }
    fn received(&mut self, m: Message) {
        self.sending = true;
        if self.first_send {
            self.left -= 1;
        } else {
            self.last = Some(m);
        }
    }
}

/// [`ping_pong`] with two stackless [`Machine`](crate::machine::Machine)
/// processes instead of closures: the same messages on the same ports, one
/// operation per step, and (their `Step::Yield` no scheduling point,
/// [`YieldIs::NoOp`](crate::machine::YieldIs)) the same run: same schedule,
/// same trace.
pub fn ping_pong_machines(sim: &mut Sim, rounds: u64) -> Result<(), IpcError> {
    let ping = sim.port("ping", Capacity::Bounded(1))?;
    let pong = sim.port("pong", Capacity::Bounded(1))?;
    for (name, first_send, inherit) in [
        ("a", true, [Inherit::send(ping), Inherit::receive(pong)]),
        ("b", false, [Inherit::receive(ping), Inherit::send(pong)]),
    ] {
        sim.spawn_machine_with(name, &inherit, crate::machine::YieldIs::NoOp, move |r| {
            let (out, inp) = if first_send {
                (r[0].name, r[1].name)
            } else {
                (r[1].name, r[0].name)
            };
            PingPong {
                out,
                inp,
                left: rounds,
                sending: first_send,
                first_send,
                last: None,
            }
        })?;
    }
    Ok(())
}

/// [`ping_pong`] with two async processes ([`Sim::spawn_async`]): the same
/// calls, awaited; the same run, for the same seed.
///
/// ```
/// let mut sim = mkipc_sim::Sim::builder().seed(1).build();
/// mkipc_sim::workload::ping_pong_async(&mut sim, 10).unwrap();
/// assert!(sim.run().is_ok());
/// ```
pub fn ping_pong_async(sim: &mut Sim, rounds: u64) -> Result<(), IpcError> {
    use crate::AsyncIpc;
    let ping = sim.port("ping", Capacity::Bounded(1))?;
    let pong = sim.port("pong", Capacity::Bounded(1))?;
    sim.spawn_async(
        "a",
        &[Inherit::send(ping), Inherit::receive(pong)],
        move |p| async move {
            for i in 0..rounds {
                p.send(p.right(0), Message::from_u64(1, i)).await?;
                p.receive(p.right(1)).await?;
            }
            Ok(())
        },
    )?;
    sim.spawn_async(
        "b",
        &[Inherit::receive(ping), Inherit::send(pong)],
        move |p| async move {
            for _ in 0..rounds {
                let m = p.receive(p.right(0)).await?;
                p.send(p.right(1), m).await?;
            }
            Ok(())
        },
    )?;
    Ok(())
}
