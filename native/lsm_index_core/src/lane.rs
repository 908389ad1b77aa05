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
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// Request bits of [`Lane::requests`]: what the next background job must do beyond its due
/// work.
pub mod request {
    /// Flush the overlay even if not full (a checkpoint: the log before it can go).
    pub const FLUSH: u8 = 1;
    /// Flush and merge everything into one clean segment (`compact`).
    pub const FULL: u8 = 2;
}

/// A lane's state; guarded by [`Lane::state`].
#[derive(Default)]
pub struct LaneState {
    /// Receives writes.
    pub(crate) active: Overlay,
    /// An overlay being flushed: still read until its segment is installed.
    pub(crate) frozen: Option<Arc<Overlay>>,
    /// Sequence number when `frozen` was frozen: every write of this lane below it is in
    /// `frozen` or older structures (what a persisted flush covers).
    pub(crate) frozen_seq: u64,
    /// The installed segments.
    pub(crate) version: Arc<Version>,
    /// Keys with a non-empty set, exact while `live_gen` equals the dead set's generation.
    pub(crate) live: i64,
    /// The dead-set generation `live` was computed under.
    pub(crate) live_gen: u64,
}

/// One lane.
#[derive(Default)]
pub struct Lane {
    /// Its position in the index (its directory name once persisted).
    pub(crate) number: usize,
    /// Overlay, frozen overlay and version.
    pub(crate) state: RwLock<LaneState>,
    /// Held by the job flushing or merging this lane: one compaction per lane at a time.
    pub(crate) compaction: Mutex<()>,
    /// A job for this lane is queued or running (at most one is queued at a time).
    pub(crate) scheduled: AtomicBool,
    /// Pending [`request`] bits (low byte) and the last request's ticket (above it), in one
    /// word so a job takes exactly the tickets whose bits it carries out.
    requests: AtomicU64,
    /// The highest ticket whose request a finished job has carried out.
    pub(crate) served: AtomicU64,
    /// Lookup counters (on the lane's own cache lines, so readers of different lanes do not
    /// contend).
    pub(crate) lookups: crate::index::stats::LookupCounters,
}

impl Lane {
    /// Lane number `number`, empty.
    pub(crate) fn new(number: usize) -> Lane {
        Lane {
            number,
            ..Lane::default()
        }
    }

    /// Asks the next job for `bits` (see [`request`]); returns the request's ticket, served
    /// once `served` reaches it.
    pub(crate) fn request(&self, bits: u8) -> u64 {
        let prev = self
            .requests
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |w| {
                Some((((w >> 8) + 1) << 8) | (w & 0xff) | u64::from(bits))
            })
            .unwrap_or_else(|w| w);
        (prev >> 8) + 1
    }

    /// Takes the pending request bits, with the ticket they cover (for a job).
    pub(crate) fn take_requests(&self) -> (u8, u64) {
        let w = self.requests.fetch_and(!0xff, Ordering::SeqCst);
        ((w & 0xff) as u8, w >> 8)
    }

    /// Whether a request waits for a job.
    pub(crate) fn has_requests(&self) -> bool {
        self.requests.load(Ordering::SeqCst) & 0xff != 0
    }
}

impl LaneState {
    /// Appends `fp`'s current handles (dead ones removed) to `out`; returns whether any
    /// structure had the key (a tombstone counts: it ends the search) and how many segment
    /// probes the prefilter answered.
    #[inline]
    pub(crate) fn resolve(
        &self,
        fp: u64,
        dead: Option<&DeadHandles>,
        out: &mut Vec<u32>,
    ) -> Result<(bool, u32)> {
        let mut rejects = 0;
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
                match s.segment.probe(fp) {
                    Probe::Found(v) => {
                        s.segment.decode(v, out)?;
                        found = Some(s.segment.info().clean_seq);
                        break;
                    }
                    Probe::Filtered => rejects += 1,
                    Probe::Absent => {}
                }
            }
            match found {
                Some(seq) => seq,
                None => return Ok((false, rejects)),
            }
        };
        if let Some(d) = dead {
            d.filter(out, start, seq);
        }
        Ok((true, rejects))
    }

    /// Whether `fp`'s current set (dead handles removed) holds `handle`: the structure
    /// [`LaneState::resolve`] would read answers, by a binary search or a partial decode,
    /// without copying the set.
    #[inline]
    pub(crate) fn contains(
        &self,
        fp: u64,
        handle: u32,
        dead: Option<&DeadHandles>,
    ) -> Result<bool> {
        let in_overlay =
            |e: &crate::overlay::Entry| (e.handles.binary_search(&handle).is_ok(), e.seq);
        let (held, seq) = if let Some(e) = self.active.get(fp) {
            in_overlay(e)
        } else if let Some(e) = self.frozen.as_ref().and_then(|f| f.get(fp)) {
            in_overlay(e)
        } else {
            let mut found = None;
            for s in &self.version.segments {
                if let Probe::Found(v) = s.segment.probe(fp) {
                    found = Some((s.segment.holds(v, handle)?, s.segment.info().clean_seq));
                    break;
                }
            }
            match found {
                Some(f) => f,
                None => return Ok(false),
            }
        };
        Ok(held && !dead.is_some_and(|d| d.is_dead(handle, seq)))
    }

    /// The lowest stamp of any structure here: drops below it are excluded everywhere in
    /// this lane. `None` when the lane is empty.
    pub(crate) fn watermark(&self) -> Option<u64> {
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
    /// the slow path of `len()` while drops are pending.
    pub(crate) fn count_live(&self, dead: &DeadHandles) -> Result<i64> {
        let mut live = 0i64;
        self.for_each_live(dead, |_, _| live += 1)?;
        Ok(live)
    }

    /// Calls `f` with the fingerprint and current set (dead handles removed) of every key
    /// whose set is not empty, each key once. A key counts only in the newest structure holding it: the
    /// fingerprints of every structure but the oldest go into a set (small: overlays and
    /// upper segments) that shadows older copies.
    pub(crate) fn for_each_live(
        &self,
        dead: &DeadHandles,
        mut f: impl FnMut(u64, &[u32]),
    ) -> Result<()> {
        let overlays: Vec<&Overlay> = std::iter::once(&self.active)
            .chain(self.frozen.as_deref())
            .filter(|o| !o.is_empty())
            .collect();
        let segments = &self.version.segments;
        let structures = overlays.len() + segments.len();
        let mut newer = ahash::AHashSet::new();
        let mut buf = Vec::new();
        // Visits `fp` unless a newer structure has it; remembers it for older ones.
        let mut visit = |k: usize, fp: u64, buf: &mut Vec<u32>, seq: u64| {
            if !newer.is_empty() && newer.contains(&fp) {
                return;
            }
            if k + 1 < structures {
                newer.insert(fp);
            }
            dead.filter(buf, 0, seq);
            if !buf.is_empty() {
                f(fp, buf);
            }
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
        Ok(())
    }
}

/// The lanes of an index, allocated on its first write: an index that is never written costs
/// a few words instead of its lanes (64 by default, ~250 bytes each).
pub struct Lanes {
    count: usize,
    lanes: OnceLock<Box<[Lane]>>,
}

impl Lanes {
    /// `count` lanes, not allocated yet.
    pub(crate) fn new(count: usize) -> Lanes {
        Lanes {
            count,
            lanes: OnceLock::new(),
        }
    }

    /// How many lanes the index has (allocated or not).
    pub(crate) fn len(&self) -> usize {
        self.count
    }

    /// The allocated lanes: none before the first write (nothing to read, flush or compact).
    pub(crate) fn live(&self) -> &[Lane] {
        self.lanes.get().map_or(&[], |l| l)
    }

    /// Lane `n`, if the lanes are allocated.
    pub(crate) fn get(&self, n: usize) -> Option<&Lane> {
        self.live().get(n)
    }

    /// Every lane, allocated now if they were not (a write needs its lane).
    pub(crate) fn writable(&self) -> &[Lane] {
        self.lanes
            .get_or_init(|| (0..self.count).map(Lane::new).collect())
    }

    /// [`Lanes::writable`] for an index not shared yet (recovery fills its lanes in place).
    pub(crate) fn writable_mut(&mut self) -> &mut [Lane] {
        self.writable();
        self.lanes.get_mut().map_or(&mut [], |l| l)
    }
}
