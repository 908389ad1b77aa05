//! `filter_*` NIFs: `LsmIndex.Filter`'s WHERE semantics, which are the core's predicate engine
//! (`lsm_index_core::predicate`, the ShapeRouter's too), so filter and router cannot disagree.
//!
//! ```text
//! filter_compile_*(sql, columns, params)  once per shape ─▶ {:ok, {plans, residual, referenced}}
//!   plans:      [{column, [key]}]   keys: `key::value_key` bytes of the literals (binaries);
//!               `lower(c) = 'x'` is indexed under the pseudo column "\0lower\0c" (NUL: no
//!               column name holds one), whose keys are `lower` of c's values
//!   residual:   a Residual resource (program + the column names it reads), or nil: always true
//!   referenced: [column]            every column the clause reads
//! filter_schema(columns, indexed) once per change of a table's columns ─▶ a Schema resource
//! filter_row(schema, record, want_row) once per record ─▶ {row, keys, bad}
//!   row:  a Row resource (the typed values of the schema's columns), nil unless `want_row`
//!   keys: per indexed column, in `indexed` order, its value key or nil (NULL, missing, bad)
//!   bad:  the columns whose text is not a value of their type
//! filter_eval_*(row, [{shape_id, residual}]) once per record ─▶ {matched_ids, error_ids}
//!   a residual reading a column of the row that did not parse is an error (routed), unless
//!   the router would not have found its shape (see `Residual::plans`)
//! ```
//!
//! A residual's program reads a dense row of the columns it names (the clause parsed again
//! against just those columns), gathered from the record's row by name at evaluation. It also
//! carries their types, so it can parse them from a record itself: the protocol path of
//! `filter_record` (`Index.Protocol.affected_shapes/4`), which has no schema.

use std::borrow::Cow;

use lsm_index_core::key::{value_key, ColumnKey};
use lsm_index_core::predicate::compile::{compile, IndexPlan, Op, Program, Stack};
use lsm_index_core::predicate::{parse_in, ColumnType, EvalError, Func, Value};
use rustler::{Atom, Binary, Encoder, Env, NewBinary, NifResult, Resource, ResourceArc, Term};
use smallvec::SmallVec;

use crate::error::core_error;
use crate::predicate::{columns, sql_text};
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        nil,
        bad_value,
    }
}

/// A shape's compiled residual: immutable, shared by every copy of the filter holding it.
pub struct Residual {
    /// The program, over a row of `columns` in this order.
    pub(crate) program: Program,
    /// The names of the columns the program reads, in its row order.
    pub(crate) columns: Vec<String>,
    /// Their types, in the same order (to parse them from a record: `filter_record`).
    pub(crate) types: Vec<ColumnType>,
    /// The index plans (over the columns above) of a shape the router finds by its array's
    /// elements, which this engine scans (it files one key per column value): a row none of
    /// them finds is not the shape's, whatever a cell that did not parse holds, as in the
    /// router. Empty for every other shape.
    pub(crate) plans: Vec<IndexPlan>,
}

#[rustler::resource_impl]
impl Resource for Residual {}

/// The columns of a table that its shapes refer to: what a record is parsed into.
pub struct Schema {
    /// Name and type, sorted by name (a residual finds its columns by binary search).
    columns: Vec<(String, ColumnType)>,
    /// Positions in `columns` of the indexed columns (and their key functions), in the
    /// caller's order.
    indexed: Vec<(usize, Option<Func>)>,
}

#[rustler::resource_impl]
impl Resource for Schema {}

impl Schema {
    fn position(&self, name: &str) -> Option<usize> {
        self.columns
            .binary_search_by(|(n, _)| n.as_str().cmp(name))
            .ok()
    }
}

/// One record's typed values, per column of its schema (`None`: NULL, missing or bad).
pub struct Row {
    schema: ResourceArc<Schema>,
    values: Vec<Option<Value>>,
    /// Per column of its schema: whether its text did not parse.
    bad: Vec<bool>,
}

#[rustler::resource_impl]
impl Resource for Row {}

/// Compiles `sql` against `[{name, type_name}]` (see the module doc), or
/// `{:error, {:invalid_where, position, message}}`.
fn compile_shape<'a>(
    env: Env<'a>,
    sql: Binary<'a>,
    cols: Term<'a>,
    params: Vec<Option<Binary<'a>>>,
    lc_ctype: Term<'a>,
) -> NifResult<Term<'a>> {
    let cols = columns(cols)?;
    let sql = sql_text(&sql)?;
    let params = crate::router_shapes::param_values(params)?;
    let folding = crate::router::folding(lc_ctype)?;
    let expr = match parse_in(sql, &cols, &params, folding) {
        Ok(e) => e,
        Err(e) => return Ok(core_error(env, &e)),
    };
    // the same clause over only the columns it reads: a dense row per residual (renumbered,
    // not parsed again: a cast may name a type, such as an enum, of a column it does not read)
    let mask = compile(&expr).mask;
    let read = |c: usize| mask.get(c / 64).is_some_and(|w| w >> (c % 64) & 1 == 1);
    let mut dense_of = vec![0; cols.len()];
    let dense: Vec<(String, ColumnType)> = cols
        .into_iter()
        .enumerate()
        .filter(|(c, _)| read(*c))
        .enumerate()
        .map(|(d, (c, col))| {
            dense_of[c] = d;
            col
        })
        .collect();
    let mut expr = expr;
    expr.map_columns(&|c| dense_of[c]);
    let compiled = compile(&expr);
    let mut buf = ColumnKey::new();
    // the map engine files one key per column value: a shape found through its array's
    // elements is scanned here (its residual keeps the element conjunct: it is whole)
    let by_element = compiled.index.iter().any(|p| p.element);
    let plans: Vec<Term<'a>> = compiled
        .index
        .iter()
        .filter(|_| !by_element)
        .map(|plan| {
            let keys: Vec<Term<'a>> = plan
                .keys
                .iter()
                .map(|v| key_term(env, v, &mut buf))
                .collect();
            (plan_column(&dense[plan.column].0, plan.func), keys).encode(env)
        })
        .collect();
    let (names, types): (Vec<String>, Vec<ColumnType>) = dense.into_iter().unzip();
    let referenced: Vec<&str> = names.iter().map(String::as_str).collect();
    let residual = if always_true(&compiled.residual) {
        atoms::nil().encode(env)
    } else {
        ResourceArc::new(Residual {
            program: compiled.residual,
            columns: names.clone(),
            types,
            plans: if by_element {
                compiled.index
            } else {
                Vec::new()
            },
        })
        .encode(env)
    };
    Ok((atoms::ok(), (plans, residual, referenced)).encode(env))
}

/// Key functions and their names in pseudo column names.
const KEY_FUNCS: [(Func, &str); 4] = [
    (Func::Lower, "lower"),
    (Func::Upper, "upper"),
    (Func::LowerAscii, "lower_c"),
    (Func::UpperAscii, "upper_c"),
];

/// The name a plan's keys are filed under: the column's, or for a key function the pseudo
/// column `"\0lower\0name"` (`upper`, and `lower_c`/`upper_c` under `LC_CTYPE=C`).
fn plan_column(name: &str, func: Option<Func>) -> String {
    match func.and_then(|f| KEY_FUNCS.iter().find(|(k, _)| *k == f)) {
        None => name.to_string(),
        Some((_, tag)) => format!("\0{tag}\0{name}"),
    }
}

/// The column and key function a plan column name stands for (see [`plan_column`]).
pub(crate) fn split_plan_column(name: &str) -> (&str, Option<Func>) {
    let Some(rest) = name.strip_prefix('\0') else {
        return (name, None);
    };
    match rest.split_once('\0') {
        Some((tag, column)) => (
            column,
            KEY_FUNCS.iter().find(|(_, t)| *t == tag).map(|(f, _)| *f),
        ),
        None => (name, None),
    }
}

/// Whether `program` is the constant TRUE (nothing left to check beyond the index).
fn always_true(program: &Program) -> bool {
    program.ops.as_slice() == [Op::Const(Some(true))]
}

/// The value an index on a column's key function `func` (none: on the column itself) files
/// the column's value `v` under: `v`, or `func` of a text value. `None` for a key function
/// of a value that is not text (no plan has one).
pub(crate) fn indexed_value(v: &Value, func: Option<Func>) -> Option<Cow<'_, Value>> {
    match (v, func) {
        (v, None) => Some(Cow::Borrowed(v)),
        (Value::Text(text), Some(f)) => {
            Some(Cow::Owned(Value::Text(f.fold(text).unwrap_or_default())))
        }
        _ => None,
    }
}

/// The value key of `v` as a binary term (`buf`: scratch).
pub(crate) fn key_term<'a>(env: Env<'a>, v: &Value, buf: &mut ColumnKey) -> Term<'a> {
    buf.clear();
    value_key(v, buf);
    let mut bin = NewBinary::new(env, buf.len());
    bin.as_mut_slice().copy_from_slice(buf);
    bin.into()
}

#[rustler::nif]
fn filter_compile_small<'a>(
    env: Env<'a>,
    sql: Binary<'a>,
    cols: Term<'a>,
    params: Vec<Option<Binary<'a>>>,
    lc_ctype: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(10);
    compile_shape(env, sql, cols, params, lc_ctype)
}

/// Long clauses (the caller decides by size, as for `where_parse_dirty`).
#[rustler::nif(schedule = "DirtyCpu")]
fn filter_compile_dirty<'a>(
    env: Env<'a>,
    sql: Binary<'a>,
    cols: Term<'a>,
    params: Vec<Option<Binary<'a>>>,
    lc_ctype: Term<'a>,
) -> NifResult<Term<'a>> {
    compile_shape(env, sql, cols, params, lc_ctype)
}

/// The parser of a table's records: `columns` (`[{name, type_name}]`, names unique) and the
/// `indexed` ones among them whose keys `filter_row` returns, in this order.
#[rustler::nif]
fn filter_schema(cols: Term<'_>, indexed: Vec<String>) -> NifResult<ResourceArc<Schema>> {
    let mut cols = columns(cols)?;
    cols.sort_by(|a, b| a.0.cmp(&b.0));
    if cols.windows(2).any(|w| w[0].0 == w[1].0) {
        return Err(rustler::Error::BadArg);
    }
    let mut schema = Schema {
        columns: cols,
        indexed: Vec::with_capacity(indexed.len()),
    };
    for name in &indexed {
        let (column, func) = split_plan_column(name);
        let at = schema.position(column).ok_or(rustler::Error::BadArg)?;
        schema.indexed.push((at, func));
    }
    Ok(ResourceArc::new(schema))
}

/// Parses the schema's columns of `record` (a map of name => Postgres text or nil; a missing
/// column is NULL): `{row, keys, bad}` (see the module doc), or `{:bad_value, name, value}`
/// for a value that is neither text nor nil (the caller raises). `want_row`: whether a
/// residual may have to run on it (without one the row is `nil`: a resource per record costs
/// about as much as parsing four columns).
#[rustler::nif]
fn filter_row<'a>(
    env: Env<'a>,
    schema: ResourceArc<Schema>,
    record: Term<'a>,
    want_row: bool,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(11);
    if !record.is_map() {
        return Err(rustler::Error::BadArg);
    }
    let mut values = Vec::with_capacity(schema.columns.len());
    let mut bad = Vec::new();
    let mut unparsed = Vec::with_capacity(schema.columns.len());
    for (name, ty) in &schema.columns {
        let key = name.as_str().encode(env);
        let value = match record.map_get(key) {
            Err(_) => {
                unparsed.push(false);
                None
            }
            Ok(v) => match v.decode::<Binary<'a>>() {
                Ok(text) => {
                    let parsed = std::str::from_utf8(text.as_slice())
                        .ok()
                        .and_then(|t| ty.parse(t));
                    if parsed.is_none() {
                        bad.push(key);
                    }
                    unparsed.push(parsed.is_none());
                    parsed
                }
                Err(_) if v.decode::<Atom>().ok() == Some(atoms::nil()) => {
                    unparsed.push(false);
                    None
                }
                Err(_) => return Ok((atoms::bad_value(), key, v).encode(env)),
            },
        };
        values.push(value);
    }
    let mut buf = ColumnKey::new();
    let keys: Vec<Term<'a>> = schema
        .indexed
        .iter()
        .map(
            |&(c, func)| match values[c].as_ref().and_then(|v| indexed_value(v, func)) {
                Some(v) => key_term(env, &v, &mut buf),
                None => atoms::nil().encode(env),
            },
        )
        .collect();
    let row = if want_row {
        ResourceArc::new(Row {
            schema,
            values,
            bad: unparsed,
        })
        .encode(env)
    } else {
        atoms::nil().encode(env)
    };
    Ok((row, keys, bad).encode(env))
}

/// How a residual answered on a row: the one reading of `Program::run`'s result. An
/// evaluation error (and a residual whose columns the row lacks) routes the change to the
/// shape, as a value that does not parse does.
pub(crate) enum Outcome {
    Match,
    NoMatch,
    Error,
}

pub(crate) fn outcome(answer: Result<Option<bool>, EvalError>) -> Outcome {
    match answer {
        Ok(Some(true)) => Outcome::Match,
        Ok(Some(false) | None) => Outcome::NoMatch,
        Err(_) => Outcome::Error,
    }
}

/// Runs `residual` on the values of `row` it reads (`dense` and `stack`: scratch). When one
/// of them did not parse, the shape is routed (`Error`): it is a candidate or scanned, so
/// the row could match it — unless it is a shape the router finds by element (`plans`)
/// whose plans do not find the row (nor read a column that did not parse), which the
/// router would not have met.
fn run(
    residual: &Residual,
    row: &Row,
    dense: &mut SmallVec<[Option<Value>; 8]>,
    stack: &mut Stack,
) -> Outcome {
    dense.clear();
    let mut bad: SmallVec<[bool; 8]> = SmallVec::new();
    for name in &residual.columns {
        match row.schema.position(name) {
            Some(c) => {
                dense.push(row.values[c].clone());
                bad.push(row.bad[c]);
            }
            None => return Outcome::Error,
        }
    }
    if bad.contains(&true) {
        let found =
            |p: &IndexPlan| bad[p.column] || dense[p.column].as_ref().is_some_and(|v| p.finds(v));
        let ruled_out = !residual.plans.is_empty() && !residual.plans.iter().any(found);
        return if ruled_out {
            Outcome::NoMatch
        } else {
            Outcome::Error
        };
    }
    outcome(residual.program.run(dense, stack))
}

/// Evaluates every `{shape_id, residual}` of `checks` on `row`: `{matched, errors}`, the
/// shape ids whose residual is true and those whose evaluation failed.
fn eval<'a>(env: Env<'a>, row: &Row, checks: Term<'a>) -> NifResult<Term<'a>> {
    let mut matched = Term::list_new_empty(env);
    let mut errors = Term::list_new_empty(env);
    let mut dense = SmallVec::new();
    let mut stack = Stack::new();
    for check in checks.into_list_iterator()? {
        let (id, residual): (Term<'a>, ResourceArc<Residual>) = check.decode()?;
        match run(&residual, row, &mut dense, &mut stack) {
            Outcome::Match => matched = matched.list_prepend(id),
            Outcome::Error => errors = errors.list_prepend(id),
            Outcome::NoMatch => {}
        }
    }
    Ok((matched, errors).encode(env))
}

#[rustler::nif]
fn filter_eval_small<'a>(
    env: Env<'a>,
    row: ResourceArc<Row>,
    checks: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(12);
    eval(env, &row, checks)
}

/// Many checks (the caller decides by count, as the router does for its scanned shapes).
#[rustler::nif(schedule = "DirtyCpu")]
fn filter_eval_dirty<'a>(
    env: Env<'a>,
    row: ResourceArc<Row>,
    checks: Term<'a>,
) -> NifResult<Term<'a>> {
    eval(env, &row, checks)
}
