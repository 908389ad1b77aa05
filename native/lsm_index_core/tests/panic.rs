//! A compaction worker that panics poisons its index: later calls fail with an error naming
//! the panic, instead of writers waiting forever for a flush that will not come. (Its own
//! test binary: the failpoint is armed process-wide.)

mod common;

use lsm_index_core::{Config, Error, Index};

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
    // reads still answer from what is in memory
    assert_eq!(index.lookup(&0u32.to_le_bytes()).unwrap(), vec![1]);
}
