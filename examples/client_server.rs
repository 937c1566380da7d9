//! # Client-server with RPC and a name service
//!
//! A server offers a service; clients find it *by name* and ask it to do
//! something, each waiting for its own answer. Two kernel features make this
//! short:
//!
//! * **The name service.** The server registers a send right to its port
//!   under the name "counter"; a client calls `look_up("counter")` and gets
//!   its own send right. Clients never learn anything about the server but
//!   that name (like Mach's bootstrap server, or DNS for a web service).
//! * **RPC (`call` / `reply`).** `call` sends the request together with a
//!   fresh *send-once* right for the answer and waits for it; the server
//!   answers with `reply`, which uses that right. A send-once right can be
//!   used exactly once, so every request gets at most one reply, and replies
//!   can never be mixed up between clients. If the server drops a request
//!   without answering, the kernel tells the caller (`CallError::NoReply`)
//!   instead of leaving it waiting forever.
//!
//! The service is a shared counter: `ADD n` adds n and answers the new total,
//! `GET` answers the total. Several clients call it at once; the server
//! handles one request at a time, so the counter needs no lock.
//!
//! Run it with `cargo run --example client_server`.

use std::thread;

use mkipc::kernel::CallError;
use mkipc::{Capacity, Ipc, Kernel, Message};

const ADD: u32 = 1;
const GET: u32 = 2;
const SHUTDOWN: u32 = 3;
const ANSWER: u32 = 10;

const CLIENTS: u64 = 4;
const CALLS_PER_CLIENT: u64 = 250;

fn main() {
    let kernel = Kernel::new();
    let server = kernel.spawn_task();
    let requests = server.port_allocate(Capacity::Bounded(8)).unwrap();
    server.register("counter", requests).unwrap();
    let clients: Vec<_> = (0..CLIENTS).map(|_| kernel.spawn_task()).collect();

    let served = thread::scope(|s| {
        let server_thread = s.spawn(|| {
            let mut total = 0u64;
            let mut served = 0u64;
            loop {
                let req = server.receive(requests).unwrap();
                match req.id {
                    ADD => total += req.as_u64().unwrap(),
                    GET => {}
                    SHUTDOWN => return served,
                    _ => {
                        // Refuse an unknown request: destroying its reply right
                        // (the send-once right `call` attached) tells the caller
                        // `NoReply`. Merely forgetting the message would not: its
                        // rights live in the server's name space until released.
                        if let Some(reply) = req.reply() {
                            server.deallocate(reply.name).unwrap();
                        }
                        continue;
                    }
                }
                served += 1;
                server
                    .reply(&req, Message::from_u64(ANSWER, total))
                    .unwrap();
            }
        });

        for (c, client) in clients.iter().enumerate() {
            s.spawn(move || {
                let counter = client.look_up("counter").unwrap();
                let mut last = 0;
                for _ in 0..CALLS_PER_CLIENT {
                    let answer = client.call(counter, Message::from_u64(ADD, 1)).unwrap();
                    let now = answer.as_u64().unwrap();
                    assert!(now > last, "the total only grows");
                    last = now;
                }
                println!("  client {c}: {CALLS_PER_CLIENT} calls, last total seen {last}");
            });
        }
        // Meanwhile the main thread is a client too: it asks for the total
        // until every other client's adds are in.
        let me = kernel.spawn_task();
        let counter = me.look_up("counter").unwrap();
        loop {
            let total = me.call(counter, Message::new(GET, b"")).unwrap();
            if total.as_u64() == Some(CLIENTS * CALLS_PER_CLIENT) {
                break;
            }
            thread::yield_now();
        }
        // A request the server does not understand: it refuses it unanswered.
        match me.call(counter, Message::new(99, b"?")) {
            Err(CallError::NoReply) => {
                println!("  an unknown request was refused: the caller got NoReply, not a hang")
            }
            other => panic!("expected NoReply, got {other:?}"),
        }
        me.send(counter, Message::new(SHUTDOWN, b"")).unwrap();
        server_thread.join().unwrap()
    });

    println!(
        "the server answered {served} calls (the adds and the main thread's polling GETs); final total {} = {CLIENTS} clients x {CALLS_PER_CLIENT} adds",
        CLIENTS * CALLS_PER_CLIENT
    );
    // Every reply right was used once and every reply port destroyed: only
    // the server's own port is left.
    println!("ports still alive: {}", kernel.stats().ports);
    assert_eq!(kernel.stats().ports, 1);
}
