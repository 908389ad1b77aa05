//! The published shapes, what a route sees: the shape table (id ⇒ group), the groups and
//! their templates, the per-column and per-slot bookkeeping, the presence filter, the view
//! and ordered indexes. Writers (`shapes`) change it under the state lock only to publish or
//! unpublish.

use super::bits::columns_of;
use super::groups::{Form, Group, Groups, Template};
use super::ordered::OrderedSlots;
use super::presence::LiveKeys;
use super::view_slots::ViewSlots;
use super::{key_hasher, Columns, IndexCounts, ScanReason, ShapeCounts};
use smallvec::SmallVec;
use std::collections::HashMap;

/// Hashes shape ids: they are chosen by the service, not by its clients, so fixed keys
/// suffice, and a map carries no hasher state.
pub(super) type IdHasher = std::hash::BuildHasherDefault<ahash::AHasher>;

/// Shape id -> the handle of its group.
pub(super) type ShapeMap = HashMap<u32, u32, IdHasher>;

/// Compiled shapes, ready to be written and published.
pub(super) type Prepared = Vec<(u32, Form)>;

/// The published shapes: what a route sees.
#[derive(Debug)]
pub(super) struct State {
    /// The table's columns, in row order (an open-schema router's grow as shapes declare
    /// them: see `schema`).
    pub(super) columns: Columns,
    /// The narrowest row a route reads: the table's width before any column was added
    /// ([`super::Router::add_column`]); a narrower row's missing columns — added since it
    /// was written — are NULL. An open-schema router's rows are always as wide as its table.
    pub(super) narrowest: usize,
    /// Shape id ⇒ its group.
    pub(super) shapes: ShapeMap,
    /// The shapes' groups and the templates they share (see `groups`).
    pub(super) groups: Groups,
    /// Scanned groups, ascending (no map lookup per change).
    pub(super) scanned: Vec<u32>,
    /// Shapes in scanned groups.
    scanned_shapes: usize,
    /// Shapes by how they are found (see `Template::index_kind`).
    by_index: [usize; 5],
    /// Per column: how many shapes read it; as long as the highest column some shape reads.
    refs: Vec<u32>,
    /// Columns some shape refers to, ascending (the only ones a route reads).
    pub(super) referenced: Vec<usize>,
    /// Per column: how many shapes found through an ordered index read it. Such a shape is
    /// scanned to `LsmIndex.Filter`'s map engine, so for the unparseable rule it is too: a
    /// route reads these columns on every row (see `route::probed`).
    ordered_reads: Vec<u32>,
    /// The index slots some group is indexed on (see [`slot`]), ascending, each with how
    /// many groups are: a route probes only these.
    pub(super) indexed_on: Vec<(usize, usize)>,
    /// Scanned shapes by why, in the order of [`ScanReason::ALL`].
    pub(super) scanned_because: [usize; ScanReason::ALL.len()],
    /// The presence filter over the indexed groups' keys.
    pub(super) presence: LiveKeys,
    /// The shapes found through subquery views.
    pub(super) view_slots: ViewSlots,
    /// The groups found through a range or a literal (see `ordered`).
    pub(super) ordered: OrderedSlots,
}

impl State {
    /// No shapes, for a table of `columns`.
    pub(super) fn new(columns: Columns) -> State {
        State {
            narrowest: columns.len(),
            columns,
            shapes: ShapeMap::default(),
            groups: Groups::default(),
            scanned: Vec::new(),
            scanned_shapes: 0,
            by_index: [0; 5],
            refs: Vec::new(),
            ordered_reads: Vec::new(),
            referenced: Vec::new(),
            indexed_on: Vec::new(),
            scanned_because: [0; ScanReason::ALL.len()],
            presence: LiveKeys::default(),
            view_slots: ViewSlots::default(),
            ordered: OrderedSlots::default(),
        }
    }

    /// Shapes held, by kind.
    pub(super) fn counts(&self) -> ShapeCounts {
        ShapeCounts {
            scanned: self.scanned_shapes,
            indexed: self.shapes.len() - self.scanned_shapes,
            scanned_because: self.scanned_because,
        }
    }

    /// Shapes by how they are found, and groups and templates.
    pub(super) fn index_counts(&self) -> IndexCounts {
        let [equality, range, literal, view, scanned] = self.by_index;
        IndexCounts {
            equality,
            range,
            literal,
            view,
            scanned,
            groups: self.groups.len(),
            templates: self.groups.template_count(),
        }
    }

    /// The columns shapes found through an ordered index read (see `ordered_reads`).
    pub(super) fn ordered_reads(&self) -> impl Iterator<Item = usize> + '_ {
        let reads = self.ordered_reads.iter().enumerate();
        reads.filter(|(_, n)| **n > 0).map(|(c, _)| c)
    }

    /// The group shape `id` is in, if published.
    pub(super) fn group_of(&self, id: u32) -> Option<&Group> {
        self.shapes.get(&id).and_then(|&g| self.groups.get(g))
    }

    /// Whether a shape other than `id` reads column `c`.
    pub(super) fn read_by_other(&self, c: usize, id: u32) -> bool {
        let by_id = self
            .group_of(id)
            .is_some_and(|g| super::bits::bit(&g.template.mask, c));
        self.refs.get(c).copied().unwrap_or(0) > u32::from(by_id)
    }

    /// The group a shape of `form` would join, and whether it is new (then its keys must
    /// be in the index, under that handle, before [`State::insert`] publishes it).
    pub(super) fn place(&self, form: &Form) -> (u32, bool) {
        match self.groups.find(form) {
            Some(g) => (g, false),
            None => (self.groups.next_handle(), true),
        }
    }

    /// Publishes shape `id` of `form` (absent until now; `definition` its text, recorded as
    /// its template's source when the template has none) in the group `placed`, what
    /// [`State::place`] said of it (no group was published or unpublished since).
    pub(super) fn insert(&mut self, id: u32, form: Form, placed: (u32, bool), definition: &str) {
        let g = match placed {
            (g, false) => {
                if self.groups.join(g, id).is_none() {
                    return;
                }
                g
            }
            (_, true) => {
                let (g, group) = self.groups.create(form, id);
                debug_assert_eq!(g, placed.0, "placed under another handle");
                group.template.source.note(definition);
                self.file_group(g, None);
                g
            }
        };
        self.shapes.insert(id, g);
        let Some(group) = self.groups.get(g) else {
            return;
        };
        let t = group.template.clone();
        self.view_slots.insert(id, &t.view_plans, &group.views);
        self.count_shapes(&t, 1);
    }

    /// Publishes the groups of a snapshot (`restore` in `snapshot`), in ascending handles,
    /// into this empty state: the bookkeeping [`State::insert`] does, per group rather than
    /// per shape; `ordered` holds the ordered indexes as they were, `refused` the groups of
    /// ordered templates they did not take (scanned). Any inconsistency is an `Err` naming
    /// it (the state is then to be dropped).
    pub(super) fn restore(
        &mut self,
        groups: impl IntoIterator<Item = (u32, Group)>,
        ordered: OrderedSlots,
        refused: &[u32],
    ) -> Result<(), String> {
        self.ordered = ordered;
        for (g, group) in groups {
            let (t, n) = (group.template.clone(), group.ids.len());
            if !group.views.is_empty() || !t.view_plans.is_empty() {
                return Err(format!("group {g} reads views"));
            }
            for &id in &group.ids {
                if self.shapes.insert(id, g).is_some() {
                    return Err(format!("shape {id} is in two groups"));
                }
            }
            if !self.groups.restore(g, group) {
                return Err(format!("group {g} out of order"));
            }
            let filed = t.ordered.map(|_| refused.binary_search(&g).is_err());
            self.file_group(g, filed);
            self.count_shapes(&t, n as u32);
        }
        Ok(())
    }

    /// Files the new group `g` where routes look for it: among the scanned groups, under
    /// the index slots it is probed on (its keys in the presence filter), or in its
    /// ordered index. `filed`: where a restore put an ordered group already (`Some(true)`
    /// in its index, `Some(false)` refused by it); `None` files it now.
    fn file_group(&mut self, g: u32, filed: Option<bool>) {
        let Some(group) = self.groups.get(g) else {
            return;
        };
        let t = &group.template;
        if t.is_scanned() {
            let at = self.scanned.partition_point(|&s| s < g);
            self.scanned.insert(at, g);
        } else if !t.indexed.is_empty() {
            for &slot in t.indexed.iter() {
                match self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                    Ok(at) => self.indexed_on[at].1 += 1,
                    Err(at) => self.indexed_on.insert(at, (slot, 1)),
                }
            }
            let hashes: SmallVec<[u64; 2]> = group.keys().map(hash_key).collect();
            let groups = &self.groups;
            self.presence.insert(&hashes, || live_hashes(groups));
        } else if let (Some(at), Some(key)) = (t.ordered, &group.ordered) {
            // an index that cannot take it (a literal automaton at its size limit): the
            // group is checked on every change instead
            let filed = filed.unwrap_or_else(|| self.ordered.insert(at, key, g).is_ok());
            if !filed {
                let at = self.scanned.partition_point(|&s| s < g);
                self.scanned.insert(at, g);
            }
        }
    }

    /// Counts `n` more published shapes of template `t`: the columns they read, how they
    /// are found, why they are scanned.
    fn count_shapes(&mut self, t: &Template, n: u32) {
        for c in columns_of(&t.mask) {
            if self.refs.len() <= c {
                self.refs.resize(c + 1, 0);
            }
            self.refs[c] += n;
            if let Err(at) = self.referenced.binary_search(&c) {
                self.referenced.insert(at, c);
            }
        }
        let n = n as usize;
        self.by_index[t.index_kind()] += n;
        if t.ordered.is_some() {
            for c in columns_of(&t.mask) {
                if self.ordered_reads.len() <= c {
                    self.ordered_reads.resize(c + 1, 0);
                }
                self.ordered_reads[c] += n as u32;
            }
        }
        if t.is_scanned() {
            self.scanned_shapes += n;
            if let Some(why) = t.scan {
                self.scanned_because[why.index()] += n;
            }
        }
    }

    /// The groups of ordered templates that their index refused (scanned instead), for a
    /// snapshot.
    pub(super) fn refused(&self) -> impl Iterator<Item = u32> + '_ {
        let ordered =
            |g: &&u32| (self.groups.get(**g)).is_some_and(|group| group.template.ordered.is_some());
        self.scanned.iter().filter(ordered).copied()
    }

    /// Unpublishes shape `id`: its group's handle, and the group when it was the last of it
    /// (then its keys, still in the index, are to be dropped).
    pub(super) fn remove(&mut self, id: u32) -> Option<(u32, Option<Group>)> {
        let g = self.shapes.remove(&id)?;
        let group = self.groups.get(g)?;
        let t = group.template.clone();
        for c in columns_of(&t.mask) {
            if let Some(refs) = self.refs.get_mut(c) {
                *refs -= 1;
                if *refs == 0 {
                    self.referenced.retain(|&r| r != c);
                }
            }
        }
        self.view_slots.remove(id, &t.view_plans, &group.views);
        self.by_index[t.index_kind()] -= 1;
        if t.ordered.is_some() {
            for c in columns_of(&t.mask) {
                if let Some(n) = self.ordered_reads.get_mut(c) {
                    *n -= 1;
                }
            }
        }
        if t.is_scanned() {
            self.scanned_shapes -= 1;
            if let Some(why) = t.scan {
                self.scanned_because[why.index()] -= 1;
            }
        }
        let freed = self.groups.leave(g, id);
        if let Some(group) = &freed {
            if t.is_scanned() {
                if let Ok(at) = self.scanned.binary_search(&g) {
                    self.scanned.remove(at);
                }
            } else if !t.indexed.is_empty() {
                for &slot in t.indexed.iter() {
                    if let Ok(at) = self.indexed_on.binary_search_by_key(&slot, |&(s, _)| s) {
                        self.indexed_on[at].1 -= 1;
                        if self.indexed_on[at].1 == 0 {
                            self.indexed_on.remove(at);
                        }
                    }
                }
                let groups = &self.groups;
                self.presence
                    .remove(group.key_count(), || live_hashes(groups));
            } else if let (Some(at), Some(key)) = (t.ordered, &group.ordered) {
                self.ordered.remove(at, key, g);
                if let Ok(at) = self.scanned.binary_search(&g) {
                    self.scanned.remove(at);
                }
            }
        }
        Some((g, freed))
    }

    /// Room for `shapes` more shapes with `keys` more index keys.
    pub(super) fn reserve(&mut self, shapes: usize, keys: usize) {
        self.shapes.reserve(shapes);
        self.groups.reserve(shapes.min(keys));
        let groups = &self.groups;
        self.presence.reserve(keys, || live_hashes(groups));
    }
}

/// The presence-filter hash of index key `key`.
pub(super) fn hash_key(key: &[u8]) -> u64 {
    key_hasher().hash_one(key)
}

/// The presence-filter hashes of the published groups' keys.
fn live_hashes(groups: &Groups) -> impl Iterator<Item = u64> + '_ {
    groups.iter().flat_map(|(_, g)| g.keys().map(hash_key))
}
