//! When the write-ahead log reaches the disk: the fsyncs each `SyncMode` does (counted by
//! `Stats::log_fsyncs`), and group commit — flushes that overlap share one fsync, and every
//! write a flush acknowledged is there after a crash. (What a SIGKILL leaves in each mode is
//! `tests/crash.rs`.)

mod common;

use lsm_index_core::{Config, Index, SyncMode};
use std::sync::{Arc, Barrier};

/// A persistent index whose log is all there is: overlays never fill, so no background job
/// installs a manifest (which would fsync the log too).
fn config(sync: SyncMode) -> Config {
    Config {
        lanes: 4,
        overlay_limit: 1 << 20,
        sync,
        ..common::config()
    }
}

fn key(thread: usize, i: usize) -> Vec<u8> {
    format!("t{thread}:{i}").into_bytes()
}

fn fsyncs(index: &Index) -> u64 {
    index.stats().unwrap().log_fsyncs
}

#[test]
fn flush_mode_fsyncs_once_per_flush_that_has_something_to_sync() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
    for i in 0..10 {
        index.add(&key(0, i), 1).unwrap();
    }
    index.drop_handle(7).unwrap();
    assert_eq!(fsyncs(&index), 0, "writes alone do not fsync");
    index.flush().unwrap();
    assert_eq!(fsyncs(&index), 1);
    index.flush().unwrap();
    assert_eq!(fsyncs(&index), 1, "nothing new to sync");
    index.add_many(&[(key(0, 20), 1), (key(0, 21), 2)]).unwrap();
    index.flush().unwrap();
    index.flush().unwrap();
    assert_eq!(fsyncs(&index), 2);
}

#[test]
fn always_mode_fsyncs_once_per_write_call() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(SyncMode::Always)).unwrap();
    for i in 0..10 {
        index.add(&key(0, i), 1).unwrap();
    }
    assert_eq!(fsyncs(&index), 10);
    let batch: Vec<(Vec<u8>, u32)> = (0..100).map(|i| (key(1, i), 2)).collect();
    index.add_many(&batch).unwrap();
    assert_eq!(fsyncs(&index), 11, "a batch is one call");
    index.remove(&key(0, 0), 1).unwrap();
    index.drop_handle(2).unwrap();
    assert_eq!(fsyncs(&index), 13);
    index.add(&key(0, 1), 1).unwrap(); // present already: nothing logged, nothing to sync
    index.flush().unwrap();
    assert_eq!(
        fsyncs(&index),
        13,
        "every write was synced when it returned"
    );
    assert!(matches!(
        index.try_add(b"k", 1),
        Err(lsm_index_core::Error::WouldBlock { .. })
    ));
}

/// `None` never fsyncs the log, even at `flush`, `checkpoint` or `close`; what it flushed is
/// still handed to the OS (reopened after a drop without close, as after a crash of the
/// process).
#[test]
fn none_mode_never_fsyncs_the_log_and_flush_still_writes_it_out() {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(SyncMode::None)).unwrap();
    for i in 0..100 {
        index.add(&key(0, i), 1).unwrap();
    }
    index.flush().unwrap();
    index.checkpoint().unwrap();
    for i in 100..200 {
        index.add(&key(0, i), 1).unwrap();
    }
    index.flush().unwrap();
    assert_eq!(fsyncs(&index), 0);
    common::release(index);
    let index = Index::open(dir.path(), config(SyncMode::None)).unwrap();
    for i in 0..200 {
        assert_eq!(index.lookup(&key(0, i)).unwrap(), vec![1], "key {i}");
    }
    assert_eq!(fsyncs(&index), 0);
    index.close().unwrap();
}

/// Every round, each thread writes, then all flush at once: the first flush to reach the
/// log fsyncs every thread's writes, and the others find nothing left to sync. So exactly one
/// fsync per round, and after a crash (the index dropped without close) every write is there.
#[test]
fn concurrent_flushes_share_one_fsync() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 25;
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let (index, barrier) = (index.clone(), barrier.clone());
            std::thread::spawn(move || {
                for round in 0..ROUNDS {
                    for i in 0..20 {
                        index.add(&key(t, round * 20 + i), t as u32).unwrap();
                    }
                    barrier.wait(); // every thread's writes are appended
                    index.flush().unwrap();
                    barrier.wait(); // every flush returned
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = (THREADS * ROUNDS) as u64;
    assert_eq!(
        fsyncs(&index),
        ROUNDS as u64,
        "{flushes} flushes in {ROUNDS} rounds"
    );
    common::release(index);
    let index = Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
    for t in 0..THREADS {
        for i in 0..ROUNDS * 20 {
            assert_eq!(index.lookup(&key(t, i)).unwrap(), vec![t as u32], "{t}:{i}");
        }
    }
}

/// Writers that flush after every write, with no coordination: however the flushes
/// interleave, each returns only once its own writes are fsynced (all there after a crash),
/// and no flush fsyncs more than once.
#[test]
fn racing_flushes_lose_nothing_they_acknowledged() {
    const THREADS: usize = 4;
    const WRITES: usize = 300;
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let index = index.clone();
            std::thread::spawn(move || {
                for i in 0..WRITES {
                    index.add(&key(t, i), t as u32).unwrap();
                    index.flush().unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let flushes = (THREADS * WRITES) as u64;
    let n = fsyncs(&index);
    assert!(
        (1..=flushes).contains(&n),
        "{n} fsyncs for {flushes} flushes"
    );
    eprintln!("{flushes} racing flushes, {n} fsyncs");
    common::release(index);
    let index = Index::open(dir.path(), config(SyncMode::Flush)).unwrap();
    for t in 0..THREADS {
        for i in 0..WRITES {
            assert_eq!(index.lookup(&key(t, i)).unwrap(), vec![t as u32], "{t}:{i}");
        }
    }
}

#[test]
fn an_index_in_memory_has_no_log_to_sync() {
    let index = Index::new(common::config()).unwrap();
    index.add(b"k", 1).unwrap();
    index.flush().unwrap();
    assert_eq!(fsyncs(&index), 0);
}
