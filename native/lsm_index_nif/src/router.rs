//! `router_*` NIFs: an `lsm_index_core::router::Router` in a resource, and `where_parse`,
//! which hands a parsed WHERE clause to `LsmIndex.Filter` as its expression tree.
//!
//! Scheduling: routes and small shape writes run on normal schedulers and never wait;
//! `router_route_many` stops after ~half a time slice and hands the rest of the list back
//! (the caller calls again). A shape write that would wait answers `:wait` and the caller
//! retries through the `*_dirty` variant.

use lsm_index_core::predicate::{parse, CmpOp, ColumnType, Expr, Value};
use lsm_index_core::router::{Change, Reader, Router, MAX_COLUMNS};
use lsm_index_core::wal::SyncMode;
use lsm_index_core::Error;
use rustler::{Atom, Binary, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use smallvec::SmallVec;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::index::{config, core_error};
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        wait,
        error,
        nil,
        insert,
        delete,
        update,
        truncate,
        bad_change,
        invalid_where,
        dirty,
        and,
        or,
        not,
        eq, ne, lt, le, gt, ge,
        in_ = "in",
        is_null,
        like,
        ilike,
        const_ = "const",
        nan,
        infinity,
        neg_infinity,
    }
}

/// One router, shared by every process holding the reference.
pub struct RouterResource {
    router: Router,
}

#[rustler::resource_impl]
impl Resource for RouterResource {}

/// The table's columns from `[{name, type_name}]`; `BadArg` for anything else.
fn columns(term: Term<'_>) -> NifResult<Vec<(String, ColumnType)>> {
    let list: Vec<(String, String)> = term.decode()?;
    if list.len() > MAX_COLUMNS {
        return Err(rustler::Error::BadArg);
    }
    list.into_iter()
        .map(|(name, ty)| {
            Ok((
                name,
                ColumnType::from_name(&ty).ok_or(rustler::Error::BadArg)?,
            ))
        })
        .collect()
}

/// `{:error, {:invalid_where, position, message}}` for a clause that does not parse, else
/// the usual `{:error, {kind, message}}`.
fn error_term<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    match e {
        Error::InvalidPredicate { position, reason } => (
            atoms::error(),
            (atoms::invalid_where(), *position, reason.as_str()),
        )
            .encode(env),
        e => core_error(env, e),
    }
}

/// Creates a router for `columns`; its equality index takes the options map `LsmIndex`
/// builds (in memory).
#[rustler::nif]
fn router_new<'a>(env: Env<'a>, cols: Term<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    Ok(match Router::new(columns(cols)?, config(opts)?) {
        Ok(router) => (atoms::ok(), ResourceArc::new(RouterResource { router })).encode(env),
        Err(e) => error_term(env, &e),
    })
}

/// Opens (or creates) the persistent router in directory `path` (I/O: dirty I/O scheduler).
#[rustler::nif(schedule = "DirtyIo")]
fn router_open<'a>(
    env: Env<'a>,
    path: String,
    cols: Term<'a>,
    opts: Term<'a>,
    sync: Term<'a>,
) -> NifResult<Term<'a>> {
    let sync = SyncMode::from_name(&sync.atom_to_string()?).ok_or(rustler::Error::BadArg)?;
    let opened = Router::open(Path::new(&path), columns(cols)?, config(opts)?, sync);
    Ok(match opened {
        Ok(router) => (atoms::ok(), ResourceArc::new(RouterResource { router })).encode(env),
        Err(e) => error_term(env, &e),
    })
}

/// Makes every shape change so far durable (an fsync of the catalog).
#[rustler::nif(schedule = "DirtyIo")]
fn router_flush(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    write_reply(env, r.router.flush())
}

/// Flushes and releases the directory; later calls fail with `{:error, {:closed, _}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn router_close(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    write_reply(env, r.router.close())
}

/// Waits until the shape index's background compaction is idle.
#[rustler::nif(schedule = "DirtyIo")]
fn router_wait_idle(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    write_reply(env, r.router.wait_idle())
}

/// `:ok`, `:wait` (a non-blocking write would have had to wait) or `{:error, _}`.
fn write_reply<'a>(env: Env<'a>, r: lsm_index_core::Result<()>) -> Term<'a> {
    match r {
        Ok(()) => atoms::ok().encode(env),
        Err(Error::WouldBlock { .. } | Error::Overloaded { .. }) => atoms::wait().encode(env),
        Err(e) => error_term(env, &e),
    }
}

fn sql_text<'b>(sql: &'b Binary<'_>) -> NifResult<&'b str> {
    std::str::from_utf8(sql.as_slice()).map_err(|_| rustler::Error::BadArg)
}

#[rustler::nif]
fn router_add_shape<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    id: u32,
    sql: Binary<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(7);
    Ok(write_reply(
        env,
        r.router.try_add_shape(id, sql_text(&sql)?),
    ))
}

/// Long clauses, and adds that must wait: a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn router_add_shape_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    id: u32,
    sql: Binary<'a>,
) -> NifResult<Term<'a>> {
    Ok(write_reply(env, r.router.add_shape(id, sql_text(&sql)?)))
}

#[rustler::nif]
fn router_remove_shape(env: Env<'_>, r: ResourceArc<RouterResource>, id: u32) -> Term<'_> {
    write_reply(env, r.router.try_remove_shape(id))
}

#[rustler::nif(schedule = "DirtyIo")]
fn router_remove_shape_dirty(env: Env<'_>, r: ResourceArc<RouterResource>, id: u32) -> Term<'_> {
    write_reply(env, r.router.remove_shape(id))
}

/// Why a change term was refused (raised as `ArgumentError` by the caller).
type Bad = &'static str;

/// A record map as one text cell per column. Only the columns some shape refers to are
/// looked up (the rest cannot change any answer); a missing column is NULL.
fn record<'a>(
    router: &Router,
    keys: &[(usize, Term<'a>)],
    map: Term<'a>,
) -> Result<Cells<'a>, Bad> {
    if !map.is_map() {
        return Err("a record is a map of column name => text or nil");
    }
    let mut cells: Cells<'a> = smallvec::smallvec![None; router.columns().len()];
    for &(c, key) in keys {
        let Ok(v) = map.map_get(key) else {
            continue;
        };
        if let Ok(text) = v.decode::<Binary<'a>>() {
            cells[c] = Some(text.as_slice());
        } else if v.decode::<Atom>().ok() != Some(atoms::nil()) {
            return Err("record values are Postgres text (binaries) or nil");
        }
    }
    Ok(cells)
}

/// The map keys (column names) of the `referenced` columns, made once per call.
fn column_keys<'a>(
    env: Env<'a>,
    router: &Router,
    referenced: &[usize],
) -> SmallVec<[(usize, Term<'a>); 16]> {
    referenced
        .iter()
        .map(|&c| (c, router.columns()[c].0.as_str().encode(env)))
        .collect()
}

/// One record's text cells, inline for tables of up to 16 columns.
type Cells<'a> = SmallVec<[Option<&'a [u8]>; 16]>;

/// The records of a change term. A stack temporary: inline cells avoid an allocation per
/// change, which is the point of the size difference.
#[allow(clippy::large_enum_variant)]
enum Records<'a> {
    One(Atom, Cells<'a>),
    Two(Cells<'a>, Cells<'a>),
    Truncate,
}

fn cells<'a>(
    router: &Router,
    keys: &[(usize, Term<'a>)],
    change: Term<'a>,
) -> Result<Records<'a>, Bad> {
    const WHAT: &str = "a change is {:insert, record}, {:delete, old_record}, \
                        {:update, old_record, record} or :truncate";
    if change.decode::<Atom>().ok() == Some(atoms::truncate()) {
        return Ok(Records::Truncate);
    }
    let tuple = rustler::types::tuple::get_tuple(change).map_err(|_| WHAT)?;
    let kind: Atom = tuple.first().and_then(|t| t.decode().ok()).ok_or(WHAT)?;
    match tuple.as_slice() {
        [_, rec] if kind == atoms::insert() || kind == atoms::delete() => {
            Ok(Records::One(kind, record(router, keys, *rec)?))
        }
        [_, old, new] if kind == atoms::update() => {
            let old = record(router, keys, *old)?;
            Ok(Records::Two(old, record(router, keys, *new)?))
        }
        _ => Err(WHAT),
    }
}

fn as_change<'c>(cells: &'c Records<'_>) -> Change<'c> {
    match cells {
        Records::One(kind, rec) if *kind == atoms::insert() => Change::Insert(rec),
        Records::One(_, rec) => Change::Delete(rec),
        Records::Two(old, new) => Change::Update(old, new),
        Records::Truncate => Change::Truncate,
    }
}

/// The sorted shape ids `change` affects; `{:bad_change, message}` for a malformed change
/// (the caller raises), `{:error, _}` for a failure of the index.
#[rustler::nif]
fn router_route<'a>(env: Env<'a>, r: ResourceArc<RouterResource>, change: Term<'a>) -> Term<'a> {
    let _timer = CallTimer::start(8);
    let reader = r.router.reader();
    if reader.scanned_count() > DIRTY_SCANS {
        return atoms::dirty().encode(env);
    }
    route_one(env, &r, reader, change)
}

/// `router_route` for routers with many scanned shapes: a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_route_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    change: Term<'a>,
) -> Term<'a> {
    let reader = r.router.reader();
    route_one(env, &r, reader, change)
}

fn route_one<'a>(
    env: Env<'a>,
    r: &RouterResource,
    mut reader: Reader<'_>,
    change: Term<'a>,
) -> Term<'a> {
    let keys = column_keys(env, &r.router, reader.referenced_columns());
    let cells = match cells(&r.router, &keys, change) {
        Ok(c) => c,
        Err(why) => return (atoms::bad_change(), why).encode(env),
    };
    let mut out = Vec::new();
    match reader.route(&as_change(&cells), &mut out) {
        Ok(()) => out.encode(env),
        Err(e) => error_term(env, &e),
    }
}

/// How long one `router_route_many` call may run before handing the rest back.
const SLICE: Duration = Duration::from_micros(500);

/// Scanned shapes beyond which routes run on dirty schedulers: every change evaluates each
/// (~40 ns for a small clause, more for long IN lists or LIKE on long text).
const DIRTY_SCANS: usize = 1_000;

/// Scanned shapes beyond which `router_route_many` reads the clock after every change rather
/// than relying on the reader's sampled readings.
const CLOCK_EVERY_CHANGE_SCANS: usize = 64;

/// Routes changes from the list until it ends or the time slice is spent:
/// `{reversed_results, rest}` (the caller continues with `rest` unless it is `[]`).
#[rustler::nif]
fn router_route_many<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    changes: Term<'a>,
) -> Term<'a> {
    let _timer = CallTimer::start(9);
    let reader = r.router.reader();
    if reader.scanned_count() > DIRTY_SCANS {
        return atoms::dirty().encode(env);
    }
    route_many(env, &r, reader, changes, Some(SLICE))
}

/// `router_route_many` for routers with many scanned shapes: the whole list, on a dirty CPU
/// scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_route_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    changes: Term<'a>,
) -> Term<'a> {
    let reader = r.router.reader();
    route_many(env, &r, reader, changes, None)
}

/// Routes changes from the list until it ends or `slice` is spent:
/// `{reversed_results, rest}`.
fn route_many<'a>(
    env: Env<'a>,
    r: &RouterResource,
    mut reader: Reader<'_>,
    changes: Term<'a>,
    slice: Option<Duration>,
) -> Term<'a> {
    let started = Instant::now();
    let clock_every_change = reader.scanned_count() > CLOCK_EVERY_CHANGE_SCANS;
    let keys = column_keys(env, &r.router, reader.referenced_columns());
    let mut results = Term::list_new_empty(env);
    let mut rest = changes;
    let mut out = Vec::new();
    // at least one change per call, so the caller always makes progress
    loop {
        let Ok((head, tail)) = rest.list_get_cell() else {
            break;
        };
        let cells = match cells(&r.router, &keys, head) {
            Ok(c) => c,
            Err(why) => return (atoms::bad_change(), why).encode(env),
        };
        if let Err(e) = reader.route(&as_change(&cells), &mut out) {
            return error_term(env, &e);
        }
        results = results.list_prepend(out.encode(env));
        rest = tail;
        let Some(slice) = slice else { continue };
        // cheap routes: the reader's own (sampled) clock readings, none of ours per change
        let now = if clock_every_change {
            Some(Instant::now())
        } else {
            reader.last_timed()
        };
        if now.is_some_and(|t| t.duration_since(started) >= slice) {
            break;
        }
    }
    drop(reader);
    if slice.is_some() {
        let percent = (started.elapsed().as_micros() / 10).clamp(1, 100) as i32;
        rustler::schedule::consume_timeslice(env, percent);
    }
    (results, rest).encode(env)
}

/// The router's metrics and shape counts as a map.
#[rustler::nif]
fn router_metrics(env: Env<'_>, r: ResourceArc<RouterResource>) -> NifResult<Term<'_>> {
    let m = r.router.metrics();
    let counts = r.router.shape_counts();
    let ints: [(&str, u64); 11] = [
        ("changes_routed", m.changes),
        ("p50_route_ns", m.p50_route_ns),
        ("p99_route_ns", m.p99_route_ns),
        ("presence_probes", m.presence_probes),
        ("presence_passes", m.presence_passes),
        ("presence_false_positives", m.presence_false_positives),
        ("candidates", m.candidates),
        ("predicate_evaluations", m.predicate_evaluations),
        ("unparseable_rows", m.unparseable_rows),
        ("shapes_indexed", counts.indexed as u64),
        ("shapes_scanned", counts.scanned as u64),
    ];
    let floats: [(&str, f64); 4] = [
        ("mean_route_ns", m.mean_route_ns),
        ("presence_hit_rate", m.presence_hit_rate()),
        (
            "prefilter_false_positive_rate",
            m.presence_false_positive_rate(),
        ),
        ("candidates_per_change", m.candidates_per_change()),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in ints {
        map = map.map_put(Atom::from_str(env, k)?.encode(env), v.encode(env))?;
    }
    for (k, v) in floats {
        map = map.map_put(Atom::from_str(env, k)?.encode(env), v.encode(env))?;
    }
    Ok(map)
}

/// Parses `sql` against `[{name, type_name}]`: `{:ok, tree}` in `LsmIndex.Filter.Where`'s
/// form, or `{:error, {:invalid_where, position, message}}`.
fn where_parse<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    let cols = columns(cols)?;
    Ok(match parse(sql_text(&sql)?, &cols) {
        Ok(expr) => (atoms::ok(), tree(env, &expr, &cols)).encode(env),
        Err(e) => error_term(env, &e),
    })
}

#[rustler::nif]
fn where_parse_small<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    where_parse(env, sql, cols)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn where_parse_dirty<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    where_parse(env, sql, cols)
}

/// `expr` as an `LsmIndex.Filter.Where` tree (depth is bounded by the parser).
fn tree<'a>(env: Env<'a>, expr: &Expr, cols: &[(String, ColumnType)]) -> Term<'a> {
    let name = |c: &usize| cols[*c].0.as_str();
    let not = |t: Term<'a>, negated: bool| {
        if negated {
            (atoms::not(), t).encode(env)
        } else {
            t
        }
    };
    match expr {
        Expr::Const(b) => (atoms::const_(), opt_bool(env, *b)).encode(env),
        Expr::Cmp { column, op, value } => {
            let op = match op {
                CmpOp::Eq => atoms::eq(),
                CmpOp::Ne => atoms::ne(),
                CmpOp::Lt => atoms::lt(),
                CmpOp::Le => atoms::le(),
                CmpOp::Gt => atoms::gt(),
                CmpOp::Ge => atoms::ge(),
            };
            (op, name(column), literal(env, value.as_ref())).encode(env)
        }
        Expr::In {
            column,
            values,
            negated,
        } => {
            let lits: Vec<Term<'a>> = values.iter().map(|v| literal(env, v.as_ref())).collect();
            not((atoms::in_(), name(column), lits).encode(env), *negated)
        }
        Expr::IsNull { column, negated } => {
            not((atoms::is_null(), name(column)).encode(env), *negated)
        }
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated,
        } => {
            let op = if *case_insensitive {
                atoms::ilike()
            } else {
                atoms::like()
            };
            not((op, name(column), pattern.as_str()).encode(env), *negated)
        }
        Expr::Not(e) => (atoms::not(), tree(env, e, cols)).encode(env),
        Expr::And(es) | Expr::Or(es) => {
            let op = if matches!(expr, Expr::And(_)) {
                atoms::and()
            } else {
                atoms::or()
            };
            let list: Vec<Term<'a>> = es.iter().map(|e| tree(env, e, cols)).collect();
            (op, list).encode(env)
        }
    }
}

fn opt_bool(env: Env<'_>, b: Option<bool>) -> Term<'_> {
    match b {
        Some(b) => b.encode(env),
        None => atoms::nil().encode(env),
    }
}

/// A literal as `LsmIndex.Filter.ColumnType`'s canonical value (`nil` for NULL).
fn literal<'a>(env: Env<'a>, v: Option<&Value>) -> Term<'a> {
    match v {
        None => atoms::nil().encode(env),
        Some(Value::Int(i)) => i.encode(env),
        Some(Value::Float(f)) if f.is_nan() => atoms::nan().encode(env),
        Some(Value::Float(f)) if *f == f64::INFINITY => atoms::infinity().encode(env),
        Some(Value::Float(f)) if *f == f64::NEG_INFINITY => atoms::neg_infinity().encode(env),
        Some(Value::Float(f)) => f.encode(env),
        Some(Value::Bool(b)) => b.encode(env),
        Some(Value::Text(s)) => s.as_str().encode(env),
        Some(Value::Uuid(u)) => {
            let hex = format!("{u:032x}");
            format!(
                "{}-{}-{}-{}-{}",
                &hex[..8],
                &hex[8..12],
                &hex[12..16],
                &hex[16..20],
                &hex[20..]
            )
            .encode(env)
        }
    }
}
