//! API contracts: configuration errors, thread-safety, batch shape, stats accounting.

mod common;

use lsm_index_core::{Config, Error, Index, MphKind, SegmentLayout};

#[test]
fn index_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Index>();
}

#[test]
fn invalid_configs_are_refused_with_the_option_named() {
    let cases = [
        (
            Config {
                lanes: 0,
                ..common::config()
            },
            "lanes",
        ),
        (
            Config {
                lanes: 70_000,
                ..common::config()
            },
            "lanes",
        ),
        (
            Config {
                overlay_limit: 0,
                ..common::config()
            },
            "overlay_limit",
        ),
        (
            Config {
                max_segments: 0,
                ..common::config()
            },
            "max_segments",
        ),
        (
            Config {
                size_ratio: Some(f64::NAN),
                ..common::config()
            },
            "size_ratio",
        ),
        (
            Config {
                size_ratio: Some(-1.0),
                ..common::config()
            },
            "size_ratio",
        ),
    ];
    for (config, name) in cases {
        match Index::new(config) {
            Err(e @ Error::InvalidConfig { option, .. }) => {
                assert_eq!(option, name);
                assert!(e.to_string().contains(name));
            }
            other => panic!(
                "{name}: expected InvalidConfig, got {:?}",
                other.map(|_| ())
            ),
        }
    }
}

#[test]
fn empty_index_answers_empty() {
    let index = Index::new(common::config()).unwrap();
    assert_eq!(index.lookup(b"").unwrap(), Vec::<u32>::new());
    assert_eq!(index.len().unwrap(), 0);
    assert!(index.is_empty().unwrap());
    let batch = index.lookup_many::<&[u8]>(&[]).unwrap();
    assert!(batch.is_empty());
    index.compact().unwrap();
    assert_eq!(index.stats().unwrap().segments, 0);
}

#[test]
fn lookup_many_keeps_key_order_and_duplicates() {
    let index = Index::new(common::config()).unwrap();
    index.add(b"a", 2).unwrap();
    index.add(b"a", 1).unwrap();
    index.add(b"b", u32::MAX).unwrap();
    let batch = index.lookup_many(&[&b"b"[..], b"zz", b"a", b"b"]).unwrap();
    let got: Vec<Vec<u32>> = batch.iter().map(<[u32]>::to_vec).collect();
    assert_eq!(
        got,
        vec![vec![u32::MAX], vec![], vec![1, 2], vec![u32::MAX]]
    );
}

#[test]
fn stats_count_flushes_merges_and_bytes() {
    let index = Index::new(Config {
        lanes: 2,
        overlay_limit: 100,
        layout: SegmentLayout::Mph(MphKind::BoomPhf),
        ..common::config()
    })
    .unwrap();
    for i in 0..10_000u32 {
        index.add(&i.to_le_bytes(), i % 50).unwrap();
    }
    index.wait_idle().unwrap();
    let s = index.stats().unwrap();
    assert_eq!(s.keys, 10_000);
    assert_eq!(s.ops, 10_000);
    assert_eq!(s.bytes_ingested, 10_000 * 12);
    // every key flushed once, or still in an active overlay (at most max_overlay_keys, 400,
    // a lane); a flush takes at most 400 keys, however far the workers fell behind, so at
    // least 23 flushes over 2 lanes capped at 4 segments: merges
    assert_eq!(s.keys_flushed + s.overlay_keys, 10_000, "{s:?}");
    assert!(s.overlay_keys <= 2 * 400, "{s:?}");
    assert!(s.flushes * 400 >= s.keys_flushed, "{s:?}");
    assert!(s.merges > 0, "{s:?}");
    assert!(s.write_amplification > 1.0);
    assert!(
        s.keys_written >= s.keys_flushed && s.bytes_written > 0,
        "{s:?}"
    );
    assert!(s.max_lane_segments <= 4, "read amplification bound: {s:?}");
    assert_eq!(s.pending_jobs, 0);
    assert!(s.jobs_done > 0 && s.compaction_busy_us > 0, "{s:?}");
    assert!(
        s.segments_per_level.keys().any(|&level| level > 0),
        "merges write higher levels: {s:?}"
    );
    for i in 0..100u32 {
        index.lookup(&i.to_le_bytes()).unwrap();
        index.lookup(&(1_000_000 + i).to_le_bytes()).unwrap();
    }
    index
        .lookup_many(&[b"nope".to_vec(), 7u32.to_le_bytes().to_vec()])
        .unwrap();
    let s = index.stats().unwrap();
    assert_eq!((s.lookup_hits, s.lookup_misses), (101, 101), "{s:?}");
    assert!(s.prefilter_rejects > 0, "{s:?}");
    index.compact().unwrap();
    let s = index.stats().unwrap();
    assert_eq!(s.segments, 2);
    assert_eq!(s.overlay_keys, 0);
    assert_eq!(s.overlay_bytes, 0, "no room kept for writes that stopped");
    assert_eq!(s.segments_per_level.values().sum::<u64>(), 2);
    let per_key = (s.segment_bytes + s.mph_heap_bytes) as f64 / 10_000.0;
    assert!(per_key < 20.0, "{per_key} B/key");
}

#[test]
fn adds_of_present_pairs_and_removes_of_absent_pairs_change_nothing() {
    let index = Index::new(common::config()).unwrap();
    index.add(b"k", 1).unwrap();
    index.add(b"k", 1).unwrap();
    index.remove(b"k", 2).unwrap();
    index.remove(b"nope", 2).unwrap();
    assert_eq!(index.lookup(b"k").unwrap(), vec![1]);
    assert_eq!(index.len().unwrap(), 1);
    let s = index.stats().unwrap();
    assert_eq!(
        s.overlay_keys, 1,
        "no-op writes leave no overlay entry: {s:?}"
    );
}

#[test]
fn overlays_stay_bounded_under_concurrent_writers() {
    use std::sync::Arc;
    let index = Arc::new(
        Index::new(Config {
            lanes: 1,
            overlay_limit: 64,
            ..common::config()
        })
        .unwrap(),
    );
    let writers: Vec<_> = (0..2u32)
        .map(|t| {
            let index = index.clone();
            std::thread::spawn(move || {
                for i in 0..20_000u32 {
                    index.add(&(i * 2 + t).to_le_bytes(), t).unwrap();
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let s = index.stats().unwrap();
    assert_eq!(s.keys, 40_000);
    // Writers wait while the active overlay is at max_overlay_keys (4 x 64), and a frozen
    // overlay was an active one: at most twice that, however the writers and the flushes
    // interleave.
    assert!(s.overlay_keys <= 2 * 4 * 64, "{s:?}");
    assert!(s.segments <= 4, "{s:?}");
}
