//! Literals: read with their sign and cast, then typed by the column they are compared
//! with, as PostgreSQL types them.

use super::array::valid;
use super::coerce::castable;
use super::scalar::{literal as own_literal, Ty};
use super::Parser;
use crate::error::Result;
use crate::predicate::datetime::date_to_timestamp;
use crate::predicate::lexer::{error, Token};
use crate::predicate::scalar::cast as cast_value;
use crate::predicate::{ColumnType, Numeric, Scalar, Value};

/// A literal before it is typed by the column it is compared with.
#[derive(Clone, Debug)]
pub(super) enum Raw {
    Null,
    Bool(bool),
    Integer(String),
    Decimal(String),
    Str(String),
    /// `$n` not bound yet: only in a [`super::Syntax`]'s tree, bound before it is typed.
    Param(u32),
}

/// A literal as written: its sign (a leading `-`), the literal, and a `::type` cast if any.
/// A cast binds tighter than the sign, as in PostgreSQL: `-32768::int2` is `-(32768::int2)`.
#[derive(Clone, Debug)]
pub(super) struct Literal {
    pub(super) negative: bool,
    pub(super) raw: Raw,
    pub(super) cast: Option<(usize, ColumnType)>,
}

impl Parser<'_> {
    /// A type name starting with the word `first`, with the words of the several-word names
    /// (`double precision`, `character varying`, `timestamp with[out] time zone`).
    pub(super) fn type_name(&mut self, first: String) -> String {
        let rest: &[&[&str]] = match first.as_str() {
            "double" => &[&["precision"]],
            "character" => &[&["varying"]],
            "timestamp" | "time" => &[&["with", "time", "zone"], &["without", "time", "zone"]],
            _ => return first,
        };
        for words in rest {
            let ahead = words.iter().enumerate().all(|(i, w)| {
                matches!(self.tokens.get(self.at + i), Some((_, Token::Word(x))) if x == w)
            });
            if ahead {
                self.at += words.len();
                return format!("{first} {}", words.join(" "));
            }
        }
        first
    }

    /// The type an IN list on `column` is compared in, as PostgreSQL resolves it (a list of
    /// one is a plain `=`): an integer column's type widened to the widest integer among the
    /// list's numbers (a literal that fits int4 is an int4, a larger one an int8) and integer
    /// casts; a float4 column's list is float4 unless a member is a float8; a timestamp
    /// column's list with a timestamptz member is timestamptz; the column's otherwise.
    pub(super) fn in_list_type(&self, column: usize, literals: &[(usize, Literal)]) -> ColumnType {
        let ty = self.columns[column].1.clone();
        if ty == ColumnType::Float4 {
            let float8 = literals
                .iter()
                .any(|(_, l)| matches!(l.cast, Some((_, ColumnType::Float8))));
            // a list of one is `=`: a number compares in float8, a string is a float4
            let lone_number = matches!(literals, [(_, l)] if !matches!(l.raw, Raw::Str(_)));
            return if lone_number || float8 {
                ColumnType::Float8
            } else {
                ColumnType::Float4
            };
        }
        let cast_to = |want: ColumnType| {
            literals
                .iter()
                .any(|(_, l)| matches!(&l.cast, Some((_, t)) if *t == want))
        };
        if ty == ColumnType::Timestamp && literals.len() > 1 && cast_to(ColumnType::Timestamptz) {
            return ColumnType::Timestamptz;
        }
        if !ty.is_integer() {
            return ty;
        }
        let rank = |t: &ColumnType| match t {
            ColumnType::Int2 => 0,
            ColumnType::Int4 => 1,
            _ => 2,
        };
        literals.iter().fold(ty, |acc, (_, l)| {
            let t = match (&l.raw, &l.cast) {
                (_, Some((_, t))) if t.is_integer() => t.clone(),
                // the sign counts: -2147483648 is an int4 (PostgreSQL folds it into the literal)
                (Raw::Integer(d), None)
                    if format!("{}{d}", if l.negative { "-" } else { "" })
                        .parse::<i32>()
                        .is_ok() =>
                {
                    ColumnType::Int4
                }
                (Raw::Integer(_), None) => ColumnType::Int8,
                _ => return acc,
            };
            if rank(&t) > rank(&acc) {
                t
            } else {
                acc
            }
        })
    }

    /// `literal` as a value of `column`'s type: cast first if it has a cast (then negated),
    /// else its signed text read as that type.
    pub(super) fn typed(
        &self,
        literal: Literal,
        column: usize,
        at: usize,
    ) -> Result<Option<Value>> {
        let ty = match (&self.columns[column].1, &literal.raw) {
            // a number compares with a float4 column in float8 (PostgreSQL's float48
            // operators); an untyped string is a float4
            (ColumnType::Float4, Raw::Integer(_) | Raw::Decimal(_)) => ColumnType::Float8,
            (t, _) => t.clone(),
        };
        self.typed_as(literal, column, &ty, at)
    }

    /// [`Parser::typed`], reading an untyped literal as `ty` (the type an IN list compares
    /// in), then as a value of the column.
    pub(super) fn typed_as(
        &self,
        literal: Literal,
        column: usize,
        ty: &ColumnType,
        at: usize,
    ) -> Result<Option<Value>> {
        let mismatch = || match &self.columns[column].1 {
            t @ ColumnType::Array(_) => error(at, &format!("a literal that is {}", valid(t))),
            _ => error(
                at,
                &self.type_message(column, "expected a value of its type"),
            ),
        };
        let Literal {
            negative,
            raw,
            cast,
        } = literal;
        // the literal as its cast type first (as Postgres evaluates the cast), then negated,
        // then widened to the column's type where that is exact. A string's cast is the
        // type's input function, run by PostgreSQL's parser; a number's or a boolean's is a
        // function of a constant, run by its planner (see `fold`), as are the negation and
        // the widening.
        if let Some((cast_at, to)) = cast {
            let invalid = || error(cast_at, &format!("a literal that is {}", valid(&to)));
            let v = match raw {
                Raw::Null => return Ok(None),
                Raw::Str(s) => to.parse(&s).ok_or_else(invalid)?,
                raw => {
                    let typed = own_literal(&raw, false, cast_at)?;
                    let (Ty::Known(from), Scalar::Const(Some(v))) = (typed.ty, typed.s) else {
                        return Err(invalid());
                    };
                    if !castable(&from, &to) {
                        let why =
                            format!("a cast PostgreSQL has: {} to {}", from.name(), to.name());
                        return Err(error(cast_at, &why));
                    }
                    let cast = cast_value(v, &from, &to).map_err(|_| invalid());
                    match self.at_plan_time(cast.map(Some), || None)? {
                        Some(v) => v,
                        None => return Ok(None),
                    }
                }
            };
            let v = if negative {
                // a number that does not fit negated is the planner's error; a negated
                // non-number is the parser's (no such operator)
                let number = matches!(v, Value::Int(_) | Value::Float(_) | Value::Numeric(_));
                let negated = negate(v).ok_or_else(|| error(at, "a number to negate"));
                match negated {
                    Err(e) if !number => return Err(e),
                    negated => match self.at_plan_time(negated.map(Some), || None)? {
                        Some(v) => v,
                        None => return Ok(None),
                    },
                }
            } else {
                v
            };
            let column_type = &self.columns[column].1;
            if let Some(v) = widen(v.clone(), &to, column_type) {
                return Ok(Some(v));
            }
            // a date beyond timestamp's range: the planner's implicit cast fails
            if matches!(to, ColumnType::Date) && widen_types(&to, column_type) {
                let e = error(at, "a date within the range of timestamps");
                return self.at_plan_time(Err(e), || None);
            }
            return Err(mismatch());
        }
        let signed = |s: &str| format!("{}{s}", if negative { "-" } else { "" });
        let value = match (raw, ty) {
            (Raw::Null, _) => return Ok(None),
            (Raw::Bool(b), ColumnType::Bool) => Some(Value::Bool(b)),
            // an integer literal is an int4 or int8 in Postgres, compared with a smaller
            // column type as it is: any i64 compares exactly
            (Raw::Integer(s), t) if t.is_integer() => {
                signed(&s).parse::<i64>().ok().map(Value::Int)
            }
            // a number is read in the type it compares in: float8 (float4 in a float4 list),
            // or numeric; out of a float's range, an error of the planner's cast
            (Raw::Integer(s) | Raw::Decimal(s), t @ (ColumnType::Float8 | ColumnType::Float4)) => {
                let v = t.parse(&signed(&s));
                if v.is_none() {
                    return self.at_plan_time(Err(mismatch()), || None);
                }
                v
            }
            (Raw::Integer(s) | Raw::Decimal(s), ColumnType::Numeric) => {
                ColumnType::Numeric.parse(&signed(&s))
            }
            // an untyped string literal takes the type it is compared in, as in Postgres
            (Raw::Str(s), t) => t
                .parse(&s)
                .and_then(|v| widen(v, t, &self.columns[column].1)),
            _ => None,
        };
        value.map(Some).ok_or_else(mismatch)
    }

    pub(super) fn type_message(&self, column: usize, what: &str) -> String {
        let (name, ty) = &self.columns[column];
        format!("{what} for column {name:?} ({})", ty.name())
    }
}

/// `-v` for a number (`None` for another value, or an integer that does not fit).
pub(super) fn negate(v: Value) -> Option<Value> {
    match v {
        Value::Int(i) => i.checked_neg().map(Value::Int),
        Value::Float(f) => Some(Value::Float(-f)),
        Value::Numeric(n) => Some(Value::Numeric(n.negated())),
        _ => None,
    }
}

/// Whether a value of type `from` compares with a column of type `to` in the column's type
/// (or in a wider one the column's values convert to exactly): see [`widen`].
pub(super) fn widen_types(from: &ColumnType, to: &ColumnType) -> bool {
    use ColumnType as T;
    from == to
        || (from.is_integer() && (to.is_integer() || to.is_float() || *to == T::Numeric))
        || (from.is_float() && to.is_float())
        || (*from == T::Numeric && to.is_float())
        || matches!(
            (from, to),
            (T::Date, T::Timestamp | T::Timestamptz)
                | (T::Timestamp, T::Timestamptz)
                | (T::Timestamptz, T::Timestamp)
        )
}

/// A cast literal `v` of type `from` as a value of a column of type `to` (see
/// [`widen_types`]); `None` for another type, or a date beyond timestamp's range.
pub(super) fn widen(v: Value, from: &ColumnType, to: &ColumnType) -> Option<Value> {
    if !widen_types(from, to) {
        return None;
    }
    Some(match (v, to) {
        // integers compare across integer types as they are (int2 = int4 is valid SQL)
        (Value::Int(i), t) if t.is_integer() => Value::Int(i),
        (Value::Int(i), t) if t.is_float() => Value::Float(i as f64),
        (Value::Int(i), ColumnType::Numeric) => Value::Numeric(Numeric::from_i64(i)),
        // a float column compares with a float4 or float8 in float8
        (v @ Value::Float(_), t) if t.is_float() => v,
        // a numeric converts to float8 (rounded once, as numeric_float8 does)
        (Value::Numeric(n), t) if t.is_float() => Value::Float(match n {
            Numeric::NaN => f64::NAN,
            Numeric::Infinity => f64::INFINITY,
            Numeric::NegInfinity => f64::NEG_INFINITY,
            n => n.text().parse().ok()?,
        }),
        // a date is midnight of its day; timestamp and timestamptz are one instant in UTC
        (Value::Date(d), ColumnType::Timestamp) => Value::Timestamp(date_to_timestamp(d)?),
        (Value::Date(d), ColumnType::Timestamptz) => Value::Timestamptz(date_to_timestamp(d)?),
        (Value::Timestamp(t), ColumnType::Timestamptz) => Value::Timestamptz(t),
        (Value::Timestamptz(t), ColumnType::Timestamp) => Value::Timestamp(t),
        (v, t) if t.holds(&v) => v,
        _ => return None,
    })
}
