//! Conditions on one column against literals, in the column's own type: `[NOT] IN`,
//! `[NOT] LIKE | ILIKE`, `[NOT] BETWEEN`, `IS [NOT] DISTINCT FROM`, `IS [NOT] TRUE | FALSE |
//! UNKNOWN` — each written with the fast column nodes that mean the same in three-valued
//! logic (comparisons are `numeric`'s).

use super::literal::{Literal, Raw};
use super::numeric::beyond_cmp;
use super::{and_of, or_of, Parser};
use crate::error::Result;
use crate::predicate::lexer::error;
use crate::predicate::{eval, CmpOp, ColumnType, Expr, Value};
use std::cmp::Ordering;

impl Parser<'_> {
    /// `column [NOT] IN (literals)`.
    pub(super) fn column_in(
        &self,
        column: usize,
        literals: Vec<(usize, Literal)>,
        negated: bool,
    ) -> Result<Expr> {
        // a list of one is PostgreSQL's `=` (`<>`): its cross-type operator, no cast
        if let [(at, literal)] = literals.as_slice() {
            if self.date_beyond_timestamps(literal, column) {
                let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
                return self.comparison(column, op, literal.clone(), *at);
            }
        }
        let (values, left_out) = self.in_list(column, literals)?;
        if values.is_empty() && left_out {
            // `x IN (BIG)`: false, or unknown for NULL, as `x = BIG`
            let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
            return Ok(beyond_cmp(column, op, Ordering::Greater));
        }
        Ok(Expr::In {
            column,
            values,
            negated,
        })
    }

    /// `column [NOT] LIKE | ILIKE pattern` for a text column.
    pub(super) fn column_like(
        &self,
        column: usize,
        pattern: String,
        case_insensitive: bool,
        negated: bool,
    ) -> Expr {
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated,
        }
    }

    /// `column [NOT] BETWEEN [SYMMETRIC] low AND high`, as PostgreSQL defines it: `low <=
    /// column AND column <= high` (`NOT`: `column < low OR column > high`); SYMMETRIC swaps
    /// the bounds when `low > high`.
    pub(super) fn column_between(
        &self,
        column: usize,
        (low, high): ((usize, Literal), (usize, Literal)),
        symmetric: bool,
        negated: bool,
    ) -> Result<Expr> {
        let ordered = |(low_at, low): (usize, Literal), (high_at, high): (usize, Literal)| {
            Ok(if negated {
                or_of(vec![
                    self.comparison(column, CmpOp::Lt, low, low_at)?,
                    self.comparison(column, CmpOp::Gt, high, high_at)?,
                ])
            } else {
                and_of(vec![
                    self.comparison(column, CmpOp::Ge, low, low_at)?,
                    self.comparison(column, CmpOp::Le, high, high_at)?,
                ])
            })
        };
        if !symmetric {
            return ordered(low, high);
        }
        // SYMMETRIC: the bounds swapped when low > high; PostgreSQL's definition (both
        // orders) where they are not plain values of the column
        if let (Ok(Some(l)), Ok(Some(h))) = (
            self.plain_value(&low.1, column),
            self.plain_value(&high.1, column),
        ) {
            return if eval::compare(&l, &h) == Ordering::Greater {
                ordered(high, low)
            } else {
                ordered(low, high)
            };
        }
        let straight = ordered(low.clone(), high.clone())?;
        let swapped = ordered(high, low)?;
        Ok(if negated {
            and_of(vec![straight, swapped])
        } else {
            or_of(vec![straight, swapped])
        })
    }

    /// `column IS [NOT] DISTINCT FROM literal` (`not_distinct`: IS NOT), never unknown.
    pub(super) fn column_distinct(
        &self,
        column: usize,
        (at, literal): (usize, Literal),
        not_distinct: bool,
    ) -> Result<Expr> {
        let is_null = |negated| Expr::IsNull { column, negated };
        let value = self.typed(literal, column, at)?;
        let cmp = |op, value| Expr::Cmp { column, op, value };
        Ok(match (value, not_distinct) {
            // distinct from NULL: not NULL
            (None, not_distinct) => is_null(!not_distinct),
            (Some(v), false) => or_of(vec![is_null(false), cmp(CmpOp::Ne, Some(v))]),
            (Some(v), true) => and_of(vec![is_null(true), cmp(CmpOp::Eq, Some(v))]),
        })
    }

    /// A boolean `column IS [NOT] TRUE | FALSE | UNKNOWN` (`truth` `None`: UNKNOWN).
    pub(super) fn column_truth(&self, column: usize, truth: Option<bool>, negated: bool) -> Expr {
        let is_null = |negated| Expr::IsNull { column, negated };
        let cmp = |op, b| Expr::Cmp {
            column,
            op,
            value: Some(Value::Bool(b)),
        };
        match (truth, negated) {
            (None, negated) => is_null(negated),
            (Some(b), false) => and_of(vec![is_null(true), cmp(CmpOp::Eq, b)]),
            (Some(b), true) => or_of(vec![is_null(false), cmp(CmpOp::Ne, b)]),
        }
    }

    /// The text of a LIKE pattern literal (a string, or a string cast to text), checked as
    /// PostgreSQL checks it.
    pub(super) fn like_pattern(&self, at: usize, literal: &Literal) -> Result<String> {
        let text = match literal {
            Literal {
                negative: false,
                raw: Raw::Str(s),
                cast: None | Some((_, ColumnType::Text)),
            } => s.clone(),
            _ => return Err(error(at, "a 'pattern' string after LIKE")),
        };
        let escapes = text.bytes().rev().take_while(|&b| b == b'\\').count();
        if escapes % 2 == 1 {
            return Err(error(
                at,
                "a LIKE pattern that does not end with the escape character '\\'",
            ));
        }
        Ok(text)
    }
}
