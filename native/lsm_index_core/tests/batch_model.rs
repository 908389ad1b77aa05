//! Batched lookups against a model: random sequences of writes (single and batched adds and
//! removes), `drop_handle`, checkpoints (every overlay flushed into a segment, merged as the
//! policy says: partial compaction), full compactions, settles and reopens, interleaved with
//! `lookup_many` batches drawn from live keys, tombstoned keys, keys that held a dropped
//! handle, keys never written and repeats of the batch's own keys, and sweeps past the
//! 256-key chunk. Every batch is checked against a `BTreeMap` model and against `lookup` key
//! by key (`common::batch`), through the public API only.
//!
//! Indexes have 1, 2 or 64 lanes, overlays of 2 or 5 keys (frozen and flushed in the
//! background while the sequence runs) or of 2^20 (flushed only by checkpoints, so the
//! layout is the sequence's alone), 2 to 4 segments a lane, both policies, every segment
//! layout with and without the prefilter; a quarter are persistent. The run counts the
//! layouts its batches met (`Stats` after each batch) and fails if several segments in one
//! lane, overlays over segments or pending drops over segments never occurred. Cases come
//! from a fixed seed (`PROPTEST_RNG_SEED` explores others).

mod common;

use common::batch::{check_batch, key, Model};
use lsm_index_core::{Config, Index, MphKind, PolicyKind, SegmentLayout};
use proptest::prelude::*;
use proptest::test_runner::{RngSeed, TestCaseError, TestRunner};
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::sync::Arc;

/// Keys `0..WRITTEN` are written; `WRITTEN..WRITTEN + NEVER` never are.
const WRITTEN: u32 = 40;
const NEVER: u32 = 8;
/// Cases of the model run, and the seed they are drawn from unless `PROPTEST_RNG_SEED` is set.
const CASES: u32 = 128;
const SEED: u64 = 25;

/// Mostly a few small handles (keys share them, removes hit), some at the inline/pool
/// boundary of a segment's value word (2^31) and next to `u32::MAX`.
fn handle() -> impl Strategy<Value = u32> {
    prop_oneof![
        8 => 0u32..6,
        1 => prop::sample::select(vec![(1 << 31) - 1, 1 << 31, u32::MAX - 1, u32::MAX]),
    ]
}

/// Which key a batch asks for, resolved against the model when the batch runs (`n` is taken
/// modulo the candidates; an empty category falls back to any key).
#[derive(Clone, Debug)]
enum Pick {
    Any(u32),
    /// A key with a non-empty set.
    Live(usize),
    /// A key written and now empty: a tombstone (or nothing at all after a bottom merge).
    Tombstoned(usize),
    /// A key that held a handle when it was dropped.
    Dropped(usize),
    /// A key never written.
    Never(u32),
    /// A key already in this batch: a duplicate.
    Again(usize),
}

#[derive(Clone, Debug)]
enum Op {
    Add(u32, u32),
    AddMany(Vec<(u32, u32)>),
    Remove(u32, u32),
    RemoveMany(Vec<(u32, u32)>),
    /// Removes the key's `n`-th handle, or (`true`) its whole set in one batch.
    RemoveHeld(u32, usize, bool),
    Drop(u32),
    Checkpoint,
    Compact,
    Settle,
    /// Persistent indexes only: `close` and open, or `flush`, let go and open (log replay).
    Reopen(bool),
    Lookup(Vec<Pick>),
    /// `n` keys cycling through the whole key space from `start`: chunks of 256 with
    /// duplicates on both sides of each boundary.
    Sweep(usize, u32),
}

#[derive(Clone, Debug)]
struct Setup {
    lanes: u32,
    overlay_limit: usize,
    max_segments: usize,
    policy: PolicyKind,
    layout: SegmentLayout,
    prefilter: bool,
    persistent: bool,
}

impl Setup {
    fn config(&self) -> Config {
        Config {
            lanes: self.lanes,
            overlay_limit: self.overlay_limit,
            max_segments: self.max_segments,
            policy: self.policy,
            layout: self.layout,
            prefilter: self.prefilter,
            ..common::config()
        }
    }
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        prop::sample::select(vec![1u32, 2, 64]),
        prop::sample::select(vec![2usize, 5, 1 << 20]),
        2usize..=4,
        prop::sample::select(vec![PolicyKind::Triangular, PolicyKind::Leveled]),
        prop::sample::select(vec![
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ]),
        any::<bool>(),
        prop::bool::weighted(0.25),
    )
        .prop_map(
            |(lanes, overlay_limit, max_segments, policy, layout, prefilter, persistent)| Setup {
                lanes,
                overlay_limit,
                max_segments,
                policy,
                layout,
                prefilter,
                persistent,
            },
        )
}

fn pick() -> impl Strategy<Value = Pick> {
    prop_oneof![
        2 => (0..WRITTEN + NEVER).prop_map(Pick::Any),
        3 => any::<usize>().prop_map(Pick::Live),
        2 => any::<usize>().prop_map(Pick::Tombstoned),
        2 => any::<usize>().prop_map(Pick::Dropped),
        1 => (WRITTEN..WRITTEN + NEVER).prop_map(Pick::Never),
        2 => any::<usize>().prop_map(Pick::Again),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let pairs = || prop::collection::vec((0..WRITTEN, handle()), 1..24);
    prop_oneof![
        10 => (0..WRITTEN, handle()).prop_map(|(k, h)| Op::Add(k, h)),
        4 => pairs().prop_map(Op::AddMany),
        2 => (0..WRITTEN, handle()).prop_map(|(k, h)| Op::Remove(k, h)),
        2 => pairs().prop_map(Op::RemoveMany),
        5 => (0..WRITTEN, any::<usize>(), any::<bool>())
            .prop_map(|(k, n, all)| Op::RemoveHeld(k, n, all)),
        2 => handle().prop_map(Op::Drop),
        4 => Just(Op::Checkpoint),
        1 => Just(Op::Compact),
        1 => Just(Op::Settle),
        1 => any::<bool>().prop_map(Op::Reopen),
        7 => prop::collection::vec(pick(), 0..24).prop_map(Op::Lookup),
        1 => (prop::sample::select(vec![255usize, 256, 257, 600]), 0..WRITTEN + NEVER)
            .prop_map(|(n, start)| Op::Sweep(n, start)),
    ]
}

/// Layouts the checked batches met, summed over every case (`Stats` right after a batch).
#[derive(Debug, Default)]
struct Seen {
    batches: u64,
    /// Some lane held two or more segments; three or more.
    multi_segment: u64,
    deep: u64,
    /// Overlay entries (tombstones included) beside segments.
    overlays_over_segments: u64,
    /// Dropped handles not yet purged, beside segments.
    drops_over_segments: u64,
    /// An overlay frozen and not yet flushed (timing decides: reported, not required).
    frozen: u64,
    reopens: u64,
}

impl Seen {
    fn observe(&mut self, index: &Index) {
        let s = index.stats().unwrap();
        self.batches += 1;
        self.multi_segment += u64::from(s.max_lane_segments >= 2);
        self.deep += u64::from(s.max_lane_segments >= 3);
        self.overlays_over_segments += u64::from(s.overlay_keys > 0 && s.segments > 0);
        self.drops_over_segments += u64::from(s.pending_drops > 0 && s.segments > 0);
        self.frozen += u64::from(s.frozen_overlays > 0);
    }
}

/// The model and what the batches draw from.
#[derive(Default)]
struct State {
    model: Model,
    written: BTreeSet<Vec<u8>>,
    dropped: BTreeSet<Vec<u8>>,
}

impl State {
    fn add(&mut self, k: &[u8], h: u32) {
        self.written.insert(k.to_vec());
        self.model.entry(k.to_vec()).or_default().insert(h);
    }

    fn remove(&mut self, k: &[u8], h: u32) {
        self.written.insert(k.to_vec());
        if let Some(set) = self.model.get_mut(k) {
            set.remove(&h);
        }
    }

    fn live(&self, k: &[u8]) -> bool {
        self.model.get(k).is_some_and(|s| !s.is_empty())
    }

    /// The batch's keys.
    fn resolve(&self, picks: &[Pick]) -> Vec<Vec<u8>> {
        let nth = |keys: Vec<&Vec<u8>>, n: usize, fallback: u32| -> Vec<u8> {
            match keys.len() {
                0 => key(fallback % (WRITTEN + NEVER)),
                len => keys[n % len].clone(),
            }
        };
        let mut out: Vec<Vec<u8>> = Vec::with_capacity(picks.len());
        for (i, p) in picks.iter().enumerate() {
            let fallback = i as u32 * 7;
            let k = match *p {
                Pick::Any(k) | Pick::Never(k) => key(k),
                Pick::Live(n) => nth(
                    self.written.iter().filter(|k| self.live(k)).collect(),
                    n,
                    fallback,
                ),
                Pick::Tombstoned(n) => nth(
                    self.written.iter().filter(|k| !self.live(k)).collect(),
                    n,
                    fallback,
                ),
                Pick::Dropped(n) => nth(self.dropped.iter().collect(), n, fallback),
                Pick::Again(n) => nth(out.iter().collect(), n, fallback),
            };
            out.push(k);
        }
        out
    }
}

/// Every key of the key space, then again in reverse: each key twice in one batch.
fn every_key() -> Vec<Vec<u8>> {
    let all = 0..WRITTEN + NEVER;
    all.clone().chain(all.rev()).map(key).collect()
}

fn pairs(items: &[(u32, u32)]) -> Vec<(Vec<u8>, u32)> {
    items.iter().map(|&(k, h)| (key(k), h)).collect()
}

fn run(setup: &Setup, ops: &[Op], seen: &mut Seen) {
    let dir = setup.persistent.then(|| tempfile::tempdir().unwrap());
    let open = || match &dir {
        Some(d) => Index::open(d.path(), setup.config()).unwrap(),
        None => Index::new(setup.config()).unwrap(),
    };
    let mut index: Arc<Index> = open();
    let mut st = State::default();
    for (step, op) in ops.iter().enumerate() {
        let what = format!("step {step} after {op:?}");
        let mut sweep = true;
        match op {
            Op::Add(k, h) => {
                index.add(&key(*k), *h).unwrap();
                st.add(&key(*k), *h);
            }
            Op::AddMany(items) => {
                index.add_many(&pairs(items)).unwrap();
                items.iter().for_each(|&(k, h)| st.add(&key(k), h));
            }
            Op::Remove(k, h) => {
                index.remove(&key(*k), *h).unwrap();
                st.remove(&key(*k), *h);
            }
            Op::RemoveMany(items) => {
                index.remove_many(&pairs(items)).unwrap();
                items.iter().for_each(|&(k, h)| st.remove(&key(k), h));
            }
            Op::RemoveHeld(k, n, all) => {
                let k = key(*k);
                let held: Vec<u32> = st.model.get(&k).into_iter().flatten().copied().collect();
                let gone: Vec<u32> = match (held.len(), all) {
                    (0, _) => Vec::new(),
                    (_, true) => held,
                    (len, false) => vec![held[n % len]],
                };
                let items: Vec<(Vec<u8>, u32)> = gone.iter().map(|&h| (k.clone(), h)).collect();
                index.remove_many(&items).unwrap();
                gone.iter().for_each(|&h| st.remove(&k, h));
            }
            Op::Drop(h) => {
                index.drop_handle(*h).unwrap();
                for (k, set) in st.model.iter_mut() {
                    if set.remove(h) {
                        st.dropped.insert(k.clone());
                    }
                }
            }
            Op::Checkpoint => index.checkpoint().unwrap(),
            Op::Compact => {
                index.compact().unwrap();
                let s = index.stats().unwrap();
                assert_eq!(s.pending_drops, 0, "{what}: compact purges drops");
                assert!(
                    s.max_lane_segments <= 1,
                    "{what}: one segment a lane: {s:?}"
                );
            }
            Op::Settle => index.wait_idle().unwrap(),
            Op::Reopen(close) => {
                if !setup.persistent {
                    continue;
                }
                if *close {
                    index.close().unwrap();
                    drop(index);
                } else {
                    index.flush().unwrap();
                    common::release(index);
                }
                index = open();
                seen.reopens += 1;
            }
            Op::Lookup(picks) => {
                check_batch(&index, &st.model, &st.resolve(picks), &what);
                seen.observe(&index);
                sweep = false;
            }
            Op::Sweep(n, start) => {
                let space = WRITTEN + NEVER;
                let keys: Vec<Vec<u8>> = (0..*n as u32).map(|i| key((start + i) % space)).collect();
                check_batch(&index, &st.model, &keys, &what);
                seen.observe(&index);
                sweep = false;
            }
        }
        if sweep
            && matches!(
                op,
                Op::Drop(_) | Op::Checkpoint | Op::Compact | Op::Settle | Op::Reopen(_)
            )
        {
            check_batch(
                &index,
                &st.model,
                &every_key(),
                &format!("{what} (every key)"),
            );
            seen.observe(&index);
        }
        let s = index.stats().unwrap();
        assert!(
            s.max_lane_segments <= setup.max_segments as u64,
            "{what}: over the cap: {s:?}"
        );
    }
    check_batch(&index, &st.model, &every_key(), "at the end");
    index.compact().unwrap();
    check_batch(&index, &st.model, &every_key(), "at the end, compacted");
    if setup.persistent {
        index.close().unwrap();
        drop(index);
        check_batch(&open(), &st.model, &every_key(), "at the end, reopened");
    }
}

#[test]
fn batches_agree_with_the_model_and_single_lookups() {
    let mut config = ProptestConfig {
        cases: CASES,
        source_file: Some(file!()),
        ..ProptestConfig::default()
    };
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(SEED);
    }
    let seen = RefCell::new(Seen::default());
    let strategy = (setup(), prop::collection::vec(op(), 1..80));
    TestRunner::new(config)
        .run(&strategy, |(setup, ops)| {
            run(&setup, &ops, &mut seen.borrow_mut());
            Ok::<(), TestCaseError>(())
        })
        .unwrap();
    let seen = seen.into_inner();
    println!("layouts the batches met: {seen:?}");
    assert!(
        seen.multi_segment > 0 && seen.deep > 0,
        "no lane ever held several segments: {seen:?}"
    );
    assert!(
        seen.overlays_over_segments > 0,
        "never overlays over segments: {seen:?}"
    );
    assert!(
        seen.drops_over_segments > 0,
        "never a pending drop over segments: {seen:?}"
    );
    assert!(seen.reopens > 0, "never reopened: {seen:?}");
}
