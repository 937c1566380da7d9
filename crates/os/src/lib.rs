//! # mkipc-os: the mkipc API on real Linux processes
//!
//! The same user code that runs on the kernel's threads and in the simulator
//! runs here on real processes: [`OsProcess`] implements
//! [`mkipc_kernel::Ipc`] with pipes, FIFOs and POSIX message queues, so what
//! a student explored in simulation can be watched for real (`strace`,
//! `/dev/mqueue`, `ls -l /proc/<pid>/fd`).
//!
//! | mkipc | Linux |
//! |---|---|
//! | process | a child started by re-executing this binary with a role ([`OsProcess::spawn`], [`Spawn`]) |
//! | direct link (`send_to`, `receive_from`) | a pair of anonymous pipes, framed ([`link`], [`wire`]), two rings in shared memory ([`shm`], [`LinkKind::SharedMemory`]), or a Unix or TCP stream socket, between machines too, optionally sealed ([`socket`], [`LinkKind::UnixSocket`], [`LinkKind::Tcp`]) |
//! | port | a POSIX queue unlinked at birth: only descriptors reach it ([`queue`]) |
//! | mailbox | a named POSIX queue; mode bits are the access list |
//! | byte-stream mailbox | a FIFO ([`fifo`]) |
//! | `Capacity::Zero` | one-slot queue plus an acknowledgement from the receiver |
//! | `Capacity::Unbounded` | a sender-side spool ([`spool`]) |
//! | a right in a message | a descriptor passed with `SCM_RIGHTS` |
//!
//! Every queue and FIFO is named with `mkipc-<run id>` and written down in a
//! run directory, so [`registry::cleanup`] can remove what a crashed run left
//! ([`errno`] lists how each OS error maps to the typed errors).
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message, SendErrorKind};
//! use mkipc_os::OsProcess;
//!
//! let os = OsProcess::new().unwrap();
//! let port = os.port_allocate(Capacity::Bounded(1)).unwrap();
//! let to_port = os.make_send(port).unwrap();
//! os.send(to_port, Message::from_u64(1, 7)).unwrap();
//! // The POSIX queue is full (mq_maxmsg = 1): a try-send fails at once and hands the message back.
//! match os.try_send(to_port, Message::from_u64(1, 8)) {
//!     Err(e) if e.kind() == SendErrorKind::Full => assert_eq!(e.into_message().as_u64(), Some(8)),
//!     other => panic!("{other:?}"),
//! }
//! assert_eq!(os.receive(port).unwrap().as_u64(), Some(7));
//! ```
//!
//! ## Where to start
//!
//! * [`OsProcess`] ([`mod@process`]): this process as an mkipc task;
//!   [`OsProcess::new`] for a root, [`Spawn`] ([`mod@spawn`]) to start
//!   children, which must call [`child_main`] first in `main`.
//! * [`new_link_of`] ([`ends`]) for links made by hand (after a `fork`);
//!   [`socket`] for links between processes that meet by an address
//!   ([`socket::Listener`], [`OsProcess::connect_link`]), [`seal`] for
//!   their encrypted overlay;
//!   [`wire`] for the bytes, so programs in other languages can join.
//! * [`registry`] for run ids and [`cleanup`]; [`errno`] for the errors.

mod access_page;
mod broker;
pub mod capacity;
mod deliver;
mod direct;
pub mod ends;
pub mod errno;
pub mod fifo;
mod grants;
mod ipc;
pub mod link;
mod names;
mod notify;
mod port_destroyed;
mod port_set;
pub mod process;
pub mod queue;
mod record;
pub mod registry;
mod rendezvous;
mod reply;
mod report;
pub mod seal;
mod senders;
pub mod shm;
pub mod socket;
pub mod spawn;
pub mod spool;
mod sys;
mod sys_shm;
mod transfer;
mod travel;
mod watch;
pub mod wire;

pub use crate::ends::{new_link, new_link_of, LinkEnd, LinkKind};
pub use crate::ipc::LINK_BODY_LIMIT;
pub use crate::process::OsProcess;
pub use crate::registry::{
    cleanup, cleanup_runs_of, cleanup_stale, leftovers, CleanupReport, Kept, KeptReason, KeptWhat,
};
pub use crate::spawn::{
    child_main, set_entry_args, Child, Role, Spawn, BOOT_ENV, ROLE_ENV, RUN_ENV,
};
