//! Classic models as machines, shared by the checker's tests and its bench
//! (`benches/check.rs` includes this file by path).
#![allow(dead_code)]

use mkipc_kernel::runtime::{Destination, Source, WaitOutcome};
use mkipc_kernel::{Capacity, Ipc, Message, OnFull, PortName, SendErrorKind, Wait};
use mkipc_sim::check::{Encode, Encoder, World};
use mkipc_sim::machine::{Ctx, Machine, Op, Step};
use mkipc_sim::{Inherit, ProcError};

/// The processes of the classic models: one type, as a checker wants.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Classic {
    /// Sends `0..n` on `out`, exiting in the step of its last send.
    Producer { out: PortName, next: u64, n: u64 },
    /// Receives `n` values on `inbox` and checks they come in order.
    Consumer {
        inbox: PortName,
        expect: u64,
        n: u64,
    },
    /// Master of master-worker (see [`master_worker`]).
    Master(Master),
    /// A worker: receives jobs until a stop value, sends each result.
    Worker(Worker),
    /// Receives on `inbox` forever, counting requests modulo 2.
    Server { inbox: PortName, parity: u8 },
    /// Sends `left` requests to `out`.
    Client { out: PortName, left: u8 },
    /// Sends once on `out`, then receives once on `inbox`.
    Polite {
        inbox: PortName,
        out: PortName,
        sent: bool,
    },
}

/// The master: hands out jobs `1..=jobs` and collects their results.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Master {
    /// Mailbox names, once opened.
    pub jobs_q: Option<PortName>,
    pub results_q: Option<PortName>,
    pub jobs: u64,
    pub workers: u64,
    /// Next job to send (1-based); `jobs + 1` when all are out.
    pub next: u64,
    pub results: u64,
    pub sum: u64,
    pub stops_sent: u64,
    /// The buggy twin: all jobs first (blocking), results after.
    pub all_jobs_first: bool,
    /// What the pending operation is.
    pub pending: Pending,
}

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Pending {
    None,
    Job,
    Result,
    Stop,
}

#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Worker {
    pub jobs_q: Option<PortName>,
    pub results_q: Option<PortName>,
    /// A result waiting to be sent is being sent.
    pub sending: bool,
}

const STOP: u64 = 0;

fn open(cx: &mut impl Ctx<Classic>, label: &str) -> Result<PortName, Step> {
    cx.ipc()
        .mailbox_open(label)
        .map_err(|e| Step::Exit(Err(e.into())))
}

fn fail(what: impl Into<String>) -> Step {
    Step::Exit(Err(ProcError::msg(what)))
}

impl Machine for Classic {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        match self {
            Classic::Producer { out, next, n } => {
                if let Some(WaitOutcome::Sent(r)) = resumed {
                    if let Err(e) = r {
                        return Step::Exit(Err(e.into()));
                    }
                    *next += 1;
                    if *next == *n {
                        return Step::Exit(Ok(()));
                    }
                }
                if *next == *n {
                    return Step::Exit(Ok(()));
                }
                match cx.send(
                    Destination::Name(*out),
                    Message::from_u64(1, *next),
                    OnFull::Block,
                ) {
                    Op::Done(Ok(_)) => {
                        *next += 1;
                        if *next == *n {
                            Step::Exit(Ok(()))
                        } else {
                            Step::Yield
                        }
                    }
                    Op::Done(Err(e)) => Step::Exit(Err(e.into())),
                    Op::Pending => Step::Wait,
                }
            }
            Classic::Consumer { inbox, expect, n } => {
                let got = match resumed {
                    Some(WaitOutcome::Received(r)) => Some(r),
                    _ => None,
                };
                let got = match got {
                    Some(r) => r,
                    None => {
                        if *expect == *n {
                            return Step::Exit(Ok(()));
                        }
                        match cx.receive(Source::Name(*inbox), Wait::Forever) {
                            Op::Done(r) => r,
                            Op::Pending => return Step::Wait,
                        }
                    }
                };
                match got.map(|m| m.as_u64()) {
                    Ok(Some(v)) if v == *expect => {
                        *expect += 1;
                        if *expect == *n {
                            Step::Exit(Ok(()))
                        } else {
                            Step::Yield
                        }
                    }
                    Ok(v) => fail(format!("out of order: got {v:?}, expected {expect}")),
                    Err(e) => Step::Exit(Err(e.into())),
                }
            }
            Classic::Master(m) => m.step(cx, resumed),
            Classic::Worker(w) => w.step(cx, resumed),
            Classic::Server { inbox, parity } => {
                if let Some(WaitOutcome::Received(r)) = resumed {
                    if let Err(e) = r {
                        return Step::Exit(Err(e.into()));
                    }
                    *parity ^= 1;
                }
                match cx.receive(Source::Name(*inbox), Wait::Forever) {
                    Op::Done(Ok(_)) => {
                        *parity ^= 1;
                        Step::Yield
                    }
                    Op::Done(Err(e)) => Step::Exit(Err(e.into())),
                    Op::Pending => Step::Wait,
                }
            }
            Classic::Client { out, left } => {
                if let Some(WaitOutcome::Sent(r)) = resumed {
                    if let Err(e) = r {
                        return Step::Exit(Err(e.into()));
                    }
                    *left -= 1;
                }
                if *left == 0 {
                    return Step::Exit(Ok(()));
                }
                match cx.send(
                    Destination::Name(*out),
                    Message::from_u64(2, 1),
                    OnFull::Block,
                ) {
                    Op::Done(Ok(_)) => {
                        *left -= 1;
                        Step::Yield
                    }
                    Op::Done(Err(e)) => Step::Exit(Err(e.into())),
                    Op::Pending => Step::Wait,
                }
            }
            Classic::Polite { inbox, out, sent } => {
                if *sent {
                    return Step::Exit(Ok(()));
                }
                if resumed.is_none() {
                    let msg = Message::from_u64(3, 1);
                    if let Op::Pending = cx.send(Destination::Name(*out), msg, OnFull::Block) {
                        return Step::Wait;
                    }
                }
                *sent = true;
                match cx.receive(Source::Name(*inbox), Wait::Forever) {
                    Op::Pending => Step::Wait,
                    Op::Done(_) => Step::Exit(Ok(())),
                }
            }
        }
    }
}

impl Master {
    fn step<C: Ctx<Classic>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        // Opening is local (no other process sees it): done in the step of
        // the first operation, so it adds no interleavings.
        if self.jobs_q.is_none() {
            match (open(cx, "jobs"), open(cx, "results")) {
                (Ok(j), Ok(r)) => {
                    self.jobs_q = Some(j);
                    self.results_q = Some(r);
                }
                (Err(s), _) | (_, Err(s)) => return s,
            }
        }
        let (Some(jobs_q), Some(results_q)) = (self.jobs_q, self.results_q) else {
            return fail("mailboxes not open");
        };
        match (std::mem::replace(&mut self.pending, Pending::None), resumed) {
            (Pending::Job, Some(WaitOutcome::Sent(Ok(_)))) => self.next += 1,
            (Pending::Stop, Some(WaitOutcome::Sent(Ok(_)))) => self.stops_sent += 1,
            (Pending::Result, Some(WaitOutcome::Received(Ok(m)))) => {
                if let Err(s) = self.take_result(&m) {
                    return s;
                }
            }
            (_, Some(WaitOutcome::Sent(Err(e)))) => return Step::Exit(Err(e.into())),
            (_, Some(WaitOutcome::Received(Err(e)))) => return Step::Exit(Err(e.into())),
            _ => {}
        }
        if self.results == self.jobs {
            if self.stops_sent == self.workers {
                // Every job done once: 2 * (1 + ... + jobs).
                let want = self.jobs * (self.jobs + 1);
                if self.sum != want {
                    return fail(format!("results sum {} != {want}", self.sum));
                }
                return Step::Exit(Ok(()));
            }
            return match cx.send(
                Destination::Name(jobs_q),
                Message::from_u64(1, STOP),
                OnFull::Block,
            ) {
                Op::Done(Ok(_)) => {
                    self.stops_sent += 1;
                    Step::Yield
                }
                Op::Done(Err(e)) => Step::Exit(Err(e.into())),
                Op::Pending => {
                    self.pending = Pending::Stop;
                    Step::Wait
                }
            };
        }
        if self.next <= self.jobs {
            let policy = if self.all_jobs_first {
                OnFull::Block
            } else {
                OnFull::Fail
            };
            match cx.send(
                Destination::Name(jobs_q),
                Message::from_u64(1, self.next),
                policy,
            ) {
                Op::Done(Ok(_)) => {
                    self.next += 1;
                    return Step::Yield;
                }
                Op::Done(Err(e)) if e.kind() == SendErrorKind::Full => {} // receive instead
                Op::Done(Err(e)) => return Step::Exit(Err(e.into())),
                Op::Pending => {
                    self.pending = Pending::Job;
                    return Step::Wait;
                }
            }
        }
        match cx.receive(Source::Name(results_q), Wait::Forever) {
            Op::Done(Ok(m)) => match self.take_result(&m) {
                Ok(()) => Step::Yield,
                Err(s) => s,
            },
            Op::Done(Err(e)) => Step::Exit(Err(e.into())),
            Op::Pending => {
                self.pending = Pending::Result;
                Step::Wait
            }
        }
    }

    fn take_result(&mut self, m: &Message) -> Result<(), Step> {
        let v = m.as_u64().ok_or_else(|| fail("a result without a value"))?;
        self.results += 1;
        self.sum += v;
        Ok(())
    }
}

impl Worker {
    fn step<C: Ctx<Classic>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        // Opening is local (no other process sees it): done in the step of
        // the first operation, so it adds no interleavings.
        if self.jobs_q.is_none() {
            match (open(cx, "jobs"), open(cx, "results")) {
                (Ok(j), Ok(r)) => {
                    self.jobs_q = Some(j);
                    self.results_q = Some(r);
                }
                (Err(s), _) | (_, Err(s)) => return s,
            }
        }
        let (Some(jobs_q), Some(results_q)) = (self.jobs_q, self.results_q) else {
            return fail("mailboxes not open");
        };
        let job = match resumed {
            Some(WaitOutcome::Sent(r)) => {
                self.sending = false;
                return match r {
                    Ok(_) => Step::Yield,
                    Err(e) => Step::Exit(Err(e.into())),
                };
            }
            Some(WaitOutcome::Received(r)) => r,
            None => match cx.receive(Source::Name(jobs_q), Wait::Forever) {
                Op::Done(r) => r,
                Op::Pending => return Step::Wait,
            },
        };
        let job = match job.map(|m| m.as_u64()) {
            Ok(Some(v)) => v,
            Ok(None) => return fail("a job without a value"),
            Err(e) => return Step::Exit(Err(e.into())),
        };
        if job == STOP {
            return Step::Exit(Ok(()));
        }
        match cx.send(
            Destination::Name(results_q),
            Message::from_u64(2, 2 * job),
            OnFull::Block,
        ) {
            Op::Done(Ok(_)) => Step::Yield,
            Op::Done(Err(e)) => Step::Exit(Err(e.into())),
            Op::Pending => {
                self.sending = true;
                Step::Wait
            }
        }
    }
}

impl Encode for Classic {
    fn encode(&self, e: &mut Encoder<'_>) {
        let opt = |e: &mut Encoder<'_>, n: Option<PortName>| match n {
            Some(n) => e.name(n),
            None => e.u64(u64::MAX),
        };
        match self {
            Classic::Producer { out, next, n } => {
                e.u64(0);
                e.name(*out);
                e.value(&(next, n));
            }
            Classic::Consumer { inbox, expect, n } => {
                e.u64(1);
                e.name(*inbox);
                e.value(&(expect, n));
            }
            Classic::Master(m) => {
                e.u64(2);
                opt(e, m.jobs_q);
                opt(e, m.results_q);
                e.value(&(
                    m.jobs,
                    m.workers,
                    m.next,
                    m.results,
                    m.sum,
                    m.stops_sent,
                    m.all_jobs_first,
                    m.pending,
                ));
            }
            Classic::Worker(w) => {
                e.u64(3);
                opt(e, w.jobs_q);
                opt(e, w.results_q);
                e.value(&w.sending);
            }
            Classic::Server { inbox, parity } => {
                e.u64(4);
                e.name(*inbox);
                e.value(parity);
            }
            Classic::Client { out, left } => {
                e.u64(5);
                e.name(*out);
                e.value(left);
            }
            Classic::Polite { inbox, out, sent } => {
                e.u64(6);
                e.name(*inbox);
                e.name(*out);
                e.value(sent);
            }
        }
    }
}

/// A producer sending `n` values through a port of `capacity` to a
/// consumer that checks their order.
pub fn producer_consumer(w: &mut World<Classic>, n: u64, capacity: Capacity) {
    let port = w.port("numbers", capacity).unwrap();
    w.spawn_with("producer", &[Inherit::send(port)], |names| {
        Classic::Producer {
            out: names[0].name,
            next: 0,
            n,
        }
    })
    .unwrap();
    w.spawn_with("consumer", &[Inherit::receive(port)], |names| {
        Classic::Consumer {
            inbox: names[0].name,
            expect: 0,
            n,
        }
    })
    .unwrap();
}

/// One master, `workers` workers, mailboxes "jobs" and "results" of
/// `capacity`. The master, until it has every result, sends the next job if
/// one is left and the queue has room, else receives a result; then one stop
/// value per worker. The buggy twin (`all_jobs_first`) sends every job
/// (blocking) before receiving any result.
pub fn master_worker(
    w: &mut World<Classic>,
    jobs: u64,
    workers: u64,
    capacity: Capacity,
    all_jobs_first: bool,
) {
    w.mailbox("jobs", capacity).unwrap();
    w.mailbox("results", capacity).unwrap();
    w.spawn("master", |_| {
        Classic::Master(Master {
            jobs_q: None,
            results_q: None,
            jobs,
            workers,
            next: 1,
            results: 0,
            sum: 0,
            stops_sent: 0,
            all_jobs_first,
            pending: Pending::None,
        })
    });
    for i in 0..workers {
        w.spawn(&format!("worker{i}"), |_| {
            Classic::Worker(Worker {
                jobs_q: None,
                results_q: None,
                sending: false,
            })
        });
    }
}

/// Two processes that each send first on a rendezvous port, then receive:
/// the classic deadlock.
pub fn rendezvous_pair(w: &mut World<Classic>) {
    let p = w.port("p", Capacity::Zero).unwrap();
    let q = w.port("q", Capacity::Zero).unwrap();
    w.spawn_with("a", &[Inherit::receive(p), Inherit::send(q)], |n| {
        Classic::Polite {
            inbox: n[0].name,
            out: n[1].name,
            sent: false,
        }
    })
    .unwrap();
    w.spawn_with("b", &[Inherit::receive(q), Inherit::send(p)], |n| {
        Classic::Polite {
            inbox: n[0].name,
            out: n[1].name,
            sent: false,
        }
    })
    .unwrap();
}

/// A server receiving forever from `clients` clients sending `each`
/// requests over a port of `capacity`.
pub fn server_loop(w: &mut World<Classic>, clients: u8, each: u8, capacity: Capacity) {
    let port = w.port("requests", capacity).unwrap();
    let server = w
        .spawn_with("server", &[Inherit::receive(port)], |n| Classic::Server {
            inbox: n[0].name,
            parity: 0,
        })
        .unwrap();
    w.server(server);
    for i in 0..clients {
        w.spawn_with(&format!("client{i}"), &[Inherit::send(port)], |n| {
            Classic::Client {
                out: n[0].name,
                left: each,
            }
        })
        .unwrap();
    }
}
