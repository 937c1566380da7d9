//! Unit tests of the core's internal counters, for cases too large to build
//! through the public API in a test's time (65,537 tasks x 65,534 references).

use super::space::Obj;
use super::Kernel;
use crate::name::RightKind;
use crate::{Capacity, Ipc, NotifyKind};

/// Regression: a port's total of send rights was a `u32`; 65,537 tasks with
/// 65,534 references each wrapped it (a debug panic, and in release a
/// spurious no-senders notification). The total now has room for any count
/// of tasks; here it is set just below where a `u32` ends, as that many
/// tasks would leave it.
#[test]
fn send_right_total_does_not_wrap_past_u32() {
    let kernel = Kernel::new();
    let task = kernel.spawn_task();
    let port = task.port_allocate(Capacity::Unbounded).unwrap();
    let notify = task.port_allocate(Capacity::Unbounded).unwrap();
    let send = task.make_send(port).unwrap();
    task.request_notification(port, NotifyKind::NoSenders, notify)
        .unwrap();
    {
        let mut st = kernel.lock();
        let id = st.receive_right(task.pid(), port).unwrap();
        // As if 65,537 other tasks held 65,534 references each (minus the
        // one this task holds, already counted).
        st.ports.get_mut(id).unwrap().send_rights = u32::MAX.into();
    }
    // One more reference, then one fewer: the total crosses 2^32 and back.
    task.mod_refs(send, RightKind::Send, 1).unwrap();
    task.mod_refs(send, RightKind::Send, -1).unwrap();
    assert!(
        task.try_receive(notify).is_err(),
        "no-senders fired while senders remain"
    );
    {
        let mut st = kernel.lock();
        let id = st.receive_right(task.pid(), port).unwrap();
        assert_eq!(st.ports.get(id).unwrap().send_rights, u64::from(u32::MAX));
    }
    // The status saturates instead of wrapping.
    assert_eq!(task.port_status(port).unwrap().send_rights, u32::MAX);
    let Ok(Obj::Port { send: refs, .. }) = kernel.lock().resolve(task.pid(), send) else {
        panic!("the name still holds the send right");
    };
    assert_eq!(refs, 1);
}
