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
        "counter-messages.toml", // tests/mech_scenarios.rs
        "deadlock.toml",
        "dining-philosophers.toml",
        "direct-vs-indirect.toml",
        "fan-in-fan-out.toml",
        "fifo.toml", // tests/mech_scenarios.rs
        "master-worker-buggy.toml",
        "master-worker-select.toml",
        "master-worker.toml",
        "mm1k.toml",
        "ownership.toml",
        "pipe-broken.toml",     // tests/mech_scenarios.rs
        "pipe-eof.toml",        // tests/mech_scenarios.rs
        "pipeline-values.toml", // tests/mech_scenarios.rs
        "pipeline.toml",
        "producer-consumer.toml",
        "ring-rpc.toml",
        "rpc.toml",
        "shared-counter.toml", // tests/mech_scenarios.rs
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

fn example_text(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(file);
    std::fs::read_to_string(path).unwrap()
}

fn run_text(text: &str, set: &[(String, i64)]) -> RunResult {
    let scn = scenario::parse_with("inline.toml", text, set).unwrap_or_else(|e| panic!("{e}"));
    scenario::run_sim(&scn, &RunOptions::default())
        .unwrap()
        .result
}

fn explore_text(text: &str, set: &[(String, i64)], seeds: u64) -> mkipc::explore::ExploreResult {
    let scn = scenario::parse_with("inline.toml", text, set).unwrap_or_else(|e| panic!("{e}"));
    let opts = ExploreOptions {
        seeds,
        jobs: 1,
        progress: false,
        ..ExploreOptions::default()
    };
    explore(&scn, &opts).unwrap()
}

#[test]
fn producer_consumer_checks_every_value_in_order() {
    let r = run("producer-consumer.toml");
    assert!(r.ok, "{r}");
    // Two producers, five items and a DONE each.
    assert_eq!(r.messages.received, 12);
    assert_eq!(proc(&r, "producer[0]").sent, 6);
    assert_eq!(proc(&r, "producer[1]").sent, 6);
    // Any size, any schedule.
    let text = example_text("producer-consumer.toml");
    let r = run_text(&text, &[("NITEMS".into(), 20), ("NPRODUCERS".into(), 3)]);
    assert!(r.ok, "{r}");
    assert_eq!(r.messages.received, 63);
    assert!(explore_text(&text, &[], 100).failure.is_none());
}

#[test]
fn a_producer_that_skips_an_item_fails_the_value_check() {
    let text = example_text("producer-consumer.toml").replace("k = k + 1", "k = k + 2");
    let r = run_text(&text, &[]);
    assert!(!r.ok, "{r}");
    let failure = r.failure.unwrap();
    assert!(
        failure.contains("assertion failed: k == next[p] (k = 2, next = ")
            && failure.contains("p = "),
        "{failure}"
    );
    // One item short: the DONE check fails instead.
    let text =
        example_text("producer-consumer.toml").replace("while k < NITEMS", "while k < NITEMS - 1");
    let r = run_text(&text, &[]);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("assertion failed: next[p] == NITEMS (next = "),
        "{r}"
    );
}

#[test]
fn master_worker_select_never_deadlocks_and_checks_results() {
    let r = run("master-worker-select.toml");
    assert!(r.ok, "{r}");
    // Six jobs and two STOPs out, six results back.
    assert_eq!(r.messages.received, 14);
    let text = example_text("master-worker-select.toml");
    for cap in [1, 2] {
        let found = explore_text(&text, &[("CAP".into(), cap)], 60);
        assert!(found.failure.is_none(), "CAP={cap}: {:?}", found.failure);
    }
    // A wrong result fails the master's check.
    let wrong = text.replace("job[1] * job[1])", "job[1] + job[1])");
    let r = run_text(&wrong, &[]);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("assertion failed: r == j * j"),
        "{r}"
    );
}

#[test]
fn the_buggy_master_deadlocks_at_capacity_one_but_not_two() {
    let text = example_text("master-worker-buggy.toml");
    let found = explore_text(&text, &[], 20);
    let failure = found.failure.expect("CAP = 1 deadlocks");
    assert!(failure.deadlock, "{}", failure.reason);
    let found = explore_text(&text, &[("CAP".into(), 2)], 200);
    assert!(found.failure.is_none(), "{:?}", found.failure);
    let r = run("master-worker-buggy.toml");
    assert!(r.deadlock, "{r}");
}

const PQ: &str =
    "[[mailbox]]\nname = \"q\"\ncapacity = 4\n\n[[mailbox]]\nname = \"back\"\ncapacity = 4\n";

fn two(a: &str, b: &str) -> String {
    format!("{PQ}\n[[process]]\nname = \"a\"\nscript = \"\"\"\n{a}\n\"\"\"\n\n[[process]]\nname = \"b\"\nscript = \"\"\"\n{b}\n\"\"\"\n\n[invariants]\nno_message_lost = true\n")
}

#[test]
fn a_pattern_receive_takes_the_first_match_and_keeps_the_others_in_order() {
    let text = two(
        "send q B\nsend q (A, 1)\nsend q C",
        "receive q (A, n)\nassert n == 1\nreceive q x\nassert x == B\nreceive q y\nassert y == C",
    );
    let r = run_text(&text, &[]);
    assert!(r.ok, "{r}");
    assert_eq!(r.messages.received, 3);
    // A message passed over and never taken is lost.
    let text = two("send q B\nsend q A", "receive q A");
    let r = run_text(&text, &[]);
    assert!(!r.ok && r.messages.lost == 1, "{r}");
}

#[test]
fn expect_fails_on_the_wrong_message_naming_it() {
    let text = two("send q (GOT, 7)", "expect q (WANT, _)");
    let r = run_text(&text, &[]);
    let failure = r.failure.unwrap_or_default();
    assert!(
        failure.contains("expect q: the message does not match: got (GOT, 7)"),
        "{failure}"
    );
}

#[test]
fn a_reply_queue_travels_in_a_message() {
    let text = two(
        "send q (REQ, back, 21)\nreceive back v\nassert v == 42",
        "receive q (REQ, r, x)\nsend r x * 2",
    );
    let r = run_text(&text, &[]);
    assert!(r.ok, "{r}");
}

#[test]
fn try_send_runs_its_else_part_when_the_queue_is_full() {
    let text = "[[mailbox]]\nname = \"q\"\ncapacity = 1\n\n[[process]]\nname = \"a\"\nscript = \"\"\"\n\
         full = 0\nrepeat 3\n  try-send q 1 else\n    full = full + 1\n  end\nend\nassert full == 2\nassert full == 3\n\"\"\"\n";
    let r = run_text(text, &[]);
    let failure = r.failure.unwrap_or_default();
    assert!(
        failure.contains("assertion failed: full == 3 (full = 2)"),
        "{failure}"
    );
}

#[test]
fn select_takes_its_timeout_arm_when_nothing_comes() {
    let text = two(
        "sleep 5ms\nsend q LATE",
        "got = 0\nselect\non receive q x\n  got = 1\non timeout 2ms\n  got = 2\nend\nassert got == 2\nreceive q x\nassert x == LATE",
    );
    let r = run_text(&text, &[]);
    assert!(r.ok, "{r}");
    assert_eq!(r.time_ms, 5.0);
}

#[test]
fn if_else_while_and_arrays_compute() {
    let text = two(
        "a = array(5, 0)\ni = 0\nwhile i < 5\n  if i % 2 == 0\n    a[i] = i * i\n  else\n    a[i] = 0 - i\n  end\n  i = i + 1\nend\nassert a == (0, -1, 4, -3, 16)\nassert len(a) == 5 && !(a[1] > 0) || 1 / 0 == 0\nsend q a",
        "receive q (x, _, _, _, y)\nassert x + y == 16",
    );
    let r = run_text(&text, &[]);
    assert!(r.ok, "{r}");
}

#[test]
fn runtime_errors_fail_the_process_with_the_line() {
    for (script, needle) in [
        ("x = 1 / 0", "line 4: `1 / 0`: division by zero"),
        ("x = (1, 2)\ny = x[5]", "index 5 is out of range (length 2)"),
        ("x = array(100000, 0)", "is too large"),
        ("x = 9223372036854775807 + 1", "overflows"),
        ("x = 0\nwhile 1\n  x = x + 1\nend", "endless loop"),
        // Stopped at the loop's `end`, which has no line of its own: the
        // message named line 0, now the statement run before it.
        (
            "repeat 9223372036854775807\n  x = 1\nend",
            "line 5: endless loop",
        ),
    ] {
        let text = format!("[[process]]\nname = \"a\"\nscript = \"\"\"\n{script}\n\"\"\"\n");
        let r = run_text(&text, &[]);
        // A runtime error fails the process (its status), as a failed send does.
        let status = &proc(&r, "a").status;
        assert!(status.contains(needle), "{script}: {status}");
    }
}

#[test]
fn dining_philosophers_deadlock_naively_and_not_when_ordered() {
    let text = example_text("dining-philosophers.toml");
    let found = explore_text(&text, &[], 50);
    let failure = found.failure.expect("the naive order deadlocks");
    assert!(failure.deadlock, "{}", failure.reason);
    let ordered = [("ORDERED".to_string(), 1)];
    let found = explore_text(&text, &ordered, 200);
    assert!(found.failure.is_none(), "{:?}", found.failure);
    let r = run_text(&text, &ordered);
    assert!(r.ok, "{r}");
    // Each philosopher: 2 meals x (2 ACQ + 2 REL) sent, 2 x 2 GRANTED received.
    for i in 0..3 {
        let p = proc(&r, &format!("phil[{i}]"));
        assert_eq!((p.sent, p.received), (8, 4), "phil[{i}]");
    }
    // A fork released by someone else than its holder fails the fork's check.
    let wrong = text.replace(
        "  send second (REL, me)",
        "  send second (REL, r[(id + 1) % 3])",
    );
    assert_ne!(wrong, text);
    let r = run_text(&wrong, &ordered);
    assert!(
        r.failure
            .as_deref()
            .unwrap_or("")
            .contains("assertion failed: holder == who"),
        "{r}"
    );
}

#[test]
fn ring_rpc_deadlock_is_reachable_not_inevitable() {
    let text = example_text("ring-rpc.toml");
    let scn = scenario::parse("ring-rpc.toml", &text).unwrap();
    let (mut ok, mut stuck) = (0, 0);
    for seed in 0..60 {
        let opts = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let r = scenario::run_sim(&scn, &opts).unwrap().result;
        if r.ok {
            ok += 1;
            // Every call was answered with ANS: 3 client calls, up to 3
            // nested ones.
            for i in 0..3 {
                assert_eq!(proc(&r, &format!("client[{i}]")).received, 1, "seed {seed}");
            }
        } else {
            assert!(r.deadlock, "seed {seed}: {r}");
            stuck += 1;
        }
    }
    assert!(ok > 0 && stuck > 0, "ok {ok}, deadlocked {stuck}");
    // The checker finds the ring and names it.
    let opts = ExploreOptions {
        exhaustive: Some(100_000),
        max_runs: 100_000,
        jobs: 1,
        engine: mkipc::explore::Engine::Stateful,
        ..ExploreOptions::default()
    };
    let f = explore(&scn, &opts).unwrap().failure.expect("a deadlock");
    assert!(f.deadlock, "{}", f.reason);
    for name in ["server[0]", "server[1]", "server[2]"] {
        assert!(f.reason.contains(name), "{}", f.reason);
    }
    // A reply that is not ANS fails the caller's `-> ANS` (no nested
    // calls, so no deadlock first).
    let wrong = text
        .replace("  reply ANS", "  reply NAK")
        .replace("call mine (REQ, 1)", "call mine (REQ, 0)");
    let r = run_text(&wrong, &[]);
    assert!(
        r.failure.as_deref().unwrap_or("").contains("got NAK"),
        "{r}"
    );
}

/// A random program for the flattened interpreter, with its reference
/// meaning computed by a plain recursive evaluator.
enum Node {
    Add(i64),
    Echo,
    Repeat(u64, Vec<Node>),
    If(i64, Vec<Node>, Vec<Node>),
    While(u64, usize, Vec<Node>),
}

struct Gen(u64, usize);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn block(&mut self, depth: usize) -> Vec<Node> {
        (0..1 + self.below(3)).map(|_| self.node(depth)).collect()
    }
    fn node(&mut self, depth: usize) -> Node {
        let leaf = depth >= 4 || self.below(3) == 0;
        match if leaf {
            self.below(2)
        } else {
            2 + self.below(3)
        } {
            0 => Node::Add(self.below(7) as i64 - 3),
            1 => Node::Echo,
            2 => Node::Repeat(self.below(4), self.block(depth + 1)),
            3 => Node::If(
                self.below(3) as i64,
                self.block(depth + 1),
                self.block(depth + 1),
            ),
            _ => {
                self.1 += 1;
                Node::While(self.below(4), self.1, self.block(depth + 1))
            }
        }
    }
}

fn reference(nodes: &[Node], n: &mut i64) {
    for node in nodes {
        match node {
            Node::Add(c) => *n += c,
            Node::Echo => {}
            Node::Repeat(k, body) => (0..*k).for_each(|_| reference(body, n)),
            Node::If(t, a, b) => reference(if n.rem_euclid(3) == *t { a } else { b }, n),
            Node::While(k, _, body) => (0..*k).for_each(|_| reference(body, n)),
        }
    }
}

fn render(nodes: &[Node], indent: usize, out: &mut String) {
    let pad = "  ".repeat(indent);
    for node in nodes {
        match node {
            Node::Add(c) => out.push_str(&format!("{pad}n = n + ({c})\n")),
            Node::Echo => out.push_str(&format!(
                "{pad}send q n\n{pad}receive q m\n{pad}assert m == n\n"
            )),
            Node::Repeat(k, body) => {
                out.push_str(&format!("{pad}repeat {k}\n"));
                render(body, indent + 1, out);
                out.push_str(&format!("{pad}end\n"));
            }
            Node::If(t, a, b) => {
                out.push_str(&format!("{pad}if (n % 3 + 3) % 3 == {t}\n"));
                render(a, indent + 1, out);
                out.push_str(&format!("{pad}else\n"));
                render(b, indent + 1, out);
                out.push_str(&format!("{pad}end\n"));
            }
            Node::While(k, c, body) => {
                out.push_str(&format!("{pad}c{c} = 0\n{pad}while c{c} < {k}\n"));
                render(body, indent + 1, out);
                out.push_str(&format!("{pad}  c{c} = c{c} + 1\n{pad}end\n"));
            }
        }
    }
}

#[test]
fn the_flattened_interpreter_agrees_with_a_recursive_reference() {
    let mut gen = Gen(0x2545_F491_4F6C_DD1D, 0);
    for case in 0..150 {
        let program = gen.block(0);
        let mut expected = 0;
        reference(&program, &mut expected);
        let mut body = String::from("n = 0\nm = 0\n");
        render(&program, 0, &mut body);
        body.push_str(&format!("assert n == {expected}\n"));
        let text = format!(
            "[[mailbox]]\nname = \"q\"\ncapacity = 1\n\n[[process]]\nname = \"a\"\nscript = \"\"\"\n{body}\"\"\"\n"
        );
        let r = run_text(&text, &[]);
        assert!(r.ok, "case {case}:\n{body}\n{r}");
    }
}

#[test]
fn a_mailbox_used_only_in_a_select_is_opened_when_the_process_starts() {
    // Before, the select opened it lazily, after its owner had died, and
    // said "not found" instead of naming a dead mailbox, unlike `receive`.
    let text = "[[mailbox]]\nname = \"m\"\ncapacity = 1\nowner = \"o\"\n\n[[process]]\nname = \"o\"\nscript = \"sleep 1ms\"\n\n\
        [[process]]\nname = \"r\"\nscript = \"\"\"\nsleep 2ms\nselect\non receive m x\n  exit 0\nend\n\"\"\"\n";
    let r = run_text(text, &[]);
    let status = &proc(&r, "r").status;
    assert!(status.contains("select: source is dead"), "{status}");
}

/// A server looping forever on a mailbox and a client that makes two
/// requests; `server = {declared}` on the server.
fn forever_server(declared: bool) -> String {
    format!(
        r#"
name = "forever server"
[[mailbox]]
name = "requests"
capacity = 1

[[process]]
name = "server"
server = {declared}
script = """
forever
  receive requests
  work 1ms
end
"""

[[process]]
name = "client"
script = """
repeat 2
  send requests
end
"""
"#
    )
}

#[test]
fn a_declared_server_left_waiting_is_a_valid_end_on_run_and_explore() {
    let ok = scenario::parse("server.toml", &forever_server(true)).unwrap();
    let r = scenario::run_sim(&ok, &RunOptions::default())
        .unwrap()
        .result;
    assert!(r.ok, "{:?}", r.failure);
    assert!(!r.deadlock);
    for exhaustive in [None, Some(20)] {
        let opts = ExploreOptions {
            seeds: 50,
            exhaustive,
            ..ExploreOptions::default()
        };
        let e = explore(&ok, &opts).unwrap();
        assert!(e.failure.is_none(), "{exhaustive:?}: {:?}", e.failure);
    }
    // Without the declaration the same wait is a deadlock.
    let bad = scenario::parse("server.toml", &forever_server(false)).unwrap();
    let r = scenario::run_sim(&bad, &RunOptions::default())
        .unwrap()
        .result;
    assert!(!r.ok && r.deadlock, "{:?}", r.failure);
}

/// One extra rendezvous send: the receiver takes two messages and ends,
/// the sender's third send finds it dead.
fn extra_send(expect_error: bool) -> String {
    format!(
        r#"
name = "one send too many"
[[port]]
name = "q"
capacity = 0
receiver = "receiver"
senders = ["sender"]

[[process]]
name = "receiver"
script = """
repeat 2
  receive q
end
"""

[[process]]
name = "sender"
expect_error = {expect_error}
script = """
repeat 3
  send q
end
"""
"#
    )
}

#[test]
fn a_process_ending_with_an_error_fails_the_run_unless_expected() {
    let bad = scenario::parse("extra.toml", &extra_send(false)).unwrap();
    let r = scenario::run_sim(&bad, &RunOptions::default())
        .unwrap()
        .result;
    assert!(!r.ok);
    let why = r.failure.as_deref().unwrap();
    assert!(why.contains("process sender ended with an error"), "{why}");
    assert!(r.schedule.is_some(), "a replay line");
    let e = explore(&bad, &ExploreOptions::default()).unwrap();
    assert!(e.failure.is_some(), "before: no failure in {} runs", e.runs);
    let exhaustive = ExploreOptions {
        exhaustive: Some(20),
        ..ExploreOptions::default()
    };
    assert!(explore(&bad, &exhaustive).unwrap().failure.is_some());

    let ok = scenario::parse("extra.toml", &extra_send(true)).unwrap();
    let r = scenario::run_sim(&ok, &RunOptions::default())
        .unwrap()
        .result;
    assert!(r.ok, "{:?}", r.failure);
    let e = explore(&ok, &exhaustive).unwrap();
    assert!(e.failure.is_none() && e.complete, "{:?}", e.failure);
}

#[test]
fn the_threads_backend_gives_a_failed_process_the_same_verdict() {
    let timeout = std::time::Duration::from_secs(10);
    let bad = scenario::parse("extra.toml", &extra_send(false)).unwrap();
    let r = scenario::run_threads(&bad, timeout).unwrap();
    assert!(!r.ok, "before: a failed process passed on threads");
    let why = r.failure.as_deref().unwrap();
    assert!(why.contains("process sender ended with an error"), "{why}");
    let ok = scenario::parse("extra.toml", &extra_send(true)).unwrap();
    let r = scenario::run_threads(&ok, timeout).unwrap();
    assert!(r.ok, "{:?}", r.failure);
}
