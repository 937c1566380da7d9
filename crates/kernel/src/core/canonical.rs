//! The canonical encoding of a kernel state, for a stateful model checker's
//! visited set.
//!
//! Two states with the same future (the same results for every sequence of
//! operations) should encode the same as often as possible; two states whose
//! futures can differ always encode differently. The encoding therefore
//! writes everything the operations can observe, and leaves out or
//! normalises what they cannot:
//!
//! * arrival stamps are written as their rank among the live messages'
//!   stamps (stamps are only ever compared with each other, and the next
//!   stamp is larger than all of them), or, without
//!   [`CanonicalOptions::cross_queue_order`], as their rank within their
//!   own queue (only a receive from several sources compares two queues'
//!   stamps); the stamp counter is left out;
//! * waits are numbered in traversal order (task by task in pid order, each
//!   task's waits in order), and referred to by that number, never by id;
//! * a reference to a mailbox is its slot index when it names the live
//!   mailbox in that slot, else "stale" (a stale id is never found in its
//!   arena and is only ever compared with live ids, so which dead mailbox
//!   it named does not matter); the arena's free list is written in order,
//!   since it decides the slots future mailboxes get;
//! * port sets are numbered by a traversal from the tasks
//!   ([`Numbering::number_sets`]) and referred to by number (or "stale"): no
//!   operation observes which slot a set occupies, so neither its slot nor
//!   the sets' free list is written (else the order in which tasks exited,
//!   each freeing its inbox set, would be part of the state);
//! * ports are numbered by a traversal from the tasks ([`Numbering::number_ports`]) and
//!   referred to by number (or "stale"): no operation observes which slot a
//!   port occupies, so neither its slot nor the ports' free list is written;
//! * a name's generation is written relative to its slot's current
//!   generation ([`name_code`]), never as a number: a name is only ever
//!   compared with the slot it indexes;
//! * the raw ids introspection shows (`queue_stats`, `blocked_on`) are left
//!   out: they name objects for reports, no operation takes them;
//! * sequence numbers and queue statistics are encoded unless
//!   [`CanonicalOptions`] says to leave them out.
//!
//! DESIGN.md ("Snapshots and the canonical state") gives the argument for
//! each rule.

use std::io::Write as _;

use smallvec::SmallVec;

use super::snapshot::KernelSnapshot;
use super::space::{Obj, Space};
use super::symmetry::Relabel;
use super::{
    KMessage, KRight, Kernel, MailboxId, MsgQueue, PortId, QueueId, Receiver, Registration, SetId,
    State, WaitId, WaitOutcome, WaitState, WaitToken,
};
use crate::capacity::{Capacity, Sent};
use crate::message::{Message, Notification};
use crate::name::{Access, Pid, PortName};

/// Choices about what the canonical encoding counts as observable.
///
/// The default, [`CanonicalOptions::EXACT`], encodes everything any
/// operation can observe. Two things are observable but only count up:
/// each queue's next sequence number (it reaches the receiver in
/// [`Trailer::seqno`](crate::message::Trailer::seqno) and [`PortStatus::seqno`](crate::ipc::PortStatus::seqno))
/// and each queue's statistics (messages accepted and dropped, longest
/// length: [`PortStatus::messages_sent`](crate::ipc::PortStatus::messages_sent) and the next two
/// fields). With them, a system that loops never comes back to a state it
/// saw. A checker whose processes never read them may leave them out
/// ([`CanonicalOptions::WITHOUT_COUNTERS`]) so that such loops close; the
/// encoding is then sound for every future that does not read them.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct CanonicalOptions {
    /// Encode each queue's next sequence number, and the sequence numbers in
    /// the trailers of the messages the kernel holds (received, not yet taken).
    pub seqnos: bool,
    /// Encode each queue's statistics (accepted, dropped, longest length).
    pub statistics: bool,
    /// Encode the order in which the live messages arrived across queues
    /// (each message's arrival rank among all of them), which a receive
    /// from several sources compares (a select, a port set: the oldest
    /// first). Without it only the order within each queue is written (a
    /// message's rank among its own queue's messages, those handed from it
    /// and those its blocked senders hold): sound for every future in which
    /// no receive compares messages of two queues that are both there now.
    pub cross_queue_order: bool,
}

impl CanonicalOptions {
    /// Everything observable is encoded (the default).
    pub const EXACT: CanonicalOptions = CanonicalOptions {
        seqnos: true,
        statistics: true,
        cross_queue_order: true,
    };
    /// Sequence numbers and statistics are left out.
    pub const WITHOUT_COUNTERS: CanonicalOptions = CanonicalOptions {
        seqnos: false,
        statistics: false,
        cross_queue_order: true,
    };
}

impl Default for CanonicalOptions {
    fn default() -> Self {
        CanonicalOptions::EXACT
    }
}

/// Version byte the encoding starts with.
const VERSION: u8 = 2;

// Name classes (the low byte of a `name_code`).
const NAME_NULL: u64 = 0;
const NAME_DEAD: u64 = 1;
const NAME_GONE: u64 = 2;
const NAME_CURRENT: u64 = 3;
const NAME_BEHIND: u64 = 4;
const NAME_STALE: u64 = 5;
const NAME_AHEAD: u64 = 6;
const NAME_UNBORN: u64 = 7;

/// Saturation of the generation distance packed into a name code (24 bits).
const DISTANCE_MAX: u32 = (1 << 24) - 1;

/// The canonical code of `name` held by `pid`: the name's slot index and how
/// its generation stands to the slot's, never the generation itself.
///
/// * `NULL` and `DEAD` keep codes of their own.
/// * *current*: the slot's generation (the name is valid while the slot is in use);
/// * *behind*: one behind, slot free: the name was just freed, and a failed
///   blocked send may give it back under exactly this name (`realloc_exact`);
/// * *stale*: any other older generation: invalid forever (a slot's
///   generation only drops below its current value through that give-back,
///   by one, and only while free; so such a name never becomes current or
///   behind again);
/// * *ahead* by `d`, or *unborn* (no such slot yet): a forged name, which a
///   later allocation may make valid; the distance is kept.
///
/// A name of a task that exited is invalid forever (pids are never reused).
/// Generation wrap-around (2^32 frees of one slot) is not modelled.
pub(crate) fn name_code(st: &State, pid: Pid, name: PortName) -> u64 {
    if name.is_null() {
        return NAME_NULL;
    }
    if name.is_dead() {
        return NAME_DEAD;
    }
    let space = match st.tasks.get(pid.0 as usize) {
        Some(Some(task)) => Some(&task.space),
        Some(None) => return NAME_GONE,
        None => None,
    };
    space_name_code(space, name)
}

/// [`name_code`] against one space (`None`: a task not created yet, whose
/// space will start empty).
fn space_name_code(space: Option<&Space>, name: PortName) -> u64 {
    if name.is_null() {
        return NAME_NULL;
    }
    if name.is_dead() {
        return NAME_DEAD;
    }
    let index = name.index();
    let g = name.generation();
    let packed = |class: u64, extra: u32| -> u64 {
        ((index as u64) << 32) | (u64::from(extra.min(DISTANCE_MAX)) << 8) | class
    };
    if index == 0 {
        // Slot 0 is never used: NULL's slot.
        return packed(NAME_STALE, 0);
    }
    match space.and_then(|s| s.slot(index)) {
        // A slot is created with generation 1 on first use.
        None => packed(NAME_UNBORN, g),
        Some((c, used)) => {
            if g == c {
                packed(NAME_CURRENT, 0)
            } else if g.wrapping_add(1) == c && !used {
                packed(NAME_BEHIND, 0)
            } else if g < c {
                packed(NAME_STALE, 0)
            } else {
                packed(NAME_AHEAD, g - c)
            }
        }
    }
}

/// The numbering of one state's objects that the encoding refers to
/// instead of ids (see the module docs): each wait's, port's and set's
/// number by slot (0: no live object there), the live ones in number
/// order, and the live messages' stamps, sorted (a message's stamp is
/// written as its rank among them).
///
/// The encoder reuses one per thread ([`with_numbering`]): the tables are
/// cleared and filled again for each state, without allocating once they
/// have grown to the model's size. Each table is filled by one traversal,
/// in one place ([`Numbering::fill`]), so a new kind of reference is added
/// to the traversal that reaches it and to the writer of the part that
/// holds it, nowhere else.
#[derive(Default)]
struct Numbering {
    /// The live messages' stamps, sorted.
    stamps: Vec<u64>,
    /// Without [`CanonicalOptions::cross_queue_order`]: each live
    /// message's stamp with its rank within its own queue, by stamp.
    local: Vec<(u64, u32)>,
    /// Scratch for `local`: (queue, stamp) pairs.
    by_queue: Vec<(QueueId, u64)>,
    /// Each wait slot's number ([`Numbering::number_waits`]); 0 for no live wait.
    waits: Vec<u32>,
    /// The live waits in number order.
    wait_order: Vec<WaitId>,
    /// How many of `wait_order` some task lists (the rest come after them).
    listed_waits: usize,
    /// Each port slot's number ([`Numbering::number_ports`]); 0 for no live port.
    ports: Vec<u32>,
    /// The live ports in number order.
    port_order: Vec<PortId>,
    /// Each set slot's number ([`Numbering::number_sets`]); 0 for no live set.
    sets: Vec<u32>,
    /// The live sets in number order.
    set_order: Vec<SetId>,
    /// The tasks' labels (the identity unless a checker relabels
    /// interchangeable tasks: `symmetry.rs`), and the order tasks are
    /// visited in: by label.
    relabel: Relabel,
}

thread_local! {
    /// The encoder's tables, reused from one state to the next.
    static NUMBERING: std::cell::RefCell<Numbering> = std::cell::RefCell::default();
}

/// Runs `f` with this thread's [`Numbering`] (a fresh one if it is in use
/// already, which no caller does: encodings do not nest).
fn with_numbering<R>(f: impl FnOnce(&mut Numbering) -> R) -> R {
    NUMBERING.with(|cell| match cell.try_borrow_mut() {
        Ok(mut n) => f(&mut n),
        Err(_) => f(&mut Numbering::default()),
    })
}

impl Numbering {
    /// The rank a message's arrival stamp is written as ([`Numbering::fill`]).
    fn rank(&self, stamp: u64) -> usize {
        if self.local.is_empty() {
            self.stamps.binary_search(&stamp).unwrap_or(0)
        } else {
            let at = self.local.binary_search_by_key(&stamp, |&(s, _)| s);
            at.map_or(0, |i| self.local[i].1 as usize)
        }
    }
}

/// The live tasks of `st` in the order of their labels (pid order when
/// nothing is relabelled).
fn tasks_by_label<'s>(
    st: &'s State,
    relabel: &'s Relabel,
) -> impl Iterator<Item = &'s super::TaskState> {
    relabel
        .order()
        .iter()
        .filter_map(|&p| st.tasks.get(p as usize).and_then(Option::as_deref))
}

/// Clears `v` and makes it `len` zeros (no allocation once it has grown).
fn zeroed(v: &mut Vec<u32>, len: usize) {
    v.clear();
    v.resize(len, 0);
}

impl Numbering {
    /// Numbers everything `st` refers to, and ranks its stamps: among all
    /// of them, or with `cross_queue_order` off within each queue.
    fn fill(&mut self, st: &State, cross_queue_order: bool) {
        self.by_queue.clear();
        let queues = st
            .ports
            .iter()
            .map(|(id, p)| (QueueId::Port(id), &p.queue))
            .chain(
                st.mailboxes
                    .iter()
                    .map(|(id, m)| (QueueId::Mailbox(id), &m.queue)),
            );
        for (id, q) in queues {
            let handed = q.handed.group(q.groups_handed()).map(|h| h.stamp);
            let stamps = q.messages.iter().map(|m| m.stamp.get()).chain(handed);
            self.by_queue.extend(stamps.map(|s| (id, s)));
        }
        for (_, w) in st.waits.iter() {
            if let WaitState::Sending { msg, queue, .. } = &w.state {
                self.by_queue.push((*queue, msg.stamp.get()));
            }
        }
        self.stamps.clear();
        self.local.clear();
        if cross_queue_order {
            self.stamps.extend(self.by_queue.iter().map(|&(_, s)| s));
            self.stamps.sort_unstable();
        } else {
            self.by_queue.sort_unstable();
            let mut rank = 0;
            for (i, &(q, s)) in self.by_queue.iter().enumerate() {
                rank = if i > 0 && self.by_queue[i - 1].0 == q {
                    rank + 1
                } else {
                    0
                };
                self.local.push((s, rank));
            }
            self.local.sort_unstable();
        }
        self.number_waits(st);
        self.number_ports(st);
        self.number_sets(st);
    }

    /// Numbers the live waits: task by task in pid order, each task's waits
    /// in the order of its list; then any wait no task lists (none,
    /// normally), in slot order.
    fn number_waits(&mut self, st: &State) {
        zeroed(&mut self.waits, st.waits.slot_count());
        self.wait_order.clear();
        let (pos, order) = (&mut self.waits, &mut self.wait_order);
        for task in tasks_by_label(st, &self.relabel) {
            for &w in &task.waits {
                if st.waits.contains(w) && pos[w.index() as usize] == 0 {
                    order.push(w);
                    pos[w.index() as usize] = order.len() as u32;
                }
            }
        }
        self.listed_waits = order.len();
        for (w, _) in st.waits.iter() {
            if pos[w.index() as usize] == 0 {
                order.push(w);
                pos[w.index() as usize] = order.len() as u32;
            }
        }
    }

    /// Numbers the live ports (from 1) by a traversal that never looks at
    /// a port's slot: the ports each task names (pid order, name slot
    /// order) and its links, the name service's (name order), the waits'
    /// (wait order), the mailboxes' queued messages' (mailbox slot order);
    /// then, port by port in number order, the ports its queue, requests
    /// and receiver refer to; last, any port not reached (none, normally),
    /// in slot order. A port's slot is never observable (see DESIGN.md),
    /// so two states that differ only in which slots their ports occupy
    /// encode the same. Needs the waits numbered.
    fn number_ports(&mut self, st: &State) {
        zeroed(&mut self.ports, st.ports.slot_count());
        self.port_order.clear();
        let (num, order) = (&mut self.ports, &mut self.port_order);
        let mut visit = |id: PortId| {
            if st.ports.contains(id) && num[id.index() as usize] == 0 {
                order.push(id);
                num[id.index() as usize] = order.len() as u32;
            }
        };
        fn rights_of(m: &KMessage, mut f: impl FnMut(PortId)) {
            let Some(c) = &m.carried else { return };
            for (r, _) in c.rights.iter().chain(c.reply.iter()) {
                if let KRight::Receive(p) | KRight::Send(p) | KRight::SendOnce(p) = *r {
                    f(p);
                }
            }
            if let Some(p) = c.via_send_once {
                f(p);
            }
        }
        for task in tasks_by_label(st, &self.relabel) {
            for (_, obj) in task.space.slots() {
                if let Some(Obj::Port { port, .. } | Obj::SendOnce(port)) = obj {
                    visit(port);
                }
            }
            let links = task.links();
            for &p in links.links_in.values().chain(links.links_out.values()) {
                visit(p);
            }
        }
        for (_, r) in st.services.values() {
            if let KRight::Receive(p) | KRight::Send(p) | KRight::SendOnce(p) = *r {
                visit(p);
            }
        }
        for &w in &self.wait_order {
            match &st.waits.get(w).expect("live wait").state {
                WaitState::Sending { msg, queue, .. } => {
                    if let QueueId::Port(p) = *queue {
                        visit(p);
                    }
                    rights_of(msg, &mut visit);
                }
                WaitState::Receiving { registrations, .. } => {
                    for r in registrations {
                        if let Registration::Queue(QueueId::Port(p), _) = *r {
                            visit(p);
                        }
                    }
                }
                WaitState::Handed(_, QueueId::Port(p)) => visit(*p),
                WaitState::Done(_) | WaitState::Handed(..) => {}
            }
        }
        for (_, m) in st.mailboxes.iter() {
            for msg in m.queue.messages.iter() {
                rights_of(msg, &mut visit);
            }
            for r in m.queue.send_possible.values() {
                if let KRight::SendOnce(q) = *r {
                    visit(q);
                }
            }
        }
        let mut next = 0;
        loop {
            while let Some(&id) = self.port_order.get(next) {
                next += 1;
                let (num, order) = (&mut self.ports, &mut self.port_order);
                let mut visit = |id: PortId| {
                    if st.ports.contains(id) && num[id.index() as usize] == 0 {
                        order.push(id);
                        num[id.index() as usize] = order.len() as u32;
                    }
                };
                let p = st.ports.get(id).expect("numbered ports are live");
                for msg in p.queue.messages.iter() {
                    rights_of(msg, &mut visit);
                }
                let requests = p.requests();
                for r in requests
                    .dead_name_requests
                    .values()
                    .chain(p.queue.send_possible.values())
                    .chain(&requests.no_senders_request)
                    .chain(&requests.port_destroyed_request)
                {
                    if let KRight::SendOnce(q) = *r {
                        visit(q);
                    }
                }
                if let Receiver::InTransit(QueueId::Port(q)) = p.receiver {
                    visit(q);
                }
            }
            // Not reached by the traversal: in slot order.
            let num = &self.ports;
            match st
                .ports
                .iter()
                .find(|(id, _)| num[id.index() as usize] == 0)
            {
                Some((id, _)) => {
                    self.port_order.push(id);
                    self.ports[id.index() as usize] = self.port_order.len() as u32;
                }
                None => break,
            }
        }
    }

    /// Numbers the live port sets (from 1) by a traversal that never looks
    /// at a set's slot, as [`Numbering::number_ports`] does for ports: each
    /// task's inbox and the sets its space names (pid order, name slot
    /// order), then the sets of the ports (port number order), then the
    /// sets the waits some task lists are registered on (wait order); last,
    /// any set not reached, in slot order. No operation observes which
    /// slot a set occupies (they are named through spaces, and no walk goes
    /// by slot), so neither its slot nor the arena's free list is written:
    /// two interleavings in which tasks exit, and so free their inboxes, in
    /// different orders meet in one state. Needs the ports numbered.
    fn number_sets(&mut self, st: &State) {
        zeroed(&mut self.sets, st.sets.slot_count());
        self.set_order.clear();
        let (num, order) = (&mut self.sets, &mut self.set_order);
        let mut visit = |id: SetId| {
            if st.sets.contains(id) && num[id.index() as usize] == 0 {
                order.push(id);
                num[id.index() as usize] = order.len() as u32;
            }
        };
        for task in tasks_by_label(st, &self.relabel) {
            if let Some(inbox) = st.live_inbox(task) {
                visit(inbox);
            }
            for (_, obj) in task.space.slots() {
                if let Some(Obj::Set(set)) = obj {
                    visit(set);
                }
            }
        }
        for &p in &self.port_order {
            if let Some(set) = st.ports.get(p).and_then(|p| p.set) {
                visit(set);
            }
        }
        // The waits tasks list, in the order they list them (the numbering
        // of waits keeps that order, each wait once).
        for &w in &self.wait_order[..self.listed_waits] {
            if let Some(WaitState::Receiving { registrations, .. }) =
                st.waits.get(w).map(|w| &w.state)
            {
                for r in registrations {
                    if let Registration::Set(set) = *r {
                        visit(set);
                    }
                }
            }
        }
        for (id, _) in st.sets.iter() {
            visit(id);
        }
    }
}

/// The canonical code of a wait token: the wait's traversal number (0 when
/// the wait is gone: the token then reads as abandoned) and whether it is a
/// send's.
pub(crate) fn wait_code(st: &State, token: WaitToken) -> u64 {
    let id = token.id();
    let number = if st.waits.contains(id) {
        with_numbering(|n| {
            n.relabel.identity(st.tasks.len());
            n.number_waits(st);
            n.waits[id.index() as usize]
        })
    } else {
        0
    };
    (u64::from(number) << 1) | u64::from(token.is_send())
}

/// Writes the canonical encoding of `st` to `out` (appending).
pub(crate) fn encode(st: &State, opts: CanonicalOptions, out: &mut Vec<u8>) {
    encode_parts(st, opts, out, None, NO_GROUPS);
}

/// No interchangeable tasks.
const NO_GROUPS: &[&[Pid]] = &[];

/// [`encode`], pushing to `cuts` the end offset in `out` of each part: the
/// header, each task, each port (in number order), the sets, the
/// mailboxes, the name service, each wait. With `groups` (each group's
/// members in the order chosen), the encoding of the state with those tasks
/// relabelled (`symmetry.rs`); `false` when the state is pid-ordered for
/// them, and the relabelling may not be trusted.
pub(crate) fn encode_parts<G: AsRef<[Pid]>>(
    st: &State,
    opts: CanonicalOptions,
    out: &mut Vec<u8>,
    cuts: Option<&mut Vec<usize>>,
    groups: &[G],
) -> bool {
    with_numbering(|n| {
        n.relabel.set(st.tasks.len(), groups);
        n.fill(st, opts.cross_queue_order);
        let mut e = Encoder {
            st,
            out,
            opts,
            n,
            cuts,
            pid_ordered: false,
        };
        e.state();
        !e.pid_ordered
    })
}

/// Writes a user message `pid` holds (names normalised as [`name_code`] does).
pub(crate) fn encode_message(
    st: &State,
    opts: CanonicalOptions,
    pid: Pid,
    msg: &Message,
    out: &mut Vec<u8>,
) {
    // A user message refers to no wait, port or set by number.
    let none = Numbering::default();
    let mut e = Encoder {
        st,
        out,
        opts,
        n: &none,
        cuts: None,
        pid_ordered: false,
    };
    e.user_message(pid, msg);
}

struct Encoder<'a> {
    st: &'a State,
    out: &'a mut Vec<u8>,
    opts: CanonicalOptions,
    /// The state's numbering (filled before the encoder starts).
    n: &'a Numbering,
    /// Where each part ends, if asked ([`encode_parts`]).
    cuts: Option<&'a mut Vec<usize>>,
    /// Two members of a group met in a structure ordered by pid
    /// (`symmetry.rs`).
    pid_ordered: bool,
}

impl Encoder<'_> {
    /// Ends a part here (see [`encode_parts`]).
    #[inline]
    fn cut(&mut self) {
        if let Some(c) = self.cuts.as_deref_mut() {
            c.push(self.out.len());
        }
    }

    /// An unsigned LEB128 varint.
    #[inline]
    fn u(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    #[inline]
    fn b(&mut self, v: bool) {
        self.out.push(u8::from(v));
    }

    fn bytes(&mut self, v: &[u8]) {
        self.u(v.len() as u64);
        self.out.extend_from_slice(v);
    }

    /// A `Debug` rendering, ended by a byte UTF-8 never contains.
    fn debug(&mut self, v: &dyn std::fmt::Debug) {
        let _ = write!(self.out, "{v:?}");
        self.out.push(0xFF);
    }

    /// A port by its number, 0 when stale.
    fn port(&mut self, id: PortId) {
        let v = if self.st.ports.contains(id) {
            u64::from(self.n.ports[id.index() as usize])
        } else {
            0
        };
        self.u(v);
    }

    fn set(&mut self, id: SetId) {
        let v = if self.st.sets.contains(id) {
            self.n.sets[id.index() as usize]
        } else {
            0
        };
        self.u(u64::from(v));
    }

    fn mailbox(&mut self, id: MailboxId) {
        let v = if self.st.mailboxes.contains(id) {
            u64::from(id.index()) + 1
        } else {
            0
        };
        self.u(v);
    }

    fn wait(&mut self, id: WaitId) {
        let v = if self.st.waits.contains(id) {
            u64::from(self.n.waits[id.index() as usize])
        } else {
            0
        };
        self.u(v);
    }

    fn queue_id(&mut self, q: QueueId) {
        match q {
            QueueId::Port(p) => {
                self.out.push(0);
                self.port(p);
            }
            QueueId::Mailbox(m) => {
                self.out.push(1);
                self.mailbox(m);
            }
        }
    }

    fn right(&mut self, r: KRight) {
        match r {
            KRight::Receive(p) => {
                self.out.push(0);
                self.port(p);
            }
            KRight::Send(p) => {
                self.out.push(1);
                self.port(p);
            }
            KRight::SendOnce(p) => {
                self.out.push(2);
                self.port(p);
            }
            KRight::DeadSend => self.out.push(3),
            KRight::DeadSendOnce => self.out.push(4),
        }
    }

    fn opt_right(&mut self, r: Option<KRight>) {
        match r {
            None => self.out.push(0),
            Some(r) => {
                self.out.push(1);
                self.right(r);
            }
        }
    }

    fn capacity(&mut self, c: Capacity) {
        match c {
            Capacity::Zero => self.out.push(0),
            Capacity::Bounded(n) => {
                self.out.push(1);
                self.u(n as u64);
            }
            Capacity::Unbounded => self.out.push(2),
        }
    }

    fn access(&mut self, a: Access) {
        self.out.push(u8::from(a.send) | (u8::from(a.receive) << 1));
    }

    /// A pid, as its label (itself unless relabelled).
    fn pid(&mut self, p: Pid) {
        let l = self.n.relabel.label(p);
        self.u(u64::from(l.0));
    }

    /// Notes the pids of a structure that orders them (`symmetry.rs`).
    fn ordered_pids(&mut self, pids: impl Iterator<Item = Pid>) {
        if !self.pid_ordered && self.n.relabel.two_of_a_group(pids) {
            self.pid_ordered = true;
        }
    }

    fn name(&mut self, pid: Pid, name: PortName) {
        let code = name_code(self.st, pid, name);
        self.u(code);
    }

    /// A body. A kernel notification's body is a name, written against the
    /// space of `owner` (the task whose name it is, when the kernel knows
    /// it, else the task holding the message): a task uses only names of
    /// its own space.
    fn body(&mut self, owner: Option<Pid>, id: u32, body: &[u8]) {
        let names_a_name = matches!(
            id,
            Notification::DEAD_NAME_ID
                | Notification::NO_SENDERS_ID
                | Notification::PORT_DESTROYED_ID
                | Notification::SEND_POSSIBLE_ID
        );
        match (owner, <[u8; 8]>::try_from(body)) {
            (Some(owner), Ok(raw)) if names_a_name => {
                self.out.push(1);
                self.name(owner, PortName::from_raw(u64::from_le_bytes(raw)));
            }
            _ => {
                self.out.push(0);
                self.bytes(body);
            }
        }
    }

    fn kmessage(&mut self, m: &KMessage) {
        self.u(u64::from(m.id));
        self.pid(m.sender);
        let rank = self.n.rank(m.stamp.get());
        self.u(rank as u64);
        let owner = m
            .carried
            .as_ref()
            .and_then(|c| c.name_owner)
            .map(|p| Pid(p.get()));
        self.body(owner.filter(|_| m.sender == Pid::KERNEL), m.id, &m.body);
        match &m.carried {
            None => self.out.push(0),
            Some(c) => {
                self.out.push(1);
                self.u(c.rights.len() as u64);
                for &(r, d) in &c.rights {
                    self.right(r);
                    self.out.push(d as u8);
                }
                match c.reply {
                    None => self.out.push(0),
                    Some((r, d)) => {
                        self.out.push(1);
                        self.right(r);
                        self.out.push(d as u8);
                    }
                }
                match c.via_send_once {
                    None => self.out.push(0),
                    Some(p) => {
                        self.out.push(1);
                        self.port(p);
                    }
                }
            }
        }
    }

    /// A message as a task sees it (names in `pid`'s space).
    fn user_message(&mut self, pid: Pid, m: &Message) {
        self.u(u64::from(m.id));
        let trailer = m.trailer();
        let from_kernel = m.sender_verified() && trailer.is_some_and(|t| t.sender == Pid::KERNEL);
        self.body(from_kernel.then_some(pid), m.id, &m.body);
        self.u(m.rights().len() as u64);
        for r in m.rights() {
            self.name(pid, r.name);
            self.out.push(r.disposition as u8);
        }
        match m.reply() {
            None => self.out.push(0),
            Some(r) => {
                self.out.push(1);
                self.name(pid, r.name);
                self.out.push(r.disposition as u8);
            }
        }
        match trailer {
            None => self.out.push(0),
            Some(t) => {
                self.out.push(1);
                self.pid(t.sender);
                self.name(pid, t.received_on);
                if self.opts.seqnos {
                    self.u(t.seqno);
                }
                self.b(m.sender_verified());
            }
        }
    }

    /// A plain handed message ([`super::queue::HandedTo::plain`]): what
    /// [`Self::user_message`] writes of it except the name it is received
    /// on, which is its wait's (it carries no names), and with its arrival
    /// stamp's rank (a select compares it with other queues' messages).
    fn plain_message(&mut self, m: &Message, stamp: u64) {
        self.u(u64::from(m.id));
        let rank = self.n.rank(stamp);
        self.u(rank as u64);
        self.body(None, m.id, &m.body);
        match m.trailer() {
            None => self.out.push(0),
            Some(t) => {
                self.out.push(1);
                self.pid(t.sender);
                if self.opts.seqnos {
                    self.u(t.seqno);
                }
                self.b(m.sender_verified());
            }
        }
    }

    fn queue(&mut self, q: &MsgQueue) {
        self.capacity(q.capacity);
        if self.opts.seqnos {
            self.u(q.seqno);
        }
        if self.opts.statistics {
            self.u(q.accepted);
            self.u(q.dropped);
            self.u(q.max_len as u64);
        }
        // `bytes` is the sum of the messages' costs: not written.
        self.u(q.messages.len() as u64);
        for m in q.messages.iter() {
            self.kmessage(m);
        }
        self.u(q.blocked_senders.len() as u64);
        for &w in &q.blocked_senders {
            self.wait(w);
        }
        self.u(q.blocked_receivers.len() as u64);
        for &w in &q.blocked_receivers {
            self.wait(w);
        }
        self.b(q.closed);
        // Handed messages: the plain ones as a queue of their own, oldest
        // first (whoever of their waits takes first takes the oldest, so
        // which wait holds which one is not observable: `take_handed`);
        // the others by the wait holding each, which encodes it. Where in
        // the list each group member is counts (taking one of the others
        // freezes the members before it), which of the group's waits it is
        // does not (freezing deals the messages out again by wait number:
        // `freeze_handed`).
        let grouped = |h: &super::queue::HandedTo| h.plain && q.groups_handed();
        self.u(q.handed.len() as u64);
        for h in q.handed.iter() {
            if grouped(h) {
                self.out.push(0);
            } else {
                self.out.push(1);
                self.wait(h.wait);
            }
        }
        self.out.push(0xfe);
        let st = self.st;
        self.ordered_pids(
            q.handed
                .iter()
                .filter(|h| grouped(h))
                .filter_map(|h| st.waits.get(h.wait).map(|w| w.task)),
        );
        for h in q.handed.iter().filter(|h| grouped(h)) {
            match self.st.waits.get(h.wait).map(|r| &r.state) {
                Some(WaitState::Handed(WaitOutcome::Received(Ok(m)), _)) => {
                    self.plain_message(m, h.stamp)
                }
                _ => self.out.push(0xff),
            }
        }
        // Send-possible requests: who asked, under which of its names, and
        // where the notification goes (in key order, the order they go out in).
        self.u(q.send_possible.len() as u64);
        self.ordered_pids(q.send_possible.keys().map(|&(pid, _)| pid));
        for (&(pid, super::BySlot(name)), &r) in &q.send_possible {
            self.pid(pid);
            self.name(pid, name);
            self.right(r);
        }
    }

    /// A selective receive's filter (or none): id range, sender, body prefix.
    fn filter(&mut self, f: Option<&crate::Filter>) {
        let Some(f) = f else {
            self.out.push(0);
            return;
        };
        self.out.push(1);
        match f.id_range() {
            None => self.out.push(0),
            Some((lo, hi)) => {
                self.out.push(1);
                self.u(u64::from(lo));
                self.u(u64::from(hi));
            }
        }
        match f.sender_condition() {
            None => self.out.push(0),
            Some(pid) => {
                self.out.push(1);
                self.pid(pid);
            }
        }
        self.bytes(f.prefix());
    }

    fn space(&mut self, s: &Space) {
        // Generations are left out; names are written relative to them.
        self.u(s.slot_count() as u64);
        let free = s.free_slots();
        self.u(free.len() as u64);
        for &i in free {
            self.u(u64::from(i));
        }
        for (_, obj) in s.slots().skip(1) {
            match obj {
                None => self.out.push(0),
                Some(Obj::Port {
                    port,
                    receive,
                    send,
                }) => {
                    self.out.push(1);
                    self.port(port);
                    self.b(receive);
                    self.u(u64::from(send));
                }
                Some(Obj::SendOnce(port)) => {
                    self.out.push(2);
                    self.port(port);
                }
                Some(Obj::Dead(n)) => {
                    self.out.push(3);
                    self.u(u64::from(n));
                }
                Some(Obj::Set(set)) => {
                    self.out.push(4);
                    self.set(set);
                }
                Some(Obj::Mailbox(m)) => {
                    self.out.push(5);
                    self.mailbox(m);
                }
            }
        }
    }

    fn arena_shape<T: Clone>(&mut self, a: &super::Arena<T>) {
        self.u(a.slot_count() as u64);
        self.u(a.free_slots().len() as u64);
        for &i in a.free_slots() {
            self.u(u64::from(i));
        }
    }

    fn state(&mut self) {
        let st = self.st;
        self.out.push(VERSION);
        self.b(self.opts.cross_queue_order);
        self.u(st.config.queue_memory_limit as u64);
        self.capacity(st.config.link_capacity);

        // Tasks.
        self.u(st.tasks.len() as u64);
        self.cut();
        for k in 0..self.n.relabel.order().len() {
            let task = &st.tasks[self.n.relabel.order()[k] as usize];
            let Some(t) = task else {
                self.out.push(0);
                self.cut();
                continue;
            };
            self.out.push(1);
            self.space(&t.space);
            // An empty inbox reads as none (`links.rs`): 0, as a set
            // that does not exist.
            match self.st.live_inbox(t) {
                Some(inbox) => self.set(inbox),
                None => self.u(0),
            }
            let l = t.links();
            let keys = l.links_in.keys().chain(l.links_out.keys());
            self.ordered_pids(keys.chain(l.link_capacity.keys()).copied());
            self.u(l.links_in.len() as u64);
            for (&from, &p) in &l.links_in {
                self.pid(from);
                self.port(p);
            }
            self.u(l.links_out.len() as u64);
            for (&to, &p) in &l.links_out {
                self.pid(to);
                self.port(p);
            }
            self.u(l.link_capacity.len() as u64);
            for (&to, &c) in &l.link_capacity {
                self.pid(to);
                self.capacity(c);
            }
            self.u(l.owned_mailboxes.len() as u64);
            for &m in &l.owned_mailboxes {
                self.mailbox(m);
            }
            self.u(t.waits.len() as u64);
            for &w in &t.waits {
                self.wait(w);
            }
            self.cut();
        }

        // Ports, in number order (their slots and the free list are not written).
        self.u(self.n.port_order.len() as u64);
        self.cut();
        for k in 0..self.n.port_order.len() {
            let p = st.ports.get(self.n.port_order[k]).expect("live");
            self.queue(&p.queue);
            match p.receiver {
                Receiver::Task(pid) => {
                    self.out.push(0);
                    self.pid(pid);
                }
                Receiver::InTransit(q) => {
                    self.out.push(1);
                    self.queue_id(q);
                }
            }
            match p.set {
                None => self.out.push(0),
                Some(s) => {
                    self.out.push(1);
                    self.set(s);
                }
            }
            self.u(p.send_rights);
            self.u(p.send_once_rights);
            let requests = p.requests();
            self.u(requests.dead_name_requests.len() as u64);
            self.ordered_pids(requests.dead_name_requests.keys().map(|&(pid, _)| pid));
            for (&(pid, super::BySlot(name)), &r) in &requests.dead_name_requests {
                self.pid(pid);
                self.name(pid, name);
                self.right(r);
            }
            self.opt_right(requests.no_senders_request);
            self.opt_right(requests.port_destroyed_request);
            match p.link {
                None => self.out.push(0),
                Some((from, to)) => {
                    self.out.push(1);
                    self.pid(from);
                    self.pid(to);
                }
            }
            self.b(p.writer_closed);
            self.cut();
        }

        // Port sets, in number order (their slots and the free list are not written).
        self.u(self.n.set_order.len() as u64);
        for k in 0..self.n.set_order.len() {
            let s = st.sets.get(self.n.set_order[k]).expect("live");
            // A set of ports: in number order (not slot order).
            let mut members: SmallVec<[u32; 8]> = s
                .members
                .iter()
                .map(|p| {
                    if self.st.ports.contains(*p) {
                        self.n.ports[p.index() as usize]
                    } else {
                        0
                    }
                })
                .collect();
            members.sort_unstable();
            self.u(members.len() as u64);
            for m in members {
                self.u(u64::from(m));
            }
            self.u(s.blocked_receivers.len() as u64);
            for &w in &s.blocked_receivers {
                self.wait(w);
            }
        }
        self.cut();

        // Mailboxes (`mailbox_names` is their names' index: not written).
        self.arena_shape(&st.mailboxes);
        self.cut();
        for i in 0..st.mailboxes.slot_count() {
            let Some(m) = st.mailboxes.at(i) else {
                self.out.push(0);
                self.cut();
                continue;
            };
            self.out.push(1);
            self.bytes(m.name.as_bytes());
            match m.owner {
                None => self.out.push(0),
                Some(pid) => {
                    self.out.push(1);
                    self.pid(pid);
                }
            }
            self.u(m.acl.len() as u64);
            self.ordered_pids(m.acl.keys().copied());
            for (&pid, &a) in &m.acl {
                self.pid(pid);
                self.access(a);
            }
            self.access(m.default_access);
            self.queue(&m.queue);
            self.cut();
        }

        // The name service.
        self.u(st.services.len() as u64);
        for (name, &(pid, r)) in st.services.iter() {
            self.bytes(name.as_bytes());
            self.pid(pid);
            self.right(r);
        }
        self.cut();

        // Waits, in traversal order (their numbers).
        let n = self.n;
        self.u(n.wait_order.len() as u64);
        self.cut();
        for &id in &n.wait_order {
            let rec = st.waits.get(id).expect("live wait");
            let task = rec.task;
            self.pid(task);
            match &rec.state {
                WaitState::Sending {
                    msg,
                    queue,
                    original,
                    dest_name,
                } => {
                    self.out.push(0);
                    self.kmessage(msg);
                    self.queue_id(*queue);
                    self.user_message(task, original);
                    match dest_name {
                        None => self.out.push(0),
                        Some(n) => {
                            self.out.push(1);
                            self.name(task, *n);
                        }
                    }
                }
                WaitState::Receiving {
                    registrations,
                    filter,
                } => {
                    self.out.push(1);
                    self.u(registrations.len() as u64);
                    for r in registrations {
                        match *r {
                            Registration::Queue(q, name) => {
                                self.out.push(0);
                                self.queue_id(q);
                                self.name(task, name);
                            }
                            Registration::Set(s) => {
                                self.out.push(1);
                                self.set(s);
                            }
                        }
                    }
                    self.filter(filter.as_deref());
                }
                WaitState::Done(outcome) => {
                    self.out.push(2);
                    self.outcome(task, outcome);
                }
                WaitState::Handed(outcome, from) => {
                    let plain = self.st.queue(*from).is_some_and(|q| {
                        q.groups_handed() && q.handed.iter().any(|h| h.wait == id && h.plain)
                    });
                    match outcome {
                        // Its message is encoded with its queue's (above).
                        WaitOutcome::Received(Ok(m)) if plain => {
                            self.out.push(4);
                            self.queue_id(*from);
                            self.name(task, m.received_on().unwrap_or(PortName::NULL));
                        }
                        _ => {
                            self.out.push(3);
                            self.queue_id(*from);
                            self.outcome(task, outcome);
                        }
                    }
                }
            }
            self.cut();
        }
    }

    fn outcome(&mut self, task: Pid, outcome: &WaitOutcome) {
        match outcome {
            WaitOutcome::Sent(Ok(sent)) => {
                self.out.push(0);
                self.out.push(match sent {
                    Sent::Delivered => 0,
                    Sent::Dropped => 1,
                    Sent::Displaced => 2,
                });
            }
            WaitOutcome::Sent(Err(e)) => {
                self.out.push(1);
                self.debug(&e.kind());
                self.user_message(task, e.message());
            }
            WaitOutcome::Received(Ok(m)) => {
                self.out.push(2);
                self.user_message(task, m);
            }
            WaitOutcome::Received(Err(e)) => {
                self.out.push(3);
                self.debug(e);
            }
        }
    }
}

impl KernelSnapshot {
    /// Appends the canonical encoding of this state to `out` (default
    /// [`CanonicalOptions`]): states whose futures can differ encode
    /// differently; states that differ only in what no operation can observe
    /// (arrival stamps' values, wait ids, name and object generations,
    /// the stamp counter) encode the same. See DESIGN.md, "Snapshots and the
    /// canonical state".
    pub fn canonical(&self, out: &mut Vec<u8>) {
        encode(&self.state(), CanonicalOptions::default(), out);
    }

    /// [`KernelSnapshot::canonical`] with explicit options.
    pub fn canonical_with(&self, opts: CanonicalOptions, out: &mut Vec<u8>) {
        encode(&self.state(), opts, out);
    }

    /// The canonical code of a name `pid` holds (its slot index and how its
    /// generation stands to the slot's), for hashing a process's own state
    /// alongside [`KernelSnapshot::canonical`].
    ///
    /// The encoding leaves generations out, so a process that allocates and
    /// frees a name per request comes back to the same canonical state; this
    /// maps the names a process keeps the same way. It is sound because a
    /// name is only ever compared with the slot it indexes: valid when its
    /// generation is the slot's (current), given back by a failed blocked
    /// send when one behind a free slot, invalid forever when older. A
    /// process must use the names it holds only as names (passing them to
    /// the kernel, comparing them for equality), not order them or compute
    /// with their bits; two stale names of one slot get the same code.
    pub fn canonical_name(&self, pid: Pid, name: PortName) -> u64 {
        name_code(&self.state(), pid, name)
    }

    /// The canonical code of a wait token a process holds: the wait's number
    /// in the encoding's traversal order (0 once the wait is gone) and its
    /// direction, never its id.
    pub fn canonical_wait(&self, token: WaitToken) -> u64 {
        wait_code(&self.state(), token)
    }

    /// Appends the canonical encoding of a message `pid` holds (its id,
    /// body, rights, reply right and trailer; names through
    /// [`KernelSnapshot::canonical_name`], the trailer's sequence number only
    /// if `opts.seqnos`).
    pub fn canonical_message(
        &self,
        pid: Pid,
        msg: &Message,
        opts: CanonicalOptions,
        out: &mut Vec<u8>,
    ) {
        encode_message(&self.state(), opts, pid, msg, out);
    }
}

impl Kernel {
    /// Appends the canonical encoding of the current state to `out`, without
    /// copying it (the same bytes as `self.snapshot().canonical(out)`).
    pub fn canonical(&self, out: &mut Vec<u8>) {
        encode(&self.lock_raw(), CanonicalOptions::default(), out);
    }

    /// [`Kernel::canonical`] with explicit options.
    pub fn canonical_with(&self, opts: CanonicalOptions, out: &mut Vec<u8>) {
        encode(&self.lock_raw(), opts, out);
    }

    /// [`Kernel::canonical_with`], also pushing to `cuts` the end offset in
    /// `out` of each of the encoding's parts (the header, then each task,
    /// each port, the port sets, each mailbox, the name service, each
    /// wait, roughly): the bytes are the same, and the parts are decided by
    /// them alone (each is self-delimiting), so a checker can store a state
    /// as one index per part ("collapse compression") and still tell every
    /// two states apart that differ here.
    pub fn canonical_parts(
        &self,
        opts: CanonicalOptions,
        out: &mut Vec<u8>,
        cuts: &mut Vec<usize>,
    ) {
        encode_parts(&self.lock_raw(), opts, out, Some(cuts), NO_GROUPS);
    }

    /// [`Kernel::canonical_parts`] of the state with interchangeable tasks
    /// relabelled, for a checker's symmetry reduction (module
    /// `symmetry`): each of `groups` lists a group's members in the order
    /// chosen for this state, and its k-th member is written as the
    /// group's k-th smallest pid. The bytes are exactly those of the
    /// relabelled state's [`Kernel::canonical_parts`]. Each group's pids
    /// must be contiguous and the groups disjoint.
    ///
    /// Returns `false` when two members of a group meet in a structure the
    /// kernel orders by pid (a queue's send-possible requests, a port's
    /// dead-name requests, a group of handed messages, a task's links, an
    /// access list): from such a state the relabelled state's future may
    /// not be the relabelling of this one's, and the checker must not rely
    /// on the reduction.
    pub fn canonical_parts_relabelled<G: AsRef<[Pid]>>(
        &self,
        opts: CanonicalOptions,
        groups: &[G],
        out: &mut Vec<u8>,
        cuts: &mut Vec<usize>,
    ) -> bool {
        encode_parts(&self.lock_raw(), opts, out, Some(cuts), groups)
    }

    /// [`KernelSnapshot::canonical_name`] on the current state.
    pub fn canonical_name(&self, pid: Pid, name: PortName) -> u64 {
        name_code(&self.lock_raw(), pid, name)
    }

    /// A number that moves whenever the codes [`Kernel::canonical_name`]
    /// gives for `pid`'s names may change: a name allocated, freed or given
    /// back in its space, the task's exit. It is part of the state (a
    /// snapshot restores it) and only grows along a history, so equal
    /// numbers at a state and at a later state of its history mean every
    /// name of `pid` still has the code it had; a checker caches a
    /// process's encoding on it. (Two unrelated states may have equal
    /// numbers and different spaces.)
    pub fn space_version(&self, pid: Pid) -> u64 {
        match self.lock_raw().tasks.get(pid.0 as usize) {
            Some(Some(t)) => t.space.version(),
            // Gone for ever (pids are never reused).
            Some(None) => u64::MAX,
            // Not created yet.
            None => u64::MAX - 1,
        }
    }

    /// [`KernelSnapshot::canonical_wait`] on the current state.
    pub fn canonical_wait(&self, token: WaitToken) -> u64 {
        wait_code(&self.lock_raw(), token)
    }

    /// [`KernelSnapshot::canonical_message`] on the current state.
    pub fn canonical_message(
        &self,
        pid: Pid,
        msg: &Message,
        opts: CanonicalOptions,
        out: &mut Vec<u8>,
    ) {
        encode_message(&self.lock_raw(), opts, pid, msg, out);
    }
}
