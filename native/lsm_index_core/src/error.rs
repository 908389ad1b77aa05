//! The one error type of the core crate.

use std::fmt;

/// Everything that can go wrong inside the core; the NIF maps each variant to an Elixir error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its documented range.
    InvalidConfig {
        /// Which option.
        option: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A segment buffer does not start with the segment magic bytes.
    BadMagic {
        /// What the buffer is (a file name once segments live on disk).
        what: String,
    },
    /// A segment was written by a format version this build cannot read.
    UnsupportedVersion {
        /// What the buffer is.
        what: String,
        /// The version found.
        version: u16,
    },
    /// A section's bytes do not match the checksum recorded for them.
    ChecksumMismatch {
        /// What the buffer is, and which section.
        what: String,
        /// The recorded checksum.
        expected: u32,
        /// The checksum of the bytes present.
        got: u32,
    },
    /// An offset, length or count in a segment is inconsistent or out of bounds.
    Corrupt {
        /// What the buffer is.
        what: String,
        /// What was inconsistent.
        detail: String,
    },
    /// A segment was built with a different key-hash secret than the index reading it.
    SeedMismatch {
        /// The seed id recorded in the segment.
        segment: u64,
        /// The seed id of the index.
        index: u64,
    },
    /// The minimal perfect hash could not be built (retries exhausted) or is not a bijection.
    MphBuild {
        /// Which MPH kind failed.
        kind: &'static str,
        /// Why.
        detail: String,
    },
    /// A segment would exceed a format limit (e.g. a handle pool larger than 2 GiB).
    TooLarge {
        /// Which limit.
        what: &'static str,
    },
    /// A file system operation failed (the index may be poisoned, see `Poisoned`).
    Io {
        /// The operation and the path.
        what: String,
        /// The operating system's message.
        detail: String,
    },
    /// Another `Index` (in this or another OS process) has the directory open.
    Locked {
        /// The index directory.
        path: String,
    },
    /// An earlier failure stopped all writes: a failed fsync or install (the state on disk
    /// is no longer known to match what was acknowledged), or a background compaction job
    /// that failed or panicked.
    Poisoned {
        /// The failure that poisoned the index.
        cause: String,
    },
    /// The index was closed; every later call fails.
    Closed,
    /// A non-blocking write found a lane's overlay at its limit because compaction is behind;
    /// nothing was written. Retry later, or write in blocking mode (which waits).
    Overloaded {
        /// The lane whose overlay is full.
        lane: u32,
    },
    /// A shape's WHERE clause could not be parsed or does not fit the table's columns.
    InvalidPredicate {
        /// Byte offset in the clause where the problem was found.
        position: usize,
        /// What was expected there (and what was found).
        reason: String,
    },
    /// A non-blocking (`try_*`) write would have had to wait for I/O; nothing was written.
    /// Retry it as a blocking write (off a BEAM normal scheduler).
    WouldBlock {
        /// What it would have waited for.
        reason: &'static str,
    },
}

/// The core crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::InvalidConfig { option, reason } => {
                write!(f, "invalid option {option}: {reason}")
            }
            Error::BadMagic { what } => write!(f, "{what}: not a segment (bad magic bytes)"),
            Error::UnsupportedVersion { what, version } => {
                write!(f, "{what}: unsupported segment format version {version}")
            }
            Error::ChecksumMismatch {
                what,
                expected,
                got,
            } => write!(
                f,
                "{what}: checksum mismatch (expected {expected:#010x}, got {got:#010x})"
            ),
            Error::Corrupt { what, detail } => write!(f, "{what}: corrupt: {detail}"),
            Error::SeedMismatch { segment, index } => write!(
                f,
                "segment hash seed id {segment:#018x} does not match the index's {index:#018x}"
            ),
            Error::MphBuild { kind, detail } => {
                write!(f, "could not build the {kind} perfect hash: {detail}")
            }
            Error::TooLarge { what } => write!(f, "too large: {what}"),
            Error::Io { what, detail } => write!(f, "{what}: {detail}"),
            Error::Locked { path } => write!(f, "{path} is open in another index (locked)"),
            Error::Poisoned { cause } => {
                write!(f, "index poisoned by an earlier failure: {cause}")
            }
            Error::Closed => write!(f, "index closed"),
            Error::Overloaded { lane } => write!(
                f,
                "lane {lane}'s overlay is full while compaction catches up (nothing written)"
            ),
            Error::InvalidPredicate { position, reason } => {
                write!(f, "WHERE clause, at byte {position}: {reason}")
            }
            Error::WouldBlock { reason } => {
                write!(f, "the write would block: {reason} (nothing written)")
            }
        }
    }
}

impl std::error::Error for Error {}
