//! The read path: one key or a batch of keys to their handle sets, one (key, handle)
//! membership, a handle's key fingerprints, the live key count, and (with
//! `Config::count_handles`) the per-handle key counts.

use super::Index;
use crate::batch::{self, Batch};
use crate::error::Result;
use crate::hash::jump_hash_many;
use parking_lot::RwLockUpgradableReadGuard;
use smallvec::{smallvec, SmallVec};
use std::sync::atomic::Ordering;

/// Keys per `lookup_many` chunk: bounds how long a batch holds its lanes' read locks.
const LOOKUP_CHUNK: usize = 256;
/// Keys a batch handles without allocating its working buffers.
const SMALL: usize = 16;

impl Index {
    /// `key`'s handles, sorted; empty when absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        self.lookup_into(key, &mut out)?;
        Ok(out)
    }

    /// Appends `key`'s sorted handles to `out` (no allocation when `out` has room).
    #[inline]
    pub fn lookup_into(&self, key: &[u8], out: &mut Vec<u32>) -> Result<()> {
        self.check_open()?;
        let (fp, n) = self.locate(key);
        // no lane yet: nothing was ever written
        let Some(lane) = self.lanes.get(n) else {
            return Ok(());
        };
        let start = out.len();
        let st = lane.state.read();
        let (_, rejects) = if self.dead_pending.load(Ordering::Acquire) == 0 {
            st.resolve(fp, None, out)?
        } else {
            st.resolve(fp, Some(&self.dead.read_recursive()), out)?
        };
        drop(st);
        lane.lookups.record(out.len() > start, rejects);
        Ok(())
    }

    /// Whether `key`'s set holds `handle`: the lookup path, answered by a binary search in
    /// the set found (or a partial decode of a segment's list) without copying it, so a key
    /// whose set holds thousands of handles costs no allocation. Not counted in the lookup
    /// statistics.
    #[inline]
    pub fn contains(&self, key: &[u8], handle: u32) -> Result<bool> {
        self.check_open()?;
        let (fp, n) = self.locate(key);
        let Some(lane) = self.lanes.get(n) else {
            return Ok(false);
        };
        let st = lane.state.read();
        if self.dead_pending.load(Ordering::Acquire) == 0 {
            st.contains(fp, handle, None)
        } else {
            st.contains(fp, handle, Some(&self.dead.read_recursive()))
        }
    }

    /// The 64-bit fingerprint this index files `key` under (keyed SipHash-1-3 with the
    /// index's secret: stable across reopen when the secret is). What
    /// [`Index::fingerprints_of`] returns.
    pub fn fingerprint(&self, key: &[u8]) -> u64 {
        self.hasher.fingerprint(key)
    }

    /// The fingerprints of every key whose set holds `handle`, ascending: a walk over every
    /// lane's live keys (O(keys), each lane read-locked in turn), for rare bulk work such as
    /// comparing a handle's keys with another list. Keys are not kept, only fingerprints.
    pub fn fingerprints_of(&self, handle: u32) -> Result<Vec<u64>> {
        self.check_open()?;
        let mut out = Vec::new();
        for lane in self.lanes.live() {
            let st = lane.state.read();
            let dead = self.dead.read_recursive();
            st.for_each_live(&dead, |fp, set| {
                if set.binary_search(&handle).is_ok() {
                    out.push(fp);
                }
            })?;
        }
        out.sort_unstable();
        Ok(out)
    }

    /// The handles of every key in `keys`, in one call (one WAL transaction = one batch).
    ///
    /// Per chunk of keys, the chunk's lanes are read-locked together (in ascending order, so
    /// concurrent batches cannot deadlock) and the keys are resolved in stages (see the
    /// `batch` module) so that their cache misses overlap. Batches do not consult the
    /// prefilters (`Stats::prefilter_rejects` counts single lookups only).
    pub fn lookup_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Batch> {
        self.check_open()?;
        let mut batch = Batch::with_capacity(keys.len());
        if self.lanes.live().is_empty() {
            // nothing was ever written: every key is absent
            for _ in keys {
                batch.push_absent();
            }
            return Ok(batch);
        }
        // a transaction of a single row: the single lookup (no chunk to stage)
        if let [key] = keys {
            batch.push_from(|out| self.lookup_into(key.as_ref(), out))?;
            return Ok(batch);
        }
        // inline up to SMALL keys, so a small transaction allocates only its answer
        let mut fps: SmallVec<[u64; SMALL]> = SmallVec::new();
        let mut key_lanes: SmallVec<[u32; SMALL]> = SmallVec::new();
        let mut located: SmallVec<[(u64, usize); SMALL]> = SmallVec::new();
        let mut guards: SmallVec<[_; SMALL]> = SmallVec::new();
        // the chunk's lanes as a bitset: locked in ascending order without sorting, a key's
        // guard found by the rank of its lane's bit
        let mut lanes: SmallVec<[u64; 4]> = smallvec![0; self.lanes.len().div_ceil(64)];
        let mut below: SmallVec<[usize; 4]> = smallvec![0; lanes.len()];
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            fps.clear();
            fps.extend(chunk.iter().map(|k| self.hasher.fingerprint(k.as_ref())));
            key_lanes.clear();
            jump_hash_many(&fps, self.config.lanes, &mut key_lanes);
            lanes.iter_mut().for_each(|w| *w = 0);
            for &lane in &key_lanes {
                lanes[lane as usize / 64] |= 1 << (lane % 64);
            }
            for (w, &word) in lanes.iter().enumerate() {
                below[w] = guards.len();
                let mut bits = word;
                while bits != 0 {
                    let lane = w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    guards.push(self.lanes.live()[lane].state.read());
                }
            }
            located.clear();
            located.extend(fps.iter().zip(&key_lanes).map(|(&fp, &lane)| {
                let (w, bit) = (lane as usize / 64, lane % 64);
                let rank = (lanes[w] & ((1u64 << bit) - 1)).count_ones() as usize;
                (fp, below[w] + rank)
            }));
            let dead = (self.dead_pending.load(Ordering::Acquire) != 0)
                .then(|| self.dead.read_recursive());
            batch::resolve_chunk(&guards, &located, dead.as_deref(), &mut batch)?;
            drop(dead);
            guards.clear();
        }
        let hits = batch.iter().filter(|h| !h.is_empty()).count() as u64;
        // batches skip the prefilter: no rejects to count
        self.batch_lookups
            .record_many(hits, batch.len() as u64 - hits, 0);
        Ok(batch)
    }

    /// Keys with a non-empty set. O(lanes) normally; after a `drop_handle` it recounts the
    /// lanes not yet recounted since (every key), until compaction purges the drop.
    pub fn len(&self) -> Result<u64> {
        self.check_open()?;
        let mut total = 0i64;
        for lane in self.lanes.live() {
            let st = lane.state.upgradable_read();
            let dead = self.dead.read_recursive();
            if st.live_gen == dead.generation() {
                total += st.live;
                continue;
            }
            let live = st.count_live(&dead)?;
            let generation = dead.generation();
            drop(dead);
            let mut st = RwLockUpgradableReadGuard::upgrade(st);
            st.live = live;
            st.live_gen = generation;
            total += live;
        }
        Ok(total.max(0) as u64)
    }

    /// Whether no key has a non-empty set.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// How many keys' sets hold `handle`, in O(1); `Error::NotCounting` without
    /// `Config::count_handles`.
    pub fn handle_count(&self, handle: u32) -> Result<u64> {
        Ok(self.counts("handle_count")?.lock().get(handle))
    }

    /// How many distinct handles the keys' sets hold, in O(1); `Error::NotCounting` without
    /// `Config::count_handles`.
    pub fn distinct_handles(&self) -> Result<u64> {
        Ok(self.counts("distinct_handles")?.lock().len())
    }

    /// Every handle some key's set holds, ascending (O(handles + their pages));
    /// `Error::NotCounting` without `Config::count_handles`.
    pub fn handles(&self) -> Result<Vec<u32>> {
        Ok(self.counts("handles")?.lock().handles())
    }
}
