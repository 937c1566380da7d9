//! Direct addressing: `send_to(pid)` / `receive_from(pid)` / `receive_from_any()`.
//!
//! The kernel keeps one link per ordered pair of tasks, created on first use.
//! A link is an ordinary port whose receive right the receiving task holds
//! implicitly (it has no name), with its own capacity; all links into a task
//! form that task's *inbox* port set, which is what `receive_from_any` waits
//! on. When the sending task exits, the link is closed for writing: the
//! receiver still gets everything already sent, then `SourceDead` (end of
//! stream), like reading a pipe whose writer closed.

use super::queue::MsgQueue;
use super::{KRight, Kernel, Locked, Port, PortId, QueueId, Receiver};
use crate::capacity::Capacity;
use crate::error::IpcError;
use crate::name::Pid;

impl Locked<'_> {
    /// The link from `from` to `to` (which must be alive), created on first use.
    pub(crate) fn link_port(&mut self, from: Pid, to: Pid) -> PortId {
        let target = self.task(to).expect("live receiver").links();
        if let Some(&p) = target.links_in.get(&from) {
            return p;
        }
        let capacity = target
            .link_capacity
            .get(&from)
            .copied()
            .unwrap_or(self.config.link_capacity);
        let inbox = self.inbox_of(to);
        let writer_closed = self.task(from).is_none();
        let queue = MsgQueue::new(capacity, self.config.queue_memory_limit);
        let port = self.ports.insert(Port {
            queue,
            receiver: Receiver::Task(to),
            set: Some(inbox),
            send_rights: 0,
            send_once_rights: 0,
            requests: None,
            link: Some((from, to)),
            writer_closed,
        });
        self.sets
            .get_mut(inbox)
            .expect("live inbox")
            .members
            .insert(port);
        self.task_mut(to)
            .expect("live")
            .links_mut()
            .links_in
            .insert(from, port);
        if let Some(t) = self.task_mut(from) {
            t.links_mut().links_out.insert(to, port);
        }
        port
    }

    /// The writer of a link exited: receivers blocked on that link alone see
    /// end of stream once it is empty, and a drained link is reclaimed.
    pub(crate) fn close_link_writer(&mut self, port: PortId) {
        let Some(p) = self.ports.get_mut(port) else {
            return;
        };
        p.writer_closed = true;
        self.reclaim_link_if_drained(port);
    }

    /// A link whose writer has exited and that holds nothing more is
    /// destroyed (at the caller's next `reap`): receivers blocked on it
    /// alone get `SourceDead`, it leaves the receiver's inbox, and a later
    /// `receive_from` of the exited task answers `SourceDead` as before,
    /// from the task being gone. Without this, a server that served many
    /// short-lived clients kept one dead link per client, and every
    /// `receive_from_any` looked at all of them.
    pub(crate) fn reclaim_link_if_drained(&mut self, port: PortId) {
        let Some(p) = self.ports.get(port) else {
            return;
        };
        if p.link.is_some()
            && p.writer_closed
            && p.queue.messages.is_empty()
            && p.queue.blocked_senders.is_empty()
        {
            self.graveyard.push(KRight::Receive(port));
        }
    }
}

impl Kernel {
    /// Sets the capacity of the link from `from` into `pid`.
    pub fn set_link_capacity(
        &self,
        pid: Pid,
        from: Pid,
        capacity: Capacity,
    ) -> Result<(), IpcError> {
        let capacity = capacity.validate()?;
        let mut st = self.lock();
        let task = st.task_mut(pid).ok_or(IpcError::TaskExited)?;
        let links = task.links_mut();
        links.link_capacity.insert(from, capacity);
        if let Some(&port) = links.links_in.get(&from) {
            st.ports.get_mut(port).expect("live link").queue.capacity = capacity;
            st.refill(QueueId::Port(port));
            st.reap();
        }
        Ok(())
    }
}
