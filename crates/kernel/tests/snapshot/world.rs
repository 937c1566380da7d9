//! A small "process" driving a kernel through its non-blocking entry points:
//! random operations from a few tasks, the names each task has learnt (at
//! most the two newest per slot, so stale names stay in play), and the wait
//! tokens it holds. Blocking sends and receives park with a no-op waker; the
//! process polls (`wait_done`), takes or cancels.
//!
//! Each operation's result is rendered either raw (names and tokens as
//! numbers: for replays, which must match exactly) or canonically (names
//! through `canonical_name`, tokens through `canonical_wait`, messages
//! through `canonical_message`: for comparing two kernels whose canonical
//! states are equal).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use mkipc_kernel::name::Access;
use mkipc_kernel::runtime::{
    Begin, CanonicalOptions, Destination, Source, WaitOutcome, WaitToken, Wake, Waker,
};
use mkipc_kernel::{
    Capacity, Disposition, Kernel, KernelConfig, MailboxConfig, Message, Notification, NotifyKind,
    OnFull, Pid, PortName, ReceiveError, SendError, Sent,
};
use proptest::prelude::*;

struct Noop;
impl Wake for Noop {
    fn wake(&self) {}
}

fn noop() -> Waker {
    Arc::new(Noop).into()
}

/// Selectors: an index into what the process knows, taken modulo its size.
pub type Sel = u8;

#[derive(Clone, Debug)]
pub enum Dest {
    Name(Sel),
    Task(Sel),
}

#[derive(Clone, Debug)]
pub enum Src {
    Name(Sel),
    Any(Sel, Sel),
    Task(Sel),
    AnyTask,
}

#[derive(Clone, Debug)]
pub enum Op {
    Spawn,
    Exit(Sel),
    Alloc(Sel, Capacity),
    SetAlloc(Sel),
    SetInsert(Sel, Sel, Sel),
    SetRemove(Sel, Sel),
    MakeRight(Sel, Sel, Disposition),
    Deallocate(Sel, Sel),
    Destroy(Sel, Sel),
    SetCapacity(Sel, Sel, Capacity),
    Notify(Sel, Sel, NotifyKind, Sel),
    Send {
        t: Sel,
        dest: Dest,
        id: u8,
        body: u8,
        rights: Vec<(Sel, Disposition)>,
        reply: Option<(Sel, Disposition)>,
        on_full: OnFull,
    },
    Receive {
        t: Sel,
        src: Src,
        wait: bool,
    },
    /// A selective receive of messages with this id.
    ReceiveMatching {
        t: Sel,
        m: Sel,
        id: u8,
        wait: bool,
    },
    /// A priority select over two names.
    SelectFirst {
        t: Sel,
        a: Sel,
        b: Sel,
        wait: bool,
    },
    Peek(Sel, Sel),
    Close(Sel, Sel),
    Take(Sel),
    Cancel(Sel),
    Done(Sel),
    Register(Sel, Sel, Sel),
    Unregister(Sel, Sel),
    LookUp(Sel, Sel),
    MbCreate(Sel, Sel, Capacity),
    MbOpen(Sel, Sel),
    MbDestroy(Sel, Sel),
    Transfer(Sel, Sel, Vec<(Sel, Disposition)>),
    Status(Sel, Sel),
    Rights(Sel, Sel),
    /// Noise the process forgets at once (it learns no name, keeps no
    /// token): objects made and destroyed, so generations and stamps move on
    /// and nothing else changes.
    Noise(Sel, Noise),
}

#[derive(Clone, Copy, Debug)]
pub enum Noise {
    /// A port allocated and destroyed.
    Port,
    /// A port set allocated and destroyed.
    Set,
    /// A send-once right made and deallocated, on a port made for it.
    SendOnce,
    /// A receive blocked on a fresh port, cancelled.
    Bounce,
    /// A message sent to a fresh port and received.
    Echo,
    /// A mailbox created and destroyed.
    Mailbox,
}

pub fn noise() -> impl Strategy<Value = Noise> {
    prop_oneof![
        Just(Noise::Port),
        Just(Noise::Set),
        Just(Noise::SendOnce),
        Just(Noise::Bounce),
        Just(Noise::Echo),
        Just(Noise::Mailbox),
    ]
}

pub fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        2 => Just(Capacity::Zero),
        4 => (1..3usize).prop_map(Capacity::Bounded),
        3 => Just(Capacity::Unbounded),
    ]
}

pub fn disposition() -> impl Strategy<Value = Disposition> {
    prop_oneof![
        Just(Disposition::MoveReceive),
        Just(Disposition::MoveSend),
        Just(Disposition::CopySend),
        Just(Disposition::MakeSend),
        Just(Disposition::MakeSendOnce),
        Just(Disposition::MoveSendOnce),
    ]
}

fn on_full() -> impl Strategy<Value = OnFull> {
    prop_oneof![
        4 => Just(OnFull::Block),
        3 => Just(OnFull::Fail),
        1 => Just(OnFull::DropNewest),
        1 => Just(OnFull::DropOldest),
    ]
}

fn notify_kind() -> impl Strategy<Value = NotifyKind> {
    prop_oneof![
        Just(NotifyKind::DeadName),
        Just(NotifyKind::NoSenders),
        Just(NotifyKind::PortDestroyed),
        Just(NotifyKind::SendPossible),
    ]
}

/// Any operation. Selectors range over `0..s`: a small `s` makes two
/// histories meet in one canonical state more often.
pub fn op(s: Sel) -> impl Strategy<Value = Op> {
    let n = move || 0..s;
    let carried = move || proptest::collection::vec((n(), disposition()), 0..3);
    prop_oneof![
        1 => Just(Op::Spawn),
        1 => n().prop_map(Op::Exit),
        8 => (n(), capacity()).prop_map(|(t, c)| Op::Alloc(t, c)),
        1 => n().prop_map(Op::SetAlloc),
        2 => (n(), n(), n()).prop_map(|(t, s, m)| Op::SetInsert(t, s, m)),
        1 => (n(), n()).prop_map(|(t, m)| Op::SetRemove(t, m)),
        5 => (n(), n(), disposition()).prop_map(|(t, m, d)| Op::MakeRight(t, m, d)),
        4 => (n(), n()).prop_map(|(t, m)| Op::Deallocate(t, m)),
        2 => (n(), n()).prop_map(|(t, m)| Op::Destroy(t, m)),
        1 => (n(), n(), capacity()).prop_map(|(t, m, c)| Op::SetCapacity(t, m, c)),
        3 => (n(), n(), notify_kind(), n()).prop_map(|(t, m, k, x)| Op::Notify(t, m, k, x)),
        12 => (
            n(),
            prop_oneof![4 => n().prop_map(Dest::Name), 1 => n().prop_map(Dest::Task)],
            0..3u8,
            0..3u8,
            carried(),
            proptest::option::weighted(0.3, (n(), disposition())),
            on_full(),
        )
            .prop_map(|(t, dest, id, body, rights, reply, on_full)| Op::Send {
                t,
                dest,
                id,
                body,
                rights,
                reply,
                on_full,
            }),
        9 => (
            n(),
            prop_oneof![
                5 => n().prop_map(Src::Name),
                1 => (n(), n()).prop_map(|(a, b)| Src::Any(a, b)),
                1 => n().prop_map(Src::Task),
                1 => Just(Src::AnyTask),
            ],
            any::<bool>(),
        )
            .prop_map(|(t, src, wait)| Op::Receive { t, src, wait }),
        2 => (n(), n(), 0..3u8, any::<bool>())
            .prop_map(|(t, m, id, wait)| Op::ReceiveMatching { t, m, id, wait }),
        1 => (n(), n(), n(), any::<bool>())
            .prop_map(|(t, a, b, wait)| Op::SelectFirst { t, a, b, wait }),
        1 => (n(), n()).prop_map(|(t, m)| Op::Peek(t, m)),
        1 => (n(), n()).prop_map(|(t, m)| Op::Close(t, m)),
        3 => n().prop_map(Op::Take),
        2 => n().prop_map(Op::Cancel),
        1 => n().prop_map(Op::Done),
        2 => (n(), 0..2u8, n()).prop_map(|(t, s, m)| Op::Register(t, s, m)),
        1 => (n(), 0..2u8).prop_map(|(t, s)| Op::Unregister(t, s)),
        2 => (n(), 0..2u8).prop_map(|(t, s)| Op::LookUp(t, s)),
        2 => (n(), 0..2u8, capacity()).prop_map(|(t, m, c)| Op::MbCreate(t, m, c)),
        1 => (n(), 0..2u8).prop_map(|(t, m)| Op::MbOpen(t, m)),
        1 => (n(), n()).prop_map(|(t, m)| Op::MbDestroy(t, m)),
        2 => (n(), n(), carried()).prop_map(|(f, t, r)| Op::Transfer(f, t, r)),
        1 => (n(), n()).prop_map(|(t, m)| Op::Status(t, m)),
        1 => (n(), n()).prop_map(|(t, m)| Op::Rights(t, m)),
        2 => (n(), noise()).prop_map(|(t, x)| Op::Noise(t, x)),
    ]
}

/// Runs a piece of noise; `Err` if the task cannot (it exited) or a queue is
/// over its memory limit.
fn noise_op(
    k: &Kernel,
    pid: Pid,
    x: Noise,
    waker: &dyn Fn() -> Waker,
) -> Result<(), mkipc_kernel::IpcError> {
    use mkipc_kernel::IpcError;
    match x {
        Noise::Port => k.destroy(pid, k.port_allocate(pid, Capacity::Unbounded)?),
        Noise::Set => k.destroy(pid, k.port_set_allocate(pid)?),
        Noise::SendOnce => {
            let p = k.port_allocate(pid, Capacity::Unbounded)?;
            let so = k.make_right(pid, p, Disposition::MakeSendOnce)?;
            k.deallocate(pid, so)?;
            k.destroy(pid, p)
        }
        Noise::Bounce => {
            let p = k.port_allocate(pid, Capacity::Unbounded)?;
            match k.receive_begin(pid, Source::Name(p), true, waker) {
                Begin::Blocked(t) => drop(k.wait_cancel(pid, t)),
                Begin::Done(_) => return Err(IpcError::InvalidValue),
            }
            k.destroy(pid, p)
        }
        Noise::Echo => {
            let p = k.port_allocate(pid, Capacity::Unbounded)?;
            let sent = k.send_begin(
                pid,
                Destination::Name(p),
                Message::new(0, b""),
                OnFull::Fail,
                waker,
            );
            let received = k.receive_begin(pid, Source::Name(p), false, waker);
            k.destroy(pid, p)?;
            match (sent, received) {
                (Begin::Done(Ok(_)), Begin::Done(Ok(_))) => Ok(()),
                _ => Err(IpcError::InvalidValue),
            }
        }
        Noise::Mailbox => {
            let m = k.mailbox_create(pid, "noise", MailboxConfig::new(Capacity::Unbounded))?;
            k.mailbox_destroy(pid, m)
        }
    }
}

/// Operations that build state (ports, messages) more often than [`op`]
/// does, for histories that should meet.
pub fn busy_op() -> impl Strategy<Value = Op> {
    let n = || 0..3u8;
    prop_oneof![
        2 => (n(), capacity()).prop_map(|(t, c)| Op::Alloc(t, c)),
        3 => (n(), n(), 0..2u8, proptest::option::weighted(0.2, (n(), disposition())))
            .prop_map(|(t, d, id, reply)| Op::Send {
                t,
                dest: Dest::Name(d),
                id,
                body: 0,
                rights: Vec::new(),
                reply,
                on_full: OnFull::Block,
            }),
        1 => (n(), n()).prop_map(|(t, m)| Op::Receive { t, src: Src::Name(m), wait: true }),
        1 => (n(), n()).prop_map(|(t, m)| Op::Destroy(t, m)),
        1 => (n(), n(), disposition()).prop_map(|(t, m, d)| Op::MakeRight(t, m, d)),
        6 => op(3),
    ]
}

/// How results are rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Render {
    /// Names, tokens and counters as numbers.
    Raw,
    /// Through the canonical maps, with these options.
    Canonical(CanonicalOptions),
}

const SERVICES: [&str; 2] = ["s0", "s1"];
const MAILBOXES: [&str; 2] = ["m0", "m1"];

/// The kernel and what the process driving it knows.
pub struct World {
    pub k: Kernel,
    /// Tasks in creation order (exited ones included).
    pub pids: Vec<Pid>,
    /// Per task, per slot index: the (at most two) newest names learnt.
    pub names: BTreeMap<Pid, BTreeMap<u32, Vec<PortName>>>,
    /// Wait tokens held, with their task.
    pub tokens: Vec<(Pid, WaitToken)>,
}

/// The kernel configuration every world uses: small queues' memory, so the
/// memory ceiling is reached too.
pub fn config() -> KernelConfig {
    KernelConfig {
        queue_memory_limit: 4 * mkipc_kernel::introspect::queue_cost(2, 0, false),
        link_capacity: Capacity::Bounded(1),
    }
}

impl World {
    /// Two tasks, each with a few free slots in its space (and free slots in
    /// the kernel's arenas), so that noise reuses slots rather than adding
    /// them.
    pub fn new() -> World {
        let k = Kernel::with_config(config());
        let mut w = World {
            k,
            pids: Vec::new(),
            names: BTreeMap::new(),
            tokens: Vec::new(),
        };
        w.apply(&Op::Spawn, Render::Raw);
        w.apply(&Op::Spawn, Render::Raw);
        for &pid in &w.pids {
            let ports: Vec<_> = (0..3)
                .map(|_| w.k.port_allocate(pid, Capacity::Unbounded).unwrap())
                .collect();
            let set = w.k.port_set_allocate(pid).unwrap();
            for p in ports.into_iter().chain([set]) {
                w.k.destroy(pid, p).unwrap();
            }
        }
        // Each task has two ports, and send rights to the other's.
        let (a, b) = (w.pids[0], w.pids[1]);
        for (me, other) in [(a, b), (b, a)] {
            let rights: Vec<_> = [Capacity::Bounded(2), Capacity::Unbounded]
                .into_iter()
                .map(|c| {
                    let name = w.k.port_allocate(me, c).unwrap();
                    w.learn(me, name);
                    mkipc_kernel::CarriedRight {
                        name,
                        disposition: Disposition::MakeSend,
                    }
                })
                .collect();
            for got in w.k.transfer_rights(me, other, &rights).unwrap() {
                w.learn(other, got.name);
            }
        }
        w
    }

    /// A task the process knows, or a pid that never exists.
    pub fn task(&self, sel: Sel) -> Pid {
        let i = sel as usize % (self.pids.len() + 1);
        self.pids.get(i).copied().unwrap_or(Pid(1000))
    }

    fn known(&self, pid: Pid) -> Vec<PortName> {
        self.names
            .get(&pid)
            .map(|m| m.values().flatten().copied().collect())
            .unwrap_or_default()
    }

    /// A name `pid` knows, or NULL / DEAD.
    pub fn name(&self, pid: Pid, sel: Sel) -> PortName {
        let known = self.known(pid);
        let i = sel as usize % (known.len() + 2);
        match known.get(i) {
            Some(&n) => n,
            None if i == known.len() => PortName::NULL,
            None => PortName::DEAD,
        }
    }

    fn learn(&mut self, pid: Pid, name: PortName) {
        if name.is_null() || name.is_dead() {
            return;
        }
        let slot = self
            .names
            .entry(pid)
            .or_default()
            .entry(name.index())
            .or_default();
        if !slot.contains(&name) {
            slot.push(name);
            if slot.len() > 2 {
                slot.remove(0);
            }
        }
    }

    fn learn_message(&mut self, pid: Pid, m: &Message) {
        for r in m.rights() {
            self.learn(pid, r.name);
        }
        if let Some(r) = m.reply() {
            self.learn(pid, r.name);
        }
        if let Some(t) = m.trailer() {
            self.learn(pid, t.received_on);
        }
        // A dead-name or no-senders notification names a name the requester
        // already knows (in another task's space it would be a forged
        // name): not learnt.
        if let Some(Notification::PortDestroyed(n)) = m.notification() {
            self.learn(pid, n);
        }
    }

    /// The canonical form of the process state: every name it knows and
    /// every token it holds, through the kernel's canonical maps.
    pub fn process_canonical(&self) -> Vec<u64> {
        let mut out = vec![self.pids.len() as u64];
        for (pid, slots) in &self.names {
            out.push(u64::from(pid.0));
            out.push(slots.len() as u64);
            for names in slots.values() {
                out.push(names.len() as u64);
                out.extend(names.iter().map(|&n| self.k.canonical_name(*pid, n)));
            }
        }
        out.push(self.tokens.len() as u64);
        for &(pid, t) in &self.tokens {
            out.push(u64::from(pid.0));
            out.push(self.k.canonical_wait(t));
        }
        out
    }

    /// The kernel's canonical encoding with these options.
    pub fn kernel_canonical(&self, opts: CanonicalOptions) -> Vec<u8> {
        let mut out = Vec::new();
        self.k.canonical_with(opts, &mut out);
        out
    }

    fn render_name(&self, how: Render, pid: Pid, n: PortName) -> String {
        match how {
            Render::Raw => format!("{n}"),
            Render::Canonical(_) => format!("~{:x}", self.k.canonical_name(pid, n)),
        }
    }

    fn render_message(&self, how: Render, pid: Pid, m: &Message) -> String {
        match how {
            Render::Raw => format!("{m:?}/{}", m.sender_verified()),
            Render::Canonical(opts) => {
                let mut out = Vec::new();
                self.k.canonical_message(pid, m, opts, &mut out);
                format!("{out:?}")
            }
        }
    }

    fn render_send(&mut self, how: Render, pid: Pid, r: &Result<Sent, SendError>) -> String {
        match r {
            Ok(s) => format!("{s:?}"),
            Err(e) => {
                self.learn_message(pid, e.message());
                format!(
                    "{:?}:{}",
                    e.kind(),
                    self.render_message(how, pid, e.message())
                )
            }
        }
    }

    fn render_receive(
        &mut self,
        how: Render,
        pid: Pid,
        r: &Result<Message, ReceiveError>,
    ) -> String {
        match r {
            Ok(m) => {
                self.learn_message(pid, m);
                self.render_message(how, pid, m)
            }
            Err(e) => format!("{e:?}"),
        }
    }

    fn render_outcome(&mut self, how: Render, pid: Pid, o: &WaitOutcome) -> String {
        match o {
            WaitOutcome::Sent(r) => format!("sent {}", self.render_send(how, pid, r)),
            WaitOutcome::Received(r) => format!("received {}", self.render_receive(how, pid, r)),
        }
    }

    fn render_token(&self, how: Render, t: WaitToken) -> String {
        match how {
            Render::Raw => format!("{t:?}"),
            Render::Canonical(_) => format!("w{}", self.k.canonical_wait(t)),
        }
    }

    fn token(&self, sel: Sel) -> Option<(usize, Pid, WaitToken)> {
        if self.tokens.is_empty() {
            return None;
        }
        let i = sel as usize % self.tokens.len();
        let (pid, t) = self.tokens[i];
        Some((i, pid, t))
    }

    /// Applies one operation; returns its result, rendered.
    pub fn apply(&mut self, op: &Op, how: Render) -> String {
        let k = self.k.clone();
        let waker = noop();
        let waker = || waker.clone();
        match op {
            Op::Spawn => {
                let pid = k.create_task();
                self.pids.push(pid);
                format!("spawned {pid}")
            }
            Op::Exit(t) => {
                let pid = self.task(*t);
                k.exit_task(pid);
                "exited".into()
            }
            Op::Alloc(t, c) => {
                let pid = self.task(*t);
                let r = k.port_allocate(pid, *c);
                self.name_result(how, pid, r)
            }
            Op::SetAlloc(t) => {
                let pid = self.task(*t);
                let r = k.port_set_allocate(pid);
                self.name_result(how, pid, r)
            }
            Op::SetInsert(t, s, m) => {
                let pid = self.task(*t);
                format!(
                    "{:?}",
                    k.port_set_insert(pid, self.name(pid, *s), self.name(pid, *m))
                )
            }
            Op::SetRemove(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.port_set_remove(pid, self.name(pid, *m)))
            }
            Op::MakeRight(t, m, d) => {
                let pid = self.task(*t);
                let r = k.make_right(pid, self.name(pid, *m), *d);
                self.name_result(how, pid, r)
            }
            Op::Deallocate(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.deallocate(pid, self.name(pid, *m)))
            }
            Op::Destroy(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.destroy(pid, self.name(pid, *m)))
            }
            Op::SetCapacity(t, m, c) => {
                let pid = self.task(*t);
                format!("{:?}", k.set_capacity(pid, self.name(pid, *m), *c))
            }
            Op::Notify(t, m, kind, x) => {
                let pid = self.task(*t);
                format!(
                    "{:?}",
                    k.request_notification(pid, self.name(pid, *m), *kind, self.name(pid, *x))
                )
            }
            Op::Send {
                t,
                dest,
                id,
                body,
                rights,
                reply,
                on_full,
            } => {
                let pid = self.task(*t);
                let dest = match dest {
                    Dest::Name(m) => Destination::Name(self.name(pid, *m)),
                    Dest::Task(p) => Destination::Task(self.task(*p)),
                };
                let mut msg = Message::new(u32::from(*id), vec![*body; usize::from(*body)]);
                for &(m, d) in rights {
                    msg = msg.with_right(self.name(pid, m), d);
                }
                if let Some((m, d)) = reply {
                    msg = msg.with_reply(self.name(pid, *m), *d);
                }
                match k.send_begin(pid, dest, msg, *on_full, &waker) {
                    Begin::Done(r) => self.render_send(how, pid, &r),
                    Begin::Blocked(tok) => {
                        self.tokens.push((pid, tok));
                        format!("blocked {}", self.render_token(how, tok))
                    }
                }
            }
            Op::Receive { t, src, wait } => {
                let pid = self.task(*t);
                let any;
                let source = match src {
                    Src::Name(m) => Source::Name(self.name(pid, *m)),
                    Src::Any(a, b) => {
                        any = [self.name(pid, *a), self.name(pid, *b)];
                        Source::Any(&any)
                    }
                    Src::Task(p) => Source::Task(self.task(*p)),
                    Src::AnyTask => Source::AnyTask,
                };
                match k.receive_begin(pid, source, *wait, &waker) {
                    Begin::Done(r) => self.render_receive(how, pid, &r),
                    Begin::Blocked(tok) => {
                        self.tokens.push((pid, tok));
                        format!("blocked {}", self.render_token(how, tok))
                    }
                }
            }
            Op::ReceiveMatching { t, m, id, wait } => {
                let pid = self.task(*t);
                let filter = mkipc_kernel::Filter::any().id(u32::from(*id));
                let source = Source::Name(self.name(pid, *m));
                match k.receive_matching_begin(pid, source, &filter, *wait, &waker) {
                    Begin::Done(r) => self.render_receive(how, pid, &r),
                    Begin::Blocked(tok) => {
                        self.tokens.push((pid, tok));
                        format!("blocked {}", self.render_token(how, tok))
                    }
                }
            }
            Op::SelectFirst { t, a, b, wait } => {
                let pid = self.task(*t);
                let names = [self.name(pid, *a), self.name(pid, *b)];
                match k.select_first_begin(pid, &names, *wait, &waker) {
                    Begin::Done(r) => self.render_receive(how, pid, &r),
                    Begin::Blocked(tok) => {
                        self.tokens.push((pid, tok));
                        format!("blocked {}", self.render_token(how, tok))
                    }
                }
            }
            Op::Peek(t, m) => {
                let pid = self.task(*t);
                let r = k.peek(pid, Source::Name(self.name(pid, *m)));
                // Nothing is taken and no name is learnt: the id and body say it all.
                format!("{:?}", r.map(|m| (m.id, m.body.len())))
            }
            Op::Close(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.close(pid, self.name(pid, *m)))
            }
            Op::Take(s) => {
                let Some((i, pid, tok)) = self.token(*s) else {
                    return "no token".into();
                };
                match k.wait_take(pid, tok) {
                    None => "pending".into(),
                    Some(o) => {
                        self.tokens.remove(i);
                        self.render_outcome(how, pid, &o)
                    }
                }
            }
            Op::Cancel(s) => {
                let Some((i, pid, tok)) = self.token(*s) else {
                    return "no token".into();
                };
                let o = k.wait_cancel(pid, tok);
                self.tokens.remove(i);
                self.render_outcome(how, pid, &o)
            }
            Op::Done(s) => {
                let Some((_, pid, tok)) = self.token(*s) else {
                    return "no token".into();
                };
                format!("done {}", k.wait_done(pid, tok))
            }
            Op::Register(t, s, m) => {
                let pid = self.task(*t);
                let svc = SERVICES[*s as usize % SERVICES.len()];
                format!("{:?}", k.register(pid, svc, self.name(pid, *m)))
            }
            Op::Unregister(t, s) => {
                let pid = self.task(*t);
                format!(
                    "{:?}",
                    k.unregister(pid, SERVICES[*s as usize % SERVICES.len()])
                )
            }
            Op::LookUp(t, s) => {
                let pid = self.task(*t);
                let r = k.look_up(pid, SERVICES[*s as usize % SERVICES.len()]);
                self.name_result(how, pid, r)
            }
            Op::MbCreate(t, m, c) => {
                let pid = self.task(*t);
                let mut config = MailboxConfig::new(*c);
                config.default_access = if *m == 0 { Access::ALL } else { Access::SEND };
                let r = k.mailbox_create(pid, MAILBOXES[*m as usize % MAILBOXES.len()], config);
                self.name_result(how, pid, r)
            }
            Op::MbOpen(t, m) => {
                let pid = self.task(*t);
                let r = k.mailbox_open(pid, MAILBOXES[*m as usize % MAILBOXES.len()]);
                self.name_result(how, pid, r)
            }
            Op::MbDestroy(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.mailbox_destroy(pid, self.name(pid, *m)))
            }
            Op::Transfer(f, t, rights) => {
                let from = self.task(*f);
                let to = self.task(*t);
                let rights: Vec<_> = rights
                    .iter()
                    .map(|&(m, d)| mkipc_kernel::CarriedRight {
                        name: self.name(from, m),
                        disposition: d,
                    })
                    .collect();
                match k.transfer_rights(from, to, &rights) {
                    Ok(got) => {
                        let mut s = String::from("transferred");
                        for r in got {
                            self.learn(to, r.name);
                            let _ = write!(
                                s,
                                " {}/{:?}",
                                self.render_name(how, to, r.name),
                                r.disposition
                            );
                        }
                        s
                    }
                    Err(e) => format!("{e:?}"),
                }
            }
            Op::Status(t, m) => {
                let pid = self.task(*t);
                self.apply_status(how, pid, self.name(pid, *m))
            }
            Op::Rights(t, m) => {
                let pid = self.task(*t);
                format!("{:?}", k.rights(pid, self.name(pid, *m)))
            }
            Op::Noise(t, x) => {
                let pid = self.task(*t);
                format!("{:?}", noise_op(&k, pid, *x, &waker))
            }
        }
    }

    fn name_result(
        &mut self,
        how: Render,
        pid: Pid,
        r: Result<PortName, mkipc_kernel::IpcError>,
    ) -> String {
        match r {
            Ok(n) => {
                self.learn(pid, n);
                self.render_name(how, pid, n)
            }
            Err(e) => format!("{e:?}"),
        }
    }

    /// Observes as much of the state as operations can: what each known name
    /// denotes, the order messages come out in across every queue a task
    /// can receive from, what pending waits end with, which slots new names
    /// get, what exiting tasks set off (notifications, dead names).
    pub fn deep_probe(&mut self, how: Render) -> Vec<String> {
        let mut out = Vec::new();
        let k = self.k.clone();
        let waker = noop();
        let waker = || waker.clone();
        for &pid in &self.pids.clone() {
            for n in self.known(pid) {
                out.push(format!("{:?}", k.rights(pid, n)));
                out.push(self.apply_status(how, pid, n));
            }
        }
        // Messages, oldest first across every queue a task receives from.
        let drain = |w: &mut World, out: &mut Vec<String>| {
            for &pid in &w.pids.clone() {
                for _ in 0..64 {
                    let sources: Vec<PortName> = w
                        .known(pid)
                        .into_iter()
                        .filter(|&n| {
                            k.rights(pid, n).is_ok_and(|r| {
                                r.receive || r.port_set || r.mailbox.is_some_and(|a| a.receive)
                            })
                        })
                        .collect();
                    let r = match k.receive_begin(pid, Source::Any(&sources), false, &waker) {
                        Begin::Done(r) => r,
                        Begin::Blocked(t) => match k.wait_cancel(pid, t) {
                            WaitOutcome::Received(r) => r,
                            WaitOutcome::Sent(_) => unreachable!(),
                        },
                    };
                    let stop = r.is_err();
                    out.push(w.render_receive(how, pid, &r));
                    if stop {
                        break;
                    }
                }
                for _ in 0..8 {
                    let r = match k.receive_begin(pid, Source::AnyTask, false, &waker) {
                        Begin::Done(r) => r,
                        Begin::Blocked(_) => break,
                    };
                    let stop = r.is_err();
                    out.push(w.render_receive(how, pid, &r));
                    if stop {
                        break;
                    }
                }
            }
        };
        drain(self, &mut out);
        // Pending waits: done or not, then cancelled.
        for (pid, t) in std::mem::take(&mut self.tokens) {
            out.push(format!("done {}", k.wait_done(pid, t)));
            let o = k.wait_cancel(pid, t);
            out.push(self.render_outcome(how, pid, &o));
        }
        drain(self, &mut out);
        // Which slots new objects get.
        for &pid in &self.pids.clone() {
            for _ in 0..3 {
                let r = k.port_allocate(pid, Capacity::Unbounded);
                out.push(self.name_result(how, pid, r));
            }
        }
        // Tasks exit one by one; the others see what that sets off.
        for &pid in &self.pids.clone() {
            k.exit_task(pid);
            out.push(self.observe(how));
            drain(self, &mut out);
        }
        out
    }

    fn apply_status(&self, how: Render, pid: Pid, n: PortName) -> String {
        match self.k.port_status(pid, n) {
            Err(e) => format!("{e:?}"),
            Ok(mut s) => {
                if let Render::Canonical(opts) = how {
                    if !opts.seqnos {
                        s.seqno = 0;
                    }
                    if !opts.statistics {
                        s.messages_sent = 0;
                        s.messages_dropped = 0;
                        s.max_queue_len = 0;
                    }
                }
                format!("{s:?}")
            }
        }
    }

    /// What introspection shows, rendered (ids and, per `how`, counters left
    /// out when canonical).
    pub fn observe(&self, how: Render) -> String {
        let mut s = format!("{:?}", self.k.stats());
        for &pid in &self.pids {
            let _ = write!(s, " {:?}", self.k.task_rights(pid));
        }
        let mut queues = Vec::new();
        for mut q in self.k.queue_stats() {
            if let Render::Canonical(opts) = how {
                q.queue_id = 0;
                q.label = if q.kind == "port" {
                    String::new()
                } else {
                    q.label
                };
                if !opts.statistics {
                    q.accepted = 0;
                    q.dropped = 0;
                    q.max_len = 0;
                }
            }
            queues.push(format!("{q:?}"));
        }
        if let Render::Canonical(_) = how {
            // Listed in slot order, which the canonical state leaves out for ports.
            queues.sort();
        }
        for q in queues {
            let _ = write!(s, " {q}");
        }
        s
    }
}
