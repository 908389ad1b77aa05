//! Admission (back-pressure): whether a write may wait for room in a full lane, refusing
//! non-blocking writes that would wait or do I/O, and when log pressure asks for a
//! checkpoint. See DESIGN "Data flow: write", step 5.

use super::{Index, Overload};
use crate::error::{Error, Result};
use crate::lane::{Lane, LaneState};
use crate::wal::SyncMode;
use parking_lot::RwLockUpgradableReadGuard;
use std::sync::atomic::Ordering;

/// Log files (64 MiB each) kept before every lane is asked to flush so they can go.
const MAX_WAL_FILES: usize = 4;

/// Whether a write may wait for room in a full lane.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Admit {
    /// Wait for compaction to make room.
    Wait,
    /// Fail with `Error::Overloaded` (checked for every lane before anything is written).
    Error,
    /// Fail like `Error`, and do no I/O either (a `try_*` write: fit for a BEAM normal
    /// scheduler): the log buffer is written out by a background job, and in
    /// `SyncMode::Always`, where the write would have to wait for an fsync, it is refused with
    /// `Error::WouldBlock`.
    NonBlocking,
}

/// A non-blocking write is refused once the log buffer holds this many bytes (its background
/// write-out is behind).
const NONBLOCKING_LOG_LIMIT: usize = 8 << 20;

impl Index {
    /// Refuses a non-blocking write that could not complete without I/O.
    pub(super) fn check_nonblocking(&self) -> Result<()> {
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
    pub(super) fn blocking(&self) -> Admit {
        match self.config.on_overload {
            Overload::Wait => Admit::Wait,
            Overload::Error => Admit::Error,
        }
    }

    /// The lane's (upgradable) lock once its active overlay is below `max_overlay_keys`:
    /// waits for compaction to make room, or refuses with `Error::Overloaded`.
    pub(super) fn admit<'a>(
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
    pub(super) fn refuse(&self, lane: u32) -> Error {
        self.counters.stalls.fetch_add(1, Ordering::Relaxed);
        Error::Overloaded { lane }
    }

    /// Whether the log holds more files than segments allow deleting: time for a checkpoint.
    pub(super) fn wal_pressure(&self) -> bool {
        self.wal
            .as_ref()
            .is_some_and(|w| w.files_retained() > MAX_WAL_FILES)
    }
}
