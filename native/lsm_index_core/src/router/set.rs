//! A router set: the routers of one filter's tables behind one handle (`LsmIndex.Filter`
//! with `index: :lsm`). Each table is an open-schema [`Router`] (its columns declared by its
//! shapes, see `schema`), numbered by the caller in the order it first names them; shapes are
//! named by integers or interned byte strings (see `ids`), one name space across the tables:
//! adding a shape under a name another table holds moves it.
//!
//! Routes go straight to a table's router (see [`RouterSet::tables`]): the set adds nothing
//! to a change's path. Shape writes are serialised by the set's writer lock.

use super::ids::{Names, ShapeName};
use super::linked::Linked;
use super::Router;
use crate::index::Config;
use crate::predicate::{CaseFolding, ColumnType};
use crate::{Error, Result};
use parking_lot::{Mutex, MutexGuard, RwLock, RwLockReadGuard};
use std::sync::Arc;

/// The routers of a set, by table number: a snapshot that routes keep for a call.
pub type Tables = Arc<Vec<Arc<Router>>>;

/// The routers of one filter's tables (see the module doc).
pub struct RouterSet {
    pub(super) folding: CaseFolding,
    /// The configuration of each table's shape index.
    pub(super) config: Config,
    writer: Mutex<()>,
    tables: RwLock<Tables>,
    names: RwLock<Names>,
    /// A router over a tenant's tables (fixed columns, subqueries): its views (see
    /// `subqueries`); `None` for a filter's set.
    pub(super) linked: Option<Box<RwLock<Linked>>>,
}

/// A shape as a set adds it: its table, name, WHERE clause, parameter values and the columns
/// (name, type) it is written against.
#[derive(Clone, Copy, Debug)]
pub struct ShapeDef<'a> {
    /// The table number (at most the number of tables: that many names a new table).
    pub table: u32,
    /// The shape's name.
    pub name: ShapeName<'a>,
    /// Its WHERE clause.
    pub sql: &'a str,
    /// The values of `$1`, `$2`, ... (`None`: NULL).
    pub params: &'a [Option<String>],
    /// The columns it is written against.
    pub columns: &'a [(String, ColumnType)],
}

impl RouterSet {
    /// An empty set whose tables fold case as `folding` says and index shapes with `config`.
    pub fn new(folding: CaseFolding, config: Config) -> Result<RouterSet> {
        RouterSet::build(folding, config, Tables::default(), None)
    }

    /// A set of the given routers, with views when `linked`.
    pub(super) fn build(
        folding: CaseFolding,
        config: Config,
        tables: Tables,
        linked: Option<Linked>,
    ) -> Result<RouterSet> {
        config.validate()?;
        Ok(RouterSet {
            folding,
            config,
            writer: Mutex::new(()),
            tables: RwLock::new(tables),
            names: RwLock::new(Names::default()),
            linked: linked.map(|l| Box::new(RwLock::new(l))),
        })
    }

    /// The tables' routers now (a route reads through these; a table added later is not in
    /// this snapshot).
    pub fn tables(&self) -> Tables {
        self.tables.read().clone()
    }

    /// The interned shape names (how a route's handles are named back).
    pub fn names(&self) -> RwLockReadGuard<'_, Names> {
        self.names.read()
    }

    /// The interned shape names, for writing (under the writer lock).
    pub(super) fn names_mut(&self) -> parking_lot::RwLockWriteGuard<'_, Names> {
        self.names.write()
    }

    /// Adds (or replaces) shape `def`; waits when the index is busy if `blocking`, else
    /// answers `WouldBlock` (nothing changed; retry blocking). A shape refused by its clause
    /// or columns changes nothing.
    pub fn add(&self, def: &ShapeDef<'_>, blocking: bool) -> Result<()> {
        if self.linked.is_some() {
            return Err(Error::InvalidColumns {
                reason: "a router over declared tables adds shapes with add_seeded".into(),
            });
        }
        let _w = self.lock(blocking)?;
        let tables = self.tables();
        let router = self.table(&tables, def.table)?;
        let held = self.names.read().find(def.name);
        let elsewhere = held.and_then(|h| {
            tables
                .iter()
                .enumerate()
                .find(|(t, r)| *t != def.table as usize && r.contains(h))
                .map(|(_, r)| (h, r.clone()))
        });
        if elsewhere.is_some() && !blocking {
            // a move between tables writes two indexes: off the normal scheduler
            return Err(Error::WouldBlock {
                reason: "a shape moves to another table",
            });
        }
        let h = self.names.write().intern(def.name);
        let added = if blocking {
            router.add_shape_declared(h, def.sql, def.params, def.columns)
        } else {
            router.try_add_shape_declared(h, def.sql, def.params, def.columns)
        };
        if let Err(e) = added {
            self.forget_if_gone(&tables, h);
            return Err(e);
        }
        match elsewhere {
            Some((h, old)) => old.remove_shape(h),
            None => Ok(()),
        }
    }

    /// Removes shape `name` (from whichever table holds it); whether there was one.
    pub fn remove(&self, name: ShapeName<'_>, blocking: bool) -> Result<bool> {
        let _w = self.lock(blocking)?;
        let Some(h) = self.names.read().find(name) else {
            return Ok(false);
        };
        if self.linked.is_some() {
            let removed = self.remove_linked(h, blocking)?;
            self.forget_if_gone(&self.tables(), h);
            return Ok(removed);
        }
        let tables = self.tables();
        let Some(router) = tables.iter().find(|r| r.contains(h)) else {
            return Ok(false);
        };
        if blocking {
            router.remove_shape(h)?;
        } else {
            router.try_remove_shape(h)?;
        }
        self.forget_if_gone(&tables, h);
        Ok(true)
    }

    /// The handles of every shape (of table `table` only, when given).
    pub fn shape_handles(&self, table: Option<u32>) -> Vec<u32> {
        let tables = self.tables();
        let mut out = Vec::new();
        for (t, r) in tables.iter().enumerate() {
            if table.is_none_or(|want| want as usize == t) {
                r.shape_handles_into(&mut out);
            }
        }
        out
    }

    /// How many shapes the set holds.
    pub fn len(&self) -> usize {
        self.tables().iter().map(|r| r.shape_count()).sum()
    }

    /// Whether the set holds no shape.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether some shape of table `table` is found through an index on `column` (its value,
    /// or `lower`/`upper` of it).
    pub fn is_indexed(&self, table: u32, column: &str) -> bool {
        self.tables()
            .get(table as usize)
            .is_some_and(|r| r.is_indexed_on(column))
    }

    /// Waits until every table's shape index is idle (benchmarks, tests).
    pub fn wait_idle(&self) -> Result<()> {
        self.tables().iter().try_for_each(|r| r.wait_idle())?;
        match self.linked {
            Some(_) => self.wait_views_idle(),
            None => Ok(()),
        }
    }

    pub(super) fn lock(&self, blocking: bool) -> Result<MutexGuard<'_, ()>> {
        if blocking {
            Ok(self.writer.lock())
        } else {
            self.writer.try_lock().ok_or(Error::WouldBlock {
                reason: "another shape is being added or removed",
            })
        }
    }

    /// The router of table `table` in `tables`, made now (and published) if `table` is the
    /// next number (under the writer lock).
    fn table(&self, tables: &Tables, table: u32) -> Result<Arc<Router>> {
        let t = table as usize;
        if let Some(r) = tables.get(t) {
            return Ok(r.clone());
        }
        if t != tables.len() || self.linked.is_some() {
            return Err(Error::InvalidColumns {
                reason: format!("table number {t} of a set of {} tables", tables.len()),
            });
        }
        let router = Arc::new(Router::new_open(self.folding, self.config.clone())?);
        let mut grown = Vec::clone(tables);
        grown.push(router.clone());
        *self.tables.write() = Arc::new(grown);
        Ok(router)
    }

    /// Releases handle `h`'s name when no table holds it (any more).
    pub(super) fn forget_if_gone(&self, tables: &Tables, h: u32) {
        if !tables.iter().any(|r| r.contains(h)) {
            self.names.write().release(h);
        }
    }
}
