//! The views' shared multisets: how many inner rows project each value, per view.
//!
//! ```text
//! index   core Index (in memory, count_handles): value key ─▶ {views holding it}
//!         a (value, view) pair is present iff its count is ≥ 1
//! extra   per view: fp ─▶ count − 1, only for counts ≥ 2 (sparse: key projections cost 0)
//! nulls   per view: rows whose projection is NULL;   total: Σ counts (non-NULL rows)
//! ```
//!
//! A batch of deltas is applied in two phases: a read-only one (net delta per (view, value),
//! counts before and after, the index edits of the 0 → ≥1 and ≥1 → 0 crossings) and, once the
//! index admitted its one `try_edit_many` batch (or `edit_many` when the caller may block),
//! the side maps. A refused batch changes nothing. A count that would go below zero (the
//! caller's snapshot disagreed with the stream) stays at zero and is counted as an underflow.

use super::key::ViewId;
use crate::index::{Config, Edit, Index};
use crate::Result;
use std::collections::HashMap;
use std::sync::Arc;

/// One change to a view's multiset: `by` rows projecting `value` (`None`: NULL) enter
/// (`by > 0`) or leave (`by < 0`) view `view`.
#[derive(Clone, Copy, Debug)]
pub struct Delta<'a> {
    /// The view changed.
    pub view: ViewId,
    /// The value key, or `None` for a NULL projection.
    pub value: Option<&'a [u8]>,
    /// Rows added (positive) or removed (negative).
    pub by: i64,
}

/// A value whose count a batch changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Touched {
    /// Its view.
    pub view: ViewId,
    /// Its fingerprint in the view index.
    pub fp: u64,
    /// The first delta of the batch naming it (the caller's handle on the value's text).
    pub delta: u32,
    /// Its count before the batch.
    pub before: u64,
    /// Its count after (never below zero).
    pub after: u64,
    /// By how much the batch would have taken it below zero (0 normally).
    pub shortfall: u64,
}

impl Touched {
    /// The value entered the view (0 → ≥1).
    pub fn entered(&self) -> bool {
        self.before == 0 && self.after > 0
    }

    /// The value left the view (≥1 → 0).
    pub fn left(&self) -> bool {
        self.before > 0 && self.after == 0
    }
}

/// A view a batch changed: its NULL rows, distinct values and non-NULL rows, before and after.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ViewTouched {
    /// The view.
    pub view: ViewId,
    /// NULL rows (before, after).
    pub nulls: (u64, u64),
    /// Distinct values (before, after).
    pub distinct: (u64, u64),
    /// Non-NULL rows (before, after).
    pub total: (u64, u64),
}

impl ViewTouched {
    /// Whether the view was empty before / is empty after (no row at all).
    pub fn empty(&self) -> (bool, bool) {
        (
            self.total.0 == 0 && self.nulls.0 == 0,
            self.total.1 == 0 && self.nulls.1 == 0,
        )
    }
}

/// What one batch did: the values touched (sorted by view, then fingerprint) and the views.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Values whose count changed.
    pub values: Vec<Touched>,
    /// Views whose nulls or values changed, ascending.
    pub views: Vec<ViewTouched>,
}

/// One view's side state.
#[derive(Default, Debug)]
struct Side {
    nulls: u64,
    total: u64,
    /// fp ⇒ count − 1 for counts ≥ 2. Boxed on purpose: most views (key projections) have
    /// none, and `None` costs 8 bytes a view instead of a map's 48.
    #[allow(clippy::box_collection)]
    extra: Option<Box<HashMap<u64, u64>>>,
}

/// Every view's multiset: the shared view index plus sparse side maps.
pub struct Counts {
    index: Arc<Index>,
    sides: Vec<Side>,
    underflows: u64,
}

impl Counts {
    /// Empty counts over an in-memory index made with `config` (`count_handles` forced on).
    pub fn new(config: Config) -> Result<Counts> {
        let index = Index::new(Config {
            count_handles: true,
            ..config
        })?;
        Ok(Counts {
            index,
            sides: Vec::new(),
            underflows: 0,
        })
    }

    /// The view index (value key ⇒ views holding it): what outer rows are routed through.
    pub fn index(&self) -> &Arc<Index> {
        &self.index
    }

    /// The fingerprint the view index files `key` under.
    pub fn fingerprint(&self, key: &[u8]) -> u64 {
        self.index.fingerprint(key)
    }

    /// How many rows of `view` project `key`.
    pub fn count(&self, view: ViewId, key: &[u8]) -> Result<u64> {
        self.count_at(view, key, self.fingerprint(key))
    }

    fn count_at(&self, view: ViewId, key: &[u8], fp: u64) -> Result<u64> {
        if !self.index.contains(key, view)? {
            return Ok(0);
        }
        Ok(1 + self.extra(view, fp))
    }

    fn extra(&self, view: ViewId, fp: u64) -> u64 {
        self.side(view)
            .and_then(|s| s.extra.as_ref()?.get(&fp).copied())
            .unwrap_or(0)
    }

    /// Rows of `view` whose projection is NULL.
    pub fn nulls(&self, view: ViewId) -> u64 {
        self.side(view).map_or(0, |s| s.nulls)
    }

    /// Rows of `view` with a non-NULL projection (the sum of its counts).
    pub fn total(&self, view: ViewId) -> u64 {
        self.side(view).map_or(0, |s| s.total)
    }

    /// Distinct values of `view`, in O(1).
    pub fn distinct(&self, view: ViewId) -> Result<u64> {
        self.index.handle_count(view)
    }

    /// Whether `view` holds no row at all (no value, no NULL).
    pub fn is_empty(&self, view: ViewId) -> bool {
        self.total(view) == 0 && self.nulls(view) == 0
    }

    /// Every value of `view` as (fingerprint, count), ascending: a walk over the whole view
    /// index (see [`Index::fingerprints_of`]), for comparing a snapshot with the view.
    pub fn counts_of(&self, view: ViewId) -> Result<Vec<(u64, u64)>> {
        let fps = self.index.fingerprints_of(view)?;
        Ok(fps
            .into_iter()
            .map(|fp| (fp, 1 + self.extra(view, fp)))
            .collect())
    }

    /// Deltas that would have taken a count (or a NULL count) below zero, so far.
    pub fn underflows(&self) -> u64 {
        self.underflows
    }

    /// Forgets every row of `view` (a truncate, or the view is freed): O(1) in the index
    /// (`drop_handle`), its side maps dropped. Returns the view's state before and after.
    pub fn clear(&mut self, view: ViewId) -> Result<ViewTouched> {
        let before = ViewTouched {
            view,
            nulls: (self.nulls(view), 0),
            distinct: (self.distinct(view)?, 0),
            total: (self.total(view), 0),
        };
        self.index.drop_handle(view)?;
        if let Some(s) = self.sides.get_mut(view as usize) {
            *s = Side::default();
        }
        Ok(before)
    }

    /// Applies `deltas` (a value may appear several times: its deltas are summed, and a net
    /// zero changes nothing); all or nothing. `blocking`: wait for room in the view index
    /// instead of failing with `Error::Overloaded` (nothing applied then).
    pub fn apply(&mut self, deltas: &[Delta<'_>], blocking: bool) -> Result<Applied> {
        // phase 1, read-only: group by (view, fp), net, counts before and after
        let mut order: Vec<(ViewId, u64, u32)> = Vec::with_capacity(deltas.len());
        let mut null_nets: Vec<(ViewId, i64)> = Vec::new();
        for (i, d) in deltas.iter().enumerate() {
            match d.value {
                Some(key) => order.push((d.view, self.fingerprint(key), i as u32)),
                None => null_nets.push((d.view, d.by)),
            }
        }
        order.sort_unstable();
        let mut applied = Applied::default();
        let mut edits: Vec<(&[u8], u32, Edit)> = Vec::new();
        let mut underflows = 0;
        for group in order.chunk_by(|a, b| (a.0, a.1) == (b.0, b.1)) {
            let (view, fp, first) = group[0];
            // summed wide: no batch of i64 deltas can overflow it
            let net: i128 = group
                .iter()
                .map(|&(.., i)| i128::from(deltas[i as usize].by))
                .sum();
            if net == 0 {
                continue;
            }
            let Some(key) = deltas[first as usize].value else {
                continue;
            };
            let before = self.count_at(view, key, fp)?;
            let signed = i128::from(before) + net;
            let (after, shortfall) = if signed < 0 {
                underflows += 1;
                (0, u64::try_from(-signed).unwrap_or(u64::MAX))
            } else {
                (u64::try_from(signed).unwrap_or(u64::MAX), 0)
            };
            if before == after && shortfall == 0 {
                continue;
            }
            if before == 0 && after > 0 {
                edits.push((key, view, Edit::Add));
            } else if before > 0 && after == 0 {
                edits.push((key, view, Edit::Remove));
            }
            applied.values.push(Touched {
                view,
                fp,
                delta: first,
                before,
                after,
                shortfall,
            });
        }
        null_nets.sort_unstable_by_key(|&(v, _)| v);
        let mut nulls: Vec<(ViewId, u64)> = Vec::new();
        for group in null_nets.chunk_by(|a, b| a.0 == b.0) {
            let view = group[0].0;
            let net: i128 = group.iter().map(|&(_, by)| i128::from(by)).sum();
            let signed = i128::from(self.nulls(view)) + net;
            if signed < 0 {
                underflows += 1;
            }
            nulls.push((view, u64::try_from(signed.max(0)).unwrap_or(u64::MAX)));
        }
        // the index batch: refused as a whole, or written
        if blocking {
            self.index.edit_many(&edits)?;
        } else {
            self.index.try_edit_many(&edits)?;
        }
        // phase 2: side maps, and the views' before/after
        self.underflows += underflows;
        applied.views = self.finish(&applied.values, &nulls)?;
        Ok(applied)
    }

    /// Writes the counts ≥ 2 and the NULL/total counters of an admitted batch; returns the
    /// views it touched with their before/after.
    fn finish(&mut self, values: &[Touched], nulls: &[(ViewId, u64)]) -> Result<Vec<ViewTouched>> {
        let mut views: Vec<ViewTouched> = Vec::new();
        let mut at: HashMap<ViewId, usize> = HashMap::new();
        for t in values {
            let i = self.touched(&mut views, &mut at, t.view)?;
            let v = &mut views[i];
            // `distinct` was read after the index batch: undo the crossings for "before"
            v.distinct.0 = v.distinct.0 + u64::from(t.left()) - u64::from(t.entered());
            v.total.1 = (i128::from(v.total.1) + i128::from(t.after) - i128::from(t.before)) as u64;
            let total = v.total.1;
            let side = self.side_mut(t.view);
            side.total = total;
            let extra = side.extra.get_or_insert_with(Default::default);
            if t.after >= 2 {
                extra.insert(t.fp, t.after - 1);
            } else {
                extra.remove(&t.fp);
            }
            if extra.is_empty() {
                side.extra = None;
            }
        }
        for &(view, after) in nulls {
            let i = self.touched(&mut views, &mut at, view)?;
            views[i].nulls.1 = after;
            self.side_mut(view).nulls = after;
        }
        views.sort_unstable_by_key(|v| v.view);
        Ok(views)
    }

    /// The position of `view` in `views`, added with its current state (before and after
    /// alike) when first met.
    fn touched(
        &self,
        views: &mut Vec<ViewTouched>,
        at: &mut HashMap<ViewId, usize>,
        view: ViewId,
    ) -> Result<usize> {
        if let Some(&i) = at.get(&view) {
            return Ok(i);
        }
        at.insert(view, views.len());
        let distinct = self.distinct(view)?;
        let (nulls, total) = (self.nulls(view), self.total(view));
        views.push(ViewTouched {
            view,
            nulls: (nulls, nulls),
            distinct: (distinct, distinct),
            total: (total, total),
        });
        Ok(views.len() - 1)
    }

    fn side(&self, view: ViewId) -> Option<&Side> {
        self.sides.get(view as usize)
    }

    fn side_mut(&mut self, view: ViewId) -> &mut Side {
        let i = view as usize;
        if self.sides.len() <= i {
            self.sides.resize_with(i + 1, Side::default);
        }
        &mut self.sides[i]
    }
}
