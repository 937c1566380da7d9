//! # Capacity models: what a queue's size does to the sender
//!
//! A port's *capacity* is how many messages it can hold before a sender has to
//! wait. This demo runs the same producer/consumer pair four times, changing
//! only that one word:
//!
//! * `Capacity::Zero` — no buffer at all. Sending is a *rendezvous*: the
//!   producer waits at the port until the consumer comes to take the message,
//!   so both run in lock step, at the consumer's pace.
//! * `Capacity::Bounded(1)` / `Capacity::Bounded(8)` — a buffer of n slots.
//!   The producer runs ahead until n messages are waiting, then waits for a
//!   free slot: the buffer absorbs bursts, but a slow consumer still slows the
//!   producer down once the buffer is full.
//! * `Capacity::Unbounded` — the producer never waits; the queue grows
//!   instead (up to a memory ceiling, which turns runaway growth into an
//!   error instead of a crash).
//!
//! The consumer takes 2 ms per message. For each capacity the table shows how
//! many sends found the port full (`try_send` failed, so the producer had to
//! block), how long the producer spent blocked, when it finished compared with
//! the consumer, and the longest the queue ever got (from `port_status`).
//!
//! Run it with `cargo run --release --example capacity_models`.

use std::thread;
use std::time::{Duration, Instant};

use mkipc::kernel::SendErrorKind;
use mkipc::{Capacity, Ipc, Kernel, Message};

const MESSAGES: u64 = 20;
const CONSUMER_WORK: Duration = Duration::from_millis(2);

struct Row {
    found_full: u64,
    blocked: Duration,
    producer_done: Duration,
    consumer_done: Duration,
    max_queue: usize,
}

fn run(capacity: Capacity) -> Row {
    let kernel = Kernel::new();
    let consumer = kernel.spawn_task();
    let producer = kernel.spawn_task();
    let inbox = consumer.port_allocate(capacity).unwrap();
    consumer.register("consumer", inbox).unwrap();
    let to_consumer = producer.look_up("consumer").unwrap();

    let start = Instant::now();
    thread::scope(|s| {
        let consumer_thread = s.spawn(|| {
            for i in 0..MESSAGES {
                let msg = consumer.receive(inbox).unwrap();
                assert_eq!(msg.as_u64(), Some(i));
                thread::sleep(CONSUMER_WORK); // the consumer is the slow side
            }
            start.elapsed()
        });

        let mut found_full = 0;
        let mut blocked = Duration::ZERO;
        for i in 0..MESSAGES {
            // Try first: if the port cannot take the message now, the error
            // hands it back and we send it again, this time waiting.
            if let Err(e) = producer.try_send(to_consumer, Message::from_u64(1, i)) {
                assert_eq!(e.kind(), SendErrorKind::Full);
                let msg = e.into_message();
                found_full += 1;
                let t0 = Instant::now();
                producer.send(to_consumer, msg).unwrap();
                blocked += t0.elapsed();
            }
        }
        let producer_done = start.elapsed();
        let consumer_done = consumer_thread.join().unwrap();
        Row {
            found_full,
            blocked,
            producer_done,
            consumer_done,
            max_queue: consumer.port_status(inbox).unwrap().max_queue_len,
        }
    })
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    println!(
        "A producer sends {MESSAGES} messages; the consumer needs {} per message.\n",
        ms(CONSUMER_WORK)
    );
    println!(
        "{:<12} {:>10} {:>17} {:>15} {:>15} {:>10}",
        "capacity", "sends that", "producer blocked", "producer done", "consumer done", "max queue"
    );
    println!("{:<12} {:>10}", "", "found full");
    for capacity in [
        Capacity::Zero,
        Capacity::Bounded(1),
        Capacity::Bounded(8),
        Capacity::Unbounded,
    ] {
        let r = run(capacity);
        println!(
            "{:<12} {:>7}/{:<2} {:>17} {:>15} {:>15} {:>10}",
            capacity.to_string(),
            r.found_full,
            MESSAGES,
            ms(r.blocked),
            ms(r.producer_done),
            ms(r.consumer_done),
            r.max_queue
        );
    }
    println!(
        "\nzero:      nothing is ever queued; almost every send waits for the consumer,\n\
         \x20          so the producer finishes only when the consumer does (lock step).\n\
         bounded:   the first sends go straight into the buffer; once it is full the\n\
         \x20          producer waits for each free slot. A bigger buffer lets the\n\
         \x20          producer finish earlier, but not before the last n messages are queued.\n\
         unbounded: no send ever waits; the producer is done at once and the queue\n\
         \x20          holds everything the consumer has not read yet."
    );
}
