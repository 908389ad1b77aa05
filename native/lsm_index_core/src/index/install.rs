//! Installing a lane's new version: the manifest on disk first, then readers see it, and the
//! files it replaced are deleted only after (`Store::install`: once no manifest names them).

use super::Index;
use crate::error::Result;
use crate::lane::Lane;
use crate::manifest::{self, SegmentEntry};
use crate::version::Version;
use parking_lot::MutexGuard;
use std::sync::atomic::Ordering;
use std::sync::Arc;

impl Index {
    /// The one transition that changes a lane's version: persists a manifest holding `next`
    /// (for a persistent index), and only then lets readers see it. `flushed`: the seq the
    /// lane's frozen overlay was frozen at, when `next` holds its flush (the overlay is then
    /// let go of, in the same step). Only the holder of the lane's compaction lock (`job`)
    /// may install.
    pub(super) fn install(
        &self,
        job: &MutexGuard<'_, ()>,
        lane: &Lane,
        next: Arc<Version>,
        flushed: Option<u64>,
    ) -> Result<()> {
        debug_assert!(std::ptr::eq(MutexGuard::mutex(job), &lane.compaction));
        self.persist(Some((lane.number, &next, flushed)))?;
        let replaced = {
            let mut st = lane.state.write();
            let old = std::mem::replace(&mut st.version, next);
            let frozen = flushed.and_then(|_| st.frozen.take());
            (old, frozen)
        };
        // Freed once the lock is released: the last reference to a replaced version's
        // segments or to a flushed overlay unmaps memory, which readers must not wait behind.
        drop(replaced);
        Ok(())
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
            .live()
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
}
