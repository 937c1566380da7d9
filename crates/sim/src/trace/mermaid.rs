//! Mermaid sequence diagrams: processes and labelled ports as participants.
//!
//! A send to a labelled port is an arrow from the sender to the port; a
//! receive is an arrow from the port to the receiver; direct sends go from
//! process to process. Blocks, kills and exits are notes. Paste the output
//! into any Mermaid renderer (GitHub renders ```mermaid blocks). The gap
//! of a cut trace ([`Trace::gap`]) is a note over every process.

use std::collections::BTreeSet;
use std::fmt::Write;

use super::{EventKind, SendOutcome, Target, Trace};

fn ident(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

impl Trace {
    /// The trace as a Mermaid `sequenceDiagram`.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("sequenceDiagram\n");
        let mut ports = BTreeSet::new();
        for e in &self.events {
            if let EventKind::SendCompleted {
                to: t @ Target::Name(_),
                ..
            }
            | EventKind::Received {
                from: t @ Target::Name(_),
                ..
            } = &e.kind
            {
                ports.insert(self.target_name(e.proc, *t));
            }
        }
        for p in &self.procs {
            let _ = writeln!(out, "    participant {} as {}", ident(&p.name), p.name);
        }
        for p in &ports {
            let _ = writeln!(out, "    participant {} as [{}]", ident(p), p);
        }
        let gap_at = self.gap.map(|g| g.index);
        let gap_note = |out: &mut String| {
            if let (Some(note), Some(first), Some(last)) = (
                self.truncation_note(),
                self.procs.first(),
                self.procs.last(),
            ) {
                let (first, last) = (ident(&first.name), ident(&last.name));
                let over = if first == last {
                    first
                } else {
                    format!("{first},{last}")
                };
                let _ = writeln!(out, "    Note over {over}: {note}");
            }
        };
        for (i, e) in self.events.iter().enumerate() {
            if gap_at == Some(i) {
                gap_note(&mut out);
            }
            let me = ident(self.proc_name(e.proc));
            let at = format!("t={:?}", e.time);
            match &e.kind {
                EventKind::SendCompleted {
                    to,
                    msg_id,
                    outcome,
                } => {
                    let to = ident(&self.target_name(e.proc, *to));
                    let what = match outcome {
                        SendOutcome::Delivered => "send".to_string(),
                        SendOutcome::Dropped => "send (dropped)".to_string(),
                        SendOutcome::Displaced => "send (displaced oldest)".to_string(),
                        SendOutcome::Failed(k) => format!("send failed: {k:?}"),
                    };
                    let arrow = if matches!(outcome, SendOutcome::Failed(_)) {
                        "-x"
                    } else {
                        "->>"
                    };
                    let _ = writeln!(out, "    {me}{arrow}{to}: {what} #{msg_id} ({at})");
                }
                EventKind::Received { from, msg_id, .. } => {
                    let from = ident(&self.target_name(e.proc, *from));
                    let _ = writeln!(out, "    {from}->>{me}: receive #{msg_id} ({at})");
                }
                EventKind::SendBlocked { to } => {
                    let _ = writeln!(
                        out,
                        "    Note over {me}: blocked sending to {} ({at})",
                        self.target_name(e.proc, *to)
                    );
                }
                EventKind::ReceiveBlocked { from } => {
                    let _ = writeln!(
                        out,
                        "    Note over {me}: blocked receiving from {} ({at})",
                        self.target_name(e.proc, *from)
                    );
                }
                EventKind::ReceiveFailed { from, error } => {
                    let _ = writeln!(
                        out,
                        "    Note over {me}: receive from {} failed: {error:?}",
                        self.target_name(e.proc, *from)
                    );
                }
                EventKind::Killed { cause } => {
                    let _ = writeln!(out, "    Note over {me}: killed ({cause:?}, {at})");
                }
                EventKind::Exited { status } => {
                    let _ = writeln!(out, "    Note over {me}: exit: {status} ({at})");
                }
                EventKind::TimedOut => {
                    let _ = writeln!(out, "    Note over {me}: timed out ({at})");
                }
                _ => {}
            }
        }
        if gap_at == Some(self.events.len()) {
            gap_note(&mut out);
        }
        out
    }
}
