//! One immutable level of the range index: its entries sorted in three flat arrays, two
//! trees of 16-way nodes over them (least `lo`, greatest `hi`), and a bitset of the entries
//! removed since it was built. `build` makes levels; this room reads and kills entries.
//!
//! ```text
//! lo     [u64; n]   ascending (ties by hi, then group): the order of the triples
//! hi     [u64; n]
//! group  [u32; n]
//! fence  [0]   lo of the first entry of each block of FAN entries          (n/16 nodes)
//!        [k+1] fence of the first of each FAN nodes of [k]        (... ≤ FAN at the top)
//! tree   [0]   max hi of each block;  [k+1] max of each FAN nodes of [k]   (same shape)
//! dead   one bit per entry, allocated at the first removal
//! ```
//!
//! `stab(v)`: `p` = the entries with `lo ≤ v`, found down the fences (a static B-tree: a
//! branch-free count of ≤ 16 keys per level, the top levels cache-resident); of those, the ones
//! holding `v` are those with `hi ≥ v`. The walk down `tree` enters a node covering
//! `[0, p)` only when its max `hi` is `≥ v`, so every entered node whose entries all lie
//! below `p` holds an entry that holds `v` (the one with that max): the walk is
//! `O(FAN · depth · (k + d + 1))` for `k` entries found and `d` dead ones among them,
//! whatever the mix of widths.

use super::build;
use std::cmp::Ordering;

/// An interval entry: closed key bounds and its group (`lo > hi`: empty, never stabbed).
pub(super) type Entry = (u64, u64, u32);

/// Entries per block, and children per node of both trees.
pub(super) const FAN: usize = 16;

/// `log2(FAN)`: a node of tree level `k` covers `FAN^(k+1)` entries.
const FAN_BITS: u32 = 4;

/// One sorted, immutable run of entries (see the module doc).
#[derive(Debug, Default)]
pub(super) struct Level {
    lo: Vec<u64>,
    hi: Vec<u64>,
    group: Vec<u32>,
    fence: Vec<Vec<u64>>,
    tree: Vec<Vec<u64>>,
    dead: Vec<u64>,
    dead_count: usize,
}

impl Level {
    /// A level of arrays of one length already in triple order (the caller checked both).
    pub fn from_sorted(lo: Vec<u64>, hi: Vec<u64>, group: Vec<u32>) -> Level {
        debug_assert!(lo.len() == hi.len() && hi.len() == group.len());
        let fence = build::tree(&lo, |node| node.first().copied().unwrap_or(0));
        let tree = build::tree(&hi, |node| node.iter().copied().max().unwrap_or(0));
        Level {
            lo,
            hi,
            group,
            fence,
            tree,
            dead: Vec::new(),
            dead_count: 0,
        }
    }

    /// Entries stored, dead ones included.
    pub fn stored(&self) -> usize {
        self.lo.len()
    }

    /// Entries not removed.
    pub fn live(&self) -> usize {
        self.lo.len() - self.dead_count
    }

    /// Entries removed since the level was built.
    pub fn dead(&self) -> usize {
        self.dead_count
    }

    /// The three arrays (dead entries included: export a level without any).
    pub fn arrays(&self) -> (&[u64], &[u64], &[u32]) {
        (&self.lo, &self.hi, &self.group)
    }

    /// Bytes held on the heap (capacities, not lengths).
    pub fn heap_bytes(&self) -> usize {
        let nodes: usize = (self.tree.iter().chain(&self.fence))
            .map(|t| t.capacity() * 8)
            .sum();
        self.lo.capacity() * 8
            + self.hi.capacity() * 8
            + self.group.capacity() * 4
            + (self.tree.capacity() + self.fence.capacity()) * std::mem::size_of::<Vec<u64>>()
            + nodes
            + self.dead.capacity() * 8
    }

    /// Pushes the group of every live entry holding `v` (`lo ≤ v ≤ hi`) onto `out`.
    pub fn stab(&self, v: u64, out: &mut Vec<u32>) {
        let p = self.count_le(v);
        if p == 0 {
            return;
        }
        let top = self.tree.len() - 1;
        for node in 0..p.div_ceil(span(top)) {
            self.descend(top, node, p, v, out);
        }
    }

    /// How many entries have `lo ≤ v`: down the fences, counting ≤ FAN keys per level.
    pub fn count_le(&self, v: u64) -> usize {
        let (mut first, mut last) = (0, self.fence.last().map_or(0, Vec::len));
        for level in (0..self.fence.len()).rev() {
            let below = count_le(&self.fence[level][first..last], v);
            if below == 0 {
                // every node from `first` on starts above `v`; all before it is at most `v`
                return first * span(level);
            }
            let node = first + below - 1;
            let children = if level == 0 {
                self.lo.len()
            } else {
                self.fence[level - 1].len()
            };
            (first, last) = (node * FAN, (node * FAN + FAN).min(children));
        }
        first + count_le(&self.lo[first..last], v)
    }

    /// The walk below `node` of tree level `level`, over entries `[0, p)`.
    fn descend(&self, level: usize, node: usize, p: usize, v: u64, out: &mut Vec<u32>) {
        if self.tree[level][node] < v {
            return;
        }
        if level == 0 {
            let start = node * FAN;
            for i in start..(start + FAN).min(p) {
                if self.hi[i] >= v && !self.is_dead(i) {
                    out.push(self.group[i]);
                }
            }
            return;
        }
        let first = node * FAN;
        let last = (first + FAN).min(p.div_ceil(span(level - 1)));
        for child in first..last {
            self.descend(level - 1, child, p, v, out);
        }
    }

    /// Marks one live entry equal to `entry` dead; `false` when there is none.
    pub fn kill(&mut self, entry: Entry) -> bool {
        let mut i = self.lower_bound(entry);
        while i < self.lo.len() && (self.lo[i], self.hi[i], self.group[i]) == entry {
            if !self.is_dead(i) {
                if self.dead.is_empty() {
                    self.dead = vec![0; self.lo.len().div_ceil(64)];
                }
                self.dead[i / 64] |= 1 << (i % 64);
                self.dead_count += 1;
                return true;
            }
            i += 1;
        }
        false
    }

    /// The first position whose triple is not below `entry`.
    fn lower_bound(&self, entry: Entry) -> usize {
        let (mut lo, mut hi) = (0, self.lo.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if (self.lo[mid], self.hi[mid], self.group[mid]).cmp(&entry) == Ordering::Less {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// Whether entry `i` was removed.
    pub fn is_dead(&self, i: usize) -> bool {
        self.dead_count != 0 && self.dead[i / 64] & (1 << (i % 64)) != 0
    }
}

/// How many of the (sorted, ≤ FAN) `xs` are at most `v`: a branch-free count.
fn count_le(xs: &[u64], v: u64) -> usize {
    xs.iter().map(|&x| usize::from(x <= v)).sum()
}

/// Entries covered by one node of tree level `level`.
fn span(level: usize) -> usize {
    1 << (FAN_BITS as usize * (level + 1))
}
