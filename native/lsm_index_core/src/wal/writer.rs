//! Writing the log: appends buffered under the writer's lane lock, written out and fsynced
//! by `sync` (group commit), a new file started past `FILE_LIMIT`, covered files deleted.
//!
//! Group commit: every append is counted, and `sync` remembers how many appends it has
//! written out and how many it has fsynced. A caller that finds every append made before
//! its call already fsynced (by a concurrent caller that held the file while it waited)
//! returns without an fsync of its own; `Wal::fsyncs` counts the fsyncs done, so a test can
//! tell that concurrent flushes shared them.

use super::reader::file_name;
use super::{Record, SyncMode, FILE_HEADER, MAGIC, VERSION};
use crate::durable::{io_error, sync_dir};
use crate::error::{FileKind, Result};
use parking_lot::Mutex;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A new file is started once the current one holds this much.
const FILE_LIMIT: u64 = 64 << 20;
/// Appends are written out (not fsynced) once the buffer holds this much.
const BUFFER_LIMIT: usize = 1 << 20;

struct Buffer {
    bytes: Vec<u8>,
    /// Sequence number of the last frame appended (0 when none).
    last_seq: u64,
    /// Frames appended since the log was created (those in `bytes` are the last of them).
    appended: u64,
}

struct Io {
    file: File,
    /// First sequence number of the file being written, and its size.
    first_seq: u64,
    size: u64,
    /// Files before the current one, oldest first: `(first_seq, path)`.
    older: Vec<(u64, PathBuf)>,
    /// The largest sequence number written out.
    synced_seq: u64,
    /// Frames written out to the file: the first `written` appends.
    written: u64,
    /// Frames fsynced: the first `durable` appends.
    durable: u64,
    /// fsyncs of frames done by `sync`.
    fsyncs: u64,
}

/// The log of one index directory.
pub struct Wal {
    dir: PathBuf,
    mode: SyncMode,
    buffer: Mutex<Buffer>,
    io: Mutex<Io>,
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
                appended: 0,
            }),
            io: Mutex::new(Io {
                file,
                first_seq,
                size: 0,
                older,
                synced_seq: 0,
                written: 0,
                durable: 0,
                fsyncs: 0,
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
        b.appended += 1;
        b.bytes.len() >= BUFFER_LIMIT
    }

    /// Bytes appended and not yet written to the file.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().bytes.len()
    }

    /// Writes every appended frame to the file; with `durable` (and not `SyncMode::None`)
    /// also fsyncs it. Concurrent callers share one write and fsync (group commit): a caller
    /// whose appends a caller before it already wrote out (and fsynced, if `durable`)
    /// returns at once.
    pub fn sync(&self, durable: bool) -> Result<()> {
        let durable = durable && self.mode != SyncMode::None;
        // every frame appended before this call is among the first `target`
        let target = self.buffer.lock().appended;
        let mut io = self.io.lock();
        let done = if durable { io.durable } else { io.written };
        if done >= target {
            return Ok(());
        }
        let (bytes, last, upto) = {
            let mut b = self.buffer.lock();
            (std::mem::take(&mut b.bytes), b.last_seq, b.appended)
        };
        let path = self.dir.join(file_name(io.first_seq));
        if !bytes.is_empty() {
            io.file
                .write_all(&bytes)
                .map_err(|e| io_error(FileKind::Wal, &path, "write", &e))?;
            io.size += bytes.len() as u64;
        }
        io.written = upto;
        crate::failpoint::hit("wal:written");
        if durable {
            io.file
                .sync_data()
                .map_err(|e| io_error(FileKind::Wal, &path, "fsync", &e))?;
            io.durable = upto;
            io.fsyncs += 1;
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

    /// fsyncs of appended frames so far (group commit: fewer than the durable `sync` calls
    /// when they overlap; none in `SyncMode::None`). The fsyncs that make a new file's
    /// header durable are not counted.
    pub fn fsyncs(&self) -> u64 {
        self.io.lock().fsyncs
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
