//! Order-preserving `u64` keys of orderable values, for the range index
//! (`router::ranges`): one integer compare per interval bound, no allocation.
//!
//! ```text
//! value ─▶ key(v): u64      monotone: compare(a, b) = Less  ⇒ key(a) ≤ key(b)
//!                                     compare(a, b) = Equal ⇒ key(a) = key(b)
//! bound ─▶ lower_key / upper_key      closed key bounds, widened, never narrowed
//! ```
//!
//! | type | key | exact |
//! |---|---|---|
//! | int2/4/8, time, timestamp(tz) | the `i64`, sign bit flipped (±infinity: the ends) | yes |
//! | date | the `i32` likewise (±infinity: `i32::MIN`/`MAX`, the ends of its range) | yes |
//! | float4/8 | total-order bits, `-0` as `0`, every NaN `u64::MAX` (above `+Infinity`) | yes |
//! | numeric | the float8 nearest its first 40 digits (NaN, ±Infinity as the float's) | no |
//! | text | its first 8 bytes, big-endian, zero-padded (bytewise = the `C` collation) | no |
//! | enum | its label's position | yes |
//! | bool, uuid, array | none: the range index does not serve them | |
//!
//! Every map above is monotone (truncating digits or bytes and rounding to nearest are), so
//! a value satisfying `col op bound` has its key inside [`interval`]`(op, bound)`: the index
//! has no false negatives, and the residual decides what the key cannot (text beyond its
//! 8 bytes, numeric digits beyond a float8's, and the strictness of a bound on an inexact
//! type). An *exact* key orders exactly as `compare` does, so its strict bounds tighten by
//! one (`a > 5` starts at `key(5) + 1`). No bound needs rounding outward: a monotone map
//! sends `x ≥ b` to `key(x) ≥ key(b)` whatever it loses, so a bound's key is the same map as
//! a row value's, and a row value is one point. Keys of one column only are ever compared:
//! the key spaces of different types overlap.

use super::eval::compare;
use super::{CmpOp, Numeric, Value};

/// The top bit of a key: set for the non-negative half of a signed domain.
const SIGN: u64 = 1 << 63;

/// Significant digits of a numeric read into its float8: the nearest float8 but within
/// ~1e-40 (relative) of a rounding tie; truncating keeps the map monotone, all it must be.
const NUMERIC_DIGITS: usize = 40;

/// A numeric of at least `10^(exp-1)` with `exp` this large is above `f64::MAX` (~1.8e308).
const NUMERIC_OVERFLOW_EXP: i32 = 310;

/// A numeric below `10^exp` with `exp` this small rounds to zero (the least float8 is ~4.9e-324).
const NUMERIC_UNDERFLOW_EXP: i32 = -330;

/// The order-preserving key of `v` (see the module doc), or `None` for a type the range index
/// does not serve (bool, uuid, array).
pub fn key(v: &Value) -> Option<u64> {
    Some(match v {
        Value::Int(i) | Value::Time(i) | Value::Timestamp(i) | Value::Timestamptz(i) => int(*i),
        Value::Date(d) => int(i64::from(*d)),
        Value::Float(f) => float(*f),
        Value::Numeric(n) => float(numeric_f64(n)),
        Value::Text(s) => text(s.as_bytes()),
        Value::Enum(p) => u64::from(*p),
        Value::Bool(_) | Value::Uuid(_) | Value::Array(_) => return None,
    })
}

/// Whether keys of `v`'s type order exactly as `compare` does (distinct values, distinct
/// keys): every orderable type but numeric and text.
pub fn exact(v: &Value) -> bool {
    !matches!(
        v,
        Value::Numeric(_) | Value::Text(_) | Value::Bool(_) | Value::Uuid(_) | Value::Array(_)
    )
}

/// A key at or below the key of every value `x >= bound` (`x > bound` unless `inclusive`)
/// of `bound`'s type, or `None` for an unorderable type: `key(bound)`, plus one for a strict
/// bound on an exact type (saturating at `u64::MAX`: widened, never wrapped).
pub fn lower_key(bound: &Value, inclusive: bool) -> Option<u64> {
    let k = key(bound)?;
    Some(if inclusive || !exact(bound) {
        k
    } else {
        k.saturating_add(1)
    })
}

/// A key at or above the key of every value `x <= bound` (`x < bound` unless `inclusive`)
/// of `bound`'s type, or `None` for an unorderable type: `key(bound)`, minus one for a strict
/// bound on an exact type (saturating at 0).
pub fn upper_key(bound: &Value, inclusive: bool) -> Option<u64> {
    let k = key(bound)?;
    Some(if inclusive || !exact(bound) {
        k
    } else {
        k.saturating_sub(1)
    })
}

/// The closed key interval `(lo, hi)` holding the key of every value `x` with `x op bound`
/// (`hi < lo` when none can), or `None` when `op` is `<>` or the type is unorderable.
/// Intersect the intervals of one column's conjuncts (`max` of the `lo`s, `min` of the `hi`s)
/// for an AND or a `BETWEEN`.
pub fn interval(op: CmpOp, bound: &Value) -> Option<(u64, u64)> {
    Some(match op {
        CmpOp::Eq => (lower_key(bound, true)?, upper_key(bound, true)?),
        CmpOp::Lt | CmpOp::Le => (0, upper_key(bound, op == CmpOp::Le)?),
        CmpOp::Gt | CmpOp::Ge => (lower_key(bound, op == CmpOp::Ge)?, u64::MAX),
        CmpOp::Ne => return None,
    })
}

/// Whether `x op bound` (the residual's answer) could hold given the keys alone: `key(x)`
/// inside [`interval`]. The index's promise is that this is never false when `compare` says
/// the comparison holds.
pub fn may_hold(x: &Value, op: CmpOp, bound: &Value) -> bool {
    match (key(x), interval(op, bound)) {
        (Some(k), Some((lo, hi))) => lo <= k && k <= hi,
        // `<>` and unorderable types are not the index's to decide
        _ => op.holds(compare(x, bound)),
    }
}

/// A signed integer with its sign bit flipped: `i64::MIN` ⇒ 0, `-1` ⇒ `2^63 - 1`, 0 ⇒ `2^63`.
fn int(i: i64) -> u64 {
    (i as u64) ^ SIGN
}

/// A float's total-order key: positives above negatives, negatives with their bits
/// inverted, `-0.0` as `0.0`, every NaN at `u64::MAX` (above `+Infinity`'s `0xFFF0…`).
fn float(f: f64) -> u64 {
    if f.is_nan() {
        return u64::MAX;
    }
    // `-0.0 == 0.0`: both become `+0.0`
    let bits = if f == 0.0 { 0 } else { f.to_bits() };
    if bits & SIGN == 0 {
        bits | SIGN
    } else {
        !bits
    }
}

/// A text's first 8 bytes, big-endian, zero-padded: bytewise order, truncated.
fn text(bytes: &[u8]) -> u64 {
    let mut k = [0u8; 8];
    let n = bytes.len().min(8);
    k[..n].copy_from_slice(&bytes[..n]);
    u64::from_be_bytes(k)
}

/// The float8 nearest a numeric's first [`NUMERIC_DIGITS`] digits (monotone: truncation
/// towards zero and rounding to nearest both are); beyond the float8's range, ±infinity or
/// zero, as rounding gives.
fn numeric_f64(n: &Numeric) -> f64 {
    let (negative, digits, exp) = match n {
        Numeric::NegInfinity => return f64::NEG_INFINITY,
        Numeric::Infinity => return f64::INFINITY,
        Numeric::NaN => return f64::NAN,
        Numeric::Finite {
            negative,
            digits,
            exp,
            ..
        } => (*negative, digits, *exp),
    };
    let signed = |magnitude: f64| if negative { -magnitude } else { magnitude };
    if digits.is_empty() || exp < NUMERIC_UNDERFLOW_EXP {
        return signed(0.0);
    }
    if exp >= NUMERIC_OVERFLOW_EXP {
        return signed(f64::INFINITY);
    }
    // `0.DIGITSeEXP`: at most 2 + 40 + 1 + 4 bytes, on the stack
    let mut buf = [0u8; 2 + NUMERIC_DIGITS + 1 + 4];
    buf[..2].copy_from_slice(b"0.");
    let mut len = 2;
    for &d in digits.iter().take(NUMERIC_DIGITS) {
        // a Numeric holds ASCII digits; clamping keeps the buffer a float literal regardless
        buf[len] = d.clamp(b'0', b'9');
        len += 1;
    }
    buf[len] = b'e';
    len += 1;
    if exp < 0 {
        buf[len] = b'-';
        len += 1;
    }
    // |exp| < 330: three digits, leading zeros and all
    let e = exp.unsigned_abs();
    for p in [100, 10, 1] {
        buf[len] = b'0' + (e / p % 10) as u8;
        len += 1;
    }
    // the buffer is ASCII `0.` digits `e` [-] digits: always a float literal
    let magnitude = std::str::from_utf8(&buf[..len])
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0);
    signed(magnitude)
}

#[cfg(test)]
mod tests;
