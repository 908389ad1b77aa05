//! `router_route_many_packed*` NIFs (`LsmIndex.ShapeRouter.route_many_packed/2`): a
//! transaction's changes in one binary, read in place and routed a batch at a time.
//!
//! ```text
//! packed binary ─▶ packed_changes::Changes (checked; a chunk of changes at a time, each
//!                  cell a slice of the binary) ─▶ Reader::route_batch ─▶ [[shape id]]
//! ```
//!
//! The binary is `ShapeRouter.pack_changes/2`'s (layout: `lsm_index_core::packed_changes`):
//! every row all of the table's columns in the router's order (or its first ones, see
//! below), so no record is looked up and no term is made per change but its answer. Scheduling as `router_route_many`: on a
//! normal scheduler chunks (8 changes, then as many as the rest of the slice fits at the
//! rate so far, at most 128) are routed until ~0.5 ms is spent (the clock read once per chunk)
//! and the reply says where to go on (`{results, {index, offset}}`, or `:done` in place of
//! the position; the results of this call, in order, built from the last: the caller of a
//! transaction routed in one call has nothing to reverse); `:dirty` sends a router scanning
//! many shapes to the `_dirty` twin (the whole binary). A malformed binary answers `{:bad_packed, change_index, byte_offset,
//! reason}` and a binary packed for another width `{:bad_width, packed, narrowest, table}`
//! (the caller raises `ArgumentError`): a binary is as wide as the table, or as narrow as it
//! was before columns were added to it (`Reader::row_widths`: rows packed before an `ALTER
//! TABLE … ADD COLUMN` read the added columns as NULL); `{:error, _}` a failure of the core
//! (a closed router).

use lsm_index_core::packed_changes::{Changes, Chunk};
use lsm_index_core::router::{Reader, Routes};
use rustler::{Binary, Encoder, Env, ResourceArc, Term};
use std::time::{Duration, Instant};

use crate::error::core_error;
use crate::router::{RouterResource, Slice, CHUNK, DIRTY_SCANS, SLICE};
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        bad_packed,
        bad_width,
        dirty,
        done,
    }
}

/// Routes the changes of `packed` from `position` (`nil`: the first) until they end or the
/// time slice is spent.
#[rustler::nif]
fn router_route_many_packed<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    packed: Binary<'a>,
    position: Option<(usize, usize)>,
) -> Term<'a> {
    let _timer = CallTimer::start(18);
    let reader = r.router.reader();
    if reader.scanned_count() > DIRTY_SCANS {
        return atoms::dirty().encode(env);
    }
    route_packed(env, reader, packed, position, Some(SLICE))
}

/// `router_route_many_packed` for routers with many scanned shapes: the rest of the binary,
/// on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn router_route_many_packed_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<RouterResource>,
    packed: Binary<'a>,
    position: Option<(usize, usize)>,
) -> Term<'a> {
    let reader = r.router.reader();
    route_packed(env, reader, packed, position, None)
}

fn route_packed<'a>(
    env: Env<'a>,
    mut reader: Reader<'_>,
    packed: Binary<'a>,
    position: Option<(usize, usize)>,
    slice: Option<Duration>,
) -> Term<'a> {
    let slice = Slice::start(slice);
    let bytes = packed.as_slice();
    let opened = match position {
        None => Changes::new(bytes),
        Some(position) => Changes::resume(bytes, position),
    };
    let mut changes = match opened {
        Ok(changes) => changes,
        Err(e) => return (atoms::bad_packed(), 0, e.offset, e.reason).encode(env),
    };
    // rows as wide as the table, or packed before columns were added (those read NULL)
    let widths = reader.row_widths();
    if !widths.contains(&changes.width()) {
        let (narrowest, width) = (*widths.start(), *widths.end());
        return (atoms::bad_width(), changes.width(), narrowest, width).encode(env);
    }
    let mut chunk = Chunk::default();
    // every answer of the call, listed at the end from the last
    let mut routes = Routes::default();
    loop {
        if let Err(e) = changes.read(slice.next_chunk(routes.len(), CHUNK), &mut chunk) {
            let index = changes.position().0;
            return (atoms::bad_packed(), index, e.offset, e.reason).encode(env);
        }
        if !chunk.is_empty() {
            if let Err(e) = reader.route_batch(&chunk.changes(), &mut routes) {
                return core_error(env, &e);
            }
        }
        if changes.remaining() == 0 || slice.spent(Some(Instant::now())) {
            break;
        }
    }
    drop(reader);
    let empty = Term::list_new_empty(env);
    let mut results = empty;
    for i in (0..routes.len()).rev() {
        let ids = routes.get(i);
        results = results.list_prepend(if ids.is_empty() {
            empty
        } else {
            ids.encode(env)
        });
    }
    slice.report(env);
    if changes.remaining() == 0 {
        (results, atoms::done()).encode(env)
    } else {
        (results, changes.position()).encode(env)
    }
}
