//! `mkipc bench`: a quick benchmark suite, each mkipc number next to a
//! baseline measured in the same run, on the same machine.
//!
//! | case | mkipc | baseline |
//! |---|---|---|
//! | one-way, 8-byte, bounded(1024) | kernel port between two threads | `crossbeam-channel` bounded(1024) |
//! | one-way, 8-byte, rendezvous | kernel port, `Capacity::Zero` | `crossbeam-channel` bounded(0) |
//! | ping-pong in the simulator | scheduled IPC operations per second | (none: reported as a rate) |
//! | one process, 8-byte send + receive | os backend port (POSIX queue) | raw `mq_send` + `mq_receive` on a queue |
//!
//! Each case runs for a fixed number of messages sized to take a fraction of
//! a second, so the whole suite takes a few seconds. These are smoke numbers
//! for spotting regressions and orders of magnitude, not criterion-grade
//! measurements (see `cargo bench` for those).
//!
//! ```
//! use mkipc::bench::Spread;
//!
//! let s = Spread::of(&[1.64, 4.16, 2.27]).unwrap();
//! assert_eq!((s.median, s.min, s.max), (2.27, 1.64, 4.16));
//! assert!(Spread::of(&[]).is_none());
//! ```

use std::fmt::Write;
use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
use mkipc_sim::{workload, Sim};
use serde::Serialize;

/// One line of the table.
#[derive(Clone, Debug)]
pub struct BenchLine {
    /// What was measured.
    pub name: String,
    /// Operations done by each side.
    pub ops: u64,
    /// mkipc's time.
    pub mkipc: Duration,
    /// The baseline's name and time, if there is one.
    pub baseline: Option<(String, Duration)>,
    /// Why the case was skipped, if it was.
    pub skipped: Option<String>,
}

impl BenchLine {
    fn per_op(d: Duration, ops: u64) -> f64 {
        d.as_nanos() as f64 / ops.max(1) as f64
    }
}

/// Runs the suite; `scale` multiplies message counts (1.0 = default).
pub fn run(scale: f64) -> Vec<BenchLine> {
    let n = |base: u64| ((base as f64 * scale) as u64).max(10);
    vec![
        kernel_vs_crossbeam(n(200_000), Capacity::Bounded(1024)),
        kernel_vs_crossbeam(n(20_000), Capacity::Zero),
        sim_ping_pong(n(50_000)),
        os_vs_mqueue(n(20_000)),
    ]
}

fn kernel_one_way(n: u64, capacity: Capacity) -> Result<Duration, String> {
    let kernel = Kernel::new();
    let rx = kernel.spawn_task();
    let tx = kernel.spawn_task();
    let port = rx.port_allocate(capacity).map_err(|e| e.to_string())?;
    rx.register("bench", port).map_err(|e| e.to_string())?;
    let to = tx.look_up("bench").map_err(|e| e.to_string())?;
    let start = Instant::now();
    let sender = thread::spawn(move || {
        for i in 0..n {
            if tx.send(to, Message::from_u64(1, i)).is_err() {
                break;
            }
        }
    });
    for _ in 0..n {
        rx.receive(port).map_err(|e| e.to_string())?;
    }
    let d = start.elapsed();
    let _ = sender.join();
    Ok(d)
}

fn crossbeam_one_way(n: u64, capacity: Capacity) -> Duration {
    let (tx, rx) = match capacity {
        Capacity::Zero => crossbeam_channel::bounded::<u64>(0),
        Capacity::Bounded(k) => crossbeam_channel::bounded::<u64>(k),
        Capacity::Unbounded => crossbeam_channel::unbounded::<u64>(),
    };
    let start = Instant::now();
    let sender = thread::spawn(move || {
        for i in 0..n {
            if tx.send(i).is_err() {
                break;
            }
        }
    });
    for _ in 0..n {
        if rx.recv().is_err() {
            break;
        }
    }
    let d = start.elapsed();
    let _ = sender.join();
    d
}

fn kernel_vs_crossbeam(n: u64, capacity: Capacity) -> BenchLine {
    let name = format!("kernel port {capacity}, 8 B, 2 threads");
    match kernel_one_way(n, capacity) {
        Ok(d) => BenchLine {
            name,
            ops: n,
            mkipc: d,
            baseline: Some((
                format!("crossbeam {capacity}"),
                crossbeam_one_way(n, capacity),
            )),
            skipped: None,
        },
        Err(e) => skipped(name, e),
    }
}

fn skipped(name: String, why: String) -> BenchLine {
    BenchLine {
        name,
        ops: 0,
        mkipc: Duration::ZERO,
        baseline: None,
        skipped: Some(why),
    }
}

fn sim_ping_pong(rounds: u64) -> BenchLine {
    let name = "sim ping-pong, scheduled IPC ops".to_string();
    let mut sim = Sim::builder().seed(1).trace(false).build();
    if let Err(e) = workload::ping_pong(&mut sim, rounds) {
        return skipped(name, e.to_string());
    }
    let start = Instant::now();
    match sim.run() {
        Ok(_) => BenchLine {
            name,
            ops: rounds * workload::PING_PONG_OPS_PER_ROUND,
            mkipc: start.elapsed(),
            baseline: None,
            skipped: None,
        },
        Err(f) => skipped(name, f.reason.to_string()),
    }
}

fn os_vs_mqueue(n: u64) -> BenchLine {
    let name = "os port (POSIX queue), 8 B, 1 process".to_string();
    let os = match mkipc_os::OsProcess::new() {
        Ok(os) => os,
        Err(e) => return skipped(name, format!("os backend unavailable here: {e}")),
    };
    let measured = (|| -> Result<Duration, String> {
        let port = os
            .port_allocate(Capacity::Bounded(8))
            .map_err(|e| e.to_string())?;
        let to = os.make_send(port).map_err(|e| e.to_string())?;
        let start = Instant::now();
        for i in 0..n {
            os.send(to, Message::from_u64(1, i))
                .map_err(|e| e.to_string())?;
            os.receive(port).map_err(|e| e.to_string())?;
        }
        Ok(start.elapsed())
    })();
    let mkipc = match measured {
        Ok(d) => d,
        Err(e) => return skipped(name, e),
    };
    match raw_mqueue(n) {
        Ok(d) => BenchLine {
            name,
            ops: n,
            mkipc,
            baseline: Some(("raw mq_send+mq_receive".into(), d)),
            skipped: None,
        },
        Err(e) => skipped(name, e),
    }
}

/// `n` times: `mq_send` 8 bytes into a POSIX queue, `mq_receive` them back
/// (the same OS object the os backend's port is made of, without mkipc).
fn raw_mqueue(n: u64) -> Result<Duration, String> {
    let name = std::ffi::CString::new(format!("/mkipc-bench-{}", std::process::id()))
        .map_err(|e| e.to_string())?;
    // SAFETY: `mq_attr` is a plain C struct for which all-zero bytes are valid.
    let mut attr: libc::mq_attr = unsafe { std::mem::zeroed() };
    attr.mq_maxmsg = 8;
    attr.mq_msgsize = 8;
    // SAFETY: `name` is a NUL-terminated string and `attr` a valid mq_attr;
    // O_CREAT with a mode and an attribute pointer is the documented form.
    let q = unsafe {
        libc::mq_open(
            name.as_ptr(),
            libc::O_CREAT | libc::O_EXCL | libc::O_RDWR,
            0o600 as libc::mode_t,
            &attr as *const libc::mq_attr,
        )
    };
    if q == -1 {
        return Err(format!("mq_open: {}", std::io::Error::last_os_error()));
    }
    // Unlink at once: the descriptor keeps the queue alive, nothing is left behind.
    // SAFETY: `name` is a NUL-terminated string.
    unsafe { libc::mq_unlink(name.as_ptr()) };
    let mut buf = [0u8; 8];
    let start = Instant::now();
    let mut result = Ok(());
    for i in 0..n {
        let bytes = i.to_le_bytes();
        // SAFETY: `q` is an open queue descriptor and `bytes` is 8 valid bytes.
        let sent = unsafe { libc::mq_send(q, bytes.as_ptr().cast(), 8, 0) };
        // SAFETY: `q` is open and `buf` has room for `mq_msgsize` (8) bytes.
        let got = unsafe { libc::mq_receive(q, buf.as_mut_ptr().cast(), 8, std::ptr::null_mut()) };
        if sent != 0 || got != 8 {
            result = Err(format!("mq i/o: {}", std::io::Error::last_os_error()));
            break;
        }
    }
    let d = start.elapsed();
    // SAFETY: `q` was opened above and is closed once.
    unsafe { libc::mq_close(q) };
    result.map(|()| d)
}

/// Median, smallest and largest of a set of measurements.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` if there are none or one is not a
    /// number.
    pub fn of(values: &[f64]) -> Option<Spread> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        let median = if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        };
        Some(Spread {
            median,
            min: v[0],
            max: v[v.len() - 1],
        })
    }
}

/// One case over every run: a row of the table and of `--json`.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// What was measured (the table's `case`).
    pub case: String,
    /// Operations done by each side in one run.
    pub ops: u64,
    /// Runs measured.
    pub runs: usize,
    /// mkipc's nanoseconds per operation.
    pub mkipc_ns_per_op: Option<Spread>,
    /// mkipc's millions of operations per second (for a case without a
    /// baseline, the table shows its median).
    pub mkipc_mops_per_s: Option<Spread>,
    /// The baseline's name, if the case has one.
    pub baseline: Option<String>,
    /// The baseline's nanoseconds per operation.
    pub baseline_ns_per_op: Option<Spread>,
    /// mkipc time / baseline time, computed per run (both measured in the
    /// same run), then summarised.
    pub ratio: Option<Spread>,
    /// Why the case was skipped (in any run), if it was.
    pub skipped: Option<String>,
}

/// `mkipc bench --json`: the whole suite as one JSON document.
///
/// Stable: fields are only ever added, and a change that is not an
/// addition changes [`BenchJson::schema`].
#[derive(Clone, Debug, Serialize)]
pub struct BenchJson {
    /// `"mkipc-bench/1"`.
    pub schema: &'static str,
    /// `--scale`.
    pub scale: f64,
    /// `--runs`.
    pub runs: usize,
    /// One row per case, in the table's order.
    pub rows: Vec<BenchRow>,
}

/// Runs the suite `runs` times (each run every case in turn, so a slow
/// moment of the machine spreads over the cases instead of hitting one).
pub fn run_many(scale: f64, runs: usize) -> Vec<Vec<BenchLine>> {
    (0..runs).map(|_| run(scale)).collect()
}

/// One row per case over every run of [`run_many`].
pub fn summarize(runs: &[Vec<BenchLine>]) -> Vec<BenchRow> {
    let Some(first) = runs.first() else {
        return Vec::new();
    };
    (0..first.len())
        .map(|i| {
            let lines: Vec<&BenchLine> = runs.iter().filter_map(|r| r.get(i)).collect();
            let head = lines[0];
            let mut row = BenchRow {
                case: head.name.clone(),
                ops: head.ops,
                runs: lines.len(),
                mkipc_ns_per_op: None,
                mkipc_mops_per_s: None,
                baseline: head.baseline.as_ref().map(|(n, _)| n.clone()),
                baseline_ns_per_op: None,
                ratio: None,
                skipped: None,
            };
            if let Some(why) = lines.iter().find_map(|l| l.skipped.clone()) {
                row.skipped = Some(why);
                row.baseline = None;
                return row;
            }
            let ours: Vec<f64> = lines
                .iter()
                .map(|l| BenchLine::per_op(l.mkipc, l.ops))
                .collect();
            row.mkipc_ns_per_op = Spread::of(&ours);
            let rates: Vec<f64> = lines
                .iter()
                .map(|l| l.ops as f64 / l.mkipc.as_secs_f64().max(1e-9) / 1e6)
                .collect();
            row.mkipc_mops_per_s = Spread::of(&rates);
            let base: Vec<f64> = lines
                .iter()
                .filter_map(|l| {
                    l.baseline
                        .as_ref()
                        .map(|(_, d)| BenchLine::per_op(*d, l.ops))
                })
                .collect();
            if base.len() == lines.len() {
                row.baseline_ns_per_op = Spread::of(&base);
                let ratios: Vec<f64> = ours
                    .iter()
                    .zip(&base)
                    .map(|(o, b)| o / b.max(f64::MIN_POSITIVE))
                    .collect();
                row.ratio = Spread::of(&ratios);
            }
            row
        })
        .collect()
}

/// The suite's summary as the document `mkipc bench --json` prints.
pub fn json(scale: f64, runs: usize, rows: Vec<BenchRow>) -> BenchJson {
    BenchJson {
        schema: "mkipc-bench/1",
        scale,
        runs,
        rows,
    }
}

/// The table: medians over the runs, and each ratio to the peer as
/// `median [min–max]`.
pub fn render(rows: &[BenchRow]) -> String {
    let mut s = String::new();
    let runs = rows.iter().map(|r| r.runs).max().unwrap_or(0);
    let _ = writeln!(
        s,
        "{:<40} {:>9} {:>11}  {:<26} {:>11}  ratio median [min–max]",
        "case", "ops", "mkipc ns/op", "baseline", "base ns/op"
    );
    for r in rows {
        if let Some(why) = &r.skipped {
            let _ = writeln!(s, "{:<40} skipped: {why}", r.case);
            continue;
        }
        let ours = r.mkipc_ns_per_op.map_or(f64::NAN, |x| x.median);
        match (&r.baseline, r.baseline_ns_per_op, r.ratio) {
            (Some(name), Some(base), Some(ratio)) => {
                let _ = writeln!(
                    s,
                    "{:<40} {:>9} {:>11.1}  {:<26} {:>11.1}  {:>6.2}x [{:.2}–{:.2}]",
                    r.case, r.ops, ours, name, base.median, ratio.median, ratio.min, ratio.max
                );
            }
            _ => {
                let rate = r.mkipc_mops_per_s.map_or(f64::NAN, |x| x.median);
                let _ = writeln!(
                    s,
                    "{:<40} {:>9} {:>11.1}  {:<26} {:>11}  {:>7}",
                    r.case,
                    r.ops,
                    ours,
                    format!("= {rate:.2} M ops/s"),
                    "-",
                    "-"
                );
            }
        }
    }
    let _ = writeln!(
        s,
        "ns/op: median of {runs} run(s). ratio = mkipc time / baseline time per operation, taken in each\n\
         run (1.00x: as fast; 2.00x: twice as slow): the median, and [min–max] over the runs."
    );
    s
}
