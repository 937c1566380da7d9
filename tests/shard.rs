//! `mkipc explore --shard i/n` and `--merge`: the shards of a search, each
//! writing its JSON report, merge into the verdict and the distinct
//! failures of one unsplit search, for seeds and for the stateful
//! checker; a failure found on a shard replays from its printed line on
//! one machine; and README's GNU parallel recipe does all that (run when
//! `parallel` is installed, skipped with a message otherwise).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use mkipc::explore::{merge, ExploreOptions, ExploreResult, Report, Shard};

fn mkipc_in(dir: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn mkipc(args: &[&str]) -> (i32, String, String) {
    mkipc_in(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

/// A fresh directory for one test's reports.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn scenario(name: &str, set: &[(&str, i64)]) -> mkipc::scenario::Scenario {
    let path = format!(
        "{}/examples/scenarios/{name}.toml",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap();
    let mut scn = mkipc::scenario::parse(&path, &text).unwrap();
    if !set.is_empty() {
        let over: Vec<(String, i64)> = set.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        scn = mkipc::scenario::parse_with(&path, &text, &over).unwrap();
    }
    scn
}

/// The shards of `opts` on `scn`, each as its report, then merged.
fn sharded(scn: &mkipc::scenario::Scenario, opts: &ExploreOptions, n: u32) -> Report {
    merge(&shard_reports(scn, opts, n)).unwrap()
}

/// The reports of the `n` shards of `opts` on `scn`.
fn shard_reports(scn: &mkipc::scenario::Scenario, opts: &ExploreOptions, n: u32) -> Vec<Report> {
    (0..n)
        .map(|i| {
            let o = ExploreOptions {
                shard: Some(Shard::new(i, n).unwrap()),
                ..opts.clone()
            };
            let result = mkipc::explore::explore(scn, &o).unwrap();
            let s = result.shard.as_ref().expect("a shard's report says which");
            assert_eq!((s.index, s.count), (i, n));
            // Through JSON, as the reports travel between machines.
            let report = Report {
                schema: "mkipc-explore/1".into(),
                scenario: scn.file.clone(),
                result,
            };
            serde_json::from_str(&serde_json::to_string(&report).unwrap()).unwrap()
        })
        .collect()
}

/// The distinct failures: (reason, key) for the checker, (reason, seed)
/// for seeds.
fn distinct(r: &ExploreResult) -> BTreeSet<(String, String)> {
    r.failures
        .iter()
        .map(|f| {
            let key = f.key.clone().unwrap_or_else(|| f.seed.to_string());
            (f.reason.clone(), key)
        })
        .collect()
}

#[test]
fn merged_seed_shards_give_the_verdict_of_one_run() {
    for (name, seeds) in [("deadlock", 300), ("pipeline", 40)] {
        let scn = scenario(name, &[]);
        let opts = ExploreOptions {
            seeds,
            jobs: 2,
            ..Default::default()
        };
        let whole = mkipc::explore::explore(&scn, &opts).unwrap();
        for n in [2, 3] {
            let merged = sharded(&scn, &opts, n).result;
            assert_eq!(merged.merged_shards, Some(n));
            assert_eq!(merged.failure, whole.failure, "{name} in {n} shards");
            assert_eq!(distinct(&merged), distinct(&whole));
            assert_eq!(merged.runs, whole.runs, "{name} in {n} shards");
        }
    }
}

/// A scenario, its `--set` overrides, and whether the reduction is on.
type Case = (&'static str, &'static [(&'static str, i64)], bool);

#[test]
fn merged_stateful_shards_give_the_failures_of_one_search() {
    let cases: [Case; 3] = [
        ("ring-rpc", &[], true),
        (
            "master-worker-select",
            &[("NJOBS", 2), ("NWORKERS", 2)],
            true,
        ),
        ("pipeline-values", &[], false),
    ];
    for (name, set, reduction) in cases {
        let scn = scenario(name, set);
        let opts = ExploreOptions {
            exhaustive: Some(10),
            keep_going: true,
            reduction,
            checker_jobs: Some(2),
            progress: false,
            ..Default::default()
        };
        let whole = mkipc::explore::explore(&scn, &opts).unwrap();
        assert_eq!(whole.engine, "stateful");
        assert!(whole.coverage.as_deref().unwrap().starts_with("complete"));
        for n in [2, 3] {
            let merged = sharded(&scn, &opts, n).result;
            assert_eq!(
                merged.failure.is_some(),
                whole.failure.is_some(),
                "{name} in {n} shards"
            );
            assert_eq!(distinct(&merged), distinct(&whole), "{name} in {n} shards");
            assert_eq!(merged.complete, whole.complete);
            let coverage = merged.coverage.clone().unwrap();
            assert!(coverage.starts_with("complete: the"), "{coverage}");
            // Every state was stored by some shard; overlaps count twice.
            assert!(merged.states >= whole.states, "{name}: {:?}", merged.stats);
            assert!(merged.end_states >= whole.end_states);
        }
    }
}

/// On the command line: each shard writes its report, `--merge` reads
/// them, and the failure found replays on one machine from its line.
#[test]
fn shards_on_the_command_line_merge_and_their_failures_replay() {
    let dir = scratch("cli");
    let mut files = Vec::new();
    for i in 0..2 {
        let shard = format!("{i}/2");
        let (code, out, err) = mkipc(&[
            "explore",
            "examples/scenarios/ring-rpc.toml",
            "--exhaustive",
            "--keep-going",
            "--shard",
            &shard,
            "--json",
        ]);
        assert_eq!(code, 1, "{err}");
        let file = dir.join(format!("shard-{i}.json"));
        std::fs::write(&file, &out).unwrap();
        files.push(file.display().to_string());
    }
    let mut args = vec!["explore", "--merge"];
    args.extend(files.iter().map(String::as_str));
    let (code, out, err) = mkipc(&args);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("merged 2 shard report(s)"), "{out}");
    assert!(out.contains("deadlock: server[0] waits"), "{out}");
    assert!(out.contains("complete: the 2 shards together"), "{out}");
    // Every replay line printed runs on one machine, to the deadlock.
    let replays: Vec<&str> = out
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("mkipc explore") && l.contains("--trail"))
        .collect();
    // One deadlock, whatever order the requests stuck in the ring's queues
    // arrived in across queues (nobody there compares it: the kernel's
    // `cross_queue_order` is off in its states).
    assert_eq!(replays.len(), 1, "{out}");
    for line in replays {
        let trail = line
            .split("--trail '")
            .nth(1)
            .unwrap()
            .trim_end_matches('\'');
        let (code, steps, err) = mkipc(&[
            "explore",
            "examples/scenarios/ring-rpc.toml",
            "--exhaustive",
            "--trail",
            trail,
        ]);
        assert_eq!(code, 1, "{steps}{err}");
        assert!(
            steps.lines().last().unwrap().starts_with("ends: deadlock"),
            "{steps}"
        );
    }
    // The JSON of the merge: the same schema, every failure's line.
    args.push("--json");
    let (code, json, _) = mkipc(&args);
    assert_eq!(code, 1);
    let merged: Report = serde_json::from_str(&json).unwrap();
    assert_eq!(merged.result.failures.len(), 1);
    assert!(merged
        .result
        .failures
        .iter()
        .all(|f| f.replay_command.contains("--trail")));
}

#[test]
fn a_seed_shard_failure_replays_with_its_line() {
    let (code, out, _) = mkipc(&[
        "explore",
        "examples/scenarios/deadlock.toml",
        "--seeds",
        "200",
        "--shard",
        "1/3",
        "--json",
    ]);
    assert_eq!(code, 1, "{out}");
    let report: Report = serde_json::from_str(&out).unwrap();
    let f = report.result.failure.unwrap();
    assert_eq!(f.seed % 3, 1, "shard 1/3 runs the seeds 1, 4, 7, ...");
    let cmd = f.replay_command;
    let seed = cmd.split("--seed ").nth(1).unwrap().to_string();
    let (code, out, err) = mkipc(&["run", "examples/scenarios/deadlock.toml", "--seed", &seed]);
    assert_ne!(code, 0, "{out}{err}");
    assert!(format!("{out}{err}").contains("deadlock"), "{out}{err}");
}

#[test]
fn bad_shards_and_bad_merges_are_refused() {
    let dir = scratch("bad");
    for bad in ["2/2", "1/0", "a/b", "3"] {
        let (code, _, err) = mkipc(&["explore", "deadlock", "--shard", bad]);
        assert_eq!(code, 2, "--shard {bad}: {err}");
    }
    // The stateless search cannot be split.
    let (code, _, err) = mkipc(&[
        "explore",
        "examples/scenarios/deadlock.toml",
        "--exhaustive",
        "--engine",
        "stateless",
        "--shard",
        "0/2",
    ]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot be split"), "{err}");
    let write = |name: &str, args: &[&str]| {
        let (_, out, _) = mkipc(args);
        let p = dir.join(name);
        std::fs::write(&p, out).unwrap();
        p.display().to_string()
    };
    let a0 = write(
        "a0.json",
        &[
            "explore",
            "examples/scenarios/deadlock.toml",
            "--seeds",
            "20",
            "--shard",
            "0/2",
            "--json",
        ],
    );
    let b1 = write(
        "b1.json",
        &[
            "explore",
            "examples/scenarios/deadlock.toml",
            "--seeds",
            "30",
            "--shard",
            "1/2",
            "--json",
        ],
    );
    let whole = write(
        "whole.json",
        &[
            "explore",
            "examples/scenarios/deadlock.toml",
            "--seeds",
            "20",
            "--json",
        ],
    );
    let junk = dir.join("junk.json");
    std::fs::write(&junk, "not json").unwrap();
    let junk = junk.display().to_string();
    for (files, says) in [
        (vec![a0.as_str()], "missing the report of shard(s) 1/2"),
        (vec![a0.as_str(), b1.as_str()], "of another search"),
        (vec![a0.as_str(), a0.as_str()], "given twice"),
        (vec![whole.as_str()], "not a shard's report"),
        (
            vec![junk.as_str()],
            "not a report of `mkipc explore --json`",
        ),
    ] {
        let mut args = vec!["explore", "--merge"];
        args.extend(files);
        let (code, out, err) = mkipc(&args);
        assert_eq!(code, 2, "{out}{err}");
        assert!(err.contains(says), "{err}");
    }
}

/// README's GNU parallel recipe, as written there, on this machine.
#[test]
fn the_gnu_parallel_recipe_in_readme_works() {
    if Command::new("parallel").arg("--version").output().is_err() {
        println!("skipped: GNU parallel is not installed (Debian package `parallel`)");
        return;
    }
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section = readme
        .split("<!-- recipe: gnu-parallel -->")
        .nth(1)
        .expect("README marks the GNU parallel recipe");
    let script = section
        .split("```sh\n")
        .nth(1)
        .and_then(|s| s.split("```").next())
        .expect("the recipe's shell block");
    let dir = scratch("parallel");
    let bin = Path::new(env!("CARGO_BIN_EXE_mkipc")).parent().unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(script)
        .env("PATH", path)
        .env("HOME", &dir)
        .current_dir(&dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("merged 4 shard report(s)"),
        "{stdout}{stderr}"
    );
    assert!(
        stdout.contains("complete: the 4 shards together"),
        "{stdout}{stderr}"
    );
    assert!(stdout.contains("deadlock"), "{stdout}");
    for i in 0..4 {
        assert!(dir.join(format!("shard-{i}.json")).exists());
    }
    // The merge's exit status is the verdict: 1, a failure was found.
    assert_eq!(out.status.code(), Some(1), "{stdout}{stderr}");
}

/// Reports are files, so `--merge` may be handed anything that parses:
/// figures that overflow when summed, a split whose prefix is larger than
/// the totals, a failing seed outside the search, a shard count of
/// `u32::MAX`. Each is refused with a message, never a panic (an overflow
/// in a sum or a subtraction) nor an allocation sized by the count.
#[test]
fn tampered_reports_are_refused_not_panicked_on() {
    let scn = scenario("deadlock", &[]);
    let stateful = shard_reports(
        &scn,
        &ExploreOptions {
            exhaustive: Some(10),
            keep_going: true,
            progress: false,
            ..Default::default()
        },
        2,
    );
    let seeds = shard_reports(
        &scn,
        &ExploreOptions {
            seeds: 20,
            jobs: 1,
            ..Default::default()
        },
        2,
    );
    assert!(merge(&stateful).is_ok() && merge(&seeds).is_ok());
    type Tamper = fn(&mut Report);
    let cases: [(&str, &[Report], Tamper, &str); 6] = [
        (
            "runs",
            &seeds,
            |r| r.result.runs = u64::MAX,
            "runs overflow",
        ),
        (
            "states",
            &stateful,
            |r| r.result.states = Some(u64::MAX),
            "states overflow",
        ),
        (
            "reduction",
            &stateful,
            |r| {
                if let Some(f) = r.result.reduction.as_mut() {
                    f.expanded = u64::MAX;
                }
            },
            "reduction figures overflow",
        ),
        (
            "prefix",
            &stateful,
            |r| {
                let s = r.result.shard.as_mut().unwrap();
                s.split_depth = Some(3);
                s.prefix_states = u64::MAX / 2;
            },
            "fewer than",
        ),
        (
            "seed",
            &seeds,
            |r| {
                r.result.shard.as_mut().unwrap().seeds = Some((1000, 20));
            },
            "is not one of the search's 20 seeds from 1000",
        ),
        (
            "count",
            &stateful,
            |r| r.result.shard.as_mut().unwrap().count = u32::MAX,
            "missing the report of shard(s) 1/4294967295, 2/4294967295",
        ),
    ];
    for (what, reports, tamper, says) in cases {
        let mut reports = reports.to_vec();
        for r in &mut reports {
            tamper(r);
        }
        if what == "count" {
            reports.truncate(1);
        }
        match merge(&reports) {
            Ok(m) => panic!("{what}: merged: {:?}", m.result.stats),
            Err(e) => assert!(e.contains(says), "{what}: {e}"),
        }
    }
}
