//! The run report adds up: on every backend and for every example scenario,
//! the per-process rows sum to the message totals (sent, received, drops),
//! and the per-queue drop column sums to the dropped total, in the text
//! table and in `--json` alike.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn scenarios() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/scenarios");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    files
}

fn run(file: &Path, backend: &str, json: bool) -> Option<String> {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_mkipc"));
    cmd.arg("run").arg(file).args(["--backend", backend]);
    match backend {
        "os" => {
            cmd.args(["--time-scale", "0.1", "--timeout", "1.5"]);
        }
        "threads" => {
            cmd.args(["--timeout", "1.5"]);
        }
        _ => {}
    }
    if json {
        cmd.arg("--json");
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.trim().is_empty() {
        // Refused (a feature the backend lacks): nothing to add up.
        assert_eq!(out.status.code(), Some(2), "{}: {stderr}", file.display());
        assert!(stderr.contains("not available"), "{stderr}");
        return None;
    }
    Some(stdout)
}

fn sum(doc: &Value, table: &str, field: &str) -> u64 {
    doc[table]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[field].as_u64().unwrap())
        .sum()
}

fn check_json(file: &Path, backend: &str) {
    let Some(out) = run(file, backend, true) else {
        return;
    };
    let doc: Value = serde_json::from_str(&out).unwrap();
    let m = &doc["messages"];
    let what = format!("{} on {backend}: {out}", file.display());
    assert_eq!(sum(&doc, "processes", "sent"), m["sent"], "{what}");
    assert_eq!(sum(&doc, "processes", "received"), m["received"], "{what}");
    assert_eq!(sum(&doc, "processes", "drops"), m["dropped"], "{what}");
    assert_eq!(sum(&doc, "queues", "dropped"), m["dropped"], "{what}");
    assert!(sum(&doc, "queues", "sent") <= m["sent"].as_u64().unwrap());
    assert!(sum(&doc, "queues", "received") <= m["received"].as_u64().unwrap());
}

fn check_text(file: &Path, backend: &str) {
    let Some(out) = run(file, backend, false) else {
        return;
    };
    let what = format!("{} on {backend}:\n{out}", file.display());
    let lines: Vec<&str> = out.lines().collect();
    let numbers = |line: &str, skip: usize, n: usize| -> Vec<u64> {
        line.split_whitespace()
            .skip(skip)
            .take(n)
            // `-`: a process whose figures are unknown (killed before it
            // reported), which the totals do not count either.
            .map(|t| match t {
                "-" => 0,
                t => t.parse().unwrap_or_else(|_| panic!("{line:?}")),
            })
            .collect()
    };
    let start = lines
        .iter()
        .position(|l| l.starts_with("process "))
        .unwrap();
    let mut procs = [0u64; 3];
    for l in lines[start + 1..].iter().take_while(|l| !l.is_empty()) {
        for (s, v) in procs.iter_mut().zip(numbers(l, 1, 3)) {
            *s += v;
        }
    }
    let mut queue_drops = 0;
    if let Some(q) = lines.iter().position(|l| l.starts_with("queue ")) {
        for l in lines[q + 1..].iter().take_while(|l| !l.is_empty()) {
            queue_drops += numbers(l, 4, 1)[0];
        }
    }
    let total = lines
        .iter()
        .find_map(|l| l.strip_prefix("messages: "))
        .unwrap();
    // sent, received, dropped, failed sends (then `N lost`, or `lost
    // unknown` when some process's figures are unknown).
    let t: Vec<u64> = total
        .split(", ")
        .take(4)
        .map(|p| p.split(' ').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(procs, [t[0], t[1], t[2]], "sent/received/drops: {what}");
    assert_eq!(queue_drops, t[2], "queue drops: {what}");
}

fn check_backend(backend: &str) {
    for file in scenarios() {
        check_json(&file, backend);
        check_text(&file, backend);
    }
}

// The os backend's runs are slow ones too: text and JSON in two tests.

#[test]
fn rows_add_up_to_the_totals_on_sim() {
    check_backend("sim");
}

// Three scenarios run into the timeout on threads: text and JSON apart.
#[test]
fn rows_add_up_to_the_totals_on_threads_in_json() {
    for file in scenarios() {
        check_json(&file, "threads");
    }
}

#[test]
fn rows_add_up_to_the_totals_on_threads_in_text() {
    for file in scenarios() {
        check_text(&file, "threads");
    }
}

#[test]
fn rows_add_up_to_the_totals_on_os_in_json() {
    for file in scenarios() {
        check_json(&file, "os");
    }
}

#[test]
fn rows_add_up_to_the_totals_on_os_in_text() {
    for file in scenarios() {
        check_text(&file, "os");
    }
}
