//! The quotient table (segment format 2): a segment's fingerprints sorted and split into 2^k
//! buckets by their top k bits, each record keeping only the 64 - k bits its bucket does not
//! imply, beside its bit-packed value word.
//!
//! Why: a lookup still compares all 64 fingerprint bits (the bucket supplies the top k), so
//! exactness is that of a stored fingerprint, at k bits less per key; no hash function has to
//! be decoded at open (the directory is read in place), and entries come out sorted.
//!
//! ```text
//! DIRECTORY  bucket bits u8 │ value bits u8 │ 6 zero bytes
//!            2^bucket_bits + 1 × u32: the first record of each bucket; the last is the key count
//! RECORDS    key count × (64 - bucket bits + value bits) bits, packed least significant bit
//!            first: the fingerprint's low 64 - bucket bits, then the packed value;
//!            then 16 zero bytes, so that every record is one unaligned 16-byte load
//! packed value: the value word rotated left by one bit (the inline flag becomes bit 0), so a
//!            segment of small handles or a small pool needs few value bits
//! ```
//! Buckets average 8 to 16 records: a lookup reads two directory words, then searches its
//! bucket from the interpolated position of its remainder (usually one cache line).

use super::Slots;
use crate::error::{Error, Result};

/// Bytes of the directory's fixed part.
pub const DIRECTORY_HEADER: usize = 8;
/// Zero bytes after the packed records.
pub const RECORDS_PAD: usize = 16;
/// Buckets are sized so that they hold this many records on average, or up to twice as many.
const BUCKET_TARGET: usize = 8;
/// Largest bucket bits a reader accepts (a directory of 2^32 words is already 16 GiB).
const MAX_BUCKET_BITS: u32 = 32;

/// A quotient table's shape, read from its directory header: everything a probe needs.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    bucket_bits: u32,
    remainder_bits: u32,
    record_bits: u32,
    remainder_mask: u64,
    value_mask: u64,
    buckets: usize,
    keys: usize,
}

/// Bucket bits for `n` keys: as many buckets as keep the average at or above the target.
fn bucket_bits_for(n: usize) -> u32 {
    match n / BUCKET_TARGET {
        0 => 0,
        b => usize::BITS - 1 - b.leading_zeros(),
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    }
}

impl Table {
    fn new(bucket_bits: u32, value_bits: u32, keys: usize) -> Table {
        let remainder_bits = 64 - bucket_bits;
        Table {
            bucket_bits,
            remainder_bits,
            record_bits: remainder_bits + value_bits,
            remainder_mask: mask(remainder_bits),
            value_mask: mask(value_bits),
            buckets: 1 << bucket_bits,
            keys,
        }
    }

    /// Bytes of the directory section.
    fn directory_len(&self) -> usize {
        DIRECTORY_HEADER + (self.buckets + 1) * 4
    }

    /// Bytes of the records section.
    fn records_len(&self) -> Option<usize> {
        self.keys
            .checked_mul(self.record_bits as usize)
            .map(|bits| bits.div_ceil(8) + RECORDS_PAD)
    }

    /// Reads and checks the directory header against the section lengths (the bucket
    /// starts themselves are checked on use: a probe never leaves the records).
    pub fn read(
        directory: &[u8],
        records_len: usize,
        keys: usize,
    ) -> std::result::Result<Table, String> {
        let [bucket_bits, value_bits, rest @ ..] = directory.get(..DIRECTORY_HEADER).unwrap_or(&[])
        else {
            return Err("directory shorter than its header".into());
        };
        let (bucket_bits, value_bits) = (u32::from(*bucket_bits), u32::from(*value_bits));
        if bucket_bits > MAX_BUCKET_BITS || value_bits > 32 || rest.iter().any(|&b| b != 0) {
            return Err(format!(
                "bad directory header ({bucket_bits} bucket bits, {value_bits} value bits)"
            ));
        }
        let table = Table::new(bucket_bits, value_bits, keys);
        if directory.len() != table.directory_len() {
            return Err(format!(
                "{} directory bytes for {} buckets",
                directory.len(),
                table.buckets
            ));
        }
        if table.records_len() != Some(records_len) {
            return Err(format!(
                "{records_len} record bytes do not hold {keys} keys"
            ));
        }
        Ok(table)
    }

    /// The first record of bucket `bucket` (`buckets` names the end of the last one).
    #[inline]
    fn start(&self, directory: &[u8], bucket: usize) -> Option<usize> {
        let at = DIRECTORY_HEADER + 4 * bucket;
        let word = directory.get(at..at + 4)?.try_into().ok()?;
        Some(u32::from_le_bytes(word) as usize)
    }

    /// The bucket of `fp`: its top `bucket_bits` bits.
    #[inline]
    fn bucket_of(&self, fp: u64) -> usize {
        ((fp as u128) >> self.remainder_bits) as usize
    }

    /// Where in the directory [`Table::slots_of`] reads `fp`'s bucket (to prefetch it).
    #[inline]
    pub fn directory_offset(&self, fp: u64) -> usize {
        DIRECTORY_HEADER + 4 * self.bucket_of(fp)
    }

    /// The records `fp` can be among: its bucket's (empty when the directory is corrupt).
    #[inline]
    pub fn slots_of(&self, directory: &[u8], fp: u64) -> Slots {
        let bucket = self.bucket_of(fp);
        match (
            self.start(directory, bucket),
            self.start(directory, bucket + 1),
        ) {
            (Some(start), Some(end)) if start <= end && end <= self.keys => Slots {
                start: start as u32,
                end: end as u32,
            },
            _ => Slots::EMPTY,
        }
    }

    /// Record `i`: (fingerprint remainder, value word).
    #[inline]
    fn record(&self, records: &[u8], i: usize) -> Option<(u64, u32)> {
        let bit = i * self.record_bits as usize;
        let at = bit / 8;
        let word: [u8; 16] = records.get(at..at + 16)?.try_into().ok()?;
        let x = u128::from_le_bytes(word) >> (bit % 8);
        let remainder = x as u64 & self.remainder_mask;
        let packed = (x >> self.remainder_bits) as u64 & self.value_mask;
        Some((remainder, (packed as u32).rotate_right(1)))
    }

    /// The value word of `fp` if it is among `slots`. Remainders are uniform within a
    /// bucket, so the search starts where `fp`'s remainder would sit if they were evenly
    /// spaced and walks towards it: usually one or two records, one cache line.
    #[inline]
    pub fn find(&self, records: &[u8], slots: Slots, fp: u64) -> Option<u32> {
        let want = fp & self.remainder_mask;
        let (start, end) = (slots.start as usize, slots.end as usize);
        let guess = self.guess(slots, fp)?;
        let (remainder, value) = self.record(records, guess)?;
        if remainder == want {
            return Some(value);
        }
        if remainder < want {
            for i in guess + 1..end {
                let (remainder, value) = self.record(records, i)?;
                if remainder >= want {
                    return (remainder == want).then_some(value);
                }
            }
        } else {
            for i in (start..guess).rev() {
                let (remainder, value) = self.record(records, i)?;
                if remainder <= want {
                    return (remainder == want).then_some(value);
                }
            }
        }
        None
    }

    /// The record of `slots` where `fp`'s remainder would sit if the bucket's remainders
    /// were evenly spaced: where [`Table::find`] starts; `None` for an empty bucket.
    #[inline]
    fn guess(&self, slots: Slots, fp: u64) -> Option<usize> {
        let want = fp & self.remainder_mask;
        let count = slots.end.checked_sub(slots.start).filter(|&c| c > 0)?;
        let step = (u128::from(want) * u128::from(count)) >> self.remainder_bits;
        Some(slots.start as usize + step as usize)
    }

    /// Where in the records [`Table::find`] first reads for `fp` among `slots` (to
    /// prefetch it); `None` for an empty bucket.
    #[inline]
    pub fn record_offset(&self, slots: Slots, fp: u64) -> Option<usize> {
        Some(self.guess(slots, fp)? * self.record_bits as usize / 8)
    }

    /// Every (fingerprint, value word) pair, in fingerprint order.
    pub fn entries<'a>(
        &'a self,
        directory: &'a [u8],
        records: &'a [u8],
    ) -> impl Iterator<Item = (u64, u32)> + 'a {
        // record i is in the last bucket starting at or before it
        let mut bucket = 0usize;
        (0..self.keys).filter_map(move |i| {
            while bucket + 1 < self.buckets
                && self.start(directory, bucket + 1).is_none_or(|s| s <= i)
            {
                bucket += 1;
            }
            let high = ((bucket as u128) << self.remainder_bits) as u64;
            let (remainder, value) = self.record(records, i)?;
            Some((high | remainder, value))
        })
    }
}

/// Lays out `entries` (distinct fingerprints with their value words; sorted here) as the
/// directory and records sections.
pub fn write(entries: &mut [(u64, u32)]) -> Result<(Vec<u8>, Vec<u8>)> {
    entries.sort_unstable_by_key(|&(fp, _)| fp);
    if entries.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(Error::MphBuild {
            kind: "quotient",
            detail: "duplicate fingerprint".into(),
        });
    }
    let keys = entries.len();
    if u32::try_from(keys).is_err() {
        return Err(Error::TooLarge {
            what: "segment (2^32 keys)",
        });
    }
    let max_packed = entries
        .iter()
        .map(|&(_, v)| v.rotate_left(1))
        .max()
        .unwrap_or(0);
    let table = Table::new(bucket_bits_for(keys), 32 - max_packed.leading_zeros(), keys);
    let mut directory = Vec::with_capacity(table.directory_len());
    directory.extend_from_slice(&[
        table.bucket_bits as u8,
        (table.record_bits - table.remainder_bits) as u8,
    ]);
    directory.resize(DIRECTORY_HEADER, 0);
    let mut next = 0usize;
    for bucket in 0..=table.buckets {
        while next < keys && (((entries[next].0 as u128) >> table.remainder_bits) as usize) < bucket
        {
            next += 1;
        }
        directory.extend_from_slice(&(next as u32).to_le_bytes());
    }
    let records_len = table.records_len().ok_or(Error::TooLarge {
        what: "segment records",
    })?;
    let mut records = vec![0u8; records_len];
    for (i, &(fp, v)) in entries.iter().enumerate() {
        let x = (u128::from(v.rotate_left(1)) << table.remainder_bits)
            | u128::from(fp & table.remainder_mask);
        let bit = i * table.record_bits as usize;
        let at = bit / 8;
        let slot: &mut [u8; 16] =
            (&mut records[at..at + 16])
                .try_into()
                .map_err(|_| Error::TooLarge {
                    what: "segment records",
                })?;
        *slot = (u128::from_le_bytes(*slot) | (x << (bit % 8))).to_le_bytes();
    }
    Ok((directory, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_of(entries: &[(u64, u32)]) -> (Table, Vec<u8>, Vec<u8>) {
        let mut e = entries.to_vec();
        let (dir, rec) = write(&mut e).unwrap();
        let t = Table::read(&dir, rec.len(), entries.len()).unwrap();
        (t, dir, rec)
    }

    #[test]
    fn bucket_bits_keep_eight_to_sixteen_keys_per_bucket() {
        assert_eq!(bucket_bits_for(0), 0);
        assert_eq!(bucket_bits_for(15), 0);
        assert_eq!(bucket_bits_for(16), 1);
        assert_eq!(bucket_bits_for(156_250), 14);
        for n in [16usize, 1000, 156_250, 10_000_000] {
            let avg = n as f64 / (1u64 << bucket_bits_for(n)) as f64;
            assert!((8.0..16.0).contains(&avg), "{n}: {avg}");
        }
    }

    #[test]
    fn extreme_fingerprints_and_values_round_trip() {
        let entries = [
            (0, 0),
            (u64::MAX, u32::MAX),
            (1 << 63, 1 << 31),
            (42, 0x8000_0007),
            ((1 << 63) - 1, 5),
        ];
        for n in [1, 2, 5] {
            let (t, dir, rec) = table_of(&entries[..n]);
            for &(fp, v) in &entries[..n] {
                assert_eq!(t.find(&rec, t.slots_of(&dir, fp), fp), Some(v), "{fp:#x}");
            }
            assert_eq!(t.find(&rec, t.slots_of(&dir, 7), 7), None);
            let mut want = entries[..n].to_vec();
            want.sort_unstable();
            assert_eq!(t.entries(&dir, &rec).collect::<Vec<_>>(), want);
        }
    }

    #[test]
    fn corrupt_directories_never_leave_the_records() {
        let entries: Vec<(u64, u32)> = (0..1000u64)
            .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15), i as u32))
            .collect();
        let (t, mut dir, rec) = table_of(&entries);
        for b in &mut dir[DIRECTORY_HEADER..] {
            *b = 0xFF;
        }
        for &(fp, _) in &entries {
            assert_eq!(t.find(&rec, t.slots_of(&dir, fp), fp), None);
        }
        assert!(Table::read(&dir[..7], rec.len(), 1000).is_err());
        assert!(Table::read(&dir, rec.len() - 1, 1000).is_err());
        let mut bad = dir.clone();
        bad[0] = 40;
        assert!(Table::read(&bad, rec.len(), 1000).is_err());
    }

    #[test]
    fn duplicate_fingerprints_are_refused() {
        assert!(write(&mut [(1, 1), (1, 2)]).is_err());
    }
}
