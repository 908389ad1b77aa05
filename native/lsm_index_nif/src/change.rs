//! Change terms as the core's `Change`: a record map as one text cell per table column
//! (only the columns some shape refers to are looked up: the rest cannot change any answer;
//! a missing column is NULL). Shared by `router` (`{:insert, rec}`, ..., `:truncate`) and
//! `router_set` (the filter's `{:insert, table, rec}`, ..., `{:truncate, table}`).
//!
//! A route reads what the core asks for ([`Keys::read_change`], [`Rows::route`]):
//!
//! ```text
//! insert / delete ─▶ Lookup: one map_get per cell the route asks for (a miss: the probed
//!                    columns only; a value is checked, text or nil, when it is read)
//! update          ─▶ Record × 2: one pass over each map (MapIterator), every referenced
//!                    value checked and kept as a slice: the core compares the two rows'
//!                    referenced cells, which costs N map_gets each the other way
//! ```
//!
//! In a pass, a key is matched to a referenced column by its term when the record before
//! had that very key term at that position (records built alike share their key binaries),
//! by its bytes otherwise. Measured (`mix run bench/router_miss.exs`, 10-column rows): a pass
//! costs ~100 ns more than the one `map_get` of a miss, an update's two passes ~100 ns less
//! than its ~12 `map_get`s. `record`/[`Records`]: one `map_get` per referenced column up
//! front, for the routes of linked tables (`router_set_views`).

use lsm_index_core::predicate::ColumnType;
use lsm_index_core::router::{Change, ChangeCells, Reader, RowCells};
use lsm_index_core::Error;
use rustler::sys::ErlNifTerm;
use rustler::types::map::MapIterator;
use rustler::{Atom, Binary, Encoder, Env, Term};
use smallvec::SmallVec;

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

/// The referenced columns of a reader's table as a record map's keys name them, made once
/// per call (see the module doc). It remembers key terms of the records it read, which stay
/// alive (and unmoved) for the call.
pub(crate) struct Keys<'a> {
    /// The table's width (cells per record).
    width: usize,
    /// Per table column: its name as a term when some shape refers to it (`map_get`'s key).
    terms: SmallVec<[Option<Term<'a>>; 16]>,
    /// The referenced columns, ascending.
    referenced: SmallVec<[u32; 16]>,
    /// By position in the last record passed over: its key's term and the referenced column
    /// that key names (`None`: none).
    seen: SmallVec<[(ErlNifTerm, Option<u32>); 16]>,
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
            seen: SmallVec::new(),
            nil: atoms::nil().as_c_arg(),
        }
    }

    /// Reads a change split by [`split`] (its `kind` and record terms) into `rows`: an
    /// insert's or delete's map as is, an update's two in a pass each.
    pub(crate) fn read_change(
        &mut self,
        kind: Atom,
        recs: &[Term<'a>],
        rows: &mut Rows<'a>,
    ) -> Result<(), Bad<'a>> {
        rows.map = None;
        rows.kind = match recs {
            [] => Kind::Truncate,
            [rec] => {
                if !rec.is_map() {
                    return Err(Bad::NotAMap(*rec));
                }
                rows.map = Some(*rec);
                if kind == atoms::insert() {
                    Kind::Insert
                } else {
                    Kind::Delete
                }
            }
            [old, new] => {
                self.pass(*old, &mut rows.old)?;
                self.pass(*new, &mut rows.new)?;
                Kind::Update
            }
            _ => return Err(Bad::Form),
        };
        Ok(())
    }

    /// Reads record `map` into `record` in one pass: the text of each referenced column (a
    /// missing key or `nil` is NULL; other keys are not looked at).
    fn pass(&mut self, map: Term<'a>, record: &mut Record<'a>) -> Result<(), Bad<'a>> {
        let Some(entries) = MapIterator::new(map) else {
            return Err(Bad::NotAMap(map));
        };
        record.clear(self.width, &self.referenced);
        for (i, (key, value)) in entries.enumerate() {
            let column = match self.seen.get(i) {
                Some(&(term, column)) if term == key.as_c_arg() => column,
                _ => self.learn(i, key),
            };
            let Some(c) = column else { continue };
            record.cells[c as usize] =
                text(value, self.nil).ok_or(Bad::Value(c as usize, value))?;
        }
        Ok(())
    }

    /// The referenced column `key` names (by its bytes), remembered for position `i`.
    fn learn(&mut self, i: usize, key: Term<'_>) -> Option<u32> {
        let column = key.decode::<Binary>().ok().and_then(|name| {
            let named = |c: &u32| {
                let term = self.terms[*c as usize].and_then(|t| t.decode::<Binary>().ok());
                term.is_some_and(|t| t.as_slice() == name.as_slice())
            };
            self.referenced.iter().copied().find(named)
        });
        if self.seen.len() <= i {
            self.seen.resize(i + 1, (ErlNifTerm::default(), None));
        }
        self.seen[i] = (key.as_c_arg(), column);
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

/// One record's text cells, per table column (current for the referenced ones), read by a
/// pass: a row the core reads as it needs (see [`RowCells`]).
#[derive(Default)]
pub(crate) struct Record<'a> {
    cells: Cells<'a>,
}

impl Record<'_> {
    /// A record of `width` columns, the `referenced` ones NULL.
    fn clear(&mut self, width: usize, referenced: &[u32]) {
        if self.cells.len() != width {
            self.cells = smallvec::smallvec![None; width];
        } else {
            for &c in referenced {
                self.cells[c as usize] = None;
            }
        }
    }
}

impl<'a> RowCells<'a> for Record<'a> {
    fn width(&self) -> usize {
        self.cells.len()
    }

    fn cell(&mut self, column: usize) -> lsm_index_core::Result<Option<&'a [u8]>> {
        Ok(self.cells.get(column).copied().flatten())
    }
}

/// A record map whose cells are looked up as the route asks for them (`map_get`), each value
/// checked then; a value that is not text stops the route (`Error::BadCell`), kept in `bad`.
struct Lookup<'k, 'a> {
    map: Term<'a>,
    keys: &'k Keys<'a>,
    bad: Option<(usize, Term<'a>)>,
}

impl<'a> RowCells<'a> for Lookup<'_, 'a> {
    fn width(&self) -> usize {
        self.keys.width
    }

    fn cell(&mut self, column: usize) -> lsm_index_core::Result<Option<&'a [u8]>> {
        let Some(key) = self.keys.terms.get(column).copied().flatten() else {
            return Ok(None);
        };
        let Ok(value) = self.map.map_get(key) else {
            return Ok(None);
        };
        text(value, self.keys.nil).ok_or_else(|| {
            self.bad = Some((column, value));
            Error::BadCell { column }
        })
    }
}

/// A change's kind.
#[derive(Clone, Copy, Default)]
enum Kind {
    #[default]
    Truncate,
    Insert,
    Delete,
    Update,
}

/// The records of a change ([`Keys::read_change`]), reused from change to change.
#[derive(Default)]
pub(crate) struct Rows<'a> {
    kind: Kind,
    /// An insert's or delete's record.
    map: Option<Term<'a>>,
    /// An update's records.
    old: Record<'a>,
    new: Record<'a>,
}

/// Why a change was not routed.
pub(crate) enum Refused<'a> {
    /// A malformed change (a value that is not text, met by the route).
    Bad(Bad<'a>),
    /// A failure of the core.
    Failed(Error),
}

impl<'a> Rows<'a> {
    /// Routes the change read last through `reader` into `out` (its cells read with `keys`,
    /// the reader's).
    pub(crate) fn route(
        &mut self,
        reader: &mut Reader<'_>,
        keys: &Keys<'a>,
        out: &mut Vec<u32>,
    ) -> Result<(), Refused<'a>> {
        let mut lookup = self.map.map(|map| Lookup {
            map,
            keys,
            bad: None,
        });
        let change = match (self.kind, lookup.as_mut()) {
            (Kind::Insert, Some(l)) => ChangeCells::Insert(l),
            (Kind::Delete, Some(l)) => ChangeCells::Delete(l),
            (Kind::Update, _) => ChangeCells::Update(&mut self.old, &mut self.new),
            _ => ChangeCells::Truncate,
        };
        let routed = reader.route_cells(change, out);
        match (routed, lookup.and_then(|l| l.bad)) {
            (Err(Error::BadCell { .. }), Some((c, value))) => {
                Err(Refused::Bad(Bad::Value(c, value)))
            }
            (Err(e), _) => Err(Refused::Failed(e)),
            (Ok(()), _) => Ok(()),
        }
    }
}
