//! Batched lookups at their corners, each on a layout built on purpose and checked with
//! `Stats` before the batches run: batch sizes around the 256-key chunk (0, 1, 7, 255, 256,
//! 257, 1000) with duplicates across chunk boundaries; keys of every length from 0 to 130
//! bytes, each a prefix of the next; sets of thousands of handles (segment pools) and
//! handles at the inline/pool boundary and next to `u32::MAX`; `drop_handle` before and
//! after compaction on keys in overlays and in segments; an overlay frozen between the
//! active one and the segments; indexes never written. Every batch is checked against a
//! model and against `lookup` key by key (`common::batch`).

mod common;

use common::batch::{check_batch, key, Model};
use lsm_index_core::{on_done, Config, Index, JobReport, MphKind, SegmentLayout, Stats};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// How long a test waits for a background job before calling it hung: a guard only.
const HANG_GUARD: Duration = Duration::from_secs(300);

/// Batch sizes around the chunk of 256 keys.
const SIZES: [usize; 7] = [0, 1, 7, 255, 256, 257, 1000];

/// Overlays that never fill: only `checkpoint` and `compact` flush, so the layout is the
/// test's own.
fn manual(lanes: u32) -> Config {
    Config {
        lanes,
        overlay_limit: 1 << 20,
        ..common::config()
    }
}

fn add(index: &Index, model: &mut Model, k: &[u8], handles: &[u32]) {
    let pairs: Vec<(&[u8], u32)> = handles.iter().map(|&h| (k, h)).collect();
    index.add_many(&pairs).unwrap();
    model.entry(k.to_vec()).or_default().extend(handles);
}

fn remove(index: &Index, model: &mut Model, k: &[u8], handles: &[u32]) {
    let pairs: Vec<(&[u8], u32)> = handles.iter().map(|&h| (k, h)).collect();
    index.remove_many(&pairs).unwrap();
    let set = model.entry(k.to_vec()).or_default();
    handles.iter().for_each(|h| {
        set.remove(h);
    });
}

fn drop_handle(index: &Index, model: &mut Model, h: u32) {
    index.drop_handle(h).unwrap();
    model.values_mut().for_each(|s| {
        s.remove(&h);
    });
}

/// Batches of every size in [`SIZES`] over `keys`: strided through them (duplicates once a
/// batch is longer than `keys`, and key 255 repeated at 256, across the chunk boundary), and
/// one key repeated.
fn check_sizes(index: &Index, model: &Model, keys: &[Vec<u8>], what: &str) {
    for n in SIZES {
        let mut batch: Vec<&[u8]> = (0..n)
            .map(|j| keys[(j * 37 + 11) % keys.len()].as_slice())
            .collect();
        if n > 256 {
            batch[256] = batch[255];
        }
        check_batch(index, model, &batch, &format!("{what}: {n} keys strided"));
        let same = vec![keys[n % keys.len()].as_slice(); n];
        check_batch(index, model, &same, &format!("{what}: one key {n} times"));
    }
}

/// Three layers, in lanes of a manual index: segment 1 (every written key), segment 2
/// (tombstones for a third of them, more handles for another third, new keys), then the
/// active overlay over both (re-adds over tombstones, removes, new keys) and a pending drop.
fn layered(config: Config, model: &mut Model) -> (Arc<Index>, Vec<Vec<u8>>) {
    let index = Index::new(config).unwrap();
    let written: Vec<Vec<u8>> = (0..200)
        .map(key)
        .chain((0..400).map(|i| format!("n{i}").into_bytes()))
        .collect();
    for (i, k) in written.iter().enumerate() {
        add(&index, model, k, &[i as u32 % 7, 100 + i as u32]);
    }
    index.checkpoint().unwrap();
    for (i, k) in written.iter().enumerate().step_by(3) {
        remove(&index, model, k, &[i as u32 % 7, 100 + i as u32]);
    }
    for (i, k) in written.iter().enumerate().skip(1).step_by(3) {
        add(&index, model, k, &[1 << 31, 7 + i as u32 % 3]);
    }
    for i in 0..50 {
        add(&index, model, format!("late{i}").as_bytes(), &[i]);
    }
    index.checkpoint().unwrap();
    for (i, k) in written.iter().enumerate().step_by(6) {
        add(&index, model, k, &[u32::MAX - i as u32]);
    }
    for (i, k) in written.iter().enumerate().skip(2).step_by(5) {
        remove(&index, model, k, &[i as u32 % 7]);
    }
    drop_handle(&index, model, 3);
    let mut keys = written;
    keys.extend((0..50).map(|i| format!("late{i}").into_bytes()));
    // absent everywhere, and absent in lanes that hold data
    keys.extend((200..256).map(key));
    keys.extend((0..100).map(|i| format!("never{i}").into_bytes()));
    (index, keys)
}

fn stats(index: &Index) -> Stats {
    index.stats().unwrap()
}

#[test]
fn batch_sizes_around_the_chunk_on_every_layout() {
    let layouts = [
        (1, SegmentLayout::Quotient, true),
        (2, SegmentLayout::Quotient, false),
        (64, SegmentLayout::Quotient, true),
        (2, SegmentLayout::Mph(MphKind::PtrHash), true),
        (2, SegmentLayout::Mph(MphKind::BoomPhf), false),
    ];
    for (lanes, layout, prefilter) in layouts {
        let what = format!("{lanes} lanes, {layout:?}, prefilter {prefilter}");
        let mut model = Model::new();
        let config = Config {
            layout,
            prefilter,
            ..manual(lanes)
        };
        let (index, keys) = layered(config, &mut model);
        let s = stats(&index);
        assert_eq!(s.max_lane_segments, 2, "{what}: {s:?}");
        assert!(s.overlay_keys > 0 && s.pending_drops == 1, "{what}: {s:?}");
        check_sizes(&index, &model, &keys, &format!("{what}, layered"));
        index.checkpoint().unwrap();
        assert_eq!(stats(&index).max_lane_segments, 3, "{what}");
        check_sizes(&index, &model, &keys, &format!("{what}, checkpointed"));
        index.compact().unwrap();
        let s = stats(&index);
        assert!(
            s.max_lane_segments == 1 && s.pending_drops == 0,
            "{what}: {s:?}"
        );
        check_sizes(&index, &model, &keys, &format!("{what}, compacted"));
    }
}

#[test]
fn keys_of_every_length_each_a_prefix_of_the_next() {
    let index = Index::new(manual(2)).unwrap();
    let mut model = Model::new();
    let keys: Vec<Vec<u8>> = (0..=130).map(|n| vec![b'x'; n]).collect();
    // and keys differing from those in their last byte only
    let near: Vec<Vec<u8>> = keys
        .iter()
        .skip(1)
        .map(|k| [&k[..k.len() - 1], b"y"].concat())
        .collect();
    for (n, k) in keys.iter().enumerate().filter(|(n, _)| n % 2 == 0) {
        add(&index, &mut model, k, &[n as u32]);
    }
    let mut batch: Vec<Vec<u8>> = keys.iter().chain(&near).cloned().collect();
    batch.extend(keys.iter().rev().cloned());
    check_batch(&index, &model, &batch, "even lengths in the overlay");
    index.checkpoint().unwrap();
    for (n, k) in keys.iter().enumerate().filter(|(n, _)| n % 2 == 1) {
        add(&index, &mut model, k, &[n as u32, 1000]);
    }
    remove(&index, &mut model, &keys[0], &[0]);
    remove(&index, &mut model, &keys[8], &[8]);
    check_batch(
        &index,
        &model,
        &batch,
        "odd lengths over a segment of even ones",
    );
    index.compact().unwrap();
    check_batch(&index, &model, &batch, "compacted");
}

#[test]
fn large_handle_sets_and_handles_next_to_u32_max() {
    let index = Index::new(manual(2)).unwrap();
    let mut model = Model::new();
    let wide: Vec<u32> = (0..5000).map(|h| h * 3).collect();
    let high: Vec<u32> = (0..3000).map(|i| u32::MAX - i * 2).collect();
    add(&index, &mut model, b"wide", &wide);
    add(&index, &mut model, b"high", &high);
    add(&index, &mut model, b"max", &[u32::MAX]);
    add(&index, &mut model, b"inline-edge", &[(1 << 31) - 1]);
    add(&index, &mut model, b"pool-edge", &[1 << 31]);
    add(&index, &mut model, b"both-edges", &[(1 << 31) - 1, 1 << 31]);
    for i in 0..300 {
        add(
            &index,
            &mut model,
            format!("k{i}").as_bytes(),
            &[i, u32::MAX - 1],
        );
    }
    let mut keys: Vec<Vec<u8>> = (0..300).map(|i| format!("k{i}").into_bytes()).collect();
    for at in [0, 7, 255, 256, 299] {
        keys.insert(at, b"wide".to_vec());
    }
    keys.extend(
        [
            "high",
            "max",
            "inline-edge",
            "pool-edge",
            "both-edges",
            "wide",
            "none",
        ]
        .map(|k| k.as_bytes().to_vec()),
    );
    let check = |model: &Model, what: &str| check_batch(&index, model, &keys, what);
    check(&model, "in the overlay");
    index.checkpoint().unwrap();
    check(&model, "in a segment");
    // drops over a segment: one of thousands, the top handle, one every k-key holds
    drop_handle(&index, &mut model, 3 * 1234);
    drop_handle(&index, &mut model, u32::MAX);
    drop_handle(&index, &mut model, u32::MAX - 1);
    check(&model, "drops pending over a segment");
    // half of the wide set removed in the overlay, the top handle added again
    let half: Vec<u32> = wide.iter().copied().step_by(2).collect();
    remove(&index, &mut model, b"wide", &half);
    add(&index, &mut model, b"max", &[u32::MAX]);
    add(&index, &mut model, b"high", &[u32::MAX]);
    check(&model, "overlay over a segment, drops pending");
    index.checkpoint().unwrap();
    assert_eq!(stats(&index).max_lane_segments, 2);
    check(&model, "two segments");
    index.compact().unwrap();
    assert_eq!(stats(&index).pending_drops, 0);
    check(&model, "compacted");
}

#[test]
fn drop_handle_before_and_after_compaction() {
    const D: u32 = 9;
    for lanes in [1, 2] {
        let index = Index::new(manual(lanes)).unwrap();
        let mut model = Model::new();
        let seg = |i: u32| format!("seg{i}").into_bytes();
        let ovl = |i: u32| format!("ovl{i}").into_bytes();
        let mut keys: Vec<Vec<u8>> = (0..40).flat_map(|i| [seg(i), ovl(i)]).collect();
        keys.extend([b"only-d".to_vec(), b"re-added".to_vec(), b"never".to_vec()]);
        keys.extend(keys.clone()); // each key twice
        for i in 0..40 {
            add(&index, &mut model, &seg(i), &[D, i]);
        }
        add(&index, &mut model, b"only-d", &[D]);
        index.checkpoint().unwrap();
        for i in 0..40 {
            add(&index, &mut model, &ovl(i), &[D, 100 + i]);
        }
        let check = |model: &Model, what: &str| {
            check_batch(&index, model, &keys, &format!("{lanes} lanes: {what}"));
        };
        check(&model, "before the drop");
        drop_handle(&index, &mut model, D);
        let s = stats(&index);
        assert!(
            s.pending_drops == 1 && s.segments > 0 && s.overlay_keys > 0,
            "{s:?}"
        );
        check(&model, "dropped over a segment and an overlay");
        // re-added after the drop: alive on those keys only
        add(&index, &mut model, &seg(0), &[D]);
        add(&index, &mut model, &ovl(1), &[D]);
        add(&index, &mut model, b"re-added", &[D]);
        check(&model, "re-added");
        index.checkpoint().unwrap();
        check(&model, "flushed, drop still pending");
        index.compact().unwrap();
        assert_eq!(stats(&index).pending_drops, 0);
        check(&model, "compacted: the drop purged");
        // after compaction: drops over the one segment, then over a new overlay too
        drop_handle(&index, &mut model, D);
        drop_handle(&index, &mut model, 5);
        check(&model, "dropped again over the compacted segment");
        add(&index, &mut model, &ovl(2), &[D, 5]);
        remove(&index, &mut model, &seg(3), &[3]);
        drop_handle(&index, &mut model, 100 + 2);
        let s = stats(&index);
        assert!(s.pending_drops == 3 && s.overlay_keys > 0, "{s:?}");
        check(
            &model,
            "drops over a segment and an overlay after compaction",
        );
        index.checkpoint().unwrap();
        check(&model, "flushed");
        index.compact().unwrap();
        check(&model, "compacted again");
    }
}

/// One lane, one worker that parks after its first flush: the next full overlay stays
/// frozen, so batches read active overlay → frozen overlay → segment, with tombstones and
/// re-adds at each level and a drop while it is frozen.
#[test]
fn an_overlay_frozen_between_the_active_one_and_the_segments() {
    let index = Index::new(Config {
        lanes: 1,
        overlay_limit: 8,
        compaction_threads: Some(1),
        ..common::config()
    })
    .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (reports_tx, reports) = mpsc::channel();
    let reports_tx = Mutex::new(reports_tx);
    index.set_listener(Some(on_done(move |r: &JobReport| {
        let _ = reports_tx.lock().unwrap().send(r.clone());
        let _ = gate.lock().unwrap().recv();
    })));
    let mut model = Model::new();
    let k = |i: u32| format!("k{i}").into_bytes();
    let n = |i: u32| format!("n{i}").into_bytes();
    for i in 0..8 {
        add(&index, &mut model, &k(i), &[1, 10 + i]);
    }
    assert_eq!(reports.recv_timeout(HANG_GUARD).unwrap().flushes, 1);
    // eight keys into the overlay, which freezes (its flush is queued behind the parked
    // worker): a tombstone and a re-add over the segment, new keys
    remove(&index, &mut model, &k(0), &[1, 10]);
    add(&index, &mut model, &k(1), &[2]);
    for i in 0..6 {
        add(&index, &mut model, &n(i), &[20 + i]);
    }
    // three over the frozen overlay: over a key in all three, a tombstone, a new key
    add(&index, &mut model, &k(1), &[3]);
    remove(&index, &mut model, &n(0), &[20]);
    add(&index, &mut model, b"m", &[1]);
    let s = stats(&index);
    assert_eq!(
        (s.frozen_overlays, s.segments, s.overlay_keys),
        (1, 1, 11),
        "{s:?}"
    );
    let mut keys: Vec<Vec<u8>> = (0..8).map(k).chain((0..6).map(n)).collect();
    keys.extend([b"m".to_vec(), b"absent".to_vec(), Vec::new()]);
    let long: Vec<Vec<u8>> = keys.iter().cycle().take(600).cloned().collect();
    let check = |model: &Model, what: &str| {
        check_batch(&index, model, &keys, what);
        check_batch(&index, model, &long, &format!("{what}, 600 keys"));
    };
    check(&model, "active over frozen over a segment");
    drop_handle(&index, &mut model, 1);
    drop_handle(&index, &mut model, 22);
    assert_eq!(stats(&index).frozen_overlays, 1);
    check(&model, "drops while frozen");
    drop(release);
    index.wait_idle().unwrap();
    assert_eq!(stats(&index).frozen_overlays, 0);
    check(&model, "the frozen overlay flushed");
    index.compact().unwrap();
    check(&model, "compacted");
}

#[test]
fn indexes_never_written() {
    let keys = [b"".to_vec(), b"a".to_vec(), b"a".to_vec(), vec![7; 100]];
    let model = Model::new();
    let fresh = Index::new(common::config()).unwrap();
    check_batch(&fresh, &model, &keys, "fresh");
    check_batch::<&[u8]>(&fresh, &model, &[], "fresh, empty batch");
    fresh.drop_handle(1).unwrap();
    check_batch(&fresh, &model, &keys, "only a drop");
    // written, emptied and compacted away: lanes without segments
    let emptied = Index::new(manual(4)).unwrap();
    emptied.add(b"a", 1).unwrap();
    emptied.checkpoint().unwrap();
    emptied.remove(b"a", 1).unwrap();
    check_batch(&emptied, &model, &keys, "a tombstone over a segment");
    emptied.compact().unwrap();
    check_batch(&emptied, &model, &keys, "emptied and compacted");
    check_batch::<&[u8]>(&emptied, &model, &[], "emptied, empty batch");
}
