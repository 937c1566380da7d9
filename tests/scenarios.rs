//! Every scenario in `examples/scenarios/` runs, and its report is checked:
//! exact numbers where fixed durations on virtual time make them exact.

use std::path::Path;

use mkipc::explore::{explore, ExploreOptions};
use mkipc::scenario::{self, RunOptions, RunResult};

fn run(file: &str) -> RunResult {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(file);
    let scn = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
    scenario::run_sim(&scn, &RunOptions::default())
        .unwrap()
        .result
}

fn proc<'a>(r: &'a RunResult, name: &str) -> &'a mkipc::scenario::ProcessResult {
    r.processes.iter().find(|p| p.name == name).unwrap()
}

#[test]
fn every_scenario_file_is_covered_here() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|f| f.ends_with(".toml"))
        .collect();
    files.sort();
    let covered = [
        "capacity-bounded.toml",
        "capacity-unbounded.toml",
        "capacity-zero.toml",
        "deadlock.toml",
        "direct-vs-indirect.toml",
        "fan-in-fan-out.toml",
        "master-worker.toml",
        "mm1k.toml",
        "ownership.toml",
        "pipeline.toml",
        "rpc.toml",
    ];
    assert_eq!(
        files, covered,
        "a new scenario needs a test in tests/scenarios.rs"
    );
}

#[test]
fn capacity_zero_blocks_the_producer_on_every_send() {
    let r = run("capacity-zero.toml");
    assert!(r.ok, "{r}");
    // Consumer takes 3 ms per message; producer offers every 1 ms and then
    // waits for the rendezvous: 2 ms per send for sends 2..10.
    assert_eq!(proc(&r, "producer").blocked_ms, Some(18.0));
    assert_eq!(proc(&r, "consumer").blocked_ms, Some(1.0));
    assert_eq!(r.time_ms, 31.0);
    assert_eq!(r.queues[0].max_len, Some(0));
    assert_eq!(r.queues[0].mean_latency_ms, Some(1.8));
    assert_eq!(
        (r.messages.sent, r.messages.received, r.messages.lost),
        (10, 10, 0)
    );
}

#[test]
fn capacity_bounded_blocks_only_when_full() {
    let r = run("capacity-bounded.toml");
    assert!(r.ok, "{r}");
    assert_eq!(proc(&r, "producer").blocked_ms, Some(6.0));
    assert_eq!(r.time_ms, 31.0);
    assert_eq!(r.queues[0].max_len, Some(4));
    assert_eq!(r.queues[0].mean_latency_ms, Some(8.4));
    assert!(r.invariants.iter().all(|i| i.held));
}

#[test]
fn capacity_unbounded_never_blocks_but_queues_grow() {
    let r = run("capacity-unbounded.toml");
    assert!(r.ok, "{r}");
    assert_eq!(proc(&r, "producer").blocked_ms, Some(0.0));
    assert_eq!(r.time_ms, 31.0);
    // At 10 ms the tenth send and the fourth receive happen at the same
    // virtual instant; this seed runs the receive first.
    assert_eq!(r.queues[0].max_len, Some(6));
    assert_eq!(r.queues[0].mean_latency_ms, Some(9.0));
}

#[test]
fn direct_and_indirect_deliver_everything() {
    let r = run("direct-vs-indirect.toml");
    assert!(r.ok, "{r}");
    assert_eq!(proc(&r, "logger").received, 3);
    assert_eq!(r.queues[0].received, 4);
    assert_eq!(r.messages.lost, 0);
}

#[test]
fn ownership_loses_the_queued_messages_when_the_owner_exits() {
    let r = run("ownership.toml");
    assert!(!r.ok);
    assert_eq!(r.messages.sent, 4);
    assert_eq!(r.messages.received, 1);
    assert_eq!(r.messages.lost, 3);
    let reader = proc(&r, "late_reader");
    assert!(
        reader.status.contains("source is dead"),
        "{}",
        reader.status
    );
    let inv = &r.invariants[0];
    assert!(
        !inv.held
            && inv
                .message
                .as_deref()
                .unwrap()
                .starts_with("3 of 4 messages")
    );
}

#[test]
fn pipeline_is_paced_by_its_slowest_stage() {
    let r = run("pipeline.toml");
    assert!(r.ok, "{r}");
    assert_eq!(proc(&r, "transform").working_ms, Some(16.0));
    // 0.5 ms until the first message, 8 x 2 ms in transform, 1 ms for the last store.
    assert_eq!(r.time_ms, 17.5);
    assert_eq!(r.messages.received, 16);
}

#[test]
fn fan_in_fan_out_receives_each_reading_once() {
    let r = run("fan-in-fan-out.toml");
    assert!(r.ok, "{r}");
    assert_eq!(
        proc(&r, "aggregator1").received + proc(&r, "aggregator2").received,
        12
    );
    assert_eq!(r.messages.lost, 0);
}

#[test]
fn master_collects_every_result_from_spawned_workers() {
    let r = run("master-worker.toml");
    assert!(r.ok, "{r}");
    assert_eq!(r.processes.len(), 4);
    assert_eq!(proc(&r, "master").received, 6);
    assert!(r.processes.iter().all(|p| p.status == "exited(0)"));
}

#[test]
fn rpc_round_trips() {
    let r = run("rpc.toml");
    assert!(r.ok, "{r}");
    assert_eq!(proc(&r, "server").received, 6);
    assert_eq!(proc(&r, "client1").received, 3);
    assert_eq!(r.messages.lost, 0);
}

#[test]
fn rpc_runs_on_threads_too() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/rpc.toml");
    let r = scenario::run_threads(
        &scenario::load(&path).unwrap(),
        std::time::Duration::from_secs(30),
    )
    .unwrap();
    assert!(r.ok, "{r}");
    assert_eq!(r.messages.received, 12);
}

#[test]
fn mm1k_drops_when_full_and_never_exceeds_k() {
    let r = run("mm1k.toml");
    assert!(r.ok, "{r}");
    let q = &r.queues[0];
    assert_eq!(q.max_len, Some(3));
    assert!(q.dropped > 0, "rho = 0.8 with K = 3 loses messages");
    assert_eq!(r.messages.sent, 400);
    assert_eq!(r.messages.lost, q.dropped);
    // Theory: P(loss) = (1 - rho) rho^K / (1 - rho^(K+1)) ~ 0.173 with K = 3
    // buffered plus one in service = 4 places; allow sampling noise.
    let loss = q.dropped as f64 / 400.0;
    assert!((0.05..0.30).contains(&loss), "loss {loss}");
}

#[test]
fn the_deadlock_is_found_and_replays() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/deadlock.toml");
    let scn = scenario::load(&path).unwrap();
    // The default seed happens to be a lucky one...
    assert!(
        scenario::run_sim(&scn, &RunOptions::default())
            .unwrap()
            .result
            .ok
    );
    // ...but exploring finds a schedule that deadlocks.
    let opts = ExploreOptions {
        seeds: 50,
        jobs: 2,
        ..Default::default()
    };
    let found = explore(&scn, &opts).unwrap().failure.expect("a deadlock");
    assert!(found.deadlock);
    assert!(found
        .replay_command
        .contains(&format!("--seed {}", found.seed)));
    let again = RunOptions {
        seed: Some(found.seed),
        ..Default::default()
    };
    let r = scenario::run_sim(&scn, &again).unwrap().result;
    assert!(r.deadlock);
    // The recorded schedule replays it too.
    let replay = RunOptions {
        replay: Some(found.schedule.parse().unwrap()),
        ..Default::default()
    };
    assert!(scenario::run_sim(&scn, &replay).unwrap().result.deadlock);
}

#[test]
fn same_seed_same_trace() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/fan-in-fan-out.toml");
    let scn = scenario::load(&path).unwrap();
    let a = scenario::run_sim(&scn, &RunOptions::default()).unwrap();
    let b = scenario::run_sim(&scn, &RunOptions::default()).unwrap();
    assert_eq!(a.report.trace.hash(), b.report.trace.hash());
    assert_eq!(a.result, b.result);
}

#[test]
fn a_threaded_run_stopped_at_its_timeout_joins_every_thread() {
    // `a` and `b` wait for each other; `c` sleeps for an hour. All three are
    // released at the timeout and their threads joined (no "did not end").
    let text = r#"
[[mailbox]]
name = "x"
capacity = 1

[[mailbox]]
name = "y"
capacity = 1

[[process]]
name = "a"
script = "receive x\nsend y"

[[process]]
name = "b"
script = "receive y\nsend x"

[[process]]
name = "c"
script = "sleep 3600s"
"#;
    let scn = scenario::parse("stuck.toml", text).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(scenario::run_threads(
            &scn,
            std::time::Duration::from_millis(300),
        ));
    });
    let r = rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .expect("run_threads did not return")
        .unwrap();
    assert!(!r.ok, "{r}");
    let failure = r.failure.as_deref().unwrap();
    assert!(failure.contains("timed out after 300ms"), "{failure}");
    assert!(!failure.contains("did not end"), "{failure}");
    assert!(failure.contains("`c` not blocked in IPC"), "{failure}");
    for p in &r.processes {
        assert!(p.status.starts_with("timed out: "), "{r}");
    }
}
