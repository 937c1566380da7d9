//! `mkipc demo`: the capacity-model experiment.
//!
//! A producer makes messages and a slower consumer handles them, through one
//! mailbox. The experiment runs four times, changing only the mailbox's
//! capacity: zero (rendezvous), bounded(1), bounded(8) and unbounded. It runs
//! in the deterministic simulator on virtual time, so every number is exact
//! and the same on every machine and every run.
//!
//! To make the four runs comparable, the producer's and the consumer's work
//! times are drawn once, from the printed seed, and every run replays the
//! same draws ("common random numbers"): the only thing that differs between
//! two rows of the table is the capacity.
//!
//! What to look for:
//! * **zero**: nothing is ever buffered; a send completes only when the
//!   consumer is at its receive, so the producer blocks whenever the consumer
//!   is busy, and the consumer idles whenever the producer is.
//! * **bounded(k)**: the producer runs up to `k` messages ahead and blocks only
//!   when the queue is full; a small buffer absorbs bursts, and throughput
//!   rises towards the consumer's own rate.
//! * **unbounded**: the producer never blocks, but with a slower consumer the
//!   queue, and with it each message's wait, grows for as long as it runs.
//!
//! ```
//! let exp = mkipc::demo::Experiment::default();
//! let results = exp.run().unwrap();
//! assert_eq!(results.len(), 4);
//! // A rendezvous never holds a message in its queue.
//! assert_eq!(results[0].max_queue, 0);
//! // Everyone got every message.
//! assert!(results.iter().all(|r| r.received == exp.messages));
//! ```

use std::cell::RefCell;
use std::fmt::Write;
use std::path::Path;
use std::rc::Rc;
use std::time::Duration;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_sim::{ms, Dist, EventKind, ProcId, Sim, SimRng};

use serde::Serialize;

use crate::sampler::{QueueKey, QueueSampler, QueueSeries};
use crate::svg::{queue_chart, Panel};

/// The experiment's settings.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Seed of the work-time draws and of the scheduler.
    pub seed: u64,
    /// Messages the producer sends.
    pub messages: u64,
    /// Time to produce one message.
    pub produce: Dist,
    /// Time to consume one message (longer on average: the slower side).
    pub consume: Dist,
    /// The capacities compared.
    pub capacities: Vec<Capacity>,
}

impl Default for Experiment {
    fn default() -> Self {
        Experiment {
            seed: 2024,
            messages: 40,
            produce: Dist::exponential(ms(2)),
            consume: Dist::exponential(ms(3)),
            capacities: vec![
                Capacity::Zero,
                Capacity::Bounded(1),
                Capacity::Bounded(8),
                Capacity::Unbounded,
            ],
        }
    }
}

/// What one capacity gave.
#[derive(Clone, Debug)]
pub struct CapacityResult {
    /// The capacity.
    pub capacity: Capacity,
    /// Messages the consumer received.
    pub received: u64,
    /// Virtual time until the consumer finished.
    pub end: Duration,
    /// Producer time spent blocked in `send`.
    pub producer_blocked: Duration,
    /// Sends that had to wait.
    pub blocked_sends: usize,
    /// Consumer time spent blocked in `receive` (idle).
    pub consumer_idle: Duration,
    /// Largest number of messages in the queue.
    pub max_queue: usize,
    /// Mean number of messages in the queue over the run.
    pub mean_queue: f64,
    /// Mean time from the producer offering a message to the consumer getting it.
    pub mean_latency: Duration,
    /// Queue length over time.
    pub series: QueueSeries,
    /// The first lines of the run, as a terminal sequence diagram.
    pub diagram: Vec<String>,
}

impl CapacityResult {
    /// Messages per second of virtual time.
    pub fn throughput(&self) -> f64 {
        if self.end.is_zero() {
            0.0
        } else {
            self.received as f64 / self.end.as_secs_f64()
        }
    }
}

/// How many messages the sequence diagram follows.
const DIAGRAM_MESSAGES: u32 = 3;

impl Experiment {
    /// Runs every capacity; an error only if the simulation itself failed.
    pub fn run(&self) -> Result<Vec<CapacityResult>, String> {
        // Draw the work times once, so every capacity sees the same ones.
        let mut root = SimRng::new(self.seed);
        let (mut prod_rng, mut cons_rng) = (root.fork(), root.fork());
        let produce: Vec<Duration> = (0..self.messages)
            .map(|_| self.produce.sample(&mut prod_rng))
            .collect();
        let consume: Vec<Duration> = (0..self.messages)
            .map(|_| self.consume.sample(&mut cons_rng))
            .collect();
        self.capacities
            .iter()
            .map(|&cap| self.run_one(cap, produce.clone(), consume.clone()))
            .collect()
    }

    fn run_one(
        &self,
        capacity: Capacity,
        produce: Vec<Duration>,
        consume: Vec<Duration>,
    ) -> Result<CapacityResult, String> {
        let mut sim = Sim::builder().seed(self.seed).build();
        sim.mailbox("jobs", capacity).map_err(|e| e.to_string())?;
        let sampler = QueueSampler::attach(
            &mut sim,
            vec![("jobs".into(), QueueKey::Mailbox("jobs".into()))],
        );
        let latencies: Rc<RefCell<Vec<Duration>>> = Rc::default();
        let producer = sim.spawn("producer", move |p| {
            let jobs = p.mailbox_open("jobs")?;
            for (i, d) in produce.into_iter().enumerate() {
                p.work(d);
                // The body carries the moment the message was offered.
                let offered = p.now().as_nanos() as u64;
                p.send(jobs, Message::from_u64(i as u32 + 1, offered))?;
            }
            Ok(())
        });
        let lat = Rc::clone(&latencies);
        let consumer = sim.spawn("consumer", move |p| {
            let jobs = p.mailbox_open("jobs")?;
            for d in consume {
                let msg = p.receive(jobs)?;
                let offered = Duration::from_nanos(msg.as_u64().unwrap_or_default());
                lat.borrow_mut().push(p.now().saturating_sub(offered));
                p.work(d);
            }
            Ok(())
        });
        let report = sim.run().map_err(|f| f.to_string())?;
        let stats = |id: ProcId| report.procs[id.0 as usize].stats;
        let series = sampler.series().remove(0);
        let latencies = latencies.borrow();
        let mean_latency = if latencies.is_empty() {
            Duration::ZERO
        } else {
            latencies.iter().sum::<Duration>() / latencies.len() as u32
        };
        let blocked_sends = report
            .trace
            .events
            .iter()
            .filter(|e| e.proc == producer && matches!(e.kind, EventKind::SendBlocked { .. }))
            .count();
        Ok(CapacityResult {
            capacity,
            received: stats(consumer).received,
            end: report.end_time,
            producer_blocked: stats(producer).blocked,
            blocked_sends,
            consumer_idle: stats(consumer).blocked,
            max_queue: series.max,
            mean_queue: series.mean(report.end_time),
            mean_latency,
            diagram: diagram(&report.trace, producer, capacity),
            series,
        })
    }
}

/// The first messages of a run as lines of a two-column sequence diagram.
fn diagram(trace: &mkipc_sim::Trace, producer: ProcId, capacity: Capacity) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pending: Option<u32> = None;
    for e in &trace.events {
        let left = e.proc == producer;
        let text = match &e.kind {
            EventKind::SendStarted { msg_id, .. } if *msg_id <= DIAGRAM_MESSAGES => {
                pending = Some(*msg_id);
                format!("send #{msg_id} --->")
            }
            EventKind::SendBlocked { .. } => match pending {
                Some(id) if capacity == Capacity::Zero => {
                    format!("  #{id} waits: no receiver")
                }
                Some(id) => format!("  #{id} waits: queue full"),
                None => continue,
            },
            EventKind::SendCompleted { msg_id, .. } if *msg_id <= DIAGRAM_MESSAGES => {
                pending = None;
                if capacity == Capacity::Zero {
                    format!("  #{msg_id} handed over")
                } else {
                    format!("  #{msg_id} accepted")
                }
            }
            EventKind::ReceiveBlocked { .. } if lines.len() < 3 * DIAGRAM_MESSAGES as usize => {
                "waits: queue empty".to_string()
            }
            EventKind::Received { msg_id, .. } if *msg_id <= DIAGRAM_MESSAGES => {
                format!("---> got #{msg_id}")
            }
            _ => continue,
        };
        let t = format_ms(e.time);
        lines.push(if left {
            format!("{t:>10} | {text:<26}|")
        } else {
            format!("{t:>10} | {:<26}| {text}", "")
        });
        if matches!(e.kind, EventKind::Received { msg_id, .. } if msg_id == DIAGRAM_MESSAGES) {
            break;
        }
    }
    lines
}

fn format_ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

/// The demo's whole terminal output (without the line naming the SVG file).
pub fn render(exp: &Experiment, results: &[CapacityResult]) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "mkipc demo: one producer, one slower consumer, one mailbox, four capacities\n"
    );
    let _ = writeln!(
        s,
        "seed {} | {} messages | produce time {} | consume time {} | virtual time, simulator",
        exp.seed,
        exp.messages,
        describe(&exp.produce),
        describe(&exp.consume)
    );
    let _ = writeln!(
        s,
        "Every run replays the same drawn work times: only the capacity changes.\n"
    );
    let _ = writeln!(
        s,
        "{:<11} {:>10} {:>12} {:>9} {:>12} {:>6} {:>6} {:>12}",
        "capacity",
        "msgs/s",
        "prod blocked",
        "blocks",
        "cons idle",
        "max q",
        "mean q",
        "mean latency"
    );
    for r in results {
        let _ = writeln!(
            s,
            "{:<11} {:>10.1} {:>12} {:>9} {:>12} {:>6} {:>6.2} {:>12}",
            r.capacity.to_string(),
            r.throughput(),
            format_ms(r.producer_blocked),
            format!("{}/{}", r.blocked_sends, r.received),
            format_ms(r.consumer_idle),
            r.max_queue,
            r.mean_queue,
            format_ms(r.mean_latency)
        );
    }
    let _ = writeln!(
        s,
        "\nmsgs/s: messages per second of virtual time; prod blocked: time the producer waited in send\n\
         (blocks: sends that waited); cons idle: time the consumer waited in receive; max q / mean q:\n\
         messages in the buffer (time-weighted mean); latency: from offering a message to its receipt.\n"
    );
    let _ = writeln!(s, "Why the rows differ:");
    for line in lessons(results) {
        for (i, part) in wrap(&line, 88).iter().enumerate() {
            let bullet = if i == 0 { "  * " } else { "    " };
            let _ = writeln!(s, "{bullet}{part}");
        }
    }
    // Diagrams for the first two capacities: "no receiver" against "queue full".
    for r in results.iter().take(2) {
        let _ = writeln!(
            s,
            "\nFirst {DIAGRAM_MESSAGES} messages, capacity {}:",
            r.capacity
        );
        let _ = writeln!(s, "{:>10} | {:<26}| consumer", "time", "producer");
        for l in &r.diagram {
            let _ = writeln!(s, "{}", l.trim_end());
        }
    }
    s
}

/// The plain sentences under the table, with this run's numbers in them.
fn lessons(results: &[CapacityResult]) -> Vec<String> {
    let mut out = Vec::new();
    for r in results {
        let line = match r.capacity {
            Capacity::Zero => format!(
                "zero: there is no buffer, so a send completes only when the consumer is at its \
                 receive. The producer waited in {} of {} sends: every time the consumer was still \
                 busy. Nothing ever sat in the queue; messages waited with their sender.",
                r.blocked_sends, r.received
            ),
            Capacity::Bounded(k) => format!(
                "bounded({k}): the producer runs up to {k} message(s) ahead and blocks only when \
                 the queue is full ({} of {} sends). The queue never held more than {}.",
                r.blocked_sends, r.received, r.max_queue
            ),
            Capacity::Unbounded => format!(
                "unbounded: a send never waits ({} blocked), but the consumer is slower, so the \
                 queue grew to {} and a message waited {} on average before being received.",
                r.blocked_sends,
                r.max_queue,
                format_ms(r.mean_latency)
            ),
        };
        out.push(line);
    }
    out.push(
        "A buffer buys throughput by letting each side absorb the other's bursts; past what the \
         consumer can drain it only adds waiting (latency) and memory."
            .to_string(),
    );
    out
}

/// Splits text into lines of at most `width` characters at spaces.
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

fn describe(d: &Dist) -> String {
    match d {
        Dist::Fixed(x) => format!("{x:?}"),
        Dist::Uniform(a, b) => format!("uniform({a:?}, {b:?})"),
        Dist::Exponential(m) => format!("exponential(mean {m:?})"),
    }
}

/// The SVG chart of queue length over time, one panel per capacity.
pub fn chart(results: &[CapacityResult]) -> String {
    let panels: Vec<Panel> = results
        .iter()
        .map(|r| Panel {
            title: format!(
                "capacity {}: max {}, mean {:.2}, done at {}",
                r.capacity,
                r.max_queue,
                r.mean_queue,
                format_ms(r.end)
            ),
            samples: r.series.samples_ms(),
            end_ms: r.end.as_secs_f64() * 1e3,
        })
        .collect();
    queue_chart(
        "mkipc demo: messages waiting in the mailbox over virtual time",
        &panels,
    )
}

/// `mkipc demo --json`: the demo's figures as one JSON document.
///
/// The document is stable: fields are only ever added, and a change that
/// is not an addition changes [`DemoJson::schema`]. Times are in
/// milliseconds of virtual time, as numbers (not rounded: the table prints
/// the same figures with fewer digits).
#[derive(Clone, Debug, Serialize)]
pub struct DemoJson {
    /// `"mkipc-demo/1"`.
    pub schema: &'static str,
    /// The seed of the run.
    pub seed: u64,
    /// Messages the producer sends in each run.
    pub messages: u64,
    /// The produce-time distribution, as the table's header writes it.
    pub produce: String,
    /// The consume-time distribution, as the table's header writes it.
    pub consume: String,
    /// The SVG chart written, if one was.
    pub chart: Option<String>,
    /// One row per capacity, in the table's order.
    pub rows: Vec<DemoRow>,
}

/// One capacity's row of [`DemoJson`].
#[derive(Clone, Debug, Serialize)]
pub struct DemoRow {
    /// `"zero"`, `"bounded(1)"`, ..., `"unbounded"` (the table's first column).
    pub capacity: String,
    /// Messages the consumer received.
    pub received: u64,
    /// Messages per second of virtual time (`msgs/s`).
    pub throughput: f64,
    /// Time the producer waited in `send` (`prod blocked`).
    pub producer_blocked_ms: f64,
    /// Sends that waited (`blocks`, before the slash).
    pub blocked_sends: usize,
    /// Time the consumer waited in `receive` (`cons idle`).
    pub consumer_idle_ms: f64,
    /// Largest number of messages in the queue (`max q`).
    pub max_queue: usize,
    /// Time-weighted mean number of messages in the queue (`mean q`).
    pub mean_queue: f64,
    /// Mean time from offering a message to its receipt (`mean latency`).
    pub mean_latency_ms: f64,
    /// Virtual time when the consumer finished.
    pub end_ms: f64,
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The demo's figures as the document `mkipc demo --json` prints.
pub fn json(exp: &Experiment, results: &[CapacityResult], chart: Option<&Path>) -> DemoJson {
    DemoJson {
        schema: "mkipc-demo/1",
        seed: exp.seed,
        messages: exp.messages,
        produce: describe(&exp.produce),
        consume: describe(&exp.consume),
        chart: chart.map(|p| p.display().to_string()),
        rows: results
            .iter()
            .map(|r| DemoRow {
                capacity: r.capacity.to_string(),
                received: r.received,
                throughput: r.throughput(),
                producer_blocked_ms: millis(r.producer_blocked),
                blocked_sends: r.blocked_sends,
                consumer_idle_ms: millis(r.consumer_idle),
                max_queue: r.max_queue,
                mean_queue: r.mean_queue,
                mean_latency_ms: millis(r.mean_latency),
                end_ms: millis(r.end),
            })
            .collect(),
    }
}
