//! `filter_parser`, `filter_record_key` and `filter_eval_record_*`: the protocol path of
//! `LsmIndex.Filter.Index.Protocol.affected_shapes/4`, where one equality index answers for
//! its column of a whole record (a map of column => Postgres text or nil), with no table
//! schema (the filter's own path is `filter_row` + `filter_eval_*`, in `filter`).
//!
//! ```text
//! filter_parser(type)                 once per index ─▶ a Parser resource (the column's type)
//! filter_record_key(parser, field, record)  per call ─▶ key | nil | :bad
//!   field: the index's column, or a plan's pseudo column ("\0lower\0c": keys of lower(c))
//!   key:   the value key of the record's value (a binary: the keys the filter indexes)
//!   nil:   NULL or missing (`=` is never true)       :bad: not a value of the type
//! filter_eval_record_*(record, [{shape_id, residual}]) per call ─▶ {matched_ids, error_ids}
//!   each residual parses the columns it reads from the record by their types (each column
//!   once per call); one that does not parse counts as an evaluation error, which routes
//! ```
//!
//! Both answer `{:bad_value, column, value}` for a value that is neither text nor nil (the
//! caller raises), and `BadArg` for a record that is not a map.

use lsm_index_core::key::ColumnKey;
use lsm_index_core::predicate::compile::Stack;
use lsm_index_core::predicate::{ColumnType, Value};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use smallvec::SmallVec;

use crate::filter::{indexed_value, key_term, outcome, split_plan_column, Outcome, Residual};
use crate::predicate::column_type;
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        nil,
        bad,
        bad_value,
    }
}

/// The type of the column an index sits on: how it reads its column from a record.
pub struct Parser {
    ty: ColumnType,
}

#[rustler::resource_impl]
impl Resource for Parser {}

/// A column of a record, read by its type.
#[derive(Clone)]
enum Field {
    /// NULL, or not in the record.
    Null,
    /// Text that is not a value of the type.
    Bad,
    Value(Value),
}

/// Column `name` of `record` (a map) read as a `ty`, or the `{:bad_value, name, value}`
/// reply for a value that is neither text nor nil.
fn read_column<'a>(
    env: Env<'a>,
    record: Term<'a>,
    name: &str,
    ty: &ColumnType,
) -> Result<Field, Term<'a>> {
    let key = name.encode(env);
    let Ok(v) = record.map_get(key) else {
        return Ok(Field::Null);
    };
    match v.decode::<Binary<'a>>() {
        Ok(text) => Ok(std::str::from_utf8(text.as_slice())
            .ok()
            .and_then(|t| ty.parse(t))
            .map_or(Field::Bad, Field::Value)),
        Err(_) if v.decode::<Atom>().ok() == Some(atoms::nil()) => Ok(Field::Null),
        Err(_) => Err((atoms::bad_value(), key, v).encode(env)),
    }
}

/// The parser of an index's column values: `type` as `LsmIndex.Filter.ColumnType.native/1`
/// gives it (`BadArg` for anything else).
#[rustler::nif]
fn filter_parser(ty: Term<'_>) -> NifResult<ResourceArc<Parser>> {
    Ok(ResourceArc::new(Parser {
        ty: column_type(ty)?,
    }))
}

/// The value key of `field` in `record` (see the module doc): a binary, `nil` or `:bad`.
#[rustler::nif]
fn filter_record_key<'a>(
    env: Env<'a>,
    parser: ResourceArc<Parser>,
    field: Binary<'a>,
    record: Term<'a>,
) -> NifResult<Term<'a>> {
    // a record parsed, as `filter_row` does: timed with it
    let _timer = CallTimer::start(11);
    if !record.is_map() {
        return Err(rustler::Error::BadArg);
    }
    let name = std::str::from_utf8(field.as_slice()).map_err(|_| rustler::Error::BadArg)?;
    let (column, func) = split_plan_column(name);
    Ok(match read_column(env, record, column, &parser.ty) {
        Err(reply) => reply,
        Ok(Field::Null) => atoms::nil().encode(env),
        Ok(Field::Bad) => atoms::bad().encode(env),
        Ok(Field::Value(v)) => match indexed_value(&v, func) {
            Some(v) => key_term(env, &v, &mut ColumnKey::new()),
            None => atoms::nil().encode(env),
        },
    })
}

/// Evaluates every `{shape_id, residual}` of `checks` on `record`: `{matched, errors}`, the
/// shape ids whose residual is true and those whose evaluation failed (a column it reads
/// not parsing among them).
fn eval_record<'a>(env: Env<'a>, record: Term<'a>, checks: Term<'a>) -> NifResult<Term<'a>> {
    if !record.is_map() {
        return Err(rustler::Error::BadArg);
    }
    let mut matched = Term::list_new_empty(env);
    let mut errors = Term::list_new_empty(env);
    // the columns read so far, by name and type (residuals share most of theirs)
    let mut read: SmallVec<[(String, ColumnType, Field); 8]> = SmallVec::new();
    let mut dense: SmallVec<[Option<Value>; 8]> = SmallVec::new();
    let mut stack = Stack::new();
    for check in checks.into_list_iterator()? {
        let (id, residual): (Term<'a>, ResourceArc<Residual>) = check.decode()?;
        dense.clear();
        let mut bad = false;
        for (name, ty) in residual.columns.iter().zip(&residual.types) {
            let known = read.iter().find(|(n, t, _)| n == name && t == ty);
            let value = match known {
                Some((_, _, value)) => value.clone(),
                None => match read_column(env, record, name, ty) {
                    Ok(value) => {
                        read.push((name.clone(), ty.clone(), value.clone()));
                        value
                    }
                    Err(reply) => return Ok(reply),
                },
            };
            match value {
                Field::Null => dense.push(None),
                Field::Value(v) => dense.push(Some(v)),
                Field::Bad => {
                    bad = true;
                    break;
                }
            }
        }
        let answer = if bad {
            Outcome::Error
        } else {
            outcome(residual.program.run(&dense, &mut stack))
        };
        match answer {
            Outcome::Match => matched = matched.list_prepend(id),
            Outcome::Error => errors = errors.list_prepend(id),
            Outcome::NoMatch => {}
        }
    }
    Ok((matched, errors).encode(env))
}

#[rustler::nif]
fn filter_eval_record_small<'a>(
    env: Env<'a>,
    record: Term<'a>,
    checks: Term<'a>,
) -> NifResult<Term<'a>> {
    // residuals evaluated, as `filter_eval_small` does: timed with it
    let _timer = CallTimer::start(12);
    eval_record(env, record, checks)
}

/// Many checks (the caller decides by count, as for `filter_eval_dirty`).
#[rustler::nif(schedule = "DirtyCpu")]
fn filter_eval_record_dirty<'a>(
    env: Env<'a>,
    record: Term<'a>,
    checks: Term<'a>,
) -> NifResult<Term<'a>> {
    eval_record(env, record, checks)
}
