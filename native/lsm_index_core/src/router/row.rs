//! A row of a change, from Postgres text to typed values: [`RowText`] is what the caller
//! hands in (per column its text); a [`ParsedRow`] holds the typed values of the columns some
//! shape refers to, and which of them did not parse. Parsed rows are reused from change to
//! change (text values keep their buffers).

use super::bits::{bit, bitset_words, set_bit, Bits};
use crate::predicate::eval::compare;
use crate::predicate::{ColumnType, Value};
use crate::{Error, Result};
use smallvec::SmallVec;
use std::cmp::Ordering;

/// One row of a change: per table column, its Postgres text, `None` for NULL or absent.
pub type RowText<'a> = [Option<&'a [u8]>];

/// A parsed row: typed values of the referenced columns and which columns did not parse.
#[derive(Default)]
pub(super) struct ParsedRow {
    /// Per table column; only the referenced columns are current.
    pub(super) values: SmallVec<[Option<Value>; 16]>,
    /// The columns whose text is not a value of their type.
    pub(super) bad: Bits,
}

/// The parsed rows of a change (an update has two).
#[derive(Default)]
pub(super) struct ParsedRows {
    /// The row of an insert or delete; the old row of an update.
    pub(super) old: ParsedRow,
    /// The new row of an update.
    pub(super) new: ParsedRow,
}

impl ParsedRow {
    /// Parses the `referenced` columns of `text` (a row of a table with `columns`); the
    /// others cannot change any answer, and no shape reads them, so their stale values are
    /// never looked at.
    pub(super) fn parse(
        &mut self,
        columns: &[(String, ColumnType)],
        referenced: &[usize],
        text: &RowText,
    ) -> Result<()> {
        let n = columns.len();
        if text.len() != n {
            return Err(Error::ColumnCount {
                expected: n,
                got: text.len(),
            });
        }
        if self.values.len() != n {
            self.values = smallvec::smallvec![None; n];
            self.bad = smallvec::smallvec![0; bitset_words(n)];
        }
        self.bad.iter_mut().for_each(|w| *w = 0);
        for &c in referenced {
            let slot = &mut self.values[c];
            match text[c] {
                None => *slot = None,
                Some(cell) => {
                    if !parse_into(&columns[c].1, cell, slot) {
                        *slot = None;
                        set_bit(&mut self.bad, c);
                    }
                }
            }
        }
        Ok(())
    }
}

/// Parses Postgres text into `slot`; false if it is not a value of `ty` (or not UTF-8).
/// A text value reuses the buffer already in the slot.
fn parse_into(ty: &ColumnType, text: &[u8], slot: &mut Option<Value>) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    match (ty, slot.as_mut()) {
        (ColumnType::Text, Some(Value::Text(buf))) => {
            buf.clear();
            buf.push_str(text);
            true
        }
        _ => match ty.parse(text) {
            Some(v) => {
                *slot = Some(v);
                true
            }
            None => false,
        },
    }
}

/// Whether `x` and `y` are the same value in every way a clause can observe: equal, and
/// printing alike (`-0` is not `0` to `f::text`, nor `1.50` to `1.5` to `n::text`).
fn identical(x: &Value, y: &Value) -> bool {
    match (x, y) {
        (Value::Float(a), Value::Float(b)) => {
            a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan())
        }
        (Value::Numeric(a), Value::Numeric(b)) => a == b && a.scale() == b.scale(),
        _ => compare(x, y) == Ordering::Equal,
    }
}

/// Columns whose value differs between the two rows (a value that did not parse differs
/// from everything, itself included: it is routed conservatively anyway).
pub(super) fn changed_columns(a: &ParsedRow, b: &ParsedRow) -> Bits {
    let mut changed: Bits = smallvec::smallvec![0; a.bad.len()];
    for (c, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
        let same = match (x, y) {
            (None, None) => !bit(&a.bad, c) && !bit(&b.bad, c),
            (Some(x), Some(y)) => identical(x, y),
            _ => false,
        };
        if !same {
            set_bit(&mut changed, c);
        }
    }
    changed
}
