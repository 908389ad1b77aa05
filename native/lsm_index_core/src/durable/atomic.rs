//! Atomic replacement of a file: the new bytes go to `<dest>.tmp`, which is fsynced, renamed
//! over `dest`, and then the directory is fsynced, so after a crash `dest` holds either its
//! old bytes or all of the new ones, never a mix. A `*.tmp` left by a crash is garbage.

use super::io_error;
use crate::error::{FileKind, Result};
use crate::failpoint;
use std::ffi::OsString;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The crash points (see `failpoint`) an atomic write passes: after the temp file is durable,
/// and after the rename (before the directory fsync).
#[derive(Clone, Copy, Debug)]
pub struct CrashPoints {
    /// Reached once the temp file is written and fsynced.
    pub written: &'static str,
    /// Reached once the temp file is renamed over the destination.
    pub renamed: &'static str,
}

/// Replaces `dest` (a `file` kind of file) with `bytes` atomically and durably: temp file,
/// fsync, rename, fsync of `dest`'s directory.
pub fn write_atomically(
    dest: &Path,
    bytes: &[u8],
    file: FileKind,
    crash: CrashPoints,
) -> Result<()> {
    let tmp = tmp_path(dest);
    write_synced(&tmp, bytes, file)?;
    failpoint::hit(crash.written);
    fs::rename(&tmp, dest).map_err(|e| io_error(file, dest, "rename", &e))?;
    failpoint::hit(crash.renamed);
    match dest.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => sync_dir(dir),
        _ => sync_dir(Path::new(".")),
    }
}

/// Fsyncs a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(FileKind::Directory, dir, "fsync", &e))
}

/// `dest` with `.tmp` appended to its file name.
fn tmp_path(dest: &Path) -> PathBuf {
    let mut name = OsString::from(dest.as_os_str());
    name.push(".tmp");
    PathBuf::from(name)
}

/// Writes `bytes` to a new `path` and fsyncs it.
fn write_synced(path: &Path, bytes: &[u8], file: FileKind) -> Result<()> {
    let mut f = fs::File::create(path).map_err(|e| io_error(file, path, "create", &e))?;
    f.write_all(bytes)
        .map_err(|e| io_error(file, path, "write", &e))?;
    f.sync_all().map_err(|e| io_error(file, path, "fsync", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    const POINTS: CrashPoints = CrashPoints {
        written: "test:written",
        renamed: "test:renamed",
    };

    #[test]
    fn replaces_the_file_and_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("f.json");
        write_atomically(&dest, b"first", FileKind::Manifest, POINTS).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"first");
        // a temp file left by a crash is simply overwritten
        fs::write(tmp_path(&dest), b"garbage from a crash").unwrap();
        write_atomically(&dest, b"second", FileKind::Manifest, POINTS).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), b"second");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from("f.json")]);
        assert_eq!(tmp_path(&dest), dir.path().join("f.json.tmp"));
    }

    #[test]
    fn a_failure_names_the_file_kind_and_operation() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("missing/f.seg");
        match write_atomically(&dest, b"x", FileKind::Segment, POINTS) {
            Err(Error::Io { file, op, kind, .. }) => {
                assert_eq!((file, op), (FileKind::Segment, "create"));
                assert_eq!(kind, std::io::ErrorKind::NotFound);
            }
            other => panic!("{other:?}"),
        }
        assert!(!dest.exists());
    }
}
