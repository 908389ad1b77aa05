//! What follows a column in a predicate: a comparison, `[NOT] IN`, `[NOT] LIKE | ILIKE`,
//! `[NOT] BETWEEN`, `IS …`, or nothing (a boolean column).

use super::literal::Literal;
use super::numeric::beyond_cmp;
use super::{and_of, cmp_op, or_of, Parser};
use crate::error::Result;
use crate::predicate::lexer::{error, Token};
use crate::predicate::{eval, CmpOp, ColumnType, Expr, Value};
use std::cmp::Ordering;

impl Parser<'_> {
    pub(super) fn column_tail(&mut self, column: usize) -> Result<Expr> {
        let negated = self.eat_keyword("not");
        if let Some(Token::Op(op)) = self.peek().cloned() {
            if negated {
                return Err(self.expected("IN, LIKE, ILIKE or BETWEEN after NOT"));
            }
            self.at += 1;
            let at = self.position();
            let literal = self.raw_literal()?;
            return self.comparison(column, cmp_op(op), literal, at);
        }
        if self.eat_keyword("in") {
            if self.next() != Some(Token::LParen) {
                self.at -= 1;
                return Err(self.expected("'(' after IN"));
            }
            let mut literals = Vec::new();
            loop {
                literals.push((self.position(), self.raw_literal()?));
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::RParen) => break,
                    _ => {
                        self.at -= 1;
                        return Err(self.expected("',' or ')' in the IN list"));
                    }
                }
            }
            let (values, left_out) = self.in_list(column, literals)?;
            if values.is_empty() && left_out {
                // `x IN (BIG)`: false, or unknown for NULL, as `x = BIG`
                let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
                return Ok(beyond_cmp(column, op, Ordering::Greater));
            }
            return Ok(Expr::In {
                column,
                values,
                negated,
            });
        }
        let like = self.keyword("like");
        if like || self.keyword("ilike") {
            let at = self.position();
            self.at += 1;
            if self.columns[column].1 != ColumnType::Text {
                return Err(error(
                    at,
                    &self.type_message(column, "LIKE needs a text column"),
                ));
            }
            let pattern = match self.next() {
                Some(Token::Str(s)) => s,
                _ => {
                    self.at -= 1;
                    return Err(self.expected("a 'pattern' string after LIKE"));
                }
            };
            self.skip_cast_to(ColumnType::Text)?;
            let escapes = pattern.bytes().rev().take_while(|&b| b == b'\\').count();
            if escapes % 2 == 1 {
                return Err(error(
                    at,
                    "a LIKE pattern that does not end with the escape character '\\'",
                ));
            }
            return Ok(Expr::Like {
                column,
                pattern,
                case_insensitive: !like,
                negated,
            });
        }
        if negated && self.keyword("between") {
            return self.between(column, true);
        }
        if negated {
            return Err(self.expected("IN, LIKE, ILIKE or BETWEEN after NOT"));
        }
        if self.keyword("between") {
            return self.between(column, false);
        }
        if self.eat_keyword("is") {
            return self.is_tail(column);
        }
        if self.columns[column].1 == ColumnType::Bool {
            // a bare boolean column is the condition `column = true`
            return Ok(Expr::Cmp {
                column,
                op: CmpOp::Eq,
                value: Some(Value::Bool(true)),
            });
        }
        Err(self.expected("a comparison, IN, IS, LIKE, ILIKE or BETWEEN after the column"))
    }

    /// `column [NOT] BETWEEN [SYMMETRIC | ASYMMETRIC] low AND high` (at BETWEEN), as
    /// PostgreSQL defines it: `low <= column AND column <= high` (`NOT`: `column < low OR
    /// column > high`); SYMMETRIC swaps the bounds when `low > high`.
    pub(super) fn between(&mut self, column: usize, negated: bool) -> Result<Expr> {
        self.at += 1;
        let symmetric = self.eat_keyword("symmetric");
        if !symmetric {
            self.eat_keyword("asymmetric");
        }
        let low = (self.position(), self.raw_literal()?);
        if !self.eat_keyword("and") {
            return Err(self.expected("AND between the bounds of BETWEEN"));
        }
        let high = (self.position(), self.raw_literal()?);
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

    /// What follows `column IS`: `[NOT] NULL`, `[NOT] DISTINCT FROM literal`, or (a boolean
    /// column) `[NOT] TRUE | FALSE | UNKNOWN` — each written with the nodes that mean the
    /// same in three-valued logic (these tests are never unknown).
    pub(super) fn is_tail(&mut self, column: usize) -> Result<Expr> {
        let negated = self.eat_keyword("not");
        let is_null = |negated| Expr::IsNull { column, negated };
        if self.eat_keyword("null") {
            return Ok(is_null(negated));
        }
        if self.eat_keyword("distinct") {
            if !self.eat_keyword("from") {
                return Err(self.expected("FROM after IS DISTINCT"));
            }
            let value = self.literal(column)?;
            let cmp = |op, value| Expr::Cmp { column, op, value };
            return Ok(match (value, negated) {
                // distinct from NULL: not NULL
                (None, distinct_is_not) => is_null(!distinct_is_not),
                (Some(v), false) => or_of(vec![is_null(false), cmp(CmpOp::Ne, Some(v))]),
                (Some(v), true) => and_of(vec![is_null(true), cmp(CmpOp::Eq, Some(v))]),
            });
        }
        let at = self.position();
        let truth = if self.eat_keyword("true") {
            Some(true)
        } else if self.eat_keyword("false") {
            Some(false)
        } else if self.eat_keyword("unknown") {
            None
        } else {
            return Err(self.expected("NULL, DISTINCT FROM, TRUE, FALSE or UNKNOWN after IS"));
        };
        if self.columns[column].1 != ColumnType::Bool {
            return Err(error(
                at,
                &self.type_message(column, "IS TRUE, FALSE or UNKNOWN needs a boolean column"),
            ));
        }
        Ok(match (truth, negated) {
            (None, negated) => is_null(negated),
            (Some(b), false) => and_of(vec![
                is_null(true),
                Expr::Cmp {
                    column,
                    op: CmpOp::Eq,
                    value: Some(Value::Bool(b)),
                },
            ]),
            (Some(b), true) => or_of(vec![
                is_null(false),
                Expr::Cmp {
                    column,
                    op: CmpOp::Ne,
                    value: Some(Value::Bool(b)),
                },
            ]),
        })
    }
}
