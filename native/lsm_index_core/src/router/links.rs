//! Nested subqueries as derived views. For
//! `a IN (SELECT x FROM t2 WHERE y IN (SELECT z FROM t3 WHERE p3) AND r2)` the outer shape
//! reads the view V2 of the middle subquery, which is not counted from its rows directly but
//! derived (plan §2.5):
//!
//! ```text
//! count2(x) = Σ over y present in V3 of L2(y, x)
//! L2, the link: counts of (y, x) over t2's rows where r2 holds (a NULL y left out)
//! ```
//!
//! A t2 change updates L2 and, where its y is in V3, V2; a value y entering or leaving V3 adds
//! or takes away L2(y, ·) from V2. Both keep the invariant above exactly after every step,
//! so V2 moves exactly when PostgreSQL's result of the middle subquery changes, without a
//! query. A link depends only on t2, its columns, r2 and V3; it lives as long as V2.

use super::views::ViewId;
use crate::key::ColumnKey;
use crate::predicate::Expr;
use crate::{Error, Result};
use std::borrow::Cow;
use std::collections::HashMap;

/// Handles of links in a view router start here (below are views).
pub(super) const LINK_BASE: u32 = 1 << 30;

/// One x of a link under one y: how many rows, and its text (a move's value).
#[derive(Debug)]
pub(super) struct Pair {
    pub(super) count: i64,
    pub(super) text: Box<[Option<Box<[u8]>>]>,
}

/// The link of a derived view (see the module doc).
#[derive(Debug)]
pub(super) struct Link {
    /// The table whose rows it counts (t2).
    pub(super) table: u32,
    /// The columns of t2 tested against the child (y).
    pub(super) tested: Box<[usize]>,
    /// The columns of t2 the derived view selects (x).
    pub(super) projection: Box<[usize]>,
    /// The child view (V3).
    pub(super) child: ViewId,
    /// The derived view (V2).
    pub(super) parent: ViewId,
    /// y key ⇒ x key (`None`: a NULL x) ⇒ pair.
    pairs: HashMap<ColumnKey, HashMap<Option<ColumnKey>, Pair>>,
}

impl Link {
    /// An empty link.
    pub(super) fn new(
        table: u32,
        tested: Box<[usize]>,
        projection: Box<[usize]>,
        child: ViewId,
        parent: ViewId,
    ) -> Link {
        Link {
            table,
            tested,
            projection,
            child,
            parent,
            pairs: HashMap::new(),
        }
    }

    /// Counts `by` more rows (y, x) (`text`: x's text, kept while the pair lives).
    pub(super) fn add(
        &mut self,
        y: ColumnKey,
        x: Option<ColumnKey>,
        text: &[Option<Cow<'_, [u8]>>],
        by: i64,
    ) {
        let xs = self.pairs.entry(y.clone()).or_default();
        let pair = xs.entry(x.clone()).or_insert_with(|| Pair {
            count: 0,
            text: text.iter().map(|c| c.as_deref().map(Box::from)).collect(),
        });
        pair.count += by;
        if pair.count == 0 {
            xs.remove(&x);
            if xs.is_empty() {
                self.pairs.remove(&y);
            }
        }
    }

    /// The x's under `y`.
    pub(super) fn under(&self, y: &[u8]) -> impl Iterator<Item = (&Option<ColumnKey>, &Pair)> {
        self.pairs.get(y).into_iter().flat_map(|xs| xs.iter())
    }

    /// Every y with its x's.
    pub(super) fn all(
        &self,
    ) -> impl Iterator<Item = (&ColumnKey, &HashMap<Option<ColumnKey>, Pair>)> {
        self.pairs.iter()
    }

    /// Forgets every pair (its table was truncated).
    pub(super) fn clear(&mut self) {
        self.pairs.clear();
    }

    /// Pairs held (what the link costs).
    pub(super) fn len(&self) -> usize {
        self.pairs.values().map(HashMap::len).sum()
    }
}

/// A WHERE whose nested subquery at `position` is a top-level conjunct: the columns that
/// conjunct tests, and the WHERE without it (the link's filter).
pub(super) fn split_nested(inner: &Expr, position: u32) -> Result<(Box<[usize]>, Expr)> {
    let is_it = |e: &Expr| matches!(e, Expr::InSubquery { position: p, negated: false, .. } if *p == position);
    let tested = |e: &Expr| match e {
        Expr::InSubquery { columns, .. } => columns.clone().into_boxed_slice(),
        _ => Box::default(),
    };
    match inner {
        e if is_it(e) => Ok((tested(e), Expr::Const(Some(true)))),
        Expr::And(terms) => {
            let Some(at) = terms.iter().position(is_it) else {
                return Err(not_a_chain());
            };
            let rest: Vec<Expr> = terms
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != at)
                .map(|(_, t)| t.clone())
                .collect();
            let filter = match rest.len() {
                1 => rest.into_iter().next().unwrap_or(Expr::Const(Some(true))),
                _ => Expr::And(rest),
            };
            Ok((tested(&terms[at]), filter))
        }
        _ => Err(not_a_chain()),
    }
}

fn not_a_chain() -> Error {
    Error::InvalidPredicate {
        position: 0,
        reason: "a subquery inside a subquery must be an `IN (SELECT …)` conjunct of its WHERE"
            .into(),
    }
}
