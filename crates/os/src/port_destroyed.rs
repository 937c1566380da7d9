//! Port-destroyed notifications: a receive right about to die goes to the
//! notify port instead, in a notification that carries it.
//!
//! As in Mach, `request_notification(port, PortDestroyed, notify)` puts the
//! request on the port's receive right (here: its `Queue` in this process).
//! When this process would destroy that receive right — `destroy`, its last
//! reference released with `mod_refs`, the `OsProcess` dropped — it moves the
//! right instead: its descriptors (the queue, the liveness pipe's write end,
//! the senders pipes' read ends, as in a message) are deposited with the
//! run's broker ([`crate::broker`]) and a `BROKERED` frame with sender 0,
//! the kernel's id and this process's notification key goes into the notify
//! port's queue. Nothing is written into the liveness pipe, so the port's
//! senders never see a death; its queued messages stay in the queue for the
//! new holder. The receiver of the notification claims the ticket and gets
//! the receive right under a new name (`Notification::PortDestroyed`).
//!
//! A request travels with the receive right when it moves to another
//! process (`crate::travel`): that process then moves it to the requester's
//! notify port, with the request's token instead of its own key.
//!
//! What it does not cover (DESIGN.md, "Notifications"): a process killed by
//! a signal runs no code, so its receive rights die with it (their senders
//! get `DestinationDead` and dead-name notifications); a right with messages this
//! process holds (a peek's, a selective receive's) cannot be moved without
//! reordering them, and a notify port that is full or gone cannot take the
//! notification: in those cases the port is destroyed as without a request.

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use mkipc_kernel::message::Body;
use mkipc_kernel::{Disposition, Message, Notification};

use crate::process::OsProcess;
use crate::queue::{Model, Queue};
use crate::sys::{self, Errno};
use crate::travel::{NotifyTo, PortDestroyed};
use crate::wire::{
    self, RightDesc, RightWire, LIVE_CAPACITY, LIVE_HOLD, LIVE_NO_SENDERS, LIVE_WATCH,
};

impl OsProcess {
    /// A receive right of this process ends (destroyed, or its process
    /// going away): it moves to its port-destroyed notify port if it has a
    /// request, else the port dies with what this process still had
    /// spooled for it.
    pub(crate) fn end_receive_right(&self, receive: &Arc<Queue>, send: &Queue) {
        if !self.move_if_port_destroyed(receive, send) {
            crate::port_set::leave_set(receive);
            receive.signal_destroyed();
            crate::spool::discard(receive);
        }
    }

    /// The receive right `receive` (with this process's send descriptor
    /// `send` of the port) is about to be destroyed: if a port-destroyed
    /// request is on it, moves it into its notify port instead. `true` if
    /// it moved (the caller must then not signal a destruction).
    pub(crate) fn move_if_port_destroyed(&self, receive: &Arc<Queue>, send: &Queue) -> bool {
        let Some(request) = receive.take_port_destroyed() else {
            return false;
        };
        // Done here, one way or the other: the broker's copy goes.
        self.withdraw_escrow(&request);
        let Some(notify) = request.target() else {
            tracing::warn!("port-destroyed: the notify port is gone; destroying the port");
            return false;
        };
        if receive.held_len.load(std::sync::atomic::Ordering::Acquire) > 0 {
            tracing::warn!("port-destroyed: messages held here cannot move; destroying the port");
            return false;
        }
        match self.post_port_destroyed(receive, send, &notify) {
            Ok(()) => {
                crate::port_set::leave_set(receive);
                true
            }
            Err(e) => {
                tracing::warn!(
                    errno = e,
                    "port-destroyed notification lost; destroying the port"
                );
                false
            }
        }
    }

    /// Puts the receive right `receive` (with `send`, as in a message) in
    /// escrow with the broker for its travelling port-destroyed request `to`,
    /// so that the right moves even if this process is killed; the escrow's
    /// id, or `None` (logged) if the broker cannot take it.
    pub(crate) fn escrow_port_destroyed(
        &self,
        receive: &Queue,
        send: &Queue,
        to: &NotifyTo,
    ) -> Option<u64> {
        let made = (|| {
            let (desc, mut fds) = receive_right_descriptors(receive, send)?;
            let notify = to.send.as_ref().ok_or(libc::EPROTO)?;
            let watch = notify.live_watch.as_ref().ok_or(libc::EPROTO)?;
            fds.push(notify.dup_fd()?);
            fds.push(sys::dup(watch.as_fd())?);
            let mut bytes = [0u8; 4];
            desc.write(&mut bytes);
            self.broker_client.escrow(&self.run, bytes, &fds, to.token)
        })();
        match made {
            Ok(id) => Some(id),
            Err(e) => {
                tracing::warn!(
                    errno = e,
                    "port-destroyed: no escrow; a kill of this process destroys the port"
                );
                None
            }
        }
    }

    /// Takes a request's receive right out of the broker's escrow, if it is there.
    pub(crate) fn withdraw_escrow(&self, request: &PortDestroyed) {
        if let PortDestroyed::There {
            escrow: Some(id), ..
        } = request
        {
            if let Err(e) = self.broker_client.withdraw(&self.run, *id) {
                tracing::warn!(errno = e, "port-destroyed: escrow not withdrawn");
            }
        }
    }

    fn post_port_destroyed(
        &self,
        receive: &Queue,
        send: &Queue,
        to: &NotifyTo,
    ) -> Result<(), Errno> {
        let notify = &to.queue;
        let (desc, fds) = receive_right_descriptors(receive, send)?;
        let ticket = self.broker_client.deposit(&self.run, &fds)?;
        drop(fds);
        let msg = Message::new(Notification::PORT_DESTROYED_ID, Body::new());
        let pre = wire::Prefixes {
            stamp: Some(wire::now_stamp()),
            ticket: Some(ticket),
        };
        let frame = wire::encode_queue(&msg, 0, 0, to.token, pre, &[desc]);
        let sent = if notify.model == Model::Unbounded {
            crate::spool::push(notify, &frame).map(drop)
        } else {
            notify.post_frame(&frame)
        };
        if let Err(e) = sent {
            // Withdraw the deposit: the descriptors close, the caller destroys the port.
            let _ = self.broker_client.claim(&self.run, ticket);
            return Err(e);
        }
        Ok(())
    }
}

/// A receive right's descriptors as a message carries them (see
/// `OsProcess::prepare_rights`): the queue, the liveness pipe's write end,
/// a read end of it, then the senders pipes' read ends, then a bounded
/// port's capacity page.
fn receive_right_descriptors(
    receive: &Queue,
    send: &Queue,
) -> Result<(RightDesc, Vec<OwnedFd>), Errno> {
    let mut fds = vec![receive.dup_fd()?];
    let mut liveness = 0;
    if let Some(hold) = &receive.live_hold {
        fds.push(sys::dup(hold.as_fd())?);
        liveness |= LIVE_HOLD;
    }
    if let Some(watch) = &send.live_watch {
        fds.push(sys::dup(watch.as_fd())?);
        liveness |= LIVE_WATCH;
    }
    let ends = receive.senders.dup_watch()?;
    let access = u8::try_from(ends.len()).map_err(|_| libc::EMFILE)?;
    fds.extend(ends);
    if let Some(page) = &receive.cap {
        fds.push(page.dup_fd()?);
        liveness |= LIVE_CAPACITY;
    }
    // Its no-senders request goes with it (`crate::travel`), as in the kernel.
    if let Some(to) = receive.take_moving_no_senders() {
        match to.carry(mkipc_kernel::Notification::NO_SENDERS_ID) {
            Ok(more) => {
                fds.extend(more);
                liveness |= LIVE_NO_SENDERS;
            }
            Err(e) => tracing::warn!(errno = e, "a no-senders request cannot travel: it lapses"),
        }
    }
    Ok((
        RightDesc {
            disposition: Disposition::MoveReceive.received_as(),
            kind: RightWire::Receive,
            access,
            liveness,
        },
        fds,
    ))
}
