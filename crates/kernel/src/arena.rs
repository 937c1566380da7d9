//! A generational arena: objects named by an index plus a generation.
//!
//! Removing an object bumps its slot's generation, so an old [`Id`] to a
//! reused slot is detected ("that port is dead") rather than aliasing the new
//! occupant. Iteration is in slot order, never in hash order, so the kernel
//! stays deterministic.
//!
//! Each object is a [`Cow`]: owned, or shared with snapshots once
//! [`Arena::freeze`] ran (a kernel snapshot does), and copied back on its
//! first change ([`Arena::get_mut`]). A frozen arena ([`Frozen`]) holds a
//! handle per object, so a snapshot shares every object instead of copying
//! it; a step that then changes one object copies that one only, and a
//! restore ([`Arena::thaw_from`]) puts back only the objects that are not
//! already the snapshot's. A kernel that is never snapshotted keeps every
//! object owned and pays a branch per access.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::sync::Arc;

/// A typed, generation-checked key into an [`Arena`].
pub(crate) struct Id<T> {
    index: u32,
    generation: u32,
    _kind: PhantomData<fn() -> T>,
}

impl<T> Id<T> {
    pub(crate) fn from_raw(raw: u64) -> Id<T> {
        Id {
            index: raw as u32,
            generation: (raw >> 32) as u32,
            _kind: PhantomData,
        }
    }
    pub(crate) fn to_raw(self) -> u64 {
        ((self.generation as u64) << 32) | self.index as u64
    }
    /// The slot this id names (without its generation).
    pub(crate) fn index(self) -> u32 {
        self.index
    }
}

impl<T> Clone for Id<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Id<T> {}
impl<T> PartialEq for Id<T> {
    fn eq(&self, other: &Self) -> bool {
        self.index == other.index && self.generation == other.generation
    }
}
impl<T> Eq for Id<T> {}
impl<T> PartialOrd for Id<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T> Ord for Id<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.index, self.generation).cmp(&(other.index, other.generation))
    }
}
impl<T> Hash for Id<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.to_raw().hash(state)
    }
}
impl<T> fmt::Debug for Id<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{}.{}", self.index, self.generation)
    }
}

/// A value the kernel owns, or shares with snapshots (copied on its first
/// change: [`Cow::make_mut`]).
pub(crate) enum Cow<T> {
    Own(T),
    Shared(Arc<T>),
    /// Only while `make_mut` or `share` moves the value.
    Moving,
}

impl<T: Clone> Cow<T> {
    /// The value, to change: copied first if shared (taken back without a
    /// copy if no snapshot shares it any more).
    #[inline]
    pub(crate) fn make_mut(&mut self) -> &mut T {
        if let Cow::Shared(_) = self {
            if let Cow::Shared(a) = std::mem::replace(self, Cow::Moving) {
                *self = Cow::Own(Arc::unwrap_or_clone(a));
            }
        }
        match self {
            Cow::Own(v) => v,
            _ => unreachable!("a Cow is owned after make_mut"),
        }
    }

    /// Makes the value shareable (a clone then shares it).
    pub(crate) fn share(&mut self) {
        if let Cow::Own(_) = self {
            if let Cow::Own(v) = std::mem::replace(self, Cow::Moving) {
                *self = Cow::Shared(Arc::new(v));
            }
        }
    }

    /// The value made shareable ([`Cow::share`]), and a handle to it.
    pub(crate) fn shared(&mut self) -> Arc<T> {
        self.share();
        match self {
            Cow::Shared(a) => Arc::clone(a),
            _ => unreachable!("a Cow is shared after share"),
        }
    }

    /// Makes this the shared value `a`: nothing to do if it already is.
    #[inline]
    pub(crate) fn set_shared(&mut self, a: &Arc<T>) {
        if !matches!(self, Cow::Shared(b) if Arc::ptr_eq(a, b)) {
            *self = Cow::Shared(Arc::clone(a));
        }
    }

    /// The value itself.
    pub(crate) fn into_inner(self) -> T {
        match self {
            Cow::Own(v) => v,
            Cow::Shared(a) => Arc::unwrap_or_clone(a),
            Cow::Moving => unreachable!("a Cow is never left moving"),
        }
    }
}

impl<T> std::ops::Deref for Cow<T> {
    type Target = T;
    #[inline]
    fn deref(&self) -> &T {
        match self {
            Cow::Own(v) => v,
            Cow::Shared(a) => a,
            Cow::Moving => unreachable!("a Cow is never left moving"),
        }
    }
}

impl<T: Clone> Clone for Cow<T> {
    fn clone(&self) -> Self {
        match self {
            Cow::Own(v) => Cow::Own(v.clone()),
            Cow::Shared(a) => Cow::Shared(a.clone()),
            Cow::Moving => unreachable!("a Cow is never left moving"),
        }
    }
    fn clone_from(&mut self, source: &Self) {
        match (self, source) {
            // Owned into owned: reuse the allocations.
            (Cow::Own(v), Cow::Own(s)) => v.clone_from(s),
            // Already the same shared value (a restore into the kernel a
            // step left mostly unchanged): nothing to do, not even the two
            // reference-count updates a fresh clone would cost.
            (Cow::Shared(a), Cow::Shared(s)) if Arc::ptr_eq(a, s) => {}
            (this, source) => *this = source.clone(),
        }
    }
}

impl<T: Default> Default for Cow<T> {
    fn default() -> Self {
        Cow::Own(T::default())
    }
}

impl<T: fmt::Debug> fmt::Debug for Cow<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (**self).fmt(f)
    }
}

struct Slot<T> {
    generation: u32,
    value: Option<Cow<T>>,
}

/// Slot storage with generation-checked keys.
pub(crate) struct Arena<T> {
    slots: Vec<Slot<T>>,
    free: Vec<u32>,
    len: usize,
}

clone_fields!(Slot<T> { generation, value });

/// An [`Arena`] as a kernel snapshot keeps it ([`Arena::freeze`]): per slot
/// its generation and a shared handle to its object, 16 bytes a slot
/// whatever the object's size, so that taking, dropping and restoring a
/// snapshot copies handles, not objects. The live arena and its snapshots
/// share each object until the live one changes it ([`Cow::make_mut`]).
pub(crate) struct Frozen<T> {
    slots: Vec<(u32, Option<Arc<T>>)>,
    free: Vec<u32>,
    len: usize,
}

impl<T> Clone for Frozen<T> {
    fn clone(&self) -> Self {
        Frozen {
            slots: self.slots.clone(),
            free: self.free.clone(),
            len: self.len,
        }
    }
}

impl<T> Frozen<T> {
    /// How many live objects.
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}
clone_fields!(Arena<T> { slots, free, len });

impl<T> Default for Arena<T> {
    fn default() -> Self {
        Arena {
            slots: Vec::new(),
            free: Vec::new(),
            len: 0,
        }
    }
}

impl<T: Clone> Arena<T> {
    pub(crate) fn insert(&mut self, value: T) -> Id<T> {
        self.len += 1;
        let value = Cow::Own(value);
        if let Some(index) = self.free.pop() {
            let slot = &mut self.slots[index as usize];
            slot.value = Some(value);
            Id {
                index,
                generation: slot.generation,
                _kind: PhantomData,
            }
        } else {
            let index = u32::try_from(self.slots.len()).expect("arena index overflow");
            self.slots.push(Slot {
                generation: 0,
                value: Some(value),
            });
            Id {
                index,
                generation: 0,
                _kind: PhantomData,
            }
        }
    }

    #[inline]
    pub(crate) fn get(&self, id: Id<T>) -> Option<&T> {
        let slot = self.slots.get(id.index as usize)?;
        if slot.generation == id.generation {
            slot.value.as_deref()
        } else {
            None
        }
    }

    /// The object, copied first if a snapshot shares it.
    #[inline]
    pub(crate) fn get_mut(&mut self, id: Id<T>) -> Option<&mut T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation == id.generation {
            slot.value.as_mut().map(Cow::make_mut)
        } else {
            None
        }
    }

    pub(crate) fn contains(&self, id: Id<T>) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn remove(&mut self, id: Id<T>) -> Option<T> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation || slot.value.is_none() {
            return None;
        }
        let value = slot.value.take().map(Cow::into_inner);
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        value
    }

    /// Removes the object `id` names, dropping it where it lies: what
    /// [`Arena::remove`] does without moving the object out (a caller that
    /// has taken what it needs from a large object saves the copies).
    /// Whether there was one.
    pub(crate) fn discard(&mut self, id: Id<T>) -> bool {
        let Some(slot) = self.slots.get_mut(id.index as usize) else {
            return false;
        };
        if slot.generation != id.generation || slot.value.is_none() {
            return false;
        }
        slot.value = None;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        self.len -= 1;
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The arena as a snapshot keeps it ([`Frozen`]): every object made
    /// shareable and handed out by reference, with the generations and
    /// the free list.
    pub(crate) fn freeze(&mut self) -> Frozen<T> {
        Frozen {
            slots: self
                .slots
                .iter_mut()
                .map(|s| (s.generation, s.value.as_mut().map(Cow::shared)))
                .collect(),
            free: self.free.clone(),
            len: self.len,
        }
    }

    /// Puts the arena back as `frozen` has it. A slot whose object is
    /// already the frozen one (the objects a step did not change) is left
    /// as it is; only the others are replaced, by a shared handle.
    pub(crate) fn thaw_from(&mut self, frozen: &Frozen<T>) {
        self.slots.truncate(frozen.slots.len());
        let kept = self.slots.len();
        for (slot, (generation, value)) in self.slots.iter_mut().zip(&frozen.slots) {
            slot.generation = *generation;
            match (&mut slot.value, value) {
                (Some(v), Some(a)) => v.set_shared(a),
                (v, a) => *v = a.as_ref().map(|a| Cow::Shared(Arc::clone(a))),
            }
        }
        self.slots
            .extend(frozen.slots[kept..].iter().map(|(generation, value)| Slot {
                generation: *generation,
                value: value.as_ref().map(|a| Cow::Shared(Arc::clone(a))),
            }));
        self.free.clone_from(&frozen.free);
        self.len = frozen.len;
    }

    /// A new arena in the state `frozen` has (sharing its objects).
    pub(crate) fn thawed(frozen: &Frozen<T>) -> Arena<T> {
        let mut a = Arena::default();
        a.thaw_from(frozen);
        a
    }

    /// Number of slots, live or free.
    pub(crate) fn slot_count(&self) -> usize {
        self.slots.len()
    }

    /// The free slots, in the order `insert` will *not* reuse them: the
    /// next insert takes the last one.
    pub(crate) fn free_slots(&self) -> &[u32] {
        &self.free
    }

    /// The object in slot `index`, whatever its generation.
    pub(crate) fn at(&self, index: usize) -> Option<&T> {
        self.slots.get(index).and_then(|s| s.value.as_deref())
    }

    /// Live objects in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (Id<T>, &T)> {
        self.slots.iter().enumerate().filter_map(|(i, s)| {
            s.value.as_deref().map(|v| {
                (
                    Id {
                        index: i as u32,
                        generation: s.generation,
                        _kind: PhantomData,
                    },
                    v,
                )
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared(v: Vec<u8>) -> Cow<Vec<u8>> {
        let mut c = Cow::Own(v);
        c.share();
        c
    }

    /// `clone_from` leaves the value the source's, whichever sides are
    /// owned or shared, and a shared source stays shared, not copied.
    #[test]
    fn clone_from_takes_the_source_value() {
        let sources = [Cow::Own(vec![1, 2]), shared(vec![3])];
        for source in &sources {
            for mut target in [Cow::Own(vec![9, 9, 9]), shared(vec![8])] {
                target.clone_from(source);
                assert_eq!(*target, **source);
                if let (Cow::Shared(t), Cow::Shared(s)) = (&target, source) {
                    assert!(Arc::ptr_eq(t, s), "a shared source is shared");
                }
            }
        }
        // Already sharing one value: it stays shared (two owners: no copy
        // on the next change of the source's holder).
        let a = shared(vec![5]);
        let mut b = a.clone();
        b.clone_from(&a);
        let (Cow::Shared(pa), Cow::Shared(pb)) = (&a, &b) else {
            panic!("both shared");
        };
        assert!(Arc::ptr_eq(pa, pb));
        assert_eq!(Arc::strong_count(pa), 2);
    }

    /// An arena thawed from its frozen self has the frozen objects,
    /// generations and free list back; the objects it did not change stay
    /// the very ones the frozen arena holds, and a changed one is replaced
    /// by the frozen one, shared.
    #[test]
    fn thawing_restores_and_shares() {
        let mut a: Arena<Vec<u8>> = Arena::default();
        let x = a.insert(vec![1]);
        let y = a.insert(vec![2]);
        let frozen = a.freeze();
        a.get_mut(x).unwrap().push(7); // copied: the frozen arena keeps [1]
        assert_eq!(a.get(x), Some(&vec![1, 7]));
        a.remove(y);
        let z = a.insert(vec![3]);
        let w = a.insert(vec![4]);
        assert_eq!(a.get(y), None);
        a.thaw_from(&frozen);
        assert_eq!(a.get(x), Some(&vec![1]));
        assert_eq!(a.get(y), Some(&vec![2]));
        assert_eq!(a.get(z), None, "the slot is back at its old generation");
        assert_eq!(a.get(w), None, "a slot added since is gone");
        assert_eq!((a.len(), a.slot_count()), (2, 2));
        assert!(a.free_slots().is_empty());
        for (slot, (_, held)) in a.slots.iter().zip(&frozen.slots) {
            let (Some(Cow::Shared(live)), Some(held)) = (&slot.value, held) else {
                panic!("every object shared after a thaw");
            };
            assert!(Arc::ptr_eq(live, held));
        }
        // Thawing again changes nothing, and a thawed copy has the same.
        a.thaw_from(&frozen);
        let b = Arena::thawed(&frozen);
        assert_eq!(b.get(x), Some(&vec![1]));
        assert_eq!(b.get(y), Some(&vec![2]));
        // A change after the thaw copies again, the frozen one unchanged.
        a.get_mut(y).unwrap().push(9);
        assert_eq!(b.get(y), Some(&vec![2]));
        assert_eq!(Arena::thawed(&frozen).get(y), Some(&vec![2]));
    }
}
