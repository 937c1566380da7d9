//! Trails: the processes stepped from the initial state to a state (and
//! the choices their steps made), and their replay.
//!
//! A trail is written as the process ids in order, a run of one step as
//! `step*count`: `0,1*3,2` steps process 0, then 1 three times, then 2. A
//! step whose machine made choices ([`Ctx::choose`](crate::machine::Ctx::choose))
//! is written with them after its id: `1/2/0` steps process 1, whose first
//! choice takes alternative 2 and its second alternative 0; choices left
//! out are 0, so trails without choices read as before. Time needs no
//! entry: it moves only when nobody can step, so it is implied.
//!
//! ```
//! use mkipc_sim::check::Trail;
//! let t: Trail = "0,1*3,2/1".parse().unwrap();
//! assert_eq!(t.steps(), &[0, 1, 1, 1, 2]);
//! assert_eq!(t.choices(4), &[1]);
//! assert_eq!(t.to_string(), "0,1*3,2/1");
//! assert!("0,x".parse::<Trail>().is_err());
//! ```

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use super::world::ProcStatus;
use crate::report::FailureReason;
use crate::ProcId;

/// The process ids stepped, in order, with the choices of each step
/// (module docs).
#[derive(Clone, PartialEq, Eq, Hash, Debug, Default)]
pub struct Trail {
    procs: Vec<u32>,
    /// Per step: its choices, trailing 0s left out (mostly empty).
    choices: Vec<Vec<u32>>,
}

impl Trail {
    /// The trail of these steps, none with a choice.
    pub fn from_procs(procs: Vec<u32>) -> Trail {
        let choices = vec![Vec::new(); procs.len()];
        Trail { procs, choices }
    }
    /// Appends a step of `proc` whose machine made `choices` (then 0s).
    pub fn push(&mut self, proc: u32, choices: &[u32]) {
        let keep = choices.iter().rposition(|&c| c != 0).map_or(0, |k| k + 1);
        self.procs.push(proc);
        self.choices.push(choices[..keep].to_vec());
    }
    /// The ids, one per step.
    pub fn steps(&self) -> &[u32] {
        &self.procs
    }
    /// The choices step `index` makes (then 0s; empty past the end).
    pub fn choices(&self, index: usize) -> &[u32] {
        self.choices.get(index).map_or(&[], |c| c.as_slice())
    }
    /// Number of steps.
    pub fn len(&self) -> usize {
        self.procs.len()
    }
    /// Whether it has no step.
    pub fn is_empty(&self) -> bool {
        self.procs.is_empty()
    }
}

impl fmt::Display for Trail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let same = |a: usize, b: usize| {
            self.procs[a] == self.procs[b] && self.choices[a] == self.choices[b]
        };
        let mut i = 0;
        while i < self.procs.len() {
            let run = (i..self.procs.len()).take_while(|&k| same(i, k)).count();
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", self.procs[i])?;
            for c in &self.choices[i] {
                write!(f, "/{c}")?;
            }
            if run > 1 {
                write!(f, "*{run}")?;
            }
            i += run;
        }
        Ok(())
    }
}

/// A trail that does not parse.
#[derive(Clone, PartialEq, Eq, Debug, thiserror::Error)]
#[error("not a trail: {0:?} (expected ids like 0,1*3,2, choices like 2/1)")]
pub struct TrailParseError(pub String);

/// The longest run `id*count` a trail may spell (a guard against a typo
/// allocating gigabytes).
const MAX_RUN: usize = 1 << 24;

impl FromStr for Trail {
    type Err = TrailParseError;
    fn from_str(s: &str) -> Result<Trail, TrailParseError> {
        let mut out = Trail::default();
        let s = s.trim();
        if s.is_empty() {
            return Ok(out);
        }
        for part in s.split(',') {
            let bad = || TrailParseError(part.to_string());
            let (step, count) = match part.trim().split_once('*') {
                Some((step, n)) => (step, n.trim().parse::<usize>().map_err(|_| bad())?),
                None => (part.trim(), 1),
            };
            let mut fields = step.split('/');
            let id = fields
                .next()
                .unwrap_or_default()
                .trim()
                .parse::<u32>()
                .map_err(|_| bad())?;
            let choices = fields
                .map(|c| c.trim().parse::<u32>().map_err(|_| bad()))
                .collect::<Result<Vec<u32>, _>>()?;
            if count == 0 || count > MAX_RUN || out.len() + count > MAX_RUN {
                return Err(bad());
            }
            if choices.len() > super::ctx::MAX_CHOICES {
                return Err(bad());
            }
            for _ in 0..count {
                out.push(id, &choices);
            }
        }
        Ok(out)
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
