//! How a process ends: [`ExitStatus`], and [`ProcError`] for `?` in process code.
//!
//! ```
//! use mkipc_sim::{ExitStatus, ProcError, ProcResult};
//! fn body(fail: bool) -> ProcResult {
//!     if fail {
//!         return Err(ProcError::exit(3));
//!     }
//!     "42".parse::<u32>()?; // any error converts
//!     Ok(())
//! }
//! assert!(body(false).is_ok());
//! assert_eq!(body(true).unwrap_err().into_status(), ExitStatus::Exited(3));
//! ```

use std::fmt;

/// How a process ended.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum ExitStatus {
    /// Returned `Ok(())` (code 0) or [`ProcError::exit`] with a code.
    Exited(i32),
    /// Returned an error.
    Failed {
        /// Exit code (1 unless the error said otherwise).
        code: i32,
        /// The error, as text.
        error: String,
    },
    /// Killed by a fault or by another process.
    Killed,
    /// Panicked, with the panic message.
    Panicked(String),
    /// Still blocked when the run stopped (deadlock or step limit).
    Stuck,
}

impl ExitStatus {
    /// Exited with code 0.
    pub fn is_success(&self) -> bool {
        *self == ExitStatus::Exited(0)
    }
    /// The numeric exit code: the code, or 137 (killed), 101 (panicked), -1 (stuck).
    pub fn code(&self) -> i32 {
        match self {
            ExitStatus::Exited(c) | ExitStatus::Failed { code: c, .. } => *c,
            ExitStatus::Killed => 137,
            ExitStatus::Panicked(_) => 101,
            ExitStatus::Stuck => -1,
        }
    }
}

impl fmt::Display for ExitStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitStatus::Exited(c) => write!(f, "exited({c})"),
            ExitStatus::Failed { code, error } => write!(f, "failed({code}): {error}"),
            ExitStatus::Killed => f.write_str("killed"),
            ExitStatus::Panicked(m) => write!(f, "panicked: {m}"),
            ExitStatus::Stuck => f.write_str("stuck"),
        }
    }
}

/// Why a process's closure returned early. Any error converts into it with
/// `?`; [`ProcError::exit`] ends with a chosen exit code.
pub struct ProcError {
    code: i32,
    message: String,
}

impl ProcError {
    /// Ends the process with this exit code and no error message.
    pub fn exit(code: i32) -> ProcError {
        ProcError {
            code,
            message: String::new(),
        }
    }
    /// An error with a message (exit code 1).
    pub fn msg(message: impl Into<String>) -> ProcError {
        ProcError {
            code: 1,
            message: message.into(),
        }
    }
    /// The exit status this error ends the process with, keeping the error
    /// (for a host that records the status and still returns the error).
    pub fn status(&self) -> ExitStatus {
        if self.message.is_empty() {
            ExitStatus::Exited(self.code)
        } else {
            ExitStatus::Failed {
                code: self.code,
                error: self.message.clone(),
            }
        }
    }
    /// The exit status this error ends the process with.
    pub fn into_status(self) -> ExitStatus {
        if self.message.is_empty() {
            ExitStatus::Exited(self.code)
        } else {
            ExitStatus::Failed {
                code: self.code,
                error: self.message,
            }
        }
    }
}

impl<E: std::error::Error> From<E> for ProcError {
    fn from(e: E) -> ProcError {
        ProcError::msg(e.to_string())
    }
}

impl fmt::Debug for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ProcError({}: {})", self.code, self.message)
    }
}

impl fmt::Display for ProcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "exit {}: {}", self.code, self.message)
    }
}

/// What a process's closure returns.
pub type ProcResult = Result<(), ProcError>;
