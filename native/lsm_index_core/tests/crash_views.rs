//! Crash suite of a persistent router over declared tables: a child process (this test
//! binary, re-executed) applies the operations of `subquery_ops` (shape adds with true, stale
//! and `:current` snapshots, removes, changes of every table, chains) to a router opened on a
//! directory, flushing every `FLUSH_EVERY` operations with the number of operations done as
//! the position, and printing `acked N` once a flush returns. The parent SIGKILLs it at a
//! random acknowledged point, or a round makes the child abort itself at a crash point of the
//! log (`views:torn`: half a flush written; `views:written`: a flush written, not synced;
//! `views:tmp_written` / `views:renamed`: inside a rewrite).
//!
//! After each crash the parent reopens the directory: its position must be a flush at or
//! after every acknowledged one, and the router must then answer the next operations exactly
//! as an in-memory twin given the operations up to that position. The next child carries on
//! from the position (a caller resuming its stream there). No outcome depends on timing: the
//! parent kills after the child reports, and the only deadline is a hang guard.

mod common;

use common::subquery_model::*;
use common::subquery_ops::{apply, random_op, Op};
use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::set::RouterSet;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const FLUSH_EVERY: u64 = 40;
const MAX_OPS: u64 = 20_000;
/// Operations compared with the twin after each reopen.
const CHECK_OPS: u64 = 300;
const HANG_GUARD: Duration = Duration::from_secs(300);
const POINTS: [&str; 4] = [
    "views:torn",
    "views:written",
    "views:tmp_written",
    "views:renamed",
];

/// The operations of a round, the same in the child and in the parent.
fn ops(round: u64) -> Vec<Op> {
    let mut rng = StdRng::seed_from_u64(0x5EED + round);
    let mut rows = vec![BTreeMap::new(); 3];
    let mut held = BTreeMap::new();
    let mut next_id = 0;
    (0..MAX_OPS)
        .map(|_| random_op(&mut rng, &mut rows, &mut held, &mut next_id))
        .collect()
}

fn open(dir: &Path) -> RouterSet {
    RouterSet::open_tables(dir, tables(), CaseFolding::Unicode, config()).unwrap()
}

/// Operations done by a router reopened on `dir` (its position), 0 when never flushed.
fn done(set: &RouterSet) -> u64 {
    set.position().map_or(0, |p| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&p);
        u64::from_le_bytes(b)
    })
}

#[test]
#[ignore = "the crash suite's child process (needs LSM_VIEWS_CRASH_DIR)"]
fn crash_views_child_entry() {
    let Ok(dir) = std::env::var("LSM_VIEWS_CRASH_DIR") else {
        return;
    };
    let round: u64 = std::env::var("LSM_VIEWS_CRASH_ROUND")
        .unwrap()
        .parse()
        .unwrap();
    let set = open(Path::new(&dir));
    let from = done(&set);
    println!("opened {from}");
    for (i, op) in ops(round).iter().enumerate().skip(from as usize) {
        apply(&set, op);
        let n = i as u64 + 1;
        if n.is_multiple_of(FLUSH_EVERY) {
            set.flush_tables(&n.to_le_bytes()).unwrap();
            println!("acked {n}");
        }
    }
    println!("finished");
}

/// Runs a child on `dir` for `round`; kills it once it acknowledged `kill_at` operations (or
/// lets it abort at `failpoint`); returns the last acknowledged count and whether it
/// aborted (SIGABRT: its failpoint was reached).
fn run_child(dir: &Path, round: u64, kill_at: u64, failpoint: Option<String>) -> (u64, bool) {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "--ignored",
            "--exact",
            "crash_views_child_entry",
            "--nocapture",
        ])
        .env("LSM_VIEWS_CRASH_DIR", dir)
        .env("LSM_VIEWS_CRASH_ROUND", round.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    if let Some(fp) = &failpoint {
        command.env("LSM_FAILPOINT", fp);
    }
    let mut child = command.spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut acked = 0;
    loop {
        match rx.recv_timeout(HANG_GUARD) {
            Ok(line) => {
                if let Some(n) = line.strip_prefix("acked ") {
                    acked = n.parse().unwrap();
                    if failpoint.is_none() && acked >= kill_at {
                        break;
                    }
                }
            }
            // stdout closed: the child aborted at its failpoint (or finished)
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the child hung (round {round})");
            }
        }
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    (acked, status.signal() == Some(6))
}

/// Reopens `dir` after a crash: at or past `acked`, and then answering as a twin given the
/// operations up to its position. Returns the position.
fn check_recovered(dir: &Path, round: u64, acked: u64, ops: &[Op]) -> u64 {
    let set = open(dir);
    let at = done(&set);
    assert!(
        at >= acked,
        "round {round}: reopened at {at}, {acked} acknowledged"
    );
    assert!(
        at.is_multiple_of(FLUSH_EVERY),
        "round {round}: not a flush: {at}"
    );
    let twin = RouterSet::with_tables(tables(), CaseFolding::Unicode, config()).unwrap();
    for op in &ops[..at as usize] {
        apply(&twin, op);
    }
    let end = (at + CHECK_OPS).min(ops.len() as u64);
    for (i, op) in ops[at as usize..end as usize].iter().enumerate() {
        assert_eq!(
            apply(&set, op),
            apply(&twin, op),
            "round {round}: operation {} after a reopen at {at}",
            at as usize + i
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n != "LOCK" && n != "views.log")
        .collect();
    assert!(
        leftovers.is_empty(),
        "round {round}: left behind {leftovers:?}"
    );
    at
}

#[test]
fn killed_or_aborted_it_reopens_at_an_acknowledged_flush_and_answers_as_its_twin() {
    let mut rng = StdRng::seed_from_u64(7);
    for round in 0..2u64 {
        let dir = tempfile::tempdir().unwrap();
        let ops = ops(round);
        let mut at = 0;
        // SIGKILLs at random acknowledged points
        for _ in 0..4 {
            let kill_at = at + rng.gen_range(1..30) * FLUSH_EVERY;
            let (acked, _) = run_child(dir.path(), round, kill_at, None);
            at = check_recovered(dir.path(), round, acked.max(at), &ops);
        }
        // aborts at each crash point of the log
        for point in POINTS {
            let nth = rng.gen_range(1..3);
            let spec = format!("{point}:{nth}");
            let (acked, aborted) = run_child(dir.path(), round, u64::MAX, Some(spec.clone()));
            assert!(aborted, "round {round}: {spec} was never reached");
            at = check_recovered(dir.path(), round, acked.max(at), &ops);
        }
    }
}
