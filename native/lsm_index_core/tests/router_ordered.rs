//! The router's ordered indexes (ranges and LIKE literals) and its template groups against a
//! brute-force reference: many shapes per template (the same clause with other parameters),
//! bounds at the corners of each type (NULLs, ±infinity, NaN, -0, numerics beyond float8,
//! texts sharing 8-byte prefixes, multibyte text), patterns that are empty, only `%`/`_`,
//! escaped, ILIKE-folded or read through `lower`/`upper`; under churn and updates.

mod common;

use common::ordered::{columns, row, shape};
use common::shapes::{reference, Rec};
use lsm_index_core::predicate::{parse_with, CaseFolding, Expr};
use lsm_index_core::router::{Change, Router, ScanReason};
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

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
