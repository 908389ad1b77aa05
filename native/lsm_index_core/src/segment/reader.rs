//! Opens a segment buffer (validating it once) and answers probes in place.

use super::mph::AnyMph;
use super::quotient::Table;
use super::{
    pool, prefilter, Section, SegmentInfo, SegmentLayout, Slots, FILTER_BFUSE8, FILTER_NONE,
};
use super::{FLAG_TOMBSTONES, FORMAT_VERSION, HEADER_CRC_AT, HEADER_LEN, MAGIC};
use super::{MPH_FORMAT_VERSION, RECORD_LEN};
use crate::error::{Error, FileKind, Result};
use crate::prefetch::prefetch;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};

/// What a segment knows about a fingerprint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Probe {
    /// The prefilter ruled it out without touching the record index or fingerprints.
    Filtered,
    /// Not in this segment.
    Absent,
    /// Present with this value word (a tombstone is `pool::TOMBSTONE`).
    Found(u32),
}

/// How an open segment finds a fingerprint's records.
enum RecordIndex {
    /// No keys.
    Empty,
    /// Format 2: the quotient directory (read in place from `Segment::index`).
    Quotient(Table),
    /// Format 1: the decoded MPH.
    Mph(AnyMph),
}

/// An open segment over bytes `B` (owned or mapped). Every offset was validated at open.
pub struct Segment<B> {
    bytes: B,
    info: SegmentInfo,
    record_index: RecordIndex,
    filter: Option<Range<usize>>,
    index: Range<usize>,
    records: Range<usize>,
    pool: Range<usize>,
    /// Every checksum was verified (by `open`, or later by [`Segment::verify`]).
    verified: AtomicBool,
}

impl<B> std::fmt::Debug for Segment<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Segment").field("info", &self.info).finish()
    }
}

fn le_u16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}
fn le_u32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn le_u64(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes([
        b[at],
        b[at + 1],
        b[at + 2],
        b[at + 3],
        b[at + 4],
        b[at + 5],
        b[at + 6],
        b[at + 7],
    ])
}

/// The format-1 (fingerprint, value word) record at `slot`; `None` past the records.
#[inline]
fn record_at(b: &[u8], records: &Range<usize>, slot: usize) -> Option<(u64, u32)> {
    let at = slot
        .checked_mul(RECORD_LEN)
        .and_then(|off| records.start.checked_add(off))
        .filter(|&at| at < records.end)?;
    let r: &[u8; RECORD_LEN] = b.get(at..at + RECORD_LEN)?.try_into().ok()?;
    let (fp, v) = r.split_at(8);
    Some((
        u64::from_le_bytes(fp.try_into().ok()?),
        u32::from_le_bytes(v.try_into().ok()?),
    ))
}

impl<B: AsRef<[u8]>> Segment<B> {
    /// Opens `bytes`, naming it `what` in errors. Validates the header and every section's
    /// bounds; with `verify_checksums` also every section's crc32c and that the bytes no
    /// checksum covers (padding) are zero (a format-1 MPH section's crc is always verified,
    /// since it is decoded).
    pub fn open(bytes: B, what: &str, verify_checksums: bool) -> Result<Self> {
        let b = bytes.as_ref();
        let corrupt = |detail: String| Error::Corrupt {
            file: FileKind::Segment,
            what: what.to_string(),
            detail,
        };
        if b.len() < HEADER_LEN {
            return Err(if b.starts_with(MAGIC) || b.len() < MAGIC.len() {
                corrupt(format!("{} bytes is shorter than the header", b.len()))
            } else {
                Error::BadMagic {
                    file: FileKind::Segment,
                    what: what.into(),
                }
            });
        }
        if &b[..8] != MAGIC {
            return Err(Error::BadMagic {
                file: FileKind::Segment,
                what: what.into(),
            });
        }
        let version = le_u16(b, 8);
        if version != FORMAT_VERSION && version != MPH_FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: FileKind::Segment,
                what: what.into(),
                version: version.into(),
            });
        }
        let expected = le_u32(b, HEADER_CRC_AT);
        let got = crc32c::crc32c(&b[..HEADER_CRC_AT]);
        if expected != got {
            return Err(Error::ChecksumMismatch {
                file: FileKind::Segment,
                what: format!("{what} header"),
                expected,
                got,
            });
        }
        if le_u32(b, 12) as usize != HEADER_LEN {
            return Err(corrupt("unexpected header length".into()));
        }
        let key_count = le_u64(b, 16);
        let flags = le_u32(b, 44);
        let layout_byte = b[10];
        let filter_byte = b[11];
        let layout = match (layout_byte, key_count) {
            (0, 0) => None,
            (k, n) if n > 0 => Some(
                SegmentLayout::from_byte(k)
                    .filter(|l| version == FORMAT_VERSION || *l != SegmentLayout::Quotient)
                    .ok_or_else(|| corrupt(format!("unknown layout {k} in format {version}")))?,
            ),
            _ => return Err(corrupt("layout set on an empty segment".into())),
        };
        let decoded = matches!(layout, Some(SegmentLayout::Mph(_)));
        if filter_byte != FILTER_NONE && filter_byte != FILTER_BFUSE8 {
            return Err(corrupt(format!("unknown prefilter kind {filter_byte}")));
        }
        let mut ranges: [Range<usize>; super::SECTIONS] = Default::default();
        let mut prev_end = HEADER_LEN;
        for s in Section::ALL {
            let at = 48 + 24 * s as usize;
            let off = le_u64(b, at);
            let len = le_u64(b, at + 8);
            let end = off.checked_add(len).filter(|&e| e <= b.len() as u64);
            let Some(end) = end.filter(|_| off >= prev_end as u64) else {
                return Err(corrupt(format!("{} section out of bounds", s.name())));
            };
            let r = off as usize..end as usize;
            if verify_checksums || (decoded && s == Section::Index) {
                let expected = le_u32(b, at + 16);
                let got = crc32c::crc32c(&b[r.clone()]);
                if expected != got {
                    return Err(Error::ChecksumMismatch {
                        file: FileKind::Segment,
                        what: format!("{what} {} section", s.name()),
                        expected,
                        got,
                    });
                }
            }
            prev_end = r.end;
            ranges[s as usize] = r;
        }
        if verify_checksums {
            // every byte is accounted for: the bytes no checksum covers (header padding,
            // alignment gaps, anything after the last section) must be zero
            let mut covered = Vec::with_capacity(ranges.len() + 2);
            covered.push(0..HEADER_CRC_AT + 4);
            covered.extend(ranges.iter().cloned());
            covered.push(b.len()..b.len());
            for pair in covered.windows(2) {
                if b[pair[0].end..pair[1].start].iter().any(|&x| x != 0) {
                    return Err(corrupt(format!(
                        "non-zero padding at bytes {}..{}",
                        pair[0].end, pair[1].start
                    )));
                }
            }
        }
        let [index, filter_r, records, pool] = ranges;
        let n = usize::try_from(key_count)
            .map_err(|_| corrupt("key count exceeds the address space".into()))?;
        let record_index = match layout {
            None => RecordIndex::Empty,
            Some(SegmentLayout::Quotient) => RecordIndex::Quotient(
                Table::read(&b[index.clone()], records.len(), n).map_err(corrupt)?,
            ),
            Some(SegmentLayout::Mph(kind)) => {
                if Some(records.len() as u64) != key_count.checked_mul(RECORD_LEN as u64) {
                    return Err(corrupt(format!(
                        "{} record bytes do not hold {key_count} keys",
                        records.len()
                    )));
                }
                RecordIndex::Mph(AnyMph::read(kind, &b[index.clone()], n)?)
            }
        };
        if layout.is_none() && !records.is_empty() {
            return Err(corrupt("records in an empty segment".into()));
        }
        if n > 0 && b.get(pool.clone()).and_then(|p| p.first()) != Some(&0) {
            return Err(corrupt("pool does not start with the empty list".into()));
        }
        let filter = match filter_byte {
            FILTER_BFUSE8 => {
                prefilter::validate(&b[filter_r.clone()])?;
                Some(filter_r)
            }
            _ if filter_r.is_empty() => None,
            _ => return Err(corrupt("prefilter bytes without a prefilter kind".into())),
        };
        let info = SegmentInfo {
            key_count,
            clean_seq: le_u64(b, 24),
            seed_id: le_u64(b, 32),
            level: le_u32(b, 40),
            layout,
            prefilter: filter.is_some(),
            has_tombstones: flags & FLAG_TOMBSTONES != 0,
            bytes: b.len() as u64,
            header_crc32c: expected,
        };
        Ok(Segment {
            bytes,
            info,
            record_index,
            filter,
            index,
            records,
            pool,
            verified: AtomicBool::new(verify_checksums),
        })
    }

    /// Records that every checksum holds without reading them: for bytes this process has just
    /// built (the writer computed the checksums over them).
    pub(crate) fn mark_verified(&self) {
        self.verified.store(true, Ordering::Release);
    }

    /// Verifies every checksum, once: a no-op when `open` did. Merges call it on their inputs,
    /// so damage a lazy open (`verify_checksums: false`) did not see is refused rather than
    /// copied into a new segment whose checksums are valid. `what` names the segment.
    pub fn verify(&self, what: &str) -> Result<()> {
        if !self.verified.load(Ordering::Acquire) {
            Segment::open(self.bytes.as_ref(), what, true)?;
            self.verified.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// What the header says.
    pub fn info(&self) -> &SegmentInfo {
        &self.info
    }

    /// Heap bytes held beside the buffer (a format-1 segment's decoded MPH).
    pub fn heap_bytes(&self) -> usize {
        match &self.record_index {
            RecordIndex::Mph(m) => m.heap_bytes(),
            _ => 0,
        }
    }

    /// Looks `fp` up: [`Segment::admits`], then [`Segment::slots_of`], then
    /// [`Segment::value_in`]. Batched lookups run the three steps as separate passes.
    #[inline]
    pub fn probe(&self, fp: u64) -> Probe {
        if !self.admits(fp) {
            return Probe::Filtered;
        }
        match self.value_in(self.slots_of(fp), fp) {
            Some(v) => Probe::Found(v),
            None => Probe::Absent,
        }
    }

    /// Step 1: `false` when the prefilter rules `fp` out (always `true` without one).
    #[inline]
    pub fn admits(&self, fp: u64) -> bool {
        match &self.filter {
            Some(f) => prefilter::contains(&self.bytes.as_ref()[f.clone()], fp),
            None => true,
        }
    }

    /// Step 2: the records `fp` would be among (absent keys get some too, or none).
    #[inline]
    pub fn slots_of(&self, fp: u64) -> Slots {
        match &self.record_index {
            RecordIndex::Quotient(t) => t.slots_of(&self.bytes.as_ref()[self.index.clone()], fp),
            RecordIndex::Mph(m) => match m.slot(fp).and_then(|s| u32::try_from(s).ok()) {
                Some(s) if s < u32::MAX => Slots {
                    start: s,
                    end: s + 1,
                },
                _ => Slots::EMPTY,
            },
            RecordIndex::Empty => Slots::EMPTY,
        }
    }

    /// Step 3: the value word of `fp` if it is among `slots`.
    #[inline]
    pub fn value_in(&self, slots: Slots, fp: u64) -> Option<u32> {
        let b = self.bytes.as_ref();
        match &self.record_index {
            RecordIndex::Quotient(t) => t.find(&b[self.records.clone()], slots, fp),
            RecordIndex::Mph(_) if slots.end > slots.start => {
                match record_at(b, &self.records, slots.start as usize) {
                    Some((stored, v)) if stored == fp => Some(v),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    /// Starts loading what [`Segment::slots_of`] will read for `fp`: a batch's first pass
    /// over a segment (batches skip the prefilter: for them it costs more lines than it
    /// saves, see DESIGN "Batched lookups").
    #[inline]
    pub fn prefetch_slots(&self, fp: u64) {
        if let RecordIndex::Quotient(t) = &self.record_index {
            prefetch(
                &self.bytes.as_ref()[self.index.clone()],
                t.directory_offset(fp),
            );
        }
    }

    /// Starts loading the record [`Segment::value_in`] will read first for `fp`.
    #[inline]
    pub fn prefetch_value(&self, slots: Slots, fp: u64) {
        let at = match &self.record_index {
            RecordIndex::Quotient(t) => t.record_offset(slots, fp),
            RecordIndex::Mph(_) => (slots.start as usize).checked_mul(RECORD_LEN),
            RecordIndex::Empty => None,
        };
        if let Some(at) = at {
            prefetch(&self.bytes.as_ref()[self.records.clone()], at);
        }
    }

    /// Starts loading the pool list [`Segment::decode`] will read for `v` (none for an
    /// inline handle).
    #[inline]
    pub fn prefetch_decode(&self, v: u32) {
        if let Some(at) = pool::list_offset(v) {
            prefetch(&self.bytes.as_ref()[self.pool.clone()], at);
        }
    }

    /// Appends the handles value word `v` (from [`Segment::probe`]) stands for.
    #[inline]
    pub fn decode(&self, v: u32, out: &mut Vec<u32>) -> Result<()> {
        pool::decode_value(v, &self.bytes.as_ref()[self.pool.clone()], out)
    }

    /// Whether the handles of value word `v` include `handle`, decoding only up to it.
    #[inline]
    pub fn holds(&self, v: u32, handle: u32) -> Result<bool> {
        pool::value_holds(v, &self.bytes.as_ref()[self.pool.clone()], handle)
    }

    /// Every (fingerprint, value word) pair: in fingerprint order (format 2) or slot order.
    pub fn entries(&self) -> impl Iterator<Item = (u64, u32)> + '_ {
        let b = self.bytes.as_ref();
        let (quotient, mph) = match &self.record_index {
            RecordIndex::Quotient(t) => (
                Some(t.entries(&b[self.index.clone()], &b[self.records.clone()])),
                None,
            ),
            RecordIndex::Mph(_) => (
                None,
                Some(
                    (0..self.info.key_count as usize)
                        .filter_map(move |slot| record_at(b, &self.records, slot)),
                ),
            ),
            RecordIndex::Empty => (None, None),
        };
        quotient
            .into_iter()
            .flatten()
            .chain(mph.into_iter().flatten())
    }

    /// The underlying bytes.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.as_ref()
    }
}
