//! Cases across processes: mailboxes, rendezvous, direct addressing, rights in
//! messages, RPC, ownership.

use std::time::Duration;

use super::{role, run_case, system_mailbox, Backend};
use crate::name::Access;
use crate::{
    CallError, Capacity, Disposition, Ipc, MailboxConfig, Message, Pid, ReceiveError, Wait,
};

/// Producer and consumer through a bounded system mailbox: all messages, in order.
pub fn mailbox_producer_consumer<B: Backend>(b: &B) {
    let name = format!("{}-pc", b.mailbox_prefix());
    let (n1, n2, n3) = (name.clone(), name.clone(), name);
    run_case(
        b,
        "mailbox_producer_consumer",
        role(move |p: &B::Process| {
            p.mailbox_create(&n1, system_mailbox(Capacity::Bounded(2)))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&n2));
                for i in 0..20 {
                    check!(p.send(mb, Message::from_u64(1, i)));
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&n3));
                for i in 0..20 {
                    let m = check!(p.receive(mb));
                    ensure!(m.as_u64() == Some(i), "expected {i}, got {:?}", m.as_u64());
                }
                Ok(())
            }),
        ],
    );
}

/// Several receivers on one mailbox: each message is delivered exactly once.
pub fn mailbox_each_message_once<B: Backend>(b: &B) {
    let jobs = format!("{}-jobs", b.mailbox_prefix());
    let done = format!("{}-done", b.mailbox_prefix());
    let (j0, d0) = (jobs.clone(), done.clone());
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&j0, system_mailbox(Capacity::Bounded(4))));
        check!(p.mailbox_create(&d0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    const N: u64 = 30;
    let producer = {
        let jobs = jobs.clone();
        role(move |p: &B::Process| {
            let mb = check!(p.mailbox_open(&jobs));
            for i in 0..N {
                check!(p.send(mb, Message::from_u64(1, i)));
            }
            for _ in 0..2 {
                check!(p.send(mb, Message::from_u64(2, 0))); // stop
            }
            Ok(())
        })
    };
    let worker = |jobs: String, done: String| {
        role(move |p: &B::Process| {
            let mb = check!(p.mailbox_open(&jobs));
            let out = check!(p.mailbox_open(&done));
            loop {
                let m = check!(p.receive(mb));
                if m.id == 2 {
                    return p
                        .send(out, Message::from_u64(2, 0))
                        .map_err(|e| format!("{e}"));
                }
                check!(p.send(out, m));
            }
        })
    };
    let checker = {
        let done = done.clone();
        role(move |p: &B::Process| {
            let out = check!(p.mailbox_open(&done));
            let mut seen = vec![0u32; N as usize];
            let mut stops = 0;
            while stops < 2 {
                let m = check!(p.receive(out));
                match m.id {
                    2 => stops += 1,
                    _ => seen[m.as_u64().unwrap_or(u64::MAX).min(N - 1) as usize] += 1,
                }
            }
            ensure!(
                seen.iter().all(|&c| c == 1),
                "each job exactly once: {seen:?}"
            );
            Ok(())
        })
    };
    run_case(
        b,
        "mailbox_each_message_once",
        setup,
        vec![
            producer,
            worker(jobs.clone(), done.clone()),
            worker(jobs, done),
            checker,
        ],
    );
}

/// Zero capacity across processes: the sender returns only after the receiver took the message.
pub fn zero_capacity_rendezvous<B: Backend>(b: &B) {
    let zero = format!("{}-zero", b.mailbox_prefix());
    let acks = format!("{}-acks", b.mailbox_prefix());
    let (z0, a0, z1, a1, z2, a2) = (
        zero.clone(),
        acks.clone(),
        zero.clone(),
        acks.clone(),
        zero,
        acks,
    );
    run_case(
        b,
        "zero_capacity_rendezvous",
        role(move |p: &B::Process| {
            check!(p.mailbox_create(&z0, system_mailbox(Capacity::Zero)));
            check!(p.mailbox_create(&a0, system_mailbox(Capacity::Unbounded)));
            Ok(())
        }),
        vec![
            role(move |p: &B::Process| {
                let z = check!(p.mailbox_open(&z1));
                let a = check!(p.mailbox_open(&a1));
                for i in 0..5 {
                    check!(p.send(z, Message::from_u64(1, i)));
                    check!(p.send(a, Message::from_u64(2, i))); // "my send of i returned"
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let z = check!(p.mailbox_open(&z2));
                let a = check!(p.mailbox_open(&a2));
                for i in 0..5 {
                    // The sender cannot have finished sending i before we take it.
                    ensure!(
                        p.try_receive(a) == Err(ReceiveError::Empty),
                        "sender returned before rendezvous {i}"
                    );
                    ensure!(check!(p.receive(z)).as_u64() == Some(i), "message {i}");
                    ensure!(check!(p.receive(a)).as_u64() == Some(i), "ack {i}");
                }
                Ok(())
            }),
        ],
    );
}

/// Direct addressing: receive_from_any names the sender; receive_from sees end of stream.
pub fn direct_addressing_and_end_of_stream<B: Backend>(b: &B) {
    let pids = format!("{}-pids", b.mailbox_prefix());
    let (p0, p1, p2) = (pids.clone(), pids.clone(), pids);
    run_case(
        b,
        "direct_addressing_and_end_of_stream",
        role(move |p: &B::Process| {
            p.mailbox_create(&p0, system_mailbox(Capacity::Unbounded))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&p1));
                let receiver = Pid(check!(p.receive(mb)).as_u64().unwrap_or(0) as u32);
                for i in 0..3 {
                    check!(p.send_to(receiver, Message::from_u64(1, i)));
                }
                Ok(()) // exiting closes the link: the receiver sees end of stream
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&p2));
                check!(p.send(mb, Message::from_u64(0, u64::from(p.pid().0))));
                let first = check!(p.receive_from_any());
                let sender = check!(first.sender().ok_or("no sender"));
                ensure!(first.as_u64() == Some(0), "first message");
                for i in 1..3 {
                    ensure!(
                        check!(p.receive_from(sender)).as_u64() == Some(i),
                        "message {i}"
                    );
                }
                let end = p.receive_from_with(sender, Wait::For(Duration::from_secs(10)));
                ensure!(
                    end == Err(ReceiveError::SourceDead),
                    "end of stream, got {end:?}"
                );
                Ok(())
            }),
        ],
    );
}

/// Rights travel in messages: a send right handed over lets the peer send; RPC works.
pub fn rights_transfer_and_rpc<B: Backend>(b: &B) {
    let svc = format!("{}-svc", b.mailbox_prefix());
    let (s0, s1, s2) = (svc.clone(), svc.clone(), svc);
    run_case(
        b,
        "rights_transfer_and_rpc",
        role(move |p: &B::Process| {
            p.mailbox_create(&s0, system_mailbox(Capacity::Unbounded))
                .map(drop)
                .map_err(|e| format!("{e}"))
        }),
        vec![
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&s1));
                let port = check!(p.port_allocate(Capacity::Bounded(4)));
                check!(p.send(
                    mb,
                    Message::new(1, b"").with_right(port, Disposition::MakeSend)
                ));
                let request = check!(p.receive(port));
                ensure!(&request.body[..] == b"ping", "request body");
                check!(p.reply(&request, Message::new(2, b"pong")));
                let dropped = check!(p.receive(port));
                if let Some(r) = dropped.reply() {
                    check!(p.deallocate(r.name)); // refuse to answer
                }
                Ok(())
            }),
            role(move |p: &B::Process| {
                let mb = check!(p.mailbox_open(&s2));
                let m = check!(p.receive(mb));
                let server = check!(m.rights().first().ok_or("no right")).name;
                ensure!(check!(p.rights(server)).send == 1, "received a send right");
                let reply = check!(p.call(server, Message::new(1, b"ping")));
                ensure!(&reply.body[..] == b"pong", "reply body");
                let refused = p.call(server, Message::new(1, b"again"));
                ensure!(
                    refused == Err(CallError::NoReply),
                    "dropped reply right => NoReply, got {refused:?}"
                );
                Ok(())
            }),
        ],
    );
}

/// A mailbox owned by a task dies with it; a receiver waiting on it gets `SourceDead`.
pub fn owned_mailbox_dies_with_owner<B: Backend>(b: &B) {
    let to_user = format!("{}-to-user", b.mailbox_prefix());
    let to_owner = format!("{}-to-owner", b.mailbox_prefix());
    let owned = format!("{}-owned", b.mailbox_prefix());
    let (u0, w0) = (to_user.clone(), to_owner.clone());
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&u0, system_mailbox(Capacity::Unbounded)));
        check!(p.mailbox_create(&w0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    let owner = {
        let (to_user, to_owner, owned) = (to_user.clone(), to_owner.clone(), owned.clone());
        role(move |p: &B::Process| {
            let tell = check!(p.mailbox_open(&to_user));
            let hear = check!(p.mailbox_open(&to_owner));
            check!(p.mailbox_create(
                &owned,
                MailboxConfig::new(Capacity::Bounded(1)).default_access(Access::ALL)
            ));
            check!(p.send(tell, Message::new(1, b"created")));
            ensure!(check!(p.receive(hear)).id == 2, "user opened it");
            Ok(()) // exit: the mailbox is destroyed
        })
    };
    let user = role(move |p: &B::Process| {
        let hear = check!(p.mailbox_open(&to_user));
        let tell = check!(p.mailbox_open(&to_owner));
        ensure!(check!(p.receive(hear)).id == 1, "owner created it");
        let mb = check!(p.mailbox_open(&owned));
        check!(p.send(tell, Message::new(2, b"opened")));
        let r = p.receive_with(mb, Wait::For(Duration::from_secs(10)));
        ensure!(
            r == Err(ReceiveError::SourceDead),
            "owner exit must end the mailbox: {r:?}"
        );
        Ok(())
    });
    run_case(b, "owned_mailbox_dies_with_owner", setup, vec![owner, user]);
}

/// A sender blocked in a select over its own ports and a notify port wakes
/// when a full mailbox it asked about gets room (the receiver takes a
/// message), and its send then succeeds: no polling.
pub fn select_wakes_on_send_possible<B: Backend>(b: &B) {
    let full = format!("{}-sp-full", b.mailbox_prefix());
    let ready = format!("{}-sp-ready", b.mailbox_prefix());
    let (f0, r0) = (full.clone(), ready.clone());
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&f0, system_mailbox(Capacity::Bounded(1))));
        check!(p.mailbox_create(&r0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    let (f1, r1) = (full.clone(), ready.clone());
    let sender = role(move |p: &B::Process| {
        let out = check!(p.mailbox_open(&f1));
        let tell = check!(p.mailbox_open(&r1));
        let inbox = check!(p.port_allocate(Capacity::Unbounded));
        let notify = check!(p.port_allocate(Capacity::Unbounded));
        check!(p.send(out, Message::from_u64(1, 1)));
        let second = p.try_send(out, Message::from_u64(1, 2));
        ensure!(
            second.as_ref().map_err(|e| e.kind()) == Err(crate::SendErrorKind::Full),
            "bounded(1) mailbox full: {second:?}"
        );
        check!(p.request_send_possible(out, notify));
        check!(p.send(tell, Message::new(2, b"ready")));
        let woke = check!(p.select_timeout(&[inbox, notify], Duration::from_secs(10)));
        ensure!(
            woke.received_on() == Some(notify)
                && woke.notification() == Some(crate::Notification::SendPossible(out)),
            "woken by {:?} on {:?}",
            woke.notification(),
            woke.received_on()
        );
        check!(p.try_send(out, Message::from_u64(1, 2)));
        Ok(())
    });
    let receiver = role(move |p: &B::Process| {
        let from = check!(p.mailbox_open(&full));
        let hear = check!(p.mailbox_open(&ready));
        ensure!(check!(p.receive(hear)).id == 2, "the sender asked");
        for i in 1..=2 {
            let m = check!(p.receive_timeout(from, Duration::from_secs(10)));
            ensure!(m.as_u64() == Some(i), "message {i}: {:?}", m.as_u64());
        }
        Ok(())
    });
    run_case(
        b,
        "select_wakes_on_send_possible",
        setup,
        vec![sender, receiver],
    );
}

/// A selective receive that waits is completed by the matching message only:
/// the messages sent before it stay queued, in order, for a plain receive.
pub fn selective_receive_waits_for_a_match<B: Backend>(b: &B) {
    let inbox = format!("{}-sel", b.mailbox_prefix());
    let (i0, i1, i2) = (inbox.clone(), inbox.clone(), inbox);
    let setup = role(move |p: &B::Process| {
        check!(p.mailbox_create(&i0, system_mailbox(Capacity::Unbounded)));
        Ok(())
    });
    let receiver = role(move |p: &B::Process| {
        let from = check!(p.mailbox_open(&i1));
        let filter = crate::Filter::any().id(3);
        let m = check!(p.receive_matching_with(from, &filter, Wait::For(Duration::from_secs(10))));
        ensure!(m.id == 3, "the match: {}", m.id);
        for want in [1, 2] {
            let m = check!(p.receive_timeout(from, Duration::from_secs(10)));
            ensure!(m.id == want, "left in order: {} (wanted {want})", m.id);
        }
        Ok(())
    });
    let sender = role(move |p: &B::Process| {
        let to = check!(p.mailbox_open(&i2));
        for id in [1, 2, 3] {
            check!(p.send(to, Message::new(id, b"")));
        }
        Ok(())
    });
    run_case(
        b,
        "selective_receive_waits_for_a_match",
        setup,
        vec![receiver, sender],
    );
}

/// No-senders counts the send rights of every process: a right given to
/// another process through a mailbox keeps the port's senders alive until
/// that process releases it, and then the notification comes.
pub fn no_senders_across_processes<B: Backend>(b: &B) {
    let give = format!("{}-ns-give", b.mailbox_prefix());
    let back = format!("{}-ns-back", b.mailbox_prefix());
    let (g0, k0) = (give.clone(), back.clone());
    let (g1, k1) = (give.clone(), back.clone());
    let (g2, k2) = (give, back);
    run_case(
        b,
        "no_senders_across_processes",
        role(move |p: &B::Process| {
            check!(p.mailbox_create(&g0, system_mailbox(Capacity::Bounded(2))));
            check!(p.mailbox_create(&k0, system_mailbox(Capacity::Bounded(2))));
            Ok(())
        }),
        vec![
            role(move |p: &B::Process| {
                let give = check!(p.mailbox_open(&g1));
                let back = check!(p.mailbox_open(&k1));
                let port = check!(p.port_allocate(Capacity::Bounded(1)));
                let notify = check!(p.port_allocate(Capacity::Unbounded));
                check!(p.send(
                    give,
                    Message::new(1, b"hold this").with_right(port, Disposition::MakeSend)
                ));
                check!(p.request_notification(port, crate::NotifyKind::NoSenders, notify));
                let holding = check!(p.receive(back));
                ensure!(
                    holding.id == 2,
                    "expected the holder's word, got {holding:?}"
                );
                ensure!(
                    p.try_receive(notify) == Err(ReceiveError::Empty),
                    "no-senders while another process holds a send right"
                );
                check!(p.send(give, Message::new(3, b"let go")));
                let n = check!(p.receive_timeout(notify, Duration::from_secs(10)));
                ensure!(
                    n.notification() == Some(crate::Notification::NoSenders(port)),
                    "got {n:?}"
                );
                Ok(())
            }),
            role(move |p: &B::Process| {
                let give = check!(p.mailbox_open(&g2));
                let back = check!(p.mailbox_open(&k2));
                let m = check!(p.receive(give));
                let right = m.rights().first().map(|r| r.name);
                let Some(right) = right else {
                    return Err(format!("no right in {m:?}"));
                };
                check!(p.send(back, Message::new(2, b"holding")));
                let cue = check!(p.receive(give));
                ensure!(cue.id == 3, "expected the cue, got {cue:?}");
                check!(p.deallocate(right));
                Ok(())
            }),
        ],
    );
}

/// A mailbox's access list: a process not on it cannot open the mailbox; once
/// granted send access it sends but cannot receive.
pub fn mailbox_grants<B: Backend>(b: &B) {
    let listed = format!("{}-acl", b.mailbox_prefix());
    let to_a = format!("{}-acl-a", b.mailbox_prefix());
    let to_b = format!("{}-acl-b", b.mailbox_prefix());
    let (a0, b0) = (to_a.clone(), to_b.clone());
    let (l1, a1, b1) = (listed.clone(), to_a.clone(), to_b.clone());
    let (l2, a2, b2) = (listed, to_a, to_b);
    run_case(
        b,
        "mailbox_grants",
        role(move |p: &B::Process| {
            check!(p.mailbox_create(&a0, system_mailbox(Capacity::Bounded(2))));
            check!(p.mailbox_create(&b0, system_mailbox(Capacity::Bounded(2))));
            Ok(())
        }),
        vec![
            role(move |p: &B::Process| {
                let to_a = check!(p.mailbox_open(&a1));
                let to_b = check!(p.mailbox_open(&b1));
                // Nobody but the owner by default; the list is not empty.
                let config = MailboxConfig::new(Capacity::Bounded(2))
                    .default_access(Access::NONE)
                    .grant(Pid(1), Access::NONE);
                let mb = check!(p.mailbox_create(&l1, config));
                check!(p.send(to_b, Message::new(1, b"made")));
                let asked = check!(p.receive(to_a));
                let Some(pid) = asked.as_u64() else {
                    return Err(format!("expected a pid, got {asked:?}"));
                };
                check!(p.mailbox_grant(mb, Pid(pid as u32), Access::SEND));
                check!(p.send(to_b, Message::new(3, b"granted")));
                let m = check!(p.receive_timeout(mb, Duration::from_secs(10)));
                ensure!(&m.body[..] == b"through the list", "got {m:?}");
                // The other side is done before the mailbox goes.
                let done = check!(p.receive(to_a));
                ensure!(done.id == 4, "got {done:?}");
                Ok(())
            }),
            role(move |p: &B::Process| {
                let to_a = check!(p.mailbox_open(&a2));
                let to_b = check!(p.mailbox_open(&b2));
                let made = check!(p.receive(to_b));
                ensure!(made.id == 1, "got {made:?}");
                ensure!(
                    p.mailbox_open(&l2) == Err(crate::IpcError::NoPermission),
                    "opened a mailbox whose list does not name this process"
                );
                check!(p.send(to_a, Message::from_u64(2, u64::from(p.pid().0))));
                let granted = check!(p.receive(to_b));
                ensure!(granted.id == 3, "got {granted:?}");
                let mb = check!(p.mailbox_open(&l2));
                ensure!(
                    check!(p.rights(mb)).mailbox == Some(Access::SEND),
                    "send access only"
                );
                check!(p.send(mb, Message::new(5, b"through the list")));
                ensure!(
                    p.try_receive(mb) == Err(ReceiveError::NoPermission),
                    "received without receive access"
                );
                check!(p.send(to_a, Message::new(4, b"done")));
                Ok(())
            }),
        ],
    );
}
