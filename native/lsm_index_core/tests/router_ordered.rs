//! The router's ordered indexes (ranges and LIKE literals) and its template groups against a
//! brute-force reference: many shapes per template (the same clause with other parameters),
//! bounds at the corners of each type (NULLs, ±infinity, NaN, -0, numerics beyond float8,
//! texts sharing 8-byte prefixes, multibyte text), patterns that are empty, only `%`/`_`,
//! escaped, ILIKE-folded or read through `lower`/`upper`; under churn and updates.

mod common;

use common::shapes::{reference, Rec};
use lsm_index_core::predicate::{parse_with, CaseFolding, ColumnType, Expr};
use lsm_index_core::router::{Change, Router, ScanReason};
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

fn columns() -> Vec<(String, ColumnType)> {
    [
        ("i", ColumnType::Int8),
        ("f", ColumnType::Float8),
        ("n", ColumnType::Numeric),
        ("t", ColumnType::Text),
        ("ts", ColumnType::Timestamptz),
        ("d", ColumnType::Date),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

const INTS: [&str; 7] = [
    "-9223372036854775808",
    "-3",
    "0",
    "1",
    "2",
    "7",
    "9223372036854775807",
];
const FLOATS: [&str; 9] = [
    "-Infinity",
    "-2.5",
    "-0",
    "0",
    "1e-300",
    "1.5",
    "3",
    "Infinity",
    "NaN",
];
const NUMERICS: [&str; 9] = [
    "-1e400",
    "-2.50",
    "0",
    "1.00000000000000000001",
    "1",
    "1.5",
    "123456789012345678901234567890",
    "Infinity",
    "NaN",
];
const TEXTS: [&str; 14] = [
    "",
    "a",
    "ab",
    "abc",
    "abcdefgh",
    "abcdefghij",
    "abcdefghiz",
    "Bug report",
    "a bug",
    "DEBUG",
    "ünï",
    "ÜNÏ",
    "x%y",
    "x_y",
];
const STAMPS: [&str; 5] = [
    "-infinity",
    "1999-12-31 23:59:59+00",
    "2024-01-01 00:00:00+00",
    "2024-02-01 00:00:00.000001+00",
    "infinity",
];
const DATES: [&str; 4] = ["-infinity", "2000-01-01", "2024-02-29", "infinity"];
const PATTERNS: [&str; 16] = [
    "",
    "%",
    "%%",
    "_",
    "___",
    "_%",
    "a%",
    "ab%",
    "abcdefghi%",
    "%bug%",
    "%BUG%",
    "%ü%",
    "x\\%%",
    "x\\_y",
    "%y",
    "a_c%",
];

/// A column's value: its text (NULL now and then).
fn value(rng: &mut StdRng, column: usize) -> Option<String> {
    if rng.gen_ratio(1, 12) {
        return None;
    }
    let pool: &[&str] = match column {
        0 => &INTS,
        1 => &FLOATS,
        2 => &NUMERICS,
        3 => &TEXTS,
        4 => &STAMPS,
        _ => &DATES,
    };
    Some(pool[rng.gen_range(0..pool.len())].to_string())
}

/// A shape: one of a few templates, with random parameters (so many shapes share each).
fn shape(rng: &mut StdRng) -> (String, Vec<Option<String>>) {
    let col = rng.gen_range(0..6);
    let name = ["i", "f", "n", "t", "ts", "d"][col];
    let p = |rng: &mut StdRng| value(rng, col);
    let pattern = |rng: &mut StdRng| Some(PATTERNS[rng.gen_range(0..PATTERNS.len())].to_string());
    match rng.gen_range(0..9) {
        0 => (format!("{name} > $1 AND {name} < $2"), vec![p(rng), p(rng)]),
        1 => (format!("{name} BETWEEN $1 AND $2"), vec![p(rng), p(rng)]),
        2 => {
            let op = [">", ">=", "<", "<="][rng.gen_range(0..4)];
            (format!("{name} {op} $1"), vec![p(rng)])
        }
        3 => (format!("{name} >= $1 AND {name} <= $1"), vec![p(rng)]),
        4 => ("t LIKE $1".to_string(), vec![pattern(rng)]),
        5 => ("t ILIKE $1".to_string(), vec![pattern(rng)]),
        6 => {
            let f = ["lower", "upper"][rng.gen_range(0..2)];
            (format!("{f}(t) LIKE $1"), vec![pattern(rng)])
        }
        7 => (
            "t LIKE $1 AND i > $2".to_string(),
            vec![pattern(rng), value(rng, 0)],
        ),
        _ => (
            "t NOT LIKE $1 OR f < $2".to_string(),
            vec![pattern(rng), value(rng, 1)],
        ),
    }
}

fn row(rng: &mut StdRng) -> Rec {
    (0..6).map(|c| value(rng, c)).collect()
}

fn cells(rec: &Rec) -> Vec<Option<&[u8]>> {
    rec.iter()
        .map(|c| c.as_deref().map(str::as_bytes))
        .collect()
}

fn router() -> Router {
    Router::new(
        columns(),
        CaseFolding::Unicode,
        Config {
            lanes: 2,
            overlay_limit: 64,
            ..common::config()
        },
    )
    .unwrap()
}

#[test]
fn ranges_and_patterns_agree_with_brute_force() {
    let cols = columns();
    for seed in 0..6u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = router();
        let mut shapes: BTreeMap<u32, Expr> = BTreeMap::new();
        let mut out = Vec::new();
        for step in 0..5_000 {
            if step < 600 || rng.gen_ratio(1, 5) {
                let id = rng.gen_range(0..400);
                if rng.gen_ratio(1, 6) {
                    r.remove_shape(id).unwrap();
                    shapes.remove(&id);
                } else {
                    let (sql, params) = shape(&mut rng);
                    let Ok(expr) = parse_with(&sql, &cols, &params) else {
                        continue;
                    };
                    r.add_shape_with(id, &sql, &params)
                        .unwrap_or_else(|e| panic!("{sql} {params:?}: {e}"));
                    shapes.insert(id, expr);
                }
                continue;
            }
            let (a, b) = (row(&mut rng), row(&mut rng));
            let (ca, cb) = (cells(&a), cells(&b));
            let (change, rows) = match rng.gen_range(0..3) {
                0 => (Change::Insert(&ca), vec![&a]),
                1 => (Change::Delete(&ca), vec![&a]),
                _ => (Change::Update(&ca, &cb), vec![&a, &b]),
            };
            r.route(&change, &mut out).unwrap();
            let want = reference(&cols, &shapes, &rows);
            assert_eq!(out, want, "seed {seed} step {step}: {rows:?}");
        }
        let counts = r.shape_counts();
        assert_eq!(counts.indexed + counts.scanned, shapes.len());
    }
}

#[test]
fn range_and_pattern_shapes_are_not_scanned() {
    let r = router();
    let adds = [
        "i > 3 AND i < 9",
        "f BETWEEN 1 AND 2",
        "n >= 1.5",
        "ts < '2024-01-01 00:00:00+00'",
        "d > '2000-01-01'",
        "t LIKE 'ab%'",
        "t ILIKE '%bug%'",
        "lower(t) LIKE 'bug%'",
        "t LIKE '%x_y'",
    ];
    for (id, sql) in adds.iter().enumerate() {
        r.add_shape(id as u32, sql).unwrap();
    }
    r.add_shape(100, "t LIKE '___'").unwrap();
    r.add_shape(101, "t NOT LIKE 'a%'").unwrap();
    r.add_shape(102, "t LIKE '%' AND i <> 3").unwrap();
    r.add_shape(103, "i <> 3").unwrap();
    let counts = r.shape_counts();
    assert_eq!(
        (counts.indexed, counts.scanned),
        (adds.len(), 4),
        "{counts:?}"
    );
    let why = |reason: ScanReason| counts.scanned_because[reason.index()];
    assert_eq!(why(ScanReason::PatternWithoutLiteral), 3, "{counts:?}");
    assert_eq!(why(ScanReason::NoEquality), 1, "{counts:?}");
    let by = r.index_counts();
    assert_eq!(
        (by.equality, by.range, by.literal, by.scanned),
        (0, 7, 2, 4),
        "{by:?}"
    );
}

#[test]
fn shapes_of_one_template_and_key_share_one_run() {
    let r = router();
    let templates = [
        "i = $1",
        "i = $1 AND t <> 'done'",
        "i = $1 AND f >= 3",
        "i = $1 AND ts >= '2024-01-01 00:00:00+00' AND ts < '2024-02-01 00:00:00+00'",
        "i = $1 AND lower(t) LIKE '%bug%'",
        "i = $1 AND n > 5.5",
    ];
    // 5 users × 6 templates × 4 equal shapes each
    let mut id = 0;
    for user in 0..5 {
        for t in templates {
            for _ in 0..4 {
                r.add_shape_with(id, t, &[Some(user.to_string())]).unwrap();
                id += 1;
            }
        }
    }
    assert_eq!(r.sharing(), (5 * 6, 6), "(groups, templates)");
    let rec: Rec = vec![
        Some("2".into()),
        Some("1".into()),
        Some("9".into()),
        Some("a Bug".into()),
        Some("2024-01-15 00:00:00+00".into()),
        None,
    ];
    let mut out = Vec::new();
    r.route(&Change::Insert(&cells(&rec)), &mut out).unwrap();
    assert_eq!(out.len(), 4 * 5, "every template but `f >= 3`: {out:?}");
    let m = r.metrics();
    assert_eq!(m.candidates, 24, "{m:?}");
    assert_eq!(m.predicate_evaluations, 6, "one run per group: {m:?}");
    assert_eq!(m.evaluations_saved, 18, "{m:?}");
    // removing every shape frees every group and template
    for i in 0..id {
        r.remove_shape(i).unwrap();
    }
    assert_eq!(r.sharing(), (0, 0));
    assert_eq!(r.shape_count(), 0);
}
