//! Cross-cutting concurrency tests on real threads: select, port sets, RPC
//! under load, direct addressing, timeouts racing with deliveries, and
//! destruction (of a mailbox, of a server) while many threads are blocked.
//!
//! Sleeps never decide an outcome here: a test waits (with a bounded deadline)
//! until `port_status` shows the threads it expects to be blocked, then acts.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::introspect::TaskRights;
use mkipc_kernel::name::Access;
use mkipc_kernel::*;

mod common;
use common::*;

/// One `Task` used by several threads at once (it is `Send + Sync`).
#[test]
fn smoke() {
    let k = Kernel::new();
    let t = k.spawn_task();
    let port = t.port_allocate(Capacity::Bounded(2)).unwrap();
    thread::scope(|s| {
        for i in 0..4u32 {
            let t = &t;
            s.spawn(move || {
                for j in 0..250 {
                    t.send(port, Message::from_u64(i, j)).unwrap();
                }
            });
        }
        let mut next = [0u64; 4];
        for _ in 0..1000 {
            let m = t.receive(port).unwrap();
            assert_eq!(m.as_u64(), Some(next[m.id as usize]));
            next[m.id as usize] += 1;
        }
    });
    assert_clean(&k);
    drop(t);
    assert_empty(&k);
}

/// Select over ports of all three capacity models fed by concurrent
/// producers: each message arrives once, tagged with the port it came from,
/// in per-port order.
#[test]
fn select_over_ports_of_every_capacity() {
    const PER_PORT: u64 = 500;
    let k = Kernel::new();
    let rx = k.spawn_task();
    let caps = [Capacity::Zero, Capacity::Bounded(2), Capacity::Unbounded];
    let ports: Vec<PortName> = caps.iter().map(|&c| rx.port_allocate(c).unwrap()).collect();
    let producers: Vec<Task> = caps.iter().map(|_| k.spawn_task()).collect();
    thread::scope(|s| {
        for (i, p) in producers.iter().enumerate() {
            rx.register(&format!("p{i}"), ports[i]).unwrap();
            s.spawn(move || {
                let dest = p.look_up(&format!("p{i}")).unwrap();
                for j in 0..PER_PORT {
                    p.send(dest, Message::from_u64(i as u32, j)).unwrap();
                }
            });
        }
        let mut next = [0u64; 3];
        for _ in 0..3 * PER_PORT {
            let m = rx.select(&ports).unwrap();
            let i = m.id as usize;
            assert_eq!(m.received_on(), Some(ports[i]), "wrong port in trailer");
            assert_eq!(m.as_u64(), Some(next[i]));
            next[i] += 1;
        }
        assert_eq!(next, [PER_PORT; 3]);
    });
    assert_eq!(
        rx.select_with(&ports, Wait::For(Duration::from_millis(10)))
            .unwrap_err(),
        ReceiveError::TimedOut
    );
    assert_clean(&k);
    drop((rx, producers));
    assert_empty(&k);
}

/// A blocked select is registered on every port, wakes on the first message
/// to any of them, and then is unregistered from all.
#[test]
fn blocked_select_wakes_on_any_port_and_unregisters() {
    let k = Kernel::new();
    let rx = k.spawn_task();
    let a = rx.port_allocate(Capacity::Bounded(4)).unwrap();
    let b = rx.port_allocate(Capacity::Zero).unwrap();
    thread::scope(|s| {
        let h = s.spawn(|| rx.select(&[a, b]).unwrap());
        wait_until("the select is blocked on both ports", || {
            rx.port_status(a).unwrap().blocked_receivers == 1
                && rx.port_status(b).unwrap().blocked_receivers == 1
        });
        rx.send(b, Message::new(5, b"to b")).unwrap();
        let m = h.join().unwrap();
        assert_eq!((m.id, m.received_on()), (5, Some(b)));
    });
    assert_eq!(rx.port_status(a).unwrap().blocked_receivers, 0);
    assert_eq!(rx.port_status(b).unwrap().blocked_receivers, 0);
    // Oldest first across ports.
    rx.send(a, Message::new(1, b"")).unwrap();
    let c = rx.port_allocate(Capacity::Unbounded).unwrap();
    rx.send(c, Message::new(2, b"")).unwrap();
    rx.send(a, Message::new(3, b"")).unwrap();
    let ids: Vec<u32> = (0..3).map(|_| rx.select(&[c, a]).unwrap().id).collect();
    assert_eq!(ids, [1, 2, 3]);
    assert_clean(&k);
}

/// Two receiver threads on a port set, three producers on its members: every
/// message once, and the trailer names the member it arrived on.
#[test]
fn port_set_under_load() {
    const PER_PORT: u64 = 400;
    let k = Kernel::new();
    let rx = k.spawn_task();
    let set = rx.port_set_allocate().unwrap();
    let members: Vec<PortName> = [Capacity::Zero, Capacity::Bounded(3), Capacity::Unbounded]
        .iter()
        .map(|&c| {
            let p = rx.port_allocate(c).unwrap();
            rx.port_set_insert(set, p).unwrap();
            p
        })
        .collect();
    let producers: Vec<Task> = members.iter().map(|_| k.spawn_task()).collect();
    let seen = Mutex::new(vec![vec![0u8; PER_PORT as usize]; 3]);
    let received = AtomicUsize::new(0);
    thread::scope(|s| {
        let _stop_receivers = OnDrop(|| {
            let _ = rx.destroy(set);
        });
        for (i, p) in producers.iter().enumerate() {
            rx.register(&format!("m{i}"), members[i]).unwrap();
            s.spawn(move || {
                let dest = p.look_up(&format!("m{i}")).unwrap();
                for j in 0..PER_PORT {
                    p.send(dest, Message::from_u64(i as u32, j)).unwrap();
                }
            });
        }
        for _ in 0..2 {
            let (rx, seen, received, members) = (&rx, &seen, &received, &members);
            s.spawn(move || loop {
                // The set is destroyed at the end: that ends the loop.
                let Ok(m) = rx.receive(set) else { break };
                let i = m.id as usize;
                assert_eq!(m.received_on(), Some(members[i]));
                seen.lock().unwrap()[i][m.as_u64().unwrap() as usize] += 1;
                received.fetch_add(1, Ordering::SeqCst);
            });
        }
        wait_until("every message is received", || {
            received.load(Ordering::SeqCst) == 3 * PER_PORT as usize
        });
        wait_until("both receivers wait on the set again", || {
            k.stats().blocked_receivers == 2
        });
        rx.destroy(set).unwrap();
    });
    assert!(seen.into_inner().unwrap().iter().flatten().all(|&n| n == 1));
    assert_clean(&k);
    drop((rx, producers));
    assert_empty(&k);
}

/// Moving a port with queued messages into a set hands them to a receiver
/// already waiting on the set.
#[test]
fn port_set_insert_feeds_a_waiting_receiver() {
    let k = Kernel::new();
    let rx = k.spawn_task();
    let set = rx.port_set_allocate().unwrap();
    let p = rx.port_allocate(Capacity::Unbounded).unwrap();
    rx.send(p, Message::new(8, b"early")).unwrap();
    thread::scope(|s| {
        let h = s.spawn(|| rx.receive(set).unwrap());
        wait_until("the receiver waits on the set", || {
            k.stats().blocked_receivers == 1
        });
        rx.port_set_insert(set, p).unwrap();
        let m = h.join().unwrap();
        assert_eq!((m.id, m.received_on()), (8, Some(p)));
    });
    assert_clean(&k);
}

/// Many clients calling a multi-threaded server: each reply matches its
/// request, and no reply port, right or message is left behind.
#[test]
fn rpc_under_load() {
    const CLIENTS: usize = 4;
    const WORKERS: usize = 3;
    const CALLS: u64 = 300;
    let k = Kernel::new();
    let server = k.spawn_task();
    let port = server.port_allocate(Capacity::Bounded(4)).unwrap();
    server.register("double", port).unwrap();
    let clients: Vec<Task> = (0..CLIENTS).map(|_| k.spawn_task()).collect();
    let served = AtomicUsize::new(0);
    thread::scope(|s| {
        let _stop_workers = OnDrop(|| {
            let _ = server.destroy(port);
        });
        for _ in 0..WORKERS {
            let (server, served) = (&server, &served);
            s.spawn(move || {
                // Ends when the port is destroyed.
                while let Ok(req) = server.receive(port) {
                    let v = req.as_u64().unwrap();
                    server.reply(&req, Message::from_u64(2, v * 2)).unwrap();
                    served.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let client_threads: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, t)| {
                let k = &k;
                s.spawn(move || {
                    let dest = t.look_up("double").unwrap();
                    for j in 0..CALLS {
                        let v = c as u64 * 1_000_000 + j;
                        let r = t.call(dest, Message::from_u64(1, v)).unwrap();
                        assert_eq!((r.id, r.as_u64()), (2, Some(v * 2)));
                    }
                    t.deallocate(dest).unwrap();
                    k.task_rights(t.pid()).unwrap()
                })
            })
            .collect();
        for h in client_threads {
            let rights = h.join().unwrap();
            assert_eq!(rights, TaskRights::default(), "a client kept rights");
        }
        // A worker counts a request after its reply, so only once every
        // worker is back waiting is the count final.
        wait_until("all workers wait", || {
            server.port_status(port).unwrap().blocked_receivers == WORKERS
        });
        assert_eq!(served.load(Ordering::SeqCst), CLIENTS * CALLS as usize);
        let st = server.port_status(port).unwrap();
        assert_eq!((st.send_rights, st.send_once_rights), (1, 0), "{st:?}");
        assert_eq!(k.stats().ports, 1, "reply ports leaked: {:?}", k.stats());
        server.destroy(port).unwrap();
    });
    assert_clean(&k);
    drop((server, clients));
    assert_empty(&k);
}

/// The server exits holding two requests, with one queued and one client
/// blocked sending: the three whose requests reached the server or its
/// queue hear `NoReply`; the blocked one gets `DestinationDead` and its request back.
#[test]
fn rpc_server_exit_wakes_every_client() {
    const CLIENTS: usize = 4;
    let k = Kernel::new();
    let server = k.spawn_task();
    let port = server.port_allocate(Capacity::Bounded(1)).unwrap();
    server.register("svc", port).unwrap();
    let clients: Vec<Task> = (0..CLIENTS).map(|_| k.spawn_task()).collect();
    thread::scope(|s| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(c, t)| {
                s.spawn(move || {
                    let dest = t.look_up("svc").unwrap();
                    t.call(dest, Message::from_u64(1, c as u64))
                })
            })
            .collect();
        let held: Vec<Message> = (0..2).map(|_| server.receive(port).unwrap()).collect();
        wait_until(
            "one request is queued and one client blocked sending",
            || {
                let st = server.port_status(port).unwrap();
                st.queue_len == 1 && st.blocked_senders == 1
            },
        );
        drop(held);
        drop(server);
        let mut no_reply = 0;
        let mut dead = Vec::new();
        for h in handles {
            match h.join().unwrap() {
                Err(CallError::NoReply) => no_reply += 1,
                Err(CallError::Send(e)) if e.kind() == SendErrorKind::DestinationDead => {
                    dead.push(e.into_message().as_u64().unwrap())
                }
                other => panic!("unexpected call outcome {other:?}"),
            }
        }
        assert_eq!((no_reply, dead.len()), (3, 1));
    });
    assert_clean(&k);
    drop(clients);
    assert_empty(&k);
}

/// A mailbox's owner exits while N threads are blocked sending to a full
/// mailbox and M are blocked receiving from an empty one: every one wakes with
/// the "dead" error, every sender with its own message.
#[test]
fn mailbox_owner_exit_wakes_blocked_senders_and_receivers() {
    const N: usize = 4;
    const M: usize = 3;
    for capacity in [Capacity::Zero, Capacity::Bounded(2)] {
        let k = Kernel::new();
        let owner = k.spawn_task();
        let full = owner
            .mailbox_create("full", MailboxConfig::new(capacity))
            .unwrap();
        owner
            .mailbox_create("empty", MailboxConfig::new(capacity))
            .unwrap();
        if let Capacity::Bounded(n) = capacity {
            for _ in 0..n {
                owner.send(full, Message::new(9, b"queued")).unwrap();
            }
        }
        let users: Vec<Task> = (0..N + M).map(|_| k.spawn_task()).collect();
        thread::scope(|s| {
            let senders: Vec<_> = users[..N]
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    s.spawn(move || {
                        let mb = t.mailbox_open("full").unwrap();
                        let err = t.send(mb, Message::from_u64(1, i as u64)).unwrap_err();
                        (err.kind(), err.into_message().as_u64())
                    })
                })
                .collect();
            let receivers: Vec<_> = users[N..]
                .iter()
                .map(|t| {
                    s.spawn(move || {
                        let mb = t.mailbox_open("empty").unwrap();
                        t.receive(mb)
                    })
                })
                .collect();
            wait_until("everyone is blocked", || {
                let s = k.stats();
                s.blocked_senders == N && s.blocked_receivers == M
            });
            drop(owner);
            for (i, h) in senders.into_iter().enumerate() {
                let (kind, body) = h.join().unwrap();
                assert_eq!(kind, SendErrorKind::DestinationDead, "{capacity}");
                assert_eq!(body, Some(i as u64), "{capacity}: wrong message back");
            }
            for h in receivers {
                assert_eq!(h.join().unwrap().unwrap_err(), ReceiveError::SourceDead);
            }
        });
        assert_eq!(k.stats().mailboxes, 0);
        assert_clean(&k);
        drop(users);
        assert_empty(&k);
    }
}

/// Revoking a permission takes effect at once, also for tasks already blocked
/// on the mailbox: a blocked sender whose send permission goes (`NONE`, or
/// receive only) fails with `NoPermission` and gets its message and the rights
/// it carries back; a blocked receiver whose receive permission goes fails with
/// `NoPermission`. A grant that keeps the permission the wait needs leaves it
/// blocked. A new attempt gets the same error.
#[test]
fn mailbox_revoke_fails_blocked_senders_and_receivers() {
    for capacity in [Capacity::Zero, Capacity::Bounded(2)] {
        let k = Kernel::new();
        let owner = k.spawn_task();
        let full = owner
            .mailbox_create("full", MailboxConfig::new(capacity))
            .unwrap();
        let empty = owner
            .mailbox_create("empty", MailboxConfig::new(capacity))
            .unwrap();
        let queued = match capacity {
            Capacity::Bounded(n) => n,
            _ => 0,
        };
        for _ in 0..queued {
            owner.send(full, Message::new(9, b"queued")).unwrap();
        }
        // Senders: revoked to NONE, revoked to receive only, kept (send only).
        // Receivers: revoked to NONE, revoked to send only, kept (receive only).
        let send_grants = [Access::NONE, Access::RECEIVE, Access::SEND];
        let receive_grants = [Access::NONE, Access::SEND, Access::RECEIVE];
        let senders: Vec<Task> = (0..3).map(|_| k.spawn_task()).collect();
        let receivers: Vec<Task> = (0..3).map(|_| k.spawn_task()).collect();
        thread::scope(|s| {
            // On a failed assertion, end every wait so the scope can join.
            let _release = OnDrop(|| {
                if thread::panicking() {
                    let _ = owner.mailbox_destroy(full);
                    let _ = owner.mailbox_destroy(empty);
                }
            });
            let send_handles: Vec<_> = senders
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    s.spawn(move || {
                        let mb = t.mailbox_open("full").unwrap();
                        let carried = t.port_allocate(Capacity::Unbounded).unwrap();
                        t.make_send(carried).unwrap();
                        let msg = Message::from_u64(1, i as u64)
                            .with_right(carried, Disposition::MoveSend);
                        let result = t.send(mb, msg);
                        (result, carried, t.rights(carried).unwrap().send)
                    })
                })
                .collect();
            let receive_handles: Vec<_> = receivers
                .iter()
                .map(|t| {
                    s.spawn(move || {
                        let mb = t.mailbox_open("empty").unwrap();
                        t.receive(mb)
                    })
                })
                .collect();
            wait_until("everyone is blocked", || {
                let s = k.stats();
                s.blocked_senders == 3 && s.blocked_receivers == 3
            });
            for (t, a) in senders.iter().zip(send_grants) {
                owner.mailbox_grant(full, t.pid(), a).unwrap();
            }
            for (t, a) in receivers.iter().zip(receive_grants) {
                owner.mailbox_grant(empty, t.pid(), a).unwrap();
            }
            wait_until("the revoked waits have failed", || {
                let s = k.stats();
                s.blocked_senders == 1 && s.blocked_receivers == 1
            });
            let mut send_handles = send_handles.into_iter();
            for i in 0..2 {
                let (result, carried, send_refs) = send_handles.next().unwrap().join().unwrap();
                let err = result.unwrap_err();
                assert_eq!(err.kind(), SendErrorKind::NoPermission, "{capacity}");
                assert_eq!(send_refs, 1, "{capacity}: the carried send right is back");
                let back = err.into_message();
                assert_eq!(
                    back.as_u64(),
                    Some(i as u64),
                    "{capacity}: wrong message back"
                );
                assert_eq!(back.rights()[0].name, carried, "{capacity}");
            }
            let mut receive_handles = receive_handles.into_iter();
            for _ in 0..2 {
                let r = receive_handles.next().unwrap().join().unwrap();
                assert_eq!(r.unwrap_err(), ReceiveError::NoPermission, "{capacity}");
            }
            // A new attempt is refused the same way.
            for t in &senders[..2] {
                let mb = t.mailbox_open("full");
                let err = match mb {
                    Ok(mb) => t.try_send(mb, Message::new(2, b"")).unwrap_err().kind(),
                    Err(e) => {
                        assert_eq!(e, IpcError::NoPermission);
                        SendErrorKind::NoPermission
                    }
                };
                assert_eq!(err, SendErrorKind::NoPermission, "{capacity}");
            }
            let mb = receivers[1].mailbox_open("empty").unwrap();
            assert_eq!(
                receivers[1].try_receive(mb).unwrap_err(),
                ReceiveError::NoPermission
            );
            // The kept waits still complete normally.
            for _ in 0..queued {
                assert_eq!(owner.receive(full).unwrap().id, 9);
            }
            let m = owner.receive(full).unwrap();
            assert_eq!((m.as_u64(), m.sender()), (Some(2), Some(senders[2].pid())));
            let (result, _, _) = send_handles.next().unwrap().join().unwrap();
            result.unwrap();
            owner.send(empty, Message::new(7, b"kept")).unwrap();
            let m = receive_handles.next().unwrap().join().unwrap().unwrap();
            assert_eq!(m.id, 7);
            assert_clean(&k);
        });
        // Nothing leaked: each revoked sender holds exactly the right it carried.
        for t in &senders[..2] {
            let r = k.task_rights(t.pid()).unwrap();
            assert_eq!((r.send, r.receive), (1, 1), "{capacity}: {r:?}");
        }
        assert_clean(&k);
        drop(owner);
        drop(senders);
        drop(receivers);
        assert_empty(&k);
    }
}

/// A timed wait whose permission is revoked mid-way fails at once with
/// `NoPermission`, not `TimedOut` at its deadline.
#[test]
fn mailbox_revoke_ends_timed_waits_with_no_permission() {
    let long = Duration::from_secs(60);
    let k = Kernel::new();
    let owner = k.spawn_task();
    let full = owner
        .mailbox_create("full", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    let empty = owner
        .mailbox_create("empty", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    owner.send(full, Message::new(9, b"queued")).unwrap();
    let tx = k.spawn_task();
    let rx = k.spawn_task();
    let start = Instant::now();
    thread::scope(|s| {
        let _release = OnDrop(|| {
            if thread::panicking() {
                let _ = owner.mailbox_destroy(full);
                let _ = owner.mailbox_destroy(empty);
            }
        });
        let sender = s.spawn(|| {
            let mb = tx.mailbox_open("full").unwrap();
            tx.send_timeout(mb, Message::from_u64(1, 42), long)
        });
        let receiver = s.spawn(|| {
            let mb = rx.mailbox_open("empty").unwrap();
            rx.receive_timeout(mb, long)
        });
        wait_until("both are blocked", || {
            let s = k.stats();
            s.blocked_senders == 1 && s.blocked_receivers == 1
        });
        owner.mailbox_grant(full, tx.pid(), Access::NONE).unwrap();
        owner.mailbox_grant(empty, rx.pid(), Access::NONE).unwrap();
        wait_until("the revoked waits have failed", || {
            let s = k.stats();
            s.blocked_senders == 0 && s.blocked_receivers == 0
        });
        let err = sender.join().unwrap().unwrap_err();
        assert_eq!(err.kind(), SendErrorKind::NoPermission);
        assert_eq!(err.into_message().as_u64(), Some(42));
        assert_eq!(
            receiver.join().unwrap().unwrap_err(),
            ReceiveError::NoPermission
        );
    });
    assert!(start.elapsed() < long);
    assert_eq!(owner.receive(full).unwrap().id, 9);
    assert_clean(&k);
}

/// A select over a port, a port set and a mailbox, when only the mailbox's
/// receive permission is revoked: the whole receive fails with `NoPermission`,
/// as a new select over the same names would, and as a select fails when any
/// one of its sources dies; it is unregistered from every source. A grant that
/// keeps receive permission leaves the select waiting on all of them.
#[test]
fn mailbox_revoke_fails_a_select_that_includes_it() {
    let k = Kernel::new();
    let owner = k.spawn_task();
    let mb_owner = owner
        .mailbox_create("mb", MailboxConfig::new(Capacity::Bounded(1)))
        .unwrap();
    let rx = k.spawn_task();
    let port = rx.port_allocate(Capacity::Bounded(1)).unwrap();
    let member = rx.port_allocate(Capacity::Bounded(1)).unwrap();
    let set = rx.port_set_allocate().unwrap();
    rx.port_set_insert(set, member).unwrap();
    let mb = rx.mailbox_open("mb").unwrap();
    let blocked = || {
        wait_until("the select is blocked on every source", || {
            rx.port_status(port).unwrap().blocked_receivers == 1
                && rx.port_status(mb).unwrap().blocked_receivers == 1
                && k.stats().blocked_receivers == 3
        })
    };
    thread::scope(|s| {
        let _release = OnDrop(|| {
            if thread::panicking() {
                let _ = owner.mailbox_destroy(mb_owner);
            }
        });
        // Keeping receive permission (dropping send) changes nothing.
        let h = s.spawn(|| rx.select(&[port, set, mb]));
        blocked();
        owner
            .mailbox_grant(mb_owner, rx.pid(), Access::RECEIVE)
            .unwrap();
        rx.send(member, Message::new(3, b"to the set")).unwrap();
        let m = h.join().unwrap().unwrap();
        assert_eq!((m.id, m.received_on()), (3, Some(member)));
        assert_eq!(k.stats().blocked_receivers, 0);

        // Revoking receive permission fails the select and unregisters it.
        let h = s.spawn(|| rx.select(&[port, set, mb]));
        blocked();
        owner
            .mailbox_grant(mb_owner, rx.pid(), Access::SEND)
            .unwrap();
        wait_until("the select has failed", || k.stats().blocked_receivers == 0);
        assert_eq!(h.join().unwrap().unwrap_err(), ReceiveError::NoPermission);
    });
    assert_eq!(rx.port_status(port).unwrap().blocked_receivers, 0);
    assert_eq!(
        rx.try_select(&[port, set, mb]).unwrap_err(),
        ReceiveError::NoPermission
    );
    // The other sources still work, and nothing is left behind.
    rx.send(port, Message::new(4, b"")).unwrap();
    assert_eq!(rx.select(&[port, set]).unwrap().id, 4);
    assert_clean(&k);
    drop(rx);
    drop(owner);
    assert_empty(&k);
}

/// Many tasks send directly to one: `receive_from_any` names each sender and
/// keeps per-sender order; `receive_from` takes only from the named task and
/// reports end of stream once that task has exited and been drained.
#[test]
fn direct_addressing_many_senders() {
    const SENDERS: usize = 3;
    const PER_SENDER: u64 = 400;
    let k = Kernel::new();
    let rx = k.spawn_task();
    let rx_pid = rx.pid();
    let senders: Vec<Task> = (0..SENDERS).map(|_| k.spawn_task()).collect();
    let pids: Vec<Pid> = senders.iter().map(Ipc::pid).collect();
    thread::scope(|s| {
        for t in senders {
            s.spawn(move || {
                for j in 0..PER_SENDER {
                    t.send_to(rx_pid, Message::from_u64(1, j)).unwrap();
                }
                // `t` exits here: its links close after their messages are received.
            });
        }
        let mut next = [0u64; SENDERS];
        // Half of sender 0's stream by name, then everything from anyone.
        for j in 0..PER_SENDER / 2 {
            let m = rx.receive_from(pids[0]).unwrap();
            assert_eq!((m.as_u64(), m.sender()), (Some(j), Some(pids[0])));
        }
        next[0] = PER_SENDER / 2;
        for _ in 0..SENDERS as u64 * PER_SENDER - PER_SENDER / 2 {
            let m = rx.receive_from_any().unwrap();
            let i = pids.iter().position(|&p| Some(p) == m.sender()).unwrap();
            assert_eq!(m.as_u64(), Some(next[i]), "sender {i} out of order");
            next[i] += 1;
        }
    });
    for &p in &pids {
        assert_eq!(rx.receive_from(p).unwrap_err(), ReceiveError::SourceDead);
    }
    assert_clean(&k);
    drop(rx);
    assert_empty(&k);
}

/// Receive timeouts racing with deliveries: a message delivered just as a
/// wait times out is neither lost nor received twice.
#[test]
fn receive_timeouts_racing_with_sends_lose_nothing() {
    const N: u64 = 3000;
    let k = Kernel::new();
    let rx = k.spawn_task();
    let port = rx.port_allocate(Capacity::Bounded(2)).unwrap();
    rx.register("rx", port).unwrap();
    let tx = k.spawn_task();
    let to_rx = tx.look_up("rx").unwrap();
    let mut timeouts = 0u64;
    thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                tx.send(to_rx, Message::from_u64(1, i)).unwrap();
                if i % 7 == 0 {
                    thread::yield_now();
                }
            }
        });
        let mut next = 0;
        while next < N {
            match rx.receive_timeout(port, Duration::from_micros(20)) {
                Ok(m) => {
                    assert_eq!(m.as_u64(), Some(next));
                    next += 1;
                }
                Err(ReceiveError::TimedOut) => timeouts += 1,
                Err(e) => panic!("{e}"),
            }
        }
    });
    assert_eq!(rx.try_receive(port).unwrap_err(), ReceiveError::Empty);
    assert_eq!(rx.port_status(port).unwrap().seqno, N);
    assert_clean(&k);
    let _ = timeouts; // how many raced depends on scheduling; correctness does not
}

/// Send timeouts racing with receives on a rendezvous port: a send either
/// times out with its message back or is received, never both, never neither.
#[test]
fn send_timeouts_racing_with_receives_lose_nothing() {
    const N: u64 = 2000;
    let k = Kernel::new();
    let rx = k.spawn_task();
    let port = rx.port_allocate(Capacity::Zero).unwrap();
    rx.register("rx", port).unwrap();
    let tx = k.spawn_task();
    let to_rx = tx.look_up("rx").unwrap();
    thread::scope(|s| {
        s.spawn(|| {
            let mut i = 0;
            while i < N {
                match tx.send_timeout(to_rx, Message::from_u64(1, i), Duration::from_micros(20)) {
                    Ok(()) => i += 1,
                    Err(e) => {
                        assert_eq!(e.kind(), SendErrorKind::TimedOut);
                        assert_eq!(e.into_message().as_u64(), Some(i));
                    }
                }
            }
        });
        for i in 0..N {
            assert_eq!(rx.receive(port).unwrap().as_u64(), Some(i));
            if i % 5 == 0 {
                thread::yield_now();
            }
        }
    });
    assert_eq!(
        rx.receive_timeout(port, Duration::from_millis(5))
            .unwrap_err(),
        ReceiveError::TimedOut
    );
    assert_clean(&k);
}

/// `Kernel::exit_task` (what the simulator and the OS backend call to end a
/// task) while one of that task's threads is blocked must wake that thread
/// (with `TaskExited`), not leave it parked until its timeout.
#[test]
fn exit_task_wakes_the_tasks_own_blocked_threads() {
    let k = Kernel::new();
    let t = k.spawn_task();
    let port = t.port_allocate(Capacity::Zero).unwrap();
    thread::scope(|s| {
        let h = s.spawn(|| {
            let t0 = Instant::now();
            let r = t.receive_timeout(port, Duration::from_secs(2));
            (r, t0.elapsed())
        });
        wait_until("the receiver is blocked", || {
            k.stats().blocked_receivers == 1
        });
        k.exit_task(t.pid());
        let (r, waited) = h.join().unwrap();
        assert_eq!(r.unwrap_err(), ReceiveError::TaskExited);
        assert!(
            waited < Duration::from_secs(1),
            "the blocked thread was not woken: it waited {waited:?}"
        );
    });
    drop(t);
    assert_empty(&k);
}

/// A service whose port has died is gone at once (not only at the next `look_up`).
#[test]
fn stale_service_entry_is_purged_when_its_port_dies() {
    let k = Kernel::new();
    let t = k.spawn_task();
    let port = t.port_allocate(Capacity::Unbounded).unwrap();
    t.register("svc", port).unwrap();
    assert_eq!(k.stats().services, 1);
    t.destroy(port).unwrap();
    assert_eq!(k.stats().services, 0, "{:?}", k.stats());
    // (`look_up` does purge it, and reports the service as gone.)
    assert_eq!(t.look_up("svc").unwrap_err(), IpcError::NotFound);
}

/// Regression: `deallocate` looked its name up and released the reference
/// under two acquisitions of the kernel lock; a port that died in between
/// made it fail with `DeadName` and keep the reference (a hang, ~1 in 2,000
/// iterations of a stress test moving receive rights). Whenever the port
/// dies, deallocating the last reference succeeds and frees the name. (The
/// loom model `deallocate_racing_port_death` checks every interleaving.)
#[test]
fn deallocate_racing_port_death_always_releases_the_name() {
    let k = Kernel::new();
    let rx = k.spawn_task();
    let tx = k.spawn_task();
    let barrier = std::sync::Barrier::new(2);
    let (to_destroy, from_main) = std::sync::mpsc::channel::<Option<PortName>>();
    thread::scope(|s| {
        // Owned by the scope's closure: a failed assertion drops it while
        // unwinding, which ends the helper thread instead of hanging.
        let to_destroy = to_destroy;
        let (rx, barrier) = (&rx, &barrier);
        s.spawn(move || {
            while let Ok(Some(port)) = from_main.recv() {
                barrier.wait();
                rx.destroy(port).unwrap();
            }
        });
        for _ in 0..10_000 {
            let port = rx.port_allocate(Capacity::Unbounded).unwrap();
            let send = rx.make_send(port).unwrap();
            let names = k
                .transfer_rights(
                    rx.pid(),
                    tx.pid(),
                    &[CarriedRight {
                        name: send,
                        disposition: Disposition::MoveSend,
                    }],
                )
                .unwrap();
            to_destroy.send(Some(port)).unwrap();
            barrier.wait();
            assert_eq!(tx.deallocate(names[0].name), Ok(()));
            assert_eq!(tx.rights(names[0].name), Err(IpcError::InvalidName));
        }
        to_destroy.send(None).unwrap();
    });
    assert_eq!(k.task_rights(tx.pid()).unwrap().names, 0);
}
