//! The tiers of the infix index: immutable Aho–Corasick automata, each over some of its
//! literals, and the pure policy of when the newest tiers are merged.
//!
//! ```text
//! overlay (≤ OVERLAY_MAX finders) ─full─▶ new tier ─▶ merge the last two while
//!                                                     last × FANOUT ≥ the one before
//! ```
//!
//! Why tiers and not one automaton rebuilt per overlay: a build costs ~2-4 µs per literal
//! (measured, `benches/patterns.rs`), so rebuilding 100k literals every 64 inserts is ~5 ms
//! per insert; merging geometrically (leveling, ratio [`FANOUT`]) builds each literal ~6 times
//! at 1k literals and ~14 at 100k, with ~1.4 and ~3.2 tiers scanned on average
//! (`merge_policy_simulation`). A compaction (the dead outnumber half the live, or the
//! caller asks) folds every tier into one.
//!
//! The automaton's kind by size: a DFA up to [`DFA_MAX_BYTES`] of literals (3-4x faster to
//! scan than the contiguous NFA, ~700 heap bytes per literal against ~140), the contiguous
//! NFA beyond; the automaton's own prefilter only up to [`PREFILTER_MAX_LITERALS`] (with
//! more, most bytes start some literal and the prefilter costs more than it skips).

use crate::{Error, Result};
use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// Size ratio between consecutive tiers: the newest merges into the one before it while it
/// holds at least a `1/FANOUT` of that one's literals.
pub const FANOUT: usize = 4;

/// Largest total literal bytes built as a DFA (about 10k literals of 7 bytes, ~7 MB).
pub const DFA_MAX_BYTES: usize = 64 * 1024;

/// Most literals an automaton keeps its prefilter for.
pub const PREFILTER_MAX_LITERALS: usize = 100;

/// An immutable automaton over some literal slots of the infix index.
#[derive(Clone)]
pub(super) struct Tier {
    automaton: AhoCorasick,
    /// Each pattern id's slot.
    slots: Box<[u32]>,
}

impl Tier {
    /// The tier of `literals` (with their `slots`, in the same order); an error when no
    /// automaton of them can be built (too many states).
    pub(super) fn build(literals: &[&str], slots: Vec<u32>) -> Result<Tier> {
        let bytes: usize = literals.iter().map(|l| l.len()).sum();
        let kind = if bytes <= DFA_MAX_BYTES {
            AhoCorasickKind::DFA
        } else {
            AhoCorasickKind::ContiguousNFA
        };
        let build = |kind: Option<AhoCorasickKind>| {
            AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .kind(kind)
                .prefilter(literals.len() <= PREFILTER_MAX_LITERALS)
                .build(literals)
        };
        // the chosen kind, else whichever the crate can build
        let automaton =
            build(Some(kind))
                .or_else(|_| build(None))
                .map_err(|_| Error::TooLarge {
                    what: "infix automaton",
                })?;
        Ok(Tier {
            automaton,
            slots: slots.into_boxed_slice(),
        })
    }

    /// Calls `hit` with the slot of every occurrence of its literals in `text` (overlapping:
    /// `ab` and `abc` both in `abc`; a literal as often as it occurs).
    pub(super) fn scan(&self, text: &str, mut hit: impl FnMut(u32)) {
        for m in self.automaton.find_overlapping_iter(text) {
            if let Some(&slot) = self.slots.get(m.pattern().as_usize()) {
                hit(slot);
            }
        }
    }

    /// Its literals' slots.
    pub(super) fn slots(&self) -> &[u32] {
        &self.slots
    }

    /// Heap bytes: the automaton's own count and the slot list.
    pub(super) fn heap_bytes(&self) -> usize {
        self.automaton.memory_usage() + self.slots.len() * std::mem::size_of::<u32>()
    }
}

/// How many of the newest tiers to merge into one, given the tiers' sizes (oldest first):
/// the last two while the last holds ≥ `1/FANOUT` of the one before, repeatedly (0: none).
pub fn merge_count(sizes: &[usize]) -> usize {
    let (mut merged, mut last) = (
        1,
        match sizes.last() {
            Some(&last) => last,
            None => return 0,
        },
    );
    for &before in sizes.iter().rev().skip(1) {
        if last * FANOUT < before {
            break;
        }
        merged += 1;
        last += before;
    }
    if merged == 1 {
        0
    } else {
        merged
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_follow_the_ratio() {
        assert_eq!(merge_count(&[]), 0);
        assert_eq!(merge_count(&[64]), 0);
        assert_eq!(merge_count(&[64, 64]), 2);
        assert_eq!(merge_count(&[256, 64]), 2, "64 × 4 ≥ 256");
        assert_eq!(merge_count(&[320, 64]), 0);
        assert_eq!(
            merge_count(&[4096, 320, 64, 64]),
            3,
            "64+64, then 128 × 4 ≥ 320"
        );
    }

    /// The policy's cost as a table (builds per literal, tiers scanned) for the DESIGN
    /// figures: `cargo test -p lsm_index_core --lib merge_policy_simulation -- --nocapture`.
    #[test]
    fn merge_policy_simulation() {
        let overlay = super::super::OVERLAY_MAX;
        println!("literals  builds/literal  tiers(avg)  tiers(max)");
        for n in [1_000usize, 10_000, 100_000] {
            let (mut sizes, mut built, mut sum, mut max) = (Vec::new(), 0, 0, 0);
            for _ in 0..n / overlay {
                sizes.push(overlay);
                built += overlay;
                let k = merge_count(&sizes);
                if k > 0 {
                    let merged: usize = sizes.drain(sizes.len() - k..).sum();
                    built += merged;
                    sizes.push(merged);
                }
                sum += sizes.len();
                max = max.max(sizes.len());
            }
            let rounds = n / overlay;
            let per = built as f64 / n as f64;
            let avg = sum as f64 / rounds as f64;
            println!("{n:>8}  {per:>14.1}  {avg:>10.1}  {max:>10}");
            assert!(
                per < 20.0 && max <= 6,
                "{n}: {per} builds per literal, {max} tiers"
            );
        }
    }
}
