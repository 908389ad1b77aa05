//! A router over declared tables with subquery shapes (`RouterSet::with_tables`) against a
//! brute-force model: the tables' rows kept in full, every shape's own view of each subquery
//! kept as a ℤ-multiset (its snapshot + the stream since), every WHERE evaluated with
//! `eval_with` on the old row under the views before a change and on the new row under the
//! views after. Ids and moves must equal the model's after every change, under shape churn,
//! stale snapshots, `:current`, nested chains (derived views) of depth 2 and 3, NOT IN, OR, rows, a self-referential subquery and truncates.

mod common;

use common::subquery_model::*;
use lsm_index_core::predicate::{eval_with, parse_with_tables, CaseFolding, Polarity, Value};
use lsm_index_core::router::ids::ShapeName;
use lsm_index_core::router::set::RouterSet;
use lsm_index_core::router::views::MoveKind;
use lsm_index_core::router::{Change, Moved, SeedText, SeededShape};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};

#[test]
fn agrees_with_the_model_under_churn() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let defs = tables();
        let set = RouterSet::with_tables(defs.clone(), CaseFolding::Unicode, config()).unwrap();
        let mut rows: Vec<BTreeMap<i64, Row>> = vec![BTreeMap::new(); 3];
        let mut shapes: BTreeMap<u32, ModelShape> = BTreeMap::new();
        let mut next_id = 0i64;
        let mut out = Vec::new();
        for step in 0..4_000 {
            if rng.gen_ratio(1, 5) {
                let id = rng.gen_range(0..40u32);
                if rng.gen_ratio(1, 5) {
                    set.remove(ShapeName::Handle(id), true).unwrap();
                    shapes.remove(&id);
                    continue;
                }
                let (table, sql) = TEMPLATES[rng.gen_range(0..TEMPLATES.len())];
                let params: Vec<Option<String>> = (0..2)
                    .map(|_| Some(rng.gen_range(0..5).to_string()))
                    .collect();
                let params = if sql.contains("$2") {
                    params
                } else if sql.contains("$1") {
                    params[..1].to_vec()
                } else {
                    Vec::new()
                };
                let parsed =
                    parse_with_tables(sql, table, &defs, &params, CaseFolding::Unicode).unwrap();
                // the snapshot: the true result, now and then stale by a row that is not
                // there (a row missing from it could make a later delete take the shared
                // count below zero, which the router clamps: see `views::diff`)
                let mut own = Vec::new();
                let mut given: Vec<Vec<Vec<Option<String>>>> = Vec::new();
                let truth = truths(&parsed, &rows);
                let mut current: Vec<usize> = Vec::new();
                for (i, sq) in parsed.subqueries.iter().enumerate() {
                    if let Some(c) = child(&parsed, i) {
                        // link rows [y…, x…] where the rest of its WHERE holds
                        let y = tested(&sq.inner, c);
                        let links = rows[sq.table as usize]
                            .values()
                            .filter(|r| eval_with(&sq.inner, r, &mut Present) == Ok(Some(true)))
                            .map(|r| {
                                y.iter()
                                    .chain(sq.projection.iter())
                                    .map(|&col| r[col].as_ref().map(text))
                                    .collect()
                            })
                            .collect();
                        own.push(truth[i].clone());
                        given.push(links);
                        continue;
                    }
                    let mut res = result(sq, &rows[sq.table as usize]);
                    // the view exists already (another shape holds it, with a true base):
                    // `:current` may be given, and a stale snapshot becomes this shape's
                    // diff (a stale first snapshot would make the shared base, which nested
                    // levels read, disagree with the tables)
                    let exists = shapes.iter().any(|(&other, s)| {
                        other != id && s.parsed.subqueries.iter().any(|q| q.sql == sq.sql)
                    });
                    if exists && !in_chain(&parsed, i) && rng.gen_ratio(1, 6) {
                        let mut m: HashMap<Projection, i64> = HashMap::new();
                        for p in &res {
                            *m.entry(p.clone()).or_default() += 1;
                        }
                        own.push(m);
                        given.push(Vec::new());
                        current.push(i);
                        continue;
                    }
                    if exists && !in_chain(&parsed, i) && rng.gen_ratio(1, 6) {
                        res.push(Some(
                            sq.projection
                                .iter()
                                .map(|_| rng.gen_range(0..5).to_string())
                                .collect(),
                        ));
                    }
                    let mut m: HashMap<Projection, i64> = HashMap::new();
                    for p in &res {
                        *m.entry(p.clone()).or_default() += 1;
                    }
                    own.push(m);
                    given.push(
                        res.iter()
                            .map(|p| match p {
                                Some(vs) => vs.iter().cloned().map(Some).collect(),
                                None => sq.projection.iter().map(|_| None).collect(),
                            })
                            .collect(),
                    );
                }
                let given_bytes: Vec<Flat<'_>> = given.iter().map(|rows| flat(rows)).collect();
                let seeds: Vec<SeedText<'_>> = given_bytes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match current.contains(&i) {
                        true => SeedText::Current,
                        false => SeedText::Rows {
                            cells: &r.0,
                            width: r.1,
                        },
                    })
                    .collect();
                set.add_seeded(
                    &SeededShape {
                        table,
                        name: ShapeName::Handle(id),
                        sql,
                        params: &params,
                        seeds: &seeds,
                    },
                    true,
                )
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
                shapes.insert(id, ModelShape { table, parsed, own });
                continue;
            }
            // a change of one table
            let table = [PROJECTS, ISSUES, ISSUES, ORGS][rng.gen_range(0..4)];
            let t = table as usize;
            let existing: Vec<i64> = rows[t].keys().copied().collect();
            let (old, new): (Option<Row>, Option<Row>) = if rng.gen_ratio(1, 150) {
                (None, None)
            } else if table == ORGS && existing.len() < 5 && rng.gen_ratio(2, 5) {
                // orgs are numbered 0..5, as projects' `org` values
                let free: Vec<i64> = (0..5).filter(|i| !existing.contains(i)).collect();
                let id = free[rng.gen_range(0..free.len())];
                (None, Some(random_row(&mut rng, table, id)))
            } else if table != ORGS && (existing.is_empty() || rng.gen_ratio(2, 5)) {
                next_id += 1;
                (None, Some(random_row(&mut rng, table, next_id)))
            } else if existing.is_empty() {
                (None, None)
            } else {
                let id = existing[rng.gen_range(0..existing.len())];
                let old = rows[t][&id].clone();
                if rng.gen_ratio(1, 3) {
                    (Some(old), None)
                } else {
                    (Some(old), Some(random_row(&mut rng, table, id)))
                }
            };
            // the model: ids by the views before (old row) and after (new row)
            let mut expected = BTreeSet::new();
            let truncate = old.is_none() && new.is_none();
            for (&id, s) in &shapes {
                if s.table != table {
                    continue;
                }
                if truncate || old.as_ref().is_some_and(|r| matches(s, r)) {
                    expected.insert(id);
                }
            }
            let before: BTreeMap<u32, Vec<HashMap<Projection, i64>>> =
                shapes.iter().map(|(&id, s)| (id, s.own.clone())).collect();
            let mut rows_after = rows.clone();
            match (truncate, &old, &new) {
                (true, _, _) => rows_after[t].clear(),
                (_, _, Some(new)) => {
                    if let Some(Value::Int(i)) = new[0] {
                        rows_after[t].insert(i, new.clone());
                    }
                }
                (_, Some(old), None) => {
                    if let Some(Value::Int(i)) = old[0] {
                        rows_after[t].remove(&i);
                    }
                }
                _ => {}
            }
            for s in shapes.values_mut() {
                let truth = truths(&s.parsed, &rows_after);
                for (i, sq) in s.parsed.subqueries.iter().enumerate() {
                    if in_chain(&s.parsed, i) {
                        s.own[i] = truth[i].clone();
                        continue;
                    }
                    if sq.table != table {
                        continue;
                    }
                    if truncate {
                        s.own[i].clear();
                        continue;
                    }
                    for (row, by) in [(&old, -1), (&new, 1)] {
                        if let Some(p) = row.as_ref().and_then(|r| projection(sq, r)) {
                            *s.own[i].entry(p).or_default() += by;
                        }
                    }
                }
            }
            for (&id, s) in &shapes {
                if s.table == table && new.as_ref().is_some_and(|r| matches(s, r)) {
                    expected.insert(id);
                }
            }
            let mut expected_moves = BTreeSet::new();
            for (&id, s) in &shapes {
                for (i, sq) in s.parsed.subqueries.iter().enumerate() {
                    if sq.parent.is_some() {
                        // nested: no moves of its own
                        continue;
                    }
                    if sq.table == table && truncate {
                        // a truncate moves the whole view, if it held anything
                        let was_empty = before[&id][i].values().all(|&c| c <= 0);
                        let kind = match sq.polarity {
                            Polarity::Positive => MoveKind::Out,
                            Polarity::Negative => MoveKind::In,
                        };
                        if !was_empty {
                            expected_moves.insert((id, kind, i as u8, None));
                        }
                    } else if sq.table == table || in_chain(&s.parsed, i) {
                        model_moves(
                            id,
                            i as u8,
                            sq.polarity,
                            &before[&id][i],
                            &s.own[i],
                            &mut expected_moves,
                        );
                    }
                }
            }
            // the router
            let old_cells = old.as_ref().map(cells);
            let new_cells = new.as_ref().map(cells);

            let (ob, nb) = (
                old_cells.as_deref().map(as_bytes_of),
                new_cells.as_deref().map(as_bytes_of),
            );
            let change = match (&ob, &nb) {
                (None, None) => Change::Truncate,
                (None, Some(n)) => Change::Insert(n),
                (Some(o), None) => Change::Delete(o),
                (Some(o), Some(n)) => Change::Update(o, n),
            };
            let mut moved = Moved::default();
            set.route_linked(table, &change, &mut out, &mut moved, true)
                .unwrap();
            let got: BTreeSet<u32> = out.iter().copied().collect();
            assert_eq!(got, expected, "seed {seed} step {step}: ids of {change:?}");
            if seen(&moved) != expected_moves {
                for (id, s) in &shapes {
                    eprintln!("shape {id}: before {:?}\n   after {:?}", before[id], s.own);
                }
            }
            assert_eq!(
                seen(&moved),
                expected_moves,
                "seed {seed} step {step}: moves of {change:?} on table {table}"
            );
            rows = rows_after;
        }
        // every shape removed: no view is left
        for id in shapes.keys() {
            set.remove(ShapeName::Handle(*id), true).unwrap();
        }
        set.with_views(|v| {
            assert!(v.registry().is_empty(), "seed {seed}: views left");
            assert_eq!(v.shapes().attachments(), 0, "seed {seed}: attachments left");
        })
        .unwrap();
        assert_eq!(set.link_pairs().unwrap(), (0, 0), "seed {seed}: links left");
    }
}

#[test]
fn a_shared_equality_gives_way_to_each_shapes_view() {
    // `assignee = 1` in every shape, each with its own owner's view: past the first shapes,
    // they are filed under their views, so a row of assignee 1 meets only the shapes whose
    // view holds its project
    let set = RouterSet::with_tables(tables(), CaseFolding::Unicode, config()).unwrap();
    let sql = "assignee = 1 AND project IN (SELECT id FROM projects WHERE owner = $1)";
    for owner in 0..20u32 {
        let project = (100 + owner).to_string();
        let rows = [Some(project.as_bytes())];
        let seeds = [SeedText::Rows {
            cells: &rows,
            width: 1,
        }];
        let params = [Some(owner.to_string())];
        let shape = SeededShape {
            table: ISSUES,
            name: ShapeName::Handle(owner),
            sql,
            params: &params,
            seeds: &seeds,
        };
        set.add_seeded(&shape, true).unwrap();
    }
    let issue = |project: &'static str| -> Vec<Option<&'static [u8]>> {
        vec![Some(b"1"), Some(project.as_bytes()), Some(b"1"), None]
    };
    let route = |row: &[Option<&[u8]>]| {
        let mut out = Vec::new();
        let mut moved = Moved::default();
        set.route_linked(ISSUES, &Change::Insert(row), &mut out, &mut moved, true)
            .unwrap();
        out
    };
    assert_eq!(route(&issue("105")), vec![5]);
    assert!(route(&issue("999")).is_empty());
    let candidates = set.tables()[ISSUES as usize].metrics().candidates;
    assert!(candidates <= 6, "{candidates} candidates for two rows");
}
