//! The Mermaid exporter, checked by Mermaid's own parser.
//!
//! `tests/tools/mermaid/check.mjs` (Node.js, `npm ci --prefix tests/tools/mermaid`,
//! which `.ci/run` does) parses a diagram with the `mermaid` package and prints
//! the participants and messages Mermaid understood. Without Node.js or that
//! install, these tests print why they did not check and pass: the unit checks
//! of the text below still run.

use std::path::PathBuf;
use std::process::Command;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Inherit, Sim};

struct Parsed {
    actors: Vec<(String, String)>,
    /// (from, to, text) of the arrows (notes left out).
    arrows: Vec<(String, String, String)>,
}

fn checker() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/tools/mermaid");
    if !dir.join("node_modules/mermaid").is_dir() {
        eprintln!(
            "mermaid parser check skipped: run `npm ci --prefix tests/tools/mermaid` to enable it"
        );
        return None;
    }
    Some(dir.join("check.mjs"))
}

fn parse(diagram: &str) -> Option<Parsed> {
    let script = checker()?;
    let file = std::env::temp_dir().join(format!(
        "mkipc-mermaid-{}-{:x}.mmd",
        std::process::id(),
        diagram.len() ^ (diagram.as_ptr() as usize)
    ));
    std::fs::write(&file, diagram).unwrap();
    let out = Command::new("node").arg(&script).arg(&file).output();
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
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let actors = v["actors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a[0].as_str().unwrap().to_owned(),
                a[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Mermaid's message types: 0 solid arrow, 24 solid open arrow, 2 note, ...
    let arrows = v["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m[3].as_u64() != Some(2) && m[0].is_string())
        .map(|m| {
            (
                m[0].as_str().unwrap().to_owned(),
                m[1].as_str().unwrap().to_owned(),
                m[2].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Some(Parsed { actors, arrows })
}

fn label_of<'a>(p: &'a Parsed, id: &str) -> &'a str {
    &p.actors.iter().find(|(a, _)| a == id).expect(id).1
}

/// A producer named `end` (a Mermaid keyword) sends three messages through a
/// zero-capacity port whose label holds `#` and `;` to a consumer named `loop`.
fn rendezvous_trace() -> String {
    let mut sim = Sim::builder().seed(1).build();
    let port = sim.port("jobs#1;x", Capacity::Zero).unwrap();
    sim.spawn_with("end", &[Inherit::send(port)], |p| {
        for i in 1..=3 {
            p.work(std::time::Duration::from_millis(1));
            p.send(p.right(0), Message::from_u64(i, i.into()))?;
        }
        Ok(())
    })
    .unwrap();
    sim.spawn_with("loop", &[Inherit::receive(port)], |p| {
        for _ in 0..3 {
            p.receive(p.right(0))?;
            p.work(std::time::Duration::from_millis(2));
        }
        Ok(())
    })
    .unwrap();
    sim.run().unwrap().trace.to_mermaid()
}

#[test]
fn text_never_carries_mermaid_syntax() {
    let d = rendezvous_trace();
    for line in d.lines().skip(1) {
        // A bare `#` starts a Mermaid comment; only entity codes may hold one.
        let without_entities = line.replace("#35;", "").replace("#59;", "");
        assert!(!without_entities.contains('#'), "{line}");
        assert!(!without_entities.contains(';'), "{line}");
    }
    assert!(!d.contains("participant end "), "{d}");
}

#[test]
fn rendezvous_labels_and_order_survive_the_real_parser() {
    let d = rendezvous_trace();
    let Some(p) = parse(&d) else { return };
    assert!(
        p.actors.iter().any(|(_, l)| l == "end") && p.actors.iter().any(|(_, l)| l == "loop"),
        "{:?}",
        p.actors
    );
    assert!(
        p.actors.iter().any(|(_, l)| l == "[jobs#1;x]"),
        "{:?}",
        p.actors
    );
    assert_eq!(
        p.arrows.len(),
        6,
        "three sends, three receives: {:?}",
        p.arrows
    );
    for (i, (from, to, text)) in p.arrows.iter().enumerate() {
        let k = i / 2 + 1;
        // Each send is drawn before its receive, with the whole label.
        let (who, verb) = if i % 2 == 0 {
            (from, "send")
        } else {
            (to, "receive")
        };
        assert!(
            text.starts_with(&format!("{verb} msg {k} (t=")) && text.ends_with(')'),
            "arrow {i}: {text:?} in\n{d}"
        );
        assert_eq!(
            label_of(&p, who),
            if verb == "send" { "end" } else { "loop" }
        );
    }
}

#[test]
fn a_reply_goes_back_to_the_client() {
    let mut sim = Sim::builder().seed(3).build();
    let svc = sim.port("service", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("server", &[Inherit::receive(svc)], |p| {
        for _ in 0..2 {
            let req = p.receive(p.right(0))?;
            p.reply(&req, Message::new(10 + req.id, b"answer"))?;
        }
        Ok(())
    })
    .unwrap();
    for (name, id) in [("client1", 1), ("client2", 2)] {
        sim.spawn_with(name, &[Inherit::send(svc)], move |p| {
            p.call(p.right(0), Message::new(id, b"question"))?;
            Ok(())
        })
        .unwrap();
    }
    let d = sim.run().unwrap().trace.to_mermaid();
    // No lane per reply right: the participants are the processes and `service`.
    assert_eq!(d.matches("participant ").count(), 4, "{d}");
    let Some(p) = parse(&d) else { return };
    for (client, id) in [("client1", 1), ("client2", 2)] {
        assert!(
            p.arrows
                .iter()
                .any(|(f, t, text)| label_of(&p, f) == "server"
                    && label_of(&p, t) == client
                    && text.starts_with(&format!("send msg {}", 10 + id))),
            "no reply arrow from server to {client}: {:?}\n{d}",
            p.arrows
        );
    }
}
