//! The outer side of subquery views in a router's state: the shapes found through the
//! views holding a row's value (a shape with `project_id IN (SELECT id FROM projects …)` and
//! no equality is a candidate of a row whose `project_id` is in that view), and how a
//! shape's residual reads its views ([`ShapeViews`]).
//!
//! ```text
//! row ─▶ per column tuple some shape tests: the tuple's value key ─▶ view index lookup
//!     ─▶ views holding it ─▶ (view, tuple) ⇒ shapes planned on it ─▶ candidates
//! ```

use super::shapes::IdHasher;
use super::views::{project, Projected, ViewId, Views};
use crate::predicate::compile::ViewPlan;
use crate::predicate::Value;
use crate::predicate::{Member, Membership};
use smallvec::SmallVec;
use std::collections::HashMap;

/// The view plans of a router's published shapes.
#[derive(Debug, Default)]
pub(super) struct ViewSlots {
    /// Column tuples some shape is found through, each with how many plans use it.
    tuples: Vec<(Box<[usize]>, usize)>,
    /// (view, tuple number) ⇒ the shapes found through it, ascending.
    planned: HashMap<(ViewId, u16), Vec<u32>, IdHasher>,
}

impl ViewSlots {
    /// Whether no shape is found through a view.
    pub(super) fn is_empty(&self) -> bool {
        self.planned.is_empty()
    }

    /// Files shape `id`'s view plans.
    pub(super) fn insert(&mut self, id: u32, plans: &[ViewPlan], views: &[ViewId]) {
        for plan in plans {
            let Some(&view) = views.get(plan.position as usize) else {
                continue;
            };
            let t = match self.tuples.iter().position(|(c, _)| **c == *plan.columns) {
                Some(t) => t,
                None => {
                    self.tuples.push((plan.columns.clone().into(), 0));
                    self.tuples.len() - 1
                }
            };
            self.tuples[t].1 += 1;
            let ids = self.planned.entry((view, t as u16)).or_default();
            if let Err(at) = ids.binary_search(&id) {
                ids.insert(at, id);
            }
        }
    }

    /// Unfiles shape `id`'s view plans.
    pub(super) fn remove(&mut self, id: u32, plans: &[ViewPlan], views: &[ViewId]) {
        for plan in plans {
            let Some(&view) = views.get(plan.position as usize) else {
                continue;
            };
            let Some(t) = self.tuples.iter().position(|(c, _)| **c == *plan.columns) else {
                continue;
            };
            if let Some(ids) = self.planned.get_mut(&(view, t as u16)) {
                if let Ok(at) = ids.binary_search(&id) {
                    ids.remove(at);
                }
                if ids.is_empty() {
                    self.planned.remove(&(view, t as u16));
                }
            }
            self.tuples[t].1 -= 1;
        }
        // a tuple's number is kept while any plan uses it; trailing unused ones go
        while self.tuples.last().is_some_and(|(_, n)| *n == 0) {
            self.tuples.pop();
        }
    }

    /// The columns of the tuples some shape is found through (what a route probes), each
    /// once per tuple.
    pub(super) fn columns(&self) -> impl Iterator<Item = usize> + '_ {
        self.tuples
            .iter()
            .filter(|(_, n)| *n > 0)
            .flat_map(|(columns, _)| columns.iter().copied())
    }

    /// How many shapes are found through `view` on `columns`.
    pub(super) fn planned(&self, view: ViewId, columns: &[usize]) -> usize {
        let Some(t) = self.tuples.iter().position(|(c, _)| **c == *columns) else {
            return 0;
        };
        self.planned.get(&(view, t as u16)).map_or(0, Vec::len)
    }

    /// Appends to `out` the shapes whose planned views hold `row`'s values (unsorted; a
    /// shape found through several may repeat). `found` is a scratch buffer.
    pub(super) fn candidates(
        &self,
        views: &Views,
        row: &[Option<Value>],
        found: &mut Vec<u32>,
        out: &mut Vec<u32>,
    ) -> crate::Result<()> {
        for (t, (columns, n)) in self.tuples.iter().enumerate() {
            if *n == 0 {
                continue;
            }
            let values: SmallVec<[Option<&Value>; 4]> = columns
                .iter()
                .map(|&c| row.get(c).and_then(Option::as_ref))
                .collect();
            let Projected::Key(key) = project(&values) else {
                continue;
            };
            found.clear();
            views.counts().index().lookup_into(&key, found)?;
            for view in found.iter() {
                if let Some(ids) = self.planned.get(&(*view, t as u16)) {
                    out.extend_from_slice(ids);
                }
            }
        }
        Ok(())
    }
}

/// A shape's subquery results as its residual probes them: its own view of each (the
/// shared one plus its difference, see `views::diff`).
pub(super) struct ShapeViews<'a> {
    /// Every view of the router.
    pub(super) views: &'a Views,
    /// The shape.
    pub(super) shape: u32,
    /// Its view by subquery position.
    pub(super) ids: &'a [ViewId],
    /// A probe failed (the view index could not be read): the answer is not to be trusted.
    pub(super) failed: bool,
}

impl Membership for ShapeViews<'_> {
    fn probe(&mut self, position: u32, value: Option<&[&Value]>) -> Member {
        let key = value.and_then(|vs| {
            let vs: SmallVec<[Option<&Value>; 4]> = vs.iter().map(|v| Some(*v)).collect();
            match project(&vs) {
                Projected::Key(k) => Some(k),
                Projected::Null => None,
            }
        });
        let member = self.ids.get(position as usize).and_then(|&view| {
            self.views
                .member(view, self.shape, position as u8, key.as_deref())
                .ok()
        });
        match member {
            Some(m) => Member {
                present: m.present,
                nulls: m.nulls,
                empty: m.empty,
            },
            None => {
                self.failed = true;
                Member::default()
            }
        }
    }
}
