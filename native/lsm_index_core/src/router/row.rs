//! A row of a change, from Postgres text to typed values, read as a route needs it: a
//! [`RowCells`] source hands out each column's text on demand (a [`RowText`] slice, or a
//! caller's own reader, such as the NIF's over a record map); a [`Row`] parses a column the
//! first time the route asks for it — the columns it probes first, a residual's columns only
//! when that residual is about to run — into a [`ParsedRow`], which keeps the typed values
//! and which columns did not parse. Parsed rows are reused from change to change (text
//! values keep their buffers: no allocation per change in steady state).

use super::bits::{bit, bitset_words, intersects, set_bit, Bits};
use crate::predicate::{ColumnType, Value};
use crate::{Error, Result};
use smallvec::SmallVec;

/// One row of a change: per table column, its Postgres text, `None` for NULL or absent.
pub type RowText<'a> = [Option<&'a [u8]>];

/// Where a route reads a row's cells: each column's Postgres text, asked for only when the
/// route needs it (some shape reads the column, and the route got as far as reading it;
/// an update's rows are compared cell by cell, so a cell may be asked for twice).
pub trait RowCells<'t> {
    /// How many columns the row has: the table's count, or fewer for a row written before
    /// columns were added to it (see [`super::Reader::row_widths`]; a route reads the
    /// columns past it as NULL); any other count fails the route.
    fn width(&self) -> usize;

    /// The text of column `column`, below [`RowCells::width`] (`None`: NULL or absent). An
    /// error ends the route with it (a caller's source refusing a cell says why itself, see
    /// [`Error::BadCell`]).
    fn cell(&mut self, column: usize) -> Result<Option<&'t [u8]>>;
}

impl<'t> RowCells<'t> for &'t RowText<'t> {
    fn width(&self) -> usize {
        self.len()
    }

    fn cell(&mut self, column: usize) -> Result<Option<&'t [u8]>> {
        Ok(self.get(column).copied().flatten())
    }
}

/// A parsed row: typed values of the columns parsed so far and which of them did not parse.
#[derive(Default)]
pub(super) struct ParsedRow {
    /// Per table column; current only for the columns in `parsed` (the others hold an
    /// earlier row's values, kept for their buffers).
    pub(super) values: SmallVec<[Option<Value>; 16]>,
    /// The columns parsed for this row.
    parsed: Bits,
    /// Of those, the ones whose text is not a value of their type (their value is `None`).
    pub(super) bad: Bits,
    /// An update's new row: the columns whose text was compared with the old row's...
    compared: Bits,
    /// ...and of those, the ones that differ.
    differs: Bits,
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
    /// Starts a row of a table with `n` columns: nothing parsed yet.
    #[inline]
    fn start(&mut self, n: usize) {
        if self.values.len() != n {
            self.values = smallvec::smallvec![None; n];
            self.parsed = smallvec::smallvec![0; bitset_words(n)];
            self.bad = smallvec::smallvec![0; bitset_words(n)];
            self.compared = smallvec::smallvec![0; bitset_words(n)];
            self.differs = smallvec::smallvec![0; bitset_words(n)];
        } else {
            clear(&mut self.parsed);
            clear(&mut self.bad);
        }
    }

    /// Parses column `c` (of type `ty`) from `cells`, a row of `width` columns (NULL past
    /// them), unless it was already.
    #[inline]
    fn parse_column<'t>(
        &mut self,
        c: usize,
        ty: &ColumnType,
        cells: &mut dyn RowCells<'t>,
        width: usize,
    ) -> Result<()> {
        if bit(&self.parsed, c) {
            return Ok(());
        }
        let slot = &mut self.values[c];
        match cell(cells, width, c)? {
            None => *slot = None,
            Some(text) => {
                if !parse_into(ty, text, slot) {
                    *slot = None;
                    set_bit(&mut self.bad, c);
                }
            }
        }
        set_bit(&mut self.parsed, c);
        Ok(())
    }
}

/// The row a route reads: its cells, parsed into a reused [`ParsedRow`] as they are asked
/// for.
pub(super) struct Row<'r, 't> {
    parsed: &'r mut ParsedRow,
    cells: &'r mut dyn RowCells<'t>,
    /// Its cells' width: the table's, or less for a row from before columns were added.
    width: usize,
    columns: &'r [(String, ColumnType)],
    /// An update's new row: the old row's cells and their width, to tell what changed
    /// ([`Row::fresh`]).
    old: Option<(&'r mut dyn RowCells<'t>, usize)>,
}

/// Cell `c` of `cells`, a row of `width` columns: NULL past them (a column added since).
#[inline]
fn cell<'t>(cells: &mut dyn RowCells<'t>, width: usize, c: usize) -> Result<Option<&'t [u8]>> {
    if c < width {
        cells.cell(c)
    } else {
        Ok(None)
    }
}

impl<'r, 't> Row<'r, 't> {
    /// The row of `cells` in a table of `columns`, parsed into `parsed` (nothing yet). A row
    /// narrower than the table, down to `narrowest` columns, was written before the columns
    /// past its end were added: they are NULL (its source answers `None` for them).
    #[inline(always)]
    pub(super) fn new(
        parsed: &'r mut ParsedRow,
        cells: &'r mut dyn RowCells<'t>,
        columns: &'r [(String, ColumnType)],
        narrowest: usize,
    ) -> Result<Row<'r, 't>> {
        let (n, width) = (columns.len(), cells.width());
        if !(narrowest.min(n)..=n).contains(&width) {
            return Err(Error::ColumnCount {
                expected: n,
                got: width,
            });
        }
        parsed.start(n);
        Ok(Row {
            parsed,
            cells,
            width,
            columns,
            old: None,
        })
    }

    /// This row as the new row of an update whose old row's cells are `old` (compared with
    /// this row's as [`Row::fresh`] asks).
    pub(super) fn after(mut self, old: &'r mut dyn RowCells<'t>) -> Self {
        clear(&mut self.parsed.compared);
        clear(&mut self.parsed.differs);
        let width = old.width();
        self.old = Some((old, width));
        self
    }

    /// Whether column `c`'s text differs from the old row's (an update's new row; compared
    /// once).
    pub(super) fn differs(&mut self, c: usize) -> Result<bool> {
        let p = &mut *self.parsed;
        if !bit(&p.compared, c) {
            if let Some((old, old_width)) = self.old.as_mut() {
                if cell(*old, *old_width, c)? != cell(self.cells, self.width, c)? {
                    set_bit(&mut p.differs, c);
                }
            }
            set_bit(&mut p.compared, c);
        }
        Ok(bit(&p.differs, c))
    }

    /// Whether a shape reading the columns of `mask` may answer this row otherwise than the
    /// old row of its update: some of their text differs (always, for a row that is not an
    /// update's new row). Equal text is an equal value; text that differs may still be one
    /// (`1.50`, `1.5`), which only costs an evaluation that answers as the old row's did.
    pub(super) fn fresh(&mut self, mask: &[u64]) -> Result<bool> {
        if self.old.is_none() {
            return Ok(true);
        }
        for (w, &m) in mask.iter().enumerate() {
            let mut todo = m;
            while todo != 0 {
                let c = w * 64 + todo.trailing_zeros() as usize;
                todo &= todo - 1;
                if self.differs(c)? {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Parses column `c` unless it was already.
    #[inline]
    pub(super) fn parse_column(&mut self, c: usize) -> Result<()> {
        self.parsed
            .parse_column(c, &self.columns[c].1, &mut *self.cells, self.width)
    }

    /// Parses the columns of `mask` (a column bitset) not parsed yet. Whether all of them
    /// parsed (a residual reading them can run).
    pub(super) fn parse(&mut self, mask: &[u64]) -> Result<bool> {
        for (w, &m) in mask.iter().enumerate() {
            // (a mask never names a column past the table's: it only grows)
            let done = self.parsed.parsed.get(w).copied().unwrap_or(u64::MAX);
            let mut todo = m & !done;
            while todo != 0 {
                self.parse_column(w * 64 + todo.trailing_zeros() as usize)?;
                todo &= todo - 1;
            }
        }
        Ok(!intersects(mask, &self.parsed.bad))
    }

    /// The value of column `c`, parsed before (`None`: NULL or did not parse; also for a
    /// column not parsed, which is a bug of the route that asks).
    #[inline]
    pub(super) fn value(&self, c: usize) -> Option<&Value> {
        debug_assert!(bit(&self.parsed.parsed, c), "column {c} read before parsed");
        if !bit(&self.parsed.parsed, c) {
            return None;
        }
        self.parsed.values[c].as_ref()
    }

    /// Every column's value, by column: what a residual reads. Current only for the columns
    /// parsed: a residual runs after [`Row::parse`] of its mask.
    pub(super) fn values(&self) -> &[Option<Value>] {
        &self.parsed.values
    }

    /// The columns that did not parse, of those parsed so far.
    pub(super) fn bad(&self) -> &[u64] {
        &self.parsed.bad
    }

    /// Whether some column parsed so far did not parse.
    #[inline]
    pub(super) fn any_bad(&self) -> bool {
        self.parsed.bad.iter().any(|&w| w != 0)
    }
}

/// Clears a bitset (of one word without a call to `memset`: most tables have ≤ 64 columns).
#[inline]
fn clear(bits: &mut [u64]) {
    match bits {
        [w] => *w = 0,
        words => words.fill(0),
    }
}

/// Parses Postgres text into `slot`; false if it is not a value of `ty` (or not UTF-8).
/// A text value reuses the buffer already in the slot.
fn parse_into(ty: &ColumnType, text: &[u8], slot: &mut Option<Value>) -> bool {
    // a key column's usual text: a short plain integer
    if ty.is_integer() {
        if let Some(i) = plain_int(text) {
            // (`ColumnType::int` would build the value to test it: a stall here)
            let fits = match ty {
                ColumnType::Int2 => i16::try_from(i).is_ok(),
                ColumnType::Int4 => i32::try_from(i).is_ok(),
                _ => true,
            };
            if !fits {
                return false;
            }
            // in place: no move of a whole value
            match slot {
                Some(Value::Int(v)) => *v = i,
                _ => *slot = Some(Value::Int(i)),
            }
            return true;
        }
    }
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

/// The integer of `text` when it is at most 18 ASCII digits after an optional sign (no white
/// space): `ColumnType::parse`'s answer for such text, without its general path; `None` for
/// any other text, which takes that path.
#[inline]
fn plain_int(text: &[u8]) -> Option<i64> {
    let (negative, digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() || digits.len() > 18 {
        return None;
    }
    let mut v: i64 = 0;
    for &d in digits {
        let d = d.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        // 18 digits: below i64::MAX, no overflow
        v = v * 10 + i64::from(d);
    }
    Some(if negative { -v } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The short path reads integer text exactly as the general one.
        #[test]
        fn plain_ints_parse_as_the_general_path(
            text in "[-+ ]?[0-9+-]{0,20}",
            ty in 0..3usize,
        ) {
            let ty = [ColumnType::Int2, ColumnType::Int4, ColumnType::Int8][ty].clone();
            if let Some(i) = plain_int(text.as_bytes()) {
                proptest::prop_assert_eq!(ty.int(i), ty.parse(&text));
            }
            let mut slot = None;
            let parsed = parse_into(&ty, text.as_bytes(), &mut slot);
            proptest::prop_assert_eq!(parsed, ty.parse(&text).is_some());
            proptest::prop_assert_eq!(slot.filter(|_| parsed), ty.parse(&text));
        }
    }

    #[test]
    fn plain_ints_at_the_edges() {
        let longest = "999999999999999999";
        assert_eq!(plain_int(longest.as_bytes()), Some(999_999_999_999_999_999));
        assert_eq!(plain_int(b"9223372036854775807"), None); // 19 digits: the general path
        assert_eq!(plain_int(b"-0"), Some(0));
        assert_eq!(plain_int(b"+7"), Some(7));
        for text in ["", "-", "+", " 7", "7 ", "1.0", "0x1"] {
            assert_eq!(plain_int(text.as_bytes()), None, "{text:?}");
        }
        let mut slot = None;
        assert!(!parse_into(&ColumnType::Int2, b"40000", &mut slot));
        assert!(parse_into(
            &ColumnType::Int8,
            b"9223372036854775807",
            &mut slot
        ));
        assert_eq!(slot, Some(Value::Int(i64::MAX)));
    }
}
