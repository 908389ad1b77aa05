//! Reading the log: its files in order, each frame checked, a torn tail of the newest file
//! cut off (recovery) or reported (inspection).

use super::{Record, FILE_HEADER, FRAMING, MAGIC, PREFIX, SUFFIX, VERSION};
use crate::durable::{self, io_error};
use crate::error::{Error, FileKind, Result};
use std::fs;
use std::path::{Path, PathBuf};

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
