//! The directory of a persistent index: its lock, its segment files and its manifest.
//!
//! ```text
//! <dir>/LOCK                                  flock'ed while an Index has the directory open
//! <dir>/MANIFEST-<generation>.json            see `manifest`
//! <dir>/segments/lane-<n>/<segment id>.seg    segment files (format: `segment`), immutable
//! ```
//!
//! A segment file is written to `<id>.seg.tmp`, fsynced, renamed and its directory fsynced
//! before any manifest refers to it; it is never modified afterwards, which is what makes
//! mapping it read-only sound. Files no manifest refers to (a crash between writing a segment
//! and installing the manifest, or before deleting obsolete ones) are deleted at open.

use crate::durable::{self, io_error, sync_dir, CrashPoints, DirLock};
use crate::error::{Error, FileKind, Result};
use crate::failpoint;
use crate::manifest::{self, Manifest, SegmentEntry};
use crate::segment::{Segment, SegmentBytes};
use parking_lot::Mutex;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// Where a crash test can stop a segment write (see `failpoint`).
const SEGMENT_CRASH_POINTS: CrashPoints = CrashPoints {
    written: "segment:written",
    renamed: "segment:renamed",
};

/// An open index directory.
pub struct Store {
    dir: PathBuf,
    /// Holds the flock; dropping it (or `release`) unlocks the directory.
    lock: Mutex<Option<DirLock>>,
    /// The latest installed manifest; installs are serialized by this lock.
    current: Mutex<Manifest>,
}

impl Store {
    /// Opens (creating if needed) `dir`, locks it, and loads its manifest; a new directory gets
    /// `fresh()` installed as generation 1. Leftover temp files and unreferenced segment
    /// files are removed.
    pub fn open(dir: &Path, fresh: impl FnOnce() -> Manifest) -> Result<(Store, Manifest)> {
        fs::create_dir_all(dir).map_err(|e| io_error(FileKind::Directory, dir, "create", &e))?;
        let lock = DirLock::acquire(dir)?;
        let m = match manifest::load_latest(dir)? {
            Some(m) => m,
            None if has_data(dir)? => {
                // never start afresh over data: that would delete it as leftovers
                return Err(Error::Corrupt {
                    file: FileKind::Directory,
                    what: dir.display().to_string(),
                    detail: "no manifest, but segment or log files are present".into(),
                });
            }
            None => {
                let mut m = fresh();
                m.generation = 1;
                manifest::install(dir, &m)?;
                m
            }
        };
        let store = Store {
            dir: dir.to_path_buf(),
            lock: Mutex::new(Some(lock)),
            current: Mutex::new(m.clone()),
        };
        store.remove_unreferenced(&m)?;
        Ok((store, m))
    }

    /// The index directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a segment file durably and maps it.
    pub fn write_segment(&self, lane: usize, id: u64, bytes: &[u8]) -> Result<SegmentBytes> {
        let rel = manifest::segment_file(lane, id);
        let path = self.dir.join(&rel);
        let parent = path.parent().unwrap_or(&self.dir).to_path_buf();
        fs::create_dir_all(&parent)
            .map_err(|e| io_error(FileKind::Directory, &parent, "create", &e))?;
        durable::write_atomically(&path, bytes, FileKind::Segment, SEGMENT_CRASH_POINTS)?;
        SegmentBytes::map(&path)
    }

    /// Maps the file of `entry` and opens it as a segment, checking it is the file the
    /// manifest recorded; `verify` also checks every section checksum (reads every byte).
    pub fn open_segment(
        &self,
        entry: &SegmentEntry,
        verify: bool,
    ) -> Result<Segment<SegmentBytes>> {
        let path = self.dir.join(&entry.file);
        let storage = SegmentBytes::map(&path)?;
        let what = path.display().to_string();
        if storage.as_ref().len() as u64 != entry.bytes {
            return Err(Error::Corrupt {
                file: FileKind::Segment,
                what,
                detail: format!(
                    "{} bytes, the manifest says {}",
                    storage.as_ref().len(),
                    entry.bytes
                ),
            });
        }
        let seg = Segment::open(storage, &what, verify)?;
        let info = seg.info();
        if info.header_crc32c != entry.header_crc32c
            || info.key_count != entry.keys
            || info.level != entry.level
        {
            return Err(Error::Corrupt {
                file: FileKind::Segment,
                what,
                detail: "not the segment the manifest recorded (header differs)".into(),
            });
        }
        Ok(seg)
    }

    /// Installs the next generation: `change` edits a copy of the current manifest, which is
    /// then made durable; the segment files it no longer refers to are deleted afterwards.
    pub fn install(&self, change: impl FnOnce(&mut Manifest)) -> Result<()> {
        let mut current = self.current.lock();
        let mut next = current.clone();
        change(&mut next);
        next.generation = current.generation + 1;
        manifest::install(&self.dir, &next)?;
        failpoint::hit("manifest:installed");
        let old = std::mem::replace(&mut *current, next);
        let live: HashSet<&str> = current
            .lane_state
            .iter()
            .flat_map(|l| l.segments.iter().map(|s| s.file.as_str()))
            .collect();
        // Best effort from here: what is left over is removed at the next open.
        for s in old.lane_state.iter().flat_map(|l| &l.segments) {
            if !live.contains(s.file.as_str()) {
                let _ = fs::remove_file(self.dir.join(&s.file));
                failpoint::hit("manifest:deleting");
            }
        }
        let _ = fs::remove_file(self.dir.join(Manifest::file_name(old.generation)));
        Ok(())
    }

    /// Copies a consistent snapshot of the index to the new directory `dest`: hard links to
    /// the current manifest's segment files (immutable; copied if linking fails), copies of
    /// the log files and the manifest. Installs wait meanwhile, so nothing it names is
    /// deleted; `sync_log` runs first, under the same lock, so the log copies hold every
    /// write acknowledged before the call (a torn frame at a copied tail is cut off at open).
    pub fn backup(&self, dest: &Path, sync_log: impl FnOnce() -> Result<()>) -> Result<()> {
        let current = self.current.lock();
        if dest.exists()
            && fs::read_dir(dest)
                .map_err(|e| io_error(FileKind::Directory, dest, "list", &e))?
                .next()
                .is_some()
        {
            return Err(Error::Io {
                file: FileKind::Directory,
                path: dest.display().to_string(),
                op: "back up to",
                kind: std::io::ErrorKind::DirectoryNotEmpty,
                message: "destination exists and is not empty".into(),
            });
        }
        sync_log()?;
        let create = |d: &Path| {
            fs::create_dir_all(d).map_err(|e| io_error(FileKind::Directory, d, "create", &e))
        };
        create(dest)?;
        for lane in 0..current.lanes as usize {
            create(&dest.join(format!("segments/lane-{lane}")))?;
        }
        for s in current.lane_state.iter().flat_map(|l| &l.segments) {
            let (from, to) = (self.dir.join(&s.file), dest.join(&s.file));
            if fs::hard_link(&from, &to).is_err() {
                fs::copy(&from, &to).map_err(|e| io_error(FileKind::Segment, &from, "copy", &e))?;
            }
        }
        for (_, path) in crate::wal::files(&self.dir)? {
            let Some(name) = path.file_name() else {
                continue;
            };
            match fs::copy(&path, dest.join(name)) {
                Ok(_) => {}
                // deleted after an earlier install: the manifest held here covers it
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(FileKind::Wal, &path, "copy", &e)),
            }
        }
        for lane in 0..current.lanes as usize {
            sync_dir(&dest.join(format!("segments/lane-{lane}")))?;
        }
        sync_dir(&dest.join("segments"))?;
        manifest::install(dest, &current)
    }

    /// Unlocks the directory (on close); the store must not write afterwards.
    pub fn release(&self) {
        self.lock.lock().take();
    }

    /// Deletes temp files, older manifests and segment files `m` does not refer to.
    fn remove_unreferenced(&self, m: &Manifest) -> Result<()> {
        for (generation, path) in manifest::manifests(&self.dir)? {
            if generation < m.generation {
                let _ = fs::remove_file(path);
            }
        }
        remove_tmp(&self.dir)?;
        let live: HashSet<PathBuf> = m
            .lane_state
            .iter()
            .flat_map(|l| l.segments.iter().map(|s| self.dir.join(&s.file)))
            .collect();
        let segments = self.dir.join("segments");
        if !segments.exists() {
            return Ok(());
        }
        for lane_dir in read_dir(&segments)? {
            if !lane_dir.is_dir() {
                continue;
            }
            for file in read_dir(&lane_dir)? {
                let is_segment = file.extension().is_some_and(|e| e == "seg" || e == "tmp");
                if is_segment && !live.contains(&file) {
                    fs::remove_file(&file)
                        .map_err(|e| io_error(FileKind::Segment, &file, "remove", &e))?;
                }
            }
        }
        Ok(())
    }
}

/// Whether `dir` holds segment files or log frames (what only an index with a manifest has).
fn has_data(dir: &Path) -> Result<bool> {
    let logs = crate::wal::files(dir)?;
    if logs
        .iter()
        .any(|(_, p)| fs::metadata(p).map_or(true, |m| m.len() > crate::wal::FILE_HEADER as u64))
    {
        return Ok(true);
    }
    let segments = dir.join("segments");
    if !segments.exists() {
        return Ok(false);
    }
    for lane_dir in read_dir(&segments)? {
        if lane_dir.is_dir()
            && read_dir(&lane_dir)?
                .iter()
                .any(|f| f.extension().is_some_and(|e| e == "seg"))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

fn remove_tmp(dir: &Path) -> Result<()> {
    for path in read_dir(dir)? {
        if path.extension().is_some_and(|e| e == "tmp") {
            // only a manifest install leaves temp files in the directory itself
            fs::remove_file(&path)
                .map_err(|e| io_error(FileKind::Manifest, &path, "remove", &e))?;
        }
    }
    Ok(())
}

fn read_dir(dir: &Path) -> Result<Vec<PathBuf>> {
    fs::read_dir(dir)
        .and_then(|rd| rd.map(|e| e.map(|e| e.path())).collect())
        .map_err(|e| io_error(FileKind::Directory, dir, "list", &e))
}
