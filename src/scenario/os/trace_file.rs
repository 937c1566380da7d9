//! Traces of the os backend: each scenario process writes its events to a
//! file of its own in a directory the coordinator made (`trace DIR` in the
//! setup), one line per event, written as it happens (one `write`, so what a
//! process did before it was killed is still there), with times on
//! `CLOCK_MONOTONIC` since the run's go. The coordinator reads every file
//! at the end, merges the events into one [`Trace`] and removes the
//! directory.
//!
//! Lines: `proc IDX PID`, then `e T_NS KIND ...` per event, and `label RAW
//! QUEUE` per name the process held for a queue (written as it ends). A
//! failed send or receive whose error carries data that has no one-word
//! form here (a bad carried right, an unsupported feature, a system limit,
//! a malformed frame) is left out rather than written as another error.

use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use mkipc_kernel::{PortName, ReceiveError, SendErrorKind};
use mkipc_sim::trace::{EventKind, SendOutcome, Target};
use mkipc_sim::{ExitStatus, ProcId, Trace};

use super::super::record::Recorder;
use super::protocol::monotonic_ns;

/// Where one process writes its events.
#[derive(Debug)]
pub(super) struct TraceFile {
    file: Mutex<File>,
    start_ns: u64,
}

impl TraceFile {
    /// Creates `DIR/PID.trace` for process `idx` of the scenario.
    pub(super) fn create(dir: &Path, idx: usize, pid: u32, start_ns: u64) -> Option<TraceFile> {
        let mut file = File::create(dir.join(format!("{pid}.trace"))).ok()?;
        file.write_all(format!("proc {idx} {pid}\n").as_bytes())
            .ok()?;
        Some(TraceFile {
            file: Mutex::new(file),
            start_ns,
        })
    }

    fn line(&self, text: &str) {
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let _ = f.write_all(text.as_bytes());
    }

    /// Records `kind` now.
    pub(super) fn emit(&self, kind: &EventKind) {
        if let Some(k) = encode(kind) {
            let t = monotonic_ns().saturating_sub(self.start_ns);
            self.line(&format!("e {t} {k}\n"));
        }
    }

    /// Records that `name` is this process's name for queue `queue`.
    pub(super) fn label(&self, name: PortName, queue: &str) {
        self.line(&format!("label {} {queue}\n", name.to_raw()));
    }
}

fn target(t: Target) -> String {
    match t {
        Target::Name(n) => format!("n:{}", n.to_raw()),
        Target::AnyOf(k) => format!("a:{k}"),
        Target::Task(p) => format!("t:{p}"),
        Target::AnyTask => "*".into(),
    }
}

fn parse_target(s: &str) -> Option<Target> {
    Some(match s.split_once(':') {
        Some(("n", v)) => Target::Name(PortName::from_raw(v.parse().ok()?)),
        Some(("a", v)) => Target::AnyOf(v.parse().ok()?),
        Some(("t", v)) => Target::Task(v.parse().ok()?),
        _ if s == "*" => Target::AnyTask,
        _ => return None,
    })
}

const SEND_KINDS: &[(&str, SendErrorKind)] = &[
    ("full", SendErrorKind::Full),
    ("timed-out", SendErrorKind::TimedOut),
    ("destination-dead", SendErrorKind::DestinationDead),
    ("invalid-destination", SendErrorKind::InvalidDestination),
    ("wrong-right", SendErrorKind::WrongRight),
    ("no-permission", SendErrorKind::NoPermission),
    ("memory-limit", SendErrorKind::MemoryLimit),
    ("task-exited", SendErrorKind::TaskExited),
];

const RECEIVE_KINDS: &[(&str, ReceiveError)] = &[
    ("empty", ReceiveError::Empty),
    ("timed-out", ReceiveError::TimedOut),
    ("source-dead", ReceiveError::SourceDead),
    ("invalid-name", ReceiveError::InvalidName),
    ("wrong-right", ReceiveError::WrongRight),
    ("no-permission", ReceiveError::NoPermission),
    ("port-moved", ReceiveError::PortMoved),
    ("task-exited", ReceiveError::TaskExited),
    ("invalid-value", ReceiveError::InvalidValue),
];

fn send_kind(k: SendErrorKind) -> Option<String> {
    match k {
        SendErrorKind::TooLarge { limit } => Some(format!("too-large:{limit}")),
        SendErrorKind::Os(e) => Some(format!("os:{e}")),
        k => SEND_KINDS
            .iter()
            .find(|(_, v)| *v == k)
            .map(|(n, _)| n.to_string()),
    }
}

fn parse_send_kind(s: &str) -> Option<SendErrorKind> {
    match s.split_once(':') {
        Some(("too-large", l)) => Some(SendErrorKind::TooLarge {
            limit: l.parse().ok()?,
        }),
        Some(("os", e)) => Some(SendErrorKind::Os(e.parse().ok()?)),
        _ => SEND_KINDS.iter().find(|(n, _)| *n == s).map(|(_, k)| *k),
    }
}

fn receive_kind(e: ReceiveError) -> Option<String> {
    match e {
        ReceiveError::Os(n) => Some(format!("os:{n}")),
        e => RECEIVE_KINDS
            .iter()
            .find(|(_, v)| *v == e)
            .map(|(n, _)| n.to_string()),
    }
}

fn parse_receive_kind(s: &str) -> Option<ReceiveError> {
    match s.split_once(':') {
        Some(("os", e)) => Some(ReceiveError::Os(e.parse().ok()?)),
        _ => RECEIVE_KINDS.iter().find(|(n, _)| *n == s).map(|(_, k)| *k),
    }
}

/// One event as the rest of its line, or `None` for one this format leaves out.
fn encode(kind: &EventKind) -> Option<String> {
    Some(match kind {
        EventKind::Spawned { .. } => "spawned".into(),
        EventKind::SendStarted { to, msg_id, rights } => {
            format!("send {} {msg_id} {rights}", target(*to))
        }
        EventKind::SendCompleted {
            to,
            msg_id,
            outcome,
        } => {
            let o = match outcome {
                SendOutcome::Delivered => "delivered".to_string(),
                SendOutcome::Dropped => "dropped".to_string(),
                SendOutcome::Displaced => "displaced".to_string(),
                SendOutcome::Failed(k) => format!("failed:{}", send_kind(*k)?),
            };
            format!("sent {} {msg_id} {o}", target(*to))
        }
        EventKind::ReceiveStarted { from } => format!("receive {}", target(*from)),
        EventKind::Received {
            from,
            msg_id,
            sender,
            rights,
        } => format!(
            "received {} {msg_id} {} {rights}",
            target(*from),
            sender.map_or("-".to_string(), |s| s.to_string())
        ),
        EventKind::ReceiveFailed { from, error } => {
            format!("receive-failed {} {}", target(*from), receive_kind(*error)?)
        }
        EventKind::Work { duration } => format!("work {}", duration.as_nanos()),
        EventKind::Sleep { duration } => format!("sleep {}", duration.as_nanos()),
        EventKind::Exited { status } => match status {
            ExitStatus::Exited(c) => format!("exited {c}"),
            ExitStatus::Failed { code, error } => {
                format!("failed {code} {}", error.replace('\n', " "))
            }
            _ => return None,
        },
        _ => return None,
    })
}

fn decode(rest: &str) -> Option<EventKind> {
    let mut w = rest.splitn(2, ' ');
    let verb = w.next()?;
    let args = w.next().unwrap_or("");
    let a: Vec<&str> = args.split(' ').collect();
    let nanos = |s: &str| s.parse::<u64>().ok().map(Duration::from_nanos);
    Some(match verb {
        "spawned" => EventKind::Spawned { parent: None },
        "send" => EventKind::SendStarted {
            to: parse_target(a.first()?)?,
            msg_id: a.get(1)?.parse().ok()?,
            rights: a.get(2)?.parse().ok()?,
        },
        "sent" => EventKind::SendCompleted {
            to: parse_target(a.first()?)?,
            msg_id: a.get(1)?.parse().ok()?,
            outcome: match *a.get(2)? {
                "delivered" => SendOutcome::Delivered,
                "dropped" => SendOutcome::Dropped,
                "displaced" => SendOutcome::Displaced,
                o => SendOutcome::Failed(parse_send_kind(o.strip_prefix("failed:")?)?),
            },
        },
        "receive" => EventKind::ReceiveStarted {
            from: parse_target(a.first()?)?,
        },
        "received" => EventKind::Received {
            from: parse_target(a.first()?)?,
            msg_id: a.get(1)?.parse().ok()?,
            sender: match *a.get(2)? {
                "-" => None,
                s => Some(s.parse().ok()?),
            },
            rights: a.get(3)?.parse().ok()?,
        },
        "receive-failed" => EventKind::ReceiveFailed {
            from: parse_target(a.first()?)?,
            error: parse_receive_kind(a.get(1)?)?,
        },
        "work" => EventKind::Work {
            duration: nanos(a.first()?)?,
        },
        "sleep" => EventKind::Sleep {
            duration: nanos(a.first()?)?,
        },
        "exited" => EventKind::Exited {
            status: ExitStatus::Exited(a.first()?.parse().ok()?),
        },
        "failed" => {
            let (code, error) = args.split_once(' ').unwrap_or((args, ""));
            EventKind::Exited {
                status: ExitStatus::Failed {
                    code: code.parse().ok()?,
                    error: error.to_string(),
                },
            }
        }
        _ => return None,
    })
}

/// Reads every process's file in `dir` into one trace, processes numbered
/// by scenario index, then pid; `names[idx]` names them.
pub(super) fn collect(dir: &Path, names: &[String]) -> Trace {
    let mut files: Vec<(usize, u32, PathBuf)> = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let mut head = text.lines().next().unwrap_or("").split(' ');
        if let (Some("proc"), Some(idx), Some(pid)) = (head.next(), head.next(), head.next()) {
            if let (Ok(idx), Ok(pid)) = (idx.parse(), pid.parse()) {
                files.push((idx, pid, path));
            }
        }
    }
    files.sort();
    let rec = Recorder::new(std::time::Instant::now());
    for (id, (idx, pid, path)) in files.iter().enumerate() {
        let id = ProcId(id as u32);
        let name = names.get(*idx).map_or("?", |n| n.as_str());
        rec.proc(id, name, *pid);
        let text = std::fs::read_to_string(path).unwrap_or_default();
        for line in text.lines().skip(1) {
            if let Some(rest) = line.strip_prefix("e ") {
                let Some((t, kind)) = rest.split_once(' ') else {
                    continue;
                };
                if let (Ok(t), Some(kind)) = (t.parse::<u64>(), decode(kind)) {
                    rec.emit_at(id, Duration::from_nanos(t), kind);
                }
            } else if let Some(rest) = line.strip_prefix("label ") {
                if let Some((raw, queue)) = rest.split_once(' ') {
                    if let Ok(raw) = raw.parse::<u64>() {
                        rec.label(*pid, PortName::from_raw(raw), queue);
                    }
                }
            }
        }
    }
    rec.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_kind_reads_back_the_same() {
        let n = PortName::from_raw(0x0000_0002_0000_0005);
        let kinds = [
            EventKind::Spawned { parent: None },
            EventKind::SendStarted {
                to: Target::Name(n),
                msg_id: 7,
                rights: 1,
            },
            EventKind::SendCompleted {
                to: Target::Task(42),
                msg_id: 7,
                outcome: SendOutcome::Failed(SendErrorKind::TooLarge { limit: 8164 }),
            },
            EventKind::SendCompleted {
                to: Target::Name(n),
                msg_id: 8,
                outcome: SendOutcome::Displaced,
            },
            EventKind::ReceiveStarted {
                from: Target::AnyOf(3),
            },
            EventKind::Received {
                from: Target::AnyTask,
                msg_id: 9,
                sender: Some(1234),
                rights: 0,
            },
            EventKind::ReceiveFailed {
                from: Target::Name(n),
                error: ReceiveError::TimedOut,
            },
            EventKind::Work {
                duration: Duration::from_micros(1500),
            },
            EventKind::Sleep {
                duration: Duration::from_nanos(1),
            },
            EventKind::Exited {
                status: ExitStatus::Failed {
                    code: 1,
                    error: "a send failed: the destination is dead".into(),
                },
            },
            EventKind::Exited {
                status: ExitStatus::Exited(3),
            },
        ];
        for k in kinds {
            let line = encode(&k).expect("written");
            assert_eq!(decode(&line), Some(k), "{line}");
        }
        assert_eq!(decode("nonsense 1 2"), None);
        assert_eq!(decode("send n:x 1 2"), None);
    }
}
