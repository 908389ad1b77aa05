//! `router_set_route*` NIFs: a change (or a transaction) of `LsmIndex.Filter`'s form routed
//! through its router set: per change, the table's number looked up in the caller's map,
//! one reader per table for the call, the ids named back as the caller's terms (see
//! `router_set`). A transaction is taken a chunk at a time and each run of changes of one
//! table in it is routed in one batch (`change::route_rows`). Scheduling as `router`'s
//! routes: `:dirty` for tables scanning many shapes, ~0.5 ms slices for a transaction.

use lsm_index_core::router::set::Tables;
use lsm_index_core::router::{Reader, Routes};
use lsm_index_core::Error;
use rustler::{Encoder, Env, ResourceArc, Term};
use std::time::{Duration, Instant};

use crate::change::{route_rows, split, Bad, Keys, Refused, Rows};
use crate::error::core_error;
use crate::router::{Slice, CHUNK, DIRTY_SCANS, SLICE};
use crate::router_set::{id_terms, RouterSetResource};
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        bad_change,
        not_a_change,
        not_a_map,
        bad_value,
        dirty,
    }
}

/// A reader per table of one call, with its column keys and records (one per change of a
/// batch), made on first use.
struct Readers<'r, 'a> {
    tables: &'r Tables,
    open: Vec<Option<(Reader<'r>, Keys<'a>, Vec<Rows<'a>>)>>,
}

/// Where a change goes.
enum Routed<'a> {
    /// The sorted handles it affects (in `out`).
    Ids,
    /// A table with too many scanned shapes for a normal scheduler.
    Dirty,
    /// A malformed change.
    Bad(Bad<'a>),
    /// A failure of the index.
    Failed(Error),
}

impl<'r, 'a> Readers<'r, 'a> {
    fn new(tables: &'r Tables) -> Self {
        Readers {
            tables,
            open: (0..tables.len()).map(|_| None).collect(),
        }
    }

    /// Routes `change` (the table's number looked up in `numbers`) into `out`.
    fn route(
        &mut self,
        env: Env<'a>,
        numbers: Term<'a>,
        change: Term<'a>,
        dirty_ok: bool,
        out: &mut Vec<u32>,
    ) -> Routed<'a> {
        out.clear();
        let (kind, table, recs) = match split(change, true) {
            Ok(parts) => parts,
            Err(bad) => return Routed::Bad(bad),
        };
        let number = table
            .and_then(|t| numbers.map_get(t).ok())
            .and_then(|n| n.decode::<usize>().ok())
            .filter(|&n| n < self.tables.len());
        let Some(n) = number else {
            // no shape of this table: nothing to route (a record must still be a map)
            return match recs.iter().find(|rec| !rec.is_map()) {
                Some(rec) => Routed::Bad(Bad::NotAMap(*rec)),
                None => Routed::Ids,
            };
        };
        let (reader, keys, rows) = self.reader(env, n);
        if !dirty_ok && reader.scanned_count() > DIRTY_SCANS {
            return Routed::Dirty;
        }
        if rows.is_empty() {
            rows.push(Rows::default());
        }
        if let Err(bad) = keys.read_change(kind, &recs, &mut rows[0]) {
            return Routed::Bad(bad);
        }
        match rows[0].route(reader, keys, out) {
            Ok(()) => Routed::Ids,
            Err(Refused::Bad(bad)) => Routed::Bad(bad),
            Err(Refused::Failed(e)) => Routed::Failed(e),
        }
    }

    /// Table `n`'s reader, keys and records, made now if this call has not read the table.
    fn reader(&mut self, env: Env<'a>, n: usize) -> &mut (Reader<'r>, Keys<'a>, Vec<Rows<'a>>) {
        let tables = self.tables;
        self.open[n].get_or_insert_with(|| {
            let reader = tables[n].reader();
            let keys = Keys::new(env, reader.columns(), reader.referenced_columns());
            (reader, keys, Vec::new())
        })
    }

    /// Where change `change` goes (the filter's form): its table's number, `None` for a
    /// table with no shape here (then its records are checked to be maps), or why it is
    /// malformed.
    fn table_of(&self, numbers: Term<'a>, change: Term<'a>) -> Result<Option<usize>, Bad<'a>> {
        let (_, table, recs) = split(change, true)?;
        let number = table
            .and_then(|t| numbers.map_get(t).ok())
            .and_then(|n| n.decode::<usize>().ok())
            .filter(|&n| n < self.tables.len());
        if number.is_none() {
            if let Some(rec) = recs.iter().find(|rec| !rec.is_map()) {
                return Err(Bad::NotAMap(*rec));
            }
        }
        Ok(number)
    }
}

/// The reply term of a malformed change (`why` of `{:bad_change, ...}`).
fn bad_term<'a>(
    env: Env<'a>,
    bad: Bad<'a>,
    tables: &Tables,
    numbers: Term<'a>,
    change: Term<'a>,
) -> Term<'a> {
    match bad {
        Bad::Form => atoms::not_a_change().encode(env),
        Bad::NotAMap(rec) => (atoms::not_a_map(), rec).encode(env),
        Bad::Value(c, v) => {
            // the column's name, from the change's table
            let name = split(change, true)
                .ok()
                .and_then(|(_, t, _)| t)
                .and_then(|t| numbers.map_get(t).ok())
                .and_then(|n| n.decode::<usize>().ok())
                .and_then(|n| tables.get(n))
                .and_then(|r| r.columns().get(c).map(|(name, _)| name.clone()))
                .unwrap_or_default();
            (atoms::bad_value(), name, v).encode(env)
        }
    }
}

/// The ids `change` affects; `:dirty`, `{:bad_change, why}` or `{:error, _}`.
#[rustler::nif]
fn router_set_route<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    change: Term<'a>,
) -> Term<'a> {
    let _timer = CallTimer::start(15);
    route_one(env, &r, numbers, change, false)
}

/// `router_set_route` for tables with many scanned shapes: a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_route_dirty<'a>(
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
    dirty_ok: bool,
) -> Term<'a> {
    let tables = r.set.tables();
    let mut readers = Readers::new(&tables);
    let mut out = Vec::new();
    let routed = readers.route(env, numbers, change, dirty_ok, &mut out);
    drop(readers);
    match routed {
        Routed::Ids => id_terms(env, &r.set, &out),
        Routed::Dirty => atoms::dirty().encode(env),
        Routed::Bad(bad) => (
            atoms::bad_change(),
            bad_term(env, bad, &tables, numbers, change),
        )
            .encode(env),
        Routed::Failed(e) => core_error(env, &e),
    }
}

/// Routes changes from the list until it ends or ~0.5 ms is spent: `{reversed_results,
/// rest}` (the caller continues with `rest` unless it is `[]`); `:dirty` when the first
/// change's table scans too many shapes for a normal scheduler (a later one ends the slice
/// there); `{:bad_change, position, change, why}` for a malformed change. With `keep`, a
/// result is `{ids, kept}` (`Reader::route_keep`).
#[rustler::nif]
fn router_set_route_many<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    changes: Term<'a>,
    keep: bool,
) -> Term<'a> {
    let _timer = CallTimer::start(16);
    route_many(env, &r, numbers, changes, Some(SLICE), keep)
}

/// `router_set_route_many` on a dirty CPU scheduler: the whole list.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_set_route_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterSetResource>,
    numbers: Term<'a>,
    changes: Term<'a>,
    keep: bool,
) -> Term<'a> {
    route_many(env, &r, numbers, changes, None, keep)
}

fn route_many<'a>(
    env: Env<'a>,
    r: &RouterSetResource,
    numbers: Term<'a>,
    changes: Term<'a>,
    slice: Option<Duration>,
    keep: bool,
) -> Term<'a> {
    let slice = Slice::start(slice);
    let tables = r.set.tables();
    let mut readers = Readers::new(&tables);
    let mut results = Term::list_new_empty(env);
    // a chunk's changes: each with the list from it on, and its table's number
    let mut chunk: Vec<(Term<'a>, Term<'a>, Option<usize>)> = Vec::new();
    let mut routes = if keep {
        Routes::keeping()
    } else {
        Routes::default()
    };
    let none = || match keep {
        false => Term::list_new_empty(env),
        true => (Term::list_new_empty(env), Term::list_new_empty(env)).encode(env),
    };
    let mut rest = changes;
    let mut done: usize = 0;
    'chunks: loop {
        chunk.clear();
        let n = slice.next_chunk(done, CHUNK);
        while chunk.len() < n {
            let Ok((head, tail)) = rest.list_get_cell() else {
                break;
            };
            match readers.table_of(numbers, head) {
                Ok(table) => chunk.push((head, rest, table)),
                Err(bad) => {
                    // the call fails with it (one by one, the changes before it in the
                    // chunk were routed first: the answer is the same, the raise)
                    let why = bad_term(env, bad, &tables, numbers, head);
                    return (atoms::bad_change(), done + chunk.len(), head, why).encode(env);
                }
            }
            rest = tail;
        }
        if chunk.is_empty() {
            break;
        }
        // runs of changes of one table, each routed in one batch
        let mut at = 0;
        while at < chunk.len() {
            let table = chunk[at].2;
            let run = chunk[at..].iter().take_while(|c| c.2 == table).count();
            let Some(n) = table else {
                // no shape of this table: nothing to route
                for _ in 0..run {
                    results = results.list_prepend(none());
                }
                (at, done) = (at + run, done + run);
                continue;
            };
            let (reader, keys, rows) = readers.reader(env, n);
            if !slice.unbounded() && reader.scanned_count() > DIRTY_SCANS {
                if done == 0 {
                    return atoms::dirty().encode(env);
                }
                // the rest from this change on, in a later call
                rest = chunk[at].1;
                break 'chunks;
            }
            if rows.len() < run {
                rows.resize_with(run, Rows::default);
            }
            for (i, ((head, _, _), row)) in
                chunk[at..at + run].iter().zip(rows.iter_mut()).enumerate()
            {
                let taken = split(*head, true)
                    .and_then(|(kind, _, recs)| keys.read_change(kind, &recs, row));
                if let Err(bad) = taken {
                    let why = bad_term(env, bad, &tables, numbers, *head);
                    return (atoms::bad_change(), done + i, *head, why).encode(env);
                }
            }
            routes.clear();
            match route_rows(reader, keys, &mut rows[..run], &mut routes) {
                Ok(()) => {}
                Err((i, Refused::Bad(bad))) => {
                    let head = chunk[at + i].0;
                    let why = bad_term(env, bad, &tables, numbers, head);
                    return (atoms::bad_change(), done + i, head, why).encode(env);
                }
                Err((_, Refused::Failed(e))) => return core_error(env, &e),
            }
            for (i, ids) in routes.iter().enumerate() {
                let result = match keep {
                    false => id_terms(env, &r.set, ids),
                    true => {
                        let kept = id_terms(env, &r.set, routes.kept(i));
                        (id_terms(env, &r.set, ids), kept).encode(env)
                    }
                };
                results = results.list_prepend(result);
            }
            (at, done) = (at + run, done + run);
        }
        if !slice.unbounded() && slice.spent(Some(Instant::now())) {
            break;
        }
    }
    drop(readers);
    slice.report(env);
    (results, rest).encode(env)
}
