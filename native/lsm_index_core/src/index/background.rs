//! Background compaction of an index: scheduling lane jobs on the pool, the job itself
//! (flush the frozen overlay, merge per policy, install), waiting for room or for requested
//! work, and the manifest installs that make each step durable.
//!
//! Rules: a lane has at most one job queued or running (`Lane::scheduled`); only the holder
//! of `Lane::compaction` changes a lane's `version` or clears its `frozen` overlay, and a
//! writer sets `frozen` only while it is empty; every install is persisted (manifest) before
//! readers see it, and the files it replaced are deleted only after.

use super::{Index, Listener, CHECKPOINT_REQUEST_GAP};
use crate::compaction::executor::{self, Built};
use crate::compaction::strategy::{output_level, Choice, Full, Strategy};
use crate::dead::DeadHandles;
use crate::error::{Error, Result};
use crate::lane::{request, Lane, LaneState};
use crate::manifest::{self, SegmentEntry};
use crate::overlay::Overlay;
use crate::segment::{Segment, Storage, WriteOptions};
use crate::stats::{JobReport, Stats, LOGICAL_OP_BYTES};
use crate::version::{SegmentRef, Version};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

impl Index {
    /// Freezes the active overlay if it reached `overlay_limit` and none is frozen; returns
    /// whether the lane now needs a job. The caller holds the lane's write lock.
    pub(super) fn freeze_if_due(&self, st: &mut LaneState) -> bool {
        if st.frozen.is_none() && st.active.len() >= self.config.overlay_limit {
            // a lane that filled its overlay is written to: size the next one up front
            let next = Overlay::with_capacity(self.config.overlay_limit);
            st.frozen = Some(Arc::new(std::mem::replace(&mut st.active, next)));
            // every write of this lane so far holds a smaller seq (writes take the lock)
            st.frozen_seq = self.seq.load(Ordering::SeqCst);
            return true;
        }
        false
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
        let queued = self.pool.submit(Box::new(move || {
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
            .iter()
            .map(|lane| {
                let ticket = lane.request(bits);
                self.schedule(lane);
                ticket
            })
            .collect();
        for (lane, ticket) in self.lanes.iter().zip(tickets) {
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
    /// for measurements and tests); fails if the index is closed or poisoned meanwhile.
    pub fn wait_idle(&self) -> Result<()> {
        loop {
            let seen = self.activity.generation();
            if self.activity.pending.load(Ordering::SeqCst) == 0 {
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
        for lane in self.lanes.iter() {
            lane.request(request::FLUSH);
            self.schedule(lane);
        }
    }

    /// Stops all writes with `cause` (the first cause sticks) and wakes every waiter.
    pub(super) fn poison(&self, cause: String) {
        self.poisoned.lock().get_or_insert(cause);
        self.activity.notify();
    }

    /// Sets (or clears) the function called with each finished job's report.
    pub fn set_listener(&self, listener: Option<Listener>) {
        *self.listener.write() = listener;
    }

    /// One background job for lane `number`: compacts it, records the outcome, reports it,
    /// and queues the next job if work arrived meanwhile. A failure or panic poisons the
    /// index (nothing can be flushed any more, so writers must hear of it).
    fn run_job(&self, number: usize) {
        let lane = &self.lanes[number];
        let started = Instant::now();
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.compact_lane(lane)));
        let micros = started.elapsed().as_micros() as u64;
        let report = match outcome {
            Ok(Ok(report)) => Some(report),
            Ok(Err(Error::Closed | Error::Poisoned { .. })) => None,
            Ok(Err(e)) => {
                self.poison(format!("compaction of lane {number} failed: {e}"));
                None
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
                None
            }
        };
        let c = &self.counters;
        c.busy_us.fetch_add(micros, Ordering::Relaxed);
        c.last_job_us.store(micros, Ordering::Relaxed);
        c.jobs_done.fetch_add(1, Ordering::Relaxed);
        lane.scheduled.store(false, Ordering::SeqCst);
        if report.is_some() {
            // a write may have frozen an overlay, or a request arrived, while we ran
            self.schedule_if_wanted(lane);
        }
        self.activity.notify();
        if let Some(mut report) = report.filter(|r| r.flushes + r.merges > 0) {
            report.duration_us = micros;
            let listener = self.listener.read().clone();
            if let Some(listener) = listener {
                // a failing listener must not take the worker (or the index) down
                let _ =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener(&report)));
            }
        }
    }

    /// Flushes `lane`'s frozen overlay (freezing a due or requested active one first), merged
    /// with segments as the policy says, then merges per policy; all into one segment when a
    /// full compaction was requested. Readers keep reading throughout: builds happen outside
    /// the lane lock, and each result is persisted before it is installed.
    fn compact_lane(&self, lane: &Lane) -> Result<JobReport> {
        let _one_at_a_time = lane.compaction.lock();
        self.check_writable()?;
        let (requests, ticket) = lane.take_requests();
        let full = requests & request::FULL != 0;
        let mut report = JobReport {
            lane: lane.number as u32,
            ..JobReport::default()
        };
        // a requested flush takes whatever the active overlay holds, once (after flushing an
        // overlay frozen before the request, if any)
        let mut requested_flush = requests != 0;
        loop {
            let frozen = {
                let mut st = lane.state.write();
                let due = st.active.len() >= self.config.overlay_limit || requested_flush;
                if st.frozen.is_none() && due {
                    requested_flush = false;
                    if !st.active.is_empty() {
                        st.frozen = Some(Arc::new(std::mem::take(&mut st.active)));
                        st.frozen_seq = self.seq.load(Ordering::SeqCst);
                    }
                }
                st.frozen.clone().map(|f| (f, st.frozen_seq))
            };
            let Some((frozen, covered)) = frozen else {
                break;
            };
            let version = lane.state.read().version.clone();
            let shape = version.shape(Some(frozen.len() as u64));
            let choice = if full {
                Full.choose(&shape)
            } else {
                self.policy.choose(&shape)
            };
            let merge = match choice {
                Choice::Flush { merge } => merge.min(version.segments.len()),
                _ => 0,
            };
            let inputs = &version.segments[..merge];
            let bottom = merge == version.segments.len();
            let (dead, clean_seq) = self.dead_snapshot();
            let level = output_level(&shape.segments[..merge]);
            let opts = self.write_opts(level, clean_seq);
            let built = executor::flush(&frozen, inputs, &dead, bottom, opts)?;
            crate::failpoint::hit("compaction:built");
            let seg = self.open_built(lane.number, built)?;
            let next = Arc::new(version.with_merged(0, merge, seg.clone()));
            // on disk first; the frozen overlay stays readable until then
            self.persist(Some((lane.number, &next, Some(covered))))?;
            {
                let mut st = lane.state.write();
                st.version = next;
                st.frozen = None;
            }
            self.account(&mut report, seg.as_deref(), frozen.len() as u64, merge > 0);
            self.activity.notify();
        }
        loop {
            let version = lane.state.read().version.clone();
            let shape = version.shape(None);
            let mut choice = if full {
                Full.choose(&shape)
            } else {
                self.policy.choose(&shape)
            };
            if full && choice == Choice::Idle {
                // A lone segment is rewritten when it still carries tombstones or drops.
                if let [only] = version.segments.as_slice() {
                    let info = only.segment.info();
                    let stale = self
                        .dead
                        .read()
                        .max_seq()
                        .is_some_and(|d| d >= info.clean_seq);
                    if info.has_tombstones || stale {
                        choice = Choice::Merge { start: 0, count: 1 };
                    }
                }
            }
            let Choice::Merge { start, count } = choice else {
                break;
            };
            let inputs = &version.segments[start..start + count];
            let bottom = start + count == version.segments.len();
            let (dead, clean_seq) = self.dead_snapshot();
            let level = output_level(&shape.segments[start..start + count]);
            let built = executor::merge(inputs, &dead, bottom, self.write_opts(level, clean_seq))?;
            let seg = self.open_built(lane.number, built)?;
            let next = Arc::new(version.with_merged(start, count, seg.clone()));
            self.persist(Some((lane.number, &next, None)))?;
            lane.state.write().version = next;
            self.account(&mut report, seg.as_deref(), 0, true);
            self.activity.notify();
            if full {
                // One pass of Full leaves a single, clean segment.
                break;
            }
        }
        self.purge_dead();
        report.segments = lane.state.read().version.segments.len() as u32;
        lane.served.fetch_max(ticket, Ordering::SeqCst);
        Ok(report)
    }

    /// Adds one build to the index counters and the job's report.
    fn account(
        &self,
        report: &mut JobReport,
        seg: Option<&SegmentRef>,
        flushed: u64,
        merged: bool,
    ) {
        let (keys, bytes) = seg.map_or((0, 0), |s| {
            let info = s.segment.info();
            (info.key_count, info.bytes)
        });
        let c = &self.counters;
        if flushed > 0 {
            report.flushes += 1;
            report.keys_flushed += flushed;
            c.flushes.fetch_add(1, Ordering::Relaxed);
            c.keys_flushed.fetch_add(flushed, Ordering::Relaxed);
        }
        if merged {
            report.merges += 1;
            c.merges.fetch_add(1, Ordering::Relaxed);
        }
        report.keys_written += keys;
        report.bytes_written += bytes;
        c.keys_written.fetch_add(keys, Ordering::Relaxed);
        c.bytes_written.fetch_add(bytes, Ordering::Relaxed);
    }

    /// A snapshot of the dead set and the seq it is complete up to (exclusive).
    fn dead_snapshot(&self) -> (DeadHandles, u64) {
        let dead = self.dead.read();
        (dead.clone(), self.seq.load(Ordering::SeqCst))
    }

    fn write_opts(&self, level: u32, clean_seq: u64) -> WriteOptions {
        WriteOptions {
            mph: self.config.mph,
            prefilter: self.config.prefilter,
            level,
            clean_seq,
            seed_id: self.seed_id,
        }
    }

    /// Opens a freshly built segment of lane `lane`: in memory, or written to its file and
    /// mapped for a persistent index.
    fn open_built(&self, lane: usize, built: Built) -> Result<Option<Arc<SegmentRef>>> {
        let Some(bytes) = built.bytes else {
            return Ok(None);
        };
        let id = self.next_segment_id.fetch_add(1, Ordering::SeqCst);
        let storage = match &self.store {
            Some(store) => store.write_segment(lane, id, &bytes)?,
            None => Storage::Heap(bytes),
        };
        let segment = Segment::open(storage, &format!("segment {id}"), false)?;
        if segment.info().seed_id != self.seed_id {
            return Err(Error::SeedMismatch {
                segment: segment.info().seed_id,
                index: self.seed_id,
            });
        }
        Ok(Some(Arc::new(SegmentRef { id, segment })))
    }

    /// Forgets drops that no structure in any lane can still hold.
    fn purge_dead(&self) {
        if self.dead_pending.load(Ordering::Acquire) == 0 {
            return;
        }
        let watermark = self
            .lanes
            .iter()
            .filter_map(|l| l.state.read().watermark())
            .min()
            .unwrap_or(u64::MAX);
        let mut dead = self.dead.write();
        dead.purge_below(watermark);
        self.dead_pending.store(dead.len(), Ordering::Release);
    }
    /// Installs a manifest with `lane`'s new version (and what its flush covered, if any)
    /// plus the index-wide counters and pending drops. A failure poisons the index: what is
    /// on disk is no longer known.
    pub(super) fn persist(&self, lane: Option<(usize, &Version, Option<u64>)>) -> Result<()> {
        let Some(store) = &self.store else {
            return Ok(());
        };
        self.check_writable()?;
        let dropped = self.dead.read().entries();
        let entry = lane.map(|(number, version, covered)| {
            let segments: Vec<SegmentEntry> = version
                .segments
                .iter()
                .map(|s| {
                    let info = s.segment.info();
                    SegmentEntry {
                        id: s.id,
                        level: info.level,
                        keys: info.key_count,
                        bytes: info.bytes,
                        file: manifest::segment_file(number, s.id),
                        header_crc32c: info.header_crc32c,
                    }
                })
                .collect();
            (number, segments, covered)
        });
        // A lane with nothing in its overlays has every write so far in its (installed)
        // segments: it covers the current sequence number. Read under its lock, so no write
        // of it can take a smaller number afterwards.
        let idle: Vec<Option<u64>> = self
            .lanes
            .iter()
            .map(|l| {
                let st = l.state.read();
                (st.active.is_empty() && st.frozen.is_none())
                    .then(|| self.seq.load(Ordering::SeqCst))
            })
            .collect();
        // The log reaches the disk before any manifest that covers part of it, so after a
        // crash the state is always a prefix of the log (no lane ahead of another).
        if let Some(wal) = &self.wal {
            self.durable(wal.sync(true))?;
        }
        let mut covered_all = u64::MAX;
        let result = store.install(|m| {
            if let Some((number, segments, covered)) = entry {
                let ls = &mut m.lane_state[number];
                ls.segments = segments;
                if let Some(c) = covered {
                    ls.covered_seq = c;
                }
            }
            for (ls, idle) in m.lane_state.iter_mut().zip(&idle) {
                if let Some(c) = idle {
                    ls.covered_seq = ls.covered_seq.max(*c);
                }
                covered_all = covered_all.min(ls.covered_seq);
            }
            m.next_segment_id = self.next_segment_id.load(Ordering::SeqCst);
            m.next_seq = self.seq.load(Ordering::SeqCst);
            m.dropped = dropped;
        });
        self.durable(result)?;
        if let Some(wal) = &self.wal {
            wal.delete_covered(covered_all);
        }
        Ok(())
    }

    /// Sizes and counters.
    pub fn stats(&self) -> Result<Stats> {
        let c = &self.counters;
        let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        let (mut hits, mut misses, mut rejects) = self.batch_lookups.get();
        let mut s = Stats {
            keys: self.len()?,
            lanes: self.config.lanes,
            pending_drops: self.dead.read().len() as u64,
            ops: load(&c.ops),
            bytes_ingested: load(&c.ops) * LOGICAL_OP_BYTES,
            keys_flushed: load(&c.keys_flushed),
            keys_written: load(&c.keys_written),
            bytes_written: load(&c.bytes_written),
            flushes: load(&c.flushes),
            merges: load(&c.merges),
            pending_jobs: self.activity.pending.load(Ordering::Relaxed),
            jobs_done: load(&c.jobs_done),
            last_job_us: load(&c.last_job_us),
            compaction_busy_us: load(&c.busy_us),
            stalls: load(&c.stalls),
            compaction_threads: self.pool.threads() as u64,
            ..Stats::default()
        };
        if s.keys_flushed > 0 {
            s.write_amplification = s.keys_written as f64 / s.keys_flushed as f64;
        }
        for lane in self.lanes.iter() {
            let (h, m, r) = lane.lookups.get();
            (hits, misses, rejects) = (hits + h, misses + m, rejects + r);
            let st = lane.state.read();
            for o in std::iter::once(&st.active).chain(st.frozen.as_deref()) {
                s.overlay_keys += o.len() as u64;
                s.overlay_bytes += o.approx_bytes() as u64;
            }
            s.frozen_overlays += u64::from(st.frozen.is_some());
            s.max_lane_segments = s.max_lane_segments.max(st.version.segments.len() as u64);
            for seg in &st.version.segments {
                let info = seg.segment.info();
                s.segments += 1;
                *s.segments_per_level.entry(info.level).or_default() += 1;
                s.segment_bytes += info.bytes;
                s.mph_heap_bytes += seg.segment.heap_bytes() as u64;
            }
        }
        (s.lookup_hits, s.lookup_misses, s.prefilter_rejects) = (hits, misses, rejects);
        Ok(s)
    }
}
