//! Sending into and receiving from queues and FIFOs: resolving a name to
//! what it stands for, then applying the capacity model and the sender's
//! policy ([`OnFull`]) or the receiver's wait ([`Wait`]).
//!
//! One primitive per direction: [`OsProcess::send_queue`] takes the policy and
//! turns it into one `mq_send`/`mq_timedsend` (bounded), a spool push
//! (unbounded) or a rendezvous ([`crate::rendezvous`]); `send`, `try_send` and
//! `send_timeout` all end up here.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::error::{Limit, MalformedFrame, Unsupported};
use mkipc_kernel::message::{Body, Trailer};
use mkipc_kernel::{
    IpcError, Message, OnFull, PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

use crate::errno;
use crate::fifo::Fifo;

use crate::link::{LinkRx, RawFrame, RxError, TxError};
use crate::names::Entry;
use crate::port_set::{Member, PortSet};
use crate::process::OsProcess;
use crate::queue::{Held, Model, Queue};
use crate::spool::{self, Pushed};
use crate::sys::{self, MqWait};
use crate::wire;

/// Where a send goes.
pub(crate) enum Target {
    Queue { queue: Arc<Queue>, once: bool },
    Reply { pid: u32, token: u32 },
    Fifo(Arc<Fifo>),
}

/// Where a receive comes from.
pub(crate) enum Source {
    Queue(Arc<Queue>),
    Fifo(Arc<Fifo>),
    Set(Arc<PortSet>),
    /// The receiving side of the direct link with a process.
    Link(u32, Arc<LinkRx>),
}

pub(crate) fn deadline_of(wait: Wait) -> Option<Instant> {
    match wait {
        Wait::For(d) => sys::deadline_after(d),
        _ => None,
    }
}

pub(crate) fn mq_wait(wait: Wait) -> MqWait {
    match wait {
        Wait::NoWait => MqWait::NoWait,
        Wait::Forever => MqWait::Forever,
        Wait::For(d) => MqWait::until(sys::deadline_after(d)),
    }
}

pub(crate) fn rx_error(e: RxError) -> ReceiveError {
    match e {
        RxError::Empty => ReceiveError::Empty,
        RxError::TimedOut => ReceiveError::TimedOut,
        RxError::Eof => ReceiveError::SourceDead,
        RxError::Malformed(what) => ReceiveError::Malformed(what),
        RxError::Os(e) => ReceiveError::Os(e),
    }
}

/// One frame from `rx`, waiting as `wait` says (a link's or a FIFO's
/// receive).
pub(crate) fn receive_frame(rx: &LinkRx, wait: Wait) -> Result<RawFrame, ReceiveError> {
    match wait {
        Wait::NoWait => rx.receive(false, None),
        _ => rx.receive(true, deadline_of(wait)),
    }
    .map_err(rx_error)
}

/// A failed wait, per the sender's policy.
pub(crate) fn not_sent(on_full: OnFull, msg: Message) -> Result<Sent, SendError> {
    match on_full {
        OnFull::DropNewest | OnFull::DropOldest => Ok(Sent::Dropped),
        OnFull::Timeout(_) => Err(SendErrorKind::TimedOut.with(msg)),
        _ => Err(SendErrorKind::Full.with(msg)),
    }
}

/// How a write to a pipe (a direct link or a FIFO) waits under `on_full`:
/// whether it blocks, and until when.
pub(crate) fn pipe_wait(on_full: OnFull) -> (bool, Option<Instant>) {
    match on_full {
        OnFull::Block => (true, None),
        OnFull::Timeout(d) => (true, sys::deadline_after(d)),
        _ => (false, None),
    }
}

/// What a failed write to a pipe means for the sender, who gets `msg` back.
pub(crate) fn pipe_send_failed(
    e: TxError,
    on_full: OnFull,
    msg: Message,
    body_limit: usize,
) -> Result<Sent, SendError> {
    match e {
        TxError::WouldBlock if on_full == OnFull::DropOldest => {
            Err(SendErrorKind::Unsupported(Unsupported::DropOldest).with(msg))
        }
        TxError::WouldBlock | TxError::TimedOut => not_sent(on_full, msg),
        TxError::Closed => Err(SendErrorKind::DestinationDead.with(msg)),
        TxError::TooManyDescriptors => Err(SendErrorKind::Limit(Limit::DescriptorsPerMessage {
            max: crate::link::MAX_RIGHTS,
        })
        .with(msg)),
        TxError::Os(e) => Err(errno::send_error(e, msg, body_limit)),
    }
}

impl OsProcess {
    pub(crate) fn resolve_target(&self, dest: PortName) -> Result<Target, SendErrorKind> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(Entry::Mailbox { queue, access, .. }) = names.get(dest) {
            if queue.granted && !access.send {
                // Its grant may have grown since it was opened.
                self.refresh_granted(&mut names, dest);
            }
        }
        let entry = match names.get(dest) {
            Ok(e) => e,
            Err(IpcError::DeadName) => return Err(SendErrorKind::DestinationDead),
            Err(_) => return Err(SendErrorKind::InvalidDestination),
        };
        Ok(match entry {
            Entry::Port { receive, send, .. } => {
                // The receive right's holder may send on it too, as in the kernel.
                Target::Queue {
                    queue: Arc::clone(receive.as_ref().unwrap_or(send)),
                    once: false,
                }
            }
            Entry::Dead { .. } => return Err(SendErrorKind::DestinationDead),
            Entry::PortSet(_) | Entry::Link { .. } => {
                return Err(SendErrorKind::InvalidDestination)
            }
            Entry::SendOnce { send } => Target::Queue {
                queue: Arc::clone(send),
                once: true,
            },
            Entry::Reply { pid, token } => Target::Reply {
                pid: *pid,
                token: *token,
            },
            Entry::Mailbox { queue, access, .. } => {
                if !access.send || queue.revoked(true) {
                    return Err(SendErrorKind::NoPermission);
                }
                Target::Queue {
                    queue: Arc::clone(queue),
                    once: false,
                }
            }
            Entry::Fifo(f) => {
                if f.tx.is_none() {
                    return Err(SendErrorKind::NoPermission);
                }
                Target::Fifo(Arc::clone(f))
            }
        })
    }

    pub(crate) fn resolve_source(&self, source: PortName) -> Result<Source, ReceiveError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let Ok(Entry::Mailbox { queue, access, .. }) = names.get(source) {
            if queue.granted && !access.receive {
                self.refresh_granted(&mut names, source);
            }
        }
        match names.get(source)? {
            Entry::Port {
                receive: Some(q), ..
            } => Ok(Source::Queue(Arc::clone(q))),
            Entry::Mailbox { queue, access, .. } => {
                if access.receive && !queue.revoked(false) {
                    Ok(Source::Queue(Arc::clone(queue)))
                } else {
                    Err(ReceiveError::NoPermission)
                }
            }
            Entry::Fifo(f) if f.rx.is_some() => Ok(Source::Fifo(Arc::clone(f))),
            Entry::Fifo(_) => Err(ReceiveError::NoPermission),
            Entry::Dead { .. } => Err(ReceiveError::SourceDead),
            Entry::PortSet(set) => Ok(Source::Set(Arc::clone(set))),
            &Entry::Link { pid } => {
                drop(names);
                // A closed link, or one whose peer never sent: its end.
                let rx = self.link_rx(pid);
                rx.map(|rx| Source::Link(pid, rx))
                    .ok_or(ReceiveError::SourceDead)
            }
            _ => Err(ReceiveError::WrongRight),
        }
    }

    /// Sends one message into a queue under the queue's capacity model.
    pub(crate) fn send_queue(
        &self,
        q: &Arc<Queue>,
        msg: Message,
        on_full: OnFull,
        flags: u8,
        token: u32,
    ) -> Result<Sent, SendError> {
        let limit = q.body_limit();
        if msg.body.len() > limit {
            return Err(SendErrorKind::TooLarge { limit }.with(msg));
        }
        if !q.writable {
            return Err(SendErrorKind::NoPermission.with(msg));
        }
        if q.is_closed() {
            return Err(SendErrorKind::Closed.with(msg));
        }
        // Frames into a port carry their send time, so that a receiver of
        // several ports takes the oldest first; a body too long to leave
        // room for the stamp goes without (its age is then unknown).
        // Mailboxes are read by foreign programs: no stamps there.
        let stamped = q.live_watch.is_some() || q.live_hold.is_some();
        if !msg.rights().is_empty() {
            return self.send_queue_with_rights(q, msg, on_full, flags, token, stamped);
        }
        if q.model == Model::Zero && flags & wire::FLAG_REPLY_WANTED == 0 {
            return self.rendezvous(q, msg, on_full);
        }
        let pre = wire::Prefixes {
            stamp: (stamped && msg.body.len() + wire::STAMP_LEN <= limit).then(wire::now_stamp),
            ticket: None,
        };
        // Encoded into this thread's scratch buffer: no allocation per send.
        let mut frame = wire::Scratch::take();
        wire::encode_queue_into(&mut frame, &msg, self.pid, flags, token, pre, &[]);
        self.put_frame(q, &frame, msg, on_full)
    }

    /// A send into a queue of a message carrying rights: the descriptors go
    /// to the run's broker ([`crate::broker`]), the frame carries the
    /// ticket. The rights leave this name space only once the message is
    /// in (or dropped under the sender's policy, which destroys them, as in
    /// the kernel); any other failure withdraws the deposit and gives them back.
    fn send_queue_with_rights(
        &self,
        q: &Arc<Queue>,
        msg: Message,
        on_full: OnFull,
        flags: u8,
        token: u32,
        stamped: bool,
    ) -> Result<Sent, SendError> {
        if q.model == Model::Zero {
            return Err(SendErrorKind::Unsupported(Unsupported::RightsHere).with(msg));
        }
        let prefixes = (1 + usize::from(stamped)) * wire::STAMP_LEN;
        let room = q
            .body_limit()
            .saturating_sub(prefixes + msg.rights().len() * wire::RIGHT_LEN);
        if msg.body.len() > room {
            return Err(SendErrorKind::TooLarge { limit: room }.with(msg));
        }
        let (descs, fds) = match self.prepare_rights(&msg) {
            Ok(x) => x,
            Err((index, error)) => {
                return Err(SendErrorKind::InvalidRight { index, error }.with(msg))
            }
        };
        if fds.len() > crate::link::MAX_RIGHTS {
            self.rights_not_sent(&msg);
            return Err(SendErrorKind::Limit(Limit::DescriptorsPerMessage {
                max: crate::link::MAX_RIGHTS,
            })
            .with(msg));
        }
        let ticket = match self.broker_client.deposit(&self.run, &fds) {
            Ok(t) => t,
            Err(e) => {
                self.rights_not_sent(&msg);
                return Err(SendErrorKind::Os(e).with(msg));
            }
        };
        drop(fds);
        let pre = wire::Prefixes {
            stamp: stamped.then(wire::now_stamp),
            ticket: Some(ticket),
        };
        let frame = wire::encode_queue(&msg, self.pid, flags, token, pre, &descs);
        let rights_of = msg.clone();
        let sent = self.put_frame(q, &frame, msg, on_full);
        match &sent {
            Ok(Sent::Delivered | Sent::Displaced) => self.commit_rights(&rights_of),
            Ok(Sent::Dropped) => {
                self.commit_rights(&rights_of);
                let _ = self.broker_client.claim(&self.run, ticket);
            }
            Err(_) => {
                let _ = self.broker_client.claim(&self.run, ticket);
                self.rights_not_sent(&rights_of);
            }
        }
        sent
    }

    /// Puts one encoded frame into a queue under the sender's policy.
    fn put_frame(
        &self,
        q: &Arc<Queue>,
        frame: &[u8],
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let limit = q.body_limit();
        if q.model == Model::Unbounded {
            return match spool::push(q, frame) {
                Ok(Pushed::Queued | Pushed::Waiting) => Ok(Sent::Delivered),
                Ok(Pushed::OverLimit) => Err(SendErrorKind::MemoryLimit.with(msg)),
                Err(e) => Err(errno::send_error(e, msg, limit)),
            };
        }
        let wait = match on_full {
            OnFull::Block => MqWait::Forever,
            OnFull::Timeout(d) => MqWait::until(sys::deadline_after(d)),
            _ => MqWait::NoWait,
        };
        match q.send(frame, wait) {
            Ok(()) => {
                tracing::trace!(queue = %q.name, id = msg.id, bytes = msg.body.len(), "send");
                Ok(Sent::Delivered)
            }
            Err(libc::EAGAIN) if on_full == OnFull::DropNewest => {
                q.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Ok(Sent::Dropped)
            }
            Err(libc::EAGAIN) if on_full == OnFull::DropOldest => {
                if !q.readable {
                    return Err(SendErrorKind::Unsupported(Unsupported::DropOldest).with(msg));
                }
                q.dropped.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                loop {
                    // The displaced message is destroyed, and with it its
                    // reply right: tell a caller waiting on it (as the kernel's
                    // send-once notification does) instead of leaving it to
                    // wait; the rights it carried are claimed from the broker
                    // and closed.
                    let displaced = q.receive(MqWait::NoWait, |bytes| {
                        wire::decode(bytes).map(|f| {
                            let ticket = wire::split_prefixes(f.header.flags, f.body)
                                .ok()
                                .and_then(|(pre, _)| pre.ticket);
                            (f.header, ticket)
                        })
                    });
                    if let Ok(Ok((h, ticket))) = displaced {
                        if h.flags & wire::FLAG_REPLY_WANTED != 0 {
                            self.send_no_reply(h.sender, h.token);
                        }
                        if let Some(ticket) = ticket {
                            let _ = self.broker_client.claim(&self.run, ticket);
                        }
                    }
                    match q.send(frame, MqWait::NoWait) {
                        Ok(()) => return Ok(Sent::Displaced),
                        Err(libc::EAGAIN) => continue,
                        Err(e) => return Err(errno::send_error(e, msg, limit)),
                    }
                }
            }
            Err(e) => Err(errno::send_error(e, msg, limit)),
        }
    }

    /// Takes the next message of `q` out of the OS queue (or this process's
    /// put-back frame or spool for it), accepted but not yet numbered: the
    /// one place a queue frame becomes a message.
    pub(crate) fn take_queue(
        &self,
        on: PortName,
        q: &Queue,
        wait: MqWait,
    ) -> Result<Held, ReceiveError> {
        let decode = |bytes: &[u8]| {
            wire::decode(bytes).and_then(|f| {
                let (pre, body) = wire::split_prefixes(f.header.flags, f.body)?;
                Ok((f.header, pre, f.rights, Body::from_slice(body)))
            })
        };
        // A rendezvous frame this process took out of the queue and could
        // not put back (see `rendezvous::put_back`) comes before the queue.
        let put_back = if q.model == Model::Zero {
            spool::take_put_back(q)
        } else {
            None
        };
        let mut got = match put_back {
            Some(frame) => Ok(decode(&frame)),
            None => q.receive(wait, decode),
        };
        // Empty, but this process has spooled messages for the queue: move one
        // in now rather than report Empty while our own sends are pending.
        // Look once more even when the spool is empty by now: the flusher may
        // have moved its last frame in between our look and `pump_one` (it
        // sends under the spool's lock, which `pump_one` then took, so the
        // frame is in the queue). Only a receive that does not wait gets
        // `EAGAIN`, so this costs a try that finds nothing one more call.
        while matches!(got, Err(libc::EAGAIN)) {
            let pumped = spool::pump_one(q);
            got = q.receive(MqWait::NoWait, decode);
            if pumped == spool::Pump::Empty {
                break;
            }
        }
        match got {
            // A destruction's wake-up (see `queue::GONE_ID`): the mailbox is
            // gone if its name is; then the next waiter gets the frame too.
            // Under a name that is still there it is forged or stale: dropped.
            Ok(Ok((h, ..))) if q.watch && crate::queue::is_gone(&h) => {
                if q.still_named() {
                    return self.take_queue(on, q, wait);
                }
                q.repost_gone();
                Err(ReceiveError::SourceDead)
            }
            // A close's wake-up (see `notify::wake_closed`): nothing to
            // deliver; what is queued behind it still is.
            Ok(Ok((h, ..))) if crate::notify::is_wake(&h) => self.take_queue(on, q, MqWait::NoWait),
            Ok(Ok((h, pre, rights, body))) => {
                // Rights on a queue come through the broker, or not at all.
                let fds = match (h.nrights, pre.ticket) {
                    (0, None) => Vec::new(),
                    (0, Some(_)) | (_, None) => {
                        return Err(ReceiveError::Malformed(MalformedFrame::RightsCount))
                    }
                    (_, Some(ticket)) => {
                        let fds = self
                            .broker_client
                            .claim(&self.run, ticket)
                            .map_err(|_| ReceiveError::Malformed(MalformedFrame::MissingRights))?;
                        let want: usize = rights.iter().map(|r| r.descriptors()).sum();
                        if fds.len() != want {
                            return Err(ReceiveError::Malformed(MalformedFrame::MissingRights));
                        }
                        fds
                    }
                };
                tracing::trace!(queue = %q.name, from = h.sender, id = h.id, bytes = h.body_len, "receive");
                if h.flags & wire::FLAG_REPLY_WANTED != 0 && q.live_hold.is_none() {
                    self.tell_taken(h.sender, h.token);
                }
                let mut msg = self.accept_queue_frame(h, body, on, 0);
                self.install_rights(&mut msg, &rights, fds);
                Ok(Held {
                    msg,
                    stamp: pre.stamp,
                })
            }
            Ok(Err(e)) => Err(ReceiveError::Malformed(e.malformed())),
            Err(e) => Err(errno::receive_error(e)),
        }
    }

    /// Hands a taken message to the caller: its trailer gets the name it
    /// was received on and the queue's next sequence number.
    pub(crate) fn deliver_held(&self, on: PortName, q: &Queue, held: Held) -> Message {
        let seqno = q.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut msg = held.msg;
        if let Some(t) = msg.trailer() {
            let claimed = !msg.sender_verified();
            msg.set_trailer(Some(Trailer {
                received_on: on,
                seqno,
                ..t
            }));
            if claimed {
                msg.mark_sender_claimed();
            }
        }
        msg
    }

    /// Receives from a queue: what this process holds for it first, then
    /// the queue. A closed queue does not wait: once empty it is `Closed`.
    pub(crate) fn receive_queue(
        &self,
        on: PortName,
        q: &Queue,
        wait: MqWait,
    ) -> Result<Message, ReceiveError> {
        if let Some(h) = q.pop_held() {
            return Ok(self.deliver_held(on, q, h));
        }
        // Counted while blocked, so that a close wakes this receive: the
        // count goes up before the flag is read, and `close` sets the flag
        // before it reads the count (both SeqCst), so either this receive
        // sees the close or the close sees this receive.
        let blocking = !matches!(wait, MqWait::NoWait);
        if blocking {
            q.blocked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        let closed = q.closed.load(std::sync::atomic::Ordering::SeqCst);
        let wait = if closed { MqWait::NoWait } else { wait };
        let got = self.take_queue(on, q, wait);
        if blocking {
            q.blocked.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        }
        match got {
            Ok(h) => Ok(self.deliver_held(on, q, h)),
            // Closed now (a blocked receive woken by the close), or before.
            Err(ReceiveError::Empty) if q.is_closed() => Err(ReceiveError::Closed),
            Err(e) => Err(e),
        }
    }

    /// Makes sure `q`'s oldest message is held (taking it out of the queue
    /// without waiting if need be) and returns its stamp: `Ok(None)` when
    /// nothing is queued, `Ok(Some(stamp))` otherwise (`u64::MIN`-like
    /// `None` stamps are reported as `Some(None)`).
    pub(crate) fn hold_head(
        &self,
        on: PortName,
        q: &Queue,
    ) -> Result<Option<Option<u64>>, ReceiveError> {
        let mut held = q.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(h) = held.front() {
            return Ok(Some(h.stamp));
        }
        match self.take_queue(on, q, MqWait::NoWait) {
            Ok(h) => {
                let stamp = h.stamp;
                held.push_back(h);
                q.held_len
                    .store(held.len(), std::sync::atomic::Ordering::Release);
                Ok(Some(stamp))
            }
            Err(ReceiveError::Empty) if q.is_closed() => Err(ReceiveError::Closed),
            Err(ReceiveError::Empty) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// One pass of a receive from several sources, without waiting: the
    /// oldest message among the ports' heads (by their send stamps), except
    /// that a message whose age is unknown (a mailbox's, a FIFO's, an
    /// unstamped frame) is taken at once, in list order; with `first`, the
    /// first source with a message (the priority select). `Empty` when none
    /// has one.
    ///
    /// In a receive on the port set `set`, a link member that has ended
    /// leaves the set instead of ending the receive (see [`crate::port_set`]).
    pub(crate) fn take_any(
        &self,
        sources: &[(PortName, Source)],
        first: bool,
        set: Option<&PortSet>,
    ) -> Result<Message, ReceiveError> {
        let mut oldest: Option<(usize, u64)> = None;
        let mut closed = 0;
        for (i, (name, s)) in sources.iter().enumerate() {
            let q = match s {
                Source::Fifo(f) => {
                    match self.receive_fifo(*name, f.rx.as_ref().expect("checked"), Wait::NoWait) {
                        Err(ReceiveError::Empty) => continue,
                        other => return other,
                    }
                }
                Source::Link(pid, rx) => match self.receive_link(*name, *pid, rx, Wait::NoWait) {
                    // A link frame has no send stamp: taken at once, in list order.
                    Err(ReceiveError::Empty) => continue,
                    Err(ReceiveError::SourceDead) if set.is_some() => {
                        set.expect("checked").remove_link(*name);
                        continue;
                    }
                    other => return other,
                },
                Source::Queue(q) => q,
                Source::Set(_) => continue,
            };
            // A mailbox is not this process's alone: taking its head out to
            // compare would take it from its other receivers. Its frames
            // carry no stamp anyway.
            if first || q.live_hold.is_none() {
                match self.receive_queue(*name, q, MqWait::NoWait) {
                    Err(ReceiveError::Empty) => continue,
                    Err(ReceiveError::Closed) => {
                        closed += 1;
                        continue;
                    }
                    other => return other,
                }
            }
            match self.hold_head(*name, q) {
                Ok(None) => {}
                Ok(Some(None)) => return self.receive_queue(*name, q, MqWait::NoWait),
                Ok(Some(Some(t))) => {
                    if oldest.is_none_or(|(_, best)| t < best) {
                        oldest = Some((i, t));
                    }
                }
                Err(ReceiveError::Closed) => closed += 1,
                Err(e) => return Err(e),
            }
        }
        match oldest {
            Some((i, _)) => {
                let (name, Source::Queue(q)) = &sources[i] else {
                    unreachable!("only queues have stamps")
                };
                self.receive_queue(*name, q, MqWait::NoWait)
            }
            // Every source closed and drained: nothing will ever come.
            None if closed == sources.len() && closed > 0 => Err(ReceiveError::Closed),
            None => Err(ReceiveError::Empty),
        }
    }

    /// `select` and `select_first`: [`take_any`](Self::take_any) over the
    /// sources (a port set among them stands for its members), then one
    /// `poll` over every source's descriptor until one is readable.
    pub(crate) fn select_sources(
        &self,
        sources: &[PortName],
        wait: Wait,
        first: bool,
    ) -> Result<Message, ReceiveError> {
        if sources.is_empty() {
            return Err(ReceiveError::InvalidValue);
        }
        let mut resolved: Vec<(PortName, Source)> = Vec::with_capacity(sources.len());
        for &name in sources {
            match self.resolve_source(name)? {
                Source::Set(set) => resolved.extend(self.set_sources(&set)),
                other => resolved.push((name, other)),
            }
        }
        let deadline = deadline_of(wait);
        loop {
            match self.take_any(&resolved, first, None) {
                Err(ReceiveError::Empty) => {}
                other => return other,
            }
            if wait == Wait::NoWait {
                return Err(ReceiveError::Empty);
            }
            // Armed for each wait (a ring's doorbell, see `LinkRx::arm`).
            let fds: Vec<std::os::fd::RawFd> = resolved
                .iter()
                .filter_map(|(_, s)| match s {
                    Source::Queue(q) => Some(q.fd().as_raw_fd()),
                    Source::Fifo(f) => Some(f.rx.as_ref().expect("checked").raw_fd()),
                    Source::Link(_, rx) => Some(rx.arm()),
                    Source::Set(_) => None,
                })
                .collect();
            match sys::poll_many(&fds, deadline) {
                Ok(ready) if ready.is_empty() => return Err(ReceiveError::TimedOut),
                Ok(_) => {}
                Err(e) => return Err(ReceiveError::Os(e)),
            }
        }
    }

    /// A receive on a port set: the oldest message among its members'
    /// heads, else a wait on the set's `epoll` (see [`crate::port_set`]).
    pub(crate) fn receive_set(&self, set: &PortSet, wait: Wait) -> Result<Message, ReceiveError> {
        let deadline = deadline_of(wait);
        loop {
            let members = self.set_sources(set);
            match self.take_any(&members, false, Some(set)) {
                // A set stays open while its members are closed: another
                // port may join it.
                Err(ReceiveError::Empty | ReceiveError::Closed) => {}
                other => return other,
            }
            if wait == Wait::NoWait {
                return Err(ReceiveError::Empty);
            }
            // A ring's doorbell is armed for each wait (`LinkRx::arm`).
            for (_, s) in &members {
                if let Source::Link(_, rx) = s {
                    rx.arm();
                }
            }
            if !set.wait(deadline).map_err(ReceiveError::Os)? {
                return Err(ReceiveError::TimedOut);
            }
        }
    }

    /// A set's members as sources; a link member whose link is closed
    /// leaves the set (see [`crate::port_set`]).
    fn set_sources(&self, set: &PortSet) -> Vec<(PortName, Source)> {
        set.members()
            .into_iter()
            .filter_map(|(name, m)| match m {
                Member::Port(q) => Some((name, Source::Queue(q))),
                Member::Link { pid, .. } => {
                    let rx = self.link_rx(pid);
                    if rx.is_none() {
                        set.remove_link(name);
                    }
                    rx.map(|rx| (name, Source::Link(pid, rx)))
                }
            })
            .collect()
    }

    /// Selective receive from a queue: the oldest message `filter` passes,
    /// among the ones this process holds, then the queue's; the messages
    /// passed over stay held, in order, for later receives. Waits for the
    /// queue to become readable (`poll`) when nothing matches.
    pub(crate) fn receive_queue_matching(
        &self,
        on: PortName,
        q: &Queue,
        filter: &mkipc_kernel::Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let deadline = deadline_of(wait);
        loop {
            {
                let mut held = q.held.lock().unwrap_or_else(|p| p.into_inner());
                let found = match held.iter().position(|h| filter.matches(&h.msg)) {
                    Some(i) => held.remove(i),
                    None => loop {
                        match self.take_queue(on, q, MqWait::NoWait) {
                            Ok(h) if filter.matches(&h.msg) => break Some(h),
                            Ok(h) => held.push_back(h),
                            Err(ReceiveError::Empty) => break None,
                            Err(e) => {
                                q.held_len
                                    .store(held.len(), std::sync::atomic::Ordering::Release);
                                return Err(e);
                            }
                        }
                    },
                };
                q.held_len
                    .store(held.len(), std::sync::atomic::Ordering::Release);
                if let Some(h) = found {
                    drop(held);
                    return Ok(self.deliver_held(on, q, h));
                }
            }
            if q.is_closed() {
                return Err(ReceiveError::Closed);
            }
            if wait == Wait::NoWait {
                return Err(ReceiveError::Empty);
            }
            // A mailbox another process may destroy: wait in slices and
            // check its name between them (see `Queue::watched`).
            let slice = if q.watch {
                let end = sys::deadline_after(crate::queue::WATCH_SLICE);
                match (deadline, end) {
                    (Some(d), Some(e)) => Some(d.min(e)),
                    (d, e) => d.or(e),
                }
            } else {
                deadline
            };
            match sys::poll_one(q.fd(), libc::POLLIN, slice) {
                Ok(true) => {}
                Ok(false) if slice != deadline => {
                    if !q.still_named() {
                        return Err(ReceiveError::SourceDead);
                    }
                    if q.revoked(false) {
                        return Err(ReceiveError::NoPermission);
                    }
                }
                Ok(false) => return Err(ReceiveError::TimedOut),
                Err(e) => return Err(ReceiveError::Os(e)),
            }
        }
    }

    pub(crate) fn receive_fifo(
        &self,
        on: PortName,
        rx: &LinkRx,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let raw = receive_frame(rx, wait)?;
        Ok(self.accept_queue_frame(raw.header, raw.body, on, raw.seqno))
    }
}
