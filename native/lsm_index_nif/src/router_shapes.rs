//! `router_*` NIFs that write shapes: add (one, or a list in one call) and remove. Small
//! writes run on normal schedulers and answer `:wait` when they would have to wait; the
//! caller then retries through the `*_dirty` variant (`error::write_reply`).

use rustler::{Binary, Encoder, Env, NifResult, ResourceArc, Term};

use crate::error::{write_reply, Call};
use crate::predicate::sql_text;
use crate::router::RouterResource;
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        refused,
    }
}

/// The reply to a shape write of `r` (see `error::write_reply`): `Overloaded` answers as the
/// router's index is configured, as an index's own writes do.
fn written<'a>(
    env: Env<'a>,
    r: &RouterResource,
    call: Call,
    res: lsm_index_core::Result<()>,
) -> Term<'a> {
    write_reply(env, r.overload, call, res)
}

/// `params` as the core takes them: text or NULL (`nil`).
pub(crate) fn param_values(params: Vec<Option<Binary<'_>>>) -> NifResult<Vec<Option<String>>> {
    params
        .into_iter()
        .map(|p| p.map(|b| sql_text(&b).map(str::to_string)).transpose())
        .collect()
}

#[rustler::nif]
fn router_add_shape<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    id: u32,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(7);
    let params = param_values(params)?;
    let res = r.router.try_add_shape_with(id, sql_text(&sql)?, &params);
    Ok(written(env, &r, Call::NonBlocking, res))
}

/// Long clauses, and adds that must wait: a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn router_add_shape_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    id: u32,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
) -> NifResult<Term<'a>> {
    let params = param_values(params)?;
    let res = r.router.add_shape_with(id, sql_text(&sql)?, &params);
    Ok(written(env, &r, Call::Blocking, res))
}

/// Adds a list of `{id, sql}` / `{id, sql, params}` in one call (`Router::add_shapes`):
/// `:ok`, or `{:refused, position, error}` for the first shape refused (those before it are
/// added, none after). A malformed entry (not such a tuple, an id outside `u32`, text that
/// is not UTF-8) is `badarg` before anything is added: the caller then validates the list
/// itself to say which. On a dirty I/O scheduler: it waits for the index and compiles on
/// threads of its own.
#[rustler::nif(schedule = "DirtyIo")]
fn router_add_shapes<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    shapes: rustler::ListIterator<'a>,
) -> NifResult<Term<'a>> {
    let mut owned = Vec::with_capacity(shapes.size_hint().0);
    for entry in shapes {
        let parts = rustler::types::tuple::get_tuple(entry)?;
        let (id, sql, params) = match parts.as_slice() {
            [id, sql] => (id, sql, Vec::new()),
            [id, sql, params] => (id, sql, params.decode::<Vec<Option<Binary<'a>>>>()?),
            _ => return Err(rustler::Error::BadArg),
        };
        let sql: Binary<'a> = sql.decode()?;
        owned.push((id.decode::<u32>()?, sql, param_values(params)?));
    }
    let texts = owned
        .iter()
        .map(|(_, sql, _)| sql_text(sql))
        .collect::<NifResult<Vec<&str>>>()?;
    let each: Vec<(u32, &str, &[Option<String>])> = owned
        .iter()
        .zip(texts)
        .map(|((id, _, params), sql)| (*id, sql, params.as_slice()))
        .collect();
    Ok(match r.router.add_shapes(&each) {
        Ok(()) => atoms::ok().encode(env),
        Err((at, e)) => {
            let reply = written(env, &r, Call::Blocking, Err(e));
            (atoms::refused(), at, reply).encode(env)
        }
    })
}

#[rustler::nif]
fn router_remove_shape(env: Env<'_>, r: ResourceArc<RouterResource>, id: u32) -> Term<'_> {
    written(env, &r, Call::NonBlocking, r.router.try_remove_shape(id))
}

#[rustler::nif(schedule = "DirtyIo")]
fn router_remove_shape_dirty(env: Env<'_>, r: ResourceArc<RouterResource>, id: u32) -> Term<'_> {
    written(env, &r, Call::Blocking, r.router.remove_shape(id))
}
