//! Builds a segment buffer from (fingerprint, handle set) pairs.

use super::mph::{AnyMph, MphKind};
use super::pool::PoolWriter;
use super::{
    prefilter, quotient, Section, SegmentLayout, FILTER_BFUSE8, FILTER_NONE, FLAG_TOMBSTONES,
};
use super::{FORMAT_VERSION, HEADER_CRC_AT, HEADER_LEN, MAGIC, MPH_FORMAT_VERSION, RECORD_LEN};
use super::{SECTIONS, SECTION_ALIGN};
use crate::error::{Error, Result};

/// How a segment is built.
#[derive(Clone, Debug)]
pub struct WriteOptions {
    /// The layout; with an MPH the other kind is used if the preferred one fails to build.
    pub layout: SegmentLayout,
    /// Whether to put a BinaryFuse8 prefilter in front.
    pub prefilter: bool,
    /// Level recorded in the header.
    pub level: u32,
    /// See [`super::SegmentInfo::clean_seq`].
    pub clean_seq: u64,
    /// See [`super::SegmentInfo::seed_id`].
    pub seed_id: u64,
}

/// Accumulates entries, then lays out the segment in [`SegmentWriter::finish`].
pub struct SegmentWriter {
    opts: WriteOptions,
    entries: Vec<(u64, u32)>,
    pool: PoolWriter,
    tombstones: bool,
}

impl SegmentWriter {
    /// An empty writer.
    pub fn new(opts: WriteOptions) -> Self {
        SegmentWriter {
            opts,
            entries: Vec::new(),
            pool: PoolWriter::default(),
            tombstones: false,
        }
    }

    /// A writer with room for `n` entries.
    pub fn with_capacity(opts: WriteOptions, n: usize) -> Self {
        let mut w = Self::new(opts);
        w.entries.reserve_exact(n);
        w
    }

    /// Adds `fp` with its set (sorted, unique; empty for a tombstone). Each `fp` at most once.
    pub fn push(&mut self, fp: u64, handles: &[u32]) -> Result<()> {
        let v = self.pool.value_for(handles)?;
        self.tombstones |= handles.is_empty();
        self.entries.push((fp, v));
        Ok(())
    }

    /// Entries pushed so far.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was pushed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds the record index and prefilter and returns the finished segment bytes.
    pub fn finish(mut self) -> Result<Vec<u8>> {
        let n = self.entries.len();
        let mut sections: [Vec<u8>; SECTIONS] = Default::default();
        let mut layout_byte = 0u8;
        let mut version = FORMAT_VERSION;
        let mut filter_kind = FILTER_NONE;
        if n > 0 {
            let (index, records);
            (index, layout_byte, records) = match self.opts.layout {
                SegmentLayout::Quotient => {
                    let (directory, records) = quotient::write(&mut self.entries)?;
                    (directory, SegmentLayout::Quotient.byte(), records)
                }
                SegmentLayout::Mph(kind) => {
                    version = MPH_FORMAT_VERSION;
                    mph_sections(kind, &self.entries)?
                }
            };
            sections[Section::Index as usize] = index;
            if self.opts.prefilter && n >= prefilter::MIN_KEYS {
                let fps: Vec<u64> = self.entries.iter().map(|&(fp, _)| fp).collect();
                if prefilter::write(&fps, &mut sections[Section::Prefilter as usize]) {
                    filter_kind = FILTER_BFUSE8;
                }
            }
            sections[Section::Records as usize] = records;
            sections[Section::Pool as usize] = self.pool.finish();
        }
        let flags = if self.tombstones { FLAG_TOMBSTONES } else { 0 };
        let header = Header {
            version,
            layout: layout_byte,
            filter_kind,
            flags,
            keys: n as u64,
        };
        Ok(layout(&self.opts, &header, &sections))
    }
}

/// The MPH's bytes, its layout byte and the 12-byte records it indexes (format 1).
fn mph_sections(kind: MphKind, entries: &[(u64, u32)]) -> Result<(Vec<u8>, u8, Vec<u8>)> {
    let n = entries.len();
    let fps: Vec<u64> = entries.iter().map(|&(fp, _)| fp).collect();
    let mph = build_mph(kind, &fps)?;
    let mut records = vec![0u8; n * RECORD_LEN];
    let mut taken = vec![false; n];
    for &(fp, v) in entries {
        let slot = mph
            .slot(fp)
            .filter(|&s| s < n && !taken[s])
            .ok_or_else(|| Error::MphBuild {
                kind: mph.kind().name(),
                detail: "not a bijection on its keys (duplicate fingerprint?)".into(),
            })?;
        taken[slot] = true;
        let rec = &mut records[slot * RECORD_LEN..(slot + 1) * RECORD_LEN];
        rec[..8].copy_from_slice(&fp.to_le_bytes());
        rec[8..].copy_from_slice(&v.to_le_bytes());
    }
    let mut bytes = Vec::new();
    mph.write(&mut bytes)?;
    Ok((bytes, SegmentLayout::Mph(mph.kind()).byte(), records))
}

/// Segments with fewer keys use boomphf whatever the preferred kind: ptr_hash's
/// construction can stall on a crowded bucket when it has few slots (it retries, but prints
/// to stderr), and a segment this small is cache-resident, where the kinds perform alike.
pub const SMALL_SEGMENT_KEYS: usize = 1024;

/// Builds the preferred MPH (boomphf for small segments), falling back to the other kind if
/// it fails.
fn build_mph(kind: MphKind, fps: &[u64]) -> Result<AnyMph> {
    let kind = if fps.len() < SMALL_SEGMENT_KEYS {
        MphKind::BoomPhf
    } else {
        kind
    };
    AnyMph::build(kind, fps).or_else(|first| {
        let other = match kind {
            MphKind::PtrHash => MphKind::BoomPhf,
            MphKind::BoomPhf => MphKind::PtrHash,
        };
        AnyMph::build(other, fps).map_err(|_| first)
    })
}

fn align_up(x: usize) -> usize {
    x.div_ceil(SECTION_ALIGN) * SECTION_ALIGN
}

/// Exact length of a segment with these section lengths.
pub(super) fn encoded_len(section_lens: &[usize; SECTIONS]) -> usize {
    let mut at = HEADER_LEN;
    for len in section_lens {
        at = align_up(at) + len;
    }
    at
}

/// The header fields the sections decide.
struct Header {
    version: u16,
    layout: u8,
    filter_kind: u8,
    flags: u32,
    keys: u64,
}

fn layout(opts: &WriteOptions, h: &Header, sections: &[Vec<u8>; SECTIONS]) -> Vec<u8> {
    let total = encoded_len(&sections.each_ref().map(Vec::len));
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&h.version.to_le_bytes());
    out.push(h.layout);
    out.push(h.filter_kind);
    out.extend_from_slice(&(HEADER_LEN as u32).to_le_bytes());
    out.extend_from_slice(&h.keys.to_le_bytes());
    out.extend_from_slice(&opts.clean_seq.to_le_bytes());
    out.extend_from_slice(&opts.seed_id.to_le_bytes());
    out.extend_from_slice(&opts.level.to_le_bytes());
    out.extend_from_slice(&h.flags.to_le_bytes());
    let mut at = HEADER_LEN;
    for s in sections {
        at = align_up(at);
        out.extend_from_slice(&(at as u64).to_le_bytes());
        out.extend_from_slice(&(s.len() as u64).to_le_bytes());
        out.extend_from_slice(&crc32c::crc32c(s).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        at += s.len();
    }
    debug_assert_eq!(out.len(), HEADER_CRC_AT);
    let crc = crc32c::crc32c(&out);
    out.extend_from_slice(&crc.to_le_bytes());
    for s in sections {
        out.resize(align_up(out.len()), 0);
        out.extend_from_slice(s);
    }
    out.resize(total, 0);
    out
}
