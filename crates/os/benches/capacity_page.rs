//! What a bounded port's capacity page (`mkipc_os::capacity`) costs a
//! message: 8-byte messages through a `Bounded(8)` port, send and receive in
//! one thread (`same-thread`), and a sender thread feeding a receiver thread
//! (`two-threads`). Prints ns per message, one line per run; run the same
//! binary built before and after the page for the ratio
//! (`docs/perf/2026-12-03-oscap.md`).

use std::time::Instant;

use mkipc_kernel::{Capacity, Ipc, Message};
use mkipc_os::OsProcess;

const N: u64 = 200_000;

fn same_thread(os: &OsProcess) -> f64 {
    let port = os.port_allocate(Capacity::Bounded(8)).unwrap();
    let t = Instant::now();
    for i in 0..N {
        os.send(port, Message::from_u64(1, i)).unwrap();
        os.receive(port).unwrap();
    }
    let ns = t.elapsed().as_nanos() as f64 / N as f64;
    os.destroy(port).unwrap();
    ns
}

fn two_threads(os: &OsProcess) -> f64 {
    let port = os.port_allocate(Capacity::Bounded(8)).unwrap();
    let send = os.make_send(port).unwrap();
    let t = Instant::now();
    std::thread::scope(|s| {
        s.spawn(|| {
            for i in 0..N {
                os.send(send, Message::from_u64(1, i)).unwrap();
            }
        });
        for _ in 0..N {
            os.receive(port).unwrap();
        }
    });
    let ns = t.elapsed().as_nanos() as f64 / N as f64;
    os.destroy(port).unwrap();
    ns
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let os = OsProcess::new().unwrap();
    let which = std::env::var("MKIPC_CAP_BENCH").unwrap_or_else(|_| "same-thread".into());
    let ns = match which.as_str() {
        "two-threads" => two_threads(&os),
        _ => same_thread(&os),
    };
    println!("{which} {ns:.1} ns/message");
}
