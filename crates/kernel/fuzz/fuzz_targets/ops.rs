//! Fuzz target `ops`: random sequences of kernel operations on a few tasks.
//!
//! The input decodes (with `arbitrary`) into a list of operations, each
//! naming a task by index and a right by index into the names that task has
//! seen (or a raw, possibly bogus, name). Every operation is non-blocking
//! (try, zero timeout, drop policies), so one thread drives them all (`call`
//! is left out: its send half always blocks; an RPC is a send with a
//! `MakeSendOnce` reply right and a receive, which are in). Any
//! panic is a bug. After each operation the kernel's books are checked
//! (`Kernel::check_invariants`: rights conservation, receivers), and after
//! every task exits the kernel must hold nothing.

#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use mkipc_kernel::{Capacity, Disposition, Ipc, Kernel, KernelConfig, MailboxConfig, Message, NotifyKind, OnFull, Pid, PortName, Task, Wait};
use mkipc_kernel::introspect::KernelStats;
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::name::RightKind;

const TASKS: usize = 4;

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Cap {
    Zero,
    Bounded(u8),
    Huge,
    Unbounded,
}

impl Cap {
    fn get(self) -> Capacity {
        match self {
            Cap::Zero => Capacity::Zero,
            Cap::Bounded(n) => Capacity::Bounded(usize::from(n % 5)),
            Cap::Huge => Capacity::Bounded(usize::MAX),
            Cap::Unbounded => Capacity::Unbounded,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Disp {
    MoveReceive,
    MoveSend,
    CopySend,
    MakeSend,
    MakeSendOnce,
    MoveSendOnce,
}

impl Disp {
    fn get(self) -> Disposition {
        match self {
            Disp::MoveReceive => Disposition::MoveReceive,
            Disp::MoveSend => Disposition::MoveSend,
            Disp::CopySend => Disposition::CopySend,
            Disp::MakeSend => Disposition::MakeSend,
            Disp::MakeSendOnce => Disposition::MakeSendOnce,
            Disp::MoveSendOnce => Disposition::MoveSendOnce,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Policy {
    Fail,
    Zero,
    DropNewest,
    DropOldest,
}

impl Policy {
    fn get(self) -> OnFull {
        match self {
            Policy::Fail => OnFull::Fail,
            Policy::Zero => OnFull::Timeout(Duration::ZERO),
            Policy::DropNewest => OnFull::DropNewest,
            Policy::DropOldest => OnFull::DropOldest,
        }
    }
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Kind {
    Send,
    SendOnce,
    Receive,
    DeadName,
    PortSet,
    Mailbox,
}

impl Kind {
    fn get(self) -> RightKind {
        match self {
            Kind::Send => RightKind::Send,
            Kind::SendOnce => RightKind::SendOnce,
            Kind::Receive => RightKind::Receive,
            Kind::DeadName => RightKind::DeadName,
            Kind::PortSet => RightKind::PortSet,
            Kind::Mailbox => RightKind::Mailbox,
        }
    }
}

/// A name: one the task has seen (by index), or a raw value.
#[derive(Arbitrary, Debug, Clone, Copy)]
enum N {
    Seen(u8),
    Raw(u64),
}

#[derive(Arbitrary, Debug)]
enum Op {
    Spawn,
    Exit(u8),
    Alloc(u8, Cap),
    SetAlloc(u8),
    SetInsert(u8, N, N),
    SetRemove(u8, N),
    MakeRight(u8, N, Disp),
    Deallocate(u8, N),
    Destroy(u8, N),
    ModRefs(u8, N, Kind, i8),
    SetCapacity(u8, N, Cap),
    Notify(u8, N, u8, N),
    Send {
        t: u8,
        dest: N,
        body: u8,
        rights: Vec<(N, Disp)>,
        reply: Option<(N, Disp)>,
        on_full: Policy,
    },
    SendTo(u8, u8, u8, Vec<(N, Disp)>, Policy),
    Receive(u8, N, bool),
    Select(u8, Vec<N>, bool),
    SelectFirst(u8, Vec<N>, bool),
    ReceiveMatching(u8, N, u8, bool),
    Peek(u8, N),
    Close(u8, N),
    ReceiveFrom(u8, u8, bool),
    ReceiveAny(u8, bool),
    SetLinkCapacity(u8, u8, Cap),
    Register(u8, u8, N),
    Unregister(u8, u8),
    LookUp(u8, u8),
    MbCreate(u8, u8, Cap, bool),
    MbOpen(u8, u8),
    MbGrant(u8, N, u8, bool, bool),
    MbDestroy(u8, N),
    Transfer(u8, u8, Vec<(N, Disp)>),
}

struct World {
    kernel: Kernel,
    tasks: Vec<Option<Task>>,
    /// Pids of every task ever spawned (to address exited ones too).
    pids: Vec<Pid>,
    names: Vec<Vec<PortName>>,
}

const SERVICES: [&str; 2] = ["a", "b"];
const MAILBOXES: [&str; 2] = ["m", "n"];

impl World {
    fn task(&self, t: u8) -> Option<(usize, &Task)> {
        let i = usize::from(t) % self.tasks.len();
        self.tasks[i].as_ref().map(|task| (i, task))
    }

    fn name(&self, i: usize, n: N) -> PortName {
        match n {
            N::Seen(k) => {
                let seen = &self.names[i];
                if seen.is_empty() {
                    PortName::NULL
                } else {
                    seen[usize::from(k) % seen.len()]
                }
            }
            N::Raw(raw) => PortName::from_raw(raw),
        }
    }

    fn pid(&self, p: u8) -> Pid {
        self.pids[usize::from(p) % self.pids.len()]
    }

    fn learn(&mut self, i: usize, name: PortName) {
        if !name.is_null() && !self.names[i].contains(&name) && self.names[i].len() < 64 {
            self.names[i].push(name);
        }
    }

    fn learn_message(&mut self, i: usize, msg: &Message) {
        for r in msg.rights() {
            self.learn(i, r.name);
        }
        if let Some(r) = msg.reply() {
            self.learn(i, r.name);
        }
    }

    fn message(
        &self,
        i: usize,
        body: u8,
        rights: &[(N, Disp)],
        reply: Option<(N, Disp)>,
    ) -> Message {
        let mut msg = Message::new(u32::from(body), vec![body; usize::from(body % 40)]);
        for &(n, d) in rights.iter().take(4) {
            msg = msg.with_right(self.name(i, n), d.get());
        }
        if let Some((n, d)) = reply {
            msg = msg.with_reply(self.name(i, n), d.get());
        }
        msg
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Spawn => {
                if self.tasks.len() < 8 {
                    let t = self.kernel.spawn_task();
                    self.pids.push(t.pid());
                    self.tasks.push(Some(t));
                    self.names.push(Vec::new());
                }
            }
            Op::Exit(t) => {
                let i = usize::from(t) % self.tasks.len();
                self.tasks[i] = None;
            }
            Op::Alloc(t, cap) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                if let Ok(n) = task.port_allocate(cap.get()) {
                    self.learn(i, n);
                }
            }
            Op::SetAlloc(t) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                if let Ok(n) = task.port_set_allocate() {
                    self.learn(i, n);
                }
            }
            Op::SetInsert(t, set, member) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.port_set_insert(self.name(i, set), self.name(i, member));
            }
            Op::SetRemove(t, member) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.port_set_remove(self.name(i, member));
            }
            Op::MakeRight(t, n, d) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                if let Ok(n) = task.make_right(self.name(i, n), d.get()) {
                    self.learn(i, n);
                }
            }
            Op::Deallocate(t, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.deallocate(self.name(i, n));
            }
            Op::Destroy(t, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.destroy(self.name(i, n));
            }
            Op::ModRefs(t, n, kind, delta) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                // Mostly small steps, sometimes a jump to the limits.
                let delta = match delta {
                    i8::MAX => 65_534,
                    i8::MIN => -65_535,
                    d => i32::from(d % 3),
                };
                let _ = task.mod_refs(self.name(i, n), kind.get(), delta);
            }
            Op::SetCapacity(t, n, cap) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.set_capacity(self.name(i, n), cap.get());
            }
            Op::Notify(t, n, kind, notify) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let kind = match kind % 4 {
                    0 => NotifyKind::DeadName,
                    1 => NotifyKind::NoSenders,
                    2 => NotifyKind::PortDestroyed,
                    _ => NotifyKind::SendPossible,
                };
                let _ = task.request_notification(self.name(i, n), kind, self.name(i, notify));
            }
            Op::Send {
                t,
                dest,
                body,
                ref rights,
                reply,
                on_full,
            } => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let msg = self.message(i, body, rights, reply);
                if let Err(e) = task.send_with(self.name(i, dest), msg, on_full.get()) {
                    let back = e.into_message();
                    self.learn_message(i, &back);
                }
            }
            Op::SendTo(t, to, body, ref rights, on_full) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let msg = self.message(i, body, rights, None);
                if let Err(e) = task.send_to_with(self.pid(to), msg, on_full.get()) {
                    let back = e.into_message();
                    self.learn_message(i, &back);
                }
            }
            Op::Receive(t, n, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                if let Ok(m) = task.receive_with(self.name(i, n), wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::Select(t, ref names, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let names: Vec<PortName> = names.iter().take(4).map(|&n| self.name(i, n)).collect();
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                if let Ok(m) = task.select_with(&names, wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::SelectFirst(t, ref names, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let names: Vec<PortName> = names.iter().take(4).map(|&n| self.name(i, n)).collect();
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                if let Ok(m) = task.select_first_with(&names, wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::ReceiveMatching(t, n, id, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                let filter = mkipc_kernel::Filter::any().id(u32::from(id % 4));
                if let Ok(m) = task.receive_matching_with(self.name(i, n), &filter, wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::Peek(t, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.peek(self.name(i, n));
            }
            Op::Close(t, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.close(self.name(i, n));
            }
            Op::ReceiveFrom(t, from, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                if let Ok(m) = task.receive_from_with(self.pid(from), wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::ReceiveAny(t, timed) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let wait = if timed {
                    Wait::For(Duration::ZERO)
                } else {
                    Wait::NoWait
                };
                if let Ok(m) = task.receive_from_any_with(wait) {
                    self.learn_message(i, &m);
                }
            }
            Op::SetLinkCapacity(t, from, cap) => {
                let Some((_, task)) = self.task(t) else {
                    return;
                };
                let _ = task.set_link_capacity(self.pid(from), cap.get());
            }
            Op::Register(t, s, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.register(SERVICES[usize::from(s) % 2], self.name(i, n));
            }
            Op::Unregister(t, s) => {
                let Some((_, task)) = self.task(t) else {
                    return;
                };
                let _ = task.unregister(SERVICES[usize::from(s) % 2]);
            }
            Op::LookUp(t, s) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                if let Ok(n) = task.look_up(SERVICES[usize::from(s) % 2]) {
                    self.learn(i, n);
                }
            }
            Op::MbCreate(t, m, cap, system) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let owner = if system {
                    Owner::System
                } else {
                    Owner::Creator
                };
                let config = MailboxConfig::new(cap.get()).owner(owner);
                if let Ok(n) = task.mailbox_create(MAILBOXES[usize::from(m) % 2], config) {
                    self.learn(i, n);
                }
            }
            Op::MbOpen(t, m) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                if let Ok(n) = task.mailbox_open(MAILBOXES[usize::from(m) % 2]) {
                    self.learn(i, n);
                }
            }
            Op::MbGrant(t, n, p, send, receive) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let access = mkipc_kernel::name::Access { send, receive };
                let _ = task.mailbox_grant(self.name(i, n), self.pid(p), access);
            }
            Op::MbDestroy(t, n) => {
                let Some((i, task)) = self.task(t) else {
                    return;
                };
                let _ = task.mailbox_destroy(self.name(i, n));
            }
            Op::Transfer(from, to, ref rights) => {
                let (Some((i, a)), Some((j, b))) = (self.task(from), self.task(to)) else {
                    return;
                };
                let rights: Vec<_> = rights
                    .iter()
                    .take(4)
                    .map(|&(n, d)| mkipc_kernel::CarriedRight {
                        name: self.name(i, n),
                        disposition: d.get(),
                    })
                    .collect();
                if let Ok(got) = self.kernel.transfer_rights(a.pid(), b.pid(), &rights) {
                    for r in got {
                        self.learn(j, r.name);
                    }
                }
            }
        }
    }
}

fuzz_target!(|ops: Vec<Op>| {
    let kernel = Kernel::with_config(KernelConfig {
        queue_memory_limit: 4096,
        link_capacity: Capacity::Bounded(2),
    });
    let mut world = World {
        tasks: Vec::new(),
        pids: Vec::new(),
        names: Vec::new(),
        kernel: kernel.clone(),
    };
    for _ in 0..TASKS {
        let t = kernel.spawn_task();
        world.pids.push(t.pid());
        world.tasks.push(Some(t));
        world.names.push(Vec::new());
    }
    for op in ops.iter().take(256) {
        world.run(op);
        if let Err(e) = kernel.check_invariants() {
            panic!("after {op:?}: {e}");
        }
    }
    world.tasks.clear();
    if let Err(e) = kernel.check_invariants() {
        panic!("after every task exited: {e}");
    }
    // System-owned mailboxes outlive their creators by design, with what
    // is queued in them: a fresh task drains them (the rights it receives
    // die when it exits).
    let cleaner = kernel.spawn_task();
    for name in MAILBOXES {
        if let Ok(mb) = cleaner.mailbox_open(name) {
            let _ = cleaner.mailbox_destroy(mb);
            while cleaner.try_receive(mb).is_ok() {}
        }
    }
    drop(cleaner);
    if let Err(e) = kernel.check_invariants() {
        panic!("after every task exited: {e}");
    }
    // Nothing else is left: no port, set, message, request or service.
    let stats = kernel.stats();
    let left = KernelStats {
        mailboxes: 0,
        ..stats
    };
    assert_eq!(
        left,
        KernelStats::default(),
        "leaked after every task exited"
    );
    assert_eq!(
        kernel.dead_name_request_count(),
        0,
        "dead-name requests leaked"
    );
});
