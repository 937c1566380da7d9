//! Watching queue lengths during a simulated run.
//!
//! The simulator checks invariants after every scheduling step; a
//! [`QueueSampler`] rides on that hook to read the kernel's per-queue
//! statistics ([`Kernel::queue_stats`](crate::kernel::Kernel::queue_stats)) and
//! write down every change of a watched queue's length with its virtual
//! time. From that step function come the charts, the maximum and the
//! time-weighted mean queue length, and the "never exceeds k" invariants.
//!
//! Queue length here means messages *in the buffer*. Under
//! `Capacity::Zero` it is always 0: a message waits with its blocked sender,
//! never in the queue.
//!
//! ```
//! use mkipc::kernel::{Capacity, Ipc, Message};
//! use mkipc::sampler::{QueueKey, QueueSampler};
//! use mkipc::sim::{ms, Sim};
//!
//! let mut sim = Sim::builder().seed(1).build();
//! sim.mailbox("jobs", Capacity::Unbounded).unwrap();
//! let sampler = QueueSampler::attach(&mut sim, vec![("jobs".into(), QueueKey::Mailbox("jobs".into()))]);
//! sim.spawn("p", |p| {
//!     let jobs = p.mailbox_open("jobs")?;
//!     p.send(jobs, Message::from_u64(1, 0))?;
//!     p.work(ms(2));
//!     p.receive(jobs)?;
//!     Ok(())
//! });
//! let report = sim.run().unwrap();
//! let series = sampler.series();
//! assert_eq!(series[0].max, 1);
//! assert_eq!(series[0].mean(report.end_time), 1.0); // one message queued the whole 2 ms
//! ```

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use mkipc_sim::Sim;

/// How to find a watched queue among the kernel's queues.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueueKey {
    /// A mailbox, by name.
    Mailbox(String),
    /// A port, by the kernel's stable queue id.
    QueueId(u64),
}

/// The history of one watched queue.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueSeries {
    /// The queue's label.
    pub label: String,
    /// `(virtual time, length from then on)` at every change.
    pub samples: Vec<(Duration, usize)>,
    /// Largest length seen.
    pub max: usize,
    /// Length now (after the last step seen).
    pub len: usize,
    /// Messages the queue accepted, as last seen while it lived.
    pub accepted: u64,
    /// Messages its drop policies discarded, as last seen while it lived.
    pub dropped: u64,
}

impl QueueSeries {
    /// Mean length over `[0, end]`, weighted by virtual time (0 if `end` is 0).
    pub fn mean(&self, end: Duration) -> f64 {
        if end.is_zero() {
            return 0.0;
        }
        let mut area = 0.0;
        let mut prev = (Duration::ZERO, 0usize);
        for &(t, len) in &self.samples {
            let t = t.min(end);
            area += (t - prev.0).as_secs_f64() * prev.1 as f64;
            prev = (t, len);
        }
        area += (end.saturating_sub(prev.0)).as_secs_f64() * prev.1 as f64;
        area / end.as_secs_f64()
    }

    /// The samples in milliseconds, for [`crate::svg::Panel`].
    pub fn samples_ms(&self) -> Vec<(f64, usize)> {
        self.samples
            .iter()
            .map(|&(t, l)| (t.as_secs_f64() * 1e3, l))
            .collect()
    }
}

/// Records the watched queues' lengths after every step (module docs).
#[derive(Clone, Debug)]
pub struct QueueSampler {
    series: Rc<RefCell<Vec<QueueSeries>>>,
}

impl QueueSampler {
    /// Adds the sampling hook to `sim`; `queues` are `(label, key)` pairs.
    pub fn attach(sim: &mut Sim, queues: Vec<(String, QueueKey)>) -> QueueSampler {
        let keys: Vec<QueueKey> = queues.iter().map(|q| q.1.clone()).collect();
        let series = Rc::new(RefCell::new(
            queues
                .into_iter()
                .map(|(label, _)| QueueSeries {
                    label,
                    ..QueueSeries::default()
                })
                .collect::<Vec<_>>(),
        ));
        let shared = Rc::clone(&series);
        // Per queue only: keeps partial-order reduction on.
        sim.queue_invariant("queue sampler", move |view| {
            let stats = view.queue_stats();
            let now = view.now();
            let mut series = shared.borrow_mut();
            for (key, s) in keys.iter().zip(series.iter_mut()) {
                let found = stats.iter().find(|q| match key {
                    QueueKey::Mailbox(name) => q.kind == "mailbox" && &q.label == name,
                    QueueKey::QueueId(id) => q.kind != "mailbox" && q.queue_id == *id,
                });
                let len = found.map_or(0, |q| q.len);
                if let Some(q) = found {
                    s.accepted = q.accepted;
                    s.dropped = q.dropped;
                    s.max = s.max.max(q.max_len);
                }
                if len != s.len {
                    s.samples.push((now, len));
                    s.len = len;
                }
            }
            Ok(())
        });
        QueueSampler { series }
    }

    /// The series recorded so far.
    pub fn series(&self) -> Vec<QueueSeries> {
        self.series.borrow().clone()
    }

    /// The current length of watched queue `index` (for invariants).
    pub fn len(&self, index: usize) -> usize {
        self.series.borrow().get(index).map_or(0, |s| s.len)
    }
}
