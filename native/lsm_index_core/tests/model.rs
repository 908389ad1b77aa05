//! Model-based tests: random operation sequences checked after every step against a plain
//! `HashMap<Vec<u8>, BTreeSet<u32>>` oracle. Configurations are chosen to make flushes,
//! merges, tombstones and dropped-handle purges happen constantly. Indexes made with
//! `count_handles` also have their per-handle key counts checked against the oracle's.
//! Mixed add/remove batches (`edit_many`, `try_edit_many`), `contains` and
//! `fingerprints_of` are checked the same way, through flushes, merges and drops.

mod common;

use lsm_index_core::{Config, Edit, Error, Index, MphKind, PolicyKind, SegmentLayout};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};

type Oracle = HashMap<Vec<u8>, BTreeSet<u32>>;

struct Scenario {
    name: &'static str,
    seed: u64,
    ops: usize,
    keys: u32,
    handles: u32,
    config: Config,
    /// Per-mille of operations that are `drop_handle`.
    drop_permille: u32,
    /// Per-mille of operations that are a full `compact`.
    compact_permille: u32,
    /// Writes go through the non-blocking `try_*` calls first (falling back to the blocking
    /// ones when refused), so refusals must leave nothing behind.
    nonblocking: bool,
}

/// Applies one write the way the scenario says: blocking, or non-blocking with a blocking
/// retry after `Overloaded`.
fn write(index: &Index, nonblocking: bool, add: bool, pairs: &[(Vec<u8>, u32)]) {
    let blocking = |index: &Index| match (add, pairs) {
        (true, [(k, h)]) => index.add(k, *h),
        (false, [(k, h)]) => index.remove(k, *h),
        (true, _) => index.add_many(pairs),
        (false, _) => index.remove_many(pairs),
    };
    if !nonblocking {
        return blocking(index).unwrap();
    }
    let tried = match (add, pairs) {
        (true, [(k, h)]) => index.try_add(k, *h),
        (false, [(k, h)]) => index.try_remove(k, *h),
        (true, _) => index.try_add_many(pairs),
        (false, _) => index.try_remove_many(pairs),
    };
    match tried {
        Err(Error::Overloaded { .. }) => blocking(index).unwrap(),
        other => other.unwrap(),
    }
}

/// Applies a mixed batch the way the scenario says (as [`write`]), and to the oracle.
fn edit(index: &Index, oracle: &mut Oracle, nonblocking: bool, edits: &[(Vec<u8>, u32, Edit)]) {
    let tried = if nonblocking {
        index.try_edit_many(edits)
    } else {
        index.edit_many(edits)
    };
    match tried {
        Err(Error::Overloaded { .. }) if nonblocking => index.edit_many(edits).unwrap(),
        other => other.unwrap(),
    }
    for (k, h, e) in edits {
        let set = oracle.entry(k.clone()).or_default();
        match e {
            Edit::Add => set.insert(*h),
            Edit::Remove => set.remove(h),
        };
    }
}

/// `contains` for `key`'s handles and for `absent` (not in its set), against the oracle.
fn check_contains(index: &Index, oracle: &Oracle, key: &[u8], absent: u32, what: &str) {
    let want = expect(oracle, key);
    for &h in &want {
        assert!(index.contains(key, h).unwrap(), "{what}: {key:?} holds {h}");
    }
    if !want.contains(&absent) {
        assert!(
            !index.contains(key, absent).unwrap(),
            "{what}: {key:?} lacks {absent}"
        );
    }
}

/// `fingerprints_of(h)` against the fingerprints of the oracle's keys holding `h`.
fn check_fingerprints(index: &Index, oracle: &Oracle, h: u32, what: &str) {
    let mut want: Vec<u64> = oracle
        .iter()
        .filter(|(_, set)| set.contains(&h))
        .map(|(k, _)| index.fingerprint(k))
        .collect();
    want.sort_unstable();
    assert_eq!(
        index.fingerprints_of(h).unwrap(),
        want,
        "{what}: fingerprints of {h}"
    );
}

fn key_bytes(i: u32) -> Vec<u8> {
    match i % 5 {
        0 => Vec::new().into_iter().chain(i.to_be_bytes()).collect(), // binary
        1 => format!("user_id={i}").into_bytes(),
        2 => i.to_le_bytes()[..(i as usize % 4) + 1].to_vec(), // short, including 1 byte
        _ => format!("{i:x}-{}", "v".repeat(i as usize % 40)).into_bytes(),
    }
}

fn handle(rng: &mut StdRng, n: u32) -> u32 {
    // Mostly small ids; some near u32::MAX to exercise the pooled (non-inline) encoding.
    if rng.gen_ratio(1, 50) {
        u32::MAX - rng.gen_range(0..n)
    } else {
        rng.gen_range(0..n)
    }
}

fn expect(oracle: &Oracle, key: &[u8]) -> Vec<u32> {
    oracle
        .get(key)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

fn live(oracle: &Oracle) -> u64 {
    oracle.values().filter(|s| !s.is_empty()).count() as u64
}

/// How many of the oracle's keys hold each handle.
fn counts(oracle: &Oracle) -> BTreeMap<u32, u64> {
    let mut counts = BTreeMap::new();
    for &h in oracle.values().flatten() {
        *counts.entry(h).or_default() += 1;
    }
    counts
}

/// With `count_handles`: every handle's count, the distinct handles and their list, against
/// the oracle's (and `extra` handles, usually counted 0).
fn check_counts(index: &Index, oracle: &Oracle, extra: &[u32], step: usize, name: &str) {
    if !index.config().count_handles {
        return;
    }
    let want = counts(oracle);
    let handles: Vec<u32> = want.keys().copied().collect();
    assert_eq!(
        index.handles().unwrap(),
        handles,
        "{name} step {step}: handles"
    );
    assert_eq!(
        index.distinct_handles().unwrap(),
        handles.len() as u64,
        "{name} step {step}: distinct handles"
    );
    for (&h, &n) in &want {
        assert_eq!(
            index.handle_count(h).unwrap(),
            n,
            "{name} step {step}: count of {h}"
        );
    }
    check_written(index, oracle, extra, step, name);
}

/// With `count_handles`: the counts of the `written` handles, against the oracle's.
fn check_written(index: &Index, oracle: &Oracle, written: &[u32], step: usize, name: &str) {
    if !index.config().count_handles {
        return;
    }
    for &h in written {
        let n = oracle.values().filter(|s| s.contains(&h)).count() as u64;
        assert_eq!(
            index.handle_count(h).unwrap(),
            n,
            "{name} step {step}: count of {h}"
        );
    }
}

fn check_all(index: &Index, oracle: &Oracle, keys: &[Vec<u8>], step: usize, name: &str) {
    check_counts(index, oracle, &[], step, name);
    let what = format!("{name} step {step}");
    for (i, k) in keys.iter().enumerate() {
        check_contains(index, oracle, k, (i as u32).wrapping_mul(7) % 64, &what);
    }
    // a few handles (each a walk over every key), and one no key holds
    let held: Vec<u32> = counts(oracle).keys().copied().collect();
    for &h in held.iter().skip(step % 5).step_by(5).take(3) {
        check_fingerprints(index, oracle, h, &what);
    }
    check_fingerprints(index, oracle, u32::MAX / 2, &what);
    let st = index.stats().unwrap();
    assert!(
        st.max_lane_segments <= index.config().max_segments as u64,
        "{name} step {step}: a lane over max_segments: {st:?}"
    );
    for k in keys {
        assert_eq!(
            index.lookup(k).unwrap(),
            expect(oracle, k),
            "{name} step {step}: key {k:?}"
        );
    }
    assert_eq!(
        index.len().unwrap(),
        live(oracle),
        "{name} step {step}: len"
    );
}

fn run(s: Scenario) {
    let mut rng = StdRng::seed_from_u64(s.seed);
    let index = Index::new(s.config.clone()).unwrap();
    let mut oracle = Oracle::new();
    let keys: Vec<Vec<u8>> = (0..s.keys).map(key_bytes).collect();
    let full_check = s.keys <= 2_000;
    for step in 0..s.ops {
        let roll = rng.gen_range(0..1000u32);
        if roll < s.drop_permille {
            let h = handle(&mut rng, s.handles);
            index.drop_handle(h).unwrap();
            for set in oracle.values_mut() {
                set.remove(&h);
            }
            if full_check {
                check_all(&index, &oracle, &keys, step, s.name);
            } else {
                check_counts(&index, &oracle, &[h], step, s.name);
                for _ in 0..50 {
                    let k = &keys[rng.gen_range(0..keys.len())];
                    assert_eq!(
                        index.lookup(k).unwrap(),
                        expect(&oracle, k),
                        "{} step {step}",
                        s.name
                    );
                }
            }
        } else if roll < s.drop_permille + s.compact_permille {
            index.compact().unwrap();
            let st = index.stats().unwrap();
            assert_eq!(
                st.pending_drops, 0,
                "{} step {step}: compact purges drops",
                s.name
            );
            assert_eq!(
                st.overlay_keys, 0,
                "{} step {step}: compact empties overlays",
                s.name
            );
            assert!(st.segments <= u64::from(s.config.lanes));
            if full_check {
                check_all(&index, &oracle, &keys, step, s.name);
            }
        } else if roll < 600 {
            // add, sometimes a duplicate of an existing pair
            let k = &keys[rng.gen_range(0..keys.len())];
            let h = match oracle.get(k).and_then(|set| set.iter().next()) {
                Some(&existing) if rng.gen_ratio(1, 10) => existing,
                _ => handle(&mut rng, s.handles),
            };
            write(&index, s.nonblocking, true, &[(k.clone(), h)]);
            oracle.entry(k.clone()).or_default().insert(h);
            if full_check {
                check_written(&index, &oracle, &[h], step, s.name);
            }
            assert_eq!(
                index.lookup(k).unwrap(),
                expect(&oracle, k),
                "{} step {step}: add",
                s.name
            );
        } else if roll < 850 {
            // remove: half the time a pair that exists, else a random (usually absent) one
            let k = &keys[rng.gen_range(0..keys.len())];
            let h = match oracle.get(k).and_then(|set| set.iter().next_back()) {
                Some(&existing) if rng.gen_bool(0.5) => existing,
                _ => handle(&mut rng, s.handles),
            };
            write(&index, s.nonblocking, false, &[(k.clone(), h)]);
            if let Some(set) = oracle.get_mut(k) {
                set.remove(&h);
            }
            if full_check {
                check_written(&index, &oracle, &[h], step, s.name);
            }
            assert_eq!(
                index.lookup(k).unwrap(),
                expect(&oracle, k),
                "{} step {step}: remove",
                s.name
            );
        } else if roll < 900 {
            // batched writes
            let n = rng.gen_range(1..20);
            let pairs: Vec<(Vec<u8>, u32)> = (0..n)
                .map(|_| {
                    (
                        keys[rng.gen_range(0..keys.len())].clone(),
                        handle(&mut rng, s.handles),
                    )
                })
                .collect();
            let mixed = rng.gen_ratio(1, 3);
            if mixed {
                // adds and removes in one batch, some removing what the batch adds
                let mut edits: Vec<(Vec<u8>, u32, Edit)> = Vec::new();
                for (k, h) in &pairs {
                    let e = if rng.gen_bool(0.5) {
                        Edit::Add
                    } else {
                        Edit::Remove
                    };
                    edits.push((k.clone(), *h, e));
                }
                for (k, h) in &pairs {
                    if rng.gen_ratio(1, 4) {
                        edits.push((k.clone(), *h, Edit::Remove));
                    }
                }
                edit(&index, &mut oracle, s.nonblocking, &edits);
            } else if rng.gen_bool(0.5) {
                write(&index, s.nonblocking, true, &pairs);
                for (k, h) in &pairs {
                    oracle.entry(k.clone()).or_default().insert(*h);
                }
            } else {
                write(&index, s.nonblocking, false, &pairs);
                for (k, h) in &pairs {
                    if let Some(set) = oracle.get_mut(k) {
                        set.remove(h);
                    }
                }
            }
            for (k, _) in &pairs {
                assert_eq!(
                    index.lookup(k).unwrap(),
                    expect(&oracle, k),
                    "{} step {step}: batch",
                    s.name
                );
            }
            if full_check {
                let written: Vec<u32> = pairs.iter().map(|&(_, h)| h).collect();
                check_written(&index, &oracle, &written, step, s.name);
            }
        } else if roll < 950 {
            let k = &keys[rng.gen_range(0..keys.len())];
            assert_eq!(
                index.lookup(k).unwrap(),
                expect(&oracle, k),
                "{} step {step}: lookup",
                s.name
            );
            let absent = handle(&mut rng, s.handles);
            check_contains(
                &index,
                &oracle,
                k,
                absent,
                &format!("{} step {step}", s.name),
            );
        } else if roll < 990 {
            let n = rng.gen_range(0..64);
            let batch: Vec<&[u8]> = (0..n)
                .map(|_| keys[rng.gen_range(0..keys.len())].as_slice())
                .collect();
            let got = index.lookup_many(&batch).unwrap();
            assert_eq!(got.len(), batch.len());
            for (i, k) in batch.iter().enumerate() {
                assert_eq!(
                    got.get(i),
                    expect(&oracle, k).as_slice(),
                    "{} step {step}: lookup_many",
                    s.name
                );
            }
        } else {
            assert_eq!(
                index.len().unwrap(),
                live(&oracle),
                "{} step {step}: len",
                s.name
            );
        }
    }
    check_all(&index, &oracle, &keys, s.ops, s.name);
    index.wait_idle().unwrap();
    let st = index.stats().unwrap();
    assert!(
        st.flushes > 0 && st.merges > 0,
        "{}: compaction never ran: {st:?}",
        s.name
    );
    index.compact().unwrap();
    check_all(&index, &oracle, &keys, s.ops, s.name);
}

fn config(lanes: u32, overlay_limit: usize, layout: SegmentLayout, prefilter: bool) -> Config {
    Config {
        lanes,
        overlay_limit,
        layout,
        prefilter,
        ..common::config()
    }
}

/// `config` keeping per-handle key counts.
fn counting(config: Config) -> Config {
    Config {
        count_handles: true,
        ..config
    }
}

#[test]
fn tiny_key_space_constant_compaction() {
    for seed in 0..4 {
        run(Scenario {
            name: "tiny",
            seed,
            ops: 60_000,
            keys: 40,
            handles: 12,
            config: counting(config(2, 4, SegmentLayout::Quotient, true)),
            drop_permille: 8,
            compact_permille: 3,
            nonblocking: seed % 2 == 1,
        });
    }
}

/// `config` with a compaction policy, a segment cap and a size ratio of its own.
fn policy(config: Config, policy: PolicyKind, max_segments: usize, ratio: Option<f64>) -> Config {
    Config {
        policy,
        max_segments,
        size_ratio: ratio,
        ..config
    }
}

/// The other policy and explicit ratios and caps, on indexes that flush and merge all the
/// time: no full `compact` until the end, so every merge `run` requires before it is the
/// policy's; `run` also checks that no lane ever exceeds its cap.
#[test]
fn leveled_and_explicit_ratios_and_caps() {
    let base = || counting(config(2, 8, SegmentLayout::Quotient, true));
    let cases = [
        ("leveled", policy(base(), PolicyKind::Leveled, 4, None)),
        (
            "leveled-ratio-2-cap-6",
            policy(base(), PolicyKind::Leveled, 6, Some(2.0)),
        ),
        (
            "leveled-ratio-8-cap-2",
            policy(base(), PolicyKind::Leveled, 2, Some(8.0)),
        ),
        (
            "triangular-ratio-3-cap-2",
            policy(base(), PolicyKind::Triangular, 2, Some(3.0)),
        ),
        (
            "triangular-ratio-0.5-cap-7",
            policy(base(), PolicyKind::Triangular, 7, Some(0.5)),
        ),
        (
            "triangular-cap-1",
            policy(base(), PolicyKind::Triangular, 1, None),
        ),
    ];
    for (i, (name, config)) in cases.into_iter().enumerate() {
        run(Scenario {
            name,
            seed: 40 + i as u64,
            ops: 30_000,
            keys: 300,
            handles: 20,
            config,
            drop_permille: 4,
            compact_permille: 0,
            nonblocking: i % 2 == 1,
        });
    }
}

#[test]
fn small_key_space_boomphf_without_prefilter() {
    for seed in 10..12 {
        run(Scenario {
            name: "small-boom",
            seed,
            ops: 100_000,
            keys: 1_500,
            handles: 64,
            config: counting(config(4, 32, SegmentLayout::Mph(MphKind::BoomPhf), false)),
            drop_permille: 3,
            compact_permille: 1,
            nonblocking: seed == 11,
        });
    }
}

#[test]
fn medium_key_space_many_lanes() {
    for seed in 20..22 {
        run(Scenario {
            name: "medium",
            seed,
            ops: 150_000,
            keys: 20_000,
            handles: 500,
            config: counting(config(16, 128, SegmentLayout::Mph(MphKind::PtrHash), true)),
            drop_permille: 1,
            compact_permille: 0,
            nonblocking: seed == 21,
        });
    }
}

#[test]
fn large_key_space_default_lanes() {
    run(Scenario {
        name: "large",
        seed: 30,
        ops: 300_000,
        keys: 200_000,
        handles: 100_000,
        config: config(64, 512, SegmentLayout::Quotient, true),
        drop_permille: 0,
        compact_permille: 0,
        nonblocking: false,
    });
}

/// Regression guard for the drop/re-add rule: a handle added again after `drop_handle` is
/// live, while the copies that predate the drop stay dead, across flushes and merges.
#[test]
fn re_adding_a_dropped_handle_revives_only_new_pairs() {
    let index = Index::new(config(1, 2, SegmentLayout::Quotient, true)).unwrap();
    for i in 0..10u32 {
        index.add(format!("k{i}").as_bytes(), 5).unwrap();
    }
    index.drop_handle(5).unwrap();
    index.add(b"k3", 5).unwrap();
    index.add(b"new", 5).unwrap();
    for i in 0..10u32 {
        let want: Vec<u32> = if i == 3 { vec![5] } else { vec![] };
        assert_eq!(
            index.lookup(format!("k{i}").as_bytes()).unwrap(),
            want,
            "k{i}"
        );
    }
    assert_eq!(index.lookup(b"new").unwrap(), vec![5]);
    assert_eq!(index.len().unwrap(), 2);
    index.compact().unwrap();
    assert_eq!(index.lookup(b"k3").unwrap(), vec![5]);
    assert_eq!(index.lookup(b"k4").unwrap(), Vec::<u32>::new());
    assert_eq!(index.len().unwrap(), 2);
    assert_eq!(index.stats().unwrap().pending_drops, 0);
}

/// Readers of every lane, single and batched, while one writer adds and removes: every
/// answer is a state the key really had. The writer keeps going until each reader has made
/// two passes since it began, so at least one whole pass of each overlapped the writes.
#[test]
fn concurrent_readers_see_only_valid_states_while_one_writer_churns() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const READERS: usize = 2;
    let index = Arc::new(Index::new(config(8, 64, SegmentLayout::Quotient, true)).unwrap());
    // Key i only ever holds {i} or {i, i + 1_000_000}: any other answer is a torn read.
    for i in 0..2_000u32 {
        index.add(&i.to_le_bytes(), i).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let passes: Arc<[AtomicU64; READERS]> = Arc::new(Default::default());
    let readers: Vec<_> = (0..READERS)
        .map(|r| {
            let (index, stop, passes) = (index.clone(), stop.clone(), passes.clone());
            std::thread::spawn(move || {
                let valid = |i: u32, got: &[u32]| got == [i] || got == [i, i + 1_000_000];
                while !stop.load(Ordering::Relaxed) {
                    for i in (0..2_000u32).step_by(7) {
                        let got = index.lookup(&i.to_le_bytes()).unwrap();
                        assert!(valid(i, &got), "key {i}: {got:?}");
                    }
                    // Batches span many lanes and lock them together.
                    let keys: Vec<[u8; 4]> =
                        (0..2_000u32).step_by(3).map(u32::to_le_bytes).collect();
                    let batch = index.lookup_many(&keys).unwrap();
                    for (k, got) in keys.iter().zip(batch.iter()) {
                        let i = u32::from_le_bytes(*k);
                        assert!(valid(i, got), "batch key {i}: {got:?}");
                    }
                    passes[r].fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect();
    let started: Vec<u64> = passes.iter().map(|p| p.load(Ordering::SeqCst)).collect();
    let overlapped = || {
        passes
            .iter()
            .zip(&started)
            .all(|(p, &s)| p.load(Ordering::SeqCst) >= s + 2)
    };
    let mut rng = StdRng::seed_from_u64(7);
    let mut round = 0u64;
    // (a reader that failed stops counting: its join below reports it)
    while (round < 100_000 || !overlapped()) && !readers.iter().any(|r| r.is_finished()) {
        let i = rng.gen_range(0..2_000u32);
        let pair = [(i.to_le_bytes(), i + 1_000_000)];
        match (rng.gen_bool(0.5), round.is_multiple_of(2)) {
            (true, true) => index.add(&pair[0].0, pair[0].1).unwrap(),
            (false, true) => index.remove(&pair[0].0, pair[0].1).unwrap(),
            (true, false) => index.add_many(&pair).unwrap(),
            (false, false) => index.remove_many(&pair).unwrap(),
        }
        round += 1;
    }
    stop.store(true, Ordering::Relaxed);
    for r in readers {
        r.join().unwrap();
    }
}

/// A mixed batch refused for a full lane writes nothing (neither its adds nor its removes),
/// and the same batch goes through once compaction catches up: `try_edit_many` is all or
/// nothing on admission, as `try_add_many` is.
#[test]
fn a_refused_mixed_batch_writes_nothing() {
    use std::sync::{mpsc, Mutex};
    let index = Index::new(Config {
        lanes: 1,
        overlay_limit: 100,
        max_overlay_keys: Some(200),
        compaction_threads: Some(1),
        ..common::config()
    })
    .unwrap();
    // the worker parks after its first job: the lane fills up behind it
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (done_tx, done) = mpsc::channel::<()>();
    let done_tx = Mutex::new(done_tx);
    index.set_listener(Some(lsm_index_core::on_done(move |_| {
        let _ = done_tx.lock().unwrap().send(());
        let _ = gate.lock().unwrap().recv();
    })));
    let key = |i: u32| format!("k{i}").into_bytes();
    for i in 0..100 {
        index.try_add(&key(i), 1).unwrap();
    }
    done.recv().unwrap();
    for i in 100..400 {
        index.try_add(&key(i), 1).unwrap();
    }
    let batch = vec![
        (key(5), 1, Edit::Remove),
        (b"new".to_vec(), 2, Edit::Add),
        (key(6), 3, Edit::Add),
        (key(6), 1, Edit::Remove),
    ];
    assert!(matches!(
        index.try_edit_many(&batch),
        Err(Error::Overloaded { lane: 0 })
    ));
    assert_eq!(index.lookup(&key(5)).unwrap(), vec![1], "all or nothing");
    assert_eq!(index.lookup(&key(6)).unwrap(), vec![1]);
    assert!(!index.contains(b"new", 2).unwrap());
    drop(release);
    index.edit_many(&batch).unwrap();
    assert!(index.lookup(&key(5)).unwrap().is_empty());
    assert_eq!(index.lookup(&key(6)).unwrap(), vec![3]);
    assert!(index.contains(b"new", 2).unwrap());
    index.wait_idle().unwrap();
    assert_eq!(index.len().unwrap(), 400, "k5 went, \"new\" came");
}

/// `contains` and `fingerprints_of` read every structure a lookup reads: overlays, segments
/// after a flush and a full compaction, and a handle dropped and then re-added to one key.
#[test]
fn contains_and_fingerprints_through_flushes_and_drops() {
    let index = Index::new(config(2, 4, SegmentLayout::Quotient, true)).unwrap();
    let key = |i: u32| format!("k{i}").into_bytes();
    // key i holds {i % 3, 100 + i}; 1,000 handles on one key: a pooled list
    for i in 0..50u32 {
        index
            .add_many(&[(key(i), i % 3), (key(i), 100 + i)])
            .unwrap();
    }
    let wide: Vec<(Vec<u8>, u32)> = (0..1000).map(|h| (b"wide".to_vec(), h * 2)).collect();
    index.add_many(&wide).unwrap();
    let fps = |h: u32| -> Vec<u64> {
        let mut v: Vec<u64> = (0..50u32)
            .filter(|i| i % 3 == h)
            .map(|i| index.fingerprint(&key(i)))
            .chain(h.is_multiple_of(2).then(|| index.fingerprint(b"wide")))
            .collect();
        v.sort_unstable();
        v
    };
    let check = |dropped: bool| {
        for i in 0..50u32 {
            assert_eq!(
                index.contains(&key(i), i % 3).unwrap(),
                !(dropped && i % 3 == 1 && i != 7),
                "k{i}"
            );
            assert!(index.contains(&key(i), 100 + i).unwrap());
            assert!(!index.contains(&key(i), 101 + i).unwrap());
        }
        assert!(index.contains(b"wide", 1998).unwrap() && !index.contains(b"wide", 1999).unwrap());
        assert!(!index.contains(b"absent", 0).unwrap());
        assert_eq!(index.fingerprints_of(0).unwrap(), fps(0));
        let one = if dropped {
            vec![index.fingerprint(&key(7))]
        } else {
            fps(1)
        };
        assert_eq!(index.fingerprints_of(1).unwrap(), one);
        assert!(index.fingerprints_of(5000).unwrap().is_empty());
    };
    check(false);
    index.wait_idle().unwrap();
    check(false);
    index.drop_handle(1).unwrap();
    index.add(&key(7), 1).unwrap();
    check(true);
    index.wait_idle().unwrap();
    check(true);
    index.compact().unwrap();
    check(true);
}
