//! The name service on real processes: the run's broker keeps each service's
//! send right (`crate::broker`), so any process of the run and of its user
//! looks it up; a service whose port died is gone; only its registrant
//! unregisters it; nothing outlives the run (the broker's socket is
//! abstract, its table in memory).

mod common;
role_entry!();

use std::time::Duration;

use mkipc_kernel::name::RightKind;
use mkipc_kernel::{Capacity, Ipc, IpcError, Message};
use mkipc_os::Spawn;

fn said(os: &mkipc_os::OsProcess, child: &mkipc_os::Child) -> String {
    let m = os.receive_from(child.pid()).unwrap();
    assert_eq!(m.id, 99);
    String::from_utf8(m.body.to_vec()).unwrap()
}

#[test]
fn another_process_looks_a_service_up_and_sends_to_it() {
    let os = common::os();
    let port = os.port_allocate(Capacity::Bounded(4)).unwrap();
    os.register("echo-service", port).unwrap();
    let mut child = os
        .spawn(Spawn::new("look-up-and-send").arg("echo-service"))
        .unwrap();
    assert_eq!(said(&os, &child), "ok");
    let m = os.receive_timeout(port, Duration::from_secs(10)).unwrap();
    assert_eq!((m.id, m.sender()), (7, Some(child.pid())));
    assert_eq!(child.wait_code().unwrap(), 0);
    // A name nobody registered.
    let mut child = os
        .spawn(Spawn::new("look-up-and-send").arg("no-such-service"))
        .unwrap();
    assert_eq!(said(&os, &child), "NotFound");
    assert_eq!(child.wait_code().unwrap(), 0);
    common::finish(os);
}

#[test]
fn a_live_service_is_taken_a_dead_one_is_gone_and_only_its_owner_removes_it() {
    let os = common::os();
    let first = os.port_allocate(Capacity::Bounded(1)).unwrap();
    let second = os.port_allocate(Capacity::Bounded(1)).unwrap();
    os.register("taken", first).unwrap();
    assert_eq!(os.register("taken", second), Err(IpcError::AlreadyExists));
    // Our own look-up is a new name for the same port.
    let copy = os.look_up("taken").unwrap();
    assert_ne!(copy, first);
    os.send(copy, Message::new(1, b"via the service")).unwrap();
    assert_eq!(os.receive(first).unwrap().id, 1);
    // The port dies: the service with it, and the name is free again.
    os.mod_refs(first, RightKind::Receive, -1).unwrap();
    assert_eq!(os.look_up("taken"), Err(IpcError::NotFound));
    os.register("taken", second).unwrap();
    // Another process may not unregister it; we may, once.
    let mut child = os
        .spawn(Spawn::new("unregister-foreign").arg("taken"))
        .unwrap();
    assert_eq!(said(&os, &child), "Err(NoPermission)");
    assert_eq!(child.wait_code().unwrap(), 0);
    os.unregister("taken").unwrap();
    assert_eq!(os.unregister("taken"), Err(IpcError::NotFound));
    assert_eq!(os.look_up("taken"), Err(IpcError::NotFound));
    // A dead name or a non-port is no service.
    assert!(matches!(
        os.register("not-a-port", os.port_set_allocate().unwrap()),
        Err(IpcError::WrongRight { .. })
    ));
    common::finish(os);
}
