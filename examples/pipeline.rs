//! # A pipeline: source -> filter -> sink
//!
//! A pipeline splits a job into stages that run at the same time, each
//! passing its output to the next, like `cat | grep | sort` in a shell. Each
//! stage here is its own task on its own thread, and stages are joined by
//! named mailboxes, so a stage only knows the names of its input and output,
//! never who sits on the other side:
//!
//! ```text
//!   source --"numbers"--> filter --"primes"--> sink
//! ```
//!
//! * the **source** produces the numbers 2..=LIMIT;
//! * the **filter** keeps the primes;
//! * the **sink** collects them and prints a summary.
//!
//! The mailboxes are bounded, so a fast stage cannot run arbitrarily far
//! ahead of a slow one (back-pressure: the source waits when the filter falls
//! behind). End of stream travels down the pipe as a message of its own: when
//! a stage receives it, it forwards it and stops.
//!
//! Run it with `cargo run --example pipeline`.

use std::thread;

use mkipc::kernel::MailboxConfig;
use mkipc::{Capacity, Ipc, Kernel, Message};

const LIMIT: u64 = 5000;
const DATA: u32 = 1;
const END: u32 = 2;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn main() {
    let kernel = Kernel::new();
    let source = kernel.spawn_task();
    let filter = kernel.spawn_task();
    let sink = kernel.spawn_task();

    // Each mailbox is created by the stage that reads it (its owner).
    filter
        .mailbox_create("numbers", MailboxConfig::new(Capacity::Bounded(16)))
        .unwrap();
    sink.mailbox_create("primes", MailboxConfig::new(Capacity::Bounded(16)))
        .unwrap();

    let primes = thread::scope(|s| {
        s.spawn(|| {
            let out = source.mailbox_open("numbers").unwrap();
            for n in 2..=LIMIT {
                source.send(out, Message::from_u64(DATA, n)).unwrap();
            }
            source.send(out, Message::new(END, b"")).unwrap();
        });
        s.spawn(|| {
            let input = filter.mailbox_open("numbers").unwrap();
            let out = filter.mailbox_open("primes").unwrap();
            loop {
                let msg = filter.receive(input).unwrap();
                if msg.id == END {
                    filter.send(out, msg).unwrap();
                    break;
                }
                if is_prime(msg.as_u64().unwrap()) {
                    filter.send(out, msg).unwrap();
                }
            }
        });
        let sink_thread = s.spawn(|| {
            let input = sink.mailbox_open("primes").unwrap();
            let mut primes = Vec::new();
            loop {
                let msg = sink.receive(input).unwrap();
                if msg.id == END {
                    return primes;
                }
                primes.push(msg.as_u64().unwrap());
            }
        });
        sink_thread.join().unwrap()
    });

    println!("source -> filter -> sink over mailboxes \"numbers\" and \"primes\"");
    println!(
        "  the source sent {} numbers, the sink received {} primes",
        LIMIT - 1,
        primes.len()
    );
    println!("  first ten: {:?}", &primes[..10]);
    println!("  last three: {:?}", &primes[primes.len() - 3..]);
    assert_eq!(primes.len(), 669, "there are 669 primes below 5000");
    assert!(
        primes.windows(2).all(|w| w[0] < w[1]),
        "order kept end to end"
    );
    println!("  order was kept end to end: every stage reads its mailbox in FIFO order");
}
