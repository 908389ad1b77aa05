//! A router over a tenant's tables whose shapes may test subqueries
//! (`project_id IN (SELECT id FROM projects WHERE owner_id = $1)`): a [`RouterSet`] of
//! fixed-column routers plus [`Linked`], the subquery views, their view routers and which
//! shape reads which view.
//!
//! ```text
//! add: parse against the tables ─▶ per subquery: view key ─▶ attach (seeded with the
//!      caller's rows; a new view's WHERE joins its table's view router) ─▶ outer shape
//!      compiled with its views, published in its table's router
//! change of table t ─▶ t's view router: views (and links) whose WHERE holds on the old /
//!      new row ─▶ deltas (view, projected value, ±1) ─▶ outer old row routed by the views
//!      before ─▶ Views::apply per level (plain views, then derived ones: `linked_route`)
//!      ─▶ moves ─▶ outer new row routed by the views after
//! ```
//!
//! Rooms: this file, the API; `linked`, the views' ownership (attach, release, derived
//! views and their links); `linked_route`, a change through them; `links`, the link of a
//! nested subquery; `inner`, the view routers; `view_slots`, outer rows finding shapes
//! through views.
//!
//! Routing is stateful for tables some view reads: each change must be routed once, in
//! stream order (routing one twice counts its rows twice). Changes of other tables only read
//! the views. Lock order: the set's writer, then `linked`, then a table router's locks.

use super::catalog::definition;
use super::ids::ShapeName;
use super::journal::Event;
use super::linked::Linked;
use super::linked_persist::name_bytes;
use super::linked_seed::PositionSeed;
use super::links::split_nested;
use super::set::{RouterSet, Tables};
use super::views::{Moves, Views};
use super::views_log::State;
use super::{Change, Router};
use crate::hash::HashSecret;
use crate::index::Config;
use crate::predicate::sql::{quote_identifier, to_sql_in};
use crate::predicate::{parse_with_tables, CaseFolding, TableDef};
use crate::{Error, Result};
use parking_lot::RwLock;
use smallvec::SmallVec;
use std::borrow::Cow;
use std::sync::Arc;

/// The largest overlay (keys per lane) of a router's view index (see `with_tables`).
const VIEW_OVERLAY_LIMIT: usize = 1024;

/// Most subqueries in one shape (a position is one byte).
const MAX_SUBQUERIES: usize = 255;

/// A shape's snapshot of one subquery, as the caller gives it.
#[derive(Clone, Copy, Debug)]
pub enum SeedText<'a> {
    /// Its result rows, PostgreSQL text per selected column (`None`: NULL); duplicates
    /// included.
    Rows {
        /// The rows' cells, row after row.
        cells: &'a [Option<&'a [u8]>],
        /// Cells per row (the columns the subquery selects; link rows: tested + selected).
        width: usize,
    },
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

/// The query of one subquery's snapshot (see [`RouterSet::seed_queries`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedQuery {
    /// A `SELECT` PostgreSQL runs.
    pub sql: String,
    /// Its rows are link rows (`[y…, x…]`), not the subquery's result.
    pub links: bool,
}

/// The projected cells of one delta (a move's value, as PostgreSQL text): borrowed from
/// the change, or owned (a nested subquery's value, kept by its link).
pub type ValueText<'a> = SmallVec<[Option<Cow<'a, [u8]>>; 2]>;

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
        RouterSet::with_tables_in(tables, folding, config, None)
    }

    /// [`RouterSet::with_tables`] whose view index hashes with `view_secret` (a reopened
    /// router's: its diffs' fingerprints were made with it).
    pub(super) fn with_tables_in(
        tables: Vec<TableDef>,
        folding: CaseFolding,
        config: Config,
        view_secret: Option<HashSecret>,
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
        // the view index grows by bulk seeds (a million values at once) that must reach
        // compact segments: a full-size overlay per lane would keep them at ~84 B a value
        let view_config = Config {
            overlay_limit: config.overlay_limit.min(VIEW_OVERLAY_LIMIT),
            secret: view_secret.or(config.secret),
            ..config.clone()
        };
        let linked = Linked::new(tables, inner, Views::new(view_config)?);
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
        self.add_in(shape, None, blocking)
    }

    /// [`RouterSet::add_seeded`], or, with `restored`, a reopened router's shape: its views
    /// as the log left them (`shape.seeds` unused).
    pub(super) fn add_in(
        &self,
        shape: &SeededShape<'_>,
        restored: Option<&State>,
        blocking: bool,
    ) -> Result<()> {
        let linked = self.linked()?;
        let definition =
            definition(shape.sql, shape.params).ok_or_else(|| Error::InvalidPredicate {
                position: 0,
                reason: "parameters without NUL characters".into(),
            })?;
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
        if subqueries.len() > MAX_SUBQUERIES {
            return Err(Error::InvalidPredicate {
                position: 0,
                reason: format!("at most {MAX_SUBQUERIES} subqueries in a clause"),
            });
        }
        // a subquery with a nested one: the columns it tests there (its seed is link rows)
        let mut tested: Vec<Option<Box<[usize]>>> = vec![None; subqueries.len()];
        for (c, sq) in subqueries.iter().enumerate() {
            let Some(p) = sq.parent else { continue };
            let p = p as usize;
            if tested[p].is_some() {
                return Err(Error::InvalidPredicate {
                    position: 0,
                    reason: "two subqueries inside one subquery's WHERE: not supported yet".into(),
                });
            }
            tested[p] = Some(split_nested(&subqueries[p].inner, c as u32)?.0);
        }
        if restored.is_none() && shape.seeds.len() != subqueries.len() {
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
            linked.try_write().ok_or(busy_views())?
        };
        let seeds = match restored {
            Some(_) => subqueries.iter().map(|_| PositionSeed::Restored).collect(),
            None => subqueries
                .iter()
                .zip(shape.seeds)
                .enumerate()
                .map(|(i, (sq, seed))| l.parse_seed(i, sq, tested[i].as_deref(), seed))
                .collect::<Result<Vec<_>>>()?,
        };
        let held = self.names().find(shape.name);
        l.check_current(held, subqueries, &seeds)?;
        let h = self.names_mut().intern(shape.name);
        remove_shape(&mut l, &tables, h, name_bytes(shape.name), blocking)?;
        let views = match l.attach_all(h, subqueries, &seeds, restored, blocking) {
            Ok(views) => views,
            Err(e) => {
                self.forget_if_gone(&tables, h);
                return Err(e);
            }
        };
        if let Some(state) = restored {
            l.restore_diffs(h, &name_bytes(shape.name), &views, state)?;
        }
        let stale = views.iter().enumerate().any(|(i, &v)| {
            l.views
                .shapes()
                .diff(v, h, i as u8)
                .is_some_and(|d| d.has_positive())
        });
        let published = router.add_with_views(h, &parsed.expr, views, stale, blocking);
        if let Err(e) = published {
            l.release_all(h, true)?;
            self.forget_if_gone(&tables, h);
            return Err(e);
        }
        l.note_shape(Event::Shape(
            name_bytes(shape.name),
            shape.table,
            definition,
        ));
        Ok(())
    }

    /// What a caller queries for the snapshot of each subquery of a shape, by position: the
    /// subquery itself (its result rows), or, for a subquery with a nested one, its link
    /// rows — `SELECT y…, x… FROM t WHERE <its WHERE without the nested conjunct>`.
    pub fn seed_queries(
        &self,
        table: u32,
        sql: &str,
        params: &[Option<String>],
    ) -> Result<Vec<SeedQuery>> {
        let l = self.linked()?.read();
        let parsed = parse_with_tables(sql, table, &l.tables, params, self.folding)?;
        let subqueries = &parsed.subqueries;
        let mut out = Vec::with_capacity(subqueries.len());
        for (i, sq) in subqueries.iter().enumerate() {
            let child = subqueries.iter().position(|s| s.parent == Some(i as u32));
            let Some(c) = child else {
                out.push(SeedQuery {
                    sql: sq.sql.clone(),
                    links: false,
                });
                continue;
            };
            let def = &l.tables[sq.table as usize];
            let (tested, filter) = split_nested(&sq.inner, c as u32)?;
            let select: Vec<String> = tested
                .iter()
                .chain(sq.projection.iter())
                .map(|&col| quote_identifier(&def.columns[col].0))
                .collect();
            let filter = to_sql_in(&filter, &def.columns, &|p| {
                subqueries
                    .get(p as usize)
                    .map_or_else(String::new, |s| s.sql.clone())
            });
            out.push(SeedQuery {
                sql: format!(
                    "SELECT {} FROM {}.{} WHERE {filter}",
                    select.join(", "),
                    quote_identifier(&def.schema),
                    quote_identifier(&def.name)
                ),
                links: true,
            });
        }
        Ok(out)
    }

    /// Removes shape `h` of a router over declared tables; whether there was one.
    pub(super) fn remove_linked(&self, h: u32, blocking: bool) -> Result<bool> {
        let linked = self.linked()?;
        let mut l = if blocking {
            linked.write()
        } else {
            linked.try_write().ok_or(busy_views())?
        };
        let name = self.names().name(h).map(name_bytes).unwrap_or_default();
        remove_shape(&mut l, &self.tables(), h, name, blocking)
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

    /// Links of nested subqueries, and the (y, x) pairs they hold.
    pub fn link_pairs(&self) -> Result<(usize, usize)> {
        let l = self.linked()?.read();
        let live = l.links.iter().flatten();
        Ok((live.clone().count(), live.map(|k| k.len()).sum()))
    }

    /// The views, for reading (metrics, tests).
    pub fn with_views<T>(&self, f: impl FnOnce(&Views) -> T) -> Result<T> {
        Ok(f(&self.linked()?.read().views))
    }

    pub(super) fn linked(&self) -> Result<&RwLock<Linked>> {
        self.linked.as_deref().ok_or_else(|| Error::InvalidColumns {
            reason: "a filter's router set has no declared tables".into(),
        })
    }
}

/// Removes shape `h` (named `name`) from whichever table holds it, and releases its views.
fn remove_shape(
    l: &mut Linked,
    tables: &Tables,
    h: u32,
    name: Vec<u8>,
    blocking: bool,
) -> Result<bool> {
    let Some(router) = tables.iter().find(|r| r.contains(h)) else {
        return Ok(false);
    };
    if blocking {
        router.remove_shape(h)?;
    } else {
        router.try_remove_shape(h)?;
    }
    l.release_all(h, blocking)?;
    l.note_shape(Event::Unshape(name));
    Ok(true)
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
