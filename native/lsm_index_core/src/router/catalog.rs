//! The shape catalog of a persistent router: every shape added or removed, appended to one
//! file and replayed at open (the router's index and programs are rebuilt from it in memory).
//!
//! ```text
//! <dir>/LOCK         flock'ed while a router has the directory open
//! <dir>/shapes.log   "LSMSHAPE" | version u32 LE | record*
//! record             len u32 LE | crc32c(payload) u32 LE | payload (len bytes)
//!                    (the `durable::frame` codec with no prefix)
//! payload            kind u8 (0 table, 1 add, 2 remove) | shape id u32 LE | text
//! ```
//!
//! The first record (kind 0) names the table's columns (`name\ttype\n` each, the type as
//! `ColumnType::describe` writes it: `int8`, `enum('a','b')`, `enum "mood"('sad','ok')` for a
//! named enum; then `\tcase_folding c\n` for a router folding case as under `LC_CTYPE=C`); a
//! router opened with other columns is refused. (Named enums added a spelling, not a format:
//! every table a catalog of version 1 could hold is written as it was.) An add's text is the shape's definition: its WHERE clause,
//! then per `$n` parameter a NUL and `v` + the value's text, or `n` for NULL (a clause never
//! holds a NUL, so clauses recorded before parameters existed read the same). At open, an incomplete
//! last record (a crash mid-append) is cut off; a complete record with a bad checksum is an
//! error (`ChecksumMismatch`), never skipped. When dead records outnumber live shapes the
//! file is rewritten (temp file, fsync, rename, directory fsync).

use crate::durable::{self, io_error, CrashPoints, DirLock, Framing};
use crate::error::{Error, FileKind, Result};
use crate::predicate::{CaseFolding, ColumnType};
use crate::wal::SyncMode;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LSMSHAPE";
const VERSION: u32 = 1;
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
    /// The table record's text (a rewrite writes it again).
    table: String,
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
    /// The records after the covered prefix, in order: an add (`Some(definition)`) or a
    /// removal (`None`) of a shape id.
    Tail(Vec<(u32, Option<String>)>),
}

impl Catalog {
    /// Opens (creating if needed) the catalog in `dir` for a table with `columns`, and
    /// returns it with what to replay: the records after `covered` when it covers a prefix
    /// of the file (a snapshot of the router holds the shapes up to there), else every
    /// live shape. Only a full replay rewrites a mostly dead catalog here; after a tail
    /// replay the router asks [`Catalog::rewrite_due`].
    pub fn open(
        dir: &Path,
        columns: &[(String, ColumnType)],
        folding: CaseFolding,
        sync: SyncMode,
        covered: Option<Stamp>,
    ) -> Result<(Catalog, Replay)> {
        fs::create_dir_all(dir).map_err(|e| io_error(FileKind::Directory, dir, "create", &e))?;
        let lock = DirLock::acquire(dir)?;
        let path = dir.join(FILE);
        let table = table_text(columns, folding);
        let (stamp, replay) = match fs::read(&path) {
            Ok(bytes) => match covered.and_then(|s| read_tail(&path, &bytes, s, &table)) {
                Some((good, stamp, tail)) => {
                    if good < bytes.len() {
                        durable::truncate(FileKind::Catalog, &path, good as u64)?;
                    }
                    (stamp, Replay::Tail(tail))
                }
                None => {
                    let mut shapes = Shapes::new();
                    let (good, records) = read(&path, &bytes, &table, &mut shapes)?;
                    if good < bytes.len() {
                        durable::truncate(FileKind::Catalog, &path, good as u64)?;
                    }
                    let stamp = if records > 2 * shapes.len() + 1024 {
                        rewrite(&path, &table, &shapes)?
                    } else {
                        stamp_of(&bytes[..good], records)
                    };
                    (stamp, Replay::Full(shapes))
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let shapes = Shapes::new();
                (rewrite(&path, &table, &shapes)?, Replay::Full(shapes))
            }
            Err(e) => return Err(io_error(FileKind::Catalog, &path, "read", &e)),
        };
        let file = append_to(&path)?;
        let catalog = Catalog {
            path,
            file,
            _lock: lock,
            sync,
            failed: false,
            stamp,
            table,
        };
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

    /// Whether records outnumber `live` shapes enough that the file should be rewritten
    /// with the live ones alone ([`Catalog::rewrite_live`]).
    pub fn rewrite_due(&self, live: usize) -> bool {
        self.stamp.records > 2 * live as u64 + 1024
    }

    /// Rewrites the file with its live shapes alone (read back from it: after a tail
    /// replay nothing holds their definitions), atomically.
    pub fn rewrite_live(&mut self) -> Result<()> {
        self.sync()?;
        let bytes = fs::read(&self.path)
            .map_err(|e| io_error(FileKind::Catalog, &self.path, "read", &e))?;
        let mut shapes = Shapes::new();
        read(&self.path, &bytes, &self.table, &mut shapes)?;
        self.stamp = rewrite(&self.path, &self.table, &shapes)?;
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

    /// Makes every record so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| io_error(FileKind::Catalog, &self.path, "fsync", &e))
    }

    fn append(&mut self, kind: u8, id: u32, text: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned {
                cause: format!("an earlier write to {} failed", self.path.display()),
            });
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

/// The records of `bytes` after the prefix `covered` stamps, if it does stamp a prefix
/// of them: (the end of the whole records, the stamp there, the records in order). `None`
/// when it does not, or when the records after it do not read (the full read then says
/// what is wrong).
#[allow(clippy::type_complexity)]
fn read_tail(
    path: &Path,
    bytes: &[u8],
    covered: Stamp,
    table: &str,
) -> Option<(usize, Stamp, Vec<(u32, Option<String>)>)> {
    let start = usize::try_from(covered.len).ok()?;
    let prefix = bytes.get(..start)?;
    if start < HEADER || covered.records == 0 || crc32c::crc32c(prefix) != covered.crc {
        return None;
    }
    let mut tail = Vec::new();
    let each = |kind: u8, id: u32, text: &str| {
        tail.push((id, (kind == ADD).then(|| text.to_string())));
    };
    let (good, read) = records(path, bytes, start, covered.records as usize, table, each).ok()?;
    let stamp = Stamp {
        len: good as u64,
        crc: crc32c::crc32c_append(covered.crc, &bytes[start..good]),
        records: read as u64,
    };
    Some((good, stamp, tail))
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
/// record is ignored): the decoder `open` uses, for tools and fuzzing.
pub fn decode(
    bytes: &[u8],
    columns: &[(String, ColumnType)],
    folding: CaseFolding,
) -> Result<Shapes> {
    let mut shapes = Shapes::new();
    read(
        Path::new(FILE),
        bytes,
        &table_text(columns, folding),
        &mut shapes,
    )?;
    Ok(shapes)
}

/// The table record's text: `name\ttype\n` per column, then `\tcase_folding c\n` under
/// `LC_CTYPE=C` (nothing for the default, so catalogs written before the option read the same).
pub(super) fn table_text(columns: &[(String, ColumnType)], folding: CaseFolding) -> String {
    let mut text: String = columns
        .iter()
        .map(|(name, ty)| format!("{name}\t{}\n", ty.describe()))
        .collect();
    if folding != CaseFolding::Unicode {
        text.push_str(&format!("\tcase_folding {}\n", folding.name()));
    }
    text
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

/// Replays `bytes` into `shapes`: (bytes that are whole records, records read).
fn read(path: &Path, bytes: &[u8], table: &str, shapes: &mut Shapes) -> Result<(usize, usize)> {
    let what = path.display().to_string();
    match bytes.get(..HEADER) {
        Some(h) if &h[..8] == MAGIC => {}
        None if bytes.starts_with(MAGIC) => {
            return Err(Error::Corrupt {
                file: FileKind::Catalog,
                what,
                detail: "shorter than the catalog header".into(),
            })
        }
        _ => {
            return Err(Error::BadMagic {
                file: FileKind::Catalog,
                what,
            })
        }
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: FileKind::Catalog,
            what,
            version,
        });
    }
    let each = |kind: u8, id: u32, text: &str| {
        if kind == ADD {
            shapes.insert(id, text.to_string());
        } else {
            shapes.remove(&id);
        }
    };
    records(path, bytes, HEADER, 0, table, each)
}

/// Reads the records of `bytes` from offset `start`, `before` records having preceded it
/// (the first record of a file names the table), handing each add and removal to `each`
/// (kind, shape id, text): (bytes that are whole records, records read in all).
fn records(
    path: &Path,
    bytes: &[u8],
    start: usize,
    before: usize,
    table: &str,
    mut each: impl FnMut(u8, u32, &str),
) -> Result<(usize, usize)> {
    let what = path.display().to_string();
    let corrupt = |detail: String| Error::Corrupt {
        file: FileKind::Catalog,
        what: what.clone(),
        detail,
    };
    let mut frames = FRAMING.read(bytes, start, FileKind::Catalog, &what);
    let mut records = before;
    for frame in &mut frames {
        let frame = frame?;
        let (at, payload) = (frame.at, frame.payload);
        let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let text = std::str::from_utf8(&payload[5..])
            .map_err(|_| corrupt(format!("record at byte {at}: text is not UTF-8")))?;
        match (records, payload[0]) {
            (0, TABLE) if text == table => {}
            (0, TABLE) => {
                return Err(Error::TableMismatch {
                    path: what.clone(),
                    columns: text.lines().map(str::to_string).collect(),
                })
            }
            (0, _) => return Err(corrupt("the first record does not name the table".into())),
            (_, kind @ (ADD | REMOVE)) => each(kind, id, text),
            (_, kind) => return Err(corrupt(format!("record at byte {at}: kind {kind}"))),
        }
        records += 1;
    }
    if records == 0 {
        return Err(corrupt("the table record is missing".into()));
    }
    Ok((frames.end(), records))
}

/// Writes a catalog holding just `shapes`, atomically; its stamp.
fn rewrite(path: &Path, table: &str, shapes: &Shapes) -> Result<Stamp> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&record(TABLE, 0, table.as_bytes()));
    for (id, sql) in shapes {
        bytes.extend_from_slice(&record(ADD, *id, sql.as_bytes()));
    }
    durable::write_atomically(path, &bytes, FileKind::Catalog, CRASH_POINTS)?;
    Ok(stamp_of(&bytes, shapes.len() + 1))
}

#[cfg(test)]
mod tests;
