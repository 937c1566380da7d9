//! `mkipc bench --runs N`: medians, and each ratio to its peer as
//! median [min–max] over the runs.

use std::time::Duration;

use mkipc::bench::{render, summarize, BenchLine, Spread};

fn line(mkipc_ns: u64, base_ns: u64) -> BenchLine {
    BenchLine {
        name: "case".into(),
        ops: 1000,
        mkipc: Duration::from_nanos(mkipc_ns * 1000),
        baseline: Some(("peer".into(), Duration::from_nanos(base_ns * 1000))),
        skipped: None,
    }
}

#[test]
fn spread_is_median_min_max() {
    let s = Spread::of(&[4.16, 1.64, 2.27]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.27, 1.64, 4.16));
    let s = Spread::of(&[1.0, 4.0, 2.0, 3.0]).unwrap();
    assert_eq!((s.median, s.min, s.max), (2.5, 1.0, 4.0));
    assert_eq!(Spread::of(&[]), None);
    assert_eq!(Spread::of(&[1.0, f64::NAN]), None);
}

#[test]
fn ratios_are_taken_per_run_and_shown_as_median_min_max() {
    // Three runs of one case: 1.64x, 4.16x and 2.27x to the peer.
    let runs = vec![
        vec![line(164, 100)],
        vec![line(416, 100)],
        vec![line(227, 100)],
    ];
    let rows = summarize(&runs);
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].runs, 3);
    let r = rows[0].ratio.unwrap();
    assert!((r.median - 2.27).abs() < 1e-9 && (r.min - 1.64).abs() < 1e-9);
    assert!((r.max - 4.16).abs() < 1e-9);
    let table = render(&rows);
    assert!(table.contains("2.27x [1.64–4.16]"), "{table}");
    assert!(table.contains("median of 3 run(s)"), "{table}");
}

#[test]
fn a_case_skipped_in_any_run_is_skipped() {
    let mut skipped = line(1, 1);
    skipped.skipped = Some("no queue here".into());
    let rows = summarize(&[vec![line(1, 1)], vec![skipped]]);
    assert_eq!(rows[0].skipped.as_deref(), Some("no queue here"));
    assert!(render(&rows).contains("skipped: no queue here"));
}

#[test]
fn the_command_takes_runs() {
    let mkipc = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_mkipc"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = mkipc(&["bench", "--scale", "0.01", "--runs", "3"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("median of 3 run(s)"), "{text}");
    assert!(text.lines().any(|l| l.contains("x [")), "{text}");
    let out = mkipc(&["bench", "--scale", "0.01", "--runs", "2", "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["runs"], 2);
    assert_eq!(mkipc(&["bench", "--runs", "0"]).status.code(), Some(2));
}
