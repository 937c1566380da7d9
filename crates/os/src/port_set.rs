//! Port sets: several receive rights, and direct links, received from as
//! one, over one `epoll`.
//!
//! A port set lives in one process, as in Mach (a set name means nothing
//! elsewhere, and a set cannot be sent). Its members are ports whose receive
//! right this process holds, and direct links named with
//! [`OsProcess::link_name`](crate::OsProcess::link_name) (as the kernel's
//! links into a task form its inbox set); each member's descriptor is
//! registered in the set's `epoll` instance (level-triggered `EPOLLIN`: Linux
//! queue descriptors, pipes, sockets and a ring's doorbell are pollable; a
//! link's rights socket too, for a frame waiting for its descriptors). A
//! receive on the set takes, without waiting, the oldest message among the
//! ports' heads (by their send stamps, see [`crate::wire`]; a link's frame
//! has no stamp and is taken at once, in insertion order, as in `select`);
//! when none has one it waits in `epoll_wait` on the set's instance, so a
//! member inserted meanwhile by another thread wakes it too (a `poll` over a
//! list made before the wait would not see it).
//!
//! A member leaves the set when it is removed, when it joins another set,
//! and when it leaves this process: a receive right destroyed or moved in a
//! message (its descriptor is taken out of the instance first, so a moved
//! receive right's messages never wake this process), a link name released,
//! a link closed or ended (its peer gone and its frames received: the set
//! goes on with its other members, where a receive on the link itself says
//! `SourceDead`).
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
use std::os::fd::{BorrowedFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::event::epoll;

use mkipc_kernel::PortName;

use crate::link::LinkRx;
use crate::names::{Entry, Names};
use crate::queue::Queue;
use crate::sys::Errno;

/// One member of a set.
#[derive(Clone)]
pub(crate) enum Member {
    /// A port: its receive queue.
    Port(Arc<Queue>),
    /// The direct link from `pid` (looked up in the process's link table at
    /// each receive, so a closed link is seen as gone), with the
    /// descriptors registered for it.
    Link { pid: u32, fds: Vec<RawFd> },
}

/// One port set: its `epoll` instance and its members.
pub(crate) struct PortSet {
    epoll: OwnedFd,
    members: Mutex<Vec<(PortName, Member)>>,
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

    fn watch(&self, fd: BorrowedFd<'_>) -> Result<(), Errno> {
        epoll::add(
            &self.epoll,
            fd,
            epoll::EventData::new_u64(0),
            epoll::EventFlags::IN,
        )
        .map_err(os_err)
    }

    /// Adds a port (the receive queue `q`, named `name` here), taking it out
    /// of any set it was in.
    pub(crate) fn insert(self: &Arc<Self>, name: PortName, q: &Arc<Queue>) -> Result<(), Errno> {
        leave_set(q);
        self.watch(q.fd())?;
        self.lock().push((name, Member::Port(Arc::clone(q))));
        *q.in_set.lock().unwrap_or_else(|p| p.into_inner()) = Arc::downgrade(self);
        Ok(())
    }

    /// Adds the link from `pid` (its receiving end `rx`, named `name` here);
    /// the caller took `name` out of any other set first ([`leave_sets`]).
    pub(crate) fn insert_link(&self, name: PortName, pid: u32, rx: &LinkRx) -> Result<(), Errno> {
        let mut fds = vec![rx.arm()];
        fds.extend(rx.rights_fd());
        for (i, &fd) in fds.iter().enumerate() {
            // SAFETY: `fd` is open: it belongs to `rx`, which the caller holds.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            if let Err(e) = self.watch(borrowed) {
                for &done in &fds[..i] {
                    self.unwatch(done);
                }
                return Err(e);
            }
        }
        self.lock().push((name, Member::Link { pid, fds }));
        Ok(())
    }

    /// Takes a descriptor out of the instance (an error means it is closed
    /// already, which took it out).
    fn unwatch(&self, fd: RawFd) {
        // SAFETY: only read by `epoll_ctl(DEL)`; a descriptor closed since
        // fails with `EBADF` and changes nothing.
        let _ = epoll::delete(&self.epoll, unsafe { BorrowedFd::borrow_raw(fd) });
    }

    /// Takes `q` out of the set; whether it was in it.
    fn remove(&self, q: &Queue) -> bool {
        let mut members = self.lock();
        let Some(at) = members
            .iter()
            .position(|(_, m)| matches!(m, Member::Port(p) if std::ptr::eq(&**p, q)))
        else {
            return false;
        };
        let (_, m) = members.remove(at);
        if let Member::Port(m) = m {
            let _ = epoll::delete(&self.epoll, m.fd());
        }
        true
    }

    /// Takes the link member `name` out of the set; whether it was in it.
    pub(crate) fn remove_link(&self, name: PortName) -> bool {
        let mut members = self.lock();
        let Some(at) = members
            .iter()
            .position(|(n, m)| *n == name && matches!(m, Member::Link { .. }))
        else {
            return false;
        };
        if let (_, Member::Link { fds, .. }) = members.remove(at) {
            for fd in fds {
                self.unwatch(fd);
            }
        }
        true
    }

    /// The members now, in the order they were inserted.
    pub(crate) fn members(&self) -> Vec<(PortName, Member)> {
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(PortName, Member)>> {
        self.members.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes the receive queue `q` out of the set it is in, if any (it is being
/// destroyed, moved, or put into another set). Returns whether it was in one.
pub(crate) fn leave_set(q: &Queue) -> bool {
    let set = std::mem::take(&mut *q.in_set.lock().unwrap_or_else(|p| p.into_inner()));
    set.upgrade().is_some_and(|s| s.remove(q))
}

/// Takes the link name `name` out of whichever of this process's sets
/// (`names`) holds it (it is being released, or put into another set).
/// Returns whether one did.
pub(crate) fn leave_sets(names: &Names, name: PortName) -> bool {
    let mut left = false;
    names.for_each(|e| {
        if let Entry::PortSet(set) = e {
            left |= set.remove_link(name);
        }
    });
    left
}
