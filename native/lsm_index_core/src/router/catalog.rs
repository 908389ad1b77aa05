//! The shape catalog of a persistent router: every shape added or removed, appended to one
//! file and replayed at open (the router's index and programs are rebuilt from it in memory).
//!
//! ```text
//! <dir>/LOCK         flock'ed while a router has the directory open
//! <dir>/shapes.log   "LSMSHAPE" | version u32 LE | record*
//! record             len u32 LE | crc32c(payload) u32 LE | payload (len bytes)
//! payload            kind u8 (0 table, 1 add, 2 remove) | shape id u32 LE | text
//! ```
//!
//! The first record (kind 0) names the table's columns (`name\ttype\n` each); a router opened
//! with other columns is refused. An add's text is the WHERE clause. At open, an incomplete
//! last record (a crash mid-append) is cut off; a complete record with a bad checksum is
//! corruption. When dead records outnumber live shapes the file is rewritten (temp file,
//! fsync, rename, directory fsync).

use crate::error::{Error, Result};
use crate::manifest::{io_error, sync_dir};
use crate::predicate::ColumnType;
use crate::wal::SyncMode;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 8] = b"LSMSHAPE";
const VERSION: u32 = 1;
const HEADER: usize = 12;
const FILE: &str = "shapes.log";
/// Longest payload accepted when reading (a 1 MiB clause plus its id and kind).
const MAX_PAYLOAD: usize = (1 << 20) + 5;

const TABLE: u8 = 0;
const ADD: u8 = 1;
const REMOVE: u8 = 2;

/// An open catalog, appending.
pub struct Catalog {
    path: PathBuf,
    file: File,
    /// Holds the directory's flock.
    _lock: File,
    sync: SyncMode,
    /// A failed append may have left a partial record: no more appends.
    failed: bool,
}

/// The live shapes of a catalog: id -> WHERE clause.
pub type Shapes = BTreeMap<u32, String>;

impl Catalog {
    /// Opens (creating if needed) the catalog in `dir` for a table with `columns`, and
    /// returns it with the live shapes to replay.
    pub fn open(
        dir: &Path,
        columns: &[(String, ColumnType)],
        sync: SyncMode,
    ) -> Result<(Catalog, Shapes)> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, "create directory", &e))?;
        let lock = lock(dir)?;
        let path = dir.join(FILE);
        let table = table_text(columns);
        let mut shapes = Shapes::new();
        match fs::read(&path) {
            Ok(bytes) => {
                let (good, records) = read(&path, &bytes, &table, &mut shapes)?;
                if good < bytes.len() {
                    cut(&path, good)?;
                }
                if records > 2 * shapes.len() + 1024 {
                    rewrite(dir, &path, &table, &shapes)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                rewrite(dir, &path, &table, &shapes)?;
            }
            Err(e) => return Err(io_error(&path, "read", &e)),
        }
        let file = File::options()
            .append(true)
            .open(&path)
            .map_err(|e| io_error(&path, "open", &e))?;
        Ok((
            Catalog {
                path,
                file,
                _lock: lock,
                sync,
                failed: false,
            },
            shapes,
        ))
    }

    /// Records that shape `id` now has WHERE clause `sql`.
    pub fn add(&mut self, id: u32, sql: &str) -> Result<()> {
        self.append(ADD, id, sql.as_bytes())
    }

    /// Records that shape `id` is gone.
    pub fn remove(&mut self, id: u32) -> Result<()> {
        self.append(REMOVE, id, &[])
    }

    /// Makes every record so far durable.
    pub fn sync(&mut self) -> Result<()> {
        self.file
            .sync_data()
            .map_err(|e| io_error(&self.path, "fsync", &e))
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
            .map_err(|e| io_error(&self.path, "write", &e))
            .and_then(|()| match self.sync {
                SyncMode::Always => self.sync(),
                SyncMode::Flush | SyncMode::None => Ok(()),
            });
        if written.is_err() {
            self.failed = true;
        }
        written
    }
}

/// The live shapes recorded in catalog bytes `bytes` of a table with `columns` (a torn last
/// record is ignored): the decoder `open` uses, for tools and fuzzing.
pub fn decode(bytes: &[u8], columns: &[(String, ColumnType)]) -> Result<Shapes> {
    let mut shapes = Shapes::new();
    read(Path::new(FILE), bytes, &table_text(columns), &mut shapes)?;
    Ok(shapes)
}

fn lock(dir: &Path) -> Result<File> {
    let path = dir.join("LOCK");
    let lock = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| io_error(&path, "open", &e))?;
    match lock.try_lock() {
        Ok(()) => Ok(lock),
        Err(fs::TryLockError::WouldBlock) => Err(Error::Locked {
            path: dir.display().to_string(),
        }),
        Err(fs::TryLockError::Error(e)) => Err(io_error(&path, "lock", &e)),
    }
}

fn table_text(columns: &[(String, ColumnType)]) -> String {
    columns
        .iter()
        .map(|(name, ty)| format!("{name}\t{}\n", ty.name()))
        .collect()
}

fn record(kind: u8, id: u32, text: &[u8]) -> Vec<u8> {
    let mut payload = Vec::with_capacity(5 + text.len());
    payload.push(kind);
    payload.extend_from_slice(&id.to_le_bytes());
    payload.extend_from_slice(text);
    let mut rec = Vec::with_capacity(8 + payload.len());
    rec.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    rec.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    rec.extend_from_slice(&payload);
    rec
}

/// Replays `bytes` into `shapes`: (bytes that are whole records, records read).
fn read(path: &Path, bytes: &[u8], table: &str, shapes: &mut Shapes) -> Result<(usize, usize)> {
    let corrupt = |detail: String| Error::Corrupt {
        what: path.display().to_string(),
        detail,
    };
    if bytes.len() < HEADER || &bytes[..8] != MAGIC {
        return Err(corrupt("not a shape catalog (bad magic)".into()));
    }
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            what: path.display().to_string(),
            version: u16::try_from(version).unwrap_or(u16::MAX),
        });
    }
    let (mut at, mut records) = (HEADER, 0);
    while let Some(head) = bytes.get(at..at + 8) {
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if !(5..=MAX_PAYLOAD).contains(&len) {
            return Err(corrupt(format!("record at byte {at}: length {len}")));
        }
        let Some(payload) = bytes.get(at + 8..at + 8 + len) else {
            break; // torn tail
        };
        if crc32c::crc32c(payload) != crc {
            return Err(corrupt(format!("record at byte {at}: checksum mismatch")));
        }
        let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let text = std::str::from_utf8(&payload[5..])
            .map_err(|_| corrupt(format!("record at byte {at}: text is not UTF-8")))?;
        match (records, payload[0]) {
            (0, TABLE) if text == table => {}
            (0, TABLE) => {
                return Err(Error::InvalidConfig {
                    option: "columns",
                    reason: format!(
                        "the shape catalog {} belongs to a table with columns {:?}",
                        path.display(),
                        text.lines().collect::<Vec<_>>()
                    ),
                })
            }
            (0, _) => return Err(corrupt("the first record does not name the table".into())),
            (_, ADD) => {
                shapes.insert(id, text.to_string());
            }
            (_, REMOVE) => {
                shapes.remove(&id);
            }
            (_, kind) => return Err(corrupt(format!("record at byte {at}: kind {kind}"))),
        }
        at += 8 + len;
        records += 1;
    }
    if records == 0 {
        return Err(corrupt("the table record is missing".into()));
    }
    Ok((at, records))
}

/// Cuts a torn last record off.
fn cut(path: &Path, len: usize) -> Result<()> {
    let f = File::options()
        .write(true)
        .open(path)
        .map_err(|e| io_error(path, "open", &e))?;
    f.set_len(len as u64)
        .and_then(|()| f.sync_all())
        .map_err(|e| io_error(path, "truncate", &e))
}

/// Writes a catalog holding just `shapes`, atomically.
fn rewrite(dir: &Path, path: &Path, table: &str, shapes: &Shapes) -> Result<()> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&record(TABLE, 0, table.as_bytes()));
    for (id, sql) in shapes {
        bytes.extend_from_slice(&record(ADD, *id, sql.as_bytes()));
    }
    let tmp = dir.join(format!("{FILE}.tmp"));
    crate::manifest::write_durably(&tmp, &bytes)?;
    fs::rename(&tmp, path).map_err(|e| io_error(path, "rename", &e))?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols() -> Vec<(String, ColumnType)> {
        vec![("a".into(), ColumnType::Int8)]
    }

    #[test]
    fn replays_adds_and_removes_and_cuts_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut c, shapes) = Catalog::open(dir.path(), &cols(), SyncMode::Flush).unwrap();
            assert!(shapes.is_empty());
            c.add(1, "a = 1").unwrap();
            c.add(2, "a = 2").unwrap();
            c.add(1, "a = 3").unwrap();
            c.remove(2).unwrap();
            c.sync().unwrap();
        }
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        bytes.extend_from_slice(&record(ADD, 9, b"a = 9")[..7]);
        fs::write(&path, &bytes).unwrap();
        let (_c, shapes) = Catalog::open(dir.path(), &cols(), SyncMode::Flush).unwrap();
        assert_eq!(shapes, Shapes::from([(1, "a = 3".to_string())]));
    }

    #[test]
    fn refuses_corruption_other_columns_and_a_second_opener() {
        let dir = tempfile::tempdir().unwrap();
        let (mut c, _) = Catalog::open(dir.path(), &cols(), SyncMode::Always).unwrap();
        c.add(1, "a = 1").unwrap();
        assert!(matches!(
            Catalog::open(dir.path(), &cols(), SyncMode::Flush),
            Err(Error::Locked { .. })
        ));
        drop(c);
        let other = vec![("b".to_string(), ColumnType::Text)];
        assert!(matches!(
            Catalog::open(dir.path(), &other, SyncMode::Flush),
            Err(Error::InvalidConfig { .. })
        ));
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            Catalog::open(dir.path(), &cols(), SyncMode::Flush),
            Err(Error::Corrupt { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn damaged_catalogs_decode_or_fail_cleanly(
            flips in proptest::collection::vec((0usize..200, 0u8..8), 0..4),
            cut_at in 0usize..200,
        ) {
            let mut bytes = b"LSMSHAPE".to_vec();
            bytes.extend_from_slice(&VERSION.to_le_bytes());
            bytes.extend_from_slice(&record(TABLE, 0, table_text(&cols()).as_bytes()));
            bytes.extend_from_slice(&record(ADD, 7, b"a = 1"));
            bytes.extend_from_slice(&record(REMOVE, 7, b""));
            for (at, bit) in flips {
                let i = at % bytes.len();
                bytes[i] ^= 1 << bit;
            }
            bytes.truncate(cut_at.max(1).min(bytes.len()));
            let _ = decode(&bytes, &cols());
        }
    }

    #[test]
    fn rewrites_when_mostly_dead() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut c, _) = Catalog::open(dir.path(), &cols(), SyncMode::None).unwrap();
            for i in 0..3000 {
                c.add(i % 10, &format!("a = {i}")).unwrap();
            }
        }
        let before = fs::metadata(dir.path().join(FILE)).unwrap().len();
        let (_c, shapes) = Catalog::open(dir.path(), &cols(), SyncMode::None).unwrap();
        let after = fs::metadata(dir.path().join(FILE)).unwrap().len();
        assert_eq!(shapes.len(), 10);
        assert_eq!(shapes[&9], "a = 2999");
        assert!(after < before / 100, "{before} -> {after}");
    }
}
