//! Simulator benchmarks: scheduled IPC operations per second, against floors
//! measured in the same run, and the memory of an idle simulated process.
//!
//! * `pingpong/sim` — two simulated processes bounce a message over two
//!   `Bounded(1)` ports in deterministic mode (random scheduler, trace off).
//!   One element = one scheduled IPC operation (a send or a receive).
//! * `pingpong/sim_traced` — the same with the trace recorded.
//! * `pingpong/machines` — the same ping-pong with two stackless machines
//!   (`workload::ping_pong_machines`: no coroutines), the same run.
//! * `pingpong/async` — the same ping-pong with two async processes
//!   (`workload::ping_pong_async`: futures the loop polls), the same run.
//! * `floor/kernel_only` — the same four kernel operations per round trip on
//!   the non-blocking core from one thread, no scheduling: the IPC cost.
//! * `floor/coroutine_switch` — two coroutines on pooled stacks taking turns
//!   through a ready queue, no IPC at all: the scheduling cost.
//! * `explore/executions` — whole runs per second of a small model (a
//!   producer sending 10 messages through a `Bounded(2)` port to a consumer),
//!   each run of a seed and checked for leaks, as `Explorer::seeds` does.
//!
//! * `peer` (printed, not criterion) — the same ping-pong against NeXosim's
//!   equivalent (two models exchanging a counter through their output
//!   ports, one message per model step, on its single-threaded executor), in
//!   interleaved batches of the same run: ops/s of each and the ratio
//!   mkipc/NeXosim, median/min/max over the batches. A NeXosim message is
//!   counted as two operations (a send and a receive), as a mkipc round trip
//!   of two messages is four. Run it pinned (`taskset -c 0 cargo bench ...`)
//!   and not; the line says which. Each figure is given by wall time and
//!   by the thread's CPU time (`/proc/thread-self/schedstat`), which other
//!   jobs on a loaded machine disturb less.
//! * `peer explore` (printed) — seeded exploration of the 10-message
//!   producer/consumer (`explore/executions`) against shuttle's
//!   `check_random` on the same model (a producer thread sending 10 `u64`s
//!   through a `sync_channel(2)` to a consumer: the test's main thread, or
//!   a third thread the main thread spawns and joins, as mkipc's setup task
//!   and two processes), in interleaved batches: executions per second of
//!   each and the ratio mkipc/shuttle, median/min/max, by wall and CPU
//!   time. `MKIPC_BENCH_EXPLORE_ONLY=1` runs only this comparison (no
//!   memory, no ping-pong, no criterion groups), e.g. to profile it;
//!   `MKIPC_BENCH_EXPLORE_RUNS` sets the executions per batch (20,000: make
//!   it larger where the CPU clock moves by 4 ms ticks).
//!   `MKIPC_BENCH_PINGPONG_ONLY=1` runs only the `peer` ping-pong
//!   comparison (no memory, no exploration, no criterion groups), e.g. to
//!   profile it or to alternate two binaries quickly;
//!   `MKIPC_BENCH_ROUNDS` sets its round trips per batch (250,000).
//!
//! Before the timings it prints the resident memory per idle process, for
//! closures (coroutines), stackless machines and async processes, with 100,000 processes
//! parked in a receive on their own port (`MKIPC_BENCH_IDLE=100000,1000000`
//! for other sizes), each size and kind measured in a fresh process, with
//! the time to create them and the time until all are parked; set `MKIPC_BENCH_NO_MEMORY=1` to skip
//! that (e.g. when profiling).
//!
//! `MKIPC_BENCH_MANY=50000:100` runs only a large run instead (no memory,
//! no ping-pong, no criterion groups): that many pairs of async processes
//! playing ping-pong that many rounds on two `Bounded(1)` ports of their
//! own, the ponger working 0-2 ms of virtual time before each answer, so
//! 100,000 processes exchange 10,000,000 messages; it prints the time to
//! create them, the run's wall and CPU time, and the peak resident memory
//! (`VmHWM`). `examples/many_processes.rs` is the same run with scenario
//! scripts.
//!
//! `cargo bench -p mkipc-sim --bench sim`

// `criterion_group!` generates an undocumented public function.
#![allow(missing_docs)]

use std::cell::Cell;
use std::collections::VecDeque;
use std::hint::black_box;
use std::rc::Rc;
use std::sync::Arc;

use corosensei::{Coroutine, CoroutineResult};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use mkipc_kernel::runtime::{Begin, Destination, Source, Wake, Waker};
use mkipc_kernel::{Capacity, Ipc, Kernel, Message, OnFull};
use mkipc_sim::stack::StackPool;
use mkipc_sim::{ms, workload, Explorer, Inherit, Sim};

const ROUND_TRIPS: u64 = 10_000;
const OPS: u64 = ROUND_TRIPS * workload::PING_PONG_OPS_PER_ROUND;

fn pingpong(rounds: u64, trace: bool) -> u64 {
    let mut sim = Sim::builder().seed(7).trace(trace).build();
    workload::ping_pong(&mut sim, rounds).unwrap();
    sim.run().unwrap().steps
}

/// The same ping-pong with two stackless machines (no coroutines).
fn pingpong_machines(rounds: u64, trace: bool) -> u64 {
    let mut sim = Sim::builder().seed(7).trace(trace).build();
    workload::ping_pong_machines(&mut sim, rounds).unwrap();
    sim.run().unwrap().steps
}

struct NoWake;
impl Wake for NoWake {
    fn wake(&self) {}
}

fn kernel_only(rounds: u64) {
    let kernel = Kernel::new();
    let a = kernel.create_task();
    let ping = kernel.port_allocate(a, Capacity::Bounded(1)).unwrap();
    let pong = kernel.port_allocate(a, Capacity::Bounded(1)).unwrap();
    let waker: Waker = Arc::new(NoWake).into();
    let waker = || waker.clone();
    for i in 0..rounds {
        for port in [ping, pong] {
            let sent = kernel.send_begin(
                a,
                Destination::Name(port),
                Message::from_u64(1, i),
                OnFull::Fail,
                &waker,
            );
            assert!(matches!(sent, Begin::Done(Ok(_))));
            let got = kernel.receive_begin(a, Source::Name(port), false, &waker);
            black_box(matches!(got, Begin::Done(Ok(_))));
        }
    }
    kernel.exit_task(a);
}

fn coroutine_switch(switches: u64) {
    let pool = StackPool::new(64 * 1024);
    let mut cos: Vec<Coroutine<(), (), (), _>> = (0..2)
        .map(|_| {
            Coroutine::with_stack(
                pool.take().unwrap(),
                move |y: &corosensei::Yielder<(), ()>, ()| {
                    for _ in 0..switches / 2 {
                        y.suspend(());
                    }
                },
            )
        })
        .collect();
    let mut ready: VecDeque<usize> = VecDeque::from([0, 1]);
    while let Some(i) = ready.pop_front() {
        if let CoroutineResult::Yield(()) = cos[i].resume(()) {
            ready.push_back(i);
        }
    }
}

/// A producer sends 10 messages through a `Bounded(2)` port to a consumer.
fn ten_messages(sim: &mut Sim) {
    let port = sim.port("q", Capacity::Bounded(2)).unwrap();
    sim.spawn_with("producer", &[Inherit::send(port)], |p| {
        for i in 0..10 {
            p.send(p.right(0), Message::from_u64(1, i))?;
        }
        Ok(())
    })
    .unwrap();
    sim.spawn_with("consumer", &[Inherit::receive(port)], |p| {
        for _ in 0..10 {
            p.receive(p.right(0))?;
        }
        Ok(())
    })
    .unwrap();
}

/// The same model under shuttle's random scheduler: `runs` executions.
/// With `spawn_both`, the test's main thread spawns the producer and the
/// consumer and joins them (three threads, as mkipc's setup task and two
/// processes); otherwise the main thread is the consumer (two threads).
fn shuttle_ten_messages(runs: u64, spawn_both: bool) {
    use shuttle::sync::mpsc::sync_channel;
    shuttle::check_random(
        move || {
            let (tx, rx) = sync_channel::<u64>(2);
            let producer = shuttle::thread::spawn(move || {
                for i in 0..10 {
                    tx.send(i).unwrap();
                }
            });
            let consume = move || {
                for _ in 0..10 {
                    rx.recv().unwrap();
                }
            };
            if spawn_both {
                shuttle::thread::spawn(consume).join().unwrap();
            } else {
                consume();
            }
            producer.join().unwrap();
        },
        runs as usize,
    );
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0)
        * 4096
}

/// The same ping-pong with two async processes (futures, no coroutines).
fn pingpong_async(rounds: u64, trace: bool) -> u64 {
    let mut sim = Sim::builder().seed(7).trace(trace).build();
    workload::ping_pong_async(&mut sim, rounds).unwrap();
    sim.run().unwrap().steps
}

/// An idle process's body: allocates a port, then waits on it for a
/// virtual second, as a machine.
#[derive(Debug)]
struct IdleMachine {
    own: Option<mkipc_kernel::PortName>,
}

impl mkipc_sim::machine::Machine for IdleMachine {
    fn step<C: mkipc_sim::machine::Ctx<Self>>(
        &mut self,
        cx: &mut C,
        resumed: Option<mkipc_kernel::runtime::WaitOutcome>,
    ) -> mkipc_sim::machine::Step {
        use mkipc_sim::machine::{Op, Step};
        if resumed.is_some() {
            return Step::Exit(Ok(()));
        }
        let own = match self.own {
            Some(own) => own,
            None => match cx.ipc().port_allocate(Capacity::Bounded(1)) {
                Ok(own) => {
                    self.own = Some(own);
                    own
                }
                Err(e) => return Step::Exit(Err(e.into())),
            },
        };
        let wait = mkipc_kernel::Wait::For(std::time::Duration::from_secs(1));
        match cx.receive(Source::Name(own), wait) {
            Op::Done(_) => Step::Exit(Ok(())),
            Op::Pending => Step::Wait,
        }
    }
}

/// Resident bytes per idle process, the seconds it took to create them
/// (the spawn calls) and the seconds until all are parked, by wall clock
/// and by this process's CPU time (a loaded machine makes the wall clock
/// wait for a CPU): N processes
/// (closures on coroutines, stackless machines, or async processes) each
/// allocate a port and block receiving on it (timing out after a virtual
/// second); a reporter measures at 1 ms, when all are parked.
fn idle_memory(n: u64, kind: &str) -> (f64, [f64; 2], [f64; 2]) {
    use mkipc_sim::AsyncIpc;
    let start = std::time::Instant::now();
    let cpu_start = cpu_secs();
    let mut sim = Sim::builder().seed(1).trace(false).build();
    let before = rss_bytes();
    for _ in 0..n {
        if kind == "machine" {
            sim.spawn_machine("idle", &[], |_| IdleMachine { own: None })
                .unwrap();
        } else if kind == "async" {
            sim.spawn_async("idle", &[], |p| async move {
                let own = p.port_allocate(Capacity::Bounded(1)).await?;
                let _ = p
                    .receive_timeout(own, std::time::Duration::from_secs(1))
                    .await;
                Ok(())
            })
            .unwrap();
        } else {
            sim.spawn("idle", |p| {
                let own = p.port_allocate(Capacity::Bounded(1))?;
                let _ = p.receive_timeout(own, std::time::Duration::from_secs(1));
                Ok(())
            });
        }
    }
    let created = [start.elapsed().as_secs_f64(), cpu_secs() - cpu_start];
    let idle = Rc::new(Cell::new((0u64, [0f64; 2])));
    let idle2 = Rc::clone(&idle);
    sim.spawn("reporter", move |p| {
        p.sleep(ms(1));
        idle2.set((
            rss_bytes(),
            [start.elapsed().as_secs_f64(), cpu_secs() - cpu_start],
        ));
        Ok(())
    });
    let report = sim.run().unwrap();
    assert!(report.kernel_is_clean());
    let (rss, parked) = idle.get();
    (
        rss.saturating_sub(before) as f64 / n as f64,
        created,
        parked,
    )
}

/// Measures [`idle_memory`] in a fresh process (this bench, run again with
/// `MKIPC_BENCH_IDLE_CHILD=kind:n`), so that memory an earlier measurement
/// freed cannot hide part of this one.
fn idle_memory_child(kind: &str, n: u64) -> Option<String> {
    let exe = std::env::current_exe().ok()?;
    let out = std::process::Command::new(exe)
        .env("MKIPC_BENCH_IDLE_CHILD", format!("{kind}:{n}"))
        .output()
        .ok()?;
    String::from_utf8(out.stdout)
        .ok()?
        .lines()
        .find(|l| l.starts_with("idle "))
        .map(str::to_string)
}

/// CPU seconds this process used so far (user + system, from
/// `/proc/self/stat`): creation time on a loaded machine is wall time
/// spent waiting for a CPU too.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command (which is in parentheses): the state
    // (field 3), ..., utime and stime (fields 14 and 15).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    let ticks = field(11) + field(12);
    ticks as f64 / 100.0
}

/// The child's side of [`idle_memory_child`].
fn idle_child(spec: &str) {
    let (kind, n) = spec.split_once(':').unwrap_or(("closure", "100000"));
    let n: u64 = n.parse().unwrap_or(100_000);
    let (bytes, [created, created_cpu], [parked, parked_cpu]) = idle_memory(n, kind);
    println!(
        "idle {kind:<8} {n:>9} processes: {bytes:>6.0} B resident each, created in {created:.2} s ({created_cpu:.2} s CPU), parked in {parked:.2} s ({parked_cpu:.2} s CPU; whole run: {:.2} s CPU)",
        cpu_secs()
    );
}

/// NeXosim's ping-pong: each model's input sends the counter, decremented,
/// to the other model, until it reaches zero.
mod nexo {
    use nexosim::model::Model;
    use nexosim::ports::Output;
    use nexosim::simulation::{Mailbox, SimInit};
    use nexosim::time::MonotonicTime;

    #[derive(Default)]
    pub struct Player {
        pub out: Output<u64>,
    }

    impl Player {
        pub async fn hit(&mut self, left: u64) {
            if left > 0 {
                self.out.send(left - 1).await;
            }
        }
    }

    impl Model for Player {}

    /// Runs `messages` message deliveries; returns nothing.
    pub fn ping_pong(messages: u64) {
        let mut a = Player::default();
        let mut b = Player::default();
        let a_box = Mailbox::new();
        let b_box = Mailbox::new();
        let a_addr = a_box.address();
        a.out.connect(Player::hit, &b_box);
        b.out.connect(Player::hit, &a_box);
        let (mut simu, _) = SimInit::with_num_threads(1)
            .add_model(a, a_box, "a")
            .add_model(b, b_box, "b")
            .init(MonotonicTime::EPOCH)
            .unwrap();
        simu.process_event(Player::hit, messages - 1, &a_addr)
            .unwrap();
    }
}

/// Which CPUs this process may run on (`Cpus_allowed_list`).
fn cpus_allowed() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

fn stats(mut v: Vec<f64>) -> (f64, f64, f64) {
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// The CPU time this thread has run, in seconds (`/proc/thread-self/schedstat`,
/// nanoseconds): unlike wall time, not the time spent waiting for a CPU
/// on a machine other jobs load. The kernel updates it at scheduler ticks
/// and switches, so a timed batch should last ~100 ms or more.
fn thread_cpu_secs() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(f64::NAN, |ns| ns as f64 / 1e9)
}

/// Ops per second of one timed call doing `ops` operations: by wall time
/// and by the thread's CPU time.
fn rate(ops: u64, f: impl FnOnce()) -> (f64, f64) {
    let cpu = thread_cpu_secs();
    let t = std::time::Instant::now();
    f();
    let wall = t.elapsed().as_secs_f64();
    (ops as f64 / wall, ops as f64 / (thread_cpu_secs() - cpu))
}

/// The peer comparison (module docs), in `batches` interleaved batches.
fn peer_comparison(batches: usize) {
    let rounds = std::env::var("MKIPC_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250_000u64)
        .max(10);
    let ops = rounds * workload::PING_PONG_OPS_PER_ROUND;
    // NeXosim: 2 messages per round trip, 2 operations per message.
    let messages = rounds * 2;
    // Warm up once each.
    pingpong(rounds / 10, false);
    nexo::ping_pong(messages / 10);
    pingpong_machines(rounds / 10, false);
    pingpong_async(rounds / 10, false);
    let (mut sim, mut traced, mut peer) = (Vec::new(), Vec::new(), Vec::new());
    let (mut machines, mut machines_traced) = (Vec::new(), Vec::new());
    let (mut asyncs, mut asyncs_traced) = (Vec::new(), Vec::new());
    for _ in 0..batches {
        sim.push(rate(ops, || {
            black_box(pingpong(rounds, false));
        }));
        traced.push(rate(ops, || {
            black_box(pingpong(rounds, true));
        }));
        machines.push(rate(ops, || {
            black_box(pingpong_machines(rounds, false));
        }));
        machines_traced.push(rate(ops, || {
            black_box(pingpong_machines(rounds, true));
        }));
        asyncs.push(rate(ops, || {
            black_box(pingpong_async(rounds, false));
        }));
        asyncs_traced.push(rate(ops, || {
            black_box(pingpong_async(rounds, true));
        }));
        peer.push(rate(messages * 2, || nexo::ping_pong(messages)));
    }
    println!(
        "peer ping-pong, {batches} batches of {rounds} round trips, CPUs allowed: {}",
        cpus_allowed()
    );
    let m = |v: f64| v / 1e6;
    // By wall time, then by CPU time (what a loaded machine disturbs less).
    for (clock, pick) in [
        ("wall", (|r: &(f64, f64)| r.0) as fn(&(f64, f64)) -> f64),
        ("cpu", |r: &(f64, f64)| r.1),
    ] {
        let of = |v: &[(f64, f64)]| v.iter().map(pick).collect::<Vec<f64>>();
        let peer = of(&peer);
        println!("  by {clock} time:");
        for (name, v) in [
            ("mkipc sim", &sim),
            ("mkipc sim traced", &traced),
            ("mkipc machines", &machines),
            ("mkipc machines tr.", &machines_traced),
            ("mkipc async", &asyncs),
            ("mkipc async traced", &asyncs_traced),
        ] {
            let v = of(v);
            let (med, lo, hi) = stats(v.clone());
            let (rmed, rlo, rhi) = stats(v.iter().zip(&peer).map(|(x, y)| x / y).collect());
            println!(
                "    {name:<18} {:>6.2} M ops/s (min {:.2}, max {:.2}); /NeXosim {rmed:.2}x (min {rlo:.2}, max {rhi:.2})",
                m(med),
                m(lo),
                m(hi)
            );
        }
        let (med, lo, hi) = stats(peer.clone());
        println!(
            "    {:<18} {:>6.2} M ops/s (min {:.2}, max {:.2})",
            "NeXosim",
            m(med),
            m(lo),
            m(hi)
        );
    }
    // Async processes beside closures and machines, batch by batch, by CPU time.
    let beside = |a: &[(f64, f64)], b: &[(f64, f64)]| {
        stats(a.iter().zip(b).map(|(x, y)| x.1 / y.1).collect())
    };
    for (name, a, b) in [
        ("async/closures", &asyncs, &sim),
        ("async/machines", &asyncs, &machines),
        ("async/closures traced", &asyncs_traced, &traced),
    ] {
        let (med, lo, hi) = beside(a, b);
        println!("  ratio {name:<22} {med:.2}x (min {lo:.2}, max {hi:.2})");
    }
}

/// Seeded exploration against shuttle (module docs), in `batches`
/// interleaved batches.
fn explore_comparison(batches: usize) {
    // Enough runs for ~100 ms a batch (the CPU clock moves by scheduler
    // ticks, 4 ms on some kernels: `MKIPC_BENCH_EXPLORE_RUNS=100000` makes
    // a tick 1% of a batch instead of 6%).
    let runs = std::env::var("MKIPC_BENCH_EXPLORE_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_000u64)
        .max(10);
    let mkipc = || {
        let outcome = Explorer::new().seeds(0..runs).run(ten_messages);
        assert!(outcome.failure.is_none());
        assert_eq!(outcome.runs, runs);
    };
    // Warm up once each.
    Explorer::new()
        .seeds(0..runs / 10)
        .run(ten_messages)
        .assert_ok();
    shuttle_ten_messages(runs / 10, false);
    shuttle_ten_messages(runs / 10, true);
    let (mut ours, mut two, mut three) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..batches {
        ours.push(rate(runs, mkipc));
        two.push(rate(runs, || shuttle_ten_messages(runs, false)));
        three.push(rate(runs, || shuttle_ten_messages(runs, true)));
    }
    println!(
        "peer explore, {batches} batches of {runs} executions of the 10-message producer/consumer, CPUs allowed: {}",
        cpus_allowed()
    );
    let k = |v: f64| v / 1e3;
    for (clock, pick) in [
        ("wall", (|r: &(f64, f64)| r.0) as fn(&(f64, f64)) -> f64),
        ("cpu", |r: &(f64, f64)| r.1),
    ] {
        let of = |v: &[(f64, f64)]| v.iter().map(pick).collect::<Vec<f64>>();
        let ours = of(&ours);
        let (med, lo, hi) = stats(ours.clone());
        println!(
            "  by {clock} time: {:<20} {:>6.1} k executions/s (min {:.1}, max {:.1})",
            "explore (seeds)",
            k(med),
            k(lo),
            k(hi)
        );
        for (name, peer) in [("shuttle, 2 threads", &two), ("shuttle, 3 threads", &three)] {
            let peer = of(peer);
            let (med, lo, hi) = stats(peer.clone());
            let (rmed, rlo, rhi) = stats(ours.iter().zip(&peer).map(|(x, y)| x / y).collect());
            println!(
                "  by {clock} time: {name:<20} {:>6.1} k executions/s (min {:.1}, max {:.1}); mkipc/shuttle {rmed:.2}x (min {rlo:.2}, max {rhi:.2})",
                k(med),
                k(lo),
                k(hi)
            );
        }
    }
}

/// A line of `/proc/self/status` in bytes (`VmHWM`, `VmRSS`).
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024
}

/// `MKIPC_BENCH_MANY=pairs:rounds` (module docs): `pairs` pingers and
/// `pairs` pongers, async, each pair on two ports of its own made by the
/// setup task (not `Sim::port`, which watches each port for the report).
fn many_processes(spec: &str) {
    use mkipc_kernel::{CarriedRight, Disposition};
    use mkipc_sim::time::Dist;
    use mkipc_sim::AsyncIpc;
    let (pairs, rounds) = spec.split_once(':').unwrap_or(("50000", "100"));
    let pairs: u64 = pairs.parse().unwrap_or(50_000);
    let rounds: u64 = rounds.parse().unwrap_or(100);
    let start = std::time::Instant::now();
    let cpu_start = cpu_secs();
    // About two scheduling steps per message, and some: the default step
    // limit is for livelocks in small models.
    let steps = 8 * pairs * rounds + 1_000_000;
    let mut sim = Sim::builder().seed(1).trace(false).max_steps(steps).build();
    let init = sim.init_pid();
    for _ in 0..pairs {
        let k = sim.kernel();
        let ping = k.port_allocate(init, Capacity::Bounded(1)).unwrap();
        let pong = k.port_allocate(init, Capacity::Bounded(1)).unwrap();
        k.make_right(init, pong, Disposition::MakeSend).unwrap();
        let pinger = [Inherit::make_send(ping), Inherit::receive(pong)];
        sim.spawn_async("pinger", &pinger, move |p| async move {
            let (ping, pong) = (p.inherited()[0].name, p.inherited()[1].name);
            for i in 0..rounds {
                p.send(ping, Message::from_u64(1, i)).await?;
                p.receive(pong).await?;
            }
            Ok(())
        })
        .unwrap();
        let pong_send = CarriedRight {
            name: pong,
            disposition: Disposition::MoveSend,
        };
        let ponger = [Inherit::receive(ping), pong_send];
        sim.spawn_async("ponger", &ponger, move |p| async move {
            let (ping, pong) = (p.inherited()[0].name, p.inherited()[1].name);
            let think = Dist::uniform(ms(0), ms(2));
            for i in 0..rounds {
                p.receive(ping).await?;
                p.work(think).await;
                p.send(pong, Message::from_u64(2, i)).await?;
            }
            Ok(())
        })
        .unwrap();
    }
    let created = start.elapsed().as_secs_f64();
    let created_cpu = cpu_secs() - cpu_start;
    let run_start = std::time::Instant::now();
    let report = sim.run().unwrap();
    let ran = run_start.elapsed().as_secs_f64();
    let ran_cpu = cpu_secs() - cpu_start - created_cpu;
    let summary = report.summary(10);
    println!(
        "many processes: {} async processes, {} messages sent ({} received), {} steps: created in {created:.2} s ({created_cpu:.2} s CPU), run {ran:.2} s ({ran_cpu:.2} s CPU; {:.2} M messages/s of CPU), peak resident {:.0} MiB, kernel clean: {}",
        summary.processes,
        summary.sent,
        summary.received,
        report.steps,
        summary.sent as f64 / ran_cpu.max(1e-9) / 1e6,
        status_bytes("VmHWM:") as f64 / (1u64 << 20) as f64,
        report.kernel_is_clean()
    );
}

fn benches(c: &mut Criterion) {
    if let Ok(spec) = std::env::var("MKIPC_BENCH_IDLE_CHILD") {
        idle_child(&spec);
        std::process::exit(0);
    }
    if let Ok(spec) = std::env::var("MKIPC_BENCH_MANY") {
        many_processes(&spec);
        std::process::exit(0);
    }
    let batches = std::env::var("MKIPC_BENCH_BATCHES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7usize)
        .max(1);
    if std::env::var_os("MKIPC_BENCH_EXPLORE_ONLY").is_some() {
        explore_comparison(batches);
        std::process::exit(0);
    }
    if std::env::var_os("MKIPC_BENCH_PINGPONG_ONLY").is_some() {
        peer_comparison(batches);
        std::process::exit(0);
    }
    if std::env::var_os("MKIPC_BENCH_NO_MEMORY").is_none() {
        // `MKIPC_BENCH_IDLE=100000,1000000`: the sizes measured.
        let sizes = std::env::var("MKIPC_BENCH_IDLE").unwrap_or_else(|_| "100000".into());
        for n in sizes
            .split(',')
            .filter_map(|s| s.trim().parse::<u64>().ok())
        {
            for kind in ["closure", "machine", "async"] {
                match idle_memory_child(kind, n) {
                    Some(line) => println!("{line} (each holding a port)"),
                    None => println!("idle {kind} {n}: the measuring child failed"),
                }
            }
        }
    }
    peer_comparison(batches);
    explore_comparison(batches);
    assert_eq!(pingpong(10, false), pingpong(10, false), "deterministic");

    let mut g = c.benchmark_group("pingpong");
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("sim", |b| b.iter(|| pingpong(ROUND_TRIPS, false)));
    g.bench_function("sim_traced", |b| b.iter(|| pingpong(ROUND_TRIPS, true)));
    g.bench_function("machines", |b| {
        b.iter(|| pingpong_machines(ROUND_TRIPS, false))
    });
    g.bench_function("async", |b| b.iter(|| pingpong_async(ROUND_TRIPS, false)));
    g.finish();

    let mut g = c.benchmark_group("explore");
    g.throughput(Throughput::Elements(100));
    g.bench_function("executions", |b| {
        b.iter(|| {
            let outcome = Explorer::new().seeds(0..100).run(ten_messages);
            assert!(outcome.failure.is_none());
        })
    });
    g.finish();

    let mut g = c.benchmark_group("floor");
    g.throughput(Throughput::Elements(OPS));
    g.bench_function("kernel_only", |b| b.iter(|| kernel_only(ROUND_TRIPS)));
    g.bench_function("coroutine_switch", |b| b.iter(|| coroutine_switch(OPS)));
    g.finish();
}

criterion_group! {
    name = sim;
    config = Criterion::default().sample_size(20).measurement_time(std::time::Duration::from_secs(3));
    targets = benches
}
criterion_main!(sim);
