//! Partial-order reduction for the stateful search: which steps are
//! *safe*, so that a state may be expanded by that one step alone, and
//! which sets of processes are *stubborn*, so that it may be expanded by
//! their steps alone.
//!
//! The search ([`search`](super::search)) tries a fresh state's enabled
//! processes one by one, highest index first. If the first step it runs is
//! safe and leads to a state never seen before, that step is the state's
//! whole expansion (an ample set of one, as SPIN's partial-order reduction,
//! Holzmann and Peled 1994); otherwise every enabled process is expanded.
//! The successor already computed is used either way, so probing costs
//! nothing. With [`Checker::reduction`](super::Checker::reduction) off,
//! every state is expanded fully.
//!
//! A step of process `p` is safe when no other process can, before `p`
//! steps, do anything that changes what `p`'s step does or that does not
//! commute with it (condition C1): then exploring `p` first loses no end
//! state and no failure. The step is judged after it ran, from what it did
//! ([`Started`]) and what the other processes declare they may still do
//! ([`Machine::may_use_mailbox`]). Safe steps:
//!
//! * **A local step**: it started no operation, used nothing through
//!   `Ctx::ipc`, spawned nothing, made no choice, and ended in
//!   `Step::Yield`. It may take the outcome of its completed wait (that
//!   wait belongs to `p`; nobody else can change it), unless the message
//!   taken carries rights or holds a place in a bounded queue (a message
//!   handed over while `p` waited keeps its place until taken: taking it
//!   may let a blocked sender in, `Kernel::wait_holds_place`). Taking one
//!   from a system mailbox is judged as a plain receive from it, which
//!   frees a place too ([`freeing_place`]).
//! * **A send by the sole sender**: a plain send (`OnFull::Block`, no
//!   rights carried) to a system mailbox open to all (`World::mailbox`),
//!   of any capacity, when no other live process may send to it, the
//!   sender itself will not use it otherwise than plainly or with tries
//!   (a `DropOldest` send could not displace a message handed to a
//!   receiver that waited, and could one queued for a receiver that came
//!   later), no
//!   process at all (`p` included) may receive from it among other sources
//!   (a select picks the oldest message by the kernel's global arrival
//!   order, which the send writes), and the other processes only ever
//!   receive from it with a receive that waits forever.
//! * **A receive by the sole receiver**: a plain receive (`Wait::Forever`,
//!   one source) from such a mailbox, when no other live process may
//!   receive from it (alone or in a select), and the others only ever send
//!   to it with plain sends.
//!
//! Why those two commute with everything the others can do to the mailbox:
//! the sole sender only appends at the tail, or, when receivers wait,
//! hands its message to the first of them, whose order their own steps
//! decided; receivers that wait forever take from the head or wait, and
//! whether one of them waited before the send or received after it is
//! the same by the machine law ([`Machine`]: a step does the same with an
//! operation's result whether it completed at once or after a wait). The
//! mirror argument holds for the sole receiver against plain senders:
//! blocked senders are admitted in the order their own steps blocked. A
//! timed operation, a try, a send that fails or drops on full, or a right
//! carried would make the result depend on the order, so none of them is
//! allowed on either side. On a rendezvous mailbox an operation that
//! *blocks* is not safe either: the partner that comes second completes at
//! once and goes on with the rest of its step, while in the other order it
//! would be the one parked, going on later (a parked sender's exit could
//! wait until after the receiver's next operation); one that completes at
//! once (the partner was parked) is safe. Every other step is unsafe: a
//! timeout (its deadline races with the partner), a pause, an exit (it
//! releases rights: ports die, notifications go out), a spawn, a port
//! operation (a port's receiver and senders are tied by rights and
//! notifications), a select over several sources, a choice, anything
//! through `Ctx::ipc`.
//!
//! **Guarded choices.** A step may make tries before its last operation,
//! as a script `select` does on the checker (one try per arm, in one
//! step): SPIN's guarded `do`. It is judged by the operation that went (a
//! try that went counts as the plain operation: a send that found room, a
//! receive that found a message) together with what it saw on the way
//! ([`Seen`]: each try that did not go, a send that found its mailbox full
//! or a receive that found it empty). A seen try conflicts with whatever
//! could make it go ([`seen_conflicts`]): for a full mailbox any receive
//! from it, for an empty one any send to it, and any wait on it. So a
//! `select` that took its first arm tried is that arm's operation alone,
//! and one that took a later arm is dependent with whatever could have let
//! an earlier one go. A receive from several names that took from one,
//! the others inert (empty ports nobody holds a right to send to: a
//! select's notify port with no request out), is judged as a receive from
//! that name (`check::ctx`). Lazy blocking after tries that did not go
//! needs a wait that covers them (`ctx::Missed::covered_by`).
//!
//! Which move is tried first matters, since only it is judged:
//! [`probe_first`] puts first the highest-index process whose wait has
//! completed (taking the outcome is often a local step), else the search's
//! own order (highest index first) stands.
//!
//! **Stubborn sets.** When the first step is not safe alone (its mailbox
//! has rival senders or receivers), the search judges the step of every
//! process whose step is a transition there ([`stubborn_set`]) and looks
//! for the smallest set `T` of them closed under conflict: for every step
//! in `T` and every process outside it, that process cannot, now or later,
//! do anything dependent with the step ([`conflicts`]: on the same
//! mailbox, a rival operation, a select, a timed operation, a try, a send
//! that fails or drops, or a wait that may include it). A process that
//! conflicts goes into `T` if it can step now with a step that is not
//! global; if it cannot (it waits, pauses, only blocks) or its step is
//! global, the candidate fails. Steps of `T`'s processes do not constrain
//! each other: two rival receivers in `T` are both expanded, so both
//! orders are explored. Dependency on one mailbox, for steps of two
//! processes: a plain send and a plain receive commute (the argument
//! above, whatever the capacity and the queue's length); two sends do not
//! (the queue keeps them in the order they ran, and with one slot left
//! one disables the other), nor do two receives (who gets which message;
//! with one message, one disables the other); anything not plain
//! conflicts with every operation on it; and a send to a mailbox some
//! process may select over is global, since the select compares its
//! arrival with sends to the select's other sources. Why `T` is a
//! persistent set (C1): along any path from the state made of steps of
//! processes outside `T`, each step is by closure an operation on other
//! objects than `T`'s mailboxes or a plain operation of the opposite kind
//! on one of them, so it commutes with every step of `T` and leaves it
//! enabled and the same (a receive enabled here finds the same head, a
//! send enabled here still finds room). With the strong cycle proviso
//! below (every step of `T` must reach a state never seen, else the state
//! is expanded in full), the reduced graph keeps every end state and
//! failure, as for a set of one (Godefroid 1996, persistent sets; Valmari's
//! stubborn sets).
//!
//! Time cannot break the argument: it moves only when nobody can step, so
//! no timer fires before a safe step that could run. Invariants read the
//! whole state, so a model with invariants is searched without reduction.
//! The cycle proviso (C3: no state's expansion is postponed forever around
//! a cycle) takes its strong form: a reduced expansion is allowed only to
//! states never visited before, depth-first or breadth-first (for a
//! stubborn set, each of its steps; one that reaches a state already seen
//! turns the expansion into a full one), so every cycle of the reduced
//! graph has a fully expanded state: along a reduced step the state
//! reached was first found by that step, so a cycle of reduced steps
//! would have each state found after the one before it.

use super::ctx::{Passed, Started};
use super::world::{Slot, Status, World};
use crate::machine::{Machine, MailboxUse};
use crate::trace::Target;

/// What one step touches, as the reduction judges it (module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Foot {
    /// Nothing another process can see: no operation, or only the outcome
    /// of its own completed wait.
    Local,
    /// A plain send (`send`) or a plain receive on one system mailbox open
    /// to all (`key`), or a try that went; for a send, one that no process
    /// selects over; after the tries in `seen` that did not go.
    Mailbox {
        send: bool,
        key: (u8, u64),
        seen: Seen,
    },
    /// Only tries that did not go (module docs, "Guarded choices").
    Seen(Seen),
    /// Anything else: dependent with every step of every process.
    Global,
}

/// The tries a step made that did not go, each on a system mailbox open to
/// all (module docs, "Guarded choices"): what the step read and passed
/// over, so that whatever could make one of them go does not commute with
/// the step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Seen {
    /// Each: the mailbox, and whether a send found it full (else a receive
    /// found it empty).
    at: [Option<((u8, u64), bool)>; Passed::MAX],
}

impl Seen {
    /// The mailboxes of `passed`, or `None` when the step cannot be judged
    /// so (an earlier operation was not a try that did not go, or it named
    /// something else than an open system mailbox).
    fn of<M>(world: &World<M>, pid: mkipc_kernel::Pid, passed: &Passed) -> Option<Seen> {
        if passed.unjudged {
            return None;
        }
        let mut seen = Seen::default();
        for (slot, t) in seen.at.iter_mut().zip(passed.tries) {
            if let Some((send, name)) = t {
                let key = world.kernel.object_key(pid, name)?;
                if !world.open_mailboxes.contains(&key) {
                    return None;
                }
                *slot = Some((key, send));
            }
        }
        Some(seen)
    }

    fn with(mut self, key: (u8, u64), send: bool) -> Option<Seen> {
        *self.at.iter_mut().find(|s| s.is_none())? = Some((key, send));
        Some(self)
    }
}

/// The footprint of the step process `i` took, given that it passed the
/// engine's checks for a candidate (no spawn, choice, `Ctx::ipc`, pause,
/// exit, timeout, failure or carried right): local if it started no
/// operation; a mailbox step if its (last) operation was a plain one, or
/// a try that went, on a system mailbox (and, a send, no process alive may
/// select over that mailbox), after only tries that did not go on system
/// mailboxes (`seen`); only those tries if its last one did not go either;
/// else global. `slots` is the state after the step, the kernel in it.
pub(crate) fn footprint<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    started: Option<Started>,
) -> Foot {
    let Some(op) = started else {
        return Foot::Local;
    };
    let Some(seen) = Seen::of(world, slots[i].pid, &op.passed) else {
        return Foot::Global;
    };
    let tried = |key| {
        op.went.is_some()
            && op
                .name
                .is_some_and(|n| world.kernel.object_key(slots[i].pid, n) == Some(key))
    };
    if seen
        .at
        .iter()
        .flatten()
        .map(|&(k, _)| k)
        .chain(
            op.name
                .and_then(|n| world.kernel.object_key(slots[i].pid, n))
                .filter(|&k| tried(k)),
        )
        .any(|k| !tries_commute(world, slots, k))
    {
        return Foot::Global;
    }
    let Some(name) = op.name.filter(|_| op.plain || op.went.is_some()) else {
        return Foot::Global;
    };
    let Some(key) = world.kernel.object_key(slots[i].pid, name) else {
        return Foot::Global;
    };
    if !world.open_mailboxes.contains(&key) {
        return Foot::Global;
    }
    if op.went == Some(false) {
        return seen.with(key, op.send).map_or(Foot::Global, Foot::Seen);
    }
    // On a rendezvous mailbox, an operation that blocks makes its partner's
    // complete at once, inside the partner's own step (the partner goes on
    // with the rest of that step), where the other order leaves the partner
    // parked, to go on later: the two orders do not commute.
    if !world.buffered_mailboxes.contains(&key) && matches!(slots[i].status, Status::Waiting { .. })
    {
        return Foot::Global;
    }
    let Some(label) = world.label_of(key) else {
        return Foot::Global;
    };
    // A select picks the oldest message across its sources by the
    // kernel's global arrival order, which every send writes: with a
    // select over the mailbox anywhere, a send to it does not commute with
    // sends to the select's other sources either.
    let selected = |s: &Slot<M>| {
        !matches!(s.status, Status::Ended(_))
            && s.machine.may_use_mailbox(label, MailboxUse::Select)
    };
    if op.send && slots.iter().any(selected) {
        return Foot::Global;
    }
    // A receiver that waited is handed the message, which then keeps its
    // place but can no longer be displaced: a later `DropOldest` send of
    // the sender's own (or a send carrying rights) could tell that order
    // from the one where the receiver came after the send.
    if op.send && slots[i].machine.may_use_mailbox(label, MailboxUse::Other) {
        return Foot::Global;
    }
    Foot::Mailbox {
        send: op.send,
        key,
        seen,
    }
}

/// The footprint of a step of footprint `foot` that also took a message
/// handed over while its process waited on the mailbox `key` (`None`: not
/// one mailbox), freeing the message's place there (the kernel keeps it
/// until taken): the same as a plain receive from that mailbox, which
/// frees a place too, when the step did nothing else or only a plain
/// receive from it again; otherwise global.
pub(crate) fn freeing_place<M>(world: &World<M>, foot: Foot, key: Option<(u8, u64)>) -> Foot {
    let Some(key) = key.filter(|k| world.open_mailboxes.contains(k)) else {
        return Foot::Global;
    };
    match foot {
        Foot::Local => Foot::Mailbox {
            send: false,
            key,
            seen: Seen::default(),
        },
        Foot::Mailbox {
            send: false,
            key: k,
            ..
        } if k == key => foot,
        _ => Foot::Global,
    }
}

/// Whether process `j`, which did not take the step of footprint `foot`,
/// may now or later, by its wait or by what it declares
/// ([`Machine::may_use_mailbox`]), do something that does not commute
/// with that step: on the same mailbox, a rival operation (a send against
/// a send, a receive against a receive), a select, a timed operation, a
/// try or a send that fails or drops; or any wait that may include it.
/// A process that ended does nothing more; a global step conflicts with
/// every process alive.
pub(crate) fn conflicts<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    foot: Foot,
    j: usize,
) -> bool {
    let s = &slots[j];
    let (send, key) = match foot {
        Foot::Local => return false,
        _ if matches!(s.status, Status::Ended(_)) => return false,
        Foot::Global => return true,
        Foot::Seen(seen) => return seen_conflicts(world, s, &seen),
        Foot::Mailbox { seen, .. } if seen_conflicts(world, s, &seen) => return true,
        Foot::Mailbox { send, key, .. } => (send, key),
    };
    match &s.status {
        Status::Waiting { deadline, .. } if waits_on(world, s, key, send, deadline.is_some()) => {
            return true;
        }
        Status::TimedOut { .. } if waits_on(world, s, key, send, true) => return true,
        _ => {}
    }
    let Some(label) = world.label_of(key) else {
        return true;
    };
    let rival = if send {
        MailboxUse::Send
    } else {
        MailboxUse::Receive
    };
    let m = &s.machine;
    m.may_use_mailbox(label, rival)
        || m.may_use_mailbox(label, MailboxUse::Select)
        || m.may_use_mailbox(label, MailboxUse::TrySend)
        || m.may_use_mailbox(label, MailboxUse::Other)
}

/// Whether a try on the system mailbox `key` may be judged by what it did
/// (module docs, "Guarded choices"): no receiver waits there eagerly now,
/// nor may later. A receiver that waited and was handed a message holds
/// the message's place until it takes it, so a try-send sees the mailbox
/// full, where with the receive made after the send the place is free: a
/// plain send and a plain receive commute only up to that (the machine
/// law), which a try tells apart. Receivers wait eagerly wherever lazy
/// blocking does not apply to them ([`lazy_mailbox`]): on a rendezvous
/// mailbox, or where some process may use it otherwise than plainly or
/// receive from it among other sources.
fn tries_commute<M: Machine>(world: &World<M>, slots: &[Slot<M>], key: (u8, u64)) -> bool {
    let Some(label) = world.label_of(key) else {
        return false;
    };
    let alive = |s: &Slot<M>| !matches!(s.status, Status::Ended(_));
    let waiting = slots.iter().filter(|s| alive(s)).any(|s| {
        matches!(s.status, Status::Waiting { .. } | Status::TimedOut { .. })
            && waits_on(world, s, key, false, false)
    });
    let eager = slots.iter().enumerate().any(|(j, s)| {
        alive(s)
            && (s.machine.may_use_mailbox(label, MailboxUse::Receive)
                || s.machine.may_use_mailbox(label, MailboxUse::Select))
            && !lazy_mailbox(world, slots, j, key)
    });
    !waiting && !eager
}

/// Whether process `s` (alive), now or later, may make one of the tries in
/// `seen` go: by its wait on the mailbox (whichever way: a receiver waiting
/// there holds a handed message's place, and taking it frees the place), or,
/// for a send that found no room, by a receive from the mailbox of any kind
/// (room), for a receive that found no message, by a send of any kind.
fn seen_conflicts<M: Machine>(world: &World<M>, s: &Slot<M>, seen: &Seen) -> bool {
    seen.at.iter().flatten().any(|&(key, full)| {
        let waits = match &s.status {
            Status::Waiting { .. } | Status::TimedOut { .. } => {
                waits_on(world, s, key, true, true) || waits_on(world, s, key, false, true)
            }
            _ => false,
        };
        let Some(label) = world.label_of(key) else {
            return true;
        };
        let m = &s.machine;
        let makes_it_go = if full {
            [MailboxUse::Receive, MailboxUse::Select, MailboxUse::Other]
        } else {
            [MailboxUse::Send, MailboxUse::TrySend, MailboxUse::Other]
        };
        waits || makes_it_go.iter().any(|&how| m.may_use_mailbox(label, how))
    })
}

/// Whether the step process `i` took, of footprint `foot`, is *safe*: an
/// ample set of one (module docs), no other process conflicting with it.
/// `slots` is the state after the step, the kernel in it.
pub(crate) fn step_is_safe<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    foot: Foot,
) -> bool {
    foot != Foot::Global && (0..slots.len()).all(|j| j == i || !conflicts(world, slots, foot, j))
}

/// The smallest stubborn set of a state (module docs, "Stubborn sets"):
/// `moves` are the processes whose step there is a transition, each with
/// that step's footprint; `slots` the state, its kernel in the working
/// kernel. A candidate starts from one process whose step is not global
/// and takes in every process that conflicts with a step already in it;
/// it fails when one of those cannot step now (it waits, pauses, or only
/// blocks) or its step is global. Returns the smallest candidate with
/// fewer processes than `moves` (a tie goes to the one holding `prefer`),
/// or `None` when there is none: the state is expanded in full.
pub(crate) fn stubborn_set<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    moves: &[(u32, Foot)],
    prefer: u32,
) -> Option<Vec<u32>> {
    let foot_of = |j: usize| {
        moves
            .iter()
            .find(|&&(p, _)| p as usize == j)
            .map(|&(_, f)| f)
    };
    let mut best: Option<Vec<u32>> = None;
    for &(seed, foot) in moves {
        if foot == Foot::Global {
            continue;
        }
        let mut set = vec![seed];
        let mut work = vec![(seed, foot)];
        let mut ok = true;
        'grow: while let Some((p, f)) = work.pop() {
            for j in 0..slots.len() {
                if j == p as usize || set.contains(&(j as u32)) || !conflicts(world, slots, f, j) {
                    continue;
                }
                match foot_of(j) {
                    Some(g) if g != Foot::Global => {
                        set.push(j as u32);
                        work.push((j as u32, g));
                    }
                    _ => {
                        ok = false;
                        break 'grow;
                    }
                }
            }
            if set.len() >= moves.len() {
                ok = false;
                break;
            }
        }
        if !ok {
            continue;
        }
        let better = match &best {
            None => true,
            Some(b) => {
                set.len() < b.len()
                    || (set.len() == b.len() && set.contains(&prefer) && !b.contains(&prefer))
            }
        };
        if better {
            best = Some(set);
        }
    }
    best
}

/// Whether process `s`'s pending operation conflicts with a plain send
/// (`send`) or receive on the mailbox `key`: a rival of the same kind, a
/// timed partner, or a select (which might include it).
fn waits_on<M>(world: &World<M>, s: &Slot<M>, key: (u8, u64), send: bool, timed: bool) -> bool {
    match s.op {
        Some((is_send, Target::Name(n))) => {
            world.kernel.object_key(s.pid, n) == Some(key) && (is_send == send || timed)
        }
        Some((_, Target::AnyOf(_))) | None => true,
        Some((_, Target::Task(_) | Target::AnyTask)) => false,
    }
}

/// Puts first (last in `enabled`, which the search pops from the end) the
/// move most likely to be safe: the highest-index process whose wait has
/// completed, whose step takes the outcome and is often local (a `select`
/// woken by a notification starts a new round and yields). Only the first
/// move of a state is judged, so this is where the reduction can apply;
/// the order is otherwise free (every order explores a correct graph).
pub(crate) fn probe_first<M>(enabled: &mut [u32], slots: &[Slot<M>]) {
    let resumes = |&p: &u32| matches!(slots[p as usize].status, Status::Waiting { .. });
    if let Some(k) = enabled.iter().rposition(resumes) {
        enabled[k..].rotate_left(1);
    }
}

/// Whether a receive of process `i` from several `names` that blocked
/// (untimed) may block lazily (DESIGN.md, "Partial-order reduction", lazy
/// blocking), as a plain receive on one buffered mailbox does: every name
/// denotes a buffered system mailbox open to all ([`World::mailbox`]) that
/// no other process uses otherwise than plainly ([`lazy_mailbox`]), or a
/// port of non-zero capacity whose receive right it holds (nobody else can
/// receive from it) and to which nobody holds a send right (only send-once
/// rights: notifications and replies, which bypass the capacity). Then
/// whether it waited first and was handed the first message to arrive, or received after that
/// message arrived, is the same by the machine law: the oldest message
/// across the names is the first to have arrived since it blocked (they
/// were all empty then), and a message handed over or queued leaves the
/// other queues alike. A rendezvous queue is excluded: there a waiting
/// receiver is what lets a send complete.
pub(crate) fn lazy_sources<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    names: &[mkipc_kernel::PortName],
) -> bool {
    let kernel = &world.kernel;
    let pid = slots[i].pid;
    !names.is_empty()
        && names.iter().all(|&n| match kernel.object_key(pid, n) {
            Some(k @ (2, _)) => lazy_mailbox(world, slots, i, k),
            Some((0, _)) => kernel
                .port_status(pid, n)
                .is_ok_and(|s| s.capacity != mkipc_kernel::Capacity::Zero && s.send_rights == 0),
            _ => false,
        })
}

/// Whether process `i` may block lazily on the system mailbox `key`
/// (module docs of [`lazy_sources`]; DESIGN.md, lazy blocking): it is
/// buffered, and no other live process may use it otherwise than with a
/// plain send, a receive that waits forever, or a send that gives up or
/// drops its own message when full ([`MailboxUse::TrySend`]). A waiting
/// receiver is handed a message that, lazily, stays queued until it steps;
/// the message keeps its place in the capacity until taken either way (the
/// kernel's rule: `mkipc_kernel::capacity`), so a send sees the same
/// fullness in both, and among several waiting receivers whoever takes
/// first takes the oldest (the kernel's group hand-off), as whoever steps
/// first would lazily; but a try or timed receive, or a select that takes
/// without waiting, could take the message the waiting receiver was
/// handed, and a `DropOldest` send could displace it ([`MailboxUse::Other`]).
///
/// The argument needs every receiver of the mailbox to block the same way:
/// with one lazy and one eager, the eager one can wait *behind* a message
/// promised to the other (who waited first), a state no lazy history has
/// (lazily, it would take the message itself), and a try sees the mailbox
/// both empty and full there (found by the soundness test: a `select`
/// trying a receive, then a send, both missing). So `i` may not block
/// lazily while another live process may receive from the mailbox and `i`
/// itself may use it otherwise than plainly (that process would wait
/// eagerly), or may receive from it among other sources (a select waits
/// eagerly unless all its sources allow lazy blocking).
pub(crate) fn lazy_mailbox<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    key: (u8, u64),
) -> bool {
    world.buffered_mailboxes.contains(&key)
        && world.label_of(key).is_some_and(|label| {
            let others = || {
                slots
                    .iter()
                    .enumerate()
                    .filter(move |&(j, s)| j != i && !matches!(s.status, Status::Ended(_)))
                    .map(|(_, s)| &*s.machine)
            };
            // A try-send by another process sees a handed message's place
            // as taken, as it would the message still queued; and with
            // rival receivers, whoever takes first takes the oldest handed
            // message (the kernel's group hand-off), as the first to step
            // would lazily. What could take or displace a handed message
            // tells the orders apart.
            let uses = |m: &M, how| m.may_use_mailbox(label, how);
            let intrudes = |m: &M| uses(m, MailboxUse::Other) || uses(m, MailboxUse::Select);
            let receives = |m: &M| uses(m, MailboxUse::Receive) || uses(m, MailboxUse::Select);
            let eager_beside =
                || uses(&slots[i].machine, MailboxUse::Other) && others().any(receives);
            !others().any(intrudes) && !eager_beside()
        })
}
