//! Evaluating an expression's postfix code on a value stack (no recursion),
//! with checked arithmetic and the value limits.

use super::{BinOp, Expr, ExprOp};
use crate::scenario::value::{Value, MAX_VALUE_SIZE};

impl Expr {
    /// Evaluates the expression; `Err` says what went wrong (a type error,
    /// a division by zero, an overflow, an index out of range, a variable
    /// with no value yet, a value over the limits).
    pub(crate) fn eval(
        &self,
        vars: &[Option<Value>],
        var_names: &[String],
    ) -> Result<Value, String> {
        let mut stack: Vec<Value> = Vec::new();
        let mut pc = 0;
        let int = |v: Value, what: &str| match v {
            Value::Int(n) => Ok(n),
            _ => Err(format!("{what} needs whole numbers")),
        };
        while let Some(op) = self.code.get(pc) {
            pc += 1;
            let mut pop = || {
                stack
                    .pop()
                    .ok_or_else(|| "malformed expression".to_string())
            };
            let v = match op {
                ExprOp::Push(v) => v.clone(),
                ExprOp::Var(slot) => match vars.get(*slot).and_then(Option::as_ref) {
                    Some(v) => v.clone(),
                    None => {
                        let name = var_names.get(*slot).map_or("?", String::as_str);
                        return Err(format!("variable `{name}` has no value yet"));
                    }
                },
                ExprOp::Tuple(n) => {
                    let at = stack.len().saturating_sub(*n);
                    let parts = stack.split_off(at);
                    checked(Value::Tuple(parts))?
                }
                ExprOp::Index => {
                    let i = pop()?;
                    let t = pop()?;
                    index(t, i)?
                }
                ExprOp::Not => Value::Int(i64::from(!pop()?.truthy())),
                ExprOp::Neg => Value::Int(
                    int(pop()?, "`-`")?
                        .checked_neg()
                        .ok_or("the negation overflows")?,
                ),
                ExprOp::Bin(op) => {
                    let b = pop()?;
                    let a = pop()?;
                    binary(*op, a, b)?
                }
                ExprOp::AndJump(to) => {
                    if !pop()?.truthy() {
                        pc = *to;
                        Value::Int(0)
                    } else {
                        continue;
                    }
                }
                ExprOp::OrJump(to) => {
                    if pop()?.truthy() {
                        pc = *to;
                        Value::Int(1)
                    } else {
                        continue;
                    }
                }
                ExprOp::Truth => Value::Int(i64::from(pop()?.truthy())),
                ExprOp::Array => {
                    let v = pop()?;
                    let n = int(pop()?, "`array(n, v)`")?;
                    let n = usize::try_from(n)
                        .ok()
                        .filter(|&n| n.saturating_mul(v.size()) < MAX_VALUE_SIZE)
                        .ok_or_else(|| {
                            format!("array({n}, ...) is too large (at most {MAX_VALUE_SIZE} parts)")
                        })?;
                    checked(Value::Tuple(vec![v; n]))?
                }
                ExprOp::Len => match pop()? {
                    Value::Tuple(parts) => Value::Int(parts.len() as i64),
                    _ => return Err("`len` needs a tuple or an array".to_string()),
                },
            };
            stack.push(v);
        }
        stack
            .pop()
            .ok_or_else(|| "malformed expression".to_string())
    }
}

/// `v` if it is within the value limits.
pub(crate) fn checked(v: Value) -> Result<Value, String> {
    if v.within_limits() {
        Ok(v)
    } else {
        Err(format!(
            "the value is too large (at most {} parts, {} tuples deep)",
            MAX_VALUE_SIZE,
            crate::scenario::value::MAX_VALUE_DEPTH
        ))
    }
}

fn index(t: Value, i: Value) -> Result<Value, String> {
    let (Value::Tuple(parts), Value::Int(i)) = (t, i) else {
        return Err("only a tuple or an array can be indexed, by a whole number".to_string());
    };
    let len = parts.len();
    usize::try_from(i)
        .ok()
        .and_then(|i| parts.into_iter().nth(i))
        .ok_or_else(|| format!("index {i} is out of range (length {len})"))
}

/// Replaces element `i` of tuple `t` with `v`.
pub(crate) fn set_index(t: &mut Value, i: Value, v: Value) -> Result<(), String> {
    let (Value::Tuple(parts), Value::Int(i)) = (&mut *t, i) else {
        return Err("only an array element can be assigned, by a whole number".to_string());
    };
    let len = parts.len();
    let slot = usize::try_from(i)
        .ok()
        .and_then(|i| parts.get_mut(i))
        .ok_or_else(|| format!("index {i} is out of range (length {len})"))?;
    *slot = v;
    if !t.within_limits() {
        return checked(t.clone()).map(drop);
    }
    Ok(())
}

fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
    let bool_ = |x: bool| Ok(Value::Int(i64::from(x)));
    match op {
        BinOp::Eq => return bool_(a == b),
        BinOp::Ne => return bool_(a != b),
        _ => {}
    }
    let (Value::Int(x), Value::Int(y)) = (a, b) else {
        return Err("arithmetic and `<` `>` need whole numbers".to_string());
    };
    let overflow = || "the arithmetic overflows".to_string();
    Ok(Value::Int(match op {
        BinOp::Add => x.checked_add(y).ok_or_else(overflow)?,
        BinOp::Sub => x.checked_sub(y).ok_or_else(overflow)?,
        BinOp::Mul => x.checked_mul(y).ok_or_else(overflow)?,
        BinOp::Div | BinOp::Rem if y == 0 => return Err("division by zero".to_string()),
        BinOp::Div => x.checked_div(y).ok_or_else(overflow)?,
        BinOp::Rem => x.checked_rem(y).ok_or_else(overflow)?,
        BinOp::Lt => return bool_(x < y),
        BinOp::Le => return bool_(x <= y),
        BinOp::Gt => return bool_(x > y),
        BinOp::Ge => return bool_(x >= y),
        BinOp::Eq | BinOp::Ne => return Err("unreachable".to_string()),
    }))
}
