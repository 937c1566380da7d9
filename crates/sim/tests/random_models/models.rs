// Random models for the checker's property tests: processes of a few
// operations on ports and mailboxes of every capacity, every `OnFull`
// policy, receives, selects, timeouts, pauses, choices, a server, failing
// and panicking processes; how to build one in a checker's world and how
// to name its end states. Included (`include!`) by `check_soundness.rs` and
// `check_parallel.rs`, which bring the imports it uses.

/// One operation of a generated process.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
enum MOp {
    /// Send `value` to port `port` with a policy.
    Send {
        port: usize,
        value: u64,
        policy: u8,
    },
    /// Receive from own port `port`: 0 blocks, 1 does not wait, 2 waits 1 ms.
    Receive {
        port: usize,
        wait: u8,
    },
    /// Receive from the first of all own ports.
    Select {
        wait: u8,
    },
    Yield,
    Sleep(u64),
    /// Ends with an error if the last value received is `value`.
    FailIfGot(u64),
    /// Panics if the last value received is `value`.
    PanicIfGot(u64),
    /// A nondeterministic choice among `n`, kept as the last value.
    Choose(u8),
    /// A guarded choice in one step, as a script's `select` on the checker:
    /// a try of each arm in order (a send, `Some(value)`, with
    /// `OnFull::Fail`, or a receive without waiting), the first that goes
    /// taken; when none goes, the last arm's plain operation (blocking).
    /// Only the checker runs it (its steps are atomic).
    Guarded(Vec<(usize, Option<u64>)>),
}

#[derive(Clone, Debug)]
struct Model {
    /// Capacity code per port: 0 rendezvous, 1 and 2 bounded, 3 unbounded;
    /// 8 and up a mailbox (anyone sends and receives) of capacity code % 4.
    ports: Vec<u8>,
    /// Operations per process; process `i % procs` owns port `i`.
    procs: Vec<Vec<MOp>>,
    /// Process 0 is a server: it repeats its operations forever, starting
    /// with a blocking receive.
    server: bool,
}

/// How many cases a property over these models runs: `default` (what CI
/// affords), or `MKIPC_MODEL_CASES` when set. CI's counts are too small to
/// find a rare unsound case: run the properties at 3,000 cases
/// (`MKIPC_MODEL_CASES=3000 cargo test --release -p mkipc-sim --test
/// check_soundness --test check_parallel`) after any change to the checker.
fn model_cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("MKIPC_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        // Models too big for the comparison are rejected: room for as
        // many rejects per case as the defaults allow.
        max_global_rejects: cases.saturating_mul(16).max(4_000),
        ..ProptestConfig::default()
    }
}

fn capacity(code: u8) -> Capacity {
    match code % 4 {
        0 => Capacity::Zero,
        1 => Capacity::Bounded(1),
        2 => Capacity::Bounded(2),
        _ => Capacity::Unbounded,
    }
}

fn policy(code: u8) -> OnFull {
    match code {
        0 | 1 => OnFull::Block,
        2 => OnFull::Fail,
        3 => OnFull::DropNewest,
        4 => OnFull::DropOldest,
        _ => OnFull::Timeout(ms(1)),
    }
}

fn wait_of(code: u8) -> Wait {
    match code {
        0 => Wait::Forever,
        1 => Wait::NoWait,
        _ => Wait::For(ms(1)),
    }
}

/// A generated process as a machine.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct Prog {
    ops: Arc<Vec<MOp>>,
    pc: usize,
    server: bool,
    /// Per port: this process's receive (or mailbox) name.
    own: Vec<Option<PortName>>,
    /// Per port: its send (or mailbox) name.
    send: Vec<Option<PortName>>,
    /// Mailboxes still to open: (port, label).
    to_open: Vec<(usize, String)>,
    last: Option<u64>,
    /// What it saw (not kept by a server, whose loop must close).
    log: Vec<String>,
}

impl Prog {
    fn note(&mut self, s: String) {
        if !self.server {
            self.log.push(s);
        }
    }
    fn sent(&mut self, r: Result<Sent, SendError>) {
        let r = r.map_err(|e| e.kind());
        match self.ops[self.pc] {
            MOp::Send { port, value, .. } => self.note(format!("s{port}:{value}:{r:?}")),
            // A guarded choice's blocking send (its last arm).
            _ => self.note(format!("g:s:{r:?}")),
        }
    }
    fn received(&mut self, r: Result<Message, ReceiveError>) {
        match r {
            Ok(m) => {
                self.last = m.as_u64();
                let from = self.own.iter().position(|n| *n == m.received_on());
                self.note(format!("r{from:?}:{:?}", self.last));
            }
            Err(e) => self.note(format!("r:{e:?}")),
        }
    }
    /// After an operation: the next, exiting in the same step after the last.
    fn advance(&mut self) -> Step {
        self.pc += 1;
        if self.pc == self.ops.len() {
            if self.server {
                self.pc = 0;
            } else {
                return Step::Exit(Ok(()));
            }
        }
        Step::Yield
    }
}

impl Machine for Prog {
    fn step<C: Ctx<Self>>(&mut self, cx: &mut C, resumed: Option<WaitOutcome>) -> Step {
        match resumed {
            Some(WaitOutcome::Sent(r)) => {
                self.sent(r);
                return self.advance();
            }
            Some(WaitOutcome::Received(r)) => {
                self.received(r);
                return self.advance();
            }
            None => {}
        }
        if let Some((port, label)) = self.to_open.pop() {
            // Through `Ctx::mailbox_open`: the checker counts the open as
            // a local step (nobody here may destroy a mailbox), which the
            // soundness tests then check against the full search.
            return match cx.mailbox_open(&label) {
                Ok(name) => {
                    self.own[port] = Some(name);
                    self.send[port] = Some(name);
                    Step::Yield
                }
                Err(e) => Step::Exit(Err(e.into())),
            };
        }
        if self.pc == self.ops.len() {
            return Step::Exit(Ok(()));
        }
        match self.ops[self.pc].clone() {
            MOp::Send {
                port,
                value,
                policy: code,
            } => {
                let Some(to) = self.send[port] else {
                    return self.advance();
                };
                match cx.send(
                    Destination::Name(to),
                    Message::from_u64(1, value),
                    policy(code),
                ) {
                    COp::Done(r) => {
                        self.sent(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Receive { port, wait } => {
                let Some(from) = self.own[port] else {
                    return self.advance();
                };
                match cx.receive(Source::Name(from), wait_of(wait)) {
                    COp::Done(r) => {
                        self.received(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Select { wait } => {
                let names: Vec<PortName> = self.own.iter().flatten().copied().collect();
                if names.is_empty() {
                    return self.advance();
                }
                match cx.receive(Source::Any(&names), wait_of(wait)) {
                    COp::Done(r) => {
                        self.received(r);
                        self.advance()
                    }
                    COp::Pending => Step::Wait,
                }
            }
            MOp::Guarded(arms) => {
                let Some(&(last_port, last_send)) = arms.last() else {
                    return self.advance();
                };
                for &(port, send) in &arms {
                    let r = match send {
                        Some(value) => {
                            let Some(to) = self.send[port] else { continue };
                            let m = Message::from_u64(1, value);
                            match cx.send(Destination::Name(to), m, OnFull::Fail) {
                                COp::Done(Err(e)) if e.kind() == mkipc_kernel::SendErrorKind::Full => continue,
                                COp::Done(r) => {
                                    self.note(format!("g{port}:s:{:?}", r.map_err(|e| e.kind())));
                                    return self.advance();
                                }
                                COp::Pending => unreachable!("a try does not wait"),
                            }
                        }
                        None => {
                            let Some(from) = self.own[port] else { continue };
                            match cx.receive(Source::Name(from), Wait::NoWait) {
                                COp::Done(Err(ReceiveError::Empty)) => continue,
                                COp::Done(r) => r,
                                COp::Pending => unreachable!("a try does not wait"),
                            }
                        }
                    };
                    self.received(r);
                    return self.advance();
                }
                // No arm went: the last one's plain operation.
                match last_send {
                    Some(value) => {
                        let Some(to) = self.send[last_port] else {
                            return self.advance();
                        };
                        let m = Message::from_u64(1, value);
                        match cx.send(Destination::Name(to), m, OnFull::Block) {
                            COp::Done(r) => {
                                self.sent(r);
                                self.advance()
                            }
                            COp::Pending => Step::Wait,
                        }
                    }
                    None => {
                        let Some(from) = self.own[last_port] else {
                            return self.advance();
                        };
                        match cx.receive(Source::Name(from), Wait::Forever) {
                            COp::Done(r) => {
                                self.received(r);
                                self.advance()
                            }
                            COp::Pending => Step::Wait,
                        }
                    }
                }
            }
            MOp::Yield => self.advance(),
            MOp::Sleep(t) => {
                self.pc += 1;
                if self.pc == self.ops.len() && self.server {
                    self.pc = 0;
                }
                Step::Pause {
                    time: Dist::Fixed(ms(t)),
                    busy: false,
                }
            }
            MOp::FailIfGot(v) => {
                if self.last == Some(v) {
                    Step::Exit(Err(ProcError::msg(format!("got {v}"))))
                } else {
                    self.advance()
                }
            }
            MOp::PanicIfGot(v) => {
                if self.last == Some(v) {
                    panic!("got {v}");
                }
                self.advance()
            }
            MOp::Choose(n) => {
                let c = cx.choose(usize::from(n));
                self.last = Some(c as u64);
                self.note(format!("c{c}"));
                self.advance()
            }
        }
    }

    fn is_server(&self) -> bool {
        self.server
    }

    /// A select over its own ports is the only receive from several
    /// sources: from the operations left, as below.
    fn may_compare_arrivals(&self) -> bool {
        let left = if self.server {
            &self.ops[..]
        } else {
            &self.ops[self.pc.min(self.ops.len())..]
        };
        left.iter().any(|o| matches!(o, MOp::Select { .. }))
    }

    /// From the operations left (all of them for a server, which loops):
    /// the declaration the reduction relies on, exactly.
    fn may_use_mailbox(&self, mailbox: &str, how: MailboxUse) -> bool {
        let Some(port) = mailbox
            .strip_prefix('p')
            .and_then(|i| i.parse::<usize>().ok())
        else {
            return true;
        };
        let left = if self.server {
            &self.ops[..]
        } else {
            &self.ops[self.pc.min(self.ops.len())..]
        };
        left.iter().any(|o| match *o {
            MOp::Send {
                port: p,
                policy: code,
                ..
            } if p == port => {
                how == match policy(code) {
                    OnFull::Block => MailboxUse::Send,
                    OnFull::DropOldest => MailboxUse::Other,
                    OnFull::Fail | OnFull::DropNewest | OnFull::Timeout(_) => MailboxUse::TrySend,
                }
            }
            MOp::Receive { port: p, wait } if p == port => {
                how == if wait == 0 {
                    MailboxUse::Receive
                } else {
                    MailboxUse::Other
                }
            }
            MOp::Select { wait } => {
                how == MailboxUse::Select || (wait != 0 && how == MailboxUse::Other)
            }
            MOp::Guarded(ref arms) => arms.iter().enumerate().any(|(k, &(p, send))| {
                let last = k + 1 == arms.len();
                p == port
                    && match send {
                        Some(_) => how == MailboxUse::TrySend || (last && how == MailboxUse::Send),
                        // The last arm's blocking receive waits eagerly
                        // after tries it does not cover (`Missed::covered_by`):
                        // with other arms, `Other` too.
                        None => {
                            (how == MailboxUse::Other && arms.len() > 1)
                                || (last && how == MailboxUse::Receive)
                        }
                    }
            }),
            _ => false,
        })
    }
}

impl Encode for Prog {
    fn encode(&self, e: &mut Encoder<'_>) {
        e.u64(self.pc as u64);
        for n in self.own.iter().chain(&self.send) {
            match n {
                Some(n) => e.name(*n),
                None => e.u64(u64::MAX),
            }
        }
        e.value(&self.to_open.len());
        e.value(&self.last);
        e.value(&self.log);
    }
}

/// One operation on `ports` ports; with `choices`, also choices and
/// guarded choices (which only the checker's atomic steps run as one step:
/// the simulator's explorer, which the plain models are compared with,
/// takes a scheduling point at each try).
fn op(ports: usize, choices: bool) -> impl Strategy<Value = MOp> {
    let choose = if choices { 1 } else { 0 };
    prop_oneof![
        4 => (0..ports, 0..3u64, 0..6u8).prop_map(|(port, value, policy)| MOp::Send { port, value, policy }),
        3 => (0..ports, 0..3u8).prop_map(|(port, wait)| MOp::Receive { port, wait }),
        1 => (0..3u8).prop_map(|wait| MOp::Select { wait }),
        choose => guarded(ports),
        1 => Just(MOp::Yield),
        1 => (1..3u64).prop_map(MOp::Sleep),
        1 => (0..3u64).prop_map(MOp::FailIfGot),
        1 => (0..3u64).prop_map(MOp::PanicIfGot),
        choose => (2..=3u8).prop_map(MOp::Choose),
    ]
}

fn model() -> impl Strategy<Value = Model> {
    model_of(5, 0..11u8, false)
}

/// Models for the reduced-against-unreduced comparison: more operations,
/// mostly mailboxes (where the reduction applies), choices.
fn por_model() -> impl Strategy<Value = Model> {
    prop_oneof![
        1 => model_of(8, 0..12u8, true),
        2 => model_of(8, 8..12u8, true),
    ]
}

/// Operations for [`shared_model`]: mostly plain sends and receives (the
/// ones stubborn sets are made of), some selects, some of every other kind.
fn shared_op(ports: usize) -> impl Strategy<Value = MOp> {
    prop_oneof![
        5 => (0..ports, 0..3u64).prop_map(|(port, value)| MOp::Send { port, value, policy: 0 }),
        1 => (0..ports, 0..3u64, 2..6u8).prop_map(|(port, value, policy)| MOp::Send { port, value, policy }),
        4 => (0..ports).prop_map(|port| MOp::Receive { port, wait: 0 }),
        1 => (0..ports, 1..3u8).prop_map(|(port, wait)| MOp::Receive { port, wait }),
        1 => (0..2u8).prop_map(|wait| MOp::Select { wait: wait * 2 }),
        2 => guarded(ports),
        1 => Just(MOp::Yield),
        1 => (0..3u64).prop_map(MOp::FailIfGot),
    ]
}

/// A guarded choice of one to three arms on `ports` ports.
fn guarded(ports: usize) -> impl Strategy<Value = MOp> {
    prop::collection::vec((0..ports, prop::option::of(0..3u64)), 1..=3).prop_map(MOp::Guarded)
}

/// Models where several processes share one or two mailboxes (rival
/// senders and receivers, selects over them): what the stubborn sets of
/// the reduction are made for.
fn shared_model() -> impl Strategy<Value = Model> {
    (3..=4usize, 1..=2usize, any::<bool>())
        .prop_flat_map(|(procs, ports, server)| {
            (
                prop::collection::vec(8..12u8, ports),
                prop::collection::vec(prop::collection::vec(shared_op(ports), 1..=3), procs),
                Just(server),
            )
        })
        .prop_map(|(ports, mut procs, server)| {
            if server {
                // As `model_of`: a server's loop starts with a blocking
                // receive and sends to no mailbox (it would feed itself).
                procs[0].insert(0, MOp::Receive { port: 0, wait: 0 });
                procs[0].retain(|o| match o {
                    MOp::Receive { wait, .. } => *wait == 0,
                    MOp::Send { .. } | MOp::Select { .. } | MOp::Guarded(_) | MOp::Sleep(_) => false,
                    _ => true,
                });
            }
            Model {
                ports,
                procs,
                server,
            }
        })
}

/// Random models of `ops` operations in all (about), capacity codes from
/// `codes`, with choices or not.
fn model_of(ops: usize, codes: std::ops::Range<u8>, choices: bool) -> impl Strategy<Value = Model> {
    (2..=4usize, 1..=3usize, any::<bool>())
        .prop_flat_map(move |(procs, ports, server)| {
            let per = (ops / procs).max(1);
            (
                prop::collection::vec(codes.clone(), ports),
                prop::collection::vec(prop::collection::vec(op(ports, choices), 1..=per), procs),
                Just(server),
            )
        })
        .prop_map(|(ports, mut procs, server)| {
            if server {
                // A server starts each round with a blocking receive on its
                // first port, so its loop waits for the finite input.
                procs[0].insert(0, MOp::Receive { port: 0, wait: 0 });
                // It sends only to ports (not mailboxes, which it may read
                // itself: a loop feeding itself would never end).
                let mailbox = |p: usize| ports[p] >= 8;
                procs[0].retain(|o| match o {
                    MOp::Receive { wait, .. } => *wait == 0,
                    MOp::Send { port, .. } => !mailbox(*port),
                    MOp::Select { .. } | MOp::Guarded(_) | MOp::Sleep(_) => false,
                    _ => true,
                });
            }
            Model {
                ports,
                procs,
                server,
            }
        })
}

/// The rights and machine of process `me`: own ports' receive rights
/// first, then send rights to everyone else's.
fn plan(
    m: &Model,
    me: usize,
    ports: &[PortName],
) -> (
    Vec<mkipc_kernel::CarriedRight>,
    impl Fn(&[mkipc_kernel::CarriedRight]) -> Prog,
) {
    let n = m.procs.len();
    let mailbox = |i: usize| m.ports[i] >= 8;
    let mut inherit = Vec::new();
    let mut own_at = vec![None; ports.len()];
    let mut send_at = vec![None; ports.len()];
    for (i, &p) in ports.iter().enumerate() {
        if i % n == me && !mailbox(i) {
            own_at[i] = Some(inherit.len());
            inherit.push(Inherit::receive(p));
        }
    }
    for (i, &p) in ports.iter().enumerate() {
        if i % n != me && !mailbox(i) {
            send_at[i] = Some(inherit.len());
            inherit.push(Inherit::send(p));
        }
    }
    let to_open: Vec<(usize, String)> = (0..ports.len())
        .filter(|&i| mailbox(i))
        .map(|i| (i, format!("p{i}")))
        .rev()
        .collect();
    let ops = Arc::new(m.procs[me].clone());
    let server = m.server && me == 0;
    let make = move |names: &[mkipc_kernel::CarriedRight]| Prog {
        ops: Arc::clone(&ops),
        pc: 0,
        server,
        own: own_at.iter().map(|k| k.map(|k| names[k].name)).collect(),
        send: send_at.iter().map(|k| k.map(|k| names[k].name)).collect(),
        to_open: to_open.clone(),
        last: None,
        log: Vec::new(),
    };
    (inherit, make)
}

fn status_text(s: &ExitStatus) -> String {
    match s {
        ExitStatus::Panicked(_) => "panicked".into(),
        s => format!("{s:?}"),
    }
}

fn kind(r: Option<&FailureReason>) -> String {
    match r {
        None => "ok".into(),
        Some(FailureReason::Deadlock(_)) => "deadlock".into(),
        Some(FailureReason::Panicked { proc, message }) => format!("panic {proc} {message}"),
        Some(FailureReason::ProcessFailed { proc, error }) => format!("failed {proc} {error}"),
        Some(FailureReason::FinalCheck { name, .. }) => format!("check {name}"),
        Some(other) => format!("other {other}"),
    }
}
