//! Subquery views' storage (`router::views`) against plain models: the shared counts against
//! a multiset per view, and every attached shape's view, membership and moves against its
//! own ℤ-multiset (snapshot + stream) with plan §2.3's rules written out again here. The view
//! index flushes and merges all the time (2 lanes, 4 keys an overlay).

mod common;

use lsm_index_core::predicate::Value;
use lsm_index_core::router::views::{
    project, Attachment, Counts, Delta, MoveKind, MoveValue, MoveValues, Moves, Polarity,
    Projected, Seed, ViewKey, Views,
};
use lsm_index_core::Config;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A view index that flushes and merges constantly.
fn config() -> Config {
    Config {
        lanes: 2,
        overlay_limit: 4,
        ..common::config()
    }
}

/// The value key of integer `v`, or NULL.
fn key(v: Option<u8>) -> Projected {
    match v {
        Some(v) => project(&[Some(&Value::Int(i64::from(v)))]),
        None => Projected::Null,
    }
}

fn bytes(p: &Projected) -> Option<&[u8]> {
    match p {
        Projected::Key(k) => Some(&k[..]),
        Projected::Null => None,
    }
}

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

/// One attached shape in the model: its polarity and its own multiset (snapshot + stream).
struct ModelShape {
    polarity: Polarity,
    rows: HashMap<Option<u8>, i64>,
}

impl ModelShape {
    fn present(&self, v: u8) -> bool {
        self.rows.get(&Some(v)).is_some_and(|&c| c > 0)
    }
    fn nulls(&self) -> bool {
        self.rows.get(&None).is_some_and(|&c| c > 0)
    }
    fn empty(&self) -> bool {
        !self.nulls() && (0..6).all(|v| !self.present(v))
    }
}

/// A move as compared: (shape, kind, values: `None` = all, else the values, NULL = `None`).
type Seen = BTreeSet<(u32, MoveKind, Option<BTreeSet<Option<u8>>>)>;

/// Plan §2.3, written out again: the moves of one shape whose view went `before` → `after`.
fn model_moves(
    shape: u32,
    polarity: Polarity,
    before: &ModelShape,
    after: &ModelShape,
    out: &mut Seen,
) {
    let entered: BTreeSet<Option<u8>> = (0..6)
        .filter(|&v| !before.present(v) && after.present(v))
        .map(Some)
        .collect();
    let left: BTreeSet<Option<u8>> = (0..6)
        .filter(|&v| before.present(v) && !after.present(v))
        .map(Some)
        .collect();
    let mut push = |kind, values: BTreeSet<Option<u8>>| {
        if !values.is_empty() {
            out.insert((shape, kind, Some(values)));
        }
    };
    match polarity {
        Polarity::Positive => {
            push(MoveKind::In, entered);
            push(MoveKind::Out, left);
        }
        Polarity::Negative => match (before.nulls(), after.nulls()) {
            (false, true) => {
                out.insert((shape, MoveKind::Out, None));
            }
            (true, false) => {
                out.insert((shape, MoveKind::In, None));
            }
            (true, true) => {}
            (false, false) => {
                let (mut outs, mut ins) = (entered, left);
                if before.empty() && !after.empty() {
                    outs.insert(None);
                }
                if !before.empty() && after.empty() {
                    ins.insert(None);
                }
                push(MoveKind::Out, outs);
                push(MoveKind::In, ins);
            }
        },
    }
}

#[derive(Clone, Debug)]
enum Op {
    /// Attach a new shape: polarity negative?, seed (None: `:current`; Some(rows)).
    Attach(bool, Option<Vec<Option<u8>>>),
    /// Detach the n-th attached shape (mod their number).
    Detach(usize),
    /// A batch of inner changes: insert a row of value v / delete the n-th base row.
    Batch(Vec<Result<Option<u8>, usize>>),
    /// The inner table is truncated.
    Truncate,
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::option::weighted(0.85, 0u8..6);
    prop_oneof![
        2 => (any::<bool>(), prop::option::weighted(0.7, prop::collection::vec(value.clone(), 0..8)))
            .prop_map(|(neg, seed)| Op::Attach(neg, seed)),
        1 => (0usize..64).prop_map(Op::Detach),
        8 => prop::collection::vec(
            prop_oneof![value.prop_map(Ok), (0usize..64).prop_map(Err)],
            1..6,
        ).prop_map(Op::Batch),
        1 => Just(Op::Truncate),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Shapes attach to one view key with `:current`, the base's own rows or a stale
    /// snapshot (a diff), detach (the last frees the view), and the inner table changes
    /// and is truncated: every shape's membership answers and every move equal those of its
    /// own multiset.
    #[test]
    fn per_shape_views_and_moves_follow_their_multisets(ops in prop::collection::vec(op(), 1..60)) {
        let mut views = Views::new(config()).unwrap();
        let vk = ViewKey::of(1, &[0], "owner_id = 7");
        let mut base: Vec<Option<u8>> = Vec::new(); // the base's rows (the stream's truth)
        let mut shapes: BTreeMap<u32, ModelShape> = BTreeMap::new();
        let mut view = None;
        let mut next_shape = 0u32;
        for (step, op) in ops.into_iter().enumerate() {
            let mut moves = Moves::default();
            let mut want = Seen::new();
            let mut values_of_deltas: Vec<Option<u8>> = Vec::new();
            match op {
                Op::Attach(neg, seed) => {
                    let polarity = if neg { Polarity::Negative } else { Polarity::Positive };
                    let a = Attachment { shape: next_shape, position: (next_shape % 3) as u8, polarity };
                    let rows: Vec<Projected> = seed.iter().flatten().map(|&v| key(v)).collect();
                    let s = match &seed {
                        None => Seed::Current,
                        Some(_) => Seed::Rows(&rows),
                    };
                    let got = views.attach(vk, 1, a, s, true);
                    if seed.is_none() && shapes.is_empty() {
                        prop_assert!(got.is_err(), ":current needs an existing view");
                        prop_assert!(views.registry().is_empty());
                        continue;
                    }
                    view = Some(got.unwrap());
                    let snapshot = seed.unwrap_or_else(|| base.clone());
                    if shapes.is_empty() {
                        base = snapshot.clone();
                    }
                    let mut rows = HashMap::new();
                    for v in snapshot {
                        *rows.entry(v).or_insert(0) += 1;
                    }
                    shapes.insert(next_shape, ModelShape { polarity, rows });
                    next_shape += 1;
                }
                Op::Detach(n) => {
                    let Some(&shape) = shapes.keys().nth(n % shapes.len().max(1)) else { continue };
                    let freed = views.detach(view.unwrap(), shape, (shape % 3) as u8).unwrap();
                    shapes.remove(&shape);
                    prop_assert_eq!(freed, shapes.is_empty());
                    if freed {
                        base.clear();
                        prop_assert_eq!(views.counts().index().distinct_handles().unwrap(), 0);
                    }
                }
                Op::Batch(changes) => {
                    let Some(v) = view.filter(|_| !shapes.is_empty()) else { continue };
                    let before: BTreeMap<u32, ModelShape> = snapshot(&shapes);
                    let mut signed: Vec<(Option<u8>, i64)> = Vec::new();
                    for c in changes {
                        match c {
                            Ok(x) => {
                                base.push(x);
                                signed.push((x, 1));
                            }
                            Err(_) if base.is_empty() => {}
                            Err(n) => {
                                let x = base.swap_remove(n % base.len());
                                signed.push((x, -1));
                            }
                        }
                    }
                    for s in shapes.values_mut() {
                        for &(x, by) in &signed {
                            *s.rows.entry(x).or_insert(0) += by;
                        }
                    }
                    let keys: Vec<Projected> = signed.iter().map(|&(x, _)| key(x)).collect();
                    let deltas: Vec<Delta> = signed
                        .iter()
                        .zip(&keys)
                        .map(|(&(_, by), k)| Delta { view: v, value: bytes(k), by })
                        .collect();
                    values_of_deltas = signed.iter().map(|&(x, _)| x).collect();
                    views.apply(&deltas, step % 2 == 0, &mut moves).unwrap();
                    for (&id, s) in &shapes {
                        model_moves(id, s.polarity, &before[&id], s, &mut want);
                    }
                }
                Op::Truncate => {
                    let Some(v) = view.filter(|_| !shapes.is_empty()) else { continue };
                    views.truncate(v, &mut moves).unwrap();
                    base.clear();
                    for (&id, s) in shapes.iter_mut() {
                        if !s.empty() {
                            let kind = match s.polarity {
                                Polarity::Positive => MoveKind::Out,
                                Polarity::Negative => MoveKind::In,
                            };
                            want.insert((id, kind, None));
                        }
                        s.rows.clear();
                    }
                }
            }
            // the moves, in order: by shape, outs first
            let order: Vec<(u32, MoveKind)> = moves.iter().map(|(m, _)| (m.shape, m.kind)).collect();
            let mut sorted = order.clone();
            sorted.sort();
            prop_assert_eq!(&order, &sorted, "step {}: sorted", step);
            let got: Seen = moves
                .iter()
                .map(|(m, values)| {
                    prop_assert_eq!(m.position, (m.shape % 3) as u8);
                    let values = match values {
                        MoveValues::All => None,
                        MoveValues::Values(vs) => Some(
                            vs.iter()
                                .map(|mv| match mv {
                                    MoveValue::Null => None,
                                    MoveValue::Delta(i) => values_of_deltas[*i as usize],
                                })
                                .collect(),
                        ),
                    };
                    Ok((m.shape, m.kind, values))
                })
                .collect::<Result<_, TestCaseError>>()?;
            prop_assert_eq!(got, want, "step {}: moves", step);
            // every shape's probes
            for (&id, s) in &shapes {
                for x in (0..6).map(Some).chain([None]) {
                    let k = key(x);
                    let m = views.member(view.unwrap(), id, (id % 3) as u8, bytes(&k)).unwrap();
                    let present = x.is_some_and(|v| s.present(v));
                    prop_assert_eq!(
                        (m.present, m.nulls, m.empty),
                        (present, s.nulls(), s.empty()),
                        "step {}: shape {} probing {:?}", step, id, x
                    );
                }
            }
        }
    }
}

fn snapshot(shapes: &BTreeMap<u32, ModelShape>) -> BTreeMap<u32, ModelShape> {
    shapes
        .iter()
        .map(|(&id, s)| {
            (
                id,
                ModelShape {
                    polarity: s.polarity,
                    rows: s.rows.clone(),
                },
            )
        })
        .collect()
}

/// Regression guard: a delete the base cannot take (its count is already 0: the snapshot
/// that seeded it lacked the row) still reaches the shapes whose own snapshot had it, and
/// their diff absorbs the shortfall so later changes stay exact.
#[test]
fn a_base_underflow_reaches_the_diffed_shapes() {
    let mut views = Views::new(config()).unwrap();
    let vk = ViewKey::of(0, &[0], "");
    let x = key(Some(1));
    let at = |shape| Attachment {
        shape,
        position: 0,
        polarity: Polarity::Positive,
    };
    let v = views
        .attach(vk, 1, at(0), Seed::Rows(std::slice::from_ref(&x)), true)
        .unwrap();
    let three = [x.clone(), x.clone(), x.clone()];
    assert_eq!(
        views
            .attach(vk, 1, at(1), Seed::Rows(&three), true)
            .unwrap(),
        v
    );
    assert_eq!(views.shapes().diff(v, 1, 0).map(|d| d.len()), Some(1));
    let delete = [Delta {
        view: v,
        value: bytes(&x),
        by: -1,
    }];
    let present = |views: &Views, shape| views.member(v, shape, 0, bytes(&x)).unwrap().present;
    let mut moves = Moves::default();
    // base 1 → 0: shape 0 loses x, shape 1 (3 → 2) keeps it
    views.apply(&delete, true, &mut moves).unwrap();
    let shapes: Vec<u32> = moves.iter().map(|(m, _)| m.shape).collect();
    assert_eq!(shapes, vec![0]);
    assert!(!present(&views, 0) && present(&views, 1));
    // base stays 0 (an underflow): shape 1 goes 2 → 1, then 1 → 0 and moves out
    for (step, leaves) in [(1, false), (2, true)] {
        moves.clear();
        views.apply(&delete, true, &mut moves).unwrap();
        let got: Vec<(u32, MoveKind)> = moves.iter().map(|(m, _)| (m.shape, m.kind)).collect();
        let want = if leaves {
            vec![(1, MoveKind::Out)]
        } else {
            vec![]
        };
        assert_eq!(got, want, "delete {step}");
        assert_eq!(present(&views, 1), !leaves);
    }
    assert_eq!(views.counts().underflows(), 2);
    // an insert brings x back for both (shape 1's count is 0 + 1 again)
    moves.clear();
    let insert = [Delta {
        view: v,
        value: bytes(&x),
        by: 1,
    }];
    views.apply(&insert, true, &mut moves).unwrap();
    let got: Vec<(u32, MoveKind)> = moves.iter().map(|(m, _)| (m.shape, m.kind)).collect();
    assert_eq!(got, vec![(0, MoveKind::In), (1, MoveKind::In)]);
    assert!(
        views.shapes().diff(v, 1, 0).is_none(),
        "the diff is gone once equal"
    );
}
