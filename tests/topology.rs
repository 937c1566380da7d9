//! `mkipc check` / `scenario::check_topology`: the cycles reported on the
//! example scenarios, the command's output and exit codes, and soundness:
//! whenever the simulator finds a deadlock, the check did not call the
//! scenario deadlock-free, and it named a cycle (or a stuck wait) among the
//! processes that were stuck.

use std::collections::BTreeSet;
use std::process::Command;
use std::sync::Arc;

use mkipc::explore::{explore, ExploreOptions};
use mkipc::scenario::{self, check_topology, Scenario, TopologyReport, Verdict};
use mkipc::sim::{FailureReason, Sim};

fn example(name: &str) -> Scenario {
    let path = format!("{}/examples/scenarios/{name}", env!("CARGO_MANIFEST_DIR"));
    scenario::load(std::path::Path::new(&path)).unwrap()
}

fn mkipc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// The processes stuck in the deadlock that replaying `schedule` reaches.
fn stuck_in(scn: &Scenario, schedule: &str) -> Option<BTreeSet<String>> {
    let scn = Arc::new(scn.clone());
    let builder = Sim::builder().replay_str(schedule).ok()?;
    let (sim, _h) = scenario::build_sim(&scn, builder).ok()?;
    stuck_of(sim)
}

fn stuck_of(sim: Sim) -> Option<BTreeSet<String>> {
    match sim.run() {
        Err(f) => match f.reason {
            FailureReason::Deadlock(d) => Some(d.waiting.iter().map(|w| w.name.clone()).collect()),
            _ => None,
        },
        Ok(_) => None,
    }
}

/// What the check must say about a deadlock whose stuck processes are
/// `stuck`: not deadlock-free, and either a cycle among them or a stuck
/// wait of one of them.
fn assert_explains(report: &TopologyReport, stuck: &BTreeSet<String>, text: &str) {
    assert_ne!(
        report.verdict,
        Verdict::DeadlockFree,
        "the check called a deadlocking scenario deadlock-free (stuck: {stuck:?}):\n{text}\n{report}"
    );
    let cycle_inside = report
        .cycles
        .iter()
        .any(|c| c.steps.iter().all(|s| stuck.contains(&s.process)));
    let stuck_wait = report
        .stuck_waits
        .iter()
        .any(|w| stuck.contains(&w.process));
    assert!(
        cycle_inside || stuck_wait || !report.complete,
        "no reported cycle lies among the stuck processes {stuck:?}, and no stuck wait is theirs:\n{text}\n{report}"
    );
}

/// Runs `scn` on `seeds` seeds and exhaustively (up to `bound` choice
/// points, `max_runs` runs), checking every deadlock found against the
/// report. Returns whether a deadlock was found.
fn check_against_explorer(scn: &Scenario, seeds: u64, bound: usize, max_runs: u64) -> bool {
    let report = check_topology(scn);
    let text = scn.source.to_string();
    let mut found = false;
    let shared = Arc::new(scn.clone());
    for seed in 0..seeds {
        let Ok((sim, _h)) = scenario::build_sim(&shared, Sim::builder().seed(seed)) else {
            return false;
        };
        if let Some(stuck) = stuck_of(sim) {
            found = true;
            assert_explains(&report, &stuck, &text);
        }
    }
    let opts = ExploreOptions {
        seeds: 0,
        jobs: 1,
        exhaustive: Some(bound),
        // The simulator's own search: its schedules replay on the simulator.
        engine: mkipc::explore::Engine::Stateless,
        max_runs,
        ..Default::default()
    };
    if let Ok(r) = explore(scn, &opts) {
        if let Some(f) = r.failure.filter(|f| f.deadlock) {
            found = true;
            let stuck = stuck_in(scn, &f.schedule).expect("the replay deadlocks again");
            assert_explains(&report, &stuck, &text);
        }
    }
    found
}

#[test]
fn smoke() {
    let text = r#"
[[port]]
name = "p"
capacity = 0
receiver = "b"
senders = ["a"]
[[port]]
name = "q"
capacity = 0
receiver = "a"
senders = ["b"]
[[process]]
name = "a"
script = "send p\nreceive q"
[[process]]
name = "b"
script = "send q\nreceive p"
"#;
    let scn = scenario::parse("cross.toml", text).unwrap();
    let r = check_topology(&scn);
    assert_eq!(r.verdict, Verdict::CyclesPossible);
    assert_eq!(r.cycles.len(), 1, "{r}");
    let c = &r.cycles[0];
    assert_eq!(c.processes(), ["a", "b"]);
    assert_eq!(
        (c.steps[0].op.as_str(), c.steps[0].on.as_str()),
        ("send", "p")
    );
    assert_eq!(c.steps[0].capacity.as_deref(), Some("0"));
    assert_eq!(c.steps[0].line, 14);
    assert_eq!(
        (c.steps[1].op.as_str(), c.steps[1].on.as_str()),
        ("send", "q")
    );
    assert_eq!(
        c.to_string(),
        "`a` → send `p` (capacity 0, line 14) → `b` → send `q` (capacity 0, line 17) → `a`"
    );
    assert!(check_against_explorer(&scn, 20, 8, 1000));
}

#[test]
fn a_producer_and_its_consumer_never_wait_on_each_other_at_once() {
    // `a` (sending) may wait on `b` and `b` (receiving) on `a`, but one
    // queue is never both full and empty: neither edge can hold while its
    // target is blocked, so the graph keeps none.
    let text = r#"
[[mailbox]]
name = "m"
capacity = 1
[[process]]
name = "a"
script = "repeat 3\n  send m\nend"
[[process]]
name = "b"
script = "repeat 3\n  receive m\nend"
"#;
    let scn = scenario::parse("pc.toml", text).unwrap();
    let r = check_topology(&scn);
    assert_eq!(r.waits, 2);
    assert_eq!(r.edges, Some(0));
    assert!(r.cycles.is_empty(), "{r}");
    assert_eq!(r.verdict, Verdict::DeadlockFree, "{r}");
    assert_eq!(r.exit_code(), 0);
    assert!(r.to_string().contains("deadlock-free by topology"));
}

#[test]
fn a_receive_left_without_senders_is_a_stuck_wait_not_deadlock_free() {
    // No cycle, but `b` waits for a fourth message that never comes: the
    // simulator calls that a deadlock, so the check must not say
    // deadlock-free.
    let text = r#"
[[mailbox]]
name = "m"
capacity = 1
[[process]]
name = "a"
script = "repeat 3\n  send m\nend"
[[process]]
name = "b"
script = "repeat 4\n  receive m\nend"
"#;
    let scn = scenario::parse("short.toml", text).unwrap();
    let r = check_topology(&scn);
    assert!(r.cycles.is_empty(), "{r}");
    assert_eq!(r.verdict, Verdict::StuckWaitsPossible, "{r}");
    assert_eq!(r.stuck_waits.len(), 2);
    assert!(
        r.counts
            .as_deref()
            .unwrap()
            .contains("3 sends and 4 receives"),
        "{r}"
    );
    assert!(check_against_explorer(&scn, 4, 4, 100));
}

#[test]
fn a_family_of_thousands_is_answered_at_once() {
    // 4096 diners on one mailbox: millions of possible edges. The check
    // stops building the graph and says cycles are possible (never
    // deadlock-free), quickly.
    let text = r#"
[[mailbox]]
name = "forks"
capacity = 2
[[process]]
name = "diner"
count = 4096
script = "receive forks\nreceive forks\nsend forks\nsend forks"
"#;
    let scn = scenario::parse("many.toml", text).unwrap();
    let t = std::time::Instant::now();
    let r = check_topology(&scn);
    assert!(t.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(r.verdict, Verdict::CyclesPossible);
    assert_eq!(r.edges, None);
    assert!(!r.complete);
    assert!(r.to_string().contains("too many to search"), "{r}");
    // 600 producers and 600 consumers of one queue: dense, but no edge
    // survives the channel-state filter, and the counts balance.
    let text = r#"
[[mailbox]]
name = "q"
capacity = 1
[[process]]
name = "producer"
count = 600
script = "send q"
[[process]]
name = "consumer"
count = 600
script = "receive q"
"#;
    let r = check_topology(&scenario::parse("bip.toml", text).unwrap());
    assert_eq!(r.verdict, Verdict::DeadlockFree, "{r}");
}

#[test]
fn timed_waits_are_no_edges() {
    let r = check_topology(&example("mm1k.toml"));
    assert_eq!(r.waits, 0);
    assert_eq!(r.timed_waits.len(), 1);
    assert_eq!(r.timed_waits[0].process, "server");
    assert_eq!(r.verdict, Verdict::DeadlockFree);
    assert!(r.to_string().contains("timed waits, no edges"), "{r}");
}

#[test]
fn deadlock_example_names_alice_and_bob() {
    let r = check_topology(&example("deadlock.toml"));
    assert_eq!(r.verdict, Verdict::CyclesPossible);
    assert_eq!(r.cycles.len(), 1, "{r}");
    let c = &r.cycles[0];
    assert_eq!(c.processes(), ["alice", "bob"]);
    assert!(c.steps.iter().all(|s| s.op == "receive" && s.on == "forks"));
}

#[test]
fn dining_philosophers_report_the_ring() {
    let r = check_topology(&example("dining-philosophers.toml"));
    assert_eq!(r.verdict, Verdict::CyclesPossible);
    assert!(r.complete);
    // The deadlock: each philosopher holds its left fork and waits for the
    // grant of its right one, whose server waits for the release by its
    // holder, the next philosopher.
    let ring = [
        "fork[0]", "phil[0]", "fork[1]", "phil[1]", "fork[2]", "phil[2]",
    ];
    let c = r
        .cycles
        .iter()
        .find(|c| c.processes() == ring)
        .unwrap_or_else(|| panic!("no cycle {ring:?} in\n{r}"));
    let ops: Vec<(&str, &str)> = c
        .steps
        .iter()
        .map(|s| (s.op.as_str(), s.on.as_str()))
        .collect();
    assert_eq!(
        ops,
        [
            ("receive", "f[0]"),
            ("receive", "r[0]"),
            ("receive", "f[1]"),
            ("receive", "r[1]"),
            ("receive", "f[2]"),
            ("receive", "r[2]")
        ]
    );
    // A philosopher's sends to a variable reach only forks, a fork's only
    // reply mailboxes: no fork waits on another fork.
    assert!(
        r.cycles.iter().all(|c| !c
            .processes()
            .windows(2)
            .any(|w| w[0].starts_with("fork") && w[1].starts_with("fork"))),
        "{r}"
    );
}

#[test]
fn master_worker_buggy_is_the_two_full_queues() {
    let r = check_topology(&example("master-worker-buggy.toml"));
    assert_eq!(r.verdict, Verdict::CyclesPossible);
    assert_eq!(r.cycles.len(), 1, "{r}");
    let c = &r.cycles[0];
    assert_eq!(c.processes(), ["master", "worker"]);
    let ops: Vec<(&str, &str)> = c
        .steps
        .iter()
        .map(|s| (s.op.as_str(), s.on.as_str()))
        .collect();
    assert_eq!(ops, [("send", "jobs"), ("send", "results")]);
    assert_eq!(c.steps[0].capacity.as_deref(), Some("1"));
}

#[test]
fn families_expand_and_set_applies() {
    let path = format!(
        "{}/examples/scenarios/master-worker-select.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let scn = scenario::load_with(std::path::Path::new(&path), &[("NWORKERS".into(), 3)]).unwrap();
    let r = check_topology(&scn);
    assert_eq!(r.processes, 4);
    let names: BTreeSet<&str> = r.cycles.iter().flat_map(|c| c.processes()).collect();
    assert!(names.contains("worker[2]"), "{r}");
    // The select's arm is named with the select's line.
    assert!(r
        .cycles
        .iter()
        .any(|c| c.steps.iter().any(|s| s.select_line.is_some())));
}

/// What the check says of each bundled example. Every one that is
/// deadlock-free is run under seeds and exhaustively: no deadlock.
#[test]
fn every_example_is_sound() {
    let expected = [
        ("capacity-bounded.toml", Verdict::DeadlockFree),
        ("capacity-unbounded.toml", Verdict::DeadlockFree),
        ("capacity-zero.toml", Verdict::DeadlockFree),
        ("counter-messages.toml", Verdict::CyclesPossible),
        ("deadlock.toml", Verdict::CyclesPossible),
        ("dining-philosophers.toml", Verdict::CyclesPossible),
        ("direct-vs-indirect.toml", Verdict::CyclesPossible),
        ("fan-in-fan-out.toml", Verdict::DeadlockFree),
        ("fifo.toml", Verdict::StuckWaitsPossible),
        ("master-worker-buggy.toml", Verdict::CyclesPossible),
        ("master-worker-select.toml", Verdict::CyclesPossible),
        ("master-worker.toml", Verdict::StuckWaitsPossible),
        ("mm1k.toml", Verdict::DeadlockFree),
        ("ownership.toml", Verdict::StuckWaitsPossible),
        ("pipe-broken.toml", Verdict::StuckWaitsPossible),
        ("pipe-eof.toml", Verdict::StuckWaitsPossible),
        ("pipeline-values.toml", Verdict::StuckWaitsPossible),
        ("pipeline.toml", Verdict::DeadlockFree),
        ("producer-consumer.toml", Verdict::StuckWaitsPossible),
        ("ring-rpc.toml", Verdict::CyclesPossible),
        ("rpc.toml", Verdict::CyclesPossible),
        ("shared-counter.toml", Verdict::CyclesPossible),
    ];
    let dir = format!("{}/examples/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".toml"))
        .collect();
    files.sort();
    let listed: Vec<&str> = expected.iter().map(|e| e.0).collect();
    assert_eq!(files, listed, "a new example: add its verdict here");
    for (file, verdict) in expected {
        let scn = example(file);
        let r = check_topology(&scn);
        assert_eq!(r.verdict, verdict, "{file}:\n{r}");
        assert!(r.complete, "{file}");
        let deadlocked = check_against_explorer(&scn, 30, 6, 400);
        if verdict == Verdict::DeadlockFree {
            assert!(!deadlocked, "{file}");
        }
    }
    // The known deadlocks are found, and explained by the cycle.
    for file in ["deadlock.toml", "master-worker-buggy.toml"] {
        assert!(
            check_against_explorer(&example(file), 30, 8, 2000),
            "{file}"
        );
    }
}

#[test]
fn command_text_json_and_exit_codes() {
    let out = mkipc(&["check", "examples/scenarios/pipeline.toml"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("deadlock-free by topology: no process can wait on a cycle"),
        "{text}"
    );

    let out = mkipc(&["check", "examples/scenarios/deadlock.toml"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("1. `alice` → receive `forks` (capacity 2, line 25) → `bob` → receive `forks` (capacity 2, line 37) → `alice`"),
        "{text}"
    );
    assert!(
        text.contains("possible; run `mkipc explore --exhaustive"),
        "{text}"
    );

    // `--set` applies, and `--json` prints one document.
    let out = mkipc(&[
        "check",
        "examples/scenarios/master-worker-buggy.toml",
        "--set",
        "CAP=2",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["schema"], "mkipc-check/1");
    assert_eq!(json["verdict"], "cycles-possible");
    assert_eq!(json["cycles"][0]["steps"][0]["process"], "master");
    assert_eq!(json["cycles"][0]["steps"][0]["capacity"], "2");
    assert_eq!(json["cycles"][0]["steps"][1]["on"], "results");
    assert_eq!(
        json["explore_command"],
        "mkipc explore --exhaustive examples/scenarios/master-worker-buggy.toml --set CAP=2"
    );

    let out = mkipc(&["check", "capacity-zero", "--json"]);
    assert_eq!(out.status.code(), Some(0), "a bundled name works");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["verdict"], "deadlock-free");

    let out = mkipc(&["check", "--help"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("Examples:"));
    let man = String::from_utf8(mkipc(&["man"]).stdout).unwrap();
    assert!(
        man.contains(".TH mkipc-check 1"),
        "no manual page for check"
    );

    let dir = std::env::temp_dir().join(format!("mkipc-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(
        &bad,
        "[[process]]\nname = \"a\"\nscript = \"receive nowhere\"\n",
    )
    .unwrap();
    let out = mkipc(&["check", bad.to_str().unwrap()]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown port or mailbox"));
}

#[test]
fn a_binding_pattern_does_not_match_a_message_without_a_value() {
    // `receive m x` sets aside a message with no value (nothing to bind):
    // the one message sent never matches, and `b` waits forever although
    // the counts balance. Regression: the counting argument took a
    // binding pattern for "any message".
    let text = r#"
[[mailbox]]
name = "m"
capacity = 1
[[process]]
name = "a"
script = "send m"
[[process]]
name = "b"
script = "receive m x"
"#;
    let scn = scenario::parse("bind.toml", text).unwrap();
    let r = check_topology(&scn);
    assert_ne!(r.verdict, Verdict::DeadlockFree, "{r}");
    assert!(check_against_explorer(&scn, 4, 4, 100), "the run deadlocks");
}

#[test]
fn a_flood_past_the_memory_ceiling_is_not_counted_as_safe() {
    // Balanced counts, but two million messages may wait in the unbounded
    // queue: past the kernel's per-queue memory ceiling a send fails, the
    // sender ends early and the receiver waits forever. Regression: the
    // counting argument assumed every send succeeds.
    let text = r#"
[[mailbox]]
name = "q"
capacity = "unbounded"
[[process]]
name = "a"
script = "repeat 2000000\n  send q\nend"
[[process]]
name = "b"
script = "repeat 2000000\n  receive q\nend"
"#;
    let r = check_topology(&scenario::parse("flood.toml", text).unwrap());
    assert_eq!(r.verdict, Verdict::StuckWaitsPossible, "{r}");
    assert!(
        r.counts.as_deref().unwrap().contains("memory ceiling"),
        "{r}"
    );
    // A few thousand are fine.
    let text = text.replace("2000000", "5000");
    let r = check_topology(&scenario::parse("flood.toml", &text).unwrap());
    assert_eq!(r.verdict, Verdict::DeadlockFree, "{r}");
}

#[test]
fn the_readme_example_is_what_the_command_prints() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let after = readme
        .split("`mkipc check FILE` answers")
        .nth(1)
        .expect("README shows `mkipc check`");
    let block = after
        .split("```text\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("an example block");
    let out = mkipc(&["check", "examples/scenarios/deadlock.toml"]);
    let printed = String::from_utf8_lossy(&out.stdout);
    for line in block.lines() {
        assert!(
            printed.lines().any(|l| l == line),
            "README line not printed: {line}\n{printed}"
        );
    }
}

#[test]
fn a_send_right_held_to_hand_on_can_be_used_through_a_variable() {
    // `p` holds a send right to `q` only to hand it to `c`, which it
    // spawns; `send v` with `v = q` still uses it, and then waits on `r`.
    // Regression: sends to a variable reached only the ports whose
    // `senders` name the process, so this cycle was missed.
    let text = r#"
[[port]]
name = "q"
capacity = 0
receiver = "r"
senders = ["c"]
[[mailbox]]
name = "m"
capacity = 0
[[process]]
name = "p"
script = "spawn c\nv = q\nsend v\nsend m"
[[process]]
name = "c"
start = "spawned"
script = "exit 0"
[[process]]
name = "r"
script = "receive m\nreceive q"
"#;
    let scn = scenario::parse("hand-on.toml", text).unwrap();
    let r = check_topology(&scn);
    assert!(r.cycles.iter().any(|c| c.processes() == ["p", "r"]), "{r}");
    assert!(check_against_explorer(&scn, 4, 4, 100), "the run deadlocks");
}

#[test]
fn a_long_chain_of_copies_still_reaches_its_queue() {
    // `v100 = v99`, ..., `v1 = v0`, `v0 = q`, written backwards: the value
    // analysis needs a pass per link, gives up on precision past its pass
    // limit, and must still let `send v100` reach `q`.
    let mut script: Vec<String> = (1..=100)
        .rev()
        .map(|i| format!("v{i} = v{}", i - 1))
        .collect();
    script.push("v0 = q".into());
    script.push("send v100".into());
    script.push("send m".into());
    let text = format!(
        r#"
[[port]]
name = "q"
capacity = 0
receiver = "r"
senders = ["p"]
[[mailbox]]
name = "m"
capacity = 0
[[process]]
name = "p"
script = """
{}
"""
[[process]]
name = "r"
script = "receive m\nreceive q"
"#,
        script.join("\n")
    );
    let scn = scenario::parse("chain.toml", &text).unwrap();
    let r = check_topology(&scn);
    let send = r
        .stuck_waits
        .iter()
        .find(|w| w.process == "p" && w.line == 114)
        .unwrap_or_else(|| panic!("`send v100` is no wait:\n{r}"));
    assert!(send.on.iter().any(|o| o == "send `q`"), "{send:?}");
    assert!(r.cycles.iter().any(|c| c.processes() == ["p", "r"]), "{r}");
}

#[test]
fn a_select_on_both_ends_of_a_rendezvous_can_be_stuck() {
    // `a` offers to send on `q` and to receive from it; with capacity 0 and
    // `b` elsewhere, neither arm can go, and `b` waits for `a`'s `send m`.
    // Regression: the select's two arms were taken to contradict each
    // other (full and empty at once), so `a` was never stuck there and the
    // cycle was dropped.
    let text = r#"
[[mailbox]]
name = "q"
capacity = 0
[[mailbox]]
name = "m"
capacity = 0
[[process]]
name = "a"
script = """
select
on send q
  work 1ms
on receive q
  work 1ms
end
send m
"""
[[process]]
name = "b"
script = "receive m\nsend q"
"#;
    let r = check_topology(&scenario::parse("both-ends.toml", text).unwrap());
    let stuck_at_select = |c: &mkipc::scenario::WaitCycle| {
        c.processes() == ["a", "b"] && c.steps[0].select_line.is_some() && c.steps[1].on == "m"
    };
    assert!(r.cycles.iter().any(stuck_at_select), "{r}");
    // On a queue with room the same select always has an arm that can go.
    let r = check_topology(
        &scenario::parse(
            "both-ends.toml",
            &text.replacen("capacity = 0", "capacity = 1", 1),
        )
        .unwrap(),
    );
    assert!(
        !r.cycles
            .iter()
            .any(|c| c.processes() == ["a", "b"] && c.steps[0].select_line.is_some()),
        "{r}"
    );
}
