//! `router_*` NIFs: an `lsm_index_core::router::Router` in a resource; change terms as the
//! core's `Change` (a record map as one text cell per column).
//!
//! Scheduling (shape writes: `router_shapes`): routes run on normal schedulers and never wait;
//! `router_route_many` routes the list a batch at a time (`Reader::route_batch_cells`),
//! stops after ~half a time slice and hands the rest of the list back (the caller calls
//! again). A shape write that would wait answers `:wait` and the caller
//! retries through the `*_dirty` variant, which never answers `:wait` (`error::write_reply`).

use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::{Reader, Router, Routes, ScanReason};
use lsm_index_core::SyncMode;
use lsm_index_core::{Config, Overload};
use rustler::{Atom, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::change::{route_rows, split, Bad, Keys, Refused, Rows};
use crate::error::{core_error, ok_or_error};
use crate::options::config;
use crate::predicate::columns;
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        bad_change,
        dirty,
    }
}

/// One router, shared by every process holding the reference.
pub struct RouterResource {
    /// On the Rust heap: ERTS holds a resource's bytes at about twice their size resident
    /// (measured with `bench/empty_memory.exs`: 1.35 KiB per empty router inline, 0.96 boxed).
    pub(crate) router: Box<Router>,
    /// Its shape index's overload choice: how a refused shape write answers.
    pub(crate) overload: Overload,
}

#[rustler::resource_impl]
impl Resource for RouterResource {}

/// `{:ok, router}` or the error term of `core_error`.
fn opened<'a>(env: Env<'a>, config: &Config, r: lsm_index_core::Result<Router>) -> Term<'a> {
    match r {
        Ok(router) => {
            let overload = config.on_overload;
            (
                atoms::ok(),
                ResourceArc::new(RouterResource {
                    router: Box::new(router),
                    overload,
                }),
            )
                .encode(env)
        }
        Err(e) => core_error(env, &e),
    }
}

/// The case folding named by an `:lc_ctype` atom (`:utf8`, `:c`).
pub(crate) fn folding(term: Term<'_>) -> NifResult<CaseFolding> {
    CaseFolding::from_name(&term.atom_to_string()?).ok_or(rustler::Error::BadArg)
}

/// Creates a router for `columns`; its equality index takes the options map `LsmIndex`
/// builds (in memory).
#[rustler::nif]
fn router_new<'a>(
    env: Env<'a>,
    cols: Term<'a>,
    lc_ctype: Term<'a>,
    opts: Term<'a>,
) -> NifResult<Term<'a>> {
    let config = config(opts)?;
    let router = Router::new(columns(cols)?, folding(lc_ctype)?, config.clone());
    Ok(opened(env, &config, router))
}

/// Opens (or creates) the persistent router in directory `path` (I/O: dirty I/O scheduler).
#[rustler::nif(schedule = "DirtyIo")]
fn router_open<'a>(
    env: Env<'a>,
    path: String,
    cols: Term<'a>,
    lc_ctype: Term<'a>,
    opts: Term<'a>,
    sync: Term<'a>,
) -> NifResult<Term<'a>> {
    let sync = SyncMode::from_name(&sync.atom_to_string()?).ok_or(rustler::Error::BadArg)?;
    let config = config(opts)?;
    let router = Router::open(
        Path::new(&path),
        columns(cols)?,
        folding(lc_ctype)?,
        config.clone(),
        sync,
    );
    Ok(opened(env, &config, router))
}

/// Makes every shape change so far durable (an fsync of the catalog).
#[rustler::nif(schedule = "DirtyIo")]
fn router_flush(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    ok_or_error(env, r.router.flush())
}

/// Flushes and releases the directory; later calls fail with `{:error, {:closed, _}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn router_close(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    ok_or_error(env, r.router.close())
}

/// Waits until the shape index's background compaction is idle.
#[rustler::nif(schedule = "DirtyIo")]
fn router_wait_idle(env: Env<'_>, r: ResourceArc<RouterResource>) -> Term<'_> {
    ok_or_error(env, r.router.wait_idle())
}

/// Why a change term was refused (raised as `ArgumentError` by the caller).
type BadText = &'static str;

/// What `bad` says about a change term.
fn bad_text(bad: Bad<'_>) -> BadText {
    match bad {
        Bad::Form => {
            "a change is {:insert, record}, {:delete, old_record}, \
             {:update, old_record, record} or :truncate"
        }
        Bad::NotAMap(_) => "a record is a map of column name => text or nil",
        Bad::Value(..) => "record values are Postgres text (binaries) or nil",
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
    route_one(env, reader, change)
}

/// `router_route` for routers with many scanned shapes: a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_route_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    change: Term<'a>,
) -> Term<'a> {
    let reader = r.router.reader();
    route_one(env, reader, change)
}

fn route_one<'a>(env: Env<'a>, mut reader: Reader<'_>, change: Term<'a>) -> Term<'a> {
    let keys = Keys::new(env, reader.columns(), reader.referenced_columns());
    let mut out = Vec::new();
    match route_change(&mut reader, &keys, &mut Rows::default(), change, &mut out) {
        Ok(()) => out.encode(env),
        Err(Refused::Bad(why)) => (atoms::bad_change(), bad_text(why)).encode(env),
        Err(Refused::Failed(e)) => core_error(env, &e),
    }
}

/// Routes change term `change` (the router's form) into `out`, its records read with `keys`
/// into `rows` (see `change`).
fn route_change<'a>(
    reader: &mut Reader<'_>,
    keys: &Keys<'a>,
    rows: &mut Rows<'a>,
    change: Term<'a>,
    out: &mut Vec<u32>,
) -> Result<(), Refused<'a>> {
    let (kind, _, recs) = split(change, false).map_err(Refused::Bad)?;
    keys.read_change(kind, &recs, rows).map_err(Refused::Bad)?;
    rows.route(reader, keys, out)
}

/// The time slice of one `*_route_many` call: routes go on until it is spent (`None`: a
/// dirty call, no slice), then the call reports its share of the scheduler's time slice.
pub(crate) struct Slice {
    started: Instant,
    length: Option<Duration>,
}

impl Slice {
    /// A slice of `length` starting now.
    pub(crate) fn start(length: Option<Duration>) -> Slice {
        Slice {
            started: Instant::now(),
            length,
        }
    }

    /// Whether the slice is spent by `now` (a clock reading, `None` when none was taken).
    pub(crate) fn spent(&self, now: Option<Instant>) -> bool {
        match (self.length, now) {
            (Some(length), Some(now)) => now.duration_since(self.started) >= length,
            _ => false,
        }
    }

    /// Whether routes run unbounded (a dirty call).
    pub(crate) fn unbounded(&self) -> bool {
        self.length.is_none()
    }

    /// How many changes to route before the clock is read again, `done` of them routed so
    /// far in this slice: a first chunk of `FIRST_CHUNK`, then as many as the slice's rest
    /// fits at the rate so far (at most `max`; all of them, unbounded). So a slice ends about
    /// when it should whatever a change costs (a miss ~0.1 µs, a scan of 1,000 shapes ~40),
    /// and a batch is as large as that allows.
    pub(crate) fn next_chunk(&self, done: usize, max: usize) -> usize {
        let Some(length) = self.length else {
            return max;
        };
        if done == 0 {
            return FIRST_CHUNK.min(max);
        }
        let spent = self.started.elapsed();
        let per_change = spent.as_nanos() / done as u128;
        let left = length.saturating_sub(spent).as_nanos();
        (left / per_change.max(1)).clamp(1, max as u128) as usize
    }

    /// Tells the scheduler how much of its time slice the call used (normal schedulers).
    pub(crate) fn report(&self, env: Env<'_>) {
        if self.length.is_some() {
            let percent = (self.started.elapsed().as_micros() / 10).clamp(1, 100) as i32;
            rustler::schedule::consume_timeslice(env, percent);
        }
    }
}

/// How long one `router_route_many` call may run before handing the rest back.
pub(crate) const SLICE: Duration = Duration::from_micros(500);

/// Changes routed before the first look at the clock (as many as the reader's sampled clock
/// let pass before batches).
const FIRST_CHUNK: usize = 8;

/// Most changes routed in one batch (`Reader::route_batch_cells`) between looks at the clock.
pub(crate) const CHUNK: usize = 128;

/// Scanned shapes beyond which routes run on dirty schedulers: every change evaluates each
/// (~40 ns for a small clause, more for long IN lists or LIKE on long text).
pub(crate) const DIRTY_SCANS: usize = 1_000;

/// Routes changes from the list until it ends or the time slice is spent:
/// `{reversed_results, rest}` (the caller continues with `rest` unless it is `[]`); with
/// `keep`, a result is `{ids, kept}` (`Reader::route_keep`).
#[rustler::nif]
fn router_route_many<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    changes: Term<'a>,
    keep: bool,
) -> Term<'a> {
    let _timer = CallTimer::start(9);
    let reader = r.router.reader();
    if reader.scanned_count() > DIRTY_SCANS {
        return atoms::dirty().encode(env);
    }
    route_many(env, reader, changes, Some(SLICE), keep)
}

/// `router_route_many` for routers with many scanned shapes: the whole list, on a dirty CPU
/// scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_route_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    changes: Term<'a>,
    keep: bool,
) -> Term<'a> {
    let reader = r.router.reader();
    route_many(env, reader, changes, None, keep)
}

/// Routes changes from the list until it ends or `slice` is spent:
/// `{reversed_results, rest}`; `{:bad_change, position, change, message}` for a malformed
/// change (its position in this call's list; the caller raises). The list is taken a chunk
/// at a time (`Slice::next_chunk`), each routed in one batch (`change::route_rows`). With
/// `keep`, each result is `{ids, kept}`.
fn route_many<'a>(
    env: Env<'a>,
    mut reader: Reader<'_>,
    changes: Term<'a>,
    slice: Option<Duration>,
    keep: bool,
) -> Term<'a> {
    let slice = Slice::start(slice);
    let keys = Keys::new(env, reader.columns(), reader.referenced_columns());
    let mut rows: Vec<Rows<'a>> = Vec::new();
    let mut heads: Vec<Term<'a>> = Vec::new();
    let mut routes = if keep {
        Routes::keeping()
    } else {
        Routes::default()
    };
    let mut rest = changes;
    // at least one change per call, so the caller always makes progress
    loop {
        let n = slice.next_chunk(routes.len(), CHUNK);
        heads.clear();
        while heads.len() < n {
            let Ok((head, tail)) = rest.list_get_cell() else {
                break;
            };
            heads.push(head);
            rest = tail;
        }
        if heads.is_empty() {
            break;
        }
        if rows.len() < heads.len() {
            rows.resize_with(heads.len(), Rows::default);
        }
        for (i, (&head, row)) in heads.iter().zip(&mut rows).enumerate() {
            let taken =
                split(head, false).and_then(|(kind, _, recs)| keys.read_change(kind, &recs, row));
            if let Err(why) = taken {
                let position = routes.len() + i;
                return (atoms::bad_change(), position, head, bad_text(why)).encode(env);
            }
        }
        match route_rows(&mut reader, &keys, &mut rows[..heads.len()], &mut routes) {
            Ok(()) => {}
            Err((i, Refused::Bad(why))) => {
                let position = routes.len();
                return (atoms::bad_change(), position, heads[i], bad_text(why)).encode(env);
            }
            Err((_, Refused::Failed(e))) => return core_error(env, &e),
        }
        if !slice.unbounded() && slice.spent(Some(Instant::now())) {
            break;
        }
    }
    drop(reader);
    slice.report(env);
    let mut results = Term::list_new_empty(env);
    for (i, ids) in routes.iter().enumerate() {
        let result = match keep {
            false => ids.encode(env),
            true => (ids, routes.kept(i)).encode(env),
        };
        results = results.list_prepend(result);
    }
    (results, rest).encode(env)
}

/// The router's metrics and shape counts as a map.
#[rustler::nif]
fn router_metrics(env: Env<'_>, r: ResourceArc<RouterResource>) -> NifResult<Term<'_>> {
    metrics(env, &r.router)
}

/// A router's metrics and shape counts as a map (see `LsmIndex.ShapeRouter.metrics/1`).
pub(crate) fn metrics<'a>(env: Env<'a>, router: &Router) -> NifResult<Term<'a>> {
    let m = router.metrics();
    let counts = router.shape_counts();
    let by = router.index_counts();
    let ints: [(&str, u64); 25] = [
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
        ("evaluation_errors", m.evaluation_errors),
        (
            "scanned_no_equality",
            counts.scanned_because[ScanReason::NoEquality.index()] as u64,
        ),
        (
            "scanned_or_branch_without_equality",
            counts.scanned_because[ScanReason::BranchWithoutEquality.index()] as u64,
        ),
        (
            "scanned_constant",
            counts.scanned_because[ScanReason::Constant.index()] as u64,
        ),
        (
            "scanned_negated_subquery",
            counts.scanned_because[ScanReason::NegatedSubquery.index()] as u64,
        ),
        (
            "scanned_stale_snapshot",
            counts.scanned_because[ScanReason::StaleSnapshot.index()] as u64,
        ),
        (
            "scanned_pattern_without_literal",
            counts.scanned_because[ScanReason::PatternWithoutLiteral.index()] as u64,
        ),
        ("shapes_by_equality", by.equality as u64),
        ("shapes_by_range", by.range as u64),
        ("shapes_by_literal", by.literal as u64),
        ("shapes_by_view", by.view as u64),
        ("groups", by.groups as u64),
        ("templates", by.templates as u64),
        ("evaluations_saved", m.evaluations_saved),
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
