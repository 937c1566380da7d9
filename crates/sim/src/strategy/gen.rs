//! The strategies that generate [`Model`]s, built so that proptest's
//! shrinking makes a failing model smaller in every way that matters.
//!
//! * Lists (queues, processes, each process's actions, faults) are
//!   `prop::collection::vec`s, which shrink by dropping elements down to
//!   their minimum length: fewest processes, queues, actions (so messages)
//!   and faults.
//! * Every choice among alternatives is a `prop_oneof!` written simplest
//!   first, which shrinks toward its first alternative: a capacity toward
//!   0, then 1, 2, unbounded; a queue toward a mailbox; a policy toward
//!   `block`; an action toward a send; a timeout toward none.
//! * Numbers (values, indices, milliseconds) shrink toward 0.
//! * No `prop_flat_map`: counts and the indices that refer to them are
//!   generated independently and tied together afterwards by
//!   [`Model::normalized`] (indices modulo the counts, actions a process
//!   may not do dropped), so shrinking one list never stops at a model
//!   whose other parts no longer fit.
//!
//! That is not enough for a minimal model (removing a process renumbers
//! the ones after it; an alternative is only as simple as the one drawn
//! with the case), so [`models`] ends its shrinking with the model passes
//! of [`Shrinking`] (module `shrink`).

use mkipc_kernel::Capacity;
use proptest::prelude::*;

use super::model::{Action, Kill, Model, ModelConfig, Policy, Program, Queue, QueueKind};
use super::shrink::Shrinking;

/// Any capacity of a model, smallest first: 0, 1, 2, unbounded.
pub fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        Just(Capacity::Zero),
        Just(Capacity::Bounded(1)),
        Just(Capacity::Bounded(2)),
        Just(Capacity::Unbounded),
    ]
}

/// Any send policy, `block` first.
pub fn policy() -> impl Strategy<Value = Policy> {
    prop_oneof![
        Just(Policy::Block),
        Just(Policy::Fail),
        Just(Policy::DropNewest),
        Just(Policy::DropOldest),
    ]
}

fn queue(c: &ModelConfig) -> BoxedStrategy<Queue> {
    let port = (0..4usize).prop_map(|receiver| QueueKind::Port { receiver });
    let kind = match (c.mailboxes, c.ports) {
        (true, true) => prop_oneof![Just(QueueKind::Mailbox), port].boxed(),
        (false, true) => port.boxed(),
        _ => Just(QueueKind::Mailbox).boxed(),
    };
    (kind, capacity())
        .prop_map(|(kind, capacity)| Queue { kind, capacity })
        .boxed()
}

fn action(c: &ModelConfig) -> BoxedStrategy<Action> {
    let q = || 0..4usize;
    let v = || 0..3u8;
    let policy = if c.policies {
        policy().boxed()
    } else {
        Just(Policy::Block).boxed()
    };
    let timeout = if c.time {
        prop_oneof![Just(None), (1..3u8).prop_map(Some)].boxed()
    } else {
        Just(None).boxed()
    };
    let on = |b: bool, w: u32| if b { w } else { 0 };
    prop_oneof![
        4 => (q(), v(), policy).prop_map(|(queue, value, policy)| Action::Send { queue, value, policy }),
        4 => (q(), timeout).prop_map(|(queue, timeout)| Action::Receive { queue, timeout }),
        on(c.rpc, 2) => (q(), v()).prop_map(|(queue, value)| Action::Call { queue, value }),
        on(c.rpc, 2) => v().prop_map(|value| Action::Reply { value }),
        on(c.asserts, 1) => v().prop_map(|value| Action::AssertNot { value }),
        on(c.time, 1) => (1..3u8).prop_map(|ms| Action::Sleep { ms }),
        on(c.choices, 1) => (2..=3u8).prop_map(|n| Action::Choose { n }),
    ]
    .boxed()
}

fn program(c: &ModelConfig) -> BoxedStrategy<Program> {
    let server = if c.servers {
        prop_oneof![4 => Just(false), 1 => Just(true)].boxed()
    } else {
        Just(false).boxed()
    };
    (server, prop::collection::vec(action(c), c.actions.clone()))
        .prop_map(|(server, actions)| Program { server, actions })
        .boxed()
}

/// Random well-formed models within `config` (see the module docs for how
/// they shrink; then the model passes of [`Shrinking`] run).
pub fn models(config: ModelConfig) -> impl Strategy<Value = Model> {
    Shrinking::new(generated(config.clone()), config)
}

/// The generated models, with proptest's own shrinking only.
fn generated(config: ModelConfig) -> impl Strategy<Value = Model> {
    let faults = prop::collection::vec(
        (0..4usize, 0..4u8).prop_map(|(proc, at_ms)| Kill { proc, at_ms }),
        0..=config.faults,
    );
    (
        prop::collection::vec(queue(&config), config.queues.clone()),
        prop::collection::vec(program(&config), config.procs.clone()),
        faults,
    )
        .prop_map(|(queues, procs, faults)| {
            Model {
                queues,
                procs,
                faults,
            }
            .normalized()
        })
}

/// Random models with every feature both the stateful checker and the
/// scenario language have: [`ModelConfig::default`]. Each prints as a
/// scenario (`mkipc::scenario::from_model`) with the same verdicts.
pub fn model() -> impl Strategy<Value = Model> {
    models(ModelConfig::default())
}

/// [`model`] with up to two kills at a virtual time: for the simulator
/// and the stateless explorer (the stateful checker has no faults). No
/// choices: the simulator draws a choice from the run's seed rather than
/// enumerate it, so an exhaustive search of the simulator would not see
/// every alternative.
pub fn model_with_faults() -> impl Strategy<Value = Model> {
    models(ModelConfig {
        faults: 2,
        choices: false,
        ..ModelConfig::default()
    })
}
