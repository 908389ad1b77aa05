//! Persistent indexes: reopen equals what was flushed, the directory lock, leftover files,
//! damaged files, and the closed state.

mod common;

use common::{churn, key, Oracle};

use lsm_index_core::{Config, Error, Index};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeSet, HashMap};
use std::fs;
use std::path::Path;

fn small() -> Config {
    Config {
        lanes: 4,
        overlay_limit: 64,
        ..common::config()
    }
}

fn check(index: &Index, oracle: &Oracle) {
    for i in 0..3_000 {
        let k = key(i);
        let want: Vec<u32> = oracle
            .get(&k)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default();
        assert_eq!(index.lookup(&k).unwrap(), want, "key {i}");
    }
    let live = oracle.values().filter(|s| !s.is_empty()).count() as u64;
    assert_eq!(index.len().unwrap(), live);
}

#[test]
fn reopen_equals_what_was_flushed_or_closed() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(1);
    let mut oracle = Oracle::new();
    for round in 0..4 {
        let index = Index::open(dir.path(), small()).unwrap();
        check(&index, &oracle);
        churn(&index, &mut oracle, &mut rng, 5_000);
        if round % 2 == 0 {
            index.flush().unwrap();
            check(&index, &oracle);
            common::release(index); // no close: a flush alone must be enough
        } else {
            index.close().unwrap();
        }
    }
    let index = Index::open(dir.path(), small()).unwrap();
    check(&index, &oracle);
    assert!(index.stats().unwrap().segments > 0);
    index.compact().unwrap();
    index.close().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    check(&index, &oracle);
}

#[test]
fn the_manifest_decides_lanes_and_secret() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    index.add(b"k", 1).unwrap();
    index.close().unwrap();
    let other = Config {
        lanes: 64,
        secret: Some(lsm_index_core::internals::HashSecret([1; 16])),
        ..common::config()
    };
    let index = Index::open(dir.path(), other).unwrap();
    assert_eq!(index.config().lanes, 4);
    assert_eq!(index.config().secret, Some(common::SECRET));
    assert_eq!(index.lookup(b"k").unwrap(), vec![1]);
}

#[test]
fn a_directory_is_opened_by_one_index_at_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let first = Index::open(dir.path(), small()).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::Locked { .. })
    ));
    first.close().unwrap();
    let second = Index::open(dir.path(), small()).unwrap();
    drop(second);
    Index::open(dir.path(), small()).unwrap();
}

#[test]
fn a_closed_index_refuses_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    index.add(b"k", 1).unwrap();
    index.close().unwrap();
    index.close().unwrap();
    assert_eq!(index.add(b"k", 2), Err(Error::Closed));
    assert_eq!(index.lookup(b"k"), Err(Error::Closed));
    assert_eq!(index.drop_handle(1), Err(Error::Closed));
    assert_eq!(index.flush(), Err(Error::Closed));
    assert_eq!(index.compact(), Err(Error::Closed));
    assert!(index.lookup_many(&[b"k"]).is_err());
}

#[test]
fn leftover_files_are_removed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    for i in 0..1_000u32 {
        index.add(&i.to_le_bytes(), i).unwrap();
    }
    index.close().unwrap();
    let lane0 = dir.path().join("segments/lane-0");
    fs::create_dir_all(&lane0).unwrap();
    let strays = [
        lane0.join("00000000000fffff.seg"),
        lane0.join("00000000000ffffe.seg.tmp"),
        dir.path().join("MANIFEST-00000000000fffff.json.tmp"),
    ];
    for s in &strays {
        fs::write(s, b"half written").unwrap();
    }
    let index = Index::open(dir.path(), small()).unwrap();
    for s in &strays {
        assert!(!s.exists(), "{s:?} left behind");
    }
    assert_eq!(index.lookup(&7u32.to_le_bytes()).unwrap(), vec![7]);
    assert_eq!(manifests(dir.path()), 1);
}

fn manifests(dir: &Path) -> usize {
    fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .starts_with("MANIFEST-")
        })
        .count()
}

fn segment_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for lane in fs::read_dir(dir.join("segments")).unwrap() {
        for f in fs::read_dir(lane.unwrap().path()).unwrap() {
            out.push(f.unwrap().path());
        }
    }
    out.sort();
    out
}

/// A directory with a compacted index of 2,000 keys, closed.
fn built() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    for i in 0..2_000u32 {
        index.add(&key(i), i % 7).unwrap();
    }
    index.compact().unwrap();
    index.close().unwrap();
    dir
}

#[test]
fn damaged_segment_files_are_refused() {
    let dir = built();
    let files = segment_files(dir.path());
    assert_eq!(files.len(), 4);
    let original = fs::read(&files[0]).unwrap();
    // a flipped byte anywhere: header, every section
    for at in (0..original.len()).step_by(original.len() / 97 + 1) {
        let mut bad = original.clone();
        bad[at] ^= 0x40;
        fs::write(&files[0], &bad).unwrap();
        let err = Index::open(dir.path(), small()).err();
        assert!(
            matches!(
                err,
                Some(
                    Error::ChecksumMismatch { .. } | Error::Corrupt { .. } | Error::BadMagic { .. }
                )
            ),
            "byte {at}: {err:?}"
        );
    }
    // truncated
    fs::write(&files[0], &original[..original.len() / 2]).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::Corrupt { .. })
    ));
    // another segment's bytes under this name
    fs::write(&files[0], fs::read(&files[1]).unwrap()).unwrap();
    assert!(Index::open(dir.path(), small()).is_err());
    // deleted
    fs::remove_file(&files[0]).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::Io { .. })
    ));
    // restored: opens again
    fs::write(&files[0], &original).unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    assert_eq!(index.lookup(&key(9)).unwrap(), vec![2]);
}

#[test]
fn a_damaged_manifest_is_refused() {
    let dir = built();
    let path = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".json"))
        .unwrap();
    let original = fs::read(&path).unwrap();
    fs::write(&path, &original[..original.len() - 10]).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::Corrupt { .. })
    ));
    let text = String::from_utf8(original.clone()).unwrap();
    // one segment's level changed: valid JSON, wrong checksum
    let at = text.find("\"level\": ").unwrap() + "\"level\": ".len();
    let level = text.as_bytes()[at];
    let other = if level == b'9' {
        '8'
    } else {
        (level + 1) as char
    };
    let tampered = format!("{}{other}{}", &text[..at], &text[at + 1..]);
    assert_ne!(tampered, text);
    fs::write(&path, tampered).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::ChecksumMismatch { .. })
    ));
    fs::write(&path, &original).unwrap();
    Index::open(dir.path(), small()).unwrap();
}

/// An in-process crash: the index is dropped without `flush`/`close`, losing its log buffer.
/// Reopened, it must hold every write acknowledged by the last flush, and equal the oracle
/// after some prefix of the writes (never a lane ahead of another).
#[test]
fn after_a_crash_the_state_is_a_prefix_at_or_beyond_the_last_flush() {
    for seed in 0..6u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = StdRng::seed_from_u64(100 + seed);
        let mut oracle = Oracle::new();
        let index = Index::open(dir.path(), small()).unwrap();
        churn(&index, &mut oracle, &mut rng, 3_000);
        index.flush().unwrap();
        let flushed = oracle.clone();
        // the writes after the flush, logged so prefixes can be replayed on the oracle
        let mut log: Vec<(Vec<u8>, u32, bool)> = Vec::new();
        for _ in 0..rng.gen_range(0..3_000) {
            let k = key(rng.gen_range(0..3_000));
            let h = rng.gen_range(0..40);
            let add = rng.gen_bool(0.6);
            if add {
                index.add(&k, h).unwrap();
            } else {
                index.remove(&k, h).unwrap();
            }
            log.push((k, h, add));
        }
        common::release(index);

        let index = Index::open(dir.path(), small()).unwrap();
        let state = |o: &Oracle| -> Vec<(u32, Vec<u32>)> {
            (0..3_000)
                .map(|i| {
                    (
                        i,
                        o.get(&key(i))
                            .map(|s| s.iter().copied().collect())
                            .unwrap_or_default(),
                    )
                })
                .filter(|(_, v): &(u32, Vec<u32>)| !v.is_empty())
                .collect()
        };
        let got: Vec<(u32, Vec<u32>)> = (0..3_000)
            .map(|i| (i, index.lookup(&key(i)).unwrap()))
            .filter(|(_, v)| !v.is_empty())
            .collect();
        let mut o = flushed;
        let mut matched = state(&o) == got;
        for (k, h, add) in &log {
            if matched {
                break;
            }
            if *add {
                o.entry(k.clone()).or_default().insert(*h);
            } else if let Some(s) = o.get_mut(k) {
                s.remove(h);
            }
            matched = state(&o) == got;
        }
        assert!(
            matched,
            "seed {seed}: reopened state is no prefix of the writes"
        );
    }
}

#[test]
fn the_log_is_replayed_and_deleted_once_covered() {
    let dir = tempfile::tempdir().unwrap();
    let big = Config {
        lanes: 2,
        overlay_limit: 1 << 20, // nothing reaches a segment before close
        ..common::config()
    };
    let index = Index::open(dir.path(), big.clone()).unwrap();
    for i in 0..5_000u32 {
        index.add(&key(i), i % 3).unwrap();
    }
    index.drop_handle(2).unwrap();
    index.flush().unwrap();
    common::release(index);
    let logs = |d: &Path| {
        fs::read_dir(d)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("wal-")
            })
            .count()
    };
    assert_eq!(logs(dir.path()), 1);
    let index = Index::open(dir.path(), big.clone()).unwrap();
    assert_eq!(
        index.stats().unwrap().segments,
        0,
        "all of it came from the log"
    );
    assert_eq!(index.lookup(&key(4)).unwrap(), vec![1]);
    assert_eq!(index.lookup(&key(5)).unwrap(), Vec::<u32>::new());
    // 1,666 keys had handle 2 (2, 5, ..., 4997)
    assert_eq!(index.len().unwrap(), 5_000 - 1_666);
    index.close().unwrap();
    // close checkpoints: the old logs are gone, one empty log of the closed session remains
    assert!(logs(dir.path()) <= 1);
    let index = Index::open(dir.path(), big).unwrap();
    assert!(index.stats().unwrap().segments > 0);
    assert_eq!(index.lookup(&key(4)).unwrap(), vec![1]);
}

/// Regression (found by the crash suite): an open without writes leaves an empty log named
/// for the next sequence number; the next open appends to that same file and must not count
/// it among the older logs, or an install deletes the live log and a crash loses flushed
/// writes.
#[test]
fn reopening_without_writes_does_not_delete_the_live_log() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), small()).unwrap();
    index.add(b"a", 1).unwrap();
    index.flush().unwrap();
    common::release(index);
    drop(Index::open(dir.path(), small()).unwrap()); // no writes
    let index = Index::open(dir.path(), small()).unwrap();
    index.add(b"b", 2).unwrap();
    for i in 0..500u32 {
        index.add(&key(i), 3).unwrap(); // flushes and installs, deleting covered logs
    }
    index.add(b"c", 4).unwrap();
    index.flush().unwrap();
    common::release(index);
    let index = Index::open(dir.path(), small()).unwrap();
    assert_eq!(index.lookup(b"a").unwrap(), vec![1]);
    assert_eq!(index.lookup(b"b").unwrap(), vec![2]);
    assert_eq!(index.lookup(b"c").unwrap(), vec![4]);
    assert_eq!(index.lookup(&key(499)).unwrap(), vec![3]);
}

#[test]
fn a_backup_taken_during_writes_opens_to_a_consistent_state() {
    let dir = tempfile::tempdir().unwrap();
    let backups = tempfile::tempdir().unwrap();
    let index = std::sync::Arc::new(Index::open(dir.path(), small()).unwrap());
    // the writer says when it is a quarter through: the backup starts then (not after a sleep)
    let (quarter_tx, quarter) = std::sync::mpsc::channel();
    let writer = {
        let index = index.clone();
        std::thread::spawn(move || {
            let mut rng = StdRng::seed_from_u64(9);
            let mut log = Vec::new();
            let mut acked = Vec::new(); // log length at each completed flush
            for i in 0..20_000u32 {
                let k = rng.gen_range(0..500u32);
                let h = rng.gen_range(0..16);
                let add = rng.gen_bool(0.6);
                if add {
                    index.add(&key(k), h).unwrap();
                } else {
                    index.remove(&key(k), h).unwrap();
                }
                log.push((k, h, add));
                if i % 100 == 99 {
                    index.flush().unwrap();
                    acked.push((log.len(), std::time::Instant::now()));
                }
                if i == 5_000 {
                    quarter_tx.send(()).unwrap();
                }
            }
            (log, acked)
        })
    };
    quarter.recv().unwrap();
    let taken = std::time::Instant::now();
    let dest = backups.path().join("b1");
    index.backup(&dest).unwrap();
    let (log, acked) = writer.join().unwrap();
    let must_have = acked
        .iter()
        .filter(|(_, at)| *at < taken)
        .map(|(n, _)| *n)
        .max()
        .unwrap_or(0);
    let backup = Index::open(&dest, small()).unwrap();
    let got: Vec<Vec<u32>> = (0..500).map(|k| backup.lookup(&key(k)).unwrap()).collect();
    let mut o: HashMap<u32, BTreeSet<u32>> = HashMap::new();
    let state = |o: &HashMap<u32, BTreeSet<u32>>, k: u32| -> Vec<u32> {
        o.get(&k)
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    };
    let mut found = None;
    for (n, &(k, h, add)) in log.iter().enumerate() {
        if n >= must_have && (0..500).all(|k| state(&o, k) == got[k as usize]) {
            found = Some(n);
            break;
        }
        if add {
            o.entry(k).or_default().insert(h);
        } else if let Some(s) = o.get_mut(&k) {
            s.remove(&h);
        }
    }
    if found.is_none() && (0..500).all(|k| state(&o, k) == got[k as usize]) {
        found = Some(log.len());
    }
    assert!(
        found.is_some(),
        "the backup is no prefix at or beyond {must_have} ops"
    );
    // the source is unaffected and a second backup into a used directory is refused
    assert!(matches!(index.backup(&dest), Err(Error::Io { .. })));
    index.close().unwrap();
}

/// A failed segment write or install poisons the index: later writes and flushes fail
/// instead of pretending, and what was flushed before is intact on disk.
#[test]
fn a_failed_install_poisons_the_index() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("index");
    let index = Index::open(&dir, small()).unwrap();
    index.add(b"before", 1).unwrap();
    index.flush().unwrap();
    // pull the directory away and put a file in its place: creating segment files fails
    let moved = root.path().join("moved");
    fs::rename(&dir, &moved).unwrap();
    fs::write(&dir, b"not a directory").unwrap();
    // the background flush fails; writers hear of it (they are refused or woken)
    let mut failed = None;
    for i in 0..100_000u32 {
        if let Err(e) = index.add(&key(i), 1) {
            failed = Some(e);
            break;
        }
    }
    match &failed {
        Some(Error::Poisoned { cause }) => assert!(cause.contains("compaction of lane"), "{cause}"),
        other => panic!("expected a poisoned index, got {other:?}"),
    }
    assert!(matches!(index.add(b"k", 1), Err(Error::Poisoned { .. })));
    assert!(matches!(index.flush(), Err(Error::Poisoned { .. })));
    assert!(matches!(index.drop_handle(1), Err(Error::Poisoned { .. })));
    common::release(index);
    fs::remove_file(&dir).unwrap();
    fs::rename(&moved, &dir).unwrap();
    let index = Index::open(&dir, small()).unwrap();
    assert_eq!(index.lookup(b"before").unwrap(), vec![1]);
}

/// A deleted manifest must not make `open` start an empty index over the files (and delete
/// them as leftovers).
#[test]
fn a_missing_manifest_over_existing_data_is_refused() {
    let dir = built();
    let manifest = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().ends_with(".json"))
        .unwrap();
    let saved = fs::read(&manifest).unwrap();
    fs::remove_file(&manifest).unwrap();
    assert!(matches!(
        Index::open(dir.path(), small()),
        Err(Error::Corrupt { .. })
    ));
    assert_eq!(segment_files(dir.path()).len(), 4, "nothing was deleted");
    fs::write(&manifest, saved).unwrap();
    assert_eq!(
        Index::open(dir.path(), small())
            .unwrap()
            .lookup(&key(9))
            .unwrap(),
        vec![2]
    );
}

/// A log file that is not covered by the manifest and goes missing is refused, not ignored.
#[test]
fn a_missing_log_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = Config {
        lanes: 2,
        overlay_limit: 1 << 20, // everything stays in the log
        ..common::config()
    };
    let index = Index::open(dir.path(), big.clone()).unwrap();
    index.add(b"a", 1).unwrap();
    index.flush().unwrap();
    common::release(index);
    let index = Index::open(dir.path(), big.clone()).unwrap();
    index.add(b"b", 2).unwrap();
    index.flush().unwrap();
    common::release(index);
    let mut logs: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".log"))
        .collect();
    logs.sort();
    assert_eq!(logs.len(), 2);
    let saved = fs::read(&logs[0]).unwrap();
    fs::remove_file(&logs[0]).unwrap();
    assert!(matches!(
        Index::open(dir.path(), big.clone()),
        Err(Error::Corrupt { .. })
    ));
    fs::write(&logs[0], saved).unwrap();
    let index = Index::open(dir.path(), big).unwrap();
    assert_eq!(index.lookup(b"a").unwrap(), vec![1]);
    assert_eq!(index.lookup(b"b").unwrap(), vec![2]);
}

/// The handles `tests/fixtures/v1-index` holds for `user_id={i}`: written by the format-1
/// build (a84d48d) with 2 lanes: 3,000 keys compacted (ptr_hash segments, pool lists for
/// every fifth key), then 100 removals and 100 new keys flushed (boomphf segments with
/// tombstones-to-be), then closed.
fn v1_fixture_handles(i: u32) -> Vec<u32> {
    match i {
        0..100 if i.is_multiple_of(5) => vec![100 + i % 3],
        0..100 => vec![],
        100..3000 if i.is_multiple_of(5) => {
            let mut v = vec![i % 7, 100 + i % 3];
            v.sort_unstable();
            v
        }
        100..3000 => vec![i % 7],
        3000..3100 => vec![9],
        _ => vec![],
    }
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Format-1 (MPH) segments written by an older build stay readable, merge with format-2
/// ones into format 2, and survive a reopen.
#[test]
fn an_index_written_with_format_1_segments_opens_and_compacts_into_format_2() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/v1-index"),
        dir.path(),
    );
    let check_all = |index: &Index, added: bool| {
        for i in 0..3200 {
            let mut want = v1_fixture_handles(i);
            if added && (3100..3200).contains(&i) {
                want = vec![11];
            }
            assert_eq!(index.lookup(&key(i)).unwrap(), want, "user_id={i}");
        }
    };
    let index = Index::open(dir.path(), common::config()).unwrap();
    check_all(&index, false);
    for i in 3100..3200 {
        index.add(&key(i), 11).unwrap();
    }
    index.compact().unwrap();
    index.wait_idle().unwrap();
    check_all(&index, true);
    index.close().unwrap();
    let index = Index::open(dir.path(), common::config()).unwrap();
    check_all(&index, true);
    let versions: BTreeSet<u8> = fs::read_dir(dir.path().join("segments/lane-0"))
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap()[8])
        .collect();
    assert_eq!(
        versions,
        BTreeSet::from([2]),
        "compaction rewrote them as format 2"
    );
    index.close().unwrap();
}
