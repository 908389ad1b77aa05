//! Evaluating a subquery occurrence from what its result says of a value: the reference
//! evaluator [`eval_with`] and the program's `InView` op both go through [`truth`], so they
//! agree exactly.
//!
//! PostgreSQL's truth of one occurrence, V the subquery's result as a multiset:
//!
//! ```text
//! x                              x IN V    x NOT IN V
//! any, V empty                   FALSE     TRUE (even a NULL x)
//! NULL, V not empty              NULL      NULL
//! x ∈ V                          TRUE      FALSE
//! x ∉ V, V holds a NULL          NULL      NULL
//! x ∉ V, no NULL in V            FALSE     TRUE
//! ```
//!
//! A row `(a, b)` is present only against a fully non-NULL equal row; a NULL component of the
//! tested row, or a result row with one, reads as NULL above. PostgreSQL may say FALSE there
//! (`(1, NULL) IN ((2, 2))`); rows are tested by positive occurrences only, where FALSE and
//! NULL make the same answer (a WHERE is TRUE under one iff under the other).

use super::eval::{eval, Truth};
use super::{Expr, Value};

/// What a subquery's result says of one tested value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Member {
    /// The value is in the result (count ≥ 1); not read for a NULL value.
    pub present: bool,
    /// The result holds a NULL (a row with a NULL component, for rows).
    pub nulls: bool,
    /// The result is empty.
    pub empty: bool,
}

/// The results of a shape's subqueries, as the evaluator probes them.
pub trait Membership {
    /// What the result of subquery `position` says of `value` (one entry per tested column;
    /// `None` when one of them is NULL, and then only `nulls` and `empty` are read).
    fn probe(&mut self, position: u32, value: Option<&[&Value]>) -> Member;
}

/// The truth of `x [NOT] IN V` (see the module doc); `x_null`: the tested value is (or has a
/// component) NULL.
pub fn truth(x_null: bool, m: Member, negated: bool) -> Option<bool> {
    if m.empty {
        Some(negated)
    } else if x_null {
        None
    } else if m.present {
        Some(!negated)
    } else if m.nulls {
        None
    } else {
        Some(negated)
    }
}

/// Probes subquery `position` for the row's `columns` and answers the occurrence.
pub fn occurrence(
    row: &[Option<Value>],
    columns: impl IntoIterator<Item = usize>,
    position: u32,
    negated: bool,
    views: &mut dyn Membership,
) -> Option<bool> {
    let value: Option<smallvec::SmallVec<[&Value; 4]>> = columns
        .into_iter()
        .map(|c| row.get(c).and_then(|v| v.as_ref()))
        .collect();
    let m = views.probe(position, value.as_deref());
    truth(value.is_none(), m, negated)
}

/// [`eval`] of a clause with subqueries, their results given by `views`.
pub fn eval_with(expr: &Expr, row: &[Option<Value>], views: &mut dyn Membership) -> Truth {
    match expr {
        Expr::InSubquery {
            columns,
            position,
            negated,
        } => Ok(occurrence(
            row,
            columns.iter().copied(),
            *position,
            *negated,
            views,
        )),
        Expr::Not(e) => eval_with(e, row, views).map(|b| b.map(|b| !b)),
        Expr::And(es) | Expr::Or(es) => {
            // an evaluation error anywhere wins, as in `eval`
            let and = matches!(expr, Expr::And(_));
            let (mut unknown, mut decided) = (false, false);
            for e in es {
                match eval_with(e, row, views)? {
                    Some(b) if b != and => decided = true,
                    None => unknown = true,
                    Some(_) => {}
                }
            }
            Ok(if decided {
                Some(!and)
            } else {
                (!unknown).then_some(and)
            })
        }
        // subqueries sit under AND/OR/NOT only
        other => eval(other, row),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// One result as a multiset of rows (`None` components: NULL).
    pub(crate) struct Model(pub Vec<Vec<Vec<Option<Value>>>>);

    impl Membership for Model {
        fn probe(&mut self, position: u32, value: Option<&[&Value]>) -> Member {
            let rows = &self.0[position as usize];
            Member {
                present: value.is_some_and(|v| {
                    rows.iter().any(|r| {
                        r.len() == v.len() && r.iter().zip(v).all(|(a, b)| a.as_ref() == Some(*b))
                    })
                }),
                nulls: rows.iter().any(|r| r.iter().any(Option::is_none)),
                empty: rows.is_empty(),
            }
        }
    }

    fn int(i: i64) -> Option<Value> {
        Some(Value::Int(i))
    }

    /// PostgreSQL 15: `SELECT 1 IN (SELECT x FROM u WHERE false)` … (the module doc's table).
    #[test]
    fn the_truth_table_of_in_and_not_in() {
        let occ = |x: Option<Value>, v: Vec<Option<Value>>, negated| {
            let mut m = Model(vec![v.into_iter().map(|x| vec![x]).collect()]);
            let e = Expr::InSubquery {
                columns: vec![0],
                position: 0,
                negated,
            };
            eval_with(&e, &[x], &mut m).unwrap()
        };
        for (x, v, in_, not_in) in [
            (int(1), vec![], Some(false), Some(true)),
            (None, vec![], Some(false), Some(true)),
            (None, vec![int(1)], None, None),
            (int(1), vec![int(1), None], Some(true), Some(false)),
            (int(2), vec![int(1), None], None, None),
            (int(2), vec![int(1), int(1)], Some(false), Some(true)),
        ] {
            assert_eq!(occ(x.clone(), v.clone(), false), in_, "{x:?} IN {v:?}");
            assert_eq!(
                occ(x.clone(), v.clone(), true),
                not_in,
                "{x:?} NOT IN {v:?}"
            );
        }
    }

    /// PostgreSQL 15 over u = {(1, 1), (NULL, 2)}: `(1, 1)` TRUE, `(3, 3)` and `(1, NULL)`
    /// NULL here (PostgreSQL: FALSE for `(3, 3)`, NULL for `(1, NULL)`: no TRUE differs).
    #[test]
    fn rows_are_present_only_when_fully_equal() {
        let mut m = Model(vec![vec![vec![int(1), int(1)], vec![None, int(2)]]]);
        let e = Expr::InSubquery {
            columns: vec![0, 1],
            position: 0,
            negated: false,
        };
        let at = |row: [Option<Value>; 2], m: &mut Model| eval_with(&e, &row, m).unwrap();
        assert_eq!(at([int(1), int(1)], &mut m), Some(true));
        assert_eq!(at([int(3), int(3)], &mut m), None);
        assert_eq!(at([int(1), None], &mut m), None);
        let mut empty = Model(vec![vec![]]);
        assert_eq!(at([int(1), None], &mut empty), Some(false));
    }

    #[test]
    fn compound_conditions_and_errors() {
        let mut m = Model(vec![vec![vec![int(1)]]]);
        let occ = Expr::InSubquery {
            columns: vec![0],
            position: 0,
            negated: false,
        };
        let not = Expr::Not(Box::new(occ.clone()));
        assert_eq!(eval_with(&not, &[int(1)], &mut m), Ok(Some(false)));
        let or = Expr::Or(vec![Expr::Const(None), occ.clone()]);
        assert_eq!(eval_with(&or, &[int(1)], &mut m), Ok(Some(true)));
        let and = Expr::And(vec![Expr::Const(None), occ.clone()]);
        assert_eq!(eval_with(&and, &[int(1)], &mut m), Ok(None));
        assert_eq!(eval(&occ, &[int(1)]), Err(super::super::EvalError::NoView));
    }
}
