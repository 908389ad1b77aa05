//! What an index reports about itself (`stats`).

use super::Index;
use crate::error::Result;
use crate::stats::{Stats, LOGICAL_OP_BYTES};
use std::sync::atomic::Ordering;

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
