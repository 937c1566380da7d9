//! Cases on what changes while processes run: a port's, a mailbox's and a
//! link's capacity, set by one process and kept by the others, a notification
//! request that lapses when the right it names moves away, the requests
//! on a port that move with its receive right, and a mailbox grant taken
//! back.

use std::time::Duration;

use super::{role, run_case, system_mailbox, Backend};
use crate::name::Access;
use crate::{
    Capacity, Disposition, Ipc, MailboxConfig, Message, Notification, NotifyKind, Pid, PortName,
    ReceiveError, SendErrorKind,
};

/// `set_capacity` across processes: a sender in another process keeps
/// to the capacity the receiver set (full at once at the smaller one,
/// its message given back), a blocked sender is woken when it grows,
/// and a shrink keeps what is queued.
pub fn set_capacity_across_processes<B: Backend>(b: &B) {
    let names =
        ["cap-right", "cap-said", "cap-back"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [right, said, back] = names.clone();
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Bounded(2))));
        }
        Ok(())
    });
    let (r1, s1, b1) = (right.clone(), said.clone(), back.clone());
    let receiver = role(move |p: &B::Process| {
        let (right, said, back) = (
            check!(p.mailbox_open(&r1)),
            check!(p.mailbox_open(&s1)),
            check!(p.mailbox_open(&b1)),
        );
        let port = check!(p.port_allocate(Capacity::Bounded(3)));
        check!(p.set_capacity(port, Capacity::Bounded(1)));
        let status = check!(p.port_status(port));
        ensure!(
            status.capacity == Capacity::Bounded(1),
            "capacity {:?}",
            status.capacity
        );
        check!(p.send(
            right,
            Message::new(1, b"port").with_right(port, Disposition::MakeSend)
        ));
        // The sender found the port full after one message.
        let m = check!(p.receive(said));
        ensure!(m.id == 2, "expected `full`, got {}", m.id);
        ensure!(
            check!(p.port_status(port)).queue_len == 1,
            "one message queued"
        );
        // Growing wakes the sender blocked on the full port.
        check!(p.set_capacity(port, Capacity::Bounded(3)));
        for id in 10..13 {
            let m = check!(p.receive(port));
            ensure!(m.id == id, "expected {id}, got {}", m.id);
        }
        check!(p.send(back, Message::new(3, b"again")));
        let m = check!(p.receive(said));
        ensure!(m.id == 4, "expected `sent`, got {}", m.id);
        // Shrinking keeps the queued messages; new sends find it full.
        check!(p.set_capacity(port, Capacity::Bounded(1)));
        ensure!(check!(p.port_status(port)).queue_len == 2, "both kept");
        match p.try_send(port, Message::new(98, b"over")) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                ensure!(e.into_message().id == 98, "the message comes back")
            }
            other => return Err(format!("send over a shrunk capacity: {other:?}")),
        }
        for id in [20, 21] {
            let m = check!(p.receive(port));
            ensure!(m.id == id, "expected {id}, got {}", m.id);
        }
        Ok(())
    });
    let sender = role(move |p: &B::Process| {
        let (right, said, back) = (
            check!(p.mailbox_open(&right)),
            check!(p.mailbox_open(&said)),
            check!(p.mailbox_open(&back)),
        );
        let m = check!(p.receive(right));
        let port = m.rights().first().map(|r| r.name).ok_or("no right came")?;
        check!(p.send(port, Message::new(10, b"first")));
        match p.try_send(port, Message::new(99, b"second")) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                ensure!(e.into_message().id == 99, "the message comes back")
            }
            other => return Err(format!("send over the capacity: {other:?}")),
        }
        check!(p.send(said, Message::new(2, b"full")));
        // Blocks until the receiver grows the capacity.
        check!(p.send(port, Message::new(11, b"second")));
        check!(p.send(port, Message::new(12, b"third")));
        let m = check!(p.receive(back));
        ensure!(m.id == 3, "expected `again`, got {}", m.id);
        check!(p.send(port, Message::new(20, b"a")));
        check!(p.send(port, Message::new(21, b"b")));
        check!(p.send(said, Message::new(4, b"sent")));
        Ok(())
    });
    run_case(
        b,
        "set_capacity_across_processes",
        setup,
        vec![receiver, sender],
    );
}

/// `set_link_capacity` across processes: the receiver sets the link
/// from the sender to one message; the sender's second `try_send_to`
/// finds it full (its message given back) until the first is received.
pub fn link_capacity_across_processes<B: Backend>(b: &B) {
    let names = ["lc-up", "lc-down"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [up, down] = names.clone();
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (u1, d1) = (up.clone(), down.clone());
    let sender = role(move |p: &B::Process| {
        let (up, down) = (check!(p.mailbox_open(&u1)), check!(p.mailbox_open(&d1)));
        check!(p.send(up, Message::from_u64(1, u64::from(p.pid().0))));
        let to = Pid(check!(p.receive(down)).as_u64().unwrap_or(0) as u32);
        check!(p.try_send_to(to, Message::new(10, b"fits")));
        match p.try_send_to(to, Message::new(11, b"over")) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                ensure!(e.into_message().id == 11, "the message comes back")
            }
            other => return Err(format!("a second message on a link of one: {other:?}")),
        }
        check!(p.send(up, Message::new(2, b"full")));
        let m = check!(p.receive(down));
        ensure!(m.id == 3, "expected `room`, got {}", m.id);
        check!(p.try_send_to(to, Message::new(11, b"now it fits")));
        Ok(())
    });
    let receiver = role(move |p: &B::Process| {
        let (up, down) = (check!(p.mailbox_open(&up)), check!(p.mailbox_open(&down)));
        let from = Pid(check!(p.receive(up)).as_u64().unwrap_or(0) as u32);
        check!(p.set_link_capacity(from, Capacity::Bounded(1)));
        check!(p.send(down, Message::from_u64(1, u64::from(p.pid().0))));
        let m = check!(p.receive(up));
        ensure!(m.id == 2, "expected `full`, got {}", m.id);
        ensure!(check!(p.receive_from(from)).id == 10, "the first message");
        check!(p.send(down, Message::new(3, b"room")));
        ensure!(check!(p.receive_from(from)).id == 11, "the second message");
        Ok(())
    });
    run_case(
        b,
        "link_capacity_across_processes",
        setup,
        vec![sender, receiver],
    );
}

/// A dead-name request lapses when its name's last right moves out in
/// a message (the kernel's `set_name` rule): when the port dies, only
/// the name that still holds its right is told.
pub fn dead_name_request_lapses_when_the_right_moves<B: Backend>(b: &B) {
    let names = ["dn-to-watcher", "dn-to-owner"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [to_watcher, to_owner] = names.clone();
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (w1, o1) = (to_watcher.clone(), to_owner.clone());
    let owner = role(move |p: &B::Process| {
        let (to_watcher, to_owner) = (check!(p.mailbox_open(&w1)), check!(p.mailbox_open(&o1)));
        // Two ports (a task has one name per port in the kernel, a
        // process one per received right here: two ports, two names).
        let ports = [
            check!(p.port_allocate(Capacity::Bounded(2))),
            check!(p.port_allocate(Capacity::Bounded(2))),
        ];
        for port in ports {
            let m = Message::new(1, b"a send right").with_right(port, Disposition::MakeSend);
            check!(p.send(to_watcher, m));
        }
        // The moved right comes back; then both ports die.
        let back = check!(p.receive_timeout(to_owner, Duration::from_secs(10)));
        ensure!(back.rights().len() == 1, "the moved right");
        for port in ports {
            check!(p.destroy(port));
        }
        check!(p.send(to_watcher, Message::new(3, b"destroyed")));
        Ok(())
    });
    let watcher = role(move |p: &B::Process| {
        let (to_watcher, to_owner) = (
            check!(p.mailbox_open(&to_watcher)),
            check!(p.mailbox_open(&to_owner)),
        );
        let moved = check!(p.receive(to_watcher))
            .rights()
            .first()
            .map(|r| r.name);
        let kept = check!(p.receive(to_watcher))
            .rights()
            .first()
            .map(|r| r.name);
        let (moved, kept) = (moved.ok_or("no right")?, kept.ok_or("no right")?);
        ensure!(moved != kept, "two names");
        let notify = check!(p.port_allocate(Capacity::Unbounded));
        check!(p.request_notification(moved, NotifyKind::DeadName, notify));
        check!(p.request_notification(kept, NotifyKind::DeadName, notify));
        let m = Message::new(2, b"yours again").with_right(moved, Disposition::MoveSend);
        check!(p.send(to_owner, m));
        let said = check!(p.receive_timeout(to_watcher, Duration::from_secs(10)));
        ensure!(said.id == 3, "`destroyed`");
        let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
        ensure!(
            n.notification() == Some(Notification::DeadName(kept)),
            "the kept name's death: {:?}",
            n.notification()
        );
        let more = p.receive_timeout(notify, Duration::from_millis(300));
        ensure!(
            more == Err(ReceiveError::TimedOut),
            "nothing about the moved name: {more:?}"
        );
        Ok(())
    });
    run_case(
        b,
        "dead_name_request_lapses_when_the_right_moves",
        setup,
        vec![owner, watcher],
    );
}

/// No-senders and port-destroyed requests are on the *port*: they travel
/// with its receive right. The requester moves the receive right to a
/// holder; when the last send right (a third process's) goes, the
/// requester's notify port is told, with the holder's name for the
/// right; when the holder destroys it, the receive right comes back to
/// the requester's notify port with the message still queued in it.
pub fn notification_requests_travel_with_the_receive_right<B: Backend>(b: &B) {
    let names = ["tr-to-req", "tr-to-holder", "tr-to-sender"]
        .map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [to_req, to_holder, to_sender] = names.clone();
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (r1, h1, s1) = (to_req.clone(), to_holder.clone(), to_sender.clone());
    let requester = role(move |p: &B::Process| {
        let (to_req, to_holder, to_sender) = (
            check!(p.mailbox_open(&r1)),
            check!(p.mailbox_open(&h1)),
            check!(p.mailbox_open(&s1)),
        );
        let port = check!(p.port_allocate(Capacity::Bounded(2)));
        let notify = check!(p.port_allocate(Capacity::Unbounded));
        let m = Message::new(1, b"a send right").with_right(port, Disposition::MakeSend);
        check!(p.send(to_sender, m));
        check!(p.request_notification(port, NotifyKind::NoSenders, notify));
        check!(p.request_notification(port, NotifyKind::PortDestroyed, notify));
        let m = Message::new(2, b"the receive right").with_right(port, Disposition::MoveReceive);
        check!(p.send(to_holder, m));
        // The holder's name for the right, then the sender's release.
        let held_as = check!(p.receive_timeout(to_req, Duration::from_secs(10)));
        let held_as = held_as.as_u64().ok_or("expected the holder's name")?;
        let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
        ensure!(
            n.notification() == Some(Notification::NoSenders(PortName::from_raw(held_as))),
            "no-senders with the holder's name {held_as:#x}: {:?}",
            n.notification()
        );
        check!(p.send(to_holder, Message::new(5, b"destroy it")));
        let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
        let Some(Notification::PortDestroyed(back)) = n.notification() else {
            return Err(format!("expected port-destroyed, got {n:?}"));
        };
        let m = check!(p.receive_timeout(back, Duration::from_secs(10)));
        ensure!(m.id == 42, "the queued message came with the right: {m:?}");
        let more = p.receive_timeout(notify, Duration::from_millis(300));
        ensure!(
            more == Err(ReceiveError::TimedOut),
            "nothing more on the notify port: {more:?}"
        );
        Ok(())
    });
    let (r2, h2, s2) = (to_req.clone(), to_holder.clone(), to_sender.clone());
    let holder = role(move |p: &B::Process| {
        let (to_req, to_holder, to_sender) = (
            check!(p.mailbox_open(&r2)),
            check!(p.mailbox_open(&h2)),
            check!(p.mailbox_open(&s2)),
        );
        let m = check!(p.receive_timeout(to_holder, Duration::from_secs(10)));
        let port = m.rights().first().map(|r| r.name).ok_or("no right came")?;
        check!(p.send(to_sender, Message::new(3, b"held")));
        check!(p.send(to_req, Message::from_u64(4, port.to_raw())));
        let cue = check!(p.receive_timeout(to_holder, Duration::from_secs(10)));
        ensure!(cue.id == 5, "expected the cue to destroy, got {cue:?}");
        ensure!(
            check!(p.port_status(port)).queue_len == 1,
            "the sender's message is queued"
        );
        check!(p.destroy(port));
        Ok(())
    });
    let sender = role(move |p: &B::Process| {
        let to_sender = check!(p.mailbox_open(&to_sender));
        let m = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        let port = m.rights().first().map(|r| r.name).ok_or("no right came")?;
        let cue = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        ensure!(cue.id == 3, "expected `held`, got {cue:?}");
        check!(p.send(port, Message::new(42, b"queued")));
        check!(p.deallocate(port));
        Ok(())
    });
    run_case(
        b,
        "notification_requests_travel_with_the_receive_right",
        setup,
        vec![requester, holder, sender],
    );
}

/// `set_capacity` on a mailbox, by its owner, across processes: a sender
/// that opened it by name keeps to the capacity the owner set (full at
/// once at the smaller one, its message given back), a blocked sender is
/// woken when it grows, and a shrink keeps what is queued. (Who may change
/// it is the kernel's rule; an OS backend running as root opens every
/// queue read-write, so the suite does not ask.)
pub fn mailbox_capacity_across_processes<B: Backend>(b: &B) {
    let names = ["mcap-to-sender", "mcap-said"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [to_sender, said] = names.clone();
    let mailbox = format!("{}-mcap", b.mailbox_prefix());
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (t1, s1, m1) = (to_sender.clone(), said.clone(), mailbox.clone());
    let owner = role(move |p: &B::Process| {
        let (to_sender, said) = (check!(p.mailbox_open(&t1)), check!(p.mailbox_open(&s1)));
        let config = MailboxConfig::new(Capacity::Bounded(3)).default_access(Access::SEND);
        let mb = check!(p.mailbox_create(&m1, config));
        check!(p.set_capacity(mb, Capacity::Bounded(1)));
        let status = check!(p.port_status(mb));
        ensure!(
            status.capacity == Capacity::Bounded(1),
            "capacity {:?}",
            status.capacity
        );
        check!(p.send(to_sender, Message::new(1, b"made")));
        let m = check!(p.receive_timeout(said, Duration::from_secs(10)));
        ensure!(m.id == 2, "expected `full`, got {}", m.id);
        ensure!(
            check!(p.port_status(mb)).queue_len == 1,
            "one message queued"
        );
        // Growing wakes the sender blocked on the full mailbox.
        check!(p.set_capacity(mb, Capacity::Bounded(3)));
        for id in 10..13 {
            let m = check!(p.receive_timeout(mb, Duration::from_secs(10)));
            ensure!(m.id == id, "expected {id}, got {}", m.id);
        }
        check!(p.send(to_sender, Message::new(3, b"again")));
        let m = check!(p.receive_timeout(said, Duration::from_secs(10)));
        ensure!(m.id == 4, "expected `sent`, got {}", m.id);
        // Shrinking keeps the queued messages; new sends find it full.
        check!(p.set_capacity(mb, Capacity::Bounded(1)));
        ensure!(check!(p.port_status(mb)).queue_len == 2, "both kept");
        match p.try_send(mb, Message::new(98, b"over")) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                ensure!(e.into_message().id == 98, "the message comes back")
            }
            other => return Err(format!("send over a shrunk capacity: {other:?}")),
        }
        for id in [20, 21] {
            let m = check!(p.receive_timeout(mb, Duration::from_secs(10)));
            ensure!(m.id == id, "expected {id}, got {}", m.id);
        }
        Ok(())
    });
    let sender = role(move |p: &B::Process| {
        let (to_sender, said) = (
            check!(p.mailbox_open(&to_sender)),
            check!(p.mailbox_open(&said)),
        );
        let m = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        ensure!(m.id == 1, "expected `made`, got {}", m.id);
        let mb = check!(p.mailbox_open(&mailbox));
        check!(p.send(mb, Message::new(10, b"first")));
        match p.try_send(mb, Message::new(99, b"second")) {
            Err(e) if e.kind() == SendErrorKind::Full => {
                ensure!(e.into_message().id == 99, "the message comes back")
            }
            other => return Err(format!("send over the capacity: {other:?}")),
        }
        check!(p.send(said, Message::new(2, b"full")));
        // Blocks until the owner grows the capacity.
        check!(p.send(mb, Message::new(11, b"second")));
        check!(p.send(mb, Message::new(12, b"third")));
        let m = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        ensure!(m.id == 3, "expected `again`, got {}", m.id);
        check!(p.send(mb, Message::new(20, b"a")));
        check!(p.send(mb, Message::new(21, b"b")));
        check!(p.send(said, Message::new(4, b"sent")));
        Ok(())
    });
    run_case(
        b,
        "mailbox_capacity_across_processes",
        setup,
        vec![owner, sender],
    );
}

/// A grant taken back from a process that opened the mailbox with it:
/// its receive blocked on the mailbox fails with `NoPermission`, and so do
/// its later sends and receives; given back, the same name works again.
pub fn mailbox_grant_taken_back<B: Backend>(b: &B) {
    let names = ["gtb-to-owner", "gtb-to-user"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [to_owner, to_user] = names.clone();
    let listed = format!("{}-gtb", b.mailbox_prefix());
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (o1, u1, l1) = (to_owner.clone(), to_user.clone(), listed.clone());
    let owner = role(move |p: &B::Process| {
        let (to_owner, to_user) = (check!(p.mailbox_open(&o1)), check!(p.mailbox_open(&u1)));
        let config = MailboxConfig::new(Capacity::Bounded(2))
            .default_access(Access::NONE)
            .grant(Pid(1), Access::NONE);
        let mb = check!(p.mailbox_create(&l1, config));
        let asked = check!(p.receive_timeout(to_owner, Duration::from_secs(10)));
        let user = Pid(asked.as_u64().ok_or("expected a pid")? as u32);
        check!(p.mailbox_grant(mb, user, Access::ALL));
        check!(p.send(to_user, Message::new(2, b"granted")));
        let m = check!(p.receive_timeout(mb, Duration::from_secs(10)));
        ensure!(m.id == 3, "the user's message: {m:?}");
        // Taken: the mailbox is empty for the user's receive.
        check!(p.send(to_user, Message::new(9, b"got it")));
        let waiting = check!(p.receive_timeout(to_owner, Duration::from_secs(10)));
        ensure!(waiting.id == 4, "expected `waiting`, got {waiting:?}");
        check!(p.mailbox_grant(mb, user, Access::NONE));
        let refused = check!(p.receive_timeout(to_owner, Duration::from_secs(10)));
        ensure!(refused.id == 5, "expected `refused`, got {refused:?}");
        check!(p.mailbox_grant(mb, user, Access::SEND));
        check!(p.send(to_user, Message::new(6, b"send again")));
        let m = check!(p.receive_timeout(mb, Duration::from_secs(10)));
        ensure!(
            m.id == 7,
            "the user's message after the grant came back: {m:?}"
        );
        let done = check!(p.receive_timeout(to_owner, Duration::from_secs(10)));
        ensure!(done.id == 8, "expected `done`, got {done:?}");
        Ok(())
    });
    let user = role(move |p: &B::Process| {
        let (to_owner, to_user) = (
            check!(p.mailbox_open(&to_owner)),
            check!(p.mailbox_open(&to_user)),
        );
        check!(p.send(to_owner, Message::from_u64(1, u64::from(p.pid().0))));
        let m = check!(p.receive_timeout(to_user, Duration::from_secs(10)));
        ensure!(m.id == 2, "expected `granted`, got {m:?}");
        let mb = check!(p.mailbox_open(&listed));
        check!(p.send(mb, Message::new(3, b"with the grant")));
        let m = check!(p.receive_timeout(to_user, Duration::from_secs(10)));
        ensure!(m.id == 9, "expected `got it`, got {m:?}");
        check!(p.send(to_owner, Message::new(4, b"waiting")));
        // Blocks (the mailbox is empty) until the grant is taken back.
        let got = p.receive_timeout(mb, Duration::from_secs(10));
        ensure!(
            got == Err(ReceiveError::NoPermission),
            "a receive after the grant was taken back: {got:?}"
        );
        match p.try_send(mb, Message::new(99, b"no grant")) {
            Err(e) if e.kind() == SendErrorKind::NoPermission => {
                ensure!(e.into_message().id == 99, "the message comes back")
            }
            other => return Err(format!("a send without the grant: {other:?}")),
        }
        check!(p.send(to_owner, Message::new(5, b"refused")));
        let m = check!(p.receive_timeout(to_user, Duration::from_secs(10)));
        ensure!(m.id == 6, "expected `send again`, got {m:?}");
        check!(p.send(mb, Message::new(7, b"granted again")));
        ensure!(
            p.try_receive(mb) == Err(ReceiveError::NoPermission),
            "send access only"
        );
        check!(p.send(to_owner, Message::new(8, b"done")));
        Ok(())
    });
    run_case(b, "mailbox_grant_taken_back", setup, vec![owner, user]);
}

/// A no-senders request stays on the port when a port-destroyed request
/// moves its receive right to the notify port: once the last send right
/// (another process's) goes, the notify port hears of it, under the name
/// the right came back with.
pub fn no_senders_request_moves_with_port_destroyed<B: Backend>(b: &B) {
    let names = ["nspd-to-req", "nspd-to-sender"].map(|n| format!("{}-{n}", b.mailbox_prefix()));
    let [to_req, to_sender] = names.clone();
    let setup = role(move |p: &B::Process| {
        for n in &names {
            check!(p.mailbox_create(n, system_mailbox(Capacity::Unbounded)));
        }
        Ok(())
    });
    let (r1, s1) = (to_req.clone(), to_sender.clone());
    let requester = role(move |p: &B::Process| {
        let (to_req, to_sender) = (check!(p.mailbox_open(&r1)), check!(p.mailbox_open(&s1)));
        let port = check!(p.port_allocate(Capacity::Bounded(2)));
        let notify = check!(p.port_allocate(Capacity::Unbounded));
        let m = Message::new(1, b"a send right").with_right(port, Disposition::MakeSend);
        check!(p.send(to_sender, m));
        let held = check!(p.receive_timeout(to_req, Duration::from_secs(10)));
        ensure!(held.id == 2, "expected `holding`, got {held:?}");
        check!(p.request_notification(port, NotifyKind::NoSenders, notify));
        check!(p.request_notification(port, NotifyKind::PortDestroyed, notify));
        check!(p.destroy(port));
        let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
        let Some(Notification::PortDestroyed(back)) = n.notification() else {
            return Err(format!("expected port-destroyed, got {n:?}"));
        };
        ensure!(
            p.try_receive(notify) == Err(ReceiveError::Empty),
            "no-senders while another process holds a send right"
        );
        check!(p.send(to_sender, Message::new(3, b"let go")));
        let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
        ensure!(
            n.notification() == Some(Notification::NoSenders(back)),
            "no-senders under the name the right came back with: {n:?}"
        );
        Ok(())
    });
    let sender = role(move |p: &B::Process| {
        let (to_req, to_sender) = (
            check!(p.mailbox_open(&to_req)),
            check!(p.mailbox_open(&to_sender)),
        );
        let m = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        let right = m.rights().first().map(|r| r.name).ok_or("no right came")?;
        check!(p.send(to_req, Message::new(2, b"holding")));
        let cue = check!(p.receive_timeout(to_sender, Duration::from_secs(10)));
        ensure!(cue.id == 3, "expected the cue, got {cue:?}");
        check!(p.deallocate(right));
        Ok(())
    });
    run_case(
        b,
        "no_senders_request_moves_with_port_destroyed",
        setup,
        vec![requester, sender],
    );
}
