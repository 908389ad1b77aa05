//! Background compaction: back-pressure (waiting and refusing writers), job reports, and
//! requested work (`compact`, `checkpoint`) carried out by the pool.

mod common;

use lsm_index_core::{on_done, JobEvent, JobReport};
use lsm_index_core::{Config, Error, Index, Overload};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a test waits for an event before calling it hung: a guard only, never the
/// outcome of a passing run.
const HANG_GUARD: Duration = Duration::from_secs(300);

fn key(i: u32) -> Vec<u8> {
    format!("k{i}").into_bytes()
}

/// One lane, a dedicated single worker, and a listener that parks the worker after its first
/// job until `release` is sent: compaction is stuck behind it, so overlays fill up.
fn stuck_index(on_overload: Overload) -> (Arc<Index>, mpsc::Sender<()>, mpsc::Receiver<JobReport>) {
    let index = Index::new(Config {
        lanes: 1,
        overlay_limit: 100,
        max_overlay_keys: Some(200),
        compaction_threads: Some(1),
        on_overload,
        ..common::config()
    })
    .unwrap();
    let (release, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let (reports_tx, reports) = mpsc::channel();
    let reports_tx = Mutex::new(reports_tx);
    index.set_listener(Some(on_done(move |r: &JobReport| {
        let _ = reports_tx.lock().unwrap().send(r.clone());
        let _ = gate.lock().unwrap().recv();
    })));
    (index, release, reports)
}

#[test]
fn a_full_lane_refuses_non_blocking_writes_and_writes_nothing() {
    let (index, release, reports) = stuck_index(Overload::Wait);
    for i in 0..100 {
        index.try_add(&key(i), 1).unwrap();
    }
    // the first flush runs and reports; the worker then parks in the listener
    let first = reports.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!((first.flushes, first.keys_flushed), (1, 100));
    // 100 more freeze again (queued behind the parked worker), 200 fill the active overlay
    for i in 100..400 {
        index.try_add(&key(i), 1).unwrap();
    }
    assert!(matches!(
        index.try_add(b"refused", 1),
        Err(Error::Overloaded { lane: 0 })
    ));
    let batch = vec![(b"refused-too".to_vec(), 2), (key(5), 3)];
    assert!(matches!(
        index.try_add_many(&batch),
        Err(Error::Overloaded { .. })
    ));
    assert!(index.lookup(b"refused").unwrap().is_empty());
    assert!(index.lookup(b"refused-too").unwrap().is_empty());
    assert_eq!(index.lookup(&key(5)).unwrap(), vec![1], "all or nothing");
    let s = index.stats().unwrap();
    assert!(s.stalls >= 2, "{s:?}");
    assert_eq!(s.frozen_overlays, 1);
    assert!(s.overlay_keys <= 300, "memory stays bounded: {s:?}");

    // a blocking write waits for room instead: it counts a stall when it finds the lane
    // full, then waits; with the worker parked nothing can make room, so it is still waiting
    let stalls = s.stalls;
    let writer = {
        let index = index.clone();
        std::thread::spawn(move || index.add(b"waited", 7))
    };
    let deadline = Instant::now() + HANG_GUARD;
    while index.stats().unwrap().stalls == stalls {
        assert!(
            Instant::now() < deadline,
            "the writer never reached the full lane"
        );
        assert!(
            !writer.is_finished(),
            "the blocking write returned without waiting"
        );
        std::thread::yield_now();
    }
    assert_eq!(index.stats().unwrap().stalls, stalls + 1);
    assert!(
        !writer.is_finished(),
        "the blocking write waits while compaction is stuck"
    );
    assert!(index.lookup(b"waited").unwrap().is_empty());
    drop(release);
    writer.join().unwrap().unwrap();
    assert_eq!(index.lookup(b"waited").unwrap(), vec![7]);
    index.wait_idle().unwrap();
    for i in 0..400 {
        assert_eq!(index.lookup(&key(i)).unwrap(), vec![1]);
    }
}

#[test]
fn fail_mode_refuses_blocking_writes_too() {
    let (index, release, reports) = stuck_index(Overload::Error);
    for i in 0..100 {
        index.add(&key(i), 1).unwrap();
    }
    reports.recv_timeout(HANG_GUARD).unwrap();
    for i in 100..400 {
        index.add(&key(i), 1).unwrap();
    }
    assert!(matches!(index.add(b"x", 1), Err(Error::Overloaded { .. })));
    assert!(matches!(
        index.add_many(&[(b"x".to_vec(), 1)]),
        Err(Error::Overloaded { .. })
    ));
    drop(release);
    index.wait_idle().unwrap();
    index.add(b"x", 1).unwrap();
    assert_eq!(index.len().unwrap(), 401);
}

#[test]
fn reports_describe_each_job() {
    let index = Index::new(Config {
        lanes: 2,
        overlay_limit: 50,
        ..common::config()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    index.set_listener(Some(on_done(move |r: &JobReport| {
        let _ = tx.lock().unwrap().send(r.clone());
    })));
    for i in 0..5_000 {
        index.add(&key(i), i % 3).unwrap();
    }
    index.compact().unwrap();
    index.wait_idle().unwrap();
    let reports: Vec<JobReport> = rx.try_iter().collect();
    let flushed: u64 = reports.iter().map(|r| r.keys_flushed).sum();
    let written: u64 = reports.iter().map(|r| r.keys_written).sum();
    let s = index.stats().unwrap();
    assert_eq!(flushed, s.keys_flushed);
    assert_eq!(written, s.keys_written);
    assert!(reports
        .iter()
        .all(|r| r.lane < 2 && r.flushes + r.merges > 0));
    assert!(reports.iter().any(|r| r.merges > 0));
    assert_eq!(s.segments, 2, "compact leaves one segment per lane");
}

/// Each job that builds anything tells its listener `Started` right before, then `Done` with
/// the same job number; jobs are numbered apart, and a job with nothing to build says
/// nothing.
#[test]
fn events_pair_each_jobs_start_with_its_report() {
    let index = Index::new(Config {
        lanes: 4,
        overlay_limit: 50,
        ..common::config()
    })
    .unwrap();
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    index.set_listener(Some(Arc::new(move |event: &JobEvent<'_>| {
        let seen = match event {
            JobEvent::Started { job, lane } => (*job, *lane, None),
            JobEvent::Done(r) => (r.job, r.lane, Some(JobReport::clone(r))),
            other => panic!("no job fails here: {other:?}"),
        };
        let _ = tx.lock().unwrap().send(seen);
    })));
    for i in 0..3_000 {
        index.add(&key(i), i % 3).unwrap();
    }
    index.compact().unwrap();
    index.wait_idle().unwrap();
    // compact again: lanes are one clean segment each, so no job builds: no event
    let events: Vec<_> = rx.try_iter().collect();
    index.compact().unwrap();
    index.wait_idle().unwrap();
    assert_eq!(rx.try_iter().count(), 0);
    let mut open = std::collections::HashMap::new();
    let mut jobs = std::collections::HashSet::new();
    for (job, lane, done) in &events {
        match done {
            None => {
                assert!(jobs.insert(*job), "job {job} started twice");
                assert!(
                    open.insert(*lane, *job).is_none(),
                    "lane {lane}: two jobs at once"
                );
            }
            Some(r) => {
                assert_eq!(open.remove(lane), Some(*job), "Done without its Started");
                assert!(r.flushes + r.merges > 0);
            }
        }
    }
    assert!(open.is_empty(), "every Started ended: {open:?}");
    let s = index.stats().unwrap();
    let done: Vec<&JobReport> = events.iter().filter_map(|e| e.2.as_ref()).collect();
    assert_eq!(
        done.iter().map(|r| r.keys_written).sum::<u64>(),
        s.keys_written
    );
    assert!(done.len() >= 4);
}

#[test]
fn checkpoint_and_compact_wait_for_their_work() {
    let index = Index::new(Config {
        lanes: 8,
        overlay_limit: 1_000,
        ..common::config()
    })
    .unwrap();
    for i in 0..3_000 {
        index.add(&key(i), 1).unwrap();
    }
    index.checkpoint().unwrap();
    let s = index.stats().unwrap();
    assert_eq!(s.overlay_keys, 0, "checkpoint flushed every overlay: {s:?}");
    index.drop_handle(1).unwrap();
    index.compact().unwrap();
    let s = index.stats().unwrap();
    assert_eq!((s.keys, s.pending_drops, s.segments), (0, 0, 0), "{s:?}");
}

/// A closed index runs no more jobs (`close` waits for a running one; a queued one finds the
/// index closed), so `wait_idle` answers at once, even while the pool still counts a job. It
/// failed with `Closed` when the job `close`'s checkpoint waited for had been served but not
/// yet counted done (its report still being delivered): seen once in ExUnit's close/1 test
/// with a second test run beside it. Here the listener holds the worker in that window.
#[test]
fn wait_idle_on_a_closed_index_answers_at_once_while_a_job_is_still_counted() {
    let (index, release, reports) = stuck_index(Overload::Wait);
    for i in 0..50 {
        index.try_add(&key(i), 1).unwrap(); // under overlay_limit: no job yet
    }
    // close's checkpoint queues the flush and waits until it is served; the worker then
    // reports it and parks in the listener, the job still counted as pending
    index.close().unwrap();
    let report = reports.recv_timeout(HANG_GUARD).unwrap();
    assert_eq!(report.keys_flushed, 50);
    index.wait_idle().unwrap();
    assert!(matches!(index.stats(), Err(Error::Closed)));
    release.send(()).unwrap();
}
