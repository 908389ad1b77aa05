//! Helpers shared by the integration tests.

pub mod arrays;
pub mod batch;
pub mod ordered;
pub mod shapes;
pub mod subquery_model;
pub mod subquery_ops;
pub mod views;

use lsm_index_core::internals::HashSecret;
use lsm_index_core::{Config, Index};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The key-hash secret of the test indexes. `Config::secret` is random by default, and the
/// secret decides each key's lane and fingerprint, so which lanes fill, flush and merge when:
/// fixed, a failure reproduces exactly.
#[allow(dead_code)]
pub const SECRET: HashSecret = HashSecret(*b"lsm_index tests!");

/// `Config::default()` with the tests' fixed [`SECRET`]: what every test's config starts
/// from (`..common::config()`).
#[allow(dead_code)]
pub fn config() -> Config {
    Config {
        secret: Some(SECRET),
        ..Config::default()
    }
}

/// Key -> the handles it should have: what the tests check an index against.
#[allow(dead_code)]
pub type Oracle = HashMap<Vec<u8>, BTreeSet<u32>>;

/// The key bytes of key number `i`.
#[allow(dead_code)]
pub fn key(i: u32) -> Vec<u8> {
    format!("user_id={i}").into_bytes()
}

/// Random adds, removes and drops (over 3,000 keys and 40 handles) on `index` and the
/// oracle.
#[allow(dead_code)]
pub fn churn(index: &Index, oracle: &mut Oracle, rng: &mut StdRng, ops: usize) {
    for _ in 0..ops {
        let k = key(rng.gen_range(0..3_000));
        let h = rng.gen_range(0..40);
        match rng.gen_range(0..100) {
            0 => {
                index.drop_handle(h).unwrap();
                oracle.values_mut().for_each(|s| {
                    s.remove(&h);
                });
            }
            1..=60 => {
                index.add(&k, h).unwrap();
                oracle.entry(k).or_default().insert(h);
            }
            _ => {
                index.remove(&k, h).unwrap();
                if let Some(s) = oracle.get_mut(&k) {
                    s.remove(&h);
                }
            }
        }
    }
}

/// Drops `index` as a crash would leave it (no checkpoint), once no background job holds
/// it: a running job keeps the index — and its directory lock — alive until it ends.
#[allow(dead_code)]
pub fn release(index: Arc<Index>) {
    // `wait_idle` answers at once for a poisoned index; a job still finishing holds the index
    // (and its directory lock) a moment longer: wait for it to let go
    let _ = index.wait_idle();
    // polls the count (the jobs signal nothing when they let go); the deadline only guards
    // against a hang, and a test that reaches it fails here, not at a later `open`
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    while Arc::strong_count(&index) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "a background job held the index for 5 minutes after wait_idle"
        );
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(index);
}
