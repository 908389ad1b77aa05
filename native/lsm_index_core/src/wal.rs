//! The write-ahead log: every add, remove and drop of a persistent index, framed and
//! checksummed, so writes acknowledged by a `flush` survive a crash before their lane's
//! overlay reaches a segment file.
//!
//! ```text
//! <dir>/wal-<first sequence number, 16 hex>.log   a header, then frames; oldest file first
//!
//! header: 0 ┌──────────────────┬─────────────┬──────────────────────┬──────────────┐
//!           │ magic "LSMIXWAL" │ version u32 │ previous file's      │ crc32c u32   │
//!           │                  │ (= 1)       │ first seq u64 (0: -) │ of bytes 0-20│
//!           └──────────────────┴─────────────┴──────────────────────┴──────────────┘
//!         each file names its predecessor, so a deleted log file in the middle is caught;
//!         the oldest file's predecessor may only be gone if the manifest covers it
//!
//! frame:  0 ┌──────────────┬──────────────┬──────────────┬─────────────────────────┐
//!           │ len u32 (=13)│ crc32c u32   │ seq u64      │ payload (len bytes)     │
//!           └──────────────┴──────────────┴──────────────┴─────────────────────────┘
//!         crc32c covers seq and payload; all integers little-endian
//!         (the `durable::frame` codec with the seq as its 8-byte prefix)
//! payload:  op u8 (1 add, 2 remove, 3 drop) │ handle u32 │ key fingerprint u64 (0 for drop)
//! ```
//!
//! Keys are logged by fingerprint: the index only ever uses a key's keyed SipHash, and the
//! secret is in the manifest. Appends go to an in-memory buffer under the writer's lane lock
//! (so a lane's frames are in sequence order); `sync` writes the buffer out and fsyncs it
//! (group commit: one fsync covers every append before it). Recovery reads frames in order:
//! an incomplete frame at the end of the newest file (a torn tail) is cut off; a complete
//! frame whose checksum fails, anywhere, is an error.

use crate::durable::{self, io_error, sync_dir, Framing};
use crate::error::{Error, FileKind, Result};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

const PAYLOAD: usize = 13;
/// Frames: the sequence number is the checksummed prefix, the payload always 13 bytes.
const FRAMING: Framing = Framing {
    prefix: 8,
    min_payload: PAYLOAD,
    max_payload: PAYLOAD,
};
#[cfg(test)]
const FRAME: usize = FRAMING.encoded_len(PAYLOAD);
const MAGIC: &[u8; 8] = b"LSMIXWAL";
const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const VERSION: u32 = 1;
/// Bytes of a log file's header.
pub const FILE_HEADER: usize = 24;
/// A new file is started once the current one holds this much.
const FILE_LIMIT: u64 = 64 << 20;
/// Appends are written out (not fsynced) once the buffer holds this much.
const BUFFER_LIMIT: usize = 1 << 20;

/// One logged operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// `handle` added to the key with fingerprint `fp`.
    Add {
        /// Key fingerprint.
        fp: u64,
        /// Handle.
        handle: u32,
    },
    /// `handle` removed from the key with fingerprint `fp`.
    Remove {
        /// Key fingerprint.
        fp: u64,
        /// Handle.
        handle: u32,
    },
    /// `handle` dropped from every key.
    Drop {
        /// Handle.
        handle: u32,
    },
}

impl Record {
    fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let (op, handle, fp) = match *self {
            Record::Add { fp, handle } => (1u8, handle, fp),
            Record::Remove { fp, handle } => (2, handle, fp),
            Record::Drop { handle } => (3, handle, 0),
        };
        let mut payload = [0u8; PAYLOAD];
        payload[0] = op;
        payload[1..5].copy_from_slice(&handle.to_le_bytes());
        payload[5..13].copy_from_slice(&fp.to_le_bytes());
        FRAMING.encode(&seq.to_le_bytes(), &payload, out);
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let handle = u32::from_le_bytes(payload.get(1..5)?.try_into().ok()?);
        let fp = u64::from_le_bytes(payload.get(5..13)?.try_into().ok()?);
        match payload.first()? {
            1 => Some(Record::Add { fp, handle }),
            2 => Some(Record::Remove { fp, handle }),
            3 => Some(Record::Drop { handle }),
            _ => None,
        }
    }
}

/// When appends reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// On `Index::flush` (group commit): the default.
    #[default]
    Flush,
    /// Before every write call returns (one fsync per call; a batch is one call).
    Always,
    /// Never fsynced by us: `flush` hands the data to the OS, which survives a crash of the
    /// process but not of the machine.
    None,
}

impl SyncMode {
    /// The mode named `name` (`"flush"`, `"always"`, `"none"`: the Elixir option's values).
    pub fn from_name(name: &str) -> Option<SyncMode> {
        match name {
            "flush" => Some(SyncMode::Flush),
            "always" => Some(SyncMode::Always),
            "none" => Some(SyncMode::None),
            _ => None,
        }
    }
}

struct Buffer {
    bytes: Vec<u8>,
    /// Sequence number of the last frame appended (0 when none).
    last_seq: u64,
}

struct Io {
    file: File,
    /// First sequence number of the file being written, and its size.
    first_seq: u64,
    size: u64,
    /// Files before the current one, oldest first: `(first_seq, path)`.
    older: Vec<(u64, PathBuf)>,
    /// Every frame up to this sequence number is written out (and fsynced unless `None`).
    synced_seq: u64,
}

/// The log of one index directory.
pub struct Wal {
    dir: PathBuf,
    mode: SyncMode,
    buffer: Mutex<Buffer>,
    io: Mutex<Io>,
}

/// The path of the log file starting at `first_seq`.
pub fn file_name(first_seq: u64) -> String {
    durable::numbered_name(PREFIX, first_seq, SUFFIX)
}

/// Every log file in `dir`, oldest first.
pub fn files(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    durable::numbered_files(dir, PREFIX, SUFFIX)
}

/// Reads every frame of the logs in `dir`, oldest first, calling `apply(seq, record)`. A torn
/// tail of the newest file is truncated away; any other damage is an error. Returns the
/// files read.
pub fn replay(
    dir: &Path,
    apply: impl FnMut(u64, Record) -> Result<()>,
) -> Result<Vec<(u64, PathBuf)>> {
    scan(dir, true, apply)
}

/// `replay` that only reads: a torn tail is reported as `Error::Corrupt` instead of being
/// truncated (for inspection tools).
pub fn read(
    dir: &Path,
    apply: impl FnMut(u64, Record) -> Result<()>,
) -> Result<Vec<(u64, PathBuf)>> {
    scan(dir, false, apply)
}

fn scan(
    dir: &Path,
    repair: bool,
    mut apply: impl FnMut(u64, Record) -> Result<()>,
) -> Result<Vec<(u64, PathBuf)>> {
    let logs = files(dir)?;
    for (i, (_, path)) in logs.iter().enumerate() {
        let newest = i + 1 == logs.len();
        let bytes = fs::read(path).map_err(|e| io_error(FileKind::Wal, path, "read", &e))?;
        let what = path.display().to_string();
        if bytes.len() < FILE_HEADER && newest {
            // created, then the process died before its header was durable: holds nothing
            continue;
        }
        let prev = header_prev(&bytes, &what)?;
        if i > 0 && prev != logs[i - 1].0 {
            return Err(Error::Corrupt {
                file: FileKind::Wal,
                what,
                detail: format!(
                    "follows the log starting at seq {prev}, but the previous file starts at {}: \
                     a log file is missing",
                    logs[i - 1].0
                ),
            });
        }
        let mut frames = FRAMING.read(&bytes, FILE_HEADER, FileKind::Wal, &what);
        for frame in &mut frames {
            let frame = frame?;
            let seq = u64::from_le_bytes(frame.prefix.try_into().unwrap_or_default());
            let record = Record::decode(frame.payload).ok_or_else(|| Error::Corrupt {
                file: FileKind::Wal,
                what: what.clone(),
                detail: format!("unknown operation in frame at byte {}", frame.at),
            })?;
            apply(seq, record)?;
        }
        let (torn, end) = (frames.torn(), frames.end());
        if torn && newest && repair {
            durable::truncate(FileKind::Wal, path, end as u64)?;
        } else if torn {
            return Err(Error::Corrupt {
                file: FileKind::Wal,
                what,
                detail: format!("incomplete frame at byte {end} (a torn tail if newest)"),
            });
        }
    }
    Ok(logs)
}

/// The oldest log in `dir` as `(its first seq, its predecessor's first seq or 0)`: recovery
/// checks that a missing predecessor is covered by the manifest.
pub fn oldest_link(dir: &Path) -> Result<Option<(u64, u64)>> {
    let Some((first, path)) = files(dir)?.into_iter().next() else {
        return Ok(None);
    };
    let bytes = fs::read(&path).map_err(|e| io_error(FileKind::Wal, &path, "read", &e))?;
    if bytes.len() < FILE_HEADER {
        return Ok(None);
    }
    Ok(Some((
        first,
        header_prev(&bytes, &path.display().to_string())?,
    )))
}

fn header_prev(bytes: &[u8], what: &str) -> Result<u64> {
    let corrupt = |detail: &str| Error::Corrupt {
        file: FileKind::Wal,
        what: what.to_string(),
        detail: detail.to_string(),
    };
    let h = bytes
        .get(..FILE_HEADER)
        .ok_or_else(|| corrupt("shorter than a log header"))?;
    if &h[..8] != MAGIC {
        return Err(Error::BadMagic {
            file: FileKind::Wal,
            what: what.to_string(),
        });
    }
    let expected = u32::from_le_bytes([h[20], h[21], h[22], h[23]]);
    let got = crc32c::crc32c(&h[..20]);
    if expected != got {
        return Err(Error::ChecksumMismatch {
            file: FileKind::Wal,
            what: format!("{what} header"),
            expected,
            got,
        });
    }
    let version = u32::from_le_bytes([h[8], h[9], h[10], h[11]]);
    if version != VERSION {
        return Err(Error::UnsupportedVersion {
            file: FileKind::Wal,
            what: what.to_string(),
            version,
        });
    }
    let mut prev = [0u8; 8];
    prev.copy_from_slice(&h[12..20]);
    Ok(u64::from_le_bytes(prev))
}

impl Wal {
    /// Starts a new log file in `dir` at `first_seq`; `older` are the files recovery read,
    /// still needed until a manifest covers them.
    pub fn create(
        dir: &Path,
        first_seq: u64,
        older: Vec<(u64, PathBuf)>,
        mode: SyncMode,
    ) -> Result<Wal> {
        let prev = older.last().map_or(0, |(f, _)| *f);
        let file = new_file(dir, first_seq, prev)?;
        Ok(Wal {
            dir: dir.to_path_buf(),
            mode,
            buffer: Mutex::new(Buffer {
                bytes: Vec::new(),
                last_seq: 0,
            }),
            io: Mutex::new(Io {
                file,
                first_seq,
                size: 0,
                older,
                synced_seq: 0,
            }),
        })
    }

    /// The sync mode.
    pub fn mode(&self) -> SyncMode {
        self.mode
    }

    /// Appends `record` with sequence number `seq` to the buffer. Returns whether the buffer
    /// is large enough to be written out (`sync(false)`).
    pub fn append(&self, seq: u64, record: Record) -> bool {
        let mut b = self.buffer.lock();
        record.encode(seq, &mut b.bytes);
        b.last_seq = b.last_seq.max(seq);
        b.bytes.len() >= BUFFER_LIMIT
    }

    /// Bytes appended and not yet written to the file.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().bytes.len()
    }

    /// Writes every appended frame to the file; with `durable` (and not `SyncMode::None`)
    /// also fsyncs it. Concurrent callers share one write and fsync (group commit).
    pub fn sync(&self, durable: bool) -> Result<()> {
        let target = self.buffer.lock().last_seq;
        let mut io = self.io.lock();
        if io.synced_seq >= target && !durable {
            return Ok(());
        }
        let (bytes, last) = {
            let mut b = self.buffer.lock();
            (std::mem::take(&mut b.bytes), b.last_seq)
        };
        let path = self.dir.join(file_name(io.first_seq));
        if !bytes.is_empty() {
            io.file
                .write_all(&bytes)
                .map_err(|e| io_error(FileKind::Wal, &path, "write", &e))?;
            io.size += bytes.len() as u64;
        }
        crate::failpoint::hit("wal:written");
        if durable && self.mode != SyncMode::None {
            io.file
                .sync_data()
                .map_err(|e| io_error(FileKind::Wal, &path, "fsync", &e))?;
        }
        io.synced_seq = io.synced_seq.max(last);
        if io.size >= FILE_LIMIT {
            // the next file starts after every frame written so far
            let first = io.synced_seq + 1;
            let file = new_file(&self.dir, first, io.first_seq)?;
            let old = std::mem::replace(&mut io.file, file);
            old.sync_all()
                .map_err(|e| io_error(FileKind::Wal, &path, "fsync", &e))?;
            let old_first = std::mem::replace(&mut io.first_seq, first);
            io.older.push((old_first, path));
            io.size = 0;
        }
        Ok(())
    }

    /// Deletes the older files whose every frame has a sequence number below `covered`
    /// (what the durable manifest's segments hold). Returns how many were deleted.
    pub fn delete_covered(&self, covered: u64) -> usize {
        let mut io = self.io.lock();
        let current_first = io.first_seq;
        let mut deleted = 0;
        // file k holds sequence numbers below the next file's first
        let firsts: Vec<u64> = io
            .older
            .iter()
            .skip(1)
            .map(|(f, _)| *f)
            .chain(std::iter::once(current_first))
            .collect();
        let mut keep = Vec::new();
        for ((first, path), next_first) in std::mem::take(&mut io.older).into_iter().zip(firsts) {
            if next_first <= covered && fs::remove_file(&path).is_ok() {
                deleted += 1;
            } else {
                keep.push((first, path));
            }
        }
        io.older = keep;
        deleted
    }

    /// Log files kept: the older ones not yet covered by segments, plus the current one.
    pub fn files_retained(&self) -> usize {
        self.io.lock().older.len() + 1
    }
}

/// Opens the log file starting at `first_seq` for appending, writing its header (naming
/// the predecessor `prev`) if it is new; the header and the file's name are durable on return.
fn new_file(dir: &Path, first_seq: u64, prev: u64) -> Result<File> {
    let path = dir.join(file_name(first_seq));
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(|e| io_error(FileKind::Wal, &path, "create", &e))?;
    let len = file
        .metadata()
        .map_err(|e| io_error(FileKind::Wal, &path, "stat", &e))?
        .len();
    if len < FILE_HEADER as u64 {
        // new (or torn before its header was durable: nothing in it counts)
        file.set_len(0)
            .map_err(|e| io_error(FileKind::Wal, &path, "truncate", &e))?;
        let mut h = Vec::with_capacity(FILE_HEADER);
        h.extend_from_slice(MAGIC);
        h.extend_from_slice(&VERSION.to_le_bytes());
        h.extend_from_slice(&prev.to_le_bytes());
        h.extend_from_slice(&crc32c::crc32c(&h).to_le_bytes());
        file.write_all(&h)
            .map_err(|e| io_error(FileKind::Wal, &path, "write", &e))?;
        file.sync_all()
            .map_err(|e| io_error(FileKind::Wal, &path, "fsync", &e))?;
    }
    sync_dir(dir)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(dir: &Path) -> Result<Vec<(u64, Record)>> {
        let mut out = Vec::new();
        replay(dir, |seq, r| {
            out.push((seq, r));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_frame_is_the_documented_29_bytes() {
        let mut out = Vec::new();
        let (seq, handle, fp) = (
            0x1122_3344_5566_7788u64,
            0x0a0b_0c0du32,
            0x0102_0304_0506_0708,
        );
        Record::Remove { fp, handle }.encode(seq, &mut out);
        let mut body = seq.to_le_bytes().to_vec();
        body.push(2);
        body.extend_from_slice(&handle.to_le_bytes());
        body.extend_from_slice(&fp.to_le_bytes());
        let mut expected = 13u32.to_le_bytes().to_vec();
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(out, expected);
        assert_eq!(out.len(), FRAME);
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::Flush).unwrap();
        let written = vec![
            (1, Record::Add { fp: 7, handle: 1 }),
            (
                2,
                Record::Remove {
                    fp: u64::MAX,
                    handle: u32::MAX,
                },
            ),
            (3, Record::Drop { handle: 9 }),
        ];
        for &(seq, r) in &written {
            wal.append(seq, r);
        }
        wal.sync(true).unwrap();
        drop(wal);
        assert_eq!(records(dir.path()).unwrap(), written);

        // a partial frame at the end (a write cut short) is dropped, and the file truncated
        let path = dir.path().join(file_name(1));
        let full = fs::read(&path).unwrap();
        for cut in 1..FRAME {
            fs::write(&path, &full[..full.len() - cut]).unwrap();
            assert_eq!(
                records(dir.path()).unwrap(),
                written[..2].to_vec(),
                "cut {cut}"
            );
            assert_eq!(fs::read(&path).unwrap().len(), FILE_HEADER + 2 * FRAME);
        }
    }

    #[test]
    fn a_bad_checksum_on_a_complete_frame_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::Flush).unwrap();
        for seq in 1..=3 {
            wal.append(seq, Record::Add { fp: seq, handle: 1 });
        }
        wal.sync(true).unwrap();
        let path = dir.path().join(file_name(1));
        let full = fs::read(&path).unwrap();
        for at in 0..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            assert!(records(dir.path()).is_err(), "flip at {at} went unnoticed");
        }
    }

    #[test]
    fn a_missing_log_file_between_others_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut older = Vec::new();
        for first in [1u64, 10, 20] {
            let wal = Wal::create(dir.path(), first, older.clone(), SyncMode::Flush).unwrap();
            wal.append(first, Record::Drop { handle: 1 });
            wal.sync(true).unwrap();
            older.push((first, dir.path().join(file_name(first))));
        }
        assert_eq!(records(dir.path()).unwrap().len(), 3);
        assert_eq!(oldest_link(dir.path()).unwrap(), Some((1, 0)));
        fs::remove_file(dir.path().join(file_name(10))).unwrap();
        assert!(matches!(records(dir.path()), Err(Error::Corrupt { .. })));
        // the oldest may go (when covered): then its successor names it
        fs::remove_file(dir.path().join(file_name(1))).unwrap();
        assert_eq!(oldest_link(dir.path()).unwrap(), Some((20, 10)));
        assert_eq!(records(dir.path()).unwrap().len(), 1);
    }

    proptest::proptest! {
        /// Decoder fuzzing: any log file content is read without panicking.
        #[test]
        fn reading_arbitrary_log_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(file_name(1)), &bytes).unwrap();
            let _ = records(dir.path());
        }
    }

    #[test]
    fn covered_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file_name(1)), b"").unwrap();
        fs::write(dir.path().join(file_name(50)), b"").unwrap();
        let older = files(dir.path()).unwrap();
        let wal = Wal::create(dir.path(), 100, older, SyncMode::Flush).unwrap();
        assert_eq!(wal.delete_covered(49), 0);
        assert_eq!(wal.delete_covered(50), 1);
        assert_eq!(wal.files_retained(), 2);
        assert_eq!(wal.delete_covered(100), 1);
        assert_eq!(files(dir.path()).unwrap().len(), 1);
    }
}
