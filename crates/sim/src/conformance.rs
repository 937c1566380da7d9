//! The kernel's conformance suite, run on simulated processes.
//!
//! [`SimBackend`] implements [`mkipc_kernel::conformance::Backend`]: the
//! setup role runs as a simulated process, which then spawns every role as
//! its own simulated process and joins them. Instantiating the suite for
//! several seeds and schedulers checks the API's semantics under many
//! interleavings, not only the ones OS threads happen to produce; a failing
//! role's error names its seed.
//!
//! [`ThreadedBackend`] runs the same cases with the same `Proc` handle on OS
//! threads ([`Threaded`]).
//!
//! ```text
//! mod seed_7 {
//!     mkipc_kernel::conformance_tests!(mkipc_sim::conformance::SimBackend::seed(7));
//! }
//! ```
//!
//! ```
//! use mkipc_sim::conformance::{SimBackend, ThreadedBackend};
//!
//! // One case of the kernel's suite, on a simulated run and on threads.
//! mkipc_kernel::conformance::bounded_fifo_and_full(&SimBackend::seed(7));
//! mkipc_kernel::conformance::bounded_fifo_and_full(&ThreadedBackend);
//! ```

use std::sync::Arc;

use mkipc_kernel::conformance::{Backend, Outcome, Role};
use parking_lot::Mutex;

use crate::process::{Proc, ProcResult};
use crate::scheduler::SchedulerKind;
use crate::sim::Sim;
use crate::threaded::Threaded;

/// Runs conformance cases as simulated processes.
#[derive(Clone, Debug, Default)]
pub struct SimBackend {
    /// The run's seed.
    pub seed: u64,
    /// The scheduling policy.
    pub scheduler: SchedulerKind,
}

impl SimBackend {
    /// The random scheduler with this seed.
    pub fn seed(seed: u64) -> SimBackend {
        SimBackend {
            seed,
            scheduler: SchedulerKind::Random,
        }
    }
    /// This scheduler with this seed.
    pub fn with_scheduler(seed: u64, scheduler: SchedulerKind) -> SimBackend {
        SimBackend { seed, scheduler }
    }
}

/// Cases whose roles race in a way some interleavings lose, with the reason.
/// The simulator explores those interleavings; threads rarely hit them.
/// Empty today: the one case it caught (`owned_mailbox_dies_with_owner`,
/// a role reading back its own sync message) was fixed in the suite.
pub const RACY_CASES: &[(&str, &str)] = &[];

/// Why `case` is listed in [`RACY_CASES`], if it is.
fn racy_reason(case: &str) -> Option<&'static str> {
    RACY_CASES
        .iter()
        .find(|(c, _)| *c == case)
        .map(|(_, why)| *why)
}

impl Backend for SimBackend {
    type Process = Proc;

    fn skip(&self, case: &str) -> Option<&'static str> {
        racy_reason(case)
    }

    fn run(&self, setup: Role<Proc>, roles: Vec<Role<Proc>>) -> Vec<Outcome> {
        run_once(self.seed, self.scheduler.clone(), setup, roles)
    }
}

/// The setup role as a process that then spawns every role as its own
/// process and joins them; each role's outcome lands in `results`.
fn setup_then_roles(
    setup: Role<Proc>,
    roles: Vec<Role<Proc>>,
    setup_result: Arc<Mutex<Option<Outcome>>>,
    results: Arc<Mutex<Vec<Option<Outcome>>>>,
) -> impl FnOnce(&Proc) -> ProcResult + Send + 'static {
    move |p| {
        let r = setup(p);
        let ok = r.is_ok();
        *setup_result.lock() = Some(r);
        if !ok {
            return Ok(());
        }
        let mut ids = Vec::new();
        for (i, role) in roles.into_iter().enumerate() {
            let results = Arc::clone(&results);
            let id = p.spawn(&format!("role{i}"), &[], move |p| {
                let r = role(p);
                results.lock()[i] = Some(r);
                Ok(())
            })?;
            ids.push(id);
        }
        for id in ids {
            p.join(id);
        }
        Ok(())
    }
}

fn collect(
    what: &str,
    setup_result: &Mutex<Option<Outcome>>,
    results: &Mutex<Vec<Option<Outcome>>>,
    failure: Option<String>,
) -> Vec<Outcome> {
    if let Some(Err(e)) = setup_result.lock().take() {
        return vec![Err(format!("setup failed ({what}): {e}"))];
    }
    let results = std::mem::take(&mut *results.lock());
    results
        .into_iter()
        .map(|r| match r {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(format!("{what}: {e}")),
            None => Err(format!(
                "{what}: role did not finish (panicked, killed or stuck){}",
                failure
                    .as_deref()
                    .map(|f| format!(": {f}"))
                    .unwrap_or_default()
            )),
        })
        .collect()
}

fn run_once(
    seed: u64,
    scheduler: SchedulerKind,
    setup: Role<Proc>,
    roles: Vec<Role<Proc>>,
) -> Vec<Outcome> {
    let results = Arc::new(Mutex::new(vec![None; roles.len()]));
    let setup_result = Arc::new(Mutex::new(None));
    let mut sim = Sim::builder().seed(seed).scheduler(scheduler).build();
    sim.spawn(
        "setup",
        setup_then_roles(
            setup,
            roles,
            Arc::clone(&setup_result),
            Arc::clone(&results),
        ),
    );
    let failure = sim.run().err().map(|f| f.to_string());
    collect(&format!("seed {seed}"), &setup_result, &results, failure)
}

/// Runs conformance cases on [`Threaded`]: the same `Proc` handle on OS
/// threads, so the wrapper that adds tracing and scheduling points is
/// checked against the kernel's semantics outside the simulator too.
#[derive(Clone, Copy, Debug, Default)]
pub struct ThreadedBackend;

impl Backend for ThreadedBackend {
    type Process = Proc;

    fn skip(&self, case: &str) -> Option<&'static str> {
        // Racy on threads too, only rarely lost: skipped so CI cannot flake.
        racy_reason(case)
    }

    fn run(&self, setup: Role<Proc>, roles: Vec<Role<Proc>>) -> Vec<Outcome> {
        let results = Arc::new(Mutex::new(vec![None; roles.len()]));
        let setup_result = Arc::new(Mutex::new(None));
        let world = Threaded::new();
        let id = world.spawn(
            "setup",
            setup_then_roles(
                setup,
                roles,
                Arc::clone(&setup_result),
                Arc::clone(&results),
            ),
        );
        let status = world.join(id);
        let _ = world.join_all();
        let failure = (!status.is_success()).then(|| status.to_string());
        collect("threaded", &setup_result, &results, failure)
    }
}
