//! The instances a master spawns from one `[[process]]` have their own
//! names in the report (`worker#1`, `worker#2`, ...), on every backend;
//! a process with one row keeps its name.

use std::time::Duration;

use mkipc::scenario::{instance_of, load, run_sim, run_threads, RunOptions, RunResult};

fn names(r: &RunResult) -> Vec<String> {
    let mut v: Vec<String> = r.processes.iter().map(|p| p.name.clone()).collect();
    v.sort();
    v
}

#[test]
fn spawned_workers_are_told_apart_on_sim_and_threads() {
    let scn = load(std::path::Path::new(
        "examples/scenarios/master-worker.toml",
    ))
    .unwrap();
    let want = ["master", "worker#1", "worker#2", "worker#3"];
    let sim = run_sim(&scn, &RunOptions::default()).unwrap().result;
    assert_eq!(names(&sim), want, "{sim:?}");
    let threads = run_threads(&scn, Duration::from_secs(20)).unwrap();
    assert_eq!(names(&threads), want, "{threads:?}");
    // The rows still add up to the totals.
    let sent: u64 = sim.processes.iter().map(|p| p.sent).sum();
    assert_eq!(sent, sim.messages.sent);
}

#[test]
fn an_instance_name_gives_back_its_script() {
    assert_eq!(instance_of("worker#2"), "worker");
    assert_eq!(instance_of("worker#12"), "worker");
    assert_eq!(instance_of("worker"), "worker");
    assert_eq!(instance_of("phil[1]"), "phil[1]");
    assert_eq!(instance_of("a#b"), "a#b");
    assert_eq!(instance_of("#3"), "#3");
    assert_eq!(instance_of("x#"), "x#");
}
