//! `mkipc run --backend os`: scenarios on real Linux processes, through the
//! built binary (its children are re-executions of it). Every run is checked
//! to leave nothing behind: no queue or FIFO of its run id, no process.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn mkipc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// Runs `file` on the os backend (fast: work and sleep at a fifth of their
/// durations) and returns the exit code and the JSON report.
fn run_os(file: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "run",
        file,
        "--backend",
        "os",
        "--json",
        "--time-scale",
        "0.2",
    ];
    args.extend_from_slice(extra);
    let out = mkipc(&args);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{file}: no JSON report ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(json["backend"], "os");
    let run = json["run_id"]
        .as_str()
        .expect("an os run reports its run id");
    assert_nothing_left(run);
    (out.status.code(), json)
}

/// No queue or FIFO of the run, no run directory, no process of the run.
fn assert_nothing_left(run: &str) {
    let left = mkipc::os::leftovers(run);
    assert!(left.is_empty(), "run {run} left {left:?}");
    assert!(
        !PathBuf::from(format!("/dev/shm/mkipc-{run}")).exists(),
        "run {run} left its run directory"
    );
    // A child killed with its parent (PR_SET_PDEATHSIG) may take a moment to go.
    let needle = format!("MKIPC_RUN_ID={run}\0");
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let alive = processes_with_env(&needle);
        if alive.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "run {run} left processes {alive:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn processes_with_env(needle: &str) -> Vec<u32> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        // A zombie has an empty environ; it is gone as far as we care.
        if String::from_utf8_lossy(&env).contains(needle) {
            out.push(pid);
        }
    }
    out
}

fn process<'a>(json: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no process {name} in {json}"))
}

#[test]
fn capacity_models_run_on_real_processes() {
    for file in [
        "examples/scenarios/capacity-bounded.toml",
        "examples/scenarios/capacity-unbounded.toml",
        "examples/scenarios/capacity-zero.toml",
    ] {
        let (code, json) = run_os(file, &[]);
        assert_eq!(code, Some(0), "{file}: {json}");
        assert_eq!(json["ok"], true, "{file}");
        assert_eq!(json["messages"]["sent"], 10, "{file}");
        assert_eq!(json["messages"]["received"], 10, "{file}");
        assert_eq!(json["messages"]["lost"], 0, "{file}");
        assert_eq!(process(&json, "producer")["sent"], 10);
        assert_eq!(process(&json, "producer")["status"], "exited(0)");
        assert_eq!(process(&json, "consumer")["received"], 10);
        assert_eq!(json["queues"][0]["received"], 10);
        assert!(json["invariants"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["held"] == true));
    }
    // A bounded(4) POSIX queue never holds more than 4 (sampled).
    let (_, json) = run_os("examples/scenarios/capacity-bounded.toml", &[]);
    assert!(json["queues"][0]["max_len"].as_u64().unwrap() <= 4);
}

#[test]
fn ports_rights_spawn_rpc_and_direct_links_run_on_real_processes() {
    // (file, messages sent = received)
    for (file, n) in [
        ("examples/scenarios/pipeline.toml", 16),
        ("examples/scenarios/rpc.toml", 12),
        ("examples/scenarios/master-worker.toml", 12),
        ("examples/scenarios/direct-vs-indirect.toml", 7),
        ("examples/scenarios/fan-in-fan-out.toml", 12),
    ] {
        let (code, json) = run_os(file, &[]);
        assert_eq!(code, Some(0), "{file}: {json}");
        assert_eq!(json["messages"]["sent"], n, "{file}");
        assert_eq!(json["messages"]["received"], n, "{file}");
    }
    // The master's three spawned workers report through it, each with a status.
    let (_, json) = run_os("examples/scenarios/master-worker.toml", &[]);
    let workers: Vec<_> = json["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"].as_str().is_some_and(|n| n.starts_with("worker#")))
        .collect();
    assert_eq!(workers.len(), 3, "{json}");
    assert!(workers.iter().all(|w| w["status"] == "exited(0)"));
    let done: u64 = workers.iter().map(|w| w["sent"].as_u64().unwrap()).sum();
    assert_eq!(done, 6);
}

fn temp_scenario(name: &str, text: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("mkipc-os-test-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

#[test]
fn unsupported_features_fail_before_anything_starts() {
    let cases = [
        (
            "grants",
            "[[mailbox]]\nname = \"m\"\ncapacity = 1\nsenders = [\"a\"]\n\n\
             [[process]]\nname = \"a\"\nscript = \"send m\"\n\n\
             [[process]]\nname = \"b\"\nscript = \"receive m\"\n",
            "mailbox `m` has access lists (`senders`/`receivers`), which are not available on the os backend: per-process grants",
        ),
        (
            "steps",
            "[[process]]\nname = \"a\"\nscript = \"sleep 1ms\"\n\n\
             [[fault]]\nkill = \"a\"\nstep = 3\n",
            "the fault killing `a` at a step or by chance is not available on the os backend: real processes have no scheduling steps",
        ),
        (
            "spawned-direct",
            "[[process]]\nname = \"a\"\nscript = \"spawn b\\nreceive-from b\"\n\n\
             [[process]]\nname = \"b\"\nstart = \"spawned\"\nscript = \"send-to a\"\n",
            "direct communication between `a` and `b` (line 3) is not available on the os backend",
        ),
    ];
    for (name, text, expected) in cases {
        let (dir, file) = temp_scenario(name, text);
        let started = Instant::now();
        let out = mkipc(&["run", file.to_str().unwrap(), "--backend", "os"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(expected), "{name}: {err}");
        assert!(err.contains("use --backend sim"), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: nothing runs");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{name}: no hang"
        );
        // The same file is fine in the simulator.
        let out = mkipc(&["run", file.to_str().unwrap()]);
        assert_ne!(out.status.code(), Some(2), "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn a_hung_run_is_killed_at_the_timeout_and_leaves_nothing() {
    // `a` and the process it spawns wait forever on a mailbox nobody sends to;
    // `c` fails at once. The run is killed at the timeout, the spawned
    // grandchild with its parent, and every queue goes.
    let (dir, file) = temp_scenario(
        "hang",
        "[[mailbox]]\nname = \"never\"\ncapacity = 2\n\n\
         [[port]]\nname = \"p\"\ncapacity = \"unbounded\"\nreceiver = \"b\"\nsenders = [\"a\"]\n\n\
         [[process]]\nname = \"a\"\nscript = \"send p\\nspawn b\\nreceive never\"\n\n\
         [[process]]\nname = \"b\"\nstart = \"spawned\"\nscript = \"receive p\\nreceive never\"\n\n\
         [[process]]\nname = \"c\"\nscript = \"exit 3\"\n",
    );
    let started = Instant::now();
    let (code, json) = run_os(file.to_str().unwrap(), &["--timeout", "0.5"]);
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(code, Some(1), "{json}");
    assert_eq!(json["ok"], false);
    assert!(
        json["failure"].as_str().unwrap().contains("timed out"),
        "{json}"
    );
    assert_eq!(
        process(&json, "a")["status"],
        "killed (the run timed out)",
        "{json}"
    );
    assert_eq!(process(&json, "c")["status"], "exited(3)");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The run ids of `pid` that still have a run directory or a queue.
fn runs_of(pid: u32) -> Vec<String> {
    let prefix = format!("mkipc-{pid}-");
    let mut runs = Vec::new();
    for dir in ["/dev/shm", "/tmp"] {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&prefix) {
                runs.push(name["mkipc-".len()..].to_string());
            }
        }
    }
    for e in std::fs::read_dir("/dev/mqueue")
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = e.file_name().to_string_lossy().into_owned();
        if let Some(rest) = name.strip_prefix(&prefix) {
            let parts: Vec<&str> = rest.splitn(3, '-').take(2).collect();
            runs.push(format!("{pid}-{}", parts.join("-")));
        }
    }
    runs.sort();
    runs.dedup();
    runs
}

#[test]
fn a_coordinator_killed_by_a_signal_leaves_nothing() {
    // SIGTERM (`kill`), SIGINT (Ctrl-C) and SIGKILL end the `mkipc` process
    // without running its destructors; its system mailbox and run directory
    // must go all the same.
    // A run that always blocks (a receive nobody answers): the deadlock
    // example is only sometimes stuck, and a run that ended by itself before
    // the signal proved nothing (and failed the test under load).
    let dir = std::env::temp_dir().join(format!("mkipc-os-signal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let stuck = dir.join("stuck.toml");
    std::fs::write(
        &stuck,
        "[[mailbox]]\nname = \"forks\"\ncapacity = 2\n\n[[process]]\nname = \"waiter\"\nscript = \"receive forks\"\n",
    )
    .unwrap();
    for signal in ["TERM", "INT", "KILL"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mkipc"))
            .args([
                "run",
                stuck.to_str().unwrap(),
                "--backend",
                "os",
                "--timeout",
                "30",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        let run = loop {
            // The mailbox `forks` exists once the run is set up.
            if let Some(run) = runs_of(pid).into_iter().next() {
                if !mkipc::os::leftovers(&run).is_empty() {
                    break run;
                }
            }
            assert!(Instant::now() < deadline, "{signal}: the run never started");
            std::thread::sleep(Duration::from_millis(20));
        };
        std::thread::sleep(Duration::from_millis(200));
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = child.wait().unwrap();
        assert!(!code.success(), "{signal}");
        let deadline = Instant::now() + Duration::from_secs(3);
        while !runs_of(pid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(runs_of(pid), Vec::<String>::new(), "{signal}: left behind");
        assert_nothing_left(&run);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
