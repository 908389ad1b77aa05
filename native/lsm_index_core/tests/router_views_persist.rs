//! A persistent router over declared tables (`RouterSet::open_tables`) against one in
//! memory fed the same operations: shape adds (true and stale snapshots, `:current`), removes and
//! changes of every table, with flushes at random steps and "crashes" (the router dropped
//! without a flush, then reopened) at others. A reopened router is as of its last flush
//! (`position`); the operations since are done again, as a caller resuming its stream would,
//! and from then on its ids and moves must equal the twin's.

mod common;

use common::subquery_model::*;
use common::subquery_ops::{apply, random_op, Op};
use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::ids::ShapeName;
use lsm_index_core::router::set::RouterSet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

#[test]
fn a_reopened_router_is_as_of_its_last_flush() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            RouterSet::open_tables(dir.path(), tables(), CaseFolding::Unicode, config()).unwrap()
        };
        let twin = RouterSet::with_tables(tables(), CaseFolding::Unicode, config()).unwrap();
        let mut set = open();
        assert_eq!(set.position(), None);
        let mut rows = vec![BTreeMap::new(); 3];
        let mut held = BTreeMap::new();
        let mut next_id = 0;
        let mut since: Vec<Op> = Vec::new();
        let (mut flushes, mut reopens, mut diffs) = (0, 0, 0);
        for step in 0..2_000u64 {
            if rng.gen_ratio(1, 40) {
                set.flush_tables(&step.to_le_bytes()).unwrap();
                since.clear();
                flushes += 1;
            }
            if rng.gen_ratio(1, 120) {
                // a crash: nothing since the last flush was kept
                let position = set.position();
                drop(set);
                set = open();
                assert_eq!(set.position(), position, "seed {seed} step {step}");
                for op in &since {
                    apply(&set, op);
                }
                reopens += 1;
            }
            let op = random_op(&mut rng, &mut rows, &mut held, &mut next_id);
            let expected = apply(&twin, &op);
            let got = apply(&set, &op);
            assert_eq!(got, expected, "seed {seed} step {step}: {op:?}");
            diffs = diffs.max(set.with_views(|v| v.shapes().diff_entries()).unwrap());
            since.push(op);
        }
        assert!(
            flushes > 10 && reopens > 5,
            "seed {seed}: {flushes} flushes, {reopens} reopens"
        );
        // removing every shape and reopening leaves no view
        for id in held.keys() {
            set.remove(ShapeName::Handle(*id), true).unwrap();
        }
        set.flush_tables(b"end").unwrap();
        drop(set);
        let set = open();
        assert_eq!(set.position().as_deref(), Some(&b"end"[..]));
        assert!(set.is_empty());
        set.with_views(|v| assert!(v.registry().is_empty()))
            .unwrap();
    }
}

#[test]
fn a_directory_made_for_other_tables_is_refused_and_locked_while_open() {
    let dir = tempfile::tempdir().unwrap();
    let set = RouterSet::open_tables(dir.path(), tables(), CaseFolding::Unicode, config()).unwrap();
    assert!(matches!(
        RouterSet::open_tables(dir.path(), tables(), CaseFolding::Unicode, config()),
        Err(lsm_index_core::Error::Locked { .. })
    ));
    drop(set);
    let mut other = tables();
    other.pop();
    assert!(matches!(
        RouterSet::open_tables(dir.path(), other, CaseFolding::Unicode, config()),
        Err(lsm_index_core::Error::TableMismatch { .. })
    ));
}
