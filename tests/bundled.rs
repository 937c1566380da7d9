//! The scenarios carried in the binary: every file of examples/scenarios/
//! is bundled, `mkipc scenarios` lists them, `run` finds one by name, and a
//! path always wins over a bundled name.

use std::path::{Path, PathBuf};
use std::process::Command;

fn mkipc(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-bundled-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// examples/scenarios/*.toml as (name, text), sorted.
fn scenario_files() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut files: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| {
            let name = p.file_stem().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    files.sort();
    files
}

#[test]
fn every_scenario_file_is_bundled_as_it_is() {
    let files = scenario_files();
    assert!(files.len() >= 10, "{files:?}");
    let bundled: Vec<(String, String)> = mkipc::bundled::SCENARIOS
        .iter()
        .map(|b| (b.name.to_string(), b.text.to_string()))
        .collect();
    let names = |v: &[(String, String)]| v.iter().map(|f| f.0.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(&bundled),
        names(&files),
        "bundled vs examples/scenarios/"
    );
    assert!(bundled == files, "a bundled scenario differs from its file");
    for b in mkipc::bundled::SCENARIOS {
        mkipc::scenario::parse(&b.file(), b.text)
            .unwrap_or_else(|e| panic!("bundled {} does not parse: {e}", b.name));
    }
}

#[test]
fn scenarios_lists_each_with_its_title() {
    let out = mkipc(&temp_dir("list"), &["scenarios"]);
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().count(), scenario_files().len(), "{text}");
    for (name, body) in scenario_files() {
        let title = toml::from_str::<toml::Table>(&body).unwrap()["name"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            text.lines()
                .any(|l| l.starts_with(&name) && l.trim_end().ends_with(&title)),
            "{name}: {title} not listed in\n{text}"
        );
    }
}

#[test]
fn run_finds_a_bundled_scenario_by_name() {
    let dir = temp_dir("run");
    let out = mkipc(&dir, &["run", "capacity-zero", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["messages"]["received"], 10);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bundled scenario capacity-zero"), "{err}");
    // `explore` too, and `.toml` is optional.
    let out = mkipc(&dir, &["explore", "capacity-zero.toml", "--seeds", "3"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
}

#[test]
fn a_path_wins_over_a_bundled_name() {
    let dir = temp_dir("path");
    // A file called exactly like the bundled scenario, but another model.
    std::fs::write(
        dir.join("capacity-zero"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios/pipeline.toml"),
        )
        .unwrap(),
    )
    .unwrap();
    let out = mkipc(&dir, &["run", "capacity-zero"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("pipeline"), "{text}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("running the file capacity-zero"), "{err}");
}

#[test]
fn an_unknown_name_is_bad_input_with_a_hint() {
    let out = mkipc(&temp_dir("unknown"), &["run", "no-such-scenario"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("mkipc scenarios"), "{err}");
}

/// A search of a bundled scenario prints its replay line with the name
/// errors give the file, `bundled:NAME.toml`; that line, run as printed,
/// found no such file (exit 2) instead of replaying the failure. Each
/// replay line (a run's, which names the scenario as given, a seed
/// search's, the stateful checker's trail) now reproduces the failure
/// (exit 1).
#[test]
fn the_replay_line_of_a_bundled_scenario_replays_it() {
    let dir = temp_dir("replay");
    let exe = env!("CARGO_BIN_EXE_mkipc");
    for (args, marker, command) in [
        (
            &["run", "deadlock", "--seed", "0"][..],
            "replay: ",
            "mkipc run deadlock ",
        ),
        (
            &["explore", "deadlock", "--seeds", "50"][..],
            "replay it with:\n  ",
            "mkipc run 'bundled:deadlock.toml' ",
        ),
        (
            &["explore", "deadlock", "--exhaustive"][..],
            "replay it step by step with:\n  ",
            "mkipc explore 'bundled:deadlock.toml' ",
        ),
    ] {
        let out = mkipc(&dir, args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let at = text
            .find(marker)
            .unwrap_or_else(|| panic!("{args:?}: {text}"))
            + marker.len();
        let line = text[at..].lines().next().unwrap();
        assert!(line.starts_with(command), "{line}");
        let replay = Command::new("sh")
            .arg("-c")
            .arg(format!("{exe} {}", &line["mkipc ".len()..]))
            .current_dir(&dir)
            .output()
            .unwrap();
        assert_eq!(replay.status.code(), Some(1), "{line}: {replay:?}");
        let said = String::from_utf8_lossy(&replay.stdout);
        assert!(said.contains("deadlock"), "{line}: {said}");
    }
}
