//! Opening a persistent index: the manifest's segments mapped and checked, then the
//! write-ahead log replayed over them (recovery), before the index is shared.

use super::write::Edit;
use super::{Config, Index};
use crate::error::{Error, FileKind, Result};
use crate::handle_counts::HandleCounts;
use crate::hash::{jump_hash, HashSecret, KeyHasher};
use crate::manifest::{Manifest, SegmentEntry};
use crate::segment::{Segment, SegmentBytes};
use crate::store::Store;
use crate::version::{SegmentRef, Version};
use crate::wal::{self, Record, Wal};
use parking_lot::Mutex;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

impl Index {
    /// Opens the persistent index in `dir`, creating it if empty. The lane count and hash
    /// secret come from the manifest of an existing index (`config`'s are used for a new one);
    /// segment files are mapped, not read, and checked against the manifest (every section
    /// checksum too when `config.verify_on_open`). Fails with `Error::Locked` while another
    /// `Index` has `dir` open.
    ///
    /// Durability: writes are logged (write-ahead log); a write acknowledged by a completed
    /// `flush` survives a crash, and after one the index holds a prefix of the writes made
    /// (see DESIGN.md).
    pub fn open(dir: &Path, mut config: Config) -> Result<Arc<Index>> {
        config.validate()?;
        let secret = config.secret.unwrap_or_else(HashSecret::random);
        let seed_id = KeyHasher::new(secret).seed_id();
        let (store, m) = Store::open(dir, || Manifest::empty(config.lanes, &secret, seed_id))?;
        config.lanes = m.lanes;
        config.secret = Some(m.hash_secret()?);
        let mut index = Index::build(config)?;
        if index.seed_id != m.seed_id {
            return Err(Error::Corrupt {
                file: FileKind::Manifest,
                what: store.dir().display().to_string(),
                detail: "the manifest's seed id does not match its secret".into(),
            });
        }
        let mut opened = open_segments(&store, &m, index.config.verify_on_open)?.into_iter();
        for (lane, state) in index.lanes.writable_mut().iter_mut().zip(&m.lane_state) {
            let mut segments = Vec::with_capacity(state.segments.len());
            for (entry, segment) in state.segments.iter().zip(opened.by_ref()) {
                if segment.info().seed_id != m.seed_id {
                    return Err(Error::SeedMismatch {
                        segment: segment.info().seed_id,
                        index: m.seed_id,
                    });
                }
                segments.push(Arc::new(SegmentRef {
                    id: entry.id,
                    segment,
                }));
            }
            let st = lane.state.get_mut();
            st.version = Arc::new(Version { segments });
            // unknown until counted: the first len() recounts this lane
            st.live_gen = u64::MAX;
        }
        {
            let dead = index.dead.get_mut();
            for &(h, seq) in &m.dropped {
                dead.insert(h, seq);
            }
            index.dead_pending.store(dead.len(), Ordering::Release);
        }
        // a log may be gone only if the manifest covers it: the oldest left names its
        // predecessor, whose frames all lie below the oldest's first seq
        let covered = m
            .lane_state
            .iter()
            .map(|l| l.covered_seq)
            .min()
            .unwrap_or(0);
        if let Some((first, prev)) = wal::oldest_link(store.dir())? {
            if prev != 0 && first > covered {
                return Err(Error::Corrupt {
                    file: FileKind::Wal,
                    what: store.dir().display().to_string(),
                    detail: format!(
                        "the log before seq {first} is missing but the manifest covers only \
                         seq < {covered}"
                    ),
                });
            }
        }
        let next_seq = index.replay(store.dir(), &m)?.max(m.next_seq);
        if index.counts.is_some() {
            index.counts = Some(Mutex::new(recount(&index)?));
        }
        index.seq = AtomicU64::new(next_seq);
        index.next_segment_id = AtomicU64::new(m.next_segment_id);
        // the files read by recovery stay until covered; a file already named for `next_seq`
        // (left empty by an open without writes) is the one appended to next, not an older one
        let mut older = wal::files(store.dir())?;
        older.retain(|(first, _)| *first != next_seq);
        index.wal = Some(Box::new(Wal::create(
            store.dir(),
            next_seq,
            older,
            index.config.sync,
        )?));
        index.store = Some(Box::new(store));
        let index = index.into_shared();
        // lanes left over their limits by the replay (or a lowered cap) compact now
        for lane in index.lanes.live() {
            index.schedule_if_wanted(lane);
        }
        Ok(index)
    }

    /// Applies the logged writes the manifest's segments do not hold, with their original
    /// sequence numbers; returns the next sequence number after them.
    fn replay(&self, dir: &Path, m: &Manifest) -> Result<u64> {
        let mut next = 0;
        let mut scratch = Vec::new();
        wal::replay(dir, |seq, record| {
            next = next.max(seq + 1);
            match record {
                Record::Drop { handle } => {
                    let mut dead = self.dead.write();
                    dead.insert(handle, seq);
                    self.dead_pending.store(dead.len(), Ordering::Release);
                }
                Record::Add { fp, handle } | Record::Remove { fp, handle } => {
                    let lane = jump_hash(fp, self.config.lanes) as usize;
                    if seq < m.lane_state[lane].covered_seq {
                        return Ok(()); // already in the lane's segments
                    }
                    let edit = match record {
                        Record::Add { .. } => Edit::Add,
                        _ => Edit::Remove,
                    };
                    let mut st = self.lanes.writable()[lane].state.write();
                    let dead = self.dead.read();
                    // no WAL yet while replaying: nothing is logged again
                    self.apply_at(
                        &mut st,
                        &dead,
                        fp,
                        handle,
                        edit,
                        &mut scratch,
                        None,
                        seq,
                        false,
                    )?;
                }
            }
            Ok(())
        })?;
        Ok(next)
    }
}

/// The handle counts of the recovered `index` (not shared yet): every live key's set
/// walked once, as `len()` recounts. The log replay did not count: it applied its writes
/// over segments whose keys were never counted in this process.
fn recount(index: &Index) -> Result<HandleCounts> {
    let mut counts = HandleCounts::new();
    let dead = index.dead.read();
    for lane in index.lanes.live() {
        lane.state.read().for_each_live(&dead, |_, set| {
            for &h in set {
                counts.increment(h);
            }
        })?;
    }
    Ok(counts)
}

/// Threads that open segment files at once.
const OPEN_THREADS: usize = 16;

/// Maps and checks every segment the manifest lists, in manifest order, several files at a
/// time: from a cold page cache each open waits on a few random reads (header, prefilter
/// descriptor, pool), which overlap across threads; verification's checksums use both cores.
/// The threads end before it returns.
fn open_segments(store: &Store, m: &Manifest, verify: bool) -> Result<Vec<Segment<SegmentBytes>>> {
    let entries: Vec<&SegmentEntry> = m.lane_state.iter().flat_map(|s| &s.segments).collect();
    let next = AtomicUsize::new(0);
    let work = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(entry) = entries.get(i) else {
                return done;
            };
            done.push((i, store.open_segment(entry, verify)));
        }
    };
    let mut results: Vec<(usize, Result<Segment<SegmentBytes>>)> = std::thread::scope(|scope| {
        let threads: Vec<_> = (1..entries.len().min(OPEN_THREADS))
            .map_while(|_| {
                std::thread::Builder::new()
                    .name("lsm-index-open".into())
                    .spawn_scoped(scope, work)
                    .ok()
            })
            .collect();
        let mut results = work();
        for t in threads {
            // a panicking open leaves its entries unopened: reported below
            results.extend(t.join().unwrap_or_default());
        }
        results
    });
    results.sort_unstable_by_key(|&(i, _)| i);
    if results.len() != entries.len() {
        return Err(Error::Poisoned {
            cause: "a thread opening segment files panicked".into(),
        });
    }
    results.into_iter().map(|(_, r)| r).collect()
}
