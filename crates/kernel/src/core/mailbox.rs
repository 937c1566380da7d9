//! Mailboxes: named indirect channels with an owner and an access list.
//!
//! Unlike a port, a mailbox has no single receive right: every task the
//! access list allows may send, receive, or both, and each message goes to
//! exactly one receiver. A mailbox owned by a task dies with it (waiting
//! senders get `DestinationDead`, waiting receivers `SourceDead`); a system
//! mailbox lives until someone with full access destroys it.
//!
//! A grant that takes a permission away takes effect at once, also for the
//! task's operations already blocked on the mailbox: a blocked send that lost
//! send permission fails with `NoPermission` and its message (with its rights)
//! goes back to the sender; a blocked receive that lost receive permission
//! fails with `NoPermission`, the error a new attempt gets. A receive waiting
//! on several sources at once (select) fails as a whole, as a new select over
//! the same names would, and as it does when any one of its sources dies. (A
//! mailbox is never a member of a port set.)

use smallvec::SmallVec;

use super::queue::MsgQueue;
use super::space::Obj;
use super::{Kernel, Locked, Mailbox, MailboxId, WaitId};
use crate::error::{IpcError, ReceiveError, SendErrorKind};
use crate::ipc::{MailboxConfig, Owner};
use crate::name::{Access, Pid, PortName, RightKind};

impl Locked<'_> {
    /// Owner of a task-owned mailbox; anyone with full access to a system one.
    pub(crate) fn may_manage_mailbox(&self, pid: Pid, m: MailboxId) -> bool {
        self.mailboxes.get(m).is_some_and(|mb| match mb.owner {
            Some(owner) => owner == pid,
            None => mb.access(pid) == Access::ALL,
        })
    }

    pub(crate) fn destroy_mailbox(&mut self, m: MailboxId) {
        let Some(mb) = self.mailboxes.remove(m) else {
            return;
        };
        tracing::debug!(target: "mkipc::ipc", mailbox = %mb.name, "mailbox destroyed");
        self.mailbox_names.make_mut().remove(&*mb.name);
        if let Some(owner) = mb.owner {
            if let Some(t) = self.task_mut(owner) {
                t.links_mut().owned_mailboxes.remove(&m);
            }
        }
        let mut queue = mb.queue;
        while let Some(msg) = queue.pop() {
            self.destroy_message(msg);
        }
        for w in queue.blocked_senders.drain(..) {
            self.fail_sender(w, SendErrorKind::DestinationDead);
        }
        for w in queue.blocked_receivers.drain(..) {
            self.fail_receiver(w, ReceiveError::SourceDead);
        }
        let requests = std::mem::take(&mut queue.send_possible);
        self.send_possible_queue_died(super::QueueId::Mailbox(m), requests);
        self.reap();
    }

    /// Fails `pid`'s operations blocked on mailbox `m` that its access no
    /// longer allows (after a grant changed it): sends without send
    /// permission, receives without receive permission, with `NoPermission`.
    fn end_waits_without_access(&mut self, m: MailboxId, pid: Pid) {
        let Some(mb) = self.mailboxes.get(m) else {
            return;
        };
        let access = mb.access(pid);
        if !access.send {
            // Its send-possible requests lapse: it may no longer send.
            let lapsed: SmallVec<[PortName; 2]> = mb
                .queue
                .send_possible
                .keys()
                .filter(|(p, _)| *p == pid)
                .map(|(_, super::BySlot(n))| *n)
                .collect();
            for name in lapsed {
                self.cancel_send_possible(pid, name, super::QueueId::Mailbox(m));
            }
        }
        let Some(mb) = self.mailboxes.get(m) else {
            return;
        };
        let of_pid = |list: &std::collections::VecDeque<WaitId>, allowed: bool| {
            let mut out: SmallVec<[WaitId; 2]> = SmallVec::new();
            if !allowed {
                for &w in list {
                    if self.waits.get(w).is_some_and(|r| r.task == pid) && !out.contains(&w) {
                        out.push(w);
                    }
                }
            }
            out
        };
        let senders = of_pid(&mb.queue.blocked_senders, access.send);
        let receivers = of_pid(&mb.queue.blocked_receivers, access.receive);
        if senders.is_empty() && receivers.is_empty() {
            return;
        }
        tracing::debug!(target: "mkipc::ipc", mailbox = %mb.name, %pid, "access revoked: blocked operations fail");
        for w in senders {
            if let Some(mb) = self.mailboxes.get_mut(m) {
                super::queue::remove_waiter(&mut mb.queue.blocked_senders, w);
            }
            self.fail_sender(w, SendErrorKind::NoPermission);
        }
        for w in receivers {
            // Unregisters it from every source, not just this mailbox.
            self.fail_receiver(w, ReceiveError::NoPermission);
        }
        self.reap();
    }

    fn mailbox_of(&mut self, pid: Pid, name: PortName) -> Result<MailboxId, IpcError> {
        match self.resolve(pid, name)? {
            Obj::Mailbox(m) => Ok(m),
            Obj::Dead(_) => Err(IpcError::DeadName),
            _ => Err(IpcError::WrongRight {
                needed: RightKind::Mailbox,
            }),
        }
    }
}

impl Kernel {
    /// Creates a named mailbox (see [`Ipc::mailbox_create`](crate::Ipc::mailbox_create)).
    pub fn mailbox_create(
        &self,
        pid: Pid,
        name: &str,
        config: MailboxConfig,
    ) -> Result<PortName, IpcError> {
        crate::name_rules::validate_name(name)?;
        let capacity = config.capacity.validate()?;
        let mut st = self.lock();
        if st.task(pid).is_none() {
            return Err(IpcError::TaskExited);
        }
        if st.mailbox_names.contains_key(name) {
            return Err(IpcError::AlreadyExists);
        }
        let mut acl: std::collections::BTreeMap<Pid, Access> =
            config.grants.iter().copied().collect();
        let owner = match config.owner {
            Owner::Creator => Some(pid),
            Owner::System => {
                acl.insert(pid, Access::ALL);
                None
            }
        };
        let queue = MsgQueue::new(capacity, st.config.queue_memory_limit);
        let m = st.mailboxes.insert(Mailbox {
            name: name.into(),
            owner,
            acl,
            default_access: config.default_access,
            queue,
        });
        st.mailbox_names.make_mut().insert(name.to_owned(), m);
        if owner.is_some() {
            st.task_mut(pid)
                .expect("live")
                .links_mut()
                .owned_mailboxes
                .insert(m);
        }
        tracing::debug!(target: "mkipc::ipc", %pid, mailbox = name, %capacity, "mailbox created");
        Ok(st.space_mut(pid).alloc(Obj::Mailbox(m)))
    }

    /// Opens a mailbox by name with the access its list gives `pid`.
    pub fn mailbox_open(&self, pid: Pid, name: &str) -> Result<PortName, IpcError> {
        crate::name_rules::validate_name(name)?;
        let mut st = self.lock();
        if st.task(pid).is_none() {
            return Err(IpcError::TaskExited);
        }
        let &m = st.mailbox_names.get(name).ok_or(IpcError::NotFound)?;
        if st
            .mailboxes
            .get(m)
            .expect("named mailbox is live")
            .access(pid)
            .is_none()
        {
            return Err(IpcError::NoPermission);
        }
        Ok(st.space_mut(pid).alloc(Obj::Mailbox(m)))
    }

    /// Changes a task's access to a mailbox. Taking a permission away also
    /// fails that task's operations blocked on the mailbox which need it,
    /// with `NoPermission` (a blocked sender gets its message back).
    pub fn mailbox_grant(
        &self,
        pid: Pid,
        mailbox: PortName,
        to: Pid,
        access: Access,
    ) -> Result<(), IpcError> {
        let mut st = self.lock();
        let m = st.mailbox_of(pid, mailbox)?;
        if !st.may_manage_mailbox(pid, m) {
            return Err(IpcError::NoPermission);
        }
        st.mailboxes
            .get_mut(m)
            .expect("live")
            .acl
            .insert(to, access);
        st.end_waits_without_access(m, to);
        Ok(())
    }

    /// Destroys a mailbox.
    pub fn mailbox_destroy(&self, pid: Pid, mailbox: PortName) -> Result<(), IpcError> {
        let mut st = self.lock();
        let m = st.mailbox_of(pid, mailbox)?;
        if !st.may_manage_mailbox(pid, m) {
            return Err(IpcError::NoPermission);
        }
        st.destroy_mailbox(m);
        Ok(())
    }
}
