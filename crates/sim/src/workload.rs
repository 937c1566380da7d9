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
