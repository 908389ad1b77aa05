//! The log of a persistent router over declared tables: its shapes and the counts of its
//! views, appended by each `flush(position)` and replayed at open up to the last complete
//! checkpoint (plan §5.1).
//!
//! ```text
//! <dir>/LOCK        flock'ed while a router has the directory open
//! <dir>/views.log   "LSMVIEWS" | version u32 LE (1) | view index secret (16 B) | record*
//! record            len u32 LE | crc32c(payload) u32 LE | payload   (`durable::frame`)
//! payload           kind u8 | body (integers LE; bytes as len u32 + bytes)
//!   0 TABLES      text: the tables (schema, name, columns) and case folding
//!   1 SHAPE       name | table u32 | definition (sql, NUL-separated parameters)
//!   2 UNSHAPE     name
//!   3 COUNT       view key u128 | value key | count u64            (absolute; 0: gone)
//!   4 NULLS       view key | count u64                             (absolute)
//!   5 TRUNCATE    view key                                         (its counts cleared)
//!   6 LINK        parent view key | y | x? (u8 0/1 + bytes) | count i64 | x text (n u8 | cell*)
//!   7 LINK_CLEAR  parent view key
//!   8 DROP        view key                                         (counts, NULLs, link gone)
//!   9 DIFFS       n u32 | (name | position u8 | nulls i64 | present i64 | m u32 | (fp u64, d i64)*)*
//!  10 CHECKPOINT  position (the caller's stream position)
//! name: tag u8 (0: integer handle u32; 1: bytes) ; cell: u8 0 (NULL) / 1 + bytes
//! ```
//!
//! Records between two checkpoints are one flush: a reopen applies them only when the flush's
//! `CHECKPOINT` is complete, so a torn or unfinished flush leaves the state of the one before
//! (the file is cut back there). A complete record with a bad checksum is an error
//! (`ChecksumMismatch`), never skipped. Views are named by key, never by number (numbers are
//! reused); counts are absolute, so the last record of a value decides. The secret is the
//! view index's: a diff's fingerprints stay valid across a reopen.

use crate::durable::{self, io_error, CrashPoints, DirLock, Framing};
use crate::error::{Error, FileKind, Result};
use crate::hash::HashSecret;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

mod record;
use record::decode_record;
pub use record::{encode, Cells, DiffRecord, Record};

const MAGIC: &[u8; 8] = b"LSMVIEWS";
const VERSION: u32 = 1;
const HEADER: usize = 28;
const FILE: &str = "views.log";
pub(super) const FRAMING: Framing = Framing {
    prefix: 0,
    min_payload: 1,
    max_payload: 1 << 30,
};
const CRASH_POINTS: CrashPoints = CrashPoints {
    written: "views:tmp_written",
    renamed: "views:renamed",
};

/// A link's pairs: (y, x) ⇒ (rows, x's text).
pub type LinkPairs = HashMap<(Vec<u8>, Option<Vec<u8>>), (i64, Cells)>;

/// The state a log replays to.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct State {
    /// Shapes by the order of their last definition: seq ⇒ (name, table, definition).
    pub shapes: BTreeMap<u64, (Vec<u8>, u32, String)>,
    by_name: HashMap<Vec<u8>, u64>,
    seq: u64,
    /// View key ⇒ value key ⇒ count (≥ 1).
    pub counts: HashMap<u128, HashMap<Vec<u8>, u64>>,
    /// View key ⇒ NULL rows (≥ 1).
    pub nulls: HashMap<u128, u64>,
    /// Derived view key ⇒ its link's pairs.
    pub links: HashMap<u128, LinkPairs>,
    /// The diffs.
    pub diffs: Vec<DiffRecord>,
    /// The last checkpoint's position.
    pub position: Option<Vec<u8>>,
}

impl State {
    fn apply(&mut self, r: Record) {
        match r {
            Record::Tables(_) => {}
            Record::Shape {
                name,
                table,
                definition,
            } => {
                if let Some(old) = self.by_name.remove(&name) {
                    self.shapes.remove(&old);
                }
                self.seq += 1;
                self.by_name.insert(name.clone(), self.seq);
                self.shapes.insert(self.seq, (name, table, definition));
            }
            Record::Unshape { name } => {
                if let Some(old) = self.by_name.remove(&name) {
                    self.shapes.remove(&old);
                }
            }
            Record::Count { view, value, count } => {
                let values = self.counts.entry(view).or_default();
                if count == 0 {
                    values.remove(&value);
                    if values.is_empty() {
                        self.counts.remove(&view);
                    }
                } else {
                    values.insert(value, count);
                }
            }
            Record::Nulls { view, count } => {
                if count == 0 {
                    self.nulls.remove(&view);
                } else {
                    self.nulls.insert(view, count);
                }
            }
            Record::Truncate { view } => {
                self.counts.remove(&view);
                self.nulls.remove(&view);
            }
            Record::Link {
                parent,
                y,
                x,
                count,
                text,
            } => {
                let pairs = self.links.entry(parent).or_default();
                if count == 0 {
                    pairs.remove(&(y, x));
                    if pairs.is_empty() {
                        self.links.remove(&parent);
                    }
                } else {
                    pairs.insert((y, x), (count, text));
                }
            }
            Record::LinkClear { parent } => {
                self.links.remove(&parent);
            }
            Record::Drop { view } => {
                self.counts.remove(&view);
                self.nulls.remove(&view);
                self.links.remove(&view);
            }
            Record::Diffs(diffs) => self.diffs = diffs,
            Record::Checkpoint { position } => self.position = Some(position),
        }
    }

    /// The records that rebuild this state (a rewrite), ending with its checkpoint.
    fn records(&self) -> Vec<Record> {
        let mut out = Vec::new();
        for (name, table, definition) in self.shapes.values() {
            out.push(Record::Shape {
                name: name.clone(),
                table: *table,
                definition: definition.clone(),
            });
        }
        for (&view, values) in &self.counts {
            for (value, &count) in values {
                out.push(Record::Count {
                    view,
                    value: value.clone(),
                    count,
                });
            }
        }
        for (&view, &count) in &self.nulls {
            out.push(Record::Nulls { view, count });
        }
        for (&parent, pairs) in &self.links {
            for ((y, x), (count, text)) in pairs {
                out.push(Record::Link {
                    parent,
                    y: y.clone(),
                    x: x.clone(),
                    count: *count,
                    text: text.clone(),
                });
            }
        }
        out.push(Record::Diffs(self.diffs.clone()));
        out.push(Record::Checkpoint {
            position: self.position.clone().unwrap_or_default(),
        });
        out
    }

    /// Live records (how big a rewrite would be).
    fn live(&self) -> usize {
        self.shapes.len()
            + self.counts.values().map(HashMap::len).sum::<usize>()
            + self.nulls.len()
            + self.links.values().map(HashMap::len).sum::<usize>()
            + 2
    }
}

/// An open log, appending flushes.
pub struct ViewsLog {
    path: PathBuf,
    file: File,
    _lock: DirLock,
    /// Records in the file.
    records: usize,
    /// The replayed state after the last flush, kept to rewrite the file when it has grown.
    state: State,
    tables: String,
    secret: HashSecret,
    /// A failed append may have left a partial flush: no more appends.
    failed: bool,
}

impl ViewsLog {
    /// Opens (creating if needed) the log in `dir` of a router over `tables` (their text);
    /// a new log gets `secret`. Returns the log, the state to restore and the secret.
    pub fn open(dir: &Path, tables: &str, secret: HashSecret) -> Result<(ViewsLog, State)> {
        fs::create_dir_all(dir).map_err(|e| io_error(FileKind::Directory, dir, "create", &e))?;
        let lock = DirLock::acquire(dir)?;
        let path = dir.join(FILE);
        let (state, secret, records) = match fs::read(&path) {
            Ok(bytes) => {
                let (state, secret, good, records) = read(&path, &bytes, tables)?;
                if good < bytes.len() {
                    durable::truncate(FileKind::Views, &path, good as u64)?;
                }
                (state, secret, records)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let state = State::default();
                rewrite(&path, tables, &secret, &[])?;
                (state, secret, 1)
            }
            Err(e) => return Err(io_error(FileKind::Views, &path, "read", &e)),
        };
        let file = File::options()
            .append(true)
            .open(&path)
            .map_err(|e| io_error(FileKind::Views, &path, "open", &e))?;
        let mut log = ViewsLog {
            path,
            file,
            _lock: lock,
            records,
            state: state.clone(),
            tables: tables.to_string(),
            secret,
            failed: false,
        };
        log.compact_if_grown()?;
        Ok((log, state))
    }

    /// The position of the last flush (`None`: never flushed).
    pub fn position(&self) -> Option<&[u8]> {
        self.state.position.as_deref()
    }

    /// The view index secret of this log.
    pub fn secret(&self) -> HashSecret {
        self.secret
    }

    /// Appends one flush: `records`, then a checkpoint at `position`; durable when it returns.
    pub fn flush(&mut self, records: Vec<Record>, position: &[u8]) -> Result<()> {
        if self.failed {
            return Err(Error::Poisoned {
                cause: format!("an earlier write to {} failed", self.path.display()),
            });
        }
        let mut bytes = Vec::new();
        for r in &records {
            encode(r, &mut bytes);
        }
        let checkpoint = Record::Checkpoint {
            position: position.to_vec(),
        };
        encode(&checkpoint, &mut bytes);
        let (first, rest) = bytes.split_at(bytes.len() / 2);
        let written = self
            .file
            .write_all(first)
            .and_then(|()| {
                crate::failpoint::hit("views:torn");
                self.file.write_all(rest)
            })
            .and_then(|()| {
                crate::failpoint::hit("views:written");
                self.file.sync_data()
            })
            .map_err(|e| io_error(FileKind::Views, &self.path, "write", &e));
        if let Err(e) = written {
            self.failed = true;
            return Err(e);
        }
        self.records += records.len() + 1;
        for r in records {
            self.state.apply(r);
        }
        self.state.apply(checkpoint);
        self.compact_if_grown()
    }

    /// Rewrites the file from its state when dead records outnumber live ones.
    fn compact_if_grown(&mut self) -> Result<()> {
        let live = self.state.live();
        if self.records <= 2 * live + 1024 {
            return Ok(());
        }
        let records = self.state.records();
        rewrite(&self.path, &self.tables, &self.secret, &records)?;
        self.records = records.len() + 1;
        self.file = File::options()
            .append(true)
            .open(&self.path)
            .map_err(|e| io_error(FileKind::Views, &self.path, "open", &e))?;
        Ok(())
    }
}

/// The state a log's bytes replay to (a torn or unfinished last flush ignored), for tools
/// and fuzzing: the decoder `open` uses.
pub fn decode(bytes: &[u8], tables: &str) -> Result<State> {
    read(Path::new(FILE), bytes, tables).map(|(state, ..)| state)
}

/// Replays `bytes`: (state at the last checkpoint, secret, end of that checkpoint, records
/// up to it).
fn read(path: &Path, bytes: &[u8], tables: &str) -> Result<(State, HashSecret, usize, usize)> {
    let what = path.display().to_string();
    let corrupt = |detail: String| Error::Corrupt {
        file: FileKind::Views,
        what: what.clone(),
        detail,
    };
    if !bytes.starts_with(MAGIC) {
        return Err(Error::BadMagic {
            file: FileKind::Views,
            what,
        });
    }
    let Some(header) = bytes.get(..HEADER) else {
        return Err(corrupt("shorter than its header".into()));
    };
    let version = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: FileKind::Views,
            what,
            version,
        });
    }
    let mut secret = [0u8; 16];
    secret.copy_from_slice(&header[12..28]);
    let mut state = State::default();
    let mut pending: Vec<Record> = Vec::new();
    let mut frames = FRAMING.read(bytes, HEADER, FileKind::Views, &what);
    let (mut good, mut records, mut seen) = (0, 0, 0);
    for frame in &mut frames {
        let frame = frame?;
        let record = decode_record(frame.payload)
            .ok_or_else(|| corrupt(format!("record at byte {} does not decode", frame.at)))?;
        seen += 1;
        match (seen, record) {
            (1, Record::Tables(text)) if text == tables => {
                good = frame.at + FRAMING.encoded_len(frame.payload.len());
                records = 1;
            }
            (1, Record::Tables(text)) => {
                return Err(Error::TableMismatch {
                    path: what.clone(),
                    columns: text.lines().map(str::to_string).collect(),
                })
            }
            (1, _) => return Err(corrupt("the first record does not name the tables".into())),
            (_, Record::Checkpoint { position }) => {
                for r in pending.drain(..) {
                    state.apply(r);
                }
                state.apply(Record::Checkpoint { position });
                good = frame.at + FRAMING.encoded_len(frame.payload.len());
                records = seen;
            }
            (_, r) => pending.push(r),
        }
    }
    if seen == 0 {
        return Err(corrupt("the tables record is missing".into()));
    }
    Ok((state, HashSecret(secret), good, records))
}

/// Writes a log holding `records` after its header and tables record, atomically.
fn rewrite(path: &Path, tables: &str, secret: &HashSecret, records: &[Record]) -> Result<()> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(MAGIC);
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    bytes.extend_from_slice(&secret.0);
    encode(&Record::Tables(tables.to_string()), &mut bytes);
    for r in records {
        encode(r, &mut bytes);
    }
    durable::write_atomically(path, &bytes, FileKind::Views, CRASH_POINTS)
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(super) fn sample() -> Vec<Record> {
        vec![
            Record::Shape {
                name: vec![0, 1, 0, 0, 0],
                table: 1,
                definition: "a IN (SELECT b FROM t)\0v7".into(),
            },
            Record::Count {
                view: 7 << 100,
                value: vec![1, 2, 3],
                count: 2,
            },
            Record::Nulls { view: 9, count: 1 },
            Record::Link {
                parent: 5,
                y: vec![4],
                x: None,
                count: 3,
                text: vec![None, Some(b"x".to_vec())],
            },
            Record::Truncate { view: 9 },
            Record::Diffs(vec![DiffRecord {
                name: vec![1, b'n'],
                position: 2,
                nulls: -1,
                present: 1,
                entries: vec![(3, 4), (5, -6)],
            }]),
            Record::Unshape { name: vec![1] },
            Record::LinkClear { parent: 5 },
            Record::Drop { view: 3 },
        ]
    }

    #[test]
    fn a_flush_counts_only_with_its_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let secret = HashSecret([7; 16]);
        {
            let (mut log, state) = ViewsLog::open(dir.path(), "t", secret).unwrap();
            assert_eq!(state, State::default());
            log.flush(sample(), b"p1").unwrap();
        }
        let path = dir.path().join(FILE);
        let full = fs::read(&path).unwrap();
        let (_, state) = ViewsLog::open(dir.path(), "t", HashSecret([0; 16])).unwrap();
        assert_eq!(state.position.as_deref(), Some(&b"p1"[..]));
        assert_eq!(state.counts[&(7 << 100)][&vec![1, 2, 3]], 2);
        assert!(!state.nulls.contains_key(&9), "truncated after");
        assert_eq!(state.diffs.len(), 1);
        // an unfinished flush (no checkpoint) and a torn frame are ignored and cut
        let mut longer = full.clone();
        encode(
            &Record::Count {
                view: 1,
                value: vec![9],
                count: 1,
            },
            &mut longer,
        );
        longer.extend_from_slice(&[1, 2, 3]);
        fs::write(&path, &longer).unwrap();
        let (log, state) = ViewsLog::open(dir.path(), "t", HashSecret([0; 16])).unwrap();
        assert_eq!(log.secret(), secret);
        assert!(!state.counts.contains_key(&1));
        drop(log);
        assert_eq!(fs::read(&path).unwrap(), full);
    }

    #[test]
    fn a_bad_checksum_other_tables_or_magic_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = HashSecret([1; 16]);
        {
            let (mut log, _) = ViewsLog::open(dir.path(), "t", secret).unwrap();
            log.flush(sample(), b"p").unwrap();
        }
        assert!(matches!(
            ViewsLog::open(dir.path(), "other", secret),
            Err(Error::TableMismatch { .. })
        ));
        let path = dir.path().join(FILE);
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(
            ViewsLog::open(dir.path(), "t", secret),
            Err(Error::ChecksumMismatch { .. })
        ));
        fs::write(&path, b"NOTVIEWS").unwrap();
        assert!(matches!(
            ViewsLog::open(dir.path(), "t", secret),
            Err(Error::BadMagic { .. })
        ));
    }

    #[test]
    fn a_grown_log_is_rewritten_to_its_state() {
        let dir = tempfile::tempdir().unwrap();
        let secret = HashSecret([2; 16]);
        let (mut log, _) = ViewsLog::open(dir.path(), "t", secret).unwrap();
        for i in 0..600u64 {
            let r = |count| Record::Count {
                view: 1,
                value: vec![(i % 3) as u8],
                count,
            };
            log.flush(vec![r(i + 1), r(i + 2)], &i.to_le_bytes())
                .unwrap();
        }
        assert!(log.records < 2 * log.state.live() + 1024 + 3);
        let state = log.state.clone();
        drop(log);
        let (_, reopened) = ViewsLog::open(dir.path(), "t", secret).unwrap();
        assert_eq!(reopened.counts, state.counts);
        assert_eq!(reopened.position, state.position);
    }
}
