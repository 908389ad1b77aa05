//! How PostgreSQL's types meet: the implicit-conversion chains (numbers, then dates and
//! times), which casts exist, the common type of a list, and a typed expression (or an
//! untyped literal) converted to the type it must have.

use super::scalar::{Ty, Typed};
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::error;
use crate::predicate::scalar::cast;
use crate::predicate::{ColumnType, Scalar};

pub(super) fn is_number(t: &ColumnType) -> bool {
    t.is_integer() || t.is_float() || *t == ColumnType::Numeric
}

/// Position in the implicit-conversion chain of numbers, or of dates and times.
pub(super) fn rank(t: &ColumnType) -> Option<(u8, u8)> {
    Some(match t {
        ColumnType::Int2 => (0, 0),
        ColumnType::Int4 => (0, 1),
        ColumnType::Int8 => (0, 2),
        ColumnType::Numeric => (0, 3),
        ColumnType::Float4 => (0, 4),
        ColumnType::Float8 => (0, 5),
        ColumnType::Date => (1, 0),
        ColumnType::Timestamp => (1, 1),
        ColumnType::Timestamptz => (1, 2),
        _ => return None,
    })
}

/// Whether PostgreSQL converts `from` to `to` implicitly (an array element by element).
fn implicit(from: &ColumnType, to: &ColumnType) -> bool {
    if let (ColumnType::Array(a), ColumnType::Array(b)) = (from, to) {
        return implicit(a, b);
    }
    match (rank(from), rank(to)) {
        (Some((a, x)), Some((b, y))) => a == b && x <= y,
        _ => from == to,
    }
}

/// Whether `from::to` is a cast PostgreSQL has (and this engine evaluates): text to an enum
/// is its input function, so only a named enum (one SQL can name) is a target; an array to
/// an array where its elements cast, to and from text (output and input functions).
pub(super) fn castable(from: &ColumnType, to: &ColumnType) -> bool {
    use ColumnType as T;
    if let (T::Array(a), T::Array(b)) = (from, to) {
        return castable(a, b);
    }
    if matches!(from, T::Array(_)) || matches!(to, T::Array(_)) {
        return *from == T::Text || *to == T::Text;
    }
    from == to
        || (is_number(from) && is_number(to))
        || *to == T::Text
        || *from == T::Text
        || matches!((from, to), (T::Int4, T::Bool) | (T::Bool, T::Int4))
        || matches!(
            (from, to),
            (
                T::Date | T::Timestamp | T::Timestamptz,
                T::Date | T::Timestamp | T::Timestamptz
            ) | (T::Timestamp | T::Timestamptz, T::Time)
        )
}

/// The type two types meet in: the higher in their conversion chain (arrays: of their
/// elements' common type).
fn common_of(a: &ColumnType, b: &ColumnType) -> Option<ColumnType> {
    if a == b {
        return Some(a.clone());
    }
    if let (ColumnType::Array(x), ColumnType::Array(y)) = (a, b) {
        return common_of(x, y).map(ColumnType::array_of);
    }
    match (rank(a), rank(b)) {
        (Some((p, x)), Some((q, y))) if p == q => Some(if y > x { b.clone() } else { a.clone() }),
        _ => None,
    }
}

impl Parser<'_> {
    /// The type PostgreSQL converts `items` to (an IN list, coalesce): the highest in its
    /// conversion chain; text when all are untyped.
    pub(super) fn common_type(&self, items: &[&Typed]) -> Result<ColumnType> {
        let mut common: Option<ColumnType> = None;
        for t in items {
            let Ty::Known(ty) = &t.ty else { continue };
            common = Some(match common {
                None => ty.clone(),
                Some(c) => common_of(&c, ty).ok_or_else(|| {
                    error(
                        t.at,
                        &format!("values of one type, found {} and {}", c.name(), ty.name()),
                    )
                })?,
            });
        }
        Ok(common.unwrap_or(ColumnType::Text))
    }

    /// `t` as a value of type `to`: an untyped literal read as `to`, a typed one converted
    /// where PostgreSQL converts implicitly; else an error saying `why`.
    pub(super) fn coerce(&self, t: Typed, to: &ColumnType, why: &str) -> Result<Scalar> {
        match t.ty {
            Ty::Unknown(None) => Ok(Scalar::Const(None)),
            Ty::Unknown(Some(text)) => to
                .parse(&text)
                .map(|v| Scalar::Const(Some(v)))
                .ok_or_else(|| error(t.at, &format!("{} value", super::array::valid(to)))),
            Ty::Known(from) if from == *to => Ok(t.s),
            Ty::Known(from) if implicit(&from, to) => match t.s {
                Scalar::Const(None) => Ok(Scalar::Const(None)),
                Scalar::Const(Some(v)) => {
                    let converted = cast(v.clone(), &from, to)
                        .map(|v| Scalar::Const(Some(v)))
                        .map_err(|e| error(t.at, e.message()));
                    let stand_in =
                        || Scalar::Cast(Box::new(Scalar::Const(Some(v))), from, to.clone());
                    self.at_plan_time(converted, stand_in)
                }
                s => Ok(Scalar::Cast(Box::new(s), from, to.clone())),
            },
            Ty::Known(from) => Err(error(
                t.at,
                &format!("{why}, found a value of type {}", from.name()),
            )),
        }
    }
}
