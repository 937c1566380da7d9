//! Exhaustive search with and without partial-order reduction, on two
//! models from issue 16.
//!
//! ```text
//! cargo run --release -p mkipc-sim --example dpor -- pc 11        # producer/consumer, DPOR
//! cargo run --release -p mkipc-sim --example dpor -- pc 11 plain  # the same, plain DFS
//! cargo run --release -p mkipc-sim --example dpor -- mw 1 3       # master, 1 job, 3 workers
//! ```

use std::time::Instant;

use mkipc_kernel::{Capacity, Ipc, Message, SendErrorKind};
use mkipc_sim::{Explorer, Inherit, Reduction, Sim};

/// A producer sends `n` numbered messages through a bounded(2) port; the
/// consumer checks they arrive in order.
fn producer_consumer(sim: &mut Sim, n: u64) {
    let port = sim.port("jobs", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("consumer", &[Inherit::receive(port)], move |p| {
        for i in 0..n {
            let m = p.receive(p.right(0))?;
            assert_eq!(m.as_u64(), Some(i), "out of order");
        }
        Ok(())
    })
    .unwrap();
    sim.spawn_with("producer", &[Inherit::send(port)], move |p| {
        for i in 0..n {
            p.send(p.right(0), Message::from_u64(1, i))?;
        }
        Ok(())
    })
    .unwrap();
}

/// Until it has every result, the master sends the next job if one is left
/// and the `jobs` mailbox has room, else receives a result; then one stop
/// value per worker. Workers take jobs until the stop value. Both queues
/// have capacity 2.
fn master_workers(sim: &mut Sim, jobs: u64, workers: usize) {
    sim.mailbox("jobs", Capacity::Bounded(2)).unwrap();
    let results = sim.port("results", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("master", &[Inherit::receive(results)], move |p| {
        let jobs_box = p.mailbox_open("jobs")?;
        let (mut next, mut got) = (0, 0);
        while got < jobs {
            if next < jobs {
                match p.try_send(jobs_box, Message::from_u64(1, next)) {
                    Ok(()) => {
                        next += 1;
                        continue;
                    }
                    Err(e) if e.kind() == SendErrorKind::Full => {}
                    Err(e) => return Err(e.into()),
                }
            }
            p.receive(p.right(0))?;
            got += 1;
        }
        for _ in 0..workers {
            p.send(jobs_box, Message::from_u64(2, 0))?;
        }
        Ok(())
    })
    .unwrap();
    for w in 0..workers {
        sim.spawn_with(&format!("worker{w}"), &[Inherit::send(results)], |p| {
            let jobs_box = p.mailbox_open("jobs")?;
            loop {
                let m = p.receive(jobs_box)?;
                if m.id == 2 {
                    return Ok(());
                }
                p.send(
                    p.right(0),
                    Message::from_u64(1, m.as_u64().unwrap_or(0) + 1),
                )?;
            }
        })
        .unwrap();
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: u64| args.get(i).and_then(|s| s.parse().ok()).unwrap_or(default);
    let plain = args.iter().any(|a| a == "plain");
    let reduction = if plain {
        Reduction::None
    } else {
        Reduction::Dpor
    };
    let explorer = Explorer::new()
        .builder(Sim::builder().trace(false))
        .exhaustive(usize::MAX, 100_000_000)
        .reduction(reduction);
    let start = Instant::now();
    let outcome = match args.first().map(String::as_str) {
        Some("mw") => {
            let (jobs, workers) = (num(1, 1), num(2, 3) as usize);
            println!("master-worker: {jobs} job(s), {workers} workers, capacities 2/2");
            explorer.run(|sim| master_workers(sim, jobs, workers))
        }
        _ => {
            let n = num(1, 11);
            println!("producer/consumer: {n} messages through bounded(2)");
            explorer.run(|sim| producer_consumer(sim, n))
        }
    };
    let elapsed = start.elapsed();
    outcome.assert_ok();
    println!(
        "{:?}: {} runs ({} redundant), {} steps, {:.2?}; {}",
        reduction,
        outcome.runs,
        outcome.redundant_runs,
        outcome.steps,
        elapsed,
        outcome.coverage()
    );
}
