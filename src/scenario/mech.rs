//! The course's mechanisms, built on the kernel's queues: pipes and FIFOs
//! (with `close` of an end, end of file and broken pipe), shared variables
//! (`load`, `store`) and locks (`lock`, `unlock`).
//!
//! Every one of them is a kernel object, so the simulator runs them and
//! the model checker snapshots them with the rest of the kernel: nothing
//! of their state lives outside the kernel and the scripts' machines.
//!
//! - A **pipe** (`[[pipe]]`) is a port: its receive right is the read end
//!   (held by `reader`), its send rights are the write ends (held by
//!   `writers`, copied to a process they `spawn`, as `fork` copies file
//!   descriptors). When the run is set up, the port asks the kernel for a
//!   no-senders notification *on itself*: when the last write end goes
//!   (every writer ran `close`, or exited), the kernel queues that
//!   notification behind every message already written, so a read returns
//!   end of file only after the data. The read end seeing it is end of
//!   file; from then on every read of that end is end of file too. When
//!   the read end goes (`close` by the reader, or its exit), the port dies
//!   and a write fails with "destination is dead": a broken pipe.
//! - A **FIFO** (`[[fifo]]`) is the same object with a name in the file
//!   system: in a scenario its readers and writers are declared processes
//!   that need not be related (no common spawner); the report calls it
//!   `fifo`.
//! - A **shared variable** (`[[shared]]`) is a system mailbox of capacity
//!   one holding one message: the variable's value (put there when the run
//!   is set up). `load v x` takes the message and puts it back (x gets the
//!   value), `store v EXPR` takes it and puts the new value. While one
//!   process is between the take and the put, the cell is empty and every
//!   other access waits on it: each load and each store is one atomic
//!   memory access, and a `load` then a `store` is not (another process's
//!   store can fall between them: the lost update).
//! - A **lock** (`[[lock]]`) is a system mailbox of capacity one holding a
//!   token: `lock m` takes it (waiting while another process holds it),
//!   `unlock m` puts it back. A process waiting for a lock waits on a
//!   receive, so a lock-order deadlock is a deadlock the simulator and the
//!   checker name.
//!
//! Why not a memory server process per segment (Mach's memory objects are
//! ports)? A server needs a request and a reply per access, a reply port
//! per client and a process in every report, and its extra states multiply
//! the checker's work; the one-slot mailbox gives the same atomic
//! accesses, lives in the kernel (so snapshots and hashes cover it), and
//! needs no process. A shared `Arc<Mutex<..>>` between machines would be
//! invisible to the checker's snapshots and unsound.
//!
//! The messages of shared variables and locks are not counted as messages
//! of the run (`no_message_lost` would otherwise see the value left in
//! the cell).

use serde::Deserialize;
use toml::Spanned;

use mkipc_kernel::runtime::{Begin, Destination};
use mkipc_kernel::{Kernel, Message, NotifyKind, OnFull, Pid, PortName, ReceiveError};

use super::error::ScenarioError;
use super::expr::Expr;
use super::script::{ScriptCtx, Words};
use super::value::Value;
use super::{Op, Queue, QueueRole};

/// The symbol a read at end of file gives ([`Value::Sym`]).
pub(crate) const EOF: &str = "EOF";

/// A statement of the mechanisms (see the module docs).
#[derive(Clone, Debug)]
pub enum MechOp {
    /// `close P`: close this process's end of a pipe or FIFO (the read
    /// end if it holds it, else its write end).
    Close(usize),
    /// `load V x`: `x` = the shared variable `V`, in one atomic access.
    Load {
        /// The shared variable.
        cell: usize,
        /// The variable's slot.
        var: usize,
    },
    /// `store V EXPR`: the shared variable `V` = `EXPR`, in one atomic access.
    Store {
        /// The shared variable.
        cell: usize,
        /// The new value.
        value: Expr,
    },
    /// `lock M`: take the lock (wait while another process holds it).
    Lock(usize),
    /// `unlock M`: give it back.
    Unlock(usize),
}

impl MechOp {
    /// The statement's first word.
    pub fn keyword(&self) -> &'static str {
        match self {
            MechOp::Close(_) => "close",
            MechOp::Load { .. } => "load",
            MechOp::Store { .. } => "store",
            MechOp::Lock(_) => "lock",
            MechOp::Unlock(_) => "unlock",
        }
    }

    /// The queue the statement is about.
    pub fn queue(&self) -> usize {
        match self {
            MechOp::Close(q) | MechOp::Lock(q) | MechOp::Unlock(q) => *q,
            MechOp::Load { cell, .. } | MechOp::Store { cell, .. } => *cell,
        }
    }
}

/// A `[[pipe]]` or `[[fifo]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPipe {
    pub name: Spanned<String>,
    /// How many messages it buffers (default 16).
    pub capacity: Option<Spanned<toml::Value>>,
    /// The process holding the read end.
    pub reader: Spanned<String>,
    /// The processes holding a write end.
    #[serde(default)]
    pub writers: Vec<Spanned<String>>,
}

/// A `[[shared]]` variable as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawShared {
    pub name: Spanned<String>,
    /// Its initial value (default 0).
    #[serde(default)]
    pub value: i64,
}

/// A `[[lock]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLock {
    pub name: Spanned<String>,
}

/// The default capacity of a pipe (its buffer, in messages).
pub(crate) const PIPE_CAPACITY: usize = 16;

/// Parses one of the mechanisms' statements; `None` when `w` is none.
pub(crate) fn statement(
    cx: &ScriptCtx<'_>,
    script: &str,
    w: &Words<'_>,
) -> Result<Option<Op>, ScenarioError> {
    let (at, word, args, arg_at) = (w.at, w.word, &w.args, w.arg_at);
    let queue_of = |name: &str, want: &[QueueRole], what: &str| -> Result<usize, ScenarioError> {
        let q = cx.queue_name(name, arg_at)?;
        let role = cx.queues[q].role;
        let fits = want
            .iter()
            .any(|r| std::mem::discriminant(r) == std::mem::discriminant(&role));
        if !fits {
            return Err(cx.err(
                arg_at,
                format!(
                    "`{word} {name}`: `{name}` is a {}, not {what}",
                    cx.queues[q].kind_name()
                ),
            ));
        }
        Ok(q)
    };
    let op = match word {
        "close" => {
            let [p] = args.as_slice() else {
                return Err(cx.err(at, "write `close PIPE`"));
            };
            let q = queue_of(p, &[QueueRole::Pipe, QueueRole::Fifo], "a pipe or FIFO")?;
            let me = cx.me;
            let holds = match &cx.queues[q].kind {
                super::QueueKind::Port { receiver, senders } => {
                    *receiver == me || senders.contains(&me)
                }
                super::QueueKind::Mailbox { .. } => false,
            };
            if !holds {
                return Err(cx.err(
                    arg_at,
                    format!(
                        "process `{}` holds no end of `{p}` to close (it is neither its `reader` nor one of its `writers`)",
                        cx.procs[me].0
                    ),
                ));
            }
            MechOp::Close(q)
        }
        "load" => {
            let [v, x] = args.as_slice() else {
                return Err(cx.err(at, "write `load SHARED VARIABLE`, e.g. `load counter c`"));
            };
            let cell = queue_of(v, &[QueueRole::Shared(0)], "a shared variable")?;
            let var_at = arg_at + w.rest.find(x).unwrap_or(0);
            if *x == "id"
                || x.starts_with(|c: char| c.is_ascii_uppercase())
                || !x.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || cx.queues.iter().any(|q| q.name == *x)
            {
                return Err(cx.err(
                    var_at,
                    format!("`{x}` cannot be assigned: write a variable name (lower case, not `id` nor a queue)"),
                ));
            }
            MechOp::Load {
                cell,
                var: cx.names.bind(x),
            }
        }
        "store" => {
            let Some(v) = args.first() else {
                return Err(cx.err(
                    at,
                    "write `store SHARED EXPRESSION`, e.g. `store counter c + 1`",
                ));
            };
            let cell = queue_of(v, &[QueueRole::Shared(0)], "a shared variable")?;
            let value_text = w.rest.trim_start()[v.len()..].trim();
            if value_text.is_empty() {
                return Err(cx.err(
                    at,
                    "write `store SHARED EXPRESSION`, e.g. `store counter c + 1`",
                ));
            }
            MechOp::Store {
                cell,
                value: cx.expr(script, value_text)?,
            }
        }
        "lock" | "unlock" => {
            let [m] = args.as_slice() else {
                return Err(cx.err(at, format!("write `{word} LOCK`")));
            };
            let q = queue_of(m, &[QueueRole::Lock], "a lock")?;
            if word == "lock" {
                MechOp::Lock(q)
            } else {
                MechOp::Unlock(q)
            }
        }
        _ => return Ok(None),
    };
    Ok(Some(Op::Mech(op)))
}

/// Why a plain statement cannot use queue `q` (a shared variable or lock
/// is reached only through its own statements; a pipe is not for `call`
/// nor for `select`), if it cannot.
pub(crate) fn plain_use_refusal(queue: &Queue, what: &str) -> Option<String> {
    match queue.role {
        QueueRole::Shared(_) => Some(format!(
            "`{}` is a shared variable: read it with `load {} x`, write it with `store {} EXPR`",
            queue.name, queue.name, queue.name
        )),
        QueueRole::Lock => Some(format!(
            "`{}` is a lock: take it with `lock {}`, give it back with `unlock {}`",
            queue.name, queue.name, queue.name
        )),
        QueueRole::Pipe | QueueRole::Fifo if what == "call" || what == "select" => Some(format!(
            "`{}` is a {}: a one-way stream of messages, read with `receive` (no `call`, no `select` arm)",
            queue.name,
            queue.kind_name()
        )),
        QueueRole::Queue | QueueRole::Pipe | QueueRole::Fifo => None,
    }
}

/// What a runner does for queue `q` once it exists, held by the set-up
/// task `init` under `name`: a pipe asks for its no-senders notification
/// on itself (end of file); a shared variable gets its initial value, a
/// lock its token.
pub(crate) fn prime(
    kernel: &Kernel,
    init: Pid,
    queue: &Queue,
    name: PortName,
) -> Result<(), String> {
    match queue.role {
        QueueRole::Queue => Ok(()),
        QueueRole::Pipe | QueueRole::Fifo => kernel
            .request_notification(init, name, NotifyKind::NoSenders, name)
            .map_err(|e| e.to_string()),
        QueueRole::Shared(_) | QueueRole::Lock => match first_message(queue) {
            Some(msg) => put(kernel, init, name, msg),
            None => Ok(()),
        },
    }
}

/// The message a shared variable (its initial value) or a lock (its
/// token) holds when the run starts.
pub(crate) fn first_message(queue: &Queue) -> Option<Message> {
    match queue.role {
        QueueRole::Shared(v) => Some(cell_message(Some(&Value::Int(v)))),
        QueueRole::Lock => Some(cell_message(None)),
        QueueRole::Queue | QueueRole::Pipe | QueueRole::Fifo => None,
    }
}

/// Puts a cell's first message in its empty mailbox.
fn put(kernel: &Kernel, init: Pid, name: PortName, msg: Message) -> Result<(), String> {
    let waker: mkipc_kernel::runtime::Waker = std::sync::Arc::new(NoWake).into();
    match kernel.send_begin(init, Destination::Name(name), msg, OnFull::Fail, &|| {
        waker.clone()
    }) {
        Begin::Done(Ok(_)) => Ok(()),
        Begin::Done(Err(e)) => Err(e.to_string()),
        Begin::Blocked(_) => Err("the cell's first value could not be stored".into()),
    }
}

struct NoWake;
impl mkipc_kernel::runtime::Wake for NoWake {
    fn wake(&self) {}
}

/// The message a cell holds: offered at 0, then its value (the scripts'
/// codec, `super::value`), id 1: the same content whoever stored it, so
/// equal memories are equal states.
pub(crate) fn cell_message(value: Option<&Value>) -> Message {
    match value {
        None => Message::from_u64(1, 0),
        Some(v) => {
            let mut body = 0u64.to_le_bytes().to_vec();
            body.extend_from_slice(&v.encode());
            Message::new(1, body)
        }
    }
}

/// Whether a message received on a pipe is its end of file (the kernel's
/// no-senders notification).
pub(crate) fn is_eof(msg: &Message) -> bool {
    matches!(
        msg.notification(),
        Some(mkipc_kernel::Notification::NoSenders(_))
    )
}

/// What a failed write to a pipe says.
pub(crate) fn broken_pipe(queue: &Queue) -> String {
    format!(
        "broken pipe: the read end of {} `{}` is closed (its reader closed it or ended), so nobody can ever read this (a Unix writer gets EPIPE and is killed by SIGPIPE; give the process `expect_error = true` if that is its expected end, as for `yes | head`)",
        queue.kind_name(),
        queue.name
    )
}

/// What a read at end of file that the script does not take says.
pub(crate) fn eof_error(queue: &Queue) -> String {
    format!(
        "end of file: every write end of {} `{}` is closed and everything written was read (receive it into a variable to test for {EOF}, or read it in a `forever` loop, which it ends)",
        queue.kind_name(),
        queue.name
    )
}

/// The receive errors that mean a cell's mailbox is gone (never, unless
/// the run is being torn down).
pub(crate) fn cell_gone(e: &ReceiveError) -> String {
    format!("the shared memory is gone: {e}")
}
