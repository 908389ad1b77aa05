//! The router snapshot (`router.snap`): a persistent router reopened through it — with or
//! without catalog records after it, or with it damaged, stale or foreign (then ignored) —
//! routes exactly as a twin router built in memory from the same adds and removes.

mod common;

use common::shapes::{cell, columns, shape_sql, Rec};
use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::{Change, OpenReport, Router};
use lsm_index_core::SyncMode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

/// Held by every test of this binary: one of them forks children, which hold a copy of
/// every descriptor the process has open until they exec (another test's directory lock
/// among them), so the tests take turns (see `tests/crash.rs`).
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A shape write.
#[derive(Clone, Debug)]
enum Op {
    Add(u32, String, Vec<Option<String>>),
    Remove(u32),
}

/// A random shape write on ids below `ids`: random clauses of `common::shapes`, and
/// parameterised ones found by an equality (with NULLs), a range, a prefix or an infix.
fn op(rng: &mut StdRng, ids: u32) -> Op {
    let id = rng.gen_range(0..ids);
    if rng.gen_ratio(1, 6) {
        return Op::Remove(id);
    }
    let v = |rng: &mut StdRng, n: i32| Some(rng.gen_range(0..n).to_string());
    let (sql, params): (String, Vec<Option<String>>) = match rng.gen_range(0..8) {
        0 => (shape_sql(rng), vec![]),
        1 => ("user_id = $1".into(), vec![v(rng, 20)]),
        2 => (
            "user_id = $1 AND status <> 'closed'".into(),
            vec![if rng.gen_ratio(1, 5) {
                None
            } else {
                v(rng, 20)
            }],
        ),
        3 => {
            let lo = rng.gen_range(-3..3);
            let params = vec![Some(lo.to_string()), Some((lo + 2).to_string())];
            ("score > $1 AND score < $2".into(), params)
        }
        4 => {
            let prefix = ["a", "ab", "x", ""][rng.gen_range(0..4)];
            ("note LIKE $1".into(), vec![Some(format!("{prefix}%"))])
        }
        5 => {
            let infix = ["b", "ug", "xy"][rng.gen_range(0..3)];
            ("note ILIKE $1".into(), vec![Some(format!("%{infix}%"))])
        }
        6 => ("score > 1 OR user_id = $1".into(), vec![v(rng, 5)]),
        _ => ("status = $1".into(), vec![None]),
    };
    Op::Add(id, sql, params)
}

/// How many catalog records `ops` append after `before` (a removal of an absent id appends
/// none).
fn records(before: &[Op], ops: &[Op]) -> usize {
    let mut live = std::collections::BTreeSet::new();
    let mut count = 0;
    for (i, op) in before.iter().chain(ops).enumerate() {
        let wrote = match op {
            Op::Add(id, ..) => {
                live.insert(*id);
                true
            }
            Op::Remove(id) => live.remove(id),
        };
        count += usize::from(wrote && i >= before.len());
    }
    count
}

fn ops(seed: u64, n: usize, ids: u32) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n).map(|_| op(&mut rng, ids)).collect()
}

fn apply(r: &Router, ops: &[Op]) {
    for op in ops {
        match op {
            Op::Add(id, sql, params) => r
                .add_shape_with(*id, sql, params)
                .unwrap_or_else(|e| panic!("{sql} {params:?}: {e}")),
            Op::Remove(id) => r.remove_shape(*id).unwrap(),
        }
    }
}

fn open(dir: &Path) -> Router {
    Router::open(
        dir,
        columns(),
        CaseFolding::Unicode,
        common::config(),
        SyncMode::None,
    )
    .unwrap()
}

fn twin(ops: &[Op]) -> Router {
    let r = Router::new(columns(), CaseFolding::Unicode, common::config()).unwrap();
    apply(&r, ops);
    r
}

fn report(r: &Router) -> OpenReport {
    r.open_report().expect("a persistent router's open report")
}

/// `a` and `b` hold the same shapes, found alike, and route 300 random changes alike.
fn same(a: &Router, b: &Router, seed: u64) {
    assert_eq!(a.shape_count(), b.shape_count());
    assert_eq!(a.shape_counts(), b.shape_counts());
    assert_eq!(a.index_counts(), b.index_counts());
    let mut rng = StdRng::seed_from_u64(seed);
    let record = |rng: &mut StdRng| -> Rec { (0..columns().len()).map(|c| cell(rng, c)).collect() };
    let cells = |rec: &Rec| -> Vec<Option<Vec<u8>>> {
        rec.iter()
            .map(|c| c.as_ref().map(|s| s.as_bytes().to_vec()))
            .collect()
    };
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for _ in 0..300 {
        let (old, new) = (cells(&record(&mut rng)), cells(&record(&mut rng)));
        let old: Vec<Option<&[u8]>> = old.iter().map(|c| c.as_deref()).collect();
        let new: Vec<Option<&[u8]>> = new.iter().map(|c| c.as_deref()).collect();
        for change in [
            Change::Insert(&new),
            Change::Update(&old, &new),
            Change::Delete(&old),
        ] {
            a.route(&change, &mut x).unwrap();
            b.route(&change, &mut y).unwrap();
            assert_eq!(x, y, "{change:?}");
        }
    }
}

#[test]
fn a_snapshot_restores_what_a_twin_built_in_memory_holds() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let first = ops(1, 3_000, 400);
    let r = open(dir.path());
    apply(&r, &first);
    r.close().unwrap();
    assert!(dir.path().join("router.snap").exists());

    let t = twin(&first);
    let r = open(dir.path());
    let rep = report(&r);
    assert!(rep.from_snapshot, "{rep:?}");
    assert_eq!((rep.tail_records, rep.replayed_shapes), (0, 0));
    same(&r, &t, 2);
    let c = t.index_counts();
    assert!(
        c.equality > 0 && c.range > 0 && c.literal > 0 && c.scanned > 0,
        "{c:?}"
    );
    // the restored router goes on as the twin does: handles, refs, presence, indexes
    let more = ops(3, 2_000, 500);
    apply(&r, &more);
    apply(&t, &more);
    same(&r, &t, 4);
    r.close().unwrap();
    let r = open(dir.path());
    assert!(report(&r).from_snapshot);
    same(&r, &t, 5);
}

#[test]
fn the_catalog_after_the_snapshot_is_replayed() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (first, then) = (ops(6, 2_000, 300), ops(7, 700, 350));
    let r = open(dir.path());
    apply(&r, &first);
    assert!(r.write_snapshot().unwrap());
    assert!(
        !r.write_snapshot().unwrap(),
        "the snapshot covers the catalog already"
    );
    apply(&r, &then);
    drop(r); // a crash: no close, no new snapshot

    let t = twin(&[first.clone(), then.clone()].concat());
    let r = open(dir.path());
    let rep = report(&r);
    assert!(rep.from_snapshot, "{rep:?}");
    assert_eq!(rep.tail_records, records(&first, &then));
    same(&r, &t, 8);
}

/// Closes a router of `ops` in a new directory; its snapshot's bytes.
fn snapshot_of(ops: &[Op]) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let r = open(dir.path());
    apply(&r, ops);
    r.close().unwrap();
    std::fs::read(dir.path().join("router.snap")).unwrap()
}

#[test]
fn a_damaged_stale_or_foreign_snapshot_is_ignored() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let shapes = ops(9, 1_500, 300);
    // the same shapes, another catalog: one more record
    let good = snapshot_of(
        &[
            shapes.clone(),
            vec![Op::Add(9_999, "id = 1".into(), vec![]), Op::Remove(9_999)],
        ]
        .concat(),
    );
    let snap = dir.path().join("router.snap");
    {
        let r = open(dir.path());
        apply(&r, &shapes);
        r.close().unwrap();
    }
    let mine = std::fs::read(&snap).unwrap();
    assert!(mine != good, "stamped with its own catalog");
    let foreign = snapshot_of(&ops(10, 1_500, 300));
    let mut damaged: Vec<(String, Vec<u8>)> = vec![
        ("empty".into(), vec![]),
        ("another catalog".into(), foreign),
        ("the same shapes' other catalog".into(), good),
    ];
    for at in [0, 9, 13, 21, 30, mine.len() / 2, mine.len() - 1] {
        let mut b = mine.clone();
        b[at] ^= 0x10;
        damaged.push((format!("flipped at {at}"), b));
    }
    for len in [10, 24, 100, mine.len() - 1] {
        damaged.push((format!("cut at {len}"), mine[..len].to_vec()));
    }
    // made for other columns: its table differs
    let other = {
        let d = tempfile::tempdir().unwrap();
        let mut cols = columns();
        cols.push(("extra".into(), lsm_index_core::predicate::ColumnType::Int8));
        let r = Router::open(
            d.path(),
            cols,
            CaseFolding::Unicode,
            common::config(),
            SyncMode::None,
        )
        .unwrap();
        r.add_shape(1, "user_id = 1").unwrap();
        r.close().unwrap();
        std::fs::read(d.path().join("router.snap")).unwrap()
    };
    damaged.push(("other columns".into(), other));
    let t = twin(&shapes);
    for (what, bytes) in damaged {
        std::fs::write(&snap, &bytes).unwrap();
        let r = open(dir.path());
        let rep = report(&r);
        assert!(!rep.from_snapshot, "{what}: {rep:?}");
        assert!(rep.snapshot_ignored.is_some(), "{what}: {rep:?}");
        same(&r, &t, 11);
        drop(r); // no close: the damaged snapshot stays for the next case
    }
    std::fs::remove_file(&snap).unwrap();
    let r = open(dir.path());
    assert_eq!(
        report(&r).snapshot_ignored,
        None,
        "no snapshot is not a damaged one"
    );
    same(&r, &t, 12);
}

#[test]
fn a_snapshot_of_a_catalog_rewritten_since_is_ignored() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let shapes = ops(13, 1_000, 200);
    // the same id replaced until dead records outnumber the live shapes
    let churn: Vec<Op> = (0..3_000)
        .map(|i| Op::Add(1_000, format!("user_id = {}", i % 7), vec![]))
        .collect();
    let all = [shapes, churn].concat();
    let r = open(dir.path());
    apply(&r, &all);
    r.close().unwrap();
    let before = std::fs::read(dir.path().join("router.snap")).unwrap();

    let t = twin(&all);
    let r = open(dir.path());
    let rep = report(&r);
    assert!(
        rep.from_snapshot && rep.rewrote_catalog && rep.wrote_snapshot,
        "{rep:?}"
    );
    same(&r, &t, 14);
    drop(r);
    // the snapshot of the catalog before its rewrite: stale
    std::fs::write(dir.path().join("router.snap"), before).unwrap();
    let r = open(dir.path());
    let rep = report(&r);
    assert!(
        !rep.from_snapshot && rep.snapshot_ignored.is_some(),
        "{rep:?}"
    );
    same(&r, &t, 15);
}

#[test]
fn a_torn_catalog_tail_after_the_snapshot_is_cut() {
    let _serial = serial();
    let dir = tempfile::tempdir().unwrap();
    let (first, mut then) = (ops(16, 800, 200), ops(17, 50, 200));
    then.push(Op::Add(7, "user_id = 3".into(), vec![]));
    let r = open(dir.path());
    apply(&r, &first);
    r.write_snapshot().unwrap();
    apply(&r, &then);
    drop(r);
    let log = dir.path().join("shapes.log");
    let len = std::fs::metadata(&log).unwrap().len();
    // half of the last record
    let f = std::fs::OpenOptions::new().write(true).open(&log).unwrap();
    f.set_len(len - 3).unwrap();
    let t = twin(&[first.clone(), then[..then.len() - 1].to_vec()].concat());
    let r = open(dir.path());
    let rep = report(&r);
    assert!(rep.from_snapshot, "{rep:?}");
    assert_eq!(rep.tail_records, records(&first, &then) - 1);
    same(&r, &t, 18);
}

/// The shapes the crash child writes before its first snapshot, and after it.
fn crash_ops() -> (Vec<Op>, Vec<Op>) {
    (ops(19, 600, 150), ops(20, 200, 150))
}

/// The crash test's child: run by the parent re-executing this binary with `LSM_SNAP_DIR`
/// and `LSM_FAILPOINT` set; it writes a snapshot (the points' first hits), more shapes,
/// then closes (their second hits). Ignored, so a normal run neither runs nor counts it.
#[test]
#[ignore = "the snapshot crash test's child process (needs LSM_SNAP_DIR)"]
fn snapshot_crash_child() {
    let Ok(dir) = std::env::var("LSM_SNAP_DIR") else {
        return;
    };
    let (first, then) = crash_ops();
    let r = open(Path::new(&dir));
    apply(&r, &first);
    r.write_snapshot().unwrap();
    apply(&r, &then);
    r.close().unwrap();
}

/// Killed at each crash point of a snapshot write (temp file written; renamed, directory
/// not yet fsynced), the first write or the one at close: the directory holds no snapshot,
/// the old one or the new one, and reopens to exactly the shapes the catalog holds.
#[test]
fn a_crash_while_a_snapshot_is_written_leaves_none_the_old_or_the_new() {
    let _serial = serial();
    let (first, then) = crash_ops();
    let exe = std::env::current_exe().unwrap();
    for point in ["snapshot:tmp_written", "snapshot:renamed"] {
        for hit in [1, 2] {
            let dir = tempfile::tempdir().unwrap();
            let status = std::process::Command::new(&exe)
                .args([
                    "--ignored",
                    "--exact",
                    "snapshot_crash_child",
                    "--test-threads=1",
                ])
                .env("LSM_SNAP_DIR", dir.path())
                .env("LSM_FAILPOINT", format!("{point}:{hit}"))
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .unwrap();
            assert!(!status.success(), "{point}:{hit} was not reached");
            let written = if hit == 1 {
                first.clone()
            } else {
                [first.clone(), then.clone()].concat()
            };
            let r = open(dir.path());
            let rep = report(&r);
            let renamed = point == "snapshot:renamed";
            // (a snapshot was used, catalog records after it)
            let expected = match (hit, renamed) {
                (1, false) => (false, 0),
                (2, false) => (true, records(&first, &then)),
                _ => (true, 0),
            };
            assert_eq!(
                (rep.from_snapshot, rep.tail_records),
                expected,
                "{point}:{hit}: {rep:?}"
            );
            assert_eq!(rep.snapshot_ignored, None, "{point}:{hit}");
            same(&r, &twin(&written), 21);
        }
    }
}
