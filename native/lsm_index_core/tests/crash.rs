//! Crash suite: a child process (this test binary, re-executed) writes random operations to a
//! persistent index and is killed with SIGKILL at random points, once per sync mode:
//!
//! - `SyncMode::Flush` (the default) and `SyncMode::None`: a `flush` every 150 operations;
//!   every operation before a completed `flush` must survive (`None` promises as much for a
//!   crash of the process: its `flush` hands the log to the OS without an fsync);
//! - `SyncMode::Always`: no `flush` at all; every write call that returned must survive.
//!
//! The child prints `acked N` once the first N operations are acknowledged (the flush, or in
//! `Always` the write call, returned). With tiny overlays, flushes, merges and manifest
//! installs run all the time, so kills land in the middle of them; further rounds make the
//! child abort itself exactly at a crash point (`failpoint`: inside a segment write, a
//! manifest install, a log write). Every 8th SIGKILL lands during the child's own recovery.
//! After each kill the index is reopened and must hold every acknowledged operation, equal
//! the oracle after some prefix of the operations at or beyond that point, and leave no temp
//! file behind; the next child carries on from it.
//!
//! Where a kill lands is random (seeded), but no outcome depends on timing: the parent kills
//! after an event the child reports (recovery started, N operations acknowledged), a crash
//! point round waits for the child to abort (its stdout closing) or to report it never got
//! there, and the only deadline is a hang guard.

mod common;

use lsm_index_core::{Config, Index, SyncMode};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};
use std::time::Duration;

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
/// In a crash point round the child also checkpoints this often, so every point is reached
/// many times early on, whatever the pace of the background jobs (which would otherwise
/// decide how many segments and manifests a run writes).
const CHECKPOINT_EVERY: u64 = 1_050;
/// Most operations a child can do before it is killed (it stops there and waits).
const MAX_OPS: u64 = 60_000;
/// How long the parent waits for the child's next line before calling it hung: a guard
/// only, never the outcome of a passing run.
const HANG_GUARD: Duration = Duration::from_secs(300);

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

fn config(sync: SyncMode) -> Config {
    Config {
        lanes: 4,
        overlay_limit: 32,
        max_segments: 3,
        sync,
        ..common::config()
    }
}

/// The child: run by the parent re-executing this binary with `LSM_CRASH_DIR` set. Ignored,
/// so a normal run neither runs nor counts it; the parent passes `--ignored --exact`.
#[test]
#[ignore = "the crash tests' child process (needs LSM_CRASH_DIR)"]
fn crash_child_entry() {
    let Ok(dir) = std::env::var("LSM_CRASH_DIR") else {
        return;
    };
    let round: u64 = std::env::var("LSM_CRASH_ROUND").unwrap().parse().unwrap();
    let sync = SyncMode::from_name(&std::env::var("LSM_CRASH_SYNC").unwrap()).unwrap();
    let crash_point = std::env::var_os("LSM_FAILPOINT").is_some();
    let mut out = std::io::stdout();
    writeln!(out, "opening").unwrap();
    out.flush().unwrap();
    let index = Index::open(Path::new(&dir), config(sync)).unwrap();
    writeln!(out, "opened").unwrap();
    out.flush().unwrap();
    for (i, op) in ops(round).enumerate() {
        match op {
            Op::Add(k, h) => index.add(&key(k), h).unwrap(),
            Op::Remove(k, h) => index.remove(&key(k), h).unwrap(),
            Op::Drop(h) => index.drop_handle(h).unwrap(),
        }
        let done = i as u64 + 1;
        // `Always`: the write call returned, so it is in the log file; else only a flush
        // acknowledges
        let acked = match sync {
            SyncMode::Always => true,
            _ if done.is_multiple_of(FLUSH_EVERY) => {
                index.flush().unwrap();
                true
            }
            _ => false,
        };
        if crash_point && done.is_multiple_of(CHECKPOINT_EVERY) {
            index.checkpoint().unwrap();
        }
        if acked {
            writeln!(out, "acked {done}").unwrap();
            out.flush().unwrap();
        }
    }
    // every operation done, and every job they started (a crash point round: its point was
    // never reached)
    index.wait_idle().unwrap();
    writeln!(out, "done").unwrap();
    out.flush().unwrap();
    loop {
        std::thread::park(); // until killed
    }
}

/// Held by a test thread while it spawns a child, and while it has an index open itself.
/// The tests of this binary run on several threads: a child forked by one holds a copy of
/// every descriptor the process has open until it execs — another thread's index lock among
/// them (`flock` belongs to the open file, which the copy shares) — so that thread's next
/// child could find its directory still locked by a process that is not even an index.
static PARENT: Mutex<()> = Mutex::new(());

fn parent() -> MutexGuard<'static, ()> {
    PARENT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
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

/// A running child and what it has said so far.
struct Watched {
    child: Child,
    lines: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
    opening: bool,
    acked: u64,
    done: bool,
    /// Its stdout closed: it exited (aborted at its crash point, or failed).
    exited: bool,
}

impl Watched {
    fn spawn(mut command: Command) -> Watched {
        // (spawn returns once the child has exec'd: its copies of our descriptors are closed)
        let mut child = {
            let _parent = parent();
            command.stdout(Stdio::piped()).spawn().unwrap()
        };
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(|l| l.ok()) {
                let _ = tx.send(line);
            }
        });
        Watched {
            child,
            lines,
            reader: Some(reader),
            opening: false,
            acked: 0,
            done: false,
            exited: false,
        }
    }

    fn note(&mut self, line: &str) {
        // the test harness may print before our lines: match their ends
        if line.ends_with("opening") {
            self.opening = true;
        } else if line.ends_with("done") {
            self.done = true;
        } else if let Some((_, n)) = line.rsplit_once("acked ") {
            self.acked = self.acked.max(n.parse().unwrap());
        }
    }

    /// Reads the child's lines until `until` holds or it exits.
    fn wait(&mut self, until: impl Fn(&Watched) -> bool) {
        while !until(self) && !self.exited {
            match self.lines.recv_timeout(HANG_GUARD) {
                Ok(line) => self.note(&line),
                Err(mpsc::RecvTimeoutError::Disconnected) => self.exited = true,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!("the child said nothing for {HANG_GUARD:?}");
                }
            }
        }
    }

    /// SIGKILLs it (if still running); returns its exit signal and every operation it
    /// acknowledged.
    fn kill(mut self) -> (Option<i32>, u64) {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        // the lines printed before it died
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        for line in self.lines.try_iter().collect::<Vec<_>>() {
            self.note(&line);
        }
        (status.signal(), self.acked)
    }
}

/// Opens the index the last child left, checks it against the oracle after the
/// acknowledged operations of `round` and some more of them, and advances the oracle to
/// that state. Returns how many operations beyond the acknowledged ones it held.
fn check_recovered(
    dir: &Path,
    sync: SyncMode,
    oracle: &mut Oracle,
    round: u64,
    acked: u64,
) -> usize {
    let got: Vec<Vec<u32>> = {
        let _parent = parent();
        let index = Index::open(dir, config(sync)).unwrap();
        let got = (0..KEYS).map(|k| index.lookup(&key(k)).unwrap()).collect();
        common::release(index);
        got
    };
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name();
        assert!(
            !name.to_string_lossy().ends_with(".tmp"),
            "left behind: {name:?}"
        );
    }

    // the acknowledged prefix, then find how far beyond it the index got
    let mut ops = ops(round);
    for op in ops.by_ref().take(acked as usize) {
        apply(oracle, op);
    }
    let mut mismatched: BTreeSet<u32> = (0..KEYS)
        .filter(|&k| set(oracle, k) != got[k as usize])
        .collect();
    let mut extra = 0;
    for op in ops {
        if mismatched.is_empty() {
            break;
        }
        apply(oracle, op);
        extra += 1;
        let touched: Vec<u32> = match op {
            Op::Add(k, _) | Op::Remove(k, _) => vec![k],
            Op::Drop(_) => (0..KEYS).collect(),
        };
        for k in touched {
            if set(oracle, k) == got[k as usize] {
                mismatched.remove(&k);
            } else {
                mismatched.insert(k);
            }
        }
    }
    assert!(
        mismatched.is_empty(),
        "{} round {round}: no prefix at or beyond the {acked} acknowledged operations \
         matches; {} keys differ, first {:?}",
        sync.name(),
        mismatched.len(),
        mismatched.iter().take(8).collect::<Vec<_>>()
    );
    extra
}

/// `sigkills` rounds killed at random points, then `per_point` rounds per crash point, all
/// on one directory in `sync` mode; `kill_within` bounds how many operations past the
/// recovery a kill waits for.
fn campaign(sync: SyncMode, sigkills: u64, per_point: u64, kill_within: u64) {
    let dir = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut rng = StdRng::seed_from_u64(7);
    let mut oracle = Oracle::new();
    let mut beyond_ack = 0;
    let mut aborted = 0;
    let failpoint_rounds = POINTS.len() as u64 * per_point;
    for round in 0..sigkills + failpoint_rounds {
        // the failpoint rounds come last: one point after another, at its n-th hit
        let failpoint = (round >= sigkills).then(|| {
            let point = POINTS[((round - sigkills) / per_point) as usize];
            format!("{point}:{}", rng.gen_range(1..12))
        });
        let mut command = Command::new(&exe);
        command
            .args([
                "crash_child_entry",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("LSM_CRASH_DIR", dir.path())
            .env("LSM_CRASH_ROUND", round.to_string())
            .env("LSM_CRASH_SYNC", sync.name())
            .stderr(match std::env::var_os("LSM_CRASH_VERBOSE") {
                Some(_) => Stdio::inherit(),
                None => Stdio::null(),
            });
        if let Some(f) = &failpoint {
            command.env("LSM_FAILPOINT", f);
        }
        let mut child = Watched::spawn(command);
        if failpoint.is_some() {
            // until it aborts at its point (or says it never got there)
            child.wait(|c| c.done);
        } else if round % 8 == 7 {
            // a SIGKILL during recovery (log replay, torn-tail cut, new log file): within
            // 0-3 ms of its start
            child.wait(|c| c.opening);
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..3_000)));
        } else {
            // after some acknowledged operations, then anywhere in the next few
            let target = rng.gen_range(0..kill_within);
            child.wait(|c| c.acked >= target);
            std::thread::sleep(Duration::from_micros(rng.gen_range(0..5_000)));
        }
        let never_reached = child.done;
        let (signal, acked) = child.kill();
        if let Some(f) = &failpoint {
            assert!(
                !never_reached && signal == Some(libc::SIGABRT),
                "{} round {round}: the child did not abort at {f} (signal {signal:?})",
                sync.name()
            );
            aborted += 1;
        } else {
            // it never ends on its own (after its last operation it waits): anything but our
            // SIGKILL means it failed
            assert_eq!(
                signal,
                Some(libc::SIGKILL),
                "{} round {round}: the child ended on its own",
                sync.name()
            );
        }
        let extra = check_recovered(dir.path(), sync, &mut oracle, round, acked);
        beyond_ack += u64::from(extra > 0);
        if std::env::var_os("LSM_CRASH_VERBOSE").is_some() {
            eprintln!(
                "{} round {round}: acked {acked}, recovered {extra} more",
                sync.name()
            );
        }
    }
    eprintln!(
        "{}: {sigkills} SIGKILLs and {aborted} aborts at a crash point: each recovered a \
         prefix with every acknowledged operation; {beyond_ack} held unacknowledged ones too",
        sync.name()
    );
}

/// SIGKILL rounds in the `Flush` and `None` modes: `LSM_CRASH_ROUNDS` (default 120).
fn rounds() -> u64 {
    std::env::var("LSM_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120)
}

#[test]
fn killed_at_random_points_it_recovers_a_prefix_with_every_acknowledged_write() {
    campaign(SyncMode::Flush, rounds(), 6, 3_000);
}

/// `Always`: no `flush` is ever called, and every write call that returned survives.
#[test]
fn sync_always_keeps_every_returned_write_without_flush() {
    campaign(SyncMode::Always, rounds() / 3, 1, 300);
}

/// `None`: a crash of the process loses nothing flushed (the OS has it); writes after the
/// last flush may be lost, as in `Flush`.
#[test]
fn sync_none_keeps_every_flushed_write_through_a_process_crash() {
    campaign(SyncMode::None, rounds() / 3, 1, 3_000);
}

/// The child of the cross-process lock test: holds an index open until killed.
#[test]
#[ignore = "the lock test's child process (needs LSM_LOCK_DIR)"]
fn lock_child_entry() {
    let Ok(dir) = std::env::var("LSM_LOCK_DIR") else {
        return;
    };
    let _index = Index::open(Path::new(&dir), config(SyncMode::Flush)).unwrap();
    println!("holding");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::park(); // until killed
    }
}

#[test]
fn a_directory_open_in_another_process_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let spawning = parent();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "lock_child_entry",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LSM_LOCK_DIR", dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(spawning);
    let stdout = child.stdout.take().unwrap();
    let mut holding = false;
    for line in BufReader::new(stdout).lines() {
        if line.unwrap().ends_with("holding") {
            holding = true;
            break;
        }
    }
    assert!(holding, "the child exited without opening the index");
    let _parent = parent();
    assert!(matches!(
        Index::open(dir.path(), config(SyncMode::Flush)),
        Err(lsm_index_core::Error::Locked { .. })
    ));
    child.kill().unwrap();
    child.wait().unwrap();
    // the kernel drops the lock with the process
    Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
}
