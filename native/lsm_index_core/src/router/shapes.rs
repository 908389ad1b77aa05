//! The router's write path: a WHERE clause compiled into a [`Form`] (its template, column
//! keys and views), the shape placed in the group of its form (a new group's keys written to
//! the equality index first), then published in the [`State`] (what routes read); removal
//! unpublishes first, then drops the keys of a group it emptied.

use super::bits::columns_of;
use super::catalog::{definition, split_definition};
use super::groups::{Form, Group, Groups, Template};
use super::ordered::{ordered_key, OrderedSlots};
use super::presence::LiveKeys;
pub(super) use super::slots::{slot, slot_key, SlotKey};
use super::view_slots::ViewSlots;
use super::views::ViewId;
use super::{key_hasher, Columns, IndexCounts, Router, ScanReason, ShapeCounts};
use crate::key::{column_key, ColumnKey};
use crate::predicate::compile::{compile, Compiled, ViewPlan};
use crate::predicate::{parse_in, ColumnType};
use crate::{Error, FileKind, Result};
use parking_lot::MutexGuard;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::path::Path;

/// Hashes shape ids: they are chosen by the service, not by its clients, so fixed keys
/// suffice, and a map carries no hasher state.
pub(super) type IdHasher = std::hash::BuildHasherDefault<ahash::AHasher>;

/// Shape id -> the handle of its group.
pub(super) type ShapeMap = HashMap<u32, u32, IdHasher>;

/// Compiled shapes, ready to be written and published.
pub(super) type Prepared = Vec<(u32, Form)>;

/// The published shapes: what a route sees.
#[derive(Debug)]
pub(super) struct State {
    /// The table's columns, in row order (an open-schema router's grow as shapes declare
    /// them: see `schema`).
    pub(super) columns: Columns,
    /// Shape id ⇒ its group.
    pub(super) shapes: ShapeMap,
    /// The shapes' groups and the templates they share (see `groups`).
    pub(super) groups: Groups,
    /// Scanned groups, ascending (no map lookup per change).
    pub(super) scanned: Vec<u32>,
    /// Shapes in scanned groups.
    scanned_shapes: usize,
    /// Shapes by how they are found (see `Template::index_kind`).
    by_index: [usize; 5],
    /// Per column: how many shapes read it; as long as the highest column some shape reads.
    refs: Vec<u32>,
    /// Columns some shape refers to, ascending (the only ones a route reads).
    pub(super) referenced: Vec<usize>,
    /// Per column: how many shapes found through an ordered index read it. Such a shape is
    /// scanned to `LsmIndex.Filter`'s map engine, so for the unparseable rule it is too: a
    /// route reads these columns on every row (see `route::probed`).
    ordered_reads: Vec<u32>,
    /// The index slots some group is indexed on (see [`slot`]), ascending, each with how
    /// many groups are: a route probes only these.
    pub(super) indexed_on: Vec<(usize, usize)>,
    /// Scanned shapes by why, in the order of [`ScanReason::ALL`].
    pub(super) scanned_because: [usize; ScanReason::ALL.len()],
    /// The presence filter over the indexed groups' keys.
    pub(super) presence: LiveKeys,
    /// The shapes found through subquery views.
    pub(super) view_slots: ViewSlots,
    /// The groups found through a range or a literal (see `ordered`).
    pub(super) ordered: OrderedSlots,
}

impl State {
    /// No shapes, for a table of `columns`.
    pub(super) fn new(columns: Columns) -> State {
        State {
            columns,
            shapes: ShapeMap::default(),
            groups: Groups::default(),
            scanned: Vec::new(),
            scanned_shapes: 0,
            by_index: [0; 5],
            refs: Vec::new(),
            ordered_reads: Vec::new(),
            referenced: Vec::new(),
            indexed_on: Vec::new(),
            scanned_because: [0; ScanReason::ALL.len()],
            presence: LiveKeys::default(),
            view_slots: ViewSlots::default(),
            ordered: OrderedSlots::default(),
        }
    }

    /// Shapes held, by kind.
    pub(super) fn counts(&self) -> ShapeCounts {
        ShapeCounts {
            scanned: self.scanned_shapes,
            indexed: self.shapes.len() - self.scanned_shapes,
            scanned_because: self.scanned_because,
        }
    }

    /// Shapes by how they are found, and groups and templates.
    pub(super) fn index_counts(&self) -> IndexCounts {
        let [equality, range, literal, view, scanned] = self.by_index;
        IndexCounts {
            equality,
            range,
            literal,
            view,
            scanned,
            groups: self.groups.len(),
            templates: self.groups.template_count(),
        }
    }

    /// The columns shapes found through an ordered index read (see `ordered_reads`).
    pub(super) fn ordered_reads(&self) -> impl Iterator<Item = usize> + '_ {
        let reads = self.ordered_reads.iter().enumerate();
        reads.filter(|(_, n)| **n > 0).map(|(c, _)| c)
    }

    /// The group shape `id` is in, if published.
    pub(super) fn group_of(&self, id: u32) -> Option<&Group> {
        self.shapes.get(&id).and_then(|&g| self.groups.get(g))
    }

    /// Whether a shape other than `id` reads column `c`.
    pub(super) fn read_by_other(&self, c: usize, id: u32) -> bool {
        let by_id = self
            .group_of(id)
            .is_some_and(|g| super::bits::bit(&g.template.mask, c));
        self.refs.get(c).copied().unwrap_or(0) > u32::from(by_id)
    }

    /// The group a shape of `form` would join, and whether it is new (then its keys must
    /// be in the index, under that handle, before [`State::insert`] publishes it).
    pub(super) fn place(&self, form: &Form) -> (u32, bool) {
        match self.groups.find(form) {
            Some(g) => (g, false),
            None => (self.groups.next_handle(), true),
        }
    }

    /// Publishes shape `id` of `form` (absent until now) in the group `placed`, what
    /// [`State::place`] said of it (no group was published or unpublished since).
    pub(super) fn insert(&mut self, id: u32, form: Form, placed: (u32, bool)) {
        let group = match placed {
            (g, false) => {
                self.shapes.insert(id, g);
                self.groups.join(g, id)
            }
            (_, true) => {
                let (g, group) = self.groups.create(form, id);
                debug_assert_eq!(g, placed.0, "placed under another handle");
                self.shapes.insert(id, g);
                let t = &group.template;
                if t.is_scanned() {
                    let at = self.scanned.partition_point(|&s| s < g);
                    self.scanned.insert(at, g);
                } else if !t.indexed.is_empty() {
                    for &slot in t.indexed.iter() {
                        match self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                            Ok(at) => self.indexed_on[at].1 += 1,
                            Err(at) => self.indexed_on.insert(at, (slot, 1)),
                        }
                    }
                    let hashes: SmallVec<[u64; 2]> = group.keys().map(hash_key).collect();
                    let groups = &self.groups;
                    self.presence.insert(&hashes, || live_hashes(groups));
                } else if let (Some(at), Some(key)) = (t.ordered, &group.ordered) {
                    // an index that cannot take it (a literal automaton at its size limit):
                    // the group is checked on every change instead
                    if self.ordered.insert(at, key, g).is_err() {
                        let at = self.scanned.partition_point(|&s| s < g);
                        self.scanned.insert(at, g);
                    }
                }
                self.groups.get(g)
            }
        };
        let Some(group) = group else { return };
        let t = &group.template;
        for c in columns_of(&t.mask) {
            if self.refs.len() <= c {
                self.refs.resize(c + 1, 0);
            }
            self.refs[c] += 1;
            if let Err(at) = self.referenced.binary_search(&c) {
                self.referenced.insert(at, c);
            }
        }
        self.view_slots.insert(id, &t.view_plans, &group.views);
        self.by_index[t.index_kind()] += 1;
        if t.ordered.is_some() {
            for c in columns_of(&t.mask) {
                if self.ordered_reads.len() <= c {
                    self.ordered_reads.resize(c + 1, 0);
                }
                self.ordered_reads[c] += 1;
            }
        }
        if t.is_scanned() {
            self.scanned_shapes += 1;
            if let Some(why) = t.scan {
                self.scanned_because[why.index()] += 1;
            }
        }
    }

    /// Unpublishes shape `id`: its group's handle, and the group when it was the last of it
    /// (then its keys, still in the index, are to be dropped).
    pub(super) fn remove(&mut self, id: u32) -> Option<(u32, Option<Group>)> {
        let g = self.shapes.remove(&id)?;
        let group = self.groups.get(g)?;
        let t = group.template.clone();
        for c in columns_of(&t.mask) {
            if let Some(refs) = self.refs.get_mut(c) {
                *refs -= 1;
                if *refs == 0 {
                    self.referenced.retain(|&r| r != c);
                }
            }
        }
        self.view_slots.remove(id, &t.view_plans, &group.views);
        self.by_index[t.index_kind()] -= 1;
        if t.ordered.is_some() {
            for c in columns_of(&t.mask) {
                if let Some(n) = self.ordered_reads.get_mut(c) {
                    *n -= 1;
                }
            }
        }
        if t.is_scanned() {
            self.scanned_shapes -= 1;
            if let Some(why) = t.scan {
                self.scanned_because[why.index()] -= 1;
            }
        }
        let freed = self.groups.leave(g, id);
        if let Some(group) = &freed {
            if t.is_scanned() {
                if let Ok(at) = self.scanned.binary_search(&g) {
                    self.scanned.remove(at);
                }
            } else if !t.indexed.is_empty() {
                for &slot in t.indexed.iter() {
                    if let Ok(at) = self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                        self.indexed_on[at].1 -= 1;
                        if self.indexed_on[at].1 == 0 {
                            self.indexed_on.remove(at);
                        }
                    }
                }
                let groups = &self.groups;
                self.presence
                    .remove(group.key_count(), || live_hashes(groups));
            } else if let (Some(at), Some(key)) = (t.ordered, &group.ordered) {
                self.ordered.remove(at, key, g);
                if let Ok(at) = self.scanned.binary_search(&g) {
                    self.scanned.remove(at);
                }
            }
        }
        Some((g, freed))
    }

    /// Room for `shapes` more shapes with `keys` more index keys.
    pub(super) fn reserve(&mut self, shapes: usize, keys: usize) {
        self.shapes.reserve(shapes);
        self.groups.reserve(shapes.min(keys));
        let groups = &self.groups;
        self.presence.reserve(keys, || live_hashes(groups));
    }
}

/// The presence-filter hash of index key `key`.
pub(super) fn hash_key(key: &[u8]) -> u64 {
    key_hasher().hash_one(key)
}

/// The presence-filter hashes of the published groups' keys.
fn live_hashes(groups: &Groups) -> impl Iterator<Item = u64> + '_ {
    groups.iter().flat_map(|(_, g)| g.keys().map(hash_key))
}

impl Router {
    /// Adds shape `id` with WHERE clause `sql`, replacing any shape with that id; waits if
    /// the index is overloaded.
    pub fn add_shape(&self, id: u32, sql: &str) -> Result<()> {
        self.add_in(id, sql, &[], true)
    }

    /// [`Router::add_shape`] with the values of `$1`, `$2`, ... (text typed by where each is
    /// used; `None` is NULL).
    pub fn add_shape_with(&self, id: u32, sql: &str, params: &[Option<String>]) -> Result<()> {
        self.add_in(id, sql, params, true)
    }

    /// Like [`Router::add_shape_with`] but never waits: `Overloaded` or `WouldBlock` if it
    /// would have to (then shape `id` is absent; retry with `add_shape_with`).
    pub fn try_add_shape_with(&self, id: u32, sql: &str, params: &[Option<String>]) -> Result<()> {
        self.add_in(id, sql, params, false)
    }

    /// Like [`Router::add_shape`] but never waits (see [`Router::try_add_shape_with`]).
    pub fn try_add_shape(&self, id: u32, sql: &str) -> Result<()> {
        self.add_in(id, sql, &[], false)
    }

    /// Removes shape `id` (no-op when absent).
    pub fn remove_shape(&self, id: u32) -> Result<()> {
        self.check_open()?;
        let w = self.writer.lock();
        if self.remove_locked(&w, id, true)? {
            self.record_removal(id)?;
        }
        Ok(())
    }

    /// Like [`Router::remove_shape`] but never waits (`WouldBlock` / `Overloaded`).
    pub fn try_remove_shape(&self, id: u32) -> Result<()> {
        self.check_open()?;
        if self.persistent {
            return Err(catalog_would_block());
        }
        let w = self.writer.try_lock().ok_or_else(busy)?;
        self.remove_locked(&w, id, false).map(drop)
    }

    /// Appends the removal of `id` to the catalog (persistent routers).
    fn record_removal(&self, id: u32) -> Result<()> {
        match self.catalog.lock().as_mut() {
            Some(c) => c.remove(id),
            None => Ok(()),
        }
    }

    fn add_in(&self, id: u32, sql: &str, params: &[Option<String>], blocking: bool) -> Result<()> {
        self.check_open()?;
        if self.persistent && !blocking {
            return Err(catalog_would_block());
        }
        let definition = definition(sql, params).ok_or_else(|| Error::InvalidPredicate {
            position: 0,
            reason: "parameters without NUL characters".into(),
        })?;
        let columns = self.columns();
        let form = self.prepare(&definition, &columns)?;
        let w = self.lock_writer(blocking)?;
        self.publish(&w, id, form, &definition, None, blocking)
    }

    /// The writer lock: waits for it when `blocking`, else `WouldBlock` if it is held.
    pub(super) fn lock_writer(&self, blocking: bool) -> Result<MutexGuard<'_, ()>> {
        if blocking {
            Ok(self.writer.lock())
        } else {
            self.writer.try_lock().ok_or_else(busy)
        }
    }

    /// Replaces shape `id` by the compiled `form` (under the writer lock `w`): the old one
    /// unpublished (its group's keys dropped if it was the group's last), the keys of a new
    /// group written, the definition recorded in the catalog, then the shape published, with
    /// the table's columns set to `columns` when given (an open-schema router that the shape
    /// widened or retyped).
    pub(super) fn publish(
        &self,
        w: &MutexGuard<'_, ()>,
        id: u32,
        form: Form,
        definition: &str,
        columns: Option<Columns>,
        blocking: bool,
    ) -> Result<()> {
        self.remove_locked(w, id, blocking)?;
        // writers are serialised: the group placed now is the one published below
        let (g, new) = self.state.read().place(&form);
        // a new group's keys go in first (a scanned one has none: no index is made for it);
        // joining a published group writes nothing to the index
        let written = new && !form.keys.is_empty();
        if written {
            let pairs: Vec<(&[u8], u32)> = form.keys.iter().map(|k| (k.as_slice(), g)).collect();
            if blocking {
                self.index()?.add_many(&pairs)?;
            } else {
                self.index()?.try_add_many(&pairs)?;
            }
        }
        if let Some(catalog) = self.catalog.lock().as_mut() {
            if let Err(e) = catalog.add(id, definition) {
                // not recorded: not added (the new group's keys are dropped again)
                if let (true, Some(index)) = (written, self.index.get()) {
                    let _ = index.drop_handle(g);
                }
                return Err(e);
            }
        }
        let mut st = self.state.write();
        if let Some(columns) = columns {
            st.columns = columns;
        }
        st.insert(id, form, (g, new));
        Ok(())
    }

    /// The shapes of a catalog chunk compiled on `threads` threads (a clause that no longer
    /// compiles is a corrupt catalog).
    pub(super) fn prepare_all(
        &self,
        dir: &Path,
        chunk: &[(u32, String)],
        threads: usize,
    ) -> Result<Prepared> {
        let columns = self.columns();
        let load = |(id, sql): &(u32, String)| {
            let form = self.prepare(sql, &columns).map_err(|e| Error::Corrupt {
                file: FileKind::Catalog,
                what: dir.display().to_string(),
                detail: format!("shape {id} of the catalog no longer loads: {e}"),
            })?;
            Ok((*id, form))
        };
        let parts: Vec<Result<Prepared>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunk
                .chunks(chunk.len().div_ceil(threads).max(1))
                .map(|part| scope.spawn(move || part.iter().map(load).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(Error::Poisoned {
                            cause: "a catalog replay thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut all = Prepared::with_capacity(chunk.len());
        for part in parts {
            all.extend(part?);
        }
        Ok(all)
    }

    /// A shape compiled from its definition text (see [`definition`]) against `columns` (the
    /// table's, or an open-schema router's view of them: see `schema`).
    pub(super) fn prepare(
        &self,
        definition: &str,
        columns: &[(String, ColumnType)],
    ) -> Result<Form> {
        let (sql, params) = split_definition(definition);
        let params = params.as_slice();
        let compiled = compile(&parse_in(sql, columns, params, self.folding)?);
        Ok(compiled_shape(compiled, Box::default(), false))
    }

    /// Unpublishes shape `id`, then drops its keys (under the writer lock `_w`). Whether
    /// there was such a shape.
    pub(super) fn remove_locked(
        &self,
        _w: &MutexGuard<'_, ()>,
        id: u32,
        blocking: bool,
    ) -> Result<bool> {
        let Some((g, freed)) = self.state.write().remove(id) else {
            return Ok(false);
        };
        // the group's last shape: its keys go (a shape joining it later writes them again)
        if freed.is_some_and(|group| group.key_count() > 0) {
            if blocking {
                self.index()?.drop_handle(g)?;
            } else {
                self.index()?.try_drop_handle(g)?;
            }
        }
        Ok(true)
    }
}

/// A compiled clause as a shape's form. `views`: the view each of its subqueries reads, by
/// position; `stale`: its snapshot of one of them held values the shared view lacks, so it
/// cannot be found through views (nor keys: see `ScanReason::StaleSnapshot`) and is scanned.
pub(super) fn compiled_shape(compiled: Compiled, views: Box<[ViewId]>, stale: bool) -> Form {
    let mut keys = Vec::new();
    let mut indexed: Box<[usize]> = Box::default();
    let mut view_plans: Box<[ViewPlan]> = Box::default();
    let mut ordered = None;
    let mut scan = compiled.scan;
    if stale && !compiled.views.is_empty() {
        scan = Some(ScanReason::StaleSnapshot);
    } else {
        for plan in &compiled.index {
            for v in &plan.keys {
                let mut k = ColumnKey::new();
                column_key(slot(plan.column, plan.func, plan.element), v, &mut k);
                keys.push(k);
            }
        }
        indexed = compiled
            .index
            .iter()
            .map(|p| slot(p.column, p.func, p.element))
            .collect();
        view_plans = compiled.views.into_boxed_slice();
        ordered = compiled.ordered.as_ref().and_then(ordered_key);
        if compiled.ordered.is_some() && ordered.is_none() {
            scan = Some(ScanReason::NoEquality);
        }
    }
    let template = Template::new(
        compiled.residual,
        compiled.mask.into_boxed_slice(),
        indexed,
        scan,
        view_plans,
        ordered.as_ref().map(|(at, _)| *at),
    );
    Form::new(template, keys, views, ordered.map(|(_, key)| key))
}

fn catalog_would_block() -> Error {
    Error::WouldBlock {
        reason: "a persistent router writes its shape catalog",
    }
}

fn busy() -> Error {
    Error::WouldBlock {
        reason: "another shape is being added or removed",
    }
}
