//! Proptest strategies for random models that shrink, and fixed topologies.
//!
//! A [`Model`] is a message-passing system as plain data: queues (ports with
//! one receiver, or system mailboxes anyone opens) of capacity 0, 1, 2 or
//! unbounded; processes, each a short straight-line program of [`Action`]s
//! (sends under every [`Policy`], receives with or without a timeout, RPC
//! `call`/`reply` whose request carries a send-once reply right, assertions
//! on the value received, sleeps, choices), or a server looping forever; and faults
//! (kills at a virtual time). It is `Clone + Eq + Hash`, its `Debug` is the
//! data, its `Display` one readable line per queue and process.
//!
//! * **Generate**: [`model`] (every feature the stateful checker and the
//!   scenario language both have), [`model_with_faults`], or [`models`]
//!   with a [`ModelConfig`] (sizes, features).
//! * **Run**: [`Model::check`] / [`Model::verdicts`] on the stateful
//!   [`Checker`](crate::check::Checker) (each process a [`ModelMachine`]);
//!   [`Model::install`] on a [`Sim`](crate::Sim) (with its faults), so
//!   [`Explorer`](crate::Explorer) runs it under seeds or exhaustively.
//! * **Shrink**: a property that fails on a model makes proptest shrink it
//!   to fewer processes, queues, actions (messages) and faults, smaller
//!   capacities, simpler policies: proptest's own shrinking (module `gen`
//!   says how the strategies are built for it), then passes that know a
//!   model ([`Shrinking`]: remove a process with its ports, a queue, an
//!   action; simplify a queue or an action), until none applies. A model that deadlocks on a rendezvous send shrinks
//!   to one process sending once to a rendezvous mailbox
//!   (`tests/strategy_shrink.rs`).
//! * **Print**: the root package prints a model as a scenario file
//!   (`mkipc::scenario::from_model`) that the checker gives the same
//!   verdicts; a failing model so becomes a file to replay with `mkipc
//!   explore FILE --exhaustive`. Faults print as `[[fault]]` tables, which
//!   `mkipc explore` runs with the stateless search. The whole path:
//!   `cargo run --example shrink_to_scenario` (root package).
//!
//! What a model cannot say (the scenario language, which a model must
//! print as, has no statement for them, or the checker no support): direct
//! addressing, rights other than a call's reply right carried in a
//! message, spawning, `select` over several queues.
//!
//! ```
//! use proptest::prelude::*;
//! use mkipc_sim::check::Checker;
//! use mkipc_sim::strategy::{model, Verdict};
//!
//! // Every model's checked verdicts are known kinds, and its printout names
//! // every process.
//! proptest!(ProptestConfig::with_cases(8), |(m in model())| {
//!     let text = m.to_string();
//!     for i in 0..m.procs.len() {
//!         let name = format!("p{i}");
//!         prop_assert!(text.contains(&name), "{} lacks {}", text, name);
//!     }
//!     if let Ok(verdicts) = m.verdicts(&Checker::new().keep_going().max_memory(16 << 20)) {
//!         prop_assert!(!verdicts.is_empty());
//!         prop_assert!(verdicts.iter().all(|v| !matches!(v, Verdict::Panicked(_))));
//!     }
//! });
//! ```
//!
//! The fixed topologies ([`Scenario`], [`scenario`]) are deadlock-free and
//! leak-free by construction: a property such as "any scenario, any seed:
//! every message arrives" must hold on each, and a failing one shrinks to
//! the smallest topology, capacity and count.
//!
//! ```
//! use proptest::prelude::*;
//! use mkipc_sim::strategy::scenario;
//! use mkipc_sim::Sim;
//!
//! proptest!(ProptestConfig::with_cases(8), |(s in scenario(), seed in 0u64..1000)| {
//!     let mut sim = Sim::builder().seed(seed).build();
//!     s.install(&mut sim);
//!     let report = sim.run().unwrap();
//!     prop_assert!(report.kernel_is_clean());
//!     prop_assert_eq!(report.procs.iter().map(|p| p.stats.received).sum::<u64>(), s.expected_receives());
//! });
//! ```

mod gen;
mod model;
mod run;
mod shrink;
mod topology;

pub use gen::{capacity, model, model_with_faults, models, policy};
pub use model::{
    capacity_toml, Action, Kill, Model, ModelConfig, Policy, Program, Queue, QueueKind,
};
pub use run::{CheckRefusal, ModelMachine, Verdict};
pub use shrink::{ModelTree, Shrinking};
pub use topology::{scenario, topology, Scenario, Topology};

/// The capacities the fixed topologies use (bounds 1 to 3 as well).
pub use topology::capacity as topology_capacity;
