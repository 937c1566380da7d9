//! `mkipc run FILE --backend sim --compare threads|os` (issue 22): the
//! differential run reports where two backends' outcomes differ.

use std::process::Command;

use mkipc::compare::{compare, Side};
use mkipc_sim::trace::EventKind;
use serde_json::Value;

fn mkipc(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_mkipc"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn pipeline() -> mkipc::scenario::Scenario {
    let text = mkipc::bundled::find("pipeline").unwrap().text;
    mkipc::scenario::parse("pipeline.toml", text).unwrap()
}

#[test]
fn a_run_compared_with_itself_is_the_same_and_each_change_is_found() {
    let scn = pipeline();
    let a = Side::sim(&scn, None).unwrap();
    let b = Side::sim(&scn, None).unwrap();
    let c = compare(&a, &b);
    assert!(c.same, "{}", c.render());
    assert!(c
        .rows
        .iter()
        .any(|r| r.what == "raw order of deliveries" && r.compared));

    // One message fewer received on one queue: the totals and the queue row differ.
    let mut fewer = Side::sim(&scn, None).unwrap();
    fewer.result.messages.received -= 1;
    fewer.result.queues[0].received -= 1;
    let c = compare(&a, &fewer);
    assert!(!c.same);
    let differing: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.differs)
        .map(|r| r.what.as_str())
        .collect();
    assert!(differing.contains(&"messages received"), "{differing:?}");
    assert!(
        differing.contains(&"raw sent / received / dropped"),
        "{differing:?}"
    );

    // Two deliveries swapped: only the order differs, and where is said.
    let mut swapped = Side::sim(&scn, None).unwrap();
    let t = swapped.trace.as_mut().unwrap();
    let received: Vec<usize> = t
        .events
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e.kind, EventKind::Received { .. }))
        .map(|(i, _)| i)
        .collect();
    let (i, j) = (received[0], received[1]);
    let (ki, kj) = (t.events[i].kind.clone(), t.events[j].kind.clone());
    let (pi, pj) = (t.events[i].proc, t.events[j].proc);
    t.events[i].kind = kj;
    t.events[i].proc = pj;
    t.events[j].kind = ki;
    t.events[j].proc = pi;
    let c = compare(&a, &swapped);
    let order: Vec<_> = c
        .rows
        .iter()
        .filter(|r| r.what.ends_with("order of deliveries") && r.differs)
        .collect();
    assert!(!c.same && !order.is_empty(), "{}", c.render());
    assert!(
        order[0].left.starts_with("differs at delivery 1"),
        "{:?}",
        order[0]
    );

    // A different verdict.
    let mut failed = Side::sim(&scn, None).unwrap();
    failed.result.ok = false;
    failed.result.deadlock = true;
    let c = compare(&a, &failed);
    let r = c.rows.iter().find(|r| r.what == "result").unwrap();
    assert_eq!(
        (r.left.as_str(), r.right.as_str(), r.differs),
        ("ok", "deadlock", true)
    );
}

#[test]
fn the_command_compares_sim_with_threads_and_os() {
    let (code, out, err) = mkipc(&["run", "pipeline", "--compare", "threads", "--json"]);
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(doc["schema"], "mkipc-compare/1");
    assert_eq!(doc["backends"], serde_json::json!(["sim", "threads"]));
    assert_eq!(doc["same"], true, "{out}");

    let (code, out, err) = mkipc(&[
        "run",
        "pipeline",
        "--backend",
        "sim",
        "--compare",
        "os",
        "--time-scale",
        "0.2",
    ]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("outcome: the same on sim and os"), "{out}");
    assert!(out.contains("raw order of deliveries"), "{out}");
}

#[test]
fn bad_comparisons_are_bad_input() {
    for args in [
        &["--compare", "sim"][..],
        &["--compare", "os", "--backend", "os"],
        &["--compare", "threads", "--trace", "/dev/null"],
        &["--compare", "nowhere"],
    ] {
        let mut a = vec!["run", "pipeline"];
        a.extend_from_slice(args);
        let (code, _, err) = mkipc(&a);
        assert_eq!(code, Some(2), "{args:?}: {err}");
    }
}
