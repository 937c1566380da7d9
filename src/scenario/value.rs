//! The values a script computes with and sends: integers, symbols, queue
//! names and tuples (which are also the arrays).
//!
//! A value is plain data (`Clone`, `Eq`, `Hash`, `Ord`), and it is small by
//! construction: at most [`MAX_VALUE_DEPTH`] tuples deep and
//! [`MAX_VALUE_SIZE`] parts in all, checked whenever one is built (a tuple
//! literal, `array(n, v)`, an element assignment, a decoded message), so no
//! value can grow without bound or make a recursive walk (drop, hash,
//! encode) deep.
//!
//! ## The message codec
//!
//! A message a script sends has, as its body, the 8-byte little-endian
//! moment it was offered (nanoseconds since the start of the run: the
//! receiver's latency figure), then, if the statement sent a value, the
//! value's encoding:
//!
//! | tag byte | then |
//! |---|---|
//! | `0` integer | 8 bytes, little-endian `i64` |
//! | `1` symbol | 4 bytes, little-endian index into the scenario's symbol table |
//! | `2` queue | 4 bytes, little-endian index of the port or mailbox in the file |
//! | `3` tuple | 4 bytes, little-endian count, then each part |
//!
//! A message with no value is exactly 8 bytes, as before values existed.
//! Symbols and queues are numbered in the order the file declares them, so
//! every process of a run (the os backend's too, which parse the same text)
//! agrees on them.
//!
//! ```
//! use mkipc::scenario::Value;
//! let v = Value::Tuple(vec![Value::Sym(0), Value::Int(-7)]);
//! let body = v.encode();
//! assert_eq!(Value::decode(&body), Some(v));
//! ```

use std::fmt;

/// How many tuples deep a value may be.
pub const MAX_VALUE_DEPTH: usize = 16;
/// How many parts (integers, symbols, queues, tuples) a value may have.
pub const MAX_VALUE_SIZE: usize = 4096;

/// A value of the script language.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Value {
    /// A whole number (also the booleans: 0 is false, anything else true).
    Int(i64),
    /// A symbol such as `ACQ`, by its index in [`Scenario::symbols`](super::Scenario::symbols).
    Sym(u32),
    /// A port or mailbox, by its index in [`Scenario::queues`](super::Scenario::queues).
    Queue(u32),
    /// A tuple `(a, b)`, or an array made by `array(n, v)`.
    Tuple(Vec<Value>),
}

impl Value {
    /// How many tuples deep this value is (0 for a scalar).
    pub fn depth(&self) -> usize {
        match self {
            Value::Tuple(parts) => 1 + parts.iter().map(Value::depth).max().unwrap_or(0),
            _ => 0,
        }
    }

    /// How many parts this value has, itself included.
    pub fn size(&self) -> usize {
        match self {
            Value::Tuple(parts) => 1 + parts.iter().map(Value::size).sum::<usize>(),
            _ => 1,
        }
    }

    /// Whether the value is within [`MAX_VALUE_DEPTH`] and [`MAX_VALUE_SIZE`].
    pub fn within_limits(&self) -> bool {
        self.depth() <= MAX_VALUE_DEPTH && self.size() <= MAX_VALUE_SIZE
    }

    /// Whether the value counts as true (a non-zero integer).
    pub fn truthy(&self) -> bool {
        !matches!(self, Value::Int(0))
    }

    /// The value's encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Value::Int(n) => {
                out.push(0);
                out.extend_from_slice(&n.to_le_bytes());
            }
            Value::Sym(s) => {
                out.push(1);
                out.extend_from_slice(&s.to_le_bytes());
            }
            Value::Queue(q) => {
                out.push(2);
                out.extend_from_slice(&q.to_le_bytes());
            }
            Value::Tuple(parts) => {
                out.push(3);
                out.extend_from_slice(&(parts.len() as u32).to_le_bytes());
                for p in parts {
                    p.encode_into(out);
                }
            }
        }
    }

    /// Decodes a whole encoding; `None` if it is malformed, has bytes left
    /// over, or is beyond the value limits.
    pub fn decode(bytes: &[u8]) -> Option<Value> {
        let mut at = 0;
        let mut budget = MAX_VALUE_SIZE;
        let v = decode_at(bytes, &mut at, 0, &mut budget)?;
        (at == bytes.len()).then_some(v)
    }
}

fn take<const N: usize>(bytes: &[u8], at: &mut usize) -> Option<[u8; N]> {
    let b: [u8; N] = bytes.get(*at..at.checked_add(N)?)?.try_into().ok()?;
    *at += N;
    Some(b)
}

/// Decodes one value at `at`; `depth` bounds the recursion by
/// [`MAX_VALUE_DEPTH`], `budget` the parts by [`MAX_VALUE_SIZE`].
fn decode_at(bytes: &[u8], at: &mut usize, depth: usize, budget: &mut usize) -> Option<Value> {
    *budget = budget.checked_sub(1)?;
    let [tag] = take::<1>(bytes, at)?;
    Some(match tag {
        0 => Value::Int(i64::from_le_bytes(take(bytes, at)?)),
        1 => Value::Sym(u32::from_le_bytes(take(bytes, at)?)),
        2 => Value::Queue(u32::from_le_bytes(take(bytes, at)?)),
        3 if depth < MAX_VALUE_DEPTH => {
            let n = u32::from_le_bytes(take(bytes, at)?) as usize;
            if n > *budget {
                return None;
            }
            let mut parts = Vec::with_capacity(n);
            for _ in 0..n {
                parts.push(decode_at(bytes, at, depth + 1, budget)?);
            }
            Value::Tuple(parts)
        }
        _ => return None,
    })
}

/// A value shown with its symbols' and queues' names.
pub(crate) struct Show<'a> {
    pub value: &'a Value,
    pub symbols: &'a [String],
    pub queues: &'a [super::Queue],
}

impl fmt::Display for Show<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.value {
            Value::Int(n) => write!(f, "{n}"),
            Value::Sym(s) => match self.symbols.get(*s as usize) {
                Some(name) => write!(f, "{name}"),
                None => write!(f, "symbol#{s}"),
            },
            Value::Queue(q) => match self.queues.get(*q as usize) {
                Some(queue) => write!(f, "{}", queue.name),
                None => write!(f, "queue#{q}"),
            },
            Value::Tuple(parts) => {
                write!(f, "(")?;
                for (i, p) in parts.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    let show = Show {
                        value: p,
                        symbols: self.symbols,
                        queues: self.queues,
                    };
                    write!(f, "{show}")?;
                }
                write!(f, ")")
            }
        }
    }
}
