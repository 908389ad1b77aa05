//! What an index's listener hears of its background jobs: a job's start, its report, or
//! its failure, each naming the job.
//!
//! ```text
//!   run_job ─▶ compact_lane ─▶ first build? ─▶ Started ─▶ builds ─┬─▶ Done(report)
//!                  │                                              └─▶ Failed(error | panic)
//!                  └─▶ nothing to build: no event
//! ```
//!
//! Order, per job (all on the pool thread that runs it): `Started` comes right before the
//! job's first build, then exactly one `Done` or `Failed` with the same `job`. A job that
//! finds nothing to build reports nothing; a job that fails before its first build (a
//! panic in the policy) reports `Started` then `Failed`, so the pairing always holds. A job
//! stopped by `close` or by another job's failure after it started reports `Failed` with
//! `Error::Closed` / `Error::Poisoned`; before it started, nothing.

use super::stats::JobReport;
use super::Index;
use crate::error::Error;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Called with each event of the index's background jobs (on a worker thread). A listener
/// that only wants finished jobs' reports is [`on_done`]'s.
pub type Listener = Arc<dyn Fn(&JobEvent<'_>) + Send + Sync>;

/// One event of a background job; see the module doc for their order.
#[derive(Debug)]
#[non_exhaustive]
pub enum JobEvent<'a> {
    /// The job is about to write its first segment.
    Started {
        /// The job: unique in this process, shared by the job's events.
        job: u64,
        /// The lane compacted.
        lane: u32,
    },
    /// The job finished; what it did.
    Done(&'a JobReport),
    /// The job failed (the index is poisoned, unless `failure` is `Closed` or `Poisoned`:
    /// then something else stopped it).
    Failed {
        /// The job, as in its `Started`.
        job: u64,
        /// The lane compacted.
        lane: u32,
        /// Wall time of the job until it failed, microseconds.
        duration_us: u64,
        /// What went wrong.
        failure: &'a JobFailure,
    },
}

/// Why a job failed.
#[derive(Debug)]
pub enum JobFailure {
    /// A build or install returned this error.
    Error(Error),
    /// The job panicked with this message.
    Panicked(String),
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            JobFailure::Error(e) => e.fmt(f),
            JobFailure::Panicked(what) => write!(f, "compaction worker panicked: {what}"),
        }
    }
}

/// A listener calling `f` with the report of each finished job, ignoring the other events.
pub fn on_done(f: impl Fn(&JobReport) + Send + Sync + 'static) -> Listener {
    Arc::new(move |event: &JobEvent<'_>| {
        if let JobEvent::Done(report) = event {
            f(report)
        }
    })
}

/// Job numbers, unique in this process (listeners of several indexes tell jobs apart).
static NEXT_JOB: AtomicU64 = AtomicU64::new(1);

/// A running job's identity and whether its `Started` went out yet (owned by `run_job`,
/// announced by `compact_lane` before its first build).
pub(super) struct JobStart {
    pub(super) job: u64,
    pub(super) lane: u32,
    pub(super) announced: bool,
}

impl JobStart {
    pub(super) fn new(lane: usize) -> Self {
        JobStart {
            job: NEXT_JOB.fetch_add(1, Ordering::Relaxed),
            lane: lane as u32,
            announced: false,
        }
    }

    /// Sends `Started` to `index`'s listener, once per job.
    pub(super) fn announce(&mut self, index: &Index) {
        if !std::mem::replace(&mut self.announced, true) {
            index.tell(&JobEvent::Started {
                job: self.job,
                lane: self.lane,
            });
        }
    }
}

impl Index {
    /// Sets (or clears) the function called with each event of this index's jobs.
    pub fn set_listener(&self, listener: Option<Listener>) {
        *self.listener.write() = listener;
    }

    /// Calls the listener, if any, with `event`; a listener that panics does not take the
    /// worker (or the index) down.
    pub(super) fn tell(&self, event: &JobEvent<'_>) {
        let listener = self.listener.read().clone();
        if let Some(listener) = listener {
            let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(event)));
        }
    }
}
