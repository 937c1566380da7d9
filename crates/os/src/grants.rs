//! Per-process grants on a mailbox: its access list kept by the run's broker.
//!
//! A POSIX queue has one mode for owner, group and others, and any process
//! of the user may open it by name, so a pid's access cannot be a mode. A
//! mailbox created with grants (`MailboxConfig::grants` not empty) is
//! therefore a queue **nobody opens by name**: its creator opens it three
//! ways (read-write, write-only, read-only), sets its mode to 0000 and hands
//! the three descriptors and the access list to the run's broker
//! ([`crate::broker`]). `mailbox_open` asks the broker first; the broker
//! knows the caller's pid from the socket (`SO_PEERCRED`), works out its
//! access as the kernel does (the owner: all; else its grant, else the
//! default) and gives a copy of the descriptor with exactly that access, or
//! `NoPermission`. `mailbox_grant` changes the list in the broker; a process
//! whose grant grew gets the new descriptor on its next send or receive
//! that needs it. A grant that shrinks for a process holding descriptors is
//! written into the mailbox's access page ([`crate::access_page`]), which
//! its sends and receives look at: a descriptor cannot be taken back, but
//! mkipc stops using it.
//!
//! What is refused with `Unsupported(Grants)`: grants on a mailbox created
//! without any (its name is open to every process its
//! mode allows), and a granted mailbox carried in a message or at spawn
//! (the descriptor would carry the sender's access past the list). The
//! boundary stays the Unix user (DESIGN.md, "Trust"): a process of the same
//! user that bypasses mkipc can reach the queue through `/proc`; mode 0000
//! keeps other users' processes out (root ignores modes).

use std::collections::BTreeMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use mkipc_kernel::error::Unsupported;
use mkipc_kernel::ipc::Owner;
use mkipc_kernel::name::{Access, RightKind};
use mkipc_kernel::{IpcError, MailboxConfig, Pid, PortName};

use crate::access_page::{AccessPage, Allowed};
use crate::errno;
use crate::names::{Entry, Names};
use crate::process::OsProcess;
use crate::queue::Queue;
use crate::sys::{self, Errno};

/// Access bits on the wire (bit 0 send, bit 1 receive), as in a right descriptor.
pub(crate) fn access_bits(a: Access) -> u8 {
    u8::from(a.send) | (u8::from(a.receive) << 1)
}

/// The access the bits give.
pub(crate) fn access_from(b: u8) -> Access {
    Access {
        send: b & 1 != 0,
        receive: b & 2 != 0,
    }
}

/// Whether `a` allows everything `b` does.
fn covers(a: Access, b: Access) -> bool {
    (a.send || !b.send) && (a.receive || !b.receive)
}

/// A granted mailbox, as the broker keeps it.
pub(crate) struct Granted {
    /// The creator's pid (all access).
    owner: u32,
    /// A system mailbox: a process with all access may manage it too.
    system: bool,
    default: Access,
    acl: BTreeMap<u32, Access>,
    /// The access each process was given descriptors with.
    opened: BTreeMap<u32, Access>,
    /// The POSIX name (to check that it still exists).
    posix: String,
    /// Read-write, write-only, read-only.
    fds: [OwnedFd; 3],
    /// What each opener may still do (`crate::access_page`).
    page: AccessPage,
}

/// Why the broker refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Refused {
    /// No such granted mailbox (the caller then opens the name as usual).
    NotFound,
    /// The caller may not do it.
    NoPermission,
    /// The OS cannot do it (taking back a descriptor).
    Unsupported,
}

fn alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

impl Granted {
    /// A mailbox its creator `owner` registers with its three descriptors.
    pub(crate) fn new(
        owner: u32,
        system: bool,
        default: Access,
        posix: String,
        fds: Vec<OwnedFd>,
    ) -> Option<Granted> {
        let [rw, w, r]: [OwnedFd; 3] = fds.try_into().ok()?;
        let page = AccessPage::new().ok()?;
        Some(Granted {
            page,
            owner,
            system,
            default,
            acl: BTreeMap::new(),
            opened: BTreeMap::new(),
            posix,
            fds: [rw, w, r],
        })
    }

    /// Whether its queue still exists (a killed creator's was unlinked by
    /// whoever reaped it).
    pub(crate) fn exists(&self) -> bool {
        !matches!(
            sys::mq_open(&self.posix, libc::O_RDONLY, None),
            Err(libc::ENOENT)
        )
    }

    fn access(&self, pid: u32) -> Access {
        if pid == self.owner {
            return Access::ALL;
        }
        self.acl.get(&pid).copied().unwrap_or(self.default)
    }

    fn may_manage(&self, pid: u32) -> bool {
        pid == self.owner || (self.system && self.access(pid) == Access::ALL)
    }

    /// Opens it for `pid`: its access, a descriptor with exactly that
    /// access, and the access page.
    pub(crate) fn open(&mut self, pid: u32) -> Result<(Access, OwnedFd, OwnedFd), Refused> {
        let access = self.access(pid);
        let fd = match (access.send, access.receive) {
            (true, true) => &self.fds[0],
            (true, false) => &self.fds[1],
            (false, true) => &self.fds[2],
            (false, false) => return Err(Refused::NoPermission),
        };
        let fd = sys::dup(fd.as_fd()).map_err(|_| Refused::NotFound)?;
        let page = self.page.dup_fd().map_err(|_| Refused::NotFound)?;
        // Listed as it is now: an earlier descriptor of `pid` may do as much.
        if self.opened.contains_key(&pid) {
            self.page
                .set(pid, access)
                .map_err(|_| Refused::Unsupported)?;
        }
        let was = self.opened.get(&pid).copied().unwrap_or(Access::NONE);
        self.opened.insert(
            pid,
            Access {
                send: was.send || access.send,
                receive: was.receive || access.receive,
            },
        );
        Ok((access, fd, page))
    }

    /// `by` sets `pid`'s access.
    pub(crate) fn grant(&mut self, by: u32, pid: u32, access: Access) -> Result<(), Refused> {
        if !self.may_manage(by) {
            return Err(Refused::NoPermission);
        }
        let held = self.opened.get(&pid).copied().unwrap_or(Access::NONE);
        let next = if pid == self.owner {
            Access::ALL
        } else {
            access
        };
        if !covers(next, held) && !alive(pid) {
            self.opened.remove(&pid);
        }
        // A process holding descriptors learns its access from the page
        // (taken back, or given back): `crate::access_page`.
        if self.opened.contains_key(&pid) {
            self.page.set(pid, next).map_err(|_| Refused::Unsupported)?;
        }
        self.acl.insert(pid, access);
        Ok(())
    }

    /// Whether `by` may remove it from the broker (`mailbox_destroy`, the
    /// creator's end).
    pub(crate) fn may_forget(&self, by: u32) -> bool {
        self.may_manage(by)
    }
}

/// Opens the write-only and read-only descriptors of a just-created queue
/// (read-write is `rw`), then takes every mode bit away, so that nobody
/// opens it by name.
fn seal_by_name(posix: &str, rw: BorrowedFd<'_>) -> Result<Vec<OwnedFd>, Errno> {
    let w = sys::mq_open(posix, libc::O_WRONLY, None)?;
    let r = sys::mq_open(posix, libc::O_RDONLY, None)?;
    sys::fchmod(rw, 0)?;
    Ok(vec![sys::dup(rw)?, w, r])
}

impl OsProcess {
    /// `mailbox_create` with grants: the queue, sealed against opens by
    /// name, handed to the broker with its access list.
    pub(crate) fn create_granted_mailbox(
        &self,
        name: &str,
        config: &MailboxConfig,
    ) -> Result<PortName, IpcError> {
        let system = config.owner == Owner::System;
        let mb = self.create_mailbox_queue(name, config.capacity, Access::NONE, system)?;
        let kept = self.hand_to_broker(mb, config, system);
        if let Err(e) = kept {
            let _ = mkipc_kernel::Ipc::mailbox_destroy(self, mb);
            return Err(e);
        }
        Ok(mb)
    }

    fn hand_to_broker(
        &self,
        mb: PortName,
        config: &MailboxConfig,
        system: bool,
    ) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let Entry::Mailbox { queue, .. } = names.get_mut(mb)? else {
            return Err(IpcError::InvalidValue);
        };
        if let Some(q) = Arc::get_mut(queue) {
            q.granted = true;
        }
        let posix = queue.name.clone();
        let fds = seal_by_name(&posix, queue.fd()).map_err(errno::ipc_error)?;
        drop(names);
        self.broker_client
            .mailbox_granted(&self.run, &posix, config.default_access, system, &fds)
            .map_err(errno::ipc_error)?;
        for &(pid, access) in &config.grants {
            self.broker_client
                .mailbox_grant(&self.run, &posix, pid.0, access)
                .map_err(errno::ipc_error)?;
        }
        Ok(())
    }

    /// `mailbox_open` of a granted mailbox through the broker; `None` if
    /// the broker keeps no such mailbox (then it is opened by name).
    pub(crate) fn open_granted(&self, posix: &str) -> Result<Option<PortName>, IpcError> {
        let (access, fd, page) = match self.broker_client.mailbox_open(&self.run, posix) {
            Ok(x) => x,
            Err(libc::EACCES) => return Err(IpcError::NoPermission),
            // No such granted mailbox, no broker for this run, or one that
            // does not serve this user (whose processes a granted
            // mailbox's mode 0000 keeps out anyway): open it by name.
            Err(_) => return Ok(None),
        };
        let mut queue = granted_queue(fd, posix, access, page).map_err(errno::ipc_error)?;
        queue.cap = self.mailbox_page(&queue, posix);
        Ok(Some(self.insert(Entry::Mailbox {
            queue: Arc::new(queue),
            access,
            owned: false,
            system: false,
        })))
    }

    /// `mailbox_grant` on a mailbox this process holds.
    pub(crate) fn grant(
        &self,
        mailbox: PortName,
        pid: Pid,
        access: Access,
    ) -> Result<(), IpcError> {
        let posix = match self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(mailbox)?
        {
            Entry::Mailbox { queue, .. } if queue.granted => queue.name.clone(),
            // Created without an access list: open by name to its mode.
            Entry::Mailbox { .. } => return Err(IpcError::Unsupported(Unsupported::Grants)),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Mailbox,
                })
            }
        };
        match self
            .broker_client
            .mailbox_grant(&self.run, &posix, pid.0, access)
        {
            Ok(()) => Ok(()),
            Err(libc::EPERM) => Err(IpcError::NoPermission),
            Err(libc::EBUSY) => Err(IpcError::Unsupported(Unsupported::Grants)),
            Err(libc::ENOENT) => Err(IpcError::DeadName),
            Err(e) => Err(errno::ipc_error(e)),
        }
    }

    /// The granted mailbox under `name` lacks an access this process now
    /// wants: asks the broker again (its grant may have grown) and puts the
    /// new descriptor under the name.
    pub(crate) fn refresh_granted(&self, names: &mut Names, name: PortName) {
        let Ok(Entry::Mailbox { queue, .. }) = names.get(name) else {
            return;
        };
        let posix = queue.name.clone();
        let Ok((access, fd, page)) = self.broker_client.mailbox_open(&self.run, &posix) else {
            return;
        };
        let Ok(mut fresh) = granted_queue(fd, &posix, access, page) else {
            return;
        };
        fresh.cap = queue.cap.clone();
        if let Ok(Entry::Mailbox {
            queue, access: a, ..
        }) = names.get_mut(name)
        {
            *queue = Arc::new(fresh);
            *a = access;
        }
    }

    /// Tells the broker a granted mailbox is gone.
    pub(crate) fn forget_granted(&self, queue: &Queue) {
        if queue.granted {
            let _ = self.broker_client.mailbox_forget(&self.run, &queue.name);
        }
    }
}

fn granted_queue(fd: OwnedFd, posix: &str, access: Access, page: OwnedFd) -> Result<Queue, Errno> {
    let mut q = Queue::from_fd(fd, posix.to_string(), access.receive, access.send)?;
    q.watch = true;
    q.granted = true;
    q.allowed = Some(Allowed::new(AccessPage::adopt(page)?, access));
    Ok(q)
}
