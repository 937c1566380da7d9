//! # Direct vs indirect communication
//!
//! Two ways for processes to name each other:
//!
//! * **Direct**: the sender names the receiving *process* (`send_to(pid, …)`).
//!   The kernel keeps one link per pair of tasks, created on first use.
//!   - *Symmetric* addressing: the receiver names the sender too
//!     (`receive_from(pid)`) and gets only that task's messages.
//!   - *Asymmetric* addressing: the receiver takes from anyone
//!     (`receive_from_any()`) and the kernel tells it who sent each message.
//!
//!   Simple, but the partners are wired together: replace the receiver with
//!   another process and every sender has to learn the new pid.
//! * **Indirect**: messages go to a *mailbox* (or a port), and processes name
//!   the mailbox, not each other. Several senders and several receivers can
//!   share one mailbox, each message going to exactly one receiver, and either
//!   side can be replaced without the other noticing. Access is controlled by
//!   the mailbox's owner (an access list), not by knowing a pid.
//!
//! Run it with `cargo run --example direct_vs_indirect`.

use std::thread;

use mkipc::kernel::name::Access;
use mkipc::kernel::{IpcError, MailboxConfig, ReceiveError};
use mkipc::{Capacity, Ipc, Kernel, Message};

fn direct() {
    println!("-- direct: processes name each other by pid");
    let kernel = Kernel::new();
    let alice = kernel.spawn_task();
    let bob = kernel.spawn_task();
    let carol = kernel.spawn_task();
    let (alice_pid, bob_pid, carol_pid) = (alice.pid(), bob.pid(), carol.pid());

    thread::scope(|s| {
        s.spawn(move || {
            for i in 0..3 {
                alice
                    .send_to(carol_pid, Message::new(1, format!("alice #{i}").as_str()))
                    .unwrap();
            }
            // alice exits here: carol will see the end of alice's stream.
        });
        s.spawn(move || {
            for i in 0..3 {
                bob.send_to(carol_pid, Message::new(1, format!("bob #{i}").as_str()))
                    .unwrap();
            }
        });
    });

    // Symmetric: carol asks for alice's messages only, in alice's order.
    for _ in 0..3 {
        let m = carol.receive_from(alice_pid).unwrap();
        println!(
            "  receive_from({alice_pid}) -> {:?}",
            String::from_utf8_lossy(&m.body)
        );
    }
    // Alice has exited and everything she sent is read: end of stream.
    assert_eq!(
        carol.receive_from(alice_pid).unwrap_err(),
        ReceiveError::SourceDead
    );
    println!("  receive_from({alice_pid}) -> SourceDead (alice exited, her stream is drained)");
    // Asymmetric: carol takes whatever comes and learns who sent it.
    for _ in 0..3 {
        let m = carol.receive_from_any().unwrap();
        let from = m.sender().unwrap();
        assert_eq!(from, bob_pid);
        println!(
            "  receive_from_any() -> {:?} from {from}",
            String::from_utf8_lossy(&m.body)
        );
    }
}

fn indirect() {
    println!("-- indirect: processes name a mailbox, not each other");
    let kernel = Kernel::new();
    let editor = kernel.spawn_task();
    let reporters: Vec<_> = (0..2).map(|_| kernel.spawn_task()).collect();
    let readers: Vec<_> = (0..2).map(|_| kernel.spawn_task()).collect();
    let outsider = kernel.spawn_task();

    // The editor owns the mailbox: reporters may only send, readers only
    // receive, anyone else nothing.
    let mut config = MailboxConfig::new(Capacity::Bounded(4)).default_access(Access::NONE);
    for r in &reporters {
        config = config.grant(r.pid(), Access::SEND);
    }
    for r in &readers {
        config = config.grant(r.pid(), Access::RECEIVE);
    }
    let news = editor.mailbox_create("news", config).unwrap();

    assert_eq!(
        outsider.mailbox_open("news").unwrap_err(),
        IpcError::NoPermission
    );
    println!("  an outsider cannot even open \"news\": NoPermission");

    let got = thread::scope(|s| {
        for (i, r) in reporters.iter().enumerate() {
            s.spawn(move || {
                let news = r.mailbox_open("news").unwrap();
                for j in 0..3 {
                    let story = format!("story {j} by reporter {i}");
                    r.send(news, Message::new(1, story.as_str())).unwrap();
                }
            });
        }
        let handles: Vec<_> = readers
            .iter()
            .enumerate()
            .map(|(i, r)| {
                s.spawn(move || {
                    let news = r.mailbox_open("news").unwrap();
                    let mut mine = Vec::new();
                    // Ends when the editor closes the mailbox.
                    while let Ok(m) = r.receive(news) {
                        mine.push(format!(
                            "reader {i} got {:?}",
                            String::from_utf8_lossy(&m.body)
                        ));
                    }
                    mine
                })
            })
            .collect();
        // When all 6 stories are read, close the mailbox: the readers wake with SourceDead.
        while editor.port_status(news).unwrap().seqno < 6 {
            thread::yield_now();
        }
        editor.mailbox_destroy(news).unwrap();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    for line in &got {
        println!("  {line}");
    }
    assert_eq!(got.len(), 6, "each story reached exactly one reader");
    println!("  6 stories, each read by exactly one reader; nobody knew anybody's pid");
}

fn main() {
    direct();
    println!();
    indirect();
}
