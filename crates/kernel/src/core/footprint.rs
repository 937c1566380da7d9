//! Object identities for the simulator's partial-order reduction.
//!
//! `mkipc-sim` records, for each scheduling step, which kernel objects the
//! step's operation touched, to tell independent steps apart. Names are local
//! to a task, so it needs the kernel-wide identity behind a name; this is
//! the one read-only lookup it uses. Hidden: not part of the IPC API.

use super::space::Obj;
use super::Kernel;
use crate::name::{Pid, PortName};

impl Kernel {
    /// The kernel-wide identity of what `name` denotes in `pid`'s space:
    /// `(kind, id)` with kind 0 for a port (also behind a send-once right),
    /// 1 for a port set, 2 for a mailbox; `None` for a dead, invalid or
    /// unknown name or task. Read-only (a dead port is not turned into a dead name here).
    #[doc(hidden)]
    pub fn object_key(&self, pid: Pid, name: PortName) -> Option<(u8, u64)> {
        let st = self.lock();
        match st.task(pid)?.space.get(name).ok()? {
            Obj::Port { port, .. } | Obj::SendOnce(port) => Some((0, port.to_raw())),
            Obj::Set(set) => Some((1, set.to_raw())),
            Obj::Mailbox(m) => Some((2, m.to_raw())),
            Obj::Dead(_) => None,
        }
    }
}
