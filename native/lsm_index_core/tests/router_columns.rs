//! Columns added to a router's table (`Router::add_column`: PostgreSQL's `ALTER TABLE … ADD
//! COLUMN`, announced by a Relation message; issue 26). A router made with the table's first
//! columns that gains the others between its shape adds routes as a router made with them
//! all; rows from before a column was added (narrower) read it as NULL, in memory, packed,
//! and after reopens of a persistent router, whose catalog records the columns.

mod common;

use common::shapes::{cell, columns, shape_sql, Rec};
use lsm_index_core::packed_changes::{self, Changes, Chunk};
use lsm_index_core::predicate::{CaseFolding, ColumnType};
use lsm_index_core::router::{Change, Router, Routes};
use lsm_index_core::{Error, SyncMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;

/// The columns a table is made with; the rest of `columns()` are added later.
const MADE: usize = 4;

fn router(width: usize) -> Router {
    let cols = columns()[..width].to_vec();
    Router::new(cols, CaseFolding::Unicode, common::config()).unwrap()
}

fn open(dir: &Path, width: usize) -> lsm_index_core::Result<Router> {
    let cols = columns()[..width].to_vec();
    Router::open(
        dir,
        cols,
        CaseFolding::Unicode,
        common::config(),
        SyncMode::Flush,
    )
}

fn cells(rec: &Rec) -> Vec<Option<&[u8]>> {
    rec.iter()
        .map(|c| c.as_deref().map(str::as_bytes))
        .collect()
}

fn record(rng: &mut StdRng) -> Rec {
    (0..columns().len()).map(|c| cell(rng, c)).collect()
}

/// Adds random shapes to `r` (made with the first `MADE` columns), adding the table's other
/// columns one by one between them, then more shapes: the shapes it took, in order. A clause
/// refused names a column not added yet, and a router made with the columns so far refuses
/// it too.
fn grow(r: &Router, seed: u64) -> Vec<(u32, String)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let all = columns();
    let mut taken = Vec::new();
    for id in 0..400 {
        let width = r.columns().len();
        if width < all.len() && (rng.gen_ratio(1, 50) || id == 300) {
            let (name, ty) = all[width].clone();
            r.add_column(&name, ty.clone()).unwrap();
            // a Relation message replayed: nothing
            r.add_column(&name, ty).unwrap();
            assert_eq!(r.columns().len(), width + 1);
        }
        let sql = shape_sql(&mut rng);
        match r.add_shape(id, &sql) {
            Ok(()) => taken.push((id, sql)),
            Err(e @ Error::InvalidPredicate { .. }) => {
                let twin = router(r.columns().len());
                assert!(twin.add_shape(id, &sql).is_err(), "{sql}: {e}");
                assert!(router(all.len()).add_shape(id, &sql).is_ok(), "{sql}: {e}");
            }
            Err(e) => panic!("{sql}: {e}"),
        }
    }
    while r.columns().len() < all.len() {
        let (name, ty) = all[r.columns().len()].clone();
        r.add_column(&name, ty).unwrap();
    }
    for id in 400..500 {
        let sql = shape_sql(&mut rng);
        r.add_shape(id, &sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
        taken.push((id, sql));
    }
    taken
}

/// A router made with every column, holding `shapes`.
fn twin(shapes: &[(u32, String)]) -> Router {
    let r = router(columns().len());
    for (id, sql) in shapes {
        r.add_shape(*id, sql).unwrap();
    }
    r
}

/// `grown` routes as `twin` (made with every column): whole rows alike, and a row cut to
/// any width from `narrowest` on as the whole row with NULL past the cut; rows narrower or
/// wider are refused.
fn routes_as(grown: &Router, twin: &Router, narrowest: usize, seed: u64) {
    assert_eq!(grown.columns(), twin.columns());
    assert_eq!(grown.shape_counts(), twin.shape_counts());
    let n = columns().len();
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..400 {
        let (old, new) = (record(&mut rng), record(&mut rng));
        let width = rng.gen_range(narrowest..=n);
        let cut = |rec: &Rec| -> Rec {
            let mut rec = rec.clone();
            rec[width..].fill(None);
            rec
        };
        let (old_cut, new_cut) = (cut(&old), cut(&new));
        let (o, w) = (cells(&old), cells(&new));
        let (oc, wc) = (cells(&old_cut), cells(&new_cut));
        for (mine, theirs) in [
            (Change::Insert(&w[..width]), Change::Insert(&wc)),
            (Change::Delete(&o[..width]), Change::Delete(&oc)),
            (
                Change::Update(&o[..width], &w[..width]),
                Change::Update(&oc, &wc),
            ),
            (Change::Update(&o, &w), Change::Update(&o, &w)),
        ] {
            grown.route(&mine, &mut x).unwrap();
            twin.route(&theirs, &mut y).unwrap();
            assert_eq!(x, y, "{mine:?}");
        }
        if narrowest > 1 {
            let short = Change::Insert(&w[..narrowest - 1]);
            assert!(matches!(
                grown.route(&short, &mut x),
                Err(Error::ColumnCount { .. })
            ));
        }
        let mut wide = w.clone();
        wide.push(None);
        assert!(matches!(
            grown.route(&Change::Insert(&wide), &mut x),
            Err(Error::ColumnCount { .. })
        ));
    }
    // a router made with every column reads whole rows only
    let rec = record(&mut rng);
    let w = cells(&rec);
    assert!(matches!(
        twin.route(&Change::Insert(&w[..n - 1]), &mut y),
        Err(Error::ColumnCount { .. })
    ));
}

#[test]
fn shapes_before_and_after_added_columns_route_as_a_router_made_with_them() {
    for seed in 0..3 {
        let r = router(MADE);
        let shapes = grow(&r, seed);
        assert!(shapes.iter().any(|(_, sql)| sql.contains("note")));
        routes_as(&r, &twin(&shapes), MADE, seed + 100);
    }
}

/// Rows packed at a width the table had (`packed_changes`, what the NIF's packed route
/// reads): routed as the whole rows with NULL past it.
#[test]
fn changes_packed_before_a_column_was_added_read_it_as_null() {
    let r = router(MADE);
    let shapes = grow(&r, 7);
    let twin = twin(&shapes);
    let n = columns().len();
    let mut rng = StdRng::seed_from_u64(8);
    for width in MADE..=n {
        let recs: Vec<Rec> = (0..50).map(|_| record(&mut rng)).collect();
        let rows: Vec<Vec<Option<&[u8]>>> = recs.iter().map(cells).collect();
        let changes: Vec<Change> = rows.iter().map(|w| Change::Insert(&w[..width])).collect();
        let packed = packed_changes::pack(width, &changes);
        let mut read = Changes::new(&packed).unwrap();
        let mut chunk = Chunk::default();
        read.read(usize::MAX, &mut chunk).unwrap();
        let mut reader = r.reader();
        assert!(reader.row_widths().contains(&width));
        let mut routes = Routes::default();
        reader.route_batch(&chunk.changes(), &mut routes).unwrap();
        let mut y = Vec::new();
        for (i, rec) in recs.iter().enumerate() {
            let mut whole = rec.clone();
            whole[width..].fill(None);
            twin.route(&Change::Insert(&cells(&whole)), &mut y).unwrap();
            assert_eq!(routes.get(i), &y[..], "width {width}, change {i}");
        }
    }
    assert_eq!(r.reader().row_widths(), MADE..=n);
    assert_eq!(twin.reader().row_widths(), n..=n);
}

#[test]
fn a_column_is_added_once_and_with_one_type() {
    let r = router(MADE);
    r.add_shape(1, "user_id = 1").unwrap();
    assert!(matches!(
        r.add_shape(2, "flag AND user_id = 2"),
        Err(Error::InvalidPredicate { .. })
    ));
    r.add_column("flag", ColumnType::Bool).unwrap();
    r.add_column("flag", ColumnType::Bool).unwrap();
    r.add_shape(2, "flag AND user_id = 2").unwrap();
    let e = r.add_column("flag", ColumnType::Int8).unwrap_err();
    assert!(
        matches!(&e, Error::ColumnTypeConflict { column, had, got }
            if column == "flag" && had == "bool" && got == "int8"),
        "{e}"
    );
    // a column the table was made with, another type: refused too
    assert!(matches!(
        r.add_column("id", ColumnType::Text),
        Err(Error::ColumnTypeConflict { .. })
    ));
    for bad in ["", "a\0b"] {
        assert!(matches!(
            r.add_column(bad, ColumnType::Text),
            Err(Error::InvalidColumns { .. })
        ));
    }
    // a named enum's labels are the same in every column
    r.add_column("m", ColumnType::named_enum("mood", ["sad", "ok"]))
        .unwrap();
    let other = ColumnType::named_enum("mood", ["ok"]).array_of();
    assert!(matches!(
        r.add_column("ms", other),
        Err(Error::InvalidColumns { .. })
    ));
    let same = ColumnType::named_enum("mood", ["sad", "ok"]).array_of();
    r.add_column("ms", same).unwrap();
    r.add_shape(3, "m = 'ok'::mood AND 'sad'::mood = ANY(ms)")
        .unwrap();
    assert_eq!(r.columns().len(), MADE + 3);
    // an insert of the old width: flag, m and ms NULL
    let mut out = Vec::new();
    let row: Vec<Option<&[u8]>> = vec![None, Some(b"2"), None, None];
    r.route(&Change::Insert(&row), &mut out).unwrap();
    assert!(out.is_empty(), "{out:?}");
    let row: Vec<Option<&[u8]>> = vec![
        None,
        Some(b"2"),
        None,
        None,
        Some(b"t"),
        Some(b"ok"),
        Some(b"{sad}"),
    ];
    r.route(&Change::Insert(&row), &mut out).unwrap();
    assert_eq!(out, [2, 3]);
}

#[test]
fn a_table_holds_at_most_max_columns() {
    let max = lsm_index_core::router::MAX_COLUMNS;
    let cols: Vec<(String, ColumnType)> = (0..max - 1)
        .map(|c| (format!("c{c}"), ColumnType::Int8))
        .collect();
    let r = Router::new(cols, CaseFolding::Unicode, common::config()).unwrap();
    r.add_column("last", ColumnType::Int8).unwrap();
    assert!(matches!(
        r.add_column("one_more", ColumnType::Int8),
        Err(Error::InvalidColumns { .. })
    ));
    // the one there: still a no-op
    r.add_column("last", ColumnType::Int8).unwrap();
    r.add_shape(1, "last = 1").unwrap();
}

#[test]
fn an_open_schema_router_takes_its_columns_from_its_shapes() {
    let r = Router::new_open(CaseFolding::Unicode, common::config()).unwrap();
    assert!(matches!(
        r.add_column("a", ColumnType::Int8),
        Err(Error::InvalidColumns { .. })
    ));
    let r = router(MADE);
    r.close().unwrap();
    assert!(matches!(
        r.add_column("a", ColumnType::Int8),
        Err(Error::Closed)
    ));
}

/// A persistent router gains columns, is closed and reopened with the table's columns (all
/// of them, through its snapshot or the whole catalog, or with more: recorded at open);
/// each routes as a router made with them. Reopened with fewer columns than the catalog
/// records, it is refused.
#[test]
fn a_persistent_router_keeps_its_added_columns() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let n = columns().len();
    let r = open(dir.path(), MADE).unwrap();
    let shapes = grow(&r, 11);
    let twin = twin(&shapes);
    routes_as(&r, &twin, MADE, 12);
    r.close().unwrap();
    for fewer in [MADE, n - 1] {
        assert!(
            matches!(open(dir.path(), fewer), Err(Error::TableMismatch { .. })),
            "{fewer}"
        );
    }
    let r = open(dir.path(), n).unwrap();
    assert!(r.open_report().unwrap().from_snapshot);
    routes_as(&r, &twin, MADE, 13);
    drop(r); // a crash: no snapshot written
    std::fs::remove_file(dir.path().join("router.snap")).unwrap();
    let r = open(dir.path(), n).unwrap();
    assert!(!r.open_report().unwrap().from_snapshot);
    routes_as(&r, &twin, MADE, 14);
    r.close().unwrap();

    // reopened with one more column: recorded, and from then on part of the table
    let mut more = columns();
    more.push(("extra".to_string(), ColumnType::Int4));
    let open_more = || {
        let (folding, sync) = (CaseFolding::Unicode, SyncMode::Flush);
        Router::open(dir.path(), more.clone(), folding, common::config(), sync)
    };
    let r = open_more().unwrap();
    assert!(r.open_report().unwrap().from_snapshot);
    r.add_shape(9_000, "extra = 5").unwrap();
    let mut row: Vec<Option<&[u8]>> = vec![None; n + 1];
    row[n] = Some(b"5");
    let mut out = Vec::new();
    r.route(&Change::Insert(&row), &mut out).unwrap();
    assert!(out.contains(&9_000), "{out:?}");
    // rows of the width the table was made with still read (`extra` NULL)
    let mut narrow = Vec::new();
    r.route(&Change::Insert(&row[..MADE]), &mut narrow).unwrap();
    out.retain(|&id| id != 9_000);
    assert_eq!(narrow, out);
    r.close().unwrap();
    assert!(matches!(
        open(dir.path(), n),
        Err(Error::TableMismatch { .. })
    ));
    let r = open_more().unwrap();
    assert_eq!(r.columns().len(), n + 1);
    assert!(r.contains(9_000));
}

/// A column added, then shapes reading it, without a close (a crash): the reopen replays
/// the column record and the shapes after the snapshot in order.
#[test]
fn a_column_added_after_the_snapshot_is_replayed_with_the_shapes_after_it() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path(), MADE).unwrap();
    r.add_shape(1, "user_id = 1").unwrap();
    assert!(r.write_snapshot().unwrap());
    r.add_column("active", ColumnType::Bool).unwrap();
    r.add_shape(2, "active AND user_id = 2").unwrap();
    r.flush().unwrap();
    drop(r);
    assert!(matches!(
        open(dir.path(), MADE),
        Err(Error::TableMismatch { .. })
    ));
    let r = open(dir.path(), MADE + 1).unwrap();
    let report = r.open_report().unwrap();
    assert!(report.from_snapshot, "{report:?}");
    assert_eq!(
        report.tail_records, 1,
        "the shape; the column record is no shape"
    );
    let mut out = Vec::new();
    let row: Vec<Option<&[u8]>> = vec![None, Some(b"2"), None, None, Some(b"t")];
    r.route(&Change::Insert(&row), &mut out).unwrap();
    assert_eq!(out, [2]);
}

/// Held by the tests of this binary that open directories: one forks children, which hold
/// a copy of every descriptor the process has open until they exec (another test's
/// directory lock among them), so they take turns (see `tests/crash.rs`).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|p| p.into_inner())
}

/// The catalog's format version (its header's bytes 8..12).
fn catalog_version(dir: &Path) -> u32 {
    let bytes = std::fs::read(dir.join("shapes.log")).unwrap();
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// Makes the catalog in `dir` a version-1 file, as this crate wrote before columns could be
/// added (a file without column records differs only in its header).
fn to_version_1(dir: &Path) {
    let path = dir.join("shapes.log");
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    std::fs::write(&path, bytes).unwrap();
}

/// A persistent router of `MADE` columns holding shapes `0..100`, closed, its catalog of
/// version 1: the shapes.
fn version_1_router(dir: &Path) -> Vec<(u32, String)> {
    let r = open(dir, MADE).unwrap();
    let mut rng = StdRng::seed_from_u64(31);
    let mut shapes = Vec::new();
    while shapes.len() < 100 {
        let (id, sql) = (shapes.len() as u32, shape_sql(&mut rng));
        if r.add_shape(id, &sql).is_ok() {
            shapes.push((id, sql));
        }
    }
    r.close().unwrap();
    to_version_1(dir);
    shapes
}

#[test]
fn a_version_1_catalog_opens_and_becomes_version_2_with_its_first_column() {
    let _serial = serial();
    // opened with its columns: read as ever, left as it is
    let dir = tempfile::tempdir().unwrap();
    let shapes = version_1_router(dir.path());
    let r = open(dir.path(), MADE).unwrap();
    assert_eq!(r.shape_count(), shapes.len());
    r.close().unwrap();
    assert_eq!(catalog_version(dir.path()), 1);
    // a column added: rewritten as version 2 with it
    let r = open(dir.path(), MADE).unwrap();
    r.add_column("active", ColumnType::Bool).unwrap();
    assert_eq!(catalog_version(dir.path()), 2);
    r.add_shape(1_000, "active").unwrap();
    r.close().unwrap();
    assert!(matches!(
        open(dir.path(), MADE),
        Err(Error::TableMismatch { .. })
    ));
    let r = open(dir.path(), MADE + 1).unwrap();
    assert_eq!(r.shape_count(), shapes.len() + 1);
    r.close().unwrap();
    // opened with more columns: recorded at open, the same way
    let dir = tempfile::tempdir().unwrap();
    version_1_router(dir.path());
    let r = open(dir.path(), columns().len()).unwrap();
    assert_eq!(catalog_version(dir.path()), 2);
    drop(r);
    let r = open(dir.path(), columns().len()).unwrap();
    assert_eq!(r.shape_count(), shapes.len());
    routes_as(&r, &twin(&shapes), MADE, 32);
}

/// The crash test's child: run by the parent re-executing this binary with
/// `LSM_COLUMNS_DIR` (a version-1 catalog) and `LSM_FAILPOINT` set; it adds a column, which
/// rewrites the catalog as version 2. Ignored, so a normal run neither runs nor counts it.
#[test]
#[ignore = "the column crash test's child process (needs LSM_COLUMNS_DIR)"]
fn column_crash_child() {
    let Ok(dir) = std::env::var("LSM_COLUMNS_DIR") else {
        return;
    };
    let r = open(Path::new(&dir), MADE).unwrap();
    r.add_column("active", ColumnType::Bool).unwrap();
    r.close().unwrap();
}

/// Killed at each crash point of the rewrite that takes a version-1 catalog to version 2
/// with its first column (temp file written; renamed, directory not yet fsynced): the
/// catalog is the old one (it opens with the old columns and with the new) or the new one
/// (with the new only), its shapes all there.
#[test]
fn a_crash_while_a_version_1_catalog_gains_a_column_leaves_the_old_or_the_new() {
    let _serial = serial();
    let exe = std::env::current_exe().unwrap();
    for point in ["catalog:tmp_written", "catalog:renamed"] {
        let dir = tempfile::tempdir().unwrap();
        let shapes = version_1_router(dir.path());
        let status = std::process::Command::new(&exe)
            .args([
                "--ignored",
                "--exact",
                "column_crash_child",
                "--test-threads=1",
            ])
            .env("LSM_COLUMNS_DIR", dir.path())
            .env("LSM_FAILPOINT", format!("{point}:1"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "{point} was not reached");
        let renamed = point == "catalog:renamed";
        assert_eq!(catalog_version(dir.path()), if renamed { 2 } else { 1 });
        match open(dir.path(), MADE) {
            Ok(r) if !renamed => assert_eq!(r.shape_count(), shapes.len()),
            Err(Error::TableMismatch { .. }) if renamed => {}
            other => panic!("{point}: {:?}", other.map(|r| r.shape_count())),
        }
        let r = open(dir.path(), MADE + 1).unwrap();
        assert_eq!(r.shape_count(), shapes.len(), "{point}");
        assert_eq!(catalog_version(dir.path()), 2);
    }
}
