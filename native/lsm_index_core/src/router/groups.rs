//! Shapes that compile alike share one compiled form and one index entry. A [`Template`]
//! (the residual program with its literals, the columns it reads, how it is found) is held
//! once per distinct form; the shapes with one template, the same index keys and the same
//! views form a [`Group`], which is what the equality index files under its keys. A route
//! finds a group, runs its template once and takes every id of it: a million shapes made
//! from a few templates hold a few programs, and a key's candidates cost one run per group.
//!
//! ```text
//! index key ─▶ group handle ─▶ Group { template ─▶ Template { residual, mask, … },
//!                                      keys, views, ids: [7, 19, 4003, …] }
//! ```

use super::ordered::{OrderedKey, OrderedSlot};
use super::shapes::IdHasher;
use super::views::ViewId;
use super::{key_hasher, ScanReason};
use crate::key::ColumnKey;
use crate::predicate::compile::{Program, ViewPlan};
use crate::predicate::HashWriter;
use smallvec::SmallVec;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

/// A shape's compiled form without its index keys: what shapes that differ only in the
/// value they are found by (`user_id = $1`) have in common.
#[derive(Debug, PartialEq)]
pub(super) struct Template {
    /// The WHERE clause as a program over a parsed row (what the index does not imply).
    pub(super) residual: Program,
    /// The columns the whole clause reads (a bitset).
    pub(super) mask: Box<[u64]>,
    /// The index slots it is found through (see `slots`); empty when scanned.
    pub(super) indexed: Box<[usize]>,
    /// Why it is scanned (`None`: indexed).
    pub(super) scan: Option<ScanReason>,
    /// The subqueries it is found through (a row's value in their view): see `view_slots`.
    pub(super) view_plans: Box<[ViewPlan]>,
    /// The ordered index it is found through (a range, a literal): see `ordered`.
    pub(super) ordered: Option<OrderedSlot>,
    /// A hash of all of the above (equal templates hash equal).
    hash: u64,
    /// The definition of one of its shapes (see `snapshot`); not part of what it is.
    pub(super) source: Source,
}

/// The definition text of one shape of a template, set when the template is first
/// published: compiling it again gives the template (compiling is deterministic), which is
/// how a router snapshot stores templates. Templates made from other definitions are still
/// equal: it compares equal to any other.
#[derive(Default)]
pub(super) struct Source(OnceLock<Arc<str>>);

impl Source {
    /// Records `definition` unless one is recorded or it is empty (a view's shape has none).
    pub(super) fn note(&self, definition: &str) {
        if !definition.is_empty() && self.0.get().is_none() {
            let _ = self.0.set(definition.into());
        }
    }

    /// The recorded definition.
    pub(super) fn get(&self) -> Option<&str> {
        self.0.get().map(|s| &**s)
    }
}

impl PartialEq for Source {
    fn eq(&self, _: &Source) -> bool {
        true
    }
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Source")
    }
}

impl Template {
    /// A template of these parts.
    pub(super) fn new(
        residual: Program,
        mask: Box<[u64]>,
        indexed: Box<[usize]>,
        scan: Option<ScanReason>,
        view_plans: Box<[ViewPlan]>,
        ordered: Option<OrderedSlot>,
    ) -> Template {
        let mut h = key_hasher().build_hasher();
        residual.hash_into(&mut h);
        (&mask, &indexed, scan, &ordered).hash(&mut h);
        if !view_plans.is_empty() {
            let _ = std::fmt::write(&mut HashWriter(&mut h), format_args!("{view_plans:?}"));
        }
        Template {
            residual,
            mask,
            indexed,
            scan,
            view_plans,
            ordered,
            hash: h.finish(),
            source: Source::default(),
        }
    }

    /// Whether it is evaluated on every change (found through no index nor view).
    pub(super) fn is_scanned(&self) -> bool {
        self.indexed.is_empty() && self.view_plans.is_empty() && self.ordered.is_none()
    }

    /// How its shapes are found, as a position in `IndexCounts`' order: equality, range,
    /// literal, view, scanned.
    pub(super) fn index_kind(&self) -> usize {
        match (
            &self.ordered,
            self.indexed.is_empty(),
            self.view_plans.is_empty(),
        ) {
            (_, false, _) => 0,
            (Some(at), true, _) => 1 + usize::from(at.infix),
            (None, true, false) => 3,
            (None, true, true) => 4,
        }
    }
}

/// Shapes that share a template, index keys and views: the equality index's handle.
#[derive(Debug)]
pub(super) struct Group {
    /// Their compiled form (shared with other groups of the same form).
    pub(super) template: Arc<Template>,
    /// Their index keys, each as a `u32` length and its bytes (see [`pack_keys`]).
    keys: Box<[u8]>,
    /// The view each of their subqueries reads, by position (empty: none).
    pub(super) views: Box<[ViewId]>,
    /// What their template's ordered index files them under.
    pub(super) ordered: Option<OrderedKey>,
    /// Their ids, ascending (four inline: the size of the heap form, one miss fewer).
    pub(super) ids: SmallVec<[u32; 4]>,
}

impl Group {
    /// Its index keys.
    pub(super) fn keys(&self) -> impl Iterator<Item = &[u8]> + '_ {
        unpack_keys(&self.keys)
    }

    /// How many index keys it has.
    pub(super) fn key_count(&self) -> usize {
        self.keys().count()
    }

    /// Its index keys as packed (see [`pack_keys`]): what a snapshot stores.
    pub(super) fn packed_keys(&self) -> &[u8] {
        &self.keys
    }

    /// A group as a snapshot stored it: `packed` its keys as [`Group::packed_keys`] gave
    /// them, `ids` ascending; `None` when either is malformed.
    pub(super) fn restored(
        template: Arc<Template>,
        packed: Box<[u8]>,
        ordered: Option<OrderedKey>,
        ids: SmallVec<[u32; 4]>,
    ) -> Option<Group> {
        let whole: usize = unpack_keys(&packed).map(|k| 4 + k.len()).sum();
        let ascending = ids.windows(2).all(|w| w[0] < w[1]);
        (whole == packed.len() && ascending && !ids.is_empty()).then_some(Group {
            template,
            keys: packed,
            views: Box::default(),
            ordered,
            ids,
        })
    }
}

/// A compiled shape before it is published: its form, its index keys and views.
#[derive(Debug)]
pub(super) struct Form {
    pub(super) template: Arc<Template>,
    pub(super) keys: Vec<ColumnKey>,
    pub(super) views: Box<[ViewId]>,
    pub(super) ordered: Option<OrderedKey>,
    /// A hash of the template, keys and views (equal forms hash equal).
    hash: u64,
}

impl Form {
    /// The form of these parts.
    pub(super) fn new(
        template: Arc<Template>,
        keys: Vec<ColumnKey>,
        views: Box<[ViewId]>,
        ordered: Option<OrderedKey>,
    ) -> Form {
        let mut h = key_hasher().build_hasher();
        template.hash.hash(&mut h);
        for k in &keys {
            k.as_slice().hash(&mut h);
        }
        views.hash(&mut h);
        ordered.hash(&mut h);
        Form {
            hash: h.finish(),
            template,
            keys,
            views,
            ordered,
        }
    }

    /// Whether `group` holds shapes of this form.
    fn is_of(&self, group: &Group) -> bool {
        (Arc::ptr_eq(&group.template, &self.template) || group.template == self.template)
            && group.views == self.views
            && group.ordered == self.ordered
            && group.keys().eq(self.keys.iter().map(|k| k.as_slice()))
    }
}

/// A template and how many groups hold it.
type Held = (Arc<Template>, u32);

/// The published groups and the templates they share.
#[derive(Debug, Default)]
pub(super) struct Groups {
    /// By handle (`None`: a free handle).
    slots: Vec<Option<Group>>,
    /// Free handles, reused last freed first.
    free: Vec<u32>,
    /// Form hash ⇒ the groups of that hash.
    by_form: HashMap<u64, SmallVec<[u32; 1]>, IdHasher>,
    /// Template hash ⇒ the templates of that hash, each with how many groups hold it.
    templates: HashMap<u64, SmallVec<[Held; 1]>, IdHasher>,
}

impl Groups {
    /// The group of handle `g`, if published.
    #[inline]
    pub(super) fn get(&self, g: u32) -> Option<&Group> {
        self.slots.get(g as usize).and_then(Option::as_ref)
    }

    /// The published group of shapes of `form`, if any.
    pub(super) fn find(&self, form: &Form) -> Option<u32> {
        let handles = self.by_form.get(&form.hash)?;
        handles
            .iter()
            .copied()
            .find(|&g| self.get(g).is_some_and(|group| form.is_of(group)))
    }

    /// The published template equal to `template`, if any.
    pub(super) fn published(&self, template: &Template) -> Option<Arc<Template>> {
        let same = self.templates.get(&template.hash)?;
        let (t, _) = same.iter().find(|(t, _)| **t == *template)?;
        Some(t.clone())
    }

    /// The handle the next new group will take.
    pub(super) fn next_handle(&self) -> u32 {
        match self.free.last() {
            Some(&g) => g,
            None => self.slots.len() as u32,
        }
    }

    /// Publishes a new group of `form` holding `id` under handle [`Groups::next_handle`],
    /// its template shared with the groups of an equal one.
    pub(super) fn create(&mut self, form: Form, id: u32) -> (u32, &Group) {
        let g = self.next_handle();
        if self.free.last() == Some(&g) {
            self.free.pop();
        } else {
            self.slots.push(None);
        }
        self.by_form.entry(form.hash).or_default().push(g);
        let Form {
            template,
            keys,
            views,
            ordered,
            ..
        } = form;
        let same = self.templates.entry(template.hash).or_default();
        let template = match same
            .iter_mut()
            .find(|(t, _)| Arc::ptr_eq(t, &template) || *t == template)
        {
            Some((t, groups)) => {
                *groups += 1;
                t.clone()
            }
            None => {
                same.push((template.clone(), 1));
                template
            }
        };
        let mut ids = SmallVec::new();
        ids.push(id);
        let slot = &mut self.slots[g as usize];
        let group = slot.insert(Group {
            template,
            keys: pack_keys(&keys),
            views,
            ordered,
            ids,
        });
        (g, group)
    }

    /// Adds `id` to group `g` (published).
    pub(super) fn join(&mut self, g: u32, id: u32) -> Option<&Group> {
        let group = self.slots.get_mut(g as usize)?.as_mut()?;
        if let Err(at) = group.ids.binary_search(&id) {
            group.ids.insert(at, id);
        }
        Some(group)
    }

    /// Takes `id` out of group `g`; the group itself when that emptied it (it is then
    /// unpublished and its handle free).
    pub(super) fn leave(&mut self, g: u32, id: u32) -> Option<Group> {
        let slot = self.slots.get_mut(g as usize)?;
        let group = slot.as_mut()?;
        if let Ok(at) = group.ids.binary_search(&id) {
            group.ids.remove(at);
        }
        if !group.ids.is_empty() {
            return None;
        }
        let group = slot.take()?;
        self.free.push(g);
        let hash = Form::hash_of(&group);
        if let Some(handles) = self.by_form.get_mut(&hash) {
            handles.retain(|h| *h != g);
            if handles.is_empty() {
                self.by_form.remove(&hash);
            }
        }
        // the template goes with the last group holding it
        let t = group.template.hash;
        if let Some(same) = self.templates.get_mut(&t) {
            if let Some(at) = same
                .iter()
                .position(|(x, _)| Arc::ptr_eq(x, &group.template))
            {
                same[at].1 -= 1;
                if same[at].1 == 0 {
                    same.swap_remove(at);
                }
            }
            if same.is_empty() {
                self.templates.remove(&t);
            }
        }
        Some(group)
    }

    /// Every published group with its handle.
    pub(super) fn iter(&self) -> impl Iterator<Item = (u32, &Group)> + '_ {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(g, s)| s.as_ref().map(|s| (g as u32, s)))
    }

    /// How many distinct templates the groups hold.
    pub(super) fn template_count(&self) -> usize {
        self.templates.values().map(|s| s.len()).sum()
    }

    /// How many groups are published.
    pub(super) fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }

    /// Room for `n` more groups.
    pub(super) fn reserve(&mut self, n: usize) {
        self.slots.reserve(n);
        self.by_form.reserve(n);
    }

    /// Publishes `group` under handle `g` as a snapshot held it (handles restored in
    /// ascending order: the ones skipped are free); `false` if `g` is not above every
    /// handle restored so far.
    pub(super) fn restore(&mut self, g: u32, group: Group) -> bool {
        if (g as usize) < self.slots.len() {
            return false;
        }
        while self.slots.len() < g as usize {
            self.free.push(self.slots.len() as u32);
            self.slots.push(None);
        }
        self.by_form
            .entry(Form::hash_of(&group))
            .or_default()
            .push(g);
        let same = self.templates.entry(group.template.hash).or_default();
        match same
            .iter_mut()
            .find(|(t, _)| Arc::ptr_eq(t, &group.template))
        {
            Some((_, groups)) => *groups += 1,
            None => same.push((group.template.clone(), 1)),
        }
        self.slots.push(Some(group));
        true
    }
}

impl Form {
    /// The hash [`Form::new`] gave the form of `group`'s shapes.
    fn hash_of(group: &Group) -> u64 {
        let mut h = key_hasher().build_hasher();
        group.template.hash.hash(&mut h);
        for k in group.keys() {
            k.hash(&mut h);
        }
        group.views.hash(&mut h);
        group.ordered.hash(&mut h);
        h.finish()
    }
}

/// `keys` as one buffer: each a `u32` length (little-endian) and its bytes.
fn pack_keys(keys: &[ColumnKey]) -> Box<[u8]> {
    let mut out = Vec::with_capacity(keys.iter().map(|k| k.len() + 4).sum());
    for k in keys {
        out.extend_from_slice(&(k.len() as u32).to_le_bytes());
        out.extend_from_slice(k);
    }
    out.into_boxed_slice()
}

/// The keys [`pack_keys`] packed.
fn unpack_keys(mut packed: &[u8]) -> impl Iterator<Item = &[u8]> + '_ {
    std::iter::from_fn(move || {
        let (len, rest) = packed.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let (key, rest) = rest.split_at_checked(len)?;
        packed = rest;
        Some(key)
    })
}
