//! The handle pool: varint-encoded, delta-coded, sorted handle lists, and the value word
//! that points into it.
//!
//! ```text
//! value word (u32, one per slot)
//!   bit 31 = 1 : the key's set is the one handle in bits 0..31 (handles < 2^31)
//!   bit 31 = 0 : bits 0..31 are a byte offset into the pool
//!
//! pool list at an offset
//!   ┌──────────────┬──────────────┬───────────────┬─────┐
//!   │ count varint │ first varint │ delta varint  │ ... │   deltas are >= 1 (strictly sorted)
//!   └──────────────┴──────────────┴───────────────┴─────┘
//! offset 0 always holds the empty list (one 0x00 byte): the tombstone.
//! ```
//! Varints are LEB128: 7 bits per byte, least significant first, high bit = continuation.

use crate::error::{Error, FileKind, Result};

/// Flag bit of a value word that holds one handle inline.
pub const INLINE_FLAG: u32 = 1 << 31;
/// The value word of a tombstone (the empty list at pool offset 0).
pub const TOMBSTONE: u32 = 0;
/// Largest pool offset a value word can address.
pub const MAX_POOL_OFFSET: usize = (INLINE_FLAG - 1) as usize;

/// Bytes the LEB128 encoding of `v` takes.
// The exact sizes of the encodings, held to them by the round-trip tests.
#[cfg_attr(not(test), allow(dead_code))]
#[inline]
pub fn varint_len(v: u32) -> usize {
    match v {
        0..=0x7F => 1,
        0x80..=0x3FFF => 2,
        0x4000..=0x1F_FFFF => 3,
        0x20_0000..=0x0FFF_FFFF => 4,
        _ => 5,
    }
}

/// Appends the LEB128 encoding of `v`.
#[inline]
pub fn write_varint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a LEB128 u32 at `*pos`, advancing it; `None` if truncated or over 5 bytes.
#[inline]
pub fn read_varint(bytes: &[u8], pos: &mut usize) -> Option<u32> {
    let mut v: u32 = 0;
    for shift in (0..35).step_by(7) {
        let b = *bytes.get(*pos)?;
        *pos += 1;
        v |= u32::from(b & 0x7F).checked_shl(shift)?;
        if b & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

/// Exact bytes [`write_list`] appends for `handles` (sorted, unique).
#[cfg_attr(not(test), allow(dead_code))]
pub fn encoded_len(handles: &[u32]) -> usize {
    let mut len = varint_len(handles.len() as u32);
    let mut prev = 0;
    for (i, &h) in handles.iter().enumerate() {
        len += varint_len(if i == 0 { h } else { h - prev });
        prev = h;
    }
    len
}

/// Appends `handles` (sorted, unique) as a pool list.
pub fn write_list(out: &mut Vec<u8>, handles: &[u32]) {
    write_varint(out, handles.len() as u32);
    let mut prev = 0;
    for (i, &h) in handles.iter().enumerate() {
        write_varint(out, if i == 0 { h } else { h - prev });
        prev = h;
    }
}

/// Walks the list at `offset`, handing each handle to `visit` in order until it answers
/// `true`: `Some(whether it stopped early)`, `None` for corrupt bytes (truncation,
/// non-increasing handles, overflow).
#[inline]
fn walk(pool: &[u8], offset: usize, mut visit: impl FnMut(u32) -> bool) -> Option<bool> {
    let mut pos = offset;
    let count = read_varint(pool, &mut pos)?;
    // Each handle takes at least one byte: refuse counts the pool cannot hold.
    if count as usize > pool.len().saturating_sub(pos) {
        return None;
    }
    let mut prev: u32 = 0;
    for i in 0..count {
        let d = read_varint(pool, &mut pos)?;
        let h = if i == 0 {
            d
        } else if d == 0 {
            return None;
        } else {
            prev.checked_add(d)?
        };
        if visit(h) {
            return Some(true);
        }
        prev = h;
    }
    Some(false)
}

/// The error of a corrupt list at `offset`.
fn corrupt(offset: usize) -> Error {
    Error::Corrupt {
        file: FileKind::Segment,
        what: "segment pool".into(),
        detail: format!("bad handle list at offset {offset}"),
    }
}

/// Decodes the list at `offset`, appending its handles to `out`. Corrupt bytes (truncation,
/// non-increasing handles, overflow) return `Err` and leave `out` as it was.
pub fn read_list(pool: &[u8], offset: usize, out: &mut Vec<u32>) -> Result<()> {
    let start = out.len();
    match walk(pool, offset, |h| {
        out.push(h);
        false
    }) {
        Some(_) => Ok(()),
        None => {
            out.truncate(start);
            Err(corrupt(offset))
        }
    }
}

/// Whether the list at `offset` holds `handle`, decoding only up to it (no copy). Corrupt
/// bytes read on the way return `Err`.
pub fn list_holds(pool: &[u8], offset: usize, handle: u32) -> Result<bool> {
    let mut found = false;
    walk(pool, offset, |h| {
        found = h == handle;
        h >= handle
    })
    .ok_or_else(|| corrupt(offset))?;
    Ok(found)
}

/// Builds a pool, sharing one copy of each distinct list. Lists are recognised by their
/// encoded bytes, already in the pool: no allocation per list (a build of millions of small
/// lists left the process's heap fragmented when each had a key of its own).
pub struct PoolWriter {
    bytes: Vec<u8>,
    /// Offsets of the lists written, by the hash of their encoded bytes.
    seen: hashbrown::HashTable<u32>,
    hasher: ahash::RandomState,
}

impl Default for PoolWriter {
    fn default() -> Self {
        PoolWriter {
            bytes: vec![0], // offset 0: the tombstone's empty list
            seen: hashbrown::HashTable::new(),
            hasher: ahash::RandomState::new(),
        }
    }
}

impl PoolWriter {
    /// The value word for `handles` (sorted, unique), appending to the pool if needed.
    pub fn value_for(&mut self, handles: &[u32]) -> Result<u32> {
        match handles {
            [] => Ok(TOMBSTONE),
            [h] if *h < INLINE_FLAG => Ok(INLINE_FLAG | *h),
            _ => {
                let off = self.bytes.len();
                if off > MAX_POOL_OFFSET {
                    return Err(Error::TooLarge {
                        what: "segment handle pool (2 GiB)",
                    });
                }
                write_list(&mut self.bytes, handles);
                let (pool, hasher) = (&self.bytes, &self.hasher);
                let list = |at: u32| -> &[u8] {
                    let at = at as usize;
                    let mut pos = at;
                    // a list written here: its count and handles decode (bounded by `off`)
                    let count = read_varint(pool, &mut pos).unwrap_or(0);
                    for _ in 0..count {
                        if read_varint(pool, &mut pos).is_none() {
                            break;
                        }
                    }
                    &pool[at..pos]
                };
                let new = &pool[off..];
                let hash = hasher.hash_one(new);
                if let Some(&existing) = self.seen.find(hash, |&at| list(at) == new) {
                    self.bytes.truncate(off);
                    return Ok(existing);
                }
                let off = off as u32;
                self.seen
                    .insert_unique(hash, off, |&at| hasher.hash_one(list(at)));
                Ok(off)
            }
        }
    }

    /// The finished pool bytes.
    pub fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Appends the handles a value word stands for to `out`.
#[inline]
pub fn decode_value(value: u32, pool: &[u8], out: &mut Vec<u32>) -> Result<()> {
    if value & INLINE_FLAG != 0 {
        out.push(value & !INLINE_FLAG);
        Ok(())
    } else {
        read_list(pool, value as usize, out)
    }
}

/// Where in the pool [`decode_value`] reads the list of value word `value`; `None` for an
/// inline handle (to prefetch it).
#[inline]
pub fn list_offset(value: u32) -> Option<usize> {
    (value & INLINE_FLAG == 0).then_some(value as usize)
}

/// Whether the handles a value word stands for include `handle` (no copy).
#[inline]
pub fn value_holds(value: u32, pool: &[u8], handle: u32) -> Result<bool> {
    if value & INLINE_FLAG != 0 {
        Ok(value & !INLINE_FLAG == handle)
    } else {
        list_holds(pool, value as usize, handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn varint_lengths_at_boundaries() {
        for (v, n) in [
            (0, 1),
            (127, 1),
            (128, 2),
            (16383, 2),
            (16384, 3),
            (u32::MAX, 5),
        ] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            assert_eq!(out.len(), n, "{v}");
            assert_eq!(varint_len(v), n);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos), Some(v));
            assert_eq!(pos, n);
        }
    }

    #[test]
    fn truncated_and_overlong_varints_are_refused() {
        let mut pos = 0;
        assert_eq!(read_varint(&[0x80], &mut pos), None);
        let mut pos = 0;
        assert_eq!(read_varint(&[0xFF; 6], &mut pos), None);
    }

    #[test]
    fn tombstone_and_inline_values() {
        let mut w = PoolWriter::default();
        assert_eq!(w.value_for(&[]).unwrap(), TOMBSTONE);
        assert_eq!(w.value_for(&[7]).unwrap(), INLINE_FLAG | 7);
        let big = w.value_for(&[u32::MAX]).unwrap();
        assert_eq!(big & INLINE_FLAG, 0);
        let pool = w.finish();
        let mut out = Vec::new();
        decode_value(TOMBSTONE, &pool, &mut out).unwrap();
        assert!(out.is_empty());
        decode_value(big, &pool, &mut out).unwrap();
        assert_eq!(out, vec![u32::MAX]);
    }

    #[test]
    fn identical_lists_are_stored_once() {
        let mut w = PoolWriter::default();
        let a = w.value_for(&[1, 2, 3]).unwrap();
        let b = w.value_for(&[1, 2, 3]).unwrap();
        assert_eq!(a, b);
        assert_eq!(w.finish().len(), 1 + encoded_len(&[1, 2, 3]));
    }

    #[test]
    fn corrupt_lists_are_errors_not_panics() {
        let mut out = vec![9];
        // count 3 but only one handle byte
        assert!(read_list(&[3, 1], 0, &mut out).is_err());
        // zero delta: not strictly increasing
        assert!(read_list(&[2, 1, 0], 0, &mut out).is_err());
        // offset past the end
        assert!(read_list(&[0], 5, &mut out).is_err());
        // overflow
        assert!(read_list(&[2, 0xFF, 0xFF, 0xFF, 0xFF, 0x0F, 1], 0, &mut out).is_err());
        assert_eq!(out, vec![9], "a failed decode leaves the output untouched");
        assert!(list_holds(&[3, 1], 0, 5).is_err());
        assert!(list_holds(&[2, 1, 0], 0, 5).is_err());
        assert!(list_holds(&[0], 5, 0).is_err());
    }

    proptest! {
        #[test]
        fn list_round_trip_with_exact_encoded_len(set in proptest::collection::btree_set(any::<u32>(), 0..64)) {
            let handles: Vec<u32> = set.into_iter().collect();
            let mut out = Vec::new();
            write_list(&mut out, &handles);
            prop_assert_eq!(out.len(), encoded_len(&handles));
            let mut back = Vec::new();
            read_list(&out, 0, &mut back).unwrap();
            prop_assert_eq!(back, handles);
        }

        #[test]
        fn holds_agrees_with_decode(
            set in proptest::collection::btree_set(0u32..200, 0..16),
            probe in 0u32..210,
        ) {
            let handles: Vec<u32> = set.into_iter().collect();
            let mut w = PoolWriter::default();
            let value = w.value_for(&handles).unwrap();
            let pool = w.finish();
            prop_assert_eq!(value_holds(value, &pool, probe).unwrap(), handles.contains(&probe));
        }
    }
}
