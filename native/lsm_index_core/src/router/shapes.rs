//! The router's write path: a WHERE clause compiled into a [`Form`] (its template, column
//! keys and views), the shape placed in the group of its form (a new group's keys written to
//! the equality index first), then published in the `State` (what routes read); removal
//! unpublishes first, then drops the keys of a group it emptied.

use super::catalog::{definition, split_definition};
use super::groups::{Form, Template};
use super::ordered::ordered_key;
pub(super) use super::slots::{slot, slot_key, SlotKey};
pub(super) use super::state::{IdHasher, Prepared, State};
use super::views::ViewId;
use super::{Columns, Router, ScanReason};
use crate::key::{column_key, ColumnKey};
use crate::predicate::compile::{compile, Compiled, ViewPlan};
use crate::predicate::{parse_in, ColumnType};
use crate::{Error, FileKind, Result};
use parking_lot::MutexGuard;
use std::path::Path;

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
            Some(p) => p.catalog.remove(id),
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
        if let Some(p) = self.catalog.lock().as_mut() {
            if let Err(e) = p.catalog.add(id, definition) {
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
        st.insert(id, form, (g, new), definition);
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
