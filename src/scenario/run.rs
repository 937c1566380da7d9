//! What the simulator and threads backends share: the rights a process
//! starts with, the host a script runs on ([`ProcHost`], a `Ctx` on a
//! [`Proc`]) and small pieces of the summary. The backends themselves are
//! in `super::backend`.

use std::sync::Arc;
use std::time::Duration;

use mkipc_kernel::runtime::{Destination, Source};
use mkipc_kernel::{
    CallError, CarriedRight, Ipc, IpcError, Kernel, Message, OnFull, PortName, ReceiveError,
    SendError, Sent, Wait,
};
use mkipc_sim::machine::{
    receive_blocking, run_blocking, send_blocking, CallStart, Ctx, Machine, Op as MachineOp,
};
use mkipc_sim::trace::{EventKind, Target};
use mkipc_sim::{ExitStatus, Inherit, Proc, ProcResult, SimRng};

use super::backend::threads::Watch;
use super::interp::{ScriptMachine, Shared};
use super::record::{self, Recorder};
use super::report::MessageTotals;
use super::Right;

/// The rights a process starts with, as the setup task's names for its ports
/// (the sim and threads runners both hand these to `spawn_with`).
pub(crate) fn inherited_rights(
    p: &super::Process,
    port_names: &[Option<PortName>],
) -> Vec<mkipc_kernel::CarriedRight> {
    p.rights
        .iter()
        .map(|(q, r)| {
            let name = port_names[*q].unwrap_or(PortName::NULL);
            match r {
                Right::Receive => Inherit::receive(name),
                Right::Send => Inherit::send(name),
            }
        })
        .collect()
}

/// The "no message lost" verdict from the run's counters.
pub(crate) fn lost_message(sent: u64, received: u64, dropped: u64) -> Result<(), String> {
    let lost = sent.saturating_sub(received);
    if lost == 0 {
        return Ok(());
    }
    Err(format!(
        "{lost} of {sent} messages were never received ({dropped} dropped by a full queue, {} still queued when their queue died or the run ended)",
        lost.saturating_sub(dropped)
    ))
}

/// The kernel's ids of every port (to find the one just made).
pub(crate) fn port_ids(kernel: &Kernel) -> Vec<u64> {
    kernel
        .queue_stats()
        .into_iter()
        .filter(|q| q.kind == "port")
        .map(|q| q.queue_id)
        .collect()
}

/// A duration in milliseconds.
pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The report's message totals from the run's counters.
pub(crate) fn totals(c: &super::interp::Counters) -> MessageTotals {
    MessageTotals {
        sent: c.sent,
        received: c.received,
        dropped: c.dropped,
        send_failures: c.send_failures,
        lost: c.sent.saturating_sub(c.received),
        incomplete: None,
    }
}

/// The runner of a script on a [`Proc`]: a kernel task on an OS thread
/// (with [`Threads`]), or a simulated process's coroutine (the reference
/// the stackless runs are tested against; the simulator itself steps every
/// script stackless, `backend/sim.rs`). Its operations block
/// (always [`MachineOp::Done`]). On the simulator a script's scheduling
/// points are its operations' own (each `Proc` operation starts with one),
/// as they always were: a [`Step::Yield`](mkipc_sim::machine::Step) after an
/// operation that completed is none (the next operation's point follows),
/// so traces are what they were before scripts became machines
/// (`tests/sim_pins.rs`).
struct ProcHost<'a> {
    p: &'a Proc,
    threads: Option<Threads>,
}

/// What a script's process on the threads backend has besides its `Proc`:
/// pauses the timeout can cut short, the [`Watch`] that spawned scripts are
/// written down in, and its own random durations.
struct Threads {
    shared: Arc<Shared>,
    watch: Arc<Watch>,
    rng: SimRng,
    /// Where its events go, when the run is traced (`super::record`).
    rec: Option<Arc<Recorder>>,
}

/// What every script process of one threaded run shares.
pub(crate) type ThreadRun = (Arc<Shared>, Arc<Watch>, Option<Arc<Recorder>>);

impl ProcHost<'_> {
    /// The recorder, on a traced threads run.
    fn rec(&self) -> Option<&Recorder> {
        self.threads.as_ref().and_then(|t| t.rec.as_deref())
    }
}

impl Ctx<ScriptMachine> for ProcHost<'_> {
    type Ipc = Proc;
    fn ipc(&self) -> &Proc {
        self.p
    }
    fn now(&self) -> Duration {
        self.p.now()
    }
    fn send(
        &mut self,
        dest: Destination,
        msg: Message,
        on_full: OnFull,
    ) -> MachineOp<Result<Sent, SendError>> {
        let Some(rec) = self.rec() else {
            return MachineOp::Done(send_blocking(self.p, dest, msg, on_full));
        };
        let (to, id) = (record::dest_target(dest), msg.id);
        rec.emit(self.p.id(), record::send_started(to, &msg));
        let r = send_blocking(self.p, dest, msg, on_full);
        rec.emit(self.p.id(), record::send_completed(to, id, &r));
        MachineOp::Done(r)
    }
    fn receive(
        &mut self,
        source: Source<'_>,
        wait: Wait,
    ) -> MachineOp<Result<Message, ReceiveError>> {
        let Some(rec) = self.rec() else {
            return MachineOp::Done(receive_blocking(self.p, source, wait));
        };
        let from = record::source_target(&source);
        rec.emit(self.p.id(), EventKind::ReceiveStarted { from });
        let r = receive_blocking(self.p, source, wait);
        rec.emit(
            self.p.id(),
            record::receive_done(from, r.as_ref().map_err(|e| *e)),
        );
        MachineOp::Done(r)
    }
    fn call(&mut self, dest: PortName, msg: Message) -> CallStart {
        // The kernel's own call: one operation, one `call` in the trace.
        let Some(rec) = self.rec() else {
            return CallStart::Done(self.p.call_with(dest, msg, Wait::Forever));
        };
        // Recorded as the simulator records a call: the request's send, then
        // the reply's receive, both addressed to `dest`.
        let (to, id) = (Target::Name(dest), msg.id);
        rec.emit(self.p.id(), record::send_started(to, &msg));
        let r = self.p.call_with(dest, msg, Wait::Forever);
        let (sent, got) = match &r {
            Ok(reply) => (Ok(Sent::Delivered), Ok(reply)),
            Err(CallError::Send(e)) => (
                Err(SendError::new(e.kind(), Message::default())),
                Err(ReceiveError::SourceDead),
            ),
            Err(CallError::Receive(e)) => (Ok(Sent::Delivered), Err(*e)),
            Err(CallError::NoReply) => (Ok(Sent::Delivered), Err(ReceiveError::SourceDead)),
        };
        rec.emit(self.p.id(), record::send_completed(to, id, &sent));
        if sent.is_ok() {
            rec.emit(self.p.id(), record::receive_done(to, got));
        }
        CallStart::Done(r)
    }
    fn choose(&mut self, n: usize) -> usize {
        self.p.choose(n)
    }
    fn mark_valid_end(&mut self, at: bool) {
        if self.threads.is_none() {
            self.p.declare_valid_end(at);
        }
    }
    fn spawn<F>(&mut self, name: &str, inherit: &[CarriedRight], make: F) -> Result<(), IpcError>
    where
        F: FnOnce(&[CarriedRight]) -> ScriptMachine + Send + 'static,
    {
        let threads = self
            .threads
            .as_ref()
            .map(|t| (Arc::clone(&t.shared), Arc::clone(&t.watch), t.rec.clone()));
        self.p
            .spawn(name, inherit, move |p| {
                script_on_proc(p, make(p.inherited()), threads)
            })
            .map(drop)
    }
}

/// The body of a script's process: on the simulator (`threads: None`) or
/// on the threads backend (its run's shared state and watch).
pub(crate) fn script_on_proc(
    p: &Proc,
    mut machine: ScriptMachine,
    threads: Option<ThreadRun>,
) -> ProcResult {
    let threads = threads.map(|(shared, watch, rec)| {
        // Written down before the script's first statement, which checks
        // for a stop: a process the timeout's release misses stops by
        // itself.
        watch.tasks.lock().unwrap_or_else(|p| p.into_inner()).push((
            p.id().0,
            machine.process(),
            p.pid(),
        ));
        machine.count_instance(p.id().0 as usize);
        if let Some(rec) = &rec {
            let name = &shared.scenario.processes[machine.process()].name;
            rec.proc(p.id(), name, p.pid().0);
            rec.emit(p.id(), EventKind::Spawned { parent: None });
        }
        Threads {
            shared,
            watch,
            rng: SimRng::new(u64::from(p.id().0)),
            rec,
        }
    });
    if threads.is_none() {
        if machine.is_server() {
            p.declare_server();
        }
        if machine.expects_error() {
            p.declare_expect_error();
        }
    }
    let mut cx = ProcHost { p, threads };
    let result = run_blocking(&mut machine, &mut cx, |cx, time, busy| {
        match &mut cx.threads {
            Some(t) => {
                let d = time.sample(&mut t.rng);
                if let Some(rec) = &t.rec {
                    let kind = if busy {
                        EventKind::Work { duration: d }
                    } else {
                        EventKind::Sleep { duration: d }
                    };
                    rec.emit(cx.p.id(), kind);
                }
                t.shared.pause(d)
            }
            None if busy => cx.p.work(time),
            None => cx.p.sleep(time),
        }
    });
    if let Some(t) = &cx.threads {
        t.watch.observe();
        if let Some(rec) = &t.rec {
            let scn = &t.shared.scenario;
            for (q, name) in machine.queue_names() {
                rec.label(p.pid().0, name, &scn.queues[q].name);
            }
            let status = match &result {
                Ok(()) => ExitStatus::Exited(0),
                Err(e) => e.status(),
            };
            rec.emit(p.id(), EventKind::Exited { status });
        }
    }
    result
}
