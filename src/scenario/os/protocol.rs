//! The messages between the coordinator and its scenario processes: setup,
//! ready, go, and the report with each process's counters.

use super::*;

/// Nanoseconds on `CLOCK_MONOTONIC`, the same clock in every process.
pub(super) fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(ts.tv_nsec as u64)
}

/// `d` times `scale` (`--time-scale`), saturating instead of panicking
/// when the product is too large for a `Duration`.
pub(super) fn scaled(d: Duration, scale: f64) -> Duration {
    Duration::try_from_secs_f64(d.as_secs_f64() * scale).unwrap_or(Duration::MAX)
}

// ----- the setup message -------------------------------------------------------

pub(super) struct Setup {
    pub(super) me: usize,
    pub(super) seed: u64,
    pub(super) scale: f64,
    pub(super) pids: Vec<Option<u32>>,
    pub(super) file: String,
    /// The `--set` overrides the coordinator parsed the scenario with.
    pub(super) overrides: Vec<(String, i64)>,
    /// Where to write this process's trace (`trace_file`), on a traced run.
    pub(super) trace: Option<String>,
    pub(super) source: String,
}

impl Setup {
    pub(super) fn encode(&self) -> Vec<u8> {
        let mut t = String::new();
        let _ = writeln!(t, "mkipc-scenario-setup 1");
        let _ = writeln!(t, "me {}", self.me);
        let _ = writeln!(t, "seed {}", self.seed);
        let _ = writeln!(t, "scale {}", self.scale);
        for (i, p) in self.pids.iter().enumerate() {
            if let Some(p) = p {
                let _ = writeln!(t, "pid {i} {p}");
            }
        }
        let _ = writeln!(t, "file {}", self.file.replace('\n', " "));
        for (name, value) in &self.overrides {
            let _ = writeln!(t, "set {name} {value}");
        }
        if let Some(dir) = &self.trace {
            let _ = writeln!(t, "trace {}", dir.replace('\n', " "));
        }
        t.push_str("source\n");
        t.push_str(&self.source);
        t.into_bytes()
    }

    pub(super) fn decode(body: &[u8], nprocs_hint: usize) -> Option<Setup> {
        let text = std::str::from_utf8(body).ok()?;
        let (head, source) = text.split_once("\nsource\n")?;
        let mut lines = head.lines();
        if lines.next()? != "mkipc-scenario-setup 1" {
            return None;
        }
        let mut s = Setup {
            me: usize::MAX,
            seed: 0,
            scale: 1.0,
            pids: vec![None; nprocs_hint],
            file: String::new(),
            overrides: Vec::new(),
            trace: None,
            source: source.to_string(),
        };
        for line in lines {
            let (k, v) = line.split_once(' ')?;
            match k {
                "me" => s.me = v.parse().ok()?,
                "seed" => s.seed = v.parse().ok()?,
                "scale" => s.scale = v.parse().ok()?,
                "pid" => {
                    let (i, p) = v.split_once(' ')?;
                    let i: usize = i.parse().ok().filter(|&i| i < 1 << 20)?;
                    if i >= s.pids.len() {
                        s.pids.resize(i + 1, None);
                    }
                    s.pids[i] = Some(p.parse().ok()?);
                }
                "file" => s.file = v.to_string(),
                "trace" => s.trace = Some(v.to_string()),
                "set" => {
                    let (name, value) = v.split_once(' ')?;
                    s.overrides.push((name.to_string(), value.parse().ok()?));
                }
                _ => return None,
            }
        }
        Some(s)
    }
}

// ----- reports -------------------------------------------------------------------

/// One process's figures, one line of a report.
#[derive(Clone, Debug, Default)]
pub(super) struct ProcLine {
    pub(super) idx: usize,
    /// `exit:N`, `signal:N` or `-` (not known yet: the parent fills it in).
    pub(super) status: String,
    pub(super) sent: u64,
    pub(super) received: u64,
    pub(super) drops: u64,
    pub(super) send_failures: u64,
    pub(super) dropped: u64,
    pub(super) blocked_ns: u64,
    pub(super) working_ns: u64,
    /// Per queue: sent, received, dropped, total latency (ns).
    pub(super) queues: Vec<[u64; 4]>,
    pub(super) error: String,
    /// Set by the coordinator: why it killed the process.
    pub(super) killed_for: Option<&'static str>,
    /// Set by the coordinator: the process sent no report (it was killed
    /// first), so these figures are zeros standing for "unknown".
    pub(super) unreported: bool,
}

impl ProcLine {
    pub(super) fn encode(&self) -> String {
        let mut t = format!(
            "{} {} {} {} {} {} {} {} {} {}",
            self.idx,
            self.status,
            self.sent,
            self.received,
            self.drops,
            self.send_failures,
            self.dropped,
            self.blocked_ns,
            self.working_ns,
            self.queues.len()
        );
        for q in &self.queues {
            let _ = write!(t, " {} {} {} {}", q[0], q[1], q[2], q[3]);
        }
        let _ = write!(t, ";{}", self.error.replace('\n', " "));
        t
    }

    pub(super) fn decode(line: &str) -> Option<ProcLine> {
        let (nums, error) = line.split_once(';')?;
        let mut w = nums.split(' ');
        let mut next = || w.next();
        let idx = next()?.parse().ok()?;
        let status = next()?.to_string();
        let mut n = [0u64; 8];
        for v in &mut n {
            *v = next()?.parse().ok()?;
        }
        let nq = n[7] as usize;
        let mut queues = Vec::with_capacity(nq.min(1024));
        for _ in 0..nq {
            let mut q = [0u64; 4];
            for v in &mut q {
                *v = next()?.parse().ok()?;
            }
            queues.push(q);
        }
        Some(ProcLine {
            idx,
            status,
            sent: n[0],
            received: n[1],
            drops: n[2],
            send_failures: n[3],
            dropped: n[4],
            blocked_ns: n[5],
            working_ns: n[6],
            queues,
            error: error.to_string(),
            killed_for: None,
            unreported: false,
        })
    }

    /// A process that ended without sending a report.
    pub(super) fn missing(idx: usize, why: &str) -> ProcLine {
        ProcLine {
            idx,
            status: "-".into(),
            error: why.to_string(),
            ..ProcLine::default()
        }
    }
}

pub(super) fn decode_report(body: &[u8]) -> Option<Vec<ProcLine>> {
    std::str::from_utf8(body)
        .ok()?
        .lines()
        .map(ProcLine::decode)
        .collect()
}

pub(super) fn encode_report(lines: &[ProcLine]) -> Vec<u8> {
    lines
        .iter()
        .map(ProcLine::encode)
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

pub(super) fn status_token(s: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit:{c}"),
        (None, Some(sig)) => format!("signal:{sig}"),
        _ => "-".into(),
    }
}
