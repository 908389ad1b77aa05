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
use std::sync::Arc;

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
        let definition = self.recorded(sql, params)?;
        let columns = self.columns();
        let form = self.prepare(sql, params, &columns)?;
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
            st.narrowest = columns.len();
            st.columns = columns;
        }
        st.insert(id, form, (g, new), definition);
        Ok(())
    }

    /// Adds every shape of `shapes` (id, WHERE clause, parameters) as [`Router::add_shape_with`]
    /// one after the other would, compiling them in chunks on up to [`COMPILE_THREADS`]
    /// threads. `Err((position, error))` for the first shape refused (its clause, or a write
    /// of the catalog or the index): the shapes before it are added, none after.
    pub fn add_shapes(
        &self,
        shapes: &[(u32, &str, &[Option<String>])],
    ) -> std::result::Result<(), (usize, Error)> {
        self.check_open().map_err(|e| (0, e))?;
        let columns = self.columns();
        let threads = if shapes.len() >= PARALLEL_BATCH {
            COMPILE_THREADS.min(std::thread::available_parallelism().map_or(1, |n| n.get()))
        } else {
            1
        };
        let compile = |&(_, sql, params): &(u32, &str, &[Option<String>])| {
            let definition = self.recorded(sql, params)?;
            Ok((definition, self.prepare(sql, params, &columns)?))
        };
        // chunks bound the compiled forms held at once (most are dropped on joining a group)
        let chunks: Vec<_> = shapes.chunks(BATCH_CHUNK).collect();
        let publish = |k: usize, (forms, refused): Batch<(String, Form)>| {
            let base = k * BATCH_CHUNK;
            let w = self.writer.lock();
            for (i, (definition, form)) in forms.into_iter().enumerate() {
                let id = chunks[k][i].0;
                self.publish(&w, id, form, &definition, None, true)
                    .map_err(|e| (base + i, e))?;
            }
            refused.map_or(Ok(()), |(i, e)| Err((base + i, e)))
        };
        if threads <= 1 {
            for (k, chunk) in chunks.iter().enumerate() {
                publish(k, compile_each(chunk, 1, compile))?;
            }
            return Ok(());
        }
        // chunk k compiled by thread k % threads while this one publishes the chunks before
        std::thread::scope(|scope| {
            let mut workers = Vec::with_capacity(threads);
            for t in 0..threads {
                let (tx, rx) = std::sync::mpsc::sync_channel(1);
                let chunks = &chunks;
                let worker = scope.spawn(move || {
                    for k in (t..chunks.len()).step_by(threads) {
                        if tx.send(compile_each(chunks[k], 1, compile)).is_err() {
                            break; // the batch stopped
                        }
                    }
                });
                workers.push((rx, worker));
            }
            let mut done = Ok(());
            for k in 0..chunks.len() {
                done = match workers[k % threads].0.recv() {
                    Ok(compiled) => publish(k, compiled),
                    Err(_) => Err((k * BATCH_CHUNK, compile_panicked())),
                };
                if done.is_err() {
                    break;
                }
            }
            // the receivers dropped: a worker still compiling stops at its next send
            for (rx, worker) in workers {
                drop(rx);
                let _ = worker.join();
            }
            done
        })
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
        let (forms, refused) = compile_each(chunk, threads, |(_, definition)| {
            let (sql, params) = split_definition(definition);
            self.prepare(sql, &params, &columns)
        });
        if let Some((at, e)) = refused {
            return Err(Error::Corrupt {
                file: FileKind::Catalog,
                what: dir.display().to_string(),
                detail: format!("shape {} of the catalog no longer loads: {e}", chunk[at].0),
            });
        }
        Ok(chunk.iter().map(|(id, _)| *id).zip(forms).collect())
    }

    /// The definition text a persistent router's catalog records for `sql` with `params`
    /// (see [`definition`]; empty in memory, where nothing records it). `InvalidPredicate`
    /// for a parameter holding a NUL.
    pub(super) fn recorded(&self, sql: &str, params: &[Option<String>]) -> Result<String> {
        let refused = || Error::InvalidPredicate {
            position: 0,
            reason: "parameters without NUL characters".into(),
        };
        if self.persistent {
            return definition(sql, params).ok_or_else(refused);
        }
        if params.iter().flatten().any(|p| p.contains('\0')) {
            return Err(refused());
        }
        Ok(String::new())
    }

    /// A shape's form compiled from its definition text (see [`definition`]), its template
    /// its own (see [`Router::compile_form`]).
    pub(super) fn compile_definition(
        &self,
        definition: &str,
        columns: &[(String, ColumnType)],
    ) -> Result<Form> {
        let (sql, params) = split_definition(definition);
        self.compile_form(sql, &params, columns)
    }

    /// [`Router::compile_form`], its template the published one when there is an equal one
    /// (so a thread compiling a batch drops its own copy). Takes the state lock: not for a
    /// caller holding it.
    pub(super) fn prepare(
        &self,
        sql: &str,
        params: &[Option<String>],
        columns: &[(String, ColumnType)],
    ) -> Result<Form> {
        let mut form = self.compile_form(sql, params, columns)?;
        if let Some(t) = self.state.read().groups.published(&form.template) {
            form.template = t;
        }
        Ok(form)
    }

    /// A shape compiled from its clause and parameters against `columns` (the table's, or
    /// an open-schema router's view of them: see `schema`).
    pub(super) fn compile_form(
        &self,
        sql: &str,
        params: &[Option<String>],
        columns: &[(String, ColumnType)],
    ) -> Result<Form> {
        let expr = if self.open_schema {
            parse_in(sql, columns, params, self.folding)?
        } else {
            let clauses = self.clauses.get_or_init(Box::default);
            let syntax = clauses.syntax(sql, columns, self.folding)?;
            syntax.lower(columns, params, self.folding)?
        };
        Ok(compiled_shape(compile(&expr), Box::default(), false))
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

/// Batches of at least this many shapes are compiled in parallel.
const PARALLEL_BATCH: usize = 1024;

/// Shapes of a batch compiled before they are published.
const BATCH_CHUNK: usize = 4096;

/// Most threads a batch of shapes is compiled on (the caller's and scoped ones, joined
/// before the call returns).
pub(super) const COMPILE_THREADS: usize = 8;

/// Compiled items, in order, up to the first refused, and that one's position and error.
type Batch<R> = (Vec<R>, Option<(usize, Error)>);

fn compile_panicked() -> Error {
    Error::Poisoned {
        cause: "a thread compiling shapes panicked".into(),
    }
}

/// `compile` of the items, in order, on `threads` threads (the caller's among them): every
/// result before the first refusal, and that refusal with its position.
fn compile_each<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    compile: impl Fn(&T) -> Result<R> + Sync,
) -> Batch<R> {
    let run = |base: usize, part: &[T]| {
        let mut out = Vec::with_capacity(part.len());
        for (i, item) in part.iter().enumerate() {
            match compile(item) {
                Ok(r) => out.push(r),
                Err(e) => return (out, Some((base + i, e))),
            }
        }
        (out, None)
    };
    if threads <= 1 || items.len() < 2 {
        return run(0, items);
    }
    let size = items.len().div_ceil(threads);
    let parts: Vec<_> = std::thread::scope(|scope| {
        let run = &run;
        let mut parts = items.chunks(size).enumerate();
        let first = parts.next();
        let workers: Vec<_> = parts
            .map(|(k, part)| (k, scope.spawn(move || run(k * size, part))))
            .collect();
        let mut done = vec![first.map_or((Vec::new(), None), |(_, p)| run(0, p))];
        for (k, w) in workers {
            let refused = || (Vec::new(), Some((k * size, compile_panicked())));
            done.push(w.join().unwrap_or_else(|_| refused()));
        }
        done
    });
    let mut all = Vec::with_capacity(items.len());
    for (part, refused) in parts {
        all.extend(part);
        if refused.is_some() {
            return (all, refused);
        }
    }
    (all, None)
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
    Form::new(Arc::new(template), keys, views, ordered.map(|(_, key)| key))
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
