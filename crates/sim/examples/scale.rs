//! How many idle simulated processes fit, and what each one costs.
//!
//! Spawns N processes (default 100,000); each allocates a port of its own and
//! blocks receiving on it, with a timeout of one virtual second. When all are
//! parked (at 1 ms), a reporter reads the resident memory; then the timeouts
//! end everyone. Run in release:
//!
//! ```text
//! cargo run --release -p mkipc-sim --example scale -- 100000 [stack_kib]
//! ```

use std::cell::Cell;
use std::rc::Rc;
use std::time::Instant;

use std::time::Duration;

use mkipc_kernel::{Capacity, Ipc, ReceiveError};
use mkipc_sim::{ms, Sim};

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().and_then(|s| s.parse().ok()).unwrap_or(100_000);
    let stack_kib: usize = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(mkipc_sim::DEFAULT_STACK_SIZE / 1024);
    let t0 = Instant::now();
    let mut sim = Sim::builder()
        .seed(1)
        .trace(false)
        .stack_size(stack_kib * 1024)
        .build();
    let before = rss_bytes();
    for _ in 0..n {
        sim.spawn("idle", |p| {
            // Parked in a receive on its own port; the timeout (long after the
            // measurement) is what ends it.
            let own = p.port_allocate(Capacity::Bounded(1))?;
            let r = p.receive_timeout(own, Duration::from_secs(1));
            assert_eq!(r.unwrap_err(), ReceiveError::TimedOut);
            Ok(())
        });
    }
    let idle = Rc::new(Cell::new(0u64));
    let idle2 = idle.clone();
    sim.spawn("reporter", move |p| {
        p.sleep(ms(1)); // every other process is parked by now
        idle2.set(rss_bytes());
        Ok(())
    });
    let report = sim.run().expect("the run ends cleanly");
    let elapsed = t0.elapsed();
    let per = (idle.get().saturating_sub(before)) as f64 / n as f64;
    println!(
        "{n} idle processes (stack {stack_kib} KiB): {:.0} B resident per process ({:.1} MiB total), run {:.2?}, {} steps, clean kernel: {}",
        per,
        (idle.get() - before) as f64 / (1 << 20) as f64,
        elapsed,
        report.steps,
        report.kernel_is_clean()
    );
}
