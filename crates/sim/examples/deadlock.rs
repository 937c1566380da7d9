//! The classic rendezvous deadlock, found by exploration and explained.
//!
//! Two processes each send first on a zero-capacity port the other receives
//! from. Run with `cargo run -p mkipc-sim --example deadlock`; it prints the
//! wait-for cycle, the replay line, and the failing run's trace as a Mermaid
//! sequence diagram.

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{Explorer, Inherit};

fn main() {
    let outcome = Explorer::new().seeds(0..100).run(|sim| {
        let p = sim
            .port("p", Capacity::Zero)
            .expect("zero is a valid capacity");
        let q = sim
            .port("q", Capacity::Zero)
            .expect("zero is a valid capacity");
        sim.spawn_with("alice", &[Inherit::receive(p), Inherit::send(q)], |me| {
            me.send(me.right(1), Message::new(1, b"hello bob"))?;
            me.receive(me.right(0))?;
            Ok(())
        })
        .expect("rights exist");
        sim.spawn_with("bob", &[Inherit::receive(q), Inherit::send(p)], |me| {
            me.send(me.right(1), Message::new(2, b"hello alice"))?;
            me.receive(me.right(0))?;
            Ok(())
        })
        .expect("rights exist");
    });
    match outcome.failure {
        Some(failure) => {
            println!("found after {} run(s):\n{failure}\n", outcome.runs);
            println!("{}", failure.report.trace.to_mermaid());
            println!("{}", failure.report.trace.to_json_lines());
        }
        None => println!("no deadlock in {} runs", outcome.runs),
    }
}
