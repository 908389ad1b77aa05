//! Per-handle key counts (`Config::count_handles`): the edge cases of the write path, writers
//! and drops racing on many threads, and persistent reopen (after a clean close and after a
//! crash: the log replayed). The random sequences against an oracle are in `model.rs`.

mod common;

use common::{churn, key, Oracle};

use lsm_index_core::{Config, Error, Index};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Small lanes and overlays, so flushes and merges happen; counting.
fn small() -> Config {
    Config {
        lanes: 4,
        overlay_limit: 64,
        count_handles: true,
        ..common::config()
    }
}

/// The counts the data itself gives: every key of `0..keys` looked up.
fn counted_by_lookup(index: &Index, keys: u32) -> BTreeMap<u32, u64> {
    let mut counts = BTreeMap::new();
    for i in 0..keys {
        for h in index.lookup(&key(i)).unwrap() {
            *counts.entry(h).or_default() += 1;
        }
    }
    counts
}

/// `index`'s counts equal `want`: each handle's, how many, and which.
fn assert_counts(index: &Index, want: &BTreeMap<u32, u64>) {
    for (&h, &n) in want {
        assert_eq!(index.handle_count(h).unwrap(), n, "count of {h}");
    }
    assert_eq!(index.distinct_handles().unwrap(), want.len() as u64);
    assert_eq!(
        index.handles().unwrap(),
        want.keys().copied().collect::<Vec<_>>()
    );
}

fn oracle_counts(oracle: &Oracle) -> BTreeMap<u32, u64> {
    let mut counts = BTreeMap::new();
    for &h in oracle.values().flatten() {
        *counts.entry(h).or_default() += 1;
    }
    counts
}

#[test]
fn counts_are_refused_without_count_handles() {
    let index = Index::new(common::config()).unwrap();
    index.add(b"k", 1).unwrap();
    assert_eq!(
        index.handle_count(1),
        Err(Error::NotCounting {
            operation: "handle_count"
        })
    );
    assert!(matches!(
        index.distinct_handles(),
        Err(Error::NotCounting { .. })
    ));
    assert!(matches!(index.handles(), Err(Error::NotCounting { .. })));
    let stats = index.stats().unwrap();
    assert_eq!((stats.counted_handles, stats.handle_count_bytes), (0, 0));
}

#[test]
fn only_writes_that_change_a_set_count() {
    let index = Index::new(small()).unwrap();
    index.add(b"a", 7).unwrap();
    index.add(b"a", 7).unwrap(); // present: no change
    index.add_many(&[(b"b", 7), (b"b", 7), (b"c", 7)]).unwrap();
    assert_eq!(index.handle_count(7).unwrap(), 3);
    index.remove(b"zz", 7).unwrap(); // absent
    index.remove(b"a", 8).unwrap(); // absent handle
    index.remove_many(&[(b"b", 7), (b"b", 7)]).unwrap();
    assert_eq!(index.handle_count(7).unwrap(), 2);
    assert_eq!(index.handle_count(8).unwrap(), 0);
    // the non-blocking calls count the same
    index.try_add(b"d", 7).unwrap();
    index.try_remove(b"d", 7).unwrap();
    index.try_add_many(&[(b"e", 9), (b"e", 9)]).unwrap();
    index.try_remove_many(&[(b"e", 9), (b"f", 9)]).unwrap();
    assert_counts(&index, &BTreeMap::from([(7, 2)]));
    let stats = index.stats().unwrap();
    assert_eq!(stats.counted_handles, 1);
    assert!(stats.handle_count_bytes > 0);
}

#[test]
fn a_drop_clears_a_count_and_re_adding_counts_again() {
    let index = Index::new(small()).unwrap();
    for i in 0..500 {
        index.add(&key(i), 5).unwrap();
        index.add(&key(i), 6).unwrap();
    }
    index.compact().unwrap(); // some copies in segments, some in overlays
    for i in 0..100 {
        index.remove(&key(i), 6).unwrap();
    }
    index.drop_handle(5).unwrap();
    assert_counts(&index, &BTreeMap::from([(6, 400)]));
    // removing a dropped pair changes nothing; adding it again counts from 0
    index.remove(&key(1), 5).unwrap();
    index.add(&key(2), 5).unwrap();
    index.add(&key(3), 5).unwrap();
    assert_counts(&index, &BTreeMap::from([(5, 2), (6, 400)]));
    index.drop_handle(9).unwrap(); // never held: stays 0
    index.compact().unwrap(); // purging the drop changes no set
    assert_counts(&index, &BTreeMap::from([(5, 2), (6, 400)]));
    assert_eq!(
        counted_by_lookup(&index, 500),
        BTreeMap::from([(5, 2), (6, 400)])
    );
}

#[test]
fn a_count_past_a_byte_is_exact() {
    let index = Index::new(small()).unwrap();
    let pairs: Vec<(Vec<u8>, u32)> = (0..1_000).map(|i| (key(i), 3)).collect();
    index.add_many(&pairs).unwrap();
    assert_eq!(index.handle_count(3).unwrap(), 1_000);
    index.remove_many(&pairs[..900]).unwrap();
    assert_eq!(index.handle_count(3).unwrap(), 100);
}

/// Writers and droppers on several threads, on the same keys and handles: whatever the
/// interleaving, the counts end equal to what the data holds.
#[test]
fn concurrent_writes_and_drops_leave_counts_equal_to_the_data() {
    const KEYS: u32 = 2_000;
    let index = Index::new(Config {
        lanes: 8,
        overlay_limit: 128,
        count_handles: true,
        ..common::config()
    })
    .unwrap();
    let writers: Vec<_> = (0..4u64)
        .map(|t| {
            let index = Arc::clone(&index);
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                for _ in 0..20_000 {
                    let k = key(rng.gen_range(0..KEYS));
                    let h = rng.gen_range(0..30);
                    match rng.gen_range(0..100) {
                        0 => index.drop_handle(h).unwrap(),
                        1..=55 => index.add(&k, h).unwrap(),
                        56..=90 => index.remove(&k, h).unwrap(),
                        _ => {
                            let pairs: Vec<(Vec<u8>, u32)> = (0..rng.gen_range(1..40))
                                .map(|_| (key(rng.gen_range(0..KEYS)), rng.gen_range(0..30)))
                                .collect();
                            if rng.gen_bool(0.6) {
                                index.add_many(&pairs).unwrap();
                            } else {
                                index.remove_many(&pairs).unwrap();
                            }
                        }
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let want = counted_by_lookup(&index, KEYS);
    assert!(!want.is_empty());
    assert_counts(&index, &want);
    index.compact().unwrap();
    assert_counts(&index, &want);
}

/// Counts are not stored: a reopened index recounts them from its segments and its replayed
/// log, after a close (checkpointed) or a crash (only flushed: the log replayed).
#[test]
fn a_reopened_index_recounts() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(3);
    let mut oracle = Oracle::new();
    for round in 0..4 {
        let index = Index::open(dir.path(), small()).unwrap();
        assert_counts(&index, &oracle_counts(&oracle));
        churn(&index, &mut oracle, &mut rng, 5_000);
        assert_counts(&index, &oracle_counts(&oracle));
        if round % 2 == 0 {
            index.flush().unwrap();
            common::release(index); // a crash after the flush
        } else {
            index.close().unwrap();
        }
    }
    // a drop still pending at the reopen: the last write, then close (its checkpoint has no
    // overlay to flush, so no job rewrites a lane and purges it)
    let index = Index::open(dir.path(), small()).unwrap();
    let h = *oracle
        .values()
        .flatten()
        .next()
        .expect("a key holds a handle");
    index.drop_handle(h).unwrap();
    oracle.values_mut().for_each(|s| {
        s.remove(&h);
    });
    index.close().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    assert!(index.stats().unwrap().pending_drops > 0);
    assert_counts(&index, &oracle_counts(&oracle));
    index.close().unwrap();
    // the option is the opener's: without it, nothing is counted
    let plain = Config {
        count_handles: false,
        ..small()
    };
    let index = Index::open(dir.path(), plain).unwrap();
    assert!(matches!(
        index.handle_count(0),
        Err(Error::NotCounting { .. })
    ));
}
