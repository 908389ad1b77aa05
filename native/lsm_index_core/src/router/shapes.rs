//! The router's write path: a WHERE clause compiled into a [`Shape`] with its column keys,
//! the keys written to the equality index, then the shape published in the [`State`] (the
//! shape table routes read); removal unpublishes first, then drops the keys.

use super::bits::columns_of;
use super::catalog::{definition, split_definition};
use super::presence::LiveKeys;
pub(super) use super::slots::{slot, slot_key, SlotKey};
use super::view_slots::ViewSlots;
use super::views::ViewId;
use super::{key_hasher, Columns, Router, ScanReason, ShapeCounts};
use crate::key::{column_key, ColumnKey};
use crate::predicate::compile::{compile, Compiled, Program, ViewPlan};
use crate::predicate::{parse_in, ColumnType};
use crate::{Error, FileKind, Result};
use parking_lot::MutexGuard;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

/// Hashes shape ids: they are chosen by the service, not by its clients, so fixed keys
/// suffice, and a map carries no hasher state.
pub(super) type IdHasher = std::hash::BuildHasherDefault<ahash::AHasher>;

/// Shape id -> shape.
pub(super) type ShapeMap = HashMap<u32, Arc<Shape>, IdHasher>;

/// Compiled shapes with their index keys, ready to be written and published.
pub(super) type Prepared = Vec<(u32, Shape, Vec<ColumnKey>)>;

/// A compiled shape.
#[derive(Debug)]
pub(super) struct Shape {
    /// The WHERE clause as a program over a parsed row.
    pub(super) residual: Program,
    /// The columns it reads (a bitset).
    pub(super) mask: Box<[u64]>,
    /// The index slots it is found through (a column, or `lower`/`upper` of one: see
    /// [`slot`]; one per equality conjunct column, one per branch column for an OR of them);
    /// empty when scanned.
    pub(super) indexed: Box<[usize]>,
    /// Why it is scanned (`None`: indexed).
    pub(super) scan: Option<ScanReason>,
    /// Presence-filter hashes of its index keys (to rebuild the filter without the keys).
    pub(super) key_hashes: Box<[u64]>,
    /// The view each of its subqueries reads, by position (empty: it has none).
    pub(super) views: Box<[ViewId]>,
    /// The subqueries it is found through (a row's value in their view): see `view_slots`.
    pub(super) view_plans: Box<[ViewPlan]>,
}

impl Shape {
    /// Whether it is evaluated on every change (found neither through keys nor views).
    pub(super) fn is_scanned(&self) -> bool {
        self.indexed.is_empty() && self.view_plans.is_empty()
    }
}

/// The published shapes: what a route sees.
#[derive(Debug)]
pub(super) struct State {
    /// The table's columns, in row order (an open-schema router's grow as shapes declare
    /// them: see `schema`).
    pub(super) columns: Columns,
    pub(super) shapes: ShapeMap,
    /// Scanned shapes, sorted by id (no map lookup per change).
    pub(super) scanned: Vec<(u32, Arc<Shape>)>,
    /// Per column: the shapes referring to it (conservative routing of unparseable values);
    /// as long as the highest column some shape refers to.
    pub(super) refs: Vec<HashSet<u32, IdHasher>>,
    /// Columns some shape refers to, ascending (the only ones a route reads).
    pub(super) referenced: Vec<usize>,
    /// The index slots some shape is indexed on (see [`slot`]), ascending, each with how
    /// many shapes are: a route probes only these.
    pub(super) indexed_on: Vec<(usize, usize)>,
    /// Scanned shapes by why, in the order of [`ScanReason::ALL`].
    pub(super) scanned_because: [usize; ScanReason::ALL.len()],
    /// The presence filter over the indexed shapes' keys.
    pub(super) presence: LiveKeys,
    /// The shapes found through subquery views.
    pub(super) view_slots: ViewSlots,
}

impl State {
    /// No shapes, for a table of `columns`.
    pub(super) fn new(columns: Columns) -> State {
        State {
            columns,
            shapes: ShapeMap::default(),
            scanned: Vec::new(),
            refs: Vec::new(),
            referenced: Vec::new(),
            indexed_on: Vec::new(),
            scanned_because: [0; ScanReason::ALL.len()],
            presence: LiveKeys::default(),
            view_slots: ViewSlots::default(),
        }
    }

    /// Shapes held, by kind.
    pub(super) fn counts(&self) -> ShapeCounts {
        ShapeCounts {
            scanned: self.scanned.len(),
            indexed: self.shapes.len() - self.scanned.len(),
            scanned_because: self.scanned_because,
        }
    }

    /// Publishes shape `id` (its keys are in the index already).
    pub(super) fn insert(&mut self, id: u32, shape: Shape) {
        let shape = Arc::new(shape);
        for c in columns_of(&shape.mask) {
            if self.refs.len() <= c {
                self.refs.resize_with(c + 1, HashSet::default);
            }
            self.refs[c].insert(id);
            if let Err(at) = self.referenced.binary_search(&c) {
                self.referenced.insert(at, c);
            }
        }
        self.view_slots.insert(id, &shape);
        if shape.is_scanned() {
            let at = self.scanned.partition_point(|(s, _)| *s < id);
            self.scanned.insert(at, (id, shape.clone()));
            if let Some(why) = shape.scan {
                self.scanned_because[why.index()] += 1;
            }
        } else if !shape.indexed.is_empty() {
            for &slot in shape.indexed.iter() {
                match self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                    Ok(at) => self.indexed_on[at].1 += 1,
                    Err(at) => self.indexed_on.insert(at, (slot, 1)),
                }
            }
            let shapes = &self.shapes;
            self.presence
                .insert(&shape.key_hashes, || live_hashes(shapes));
        }
        self.shapes.insert(id, shape);
    }

    /// Unpublishes shape `id` (its keys are still in the index), returning it.
    pub(super) fn remove(&mut self, id: u32) -> Option<Arc<Shape>> {
        let shape = self.shapes.remove(&id)?;
        for c in columns_of(&shape.mask) {
            if let Some(refs) = self.refs.get_mut(c) {
                refs.remove(&id);
                if refs.is_empty() {
                    self.referenced.retain(|&r| r != c);
                }
            }
        }
        self.view_slots.remove(id, &shape);
        if shape.is_scanned() {
            if let Ok(at) = self.scanned.binary_search_by_key(&id, |(s, _)| *s) {
                self.scanned.remove(at);
            }
            if let Some(why) = shape.scan {
                self.scanned_because[why.index()] -= 1;
            }
        } else if !shape.indexed.is_empty() {
            for &slot in shape.indexed.iter() {
                if let Ok(at) = self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                    self.indexed_on[at].1 -= 1;
                    if self.indexed_on[at].1 == 0 {
                        self.indexed_on.remove(at);
                    }
                }
            }
            let shapes = &self.shapes;
            self.presence
                .remove(shape.key_hashes.len(), || live_hashes(shapes));
        }
        Some(shape)
    }

    /// Room for `shapes` more shapes with `keys` more index keys.
    pub(super) fn reserve(&mut self, shapes: usize, keys: usize) {
        self.shapes.reserve(shapes);
        let live = &self.shapes;
        self.presence.reserve(keys, || live_hashes(live));
    }
}

/// The presence-filter hashes of the published shapes' keys.
fn live_hashes(shapes: &ShapeMap) -> impl Iterator<Item = u64> + '_ {
    shapes.values().flat_map(|s| s.key_hashes.iter().copied())
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
        let (shape, keys) = self.prepare(&definition, &columns)?;
        let w = self.lock_writer(blocking)?;
        self.publish(&w, id, shape, &keys, &definition, None, blocking)
    }

    /// The writer lock: waits for it when `blocking`, else `WouldBlock` if it is held.
    pub(super) fn lock_writer(&self, blocking: bool) -> Result<MutexGuard<'_, ()>> {
        if blocking {
            Ok(self.writer.lock())
        } else {
            self.writer.try_lock().ok_or_else(busy)
        }
    }

    /// Replaces shape `id` by the compiled `shape` (under the writer lock `w`): the old one
    /// unpublished and its keys dropped, `keys` written, the definition recorded in the
    /// catalog, then `shape` published, with the table's columns set to `columns` when given
    /// (an open-schema router that the shape widened or retyped).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn publish(
        &self,
        w: &MutexGuard<'_, ()>,
        id: u32,
        shape: Shape,
        keys: &[ColumnKey],
        definition: &str,
        columns: Option<Columns>,
        blocking: bool,
    ) -> Result<()> {
        self.remove_locked(w, id, blocking)?;
        let pairs: Vec<(&[u8], u32)> = keys.iter().map(|k| (k.as_slice(), id)).collect();
        // a scanned shape has no keys: no index is made for it
        if !pairs.is_empty() {
            if blocking {
                self.index()?.add_many(&pairs)?;
            } else {
                self.index()?.try_add_many(&pairs)?;
            }
        }
        if let Some(catalog) = self.catalog.lock().as_mut() {
            if let Err(e) = catalog.add(id, definition) {
                // not recorded: not added (the keys are dropped again)
                if let Some(index) = self.index.get() {
                    let _ = index.drop_handle(id);
                }
                return Err(e);
            }
        }
        let mut st = self.state.write();
        if let Some(columns) = columns {
            st.columns = columns;
        }
        st.insert(id, shape);
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
            let (shape, keys) = self.prepare(sql, &columns).map_err(|e| Error::Corrupt {
                file: FileKind::Catalog,
                what: dir.display().to_string(),
                detail: format!("shape {id} of the catalog no longer loads: {e}"),
            })?;
            Ok((*id, shape, keys))
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
    /// table's, or an open-schema router's view of them: see `schema`), with its index keys.
    pub(super) fn prepare(
        &self,
        definition: &str,
        columns: &[(String, ColumnType)],
    ) -> Result<(Shape, Vec<ColumnKey>)> {
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
        let Some(shape) = self.state.write().remove(id) else {
            return Ok(false);
        };
        if !shape.indexed.is_empty() {
            if blocking {
                self.index()?.drop_handle(id)?;
            } else {
                self.index()?.try_drop_handle(id)?;
            }
        }
        Ok(true)
    }
}

/// A compiled clause as a shape with its index keys. `views`: the view each of its
/// subqueries reads, by position; `stale`: its snapshot of one of them held values the shared
/// view lacks, so it cannot be found through views (nor keys: see `ScanReason::StaleSnapshot`)
/// and is scanned.
pub(super) fn compiled_shape(
    compiled: Compiled,
    views: Box<[ViewId]>,
    stale: bool,
) -> (Shape, Vec<ColumnKey>) {
    let mut keys = Vec::new();
    let mut indexed: Box<[usize]> = Box::default();
    let mut view_plans: Box<[ViewPlan]> = Box::default();
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
    }
    let shape = Shape {
        residual: compiled.residual,
        mask: compiled.mask.into_boxed_slice(),
        indexed,
        key_hashes: keys.iter().map(|k| key_hasher().hash_one(k)).collect(),
        scan,
        views,
        view_plans,
    };
    (shape, keys)
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
