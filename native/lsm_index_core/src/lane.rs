//! A lane: one overlay plus an immutable version of segments, behind one lock.
//!
//! Keys are spread over lanes by jump hash so that locks, overlays and compactions are
//! independent; a lookup touches exactly one lane.

use crate::dead::DeadHandles;
use crate::error::Result;
use crate::overlay::Overlay;
use crate::segment::Probe;
use crate::version::Version;
use parking_lot::{Mutex, RwLock};
use std::sync::Arc;

/// A lane's state; guarded by [`Lane::state`].
#[derive(Default)]
pub struct LaneState {
    /// Receives writes.
    pub active: Overlay,
    /// An overlay being flushed: still read until its segment is installed.
    pub frozen: Option<Arc<Overlay>>,
    /// Sequence number when `frozen` was frozen: every write of this lane below it is in
    /// `frozen` or older structures (what a persisted flush covers).
    pub frozen_seq: u64,
    /// The installed segments.
    pub version: Arc<Version>,
    /// Keys with a non-empty set, exact while `live_gen` equals the dead set's generation.
    pub live: i64,
    /// The dead-set generation `live` was computed under.
    pub live_gen: u64,
}

/// One lane.
#[derive(Default)]
pub struct Lane {
    /// Its position in the index (its directory name once persisted).
    pub number: usize,
    /// Overlay, frozen overlay and version.
    pub state: RwLock<LaneState>,
    /// Held by whoever flushes or merges this lane: one compaction per lane at a time.
    pub compaction: Mutex<()>,
}

impl LaneState {
    /// Appends `fp`'s current handles (dead ones removed) to `out`; returns whether any
    /// structure had the key (a tombstone counts: it ends the search).
    #[inline]
    pub fn resolve(&self, fp: u64, dead: Option<&DeadHandles>, out: &mut Vec<u32>) -> Result<bool> {
        let start = out.len();
        let seq = if let Some(e) = self.active.get(fp) {
            out.extend_from_slice(&e.handles);
            e.seq
        } else if let Some(e) = self.frozen.as_ref().and_then(|f| f.get(fp)) {
            out.extend_from_slice(&e.handles);
            e.seq
        } else {
            let mut found = None;
            for s in &self.version.segments {
                if let Probe::Found(v) = s.segment.probe(fp) {
                    s.segment.decode(v, out)?;
                    found = Some(s.segment.info().clean_seq);
                    break;
                }
            }
            match found {
                Some(seq) => seq,
                None => return Ok(false),
            }
        };
        if let Some(d) = dead {
            d.filter(out, start, seq);
        }
        Ok(true)
    }

    /// The lowest stamp of any structure here: drops below it are excluded everywhere in
    /// this lane. `None` when the lane is empty.
    pub fn watermark(&self) -> Option<u64> {
        [
            self.active.min_seq(),
            self.frozen.as_ref().and_then(|f| f.min_seq()),
            self.version.min_clean_seq(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Counts keys with a non-empty set (dead handles removed) by walking every structure;
    /// the slow path of `len()` while drops are pending. A key counts only in the newest
    /// structure holding it: the fingerprints of every structure but the oldest go into a set
    /// (small: overlays and upper segments) that shadows older copies.
    pub fn count_live(&self, dead: &DeadHandles) -> Result<i64> {
        let overlays: Vec<&Overlay> = std::iter::once(&self.active)
            .chain(self.frozen.as_deref())
            .filter(|o| !o.is_empty())
            .collect();
        let segments = &self.version.segments;
        let structures = overlays.len() + segments.len();
        let mut newer = ahash::AHashSet::new();
        let mut live = 0i64;
        let mut buf = Vec::new();
        // Counts `fp` unless a newer structure has it; remembers it for older ones.
        let mut visit = |k: usize, fp: u64, buf: &mut Vec<u32>, seq: u64| {
            if !newer.is_empty() && newer.contains(&fp) {
                return;
            }
            if k + 1 < structures {
                newer.insert(fp);
            }
            dead.filter(buf, 0, seq);
            live += i64::from(!buf.is_empty());
        };
        for (k, o) in overlays.iter().enumerate() {
            for (fp, e) in o.iter() {
                buf.clear();
                buf.extend_from_slice(&e.handles);
                visit(k, fp, &mut buf, e.seq);
            }
        }
        for (j, s) in segments.iter().enumerate() {
            let seg = &s.segment;
            for (fp, v) in seg.entries() {
                buf.clear();
                seg.decode(v, &mut buf)?;
                visit(overlays.len() + j, fp, &mut buf, seg.info().clean_seq);
            }
        }
        Ok(live)
    }
}
