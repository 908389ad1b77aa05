//! The bytes a segment lives in: the heap for an in-memory index, a read-only memory map of
//! its file for a persistent one (read in place, paged in on demand).

#![allow(unsafe_code)]

use crate::durable::io_error;
use crate::error::{FileKind, Result};
use std::fs::File;
use std::path::Path;

/// Bytes a segment lives in (a `Segment<SegmentBytes>` reads either the same way).
pub enum SegmentBytes {
    /// An owned buffer.
    Heap(Vec<u8>),
    /// A mapped segment file (never modified once written; see `store`).
    Mmap(memmap2::Mmap),
}

impl SegmentBytes {
    /// Maps the segment file `path` read-only.
    pub fn map(path: &Path) -> Result<SegmentBytes> {
        let file = File::open(path).map_err(|e| io_error(FileKind::Segment, path, "open", &e))?;
        // SAFETY: `Mmap::map` is unsafe because the file could change while mapped. Segment
        // files are immutable once renamed into place (written under a temp name, fsynced,
        // renamed, never opened for writing again) and the directory lock keeps other
        // lsm_index processes out. Every offset read from the map is validated against its
        // length by `Segment::open`, so bytes changed behind our back can only give wrong
        // answers, like any corruption; truncating a mapped file from outside (SIGBUS) is
        // outside the trust model documented in DESIGN.md.
        let mmap = unsafe { memmap2::Mmap::map(&file) }
            .map_err(|e| io_error(FileKind::Segment, path, "mmap", &e))?;
        Ok(SegmentBytes::Mmap(mmap))
    }
}

impl AsRef<[u8]> for SegmentBytes {
    #[inline]
    fn as_ref(&self) -> &[u8] {
        match self {
            SegmentBytes::Heap(v) => v,
            SegmentBytes::Mmap(m) => m,
        }
    }
}
