//! Immutable segments: a key set frozen into one checksummed byte buffer.
//!
//! A segment maps fingerprints to handle sets, behind an optional binary-fuse prefilter, in
//! one of two layouts. Format 2's quotient table (`quotient`, the default) sorts the
//! fingerprints into buckets by their top bits and stores the rest beside a bit-packed value
//! word. Format 1 (still read and, on request, written) puts a minimal perfect hash (MPH) in
//! front of 12-byte records (fingerprint u64, value word u32). Either way a hit costs one
//! record region after a small index, and the value word names the handle or a pool list.
//! Readers work in place on any `AsRef<[u8]>` (a `Vec<u8>` or a memory map): only a format-1
//! MPH is decoded into the heap at open.
//!
//! ```text
//! offset 0   ┌──────────────────────────────────────────────────────────┐
//!            │ magic "LSMIXSEG"                                  8 B    │
//!          8 │ format version u16 │ layout u8 │ filter kind u8         │
//!         12 │ header length u32 (= 192)                                │
//!         16 │ key count u64                                            │
//!         24 │ clean seq u64   (dropped handles before it are purged)   │
//!         32 │ hash seed id u64 (which key-hash secret built it)        │
//!         40 │ level u32 │ flags u32 (bit 0: holds tombstones)          │
//!         48 │ 4 × section { offset u64, length u64, crc32c u32, 0 u32 }│
//!            │     in order: INDEX, PREFILTER, RECORDS, POOL            │
//!        144 │ header crc32c u32 (bytes 0..144) │ zero padding          │
//!        192 ├──────────────────────────────────────────────────────────┤
//!            │ INDEX     quotient directory (see `quotient`), or the    │
//!            │           MPH (ptr_hash: epserde; boomphf: bincode)      │
//!            │ PREFILTER (empty, or BinaryFuse8: see `prefilter`)       │
//!            │ RECORDS   quotient: packed (remainder, value) records;   │
//!            │           MPH: key count × { fingerprint u64, value u32 }│
//!            │ POOL      handle lists (see `pool`)                      │
//!            └──────────────────────────────────────────────────────────┘
//! ```
//! All integers are little-endian; every section starts at a multiple of 64 bytes.
//! SegmentLayout byte: 1 = ptr_hash, 2 = boomphf (format 1), 3 = quotient (format 2); 0 = empty.

mod bytes;
pub mod mph;
mod pool;
mod prefilter;
mod quotient;
mod reader;
mod writer;

pub use bytes::SegmentBytes;
pub use reader::{Probe, Segment};
pub use writer::{SegmentWriter, WriteOptions, SMALL_SEGMENT_KEYS};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"LSMIXSEG";
/// The format version of quotient-table segments; MPH segments are written as version 1,
/// which older builds read too. Both are read.
pub const FORMAT_VERSION: u16 = 2;
/// The format version of MPH segments.
pub const MPH_FORMAT_VERSION: u16 = 1;
/// Bytes before the first section.
pub const HEADER_LEN: usize = 192;
/// Alignment of every section.
pub const SECTION_ALIGN: usize = 64;
/// Bytes of the header covered by the header checksum.
const HEADER_CRC_AT: usize = 144;
/// Bytes of one MPH-layout record: fingerprint u64 + value word u32.
pub const RECORD_LEN: usize = 12;
/// Sections in a segment.
pub const SECTIONS: usize = 4;
/// Header flag: the segment holds tombstones (empty sets).
pub const FLAG_TOMBSTONES: u32 = 1;

/// Filter kind byte: no prefilter.
pub const FILTER_NONE: u8 = 0;
/// Filter kind byte: BinaryFuse8.
pub const FILTER_BFUSE8: u8 = 1;

/// How a segment finds a fingerprint's record (the layout byte of its header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentLayout {
    /// Format 2: sorted, bucketed fingerprint remainders with bit-packed values.
    Quotient,
    /// Format 1: a minimal perfect hash in front of 12-byte records.
    Mph(mph::MphKind),
}

impl SegmentLayout {
    /// The layout stored as header byte `b`, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            3 => Some(SegmentLayout::Quotient),
            b => mph::MphKind::from_byte(b).map(SegmentLayout::Mph),
        }
    }

    /// Its header byte.
    pub fn byte(self) -> u8 {
        match self {
            SegmentLayout::Quotient => 3,
            SegmentLayout::Mph(kind) => kind as u8,
        }
    }

    /// A stable lower-case name, used in options and stats.
    pub fn name(self) -> &'static str {
        match self {
            SegmentLayout::Quotient => "quotient",
            SegmentLayout::Mph(kind) => kind.name(),
        }
    }

    /// The layout named `name` (as [`SegmentLayout::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "quotient" => Some(SegmentLayout::Quotient),
            name => mph::MphKind::from_name(name).map(SegmentLayout::Mph),
        }
    }
}

/// The run of records a fingerprint can be in: one MPH slot, or a quotient bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slots {
    start: u32,
    end: u32,
}

impl Slots {
    /// No records: the fingerprint is absent.
    pub const EMPTY: Slots = Slots { start: 0, end: 0 };
}

/// The sections of a segment, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The record index: a quotient directory or a minimal perfect hash.
    Index = 0,
    /// The binary-fuse prefilter (may be empty).
    Prefilter = 1,
    /// (fingerprint, value word) records by slot.
    Records = 2,
    /// Handle lists.
    Pool = 3,
}

impl Section {
    /// All sections in file order.
    pub const ALL: [Section; SECTIONS] = [
        Section::Index,
        Section::Prefilter,
        Section::Records,
        Section::Pool,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Index => "index",
            Section::Prefilter => "prefilter",
            Section::Records => "records",
            Section::Pool => "pool",
        }
    }
}

/// What a segment's header says about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// Keys (including tombstones) in the segment.
    pub key_count: u64,
    /// Handles dropped at a sequence number below this were purged when it was built.
    pub clean_seq: u64,
    /// Id of the key-hash secret its fingerprints were made with.
    pub seed_id: u64,
    /// Compaction level it was written for.
    pub level: u32,
    /// The layout, `None` for an empty segment.
    pub layout: Option<SegmentLayout>,
    /// Whether a prefilter is present.
    pub prefilter: bool,
    /// Whether it holds tombstones.
    pub has_tombstones: bool,
    /// Total bytes of the segment buffer.
    pub bytes: u64,
    /// The header's checksum (it covers the section checksums): identifies the file's content.
    pub header_crc32c: u32,
}

#[cfg(test)]
mod tests;
