//! A router over declared tables with subquery shapes (`RouterSet::with_tables`) against a
//! brute-force model: the tables' rows kept in full, every shape's own view of each subquery
//! kept as a ℤ-multiset (its snapshot + the stream since), every WHERE evaluated with
//! `eval_with` on the old row under the views before a change and on the new row under the
//! views after. Ids and moves must equal the model's after every change, under shape churn,
//! stale snapshots, `:current`, nested chains (derived views) of depth 2 and 3, NOT IN, OR, rows, a self-referential subquery and truncates.

mod common;

use lsm_index_core::predicate::{
    eval, eval_with, parse_with_tables, CaseFolding, ColumnType, Expr, Member, Membership, Parsed,
    Polarity, TableDef, Value,
};
use lsm_index_core::router::ids::ShapeName;
use lsm_index_core::router::set::RouterSet;
use lsm_index_core::router::views::{MoveKind, MoveValue, MoveValues};
use lsm_index_core::router::{Change, Moved, SeedText, SeededShape};
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const PROJECTS: u32 = 0;
const ISSUES: u32 = 1;
const ORGS: u32 = 2;

fn tables() -> Vec<TableDef> {
    let t = |name: &str, cols: &[(&str, ColumnType)]| TableDef {
        schema: "public".into(),
        name: name.into(),
        columns: cols
            .iter()
            .map(|(n, t)| (n.to_string(), t.clone()))
            .collect(),
    };
    vec![
        t(
            "projects",
            &[
                ("id", ColumnType::Int8),
                ("owner", ColumnType::Int8),
                ("archived", ColumnType::Bool),
                ("org", ColumnType::Int8),
            ],
        ),
        t(
            "issues",
            &[
                ("id", ColumnType::Int8),
                ("project", ColumnType::Int8),
                ("assignee", ColumnType::Int8),
                ("parent", ColumnType::Int8),
            ],
        ),
        t(
            "orgs",
            &[("id", ColumnType::Int8), ("active", ColumnType::Bool)],
        ),
    ]
}

/// (outer table, clause with `$1` / `$2`).
const TEMPLATES: &[(u32, &str)] = &[
    (ISSUES, "project IN (SELECT id FROM projects WHERE owner = $1)"),
    (ISSUES, "project NOT IN (SELECT id FROM projects WHERE owner = $1)"),
    (ISSUES, "assignee = $1 OR project IN (SELECT id FROM projects WHERE NOT archived)"),
    (ISSUES, "(project, assignee) IN (SELECT id, owner FROM projects)"),
    (ISSUES, "parent IN (SELECT id FROM issues WHERE assignee = $1)"),
    (PROJECTS, "owner = $1"),
    (PROJECTS, "id IN (SELECT project FROM issues WHERE assignee = $1) AND NOT archived"),
    (ISSUES, "NOT (project IN (SELECT id FROM projects WHERE owner = $1)) AND assignee = $2"),
    (ISSUES, "project = ANY (SELECT id FROM projects WHERE archived) OR parent <> ALL (SELECT project FROM issues)"),
    // nested chains (derived views)
    (ISSUES, "project IN (SELECT id FROM projects WHERE org IN (SELECT id FROM orgs WHERE active))"),
    (ISSUES, "project NOT IN (SELECT id FROM projects WHERE owner = $1 AND org IN (SELECT id FROM orgs WHERE NOT active))"),
    (ISSUES, "assignee = $1 OR parent IN (SELECT id FROM issues WHERE project IN (SELECT id FROM projects WHERE owner = $2))"),
    (ISSUES, "project IN (SELECT id FROM projects WHERE org IN (SELECT id FROM orgs WHERE id IN (SELECT org FROM projects WHERE owner = $1)))"),
    (PROJECTS, "org IN (SELECT org FROM projects WHERE id IN (SELECT project FROM issues WHERE assignee = $1))"),
];

type Row = Vec<Option<Value>>;
/// A projected row's text (`None`: a row with a NULL component).
type Projection = Option<Vec<String>>;

fn text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => if *b { "t" } else { "f" }.into(),
        other => panic!("no such column value here: {other:?}"),
    }
}

fn cells(row: &Row) -> Vec<Option<String>> {
    row.iter().map(|v| v.as_ref().map(text)).collect()
}

fn random_row(rng: &mut StdRng, table: u32, id: i64) -> Row {
    let small = |rng: &mut StdRng| rng.gen_ratio(6, 7).then(|| Value::Int(rng.gen_range(0..5)));
    match table {
        PROJECTS => vec![
            Some(Value::Int(id)),
            small(rng),
            rng.gen_ratio(5, 6).then(|| Value::Bool(rng.gen())),
            small(rng),
        ],
        ORGS => vec![
            Some(Value::Int(id)),
            rng.gen_ratio(5, 6).then(|| Value::Bool(rng.gen())),
        ],
        _ => vec![Some(Value::Int(id)), small(rng), small(rng), small(rng)],
    }
}

/// One shape of the model: its table, parse, and its own multiset per subquery.
struct ModelShape {
    table: u32,
    parsed: Parsed,
    own: Vec<HashMap<Projection, i64>>,
}

struct Own<'a>(&'a [HashMap<Projection, i64>]);

impl Membership for Own<'_> {
    fn probe(&mut self, position: u32, value: Option<&[&Value]>) -> Member {
        let view = &self.0[position as usize];
        let nulls = view.get(&None).is_some_and(|&c| c > 0);
        let any = view.iter().any(|(k, &c)| k.is_some() && c > 0);
        let key = value.map(|vs| vs.iter().map(|v| text(v)).collect::<Vec<_>>());
        Member {
            present: key.is_some_and(|k| view.get(&Some(k)).is_some_and(|&c| c > 0)),
            nulls,
            empty: !nulls && !any,
        }
    }
}

/// Answers every probe "present": a link's rows are those where the rest of the WHERE holds.
struct Present;

impl Membership for Present {
    fn probe(&mut self, _position: u32, _value: Option<&[&Value]>) -> Member {
        Member {
            present: true,
            nulls: false,
            empty: false,
        }
    }
}

/// Whether position `i` has a nested subquery (then it is derived), and which.
fn child(parsed: &Parsed, i: usize) -> Option<usize> {
    parsed
        .subqueries
        .iter()
        .position(|s| s.parent == Some(i as u32))
}

/// The columns a subquery's WHERE tests against its nested subquery `c`.
fn tested(inner: &Expr, c: usize) -> Vec<usize> {
    let terms = match inner {
        Expr::And(terms) => terms.iter().collect(),
        e => vec![e],
    };
    terms
        .into_iter()
        .find_map(|t| match t {
            Expr::InSubquery {
                columns, position, ..
            } if *position as usize == c => Some(columns.clone()),
            _ => None,
        })
        .unwrap()
}

/// Every position's true result (nested ones first), from the tables' rows.
fn truths(parsed: &Parsed, rows: &[BTreeMap<i64, Row>]) -> Vec<HashMap<Projection, i64>> {
    let n = parsed.subqueries.len();
    let mut out: Vec<HashMap<Projection, i64>> = vec![HashMap::new(); n];
    for i in (0..n).rev() {
        let sq = &parsed.subqueries[i];
        let mut m = HashMap::new();
        for r in rows[sq.table as usize].values() {
            if eval_with(&sq.inner, r, &mut Own(&out)) == Ok(Some(true)) {
                *m.entry(project_text(sq, r)).or_default() += 1;
            }
        }
        out[i] = m;
    }
    out
}

fn project_text(sq: &lsm_index_core::predicate::SubqueryDef, row: &Row) -> Projection {
    sq.projection
        .iter()
        .map(|&c| row[c].as_ref().map(text))
        .collect()
}

/// Whether position `i` is a chain's (it or a subquery in it is nested): its view is derived
/// or shared without a per-shape difference, so the model recomputes it from the tables.
fn in_chain(parsed: &Parsed, i: usize) -> bool {
    parsed.subqueries[i].parent.is_some() || child(parsed, i).is_some()
}

fn matches(shape: &ModelShape, row: &Row) -> bool {
    eval_with(&shape.parsed.expr, row, &mut Own(&shape.own)) == Ok(Some(true))
}

/// The projections of the rows of `rows` a subquery selects (true inner WHERE).
fn result(
    sq: &lsm_index_core::predicate::SubqueryDef,
    rows: &BTreeMap<i64, Row>,
) -> Vec<Projection> {
    rows.values().filter_map(|r| projection(sq, r)).collect()
}

/// `Some(projection)` when `row` is in the subquery's result.
fn projection(sq: &lsm_index_core::predicate::SubqueryDef, row: &Row) -> Option<Projection> {
    if eval(&sq.inner, row) != Ok(Some(true)) {
        return None;
    }
    let values: Option<Vec<String>> = sq
        .projection
        .iter()
        .map(|&c| row[c].as_ref().map(text))
        .collect();
    Some(values)
}

/// A move as compared: (shape, kind, position, `None` = all, else the values).
type SeenMove = (u32, MoveKind, u8, Option<BTreeSet<Projection>>);

/// Plan §2.3 on one occurrence's before/after multisets.
fn model_moves(
    shape: u32,
    position: u8,
    polarity: Polarity,
    before: &HashMap<Projection, i64>,
    after: &HashMap<Projection, i64>,
    out: &mut BTreeSet<SeenMove>,
) {
    let present = |m: &HashMap<Projection, i64>, k: &Projection| m.get(k).is_some_and(|&c| c > 0);
    let nulls = |m: &HashMap<Projection, i64>| present(m, &None);
    let empty = |m: &HashMap<Projection, i64>| m.values().all(|&c| c <= 0);
    let keys: BTreeSet<&Projection> = before
        .keys()
        .chain(after.keys())
        .filter(|k| k.is_some())
        .collect();
    let entered: BTreeSet<Projection> = keys
        .iter()
        .filter(|k| !present(before, k) && present(after, k))
        .map(|k| (*k).clone())
        .collect();
    let left: BTreeSet<Projection> = keys
        .iter()
        .filter(|k| present(before, k) && !present(after, k))
        .map(|k| (*k).clone())
        .collect();
    let mut push = |kind, values: BTreeSet<Projection>| {
        if !values.is_empty() {
            out.insert((shape, kind, position, Some(values)));
        }
    };
    match polarity {
        Polarity::Positive => {
            push(MoveKind::Out, left);
            push(MoveKind::In, entered);
        }
        Polarity::Negative => match (nulls(before), nulls(after)) {
            (false, true) => {
                out.insert((shape, MoveKind::Out, position, None));
            }
            (true, false) => {
                out.insert((shape, MoveKind::In, position, None));
            }
            (true, true) => {}
            (false, false) => {
                let (mut outs, mut ins) = (entered, left);
                if empty(before) && !empty(after) {
                    outs.insert(None);
                }
                if !empty(before) && empty(after) {
                    ins.insert(None);
                }
                push(MoveKind::Out, outs);
                push(MoveKind::In, ins);
            }
        },
    }
}

fn seen(moved: &Moved<'_>) -> BTreeSet<SeenMove> {
    moved
        .moves
        .iter()
        .map(|(m, values)| {
            let values = match values {
                MoveValues::All => None,
                MoveValues::Values(vs) => Some(
                    vs.iter()
                        .map(|v| match v {
                            MoveValue::Null => None,
                            MoveValue::Delta(i) => Some(
                                moved.texts[*i as usize]
                                    .iter()
                                    .map(|c| {
                                        String::from_utf8(c.as_deref().unwrap().to_vec()).unwrap()
                                    })
                                    .collect(),
                            ),
                        })
                        .collect(),
                ),
            };
            (m.shape, m.kind, m.position, values)
        })
        .collect()
}

fn as_bytes_of(c: &[Option<String>]) -> Vec<Option<&[u8]>> {
    c.iter().map(|v| v.as_deref().map(str::as_bytes)).collect()
}

fn config() -> Config {
    Config {
        lanes: 2,
        overlay_limit: 16,
        ..common::config()
    }
}

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
                let given_bytes: Vec<Vec<Vec<Option<&[u8]>>>> = given
                    .iter()
                    .map(|rows| {
                        rows.iter()
                            .map(|r| r.iter().map(|c| c.as_deref().map(str::as_bytes)).collect())
                            .collect()
                    })
                    .collect();
                let seeds: Vec<SeedText<'_>> = given_bytes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| match current.contains(&i) {
                        true => SeedText::Current,
                        false => SeedText::Rows(r),
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
