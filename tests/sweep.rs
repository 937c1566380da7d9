//! `mkipc run FILE --sweep capacity=...` (issue 22): one run per capacity
//! with the same seed, side by side, one SVG, and `--json`.
//!
//! The three `capacity-*.toml` examples differ only in the mailbox's
//! capacity (and the bounded one's `never_exceeds`, which holds), so a
//! sweep of the zero one must give, run for run, what `mkipc run --json`
//! gives for each file.

use std::process::Command;

use serde_json::Value;

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

/// What must not depend on how the capacity got there.
fn figures(result: &Value) -> Value {
    serde_json::json!({
        "time_ms": result["time_ms"],
        "steps": result["steps"],
        "seed": result["seed"],
        "processes": result["processes"],
        "queues": result["queues"],
        "messages": result["messages"],
    })
}

#[test]
fn a_sweep_gives_what_each_capacity_gives_on_its_own() {
    let svg = std::env::temp_dir().join(format!("mkipc-sweep-{}.svg", std::process::id()));
    let (code, out, err) = mkipc(&[
        "run",
        "examples/scenarios/capacity-zero.toml",
        "--sweep",
        "capacity=0,4,unbounded",
        "--json",
        "--svg",
        svg.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["schema"], "mkipc-sweep/1");
    assert_eq!(doc["queue"], Value::Null);
    let runs = doc["runs"].as_array().unwrap();
    let caps: Vec<&str> = runs
        .iter()
        .map(|r| r["capacity"].as_str().unwrap())
        .collect();
    assert_eq!(caps, ["0", "4", "unbounded"]);
    for (run, file) in runs.iter().zip(["zero", "bounded", "unbounded"]) {
        let path = format!("examples/scenarios/capacity-{file}.toml");
        let (_, single, err) = mkipc(&["run", &path, "--json"]);
        let single: Value = serde_json::from_str(&single).unwrap_or_else(|e| panic!("{e}: {err}"));
        assert_eq!(figures(&run["result"]), figures(&single), "capacity {file}");
    }
    assert!(runs.iter().all(|r| r["result"]["ok"] == true));

    // One SVG, well-formed, a panel per run.
    let text = std::fs::read_to_string(&svg).unwrap();
    let _ = std::fs::remove_file(&svg);
    let mut reader = quick_xml::Reader::from_str(&text);
    let mut titles = Vec::new();
    let mut in_text = false;
    loop {
        match reader.read_event().expect("well-formed SVG") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) => in_text = e.name().as_ref() == b"text",
            quick_xml::events::Event::Text(t) if in_text => {
                titles.push(t.decode().unwrap().into_owned())
            }
            quick_xml::events::Event::End(_) => in_text = false,
            _ => {}
        }
    }
    for cap in ["zero", "bounded(4)", "unbounded"] {
        let panel = format!("jobs with capacity {cap}: max");
        assert!(
            titles.iter().any(|t| t.starts_with(&panel)),
            "no panel `{panel}` in {titles:?}"
        );
    }
}

#[test]
fn the_table_has_a_column_per_capacity_and_one_queue_can_be_swept() {
    let (code, out, err) = mkipc(&[
        "run",
        "examples/scenarios/master-worker.toml",
        "--sweep",
        "jobs.capacity=0,2,unbounded",
    ]);
    assert_eq!(code, 0, "{err}");
    let head = out.lines().find(|l| l.starts_with("capacity")).expect(&out);
    let cols: Vec<&str> = head.split_whitespace().collect();
    assert_eq!(
        cols,
        ["capacity", "zero", "bounded(2)", "unbounded"],
        "{out}"
    );
    assert!(out.contains("the capacity of queue `jobs`"), "{out}");
    for row in ["result", "sent", "received", "jobs max", "results max"] {
        let line = out.lines().find(|l| l.starts_with(row)).expect(row);
        assert_eq!(line[row.len()..].split_whitespace().count(), 3, "{line}");
    }
}

#[test]
fn bad_sweeps_are_bad_input() {
    for args in [
        &["--sweep", "capacity=x"][..],
        &["--sweep", "nope.capacity=1"],
        &["--sweep", "speed=1"],
        &["--sweep", "capacity=1", "--backend", "threads"],
        &["--sweep", "capacity=1", "--trace", "/dev/null"],
    ] {
        let mut a = vec!["run", "examples/scenarios/master-worker.toml"];
        a.extend_from_slice(args);
        let (code, _, err) = mkipc(&a);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("sweep"), "{args:?}: {err}");
    }
}
