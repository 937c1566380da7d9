//! [`ProcStats`]: a process's counters.
//!
//! Plain data at the bottom of the crate: the loop's bookkeeping
//! (`runtime::ProcMeta`) keeps one per process, the process handles count
//! into it as their operations complete, and the [`Report`](crate::Report)
//! shows it (re-exported as `report::ProcStats`).

use std::time::Duration;

/// Counters of one process.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct ProcStats {
    /// Messages sent (delivered, dropped or displacing another).
    pub sent: u64,
    /// Of those, dropped or displacing.
    pub drops: u64,
    /// Sends that failed.
    pub send_failures: u64,
    /// Messages received.
    pub received: u64,
    /// Receives that failed.
    pub receive_failures: u64,
    /// Virtual time spent blocked in the kernel.
    pub blocked: Duration,
    /// Virtual time spent in `work`.
    pub working: Duration,
    /// Virtual time spent in `sleep`.
    pub sleeping: Duration,
}
