//! Batched lookups: a chunk of keys is resolved in stages (overlays, then per segment depth
//! directory → record, then the handle pool), each prefetching what the next reads, so that
//! the cache misses of different keys overlap instead of being paid one after another.

use crate::dead::DeadHandles;
use crate::error::Result;
use crate::lane::LaneState;
use crate::overlay::Entry;
use crate::segment::Slots;
use crate::version::SegmentRef;
use smallvec::SmallVec;

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

    /// Ends the next key's handle list with what `fill` appends (a single lookup's).
    pub(crate) fn push_from(
        &mut self,
        fill: impl FnOnce(&mut Vec<u32>) -> Result<()>,
    ) -> Result<()> {
        fill(&mut self.handles)?;
        self.ends.push(self.handles.len());
        Ok(())
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
#[derive(Clone, Copy)]
enum Found<'a> {
    Nowhere,
    Overlay(&'a Entry),
    Segment(&'a SegmentRef, u32),
}

/// A key still looked for at the current segment depth: its index in the chunk, the
/// segment at that depth of its lane, and the records its fingerprint falls among.
struct Probe<'a> {
    key: usize,
    segment: &'a SegmentRef,
    slots: Slots,
}

/// Resolves `keys` — (fingerprint, index into `lanes`) — appending each key's handles to
/// `out` in order, with the same answers as `LaneState::resolve` key by key.
///
/// Each stage is a pass over the keys still unresolved that first asks for the cache lines
/// the next stage reads (`crate::prefetch`), so a chunk's misses overlap: overlays, then
/// per segment depth (newest first) the quotient directory and the first record (the
/// prefilter is skipped: for a batch it costs three lines to save two), then the handle
/// pool of the keys found.
pub(crate) fn resolve_chunk<S: std::ops::Deref<Target = LaneState>>(
    lanes: &[S],
    keys: &[(u64, usize)],
    dead: Option<&DeadHandles>,
    out: &mut Batch,
) -> Result<()> {
    let mut found: SmallVec<[Found<'_>; 16]> = SmallVec::with_capacity(keys.len());
    let mut pending: SmallVec<[usize; 16]> = SmallVec::with_capacity(keys.len());
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
    let mut probes: SmallVec<[Probe<'_>; 16]> = SmallVec::with_capacity(pending.len());
    let mut depth = 0;
    while !pending.is_empty() {
        probes.clear();
        for &i in &pending {
            let (fp, lane) = keys[i];
            if let Some(segment) = lanes[lane].version.segments.get(depth) {
                segment.segment.prefetch_slots(fp);
                probes.push(Probe {
                    key: i,
                    segment,
                    slots: Slots::EMPTY,
                });
            }
        }
        for p in probes.iter_mut() {
            let fp = keys[p.key].0;
            p.slots = p.segment.segment.slots_of(fp);
            p.segment.segment.prefetch_value(p.slots, fp);
        }
        pending.clear();
        for p in &probes {
            match p.segment.segment.value_in(p.slots, keys[p.key].0) {
                Some(v) => {
                    p.segment.segment.prefetch_decode(v);
                    found[p.key] = Found::Segment(p.segment, v);
                }
                None => pending.push(p.key),
            }
        }
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
    Ok(())
}
