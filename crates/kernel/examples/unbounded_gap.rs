//! Where the time goes when one thread streams 8-byte messages to another
//! through an unbounded queue, measured step by step in one run:
//!
//! 1. crossbeam-channel carrying a `u64` (16-byte slots): the peer;
//! 2. crossbeam carrying 48 plain bytes, the size of the kernel's queue entry:
//!    what the bigger entry alone costs;
//! 3. crossbeam carrying the kernel's `Message`: what building, moving and
//!    dropping a message costs on top;
//! 4. a kernel port: what names, rights, sequence numbers and the lock add.
//!
//! Each step prints its throughput as a ratio to step 1. Pin both threads to
//! one CPU, as the benchmark does, so that the figures measure work rather
//! than cross-CPU wake-ups:
//!
//! ```text
//! cargo build --release -p mkipc-kernel --example unbounded_gap
//! taskset -c 0 target/release/examples/unbounded_gap [messages per run]
//! ```
//!
//! On one CPU the producer runs for a whole time slice before the consumer
//! gets the CPU, so a backlog of hundreds of thousands of messages builds up
//! and is read back from memory that has left the cache: the size of a queue
//! entry matters as much as the instructions per message.

use std::hint::black_box;
use std::thread;
use std::time::{Duration, Instant};

use mkipc_kernel::{Capacity, Ipc, Kernel, KernelConfig, Message};

/// Runs of each contender, interleaved; the median is reported.
const RUNS: usize = 7;

fn crossbeam<T: Send>(n: u64, make: impl Fn(u64) -> T) -> Duration {
    let (tx, rx) = crossbeam_channel::unbounded::<T>();
    thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(|| {
            for _ in 0..n {
                black_box(rx.recv().expect("the sender outlives the loop"));
            }
        });
        for i in 0..n {
            tx.send(make(i)).expect("the receiver outlives the loop");
        }
        consumer.join().expect("consumer thread");
        start.elapsed()
    })
}

fn kernel_port(n: u64) -> Duration {
    let kernel = Kernel::with_config(KernelConfig {
        // The producer may run far ahead of the consumer.
        queue_memory_limit: 4 << 30,
        ..KernelConfig::default()
    });
    let rx = kernel.spawn_task();
    let port = rx.port_allocate(Capacity::Unbounded).expect("fresh task");
    rx.register("rx", port).expect("fresh name service");
    let tx = kernel.spawn_task();
    let to_rx = tx.look_up("rx").expect("registered above");
    thread::scope(|s| {
        let start = Instant::now();
        let consumer = s.spawn(|| {
            for _ in 0..n {
                black_box(rx.receive(port).expect("the port lives"));
            }
        });
        for i in 0..n {
            tx.send(to_rx, Message::from_u64(1, i))
                .expect("unbounded port");
        }
        consumer.join().expect("consumer thread");
        start.elapsed()
    })
}

fn median(mut runs: Vec<Duration>) -> Duration {
    runs.sort();
    runs[runs.len() / 2]
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let contenders: [(&str, &dyn Fn() -> Duration); 4] = [
        ("crossbeam<u64>", &|| crossbeam(n, |i| i)),
        ("crossbeam<[u64; 6]> (48 B)", &|| {
            crossbeam(n, |i| [i, 0, 0, 0, 0, 0])
        }),
        ("crossbeam<Message>", &|| {
            crossbeam(n, |i| Message::from_u64(1, i))
        }),
        ("kernel port", &|| kernel_port(n)),
    ];
    let mut times = vec![Vec::new(); contenders.len()];
    for _ in 0..RUNS {
        for (i, (_, run)) in contenders.iter().enumerate() {
            times[i].push(run());
        }
    }
    let rate = |d: Duration| n as f64 / d.as_secs_f64() / 1e6;
    let peer = rate(median(times[0].clone()));
    println!("unbounded SPSC, {n} messages of 8 bytes, median of {RUNS} interleaved runs");
    println!("{:<28} {:>9} {:>12}", "contender", "M msg/s", "vs peer");
    for ((name, _), t) in contenders.iter().zip(times) {
        let r = rate(median(t));
        println!("{name:<28} {r:>9.2} {:>11.2}x", r / peer);
    }
}
