//! A shape's snapshots of its subqueries, parsed (`SeedText` ⇒ [`PositionSeed`]: each row's
//! cells typed by the columns they select, projected to value keys; link rows for a
//! subquery holding a nested one) and checked before anything of the router changes.

use super::linked::{key_of, Linked};
use super::subqueries::SeedText;
use super::views::{project, Projected, ViewId, ViewKey};
use crate::key::ColumnKey;
use crate::predicate::{ColumnType, SubqueryDef, Value};
use crate::{Error, Result};
use smallvec::SmallVec;

/// One position's snapshot, parsed.
pub(super) enum PositionSeed {
    /// A subquery's result rows, projected.
    Rows(Vec<Projected>),
    /// A derived subquery's link rows: (y, x, x's text).
    Links(Vec<LinkRow>),
    /// "The router's view now".
    Current,
    /// A reopened router's: the view as its log left it (`attach_all`'s `restored`).
    Restored,
}

/// One link row of a snapshot: y's key (`None`: NULL, left out), x, x's text.
pub(super) type LinkRow = (Option<ColumnKey>, Option<ColumnKey>, Vec<Option<Box<[u8]>>>);

impl Linked {
    /// Parses position `i`'s snapshot (`links`: it has a nested subquery, tested on
    /// `tested`: its rows are link rows `[y…, x…]`).
    pub(super) fn parse_seed(
        &self,
        i: usize,
        sq: &SubqueryDef,
        tested: Option<&[usize]>,
        seed: &SeedText<'_>,
    ) -> Result<PositionSeed> {
        let SeedText::Rows {
            cells,
            width: given,
        } = *seed
        else {
            return Ok(PositionSeed::Current);
        };
        let columns = &self.tables[sq.table as usize].columns;
        let bad = |reason: String| Error::InvalidSeed {
            position: i as u32,
            reason,
        };
        let y_cols = tested.unwrap_or(&[]);
        let width = y_cols.len() + sq.projection.len();
        if given != width && !cells.is_empty() {
            let what = if tested.is_some() { "link row" } else { "row" };
            return Err(bad(format!(
                "a {what} of {given} values where {width} are selected"
            )));
        }
        let mut parsed = Vec::with_capacity(cells.len() / width.max(1));
        let mut links = Vec::new();
        for row in cells.chunks(width.max(1)) {
            let cols = y_cols.iter().chain(sq.projection.iter());
            let values = row
                .iter()
                .zip(cols)
                .map(|(cell, &c)| parse_cell(&columns[c], *cell))
                .collect::<std::result::Result<SmallVec<[Option<Value>; 4]>, String>>()
                .map_err(bad)?;
            let refs: SmallVec<[Option<&Value>; 4]> = values.iter().map(Option::as_ref).collect();
            let (y, x) = refs.split_at(y_cols.len());
            if tested.is_none() {
                parsed.push(project(x));
                continue;
            }
            let text = row[y_cols.len()..]
                .iter()
                .map(|c| c.map(Box::from))
                .collect();
            links.push((key_of(project(y)), key_of(project(x)), text));
        }
        Ok(match tested {
            None => PositionSeed::Rows(parsed),
            Some(_) => PositionSeed::Links(links),
        })
    }

    /// Refuses (before anything changes) a `:current` snapshot of a view that will not exist
    /// once shape `replaced` (the one being replaced, if any) is gone: the add would fail
    /// after the old shape was removed.
    pub(super) fn check_current(
        &self,
        replaced: Option<u32>,
        subqueries: &[SubqueryDef],
        seeds: &[PositionSeed],
    ) -> Result<()> {
        let old: &[ViewId] = replaced
            .and_then(|h| self.held.get(&h))
            .map_or(&[], |held| &held.views);
        for (i, (sq, seed)) in subqueries.iter().zip(seeds).enumerate() {
            if !matches!(seed, PositionSeed::Current) {
                continue;
            }
            let columns: Vec<u16> = sq.projection.iter().map(|&c| c as u16).collect();
            let key = ViewKey::of(sq.table, &columns, &sq.sql);
            let left = self.views.registry().get(key).map_or(0, |v| {
                let users = self.views.registry().users(v) as usize;
                users - old.iter().filter(|&&o| o == v).count().min(users)
            });
            if left == 0 {
                return Err(Error::InvalidSeed {
                    position: i as u32,
                    reason: "a :current snapshot of a view that does not exist".into(),
                });
            }
        }
        Ok(())
    }
}

/// One snapshot cell of `column` parsed.
fn parse_cell(
    (name, ty): &(String, ColumnType),
    cell: Option<&[u8]>,
) -> std::result::Result<Option<Value>, String> {
    let Some(text) = cell else { return Ok(None) };
    std::str::from_utf8(text)
        .ok()
        .and_then(|t| ty.parse(t))
        .map(Some)
        .ok_or_else(|| {
            format!(
                "{:?} is not a value of column {name:?} ({})",
                String::from_utf8_lossy(text),
                ty.name()
            )
        })
}
