//! Zero capacity on a POSIX queue: the rendezvous.
//!
//! A POSIX queue cannot hold zero messages, so a rendezvous queue holds one
//! (`mq_maxmsg` = 1, marked by `mq_msgsize & 3 == 3`) and the *receiver*
//! completes the meeting: the sender puts the frame in with `ACK_WANTED` and
//! a token, then waits on its own reply queue; the receiving mkipc process
//! sends back an `IS_ACK` frame with the same token as soon as it has taken
//! the message ([`OsProcess::accept_queue_frame`]). The send returns only
//! then, which is the rendezvous guarantee: the sender leaves after the
//! receiver has the message.
//!
//! If the sender's wait ends first (`try_send`, `send_timeout`) it takes its
//! message back out of the queue when it can read the queue (its own port).
//! If it finds another sender's frame instead, its own was taken (so the send
//! counts as done) and the other frame is put back, through this process's
//! spool when a sender blocked in `mq_send` took the slot meanwhile (see
//! [`put_back`]). A sender that cannot read
//! the queue cannot take the message back: it reports the failure, but the
//! message may still be received later.

use std::sync::Arc;
use std::time::Instant;

use mkipc_kernel::{IpcError, Message, OnFull, ReceiveError, SendError, SendErrorKind, Sent};

use crate::deliver::not_sent;
use crate::errno;
use crate::process::OsProcess;
use crate::queue::Queue;
use crate::spool;
use crate::sys::{self, MqWait};
use crate::wire;

impl OsProcess {
    /// Zero capacity: put the message in the (one-slot) queue, then wait for
    /// the receiver's acknowledgement. If the wait ends first, take the
    /// message back if this process can read the queue.
    pub(crate) fn rendezvous(
        &self,
        q: &Arc<Queue>,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let limit = q.body_limit();
        if let Err(e) = self.reply_queue() {
            return Err(match e {
                IpcError::Os(errno) => SendErrorKind::Os(errno).with(msg),
                IpcError::Limit(limit) => SendErrorKind::Limit(limit).with(msg),
                _ => SendErrorKind::Os(libc::EIO).with(msg),
            });
        }
        let token = self.new_token();
        self.expect_token(token);
        let frame = wire::encode(&msg, self.pid, wire::FLAG_ACK_WANTED, token, &[]);
        let (wait, deadline) = match on_full {
            OnFull::Block => (MqWait::Forever, None),
            OnFull::Timeout(d) => {
                let at = sys::deadline_after(d);
                (MqWait::until(at), at)
            }
            _ => (MqWait::NoWait, Some(Instant::now())),
        };
        match q.send(&frame, wait) {
            Ok(()) => {}
            Err(libc::EAGAIN | libc::ETIMEDOUT) => {
                let _ = self.wait_token(token, None, true, None, false);
                return not_sent(on_full, msg);
            }
            Err(e) => return Err(errno::send_error(e, msg, limit)),
        }
        let no_wait = matches!(wait, MqWait::NoWait);
        match self.wait_token(token, deadline, no_wait, Some(q), false) {
            Ok(_) => Ok(Sent::Delivered),
            // The receiver died before it took the message: lost with the port.
            Err(ReceiveError::SourceDead) => Err(SendErrorKind::DestinationDead.with(msg)),
            Err(ReceiveError::TimedOut | ReceiveError::Empty) => {
                if !q.readable {
                    // Cannot take it back: it may still be received later.
                    return not_sent(on_full, msg);
                }
                let me = self.pid;
                let taken = q.receive(MqWait::NoWait, |b| {
                    let ours =
                        wire::Header::parse(b).is_ok_and(|h| h.sender == me && h.token == token);
                    (ours, b.to_vec())
                });
                match taken {
                    Ok((true, _)) => not_sent(on_full, msg),
                    Ok((false, other)) => {
                        // Ours was taken; put back the one that arrived since.
                        put_back(q, &other);
                        Ok(Sent::Delivered)
                    }
                    Err(_) => Ok(Sent::Delivered), // empty: a receiver took ours
                }
            }
            Err(e) => Err(receive_failed(e).with(msg)),
        }
    }
}

/// Puts back a frame a sender took out of a rendezvous queue instead of its
/// own. The slot it leaves is not ours to keep: a sender blocked in `mq_send`
/// gets it during the very `mq_receive` that emptied it, so the frame may no
/// longer fit. Then it waits in this process's spool for the queue, whose
/// flusher moves it in when there is room, and which this process's own
/// receives take from first ([`crate::spool::take_put_back`]): nothing is lost,
/// and receivers in this process (all of them, for a port) still get it
/// before the frame that took its slot.
fn put_back(q: &Arc<Queue>, frame: &[u8]) {
    let result = match q.send(frame, MqWait::NoWait) {
        Ok(()) => return,
        Err(libc::EAGAIN) => spool::push(q, frame),
        Err(e) => Err(e),
    };
    match result {
        Ok(spool::Pushed::Queued | spool::Pushed::Waiting) => {}
        Ok(spool::Pushed::OverLimit) => {
            tracing::warn!(queue = %q.name, "rendezvous: spool full, a taken-back frame is lost")
        }
        Err(e) => {
            tracing::warn!(queue = %q.name, errno = e, "rendezvous: could not put a frame back")
        }
    }
}

/// What a rendezvous send reports when taking its acknowledgement (or its
/// own message back) failed: the system's reason, a limit as a limit.
pub(crate) fn receive_failed(e: ReceiveError) -> SendErrorKind {
    match e {
        ReceiveError::Os(e) => SendErrorKind::Os(e),
        ReceiveError::Limit(limit) => SendErrorKind::Limit(limit),
        ReceiveError::NoPermission => SendErrorKind::Os(libc::EACCES),
        _ => SendErrorKind::Os(libc::EIO),
    }
}
