//! The name service (Mach's bootstrap server): service names bound to send rights.

use super::space::Obj;
use super::{KRight, Kernel};
use crate::error::IpcError;
use crate::name::{Pid, PortName, RightKind};
use crate::name_rules::validate_name;
use crate::Disposition;

impl Kernel {
    /// Registers a send right under a service name.
    pub fn register(&self, pid: Pid, service: &str, right: PortName) -> Result<(), IpcError> {
        validate_name(service)?;
        let mut st = self.lock();
        let port = match st.resolve(pid, right)? {
            Obj::Port { port, .. } => port,
            Obj::Dead(_) => return Err(IpcError::DeadName),
            _ => {
                return Err(IpcError::WrongRight {
                    needed: RightKind::Send,
                })
            }
        };
        if let Some((_, KRight::Send(existing))) = st.services.get(service) {
            if st.ports.contains(*existing) {
                return Err(IpcError::AlreadyExists);
            }
        }
        st.add_send(port, 1);
        if let Some((_, old)) = st
            .services
            .make_mut()
            .insert(service.to_owned(), (pid, KRight::Send(port)))
        {
            st.graveyard.push(old);
        }
        st.reap();
        Ok(())
    }

    /// Removes a service name this task registered.
    pub fn unregister(&self, pid: Pid, service: &str) -> Result<(), IpcError> {
        validate_name(service)?;
        let mut st = self.lock();
        st.live(pid)?;
        match st.services.get(service) {
            None => return Err(IpcError::NotFound),
            Some((owner, _)) if *owner != pid => return Err(IpcError::NoPermission),
            Some(_) => {}
        }
        let (_, right) = st.services.make_mut().remove(service).expect("present");
        st.graveyard.push(right);
        st.reap();
        Ok(())
    }

    /// Looks a service up; returns a new send right to it in the caller's space.
    pub fn look_up(&self, pid: Pid, service: &str) -> Result<PortName, IpcError> {
        validate_name(service)?;
        let mut st = self.lock();
        st.live(pid)?;
        let Some(&(_, KRight::Send(port))) = st.services.get(service) else {
            return Err(IpcError::NotFound);
        };
        if !st.ports.contains(port) {
            st.services.make_mut().remove(service);
            return Err(IpcError::NotFound);
        }
        st.add_send(port, 1);
        let k = super::KMessage {
            id: 0,
            body: Default::default(),
            carried: super::Carried::boxed(
                smallvec::smallvec![(KRight::Send(port), Disposition::CopySend)],
                None,
                None,
            ),
            sender: Pid::KERNEL,
            stamp: std::num::NonZeroU64::MIN,
        };
        let m = st.copy_out(pid, k, PortName::NULL, 0);
        st.reap();
        Ok(m.rights()[0].name)
    }
}
