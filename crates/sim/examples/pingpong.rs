//! The two-process ping-pong of `mkipc_sim::workload`, once, for profiling:
//! `cargo run --release -p mkipc-sim --example pingpong -- [round trips] [traced]`
//! (e.g. under `perf stat -e instructions:u` or `perf record -g`).

use mkipc_sim::{workload, Sim};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let traced = args.next().is_some_and(|s| s == "traced");
    let mut sim = Sim::builder().seed(7).trace(traced).build();
    workload::ping_pong(&mut sim, rounds).expect("the ports are made");
    let t = std::time::Instant::now();
    let report = sim.run().expect("ping-pong ends");
    let ops = rounds * workload::PING_PONG_OPS_PER_ROUND;
    println!(
        "{ops} ops in {} steps, {:.2} M ops/s, trace hash {:x}",
        report.steps,
        ops as f64 / t.elapsed().as_secs_f64() / 1e6,
        report.trace.hash()
    );
}
