//! The range index against a brute-force multiset of intervals: random inserts, removes,
//! stabs, compactions and export/import round trips, with merge thresholds small enough to
//! cross every merge often, and once at the real thresholds.

use super::*;
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The oracle: every live entry, scanned.
#[derive(Default)]
struct Model(Vec<Entry>);

impl Model {
    fn stab(&self, v: u64) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .0
            .iter()
            .filter(|(lo, hi, _)| *lo <= v && v <= *hi)
            .map(|e| e.2)
            .collect();
        out.sort_unstable();
        out
    }

    fn remove(&mut self, e: Entry) -> bool {
        match self.0.iter().position(|x| *x == e) {
            Some(i) => {
                self.0.swap_remove(i);
                true
            }
            None => false,
        }
    }
}

fn stabbed(r: &Ranges, v: u64) -> Vec<u32> {
    let mut out = Vec::new();
    r.stab(v, &mut out);
    out.sort_unstable();
    out
}

/// A round trip through `parts` / `from_parts`, keeping the thresholds.
fn reloaded(r: &mut Ranges) -> Ranges {
    let (lo, hi, group) = r.parts();
    let (lo, hi, group) = (lo.to_vec(), hi.to_vec(), group.to_vec());
    let mut back = Ranges::from_parts(lo, hi, group, FileKind::Catalog, "test")
        .unwrap_or_else(|e| panic!("parts read back: {e}"));
    back.overlay_limit = r.overlay_limit;
    back.l0_min = r.l0_min;
    back
}

#[derive(Clone, Debug)]
enum Op {
    Insert(u64, u64, u32),
    /// Removes the live entry at this position (mod the count), if any.
    RemoveLive(usize),
    /// Removes a triple that may not be there.
    RemoveAny(u64, u64, u32),
    Stab(u64),
    Compact,
    Reload,
}

fn key() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 0u64..48,
        1 => Just(0),
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        1 => any::<u64>(),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => (key(), key(), 0u32..6).prop_map(|(a, b, g)| Op::Insert(a, b, g)),
        // ordered bounds too, so that most intervals are not empty
        6 => (key(), 0u64..12, 0u32..6).prop_map(|(a, w, g)| Op::Insert(a, a.saturating_add(w), g)),
        5 => any::<usize>().prop_map(Op::RemoveLive),
        1 => (key(), key(), 0u32..6).prop_map(|(a, b, g)| Op::RemoveAny(a, b, g)),
        6 => key().prop_map(Op::Stab),
        1 => Just(Op::Compact),
        1 => Just(Op::Reload),
    ]
}

/// Runs `ops` on `r` and the model, checking every stab, removal and length.
fn run(mut r: Ranges, ops: &[Op]) -> std::result::Result<(), TestCaseError> {
    let mut model = Model::default();
    for op in ops {
        match *op {
            Op::Insert(lo, hi, g) => {
                r.insert(lo, hi, g);
                model.0.push((lo, hi, g));
            }
            Op::RemoveLive(i) => {
                if !model.0.is_empty() {
                    let (lo, hi, g) = model.0[i % model.0.len()];
                    model.remove((lo, hi, g));
                    prop_assert!(r.remove(lo, hi, g), "live {:?} not removed", (lo, hi, g));
                }
            }
            Op::RemoveAny(lo, hi, g) => {
                prop_assert_eq!(r.remove(lo, hi, g), model.remove((lo, hi, g)));
            }
            Op::Stab(v) => prop_assert_eq!(stabbed(&r, v), model.stab(v), "stab {}", v),
            Op::Compact => r.compact(),
            Op::Reload => r = reloaded(&mut r),
        }
        prop_assert_eq!(r.len(), model.0.len());
        // a level never keeps more dead entries than half its live ones
        for level in [&r.l0, &r.l1] {
            prop_assert!(level.dead() * 2 <= level.live());
        }
    }
    // every key any entry starts or ends at, and its neighbours
    for &(lo, hi, _) in &model.0 {
        for v in [lo, hi, lo.wrapping_sub(1), hi.wrapping_add(1)] {
            prop_assert_eq!(stabbed(&r, v), model.stab(v), "stab {}", v);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn stabs_equal_brute_force_across_merges_and_rebuilds(
        ops in prop::collection::vec(op(), 1..400),
        overlay in 1usize..6,
        l0_min in 0usize..24,
    ) {
        run(Ranges::with_limits(overlay, l0_min), &ops)?;
    }
}

#[test]
fn stabs_equal_brute_force_at_the_real_thresholds() {
    // enough inserts to merge the overlay ~80 times and L0 into L1 several times, then
    // removals enough to rebuild L1
    let mut rng = StdRng::seed_from_u64(24);
    let mut ops = Vec::new();
    for i in 0..40_000u32 {
        let lo = rng.gen_range(0..100_000u64);
        let width = if i % 100 == 0 {
            rng.gen_range(0..50_000)
        } else {
            rng.gen_range(0..10)
        };
        ops.push(Op::Insert(lo, lo + width, i % 977));
        if i % 7 == 0 {
            ops.push(Op::Stab(rng.gen_range(0..100_000)));
        }
    }
    for _ in 0..30_000 {
        ops.push(Op::RemoveLive(rng.gen()));
        if rng.gen_ratio(1, 7) {
            ops.push(Op::Stab(rng.gen_range(0..100_000)));
        }
    }
    if let Err(e) = run(Ranges::new(), &ops) {
        panic!("{e}");
    }
}

#[test]
fn empty_intervals_are_kept_and_never_stabbed() {
    let mut r = Ranges::new();
    r.insert(5, 3, 1);
    r.insert(u64::MAX, 0, 2);
    r.insert(4, 4, 3);
    assert_eq!(r.len(), 3);
    for v in [0, 3, 4, 5, u64::MAX] {
        let expected: Vec<u32> = if v == 4 { vec![3] } else { vec![] };
        assert_eq!(stabbed(&r, v), expected, "{v}");
    }
    r.compact();
    assert_eq!(stabbed(&r, 4), vec![3]);
    assert!(r.remove(5, 3, 1));
    assert!(!r.remove(5, 3, 1));
    assert_eq!(r.len(), 2);
}

#[test]
fn the_whole_key_range_is_one_interval() {
    let mut r = Ranges::from_entries(vec![(0, u64::MAX, 7), (u64::MAX, u64::MAX, 8)]);
    assert_eq!(stabbed(&r, 0), vec![7]);
    assert_eq!(stabbed(&r, u64::MAX), vec![7, 8]);
    r.insert(0, 0, 9);
    assert_eq!(stabbed(&r, 0), vec![7, 9]);
}

#[test]
fn duplicates_are_a_multiset() {
    let mut r = Ranges::new();
    for _ in 0..3 {
        r.insert(1, 10, 4);
    }
    r.compact();
    r.insert(1, 10, 4);
    assert_eq!(stabbed(&r, 5), vec![4; 4]);
    assert!(r.remove(1, 10, 4));
    assert_eq!(stabbed(&r, 5), vec![4; 3]);
    assert_eq!(r.len(), 3);
}

#[test]
fn from_parts_refuses_ragged_or_unsorted_arrays() {
    let err = Ranges::from_parts(vec![1, 2], vec![3], vec![0, 0], FileKind::Catalog, "x");
    assert!(matches!(err, Err(Error::Corrupt { .. })), "{err:?}");
    let err = Ranges::from_parts(vec![2, 1], vec![3, 3], vec![0, 0], FileKind::Catalog, "x");
    assert!(matches!(err, Err(Error::Corrupt { .. })), "{err:?}");
    let err = Ranges::from_parts(vec![1, 1], vec![3, 3], vec![1, 0], FileKind::Catalog, "x");
    assert!(matches!(err, Err(Error::Corrupt { .. })), "{err:?}");
    let ok = Ranges::from_parts(vec![1, 1], vec![3, 3], vec![0, 0], FileKind::Catalog, "x");
    assert_eq!(ok.map(|r| stabbed(&r, 2)).ok(), Some(vec![0, 0]));
}

#[test]
fn heap_bytes_count_the_arrays_and_shrink_after_a_rebuild() {
    let mut r = Ranges::from_entries(
        (0..10_000u32)
            .map(|i| (u64::from(i), u64::from(i) + 5, i))
            .collect(),
    );
    // 20 bytes per entry, plus half a byte for each of the two trees
    assert!(
        r.heap_bytes() >= 200_000 && r.heap_bytes() < 212_000,
        "{}",
        r.heap_bytes()
    );
    for i in 0..6_000u32 {
        assert!(r.remove(u64::from(i), u64::from(i) + 5, i));
    }
    // the rebuild at dead > live / 2 dropped the dead entries
    assert!(r.heap_bytes() < 120_000, "{}", r.heap_bytes());
    assert_eq!(r.len(), 4_000);
}

#[test]
fn the_fences_count_like_a_binary_search_at_every_depth() {
    let mut rng = StdRng::seed_from_u64(11);
    // 1 to 5 tree levels; few distinct keys, so runs of equal lo cross block boundaries
    for n in [
        0usize, 1, 15, 16, 17, 255, 256, 257, 4_097, 70_000, 1_100_000,
    ] {
        let domain = (n as u64 / 8).max(2);
        let mut entries: Vec<Entry> = (0..n)
            .map(|i| (rng.gen_range(1..domain), u64::MAX, i as u32))
            .collect();
        let level = build::build(&mut entries);
        let lo = level.arrays().0;
        let probes = (0..2_000).map(|_| rng.gen_range(0..=domain));
        for v in probes.chain([0, 1, domain - 1, u64::MAX]) {
            assert_eq!(
                level.count_le(v),
                lo.partition_point(|&l| l <= v),
                "n {n}, v {v}"
            );
        }
    }
}
