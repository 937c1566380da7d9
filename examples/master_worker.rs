//! # Master-worker: fan-out and fan-in
//!
//! One master splits a job into pieces and hands them to a pool of workers
//! (*fan-out*); the workers send their partial results back to one place
//! where the master combines them (*fan-in*).
//!
//! ```text
//!                 +--> worker 0 --+
//!   master --jobs-+--> worker 1 --+--results--> master
//!                 +--> worker 2 --+
//! ```
//!
//! * Fan-out uses one "jobs" mailbox that every worker receives from: each job
//!   goes to exactly one worker, and an idle worker simply takes the next one,
//!   so the load balances itself (no worker is assigned work in advance).
//! * Fan-in uses one "results" port owned by the master; every worker holds a
//!   send right to it. A message's trailer says which task sent it, so the
//!   master knows who did what without trusting the worker to say so.
//!
//! The job: count the primes below 200 000, in chunks of 10 000.
//!
//! Run it with `cargo run --release --example master_worker`.

use std::thread;

use mkipc::kernel::MailboxConfig;
use mkipc::{Capacity, Ipc, Kernel, Message};

const WORKERS: usize = 3;
const LIMIT: u64 = 200_000;
const CHUNK: u64 = 10_000;
const JOB: u32 = 1;
const QUIT: u32 = 2;
const RESULT: u32 = 3;

fn is_prime(n: u64) -> bool {
    n >= 2 && (2..).take_while(|d| d * d <= n).all(|d| n % d != 0)
}

fn main() {
    let kernel = Kernel::new();
    let master = kernel.spawn_task();
    let jobs = master
        .mailbox_create("jobs", MailboxConfig::new(Capacity::Bounded(4)))
        .unwrap();
    let results = master.port_allocate(Capacity::Unbounded).unwrap();
    master.register("results", results).unwrap();
    let workers: Vec<_> = (0..WORKERS).map(|_| kernel.spawn_task()).collect();

    let (per_worker, total) = thread::scope(|s| {
        for w in &workers {
            s.spawn(move || {
                let jobs = w.mailbox_open("jobs").unwrap();
                let results = w.look_up("results").unwrap();
                loop {
                    let job = w.receive(jobs).unwrap();
                    if job.id == QUIT {
                        break;
                    }
                    let start = job.as_u64().unwrap();
                    let count = (start..start + CHUNK).filter(|&n| is_prime(n)).count();
                    w.send(results, Message::from_u64(RESULT, count as u64))
                        .unwrap();
                }
            });
        }

        // Fan out: one job per chunk (blocks while 4 jobs are waiting), then
        // one QUIT per worker, queued behind every job.
        let chunks = LIMIT / CHUNK;
        for c in 0..chunks {
            master
                .send(jobs, Message::from_u64(JOB, c * CHUNK))
                .unwrap();
        }
        for _ in 0..WORKERS {
            master.send(jobs, Message::new(QUIT, b"")).unwrap();
        }

        // Fan in: one result per chunk, from whichever worker did it.
        let mut per_worker = vec![0u32; WORKERS];
        let mut total = 0;
        for _ in 0..chunks {
            let r = master.receive(results).unwrap();
            let who = workers
                .iter()
                .position(|w| Some(w.pid()) == r.sender())
                .expect("a worker sent it");
            per_worker[who] += 1;
            total += r.as_u64().unwrap();
        }
        (per_worker, total)
    });

    println!(
        "{} chunks of {CHUNK} numbers shared by {WORKERS} workers:",
        LIMIT / CHUNK
    );
    for (i, n) in per_worker.iter().enumerate() {
        println!("  worker {i} ({}) did {n} chunks", workers[i].pid());
    }
    let expected = (0..LIMIT).filter(|&n| is_prime(n)).count() as u64;
    println!("  primes below {LIMIT}: {total} (sequential check: {expected})");
    assert_eq!(total, expected);
    assert_eq!(per_worker.iter().sum::<u32>() as u64, LIMIT / CHUNK);
}
