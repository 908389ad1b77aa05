//! Subquery views per shape (`router::views::Views`): every attached shape's view,
//! membership and moves against its own ℤ-multiset (snapshot + stream), with plan §2.3's
//! rules written out again here; stale snapshots (diffs), `:current`, detach and free,
//! truncates, base underflows.

mod common;

use common::views::{bytes, config, key};
use lsm_index_core::router::views::{
    Attachment, Delta, MoveKind, MoveValue, MoveValues, Moves, Polarity, Projected, Seed, ViewKey,
    Views,
};
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};

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
    /// Attach a new shape to view key k: polarity negative?, seed (None: `:current`; Some(rows)).
    Attach(usize, bool, Option<Vec<Option<u8>>>),
    /// Detach the n-th shape of view key k (mod their number).
    Detach(usize, usize),
    /// A batch of inner changes over both view keys: insert a row of value v / delete the
    /// n-th base row.
    Batch(Vec<(usize, Result<Option<u8>, usize>)>),
    /// View key k's inner table is truncated.
    Truncate(usize),
}

fn op() -> impl Strategy<Value = Op> {
    let value = prop::option::weighted(0.85, 0u8..6);
    let k = 0usize..2;
    prop_oneof![
        2 => (k.clone(), any::<bool>(), prop::option::weighted(0.7, prop::collection::vec(value.clone(), 0..8)))
            .prop_map(|(k, neg, seed)| Op::Attach(k, neg, seed)),
        1 => (k.clone(), 0usize..64).prop_map(|(k, n)| Op::Detach(k, n)),
        8 => prop::collection::vec(
            (k.clone(), prop_oneof![value.prop_map(Ok), (0usize..64).prop_map(Err)]),
            1..8,
        ).prop_map(Op::Batch),
        1 => k.prop_map(Op::Truncate),
    ]
}

/// One view key's side of the model.
#[derive(Default)]
struct ModelView {
    /// The base's rows (the stream's truth since the view was created).
    base: Vec<Option<u8>>,
    /// Its attached shapes.
    shapes: BTreeMap<u32, ModelShape>,
    /// Its view number while it exists.
    view: Option<u32>,
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Shapes attach to two view keys with `:current`, the base's own rows or a stale
    /// snapshot (a diff), detach (the last frees the view), and the inner tables change (one
    /// batch may touch both views) and are truncated: every shape's membership answers and
    /// every move equal those of its own multiset.
    #[test]
    fn per_shape_views_and_moves_follow_their_multisets(ops in prop::collection::vec(op(), 1..60)) {
        let mut views = Views::new(config()).unwrap();
        let keys = [ViewKey::of(1, &[0], "owner_id = 7"), ViewKey::of(1, &[0], "owner_id = 8")];
        let mut model: [ModelView; 2] = Default::default();
        let mut next_shape = 0u32;
        for (step, op) in ops.into_iter().enumerate() {
            let mut moves = Moves::default();
            let mut want = Seen::new();
            let mut values_of_deltas: Vec<Option<u8>> = Vec::new();
            match op {
                Op::Attach(k, neg, seed) => {
                    let m = &mut model[k];
                    let polarity = if neg { Polarity::Negative } else { Polarity::Positive };
                    let a = Attachment { shape: next_shape, position: (next_shape % 3) as u8, polarity };
                    let rows: Vec<Projected> = seed.iter().flatten().map(|&v| key(v)).collect();
                    let s = match &seed {
                        None => Seed::Current,
                        Some(_) => Seed::Rows(&rows),
                    };
                    let got = views.attach(keys[k], 1, a, s, true);
                    if seed.is_none() && m.shapes.is_empty() {
                        prop_assert!(got.is_err(), ":current needs an existing view");
                        prop_assert_eq!(views.registry().get(keys[k]), None);
                        continue;
                    }
                    m.view = Some(got.unwrap());
                    let snapshot = seed.unwrap_or_else(|| m.base.clone());
                    if m.shapes.is_empty() {
                        m.base = snapshot.clone();
                    }
                    let mut rows = HashMap::new();
                    for v in snapshot {
                        *rows.entry(v).or_insert(0) += 1;
                    }
                    m.shapes.insert(next_shape, ModelShape { polarity, rows });
                    next_shape += 1;
                }
                Op::Detach(k, n) => {
                    let m = &mut model[k];
                    let Some(&shape) = m.shapes.keys().nth(n % m.shapes.len().max(1)) else { continue };
                    let freed = views.detach(m.view.unwrap(), shape, (shape % 3) as u8).unwrap();
                    m.shapes.remove(&shape);
                    prop_assert_eq!(freed, m.shapes.is_empty());
                    if freed {
                        m.base.clear();
                        m.view = None;
                    }
                }
                Op::Batch(changes) => {
                    let before: Vec<BTreeMap<u32, ModelShape>> = model.iter().map(|m| snapshot(&m.shapes)).collect();
                    let mut signed: Vec<(u32, Option<u8>, i64)> = Vec::new();
                    for (k, c) in changes {
                        let m = &mut model[k];
                        let Some(view) = m.view else { continue };
                        let (x, by) = match c {
                            Ok(x) => {
                                m.base.push(x);
                                (x, 1)
                            }
                            Err(_) if m.base.is_empty() => continue,
                            Err(n) => (m.base.swap_remove(n % m.base.len()), -1),
                        };
                        for s in m.shapes.values_mut() {
                            *s.rows.entry(x).or_insert(0) += by;
                        }
                        signed.push((view, x, by));
                    }
                    let projected: Vec<Projected> = signed.iter().map(|&(_, x, _)| key(x)).collect();
                    let deltas: Vec<Delta> = signed
                        .iter()
                        .zip(&projected)
                        .map(|(&(view, _, by), p)| Delta { view, value: bytes(p), by })
                        .collect();
                    values_of_deltas = signed.iter().map(|&(_, x, _)| x).collect();
                    views.apply(&deltas, step % 2 == 0, &mut moves).unwrap();
                    for (m, before) in model.iter().zip(&before) {
                        for (&id, s) in &m.shapes {
                            model_moves(id, s.polarity, &before[&id], s, &mut want);
                        }
                    }
                }
                Op::Truncate(k) => {
                    let m = &mut model[k];
                    let Some(view) = m.view else { continue };
                    views.truncate(view, &mut moves).unwrap();
                    m.base.clear();
                    for (&id, s) in m.shapes.iter_mut() {
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
            // every shape's probes; no view without shapes
            for m in &model {
                for (&id, s) in &m.shapes {
                    for x in (0..6).map(Some).chain([None]) {
                        let k = key(x);
                        let got = views.member(m.view.unwrap(), id, (id % 3) as u8, bytes(&k)).unwrap();
                        let present = x.is_some_and(|v| s.present(v));
                        prop_assert_eq!(
                            (got.present, got.nulls, got.empty),
                            (present, s.nulls(), s.empty()),
                            "step {}: shape {} probing {:?}", step, id, x
                        );
                    }
                }
            }
            let live = model.iter().filter(|m| m.view.is_some()).count();
            prop_assert_eq!(views.registry().len(), live);
            if live == 0 {
                prop_assert_eq!(views.counts().index().distinct_handles().unwrap(), 0);
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
