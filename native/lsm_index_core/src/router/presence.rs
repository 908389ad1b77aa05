//! The router's presence filter: a blocked Bloom filter over the hashes of every index key,
//! so that a change whose values no shape is indexed on is answered without touching the
//! equality index (most changes of a large table match no shape).
//!
//! One 64-bit block per probe (one cache line touched), three bits per key, ~16 bits per key:
//! about 0.5% false positives when full. Keys cannot be deleted from a Bloom filter: its
//! upkeep ([`LiveKeys`], here so the policy sits beside the filter it keeps) rebuilds it from
//! the live keys when growth fills it or removals leave it mostly stale.

/// Bits per key the filter is sized for.
const BITS_PER_KEY: usize = 16;

/// A blocked Bloom filter over 64-bit key hashes.
#[derive(Debug)]
pub struct Presence {
    blocks: Vec<u64>,
    mask: u64,
    /// Keys inserted since the last rebuild (live or not).
    inserted: usize,
}

impl Presence {
    /// An empty filter sized for `keys` keys.
    pub fn with_capacity(keys: usize) -> Presence {
        // one block (four keys) for an empty router: it costs 8 bytes until shapes arrive
        let blocks = (keys.max(4) * BITS_PER_KEY / 64).next_power_of_two();
        Presence {
            blocks: vec![0; blocks],
            mask: blocks as u64 - 1,
            inserted: 0,
        }
    }

    /// Keys it can hold at its designed false-positive rate.
    pub fn capacity(&self) -> usize {
        self.blocks.len() * 64 / BITS_PER_KEY
    }

    /// Keys inserted since it was built.
    pub fn inserted(&self) -> usize {
        self.inserted
    }

    /// Records `hash`.
    pub fn insert(&mut self, hash: u64) {
        let (block, bits) = self.locate(hash);
        self.blocks[block] |= bits;
        self.inserted += 1;
    }

    /// False only if `hash` was never inserted.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        let (block, bits) = self.locate(hash);
        self.blocks[block] & bits == bits
    }

    /// Starts loading the block `hash` probes (a batch asks a pass before it tests).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        crate::prefetch::prefetch_word(&self.blocks, (hash & self.mask) as usize);
    }

    #[inline]
    fn locate(&self, hash: u64) -> (usize, u64) {
        let block = (hash & self.mask) as usize;
        // three 6-bit bit positions from the high bits (independent of the block bits)
        let bits = (1u64 << ((hash >> 46) & 63))
            | (1u64 << ((hash >> 52) & 63))
            | (1u64 << ((hash >> 58) & 63));
        (block, bits)
    }
}

/// The presence filter over the live (published, indexed) shapes' keys, with the count of
/// those keys that decides when it is rebuilt. Each call that may rebuild takes `live`: the
/// hashes of the keys of every published shape (the one being inserted excluded).
#[derive(Debug)]
pub struct LiveKeys {
    filter: Presence,
    /// Keys of the live shapes.
    live: usize,
}

impl Default for LiveKeys {
    fn default() -> LiveKeys {
        LiveKeys {
            filter: Presence::with_capacity(0),
            live: 0,
        }
    }
}

impl LiveKeys {
    /// False only if no live shape has a key with this hash.
    #[inline]
    pub fn may_contain(&self, hash: u64) -> bool {
        self.filter.may_contain(hash)
    }

    /// Starts loading the block of `hash` (see [`Presence::prefetch`]).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.filter.prefetch(hash);
    }

    /// Adds a published shape's key hashes, first rebuilding the filter if they would
    /// overfill it.
    pub fn insert<I: Iterator<Item = u64>>(&mut self, hashes: &[u64], live: impl FnOnce() -> I) {
        self.live += hashes.len();
        if self.filter.inserted() + hashes.len() > self.filter.capacity() {
            self.rebuild(hashes.len(), live());
        }
        for &h in hashes {
            self.filter.insert(h);
        }
    }

    /// Forgets `keys` keys of an unpublished shape; rebuilds the filter once it holds more
    /// stale keys than live ones, so false positives stay rare.
    pub fn remove<I: Iterator<Item = u64>>(&mut self, keys: usize, live: impl FnOnce() -> I) {
        self.live -= keys;
        if self.filter.inserted() > 2 * self.live + 1024 {
            self.rebuild(0, live());
        }
    }

    /// Room for `keys` more keys without a rebuild (one rebuild now, if needed).
    pub fn reserve<I: Iterator<Item = u64>>(&mut self, keys: usize, live: impl FnOnce() -> I) {
        if self.filter.inserted() + keys > self.filter.capacity() {
            self.rebuild(keys, live());
        }
    }

    /// A fresh filter over `live`, with room to double (`extra` keys are about to be
    /// inserted).
    fn rebuild(&mut self, extra: usize, live: impl Iterator<Item = u64>) {
        let mut filter = Presence::with_capacity(2 * (self.live + extra));
        for h in live {
            filter.insert(h);
        }
        self.filter = filter;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(i: u64) -> u64 {
        let mut z = i.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let n = 100_000;
        let mut p = Presence::with_capacity(n);
        assert!(p.capacity() >= n);
        for i in 0..n as u64 {
            p.insert(mix(i));
        }
        assert!((0..n as u64).all(|i| p.may_contain(mix(i))));
        let fp = (n as u64..2 * n as u64)
            .filter(|&i| p.may_contain(mix(i)))
            .count();
        assert!(fp < n / 50, "{fp} false positives of {n}");
    }

    #[test]
    fn live_keys_rebuild_on_growth_and_after_removals() {
        let mut shapes: Vec<Vec<u64>> = Vec::new();
        let mut keys = LiveKeys::default();
        let first = keys.filter.capacity();
        for i in 0..4_000 {
            let hashes = vec![mix(i)];
            let all = shapes.iter().flatten().copied();
            keys.insert(&hashes, || all);
            shapes.push(hashes);
        }
        assert!(keys.filter.capacity() >= shapes.len() && first < shapes.len());
        assert!(shapes.iter().flatten().all(|&h| keys.may_contain(h)));
        let before = keys.filter.inserted();
        while shapes.len() > 10 {
            let gone = shapes.pop().map_or(0, |s| s.len());
            let all = shapes.iter().flatten().copied();
            keys.remove(gone, || all);
        }
        // rebuilt from the live keys: the stale ones are gone
        assert!(keys.filter.inserted() < before);
        assert!(keys.filter.inserted() <= 2 * 10 + 1024);
        assert!(shapes.iter().flatten().all(|&h| keys.may_contain(h)));
    }
}
