//! `router_set_*` NIFs of a router over declared tables (`LsmIndex.ShapeRouter.new/3`): a
//! core `RouterSet::with_tables` in the same resource as the filter's sets. Shapes are added
//! with their snapshots of their subqueries; every change is routed through
//! `RouterSet::route_linked` (stateful for tables some subquery reads) and answers
//! `{ids, moves}`, a move being `{id, :move_in | :move_out, position, values}`, `values`
//! `:all` or a list (nil first, then by text) of PostgreSQL text (a list per row for
//! composite subqueries; nil: the rows whose tested value is NULL).
//!
//! Scheduling: everything starts on a normal scheduler and never waits there: a busy views
//! lock, a full view index or a change moving more than a few thousand shapes answers
//! `:wait`, and the caller repeats the call on the dirty twin (nothing was applied).

use lsm_index_core::router::ids::FIRST_NAMED;
use lsm_index_core::router::views::{MoveKind, MoveValue, MoveValues};
use lsm_index_core::router::{Moved, SeedText, SeededShape};
use lsm_index_core::Error;
use rustler::{Atom, Binary, Encoder, Env, NifResult, ResourceArc, Term};
use std::time::Duration;

use crate::change::{as_change, record, split, Bad, Records};
use crate::error::{core_error, Call};
use crate::predicate::sql_text;
use crate::router::{Slice, SLICE};
use crate::router_set::{id_terms, name_of, written, RouterSetResource};
use crate::router_shapes::param_values;

mod atoms {
    rustler::atoms! {
        ok,
        nil,
        current,
        all,
        move_in,
        move_out,
        wait,
        dirty,
        bad_change,
        not_a_change,
        not_a_map,
        bad_value,
        unknown_table,
        links,
        result,
    }
}

/// One subquery's snapshot: `None` for `:current`, else its rows' cells row after row and
/// the row width (`Err`: rows of different widths, the position's seed error).
type Seed<'a> = Option<Result<(Vec<Option<&'a [u8]>>, usize), String>>;

/// One subquery's snapshot term (`:current`, or a list of rows, each a value — binary or
/// nil — or a list of them) as flat cells: a million-row seed makes no allocation per row.
fn seed_rows<'a>(term: Term<'a>) -> NifResult<Seed<'a>> {
    if term.decode::<Atom>().ok() == Some(atoms::current()) {
        return Ok(None);
    }
    let cell = |t: Term<'a>| -> NifResult<Option<&'a [u8]>> {
        if let Ok(b) = t.decode::<Binary<'a>>() {
            Ok(Some(b.as_slice()))
        } else if t.decode::<Atom>().ok() == Some(atoms::nil()) {
            Ok(None)
        } else {
            Err(rustler::Error::BadArg)
        }
    };
    let rows: rustler::ListIterator<'a> = term.decode()?;
    let mut cells = Vec::new();
    let mut width = None;
    for row in rows {
        let before = cells.len();
        match row.decode::<rustler::ListIterator<'a>>() {
            Ok(items) => {
                for item in items {
                    cells.push(cell(item)?);
                }
            }
            Err(_) => cells.push(cell(row)?),
        }
        let w = cells.len() - before;
        match width {
            None => width = Some(w),
            Some(first) if first != w => {
                let msg = format!("rows of {first} and of {w} values");
                return Ok(Some(Err(msg)));
            }
            Some(_) => {}
        }
    }
    Ok(Some(Ok((cells, width.unwrap_or(0)))))
}

#[allow(clippy::too_many_arguments)]
fn add_seeded<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    seeds: Vec<Term<'a>>,
    call: Call,
) -> NifResult<Term<'a>> {
    let params = param_values(params)?;
    let rows = seeds
        .into_iter()
        .map(seed_rows)
        .collect::<NifResult<Vec<_>>>()?;
    if let Some((i, Some(Err(msg)))) = rows
        .iter()
        .enumerate()
        .find(|(_, r)| matches!(r, Some(Err(_))))
    {
        let err = Error::InvalidSeed {
            position: i as u32,
            reason: msg.clone(),
        };
        return Ok(core_error(env, &err));
    }
    let seeds: Vec<SeedText<'_>> = rows
        .iter()
        .map(|r| match r {
            Some(Ok((cells, width))) => SeedText::Rows {
                cells,
                width: *width,
            },
            _ => SeedText::Current,
        })
        .collect();
    let mut buf = Vec::new();
    let shape = SeededShape {
        table,
        name: name_of(id, &mut buf)?,
        sql: sql_text(&sql)?,
        params: &params,
        seeds: &seeds,
    };
    let res = r.set.add_seeded(&shape, call == Call::Blocking);
    Ok(written(env, r, call, res.map(|()| atoms::ok())))
}

/// Adds (or replaces) shape `id` of table number `table` with WHERE `sql`, `params` and a
/// snapshot per subquery (`seeds`, see `seed_rows`); never waits (`:wait`).
#[rustler::nif]
fn router_set_add_seeded<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    seeds: Vec<Term<'a>>,
) -> NifResult<Term<'a>> {
    add_seeded(env, &r, table, id, sql, params, seeds, Call::NonBlocking)
}

/// `router_set_add_seeded` when it must wait, or for large snapshots: a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_add_seeded_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
    id: Term<'a>,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
    seeds: Vec<Term<'a>>,
) -> NifResult<Term<'a>> {
    add_seeded(env, &r, table, id, sql, params, seeds, Call::Blocking)
}

/// What routing one change term came to.
enum Routed<'a> {
    /// `{ids, moves}`.
    Done(Term<'a>),
    /// It would have had to wait (nothing applied).
    Wait,
    /// A malformed change.
    Bad(Term<'a>),
    /// A failure.
    Failed(Term<'a>),
}

/// Routes one change term (the table's number looked up in `numbers`).
fn route<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    numbers: Term<'a>,
    change: Term<'a>,
    blocking: bool,
) -> Routed<'a> {
    let (kind, table, recs) = match split(change, true) {
        Ok(parts) => parts,
        Err(bad) => return Routed::Bad(bad_term(env, bad, None)),
    };
    let Some(n) = table
        .and_then(|t| numbers.map_get(t).ok())
        .and_then(|n| n.decode::<u32>().ok())
    else {
        let why = (atoms::unknown_table(), table.unwrap_or(change));
        return Routed::Bad(why.encode(env));
    };
    let tables = r.set.tables();
    let Some(router) = tables.get(n as usize) else {
        return Routed::Bad(atoms::not_a_change().encode(env));
    };
    // every column: the views read columns the table's own shapes may not
    let columns = router.columns();
    let keys: Vec<(usize, Term<'a>)> = columns
        .iter()
        .enumerate()
        .map(|(c, (name, _))| (c, name.as_str().encode(env)))
        .collect();
    let rows = match recs.as_slice() {
        [] => Ok(Records::Truncate),
        [rec] => record(columns.len(), &keys, *rec).map(|c| Records::One(kind, c)),
        [old, new] => record(columns.len(), &keys, *old)
            .and_then(|o| record(columns.len(), &keys, *new).map(|n| Records::Two(o, n))),
        _ => Err(Bad::Form),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(bad) => return Routed::Bad(bad_term(env, bad, Some(&columns))),
    };
    let mut out = Vec::new();
    let mut moved = Moved::default();
    match r
        .set
        .route_linked(n, &as_change(&rows), &mut out, &mut moved, blocking)
    {
        Ok(()) => Routed::Done((sorted_ids(env, r, &out), moves(env, r, &moved)).encode(env)),
        Err(Error::WouldBlock { .. } | Error::Overloaded { .. }) if !blocking => Routed::Wait,
        Err(e) => Routed::Failed(core_error(env, &e)),
    }
}

/// The id terms of `handles`, sorted as terms (named ids sort otherwise than their
/// handles; integers below 2^31 are their own handles, already in order).
fn sorted_ids<'a>(env: Env<'a>, r: &RouterSetResource, handles: &[u32]) -> Term<'a> {
    let terms = id_terms(env, &r.set, handles);
    if handles.iter().all(|&h| h < FIRST_NAMED) {
        return terms;
    }
    let mut list: Vec<Term<'a>> = terms.decode().unwrap_or_default();
    list.sort();
    list.encode(env)
}

/// The moves term (see the module doc).
fn moves<'a>(env: Env<'a>, r: &RouterSetResource, moved: &Moved<'_>) -> Term<'a> {
    let cell = |c: &Option<&[u8]>| match c {
        Some(bytes) => {
            let mut bin = rustler::NewBinary::new(env, bytes.len());
            bin.as_mut_slice().copy_from_slice(bytes);
            Binary::from(bin).encode(env)
        }
        None => atoms::nil().encode(env),
    };
    // one term per stored list, shared by every move over it
    let mut lists: Vec<Option<Term<'a>>> = Vec::new();
    let mut terms = Vec::with_capacity(moved.moves.len());
    for (m, values) in moved.moves.iter() {
        let at = m.values as usize;
        if lists.len() <= at {
            lists.resize(at + 1, None);
        }
        let list = *lists[at].get_or_insert_with(|| match values {
            MoveValues::All => atoms::all().encode(env),
            MoveValues::Values(vs) => {
                let mut texts: Vec<Option<Vec<Option<&[u8]>>>> = vs
                    .iter()
                    .map(|v| match v {
                        MoveValue::Null => None,
                        MoveValue::Delta(i) => moved
                            .texts
                            .get(*i as usize)
                            .map(|t| t.iter().map(|c| c.as_deref()).collect()),
                    })
                    .collect();
                texts.sort();
                let items: Vec<Term<'a>> = texts
                    .iter()
                    .map(|t| match t.as_deref() {
                        None => atoms::nil().encode(env),
                        Some([one]) => cell(one),
                        Some(row) => row.iter().map(cell).collect::<Vec<_>>().encode(env),
                    })
                    .collect();
                items.encode(env)
            }
        });
        let kind = match m.kind {
            MoveKind::In => atoms::move_in(),
            MoveKind::Out => atoms::move_out(),
        };
        terms.push((m.shape, kind, m.position, list));
    }
    let handles: Vec<u32> = terms.iter().map(|t| t.0).collect();
    let ids: Vec<Term<'a>> = id_terms(env, &r.set, &handles).decode().unwrap_or_default();
    let mut out: Vec<(Term<'a>, Atom, u8, Term<'a>)> = terms
        .into_iter()
        .zip(ids)
        .map(|((_, kind, position, list), id)| (id, kind, position, list))
        .collect();
    // by id term (named ids sort otherwise than their handles), move-outs first
    out.sort_by(|a, b| {
        a.0.cmp(&b.0)
            .then((a.1 == atoms::move_in()).cmp(&(b.1 == atoms::move_in())))
            .then(a.2.cmp(&b.2))
    });
    out.encode(env)
}

/// `why` of `{:bad_change, why}`.
fn bad_term<'a>(
    env: Env<'a>,
    bad: Bad<'a>,
    columns: Option<&[(String, lsm_index_core::predicate::ColumnType)]>,
) -> Term<'a> {
    match bad {
        Bad::Form => atoms::not_a_change().encode(env),
        Bad::NotAMap(rec) => (atoms::not_a_map(), rec).encode(env),
        Bad::Value(c, v) => {
            let name = columns
                .and_then(|cols| cols.get(c))
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            (atoms::bad_value(), name, v).encode(env)
        }
    }
}

/// `{ids, moves}` of one change; `:wait`, `{:bad_change, why}` or `{:error, _}`.
#[rustler::nif]
fn router_set_route_moves<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    change: Term<'a>,
) -> Term<'a> {
    route_one(env, &r, numbers, change, false)
}

/// `router_set_route_moves` that may wait: a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_route_moves_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    change: Term<'a>,
) -> Term<'a> {
    route_one(env, &r, numbers, change, true)
}

fn route_one<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    numbers: Term<'a>,
    change: Term<'a>,
    blocking: bool,
) -> Term<'a> {
    match route(env, r, numbers, change, blocking) {
        Routed::Done(t) | Routed::Failed(t) => t,
        Routed::Wait => atoms::wait().encode(env),
        Routed::Bad(why) => (atoms::bad_change(), why).encode(env),
    }
}

/// Routes changes from the list, in order, until it ends or ~0.5 ms is spent:
/// `{reversed [{ids, moves}], rest}`; `:dirty` when the first change would wait (the caller
/// sends the list to the dirty twin; a later one ends the slice there); `{:bad_change, position, change, why}`; `{:error, _}` (the results
/// before it are lost, the changes before it were applied: `{:error, {position, reason}}`).
#[rustler::nif]
fn router_set_route_many_moves<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    changes: Term<'a>,
) -> Term<'a> {
    route_many(env, &r, numbers, changes, Some(SLICE))
}

/// `router_set_route_many_moves` on a dirty CPU scheduler: the whole list, waiting as needed.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_route_many_moves_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    changes: Term<'a>,
) -> Term<'a> {
    route_many(env, &r, numbers, changes, None)
}

fn route_many<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    numbers: Term<'a>,
    changes: Term<'a>,
    slice: Option<Duration>,
) -> Term<'a> {
    let slice = Slice::start(slice);
    let blocking = slice.unbounded();
    let mut results = Term::list_new_empty(env);
    let mut rest = changes;
    let mut position: usize = 0;
    loop {
        let Ok((head, tail)) = rest.list_get_cell() else {
            break;
        };
        match route(env, r, numbers, head, blocking) {
            Routed::Done(t) => results = results.list_prepend(t),
            Routed::Wait if position == 0 => return atoms::dirty().encode(env),
            Routed::Wait => break,
            Routed::Bad(why) => return (atoms::bad_change(), position, head, why).encode(env),
            Routed::Failed(e) => return e,
        }
        rest = tail;
        position += 1;
        if slice.spent(Some(std::time::Instant::now())) {
            break;
        }
    }
    slice.report(env);
    (results, rest).encode(env)
}
