//! Per-run tables that keep their memory from one run to the next.
//!
//! An exploration runs the same model thousands of times on one [`Sim`]
//! (`Sim::reset`): the same processes are spawned under the same names, the
//! same ports labelled, the same rights handed over. Two small structures
//! make that repetition free of allocation:
//!
//! * [`Interner`]: one shared copy of each process name and port label. A
//!   spawn or a label looks its text up and takes another reference to the
//!   copy; the copies outlive a reset, so the next run finds them all and
//!   allocates nothing.
//! * [`KillPlan`]: the kills planned at a step or a time, in the order they
//!   strike (by key, then in the order they were planned), in a queue that
//!   keeps its memory.
//! * [`PidMap`]: what the simulator knows about a task's names (a label, the
//!   watched queue a name denotes), in a vector indexed by pid, each task's
//!   entries sorted by name. A reset empties every row and keeps the rows and
//!   their buffers; pids start again from the same numbers after a kernel
//!   restore, so the next run writes into the same rows.
//!
//! [`Sim`]: crate::Sim

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::rc::Rc;

use mkipc_kernel::{Pid, PortName};

use crate::ProcId;

/// One shared copy of each text (module docs).
///
/// The first [`Interner::FIRST`] texts are kept in a vector scanned in
/// order (a model has a handful of names: comparing lengths, then a few
/// bytes, is cheaper than walking a tree), the rest in a sorted set.
#[derive(Debug, Default)]
pub(crate) struct Interner {
    first: Vec<Rc<str>>,
    rest: BTreeSet<Rc<str>>,
}

impl Interner {
    /// How many texts the scanned vector holds.
    const FIRST: usize = 16;

    /// The shared copy of `text`, made on its first use.
    pub fn get(&mut self, text: &str) -> Rc<str> {
        if let Some(t) = self
            .first
            .iter()
            .find(|t| t.len() == text.len() && ***t == *text)
        {
            return Rc::clone(t);
        }
        if let Some(t) = self.rest.get(text) {
            return Rc::clone(t);
        }
        let t: Rc<str> = Rc::from(text);
        if self.first.len() < Self::FIRST {
            self.first.push(Rc::clone(&t));
        } else {
            self.rest.insert(Rc::clone(&t));
        }
        t
    }

    /// Forgets every text once more than `max` are kept, so that a model
    /// that names its processes differently in every run (after its seed,
    /// say) does not grow the table run after run. Called between runs,
    /// when nothing holds a text any more.
    pub fn trim(&mut self, max: usize) {
        if self.len() > max {
            self.first.clear();
            self.rest.clear();
        }
    }

    /// How many distinct texts are kept.
    pub fn len(&self) -> usize {
        self.first.len() + self.rest.len()
    }
}

/// Kills planned at a key (a step, a virtual time), in the order they
/// strike (module docs).
#[derive(Debug)]
pub(crate) struct KillPlan<K> {
    planned: VecDeque<(K, ProcId)>,
}

impl<K> Default for KillPlan<K> {
    fn default() -> Self {
        KillPlan {
            planned: VecDeque::new(),
        }
    }
}

impl<K: Ord + Copy> KillPlan<K> {
    /// Plans a kill of `proc` at `at`, after the kills planned at or
    /// before `at` already.
    pub fn add(&mut self, at: K, proc: ProcId) {
        let i = self.planned.partition_point(|(k, _)| *k <= at);
        self.planned.insert(i, (at, proc));
    }

    /// The next kill due at `now` or before, taken off the plan.
    pub fn take_due(&mut self, now: K) -> Option<(K, ProcId)> {
        match self.planned.front() {
            Some((k, _)) if *k <= now => self.planned.pop_front(),
            _ => None,
        }
    }

    /// The kills still planned, in the order they strike.
    pub fn iter(&self) -> impl Iterator<Item = &(K, ProcId)> {
        self.planned.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// Forgets every kill, keeping the memory.
    pub fn clear(&mut self) {
        self.planned.clear();
    }
}

/// A value per `(pid, name)`, by pid then name (module docs).
#[derive(Debug)]
pub(crate) struct PidMap<V> {
    rows: Vec<Vec<(PortName, V)>>,
}

impl<V> Default for PidMap<V> {
    fn default() -> Self {
        PidMap { rows: Vec::new() }
    }
}

impl<V> PidMap<V> {
    /// The value for `name` in `pid`'s space.
    pub fn get(&self, pid: Pid, name: PortName) -> Option<&V> {
        let row = self.rows.get(pid.0 as usize)?;
        row.binary_search_by(|(n, _)| n.cmp(&name))
            .ok()
            .map(|i| &row[i].1)
    }

    /// Sets the value for `name` in `pid`'s space, replacing any.
    pub fn insert(&mut self, pid: Pid, name: PortName, value: V) {
        let i = pid.0 as usize;
        if self.rows.len() <= i {
            self.rows.resize_with(i + 1, Vec::new);
        }
        let row = &mut self.rows[i];
        // Names mostly come in increasing order: the search ends at once.
        match row.last() {
            Some((last, _)) if *last < name => row.push((name, value)),
            None => row.push((name, value)),
            _ => match row.binary_search_by(|(n, _)| n.cmp(&name)) {
                Ok(j) => row[j].1 = value,
                Err(j) => row.insert(j, (name, value)),
            },
        }
    }

    /// Empties every row, keeping the rows and their memory.
    pub fn clear(&mut self) {
        for row in &mut self.rows {
            row.clear();
        }
    }

    /// Every entry, by pid then name.
    pub fn iter(&self) -> impl Iterator<Item = (Pid, PortName, &V)> {
        self.rows
            .iter()
            .enumerate()
            .flat_map(|(pid, row)| row.iter().map(move |(name, v)| (Pid(pid as u32), *name, v)))
    }
}

impl PidMap<Rc<str>> {
    /// The labels as the trace keeps them: by `(pid, name)`, owned text.
    pub fn to_labels(&self) -> BTreeMap<(u32, PortName), String> {
        self.iter()
            .map(|(pid, name, label)| ((pid.0, name), label.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(i: u32) -> PortName {
        PortName::from_parts(i, 1)
    }

    #[test]
    fn smoke() {
        let mut m = PidMap::default();
        m.insert(Pid(2), name(1), "a");
        assert_eq!(m.get(Pid(2), name(1)), Some(&"a"));
        assert_eq!(m.get(Pid(2), name(2)), None);
        assert_eq!(m.get(Pid(1), name(1)), None);
        assert_eq!(m.get(Pid(9), name(1)), None);
    }

    /// Whatever the order of insertion, a `PidMap` answers as a `BTreeMap`
    /// keyed by `(pid, name)` does, replacing on a second insert.
    #[test]
    fn agrees_with_a_btreemap() {
        let mut m = PidMap::default();
        let mut want = BTreeMap::new();
        // A fixed, scrambled order of keys, some repeated.
        for k in 0..200u32 {
            let (pid, n) = ((k * 7) % 5, (k * 13) % 23);
            m.insert(Pid(pid), name(n), k);
            want.insert((pid, name(n)), k);
        }
        let got: BTreeMap<(u32, PortName), u32> =
            m.iter().map(|(p, n, v)| ((p.0, n), *v)).collect();
        assert_eq!(got, want);
        for ((pid, n), v) in &want {
            assert_eq!(m.get(Pid(*pid), *n), Some(v));
        }
    }

    #[test]
    fn clear_empties_every_row_and_keeps_its_memory() {
        let mut m = PidMap::default();
        for n in 0..8 {
            m.insert(Pid(3), name(n), n);
        }
        let before = m.rows[3].capacity();
        m.clear();
        assert_eq!(m.iter().count(), 0);
        assert_eq!(m.get(Pid(3), name(0)), None);
        assert_eq!(m.rows[3].capacity(), before);
    }

    /// Kills strike by key, and in the order planned among equal keys, as
    /// the `BTreeMap<K, Vec<ProcId>>` they replace had them.
    #[test]
    fn kills_strike_by_key_then_in_planning_order() {
        let mut plan = KillPlan::default();
        for (at, p) in [(5u64, 0), (2, 1), (5, 2), (9, 3), (2, 4), (5, 5)] {
            plan.add(at, ProcId(p));
        }
        let order: Vec<(u64, u32)> = plan.iter().map(|&(k, p)| (k, p.0)).collect();
        assert_eq!(order, [(2, 1), (2, 4), (5, 0), (5, 2), (5, 5), (9, 3)]);
        assert_eq!(plan.take_due(1), None);
        assert_eq!(plan.take_due(2), Some((2, ProcId(1))));
        assert_eq!(plan.take_due(2), Some((2, ProcId(4))));
        assert_eq!(plan.take_due(4), None);
        let rest: Vec<u32> = std::iter::from_fn(|| plan.take_due(100))
            .map(|(_, p)| p.0)
            .collect();
        assert_eq!(rest, [0, 2, 5, 3]);
        assert!(plan.is_empty());
    }

    #[test]
    fn the_interner_keeps_one_copy_of_each_text() {
        let mut i = Interner::default();
        let a = i.get("producer");
        let b = i.get("producer");
        let c = i.get("consumer");
        assert!(Rc::ptr_eq(&a, &b));
        assert!(!Rc::ptr_eq(&a, &c));
        assert_eq!(&*c, "consumer");
        assert_eq!(i.len(), 2);
        i.trim(2);
        assert_eq!(i.len(), 2, "within the bound: kept");
        i.trim(1);
        assert_eq!(i.len(), 0, "past the bound: forgotten");
        assert!(Rc::ptr_eq(&i.get("consumer"), &i.get("consumer")));
        assert_eq!(&*i.get("consumer"), &*c, "a text forgotten is made again");
    }

    /// Past the scanned vector, texts go to the set, and each is still
    /// found (and found once) whichever part holds it.
    #[test]
    fn many_texts_are_each_kept_once() {
        let mut i = Interner::default();
        let texts: Vec<String> = (0..100).map(|k| format!("p{k}")).collect();
        let first: Vec<Rc<str>> = texts.iter().map(|t| i.get(t)).collect();
        assert_eq!(i.len(), 100);
        assert_eq!(i.first.len(), Interner::FIRST);
        for (t, f) in texts.iter().zip(&first) {
            let again = i.get(t);
            assert!(Rc::ptr_eq(&again, f), "{t}");
            assert_eq!(&*again, t.as_str());
        }
        // Same length, other bytes: not confused.
        assert_eq!(&*i.get("p9"), "p9");
        assert_eq!(&*i.get("q9"), "q9");
        assert_eq!(i.len(), 101);
    }
}
