//! The index: key bytes -> sorted set of `u32` handles, over lane-partitioned LSM lanes.
//!
//! Write path: fingerprint the key, pick its lane, read-modify-write the key's full set into
//! the lane's overlay, and flush the overlay into a segment once it holds `overlay_limit`
//! keys. Read path: the first structure holding the key (overlay, frozen overlay, then
//! segments newest first) answers, with pending dropped handles filtered out.

use crate::batch::{self, Batch};
use crate::compaction::executor::{self, Built};
use crate::compaction::strategy::{Choice, Full, Strategy, Tiered};
use crate::dead::DeadHandles;
use crate::error::{Error, Result};
use crate::handles::{self, HandleSet};
use crate::hash::{jump_hash, HashSecret, KeyHasher};
use crate::lane::{Lane, LaneState};
use crate::manifest::{self, Manifest, SegmentEntry};
use crate::overlay::Entry;
use crate::segment::mph::MphKind;
use crate::segment::{Segment, WriteOptions};
use crate::store::Store;
use crate::version::{SegmentRef, Storage, Version};
use crate::wal::{self, Record, SyncMode, Wal};
use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes one add/remove stands for in write-amplification figures: fingerprint + handle.
pub const LOGICAL_OP_BYTES: u64 = 12;

/// Keys per `lookup_many` chunk: bounds how long a batch holds its lanes' read locks.
const LOOKUP_CHUNK: usize = 256;

/// Pairs per `add_many`/`remove_many` chunk: bounds how long a lane's write lock is held.
const WRITE_CHUNK: usize = 4096;

/// Log files (64 MiB each) kept before a checkpoint flushes every lane so they can go.
const MAX_WAL_FILES: usize = 4;

/// How an index is laid out and when it compacts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lanes keys are spread over (1..=65536); default 64.
    pub lanes: u32,
    /// MPH kind for new segments; default `ptr_hash` (the measured winner, DESIGN.md).
    pub mph: MphKind,
    /// Whether new segments get a BinaryFuse8 prefilter; default on.
    pub prefilter: bool,
    /// Keys a lane's overlay holds before it is flushed to a segment; default 16384.
    pub overlay_limit: usize,
    /// Most segments per lane (read amplification bound); default 3.
    pub max_segments: usize,
    /// Tiered merge trigger, see [`Tiered::size_ratio`]; default 1.0.
    pub size_ratio: f64,
    /// Key-hash secret; `None` draws a random one.
    pub secret: Option<HashSecret>,
    /// `Index::open` checks every section checksum of every segment file (reads all bytes);
    /// `false` checks headers, the MPH section and the manifest's record only. Default true.
    pub verify_on_open: bool,
    /// When the write-ahead log of a persistent index reaches the disk; default on `flush`.
    pub sync: SyncMode,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            lanes: 64,
            mph: MphKind::PtrHash,
            prefilter: true,
            overlay_limit: 16_384,
            max_segments: 3,
            size_ratio: 1.0,
            secret: None,
            verify_on_open: true,
            sync: SyncMode::Flush,
        }
    }
}

impl Config {
    /// Checks every value against its documented range.
    pub fn validate(&self) -> Result<()> {
        let bad = |option, reason: &str| {
            Err(Error::InvalidConfig {
                option,
                reason: reason.into(),
            })
        };
        if !(1..=65_536).contains(&self.lanes) {
            return bad("lanes", "must be between 1 and 65536");
        }
        if self.overlay_limit == 0 {
            return bad("overlay_limit", "must be at least 1");
        }
        if self.max_segments == 0 {
            return bad("max_segments", "must be at least 1");
        }
        if !(self.size_ratio.is_finite() && self.size_ratio > 0.0) {
            return bad("size_ratio", "must be a positive number");
        }
        Ok(())
    }
}

/// A snapshot of an index's size and work counters.
#[derive(Clone, Debug, PartialEq)]
pub struct Stats {
    /// Keys with a non-empty set.
    pub keys: u64,
    /// Lanes.
    pub lanes: u32,
    /// Segments over all lanes.
    pub segments: u64,
    /// Segments per level.
    pub segments_per_level: BTreeMap<u32, u64>,
    /// Bytes of all segment buffers.
    pub segment_bytes: u64,
    /// Heap bytes of decoded MPHs (beside the segment buffers).
    pub mph_heap_bytes: u64,
    /// Keys in overlays (active and frozen, tombstones included).
    pub overlay_keys: u64,
    /// Approximate heap bytes of overlays.
    pub overlay_bytes: u64,
    /// Dropped handles not yet purged by compaction.
    pub pending_drops: u64,
    /// Add/remove operations applied.
    pub ops: u64,
    /// Logical bytes ingested: [`LOGICAL_OP_BYTES`] per add/remove.
    pub bytes_ingested: u64,
    /// Segment bytes written by overlay flushes.
    pub bytes_flushed: u64,
    /// Segment bytes written by merges.
    pub bytes_merged: u64,
    /// Overlay flushes done.
    pub flushes: u64,
    /// Merges done.
    pub merges: u64,
    /// (flushed + merged) / flushed bytes: what compaction adds on top of the first write.
    pub write_amplification: f64,
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    bytes_flushed: AtomicU64,
    bytes_merged: AtomicU64,
    flushes: AtomicU64,
    merges: AtomicU64,
}

/// The equality index. `Sync`: many readers and writers may share it.
pub struct Index {
    config: Config,
    hasher: KeyHasher,
    seed_id: u64,
    lanes: Box<[Lane]>,
    dead: RwLock<DeadHandles>,
    /// Mirrors `dead.len()` so lookups skip the dead-set lock when nothing is pending.
    dead_pending: AtomicUsize,
    seq: AtomicU64,
    next_segment_id: AtomicU64,
    policy: Tiered,
    counters: Counters,
    /// The directory of a persistent index (`open`); `None` in memory.
    store: Option<Store>,
    /// Its write-ahead log.
    wal: Option<Wal>,
    /// Set by `close`: every later call fails with `Error::Closed`.
    closed: AtomicBool,
    /// Set by a failed install (fsync, rename): later writes fail with `Error::Poisoned`.
    poisoned: Mutex<Option<String>>,
}

/// How much a lane compaction does.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The write path: flush only if the overlay is full, skip if the lane is busy.
    Due,
    /// `flush`: flush any non-empty overlay, then merge per policy.
    Flush,
    /// `compact`: flush, then merge everything into one clean segment.
    Full,
}

#[derive(Clone, Copy)]
enum Op {
    Add,
    Remove,
}

impl Index {
    /// An empty in-memory index.
    pub fn new(config: Config) -> Result<Index> {
        config.validate()?;
        let hasher = KeyHasher::new(config.secret.unwrap_or_else(HashSecret::random));
        let lanes = (0..config.lanes as usize)
            .map(|number| Lane {
                number,
                ..Lane::default()
            })
            .collect();
        let policy = Tiered {
            max_segments: config.max_segments,
            size_ratio: config.size_ratio,
        };
        Ok(Index {
            seed_id: hasher.seed_id(),
            hasher,
            lanes,
            dead: RwLock::default(),
            dead_pending: AtomicUsize::new(0),
            seq: AtomicU64::new(1),
            next_segment_id: AtomicU64::new(1),
            policy,
            counters: Counters::default(),
            store: None,
            wal: None,
            closed: AtomicBool::new(false),
            poisoned: Mutex::new(None),
            config,
        })
    }

    /// Opens the persistent index in `dir`, creating it if empty. The lane count and hash
    /// secret come from the manifest of an existing index (`config`'s are used for a new one);
    /// segment files are mapped, not read, and checked against the manifest (every section
    /// checksum too when `config.verify_on_open`). Fails with `Error::Locked` while another
    /// `Index` has `dir` open.
    ///
    /// Durability: writes are logged (write-ahead log); a write acknowledged by a completed
    /// `flush` survives a crash, and after one the index holds a prefix of the writes made
    /// (see DESIGN.md).
    pub fn open(dir: &Path, mut config: Config) -> Result<Index> {
        config.validate()?;
        let secret = config.secret.unwrap_or_else(HashSecret::random);
        let seed_id = KeyHasher::new(secret).seed_id();
        let (store, m) = Store::open(dir, || Manifest::empty(config.lanes, &secret, seed_id))?;
        config.lanes = m.lanes;
        config.secret = Some(m.hash_secret()?);
        let mut index = Index::new(config)?;
        if index.seed_id != m.seed_id {
            return Err(Error::Corrupt {
                what: store.dir().display().to_string(),
                detail: "the manifest's seed id does not match its secret".into(),
            });
        }
        for (lane, state) in index.lanes.iter_mut().zip(&m.lane_state) {
            let mut segments = Vec::with_capacity(state.segments.len());
            for entry in &state.segments {
                let segment = store.open_segment(entry, index.config.verify_on_open)?;
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
                    what: store.dir().display().to_string(),
                    detail: format!(
                        "the log before seq {first} is missing but the manifest covers only \
                         seq < {covered}"
                    ),
                });
            }
        }
        let next_seq = index.replay(store.dir(), &m)?.max(m.next_seq);
        index.seq = AtomicU64::new(next_seq);
        index.next_segment_id = AtomicU64::new(m.next_segment_id);
        // the files read by recovery stay until covered; a file already named for `next_seq`
        // (left empty by an open without writes) is the one appended to next, not an older one
        let mut older = wal::files(store.dir())?;
        older.retain(|(first, _)| *first != next_seq);
        index.wal = Some(Wal::create(
            store.dir(),
            next_seq,
            older,
            index.config.sync,
        )?);
        index.store = Some(store);
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
                    let op = match record {
                        Record::Add { .. } => Op::Add,
                        _ => Op::Remove,
                    };
                    let mut st = self.lanes[lane].state.write();
                    let dead = self.dead.read();
                    // no WAL yet while replaying: nothing is logged again
                    self.apply_at(&mut st, &dead, fp, handle, op, &mut scratch, Some(seq))?;
                }
            }
            Ok(())
        })?;
        Ok(next)
    }

    /// Makes every write so far durable: one write + fsync of the write-ahead log (group
    /// commit). A no-op for an in-memory index.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        match &self.wal {
            Some(wal) => self.durable(wal.sync(true)),
            None => Ok(()),
        }
    }

    /// Flushes every non-empty overlay into a segment file and installs a manifest, so the
    /// write-ahead log so far is no longer needed (and is deleted).
    pub fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        for lane in self.lanes.iter() {
            self.compact_lane(lane, Mode::Flush)?;
        }
        // drops and sequence numbers are durable even when no overlay had data
        self.persist(None)
    }

    /// Copies a consistent online snapshot of this persistent index to the new directory
    /// `dest` (hard links to segment files, copies of the log and manifest); writers keep
    /// going. `dest` opens like any index and holds every write acknowledged (`flush`ed)
    /// before the call, and a prefix of the later ones.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        self.check_open()?;
        let Some(store) = &self.store else {
            return Err(Error::InvalidConfig {
                option: "backup",
                reason: "an in-memory index has no files to back up".into(),
            });
        };
        store.backup(dest, || match &self.wal {
            Some(wal) => self.durable(wal.sync(true)),
            None => Ok(()),
        })
    }

    /// Checkpoints, then releases the directory; every later call fails with
    /// `Error::Closed`. Closing twice is `Ok`.
    pub fn close(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Ok(());
        }
        let flushed = self.checkpoint();
        self.closed.store(true, Ordering::Release);
        if let Some(store) = &self.store {
            store.release();
        }
        flushed
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        Ok(())
    }

    /// Poisons the index if `r` is a durability failure.
    fn durable(&self, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            self.poisoned.lock().get_or_insert_with(|| e.to_string());
        }
        r
    }

    /// Writes the log out after a write call: fsynced in `SyncMode::Always`, else only once
    /// the buffer is large (to bound memory).
    fn after_write(&self, buffer_full: bool) -> Result<()> {
        match &self.wal {
            Some(wal) if wal.mode() == SyncMode::Always => self.durable(wal.sync(true)),
            Some(wal) if buffer_full => self.durable(wal.sync(false)),
            _ => Ok(()),
        }
    }

    fn check_writable(&self) -> Result<()> {
        self.check_open()?;
        match &*self.poisoned.lock() {
            Some(cause) => Err(Error::Poisoned {
                cause: cause.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Installs a manifest with `lane`'s new version (and what its flush covered, if any)
    /// plus the index-wide counters and pending drops. A failure poisons the index: what is
    /// on disk is no longer known.
    fn persist(&self, lane: Option<(usize, &Version, Option<u64>)>) -> Result<()> {
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

    /// The configuration it was made with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    #[inline]
    fn locate(&self, key: &[u8]) -> (u64, &Lane) {
        let fp = self.hasher.fingerprint(key);
        let lane = jump_hash(fp, self.config.lanes) as usize;
        (fp, &self.lanes[lane])
    }

    /// Adds `handle` to `key`'s set (a no-op if present).
    pub fn add(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write(key, handle, Op::Add)
    }

    /// Removes `handle` from `key`'s set (a no-op if absent).
    pub fn remove(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write(key, handle, Op::Remove)
    }

    /// [`Index::add`] for each pair, in order. Pairs are grouped by lane so each lane is
    /// locked once per call (per 4096 pairs).
    pub fn add_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Add)
    }

    /// [`Index::remove`] for each pair, in order; grouped by lane like [`Index::add_many`].
    pub fn remove_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Remove)
    }

    /// [`Index::add`] without the flush or merge it may make due: returns whether one is due,
    /// for the caller to run [`Index::maintain`] where blocking is acceptable (a BEAM dirty
    /// scheduler), keeping the write itself sub-microsecond.
    pub fn add_deferred(&self, key: &[u8], handle: u32) -> Result<bool> {
        self.write_one(key, handle, Op::Add, false)
    }

    /// [`Index::remove`] deferring compaction like [`Index::add_deferred`].
    pub fn remove_deferred(&self, key: &[u8], handle: u32) -> Result<bool> {
        self.write_one(key, handle, Op::Remove, false)
    }

    /// [`Index::add_many`] deferring compaction like [`Index::add_deferred`].
    pub fn add_many_deferred<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<bool> {
        self.write_many_in(pairs, Op::Add, false)
    }

    /// [`Index::remove_many`] deferring compaction like [`Index::add_deferred`].
    pub fn remove_many_deferred<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<bool> {
        self.write_many_in(pairs, Op::Remove, false)
    }

    /// Runs the flushes and merges deferred writes left due, lane by lane (every lane when
    /// the write-ahead log has grown too long).
    pub fn maintain(&self) -> Result<()> {
        if self.wal_pressure() {
            return self.checkpoint();
        }
        for lane in self.lanes.iter() {
            if self.flush_due(&lane.state.read()) {
                self.compact_lane(lane, Mode::Due)?;
            }
        }
        Ok(())
    }

    /// Whether the log holds more files than segments allow deleting: time for a checkpoint.
    fn wal_pressure(&self) -> bool {
        self.wal
            .as_ref()
            .is_some_and(|w| w.files_retained() > MAX_WAL_FILES)
    }

    fn write(&self, key: &[u8], handle: u32, op: Op) -> Result<()> {
        self.write_one(key, handle, op, true).map(|_| ())
    }

    fn write_one(&self, key: &[u8], handle: u32, op: Op, compact: bool) -> Result<bool> {
        self.check_writable()?;
        let (fp, lane) = self.locate(key);
        let due = self.write_lane(lane, [(fp, handle)], op, &mut Vec::new(), compact)?;
        self.after_write(false)?;
        Ok(due)
    }

    fn write_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)], op: Op) -> Result<()> {
        self.write_many_in(pairs, op, true)?;
        Ok(())
    }

    /// Writes `pairs` lane by lane; compacts full lanes inline when `compact`, else returns
    /// whether some lane is due.
    fn write_many_in<K: AsRef<[u8]>>(
        &self,
        pairs: &[(K, u32)],
        op: Op,
        compact: bool,
    ) -> Result<bool> {
        self.check_writable()?;
        let mut due = false;
        let mut scratch = Vec::new();
        for chunk in pairs.chunks(WRITE_CHUNK) {
            // (lane, position, fp); the stable sort keeps each key's writes in call order.
            let mut located: Vec<(u32, usize, u64)> = chunk
                .iter()
                .enumerate()
                .map(|(i, (k, _))| {
                    let fp = self.hasher.fingerprint(k.as_ref());
                    (jump_hash(fp, self.config.lanes), i, fp)
                })
                .collect();
            located.sort_by_key(|&(lane, _, _)| lane);
            for group in located.chunk_by(|a, b| a.0 == b.0) {
                let lane = &self.lanes[group[0].0 as usize];
                let items = group.iter().map(|&(_, i, fp)| (fp, chunk[i].1));
                due |= self.write_lane(lane, items, op, &mut scratch, compact)?;
            }
        }
        self.after_write(false)?;
        Ok(due)
    }

    /// Applies `(fingerprint, handle)` writes to one lane under one acquisition of its locks.
    /// If that fills the overlay, flushes it when `compact`, else returns `true` (due).
    fn write_lane(
        &self,
        lane: &Lane,
        items: impl IntoIterator<Item = (u64, u32)>,
        op: Op,
        scratch: &mut Vec<u32>,
        compact: bool,
    ) -> Result<bool> {
        let flush_due = {
            let mut st = lane.state.write();
            let dead = self.dead.read();
            let mut log_full = false;
            for (fp, handle) in items {
                log_full |= self.apply_at(&mut st, &dead, fp, handle, op, scratch, None)?;
                self.counters.ops.fetch_add(1, Ordering::Relaxed);
            }
            if log_full {
                if let Some(wal) = &self.wal {
                    // written out, not fsynced: bounds the buffer (the lane lock keeps order)
                    self.durable(wal.sync(false))?;
                }
            }
            self.flush_due(&st) || self.wal_pressure()
        };
        if flush_due && compact {
            if self.wal_pressure() {
                self.checkpoint()?;
            } else {
                self.compact_lane(lane, Mode::Due)?;
            }
            return Ok(false);
        }
        Ok(flush_due)
    }

    /// One read-modify-write of `fp`'s set in its lane (whose lock the caller holds, with
    /// the dead-set read lock: both guards are parameters so the rule cannot be skipped),
    /// with the sequence number `replayed` a logged write had (recovery), or a new one that
    /// is logged. Returns whether the log buffer wants writing out.
    #[allow(clippy::too_many_arguments)]
    fn apply_at(
        &self,
        st: &mut LaneState,
        dead: &DeadHandles,
        fp: u64,
        handle: u32,
        op: Op,
        scratch: &mut Vec<u32>,
        replayed: Option<u64>,
    ) -> Result<bool> {
        // Allocated under the dead-set read lock: every drop with a smaller seq is in
        // `dead` now, so the set written below excludes exactly those (see DeadHandles).
        let seq = replayed.unwrap_or_else(|| self.seq.fetch_add(1, Ordering::SeqCst));
        scratch.clear();
        st.resolve(fp, Some(dead), scratch)?;
        let was_live = !scratch.is_empty();
        let changed = match op {
            Op::Add => handles::insert(scratch, handle),
            Op::Remove => handles::remove(scratch, handle),
        };
        if changed {
            if st.live_gen == dead.generation() {
                st.live += i64::from(!scratch.is_empty()) - i64::from(was_live);
            }
            let handles = HandleSet::from_slice(scratch);
            st.active.put(fp, Entry { seq, handles });
            // logged under the lane lock, so a lane's frames are in sequence order
            if let (Some(wal), None) = (&self.wal, replayed) {
                let record = match op {
                    Op::Add => Record::Add { fp, handle },
                    Op::Remove => Record::Remove { fp, handle },
                };
                return Ok(wal.append(seq, record));
            }
        }
        Ok(false)
    }

    fn flush_due(&self, st: &LaneState) -> bool {
        st.active.len() >= self.config.overlay_limit
    }

    /// `key`'s handles, sorted; empty when absent.
    pub fn lookup(&self, key: &[u8]) -> Result<Vec<u32>> {
        let mut out = Vec::new();
        self.lookup_into(key, &mut out)?;
        Ok(out)
    }

    /// Appends `key`'s sorted handles to `out` (no allocation when `out` has room).
    #[inline]
    pub fn lookup_into(&self, key: &[u8], out: &mut Vec<u32>) -> Result<()> {
        self.check_open()?;
        let (fp, lane) = self.locate(key);
        let st = lane.state.read();
        self.resolve(&st, fp, out)
    }

    #[inline]
    fn resolve(&self, st: &LaneState, fp: u64, out: &mut Vec<u32>) -> Result<()> {
        if self.dead_pending.load(Ordering::Acquire) == 0 {
            st.resolve(fp, None, out)?;
        } else {
            st.resolve(fp, Some(&self.dead.read()), out)?;
        }
        Ok(())
    }

    /// The handles of every key in `keys`, in one call (one WAL transaction = one batch).
    ///
    /// Per chunk of keys, the chunk's lanes are read-locked together (in ascending order, so
    /// concurrent batches cannot deadlock) and the keys are resolved in stages (see the
    /// `batch` module) so that their cache misses overlap.
    pub fn lookup_many<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<Batch> {
        self.check_open()?;
        let mut batch = Batch::with_capacity(keys.len());
        let mut located: Vec<(u64, usize)> = Vec::with_capacity(keys.len().min(LOOKUP_CHUNK));
        let mut lanes: Vec<u32> = Vec::with_capacity(located.capacity());
        let mut guard_of_lane = vec![0usize; self.lanes.len()];
        let mut guards = Vec::with_capacity(located.capacity());
        for chunk in keys.chunks(LOOKUP_CHUNK) {
            lanes.clear();
            located.clear();
            for k in chunk {
                let fp = self.hasher.fingerprint(k.as_ref());
                let lane = jump_hash(fp, self.config.lanes);
                lanes.push(lane);
                located.push((fp, lane as usize));
            }
            lanes.sort_unstable();
            lanes.dedup();
            for &lane in &lanes {
                guard_of_lane[lane as usize] = guards.len();
                guards.push(self.lanes[lane as usize].state.read());
            }
            for (_, lane) in located.iter_mut() {
                *lane = guard_of_lane[*lane];
            }
            let dead = (self.dead_pending.load(Ordering::Acquire) != 0).then(|| self.dead.read());
            batch::resolve_chunk(&guards, &located, dead.as_deref(), &mut batch)?;
            drop(dead);
            guards.clear();
        }
        Ok(batch)
    }

    /// Removes `handle` from every key, in O(1): lookups filter it until compaction purges it.
    /// Adding the handle again afterwards works as usual.
    pub fn drop_handle(&self, handle: u32) -> Result<()> {
        self.check_writable()?;
        let full = {
            let mut dead = self.dead.write();
            let seq = self.seq.fetch_add(1, Ordering::SeqCst);
            dead.insert(handle, seq);
            self.dead_pending.store(dead.len(), Ordering::Release);
            // logged under the dead-set lock: ordered against every write's seq
            self.wal
                .as_ref()
                .is_some_and(|w| w.append(seq, Record::Drop { handle }))
        };
        self.after_write(full)
    }

    /// Keys with a non-empty set. O(lanes) normally; after a `drop_handle` it recounts the
    /// lanes not yet recounted since (every key), until compaction purges the drop.
    pub fn len(&self) -> Result<u64> {
        self.check_open()?;
        let mut total = 0i64;
        for lane in self.lanes.iter() {
            let st = lane.state.upgradable_read();
            let dead = self.dead.read();
            if st.live_gen == dead.generation() {
                total += st.live;
                continue;
            }
            let live = st.count_live(&dead)?;
            let generation = dead.generation();
            drop(dead);
            let mut st = RwLockUpgradableReadGuard::upgrade(st);
            st.live = live;
            st.live_gen = generation;
            total += live;
        }
        Ok(total.max(0) as u64)
    }

    /// Whether no key has a non-empty set.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.len()? == 0)
    }

    /// Full compaction: every lane's overlay flushed and its segments merged into one, with
    /// tombstones and dropped handles purged.
    pub fn compact(&self) -> Result<()> {
        self.check_writable()?;
        for lane in self.lanes.iter() {
            self.compact_lane(lane, Mode::Full)?;
        }
        Ok(())
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
            Some(store) => store.write_segment(lane, id, &bytes).inspect_err(|e| {
                self.poisoned.lock().get_or_insert_with(|| e.to_string());
            })?,
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

    /// Flushes `lane`'s overlay if due (always when `full`), then merges per policy (all into
    /// one when `full`). Readers keep reading throughout: builds happen outside the lane lock.
    fn compact_lane(&self, lane: &Lane, mode: Mode) -> Result<()> {
        let full = mode == Mode::Full;
        // A writer whose flush is due skips if another thread is compacting this lane (that
        // one flushes); `flush` and `compact` wait their turn.
        let _one_at_a_time = if mode == Mode::Due {
            match lane.compaction.try_lock() {
                Some(guard) => guard,
                None => return Ok(()),
            }
        } else {
            lane.compaction.lock()
        };
        if self.store.is_some() {
            // nothing reaches the directory of a closed or poisoned index
            self.check_writable()?;
        }
        // Only the holder of `lane.compaction` changes `version` or `frozen`, so what it reads
        // of them below stays true until it installs. A frozen overlay left by a failed flush
        // is flushed first (retried) before a new one is frozen.
        let frozen = {
            let mut st = lane.state.write();
            let due = mode != Mode::Due || st.active.len() >= self.config.overlay_limit;
            if st.frozen.is_none() && due && !st.active.is_empty() {
                st.frozen = Some(Arc::new(std::mem::take(&mut st.active)));
                // every write of this lane so far holds a smaller seq (writes take the lock)
                st.frozen_seq = self.seq.load(Ordering::SeqCst);
            }
            st.frozen.clone().map(|f| (f, st.frozen_seq))
        };
        if let Some((frozen, covered)) = frozen {
            let version = lane.state.read().version.clone();
            let bottom = version.segments.is_empty();
            let (dead, clean_seq) = self.dead_snapshot();
            let built = executor::flush(&frozen, &dead, bottom, self.write_opts(0, clean_seq))?;
            let seg = self.open_built(lane.number, built)?;
            let bytes = seg.as_ref().map_or(0, |s| s.segment.info().bytes);
            // only the holder of `lane.compaction` changes `version`: `next` stays current
            let next = match seg {
                Some(seg) => Arc::new(version.with_flushed(seg)),
                None => version,
            };
            // on disk first; the frozen overlay stays readable until then
            self.persist(Some((lane.number, &next, Some(covered))))?;
            let mut st = lane.state.write();
            st.version = next;
            st.frozen = None;
            self.counters.flushes.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_flushed
                .fetch_add(bytes, Ordering::Relaxed);
        }
        loop {
            let version = lane.state.read().version.clone();
            let shape = version.shape();
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
                        choice = Choice::Merge {
                            start: 0,
                            count: 1,
                            level: info.level,
                        };
                    }
                }
            }
            let Choice::Merge {
                start,
                count,
                level,
            } = choice
            else {
                break;
            };
            let inputs = &version.segments[start..start + count];
            let bottom = start + count == version.segments.len();
            let (dead, clean_seq) = self.dead_snapshot();
            let built = executor::merge(inputs, &dead, bottom, self.write_opts(level, clean_seq))?;
            let seg = self.open_built(lane.number, built)?;
            let bytes = seg.as_ref().map_or(0, |s| s.segment.info().bytes);
            let next = Arc::new(version.with_merged(start, count, seg));
            self.persist(Some((lane.number, &next, None)))?;
            let mut st = lane.state.write();
            st.version = next;
            self.counters.merges.fetch_add(1, Ordering::Relaxed);
            self.counters
                .bytes_merged
                .fetch_add(bytes, Ordering::Relaxed);
            if full {
                // One pass of Full leaves a single, clean segment.
                break;
            }
        }
        self.purge_dead();
        Ok(())
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

    /// Sizes and counters.
    pub fn stats(&self) -> Result<Stats> {
        let keys = self.len()?;
        let mut s = Stats {
            keys,
            lanes: self.config.lanes,
            segments: 0,
            segments_per_level: BTreeMap::new(),
            segment_bytes: 0,
            mph_heap_bytes: 0,
            overlay_keys: 0,
            overlay_bytes: 0,
            pending_drops: self.dead.read().len() as u64,
            ops: self.counters.ops.load(Ordering::Relaxed),
            bytes_ingested: 0,
            bytes_flushed: self.counters.bytes_flushed.load(Ordering::Relaxed),
            bytes_merged: self.counters.bytes_merged.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            merges: self.counters.merges.load(Ordering::Relaxed),
            write_amplification: 0.0,
        };
        s.bytes_ingested = s.ops * LOGICAL_OP_BYTES;
        if s.bytes_flushed > 0 {
            s.write_amplification =
                (s.bytes_flushed + s.bytes_merged) as f64 / s.bytes_flushed as f64;
        }
        for lane in self.lanes.iter() {
            let st = lane.state.read();
            for o in std::iter::once(&st.active).chain(st.frozen.as_deref()) {
                s.overlay_keys += o.len() as u64;
                s.overlay_bytes += o.approx_bytes() as u64;
            }
            for seg in &st.version.segments {
                let info = seg.segment.info();
                s.segments += 1;
                *s.segments_per_level.entry(info.level).or_default() += 1;
                s.segment_bytes += info.bytes;
                s.mph_heap_bytes += seg.segment.heap_bytes() as u64;
            }
        }
        Ok(s)
    }
}
