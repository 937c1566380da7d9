//! The models of `bench/models/` and `mkipc bench explore`: every scenario
//! file runs with its expected verdict, every Promela twin gives the same
//! verdict under SPIN (when `spin` is installed), and the runner ends,
//! cleans up and prints JSON that parses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use mkipc::bench_explore::{
    mkipc_search, parse_pan, spin_one, Expect, Model, Verdict, MODELS, SCHEMA,
};
use mkipc::explore::{explore, ExploreOptions};
use mkipc::scenario::{self, RunOptions};

const MKIPC: &str = env!("CARGO_BIN_EXE_mkipc");

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/models")
}

/// What each scenario file gives at its default parameters, and whether an
/// exhaustive search of it finishes in a test's time.
fn expected(stem: &str) -> Option<(Expect, bool)> {
    Some(match stem {
        "producer-consumer" => (Expect::Ok, true),
        "pipeline" => (Expect::Ok, true),
        "master-worker" => (Expect::Ok, false),
        "master-worker-buggy" => (Expect::Deadlock, true),
        "ring" => (Expect::Deadlock, true),
        "dining" => (Expect::Deadlock, true),
        _ => return None,
    })
}

fn exhaustive() -> ExploreOptions {
    ExploreOptions {
        exhaustive: Some(1_000_000),
        max_runs: 200_000,
        jobs: 1,
        ..ExploreOptions::default()
    }
}

#[test]
fn every_model_file_runs_with_its_verdict() {
    let mut stems = Vec::new();
    for entry in std::fs::read_dir(models_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            stems.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
    }
    stems.sort();
    assert!(stems.len() >= 6, "{stems:?}");
    for stem in stems {
        let path = models_dir().join(format!("{stem}.toml"));
        let twin = models_dir().join(format!("{stem}.pml"));
        assert!(twin.is_file(), "{stem}.toml has no Promela twin {stem}.pml");
        let (expect, cheap) =
            expected(&stem).unwrap_or_else(|| panic!("{stem}.toml: add its verdict to this test"));
        assert!(
            MODELS.iter().any(|m| m.file == stem),
            "{stem}.toml is not in bench_explore::MODELS"
        );
        let scn = scenario::load(&path).unwrap_or_else(|e| panic!("{e}"));
        match expect {
            Expect::Ok => {
                // Every random schedule is fine...
                for seed in 0..20 {
                    let opts = RunOptions {
                        seed: Some(seed),
                        ..RunOptions::default()
                    };
                    let out = scenario::run_sim(&scn, &opts).unwrap();
                    assert!(
                        out.result.ok,
                        "{stem} seed {seed}: {:?}",
                        out.result.failure
                    );
                }
                // ...and so is every schedule, where that is quick.
                if cheap {
                    let r = explore(&scn, &exhaustive()).unwrap();
                    assert!(r.failure.is_none(), "{stem}: {:?}", r.failure);
                    assert!(r.complete, "{stem}: {:?}", r.coverage);
                }
            }
            Expect::Deadlock => {
                let r = explore(&scn, &exhaustive()).unwrap();
                // Found at once: among the depth-first search's first runs.
                assert!(r.runs <= 100, "{stem}: {} runs", r.runs);
                let f = r
                    .failure
                    .unwrap_or_else(|| panic!("{stem}: no deadlock found"));
                assert!(f.deadlock, "{stem}: {}", f.reason);
            }
        }
    }
}

#[test]
fn ring_deadlock_is_reachable_not_inevitable() {
    let scn = scenario::load(&models_dir().join("ring.toml")).unwrap();
    let mut ok = 0;
    let mut deadlocked = 0;
    for seed in 0..100 {
        let opts = RunOptions {
            seed: Some(seed),
            ..RunOptions::default()
        };
        let out = scenario::run_sim(&scn, &opts).unwrap();
        if out.result.ok {
            ok += 1;
        } else {
            assert!(out.result.deadlock, "seed {seed}: {:?}", out.result.failure);
            deadlocked += 1;
        }
    }
    assert!(ok > 0 && deadlocked > 0, "ok {ok}, deadlocked {deadlocked}");
}

#[test]
fn buggy_master_worker_deadlocks_at_capacity_1_not_2() {
    let at = |cap: i64| {
        let text = std::fs::read_to_string(models_dir().join("master-worker-buggy.toml")).unwrap();
        let scn = scenario::parse_with("buggy.toml", &text, &[("CAP".into(), cap)]).unwrap();
        explore(&scn, &exhaustive()).unwrap()
    };
    assert!(at(1).failure.is_some_and(|f| f.deadlock));
    let two = at(2);
    assert!(two.failure.is_none() && two.complete, "{:?}", two.failure);
}

#[test]
fn dining_ordered_never_deadlocks_on_random_schedules() {
    let text = std::fs::read_to_string(models_dir().join("dining.toml")).unwrap();
    let scn = scenario::parse_with("dining.toml", &text, &[("ORDERED".into(), 1)]).unwrap();
    let r = explore(
        &scn,
        &ExploreOptions {
            seeds: 200,
            jobs: 1,
            ..ExploreOptions::default()
        },
    )
    .unwrap();
    assert!(r.failure.is_none(), "{:?}", r.failure);
}

#[test]
fn mkipc_search_gives_each_models_verdict_at_its_first_size() {
    for m in MODELS {
        // The ordered philosophers and master-worker do not finish in a
        // test's time with the stateless search (the bench measures them).
        if matches!(m.name, "dining-ordered" | "master-worker") {
            continue;
        }
        let scn = m.scenario(m.start).unwrap();
        let t = mkipc_search(&scn).unwrap();
        let want = match m.expect {
            Expect::Ok => Verdict::Ok,
            Expect::Deadlock => Verdict::Deadlock,
        };
        assert_eq!(t.verdict, want, "{}", m.name);
    }
}

/// SPIN's verdict on `model` at `size`, or `None` (with a message) when
/// spin is not installed.
fn spin_verdict(model: &Model, size: i64) -> Option<Verdict> {
    match spin_one(model, size, Duration::from_secs(30)).unwrap() {
        None => {
            println!(
                "spin not installed: skipping the Promela twin of {}",
                model.name
            );
            None
        }
        Some(t) => Some(t.verdict),
    }
}

fn want(m: &Model) -> Verdict {
    match m.expect {
        Expect::Ok => Verdict::Ok,
        Expect::Deadlock => Verdict::Deadlock,
    }
}

macro_rules! spin_twin {
    ($test:ident, $name:literal, $size:expr) => {
        #[test]
        fn $test() {
            let m = Model::find($name).unwrap();
            if let Some(v) = spin_verdict(m, $size) {
                assert_eq!(v, want(m), "{} at {}={}", m.name, m.param, $size);
            }
        }
    };
}

spin_twin!(spin_producer_consumer, "producer-consumer", 3);
spin_twin!(spin_producer_consumer_cap0, "producer-consumer-cap0", 3);
spin_twin!(spin_producer_consumer_cap10, "producer-consumer-cap10", 3);
spin_twin!(spin_pipeline, "pipeline", 3);
spin_twin!(spin_master_worker, "master-worker", 2);
spin_twin!(spin_master_worker_buggy, "master-worker-buggy", 4);
spin_twin!(spin_ring, "ring", 1);
spin_twin!(spin_dining_naive, "dining-naive", 1);
spin_twin!(spin_dining_ordered, "dining-ordered", 1);

#[test]
fn spin_buggy_master_worker_is_fine_at_capacity_2() {
    let m = Model::find("master-worker-buggy").unwrap();
    let at2 = Model {
        fixed: &[("NW", 1), ("CAP", 2)],
        ..*m
    };
    if let Some(v) = spin_verdict(&at2, 4) {
        assert_eq!(v, Verdict::Ok);
    }
}

#[test]
fn pan_output_is_read() {
    let ok = "State-vector 44 byte, depth reached 52, errors: 0\n       88 states, stored\n        7 states, matched\n       95 transitions (= stored+matched)\npan: elapsed time 0.5 seconds\n\tinvalid end states\t+\n";
    let p = parse_pan(ok);
    assert_eq!(p.states, Some(88));
    assert_eq!(p.transitions, Some(95));
    assert_eq!(p.elapsed, Some(0.5));
    assert_eq!(p.verdict(), Verdict::Ok, "the option list is no verdict");
    let dead = "pan:1: invalid end state (at depth 14)\nState-vector 72 byte, depth reached 15, errors: 1\n       16 states, stored\n";
    assert_eq!(parse_pan(dead).verdict(), Verdict::Deadlock);
    let assert = "pan:1: assertion violated (v==k) (at depth 9)\nerrors: 1\n 3 states, stored\n";
    assert_eq!(parse_pan(assert).verdict(), Verdict::Assertion);
    let deep = "error: max search depth too small\nerrors: 0\n 10 states, stored\n";
    assert!(matches!(parse_pan(deep).verdict(), Verdict::Incomplete(_)));
    assert!(matches!(parse_pan("").verdict(), Verdict::Failed(_)));
}

fn leftovers(pid: u32) -> Vec<String> {
    let prefix = format!("mkipc-bench-explore-{pid}-");
    std::fs::read_dir(std::env::temp_dir())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix))
        .collect()
}

/// Processes whose command line holds `needle`.
fn processes_with(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

#[test]
fn runner_json_parses() {
    let out = Command::new(MKIPC)
        .args([
            "bench",
            "explore",
            "--limit",
            "1",
            "--models",
            "producer-consumer",
            "--max-size",
            "1",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["schema"], SCHEMA);
    assert_eq!(doc["limit_secs"], 1.0);
    let models = doc["models"].as_array().unwrap();
    assert_eq!(models.len(), 1);
    let m = &models[0];
    assert_eq!(m["name"], "producer-consumer");
    let tries = m["tries"].as_array().unwrap();
    // Size 1 takes milliseconds; on a loaded machine a child may still
    // miss the 1 s limit, which the report must then say.
    let check = |tool: &str, largest: &serde_json::Value| {
        let of: Vec<_> = tries.iter().filter(|t| t["tool"] == tool).collect();
        assert_eq!(of.len(), 1, "{tool}: {of:?}");
        for t in &of {
            let kind = t["verdict"]["kind"].as_str().unwrap();
            assert!(kind == "ok" || kind == "timeout", "{tool}: {t}");
        }
        let verified = of.iter().filter(|t| t["verdict"]["kind"] == "ok").count();
        match verified {
            0 => assert!(largest.is_null()),
            n => assert_eq!(largest.as_i64(), Some(n as i64), "{tool}: {of:?}"),
        }
    };
    check("mkipc", &m["mkipc_largest"]);
    if doc["spin"].is_null() {
        println!("spin not installed: the runner measured mkipc only");
        assert!(m["spin_largest"].is_null());
        assert!(!tries.iter().any(|t| t["tool"] == "spin"));
    } else {
        check("spin", &m["spin_largest"]);
        // A finished SPIN try reports the states pan stored.
        assert!(tries
            .iter()
            .filter(|t| t["tool"] == "spin" && t["verdict"]["kind"] == "ok")
            .all(|t| t["states"].as_u64().is_some_and(|n| n > 0)));
    }
}

#[test]
fn a_try_past_the_limit_is_killed_and_leaves_nothing() {
    // The ordered philosophers stop finishing within 0.3 s after a size or
    // two: the child of the first size that does not is killed at the
    // limit, and the sizes before it are what the model verifies.
    let started = Instant::now();
    let child = Command::new(MKIPC)
        .args([
            "bench",
            "explore",
            "--no-spin",
            "--limit",
            "0.3",
            "--models",
            "dining-ordered",
            "--json",
        ])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(started.elapsed() < Duration::from_secs(10));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let tries = doc["models"][0]["tries"].as_array().unwrap();
    let (last, done) = tries.split_last().unwrap();
    assert_eq!(last["verdict"]["kind"], "timeout");
    assert!(
        done.iter().all(|t| t["verdict"]["kind"] == "ok"),
        "{tries:?}"
    );
    match done.last() {
        Some(t) => assert_eq!(doc["models"][0]["mkipc_largest"], t["size"]),
        None => assert!(doc["models"][0]["mkipc_largest"].is_null()),
    }
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    assert!(processes_with("--child dining-ordered").is_empty());
}

#[test]
fn ctrl_c_kills_the_try_and_removes_the_files() {
    let mut child = Command::new(MKIPC)
        .args([
            "bench",
            "explore",
            "--no-spin",
            "--limit",
            "60",
            "--models",
            "master-worker",
        ])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Wait until a try has been running for a while (the small sizes end
    // in milliseconds, one after the other; the larger ones take seconds).
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut running = false;
    while !running && Instant::now() < deadline {
        let seen = !processes_with("--child master-worker").is_empty();
        std::thread::sleep(Duration::from_millis(if seen { 200 } else { 20 }));
        running = seen && !processes_with("--child master-worker").is_empty();
    }
    assert!(running, "no try started");
    // SAFETY: `pid` is our child, not yet waited for.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
    let started = Instant::now();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert!(started.elapsed() < Duration::from_secs(3));
    assert!(leftovers(pid).is_empty(), "{:?}", leftovers(pid));
    assert!(processes_with("--child master-worker").is_empty());
}

#[test]
fn help_names_every_model_and_bad_options_exit_2() {
    let help = Command::new(MKIPC)
        .args(["bench", "explore", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout).replace('\n', " ");
    for m in MODELS {
        assert!(help.contains(m.name), "--help does not name {}", m.name);
    }
    for args in [
        &["--limit", "0"][..],
        &["--limit", "-1"],
        &["--limit", "nan"],
        &["--models", "nope"],
    ] {
        let out = Command::new(MKIPC)
            .args(["bench", "explore", "--no-spin"])
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("error"));
    }
}

#[test]
fn render_shows_every_try_and_small_ratios() {
    use mkipc::bench_explore::{render, BenchReport, ModelReport, Tool, Try};
    let t = |tool, size, verdict: Verdict, states| {
        let timeout = verdict == Verdict::Timeout;
        Try {
            tool,
            size,
            verdict,
            states,
            transitions: None,
            runs: (tool == Tool::Mkipc && !timeout).then_some(7),
            secs: if timeout { 20.0 } else { 1.0 },
            compile_secs: None,
        }
    };
    let r = BenchReport {
        schema: SCHEMA,
        limit_secs: 20.0,
        pinned: true,
        spin: Some("Spin Version 6.5.2".into()),
        engine: mkipc::bench_explore::ENGINE,
        models: vec![ModelReport {
            name: "producer-consumer".into(),
            param: "N".into(),
            fixed: vec![("CAP".into(), 2)],
            expect: Expect::Ok,
            tries: vec![
                t(Tool::Spin, 100_000, Verdict::Ok, Some(1_100_000)),
                t(Tool::Spin, 200_000, Verdict::Timeout, None),
                t(Tool::Mkipc, 1, Verdict::Ok, None),
                t(Tool::Mkipc, 2, Verdict::Timeout, None),
            ],
            spin_largest: Some(100_000),
            mkipc_largest: Some(1),
            ratio: Some(1e-5),
            disagree: vec![],
            max_size: 1 << 22,
        }],
    };
    let text = render(&r);
    assert!(
        text.contains("| producer-consumer | N=100000 | ok | 1100000 | 1.10 M | 1.00 s | — |"),
        "{text}"
    );
    assert!(
        text.contains("| producer-consumer | N=2 | — | — | — | — | timeout | — | — | >20 s |"),
        "{text}"
    );
    assert!(
        text.contains("| producer-consumer (CAP=2) | ok | 100000 | 1 | 1.0e-5x | agree |"),
        "{text}"
    );
}

#[test]
fn without_spin_it_says_so_and_measures_mkipc() {
    // A PATH with `taskset` and no `spin`.
    let dir = std::env::temp_dir().join(format!("mkipc-no-spin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if let Some(taskset) = std::env::split_paths(&std::env::var_os("PATH").unwrap())
        .map(|d| d.join("taskset"))
        .find(|p| p.is_file())
    {
        let _ = std::os::unix::fs::symlink(taskset, dir.join("taskset"));
    }
    let run = |json: bool| {
        let mut cmd = Command::new(MKIPC);
        cmd.env("PATH", &dir).args([
            "bench",
            "explore",
            "--limit",
            "5",
            "--models",
            "producer-consumer",
            "--max-size",
            "1",
        ]);
        if json {
            cmd.arg("--json");
        }
        cmd.output().unwrap()
    };
    let text = run(false);
    let json = run(true);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(text.status.success());
    assert!(String::from_utf8_lossy(&text.stderr).contains("spin not installed"));
    let table = String::from_utf8_lossy(&text.stdout);
    assert!(table.contains("spin not installed"), "{table}");
    // SPIN not run; mkipc's checker verifies the model, having stored states.
    let row = table
        .lines()
        .find(|l| l.starts_with("| producer-consumer | N=1 |"))
        .unwrap_or_else(|| panic!("no producer-consumer row: {table}"));
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    assert_eq!(&cells[3..7], ["—", "—", "—", "—"], "{row}");
    assert_eq!(cells[7], "ok", "{row}");
    assert!(cells[8].parse::<u64>().is_ok_and(|n| n > 0), "{row}");
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(doc["spin"].is_null());
    assert_eq!(doc["models"][0]["mkipc_largest"], 1);
    assert!(doc["models"][0]["spin_largest"].is_null());
}
