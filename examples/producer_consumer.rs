//! # Producer-consumer through a bounded buffer
//!
//! The classic synchronisation problem: producers put items into a buffer of
//! fixed size, consumers take them out. Nobody may put into a full buffer or
//! take from an empty one. With shared memory this needs a lock and two
//! condition variables (or two counting semaphores); with message passing the
//! kernel's queue *is* the buffer, and blocking is built in:
//!
//! * a send to a full bounded mailbox waits until a consumer frees a slot;
//! * a receive from an empty mailbox waits until a producer puts something in;
//! * each message goes to exactly one consumer, so no item is lost or taken twice.
//!
//! A mailbox (not a port) is used because a port has exactly one receiver,
//! while here several consumers share the work. End of input is signalled the
//! usual way: once every item has been sent, the main thread sends one "stop"
//! message per consumer; the mailbox is FIFO, so the stops come after all items.
//!
//! Run it with `cargo run --example producer_consumer`.

use std::thread;

use mkipc::kernel::MailboxConfig;
use mkipc::{Capacity, Ipc, Kernel, Message};

const PRODUCERS: u64 = 3;
const CONSUMERS: usize = 2;
const ITEMS_PER_PRODUCER: u64 = 1000;
const BUFFER: usize = 4;

const ITEM: u32 = 1;
const STOP: u32 = 2;

fn main() {
    let kernel = Kernel::new();
    let main_task = kernel.spawn_task();
    let buffer = main_task
        .mailbox_create("buffer", MailboxConfig::new(Capacity::Bounded(BUFFER)))
        .unwrap();

    let producers: Vec<_> = (0..PRODUCERS).map(|_| kernel.spawn_task()).collect();
    let consumers: Vec<_> = (0..CONSUMERS).map(|_| kernel.spawn_task()).collect();

    let (counts, sums): (Vec<u64>, Vec<u64>) = thread::scope(|s| {
        for (p, task) in producers.iter().enumerate() {
            s.spawn(move || {
                let buffer = task.mailbox_open("buffer").unwrap();
                for i in 0..ITEMS_PER_PRODUCER {
                    let item = p as u64 * ITEMS_PER_PRODUCER + i;
                    // Blocks while BUFFER items are waiting.
                    task.send(buffer, Message::from_u64(ITEM, item)).unwrap();
                }
            });
        }
        let consumer_threads: Vec<_> = consumers
            .iter()
            .map(|task| {
                s.spawn(move || {
                    let buffer = task.mailbox_open("buffer").unwrap();
                    let (mut count, mut sum) = (0, 0);
                    loop {
                        // Blocks while the buffer is empty.
                        let msg = task.receive(buffer).unwrap();
                        if msg.id == STOP {
                            return (count, sum);
                        }
                        count += 1;
                        sum += msg.as_u64().unwrap();
                    }
                })
            })
            .collect();
        // Wait until every item has entered the buffer, then queue the stops behind them.
        let total = PRODUCERS * ITEMS_PER_PRODUCER;
        while main_task.port_status(buffer).unwrap().messages_sent < total {
            thread::yield_now();
        }
        for _ in 0..CONSUMERS {
            main_task.send(buffer, Message::new(STOP, b"")).unwrap();
        }
        consumer_threads
            .into_iter()
            .map(|t| t.join().unwrap())
            .unzip()
    });

    let status = main_task.port_status(buffer).unwrap();
    let total = PRODUCERS * ITEMS_PER_PRODUCER;
    println!(
        "{PRODUCERS} producers x {ITEMS_PER_PRODUCER} items through a buffer of {BUFFER}, {CONSUMERS} consumers"
    );
    for (c, n) in counts.iter().enumerate() {
        println!("  consumer {c} took {n} items");
    }
    let consumed: u64 = counts.iter().sum();
    let sum: u64 = sums.iter().sum();
    println!("  consumed {consumed} of {total} items; the buffer never held more than {} (its size is {BUFFER})", status.max_queue_len);
    assert_eq!(consumed, total, "an item was lost or taken twice");
    assert_eq!(
        sum,
        total * (total - 1) / 2,
        "an item was lost or taken twice"
    );
    println!("  every item was consumed exactly once (checksum {sum})");
}
