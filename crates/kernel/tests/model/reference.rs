//! The reference model: a small, sequential, obviously-correct description of
//! what the kernel does, written from the documented semantics (and Mach's),
//! not from the kernel's code.
//!
//! Simplifications that make it easy to check by eye:
//! * Everything is a `BTreeMap`/`Vec`; speed does not matter.
//! * Dead names are made *eagerly*: when a port (or mailbox) dies, every name
//!   that denoted it becomes a dead name right away (the kernel does it lazily,
//!   which must not be observable).
//! * Model names ([`MName`]) are never reused: a fresh number for every new
//!   name. The test maps them one-to-one onto the kernel's names.
//! * Where a receive right is in transit is found by searching every queued
//!   message, instead of keeping a back pointer.
//! * Only non-blocking operations exist, so no task is ever blocked: there are
//!   no parked senders and no waiting receivers.
//!
//! Destroying a right can destroy more (a receive right kills its port, whose
//! queued messages carry more rights...). Such cascades run off a stack of
//! rights to destroy (`grave`): the *order* of notifications one operation
//! produces is not specified by the docs; the model uses the same stack
//! discipline as the kernel, so that queues can be compared message by message.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use mkipc_kernel::introspect::{KernelStats, TaskRights};
use mkipc_kernel::ipc::{Owner, PortStatus};
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::{
    Capacity, Disposition, Filter, IpcError, NotifyKind, OnFull, PortName, ReceiveError,
    SendErrorKind, Sent,
};

/// Mach's limit on user references per right (as documented by the kernel).
pub const MAX_UREFS: u32 = 65_534;
/// Highest user-reference count a name can reach by receiving send rights
/// (the kernel pegs received references one above `MAX_UREFS`).
pub const PEGGED_UREFS: u32 = MAX_UREFS + 1;

pub const PORT_DESTROYED_ID: u32 = 0o105;
pub const NO_SENDERS_ID: u32 = 0o106;
pub const SEND_ONCE_ID: u32 = 0o107;
pub const DEAD_NAME_ID: u32 = 0o110;
pub const SEND_POSSIBLE_ID: u32 = 0o102;

/// A name in the model. Globally unique, never reused.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct MName(pub u64);

impl MName {
    /// The null name (never denotes anything).
    pub const NULL: MName = MName(0);
    /// The placeholder a right to a dead port is received as.
    pub const DEAD: MName = MName(u64::MAX);
}

pub type PortId = u64;
pub type SetId = u64;
pub type MbId = u64;

/// What a name denotes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Ent {
    /// Receive right and/or `send` user references (one name per port per task).
    Port { port: PortId, recv: bool, send: u32 },
    /// One send-once right (always its own name).
    SendOnce(PortId),
    /// A dead name with user references.
    Dead(u32),
    /// A port set.
    Set(SetId),
    /// An opened mailbox.
    Mailbox(MbId),
}

/// A right held by the kernel (in a message, a notification request, the registry).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum R {
    Recv(PortId),
    Send(PortId),
    SendOnce(PortId),
    /// A send or send-once right that was already dead when it was sent.
    Dead,
}

/// A message body: bytes, or (for notifications) a name in some task's space.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum MBody {
    Bytes(Vec<u8>),
    /// The 8-byte raw value of `name` in task `pid`'s space.
    Name(u32, MName),
    /// The 8-byte raw value of the null name.
    NullName,
}

impl MBody {
    pub fn len(&self) -> usize {
        match self {
            MBody::Bytes(b) => b.len(),
            MBody::Name(..) | MBody::NullName => 8,
        }
    }
}

#[derive(Clone, Debug)]
pub struct MMsg {
    pub id: u32,
    pub body: MBody,
    pub rights: Vec<(R, Disposition)>,
    pub reply: Option<(R, Disposition)>,
    pub sender: u32,
    /// Creation order, to pick the oldest message among several queues.
    pub stamp: u64,
    /// The port whose send-once right it was sent through (a reply or a
    /// kernel notification): bypasses bounded limits and is never displaced
    /// by `DropOldest`.
    pub via_so: Option<PortId>,
}

impl MMsg {
    /// What this message costs in a queue (see `mkipc_kernel::introspect::queue_cost`).
    fn cost(&self) -> usize {
        let rights = self.rights.len() + usize::from(self.reply.is_some());
        mkipc_kernel::introspect::queue_cost(
            self.body.len(),
            rights,
            rights > 0 || self.via_so.is_some(),
        )
    }

    fn all_rights(&self) -> impl Iterator<Item = R> + '_ {
        self.rights.iter().chain(self.reply.iter()).map(|(r, _)| *r)
    }
}

#[derive(Clone, Debug)]
pub struct Queue {
    pub cap: Capacity,
    pub msgs: VecDeque<MMsg>,
    pub seqno: u64,
    pub accepted: u64,
    pub dropped: u64,
    pub max_len: usize,
    /// Send-possible requests: (requesting task, its name, the send-once
    /// right to notify through). One-shot.
    pub sp: Vec<(u32, MName, R)>,
    /// Closed by its receiver: no new sends from tasks.
    pub closed: bool,
}

impl Queue {
    fn new(cap: Capacity) -> Queue {
        Queue {
            cap,
            msgs: VecDeque::new(),
            seqno: 0,
            accepted: 0,
            dropped: 0,
            max_len: 0,
            sp: Vec::new(),
            closed: false,
        }
    }
    /// The memory the queued messages cost, as the kernel counts it
    /// against its ceiling: entry, body and rights of each.
    fn bytes(&self) -> usize {
        self.msgs.iter().map(MMsg::cost).sum()
    }
    /// Appends a message that was admitted.
    fn push(&mut self, m: MMsg) {
        self.accepted += 1;
        self.msgs.push_back(m);
        self.max_len = self.max_len.max(self.msgs.len());
    }
}

#[derive(Clone, Debug)]
pub struct Port {
    pub q: Queue,
    /// The task holding the receive right; `None` while it travels in a message.
    pub holder: Option<u32>,
    pub set: Option<SetId>,
    pub send_rights: u32,
    pub so_rights: u32,
    /// (requesting task, its name, the send-once right to notify through).
    pub dn_requests: Vec<(u32, MName, R)>,
    pub ns_request: Option<R>,
    pub pd_request: Option<R>,
    /// A direct link (from, to).
    pub link: Option<(u32, u32)>,
    pub writer_closed: bool,
}

#[derive(Clone, Debug)]
pub struct Mailbox {
    pub name: String,
    pub owner: Option<u32>,
    pub acl: BTreeMap<u32, Access>,
    pub default_access: Access,
    pub q: Queue,
}

impl Mailbox {
    fn access(&self, pid: u32) -> Access {
        if self.owner == Some(pid) {
            Access::ALL
        } else {
            self.acl.get(&pid).copied().unwrap_or(self.default_access)
        }
    }
}

#[derive(Clone, Debug)]
pub struct TaskM {
    pub names: BTreeMap<MName, Ent>,
    pub inbox: SetId,
    pub links_in: BTreeMap<u32, PortId>,
    pub links_out: BTreeMap<u32, PortId>,
    pub link_cap: BTreeMap<u32, Capacity>,
    /// Owned mailboxes, in creation order.
    pub owned: Vec<MbId>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum QRef {
    Port(PortId),
    Mb(MbId),
}

/// A message as the receiver gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub id: u32,
    pub body: MBody,
    pub rights: Vec<(MName, Disposition)>,
    pub reply: Option<(MName, Disposition)>,
    pub sender: u32,
    pub received_on: MName,
    pub seqno: u64,
}

/// A message as the sender gives it.
#[derive(Clone, Debug)]
pub struct UMsg {
    pub id: u32,
    pub body: Vec<u8>,
    pub rights: Vec<(MName, Disposition)>,
    pub reply: Option<(MName, Disposition)>,
}

pub enum Dest {
    Name(MName),
    Task(u32),
}

pub enum Src {
    Name(MName),
    Any(Vec<MName>),
    Task(u32),
    AnyTask,
}

pub struct Model {
    pub mem_limit: usize,
    pub link_default: Capacity,
    /// Number of tasks ever created (pids are 1..=npids).
    pub npids: u32,
    pub tasks: BTreeMap<u32, TaskM>,
    pub ports: BTreeMap<PortId, Port>,
    pub sets: BTreeMap<SetId, BTreeSet<PortId>>,
    pub mailboxes: BTreeMap<MbId, Mailbox>,
    pub mailbox_names: BTreeMap<String, MbId>,
    /// Service name -> (registrant, port of the send right it holds). The entry
    /// stays when the port dies, until a look-up or a new registration finds it dead.
    pub services: BTreeMap<String, (u32, PortId)>,
    next_id: u64,
    next_stamp: u64,
    /// Rights waiting to be destroyed (a stack).
    grave: Vec<R>,
    /// The kernel's name for each model name (the test harness fills it
    /// in): notifications to several requesters of one queue go out in
    /// (pid, slot) order, which the docs leave open and the model copies;
    /// and a notification's body (a name) is compared with a filter's prefix.
    pub kname: BTreeMap<MName, PortName>,
}

fn wrong(needed: RightKind) -> IpcError {
    IpcError::WrongRight { needed }
}

/// Taking one right (disposition `d`) out of what a name denotes: what the
/// name denotes afterwards (`None`: the name goes away).
fn take(ent: Ent, d: Disposition) -> Result<Option<Ent>, IpcError> {
    use Disposition::*;
    let dead_dec = |n: u32| if n == 1 { None } else { Some(Ent::Dead(n - 1)) };
    match d {
        MoveReceive => match ent {
            Ent::Port {
                port,
                recv: true,
                send,
            } => Ok((send > 0).then_some(Ent::Port {
                port,
                recv: false,
                send,
            })),
            _ => Err(wrong(RightKind::Receive)),
        },
        MakeSend | MakeSendOnce => match ent {
            Ent::Port { recv: true, .. } => Ok(Some(ent)),
            _ => Err(wrong(RightKind::Receive)),
        },
        CopySend => match ent {
            Ent::Port { send, .. } if send > 0 => Ok(Some(ent)),
            Ent::Dead(_) => Ok(Some(ent)),
            _ => Err(wrong(RightKind::Send)),
        },
        MoveSend => match ent {
            Ent::Port { port, recv, send } if send > 0 => {
                Ok((send > 1 || recv).then_some(Ent::Port {
                    port,
                    recv,
                    send: send - 1,
                }))
            }
            Ent::Dead(n) => Ok(dead_dec(n)),
            _ => Err(wrong(RightKind::Send)),
        },
        MoveSendOnce => match ent {
            Ent::SendOnce(_) => Ok(None),
            Ent::Dead(n) => Ok(dead_dec(n)),
            _ => Err(wrong(RightKind::SendOnce)),
        },
    }
}

fn valid(cap: Capacity) -> Result<Capacity, IpcError> {
    if cap == Capacity::Bounded(0) {
        Err(IpcError::InvalidValue)
    } else {
        Ok(cap)
    }
}

impl Model {
    pub fn new(mem_limit: usize, link_default: Capacity) -> Model {
        Model {
            mem_limit,
            link_default,
            npids: 0,
            tasks: BTreeMap::new(),
            ports: BTreeMap::new(),
            sets: BTreeMap::new(),
            mailboxes: BTreeMap::new(),
            mailbox_names: BTreeMap::new(),
            services: BTreeMap::new(),
            next_id: 1,
            next_stamp: 0,
            grave: Vec::new(),
            kname: BTreeMap::new(),
        }
    }

    fn fresh(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn alive(&self, pid: u32) -> bool {
        self.tasks.contains_key(&pid)
    }

    fn live(&self, pid: u32) -> Result<(), IpcError> {
        if self.alive(pid) {
            Ok(())
        } else {
            Err(IpcError::TaskExited)
        }
    }

    fn new_name(&mut self, pid: u32, ent: Ent) -> MName {
        let n = MName(self.fresh());
        self.tasks.get_mut(&pid).unwrap().names.insert(n, ent);
        n
    }

    fn set_name(&mut self, pid: u32, name: MName, ent: Option<Ent>) {
        let names = &mut self.tasks.get_mut(&pid).unwrap().names;
        let old = match ent {
            Some(e) => names.insert(name, e),
            None => names.remove(&name),
        };
        // A name that stops denoting its queue loses its send-possible request.
        if let Some(q) = old.and_then(queue_of) {
            if ent.and_then(queue_of) != Some(q) {
                self.cancel_sp_request(pid, name, q);
            }
        }
        // A name that stops denoting a right to its port loses its dead-name
        // request (cancelled: nothing is sent, its send-once right vanishes).
        let about = match old {
            Some(Ent::Port { port, .. } | Ent::SendOnce(port)) => port,
            _ => return,
        };
        let still =
            matches!(ent, Some(Ent::Port { port, .. } | Ent::SendOnce(port)) if port == about);
        if !still {
            self.cancel_dn_request(pid, name, about);
        }
    }

    fn cancel_sp_request(&mut self, pid: u32, name: MName, q: QRef) {
        let Some(queue) = self.queue_opt_mut(q) else {
            return;
        };
        let Some(i) = queue
            .sp
            .iter()
            .position(|(t, n, _)| *t == pid && *n == name)
        else {
            return;
        };
        let (_, _, via) = queue.sp.remove(i);
        self.lapse(via);
    }

    /// A request's send-once right that will never be used vanishes.
    fn lapse(&mut self, via: R) {
        if let R::SendOnce(np) = via {
            if let Some(n) = self.ports.get_mut(&np) {
                n.so_rights = n.so_rights.saturating_sub(1);
            }
        }
    }

    fn queue_opt_mut(&mut self, q: QRef) -> Option<&mut Queue> {
        match q {
            QRef::Port(p) => self.ports.get_mut(&p).map(|p| &mut p.q),
            QRef::Mb(m) => self.mailboxes.get_mut(&m).map(|m| &mut m.q),
        }
    }

    /// Room on a queue: an empty rights-free message would be accepted by
    /// a non-blocking send (the model has no waiting receivers, so a
    /// rendezvous queue never has room).
    fn has_room(&self, q: QRef) -> bool {
        let queue = self.queue(q);
        if queue.closed {
            // Answered at once: the send it prompts learns `Closed`.
            return true;
        }
        let fits =
            queue.bytes() + mkipc_kernel::introspect::queue_cost(0, 0, false) <= self.mem_limit;
        match queue.cap {
            Capacity::Zero => false,
            Capacity::Bounded(n) => queue.msgs.len() < n && fits,
            Capacity::Unbounded => fits,
        }
    }

    /// The send-possible requests of `q` in the order the kernel sends them.
    fn take_sp_sorted(&mut self, q: QRef) -> Vec<(u32, MName, R)> {
        let mut reqs = std::mem::take(&mut self.queue_mut(q).sp);
        reqs.sort_by_key(|(pid, n, _)| (*pid, self.kname.get(n).map_or(0, |k| k.index())));
        reqs
    }

    /// Answers the send-possible requests of `q` if it has room.
    fn notify_sp(&mut self, q: QRef) {
        if self.queue(q).sp.is_empty() || !self.has_room(q) {
            return;
        }
        for (pid, name, via) in self.take_sp_sorted(q) {
            self.kernel_msg(via, SEND_POSSIBLE_ID, MBody::Name(pid, name), vec![]);
        }
    }

    fn cancel_dn_request(&mut self, pid: u32, name: MName, port: PortId) {
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        let Some(i) = p
            .dn_requests
            .iter()
            .position(|(t, n, _)| *t == pid && *n == name)
        else {
            return;
        };
        let (_, _, via) = p.dn_requests.remove(i);
        if let R::SendOnce(np) = via {
            if let Some(n) = self.ports.get_mut(&np) {
                n.so_rights = n.so_rights.saturating_sub(1);
            }
        }
    }

    /// A link whose writer exited and that holds nothing is destroyed.
    fn reclaim_link_if_drained(&mut self, port: PortId) {
        if let Some(p) = self.ports.get(&port) {
            if p.link.is_some() && p.writer_closed && p.q.msgs.is_empty() {
                self.grave.push(R::Recv(port));
            }
        }
    }

    pub fn resolve(&self, pid: u32, name: MName) -> Result<Ent, IpcError> {
        let t = self.tasks.get(&pid).ok_or(IpcError::TaskExited)?;
        t.names.get(&name).copied().ok_or(IpcError::InvalidName)
    }

    /// The name under which `pid` holds receive/send rights to `port`.
    fn name_for_port(&self, pid: u32, port: PortId) -> Option<MName> {
        let t = self.tasks.get(&pid)?;
        t.names.iter().find_map(|(n, e)| match e {
            Ent::Port { port: p, .. } if *p == port => Some(*n),
            _ => None,
        })
    }

    fn queue(&self, q: QRef) -> &Queue {
        match q {
            QRef::Port(p) => &self.ports[&p].q,
            QRef::Mb(m) => &self.mailboxes[&m].q,
        }
    }

    fn queue_mut(&mut self, q: QRef) -> &mut Queue {
        match q {
            QRef::Port(p) => &mut self.ports.get_mut(&p).unwrap().q,
            QRef::Mb(m) => &mut self.mailboxes.get_mut(&m).unwrap().q,
        }
    }

    fn receive_right(&self, pid: u32, name: MName) -> Result<PortId, IpcError> {
        match self.resolve(pid, name)? {
            Ent::Port {
                port, recv: true, ..
            } => Ok(port),
            Ent::Dead(_) => Err(IpcError::DeadName),
            _ => Err(wrong(RightKind::Receive)),
        }
    }

    // ----- tasks ---------------------------------------------------------------

    pub fn create_task(&mut self) -> u32 {
        self.npids += 1;
        let pid = self.npids;
        let inbox = self.fresh();
        self.sets.insert(inbox, BTreeSet::new());
        self.tasks.insert(
            pid,
            TaskM {
                names: BTreeMap::new(),
                inbox,
                links_in: BTreeMap::new(),
                links_out: BTreeMap::new(),
                link_cap: BTreeMap::new(),
                owned: Vec::new(),
            },
        );
        pid
    }

    /// The task exits. Its rights are released one name at a time in *name
    /// order*; `order` gives the kernel's order key of a model name.
    pub fn exit(&mut self, pid: u32, order: &dyn Fn(MName) -> u64) {
        let Some(task) = self.tasks.remove(&pid) else {
            return;
        };
        let mut entries: Vec<(MName, Ent)> = task.names.into_iter().collect();
        for &(name, ent) in &entries {
            if let Ent::Port { port, .. } | Ent::SendOnce(port) = ent {
                self.cancel_dn_request(pid, name, port);
            }
            if let Some(q) = queue_of(ent) {
                self.cancel_sp_request(pid, name, q);
            }
        }
        entries.sort_by_key(|(n, _)| order(*n));
        for (_, ent) in entries {
            self.release_ent(ent);
            self.reap();
        }
        for m in task.owned {
            self.destroy_mailbox(m);
        }
        for (_, port) in task.links_out {
            if let Some(p) = self.ports.get_mut(&port) {
                p.writer_closed = true;
            }
            self.reclaim_link_if_drained(port);
        }
        for (_, port) in task.links_in {
            self.grave.push(R::Recv(port));
        }
        self.destroy_set(task.inbox);
        self.reap();
    }

    // ----- destruction -------------------------------------------------------

    /// Releases what a name denoted (the name is already gone).
    fn release_ent(&mut self, ent: Ent) {
        match ent {
            Ent::Port { port, recv, send } => {
                if send > 0 {
                    self.release_send(port, send);
                }
                if recv {
                    self.grave.push(R::Recv(port));
                }
            }
            Ent::SendOnce(port) => self.grave.push(R::SendOnce(port)),
            Ent::Set(s) => self.destroy_set(s),
            Ent::Dead(_) | Ent::Mailbox(_) => {}
        }
    }

    fn destroy_set(&mut self, s: SetId) {
        if let Some(members) = self.sets.remove(&s) {
            for p in members {
                self.ports.get_mut(&p).unwrap().set = None;
            }
        }
    }

    /// `n` send rights to `port` go away; when none is left, a no-senders
    /// notification (if requested) names the receive right.
    fn release_send(&mut self, port: PortId, n: u32) {
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        p.send_rights = p.send_rights.saturating_sub(n);
        if p.send_rights == 0 {
            if let Some(req) = p.ns_request.take() {
                let body = self.receiver_name_body(port);
                self.kernel_msg(req, NO_SENDERS_ID, body, vec![]);
            }
        }
    }

    fn receiver_name_body(&self, port: PortId) -> MBody {
        match self.ports[&port].holder {
            Some(h) => match self.name_for_port(h, port) {
                Some(n) => MBody::Name(h, n),
                None => MBody::NullName,
            },
            None => MBody::NullName,
        }
    }

    fn destroy_msg(&mut self, m: MMsg) {
        for r in m.all_rights() {
            self.grave.push(r);
        }
        // A task's message through a send-once right, destroyed undelivered:
        // the right was not used up, so its destruction notifies.
        if let Some(port) = m.via_so {
            if m.sender != 0 {
                if let Some(p) = self.ports.get_mut(&port) {
                    p.so_rights += 1;
                    self.grave.push(R::SendOnce(port));
                }
            }
        }
    }

    /// Destroys everything on the stack of rights to destroy.
    fn reap(&mut self) {
        while let Some(r) = self.grave.pop() {
            match r {
                R::Send(p) => self.release_send(p, 1),
                R::SendOnce(p) => {
                    self.kernel_msg(R::SendOnce(p), SEND_ONCE_ID, MBody::Bytes(vec![]), vec![])
                }
                R::Recv(p) => self.destroy_port(p),
                R::Dead => {}
            }
        }
    }

    /// A notification through the send-once right `via`: queued whatever the
    /// capacity; lost (with the rights it carries) if the port is dead.
    fn kernel_msg(&mut self, via: R, id: u32, body: MBody, rights: Vec<(R, Disposition)>) {
        let target = match via {
            R::SendOnce(np) if self.ports.contains_key(&np) => np,
            _ => {
                for (r, _) in rights {
                    self.grave.push(r);
                }
                return;
            }
        };
        for (r, _) in &rights {
            if let R::Recv(m) = r {
                self.ports.get_mut(m).unwrap().holder = None;
            }
        }
        self.next_stamp += 1;
        let msg = MMsg {
            id,
            body,
            rights,
            reply: None,
            sender: 0,
            stamp: self.next_stamp,
            via_so: Some(target),
        };
        let p = self.ports.get_mut(&target).unwrap();
        p.so_rights = p.so_rights.saturating_sub(1);
        p.q.push(msg);
    }

    /// The receive right leaves its holder: out of its set.
    fn detach(&mut self, port: PortId) {
        let p = self.ports.get_mut(&port).unwrap();
        p.holder = None;
        if let Some(s) = p.set.take() {
            self.sets.get_mut(&s).unwrap().remove(&port);
        }
    }

    /// The receive right of `port` is destroyed: the port dies (or, if a
    /// port-destroyed notification was requested, the right goes there).
    fn destroy_port(&mut self, port: PortId) {
        let Some(p) = self.ports.get_mut(&port) else {
            return;
        };
        if let Some(req) = p.pd_request.take() {
            if let R::SendOnce(np) = req {
                if np != port
                    && self.ports.contains_key(&np)
                    && !self.would_cycle(port, QRef::Port(np))
                {
                    self.detach(port);
                    self.kernel_msg(
                        req,
                        PORT_DESTROYED_ID,
                        MBody::NullName,
                        vec![(R::Recv(port), Disposition::MoveReceive)],
                    );
                    return;
                }
            }
            self.grave.push(req);
        }
        self.detach(port);
        let p = self.ports.remove(&port).unwrap();
        // A service name dies with its port.
        self.services.retain(|_, (_, p)| *p != port);
        if let Some((from, to)) = p.link {
            if let Some(t) = self.tasks.get_mut(&to) {
                t.links_in.remove(&from);
            }
            if let Some(t) = self.tasks.get_mut(&from) {
                t.links_out.remove(&to);
            }
        }
        // Every name for the port becomes a dead name (send-once: one reference).
        let mut died: Vec<(u32, MName)> = Vec::new();
        for (&pid, t) in self.tasks.iter_mut() {
            let names: Vec<MName> = t.names.keys().copied().collect();
            for n in names {
                match t.names[&n] {
                    Ent::Port { port: q, send, .. } if q == port => {
                        assert!(send > 0, "a name for a dying port with no send rights");
                        t.names.insert(n, Ent::Dead(send));
                        died.push((pid, n));
                    }
                    Ent::SendOnce(q) if q == port => {
                        t.names.insert(n, Ent::Dead(1));
                        died.push((pid, n));
                    }
                    _ => {}
                }
            }
        }
        for m in p.q.msgs {
            self.destroy_msg(m);
        }
        // Send-possible requests on the dead port become dead-name notifications.
        let mut sp = p.q.sp;
        sp.sort_by_key(|(pid, n, _)| (*pid, self.kname.get(n).map_or(0, |k| k.index())));
        for (pid, name, via) in sp {
            if died.contains(&(pid, name)) {
                self.kernel_msg(via, DEAD_NAME_ID, MBody::Name(pid, name), vec![]);
            } else {
                self.lapse(via);
            }
        }
        for (pid, name, via) in p.dn_requests {
            if died.contains(&(pid, name)) {
                self.kernel_msg(via, DEAD_NAME_ID, MBody::Name(pid, name), vec![]);
            } else if let R::SendOnce(np) = via {
                // The name was released before the port died: the request lapsed.
                if let Some(n) = self.ports.get_mut(&np) {
                    n.so_rights = n.so_rights.saturating_sub(1);
                }
            }
        }
        if let Some(r) = p.ns_request {
            self.grave.push(r);
        }
    }

    fn destroy_mailbox(&mut self, m: MbId) {
        let Some(mb) = self.mailboxes.remove(&m) else {
            return;
        };
        self.mailbox_names.remove(&mb.name);
        if let Some(o) = mb.owner {
            if let Some(t) = self.tasks.get_mut(&o) {
                t.owned.retain(|x| *x != m);
            }
        }
        for t in self.tasks.values_mut() {
            for e in t.names.values_mut() {
                if *e == Ent::Mailbox(m) {
                    *e = Ent::Dead(1);
                }
            }
        }
        for msg in mb.q.msgs {
            self.destroy_msg(msg);
        }
        let mut sp = mb.q.sp;
        sp.sort_by_key(|(pid, n, _)| (*pid, self.kname.get(n).map_or(0, |k| k.index())));
        for (pid, name, via) in sp {
            // Requests lapse with their names, so each left names the mailbox.
            self.kernel_msg(via, DEAD_NAME_ID, MBody::Name(pid, name), vec![]);
        }
        self.reap();
    }

    /// The queue whose messages carry `port`'s receive right, if it is in transit.
    fn transit_queue(&self, port: PortId) -> Option<QRef> {
        let carries = |q: &Queue| {
            q.msgs
                .iter()
                .any(|m| m.all_rights().any(|r| r == R::Recv(port)))
        };
        for (id, p) in &self.ports {
            if carries(&p.q) {
                return Some(QRef::Port(*id));
            }
        }
        for (id, m) in &self.mailboxes {
            if carries(&m.q) {
                return Some(QRef::Mb(*id));
            }
        }
        None
    }

    /// Would putting `port`'s receive right on queue `q` make the port
    /// reachable only through itself?
    fn would_cycle(&self, port: PortId, q: QRef) -> bool {
        let mut cur = q;
        for _ in 0..=self.ports.len() {
            match cur {
                QRef::Mb(_) => return false,
                QRef::Port(p) if p == port => return true,
                QRef::Port(p) => match self.transit_queue(p) {
                    Some(next) => cur = next,
                    None => return false,
                },
            }
        }
        panic!("model: a cycle of in-transit receive rights exists");
    }

    // ----- ports and rights ----------------------------------------------------

    fn new_port(&mut self, cap: Capacity, holder: u32) -> PortId {
        let id = self.fresh();
        self.ports.insert(
            id,
            Port {
                q: Queue::new(cap),
                holder: Some(holder),
                set: None,
                send_rights: 0,
                so_rights: 0,
                dn_requests: vec![],
                ns_request: None,
                pd_request: None,
                link: None,
                writer_closed: false,
            },
        );
        id
    }

    pub fn port_allocate(&mut self, pid: u32, cap: Capacity) -> Result<MName, IpcError> {
        let cap = valid(cap)?;
        self.live(pid)?;
        let port = self.new_port(cap, pid);
        Ok(self.new_name(
            pid,
            Ent::Port {
                port,
                recv: true,
                send: 0,
            },
        ))
    }

    pub fn port_set_allocate(&mut self, pid: u32) -> Result<MName, IpcError> {
        self.live(pid)?;
        let s = self.fresh();
        self.sets.insert(s, BTreeSet::new());
        Ok(self.new_name(pid, Ent::Set(s)))
    }

    pub fn port_set_insert(&mut self, pid: u32, set: MName, member: MName) -> Result<(), IpcError> {
        let port = self.receive_right(pid, member)?;
        let Ent::Set(s) = self.resolve(pid, set)? else {
            return Err(wrong(RightKind::PortSet));
        };
        if let Some(old) = self.ports[&port].set {
            self.sets.get_mut(&old).unwrap().remove(&port);
        }
        self.ports.get_mut(&port).unwrap().set = Some(s);
        self.sets.get_mut(&s).unwrap().insert(port);
        Ok(())
    }

    pub fn port_set_remove(&mut self, pid: u32, member: MName) -> Result<(), IpcError> {
        let port = self.receive_right(pid, member)?;
        let s = self.ports.get_mut(&port).unwrap().set.take();
        let s = s.ok_or(IpcError::InvalidValue)?;
        self.sets.get_mut(&s).unwrap().remove(&port);
        Ok(())
    }

    pub fn make_right(&mut self, pid: u32, name: MName, d: Disposition) -> Result<MName, IpcError> {
        let port = self.receive_right(pid, name)?;
        match d {
            Disposition::MakeSend => {
                let Ent::Port { send, .. } = self.resolve(pid, name)? else {
                    unreachable!()
                };
                if send >= MAX_UREFS {
                    return Err(IpcError::InvalidValue);
                }
                let ent = Ent::Port {
                    port,
                    recv: true,
                    send: send + 1,
                };
                self.set_name(pid, name, Some(ent));
                self.ports.get_mut(&port).unwrap().send_rights += 1;
                Ok(name)
            }
            Disposition::MakeSendOnce => {
                self.ports.get_mut(&port).unwrap().so_rights += 1;
                Ok(self.new_name(pid, Ent::SendOnce(port)))
            }
            _ => Err(IpcError::InvalidValue),
        }
    }

    pub fn deallocate(&mut self, pid: u32, name: MName) -> Result<(), IpcError> {
        let kind = match self.resolve(pid, name)? {
            Ent::Port { send, .. } if send > 0 => RightKind::Send,
            Ent::SendOnce(_) => RightKind::SendOnce,
            Ent::Dead(_) => RightKind::DeadName,
            Ent::Mailbox(_) => RightKind::Mailbox,
            _ => return Err(wrong(RightKind::Send)),
        };
        self.mod_refs(pid, name, kind, -1)
    }

    pub fn destroy(&mut self, pid: u32, name: MName) -> Result<(), IpcError> {
        let ent = self.resolve(pid, name)?;
        self.set_name(pid, name, None);
        self.release_ent(ent);
        self.reap();
        Ok(())
    }

    pub fn mod_refs(
        &mut self,
        pid: u32,
        name: MName,
        kind: RightKind,
        delta: i32,
    ) -> Result<(), IpcError> {
        let ent = self.resolve(pid, name)?;
        let in_range = |now: u32| {
            let new = i64::from(now) + i64::from(delta);
            if (0..=i64::from(MAX_UREFS)).contains(&new) {
                Ok(new as u32)
            } else {
                Err(IpcError::InvalidValue)
            }
        };
        // Rights that are not reference counted: only 0 (no-op) and -1 (release).
        let release_only = || match delta {
            0 => Ok(false),
            -1 => Ok(true),
            _ => Err(IpcError::InvalidValue),
        };
        match (kind, ent) {
            (RightKind::Send, Ent::Port { port, recv, send }) if send > 0 => {
                let new = in_range(send)?;
                let after = (new > 0 || recv).then_some(Ent::Port {
                    port,
                    recv,
                    send: new,
                });
                self.set_name(pid, name, after);
                if new > send {
                    self.ports.get_mut(&port).unwrap().send_rights += new - send;
                } else {
                    self.release_send(port, send - new);
                }
            }
            (RightKind::DeadName, Ent::Dead(n)) => {
                let new = in_range(n)?;
                self.set_name(pid, name, (new > 0).then_some(Ent::Dead(new)));
            }
            (
                RightKind::Receive,
                Ent::Port {
                    port,
                    recv: true,
                    send,
                },
            ) => {
                if release_only()? {
                    let after = (send > 0).then_some(Ent::Port {
                        port,
                        recv: false,
                        send,
                    });
                    self.set_name(pid, name, after);
                    self.grave.push(R::Recv(port));
                }
            }
            (RightKind::SendOnce, Ent::SendOnce(port)) => {
                if release_only()? {
                    self.set_name(pid, name, None);
                    self.grave.push(R::SendOnce(port));
                }
            }
            (RightKind::PortSet, Ent::Set(s)) => {
                if release_only()? {
                    self.set_name(pid, name, None);
                    self.destroy_set(s);
                }
            }
            (RightKind::Mailbox, Ent::Mailbox(_)) => {
                if release_only()? {
                    self.set_name(pid, name, None);
                }
            }
            (RightKind::Send | RightKind::SendOnce | RightKind::Receive, Ent::Dead(_)) => {
                return Err(IpcError::DeadName)
            }
            _ => return Err(wrong(kind)),
        }
        self.reap();
        Ok(())
    }

    pub fn rights(&self, pid: u32, name: MName) -> Result<RightSet, IpcError> {
        let mut set = RightSet::default();
        match self.resolve(pid, name)? {
            Ent::Port { recv, send, .. } => {
                set.receive = recv;
                set.send = send;
            }
            Ent::SendOnce(_) => set.send_once = true,
            Ent::Dead(n) => set.dead = n,
            Ent::Set(_) => set.port_set = true,
            Ent::Mailbox(m) => set.mailbox = Some(self.mailboxes[&m].access(pid)),
        }
        Ok(set)
    }

    pub fn port_status(&self, pid: u32, name: MName) -> Result<PortStatus, IpcError> {
        let (q, send_rights, send_once_rights) = match self.resolve(pid, name)? {
            Ent::Port {
                port, recv: true, ..
            } => {
                let p = &self.ports[&port];
                (&p.q, p.send_rights, p.so_rights)
            }
            Ent::Mailbox(m) => (&self.mailboxes[&m].q, 0, 0),
            Ent::Dead(_) => return Err(IpcError::DeadName),
            _ => return Err(wrong(RightKind::Receive)),
        };
        Ok(PortStatus {
            queue_len: q.msgs.len(),
            capacity: q.cap,
            send_rights,
            send_once_rights,
            seqno: q.seqno,
            blocked_senders: 0,
            blocked_receivers: 0,
            messages_sent: q.accepted,
            messages_dropped: q.dropped,
            max_queue_len: q.max_len,
        })
    }

    fn may_manage(&self, pid: u32, m: MbId) -> bool {
        let mb = &self.mailboxes[&m];
        match mb.owner {
            Some(o) => o == pid,
            None => mb.access(pid) == Access::ALL,
        }
    }

    pub fn set_capacity(&mut self, pid: u32, name: MName, cap: Capacity) -> Result<(), IpcError> {
        let cap = valid(cap)?;
        let q = match self.resolve(pid, name)? {
            Ent::Port {
                port, recv: true, ..
            } => QRef::Port(port),
            Ent::Mailbox(m) if self.may_manage(pid, m) => QRef::Mb(m),
            Ent::Mailbox(_) => return Err(IpcError::NoPermission),
            Ent::Dead(_) => return Err(IpcError::DeadName),
            _ => return Err(wrong(RightKind::Receive)),
        };
        self.queue_mut(q).cap = cap;
        self.notify_sp(q);
        self.reap();
        Ok(())
    }

    pub fn close(&mut self, pid: u32, name: MName) -> Result<(), IpcError> {
        let q = match self.resolve(pid, name)? {
            Ent::Port {
                port, recv: true, ..
            } => QRef::Port(port),
            Ent::Mailbox(m) if self.may_manage(pid, m) => QRef::Mb(m),
            Ent::Mailbox(_) => return Err(IpcError::NoPermission),
            Ent::Dead(_) => return Err(IpcError::DeadName),
            _ => return Err(wrong(RightKind::Receive)),
        };
        if !self.queue(q).closed {
            self.queue_mut(q).closed = true;
            self.notify_sp(q);
            self.reap();
        }
        Ok(())
    }

    pub fn request_notification(
        &mut self,
        pid: u32,
        name: MName,
        kind: NotifyKind,
        notify: MName,
    ) -> Result<(), IpcError> {
        let np = self.receive_right(pid, notify)?;
        let ent = self.resolve(pid, name)?;
        let via = R::SendOnce(np);
        match kind {
            NotifyKind::SendPossible => {
                let q = match ent {
                    Ent::Port { port, .. } => QRef::Port(port),
                    Ent::Mailbox(m) if self.mailboxes[&m].access(pid).send => QRef::Mb(m),
                    Ent::Mailbox(_) => return Err(IpcError::NoPermission),
                    Ent::Dead(_) => {
                        self.ports.get_mut(&np).unwrap().so_rights += 1;
                        self.kernel_msg(via, DEAD_NAME_ID, MBody::Name(pid, name), vec![]);
                        self.reap();
                        return Ok(());
                    }
                    _ => return Err(wrong(RightKind::Send)),
                };
                self.ports.get_mut(&np).unwrap().so_rights += 1;
                if self.has_room(q) {
                    self.kernel_msg(via, SEND_POSSIBLE_ID, MBody::Name(pid, name), vec![]);
                } else {
                    let queue = self.queue_mut(q);
                    let old = queue
                        .sp
                        .iter()
                        .position(|(t, n, _)| *t == pid && *n == name)
                        .map(|i| queue.sp.remove(i).2);
                    queue.sp.push((pid, name, via));
                    if let Some(old) = old {
                        self.grave.push(old);
                    }
                }
            }
            NotifyKind::DeadName => {
                let port = match ent {
                    Ent::Port { port, .. } | Ent::SendOnce(port) => port,
                    Ent::Dead(_) => {
                        // Already dead: notified at once.
                        self.ports.get_mut(&np).unwrap().so_rights += 1;
                        self.kernel_msg(via, DEAD_NAME_ID, MBody::Name(pid, name), vec![]);
                        self.reap();
                        return Ok(());
                    }
                    _ => return Err(wrong(RightKind::Send)),
                };
                self.ports.get_mut(&np).unwrap().so_rights += 1;
                let p = self.ports.get_mut(&port).unwrap();
                // A new request for the same name replaces the old one.
                let old = p
                    .dn_requests
                    .iter()
                    .position(|(t, n, _)| *t == pid && *n == name)
                    .map(|i| p.dn_requests.remove(i).2);
                p.dn_requests.push((pid, name, via));
                if let Some(old) = old {
                    self.grave.push(old);
                }
            }
            NotifyKind::NoSenders | NotifyKind::PortDestroyed => {
                let Ent::Port {
                    port, recv: true, ..
                } = ent
                else {
                    return Err(wrong(RightKind::Receive));
                };
                if kind == NotifyKind::PortDestroyed && port == np {
                    return Err(IpcError::InvalidValue);
                }
                self.ports.get_mut(&np).unwrap().so_rights += 1;
                let p = self.ports.get_mut(&port).unwrap();
                let old = if kind == NotifyKind::NoSenders {
                    let old = p.ns_request.replace(via);
                    if p.send_rights == 0 {
                        // No senders now: notified at once.
                        let r = p.ns_request.take().unwrap();
                        self.kernel_msg(r, NO_SENDERS_ID, MBody::Name(pid, name), vec![]);
                    }
                    old
                } else {
                    p.pd_request.replace(via)
                };
                if let Some(old) = old {
                    self.grave.push(old);
                }
            }
        }
        self.reap();
        Ok(())
    }

    // ----- messages ----------------------------------------------------------

    /// The link from `from` to `to` (alive), made on first use.
    fn link(&mut self, from: u32, to: u32) -> PortId {
        if let Some(&p) = self.tasks[&to].links_in.get(&from) {
            return p;
        }
        let cap = self.tasks[&to]
            .link_cap
            .get(&from)
            .copied()
            .unwrap_or(self.link_default);
        let port = self.new_port(cap, to);
        let inbox = self.tasks[&to].inbox;
        {
            let p = self.ports.get_mut(&port).unwrap();
            p.link = Some((from, to));
            p.set = Some(inbox);
            p.writer_closed = !self.tasks.contains_key(&from);
        }
        self.sets.get_mut(&inbox).unwrap().insert(port);
        self.tasks.get_mut(&to).unwrap().links_in.insert(from, port);
        if let Some(t) = self.tasks.get_mut(&from) {
            t.links_out.insert(to, port);
        }
        port
    }

    pub fn send(
        &mut self,
        pid: u32,
        dest: Dest,
        msg: &UMsg,
        on_full: OnFull,
    ) -> Result<Sent, SendErrorKind> {
        use SendErrorKind as K;
        // 1. The destination.
        let (q, so_name) = match dest {
            Dest::Name(n) => match self.resolve(pid, n) {
                Err(IpcError::TaskExited) => return Err(K::TaskExited),
                Err(_) => return Err(K::InvalidDestination),
                Ok(Ent::Dead(_)) => return Err(K::DestinationDead),
                Ok(Ent::Port { port, .. }) => (QRef::Port(port), None),
                Ok(Ent::SendOnce(port)) => (QRef::Port(port), Some(n)),
                Ok(Ent::Set(_)) => return Err(K::WrongRight),
                Ok(Ent::Mailbox(m)) => {
                    if !self.mailboxes[&m].access(pid).send {
                        return Err(K::NoPermission);
                    }
                    (QRef::Mb(m), None)
                }
            },
            Dest::Task(to) => {
                if !self.alive(pid) {
                    return Err(K::TaskExited);
                }
                if to == 0 || to > self.npids {
                    return Err(K::InvalidDestination);
                }
                if !self.alive(to) {
                    return Err(K::DestinationDead);
                }
                (QRef::Port(self.link(pid, to)), None)
            }
        };
        // 2. Every carried right must be takeable (in order, on scratch copies).
        let mut scratch: Vec<(MName, Option<Ent>)> = Vec::new();
        if let Some(n) = so_name {
            scratch.push((n, None));
        }
        let carried: Vec<(usize, (MName, Disposition))> = msg
            .rights
            .iter()
            .copied()
            .enumerate()
            .chain(msg.reply.map(|r| (usize::MAX, r)))
            .collect();
        for (index, (name, d)) in carried {
            let bad = |error| K::InvalidRight { index, error };
            let current = match scratch.iter().find(|(n, _)| *n == name) {
                Some((_, e)) => *e,
                None => Some(self.resolve(pid, name).map_err(bad)?),
            };
            let ent = current.ok_or(bad(IpcError::InvalidName))?;
            let after = take(ent, d).map_err(bad)?;
            if d == Disposition::MoveReceive {
                let Ent::Port { port, .. } = ent else {
                    unreachable!()
                };
                if self.would_cycle(port, q) {
                    return Err(bad(IpcError::InvalidValue));
                }
            }
            scratch.retain(|(n, _)| *n != name);
            scratch.push((name, after));
        }
        // 3. A closed queue takes nothing more from tasks.
        if self.queue(q).closed {
            return Err(K::Closed);
        }
        // 4. Admission.
        let queue = self.queue(q);
        let len = queue.msgs.len();
        enum Adm {
            Enqueue,
            Full,
            OverMemory,
        }
        // The memory ceiling applies to bounded and unbounded queues alike,
        // counting each message's entry, body and rights.
        let rights = msg.rights.len() + usize::from(msg.reply.is_some());
        let cost = mkipc_kernel::introspect::queue_cost(
            msg.body.len(),
            rights,
            rights > 0 || so_name.is_some(),
        );
        let over_memory = queue.bytes() + cost > self.mem_limit;
        let adm = match queue.cap {
            Capacity::Zero => Adm::Full,
            Capacity::Bounded(n) if len >= n && so_name.is_none() => Adm::Full,
            _ if over_memory => Adm::OverMemory,
            Capacity::Bounded(_) | Capacity::Unbounded => Adm::Enqueue,
        };
        let is_zero = queue.cap == Capacity::Zero;
        match (adm, on_full) {
            (Adm::OverMemory, _) => Err(K::MemoryLimit),
            (Adm::Enqueue, _) => {
                let m = self.copy_in(pid, msg, so_name);
                self.queue_mut(q).push(m);
                self.reap();
                Ok(Sent::Delivered)
            }
            (Adm::Full, OnFull::Fail) => Err(K::Full),
            (Adm::Full, OnFull::Timeout(_)) => Err(K::TimedOut),
            (Adm::Full, OnFull::DropNewest) | (Adm::Full, OnFull::DropOldest) if is_zero => {
                let m = self.copy_in(pid, msg, so_name);
                self.queue_mut(q).dropped += 1;
                self.destroy_msg(m);
                self.reap();
                Ok(Sent::Dropped)
            }
            (Adm::Full, OnFull::DropNewest) => {
                let m = self.copy_in(pid, msg, so_name);
                self.queue_mut(q).dropped += 1;
                self.destroy_msg(m);
                self.reap();
                Ok(Sent::Dropped)
            }
            (Adm::Full, OnFull::DropOldest) => {
                let m = self.copy_in(pid, msg, so_name);
                let queue = self.queue_mut(q);
                queue.dropped += 1;
                // Replies and notifications (sent through send-once rights)
                // are never displaced; with only those queued, the new
                // message is dropped.
                let oldest = queue
                    .msgs
                    .iter()
                    .position(|m| m.via_so.is_none())
                    .and_then(|i| queue.msgs.remove(i));
                let sent = match oldest {
                    Some(old) => {
                        queue.push(m);
                        self.destroy_msg(old);
                        Sent::Displaced
                    }
                    None => {
                        self.destroy_msg(m);
                        Sent::Dropped
                    }
                };
                self.reap();
                Ok(sent)
            }
            (Adm::Full, OnFull::Block) => panic!("the model has no blocking sends"),
        }
    }

    /// Takes the (checked) rights out of the sender's space into a message.
    fn copy_in(&mut self, pid: u32, msg: &UMsg, so_name: Option<MName>) -> MMsg {
        let via_so = so_name.map(|n| {
            let Ok(Ent::SendOnce(port)) = self.resolve(pid, n) else {
                unreachable!()
            };
            self.set_name(pid, n, None);
            let p = self.ports.get_mut(&port).unwrap();
            p.so_rights = p.so_rights.saturating_sub(1);
            port
        });
        let take_one = |m: &mut Model, (name, d): (MName, Disposition)| -> R {
            let ent = m.resolve(pid, name).unwrap();
            let after = take(ent, d).unwrap();
            m.set_name(pid, name, after);
            match (ent, d) {
                (Ent::Dead(_), _) => R::Dead,
                (Ent::Port { port, .. }, Disposition::MoveReceive) => {
                    m.detach(port);
                    R::Recv(port)
                }
                (Ent::Port { port, .. }, Disposition::MoveSend) => R::Send(port),
                (Ent::Port { port, .. }, Disposition::CopySend | Disposition::MakeSend) => {
                    m.ports.get_mut(&port).unwrap().send_rights += 1;
                    R::Send(port)
                }
                (Ent::Port { port, .. }, Disposition::MakeSendOnce) => {
                    m.ports.get_mut(&port).unwrap().so_rights += 1;
                    R::SendOnce(port)
                }
                (Ent::SendOnce(port), Disposition::MoveSendOnce) => R::SendOnce(port),
                other => unreachable!("checked right {other:?}"),
            }
        };
        let mut rights = Vec::new();
        for &r in &msg.rights {
            rights.push((take_one(self, r), r.1));
        }
        let reply = msg.reply.map(|r| (take_one(self, r), r.1));
        self.next_stamp += 1;
        MMsg {
            id: msg.id,
            body: MBody::Bytes(msg.body.clone()),
            rights,
            reply,
            sender: pid,
            stamp: self.next_stamp,
            via_so,
        }
    }

    /// Puts one right into `pid`'s space; returns its name there.
    fn copy_out_right(&mut self, pid: u32, r: R) -> MName {
        match r {
            R::Recv(port) => {
                self.ports.get_mut(&port).unwrap().holder = Some(pid);
                match self.name_for_port(pid, port) {
                    Some(n) => {
                        let Ok(Ent::Port { send, .. }) = self.resolve(pid, n) else {
                            unreachable!()
                        };
                        let ent = Ent::Port {
                            port,
                            recv: true,
                            send,
                        };
                        self.set_name(pid, n, Some(ent));
                        n
                    }
                    None => self.new_name(
                        pid,
                        Ent::Port {
                            port,
                            recv: true,
                            send: 0,
                        },
                    ),
                }
            }
            R::Send(port) if self.ports.contains_key(&port) => {
                match self.name_for_port(pid, port) {
                    Some(n) => {
                        let Ok(Ent::Port { recv, send, .. }) = self.resolve(pid, n) else {
                            unreachable!()
                        };
                        if send >= PEGGED_UREFS {
                            // User references are pegged: the extra right is released.
                            self.grave.push(R::Send(port));
                        }
                        let ent = Ent::Port {
                            port,
                            recv,
                            send: (send + 1).min(PEGGED_UREFS),
                        };
                        self.set_name(pid, n, Some(ent));
                        n
                    }
                    None => self.new_name(
                        pid,
                        Ent::Port {
                            port,
                            recv: false,
                            send: 1,
                        },
                    ),
                }
            }
            R::SendOnce(port) if self.ports.contains_key(&port) => {
                self.new_name(pid, Ent::SendOnce(port))
            }
            _ => MName::DEAD,
        }
    }

    fn copy_out(&mut self, pid: u32, m: MMsg, received_on: MName, seqno: u64) -> Received {
        let mut rights = Vec::new();
        for (r, d) in m.rights {
            rights.push((self.copy_out_right(pid, r), d.received_as()));
        }
        let reply = m
            .reply
            .map(|(r, d)| (self.copy_out_right(pid, r), d.received_as()));
        Received {
            id: m.id,
            body: m.body,
            rights,
            reply,
            sender: m.sender,
            received_on,
            seqno,
        }
    }

    pub fn try_receive(&mut self, pid: u32, src: Src) -> Result<Received, ReceiveError> {
        self.receive_or_peek(pid, src, true, None, false)
    }

    /// Priority select: from the first source that has a message.
    pub fn try_select_first(
        &mut self,
        pid: u32,
        names: Vec<MName>,
    ) -> Result<Received, ReceiveError> {
        self.receive_or_peek(pid, Src::Any(names), true, None, true)
    }

    /// Selective receive: the oldest message `filter` passes.
    pub fn try_receive_matching(
        &mut self,
        pid: u32,
        src: Src,
        filter: &Filter,
    ) -> Result<Received, ReceiveError> {
        self.receive_or_peek(pid, src, true, Some(filter), false)
    }

    /// The bytes of a body as the kernel holds them.
    pub fn body_bytes(&self, b: &MBody) -> Vec<u8> {
        let name = |m: &MName| match *m {
            MName::NULL => PortName::NULL,
            MName::DEAD => PortName::DEAD,
            m => self.kname[&m],
        };
        match b {
            MBody::Bytes(v) => v.clone(),
            MBody::Name(_, m) => name(m).to_raw().to_le_bytes().to_vec(),
            MBody::NullName => PortName::NULL.to_raw().to_le_bytes().to_vec(),
        }
    }

    fn passes(&self, f: &Filter, m: &MMsg) -> bool {
        f.id_range().is_none_or(|(lo, hi)| lo <= m.id && m.id <= hi)
            && f.sender_condition().is_none_or(|p| p.0 == m.sender)
            && self.body_bytes(&m.body).starts_with(f.prefix())
    }

    /// What `try_receive` would take, left in place: no rights, the
    /// sequence number it would get.
    pub fn peek(&mut self, pid: u32, src: Src) -> Result<Received, ReceiveError> {
        self.receive_or_peek(pid, src, false, None, false)
    }

    fn receive_or_peek(
        &mut self,
        pid: u32,
        src: Src,
        take: bool,
        filter: Option<&Filter>,
        first_ready: bool,
    ) -> Result<Received, ReceiveError> {
        #[derive(Clone, Copy, PartialEq)]
        enum Reg {
            Queue(QRef, MName),
            Set(SetId),
        }
        let reg_for = |m: &Model, name: MName| -> Result<Reg, ReceiveError> {
            match m.resolve(pid, name) {
                Err(IpcError::TaskExited) => Err(ReceiveError::TaskExited),
                Err(_) => Err(ReceiveError::InvalidName),
                Ok(Ent::Port {
                    port, recv: true, ..
                }) => Ok(Reg::Queue(QRef::Port(port), name)),
                Ok(Ent::Set(s)) => Ok(Reg::Set(s)),
                Ok(Ent::Mailbox(mb)) if m.mailboxes[&mb].access(pid).receive => {
                    Ok(Reg::Queue(QRef::Mb(mb), name))
                }
                Ok(Ent::Mailbox(_)) => Err(ReceiveError::NoPermission),
                Ok(Ent::Dead(_)) => Err(ReceiveError::SourceDead),
                Ok(Ent::Port { .. } | Ent::SendOnce(_)) => Err(ReceiveError::WrongRight),
            }
        };
        if !self.alive(pid) {
            return Err(ReceiveError::TaskExited);
        }
        let mut regs: Vec<Reg> = Vec::new();
        let mut link_from = None;
        match src {
            Src::Name(n) => regs.push(reg_for(self, n)?),
            Src::Any(names) => {
                if names.is_empty() {
                    return Err(ReceiveError::InvalidValue);
                }
                for n in names {
                    let r = reg_for(self, n)?;
                    if !regs.contains(&r) {
                        regs.push(r);
                    }
                }
            }
            Src::Task(from) => {
                if from == 0 || from > self.npids {
                    return Err(ReceiveError::InvalidName);
                }
                let port = match self.tasks[&pid].links_in.get(&from) {
                    Some(&p) => p,
                    None if !self.alive(from) => return Err(ReceiveError::SourceDead),
                    None => self.link(from, pid),
                };
                link_from = Some(port);
                regs.push(Reg::Queue(QRef::Port(port), MName::NULL));
            }
            Src::AnyTask => regs.push(Reg::Set(self.tasks[&pid].inbox)),
        }
        // The oldest message at the front of any queue registered on (with
        // a filter: the oldest it passes in each queue); for a priority
        // select, of the first registration that has one.
        let queues_of = |r: &Reg| -> Vec<QRef> {
            match *r {
                Reg::Queue(q, _) => vec![q],
                Reg::Set(s) => self.sets[&s].iter().map(|p| QRef::Port(*p)).collect(),
            }
        };
        let oldest = |queues: &[QRef]| {
            queues
                .iter()
                .filter_map(|&q| {
                    let msgs = &self.queue(q).msgs;
                    let i = match filter {
                        None => 0,
                        Some(f) => msgs.iter().position(|m| self.passes(f, m))?,
                    };
                    msgs.get(i).map(|m| (m.stamp, q, i))
                })
                .min_by_key(|(stamp, _, _)| *stamp)
        };
        let best = if first_ready {
            regs.iter().find_map(|r| oldest(&queues_of(r)))
        } else {
            let all: Vec<QRef> = regs.iter().flat_map(queues_of).collect();
            oldest(&all)
        };
        let Some((_, q, index)) = best else {
            if let Some(port) = link_from {
                if self.ports[&port].writer_closed {
                    return Err(ReceiveError::SourceDead);
                }
            }
            let closed = regs.iter().any(|r| match *r {
                Reg::Queue(q, _) => self.queue(q).closed,
                Reg::Set(_) => false,
            });
            if closed {
                return Err(ReceiveError::Closed);
            }
            return Err(ReceiveError::Empty);
        };
        let received_on = regs
            .iter()
            .find_map(|r| match *r {
                Reg::Queue(rq, n) if rq == q => Some(n),
                _ => None,
            })
            .unwrap_or_else(|| match q {
                QRef::Port(p) => self.name_for_port(pid, p).unwrap_or(MName::NULL),
                QRef::Mb(_) => MName::NULL,
            });
        if !take {
            let queue = self.queue(q);
            let m = &queue.msgs[index];
            return Ok(Received {
                id: m.id,
                body: m.body.clone(),
                rights: vec![],
                reply: None,
                sender: m.sender,
                received_on,
                seqno: queue.seqno,
            });
        }
        let queue = self.queue_mut(q);
        let m = queue.msgs.remove(index).unwrap();
        let seqno = queue.seqno;
        queue.seqno += 1;
        self.notify_sp(q);
        let got = self.copy_out(pid, m, received_on, seqno);
        if let QRef::Port(port) = q {
            self.reclaim_link_if_drained(port);
        }
        self.reap();
        Ok(got)
    }

    pub fn set_link_capacity(
        &mut self,
        pid: u32,
        from: u32,
        cap: Capacity,
    ) -> Result<(), IpcError> {
        let cap = valid(cap)?;
        let t = self.tasks.get_mut(&pid).ok_or(IpcError::TaskExited)?;
        t.link_cap.insert(from, cap);
        if let Some(&port) = t.links_in.get(&from) {
            self.ports.get_mut(&port).unwrap().q.cap = cap;
        }
        Ok(())
    }

    // ----- mailboxes and the name service ----------------------------------------

    pub fn mailbox_create(
        &mut self,
        pid: u32,
        name: &str,
        cap: Capacity,
        owner: Owner,
        default_access: Access,
        grants: &[(u32, Access)],
    ) -> Result<MName, IpcError> {
        name_ok(name)?;
        let cap = valid(cap)?;
        self.live(pid)?;
        if self.mailbox_names.contains_key(name) {
            return Err(IpcError::AlreadyExists);
        }
        let mut acl: BTreeMap<u32, Access> = grants.iter().copied().collect();
        let owner = match owner {
            Owner::Creator => Some(pid),
            Owner::System => {
                acl.insert(pid, Access::ALL);
                None
            }
        };
        let m = self.fresh();
        self.mailboxes.insert(
            m,
            Mailbox {
                name: name.to_owned(),
                owner,
                acl,
                default_access,
                q: Queue::new(cap),
            },
        );
        self.mailbox_names.insert(name.to_owned(), m);
        if owner.is_some() {
            self.tasks.get_mut(&pid).unwrap().owned.push(m);
        }
        Ok(self.new_name(pid, Ent::Mailbox(m)))
    }

    pub fn mailbox_open(&mut self, pid: u32, name: &str) -> Result<MName, IpcError> {
        name_ok(name)?;
        self.live(pid)?;
        let &m = self.mailbox_names.get(name).ok_or(IpcError::NotFound)?;
        if self.mailboxes[&m].access(pid).is_none() {
            return Err(IpcError::NoPermission);
        }
        Ok(self.new_name(pid, Ent::Mailbox(m)))
    }

    fn mailbox_of(&self, pid: u32, name: MName) -> Result<MbId, IpcError> {
        match self.resolve(pid, name)? {
            Ent::Mailbox(m) => Ok(m),
            Ent::Dead(_) => Err(IpcError::DeadName),
            _ => Err(wrong(RightKind::Mailbox)),
        }
    }

    pub fn mailbox_grant(
        &mut self,
        pid: u32,
        name: MName,
        to: u32,
        access: Access,
    ) -> Result<(), IpcError> {
        let m = self.mailbox_of(pid, name)?;
        if !self.may_manage(pid, m) {
            return Err(IpcError::NoPermission);
        }
        let mb = self.mailboxes.get_mut(&m).unwrap();
        mb.acl.insert(to, access);
        if !mb.access(to).send {
            // Its send-possible requests lapse: it may no longer send.
            let lapsed: Vec<MName> =
                mb.q.sp
                    .iter()
                    .filter(|(t, _, _)| *t == to)
                    .map(|(_, n, _)| *n)
                    .collect();
            for n in lapsed {
                self.cancel_sp_request(to, n, QRef::Mb(m));
            }
        }
        Ok(())
    }

    pub fn mailbox_destroy(&mut self, pid: u32, name: MName) -> Result<(), IpcError> {
        let m = self.mailbox_of(pid, name)?;
        if !self.may_manage(pid, m) {
            return Err(IpcError::NoPermission);
        }
        self.destroy_mailbox(m);
        Ok(())
    }

    pub fn register(&mut self, pid: u32, service: &str, name: MName) -> Result<(), IpcError> {
        name_ok(service)?;
        let port = match self.resolve(pid, name)? {
            Ent::Port { port, .. } => port,
            Ent::Dead(_) => return Err(IpcError::DeadName),
            _ => return Err(wrong(RightKind::Send)),
        };
        if let Some((_, existing)) = self.services.get(service) {
            if self.ports.contains_key(existing) {
                return Err(IpcError::AlreadyExists);
            }
        }
        self.ports.get_mut(&port).unwrap().send_rights += 1;
        if let Some((_, old)) = self.services.insert(service.to_owned(), (pid, port)) {
            self.grave.push(R::Send(old));
        }
        self.reap();
        Ok(())
    }

    pub fn unregister(&mut self, pid: u32, service: &str) -> Result<(), IpcError> {
        name_ok(service)?;
        self.live(pid)?;
        match self.services.get(service) {
            None => Err(IpcError::NotFound),
            Some((owner, _)) if *owner != pid => Err(IpcError::NoPermission),
            Some(&(_, port)) => {
                self.services.remove(service);
                self.grave.push(R::Send(port));
                self.reap();
                Ok(())
            }
        }
    }

    pub fn look_up(&mut self, pid: u32, service: &str) -> Result<MName, IpcError> {
        name_ok(service)?;
        self.live(pid)?;
        let &(_, port) = self.services.get(service).ok_or(IpcError::NotFound)?;
        if !self.ports.contains_key(&port) {
            self.services.remove(service);
            return Err(IpcError::NotFound);
        }
        self.ports.get_mut(&port).unwrap().send_rights += 1;
        let n = self.copy_out_right(pid, R::Send(port));
        self.reap();
        Ok(n)
    }

    // ----- introspection --------------------------------------------------------

    pub fn stats(&self) -> KernelStats {
        KernelStats {
            tasks: self.tasks.len(),
            ports: self.ports.len(),
            port_sets: self.sets.len(),
            mailboxes: self.mailboxes.len(),
            messages: self.ports.values().map(|p| p.q.msgs.len()).sum::<usize>()
                + self
                    .mailboxes
                    .values()
                    .map(|m| m.q.msgs.len())
                    .sum::<usize>(),
            blocked_senders: 0,
            blocked_receivers: 0,
            services: self.services.len(),
        }
    }

    pub fn task_rights(&self, pid: u32) -> Option<TaskRights> {
        let t = self.tasks.get(&pid)?;
        let mut r = TaskRights {
            names: t.names.len(),
            ..TaskRights::default()
        };
        for e in t.names.values() {
            match *e {
                Ent::Port { recv, send, .. } => {
                    r.receive += usize::from(recv);
                    r.send += u64::from(send);
                }
                Ent::SendOnce(_) => r.send_once += 1,
                Ent::Dead(n) => r.dead += u64::from(n),
                Ent::Set(_) => r.port_sets += 1,
                Ent::Mailbox(_) => r.mailboxes += 1,
            }
        }
        Some(r)
    }

    /// Whole-model invariants: the send-right count of every port equals the
    /// user references in every space plus the rights in messages and in the
    /// service registry; likewise for send-once rights (plus notification requests).
    pub fn check_invariants(&self) {
        for (&id, p) in &self.ports {
            let mut send = 0u64;
            let mut so = 0u64;
            for t in self.tasks.values() {
                for e in t.names.values() {
                    match *e {
                        Ent::Port { port, send: s, .. } if port == id => send += u64::from(s),
                        Ent::SendOnce(port) if port == id => so += 1,
                        _ => {}
                    }
                }
            }
            let queues = self
                .ports
                .values()
                .map(|p| &p.q)
                .chain(self.mailboxes.values().map(|m| &m.q));
            for q in queues {
                for m in &q.msgs {
                    for r in m.all_rights() {
                        match r {
                            R::Send(port) if port == id => send += 1,
                            R::SendOnce(port) if port == id => so += 1,
                            _ => {}
                        }
                    }
                }
            }
            send += self.services.values().filter(|(_, p)| *p == id).count() as u64;
            for other in self.ports.values() {
                let reqs = other
                    .dn_requests
                    .iter()
                    .map(|(_, _, r)| r)
                    .chain(other.ns_request.iter())
                    .chain(other.pd_request.iter());
                so += reqs.filter(|r| **r == R::SendOnce(id)).count() as u64;
            }
            let queues = self
                .ports
                .values()
                .map(|p| &p.q)
                .chain(self.mailboxes.values().map(|m| &m.q));
            for q in queues {
                so +=
                    q.sp.iter()
                        .filter(|(_, _, r)| *r == R::SendOnce(id))
                        .count() as u64;
            }
            assert_eq!(
                u64::from(p.send_rights),
                send,
                "model: send rights of port {id}"
            );
            assert_eq!(
                u64::from(p.so_rights),
                so,
                "model: send-once rights of port {id}"
            );
        }
    }
}

/// The queue a name sends to, for send-possible requests.
fn queue_of(ent: Ent) -> Option<QRef> {
    match ent {
        Ent::Port { port, .. } => Some(QRef::Port(port)),
        Ent::Mailbox(m) => Some(QRef::Mb(m)),
        _ => None,
    }
}

/// The name rule of `mkipc_kernel::name_rules`, written out again.
fn name_ok(name: &str) -> Result<(), IpcError> {
    let bad = name.is_empty()
        || name.len() > 160
        || name == "."
        || name == ".."
        || name.chars().any(|c| c == '/' || c.is_control());
    if bad {
        Err(IpcError::InvalidName)
    } else {
        Ok(())
    }
}
