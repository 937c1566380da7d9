//! Walking a trail again: for replaying a counterexample, and for deadlock
//! reports that name the real cycle.
//!
//! A stored state keeps only what decides the future (the kernel, each
//! process's machine and wait, the clock), not how it was reached. But a
//! good deadlock report needs a little history: when a stuck process waits
//! on a mailbox open to all, any live process could end its wait, and the
//! wait-for cycle through "any live process" is often a short one that
//! says nothing (three fork servers, each waiting for a request anybody
//! may send, form a 2-cycle). The simulator's report tries first, for each
//! stuck process, the processes that took its latest message (a
//! philosopher waits on the fork that took its request; the fork on the
//! holder that took its grant), which gives the six-party ring. The
//! checker recovers that history for the failures it reports: after the
//! search, it walks each deadlock's trail from the initial state
//! ([`Engine::root`]), noting the sender of the last message every process
//! received, and judges the end state again with those hints
//! ([`Engine::judge_end_hinted`]). The hints only order the search for a
//! cycle (they never add a holder), so the verdict, the failure's key and
//! every count stay as the search found them; only the cycle printed
//! changes.

use mkipc_kernel::Pid;

use super::engine::{Engine, Succ};
use super::trail::{ReplayError, Trail};
use super::world::State;
use super::{CheckFailure, Encode};
use crate::machine::Machine;
use crate::report::FailureReason;

/// Where walking a trail ends: the state reached, its enabled processes,
/// the failure on the way (if any), and the sender of the last message each
/// process received (by process index, for [`Engine::judge_end_hinted`]).
pub(crate) struct Walked<M> {
    pub state: State<M>,
    pub enabled: Vec<u32>,
    pub failure: Option<FailureReason>,
    pub last_from: Vec<Option<Pid>>,
}

impl<M: Machine + Clone + Encode> Walked<M> {
    /// The failure on the way or, where nobody can step, the verdict on
    /// the end state, judged with the trail's history.
    pub(crate) fn verdict(&self, engine: &mut Engine<M>) -> Option<FailureReason> {
        if self.failure.is_some() || !self.enabled.is_empty() {
            return self.failure.clone();
        }
        engine.hold(&self.state);
        engine.judge_end_hinted(&self.state.slots, &self.last_from)
    }
}

/// Steps `trail` from the initial state, showing each step to `each` (its
/// index, the process, the time it started at, the successor). With `log`,
/// each successor carries what the step did. Walks with the engine's lazy
/// blocking off, so a trail's steps are the model's own (as a printed trail
/// is).
pub(crate) fn walk<M: Machine + Clone + Encode>(
    engine: &mut Engine<M>,
    trail: &Trail,
    log: bool,
    mut each: impl FnMut(usize, u32, u64, &Succ<M>),
) -> Result<Walked<M>, ReplayError> {
    if engine.root.is_none() {
        engine.initial();
    }
    let Some((mut state, mut enabled, mut failure)) = engine.root.clone() else {
        unreachable!("Engine::initial keeps the root");
    };
    let lazy = std::mem::replace(&mut engine.lazy_blocking, false);
    let mut last_from: Vec<Option<Pid>> = vec![None; state.slots.len()];
    let mut out = Ok(());
    for (index, &proc) in trail.steps().iter().enumerate() {
        if failure.is_some() || !enabled.contains(&proc) {
            out = Err(ReplayError::Diverged { index, proc });
            break;
        }
        let choices = trail.choices(index);
        let succ = engine.step(&state, proc as usize, choices, index + 1, log, false);
        if let Some(why) = succ.unsupported {
            out = Err(ReplayError::Unsupported(why));
            break;
        }
        if succ.bad_choice || succ.made.len() < choices.len() {
            out = Err(ReplayError::Diverged { index, proc });
            break;
        }
        each(index, proc, state.now, &succ);
        last_from.resize(succ.slots.len(), None);
        if let Some(from) = succ.got_from {
            last_from[proc as usize] = Some(from);
        }
        state = engine.freeze(succ.slots, succ.now);
        enabled = succ.enabled;
        failure = succ.fail;
    }
    engine.lazy_blocking = lazy;
    out.map(|()| Walked {
        state,
        enabled,
        failure,
        last_from,
    })
}

/// Judges again, with the history of its trail, the end state of every
/// deadlock in `failures` (module docs): the cycle printed is the one
/// through the processes that took each stuck process's latest message,
/// where there is one. A failure whose trail does not walk back to a
/// deadlock (it cannot, for a deterministic model) is left as it was.
pub(crate) fn explain_deadlocks<M: Machine + Clone + Encode>(
    engine: &mut Engine<M>,
    failures: &mut [CheckFailure],
) {
    for f in failures {
        if !matches!(f.reason, FailureReason::Deadlock(_)) {
            continue;
        }
        let Ok(walked) = walk(engine, &f.trail, false, |_, _, _, _| {}) else {
            continue;
        };
        if walked.failure.is_some() {
            continue;
        }
        if let Some(reason @ FailureReason::Deadlock(_)) = walked.verdict(engine) {
            f.reason = reason;
        }
    }
}
