//! Routing a change of a table some view reads (see `subqueries` for the whole path): the
//! view router finds the plain views and links whose WHERE holds on the old / new row; the
//! outer old row is routed by the views before; the deltas are applied by level — plain
//! views first, then each derived view with what its link and its child's crossings give it
//! (`links`) — so every view gets one batch per change and its moves are net; the outer new
//! row is routed by the views after.

use super::journal::Event;
use super::linked::{key_of, Linked};
use super::links::LINK_BASE;
use super::row::RowText;
use super::subqueries::{Moved, ValueText};
use super::views::{project, Delta, Moves, ViewId};
use super::{Change, Router};
use crate::key::ColumnKey;
use crate::predicate::Value;
use crate::{Error, Result};
use smallvec::SmallVec;
use std::borrow::Cow;

/// Attachments a crossing may fan out to before a non-blocking route hands the change to a
/// blocking caller (a dirty scheduler): building that many moves takes a while.
const FAN_OUT_NON_BLOCKING: usize = 4_096;

/// One count change waiting for its level's batch.
struct Pending<'a> {
    view: ViewId,
    key: Option<ColumnKey>,
    by: i64,
    text: ValueText<'a>,
}

/// What the view router found on one row.
enum Hit<'a> {
    /// A plain view's row.
    View(Pending<'a>),
    /// A link's row: (link, y, x, x's text, ±1).
    Link(u32, ColumnKey, Option<ColumnKey>, ValueText<'a>, i64),
}

impl Linked {
    /// Routes a change of table `table`, which some view reads (see the module doc).
    pub(super) fn route_inner<'a>(
        &mut self,
        router: &Router,
        table: u32,
        change: &Change<'a>,
        out: &mut Vec<u32>,
        moved: &mut Moved<'a>,
        blocking: bool,
    ) -> Result<()> {
        out.clear();
        let (old, new): (Option<&'a RowText<'a>>, Option<&'a RowText<'a>>) = match *change {
            Change::Insert(row) => (None, Some(row)),
            Change::Delete(row) => (Some(row), None),
            Change::Update(old, new) => (Some(old), Some(new)),
            Change::Truncate => {
                if !blocking {
                    return Err(Error::WouldBlock {
                        reason: "a truncate empties views",
                    });
                }
                router.reader().route_with(change, out, Some(&self.views))?;
                return self.truncate(table, moved);
            }
        };
        let hits = self.hits(table, old, new)?;
        if !blocking {
            self.check_non_blocking(&hits)?;
        }
        if let Some(old) = old {
            router
                .reader()
                .route_with(&Change::Delete(old), out, Some(&self.views))?;
        }
        let mut levels: Vec<Vec<Pending<'a>>> = Vec::new();
        for hit in hits {
            match hit {
                Hit::View(p) => level_of(&mut levels, 0).push(p),
                Hit::Link(id, y, x, text, by) => {
                    let Some(link) = self.links.get_mut(id as usize).and_then(Option::as_mut)
                    else {
                        continue;
                    };
                    link.add(y.clone(), x.clone(), &text, by);
                    let (child, parent) = (link.child, link.parent);
                    self.note_link(parent, &y, x.as_deref());
                    if self.views.counts().index().contains(&y, child)? {
                        let level = self.def(parent).map_or(1, |d| d.level);
                        level_of(&mut levels, level).push(Pending {
                            view: parent,
                            key: x,
                            by,
                            text,
                        });
                    }
                }
            }
        }
        self.apply_levels(levels, blocking, moved)?;
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

    /// The views and links whose WHERE holds on the old row (−1) and the new row (+1).
    fn hits<'a>(
        &self,
        table: u32,
        old: Option<&'a RowText<'a>>,
        new: Option<&'a RowText<'a>>,
    ) -> Result<Vec<Hit<'a>>> {
        let view_router = self.inner[table as usize].clone();
        let mut reader = view_router.reader();
        let mut found = Vec::new();
        let mut hits = Vec::new();
        for (row, by) in [(old, -1i64), (new, 1)] {
            let Some(row) = row else { continue };
            let parsed = reader.route_strict(table, row, &mut found)?;
            let values = |cols: &[usize]| -> SmallVec<[Option<&Value>; 4]> {
                cols.iter()
                    .map(|&c| parsed.values.get(c).and_then(Option::as_ref))
                    .collect()
            };
            let text = |cols: &[usize]| -> ValueText<'a> {
                cols.iter().map(|&c| row[c].map(Cow::Borrowed)).collect()
            };
            for &h in &found {
                if h >= LINK_BASE {
                    let Some(link) = self
                        .links
                        .get((h - LINK_BASE) as usize)
                        .and_then(Option::as_ref)
                    else {
                        continue;
                    };
                    // a NULL y is never in the child: the row is in no result
                    let Some(y) = key_of(project(&values(&link.tested))) else {
                        continue;
                    };
                    let x = key_of(project(&values(&link.projection)));
                    hits.push(Hit::Link(h - LINK_BASE, y, x, text(&link.projection), by));
                } else if let Some(projection) = self.def(h).and_then(|d| d.projection.as_deref()) {
                    hits.push(Hit::View(Pending {
                        view: h,
                        key: key_of(project(&values(projection))),
                        by,
                        text: text(projection),
                    }));
                }
            }
        }
        Ok(hits)
    }

    /// `WouldBlock` when a change's hits cannot be applied in one all-or-nothing batch
    /// (links, derived views: several batches) or would fan out to many shapes.
    fn check_non_blocking(&self, hits: &[Hit<'_>]) -> Result<()> {
        let mut fan_out = 0;
        for hit in hits {
            let Hit::View(p) = hit else {
                return Err(Error::WouldBlock {
                    reason: "a change of a nested subquery's table",
                });
            };
            if self.derived.contains_key(&p.view) {
                return Err(Error::WouldBlock {
                    reason: "a change of a nested subquery's table",
                });
            }
            fan_out += self.views.shapes().attached(p.view).len();
        }
        if fan_out > FAN_OUT_NON_BLOCKING {
            return Err(Error::WouldBlock {
                reason: "a change moves many shapes",
            });
        }
        Ok(())
    }

    /// Applies the levels' batches in order; each batch's crossings of a view some link
    /// derives from add that link's pairs to the derived view's (later) level.
    fn apply_levels<'a>(
        &mut self,
        mut levels: Vec<Vec<Pending<'a>>>,
        blocking: bool,
        moved: &mut Moved<'a>,
    ) -> Result<()> {
        let mut level = 0;
        while level < levels.len() {
            let batch = std::mem::take(&mut levels[level]);
            level += 1;
            if batch.is_empty() {
                continue;
            }
            let deltas: Vec<Delta<'_>> = batch
                .iter()
                .map(|p| Delta {
                    view: p.view,
                    value: p.key.as_deref(),
                    by: p.by,
                })
                .collect();
            let mut moves = Moves::default();
            let applied = self.views.apply(&deltas, blocking, &mut moves)?;
            for p in &batch {
                self.note_count(p.view, p.key.as_deref());
            }
            for t in applied.values.iter().filter(|t| t.entered() || t.left()) {
                let Some(ids) = self.derived.get(&t.view) else {
                    continue;
                };
                let Some(y) = batch.get(t.delta as usize).and_then(|p| p.key.as_deref()) else {
                    continue;
                };
                let sign = if t.entered() { 1 } else { -1 };
                for &id in ids {
                    let Some(link) = self.links.get(id as usize).and_then(Option::as_ref) else {
                        continue;
                    };
                    let to = self
                        .def(link.parent)
                        .map_or(level, |d| usize::from(d.level));
                    for (x, pair) in link.under(y) {
                        level_of(&mut levels, to as u8).push(Pending {
                            view: link.parent,
                            key: x.clone(),
                            by: sign * pair.count,
                            text: owned(&pair.text),
                        });
                    }
                }
            }
            let offset = moved.texts.len() as u32;
            moved.texts.extend(batch.into_iter().map(|p| p.text));
            moved.moves.extend_shifted(moves, offset);
        }
        moved.moves.sort();
        Ok(())
    }

    /// Table `table` was truncated: its views — plain ones and those derived through a link
    /// over it — are emptied (`:all` moves, as PostgreSQL's result of each is now empty),
    /// its links cleared, and the views derived from those views lose, value by value, what
    /// they derived.
    fn truncate<'a>(&mut self, table: u32, moved: &mut Moved<'a>) -> Result<()> {
        let emptied: Vec<ViewId> = (0..self.defs.len() as u32)
            .filter(|&v| self.def(v).is_some_and(|d| d.table == table))
            .collect();
        let mut levels: Vec<Vec<Pending<'a>>> = Vec::new();
        for &v in &emptied {
            for &id in self.derived.get(&v).map_or(&[][..], |ids| &ids[..]) {
                let Some(link) = self.links.get(id as usize).and_then(Option::as_ref) else {
                    continue;
                };
                if link.table == table {
                    // its derived view is emptied itself
                    continue;
                }
                let level = self.def(link.parent).map_or(1, |d| d.level);
                for (y, xs) in link.all() {
                    if !self.views.counts().index().contains(y, v)? {
                        continue;
                    }
                    for (x, pair) in xs {
                        level_of(&mut levels, level).push(Pending {
                            view: link.parent,
                            key: x.clone(),
                            by: -pair.count,
                            text: owned(&pair.text),
                        });
                    }
                }
            }
        }
        let mut cleared = Vec::new();
        for link in self.links.iter_mut().flatten() {
            if link.table == table {
                link.clear();
                cleared.push(link.parent);
            }
        }
        for parent in cleared {
            self.note_view(parent, Event::LinkClear);
        }
        for v in emptied {
            self.note_view(v, Event::Truncate);
            let mut moves = Moves::default();
            self.views.truncate(v, &mut moves)?;
            moved.moves.extend_shifted(moves, 0);
        }
        self.apply_levels(levels, true, moved)
    }
}

/// The batch of `level`, made if new.
fn level_of<'l, 'a>(levels: &'l mut Vec<Vec<Pending<'a>>>, level: u8) -> &'l mut Vec<Pending<'a>> {
    let l = usize::from(level);
    if levels.len() <= l {
        levels.resize_with(l + 1, Vec::new);
    }
    &mut levels[l]
}

/// A link's stored text as a move's value.
fn owned<'a>(text: &[Option<Box<[u8]>>]) -> ValueText<'a> {
    text.iter()
        .map(|c| c.as_ref().map(|b| Cow::Owned(b.to_vec())))
        .collect()
}
