//! A capacity experiment: a producer and a consumer on a bounded mailbox, in
//! virtual time, with the report printed and the trace written in all three
//! formats.
//!
//! ```text
//! cargo run -p mkipc-sim --example capacity_trace -- [capacity] [out-dir]
//! ```
//!
//! Open `<out-dir>/pipeline.chrome.json` in ui.perfetto.dev, paste
//! `pipeline.mmd` into a Mermaid renderer, grep `pipeline.jsonl`.

use std::path::PathBuf;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{ms, Dist, Sim};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let capacity: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(2);
    let out: PathBuf = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);

    let mut sim = Sim::builder().seed(42).build();
    sim.mailbox("jobs", Capacity::Bounded(capacity))?;
    sim.spawn("producer", |p| {
        let jobs = p.mailbox_open("jobs")?;
        for i in 0..20 {
            p.send(jobs, Message::from_u64(1, i))?;
            p.work(Dist::exponential(ms(2)));
        }
        Ok(())
    });
    sim.spawn("consumer", |p| {
        let jobs = p.mailbox_open("jobs")?;
        for _ in 0..20 {
            p.receive(jobs)?;
            p.work(Dist::uniform(ms(1), ms(4)));
        }
        Ok(())
    });
    let report = sim.run()?;
    println!("{report}");
    std::fs::create_dir_all(&out)?;
    std::fs::write(out.join("pipeline.jsonl"), report.trace.to_json_lines())?;
    std::fs::write(out.join("pipeline.mmd"), report.trace.to_mermaid())?;
    std::fs::write(
        out.join("pipeline.chrome.json"),
        report.trace.to_chrome_json(),
    )?;
    println!(
        "traces written to {} (trace hash {:016x})",
        out.display(),
        report.trace.hash()
    );
    Ok(())
}
