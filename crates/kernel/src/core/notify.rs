//! Notification requests: dead-name, no-senders and port-destroyed.
//!
//! A request stores a send-once right to the requester's notify port on the
//! port it is about; the kernel uses that right to deliver the notification
//! (so notifications bypass queue limits and can be sent exactly once).

use super::space::Obj;
use super::{KRight, Kernel};
use crate::error::IpcError;
use crate::message::{Notification, NotifyKind};
use crate::name::{Pid, PortName, RightKind};

impl Kernel {
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
                st.send_name_notification(right, Notification::DEAD_NAME_ID, name);
                None
            }
            (NotifyKind::DeadName, Some(port)) => {
                let p = st.ports.get_mut(port).expect("live");
                let old = p
                    .dead_name_requests
                    .iter()
                    .position(|(t, n, _)| *t == pid && *n == name);
                let old = old.map(|i| p.dead_name_requests.remove(i).2);
                p.dead_name_requests.push((pid, name, right));
                old
            }
            (NotifyKind::NoSenders, Some(port)) => {
                let p = st.ports.get_mut(port).expect("live");
                let old = p.no_senders_request.replace(right);
                if p.send_rights == 0 {
                    let r = p.no_senders_request.take().expect("just set");
                    st.send_name_notification(r, Notification::NO_SENDERS_ID, name);
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
