//! The index: key bytes -> sorted set of `u32` handles, over lane-partitioned LSM lanes.
//!
//! Write path: fingerprint the key, pick its lane, read-modify-write the key's full set into
//! the lane's overlay; an overlay that reaches `overlay_limit` keys is frozen (still read) and
//! a background job (`background`) flushes it into a segment and merges per policy. Writers
//! never build segments; they only wait (or are refused) when a lane's overlay reaches
//! `max_overlay_keys` while compaction catches up. Read path: the first structure holding the
//! key (overlay, frozen overlay, then segments newest first) answers, with pending dropped
//! handles filtered out.

mod background;

use crate::batch::{self, Batch};
use crate::compaction::pool::Pool;
use crate::compaction::strategy::{PolicyKind, Strategy};
use crate::dead::DeadHandles;
use crate::error::{Error, FileKind, Result};
use crate::handles::{self, HandleSet};
use crate::hash::{jump_hash, HashSecret, KeyHasher};
use crate::lane::{Lane, LaneState};
use crate::manifest::Manifest;
use crate::overlay::Entry;
use crate::segment::mph::MphKind;
use crate::stats::{JobReport, LookupCounters};
use crate::store::Store;
use crate::version::{SegmentRef, Version};
use crate::wal::{self, Record, SyncMode, Wal};
use parking_lot::{Condvar, Mutex, RwLock, RwLockUpgradableReadGuard};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

pub use crate::stats::{Stats, LOGICAL_OP_BYTES};

/// Keys per `lookup_many` chunk: bounds how long a batch holds its lanes' read locks.
const LOOKUP_CHUNK: usize = 256;

/// Pairs per `add_many`/`remove_many` chunk (hashed, then sorted by lane).
const WRITE_CHUNK: usize = 4096;

/// Lane groups of at least this many writes resolve their keys in stages first.
const STAGED_WRITES: usize = 4;

/// Most pairs applied under one acquisition of a lane's write lock: bounds how long a reader
/// of that lane can wait for a writer (~0.1 ms), whoever the writer is.
const LANE_HOLD: usize = 256;

/// Log files (64 MiB each) kept before every lane is asked to flush so they can go.
const MAX_WAL_FILES: usize = 4;

/// Writes between two log-pressure checkpoint requests (about one log file's worth).
const CHECKPOINT_REQUEST_GAP: u64 = 1 << 21;

/// Called with the report of each finished background job (on a worker thread).
pub type Listener = Arc<dyn Fn(&JobReport) + Send + Sync>;

/// What a blocking write does when a lane's overlay is at `max_overlay_keys`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overload {
    /// Wait until compaction has made room (the write is slowed, memory stays bounded).
    Wait,
    /// Fail with `Error::Overloaded`, writing nothing.
    Fail,
}

impl Overload {
    /// The choice named `name` (`"wait"`, `"error"`: the Elixir option's values).
    pub fn from_name(name: &str) -> Option<Overload> {
        match name {
            "wait" => Some(Overload::Wait),
            "error" => Some(Overload::Fail),
            _ => None,
        }
    }
}

/// How an index is laid out and when it compacts.
#[derive(Clone, Debug)]
pub struct Config {
    /// Lanes keys are spread over (1..=65536); default 64.
    pub lanes: u32,
    /// MPH kind for new segments; default `ptr_hash` (the measured winner, DESIGN.md).
    pub mph: MphKind,
    /// Whether new segments get a BinaryFuse8 prefilter; default on.
    pub prefilter: bool,
    /// Keys a lane's overlay holds before it is frozen and flushed; default 16384.
    pub overlay_limit: usize,
    /// Keys a lane's active overlay may reach while its frozen one is still being flushed;
    /// beyond it writers wait or are refused ([`Overload`]). `None`: 4 x `overlay_limit`.
    pub max_overlay_keys: Option<usize>,
    /// Compaction policy; default triangular (see `compaction::strategy`).
    pub policy: PolicyKind,
    /// Most segments per lane (read amplification bound); default 4.
    pub max_segments: usize,
    /// The policy's size ratio; `None` (default): the policy's own
    /// ([`PolicyKind::default_size_ratio`]: 1.25 triangular, 4.0 leveled).
    pub size_ratio: Option<f64>,
    /// Worker threads of a dedicated compaction pool; `None` (default): the process-wide
    /// pool shared by every index, `min(2, cores)` threads.
    pub compaction_threads: Option<usize>,
    /// What blocking writes do when compaction is behind; default `Wait`.
    pub on_overload: Overload,
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
            max_overlay_keys: None,
            policy: PolicyKind::Triangular,
            max_segments: 4,
            size_ratio: None,
            compaction_threads: None,
            on_overload: Overload::Wait,
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
        if self
            .max_overlay_keys
            .is_some_and(|m| m < self.overlay_limit)
        {
            return bad("max_overlay_keys", "must be at least overlay_limit");
        }
        if self.max_segments == 0 {
            return bad("max_segments", "must be at least 1");
        }
        if self.size_ratio.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
            return bad("size_ratio", "must be a positive number");
        }
        if self
            .compaction_threads
            .is_some_and(|t| !(1..=256).contains(&t))
        {
            return bad("compaction_threads", "must be between 1 and 256");
        }
        Ok(())
    }

    /// The effective `max_overlay_keys`.
    pub fn stall_limit(&self) -> usize {
        self.max_overlay_keys
            .unwrap_or(self.overlay_limit.saturating_mul(4))
    }
}

/// Background progress: a generation bumped whenever a job installs or ends (writers waiting
/// for room and callers waiting for requested work sleep on it), and the jobs in flight. It
/// outlives the index's last strong reference inside a job, so a job's end is signalled
/// only after the job has let go of the index (and with it, of its directory lock).
#[derive(Default)]
struct Activity {
    generation: Mutex<u64>,
    changed: Condvar,
    pending: AtomicU64,
}

impl Activity {
    fn generation(&self) -> u64 {
        *self.generation.lock()
    }

    /// Sleeps until the generation moves past `seen` (or a short while passes, so that
    /// waiters re-check for a poisoned or closed index).
    fn wait(&self, seen: u64) {
        let mut generation = self.generation.lock();
        if *generation == seen {
            self.changed
                .wait_for(&mut generation, std::time::Duration::from_millis(50));
        }
    }

    fn notify(&self) {
        *self.generation.lock() += 1;
        self.changed.notify_all();
    }
}

#[derive(Default)]
struct Counters {
    ops: AtomicU64,
    keys_flushed: AtomicU64,
    keys_written: AtomicU64,
    bytes_written: AtomicU64,
    flushes: AtomicU64,
    merges: AtomicU64,
    jobs_done: AtomicU64,
    last_job_us: AtomicU64,
    busy_us: AtomicU64,
    stalls: AtomicU64,
}

/// The equality index. Shared as an `Arc` (its background jobs hold a weak reference):
/// many readers and writers may use it at once.
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
    policy: Box<dyn Strategy>,
    counters: Counters,
    /// Counters of `lookup_many` (single lookups count on their lane).
    batch_lookups: LookupCounters,
    /// Runs this index's compaction jobs.
    pool: Arc<Pool>,
    /// This index, for the jobs it queues (set once it is in its `Arc`).
    me: Weak<Index>,
    /// Progress of background jobs, shared with the queued jobs themselves.
    activity: Arc<Activity>,
    /// Receives job reports.
    listener: RwLock<Option<Listener>>,
    /// `seq` when log pressure last asked every lane to flush.
    checkpoint_requested_at: AtomicU64,
    /// A background write-out of the log buffer is queued.
    log_writeout: AtomicBool,
    /// The directory of a persistent index (`open`); `None` in memory.
    store: Option<Store>,
    /// Its write-ahead log.
    wal: Option<Wal>,
    /// Set by `close`: every later call fails with `Error::Closed`.
    closed: AtomicBool,
    /// Set by a failed install (fsync, rename) or a failed job: later writes fail with
    /// `Error::Poisoned`.
    poisoned: Mutex<Option<String>>,
}

/// Whether a write may wait for room in a full lane.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Admit {
    /// Wait for compaction to make room.
    Wait,
    /// Refuse with `Error::Overloaded` (checked for every lane before anything is written).
    Refuse,
    /// Refuse like `Refuse`, and do no I/O either (a `try_*` write: fit for a BEAM normal
    /// scheduler): the log buffer is written out by a background job, and in
    /// `SyncMode::Always`, where the write would have to wait for an fsync, it is refused with
    /// `Error::WouldBlock`.
    NonBlocking,
}

/// A non-blocking write is refused once the log buffer holds this many bytes (its background
/// write-out is behind).
const NONBLOCKING_LOG_LIMIT: usize = 8 << 20;

#[derive(Clone, Copy)]
enum Op {
    Add,
    Remove,
}

impl Index {
    /// An empty in-memory index.
    pub fn new(config: Config) -> Result<Arc<Index>> {
        Ok(Index::build(config)?.into_shared())
    }

    /// The index before it is shared: `open` fills it in place first.
    fn build(config: Config) -> Result<Index> {
        config.validate()?;
        let hasher = KeyHasher::new(config.secret.unwrap_or_else(HashSecret::random));
        let lanes = (0..config.lanes as usize).map(Lane::new).collect();
        let size_ratio = config
            .size_ratio
            .unwrap_or_else(|| config.policy.default_size_ratio());
        let policy = config.policy.build(config.max_segments, size_ratio);
        let pool = match config.compaction_threads {
            Some(n) => Pool::new(n),
            None => Pool::shared(),
        }
        .map_err(|e| Error::ThreadSpawn {
            what: "compaction pool",
            kind: e.kind(),
            message: e.to_string(),
        })?;
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
            batch_lookups: LookupCounters::default(),
            pool,
            me: Weak::new(),
            activity: Arc::default(),
            listener: RwLock::new(None),
            checkpoint_requested_at: AtomicU64::new(0),
            log_writeout: AtomicBool::new(false),
            store: None,
            wal: None,
            closed: AtomicBool::new(false),
            poisoned: Mutex::new(None),
            config,
        })
    }

    fn into_shared(mut self) -> Arc<Index> {
        Arc::new_cyclic(|me| {
            self.me = me.clone();
            self
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
        let index = index.into_shared();
        // lanes left over their limits by the replay (or a lowered cap) compact now
        for lane in index.lanes.iter() {
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
                    let op = match record {
                        Record::Add { .. } => Op::Add,
                        _ => Op::Remove,
                    };
                    let mut st = self.lanes[lane].state.write();
                    let dead = self.dead.read();
                    // no WAL yet while replaying: nothing is logged again
                    self.apply_at(
                        &mut st,
                        &dead,
                        fp,
                        handle,
                        op,
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

    /// Makes every write so far durable: one write + fsync of the write-ahead log (group
    /// commit). A no-op for an in-memory index.
    pub fn flush(&self) -> Result<()> {
        self.check_writable()?;
        match &self.wal {
            Some(wal) => self.durable(wal.sync(true)),
            None => Ok(()),
        }
    }

    /// Flushes every non-empty overlay into a segment (file) and installs a manifest, so the
    /// write-ahead log so far is no longer needed (and is deleted). The flushes run on the
    /// compaction pool; this call waits for them.
    pub fn checkpoint(&self) -> Result<()> {
        self.check_writable()?;
        self.flush()?;
        self.request_all(crate::lane::request::FLUSH)?;
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
            return Err(Error::NotPersistent {
                operation: "backup",
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
        // a job already past its closed check finishes before the directory is let go
        for lane in self.lanes.iter() {
            drop(lane.compaction.lock());
        }
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

    /// Poisons the index if `r` is a failure (of durability: the caller says so).
    fn durable(&self, r: Result<()>) -> Result<()> {
        if let Err(e) = &r {
            self.poisoned.lock().get_or_insert_with(|| e.to_string());
        }
        r
    }

    /// Writes the log out after a write call: fsynced in `SyncMode::Always` (never reached
    /// by a non-blocking write, refused before), else only once the buffer is large.
    fn after_write(&self, buffer_full: bool, mode: Admit) -> Result<()> {
        match &self.wal {
            Some(wal) if wal.mode() == SyncMode::Always => self.durable(wal.sync(true)),
            Some(_) if buffer_full => self.write_out_log(mode),
            _ => Ok(()),
        }
    }

    /// Writes the log buffer out (not fsynced: it bounds the buffer's memory), here or, for a
    /// non-blocking write, in a background job.
    fn write_out_log(&self, mode: Admit) -> Result<()> {
        match &self.wal {
            Some(_) if mode == Admit::NonBlocking => {
                self.schedule_log_writeout();
                Ok(())
            }
            Some(wal) => self.durable(wal.sync(false)),
            None => Ok(()),
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

    /// Adds `handle` to `key`'s set (a no-op if present). If compaction is behind and the
    /// key's lane is full, waits for room (or fails, per `Config::on_overload`).
    pub fn add(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Op::Add, self.blocking())
    }

    /// Removes `handle` from `key`'s set (a no-op if absent); waits like [`Index::add`].
    pub fn remove(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Op::Remove, self.blocking())
    }

    /// [`Index::add`] for each pair, in order. Pairs are grouped by lane so each lane is
    /// locked once per call (per 4096 pairs). Waits like [`Index::add`], lane by lane.
    pub fn add_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Add, self.blocking())
    }

    /// [`Index::remove`] for each pair, in order; grouped by lane like [`Index::add_many`].
    pub fn remove_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Remove, self.blocking())
    }

    /// [`Index::add`] that never waits and does no I/O: `Error::Overloaded` (nothing
    /// written) when the lane is full, `Error::WouldBlock` when it would have to wait for the
    /// log (`SyncMode::Always`). Sub-microsecond: fit for a BEAM normal scheduler.
    pub fn try_add(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Op::Add, Admit::NonBlocking)
    }

    /// [`Index::remove`] that never waits, like [`Index::try_add`].
    pub fn try_remove(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Op::Remove, Admit::NonBlocking)
    }

    /// [`Index::add_many`] that never waits, like [`Index::try_add`]: if any lane of the batch
    /// is full, fails before writing anything.
    pub fn try_add_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Add, Admit::NonBlocking)
    }

    /// [`Index::remove_many`] that never waits, like [`Index::try_add_many`].
    pub fn try_remove_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Op::Remove, Admit::NonBlocking)
    }

    /// [`Index::drop_handle`] that does no I/O, like [`Index::try_add`].
    pub fn try_drop_handle(&self, handle: u32) -> Result<()> {
        self.drop_in(handle, Admit::NonBlocking)
    }

    /// Refuses a non-blocking write that could not complete without I/O.
    fn check_nonblocking(&self) -> Result<()> {
        match &self.wal {
            Some(wal) if wal.mode() == SyncMode::Always => Err(Error::WouldBlock {
                reason: "every write waits for an fsync (sync mode always)",
            }),
            Some(wal) if wal.buffered() >= NONBLOCKING_LOG_LIMIT => Err(Error::WouldBlock {
                reason: "the log buffer is full while its write-out catches up",
            }),
            _ => Ok(()),
        }
    }

    /// How blocking writes treat a full lane.
    fn blocking(&self) -> Admit {
        match self.config.on_overload {
            Overload::Wait => Admit::Wait,
            Overload::Fail => Admit::Refuse,
        }
    }

    fn write_one(&self, key: &[u8], handle: u32, op: Op, admit: Admit) -> Result<()> {
        self.check_writable()?;
        if admit == Admit::NonBlocking {
            self.check_nonblocking()?;
        }
        let (fp, lane) = self.locate(key);
        self.write_lane_in(
            lane,
            &[(fp, handle)],
            op,
            &mut Vec::new(),
            Some(admit),
            admit,
        )?;
        self.after_write(false, admit)
    }

    /// Writes `pairs` lane by lane.
    fn write_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)], op: Op, admit: Admit) -> Result<()> {
        self.check_writable()?;
        if admit == Admit::NonBlocking {
            self.check_nonblocking()?;
        }
        // (lane, fingerprint) of each pair, hashed once
        let located: Vec<(u32, u64)> = pairs
            .iter()
            .map(|(k, _)| {
                let fp = self.hasher.fingerprint(k.as_ref());
                (jump_hash(fp, self.config.lanes), fp)
            })
            .collect();
        if admit != Admit::Wait {
            // all or nothing: every lane of the batch must have room before any is written
            let mut lanes: Vec<u32> = located.iter().map(|&(lane, _)| lane).collect();
            lanes.sort_unstable();
            lanes.dedup();
            for &n in &lanes {
                if self.lanes[n as usize].state.read().active.len() >= self.config.stall_limit() {
                    return Err(self.refuse(n));
                }
            }
        }
        // checked above when refusing: the batch may overshoot a lane's limit by its own size
        let check = (admit == Admit::Wait).then_some(Admit::Wait);
        let mut scratch = Vec::new();
        let mut order: Vec<(u32, usize)> = Vec::new();
        let mut items: Vec<(u64, u32)> = Vec::new();
        for (c, chunk) in located.chunks(WRITE_CHUNK).enumerate() {
            let base = c * WRITE_CHUNK;
            // (lane, position); the stable sort keeps each key's writes in call order.
            order.clear();
            order.extend(
                chunk
                    .iter()
                    .enumerate()
                    .map(|(i, &(lane, _))| (lane, base + i)),
            );
            order.sort_by_key(|&(lane, _)| lane);
            for group in order.chunk_by(|a, b| a.0 == b.0) {
                let lane = &self.lanes[group[0].0 as usize];
                for held in group.chunks(LANE_HOLD) {
                    items.clear();
                    items.extend(held.iter().map(|&(_, i)| (located[i].1, pairs[i].1)));
                    self.write_lane_in(lane, &items, op, &mut scratch, check, admit)?;
                }
            }
        }
        self.after_write(false, admit)
    }

    /// Applies `(fingerprint, handle)` writes to one lane under one acquisition of its locks,
    /// after waiting for or refusing a full lane (`check`; `None`: checked already). Freezes
    /// the overlay and queues its flush once it reaches `overlay_limit`. `mode` says whether
    /// the log buffer may be written out here or must be left to a background job.
    fn write_lane_in(
        &self,
        lane: &Lane,
        items: &[(u64, u32)],
        op: Op,
        scratch: &mut Vec<u32>,
        check: Option<Admit>,
        mode: Admit,
    ) -> Result<()> {
        let scheduled = {
            let st = match check {
                Some(admit) => self.admit(lane, admit)?,
                None => lane.state.upgradable_read(),
            };
            let dead = self.dead.read();
            // Resolve every key's current set first, in stages so that the cache misses of
            // different keys overlap (`batch`), while readers still read: the upgradable lock
            // keeps writers and installs out, so the sets stay current until we write.
            let mut known = Batch::with_capacity(items.len());
            if items.len() >= STAGED_WRITES {
                let keys: Vec<(u64, usize)> = items.iter().map(|&(fp, _)| (fp, 0)).collect();
                batch::resolve_chunk(std::slice::from_ref(&st), &keys, Some(&dead), &mut known)?;
            }
            let mut st = RwLockUpgradableReadGuard::upgrade(st);
            // one sequence number per write, allocated together under the dead-set read lock
            // (see `apply_at`)
            let first = self.seq.fetch_add(items.len() as u64, Ordering::SeqCst);
            self.counters
                .ops
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            let mut log_full = false;
            for (i, &(fp, handle)) in items.iter().enumerate() {
                // a key written earlier in this group is in the active overlay: resolve again
                let current =
                    (i < known.len() && st.active.get(fp).is_none()).then(|| known.get(i));
                let seq = first + i as u64;
                log_full |=
                    self.apply_at(&mut st, &dead, fp, handle, op, scratch, current, seq, true)?;
            }
            if log_full {
                self.write_out_log(mode)?;
            }
            self.freeze_if_due(&mut st)
        };
        if scheduled {
            self.schedule(lane);
        }
        if self.wal_pressure() {
            self.request_checkpoint();
        }
        Ok(())
    }

    /// The lane's (upgradable) lock once its active overlay is below `max_overlay_keys`:
    /// waits for compaction to make room, or refuses with `Error::Overloaded`.
    fn admit<'a>(
        &self,
        lane: &'a Lane,
        admit: Admit,
    ) -> Result<RwLockUpgradableReadGuard<'a, LaneState>> {
        let mut stalled = false;
        loop {
            let seen = self.activity.generation();
            let st = lane.state.upgradable_read();
            if st.active.len() < self.config.stall_limit() {
                return Ok(st);
            }
            drop(st);
            if !stalled {
                stalled = true;
                self.counters.stalls.fetch_add(1, Ordering::Relaxed);
            }
            if admit != Admit::Wait {
                return Err(Error::Overloaded {
                    lane: lane.number as u32,
                });
            }
            // a full active overlay means a frozen one is being flushed; make sure of it
            self.schedule(lane);
            self.activity.wait(seen);
            self.check_writable()?;
        }
    }

    /// Counts a refused write and says which lane was full.
    fn refuse(&self, lane: u32) -> Error {
        self.counters.stalls.fetch_add(1, Ordering::Relaxed);
        Error::Overloaded { lane }
    }

    /// Whether the log holds more files than segments allow deleting: time for a checkpoint.
    fn wal_pressure(&self) -> bool {
        self.wal
            .as_ref()
            .is_some_and(|w| w.files_retained() > MAX_WAL_FILES)
    }

    /// One read-modify-write of `fp`'s set in its lane (whose lock the caller holds, with
    /// the dead-set read lock: both guards are parameters so the rule cannot be skipped),
    /// stamped `seq` — allocated by the caller under that dead-set read lock, so every drop
    /// with a smaller seq is in `dead` and the set written excludes exactly those (see
    /// DeadHandles); or, in recovery, the seq the logged write had (`log` false: nothing is
    /// logged again). `current` is the key's set if the caller resolved it already (under
    /// the same locks). Returns whether the log buffer wants writing out.
    #[allow(clippy::too_many_arguments)]
    fn apply_at(
        &self,
        st: &mut LaneState,
        dead: &DeadHandles,
        fp: u64,
        handle: u32,
        op: Op,
        scratch: &mut Vec<u32>,
        current: Option<&[u32]>,
        seq: u64,
        log: bool,
    ) -> Result<bool> {
        scratch.clear();
        match current {
            Some(set) => scratch.extend_from_slice(set),
            None => {
                st.resolve(fp, Some(dead), scratch)?;
            }
        }
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
            if let (Some(wal), true) = (&self.wal, log) {
                let record = match op {
                    Op::Add => Record::Add { fp, handle },
                    Op::Remove => Record::Remove { fp, handle },
                };
                return Ok(wal.append(seq, record));
            }
        }
        Ok(false)
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
        let start = out.len();
        let st = lane.state.read();
        let (_, rejects) = if self.dead_pending.load(Ordering::Acquire) == 0 {
            st.resolve(fp, None, out)?
        } else {
            st.resolve(fp, Some(&self.dead.read()), out)?
        };
        drop(st);
        lane.lookups.record(out.len() > start, rejects);
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
        let mut rejects = 0;
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
            rejects += batch::resolve_chunk(&guards, &located, dead.as_deref(), &mut batch)?;
            drop(dead);
            guards.clear();
        }
        let hits = batch.iter().filter(|h| !h.is_empty()).count() as u64;
        self.batch_lookups
            .record_many(hits, batch.len() as u64 - hits, rejects);
        Ok(batch)
    }

    /// Removes `handle` from every key, in O(1): lookups filter it until compaction purges it.
    /// Adding the handle again afterwards works as usual.
    pub fn drop_handle(&self, handle: u32) -> Result<()> {
        self.drop_in(handle, Admit::Wait)
    }

    fn drop_in(&self, handle: u32, mode: Admit) -> Result<()> {
        self.check_writable()?;
        if mode == Admit::NonBlocking {
            self.check_nonblocking()?;
        }
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
        self.after_write(full, mode)
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
    /// tombstones and dropped handles purged. Runs on the compaction pool; waits for it.
    pub fn compact(&self) -> Result<()> {
        self.check_writable()?;
        self.request_all(crate::lane::request::FULL)
    }
}
