//! The [`Ipc`] trait on real processes: which OS mechanism serves each call.
//!
//! | API | OS mechanism |
//! |---|---|
//! | `port_allocate` | a POSIX queue, `mq_unlink`ed at birth: only descriptors reach it |
//! | send right in a message on a link | the queue's write-only descriptor, passed with `SCM_RIGHTS` |
//! | a right in a message to a port or mailbox | its descriptors deposited with the run's broker ([`crate::broker`]); the frame carries the ticket |
//! | `send_to` / `receive_from` | the pipe pair (or shared-memory rings) set up at spawn, framed |
//! | `mailbox_*` | a named POSIX queue; its mode bits are the access list |
//! | `call` / `reply` | the request carries a token; the reply goes to the caller's reply queue |
//! | `Capacity::Zero` | the receiver acknowledges on the sender's reply queue |
//! | `Capacity::Unbounded` | the sender spools what the queue cannot take ([`crate::spool`]) |
//! | `select` | oldest first among ports (send stamps), a message of unknown age (mailbox, FIFO) first; then one `poll` |
//! | port sets | one `epoll` instance over the members' descriptors, ports' queues and links ([`crate::port_set`]) |
//! | `peek`, selective receive | messages taken out of the queue and held, in order, by the receiving process |
//! | `close` | a flag here and one byte in the port's liveness pipe for the other processes |
//! | notifications | dead-name (liveness pipe), send-possible (`POLLOUT`) and no-senders (the senders pipes' hang-up, [`crate::senders`]) on one `epoll` ([`crate::notify`]) |
//! | port-destroyed | the receive right moved into the notify port through the broker ([`crate::port_destroyed`]) |
//! | name service | the run's broker keeps each service's send right |
//! | per-pid grants | the run's broker keeps the access list and the queue's descriptors; the queue's mode is 0000 ([`crate::grants`]) |
//! | `set_capacity` of a bounded port | the port's capacity page, read by every sender ([`crate::capacity`]) |
//! | `set_link_capacity` of a pipe link | `F_SETPIPE_SZ` on its pipe: `Bounded(n)` is `n` pages |
//! | other capacity changes, other links' capacity | [`IpcError::Unsupported`] |

use std::sync::Arc;

use mkipc_kernel::error::{Limit, Unsupported};
use mkipc_kernel::ipc::{Owner, PortStatus};
use mkipc_kernel::message::{Body, Trailer};
use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::{
    CallError, Capacity, Disposition, Filter, Ipc, IpcError, MailboxConfig, Message, Notification,
    NotifyKind, OnFull, Pid, PortName, ReceiveError, SendError, SendErrorKind, Sent, Wait,
};

use mkipc_kernel::name_rules::validate_name;

use crate::capacity::CapacityPage;
use crate::deliver::{deadline_of, mq_wait, pipe_send_failed, pipe_wait, Source, Target};
use crate::errno;
use crate::fifo::FIFO_BODY_LIMIT;
use crate::names::{rights_of, Entry};
use crate::notify::{self, Want};
use crate::port_set::{self, PortSet};
use crate::process::{open_with_best_access, OsProcess};
use crate::queue::Queue;
use crate::registry::{self, EntryOwner, Kind};
use crate::sys;
use crate::travel::NotifyTo;
use crate::wire;

/// The largest body on a direct link.
pub const LINK_BODY_LIMIT: usize = 64 << 20;

/// What one message of a pipe link's capacity stands for: one page of the
/// pipe (`set_link_capacity`).
const PIPE_PAGE: usize = 4096;

impl Ipc for OsProcess {
    fn pid(&self) -> Pid {
        Pid(self.pid)
    }

    fn port_allocate(&self, capacity: Capacity) -> Result<PortName, IpcError> {
        capacity.validate()?;
        let name = self.fresh_queue_name("p");
        let owner = EntryOwner::Process(self.pid);
        registry::record(&self.run, Kind::Queue, &name, owner).map_err(crate::process::io_error)?;
        // The errno of the creation and of the second open mean different
        // things (only a creation can pass RLIMIT_MSGQUEUE): map each apart.
        let made = Queue::create(&name, capacity, 0o600, true, true)
            .map_err(|e| errno::create_queue_error(e, capacity))
            .and_then(|receive| {
                let send = Queue::open(&name, false, true).map_err(errno::ipc_error)?;
                Ok((receive, send))
            });
        let _ = sys::mq_unlink(&name);
        registry::forget_own(&self.run, Kind::Queue, &name, owner);
        let (mut receive, mut send) = made?;
        // Unlinked: the name means nothing any more.
        receive.name.clear();
        send.name.clear();
        // The liveness pipe: the receive right holds the write end, send
        // rights watch the read end (see `crate::queue`).
        let (watch, hold) = sys::pipe().map_err(errno::ipc_error)?;
        receive.live_hold = Some(hold);
        send.live_watch = Some(watch);
        // A bounded port's capacity lives in a page every holder shares
        // (`crate::capacity`), so that `set_capacity` can move it.
        if let Capacity::Bounded(n) = capacity {
            let page = Arc::new(CapacityPage::new(n).map_err(errno::ipc_error)?);
            receive.cap = Some(Arc::clone(&page));
            send.cap = Some(page);
        }
        send.closed = Arc::clone(&receive.closed);
        send.senders = Arc::clone(&receive.senders);
        Ok(self.insert(Entry::Port {
            receive: Some(Arc::new(receive)),
            send: Arc::new(send),
            send_refs: 0,
        }))
    }

    fn port_set_allocate(&self) -> Result<PortName, IpcError> {
        let set = PortSet::new().map_err(errno::ipc_error)?;
        Ok(self.insert(Entry::PortSet(set)))
    }

    /// A member is a port whose receive right this process holds, or a
    /// direct link's name ([`OsProcess::link_name`]): see `crate::port_set`.
    fn port_set_insert(&self, set: PortName, member: PortName) -> Result<(), IpcError> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let joining = match names.get(member)? {
            Entry::Port {
                receive: Some(q), ..
            } => Ok(Arc::clone(q)),
            &Entry::Link { pid } => Err(pid),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        let Entry::PortSet(set) = names.get(set)? else {
            return Err(IpcError::WrongRight {
                needed: RightKind::PortSet,
            });
        };
        match joining {
            Ok(q) => set.insert(member, &q).map_err(errno::ipc_error),
            Err(pid) => {
                // A closed link is a name for nothing to come.
                let rx = self.link_rx(pid).ok_or(IpcError::DeadName)?;
                port_set::leave_sets(&names, member);
                set.insert_link(member, pid, &rx).map_err(errno::ipc_error)
            }
        }
    }

    fn port_set_remove(&self, member: PortName) -> Result<(), IpcError> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let left = match names.get(member)? {
            Entry::Port {
                receive: Some(q), ..
            } => port_set::leave_set(q),
            Entry::Link { .. } => port_set::leave_sets(&names, member),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        if left {
            Ok(())
        } else {
            Err(IpcError::InvalidValue)
        }
    }

    fn make_right(&self, name: PortName, disposition: Disposition) -> Result<PortName, IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let send = match names.get_mut(name)? {
            Entry::Port {
                receive: Some(_),
                send,
                send_refs,
            } => match disposition {
                Disposition::MakeSend => {
                    let refs = send_refs.checked_add(1).ok_or(IpcError::InvalidValue)?;
                    if refs == 1 {
                        // Our send references stand on a write end of the
                        // port's senders pipe (`crate::senders`).
                        let send = Arc::clone(send);
                        if send.senders.hold_local().map_err(errno::ipc_error)? {
                            names.senders_grew(&send);
                        }
                    }
                    let Ok(Entry::Port { send_refs, .. }) = names.get_mut(name) else {
                        unreachable!("looked up above, under the lock");
                    };
                    *send_refs = refs;
                    return Ok(name);
                }
                Disposition::MakeSendOnce => Arc::clone(send),
                _ => return Err(IpcError::InvalidValue),
            },
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        Ok(names.insert(Entry::SendOnce { send }))
    }

    fn deallocate(&self, name: PortName) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let remove = match names.get_mut(name)? {
            Entry::Port { .. } => names.add_send_refs(name, -1)?,
            Entry::Dead { refs } => {
                *refs -= 1;
                *refs == 0
            }
            _ => true,
        };
        if remove {
            if matches!(names.get(name), Ok(Entry::Link { .. })) {
                port_set::leave_sets(&names, name);
            }
            let entry = names.remove(name)?;
            drop(names);
            self.drop_entry(entry);
        }
        Ok(())
    }

    fn destroy(&self, name: PortName) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(names.get(name), Ok(Entry::Link { .. })) {
            port_set::leave_sets(&names, name);
        }
        let entry = names.remove(name)?;
        drop(names);
        self.drop_entry(entry);
        Ok(())
    }

    fn mod_refs(&self, name: PortName, right: RightKind, delta: i32) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        if let (
            RightKind::Receive,
            Ok(Entry::Port {
                receive: Some(q), ..
            }),
        ) = (right, names.get(name))
        {
            // It may move to its port-destroyed notify port below.
            names.keep_no_senders_for_port_destroyed(q);
        }
        let remove = match (right, names.get_mut(name)?) {
            (RightKind::Send, Entry::Port { .. }) => names.add_send_refs(name, delta)?,
            (
                RightKind::Receive,
                Entry::Port {
                    receive,
                    send,
                    send_refs,
                },
            ) if receive.is_some() => {
                if delta != -1 {
                    return Err(IpcError::InvalidValue);
                }
                if *send_refs > 0 {
                    // A port-destroyed request keeps the port alive
                    // elsewhere: our send references stay send rights.
                    let (q, send) = (receive.take().expect("matched"), Arc::clone(send));
                    if self.move_if_port_destroyed(&q, &send) {
                        // Its requests went with it (`crate::travel`).
                        names.receive_right_left(&q);
                        return Ok(());
                    }
                    *receive = Some(q);
                    // Our own send references to the port we destroyed become a dead name.
                    let refs = *send_refs;
                    let old = std::mem::replace(names.get_mut(name)?, Entry::Dead { refs });
                    drop(names);
                    self.drop_entry(old);
                    return Ok(());
                }
                true
            }
            (RightKind::DeadName, Entry::Dead { refs }) => {
                let new = i64::from(*refs) + i64::from(delta);
                *refs = u32::try_from(new).map_err(|_| IpcError::InvalidValue)?;
                *refs == 0
            }
            (RightKind::SendOnce, Entry::SendOnce { .. } | Entry::Reply { .. }) => {
                if delta != -1 {
                    return Err(IpcError::InvalidValue);
                }
                true
            }
            (needed, _) => return Err(IpcError::WrongRight { needed }),
        };
        if remove {
            let entry = names.remove(name)?;
            drop(names);
            self.drop_entry(entry);
        }
        Ok(())
    }

    fn rights(&self, name: PortName) -> Result<RightSet, IpcError> {
        Ok(rights_of(
            self.names
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(name)?,
        ))
    }

    fn port_status(&self, name: PortName) -> Result<PortStatus, IpcError> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let (q, send_rights) = match names.get(name)? {
            Entry::Port {
                receive: Some(q),
                send_refs,
                ..
            } => (Arc::clone(q), *send_refs),
            Entry::Mailbox { queue, .. } => (Arc::clone(queue), 0),
            Entry::Fifo(_) => return Err(IpcError::Unsupported(Unsupported::FifoStatus)),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        drop(names);
        let queue_len = q.len();
        Ok(PortStatus {
            queue_len,
            capacity: q.capacity(),
            send_rights,
            send_once_rights: 0,
            seqno: q.seq.load(std::sync::atomic::Ordering::Relaxed),
            blocked_senders: 0,
            blocked_receivers: 0,
            messages_sent: 0,
            messages_dropped: q.dropped.load(std::sync::atomic::Ordering::Relaxed),
            max_queue_len: queue_len,
        })
    }

    /// A bounded port's capacity moves in its capacity page, which every
    /// holder's sends keep to (`crate::capacity`): up to the `mq_maxmsg` its
    /// queue was made with (`Limit::MqMsgMax` beyond), queued messages kept
    /// when it shrinks, waiting senders woken when it grows. Another model
    /// (zero, unbounded, to or from) and mailboxes stay
    /// `Unsupported(CapacityChange)`: the model is in the queue's attributes
    /// and a mailbox's senders open it by name, with no page.
    fn set_capacity(&self, name: PortName, capacity: Capacity) -> Result<(), IpcError> {
        capacity.validate()?;
        let q = match self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)?
        {
            Entry::Port {
                receive: Some(q), ..
            } => Arc::clone(q),
            // Who may destroy it may change it (`mailbox_destroy`'s rule):
            // its creator, or whoever has full access; its capacity page is
            // shared by every mkipc opener through the broker
            // (`crate::capacity`).
            Entry::Mailbox {
                queue,
                access,
                owned,
                ..
            } => {
                if !*owned && *access != Access::ALL {
                    return Err(IpcError::NoPermission);
                }
                Arc::clone(queue)
            }
            Entry::Fifo(_) => return Err(IpcError::Unsupported(Unsupported::CapacityChange)),
            Entry::Dead { .. } => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        match (capacity, &q.cap) {
            (Capacity::Bounded(n), Some(page)) => {
                if n > q.maxmsg {
                    return Err(IpcError::Limit(Limit::MqMsgMax { max: q.maxmsg }));
                }
                let in_queue = sys::mq_getattr(q.fd()).map_err(errno::ipc_error)?.curmsgs;
                page.set_capacity(n, in_queue);
                tracing::debug!(%name, capacity = n, "capacity changed");
                Ok(())
            }
            _ if capacity == q.capacity() => Ok(()),
            _ => Err(IpcError::Unsupported(Unsupported::CapacityChange)),
        }
    }

    /// See `crate::notify` (DESIGN.md, "Notifications"): dead-name,
    /// send-possible and no-senders from the OS (the liveness pipe,
    /// `POLLOUT`, the senders pipes); port-destroyed puts the request on the
    /// receive right (`crate::port_destroyed`).
    fn request_notification(
        &self,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let (to, to_send) = match names.get(notify)? {
            Entry::Port {
                receive: Some(q),
                send,
                ..
            } => (Arc::clone(q), Arc::clone(send)),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        let post = |id| {
            notify::post(&to, id, name);
            Ok(())
        };
        let want = match kind {
            NotifyKind::PortDestroyed => {
                // On the receive right itself, as in the kernel
                // (`crate::port_destroyed`).
                let Entry::Port {
                    receive: Some(q), ..
                } = names.get(name)?
                else {
                    return Err(IpcError::WrongRight {
                        needed: RightKind::Receive,
                    });
                };
                if Arc::ptr_eq(q, &to) {
                    return Err(IpcError::InvalidValue);
                }
                q.set_port_destroyed(crate::travel::PortDestroyed::Here {
                    receive: Arc::downgrade(&to),
                    send: Arc::downgrade(&to_send),
                });
                return Ok(());
            }
            NotifyKind::DeadName => Want::DeadName,
            NotifyKind::SendPossible => Want::SendPossible,
            NotifyKind::NoSenders => Want::NoSenders,
        };
        let target = match (want, names.get(name)?) {
            (
                Want::NoSenders,
                Entry::Port {
                    receive: Some(q),
                    send_refs,
                    ..
                },
            ) => {
                // The OS counts the senders (`crate::senders`): our own
                // references, then every other holder's write end.
                if *send_refs == 0 && q.senders.none_left() {
                    return post(Notification::NO_SENDERS_ID);
                }
                Arc::clone(q)
            }
            (Want::NoSenders, _) => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
            (_, Entry::Dead { .. }) => return post(Notification::DEAD_NAME_ID),
            (_, Entry::Port { send, .. } | Entry::SendOnce { send }) => Arc::clone(send),
            (Want::SendPossible, Entry::Mailbox { queue, access, .. }) if access.send => {
                Arc::clone(queue)
            }
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        if want != Want::NoSenders {
            if target.receiver_gone() {
                return post(Notification::DEAD_NAME_ID);
            }
            if want == Want::SendPossible
                && (target.model == crate::queue::Model::Unbounded || notify::has_room(&target))
            {
                return post(Notification::SEND_POSSIBLE_ID);
            }
            if want == Want::DeadName && target.live_watch.is_none() {
                // A right from a foreign program, or a mailbox: no liveness pipe.
                return Err(IpcError::Unsupported(Unsupported::Notifications));
            }
        }
        let notifier = names.notifier().map_err(errno::ipc_error)?;
        notifier
            .watch(name, want, target, NotifyTo::here(&to, &to_send))
            .map_err(errno::ipc_error)
    }

    fn send_with(&self, dest: PortName, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        let target = match self.resolve_target(dest) {
            Ok(t) => t,
            Err(k) => return Err(k.with(msg)),
        };
        // Rights go through queues (the broker), not to a reply right or a FIFO.
        if !msg.rights().is_empty() && !matches!(target, Target::Queue { .. }) {
            return Err(SendErrorKind::Unsupported(Unsupported::RightsHere).with(msg));
        }
        if msg.reply().is_some() {
            return Err(SendErrorKind::Unsupported(Unsupported::ReplyHere).with(msg));
        }
        match target {
            Target::Queue { queue, once } => {
                let sent = self.send_queue(&queue, msg, on_full, 0, 0)?;
                if once {
                    let _ = self
                        .names
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(dest);
                }
                Ok(sent)
            }
            Target::Reply { pid, token } => {
                let frame = wire::encode(&msg, self.pid, wire::FLAG_IS_REPLY, token, &[]);
                match self.send_to_reply_queue(pid, &frame) {
                    Ok(()) => {
                        let _ = self
                            .names
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .remove(dest);
                        Ok(Sent::Delivered)
                    }
                    Err(libc::ENOENT) => Err(SendErrorKind::DestinationDead.with(msg)),
                    Err(e) => Err(errno::send_error(
                        e,
                        msg,
                        crate::queue::msgsize_limit() - wire::HEADER_LEN,
                    )),
                }
            }
            Target::Fifo(f) => {
                if msg.body.len() > FIFO_BODY_LIMIT {
                    return Err(SendErrorKind::TooLarge {
                        limit: FIFO_BODY_LIMIT,
                    }
                    .with(msg));
                }
                let tx = f.tx.as_ref().expect("resolve_target checked the write end");
                let frame = wire::encode(&msg, self.pid, 0, 0, &[]);
                let (wait, deadline) = pipe_wait(on_full);
                match tx.send(&frame, &[], wait, deadline) {
                    Ok(()) => Ok(Sent::Delivered),
                    Err(e) => pipe_send_failed(e, on_full, msg, FIFO_BODY_LIMIT),
                }
            }
        }
    }

    fn receive_with(&self, source: PortName, wait: Wait) -> Result<Message, ReceiveError> {
        match self.resolve_source(source)? {
            Source::Queue(q) => self.receive_queue(source, &q, mq_wait(wait)),
            Source::Fifo(f) => self.receive_fifo(source, f.rx.as_ref().expect("checked"), wait),
            Source::Set(set) => self.receive_set(&set, wait),
            Source::Link(pid, rx) => self.receive_link(source, pid, &rx, wait),
        }
    }

    /// The oldest message first among ports (their frames carry the send
    /// time); a message whose age is unknown (a mailbox's, a FIFO's) is
    /// taken first, in list order (DESIGN.md, "`select`, port sets").
    fn select_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.select_sources(sources, wait, false)
    }

    fn select_first_with(&self, sources: &[PortName], wait: Wait) -> Result<Message, ReceiveError> {
        self.select_sources(sources, wait, true)
    }

    fn peek(&self, source: PortName) -> Result<Message, ReceiveError> {
        let q = match self.resolve_source(source)? {
            Source::Queue(q) => q,
            Source::Fifo(_) | Source::Set(_) | Source::Link(..) => {
                return Err(ReceiveError::Unsupported(Unsupported::Peek))
            }
        };
        if self.hold_head(source, &q)?.is_none() {
            return Err(ReceiveError::Empty);
        }
        let held = q.held.lock().unwrap_or_else(|p| p.into_inner());
        let head = held.front().ok_or(ReceiveError::Empty)?;
        // A copy: the reply right stays with the held message.
        let mut copy = Message::new(head.msg.id, head.msg.body.clone());
        if let Some(t) = head.msg.trailer() {
            copy.set_trailer(Some(Trailer {
                received_on: source,
                seqno: q.seq.load(std::sync::atomic::Ordering::Relaxed),
                ..t
            }));
            if !head.msg.sender_verified() {
                copy.mark_sender_claimed();
            }
        }
        Ok(copy)
    }

    fn receive_matching_with(
        &self,
        source: PortName,
        filter: &Filter,
        wait: Wait,
    ) -> Result<Message, ReceiveError> {
        let q = match self.resolve_source(source)? {
            Source::Queue(q) => q,
            Source::Fifo(_) | Source::Set(_) | Source::Link(..) => {
                return Err(ReceiveError::Unsupported(Unsupported::SelectiveReceive))
            }
        };
        self.receive_queue_matching(source, &q, filter, wait)
    }

    fn close(&self, name: PortName) -> Result<(), IpcError> {
        let names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        match names.get(name)? {
            Entry::Port {
                receive: Some(q), ..
            } => {
                if q.signal_closed() {
                    notify::wake_closed(q);
                }
                Ok(())
            }
            // A named queue has writers this process cannot reach (any
            // process of its mode may open it): they cannot be refused.
            Entry::Mailbox { .. } | Entry::Fifo(_) => {
                Err(IpcError::Unsupported(Unsupported::Close))
            }
            _ => Err(IpcError::WrongRight {
                needed: RightKind::Receive,
            }),
        }
    }

    fn call_with(&self, dest: PortName, msg: Message, wait: Wait) -> Result<Message, CallError> {
        let queue = match self.resolve_target(dest) {
            Ok(Target::Queue { queue, .. }) => queue,
            Ok(_) => {
                return Err(SendErrorKind::Unsupported(Unsupported::CallTarget)
                    .with(msg)
                    .into())
            }
            Err(k) => return Err(k.with(msg).into()),
        };
        if !msg.rights().is_empty() {
            return Err(SendErrorKind::Unsupported(Unsupported::RightsHere)
                .with(msg)
                .into());
        }
        self.reply_queue().map_err(ReceiveError::from)?;
        let token = self.new_token();
        self.expect_token(token);
        let on_full = match wait {
            Wait::NoWait => OnFull::Fail,
            Wait::Forever => OnFull::Block,
            Wait::For(d) => OnFull::Timeout(d),
        };
        let deadline = deadline_of(wait);
        if let Err(e) = self.send_queue(&queue, msg, on_full, wire::FLAG_REPLY_WANTED, token) {
            let _ = self.wait_token(token, None, true, None, true);
            return Err(e.into());
        }
        // A server that dies (its port with it) before replying destroys the
        // reply right: the kernel's send-once notification, here NoReply.
        let (h, body) =
            match self.wait_token(token, deadline, wait == Wait::NoWait, Some(&queue), true) {
                Err(ReceiveError::SourceDead) => return Err(CallError::NoReply),
                other => other?,
            };
        if h.sender == 0 && h.id == Notification::SEND_ONCE_ID {
            return Err(CallError::NoReply);
        }
        let mut reply = Message::new(h.id, body);
        reply.set_trailer(Some(Trailer {
            sender: Pid(h.sender),
            received_on: PortName::NULL,
            seqno: 0,
        }));
        // Only this user's processes can write the reply queue, but the pid
        // in the frame is still what the replier wrote.
        reply.mark_sender_claimed();
        Ok(reply)
    }

    fn send_to_with(&self, pid: Pid, msg: Message, on_full: OnFull) -> Result<Sent, SendError> {
        self.direct_send(pid, msg, on_full)
    }

    fn receive_from_with(&self, pid: Pid, wait: Wait) -> Result<Message, ReceiveError> {
        self.direct_receive(pid, wait)
    }

    fn receive_from_any_with(&self, wait: Wait) -> Result<Message, ReceiveError> {
        self.direct_receive_any(wait)
    }

    /// The link from `pid` into this process, where its kind can be sized:
    /// a pipe link's pipe holds `Bounded(n)` pages (`F_SETPIPE_SZ`, rounded
    /// up to a power of two), room for at least `n` frames of up to one page
    /// (4096 bytes, a 4068-byte body): a sender finds the link full once it
    /// holds that much. What the pipe holds when it shrinks stays (read into
    /// this end's buffer first), as the kernel keeps queued messages.
    /// `Unsupported(LinkCapacity)`: `Zero` and `Unbounded` (a pipe always
    /// buffers, and never without bound), shared-memory and socket links.
    /// Above `/proc/sys/fs/pipe-max-size` (1 MiB) without
    /// `CAP_SYS_RESOURCE`: `NoPermission` (Linux's `EPERM`).
    fn set_link_capacity(&self, pid: Pid, capacity: Capacity) -> Result<(), IpcError> {
        capacity.validate()?;
        let rx = self.link_rx(pid.0).ok_or(IpcError::NotFound)?;
        let Capacity::Bounded(n) = capacity else {
            return Err(IpcError::Unsupported(Unsupported::LinkCapacity));
        };
        // Linux's largest pipe is 2^31 bytes (`fcntl` takes an `unsigned int`).
        let bytes = n
            .checked_mul(PIPE_PAGE)
            .filter(|&b| b <= 1 << 31)
            .ok_or(IpcError::InvalidValue)?;
        match rx.set_pipe_size(bytes) {
            Ok(got) => {
                tracing::debug!(from = pid.0, pages = n, bytes = got, "link capacity set");
                Ok(())
            }
            Err(libc::ENOTSUP) => Err(IpcError::Unsupported(Unsupported::LinkCapacity)),
            Err(libc::EPERM) => Err(IpcError::NoPermission),
            Err(libc::EINVAL) => Err(IpcError::InvalidValue),
            Err(e) => Err(errno::ipc_error(e)),
        }
    }

    fn mailbox_create(&self, name: &str, config: MailboxConfig) -> Result<PortName, IpcError> {
        validate_name(name)?;
        if !config.grants.is_empty() {
            // The access list lives in the broker (`crate::grants`).
            return self.create_granted_mailbox(name, &config);
        }
        self.create_mailbox_queue(
            name,
            config.capacity,
            config.default_access,
            config.owner == Owner::System,
        )
    }

    fn mailbox_open(&self, name: &str) -> Result<PortName, IpcError> {
        validate_name(name)?;
        let posix = self.mailbox_posix_name(name);
        if let Some(granted) = self.open_granted(&posix)? {
            return Ok(granted);
        }
        let (mut queue, access) = open_with_best_access(&posix)?;
        queue.cap = self.mailbox_page(&queue, &posix);
        Ok(self.insert(Entry::Mailbox {
            queue: Arc::new(queue),
            access,
            owned: false,
            system: false,
        }))
    }

    /// Through the broker for a mailbox created with grants
    /// (`crate::grants`); `Unsupported(Grants)` for one created without.
    fn mailbox_grant(&self, mailbox: PortName, pid: Pid, access: Access) -> Result<(), IpcError> {
        self.grant(mailbox, pid, access)
    }

    fn mailbox_destroy(&self, mailbox: PortName) -> Result<(), IpcError> {
        let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
        let (posix, queue) = match names.get(mailbox)? {
            Entry::Mailbox {
                queue,
                access,
                owned,
                ..
            } => {
                if !*owned && *access != Access::ALL {
                    return Err(IpcError::NoPermission);
                }
                (queue.name.clone(), Arc::clone(queue))
            }
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Mailbox,
                })
            }
        };
        // Unlink first, with the name table still locked: a destroy the OS
        // refuses (`EPERM` for a queue another user made, `ENOENT` when it is
        // gone already) changes nothing, and the name stays usable.
        sys::mq_unlink(&posix).map_err(errno::ipc_error)?;
        names.remove(mailbox)?;
        drop(names);
        // `mq_unlink` wakes nobody: gone frames do (`queue::GONE_ID`).
        queue.wake_gone();
        self.forget_granted(&queue);
        self.forget_mailbox_page(&queue);
        registry::forget(&self.run, Kind::Queue, &posix);
        Ok(())
    }

    /// The name service is kept by the run's broker (`crate::broker`):
    /// a copy of the send right's descriptors under the name, copied again
    /// for each look-up; it ends with the run.
    fn register(&self, service: &str, right: PortName) -> Result<(), IpcError> {
        validate_name(service)?;
        let disposition = match self
            .names
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(right)?
        {
            Entry::Port {
                receive: Some(_), ..
            } => Disposition::MakeSend,
            Entry::Port { send_refs, .. } if *send_refs > 0 => Disposition::CopySend,
            Entry::Dead { .. } => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        let carrier = Message::new(0, Body::new()).with_right(right, disposition);
        let (descs, fds) = self.prepare_rights(&carrier).map_err(|(_, e)| e)?;
        let mut desc = [0u8; 4];
        descs[0].write(&mut desc);
        match self.broker_client.register(&self.run, service, desc, &fds) {
            Ok(()) => {
                // The broker holds a copy now (a sender, for no-senders).
                self.commit_rights(&carrier);
                Ok(())
            }
            Err(e) => {
                self.rights_not_sent(&carrier);
                Err(if e == libc::EEXIST {
                    IpcError::AlreadyExists
                } else {
                    errno::ipc_error(e)
                })
            }
        }
    }

    fn unregister(&self, service: &str) -> Result<(), IpcError> {
        validate_name(service)?;
        match self.broker_client.unregister(&self.run, service) {
            Ok(()) => Ok(()),
            Err(libc::ENOENT) => Err(IpcError::NotFound),
            Err(libc::EPERM) => Err(IpcError::NoPermission),
            Err(e) => Err(errno::ipc_error(e)),
        }
    }

    fn look_up(&self, service: &str) -> Result<PortName, IpcError> {
        validate_name(service)?;
        let (desc, fds) = match self.broker_client.look_up(&self.run, service) {
            Ok(x) => x,
            Err(libc::ENOENT) => return Err(IpcError::NotFound),
            Err(e) => return Err(errno::ipc_error(e)),
        };
        let desc = wire::RightDesc::parse(&desc).map_err(|_| IpcError::InvalidValue)?;
        if fds.len() != desc.descriptors() {
            return Err(IpcError::InvalidValue);
        }
        let mut carrier = Message::new(0, Body::new());
        self.install_rights(&mut carrier, &[desc], fds);
        match carrier.rights().first() {
            Some(r) if r.name != PortName::DEAD => Ok(r.name),
            _ => Err(IpcError::NotFound),
        }
    }
}
