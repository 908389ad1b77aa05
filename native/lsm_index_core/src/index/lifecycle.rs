//! The life of an index after it opens: making writes durable (`flush`, `checkpoint`),
//! copying it (`backup`), and ending it (`close`).

use super::Index;
use crate::error::{Error, Result};
use std::path::Path;
use std::sync::atomic::Ordering;

impl Index {
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
        for lane in self.lanes.live() {
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
}
