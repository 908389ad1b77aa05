//! `Router::add_shapes`: a batch is the shapes added one after the other (same routes, ids
//! replaced in order), compiled in parallel when large; at a refused clause the shapes before
//! it are added and none after; a persistent router records every shape of it.

mod common;

use common::shapes::{cell, columns, shape_sql, Rec};

use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::{Change, Router};
use lsm_index_core::{Config, Error, SyncMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn router() -> Router {
    Router::new(columns(), CaseFolding::Unicode, common::config()).unwrap()
}

/// A random shape: (id, clause, parameters), ids repeating so later ones replace earlier.
fn shapes(rng: &mut StdRng, n: usize) -> Vec<(u32, String, Vec<Option<String>>)> {
    (0..n)
        .map(|_| {
            let id = rng.gen_range(0..(n as u32 * 3 / 4));
            match rng.gen_range(0..4) {
                0 => {
                    let user = rng.gen_range(0..12).to_string();
                    let param = (!rng.gen_ratio(1, 20)).then_some(user);
                    (
                        id,
                        "user_id = $1 AND status <> $2".into(),
                        vec![param, Some("late".into())],
                    )
                }
                1 => (
                    id,
                    "score > $1 AND score < $2".into(),
                    vec![Some("-1".into()), Some("0.75".into())],
                ),
                _ => (id, shape_sql(rng), Vec::new()),
            }
        })
        .collect()
}

fn borrowed(shapes: &[(u32, String, Vec<Option<String>>)]) -> Vec<(u32, &str, &[Option<String>])> {
    shapes
        .iter()
        .map(|(id, sql, params)| (*id, sql.as_str(), params.as_slice()))
        .collect()
}

/// Routes the same random inserts and updates through `a` and `b`.
fn assert_route_alike(a: &Router, b: &Router, rng: &mut StdRng) {
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..2_000 {
        let old: Rec = (0..columns().len()).map(|c| cell(rng, c)).collect();
        let new: Rec = (0..columns().len()).map(|c| cell(rng, c)).collect();
        let old: Vec<Option<&[u8]>> = old
            .iter()
            .map(|c| c.as_deref().map(str::as_bytes))
            .collect();
        let new: Vec<Option<&[u8]>> = new
            .iter()
            .map(|c| c.as_deref().map(str::as_bytes))
            .collect();
        for change in [Change::Insert(&old), Change::Update(&old, &new)] {
            a.route(&change, &mut x).unwrap();
            b.route(&change, &mut y).unwrap();
            assert_eq!(x, y, "{change:?}");
        }
    }
}

#[test]
fn a_batch_routes_as_its_shapes_added_one_by_one() {
    // 3,000 shapes: compiled on several threads; 300: on the caller's
    for (seed, n) in [(1, 3_000), (2, 300)] {
        let mut rng = StdRng::seed_from_u64(seed);
        let all = shapes(&mut rng, n);
        let (batch, one_by_one) = (router(), router());
        batch.add_shapes(&borrowed(&all)).unwrap();
        for (id, sql, params) in &all {
            one_by_one.add_shape_with(*id, sql, params).unwrap();
        }
        assert_eq!(batch.shape_count(), one_by_one.shape_count());
        assert_eq!(batch.index_counts(), one_by_one.index_counts());
        assert_route_alike(&batch, &one_by_one, &mut rng);
    }
}

#[test]
fn a_refused_clause_stops_the_batch_there() {
    let mut rng = StdRng::seed_from_u64(3);
    let mut all = shapes(&mut rng, 6_000);
    // the second chunk of a parallel batch: the first is added, the rest of this one too
    all[5_500].1 = "user_id = 'not a number'".into();
    all[5_700].1 = "no_such_column = 1".into();
    let (r, twin) = (router(), router());
    r.add_shape(9_000, "user_id = 1").unwrap();
    twin.add_shape(9_000, "user_id = 1").unwrap();
    match r.add_shapes(&borrowed(&all)) {
        Err((5_500, Error::InvalidPredicate { .. })) => {}
        other => panic!("expected the first refusal, at 5500: {other:?}"),
    }
    twin.add_shapes(&borrowed(&all[..5_500])).unwrap();
    assert_eq!(r.shape_count(), twin.shape_count());
    assert_route_alike(&r, &twin, &mut rng);
    // a parameter with a NUL is refused too
    let nul = [(1, "user_id = $1", &[Some("1\0".to_string())][..])];
    assert!(matches!(
        r.add_shapes(&nul),
        Err((0, Error::InvalidPredicate { .. }))
    ));
    assert!(r.add_shapes(&[]).is_ok());
}

#[test]
fn a_persistent_router_records_every_shape_of_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let open = || {
        let config = Config { ..common::config() };
        Router::open(
            dir.path(),
            columns(),
            CaseFolding::Unicode,
            config,
            SyncMode::Flush,
        )
    };
    let mut rng = StdRng::seed_from_u64(4);
    let all = shapes(&mut rng, 1_500);
    let twin = router();
    twin.add_shapes(&borrowed(&all)).unwrap();
    {
        let r = open().unwrap();
        r.add_shapes(&borrowed(&all)).unwrap();
        r.close().unwrap();
        assert!(matches!(
            r.add_shapes(&borrowed(&all)),
            Err((0, Error::Closed))
        ));
    }
    let r = open().unwrap();
    assert_eq!(r.shape_count(), twin.shape_count());
    assert_route_alike(&r, &twin, &mut rng);
}

#[test]
fn a_clause_read_once_types_each_shape_with_its_own_parameters() {
    // the second and later shapes of a clause reuse its syntax: their values, their errors
    use lsm_index_core::predicate::parse_in;
    let r = router();
    let sql = "user_id = $1 AND (status IN ($2, 'x') OR score > $3)";
    let cases: [[Option<&str>; 3]; 5] = [
        [Some("1"), Some("open"), Some("2.5")],
        [Some("2"), None, Some("-1")],
        [Some("not a number"), Some("open"), Some("1")],
        [Some("3"), Some("late"), Some("nope")],
        [Some("4"), Some("late"), None],
    ];
    for (id, case) in cases.iter().enumerate() {
        let params: Vec<Option<String>> = case.iter().map(|p| p.map(str::to_string)).collect();
        let fresh = parse_in(sql, &columns(), &params, CaseFolding::Unicode);
        match (r.add_shape_with(id as u32, sql, &params), fresh) {
            (Ok(()), Ok(_)) => {}
            (Err(got), Err(want)) => assert_eq!(got.to_string(), want.to_string()),
            (got, want) => panic!("{case:?}: router {got:?}, parse {want:?}"),
        }
    }
    assert_eq!(r.shape_count(), 3);
    // too few parameters: the error names the missing one, as a fresh read does
    let e = r.add_shape_with(9, sql, &[Some("1".into())]).unwrap_err();
    assert!(
        e.to_string().contains("$2 given, 1 parameters passed"),
        "{e}"
    );
    let cells = |u: &str, s: &str, score: &str| -> Vec<Option<Vec<u8>>> {
        let mut row = vec![None; columns().len()];
        row[1] = Some(u.as_bytes().to_vec());
        row[2] = Some(s.as_bytes().to_vec());
        row[3] = Some(score.as_bytes().to_vec());
        row
    };
    let mut out = Vec::new();
    for (row, want) in [
        (cells("1", "open", "0"), vec![0]),
        (cells("2", "late", "0"), vec![1]),
        (cells("4", "late", "9"), vec![4]),
        (cells("4", "y", "9"), vec![]),
    ] {
        let row: Vec<Option<&[u8]>> = row.iter().map(|c| c.as_deref()).collect();
        r.route(&Change::Insert(&row), &mut out).unwrap();
        assert_eq!(out, want);
    }
}
