//! Conjuncts the router finds through its ordered indexes when no equality finds a shape: a
//! range of one column's values (`a > 5 AND a <= 9`, `BETWEEN`, and `LIKE 'abc%'` as the
//! texts from `abc` to the last text starting with it) or a literal every matching text holds
//! (`LIKE '%bug%'`). The conjunct stays in the residual: the index only narrows candidates.
//!
//! ```text
//! priority > 2 AND priority < 9      range  priority ∈ [2, 9]   (closed: the residual is exact)
//! lower(title) LIKE 'bug%'           range  lower(title) ∈ ['bug', 'bug' + every suffix]
//! title ILIKE '%bug%'                infix  lower(title) holds 'bug'
//! ```

use super::like_plan::{LikePlan, LikeShape};
use super::order_key::{lower_key, upper_key};
use super::{CmpOp, Expr, Func, Scalar, Value};

/// An ordered-index plan of a shape (see the module doc).
#[derive(Clone, Debug, PartialEq)]
pub struct OrderedPlan {
    /// The column read.
    pub column: usize,
    /// The function its text goes through first (`lower`, `upper`; ILIKE folds as `lower`).
    pub func: Option<Func>,
    /// What a matching row's (folded) value must be.
    pub kind: OrderedKind,
}

impl OrderedPlan {
    /// The closed interval of order keys a range plan's values map into (`None`: a literal
    /// plan, or a bound without order keys).
    pub fn key_range(&self) -> Option<(u64, u64)> {
        let OrderedKind::Range { lo, hi } = &self.kind else {
            return None;
        };
        let lo = match lo {
            Some((v, inclusive)) => lower_key(v, *inclusive)?,
            None => 0,
        };
        let hi = match hi {
            Some(Upper::Value(v, inclusive)) => upper_key(v, *inclusive)?,
            Some(Upper::PrefixOf(prefix)) => prefix_end_key(prefix),
            None => u64::MAX,
        };
        Some((lo, hi))
    }
}

/// The greatest order key of a text starting with `prefix`: its first 8 bytes, the rest of
/// the key's bytes at their maximum (a text's key is its first 8 bytes: see `order_key`).
fn prefix_end_key(prefix: &str) -> u64 {
    let mut k = [0xFFu8; 8];
    let n = prefix.len().min(8);
    k[..n].copy_from_slice(&prefix.as_bytes()[..n]);
    u64::from_be_bytes(k)
}

/// What an [`OrderedPlan`] asks of a row's value.
#[derive(Clone, Debug, PartialEq)]
pub enum OrderedKind {
    /// At least `lo` (none: unbounded) and at most `hi`.
    Range {
        /// The lower bound and whether it is inclusive (`>=`).
        lo: Option<(Value, bool)>,
        /// The upper bound.
        hi: Option<Upper>,
    },
    /// A text holding this literal (already folded as the row's text will be).
    Infix(String),
}

/// The upper bound of a range.
#[derive(Clone, Debug, PartialEq)]
pub enum Upper {
    /// At most this value (inclusive: `<=`; else `<`).
    Value(Value, bool),
    /// At most the last text that starts with this one.
    PrefixOf(String),
}

/// The best ordered plan among `terms` (the conjuncts of a clause), if any: a range bounded
/// on both sides (a prefix is one) before a literal, before a range bounded on one side.
pub fn ordered_plan(terms: &[&Expr]) -> Option<OrderedPlan> {
    let mut best: Option<(u8, OrderedPlan)> = None;
    let mut consider = |rank: u8, plan: OrderedPlan| {
        if best.as_ref().is_none_or(|(r, _)| rank < *r) {
            best = Some((rank, plan));
        }
    };
    for t in terms {
        if let Some(plan) = pattern_plan(t) {
            let rank = match plan.kind {
                OrderedKind::Range { .. } => 0,
                OrderedKind::Infix(_) => 1,
            };
            consider(rank, plan);
        }
    }
    // the bounds of one column, merged over the conjuncts
    type Bound = Option<(Value, bool)>;
    let mut ranges: Vec<(usize, Bound, Bound)> = Vec::new();
    for t in terms {
        let Some((column, lower, v, inclusive)) = bound(t) else {
            continue;
        };
        let at = match ranges.iter().position(|(c, _, _)| *c == column) {
            Some(at) => at,
            None => {
                ranges.push((column, None, None));
                ranges.len() - 1
            }
        };
        let (_, lo, hi) = &mut ranges[at];
        // any one bound of each side is sound; the tighter one finds fewer candidates
        let side = if lower { lo } else { hi };
        let tighter = match side.as_ref() {
            None => true,
            Some((had, was_inclusive)) => {
                let ord = super::eval::compare(&v, had);
                let ord = if lower { ord } else { ord.reverse() };
                ord.is_gt() || (ord.is_eq() && *was_inclusive && !inclusive)
            }
        };
        if tighter {
            *side = Some((v, inclusive));
        }
    }
    for (column, lo, hi) in ranges {
        let rank = if lo.is_some() && hi.is_some() { 0 } else { 2 };
        let kind = OrderedKind::Range {
            lo,
            hi: hi.map(|(v, inclusive)| Upper::Value(v, inclusive)),
        };
        consider(
            rank,
            OrderedPlan {
                column,
                func: None,
                kind,
            },
        );
    }
    best.map(|(_, plan)| plan)
}

/// `column op literal` as a bound of the column: (column, whether it is a lower bound, the
/// literal, whether it is inclusive), for an ordered column type and a non-NULL literal.
fn bound(e: &Expr) -> Option<(usize, bool, Value, bool)> {
    let Expr::Cmp {
        column,
        op,
        value: Some(v),
    } = e
    else {
        return None;
    };
    if !orderable(v) {
        return None;
    }
    let lower = match op {
        CmpOp::Gt | CmpOp::Ge => true,
        CmpOp::Lt | CmpOp::Le => false,
        CmpOp::Eq | CmpOp::Ne => return None,
    };
    Some((
        *column,
        lower,
        v.clone(),
        matches!(op, CmpOp::Ge | CmpOp::Le),
    ))
}

/// Whether values of `v`'s type have an order key (see `crate::predicate::order_key`).
fn orderable(v: &Value) -> bool {
    matches!(
        v,
        Value::Int(_)
            | Value::Float(_)
            | Value::Numeric(_)
            | Value::Date(_)
            | Value::Time(_)
            | Value::Timestamp(_)
            | Value::Timestamptz(_)
            | Value::Enum(_)
            | Value::Text(_)
    )
}

/// The plan of a (not negated) LIKE on a text column or on `lower`/`upper` of one, when its
/// pattern has a literal to find it by.
fn pattern_plan(e: &Expr) -> Option<OrderedPlan> {
    let (column, func, pattern, folded) = match e {
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated: false,
        } => (
            *column,
            case_insensitive.then_some(Func::Lower),
            pattern,
            *case_insensitive,
        ),
        Expr::LikeOf {
            expr: Scalar::Call(f, args, _),
            pattern,
            case_insensitive: false,
            negated: false,
        } if f.fold("").is_some() => match args.as_slice() {
            [Scalar::Column(c)] => (*c, Some(*f), pattern, false),
            _ => return None,
        },
        _ => return None,
    };
    let kind = match LikePlan::new(pattern, folded).shape {
        LikeShape::Exact(text) => OrderedKind::Range {
            lo: Some((Value::Text(text.clone()), true)),
            hi: Some(Upper::Value(Value::Text(text), true)),
        },
        LikeShape::Prefix(prefix) => OrderedKind::Range {
            lo: Some((Value::Text(prefix.clone()), true)),
            hi: Some(Upper::PrefixOf(prefix)),
        },
        LikeShape::Infix { required } => OrderedKind::Infix(required),
        LikeShape::AnyText | LikeShape::NoLiteral => return None,
    };
    Some(OrderedPlan { column, func, kind })
}
