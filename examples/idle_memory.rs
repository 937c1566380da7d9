//! Resident memory per idle simulated process, for each kind of process,
//! and the time to create them and park them all: `N` processes, each
//! holding a port of its own and blocked receiving on it (for a virtual
//! second); a reporter measures when all are parked. One kind and size per
//! run of this program, so that nothing an earlier measurement freed hides
//! part of this one:
//!
//! ```text
//! cargo run --release --example idle_memory -- closure 100000
//! cargo run --release --example idle_memory -- machine 1000000
//! cargo run --release --example idle_memory -- script 10000000
//! cargo run --release --example idle_memory -- async 1000000
//! ```
//!
//! `closure`: a Rust closure on a coroutine (`Sim::spawn`); `machine`: a
//! stackless `Machine` (`Sim::spawn_machine`); `script`: a scenario
//! script's process, stackless (`receive own timeout 1s`); `async`: an
//! async process, a future the loop polls (`Sim::spawn_async`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mkipc::kernel::{Capacity, Ipc, PortName, Source, Wait, WaitOutcome};
use mkipc::sim::machine::{Ctx, Machine, Op, Step};
use mkipc::sim::{ms, AsyncIpc, Inherit, Sim};

const IDLE_SCRIPT: &str = r#"
name = "idle"
[[port]]
name = "own"
capacity = 1
receiver = "idle"
[[process]]
name = "idle"
expect_error = true
script = """
receive own timeout 1s
"""
"#;

/// Allocates a port, then waits on it for a virtual second.
struct Idle {
    own: Option<PortName>,
}

impl Machine for Idle {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        if resumed.is_some() {
            return Step::Exit(Ok(()));
        }
        let own = match self.own {
            Some(own) => own,
            None => match cx.ipc().port_allocate(Capacity::Bounded(1)) {
                Ok(own) => *self.own.insert(own),
                Err(e) => return Step::Exit(Err(e.into())),
            },
        };
        match cx.receive(Source::Name(own), Wait::For(Duration::from_secs(1))) {
            Op::Done(_) => Step::Exit(Ok(())),
            Op::Pending => Step::Wait,
        }
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "machine".into());
    let n: usize = args
        .next()
        .map_or(Ok(100_000), |s| s.parse())
        .map_err(|e| format!("N: {e}"))?;
    let start = Instant::now();
    let mut sim = Sim::builder().seed(1).trace(false).build();
    let before = rss_bytes();
    match kind.as_str() {
        "closure" => {
            for _ in 0..n {
                sim.spawn("idle", |p| {
                    let own = p.port_allocate(Capacity::Bounded(1))?;
                    let _ = p.receive_timeout(own, Duration::from_secs(1));
                    Ok(())
                });
            }
        }
        "machine" => {
            for _ in 0..n {
                sim.spawn_machine("idle", &[], |_| Idle { own: None })
                    .map_err(|e| e.to_string())?;
            }
        }
        "async" => {
            for _ in 0..n {
                sim.spawn_async("idle", &[], |p| async move {
                    let own = p.port_allocate(Capacity::Bounded(1)).await?;
                    let _ = p.receive_timeout(own, Duration::from_secs(1)).await;
                    Ok(())
                })
                .map_err(|e| e.to_string())?;
            }
        }
        "script" => {
            let scn = Arc::new(
                mkipc::scenario::parse("idle.toml", IDLE_SCRIPT).map_err(|e| e.to_string())?,
            );
            // Ports made straight in the setup task (not `Sim::port`, which
            // labels and watches each one for the report).
            mkipc::scenario::spawn_script_copies(&scn, &mut sim, 0, n, |sim| {
                let own = sim
                    .kernel()
                    .port_allocate(sim.init_pid(), Capacity::Bounded(1))?;
                Ok(vec![Inherit::receive(own)])
            })?;
        }
        other => {
            return Err(format!(
                "kind: closure, machine, script or async, not {other}"
            ))
        }
    }
    let seen = Rc::new(Cell::new((0u64, 0f64)));
    let seen2 = Rc::clone(&seen);
    sim.spawn("reporter", move |p| {
        p.sleep(ms(1));
        seen2.set((rss_bytes(), start.elapsed().as_secs_f64()));
        Ok(())
    });
    let report = sim.run().map_err(|f| f.to_string())?;
    let (rss, secs) = seen.get();
    println!(
        "idle {kind:<8} {n:>9} processes: {:>6.0} B resident each, created and parked in {secs:.2} s; run {:.2} s, kernel clean: {}",
        rss.saturating_sub(before) as f64 / n as f64,
        start.elapsed().as_secs_f64(),
        report.kernel_is_clean()
    );
    Ok(())
}
