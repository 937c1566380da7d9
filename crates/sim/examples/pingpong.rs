//! The two-process ping-pong of `mkipc_sim::workload`, once, for profiling:
//! `cargo run --release -p mkipc-sim --example pingpong -- [round trips] [traced] [closures|machines|async]`
//! (e.g. under `perf stat -e instructions:u` or `perf record -g`). The
//! kind of process: closures on coroutines (the default), stackless
//! machines, or async processes; the same run for each, so the trace hash
//! printed is the same too.

use mkipc_sim::{workload, Sim};

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let traced = args.next().is_some_and(|s| s == "traced");
    let kind = args.next().unwrap_or_else(|| "closures".to_string());
    // `MKIPC_TRACE_LIMIT`: the trace's bound (`SimBuilder::trace_limit`),
    // to see what the ring's size costs (a different limit keeps other
    // events, so the hash differs from the default's).
    let mut builder = Sim::builder().seed(7).trace(traced);
    if let Some(limit) = std::env::var("MKIPC_TRACE_LIMIT")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        builder = builder.trace_limit(limit);
    }
    let mut sim = builder.build();
    match kind.as_str() {
        "machines" => workload::ping_pong_machines(&mut sim, rounds),
        "async" => workload::ping_pong_async(&mut sim, rounds),
        _ => workload::ping_pong(&mut sim, rounds),
    }
    .expect("the ports are made");
    let t = std::time::Instant::now();
    let report = sim.run().expect("ping-pong ends");
    let ops = rounds * workload::PING_PONG_OPS_PER_ROUND;
    println!(
        "{kind}: {ops} ops in {} steps, {:.2} M ops/s, trace hash {:x}",
        report.steps,
        ops as f64 / t.elapsed().as_secs_f64() / 1e6,
        report.trace.hash()
    );
}
