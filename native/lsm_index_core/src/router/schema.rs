//! A router's columns as they grow. Positions never move: a column is only ever appended,
//! so index slots, compiled shapes and parsed rows stay as they are.
//!
//! A fixed-column router ([`Router::new`], [`Router::open`]) gains a column by
//! [`Router::add_column`]: PostgreSQL's `ALTER TABLE … ADD COLUMN`, which the replication
//! stream announces in a Relation message (the table's columns, the new one last). Adding a
//! column it has with the same type does nothing (a replayed message); with another type it
//! is refused ([`Error::ColumnTypeConflict`]). A persistent router records it in its catalog
//! before the table gains it. Rows written before the column existed are narrower: a route
//! reads the missing cells as NULL (`State::narrowest`).
//!
//! An open-schema router ([`Router::new_open`]) has no columns of its own; each shape is
//! added with the columns (name, type) it is written against, and the table gains the names
//! it did not have, at the end. A column has one type while some shape refers to it: a
//! shape declaring another type for a column other shapes read is refused
//! ([`Error::ColumnTypeConflict`]); a column no other shape reads takes the new type. Its
//! columns are its shapes' to declare: [`Router::add_column`] refuses it.
//!
//! A shape is compiled against a *view* of the table: its own declared columns at their
//! table positions, every column it did not declare under a name no clause can spell, so it
//! sees exactly what it declared (an undeclared column is "unknown", as on its own, and
//! its type names no enum).

use super::catalog::definition;
use super::{Columns, Router, MAX_COLUMNS};
use crate::predicate::{ColumnType, EnumType};
use crate::{Error, Result};
use std::collections::HashSet;
use std::sync::Arc;

/// Columns (name, type) in row order, being built.
type ColumnList = Vec<(String, ColumnType)>;

/// A column name no clause can refer to (an empty quoted identifier is refused by the lexer).
const HIDDEN: &str = "";

/// `columns` as a table's: 1 to [`MAX_COLUMNS`], no name twice (an empty list is allowed
/// here: an open-schema router starts so).
pub(super) fn checked(columns: Vec<(String, ColumnType)>) -> Result<Columns> {
    check_names(&columns)?;
    Ok(Columns::from(columns))
}

/// At most [`MAX_COLUMNS`] columns, no name twice.
fn check_names(columns: &[(String, ColumnType)]) -> Result<()> {
    if columns.len() > MAX_COLUMNS {
        return Err(Error::InvalidColumns {
            reason: format!("a table has 1 to {MAX_COLUMNS} columns"),
        });
    }
    let mut names = HashSet::new();
    if let Some((name, _)) = columns
        .iter()
        .find(|(name, _)| !names.insert(name.as_str()))
    {
        return Err(Error::InvalidColumns {
            reason: format!("column {name:?} appears twice"),
        });
    }
    Ok(())
}

/// Why column `name` of type `ty` cannot be appended to `table` (which has no column of
/// that name), if it cannot: a name PostgreSQL cannot have (empty, or holding a NUL), a table
/// at [`MAX_COLUMNS`] already, or a named enum a column of the table has with other labels.
fn check_added(table: &[(String, ColumnType)], name: &str, ty: &ColumnType) -> Result<()> {
    let refuse = |reason: String| Err(Error::InvalidColumns { reason });
    if name.is_empty() || name.contains('\0') {
        return refuse(format!(
            "a column name is not empty and holds no NUL: {name:?}"
        ));
    }
    if table.len() >= MAX_COLUMNS {
        return refuse(format!("a table has 1 to {MAX_COLUMNS} columns"));
    }
    let named = |ty: &ColumnType| match ty.element().unwrap_or(ty) {
        ColumnType::Enum(e) if e.name.is_some() => Some(e.clone()),
        _ => None,
    };
    let Some(new) = named(ty) else {
        return Ok(());
    };
    let clash = |e: &EnumType| e.name == new.name && e.labels != new.labels;
    match table
        .iter()
        .find(|(_, t)| named(t).is_some_and(|e| clash(&e)))
    {
        Some((other, _)) => refuse(format!(
            "enum type {:?} has other labels in column {other:?}",
            new.name.as_deref().unwrap_or_default()
        )),
        None => Ok(()),
    }
}

/// The last view a router compiled a shape against: shapes added one after another usually
/// declare the same columns against the same table, so it is made once (a list of column
/// names and types, checked, copied and looked up, per shape otherwise).
pub(super) struct View {
    declared: Vec<(String, ColumnType)>,
    /// The table it was made for (the same allocation: compared by pointer).
    table: Columns,
    /// The table with `declared`'s new names appended (`table` itself when none).
    widened: Columns,
    view: Columns,
}

/// The [`View`] of `declared` over `table` (see the module doc).
fn widen(table: &Columns, declared: &[(String, ColumnType)]) -> Result<View> {
    check_names(declared)?;
    let mut widened = table.to_vec();
    let mut view: ColumnList = table
        .iter()
        .map(|_| (HIDDEN.to_string(), ColumnType::Bool))
        .collect();
    for (name, ty) in declared {
        match widened.iter().position(|(n, _)| n == name) {
            Some(c) => view[c] = (name.clone(), ty.clone()),
            None => {
                widened.push((name.clone(), ty.clone()));
                view.push((name.clone(), ty.clone()));
            }
        }
    }
    if widened.len() > MAX_COLUMNS {
        return Err(Error::InvalidColumns {
            reason: format!("a table has 1 to {MAX_COLUMNS} columns"),
        });
    }
    let widened = if widened.len() == table.len() {
        table.clone()
    } else {
        Columns::from(widened)
    };
    Ok(View {
        declared: declared.to_vec(),
        table: table.clone(),
        widened,
        view: Columns::from(view),
    })
}

impl Router {
    /// Appends column `name` of type `ty` to the table of a fixed-column router (see the
    /// module doc): under the writer lock, recorded first in a persistent router's catalog;
    /// shapes added after it may refer to it, and routes read it (NULL in a row from before
    /// it). A column of that name and type already there: `Ok`, nothing done. Refused:
    /// `ColumnTypeConflict` for a column of that name and another type; `InvalidColumns` for
    /// an empty name or one holding a NUL, a table of [`MAX_COLUMNS`] already, a named enum
    /// another column has with other labels, or an open-schema router.
    pub fn add_column(&self, name: &str, ty: ColumnType) -> Result<()> {
        self.check_open()?;
        if self.open_schema {
            return Err(Error::InvalidColumns {
                reason: "an open-schema router's columns are declared by its shapes".into(),
            });
        }
        let w = self.writer.lock();
        self.add_column_locked(&w, name, ty)
    }

    /// [`Router::add_column`] under the writer lock `_w`.
    fn add_column_locked(
        &self,
        _w: &parking_lot::MutexGuard<'_, ()>,
        name: &str,
        ty: ColumnType,
    ) -> Result<()> {
        // closed while this waited for the lock: nothing to record to
        self.check_open()?;
        let table = self.columns();
        if let Some((_, had)) = table.iter().find(|(n, _)| n == name) {
            if *had == ty {
                return Ok(());
            }
            return Err(Error::ColumnTypeConflict {
                column: name.to_string(),
                had: had.describe(),
                got: ty.describe(),
            });
        }
        check_added(&table, name, &ty)?;
        if let Some(p) = self.catalog.lock().as_mut() {
            p.catalog.add_column(name, &ty)?;
        }
        let mut columns = table.to_vec();
        columns.push((name.to_string(), ty));
        // (shapes compiled against the columns before stay right: no position moved)
        self.state.write().columns = Columns::from(columns);
        Ok(())
    }

    /// Adds shape `id` with WHERE clause `sql` (and the values of `$1`, `$2`, ...) written
    /// against `declared` columns, replacing any shape with that id: an open-schema router's
    /// add (see the module doc); waits if the index is overloaded.
    pub fn add_shape_declared(
        &self,
        id: u32,
        sql: &str,
        params: &[Option<String>],
        declared: &[(String, ColumnType)],
    ) -> Result<()> {
        self.add_declared(id, sql, params, declared, true)
    }

    /// Like [`Router::add_shape_declared`] but never waits: `Overloaded` or `WouldBlock` if
    /// it would have to (then shape `id` is absent; retry with `add_shape_declared`).
    pub fn try_add_shape_declared(
        &self,
        id: u32,
        sql: &str,
        params: &[Option<String>],
        declared: &[(String, ColumnType)],
    ) -> Result<()> {
        self.add_declared(id, sql, params, declared, false)
    }

    fn add_declared(
        &self,
        id: u32,
        sql: &str,
        params: &[Option<String>],
        declared: &[(String, ColumnType)],
        blocking: bool,
    ) -> Result<()> {
        self.check_open()?;
        if !self.open_schema {
            return Err(Error::InvalidColumns {
                reason: "the router's table has fixed columns: add shapes without declaring them"
                    .into(),
            });
        }
        let definition = definition(sql, params).ok_or_else(|| Error::InvalidPredicate {
            position: 0,
            reason: "parameters without NUL characters".into(),
        })?;
        // the columns change only under the writer lock: compiled and checked against them
        let w = self.lock_writer(blocking)?;
        let table = self.columns();
        let (widened, view) = {
            let mut last = self.views.lock();
            let fresh = last
                .as_ref()
                .is_some_and(|v| Arc::ptr_eq(&v.table, &table) && v.declared == declared);
            if !fresh {
                *last = Some(Box::new(widen(&table, declared)?));
            }
            let v = last.as_ref().ok_or(Error::Poisoned {
                cause: "no view of the table".into(),
            })?;
            (v.widened.clone(), v.view.clone())
        };
        let form = self.prepare(sql, params, &view)?;
        // a column the shape reads takes its declared type, unless other shapes read it
        let mut retyped: Option<ColumnList> = None;
        {
            let st = self.state.read();
            for c in super::bits::columns_of(&form.template.mask) {
                let Some((name, had)) = table.get(c) else {
                    continue;
                };
                let got = &view[c].1;
                if had == got {
                    continue;
                }
                if st.read_by_other(c, id) {
                    return Err(Error::ColumnTypeConflict {
                        column: name.clone(),
                        had: had.name().to_string(),
                        got: got.name().to_string(),
                    });
                }
                retyped.get_or_insert_with(|| widened.to_vec())[c].1 = got.clone();
            }
        }
        let columns = match retyped {
            Some(list) => Some(Columns::from(list)),
            None => (!Arc::ptr_eq(&widened, &table)).then_some(widened),
        };
        self.publish(&w, id, form, &definition, columns, blocking)
    }
}
