//! `router_set_*` NIFs of a router over declared tables that are not per shape or per
//! change: making one (in memory, or opened on a directory), its flush with the caller's
//! stream position, close and position, the views' figures, and the queries a caller runs
//! for a shape's snapshots. Shapes and routes: `router_set_views`.

use lsm_index_core::predicate::TableDef;
use lsm_index_core::router::set::RouterSet;
use rustler::{Atom, Binary, Encoder, Env, NifResult, ResourceArc, Term};

use crate::error::core_error;
use crate::options::config;
use crate::predicate::{columns, sql_text};
use crate::router::folding;
use crate::router_set::RouterSetResource;
use crate::router_shapes::param_values;

mod atoms {
    rustler::atoms! {
        ok,
        nil,
        links,
        result,
    }
}

/// A router over `tables` (`[{schema, name, [{column, type}]}]`, numbered by position),
/// folding case as `lc_ctype` says, its indexes configured by `opts`: `{:ok, set}` or
/// `{:error, _}`.
#[rustler::nif]
fn router_set_new_tables<'a>(
    env: Env<'a>,
    tables: Vec<(String, String, Term<'a>)>,
    lc_ctype: Term<'a>,
    opts: Term<'a>,
) -> NifResult<Term<'a>> {
    let config = config(opts)?;
    let overload = config.on_overload;
    let defs = table_defs(tables)?;
    Ok(
        match RouterSet::with_tables(defs, folding(lc_ctype)?, config) {
            Ok(set) => {
                let resource = ResourceArc::new(RouterSetResource::new(set, overload));
                (atoms::ok(), resource).encode(env)
            }
            Err(e) => core_error(env, &e),
        },
    )
}

/// `[{schema, name, [{column, type}]}]` as table definitions.
fn table_defs(tables: Vec<(String, String, Term<'_>)>) -> NifResult<Vec<TableDef>> {
    tables
        .into_iter()
        .map(|(schema, name, cols)| {
            Ok(TableDef {
                schema,
                name,
                columns: columns(cols)?,
            })
        })
        .collect()
}

/// The views' figures: `{:ok, %{views, attachments, diff_entries, view_underflows,
/// view_index}}` (`view_index`: the stats map of the shared view index), on a dirty
/// scheduler (stats walk the index).
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_view_metrics(env: Env<'_>, r: ResourceArc<RouterSetResource>) -> NifResult<Term<'_>> {
    let (links, link_pairs) = match r.set.link_pairs() {
        Ok(l) => l,
        Err(e) => return Ok(core_error(env, &e)),
    };
    let figures = r.set.with_views(|v| {
        (
            v.registry().len() as u64,
            v.shapes().attachments() as u64,
            v.shapes().diff_entries() as u64,
            v.counts().underflows(),
            v.counts().index().clone(),
        )
    });
    let (views, attachments, diffs, underflows, index) = match figures {
        Ok(f) => f,
        Err(e) => return Ok(core_error(env, &e)),
    };
    let index_term = crate::index_stats::stats(env, &index)?;
    let pairs: Vec<(&str, Term<'_>)> = vec![
        ("views", views.encode(env)),
        ("attachments", attachments.encode(env)),
        ("diff_entries", diffs.encode(env)),
        ("view_underflows", underflows.encode(env)),
        ("links", (links as u64).encode(env)),
        ("link_pairs", (link_pairs as u64).encode(env)),
        ("view_index", index_term),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        map = map.map_put(Atom::from_str(env, k)?.encode(env), v)?;
    }
    Ok((atoms::ok(), map).encode(env))
}

/// What to query for each subquery's snapshot of shape `sql` on table number `table`:
/// `{:ok, [{position, select_sql, :result | :links}]}` or `{:error, {:invalid_where, ...}}`.
#[rustler::nif]
fn router_set_seed_queries<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    table: u32,
    sql: Binary<'a>,
    params: Vec<Option<Binary<'a>>>,
) -> NifResult<Term<'a>> {
    let params = param_values(params)?;
    Ok(match r.set.seed_queries(table, sql_text(&sql)?, &params) {
        Ok(queries) => {
            let list: Vec<(usize, String, Atom)> = queries
                .into_iter()
                .enumerate()
                .map(|(i, q)| {
                    let kind = if q.links {
                        atoms::links()
                    } else {
                        atoms::result()
                    };
                    (i, q.sql, kind)
                })
                .collect();
            (atoms::ok(), list).encode(env)
        }
        Err(e) => core_error(env, &e),
    })
}

/// Opens (creating if needed) the persistent router over `tables` in directory `path`, as of
/// its last flush: `{:ok, set, position | nil}` or `{:error, _}` (`:locked`, `:corrupt`,
/// `{:invalid_config, _}` for a directory made for other tables).
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_open_tables<'a>(
    env: Env<'a>,
    path: String,
    tables: Vec<(String, String, Term<'a>)>,
    lc_ctype: Term<'a>,
    opts: Term<'a>,
) -> NifResult<Term<'a>> {
    let config = config(opts)?;
    let overload = config.on_overload;
    let defs = table_defs(tables)?;
    let opened = RouterSet::open_tables(
        std::path::Path::new(&path),
        defs,
        folding(lc_ctype)?,
        config,
    );
    Ok(match opened {
        Ok(set) => {
            let position = set.position();
            let resource = ResourceArc::new(RouterSetResource::new(set, overload));
            let position = match position {
                Some(p) => {
                    let mut bin = rustler::NewBinary::new(env, p.len());
                    bin.as_mut_slice().copy_from_slice(&p);
                    Binary::from(bin).encode(env)
                }
                None => atoms::nil().encode(env),
            };
            (atoms::ok(), resource, position).encode(env)
        }
        Err(e) => core_error(env, &e),
    })
}

/// Makes every change so far durable with the caller's stream `position`: `:ok` or
/// `{:error, _}`.
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_flush_tables<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    position: Binary<'a>,
) -> Term<'a> {
    crate::error::ok_or_error(env, r.set.flush_tables(position.as_slice()))
}

/// Releases a persistent router's directory (changes since its last flush are not kept).
#[rustler::nif(schedule = "DirtyIo")]
fn router_set_close_tables(env: Env<'_>, r: ResourceArc<RouterSetResource>) -> Term<'_> {
    crate::error::ok_or_error(env, r.set.close_tables())
}

/// The position of the last flush: a binary, or nil (never flushed, or in memory).
#[rustler::nif]
fn router_set_position(env: Env<'_>, r: ResourceArc<RouterSetResource>) -> Term<'_> {
    match r.set.position() {
        Some(p) => {
            let mut bin = rustler::NewBinary::new(env, p.len());
            bin.as_mut_slice().copy_from_slice(&p);
            Binary::from(bin).encode(env)
        }
        None => atoms::nil().encode(env),
    }
}
