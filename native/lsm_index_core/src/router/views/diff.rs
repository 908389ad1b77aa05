//! Per-shape views: the shared base ([`Counts`]) plus, for a shape whose snapshot differed
//! from it, a sparse difference; and the moves each attached shape sees when the base
//! changes.
//!
//! ```text
//! shape s's view = base + diff_s     holds x iff base(x) + diff_s(x) > 0
//! diff_s         = sorted [(fp, count difference)], NULL rows difference,
//!                  distinct-values difference (for emptiness)
//! ```
//!
//! A shape attached with the base's own values (what a correct caller passes: the result as
//! of the router's position in the stream) has no diff and costs nothing per value. Counts,
//! not XOR: a shape holding x through a row the base lacks goes 1 → 2 when the base gains x.
//! A base count clamped at zero (an underflow) moves its shortfall into the diffs that have
//! an entry there, so those stay exact; shapes without one read the clamped base.

use super::counts::{Applied, Counts, Touched, ViewTouched};
use super::key::{missing, Projected, ViewId};
use super::moves::{classify, truncated, Move, MoveKind, MoveValues, Moves, Polarity, Seen};
use crate::{Error, Result};
use std::collections::HashMap;

/// One occurrence of a subquery in a shape, reading a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attachment {
    /// The shape.
    pub shape: u32,
    /// The subquery's position in the shape's WHERE.
    pub position: u8,
    /// Whether the occurrence counts membership for or against the shape.
    pub polarity: Polarity,
}

/// How a shape's view differs from the base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Diff {
    /// (fingerprint, count difference), ascending, no zero.
    entries: Vec<(u64, i64)>,
    /// NULL rows difference.
    nulls: i64,
    /// Distinct values held difference.
    present: i64,
}

impl Diff {
    /// The count difference at `fp`.
    pub fn at(&self, fp: u64) -> i64 {
        self.entries
            .binary_search_by_key(&fp, |e| e.0)
            .map_or(0, |i| self.entries[i].1)
    }

    /// The NULL rows difference.
    pub fn nulls(&self) -> i64 {
        self.nulls
    }

    /// How many values differ.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// A diff from its parts (`entries` ascending by fingerprint, no zero): how a persisted
    /// one is restored.
    pub fn from_parts(entries: Vec<(u64, i64)>, nulls: i64, present: i64) -> Diff {
        Diff {
            entries,
            nulls,
            present,
        }
    }

    /// Its parts: (entries, NULL rows difference, distinct values difference).
    pub fn parts(&self) -> (&[(u64, i64)], i64, i64) {
        (&self.entries, self.nulls, self.present)
    }

    /// Whether it counts some value above the base (where the base may lack it: the view
    /// index cannot find the shape by that value).
    pub fn has_positive(&self) -> bool {
        self.entries.iter().any(|e| e.1 > 0)
    }

    /// Whether the shape's view equals the base.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.nulls == 0
    }

    fn set(&mut self, fp: u64, d: i64) {
        match (self.entries.binary_search_by_key(&fp, |e| e.0), d) {
            (Ok(i), 0) => {
                self.entries.remove(i);
            }
            (Ok(i), _) => self.entries[i].1 = d,
            (Err(_), 0) => {}
            (Err(i), _) => self.entries.insert(i, (fp, d)),
        }
    }
}

/// The diff of a shape given `given` (its snapshot's rows, projected) against `view`'s base
/// now; `None` when equal. Walks the whole view (`Counts::counts_of`) only when the base
/// holds values the snapshot lacks.
pub fn diff_of(counts: &Counts, view: ViewId, given: &[Projected]) -> Result<Option<Diff>> {
    let mut rows: HashMap<u64, (&[u8], i64)> = HashMap::new();
    let mut nulls = 0i64;
    for p in given {
        match p {
            Projected::Null => nulls += 1,
            Projected::Key(k) => rows.entry(counts.fingerprint(k)).or_insert((k, 0)).1 += 1,
        }
    }
    let mut entries = Vec::new();
    let mut covered = 0u64;
    for (&fp, &(key, c)) in &rows {
        let b = counts.count(view, key)?;
        covered += b;
        if c != b as i64 {
            entries.push((fp, c - b as i64));
        }
    }
    if covered < counts.total(view) {
        for (fp, b) in counts.counts_of(view)? {
            if !rows.contains_key(&fp) {
                entries.push((fp, -(b as i64)));
            }
        }
    }
    entries.sort_unstable();
    let diff = Diff {
        entries,
        nulls: nulls - counts.nulls(view) as i64,
        present: rows.len() as i64 - counts.distinct(view)? as i64,
    };
    Ok((!diff.is_empty()).then_some(diff))
}

/// What a shape's view answers for one probe (plan §2.2's three facts).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Member {
    /// The probed value is in the view (false for a NULL probe).
    pub present: bool,
    /// The view holds a NULL row.
    pub nulls: bool,
    /// The view holds no row.
    pub empty: bool,
}

/// The shapes attached to one view.
#[derive(Default, Debug)]
struct Attached {
    list: Vec<Attachment>,
    diffs: HashMap<(u32, u8), Diff>,
}

/// Every view's attachments and their diffs.
#[derive(Default, Debug)]
pub struct Shapes {
    views: HashMap<ViewId, Attached>,
}

impl Shapes {
    /// Attaches `a` to `view`, with its diff if its snapshot differed.
    pub fn attach(&mut self, view: ViewId, a: Attachment, diff: Option<Diff>) -> Result<()> {
        let at = self.views.entry(view).or_default();
        if at
            .list
            .iter()
            .any(|x| (x.shape, x.position) == (a.shape, a.position))
        {
            return Err(Error::InvalidView {
                view,
                reason: format!("shape {} position {} attached twice", a.shape, a.position),
            });
        }
        at.list.push(a);
        if let Some(d) = diff {
            at.diffs.insert((a.shape, a.position), d);
        }
        Ok(())
    }

    /// Detaches occurrence `position` of `shape` from `view`; returns the attachments left.
    pub fn detach(&mut self, view: ViewId, shape: u32, position: u8) -> Result<usize> {
        let at = self.views.get_mut(&view).ok_or_else(|| missing(view))?;
        let i = at
            .list
            .iter()
            .position(|x| (x.shape, x.position) == (shape, position))
            .ok_or_else(|| Error::InvalidView {
                view,
                reason: format!("shape {shape} position {position} is not attached"),
            })?;
        at.list.swap_remove(i);
        at.diffs.remove(&(shape, position));
        let left = at.list.len();
        if left == 0 {
            self.views.remove(&view);
        }
        Ok(left)
    }

    /// Every diffed attachment: (view, shape, position, diff).
    pub fn diffs(&self) -> impl Iterator<Item = (ViewId, u32, u8, &Diff)> {
        self.views
            .iter()
            .flat_map(|(&v, a)| a.diffs.iter().map(move |(&(s, p), d)| (v, s, p, d)))
    }

    /// Sets the diff of `shape`'s occurrence `position` on `view` (attached already).
    pub fn set_diff(&mut self, view: ViewId, shape: u32, position: u8, diff: Diff) -> Result<()> {
        let at = self.views.get_mut(&view).ok_or_else(|| missing(view))?;
        if !at
            .list
            .iter()
            .any(|x| (x.shape, x.position) == (shape, position))
        {
            return Err(Error::InvalidView {
                view,
                reason: format!("shape {shape} position {position} is not attached"),
            });
        }
        if !diff.is_empty() || diff.present != 0 {
            at.diffs.insert((shape, position), diff);
        }
        Ok(())
    }

    /// The attachments of `view`.
    pub fn attached(&self, view: ViewId) -> &[Attachment] {
        self.views.get(&view).map_or(&[], |a| &a.list)
    }

    /// The diff of `shape`'s occurrence `position` on `view`, if its view differs.
    pub fn diff(&self, view: ViewId, shape: u32, position: u8) -> Option<&Diff> {
        self.views.get(&view)?.diffs.get(&(shape, position))
    }

    /// Attachments (shape occurrences reading a view) over every view.
    pub fn attachments(&self) -> usize {
        self.views.values().map(|a| a.list.len()).sum()
    }

    /// Diff entries held over every view (what the diffs cost).
    pub fn diff_entries(&self) -> usize {
        let per_view = self.views.values().flat_map(|a| a.diffs.values());
        per_view.map(|d| d.len() + 1).sum()
    }

    /// What `shape`'s occurrence `position` sees in `view` for `key` (`None`: a NULL probe).
    pub fn member(
        &self,
        counts: &Counts,
        view: ViewId,
        (shape, position): (u32, u8),
        key: Option<&[u8]>,
    ) -> Result<Member> {
        let diff = self.diff(view, shape, position);
        let present = match (key, diff) {
            (None, _) => false,
            (Some(k), None) => counts.index().contains(k, view)?,
            (Some(k), Some(d)) => counts.count(view, k)? as i64 + d.at(counts.fingerprint(k)) > 0,
        };
        let (nd, pd) = diff.map_or((0, 0), |d| (d.nulls, d.present));
        let nulls = counts.nulls(view) as i64 + nd > 0;
        let distinct = counts.distinct(view)? as i64 + pd;
        Ok(Member {
            present,
            nulls,
            empty: distinct <= 0 && !nulls,
        })
    }

    /// The moves of a batch `applied` to the counts, for every attached shape (appended to
    /// `moves`, unsorted), and the diffs brought up to date. Shapes without a diff share the
    /// base's lists; each diffed shape of a touched view is looked at on its own.
    pub fn moves(&mut self, applied: &Applied, moves: &mut Moves) {
        let mut rest = &applied.values[..];
        for vt in &applied.views {
            let n = rest.iter().take_while(|t| t.view == vt.view).count();
            let (values, after) = rest.split_at(n);
            rest = after;
            if let Some(at) = self.views.get_mut(&vt.view) {
                view_moves(at, vt, values, moves);
            }
        }
    }

    /// The moves of truncating `view` (`before`: its base before, from `Counts::clear`); its
    /// diffs are dropped (every shape's view is now empty).
    pub fn truncate(&mut self, before: &ViewTouched, moves: &mut Moves) {
        let Some(at) = self.views.get_mut(&before.view) else {
            return;
        };
        let mut lists: [Option<u32>; 2] = [None, None];
        for a in &at.list {
            let (nd, pd) = at
                .diffs
                .get(&(a.shape, a.position))
                .map_or((0, 0), |d| (d.nulls, d.present));
            let empty = before.distinct.0 as i64 + pd <= 0 && before.nulls.0 as i64 + nd <= 0;
            if let Some(kind) = truncated(a.polarity, empty) {
                let list = *lists[kind as usize].get_or_insert_with(|| moves.list(MoveValues::All));
                moves.push(Move {
                    shape: a.shape,
                    kind,
                    position: a.position,
                    values: list,
                });
            }
        }
        at.diffs.clear();
    }
}

/// One touched view's moves: the base's classification once per polarity, then each diffed
/// shape's own.
fn view_moves(at: &mut Attached, vt: &ViewTouched, values: &[Touched], moves: &mut Moves) {
    let entered: Vec<u32> = values
        .iter()
        .filter(|t| t.entered())
        .map(|t| t.delta)
        .collect();
    let left: Vec<u32> = values
        .iter()
        .filter(|t| t.left())
        .map(|t| t.delta)
        .collect();
    let base = Seen {
        entered: &entered,
        left: &left,
        nulls: (vt.nulls.0 > 0, vt.nulls.1 > 0),
        empty: vt.empty(),
    };
    // per polarity: the base's (out, in) lists, stored on first use
    let mut shared: [Option<[Option<u32>; 2]>; 2] = [None, None];
    for a in &at.list {
        let (mut own_in, mut own_out) = (Vec::new(), Vec::new());
        let lists = match at.diffs.get_mut(&(a.shape, a.position)) {
            None => *shared[a.polarity as usize].get_or_insert_with(|| {
                classify(a.polarity, &base).map(|m| m.map(|v| moves.list(v)))
            }),
            Some(d) => {
                let seen = diffed_seen(d, vt, values, &mut own_in, &mut own_out);
                classify(a.polarity, &seen).map(|m| m.map(|v| moves.list(v)))
            }
        };
        for (kind, list) in [MoveKind::Out, MoveKind::In].into_iter().zip(lists) {
            if let Some(values) = list {
                moves.push(Move {
                    shape: a.shape,
                    kind,
                    position: a.position,
                    values,
                });
            }
        }
    }
    at.diffs.retain(|_, d| !d.is_empty() || d.present != 0);
}

/// How a diffed shape sees the batch (its counts are base + diff), updating its diff: a
/// shortfall of the base moves into the entry, and the distinct-values difference follows.
fn diffed_seen<'a>(
    d: &mut Diff,
    vt: &ViewTouched,
    values: &[Touched],
    entered: &'a mut Vec<u32>,
    left: &'a mut Vec<u32>,
) -> Seen<'a> {
    let present_before = d.present;
    for t in values {
        let dx = d.at(t.fp);
        let (b0, b1) = (t.before > 0, t.after > 0);
        let (s0, s1) = if dx == 0 {
            (b0, b1)
        } else {
            let s0 = t.before as i64 + dx > 0;
            let s1 = t.after as i64 - t.shortfall as i64 + dx > 0;
            d.set(t.fp, dx - t.shortfall as i64);
            d.present += (i64::from(s1) - i64::from(b1)) - (i64::from(s0) - i64::from(b0));
            (s0, s1)
        };
        match (s0, s1) {
            (false, true) => entered.push(t.delta),
            (true, false) => left.push(t.delta),
            _ => {}
        }
    }
    let nulls = (
        vt.nulls.0 as i64 + d.nulls > 0,
        vt.nulls.1 as i64 + d.nulls > 0,
    );
    let distinct = (
        vt.distinct.0 as i64 + present_before,
        vt.distinct.1 as i64 + d.present,
    );
    Seen {
        entered,
        left,
        nulls,
        empty: (distinct.0 <= 0 && !nulls.0, distinct.1 <= 0 && !nulls.1),
    }
}
