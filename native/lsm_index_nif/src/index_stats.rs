//! `index_*` NIFs that report on an index: its size, its per-handle key counts and its
//! stats (counters, bytes, compaction), as terms.

use rustler::{Atom, Encoder, Env, NifResult, ResourceArc, Term};

use crate::error::{core_error, reply};
use crate::index::IndexResource;
use lsm_index_core::Index;

mod atoms {
    rustler::atoms! {
        ok,
    }
}

/// `len()` may recount every key after a drop: dirty.
#[rustler::nif(schedule = "DirtyCpu")]
fn index_size(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    reply(env, r.index.len())
}

/// How many keys' sets hold `h` (an index made with `count_handles`): O(1).
#[rustler::nif]
fn index_handle_count(env: Env<'_>, r: ResourceArc<IndexResource>, h: u32) -> Term<'_> {
    reply(env, r.index.handle_count(h))
}

/// How many distinct handles the keys' sets hold (`count_handles`): O(1).
#[rustler::nif]
fn index_distinct_handles(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    reply(env, r.index.distinct_handles())
}

/// Every handle some key's set holds, ascending (`count_handles`): one per handle, dirty.
#[rustler::nif(schedule = "DirtyCpu")]
fn index_handles(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    reply(env, r.index.handles())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_stats(env: Env<'_>, r: ResourceArc<IndexResource>) -> NifResult<Term<'_>> {
    stats(env, &r.index)
}

/// `{:ok, stats}` of `index` (the map `LsmIndex.stats/1` returns), or `{:error, _}`.
pub(crate) fn stats<'a>(env: Env<'a>, index: &Index) -> NifResult<Term<'a>> {
    let s = match index.stats() {
        Ok(s) => s,
        Err(e) => return Ok(core_error(env, &e)),
    };
    let per_level: Vec<(u32, u64)> = s.segments_per_level.into_iter().collect();
    let pairs: Vec<(&str, Term<'_>)> = vec![
        ("keys", s.keys.encode(env)),
        ("lanes", s.lanes.encode(env)),
        ("segments", s.segments.encode(env)),
        ("segments_per_level", per_level.encode(env)),
        ("max_lane_segments", s.max_lane_segments.encode(env)),
        ("segment_bytes", s.segment_bytes.encode(env)),
        ("mph_heap_bytes", s.mph_heap_bytes.encode(env)),
        ("overlay_keys", s.overlay_keys.encode(env)),
        ("overlay_bytes", s.overlay_bytes.encode(env)),
        ("frozen_overlays", s.frozen_overlays.encode(env)),
        ("pending_drops", s.pending_drops.encode(env)),
        ("ops", s.ops.encode(env)),
        ("bytes_ingested", s.bytes_ingested.encode(env)),
        ("keys_flushed", s.keys_flushed.encode(env)),
        ("keys_written", s.keys_written.encode(env)),
        ("bytes_written", s.bytes_written.encode(env)),
        ("flushes", s.flushes.encode(env)),
        ("merges", s.merges.encode(env)),
        ("write_amplification", s.write_amplification.encode(env)),
        ("pending_jobs", s.pending_jobs.encode(env)),
        ("jobs_done", s.jobs_done.encode(env)),
        ("last_job_us", s.last_job_us.encode(env)),
        ("compaction_busy_us", s.compaction_busy_us.encode(env)),
        ("compaction_threads", s.compaction_threads.encode(env)),
        ("counted_handles", s.counted_handles.encode(env)),
        ("handle_count_bytes", s.handle_count_bytes.encode(env)),
        ("stalls", s.stalls.encode(env)),
        ("lookup_hits", s.lookup_hits.encode(env)),
        ("lookup_misses", s.lookup_misses.encode(env)),
        ("prefilter_rejects", s.prefilter_rejects.encode(env)),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        map = map.map_put(Atom::from_str(env, k)?.encode(env), v)?;
    }
    Ok((atoms::ok(), map).encode(env))
}
