//! `Reader::route_batch` (and `Router::route_many`, built on it) against the same changes
//! routed one by one: proptest-generated batches over the router tests' three schemas — the
//! plain table (equalities, IN lists, ORs, `lower`/`upper` keys, LIKE, scanned shapes), the
//! array table (element keys) and the ordered one (ranges, LIKE literals, beside equality
//! shapes) — with inserts, deletes, updates keeping some of the old row (unchanged columns
//! reuse the old row's candidates), NULLs, unparseable cells, truncates and changes repeated
//! within a batch, across the batch's chunk boundaries. Two routers hold the same shapes,
//! one routes the batch, the other each change: the answers and every routing counter
//! (probes, passes, false positives, candidates, evaluations, unparseable rows) must agree.
//! A keeping batch (`Routes::keeping`) keeps per change what its new row routed alone, as
//! an insert, matches.

mod common;

use common::shapes::{cell, Rec};
use lsm_index_core::predicate::{CaseFolding, ColumnType};
use lsm_index_core::router::{Change, ChangeCells, Router, Routes, RowCells};
use lsm_index_core::{Config, Error};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The schema a case runs on.
#[derive(Clone, Copy, Debug)]
enum Schema {
    Plain,
    Arrays,
    Ordered,
}

impl Schema {
    fn columns(self) -> Vec<(String, ColumnType)> {
        match self {
            Schema::Plain => common::shapes::columns(),
            Schema::Arrays => common::arrays::columns(),
            Schema::Ordered => common::ordered::columns(),
        }
    }

    /// A random shape: (clause, parameters).
    fn shape(self, rng: &mut StdRng) -> (String, Vec<Option<String>>) {
        match self {
            Schema::Plain => match rng.gen_range(0..5) {
                0 => {
                    let user = Some(rng.gen_range(0..12).to_string());
                    let params = vec![user, Some("late".into())];
                    ("user_id = $1 AND status <> $2".into(), params)
                }
                1 => ("lower(status) = $1".into(), vec![Some("open".into())]),
                _ => (common::shapes::shape_sql(rng), Vec::new()),
            },
            Schema::Arrays => (common::arrays::shape_sql(rng), Vec::new()),
            // equality shapes beside the ranges and patterns: both kinds of candidate
            Schema::Ordered => match rng.gen_range(0..4) {
                0 => {
                    let value = common::ordered::value(rng, 0);
                    ("i = $1 AND t <> 'done'".into(), vec![value])
                }
                _ => common::ordered::shape(rng),
            },
        }
    }

    fn row(self, rng: &mut StdRng) -> Rec {
        match self {
            Schema::Plain => (0..self.columns().len()).map(|c| cell(rng, c)).collect(),
            Schema::Arrays => common::arrays::record(rng),
            Schema::Ordered => common::ordered::row(rng),
        }
    }
}

fn router(schema: Schema) -> Router {
    let config = Config {
        lanes: 2,
        overlay_limit: 32,
        ..common::config()
    };
    Router::new(schema.columns(), CaseFolding::Unicode, config).unwrap()
}

/// Two routers holding the same `n` random shapes; with `indexed_only`, none scanned (a
/// shape that would be is left out): then most changes of a batch find nothing.
fn routers(schema: Schema, seed: u64, n: usize, indexed_only: bool) -> (Router, Router) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (a, b) = (router(schema), router(schema));
    for id in 0..n as u32 {
        let (sql, params) = schema.shape(&mut rng);
        let scanned = a.shape_counts().scanned;
        if a.add_shape_with(id, &sql, &params).is_err() {
            continue;
        }
        if indexed_only && a.shape_counts().scanned > scanned {
            a.remove_shape(id).unwrap();
            continue;
        }
        b.add_shape_with(id, &sql, &params).unwrap();
    }
    (a, b)
}

/// What a change of a batch is: an op over rows of the pool.
#[derive(Clone, Debug)]
enum Op {
    Insert(usize),
    Delete(usize),
    /// Old row, new row: the new one keeps each old cell with probability 60%.
    Update(usize, usize),
    Truncate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..40usize).prop_map(Op::Insert),
        2 => (0..40usize).prop_map(Op::Delete),
        5 => (0..40usize, 0..40usize).prop_map(|(a, b)| Op::Update(a, b)),
        1 => Just(Op::Truncate),
    ]
}

/// The pool of rows a batch's changes take theirs from (so changes repeat), and per pair the
/// new row of an update: the old row with some cells of another.
fn pool(schema: Schema, seed: u64) -> Vec<Rec> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
    (0..40).map(|_| schema.row(&mut rng)).collect()
}

fn mixed(old: &Rec, other: &Rec, seed: usize) -> Rec {
    let mut rng = StdRng::seed_from_u64(seed as u64);
    let keep = |(o, n): (&Option<String>, &Option<String>)| {
        if rng.gen_bool(0.6) {
            o.clone()
        } else {
            n.clone()
        }
    };
    old.iter().zip(other).map(keep).collect()
}

fn cells(rec: &Rec) -> Vec<Option<&[u8]>> {
    rec.iter()
        .map(|c| c.as_deref().map(str::as_bytes))
        .collect()
}

/// The routing counters, without the timings (a batch times chunks, not changes).
fn counters(r: &Router) -> [u64; 8] {
    let m = r.metrics();
    [
        m.changes,
        m.presence_probes,
        m.presence_passes,
        m.presence_false_positives,
        m.candidates,
        m.predicate_evaluations,
        m.evaluations_saved,
        m.unparseable_rows,
    ]
}

fn check(schema: Schema, seed: u64, shapes: usize, indexed_only: bool, ops: &[Op]) {
    let (batched, single) = routers(schema, seed, shapes, indexed_only);
    let rows = pool(schema, seed);
    let news: Vec<Rec> = (0..rows.len())
        .map(|i| mixed(&rows[i], &rows[(i * 7 + 3) % rows.len()], i))
        .collect();
    let (olds, news): (Vec<_>, Vec<_>) = (
        rows.iter().map(cells).collect(),
        news.iter().map(cells).collect(),
    );
    let changes: Vec<Change> = ops
        .iter()
        .map(|op| match *op {
            Op::Insert(i) => Change::Insert(&olds[i]),
            Op::Delete(i) => Change::Delete(&olds[i]),
            Op::Update(i, j) if i % 3 == 0 => Change::Update(&olds[i], &olds[j]),
            Op::Update(i, _) => Change::Update(&olds[i], &news[i]),
            Op::Truncate => Change::Truncate,
        })
        .collect();
    let mut routes = Routes::default();
    batched.reader().route_batch(&changes, &mut routes).unwrap();
    assert_eq!(routes.len(), changes.len());
    let mut one = Vec::new();
    let mut reader = single.reader();
    for (i, change) in changes.iter().enumerate() {
        reader.route(change, &mut one).unwrap();
        assert_eq!(routes.get(i), &one[..], "{schema:?} change {i}: {change:?}");
    }
    drop(reader);
    assert_eq!(counters(&batched), counters(&single), "{schema:?}");
    // `Router::route_many` is the batch too
    let mut outs = Vec::new();
    batched.route_many(&changes, &mut outs).unwrap();
    assert!(outs.iter().map(Vec::as_slice).eq(routes.iter()));
    check_kept(&batched, &single, &changes, &routes);
}

/// A keeping batch answers as one that does not, and keeps per change what the row after it
/// matches: an insert's ids, none for a delete or truncate, for an update what its new row
/// routed as an insert matches (`Reader::route_keep` one by one the same).
fn check_kept(batched: &Router, single: &Router, changes: &[Change], routes: &Routes) {
    let mut keeping = Routes::keeping();
    batched.reader().route_batch(changes, &mut keeping).unwrap();
    let (mut reader, mut one) = (single.reader(), Vec::new());
    let (mut ids, mut kept) = (Vec::new(), Vec::new());
    for (i, change) in changes.iter().enumerate() {
        assert_eq!(keeping.get(i), routes.get(i), "change {i}: {change:?}");
        let after: &[u32] = match *change {
            Change::Insert(_) => routes.get(i),
            Change::Delete(_) | Change::Truncate => &[],
            Change::Update(_, new) => {
                reader.route(&Change::Insert(new), &mut one).unwrap();
                &one
            }
        };
        assert_eq!(
            keeping.kept(i),
            after,
            "change {i}: {change:?} routed {:?}",
            routes.get(i)
        );
        reader.route_keep(change, &mut ids, &mut kept).unwrap();
        assert_eq!((&ids[..], &kept[..]), (routes.get(i), after), "{change:?}");
    }
}

fn schema() -> impl Strategy<Value = Schema> {
    prop_oneof![
        Just(Schema::Plain),
        Just(Schema::Arrays),
        Just(Schema::Ordered)
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// A batch answers as its changes one by one, and counts as they do.
    #[test]
    fn a_batch_routes_as_its_changes_one_by_one(
        schema in schema(),
        seed in any::<u64>(),
        shapes in 0usize..250,
        indexed_only in any::<bool>(),
        ops in proptest::collection::vec(op(), 0..160),
    ) {
        check(schema, seed, shapes, indexed_only, &ops);
    }
}

#[test]
fn misses_stop_at_the_presence_filter_and_hits_are_found_across_chunks() {
    // 300 changes: five chunks, of inserts of users no shape has but every 50th
    let (batched, single) = (router(Schema::Plain), router(Schema::Plain));
    for r in [&batched, &single] {
        for user in 0..20u32 {
            let sql = format!("user_id = {user}");
            r.add_shape(user, &sql).unwrap();
            r.add_shape(100 + user, &format!("{sql} AND status = 'open'"))
                .unwrap();
        }
    }
    let recs: Vec<Rec> = (0..300)
        .map(|i| {
            let user = if i % 50 == 7 { i % 20 } else { 1000 + i };
            let mut rec: Rec = vec![None; 7];
            rec[1] = Some(user.to_string());
            rec[2] = Some("open".into());
            rec
        })
        .collect();
    let cells: Vec<_> = recs.iter().map(cells).collect();
    let changes: Vec<Change> = cells.iter().map(|c| Change::Insert(c)).collect();
    let mut routes = Routes::default();
    batched.reader().route_batch(&changes, &mut routes).unwrap();
    let hits: Vec<(usize, Vec<u32>)> = (0..routes.len())
        .filter(|&i| !routes.get(i).is_empty())
        .map(|i| (i, routes.get(i).to_vec()))
        .collect();
    let want: Vec<(usize, Vec<u32>)> = (0..300)
        .filter(|i| i % 50 == 7)
        .map(|i| (i, vec![(i % 20) as u32, 100 + (i % 20) as u32]))
        .collect();
    assert_eq!(hits, want);
    let m = batched.metrics();
    assert_eq!((m.changes, m.presence_probes), (300, 300));
    assert_eq!(m.candidates, 12, "two groups of one shape per hit");
    let mut outs = Vec::new();
    single.route_many(&changes, &mut outs).unwrap();
    assert_eq!(counters(&batched), counters(&single));
}

#[test]
fn a_change_of_the_wrong_width_ends_the_batch_after_the_changes_before_it() {
    let r = router(Schema::Plain);
    r.add_shape(1, "user_id = 3").unwrap();
    let rec: Rec = (0..7).map(|c| (c == 1).then(|| "3".to_string())).collect();
    let good = cells(&rec);
    let short = &good[..6];
    // the bad change inside the second chunk
    let mut changes: Vec<Change> = (0..100).map(|_| Change::Insert(&good)).collect();
    changes.insert(70, Change::Update(&good, short));
    let mut routes = Routes::default();
    let e = r.reader().route_batch(&changes, &mut routes).unwrap_err();
    assert!(
        matches!(
            e,
            Error::ColumnCount {
                expected: 7,
                got: 6
            }
        ),
        "{e}"
    );
    assert_eq!(routes.len(), 70);
    assert!(routes.iter().all(|ids| ids == [1]));
    let mut outs = Vec::new();
    assert!(r.route_many(&changes, &mut outs).is_err());
    assert_eq!(outs.len(), 70);
}

/// A row whose cells are handed out one at a time, refusing one column (as the NIF's record
/// reader refuses a value that is not text) and noting which columns were asked for.
struct Refusing<'t> {
    cells: Vec<Option<&'t [u8]>>,
    refuse: Option<usize>,
    asked: Vec<usize>,
}

impl<'t> RowCells<'t> for Refusing<'t> {
    fn width(&self) -> usize {
        self.cells.len()
    }

    fn cell(&mut self, column: usize) -> lsm_index_core::Result<Option<&'t [u8]>> {
        self.asked.push(column);
        if self.refuse == Some(column) {
            return Err(Error::BadCell { column });
        }
        Ok(self.cells[column])
    }
}

#[test]
fn batched_sources_are_read_as_one_by_one_and_the_first_refusal_in_route_order_wins() {
    let r = router(Schema::Plain);
    r.add_shape(1, "user_id = 3 AND note = 'x'").unwrap();
    let row: Rec = (0..7)
        .map(|c| match c {
            1 => Some("3".to_string()),
            6 => Some("x".to_string()),
            _ => None,
        })
        .collect();
    let miss: Rec = (0..7).map(|c| (c == 1).then(|| "4".to_string())).collect();
    let (row, miss) = (cells(&row), cells(&miss));
    // 0: a hit, 1: a miss, 2: a hit refusing `note` (read only by its residual), 3: a miss
    // refusing `user_id` (its probe, read while the chunk is planned, before 2 is routed)
    let plan = [
        (&row, None),
        (&miss, None),
        (&row, Some(6)),
        (&miss, Some(1)),
    ];
    let mut sources: Vec<Refusing> = plan
        .iter()
        .map(|(cells, refuse)| Refusing {
            cells: cells.to_vec(),
            refuse: *refuse,
            asked: Vec::new(),
        })
        .collect();
    let mut changes: Vec<ChangeCells> =
        sources.iter_mut().map(|s| ChangeCells::Insert(s)).collect();
    let mut routes = Routes::default();
    let e = r
        .reader()
        .route_batch_cells(&mut changes, &mut routes)
        .unwrap_err();
    assert!(matches!(e, Error::BadCell { column: 6 }), "{e}");
    assert_eq!(routes.iter().collect::<Vec<_>>(), [&[1][..], &[][..]]);
    drop(changes);
    // a miss reads its probed cell only; a hit its residual's too
    assert_eq!(sources[1].asked, [1]);
    assert!(sources[0].asked.contains(&6));
    assert_eq!(sources[3].asked, [1]);
}
