//! The router's read path: a [`Reader`] holds one view of the published shapes; a change's
//! rows are parsed, each indexed column's value probes the presence filter and then the
//! equality index for candidates, and candidates and scanned shapes run their residual
//! program on the row. An update's new row skips shapes none of whose columns changed.

use super::bits::{bit, intersects};
use super::groups::{Group, Template};
use super::metrics::Counts;
use super::row::RowText;
use super::row::{changed_columns, ParsedRow, ParsedRows};
use super::shapes::{slot_key, SlotKey, State};
use super::view_slots::ShapeViews;
use super::views::Views;
use super::{key_hasher, Change, Router};
use crate::key::{column_key, ColumnKey};
use crate::predicate::compile::Stack;
use crate::predicate::{ColumnType, EvalError, Value};
use crate::{Error, Result};
use parking_lot::RwLockReadGuard;
use smallvec::SmallVec;
use std::sync::Arc;
use std::time::Instant;

/// Routes changes against one view of a router's shapes (see [`Router::reader`]).
pub struct Reader<'r> {
    router: &'r Router,
    state: RwLockReadGuard<'r, State>,
    scratch: Scratch,
    rows: ParsedRows,
    /// Routes made through this reader (every `TIMING_SAMPLE`th is timed, the first one
    /// included).
    routed: u32,
    /// When the last timed route ended.
    last: Option<Instant>,
}

/// One route in this many through a reader is timed (two clock reads, ~33 ns each on this
/// VM: a tenth of a miss); a single `route` call is always timed.
const TIMING_SAMPLE: u32 = 8;

/// Reusable buffers of one reader's routes.
#[derive(Default)]
struct Scratch {
    key: ColumnKey,
    stack: Stack,
    /// Index candidates (group handles) of the first row of an update, per index slot.
    candidates: Vec<(usize, Vec<u32>)>,
    /// A text value lower- or upper-cased for a `lower(col)` slot's key.
    folded: String,
    /// Metrics of this reader's routes, added to the router's when it is dropped.
    counts: Counts,
    /// Views holding a value (a view plan's lookup).
    views_found: Vec<u32>,
    /// Shapes found through views.
    view_candidates: Vec<u32>,
    /// Groups found through ranges and literals.
    ordered_candidates: Vec<u32>,
}

impl Reader<'_> {
    /// When the last timed route through this reader ended (at most `TIMING_SAMPLE` routes
    /// ago): batch callers bound their time slice with it instead of reading the clock.
    pub fn last_timed(&self) -> Option<Instant> {
        self.last
    }

    /// Shapes evaluated on every change (what bounds a route's cost from above).
    pub fn scanned_count(&self) -> usize {
        self.state.scanned.len()
    }

    /// The table's columns as this reader sees them: a change's rows have one cell each.
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.state.columns
    }

    /// The columns some shape refers to, ascending: a row's other columns cannot change
    /// any answer, so callers need only convert these.
    pub fn referenced_columns(&self) -> &[usize] {
        &self.state.referenced
    }

    /// Writes the sorted ids of the shapes `change` affects to `out` (cleared first).
    pub fn route(&mut self, change: &Change, out: &mut Vec<u32>) -> Result<()> {
        self.route_with(change, out, None)
    }

    /// [`Reader::route`] of a router whose shapes may test subqueries: their results are
    /// `views` (without them such a shape is routed every row it could match).
    pub fn route_with(
        &mut self,
        change: &Change,
        out: &mut Vec<u32>,
        views: Option<&Views>,
    ) -> Result<()> {
        self.router.check_open()?;
        let start = self.routed.is_multiple_of(TIMING_SAMPLE).then(Instant::now);
        self.routed = self.routed.wrapping_add(1);
        let r = self.router.route_in(
            &self.state,
            change,
            out,
            &mut self.scratch,
            &mut self.rows,
            views,
        );
        self.scratch.counts.changes += 1;
        if let Some(start) = start {
            let end = Instant::now();
            let ns = end.duration_since(start).as_nanos() as u64;
            self.router.counters().record_latency(ns);
            self.scratch.counts.timed += 1;
            self.scratch.counts.route_ns += ns;
            self.last = Some(end);
        }
        r
    }

    /// A view router's route of one row: writes to `out` the views whose WHERE holds on
    /// `text` and returns the row parsed (the projected columns are referenced). A cell some
    /// view reads that does not parse is `Error::Unparseable` (naming table `table`); an
    /// evaluation error is no match.
    pub(super) fn route_strict(
        &mut self,
        table: u32,
        text: &RowText,
        out: &mut Vec<u32>,
    ) -> Result<&ParsedRow> {
        self.router.check_open()?;
        out.clear();
        let st = &self.state;
        self.rows.old.parse(&st.columns, &st.referenced, text)?;
        if let Some(&c) = st.referenced.iter().find(|&&c| bit(&self.rows.old.bad, c)) {
            return Err(Error::Unparseable {
                table,
                column: st.columns[c].0.clone(),
            });
        }
        self.router
            .route_row(st, &self.rows.old, None, out, &mut self.scratch, None)?;
        out.sort_unstable();
        out.dedup();
        Ok(&self.rows.old)
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.router.counters().add(&self.scratch.counts);
    }
}

impl Router {
    /// Writes the sorted ids of the shapes `change` affects to `out` (cleared first).
    pub fn route(&self, change: &Change, out: &mut Vec<u32>) -> Result<()> {
        self.reader().route(change, out)
    }

    /// [`Router::route`] for each change, in one call (one transaction).
    pub fn route_many(&self, changes: &[Change], outs: &mut Vec<Vec<u32>>) -> Result<()> {
        let mut reader = self.reader();
        for change in changes {
            let mut out = Vec::new();
            reader.route(change, &mut out)?;
            outs.push(out);
        }
        Ok(())
    }

    /// A reader for routing several changes against one view of the shapes (it holds the
    /// shape set's read lock: adds and removes wait until it is dropped).
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            router: self,
            state: self.state.read(),
            scratch: Scratch::default(),
            rows: ParsedRows::default(),
            routed: 0,
            last: None,
        }
    }

    fn route_in(
        &self,
        st: &State,
        change: &Change,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
        rows: &mut ParsedRows,
        views: Option<&Views>,
    ) -> Result<()> {
        out.clear();
        match change {
            Change::Truncate => out.extend(st.shapes.keys()),
            Change::Insert(text) | Change::Delete(text) => {
                rows.old.parse(&st.columns, &st.referenced, text)?;
                self.route_row(st, &rows.old, None, out, scratch, views)?;
            }
            Change::Update(old, new) => {
                rows.old.parse(&st.columns, &st.referenced, old)?;
                rows.new.parse(&st.columns, &st.referenced, new)?;
                let changed = changed_columns(&rows.old, &rows.new);
                self.route_row(st, &rows.old, None, out, scratch, views)?;
                self.route_row(st, &rows.new, Some(&changed), out, scratch, views)?;
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }

    /// Adds the shapes `row` matches to `out`. `changed`: `row` is the new row of an update
    /// whose old row was routed already, with these columns changed; shapes reading none of
    /// them had the same answer on the old row and are skipped.
    #[allow(clippy::too_many_arguments)]
    fn route_row(
        &self,
        st: &State,
        row: &ParsedRow,
        changed: Option<&[u64]>,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
        views: Option<&Views>,
    ) -> Result<()> {
        let strict = self.strict;
        let how = How {
            views,
            strict,
            changed,
        };
        if row.bad.iter().any(|&w| w != 0) {
            // a value that does not parse: every shape reading its column (rare: a scan)
            scratch.counts.unparseable_rows += 1;
            for (_, group) in st.groups.iter() {
                if intersects(&group.template.mask, &row.bad) {
                    out.extend_from_slice(&group.ids);
                }
            }
        }
        let mut tally = Tally::default();
        let mut saved = std::mem::take(&mut scratch.candidates);
        if changed.is_none() {
            saved.clear();
        }
        for &(slot, _) in &st.indexed_on {
            let key = slot_key(slot);
            let c = key.column;
            let reuse = changed.is_some_and(|ch| !bit(ch, c));
            let mut found = Vec::new();
            let candidates: &[u32] = if reuse {
                saved
                    .iter()
                    .find(|(s, _)| *s == slot)
                    .map_or(&[][..], |(_, ids)| ids.as_slice())
            } else {
                let Some(v) = &row.values[c] else { continue };
                self.probe(st, slot, key, v, scratch, &mut found)?;
                &found
            };
            run_found(st, candidates, &row.values, &how, scratch, out, &mut tally);
            if changed.is_none() {
                saved.push((slot, found));
            }
        }
        scratch.candidates = saved;
        if !st.ordered.is_empty() {
            let mut found = std::mem::take(&mut scratch.ordered_candidates);
            found.clear();
            st.ordered
                .candidates(&row.values, &mut scratch.folded, &mut found);
            run_found(st, &found, &row.values, &how, scratch, out, &mut tally);
            scratch.ordered_candidates = found;
        }
        if let Some(views) = views.filter(|_| !st.view_slots.is_empty()) {
            let mut found = std::mem::take(&mut scratch.view_candidates);
            found.clear();
            st.view_slots
                .candidates(views, &row.values, &mut scratch.views_found, &mut found)?;
            found.sort_unstable();
            found.dedup();
            for &id in &found {
                let Some(group) = st.group_of(id) else {
                    continue;
                };
                tally.candidates += 1;
                if !how.fresh(&group.template) {
                    continue;
                }
                tally.evaluations += 1;
                if matches(id, group, &row.values, scratch, Some(views), strict) {
                    out.push(id);
                }
            }
            scratch.view_candidates = found;
        }
        for &g in &st.scanned {
            let Some(group) = st.groups.get(g) else {
                continue;
            };
            if how.fresh(&group.template) {
                run_group(group, &row.values, &how, scratch, out, &mut tally);
            }
        }
        scratch.counts.candidates += tally.candidates;
        scratch.counts.evaluations += tally.evaluations;
        scratch.counts.evaluations_saved += tally.saved;
        Ok(())
    }
}

/// Candidates met and residual runs made by one row's route.
#[derive(Default)]
struct Tally {
    candidates: u64,
    evaluations: u64,
    /// Shapes answered by their group's one run.
    saved: u64,
}

/// How one row's candidates are evaluated.
struct How<'a> {
    /// The results of subqueries, if the router's shapes have any.
    views: Option<&'a Views>,
    /// A view router's: an evaluation error is no match.
    strict: bool,
    /// For the new row of an update: the columns that changed.
    changed: Option<&'a [u64]>,
}

impl How<'_> {
    /// Whether shapes of template `t` may answer differently on this row than on the old
    /// row of its update (they read a changed column); always for a single row.
    fn fresh(&self, t: &Template) -> bool {
        self.changed.is_none_or(|ch| intersects(&t.mask, ch))
    }
}

/// Runs the candidate groups `found` (handles) on `row`, adding the ids they admit to `out`.
/// Staged: every group is looked up and touched before any is run, so their cache misses
/// overlap instead of waiting one by one behind each run.
fn run_found(
    st: &State,
    found: &[u32],
    row: &[Option<Value>],
    how: &How<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
    tally: &mut Tally,
) {
    let mut groups: SmallVec<[&Group; 64]> = SmallVec::new();
    // absent: being added or removed right now (not published)
    groups.extend(found.iter().filter_map(|&g| st.groups.get(g)));
    touch(&groups);
    for group in groups {
        tally.candidates += group.ids.len() as u64;
        if how.fresh(&group.template) {
            run_group(group, row, how, scratch, out, tally);
        }
    }
}

/// Adds the ids of `group` that take `row` to `out`: its template run once for all of them,
/// or once per shape when they read subquery views (each shape its own view of them).
fn run_group(
    group: &Group,
    row: &[Option<Value>],
    how: &How<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<u32>,
    tally: &mut Tally,
) {
    let (views, strict) = (how.views, how.strict);
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
}

impl Router {
    /// Appends to `found` the ids filed under the keys of value `v` in index slot `slot`
    /// (`key`: what the slot keys): the value's own key, `lower`/`upper` of a text value, or
    /// each element of an array (then sorted and deduplicated: a shape found through two
    /// elements is one candidate).
    fn probe(
        &self,
        st: &State,
        slot: usize,
        key: SlotKey,
        v: &Value,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) -> Result<()> {
        match (key.element, key.func, v) {
            (true, _, Value::Array(elements)) => {
                for e in elements.iter().flatten() {
                    self.probe_key(st, slot, e, scratch, found)?;
                }
                if elements.len() > 1 {
                    found.sort_unstable();
                    found.dedup();
                }
            }
            (true, _, _) => {}
            (false, None, v) => self.probe_key(st, slot, v, scratch, found)?,
            // `lower(col) = 'x'`: the key of the function's result, folded into a reused buffer
            (false, Some(f), Value::Text(text)) => {
                let mut folded = Value::Text(std::mem::take(&mut scratch.folded));
                if let Value::Text(buf) = &mut folded {
                    f.fold_into(text, buf);
                }
                let probed = self.probe_key(st, slot, &folded, scratch, found);
                if let Value::Text(buf) = folded {
                    scratch.folded = buf;
                }
                probed?;
            }
            (false, Some(_), _) => {}
        }
        Ok(())
    }

    /// Appends to `found` the ids filed under `v`'s key in slot `slot`: the presence filter
    /// first, the index only when it may hold the key.
    fn probe_key(
        &self,
        st: &State,
        slot: usize,
        v: &Value,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) -> Result<()> {
        column_key(slot, v, &mut scratch.key);
        scratch.counts.presence_probes += 1;
        if !st.presence.may_contain(key_hasher().hash_one(&scratch.key)) {
            return Ok(());
        }
        scratch.counts.presence_passes += 1;
        let before = found.len();
        if let Some(index) = self.index.get() {
            index.lookup_into(&scratch.key, found)?;
        }
        if found.len() == before {
            scratch.counts.presence_false_positives += 1;
        }
        Ok(())
    }
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
