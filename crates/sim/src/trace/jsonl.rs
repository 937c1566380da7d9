//! JSON lines: one event per line, the canonical byte form of a trace.
//!
//! ```text
//! {"step":3,"t_ns":1000000,"proc":0,"name":"producer","ev":"send_completed","to":"jobs","msg":1,"outcome":"delivered"}
//! ```
//!
//! A cut trace ([`Trace::gap`]) has one more line where events were left out:
//!
//! ```text
//! {"ev":"trace_truncated","dropped":1899990,"note":"trace truncated: ..."}
//! ```

use std::fmt::Write;

use super::{json_str, Event, EventKind, SendOutcome, Trace};

impl Trace {
    /// Every event as one JSON object per line (and a `trace_truncated`
    /// line at the gap of a cut trace).
    pub fn to_json_lines(&self) -> String {
        let mut out = String::with_capacity(self.events.len() * 96);
        let gap_at = self.gap.map(|g| g.index);
        for (i, e) in self.events.iter().enumerate() {
            if gap_at == Some(i) {
                self.write_gap(&mut out);
            }
            self.write_event(&mut out, e);
            out.push('\n');
        }
        if gap_at == Some(self.events.len()) {
            self.write_gap(&mut out);
        }
        out
    }

    fn write_gap(&self, out: &mut String) {
        if let Some(note) = self.truncation_note() {
            let _ = write!(
                out,
                "{{\"ev\":\"trace_truncated\",\"dropped\":{},\"note\":",
                self.events_dropped()
            );
            json_str(out, &note);
            out.push_str("}\n");
        }
    }

    fn write_event(&self, out: &mut String, e: &Event) {
        let _ = write!(
            out,
            "{{\"step\":{},\"t_ns\":{},\"proc\":{},\"name\":",
            e.step,
            e.time.as_nanos(),
            e.proc.0
        );
        json_str(out, self.proc_name(e.proc));
        let target = |out: &mut String, key: &str, t| {
            let _ = write!(out, ",\"{key}\":");
            json_str(out, &self.target_name(e.proc, t));
        };
        match &e.kind {
            EventKind::Spawned { parent } => {
                out.push_str(",\"ev\":\"spawned\"");
                if let Some(p) = parent {
                    let _ = write!(out, ",\"parent\":{}", p.0);
                }
            }
            EventKind::RightsInherited { count } => {
                let _ = write!(out, ",\"ev\":\"rights_inherited\",\"count\":{count}");
            }
            EventKind::SendStarted { to, msg_id, rights } => {
                out.push_str(",\"ev\":\"send_started\"");
                target(out, "to", *to);
                let _ = write!(out, ",\"msg\":{msg_id},\"rights\":{rights}");
            }
            EventKind::SendBlocked { to } => {
                out.push_str(",\"ev\":\"send_blocked\"");
                target(out, "to", *to);
            }
            EventKind::SendCompleted {
                to,
                msg_id,
                outcome,
            } => {
                out.push_str(",\"ev\":\"send_completed\"");
                target(out, "to", *to);
                let _ = write!(out, ",\"msg\":{msg_id},\"outcome\":");
                match outcome {
                    SendOutcome::Delivered => out.push_str("\"delivered\""),
                    SendOutcome::Dropped => out.push_str("\"dropped\""),
                    SendOutcome::Displaced => out.push_str("\"displaced\""),
                    SendOutcome::Failed(k) => json_str(out, &format!("{k:?}")),
                }
            }
            EventKind::ReceiveStarted { from } => {
                out.push_str(",\"ev\":\"receive_started\"");
                target(out, "from", *from);
            }
            EventKind::ReceiveBlocked { from } => {
                out.push_str(",\"ev\":\"receive_blocked\"");
                target(out, "from", *from);
            }
            EventKind::Received {
                from,
                msg_id,
                sender,
                rights,
            } => {
                out.push_str(",\"ev\":\"received\"");
                target(out, "from", *from);
                let _ = write!(out, ",\"msg\":{msg_id},\"rights\":{rights}");
                if let Some(s) = sender {
                    let _ = write!(out, ",\"sender\":{s}");
                }
            }
            EventKind::ReceiveFailed { from, error } => {
                out.push_str(",\"ev\":\"receive_failed\"");
                target(out, "from", *from);
                out.push_str(",\"error\":");
                json_str(out, &format!("{error:?}"));
            }
            EventKind::Op { op, ok } => {
                let _ = write!(out, ",\"ev\":\"op\",\"op\":\"{op}\",\"ok\":{ok}");
            }
            EventKind::Work { duration } => {
                let _ = write!(out, ",\"ev\":\"work\",\"d_ns\":{}", duration.as_nanos());
            }
            EventKind::Sleep { duration } => {
                let _ = write!(out, ",\"ev\":\"sleep\",\"d_ns\":{}", duration.as_nanos());
            }
            EventKind::TimedOut => out.push_str(",\"ev\":\"timed_out\""),
            EventKind::Killed { cause } => {
                out.push_str(",\"ev\":\"killed\",\"cause\":");
                json_str(out, &format!("{cause:?}"));
            }
            EventKind::Exited { status } => {
                out.push_str(",\"ev\":\"exited\",\"status\":");
                json_str(out, &status.to_string());
            }
        }
        out.push('}');
    }
}
