//! A router over a tenant's tables whose shapes may test subqueries
//! (`project_id IN (SELECT id FROM projects WHERE owner_id = $1)`): a [`RouterSet`] of
//! fixed-column routers plus [`Linked`], the subquery views, their view routers and which
//! shape reads which view.
//!
//! ```text
//! add: parse against the tables ─▶ per subquery: view key ─▶ attach (seeded with the
//!      caller's rows; a new view's WHERE joins its table's view router) ─▶ outer shape
//!      compiled with its views, published in its table's router
//! change of table t ─▶ t's view router: views whose WHERE holds on the old / new row
//!      ─▶ deltas (view, projected value, ±1) ─▶ outer old row routed by the views before
//!      ─▶ Views::apply (all or nothing) ─▶ moves ─▶ outer new row routed by the views after
//! ```
//!
//! Routing is stateful for tables some view reads: each change must be routed once, in
//! stream order (routing one twice counts its rows twice). Changes of other tables only read
//! the views. Lock order: the set's writer, then `linked`, then a table router's locks.

use super::ids::ShapeName;
use super::row::RowText;
use super::set::{RouterSet, Tables};
use super::views::{
    project, Attachment, Delta, Moves, Polarity, Projected, Seed, ViewId, ViewKey, Views,
};
use super::{Change, Router};
use crate::index::Config;
use crate::key::ColumnKey;
use crate::predicate::{self, parse_with_tables, CaseFolding, TableDef, Value};
use crate::{Error, Result};
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::sync::Arc;

/// Most subqueries in one shape (a position is one byte).
const MAX_SUBQUERIES: usize = 255;

/// Attachments a crossing may fan out to before a non-blocking route hands the change to a
/// blocking caller (a dirty scheduler): building that many moves takes a while.
const FAN_OUT_NON_BLOCKING: usize = 4_096;

/// The subquery side of a router over declared tables.
pub(super) struct Linked {
    /// The tables, as clauses name them.
    tables: Vec<TableDef>,
    views: Views,
    /// Per table, its view router (a shape per view over that table).
    inner: Vec<Arc<Router>>,
    /// Per view number: its table and projected columns (`None`: free).
    defs: Vec<Option<ViewDef>>,
    /// Per table, how many views read it (0: its changes only read views).
    over: Vec<usize>,
    /// Shapes with subqueries: handle ⇒ (table, view by position).
    held: HashMap<u32, (u32, Box<[ViewId]>)>,
}

/// What a view selects.
struct ViewDef {
    table: u32,
    projection: Box<[usize]>,
}

/// A shape's snapshot of one subquery, as the caller gives it.
#[derive(Clone, Copy, Debug)]
pub enum SeedText<'a> {
    /// Its result rows, PostgreSQL text per selected column (`None`: NULL); duplicates
    /// included.
    Rows(&'a [Vec<Option<&'a [u8]>>]),
    /// "My snapshot is the router's view now" (the view must exist).
    Current,
}

/// A shape of a router over declared tables.
#[derive(Clone, Copy, Debug)]
pub struct SeededShape<'a> {
    /// Its table's number.
    pub table: u32,
    /// Its name.
    pub name: ShapeName<'a>,
    /// Its WHERE clause.
    pub sql: &'a str,
    /// The values of `$1`, `$2`, ... (`None`: NULL).
    pub params: &'a [Option<String>],
    /// Its snapshot of each subquery, by position (textual order of their `SELECT`).
    pub seeds: &'a [SeedText<'a>],
}

/// The projected cells of one delta (a move's value, as PostgreSQL text).
pub type ValueText<'a> = SmallVec<[Option<&'a [u8]>; 2]>;

/// What one change did to the views: the moves, and the text of each value they name
/// (`MoveValue::Delta(i)` is `texts[i]`). Cleared by each route.
#[derive(Debug, Default)]
pub struct Moved<'a> {
    /// The moves, sorted by shape.
    pub moves: Moves,
    /// The projected text of each delta of the change.
    pub texts: Vec<ValueText<'a>>,
}

impl RouterSet {
    /// A router over `tables` (numbered by position) whose shapes may test subqueries of
    /// each other; case folds as `folding` says; every index made with `config`.
    pub fn with_tables(
        tables: Vec<TableDef>,
        folding: CaseFolding,
        config: Config,
    ) -> Result<RouterSet> {
        if tables.is_empty() {
            return Err(Error::InvalidColumns {
                reason: "a router needs at least one table".into(),
            });
        }
        for (i, t) in tables.iter().enumerate() {
            if tables[..i]
                .iter()
                .any(|u| (&u.schema, &u.name) == (&t.schema, &t.name))
            {
                return Err(Error::InvalidColumns {
                    reason: format!("table {}.{} declared twice", t.schema, t.name),
                });
            }
        }
        let mut outer = Vec::new();
        let mut inner = Vec::new();
        for t in &tables {
            outer.push(Arc::new(Router::new(
                t.columns.clone(),
                folding,
                config.clone(),
            )?));
            inner.push(Arc::new(Router::new_views(
                t.columns.clone(),
                folding,
                config.clone(),
            )?));
        }
        let linked = Linked {
            views: Views::new(config.clone())?,
            over: vec![0; tables.len()],
            tables,
            inner,
            defs: Vec::new(),
            held: HashMap::new(),
        };
        RouterSet::build(folding, config, Arc::new(outer), Some(linked))
    }

    /// The declared tables (a router over declared tables; empty for a filter's set).
    pub fn table_defs(&self) -> Vec<TableDef> {
        self.linked
            .as_ref()
            .map_or_else(Vec::new, |l| l.read().tables.clone())
    }

    /// Adds (or replaces) `shape`, its views seeded with its snapshots. Waits for locks and
    /// room when `blocking`, else `WouldBlock` / `Overloaded` with nothing changed. A clause
    /// or seed that is refused changes nothing.
    pub fn add_seeded(&self, shape: &SeededShape<'_>, blocking: bool) -> Result<()> {
        let linked = self.linked()?;
        let _w = self.lock(blocking)?;
        let tables = self.tables();
        let router = tables
            .get(shape.table as usize)
            .ok_or_else(|| unknown_table(shape.table, tables.len()))?
            .clone();
        let parsed = {
            let l = linked.read();
            parse_with_tables(
                shape.sql,
                shape.table,
                &l.tables,
                shape.params,
                self.folding,
            )?
        };
        let subqueries = &parsed.subqueries;
        if subqueries.iter().any(|s| s.parent.is_some()) {
            return Err(Error::InvalidPredicate {
                position: 0,
                reason: "a subquery inside a subquery: not supported yet".into(),
            });
        }
        if subqueries.len() > MAX_SUBQUERIES {
            return Err(Error::InvalidPredicate {
                position: 0,
                reason: format!("at most {MAX_SUBQUERIES} subqueries in a clause"),
            });
        }
        if shape.seeds.len() != subqueries.len() {
            return Err(Error::InvalidSeed {
                position: shape.seeds.len().min(subqueries.len()) as u32,
                reason: format!(
                    "one list of values per subquery: {} given, the clause has {}",
                    shape.seeds.len(),
                    subqueries.len()
                ),
            });
        }
        let mut l = if blocking {
            linked.write()
        } else {
            linked.try_write().ok_or(Error::WouldBlock {
                reason: "a change is being routed through the views",
            })?
        };
        let seeds = subqueries
            .iter()
            .zip(shape.seeds)
            .enumerate()
            .map(|(i, (sq, seed))| l.project_seed(i, sq, seed))
            .collect::<Result<Vec<_>>>()?;
        let h = self.names_mut().intern(shape.name);
        l.remove_held(&tables, h, blocking)?;
        let mut views: Vec<ViewId> = Vec::with_capacity(subqueries.len());
        let attached = subqueries
            .iter()
            .zip(&seeds)
            .enumerate()
            .try_for_each(|(i, (sq, seed))| {
                let seed = match seed {
                    Some(rows) => Seed::Rows(rows),
                    None => Seed::Current,
                };
                let view = l
                    .attach(h, i as u8, sq, seed, blocking)
                    .map_err(|e| match e {
                        Error::InvalidView { reason, .. } => Error::InvalidSeed {
                            position: i as u32,
                            reason,
                        },
                        e => e,
                    })?;
                views.push(view);
                Ok(())
            });
        let stale = views.iter().enumerate().any(|(i, &v)| {
            l.views
                .shapes()
                .diff(v, h, i as u8)
                .is_some_and(|d| d.has_positive())
        });
        let published = attached.and_then(|()| {
            router.add_with_views(h, &parsed.expr, views.clone().into(), stale, blocking)
        });
        match published {
            Ok(()) => {
                if !views.is_empty() {
                    l.held.insert(h, (shape.table, views.into()));
                }
                Ok(())
            }
            Err(e) => {
                for (i, &v) in views.iter().enumerate() {
                    l.detach(h, i as u8, v, true)?;
                }
                self.forget_if_gone(&tables, h);
                Err(e)
            }
        }
    }

    /// Removes shape `h` of a router over declared tables; whether there was one.
    pub(super) fn remove_linked(&self, h: u32, blocking: bool) -> Result<bool> {
        let linked = self.linked()?;
        let mut l = if blocking {
            linked.write()
        } else {
            linked.try_write().ok_or(Error::WouldBlock {
                reason: "a change is being routed through the views",
            })?
        };
        l.remove_held(&self.tables(), h, blocking)
    }

    /// Routes `change` of table `table`: writes the sorted ids of the shapes it affects to
    /// `out` (cleared first) and, for a table some view reads, updates the views and appends
    /// the moves to `moved`. Non-blocking: `WouldBlock` (nothing changed) when the views are
    /// busy or the change would move more than a few thousand shapes; retry blocking.
    pub fn route_linked<'a>(
        &self,
        table: u32,
        change: &Change<'a>,
        out: &mut Vec<u32>,
        moved: &mut Moved<'a>,
        blocking: bool,
    ) -> Result<()> {
        let linked = self.linked()?;
        moved.moves.clear();
        moved.texts.clear();
        let tables = self.tables();
        let router = tables
            .get(table as usize)
            .ok_or_else(|| unknown_table(table, tables.len()))?;
        {
            let l = if blocking {
                linked.read()
            } else {
                linked.try_read().ok_or(busy_views())?
            };
            if l.over[table as usize] == 0 {
                return router.reader().route_with(change, out, Some(&l.views));
            }
        }
        let mut l = if blocking {
            linked.write()
        } else {
            linked.try_write().ok_or(busy_views())?
        };
        l.route_inner(router, table, change, out, moved, blocking)
    }

    /// Waits until the view index's and the view routers' background compaction is idle
    /// (the tables' own indexes: [`RouterSet::wait_idle`]).
    pub fn wait_views_idle(&self) -> Result<()> {
        let (index, inner) = {
            let l = self.linked()?.read();
            (l.views.counts().index().clone(), l.inner.clone())
        };
        index.wait_idle()?;
        inner.iter().try_for_each(|r| r.wait_idle())
    }

    /// The views, for reading (metrics, tests).
    pub fn with_views<T>(&self, f: impl FnOnce(&Views) -> T) -> Result<T> {
        Ok(f(&self.linked()?.read().views))
    }

    fn linked(&self) -> Result<&RwLock<Linked>> {
        self.linked.as_deref().ok_or_else(|| Error::InvalidColumns {
            reason: "a filter's router set has no declared tables".into(),
        })
    }
}

impl Linked {
    /// Subquery `i`'s snapshot projected (`None`: `:current`).
    fn project_seed(
        &self,
        i: usize,
        sq: &predicate::SubqueryDef,
        seed: &SeedText<'_>,
    ) -> Result<Option<Vec<Projected>>> {
        let SeedText::Rows(rows) = seed else {
            return Ok(None);
        };
        let columns = &self.tables[sq.table as usize].columns;
        let bad = |reason: String| Error::InvalidSeed {
            position: i as u32,
            reason,
        };
        let mut out = Vec::with_capacity(rows.len());
        for row in rows.iter() {
            if row.len() != sq.projection.len() {
                return Err(bad(format!(
                    "a row of {} values for a subquery selecting {}",
                    row.len(),
                    sq.projection.len()
                )));
            }
            let mut values: SmallVec<[Option<Value>; 4]> = SmallVec::new();
            for (cell, &c) in row.iter().zip(sq.projection.iter()) {
                let (name, ty) = &columns[c];
                values.push(match cell {
                    None => None,
                    Some(text) => Some(
                        std::str::from_utf8(text)
                            .ok()
                            .and_then(|t| ty.parse(t))
                            .ok_or_else(|| {
                                bad(format!(
                                    "{:?} is not a value of column {name:?} ({})",
                                    String::from_utf8_lossy(text),
                                    ty.name()
                                ))
                            })?,
                    ),
                });
            }
            let refs: SmallVec<[Option<&Value>; 4]> = values.iter().map(Option::as_ref).collect();
            out.push(project(&refs));
        }
        Ok(Some(out))
    }

    /// Attaches occurrence `position` of shape `h` (subquery `sq`) to its view, made (and
    /// its WHERE added to its table's view router) if new.
    fn attach(
        &mut self,
        h: u32,
        position: u8,
        sq: &predicate::SubqueryDef,
        seed: Seed<'_>,
        blocking: bool,
    ) -> Result<ViewId> {
        let columns: Vec<u16> = sq.projection.iter().map(|&c| c as u16).collect();
        let key = ViewKey::of(sq.table, &columns, &sq.sql);
        let polarity = match sq.polarity {
            predicate::Polarity::Positive => Polarity::Positive,
            predicate::Polarity::Negative => Polarity::Negative,
        };
        let a = Attachment {
            shape: h,
            position,
            polarity,
        };
        let arity = sq.projection.len() as u8;
        let view = self.views.attach(key, arity, a, seed, blocking)?;
        let v = view as usize;
        if self.defs.get(v).is_some_and(Option::is_some) {
            return Ok(view);
        }
        let added =
            self.inner[sq.table as usize].add_view(view, &sq.inner, &sq.projection, blocking);
        if let Err(e) = added {
            self.views.detach(view, h, position)?;
            return Err(e);
        }
        if self.defs.len() <= v {
            self.defs.resize_with(v + 1, || None);
        }
        self.defs[v] = Some(ViewDef {
            table: sq.table,
            projection: sq.projection.clone().into(),
        });
        self.over[sq.table as usize] += 1;
        Ok(view)
    }

    /// Detaches occurrence `position` of `h` from `view`, freeing the view with its last user.
    fn detach(&mut self, h: u32, position: u8, view: ViewId, blocking: bool) -> Result<()> {
        if !self.views.detach(view, h, position)? {
            return Ok(());
        }
        if let Some(def) = self.defs.get_mut(view as usize).and_then(Option::take) {
            self.over[def.table as usize] -= 1;
            self.inner[def.table as usize].remove_view(view, blocking)?;
        }
        Ok(())
    }

    /// Removes shape `h` from whichever table holds it, and its attachments.
    fn remove_held(&mut self, tables: &Tables, h: u32, blocking: bool) -> Result<bool> {
        let Some(router) = tables.iter().find(|r| r.contains(h)) else {
            return Ok(false);
        };
        if blocking {
            router.remove_shape(h)?;
        } else {
            router.try_remove_shape(h)?;
        }
        if let Some((_, views)) = self.held.remove(&h) {
            for (i, &v) in views.iter().enumerate() {
                self.detach(h, i as u8, v, blocking)?;
            }
        }
        Ok(true)
    }

    /// Routes a change of table `table`, which some view reads (see the module doc).
    fn route_inner<'a>(
        &mut self,
        router: &Router,
        table: u32,
        change: &Change<'a>,
        out: &mut Vec<u32>,
        moved: &mut Moved<'a>,
        blocking: bool,
    ) -> Result<()> {
        out.clear();
        let mut deltas: Vec<(ViewId, Option<ColumnKey>, i64)> = Vec::new();
        let first = moved.texts.len();
        let (old, new): (Option<&RowText>, Option<&RowText>) = match change {
            Change::Insert(row) => (None, Some(row)),
            Change::Delete(row) => (Some(row), None),
            Change::Update(old, new) => (Some(old), Some(new)),
            Change::Truncate => {
                router.reader().route_with(change, out, Some(&self.views))?;
                let over: Vec<ViewId> = (0..self.defs.len() as u32)
                    .filter(|&v| {
                        self.defs[v as usize]
                            .as_ref()
                            .is_some_and(|d| d.table == table)
                    })
                    .collect();
                for v in over {
                    self.views.truncate(v, &mut moved.moves)?;
                }
                return Ok(());
            }
        };
        let view_router = self.inner[table as usize].clone();
        let mut reader = view_router.reader();
        let mut hits = Vec::new();
        for (row, by) in [(old, -1i64), (new, 1)] {
            let Some(row) = row else { continue };
            let parsed = reader.route_strict(table, row, &mut hits)?;
            for &view in &hits {
                let Some(def) = self.defs.get(view as usize).and_then(Option::as_ref) else {
                    continue;
                };
                let values: SmallVec<[Option<&Value>; 4]> = def
                    .projection
                    .iter()
                    .map(|&c| parsed.values.get(c).and_then(Option::as_ref))
                    .collect();
                let key = match project(&values) {
                    Projected::Key(k) => Some(k),
                    Projected::Null => None,
                };
                deltas.push((view, key, by));
                moved
                    .texts
                    .push(def.projection.iter().map(|&c| row[c]).collect());
            }
        }
        drop(reader);
        if !blocking {
            let mut views: Vec<ViewId> = deltas.iter().map(|d| d.0).collect();
            views.dedup();
            let fan_out: usize = views
                .iter()
                .map(|&v| self.views.shapes().attached(v).len())
                .sum();
            if fan_out > FAN_OUT_NON_BLOCKING {
                moved.texts.truncate(first);
                return Err(Error::WouldBlock {
                    reason: "a change moves many shapes",
                });
            }
        }
        let mut reader = router.reader();
        if let Some(old) = old {
            reader.route_with(&Change::Delete(old), out, Some(&self.views))?;
        }
        drop(reader);
        let batch: Vec<Delta<'_>> = deltas
            .iter()
            .map(|(view, key, by)| Delta {
                view: *view,
                value: key.as_deref(),
                by: *by,
            })
            .collect();
        if !batch.is_empty() {
            if let Err(e) = self.views.apply(&batch, blocking, &mut moved.moves) {
                moved.texts.truncate(first);
                return Err(e);
            }
        }
        if let Some(new) = new {
            let mut after = Vec::new();
            router
                .reader()
                .route_with(&Change::Insert(new), &mut after, Some(&self.views))?;
            out.extend_from_slice(&after);
            out.sort_unstable();
            out.dedup();
        }
        Ok(())
    }
}

fn unknown_table(table: u32, tables: usize) -> Error {
    Error::InvalidColumns {
        reason: format!("table number {table} of a router of {tables} tables"),
    }
}

fn busy_views() -> Error {
    Error::WouldBlock {
        reason: "the views are being changed",
    }
}
