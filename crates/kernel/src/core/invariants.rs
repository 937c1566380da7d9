//! A full consistency check of the kernel's books, for fuzzing and tests:
//! every port's counts of send and send-once rights equal the rights that
//! exist (in name spaces, in queued and parked messages, in the name
//! service, in notification requests), every receive right is where the
//! port says it is, and every queue's count of handed messages equals the
//! completed waits holding a place in it.

use std::collections::{BTreeMap, BTreeSet};

use super::space::Obj;
use super::{
    KMessage, KRight, Kernel, PortId, QueueId, Receiver, State, WaitId, WaitOutcome, WaitRec,
    WaitState,
};

#[derive(Default)]
struct Count {
    send: u64,
    send_once: u64,
}

impl State {
    fn count_message(counts: &mut BTreeMap<PortId, Count>, msg: &KMessage) {
        let Some(c) = &msg.carried else { return };
        for (r, _) in c.rights.iter().chain(c.reply.iter()) {
            match *r {
                KRight::Send(p) => counts.entry(p).or_default().send += 1,
                KRight::SendOnce(p) => counts.entry(p).or_default().send_once += 1,
                _ => {}
            }
        }
    }

    fn check(&self) -> Result<(), String> {
        if !self.graveyard.is_empty() || !self.to_wake.is_empty() {
            return Err("work left over between operations".into());
        }
        let mut counts: BTreeMap<PortId, Count> = BTreeMap::new();
        for (pid, task) in self.tasks.iter().enumerate() {
            let Some(task) = task else { continue };
            for (name, obj) in task.space.entries() {
                match obj {
                    Obj::Port {
                        port,
                        receive,
                        send,
                    } if self.ports.contains(port) => {
                        counts.entry(port).or_default().send += u64::from(send);
                        let p = self.ports.get(port).expect("live");
                        if receive && p.receiver != Receiver::Task(crate::Pid(pid as u32)) {
                            return Err(format!("task {pid} name {name} holds the receive right of a port whose receiver is {:?}", p.receiver));
                        }
                    }
                    Obj::SendOnce(port) if self.ports.contains(port) => {
                        counts.entry(port).or_default().send_once += 1;
                    }
                    _ => {}
                }
            }
        }
        for (_, p) in self.ports.iter() {
            for m in p.queue.messages.iter() {
                Self::count_message(&mut counts, m);
            }
            let requests = p.requests();
            for (_, r) in requests
                .dead_name_requests
                .iter()
                .chain(&p.queue.send_possible)
            {
                if let KRight::SendOnce(n) = *r {
                    counts.entry(n).or_default().send_once += 1;
                }
            }
            for r in requests
                .no_senders_request
                .iter()
                .chain(requests.port_destroyed_request.iter())
            {
                if let KRight::SendOnce(n) = *r {
                    counts.entry(n).or_default().send_once += 1;
                }
            }
        }
        for (_, m) in self.mailboxes.iter() {
            for msg in m.queue.messages.iter() {
                Self::count_message(&mut counts, msg);
            }
            for r in m.queue.send_possible.values() {
                if let KRight::SendOnce(n) = *r {
                    counts.entry(n).or_default().send_once += 1;
                }
            }
        }
        let mut handed: BTreeMap<QueueId, BTreeSet<WaitId>> = BTreeMap::new();
        for (w_id, w) in self.waits.iter() {
            match &w.state {
                WaitState::Sending { msg, queue, .. } => {
                    Self::count_message(&mut counts, msg);
                    if self.queue(*queue).is_none() {
                        return Err("a blocked sender waits on a dead queue".into());
                    }
                }
                WaitState::Handed(_, q) if self.queue(*q).is_some() => {
                    handed.entry(*q).or_default().insert(w_id);
                }
                _ => {}
            }
        }
        let queues = self
            .ports
            .iter()
            .map(|(id, p)| (QueueId::Port(id), &p.queue));
        let mailboxes = self
            .mailboxes
            .iter()
            .map(|(id, m)| (QueueId::Mailbox(id), &m.queue));
        for (id, q) in queues.chain(mailboxes) {
            let waits = handed.remove(&id).unwrap_or_default();
            let listed: BTreeSet<WaitId> = q.handed.iter().map(|h| h.wait).collect();
            if listed.len() != q.handed.len() || listed != waits {
                return Err(format!(
                    "queue {id:?}: lists {} handed messages, but {} waits hold one",
                    q.handed.len(),
                    waits.len()
                ));
            }
            // Plain handed messages are listed oldest first, and are plain.
            let mut last_seqno = None;
            for h in q.handed.iter().filter(|h| h.plain) {
                let Some(WaitRec {
                    state: WaitState::Handed(WaitOutcome::Received(Ok(m)), _),
                    ..
                }) = self.waits.get(h.wait)
                else {
                    return Err(format!(
                        "queue {id:?}: a plain handed wait holds no message"
                    ));
                };
                if m.carries_rights() {
                    return Err(format!(
                        "queue {id:?}: a plain handed message carries rights"
                    ));
                }
                let seqno = m.trailer().map(|t| t.seqno);
                if last_seqno.is_some() && seqno <= last_seqno {
                    return Err(format!("queue {id:?}: plain handed messages out of order"));
                }
                last_seqno = seqno;
            }
        }
        for (_, right) in self.services.values() {
            if let KRight::Send(p) = *right {
                counts.entry(p).or_default().send += 1;
            }
        }
        for (id, p) in self.ports.iter() {
            let c = counts.remove(&id).unwrap_or_default();
            if c.send != p.send_rights || c.send_once != p.send_once_rights {
                return Err(format!(
                    "port {id:?}: counts send {} send-once {}, but {} and {} exist",
                    p.send_rights, p.send_once_rights, c.send, c.send_once
                ));
            }
            match p.receiver {
                Receiver::Task(pid) => {
                    let Some(t) = self.task(pid) else {
                        return Err(format!("port {id:?}: its receiver {pid} has exited"));
                    };
                    let named = t.space.name_for_port(id).is_some_and(|n| {
                        matches!(t.space.get(n), Ok(Obj::Port { receive: true, .. }))
                    });
                    let link = p.link.is_some_and(|(_, to)| to == pid);
                    if !named && !link {
                        return Err(format!(
                            "port {id:?}: task {pid} does not hold its receive right"
                        ));
                    }
                }
                Receiver::InTransit(q) => {
                    if self.queue(q).is_none() {
                        return Err(format!("port {id:?}: in transit to a dead queue"));
                    }
                }
            }
            let _ = QueueId::Port(id);
        }
        Ok(())
    }
}

impl Kernel {
    /// Checks the kernel's books (see the module docs); `Err` says what is
    /// wrong. For fuzzing and tests: it visits every object.
    #[doc(hidden)]
    pub fn check_invariants(&self) -> Result<(), String> {
        self.lock().check()
    }
}
