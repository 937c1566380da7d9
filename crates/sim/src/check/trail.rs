//! Trails: the processes stepped from the initial state to a state, and
//! their replay.
//!
//! A trail is written as the process ids in order, a run of one id as
//! `id*count`: `0,1*3,2` steps process 0, then 1 three times, then 2. Time
//! needs no entry: it moves only when nobody can step, so it is implied.
//!
//! ```
//! use mkipc_sim::check::Trail;
//! let t: Trail = "0,1*3,2".parse().unwrap();
//! assert_eq!(t.steps(), &[0, 1, 1, 1, 2]);
//! assert_eq!(t.to_string(), "0,1*3,2");
//! assert!("0,x".parse::<Trail>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::world::ProcStatus;
use crate::report::FailureReason;
use crate::ProcId;

/// The process ids stepped, in order (see the [module docs](crate::check::trail)).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Trail(pub Vec<u32>);

impl Trail {
    /// The ids, one per step.
    pub fn steps(&self) -> &[u32] {
        &self.0
    }
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.0.len()
    }
    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for Trail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut i = 0;
        while i < self.0.len() {
            let id = self.0[i];
            let run = self.0[i..].iter().take_while(|&&x| x == id).count();
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if run > 1 {
                write!(f, "{id}*{run}")?;
            } else {
                write!(f, "{id}")?;
            }
            i += run;
        }
        Ok(())
    }
}

/// A trail that does not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("not a trail: {0:?} (expected ids like 0,1*3,2)")]
pub struct TrailParseError(pub String);

/// The longest run `id*count` a trail may spell (a guard against a typo
/// allocating gigabytes).
const MAX_RUN: usize = 1 << 24;

impl FromStr for Trail {
    type Err = TrailParseError;
    fn from_str(s: &str) -> Result<Trail, TrailParseError> {
        let mut out = Vec::new();
        let s = s.trim();
        if s.is_empty() {
            return Ok(Trail(out));
        }
        for part in s.split(',') {
            let bad = || TrailParseError(part.to_string());
            let (id, count) = match part.trim().split_once('*') {
                Some((id, n)) => (id, n.trim().parse::<usize>().map_err(|_| bad())?),
                None => (part.trim(), 1),
            };
            let id = id.trim().parse::<u32>().map_err(|_| bad())?;
            if count == 0 || count > MAX_RUN || out.len() + count > MAX_RUN {
                return Err(bad());
            }
            out.extend(std::iter::repeat_n(id, count));
        }
        Ok(Trail(out))
    }
}

/// One step of a replayed trail.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct ReplayStep {
    /// Its index in the trail, from 0.
    pub index: usize,
    /// The process stepped.
    pub proc: ProcId,
    /// Its name.
    pub name: String,
    /// Virtual time at the step.
    pub time: Duration,
    /// What it did: the outcome it resumed with, each operation with its
    /// result, and what it went on to (`then ...`).
    pub did: Vec<String>,
    /// Its status after the step.
    pub status: ProcStatus,
}

/// A replayed trail, step by step, and the verdict on the state it reaches.
#[derive(Clone, Debug)]
pub struct Replay {
    /// The steps.
    pub steps: Vec<ReplayStep>,
    /// The failure at the last state, if there is one.
    pub failure: Option<FailureReason>,
}

impl fmt::Display for Replay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
            writeln!(
                f,
                "{:>4} {:>10?} {} ({}): {}",
                s.index,
                s.time,
                s.name,
                s.proc,
                s.did.join("; ")
            )?;
        }
        match &self.failure {
            Some(r) => write!(f, "ends: {r}"),
            None => write!(f, "ends: no failure"),
        }
    }
}

/// Why a trail could not be replayed.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
pub enum ReplayError {
    /// The process the trail names at this step cannot step there (a
    /// different model, or a model that is not deterministic).
    #[error("the trail diverges at step {index}: process {proc} cannot step there")]
    Diverged {
        /// The step.
        index: usize,
        /// The id the trail names.
        proc: u32,
    },
    /// The model does something the checker cannot explore.
    #[error("{0}")]
    Unsupported(String),
}
