//! A compaction worker that panics poisons its index: later calls fail with an error naming
//! the panic, instead of writers waiting forever for a flush that will not come. (Its own
//! test binary: the failpoint is armed process-wide.)

mod common;

use lsm_index_core::{Config, Error, Index, JobEvent, JobFailure};
use std::sync::{mpsc, Arc, Mutex};

#[test]
fn a_panicking_worker_poisons_the_index() {
    // the second flush build panics
    std::env::set_var("LSM_FAILPOINT", "compaction:built:2:panic");
    let index = Index::new(Config {
        lanes: 1,
        overlay_limit: 100,
        ..common::config()
    })
    .unwrap();
    let (tx, events) = mpsc::channel();
    let tx = Mutex::new(tx);
    index.set_listener(Some(Arc::new(move |event: &JobEvent<'_>| {
        let seen = match event {
            JobEvent::Started { job, .. } => ("started", *job, String::new()),
            JobEvent::Done(r) => ("done", r.job, String::new()),
            JobEvent::Failed { job, failure, .. } => {
                assert!(matches!(failure, JobFailure::Panicked(_)), "{failure:?}");
                ("failed", *job, failure.to_string())
            }
            _ => unreachable!(),
        };
        let _ = tx.lock().unwrap().send(seen);
    })));
    let mut failed = None;
    for i in 0..100_000u32 {
        if let Err(e) = index.add(&i.to_le_bytes(), 1) {
            failed = Some(e);
            break;
        }
    }
    match failed {
        Some(Error::Poisoned { cause }) => {
            assert!(
                cause.contains("panicked") && cause.contains("failpoint"),
                "{cause}"
            )
        }
        other => panic!("expected a poisoned index, got {other:?}"),
    }
    assert!(matches!(index.compact(), Err(Error::Poisoned { .. })));
    assert!(matches!(index.drop_handle(3), Err(Error::Poisoned { .. })));
    // the listener heard each job start, then finish, until one started and failed (it is
    // told after the index is poisoned: wait for it)
    let mut seen = Vec::new();
    while seen
        .last()
        .is_none_or(|e: &(&str, u64, String)| e.0 != "failed")
    {
        seen.push(
            events
                .recv_timeout(std::time::Duration::from_secs(300))
                .unwrap(),
        );
    }
    for pair in seen.chunks(2) {
        let [(start, job, _), (end, same, _)] = pair else {
            panic!("unpaired events: {seen:?}")
        };
        assert_eq!((*start, job), ("started", same), "{seen:?}");
        assert!(["done", "failed"].contains(end));
    }
    let jobs: std::collections::HashSet<u64> = seen.iter().map(|e| e.1).collect();
    assert_eq!(jobs.len(), seen.len() / 2);
    let why = &seen.last().unwrap().2;
    assert!(
        why.contains("panicked") && why.contains("failpoint"),
        "{why}"
    );
    // reads still answer from what is in memory
    assert_eq!(index.lookup(&0u32.to_le_bytes()).unwrap(), vec![1]);
}
