//! What a persistent router over declared tables changed since its last flush: which
//! (view, value) counts, NULL counts and link pairs were touched, and the view-level events
//! (truncates, drops) and shape definitions, in order. A flush resolves each touched count to
//! its value *now* (`views_log` records are absolute), so a value touched a thousand times is
//! written once; its place in the order is its last touch, so a later truncate or drop of its
//! view still applies after it.

use super::views_log::{Cells, Record};
use crate::key::ColumnKey;
use std::collections::HashMap;

/// A view-level event or a shape definition.
#[derive(Debug)]
pub(super) enum Event {
    /// The view (by key) was emptied.
    Truncate(u128),
    /// The derived view's link was emptied.
    LinkClear(u128),
    /// The view was freed.
    Drop(u128),
    /// A shape (re)defined: name, table, definition.
    Shape(Vec<u8>, u32, String),
    /// A shape removed.
    Unshape(Vec<u8>),
}

/// The changes since the last flush (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Journal {
    seq: u64,
    counts: HashMap<(u128, ColumnKey), u64>,
    nulls: HashMap<u128, u64>,
    links: HashMap<(u128, ColumnKey, Option<ColumnKey>), u64>,
    events: Vec<(u64, Event)>,
}

/// How a flush reads the current values of what was touched.
pub(super) trait Current {
    /// The count of `value` in the view of `view` now (0: gone, or no such view).
    fn count(&self, view: u128, value: &[u8]) -> u64;
    /// The NULL rows of the view of `view` now.
    fn nulls(&self, view: u128) -> u64;
    /// The pair (y, x) of the link of derived view `parent` now: (rows, x's text).
    fn link(&self, parent: u128, y: &[u8], x: Option<&[u8]>) -> (i64, Cells);
}

impl Journal {
    fn next(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// `value`'s count (`None`: the NULL rows) of view `view` changed.
    pub(super) fn count(&mut self, view: u128, value: Option<&[u8]>) {
        let seq = self.next();
        match value {
            Some(v) => {
                self.counts.insert((view, ColumnKey::from_slice(v)), seq);
            }
            None => {
                self.nulls.insert(view, seq);
            }
        }
    }

    /// The pair (y, x) of the link of derived view `parent` changed.
    pub(super) fn link(&mut self, parent: u128, y: &[u8], x: Option<&[u8]>) {
        let seq = self.next();
        let key = (
            parent,
            ColumnKey::from_slice(y),
            x.map(ColumnKey::from_slice),
        );
        self.links.insert(key, seq);
    }

    /// A view-level event or a shape definition.
    pub(super) fn event(&mut self, e: Event) {
        let seq = self.next();
        self.events.push((seq, e));
    }

    /// The records of everything journaled, in order, values as they are now; the journal
    /// is emptied.
    pub(super) fn drain(&mut self, now: &dyn Current) -> Vec<Record> {
        let mut out: Vec<(u64, Record)> = Vec::new();
        for ((view, value), seq) in self.counts.drain() {
            let count = now.count(view, &value);
            let value = value.to_vec();
            out.push((seq, Record::Count { view, value, count }));
        }
        for (view, seq) in self.nulls.drain() {
            let count = now.nulls(view);
            out.push((seq, Record::Nulls { view, count }));
        }
        for ((parent, y, x), seq) in self.links.drain() {
            let (count, text) = now.link(parent, &y, x.as_deref());
            out.push((
                seq,
                Record::Link {
                    parent,
                    y: y.to_vec(),
                    x: x.map(|x| x.to_vec()),
                    count,
                    text,
                },
            ));
        }
        for (seq, e) in self.events.drain(..) {
            let r = match e {
                Event::Truncate(view) => Record::Truncate { view },
                Event::LinkClear(parent) => Record::LinkClear { parent },
                Event::Drop(view) => Record::Drop { view },
                Event::Shape(name, table, definition) => Record::Shape {
                    name,
                    table,
                    definition,
                },
                Event::Unshape(name) => Record::Unshape { name },
            };
            out.push((seq, r));
        }
        out.sort_by_key(|(seq, _)| *seq);
        out.into_iter().map(|(_, r)| r).collect()
    }
}
