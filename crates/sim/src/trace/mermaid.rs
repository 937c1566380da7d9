//! Mermaid sequence diagrams: processes and labelled ports as participants.
//!
//! A send to a labelled port is an arrow from the sender to the port; a
//! receive is an arrow from the port to the receiver. A message to a port
//! with no label (a reply right, a right carried in a message) is drawn as
//! one arrow from its sender straight to the process that received it, so a
//! call's reply goes back to the client, not to a lane of its own. Direct
//! sends go from process to process. Blocks, kills and exits are notes.
//!
//! Each message's send is drawn before its receive, even where the trace
//! records them the other way round: on a rendezvous the receiver that was
//! waiting completes first, at the same virtual time.
//!
//! Mermaid's own syntax is kept out of the text: participant ids are
//! generated (`p0_producer`, `q0_jobs`, never a keyword such as `end`), and
//! `#` and `;` in labels are written as Mermaid entity codes (`#35;`,
//! `#59;`); a bare `#` would start a comment and cut the label. Paste the
//! output into any Mermaid renderer (GitHub renders ```mermaid blocks). The
//! gap of a cut trace ([`Trace::gap`]) is a note over every process.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fmt::Write;

use super::{Event, EventKind, SendOutcome, Target, Trace};

/// `s` as Mermaid label text: entity codes for the characters Mermaid would
/// read as syntax, spaces for line breaks.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '#' => out.push_str("#35;"),
            ';' => out.push_str("#59;"),
            '\n' | '\r' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn ident(prefix: char, index: usize, s: &str) -> String {
    let tail: String = s
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("{prefix}{index}_{tail}")
}

/// Pairs each delivered send with the receive that took its message: same
/// message id, the receive's sender pid is the sending process's, taken in
/// order per (sender, id). Returns `send index -> receive index` and back.
fn pair_messages(trace: &Trace) -> (HashMap<usize, usize>, HashMap<usize, usize>) {
    let mut sends: HashMap<(u32, u32), VecDeque<usize>> = HashMap::new();
    let mut recvs: HashMap<(u32, u32), VecDeque<usize>> = HashMap::new();
    let mut send_to_recv = HashMap::new();
    let mut recv_to_send = HashMap::new();
    let pid_of = |e: &Event| trace.procs.get(e.proc.0 as usize).map_or(0, |p| p.pid);
    for (i, e) in trace.events.iter().enumerate() {
        match &e.kind {
            EventKind::SendCompleted {
                msg_id,
                outcome: SendOutcome::Delivered | SendOutcome::Displaced,
                ..
            } => {
                let key = (pid_of(e), *msg_id);
                if let Some(j) = recvs.get_mut(&key).and_then(VecDeque::pop_front) {
                    send_to_recv.insert(i, j);
                    recv_to_send.insert(j, i);
                } else {
                    sends.entry(key).or_default().push_back(i);
                }
            }
            EventKind::Received {
                msg_id,
                sender: Some(sender),
                ..
            } => {
                let key = (*sender, *msg_id);
                if let Some(j) = sends.get_mut(&key).and_then(VecDeque::pop_front) {
                    send_to_recv.insert(j, i);
                    recv_to_send.insert(i, j);
                } else {
                    recvs.entry(key).or_default().push_back(i);
                }
            }
            _ => {}
        }
    }
    (send_to_recv, recv_to_send)
}

struct Diagram<'t> {
    trace: &'t Trace,
    procs: Vec<String>,
    ports: BTreeMap<String, String>,
    send_to_recv: HashMap<usize, usize>,
    recv_to_send: HashMap<usize, usize>,
    drawn: BTreeSet<usize>,
    out: String,
}

impl Diagram<'_> {
    fn proc_id(&self, e: &Event) -> &str {
        self.procs
            .get(e.proc.0 as usize)
            .map_or("unknown", String::as_str)
    }

    /// The participant a target is drawn as: a labelled port's lane, or
    /// (direct addressing) the peer process's.
    fn lane(&self, e: &Event, t: Target) -> Option<String> {
        if let Target::Task(pid) = t {
            let i = self.trace.procs.iter().position(|p| p.pid == pid)?;
            return Some(self.procs[i].clone());
        }
        if !self.labelled(e, t) {
            return None;
        }
        self.ports.get(&self.trace.target_name(e.proc, t)).cloned()
    }

    fn labelled(&self, e: &Event, t: Target) -> bool {
        match t {
            Target::Name(n) => {
                let pid = self.trace.procs.get(e.proc.0 as usize).map_or(0, |p| p.pid);
                self.trace.labels.contains_key(&(pid, n))
            }
            _ => false,
        }
    }

    fn send_line(&mut self, i: usize) {
        if !self.drawn.insert(i) {
            return;
        }
        let e = &self.trace.events[i];
        let EventKind::SendCompleted {
            to,
            msg_id,
            outcome,
        } = &e.kind
        else {
            return;
        };
        let at = format!("t={:?}", e.time);
        let me = self.proc_id(e).to_owned();
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
        let paired = self.send_to_recv.get(&i).copied();
        let (to, what) = match (self.lane(e, *to), paired) {
            (Some(lane), _) => (lane, format!("{what} msg {msg_id}")),
            // No lane (a reply right, a right carried in a message): straight
            // to the process that received it.
            (None, Some(j)) => {
                self.drawn.insert(j);
                let receiver = self.proc_id(&self.trace.events[j]).to_owned();
                (receiver, format!("{what} msg {msg_id}"))
            }
            (None, None) => {
                let name = self.trace.target_name(e.proc, *to);
                let _ = writeln!(
                    self.out,
                    "    Note over {me}: {} ({at})",
                    text(&format!("{what} msg {msg_id} to {name}"))
                );
                return;
            }
        };
        let _ = writeln!(self.out, "    {me}{arrow}{to}: {} ({at})", text(&what));
    }

    fn receive_line(&mut self, i: usize) {
        if let Some(&s) = self.recv_to_send.get(&i) {
            // The send is drawn first, even when it was recorded later.
            self.send_line(s);
        }
        if !self.drawn.insert(i) {
            return;
        }
        let e = &self.trace.events[i];
        let EventKind::Received { from, msg_id, .. } = &e.kind else {
            return;
        };
        let at = format!("t={:?}", e.time);
        let me = self.proc_id(e).to_owned();
        match self.lane(e, *from) {
            Some(lane) => {
                let _ = writeln!(self.out, "    {lane}->>{me}: receive msg {msg_id} ({at})");
            }
            None => {
                let name = self.trace.target_name(e.proc, *from);
                let what = text(&format!("received msg {msg_id} from {name}"));
                let _ = writeln!(self.out, "    Note over {me}: {what} ({at})");
            }
        }
    }

    fn note(&mut self, e: &Event, what: String) {
        let me = self.proc_id(e).to_owned();
        let _ = writeln!(self.out, "    Note over {me}: {}", text(&what));
    }

    fn gap_note(&mut self) {
        if let (Some(note), Some(first), Some(last)) = (
            self.trace.truncation_note(),
            self.procs.first(),
            self.procs.last(),
        ) {
            let over = if first == last {
                first.clone()
            } else {
                format!("{first},{last}")
            };
            let _ = writeln!(self.out, "    Note over {over}: {}", text(&note));
        }
    }
}

impl Trace {
    /// The trace as a Mermaid `sequenceDiagram` (see the [module docs](crate::trace::mermaid)).
    pub fn to_mermaid(&self) -> String {
        let procs: Vec<String> = self
            .procs
            .iter()
            .enumerate()
            .map(|(i, p)| ident('p', i, &p.name))
            .collect();
        let mut port_names = BTreeSet::new();
        for e in &self.events {
            let t = match &e.kind {
                EventKind::SendCompleted { to, .. } => *to,
                EventKind::Received { from, .. } => *from,
                EventKind::SendBlocked { to } => *to,
                EventKind::ReceiveBlocked { from } => *from,
                _ => continue,
            };
            if let Target::Name(n) = t {
                let pid = self.procs.get(e.proc.0 as usize).map_or(0, |p| p.pid);
                if let Some(label) = self.labels.get(&(pid, n)) {
                    port_names.insert(label.clone());
                }
            }
        }
        let ports: BTreeMap<String, String> = port_names
            .into_iter()
            .enumerate()
            .map(|(i, name)| {
                let id = ident('q', i, &name);
                (name, id)
            })
            .collect();
        let (send_to_recv, recv_to_send) = pair_messages(self);
        let mut d = Diagram {
            trace: self,
            procs,
            ports,
            send_to_recv,
            recv_to_send,
            drawn: BTreeSet::new(),
            out: String::from("sequenceDiagram\n"),
        };
        for (i, p) in self.procs.iter().enumerate() {
            let _ = writeln!(d.out, "    participant {} as {}", d.procs[i], text(&p.name));
        }
        for (name, id) in &d.ports {
            let _ = writeln!(d.out, "    participant {id} as [{}]", text(name));
        }
        let gap_at = self.gap.map(|g| g.index);
        for (i, e) in self.events.iter().enumerate() {
            if gap_at == Some(i) {
                d.gap_note();
            }
            let at = format!("t={:?}", e.time);
            match &e.kind {
                EventKind::SendCompleted { .. } => d.send_line(i),
                EventKind::Received { .. } => d.receive_line(i),
                EventKind::SendBlocked { to } => {
                    let to = self.target_name(e.proc, *to);
                    d.note(e, format!("blocked sending to {to} ({at})"));
                }
                EventKind::ReceiveBlocked { from } => {
                    let from = self.target_name(e.proc, *from);
                    d.note(e, format!("blocked receiving from {from} ({at})"));
                }
                EventKind::ReceiveFailed { from, error } => {
                    let from = self.target_name(e.proc, *from);
                    d.note(e, format!("receive from {from} failed: {error:?}"));
                }
                EventKind::Killed { cause } => d.note(e, format!("killed ({cause:?}, {at})")),
                EventKind::Exited { status } => d.note(e, format!("exit: {status} ({at})")),
                EventKind::TimedOut => d.note(e, format!("timed out ({at})")),
                _ => {}
            }
        }
        if gap_at == Some(self.events.len()) {
            d.gap_note();
        }
        d.out
    }
}
