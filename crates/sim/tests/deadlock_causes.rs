//! Deadlock reports name the real cause: who could end each wait (a
//! mailbox's receivers by access, the holder of a call's send-once reply
//! right), the full ring of a cycle through servers, and, when nothing
//! could ever end a wait, a plain sentence saying so.

use mkipc_kernel::ipc::Owner;
use mkipc_kernel::name::Access;
use mkipc_kernel::{Capacity, CarriedRight, Ipc, MailboxConfig, Message, Pid};
use mkipc_sim::{Deadlock, Explorer, FailureReason, Inherit, Proc, ProcId, ProcResult, Sim};
use proptest::prelude::*;

fn deadlock_of(sim: Sim) -> Deadlock {
    match sim.run() {
        Err(f) => match f.reason {
            FailureReason::Deadlock(d) => d,
            other => panic!("not a deadlock: {other:?}"),
        },
        Ok(_) => panic!("the run ended well"),
    }
}

fn waiting<'a>(d: &'a Deadlock, name: &str) -> &'a mkipc_sim::deadlock::Waiting {
    d.waiting
        .iter()
        .find(|w| w.name == name)
        .unwrap_or_else(|| panic!("{name} is not stuck: {d}"))
}

/// The master sends all NJOBS jobs before collecting any result, through
/// two capacity-1 mailboxes, to three workers: jobs (1) + results (1) + one
/// job in each worker's hand (3) + the master's blocked send (1) = 6 jobs.
fn master_and_three_workers(sim: &mut Sim) {
    sim.mailbox("jobs", Capacity::Bounded(1)).unwrap();
    sim.mailbox("results", Capacity::Bounded(1)).unwrap();
    sim.spawn("master", |p| {
        let jobs = p.mailbox_open("jobs")?;
        for j in 0..6 {
            p.send(jobs, Message::from_u64(1, j))?;
        }
        let results = p.mailbox_open("results")?;
        for _ in 0..6 {
            p.receive(results)?;
        }
        Ok(())
    });
    for i in 1..=3 {
        sim.spawn(&format!("worker{i}"), |p| {
            let jobs = p.mailbox_open("jobs")?;
            let results = p.mailbox_open("results")?;
            loop {
                let job = p.receive(jobs)?;
                p.send(results, job)?;
            }
        });
    }
}

#[test]
fn a_master_blocked_on_a_full_mailbox_waits_on_the_live_workers() {
    let mut sim = Sim::builder().seed(0).build();
    master_and_three_workers(&mut sim);
    let d = deadlock_of(sim);
    let master = waiting(&d, "master");
    assert_eq!(master.op, "send", "{d}");
    assert_eq!(master.held_by, ["worker1", "worker2", "worker3"], "{d}");
    let text = d.to_string();
    assert!(
        text.contains(
            "master waits sending to jobs (worker1, worker2, worker3 may receive from it)"
        ),
        "{text}"
    );
    assert!(!text.contains("no live process"), "{text}");
    assert!(!text.contains("setup task"), "{text}");
    // The cycle: the master and a worker, each waiting on the other.
    let mut names = d.cycle_names();
    names.sort_unstable();
    assert_eq!(names.len(), 2, "{d}");
    assert_eq!(names[0], "master", "{d}");
    assert!(names[1].starts_with("worker"), "{d}");
}

#[test]
fn a_receive_nobody_can_satisfy_is_said_plainly() {
    // `lonely` receives on a port nobody else holds a send right to, and
    // `waiter` waits on lonely: no cycle, one wait that can never end.
    let mut sim = Sim::builder().seed(0).build();
    let q = sim.port("q", Capacity::Bounded(1)).unwrap();
    let p = sim.port("p", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("waiter", &[Inherit::receive(p)], |me| {
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with("lonely", &[Inherit::receive(q), Inherit::send(p)], |me| {
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    let d = deadlock_of(sim);
    assert!(d.cycle.is_empty(), "{d}");
    let text = d.to_string();
    assert!(
        text.contains("lonely waits for a message on q, and no live process can send to it"),
        "{text}"
    );
    assert!(
        text.contains("waiter waits receiving from p (send right held by lonely)"),
        "{text}"
    );
    // The wait nobody can end comes first: it is the cause.
    assert!(
        text.find("lonely waits").unwrap() < text.find("waiter waits").unwrap(),
        "{text}"
    );
}

#[test]
fn a_send_nobody_can_take_and_a_mailbox_nobody_may_send_to_are_said_plainly() {
    let mut sim = Sim::builder().seed(0).build();
    // The receive right of `full` stays with the setup task, which never runs.
    let full = sim.port("full", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("sender", &[Inherit::send(full)], |me| {
        me.send(me.right(0), Message::new(1, b"fills it"))?;
        me.send(me.right(0), Message::new(2, b"blocks"))?;
        Ok(())
    })
    .unwrap();
    let reader = sim.spawn("reader", |me| {
        let m = me.mailbox_open("private")?;
        me.receive(m)?;
        Ok(())
    });
    let pid = sim.pid(reader).unwrap();
    let config = MailboxConfig::new(Capacity::Bounded(1))
        .owner(Owner::System)
        .default_access(Access::NONE)
        .grant(pid, Access::RECEIVE);
    sim.kernel()
        .mailbox_create(sim.init_pid(), "private", config)
        .unwrap();
    let d = deadlock_of(sim);
    let text = d.to_string();
    assert!(
        text.contains("sender waits sending to full, and no live process can receive from it"),
        "{text}"
    );
    assert!(
        text.contains("reader waits for a message on private, and no live process can send to it"),
        "{text}"
    );
}

#[test]
fn a_blocked_call_names_the_holder_of_its_reply_right() {
    // The server took the request (and its send-once reply right) and then
    // waits on a port nobody can send to; the client waits on the server.
    let mut sim = Sim::builder().seed(0).build();
    let svc = sim.port("svc", Capacity::Bounded(2)).unwrap();
    let never = sim.port("never", Capacity::Bounded(1)).unwrap();
    sim.spawn_with(
        "server",
        &[Inherit::receive(svc), Inherit::receive(never)],
        |me| {
            let _request = me.receive(me.right(0))?;
            me.receive(me.right(1))?;
            Ok(())
        },
    )
    .unwrap();
    sim.spawn_with("client", &[Inherit::send(svc)], |me| {
        me.call(me.right(0), Message::new(1, b"request"))?;
        Ok(())
    })
    .unwrap();
    let d = deadlock_of(sim);
    let client = waiting(&d, "client");
    assert_eq!(client.op, "call", "{d}");
    assert_eq!(client.held_by, ["server"], "{d}");
    assert!(
        d.to_string().contains(
            "client waits for the reply to its call to svc (send-once right held by server)"
        ),
        "{d}"
    );
}

/// A fork server that keeps holder/waiter state: `(ACQ)` grants at once or
/// keeps the request (and its reply right) for later; `(REL)` hands the
/// fork to the waiter.
fn fork_server(p: &Proc, meals: usize) -> ProcResult {
    const ACQ: u32 = 1;
    let mut holder = false;
    let mut waiter: Option<Message> = None;
    for _ in 0..4 * meals {
        let req = p.receive(p.right(0))?;
        if req.id == ACQ {
            if holder {
                waiter = Some(req);
            } else {
                holder = true;
                p.reply(&req, Message::new(10, b"granted"))?;
            }
        } else {
            p.reply(&req, Message::new(11, b"released"))?;
            match waiter.take() {
                Some(w) => p.reply(&w, Message::new(10, b"granted"))?,
                None => holder = false,
            }
        }
    }
    Ok(())
}

fn dining(sim: &mut Sim, n: usize) {
    let forks: Vec<_> = (0..n)
        .map(|i| sim.port(&format!("fork{i}"), Capacity::Bounded(4)).unwrap())
        .collect();
    for (i, &f) in forks.iter().enumerate() {
        sim.spawn_with(&format!("fork{i}"), &[Inherit::receive(f)], |p| {
            fork_server(p, 1)
        })
        .unwrap();
    }
    for i in 0..n {
        let (l, r) = (forks[i], forks[(i + 1) % n]);
        sim.spawn_with(
            &format!("phil{i}"),
            &[Inherit::send(l), Inherit::send(r)],
            |p| {
                p.call(p.right(0), Message::new(1, b"acquire"))?;
                p.call(p.right(1), Message::new(1, b"acquire"))?;
                p.work(mkipc_sim::ms(1));
                p.call(p.right(0), Message::new(2, b"release"))?;
                p.call(p.right(1), Message::new(2, b"release"))?;
                Ok(())
            },
        )
        .unwrap();
    }
}

#[test]
fn dining_philosophers_with_stateful_fork_servers_print_the_six_party_ring() {
    let outcome = Explorer::new().seeds(0..200).run(|sim| dining(sim, 3));
    let failure = outcome
        .failure
        .expect("all take their left fork in some schedule");
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    let names = d.cycle_names();
    assert_eq!(names.len(), 6, "{d}");
    // In ring order: each philosopher waits on its right fork, each fork on
    // the philosopher that holds it.
    let start = names
        .iter()
        .position(|n| *n == "phil0")
        .expect("phil0 in the ring");
    let ring: Vec<&str> = (0..6).map(|k| names[(start + k) % 6]).collect();
    assert_eq!(
        ring,
        ["phil0", "fork1", "phil1", "fork2", "phil2", "fork0"],
        "{d}"
    );
    let text = d.to_string();
    assert!(
        text.contains(
            "phil0 waits for the reply to its call to fork1 (send-once right held by fork1)"
        ),
        "{text}"
    );
    // In the cycle, the next party is named first among the holders.
    assert!(
        text.contains(
            "fork1 waits receiving from fork1 (send right held by phil1, phil0) -> phil1"
        ),
        "{text}"
    );
}

/// The dining philosophers of `examples/scenarios/dining-philosophers.toml`:
/// forks and reply boxes are mailboxes every process may use, a request
/// says which philosopher's box the grant goes to. Who could end a wait is
/// then everyone; the report still finds the ring, through who took whose
/// latest message.
fn dining_over_mailboxes(sim: &mut Sim, n: usize) {
    const ACQ: u32 = 1;
    for i in 0..n {
        sim.mailbox(&format!("f{i}"), Capacity::Bounded(4)).unwrap();
        sim.mailbox(&format!("r{i}"), Capacity::Bounded(1)).unwrap();
    }
    for i in 0..n {
        sim.spawn(&format!("fork{i}"), move |p| {
            let me = p.mailbox_open(&format!("f{i}"))?;
            let (mut holder, mut waiter) = (None, None);
            for _ in 0..4 {
                let req = p.receive(me)?;
                let who = req.as_u64().unwrap_or(0);
                if req.id == ACQ && holder.is_none() {
                    holder = Some(who);
                } else if req.id == ACQ {
                    waiter = Some(who);
                    continue;
                } else {
                    holder = waiter.take();
                }
                if let Some(h) = holder {
                    let reply = p.mailbox_open(&format!("r{h}"))?;
                    p.send(reply, Message::new(10, b"granted"))?;
                }
            }
            Ok(())
        });
    }
    for i in 0..n {
        sim.spawn(&format!("phil{i}"), move |p| {
            let left = p.mailbox_open(&format!("f{i}"))?;
            let right = p.mailbox_open(&format!("f{}", (i + 1) % n))?;
            let mine = p.mailbox_open(&format!("r{i}"))?;
            for fork in [left, right] {
                p.send(fork, Message::from_u64(ACQ, i as u64))?;
                p.receive(mine)?;
            }
            p.work(mkipc_sim::ms(1));
            for fork in [left, right] {
                p.send(fork, Message::from_u64(2, i as u64))?;
            }
            Ok(())
        });
    }
}

#[test]
fn dining_philosophers_over_open_mailboxes_print_the_six_party_ring() {
    let outcome = Explorer::new()
        .seeds(0..200)
        .run(|sim| dining_over_mailboxes(sim, 3));
    let failure = outcome
        .failure
        .expect("all take their left fork in some schedule");
    let FailureReason::Deadlock(d) = &failure.reason else {
        panic!("{failure}")
    };
    let names = d.cycle_names();
    assert_eq!(names.len(), 6, "{d}");
    let start = names
        .iter()
        .position(|n| *n == "phil0")
        .expect("phil0 in the ring");
    let ring: Vec<&str> = (0..6).map(|k| names[(start + k) % 6]).collect();
    assert_eq!(
        ring,
        ["phil0", "fork1", "phil1", "fork2", "phil2", "fork0"],
        "{d}"
    );
    assert!(
        d.to_string()
            .contains("phil0 waits receiving from r0 (fork1, fork0 and 3 others may send to it)"),
        "{d}"
    );
}

/// How party i of a ring waits on party i+1.
#[derive(Clone, Copy, Debug)]
enum Link {
    /// Sends to a rendezvous port whose receive right i+1 holds.
    SendZero,
    /// Receives from a port only i+1 holds a send right to.
    Receive,
    /// Calls a port of i+1, which never takes the request.
    CallQueued,
    /// Calls a port of i+1, which takes the request (and its reply right)
    /// before its own wait.
    CallHeld,
    /// Sends to a full mailbox only i+1 may receive from.
    MailboxSend,
    /// Receives from an empty mailbox only i+1 may send to.
    MailboxReceive,
}

fn link() -> impl Strategy<Value = Link> {
    prop_oneof![
        Just(Link::SendZero),
        Just(Link::Receive),
        Just(Link::CallQueued),
        Just(Link::CallHeld),
        Just(Link::MailboxSend),
        Just(Link::MailboxReceive),
    ]
}

/// A ring of `links.len()` parties, party i waiting on party i+1 as
/// `links[i]` says. Returns the parties' ids.
fn ring(sim: &mut Sim, links: &[Link]) -> Vec<ProcId> {
    let n = links.len();
    // Party i's own queues (what party i-1 waits on), and what i itself uses.
    let mut own: Vec<Vec<CarriedRight>> = vec![Vec::new(); n];
    let mut uses: Vec<Vec<CarriedRight>> = vec![Vec::new(); n];
    let mut mailboxes: Vec<Option<(String, bool)>> = vec![None; n];
    for (i, l) in links.iter().enumerate() {
        let next = (i + 1) % n;
        match l {
            Link::SendZero => {
                let p = sim.port(&format!("z{next}"), Capacity::Zero).unwrap();
                own[next].push(Inherit::receive(p));
                uses[i].push(Inherit::send(p));
            }
            Link::Receive => {
                let p = sim.port(&format!("r{i}"), Capacity::Bounded(1)).unwrap();
                uses[i].push(Inherit::receive(p));
                own[next].push(Inherit::send(p));
            }
            Link::CallQueued | Link::CallHeld => {
                let p = sim
                    .port(&format!("svc{next}"), Capacity::Bounded(2))
                    .unwrap();
                own[next].push(Inherit::receive(p));
                uses[i].push(Inherit::send(p));
            }
            Link::MailboxSend | Link::MailboxReceive => {
                mailboxes[i] = Some((format!("m{i}"), matches!(l, Link::MailboxSend)));
            }
        }
    }
    let mut ids = Vec::new();
    for i in 0..n {
        // Rights: first the ends party i-1 waits on, then party i's own.
        let serve = links[(i + n - 1) % n];
        let mut inherit = own[i].clone();
        let own_len = inherit.len();
        inherit.extend(uses[i].iter().cloned());
        let l = links[i];
        let mailbox = mailboxes[i].clone();
        let id = sim
            .spawn_with(&format!("p{i}"), &inherit, move |me| {
                if matches!(serve, Link::CallHeld) {
                    // Our first own right is the port party i-1 calls.
                    let _request = me.receive(me.right(0))?;
                }
                let mine = |k: usize| me.right(own_len + k);
                match l {
                    Link::SendZero => {
                        me.send(mine(0), Message::new(1, b"rendezvous"))?;
                    }
                    Link::Receive => {
                        me.receive(mine(0))?;
                    }
                    Link::CallQueued | Link::CallHeld => {
                        me.call(mine(0), Message::new(2, b"request"))?;
                    }
                    Link::MailboxSend | Link::MailboxReceive => {
                        let (label, _) = mailbox.clone().expect("a mailbox");
                        let m = me.mailbox_open(&label)?;
                        if matches!(l, Link::MailboxSend) {
                            me.send(m, Message::new(3, b"fills it"))?;
                            me.send(m, Message::new(3, b"blocks"))?;
                        } else {
                            me.receive(m)?;
                        }
                    }
                }
                Ok(())
            })
            .unwrap();
        ids.push(id);
    }
    let pids: Vec<Pid> = ids.iter().map(|&id| sim.pid(id).unwrap()).collect();
    for (i, m) in mailboxes.iter().enumerate() {
        let Some((label, sending)) = m else { continue };
        let next = pids[(i + 1) % n];
        let (mine, theirs) = if *sending {
            (Access::SEND, Access::RECEIVE)
        } else {
            (Access::RECEIVE, Access::SEND)
        };
        let mut config = MailboxConfig::new(Capacity::Bounded(1))
            .owner(Owner::System)
            .default_access(Access::NONE)
            .grant(pids[i], mine);
        if next != pids[i] {
            config = config.grant(next, theirs);
        } else {
            config = config.grant(next, Access::ALL);
        }
        sim.kernel()
            .mailbox_create(sim.init_pid(), label, config)
            .unwrap();
    }
    ids
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever mix of sends, receives, calls and mailboxes links a ring of
    /// N parties (N = 1..6), the reported cycle is exactly the ring, in
    /// order, and each party is reported waiting on the next one only.
    #[test]
    fn the_reported_cycle_is_the_whole_ring(
        mut links in proptest::collection::vec(link(), 1..7),
        seed in 0u64..4,
    ) {
        // If every party took its caller's request first, nobody would call.
        if links.iter().all(|l| matches!(l, Link::CallHeld)) {
            links[0] = Link::CallQueued;
        }
        let n = links.len();
        let mut sim = Sim::builder().seed(seed).build();
        let ids = ring(&mut sim, &links);
        let d = deadlock_of(sim);
        let cycle: Vec<ProcId> = d.cycle.iter().map(|&i| d.waiting[i].proc).collect();
        prop_assert_eq!(cycle.len(), n, "{}", d);
        let start = cycle.iter().position(|&p| p == ids[0]).expect("party 0 in the cycle");
        for (k, &id) in ids.iter().enumerate() {
            prop_assert_eq!(cycle[(start + k) % n], id, "{}", d);
        }
        for (i, &id) in ids.iter().enumerate() {
            let w = d.waiting.iter().find(|w| w.proc == id).unwrap();
            prop_assert_eq!(&w.held_by, &[format!("p{}", (i + 1) % n)], "{}", d);
        }
    }
}

#[test]
fn bystanders_waiting_on_the_ring_stay_out_of_the_cycle() {
    let mut sim = Sim::builder().seed(0).build();
    // Bystanders first, so the search starts from one of them.
    let by = sim.port("by", Capacity::Bounded(1)).unwrap();
    let ring_port = sim.port("r1", Capacity::Bounded(1)).unwrap();
    let back = sim.port("r0", Capacity::Bounded(1)).unwrap();
    sim.spawn_with("b0", &[Inherit::receive(by)], |me| {
        me.receive(me.right(0))?;
        Ok(())
    })
    .unwrap();
    sim.spawn_with(
        "p0",
        &[
            Inherit::send(by),
            Inherit::receive(back),
            Inherit::send(ring_port),
        ],
        |me| {
            me.receive(me.right(1))?;
            Ok(())
        },
    )
    .unwrap();
    sim.spawn_with(
        "p1",
        &[Inherit::receive(ring_port), Inherit::send(back)],
        |me| {
            me.receive(me.right(0))?;
            Ok(())
        },
    )
    .unwrap();
    let d = deadlock_of(sim);
    let mut names = d.cycle_names();
    names.sort_unstable();
    assert_eq!(names, ["p0", "p1"], "{d}");
    assert!(d.to_string().contains("also stuck: b0 waits"), "{d}");
}

#[test]
fn many_processes_stuck_on_one_open_mailbox_give_a_bounded_report() {
    // 2,000 receivers on a mailbox each of them may send to: every wait
    // could be ended by 1,999 others. Each line names a few and counts the
    // rest, and the report stays linear in the number of processes.
    const N: usize = 2000;
    let mut sim = Sim::builder().seed(0).build();
    sim.mailbox("m", Capacity::Bounded(1)).unwrap();
    for i in 0..N {
        sim.spawn(&format!("r{i}"), |p| {
            let m = p.mailbox_open("m")?;
            p.receive(m)?;
            Ok(())
        });
    }
    let d = deadlock_of(sim);
    assert_eq!(d.waiting.len(), N);
    for w in &d.waiting {
        assert!(
            w.held_by.len() <= mkipc_sim::deadlock::Waiting::MAX_HOLDERS,
            "{w:?}"
        );
        assert_eq!(w.held_by.len() + w.others, N - 1, "{w:?}");
    }
    assert_eq!(
        d.cycle.len(),
        2,
        "any two of them: each may send to the other"
    );
    let text = d.to_string();
    assert!(text.len() < N * 120, "{} bytes", text.len());
    assert!(
        text.contains("r0 waits receiving from m (r1, r2 and 1997 others may send to it)"),
        "{}",
        &text[..400]
    );
}
