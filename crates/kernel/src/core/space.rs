//! A task's name space: the table that turns a [`PortName`] into a right.
//!
//! Each slot holds one entry: a port (receive right and/or send user
//! references, which Mach keeps under one name per port), a send-once right
//! (always its own name), a dead name, a port set, or a mailbox. A reverse
//! index from port to name makes a second send right to the same port merge
//! into the existing name, as in Mach.
//!
//! A task holds a handful of names (a simulated process often one port):
//! up to [`INDEX_FROM`] slots the reverse lookup scans the slots, and the
//! index (a `BTreeMap` node is about 150 bytes, more than the rest of such a
//! space) is built only when the space grows past that, then kept. Either
//! way a port has at most one name, so both give the same answer.
//!
//! Dead names appear lazily: when a port dies, the send rights other tasks
//! hold are not touched; the next lookup of such a name sees the port is gone
//! and turns the entry into a dead name. Nothing needs to know who held a
//! right to a port when it dies, which keeps port death O(queue length).

use std::collections::BTreeMap;

use super::{MailboxId, PortId, SetId, State};
use crate::error::IpcError;
use crate::name::PortName;

/// Mach's limit on user references per right.
pub(crate) const MAX_UREFS: u32 = 65_534;

/// What a name denotes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Obj {
    /// Rights to a port: its receive right and/or `send` user references.
    Port {
        port: PortId,
        receive: bool,
        send: u32,
    },
    /// One send-once right.
    SendOnce(PortId),
    /// A dead name with user references.
    Dead(u32),
    /// A port set this task owns.
    Set(SetId),
    /// A mailbox this task has opened.
    Mailbox(MailboxId),
}

#[derive(Clone, Debug)]
struct Entry {
    generation: u32,
    obj: Option<Obj>,
}

/// Slots a space may have before its reverse index is built (module docs).
pub(crate) const INDEX_FROM: usize = 16;

/// One task's names.
#[derive(Debug, Default)]
pub(crate) struct Space {
    entries: Vec<Entry>,
    free: Vec<u32>,
    /// Port to the index of its name: built once the space has more than
    /// [`INDEX_FROM`] slots (`indexed`); before, the slots are scanned.
    by_port: BTreeMap<PortId, u32>,
    indexed: bool,
    /// Counts the changes of a slot's generation or use (a name allocated,
    /// freed, given back): what [`Kernel::space_version`](crate::Kernel::space_version) shows.
    version: u64,
}

clone_fields!(Space {
    entries,
    free,
    by_port,
    indexed,
    version
});

impl Space {
    pub(crate) fn new() -> Space {
        // Slot 0 is never used, so no name has index 0 (NULL).
        // Room for slot 0 and one name: what most tasks hold.
        let mut entries = Vec::with_capacity(2);
        entries.push(Entry {
            generation: 0,
            obj: None,
        });
        Space {
            entries,
            free: Vec::new(),
            by_port: BTreeMap::new(),
            indexed: false,
            version: 0,
        }
    }

    fn name_of(&self, index: u32) -> PortName {
        PortName::from_parts(index, self.entries[index as usize].generation)
    }

    /// Looks a name up without normalising dead ports (see [`State::resolve`]).
    #[inline]
    pub(crate) fn get(&self, name: PortName) -> Result<Obj, IpcError> {
        let e = self
            .entries
            .get(name.index() as usize)
            .ok_or(IpcError::InvalidName)?;
        if name.index() == 0 || e.generation != name.generation() {
            return Err(IpcError::InvalidName);
        }
        e.obj.ok_or(IpcError::InvalidName)
    }

    /// Replaces what a (valid) name denotes; `None` frees the name.
    pub(crate) fn set(&mut self, name: PortName, obj: Option<Obj>) {
        let index = name.index();
        let old = self.entries[index as usize].obj;
        if old.is_none() || obj.is_none() {
            // A slot taken or freed: the names' codes may change.
            self.version = self.version.wrapping_add(1);
        }
        if let (true, Some(Obj::Port { port, .. })) = (self.indexed, old) {
            if !matches!(obj, Some(Obj::Port { .. })) {
                self.by_port.remove(&port);
            }
        }
        match obj {
            Some(Obj::Port { port, .. }) => {
                if self.indexed {
                    self.by_port.insert(port, index);
                }
                self.entries[index as usize].obj = obj;
            }
            Some(o) => self.entries[index as usize].obj = Some(o),
            None => {
                let e = &mut self.entries[index as usize];
                e.obj = None;
                e.generation = e.generation.wrapping_add(1);
                self.free.push(index);
            }
        }
    }

    /// Allocates a fresh name for `obj`.
    pub(crate) fn alloc(&mut self, obj: Obj) -> PortName {
        let index = match self.free.pop() {
            Some(i) => i,
            None => {
                self.entries.push(Entry {
                    generation: 1,
                    obj: None,
                });
                if !self.indexed && self.entries.len() > INDEX_FROM {
                    self.build_index();
                }
                (self.entries.len() - 1) as u32
            }
        };
        let name = self.name_of(index);
        self.set(name, Some(obj));
        name
    }

    /// Re-allocates exactly `name` if its slot is free and has not been handed
    /// out since `name` was freed (used to give a failed send's rights back
    /// under their old names). Returns whether it worked.
    pub(crate) fn realloc_exact(&mut self, name: PortName, obj: Obj) -> bool {
        let index = name.index();
        let Some(e) = self.entries.get(index as usize) else {
            return false;
        };
        if index == 0 || e.obj.is_some() || e.generation != name.generation().wrapping_add(1) {
            return false;
        }
        let Some(pos) = self.free.iter().rposition(|&i| i == index) else {
            return false;
        };
        self.free.swap_remove(pos);
        self.entries[index as usize].generation = name.generation();
        self.set(name, Some(obj));
        true
    }

    /// Builds the reverse index from the slots (module docs).
    fn build_index(&mut self) {
        self.indexed = true;
        for (i, e) in self.entries.iter().enumerate() {
            if let Some(Obj::Port { port, .. }) = e.obj {
                self.by_port.insert(port, i as u32);
            }
        }
    }

    /// The name under which this task holds rights to `port`, if any.
    pub(crate) fn name_for_port(&self, port: PortId) -> Option<PortName> {
        if self.indexed {
            return self.by_port.get(&port).map(|&i| self.name_of(i));
        }
        self.entries
            .iter()
            .position(|e| matches!(e.obj, Some(Obj::Port { port: p, .. }) if p == port))
            .map(|i| self.name_of(i as u32))
    }

    /// Every live name and what it denotes, in name order.
    pub(crate) fn entries(&self) -> impl Iterator<Item = (PortName, Obj)> + '_ {
        self.entries.iter().enumerate().filter_map(|(i, e)| {
            e.obj
                .map(|o| (PortName::from_parts(i as u32, e.generation), o))
        })
    }

    /// Every slot (index 0 included): its generation and what it denotes.
    pub(crate) fn slots(&self) -> impl Iterator<Item = (u32, Option<Obj>)> + '_ {
        self.entries.iter().map(|e| (e.generation, e.obj))
    }

    /// Number of slots (index 0 included).
    pub(crate) fn slot_count(&self) -> usize {
        self.entries.len()
    }

    /// The number of changes to which slots are used and their generations.
    pub(crate) fn version(&self) -> u64 {
        self.version
    }

    /// The free slots; the next allocation takes the last one.
    pub(crate) fn free_slots(&self) -> &[u32] {
        &self.free
    }

    /// Slot `index`'s generation and whether it is in use (`None`: no such slot yet).
    pub(crate) fn slot(&self, index: u32) -> Option<(u32, bool)> {
        self.entries
            .get(index as usize)
            .map(|e| (e.generation, e.obj.is_some()))
    }

    /// Number of live names.
    pub(crate) fn len(&self) -> usize {
        self.entries.len() - 1 - self.free.len()
    }
}

impl State {
    /// Looks `name` up in `pid`'s space, turning rights to dead ports (and
    /// names of destroyed mailboxes and sets) into dead names first.
    pub(crate) fn resolve(&mut self, pid: crate::Pid, name: PortName) -> Result<Obj, IpcError> {
        let ports = &self.ports;
        let sets = &self.sets;
        let mailboxes = &self.mailboxes;
        let task = self
            .tasks
            .get_mut(pid.0 as usize)
            .and_then(|t| t.as_mut())
            .ok_or(IpcError::TaskExited)?;
        // Read first: the task is copied (shared with a snapshot) only if
        // its space changes.
        let obj = task.space.get(name)?;
        let dead = match obj {
            Obj::Port {
                port,
                receive,
                send,
            } if !ports.contains(port) => {
                debug_assert!(!receive, "receive right of a dead port left in a space");
                Some(send)
            }
            Obj::SendOnce(port) if !ports.contains(port) => Some(1),
            Obj::Mailbox(m) if !mailboxes.contains(m) => Some(1),
            Obj::Set(s) if !sets.contains(s) => {
                task.make_mut().space.set(name, None);
                return Err(IpcError::InvalidName);
            }
            _ => None,
        };
        let Some(refs) = dead else {
            return Ok(obj);
        };
        let space = &mut task.make_mut().space;
        if refs == 0 {
            space.set(name, None);
            Err(IpcError::InvalidName)
        } else {
            space.set(name, Some(Obj::Dead(refs)));
            Ok(Obj::Dead(refs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Obj, PortId, Space, INDEX_FROM};
    use crate::name::PortName;
    use proptest::prelude::*;

    /// A name for `port` by a scan of every live name: what the reverse
    /// index must say, before and after it is built.
    fn scan(space: &Space, port: PortId) -> Option<PortName> {
        space
            .entries()
            .find(|(_, o)| matches!(o, Obj::Port { port: p, .. } if *p == port))
            .map(|(n, _)| n)
    }

    proptest! {
        /// Names allocated, freed and rewritten at random, across the size
        /// at which the index is built: the reverse lookup agrees with a
        /// scan of the live names for every port.
        #[test]
        fn the_reverse_lookup_agrees_with_a_scan(
            ops in proptest::collection::vec((0u8..4, 0u64..24), 0..200)
        ) {
            let mut space = Space::new();
            let mut names: Vec<PortName> = Vec::new();
            for (op, x) in ops {
                let port = PortId::from_raw(x);
                match op {
                    // A port gets a name only if it has none (one name per port).
                    0 | 1 if space.name_for_port(port).is_none() => {
                        names.push(space.alloc(Obj::Port { port, receive: true, send: 0 }));
                    }
                    2 if !names.is_empty() => {
                        let n = names.swap_remove(x as usize % names.len());
                        space.set(n, None);
                    }
                    3 if !names.is_empty() => {
                        // A name's right turned into something else.
                        let n = names[x as usize % names.len()];
                        space.set(n, Some(Obj::Dead(1)));
                    }
                    _ => {}
                }
                for raw in 0..24 {
                    let port = PortId::from_raw(raw);
                    prop_assert_eq!(space.name_for_port(port), scan(&space, port));
                }
            }
            prop_assert_eq!(space.indexed, space.slot_count() > INDEX_FROM);
        }
    }
}
