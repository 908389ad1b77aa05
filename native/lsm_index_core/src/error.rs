//! The one error type of the core crate.
//!
//! Errors about a file say which kind of file failed (`FileKind`): a segment, the manifest,
//! a write-ahead log file, a router's shape catalog, the lock file or a directory, so the
//! same corruption variants serve every format without pretending to be segment errors.

use std::fmt;

/// Which kind of file (or directory) an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileKind {
    /// An immutable segment file (`segments/lane-<n>/<id>.seg`) or an in-memory segment.
    Segment,
    /// A manifest (`MANIFEST-<generation>.json`).
    Manifest,
    /// A write-ahead log file (`wal-<first seq>.log`).
    Wal,
    /// A persistent router's shape catalog (`shapes.log`).
    Catalog,
    /// A persistent router over declared tables: its shapes and views (`views.log`).
    Views,
    /// A persistent router's snapshot (`router.snap`): an accelerator of its catalog.
    RouterSnapshot,
    /// The `LOCK` file that keeps a second opener out.
    Lock,
    /// A directory (listing it, creating it, fsyncing it).
    Directory,
}

impl FileKind {
    /// The kind's name as error messages print it.
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Segment => "segment",
            FileKind::Manifest => "manifest",
            FileKind::Wal => "log file",
            FileKind::Catalog => "shape catalog",
            FileKind::Views => "views log",
            FileKind::RouterSnapshot => "router snapshot",
            FileKind::Lock => "lock file",
            FileKind::Directory => "directory",
        }
    }
}

impl fmt::Display for FileKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    /// A router's table definition is unusable (no columns, too many, a name twice).
    InvalidColumns {
        /// What is wrong with the columns.
        reason: String,
    },
    /// A column with another type than the table's: a shape of an open-schema router
    /// declaring it otherwise than the other shapes that read it (one type per column while
    /// some shape reads it), or a column added again with another type
    /// (`Router::add_column`).
    ColumnTypeConflict {
        /// The column.
        column: String,
        /// Its type in the table (in the other shapes).
        had: String,
        /// The type the new shape declares, or the column added has.
        got: String,
    },
    /// A persistent router's shape catalog was made for a table with other columns.
    TableMismatch {
        /// The catalog file.
        path: String,
        /// The columns the catalog records (`name\ttype` each).
        columns: Vec<String>,
    },
    /// A row given to the router has a different number of columns than its table (more,
    /// or fewer than the table had before columns were added to it).
    ColumnCount {
        /// The table's column count.
        expected: usize,
        /// The row's.
        got: usize,
    },
    /// A caller's row source ([`crate::router::RowCells`]) could not give a cell: its value
    /// is not text (the caller knows which and why; it refuses the change itself).
    BadCell {
        /// The column.
        column: usize,
    },
    /// An operation that needs files was called on an in-memory index.
    NotPersistent {
        /// The operation.
        operation: &'static str,
    },
    /// A handle-count query on an index made without `Config::count_handles`.
    NotCounting {
        /// The operation.
        operation: &'static str,
    },
    /// A file does not start with the magic bytes of its format.
    BadMagic {
        /// The kind of file it should be.
        file: FileKind,
        /// Which file (its path, or a name for an in-memory buffer).
        what: String,
    },
    /// A file was written by a format version this build cannot read.
    UnsupportedVersion {
        /// The kind of file.
        file: FileKind,
        /// Which file.
        what: String,
        /// The version found.
        version: u32,
    },
    /// Bytes of a file do not match the checksum recorded for them.
    ChecksumMismatch {
        /// The kind of file.
        file: FileKind,
        /// Which file, and which part of it (a section, a header, a frame at some offset).
        what: String,
        /// The recorded checksum.
        expected: u32,
        /// The checksum of the bytes present.
        got: u32,
    },
    /// An offset, length, count or value in a file is inconsistent or out of bounds.
    Corrupt {
        /// The kind of file.
        file: FileKind,
        /// Which file (or part of it).
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
        /// The kind of file it was done on.
        file: FileKind,
        /// The path.
        path: String,
        /// The operation (`"open"`, `"fsync"`, `"rename"`, ...).
        op: &'static str,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// The operating system refused to start threads.
    ThreadSpawn {
        /// What the threads were for.
        what: &'static str,
        /// The operating system's error kind.
        kind: std::io::ErrorKind,
        /// The operating system's message.
        message: String,
    },
    /// Another `Index` or router (in this or another OS process) has the directory open.
    Locked {
        /// The directory.
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
    /// A subquery view was used inconsistently (an unknown view or attachment, a different
    /// arity under one view key): the caller's bookkeeping, not its input, is wrong.
    InvalidView {
        /// The view number.
        view: u32,
        /// What was inconsistent.
        reason: String,
    },
    /// A shape's snapshot of one of its subqueries is unusable (a value that does not parse
    /// for its column, a row of the wrong width, a list for each subquery missing).
    InvalidSeed {
        /// The subquery's position in the shape's WHERE (textual order).
        position: u32,
        /// What is wrong.
        reason: String,
    },
    /// A change of a table some subquery reads holds a value that does not parse for its
    /// column: the views cannot be counted, so nothing of the change was applied (the declared
    /// types are wrong).
    Unparseable {
        /// The table's number.
        table: u32,
        /// The column.
        column: String,
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
            Error::InvalidView { view, reason } => write!(f, "subquery view {view}: {reason}"),
            Error::InvalidSeed { position, reason } => {
                write!(f, "the values of subquery {position}: {reason}")
            }
            Error::Unparseable { table, column } => write!(
                f,
                "table {table}: a value of column {column:?} that a subquery reads does not parse"
            ),
            Error::InvalidColumns { reason } => write!(f, "invalid table columns: {reason}"),
            Error::ColumnTypeConflict { column, had, got } => {
                write!(f, "column {column:?} is {had}, not {got}")
            }
            Error::TableMismatch { path, columns } => write!(
                f,
                "the shape catalog {path} belongs to a table with columns {columns:?}"
            ),
            Error::ColumnCount { expected, got } => {
                write!(f, "a row has {got} columns, the table {expected}")
            }
            Error::BadCell { column } => write!(f, "the value of column {column} is not text"),
            Error::NotPersistent { operation } => {
                write!(f, "{operation}: an in-memory index has no files")
            }
            Error::NotCounting { operation } => {
                write!(f, "{operation}: the index was made without count_handles")
            }
            Error::BadMagic { file, what } => write!(f, "{what}: not a {file} (bad magic bytes)"),
            Error::UnsupportedVersion {
                file,
                what,
                version,
            } => write!(f, "{what}: unsupported {file} format version {version}"),
            Error::ChecksumMismatch {
                file,
                what,
                expected,
                got,
            } => write!(
                f,
                "{what}: {file} checksum mismatch (expected {expected:#010x}, got {got:#010x})"
            ),
            Error::Corrupt { file, what, detail } => write!(f, "{what}: corrupt {file}: {detail}"),
            Error::SeedMismatch { segment, index } => write!(
                f,
                "segment hash seed id {segment:#018x} does not match the index's {index:#018x}"
            ),
            Error::MphBuild { kind, detail } => {
                write!(f, "could not build the {kind} perfect hash: {detail}")
            }
            Error::TooLarge { what } => write!(f, "too large: {what}"),
            Error::Io {
                file,
                path,
                op,
                message,
                ..
            } => write!(f, "{op} {file} {path}: {message}"),
            Error::ThreadSpawn { what, message, .. } => {
                write!(f, "cannot start the {what} threads: {message}")
            }
            Error::Locked { path } => write!(f, "{path} is open elsewhere (locked)"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_name_the_file_kind() {
        let e = Error::ChecksumMismatch {
            file: FileKind::Wal,
            what: "/d/wal-0000000000000001.log frame at byte 24".into(),
            expected: 1,
            got: 2,
        };
        assert_eq!(
            e.to_string(),
            "/d/wal-0000000000000001.log frame at byte 24: log file checksum mismatch \
             (expected 0x00000001, got 0x00000002)"
        );
        let e = Error::Io {
            file: FileKind::Manifest,
            path: "/d/MANIFEST-0000000000000002.json".into(),
            op: "fsync",
            kind: std::io::ErrorKind::Other,
            message: "I/O error".into(),
        };
        assert_eq!(
            e.to_string(),
            "fsync manifest /d/MANIFEST-0000000000000002.json: I/O error"
        );
    }
}
