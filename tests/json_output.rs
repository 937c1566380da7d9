//! `--json` on `demo` and `bench`: one stable document each, with the same
//! figures as the human output.

use std::process::Command;

use serde_json::Value;

fn mkipc(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("mkipc-json-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn ms(v: &Value) -> String {
    format!("{:.3} ms", v.as_f64().unwrap())
}

#[test]
fn demo_json_has_the_tables_figures() {
    let dir = temp_dir("demo");
    let out = mkipc(&dir, &["demo", "--json", "--out", "charts"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["schema"], "mkipc-demo/1");
    assert_eq!(doc["seed"], 2024);
    assert_eq!(doc["chart"], "charts/queue-length.svg");
    assert!(dir.join("charts/queue-length.svg").is_file());

    let human = mkipc(&dir, &["demo", "--out", "charts"]);
    assert_eq!(human.status.code(), Some(0));
    let text = String::from_utf8(human.stdout).unwrap();
    let header = format!("seed 2024 | {} messages |", doc["messages"]);
    assert!(text.contains(&header), "{header} not in\n{text}");

    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let cap = row["capacity"].as_str().unwrap();
        let line = text
            .lines()
            .find(|l| l.split_whitespace().next() == Some(cap))
            .unwrap_or_else(|| panic!("no table row for {cap}"));
        let expected = [
            cap.to_string(),
            format!("{:.1}", row["throughput"].as_f64().unwrap()),
            ms(&row["producer_blocked_ms"]),
            format!("{}/{}", row["blocked_sends"], row["received"]),
            ms(&row["consumer_idle_ms"]),
            row["max_queue"].to_string(),
            format!("{:.2}", row["mean_queue"].as_f64().unwrap()),
            ms(&row["mean_latency_ms"]),
        ]
        .join(" ");
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>().join(" "),
            expected,
            "row {cap}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bench_json_and_table_show_the_same_figures() {
    // In-process: one set of measurements, rendered both ways.
    let rows = mkipc::bench::summarize(&mkipc::bench::run_many(0.01, 2));
    let table = mkipc::bench::render(&rows);
    let doc: Value =
        serde_json::from_str(&serde_json::to_string(&mkipc::bench::json(0.01, 2, rows)).unwrap())
            .unwrap();
    assert_eq!(doc["schema"], "mkipc-bench/1");
    assert_eq!(doc["runs"], 2);
    let rows = doc["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 4);
    for row in rows {
        let case = row["case"].as_str().unwrap();
        let line = table
            .lines()
            .find(|l| l.starts_with(case))
            .unwrap_or_else(|| panic!("no table row for {case}:\n{table}"));
        if let Some(why) = row["skipped"].as_str() {
            assert!(line.contains(why), "{line}");
            continue;
        }
        assert_eq!(row["runs"], 2);
        let rest: Vec<&str> = line[case.len()..].split_whitespace().collect();
        assert_eq!(rest[0], row["ops"].to_string(), "{line}");
        let ns = &row["mkipc_ns_per_op"];
        assert_eq!(
            rest[1],
            format!("{:.1}", ns["median"].as_f64().unwrap()),
            "{line}"
        );
        assert!(ns["min"].as_f64() <= ns["median"].as_f64());
        assert!(ns["median"].as_f64() <= ns["max"].as_f64());
        if let Some(base) = row["baseline"].as_str() {
            assert!(line.contains(base), "{line}");
            let b = format!(
                "{:.1}",
                row["baseline_ns_per_op"]["median"].as_f64().unwrap()
            );
            let r = format!("{:.2}x", row["ratio"]["median"].as_f64().unwrap());
            assert!(line.contains(&format!(" {b} ")), "{b} not in {line}");
            assert!(line.contains(&r), "{r} not in {line}");
        } else {
            let rate = format!(
                "{:.2} M ops/s",
                row["mkipc_mops_per_s"]["median"].as_f64().unwrap()
            );
            assert!(line.contains(&rate), "{rate} not in {line}");
        }
    }
}

#[test]
fn bench_json_from_the_command() {
    let dir = temp_dir("bench");
    let out = mkipc(&dir, &["bench", "--scale", "0.01", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let doc: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON document");
    assert_eq!(doc["schema"], "mkipc-bench/1");
    assert_eq!(doc["scale"], 0.01);
    let cases: Vec<&str> = doc["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["case"].as_str().unwrap())
        .collect();
    assert_eq!(cases.len(), 4);
    assert!(cases[0].starts_with("kernel port"), "{cases:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
