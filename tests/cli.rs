//! Smoke tests of the binary itself (the rest is tested in-process).

use std::process::Command;

fn mkipc(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

#[test]
fn run_json_and_exit_codes() {
    let out = mkipc(&["run", "examples/scenarios/capacity-zero.toml", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["messages"]["received"], 10);

    let out = mkipc(&["run", "examples/scenarios/ownership.toml"]);
    assert_eq!(out.status.code(), Some(1), "a failed invariant exits 1");

    let dir = std::env::temp_dir().join(format!("mkipc-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("bad.toml");
    std::fs::write(&bad, "[[mailbox]]\nname = \"m\"\ncapacity = \"lots\"\n").unwrap();
    let out = mkipc(&["run", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.toml:3:12: capacity must be a number"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_command_has_help_with_an_example() {
    for cmd in ["demo", "run", "explore", "bench", "cleanup", "completions"] {
        let out = mkipc(&[cmd, "--help"]);
        assert!(out.status.success(), "{cmd}");
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("Example"),
            "{cmd} --help has no example"
        );
    }
    let out = mkipc(&["completions", "bash"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("mkipc"));
}

fn temp_scenario(name: &str, text: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn assert_no_panic(out: &std::process::Output, what: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{what} panicked:\n{err}");
    assert_ne!(out.status.code(), Some(101), "{what}");
    assert!(out.status.code().is_some(), "{what} died by a signal");
}

#[test]
fn explore_with_absurd_jobs_or_a_last_seed_does_not_panic_or_wrap() {
    let deadlock = "examples/scenarios/deadlock.toml";
    // More threads than the system allows: fewer workers, same answer.
    let out = mkipc(&["explore", deadlock, "--seeds", "8", "--jobs", "1000000"]);
    assert_no_panic(&out, "--jobs 1000000");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("seed 0:"));
    // The last seeds before u64::MAX: exactly those, no wrap-around to 0.
    let out = mkipc(&[
        "explore",
        deadlock,
        "--seeds",
        "5",
        "--first-seed",
        "18446744073709551614",
    ]);
    assert_no_panic(&out, "--first-seed near u64::MAX");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("--seed 18446744073709551614") || stdout.contains("no failure in 2 runs"),
        "{stdout}"
    );
    let out = mkipc(&[
        "explore",
        "examples/scenarios/capacity-zero.toml",
        "--seeds",
        "5",
        "--first-seed",
        "18446744073709551615",
    ]);
    assert_no_panic(&out, "--first-seed u64::MAX");
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("no failure in 1 runs"));
}

#[test]
fn bench_refuses_a_scale_that_is_not_a_positive_number() {
    // 1e300 (or anything past 1000) saturated the message counts at
    // u64::MAX: a suite that never ends.
    for scale in ["nan", "-1", "0", "inf", "1e300", "1000.5"] {
        let out = mkipc(&["bench", &format!("--scale={scale}")]);
        assert_eq!(out.status.code(), Some(2), "--scale={scale}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--scale must be a number > 0"),
            "--scale={scale}"
        );
    }
}

#[test]
fn a_huge_time_scale_on_the_os_backend_does_not_panic() {
    let path = temp_scenario(
        "scale",
        "[[process]]\nname = \"a\"\nscript = \"work 1ms\"\n\n[[fault]]\nkill = \"a\"\nat = \"1ms\"\n",
    );
    let out = mkipc(&[
        "run",
        path.to_str().unwrap(),
        "--backend",
        "os",
        "--time-scale",
        "1e300",
        "--timeout",
        "1",
        "--json",
    ]);
    assert_no_panic(&out, "--time-scale 1e300");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json}");
    assert!(
        json["failure"].as_str().unwrap().contains("timed out"),
        "{json}"
    );
    let left = mkipc::os::leftovers(json["run_id"].as_str().unwrap());
    assert!(left.is_empty(), "{left:?}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// Runs the binary, but fails (and kills it) if it has not ended within
/// `limit`: a regression that hangs fails here instead of hanging the suite.
fn mkipc_within(args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stdout.read_to_end(&mut v);
        v
    });
    let err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = stderr.read_to_end(&mut v);
        v
    });
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("`mkipc {}` still ran after {limit:?}", args.join(" "));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    std::process::Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// A deadlock every schedule reaches: `p` and `q` each wait for the other's
/// mailbox; `s` blocks sending to a full port whose receiver `r` sleeps.
const SURE_DEADLOCK: &str = r#"
name = "a sure deadlock"

[[mailbox]]
name = "a"
capacity = 1

[[mailbox]]
name = "b"
capacity = 1

[[port]]
name = "full"
capacity = 1
receiver = "r"
senders = ["s"]

[[process]]
name = "p"
script = """
receive a
send b
"""

[[process]]
name = "q"
script = """
receive b
send a
"""

[[process]]
name = "s"
script = """
send full
send full
"""

[[process]]
name = "r"
script = """
sleep 3600s
receive full
"""
"#;

#[test]
fn a_deadlock_on_the_threads_backend_times_out_and_names_what_is_blocked() {
    let path = temp_scenario("threads-deadlock", SURE_DEADLOCK);
    let started = std::time::Instant::now();
    let out = mkipc_within(
        &[
            "run",
            path.to_str().unwrap(),
            "--backend",
            "threads",
            "--timeout",
            "1",
            "--json",
        ],
        std::time::Duration::from_secs(30),
    );
    // Released promptly, even the process sleeping for an hour.
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_no_panic(&out, "threads --timeout 1");
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false, "{json}");
    let failure = json["failure"].as_str().unwrap();
    for what in [
        "timed out after 1s with 4 process(es) still running",
        "`p` blocked receiving from mailbox `a`",
        "`q` blocked receiving from mailbox `b`",
        "`s` blocked sending to port `full`",
        "`r` not blocked in IPC (working or sleeping)",
    ] {
        assert!(failure.contains(what), "no `{what}` in: {failure}");
    }
    let procs = json["processes"].as_array().unwrap();
    assert_eq!(procs.len(), 4, "{json}");
    for p in procs {
        assert!(
            p["status"].as_str().unwrap().starts_with("timed out: "),
            "{p}"
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn the_threads_backend_has_a_default_timeout() {
    let path = temp_scenario("threads-default-timeout", SURE_DEADLOCK);
    let out = mkipc_within(
        &["run", path.to_str().unwrap(), "--backend", "threads"],
        std::time::Duration::from_secs(40),
    );
    assert_no_panic(&out, "threads without --timeout");
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("result: FAILED: timed out after 10s"),
        "{stdout}"
    );
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn the_deadlock_example_ends_on_the_threads_backend() {
    // Whether the diners deadlock depends on the OS's schedule: either the
    // run ends well, or it times out and says so; it never hangs.
    let out = mkipc_within(
        &[
            "run",
            "examples/scenarios/deadlock.toml",
            "--backend",
            "threads",
            "--timeout",
            "2",
        ],
        std::time::Duration::from_secs(30),
    );
    assert_no_panic(&out, "deadlock.toml on threads");
    let stdout = String::from_utf8_lossy(&out.stdout);
    match out.status.code() {
        Some(0) => assert!(stdout.contains("result: ok"), "{stdout}"),
        Some(1) => assert!(
            stdout.contains("result: FAILED: timed out after 2s")
                && stdout.contains("blocked receiving from mailbox `forks`"),
            "{stdout}"
        ),
        other => panic!("exit {other:?}:\n{stdout}"),
    }
}

#[test]
fn the_threads_backend_rejects_a_bad_timeout() {
    // 1e30 is refused too; the message said only "> 0", which it is.
    for t in ["0", "-1", "nan", "inf", "1e30"] {
        let out = mkipc_within(
            &[
                "run",
                "examples/scenarios/rpc.toml",
                "--backend",
                "threads",
                &format!("--timeout={t}"),
            ],
            std::time::Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "--timeout={t}");
        assert!(
            String::from_utf8_lossy(&out.stderr)
                .contains("--timeout must be a number of seconds > 0 and below 1e9"),
            "--timeout={t}"
        );
    }
}

/// One process fills a port with 4 messages and a mailbox with 3, then
/// empties both: the same largest lengths on every schedule.
const BURSTS: &str = r#"
name = "never_exceeds on threads"

[[port]]
name = "burst"
capacity = "unbounded"
receiver = "p"
senders = ["p"]

[[mailbox]]
name = "m"
capacity = "unbounded"

[[process]]
name = "p"
script = """
repeat 4
  send burst
end
repeat 4
  receive burst
end
repeat 3
  send m
end
repeat 3
  receive m
end
"""

[invariants]
never_exceeds = { burst = 3, m = 3 }
"#;

#[test]
fn never_exceeds_is_checked_on_the_threads_backend() {
    let path = temp_scenario("threads-never-exceeds", BURSTS);
    let file = path.to_str().unwrap();
    for backend in ["sim", "threads"] {
        let out = mkipc_within(
            &["run", file, "--backend", backend, "--json"],
            std::time::Duration::from_secs(30),
        );
        assert_no_panic(&out, backend);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{backend}: a broken invariant exits 1"
        );
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["ok"], false, "{backend}: {json}");
        let invariants = json["invariants"].as_array().unwrap();
        let by_name = |name: &str| {
            invariants
                .iter()
                .find(|i| i["name"] == name)
                .unwrap_or_else(|| panic!("{backend}: no invariant `{name}` in {json}"))
        };
        assert_eq!(by_name("burst never exceeds 3")["held"], false, "{backend}");
        assert!(
            by_name("burst never exceeds 3")["message"]
                .as_str()
                .unwrap()
                .contains("4 messages"),
            "{backend}: {json}"
        );
        assert_eq!(by_name("m never exceeds 3")["held"], true, "{backend}");
        assert!(
            json["failure"]
                .as_str()
                .unwrap()
                .contains("invariant `burst never exceeds 3` failed"),
            "{backend}: {json}"
        );
    }
    // On threads the queue table shows each queue's largest length.
    let out = mkipc_within(
        &["run", file, "--backend", "threads", "--json"],
        std::time::Duration::from_secs(30),
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let queues = json["queues"].as_array().unwrap();
    let max = |name: &str| queues.iter().find(|q| q["name"] == name).unwrap()["max_len"].clone();
    assert_eq!(max("burst"), 4, "{json}");
    assert_eq!(max("m"), 3, "{json}");
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

/// With parallel jobs, the report of the first failing seed is the same run
/// after run: every seed before it was run, and the count says so (the number
/// of runs that happened to start before the failure was known varied).
#[test]
fn explore_reports_the_same_run_count_whatever_the_jobs_did() {
    let lines: Vec<String> = (0..8)
        .map(|_| {
            let out = mkipc(&[
                "explore",
                "examples/scenarios/deadlock.toml",
                "--seeds",
                "64",
                "--jobs",
                "4",
            ]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            text.lines()
                .find(|l| l.starts_with("found a failing schedule"))
                .unwrap_or_else(|| panic!("no failure found: {text}"))
                .to_string()
        })
        .collect();
    assert!(
        lines
            .iter()
            .all(|l| l == "found a failing schedule after 1 runs, seed 0:"),
        "{lines:?}"
    );
}

/// A pid no process has now (a run "rooted" there is stale).
fn dead_pid() -> u32 {
    (20_000..32_000)
        .rev()
        .find(|p| !std::path::Path::new(&format!("/proc/{p}")).exists())
        .expect("a free pid")
}

#[test]
fn cleanup_reports_what_it_really_did() {
    // Suspect: `mkipc cleanup` printed "removed run" for a regular file named
    // like a run directory, which it did not (and must not) remove.
    let base = if std::path::Path::new("/dev/shm").is_dir() {
        "/dev/shm"
    } else {
        "/tmp"
    };
    let run = format!("{}-0-cl1", dead_pid());
    let path = std::path::PathBuf::from(format!("{base}/mkipc-{run}"));
    std::fs::write(&path, b"not a run directory").unwrap();
    let out = mkipc(&["cleanup"]);
    let still = path.exists();
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(still, "the file is not the registry's to remove");
    assert!(
        !stdout.contains(&format!("removed run {run}")),
        "claims a removal it did not do:\n{stdout}"
    );
    assert!(
        stdout.contains(&format!("kept run {}: not a run directory", path.display())),
        "{stdout}"
    );
    assert_eq!(out.status.code(), Some(1), "something was left");
}

/// A sender and a receiver whose one statement sits inside `depth` nested
/// `repeat 1` blocks.
fn nested_repeats(depth: usize) -> String {
    let wrap = |stmt: &str| "repeat 1\n".repeat(depth) + stmt + "\n" + &"end\n".repeat(depth);
    format!(
        "[[port]]\nname = \"p\"\ncapacity = 1\nreceiver = \"b\"\nsenders = [\"a\"]\n\n\
         [[process]]\nname = \"a\"\nscript = \"\"\"\n{}\"\"\"\n\n\
         [[process]]\nname = \"b\"\nscript = \"\"\"\n{}\"\"\"\n",
        wrap("send p"),
        wrap("receive p")
    )
}

#[test]
fn deeply_nested_blocks_run_on_every_backend_and_too_deep_is_exit_2() {
    // Before: 70 levels crashed the simulator (SIGSEGV on a coroutine
    // stack), 10,000 aborted every backend with a stack overflow.
    let fine = temp_scenario("nested70", &nested_repeats(70));
    let deep = temp_scenario("nested10k", &nested_repeats(10_000));
    let limit = std::time::Duration::from_secs(30);
    for backend in ["sim", "threads", "os"] {
        let out = mkipc_within(
            &[
                "run",
                fine.to_str().unwrap(),
                "--backend",
                backend,
                "--json",
            ],
            limit,
        );
        assert_no_panic(&out, backend);
        assert_eq!(out.status.code(), Some(0), "{backend}: {out:?}");
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(json["messages"]["received"], 1, "{backend}");

        let out = mkipc_within(
            &["run", deep.to_str().unwrap(), "--backend", backend],
            limit,
        );
        assert_no_panic(&out, backend);
        assert_eq!(out.status.code(), Some(2), "{backend}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("nested10k.toml:110:1: blocks nest too deeply: at most 100"),
            "{backend}: {err}"
        );
        assert!(err.contains(" | ^"), "{backend}: no caret: {err}");
    }
    let out = mkipc_within(&["explore", deep.to_str().unwrap(), "--seeds", "2"], limit);
    assert_eq!(out.status.code(), Some(2), "explore: {out:?}");
    let _ = std::fs::remove_dir_all(fine.parent().unwrap());
    let _ = std::fs::remove_dir_all(deep.parent().unwrap());
}

#[test]
fn set_overrides_params_on_run_and_explore() {
    let buggy = "examples/scenarios/master-worker-buggy.toml";
    let limit = std::time::Duration::from_secs(60);
    let out = mkipc_within(&["explore", buggy, "--seeds", "20", "--jobs", "1"], limit);
    assert_eq!(out.status.code(), Some(1), "CAP = 1 deadlocks: {out:?}");
    let out = mkipc_within(
        &[
            "explore", buggy, "--seeds", "50", "--jobs", "1", "--set", "CAP=2",
        ],
        limit,
    );
    assert_eq!(out.status.code(), Some(0), "CAP = 2 does not: {out:?}");
    let out = mkipc_within(&["run", buggy, "--set", "CAP=2", "--set", "NJOBS=5"], limit);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = mkipc_within(&["run", buggy, "--set", "NJOBS=6", "--set", "CAP=2"], limit);
    assert_eq!(
        out.status.code(),
        Some(1),
        "6 > 2*2+1 jobs deadlock: {out:?}"
    );
    for bad in ["CAPS=2", "CAP=two", "CAP"] {
        let out = mkipc_within(&["run", buggy, "--set", bad], limit);
        assert_eq!(out.status.code(), Some(2), "{bad}: {out:?}");
    }
}

#[test]
fn the_new_constructs_run_on_threads_and_os_or_are_refused_before_starting() {
    let limit = std::time::Duration::from_secs(60);
    for file in ["producer-consumer.toml", "master-worker-select.toml"] {
        let path = format!("examples/scenarios/{file}");
        for backend in ["threads", "os"] {
            let out = mkipc_within(
                &["run", &path, "--backend", backend, "--set", "CAP=2"],
                limit,
            );
            let out = if out.status.code() == Some(2) {
                // producer-consumer has no CAP param.
                mkipc_within(&["run", &path, "--backend", backend], limit)
            } else {
                out
            };
            assert_eq!(out.status.code(), Some(0), "{file} on {backend}: {out:?}");
        }
    }
    // A failed assert fails the run on every backend.
    let text = std::fs::read_to_string("examples/scenarios/producer-consumer.toml")
        .unwrap()
        .replace("k = k + 1", "k = k + 2");
    let wrong = temp_scenario("wrong-order", &text);
    for backend in ["sim", "threads", "os"] {
        // The producers then wait forever for room: threads and os end at --timeout.
        let mut args = vec!["run", wrong.to_str().unwrap(), "--backend", backend];
        if backend != "sim" {
            args.extend(["--timeout", "2"]);
        }
        let out = mkipc_within(&args, limit);
        assert_eq!(out.status.code(), Some(1), "{backend}: {out:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.contains("assertion failed: k == next[p]"),
            "{backend}: {stdout}"
        );
    }
    // The os backend cannot tell which queue a select's message came from.
    let two_queues = "[[mailbox]]\nname = \"a\"\ncapacity = 1\n\n[[mailbox]]\nname = \"b\"\ncapacity = 1\n\n\
        [[process]]\nname = \"p\"\nscript = \"\"\"\nsend a 1\nselect\non receive a x\n  exit 0\non receive b y\n  exit 1\nend\n\"\"\"\n";
    let path = temp_scenario("two-queue-select", two_queues);
    let out = mkipc_within(&["run", path.to_str().unwrap(), "--backend", "os"], limit);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr)
        .contains("a `select` receiving from more than one queue"));
    let out = mkipc_within(
        &["run", path.to_str().unwrap(), "--backend", "threads"],
        limit,
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let _ = std::fs::remove_dir_all(wrong.parent().unwrap());
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}

#[test]
fn server_true_is_refused_with_exit_2_by_the_threads_and_os_backends() {
    let text = r#"
name = "a server"
[[mailbox]]
name = "requests"
capacity = 1

[[process]]
name = "server"
server = true
script = """
forever
  receive requests
end
"""

[[process]]
name = "client"
script = "send requests"
"#;
    let path = temp_scenario("server", text);
    let limit = std::time::Duration::from_secs(30);
    let out = mkipc_within(&["run", path.to_str().unwrap()], limit);
    assert_eq!(out.status.code(), Some(0), "sim: {out:?}");
    for backend in ["threads", "os"] {
        let out = mkipc_within(
            &["run", path.to_str().unwrap(), "--backend", backend],
            limit,
        );
        assert_no_panic(&out, backend);
        assert_eq!(out.status.code(), Some(2), "{backend}: {out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        // "`server = true` (or an `end:` label) on `server`" since labels.
        assert!(
            err.contains("`server = true`") && err.contains(" on `server`"),
            "{backend}: {err}"
        );
    }
    let _ = std::fs::remove_dir_all(path.parent().unwrap());
}
