//! Dropped handles awaiting purge: `drop_handle` records the handle here in O(1) instead of
//! scanning every key; lookups filter it out and compaction removes it from the data.

use ahash::AHashMap;

/// Handle -> sequence number of its latest drop.
///
/// A structure (overlay entry or segment) stamped with sequence `s` already excludes every
/// handle dropped before `s`, so a handle `h` found in it is dead iff `drop_seq(h) >= s`.
#[derive(Clone, Default, Debug)]
pub struct DeadHandles {
    map: AHashMap<u32, u64>,
    generation: u64,
}

impl DeadHandles {
    /// Records that `h` was dropped at sequence `seq`.
    pub fn insert(&mut self, h: u32, seq: u64) {
        self.map.insert(h, seq);
        self.generation += 1;
    }

    /// Whether no drop is pending.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Pending drops.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Counts drops ever made; key counts computed under an older generation are stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Every pending drop as `(handle, drop sequence)`, sorted (for the manifest).
    pub fn entries(&self) -> Vec<(u32, u64)> {
        let mut v: Vec<(u32, u64)> = self.map.iter().map(|(&h, &s)| (h, s)).collect();
        v.sort_unstable();
        v
    }

    /// The latest pending drop's sequence number.
    pub fn max_seq(&self) -> Option<u64> {
        self.map.values().copied().max()
    }

    /// Whether `h`, found in a structure stamped `seq`, is dead there.
    #[inline]
    pub fn is_dead(&self, h: u32, seq: u64) -> bool {
        self.map.get(&h).is_some_and(|&d| d >= seq)
    }

    /// Removes from `handles[from..]` every handle dead for a structure stamped `seq`.
    #[inline]
    pub fn filter(&self, handles: &mut Vec<u32>, from: usize, seq: u64) {
        if self.map.is_empty() {
            return;
        }
        let mut keep = from;
        for i in from..handles.len() {
            let h = handles[i];
            if self.map.get(&h).is_none_or(|&d| d < seq) {
                handles[keep] = h;
                keep += 1;
            }
        }
        handles.truncate(keep);
    }

    /// Forgets drops that every live structure already excludes (`drop_seq < watermark`).
    pub fn purge_below(&mut self, watermark: u64) -> usize {
        let before = self.map.len();
        self.map.retain(|_, d| *d >= watermark);
        before - self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_respects_structure_stamps() {
        let mut d = DeadHandles::default();
        d.insert(7, 10);
        let mut v = vec![1, 7, 9];
        d.filter(&mut v, 0, 10); // stamped at the drop: 7 predates it, dead
        assert_eq!(v, vec![1, 9]);
        let mut v = vec![1, 7, 9];
        d.filter(&mut v, 0, 11); // written after the drop: 7 was re-added, alive
        assert_eq!(v, vec![1, 7, 9]);
        let mut v = vec![7, 7, 1, 7];
        d.filter(&mut v, 2, 3); // only the tail is filtered
        assert_eq!(v, vec![7, 7, 1]);
        assert!(d.is_dead(7, 10) && !d.is_dead(7, 11) && !d.is_dead(1, 0));
    }

    #[test]
    fn purge_below_keeps_recent_drops() {
        let mut d = DeadHandles::default();
        d.insert(1, 5);
        d.insert(2, 50);
        assert_eq!(d.purge_below(20), 1);
        assert_eq!(d.len(), 1);
        assert_eq!(d.max_seq(), Some(50));
        assert_eq!(d.generation(), 2);
    }
}
