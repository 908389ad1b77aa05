//! Change terms as the core's `Change`: a record map as one text cell per table column
//! (only the columns some shape refers to are looked up: the rest cannot change any answer;
//! a missing column is NULL). Shared by `router` (`{:insert, rec}`, ..., `:truncate`) and
//! `router_set` (the filter's `{:insert, table, rec}`, ..., `{:truncate, table}`).

use lsm_index_core::predicate::ColumnType;
use lsm_index_core::router::Change;
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

/// The map keys (column names) of the `referenced` columns of `columns`, made once per call.
pub(crate) type ColumnKeys<'a> = SmallVec<[(usize, Term<'a>); 16]>;

/// The [`ColumnKeys`] of `referenced`.
pub(crate) fn column_keys<'a>(
    env: Env<'a>,
    columns: &[(String, ColumnType)],
    referenced: &[usize],
) -> ColumnKeys<'a> {
    referenced
        .iter()
        .map(|&c| (c, columns[c].0.as_str().encode(env)))
        .collect()
}

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

/// The records of a change split by [`split`], as `width` cells each.
pub(crate) fn records<'a>(
    width: usize,
    keys: &[(usize, Term<'a>)],
    kind: Atom,
    recs: &[Term<'a>],
) -> Result<Records<'a>, Bad<'a>> {
    Ok(match recs {
        [] => Records::Truncate,
        [rec] => Records::One(kind, record(width, keys, *rec)?),
        [old, new] => Records::Two(record(width, keys, *old)?, record(width, keys, *new)?),
        _ => return Err(Bad::Form),
    })
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
