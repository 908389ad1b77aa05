//! The binary-fuse prefilter in front of a segment: answers "certainly absent" for ~99.6% of
//! absent keys while touching one small array instead of the MPH and fingerprint arrays.
//!
//! ```text
//! ┌─────────────────────────────── descriptor (20 B, xorf DMA form) ┐┌──────────────────┐
//! │ seed u64 │ segment_length u32 │ length_mask u32 │ count_len u32 ││ fingerprints u8… │
//! └─────────────────────────────────────────────────────────────────┘└──────────────────┘
//! ```

use crate::error::{Error, FileKind, Result};
use xorf::{BinaryFuse8, BinaryFuse8Ref, DmaSerializable, Filter, FilterRef};

/// Bytes of the descriptor in front of the fingerprints.
pub const DESCRIPTOR_LEN: usize = <BinaryFuse8 as DmaSerializable>::DESCRIPTOR_LEN;

/// Fewest keys a segment needs before a prefilter is worth building.
pub const MIN_KEYS: usize = 16;

/// Appends a BinaryFuse8 over `keys` (distinct) in its section form; `false` when the
/// filter could not be built (the segment then goes without one).
pub fn write(keys: &[u64], out: &mut Vec<u8>) -> bool {
    let Ok(f) = BinaryFuse8::try_from(keys) else {
        return false;
    };
    let mut desc = [0u8; DESCRIPTOR_LEN];
    f.dma_copy_descriptor_to(&mut desc);
    out.extend_from_slice(&desc);
    out.extend_from_slice(f.dma_fingerprints());
    true
}

/// Checks that a section's descriptor keeps every probe inside its fingerprints, so that
/// [`contains`] can never index out of bounds.
pub fn validate(section: &[u8]) -> Result<()> {
    let bad = |detail: &str| Error::Corrupt {
        file: FileKind::Segment,
        what: "prefilter section".into(),
        detail: detail.into(),
    };
    if section.len() < DESCRIPTOR_LEN {
        return Err(bad("shorter than its descriptor"));
    }
    let word = |at: usize| {
        u32::from_le_bytes([
            section[at],
            section[at + 1],
            section[at + 2],
            section[at + 3],
        ])
    };
    // xorf's descriptor: seed u64, segment_length u32, segment_length_mask u32,
    // segment_count_length u32.
    let (segment_length, segment_length_mask, segment_count_length) = (word(8), word(12), word(16));
    let fps = (section.len() - DESCRIPTOR_LEN) as u64;
    // Probes land below segment_count_length + 2 * segment_length when the segment length
    // is a power of two and the mask is one less (xorf's hash_of_hash).
    if !segment_length.is_power_of_two() || segment_length_mask != segment_length - 1 {
        return Err(bad("segment length is not a power of two"));
    }
    if u64::from(segment_count_length) + 2 * u64::from(segment_length) > fps.min(u32::MAX as u64) {
        return Err(bad("probes would fall outside the fingerprints"));
    }
    Ok(())
}

/// Whether `key` may be in the set; `section` must have passed [`validate`].
#[inline]
pub fn contains(section: &[u8], key: u64) -> bool {
    let (desc, fps) = section.split_at(DESCRIPTOR_LEN);
    BinaryFuse8Ref::from_dma(desc, fps).contains(&key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_false_negatives_and_few_false_positives() {
        let keys: Vec<u64> = (0..10_000u64)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .collect();
        let mut sec = Vec::new();
        assert!(write(&keys, &mut sec));
        validate(&sec).unwrap();
        assert!(keys.iter().all(|&k| contains(&sec, k)));
        let fp = (0..100_000u64)
            .filter(|i| contains(&sec, i.wrapping_mul(0xD6E8_FEB8_6659_FD93) | 1))
            .count();
        assert!(fp < 1000, "false positive rate {fp}/100000");
    }

    #[test]
    fn inconsistent_descriptors_are_refused() {
        let keys: Vec<u64> = (1..1000u64).collect();
        let mut sec = Vec::new();
        assert!(write(&keys, &mut sec));
        assert!(validate(&sec[..sec.len() - 1000]).is_err());
        assert!(validate(&sec[..10]).is_err());
        let mut bad = sec.clone();
        bad[8] ^= 0x01; // segment_length no longer a power of two
        assert!(validate(&bad).is_err());
    }
}
