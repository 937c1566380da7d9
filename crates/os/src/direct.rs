//! Direct addressing over the pipe links: `send_to`, `receive_from`,
//! `receive_from_any`.
//!
//! Each peer has its own pipe each way ([`crate::link`]), so symmetric
//! addressing (`receive_from(pid)`) reads exactly one pipe, and end of stream
//! on that pipe is the peer's exit. Asymmetric addressing
//! (`receive_from_any`) first takes a frame already buffered on any link
//! (round-robin, so no peer starves), then `poll`s every link still open;
//! when every link has ended it reports `SourceDead`.

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use mkipc_kernel::error::Unsupported;
use mkipc_kernel::message::Trailer;
use mkipc_kernel::{
    Message, OnFull, Pid, PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

use crate::deliver::{deadline_of, pipe_send_failed, pipe_wait, receive_frame, rx_error};
use crate::ipc::LINK_BODY_LIMIT;
use crate::link::{LinkRx, RxError};
use crate::process::OsProcess;
use crate::sys;
use crate::wire;

impl OsProcess {
    pub(crate) fn direct_send(
        &self,
        pid: Pid,
        msg: Message,
        on_full: OnFull,
    ) -> Result<Sent, SendError> {
        let tx = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid.0)
            .and_then(|l| l.tx.clone());
        let Some(tx) = tx else {
            return Err(SendErrorKind::InvalidDestination.with(msg));
        };
        if msg.reply().is_some() {
            return Err(SendErrorKind::Unsupported(Unsupported::ReplyHere).with(msg));
        }
        if msg.body.len() > LINK_BODY_LIMIT {
            return Err(SendErrorKind::TooLarge {
                limit: LINK_BODY_LIMIT,
            }
            .with(msg));
        }
        if !msg.rights().is_empty() && !tx.carries_rights() {
            return Err(SendErrorKind::Unsupported(Unsupported::RightsHere).with(msg));
        }
        let (descs, fds) = match self.prepare_rights(&msg) {
            Ok(x) => x,
            Err((index, error)) => {
                return Err(SendErrorKind::InvalidRight { index, error }.with(msg))
            }
        };
        let raw: Vec<RawFd> = fds.iter().map(|f| f.as_raw_fd()).collect();
        let (wait, deadline) = pipe_wait(on_full);
        // Unchecked on a pipe or ring (`LinkTx::frame_flags`).
        let flags = tx.frame_flags();
        let sent = if descs.is_empty() {
            // Header and body as two pieces: a pipe takes them in one
            // `writev`, with no copy of the body.
            let head = wire::head(msg.id, &msg.body, self.pid, flags, 0);
            tx.send_parts(&head, &msg.body, &raw, wait, deadline)
        } else {
            wire::with_frame(msg.id, &msg.body, self.pid, flags, 0, &descs, |frame| {
                tx.send(frame, &raw, wait, deadline)
            })
        };
        match sent {
            Ok(()) => {
                self.commit_rights(&msg);
                tracing::trace!(
                    to = pid.0,
                    id = msg.id,
                    bytes = msg.body.len(),
                    rights = msg.rights().len(),
                    "send_to"
                );
                Ok(Sent::Delivered)
            }
            Err(e) => {
                self.rights_not_sent(&msg);
                pipe_send_failed(e, on_full, msg, LINK_BODY_LIMIT)
            }
        }
    }

    pub(crate) fn direct_receive(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError> {
        let rx = self.link_rx(pid.0);
        let rx = rx.ok_or(ReceiveError::InvalidName)?;
        let raw = receive_frame(&rx, wait)?;
        tracing::trace!(
            from = pid.0,
            id = raw.header.id,
            bytes = raw.header.body_len,
            "receive_from"
        );
        Ok(self.message_from(pid.0, &rx, raw))
    }

    /// The message of a frame from the link with `pid`: its sender is
    /// verified, except on a socket link whose peer only claims its pid.
    fn message_from(&self, pid: u32, rx: &LinkRx, raw: crate::link::RawFrame) -> Message {
        let mut msg = self.message_from_link(pid, raw);
        if rx.sender_claimed() {
            msg.mark_sender_claimed();
        }
        msg
    }

    /// A receive from the link with `pid` through its name `on`
    /// ([`OsProcess::link_name`]): the message says it came `on` it.
    pub(crate) fn receive_link(
        &self,
        on: PortName,
        pid: u32,
        rx: &LinkRx,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let raw = receive_frame(rx, wait)?;
        let mut msg = self.message_from_link(pid, raw);
        if let Some(t) = msg.trailer() {
            msg.set_trailer(Some(Trailer {
                received_on: on,
                ..t
            }));
        }
        if rx.sender_claimed() {
            msg.mark_sender_claimed();
        }
        Ok(msg)
    }

    /// A name for receiving from the direct link with `pid` (pipe, shared
    /// memory or socket), so that one `select` waits on it together with
    /// ports, mailboxes, FIFOs and other links: a message taken through it
    /// has `received_on() == Some(name)`. `receive(name)` is
    /// `receive_from(pid)`. It is no right: nothing can be sent to it
    /// (`InvalidDestination`), and once the link is closed a receive on it
    /// is `SourceDead`. Release it with `deallocate`. No such link:
    /// [`IpcError::NotFound`](mkipc_kernel::IpcError::NotFound).
    pub fn link_name(&self, pid: Pid) -> Result<PortName, mkipc_kernel::IpcError> {
        let has = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&pid.0)
            .is_some_and(|l| l.rx.is_some());
        if !has {
            return Err(mkipc_kernel::IpcError::NotFound);
        }
        Ok(self.insert(crate::names::Entry::Link { pid: pid.0 }))
    }

    pub(crate) fn direct_receive_any(&self, wait: Wait) -> Result<Message, ReceiveError> {
        let deadline = deadline_of(wait);
        let rxs: Vec<(u32, Arc<LinkRx>)> = self
            .links
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|(&pid, l)| l.rx.clone().map(|rx| (pid, rx)))
            .collect();
        let mut finished = vec![false; rxs.len()];
        // A receive that may not wait still reads what the pipes hold: it
        // polls once with a zero timeout, pumps the ready links, and looks again.
        let deadline = if wait == Wait::NoWait {
            Some(std::time::Instant::now())
        } else {
            deadline
        };
        let mut polled = false;
        loop {
            let n = rxs.len();
            let start = self.rr.fetch_add(1, std::sync::atomic::Ordering::Relaxed) as usize;
            for k in 0..n {
                let i = (start + k) % n;
                if finished[i] || !rxs[i].1.ready() {
                    continue;
                }
                match rxs[i].1.receive(false, None) {
                    Ok(raw) => return Ok(self.message_from(rxs[i].0, &rxs[i].1, raw)),
                    Err(RxError::Eof) => finished[i] = true,
                    Err(RxError::Empty) => {}
                    Err(e) => return Err(rx_error(e)),
                }
            }
            let live: Vec<usize> = (0..n).filter(|&i| !finished[i]).collect();
            if live.is_empty() {
                return Err(ReceiveError::SourceDead);
            }
            if wait == Wait::NoWait && polled {
                return Err(ReceiveError::Empty);
            }
            polled = true;
            let fds: Vec<RawFd> = live.iter().map(|&i| rxs[i].1.wait_fd()).collect();
            match sys::poll_many(&fds, deadline) {
                Ok(ready) if ready.is_empty() => {
                    return Err(if wait == Wait::NoWait {
                        ReceiveError::Empty
                    } else {
                        ReceiveError::TimedOut
                    })
                }
                Ok(ready) => {
                    for r in ready {
                        rxs[live[r]].1.pump().map_err(rx_error)?;
                    }
                }
                Err(e) => return Err(ReceiveError::Os(e)),
            }
        }
    }
}
