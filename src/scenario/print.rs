//! Printing a random model ([`mkipc_sim::strategy::Model`]) as a scenario
//! file, so that a model a property test found failing (and shrank) is a
//! file to read, replay and keep: `mkipc explore FILE --exhaustive` finds
//! what the model's own check found.
//!
//! The model's names are the file's: queues `q0`, `q1`, ... (a system
//! mailbox is a `[[mailbox]]`, a port a `[[port]]` whose `receiver` is its
//! receiving process and whose `senders` are all the others), processes
//! `p0`, `p1`, .... Each script starts with `x = -1` (the value last
//! received) and then says each action as the statement the model's
//! `Display` prints: `send q0 block 1`, `receive q0 x [timeout 1ms]`,
//! `call q1 2 -> x`, `reply 0`, `assert x != 2`, `sleep 1ms`; a choice
//! among `n` is a `select any` of `n` arms, arm `i` sending `i` to a
//! mailbox `choices` (unbounded, so every arm can proceed) and setting
//! `x = i`. A server's
//! actions are a `forever` loop and it is declared `server = true`. Kills
//! are `[[fault]]` tables at a time, which the stateful checker refuses
//! (`mkipc explore --exhaustive` then runs the stateless search).
//!
//! The statements mean what the model's machine does
//! ([`mkipc_sim::strategy::ModelMachine`]); `tests/model_print.rs` checks
//! on random models that the printed file parses and that the checker
//! finds the same failures in it as in the model.
//!
//! ```
//! use mkipc::sim::check::Checker;
//! use mkipc::sim::strategy::{Action, Model, Policy, Program, Queue, QueueKind};
//! use mkipc_kernel::Capacity;
//!
//! // One process sending to a rendezvous mailbox nobody receives from.
//! let m = Model {
//!     queues: vec![Queue { kind: QueueKind::Mailbox, capacity: Capacity::Zero }],
//!     procs: vec![Program {
//!         server: false,
//!         actions: vec![Action::Send { queue: 0, value: 0, policy: Policy::Block }],
//!     }],
//!     faults: vec![],
//! };
//! let text = mkipc::scenario::from_model(&m);
//! assert!(text.contains("send q0 block 0"));
//! let scn = mkipc::scenario::parse("model.toml", &text).unwrap();
//! let check = mkipc::scenario::check_scenario(&scn, &Checker::new()).unwrap();
//! assert!(check.outcome.failure().unwrap().reason.is_deadlock());
//! ```

use std::fmt::Write as _;

use mkipc_sim::strategy::{capacity_toml, Action, Model, QueueKind};

/// The mailbox a printed choice sends to (`select any` needs arms that
/// can proceed; a send to an unbounded mailbox always can).
const CHOICES: &str = "choices";

/// `action` as script lines, each indented by `indent`.
fn statement(out: &mut String, indent: &str, action: &Action) {
    match *action {
        Action::Choose { n } => {
            let _ = writeln!(out, "{indent}select any");
            for i in 0..n {
                let _ = writeln!(out, "{indent}on send {CHOICES} {i}\n{indent}  x = {i}");
            }
            let _ = writeln!(out, "{indent}end");
        }
        ref a => {
            let _ = writeln!(out, "{indent}{a}");
        }
    }
}

/// The scenario file (TOML) that says `model` (module docs).
pub fn from_model(model: &Model) -> String {
    let mut out = String::new();
    let procs = model.procs.len();
    let _ = writeln!(out, "name = \"generated model\"");
    let mut described = String::new();
    for line in model.to_string().lines() {
        let _ = writeln!(described, "#   {line}");
    }
    let _ = writeln!(
        out,
        "description = \"a random model ({} processes, {} queues, {} messages), printed by mkipc::scenario::from_model\"",
        procs,
        model.queues.len(),
        model.messages()
    );
    let _ = writeln!(out, "# The model:\n{described}");
    for (i, q) in model.queues.iter().enumerate() {
        let cap = capacity_toml(q.capacity);
        match q.kind {
            QueueKind::Mailbox => {
                let _ = writeln!(out, "[[mailbox]]\nname = \"q{i}\"\ncapacity = {cap}\n");
            }
            QueueKind::Port { receiver } => {
                let senders: Vec<String> = (0..procs)
                    .filter(|&p| p != receiver)
                    .map(|p| format!("\"p{p}\""))
                    .collect();
                let _ = writeln!(
                    out,
                    "[[port]]\nname = \"q{i}\"\ncapacity = {cap}\nreceiver = \"p{receiver}\"\nsenders = [{}]\n",
                    senders.join(", ")
                );
            }
        }
    }
    let chooses = model
        .procs
        .iter()
        .flat_map(|p| &p.actions)
        .any(|a| matches!(a, Action::Choose { .. }));
    if chooses {
        let _ = writeln!(
            out,
            "# Each choice sends its alternative here (a `select any` of sends).\n[[mailbox]]\nname = \"{CHOICES}\"\ncapacity = \"unbounded\"\n"
        );
    }
    for (i, p) in model.procs.iter().enumerate() {
        let _ = writeln!(out, "[[process]]\nname = \"p{i}\"");
        if p.server {
            let _ = writeln!(out, "server = true");
        }
        let mut script = String::from("x = -1\n");
        let indent = if p.server {
            script.push_str("forever\n");
            "  "
        } else {
            ""
        };
        for a in &p.actions {
            statement(&mut script, indent, a);
        }
        if p.server {
            script.push_str("end\n");
        }
        let _ = writeln!(out, "script = \"\"\"\n{script}\"\"\"\n");
    }
    for k in &model.faults {
        let _ = writeln!(
            out,
            "[[fault]]\nkill = \"p{}\"\nat = \"{}ms\"\n",
            k.proc, k.at_ms
        );
    }
    out
}
