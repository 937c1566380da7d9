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
//! cargo run --release --example idle_memory -- script 1000000 parked   # stop once parked
//! ```
//!
//! It prints the resident memory per process (measured once all are
//! parked), the time to create them (the spawn calls) and the time until
//! all are parked (creation, then each process's first step: its port and
//! its wait); with `parked` it stops there, without the virtual second
//! that times every wait out and the teardown.
//!
//! `closure`: a Rust closure on a coroutine (`Sim::spawn`); `machine`: a
//! stackless `Machine` (`Sim::spawn_machine`); `script`: a scenario
//! script's process, stackless (`receive own timeout 1s`); `async`: an
//! async process, a future the loop polls (`Sim::spawn_async`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mkipc::kernel::runtime::{Source, WaitOutcome};
use mkipc::kernel::{Capacity, Ipc, PortName, Wait};
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

/// CPU seconds this process used so far (user + system, from
/// `/proc/self/stat`): on a loaded machine wall time includes the waits
/// for a CPU.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    (field(11) + field(12)) as f64 / 100.0
}

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "machine".into());
    let n: usize = args
        .next()
        .map_or(Ok(100_000), |s| s.parse())
        .map_err(|e| format!("N: {e}"))?;
    let park_only = args.next().is_some_and(|a| a == "parked");
    let start = Instant::now();
    // Parking takes each process a step or two: past 5 M processes that
    // is more than the default step limit (made for livelocks).
    let steps = 4 * n as u64 + 1_000_000;
    let mut sim = Sim::builder().seed(1).trace(false).max_steps(steps).build();
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
    let created = start.elapsed().as_secs_f64();
    let created_cpu = cpu_secs();
    let seen = Rc::new(Cell::new((0u64, 0f64)));
    let seen2 = Rc::clone(&seen);
    let label = kind.clone();
    sim.spawn("reporter", move |p| {
        p.sleep(ms(1));
        let (rss, secs) = (rss_bytes(), start.elapsed().as_secs_f64());
        seen2.set((rss, secs));
        if park_only {
            println!(
                "idle {label:<8} {n:>9} processes: {:>6.0} B resident each, created in {created:.2} s ({created_cpu:.2} s CPU), parked in {secs:.2} s ({:.2} s CPU)",
                rss.saturating_sub(before) as f64 / n as f64,
                cpu_secs(),
            );
            std::process::exit(0);
        }
        Ok(())
    });
    let report = sim.run().map_err(|f| f.to_string())?;
    let (rss, secs) = seen.get();
    println!(
        "idle {kind:<8} {n:>9} processes: {:>6.0} B resident each, created in {created:.2} s, parked in {secs:.2} s; run {:.2} s, kernel clean: {}",
        rss.saturating_sub(before) as f64 / n as f64,
        start.elapsed().as_secs_f64(),
        report.kernel_is_clean()
    );
    Ok(())
}
