//! Reopen time of a persistent router holding N shapes of issue 24's six templates (the
//! workload of `router_memory.rs` and `bench/workloads.exs`): builds it in `--dir` (unless a
//! catalog is there already), closes it (which writes the router snapshot), then times
//! `Router::open` through the snapshot and, with the snapshot removed, through the full
//! catalog replay, and checks both route a probe change alike.
//! `cargo run --release -p lsm_index_core --example router_reopen -- [--shapes N] [--dir PATH]`.

mod common;
#[path = "common/todos.rs"]
mod todos;

use common::machine;
use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::{Change, Router, RowText};
use lsm_index_core::{Config, SyncMode};
use std::path::{Path, PathBuf};
use std::time::Instant;
use todos::{columns, shape};

fn open(dir: &Path) -> Router {
    Router::open(
        dir,
        columns(),
        CaseFolding::Unicode,
        Config::default(),
        SyncMode::None,
    )
    .expect("open")
}

/// Adds the N shapes (N/24 users, 4 equal shapes per user and template).
fn build(dir: &Path, n: u32) {
    let r = open(dir);
    let users = (n / 24).max(1);
    let start = Instant::now();
    for i in 0..n {
        let (template, params) = shape(i, users);
        r.add_shape_with(i, template, &params).expect("add");
    }
    println!("built {n} shapes in {:.2} s", start.elapsed().as_secs_f64());
    let start = Instant::now();
    r.close().expect("close");
    let took = start.elapsed().as_secs_f64();
    println!("closed (catalog fsync, snapshot written) in {took:.3} s");
}

/// Opens `dir`, prints the time and its split; the probe's answer.
fn timed_open(dir: &Path, what: &str) -> Vec<u32> {
    let start = Instant::now();
    let r = open(dir);
    let took = start.elapsed();
    println!(
        "{what}: reopened {} shapes in {:.3} s",
        r.shape_count(),
        took.as_secs_f64()
    );
    println!("  {:?}", r.open_report());
    let cells: Vec<Option<&[u8]>> = vec![
        Some(b"1"),
        Some(b"7"),
        None,
        Some(b"open"),
        Some(b"4"),
        Some(b"2024-08-15 00:00:00+00"),
        Some(b"a bug"),
        Some(b"9"),
        None,
        None,
    ];
    let row: &RowText = &cells;
    let mut out = Vec::new();
    r.route(&Change::Insert(row), &mut out).expect("route");
    r.close().expect("close");
    out
}

fn main() {
    let mut n: u32 = 1_000_000;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--shapes" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--shapes N")
            }
            "--dir" => dir = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other}"),
        }
    }
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let dir = dir.unwrap_or_else(|| tmp.path().join("router"));
    println!("router_reopen: {} ({})", dir.display(), machine());
    if !dir.join("shapes.log").exists() {
        build(&dir, n);
    }
    let log = std::fs::metadata(dir.join("shapes.log")).map_or(0, |m| m.len());
    let snap = std::fs::metadata(dir.join("router.snap")).map_or(0, |m| m.len());
    println!("catalog {log} bytes, snapshot {snap} bytes");
    let through_snapshot = timed_open(&dir, "snapshot");
    let _ = std::fs::remove_file(dir.join("router.snap"));
    let through_replay = timed_open(&dir, "replay");
    assert_eq!(
        through_snapshot, through_replay,
        "the two opens route alike"
    );
    println!("probe routed to {} shapes", through_replay.len());
}
