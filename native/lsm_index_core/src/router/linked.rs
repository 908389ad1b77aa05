//! The subquery side of a router over declared tables ([`Linked`]): the views, each
//! table's view router, the links of nested subqueries, and which shape holds which view.
//! Attaching and releasing a shape's subqueries lives here; routing a change through them
//! is `linked_route`.
//!
//! Ownership: each position of a shape is one user of its view — an attachment for a
//! subquery in the shape's own WHERE (moves are reported for it), a hold for a nested one.
//! A plain view is a shape of its table's view router (handle = view number); a derived view
//! (a subquery with a nested one) is fed by its link, a shape of the link table's view router
//! (handle = `LINK_BASE` + link number). A view's last user frees it with its router shape
//! or link.

use super::journal::{Event, Journal};
use super::linked_seed::{LinkRow, PositionSeed};
use super::links::{split_nested, Link, LINK_BASE};
use super::views::{Attachment, Delta, Moves, Polarity, Projected, Seed, ViewId, ViewKey, Views};
use super::views_log::{State, ViewsLog};
use super::Router;
use crate::key::ColumnKey;
use crate::predicate::{SubqueryDef, TableDef};
use crate::{Error, Result};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

/// The subquery side of a router over declared tables (see the module doc).
pub(super) struct Linked {
    /// The tables, as clauses name them.
    pub(super) tables: Vec<TableDef>,
    pub(super) views: Views,
    /// Per table, its view router.
    pub(super) inner: Vec<Arc<Router>>,
    /// Per view number: what it selects and how it is fed (`None`: free).
    pub(super) defs: Vec<Option<ViewDef>>,
    /// Per table, its view router's shapes (0: its changes only read views).
    pub(super) over: Vec<usize>,
    /// Shapes with subqueries: handle ⇒ their views.
    pub(super) held: HashMap<u32, Held>,
    /// Links by number (`None`: free).
    pub(super) links: Vec<Option<Link>>,
    free_links: Vec<u32>,
    /// Child view ⇒ the links deriving a view from it.
    pub(super) derived: HashMap<ViewId, Vec<u32>>,
    /// A persistent router's changes since its last flush (`linked_persist`).
    pub(super) journal: Option<Journal>,
    /// A persistent router's log.
    pub(super) log: Option<ViewsLog>,
}

/// What a view selects and how it is fed.
pub(super) struct ViewDef {
    /// Its table (a derived view's: its link's).
    pub(super) table: u32,
    /// Nesting below it: 0 for a plain view, its child's + 1 for a derived one (batches of
    /// one change are applied by level, children first).
    pub(super) level: u8,
    /// A plain view's projected columns (its router shape reads them); `None` when derived.
    pub(super) projection: Option<Box<[usize]>>,
    /// A derived view's link.
    pub(super) link: Option<u32>,
}

/// Where a new derived view's link and counts come from.
pub(super) enum Source<'s> {
    /// The caller's link rows (counts computed from the child).
    Rows(&'s [LinkRow]),
    /// A reopened router's log: the link's pairs, and the counts (value or NULL, rows).
    Restored(
        &'s crate::router::views_log::LinkPairs,
        Vec<(Option<ColumnKey>, i64)>,
    ),
}

/// A shape's views by position, and which positions are nested (held, not attached).
pub(super) struct Held {
    pub(super) views: Box<[ViewId]>,
    nested: Box<[bool]>,
}

impl Linked {
    /// No views over `tables`, whose view routers are `inner`.
    pub(super) fn new(tables: Vec<TableDef>, inner: Vec<Arc<Router>>, views: Views) -> Linked {
        Linked {
            over: vec![0; tables.len()],
            tables,
            views,
            inner,
            defs: Vec::new(),
            held: HashMap::new(),
            links: Vec::new(),
            free_links: Vec::new(),
            derived: HashMap::new(),
            journal: None,
            log: None,
        }
    }

    /// Gives shape `h` a user of the view of each of `subqueries` (innermost first), seeded
    /// with `seeds`; returns the views by position. Nothing is held when it fails.
    pub(super) fn attach_all(
        &mut self,
        h: u32,
        subqueries: &[SubqueryDef],
        seeds: &[PositionSeed],
        restored: Option<&State>,
        blocking: bool,
    ) -> Result<Box<[ViewId]>> {
        let n = subqueries.len();
        let mut views: Vec<ViewId> = vec![0; n];
        for i in (0..n).rev() {
            let attached = self
                .attach_one(h, i, subqueries, &views, &seeds[i], restored, blocking)
                .map_err(|e| match e {
                    Error::InvalidView { reason, .. } => Error::InvalidSeed {
                        position: i as u32,
                        reason,
                    },
                    e => e,
                });
            match attached {
                Ok(v) => views[i] = v,
                Err(e) => {
                    for j in i + 1..n {
                        self.release(h, j, views[j], subqueries[j].parent.is_some(), true)?;
                    }
                    return Err(e);
                }
            }
        }
        let nested: Box<[bool]> = subqueries.iter().map(|s| s.parent.is_some()).collect();
        if n > 0 {
            self.held.insert(
                h,
                Held {
                    views: views.clone().into(),
                    nested,
                },
            );
        }
        Ok(views.into())
    }

    /// Position `i` of shape `h` (its nested subquery, if any, attached already in `views`).
    #[allow(clippy::too_many_arguments)]
    fn attach_one(
        &mut self,
        h: u32,
        i: usize,
        subqueries: &[SubqueryDef],
        views: &[ViewId],
        seed: &PositionSeed,
        restored: Option<&State>,
        blocking: bool,
    ) -> Result<ViewId> {
        let sq = &subqueries[i];
        let columns: Vec<u16> = sq.projection.iter().map(|&c| c as u16).collect();
        let key = ViewKey::of(sq.table, &columns, &sq.sql);
        let arity = sq.projection.len() as u8;
        let nested = sq.parent.is_some();
        let attachment = Attachment {
            shape: h,
            position: i as u8,
            polarity: match sq.polarity {
                crate::predicate::Polarity::Positive => Polarity::Positive,
                crate::predicate::Polarity::Negative => Polarity::Negative,
            },
        };
        let child = subqueries
            .iter()
            .position(|s| s.parent == Some(i as u32))
            .map(|c| (c, views[c]));
        if let (Some(state), PositionSeed::Restored) = (restored, seed) {
            return self.attach_restored(key, arity, attachment, sq, child, state);
        }
        match (child, nested, seed) {
            (None, false, PositionSeed::Rows(rows)) => {
                self.attach_plain(key, arity, attachment, Seed::Rows(rows), sq, blocking)
            }
            (None, false, _) => {
                self.attach_plain(key, arity, attachment, Seed::Current, sq, blocking)
            }
            (None, true, seed) => {
                let rows = match seed {
                    PositionSeed::Rows(rows) => &rows[..],
                    _ => &[],
                };
                let (view, created) = self.views.hold(key, arity, rows, blocking)?;
                if created {
                    self.define_plain(view, sq, blocking)
                        .or_else(|e| self.views.unhold(view).and(Err(e)))?;
                    self.note_rows(view, rows);
                }
                Ok(view)
            }
            (Some((c, child)), _, seed) => {
                let (view, created) = self.views.hold(key, arity, &[], blocking)?;
                if created {
                    let rows = match seed {
                        PositionSeed::Links(rows) => &rows[..],
                        _ => &[],
                    };
                    let source = Source::Rows(rows);
                    if let Err(e) = self.define_derived(view, sq, c as u32, child, source, blocking)
                    {
                        self.release(h, i, view, true, true)?;
                        return Err(e);
                    }
                }
                if nested {
                    return Ok(view);
                }
                let attached = self
                    .views
                    .attach(key, arity, attachment, Seed::Current, blocking);
                // the attachment is this position's user: the hold was to create it
                self.release(h, i, view, true, true)?;
                attached
            }
        }
    }

    /// Attaches to a plain view, made (and its WHERE added to its view router) if new.
    fn attach_plain(
        &mut self,
        key: ViewKey,
        arity: u8,
        a: Attachment,
        seed: Seed<'_>,
        sq: &SubqueryDef,
        blocking: bool,
    ) -> Result<ViewId> {
        let view = self.views.attach(key, arity, a, seed, blocking)?;
        if self.def(view).is_none() {
            if let Err(e) = self.define_plain(view, sq, blocking) {
                self.views.detach(view, a.shape, a.position)?;
                return Err(e);
            }
            if let Seed::Rows(rows) = seed {
                self.note_rows(view, rows);
            }
        }
        Ok(view)
    }

    /// Adds new plain view `view`'s WHERE to its table's view router.
    pub(super) fn define_plain(
        &mut self,
        view: ViewId,
        sq: &SubqueryDef,
        blocking: bool,
    ) -> Result<()> {
        self.inner[sq.table as usize].add_view(view, &sq.inner, &sq.projection, blocking)?;
        self.set_def(
            view,
            ViewDef {
                table: sq.table,
                level: 0,
                projection: Some(sq.projection.clone().into()),
                link: None,
            },
        );
        self.over[sq.table as usize] += 1;
        Ok(())
    }

    /// Makes new derived view `view` (subquery `sq`, whose nested subquery at position
    /// `position` reads `child`): its link, filled from `rows`, and its counts from it.
    pub(super) fn define_derived(
        &mut self,
        view: ViewId,
        sq: &SubqueryDef,
        position: u32,
        child: ViewId,
        source: Source<'_>,
        blocking: bool,
    ) -> Result<()> {
        let (tested, filter) = split_nested(&sq.inner, position)?;
        let id = self.free_links.pop().unwrap_or(self.links.len() as u32);
        let mut link = Link::new(
            sq.table,
            tested.clone(),
            sq.projection.clone().into(),
            child,
            view,
        );
        let mut deltas: Vec<(Option<ColumnKey>, i64)> = Vec::new();
        match source {
            Source::Rows(rows) => {
                for (y, x, text) in rows {
                    let Some(y) = y else { continue };
                    let text: SmallVec<[Option<Cow<'_, [u8]>>; 2]> = text
                        .iter()
                        .map(|c| c.as_deref().map(Cow::Borrowed))
                        .collect();
                    link.add(y.clone(), x.clone(), &text, 1);
                    if self.views.counts().index().contains(y, child)? {
                        deltas.push((x.clone(), 1));
                    }
                }
            }
            Source::Restored(pairs, counts) => {
                for ((y, x), (count, text)) in pairs {
                    let text: SmallVec<[Option<Cow<'_, [u8]>>; 2]> = text
                        .iter()
                        .map(|c| c.as_deref().map(Cow::Borrowed))
                        .collect();
                    let x = x.as_deref().map(ColumnKey::from_slice);
                    link.add(ColumnKey::from_slice(y), x, &text, *count);
                }
                deltas = counts;
            }
        }
        let cols: Vec<usize> = tested.iter().chain(sq.projection.iter()).copied().collect();
        self.inner[sq.table as usize].add_view(LINK_BASE + id, &filter, &cols, blocking)?;
        let batch: Vec<Delta<'_>> = deltas
            .iter()
            .map(|(x, by)| Delta {
                view,
                value: x.as_deref(),
                by: *by,
            })
            .collect();
        // a new view has no attachment: no move to report
        if let Err(e) = self.views.apply(&batch, blocking, &mut Moves::default()) {
            self.inner[sq.table as usize].remove_view(LINK_BASE + id, true)?;
            return Err(e);
        }
        let level = self.def(child).map_or(0, |d| d.level) + 1;
        if id as usize == self.links.len() {
            self.links.push(Some(link));
        } else {
            self.links[id as usize] = Some(link);
        }
        self.derived.entry(child).or_default().push(id);
        self.note_link_all(id);
        for (x, _) in &deltas {
            self.note_count(view, x.as_deref());
        }
        self.set_def(
            view,
            ViewDef {
                table: sq.table,
                level,
                projection: None,
                link: Some(id),
            },
        );
        self.over[sq.table as usize] += 1;
        Ok(())
    }

    /// Releases position `i` of shape `h` from `view` (a hold when `nested`), freeing the
    /// view with its last user.
    fn release(
        &mut self,
        h: u32,
        i: usize,
        view: ViewId,
        nested: bool,
        blocking: bool,
    ) -> Result<()> {
        let key = self.views.registry().key(view);
        let freed = if nested {
            self.views.unhold(view)?
        } else {
            self.views.detach(view, h, i as u8)?
        };
        if !freed {
            return Ok(());
        }
        if let (Some(j), Some(key)) = (self.journal.as_mut(), key) {
            j.event(Event::Drop(key.0));
        }
        let Some(def) = self.defs.get_mut(view as usize).and_then(Option::take) else {
            return Ok(());
        };
        self.over[def.table as usize] -= 1;
        match def.link {
            None => self.inner[def.table as usize].remove_view(view, blocking),
            Some(id) => {
                let link = self.links[id as usize].take();
                self.free_links.push(id);
                if let Some(link) = link {
                    if let Some(ids) = self.derived.get_mut(&link.child) {
                        ids.retain(|&l| l != id);
                        if ids.is_empty() {
                            self.derived.remove(&link.child);
                        }
                    }
                }
                self.inner[def.table as usize].remove_view(LINK_BASE + id, blocking)
            }
        }
    }

    /// Releases every view of shape `h` (parents before their nested subqueries).
    pub(super) fn release_all(&mut self, h: u32, blocking: bool) -> Result<()> {
        let Some(held) = self.held.remove(&h) else {
            return Ok(());
        };
        for (i, (&view, &nested)) in held.views.iter().zip(held.nested.iter()).enumerate() {
            self.release(h, i, view, nested, blocking)?;
        }
        Ok(())
    }

    /// What view `view` is (`None`: not defined yet, or free).
    pub(super) fn def(&self, view: ViewId) -> Option<&ViewDef> {
        self.defs.get(view as usize).and_then(Option::as_ref)
    }

    fn set_def(&mut self, view: ViewId, def: ViewDef) {
        let v = view as usize;
        if self.defs.len() <= v {
            self.defs.resize_with(v + 1, || None);
        }
        self.defs[v] = Some(def);
    }
}

/// A projection's key (`None`: NULL).
pub(super) fn key_of(p: Projected) -> Option<ColumnKey> {
    match p {
        Projected::Key(k) => Some(k),
        Projected::Null => None,
    }
}
