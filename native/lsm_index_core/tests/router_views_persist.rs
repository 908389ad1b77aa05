//! A persistent router over declared tables (`RouterSet::open_tables`) against one in
//! memory fed the same operations: shape adds (true and stale snapshots, `:current`), removes and
//! changes of every table, with flushes at random steps and "crashes" (the router dropped
//! without a flush, then reopened) at others. A reopened router is as of its last flush
//! (`position`); the operations since are done again, as a caller resuming its stream would,
//! and from then on its ids and moves must equal the twin's.

mod common;

use common::subquery_model::*;
use lsm_index_core::predicate::{parse_with_tables, CaseFolding, Value};
use lsm_index_core::router::ids::ShapeName;
use lsm_index_core::router::set::RouterSet;
use lsm_index_core::router::views::MoveKind;
use lsm_index_core::router::{Change, Moved, SeedText, SeededShape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet};

/// One operation, as both routers get it.
#[derive(Clone, Debug)]
enum Op {
    /// (id, table, clause, parameters, per position: rows or `None` for `:current`).
    Add(
        u32,
        u32,
        &'static str,
        Vec<Option<String>>,
        Vec<Option<Vec<Vec<Option<String>>>>>,
    ),
    Remove(u32),
    /// (table, old row, new row); neither: a truncate.
    Change(
        u32,
        Option<Vec<Option<String>>>,
        Option<Vec<Option<String>>>,
    ),
}

type Answer = (
    BTreeSet<u32>,
    BTreeSet<(u32, MoveKind, u8, Option<BTreeSet<Projection>>)>,
);

fn apply(set: &RouterSet, op: &Op) -> Option<Answer> {
    match op {
        Op::Add(id, table, sql, params, seeds) => {
            let bytes: Vec<Option<Flat<'_>>> =
                seeds.iter().map(|s| s.as_deref().map(flat)).collect();
            let seeds: Vec<SeedText<'_>> = bytes
                .iter()
                .map(|s| match s {
                    Some((cells, width)) => SeedText::Rows {
                        cells,
                        width: *width,
                    },
                    None => SeedText::Current,
                })
                .collect();
            let shape = SeededShape {
                table: *table,
                name: ShapeName::Handle(*id),
                sql,
                params,
                seeds: &seeds,
            };
            set.add_seeded(&shape, true)
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            None
        }
        Op::Remove(id) => {
            set.remove(ShapeName::Handle(*id), true).unwrap();
            None
        }
        Op::Change(table, old, new) => {
            let (ob, nb) = (
                old.as_deref().map(as_bytes_of),
                new.as_deref().map(as_bytes_of),
            );
            let change = match (&ob, &nb) {
                (None, None) => Change::Truncate,
                (None, Some(n)) => Change::Insert(n),
                (Some(o), None) => Change::Delete(o),
                (Some(o), Some(n)) => Change::Update(o, n),
            };
            let mut out = Vec::new();
            let mut moved = Moved::default();
            set.route_linked(*table, &change, &mut out, &mut moved, true)
                .unwrap();
            Some((out.into_iter().collect(), seen(&moved)))
        }
    }
}

/// A random operation over `rows` (kept up to date) and the shapes held.
fn random_op(
    rng: &mut StdRng,
    rows: &mut [BTreeMap<i64, Row>],
    held: &mut BTreeMap<u32, Vec<String>>,
    next_id: &mut i64,
) -> Op {
    let defs = tables();
    if rng.gen_ratio(1, 5) {
        let id = rng.gen_range(0..30u32);
        if rng.gen_ratio(1, 5) {
            held.remove(&id);
            return Op::Remove(id);
        }
        let (table, sql) = TEMPLATES[rng.gen_range(0..TEMPLATES.len())];
        let params: Vec<Option<String>> = (0..2)
            .map(|_| Some(rng.gen_range(0..5).to_string()))
            .take(sql.matches('$').count().min(2))
            .collect();
        let parsed = parse_with_tables(sql, table, &defs, &params, CaseFolding::Unicode).unwrap();
        let truth = truths(&parsed, rows);
        let mut seeds = Vec::new();
        for (i, sq) in parsed.subqueries.iter().enumerate() {
            let exists = held
                .iter()
                .any(|(&o, sqls)| o != id && sqls.contains(&sq.sql));
            if exists && !in_chain(&parsed, i) && rng.gen_ratio(1, 3) {
                seeds.push(None);
                continue;
            }
            let rows_of = match child(&parsed, i) {
                Some(c) => {
                    let y = tested(&sq.inner, c);
                    rows[sq.table as usize]
                        .values()
                        .filter(|r| {
                            lsm_index_core::predicate::eval_with(&sq.inner, r, &mut Present)
                                == Ok(Some(true))
                        })
                        .map(|r| {
                            y.iter()
                                .chain(sq.projection.iter())
                                .map(|&col| r[col].as_ref().map(text))
                                .collect()
                        })
                        .collect()
                }
                None => truth[i]
                    .iter()
                    .flat_map(|(p, &n)| {
                        let row: Vec<Option<String>> = match p {
                            Some(vs) => vs.iter().cloned().map(Some).collect(),
                            None => sq.projection.iter().map(|_| None).collect(),
                        };
                        std::iter::repeat_n(row, n.max(0) as usize)
                    })
                    .collect(),
            };
            let mut rows_of: Vec<Vec<Option<String>>> = rows_of;
            if exists && !in_chain(&parsed, i) && rng.gen_ratio(1, 4) {
                // a stale snapshot: a row the view does not have (the shape's diff)
                rows_of.push(
                    sq.projection
                        .iter()
                        .map(|_| Some(rng.gen_range(0..5).to_string()))
                        .collect(),
                );
            }
            seeds.push(Some(rows_of));
        }
        held.insert(
            id,
            parsed.subqueries.iter().map(|s| s.sql.clone()).collect(),
        );
        return Op::Add(id, table, sql, params, seeds);
    }
    let table = [PROJECTS, ISSUES, ISSUES, ORGS][rng.gen_range(0..4)];
    let t = table as usize;
    let existing: Vec<i64> = rows[t].keys().copied().collect();
    if rng.gen_ratio(1, 100) {
        rows[t].clear();
        return Op::Change(table, None, None);
    }
    let (old, new) = if table == ORGS && existing.len() < 5 && rng.gen_ratio(1, 2) {
        let free: Vec<i64> = (0..5).filter(|i| !existing.contains(i)).collect();
        let id = free[rng.gen_range(0..free.len())];
        (None, Some(random_row(rng, table, id)))
    } else if table != ORGS && (existing.is_empty() || rng.gen_ratio(2, 5)) {
        *next_id += 1;
        (None, Some(random_row(rng, table, *next_id)))
    } else if existing.is_empty() {
        return Op::Remove(u32::MAX);
    } else {
        let id = existing[rng.gen_range(0..existing.len())];
        let old = rows[t][&id].clone();
        match rng.gen_ratio(1, 3) {
            true => (Some(old), None),
            false => (Some(old), Some(random_row(rng, table, id))),
        }
    };
    if let Some(Value::Int(i)) = old.as_ref().and_then(|r| r[0].clone()) {
        rows[t].remove(&i);
    }
    if let Some(Value::Int(i)) = new.as_ref().and_then(|r| r[0].clone()) {
        rows[t].insert(i, new.clone().unwrap());
    }
    Op::Change(table, old.as_ref().map(cells), new.as_ref().map(cells))
}

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
