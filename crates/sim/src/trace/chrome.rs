//! Chrome trace-event JSON, for Perfetto (ui.perfetto.dev) or `chrome://tracing`.
//!
//! One track per process (`tid` = process id, named by metadata events).
//! `work` and `sleep` are complete (`X`) slices, blocked sends and receives
//! are begin/end (`B`/`E`) slices closed when the operation completes, and
//! sends, receives, kills and exits are instant (`i`) events. Timestamps are
//! virtual microseconds. The gap of a cut trace ([`Trace::gap`]) is a global
//! instant event; slices still open there are closed at it.

use super::{json_str, EventKind, Trace};

fn quoted(s: &str) -> String {
    let mut out = String::new();
    json_str(&mut out, s);
    out
}

impl Trace {
    /// The trace in Chrome's trace-event format (a JSON object).
    pub fn to_chrome_json(&self) -> String {
        let mut entries: Vec<String> = Vec::with_capacity(self.events.len() + self.procs.len());
        for (i, p) in self.procs.iter().enumerate() {
            entries.push(format!(
                "{{\"ph\":\"M\",\"pid\":1,\"tid\":{i},\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
                quoted(&format!("{} (pid {})", p.name, p.pid))
            ));
        }
        let mut blocked = vec![false; self.procs.len()];
        let gap_at = self.gap.map(|g| g.index);
        let gap = |entries: &mut Vec<String>, blocked: &mut Vec<bool>| {
            // At the time of the last event before the gap.
            let ts = gap_at
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| self.events.get(i))
                .map_or(0.0, |e| e.time.as_nanos() as f64 / 1000.0);
            for (tid, b) in blocked.iter_mut().enumerate() {
                if std::mem::take(b) {
                    entries.push(format!(
                        "{{\"ph\":\"E\",\"pid\":1,\"tid\":{tid},\"ts\":{ts}}}"
                    ));
                }
            }
            if let Some(note) = self.truncation_note() {
                entries.push(format!(
                    "{{\"ph\":\"i\",\"s\":\"g\",\"pid\":1,\"tid\":0,\"ts\":{ts},\"name\":{}}}",
                    quoted(&note)
                ));
            }
        };
        for (i, e) in self.events.iter().enumerate() {
            if gap_at == Some(i) {
                gap(&mut entries, &mut blocked);
            }
            let tid = e.proc.0;
            let ts = e.time.as_nanos() as f64 / 1000.0;
            let instant = |name: String| {
                format!(
                    "{{\"ph\":\"i\",\"s\":\"t\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"name\":{}}}",
                    quoted(&name)
                )
            };
            let mut close_block = |entries: &mut Vec<String>| {
                if let Some(b) = blocked.get_mut(tid as usize) {
                    if std::mem::take(b) {
                        entries.push(format!(
                            "{{\"ph\":\"E\",\"pid\":1,\"tid\":{tid},\"ts\":{ts}}}"
                        ));
                    }
                }
            };
            match &e.kind {
                EventKind::SendBlocked { to: t } | EventKind::ReceiveBlocked { from: t } => {
                    let what = if matches!(e.kind, EventKind::SendBlocked { .. }) {
                        "send to"
                    } else {
                        "receive from"
                    };
                    let name = format!("blocked {what} {}", self.target_name(e.proc, *t));
                    entries.push(format!(
                        "{{\"ph\":\"B\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"name\":{}}}",
                        quoted(&name)
                    ));
                    if let Some(b) = blocked.get_mut(tid as usize) {
                        *b = true;
                    }
                }
                EventKind::SendCompleted {
                    to,
                    msg_id,
                    outcome,
                } => {
                    close_block(&mut entries);
                    entries.push(instant(format!(
                        "send #{msg_id} to {}: {outcome:?}",
                        self.target_name(e.proc, *to)
                    )));
                }
                EventKind::Received { from, msg_id, .. } => {
                    close_block(&mut entries);
                    entries.push(instant(format!(
                        "receive #{msg_id} from {}",
                        self.target_name(e.proc, *from)
                    )));
                }
                EventKind::ReceiveFailed { from, error } => {
                    close_block(&mut entries);
                    entries.push(instant(format!(
                        "receive from {} failed: {error:?}",
                        self.target_name(e.proc, *from)
                    )));
                }
                EventKind::Work { duration } | EventKind::Sleep { duration } => {
                    let name = if matches!(e.kind, EventKind::Work { .. }) {
                        "work"
                    } else {
                        "sleep"
                    };
                    let dur = duration.as_nanos() as f64 / 1000.0;
                    entries.push(format!(
                        "{{\"ph\":\"X\",\"pid\":1,\"tid\":{tid},\"ts\":{ts},\"dur\":{dur},\"name\":\"{name}\"}}"
                    ));
                }
                EventKind::Killed { cause } => {
                    close_block(&mut entries);
                    entries.push(instant(format!("killed ({cause:?})")));
                }
                EventKind::Exited { status } => {
                    close_block(&mut entries);
                    entries.push(instant(format!("exit: {status}")));
                }
                _ => {}
            }
        }
        if gap_at == Some(self.events.len()) {
            gap(&mut entries, &mut blocked);
        }
        format!(
            "{{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n{}\n]}}\n",
            entries.join(",\n")
        )
    }
}
