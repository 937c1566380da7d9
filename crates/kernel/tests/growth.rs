//! Nothing the kernel keeps grows without bound while a long-running server
//! does ordinary work: each test runs many rounds of one pattern and asserts
//! that the kernel's own counts (introspection, port status) stay flat.

use mkipc_kernel::name::RightKind;
use mkipc_kernel::*;

mod common;
use common::*;

/// Regression: dead-name requests on names the server released were kept
/// until the port died (20,000 rounds left 20,000 send-once rights on the
/// notify port, and each new request scanned them all). Releasing a name
/// cancels its request; nothing is sent for it.
#[test]
fn released_names_cancel_their_dead_name_requests() {
    let k = Kernel::new();
    let client = k.spawn_task();
    let server = k.spawn_task();
    let port = client.port_allocate(Capacity::Unbounded).unwrap();
    client.register("client", port).unwrap();
    let notify = server.port_allocate(Capacity::Unbounded).unwrap();
    for round in 0..2_000 {
        let to_client = server.look_up("client").unwrap();
        server
            .request_notification(to_client, NotifyKind::DeadName, notify)
            .unwrap();
        // Each way a name can go: deallocate, destroy, mod_refs, moving the
        // last reference out in a message.
        match round % 4 {
            0 => server.deallocate(to_client).unwrap(),
            1 => server.destroy(to_client).unwrap(),
            2 => server.mod_refs(to_client, RightKind::Send, -1).unwrap(),
            _ => {
                let msg = Message::new(1, b"").with_right(to_client, Disposition::MoveSend);
                server.send(to_client, msg).unwrap();
                let got = client.receive(port).unwrap();
                client.deallocate(got.rights()[0].name).unwrap();
            }
        }
        assert_eq!(
            server.port_status(notify).unwrap().send_once_rights,
            0,
            "round {round}: a request outlived its name"
        );
        assert_eq!(k.dead_name_request_count(), 0);
    }
    assert!(
        server.try_receive(notify).is_err(),
        "a cancelled request sends nothing"
    );
    // A request on a name still held fires as before.
    let to_client = server.look_up("client").unwrap();
    server
        .request_notification(to_client, NotifyKind::DeadName, notify)
        .unwrap();
    drop(client);
    let n = server.receive(notify).unwrap();
    assert_eq!(n.notification(), Some(Notification::DeadName(to_client)));
    assert_eq!(server.port_status(notify).unwrap().send_once_rights, 0);
}

/// A task's exit cancels the dead-name requests it made.
#[test]
fn an_exiting_task_cancels_its_dead_name_requests() {
    let k = Kernel::new();
    let server = k.spawn_task();
    let port = server.port_allocate(Capacity::Unbounded).unwrap();
    server.register("server", port).unwrap();
    for _ in 0..500 {
        let client = k.spawn_task();
        let notify = client.port_allocate(Capacity::Unbounded).unwrap();
        let to_server = client.look_up("server").unwrap();
        client
            .request_notification(to_server, NotifyKind::DeadName, notify)
            .unwrap();
    }
    // Every client exited: the server's port keeps no request of theirs.
    assert_eq!(k.dead_name_request_count(), 0);
    assert_eq!(k.stats().ports, 1);
    server.unregister("server").unwrap();
    drop(server);
    assert_empty(&k);
}

/// Regression: direct links whose sender exited were kept until the
/// receiver exited (10,000 one-shot clients made `receive_from_any` 600
/// times slower). A link is reclaimed once its writer is gone and it is
/// drained; end of stream stays as documented.
#[test]
fn drained_links_of_exited_senders_are_reclaimed() {
    let k = Kernel::new();
    let server = k.spawn_task();
    let baseline = k.stats();
    for i in 0..2_000u64 {
        let client = k.spawn_task();
        let pid = client.pid();
        client
            .send_to(server.pid(), Message::from_u64(1, i))
            .unwrap();
        client
            .send_to(server.pid(), Message::from_u64(2, i))
            .unwrap();
        drop(client);
        // Everything sent before the exit still arrives, in order.
        let got = server.receive_from_any().unwrap();
        assert_eq!((got.id, got.as_u64()), (1, Some(i)));
        assert_eq!(
            k.stats().ports,
            baseline.ports + 1,
            "the link is kept while it holds a message"
        );
        let got = server.receive_from(pid).unwrap();
        assert_eq!((got.id, got.as_u64()), (2, Some(i)));
        // Then end of stream, and the link is gone.
        assert_eq!(server.try_receive_from(pid), Err(ReceiveError::SourceDead));
        assert_eq!(server.receive_from(pid), Err(ReceiveError::SourceDead));
        assert_eq!(
            k.stats(),
            baseline,
            "round {i}: a drained dead link was kept"
        );
    }
    // A client that exits with nothing queued leaves nothing behind either.
    for _ in 0..100 {
        let client = k.spawn_task();
        server
            .set_link_capacity(client.pid(), Capacity::Bounded(4))
            .unwrap();
        assert_eq!(
            server.try_receive_from(client.pid()),
            Err(ReceiveError::Empty)
        );
        drop(client);
        assert_eq!(k.stats(), baseline);
    }
    assert_eq!(server.try_receive_from_any(), Err(ReceiveError::Empty));
}
