//! Which constants PostgreSQL's planner computes (`eval_const_expressions`), and so which of
//! its errors a clause raises before any row is read.
//!
//! The planner simplifies a clause depth first, in order, and stops early in three places:
//! an AND at its first argument that folds to FALSE, an OR at its first TRUE, and a COALESCE
//! at its first argument that folds to a non-NULL constant; whatever follows is dropped
//! unevaluated (PostgreSQL's BETWEEN is an AND, so its upper bound is dropped when the lower
//! comparison is already FALSE). It also folds a strict function or operator with a NULL
//! constant operand to NULL, whatever the other operands read (`i4 + NULL`), which is how
//! `(i4 = NULL) IS UNKNOWN` becomes the constant TRUE. A part it drops is still parsed: its
//! type errors and its string literals' input errors are PostgreSQL's parser's, raised
//! anyway. Here such a part is lowered with the planner's errors not raised (a stand-in
//! value instead); it stays in the clause when it needed none (an AND/OR term or BETWEEN
//! bound: the answer is decided without it, and the columns a shape refers to stay those
//! it names) and is left out when it did. Checked against PostgreSQL 15: psql
//! (`tests/predicate_corners.rs`) and the oracle's `:lazy_fold` construct.

use super::Parser;
use crate::error::Result;
use crate::predicate::{eval, Expr, Func, Scalar};

impl Parser<'_> {
    /// `lower()` for a part of the clause the planner never reaches: errors of its parser
    /// come back, the planner's are not raised (see [`Parser::at_plan_time`]).
    pub(super) fn skipping<T>(&self, lower: impl FnOnce() -> Result<T>) -> Result<T> {
        self.skipped.set(self.skipped.get() + 1);
        let r = lower();
        self.skipped.set(self.skipped.get() - 1);
        r
    }

    /// Whether this part of the clause is one the planner never reaches; if so, a stand-in
    /// is about to replace a value it would have failed to compute (counted: a part holding
    /// one is left out of the clause).
    pub(super) fn stand_in(&self) -> bool {
        let unplanned = self.skipped.get() > 0;
        if unplanned {
            self.stood_in.set(self.stood_in.get() + 1);
        }
        unplanned
    }

    /// [`Parser::skipping`], and whether the part came out whole (no value stood in).
    pub(super) fn skipped_whole<T>(&self, lower: impl FnOnce() -> Result<T>) -> Result<(T, bool)> {
        let before = self.stood_in.get();
        let t = self.skipping(lower)?;
        Ok((t, self.stood_in.get() == before))
    }

    /// `r`, the outcome of something PostgreSQL computes while planning (a function of
    /// constants, a cast of a typed constant): an error stands unless this part of the clause
    /// is one the planner never reaches, where it is not raised and `stand_in()` takes the
    /// place of the value (a part that is dropped whatever it holds).
    pub(super) fn at_plan_time<T>(&self, r: Result<T>, stand_in: impl FnOnce() -> T) -> Result<T> {
        match r {
            Err(_) if self.stand_in() => Ok(stand_in()),
            r => r,
        }
    }

    /// `terms` joined by AND (`and`) or OR, lowered in order as the planner folds them: after
    /// a term that folds to the constant that decides (FALSE for AND, TRUE for OR) the rest
    /// are only parsed. Such a term stays (it changes no answer, and the columns a shape
    /// refers to stay those it names) unless it holds a value the planner would have failed
    /// to compute: then it is left out.
    pub(super) fn junction(&self, terms: Vec<super::grammar::Spanned>, and: bool) -> Result<Expr> {
        let mut out = Vec::with_capacity(terms.len());
        let mut decided = false;
        for t in terms {
            if decided {
                let (e, whole) = self.skipped_whole(|| self.condition(t))?;
                if whole {
                    out.push(e);
                }
                continue;
            }
            let e = self.condition(t)?;
            decided = constant(&e) == Some(Some(!and));
            out.push(e);
        }
        Ok(if and {
            super::and_of(out)
        } else {
            super::or_of(out)
        })
    }
}

/// The constant the planner folds condition `e` to (`Some(None)`: NULL), or `None` while it
/// reads a column.
pub(super) fn constant(e: &Expr) -> Option<Option<bool>> {
    let mut reads = false;
    e.columns(&mut |_| reads = true);
    if !reads {
        // every planning error of a constant has been raised by now
        return eval(e, &[]).ok();
    }
    match e {
        // a strict operator with a NULL operand (a one-member IN list is PostgreSQL's `=`)
        Expr::Cmp { value: None, .. } => Some(None),
        Expr::In { values, .. } if values.as_slice() == [None] => Some(None),
        Expr::Compare { left, right, .. } | Expr::ArrayOp { left, right, .. }
            if is_null(left) || is_null(right) =>
        {
            Some(None)
        }
        // `x = ANY(array)` is folded only when both are constants (PostgreSQL's
        // ScalarArrayOpExpr is not a strict operator to the planner)
        Expr::IsTruth {
            expr,
            value,
            negated,
        } => {
            let v = constant(expr)?;
            Some(Some((v == *value) != *negated))
        }
        Expr::Not(x) => constant(x).map(|v| v.map(|b| !b)),
        Expr::And(es) | Expr::Or(es) => {
            let and = matches!(e, Expr::And(_));
            let values: Vec<Option<Option<bool>>> = es.iter().map(constant).collect();
            if values.contains(&Some(Some(!and))) {
                return Some(Some(!and));
            }
            if values.contains(&None) {
                return None;
            }
            Some(if values.contains(&Some(None)) {
                None
            } else {
                Some(and)
            })
        }
        _ => None,
    }
}

/// Whether `s` is the NULL constant.
pub(super) fn is_null(s: &Scalar) -> bool {
    matches!(s, Scalar::Const(None))
}

/// Whether `s` is a strict function or operator with a NULL constant operand: NULL, as the
/// planner folds it.
pub(super) fn strict_null(s: &Scalar) -> bool {
    match s {
        Scalar::Cast(x, _, _) | Scalar::Negate(x, _) => is_null(x),
        Scalar::Call(f, args, _) => *f != Func::Coalesce && args.iter().any(is_null),
        Scalar::Arith(_, a, b, _) | Scalar::Concat(a, b) => is_null(a) || is_null(b),
        Scalar::Column(_) | Scalar::Const(_) | Scalar::Condition(_) | Scalar::Array(..) => false,
    }
}
