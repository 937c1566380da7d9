//! Kernel ports against crossbeam-channel, in the same run.
//!
//! * SPSC throughput: one thread sends `n` messages through a port, another
//!   receives them; the same with a crossbeam channel of the same capacity
//!   (zero, bounded 16, bounded 1024, unbounded), for 8-byte bodies (a `u64`
//!   on the crossbeam side) and 1 KiB bodies (a `Vec<u8>` on the crossbeam
//!   side: one allocation and copy per message on both sides).
//! * The same with crossbeam carrying the kernel's own `Message`, to separate
//!   the cost of the message representation from the cost of the IPC, and the
//!   unbounded 8-byte case step by step (entry size, message, kernel).
//! * RPC round trip: `call`/`reply` against a ping-pong over two crossbeam
//!   channels (bounded(0) and bounded(1)) and over two capacity-1 mailboxes
//!   made of a `parking_lot` mutex, a `VecDeque` and two condvars (the
//!   project's RPC goal: no slower than that mailbox).
//!
//! glibc heap trimming is turned off for all contenders (see
//! `tame_heap_trimming`; `MKIPC_BENCH_GLIBC_TRIM=default` keeps it). The
//! summary counts minor page faults per 1,000 messages for the kernel and
//! crossbeam, so allocator effects show up beside the ratios.
//!
//! * MPMC: two sending threads and two receiving threads on one port, against
//!   the same on a crossbeam channel (bounded 1024 and unbounded, 8 bytes).
//! * Typed: the 8-byte bounded(1024) and unbounded SPSC rows and both MPMC
//!   rows again with the kernel's typed operations (`send_u64`,
//!   `receive_small`: no `Message` built while the lane is open), against
//!   crossbeam carrying a `u64` and against the kernel's `Message` path, all
//!   three in turn in the same run (rows labelled `... typed`).
//!
//! Criterion prints its own figures; after them a summary table gives the
//! kernel/crossbeam throughput ratio, from batches timed here: each
//! contender runs 7 batches in turn, and each ratio is printed as the median,
//! min and max of the batch-by-batch ratios. The summary runs twice in one
//! run: *split* (threads free to use every CPU the process may use) and
//! *pinned* (every thread on the first of them, as `taskset -c 0`): the
//! bench sets its own CPU affinity, so run it without `taskset` to get both
//! (`MKIPC_BENCH_SUMMARY_ONLY=1 cargo bench -p mkipc-kernel --bench ports`).
//! `MKIPC_BENCH_SUMMARY_ONLY=1` skips the criterion part, `MKIPC_BENCH_NO_SUMMARY=1`
//! the summary (for profiling one case: `--profile-time 5 spsc/unbounded/8B/kernel`).
//! `MKIPC_BENCH_CASES` keeps only the summary rows whose label contains one of
//! its comma-separated words (`MKIPC_BENCH_CASES="spsc bounded1024 8B,spsc unbounded 8B"`;
//! `step` for the unbounded step table, `rpc` for the round trips).

use std::collections::VecDeque;
use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};
use mkipc_kernel::{Capacity, Ipc, Kernel, KernelConfig, Message, PortName, Task};

const SIZES: [usize; 2] = [8, 1024];
const CAPACITIES: [Capacity; 4] = [
    Capacity::Zero,
    Capacity::Bounded(16),
    Capacity::Bounded(1024),
    Capacity::Unbounded,
];

/// A receiving task with a port of the given capacity and a sending task with a send right.
struct KernelPair {
    _kernel: Kernel,
    rx: Task,
    port: PortName,
    tx: Task,
    to_rx: PortName,
}

impl KernelPair {
    fn new(capacity: Capacity) -> KernelPair {
        // Unbounded runs may let the producer run far ahead of the consumer.
        let kernel = Kernel::with_config(KernelConfig {
            queue_memory_limit: 4 << 30,
            ..KernelConfig::default()
        });
        let rx = kernel.spawn_task();
        let port = rx.port_allocate(capacity).unwrap();
        rx.register("rx", port).unwrap();
        let tx = kernel.spawn_task();
        let to_rx = tx.look_up("rx").unwrap();
        KernelPair {
            _kernel: kernel,
            rx,
            port,
            tx,
            to_rx,
        }
    }
}

/// Time to move `n` messages of `size` bytes from one thread to another through a kernel port.
fn kernel_spsc(capacity: Capacity, size: usize, n: u64) -> Duration {
    let p = KernelPair::new(capacity);
    let body = vec![0x5a_u8; size];
    thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(|| {
            for _ in 0..n {
                black_box(p.rx.receive(p.port).unwrap());
            }
        });
        for _ in 0..n {
            p.tx.send(p.to_rx, Message::new(1, &body[..])).unwrap();
        }
        consumer.join().unwrap();
        start.elapsed()
    })
}

/// The same with the typed operations (`send_u64`, `receive_small`), 8-byte
/// bodies: no `Message` built on either side while the port's lane is open.
fn kernel_spsc_typed(capacity: Capacity, n: u64) -> Duration {
    let p = KernelPair::new(capacity);
    thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(|| {
            for _ in 0..n {
                black_box(p.rx.receive_small(p.port).unwrap().as_u64());
            }
        });
        for i in 0..n {
            p.tx.send_u64(p.to_rx, 1, i).unwrap();
        }
        consumer.join().unwrap();
        start.elapsed()
    })
}

fn crossbeam_channel_of<T>(
    capacity: Capacity,
) -> (crossbeam_channel::Sender<T>, crossbeam_channel::Receiver<T>) {
    match capacity {
        Capacity::Zero => crossbeam_channel::bounded(0),
        Capacity::Bounded(n) => crossbeam_channel::bounded(n),
        Capacity::Unbounded => crossbeam_channel::unbounded(),
    }
}

/// Time to move `n` values made by `make` from one thread to another through
/// a crossbeam channel of the given capacity.
fn crossbeam_run<T: Send>(capacity: Capacity, n: u64, make: impl Fn(u64) -> T) -> Duration {
    let (tx, rx) = crossbeam_channel_of::<T>(capacity);
    thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(|| {
            for _ in 0..n {
                black_box(rx.recv().unwrap());
            }
        });
        for i in 0..n {
            tx.send(make(i)).unwrap();
        }
        consumer.join().unwrap();
        start.elapsed()
    })
}

/// The same with a crossbeam channel (`u64` for 8 bytes, `Vec<u8>` otherwise).
fn crossbeam_spsc(capacity: Capacity, size: usize, n: u64) -> Duration {
    if size == 8 {
        crossbeam_run(capacity, n, |i| i)
    } else {
        let body = vec![0x5a_u8; size];
        crossbeam_run(capacity, n, |_| body.clone())
    }
}

/// The same with crossbeam carrying the kernel's own [`Message`] (same body,
/// same 64-byte value): how much of the gap is the message representation
/// rather than the IPC machinery.
fn crossbeam_message_spsc(capacity: Capacity, size: usize, n: u64) -> Duration {
    let body = vec![0x5a_u8; size];
    crossbeam_run(capacity, n, |_| Message::new(1, &body[..]))
}

/// Time for `n` RPC round trips: `call` from one thread, `receive` + `reply` on another.
fn kernel_rpc(server_capacity: Capacity, n: u64) -> Duration {
    let p = KernelPair::new(server_capacity);
    thread::scope(|s| {
        let start = Instant::now();
        let server = s.spawn(|| loop {
            let req = p.rx.receive(p.port).unwrap();
            if req.id == 0 {
                break;
            }
            p.rx.reply(&req, Message::new(2, req.body.clone())).unwrap();
        });
        for i in 0..n {
            let r = p.tx.call(p.to_rx, Message::from_u64(1, i)).unwrap();
            black_box(r);
        }
        p.tx.send(p.to_rx, Message::new(0, b"stop")).unwrap();
        server.join().unwrap();
        start.elapsed()
    })
}

/// Time for `n` ping-pongs over two crossbeam channels of capacity `cap`.
fn crossbeam_rpc(cap: usize, n: u64) -> Duration {
    let (req_tx, req_rx) = crossbeam_channel::bounded::<u64>(cap);
    let (resp_tx, resp_rx) = crossbeam_channel::bounded::<u64>(cap);
    thread::scope(|s| {
        let start = Instant::now();
        let server = s.spawn(move || {
            while let Ok(v) = req_rx.recv() {
                resp_tx.send(v).unwrap();
            }
        });
        for i in 0..n {
            req_tx.send(i).unwrap();
            black_box(resp_rx.recv().unwrap());
        }
        drop(req_tx);
        server.join().unwrap();
        start.elapsed()
    })
}

/// The textbook mailbox: a bounded queue behind a `parking_lot` mutex, with
/// one condvar for "not empty" and one for "not full".
struct LockedMailbox {
    queue: parking_lot::Mutex<VecDeque<u64>>,
    not_empty: parking_lot::Condvar,
    not_full: parking_lot::Condvar,
    capacity: usize,
}

impl LockedMailbox {
    fn new(capacity: usize) -> LockedMailbox {
        LockedMailbox {
            queue: parking_lot::Mutex::new(VecDeque::with_capacity(capacity)),
            not_empty: parking_lot::Condvar::new(),
            not_full: parking_lot::Condvar::new(),
            capacity,
        }
    }

    fn send(&self, value: u64) {
        let mut queue = self.queue.lock();
        while queue.len() >= self.capacity {
            self.not_full.wait(&mut queue);
        }
        queue.push_back(value);
        self.not_empty.notify_one();
    }

    fn receive(&self) -> u64 {
        let mut queue = self.queue.lock();
        loop {
            if let Some(value) = queue.pop_front() {
                self.not_full.notify_one();
                return value;
            }
            self.not_empty.wait(&mut queue);
        }
    }
}

/// Time for `n` ping-pongs over two capacity-1 [`LockedMailbox`]es.
fn mailbox_rpc(n: u64) -> Duration {
    let (requests, replies) = (LockedMailbox::new(1), LockedMailbox::new(1));
    thread::scope(|s| {
        let start = Instant::now();
        let server = s.spawn(|| loop {
            let v = requests.receive();
            if v == u64::MAX {
                break;
            }
            replies.send(v);
        });
        for i in 0..n {
            requests.send(i);
            black_box(replies.receive());
        }
        requests.send(u64::MAX);
        server.join().unwrap();
        start.elapsed()
    })
}

fn cap_label(c: Capacity) -> String {
    match c {
        Capacity::Zero => "zero".into(),
        Capacity::Bounded(n) => format!("bounded{n}"),
        Capacity::Unbounded => "unbounded".into(),
    }
}

fn criterion_benches(c: &mut Criterion) {
    for capacity in CAPACITIES {
        for size in SIZES {
            let mut g = c.benchmark_group(format!("spsc/{}/{}B", cap_label(capacity), size));
            g.throughput(Throughput::Elements(1));
            g.sample_size(10)
                .warm_up_time(Duration::from_millis(300))
                .measurement_time(Duration::from_secs(2));
            g.bench_function("kernel", |b| {
                b.iter_custom(|iters| kernel_spsc(capacity, size, iters))
            });
            g.bench_function("crossbeam", |b| {
                b.iter_custom(|iters| crossbeam_spsc(capacity, size, iters))
            });
            g.finish();
        }
    }
    let mut g = c.benchmark_group("rpc_round_trip");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(2));
    for capacity in [Capacity::Zero, Capacity::Bounded(1)] {
        g.bench_function(BenchmarkId::new("kernel_call", cap_label(capacity)), |b| {
            b.iter_custom(|iters| kernel_rpc(capacity, iters))
        });
    }
    for cap in [0, 1] {
        g.bench_function(
            BenchmarkId::new("crossbeam_ping_pong", format!("bounded{cap}")),
            |b| b.iter_custom(|iters| crossbeam_rpc(cap, iters)),
        );
    }
    g.bench_function("parking_lot_mailbox_ping_pong", |b| {
        b.iter_custom(mailbox_rpc)
    });
    g.finish();
}

/// Timed batches per contender (after one warm-up batch).
const BATCHES: usize = 7;

/// Median of the timed batches, as operations per second.
fn median_rate(n: u64, run: impl Fn(u64) -> Duration) -> f64 {
    median_rates(n, [&run]).median(0)
}

/// Minor page faults of the whole process so far (first touches of memory
/// the allocator took from the OS).
fn minor_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a `rusage` into the buffer it is given, which
    // is valid and zero-initialised; RUSAGE_SELF is always a valid target.
    let ok = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } == 0;
    // SAFETY: the buffer was zero-initialised, and filled in when `ok`.
    let usage = unsafe { usage.assume_init() };
    if ok {
        usage.ru_minflt
    } else {
        0
    }
}

/// Per contender: the rate of every timed batch (messages per second) and
/// the minor page faults per 1,000 messages over those batches.
struct Measured<const N: usize> {
    rates: [[f64; BATCHES]; N],
    faults_per_k: [f64; N],
}

/// Median, least and greatest of a few values.
#[derive(Clone, Copy)]
struct Spread {
    median: f64,
    min: f64,
    max: f64,
}

impl Spread {
    fn of(mut values: [f64; BATCHES]) -> Spread {
        values.sort_by(|a, b| a.partial_cmp(b).unwrap());
        Spread {
            median: values[BATCHES / 2],
            min: values[0],
            max: values[BATCHES - 1],
        }
    }
}

impl std::fmt::Display for Spread {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cell = format!("{:.2}x [{:.2}-{:.2}]", self.median, self.min, self.max);
        f.pad(&cell)
    }
}

impl<const N: usize> Measured<N> {
    fn median(&self, i: usize) -> f64 {
        Spread::of(self.rates[i]).median
    }
    /// Contender `i` over contender `j`, batch by batch (each pair of
    /// batches ran back to back): median, min and max of those ratios.
    fn ratio(&self, i: usize, j: usize) -> Spread {
        Spread::of(std::array::from_fn(|k| self.rates[i][k] / self.rates[j][k]))
    }
}

/// The timed batches of each contender, run in turn (a, b, c, a, b, c,
/// ...) so that a slow spell of the machine hits them all alike.
fn median_rates<const N: usize>(n: u64, runs: [&dyn Fn(u64) -> Duration; N]) -> Measured<N> {
    for run in runs {
        run(n / 10); // warm up
    }
    let mut rates = [[0.0; BATCHES]; N];
    let mut faults = [0_i64; N];
    for round in 0..BATCHES {
        for ((rate, fault), run) in rates.iter_mut().zip(faults.iter_mut()).zip(runs) {
            let before = minor_faults();
            rate[round] = n as f64 / run(n).as_secs_f64();
            *fault += minor_faults() - before;
        }
    }
    Measured {
        rates,
        faults_per_k: faults.map(|f| f as f64 * 1000.0 / (BATCHES as u64 * n) as f64),
    }
}

/// Time to move `n` messages from two sending threads (two tasks, `n / 2`
/// each) to two receiving threads (one task, `n / 2` each) through one port.
fn kernel_mpmc(capacity: Capacity, n: u64) -> Duration {
    let p = KernelPair::new(capacity);
    let tx2 = p._kernel.spawn_task();
    let to_rx2 = tx2.look_up("rx").unwrap();
    thread::scope(|s| {
        let start = Instant::now();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..n / 2 {
                        black_box(p.rx.receive(p.port).unwrap());
                    }
                })
            })
            .collect();
        let second = s.spawn(|| {
            for i in 0..n / 2 {
                tx2.send(to_rx2, Message::from_u64(1, i)).unwrap();
            }
        });
        for i in 0..n / 2 {
            p.tx.send(p.to_rx, Message::from_u64(1, i)).unwrap();
        }
        second.join().unwrap();
        for c in consumers {
            c.join().unwrap();
        }
        start.elapsed()
    })
}

/// [`kernel_mpmc`] with the typed operations.
fn kernel_mpmc_typed(capacity: Capacity, n: u64) -> Duration {
    let p = KernelPair::new(capacity);
    let tx2 = p._kernel.spawn_task();
    let to_rx2 = tx2.look_up("rx").unwrap();
    thread::scope(|s| {
        let start = Instant::now();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    for _ in 0..n / 2 {
                        black_box(p.rx.receive_small(p.port).unwrap().as_u64());
                    }
                })
            })
            .collect();
        let second = s.spawn(|| {
            for i in 0..n / 2 {
                tx2.send_u64(to_rx2, 1, i).unwrap();
            }
        });
        for i in 0..n / 2 {
            p.tx.send_u64(p.to_rx, 1, i).unwrap();
        }
        second.join().unwrap();
        for c in consumers {
            c.join().unwrap();
        }
        start.elapsed()
    })
}

/// The same through a crossbeam channel carrying a `u64`.
fn crossbeam_mpmc(capacity: Capacity, n: u64) -> Duration {
    let (tx, rx) = crossbeam_channel_of::<u64>(capacity);
    thread::scope(|s| {
        let start = Instant::now();
        let consumers: Vec<_> = (0..2)
            .map(|_| {
                let rx = rx.clone();
                s.spawn(move || {
                    for _ in 0..n / 2 {
                        black_box(rx.recv().unwrap());
                    }
                })
            })
            .collect();
        let tx2 = tx.clone();
        let second = s.spawn(move || {
            for i in 0..n / 2 {
                tx2.send(i).unwrap();
            }
        });
        for i in 0..n / 2 {
            tx.send(i).unwrap();
        }
        second.join().unwrap();
        for c in consumers {
            c.join().unwrap();
        }
        start.elapsed()
    })
}

/// Whether the summary row `label` is wanted (`MKIPC_BENCH_CASES`, see the
/// module docs; unset: every row).
fn wanted(label: &str) -> bool {
    match std::env::var("MKIPC_BENCH_CASES") {
        Ok(cases) => cases
            .split(',')
            .map(str::trim)
            .any(|c| !c.is_empty() && label.contains(c)),
        Err(_) => true,
    }
}

fn summary() {
    println!();
    println!("== kernel vs crossbeam ({BATCHES} batches each, run in turn; ratio = kernel / crossbeam throughput,");
    println!("   batch by batch: median [min-max]; M/s columns are medians)");
    println!(
        "   xbeam: crossbeam carrying a u64 (8 B) or a Vec<u8> (1 KiB), the peer of the issue;"
    );
    println!("   xbeam<Message>: crossbeam carrying the kernel's Message, the same value the kernel moves");
    println!("   faults: minor page faults per 1,000 messages, kernel / xbeam (memory taken from the OS)");
    println!(
        "   typed rows: the kernel with send_u64/receive_small; their last ratio is typed / the"
    );
    println!("   kernel's send/receive of a Message (the row above), not xbeam<Message>");
    println!(
        "{:<30} {:>7} {:>10} {:>10} {:>20} {:>20} {:>13}",
        "case", "batch", "kernel M/s", "xbeam M/s", "ratio", "vs xbeam<Message>", "faults"
    );
    for capacity in CAPACITIES {
        for size in SIZES {
            let n: u64 = match (capacity, size) {
                (Capacity::Zero, _) => 20_000,
                (Capacity::Bounded(16), _) => 50_000,
                (_, 8) => 400_000,
                _ => 100_000,
            };
            let label = format!("spsc {} {}B", cap_label(capacity), size);
            if wanted(&label) {
                let measured = median_rates(
                    n,
                    [
                        &|n| kernel_spsc(capacity, size, n),
                        &|n| crossbeam_spsc(capacity, size, n),
                        &|n| crossbeam_message_spsc(capacity, size, n),
                    ],
                );
                let [kf, xf, _] = measured.faults_per_k;
                println!(
                    "{:<30} {:>7} {:>10.3} {:>10.3} {:>20} {:>20} {:>6.1}/{:<6.1}",
                    label,
                    n,
                    measured.median(0) / 1e6,
                    measured.median(1) / 1e6,
                    measured.ratio(0, 1),
                    measured.ratio(0, 2),
                    kf,
                    xf
                );
            }
            let label = format!("{label} typed");
            if size != 8
                || !matches!(capacity, Capacity::Bounded(1024) | Capacity::Unbounded)
                || !wanted(&label)
            {
                continue;
            }
            let measured = median_rates(
                n,
                [
                    &|n| kernel_spsc_typed(capacity, n),
                    &|n| crossbeam_spsc(capacity, size, n),
                    &|n| kernel_spsc(capacity, size, n),
                ],
            );
            let [kf, xf, _] = measured.faults_per_k;
            println!(
                "{:<30} {:>7} {:>10.3} {:>10.3} {:>20} {:>20} {:>6.1}/{:<6.1}",
                label,
                n,
                measured.median(0) / 1e6,
                measured.median(1) / 1e6,
                measured.ratio(0, 1),
                measured.ratio(0, 2),
                kf,
                xf
            );
        }
    }
    for capacity in [Capacity::Bounded(1024), Capacity::Unbounded] {
        let n = 400_000;
        let label = format!("mpmc 2x2 {} 8B", cap_label(capacity));
        if wanted(&label) {
            let measured = median_rates(
                n,
                [&|n| kernel_mpmc(capacity, n), &|n| {
                    crossbeam_mpmc(capacity, n)
                }],
            );
            let [kf, xf] = measured.faults_per_k;
            println!(
                "{:<30} {:>7} {:>10.3} {:>10.3} {:>20} {:>20} {:>6.1}/{:<6.1}",
                label,
                n,
                measured.median(0) / 1e6,
                measured.median(1) / 1e6,
                measured.ratio(0, 1),
                "",
                kf,
                xf
            );
        }
        let label = format!("{label} typed");
        if !wanted(&label) {
            continue;
        }
        let measured = median_rates(
            n,
            [
                &|n| kernel_mpmc_typed(capacity, n),
                &|n| crossbeam_mpmc(capacity, n),
                &|n| kernel_mpmc(capacity, n),
            ],
        );
        let [kf, xf, _] = measured.faults_per_k;
        println!(
            "{:<30} {:>7} {:>10.3} {:>10.3} {:>20} {:>20} {:>6.1}/{:<6.1}",
            label,
            n,
            measured.median(0) / 1e6,
            measured.median(1) / 1e6,
            measured.ratio(0, 1),
            measured.ratio(0, 2),
            kf,
            xf
        );
    }
    if wanted("unbounded 8B step by step") {
        unbounded_gap();
    }
    if !wanted("rpc round trip") {
        return;
    }
    let n = 20_000;
    let x0 = median_rate(n, |n| crossbeam_rpc(0, n));
    let x1 = median_rate(n, |n| crossbeam_rpc(1, n));
    let mb = median_rate(n, mailbox_rpc);
    println!("rpc round trip: ratio = kernel / peer round trips per second (medians)");
    println!(
        "{:<36} {:>8} {:>14} {:>14} {:>7}",
        "case", "calls", "kernel us", "peer us", "ratio"
    );
    for capacity in [Capacity::Zero, Capacity::Bounded(1)] {
        let k = median_rate(n, |n| kernel_rpc(capacity, n));
        for (label, x) in [
            ("xbeam bounded0", x0),
            ("xbeam bounded1", x1),
            ("pl mailbox", mb),
        ] {
            println!(
                "{:<36} {:>8} {:>14.2} {:>14.2} {:>6.2}x",
                format!("call({}) vs pp {}", cap_label(capacity), label),
                n,
                1e6 / k,
                1e6 / x,
                k / x
            );
        }
    }
}

/// The unbounded 8-byte case step by step, each step a ratio to crossbeam
/// carrying a `u64`: 32 plain bytes, 32 bytes with drop glue (an
/// `Option<Box>` the consumer must check, as a message's rights box), a
/// queue entry as big as the kernel's (48 plain bytes), then the kernel's
/// `Message`, then a kernel port. On one CPU the producer runs a whole time
/// slice before the consumer, so the backlog is read back from memory that
/// has left the cache and entry size costs in proportion.
fn unbounded_gap() {
    let n = 400_000;
    let measured = median_rates(
        n,
        [
            &|n| crossbeam_spsc(Capacity::Unbounded, 8, n),
            &|n| crossbeam_run(Capacity::Unbounded, n, |i| [i, 0, 0, 0]),
            &|n| crossbeam_run(Capacity::Unbounded, n, |i| ([i, 0, 0], None::<Box<u64>>)),
            &|n| crossbeam_run(Capacity::Unbounded, n, |i| [i, 0, 0, 0, 0, 0]),
            &|n| crossbeam_message_spsc(Capacity::Unbounded, 8, n),
            &|n| kernel_spsc(Capacity::Unbounded, 8, n),
        ],
    );
    let steps: [f64; 6] = std::array::from_fn(|i| measured.median(i));
    println!("unbounded 8B step by step             M/s   vs xbeam<u64>  faults/1k msgs");
    let labels = [
        "xbeam<u64> (16 B slots)",
        "xbeam<[u64; 4]> (32 B)",
        "xbeam<([u64; 3], Option<Box>)> (32 B)",
        "xbeam<[u64; 6]> (48 B, a kernel entry)",
        "xbeam<Message>",
        "kernel port",
    ];
    for ((label, rate), faults) in labels.iter().zip(steps).zip(measured.faults_per_k) {
        println!(
            "  {label:<38} {:>7.3} {:>10.2}x {:>12.1}",
            rate / 1e6,
            rate / steps[0],
            faults
        );
    }
}

/// glibc returns freed memory at the top of the heap to the OS once 128 KiB
/// of it is free, and takes it back (page faults, `brk`, arena-lock
/// contention) on the next allocations. The "faults" column shows who pays.
/// With default trimming, the kernel's bounded(1024) 1 KiB batches can take
/// about 220 minor faults per 1,000 messages against about 2 for crossbeam,
/// and run at 0.18-0.21x instead of 0.9-1.0x. It is heap layout: freed bodies
/// merge into the heap's top and are trimmed unless some live allocation
/// sits above them; crossbeam's waker bookkeeping likely puts one there,
/// and one 64-byte `Vec` held by the kernel's producer does the same
/// (DESIGN.md, "The allocator moves these figures"). GLIBC_TUNABLES
/// `glibc.malloc.arena_max=1`, `glibc.malloc.tcache_count=0` or a higher
/// `glibc.malloc.trim_threshold` each remove it. So the bench turns trimming
/// off for every contender alike, unless `MKIPC_BENCH_GLIBC_TRIM=default` is
/// set. (It cost the
/// kernel's unbounded runs about 8 faults per 1,000 messages while a queue
/// was one doubling buffer, each a fresh mapping; its queues are now kept in
/// small blocks the heap recycles, and the figure is about 2.)
fn tame_heap_trimming() {
    if std::env::var("MKIPC_BENCH_GLIBC_TRIM").as_deref() == Ok("default") {
        println!("(glibc heap trimming: default)");
        return;
    }
    // SAFETY: mallopt only changes a malloc tuning parameter; it is called
    // before the bench starts any thread.
    let ok = unsafe { libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20) };
    println!(
        "(glibc heap trimming threshold set to 256 MiB for all contenders: {})",
        ok == 1
    );
}

/// The CPUs this process may run on.
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; sched_getaffinity
    // writes at most its size into it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Restricts the calling thread, and the threads it spawns from now on, to
/// these CPUs (what `taskset` does for a whole process).
fn run_on(cpus: &[usize]) -> bool {
    // SAFETY: as above; the set is built with the libc macros.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// The summary twice in one run: *split* (every CPU the process may use:
/// producer and consumer on different CPUs when the scheduler puts them
/// there) and *pinned* (all threads on the first of those CPUs, as
/// `taskset -c 0`). Started under `taskset -c N`, only one CPU is allowed
/// and only the pinned table is printed.
fn summaries() {
    let cpus = allowed_cpus();
    if cpus.len() >= 2 {
        println!("\n=== split: threads may run on CPUs {cpus:?}");
        summary();
    } else {
        println!("\n=== split: skipped (the process may use only CPUs {cpus:?})");
    }
    if let Some(&first) = cpus.first() {
        if run_on(&[first]) {
            println!("\n=== pinned: every thread on CPU {first}");
            summary();
            run_on(&cpus);
        }
    }
}

fn main() {
    tame_heap_trimming();
    if std::env::var_os("MKIPC_BENCH_SUMMARY_ONLY").is_none() {
        let mut c = Criterion::default().configure_from_args();
        criterion_benches(&mut c);
        c.final_summary();
    }
    if std::env::var_os("MKIPC_BENCH_NO_SUMMARY").is_none() {
        summaries();
    }
}
