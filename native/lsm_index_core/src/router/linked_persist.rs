//! A persistent router over declared tables (plan §5.1): `Linked` journals every count,
//! NULL count and link pair it changes, and every shape definition (`journal`); `flush`
//! writes the journal, resolved to the values of now, and the diffs to `views.log` with the
//! caller's stream position; `open` replays the log and re-adds each shape with its views
//! as the log left them, so the router is exactly as of its last flush.
//!
//! Shapes added or removed after that flush are not in the reopened router (as a
//! single-table router's shapes under `sync: :flush`): the caller resumes its stream at
//! `position` and redoes what it did after it.

use super::catalog::split_definition;
use super::ids::ShapeName;
use super::journal::{Current, Event, Journal};
use super::linked::{Linked, Source};
use super::set::RouterSet;
use super::subqueries::SeededShape;
use super::views::{Attachment, Diff, Projected, Seed, ViewId, ViewKey};
use super::views_log::{Cells, DiffRecord, Record, State, ViewsLog};
use crate::hash::HashSecret;
use crate::index::Config;
use crate::key::ColumnKey;
use crate::predicate::{CaseFolding, SubqueryDef, TableDef};
use crate::{Error, FileKind, Result};
use std::collections::HashMap;
use std::path::Path;

impl Linked {
    /// Journals that `value`'s count (`None`: NULL rows) of `view` changed.
    pub(super) fn note_count(&mut self, view: ViewId, value: Option<&[u8]>) {
        if let (Some(j), Some(key)) = (self.journal.as_mut(), self.views.registry().key(view)) {
            j.count(key.0, value);
        }
    }

    /// Journals a new view's seed rows.
    pub(super) fn note_rows(&mut self, view: ViewId, rows: &[Projected]) {
        if self.journal.is_none() {
            return;
        }
        for p in rows {
            match p {
                Projected::Key(k) => self.note_count(view, Some(k)),
                Projected::Null => self.note_count(view, None),
            }
        }
    }

    /// Journals that the pair (y, x) of the link of derived view `parent` changed.
    pub(super) fn note_link(&mut self, parent: ViewId, y: &[u8], x: Option<&[u8]>) {
        if let (Some(j), Some(key)) = (self.journal.as_mut(), self.views.registry().key(parent)) {
            j.link(key.0, y, x);
        }
    }

    /// Journals every pair of link `id` (a new one).
    pub(super) fn note_link_all(&mut self, id: u32) {
        let Some(j) = self.journal.as_mut() else {
            return;
        };
        let Some(link) = self.links.get(id as usize).and_then(Option::as_ref) else {
            return;
        };
        let Some(key) = self.views.registry().key(link.parent) else {
            return;
        };
        for (y, xs) in link.all() {
            for x in xs.keys() {
                j.link(key.0, y, x.as_deref());
            }
        }
    }

    /// Journals a view-level event of `view`.
    pub(super) fn note_view(&mut self, view: ViewId, event: fn(u128) -> Event) {
        if let (Some(j), Some(key)) = (self.journal.as_mut(), self.views.registry().key(view)) {
            j.event(event(key.0));
        }
    }

    /// Journals a shape definition or removal.
    pub(super) fn note_shape(&mut self, event: Event) {
        if let Some(j) = self.journal.as_mut() {
            j.event(event);
        }
    }

    /// Attaches (or holds, when nested) a reopened shape's position to its view, made from
    /// `state` if it is not there yet.
    pub(super) fn attach_restored(
        &mut self,
        key: ViewKey,
        arity: u8,
        a: Attachment,
        sq: &SubqueryDef,
        child: Option<(usize, ViewId)>,
        state: &State,
    ) -> Result<ViewId> {
        let view = match self.views.registry().get(key) {
            Some(_) => self.views.hold(key, arity, &[], true)?.0,
            None => {
                let counts = restored_counts(state, key);
                match child {
                    None => {
                        let refs: Vec<(Option<&[u8]>, u64)> = counts
                            .iter()
                            .map(|(v, n)| (v.as_deref(), *n as u64))
                            .collect();
                        let (view, _) = self.views.hold_counts(key, arity, &refs, true)?;
                        self.define_plain(view, sq, true)?;
                        view
                    }
                    Some((c, child)) => {
                        let (view, _) = self.views.hold(key, arity, &[], true)?;
                        let empty = HashMap::new();
                        let pairs = state.links.get(&key.0).unwrap_or(&empty);
                        let source = Source::Restored(pairs, counts);
                        self.define_derived(view, sq, c as u32, child, source, true)?;
                        view
                    }
                }
            }
        };
        if sq.parent.is_some() {
            return Ok(view);
        }
        let attached = self.views.attach(key, arity, a, Seed::Current, true);
        // the attachment is this position's user: the hold was to make or find it
        self.views.unhold(view)?;
        attached
    }

    /// Sets the diffs `state` holds for shape `h` (named `name`) on its `views`.
    pub(super) fn restore_diffs(
        &mut self,
        h: u32,
        name: &[u8],
        views: &[ViewId],
        state: &State,
    ) -> Result<()> {
        for d in state.diffs.iter().filter(|d| d.name == name) {
            let Some(&view) = views.get(d.position as usize) else {
                continue;
            };
            let diff = Diff::from_parts(d.entries.clone(), d.nulls, d.present);
            self.views
                .shapes_mut()
                .set_diff(view, h, d.position, diff)?;
        }
        Ok(())
    }
}

/// The counts a log holds for view `key`: (value or NULL, rows).
fn restored_counts(state: &State, key: ViewKey) -> Vec<(Option<ColumnKey>, i64)> {
    let mut out: Vec<(Option<ColumnKey>, i64)> = state
        .counts
        .get(&key.0)
        .into_iter()
        .flat_map(|values| values.iter())
        .map(|(v, &n)| (Some(ColumnKey::from_slice(v)), n as i64))
        .collect();
    if let Some(&n) = state.nulls.get(&key.0) {
        out.push((None, n as i64));
    }
    out
}

impl Current for Linked {
    fn count(&self, view: u128, value: &[u8]) -> u64 {
        let Some(v) = self.views.registry().get(ViewKey(view)) else {
            return 0;
        };
        self.views.counts().count(v, value).unwrap_or(0)
    }

    fn nulls(&self, view: u128) -> u64 {
        match self.views.registry().get(ViewKey(view)) {
            Some(v) => self.views.counts().nulls(v),
            None => 0,
        }
    }

    fn link(&self, parent: u128, y: &[u8], x: Option<&[u8]>) -> (i64, Cells) {
        let link = self
            .views
            .registry()
            .get(ViewKey(parent))
            .and_then(|v| self.def(v))
            .and_then(|d| d.link)
            .and_then(|id| self.links.get(id as usize))
            .and_then(Option::as_ref);
        let pair = link.and_then(|l| l.under(y).find(|(k, _)| k.as_deref() == x));
        match pair {
            Some((_, p)) => (
                p.count,
                p.text
                    .iter()
                    .map(|c| c.as_ref().map(|b| b.to_vec()))
                    .collect(),
            ),
            None => (0, Vec::new()),
        }
    }
}

/// A shape name's bytes in the log: tag 0 + a handle, or tag 1 + the name's bytes.
pub(super) fn name_bytes(name: ShapeName<'_>) -> Vec<u8> {
    match name {
        ShapeName::Handle(h) => {
            let mut out = vec![0];
            out.extend_from_slice(&h.to_le_bytes());
            out
        }
        ShapeName::Bytes(b) => {
            let mut out = vec![1];
            out.extend_from_slice(b);
            out
        }
    }
}

/// The name [`name_bytes`] wrote.
fn name_of(bytes: &[u8]) -> Option<ShapeName<'_>> {
    match bytes {
        [0, a, b, c, d] => Some(ShapeName::Handle(u32::from_le_bytes([*a, *b, *c, *d]))),
        [1, rest @ ..] => Some(ShapeName::Bytes(rest)),
        _ => None,
    }
}

/// The text the log's first record holds: every table and the case folding.
fn tables_text(tables: &[TableDef], folding: CaseFolding) -> String {
    let mut out = format!("case_folding {}\n", folding.name());
    for t in tables {
        out.push_str(&format!("table {}\t{}\n", t.schema, t.name));
        for (name, ty) in &t.columns {
            out.push_str(&format!("\t{name}\t{}\n", ty.describe()));
        }
    }
    out
}

impl RouterSet {
    /// Opens (creating if needed) the persistent router over `tables` in `dir`: exactly as
    /// of its last [`RouterSet::flush_tables`] (see the module doc). `TableMismatch` when the
    /// directory was made for other tables; `Locked` while another router has it open.
    pub fn open_tables(
        dir: &Path,
        tables: Vec<TableDef>,
        folding: CaseFolding,
        config: Config,
    ) -> Result<RouterSet> {
        let (log, state) =
            ViewsLog::open(dir, &tables_text(&tables, folding), HashSecret::random())?;
        let set = RouterSet::with_tables_in(tables, folding, config, Some(log.secret()))?;
        let corrupt = |detail: String| Error::Corrupt {
            file: FileKind::Views,
            what: dir.display().to_string(),
            detail,
        };
        for (name, table, definition) in state.shapes.values() {
            let name = name_of(name).ok_or_else(|| corrupt("a shape name".into()))?;
            let (sql, params) = split_definition(definition);
            let shape = SeededShape {
                table: *table,
                name,
                sql,
                params: &params,
                seeds: &[],
            };
            set.add_in(&shape, Some(&state), true)
                .map_err(|e| corrupt(format!("shape {sql:?} no longer loads: {e}")))?;
        }
        {
            let mut l = set.linked()?.write();
            l.journal = Some(Journal::default());
            l.log = Some(log);
        }
        Ok(set)
    }

    /// Makes every shape and view change so far durable, with the caller's stream
    /// `position` (what a reopen resumes from). In memory: `NotPersistent`.
    pub fn flush_tables(&self, position: &[u8]) -> Result<()> {
        let _w = self.lock(true)?;
        let linked = self.linked()?;
        let mut l = linked.write();
        let Some(mut log) = l.log.take() else {
            return Err(Error::NotPersistent {
                operation: "flush with a position",
            });
        };
        let mut journal = l.journal.take().unwrap_or_default();
        let mut records = journal.drain(&*l);
        let names = self.names();
        let diffs: Vec<DiffRecord> = l
            .views
            .shapes()
            .diffs()
            .filter_map(|(_, shape, position, d)| {
                let (entries, nulls, present) = d.parts();
                Some(DiffRecord {
                    name: name_bytes(names.name(shape)?),
                    position,
                    nulls,
                    present,
                    entries: entries.to_vec(),
                })
            })
            .collect();
        drop(names);
        records.push(Record::Diffs(diffs));
        let flushed = log.flush(records, position);
        l.journal = Some(Journal::default());
        l.log = Some(log);
        flushed
    }

    /// The position of the last flush (`None`: never flushed, or in memory).
    pub fn position(&self) -> Option<Vec<u8>> {
        let l = self.linked.as_deref()?.read();
        l.log
            .as_ref()
            .and_then(|log| log.position().map(<[u8]>::to_vec))
    }

    /// Whether the router is persistent (`open_tables`).
    pub fn is_persistent(&self) -> bool {
        self.linked
            .as_deref()
            .is_some_and(|l| l.read().log.is_some())
    }

    /// Releases a persistent router's directory (nothing more is written; changes since the
    /// last flush are not kept).
    pub fn close_tables(&self) -> Result<()> {
        let _w = self.lock(true)?;
        self.linked()?.write().log = None;
        Ok(())
    }
}
