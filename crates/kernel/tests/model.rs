//! Reference-model test: random operation sequences from a few tasks are
//! applied to the kernel and to a small sequential model of it
//! (`model/reference.rs`); every result and every right count must agree after
//! every step.
//!
//! Only non-blocking operations are used (`try_send`-like policies, `try_receive`,
//! rights operations), single-threaded, so the kernel is deterministic.
//! Names are local to a task and allocated differently by kernel and model, so
//! the test keeps a one-to-one map between model names and kernel names, learnt
//! as operations return names.

#[path = "model/reference.rs"]
mod reference;

use std::collections::BTreeMap;
use std::time::Duration;

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::message::INLINE_BODY;
use mkipc_kernel::name::{Access, RightKind};
use mkipc_kernel::{
    Capacity, Disposition, Ipc, Kernel, KernelConfig, MailboxConfig, Message, NotifyKind, OnFull,
    Pid, PortName, SmallMessage, SmallReceiveError, Task, Wait,
};
use proptest::prelude::*;
use reference::{Dest, MBody, MName, Model, Received, Src, UMsg};

/// The per-queue memory ceiling: two empty messages and 24 bytes of bodies
/// (a few small messages fit, a few 16-byte ones do not).
fn mem_limit() -> usize {
    2 * mkipc_kernel::introspect::queue_cost(0, 0, false) + 24
}
const MAX_TASKS: usize = 5;
const SERVICES: [&str; 3] = ["s0", "s1", "bad\nservice"];
const MAILBOXES: [&str; 4] = ["m0", "m1", "", "a/b"];

// ----- operations ---------------------------------------------------------------

/// Picks a name from the task's known names (stale ones included), or NULL/DEAD.
type NameSel = usize;
/// Picks a pid among 0..=tasks created + 1 (0 and the last one are invalid).
type PidSel = usize;

#[derive(Clone, Debug)]
enum Op {
    Spawn,
    Exit(usize),
    Alloc(usize, Capacity),
    SetAlloc(usize),
    SetInsert(usize, NameSel, NameSel),
    SetRemove(usize, NameSel),
    MakeRight(usize, NameSel, Disposition),
    Deallocate(usize, NameSel),
    Destroy(usize, NameSel),
    ModRefs(usize, NameSel, RightKind, i32),
    SetCapacity(usize, NameSel, Capacity),
    Close(usize, NameSel),
    Notify(usize, NameSel, NotifyKind, NameSel),
    Send {
        t: usize,
        dest: NameSel,
        id: u32,
        body: u8,
        rights: Vec<(NameSel, Disposition)>,
        reply: Option<(NameSel, Disposition)>,
        on_full: OnFull,
    },
    SendTo {
        t: usize,
        to: PidSel,
        body: u8,
        rights: Vec<(NameSel, Disposition)>,
        on_full: OnFull,
    },
    /// A typed send (`send_small_with`): what `Send` with no rights does.
    SendSmall {
        t: usize,
        dest: NameSel,
        id: u32,
        body: u8,
        on_full: OnFull,
    },
    Receive(usize, NameSel),
    /// A typed receive (`try_receive_small`): what `Receive` does.
    ReceiveSmall(usize, NameSel),
    Peek(usize, NameSel),
    SelectFirst(usize, Vec<NameSel>),
    /// A selective receive: id, sender, and a prefix of the body pattern
    /// `build_message` makes for this body parameter (length, parameter).
    ReceiveMatching(
        usize,
        NameSel,
        Option<u32>,
        Option<PidSel>,
        Option<(u8, u8)>,
    ),
    Select(usize, Vec<NameSel>),
    ReceiveFrom(usize, PidSel),
    ReceiveAny(usize),
    SetLinkCapacity(usize, PidSel, Capacity),
    Register(usize, usize, NameSel),
    Unregister(usize, usize),
    LookUp(usize, usize),
    MbCreate {
        t: usize,
        mb: usize,
        cap: Capacity,
        system: bool,
        default_access: Access,
        grants: Vec<(PidSel, Access)>,
    },
    MbOpen(usize, usize),
    MbGrant(usize, NameSel, PidSel, Access),
    MbDestroy(usize, NameSel),
}

fn capacity() -> impl Strategy<Value = Capacity> {
    prop_oneof![
        2 => Just(Capacity::Zero),
        1 => Just(Capacity::Bounded(0)),
        4 => (1..4usize).prop_map(Capacity::Bounded),
        3 => Just(Capacity::Unbounded),
    ]
}

fn disposition() -> impl Strategy<Value = Disposition> {
    prop_oneof![
        Just(Disposition::MoveReceive),
        Just(Disposition::MoveSend),
        Just(Disposition::CopySend),
        Just(Disposition::MakeSend),
        Just(Disposition::MakeSendOnce),
        Just(Disposition::MoveSendOnce),
    ]
}

fn right_kind() -> impl Strategy<Value = RightKind> {
    prop_oneof![
        Just(RightKind::Receive),
        Just(RightKind::Send),
        Just(RightKind::SendOnce),
        Just(RightKind::PortSet),
        Just(RightKind::DeadName),
        Just(RightKind::Mailbox),
    ]
}

fn on_full() -> impl Strategy<Value = OnFull> {
    prop_oneof![
        4 => Just(OnFull::Fail),
        2 => Just(OnFull::DropNewest),
        2 => Just(OnFull::DropOldest),
        1 => Just(OnFull::Timeout(Duration::ZERO)),
    ]
}

fn access() -> impl Strategy<Value = Access> {
    prop_oneof![
        Just(Access::NONE),
        Just(Access::SEND),
        Just(Access::RECEIVE),
        Just(Access::ALL),
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

fn delta() -> impl Strategy<Value = i32> {
    prop_oneof![
        6 => Just(-1),
        2 => Just(0),
        4 => Just(1),
        1 => Just(2),
        1 => Just(-2),
        1 => Just(65_533),
        1 => Just(-70_000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let t = 0..MAX_TASKS;
    let n = 0..16usize;
    let p = 0..(MAX_TASKS + 2);
    let carried = || proptest::collection::vec((0..16usize, disposition()), 0..3);
    prop_oneof![
        1 => Just(Op::Spawn),
        1 => t.clone().prop_map(Op::Exit),
        8 => (t.clone(), capacity()).prop_map(|(t, c)| Op::Alloc(t, c)),
        2 => t.clone().prop_map(Op::SetAlloc),
        2 => (t.clone(), n.clone(), n.clone()).prop_map(|(t, s, m)| Op::SetInsert(t, s, m)),
        1 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::SetRemove(t, m)),
        6 => (t.clone(), n.clone(), disposition()).prop_map(|(t, m, d)| Op::MakeRight(t, m, d)),
        3 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::Deallocate(t, m)),
        2 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::Destroy(t, m)),
        3 => (t.clone(), n.clone(), right_kind(), delta())
            .prop_map(|(t, m, k, d)| Op::ModRefs(t, m, k, d)),
        2 => (t.clone(), n.clone(), capacity()).prop_map(|(t, m, c)| Op::SetCapacity(t, m, c)),
        1 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::Close(t, m)),
        3 => (t.clone(), n.clone(), notify_kind(), n.clone())
            .prop_map(|(t, m, k, x)| Op::Notify(t, m, k, x)),
        14 => (
            t.clone(),
            n.clone(),
            0..4u32,
            0..17u8,
            carried(),
            proptest::option::weighted(0.2, (n.clone(), disposition())),
            on_full()
        )
            .prop_map(|(t, dest, id, body, rights, reply, on_full)| Op::Send {
                t,
                dest,
                id,
                body,
                rights,
                reply,
                on_full
            }),
        3 => (t.clone(), p.clone(), 0..17u8, carried(), on_full()).prop_map(
            |(t, to, body, rights, on_full)| Op::SendTo {
                t,
                to,
                body,
                rights,
                on_full
            }
        ),
        10 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::Receive(t, m)),
        6 => (t.clone(), n.clone(), 0..4u32, 0..17u8, on_full()).prop_map(
            |(t, dest, id, body, on_full)| Op::SendSmall {
                t,
                dest,
                id,
                body,
                on_full
            }
        ),
        6 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::ReceiveSmall(t, m)),
        3 => (t.clone(), n.clone()).prop_map(|(t, m)| Op::Peek(t, m)),
        2 => (t.clone(), proptest::collection::vec(n.clone(), 0..4))
            .prop_map(|(t, v)| Op::SelectFirst(t, v)),
        4 => (
            t.clone(),
            n.clone(),
            proptest::option::of(0..4u32),
            proptest::option::weighted(0.3, p.clone()),
            proptest::option::weighted(0.3, (0..4u8, 0..17u8)),
        )
            .prop_map(|(t, m, id, sender, prefix)| Op::ReceiveMatching(t, m, id, sender, prefix)),
        2 => (t.clone(), proptest::collection::vec(n.clone(), 0..3))
            .prop_map(|(t, v)| Op::Select(t, v)),
        2 => (t.clone(), p.clone()).prop_map(|(t, f)| Op::ReceiveFrom(t, f)),
        1 => t.clone().prop_map(Op::ReceiveAny),
        1 => (t.clone(), p.clone(), capacity()).prop_map(|(t, f, c)| Op::SetLinkCapacity(t, f, c)),
        2 => (t.clone(), 0..SERVICES.len(), n.clone()).prop_map(|(t, s, m)| Op::Register(t, s, m)),
        1 => (t.clone(), 0..SERVICES.len()).prop_map(|(t, s)| Op::Unregister(t, s)),
        3 => (t.clone(), 0..SERVICES.len()).prop_map(|(t, s)| Op::LookUp(t, s)),
        2 => (
            t.clone(),
            0..MAILBOXES.len(),
            capacity(),
            any::<bool>(),
            access(),
            proptest::collection::vec((p.clone(), access()), 0..3)
        )
            .prop_map(|(t, mb, cap, system, default_access, grants)| Op::MbCreate {
                t,
                mb,
                cap,
                system,
                default_access,
                grants
            }),
        2 => (t.clone(), 0..MAILBOXES.len()).prop_map(|(t, m)| Op::MbOpen(t, m)),
        1 => (t.clone(), n.clone(), p, access()).prop_map(|(t, m, p, a)| Op::MbGrant(t, m, p, a)),
        1 => (t, n).prop_map(|(t, m)| Op::MbDestroy(t, m)),
    ]
}

/// The body a send with body parameter `body` carries.
fn body_pattern(body: u8) -> Vec<u8> {
    (0..body)
        .map(|i| i.wrapping_mul(7).wrapping_add(body))
        .collect()
}

// ----- the harness ------------------------------------------------------------------

/// Kernel and model side by side, with the name map between them.
struct Harness {
    kernel: Kernel,
    model: Model,
    /// Task handles, index = pid - 1. Exited tasks stay (their Drop is a no-op then).
    tasks: Vec<Task>,
    /// Model name -> (pid, kernel name), for every name ever seen (stale ones too).
    fwd: BTreeMap<MName, (u32, PortName)>,
    /// (pid, kernel name) -> model name.
    rev: BTreeMap<(u32, PortName), MName>,
    /// Per task (index = pid - 1), every model name it was ever given, in order.
    known: Vec<Vec<MName>>,
    step: usize,
    /// For the coverage report: how the last operation ended.
    last_outcome: String,
}

static COVERAGE: std::sync::Mutex<BTreeMap<String, u64>> = std::sync::Mutex::new(BTreeMap::new());

/// `MODEL_COVERAGE=1` prints how often each operation ended each way.
fn coverage_on() -> bool {
    std::env::var_os("MODEL_COVERAGE").is_some()
}

impl Harness {
    fn new(initial_tasks: usize) -> Harness {
        let kernel = Kernel::with_config(KernelConfig {
            queue_memory_limit: mem_limit(),
            link_capacity: Capacity::Bounded(2),
        });
        let mut h = Harness {
            kernel,
            model: Model::new(mem_limit(), Capacity::Bounded(2)),
            tasks: Vec::new(),
            fwd: BTreeMap::new(),
            rev: BTreeMap::new(),
            known: Vec::new(),
            step: 0,
            last_outcome: String::new(),
        };
        for _ in 0..initial_tasks {
            h.spawn();
        }
        h
    }

    fn spawn(&mut self) {
        let task = self.kernel.spawn_task();
        let pid = self.model.create_task();
        assert_eq!(task.pid(), Pid(pid));
        self.tasks.push(task);
        self.known.push(Vec::new());
    }

    fn task(&self, sel: usize) -> (u32, &Task) {
        let i = sel % self.tasks.len();
        (i as u32 + 1, &self.tasks[i])
    }

    fn pid_sel(&self, sel: PidSel) -> u32 {
        (sel % (self.tasks.len() + 2)) as u32
    }

    /// The model and kernel names a selector picks in task `pid`.
    fn name(&self, pid: u32, sel: NameSel) -> (MName, PortName) {
        let known = &self.known[pid as usize - 1];
        let len = known.len();
        // Mostly recent names, sometimes any known name (stale ones too),
        // rarely NULL or DEAD.
        let m = match sel {
            _ if len == 0 || sel == 15 => return (MName::NULL, PortName::NULL),
            14 => return (MName::DEAD, PortName::DEAD),
            0..=7 => known[len - 1 - sel % len.min(4)],
            _ => known[(sel * 7) % len],
        };
        (m, self.fwd[&m].1)
    }

    /// Records that model name `m` is kernel name `k` in task `pid` (or checks it).
    fn bind(&mut self, pid: u32, m: MName, k: PortName) {
        if m == MName::DEAD {
            assert_eq!(
                k,
                PortName::DEAD,
                "step {}: expected the DEAD name",
                self.step
            );
            return;
        }
        if m == MName::NULL {
            assert_eq!(
                k,
                PortName::NULL,
                "step {}: expected the NULL name",
                self.step
            );
            return;
        }
        match self.fwd.get(&m) {
            Some(&(p, k0)) => assert_eq!(
                (p, k0),
                (pid, k),
                "step {}: model name {m:?} is kernel name {k0} of pid {p}, kernel said {k} of pid {pid}",
                self.step
            ),
            None => {
                assert!(
                    !self.rev.contains_key(&(pid, k)),
                    "step {}: kernel name {k} of pid {pid} given out twice (model: new name {m:?}, before: {:?})",
                    self.step,
                    self.rev.get(&(pid, k))
                );
                self.fwd.insert(m, (pid, k));
                self.rev.insert((pid, k), m);
                self.model.kname.insert(m, k);
                self.known[pid as usize - 1].push(m);
            }
        }
    }

    fn kernel_name(&self, m: MName) -> PortName {
        match m {
            MName::NULL => PortName::NULL,
            MName::DEAD => PortName::DEAD,
            m => self.fwd[&m].1,
        }
    }

    fn expected_body(&self, b: &MBody) -> Vec<u8> {
        match b {
            MBody::Bytes(v) => v.clone(),
            MBody::Name(_, m) => self.kernel_name(*m).to_raw().to_le_bytes().to_vec(),
            MBody::NullName => PortName::NULL.to_raw().to_le_bytes().to_vec(),
        }
    }

    fn check_name_result(
        &mut self,
        pid: u32,
        model: Result<MName, mkipc_kernel::IpcError>,
        kernel: Result<PortName, mkipc_kernel::IpcError>,
    ) {
        self.last_outcome = format!("{:?}", kernel.as_ref().map(|_| ()));
        match (model, kernel) {
            (Ok(m), Ok(k)) => self.bind(pid, m, k),
            (m, k) => assert_eq!(m.err(), k.err(), "step {}: result", self.step),
        }
    }

    fn check_received(
        &mut self,
        pid: u32,
        model: Result<Received, mkipc_kernel::ReceiveError>,
        kernel: Result<Message, mkipc_kernel::ReceiveError>,
    ) {
        self.last_outcome = match &kernel {
            Ok(k) => format!("Ok(id {}, {} rights)", k.id, k.rights().len()),
            Err(e) => format!("{e:?}"),
        };
        let (m, k) = match (model, kernel) {
            (Ok(m), Ok(k)) => (m, k),
            (m, k) => {
                assert_eq!(
                    m.as_ref().err(),
                    k.as_ref().err(),
                    "step {}: receive result (model {m:?}, kernel {k:?})",
                    self.step
                );
                return;
            }
        };
        let step = self.step;
        assert_eq!(m.id, k.id, "step {step}: message id ({m:?} vs {k:?})");
        assert_eq!(
            self.expected_body(&m.body),
            &k.body[..],
            "step {step}: body of message {m:?}"
        );
        assert_eq!(
            m.rights.len(),
            k.rights().len(),
            "step {step}: rights of {m:?} vs {k:?}"
        );
        for (mr, kr) in m.rights.iter().zip(k.rights()) {
            assert_eq!(mr.1, kr.disposition, "step {step}: disposition");
            self.bind(pid, mr.0, kr.name);
        }
        match (m.reply, k.reply()) {
            (None, None) => {}
            (Some(mr), Some(kr)) => {
                assert_eq!(mr.1, kr.disposition, "step {step}: reply disposition");
                self.bind(pid, mr.0, kr.name);
            }
            (a, b) => panic!("step {step}: reply {a:?} vs {b:?}"),
        }
        let tr = k.trailer().expect("received message has a trailer");
        assert_eq!(Pid(m.sender), tr.sender, "step {step}: sender");
        assert_eq!(
            self.kernel_name(m.received_on),
            tr.received_on,
            "step {step}: received_on"
        );
        assert_eq!(m.seqno, tr.seqno, "step {step}: seqno");
        if m.sender == 0 {
            assert!(
                k.notification().is_some(),
                "step {step}: kernel message decodes"
            );
        }
    }

    /// A peek: the head's id, body and trailer, no rights, nothing taken.
    fn check_peeked(
        &mut self,
        model: Result<Received, mkipc_kernel::ReceiveError>,
        kernel: Result<Message, mkipc_kernel::ReceiveError>,
    ) {
        let step = self.step;
        self.last_outcome = format!("{:?}", kernel.as_ref().map(|k| k.id));
        let (m, k) = match (model, kernel) {
            (Ok(m), Ok(k)) => (m, k),
            (m, k) => {
                assert_eq!(m.err(), k.err(), "step {step}: peek result");
                return;
            }
        };
        assert_eq!(m.id, k.id, "step {step}: peeked id");
        assert_eq!(
            self.expected_body(&m.body),
            &k.body[..],
            "step {step}: peeked body"
        );
        assert!(!k.carries_rights(), "step {step}: a peek moves no rights");
        let tr = k.trailer().expect("a peeked message has a trailer");
        assert_eq!(Pid(m.sender), tr.sender, "step {step}: peeked sender");
        assert_eq!(
            self.kernel_name(m.received_on),
            tr.received_on,
            "step {step}: peeked name"
        );
        assert_eq!(m.seqno, tr.seqno, "step {step}: peeked seqno");
    }

    fn apply(&mut self, op: &Op) {
        self.step += 1;
        let before = self.kernel.stats().messages;
        self.apply_op(op);
        if coverage_on() {
            let kind = format!("{op:?}");
            let kind = kind.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
            let after = self.kernel.stats().messages;
            let delta = match after.cmp(&before) {
                std::cmp::Ordering::Less => "msgs-",
                std::cmp::Ordering::Equal => "msgs=",
                std::cmp::Ordering::Greater => "msgs+",
            };
            let outcome = std::mem::take(&mut self.last_outcome);
            *COVERAGE
                .lock()
                .unwrap()
                .entry(format!("{kind}: {outcome} {delta}"))
                .or_insert(0) += 1;
        }
        self.compare_state();
    }

    fn apply_op(&mut self, op: &Op) {
        match op {
            Op::Spawn => {
                if self.tasks.len() < MAX_TASKS {
                    self.spawn();
                }
            }
            Op::Exit(t) => {
                let (pid, _) = self.task(*t);
                let fwd = &self.fwd;
                // The kernel releases a task's rights in name (slot index) order.
                let order = |m: MName| u64::from(fwd[&m].1.index());
                self.model.exit(pid, &order);
                self.kernel.exit_task(Pid(pid));
            }
            Op::Alloc(t, c) => {
                let (pid, task) = self.task(*t);
                let k = task.port_allocate(*c);
                let m = self.model.port_allocate(pid, *c);
                self.check_name_result(pid, m, k);
            }
            Op::SetAlloc(t) => {
                let (pid, task) = self.task(*t);
                let k = task.port_set_allocate();
                let m = self.model.port_set_allocate(pid);
                self.check_name_result(pid, m, k);
            }
            Op::SetInsert(t, s, n) => {
                let (pid, task) = self.task(*t);
                let (ms, ks) = self.name(pid, *s);
                let (mn, kn) = self.name(pid, *n);
                let k = task.port_set_insert(ks, kn);
                let m = self.model.port_set_insert(pid, ms, mn);
                self.check_unit(m, k);
            }
            Op::SetRemove(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.port_set_remove(kn);
                let m = self.model.port_set_remove(pid, mn);
                self.check_unit(m, k);
            }
            Op::MakeRight(t, n, d) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.make_right(kn, *d);
                let m = self.model.make_right(pid, mn, *d);
                self.check_name_result(pid, m, k);
            }
            Op::Deallocate(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.deallocate(kn);
                let m = self.model.deallocate(pid, mn);
                self.check_unit(m, k);
            }
            Op::Destroy(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.destroy(kn);
                let m = self.model.destroy(pid, mn);
                self.check_unit(m, k);
            }
            Op::ModRefs(t, n, kind, d) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.mod_refs(kn, *kind, *d);
                let m = self.model.mod_refs(pid, mn, *kind, *d);
                self.check_unit(m, k);
            }
            Op::SetCapacity(t, n, c) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.set_capacity(kn, *c);
                let m = self.model.set_capacity(pid, mn, *c);
                self.check_unit(m, k);
            }
            Op::Close(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.close(kn);
                let m = self.model.close(pid, mn);
                self.check_unit(m, k);
            }
            Op::Notify(t, n, kind, x) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let (mx, kx) = self.name(pid, *x);
                let k = task.request_notification(kn, *kind, kx);
                let m = self.model.request_notification(pid, mn, *kind, mx);
                self.check_unit(m, k);
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
                let (pid, _) = self.task(*t);
                let (md, kd) = self.name(pid, *dest);
                let (umsg, kmsg) = self.build_message(pid, *id, *body, rights, *reply);
                let k = self.tasks[pid as usize - 1].send_with(kd, kmsg.clone(), *on_full);
                let m = self.model.send(pid, Dest::Name(md), &umsg, *on_full);
                self.check_sent(m, k, &kmsg);
            }
            Op::SendTo {
                t,
                to,
                body,
                rights,
                on_full,
            } => {
                let (pid, _) = self.task(*t);
                let to = self.pid_sel(*to);
                let (umsg, kmsg) = self.build_message(pid, 9, *body, rights, None);
                let k = self.tasks[pid as usize - 1].send_to_with(Pid(to), kmsg.clone(), *on_full);
                let m = self.model.send(pid, Dest::Task(to), &umsg, *on_full);
                self.check_sent(m, k, &kmsg);
            }
            Op::Receive(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.try_receive(kn);
                let m = self.model.try_receive(pid, Src::Name(mn));
                self.check_received(pid, m, k);
            }
            Op::SendSmall {
                t,
                dest,
                id,
                body,
                on_full,
            } => {
                let (pid, _) = self.task(*t);
                let (md, kd) = self.name(pid, *dest);
                let (umsg, kmsg) = self.build_message(pid, *id, *body, &[], None);
                let k = self.tasks[pid as usize - 1].send_small_with(kd, *id, &kmsg.body, *on_full);
                let m = self.model.send(pid, Dest::Name(md), &umsg, *on_full);
                self.check_sent(m, k, &kmsg);
            }
            Op::ReceiveSmall(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = match task.try_receive_small(kn) {
                    Ok(small) => {
                        let m = small.into_message();
                        assert_eq!(
                            SmallMessage::from_message(m.clone()),
                            Ok(small),
                            "step {}: a small message's round trip",
                            self.step
                        );
                        Ok(m)
                    }
                    Err(SmallReceiveError::NotSmall(m)) => {
                        assert!(
                            m.carries_rights()
                                || m.body.len() > INLINE_BODY
                                || !m.sender_verified(),
                            "step {}: a small message came back as not small: {m:?}",
                            self.step
                        );
                        Ok(*m)
                    }
                    Err(SmallReceiveError::Receive(e)) => Err(e),
                };
                let m = self.model.try_receive(pid, Src::Name(mn));
                self.check_received(pid, m, k);
            }
            Op::ReceiveMatching(t, n, id, sender, prefix) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let mut filter = mkipc_kernel::Filter::any();
                if let Some(id) = id {
                    filter = filter.id(*id);
                }
                if let Some(s) = sender {
                    filter = filter.sender(Pid(self.pid_sel(*s)));
                }
                if let Some((len, body)) = prefix {
                    let bytes = body_pattern(*body);
                    filter = filter.body_prefix(&bytes[..usize::from(*len).min(bytes.len())]);
                }
                let k = task.try_receive_matching(kn, &filter);
                let m = self.model.try_receive_matching(pid, Src::Name(mn), &filter);
                self.check_received(pid, m, k);
            }
            Op::SelectFirst(t, ns) => {
                let (pid, task) = self.task(*t);
                let (ms, ks): (Vec<MName>, Vec<PortName>) =
                    ns.iter().map(|n| self.name(pid, *n)).unzip();
                let k = task.try_select_first(&ks);
                let m = self.model.try_select_first(pid, ms);
                self.check_received(pid, m, k);
            }
            Op::Peek(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.peek(kn);
                let m = self.model.peek(pid, Src::Name(mn));
                self.check_peeked(m, k);
            }
            Op::Select(t, ns) => {
                let (pid, task) = self.task(*t);
                let (ms, ks): (Vec<MName>, Vec<PortName>) =
                    ns.iter().map(|n| self.name(pid, *n)).unzip();
                let k = task.select_with(&ks, Wait::NoWait);
                let m = self.model.try_receive(pid, Src::Any(ms));
                self.check_received(pid, m, k);
            }
            Op::ReceiveFrom(t, f) => {
                let (pid, task) = self.task(*t);
                let from = self.pid_sel(*f);
                let k = task.receive_from_with(Pid(from), Wait::NoWait);
                let m = self.model.try_receive(pid, Src::Task(from));
                self.check_received(pid, m, k);
            }
            Op::ReceiveAny(t) => {
                let (pid, task) = self.task(*t);
                let k = task.receive_from_any_with(Wait::NoWait);
                let m = self.model.try_receive(pid, Src::AnyTask);
                self.check_received(pid, m, k);
            }
            Op::SetLinkCapacity(t, f, c) => {
                let (pid, task) = self.task(*t);
                let from = self.pid_sel(*f);
                let k = task.set_link_capacity(Pid(from), *c);
                let m = self.model.set_link_capacity(pid, from, *c);
                self.check_unit(m, k);
            }
            Op::Register(t, s, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.register(SERVICES[*s], kn);
                let m = self.model.register(pid, SERVICES[*s], mn);
                self.check_unit(m, k);
            }
            Op::Unregister(t, s) => {
                let (pid, task) = self.task(*t);
                let k = task.unregister(SERVICES[*s]);
                let m = self.model.unregister(pid, SERVICES[*s]);
                self.check_unit(m, k);
            }
            Op::LookUp(t, s) => {
                let (pid, task) = self.task(*t);
                let k = task.look_up(SERVICES[*s]);
                let m = self.model.look_up(pid, SERVICES[*s]);
                self.check_name_result(pid, m, k);
            }
            Op::MbCreate {
                t,
                mb,
                cap,
                system,
                default_access,
                grants,
            } => {
                let (pid, task) = self.task(*t);
                let owner = if *system {
                    Owner::System
                } else {
                    Owner::Creator
                };
                let grants: Vec<(u32, Access)> =
                    grants.iter().map(|(p, a)| (self.pid_sel(*p), *a)).collect();
                let mut config = MailboxConfig::new(*cap)
                    .owner(owner)
                    .default_access(*default_access);
                for (p, a) in &grants {
                    config = config.grant(Pid(*p), *a);
                }
                let k = task.mailbox_create(MAILBOXES[*mb], config);
                let m = self.model.mailbox_create(
                    pid,
                    MAILBOXES[*mb],
                    *cap,
                    owner,
                    *default_access,
                    &grants,
                );
                self.check_name_result(pid, m, k);
            }
            Op::MbOpen(t, mb) => {
                let (pid, task) = self.task(*t);
                let k = task.mailbox_open(MAILBOXES[*mb]);
                let m = self.model.mailbox_open(pid, MAILBOXES[*mb]);
                self.check_name_result(pid, m, k);
            }
            Op::MbGrant(t, n, p, a) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let to = self.pid_sel(*p);
                let k = task.mailbox_grant(kn, Pid(to), *a);
                let m = self.model.mailbox_grant(pid, mn, to, *a);
                self.check_unit(m, k);
            }
            Op::MbDestroy(t, n) => {
                let (pid, task) = self.task(*t);
                let (mn, kn) = self.name(pid, *n);
                let k = task.mailbox_destroy(kn);
                let m = self.model.mailbox_destroy(pid, mn);
                self.check_unit(m, k);
            }
        }
        self.compare_state();
    }

    fn check_unit(
        &mut self,
        model: Result<(), mkipc_kernel::IpcError>,
        kernel: Result<(), mkipc_kernel::IpcError>,
    ) {
        self.last_outcome = format!("{kernel:?}");
        assert_eq!(model, kernel, "step {}", self.step);
    }

    fn build_message(
        &self,
        pid: u32,
        id: u32,
        body: u8,
        rights: &[(NameSel, Disposition)],
        reply: Option<(NameSel, Disposition)>,
    ) -> (UMsg, Message) {
        let bytes = body_pattern(body);
        let mut kmsg = Message::new(id, bytes.clone());
        let mut umsg = UMsg {
            id,
            body: bytes,
            rights: Vec::new(),
            reply: None,
        };
        for (n, d) in rights {
            let (m, k) = self.name(pid, *n);
            umsg.rights.push((m, *d));
            kmsg = kmsg.with_right(k, *d);
        }
        if let Some((n, d)) = reply {
            let (m, k) = self.name(pid, n);
            umsg.reply = Some((m, d));
            kmsg = kmsg.with_reply(k, d);
        }
        (umsg, kmsg)
    }

    fn check_sent(
        &mut self,
        model: Result<mkipc_kernel::Sent, mkipc_kernel::SendErrorKind>,
        kernel: Result<mkipc_kernel::Sent, mkipc_kernel::SendError>,
        sent: &Message,
    ) {
        self.last_outcome = match &kernel {
            Ok(k) => format!(
                "{k:?} ({} rights)",
                sent.rights().len() + usize::from(sent.reply().is_some())
            ),
            Err(e) => format!("{:?}", e.kind()),
        };
        match (model, kernel) {
            (Ok(m), Ok(k)) => assert_eq!(m, k, "step {}: send outcome", self.step),
            (Err(m), Err(k)) => {
                assert_eq!(m, k.kind(), "step {}: send error", self.step);
                // A failed send gives the message back exactly as it was.
                assert_eq!(
                    &k.into_message(),
                    sent,
                    "step {}: returned message",
                    self.step
                );
            }
            (m, k) => panic!(
                "step {}: send: model {m:?}, kernel {:?}",
                self.step,
                k.map_err(|e| e.kind())
            ),
        }
    }

    /// Counts first (before any lookup could normalise lazy state), then every
    /// known name's rights and queue status.
    fn compare_state(&mut self) {
        let step = self.step;
        self.model.check_invariants();
        if let Err(e) = self.kernel.check_invariants() {
            panic!("step {step}: kernel invariants: {e}");
        }
        assert_eq!(
            self.model.stats(),
            self.kernel.stats(),
            "step {step}: stats"
        );
        for pid in 1..=self.tasks.len() as u32 {
            assert_eq!(
                self.model.task_rights(pid),
                self.kernel.task_rights(Pid(pid)),
                "step {step}: task_rights of pid {pid}"
            );
            assert_eq!(
                self.model.tasks.contains_key(&pid),
                self.kernel.is_alive(Pid(pid))
            );
        }
        for pid in 1..=self.tasks.len() as u32 {
            for &m in &self.known[pid as usize - 1] {
                let k = self.fwd[&m].1;
                assert_eq!(
                    self.model.rights(pid, m),
                    self.kernel.rights(Pid(pid), k),
                    "step {step}: rights of {m:?} = {k} in pid {pid}"
                );
                assert_eq!(
                    self.model.port_status(pid, m),
                    self.kernel.port_status(Pid(pid), k),
                    "step {step}: port_status of {m:?} = {k} in pid {pid}"
                );
            }
        }
    }
}

/// Runs `ops` after a prologue (also checked) that gives every task a port of
/// capacity `caps[i]` with a send right, and every other task a send right to
/// task 0's port through the name service.
fn run(caps: &[Capacity], ops: &[Op]) {
    let mut h = Harness::new(caps.len());
    h.compare_state();
    for (t, cap) in caps.iter().enumerate() {
        h.apply(&Op::Alloc(t, *cap));
        h.apply(&Op::MakeRight(t, 0, Disposition::MakeSend));
    }
    h.apply(&Op::Register(0, 0, 0));
    for t in 1..caps.len() {
        h.apply(&Op::LookUp(t, 0));
    }
    for op in ops {
        h.apply(op);
    }
    // Every task exits; what is left (system mailboxes, what their queued
    // messages carry) must still agree with the model: nothing leaks.
    for t in 0..h.tasks.len() {
        h.apply(&Op::Exit(t));
    }
    assert_eq!(h.kernel.stats().tasks, 0);
}

fn print_coverage() {
    if coverage_on() {
        for (k, v) in COVERAGE.lock().unwrap().iter() {
            eprintln!("{v:8} {k}");
        }
    }
}

fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 20_000,
        ..ProptestConfig::default()
    })]

    #[test]
    fn kernel_matches_model(
        caps in proptest::collection::vec(capacity(), 2..4),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        run(&caps, &ops);
    }
}

#[test]
fn zz_coverage_report() {
    // Tests run in name order with one thread:
    // `MODEL_COVERAGE=1 cargo test -p mkipc-kernel --test model -- --test-threads 1`.
    print_coverage();
}

// ----- deterministic regressions and paths random runs rarely reach ---------------

fn send(t: usize, dest: NameSel, rights: Vec<(NameSel, Disposition)>) -> Op {
    Op::Send {
        t,
        dest,
        id: 1,
        body: 8,
        rights,
        reply: None,
        on_full: OnFull::Fail,
    }
}

/// Bug: after a mailbox was destroyed (its owner exited), `task_rights` still
/// counted other tasks' names for it as mailboxes, while `rights` on the same
/// name reported a dead name.
#[test]
fn regression_dead_mailbox_name_counts_as_dead() {
    run(
        &[Capacity::Unbounded, Capacity::Unbounded],
        &[
            Op::MbCreate {
                t: 0,
                mb: 0,
                cap: Capacity::Zero,
                system: false,
                default_access: Access::SEND,
                grants: vec![],
            },
            Op::MbOpen(1, 0),
            Op::Exit(0),
            Op::Deallocate(1, 0),
        ],
    );
}

/// Bug: a send right received into a name whose user references were already
/// pegged at the maximum was not released, so the port counted one send right
/// more than existed and its no-senders notification never came.
#[test]
fn regression_pegged_user_references_release_the_extra_right() {
    run(
        &[Capacity::Unbounded, Capacity::Unbounded],
        &[
            Op::ModRefs(0, 0, RightKind::Send, 65_533),
            send(0, 0, vec![(0, Disposition::CopySend)]),
            Op::Receive(0, 0),
            send(0, 0, vec![(0, Disposition::CopySend)]),
            Op::Receive(0, 0),
            Op::LookUp(0, 0),
            Op::Unregister(0, 0),
            Op::Exit(1),
            // Ask for no-senders on the port itself, then drop every reference.
            Op::Notify(0, 0, NotifyKind::NoSenders, 0),
            Op::ModRefs(0, 0, RightKind::Send, -65_535),
            Op::ModRefs(0, 0, RightKind::Send, -65_534),
            Op::Receive(0, 0),
        ],
    );
}

/// Dead-name and port-destroyed notifications, received and decoded.
#[test]
fn dead_name_and_port_destroyed_notifications() {
    run(
        &[Capacity::Bounded(1), Capacity::Zero],
        &[
            // Task 1 holds a send right to task 0's port (prologue); it asks
            // for a dead-name notification on it, delivered to its own port.
            Op::Notify(1, 0, NotifyKind::DeadName, 1),
            // Task 0 asks that its port, when destroyed, go to a second port.
            Op::Alloc(0, Capacity::Unbounded),
            Op::Notify(0, 1, NotifyKind::PortDestroyed, 0),
            Op::Destroy(0, 1),
            Op::Receive(0, 0),
            // Now it is task 0's again; destroying it for real kills it.
            Op::Destroy(0, 0),
            Op::Receive(1, 1),
            Op::Receive(1, 1),
            Op::Deallocate(1, 0),
        ],
    );
}

/// The memory ceiling of unbounded queues, and drop policies on a full queue.
#[test]
fn memory_limit_and_drop_policies() {
    let big = |t, on_full| Op::Send {
        t,
        dest: 0,
        id: 2,
        body: 16,
        rights: vec![],
        reply: None,
        on_full,
    };
    run(
        &[Capacity::Unbounded, Capacity::Bounded(1)],
        &[
            big(0, OnFull::Fail),
            big(0, OnFull::Fail),
            big(0, OnFull::DropOldest),
            Op::SetCapacity(0, 0, Capacity::Bounded(1)),
            big(0, OnFull::DropOldest),
            big(0, OnFull::DropNewest),
            Op::SetCapacity(0, 0, Capacity::Zero),
            big(0, OnFull::DropOldest),
            Op::Receive(0, 0),
            Op::Receive(0, 0),
        ],
    );
}

/// Send-possible requests: answered after a receive makes room, at once when
/// there is room, by a dead-name notification when the port dies first, and
/// on a mailbox as on a port (its death too).
#[test]
fn send_possible_notifications() {
    let sp = |t, name, notify| Op::Notify(t, name, NotifyKind::SendPossible, notify);
    run(
        &[Capacity::Bounded(1), Capacity::Unbounded],
        &[
            // Task 1 fills task 0's bounded(1) port and asks to be told of
            // room on its own port.
            send(1, 0, vec![]),
            sp(1, 0, 1),
            Op::Receive(1, 1),
            Op::Receive(0, 0),
            Op::Receive(1, 1),
            // Room now: at once.
            sp(1, 0, 1),
            Op::Receive(1, 1),
            // Full again, and the port dies: dead-name instead.
            send(1, 0, vec![]),
            sp(1, 0, 1),
            Op::Destroy(0, 0),
            Op::Receive(1, 1),
            // A full mailbox, then its destruction.
            Op::MbCreate {
                t: 0,
                mb: 0,
                cap: Capacity::Bounded(1),
                system: true,
                default_access: Access::ALL,
                grants: vec![],
            },
            Op::MbOpen(1, 0),
            send(1, 0, vec![]),
            sp(1, 0, 2),
            Op::SetCapacity(0, 0, Capacity::Bounded(2)),
            Op::Receive(1, 2),
            send(1, 0, vec![]),
            sp(1, 0, 2),
            Op::MbDestroy(0, 0),
            Op::Receive(1, 2),
        ],
    );
}

/// Selective receive takes the oldest match from the middle of a queue and
/// leaves the rest in order; peek shows the head without taking it.
#[test]
fn selective_receive_and_peek() {
    let with_id = |id| Op::Send {
        t: 1,
        dest: 0,
        id,
        body: 3,
        rights: vec![],
        reply: None,
        on_full: OnFull::Fail,
    };
    run(
        &[Capacity::Unbounded, Capacity::Unbounded],
        &[
            with_id(1),
            with_id(2),
            with_id(3),
            with_id(2),
            Op::Peek(0, 0),
            Op::ReceiveMatching(0, 0, Some(2), None, None),
            Op::ReceiveMatching(0, 0, None, Some(2), Some((2, 3))),
            Op::ReceiveMatching(0, 0, Some(9), None, None),
            Op::Peek(0, 0),
            Op::Receive(0, 0),
            Op::Receive(0, 0),
            Op::Peek(0, 0),
        ],
    );
}

/// Close-but-drain: sends fail with `Closed` (the message back), receives
/// drain what is queued and then see `Closed`, not `Empty`; a send-possible
/// request on a closed queue is answered at once; a mailbox closes too.
#[test]
fn close_but_drain() {
    run(
        &[Capacity::Bounded(2), Capacity::Unbounded],
        &[
            send(1, 0, vec![]),
            send(1, 0, vec![]),
            Op::Notify(1, 0, NotifyKind::SendPossible, 1),
            Op::Close(0, 0),
            Op::Receive(1, 1),
            send(1, 0, vec![(1, Disposition::MakeSend)]),
            Op::Peek(0, 0),
            Op::Receive(0, 0),
            Op::Receive(0, 0),
            Op::Receive(0, 0),
            Op::Peek(0, 0),
            Op::ReceiveMatching(0, 0, Some(1), None, None),
            Op::Close(0, 0),
            Op::Close(1, 0),
            Op::MbCreate {
                t: 0,
                mb: 0,
                cap: Capacity::Unbounded,
                system: false,
                default_access: Access::ALL,
                grants: vec![],
            },
            Op::MbOpen(1, 0),
            send(1, 0, vec![]),
            Op::Close(1, 0),
            Op::Close(0, 0),
            send(1, 0, vec![]),
            Op::Receive(1, 0),
            Op::Receive(1, 0),
        ],
    );
}

/// Priority select takes from the first source that has a message, where
/// the oldest-first select takes the oldest message of all.
#[test]
fn priority_select_prefers_the_order_given() {
    run(
        &[Capacity::Unbounded, Capacity::Unbounded],
        &[
            Op::Alloc(0, Capacity::Unbounded),
            Op::MakeRight(0, 0, Disposition::MakeSend),
            // Task 0's first port gets the older message, its second the newer.
            send(0, 2, vec![]),
            send(0, 0, vec![]),
            send(0, 2, vec![]),
            send(0, 0, vec![]),
            Op::SelectFirst(0, vec![0, 2]),
            Op::Select(0, vec![0, 2]),
            Op::SelectFirst(0, vec![2, 0]),
            Op::SelectFirst(0, vec![0, 2]),
            Op::SelectFirst(0, vec![0, 2]),
            Op::SelectFirst(0, vec![]),
        ],
    );
}
