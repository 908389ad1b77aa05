//! The write path: add, remove and drop_handle, one at a time or in batches, blocking or
//! not, and mixed add/remove batches (`edit_many`). A write resolves the key's current set, writes the whole new set into its lane's
//! active overlay (logged first for a persistent index), and freezes the overlay when due.
//! With `Config::count_handles`, a write that changed a set counts its handle, and a drop
//! clears the handle's count, under the same locks.

use super::admit::Admit;
use super::Index;
use crate::batch::{self, Batch};
use crate::dead::DeadHandles;
use crate::error::Result;
use crate::handles::{self, HandleSet};
use crate::hash::jump_hash;
use crate::lane::{Lane, LaneState};
use crate::overlay::Entry;
use crate::wal::{Record, SyncMode};
use parking_lot::RwLockUpgradableReadGuard;
use std::sync::atomic::Ordering;

/// Pairs per `add_many`/`remove_many` chunk (hashed, then sorted by lane).
const WRITE_CHUNK: usize = 4096;

/// Lane groups of at least this many writes resolve their keys in stages first.
const STAGED_WRITES: usize = 4;

/// Most pairs applied under one acquisition of a lane's write lock: bounds how long a reader
/// of that lane can wait for a writer (~0.1 ms), whoever the writer is.
const LANE_HOLD: usize = 256;

/// Which way a write changes a key's set (an item of [`Index::edit_many`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Edit {
    /// Add the handle to the key's set.
    Add,
    /// Remove the handle from the key's set.
    Remove,
}

/// What one [`Index::apply_at`] did.
pub(super) struct Applied {
    /// The key's set changed (an add of a present pair, a remove of an absent one: not).
    pub(super) changed: bool,
    /// The log buffer wants writing out.
    pub(super) log_full: bool,
}

impl Index {
    /// Adds `handle` to `key`'s set (a no-op if present). If compaction is behind and the
    /// key's lane is full, waits for room (or fails, per `Config::on_overload`).
    pub fn add(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Edit::Add, self.blocking())
    }

    /// Removes `handle` from `key`'s set (a no-op if absent); waits like [`Index::add`].
    pub fn remove(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Edit::Remove, self.blocking())
    }

    /// [`Index::add`] for each pair, in order. Pairs are grouped by lane so each lane is
    /// locked once per call (per 4096 pairs). Waits like [`Index::add`], lane by lane.
    pub fn add_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Edit::Add, self.blocking())
    }

    /// [`Index::remove`] for each pair, in order; grouped by lane like [`Index::add_many`].
    pub fn remove_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Edit::Remove, self.blocking())
    }

    /// [`Index::add`] that never waits and does no I/O: `Error::Overloaded` (nothing
    /// written) when the lane is full, `Error::WouldBlock` when it would have to wait for the
    /// log (`SyncMode::Always`). Sub-microsecond: fit for a BEAM normal scheduler.
    pub fn try_add(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Edit::Add, Admit::NonBlocking)
    }

    /// [`Index::remove`] that never waits, like [`Index::try_add`].
    pub fn try_remove(&self, key: &[u8], handle: u32) -> Result<()> {
        self.write_one(key, handle, Edit::Remove, Admit::NonBlocking)
    }

    /// [`Index::add_many`] that never waits, like [`Index::try_add`]: if any lane of the batch
    /// is full, fails before writing anything.
    pub fn try_add_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Edit::Add, Admit::NonBlocking)
    }

    /// [`Index::remove_many`] that never waits, like [`Index::try_add_many`].
    pub fn try_remove_many<K: AsRef<[u8]>>(&self, pairs: &[(K, u32)]) -> Result<()> {
        self.write_many(pairs, Edit::Remove, Admit::NonBlocking)
    }

    /// Adds and removes in one batch, each `(key, handle, edit)` in order (a key's edits
    /// keep their call order); grouped by lane like [`Index::add_many`], waits like it.
    pub fn edit_many<K: AsRef<[u8]>>(&self, edits: &[(K, u32, Edit)]) -> Result<()> {
        let key = |i: usize| edits[i].0.as_ref();
        self.write_edits(
            edits.len(),
            key,
            |i| (edits[i].1, edits[i].2),
            self.blocking(),
        )
    }

    /// [`Index::edit_many`] that never waits, like [`Index::try_add_many`]: all or nothing on
    /// admission — if any lane of the batch is full, fails before writing anything.
    pub fn try_edit_many<K: AsRef<[u8]>>(&self, edits: &[(K, u32, Edit)]) -> Result<()> {
        let key = |i: usize| edits[i].0.as_ref();
        self.write_edits(
            edits.len(),
            key,
            |i| (edits[i].1, edits[i].2),
            Admit::NonBlocking,
        )
    }

    /// [`Index::drop_handle`] that does no I/O, like [`Index::try_add`].
    pub fn try_drop_handle(&self, handle: u32) -> Result<()> {
        self.drop_in(handle, Admit::NonBlocking)
    }

    fn write_one(&self, key: &[u8], handle: u32, edit: Edit, admit: Admit) -> Result<()> {
        self.check_writable()?;
        if admit == Admit::NonBlocking {
            self.check_nonblocking()?;
        }
        let (fp, n) = self.locate(key);
        self.write_lane_in(
            &self.lanes.writable()[n],
            &[(fp, handle, edit)],
            &mut Vec::new(),
            Some(admit),
            admit,
        )?;
        self.after_write(false, admit)
    }

    /// Writes `pairs`, each with the same `edit`, lane by lane.
    fn write_many<K: AsRef<[u8]>>(
        &self,
        pairs: &[(K, u32)],
        edit: Edit,
        admit: Admit,
    ) -> Result<()> {
        let key = |i: usize| pairs[i].0.as_ref();
        self.write_edits(pairs.len(), key, |i| (pairs[i].1, edit), admit)
    }

    /// Writes `n` edits (edit `i`: `key(i)`, then `op(i)` = handle and edit) lane by lane;
    /// unless the write may wait, every lane of the batch is admitted before any is written.
    fn write_edits<'k>(
        &self,
        n: usize,
        key: impl Fn(usize) -> &'k [u8],
        op: impl Fn(usize) -> (u32, Edit),
        admit: Admit,
    ) -> Result<()> {
        self.check_writable()?;
        if admit == Admit::NonBlocking {
            self.check_nonblocking()?;
        }
        // (lane, fingerprint) of each pair, hashed once
        let located: Vec<(u32, u64)> = (0..n)
            .map(|i| {
                let fp = self.hasher.fingerprint(key(i));
                (jump_hash(fp, self.config.lanes), fp)
            })
            .collect();
        if admit != Admit::Wait {
            // all or nothing: every lane of the batch must have room before any is written
            let mut lanes: Vec<u32> = located.iter().map(|&(lane, _)| lane).collect();
            lanes.sort_unstable();
            lanes.dedup();
            for &n in &lanes {
                if self.lanes.writable()[n as usize].state.read().active.len()
                    >= self.config.stall_limit()
                {
                    return Err(self.refuse(n));
                }
            }
        }
        // checked above when refusing: the batch may overshoot a lane's limit by its own size
        let check = (admit == Admit::Wait).then_some(Admit::Wait);
        let mut scratch = Vec::new();
        let mut order: Vec<(u32, usize)> = Vec::new();
        let mut items: Vec<(u64, u32, Edit)> = Vec::new();
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
                let lane = &self.lanes.writable()[group[0].0 as usize];
                for held in group.chunks(LANE_HOLD) {
                    items.clear();
                    items.extend(held.iter().map(|&(_, i)| {
                        let (handle, edit) = op(i);
                        (located[i].1, handle, edit)
                    }));
                    self.write_lane_in(lane, &items, &mut scratch, check, admit)?;
                }
            }
        }
        self.after_write(false, admit)
    }

    /// Applies `(fingerprint, handle, edit)` writes to one lane under one acquisition of its locks,
    /// after waiting for or refusing a full lane (`check`; `None`: checked already). Freezes
    /// the overlay and queues its flush once it reaches `overlay_limit`. `mode` says whether
    /// the log buffer may be written out here or must be left to a background job.
    fn write_lane_in(
        &self,
        lane: &Lane,
        items: &[(u64, u32, Edit)],
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
                let keys: Vec<(u64, usize)> = items.iter().map(|&(fp, ..)| (fp, 0)).collect();
                batch::resolve_chunk(std::slice::from_ref(&st), &keys, Some(&dead), &mut known)?;
            }
            // Why the dead set is let go of here: `upgrade` waits for this lane's readers, and
            // a reader holding this lane may be waiting for the dead set — parked behind a
            // `drop_handle` or `purge_dead` that waits for our read lock (a `read_recursive`
            // that parked while the set was write-locked is not woken by our read and stays
            // queued behind the next writer). Nothing waits for a lane lock while holding
            // the dead set (DESIGN invariant 8). A drop in between makes the staged sets
            // stale (the lane itself cannot change: we hold its upgradable lock), so they are
            // then resolved again, under the dead set taken after the upgrade.
            let resolved_under = dead.generation();
            drop(dead);
            let mut st = RwLockUpgradableReadGuard::upgrade(st);
            let dead = self.dead.read();
            if dead.generation() != resolved_under {
                known = Batch::default();
            }
            // one sequence number per write, allocated together under the dead-set read lock
            // (see `apply_at`)
            let first = self.seq.fetch_add(items.len() as u64, Ordering::SeqCst);
            self.counters
                .ops
                .fetch_add(items.len() as u64, Ordering::Relaxed);
            // counted under the dead-set read lock, as each pair is applied (an error part-way
            // leaves the counts of what was written)
            let mut counts = self.counts.as_ref().map(|c| c.lock());
            let mut log_full = false;
            for (i, &(fp, handle, edit)) in items.iter().enumerate() {
                // a key written earlier in this group is in the active overlay: resolve again
                let current =
                    (i < known.len() && st.active.get(fp).is_none()).then(|| known.get(i));
                let seq = first + i as u64;
                let applied = self.apply_at(
                    &mut st, &dead, fp, handle, edit, scratch, current, seq, true,
                )?;
                log_full |= applied.log_full;
                if let (Some(counts), true) = (counts.as_mut(), applied.changed) {
                    match edit {
                        Edit::Add => counts.increment(handle),
                        Edit::Remove => counts.decrement(handle),
                    }
                }
            }
            drop(counts);
            if log_full {
                self.write_out_log(mode)?;
            }
            self.freeze(&mut st, false)
        };
        if scheduled {
            self.schedule(lane);
        }
        if self.wal_pressure() {
            self.request_checkpoint();
        }
        Ok(())
    }

    /// One read-modify-write of `fp`'s set in its lane (whose lock the caller holds, with
    /// the dead-set read lock: both guards are parameters so the rule cannot be skipped),
    /// stamped `seq` — allocated by the caller under that dead-set read lock, so every drop
    /// with a smaller seq is in `dead` and the set written excludes exactly those (see
    /// DeadHandles); or, in recovery, the seq the logged write had (`log` false: nothing is
    /// logged again). `current` is the key's set if the caller resolved it already (under
    /// the same locks). Says whether the set changed and the log buffer wants writing out.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn apply_at(
        &self,
        st: &mut LaneState,
        dead: &DeadHandles,
        fp: u64,
        handle: u32,
        edit: Edit,
        scratch: &mut Vec<u32>,
        current: Option<&[u32]>,
        seq: u64,
        log: bool,
    ) -> Result<Applied> {
        scratch.clear();
        match current {
            Some(set) => scratch.extend_from_slice(set),
            None => {
                st.resolve(fp, Some(dead), scratch)?;
            }
        }
        let was_live = !scratch.is_empty();
        let changed = match edit {
            Edit::Add => handles::insert(scratch, handle),
            Edit::Remove => handles::remove(scratch, handle),
        };
        if changed {
            if st.live_gen == dead.generation() {
                st.live += i64::from(!scratch.is_empty()) - i64::from(was_live);
            }
            let handles = HandleSet::from_slice(scratch);
            st.active.put(fp, Entry { seq, handles });
            // logged under the lane lock, so a lane's frames are in sequence order
            if let (Some(wal), true) = (&self.wal, log) {
                let record = match edit {
                    Edit::Add => Record::Add { fp, handle },
                    Edit::Remove => Record::Remove { fp, handle },
                };
                let log_full = wal.append(seq, record);
                return Ok(Applied { changed, log_full });
            }
        }
        Ok(Applied {
            changed,
            log_full: false,
        })
    }

    /// Removes `handle` from every key, in O(1): lookups filter it until compaction purges it.
    /// Adding the handle again afterwards works as usual. Its count (`count_handles`) is 0.
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
            // under the dead-set write lock: after every write stamped before the drop
            if let Some(counts) = &self.counts {
                counts.lock().clear(handle);
            }
            // logged under the dead-set lock: ordered against every write's seq
            self.wal
                .as_ref()
                .is_some_and(|w| w.append(seq, Record::Drop { handle }))
        };
        self.after_write(full, mode)
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
}
