//! The one IPC API every backend implements.
//!
//! User code is written against [`Ipc`]: the kernel's thread-backed
//! [`Task`](crate::Task), the simulator's processes (`mkipc-sim`) and real OS
//! processes (`mkipc-os`) all implement it, and the conformance suite
//! ([`crate::conformance`]) is the executable definition of what it means.
//!
//! Each operation has one required method taking a policy ([`OnFull`] for
//! sends, [`Wait`] for receives); the blocking, non-blocking (`try_`) and timed
//! (`_timeout`) forms are provided wrappers, so a backend writes each operation
//! once.
//!
//! ```
//! use mkipc_kernel::{Capacity, Ipc, Kernel, Message, ReceiveError};
//!
//! /// Written once against the trait: runs on threads, in the simulator, or on real processes.
//! fn echo_once<P: Ipc>(p: &P) -> Result<u64, Box<dyn std::error::Error>> {
//!     let port = p.port_allocate(Capacity::Bounded(4))?;
//!     p.send(port, Message::from_u64(1, 42))?;
//!     let got = p.receive(port)?;
//!     assert_eq!(p.try_receive(port), Err(ReceiveError::Empty));
//!     Ok(got.as_u64().unwrap_or_default())
//! }
//!
//! let kernel = Kernel::new();
//! let task = kernel.spawn_task();
//! assert_eq!(echo_once(&task).unwrap(), 42);
//! ```

use std::time::Duration;

use crate::capacity::{Capacity, OnFull, Sent, Wait};
use crate::error::{
    CallError, IpcError, ReceiveError, SendError, SendErrorKind, SmallReceiveError, Unsupported,
};
use crate::message::{Message, Notification, NotifyKind, SmallMessage};
use crate::name::{Access, Pid, PortName, RightKind, RightSet};

/// Who owns a mailbox, which decides how long it lives.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Owner {
    /// The creating task: the mailbox is destroyed when that task exits or destroys it.
    Creator,
    /// The system: the mailbox persists until explicitly destroyed.
    System,
}

/// How to create a mailbox.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MailboxConfig {
    /// How many messages it holds.
    pub capacity: Capacity,
    /// Who owns it.
    pub owner: Owner,
    /// Access for tasks not on the access list (the owner always has full access).
    pub default_access: Access,
    /// Per-task grants, applied at creation (more with [`Ipc::mailbox_grant`]).
    pub grants: Vec<(Pid, Access)>,
}

impl MailboxConfig {
    /// A mailbox owned by its creator, open to every task for sending and receiving.
    pub fn new(capacity: Capacity) -> MailboxConfig {
        MailboxConfig {
            capacity,
            owner: Owner::Creator,
            default_access: Access::ALL,
            grants: Vec::new(),
        }
    }
    /// Sets the owner.
    pub fn owner(mut self, owner: Owner) -> MailboxConfig {
        self.owner = owner;
        self
    }
    /// Sets the access of tasks not on the access list.
    pub fn default_access(mut self, access: Access) -> MailboxConfig {
        self.default_access = access;
        self
    }
    /// Grants a task access.
    pub fn grant(mut self, pid: Pid, access: Access) -> MailboxConfig {
        self.grants.push((pid, access));
        self
    }
}

/// What [`Ipc::port_status`] reports about a port or mailbox.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct PortStatus {
    /// Messages queued now.
    pub queue_len: usize,
    /// The capacity model.
    pub capacity: Capacity,
    /// Send rights in existence (user references in every space, in messages,
    /// in the name service). Zero for mailboxes.
    pub send_rights: u32,
    /// Send-once rights in existence.
    pub send_once_rights: u32,
    /// Sequence number the next received message will carry.
    pub seqno: u64,
    /// Senders blocked on the queue.
    pub blocked_senders: usize,
    /// Receivers blocked on the queue.
    pub blocked_receivers: usize,
    /// Messages ever accepted.
    pub messages_sent: u64,
    /// Messages discarded by a drop policy.
    pub messages_dropped: u64,
    /// The largest queue length seen.
    pub max_queue_len: usize,
}

/// The IPC API user code is written against, whatever runs it.
///
/// Names ([`PortName`]) are local to the implementing task. Rights operations
/// never block; sends and receives take a policy saying whether and how long
/// they may wait.
pub trait Ipc {
    /// This task's process id.
    fn pid(&self) -> Pid;

    // ----- ports and rights -------------------------------------------------

    /// Allocates a port with the given capacity; returns the name of its receive right.
    fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError>;
    /// Allocates an empty port set.
    fn port_set_allocate(&self) -> Result<PortName, IpcError>;
    /// Moves the port whose receive right is `member` into `set` (out of any other set).
    fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError>;
    /// Takes the port whose receive right is `member` out of its set.
    fn port_set_remove(&self, member: PortName) -> Result<(), IpcError>;
    /// Makes a right from a receive right this task holds: `MakeSend` adds a send
    /// reference under the same name (returned), `MakeSendOnce` returns a new
    /// send-once name. Other dispositions are [`IpcError::InvalidValue`].
    fn make_right(
        &self,
        name: PortName,
        disposition: crate::Disposition,
    ) -> Result<PortName, IpcError>;
    /// Releases one user reference of a send right, send-once right or dead
    /// name (`mach_port_deallocate`). A send-once right released this way sends
    /// a send-once notification.
    fn deallocate(&self, name: PortName) -> Result<(), IpcError>;
    /// Destroys every right under the name (`mach_port_destroy`): a receive
    /// right destroys the port, a port set is dissolved, a mailbox name closed.
    fn destroy(&self, name: PortName) -> Result<(), IpcError>;
    /// Adds `delta` user references of `right` (`Send` or `DeadName`; `Receive`,
    /// `SendOnce` and `PortSet` accept only -1, which releases the right).
    fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError>;
    /// The rights the name denotes.
    fn rights(&self, name: PortName) -> Result<RightSet, IpcError>;
    /// The queue of the port whose receive right (or mailbox) the name denotes.
    fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError>;
    /// Changes the capacity of the port whose receive right (or mailbox, as
    /// owner) the name denotes. Growing wakes blocked senders; shrinking keeps
    /// queued messages (new sends wait until the queue drains below the limit).
    fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError>;
    /// Asks for a notification about `name`, delivered to `notify` (a port
    /// whose receive right this task holds) as a message whose
    /// [`Message::notification`] decodes it.
    fn request_notification(
        &self,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError>;

    // ----- messages -----------------------------------------------------------

    /// Sends `msg` to the port or mailbox `dest`, applying `on_full` when it
    /// cannot be taken now. The primitive behind [`send`](Ipc::send),
    /// [`try_send`](Ipc::try_send) and [`send_timeout`](Ipc::send_timeout).
    fn send_with(&self, dest: PortName, msg: Message, on_full: OnFull) -> Result<Sent, SendError>;
    /// Receives from a receive right, port set or mailbox, waiting per `wait`.
    fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError>;
    /// Sends a rights-free message with body `body` (a typed send): the
    /// same as `send_with(dest, Message::new(id, body), on_full)` in every
    /// respect (order among other senders, blocking, errors; a failed send
    /// gives that `Message` back), but a thread-backed task whose port has
    /// an open lane moves the bytes straight into the lane's slot, building
    /// no `Message` (`core/lane.rs`, "The typed path"). The default builds
    /// the `Message`.
    fn send_small_with(
        &self,
        dest: PortName,
        id: u32,
        body: &[u8],
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        self.send_with(dest, Message::new(id, body), on_full)
    }
    /// Receives as `receive_with` does (the same message, blocking and
    /// errors), returning it as a plain [`SmallMessage`] when it is small;
    /// a message that is not comes back whole in
    /// [`SmallReceiveError::NotSmall`]. On an open lane the entry is copied
    /// straight out of the slot. The default converts what `receive_with`
    /// returns.
    fn receive_small_with(
        &self,
        source: PortName,
        wait: Wait,
    ) -> Result<SmallMessage, SmallReceiveError> {
        let m = self.receive_with(source, wait)?;
        SmallMessage::from_message(m).map_err(|m| SmallReceiveError::NotSmall(Box::new(m)))
    }
    /// Receives the oldest message from any of `sources` (a select); the
    /// message's trailer says which name it came from.
    fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError>;
    /// Sends `msg` with a fresh send-once reply right and waits for the reply
    /// (`mach_msg` with send and receive in one call).
    fn call_with(&self, dest: PortName, msg: Message, wait: Wait) -> Result<Message, CallError>;

    // ----- direct addressing ---------------------------------------------------

    /// Sends directly to a task, over the link the kernel keeps for this pair.
    fn send_to_with(&self, pid: Pid, msg: Message, on_full: OnFull) -> Result<Sent, SendError>;
    /// Receives the next message `pid` sent directly to this task (symmetric
    /// addressing). [`ReceiveError::SourceDead`] once `pid` has exited and its
    /// messages are all received: end of stream.
    fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError>;
    /// Receives the oldest message any task sent directly to this task
    /// (asymmetric addressing); [`Message::sender`] tells who sent it.
    fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError>;
    /// Sets the capacity of the link from `pid` to this task.
    fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError>;

    // ----- mailboxes and the name service ---------------------------------------

    /// Creates a named mailbox; returns this task's name for it (full access).
    fn mailbox_create(&self, name: &str, config: MailboxConfig) -> Result<PortName, IpcError>;
    /// Opens a mailbox by name, with the access its access list gives this task.
    fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError>;
    /// Grants `pid` access to a mailbox this task owns (or, for a system
    /// mailbox, has full access to). `Access::NONE` revokes. A permission
    /// taken away takes effect at once: `pid`'s sends (receives) blocked on
    /// the mailbox fail with `NoPermission`, a sender getting its message
    /// back; a select that includes the mailbox fails as a whole.
    fn mailbox_grant(&self, mailbox: PortName, pid: Pid, access: Access) -> Result<(), IpcError>;
    /// Destroys a mailbox this task owns (or a system mailbox it has full access
    /// to); waiting senders and receivers fail with the "dead" errors.
    fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError>;
    /// Registers a send right under a service name (like Mach's bootstrap
    /// server). `right` may name a send right or a receive right.
    fn register(&self, service: &str, right: PortName) -> Result<(), IpcError>;
    /// Removes a service name this task registered.
    fn unregister(&self, service: &str) -> Result<(), IpcError>;
    /// Looks a service up; returns a send right to it in this task's space.
    fn look_up(&self, service: &str) -> Result<PortName, IpcError>;

    // ----- provided wrappers ------------------------------------------------------

    /// Sends, waiting as long as it takes.
    fn send(&self, dest: PortName, msg: Message) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Block).map(drop)
    }
    /// Sends only if it can complete now; otherwise [`SendErrorKind::Full`].
    fn try_send(&self, dest: PortName, msg: Message) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Fail).map(drop)
    }
    /// Sends, waiting at most `timeout`; then [`SendErrorKind::TimedOut`].
    fn send_timeout(
        &self,
        dest: PortName,
        msg: Message,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Timeout(timeout))
            .map(drop)
    }
    /// Receives, waiting as long as it takes.
    fn receive(&self, source: PortName) -> Result<Message, ReceiveError> {
        self.receive_with(source, Wait::Forever)
    }
    /// Receives only if a message is there now; otherwise [`ReceiveError::Empty`].
    fn try_receive(&self, source: PortName) -> Result<Message, ReceiveError> {
        self.receive_with(source, Wait::NoWait)
    }
    /// Receives, waiting at most `timeout`; then [`ReceiveError::TimedOut`].
    fn receive_timeout(
        &self,
        source: PortName,
        timeout: Duration,
    ) -> Result<Message, ReceiveError> {
        self.receive_with(source, Wait::For(timeout))
    }
    /// A typed send of `body`, waiting as long as it takes (see
    /// [`send_small_with`](Ipc::send_small_with)).
    #[inline]
    fn send_small(&self, dest: PortName, id: u32, body: &[u8]) -> Result<(), SendError> {
        self.send_small_with(dest, id, body, OnFull::Block)
            .map(drop)
    }
    /// A typed send that completes now or fails with [`SendErrorKind::Full`].
    #[inline]
    fn try_send_small(&self, dest: PortName, id: u32, body: &[u8]) -> Result<(), SendError> {
        self.send_small_with(dest, id, body, OnFull::Fail).map(drop)
    }
    /// A typed send of `value`'s little-endian bytes: `send(dest,
    /// Message::from_u64(id, value))` without the `Message`.
    #[inline]
    fn send_u64(&self, dest: PortName, id: u32, value: u64) -> Result<(), SendError> {
        self.send_small(dest, id, &value.to_le_bytes())
    }
    /// A typed receive, waiting as long as it takes (see
    /// [`receive_small_with`](Ipc::receive_small_with)).
    #[inline]
    fn receive_small(&self, source: PortName) -> Result<SmallMessage, SmallReceiveError> {
        self.receive_small_with(source, Wait::Forever)
    }
    /// A typed receive of what is there now; otherwise [`ReceiveError::Empty`].
    #[inline]
    fn try_receive_small(&self, source: PortName) -> Result<SmallMessage, SmallReceiveError> {
        self.receive_small_with(source, Wait::NoWait)
    }
    /// Receives from whichever of `sources` has a message first.
    fn select(&self, sources: &[PortName]) -> Result<Message, ReceiveError> {
        self.select_with(sources, Wait::Forever)
    }
    /// RPC: sends and waits for the reply.
    fn call(&self, dest: PortName, msg: Message) -> Result<Message, CallError> {
        self.call_with(dest, msg, Wait::Forever)
    }
    /// RPC with a limit on the wait for the reply.
    fn call_timeout(
        &self,
        dest: PortName,
        msg: Message,
        timeout: Duration,
    ) -> Result<Message, CallError> {
        self.call_with(dest, msg, Wait::For(timeout))
    }
    /// Replies to a request received from [`call`](Ipc::call): sends `reply`
    /// with the request's send-once reply right. Never blocks (send-once
    /// messages bypass queue limits). A request without a reply right gives
    /// [`SendErrorKind::InvalidDestination`].
    fn reply(&self, request: &Message, reply: Message) -> Result<(), SendError> {
        match request.reply() {
            Some(right) if !right.name.is_dead() => {
                self.send_with(right.name, reply, OnFull::Block).map(drop)
            }
            Some(_) => Err(SendErrorKind::DestinationDead.with(reply)),
            None => Err(SendErrorKind::InvalidDestination.with(reply)),
        }
    }
    /// Sends directly to a task, waiting as long as it takes.
    fn send_to(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Block).map(drop)
    }
    /// Sends directly to a task only if it can complete now.
    fn try_send_to(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Fail).map(drop)
    }
    /// Sends directly to a task, waiting at most `timeout`.
    fn send_to_timeout(&self, pid: Pid, msg: Message, timeout: Duration) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Timeout(timeout))
            .map(drop)
    }
    /// Receives directly from a task only if a message is there now.
    fn try_receive_from(&self, pid: Pid) -> Result<Message, ReceiveError> {
        self.receive_from_with(pid, Wait::NoWait)
    }
    /// Receives directly from a task, waiting at most `timeout`.
    fn receive_from_timeout(&self, pid: Pid, timeout: Duration) -> Result<Message, ReceiveError> {
        self.receive_from_with(pid, Wait::For(timeout))
    }
    /// Receives directly from any task only if a message is there now.
    fn try_receive_from_any(&self) -> Result<Message, ReceiveError> {
        self.receive_from_any_with(Wait::NoWait)
    }
    /// Receives directly from any task, waiting at most `timeout`.
    fn receive_from_any_timeout(&self, timeout: Duration) -> Result<Message, ReceiveError> {
        self.receive_from_any_with(Wait::For(timeout))
    }
    /// Receives from whichever of `sources` has a message now.
    fn try_select(&self, sources: &[PortName]) -> Result<Message, ReceiveError> {
        self.select_with(sources, Wait::NoWait)
    }
    /// Receives from whichever of `sources` has a message first, waiting at most `timeout`.
    fn select_timeout(
        &self,
        sources: &[PortName],
        timeout: Duration,
    ) -> Result<Message, ReceiveError> {
        self.select_with(sources, Wait::For(timeout))
    }
    /// Receives directly from a task, waiting as long as it takes.
    fn receive_from(&self, pid: Pid) -> Result<Message, ReceiveError> {
        self.receive_from_with(pid, Wait::Forever)
    }
    /// Receives directly from any task, waiting as long as it takes.
    fn receive_from_any(&self) -> Result<Message, ReceiveError> {
        self.receive_from_any_with(Wait::Forever)
    }
    /// Looks at the message a receive from `source` (a receive right, port
    /// set or mailbox) would take now, without taking it: a copy of its id,
    /// body and trailer (sender, the name, and the sequence number it will
    /// be received with). The rights the message carries are *not* moved:
    /// they stay in the queued message, so the copy carries none (its
    /// [`rights`](Message::rights) and [`reply`](Message::reply) are empty,
    /// and a port-destroyed notification does not decode). Never waits:
    /// [`ReceiveError::Empty`] when nothing is there. A backend that cannot
    /// look without taking answers [`Unsupported::Peek`].
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message, ReceiveError};
    /// let task = Kernel::new().spawn_task();
    /// let port = task.port_allocate(Capacity::Unbounded).unwrap();
    /// assert_eq!(task.peek(port), Err(ReceiveError::Empty));
    /// task.send(port, Message::new(7, b"first")).unwrap();
    /// task.send(port, Message::new(8, b"second")).unwrap();
    /// let head = task.peek(port).unwrap();
    /// assert_eq!((head.id, &head.body[..]), (7, &b"first"[..]));
    /// let taken = task.receive(port).unwrap(); // the same message, now taken
    /// assert_eq!(taken.trailer().unwrap().seqno, head.trailer().unwrap().seqno);
    /// assert_eq!(task.peek(port).unwrap().id, 8);
    /// ```
    fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        let _ = source;
        Err(ReceiveError::Unsupported(Unsupported::Peek))
    }
    /// Selective receive (as Erlang's `receive` with a pattern): takes the
    /// oldest message from `source` that `filter` passes, waiting per
    /// `wait`. Messages that do not match stay queued, in order, for other
    /// receives; a blocked selective receive is completed only by a matching
    /// arrival. Taking from the middle of a queue costs a pass over it. A
    /// backend whose queues give messages only in order answers
    /// [`Unsupported::SelectiveReceive`].
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Filter, Ipc, Kernel, Message, ReceiveError};
    /// let task = Kernel::new().spawn_task();
    /// let port = task.port_allocate(Capacity::Unbounded).unwrap();
    /// task.send(port, Message::new(1, b"event")).unwrap();
    /// task.send(port, Message::new(2, b"reply")).unwrap();
    /// let reply = task.receive_matching(port, &Filter::any().id(2)).unwrap();
    /// assert_eq!(&reply.body[..], b"reply");
    /// let none = task.try_receive_matching(port, &Filter::any().id(2));
    /// assert_eq!(none, Err(ReceiveError::Empty));
    /// assert_eq!(task.receive(port).unwrap().id, 1); // still queued
    /// ```
    fn receive_matching_with(
        &self,
        source: PortName,
        filter: &crate::Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let _ = (source, filter, wait);
        Err(ReceiveError::Unsupported(Unsupported::SelectiveReceive))
    }
    /// Selective receive, waiting as long as it takes.
    fn receive_matching(
        &self,
        source: PortName,
        filter: &crate::Filter,
    ) -> Result<Message, ReceiveError> {
        self.receive_matching_with(source, filter, Wait::Forever)
    }
    /// Selective receive only if a matching message is there now.
    fn try_receive_matching(
        &self,
        source: PortName,
        filter: &crate::Filter,
    ) -> Result<Message, ReceiveError> {
        self.receive_matching_with(source, filter, Wait::NoWait)
    }
    /// Closes the port whose receive right (or the mailbox, as its owner)
    /// `name` denotes to new sends, while its receivers drain it: a task's
    /// send to it fails with [`SendErrorKind::Closed`] and its message back
    /// (senders blocked on it too); receives take what is queued, then fail
    /// with [`ReceiveError::Closed`], which is not
    /// [`Empty`](ReceiveError::Empty): nothing will come. Receives blocked
    /// on it when it closes fail with `Closed` (a select over it too).
    /// Kernel notifications still arrive. Closing twice is a no-op; a closed
    /// queue is not reopened. A backend that cannot refuse a queue's other
    /// writers answers [`Unsupported::Close`].
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message, ReceiveError, SendErrorKind};
    /// let task = Kernel::new().spawn_task();
    /// let port = task.port_allocate(Capacity::Unbounded).unwrap();
    /// task.send(port, Message::new(1, b"queued")).unwrap();
    /// task.close(port).unwrap();
    /// let refused = task.try_send(port, Message::new(2, b"late")).unwrap_err();
    /// assert_eq!(refused.kind(), SendErrorKind::Closed);
    /// assert_eq!(&refused.into_message().body[..], b"late");
    /// assert_eq!(task.receive(port).unwrap().id, 1); // drained
    /// assert_eq!(task.try_receive(port), Err(ReceiveError::Closed)); // not Empty
    /// ```
    fn close(&self, name: PortName) -> Result<(), IpcError> {
        let _ = name;
        Err(IpcError::Unsupported(Unsupported::Close))
    }
    /// Priority select: receives from the *first* of `sources` (in the order
    /// given) that has a message, the oldest message there, waiting per
    /// `wait`; beside [`select_with`](Ipc::select_with), which takes the
    /// oldest message of all. When none has a message it waits like
    /// `select`, and the first source to get one is then the only ready one.
    /// Put the control port first and the data ports after to have control
    /// messages overtake queued data. The trailer says which name it came
    /// from. A backend without it answers [`Unsupported::PrioritySelect`].
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message};
    /// let task = Kernel::new().spawn_task();
    /// let data = task.port_allocate(Capacity::Unbounded).unwrap();
    /// let control = task.port_allocate(Capacity::Unbounded).unwrap();
    /// task.send(data, Message::new(1, b"data")).unwrap(); // older
    /// task.send(control, Message::new(2, b"stop")).unwrap();
    /// assert_eq!(task.try_select(&[data, control]).unwrap().id, 1); // oldest first
    /// task.send(data, Message::new(1, b"data")).unwrap();
    /// let first = task.try_select_first(&[control, data]).unwrap();
    /// assert_eq!((first.id, first.received_on()), (2, Some(control)));
    /// ```
    fn select_first_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        let _ = (sources, wait);
        Err(ReceiveError::Unsupported(Unsupported::PrioritySelect))
    }
    /// Priority select, waiting as long as it takes.
    fn select_first(&self, sources: &[PortName]) -> Result<Message, ReceiveError> {
        self.select_first_with(sources, Wait::Forever)
    }
    /// Priority select only if a source has a message now.
    fn try_select_first(&self, sources: &[PortName]) -> Result<Message, ReceiveError> {
        self.select_first_with(sources, Wait::NoWait)
    }
    /// Asks to be told when the port or mailbox `dest` (a send right, a
    /// receive right, or a mailbox name with send access) has room for a
    /// message: one [`Notification::SendPossible`] naming `dest` arrives on
    /// `notify` (a port whose receive right this task holds), at once if
    /// there is room now, else the first time a receive, a capacity change
    /// or (rendezvous) a waiting receiver makes room. If `dest` dies first,
    /// a [`Notification::DeadName`] comes instead; releasing `dest` cancels
    /// the request. A hint (Mach's `MACH_SEND_NOTIFY`): another sender may
    /// take the room first. Shorthand for
    /// [`request_notification`](Ipc::request_notification) with
    /// [`NotifyKind::SendPossible`]; a backend without notifications
    /// answers [`IpcError::Unsupported`].
    ///
    /// ```
    /// use mkipc_kernel::{Capacity, Ipc, Kernel, Message, Notification};
    /// let task = Kernel::new().spawn_task();
    /// let port = task.port_allocate(Capacity::Bounded(1)).unwrap();
    /// let notify = task.port_allocate(Capacity::Unbounded).unwrap();
    /// task.try_send(port, Message::from_u64(1, 1)).unwrap(); // now full
    /// task.request_send_possible(port, notify).unwrap();
    /// assert!(task.try_receive(notify).is_err()); // no room yet
    /// task.receive(port).unwrap(); // makes room
    /// let n = task.try_receive(notify).unwrap();
    /// assert_eq!(n.notification(), Some(Notification::SendPossible(port)));
    /// task.try_send(port, Message::from_u64(1, 2)).unwrap();
    /// ```
    fn request_send_possible(&self, dest: PortName, notify: PortName) -> Result<(), IpcError> {
        self.request_notification(dest, NotifyKind::SendPossible, notify)
    }
    /// Makes a send right from a receive right (same name).
    fn make_send(&self, name: PortName) -> Result<PortName, IpcError> {
        self.make_right(name, crate::Disposition::MakeSend)
    }
}

/// Decodes a received message as a kernel notification (shorthand for
/// [`Message::notification`]).
pub fn notification_of(msg: &Message) -> Option<Notification> {
    msg.notification()
}
