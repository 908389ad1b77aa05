//! Index slots: what an equality index key of a router is filed under — a column's value,
//! `lower`/`upper` of it, or its array's elements — independent of the table's width.

use super::MAX_COLUMNS;
use crate::predicate::Func;

/// The index slot of `column` under key function `func` (or of its array's elements): the
/// column id for its own value (so plain column keys are the column's), shifted by a
/// multiple of [`MAX_COLUMNS`] for `lower`/`upper` (their keys are the function's result)
/// and for elements (an array's elements, each a key). Independent of the table's column
/// count, so a table that gains columns keeps its slots.
pub(super) fn slot(column: usize, func: Option<Func>, element: bool) -> usize {
    let kind = match (element, func) {
        (true, _) => ELEMENT_KIND,
        (false, None) => 0,
        (false, Some(Func::Lower)) => 1,
        (false, Some(Func::Upper)) => 2,
        (false, Some(Func::LowerAscii)) => 3,
        (false, Some(_)) => 4,
    };
    kind * MAX_COLUMNS + column
}

/// The slot kind of array elements (see [`slot`]).
const ELEMENT_KIND: usize = 5;

/// What index slot `slot` keys (see [`slot`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SlotKey {
    /// The column.
    pub(super) column: usize,
    /// The key function of its value (`lower`/`upper`), if any.
    pub(super) func: Option<Func>,
    /// Whether the keys are its array's elements.
    pub(super) element: bool,
}

/// The column, key function and element flag of index slot `slot` (see [`slot`]).
pub(super) fn slot_key(slot: usize) -> SlotKey {
    let kind = slot / MAX_COLUMNS;
    let func = match kind {
        1 => Some(Func::Lower),
        2 => Some(Func::Upper),
        3 => Some(Func::LowerAscii),
        4 => Some(Func::UpperAscii),
        _ => None,
    };
    SlotKey {
        column: slot % MAX_COLUMNS,
        func,
        element: kind == ELEMENT_KIND,
    }
}
