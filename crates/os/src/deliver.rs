//! Sending into and receiving from queues and FIFOs: resolving a name to
//! what it stands for, then applying the capacity model and the sender's
//! policy ([`OnFull`]) or the receiver's wait ([`Wait`]).
//!
//! One primitive per direction: [`OsProcess::send_queue`] takes the policy and
//! turns it into one `mq_send`/`mq_timedsend` (bounded), a spool push
//! (unbounded) or a rendezvous ([`crate::rendezvous`]); `send`, `try_send` and
//! `send_timeout` all end up here.

use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::{
    Body, IpcError, Limit, MalformedFrame, Message, OnFull, PortName, ReceiveError, SendError,
    SendErrorKind, Sent, Unsupported, Wait,
};

use crate::errno;
use crate::fifo::Fifo;

use crate::link::{LinkRx, RxError, TxError};
use crate::names::Entry;
use crate::process::OsProcess;
use crate::queue::{Model, Queue};
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
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
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
            Entry::SendOnce { send } => Target::Queue {
                queue: Arc::clone(send),
                once: true,
            },
            Entry::Reply { pid, token } => Target::Reply {
                pid: *pid,
                token: *token,
            },
            Entry::Mailbox { queue, access, .. } => {
                if !access.send {
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
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        match names.get(source)? {
            Entry::Port {
                receive: Some(q), ..
            } => Ok(Source::Queue(Arc::clone(q))),
            Entry::Mailbox { queue, access, .. } => {
                if access.receive {
                    Ok(Source::Queue(Arc::clone(queue)))
                } else {
                    Err(ReceiveError::NoPermission)
                }
            }
            Entry::Fifo(f) if f.rx.is_some() => Ok(Source::Fifo(Arc::clone(f))),
            Entry::Fifo(_) => Err(ReceiveError::NoPermission),
            Entry::Dead { .. } => Err(ReceiveError::SourceDead),
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
        if q.model == Model::Zero && flags & wire::FLAG_REPLY_WANTED == 0 {
            return self.rendezvous(q, msg, on_full);
        }
        let frame = wire::encode(&msg, self.pid, flags, token, &[]);
        if q.model == Model::Unbounded {
            return match spool::push(q, &frame) {
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
        match q.send(&frame, wait) {
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
                    // send-once notification does) instead of leaving it to wait.
                    if let Ok(Ok(h)) = q.receive(MqWait::NoWait, wire::Header::parse) {
                        if h.flags & wire::FLAG_REPLY_WANTED != 0 {
                            self.send_no_reply(h.sender, h.token);
                        }
                    }
                    match q.send(&frame, MqWait::NoWait) {
                        Ok(()) => return Ok(Sent::Displaced),
                        Err(libc::EAGAIN) => continue,
                        Err(e) => return Err(errno::send_error(e, msg, limit)),
                    }
                }
            }
            Err(e) => Err(errno::send_error(e, msg, limit)),
        }
    }

    pub(crate) fn receive_queue(
        &self,
        on: PortName,
        q: &Queue,
        wait: MqWait,
    ) -> Result<Message, ReceiveError> {
        let decode =
            |bytes: &[u8]| wire::decode(bytes).map(|f| (f.header, Body::from_slice(f.body)));
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
        while matches!(got, Err(libc::EAGAIN)) && spool::pump_one(q) != spool::Pump::Empty {
            got = q.receive(MqWait::NoWait, decode);
        }
        match got {
            Ok(Ok((h, body))) => {
                if h.nrights > 0 {
                    return Err(ReceiveError::Malformed(MalformedFrame::RightsCount));
                }
                let seqno = q.seq.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::trace!(queue = %q.name, from = h.sender, id = h.id, bytes = h.body_len, "receive");
                Ok(self.accept_queue_frame(h, body, on, seqno))
            }
            Ok(Err(e)) => Err(ReceiveError::Malformed(e.malformed())),
            Err(e) => Err(errno::receive_error(e)),
        }
    }

    pub(crate) fn receive_fifo(
        &self,
        on: PortName,
        rx: &LinkRx,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let raw = match wait {
            Wait::NoWait => rx.receive(false, None),
            _ => rx.receive(true, deadline_of(wait)),
        }
        .map_err(rx_error)?;
        Ok(self.accept_queue_frame(raw.header, raw.body, on, raw.seqno))
    }
}
