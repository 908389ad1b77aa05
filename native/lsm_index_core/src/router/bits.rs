//! Column bitsets: a shape's read columns, a row's unparseable columns, an update's changed
//! columns (bit `c` of word `c / 64`).

use smallvec::SmallVec;

/// A column bitset, inline up to 256 columns.
pub(super) type Bits = SmallVec<[u64; 4]>;

/// Words of a bitset holding `bits` bits.
pub(super) fn bitset_words(bits: usize) -> usize {
    bits.div_ceil(64)
}

/// Whether bit `i` is set (false past the end).
pub(super) fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

/// Sets bit `i` (within the set).
pub(super) fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

/// Whether the two sets share a bit.
pub(super) fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

/// The set bits, ascending.
pub(super) fn columns_of(mask: &[u64]) -> impl Iterator<Item = usize> + '_ {
    mask.iter().enumerate().flat_map(|(w, &bits)| {
        (0..64)
            .filter(move |b| bits & (1 << b) != 0)
            .map(move |b| w * 64 + b)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_set_test_and_list() {
        let mut set: Bits = smallvec::smallvec![0; bitset_words(130)];
        assert_eq!(set.len(), 3);
        for i in [0, 63, 64, 129] {
            set_bit(&mut set, i);
        }
        assert!(bit(&set, 63) && bit(&set, 64) && !bit(&set, 65));
        assert!(!bit(&set, 1000));
        assert_eq!(columns_of(&set).collect::<Vec<_>>(), [0, 63, 64, 129]);
        assert!(intersects(&set, &[0, 1]));
        assert!(!intersects(&set, &[2, 2]));
    }
}
