//! A random model (`mkipc_sim::strategy`) printed as a scenario file
//! (`mkipc::scenario::from_model`) is the same model: the file parses, and
//! the stateful checker (what `mkipc explore FILE --exhaustive` runs)
//! finds in it exactly the failures it finds in the model: deadlock or
//! none, and which process failed.

use std::collections::BTreeSet;

use mkipc::scenario::{check_scenario, from_model, parse};
use mkipc::sim::check::Checker;
use mkipc::sim::strategy::{model, model_with_faults, Action, Model, Verdict};
use proptest::prelude::*;

fn checker() -> Checker {
    Checker::new()
        .keep_going()
        .max_failures(100_000)
        .max_memory(64 << 20)
}

/// The failures a complete search of the model finds (its verdicts but
/// `ok`); `None` if the search does not finish.
fn model_failures(m: &Model) -> Option<BTreeSet<Verdict>> {
    let mut v = m.verdicts(&checker()).ok()?;
    v.remove(&Verdict::Ok);
    Some(v)
}

/// The failures a complete search of the printed scenario finds; `None` if
/// the search does not finish.
fn scenario_failures(text: &str) -> Result<Option<BTreeSet<Verdict>>, String> {
    let scn = parse("model.toml", text).map_err(|e| e.to_string())?;
    let check = check_scenario(&scn, &checker())?;
    if !check.outcome.stats.complete {
        return Ok(None);
    }
    Ok(Some(
        check
            .outcome
            .failures
            .iter()
            .map(|f| Verdict::of(Some(&f.reason)))
            .collect(),
    ))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, max_global_rejects: 4_000, ..ProptestConfig::default() })]

    #[test]
    fn a_printed_model_has_the_models_verdicts(m in model()) {
        let text = from_model(&m);
        let Some(expected) = model_failures(&m) else {
            return Err(TestCaseError::reject("too big for the checker"));
        };
        let got = scenario_failures(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let Some(got) = got else {
            return Err(TestCaseError::reject("too big for the checker"));
        };
        prop_assert_eq!(expected, got, "\n{}\n{}", m, text);
    }

    /// With faults the file still parses (the faults as `[[fault]]` tables,
    /// one per kill) and the stateful checker refuses it, naming them.
    #[test]
    fn a_printed_model_with_faults_parses(m in model_with_faults()) {
        let text = from_model(&m);
        let scn = parse("model.toml", &text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(scn.processes.len(), m.procs.len());
        prop_assert_eq!(scn.queues.len(), m.queues.len());
        prop_assert_eq!(scn.faults.len(), m.faults.len());
        if !m.faults.is_empty() {
            let refused = mkipc::scenario::check_refusal(&scn);
            prop_assert!(refused.as_deref().is_some_and(|r| r.contains("faults")), "{:?}", refused);
        }
    }
}

/// The models the strategies shrink to (`crates/sim/tests/strategy_shrink.rs`)
/// print as files with the same verdict, exactly.
#[test]
fn the_minimal_models_print_as_files_that_fail_alike() {
    use mkipc::sim::strategy::{Policy, Program, Queue, QueueKind};
    use mkipc_kernel::Capacity;
    let rendezvous = |kind| Queue {
        kind,
        capacity: Capacity::Zero,
    };
    let one = |kind, action| Model {
        queues: vec![rendezvous(kind)],
        procs: vec![Program {
            server: false,
            actions: vec![action],
        }],
        faults: vec![],
    };
    let send = |queue| Action::Send {
        queue,
        value: 0,
        policy: Policy::Block,
    };
    let crossed = Model {
        queues: vec![
            rendezvous(QueueKind::Port { receiver: 0 }),
            rendezvous(QueueKind::Port { receiver: 1 }),
        ],
        procs: vec![
            Program {
                server: false,
                actions: vec![send(1)],
            },
            Program {
                server: false,
                actions: vec![send(0)],
            },
        ],
        faults: vec![],
    };
    let cases = [
        (one(QueueKind::Mailbox, send(0)), Verdict::Deadlock),
        (
            one(
                QueueKind::Port { receiver: 0 },
                Action::Receive {
                    queue: 0,
                    timeout: None,
                },
            ),
            Verdict::Deadlock,
        ),
        (crossed, Verdict::Deadlock),
        (
            one(
                QueueKind::Mailbox,
                Action::Receive {
                    queue: 0,
                    timeout: Some(1),
                },
            ),
            Verdict::Failed("p0".into()),
        ),
    ];
    for (m, verdict) in cases {
        let text = from_model(&m);
        let want = BTreeSet::from([verdict]);
        assert_eq!(model_failures(&m).as_ref(), Some(&want), "{m}");
        assert_eq!(
            scenario_failures(&text).unwrap().as_ref(),
            Some(&want),
            "{text}"
        );
    }
}
