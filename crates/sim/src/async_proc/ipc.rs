//! [`AsyncIpc`]: the kernel's [`Ipc`](mkipc_kernel::Ipc) API, every method
//! a future.
//!
//! The trait mirrors [`Ipc`](mkipc_kernel::Ipc) method for method, with the
//! same names, arguments, results and provided wrappers (`send`,
//! `try_send`, `receive_timeout`, `call`, `reply`, ...), so code written
//! against one reads like code written against the other with `.await`
//! added. [`AsyncProc`](crate::AsyncProc) implements it on the simulator:
//! each operation takes the scheduling point a closure's takes, then starts
//! on the kernel's non-blocking core and, when it has to wait, parks the
//! process (no thread, no stack) until the kernel's waker marks it ready.
//!
//! ```
//! use mkipc_kernel::{Capacity, Message};
//! use mkipc_sim::{AsyncIpc, Sim};
//!
//! // Generic over any asynchronous runner of the API.
//! async fn echo_once<P: AsyncIpc>(p: &P) -> Option<u64> {
//!     let port = p.port_allocate(Capacity::Bounded(1)).await.ok()?;
//!     p.send(port, Message::from_u64(1, 5)).await.ok()?;
//!     p.receive(port).await.ok()?.as_u64()
//! }
//! let mut sim = Sim::builder().seed(3).build();
//! sim.spawn_async("echo", &[], |p| async move {
//!     assert_eq!(echo_once(&p).await, Some(5));
//!     Ok(())
//! })
//! .unwrap();
//! assert!(sim.run().is_ok());
//! ```

// The futures are `!Send` by design: a simulated run is single-threaded,
// and its processes hold `Rc`s to the run. An auto-trait bound on them
// would only be a promise the simulator cannot keep.
#![allow(async_fn_in_trait)]

use std::future::Future;
use std::time::Duration;

use mkipc_kernel::error::Unsupported;
use mkipc_kernel::ipc::PortStatus;
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::{
    CallError, Capacity, Disposition, Filter, IpcError, MailboxConfig, Message, NotifyKind, OnFull,
    Pid, PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

/// The [`Ipc`](mkipc_kernel::Ipc) API with every operation a future (module
/// docs). Each method does what the [`Ipc`](mkipc_kernel::Ipc) method of the
/// same name does; see there for the semantics.
pub trait AsyncIpc {
    /// This task's pid.
    fn pid(&self) -> Pid;

    // ----- ports and rights -------------------------------------------------

    /// [`Ipc::port_allocate`](mkipc_kernel::Ipc::port_allocate).
    async fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError>;
    /// [`Ipc::port_set_allocate`](mkipc_kernel::Ipc::port_set_allocate).
    async fn port_set_allocate(&self) -> Result<PortName, IpcError>;
    /// [`Ipc::port_set_insert`](mkipc_kernel::Ipc::port_set_insert).
    async fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError>;
    /// [`Ipc::port_set_remove`](mkipc_kernel::Ipc::port_set_remove).
    async fn port_set_remove(&self, member: PortName) -> Result<(), IpcError>;
    /// [`Ipc::make_right`](mkipc_kernel::Ipc::make_right).
    async fn make_right(
        &self,
        name: PortName,
        disposition: Disposition,
    ) -> Result<PortName, IpcError>;
    /// [`Ipc::deallocate`](mkipc_kernel::Ipc::deallocate).
    async fn deallocate(&self, name: PortName) -> Result<(), IpcError>;
    /// [`Ipc::destroy`](mkipc_kernel::Ipc::destroy).
    async fn destroy(&self, name: PortName) -> Result<(), IpcError>;
    /// [`Ipc::mod_refs`](mkipc_kernel::Ipc::mod_refs).
    async fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError>;
    /// [`Ipc::rights`](mkipc_kernel::Ipc::rights).
    async fn rights(&self, name: PortName) -> Result<RightSet, IpcError>;
    /// [`Ipc::port_status`](mkipc_kernel::Ipc::port_status).
    async fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError>;
    /// [`Ipc::set_capacity`](mkipc_kernel::Ipc::set_capacity).
    async fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError>;
    /// [`Ipc::request_notification`](mkipc_kernel::Ipc::request_notification).
    async fn request_notification(
        &self,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError>;

    // ----- messages -----------------------------------------------------------

    /// [`Ipc::send_with`](mkipc_kernel::Ipc::send_with).
    async fn send_with(
        &self,
        dest: PortName,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError>;
    /// [`Ipc::receive_with`](mkipc_kernel::Ipc::receive_with).
    async fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError>;
    /// [`Ipc::select_with`](mkipc_kernel::Ipc::select_with).
    async fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError>;
    /// [`Ipc::call_with`](mkipc_kernel::Ipc::call_with).
    async fn call_with(
        &self,
        dest: PortName,
        msg: Message,
        wait: Wait,
    ) -> Result<Message, CallError>;

    // ----- direct addressing ---------------------------------------------------

    /// [`Ipc::send_to_with`](mkipc_kernel::Ipc::send_to_with).
    async fn send_to_with(
        &self,
        pid: Pid,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError>;
    /// [`Ipc::receive_from_with`](mkipc_kernel::Ipc::receive_from_with).
    async fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError>;
    /// [`Ipc::receive_from_any_with`](mkipc_kernel::Ipc::receive_from_any_with).
    async fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError>;
    /// [`Ipc::set_link_capacity`](mkipc_kernel::Ipc::set_link_capacity).
    async fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError>;

    // ----- mailboxes and the name service ---------------------------------------

    /// [`Ipc::mailbox_create`](mkipc_kernel::Ipc::mailbox_create).
    async fn mailbox_create(&self, name: &str, config: MailboxConfig)
        -> Result<PortName, IpcError>;
    /// [`Ipc::mailbox_open`](mkipc_kernel::Ipc::mailbox_open).
    async fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError>;
    /// [`Ipc::mailbox_grant`](mkipc_kernel::Ipc::mailbox_grant).
    async fn mailbox_grant(
        &self,
        mailbox: PortName,
        pid: Pid,
        access: Access,
    ) -> Result<(), IpcError>;
    /// [`Ipc::mailbox_destroy`](mkipc_kernel::Ipc::mailbox_destroy).
    async fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError>;
    /// [`Ipc::register`](mkipc_kernel::Ipc::register).
    async fn register(&self, service: &str, right: PortName) -> Result<(), IpcError>;
    /// [`Ipc::unregister`](mkipc_kernel::Ipc::unregister).
    async fn unregister(&self, service: &str) -> Result<(), IpcError>;
    /// [`Ipc::look_up`](mkipc_kernel::Ipc::look_up).
    async fn look_up(&self, service: &str) -> Result<PortName, IpcError>;

    // ----- operations a backend may not have --------------------------------------

    /// [`Ipc::peek`](mkipc_kernel::Ipc::peek).
    async fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        let _ = source;
        Err(ReceiveError::Unsupported(Unsupported::Peek))
    }
    /// [`Ipc::receive_matching_with`](mkipc_kernel::Ipc::receive_matching_with).
    async fn receive_matching_with(
        &self,
        source: PortName,
        filter: &Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let _ = (source, filter, wait);
        Err(ReceiveError::Unsupported(Unsupported::SelectiveReceive))
    }
    /// [`Ipc::close`](mkipc_kernel::Ipc::close).
    async fn close(&self, name: PortName) -> Result<(), IpcError> {
        let _ = name;
        Err(IpcError::Unsupported(Unsupported::Close))
    }
    /// [`Ipc::select_first_with`](mkipc_kernel::Ipc::select_first_with).
    async fn select_first_with(
        &self,
        sources: &[PortName],
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let _ = (sources, wait);
        Err(ReceiveError::Unsupported(Unsupported::PrioritySelect))
    }

    // ----- provided wrappers ------------------------------------------------------

    /// [`Ipc::send`](mkipc_kernel::Ipc::send).
    async fn send(&self, dest: PortName, msg: Message) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Block).await.map(drop)
    }
    /// [`Ipc::try_send`](mkipc_kernel::Ipc::try_send).
    async fn try_send(&self, dest: PortName, msg: Message) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Fail).await.map(drop)
    }
    /// [`Ipc::send_timeout`](mkipc_kernel::Ipc::send_timeout).
    async fn send_timeout(
        &self,
        dest: PortName,
        msg: Message,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_with(dest, msg, OnFull::Timeout(timeout))
            .await
            .map(drop)
    }
    /// [`Ipc::receive`](mkipc_kernel::Ipc::receive).
    fn receive(&self, source: PortName) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_with(source, Wait::Forever)
    }
    /// [`Ipc::try_receive`](mkipc_kernel::Ipc::try_receive).
    fn try_receive(&self, source: PortName) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_with(source, Wait::NoWait)
    }
    /// [`Ipc::receive_timeout`](mkipc_kernel::Ipc::receive_timeout).
    fn receive_timeout(
        &self,
        source: PortName,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_with(source, Wait::For(timeout))
    }
    /// [`Ipc::select`](mkipc_kernel::Ipc::select).
    fn select(&self, sources: &[PortName]) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.select_with(sources, Wait::Forever)
    }
    /// [`Ipc::call`](mkipc_kernel::Ipc::call).
    fn call(
        &self,
        dest: PortName,
        msg: Message,
    ) -> impl Future<Output = Result<Message, CallError>> {
        self.call_with(dest, msg, Wait::Forever)
    }
    /// [`Ipc::call_timeout`](mkipc_kernel::Ipc::call_timeout).
    fn call_timeout(
        &self,
        dest: PortName,
        msg: Message,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, CallError>> {
        self.call_with(dest, msg, Wait::For(timeout))
    }
    /// [`Ipc::reply`](mkipc_kernel::Ipc::reply).
    async fn reply(&self, request: &Message, reply: Message) -> Result<(), SendError> {
        match request.reply() {
            Some(right) if !right.name.is_dead() => self
                .send_with(right.name, reply, OnFull::Block)
                .await
                .map(drop),
            Some(_) => Err(SendErrorKind::DestinationDead.with(reply)),
            None => Err(SendErrorKind::InvalidDestination.with(reply)),
        }
    }
    /// [`Ipc::send_to`](mkipc_kernel::Ipc::send_to).
    async fn send_to(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Block).await.map(drop)
    }
    /// [`Ipc::try_send_to`](mkipc_kernel::Ipc::try_send_to).
    async fn try_send_to(&self, pid: Pid, msg: Message) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Fail).await.map(drop)
    }
    /// [`Ipc::send_to_timeout`](mkipc_kernel::Ipc::send_to_timeout).
    async fn send_to_timeout(
        &self,
        pid: Pid,
        msg: Message,
        timeout: Duration,
    ) -> Result<(), SendError> {
        self.send_to_with(pid, msg, OnFull::Timeout(timeout))
            .await
            .map(drop)
    }
    /// [`Ipc::try_receive_from`](mkipc_kernel::Ipc::try_receive_from).
    fn try_receive_from(&self, pid: Pid) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_with(pid, Wait::NoWait)
    }
    /// [`Ipc::receive_from_timeout`](mkipc_kernel::Ipc::receive_from_timeout).
    fn receive_from_timeout(
        &self,
        pid: Pid,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_with(pid, Wait::For(timeout))
    }
    /// [`Ipc::try_receive_from_any`](mkipc_kernel::Ipc::try_receive_from_any).
    fn try_receive_from_any(&self) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_any_with(Wait::NoWait)
    }
    /// [`Ipc::receive_from_any_timeout`](mkipc_kernel::Ipc::receive_from_any_timeout).
    fn receive_from_any_timeout(
        &self,
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_any_with(Wait::For(timeout))
    }
    /// [`Ipc::try_select`](mkipc_kernel::Ipc::try_select).
    fn try_select(
        &self,
        sources: &[PortName],
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.select_with(sources, Wait::NoWait)
    }
    /// [`Ipc::select_timeout`](mkipc_kernel::Ipc::select_timeout).
    fn select_timeout(
        &self,
        sources: &[PortName],
        timeout: Duration,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.select_with(sources, Wait::For(timeout))
    }
    /// [`Ipc::receive_from`](mkipc_kernel::Ipc::receive_from).
    fn receive_from(&self, pid: Pid) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_with(pid, Wait::Forever)
    }
    /// [`Ipc::receive_from_any`](mkipc_kernel::Ipc::receive_from_any).
    fn receive_from_any(&self) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_from_any_with(Wait::Forever)
    }
    /// [`Ipc::receive_matching`](mkipc_kernel::Ipc::receive_matching).
    fn receive_matching(
        &self,
        source: PortName,
        filter: &Filter,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_matching_with(source, filter, Wait::Forever)
    }
    /// [`Ipc::try_receive_matching`](mkipc_kernel::Ipc::try_receive_matching).
    fn try_receive_matching(
        &self,
        source: PortName,
        filter: &Filter,
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.receive_matching_with(source, filter, Wait::NoWait)
    }
    /// [`Ipc::select_first`](mkipc_kernel::Ipc::select_first).
    fn select_first(
        &self,
        sources: &[PortName],
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.select_first_with(sources, Wait::Forever)
    }
    /// [`Ipc::try_select_first`](mkipc_kernel::Ipc::try_select_first).
    fn try_select_first(
        &self,
        sources: &[PortName],
    ) -> impl Future<Output = Result<Message, ReceiveError>> {
        self.select_first_with(sources, Wait::NoWait)
    }
    /// [`Ipc::request_send_possible`](mkipc_kernel::Ipc::request_send_possible).
    fn request_send_possible(
        &self,
        dest: PortName,
        notify: PortName,
    ) -> impl Future<Output = Result<(), IpcError>> {
        self.request_notification(dest, NotifyKind::SendPossible, notify)
    }
    /// [`Ipc::make_send`](mkipc_kernel::Ipc::make_send).
    fn make_send(&self, name: PortName) -> impl Future<Output = Result<PortName, IpcError>> {
        self.make_right(name, Disposition::MakeSend)
    }
}
