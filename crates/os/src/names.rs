//! One process's name space: what each [`PortName`] stands for in it.
//!
//! As in the kernel, a name is a slot index plus a generation, and means
//! nothing outside the process. Behind each name sits a descriptor (a queue, a
//! FIFO end) or a reply token: the descriptor *is* the right, and passing it to
//! another process with `SCM_RIGHTS` is passing the right.

use std::sync::Arc;

use mkipc_kernel::name::{Access, RightKind, RightSet};
use mkipc_kernel::{IpcError, PortName};

use crate::fifo::Fifo;
use crate::notify::Notifier;
use crate::queue::Queue;

/// What a name denotes.
pub(crate) enum Entry {
    /// A port: the receive right (read-write descriptor) if held, a write-only
    /// descriptor for sends, and the send references under this name.
    Port {
        receive: Option<Arc<Queue>>,
        send: Arc<Queue>,
        send_refs: u32,
    },
    /// A send-once right to a port.
    SendOnce { send: Arc<Queue> },
    /// The reply right of a received call: one reply to `pid`'s reply queue.
    Reply { pid: u32, token: u32 },
    /// A mailbox opened with some access; `owned` if this process created it
    /// with [`Owner::Creator`](mkipc_kernel::ipc::Owner::Creator).
    Mailbox {
        queue: Arc<Queue>,
        access: Access,
        owned: bool,
        system: bool,
    },
    /// A FIFO end.
    Fifo(Arc<Fifo>),
    /// A port set of this process (`crate::port_set`).
    PortSet(Arc<crate::port_set::PortSet>),
    /// Receiving from the direct link with a process, as a name `select`
    /// takes ([`OsProcess::link_name`](crate::OsProcess::link_name)).
    Link { pid: u32 },
    /// Send references whose port this process destroyed (only the process
    /// that held the receive right can know the port died).
    Dead { refs: u32 },
}

struct Slot {
    generation: u32,
    entry: Option<Entry>,
}

/// The table of names.
#[derive(Default)]
pub(crate) struct Names {
    slots: Vec<Slot>,
    free: Vec<u32>,
    /// The notification requests, once there were any: a released name's
    /// requests lapse ([`Names::remove`]).
    pub(crate) notifier: Option<Arc<Notifier>>,
}

impl Names {
    /// Installs an entry under a fresh name.
    pub(crate) fn insert(&mut self, entry: Entry) -> PortName {
        if self.slots.is_empty() {
            // Slot 0 would make PortName::NULL reachable.
            self.slots.push(Slot {
                generation: 0,
                entry: None,
            });
        }
        if let Some(i) = self.free.pop() {
            let slot = &mut self.slots[i as usize];
            slot.generation = slot.generation.wrapping_add(1).max(1);
            slot.entry = Some(entry);
            PortName::from_parts(i, slot.generation)
        } else {
            let i = self.slots.len() as u32;
            self.slots.push(Slot {
                generation: 1,
                entry: Some(entry),
            });
            PortName::from_parts(i, 1)
        }
    }

    /// The entry under `name`.
    pub(crate) fn get(&self, name: PortName) -> Result<&Entry, IpcError> {
        if name.is_dead() {
            return Err(IpcError::DeadName);
        }
        match self.slots.get(name.index() as usize) {
            Some(Slot {
                generation,
                entry: Some(e),
            }) if *generation == name.generation() => Ok(e),
            _ => Err(IpcError::InvalidName),
        }
    }

    /// The entry under `name`, mutably.
    pub(crate) fn get_mut(&mut self, name: PortName) -> Result<&mut Entry, IpcError> {
        if name.is_dead() {
            return Err(IpcError::DeadName);
        }
        match self.slots.get_mut(name.index() as usize) {
            Some(Slot {
                generation,
                entry: Some(e),
            }) if *generation == name.generation() => Ok(e),
            _ => Err(IpcError::InvalidName),
        }
    }

    /// Removes the entry under `name`.
    pub(crate) fn remove(&mut self, name: PortName) -> Result<Entry, IpcError> {
        if let Entry::Port {
            receive: Some(q), ..
        } = self.get(name)?
        {
            self.keep_no_senders_for_port_destroyed(q);
        }
        if let Some(n) = &self.notifier {
            n.cancel(name);
        }
        let slot = &mut self.slots[name.index() as usize];
        self.free.push(name.index());
        Ok(slot.entry.take().expect("checked above"))
    }

    /// The notifier, made on first use.
    pub(crate) fn notifier(&mut self) -> Result<Arc<Notifier>, crate::sys::Errno> {
        if self.notifier.is_none() {
            self.notifier = Some(Notifier::new()?);
        }
        Ok(Arc::clone(self.notifier.as_ref().expect("made above")))
    }

    /// The right under `name` is on its way out in a message
    /// ([`Notifier::hold`]).
    pub(crate) fn hold_requests(&self, name: PortName) {
        if let Some(n) = &self.notifier {
            n.hold(name);
        }
    }

    /// The send that carried `name`'s right ended ([`Notifier::release`]).
    pub(crate) fn release_requests(&self, name: PortName) {
        if let Some(n) = &self.notifier {
            n.release(name);
        }
    }

    /// The no-senders request on `q`'s port here, if any (`crate::travel`).
    pub(crate) fn no_senders_request(&self, q: &Queue) -> Option<crate::travel::NotifyTo> {
        self.notifier.as_ref()?.no_senders_request(q)
    }

    /// The receive right of `send`'s port left this process: its
    /// no-senders requests here go (the read ends and the request went with
    /// the right, `crate::travel`).
    pub(crate) fn receive_right_left(&self, send: &Queue) {
        send.senders.forget_watch();
        if let Some(n) = &self.notifier {
            n.lapse_no_senders(send);
        }
    }

    /// The port under `name` has no send reference left in this process:
    /// its write end of the senders pipe closes, and its no-senders
    /// requests are answered if no other process holds one either.
    pub(crate) fn last_send_right_gone(&self, name: PortName, send: &Queue) {
        send.senders.release_local();
        if let Some(n) = &self.notifier {
            n.no_senders(name);
        }
    }

    /// Adds `delta` to the send references of the port entry under `name`
    /// (`deallocate` and `mod_refs`); when none is left, its senders-pipe
    /// end closes ([`Names::last_send_right_gone`]). Whether the entry is to
    /// go: when it holds no receive right either. `Ok(false)` for an entry
    /// that is no port right.
    pub(crate) fn add_send_refs(&mut self, name: PortName, delta: i32) -> Result<bool, IpcError> {
        let Entry::Port {
            receive,
            send,
            send_refs,
        } = self.get_mut(name)?
        else {
            return Ok(false);
        };
        if *send_refs == 0 {
            return Err(IpcError::WrongRight {
                needed: RightKind::Send,
            });
        }
        let new = i64::from(*send_refs) + i64::from(delta);
        *send_refs = u32::try_from(new).map_err(|_| IpcError::InvalidValue)?;
        if *send_refs > 0 {
            return Ok(false);
        }
        let held = receive.is_some();
        let send = Arc::clone(send);
        self.last_send_right_gone(name, &send);
        Ok(!held)
    }

    /// A new generation of the senders pipe of `q`'s port: the no-senders
    /// requests about it watch it too.
    pub(crate) fn senders_grew(&self, q: &Queue) {
        if let Some(n) = &self.notifier {
            n.senders_grew(q);
        }
    }

    /// Visits every entry.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&Entry)) {
        self.slots
            .iter()
            .filter_map(|s| s.entry.as_ref())
            .for_each(&mut f);
    }

    /// A receive right that may move to its port-destroyed notify port
    /// (its name about to go, or its process): its no-senders request goes
    /// with it, so it is kept on the right before the notifier drops it.
    pub(crate) fn keep_no_senders_for_port_destroyed(&self, q: &Queue) {
        if q.has_port_destroyed() {
            if let Some(to) = self.no_senders_request(q) {
                q.keep_moving_no_senders(to);
            }
        }
    }

    /// Every entry, for shutdown.
    pub(crate) fn drain(&mut self) -> Vec<Entry> {
        for slot in &self.slots {
            if let Some(Entry::Port {
                receive: Some(q), ..
            }) = &slot.entry
            {
                self.keep_no_senders_for_port_destroyed(q);
            }
        }
        if let Some(n) = self.notifier.take() {
            n.stop();
        }
        self.free.clear();
        let out = self
            .slots
            .iter_mut()
            .filter_map(|s| s.entry.take())
            .collect();
        self.slots.clear();
        out
    }
}

/// The rights an entry gives, as [`Ipc::rights`](mkipc_kernel::Ipc::rights) reports them.
pub(crate) fn rights_of(entry: &Entry) -> RightSet {
    let mut r = RightSet::default();
    match entry {
        Entry::Port {
            receive, send_refs, ..
        } => {
            r.receive = receive.is_some();
            r.send = *send_refs;
        }
        Entry::SendOnce { .. } | Entry::Reply { .. } => r.send_once = true,
        Entry::Mailbox { access, .. } => r.mailbox = Some(*access),
        Entry::Fifo(f) => {
            r.mailbox = Some(Access {
                send: f.tx.is_some(),
                receive: f.rx.is_some(),
            });
        }
        Entry::Dead { refs } => r.dead = *refs,
        Entry::PortSet(_) => r.port_set = true,
        // Not a right: a way to name a link's receiving side.
        Entry::Link { .. } => {}
    }
    r
}
