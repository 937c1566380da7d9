//! Relabelling interchangeable tasks in the canonical encoding, for a
//! model checker's symmetry reduction.
//!
//! A checker that knows some processes are interchangeable (the same code,
//! started alike, nothing in the model telling one from another) stores a
//! state as the encoding of one *permutation* of it: the tasks of a group
//! relabelled so that, say, the member in the smallest local state is
//! written first. Two states that differ only by which member is where then
//! meet as one, and a system of `n` workers is explored once instead of up
//! to `n!` times.
//!
//! The encoding under a relabelling ([`Kernel::canonical_parts_relabelled`])
//! is exactly the identity encoding of the permuted state: the tasks are
//! written in the order of their labels, every pid is written as its label,
//! and the traversals that number waits, ports and sets visit tasks in that
//! order too.
//!
//! The kernel's operations are the same under any relabelling, with a few
//! exceptions, where an operation orders tasks by pid: the send-possible
//! and dead-name requests of a queue or port go out in pid order, a frozen
//! group of handed messages is dealt out in pid order, and a task's links
//! are kept by pid. A state where two members of one group meet in one of
//! those structures is *pid-ordered*: from there the permuted state's
//! future may not be the permutation of this one's. The encoder reports
//! such a state, and a checker that meets one must not trust the reduction
//! (its search starts again without it). If a search never meets one,
//! every transition it took commutes with the relabelling, so every state
//! reachable is a relabelling of one it stored.
//!
//! A group's pids must be contiguous (no pid of another task between its
//! smallest and largest): then relabelling keeps the order of a member
//! among the other tasks, and a structure holding one member is ordered
//! alike in the state and in its relabelling.
//!
//! [`Kernel::canonical_parts_relabelled`]: crate::Kernel::canonical_parts_relabelled

use smallvec::SmallVec;

use crate::name::Pid;

/// The labels of one encoding: by pid, what it is written as, and back.
#[derive(Default)]
pub(crate) struct Relabel {
    /// By pid: the pid it is written as.
    label: Vec<u32>,
    /// By label: the pid written under it (the order tasks are visited in).
    order: Vec<u32>,
    /// By pid: its group's number plus one (0: in no group).
    group: Vec<u32>,
}

impl Relabel {
    /// Sets up the labels of `tasks` task slots: each group (members in the
    /// chosen order) has its members written as its pids in increasing
    /// order; every other task as itself. Pids past `tasks` are ignored.
    pub fn set<G: AsRef<[Pid]>>(&mut self, tasks: usize, groups: &[G]) {
        self.label.clear();
        self.label.extend(0..tasks as u32);
        self.group.clear();
        self.group.resize(tasks, 0);
        for (g, members) in groups.iter().enumerate() {
            let members = members.as_ref();
            let mut labels: SmallVec<[u32; 8]> = members.iter().map(|p| p.0).collect();
            labels.sort_unstable();
            for (&p, &l) in members.iter().zip(&labels) {
                if (p.0 as usize) < tasks && (l as usize) < tasks {
                    self.label[p.0 as usize] = l;
                    self.group[p.0 as usize] = g as u32 + 1;
                }
            }
        }
        self.order.clear();
        self.order.resize(tasks, 0);
        for (p, &l) in self.label.iter().enumerate() {
            self.order[l as usize] = p as u32;
        }
    }

    /// The identity on `tasks` task slots.
    pub fn identity(&mut self, tasks: usize) {
        self.set::<&[Pid]>(tasks, &[]);
    }

    /// What `pid` is written as.
    #[inline]
    pub fn label(&self, pid: Pid) -> Pid {
        match self.label.get(pid.0 as usize) {
            Some(&l) => Pid(l),
            None => pid,
        }
    }

    /// The task slots in the order of their labels.
    #[inline]
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// Whether two of `pids` are members of one group (a structure that
    /// holds them orders them by pid: module docs).
    pub fn two_of_a_group(&self, pids: impl Iterator<Item = Pid>) -> bool {
        let mut seen: SmallVec<[u32; 8]> = pids
            .filter_map(|p| self.group.get(p.0 as usize).copied())
            .filter(|&g| g != 0)
            .collect();
        if seen.len() < 2 {
            return false;
        }
        seen.sort_unstable();
        seen.windows(2).any(|w| w[0] == w[1])
    }
}
