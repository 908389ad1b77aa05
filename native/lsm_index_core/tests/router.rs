//! The ShapeRouter against a brute-force reference (every shape's parsed WHERE evaluated on
//! every row), under shape churn, updates, NULLs and unparseable values; plus the contracts the
//! reference cannot see (evaluate once, presence metrics, replacing ids).

mod common;

use common::shapes::{cell, columns, reference, shape_sql, Rec};

use lsm_index_core::predicate::{parse, CaseFolding, ColumnType};
use lsm_index_core::router::{Change, ChangeCells, Router, RowCells, ShapeCounts};
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

fn router() -> Router {
    Router::new(
        columns(),
        CaseFolding::Unicode,
        Config {
            lanes: 4,
            overlay_limit: 64,
            ..common::config()
        },
    )
    .unwrap()
}

fn record(rng: &mut StdRng) -> Rec {
    (0..columns().len()).map(|c| cell(rng, c)).collect()
}

fn cells(rec: &Rec) -> Vec<Option<&[u8]>> {
    rec.iter()
        .map(|c| c.as_deref().map(str::as_bytes))
        .collect()
}

#[test]
fn agrees_with_brute_force_under_churn() {
    for seed in 0..4u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let r = router();
        let mut shapes = BTreeMap::new();
        let mut out = Vec::new();
        for step in 0..6_000 {
            if rng.gen_ratio(1, 4) {
                let id = rng.gen_range(0..300);
                if rng.gen_ratio(1, 5) {
                    r.remove_shape(id).unwrap();
                    shapes.remove(&id);
                } else {
                    let sql = shape_sql(&mut rng);
                    r.add_shape(id, &sql)
                        .unwrap_or_else(|e| panic!("{sql}: {e}"));
                    shapes.insert(id, parse(&sql, &columns()).unwrap());
                }
                continue;
            }
            let (a, b) = (record(&mut rng), record(&mut rng));
            // updates often keep most columns: copy some of the old row
            let b: Rec = b
                .into_iter()
                .zip(&a)
                .map(|(n, o)| if rng.gen_bool(0.6) { o.clone() } else { n })
                .collect();
            let (ca, cb) = (cells(&a), cells(&b));
            let (change, expected) = match rng.gen_range(0..10) {
                0 => (Change::Truncate, shapes.keys().copied().collect()),
                1..=3 => (Change::Insert(&ca), reference(&columns(), &shapes, &[&a])),
                4 => (Change::Delete(&ca), reference(&columns(), &shapes, &[&a])),
                _ => (
                    Change::Update(&ca, &cb),
                    reference(&columns(), &shapes, &[&a, &b]),
                ),
            };
            r.route(&change, &mut out).unwrap();
            assert_eq!(
                out, expected,
                "seed {seed} step {step}: {change:?} with shapes {shapes:?}"
            );
        }
        let m = r.metrics();
        assert!(m.changes > 4_000 && m.candidates > 0 && m.unparseable_rows > 0);
    }
}

#[test]
fn route_many_equals_route_each() {
    let mut rng = StdRng::seed_from_u64(7);
    let r = router();
    for id in 0..200 {
        r.add_shape(id, &shape_sql(&mut rng)).unwrap();
    }
    let recs: Vec<Rec> = (0..300).map(|_| record(&mut rng)).collect();
    let cells: Vec<Vec<Option<&[u8]>>> = recs.iter().map(cells).collect();
    let changes: Vec<Change> = cells
        .chunks(2)
        .map(|p| Change::Update(&p[0], &p[1]))
        .chain(cells.iter().map(|c| Change::Insert(c)))
        .collect();
    let mut many = Vec::new();
    r.route_many(&changes, &mut many).unwrap();
    assert_eq!(many.len(), changes.len());
    for (change, got) in changes.iter().zip(&many) {
        let mut one = Vec::new();
        r.route(change, &mut one).unwrap();
        assert_eq!(&one, got);
    }
}

fn rec(values: &[(&str, &str)]) -> Rec {
    let cols = columns();
    let mut r = vec![None; cols.len()];
    for (name, v) in values {
        let c = cols.iter().position(|(n, _)| n == name).unwrap();
        r[c] = Some(v.to_string());
    }
    r
}

#[test]
fn an_update_evaluates_unchanged_shapes_once() {
    let r = router();
    r.add_shape(1, "user_id = 7 AND status = 'open'").unwrap();
    r.add_shape(2, "user_id = 7 AND score > 1").unwrap();
    r.add_shape(3, "note NOT LIKE 'a%'").unwrap(); // scanned
    let old = rec(&[("user_id", "7"), ("status", "open"), ("note", "x")]);
    let new = rec(&[("user_id", "7"), ("status", "open"), ("note", "abc")]);
    let mut out = Vec::new();
    r.route(&Change::Update(&cells(&old), &cells(&new)), &mut out)
        .unwrap();
    assert_eq!(out, vec![1, 3]);
    let m = r.metrics();
    // old row: shapes 1, 2 (candidates) and 3 (scanned); new row: only 3 read `note`
    assert_eq!(m.predicate_evaluations, 4, "{m:?}");
    assert_eq!(m.presence_probes, 1, "user_id unchanged: one lookup");
}

/// A row whose cells are read one by one, each read recorded.
struct Counted<'t> {
    cells: &'t [Option<&'t [u8]>],
    asked: Vec<usize>,
}

impl<'t> RowCells<'t> for Counted<'t> {
    fn width(&self) -> usize {
        self.cells.len()
    }

    fn cell(&mut self, column: usize) -> lsm_index_core::Result<Option<&'t [u8]>> {
        self.asked.push(column);
        Ok(self.cells[column])
    }
}

fn col(name: &str) -> usize {
    columns().iter().position(|(n, _)| n == name).unwrap()
}

#[test]
fn an_unparseable_value_routes_the_shapes_that_could_take_the_row() {
    let r = router();
    r.add_shape(1, "user_id = 7 AND score > 1").unwrap();
    r.add_shape(2, "user_id = 8 AND score > 1").unwrap();
    r.add_shape(3, "note NOT LIKE 'a%' AND score > 1").unwrap(); // scanned
    r.add_shape(4, "status = 'open'").unwrap();
    r.add_shape(5, "lower(status) = 'late' AND score < 0")
        .unwrap();
    let route = |values: &[(&str, &str)]| {
        let mut out = Vec::new();
        r.route(&Change::Insert(&cells(&rec(values))), &mut out)
            .unwrap();
        out
    };
    // a residual's column: its candidates and the scanned shapes that read it (they could
    // match), not the shapes the row's user_id already rules out (2, 5)
    assert_eq!(route(&[("user_id", "7"), ("score", "x")]), [1, 3]);
    assert_eq!(route(&[("user_id", "9"), ("score", "x")]), [3]);
    // an indexed column's: every shape found through it (any value could have found them),
    // and the scanned shapes reading it (none here)
    assert_eq!(route(&[("user_id", "x"), ("score", "2")]), [1, 2]);
    assert_eq!(route(&[("user_id", "x"), ("score", "x")]), [1, 2, 3]);
    assert_eq!(
        route(&[("user_id", "x"), ("status", "LATE"), ("score", "x")]),
        [1, 2, 3, 5],
        "a candidate through lower(status)"
    );
    let m = r.metrics();
    assert_eq!(m.unparseable_rows, 5, "{m:?}");
}

#[test]
fn a_miss_reads_only_the_columns_it_probes() {
    let r = router();
    for user in 0..100 {
        r.add_shape(user, &format!("user_id = {user} AND score > 1 AND active"))
            .unwrap();
    }
    r.add_shape(100, "status = 'open' AND note LIKE 'a%'")
        .unwrap();
    let row = rec(&[
        ("user_id", "1000"),
        ("score", "not a float"),
        ("active", "t"),
        ("status", "late"),
        ("note", "abc"),
    ]);
    let text = cells(&row);
    let mut reader = r.reader();
    let mut out = Vec::new();
    let mut source = Counted {
        cells: &text,
        asked: Vec::new(),
    };
    reader
        .route_cells(ChangeCells::Insert(&mut source), &mut out)
        .unwrap();
    assert!(out.is_empty());
    source.asked.sort_unstable();
    assert_eq!(source.asked, [col("user_id"), col("status")]);
    // a candidate reads (and parses) its residual's columns: the bad score routes it
    let row = rec(&[("user_id", "7"), ("score", "not a float"), ("active", "t")]);
    let text = cells(&row);
    let mut source = Counted {
        cells: &text,
        asked: Vec::new(),
    };
    reader
        .route_cells(ChangeCells::Insert(&mut source), &mut out)
        .unwrap();
    assert_eq!(out, [7]);
    source.asked.sort_unstable();
    assert_eq!(
        source.asked,
        [col("user_id"), col("status"), col("score"), col("active")]
    );
    // an update's miss: both rows' probed columns, compared; nothing else
    let before = rec(&[("user_id", "1000"), ("score", "x"), ("note", "abc")]);
    let after = rec(&[("user_id", "1000"), ("score", "7"), ("note", "xyz")]);
    let (before, after) = (cells(&before), cells(&after));
    let mut old = Counted {
        cells: &before,
        asked: Vec::new(),
    };
    let mut new = Counted {
        cells: &after,
        asked: Vec::new(),
    };
    reader
        .route_cells(ChangeCells::Update(&mut old, &mut new), &mut out)
        .unwrap();
    assert!(out.is_empty());
    for asked in [&mut old.asked, &mut new.asked] {
        asked.sort_unstable();
        asked.dedup();
        assert_eq!(*asked, [col("user_id"), col("status")]);
    }
    drop(reader);
    assert_eq!(
        r.metrics().unparseable_rows,
        1,
        "the miss never saw its bad score"
    );
}

#[test]
fn an_update_compares_text_and_parses_what_changed() {
    let r = router();
    r.add_shape(1, "user_id = 7 AND score > 1").unwrap();
    r.add_shape(2, "user_id = 7 AND status = 'open'").unwrap();
    let update = |old: &[(&str, &str)], new: &[(&str, &str)]| {
        let before = r.metrics();
        let mut out = Vec::new();
        let (old, new) = (rec(old), rec(new));
        r.route(&Change::Update(&cells(&old), &cells(&new)), &mut out)
            .unwrap();
        let after = r.metrics();
        let evaluations = after.predicate_evaluations - before.predicate_evaluations;
        let probes = after.presence_probes - before.presence_probes;
        (out, evaluations, probes)
    };
    let u7 = ("user_id", "7");
    // only a residual's column changed: one probe, shape 2 evaluated once
    assert_eq!(
        update(&[u7, ("score", "0.5")], &[u7, ("score", "2")]),
        (vec![1], 3, 1)
    );
    // no referenced column changed: the new row runs nothing
    assert_eq!(
        update(
            &[u7, ("id", "1"), ("score", "2")],
            &[u7, ("id", "2"), ("score", "2")]
        ),
        (vec![1], 2, 1)
    );
    // text that differs but is the same value: evaluated again, same answer
    assert_eq!(
        update(&[u7, ("score", "1.50")], &[u7, ("score", "1.5")]),
        (vec![1], 3, 1)
    );
    // the same unparseable text: routed by the old row, not looked at again
    assert_eq!(
        update(
            &[u7, ("score", "x")],
            &[u7, ("score", "x"), ("status", "open")]
        ),
        (vec![1, 2], 2, 1)
    );
    // a user_id that does not parse: every shape found through user_id, from either row
    assert_eq!(
        update(&[("user_id", "8")], &[("user_id", "x")]),
        (vec![1, 2], 0, 1)
    );
}

#[test]
fn replacing_removing_and_truncating() {
    let r = router();
    let row = rec(&[("user_id", "7"), ("status", "open")]);
    let c = cells(&row);
    let mut out = Vec::new();
    r.add_shape(5, "user_id = 7").unwrap();
    r.add_shape(6, "status = 'open'").unwrap();
    r.route(&Change::Insert(&c), &mut out).unwrap();
    assert_eq!(out, vec![5, 6]);
    r.add_shape(5, "user_id = 8").unwrap();
    r.route(&Change::Insert(&c), &mut out).unwrap();
    assert_eq!(out, vec![6], "re-adding an id replaces its WHERE");
    r.add_shape(5, "status <> 'closed'").unwrap();
    assert_eq!(
        r.shape_counts(),
        ShapeCounts {
            indexed: 1,
            scanned: 1,
            scanned_because: [1, 0, 0, 0, 0, 0],
        }
    );
    r.route(&Change::Insert(&c), &mut out).unwrap();
    assert_eq!(out, vec![5, 6]);
    r.remove_shape(6).unwrap();
    r.remove_shape(6).unwrap();
    r.route(&Change::Truncate, &mut out).unwrap();
    assert_eq!(out, vec![5]);
    assert!(matches!(
        r.add_shape(9, "nope = 1"),
        Err(lsm_index_core::Error::InvalidPredicate { .. })
    ));
    r.route(&Change::Truncate, &mut out).unwrap();
    assert_eq!(out, vec![5], "a refused shape leaves nothing behind");
}

#[test]
fn misses_stop_at_the_presence_filter() {
    let r = router();
    for id in 0..10_000 {
        r.add_shape(id, &format!("user_id = {id}")).unwrap();
    }
    let mut out = Vec::new();
    for v in 10_000..20_000 {
        let row = rec(&[("user_id", &v.to_string())]);
        r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
        assert!(out.is_empty());
    }
    let row = rec(&[("user_id", "42")]);
    r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
    assert_eq!(out, vec![42]);
    let m = r.metrics();
    assert_eq!(m.presence_probes, 10_001);
    assert!(m.presence_false_positive_rate() < 0.02, "{m:?}");
    assert_eq!(m.presence_passes - m.presence_false_positives, 1);
    // removing most shapes rebuilds the filter; the survivors are still found
    for id in 0..9_000 {
        r.remove_shape(id).unwrap();
    }
    let row = rec(&[("user_id", "9500")]);
    r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
    assert_eq!(out, vec![9500]);
}

#[test]
fn bad_tables_are_refused() {
    assert!(Router::new(vec![], CaseFolding::Unicode, common::config()).is_err());
    let twice = vec![
        ("a".to_string(), ColumnType::Int8),
        ("a".to_string(), ColumnType::Text),
    ];
    assert!(Router::new(twice, CaseFolding::Unicode, common::config()).is_err());
    let r = router();
    let short = [None, None];
    assert!(r.route(&Change::Insert(&short), &mut Vec::new()).is_err());
}

#[test]
fn a_persistent_router_reopens_with_its_shapes() {
    use lsm_index_core::SyncMode;
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Router::open(
            dir.path(),
            columns(),
            CaseFolding::Unicode,
            common::config(),
            SyncMode::Flush,
        )
    };
    let row = rec(&[("user_id", "7"), ("status", "open")]);
    let c = cells(&row);
    let mut out = Vec::new();
    {
        let r = open().unwrap();
        assert!(matches!(
            r.try_add_shape(1, "user_id = 7"),
            Err(lsm_index_core::Error::WouldBlock { .. })
        ));
        r.add_shape(1, "user_id = 7").unwrap();
        r.add_shape(2, "status = 'open'").unwrap();
        r.add_shape(3, "user_id = 8").unwrap();
        r.add_shape(3, "status NOT LIKE 'x%'").unwrap();
        r.add_shape(4, "user_id = 7").unwrap();
        r.remove_shape(4).unwrap();
        assert!(matches!(open(), Err(lsm_index_core::Error::Locked { .. })));
        r.close().unwrap();
        assert!(matches!(
            r.route(&Change::Insert(&c), &mut out),
            Err(lsm_index_core::Error::Closed)
        ));
        assert!(r.add_shape(5, "user_id = 1").is_err());
    }
    let r = open().unwrap();
    r.route(&Change::Insert(&c), &mut out).unwrap();
    assert_eq!(out, vec![1, 2, 3]);
    assert_eq!(
        r.shape_counts(),
        ShapeCounts {
            indexed: 2,
            scanned: 1,
            scanned_because: [0, 0, 0, 0, 0, 1],
        }
    );
    drop(r);
    let other = vec![("user_id".to_string(), ColumnType::Int8)];
    assert!(Router::open(
        dir.path(),
        other,
        CaseFolding::Unicode,
        common::config(),
        SyncMode::Flush
    )
    .is_err());
}

/// Readers route while one thread adds, replaces and removes other shapes: a stable shape
/// is never missed. The readers keep going until the churn has made 1,000 changes, so the
/// reads really overlap it, however the threads are scheduled.
#[test]
fn routes_while_shapes_churn_never_lose_a_stable_shape() {
    use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
    use std::sync::Arc;
    const CHURN: u64 = 1_000;
    let r = Arc::new(router());
    for k in 0..100u32 {
        r.add_shape(k, &format!("user_id = {k}")).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let churned = Arc::new(AtomicU64::new(0));
    // set when the churn thread ends, also by a panic, so readers never wait for it in vain
    let churn_over = Arc::new(AtomicBool::new(false));
    struct Over(Arc<AtomicBool>);
    impl Drop for Over {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let churn = {
        let (r, stop, churned) = (r.clone(), stop.clone(), churned.clone());
        let over = Over(churn_over.clone());
        std::thread::spawn(move || {
            let _over = over;
            let mut rng = StdRng::seed_from_u64(11);
            while !stop.load(Ordering::Relaxed) {
                let id = rng.gen_range(1000..1100);
                let k = rng.gen_range(0..100);
                if rng.gen_ratio(1, 3) {
                    r.remove_shape(id).unwrap();
                } else {
                    let sql = if rng.gen_bool(0.5) {
                        format!("user_id = {k}")
                    } else {
                        format!("user_id IN ({k}, {}) AND status IS NULL", k + 1)
                    };
                    r.add_shape(id, &sql).unwrap();
                }
                churned.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    let readers: Vec<_> = (0..2)
        .map(|t| {
            let (r, churned, churn_over) = (r.clone(), churned.clone(), churn_over.clone());
            std::thread::spawn(move || {
                let mut rng = StdRng::seed_from_u64(t);
                let mut out = Vec::new();
                let mut routed = 0;
                while routed < 40_000
                    || (churned.load(Ordering::SeqCst) < CHURN
                        && !churn_over.load(Ordering::SeqCst))
                {
                    let k: u32 = rng.gen_range(0..100);
                    let row = rec(&[("user_id", &k.to_string())]);
                    r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
                    assert!(out.contains(&k), "stable shape {k} missing: {out:?}");
                    assert!(out.windows(2).all(|w| w[0] < w[1]), "{out:?}");
                    assert!(out.iter().all(|&id| id == k || (1000..1100).contains(&id)));
                    routed += 1;
                }
            })
        })
        .collect();
    for h in readers {
        h.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(churned.load(Ordering::SeqCst) >= CHURN);
}

#[test]
fn a_catalog_larger_than_a_replay_chunk_reopens_whole() {
    use lsm_index_core::SyncMode;
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        Router::open(
            dir.path(),
            columns(),
            CaseFolding::Unicode,
            common::config(),
            SyncMode::None,
        )
    };
    {
        let r = open().unwrap();
        for id in 0..70_000u32 {
            r.add_shape(id, &format!("user_id = {id}")).unwrap();
        }
        r.add_shape(70_000, "status NOT LIKE 'x%'").unwrap();
        r.remove_shape(123).unwrap();
        r.close().unwrap();
    }
    let r = open().unwrap();
    assert_eq!(
        r.shape_counts(),
        ShapeCounts {
            indexed: 69_999,
            scanned: 1,
            scanned_because: [0, 0, 0, 0, 0, 1],
        }
    );
    let mut out = Vec::new();
    for id in [0u32, 122, 123, 65_535, 65_536, 69_999] {
        let row = rec(&[("user_id", &id.to_string()), ("status", "open")]);
        r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
        let expected: Vec<u32> = if id == 123 {
            vec![70_000]
        } else {
            vec![id, 70_000]
        };
        assert_eq!(out, expected, "user_id {id}");
    }
}

/// A row's values and the shapes it must route to.
type Case<'a> = (&'a [(&'a str, &'a str)], Vec<u32>);

/// A shape whose ORs carry an equality in every branch is indexed under each branch's
/// equality (on one or several columns) and routes exactly; one branch without an equality
/// makes it scanned.
#[test]
fn lower_and_upper_equalities_are_indexed_and_errors_route() {
    let r = router();
    r.add_shape(1, "lower(status) = 'open'").unwrap();
    r.add_shape_with(2, "upper(note) IN ($1, 'B')", &[Some("A".into())])
        .unwrap();
    r.add_shape(3, "lower(status) = 'late' OR user_id = 3")
        .unwrap();
    r.add_shape(4, "user_id / (id - 1) = 0").unwrap(); // scanned: no equality
    r.add_shape(5, "TRUE").unwrap(); // scanned: constant
    r.add_shape(6, "user_id = 1 OR score > 1").unwrap(); // scanned: an OR branch
    assert_eq!(
        r.shape_counts(),
        ShapeCounts {
            indexed: 3,
            scanned: 3,
            scanned_because: [1, 1, 1, 0, 0, 0],
        }
    );
    let cases: [Case; 5] = [
        (&[("status", "OPEN"), ("id", "2")], vec![1, 5]),
        (
            &[("status", "open"), ("note", "a"), ("id", "2")],
            vec![1, 2, 5],
        ),
        (
            &[("status", "Late"), ("note", "b"), ("id", "2")],
            vec![2, 3, 5],
        ),
        (
            &[("user_id", "3"), ("status", "x"), ("id", "2")],
            vec![3, 5],
        ),
        // id - 1 = 0: division by zero, routed (it could match)
        (&[("user_id", "7"), ("id", "1")], vec![4, 5]),
    ];
    let mut out = Vec::new();
    for (values, want) in cases {
        let row = rec(values);
        r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
        assert_eq!(out, want, "{values:?}");
    }
    assert_eq!(r.metrics().evaluation_errors, 1);
}

#[test]
fn or_branches_are_indexed_under_every_branch() {
    let r = router();
    r.add_shape(1, "user_id = 7 OR user_id = 8").unwrap();
    r.add_shape(
        2,
        "(user_id = 1 AND score > 2) OR (status = 'x' AND score < 1)",
    )
    .unwrap();
    r.add_shape(3, "user_id IN (4, 5) OR status = 'open'")
        .unwrap();
    r.add_shape(4, "user_id = 9 OR score > 1").unwrap();
    assert_eq!(
        r.shape_counts(),
        ShapeCounts {
            indexed: 3,
            scanned: 1,
            scanned_because: [0, 1, 0, 0, 0, 0],
        }
    );
    let cases: [Case; 6] = [
        (&[("user_id", "8")], vec![1]),
        (&[("user_id", "1"), ("score", "3")], vec![2, 4]),
        (&[("user_id", "1"), ("score", "0")], vec![]),
        (&[("status", "x"), ("score", "0.5")], vec![2]),
        (&[("user_id", "5"), ("status", "open")], vec![3]),
        (&[("status", "open"), ("score", "7")], vec![3, 4]),
    ];
    let mut out = Vec::new();
    for (values, want) in cases {
        let row = rec(values);
        r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
        assert_eq!(out, want, "{values:?}");
    }
}

#[test]
fn ascii_case_folding_follows_lc_ctype_c() {
    let r = Router::new(columns(), CaseFolding::Ascii, common::config()).unwrap();
    r.add_shape(1, "status ILIKE 'über%'").unwrap();
    r.add_shape(2, "lower(status) = 'über'").unwrap();
    r.add_shape(3, "upper(note) IN ('ÜBER', 'A')").unwrap();
    assert_eq!(
        r.shape_counts().indexed,
        3,
        "lower/upper equalities and the ILIKE prefix are indexed"
    );
    let cases: [Case; 4] = [
        (&[("status", "über alles")], vec![1]),
        (&[("status", "Über")], vec![]),
        (&[("status", "ÜBER"), ("note", "über")], vec![]),
        (&[("status", "über"), ("note", "a")], vec![1, 2, 3]),
    ];
    let mut out = Vec::new();
    for (values, want) in cases {
        let row = rec(values);
        r.route(&Change::Insert(&cells(&row)), &mut out).unwrap();
        assert_eq!(out, want, "{values:?}");
    }
}
