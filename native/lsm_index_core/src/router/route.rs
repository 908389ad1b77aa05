//! The router's read path: a [`Reader`] holds one view of the published shapes; of a
//! change's rows, the columns the route probes are parsed first, each indexed column's value
//! probes the presence filter and then the equality index for candidates, and candidates and
//! scanned shapes run their residual program on the row, whose other columns are parsed only
//! then (a miss parses nothing else, see `row`). An update's new row skips shapes none of
//! whose columns changed (their text, compared bytewise; `update`: what changed, and what
//! the new row keeps).

use super::bits::{bit, Bits};
use super::evaluate::{run_found, run_group, takes, How, Tally};
use super::metrics::Counts;
use super::probe::{found_through, parse_probed};
use super::route_batch::{Planned, Routes};
use super::row::{ParsedRow, ParsedRows, Row, RowCells, RowText};
use super::shapes::{slot_key, State};
use super::update::{changed_columns, kept_by_update};
use super::views::Views;
use super::{Change, Router};
use crate::key::ColumnKey;
use crate::predicate::compile::Stack;
use crate::predicate::ColumnType;
use crate::{Error, Result};
use parking_lot::RwLockReadGuard;
use std::time::Instant;

/// Routes changes against one view of a router's shapes (see [`Router::reader`]).
pub struct Reader<'r> {
    pub(super) router: &'r Router,
    pub(super) state: RwLockReadGuard<'r, State>,
    pub(super) scratch: Scratch,
    rows: ParsedRows,
    /// Routes made through this reader (every `TIMING_SAMPLE`th is timed, the first one
    /// included).
    routed: u32,
    /// When the last timed route ended.
    pub(super) last: Option<Instant>,
}

/// One route in this many through a reader is timed (two clock reads, ~33 ns each on this
/// VM: a tenth of a miss); a single `route` call is always timed.
const TIMING_SAMPLE: u32 = 8;

/// A change whose rows' cells are read from sources ([`RowCells`]), each only when the route
/// needs it: [`Reader::route_cells`]. As [`Change`], whose rows are [`RowText`] slices.
pub enum ChangeCells<'c, 't> {
    /// A new row.
    Insert(&'c mut dyn RowCells<'t>),
    /// A deleted row (its old values).
    Delete(&'c mut dyn RowCells<'t>),
    /// An updated row: old values, new values.
    Update(&'c mut dyn RowCells<'t>, &'c mut dyn RowCells<'t>),
    /// The table was truncated: every shape is affected.
    Truncate,
}

/// Reusable buffers of one reader's routes.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) key: ColumnKey,
    pub(super) stack: Stack,
    /// Index candidates (group handles) of the first row of an update, per index slot.
    pub(super) candidates: Vec<(usize, Vec<u32>)>,
    /// A text value lower- or upper-cased for a `lower(col)` slot's key.
    pub(super) folded: String,
    /// Metrics of this reader's routes, added to the router's when it is dropped.
    pub(super) counts: Counts,
    /// Views holding a value (a view plan's lookup).
    pub(super) views_found: Vec<u32>,
    /// Shapes found through views.
    pub(super) view_candidates: Vec<u32>,
    /// Groups found through ranges and literals.
    pub(super) ordered_candidates: Vec<u32>,
    /// A batch's probes, made before its routes (`route_batch`); off for single routes.
    pub(super) planned: Planned,
}

impl Scratch {
    /// Counts `row` when a column of it did not parse.
    fn count_unparseable(&mut self, row: &Row<'_, '_>) {
        if row.any_bad() {
            self.counts.unparseable_rows += 1;
        }
    }
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

    /// The table's columns as this reader sees them: a change's rows have one cell each
    /// (or fewer: see [`Reader::row_widths`]).
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.state.columns
    }

    /// The widths of the rows a route reads: the table's, down to its width before columns
    /// were added (a narrower row's missing columns are NULL).
    pub fn row_widths(&self) -> std::ops::RangeInclusive<usize> {
        self.state.narrowest.min(self.state.columns.len())..=self.state.columns.len()
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

    /// [`Reader::route`], and the sorted ids of those shapes whose WHERE holds on the row
    /// after the change in `keep` (cleared first): an insert's all of them, a delete's or a
    /// truncate's none, an update's those its new row matches — what routing the new row as
    /// an insert would answer, from the one route (a sync service's move-out is `out` less
    /// `keep`).
    pub fn route_keep(
        &mut self,
        change: &Change,
        out: &mut Vec<u32>,
        keep: &mut Vec<u32>,
    ) -> Result<()> {
        let [mut a, mut b] = texts(change);
        let cells = cells_of(change, &mut a, &mut b);
        self.route_cells_with(cells, out, Some(keep), None)
    }

    /// [`Reader::route`] of a change whose cells are read from `change`'s sources, each only
    /// when the route needs it (a miss reads only the columns it probes).
    pub fn route_cells(&mut self, change: ChangeCells<'_, '_>, out: &mut Vec<u32>) -> Result<()> {
        self.route_cells_with(change, out, None, None)
    }

    /// [`Reader::route`] of a router whose shapes may test subqueries: their results are
    /// `views` (without them such a shape is routed every row it could match).
    pub fn route_with(
        &mut self,
        change: &Change,
        out: &mut Vec<u32>,
        views: Option<&Views>,
    ) -> Result<()> {
        let [mut a, mut b] = texts(change);
        let cells = cells_of(change, &mut a, &mut b);
        self.route_cells_with(cells, out, None, views)
    }

    fn route_cells_with(
        &mut self,
        change: ChangeCells<'_, '_>,
        out: &mut Vec<u32>,
        keep: Option<&mut Vec<u32>>,
        views: Option<&Views>,
    ) -> Result<()> {
        self.router.check_open()?;
        let start = self.routed.is_multiple_of(TIMING_SAMPLE).then(Instant::now);
        self.routed = self.routed.wrapping_add(1);
        let r = self.router.route_in(
            &self.state,
            change,
            (out, keep),
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
        let mut cells = text;
        let mut row = Row::new(&mut self.rows.old, &mut cells, &st.columns, st.narrowest)?;
        for &c in &st.referenced {
            row.parse_column(c)?;
        }
        if let Some(&c) = st.referenced.iter().find(|&&c| bit(row.bad(), c)) {
            return Err(Error::Unparseable {
                table,
                column: st.columns[c].0.clone(),
            });
        }
        self.router
            .route_row(st, &mut row, None, out, &mut self.scratch, None)?;
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

    /// [`Router::route`] for each change, in one call (one transaction), appended to `outs`:
    /// [`Reader::route_batch`] (on an error, the changes of the chunks before it are there).
    pub fn route_many(&self, changes: &[Change], outs: &mut Vec<Vec<u32>>) -> Result<()> {
        let mut reader = self.reader();
        let mut routes = Routes::default();
        let r = reader.route_batch(changes, &mut routes);
        outs.extend(routes.iter().map(<[u32]>::to_vec));
        r
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

    /// Routes `change` into `out` (cleared first), its rows parsed into `rows` (a batch's
    /// route takes its probes' candidates from `scratch.planned`); with a `keep`, the ids of
    /// `out` whose WHERE holds on the row after the change go there too
    /// ([`Reader::route_keep`]).
    pub(super) fn route_in(
        &self,
        st: &State,
        change: ChangeCells<'_, '_>,
        (out, mut keep): (&mut Vec<u32>, Option<&mut Vec<u32>>),
        scratch: &mut Scratch,
        rows: &mut ParsedRows,
        views: Option<&Views>,
    ) -> Result<()> {
        out.clear();
        if let Some(keep) = keep.as_deref_mut() {
            keep.clear();
        }
        let columns = &st.columns;
        let inserted = matches!(change, ChangeCells::Insert(_));
        match change {
            ChangeCells::Truncate => out.extend(st.shapes.keys()),
            ChangeCells::Insert(cells) | ChangeCells::Delete(cells) => {
                let mut row = Row::new(&mut rows.old, cells, columns, st.narrowest)?;
                self.route_row(st, &mut row, None, out, scratch, views)?;
                scratch.count_unparseable(&row);
            }
            ChangeCells::Update(old, new) => {
                // both rows checked before either is read
                Row::new(&mut rows.new, &mut *new, columns, st.narrowest)?;
                let mut row = Row::new(&mut rows.old, &mut *old, columns, st.narrowest)?;
                self.route_row(st, &mut row, None, out, scratch, views)?;
                scratch.count_unparseable(&row);
                let old_bad = match keep {
                    Some(_) if row.any_bad() => Bits::from_slice(row.bad()),
                    _ => Bits::new(),
                };
                let old_routed = out.len();
                let mut row = Row::new(&mut rows.new, new, columns, st.narrowest)?.after(old);
                let changed = changed_columns(st, &mut row)?;
                self.route_row(st, &mut row, Some(&changed), out, scratch, views)?;
                scratch.count_unparseable(&row);
                if let Some(keep) = keep.as_deref_mut() {
                    let changed = (&changed[..], &old_bad[..]);
                    kept_by_update(st, &mut row, (out, old_routed), changed, keep)?;
                }
            }
        }
        out.sort_unstable();
        out.dedup();
        if let (Some(keep), true) = (keep, inserted) {
            keep.extend_from_slice(out);
        }
        Ok(())
    }

    /// Parses the columns the route of `row` probes (see [`parse_probed`]) and routes
    /// `row` to every shape found through one whose text does not parse (the shape could
    /// have been found through any value; found through another column, a shape is routed
    /// only when it is a candidate or scanned: see `run_group`).
    fn probed_columns(
        &self,
        st: &State,
        row: &mut Row<'_, '_>,
        changed: Option<&[u64]>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        parse_probed(st, row, changed)?;
        if row.any_bad() {
            // rare: a scan
            for (_, group) in st.groups.iter() {
                if found_through(&group.template, row.bad()) {
                    out.extend_from_slice(&group.ids);
                }
            }
        }
        Ok(())
    }

    /// Adds the shapes `row` matches to `out`. `changed`: `row` is the new row of an update
    /// whose old row was routed already, with these columns changed; shapes reading none of
    /// them had the same answer on the old row and are skipped.
    #[allow(clippy::too_many_arguments)]
    fn route_row(
        &self,
        st: &State,
        row: &mut Row<'_, '_>,
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
        self.probed_columns(st, row, changed, out)?;
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
                let Some(v) = row.value(c) else { continue };
                if scratch.planned.on {
                    scratch.planned.take_into(&mut found);
                } else {
                    self.probe(st, slot, key, v, scratch, &mut found)?;
                }
                &found
            };
            run_found(st, candidates, row, &how, scratch, out, &mut tally)?;
            if changed.is_none() {
                saved.push((slot, found));
            }
        }
        scratch.candidates = saved;
        if !st.ordered.is_empty() {
            let mut found = std::mem::take(&mut scratch.ordered_candidates);
            found.clear();
            st.ordered
                .candidates(row.values(), &mut scratch.folded, &mut found);
            run_found(st, &found, row, &how, scratch, out, &mut tally)?;
            scratch.ordered_candidates = found;
        }
        if let Some(views) = views.filter(|_| !st.view_slots.is_empty()) {
            let mut found = std::mem::take(&mut scratch.view_candidates);
            found.clear();
            st.view_slots
                .candidates(views, row.values(), &mut scratch.views_found, &mut found)?;
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
                if takes(id, group, row, scratch, Some(views), strict, &mut tally)? {
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
                run_group(group, row, &how, scratch, out, &mut tally)?;
            }
        }
        scratch.counts.candidates += tally.candidates;
        scratch.counts.evaluations += tally.evaluations;
        scratch.counts.evaluations_saved += tally.saved;
        Ok(())
    }
}

/// The row texts of `change`: an insert's or delete's row twice, an update's old and new
/// rows, none (empty) for a truncate.
pub(super) fn texts<'t>(change: &Change<'t>) -> [&'t RowText<'t>; 2] {
    match *change {
        Change::Insert(row) | Change::Delete(row) => [row, row],
        Change::Update(old, new) => [old, new],
        Change::Truncate => [&[], &[]],
    }
}

/// `change` as cells read from its texts `a` and `b` ([`texts`]).
pub(super) fn cells_of<'c, 't>(
    change: &Change<'_>,
    a: &'c mut &'t RowText<'t>,
    b: &'c mut &'t RowText<'t>,
) -> ChangeCells<'c, 't> {
    match change {
        Change::Insert(_) => ChangeCells::Insert(a),
        Change::Delete(_) => ChangeCells::Delete(a),
        Change::Update(..) => ChangeCells::Update(a, b),
        Change::Truncate => ChangeCells::Truncate,
    }
}
