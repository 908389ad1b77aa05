//! Packed changes: a transaction's changes of one table in one byte string, so a caller (the
//! NIF's `router_route_many_packed`, fed by `LsmIndex.ShapeRouter.pack_changes/2`) hands the
//! router borrowed slices of one buffer instead of a term per change and a map per row.
//!
//! ```text
//! changes = width u32 LE | count u32 LE | change*     (exactly `count`, nothing after the last)
//! change  = op u8 | row*
//!             op 'I' (0x49) insert    one row: the new one
//!                'D' (0x44) delete    one row: the old one
//!                'U' (0x55) update    two rows: the old one, then the new one
//!                'T' (0x54) truncate  no row
//! row     = len u32 LE × width        per column of the table, in its order: the byte
//!                                     count of its Postgres text, FF FF FF FF for NULL
//!           text*                     then the non-NULL columns' texts, in that order
//!
//! e.g. width 3, one insert of ('7', NULL, 'ab'):
//!   03 00 00 00 | 01 00 00 00 | 49 | 01 00 00 00  FF FF FF FF  02 00 00 00 | 37 61 62
//! ```
//!
//! Every row is all of the table's columns in the router's column order (the reader checks
//! `width` against the table); a record map is packed with one lookup per column
//! (`ShapeRouter.pack_changes/2`), a decoder's tuple (`pgoutput` gives each column's length
//! and text in order) in one pass. A row's lengths come before its texts so that a reader
//! finds every cell from one run of independent loads (lengths and texts interleaved, each
//! cell's offset would wait on the length before it: ~15 ns a 10-column row on this VM).
//! The count comes first so that a reader can size its answers. Every length is checked
//! against the buffer; a malformed list is refused with the byte offset of the first thing
//! wrong (the changes before it were read). A reader ([`Changes`]) reads a chunk of changes
//! at a time, into slices of the buffer: a time-sliced caller can stop between chunks and go
//! on from [`Changes::position`] later.

use crate::packed::PackedError;
use crate::router::{Change, RowText, MAX_COLUMNS};

/// Bytes of the width, the count and each cell's length.
const LEN_BYTES: usize = 4;
/// A NULL cell's length word.
const NULL: u32 = u32::MAX;

/// What a change is, by its op byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `I`: a new row.
    Insert,
    /// `D`: a deleted row.
    Delete,
    /// `U`: an updated row: old, then new.
    Update,
    /// `T`: the table was truncated.
    Truncate,
}

impl Op {
    /// The op of byte `b`.
    pub fn from_byte(b: u8) -> Option<Op> {
        match b {
            b'I' => Some(Op::Insert),
            b'D' => Some(Op::Delete),
            b'U' => Some(Op::Update),
            b'T' => Some(Op::Truncate),
            _ => None,
        }
    }

    /// Its byte.
    pub fn byte(self) -> u8 {
        match self {
            Op::Insert => b'I',
            Op::Delete => b'D',
            Op::Update => b'U',
            Op::Truncate => b'T',
        }
    }

    /// Rows a change of this op carries.
    pub fn rows(self) -> usize {
        match self {
            Op::Insert | Op::Delete => 1,
            Op::Update => 2,
            Op::Truncate => 0,
        }
    }
}

/// A reader of packed changes, a chunk at a time (see the module doc).
#[derive(Clone, Debug)]
pub struct Changes<'a> {
    bytes: &'a [u8],
    width: usize,
    count: usize,
    /// Changes read so far, and the offset of the next one.
    index: usize,
    at: usize,
}

/// A chunk of changes read by [`Changes::read`]: their cells, borrowed from the buffer.
#[derive(Debug, Default)]
pub struct Chunk<'a> {
    cells: Vec<Option<&'a [u8]>>,
    /// Per change: its op and where its rows start in `cells`.
    ops: Vec<(Op, usize)>,
    width: usize,
}

impl<'a> Changes<'a> {
    /// A reader of `bytes` from its first change: the header checked.
    pub fn new(bytes: &'a [u8]) -> Result<Changes<'a>, PackedError> {
        let refuse = |offset, reason| PackedError { offset, reason };
        let width = read_u32(bytes, 0).ok_or(refuse(0, "truncated width"))? as usize;
        if width == 0 || width > MAX_COLUMNS {
            return Err(refuse(0, "a table has 1 to 1600 columns"));
        }
        let count = read_u32(bytes, LEN_BYTES).ok_or(refuse(LEN_BYTES, "truncated count"))?;
        Ok(Changes {
            bytes,
            width,
            count: count as usize,
            index: 0,
            at: 2 * LEN_BYTES,
        })
    }

    /// A reader of `bytes` going on from `position` (an earlier reader's
    /// [`Changes::position`] over the same bytes).
    pub fn resume(bytes: &'a [u8], position: (usize, usize)) -> Result<Changes<'a>, PackedError> {
        let mut changes = Changes::new(bytes)?;
        let (index, at) = position;
        if index > changes.count || at < changes.at || at > bytes.len() {
            return Err(PackedError {
                offset: at,
                reason: "a position outside the changes",
            });
        }
        (changes.index, changes.at) = (index, at);
        Ok(changes)
    }

    /// Cells per row: the table's column count.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Changes the header announces.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Changes not read yet.
    pub fn remaining(&self) -> usize {
        self.count - self.index
    }

    /// Where the next change is: (its index, its byte offset).
    pub fn position(&self) -> (usize, usize) {
        (self.index, self.at)
    }

    /// Reads up to `max` more changes into `chunk` (cleared first); after the last change,
    /// checks that nothing follows it. A malformed change is refused and not read (nor any
    /// after it); the chunk holds the ones before it.
    pub fn read(&mut self, max: usize, chunk: &mut Chunk<'a>) -> Result<usize, PackedError> {
        chunk.cells.clear();
        chunk.ops.clear();
        chunk.width = self.width;
        let n = max.min(self.remaining());
        // a row per change, room for more as updates come (no reallocation chain per chunk)
        chunk.cells.reserve(
            n.saturating_mul(self.width)
                .min(self.bytes.len() / LEN_BYTES),
        );
        chunk.ops.reserve(n);
        for _ in 0..n {
            let op_at = self.at;
            let op = self.bytes.get(op_at);
            let op = op.ok_or_else(|| refused(op_at, "truncated change (no op byte)"))?;
            let op = Op::from_byte(*op)
                .ok_or_else(|| refused(op_at, "unknown change op (not I, D, U or T)"))?;
            let start = chunk.cells.len();
            let mut at = op_at + 1;
            for _ in 0..op.rows() {
                match row(self.bytes, at, self.width, &mut chunk.cells) {
                    Ok(end) => at = end,
                    Err(e) => {
                        chunk.cells.truncate(start);
                        return Err(e);
                    }
                }
            }
            self.at = at;
            chunk.ops.push((op, start));
            self.index += 1;
        }
        if self.remaining() == 0 && self.at != self.bytes.len() {
            return Err(refused(self.at, "bytes after the last change"));
        }
        Ok(n)
    }
}

impl<'a> Chunk<'a> {
    /// Changes read.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no change was read.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The changes read, as the router takes them (rows borrowed from the chunk).
    pub fn changes(&self) -> Vec<Change<'_>> {
        self.ops
            .iter()
            .map(|&(op, start)| {
                let row = |i: usize| -> &RowText {
                    &self.cells[start + i * self.width..start + (i + 1) * self.width]
                };
                match op {
                    Op::Insert => Change::Insert(row(0)),
                    Op::Delete => Change::Delete(row(0)),
                    Op::Update => Change::Update(row(0), row(1)),
                    Op::Truncate => Change::Truncate,
                }
            })
            .collect()
    }
}

/// `changes` of a table of `width` columns packed (the layout above): the reference encoder,
/// for tests and Rust callers. A row of another width makes bytes [`Changes`] refuses or
/// reads otherwise.
pub fn pack(width: usize, changes: &[Change]) -> Vec<u8> {
    let mut out = Vec::with_capacity(packed_len(changes));
    out.extend_from_slice(&len_bytes(width));
    out.extend_from_slice(&len_bytes(changes.len()));
    for change in changes {
        let (op, rows): (Op, [Option<&RowText>; 2]) = match *change {
            Change::Insert(r) => (Op::Insert, [Some(r), None]),
            Change::Delete(r) => (Op::Delete, [Some(r), None]),
            Change::Update(old, new) => (Op::Update, [Some(old), Some(new)]),
            Change::Truncate => (Op::Truncate, [None, None]),
        };
        out.push(op.byte());
        for row in rows.into_iter().flatten() {
            for cell in row {
                out.extend_from_slice(&cell.map_or(NULL, |t| len_word(t.len())).to_le_bytes());
            }
            for text in row.iter().flatten() {
                out.extend_from_slice(text);
            }
        }
    }
    out
}

/// The exact length of `pack(_, changes)`.
pub fn packed_len(changes: &[Change]) -> usize {
    let row =
        |r: &RowText| -> usize { r.iter().map(|c| LEN_BYTES + c.map_or(0, <[u8]>::len)).sum() };
    2 * LEN_BYTES
        + changes
            .iter()
            .map(|change| {
                1 + match *change {
                    Change::Insert(r) | Change::Delete(r) => row(r),
                    Change::Update(old, new) => row(old) + row(new),
                    Change::Truncate => 0,
                }
            })
            .sum::<usize>()
}

/// Appends the `width` cells of the row at `at` to `out`; the offset after the row. The loop
/// every cell of a transaction passes through: a length word (read from one run of them),
/// a bounds check, a store.
#[inline]
fn row<'a>(
    bytes: &'a [u8],
    at: usize,
    width: usize,
    out: &mut Vec<Option<&'a [u8]>>,
) -> Result<usize, PackedError> {
    // `width` ≤ MAX_COLUMNS: no overflow
    let Some(lens) = bytes.get(at..at + width * LEN_BYTES) else {
        return Err(refused(at, "truncated cell lengths"));
    };
    let mut start = at + lens.len();
    for (i, len) in lens.chunks_exact(LEN_BYTES).enumerate() {
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]);
        if len == NULL {
            out.push(None);
            continue;
        }
        // `start` ≤ the length of a slice, `len` < 2^32: no overflow on a 64-bit target
        let Some(text) = start
            .checked_add(len as usize)
            .and_then(|end| bytes.get(start..end))
        else {
            return Err(refused(at + i * LEN_BYTES, "cell length past the end"));
        };
        out.push(Some(text));
        start += text.len();
    }
    Ok(start)
}

/// The error of what is wrong at `offset` (out of the loops' way).
#[cold]
fn refused(offset: usize, reason: &'static str) -> PackedError {
    PackedError { offset, reason }
}

/// The u32 little-endian word at `at`, if all four bytes are there.
#[inline]
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word: [u8; LEN_BYTES] = bytes.get(at..at.checked_add(LEN_BYTES)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(word))
}

/// A count or length as its four bytes (a text of 4 GiB - 1 or more saturates, and reads as
/// NULL or refused).
fn len_bytes(n: usize) -> [u8; LEN_BYTES] {
    len_word(n).to_le_bytes()
}

fn len_word(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
#[path = "packed_changes_tests.rs"]
mod tests;
