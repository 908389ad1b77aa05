//! Subquery views: the storage behind `x [NOT] IN (SELECT c FROM t WHERE w)` — per view the
//! multiset of projected values, shared by every shape whose subquery has the same key,
//! each shape's own view as that shared base plus a sparse difference, and the moves a
//! change of the inner table makes (plan `plans/issue-23-subqueries.md` §2.2–2.4, §4).
//!
//! ```text
//! inner change ─▶ (step 7: view routers find the views whose WHERE holds on the old / new
//!                  row, rows projected with key::project) ─▶ [Delta] (view, value | NULL, ±n)
//!   ─▶ Counts::apply   phase 1, read-only: net per (view, value), counts before/after,
//!                      the index edits of 0→≥1 / ≥1→0 ─▶ one all-or-nothing index batch
//!                      (refused: Error::Overloaded, nothing changed) ─▶ phase 2: side maps
//!   ─▶ Applied         per value (before, after, shortfall), per view (nulls, distinct, total)
//!   ─▶ Shapes::moves   per attached shape: the base's crossings (shared), or its own
//!                      (base + diff) ─▶ moves::classify by polarity (§2.3) ─▶ Moves
//! outer row (step 8) ─▶ value key ─▶ view index lookup (views holding it) ─▶ Views::member
//! ```
//!
//! Semantics: PostgreSQL's. A view answers a probe with three facts ([`Member`]): the value
//! is present, the view holds a NULL row, the view is empty. A value's count is how many
//! inner rows project it; it is in the view iff its count is ≥ 1 (base + diff for a diffed
//! shape). Counts never go below zero in the base (an underflow is counted, see `counts`).
//!
//! Rooms:
//! - `mod.rs`: [`Views`], the API step 7 wires into the router: attach (seeded with the
//!   caller's rows, or `:current`), detach (the last user frees the view), apply a batch of
//!   deltas and get the moves, truncate, probe;
//! - `key`: view keys (what makes two subqueries one view), value keys of projected rows,
//!   the registry numbering views;
//! - `counts`: the shared multisets: the core `Index` (value key ⇒ views) plus per-view
//!   counts above 1, NULL rows and totals; two-phase batches;
//! - `diff`: per-shape views as base + sparse differences; per-shape crossings;
//! - `moves`: §2.3's table (polarity, NULLs, emptiness, truncates) and the moves' layout.
//!
//! Not yet (plan §8): the view routers and the two-phase inner path (step 7), outer routing
//! through the view index (8), lifecycle in the router (9), NIFs (10), nested chains (14),
//! `views.log` (17).

pub mod counts;
pub mod diff;
pub mod key;
pub mod moves;

pub use counts::{Applied, Counts, Delta, Touched, ViewTouched};
pub use diff::{Attachment, Diff, Member, Shapes};
pub use key::{project, Projected, Registry, ViewId, ViewKey};
pub use moves::{Move, MoveKind, MoveValue, MoveValues, Moves, Polarity};

use crate::index::Config;
use crate::{Error, Result};

/// What a shape attaching to a view says about its snapshot of the subquery.
#[derive(Clone, Copy, Debug)]
pub enum Seed<'a> {
    /// Its snapshot's rows, projected (duplicates included).
    Rows(&'a [Projected]),
    /// "My snapshot is the view as it is now": no values (the view must exist).
    Current,
}

/// Every view of a router: the registry, the shared counts and the shapes attached.
pub struct Views {
    registry: Registry,
    counts: Counts,
    shapes: Shapes,
}

impl Views {
    /// No view yet; the view index is an in-memory `Index` made with `config`.
    pub fn new(config: Config) -> Result<Views> {
        Ok(Views {
            registry: Registry::default(),
            counts: Counts::new(config)?,
            shapes: Shapes::default(),
        })
    }

    /// Attaches `a` to the view of `key` (selecting `arity` columns), created and filled
    /// with the seed's rows if new; an existing view is shared, and a seed that differs from
    /// it becomes `a`'s diff. `blocking`: a new view's rows may wait for room in the view
    /// index (else `Error::Overloaded`, nothing attached).
    pub fn attach(
        &mut self,
        key: ViewKey,
        arity: u8,
        a: Attachment,
        seed: Seed<'_>,
        blocking: bool,
    ) -> Result<ViewId> {
        let (view, created) = self.registry.acquire(key, arity)?;
        let attached = self.attach_to(view, created, a, seed, blocking);
        if attached.is_err() {
            self.registry.release(view)?;
        }
        attached.map(|()| view)
    }

    fn attach_to(
        &mut self,
        view: ViewId,
        created: bool,
        a: Attachment,
        seed: Seed<'_>,
        blocking: bool,
    ) -> Result<()> {
        let diff = match (seed, created) {
            (Seed::Current, true) => {
                return Err(Error::InvalidView {
                    view,
                    reason: "a :current snapshot of a view that does not exist".into(),
                })
            }
            (Seed::Current, false) => None,
            (Seed::Rows(rows), true) => {
                self.counts.apply(&seed_deltas(view, rows), blocking)?;
                None
            }
            (Seed::Rows(rows), false) => diff::diff_of(&self.counts, view, rows)?,
        };
        self.shapes.attach(view, a, diff)
    }

    /// Detaches occurrence `position` of `shape` from `view`; `true` when that freed the
    /// view (its counts are dropped and its number will be reused).
    pub fn detach(&mut self, view: ViewId, shape: u32, position: u8) -> Result<bool> {
        self.shapes.detach(view, shape, position)?;
        let freed = self.registry.release(view)?;
        if freed {
            self.counts.clear(view)?;
        }
        Ok(freed)
    }

    /// Applies a batch of deltas (all or nothing: `Error::Overloaded` when the view index
    /// refused it and `blocking` is false) and appends the moves it makes, sorted; returns
    /// what changed (the crossings of the shared views).
    pub fn apply(
        &mut self,
        deltas: &[Delta<'_>],
        blocking: bool,
        moves: &mut Moves,
    ) -> Result<Applied> {
        if let Some(d) = deltas.iter().find(|d| self.registry.users(d.view) == 0) {
            return Err(key::missing(d.view));
        }
        let applied = self.counts.apply(deltas, blocking)?;
        self.shapes.moves(&applied, moves);
        moves.sort();
        Ok(applied)
    }

    /// Holds the view of `key` for a level no shape tests directly (a nested subquery, the
    /// base of a derived view): one more user, no attachment. A new view is filled with
    /// `rows` (none: empty). Returns the view and whether it is new.
    pub fn hold(
        &mut self,
        key: ViewKey,
        arity: u8,
        rows: &[Projected],
        blocking: bool,
    ) -> Result<(ViewId, bool)> {
        let (view, created) = self.registry.acquire(key, arity)?;
        if created && !rows.is_empty() {
            if let Err(e) = self.counts.apply(&seed_deltas(view, rows), blocking) {
                self.registry.release(view)?;
                return Err(e);
            }
        }
        Ok((view, created))
    }

    /// [`Views::hold`] with a new view filled from `counts` (value key or NULL, rows): a
    /// restored view.
    pub fn hold_counts(
        &mut self,
        key: ViewKey,
        arity: u8,
        counts: &[(Option<&[u8]>, u64)],
        blocking: bool,
    ) -> Result<(ViewId, bool)> {
        let (view, created) = self.registry.acquire(key, arity)?;
        if created && !counts.is_empty() {
            let deltas: Vec<Delta<'_>> = counts
                .iter()
                .map(|&(value, n)| Delta {
                    view,
                    value,
                    by: n as i64,
                })
                .collect();
            if let Err(e) = self.counts.apply(&deltas, blocking) {
                self.registry.release(view)?;
                return Err(e);
            }
        }
        Ok((view, created))
    }

    /// The attachments and their diffs, for restoring a diff.
    pub fn shapes_mut(&mut self) -> &mut Shapes {
        &mut self.shapes
    }

    /// Releases a [`Views::hold`]; `true` when that freed the view.
    pub fn unhold(&mut self, view: ViewId) -> Result<bool> {
        let freed = self.registry.release(view)?;
        if freed {
            self.counts.clear(view)?;
        }
        Ok(freed)
    }

    /// Empties `view` (its inner table was truncated) and appends the moves, sorted.
    pub fn truncate(&mut self, view: ViewId, moves: &mut Moves) -> Result<()> {
        if self.registry.users(view) == 0 {
            return Err(key::missing(view));
        }
        let before = self.counts.clear(view)?;
        self.shapes.truncate(&before, moves);
        moves.sort();
        Ok(())
    }

    /// What occurrence `position` of `shape` sees in `view` for the value `key` (`None`:
    /// a NULL outer value).
    pub fn member(
        &self,
        view: ViewId,
        shape: u32,
        position: u8,
        key: Option<&[u8]>,
    ) -> Result<Member> {
        self.shapes
            .member(&self.counts, view, (shape, position), key)
    }

    /// The registry (view keys ⇒ views).
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The shared counts and the view index.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The attachments and their diffs.
    pub fn shapes(&self) -> &Shapes {
        &self.shapes
    }
}

/// One +1 delta of `view` per seed row.
fn seed_deltas(view: ViewId, rows: &[Projected]) -> Vec<Delta<'_>> {
    rows.iter()
        .map(|p| Delta {
            view,
            value: match p {
                Projected::Key(k) => Some(&k[..]),
                Projected::Null => None,
            },
            by: 1,
        })
        .collect()
}
