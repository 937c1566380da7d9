//! Port sets: several receive rights received from as one, over one `epoll`.
//!
//! A port set lives in one process, as in Mach (a set name means nothing
//! elsewhere, and a set cannot be sent). Its members are ports whose receive
//! right this process holds; each member's queue descriptor is registered in
//! the set's `epoll` instance (level-triggered `EPOLLIN`: Linux queue
//! descriptors are pollable). A receive on the set takes, without waiting,
//! the oldest message among the members' heads (by their send stamps, see
//! [`crate::wire`]); when none has one it waits in `epoll_wait` on the set's
//! instance, so a port inserted meanwhile by another thread wakes it too (a
//! `poll` over a list made before the wait would not see it).
//!
//! A member leaves the set when it is removed, when it joins another set,
//! and when its receive right leaves this process (destroyed, or moved in a
//! message): its descriptor is taken out of the instance first, so a moved
//! receive right's messages never wake this process.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Message};
//! let os = mkipc_os::OsProcess::new().unwrap();
//! let (a, b) = (os.port_allocate(Capacity::Bounded(2)).unwrap(), os.port_allocate(Capacity::Bounded(2)).unwrap());
//! let set = os.port_set_allocate().unwrap();
//! os.port_set_insert(set, a).unwrap();
//! os.port_set_insert(set, b).unwrap();
//! os.send(b, Message::new(1, b"older")).unwrap();
//! os.send(a, Message::new(2, b"newer")).unwrap();
//! let m = os.receive(set).unwrap();
//! assert_eq!((m.id, m.received_on()), (1, Some(b)));
//! assert_eq!(os.receive(set).unwrap().received_on(), Some(a));
//! ```

use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::event::epoll;

use mkipc_kernel::PortName;

use crate::queue::Queue;
use crate::sys::Errno;

/// One port set: its `epoll` instance and its members.
pub(crate) struct PortSet {
    epoll: OwnedFd,
    members: Mutex<Vec<(PortName, Arc<Queue>)>>,
}

fn os_err(e: rustix::io::Errno) -> Errno {
    e.raw_os_error()
}

impl PortSet {
    /// An empty set.
    pub(crate) fn new() -> Result<Arc<PortSet>, Errno> {
        let epoll = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(os_err)?;
        Ok(Arc::new(PortSet {
            epoll,
            members: Mutex::new(Vec::new()),
        }))
    }

    /// Adds a port (the receive queue `q`, named `name` here), taking it out
    /// of any set it was in.
    pub(crate) fn insert(self: &Arc<Self>, name: PortName, q: &Arc<Queue>) -> Result<(), Errno> {
        leave_set(q);
        epoll::add(
            &self.epoll,
            q.fd(),
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )
        .map_err(os_err)?;
        self.lock().push((name, Arc::clone(q)));
        *q.in_set.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(self);
        Ok(())
    }

    /// Takes `q` out of the set; whether it was in it.
    fn remove(&self, q: &Queue) -> bool {
        let mut members = self.lock();
        let Some(at) = members.iter().position(|(_, m)| std::ptr::eq(&**m, q)) else {
            return false;
        };
        let (_, m) = members.remove(at);
        let _ = epoll::delete(&self.epoll, m.fd());
        true
    }

    /// The members now, in the order they were inserted.
    pub(crate) fn members(&self) -> Vec<(PortName, Arc<Queue>)> {
        self.lock().clone()
    }

    /// Waits until a member may have a message or the deadline passes
    /// (`Ok(false)`).
    pub(crate) fn wait(&self, deadline: Option<Instant>) -> Result<bool, Errno> {
        let mut events = [MaybeUninit::<epoll::Event>::uninit(); 4];
        loop {
            let timeout = deadline.map(|d| {
                let left = d.saturating_duration_since(Instant::now());
                rustix::time::Timespec {
                    tv_sec: left.as_secs() as i64,
                    tv_nsec: i64::from(left.subsec_nanos()),
                }
            });
            match epoll::wait(&self.epoll, &mut events, timeout.as_ref()) {
                Ok((ready, _)) => return Ok(!ready.is_empty()),
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(os_err(e)),
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PortName, Arc<Queue>)>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes the receive queue `q` out of the set it is in, if any (it is being
/// destroyed, moved, or put into another set). Returns whether it was in one.
pub(crate) fn leave_set(q: &Queue) -> bool {
    let set = std::mem::take(&mut *q.in_set.lock().unwrap_or_else(|p| p.into_inner()));
    set.upgrade().is_some_and(|s| s.remove(q))
}
