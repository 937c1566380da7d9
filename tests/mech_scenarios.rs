//! The course's mechanisms in scenario files: pipes and FIFOs (close, end
//! of file, broken pipe), shared variables and locks (the lost update and
//! its fix), and the backend seam's refusals. Each example file's verdict
//! is checked on the simulator and on the stateful checker; value checks
//! are shown to fail when a value is wrong.

use std::path::Path;
use std::process::Command;

use mkipc::scenario::{
    self, check_scenario, Backend, BackendKind, OsBackend, RunError, RunOptions, RunResult,
    Scenario, SimBackend, ThreadsBackend, ThreadsOptions,
};
use mkipc::sim::check::Checker;

fn text(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/scenarios")
        .join(file);
    std::fs::read_to_string(path).unwrap()
}

fn example(file: &str, set: &[(&str, i64)]) -> Scenario {
    let set: Vec<(String, i64)> = set.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    scenario::parse_with(file, &text(file), &set).unwrap_or_else(|e| panic!("{e}"))
}

fn sim(scn: &Scenario) -> RunResult {
    scenario::run_sim(scn, &RunOptions::default())
        .unwrap()
        .result
}

/// The stateful checker's verdict: `None` when every state was explored
/// and none failed, else the first failure's text.
fn checked(scn: &Scenario) -> Option<String> {
    let c = check_scenario(scn, &Checker::new()).unwrap_or_else(|e| panic!("{e}"));
    match c.outcome.failure() {
        Some(f) => Some(f.reason.to_string()),
        None => {
            assert!(c.outcome.is_verified(), "incomplete: {:?}", c.outcome.stats);
            None
        }
    }
}

fn mkipc(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_pipe_delivers_in_order_then_end_of_file_on_every_schedule() {
    let scn = example("pipe-eof.toml", &[]);
    let r = sim(&scn);
    assert!(r.ok, "{r}");
    assert_eq!((r.messages.sent, r.messages.received), (5, 5));
    assert_eq!(r.queues[0].kind, "pipe");
    assert_eq!(checked(&scn), None);
    // A bigger run, and the check that fails when a value is wrong.
    assert!(sim(&example("pipe-eof.toml", &[("N", 9)])).ok);
    let wrong = text("pipe-eof.toml").replace("send p i ", "send p i + 1 ");
    let bad = scenario::parse("wrong.toml", &wrong).unwrap();
    let r = sim(&bad);
    assert!(!r.ok);
    let failure = r.failure.unwrap();
    assert!(
        failure.contains("assertion failed: x == n (x = 1, n = 0)"),
        "{failure}"
    );
    // The checker fails it too (it may name the writer's broken pipe
    // that follows the reader's end).
    let found = checked(&bad).expect("a failure");
    assert!(
        found.contains("assertion failed: x == n") || found.contains("broken pipe"),
        "{found}"
    );
}

#[test]
fn end_of_file_comes_only_when_every_write_end_is_closed() {
    // Two writers: one closes early, the other writes after that; the
    // reader must still get all three values before end of file.
    let text = r#"
[[pipe]]
name = "p"
capacity = 1
reader = "r"
writers = ["a", "b"]

[[process]]
name = "a"
script = """
send p 1
close p
"""

[[process]]
name = "b"
script = """
sleep 1ms
send p 2
send p 3
"""

[[process]]
name = "r"
script = """
n = 0
forever
  receive p x
  n = n + 1
end
assert n == 3
receive p y
assert y == EOF
"""
"#;
    let scn = scenario::parse("two-writers.toml", text).unwrap();
    let r = sim(&scn);
    assert!(r.ok, "{r}");
    assert_eq!(checked(&scn), None);
}

#[test]
fn a_read_at_end_of_file_the_script_does_not_take_fails_the_process() {
    let text = r#"
[[pipe]]
name = "p"
reader = "r"
writers = ["w"]

[[process]]
name = "w"
script = "close p"

[[process]]
name = "r"
script = "receive p"
"#;
    let scn = scenario::parse("eof.toml", text).unwrap();
    let r = sim(&scn);
    assert!(!r.ok);
    let failure = r.failure.unwrap();
    assert!(
        failure.contains("line 13: receive p: end of file: every write end of pipe `p` is closed"),
        "{failure}"
    );
}

#[test]
fn a_write_to_a_pipe_with_no_reader_is_a_broken_pipe() {
    let scn = example("pipe-broken.toml", &[]);
    let r = sim(&scn);
    assert!(r.ok, "{r}");
    let yes = r.processes.iter().find(|p| p.name == "yes").unwrap();
    assert!(
        yes.status
            .contains("broken pipe: the read end of pipe `p` is closed"),
        "{}",
        yes.status
    );
    assert_eq!(checked(&scn), None);
    // Without `expect_error`, the broken pipe fails the run.
    let strict = text("pipe-broken.toml").replace("expect_error = true", "");
    let scn = scenario::parse("strict.toml", &strict).unwrap();
    let r = sim(&scn);
    assert!(!r.ok);
    assert!(r.failure.unwrap().contains("send p: broken pipe"));
    assert!(checked(&scn).unwrap().contains("broken pipe"));
}

#[test]
fn a_fifo_keeps_each_writers_order_between_unrelated_processes() {
    let scn = example("fifo.toml", &[]);
    let r = sim(&scn);
    assert!(r.ok, "{r}");
    assert_eq!(r.queues[0].kind, "fifo");
    assert_eq!(r.messages.received, 6);
    assert_eq!(checked(&scn), None);
    let missing = text("fifo.toml").replace("while k < NLINES\n", "while k < NLINES - 1\n");
    let bad = scenario::parse("missing.toml", &missing).unwrap();
    assert!(sim(&bad)
        .failure
        .unwrap()
        .contains("assertion failed: next[c] == NLINES"));
}

#[test]
fn the_checker_finds_the_lost_update_and_the_lock_fixes_it() {
    let race = example("shared-counter.toml", &[]);
    let found = checked(&race).expect("the lost update");
    assert!(
        found.contains("assertion failed: total == NPROCS * NINC (total = 1)"),
        "{found}"
    );
    // `mkipc explore` (seeds) finds it too, and the CLI says so.
    let (code, out, _) = mkipc(&["explore", "examples/scenarios/shared-counter.toml"]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("assertion failed: total == NPROCS * NINC"),
        "{out}"
    );
    let locked = example("shared-counter.toml", &[("LOCKED", 1)]);
    assert_eq!(checked(&locked), None);
    assert!(sim(&locked).ok);
    let result = sim(&locked);
    let kinds: Vec<&str> = result.queues.iter().map(|q| q.kind.as_str()).collect();
    assert_eq!(kinds, ["mailbox", "shared", "lock"]);
    // The same on threads: shared variables and locks are kernel mailboxes.
    let r = ThreadsBackend
        .run(&locked, &ThreadsOptions::default())
        .unwrap();
    assert!(r.ok, "{r}");
    // Message passing instead of shared memory: no race on any schedule.
    let messages = example("counter-messages.toml", &[]);
    assert!(sim(&messages).ok);
    assert_eq!(checked(&messages), None);
}

#[test]
fn a_lock_order_deadlock_is_a_deadlock() {
    let text = r#"
[[lock]]
name = "a"

[[lock]]
name = "b"

[[process]]
name = "p"
script = """
lock a
lock b
unlock b
unlock a
"""

[[process]]
name = "q"
script = """
lock b
lock a
unlock a
unlock b
"""
"#;
    let scn = scenario::parse("order.toml", text).unwrap();
    let found = checked(&scn).expect("a deadlock");
    assert!(found.starts_with("deadlock"), "{found}");
    let report = scenario::check_topology(&scn);
    assert_eq!(
        report.verdict,
        scenario::Verdict::CyclesPossible,
        "{report}"
    );
    // Unlocking a lock nobody holds fails the process.
    let text = "[[lock]]\nname = \"m\"\n[[process]]\nname = \"p\"\nscript = \"unlock m\"\n";
    let r = sim(&scenario::parse("unlock.toml", text).unwrap());
    assert!(r.failure.unwrap().contains("unlock m") || !r.ok);
}

#[test]
fn a_pipeline_of_pipes_checks_every_value() {
    let scn = example("pipeline-values.toml", &[]);
    let r = sim(&scn);
    assert!(r.ok, "{r}");
    assert_eq!(checked(&scn), None);
    assert!(sim(&example("pipeline-values.toml", &[("N", 10)])).ok);
    let wrong = text("pipeline-values.toml").replace("send b x * x", "send b x * x + 1");
    let bad = scenario::parse("wrong.toml", &wrong).unwrap();
    assert!(sim(&bad)
        .failure
        .unwrap()
        .contains("assertion failed: y == k * k (y = 2, k = 1)"));
}

#[test]
fn misuse_is_an_error_at_its_line_and_column() {
    let base = "[[pipe]]\nname = \"p\"\nreader = \"r\"\nwriters = [\"w\"]\n\
                [[shared]]\nname = \"c\"\n[[lock]]\nname = \"m\"\n\
                [[process]]\nname = \"x\"\nscript = \"exit\"\n\
                [[process]]\nname = \"w\"\nscript = \"exit\"\n\
                [[process]]\nname = \"r\"\nscript = \"SCRIPT\"\n";
    let cases = [
        (
            "send c 1",
            "`c` is a shared variable: read it with `load c x`",
        ),
        ("receive m", "`m` is a lock: take it with `lock m`"),
        ("call p", "process `r` sends to port `p`"),
        ("load p x", "`load p`: `p` is a pipe, not a shared variable"),
        ("lock c", "`lock c`: `c` is a shared, not a lock"),
        ("store c", "write `store SHARED EXPRESSION`"),
        ("load c X", "`X` cannot be assigned"),
        ("close c", "`close c`: `c` is a shared, not a pipe or FIFO"),
        (
            "select\\non receive p\\nexit\\nend",
            "`p` is a pipe: a one-way stream",
        ),
    ];
    for (script, want) in cases {
        let file = base.replace("SCRIPT", script);
        let e = scenario::parse("bad.toml", &file).unwrap_err().to_string();
        assert!(e.contains(want), "{script}: {e}");
        assert!(e.starts_with("bad.toml:"), "{script}: {e}");
    }
    // Only a process holding an end may close it.
    let file = base.replace(
        "name = \"x\"\nscript = \"exit\"",
        "name = \"x\"\nscript = \"close p\"",
    );
    let e = scenario::parse("bad.toml", &file).unwrap_err().to_string();
    assert!(
        e.contains("process `x` holds no end of `p` to close"),
        "{e}"
    );
    let dup = format!("{base}[[fifo]]\nname = \"c\"\nreader = \"r\"\n");
    let e = scenario::parse("bad.toml", &dup).unwrap_err().to_string();
    assert!(e.contains("`c` is declared twice"), "{e}");
}

#[test]
fn each_backend_runs_or_refuses_before_starting() {
    let pipes = example("pipe-eof.toml", &[]);
    let shared = example("shared-counter.toml", &[("LOCKED", 1)]);
    assert_eq!(SimBackend.check(&pipes), Ok(()));
    let refused = ThreadsBackend.check(&pipes).unwrap_err();
    assert_eq!(refused.backend, BackendKind::Threads);
    assert!(refused.to_string().contains("pipe `p`"), "{refused}");
    assert!(matches!(
        ThreadsBackend.run(&pipes, &ThreadsOptions::default()),
        Err(RunError::Unsupported(_))
    ));
    assert_eq!(ThreadsBackend.check(&shared), Ok(()));
    let refused = OsBackend.check(&pipes).unwrap_err();
    assert_eq!(refused.backend, BackendKind::Os);
    assert!(refused.to_string().contains("end of file"), "{refused}");
    assert!(
        refused.to_string().contains("use --backend sim"),
        "{refused}"
    );
    assert_eq!(OsBackend.check(&shared), Ok(()));
    // The CLI: exit 2 with the reason, nothing run.
    for backend in ["threads", "os"] {
        let (code, out, err) = mkipc(&[
            "run",
            "examples/scenarios/pipe-eof.toml",
            "--backend",
            backend,
        ]);
        assert_eq!(code, 2, "{backend}: {out}{err}");
        assert!(err.contains("pipe `p`"), "{backend}: {err}");
        assert!(out.is_empty(), "{backend}: {out}");
    }
}

/// A pipe with `writers` writers, each writing its values (as `(w, v)`)
/// and then closing its end or just ending, and a reader that asserts,
/// for each writer, the values in the order written (the reference
/// model: a FIFO per writer, end of file after the last of all).
fn pipe_model(capacity: usize, writes: &[(Vec<i64>, bool)]) -> String {
    let mut text = format!(
        "[[pipe]]\nname = \"p\"\ncapacity = {capacity}\nreader = \"r\"\nwriters = [{}]\n",
        (0..writes.len())
            .map(|w| format!("\"w{w}\""))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (w, (values, close)) in writes.iter().enumerate() {
        let mut script: Vec<String> = values
            .iter()
            .map(|v| format!("send p ({w}, {v})"))
            .collect();
        if *close {
            script.push("close p".into());
        }
        if script.is_empty() {
            script.push("exit".into());
        }
        text += &format!(
            "[[process]]\nname = \"w{w}\"\nscript = \"\"\"\n{}\n\"\"\"\n",
            script.join("\n")
        );
    }
    // The reader: per writer `w`, `kw` counts the values taken, and each
    // must be the next one that writer wrote.
    let total: usize = writes.iter().map(|(v, _)| v.len()).sum();
    let mut r = vec!["n = 0".to_string()];
    for w in 0..writes.len() {
        r.push(format!("k{w} = 0"));
    }
    r.push("forever".into());
    r.push("  receive p (w, v)".into());
    for (w, (values, _)) in writes.iter().enumerate() {
        r.push(format!("  if w == {w}"));
        for (k, v) in values.iter().enumerate() {
            r.push(format!("    if k{w} == {k}"));
            r.push(format!("      assert v == {v}"));
            r.push("    end".into());
        }
        r.push(format!("    assert k{w} < {}", values.len()));
        r.push(format!("    k{w} = k{w} + 1"));
        r.push("  end".into());
    }
    r.push("  n = n + 1".into());
    r.push("end".into());
    r.push(format!("assert n == {total}"));
    for (w, (values, _)) in writes.iter().enumerate() {
        r.push(format!("assert k{w} == {}", values.len()));
    }
    r.push("receive p last".into());
    r.push("assert last == EOF".into());
    text += &format!(
        "[[process]]\nname = \"r\"\nscript = \"\"\"\n{}\n\"\"\"\n",
        r.join("\n")
    );
    text
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 16,
        failure_persistence: None,
        ..proptest::prelude::ProptestConfig::default()
    })]

    /// On every schedule (the checker) and on a random one (the
    /// simulator), a pipe delivers each writer's values in order, loses
    /// none, and gives end of file only after the last write end closed.
    #[test]
    fn a_pipe_is_a_fifo_per_writer_then_end_of_file(
        capacity in 0usize..3,
        writes in proptest::collection::vec(
            (proptest::collection::vec(-3i64..4, 0..3), proptest::bool::ANY),
            1..3,
        ),
        seed in 0u64..1000,
    ) {
        let text = pipe_model(capacity, &writes);
        let scn = scenario::parse("model.toml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let opts = RunOptions { seed: Some(seed), ..RunOptions::default() };
        let r = scenario::run_sim(&scn, &opts).unwrap().result;
        proptest::prop_assert!(r.ok, "{r}\n{text}");
        proptest::prop_assert_eq!(checked(&scn), None, "{}", text);
    }

    /// The shared counter: with the lock no schedule loses an increment;
    /// without it, two or more adders can lose one, and the checker finds it.
    #[test]
    fn the_lock_makes_every_increment_count(nprocs in 1i64..3, ninc in 1i64..3, locked in 0i64..2) {
        let scn = example("shared-counter.toml", &[("NPROCS", nprocs), ("NINC", ninc), ("LOCKED", locked)]);
        let found = checked(&scn);
        if locked == 1 || nprocs == 1 {
            proptest::prop_assert_eq!(found, None);
        } else {
            let f = found.expect("a lost update");
            proptest::prop_assert!(f.contains("assertion failed: total == NPROCS * NINC"), "{}", f);
        }
    }
}

/// On real processes a shared variable is a one-slot POSIX queue: with the
/// lock, every increment of two processes counts.
#[test]
fn real_processes_share_a_locked_counter() {
    let (code, out, err) = mkipc(&[
        "run",
        "examples/scenarios/shared-counter.toml",
        "--backend",
        "os",
        "--set",
        "LOCKED=1",
        "--set",
        "NINC=20",
        "--time-scale",
        "0.1",
        "--timeout",
        "20",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["ok"], true, "{out}");
    let kinds: Vec<&str> = doc["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["mailbox", "shared", "lock"]);
}
