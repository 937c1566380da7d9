//! Notification requests: dead-name, no-senders and port-destroyed.
//!
//! A request stores a send-once right to the requester's notify port on the
//! port it is about; the kernel uses that right to deliver the notification
//! (so notifications bypass queue limits and can be sent exactly once).

use super::space::Obj;
use super::{KRight, Kernel, PortId, State};
use crate::error::IpcError;
use crate::message::{Notification, NotifyKind};
use crate::name::{Pid, PortName, RightKind};

impl Kernel {
    /// How many dead-name requests the kernel holds (introspection for
    /// tests: a released name or an exited task must leave none behind).
    #[doc(hidden)]
    pub fn dead_name_request_count(&self) -> usize {
        let st = self.lock();
        st.ports
            .iter()
            .map(|(_, p)| p.dead_name_requests.len())
            .sum()
    }

    /// Registers a notification request (see [`Ipc::request_notification`](crate::Ipc::request_notification)).
    pub fn request_notification(
        &self,
        pid: Pid,
        name: PortName,
        kind: NotifyKind,
        notify: PortName,
    ) -> Result<(), IpcError> {
        let mut st = self.lock();
        let notify_port = st.receive_right(pid, notify)?;
        // The port the request is about (`None`: the name is already dead).
        let about = match (kind, st.resolve(pid, name)?) {
            (NotifyKind::DeadName, Obj::Port { port, .. } | Obj::SendOnce(port)) => Some(port),
            (NotifyKind::DeadName, Obj::Dead(_)) => None,
            (NotifyKind::DeadName, _) => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
            (
                _,
                Obj::Port {
                    port,
                    receive: true,
                    ..
                },
            ) => Some(port),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Receive,
                })
            }
        };
        if kind == NotifyKind::PortDestroyed && about == Some(notify_port) {
            return Err(IpcError::InvalidValue);
        }
        // The request holds a send-once right made from the notify port's receive right.
        st.ports
            .get_mut(notify_port)
            .expect("live")
            .send_once_rights += 1;
        let right = KRight::SendOnce(notify_port);
        let replaced = match (kind, about) {
            (NotifyKind::DeadName, None) => {
                st.send_name_notification(right, Notification::DEAD_NAME_ID, name, Some(pid));
                None
            }
            (NotifyKind::DeadName, Some(port)) => st
                .ports
                .get_mut(port)
                .expect("live")
                .dead_name_requests
                .insert((pid, super::BySlot(name)), right),
            (NotifyKind::NoSenders, Some(port)) => {
                let p = st.ports.get_mut(port).expect("live");
                let old = p.no_senders_request.replace(right);
                if p.send_rights == 0 {
                    let r = p.no_senders_request.take().expect("just set");
                    st.send_name_notification(r, Notification::NO_SENDERS_ID, name, Some(pid));
                }
                old
            }
            (NotifyKind::PortDestroyed, Some(port)) => st
                .ports
                .get_mut(port)
                .expect("live")
                .port_destroyed_request
                .replace(right),
            (_, None) => unreachable!("only dead-name requests accept a dead name"),
        };
        if let Some(old) = replaced {
            st.graveyard.push(old);
        }
        st.reap();
        Ok(())
    }
}

impl State {
    /// Replaces what `pid`'s (valid) `name` denotes, as [`Space::set`](super::space::Space::set)
    /// does, and cancels the name's dead-name request when the name stops
    /// denoting a right to the port the request is about (it is released,
    /// or its last right moved out). Every change to a name that may hold a
    /// port right goes through here.
    pub(crate) fn set_name(&mut self, pid: Pid, name: PortName, obj: Option<Obj>) {
        let space = &mut self.task_mut(pid).expect("live task").space;
        let old = space.get(name).ok();
        space.set(name, obj);
        let about = match old {
            Some(Obj::Port { port, .. } | Obj::SendOnce(port)) => port,
            _ => return,
        };
        let still =
            matches!(obj, Some(Obj::Port { port, .. } | Obj::SendOnce(port)) if port == about);
        if !still {
            self.cancel_dead_name_request(pid, name, about);
        }
    }

    /// Cancels `pid`'s dead-name request on `name` for `port`, if any. As
    /// the name is gone, nothing is sent: the request's send-once right
    /// vanishes silently (see DESIGN.md, Notifications).
    pub(crate) fn cancel_dead_name_request(&mut self, pid: Pid, name: PortName, port: PortId) {
        let Some(right) = self
            .ports
            .get_mut(port)
            .and_then(|p| p.dead_name_requests.remove(&(pid, super::BySlot(name))))
        else {
            return;
        };
        self.drop_request_right(right);
    }

    /// A request's send-once right that will never be used: it vanishes
    /// without a send-once notification (the requester's own act ended it).
    pub(crate) fn drop_request_right(&mut self, right: KRight) {
        if let KRight::SendOnce(notify) = right {
            if let Some(n) = self.ports.get_mut(notify) {
                n.send_once_rights = n.send_once_rights.saturating_sub(1);
            }
        }
    }
}
