//! Batched lookups: a chunk of keys is resolved in stages (overlays, then per segment depth
//! prefilter → MPH → record) so that the cache misses of different keys overlap instead of
//! being paid one after another.

use crate::dead::DeadHandles;
use crate::error::Result;
use crate::lane::LaneState;
use crate::overlay::Entry;
use crate::segment::Slots;
use crate::version::SegmentRef;

/// Handles of many keys from one [`crate::Index::lookup_many`] call, stored flat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    handles: Vec<u32>,
    ends: Vec<usize>,
}

impl Batch {
    /// Ends the next key's (empty) handle list: a key found nowhere.
    pub(crate) fn push_absent(&mut self) {
        self.ends.push(self.handles.len());
    }

    /// An empty batch with room for `keys` keys.
    pub(crate) fn with_capacity(keys: usize) -> Self {
        Batch {
            handles: Vec::with_capacity(keys),
            ends: Vec::with_capacity(keys),
        }
    }

    /// Number of keys looked up.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no key was looked up.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The sorted handles of the `i`-th key.
    pub fn get(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.handles[start..self.ends[i]]
    }

    /// Each key's handles, in key order.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> {
        (0..self.len()).map(|i| self.get(i))
    }
}

/// Where a key's answer was found.
enum Found<'a> {
    Nowhere,
    Overlay(&'a Entry),
    Segment(&'a SegmentRef, u32),
}

/// Resolves `keys` — (fingerprint, index into `lanes`) — appending each key's handles to
/// `out` in order. Same answers as `LaneState::resolve` key by key. Returns the number of
/// segment probes the prefilter answered.
pub(crate) fn resolve_chunk<S: std::ops::Deref<Target = LaneState>>(
    lanes: &[S],
    keys: &[(u64, usize)],
    dead: Option<&DeadHandles>,
    out: &mut Batch,
) -> Result<u64> {
    let mut rejects = 0;
    let mut found: Vec<Found<'_>> = Vec::with_capacity(keys.len());
    let mut pending: Vec<usize> = Vec::with_capacity(keys.len());
    for (i, &(fp, lane)) in keys.iter().enumerate() {
        let st = &*lanes[lane];
        match st.active.get(fp).or_else(|| st.frozen.as_ref()?.get(fp)) {
            Some(e) => found.push(Found::Overlay(e)),
            None => {
                found.push(Found::Nowhere);
                pending.push(i);
            }
        }
    }
    let segment = |i: usize, depth: usize| -> Option<&SegmentRef> {
        let (_, lane) = keys[i];
        lanes[lane].version.segments.get(depth).map(|s| &**s)
    };
    let mut next = Vec::with_capacity(pending.len());
    let mut admitted: Vec<(usize, Slots)> = Vec::with_capacity(pending.len());
    let mut depth = 0;
    while !pending.is_empty() {
        next.clear();
        admitted.clear();
        for &i in &pending {
            if let Some(s) = segment(i, depth) {
                if s.segment.admits(keys[i].0) {
                    admitted.push((i, Slots::EMPTY));
                } else {
                    rejects += 1;
                    next.push(i);
                }
            }
        }
        for (i, slot) in admitted.iter_mut() {
            if let Some(s) = segment(*i, depth) {
                *slot = s.segment.slots_of(keys[*i].0);
            }
        }
        for &(i, slot) in &admitted {
            let Some(s) = segment(i, depth) else { continue };
            match s.segment.value_in(slot, keys[i].0) {
                Some(v) => found[i] = Found::Segment(s, v),
                None => next.push(i),
            }
        }
        std::mem::swap(&mut pending, &mut next);
        depth += 1;
    }
    for f in found {
        let start = out.handles.len();
        let seq = match f {
            Found::Nowhere => None,
            Found::Overlay(e) => {
                out.handles.extend_from_slice(&e.handles);
                Some(e.seq)
            }
            Found::Segment(s, v) => {
                s.segment.decode(v, &mut out.handles)?;
                Some(s.segment.info().clean_seq)
            }
        };
        if let (Some(d), Some(seq)) = (dead, seq) {
            d.filter(&mut out.handles, start, seq);
        }
        out.ends.push(out.handles.len());
    }
    Ok(rejects)
}
