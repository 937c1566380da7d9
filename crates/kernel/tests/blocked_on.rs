//! `Kernel::blocked_on`: what a blocked task waits on, and who could end
//! the wait. A task blocked for the reply to a call waits on whoever holds
//! the send-once reply right, wherever it went (queued in the request, in
//! the server's space, forwarded, or riding along with a moved receive
//! right); a task blocked on a mailbox waits on every live task whose access
//! lets it do the other half.
//!
//! Single-threaded, through the non-blocking core (`send_begin`,
//! `receive_begin`), so every state is reached deterministically.

use std::collections::VecDeque;

use mkipc_kernel::introspect::BlockedOn;
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::name::Access;
use mkipc_kernel::runtime::{Begin, Destination, Source, Wake, Waker};
use mkipc_kernel::{
    Capacity, CarriedRight, Disposition, Kernel, MailboxConfig, Message, OnFull, Pid, PortName,
};
use proptest::prelude::*;

struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}
fn waker() -> Waker {
    std::sync::Arc::new(NoWake).into()
}

fn send(k: &Kernel, from: Pid, to: PortName, msg: Message) {
    match k.send_begin(from, Destination::Name(to), msg, OnFull::Block, &waker) {
        Begin::Done(r) => {
            r.expect("send");
        }
        Begin::Blocked(_) => panic!("send blocked"),
    }
}

fn receive(k: &Kernel, pid: Pid, from: PortName) -> Message {
    match k.receive_begin(pid, Source::Name(from), false, &waker) {
        Begin::Done(r) => r.expect("a message is queued"),
        Begin::Blocked(_) => panic!("receive blocked"),
    }
}

/// Gives `to` a send right to `port` (a receive right `owner` holds).
fn give_send(k: &Kernel, owner: Pid, port: PortName, to: Pid) -> PortName {
    let right = CarriedRight {
        name: port,
        disposition: Disposition::MakeSend,
    };
    k.transfer_rights(owner, to, &[right]).expect("transfer")[0].name
}

/// `caller` calls `dest` as `Ipc::call` does: a fresh reply port, its
/// send-once right in the request, then a receive on the reply port, which
/// blocks. Returns the reply port.
fn call_and_block(k: &Kernel, caller: Pid, dest: PortName) -> PortName {
    let reply = k.port_allocate(caller, Capacity::Bounded(1)).unwrap();
    let request = Message::new(1, b"request").with_reply(reply, Disposition::MakeSendOnce);
    send(k, caller, dest, request);
    match k.receive_begin(caller, Source::Name(reply), true, &waker) {
        Begin::Blocked(_) => reply,
        Begin::Done(r) => panic!("the reply came early: {r:?}"),
    }
}

fn the_wait(k: &Kernel, pid: Pid) -> BlockedOn {
    let waits = k.blocked_on(pid);
    assert_eq!(waits.len(), 1, "{waits:?}");
    waits.into_iter().next().unwrap()
}

#[test]
fn smoke() {
    // Sending to a full bounded(1) port waits on its receiver.
    let k = Kernel::new();
    let (a, b) = (k.create_task(), k.create_task());
    let port = k.port_allocate(b, Capacity::Bounded(1)).unwrap();
    let to = give_send(&k, b, port, a);
    send(&k, a, to, Message::new(1, b"fills it"));
    assert!(matches!(
        k.send_begin(
            a,
            Destination::Name(to),
            Message::new(2, b""),
            OnFull::Block,
            &waker
        ),
        Begin::Blocked(_)
    ));
    let w = the_wait(&k, a);
    assert!(w.sending);
    assert_eq!(*w.receivers, [b]);
    assert_eq!(*w.senders, [a]);
}

#[test]
fn a_blocked_call_waits_on_the_holder_of_its_reply_right() {
    let k = Kernel::new();
    let (client, server) = (k.create_task(), k.create_task());
    let svc = k.port_allocate(server, Capacity::Bounded(4)).unwrap();
    let to = give_send(&k, server, svc, client);
    call_and_block(&k, client, to);
    // The request is queued: the reply right rides in it, for the server.
    let w = the_wait(&k, client);
    assert!(!w.sending);
    assert_eq!(*w.senders, [] as [Pid; 0], "nobody holds a send right");
    assert_eq!(*w.send_once, [server], "{w:?}");
    // The server took the request: the right is in its space.
    let request = receive(&k, server, svc);
    assert!(request.reply().is_some());
    assert_eq!(*the_wait(&k, client).send_once, [server]);
    // The server exits without replying: the right dies, the call ends.
    k.exit_task(server);
    assert!(k.blocked_on(client).is_empty());
}

#[test]
fn a_mailbox_wait_names_every_task_whose_access_can_end_it() {
    let k = Kernel::new();
    let setup = k.create_task();
    let (master, w1, w2, w3, outsider) = (
        k.create_task(),
        k.create_task(),
        k.create_task(),
        k.create_task(),
        k.create_task(),
    );
    let config = MailboxConfig::new(Capacity::Bounded(1))
        .owner(Owner::System)
        .default_access(Access::NONE)
        .grant(master, Access::SEND)
        .grant(w1, Access::RECEIVE)
        .grant(w2, Access::ALL)
        .grant(w3, Access::RECEIVE);
    k.mailbox_create(setup, "jobs", config).unwrap();
    let jobs = k.mailbox_open(master, "jobs").unwrap();
    send(&k, master, jobs, Message::new(1, b"job"));
    assert!(matches!(
        k.send_begin(
            master,
            Destination::Name(jobs),
            Message::new(2, b"job"),
            OnFull::Block,
            &waker
        ),
        Begin::Blocked(_)
    ));
    // The setup task created it (system mailbox: full access), the workers
    // may receive; nobody has opened it but the master, which does not matter.
    let w = the_wait(&k, master);
    assert!(w.sending);
    assert_eq!(w.mailbox.as_deref(), Some("jobs"));
    assert_eq!(*w.receivers, [setup, w1, w2, w3], "{w:?}");
    assert_eq!(*w.senders, [setup, master, w2], "{w:?}");
    k.exit_task(w1);
    assert_eq!(*the_wait(&k, master).receivers, [setup, w2, w3]);
    let _ = outsider;
}

#[test]
fn many_waiters_on_one_mailbox_share_one_list() {
    // 20,000 receivers on a mailbox all of them may send to: one scan, one
    // list of 20,001 senders shared by every answer (not 20,000 copies).
    let k = Kernel::new();
    let setup = k.create_task();
    let config = MailboxConfig::new(Capacity::Bounded(1)).owner(Owner::System);
    k.mailbox_create(setup, "m", config).unwrap();
    let pids: Vec<Pid> = (0..20_000).map(|_| k.create_task()).collect();
    for &p in &pids {
        let m = k.mailbox_open(p, "m").unwrap();
        assert!(k
            .receive_begin(p, Source::Name(m), true, &waker)
            .is_blocked());
    }
    let all = k.blocked_on_all(&pids);
    assert_eq!(all.len(), pids.len());
    let first = &all[0][0].senders;
    assert_eq!(first.len(), pids.len() + 1);
    assert!(all
        .iter()
        .all(|w| w.len() == 1 && std::sync::Arc::ptr_eq(&w[0].senders, first)));
}

/// Where the request of the blocked call is, in the reference model.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Item {
    /// The request (with the reply right).
    Request,
    /// A message carrying the receive right of port `.0`.
    Carrier(usize),
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum RecvOwner {
    Task(usize),
    /// Travels in a message queued on this port.
    InPort(usize),
}

/// A chain of servers 1..=n, each with a port; every task holds a send
/// right to every port it does not own. Task 0 calls port 1 and blocks.
struct World {
    k: Kernel,
    pids: Vec<Pid>,
    /// `send_names[t][p]`: task t's send right to port p (None for its own).
    send_names: Vec<Vec<Option<PortName>>>,
    /// Who holds port p's receive right, and under which name.
    owner: Vec<RecvOwner>,
    recv_name: Vec<Option<PortName>>,
    queues: Vec<VecDeque<Item>>,
    /// The task holding the reply right in its space, under this name.
    held: Option<(usize, PortName)>,
}

impl World {
    fn new(n: usize) -> World {
        let k = Kernel::new();
        let pids: Vec<Pid> = (0..=n).map(|_| k.create_task()).collect();
        let mut recv_name = vec![None];
        for &pid in &pids[1..] {
            recv_name.push(Some(k.port_allocate(pid, Capacity::Unbounded).unwrap()));
        }
        let mut send_names = vec![vec![None; n + 1]; n + 1];
        for (t, names) in send_names.iter_mut().enumerate() {
            for (p, slot) in names.iter_mut().enumerate().skip(1) {
                if p != t {
                    *slot = Some(give_send(&k, pids[p], recv_name[p].unwrap(), pids[t]));
                }
            }
        }
        call_and_block(&k, pids[0], send_names[0][1].unwrap());
        let mut queues = vec![VecDeque::new(); n + 1];
        queues[1].push_back(Item::Request);
        World {
            k,
            pids,
            send_names,
            owner: (0..=n).map(RecvOwner::Task).collect(),
            recv_name,
            queues,
            held: None,
        }
    }

    /// The task that holds, or will get, what is queued on port `p`.
    fn taker(&self, mut p: usize) -> usize {
        loop {
            match self.owner[p] {
                RecvOwner::Task(t) => return t,
                RecvOwner::InPort(q) => p = q,
            }
        }
    }

    fn expected_holder(&self) -> usize {
        if let Some((t, _)) = self.held {
            return t;
        }
        let p = (1..self.queues.len())
            .find(|&p| self.queues[p].contains(&Item::Request))
            .expect("the request is somewhere");
        self.taker(p)
    }

    /// Every action possible now: (kind, task, port).
    fn actions(&self) -> Vec<(u8, usize, usize)> {
        let n = self.queues.len() - 1;
        let mut out = Vec::new();
        for p in 1..=n {
            // The owner of port p takes its first message.
            if let (RecvOwner::Task(t), Some(_)) = (self.owner[p], self.queues[p].front()) {
                if t != 0 {
                    out.push((0, t, p));
                }
            }
        }
        if let Some((t, _)) = self.held {
            for q in 1..=n {
                if self.send_names[t][q].is_some() {
                    out.push((1, t, q)); // forward the reply right to port q
                }
            }
        }
        for p in 1..=n {
            let RecvOwner::Task(t) = self.owner[p] else {
                continue;
            };
            for q in 1..=n {
                // Move port p's receive right into port q's queue, unless q
                // is p or (through rights in transit) ends up inside p.
                let mut r = q;
                let circular = loop {
                    if r == p {
                        break true;
                    }
                    match self.owner[r] {
                        RecvOwner::Task(_) => break false,
                        RecvOwner::InPort(next) => r = next,
                    }
                };
                if !circular && self.send_names[t][q].is_some() {
                    out.push((2, t, p * 100 + q));
                }
            }
        }
        out
    }

    fn apply(&mut self, (kind, t, arg): (u8, usize, usize)) {
        let (k, pid) = (&self.k, self.pids[t]);
        match kind {
            0 => {
                let p = arg;
                let msg = receive(k, pid, self.recv_name[p].unwrap());
                match self.queues[p].pop_front().unwrap() {
                    Item::Request => self.held = Some((t, msg.reply().unwrap().name)),
                    Item::Carrier(c) => {
                        self.owner[c] = RecvOwner::Task(t);
                        self.recv_name[c] = Some(msg.rights()[0].name);
                    }
                }
            }
            1 => {
                let (_, right) = self.held.take().unwrap();
                let msg = Message::new(2, b"forward").with_reply(right, Disposition::MoveSendOnce);
                send(k, pid, self.send_names[t][arg].unwrap(), msg);
                self.queues[arg].push_back(Item::Request);
            }
            _ => {
                let (p, q) = (arg / 100, arg % 100);
                let msg = Message::new(3, b"carrier")
                    .with_right(self.recv_name[p].unwrap(), Disposition::MoveReceive);
                send(k, pid, self.send_names[t][q].unwrap(), msg);
                self.owner[p] = RecvOwner::InPort(q);
                self.recv_name[p] = None;
                self.queues[q].push_back(Item::Carrier(p));
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Wherever the reply right goes (received, forwarded, or queued on a
    /// port whose receive right is itself on the move), the blocked caller
    /// waits on exactly the task that holds it or will receive it.
    #[test]
    fn the_reply_right_is_followed_wherever_it_goes(
        n in 1usize..5,
        choices in proptest::collection::vec(any::<u16>(), 0..12),
    ) {
        let mut w = World::new(n);
        for c in choices {
            let wait = the_wait(&w.k, w.pids[0]);
            prop_assert!(!wait.sending);
            prop_assert!(wait.senders.is_empty(), "{:?}", wait);
            prop_assert_eq!(&*wait.send_once, &[w.pids[w.expected_holder()]], "{:?}", wait);
            let actions = w.actions();
            if actions.is_empty() {
                break;
            }
            w.apply(actions[usize::from(c) % actions.len()]);
        }
        let wait = the_wait(&w.k, w.pids[0]);
        prop_assert_eq!(&*wait.send_once, &[w.pids[w.expected_holder()]], "{:?}", wait);
        // One scan for all gives what one scan each gives.
        let each: Vec<Vec<BlockedOn>> = w.pids.iter().map(|&p| w.k.blocked_on(p)).collect();
        prop_assert_eq!(w.k.blocked_on_all(&w.pids), each);
    }

    /// A blocked mailbox sender waits on every live task allowed to receive,
    /// a blocked receiver on every live task allowed to send.
    #[test]
    fn mailbox_waits_follow_the_access_list(
        access in proptest::collection::vec((any::<bool>(), any::<bool>(), any::<bool>()), 1..6),
        full in any::<bool>(),
    ) {
        let k = Kernel::new();
        let owner = k.create_task();
        let waiter = k.create_task();
        let others: Vec<Pid> = access.iter().map(|_| k.create_task()).collect();
        let mut config = MailboxConfig::new(Capacity::Bounded(1))
            .owner(Owner::Creator)
            .default_access(Access::NONE)
            .grant(waiter, Access::ALL);
        for (&pid, &(send, receive, _)) in others.iter().zip(&access) {
            config = config.grant(pid, Access { send, receive });
        }
        let mbox = k.mailbox_create(owner, "m", config).unwrap();
        let name = k.mailbox_open(waiter, "m").unwrap();
        if full {
            send(&k, owner, mbox, Message::new(1, b"fills it"));
        }
        let begin = if full {
            k.send_begin(waiter, Destination::Name(name), Message::new(2, b""), OnFull::Block, &waker)
                .is_blocked()
        } else {
            k.receive_begin(waiter, Source::Name(name), true, &waker).is_blocked()
        };
        prop_assert!(begin);
        for (&pid, &(_, _, exits)) in others.iter().zip(&access) {
            if exits {
                k.exit_task(pid);
            }
        }
        let live = |f: fn(&(bool, bool, bool)) -> bool| -> Vec<Pid> {
            let mut v = vec![owner, waiter];
            v.extend(others.iter().zip(&access).filter(|(_, a)| f(a) && !a.2).map(|(&p, _)| p));
            v
        };
        let wait = the_wait(&k, waiter);
        prop_assert_eq!(wait.sending, full);
        prop_assert_eq!(&*wait.receivers, &live(|a| a.1)[..]);
        prop_assert_eq!(&*wait.senders, &live(|a| a.0)[..]);
        prop_assert!(wait.send_once.is_empty());
    }
}

trait IsBlocked {
    fn is_blocked(&self) -> bool;
}
impl<T> IsBlocked for Begin<T> {
    fn is_blocked(&self) -> bool {
        matches!(self, Begin::Blocked(_))
    }
}
