//! Making levels of the range index: one from unsorted entries (a sort), one from two
//! levels (a merge that drops dead entries), and the 16-way node trees over a level's arrays.
//!
//! A merge copies the larger side in runs: for each entry of the smaller side a galloping
//! search from the cursor finds where it goes, and the run before it is copied with
//! `extend_from_slice` — `O(m · log(n/m))` compares and `n + m` entries copied, the copy
//! a `memcpy` (merging 16k entries into 1M is mostly one 20 MB copy).

use super::level::{Entry, Level, FAN};

/// Three parallel arrays of entries, in triple order.
type Arrays<'a> = (&'a [u64], &'a [u64], &'a [u32]);

/// A level of `entries`, which it sorts in place.
pub(super) fn build(entries: &mut [Entry]) -> Level {
    entries.sort_unstable();
    let mut lo = Vec::with_capacity(entries.len());
    let mut hi = Vec::with_capacity(entries.len());
    let mut group = Vec::with_capacity(entries.len());
    for &(l, h, g) in entries.iter() {
        lo.push(l);
        hi.push(h);
        group.push(g);
    }
    Level::from_sorted(lo, hi, group)
}

/// The live entries of `a` and `b` in one level (dead ones dropped).
pub(super) fn merged(a: &Level, b: &Level) -> Level {
    let (a_live, b_live) = (live(a), live(b));
    let (a, b) = (arrays(&a_live, a), arrays(&b_live, b));
    let (big, small) = if a.0.len() >= b.0.len() {
        (a, b)
    } else {
        (b, a)
    };
    let n = big.0.len() + small.0.len();
    let (mut lo, mut hi, mut group) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let mut from = 0;
    for i in 0..small.0.len() {
        let e = (small.0[i], small.1[i], small.2[i]);
        let to = gallop(big, from, e);
        lo.extend_from_slice(&big.0[from..to]);
        hi.extend_from_slice(&big.1[from..to]);
        group.extend_from_slice(&big.2[from..to]);
        lo.push(e.0);
        hi.push(e.1);
        group.push(e.2);
        from = to;
    }
    lo.extend_from_slice(&big.0[from..]);
    hi.extend_from_slice(&big.1[from..]);
    group.extend_from_slice(&big.2[from..]);
    Level::from_sorted(lo, hi, group)
}

/// A 16-way tree over `xs`: `node` of each block of [`FAN`] values, then of each [`FAN`]
/// nodes, up to a level of at most [`FAN`] nodes (one empty level for no values).
pub(super) fn tree(xs: &[u64], node: impl Fn(&[u64]) -> u64) -> Vec<Vec<u64>> {
    let level = |xs: &[u64]| -> Vec<u64> { xs.chunks(FAN).map(&node).collect() };
    let mut tree = vec![level(xs)];
    while let Some(below) = tree.last().filter(|t| t.len() > FAN) {
        let above = level(below);
        tree.push(above);
    }
    tree
}

/// The live entries of a level with dead ones, copied; `None` when all are live.
fn live(l: &Level) -> Option<(Vec<u64>, Vec<u64>, Vec<u32>)> {
    if l.dead() == 0 {
        return None;
    }
    let (lo, hi, group) = l.arrays();
    let keep = |i: &usize| !l.is_dead(*i);
    Some((
        (0..lo.len()).filter(keep).map(|i| lo[i]).collect(),
        (0..lo.len()).filter(keep).map(|i| hi[i]).collect(),
        (0..lo.len()).filter(keep).map(|i| group[i]).collect(),
    ))
}

/// The live arrays: the copy `live` made, or the level's own.
fn arrays<'a>(copy: &'a Option<(Vec<u64>, Vec<u64>, Vec<u32>)>, l: &'a Level) -> Arrays<'a> {
    match copy {
        Some((lo, hi, group)) => (lo, hi, group),
        None => l.arrays(),
    }
}

/// The first position at or after `from` whose entry is above `e`: steps of 1, 2, 4, ...
/// from `from`, then a binary search of the last step.
fn gallop(xs: Arrays<'_>, from: usize, e: Entry) -> usize {
    let at = |i: usize| (xs.0[i], xs.1[i], xs.2[i]);
    let n = xs.0.len();
    let (mut lo, mut hi, mut step) = (from, from, 1);
    // [from, lo) is at most `e`; `hi` is the next position to test
    while hi < n && at(hi) <= e {
        lo = hi + 1;
        hi = from + step;
        step *= 2;
    }
    let mut hi = hi.min(n);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if at(mid) <= e {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}
