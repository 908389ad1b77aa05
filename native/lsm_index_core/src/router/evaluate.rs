//! A candidate group's evaluation on a row: its columns parsed, its template's residual run
//! once for all its shapes (once per shape when they read subquery views), the ids it admits
//! taken; staged so that a row's candidate groups' cache misses overlap.

use super::bits::intersects;
use super::groups::{Group, Template};
use super::route::Scratch;
use super::row::Row;
use super::shapes::State;
use super::view_slots::ShapeViews;
use super::views::Views;
use crate::predicate::{EvalError, Value};
use crate::Result;
use smallvec::SmallVec;
use std::sync::Arc;

/// Candidates met and residual runs made by one row's route.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) candidates: u64,
    pub(super) evaluations: u64,
    /// Shapes answered by their group's one run.
    pub(super) saved: u64,
}

/// How one row's candidates are evaluated.
pub(super) struct How<'a> {
    /// The results of subqueries, if the router's shapes have any.
    pub(super) views: Option<&'a Views>,
    /// A view router's: an evaluation error is no match.
    pub(super) strict: bool,
    /// For the new row of an update: the columns that changed.
    pub(super) changed: Option<&'a [u64]>,
}

impl How<'_> {
    /// Whether shapes of template `t` may answer differently on this row than on the old
    /// row of its update (they read a changed column); always for a single row.
    pub(super) fn fresh(&self, t: &Template) -> bool {
        self.changed.is_none_or(|ch| intersects(&t.mask, ch))
    }
}

/// Runs the candidate groups `found` (handles) on `row`, adding the ids they admit to `out`.
/// Staged: every group is looked up and touched before any is run, so their cache misses
/// overlap instead of waiting one by one behind each run.
pub(super) fn run_found(
    st: &State,
    found: &[u32],
    row: &mut Row<'_, '_>,
    how: &How<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
    tally: &mut Tally,
) -> Result<()> {
    let mut groups: SmallVec<[&Group; 64]> = SmallVec::new();
    // absent: being added or removed right now (not published)
    groups.extend(found.iter().filter_map(|&g| st.groups.get(g)));
    touch(&groups);
    for group in groups {
        tally.candidates += group.ids.len() as u64;
        if how.fresh(&group.template) {
            run_group(group, row, how, scratch, out, tally)?;
        }
    }
    Ok(())
}

/// Adds the ids of `group` that take `row` to `out`: its template run once for all of them,
/// or once per shape when they read subquery views (each shape its own view of them). None
/// when `row` is an update's new row and none of the group's columns changed (the old row
/// answered for it). Its columns are parsed now; when one does not parse, every id is taken
/// (the shape is a candidate or scanned, so the row could match it).
pub(super) fn run_group(
    group: &Group,
    row: &mut Row<'_, '_>,
    how: &How<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
    tally: &mut Tally,
) -> Result<()> {
    let (views, strict) = (how.views, how.strict);
    if !row.fresh(&group.template.mask)? {
        return Ok(());
    }
    if !row.parse(&group.template.mask)? {
        out.extend_from_slice(&group.ids);
        return Ok(());
    }
    let row = row.values();
    if views.is_some() && !group.views.is_empty() {
        for &id in &group.ids {
            tally.evaluations += 1;
            if matches(id, group, row, scratch, views, strict) {
                out.push(id);
            }
        }
    } else if let Some(&first) = group.ids.first() {
        tally.evaluations += 1;
        tally.saved += group.ids.len() as u64 - 1;
        if matches(first, group, row, scratch, None, strict) {
            out.extend_from_slice(&group.ids);
        }
    }
    Ok(())
}

/// Whether shape `id` of `group` takes `row` (see [`matches`]), its columns parsed now: yes
/// when one does not parse (see [`run_group`]); no when none of them changed since the old
/// row of `row`'s update (it answered there).
pub(super) fn takes(
    id: u32,
    group: &Group,
    row: &mut Row<'_, '_>,
    scratch: &mut Scratch,
    views: Option<&Views>,
    strict: bool,
    tally: &mut Tally,
) -> Result<bool> {
    if !row.fresh(&group.template.mask)? {
        return Ok(false);
    }
    if !row.parse(&group.template.mask)? {
        return Ok(true);
    }
    tally.evaluations += 1;
    Ok(matches(id, group, row.values(), scratch, views, strict))
}

/// Loads the first bytes a run of each of `groups` reads (its ids, its template's column
/// mask, first instruction and constant): independent loads, so their cache misses overlap.
/// What it buys at a million shapes is measured in DESIGN.md ("Filter `:map` vs `:lsm`").
fn touch(groups: &[&Group]) {
    for g in groups {
        std::hint::black_box((g.ids.first().copied(), Arc::as_ptr(&g.template)));
    }
    for g in groups {
        let t = &g.template;
        std::hint::black_box((t.mask.as_ptr(), t.residual.ops.as_ptr()));
    }
    for g in groups {
        let t = &g.template;
        let first_op = t.residual.ops.first().map(std::mem::discriminant);
        let first_constant = t.residual.constants.first().map(std::mem::discriminant);
        std::hint::black_box((t.mask.first().copied(), first_op, first_constant));
    }
}

/// Whether shape `id` of `group` takes `row`: its residual is true (its subqueries answered
/// by `views`), or cannot be evaluated on it (an error PostgreSQL would raise: the row could
/// match, so it is routed — unless `strict`, a view router's, where it is not; counted).
fn matches(
    id: u32,
    group: &Group,
    row: &[Option<Value>],
    scratch: &mut Scratch,
    views: Option<&Views>,
    strict: bool,
) -> bool {
    let residual = &group.template.residual;
    let answer = match views.filter(|_| !group.views.is_empty()) {
        None => residual.run(row, &mut scratch.stack),
        Some(views) => {
            let mut probe = ShapeViews {
                views,
                shape: id,
                ids: &group.views,
                failed: false,
            };
            let answer = residual.run_with(row, &mut scratch.stack, &mut probe);
            if probe.failed {
                Err(EvalError::NoView)
            } else {
                answer
            }
        }
    };
    match answer {
        Ok(answer) => answer == Some(true),
        Err(_) => {
            scratch.counts.evaluation_errors += 1;
            !strict
        }
    }
}
