//! One lane job: flush the frozen overlay and merge segments as the policy says (or fully),
//! each build installed before the next one starts.

use super::events::JobStart;
use super::stats::JobReport;
use super::Index;
use crate::compaction::executor::{self, Built};
use crate::compaction::strategy::{output_level, Choice, Full, Strategy};
use crate::dead::DeadHandles;
use crate::error::{Error, Result};
use crate::lane::{request, Lane};
use crate::segment::{Segment, SegmentBytes, WriteOptions};
use crate::version::SegmentRef;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Index {
    /// Flushes `lane`'s frozen overlay (freezing a due or requested active one first), merged
    /// with segments as the policy says, then merges per policy; all into one segment when a
    /// full compaction was requested. Readers keep reading throughout: builds happen outside
    /// the lane lock, and each result is persisted before it is installed. `job_start` is
    /// announced before the first build (none: the job reports nothing).
    pub(super) fn compact_lane(&self, lane: &Lane, job_start: &mut JobStart) -> Result<JobReport> {
        // one job per lane at a time; its guard is what lets `install` change the version
        let job = lane.compaction.lock();
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
                if st.frozen.is_none() {
                    self.freeze(&mut st, std::mem::take(&mut requested_flush));
                }
                if st.frozen.is_none() {
                    // writes have stopped here: give back the room sized for them
                    st.active.release_if_empty();
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
            job_start.announce(self);
            let built = executor::flush(&frozen, inputs, &dead, bottom, opts)?;
            crate::failpoint::hit("compaction:built");
            let seg = self.open_built(lane.number, built)?;
            let next = Arc::new(version.with_merged(0, merge, seg.clone()));
            // on disk first; the frozen overlay stays readable until then
            self.install(&job, lane, next, Some(covered))?;
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
            job_start.announce(self);
            let built = executor::merge(inputs, &dead, bottom, self.write_opts(level, clean_seq))?;
            let seg = self.open_built(lane.number, built)?;
            let next = Arc::new(version.with_merged(start, count, seg.clone()));
            self.install(&job, lane, next, None)?;
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
            layout: self.config.layout,
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
            None => SegmentBytes::Heap(bytes),
        };
        let segment = Segment::open(storage, &format!("segment {id}"), false)?;
        // its checksums were computed over these very bytes a moment ago: no merge re-reads it
        segment.mark_verified();
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
            .live()
            .iter()
            .filter_map(|l| l.state.read().watermark())
            .min()
            .unwrap_or(u64::MAX);
        let mut dead = self.dead.write();
        dead.purge_below(watermark);
        self.dead_pending.store(dead.len(), Ordering::Release);
    }
}
