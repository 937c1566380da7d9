//! Partial-order reduction for the stateful search: which steps are
//! *safe*, so that a state may be expanded by that one step alone.
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
//!   taken carries rights.
//! * **A send by the sole sender**: a plain send (`OnFull::Block`, no
//!   rights carried) to a system mailbox open to all (`World::mailbox`),
//!   of any capacity, when no other live process may send to it, no
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
//! allowed on either side; nor is a rendezvous special (capacity does not
//! enter the argument). Every other step is unsafe: a timeout (its
//! deadline races with the partner), a pause, an exit (it releases rights:
//! ports die, notifications go out), a spawn, a port operation (a port's
//! receiver and senders are tied by rights and notifications), a select,
//! a choice, anything through `Ctx::ipc`.
//!
//! Which move is tried first matters, since only it is judged:
//! [`probe_first`] puts first the highest-index process whose wait has
//! completed (taking the outcome is often a local step), else the search's
//! own order (highest index first) stands.
//!
//! Time cannot break the argument: it moves only when nobody can step, so
//! no timer fires before a safe step that could run. Invariants read the
//! whole state, so a model with invariants is searched without reduction.
//! The cycle proviso (C3: no state's expansion is postponed forever around
//! a cycle) takes its strong form: a reduced expansion is allowed only to
//! a state never visited before, depth-first or breadth-first, so every
//! cycle of the reduced graph has a fully expanded state.

use super::ctx::Started;
use super::world::{Slot, Status, World};
use crate::machine::{Machine, MailboxUse};
use crate::trace::Target;

/// Whether the operation process `i` started in its step (if any) is safe
/// (module docs); `slots` is the state after the step, the kernel in it.
pub(crate) fn operation_is_safe<M: Machine>(
    world: &World<M>,
    slots: &[Slot<M>],
    i: usize,
    started: Option<Started>,
) -> bool {
    let Some(op) = started else {
        return true; // a local step
    };
    if !op.plain {
        return false;
    }
    let Some(name) = op.name else {
        return false;
    };
    let kernel = &world.kernel;
    let Some(key) = kernel.object_key(slots[i].pid, name) else {
        return false;
    };
    if !world.open_mailboxes.contains(&key) {
        return false;
    }
    let Some(label) = world.label_of(key) else {
        return false;
    };
    // The use of a rival (another sole sender or receiver).
    let rival = if op.send {
        MailboxUse::Send
    } else {
        MailboxUse::Receive
    };
    if op.send && slots[i].machine.may_use_mailbox(label, MailboxUse::Select) {
        return false;
    }
    for (j, s) in slots.iter().enumerate() {
        if j == i {
            continue;
        }
        match &s.status {
            Status::Ended(_) => continue,
            Status::Waiting { deadline, .. } => {
                if waits_on(world, s, key, op.send, deadline.is_some()) {
                    return false;
                }
            }
            Status::TimedOut { .. } => {
                if waits_on(world, s, key, op.send, true) {
                    return false;
                }
            }
            Status::Runnable | Status::Paused { .. } => {}
        }
        let m = &s.machine;
        if m.may_use_mailbox(label, rival)
            || m.may_use_mailbox(label, MailboxUse::Select)
            || m.may_use_mailbox(label, MailboxUse::Other)
        {
            return false;
        }
    }
    true
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

/// Whether a receive from several `names` that blocked (untimed) may block
/// lazily (DESIGN.md, "Partial-order reduction", lazy blocking), as a plain
/// receive on one buffered mailbox does: every name denotes a buffered
/// system mailbox open to all ([`World::mailbox`]) or a port of non-zero
/// capacity whose receive right `pid` holds (nobody else can receive from
/// it). Then whether it waited
/// first and was handed the first message to arrive, or received after that
/// message arrived, is the same by the machine law: the oldest message
/// across the names is the first to have arrived since it blocked (they
/// were all empty then), and a message handed over or queued leaves the
/// other queues alike. A rendezvous queue is excluded: there a waiting
/// receiver is what lets a send complete.
pub(crate) fn lazy_sources<M>(
    world: &World<M>,
    pid: mkipc_kernel::Pid,
    names: &[mkipc_kernel::PortName],
) -> bool {
    let kernel = &world.kernel;
    !names.is_empty()
        && names.iter().all(|&n| match kernel.object_key(pid, n) {
            Some(k @ (2, _)) => world.buffered_mailboxes.contains(&k),
            Some((0, _)) => kernel
                .port_status(pid, n)
                .is_ok_and(|s| s.capacity != mkipc_kernel::Capacity::Zero),
            _ => false,
        })
}
