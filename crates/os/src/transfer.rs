//! Rights in messages: from names to descriptors and back.
//!
//! On the way out, each carried right is looked up and its queue descriptor
//! duplicated ([`OsProcess::prepare_rights`]); nothing changes in the name
//! space until the frame and the descriptors are on their way
//! ([`OsProcess::commit_rights`]), so a failed send leaves every right where it
//! was. On the way in, every descriptor that came with a frame by
//! `SCM_RIGHTS` becomes a new name ([`OsProcess::message_from_link`]).

use std::os::fd::{AsFd, OwnedFd};
use std::sync::Arc;

use mkipc_kernel::message::Trailer;
use mkipc_kernel::name::{Access, RightKind};
use mkipc_kernel::{Disposition, IpcError, Message, Notification, Pid, PortName};

use crate::capacity::CapacityPage;
use crate::link::RawFrame;
use crate::names::Entry;
use crate::process::OsProcess;
use crate::queue::Model;
use crate::queue::Queue;
use crate::registry::{self, Kind};
use crate::senders::Senders;
use crate::sys;
use crate::travel::{NotifyTo, PortDestroyed};
use crate::wire::{
    RightDesc, RightWire, LIVE_CAPACITY, LIVE_HOLD, LIVE_NO_SENDERS, LIVE_PORT_DESTROYED,
    LIVE_SENDER, LIVE_WATCH,
};

impl OsProcess {
    /// Takes the rights a message carries out of this name space, as
    /// descriptors (nothing is changed until [`commit_rights`](Self::commit_rights)).
    pub(crate) fn prepare_rights(
        &self,
        msg: &Message,
    ) -> Result<(Vec<RightDesc>, Vec<OwnedFd>), (usize, IpcError)> {
        if msg.rights().is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let mut descs = Vec::with_capacity(msg.rights().len());
        let mut fds = Vec::with_capacity(msg.rights().len());
        for (i, r) in msg.rights().iter().enumerate() {
            let entry = names.get(r.name).map_err(|e| (i, e))?;
            let wrong = |needed| (i, IpcError::WrongRight { needed });
            let (kind, queue, mut access) = match (r.disposition, entry) {
                (
                    Disposition::MoveSend | Disposition::CopySend,
                    Entry::Port {
                        send, send_refs, ..
                    },
                ) if *send_refs > 0 => (RightWire::Send, send, 0),
                // Its descriptor would carry our access past the list.
                (Disposition::MoveSend | Disposition::CopySend, Entry::Mailbox { queue, .. })
                    if queue.granted =>
                {
                    return Err((
                        i,
                        IpcError::Unsupported(mkipc_kernel::error::Unsupported::Grants),
                    ))
                }
                (
                    Disposition::MoveSend | Disposition::CopySend,
                    Entry::Mailbox { queue, access, .. },
                ) => (
                    RightWire::Mailbox,
                    queue,
                    access.send as u8 | (access.receive as u8) << 1,
                ),
                (
                    Disposition::MakeSend,
                    Entry::Port {
                        receive: Some(_),
                        send,
                        ..
                    },
                ) => (RightWire::Send, send, 0),
                (
                    Disposition::MakeSendOnce,
                    Entry::Port {
                        receive: Some(_),
                        send,
                        ..
                    },
                ) => (RightWire::SendOnce, send, 0),
                (Disposition::MoveSendOnce, Entry::SendOnce { send }) => {
                    (RightWire::SendOnce, send, 0)
                }
                // Messages this process took out of the queue (a peek, a
                // selective receive's set-asides) cannot go back into it
                // in order: such a receive right stays here.
                (
                    Disposition::MoveReceive,
                    Entry::Port {
                        receive: Some(q), ..
                    },
                ) if q.held_len.load(std::sync::atomic::Ordering::Acquire) > 0 => {
                    return Err((
                        i,
                        IpcError::Unsupported(mkipc_kernel::error::Unsupported::SelectiveReceive),
                    ))
                }
                (
                    Disposition::MoveReceive,
                    Entry::Port {
                        receive: Some(q), ..
                    },
                ) => (RightWire::Receive, q, 0),
                (Disposition::MoveSend | Disposition::CopySend, _) => {
                    return Err(wrong(RightKind::Send))
                }
                (Disposition::MoveSendOnce, _) => return Err(wrong(RightKind::SendOnce)),
                _ => return Err(wrong(RightKind::Receive)),
            };
            let os_err = |e| (i, IpcError::Os(e));
            fds.push(queue.dup_fd().map_err(os_err)?);
            // The port's liveness pipe travels with it: the write end with a
            // receive right (taken from the receive queue), a read end with
            // every right that sends (see `crate::queue`).
            let mut liveness = 0;
            if kind == RightWire::Receive {
                if let Some(hold) = &queue.live_hold {
                    fds.push(sys::dup(hold.as_fd()).map_err(os_err)?);
                    liveness |= LIVE_HOLD;
                }
            }
            let watch = match entry {
                Entry::Port { send, .. } => send.live_watch.as_ref(),
                Entry::SendOnce { send } => send.live_watch.as_ref(),
                _ => None,
            };
            if let Some(watch) = watch {
                fds.push(sys::dup(watch.as_fd()).map_err(os_err)?);
                liveness |= LIVE_WATCH;
            }
            // Then the senders pipes (`crate::senders`): a write end with a
            // send right, every read end with a receive right.
            match (kind, entry) {
                (RightWire::Send, Entry::Port { receive, send, .. }) => {
                    let (end, grew) = send
                        .senders
                        .end_for_right(receive.is_some())
                        .map_err(os_err)?;
                    if grew {
                        names.senders_grew(send);
                    }
                    if let Some(end) = end {
                        fds.push(end);
                        liveness |= LIVE_SENDER;
                    }
                }
                (RightWire::Receive, _) => {
                    let ends = queue.senders.dup_watch().map_err(os_err)?;
                    access = u8::try_from(ends.len()).map_err(|_| {
                        (
                            i,
                            IpcError::Limit(mkipc_kernel::error::Limit::DescriptorsPerMessage {
                                max: crate::link::MAX_RIGHTS,
                            }),
                        )
                    })?;
                    fds.extend(ends);
                }
                _ => {}
            }
            // Then a bounded port's capacity page (`crate::capacity`).
            if let Some(page) = &queue.cap {
                fds.push(page.dup_fd().map_err(os_err)?);
                liveness |= LIVE_CAPACITY;
            }
            // Last, the requests on a receive right, which travel with it
            // (`crate::travel`); one that cannot travel lapses.
            if kind == RightWire::Receive {
                let requests = [
                    (
                        names.no_senders_request(queue),
                        Notification::NO_SENDERS_ID,
                        LIVE_NO_SENDERS,
                    ),
                    (
                        queue.port_destroyed_target(),
                        Notification::PORT_DESTROYED_ID,
                        LIVE_PORT_DESTROYED,
                    ),
                ];
                for (request, id, bit) in requests {
                    let Some(to) = request else { continue };
                    match to.carry(id) {
                        Ok(more) => {
                            fds.extend(more);
                            liveness |= bit;
                        }
                        Err(e) => {
                            tracing::warn!(errno = e, id, "a request cannot travel: it lapses")
                        }
                    }
                }
            }
            descs.push(RightDesc {
                disposition: r.disposition.received_as(),
                kind,
                access,
                liveness,
            });
        }
        // Their dead-name requests wait for the send to end (see `Notifier::hold`).
        for r in msg.rights() {
            if is_move(r.disposition) {
                names.hold_requests(r.name);
            }
        }
        Ok((descs, fds))
    }

    /// A send whose rights [`prepare_rights`](Self::prepare_rights) took
    /// failed: the requests it held are looked at again.
    pub(crate) fn rights_not_sent(&self, msg: &Message) {
        if msg.rights().is_empty() {
            return;
        }
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        for r in msg.rights() {
            if is_move(r.disposition) {
                names.release_requests(r.name);
            }
        }
    }

    /// Removes moved rights from this name space after a successful send.
    pub(crate) fn commit_rights(&self, msg: &Message) {
        if msg.rights().is_empty() {
            return;
        }
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        for r in msg.rights() {
            let remove = match (r.disposition, names.get_mut(r.name)) {
                (
                    Disposition::MoveSend,
                    Ok(Entry::Port {
                        receive,
                        send,
                        send_refs,
                    }),
                ) => {
                    *send_refs = send_refs.saturating_sub(1);
                    if *send_refs == 0 {
                        let gone = receive.is_none();
                        let send = Arc::clone(send);
                        names.last_send_right_gone(r.name, &send);
                        gone
                    } else {
                        false
                    }
                }
                (Disposition::MoveSend, Ok(Entry::Mailbox { .. })) => true,
                (Disposition::MoveSendOnce, Ok(_)) => true,
                (
                    Disposition::MoveReceive,
                    Ok(Entry::Port {
                        receive, send_refs, ..
                    }),
                ) => {
                    let gone = *send_refs == 0;
                    if let Some(q) = receive.take() {
                        crate::port_set::leave_set(&q);
                        // Its requests went with it (`crate::travel`).
                        if let Some(r) = q.take_port_destroyed() {
                            self.withdraw_escrow(&r);
                        }
                        names.receive_right_left(&q);
                    }
                    gone
                }
                _ => false,
            };
            if remove {
                let _ = names.remove(r.name);
            }
            if is_move(r.disposition) {
                names.release_requests(r.name);
            }
        }
    }

    /// Installs the rights that came with a link frame under new names.
    pub(crate) fn message_from_link(&self, pid: u32, raw: RawFrame) -> Message {
        let mut msg = Message::new(raw.header.id, raw.body);
        // The link checked that as many descriptors came as the rights announce.
        self.install_rights(&mut msg, &raw.rights, raw.fds);
        msg.set_trailer(Some(Trailer {
            sender: Pid(pid),
            received_on: PortName::NULL,
            seqno: raw.seqno,
        }));
        msg
    }

    /// Installs received rights (their descriptors `fds`, in the order the
    /// descriptors announce them) under new names, into `msg`'s rights. A
    /// right whose descriptors are missing or unusable arrives as
    /// `PortName::DEAD`.
    pub(crate) fn install_rights(
        &self,
        msg: &mut Message,
        rights: &[RightDesc],
        fds: Vec<OwnedFd>,
    ) {
        let mut fds = fds.into_iter();
        for desc in rights.iter() {
            let (readable, writable) = match desc.kind {
                RightWire::Receive => (true, true),
                RightWire::Mailbox => (desc.access & 2 != 0, desc.access & 1 != 0),
                _ => (false, true),
            };
            let fd = fds.next();
            let hold = (desc.liveness & LIVE_HOLD != 0)
                .then(|| fds.next())
                .flatten();
            let watch = (desc.liveness & LIVE_WATCH != 0)
                .then(|| fds.next())
                .flatten();
            // The senders pipes' ends (`crate::senders`), then the capacity
            // page, then the requests that travel with a receive right.
            let has_page = desc.liveness & LIVE_CAPACITY != 0;
            let senders_ends: Vec<OwnedFd> = (0..desc.descriptors()
                - desc.liveness_descriptors()
                - usize::from(has_page)
                - desc.request_descriptors())
                .filter_map(|_| fds.next())
                .collect();
            let page = has_page.then(|| fds.next()).flatten();
            let mut request = |bit: u8| {
                if desc.liveness & bit == 0 {
                    return None;
                }
                let (t, q, w) = (fds.next(), fds.next(), fds.next());
                match NotifyTo::adopt(t?, q?, w?) {
                    Ok(to) => Some(to),
                    Err(e) => {
                        tracing::warn!(errno = e, "a travelling request did not arrive whole");
                        None
                    }
                }
            };
            let no_senders = request(LIVE_NO_SENDERS);
            let port_destroyed = request(LIVE_PORT_DESTROYED);
            let made = fd.ok_or(libc::EPROTO).and_then(|fd| {
                let mut q = Queue::from_fd(fd, String::new(), readable, writable)?;
                // A bounded port's page: a right announcing one that is not
                // a capacity page is refused (it arrives as a dead name).
                let page = match page {
                    Some(p) if q.model == Model::Bounded => Some(Arc::new(CapacityPage::adopt(p)?)),
                    Some(_) => return Err(libc::EPROTO),
                    None => None,
                };
                q.cap = page.clone();
                if desc.kind != RightWire::Receive {
                    q.live_watch = watch;
                    if desc.kind == RightWire::Send {
                        q.senders = Arc::new(Senders::holding(senders_ends.into_iter().next()));
                    }
                    return Ok((q, None));
                }
                // A receive right: the receive queue holds the liveness pipe,
                // and the send side (a second descriptor) watches it, as after
                // `port_allocate`, so that sends after the receive right moves
                // on learn when its new holder is gone.
                let mut send = Queue::from_fd(q.dup_fd()?, String::new(), false, true)?;
                send.cap = page;
                q.live_hold = hold;
                send.live_watch = watch;
                q.senders = Arc::new(Senders::watching(senders_ends));
                send.closed = Arc::clone(&q.closed);
                send.senders = Arc::clone(&q.senders);
                // Whole now (liveness and senders ends): its escrow copy is
                // the right as it arrived.
                if let Some(to) = port_destroyed {
                    let escrow = self.escrow_port_destroyed(&q, &send, &to);
                    q.set_port_destroyed(PortDestroyed::There { to, escrow });
                }
                Ok((q, Some(send)))
            });
            let name = match made {
                Ok((q, send)) => {
                    let q = Arc::new(q);
                    let travelling = no_senders.map(|to| (Arc::clone(&q), to));
                    let name = self.insert(match desc.kind {
                        RightWire::Send => Entry::Port {
                            receive: None,
                            send: q,
                            send_refs: 1,
                        },
                        RightWire::Receive => Entry::Port {
                            send: send.map_or_else(|| Arc::clone(&q), Arc::new),
                            receive: Some(q),
                            send_refs: 0,
                        },
                        RightWire::SendOnce => Entry::SendOnce { send: q },
                        RightWire::Mailbox => Entry::Mailbox {
                            queue: q,
                            access: Access {
                                send: writable,
                                receive: readable,
                            },
                            owned: false,
                            system: false,
                        },
                    });
                    if let Some((q, to)) = travelling {
                        self.adopt_no_senders(name, &q, to);
                    }
                    name
                }
                Err(_) => PortName::DEAD,
            };
            msg.rights_mut().push(mkipc_kernel::CarriedRight {
                name,
                disposition: desc.disposition,
            });
        }
    }

    /// A no-senders request came with the receive right now under `name`
    /// (`crate::travel`): answered at once if no send right is left, else
    /// watched here as one made here would be.
    fn adopt_no_senders(&self, name: PortName, q: &Arc<Queue>, to: NotifyTo) {
        if q.senders.none_left() {
            crate::notify::post_to(&to, Notification::NO_SENDERS_ID, name);
            return;
        }
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let watched = names
            .notifier()
            .and_then(|n| n.watch(name, crate::notify::Want::NoSenders, Arc::clone(q), to));
        if let Err(e) = watched {
            tracing::warn!(
                errno = e,
                "a travelling no-senders request cannot be watched"
            );
        }
    }

    pub(crate) fn drop_entry(&self, entry: Entry) {
        if let Entry::Port { send, .. } = &entry {
            // Its send references (a send-once right may share the queue).
            send.senders.release_local();
        }
        match entry {
            // The port dies with what this process still had spooled for it.
            // A port-destroyed request moves it to its notify port instead.
            Entry::Port {
                receive: Some(q),
                send,
                ..
            } => self.end_receive_right(&q, &send),
            Entry::Reply { pid, token } => self.send_no_reply(pid, token),
            Entry::Fifo(f) if f.owned => {
                let _ = std::fs::remove_file(&f.path);
                if let Some(p) = f.path.to_str() {
                    registry::forget(&self.run, Kind::Fifo, p);
                }
            }
            Entry::Mailbox {
                queue, owned: true, ..
            } => {
                let _ = sys::mq_unlink(&queue.name);
                self.forget_granted(&queue);
                self.forget_mailbox_page(&queue);
                registry::forget(&self.run, Kind::Queue, &queue.name);
            }
            _ => {}
        }
    }
}

/// Whether a right sent with `d` leaves its name (a move form).
fn is_move(d: Disposition) -> bool {
    matches!(
        d,
        Disposition::MoveSend | Disposition::MoveSendOnce | Disposition::MoveReceive
    )
}
