//! A large run: `PAIRS` pairs of scenario-script processes (stackless)
//! playing ping-pong `ROUNDS` times on two ports of their own (the ponger
//! works 0-2 ms of virtual time before each answer), so
//! `2 * PAIRS` processes exchange `2 * PAIRS * ROUNDS` messages; it prints
//! the time to create them, the time of the run, the peak resident memory,
//! and the run's report, which for so many processes is a summary (totals,
//! top processes by messages and by time blocked: `mkipc_sim::summary`):
//!
//! ```text
//! cargo run --release --example many_processes              # 50,000 pairs, 100 rounds: 100 k processes, 10 M messages
//! cargo run --release --example many_processes -- 500 10    # a small one
//! ```
//!
//! The peak is the process's high-water mark (`VmHWM`), so `/usr/bin/time
//! -v` agrees with it.

use std::sync::Arc;
use std::time::Instant;

use mkipc::kernel::{Capacity, CarriedRight, Disposition, PortName};
use mkipc::scenario::Right;
use mkipc::sim::{Inherit, Sim};

const PAIRS_SCRIPT: &str = r#"
name = "pairs"

[params]
ROUNDS = 100

[[port]]
name = "ping"
capacity = 1
receiver = "ponger"
senders = ["pinger"]

[[port]]
name = "pong"
capacity = 1
receiver = "pinger"
senders = ["ponger"]

[[process]]
name = "pinger"
script = """
repeat ROUNDS
  send ping 1
  receive pong _
end
"""

[[process]]
name = "ponger"
script = """
repeat ROUNDS
  receive ping _
  work uniform(0ms, 2ms)
  send pong 2
end
"""
"#;

/// A line of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let pairs: usize = args
        .next()
        .map_or(Ok(50_000), |s| s.parse())
        .map_err(|e| format!("PAIRS: {e}"))?;
    let rounds: i64 = args
        .next()
        .map_or(Ok(100), |s| s.parse())
        .map_err(|e| format!("ROUNDS: {e}"))?;
    let scn = Arc::new(
        mkipc::scenario::parse_with("pairs.toml", PAIRS_SCRIPT, &[("ROUNDS".into(), rounds)])
            .map_err(|e| e.to_string())?,
    );
    let queue = |name: &str| scn.queues.iter().position(|q| q.name == name);
    let ping_q = queue("ping").ok_or("no ping")?;
    let pinger_rights = scn.processes[0].rights.clone();
    let ponger_rights = scn.processes[1].rights.clone();

    let start = Instant::now();
    // Each message takes about two scheduling steps; the default limit (10 M
    // steps) is for livelocks in small models.
    let steps = 8 * (pairs as u64) * (rounds.max(1) as u64) + 1_000_000;
    let mut sim = Sim::builder().seed(1).trace(false).max_steps(steps).build();
    let init = sim.init_pid();
    let mut ports: Vec<(PortName, PortName)> = Vec::with_capacity(pairs);
    // Each pinger: a send right to its `ping` (made from the setup task's
    // receive right) and the receive right of its `pong`, whose send right
    // the setup task keeps for the ponger.
    mkipc::scenario::spawn_script_copies(&scn, &mut sim, 0, pairs, |sim| {
        let k = sim.kernel();
        let ping = k.port_allocate(init, Capacity::Bounded(1))?;
        let pong = k.port_allocate(init, Capacity::Bounded(1))?;
        k.make_right(init, pong, Disposition::MakeSend)?;
        ports.push((ping, pong));
        Ok(pinger_rights
            .iter()
            .map(|&(q, r)| match r {
                Right::Send if q == ping_q => Inherit::make_send(ping),
                _ => Inherit::receive(pong),
            })
            .collect())
    })
    .map_err(|e| e.to_string())?;
    let mut next = ports.into_iter();
    mkipc::scenario::spawn_script_copies(&scn, &mut sim, 1, pairs, |_| {
        let (ping, pong) = next.next().ok_or(mkipc::kernel::IpcError::InvalidName)?;
        Ok(ponger_rights
            .iter()
            .map(|&(q, r)| match r {
                Right::Receive if q == ping_q => Inherit::receive(ping),
                _ => CarriedRight {
                    name: pong,
                    disposition: Disposition::MoveSend,
                },
            })
            .collect())
    })
    .map_err(|e| e.to_string())?;
    let created = start.elapsed().as_secs_f64();
    let run_start = Instant::now();
    let report = sim.run().map_err(|f| f.to_string())?;
    let ran = run_start.elapsed().as_secs_f64();
    let summary = report.summary(10);
    println!("{report}");
    println!(
        "many processes: {} processes, {} messages ({} received): created in {created:.2} s, run {ran:.2} s ({:.1} M messages/s, {} steps), peak resident {:.2} GiB, kernel clean: {}",
        summary.processes,
        summary.sent,
        summary.received,
        summary.sent as f64 / ran / 1e6,
        report.steps,
        status_bytes("VmHWM:") as f64 / (1u64 << 30) as f64,
        report.kernel_is_clean()
    );
    Ok(())
}
