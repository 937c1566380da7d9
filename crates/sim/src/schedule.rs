//! A recorded schedule: the seed plus every choice the scheduler made.
//!
//! Printed as one line that can be pasted back into a test or given in the
//! `MKIPC_SIM_REPLAY` environment variable:
//!
//! ```
//! use mkipc_sim::{ProcId, Schedule};
//! let s = Schedule { seed: 42, choices: vec![ProcId(0), ProcId(1), ProcId(1), ProcId(1), ProcId(0)] };
//! let text = s.to_string();
//! assert_eq!(text, "seed=42;choices=0,1*3,0");
//! assert_eq!(text.parse::<Schedule>().unwrap(), s);
//! ```
//!
//! Runs of the same process are written `p*n` so long schedules stay short.

use std::fmt;
use std::str::FromStr;

use crate::ProcId;

/// The environment variable [`Sim::builder`](crate::Sim::builder) reads a schedule from.
pub const REPLAY_ENV: &str = "MKIPC_SIM_REPLAY";

/// The most choices a parsed schedule may hold (2^28: a gigabyte of
/// [`ProcId`]s, far more than the real choices of a run within the default
/// step limit of ten million).
pub const MAX_CHOICES: usize = 1 << 28;

/// What is needed to replay a run: its seed (for drawn durations and faults)
/// and the process chosen at each real choice point.
#[derive(Clone, PartialEq, Eq, Debug, Default)]
pub struct Schedule {
    /// The run's seed.
    pub seed: u64,
    /// The process run at each choice point, in order.
    pub choices: Vec<ProcId>,
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "seed={};choices=", self.seed)?;
        let mut i = 0;
        let mut first = true;
        while i < self.choices.len() {
            let p = self.choices[i];
            let mut n = 1;
            while i + n < self.choices.len() && self.choices[i + n] == p {
                n += 1;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if n == 1 {
                write!(f, "{}", p.0)?;
            } else {
                write!(f, "{}*{}", p.0, n)?;
            }
            i += n;
        }
        Ok(())
    }
}

/// Why a schedule string could not be parsed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("malformed schedule: {0}")]
pub struct ScheduleParseError(String);

impl FromStr for Schedule {
    type Err = ScheduleParseError;
    fn from_str(s: &str) -> Result<Schedule, ScheduleParseError> {
        let bad = |what: &str| ScheduleParseError(what.to_string());
        let s = s.trim();
        let rest = s
            .strip_prefix("seed=")
            .ok_or_else(|| bad("expected `seed=`"))?;
        let (seed, rest) = rest
            .split_once(";choices=")
            .ok_or_else(|| bad("expected `;choices=`"))?;
        let seed = seed.parse().map_err(|_| bad("seed is not a number"))?;
        let mut choices = Vec::new();
        for item in rest.split(',').filter(|x| !x.is_empty()) {
            let (p, n) = match item.split_once('*') {
                Some((p, n)) => (p, n.parse::<usize>().map_err(|_| bad("bad repeat count"))?),
                None => (item, 1),
            };
            let p = ProcId(p.parse().map_err(|_| bad("bad process id"))?);
            // A repeat count is user input (`MKIPC_SIM_REPLAY`): refuse one
            // that would make the list larger than any run could use rather
            // than abort the process on an impossible allocation.
            if n > MAX_CHOICES - choices.len() {
                return Err(bad("too many choices"));
            }
            choices.extend(std::iter::repeat_n(p, n));
        }
        Ok(Schedule { seed, choices })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_schedules_and_bad_input() {
        let empty = Schedule {
            seed: 3,
            choices: Vec::new(),
        };
        assert_eq!(empty.to_string(), "seed=3;choices=");
        assert_eq!("seed=3;choices=".parse::<Schedule>().unwrap(), empty);
        for bad in [
            "",
            "seed=x;choices=",
            "seed=1",
            "seed=1;choices=a",
            "seed=1;choices=1*x",
        ] {
            assert!(bad.parse::<Schedule>().is_err(), "{bad:?}");
        }
    }
}
