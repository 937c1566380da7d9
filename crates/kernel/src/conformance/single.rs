//! Cases inside one process: capacity rules, names and rights, select, notifications.

use std::time::Duration;

use super::{nothing, role, run_case, Backend};
use crate::name::RightKind;
use crate::{
    Capacity, Disposition, Filter, Ipc, IpcError, Message, Notification, NotifyKind, OnFull,
    ReceiveError, SendErrorKind, Sent,
};

/// A bounded port keeps FIFO order and reports `Full` with the message back.
pub fn bounded_fifo_and_full<B: Backend>(b: &B) {
    run_case(
        b,
        "bounded_fifo_and_full",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(3)));
            for i in 0..3 {
                check!(p.try_send(port, Message::from_u64(1, i)));
            }
            let err = p
                .try_send(port, Message::from_u64(9, 99))
                .expect_err("4th send into bounded(3)");
            ensure!(
                err.kind() == SendErrorKind::Full,
                "expected Full, got {:?}",
                err.kind()
            );
            ensure!(
                err.into_message().as_u64() == Some(99),
                "the failed send must return the message"
            );
            for i in 0..3 {
                let m = check!(p.receive(port));
                ensure!(
                    m.as_u64() == Some(i),
                    "FIFO: expected {i}, got {:?}",
                    m.as_u64()
                );
            }
            ensure!(
                p.try_receive(port) == Err(ReceiveError::Empty),
                "queue should be empty"
            );
            Ok(())
        })],
    );
}

/// Zero capacity: with no receiver waiting, a send cannot complete.
pub fn zero_needs_a_receiver<B: Backend>(b: &B) {
    run_case(
        b,
        "zero_needs_a_receiver",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Zero));
            let err = p
                .try_send(port, Message::new(1, b"x"))
                .expect_err("rendezvous without receiver");
            ensure!(
                err.kind() == SendErrorKind::Full,
                "expected Full, got {:?}",
                err.kind()
            );
            let err = p
                .send_timeout(port, Message::new(1, b"y"), Duration::from_millis(20))
                .expect_err("timed");
            ensure!(
                err.kind() == SendErrorKind::TimedOut,
                "expected TimedOut, got {:?}",
                err.kind()
            );
            ensure!(&err.into_message().body[..] == b"y", "message returned");
            ensure!(
                check!(p.port_status(port)).queue_len == 0,
                "nothing buffered"
            );
            Ok(())
        })],
    );
}

/// Unbounded: a sender never waits.
pub fn unbounded_never_full<B: Backend>(b: &B) {
    run_case(
        b,
        "unbounded_never_full",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Unbounded));
            for i in 0..1000 {
                check!(p.try_send(port, Message::from_u64(1, i)));
            }
            ensure!(check!(p.port_status(port)).queue_len == 1000, "all queued");
            for i in 0..1000 {
                ensure!(check!(p.try_receive(port)).as_u64() == Some(i), "FIFO");
            }
            Ok(())
        })],
    );
}

/// Timed receive on an empty queue times out; `try_receive` reports `Empty`.
pub fn receive_timeouts<B: Backend>(b: &B) {
    run_case(
        b,
        "receive_timeouts",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            ensure!(p.try_receive(port) == Err(ReceiveError::Empty), "empty");
            ensure!(
                p.receive_timeout(port, Duration::from_millis(10)) == Err(ReceiveError::TimedOut),
                "timed out"
            );
            Ok(())
        })],
    );
}

/// Full-queue policies: drop newest, drop oldest.
pub fn drop_policies<B: Backend>(b: &B) {
    run_case(
        b,
        "drop_policies",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(2)));
            check!(p.try_send(port, Message::from_u64(1, 1)));
            check!(p.try_send(port, Message::from_u64(1, 2)));
            ensure!(
                check!(p.send_with(port, Message::from_u64(1, 3), OnFull::DropNewest))
                    == Sent::Dropped,
                "dropped"
            );
            ensure!(
                check!(p.send_with(port, Message::from_u64(1, 4), OnFull::DropOldest))
                    == Sent::Displaced,
                "displaced"
            );
            ensure!(
                check!(p.receive(port)).as_u64() == Some(2),
                "1 was displaced"
            );
            ensure!(check!(p.receive(port)).as_u64() == Some(4), "3 was dropped");
            ensure!(
                check!(p.port_status(port)).messages_dropped == 2,
                "two drops counted"
            );
            Ok(())
        })],
    );
}

/// Names: a deallocated name is invalid; a destroyed port's send right is a dead name.
pub fn names_and_dead_names<B: Backend>(b: &B) {
    run_case(
        b,
        "names_and_dead_names",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            let once = check!(p.make_right(port, Disposition::MakeSendOnce));
            ensure!(check!(p.rights(once)).send_once, "send-once right");
            check!(p.deallocate(once));
            ensure!(
                p.rights(once) == Err(IpcError::InvalidName),
                "stale name must be invalid"
            );
            check!(p.make_send(port));
            ensure!(
                check!(p.rights(port)).send == 1 && check!(p.rights(port)).receive,
                "receive + send"
            );
            check!(p.mod_refs(port, RightKind::Receive, -1));
            let r = check!(p.rights(port));
            ensure!(
                r.dead == 1 && !r.receive && r.send == 0,
                "send right became a dead name: {r:?}"
            );
            let err = p
                .send(port, Message::new(1, b""))
                .expect_err("send to dead name");
            ensure!(
                err.kind() == SendErrorKind::DestinationDead,
                "expected DestinationDead, got {:?}",
                err.kind()
            );
            check!(p.deallocate(port));
            ensure!(
                p.rights(port) == Err(IpcError::InvalidName),
                "dead name released"
            );
            Ok(())
        })],
    );
}

/// A failed send leaves the carried rights with the sender.
pub fn failed_send_keeps_rights<B: Backend>(b: &B) {
    run_case(
        b,
        "failed_send_keeps_rights",
        nothing(),
        vec![role(|p: &B::Process| {
            let full = check!(p.port_allocate(Capacity::Bounded(1)));
            check!(p.try_send(full, Message::new(0, b"")));
            let carried = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.make_send(carried));
            let msg = Message::new(1, b"").with_right(carried, Disposition::MoveSend);
            let err = p.try_send(full, msg).expect_err("full");
            ensure!(err.kind() == SendErrorKind::Full, "Full");
            ensure!(
                check!(p.rights(carried)).send == 1,
                "the moved send right is still ours"
            );
            ensure!(
                err.into_message().rights()[0].name == carried,
                "returned message names it"
            );
            Ok(())
        })],
    );
}

/// Select and port sets receive the oldest message among several ports.
pub fn select_and_port_sets<B: Backend>(b: &B) {
    run_case(
        b,
        "select_and_port_sets",
        nothing(),
        vec![role(|p: &B::Process| {
            let a = check!(p.port_allocate(Capacity::Unbounded));
            let c = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.send(c, Message::new(1, b"first")));
            check!(p.send(a, Message::new(2, b"second")));
            let m = check!(p.select(&[a, c]));
            ensure!(
                m.id == 1 && m.received_on() == Some(c),
                "oldest first, from c: {m:?}"
            );
            let set = check!(p.port_set_allocate());
            check!(p.port_set_insert(set, a));
            check!(p.port_set_insert(set, c));
            let m = check!(p.receive(set));
            ensure!(
                m.id == 2 && m.received_on() == Some(a),
                "from the set's member a: {m:?}"
            );
            ensure!(p.try_receive(set) == Err(ReceiveError::Empty), "set empty");
            Ok(())
        })],
    );
}

/// A no-senders notification arrives when the last send right goes away.
pub fn no_senders_notification<B: Backend>(b: &B) {
    run_case(
        b,
        "no_senders_notification",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Unbounded));
            let notify = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.make_send(port));
            check!(p.request_notification(port, NotifyKind::NoSenders, notify));
            ensure!(p.try_receive(notify) == Err(ReceiveError::Empty), "not yet");
            check!(p.deallocate(port));
            let n = check!(p.receive_timeout(notify, Duration::from_secs(5)));
            ensure!(
                n.notification() == Some(Notification::NoSenders(port)),
                "got {:?}",
                n.notification()
            );
            Ok(())
        })],
    );
}

/// A receive right about to be destroyed under a port-destroyed request
/// arrives in a notification instead, with its queued messages, and its
/// senders' rights still send to it.
pub fn port_destroyed_notification<B: Backend>(b: &B) {
    run_case(
        b,
        "port_destroyed_notification",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(4)));
            let notify = check!(p.port_allocate(Capacity::Unbounded));
            let send = check!(p.make_send(port));
            check!(p.send(send, Message::new(1, b"queued")));
            check!(p.request_notification(port, NotifyKind::PortDestroyed, notify));
            ensure!(p.try_receive(notify) == Err(ReceiveError::Empty), "not yet");
            check!(p.mod_refs(port, RightKind::Receive, -1));
            let n = check!(p.receive_timeout(notify, Duration::from_secs(5)));
            let Some(Notification::PortDestroyed(again)) = n.notification() else {
                return Err(format!("got {:?}", n.notification()));
            };
            ensure!(check!(p.rights(again)).receive, "a receive right came");
            let m = check!(p.try_receive(again));
            ensure!(&m.body[..] == b"queued", "got {m:?}");
            check!(p.send(send, Message::new(2, b"after")));
            let m = check!(p.receive_timeout(again, Duration::from_secs(5)));
            ensure!(&m.body[..] == b"after", "got {m:?}");
            Ok(())
        })],
    );
}

/// Every name-taking operation refuses a name that breaks the
/// [name rule](crate::name_rules) with `InvalidName`, and a name of the
/// longest allowed length works.
pub fn mailbox_and_service_names<B: Backend>(b: &B) {
    let longest = {
        let mut n = format!("{}-", b.mailbox_prefix());
        while n.len() < crate::name_rules::MAX_NAME_LEN {
            n.push('n');
        }
        n
    };
    run_case(
        b,
        "mailbox_and_service_names",
        nothing(),
        vec![role(move |p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            let too_long = "x".repeat(crate::name_rules::MAX_NAME_LEN + 1);
            let bad: [&str; 9] = [
                "",
                ".",
                "..",
                "a/b",
                "two\nlines",
                "nul\0",
                "cr\r",
                "\u{7f}",
                &too_long,
            ];
            for name in bad {
                let config = crate::MailboxConfig::new(Capacity::Bounded(1));
                let invalid = Err(IpcError::InvalidName);
                ensure!(
                    p.mailbox_create(name, config).map(drop) == invalid,
                    "mailbox_create({name:?})"
                );
                ensure!(
                    p.mailbox_open(name).map(drop) == invalid,
                    "mailbox_open({name:?})"
                );
                ensure!(p.register(name, port) == invalid, "register({name:?})");
                ensure!(p.unregister(name) == invalid, "unregister({name:?})");
                ensure!(p.look_up(name).map(drop) == invalid, "look_up({name:?})");
            }
            let mb =
                check!(p.mailbox_create(&longest, crate::MailboxConfig::new(Capacity::Bounded(1))));
            let opened = check!(p.mailbox_open(&longest));
            check!(p.send(mb, Message::new(3, b"long name")));
            ensure!(
                check!(p.receive(opened)).id == 3,
                "through the long-named mailbox"
            );
            check!(p.mailbox_destroy(mb));
            Ok(())
        })],
    );
}

/// A send-possible notification: at once when the port has room, after a
/// receive makes room when it is full, a dead-name notification when the
/// port dies first, and none once the name is released.
pub fn send_possible_notification<B: Backend>(b: &B) {
    run_case(
        b,
        "send_possible_notification",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(1)));
            let notify = check!(p.port_allocate(Capacity::Unbounded));
            check!(p.make_send(port));
            // Room now: notified at once.
            check!(p.request_send_possible(port, notify));
            let n = check!(p.try_receive(notify));
            ensure!(
                n.notification() == Some(Notification::SendPossible(port)),
                "at once: got {:?}",
                n.notification()
            );
            // Full: not before a receive makes room, then exactly once.
            check!(p.try_send(port, Message::from_u64(1, 1)));
            check!(p.request_send_possible(port, notify));
            ensure!(
                p.try_receive(notify) == Err(ReceiveError::Empty),
                "no room yet"
            );
            ensure!(
                check!(p.receive(port)).as_u64() == Some(1),
                "the queued message"
            );
            let n = check!(p.receive_timeout(notify, Duration::from_secs(5)));
            ensure!(
                n.notification() == Some(Notification::SendPossible(port)),
                "after the receive: got {:?}",
                n.notification()
            );
            check!(p.try_send(port, Message::from_u64(1, 2)));
            check!(p.receive(port));
            ensure!(
                p.try_receive(notify) == Err(ReceiveError::Empty),
                "one-shot"
            );
            // The port dies while full: a dead-name notification instead.
            let doomed = check!(p.port_allocate(Capacity::Bounded(1)));
            check!(p.make_send(doomed));
            check!(p.try_send(doomed, Message::from_u64(1, 3)));
            check!(p.request_send_possible(doomed, notify));
            check!(p.mod_refs(doomed, RightKind::Receive, -1));
            let n = check!(p.receive_timeout(notify, Duration::from_secs(5)));
            ensure!(
                n.notification() == Some(Notification::DeadName(doomed)),
                "after the death: got {:?}",
                n.notification()
            );
            // A released name's request lapses: destroying the name kills
            // the port, but the request went with the name, so nothing comes.
            check!(p.try_send(port, Message::from_u64(1, 4)));
            check!(p.request_send_possible(port, notify));
            check!(p.destroy(port));
            ensure!(p.try_receive(notify) == Err(ReceiveError::Empty), "lapsed");
            Ok(())
        })],
    );
}

/// `peek` shows the message a receive would take (id, body, sender, the
/// sequence number it will get) and leaves it, with its rights, in place.
pub fn peek_leaves_the_message<B: Backend>(b: &B) {
    run_case(
        b,
        "peek_leaves_the_message",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(4)));
            let other = check!(p.port_allocate(Capacity::Unbounded));
            ensure!(p.peek(port) == Err(ReceiveError::Empty), "empty");
            let carried = Message::new(5, b"with a right").with_right(other, Disposition::MakeSend);
            check!(p.send(port, carried));
            check!(p.send(port, Message::new(6, b"plain")));
            let sends = check!(p.port_status(other)).send_rights;
            for _ in 0..2 {
                let head = check!(p.peek(port));
                ensure!(
                    head.id == 5 && &head.body[..] == b"with a right",
                    "head: {head:?}"
                );
                ensure!(!head.carries_rights(), "a peek moves no right");
                ensure!(head.sender() == Some(p.pid()), "sender {:?}", head.sender());
            }
            ensure!(check!(p.port_status(port)).queue_len == 2, "nothing taken");
            ensure!(
                check!(p.port_status(other)).send_rights == sends,
                "right still queued"
            );
            let seqno = check!(p.peek(port)).trailer().map(|t| t.seqno);
            let got = check!(p.receive(port));
            ensure!(
                got.id == 5 && got.rights().len() == 1,
                "received with its right"
            );
            ensure!(got.trailer().map(|t| t.seqno) == seqno, "the peeked seqno");
            ensure!(check!(p.peek(port)).id == 6, "next head");
            Ok(())
        })],
    );
}

/// Selective receive takes the oldest matching message, from the middle of
/// the queue if need be, and leaves the others in order; with nothing that
/// matches it is `Empty` (or times out) even though messages are queued.
pub fn selective_receive<B: Backend>(b: &B) {
    run_case(
        b,
        "selective_receive",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(8)));
            for (id, body) in [
                (1, &b"a1"[..]),
                (2, b"b1"),
                (1, b"a2"),
                (3, b"c1"),
                (2, b"b2"),
            ] {
                check!(p.send(port, Message::new(id, body)));
            }
            let m = check!(p.receive_matching(port, &Filter::any().id(2)));
            ensure!(&m.body[..] == b"b1", "oldest id 2: {:?}", m.body);
            let m = check!(p.try_receive_matching(port, &Filter::any().body_prefix(b"c")));
            ensure!(m.id == 3, "by body prefix: {}", m.id);
            let m = check!(p.try_receive_matching(port, &Filter::any().sender(p.pid()).ids(2..=9)));
            ensure!(&m.body[..] == b"b2", "by sender and range: {:?}", m.body);
            ensure!(
                p.try_receive_matching(port, &Filter::any().id(2)) == Err(ReceiveError::Empty),
                "no id 2 left"
            );
            ensure!(
                p.receive_matching_with(
                    port,
                    &Filter::any().id(7),
                    crate::Wait::For(Duration::from_millis(20))
                ) == Err(ReceiveError::TimedOut),
                "a timed selective receive times out"
            );
            for want in [&b"a1"[..], b"a2"] {
                let m = check!(p.receive(port));
                ensure!(&m.body[..] == want, "left in order: {:?}", m.body);
            }
            Ok(())
        })],
    );
}

/// Close-but-drain: after `close`, sends fail with `Closed` and their
/// message back, receives take what was queued, then see `Closed` (also a
/// receive that would wait), never `Empty`.
pub fn close_but_drain<B: Backend>(b: &B) {
    run_case(
        b,
        "close_but_drain",
        nothing(),
        vec![role(|p: &B::Process| {
            let port = check!(p.port_allocate(Capacity::Bounded(4)));
            check!(p.send(port, Message::from_u64(1, 1)));
            check!(p.send(port, Message::from_u64(1, 2)));
            check!(p.close(port));
            check!(p.close(port));
            let err = p
                .try_send(port, Message::from_u64(1, 3))
                .expect_err("a send to a closed port");
            ensure!(err.kind() == SendErrorKind::Closed, "got {:?}", err.kind());
            ensure!(
                err.into_message().as_u64() == Some(3),
                "the message comes back"
            );
            for i in 1..=2 {
                ensure!(check!(p.receive(port)).as_u64() == Some(i), "drains {i}");
            }
            ensure!(
                p.try_receive(port) == Err(ReceiveError::Closed),
                "closed, not empty"
            );
            ensure!(
                p.receive_timeout(port, Duration::from_secs(5)) == Err(ReceiveError::Closed),
                "a waiting receive sees closed at once"
            );
            Ok(())
        })],
    );
}

/// Priority select takes from the first source in the order given that has
/// a message, whatever the ages; with none ready it waits (or times out).
pub fn priority_select<B: Backend>(b: &B) {
    run_case(
        b,
        "priority_select",
        nothing(),
        vec![role(|p: &B::Process| {
            let data = check!(p.port_allocate(Capacity::Bounded(4)));
            let control = check!(p.port_allocate(Capacity::Bounded(4)));
            ensure!(
                p.try_select_first(&[control, data]) == Err(ReceiveError::Empty),
                "nothing ready"
            );
            ensure!(
                p.select_first_with(
                    &[control, data],
                    crate::Wait::For(Duration::from_millis(20))
                ) == Err(ReceiveError::TimedOut),
                "times out"
            );
            check!(p.send(data, Message::from_u64(1, 1)));
            check!(p.send(data, Message::from_u64(1, 2)));
            check!(p.send(control, Message::from_u64(2, 9)));
            let m = check!(p.select_first(&[control, data]));
            ensure!(
                m.id == 2 && m.received_on() == Some(control),
                "the first source first: id {} on {:?}",
                m.id,
                m.received_on()
            );
            for i in 1..=2 {
                let m = check!(p.try_select_first(&[control, data]));
                ensure!(
                    m.as_u64() == Some(i),
                    "then the next source, in order: {:?}",
                    m.as_u64()
                );
            }
            check!(p.send(control, Message::from_u64(2, 10)));
            check!(p.send(data, Message::from_u64(1, 3)));
            let m = check!(p.try_select_first(&[data, control]));
            ensure!(
                m.as_u64() == Some(3),
                "the order given decides: {:?}",
                m.as_u64()
            );
            ensure!(
                check!(p.try_receive(control)).as_u64() == Some(10),
                "left alone"
            );
            Ok(())
        })],
    );
}
