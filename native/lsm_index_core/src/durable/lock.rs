//! The directory lock: `<dir>/LOCK`, flock'ed (`File::try_lock`) while an index or a router
//! has the directory open. The lock belongs to the open file description, so a second opener
//! in the same process is refused as well as one in another process; the kernel drops it
//! when the holder's file is closed or its process dies.

use super::io_error;
use crate::error::{Error, FileKind, Result};
use std::fs::{self, File};
use std::path::Path;

/// The name of the lock file in a locked directory.
pub const LOCK_FILE: &str = "LOCK";

/// A held directory lock; dropping it unlocks the directory.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
}

impl DirLock {
    /// Locks `dir` (which must exist), creating its `LOCK` file if needed; `Error::Locked`
    /// when another opener holds it.
    pub fn acquire(dir: &Path) -> Result<DirLock> {
        let path = dir.join(LOCK_FILE);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io_error(FileKind::Lock, &path, "open", &e))?;
        match file.try_lock() {
            Ok(()) => Ok(DirLock { _file: file }),
            Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
                path: dir.display().to_string(),
            }),
            Err(fs::TryLockError::Error(e)) => Err(io_error(FileKind::Lock, &path, "lock", &e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_opener_is_refused_until_the_first_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let held = DirLock::acquire(dir.path()).unwrap();
        assert!(matches!(
            DirLock::acquire(dir.path()),
            Err(Error::Locked { .. })
        ));
        drop(held);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }
}
