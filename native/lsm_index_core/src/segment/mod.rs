//! Immutable segments: a key set frozen into one checksummed byte buffer.
//!
//! A segment maps fingerprints to handle sets with a minimal perfect hash (MPH) to a slot, a
//! record per slot holding the fingerprint that confirms membership and the value word, and
//! a handle pool, behind an optional binary-fuse prefilter. Fingerprint and value share one
//! 12-byte record so that a hit costs one cache miss after the MPH, not two. Readers work in place on any `AsRef<[u8]>`
//! (a `Vec<u8>` today, a memory map once segments live in files): only the small MPH is
//! decoded into the heap at open.
//!
//! ```text
//! offset 0   ┌──────────────────────────────────────────────────────────┐
//!            │ magic "LSMIXSEG"                                  8 B    │
//!          8 │ format version u16 │ mph kind u8 │ filter kind u8       │
//!         12 │ header length u32 (= 192)                                │
//!         16 │ key count u64                                            │
//!         24 │ clean seq u64   (dropped handles before it are purged)   │
//!         32 │ hash seed id u64 (which key-hash secret built it)        │
//!         40 │ level u32 │ flags u32 (bit 0: holds tombstones)          │
//!         48 │ 4 × section { offset u64, length u64, crc32c u32, 0 u32 }│
//!            │     in order: MPH, PREFILTER, RECORDS, POOL              │
//!        144 │ header crc32c u32 (bytes 0..144) │ zero padding          │
//!        192 ├──────────────────────────────────────────────────────────┤
//!            │ MPH       (ptr_hash: epserde; boomphf: bincode)          │
//!            │ PREFILTER (empty, or BinaryFuse8: see `prefilter`)       │
//!            │ RECORDS   key count × { fingerprint u64, value u32 },    │
//!            │           12 bytes each, indexed by MPH slot             │
//!            │ POOL      handle lists (see `pool`)                      │
//!            └──────────────────────────────────────────────────────────┘
//! ```
//! All integers are little-endian; every section starts at a multiple of 64 bytes.

mod bytes;
pub mod mph;
mod pool;
mod prefilter;
mod reader;
mod writer;

pub use bytes::SegmentBytes;
pub use reader::{Probe, Segment};
pub use writer::{SegmentWriter, WriteOptions, SMALL_SEGMENT_KEYS};

/// First bytes of every segment.
pub const MAGIC: &[u8; 8] = b"LSMIXSEG";
/// The format version this build writes (and the only one it reads).
pub const FORMAT_VERSION: u16 = 1;
/// Bytes before the first section.
pub const HEADER_LEN: usize = 192;
/// Alignment of every section.
pub const SECTION_ALIGN: usize = 64;
/// Bytes of the header covered by the header checksum.
const HEADER_CRC_AT: usize = 144;
/// Bytes of one record: fingerprint u64 + value word u32.
pub const RECORD_LEN: usize = 12;
/// Sections in a segment.
pub const SECTIONS: usize = 4;
/// Header flag: the segment holds tombstones (empty sets).
pub const FLAG_TOMBSTONES: u32 = 1;

/// Filter kind byte: no prefilter.
pub const FILTER_NONE: u8 = 0;
/// Filter kind byte: BinaryFuse8.
pub const FILTER_BFUSE8: u8 = 1;

/// The sections of a segment, in file order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// The minimal perfect hash.
    Mph = 0,
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
        Section::Mph,
        Section::Prefilter,
        Section::Records,
        Section::Pool,
    ];

    fn name(self) -> &'static str {
        match self {
            Section::Mph => "mph",
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
    /// The MPH kind, `None` for an empty segment.
    pub mph: Option<mph::MphKind>,
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
