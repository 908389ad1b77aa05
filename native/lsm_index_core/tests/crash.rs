//! Crash suite: a child process (this test binary, re-executed) writes random operations to a
//! persistent index with periodic `flush`, and is killed with SIGKILL at random points. With
//! tiny overlays, flushes, merges and manifest installs run all the time, so kills land in
//! the middle of them; further rounds make the child abort itself exactly at a crash point
//! (`failpoint`: inside a segment write, a manifest install, a log write). Every 8th
//! SIGKILL lands during the child's own recovery. After each kill the index is reopened and must hold every operation
//! acknowledged by a completed `flush`, equal the oracle after some prefix of the operations
//! at or beyond that point, and leave no temp file behind; the next child carries on from it.

mod common;

use lsm_index_core::{Config, Index};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Crash points (see `src/failpoint.rs`) the failpoint rounds abort at.
const POINTS: [&str; 7] = [
    "segment:written",
    "segment:renamed",
    "manifest:tmp_written",
    "manifest:renamed",
    "manifest:installed",
    "manifest:deleting",
    "wal:written",
];

const KEYS: u32 = 400;
const HANDLES: u32 = 24;
const FLUSH_EVERY: u64 = 150;
/// Most operations a child can do before it is killed (it stops there and waits).
const MAX_OPS: u64 = 60_000;

#[derive(Clone, Copy, Debug)]
enum Op {
    Add(u32, u32),
    Remove(u32, u32),
    Drop(u32),
}

/// The operations of round `round`, the same in the child and in the parent.
fn ops(round: u64) -> impl Iterator<Item = Op> {
    let mut rng = StdRng::seed_from_u64(0xC0FFEE + round);
    (0..MAX_OPS).map(move |_| {
        let k = rng.gen_range(0..KEYS);
        let h = rng.gen_range(0..HANDLES);
        match rng.gen_range(0..1000) {
            0..=2 => Op::Drop(h),
            3..=600 => Op::Add(k, h),
            _ => Op::Remove(k, h),
        }
    })
}

fn key(k: u32) -> Vec<u8> {
    format!("row:{k}").into_bytes()
}

fn config() -> Config {
    Config {
        lanes: 4,
        overlay_limit: 32,
        max_segments: 3,
        ..Config::default()
    }
}

/// The child: entered when the parent re-executes this binary with `LSM_CRASH_DIR` set.
#[test]
fn crash_child_entry() {
    let Ok(dir) = std::env::var("LSM_CRASH_DIR") else {
        return; // a normal test run: nothing to do
    };
    let round: u64 = std::env::var("LSM_CRASH_ROUND").unwrap().parse().unwrap();
    let index = Index::open(Path::new(&dir), config()).unwrap();
    let mut out = std::io::stdout();
    writeln!(out, "opened").unwrap();
    out.flush().unwrap();
    for (i, op) in ops(round).enumerate() {
        match op {
            Op::Add(k, h) => index.add(&key(k), h).unwrap(),
            Op::Remove(k, h) => index.remove(&key(k), h).unwrap(),
            Op::Drop(h) => index.drop_handle(h).unwrap(),
        }
        let done = i as u64 + 1;
        if done.is_multiple_of(FLUSH_EVERY) {
            index.flush().unwrap();
            writeln!(out, "acked {done}").unwrap();
            out.flush().unwrap();
        }
    }
    // every operation done: wait to be killed
    std::thread::sleep(Duration::from_secs(600));
}

type Oracle = HashMap<u32, BTreeSet<u32>>;

fn apply(o: &mut Oracle, op: Op) {
    match op {
        Op::Add(k, h) => {
            o.entry(k).or_default().insert(h);
        }
        Op::Remove(k, h) => {
            if let Some(s) = o.get_mut(&k) {
                s.remove(&h);
            }
        }
        Op::Drop(h) => o.values_mut().for_each(|s| {
            s.remove(&h);
        }),
    }
}

fn set(o: &Oracle, k: u32) -> Vec<u32> {
    o.get(&k)
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default()
}

#[test]
fn killed_at_random_points_it_recovers_a_prefix_with_every_acknowledged_write() {
    let rounds: u64 = std::env::var("LSM_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut oracle = Oracle::new();
    let mut beyond_ack = 0;
    let mut aborted = 0;
    let failpoint_rounds = POINTS.len() as u64 * 6;
    for round in 0..rounds + failpoint_rounds {
        // the failpoint rounds come last: one point after another, at its n-th hit
        let failpoint = (round >= rounds).then(|| {
            let point = POINTS[((round - rounds) / 6) as usize];
            format!("{point}:{}", rng.gen_range(1..12))
        });
        let mut command = Command::new(&exe);
        command
            .args([
                "crash_child_entry",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LSM_CRASH_DIR", dir.path())
            .env("LSM_CRASH_ROUND", round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(f) = &failpoint {
            command.env("LSM_FAILPOINT", f);
        }
        let mut child = command.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        // every 8th SIGKILL round strikes during recovery (open), before "opened"
        let during_open = failpoint.is_none() && round % 8 == 7;
        if during_open {
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..4_000)));
        }
        // wait until it has opened (recovery done; a failpoint may fire even before)
        let start = Instant::now();
        while !during_open && start.elapsed() < Duration::from_secs(20) {
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(line) if line.ends_with("opened") => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                _ => {}
            }
        }
        if failpoint.is_some() {
            // let it run into its crash point (or stop it if it never gets there)
            let deadline = Instant::now() + Duration::from_millis(800);
            while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(5));
            }
        } else if !during_open {
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..120_000)));
        }
        let _ = child.kill(); // SIGKILL (if still running)
        let status = child.wait().unwrap();
        aborted += u64::from(status.signal() == Some(6));
        reader.join().unwrap();
        let acked = rx
            .try_iter()
            .filter_map(|l| l.strip_prefix("acked ").and_then(|n| n.parse::<u64>().ok()))
            .last()
            .unwrap_or(0);

        let index = Index::open(dir.path(), config()).unwrap();
        let got: Vec<Vec<u32>> = (0..KEYS).map(|k| index.lookup(&key(k)).unwrap()).collect();
        common::release(index);
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name();
            assert!(
                !name.to_string_lossy().ends_with(".tmp"),
                "left behind: {name:?}"
            );
        }

        // the acknowledged prefix, then find how far beyond it the index got
        let mut ops = ops(round);
        for op in ops.by_ref().take(acked as usize) {
            apply(&mut oracle, op);
        }
        let mut mismatched: BTreeSet<u32> = (0..KEYS)
            .filter(|&k| set(&oracle, k) != got[k as usize])
            .collect();
        let mut extra = 0;
        for op in ops {
            if mismatched.is_empty() {
                break;
            }
            apply(&mut oracle, op);
            extra += 1;
            let touched: Vec<u32> = match op {
                Op::Add(k, _) | Op::Remove(k, _) => vec![k],
                Op::Drop(_) => (0..KEYS).collect(),
            };
            for k in touched {
                if set(&oracle, k) == got[k as usize] {
                    mismatched.remove(&k);
                } else {
                    mismatched.insert(k);
                }
            }
        }
        assert!(
            mismatched.is_empty(),
            "round {round}: no prefix at or beyond the {acked} acknowledged operations \
             matches; keys {mismatched:?}"
        );
        beyond_ack += u64::from(extra > 0);
        if std::env::var_os("LSM_CRASH_VERBOSE").is_some() {
            eprintln!("round {round}: acked {acked}, recovered {} more", extra);
        }
    }
    eprintln!(
        "{rounds} SIGKILLs and {failpoint_rounds} failpoint rounds ({aborted} aborted at their \
         point): each recovered a prefix; {beyond_ack} held unflushed writes too"
    );
    assert!(
        aborted >= failpoint_rounds / 2,
        "only {aborted} of {failpoint_rounds} failpoint rounds reached their crash point"
    );
}

/// The child of the cross-process lock test: holds an index open until killed.
#[test]
fn lock_child_entry() {
    let Ok(dir) = std::env::var("LSM_LOCK_DIR") else {
        return;
    };
    let _index = Index::open(Path::new(&dir), config()).unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    std::thread::sleep(Duration::from_secs(600));
}

#[test]
fn a_directory_open_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child_entry",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LSM_LOCK_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().ends_with("holding") {
            break;
        }
    }
    assert!(matches!(
        Index::open(dir.path(), config()),
        Err(lsm_index_core::Error::Locked { .. })
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // the kernel drops the lock with the process
    Index::open(dir.path(), config()).unwrap();
}
