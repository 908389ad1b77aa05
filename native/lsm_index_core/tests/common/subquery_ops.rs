//! Random operations on a router over the model's tables (`subquery_model`), the same for
//! a router and its twin (`router_views_persist.rs`, `crash_views.rs`): shape adds with true,
//! stale or `:current` snapshots, removes, and changes of every table.
#![allow(dead_code)]

use super::subquery_model::*;
use lsm_index_core::predicate::{parse_with_tables, CaseFolding, Value};
use lsm_index_core::router::ids::ShapeName;
use lsm_index_core::router::set::RouterSet;
use lsm_index_core::router::views::MoveKind;
use lsm_index_core::router::{Change, Moved, SeedText, SeededShape};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// One operation, as both routers get it.
#[derive(Clone, Debug)]
pub enum Op {
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

pub type Answer = (
    BTreeSet<u32>,
    BTreeSet<(u32, MoveKind, u8, Option<BTreeSet<Projection>>)>,
);

pub fn apply(set: &RouterSet, op: &Op) -> Option<Answer> {
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
pub fn random_op(
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
