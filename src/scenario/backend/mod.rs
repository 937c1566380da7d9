//! The scenario backends behind one seam: [`Backend`].
//!
//! Each backend first says whether it can run a scenario at all
//! ([`Backend::check`], which starts nothing: a refusal is an
//! [`Unsupported`] naming the feature and why), then runs it
//! ([`Backend::run`]) in phases: set up the queues, spawn the processes,
//! wait for them (with a deadline on the backends that run in real time),
//! summarise into a [`RunResult`]. A failure to run at all is a typed
//! [`RunError`]; a run that went wrong (a deadlock, a failed check, a
//! timeout) is a [`RunResult`] with `ok: false`.
//!
//! | backend | type | options | outcome |
//! |---|---|---|---|
//! | `sim` | [`SimBackend`] | [`RunOptions`](super::RunOptions) | [`SimOutcome`](super::SimOutcome) (the result, the trace, the queue series) |
//! | `threads` | [`ThreadsBackend`] | [`ThreadsOptions`] | [`RunResult`] |
//! | `os` | [`OsBackend`] | [`OsOptions`](super::OsOptions) | [`RunResult`] |
//!
//! ```
//! use mkipc::scenario::{parse, Backend, RunOptions, SimBackend, ThreadsBackend};
//!
//! let scn = parse(
//!     "hello.toml",
//!     r#"
//! [[mailbox]]
//! name = "box"
//! capacity = 1
//!
//! [[process]]
//! name = "producer"
//! script = "send box"
//!
//! [[process]]
//! name = "consumer"
//! script = "receive box"
//! "#,
//! )
//! .unwrap();
//! // Ask first: nothing starts.
//! assert!(SimBackend.check(&scn).is_ok());
//! assert!(ThreadsBackend.check(&scn).is_ok());
//! // Then run, deterministically on the simulator.
//! let outcome = SimBackend.run(&scn, &RunOptions::default()).unwrap();
//! assert!(outcome.result.ok);
//! assert_eq!(outcome.result.messages.received, 1);
//! ```

use std::fmt;

#[cfg(doc)]
use super::report::RunResult;
use super::Scenario;

pub(crate) mod os;
pub(crate) mod sim;
pub(crate) mod threads;

pub use os::OsBackend;
pub use sim::SimBackend;
pub use threads::{ThreadsBackend, ThreadsOptions};

/// One way to run a scenario (see the module docs).
pub trait Backend {
    /// What a run can be told (seed, timeout, ...).
    type Options;
    /// What a run gives back: at least a [`RunResult`].
    type Outcome;
    /// Its name, as `--backend` spells it.
    fn name(&self) -> BackendKind;
    /// Whether this backend can run `scn`; nothing is started. Every
    /// statement is named in the check (no catch-all), so a new one cannot
    /// pass it unnoticed.
    fn check(&self, scn: &Scenario) -> Result<(), Unsupported>;
    /// Runs `scn` once ([`Backend::check`] first: a refusal is
    /// [`RunError::Unsupported`] and nothing starts).
    fn run(&self, scn: &Scenario, opts: &Self::Options) -> Result<Self::Outcome, RunError>;
}

/// The three backends, by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BackendKind {
    /// The deterministic simulator.
    Sim,
    /// Kernel tasks on OS threads.
    Threads,
    /// Real Linux processes.
    Os,
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::Sim => "sim",
            BackendKind::Threads => "threads",
            BackendKind::Os => "os",
        })
    }
}

/// A scenario a backend cannot run, found before anything started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsupported {
    /// The scenario file.
    pub file: String,
    /// The backend that refuses.
    pub backend: BackendKind,
    /// The feature, said as "... is" (`None`: `why` names it).
    pub what: Option<String>,
    /// Why the backend cannot give it.
    pub why: String,
}

impl Unsupported {
    /// A refusal by `backend` of `what` (said as "... is"), because `why`.
    pub fn new(
        scn: &Scenario,
        backend: BackendKind,
        what: Option<String>,
        why: impl Into<String>,
    ) -> Unsupported {
        Unsupported {
            file: scn.file.clone(),
            backend,
            what,
            why: why.into(),
        }
    }
}

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.what {
            Some(what) => write!(
                f,
                "{}: {what} not available on the {} backend: {} (use --backend sim)",
                self.file, self.backend, self.why
            ),
            None => write!(
                f,
                "{}: not available on the {} backend: {}",
                self.file, self.backend, self.why
            ),
        }
    }
}

impl std::error::Error for Unsupported {}

/// Why a scenario could not be run at all (a run that went wrong is a
/// [`RunResult`] with `ok: false`, not an error).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RunError {
    /// The backend cannot run this scenario; nothing was started.
    Unsupported(Unsupported),
    /// Creating a queue, a process or the run itself failed.
    Setup {
        /// The scenario file.
        file: String,
        /// The backend.
        backend: BackendKind,
        /// What was being set up (a queue's or a process's name, "the run").
        what: String,
        /// What went wrong, as the kernel or the system said it.
        error: String,
    },
    /// The host could not do its part (start a thread, join the processes).
    Host {
        /// The scenario file.
        file: String,
        /// What failed.
        message: String,
    },
    /// An option is out of its range.
    BadOption(String),
}

impl RunError {
    /// A failure to set up `what` of `scn` on `backend`.
    pub(crate) fn setup(
        scn: &Scenario,
        backend: BackendKind,
        what: &str,
        e: impl fmt::Display,
    ) -> RunError {
        RunError::Setup {
            file: scn.file.clone(),
            backend,
            what: what.to_string(),
            error: e.to_string(),
        }
    }
}

impl fmt::Display for RunError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RunError::Unsupported(u) => u.fmt(f),
            RunError::Setup {
                file,
                backend: BackendKind::Os,
                what,
                error,
            } => write!(f, "{file}: os backend: setting up {what}: {error}"),
            RunError::Setup {
                file, what, error, ..
            } => write!(f, "{file}: setting up {what}: {error}"),
            RunError::Host { file, message } => write!(f, "{file}: {message}"),
            RunError::BadOption(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for RunError {}

impl From<Unsupported> for RunError {
    fn from(u: Unsupported) -> RunError {
        RunError::Unsupported(u)
    }
}

/// For callers that report errors as text (`mkipc explore`).
impl From<RunError> for String {
    fn from(e: RunError) -> String {
        e.to_string()
    }
}
