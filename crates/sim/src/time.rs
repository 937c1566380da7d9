//! Virtual time: a clock that only moves when every process is waiting.
//!
//! A simulated process never reads the wall clock. [`Proc::work`](crate::Proc::work)
//! and [`Proc::sleep`](crate::Proc::sleep) park it until the virtual clock
//! reaches `now + d`, and timeouts of timed IPC operations fire in virtual
//! time. The clock advances only when no process can run: it jumps to the
//! earliest pending timer. So a run of ten simulated hours takes as long as
//! its scheduling steps, and latencies are exact, reproducible numbers.
//!
//! Durations may be fixed or drawn from a [`Dist`] with the run's seeded RNG:
//!
//! ```
//! use std::time::Duration;
//! use mkipc_sim::{Dist, SimRng};
//! let mut rng = SimRng::new(1);
//! let fixed = Dist::fixed(Duration::from_millis(3));
//! assert_eq!(fixed.sample(&mut rng), Duration::from_millis(3));
//! let u = Dist::uniform(Duration::from_millis(1), Duration::from_millis(2)).sample(&mut rng);
//! assert!(u >= Duration::from_millis(1) && u <= Duration::from_millis(2));
//! ```

use std::time::Duration;

use crate::rng::SimRng;

/// Virtual time in nanoseconds since the start of the run.
pub(crate) type Nanos = u64;

pub(crate) fn to_nanos(d: Duration) -> Nanos {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Shorthand for `Duration::from_millis`.
pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Shorthand for `Duration::from_micros`.
pub const fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// A distribution of durations, sampled with the run's RNG.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Dist {
    /// Always this long.
    Fixed(Duration),
    /// Uniform between the two bounds (inclusive of the lower one).
    Uniform(Duration, Duration),
    /// Exponential with this mean (memoryless service or arrival times).
    Exponential(Duration),
}

impl Dist {
    /// Always `d`.
    pub const fn fixed(d: Duration) -> Dist {
        Dist::Fixed(d)
    }
    /// Uniform in `[lo, hi]`.
    pub const fn uniform(lo: Duration, hi: Duration) -> Dist {
        Dist::Uniform(lo, hi)
    }
    /// Exponential with mean `mean`.
    pub const fn exponential(mean: Duration) -> Dist {
        Dist::Exponential(mean)
    }

    /// Draws one duration.
    pub fn sample(&self, rng: &mut SimRng) -> Duration {
        match *self {
            Dist::Fixed(d) => d,
            Dist::Uniform(lo, hi) => {
                let (lo, hi) = (to_nanos(lo), to_nanos(hi));
                if hi <= lo {
                    return Duration::from_nanos(lo);
                }
                // `hi - lo + 1` overflows only for the whole range of u64.
                let offset = match (hi - lo).checked_add(1) {
                    Some(n) => rng.below(n),
                    None => rng.next_u64(),
                };
                Duration::from_nanos(lo + offset)
            }
            Dist::Exponential(mean) => {
                // Inverse transform; 1 - unit() is in (0, 1], so ln is finite.
                let x = -(1.0 - rng.unit()).ln() * to_nanos(mean) as f64;
                Duration::from_nanos(x.min(u64::MAX as f64 / 2.0) as u64)
            }
        }
    }
}

impl From<Duration> for Dist {
    fn from(d: Duration) -> Dist {
        Dist::Fixed(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_mean_is_close() {
        let mut rng = SimRng::new(9);
        let d = Dist::exponential(ms(10));
        let n = 20_000;
        let total: u128 = (0..n).map(|_| d.sample(&mut rng).as_nanos()).sum();
        let mean = total as f64 / n as f64 / 1e6;
        assert!((mean - 10.0).abs() < 0.5, "mean {mean} ms");
    }
}
