//! The model of the subquery router tests (`router_views.rs`, `router_views_persist.rs`):
//! three tables, shape templates (plain subqueries, NOT IN, rows, self-reference, nested
//! chains), the tables' rows, every subquery's true result, and plan §2.3's moves.
#![allow(dead_code)]

use lsm_index_core::predicate::{
    eval, eval_with, ColumnType, Expr, Member, Membership, Parsed, Polarity, SubqueryDef, TableDef,
    Value,
};
use lsm_index_core::router::views::{MoveKind, MoveValue, MoveValues};
use lsm_index_core::router::Moved;
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet, HashMap};

pub const PROJECTS: u32 = 0;
pub const ISSUES: u32 = 1;
pub const ORGS: u32 = 2;

pub fn tables() -> Vec<TableDef> {
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
pub const TEMPLATES: &[(u32, &str)] = &[
    (ISSUES, "project IN (SELECT id FROM projects WHERE owner = $1)"),
    (ISSUES, "project NOT IN (SELECT id FROM projects WHERE owner = $1)"),
    (ISSUES, "assignee = $1 OR project IN (SELECT id FROM projects WHERE NOT archived)"),
    (ISSUES, "(project, assignee) IN (SELECT id, owner FROM projects)"),
    (ISSUES, "parent IN (SELECT id FROM issues WHERE assignee = $1)"),
    (PROJECTS, "owner = $1"),
    (PROJECTS, "id IN (SELECT project FROM issues WHERE assignee = $1) AND NOT archived"),
    (ISSUES, "NOT (project IN (SELECT id FROM projects WHERE owner = $1)) AND assignee = $2"),
    (ISSUES, "project = ANY (SELECT id FROM projects WHERE archived) OR parent <> ALL (SELECT project FROM issues)"),
    // an equality and a view: the router files it under whichever shares fewer shapes
    (ISSUES, "assignee = $1 AND project IN (SELECT id FROM projects WHERE owner = $2)"),
    // nested chains (derived views)
    (ISSUES, "project IN (SELECT id FROM projects WHERE org IN (SELECT id FROM orgs WHERE active))"),
    (ISSUES, "project NOT IN (SELECT id FROM projects WHERE owner = $1 AND org IN (SELECT id FROM orgs WHERE NOT active))"),
    (ISSUES, "assignee = $1 OR parent IN (SELECT id FROM issues WHERE project IN (SELECT id FROM projects WHERE owner = $2))"),
    (ISSUES, "project IN (SELECT id FROM projects WHERE org IN (SELECT id FROM orgs WHERE id IN (SELECT org FROM projects WHERE owner = $1)))"),
    (PROJECTS, "org IN (SELECT org FROM projects WHERE id IN (SELECT project FROM issues WHERE assignee = $1))"),
];

pub type Row = Vec<Option<Value>>;
/// A projected row's text (`None`: a row with a NULL component).
pub type Projection = Option<Vec<String>>;

pub fn text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::Bool(b) => if *b { "t" } else { "f" }.into(),
        other => panic!("no such column value here: {other:?}"),
    }
}

pub fn cells(row: &Row) -> Vec<Option<String>> {
    row.iter().map(|v| v.as_ref().map(text)).collect()
}

pub fn random_row(rng: &mut StdRng, table: u32, id: i64) -> Row {
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
pub struct ModelShape {
    pub table: u32,
    pub parsed: Parsed,
    pub own: Vec<HashMap<Projection, i64>>,
}

pub struct Own<'a>(pub &'a [HashMap<Projection, i64>]);

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
pub struct Present;

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
pub fn child(parsed: &Parsed, i: usize) -> Option<usize> {
    parsed
        .subqueries
        .iter()
        .position(|s| s.parent == Some(i as u32))
}

/// The columns a subquery's WHERE tests against its nested subquery `c`.
pub fn tested(inner: &Expr, c: usize) -> Vec<usize> {
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
pub fn truths(parsed: &Parsed, rows: &[BTreeMap<i64, Row>]) -> Vec<HashMap<Projection, i64>> {
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

pub fn project_text(sq: &SubqueryDef, row: &Row) -> Projection {
    sq.projection
        .iter()
        .map(|&c| row[c].as_ref().map(text))
        .collect()
}

/// Whether position `i` is a chain's (it or a subquery in it is nested): its view is derived
/// or shared without a per-shape difference, so the model recomputes it from the tables.
pub fn in_chain(parsed: &Parsed, i: usize) -> bool {
    parsed.subqueries[i].parent.is_some() || child(parsed, i).is_some()
}

pub fn matches(shape: &ModelShape, row: &Row) -> bool {
    eval_with(&shape.parsed.expr, row, &mut Own(&shape.own)) == Ok(Some(true))
}

/// The projections of the rows of `rows` a subquery selects (true inner WHERE).
pub fn result(sq: &SubqueryDef, rows: &BTreeMap<i64, Row>) -> Vec<Projection> {
    rows.values().filter_map(|r| projection(sq, r)).collect()
}

/// `Some(projection)` when `row` is in the subquery's result.
pub fn projection(sq: &SubqueryDef, row: &Row) -> Option<Projection> {
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
pub type SeenMove = (u32, MoveKind, u8, Option<BTreeSet<Projection>>);

/// Plan §2.3 on one occurrence's before/after multisets.
pub fn model_moves(
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

pub fn seen(moved: &Moved<'_>) -> BTreeSet<SeenMove> {
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

pub fn as_bytes_of(c: &[Option<String>]) -> Vec<Option<&[u8]>> {
    c.iter().map(|v| v.as_deref().map(str::as_bytes)).collect()
}

pub fn config() -> Config {
    Config {
        lanes: 2,
        overlay_limit: 16,
        ..super::config()
    }
}

/// A seed's flat cells and row width.
pub type Flat<'a> = (Vec<Option<&'a [u8]>>, usize);

/// Snapshot rows as a seed's flat cells and row width.
pub fn flat(rows: &[Vec<Option<String>>]) -> Flat<'_> {
    let width = rows.first().map_or(0, Vec::len);
    let cells = rows
        .iter()
        .flat_map(|r| r.iter().map(|c| c.as_deref().map(str::as_bytes)))
        .collect();
    (cells, width)
}
