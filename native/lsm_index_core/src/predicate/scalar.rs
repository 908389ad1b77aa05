//! Scalar expressions: what a condition compares when it is more than a column against a
//! literal (`lower(email)`, `price * 1.2`, `created_at::date`, `coalesce(a, b)`). The parser
//! types every node as PostgreSQL would and makes every conversion an explicit [`Scalar::Cast`],
//! so evaluation needs no type resolution: each node knows its result type.

use super::arith::{self, ArithOp, EvalError};
use super::datetime::date_to_timestamp;
use super::eval::{eval, fold_char, upper_char};
use super::{CaseFolding, ColumnType, Expr, Numeric, Value};

/// A function.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Func {
    /// `lower(text)`: each character lower-cased, one to one.
    Lower,
    /// `upper(text)`: each character upper-cased, one to one.
    Upper,
    /// `lower(text)` under `LC_CTYPE=C`: ASCII letters only.
    LowerAscii,
    /// `upper(text)` under `LC_CTYPE=C`: ASCII letters only.
    UpperAscii,
    /// `length(text)` / `char_length(text)`: characters.
    Length,
    /// `abs(number)`.
    Abs,
    /// `coalesce(a, b, ...)`: the first non-NULL argument.
    Coalesce,
    /// `cardinality(array)`: its number of elements.
    Cardinality,
    /// `array_length(array, dimension)`: its number of elements in dimension 1; NULL for
    /// an empty array or another dimension.
    ArrayLength,
}

impl Func {
    /// A text value's characters through this function, if it is `lower` or `upper`.
    pub fn fold(self, text: &str) -> Option<String> {
        let mut out = String::new();
        self.fold_into(text, &mut out).then_some(out)
    }

    /// [`Func::fold`] into `out` (cleared first; a route reuses its buffer); whether this
    /// function folds (`lower` or `upper`).
    pub fn fold_into(self, text: &str, out: &mut String) -> bool {
        out.clear();
        let fold: fn(char) -> char = match self {
            Func::Lower => fold_char,
            Func::Upper => upper_char,
            Func::LowerAscii => |c| c.to_ascii_lowercase(),
            Func::UpperAscii => |c| c.to_ascii_uppercase(),
            _ => return false,
        };
        out.extend(text.chars().map(fold));
        true
    }

    /// This function under `folding` (`lower` and `upper` fold ASCII only under `C`).
    pub fn under(self, folding: CaseFolding) -> Func {
        match (self, folding) {
            (Func::Lower, CaseFolding::Ascii) => Func::LowerAscii,
            (Func::Upper, CaseFolding::Ascii) => Func::UpperAscii,
            (f, _) => f,
        }
    }

    /// The function named `name`, if supported.
    pub fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "lower" => Func::Lower,
            "upper" => Func::Upper,
            "length" | "char_length" | "character_length" => Func::Length,
            "abs" => Func::Abs,
            "coalesce" => Func::Coalesce,
            "cardinality" => Func::Cardinality,
            "array_length" => Func::ArrayLength,
            _ => return None,
        })
    }

    /// Its SQL name.
    pub fn name(self) -> &'static str {
        match self {
            Func::Lower | Func::LowerAscii => "lower",
            Func::Upper | Func::UpperAscii => "upper",
            Func::Length => "length",
            Func::Abs => "abs",
            Func::Coalesce => "coalesce",
            Func::Cardinality => "cardinality",
            Func::ArrayLength => "array_length",
        }
    }
}

/// A typed scalar expression (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub enum Scalar {
    /// A column's value.
    Column(usize),
    /// A constant (`None`: NULL).
    Const(Option<Value>),
    /// A conversion from a type to a type: numeric types among themselves, anything to text,
    /// text to anything (its input function), date/timestamp/timestamptz among themselves,
    /// arrays element by element.
    Cast(Box<Scalar>, ColumnType, ColumnType),
    /// A function call with its result type.
    Call(Func, Vec<Scalar>, ColumnType),
    /// Arithmetic with its result type (operands already of that type, or a date and days).
    Arith(ArithOp, Box<Scalar>, Box<Scalar>, ColumnType),
    /// `-x` with its type.
    Negate(Box<Scalar>, ColumnType),
    /// `a || b` (both text).
    Concat(Box<Scalar>, Box<Scalar>),
    /// A condition as a boolean value (`(a = 1) = TRUE`, `coalesce(a > 1, FALSE)`).
    Condition(Box<Expr>),
    /// `ARRAY[a, b, ...]`: the elements, each already of the element type given.
    Array(Vec<Scalar>, ColumnType),
}

/// A value on a row: `Ok(None)` for NULL, `Err` where PostgreSQL raises an error.
pub type Eval = Result<Option<Value>, EvalError>;

impl Scalar {
    /// Its value on `row` (one entry per column, `None` for NULL).
    pub fn eval(&self, row: &[Option<Value>]) -> Eval {
        Ok(match self {
            Scalar::Column(c) => row.get(*c).cloned().flatten(),
            Scalar::Const(v) => v.clone(),
            Scalar::Cast(x, from, to) => match x.eval(row)? {
                None => None,
                Some(v) => Some(cast(v, from, to)?),
            },
            Scalar::Call(Func::Coalesce, args, _) => {
                for a in args {
                    if let Some(v) = a.eval(row)? {
                        return Ok(Some(v));
                    }
                }
                None
            }
            Scalar::Call(Func::ArrayLength, args, _) => {
                let (Some(array), Some(dim)) = (args.first(), args.get(1)) else {
                    return Err(EvalError::InvalidText);
                };
                match (array.eval(row)?, dim.eval(row)?) {
                    (Some(Value::Array(items)), Some(Value::Int(1))) if !items.is_empty() => {
                        Some(Value::Int(items.len() as i64))
                    }
                    _ => None,
                }
            }
            Scalar::Call(f, args, ty) => {
                let Some(v) = args.first().map(|a| a.eval(row)).transpose()?.flatten() else {
                    return Ok(None);
                };
                Some(match (f, v) {
                    (f, Value::Text(s)) if f.fold("").is_some() => {
                        Value::Text(f.fold(&s).unwrap_or_default())
                    }
                    (Func::Length, Value::Text(s)) => Value::Int(s.chars().count() as i64),
                    (Func::Abs, v) => arith::abs(ty, &v)?,
                    (Func::Cardinality, Value::Array(items)) => Value::Int(items.len() as i64),
                    _ => return Err(EvalError::InvalidText),
                })
            }
            Scalar::Arith(op, a, b, ty) => match (a.eval(row)?, b.eval(row)?) {
                (Some(x), Some(y)) => Some(arith::apply(*op, ty, &x, &y)?),
                _ => None,
            },
            Scalar::Negate(x, ty) => match x.eval(row)? {
                Some(v) => Some(arith::negate(ty, &v)?),
                None => None,
            },
            Scalar::Condition(e) => eval(e, row)?.map(Value::Bool),
            Scalar::Array(items, _) => Some(Value::Array(
                items
                    .iter()
                    .map(|i| i.eval(row))
                    .collect::<Result<_, _>>()?,
            )),
            Scalar::Concat(a, b) => match (a.eval(row)?, b.eval(row)?) {
                (Some(Value::Text(mut x)), Some(Value::Text(y))) => {
                    x.push_str(&y);
                    Some(Value::Text(x))
                }
                _ => None,
            },
        })
    }

    /// Columns it reads.
    pub fn columns(&self, out: &mut impl FnMut(usize)) {
        match self {
            Scalar::Column(c) => out(*c),
            Scalar::Const(_) => {}
            Scalar::Cast(x, _, _) | Scalar::Negate(x, _) => x.columns(out),
            Scalar::Call(_, args, _) | Scalar::Array(args, _) => {
                args.iter().for_each(|a| a.columns(out))
            }
            Scalar::Arith(_, a, b, _) | Scalar::Concat(a, b) => {
                a.columns(out);
                b.columns(out);
            }
            Scalar::Condition(e) => e.columns(out),
        }
    }

    /// Renumbers every column `c` it reads as `to(c)` (see [`Expr::map_columns`]).
    pub fn map_columns(&mut self, to: &impl Fn(usize) -> usize) {
        match self {
            Scalar::Column(c) => *c = to(*c),
            Scalar::Const(_) => {}
            Scalar::Cast(x, _, _) | Scalar::Negate(x, _) => x.map_columns(to),
            Scalar::Call(_, args, _) | Scalar::Array(args, _) => {
                args.iter_mut().for_each(|a| a.map_columns(to))
            }
            Scalar::Arith(_, a, b, _) | Scalar::Concat(a, b) => {
                a.map_columns(to);
                b.map_columns(to);
            }
            Scalar::Condition(e) => e.map_columns(to),
        }
    }
}

/// `v` (of type `from`) converted to type `to`, as PostgreSQL's cast does (errors where it
/// raises them).
pub fn cast(v: Value, from: &ColumnType, to: &ColumnType) -> Result<Value, EvalError> {
    use ColumnType as T;
    let overflow = Err(EvalError::Overflow);
    Ok(match (v, to) {
        (Value::Text(s), T::Text) => Value::Text(s),
        (v, T::Text) => Value::Text(text_of(&v, from)),
        (Value::Text(s), t) => t.parse(&s).ok_or(EvalError::InvalidText)?,
        (Value::Int(i), t) if t.is_integer() => t.int(i).ok_or(EvalError::Overflow)?,
        (Value::Int(i), T::Float8) => Value::Float(i as f64),
        (Value::Int(i), T::Float4) => Value::Float(f64::from(i as f32)),
        (Value::Int(i), T::Numeric) => Value::Numeric(Numeric::from_i64(i)),
        (Value::Int(i), T::Bool) => Value::Bool(i != 0),
        (Value::Float(f), t) if t.is_integer() => {
            // rint: half to even; NaN and out of range are errors
            let r = f.round_ties_even();
            if !r.is_finite() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r)
            {
                return overflow;
            }
            t.int(r as i64).ok_or(EvalError::Overflow)?
        }
        (Value::Float(f), T::Float8) => Value::Float(f),
        (Value::Float(f), T::Float4) => {
            let r = f as f32;
            if (r.is_infinite() && f.is_finite()) || (r == 0.0 && f != 0.0) {
                return overflow;
            }
            Value::Float(f64::from(r))
        }
        (Value::Float(f), T::Numeric) => Value::Numeric(arith::float_to_numeric(f)),
        (Value::Numeric(n), t) if t.is_integer() => {
            let i = arith::numeric_to_int(&n).ok_or(EvalError::Overflow)?;
            t.int(i).ok_or(EvalError::Overflow)?
        }
        (Value::Numeric(n), t) if t.is_float() => {
            let f = arith::numeric_to_float(&n);
            cast(Value::Float(f), &T::Float8, t)?
        }
        (Value::Numeric(n), T::Numeric) => Value::Numeric(n),
        (Value::Bool(b), t) if t.is_integer() => Value::Int(i64::from(b)),
        // element by element (an element that does not convert is the cast's error)
        (Value::Array(items), T::Array(to)) => {
            let from = from.element().ok_or(EvalError::Overflow)?;
            Value::Array(
                items
                    .into_iter()
                    .map(|i| i.map(|v| cast(v, from, to)).transpose())
                    .collect::<Result<_, _>>()?,
            )
        }
        (Value::Date(d), T::Timestamp) => {
            Value::Timestamp(date_to_timestamp(d).ok_or(EvalError::Overflow)?)
        }
        (Value::Date(d), T::Timestamptz) => {
            Value::Timestamptz(date_to_timestamp(d).ok_or(EvalError::Overflow)?)
        }
        (Value::Timestamp(t), T::Timestamptz) => Value::Timestamptz(t),
        (Value::Timestamptz(t), T::Timestamp) => Value::Timestamp(t),
        (Value::Timestamp(t) | Value::Timestamptz(t), T::Date) => Value::Date(match t {
            i64::MAX => i32::MAX,
            i64::MIN => i32::MIN,
            t => t.div_euclid(86_400_000_000) as i32,
        }),
        (Value::Timestamp(t) | Value::Timestamptz(t), T::Time) => {
            if t == i64::MAX || t == i64::MIN {
                return overflow;
            }
            Value::Time(t.rem_euclid(86_400_000_000))
        }
        (v, t) if t.holds(&v) => v,
        _ => return overflow,
    })
}

/// PostgreSQL's `v::text` for a value of type `ty` (what `||` appends too): its output
/// form, except `true`/`false` for booleans.
pub fn text_of(v: &Value, ty: &ColumnType) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        other => ty.text(other).unwrap_or_default(),
    }
}
