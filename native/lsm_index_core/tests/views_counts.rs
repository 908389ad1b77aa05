//! Subquery views' shared counts (`router::views::Counts`) against a multiset per view:
//! counts, NULLs, totals, distinct values, crossings and underflows batch by batch, over a
//! view index that flushes and merges all the time; and all-or-nothing batches.

mod common;

use common::views::{bytes, config, key};
use lsm_index_core::predicate::Value;
use lsm_index_core::router::views::{
    project, Attachment, Counts, Delta, MoveKind, MoveValues, Moves, Polarity, Projected, Seed,
    ViewKey, Views,
};
use lsm_index_core::Config;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// (view, value or NULL) ⇒ count.
type Multisets = BTreeMap<(u32, Option<u8>), i64>;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Batches of deltas (duplicates, cancelling pairs, underflows) and clears, on 3 views
    /// over 6 values: counts, NULLs, totals, distinct values, emptiness, `counts_of` and the
    /// reported crossings equal the model's, batch by batch.
    #[test]
    fn counts_follow_a_multiset_model(
        ops in prop::collection::vec(
            prop_oneof![
                9 => prop::collection::vec((0u32..3, prop::option::weighted(0.8, 0u8..6), -2i64..4), 1..12)
                    .prop_map(Some),
                1 => Just(None),
            ],
            1..40,
        ),
        clear_view in 0u32..3,
    ) {
        let mut counts = Counts::new(config()).unwrap();
        let mut model = Multisets::new();
        let mut underflows = 0;
        for (step, op) in ops.into_iter().enumerate() {
            let Some(batch) = op else {
                counts.clear(clear_view).unwrap();
                model.retain(|&(v, _), _| v != clear_view);
                continue;
            };
            let keys: Vec<Projected> = batch.iter().map(|&(_, v, _)| key(v)).collect();
            let deltas: Vec<Delta> = batch
                .iter()
                .zip(&keys)
                .map(|(&(view, _, by), k)| Delta { view, value: bytes(k), by })
                .collect();
            // the model: net per (view, value), clamped at zero
            let mut net: BTreeMap<(u32, Option<u8>), i64> = BTreeMap::new();
            for &(view, v, by) in &batch {
                *net.entry((view, v)).or_default() += by;
            }
            let mut crossings = BTreeSet::new();
            for (&(view, v), &n) in &net {
                if n == 0 {
                    continue;
                }
                let c = model.entry((view, v)).or_default();
                let after = *c + n;
                underflows += u64::from(after < 0);
                if v.is_some() && (*c == 0) != (after <= 0) {
                    crossings.insert((view, v, after > 0));
                }
                *c = after.max(0);
            }
            model.retain(|_, c| *c != 0);
            let applied = counts.apply(&deltas, step % 2 == 0).unwrap();
            let got: BTreeSet<(u32, Option<u8>, bool)> = applied
                .values
                .iter()
                .filter(|t| t.entered() || t.left())
                .map(|t| (t.view, batch[t.delta as usize].1, t.entered()))
                .collect();
            prop_assert_eq!(got, crossings, "step {}", step);
            prop_assert_eq!(counts.underflows(), underflows);
            for view in 0..3u32 {
                let mut by_fp = Vec::new();
                for v in 0..6u8 {
                    let want = model.get(&(view, Some(v))).copied().unwrap_or(0) as u64;
                    let k = key(Some(v));
                    prop_assert_eq!(counts.count(view, bytes(&k).unwrap()).unwrap(), want);
                    if want > 0 {
                        by_fp.push((counts.fingerprint(bytes(&k).unwrap()), want));
                    }
                }
                by_fp.sort_unstable();
                prop_assert_eq!(counts.counts_of(view).unwrap(), by_fp.clone());
                prop_assert_eq!(counts.distinct(view).unwrap(), by_fp.len() as u64);
                let nulls = model.get(&(view, None)).copied().unwrap_or(0) as u64;
                prop_assert_eq!(counts.nulls(view), nulls);
                let total: u64 = by_fp.iter().map(|&(_, c)| c).sum();
                prop_assert_eq!(counts.total(view), total);
                prop_assert_eq!(counts.is_empty(view), total == 0 && nulls == 0);
            }
        }
    }
}

/// Regression guard: a delete of a value a view never held (its count stays 0) must not put
/// the value in the view index (it once added the pair: a count of 1 from nothing).
#[test]
fn a_delete_of_an_absent_value_adds_nothing() {
    let mut counts = Counts::new(config()).unwrap();
    let x = key(Some(0));
    let applied = counts
        .apply(
            &[Delta {
                view: 0,
                value: bytes(&x),
                by: -1,
            }],
            true,
        )
        .unwrap();
    assert_eq!(applied.values.len(), 1, "reported for diffed shapes");
    assert_eq!(
        (applied.values[0].after, applied.values[0].shortfall),
        (0, 1)
    );
    assert_eq!(counts.count(0, bytes(&x).unwrap()).unwrap(), 0);
    assert!(counts.index().is_empty().unwrap());
    assert_eq!((counts.underflows(), counts.distinct(0).unwrap()), (1, 0));
}

/// A batch the view index refuses (a full lane, compaction parked) changes nothing — not its
/// values, not its NULLs — and reports no move; the same batch applies once there is room.
#[test]
fn a_refused_batch_changes_no_view() {
    use lsm_index_core::JobReport;
    use std::sync::{mpsc, Mutex};
    let mut views = Views::new(Config {
        lanes: 1,
        overlay_limit: 100,
        max_overlay_keys: Some(200),
        compaction_threads: Some(1),
        ..common::config()
    })
    .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (done_tx, done) = mpsc::channel::<()>();
    let done_tx = Mutex::new(done_tx);
    views
        .counts()
        .index()
        .set_listener(Some(lsm_index_core::on_done(move |_: &JobReport| {
            let _ = done_tx.lock().unwrap().send(());
            let _ = gate.lock().unwrap().recv();
        })));
    let vk = ViewKey::of(0, &[0], "");
    let negative = Attachment {
        shape: 9,
        position: 0,
        polarity: Polarity::Negative,
    };
    // 100 values (one flush, then the worker parks), 300 more fill the lane
    let rows: Vec<Projected> = (0..400).map(|i| project(&[Some(&Value::Int(i))])).collect();
    let v = views
        .attach(vk, 1, negative, Seed::Rows(&rows[..100]), true)
        .unwrap();
    done.recv().unwrap();
    // one by one: 100 freeze again (queued behind the parked worker), 200 fill the overlay
    let mut moves = Moves::default();
    for k in &rows[100..] {
        let one = [Delta {
            view: v,
            value: bytes(k),
            by: 1,
        }];
        views.apply(&one, false, &mut moves).unwrap();
    }
    let (new, old) = (project(&[Some(&Value::Int(-1))]), rows[0].clone());
    let batch = [
        Delta {
            view: v,
            value: bytes(&new),
            by: 1,
        },
        Delta {
            view: v,
            value: bytes(&old),
            by: -1,
        },
        Delta {
            view: v,
            value: None,
            by: 1,
        },
    ];
    moves.clear();
    assert!(matches!(
        views.apply(&batch, false, &mut moves),
        Err(lsm_index_core::Error::Overloaded { .. })
    ));
    assert!(moves.is_empty());
    let c = views.counts();
    assert_eq!(
        (c.nulls(v), c.total(v), c.distinct(v).unwrap()),
        (0, 400, 400)
    );
    assert_eq!(c.count(v, bytes(&old).unwrap()).unwrap(), 1);
    assert_eq!(c.count(v, bytes(&new).unwrap()).unwrap(), 0);
    drop(release);
    views.apply(&batch, true, &mut moves).unwrap();
    // a NULL appeared under NOT IN: everything moves out
    let got: Vec<(u32, MoveKind, &MoveValues)> =
        moves.iter().map(|(m, l)| (m.shape, m.kind, l)).collect();
    assert_eq!(got, vec![(9, MoveKind::Out, &MoveValues::All)]);
    let c = views.counts();
    assert_eq!(
        (c.nulls(v), c.total(v), c.distinct(v).unwrap()),
        (1, 400, 400)
    );
}
