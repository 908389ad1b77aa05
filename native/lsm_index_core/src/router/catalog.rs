//! The shape catalog of a persistent router: every shape added or removed, and every column
//! added to its table, appended to one file and replayed at open (the router's index and
//! programs are rebuilt from it in memory).
//!
//! ```text
//! <dir>/LOCK         flock'ed while a router has the directory open
//! <dir>/shapes.log   "LSMSHAPE" | version u32 LE (2; 1 is read too) | record*
//! record             len u32 LE | crc32c(payload) u32 LE | payload (len bytes)
//!                    (the `durable::frame` codec with no prefix)
//! payload            kind u8 | id u32 LE | text
//! kind               0 table   first record; id 0; the columns the table was made with
//!                    1 add     id: the shape; text: its definition
//!                    2 remove  id: the shape; no text
//!                    3 column  (version 2) id: its position (the table's columns before
//!                              it); text: `name\ttype` — a column appended to the table
//! ```
//!
//! The table record names the table's columns (`name\ttype\n` each, the type as
//! `ColumnType::describe` writes it: `int8`, `enum('a','b')`, `enum "mood"('sad','ok')` for a
//! named enum; then `\tcase_folding c\n` for a router folding case as under `LC_CTYPE=C`);
//! each column record one more, at the end (`Router::add_column`: positions never move). The
//! catalog's columns are the table record's then the column records', and a router opens
//! it only with those columns first (see `table`): with exactly them, or followed by more —
//! columns added while it was closed, recorded at open — else it is refused
//! (`TableMismatch`). (Named enums added a spelling, not a format: every table a catalog of
//! version 1 could hold is written as it was.) An add's text is the shape's definition: its
//! WHERE clause, then per `$n` parameter a NUL and `v` + the value's text, or `n` for NULL (a
//! clause never holds a NUL, so clauses recorded before parameters existed read the same).
//!
//! Version 2 added the column record, nothing else: a version-1 file reads as ever, and is
//! rewritten as version 2 (whole, atomically) before its first column record is appended; a
//! file written whole (created, rewritten) is version 2. At open, an incomplete last record
//! (a crash mid-append) is cut off; a complete record with a bad checksum is an error
//! (`ChecksumMismatch`), never skipped. When dead records outnumber live shapes the file is
//! rewritten (temp file, fsync, rename, directory fsync) with the table record, the column
//! records and the live shapes.
//!
//! Rooms: `read`, the decoder (whole, or the tail after a stamp); `table`, the table as
//! text and which routers' columns fit it.

use crate::durable::{self, io_error, CrashPoints, DirLock, Framing};
use crate::error::{Error, FileKind, Result};
use crate::predicate::{CaseFolding, ColumnType};
use crate::wal::SyncMode;
use read::Columns;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use table::column_line;
pub(super) use table::{table_text, Table};

mod read;
mod table;

const MAGIC: &[u8; 8] = b"LSMSHAPE";
/// The version written; version 1 (no column records) is read too.
const VERSION: u32 = 2;
const HEADER: usize = 12;
const FILE: &str = "shapes.log";
/// Records: no prefix; a payload holds at least its kind and id, and at most a 1 MiB clause
/// besides.
const FRAMING: Framing = Framing {
    prefix: 0,
    min_payload: 5,
    max_payload: (1 << 20) + 5,
};
/// Where a crash test can stop a rewrite (see `failpoint`).
const CRASH_POINTS: CrashPoints = CrashPoints {
    written: "catalog:tmp_written",
    renamed: "catalog:renamed",
};

const TABLE: u8 = 0;
const ADD: u8 = 1;
const REMOVE: u8 = 2;
const COLUMN: u8 = 3;

/// An open catalog, appending.
pub struct Catalog {
    path: PathBuf,
    file: File,
    /// Holds the directory's flock.
    _lock: DirLock,
    sync: SyncMode,
    /// A failed append may have left a partial record: no more appends.
    failed: bool,
    /// Where the file stands: its length, checksum and records so far.
    stamp: Stamp,
    /// The file's format version: 1 until a column is added to a version-1 file.
    version: u32,
    /// The router's table (a rewrite writes its table and column records again).
    table: Table,
    /// Its columns the file records: the table record's, and in all.
    columns: Columns,
}

/// The live shapes of a catalog: id -> WHERE clause.
pub type Shapes = BTreeMap<u32, String>;

/// Where a catalog stood: its first `len` bytes, their crc32c and how many records (the
/// table's included) they hold. A router snapshot records the stamp of the catalog it was
/// taken of, and covers a catalog whose first `len` bytes have that checksum: one rewritten
/// since, or another one, does not match.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    /// Bytes covered (the header and whole records).
    pub len: u64,
    /// Their crc32c.
    pub crc: u32,
    /// Records among them.
    pub records: u64,
}

/// What a router replays of an opened catalog.
#[derive(Debug, PartialEq, Eq)]
pub enum Replay {
    /// Every live shape: no stamp given, or it does not cover this catalog.
    Full(Shapes),
    /// The shape records after the covered prefix, in order: an add (`Some(definition)`) or
    /// a removal (`None`) of a shape id.
    Tail(Vec<(u32, Option<String>)>),
}

impl Catalog {
    /// Opens (creating if needed) the catalog in `dir` for a table with `columns`, and
    /// returns it with what to replay: the records after `covered` — a stamp and how many
    /// columns the table had then — when it covers a prefix of the file (a snapshot of the
    /// router holds the shapes up to there), else every live shape. The catalog's columns
    /// must be the first of `columns`; the others are recorded now (columns added while the
    /// router was closed). Only a full replay rewrites a mostly dead catalog here; after a
    /// tail replay the router asks [`Catalog::rewrite_due`].
    pub fn open(
        dir: &Path,
        columns: &[(String, ColumnType)],
        folding: CaseFolding,
        sync: SyncMode,
        covered: Option<(Stamp, usize)>,
    ) -> Result<(Catalog, Replay)> {
        fs::create_dir_all(dir).map_err(|e| io_error(FileKind::Directory, dir, "create", &e))?;
        let lock = DirLock::acquire(dir)?;
        let path = dir.join(FILE);
        let table = Table::new(columns, folding);
        let (stamp, version, recorded, replay) = match fs::read(&path) {
            Ok(bytes) => {
                let version = read::version(&path, &bytes)?;
                let tail = covered
                    .and_then(|(s, then)| read::read_tail(&path, &bytes, version, s, then, &table));
                match tail {
                    Some((good, stamp, tail, recorded)) => {
                        if good < bytes.len() {
                            durable::truncate(FileKind::Catalog, &path, good as u64)?;
                        }
                        (stamp, version, recorded, Replay::Tail(tail))
                    }
                    None => {
                        let mut shapes = Shapes::new();
                        let each = |kind, id, text: &str| live(&mut shapes, kind, id, text);
                        let (good, records, recorded) =
                            read::read(&path, &bytes, version, &table, each)?;
                        if good < bytes.len() {
                            durable::truncate(FileKind::Catalog, &path, good as u64)?;
                        }
                        if records > 2 * shapes.len() + 1024 {
                            let stamp = rewrite(&path, &table, recorded, &shapes)?;
                            (stamp, VERSION, recorded, Replay::Full(shapes))
                        } else {
                            let stamp = stamp_of(&bytes[..good], records);
                            (stamp, version, recorded, Replay::Full(shapes))
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let shapes = Shapes::new();
                let all = Columns {
                    created: table.len(),
                    known: table.len(),
                };
                (
                    rewrite(&path, &table, all, &shapes)?,
                    VERSION,
                    all,
                    Replay::Full(shapes),
                )
            }
            Err(e) => return Err(io_error(FileKind::Catalog, &path, "read", &e)),
        };
        let file = append_to(&path)?;
        let mut catalog = Catalog {
            path,
            file,
            _lock: lock,
            sync,
            failed: false,
            stamp,
            version,
            table,
            columns: recorded,
        };
        // the router's columns past the catalog's: added while it was closed
        while catalog.columns.known < catalog.table.len() {
            catalog.record_column()?;
        }
        Ok((catalog, replay))
    }

    /// The directory the catalog is in.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Where the file stands now; `None` after a failed append (its end is unknown).
    pub fn stamp(&self) -> Option<Stamp> {
        (!self.failed).then_some(self.stamp)
    }

    /// How many columns its table record names: the table's when it was made (the
    /// narrowest rows a route reads: those from before any column was added).
    pub fn created_columns(&self) -> usize {
        self.columns.created
    }

    /// Whether records outnumber `live` shapes enough that the file should be rewritten
    /// with the live ones alone ([`Catalog::rewrite_live`]).
    pub fn rewrite_due(&self, live: usize) -> bool {
        self.stamp.records > 2 * live as u64 + 1024
    }

    /// Rewrites the file with its table, its columns and its live shapes alone (read back
    /// from it: after a tail replay nothing holds their definitions), atomically, as the
    /// version this build writes.
    pub fn rewrite_live(&mut self) -> Result<()> {
        self.sync()?;
        let bytes = fs::read(&self.path)
            .map_err(|e| io_error(FileKind::Catalog, &self.path, "read", &e))?;
        let mut shapes = Shapes::new();
        let each = |kind, id, text: &str| live(&mut shapes, kind, id, text);
        let version = read::version(&self.path, &bytes)?;
        // (the columns of the file, and of an upgrade the one being added: see `record_column`)
        read::read(&self.path, &bytes, version, &self.table, each)?;
        self.stamp = rewrite(&self.path, &self.table, self.columns, &shapes)?;
        self.version = VERSION;
        self.file = append_to(&self.path)?;
        Ok(())
    }

    /// Records that shape `id` now has definition `definition` (see [`definition`]).
    pub fn add(&mut self, id: u32, definition: &str) -> Result<()> {
        self.append(ADD, id, definition.as_bytes())
    }

    /// Records that shape `id` is gone.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        self.append(REMOVE, id, &[])
    }

    /// Records that column `name` of type `ty` was appended to the table (after the columns
    /// recorded so far).
    pub fn add_column(&mut self, name: &str, ty: &ColumnType) -> Result<()> {
        self.table.truncate(self.columns.known);
        self.table.push(column_line(name, ty));
        let recorded = self.record_column();
        if recorded.is_err() {
            self.table.truncate(self.columns.known);
        }
        recorded
    }

    /// Records the table's first column not recorded yet: a column record appended, or — a
    /// version-1 file, which holds none — the file rewritten as version 2 with it.
    fn record_column(&mut self) -> Result<()> {
        let c = self.columns.known;
        let Some(line) = self.table.line(c).map(str::to_string) else {
            return Ok(());
        };
        if self.version >= 2 {
            self.append(COLUMN, c as u32, line.as_bytes())?;
            self.columns.known += 1;
            return Ok(());
        }
        if self.failed {
            return Err(self.poisoned());
        }
        self.columns.known += 1;
        let rewritten = self.rewrite_live();
        if rewritten.is_err() {
            // the file is the old one or the new one: no more writes
            self.columns.known -= 1;
            self.failed = true;
        }
        rewritten
    }

    /// Makes every record so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| io_error(FileKind::Catalog, &self.path, "fsync", &e))
    }

    fn poisoned(&self) -> Error {
        Error::Poisoned {
            cause: format!("an earlier write to {} failed", self.path.display()),
        }
    }

    fn append(&mut self, kind: u8, id: u32, text: &[u8]) -> Result<()> {
        if self.failed {
            return Err(self.poisoned());
        }
        let rec = record(kind, id, text);
        let written = self
            .file
            .write_all(&rec)
            .map_err(|e| io_error(FileKind::Catalog, &self.path, "write", &e))
            .and_then(|()| match self.sync {
                SyncMode::Always => self.sync(),
                SyncMode::Flush | SyncMode::None => Ok(()),
            });
        match written {
            Ok(()) => {
                self.stamp.len += rec.len() as u64;
                self.stamp.crc = crc32c::crc32c_append(self.stamp.crc, &rec);
                self.stamp.records += 1;
            }
            Err(_) => self.failed = true,
        }
        written
    }
}

/// Replays an add or a removal (`kind`) of shape `id` into `shapes`.
fn live(shapes: &mut Shapes, kind: u8, id: u32, text: &str) {
    if kind == ADD {
        shapes.insert(id, text.to_string());
    } else {
        shapes.remove(&id);
    }
}

/// `path` opened for appending.
fn append_to(path: &Path) -> Result<File> {
    File::options()
        .append(true)
        .open(path)
        .map_err(|e| io_error(FileKind::Catalog, path, "open", &e))
}

/// The stamp of catalog bytes `bytes` holding `records` records.
fn stamp_of(bytes: &[u8], records: usize) -> Stamp {
    Stamp {
        len: bytes.len() as u64,
        crc: crc32c::crc32c(bytes),
        records: records as u64,
    }
}

/// A shape's definition text: `sql`, then each parameter (see the module doc). `None` when a
/// parameter holds a NUL (PostgreSQL text never does).
pub fn definition(sql: &str, params: &[Option<String>]) -> Option<String> {
    let mut out = sql.to_string();
    for p in params {
        out.push('\0');
        match p {
            Some(v) if v.contains('\0') => return None,
            Some(v) => {
                out.push('v');
                out.push_str(v);
            }
            None => out.push('n'),
        }
    }
    Some(out)
}

/// The WHERE clause and parameters of a definition text (see [`definition`]).
pub fn split_definition(text: &str) -> (&str, Vec<Option<String>>) {
    let mut parts = text.split('\0');
    let sql = parts.next().unwrap_or_default();
    let params = parts
        .map(|p| p.strip_prefix('v').map(str::to_string))
        .collect();
    (sql, params)
}

/// The live shapes recorded in catalog bytes `bytes` of a table with `columns` (a torn last
/// record is ignored; the catalog's columns must be the first of `columns`): the decoder
/// `open` uses, for tools and fuzzing.
pub fn decode(
    bytes: &[u8],
    columns: &[(String, ColumnType)],
    folding: CaseFolding,
) -> Result<Shapes> {
    let path = Path::new(FILE);
    let mut shapes = Shapes::new();
    let each = |kind, id, text: &str| live(&mut shapes, kind, id, text);
    let version = read::version(path, bytes)?;
    read::read(path, bytes, version, &Table::new(columns, folding), each)?;
    Ok(shapes)
}

fn record(kind: u8, id: u32, text: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(5 + text.len());
    payload.push(kind);
    payload.extend_from_slice(&id.to_le_bytes());
    payload.extend_from_slice(text);
    let mut rec = Vec::with_capacity(FRAMING.encoded_len(payload.len()));
    FRAMING.encode(&[], &payload, &mut rec);
    rec
}

/// Writes a catalog of `table`'s `columns` (its table record, then a column record per
/// column added since) holding just `shapes`, atomically; its stamp.
fn rewrite(path: &Path, table: &Table, columns: Columns, shapes: &Shapes) -> Result<Stamp> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&record(TABLE, 0, table.record(columns.created).as_bytes()));
    let added = table.lines(columns.created, columns.known);
    for (c, line) in (columns.created..).zip(added) {
        bytes.extend_from_slice(&record(COLUMN, c as u32, line.as_bytes()));
    }
    for (id, sql) in shapes {
        bytes.extend_from_slice(&record(ADD, *id, sql.as_bytes()));
    }
    durable::write_atomically(path, &bytes, FileKind::Catalog, CRASH_POINTS)?;
    Ok(stamp_of(&bytes, 1 + added.len() + shapes.len()))
}

#[cfg(test)]
mod tests;
