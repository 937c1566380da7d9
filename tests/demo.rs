//! The demo's output is snapshot-tested, and its chart is well-formed XML.
//!
//! To accept a deliberate change of the output:
//! `MKIPC_UPDATE_SNAPSHOTS=1 cargo test -p mkipc --test demo`.

use mkipc::demo::{chart, render, Experiment};

#[test]
fn demo_output_matches_the_snapshot() {
    let exp = Experiment::default();
    let text = render(&exp, &exp.run().unwrap());
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/demo.txt");
    if std::env::var_os("MKIPC_UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .expect("snapshot missing: run with MKIPC_UPDATE_SNAPSHOTS=1");
    assert!(
        text == expected,
        "demo output changed; if intended, run with MKIPC_UPDATE_SNAPSHOTS=1.\n--- got ---\n{text}"
    );
}

#[test]
fn demo_is_deterministic_and_teaches_the_capacity_models() {
    let exp = Experiment::default();
    let a = exp.run().unwrap();
    let b = exp.run().unwrap();
    assert_eq!(render(&exp, &a), render(&exp, &b));
    let zero = &a[0];
    let unbounded = &a[3];
    assert_eq!(zero.max_queue, 0);
    assert!(zero.blocked_sends > 0);
    assert_eq!(unbounded.blocked_sends, 0);
    assert!(unbounded.mean_latency > zero.mean_latency);
    assert!(a[2].throughput() >= zero.throughput());
}

#[test]
fn the_chart_parses_as_xml() {
    let exp = Experiment::default();
    let svg = chart(&exp.run().unwrap());
    let mut reader = quick_xml::Reader::from_str(&svg);
    let mut elements = 0;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Eof) => break,
            Ok(quick_xml::events::Event::Start(_) | quick_xml::events::Event::Empty(_)) => {
                elements += 1
            }
            Ok(_) => {}
            Err(e) => panic!("not well-formed at {}: {e}", reader.buffer_position()),
        }
    }
    assert!(elements > 20);
    assert!(svg.trim_end().ends_with("</svg>"));
}
