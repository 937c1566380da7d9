//! The stateful checker's speed on the models (not a timed test).
//!
//! `taskset -c 0 cargo bench -p mkipc-sim --bench check` prints, per model,
//! the verdict, states, transitions, time and states/s. Arguments filter by
//! model name (`cargo bench -p mkipc-sim --bench check -- master`).

#[path = "../tests/check_models/mod.rs"]
mod check_models;

use check_models::{master_worker, producer_consumer, Classic};
use mkipc_kernel::Capacity;
use mkipc_sim::check::{Checker, Storage, World};

type Setup = Box<dyn Fn(&mut World<Classic>)>;

fn main() {
    let filter: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    // The largest model with hash compaction: its exact encodings would
    // take gigabytes on a shared machine.
    let models: Vec<(&str, Storage, Setup)> = vec![
        (
            "producer-consumer n=1000 bounded(2)",
            Storage::Exact,
            Box::new(|w| producer_consumer(w, 1_000, Capacity::Bounded(2))),
        ),
        (
            "producer-consumer n=10000 bounded(2)",
            Storage::Exact,
            Box::new(|w| producer_consumer(w, 10_000, Capacity::Bounded(2))),
        ),
        (
            "master-worker jobs=6 workers=3 cap 2",
            Storage::Exact,
            Box::new(|w| master_worker(w, 6, 3, Capacity::Bounded(2), false)),
        ),
        (
            "master-worker jobs=11 workers=4 cap 2",
            Storage::HashCompact,
            Box::new(|w| master_worker(w, 11, 4, Capacity::Bounded(2), false)),
        ),
    ];
    for (name, storage, setup) in &models {
        if !filter.is_empty() && !filter.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let label = name.to_string();
        let out = Checker::new()
            .storage(*storage)
            .max_memory(4 << 30)
            .progress(std::time::Duration::from_secs(30), move |s| {
                eprintln!(
                    "  {label}: {} states, {} transitions, {:.0} s, {:.0} states/s so far",
                    s.states_stored,
                    s.transitions,
                    s.elapsed.as_secs_f64(),
                    s.states_per_sec()
                )
            })
            .run(|w| setup(w));
        let s = &out.stats;
        println!(
            "{name} ({}): {} | {} states, {} matched, {} transitions, depth {}, {:.3} s, {:.0} states/s, visited set {:.1} MB, {}",
            s.storage,
            match out.failure() {
                Some(f) => format!("FAILED: {}", f.reason),
                None => "no failure".to_string(),
            },
            s.states_stored,
            s.states_matched,
            s.transitions,
            s.max_depth,
            s.elapsed.as_secs_f64(),
            s.states_per_sec(),
            s.memory as f64 / 1048576.0,
            match (&s.stopped, s.complete) {
                (_, true) => "complete".to_string(),
                (Some(why), _) => format!("INCOMPLETE: {why}"),
                (None, false) => "INCOMPLETE".to_string(),
            },
        );
    }
}
