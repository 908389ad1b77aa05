//! `router_set_*` NIFs: an `lsm_index_core::router::set::RouterSet` in a resource, the engine
//! of `LsmIndex.Filter` with `index: :lsm`. Changes come in the filter's form
//! (`{:insert, table, rec}`, `{:update, table, old, new}`, `{:truncate, table}`, ...); the
//! caller passes its map `table => table number` with each route, so naming a table costs a
//! map lookup here and nothing on the BEAM.
//!
//! Shape ids: an integer in `0..2^31-1` is its own handle; any other term is interned by its
//! bytes (a binary as itself, anything else in the external term format) and given back as
//! the same term.
//!
//! Scheduling as in `router`: small writes on normal schedulers (`:wait` sends the caller to
//! the dirty twins). Routes are in `router_set_route`.

use lsm_index_core::router::ids::{Names, ShapeName, FIRST_NAMED};
use lsm_index_core::router::set::{RouterSet, ShapeDef};
use lsm_index_core::{Error, Overload};
use rustler::{Binary, Encoder, Env, NewBinary, NifResult, Resource, ResourceArc, Term};

use crate::error::{core_error, write_reply, Call};
use crate::options::config;
use crate::predicate::{columns, sql_text};
use crate::router::{folding, metrics};
use crate::router_shapes::param_values;
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        error,
        column_type_conflict,
    }
}

/// One filter's router set, shared by every copy of the filter.
pub struct RouterSetResource {
    pub(crate) set: Box<RouterSet>,
    /// Its shape indexes' overload choice: how a refused shape write answers.
    overload: Overload,
}

#[rustler::resource_impl]
impl Resource for RouterSetResource {}

/// An empty set folding case as `lc_ctype` says, each table's shape index configured by the
/// options map `opts` (as `LsmIndex` builds it): `{:ok, set}` or `{:error, _}`.
#[rustler::nif]
fn router_set_new<'a>(env: Env<'a>, lc_ctype: Term<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let config = config(opts)?;
    let overload = config.on_overload;
    Ok(match RouterSet::new(folding(lc_ctype)?, config) {
        Ok(set) => {
            let resource = RouterSetResource {
                set: Box::new(set),
                overload,
            };
            (atoms::ok(), ResourceArc::new(resource)).encode(env)
        }
        Err(e) => core_error(env, &e),
    })
}

impl RouterSetResource {
    /// A resource holding `set`, whose shape indexes answer a refused write as `overload`.
    pub(crate) fn new(set: RouterSet, overload: Overload) -> RouterSetResource {
        RouterSetResource {
            set: Box::new(set),
            overload,
        }
    }
}

/// A shape id term's name (see the module doc), its bytes kept in `buf`.
pub(crate) fn name_of<'b>(id: Term<'_>, buf: &'b mut Vec<u8>) -> NifResult<ShapeName<'b>> {
    if let Ok(i) = id.decode::<i64>() {
        if (0..FIRST_NAMED as i64).contains(&i) {
            return Ok(ShapeName::Handle(i as u32));
        }
    }
    buf.clear();
    if let Ok(b) = id.decode::<Binary<'_>>() {
        buf.push(b'b');
        buf.extend_from_slice(b.as_slice());
    } else {
        buf.push(b't');
        buf.extend_from_slice(id.to_binary().as_slice());
    }
    Ok(ShapeName::Bytes(buf))
}

/// The id term of handle `h` (see the module doc).
fn id_term<'a>(env: Env<'a>, names: &Names, h: u32) -> Term<'a> {
    match names.name(h) {
        Some(ShapeName::Handle(i)) => i.encode(env),
        Some(ShapeName::Bytes([b'b', bytes @ ..])) => {
            let mut bin = NewBinary::new(env, bytes.len());
            bin.as_mut_slice().copy_from_slice(bytes);
            Binary::from(bin).encode(env)
        }
        Some(ShapeName::Bytes([_, bytes @ ..])) => env
            .binary_to_term(bytes)
            .map_or_else(|| h.encode(env), |(t, _)| t),
        // routes hold no lock on the names: a shape removed meanwhile (not by its owner)
        _ => h.encode(env),
    }
}

/// The id terms of `handles`.
pub(crate) fn id_terms<'a>(env: Env<'a>, set: &RouterSet, handles: &[u32]) -> Term<'a> {
    if handles.iter().all(|&h| h < FIRST_NAMED) {
        return handles.encode(env);
    }
    let names = set.names();
    let terms: Vec<Term<'a>> = handles.iter().map(|&h| id_term(env, &names, h)).collect();
    terms.encode(env)
}

/// The reply to a shape write: `:ok` (or `true`/`false` for a removal), `:wait`, or an
/// error; a column typed otherwise by other shapes is `{:error, {:column_type_conflict,
/// column, type_there}}`.
pub(crate) fn written<'a, T: Encoder>(
    env: Env<'a>,
    r: &RouterSetResource,
    call: Call,
    res: lsm_index_core::Result<T>,
) -> Term<'a> {
    match res {
        Ok(v) => v.encode(env),
        Err(Error::ColumnTypeConflict { column, had, .. }) => {
            (atoms::error(), (atoms::column_type_conflict(), column, had)).encode(env)
        }
        Err(e) => write_reply(env, r.overload, call, Err(e)),
    }
}

#[allow(clippy::too_many_arguments)]
fn add<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    cols: Term<'a>,
    call: Call,
) -> NifResult<Term<'a>> {
    let params = param_values(params)?;
    let cols = columns(cols)?;
    let mut buf = Vec::new();
    let def = ShapeDef {
        table,
        name: name_of(id, &mut buf)?,
        sql: sql_text(&sql)?,
        params: &params,
        columns: &cols,
    };
    let res = r.set.add(&def, call == Call::Blocking);
    Ok(written(env, r, call, res.map(|()| atoms::ok())))
}

/// Adds (or replaces, also from another table) shape `id` of table number `table`, its WHERE
/// `sql` written against `columns` (`[{name, type}]`); never waits (`:wait`).
#[rustler::nif]
fn router_set_add<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    cols: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(14);
    add(env, &r, table, id, sql, params, cols, Call::NonBlocking)
}

/// `router_set_add` for long clauses and writes that must wait: a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_add_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    cols: Term<'a>,
) -> NifResult<Term<'a>> {
    add(env, &r, table, id, sql, params, cols, Call::Blocking)
}

/// Removes shape `id`: whether there was one, or `:wait`.
#[rustler::nif]
fn router_set_remove<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    id: Term<'a>,
) -> NifResult<Term<'a>> {
    let mut buf = Vec::new();
    let res = r.set.remove(name_of(id, &mut buf)?, false);
    Ok(written(env, &r, Call::NonBlocking, res))
}

/// `router_set_remove` on a dirty I/O scheduler (it may wait).
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_remove_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    id: Term<'a>,
) -> NifResult<Term<'a>> {
    let mut buf = Vec::new();
    let res = r.set.remove(name_of(id, &mut buf)?, true);
    Ok(written(env, &r, Call::Blocking, res))
}

/// Every shape id (of table number `table`, or of all tables for `nil`).
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_shape_ids<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: Option<u32>,
) -> Term<'a> {
    id_terms(env, &r.set, &r.set.shape_handles(table))
}

/// How many shapes the set holds.
#[rustler::nif]
fn router_set_count(r: ResourceArc<RouterSetResource>) -> usize {
    r.set.len()
}

/// Whether some shape of table number `table` is found through an index on `column`.
#[rustler::nif]
fn router_set_indexed(r: ResourceArc<RouterSetResource>, table: u32, column: String) -> bool {
    r.set.is_indexed(table, &column)
}

/// Table number `table`'s router metrics (as `LsmIndex.ShapeRouter.metrics/1`'s map).
#[rustler::nif]
fn router_set_metrics(
    env: Env<'_>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
) -> NifResult<Term<'_>> {
    match r.set.tables().get(table as usize) {
        Some(router) => metrics(env, router),
        None => Err(rustler::Error::BadArg),
    }
}

/// Table number `table`'s shape index statistics (`LsmIndex.stats/1`'s map): `{:ok, map}`,
/// or `nil` while none of its shapes was ever indexed.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_index_stats(
    env: Env<'_>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
) -> NifResult<Term<'_>> {
    let tables = r.set.tables();
    match tables.get(table as usize).and_then(|t| t.shape_index()) {
        Some(index) => crate::index_stats::stats(env, index),
        None => Ok(rustler::types::atom::nil().encode(env)),
    }
}

/// Waits until every table's shape index is idle (a dirty I/O scheduler).
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_wait_idle(env: Env<'_>, r: ResourceArc<RouterSetResource>) -> Term<'_> {
    crate::error::ok_or_error(env, r.set.wait_idle())
}
