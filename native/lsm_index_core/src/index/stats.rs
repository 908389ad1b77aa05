//! What an index reports about itself (`stats`): sizes, work counters, and the record of
//! each background compaction job. (A router's per-change measurements are its `metrics`.)

use super::Index;
use crate::error::Result;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes one add/remove stands for in `bytes_ingested`: fingerprint + handle.
pub const LOGICAL_OP_BYTES: u64 = 12;

/// A snapshot of an index's size and work counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Stats {
    /// Keys with a non-empty set.
    pub keys: u64,
    /// Lanes.
    pub lanes: u32,
    /// Segments over all lanes.
    pub segments: u64,
    /// Segments per level.
    pub segments_per_level: BTreeMap<u32, u64>,
    /// Most segments any lane holds (a lookup probes at most this many, plus overlays).
    pub max_lane_segments: u64,
    /// Bytes of all segment buffers.
    pub segment_bytes: u64,
    /// Heap bytes of decoded MPHs (beside the segment buffers).
    pub mph_heap_bytes: u64,
    /// Keys in overlays (active and frozen, tombstones included).
    pub overlay_keys: u64,
    /// Approximate heap bytes of overlays.
    pub overlay_bytes: u64,
    /// Frozen overlays waiting for (or in) their flush.
    pub frozen_overlays: u64,
    /// Dropped handles not yet purged by compaction.
    pub pending_drops: u64,
    /// Add/remove operations applied.
    pub ops: u64,
    /// Logical bytes ingested: [`LOGICAL_OP_BYTES`] per add/remove.
    pub bytes_ingested: u64,
    /// Overlay keys flushed into segments.
    pub keys_flushed: u64,
    /// Keys written into segments by compaction (flushes and merges).
    pub keys_written: u64,
    /// Segment bytes written by compaction (flushes and merges).
    pub bytes_written: u64,
    /// Flush jobs done (a flush may merge segments in the same build).
    pub flushes: u64,
    /// Builds that merged segments (with or without a flush).
    pub merges: u64,
    /// `keys_written / keys_flushed`: how many times compaction writes each flushed key.
    pub write_amplification: f64,
    /// Background jobs queued or running for this index.
    pub pending_jobs: u64,
    /// Background jobs finished.
    pub jobs_done: u64,
    /// Duration of the last finished job, microseconds.
    pub last_job_us: u64,
    /// Time spent in background jobs, microseconds (over all workers).
    pub compaction_busy_us: u64,
    /// Writes that found a lane's overlay at its limit (they waited, or were refused).
    pub stalls: u64,
    /// Lookups (single or batched) of a key with a non-empty set.
    pub lookup_hits: u64,
    /// Lookups of a key with no handle.
    pub lookup_misses: u64,
    /// Segment probes of single lookups that the prefilter answered (batches skip it).
    pub prefilter_rejects: u64,
    /// Worker threads of the pool this index uses.
    pub compaction_threads: u64,
    /// Distinct handles the keys' sets hold (`Config::count_handles`; else 0).
    pub counted_handles: u64,
    /// Heap bytes of the per-handle key counts (`Config::count_handles`; else 0).
    pub handle_count_bytes: u64,
    /// fsyncs of the write-ahead log's frames (a persistent index; else 0). Group commit:
    /// flushes that overlap share one; `SyncMode::None` does none.
    pub log_fsyncs: u64,
}

/// A lane's lookup counters (relaxed atomics on the lane, so readers of different lanes do
/// not share a cache line).
#[derive(Default)]
pub struct LookupCounters {
    hits: AtomicU64,
    misses: AtomicU64,
    rejects: AtomicU64,
}

impl LookupCounters {
    /// Counts one lookup that found something (`hit`) or not, after `rejects` prefilter
    /// rejections.
    #[inline]
    pub fn record(&self, hit: bool, rejects: u32) {
        if hit {
            self.hits.fetch_add(1, Ordering::Relaxed);
        } else {
            self.misses.fetch_add(1, Ordering::Relaxed);
        }
        if rejects > 0 {
            self.rejects
                .fetch_add(u64::from(rejects), Ordering::Relaxed);
        }
    }

    /// Counts a batch's totals at once.
    pub fn record_many(&self, hits: u64, misses: u64, rejects: u64) {
        self.hits.fetch_add(hits, Ordering::Relaxed);
        self.misses.fetch_add(misses, Ordering::Relaxed);
        self.rejects.fetch_add(rejects, Ordering::Relaxed);
    }

    /// (hits, misses, prefilter rejects).
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
            self.rejects.load(Ordering::Relaxed),
        )
    }
}

/// What one background job did: `JobEvent::Done`'s report to the index's listener
/// (`subscribe` in Elixir).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    /// The job (unique in this process; its `JobEvent::Started` names it too).
    pub job: u64,
    /// The lane compacted.
    pub lane: u32,
    /// Overlay flushes in the job.
    pub flushes: u32,
    /// Builds that merged segments.
    pub merges: u32,
    /// Overlay keys flushed.
    pub keys_flushed: u64,
    /// Keys written (flushes and merges).
    pub keys_written: u64,
    /// Segment bytes written.
    pub bytes_written: u64,
    /// Segments the lane holds afterwards.
    pub segments: u32,
    /// Wall time of the job, microseconds.
    pub duration_us: u64,
}

impl Index {
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
            compaction_threads: self.workers.threads() as u64,
            log_fsyncs: self.wal.as_ref().map_or(0, |w| w.fsyncs()),
            ..Stats::default()
        };
        if let Some(counts) = &self.counts {
            let counts = counts.lock();
            (s.counted_handles, s.handle_count_bytes) = (counts.len(), counts.heap_bytes());
        }
        if s.keys_flushed > 0 {
            s.write_amplification = s.keys_written as f64 / s.keys_flushed as f64;
        }
        for lane in self.lanes.live() {
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
