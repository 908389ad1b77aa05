//! The random shapes and rows of the router tests (`router.rs`, `router_set.rs`): a 7-column
//! table, WHERE clauses over it (equalities, IN lists, ORs, LIKE, lower/upper, arithmetic)
//! and cells (NULLs, unparseable text).
#![allow(dead_code)]

use lsm_index_core::predicate::{compile::compile, eval, ColumnType, Expr, Value};
use rand::rngs::StdRng;
use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// The table's columns.
pub fn columns() -> Vec<(String, ColumnType)> {
    [
        ("id", ColumnType::Int8),
        ("user_id", ColumnType::Int8),
        ("status", ColumnType::Text),
        ("score", ColumnType::Float8),
        ("active", ColumnType::Bool),
        ("uid", ColumnType::Uuid),
        ("note", ColumnType::Text),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

pub const STATUSES: [&str; 4] = ["open", "closed", "late", "Open"];
pub const UUIDS: [&str; 2] = [
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
    "A0EEBC999C0B4EF8BB6D6BB9BD380A12",
];

pub fn literal(rng: &mut StdRng, column: usize) -> String {
    if rng.gen_ratio(1, 30) {
        return "NULL".into();
    }
    match column {
        0 | 1 => rng.gen_range(0..12).to_string(),
        2 => format!("'{}'", STATUSES[rng.gen_range(0..STATUSES.len())]),
        3 => ["0.5", "1", "-2.25", "'NaN'", "'Infinity'"][rng.gen_range(0..5)].into(),
        4 => ["TRUE", "FALSE", "'t'"][rng.gen_range(0..3)].into(),
        5 => format!("'{}'::uuid", UUIDS[rng.gen_range(0..2)]),
        _ => format!("'{}'", ["a%", "%b", "x_y", "ab"][rng.gen_range(0..4)]),
    }
}

pub fn clause(rng: &mut StdRng, depth: u32) -> String {
    let names = ["id", "user_id", "status", "score", "active", "uid", "note"];
    let c = rng.gen_range(0..names.len());
    let name = names[c];
    if depth > 0 && rng.gen_ratio(1, 3) {
        let op = if rng.gen_bool(0.5) { "AND" } else { "OR" };
        let neg = if rng.gen_ratio(1, 6) { "NOT " } else { "" };
        return format!(
            "{neg}({} {op} {})",
            clause(rng, depth - 1),
            clause(rng, depth - 1)
        );
    }
    match rng.gen_range(0..10) {
        0..=3 => format!("{name} = {}", literal(rng, c)),
        4 => {
            let n = rng.gen_range(1..4);
            let list: Vec<String> = (0..n).map(|_| literal(rng, c)).collect();
            let not = if rng.gen_ratio(1, 4) { "NOT " } else { "" };
            format!("{name} {not}IN ({})", list.join(", "))
        }
        5 => format!(
            "{name} {} {}",
            ["<>", "<", "<=", ">", ">="][rng.gen_range(0..5)],
            literal(rng, c)
        ),
        6 => format!(
            "{name} IS {}NULL",
            if rng.gen_bool(0.5) { "NOT " } else { "" }
        ),
        7 if c == 2 || c == 6 => format!(
            "{name} {} '{}'",
            ["LIKE", "ILIKE", "NOT LIKE"][rng.gen_range(0..3)],
            ["o%", "%e%", "_pen", "a\\%"][rng.gen_range(0..4)]
        ),
        8 if c == 2 => format!(
            "{}(status) {}",
            ["lower", "upper"][rng.gen_range(0..2)],
            ["= 'open'", "IN ('OPEN', 'late')", "= 'LATE'"][rng.gen_range(0..3)]
        ),
        8 if c == 1 => format!(
            "user_id {} = {}",
            ["+ 1", "* 2", "/ 2", "% 3"][rng.gen_range(0..4)],
            rng.gen_range(0..6)
        ),
        _ => format!("user_id = {}", rng.gen_range(0..12)),
    }
}

pub fn shape_sql(rng: &mut StdRng) -> String {
    match rng.gen_range(0..4) {
        0 => clause(rng, 2),
        1 => format!("user_id = {}", rng.gen_range(0..12)),
        _ => format!("{} AND {}", clause(rng, 0), clause(rng, 2)),
    }
}

pub fn cell(rng: &mut StdRng, column: usize) -> Option<String> {
    if rng.gen_ratio(1, 10) {
        return None;
    }
    if rng.gen_ratio(1, 40) {
        return Some("not a value".into()); // unparseable except as text
    }
    Some(match column {
        0 | 1 => format!("{:0w$}", rng.gen_range(0..12), w = rng.gen_range(1..3)),
        2 => STATUSES[rng.gen_range(0..STATUSES.len())].into(),
        3 => ["0.5", "1.0", "-2.25", "NaN", "Infinity", "-0"][rng.gen_range(0..6)].into(),
        4 => ["t", "false", "yes", "0"][rng.gen_range(0..4)].into(),
        5 => UUIDS[rng.gen_range(0..2)].to_lowercase(),
        _ => ["abc", "xzy", "a%", "xyb"][rng.gen_range(0..4)].into(),
    })
}

/// A row as text cells, one per column (`None`: NULL).
pub type Rec = Vec<Option<String>>;

/// The brute-force reference of the router tests: every shape's parsed WHERE evaluated on
/// every row (of a table with `cols`); a shape is affected when it is true or fails to
/// evaluate, or reads a column whose text did not parse and could match whatever that text
/// is: it is scanned, found through such a column, or a candidate of the row (some index
/// plan finds the row's value: see `lsm_index_core::router`'s unparseable rule).
pub fn reference(
    cols: &[(String, ColumnType)],
    shapes: &BTreeMap<u32, Expr>,
    rows: &[&Rec],
) -> Vec<u32> {
    let mut hit = BTreeSet::new();
    for rec in rows {
        let mut bad = vec![false; cols.len()];
        let values: Vec<Option<Value>> = rec
            .iter()
            .zip(cols)
            .enumerate()
            .map(|(c, (text, (_, ty)))| {
                let v = text.as_ref().and_then(|t| ty.parse(t));
                bad[c] = text.is_some() && v.is_none();
                v
            })
            .collect();
        for (&id, expr) in shapes {
            let compiled = compile(expr);
            let refers_bad = compiled
                .mask
                .iter()
                .enumerate()
                .any(|(w, bits)| (0..64).any(|b| bits & (1 << b) != 0 && bad[w * 64 + b]));
            // a shape found through a range or a LIKE literal counts as scanned here (as
            // `LsmIndex.Filter`'s map engine, which scans it, routes it)
            let scanned = compiled.index.is_empty() && compiled.views.is_empty();
            let reachable = scanned
                || compiled.index.iter().any(|plan| {
                    bad[plan.column] || values[plan.column].as_ref().is_some_and(|v| plan.finds(v))
                })
                || compiled
                    .views
                    .iter()
                    .any(|plan| plan.columns.iter().any(|&c| bad[c]));
            if refers_bad && reachable
                || eval(expr, &values) != Ok(Some(false)) && eval(expr, &values) != Ok(None)
            {
                hit.insert(id);
            }
        }
    }
    hit.into_iter().collect()
}
