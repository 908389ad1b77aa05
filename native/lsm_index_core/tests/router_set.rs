//! A router set (one filter's tables, open-schema routers) against fixed-schema routers
//! holding the same shapes: shapes declare the columns they are written against (a random
//! subset, in random order), move between two tables, are named by integers or interned
//! byte strings; every route must agree. Plus the schema rules the differential cannot see
//! (type conflicts, undeclared columns, retyping a column no shape reads).

mod common;

use common::shapes::{cell, columns, shape_sql};

use lsm_index_core::predicate::{compile::compile, parse, CaseFolding, ColumnType};
use lsm_index_core::router::ids::{ShapeName, FIRST_NAMED};
use lsm_index_core::router::set::{RouterSet, ShapeDef};
use lsm_index_core::router::{Change, Router};
use lsm_index_core::{Config, Error};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, HashMap};

fn config() -> Config {
    Config {
        lanes: 2,
        overlay_limit: 32,
        ..common::config()
    }
}

type Rec = HashMap<String, String>;

fn record(rng: &mut StdRng) -> Rec {
    columns()
        .iter()
        .enumerate()
        .filter_map(|(c, (name, _))| cell(rng, c).map(|v| (name.clone(), v)))
        .collect()
}

/// A record's cells in the order of `columns`.
fn cells<'a>(rec: &'a Rec, columns: &[(String, ColumnType)]) -> Vec<Option<&'a [u8]>> {
    columns
        .iter()
        .map(|(n, _)| rec.get(n).map(|v| v.as_bytes()))
        .collect()
}

/// The columns a shape declares: those its clause reads, some others, in random order.
fn declared(rng: &mut StdRng, sql: &str) -> Vec<(String, ColumnType)> {
    let all = columns();
    let mask = compile(&parse(sql, &all).unwrap()).mask;
    let mut out: Vec<_> = all
        .into_iter()
        .enumerate()
        .filter(|(c, _)| mask[c / 64] & (1 << (c % 64)) != 0 || rng.gen_ratio(1, 3))
        .map(|(_, col)| col)
        .collect();
    out.shuffle(rng);
    out
}

/// Shape `id`'s name in the set: even ids are their own handles, odd ones byte strings.
fn name(id: u32) -> Vec<u8> {
    format!("shape-{id}").into_bytes()
}

fn shape_name(id: u32, bytes: &[u8]) -> ShapeName<'_> {
    if id.is_multiple_of(2) {
        ShapeName::Handle(id)
    } else {
        ShapeName::Bytes(bytes)
    }
}

/// The ids a set route's handles name.
fn ids(set: &RouterSet, handles: &[u32]) -> BTreeSet<u32> {
    let names = set.names();
    handles
        .iter()
        .map(|&h| match names.name(h) {
            Some(ShapeName::Handle(id)) => id,
            Some(ShapeName::Bytes(b)) => std::str::from_utf8(b)
                .unwrap()
                .trim_start_matches("shape-")
                .parse()
                .unwrap(),
            None => panic!("handle {h} has no name"),
        })
        .collect()
}

fn change<'a>(kind: u32, old: &'a [Option<&'a [u8]>], new: &'a [Option<&'a [u8]>]) -> Change<'a> {
    match kind {
        0 => Change::Insert(new),
        1 => Change::Delete(old),
        2 => Change::Update(old, new),
        _ => Change::Truncate,
    }
}

#[test]
fn agrees_with_fixed_routers_under_churn_and_moves() {
    for seed in 0..3u64 {
        let mut rng = StdRng::seed_from_u64(seed);
        let set = RouterSet::new(CaseFolding::Unicode, config()).unwrap();
        let fixed: Vec<Router> = (0..2)
            .map(|_| Router::new(columns(), CaseFolding::Unicode, config()).unwrap())
            .collect();
        let mut live: BTreeMap<u32, u32> = BTreeMap::new(); // id -> table
        let (mut out, mut expected) = (Vec::new(), Vec::new());
        let mut routed = 0;
        for step in 0..4_000 {
            if rng.gen_ratio(1, 3) {
                let id = rng.gen_range(0..200);
                let bytes = name(id);
                if rng.gen_ratio(1, 5) {
                    let had = set.remove(shape_name(id, &bytes), true).unwrap();
                    assert_eq!(had, live.remove(&id).is_some(), "seed {seed} step {step}");
                    for r in &fixed {
                        r.remove_shape(id).unwrap();
                    }
                } else {
                    // table 1 is named once a shape goes there (numbers in first-use order)
                    let table = if set.tables().is_empty() {
                        0
                    } else {
                        rng.gen_range(0..2)
                    };
                    let sql = shape_sql(&mut rng);
                    let cols = declared(&mut rng, &sql);
                    let def = ShapeDef {
                        table,
                        name: shape_name(id, &bytes),
                        sql: &sql,
                        params: &[],
                        columns: &cols,
                    };
                    set.add(&def, true).unwrap_or_else(|e| panic!("{sql}: {e}"));
                    fixed[table as usize].add_shape(id, &sql).unwrap();
                    if let Some(old) = live.insert(id, table) {
                        if old != table {
                            fixed[old as usize].remove_shape(id).unwrap();
                        }
                    }
                }
                continue;
            }
            let tables = set.tables();
            let Some(t) = (0..tables.len())
                .collect::<Vec<_>>()
                .choose(&mut rng)
                .copied()
            else {
                continue;
            };
            let (old, new) = (record(&mut rng), record(&mut rng));
            let kinds = if rng.gen_ratio(1, 50) { 4 } else { 3 };
            let kind = rng.gen_range(0..kinds);
            let cols = tables[t].columns();
            let (o, n) = (cells(&old, &cols), cells(&new, &cols));
            tables[t].route(&change(kind, &o, &n), &mut out).unwrap();
            let all = columns();
            let (fo, fnew) = (cells(&old, &all), cells(&new, &all));
            fixed[t]
                .route(&change(kind, &fo, &fnew), &mut expected)
                .unwrap();
            assert_eq!(
                ids(&set, &out),
                expected.iter().copied().collect::<BTreeSet<_>>(),
                "seed {seed} step {step} table {t} kind {kind}"
            );
            routed += out.len();
        }
        assert!(
            routed > 1_000,
            "seed {seed}: only {routed} shapes routed to"
        );
        let handles = set.shape_handles(None);
        assert_eq!(ids(&set, &handles), live.keys().copied().collect());
        assert_eq!(set.len(), live.len());
    }
}

fn cols(spec: &[(&str, ColumnType)]) -> Vec<(String, ColumnType)> {
    spec.iter()
        .map(|(n, t)| (n.to_string(), t.clone()))
        .collect()
}

fn add(
    set: &RouterSet,
    id: u32,
    sql: &str,
    declared: &[(&str, ColumnType)],
) -> lsm_index_core::Result<()> {
    let declared = cols(declared);
    set.add(
        &ShapeDef {
            table: 0,
            name: ShapeName::Handle(id),
            sql,
            params: &[],
            columns: &declared,
        },
        true,
    )
}

#[test]
fn a_column_has_one_type_while_shapes_read_it() {
    let set = RouterSet::new(CaseFolding::Unicode, config()).unwrap();
    add(
        &set,
        1,
        "a = 1",
        &[("a", ColumnType::Int8), ("b", ColumnType::Text)],
    )
    .unwrap();
    // another shape reading `a` as text: refused, nothing changes
    let e = add(&set, 2, "a = 'x'", &[("a", ColumnType::Text)]).unwrap_err();
    assert!(
        matches!(&e, Error::ColumnTypeConflict { column, had, got }
        if column == "a" && had == "int8" && got == "text"),
        "{e}"
    );
    assert_eq!(set.len(), 1);
    // declaring it otherwise without reading it is fine; so is replacing the only reader
    add(
        &set,
        3,
        "b = 'x'",
        &[("a", ColumnType::Text), ("b", ColumnType::Text)],
    )
    .unwrap();
    add(&set, 1, "a = 'x'", &[("a", ColumnType::Text)]).unwrap();
    let t = &set.tables()[0];
    assert_eq!(
        &t.columns()[..],
        &cols(&[("a", ColumnType::Text), ("b", ColumnType::Text)])[..]
    );
    let mut out = Vec::new();
    let row = [Some(&b"x"[..]), None];
    t.route(&Change::Insert(&row), &mut out).unwrap();
    assert_eq!(out, vec![1]);
    // the last reader gone, the column takes the next reader's type
    set.remove(ShapeName::Handle(1), true).unwrap();
    add(&set, 4, "a = 7", &[("a", ColumnType::Int4)]).unwrap();
    let row = [Some(&b"07"[..]), None];
    t.route(&Change::Insert(&row), &mut out).unwrap();
    assert_eq!(out, vec![4]);
    assert!(set.is_indexed(0, "a") && set.is_indexed(0, "b") && !set.is_indexed(0, "c"));
}

#[test]
fn a_shape_sees_only_the_columns_it_declares() {
    let set = RouterSet::new(CaseFolding::Unicode, config()).unwrap();
    add(
        &set,
        1,
        "a = 1",
        &[("a", ColumnType::Int8), ("b", ColumnType::Text)],
    )
    .unwrap();
    let e = add(&set, 2, "b = 'x'", &[("a", ColumnType::Int8)]).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidPredicate { reason, .. } if reason.contains("unknown column \"b\"")),
        "{e}"
    );
    assert_eq!(set.len(), 1);
}

#[test]
fn named_shapes_are_interned_and_released() {
    let set = RouterSet::new(CaseFolding::Unicode, config()).unwrap();
    let declared = cols(&[("a", ColumnType::Int8)]);
    let def = |name, table| ShapeDef {
        table,
        name,
        sql: "a = 1",
        params: &[],
        columns: &declared,
    };
    set.add(&def(ShapeName::Bytes(b"x"), 0), true).unwrap();
    set.add(&def(ShapeName::Bytes(b"x"), 1), true).unwrap(); // moves to table 1
    assert_eq!(set.shape_handles(Some(0)), Vec::<u32>::new());
    assert_eq!(set.shape_handles(Some(1)), vec![FIRST_NAMED]);
    // a move is refused on a normal scheduler: nothing changes
    assert!(matches!(
        set.add(&def(ShapeName::Bytes(b"x"), 0), false),
        Err(Error::WouldBlock { .. })
    ));
    assert_eq!(set.shape_handles(Some(1)), vec![FIRST_NAMED]);
    // a refused clause interns nothing
    let bad = ShapeDef {
        sql: "a = ",
        ..def(ShapeName::Bytes(b"y"), 0)
    };
    assert!(set.add(&bad, true).is_err());
    assert_eq!(set.names().len(), 1);
    assert!(set.remove(ShapeName::Bytes(b"x"), true).unwrap());
    assert!(!set.remove(ShapeName::Bytes(b"x"), true).unwrap());
    assert!(set.names().is_empty() && set.is_empty());
    // a table number past the next one is refused
    assert!(set.add(&def(ShapeName::Handle(1), 5), true).is_err());
}
