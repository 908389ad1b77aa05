//! Background work of an index: scheduling lane jobs on the compaction pool, running them
//! (a failure poisons the index), waiting for room or for requested work.
//!
//! Rules: a lane has at most one job queued or running (`Lane::scheduled`); only the holder
//! of `Lane::compaction` changes a lane's `version` (through `install`) or clears its
//! `frozen` overlay, and an overlay is frozen only by `Index::freeze`, while none is.

use super::events::{JobEvent, JobFailure, JobStart};
use super::Index;
use crate::compaction::strategy::Choice;
use crate::error::{Error, Result};
use crate::lane::{request, Lane, LaneState};
use crate::overlay::Overlay;
use parking_lot::{Condvar, Mutex};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

/// Writes between two log-pressure checkpoint requests (about one log file's worth).
const CHECKPOINT_REQUEST_GAP: u64 = 1 << 21;

/// Background progress: a generation bumped whenever a job installs or ends (writers waiting
/// for room and callers waiting for requested work sleep on it), and the jobs in flight. It
/// outlives the index's last strong reference inside a job, so a job's end is signalled
/// only after the job has let go of the index (and with it, of its directory lock).
#[derive(Default)]
pub(super) struct Activity {
    generation: Mutex<u64>,
    changed: Condvar,
    /// Jobs queued or running.
    pub(super) pending: AtomicU64,
}

impl Activity {
    pub(super) fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Sleeps until the generation moves past `seen` (or a short while passes, so that
    /// waiters re-check for a poisoned or closed index).
    pub(super) fn wait(&self, seen: u64) {
        let mut generation = self.generation.lock();
        if *generation == seen {
            self.changed
                .wait_for(&mut generation, std::time::Duration::from_millis(50));
        }
    }

    pub(super) fn notify(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
    }
}

impl Index {
    /// Freezes the active overlay if it is due and none is frozen: it reached
    /// `overlay_limit`, or `requested` (a flush was asked for) and it holds anything. Returns
    /// whether it froze (the lane then needs a job). The only place an overlay is frozen; the
    /// caller holds the lane's write lock.
    pub(super) fn freeze(&self, st: &mut LaneState, requested: bool) -> bool {
        let full = st.active.len() >= self.config.overlay_limit;
        if st.frozen.is_some() || !(full || requested && !st.active.is_empty()) {
            return false;
        }
        // a lane that filled its overlay is written to: size the next one up front
        let next = if full {
            Overlay::with_capacity(self.config.overlay_limit)
        } else {
            Overlay::default()
        };
        st.frozen = Some(Arc::new(std::mem::replace(&mut st.active, next)));
        // every write of this lane so far holds a smaller seq (writes take the lock)
        st.frozen_seq = self.seq.load(Ordering::SeqCst);
        true
    }

    /// Queues a job for `lane` unless one is queued or running.
    pub(super) fn schedule(&self, lane: &Lane) {
        if lane.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let number = lane.number;
        self.submit(move |index| index.run_job(number));
    }

    /// Queues a write-out of the log buffer (for non-blocking writes, which do no I/O),
    /// unless one is queued.
    pub(super) fn schedule_log_writeout(&self) {
        if self.log_writeout.swap(true, Ordering::AcqRel) {
            return;
        }
        self.submit(|index| {
            index.log_writeout.store(false, Ordering::Release);
            if let Some(wal) = &index.wal {
                if let Err(e) = wal.sync(false) {
                    index.poison(format!("background log write failed: {e}"));
                }
            }
        });
    }

    /// Runs `job` on the pool with this index, counted in `activity` until the job has let
    /// go of the index; a job of an index dropped meanwhile does nothing.
    fn submit(&self, job: impl FnOnce(&Index) + Send + 'static) {
        self.activity.pending.fetch_add(1, Ordering::SeqCst);
        let me = self.me.clone();
        let activity = self.activity.clone();
        let queued = self.workers.submit(Box::new(move || {
            if let Some(index) = me.upgrade() {
                job(&index);
            }
            // the index is let go of by now: only then is the job over for waiters
            activity.pending.fetch_sub(1, Ordering::SeqCst);
            activity.notify();
        }));
        if !queued {
            self.activity.pending.fetch_sub(1, Ordering::SeqCst);
            self.poison("the compaction pool has no worker left".into());
        }
    }

    /// Queues a job if the lane has work: a frozen or full overlay, or a request.
    pub(super) fn schedule_if_wanted(&self, lane: &Lane) {
        let wanted = lane.has_requests() || {
            let st = lane.state.read();
            st.frozen.is_some()
                || st.active.len() >= self.config.overlay_limit
                || self.policy.choose(&st.version.shape(None)) != Choice::Idle
        };
        if wanted && self.check_writable().is_ok() {
            self.schedule(lane);
        }
    }

    /// Asks every lane's next job for `bits` (see `lane::request`) and waits until each
    /// has been carried out.
    pub(super) fn request_all(&self, bits: u8) -> Result<()> {
        let tickets: Vec<u64> = self
            .lanes
            .live()
            .iter()
            .map(|lane| {
                let ticket = lane.request(bits);
                self.schedule(lane);
                ticket
            })
            .collect();
        for (lane, ticket) in self.lanes.live().iter().zip(tickets) {
            loop {
                let seen = self.activity.generation();
                if lane.served.load(Ordering::SeqCst) >= ticket {
                    break;
                }
                self.check_writable()?;
                self.activity.wait(seen);
            }
        }
        Ok(())
    }

    /// Waits until no background job of this index is queued or running (a quiescent point
    /// for measurements and tests); fails if the index is poisoned meanwhile. A closed index
    /// answers at once: `close` waits for a running job, and a queued one finds the index
    /// closed and does nothing, so there is nothing to wait for (although the queue may not
    /// have drained yet).
    pub fn wait_idle(&self) -> Result<()> {
        loop {
            let seen = self.activity.generation();
            if self.activity.pending.load(Ordering::SeqCst) == 0 || self.is_closed() {
                return Ok(());
            }
            self.check_writable()?;
            self.activity.wait(seen);
        }
    }

    /// Log pressure: asks every lane to flush (without waiting), at most once per
    /// [`CHECKPOINT_REQUEST_GAP`] writes.
    pub(super) fn request_checkpoint(&self) {
        let now = self.seq.load(Ordering::SeqCst);
        let last = self.checkpoint_requested_at.load(Ordering::SeqCst);
        if now.saturating_sub(last) < CHECKPOINT_REQUEST_GAP && last != 0 {
            return;
        }
        if self
            .checkpoint_requested_at
            .compare_exchange(last, now, Ordering::SeqCst, Ordering::SeqCst)
            .is_err()
        {
            return;
        }
        for lane in self.lanes.live() {
            lane.request(request::FLUSH);
            self.schedule(lane);
        }
    }

    /// Stops all writes with `cause` (the first cause sticks) and wakes every waiter.
    pub(super) fn poison(&self, cause: String) {
        self.poisoned.lock().get_or_insert(cause);
        self.activity.notify();
    }

    /// One background job for lane `number`: compacts it, records the outcome, reports it
    /// (`events`: `Started` before its first build, then `Done` or `Failed`), and queues the
    /// next job if work arrived meanwhile. A failure or panic poisons the index (nothing can
    /// be flushed any more, so writers must hear of it).
    fn run_job(&self, number: usize) {
        let Some(lane) = self.lanes.get(number) else {
            return; // jobs are queued only for allocated lanes
        };
        let started = Instant::now();
        let mut start = JobStart::new(number);
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            self.compact_lane(lane, &mut start)
        }));
        let micros = started.elapsed().as_micros() as u64;
        let (report, failure) = match outcome {
            Ok(Ok(report)) => (Some(report), None),
            // stopped from outside: worth an event only once the job had started
            Ok(Err(e @ (Error::Closed | Error::Poisoned { .. }))) => {
                (None, start.announced.then_some(JobFailure::Error(e)))
            }
            Ok(Err(e)) => {
                self.poison(format!("compaction of lane {number} failed: {e}"));
                (None, Some(JobFailure::Error(e)))
            }
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".into());
                self.poison(format!(
                    "compaction worker panicked on lane {number}: {what}"
                ));
                (None, Some(JobFailure::Panicked(what)))
            }
        };
        let c = &self.counters;
        c.busy_us.fetch_add(micros, Ordering::Relaxed);
        c.last_job_us.store(micros, Ordering::Relaxed);
        c.jobs_done.fetch_add(1, Ordering::Relaxed);
        // told while the lane is still scheduled: its next job cannot start (and announce
        // itself) before this one's end is told
        let was_reported = report.is_some();
        if let Some(failure) = failure {
            // every Failed follows its job's Started
            start.announce(self);
            self.tell(&JobEvent::Failed {
                job: start.job,
                lane: start.lane,
                duration_us: micros,
                failure: &failure,
            });
        } else if let Some(mut report) = report.filter(|_| start.announced) {
            // a job that started built something: flushes + merges > 0
            report.job = start.job;
            report.duration_us = micros;
            self.tell(&JobEvent::Done(&report));
        }
        lane.scheduled.store(false, Ordering::SeqCst);
        if was_reported {
            // a write may have frozen an overlay, or a request arrived, while we ran
            self.schedule_if_wanted(lane);
        }
        self.activity.notify();
    }

    /// Full compaction: every lane's overlay flushed and its segments merged into one, with
    /// tombstones and dropped handles purged. Runs on the compaction pool; waits for it.
    pub fn compact(&self) -> Result<()> {
        self.check_writable()?;
        self.request_all(crate::lane::request::FULL)
    }
}
