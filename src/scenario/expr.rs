//! Expressions and receive patterns of the script language.
//!
//! An expression is parsed once, when the file is checked, into postfix
//! code ([`Expr`]) that [`Expr::eval`] runs on a value stack: evaluation
//! never recurses. The parser does recurse (one call per precedence level
//! and parenthesis), so it refuses an expression more than
//! [`MAX_EXPR_DEPTH`] levels deep or longer than [`MAX_EXPR_TOKENS`]
//! tokens, with an error at the token that goes too far.
//!
//! ```text
//! expr    := or
//! or      := and ("||" and)*
//! and     := cmp ("&&" cmp)*
//! cmp     := sum (("==" | "!=" | "<" | "<=" | ">" | ">=") sum)?
//! sum     := product (("+" | "-") product)*
//! product := unary (("*" | "/" | "%") unary)*
//! unary   := ("!" | "-") unary | postfix
//! postfix := atom ("[" expr "]")*
//! atom    := INTEGER | true | false | SYMBOL | "QUOTED" | PARAM | QUEUE | VARIABLE
//!          | "(" expr ")" | "(" expr ("," expr)+ ")" | array(expr, expr) | len(expr)
//! pattern := "_" | VARIABLE | INTEGER | -INTEGER | SYMBOL | "QUOTED" | PARAM | QUEUE
//!          | "(" pattern ("," pattern)* ")"
//! ```
//!
//! A name that starts with an upper-case letter is a `[params]` entry if
//! there is one by that name, else a symbol; a declared port or mailbox
//! name is that queue, a mailbox family's name (`count = N`) the tuple of
//! its members; any other name is a variable of the process.

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::value::Value;
use super::Queue;

/// How deeply an expression or pattern may nest (parentheses, operators).
pub const MAX_EXPR_DEPTH: usize = 32;
/// How many tokens one expression or pattern may have.
pub const MAX_EXPR_TOKENS: usize = 256;

mod eval;
pub(crate) use eval::set_index;

/// What names mean while a script is parsed.
pub(crate) struct Names<'a> {
    pub params: &'a BTreeMap<String, i64>,
    pub queues: &'a [Queue],
    /// The mailbox families (`count = N`): each name's members, in order.
    pub queue_families: &'a BTreeMap<String, Vec<usize>>,
    /// The scenario's symbols, interned as they are met.
    pub symbols: &'a RefCell<Vec<String>>,
    /// This process's variables, by slot.
    pub vars: RefCell<Vec<String>>,
    /// The slots some statement sets (an assignment, a pattern binding).
    pub bound: RefCell<Vec<usize>>,
}

impl Names<'_> {
    pub fn symbol(&self, name: &str) -> Value {
        let mut symbols = self.symbols.borrow_mut();
        let i = match symbols.iter().position(|s| s == name) {
            Some(i) => i,
            None => {
                symbols.push(name.to_string());
                symbols.len() - 1
            }
        };
        Value::Sym(i as u32)
    }

    pub fn var(&self, name: &str) -> usize {
        let mut vars = self.vars.borrow_mut();
        match vars.iter().position(|v| v == name) {
            Some(i) => i,
            None => {
                vars.push(name.to_string());
                vars.len() - 1
            }
        }
    }

    /// The slot of a variable that a statement sets.
    pub fn bind(&self, name: &str) -> usize {
        let slot = self.var(name);
        let mut bound = self.bound.borrow_mut();
        if !bound.contains(&slot) {
            bound.push(slot);
        }
        slot
    }

    /// What a bare name is: a constant (param, symbol, queue) or a variable slot.
    fn resolve(&self, name: &str) -> Result<Value, usize> {
        if name.starts_with(|c: char| c.is_ascii_uppercase()) {
            return Ok(match self.params.get(name) {
                Some(&n) => Value::Int(n),
                None => self.symbol(name),
            });
        }
        if let Some(q) = self.queues.iter().position(|q| q.name == name) {
            return Ok(Value::Queue(q as u32));
        }
        // A family's name is the tuple of its members: `req[id]` is one.
        if let Some(members) = self.queue_families.get(name) {
            return Ok(Value::Tuple(
                members.iter().map(|&q| Value::Queue(q as u32)).collect(),
            ));
        }
        Err(self.var(name))
    }
}

/// A token of an expression, at a byte offset of the text it came from.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Tok {
    Int(i64),
    Name(String),
    Quoted(String),
    Punct(&'static str),
}

const PUNCT: [&str; 20] = [
    "==", "!=", "<=", ">=", "&&", "||", "<", ">", "+", "-", "*", "/", "%", "!", "(", ")", "[", "]",
    ",", "=",
];

/// Splits `text` into tokens with their offsets; `Err((offset, message))`.
pub(crate) fn tokenize(text: &str) -> Result<Vec<(usize, Tok)>, (usize, String)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let c = rest.chars().next().unwrap_or(' ');
        if c.is_whitespace() {
            i += c.len_utf8();
            continue;
        }
        if out.len() >= MAX_EXPR_TOKENS {
            return Err((
                i,
                format!("this expression is too long: at most {MAX_EXPR_TOKENS} tokens"),
            ));
        }
        if c.is_ascii_digit() {
            let len = rest
                .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                .unwrap_or(rest.len());
            let n = rest[..len].parse::<i64>().map_err(|_| {
                (
                    i,
                    format!(
                        "`{}` is not a whole number (up to {})",
                        &rest[..len],
                        i64::MAX
                    ),
                )
            })?;
            out.push((i, Tok::Int(n)));
            i += len;
        } else if c.is_alphabetic() || c == '_' {
            let len = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            out.push((i, Tok::Name(rest[..len].to_string())));
            i += len;
        } else if c == '"' || c == '\'' {
            let Some(end) = rest[1..].find(c) else {
                return Err((i, "this quoted symbol has no closing quote".to_string()));
            };
            let inner = &rest[1..1 + end];
            if inner.is_empty() || inner.contains(char::is_whitespace) {
                return Err((i, "a quoted symbol is one word, e.g. \"ACQ\"".to_string()));
            }
            out.push((i, Tok::Quoted(inner.to_string())));
            i += end + 2;
        } else if let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) {
            out.push((i, Tok::Punct(p)));
            i += p.len();
        } else {
            return Err((i, format!("unexpected `{c}` in an expression")));
        }
    }
    Ok(out)
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

/// One step of an expression's postfix code.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ExprOp {
    Push(Value),
    Var(usize),
    /// Pops `n` values, pushes their tuple.
    Tuple(usize),
    /// Pops an index and a tuple, pushes the element.
    Index,
    Not,
    Neg,
    Bin(BinOp),
    /// `&&`: pops; if false pushes 0 and jumps to the index.
    AndJump(usize),
    /// `||`: pops; if true pushes 1 and jumps to the index.
    OrJump(usize),
    /// Pops, pushes 1 or 0.
    Truth,
    /// Pops a value and a count, pushes that many copies as a tuple.
    Array,
    /// Pops a tuple, pushes its length.
    Len,
}

/// A parsed expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub(crate) code: Vec<ExprOp>,
    /// Its source text, for messages.
    pub text: String,
    /// The variables it reads (slots), for messages.
    pub(crate) reads: Vec<usize>,
}

/// A receive pattern.
#[derive(Clone, Debug, PartialEq)]
pub enum Pattern {
    /// `_`: anything.
    Any,
    /// A variable: anything, bound to it.
    Bind(usize),
    /// Exactly this value.
    Const(Value),
    /// A tuple of patterns.
    Tuple(Vec<Pattern>),
}

impl Pattern {
    /// Whether `v` matches; on a match `binds` receives the bindings.
    pub(crate) fn matches(&self, v: &Value, binds: &mut Vec<(usize, Value)>) -> bool {
        match (self, v) {
            (Pattern::Any, _) => true,
            (Pattern::Bind(slot), v) => {
                binds.push((*slot, v.clone()));
                true
            }
            (Pattern::Const(c), v) => c == v,
            (Pattern::Tuple(ps), Value::Tuple(vs)) => {
                ps.len() == vs.len() && ps.iter().zip(vs).all(|(p, v)| p.matches(v, binds))
            }
            (Pattern::Tuple(_), _) => false,
        }
    }
}

type PResult<T> = Result<T, (usize, String)>;

/// A recursive-descent parser over tokens, emitting postfix code.
struct Parser<'n, 'a> {
    toks: Vec<(usize, Tok)>,
    at: usize,
    end: usize,
    depth: usize,
    names: &'n Names<'a>,
    code: Vec<ExprOp>,
    reads: Vec<usize>,
}

impl Parser<'_, '_> {
    fn offset(&self) -> usize {
        self.toks.get(self.at).map_or(self.end, |t| t.0)
    }
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.at).map(|t| &t.1)
    }
    fn eat(&mut self, p: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Punct(q)) if *q == p) {
            self.at += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str) -> PResult<()> {
        if self.eat(p) {
            Ok(())
        } else {
            Err((self.offset(), format!("expected `{p}` here")))
        }
    }
    fn enter(&mut self) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_EXPR_DEPTH {
            return Err((
                self.offset(),
                format!("this expression nests too deeply: at most {MAX_EXPR_DEPTH} levels"),
            ));
        }
        Ok(())
    }

    fn expr(&mut self) -> PResult<()> {
        self.enter()?;
        self.or()?;
        self.depth -= 1;
        Ok(())
    }
    fn or(&mut self) -> PResult<()> {
        self.and()?;
        while self.eat("||") {
            let jump = self.code.len();
            self.code.push(ExprOp::OrJump(0));
            self.and()?;
            self.code.push(ExprOp::Truth);
            let to = self.code.len();
            self.code[jump] = ExprOp::OrJump(to);
        }
        Ok(())
    }
    fn and(&mut self) -> PResult<()> {
        self.cmp()?;
        while self.eat("&&") {
            let jump = self.code.len();
            self.code.push(ExprOp::AndJump(0));
            self.cmp()?;
            self.code.push(ExprOp::Truth);
            let to = self.code.len();
            self.code[jump] = ExprOp::AndJump(to);
        }
        Ok(())
    }
    fn cmp(&mut self) -> PResult<()> {
        self.sum()?;
        let op = match self.peek() {
            Some(Tok::Punct("==")) => BinOp::Eq,
            Some(Tok::Punct("!=")) => BinOp::Ne,
            Some(Tok::Punct("<")) => BinOp::Lt,
            Some(Tok::Punct("<=")) => BinOp::Le,
            Some(Tok::Punct(">")) => BinOp::Gt,
            Some(Tok::Punct(">=")) => BinOp::Ge,
            _ => return Ok(()),
        };
        self.at += 1;
        self.sum()?;
        self.code.push(ExprOp::Bin(op));
        Ok(())
    }
    fn sum(&mut self) -> PResult<()> {
        self.product()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("+")) => BinOp::Add,
                Some(Tok::Punct("-")) => BinOp::Sub,
                _ => return Ok(()),
            };
            self.at += 1;
            self.product()?;
            self.code.push(ExprOp::Bin(op));
        }
    }
    fn product(&mut self) -> PResult<()> {
        self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Punct("*")) => BinOp::Mul,
                Some(Tok::Punct("/")) => BinOp::Div,
                Some(Tok::Punct("%")) => BinOp::Rem,
                _ => return Ok(()),
            };
            self.at += 1;
            self.unary()?;
            self.code.push(ExprOp::Bin(op));
        }
    }
    fn unary(&mut self) -> PResult<()> {
        let op = if self.eat("!") {
            ExprOp::Not
        } else if self.eat("-") {
            ExprOp::Neg
        } else {
            return self.postfix();
        };
        self.enter()?;
        self.unary()?;
        self.depth -= 1;
        self.code.push(op);
        Ok(())
    }
    fn postfix(&mut self) -> PResult<()> {
        self.atom()?;
        while self.eat("[") {
            self.expr()?;
            self.expect("]")?;
            self.code.push(ExprOp::Index);
        }
        Ok(())
    }
    fn atom(&mut self) -> PResult<()> {
        let at = self.offset();
        let Some(tok) = self.peek().cloned() else {
            return Err((at, "an expression is missing here".to_string()));
        };
        self.at += 1;
        match tok {
            Tok::Int(n) => self.code.push(ExprOp::Push(Value::Int(n))),
            Tok::Quoted(s) => self.code.push(ExprOp::Push(self.names.symbol(&s))),
            Tok::Name(n) if n == "true" => self.code.push(ExprOp::Push(Value::Int(1))),
            Tok::Name(n) if n == "false" => self.code.push(ExprOp::Push(Value::Int(0))),
            Tok::Name(n) if (n == "array" || n == "len") && self.eat("(") => {
                self.expr()?;
                if n == "array" {
                    self.expect(",")?;
                    self.expr()?;
                    self.expect(")")?;
                    self.code.push(ExprOp::Array);
                } else {
                    self.expect(")")?;
                    self.code.push(ExprOp::Len);
                }
            }
            Tok::Name(n) => match self.names.resolve(&n) {
                Ok(v) => self.code.push(ExprOp::Push(v)),
                Err(slot) => {
                    if !self.reads.contains(&slot) {
                        self.reads.push(slot);
                    }
                    self.code.push(ExprOp::Var(slot));
                }
            },
            Tok::Punct("(") => {
                self.expr()?;
                let mut n = 1;
                while self.eat(",") {
                    self.expr()?;
                    n += 1;
                }
                self.expect(")")?;
                if n > 1 {
                    self.code.push(ExprOp::Tuple(n));
                }
            }
            Tok::Punct(p) => return Err((at, format!("unexpected `{p}` in an expression"))),
        }
        Ok(())
    }

    fn pattern(&mut self) -> PResult<Pattern> {
        self.enter()?;
        let at = self.offset();
        let Some(tok) = self.peek().cloned() else {
            return Err((at, "a pattern is missing here".to_string()));
        };
        self.at += 1;
        let p = match tok {
            Tok::Int(n) => Pattern::Const(Value::Int(n)),
            Tok::Punct("-") => match self.peek().cloned() {
                Some(Tok::Int(n)) => {
                    self.at += 1;
                    Pattern::Const(Value::Int(n.wrapping_neg()))
                }
                _ => return Err((at, "a pattern's `-` goes before a number".to_string())),
            },
            Tok::Quoted(s) => Pattern::Const(self.names.symbol(&s)),
            Tok::Name(n) if n == "_" => Pattern::Any,
            Tok::Name(n) => match self.names.resolve(&n) {
                Ok(v) => Pattern::Const(v),
                Err(_) => Pattern::Bind(self.names.bind(&n)),
            },
            Tok::Punct("(") => {
                let mut parts = vec![self.pattern()?];
                while self.eat(",") {
                    parts.push(self.pattern()?);
                }
                self.expect(")")?;
                Pattern::Tuple(parts)
            }
            Tok::Punct(p) => return Err((at, format!("unexpected `{p}` in a pattern"))),
        };
        self.depth -= 1;
        Ok(p)
    }

    fn done(&self) -> PResult<()> {
        match self.toks.get(self.at) {
            None => Ok(()),
            Some((at, _)) => Err((*at, "unexpected text after the expression".to_string())),
        }
    }
}

fn parser<'n, 'a>(text: &str, names: &'n Names<'a>) -> PResult<Parser<'n, 'a>> {
    Ok(Parser {
        toks: tokenize(text)?,
        at: 0,
        end: text.len(),
        depth: 0,
        names,
        code: Vec::new(),
        reads: Vec::new(),
    })
}

/// Parses a whole expression; errors carry an offset into `text`.
pub(crate) fn parse_expr(text: &str, names: &Names<'_>) -> PResult<Expr> {
    let mut p = parser(text, names)?;
    p.expr()?;
    p.done()?;
    Ok(Expr {
        code: p.code,
        text: text.trim().to_string(),
        reads: p.reads,
    })
}

/// Parses a whole pattern; errors carry an offset into `text`.
pub(crate) fn parse_pattern(text: &str, names: &Names<'_>) -> PResult<Pattern> {
    let mut p = parser(text, names)?;
    let pat = p.pattern()?;
    p.done()?;
    Ok(pat)
}
