//! Index key bytes: the tagged encodings that keys are hashed from. Part of the file format:
//! a persisted index finds its keys again only if they encode to the same bytes.
//!
//! ```text
//! Elixir key (LsmIndex, the index NIF):  tag u8 | body
//!   tag 1  integer         body = i64 big-endian
//!   tag 2  binary          body = the bytes
//!   tag 3  any other term  body = its deterministic external term format
//!
//! Column key (ShapeRouter: a column = value conjunct):  column u16 LE | value key
//!
//! Value key (one canonical encoding per SQL value; `LsmIndex.Filter`'s equality-index keys
//! as they are, the tail of every column key):  tag u8 | value
//!   tag 1  int2/int4/int8  value = i64 little-endian
//!   tag 2  float8          value = f64 bits little-endian (every NaN as f64::NAN, -0 as 0)
//!   tag 3  bool            value = 0 or 1
//!   tag 4  text            value = the UTF-8 bytes
//!   tag 5  uuid            value = u128 little-endian
//!   tag 6  numeric         value = kind u8 (0 -inf, 1 number, 2 inf, 3 NaN); a number:
//!                                  negative u8 | exponent i32 LE | digits (ASCII, canonical)
//!   tag 7  date            value = days since 2000-01-01, i32 LE
//!   tag 8  time            value = microseconds, i64 LE
//!   tag 9  timestamp       value = microseconds since 2000-01-01, i64 LE
//!   tag 10 timestamptz     value = microseconds since 2000-01-01 UTC, i64 LE
//!   tag 11 enum            value = the label's position, u32 LE
//!   tag 12 array           value = count u32 LE, then per element 0 (NULL) or
//!                                  1 | its value key's length u32 LE | its value key
//!   tag 13 row             value = arity u8, then per column 1 | length u32 LE | value key
//!                                  (subquery views' composite values, router/views/key.rs)
//! ```
//!
//! float4 values are held widened to float8 and share tag 2.
//!
//! Within each encoding every kind has its own tag byte, so no two distinct keys share bytes,
//! and values that are equal in SQL (`-0` and `0`, every NaN) share theirs. The router's
//! column keys live in its own (in-memory) equality index; the filter's value keys are binary
//! keys of an `LsmIndex` (Elixir key tag 2) or of a map.

use crate::predicate::Value;
use smallvec::SmallVec;

/// Key bytes: inline up to 32 bytes, so integer and short binary keys cost no allocation.
pub type KeyBytes = SmallVec<[u8; 32]>;

/// A column key being built: inline up to 40 bytes, so keys of text values up to 37 bytes
/// cost no allocation.
pub type ColumnKey = SmallVec<[u8; 40]>;

/// Tag of an integer key.
const TAG_INT: u8 = 1;
/// Tag of a binary key.
const TAG_BINARY: u8 = 2;
/// Tag of any other term's external form.
const TAG_TERM: u8 = 3;

/// The key bytes of an integer key.
pub fn int_key(i: i64) -> KeyBytes {
    tagged(TAG_INT, &i.to_be_bytes())
}

/// The key bytes of a binary key.
pub fn binary_key(bytes: &[u8]) -> KeyBytes {
    tagged(TAG_BINARY, bytes)
}

/// The key bytes of any other term, given its deterministic external term format.
pub fn term_key(external: &[u8]) -> KeyBytes {
    tagged(TAG_TERM, external)
}

/// Appends the key bytes of an integer key to `out` (as [`int_key`]): a batch's keys laid
/// end to end in one buffer.
pub fn push_int_key(i: i64, out: &mut Vec<u8>) {
    out.push(TAG_INT);
    out.extend_from_slice(&i.to_be_bytes());
}

/// Appends the key bytes of a binary key to `out` (as [`binary_key`]).
pub fn push_binary_key(bytes: &[u8], out: &mut Vec<u8>) {
    out.push(TAG_BINARY);
    out.extend_from_slice(bytes);
}

/// Appends the key bytes of another term to `out` (as [`term_key`]).
pub fn push_term_key(external: &[u8], out: &mut Vec<u8>) {
    out.push(TAG_TERM);
    out.extend_from_slice(external);
}

/// Writes the column key of `value` in `column` to `out` (cleared first): the column id, then
/// the value key (see the module doc). `column` < 2^16.
pub fn column_key(column: usize, value: &Value, out: &mut ColumnKey) {
    out.clear();
    out.extend_from_slice(&(column as u16).to_le_bytes());
    value_key(value, out);
}

/// Appends the column key of `value` in `column` to `out` (the bytes [`column_key`] writes):
/// a fixed-width value's straight from the stack, another's through `scratch`. How a batch
/// of probes (`router::route_batch`) lays its keys end to end.
pub fn append_column_key(column: usize, value: &Value, out: &mut Vec<u8>, scratch: &mut ColumnKey) {
    let mut key = [0; 2 + FIXED_KEY];
    let Some(len) = fixed_value_key(value, &mut key[2..]) else {
        column_key(column, value, scratch);
        out.extend_from_slice(scratch);
        return;
    };
    key[..2].copy_from_slice(&(column as u16).to_le_bytes());
    // the whole buffer, cut back: a copy of a constant length, inlined
    let end = out.len() + 2 + len;
    out.extend_from_slice(&key);
    out.truncate(end);
}

/// Bytes of the longest fixed-width value key (a uuid's: tag and 16 bytes).
const FIXED_KEY: usize = 17;

/// Writes the value key of a fixed-width value (every kind but text, numeric and arrays) to
/// the front of `out`; its length.
#[inline]
fn fixed_value_key(value: &Value, out: &mut [u8]) -> Option<usize> {
    fn put<const N: usize>(out: &mut [u8], tag: u8, body: [u8; N]) -> Option<usize> {
        out[0] = tag;
        out[1..=N].copy_from_slice(&body);
        Some(N + 1)
    }
    match value {
        Value::Int(i) => put(out, 1, i.to_le_bytes()),
        Value::Float(f) => {
            // one key per SQL value: every NaN is NaN, and -0 is 0
            let bits = if f.is_nan() {
                f64::NAN.to_bits()
            } else if *f == 0.0 {
                0f64.to_bits()
            } else {
                f.to_bits()
            };
            put(out, 2, bits.to_le_bytes())
        }
        Value::Bool(b) => put(out, 3, [u8::from(*b)]),
        Value::Uuid(u) => put(out, 5, u.to_le_bytes()),
        Value::Date(d) => put(out, 7, d.to_le_bytes()),
        Value::Time(t) => put(out, 8, t.to_le_bytes()),
        Value::Timestamp(t) => put(out, 9, t.to_le_bytes()),
        Value::Timestamptz(t) => put(out, 10, t.to_le_bytes()),
        Value::Enum(i) => put(out, 11, i.to_le_bytes()),
        Value::Text(_) | Value::Numeric(_) | Value::Array(_) => None,
    }
}

/// Appends the value key of `value` to `out`: a type tag, then the canonical value bytes (see
/// the module doc), so values equal in SQL have equal keys whatever text they were read from.
pub fn value_key(value: &Value, out: &mut ColumnKey) {
    let mut key = [0; FIXED_KEY];
    if let Some(len) = fixed_value_key(value, &mut key) {
        out.extend_from_slice(&key[..len]);
        return;
    }
    match value {
        Value::Text(s) => {
            out.push(4);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Numeric(n) => {
            out.push(6);
            n.key_bytes(out);
        }
        Value::Array(items) => {
            out.push(12);
            out.extend_from_slice(&(items.len() as u32).to_le_bytes());
            for item in items {
                let Some(v) = item else {
                    out.push(0);
                    continue;
                };
                out.push(1);
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                value_key(v, out);
                let len = (out.len() - at - 4) as u32;
                out[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
        // fixed-width: above
        _ => {}
    }
}

fn tagged(tag: u8, body: &[u8]) -> KeyBytes {
    let mut k = KeyBytes::with_capacity(body.len() + 1);
    k.push(tag);
    k.extend_from_slice(body);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pushed_keys_are_the_keys() {
        let mut out = Vec::new();
        push_int_key(-7, &mut out);
        push_binary_key(b"ab", &mut out);
        push_term_key(b"cd", &mut out);
        let want = [int_key(-7), binary_key(b"ab"), term_key(b"cd")].concat();
        assert_eq!(out, want);
    }

    #[test]
    fn encodings_are_fixed_and_distinct() {
        assert_eq!(int_key(1).as_slice(), &[1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(binary_key(b"ab").as_slice(), &[2, b'a', b'b']);
        assert_eq!(term_key(b"ab").as_slice(), &[3, b'a', b'b']);
        assert_ne!(binary_key(&1i64.to_be_bytes()), int_key(1));
    }

    /// The router's column keys, byte for byte (pinned from the encoder as it was in
    /// `router/mod.rs` before it moved here: a persisted router's shapes must find the same
    /// keys).
    #[test]
    fn column_key_encodings_are_fixed() {
        let key = |column: usize, value: Value| {
            let mut k = ColumnKey::new();
            column_key(column, &value, &mut k);
            // appended end to end, the same bytes
            let mut appended = b"before".to_vec();
            append_column_key(column, &value, &mut appended, &mut ColumnKey::new());
            assert_eq!(&appended[6..], k.as_slice(), "{value:?}");
            k.to_vec()
        };
        let neg2 = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        assert_eq!(key(3, Value::Int(-2)), [&[3, 0, 1][..], &neg2].concat());
        assert_eq!(
            key(258, Value::Float(1.5)),
            [2, 1, 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x3f]
        );
        // every NaN is the canonical one
        let nan = [0, 0, 2, 0, 0, 0, 0, 0, 0, 0xf8, 0x7f];
        assert_eq!(key(0, Value::Float(f64::NAN)), nan);
        assert_eq!(
            key(0, Value::Float(f64::from_bits(0xfff8_0000_0000_0001))),
            nan
        );
        assert_eq!(key(0, Value::Bool(true)), [0, 0, 3, 1]);
        assert_eq!(key(1599, Value::Bool(false)), [0x3f, 0x06, 3, 0]);
        assert_eq!(key(1, Value::Text("ab".into())), [1, 0, 4, b'a', b'b']);
        assert_eq!(key(1, Value::Text(String::new())), [1, 0, 4]);
        // the buffer is cleared first
        let mut k = ColumnKey::from_slice(b"stale");
        column_key(0, &Value::Bool(true), &mut k);
        assert_eq!(k.as_slice(), [0, 0, 3, 1]);
        let uuid = 0x0001_0203_0405_0607_0809_0a0b_0c0d_0e0f_u128;
        let le: Vec<u8> = (0..16u8).rev().collect();
        assert_eq!(key(7, Value::Uuid(uuid)), [&[7, 0, 5][..], &le].concat());
        let n = |t: &str| {
            Value::Numeric(
                crate::predicate::Numeric::parse(t).unwrap_or_else(crate::predicate::Numeric::zero),
            )
        };
        // numeric: kind 1, positive, exponent 1, digits "15"
        assert_eq!(key(0, n("1.50")), [0, 0, 6, 1, 0, 1, 0, 0, 0, b'1', b'5']);
        assert_eq!(key(0, n("NaN")), [0, 0, 6, 3]);
        assert_eq!(key(0, Value::Date(-1)), [0, 0, 7, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(key(0, Value::Time(1)), [0, 0, 8, 1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            key(0, Value::Timestamp(1)),
            [0, 0, 9, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(
            key(0, Value::Timestamptz(1)),
            [0, 0, 10, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(key(0, Value::Enum(2)), [0, 0, 11, 2, 0, 0, 0]);
        // {true,NULL}: 2 elements, one of key [3, 1], then NULL
        let a = Value::Array(vec![Some(Value::Bool(true)), None]);
        assert_eq!(key(0, a), [0, 0, 12, 2, 0, 0, 0, 1, 2, 0, 0, 0, 3, 1, 0]);
        // equal arrays, equal keys: -0 is 0 in an element too
        let z = |f| Value::Array(vec![Some(Value::Float(f))]);
        assert_eq!(key(0, z(-0.0)), key(0, z(0.0)));
    }

    /// A value key is the column key without its column id, and appends to what `out` holds.
    #[test]
    fn value_key_is_the_tail_of_the_column_key() {
        let values = [
            Value::Int(-2),
            Value::Float(1.5),
            Value::Float(f64::NAN),
            Value::Bool(true),
            Value::Text("ab".into()),
            Value::Uuid(7),
        ];
        for v in &values {
            let (mut col, mut val) = (ColumnKey::new(), ColumnKey::from_slice(b"x"));
            column_key(300, v, &mut col);
            value_key(v, &mut val);
            assert_eq!(&col[2..], &val[1..], "{v:?}");
            assert_eq!(val[0], b'x');
        }
        let key = |v: Value| {
            let mut k = ColumnKey::new();
            value_key(&v, &mut k);
            k.to_vec()
        };
        assert_eq!(key(Value::Float(-0.0)), key(Value::Float(0.0)));
        assert_ne!(key(Value::Int(1)), key(Value::Float(1.0)));
    }
}
