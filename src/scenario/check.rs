//! Checking a scenario with the stateful model checker
//! ([`mkipc_sim::check`]): every process runs as its script's state
//! machine on the kernel's non-blocking core, and every reachable state is
//! explored once.
//!
//! The machines are built on a run state made with canonical message
//! stamps (offered at time 0, every id 1: two states that differ only by
//! when a message was sent are one state), so message latencies mean
//! nothing here, and the run's counters add up over the whole search: the
//! counting invariants (`no_message_lost`, `never_exceeds`) are not checked
//! by this search and are listed in [`ScenarioCheck::unchecked`]. What the
//! checker does not support is refused before it starts: faults, mailboxes
//! with an owner or access lists, direct addressing (`send-to`,
//! `receive-from`: pids are a run-wide table, not part of a state),
//! `server`/`expect_error` on spawned processes, and random durations
//! (`work` or `sleep` of a distribution: a checker explores choices, not
//! distributions).

use std::sync::Arc;

use mkipc_sim::check::{CheckOutcome, Checker, EndState, Parallel, Replay, Trail, World};

use super::interp::{ScriptMachine, Shared};
use super::{Op, QueueKind, Scenario};

/// What checking a scenario found.
#[derive(Debug)]
pub struct ScenarioCheck {
    /// The checker's verdict and statistics.
    pub outcome: CheckOutcome,
    /// The scenario's invariants this search did not check.
    pub unchecked: Vec<String>,
}

/// Checks `scn` with `checker` (module docs).
///
/// ```
/// use mkipc::sim::check::Checker;
/// use mkipc::sim::FailureReason;
///
/// // Each waits for the other before sending: every schedule deadlocks.
/// let text = r#"
/// [[mailbox]]
/// name = "a"
/// capacity = 1
///
/// [[mailbox]]
/// name = "b"
/// capacity = 1
///
/// [[process]]
/// name = "p"
/// script = "receive a\nsend b"
///
/// [[process]]
/// name = "q"
/// script = "receive b\nsend a"
/// "#;
/// let scn = mkipc::scenario::parse("wait.toml", text).unwrap();
/// let check = mkipc::scenario::check_scenario(&scn, &Checker::new()).unwrap();
/// let failure = check.outcome.failure().unwrap();
/// assert!(matches!(failure.reason, FailureReason::Deadlock(_)));
/// ```
pub fn check_scenario(scn: &Scenario, checker: &Checker) -> Result<ScenarioCheck, String> {
    check_with_ends(scn, checker, |_| {})
}

/// [`check_scenario`], showing every end state to `on_end`.
pub(crate) fn check_with_ends(
    scn: &Scenario,
    checker: &Checker,
    on_end: impl FnMut(&EndState<'_, ScriptMachine>),
) -> Result<ScenarioCheck, String> {
    let outcome = on_model(scn, |setup| checker.run_with_ends(setup, on_end))?;
    Ok(ScenarioCheck {
        outcome,
        unchecked: unchecked(scn),
    })
}

/// [`check_scenario`] with the parallel search ([`Parallel`]: its workers,
/// its shard); every worker builds the model from `scn`.
pub fn check_scenario_parallel(scn: &Scenario, par: &Parallel) -> Result<ScenarioCheck, String> {
    check_refusal(scn).map_or(Ok(()), Err)?;
    let scn = Arc::new(scn.clone());
    let shared = Arc::new(Shared::new(Arc::clone(&scn), false).canonical_messages());
    let failed = std::sync::Mutex::new(None);
    let outcome = par.run(|w| {
        if let Err(e) = setup(&scn, &shared, w) {
            *failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(e);
        }
    });
    if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(format!("{}: setting up the check: {e}", scn.file));
    }
    Ok(ScenarioCheck {
        outcome,
        unchecked: unchecked(&scn),
    })
}

/// The scenario's invariants the checker does not check.
fn unchecked(scn: &Scenario) -> Vec<String> {
    let mut unchecked = Vec::new();
    if scn.invariants.no_message_lost {
        unchecked.push("no message lost".to_string());
    }
    for &(q, k) in &scn.invariants.never_exceeds {
        unchecked.push(format!("{} never exceeds {k}", scn.queues[q].name));
    }
    unchecked
}

/// Replays a trail the checker printed for `scn` (with the same
/// `checker` options): each step, which process did what, and the verdict
/// on the state it reaches.
pub fn replay_scenario(scn: &Scenario, checker: &Checker, trail: &Trail) -> Result<Replay, String> {
    on_model(scn, |setup| checker.replay(trail, setup))?.map_err(|e| format!("{}: {e}", scn.file))
}

/// Hands `run` the set-up of `scn`'s model (after checking the checker can
/// run it), and gives back what `run` returned, or why setting up failed.
fn on_model<T>(
    scn: &Scenario,
    run: impl FnOnce(&mut dyn FnMut(&mut World<ScriptMachine>)) -> T,
) -> Result<T, String> {
    check_refusal(scn).map_or(Ok(()), Err)?;
    let scn = Arc::new(scn.clone());
    let shared = Arc::new(Shared::new(Arc::clone(&scn), false).canonical_messages());
    let mut failed = None;
    let out = run(&mut |w| {
        if let Err(e) = setup(&scn, &shared, w) {
            failed = Some(e);
        }
    });
    match failed {
        Some(e) => Err(format!("{}: setting up the check: {e}", scn.file)),
        None => Ok(out),
    }
}

/// Why `scn` cannot be checked by the stateful checker, if it cannot (what
/// `mkipc explore --exhaustive` says before it falls back to the stateless
/// search).
pub fn check_refusal(scn: &Scenario) -> Option<String> {
    let no = |why: String| {
        Some(format!(
            "{}: not available to the model checker: {why}",
            scn.file
        ))
    };
    if !scn.faults.is_empty() {
        return no("faults".into());
    }
    if let Some(q) = scn.queues.iter().find(|q| q.has_access_rules()) {
        return no(format!("mailbox `{}` has an owner or access lists", q.name));
    }
    for p in &scn.processes {
        if p.spawned && (p.server || p.expect_error) {
            return no(format!(
                "`{}` is spawned and declared `server` or `expect_error`",
                p.name
            ));
        }
        for s in super::walk(&p.script) {
            if let Op::Work(d) | Op::Sleep(d) = &s.op {
                if !matches!(d, mkipc_sim::Dist::Fixed(_)) {
                    return no(format!(
                        "a random duration (line {}): the checker explores choices, not distributions",
                        s.line
                    ));
                }
            }
            if matches!(s.op, Op::SendTo { .. } | Op::ReceiveFrom { .. }) {
                return no(format!(
                    "direct addressing (line {}): pids are not part of a state",
                    s.line
                ));
            }
        }
    }
    None
}

/// Builds the model: ports and system mailboxes, and every process that
/// starts with the run, with its rights.
fn setup(
    scn: &Arc<Scenario>,
    shared: &Arc<Shared>,
    w: &mut World<ScriptMachine>,
) -> Result<(), String> {
    let mut names = vec![None; scn.queues.len()];
    for (i, q) in scn.queues.iter().enumerate() {
        match q.kind {
            QueueKind::Port { .. } => {
                let name = w.port(&q.name, q.capacity).map_err(|e| e.to_string())?;
                super::mech::prime(w.kernel(), w.init_pid(), q, name)?;
                names[i] = Some(name);
            }
            QueueKind::Mailbox { .. } => {
                let name = w.mailbox(&q.name, q.capacity).map_err(|e| e.to_string())?;
                super::mech::prime(w.kernel(), w.init_pid(), q, name)?;
            }
        }
    }
    for (i, p) in scn.processes.iter().enumerate() {
        if p.spawned {
            continue;
        }
        let inherit = super::run::inherited_rights(p, &names);
        let s = Arc::clone(shared);
        let id = w
            .spawn_with(&p.name, &inherit, move |rights| {
                ScriptMachine::from_rights(&s, i, rights)
            })
            .map_err(|e| e.to_string())?;
        // With `end:` labels the machine says where it may wait
        // (`Machine::at_valid_end`); the label wins over `server = true`.
        if p.server && p.valid_ends.is_empty() {
            w.server(id);
        }
        if p.expect_error {
            w.expect_error(id);
        }
    }
    Ok(())
}
