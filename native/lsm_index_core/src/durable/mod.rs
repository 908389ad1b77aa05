//! Durable files: the few file-system idioms every on-disk structure of the crate is built from.
//!
//! - `lock`: the flock'ed `LOCK` file that keeps a second opener out of a directory;
//! - `atomic`: replacing a file atomically (temp file, fsync, rename, directory fsync);
//! - `numbered`: files named `<prefix><16 hex digits><suffix>` (manifests, log files);
//! - `frame`: the length + crc32c framing of append-only files (write-ahead log, shape
//!   catalog), whose reader cuts a torn tail and refuses a complete frame with a bad checksum.
//!
//! Each format (its magic, version and file header) stays in its own module (`manifest`,
//! `wal`, `router::catalog`, `segment`); this layer knows nothing of what the bytes mean.

pub mod atomic;
pub mod frame;
pub mod lock;
pub mod numbered;

pub use atomic::{sync_dir, write_atomically, CrashPoints};
pub use frame::Framing;
pub use lock::DirLock;
pub use numbered::{numbered_files, numbered_name};

use crate::error::{Error, FileKind};
use crate::Result;
use std::fs::OpenOptions;
use std::path::Path;

/// An `Error::Io` naming the kind of file, its path and the operation that failed.
pub fn io_error(file: FileKind, path: &Path, op: &'static str, e: &std::io::Error) -> Error {
    Error::Io {
        file,
        path: path.display().to_string(),
        op,
        kind: e.kind(),
        message: e.to_string(),
    }
}

/// Cuts `path` to `len` bytes and fsyncs it: how a torn tail found by a `Frames` reader is
/// removed before the file is appended to again.
pub fn truncate(file: FileKind, path: &Path, len: u64) -> Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .open(path)
        .map_err(|e| io_error(file, path, "open", &e))?;
    f.set_len(len)
        .map_err(|e| io_error(file, path, "truncate", &e))?;
    f.sync_all().map_err(|e| io_error(file, path, "fsync", &e))
}
