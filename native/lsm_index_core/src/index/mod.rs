//! The index: key bytes -> sorted set of `u32` handles, over lane-partitioned LSM lanes.
//!
//! One room per data path: `config` (options, defaults, checks), `recovery` (open: manifest,
//! segments, log replay), `write` (add/remove/edit batches/drop_handle), `admit` (back-pressure:
//! waiting for or refusing a full lane), `read` (lookups, membership, fingerprints, len, handle
//! counts), `jobs` (scheduling and running background lane jobs), `events` (what a job tells
//! the listener: started, done, failed), `compact` (one lane job:
//! flush and merge), `install` (the one transition that changes a lane's version: manifest
//! first), `lifecycle` (flush, checkpoint, backup, close) and `stats` (what it reports). This
//! file holds the `Index` itself and the checks every path shares.
//!
//! Write path: fingerprint the key, pick its lane, read-modify-write the key's full set into
//! the lane's overlay; an overlay that reaches `overlay_limit` keys is frozen (still read) and
//! a background job flushes it into a segment and merges per policy. Writers never build
//! segments; they only wait (or are refused) when a lane's overlay reaches
//! `max_overlay_keys` while compaction catches up. Read path: the first structure holding the
//! key (overlay, frozen overlay, then segments newest first) answers, with pending dropped
//! handles filtered out.

mod admit;
mod compact;
mod config;
mod events;
mod install;
mod jobs;
mod lifecycle;
mod read;
mod recovery;
pub mod stats;
mod write;

use crate::compaction::strategy::Strategy;
use crate::compaction::workers::Workers;
use crate::dead::DeadHandles;
use crate::error::{Error, Result};
use crate::handle_counts::HandleCounts;
use crate::hash::{jump_hash, HashSecret, KeyHasher};
use crate::lane::Lanes;
use crate::store::Store;
use crate::wal::Wal;
use jobs::Activity;
use parking_lot::{Mutex, RwLock};
use stats::LookupCounters;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};

pub use config::{Config, Overload};
pub use events::{on_done, JobEvent, JobFailure, Listener};
pub use stats::{JobReport, Stats, LOGICAL_OP_BYTES};
pub use write::Edit;

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
    lanes: Lanes,
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
    workers: Arc<Workers>,
    /// This index, for the jobs it queues (set once it is in its `Arc`).
    me: Weak<Index>,
    /// Progress of background jobs, shared with the queued jobs themselves.
    activity: Arc<Activity>,
    /// Hears of background jobs (`events`).
    listener: RwLock<Option<Listener>>,
    /// `seq` when log pressure last asked every lane to flush.
    checkpoint_requested_at: AtomicU64,
    /// A background write-out of the log buffer is queued.
    log_writeout: AtomicBool,
    /// The directory of a persistent index (`open`); `None` in memory (boxed: an in-memory
    /// index does not carry their size).
    store: Option<Box<Store>>,
    /// Its write-ahead log.
    wal: Option<Box<Wal>>,
    /// Set by `close`: every later call fails with `Error::Closed`.
    closed: AtomicBool,
    /// Set by a failed install (fsync, rename) or a failed job: later writes fail with
    /// `Error::Poisoned`.
    poisoned: Mutex<Option<String>>,
    /// Per-handle key counts (`Config::count_handles`): changed only under the dead set's
    /// lock (read by writes, write by drops), so a drop's clearing is ordered against every
    /// write's counting (lock order: lane, dead set, counts).
    counts: Option<Mutex<HandleCounts>>,
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
        let lanes = Lanes::new(config.lanes as usize);
        let size_ratio = config
            .size_ratio
            .unwrap_or_else(|| config.policy.default_size_ratio());
        let policy = config.policy.build(config.max_segments, size_ratio);
        let workers = match config.compaction_threads {
            Some(n) => Workers::new(n),
            None => Workers::shared(),
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
            workers,
            me: Weak::new(),
            activity: Arc::default(),
            listener: RwLock::new(None),
            checkpoint_requested_at: AtomicU64::new(0),
            log_writeout: AtomicBool::new(false),
            store: None,
            wal: None,
            closed: AtomicBool::new(false),
            poisoned: Mutex::new(None),
            counts: config.count_handles.then(Mutex::default),
            config,
        })
    }

    fn into_shared(mut self) -> Arc<Index> {
        Arc::new_cyclic(|me| {
            self.me = me.clone();
            self
        })
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

    /// The handle counts, or `Error::NotCounting` for `operation` when not kept.
    fn counts(&self, operation: &'static str) -> Result<&Mutex<HandleCounts>> {
        self.check_open()?;
        self.counts.as_ref().ok_or(Error::NotCounting { operation })
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

    /// The fingerprint of `key` and the number of its lane.
    #[inline]
    fn locate(&self, key: &[u8]) -> (u64, usize) {
        let fp = self.hasher.fingerprint(key);
        (fp, jump_hash(fp, self.config.lanes) as usize)
    }
}
