//! What a task has only once it uses direct links or owns a mailbox.
//!
//! Most tasks (a simulated process holding one port, a million of them)
//! never send to a task by pid nor own a mailbox. Their kernel state is the
//! name space and the waits ([`TaskState`]); the maps below live in one box,
//! [`TaskLinks`], made the first time a link into or out of the task, a link
//! capacity or an owned mailbox is recorded (`TaskState::links_mut`). The
//! *inbox* (the port set of the links into a task, where `receive_from_any`
//! waits) is made when the first link into the task is, or when the task
//! first waits on it ([`Locked::inbox_of`]), not at `create_task`.
//!
//! A task without the box reads as one with empty maps and no inbox
//! ([`TaskState::links`]), so no reader needs to know which it is. An inbox
//! once made stays until the task exits; one that is empty (no links, no
//! receiver waiting) is left out of the canonical state (`canonical.rs`), as
//! if never made, so two runs that made it or not at different times meet
//! in one state.

use std::collections::{BTreeMap, BTreeSet};

use super::{Locked, MailboxId, PortId, PortSet, SetId, State, TaskState};
use crate::capacity::Capacity;
use crate::name::Pid;

/// A task's direct links, their capacities, its inbox and its mailboxes
/// (module docs).
#[derive(Clone, Default)]
pub(crate) struct TaskLinks {
    /// The set of direct links into this task (`receive_from_any` waits
    /// here), once made.
    pub inbox: Option<SetId>,
    pub links_in: BTreeMap<Pid, PortId>,
    pub links_out: BTreeMap<Pid, PortId>,
    pub link_capacity: BTreeMap<Pid, Capacity>,
    pub owned_mailboxes: BTreeSet<MailboxId>,
}

/// What a task without the box reads as.
static NO_LINKS: TaskLinks = TaskLinks {
    inbox: None,
    links_in: BTreeMap::new(),
    links_out: BTreeMap::new(),
    link_capacity: BTreeMap::new(),
    owned_mailboxes: BTreeSet::new(),
};

impl TaskState {
    /// The task's links (empty, no inbox, for a task that never had any).
    #[inline]
    pub(crate) fn links(&self) -> &TaskLinks {
        self.links.as_deref().unwrap_or(&NO_LINKS)
    }

    /// The task's links, to change: the box is made on first use.
    pub(crate) fn links_mut(&mut self) -> &mut TaskLinks {
        self.links.get_or_insert_with(Box::default)
    }
}

impl State {
    /// A task's inbox if it holds anything the canonical state must see: a
    /// link, or a receiver waiting on it (module docs).
    pub(crate) fn live_inbox(&self, task: &TaskState) -> Option<SetId> {
        let inbox = task.links().inbox?;
        let set = self.sets.get(inbox)?;
        (!set.members.is_empty() || !set.blocked_receivers.is_empty()).then_some(inbox)
    }

    /// Live tasks whose inbox is not made yet: [`KernelStats::port_sets`]
    /// counts every task's inbox, made or not.
    ///
    /// [`KernelStats::port_sets`]: super::KernelStats::port_sets
    pub(crate) fn inboxes_not_made(&self) -> usize {
        self.tasks
            .iter()
            .flatten()
            .filter(|t| t.links().inbox.is_none())
            .count()
    }
}

impl Locked<'_> {
    /// The inbox of live task `pid`, made now if it was not.
    pub(crate) fn inbox_of(&mut self, pid: Pid) -> SetId {
        if let Some(inbox) = self.task(pid).expect("live task").links().inbox {
            return inbox;
        }
        let inbox = self.sets.insert(PortSet {
            members: Default::default(),
            blocked_receivers: Default::default(),
        });
        self.task_mut(pid).expect("live task").links_mut().inbox = Some(inbox);
        inbox
    }
}

#[cfg(all(test, target_pointer_width = "64"))]
mod tests {
    use crate::{Capacity, Ipc, Kernel};

    /// A task holding one port is its name space, its waits and a pointer
    /// in the task table; its port has no requests box. (A million tasks:
    /// each byte here is a megabyte. 8 B of the port are the group
    /// hand-off's list, `MsgQueue::handed`.)
    #[test]
    fn a_task_and_a_port_without_extras_stay_small() {
        assert!(std::mem::size_of::<super::TaskState>() <= 120);
        // An idle receive's wait record: a parked sender's original
        // message is boxed (`WaitState::Sending`), so the largest variant
        // is a handed message's outcome.
        assert!(
            std::mem::size_of::<super::super::WaitRec>() <= 128,
            "WaitRec is {} B",
            std::mem::size_of::<super::super::WaitRec>()
        );
        assert!(
            std::mem::size_of::<super::super::Port>() <= 288,
            "Port is {} B",
            std::mem::size_of::<super::super::Port>()
        );
    }

    /// The inbox is made on first use, and counted from the start: a task
    /// that never used a link has none made, yet `stats` counts it.
    #[test]
    fn the_inbox_is_made_on_first_use_and_always_counted() {
        let kernel = Kernel::new();
        let a = kernel.spawn_task();
        let b = kernel.spawn_task();
        let _ = a.port_allocate(Capacity::Bounded(1)).unwrap();
        let made = |pid| {
            let st = kernel.lock();
            st.task(pid).unwrap().links().inbox.is_some()
        };
        assert!(!made(a.pid()) && !made(b.pid()));
        assert_eq!(kernel.stats().port_sets, 2);
        a.send_to(b.pid(), crate::Message::from_u64(1, 7)).unwrap();
        assert!(made(b.pid()) && !made(a.pid()));
        assert_eq!(kernel.stats().port_sets, 2);
        assert_eq!(b.receive_from_any().unwrap().as_u64(), Some(7));
    }
}
