//! The cost of one send + receive on the kernel's fast path, single-threaded,
//! next to crossbeam-channel and a bare lock, in the same run.
//!
//! No thread switches are involved, so this isolates instruction cost; run it
//! under `valgrind --tool=callgrind` for repeatable instruction counts:
//!
//! ```text
//! cargo run --release -p mkipc-kernel --example hot_path -- 5000000
//! valgrind --tool=callgrind target/release/examples/hot_path 100000
//! ```

use std::hint::black_box;
use std::time::Instant;

use mkipc_kernel::{Capacity, Ipc, Kernel, Message};

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task
        .port_allocate(Capacity::Bounded(1024))
        .expect("fresh task");

    let start = Instant::now();
    for i in 0..n {
        task.send(port, Message::from_u64(1, i))
            .expect("room in the port");
        black_box(task.receive(port).expect("a message"));
    }
    let kernel_ns = start.elapsed().as_nanos() as f64 / n as f64;

    let (tx, rx) = crossbeam_channel::bounded::<u64>(1024);
    let start = Instant::now();
    for i in 0..n {
        tx.send(i).expect("room in the channel");
        black_box(rx.recv().expect("a message"));
    }
    let crossbeam_ns = start.elapsed().as_nanos() as f64 / n as f64;

    let lock = parking_lot::Mutex::new(0u64);
    let start = Instant::now();
    for _ in 0..n {
        *lock.lock() += 1;
        *lock.lock() += 1;
    }
    let lock_ns = start.elapsed().as_nanos() as f64 / n as f64;

    println!("kernel port send+receive   {kernel_ns:8.1} ns");
    println!(
        "crossbeam send+recv        {crossbeam_ns:8.1} ns   (kernel/crossbeam cost {:.2}x)",
        kernel_ns / crossbeam_ns
    );
    println!("two lock/unlock pairs      {lock_ns:8.1} ns");
}
