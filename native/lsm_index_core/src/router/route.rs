//! The router's read path: a [`Reader`] holds one view of the published shapes; of a
//! change's rows, the columns the route probes are parsed first, each indexed column's value
//! probes the presence filter and then the equality index for candidates, and candidates and
//! scanned shapes run their residual program on the row, whose other columns are parsed only
//! then (a miss parses nothing else, see `row`). An update's new row skips shapes none of
//! whose columns changed (their text, compared bytewise).

use super::bits::{bit, intersects};
use super::bits::{bitset_words, set_bit, Bits};
use super::groups::{Group, Template};
use super::metrics::Counts;
use super::row::{ParsedRow, ParsedRows, Row, RowCells, RowText};
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

    /// [`Reader::route`] of a change whose cells are read from `change`'s sources, each only
    /// when the route needs it (a miss reads only the columns it probes).
    pub fn route_cells(&mut self, change: ChangeCells<'_, '_>, out: &mut Vec<u32>) -> Result<()> {
        self.route_cells_with(change, out, None)
    }

    /// [`Reader::route`] of a router whose shapes may test subqueries: their results are
    /// `views` (without them such a shape is routed every row it could match).
    pub fn route_with(
        &mut self,
        change: &Change,
        out: &mut Vec<u32>,
        views: Option<&Views>,
    ) -> Result<()> {
        let (mut a, mut b);
        let change = match *change {
            Change::Insert(text) => {
                a = text;
                ChangeCells::Insert(&mut a)
            }
            Change::Delete(text) => {
                a = text;
                ChangeCells::Delete(&mut a)
            }
            Change::Update(old, new) => {
                (a, b) = (old, new);
                ChangeCells::Update(&mut a, &mut b)
            }
            Change::Truncate => ChangeCells::Truncate,
        };
        self.route_cells_with(change, out, views)
    }

    fn route_cells_with(
        &mut self,
        change: ChangeCells<'_, '_>,
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
        let mut cells = text;
        let mut row = Row::new(&mut self.rows.old, &mut cells, &st.columns)?;
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
        change: ChangeCells<'_, '_>,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
        rows: &mut ParsedRows,
        views: Option<&Views>,
    ) -> Result<()> {
        out.clear();
        let columns = &st.columns;
        match change {
            ChangeCells::Truncate => out.extend(st.shapes.keys()),
            ChangeCells::Insert(cells) | ChangeCells::Delete(cells) => {
                let mut row = Row::new(&mut rows.old, cells, columns)?;
                self.route_row(st, &mut row, None, out, scratch, views)?;
                scratch.count_unparseable(&row);
            }
            ChangeCells::Update(old, new) => {
                // both rows checked before either is read
                Row::new(&mut rows.new, &mut *new, columns)?;
                let mut row = Row::new(&mut rows.old, &mut *old, columns)?;
                self.route_row(st, &mut row, None, out, scratch, views)?;
                scratch.count_unparseable(&row);
                let mut row = Row::new(&mut rows.new, new, columns)?.after(old);
                // what changed: the probed columns' text compared now (their old candidates
                // are reused when it is the same); the others' only when a group reading them
                // is about to run (`run_group`, `takes`), "changed" until then
                let mut changed: Bits = smallvec::smallvec![0; bitset_words(columns.len())];
                for &c in &st.referenced {
                    set_bit(&mut changed, c);
                }
                for c in probed(st) {
                    if !row.differs(c)? {
                        changed[c / 64] &= !(1 << (c % 64));
                    }
                }
                self.route_row(st, &mut row, Some(&changed), out, scratch, views)?;
                scratch.count_unparseable(&row);
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }

    /// Parses the columns the route of `row` probes (index slots' and view tuples', those
    /// in `changed` for an update's new row: the others reuse the old row's candidates) and
    /// routes `row` to every shape found through one whose text does not parse (the shape
    /// could have been found through any value; found through another column, a shape is
    /// routed only when it is a candidate or scanned: see `run_group`).
    fn probed_columns(
        &self,
        st: &State,
        row: &mut Row<'_, '_>,
        changed: Option<&[u64]>,
        out: &mut Vec<u32>,
    ) -> Result<()> {
        for c in probed(st) {
            if changed.is_none_or(|ch| bit(ch, c)) {
                row.parse_column(c)?;
            }
        }
        // an update's new row is looked up in the ordered indexes again (their candidates
        // are not kept from the old row), so the columns their shapes read are always read
        for c in st.ordered_reads() {
            row.parse_column(c)?;
        }
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
                self.probe(st, slot, key, v, scratch, &mut found)?;
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
fn run_group(
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
fn takes(
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

/// The columns a route probes: its index slots' and its view tuples' (a column may repeat).
fn probed(st: &State) -> impl Iterator<Item = usize> + '_ {
    let slots = st.indexed_on.iter().map(|&(slot, _)| slot_key(slot).column);
    let views = (!st.view_slots.is_empty()).then(|| st.view_slots.columns());
    slots
        .chain(views.into_iter().flatten())
        .chain(st.ordered_reads())
}

/// Whether a shape of `template` is found through a column of `bad` (an index slot's or a
/// subquery view tuple's).
fn found_through(template: &Template, bad: &[u64]) -> bool {
    // found through a range or a literal: as a scanned shape, through any column it reads
    // (the map engine scans it; see `State::ordered_reads`)
    if template.ordered.is_some() && intersects(&template.mask, bad) {
        return true;
    }
    let slots = template.indexed.iter().map(|&s| slot_key(s).column);
    let tuples = template
        .view_plans
        .iter()
        .flat_map(|p| p.columns.iter().copied());
    slots.chain(tuples).any(|c| bit(bad, c))
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
