//! Change terms as the core's `Change`: a record map as one text cell per table column
//! (only the columns some shape refers to are looked up: the rest cannot change any answer;
//! a missing column is NULL). Shared by `router` (`{:insert, rec}`, ..., `:truncate`) and
//! `router_set` (the filter's `{:insert, table, rec}`, ..., `{:truncate, table}`).
//!
//! A route reads only the cells the core asks for ([`Keys::read_change`], [`Rows::route`]),
//! each once:
//!
//! ```text
//! cell c ─▶ read before? ─yes─▶ its text
//!        ─▶ fewer than GETS cells read: map_get(name of c)        (a miss: the probed ones)
//!        ─▶ else one pass over the map (MapIterator): every referenced cell at once
//! ```
//!
//! A value is checked (text or nil) when it is read. In a pass, a key is matched to a
//! referenced column by its term when the record before had that very key term at that
//! position (records built alike share their key binaries), by its bytes otherwise.
//! Measured (`mix run bench/router_miss.exs`, 10-column rows): a pass costs ~100 ns more
//! than the one `map_get` of a miss; for a candidate's ~6 cells the two are within noise. A
//! `map_get` of a small map (≤ 32 keys) compares keys until it meets its own, a pass visits
//! each key once: the pass is what keeps wide records' candidates from costing N² steps.
//! `record`/[`Records`]: one `map_get` per referenced column up front, for the routes of
//! linked tables (`router_set_views`).

use lsm_index_core::predicate::ColumnType;
use lsm_index_core::router::{Change, RowCells};
use lsm_index_core::Error;
use rustler::sys::ErlNifTerm;
use rustler::types::map::MapIterator;
use rustler::{Atom, Binary, Encoder, Env, Term};
use smallvec::SmallVec;
use std::cell::RefCell;

mod rows;
use rows::Kind;
pub(crate) use rows::{route_rows, Refused, Rows};

mod atoms {
    rustler::atoms! {
        nil,
        insert,
        delete,
        update,
        truncate,
    }
}

/// Why a change term was refused (the caller raises `ArgumentError`).
pub(crate) enum Bad<'a> {
    /// Not a change of the expected form.
    Form,
    /// A record that is not a map.
    NotAMap(Term<'a>),
    /// A value (of this column) that is neither text nor `nil`.
    Value(usize, Term<'a>),
}

/// One record's text cells, inline for tables of up to 16 columns.
pub(crate) type Cells<'a> = SmallVec<[Option<&'a [u8]>; 16]>;

/// A record map as `width` text cells (see the module doc).
pub(crate) fn record<'a>(
    width: usize,
    keys: &[(usize, Term<'a>)],
    map: Term<'a>,
) -> Result<Cells<'a>, Bad<'a>> {
    if !map.is_map() {
        return Err(Bad::NotAMap(map));
    }
    let mut cells: Cells<'a> = smallvec::smallvec![None; width];
    for &(c, key) in keys {
        let Ok(v) = map.map_get(key) else {
            continue;
        };
        if let Ok(text) = v.decode::<Binary<'a>>() {
            cells[c] = Some(text.as_slice());
        } else if v.decode::<Atom>().ok() != Some(atoms::nil()) {
            return Err(Bad::Value(c, v));
        }
    }
    Ok(cells)
}

/// The records of a change term. A stack temporary: inline cells avoid an allocation per
/// change, which is the point of the size difference.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Records<'a> {
    One(Atom, Cells<'a>),
    Two(Cells<'a>, Cells<'a>),
    Truncate,
}

/// A change's kind, its table term (the filter's form) and its record terms.
pub(crate) type Split<'a> = (Atom, Option<Term<'a>>, SmallVec<[Term<'a>; 2]>);

/// A change's kind and its record terms, `tabled` (the filter's form: the table after the
/// kind) or not (the router's: `:truncate` bare), with the table term when tabled.
pub(crate) fn split<'a>(change: Term<'a>, tabled: bool) -> Result<Split<'a>, Bad<'a>> {
    if !tabled && change.decode::<Atom>().ok() == Some(atoms::truncate()) {
        return Ok((atoms::truncate(), None, SmallVec::new()));
    }
    let tuple = rustler::types::tuple::get_tuple(change).map_err(|_| Bad::Form)?;
    let kind: Atom = tuple
        .first()
        .and_then(|t| t.decode().ok())
        .ok_or(Bad::Form)?;
    let (table, recs) = match (tabled, tuple.get(1)) {
        (true, Some(t)) => (Some(*t), &tuple[2..]),
        (true, None) => return Err(Bad::Form),
        (false, _) => (None, &tuple[1..]),
    };
    let arity_ok = match recs.len() {
        0 => tabled && kind == atoms::truncate(),
        1 => kind == atoms::insert() || kind == atoms::delete(),
        2 => kind == atoms::update(),
        _ => false,
    };
    if !arity_ok {
        return Err(Bad::Form);
    }
    Ok((kind, table, recs.iter().copied().collect()))
}

/// The core's view of `records`.
pub(crate) fn as_change<'c>(records: &'c Records<'_>) -> Change<'c> {
    match records {
        Records::One(kind, rec) if *kind == atoms::insert() => Change::Insert(rec),
        Records::One(_, rec) => Change::Delete(rec),
        Records::Two(old, new) => Change::Update(old, new),
        Records::Truncate => Change::Truncate,
    }
}

/// Cells a record gives one `map_get` each before a pass reads the rest (see the module
/// doc): a miss asks for its probed columns (one, two), a candidate for its residuals' too.
const GETS: u8 = 2;

/// By position in a record map: its key's term and the referenced column it names.
type Seen = SmallVec<[(ErlNifTerm, Option<u32>); 16]>;

/// The referenced columns of a reader's table as a record map's keys name them, made once
/// per call (see the module doc). It remembers key terms of the records it passed over,
/// which stay alive (and unmoved) for the call.
pub(crate) struct Keys<'a> {
    /// The table's width (cells per record).
    width: usize,
    /// Per table column: its name as a term when some shape refers to it (`map_get`'s key).
    terms: SmallVec<[Option<Term<'a>>; 16]>,
    /// The referenced columns, ascending.
    referenced: SmallVec<[u32; 16]>,
    /// By position in the last record passed over: its key's term and the referenced column
    /// that key names (`None`: none). (A pass may run from either record of an update.)
    seen: RefCell<Seen>,
    /// The `nil` atom's term.
    nil: ErlNifTerm,
}

impl<'a> Keys<'a> {
    /// The keys of the `referenced` columns of `columns`.
    pub(crate) fn new(
        env: Env<'a>,
        columns: &[(String, ColumnType)],
        referenced: &[usize],
    ) -> Self {
        let mut terms: SmallVec<[Option<Term<'a>>; 16]> = smallvec::smallvec![None; columns.len()];
        for &c in referenced {
            terms[c] = Some(columns[c].0.as_str().encode(env));
        }
        Keys {
            width: columns.len(),
            terms,
            referenced: referenced.iter().map(|&c| c as u32).collect(),
            seen: RefCell::default(),
            nil: atoms::nil().as_c_arg(),
        }
    }

    /// Takes a change split by [`split`] (its `kind` and record terms) into `rows`, nothing
    /// of its records read yet (but that they are maps).
    pub(crate) fn read_change(
        &self,
        kind: Atom,
        recs: &[Term<'a>],
        rows: &mut Rows<'a>,
    ) -> Result<(), Bad<'a>> {
        if let Some(rec) = recs.iter().find(|r| !r.is_map()) {
            return Err(Bad::NotAMap(*rec));
        }
        rows.kind = match recs {
            [] => Kind::Truncate,
            [_] if kind == atoms::insert() => Kind::Insert,
            [_] => Kind::Delete,
            [_, _] => Kind::Update,
            _ => return Err(Bad::Form),
        };
        for (i, rec) in recs.iter().enumerate() {
            rows.records[i].start(*rec, self.width);
        }
        Ok(())
    }

    /// Column `c` of `map` (referenced) as a cell; `Err` with its value when that is not text.
    fn get(&self, map: Term<'a>, c: usize) -> Result<Option<&'a [u8]>, Term<'a>> {
        let Some(key) = self.terms.get(c).copied().flatten() else {
            return Ok(None);
        };
        match map.map_get(key) {
            Ok(value) => text(value, self.nil).ok_or(value),
            Err(_) => Ok(None),
        }
    }

    /// Reads every referenced cell of `map` into `cells` in one pass (a missing key or `nil`
    /// is NULL; other keys are not looked at); `Err` with a column and its value that is not
    /// text.
    fn pass(&self, map: Term<'a>, cells: &mut Cells<'a>) -> Result<(), (usize, Term<'a>)> {
        for &c in &self.referenced {
            cells[c as usize] = None;
        }
        let Some(entries) = MapIterator::new(map) else {
            return Ok(());
        };
        let mut seen = self.seen.borrow_mut();
        for (i, (key, value)) in entries.enumerate() {
            let column = match seen.get(i) {
                Some(&(term, column)) if term == key.as_c_arg() => column,
                _ => self.learn(&mut seen, i, key),
            };
            let Some(c) = column else { continue };
            cells[c as usize] = text(value, self.nil).ok_or((c as usize, value))?;
        }
        Ok(())
    }

    /// The referenced column `key` names (by its bytes), remembered for position `i`.
    fn learn(&self, seen: &mut Seen, i: usize, key: Term<'_>) -> Option<u32> {
        let column = key.decode::<Binary>().ok().and_then(|name| {
            let named = |c: &u32| {
                let term = self.terms[*c as usize].and_then(|t| t.decode::<Binary>().ok());
                term.is_some_and(|t| t.as_slice() == name.as_slice())
            };
            self.referenced.iter().copied().find(named)
        });
        if seen.len() <= i {
            seen.resize(i + 1, (ErlNifTerm::default(), None));
        }
        seen[i] = (key.as_c_arg(), column);
        column
    }
}

/// A value term as a cell: `Some(None)` for `nil`, `Some(Some(text))` for a binary, `None`
/// for anything else.
fn text<'a>(value: Term<'a>, nil: ErlNifTerm) -> Option<Option<&'a [u8]>> {
    if value.as_c_arg() == nil {
        return Some(None);
    }
    value
        .decode::<Binary<'a>>()
        .ok()
        .map(|b| Some(b.as_slice()))
}

/// One record map and the cells read from it so far (reused from record to record).
#[derive(Default)]
struct Record<'a> {
    map: Option<Term<'a>>,
    /// Per table column; current where `read` says (or every referenced one after a pass).
    cells: Cells<'a>,
    /// The columns read (a bitset).
    read: SmallVec<[u64; 4]>,
    /// How many were read one `map_get` each.
    gets: u8,
    /// Whether a pass read every referenced cell.
    passed: bool,
}

impl<'a> Record<'a> {
    /// Starts on record `map` of `width` columns: nothing read.
    fn start(&mut self, map: Term<'a>, width: usize) {
        self.map = Some(map);
        if self.cells.len() != width {
            self.cells = smallvec::smallvec![None; width];
            self.read = smallvec::smallvec![0; width.div_ceil(64)];
        } else {
            self.read.iter_mut().for_each(|w| *w = 0);
        }
        self.gets = 0;
        self.passed = false;
    }
}

/// A record as the core reads it: its cells read as asked (see the module doc); a value that
/// is not text stops the route (`Error::BadCell`), kept in `bad`.
struct Reading<'k, 'a> {
    keys: &'k Keys<'a>,
    record: &'k mut Record<'a>,
    bad: &'k mut Option<(usize, Term<'a>)>,
}

impl<'a> RowCells<'a> for Reading<'_, 'a> {
    fn width(&self) -> usize {
        self.keys.width
    }

    fn cell(&mut self, column: usize) -> lsm_index_core::Result<Option<&'a [u8]>> {
        let r = &mut *self.record;
        let (word, bit) = (column / 64, 1 << (column % 64));
        if r.passed || r.read.get(word).is_some_and(|w| w & bit != 0) {
            return Ok(r.cells.get(column).copied().flatten());
        }
        let Some(map) = r.map else { return Ok(None) };
        let read = if r.gets < GETS {
            r.gets += 1;
            self.keys.get(map, column).map_err(|value| (column, value))
        } else {
            r.passed = true;
            self.keys
                .pass(map, &mut r.cells)
                .map(|()| r.cells.get(column).copied().flatten())
        };
        match read {
            Ok(cell) => {
                if let Some(w) = r.read.get_mut(word) {
                    *w |= bit;
                }
                if let Some(slot) = r.cells.get_mut(column) {
                    *slot = cell;
                }
                Ok(cell)
            }
            Err((c, value)) => {
                *self.bad = Some((c, value));
                Err(Error::BadCell { column: c })
            }
        }
    }
}
