//! The trace exporters on the real-time backends (issue 22): `mkipc run
//! --backend threads` and `--backend os` write JSON lines, Mermaid and
//! Perfetto with real timestamps, each read back by a real parser (serde_json; Mermaid's own
//! parser through `tests/tools/mermaid`, skipped with a note when
//! `npm ci --prefix tests/tools/mermaid` has not been run), and the trace
//! agrees with the run's report.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

struct Files {
    jsonl: PathBuf,
    mermaid: PathBuf,
    perfetto: PathBuf,
}

fn files(tag: &str) -> Files {
    let dir = std::env::temp_dir();
    let pid = std::process::id();
    Files {
        jsonl: dir.join(format!("mkipc-tb-{tag}-{pid}.jsonl")),
        mermaid: dir.join(format!("mkipc-tb-{tag}-{pid}.mmd")),
        perfetto: dir.join(format!("mkipc-tb-{tag}-{pid}.json")),
    }
}

/// Runs `scenario` on `backend` with every trace export and `--json`;
/// returns the report and the three files' texts.
fn run(scenario: &str, backend: &str) -> (Value, String, String, String) {
    let f = files(&format!("{backend}-{scenario}"));
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(["run", scenario, "--backend", backend, "--json", "--trace"])
        .arg(&f.jsonl)
        .arg("--mermaid")
        .arg(&f.mermaid)
        .arg("--perfetto")
        .arg(&f.perfetto)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let read = |p: &Path| {
        let t = std::fs::read_to_string(p).unwrap_or_default();
        let _ = std::fs::remove_file(p);
        t
    };
    let texts = (read(&f.jsonl), read(&f.mermaid), read(&f.perfetto));
    assert!(
        out.status.success(),
        "{scenario} on {backend}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is JSON");
    (report, texts.0, texts.1, texts.2)
}

fn mermaid_parse(diagram: &str) -> Option<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/mermaid");
    if !dir.join("node_modules/mermaid").is_dir() {
        eprintln!("mermaid parser check skipped: run `npm ci --prefix tests/tools/mermaid`");
        return None;
    }
    // One file per call: the tests of this binary run in parallel.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let file = std::env::temp_dir().join(format!("mkipc-tb-parse-{}-{n}.mmd", std::process::id()));
    std::fs::write(&file, diagram).unwrap();
    let out = Command::new("node")
        .arg(dir.join("check.mjs"))
        .arg(&file)
        .output();
    let _ = std::fs::remove_file(&file);
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            eprintln!("mermaid parser check skipped: cannot run node: {e}");
            return None;
        }
    };
    assert!(
        out.status.success(),
        "Mermaid rejected the diagram: {}\n{diagram}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(serde_json::from_slice(&out.stdout).expect("the checker prints JSON"))
}

fn check(scenario: &str, backend: &str) {
    let (report, jsonl, mermaid, perfetto) = run(scenario, backend);
    let total = |k: &str| report["messages"][k].as_u64().unwrap();

    // JSON lines: every line parses, times are real (non-zero, in order).
    let events: Vec<Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(!events.is_empty(), "{scenario}: empty trace");
    let times: Vec<u64> = events.iter().map(|e| e["t_ns"].as_u64().unwrap()).collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "{scenario}: times out of order"
    );
    assert!(
        times[times.len() - 1] > 0,
        "{scenario}: no real time passed"
    );
    let count = |ev: &str| events.iter().filter(|e| e["ev"] == ev).count() as u64;
    let delivered = events
        .iter()
        .filter(|e| e["ev"] == "send_completed" && e["outcome"] == "delivered")
        .count() as u64;
    assert_eq!(
        delivered + total("dropped"),
        total("sent"),
        "{scenario}: sends"
    );
    assert_eq!(count("received"), total("received"), "{scenario}: receives");
    let procs = report["processes"].as_array().unwrap().len() as u64;
    assert_eq!(count("exited"), procs, "{scenario}: one exit per process");

    // Perfetto: Chrome trace-event JSON with one named track per process.
    let chrome: Value = serde_json::from_str(&perfetto).expect("Perfetto file is JSON");
    let tev = chrome["traceEvents"].as_array().expect("traceEvents");
    let names = tev.iter().filter(|e| e["name"] == "thread_name").count() as u64;
    assert_eq!(names, procs, "{scenario}: one track per process");

    // Mermaid: what the real parser reads is one arrow per send and receive.
    assert!(mermaid.starts_with("sequenceDiagram\n"));
    if let Some(parsed) = mermaid_parse(&mermaid) {
        let arrows = parsed["messages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| {
                let t = m[2].as_str().unwrap_or("");
                t.starts_with("send ") || t.starts_with("receive ")
            })
            .count() as u64;
        // A call's request and its reply are one arrow each, as on the simulator.
        assert!(arrows >= total("received"), "{scenario}: {arrows} arrows");
    }
}

#[test]
fn threads_traces_parse_and_match_the_report() {
    for scenario in ["rpc", "master-worker", "pipeline"] {
        check(scenario, "threads");
    }
}

#[test]
fn os_traces_parse_and_match_the_report() {
    // Real processes, each writing its own events; `master-worker`'s
    // workers are spawned by the master (grandchildren of the coordinator).
    for scenario in ["rpc", "master-worker", "pipeline"] {
        check(scenario, "os");
    }
}

#[test]
fn the_same_exports_on_the_simulator_pass_the_same_checks() {
    check("rpc", "sim");
}
