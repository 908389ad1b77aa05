//! Helpers of the batched-lookup tests (`batch_model.rs`, `batch_corners.rs`,
//! `batch_race.rs`): a key → handle-set model and the three-way check every batch gets
//! (`lookup_many` ≡ the model ≡ `lookup` key by key). Public API only, so the checks hold
//! whatever the batch path does inside.
#![allow(dead_code)]

use lsm_index_core::{Batch, Index};
use std::collections::{BTreeMap, BTreeSet};

/// Key bytes → the handles the key should have (absent and empty mean the same).
pub type Model = BTreeMap<Vec<u8>, BTreeSet<u32>>;

/// What the model says `key` holds, sorted.
pub fn expect(model: &Model, key: &[u8]) -> Vec<u32> {
    model
        .get(key)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

/// Key `i` of the batch tests' key space, with lengths 0, 1, 8 and 100 bytes: `i == 0` is
/// the empty key, then by `i % 3` one byte, eight bytes, or 100 (distinct for `i < 256`).
pub fn key(i: u32) -> Vec<u8> {
    assert!(i < 256, "key {i} would collide with another key's bytes");
    match (i, i % 3) {
        (0, _) => Vec::new(),
        (_, 0) => vec![i as u8],
        (_, 1) => (u64::from(i).wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .to_le_bytes()
            .to_vec(),
        _ => {
            let mut k = format!("key-{i:03}-").into_bytes();
            k.resize(100, b'a' + (i % 26) as u8);
            k
        }
    }
}

/// Looks `keys` up in one batch and checks each answer against the model and against a
/// single `lookup` of the same key; returns the batch.
pub fn check_batch<K: AsRef<[u8]>>(index: &Index, model: &Model, keys: &[K], what: &str) -> Batch {
    let batch = index.lookup_many(keys).unwrap();
    assert_eq!(batch.len(), keys.len(), "{what}: one answer per key");
    assert_eq!(batch.is_empty(), keys.is_empty(), "{what}: is_empty");
    for (i, (k, got)) in keys.iter().zip(batch.iter()).enumerate() {
        let k = k.as_ref();
        let want = expect(model, k);
        assert_eq!(
            got,
            want,
            "{what}: key #{i} {k:?} (len {}) in the batch",
            k.len()
        );
        assert_eq!(
            index.lookup(k).unwrap(),
            want,
            "{what}: key #{i} {k:?} looked up alone"
        );
    }
    batch
}
