//! The router's presence filter: a blocked Bloom filter over the hashes of every index key,
//! so that a change whose values no shape is indexed on is answered without touching the
//! equality index (most changes of a large table match no shape).
//!
//! One 64-bit block per probe (one cache line touched), three bits per key, ~16 bits per key:
//! about 0.5% false positives when full. Keys cannot be deleted from a Bloom filter; the
//! router rebuilds it from the live keys when removals or growth make it stale.

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
        let blocks = (keys.max(64) * BITS_PER_KEY / 64).next_power_of_two();
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
}
