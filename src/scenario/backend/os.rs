//! The os backend: real Linux processes (`crate::scenario::os` holds the
//! coordinator, the children and their protocol). Phases: check
//! ([`check_os`](crate::scenario::check_os)), set up (the queues, the
//! children, their setup messages, ready), go, wait (poll the children's
//! reports until `--timeout`, then kill what still runs), summarise.

use super::{Backend, BackendKind, RunError, Unsupported};
use crate::scenario::report::RunResult;
use crate::scenario::{OsOptions, Scenario};

/// The os backend ([`Backend`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct OsBackend;

impl Backend for OsBackend {
    type Options = OsOptions;
    type Outcome = RunResult;
    fn name(&self) -> BackendKind {
        BackendKind::Os
    }
    fn check(&self, scn: &Scenario) -> Result<(), Unsupported> {
        crate::scenario::os::check_os(scn)
    }
    fn run(&self, scn: &Scenario, opts: &OsOptions) -> Result<RunResult, RunError> {
        crate::scenario::os::run_os(scn, opts)
    }
}
