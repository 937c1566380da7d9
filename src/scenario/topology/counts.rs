//! The other way to be stuck: a wait that outlives everyone who could end
//! it (a receive after the last sender has ended), a deadlock with no
//! cycle. The topology cannot rule it out; counting messages sometimes can.
//!
//! The argument applies to *counted* scenarios: no faults, no spawned
//! process, and scripts made only of blocking `send`s of constant values
//! to queues, plain `receive`s (no timeout, no pattern but `_`, no
//! `expect`), `work`, `sleep` and `repeat N` (so each process sends and
//! receives an exact number of messages on each queue), where no process
//! both sends to and receives from one queue, and for each queue with `s`
//! sends and `r` receives in all:
//!
//! * a port, or a mailbox whose owner is its only receiver (the queue dies
//!   with that process): `s == r`;
//! * a system mailbox of capacity `c`: `r <= s <= r + c`.
//!
//! Then no process ever fails: the first failure would be a send to (or a
//! wait on) a queue whose receiver has ended after its `r` receives, which
//! took `r = s` messages already sent, so no send was left. And no wait is
//! left with everyone who could end it gone: a receiver still waiting once
//! every sender has ended finds `s >= r` messages sent, more than were
//! taken, so the queue is not empty; a sender still waiting once every
//! receiver has ended finds the queue full with `r + c` sends done, which
//! is already all of them.

use mkipc_kernel::{Capacity, KernelConfig, OnFull};

use crate::scenario::expr::ExprOp;
use crate::scenario::{
    Expr, Op, Pattern, QueueKind, Scenario, Stmt, MAX_VALUE_DEPTH, MAX_VALUE_SIZE,
};

/// `Ok` when the counting argument above rules out every wait left with no
/// one to end it; else why it does not apply.
pub(super) fn balanced(scn: &Scenario) -> Result<(), String> {
    if !scn.faults.is_empty() {
        return Err("a fault can kill a process midway".into());
    }
    let nq = scn.queues.len();
    let mut sends = vec![0u64; nq];
    let mut receives = vec![0u64; nq];
    let mut senders = vec![Vec::new(); nq];
    let mut receivers = vec![Vec::new(); nq];
    // The largest message body sent to each queue.
    let mut largest = vec![0usize; nq];
    for (p, proc) in scn.processes.iter().enumerate() {
        if proc.spawned {
            return Err(format!("`{}` is spawned, so it may never start", proc.name));
        }
        let mut stack: Vec<(std::slice::Iter<'_, Stmt>, u64)> = vec![(proc.script.iter(), 1)];
        while let Some((iter, times)) = stack.last_mut() {
            let times = *times;
            let Some(s) = iter.next() else {
                stack.pop();
                continue;
            };
            let beyond = || {
                format!(
                    "`{}` line {}: only `send` (of a constant), `receive`, `work`, `sleep` and `repeat N` have counts known in advance",
                    proc.name, s.line
                )
            };
            let overflow = || {
                format!(
                    "`{}` line {}: too many messages to count",
                    proc.name, s.line
                )
            };
            match &s.op {
                Op::Send {
                    queue,
                    on_full: OnFull::Block,
                    value,
                } => {
                    let body = match value {
                        None => 8,
                        Some(v) => 8 + constant_len(v).ok_or_else(beyond)?,
                    };
                    sends[*queue] = sends[*queue].checked_add(times).ok_or_else(overflow)?;
                    senders[*queue].push(p);
                    largest[*queue] = largest[*queue].max(body);
                }
                Op::Receive {
                    queue,
                    timeout: None,
                    // Not a binding pattern: it does not match a message
                    // without a value, which is then set aside for good.
                    pattern: None | Some(Pattern::Any),
                    expect: false,
                } => {
                    receives[*queue] = receives[*queue].checked_add(times).ok_or_else(overflow)?;
                    receivers[*queue].push(p);
                }
                Op::Work(_) | Op::Sleep(_) => {}
                Op::Repeat(n, body) => {
                    let times = times.checked_mul(*n).ok_or_else(overflow)?;
                    stack.push((body.iter(), times));
                }
                _ => return Err(beyond()),
            }
        }
    }
    for (q, queue) in scn.queues.iter().enumerate() {
        let (s, r) = (sends[q], receives[q]);
        if let Some(p) = senders[q].iter().find(|p| receivers[q].contains(p)) {
            return Err(format!(
                "`{}` both sends to and receives from `{}`",
                scn.processes[*p].name, queue.name
            ));
        }
        // The queue must never reach the kernel's memory ceiling, where a
        // send fails: at most `min(capacity, s)` messages wait in it.
        let queued = match queue.capacity {
            Capacity::Zero => 0,
            Capacity::Bounded(c) => s.min(c as u64),
            Capacity::Unbounded => s,
        };
        let cost = mkipc_kernel::introspect::queue_cost(largest[q], 0, false) as u64;
        let limit = KernelConfig::default().queue_memory_limit as u64;
        if queued.saturating_mul(cost) > limit {
            return Err(format!(
                "`{}` may hold {queued} messages, past the kernel's memory ceiling per queue",
                queue.name
            ));
        }
        let dies_with_receiver = match &queue.kind {
            QueueKind::Port { .. } => true,
            QueueKind::Mailbox { owner: Some(o), .. } => {
                if receivers[q].iter().any(|p| p != o) {
                    return Err(format!(
                        "mailbox `{}` dies with its owner `{}` while others still receive from it",
                        queue.name, scn.processes[*o].name
                    ));
                }
                true
            }
            QueueKind::Mailbox { owner: None, .. } => false,
        };
        if dies_with_receiver {
            if s != r {
                return Err(format!(
                    "`{}` gets {s} sends and {r} receives in all",
                    queue.name
                ));
            }
        } else {
            let room = match queue.capacity {
                Capacity::Zero => Some(0),
                Capacity::Bounded(c) => Some(c as u64),
                Capacity::Unbounded => None,
            };
            let too_many = room.is_some_and(|c| s > r.saturating_add(c));
            if s < r || too_many {
                return Err(format!(
                    "`{}` gets {s} sends and {r} receives in all (capacity {})",
                    queue.name, queue.capacity
                ));
            }
        }
    }
    Ok(())
}

/// The encoded length of a constant value (literals and tuples only), or
/// `None` if it reads a variable, computes, or breaks the value limits
/// (which would fail the send at run time).
fn constant_len(e: &Expr) -> Option<usize> {
    // (encoded length, depth, parts) of each value on the stack.
    let mut stack: Vec<(usize, usize, usize)> = Vec::new();
    for op in &e.code {
        match op {
            ExprOp::Push(v) => stack.push((v.encode().len(), v.depth(), v.size())),
            ExprOp::Tuple(n) => {
                let at = stack.len().checked_sub(*n)?;
                let parts = stack.split_off(at);
                let len = parts.iter().map(|p| p.0).sum::<usize>() + 5;
                let depth = 1 + parts.iter().map(|p| p.1).max().unwrap_or(0);
                let size = 1 + parts.iter().map(|p| p.2).sum::<usize>();
                stack.push((len, depth, size));
            }
            _ => return None,
        }
    }
    match stack.as_slice() {
        [(len, depth, size)] if *depth <= MAX_VALUE_DEPTH && *size <= MAX_VALUE_SIZE => Some(*len),
        _ => None,
    }
}
