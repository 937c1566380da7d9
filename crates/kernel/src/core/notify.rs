//! Notification requests: dead-name, no-senders and port-destroyed.
//!
//! A request stores a send-once right to the requester's notify port on the
//! port it is about; the kernel uses that right to deliver the notification
//! (so notifications bypass queue limits and can be sent exactly once).

use smallvec::SmallVec;

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
        let obj = st.resolve(pid, name)?;
        let right = KRight::SendOnce(notify_port);
        match kind {
            NotifyKind::DeadName => {
                let port = match obj {
                    Obj::Port { port, .. } | Obj::SendOnce(port) => port,
                    Obj::Dead(_) => {
                        st.ports
                            .get_mut(notify_port)
                            .expect("live")
                            .send_once_rights += 1;
                        st.send_kernel_message(
                            right,
                            Notification::DEAD_NAME_ID,
                            &name.to_raw().to_le_bytes(),
                            SmallVec::new(),
                        );
                        st.reap();
                        return Ok(());
                    }
                    _ => {
                        return Err(IpcError::WrongRight {
                            needed: RightKind::Send,
                        })
                    }
                };
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let p = st.ports.get_mut(port).expect("live");
                let old = p
                    .dead_name_requests
                    .iter()
                    .position(|(t, n, _)| *t == pid && *n == name);
                let old = old.map(|i| p.dead_name_requests.remove(i).2);
                p.dead_name_requests.push((pid, name, right));
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
            NotifyKind::NoSenders => {
                let Obj::Port {
                    port,
                    receive: true,
                    ..
                } = obj
                else {
                    return Err(IpcError::WrongRight {
                        needed: RightKind::Receive,
                    });
                };
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let p = st.ports.get_mut(port).expect("live");
                let old = p.no_senders_request.replace(right);
                if p.send_rights == 0 {
                    let r = p.no_senders_request.take().expect("just set");
                    st.send_kernel_message(
                        r,
                        Notification::NO_SENDERS_ID,
                        &name.to_raw().to_le_bytes(),
                        SmallVec::new(),
                    );
                }
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
            NotifyKind::PortDestroyed => {
                let Obj::Port {
                    port,
                    receive: true,
                    ..
                } = obj
                else {
                    return Err(IpcError::WrongRight {
                        needed: RightKind::Receive,
                    });
                };
                if port == notify_port {
                    return Err(IpcError::InvalidValue);
                }
                st.ports
                    .get_mut(notify_port)
                    .expect("live")
                    .send_once_rights += 1;
                let old = st
                    .ports
                    .get_mut(port)
                    .expect("live")
                    .port_destroyed_request
                    .replace(right);
                if let Some(old) = old {
                    st.graveyard.push(old);
                }
            }
        }
        st.reap();
        Ok(())
    }
}
