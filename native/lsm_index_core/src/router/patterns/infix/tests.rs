//! The infix index against brute force: overlapping literals, references, the overlay
//! becoming tiers, merges and compactions, export and rebuild.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;

fn groups(index: &InfixIndex, text: &str) -> Vec<u32> {
    let mut out = vec![];
    index.matches(text, &mut out);
    out.sort_unstable();
    out
}

#[test]
fn overlapping_literals_each_report_their_groups_once() {
    let mut index = InfixIndex::new();
    for (literal, group) in [("ab", 1), ("abc", 2), ("bc", 3), ("bc", 1), ("zz", 4)] {
        index.insert(literal, group).unwrap();
    }
    assert_eq!(groups(&index, "xabcx"), [1, 2, 3]);
    assert_eq!(
        groups(&index, "ababab"),
        [1],
        "many occurrences, one report"
    );
    assert_eq!(
        groups(&index, "b"),
        [] as [u32; 0],
        "texts shorter than literals"
    );
    assert_eq!(index.len(), 4);
    let mut out = vec![7];
    index.matches("abc", &mut out);
    assert_eq!(out[0], 7, "appends");
}

#[test]
fn references_count_per_literal_and_group() {
    let mut index = InfixIndex::new();
    index.insert("bug", 1).unwrap();
    index.insert("bug", 1).unwrap();
    assert!(index.remove("bug", 1));
    assert_eq!(groups(&index, "a bug"), [1]);
    assert!(index.remove("bug", 1));
    assert!(!index.remove("bug", 1), "no reference left");
    assert!(!index.remove("bug", 2) && !index.remove("nope", 1));
    assert!(index.is_empty() && groups(&index, "a bug").is_empty());
}

#[test]
fn a_full_overlay_becomes_a_tier_and_the_dead_are_compacted() {
    let mut index = InfixIndex::new();
    let literal = |i: usize| format!("<{i}>");
    let sizes = |index: &InfixIndex| -> Vec<usize> {
        index.tiers.iter().map(|t| t.slots().len()).collect()
    };
    for i in 0..OVERLAY_MAX - 1 {
        index.insert(&literal(i), i as u32).unwrap();
    }
    assert_eq!((index.overlay_len(), index.tiers()), (OVERLAY_MAX - 1, 0));
    index.insert(&literal(OVERLAY_MAX - 1), 99).unwrap();
    assert_eq!((index.overlay_len(), sizes(&index)), (0, vec![OVERLAY_MAX]));
    // tiers merge while the newest holds ≥ 1/FANOUT of the one before: 16+16+16+16+16
    // merge into 80, then 16 stays apart (16 × 4 < 80)
    for i in OVERLAY_MAX..6 * OVERLAY_MAX {
        index.insert(&literal(i), i as u32).unwrap();
    }
    assert_eq!(sizes(&index), [80, 16]);
    assert_eq!(groups(&index, "<3><15><90>"), [3, 90, 99]);
    // 32 removed of 96: dead, skipped, until they outnumber half the live
    for i in 0..32 {
        assert!(index.remove(&literal(i), i as u32) || i == 15);
    }
    assert!(index.remove(&literal(15), 99));
    assert_eq!((index.dead, index.len()), (32, 64));
    assert_eq!(groups(&index, "<3><40>"), [40], "dead literals are skipped");
    index.insert(&literal(3), 3).unwrap();
    assert_eq!(
        (index.dead, index.overlay_len()),
        (31, 0),
        "revived in place"
    );
    assert!(index.remove(&literal(32), 32) && index.remove(&literal(33), 33));
    assert_eq!((index.dead, index.len()), (0, 63), "33 > 63 / 2: compacted");
    assert_eq!(sizes(&index), [63]);
    assert_eq!(groups(&index, "<3><33><40><95>"), [3, 40, 95]);
    assert_eq!(index.free.len(), 33, "the dead slots are free");
}

#[test]
fn an_empty_literal_is_in_every_text() {
    let mut index = InfixIndex::new();
    index.insert("", 5).unwrap();
    assert_eq!(groups(&index, ""), [5]);
    let index = InfixIndex::from_entries([("", 5, 1), ("x", 6, 1)]).unwrap();
    assert_eq!(groups(&index, "ab"), [5]);
    assert_eq!(groups(&index, "xx"), [5, 6]);
}

#[test]
fn export_and_rebuild_round_trip() {
    let mut index = InfixIndex::new();
    for i in 0..200u32 {
        index.insert(&format!("k{}", i % 70), i % 9).unwrap();
    }
    let mut exported: Vec<_> = index
        .literals()
        .map(|(l, g, r)| (l.to_string(), g, r))
        .collect();
    exported.sort();
    let again =
        InfixIndex::from_entries(exported.iter().map(|(l, g, r)| (l.as_str(), *g, *r))).unwrap();
    let mut back: Vec<_> = again
        .literals()
        .map(|(l, g, r)| (l.to_string(), g, r))
        .collect();
    back.sort();
    assert_eq!(exported, back);
    assert_eq!(again.overlay_len(), 0);
    assert_eq!(groups(&index, "k1k69"), groups(&again, "k1k69"));
    assert!(index.heap_bytes() > 0 && again.heap_bytes() > 0);
}

#[derive(Clone, Debug)]
enum Op {
    Insert(String, u32),
    /// Many inserts in a row (fills the overlay).
    Burst(Vec<(String, u32)>),
    /// Drops a reference of the n-th (literal, group) held, or of a random one.
    Remove(proptest::sample::Index, Option<(String, u32)>),
    Matches(String),
    /// Exports and rebuilds from the export (the reopen path).
    Reopen,
    /// Folds every tier into one.
    Compact,
}

/// Each held literal in exactly one place (a tier or the overlay), the counts right.
fn check_places(index: &InfixIndex) -> std::result::Result<(), TestCaseError> {
    let mut places = vec![0u32; index.slots.len()];
    let tiers = index.tiers.iter().flat_map(|t| t.slots().iter());
    for &slot in tiers.chain(index.overlay.iter().map(|(s, _)| s)) {
        places[slot as usize] += 1;
    }
    let mut dead = 0;
    for (slot, literal) in index.slots.iter().enumerate() {
        let free = index.free.contains(&(slot as u32));
        let held = index.find(&literal.text) == Some(slot as u32);
        prop_assert_eq!(places[slot], u32::from(!free), "slot {} placed", slot);
        prop_assert_eq!(held, !free, "slot {} in the table", slot);
        dead += usize::from(!free && literal.groups.is_empty());
    }
    prop_assert_eq!(index.table.len(), index.slots.len() - index.free.len());
    prop_assert_eq!(index.dead, dead);
    Ok(())
}

fn literal() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(&["ab", "abc", "bc", "ü", "üb", "Σσ", "abcabcabcabcabc"][..])
            .prop_map(String::from),
        6 => "[abcüΣ]{1,4}",
        1 => Just(String::new()),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let random = proptest::option::weighted(0.2, (literal(), 0u32..6));
    prop_oneof![
        6 => (literal(), 0u32..6).prop_map(|(l, g)| Op::Insert(l, g)),
        1 => proptest::collection::vec(("[abcüΣ]{2,5}", 0u32..6), 30..100).prop_map(Op::Burst),
        4 => (any::<proptest::sample::Index>(), random).prop_map(|(i, r)| Op::Remove(i, r)),
        3 => "[abcüΣσx]{0,14}".prop_map(Op::Matches),
        1 => Just(Op::Reopen),
        1 => Just(Op::Compact),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn infix_index_agrees_with_brute_force(ops in proptest::collection::vec(op(), 1..400)) {
        let mut index = InfixIndex::new();
        let mut model: BTreeMap<(String, u32), u32> = BTreeMap::new();
        for op in ops {
            match op {
                Op::Insert(literal, group) => {
                    index.insert(&literal, group).unwrap();
                    *model.entry((literal, group)).or_default() += 1;
                }
                Op::Burst(inserts) => {
                    for (literal, group) in inserts {
                        index.insert(&literal, group).unwrap();
                        *model.entry((literal, group)).or_default() += 1;
                    }
                }
                Op::Remove(at, random) => {
                    let key = match random {
                        Some(key) => key,
                        None if model.is_empty() => continue,
                        None => model.keys().nth(at.index(model.len())).cloned().unwrap(),
                    };
                    let held = model.get(&key).copied().unwrap_or(0);
                    prop_assert_eq!(index.remove(&key.0, key.1), held > 0);
                    match held {
                        0 => {}
                        1 => { model.remove(&key); }
                        _ => { model.insert(key, held - 1); }
                    }
                }
                Op::Matches(text) => {
                    let mut got = vec![];
                    index.matches(&text, &mut got);
                    let len = got.len();
                    got.sort_unstable();
                    got.dedup();
                    prop_assert_eq!(got.len(), len, "a group twice for {:?}", text);
                    let mut want: Vec<u32> = (model.keys())
                        .filter(|(l, _)| text.contains(l.as_str()))
                        .map(|&(_, g)| g)
                        .collect();
                    want.sort_unstable();
                    want.dedup();
                    prop_assert_eq!(got, want, "{:?}", text);
                }
                Op::Compact => {
                    index.compact().unwrap();
                    prop_assert!(index.tiers() <= 1 && index.overlay_len() == 0);
                }
                Op::Reopen => {
                    let entries: Vec<_> = (index.literals())
                        .map(|(l, g, r)| (l.to_string(), g, r))
                        .collect();
                    index = InfixIndex::from_entries(
                        entries.iter().map(|(l, g, r)| (l.as_str(), *g, *r)),
                    ).unwrap();
                }
            }
            let distinct: std::collections::BTreeSet<&str> =
                model.keys().map(|(l, _)| l.as_str()).collect();
            prop_assert_eq!(index.len(), distinct.len());
            prop_assert!(index.overlay_len() < OVERLAY_MAX);
            check_places(&index)?;
            prop_assert!(index.dead <= index.live / 2, "dead {} live {}", index.dead, index.live);
        }
    }
}
