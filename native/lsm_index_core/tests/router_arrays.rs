//! Array shapes through the router's element index: `tags @> const` (under one of its
//! elements), `tags && const` (under each), `const = ANY(tags)` (under the constant), against
//! a brute-force reference (every shape's parsed WHERE evaluated on every row) under churn,
//! updates, NULL arrays, NULL and duplicate elements, empty arrays and unparseable text.

mod common;

use common::arrays::{columns, record, shape_sql};
use common::shapes::{reference, Rec};

use lsm_index_core::predicate::{parse, CaseFolding};
use lsm_index_core::router::{Change, Router};
use lsm_index_core::Config;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;

fn cells(rec: &Rec) -> Vec<Option<&[u8]>> {
    rec.iter()
        .map(|c| c.as_deref().map(str::as_bytes))
        .collect()
}

#[test]
fn element_indexed_shapes_agree_with_brute_force() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let config = Config {
            lanes: 2,
            overlay_limit: 32,
            ..common::config()
        };
        let r = Router::new(columns(), CaseFolding::Unicode, config).unwrap();
        let mut shapes = BTreeMap::new();
        let mut out = Vec::new();
        let mut routed = 0;
        for step in 0..5_000 {
            if rng.gen_ratio(1, 4) {
                let id = rng.gen_range(0..150);
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
            let (old, new) = (record(&mut rng), record(&mut rng));
            let (o, n) = (cells(&old), cells(&new));
            let (change, rows): (Change, Vec<&Rec>) = match rng.gen_range(0..3) {
                0 => (Change::Insert(&n), vec![&new]),
                1 => (Change::Delete(&o), vec![&old]),
                _ => (Change::Update(&o, &n), vec![&old, &new]),
            };
            r.route(&change, &mut out).unwrap();
            assert_eq!(
                out,
                reference(&columns(), &shapes, &rows),
                "seed {seed} step {step}"
            );
            routed += out.len();
        }
        assert!(routed > 1_000, "seed {seed}: only {routed} routed");
        // most array shapes are found through the element index, not scanned
        let counts = r.shape_counts();
        assert!(counts.indexed > counts.scanned, "{counts:?}");
    }
}

#[test]
fn a_change_probes_each_element_once_and_misses_stop_at_the_presence_filter() {
    let r = Router::new(columns(), CaseFolding::Unicode, common::config()).unwrap();
    r.add_shape(1, "tags @> '{urgent,a}'").unwrap();
    r.add_shape(2, "tags && '{b,c}'").unwrap();
    r.add_shape(3, "'x y' = ANY(tags)").unwrap();
    r.add_shape(4, "tags @> '{NULL}'").unwrap(); // never true: indexed under no key
    assert_eq!(r.shape_counts().indexed, 4);
    let mut out = Vec::new();
    let row = |tags: &'static str| vec![None, Some(tags.as_bytes()), None, None];
    for (tags, want) in [
        ("{a,urgent,a}", vec![1]),
        ("{urgent}", vec![]),
        ("{c,\"x y\",b}", vec![2, 3]),
        ("{}", vec![]),
        ("{NULL,b}", vec![2]),
    ] {
        let cells = row(tags);
        r.route(&Change::Insert(&cells), &mut out).unwrap();
        assert_eq!(out, want, "{tags}");
    }
    let m = r.metrics();
    // one probe per element of each row: 3 + 1 + 3 + 0 + 1 (a NULL element is no key)
    assert_eq!(m.presence_probes, 8);
}
