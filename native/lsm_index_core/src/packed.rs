//! Packed key lists: a batch of index keys in one byte string, so a caller (the NIF's
//! `index_lookup_many_packed`) hands the core borrowed slices of one buffer instead of
//! converting each key on its own.
//!
//! ```text
//! count u32 LE | key* (exactly `count` of them, nothing after the last)
//! key          = len u32 LE | key bytes (len bytes: an Elixir key as `key` encodes it)
//!
//!   tag 1  integer         len 9:  1 | i64 big-endian
//!   tag 2  binary          len ≥ 1: 2 | the bytes
//!   tag 3  any other term  len ≥ 2: 3 | its external term format (first byte 131)
//! ```
//!
//! The key bytes are exactly those of [`crate::key::int_key`], [`crate::key::binary_key`]
//! and [`crate::key::term_key`], so a packed key finds what the same key finds alone. The
//! count comes first so that a reader knows the batch's size without walking it (the Elixir
//! side chooses its scheduler by it). Every length is checked against the buffer; a
//! malformed list is refused as a whole with the offset of the first thing wrong.

use std::fmt;

/// Bytes of the count and of each key's length.
const LEN_BYTES: usize = 4;
/// The first byte of every external term format (`:erlang.term_to_binary/1`).
const EXTERNAL_FORMAT: u8 = 131;

/// Why a packed key list was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PackedError {
    /// Byte offset of what is malformed: the count (0), a key's length, or its bytes.
    pub offset: usize,
    /// What is wrong there.
    pub reason: &'static str,
}

impl fmt::Display for PackedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.reason, self.offset)
    }
}

impl std::error::Error for PackedError {}

/// The keys of `packed`, in order, borrowed from it (no key is copied).
pub fn keys(packed: &[u8]) -> Result<Vec<&[u8]>, PackedError> {
    let count = read_len(packed, 0).ok_or(PackedError {
        offset: 0,
        reason: "truncated count",
    })?;
    // each key takes at least its length and a tag: a bogus count reserves no more than that
    let mut keys = Vec::with_capacity(count.min(packed.len() / (LEN_BYTES + 1)));
    let mut at = LEN_BYTES;
    for _ in 0..count {
        let len = read_len(packed, at).ok_or(PackedError {
            offset: at,
            reason: "truncated key length",
        })?;
        let start = at + LEN_BYTES;
        let key = start
            .checked_add(len)
            .and_then(|end| packed.get(start..end))
            .ok_or(PackedError {
                offset: at,
                reason: "key length past the end",
            })?;
        check_key(key).map_err(|reason| PackedError {
            offset: start,
            reason,
        })?;
        keys.push(key);
        at = start + len;
    }
    if at != packed.len() {
        return Err(PackedError {
            offset: at,
            reason: "bytes after the last key",
        });
    }
    Ok(keys)
}

/// `keys` packed (the layout above): the reference encoder, for tests and Rust callers.
pub fn pack<K: AsRef<[u8]>>(keys: &[K]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed_len(keys));
    out.extend_from_slice(&len_bytes(keys.len()));
    for k in keys {
        out.extend_from_slice(&len_bytes(k.as_ref().len()));
        out.extend_from_slice(k.as_ref());
    }
    out
}

/// The exact length of `pack(keys)`.
pub fn packed_len<K: AsRef<[u8]>>(keys: &[K]) -> usize {
    LEN_BYTES
        + keys
            .iter()
            .map(|k| LEN_BYTES + k.as_ref().len())
            .sum::<usize>()
}

/// The u32 little-endian length at `at`, if all four bytes are there.
fn read_len(packed: &[u8], at: usize) -> Option<usize> {
    let bytes = packed.get(at..at.checked_add(LEN_BYTES)?)?;
    let word: [u8; LEN_BYTES] = bytes.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(word)).ok()
}

/// A count or length as its four bytes (keys and batches are far below 4 GiB; a larger one
/// saturates, and `keys` then refuses the list).
fn len_bytes(n: usize) -> [u8; LEN_BYTES] {
    u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes()
}

/// Whether `key` has the shape of one of the three key encodings.
fn check_key(key: &[u8]) -> Result<(), &'static str> {
    match key {
        [] => Err("empty key (no tag byte)"),
        [1, body @ ..] if body.len() == 8 => Ok(()),
        [1, ..] => Err("integer key not 8 bytes"),
        [2, ..] => Ok(()),
        [3, EXTERNAL_FORMAT, ..] => Ok(()),
        [3, ..] => Err("term key not in external term format"),
        _ => Err("unknown key tag"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{binary_key, int_key, term_key};

    fn some_keys() -> Vec<Vec<u8>> {
        vec![
            int_key(42).to_vec(),
            int_key(i64::MIN).to_vec(),
            binary_key(b"").to_vec(),
            binary_key(&[7; 300]).to_vec(),
            term_key(&[131, 100, 0, 3, b'n', b'i', b'l']).to_vec(),
            binary_key(b"user_id=42").to_vec(),
        ]
    }

    #[test]
    fn round_trips_with_an_exact_length() {
        for n in 0..=some_keys().len() {
            let keys = &some_keys()[..n];
            let packed = pack(keys);
            assert_eq!(packed.len(), packed_len(keys));
            let back: Vec<&[u8]> = keys.iter().map(Vec::as_slice).collect();
            assert_eq!(super::keys(&packed), Ok(back));
        }
    }

    #[test]
    fn layout_is_fixed() {
        let packed = pack(&[int_key(1), binary_key(b"ab")]);
        let want = [
            2, 0, 0, 0, // count
            9, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, // 1
            3, 0, 0, 0, 2, b'a', b'b', // "ab"
        ];
        assert_eq!(packed, want);
    }

    #[test]
    fn keys_are_borrowed_not_copied() {
        let packed = pack(&[binary_key(b"ab")]);
        let keys = keys(&packed).expect("well formed");
        assert!(std::ptr::eq(keys[0].as_ptr(), packed[8..].as_ptr()));
    }

    fn refused(packed: &[u8]) -> (usize, &'static str) {
        let e = keys(packed).expect_err("malformed");
        (e.offset, e.reason)
    }

    #[test]
    fn malformed_lists_are_refused_with_their_offset() {
        assert_eq!(refused(&[]), (0, "truncated count"));
        assert_eq!(refused(&[1, 0, 0]), (0, "truncated count"));
        // fewer keys than counted
        assert_eq!(refused(&[1, 0, 0, 0]), (4, "truncated key length"));
        assert_eq!(refused(&[1, 0, 0, 0, 1, 0]), (4, "truncated key length"));
        assert_eq!(
            refused(&[1, 0, 0, 0, 3, 0, 0, 0, 2, 1]),
            (4, "key length past the end")
        );
        let huge = [1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 2];
        assert_eq!(refused(&huge), (4, "key length past the end"));
        // more bytes than counted
        let mut extra = pack(&[binary_key(b"a")]);
        extra.push(0);
        assert_eq!(refused(&extra), (10, "bytes after the last key"));
        assert_eq!(refused(&[0, 0, 0, 0, 0]), (4, "bytes after the last key"));
        // a bogus count reserves nothing it cannot fill
        let bogus = [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 2];
        assert_eq!(refused(&bogus), (9, "truncated key length"));
    }

    #[test]
    fn keys_of_no_known_encoding_are_refused() {
        let one = |key: &[u8]| refused(&pack(&[key]));
        assert_eq!(one(&[]), (8, "empty key (no tag byte)"));
        assert_eq!(
            one(&[1, 0, 0, 0, 0, 0, 0, 0]),
            (8, "integer key not 8 bytes")
        );
        assert_eq!(one(&[1; 10]), (8, "integer key not 8 bytes"));
        assert_eq!(one(&[3]), (8, "term key not in external term format"));
        assert_eq!(one(&[3, 1, 2]), (8, "term key not in external term format"));
        assert_eq!(one(&[0, 1]), (8, "unknown key tag"));
        assert_eq!(one(&[4, 1]), (8, "unknown key tag"));
        // the second key's offset
        let packed = pack(&[binary_key(b"a").to_vec(), vec![9]]);
        assert_eq!(refused(&packed), (14, "unknown key tag"));
    }

    proptest::proptest! {
        /// Any bytes are refused or parsed to keys that pack back to exactly those bytes (the
        /// fuzz target `packed_keys` runs the same check unbounded).
        #[test]
        fn any_bytes_are_refused_or_round_trip(data in proptest::collection::vec(0u8..=255, 0..64)) {
            if let Ok(keys) = keys(&data) {
                proptest::prop_assert_eq!(pack(&keys), data);
            }
        }

        /// A valid list with one byte changed or cut short never panics and, if still
        /// accepted, still round-trips.
        #[test]
        fn damaged_lists_never_panic(
            ints in proptest::collection::vec(proptest::num::i64::ANY, 0..6),
            bins in proptest::collection::vec(proptest::collection::vec(0u8..=255, 0..12), 0..6),
            at in 0usize..200,
            byte in 0u8..=255,
            cut in 0usize..200,
        ) {
            let mut list: Vec<Vec<u8>> = ints.iter().map(|&i| int_key(i).to_vec()).collect();
            list.extend(bins.iter().map(|b| binary_key(b).to_vec()));
            // never empty: the count comes first
            let mut packed = pack(&list);
            let at = at % packed.len();
            packed[at] = byte;
            packed.truncate(packed.len() - cut.min(packed.len()));
            if let Ok(keys) = keys(&packed) {
                proptest::prop_assert_eq!(pack(&keys), packed.clone());
            }
        }
    }

    #[test]
    fn an_empty_list_is_four_bytes() {
        assert_eq!(pack::<&[u8]>(&[]), [0, 0, 0, 0]);
        assert_eq!(keys(&[0, 0, 0, 0]), Ok(vec![]));
    }
}
