//! The range index: interval stabbing over closed `u64` key intervals, each filed under a
//! group — "which groups' intervals hold this key". Keys come from
//! [`crate::predicate::order_key`]; the index promises no false negatives, the residual
//! decides exactness (strict bounds, text beyond 8 bytes, numeric beyond a float8).
//!
//! ```text
//! insert ─▶ overlay (≤ 256 entries, unsorted, scanned linearly)
//!              │ full: sorted, merged into
//!              ▼
//!           L0 (a `Level`, ≤ max(4096, √(256·|L1|)) entries)
//!              │ over its limit: merged into
//!              ▼
//!           L1 (a `Level`: the bulk)
//! stab(v) = overlay scan ∪ L0.stab(v) ∪ L1.stab(v)          (see `level` for the walk)
//! remove  = the overlay's entry, else a dead bit in L0 or L1; a level with more dead
//!           entries than half its live ones is rebuilt without them
//! ```
//!
//! Entries form a multiset of `(lo, hi, group)`: one group may file several intervals (an
//! OR of ranges), the same triple may be inserted twice and is then removed once per
//! `remove`; `stab` pushes a group once per live entry holding the key, so a caller that
//! wants a set sorts and dedups. An empty interval (`lo > hi`, e.g. `a > 5 AND a < 3`) is
//! stored and never stabbed.
//!
//! L0's limit balances the two merge costs per insert (`|L0| / 256` for the overlay's
//! merges, `|L1| / |L0|` for L0's): at a million entries, ~16k. Persisting: [`Ranges::parts`]
//! compacts into one level and lends its three arrays; [`Ranges::from_parts`] validates
//! them back.

mod build;
mod level;

use crate::{Error, FileKind, Result};
use level::{Entry, Level};

/// Entries the overlay holds before it is merged into L0.
const OVERLAY: usize = 256;

/// Least number of entries L0 may hold before it is merged into L1.
const L0_MIN: usize = 4096;

/// Interval stabbing over `(lo, hi, group)` entries (see the module doc).
#[derive(Debug)]
pub struct Ranges {
    overlay: Vec<Entry>,
    l0: Level,
    l1: Level,
    overlay_limit: usize,
    l0_min: usize,
}

impl Default for Ranges {
    fn default() -> Ranges {
        Ranges::new()
    }
}

impl Ranges {
    /// An empty index.
    pub fn new() -> Ranges {
        Ranges::with_limits(OVERLAY, L0_MIN)
    }

    /// An empty index with other merge thresholds (the tests make merges frequent).
    fn with_limits(overlay_limit: usize, l0_min: usize) -> Ranges {
        Ranges {
            overlay: Vec::new(),
            l0: Level::default(),
            l1: Level::default(),
            overlay_limit: overlay_limit.max(1),
            l0_min,
        }
    }

    /// An index of `entries` (`(lo, hi, group)` each), built in one sort.
    pub fn from_entries(mut entries: Vec<(u64, u64, u32)>) -> Ranges {
        let mut r = Ranges::new();
        r.l1 = build::build(&mut entries);
        r
    }

    /// An index of one level's arrays, as [`Ranges::parts`] lent them: one length, in
    /// `(lo, hi, group)` order; anything else is [`Error::Corrupt`] of `file` (`what` names
    /// it).
    pub fn from_parts(
        lo: Vec<u64>,
        hi: Vec<u64>,
        group: Vec<u32>,
        file: FileKind,
        what: &str,
    ) -> Result<Ranges> {
        let corrupt = |detail: String| Error::Corrupt {
            file,
            what: what.to_string(),
            detail,
        };
        if lo.len() != hi.len() || hi.len() != group.len() {
            return Err(corrupt(format!(
                "range arrays of unequal lengths: lo {}, hi {}, group {}",
                lo.len(),
                hi.len(),
                group.len()
            )));
        }
        for i in 1..lo.len() {
            if (lo[i - 1], hi[i - 1], group[i - 1]) > (lo[i], hi[i], group[i]) {
                return Err(corrupt(format!("range entries out of order at {i}")));
            }
        }
        let mut r = Ranges::new();
        r.l1 = Level::from_sorted(lo, hi, group);
        Ok(r)
    }

    /// Live entries.
    pub fn len(&self) -> usize {
        self.overlay.len() + self.l0.live() + self.l1.live()
    }

    /// Whether it holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes held on the heap (capacities: what the allocator was asked for).
    pub fn heap_bytes(&self) -> usize {
        self.overlay.capacity() * std::mem::size_of::<Entry>()
            + self.l0.heap_bytes()
            + self.l1.heap_bytes()
    }

    /// Files the closed interval `[lo, hi]` under `group` (empty when `lo > hi`).
    pub fn insert(&mut self, lo: u64, hi: u64, group: u32) {
        self.overlay.push((lo, hi, group));
        if self.overlay.len() >= self.overlay_limit {
            self.flush_overlay();
        }
    }

    /// Removes one entry equal to `(lo, hi, group)`; `false` when there is none.
    pub fn remove(&mut self, lo: u64, hi: u64, group: u32) -> bool {
        let entry = (lo, hi, group);
        if let Some(i) = self.overlay.iter().position(|e| *e == entry) {
            self.overlay.swap_remove(i);
            return true;
        }
        for level in [&mut self.l0, &mut self.l1] {
            if level.kill(entry) {
                if level.dead() * 2 > level.live() {
                    *level = build::merged(level, &Level::default());
                }
                return true;
            }
        }
        false
    }

    /// Pushes onto `out` the group of every live entry whose interval holds `v`, once per
    /// entry, in no particular order.
    pub fn stab(&self, v: u64, out: &mut Vec<u32>) {
        for &(lo, hi, group) in &self.overlay {
            if lo <= v && v <= hi {
                out.push(group);
            }
        }
        self.l0.stab(v, out);
        self.l1.stab(v, out);
    }

    /// Merges everything into one level without dead entries (no-op when it is so already).
    pub fn compact(&mut self) {
        if self.overlay.is_empty() && self.l0.stored() == 0 && self.l1.dead() == 0 {
            return;
        }
        let recent = build::merged(&self.l0, &build::build(&mut self.overlay));
        self.overlay.clear();
        self.l1 = build::merged(&self.l1, &recent);
        self.l0 = Level::default();
    }

    /// The index as one level's arrays `(lo, hi, group)`, in triple order, after
    /// [`Ranges::compact`]: what [`Ranges::from_parts`] reads back.
    pub fn parts(&mut self) -> (&[u64], &[u64], &[u32]) {
        self.compact();
        self.l1.arrays()
    }

    /// Merges the overlay into L0 now (`O(|L0|)`): a writer's end of a batch, so that stabs
    /// stop scanning up to 256 unsorted entries (~1 ns each).
    pub fn flush(&mut self) {
        if !self.overlay.is_empty() {
            self.flush_overlay();
        }
    }

    /// The overlay, sorted, into L0; L0 into L1 once over its limit.
    fn flush_overlay(&mut self) {
        let batch = build::build(&mut self.overlay);
        self.overlay.clear();
        self.l0 = build::merged(&self.l0, &batch);
        let limit = self
            .l0_min
            .max((self.overlay_limit * self.l1.live()).isqrt());
        if self.l0.stored() > limit {
            self.l1 = build::merged(&self.l1, &self.l0);
            self.l0 = Level::default();
        }
    }
}

#[cfg(test)]
mod tests;
