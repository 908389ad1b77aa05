//! `index_*` NIFs: an `lsm_index_core::Index` in a resource.
//!
//! Keys arrive already encoded by `LsmIndex` (Elixir): an integer (i64), a binary, or
//! `{:__lsm_term__, binary}` for any other term (its deterministic external form). Each kind
//! gets its own tag byte, so no two distinct Elixir keys share bytes.
//!
//! Scheduling: lookups, point writes, small batches and `drop_handle` run on normal schedulers
//! and never compact: a write that fills a lane's overlay answers `:maintain`, and the caller
//! then runs `index_maintain` (the flush or merge) on a dirty CPU scheduler. `*_dirty`
//! variants take large batches (and their inline compaction) off normal schedulers.

use lsm_index_core::wal::SyncMode;
use lsm_index_core::{Config, Error, Index, MphKind};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use smallvec::SmallVec;
use std::sync::atomic::{AtomicU64, Ordering};

mod atoms {
    rustler::atoms! {
        ok,
        maintain,
        error,
        __lsm_term__,
        invalid_config,
        corrupt,
        checksum_mismatch,
        too_large,
        mph_build,
        io,
        locked,
        poisoned,
        closed,
        internal,
    }
}

/// One index, shared by every process holding the reference.
pub struct IndexResource {
    index: Index,
}

/// Index resources alive now: lets tests prove that dropped indexes are freed.
static LIVE: AtomicU64 = AtomicU64::new(0);

impl IndexResource {
    fn new(index: Index) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        IndexResource { index }
    }
}

impl Drop for IndexResource {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[rustler::resource_impl]
impl Resource for IndexResource {}

#[rustler::nif]
fn index_live_count() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

const TAG_INT: u8 = 1;
const TAG_BINARY: u8 = 2;
const TAG_TERM: u8 = 3;

/// Key bytes: inline up to 32 bytes, so integer and short binary keys cost no allocation.
type KeyBytes = SmallVec<[u8; 32]>;

/// The key bytes of an encoded key term (tag byte + body); `Err(badarg)` for anything else.
fn key_bytes(term: Term<'_>) -> NifResult<KeyBytes> {
    let tagged = |tag: u8, body: &[u8]| {
        let mut k = KeyBytes::with_capacity(body.len() + 1);
        k.push(tag);
        k.extend_from_slice(body);
        k
    };
    if let Ok(i) = term.decode::<i64>() {
        Ok(tagged(TAG_INT, &i.to_be_bytes()))
    } else if let Ok(b) = term.decode::<Binary<'_>>() {
        Ok(tagged(TAG_BINARY, b.as_slice()))
    } else {
        match term.decode::<(Atom, Binary<'_>)>() {
            Ok((atom, b)) if atom == atoms::__lsm_term__() => Ok(tagged(TAG_TERM, b.as_slice())),
            _ => Err(rustler::Error::BadArg),
        }
    }
}

/// `{:error, {kind, message}}` for an operational failure of the core.
fn core_error<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    let kind = match e {
        // the contract of `open`: a bare `{:error, :locked}`
        Error::Locked { .. } => return (atoms::error(), atoms::locked()).encode(env),
        Error::InvalidConfig { .. } => atoms::invalid_config(),
        Error::Corrupt { .. }
        | Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::SeedMismatch { .. } => atoms::corrupt(),
        Error::ChecksumMismatch { .. } => atoms::checksum_mismatch(),
        Error::TooLarge { .. } => atoms::too_large(),
        Error::MphBuild { .. } => atoms::mph_build(),
        Error::Io { .. } => atoms::io(),
        Error::Poisoned { .. } => atoms::poisoned(),
        Error::Closed => atoms::closed(),
        _ => atoms::internal(),
    };
    (atoms::error(), (kind, e.to_string())).encode(env)
}

/// `:ok` or `{:error, {kind, message}}`.
fn ok_or_error<'a>(env: Env<'a>, r: lsm_index_core::Result<()>) -> Term<'a> {
    match r {
        Ok(()) => atoms::ok().encode(env),
        Err(e) => core_error(env, &e),
    }
}

/// `{:ok, value}` or `{:error, {kind, message}}`.
fn reply<'a, T: Encoder>(env: Env<'a>, r: lsm_index_core::Result<T>) -> Term<'a> {
    match r {
        Ok(v) => (atoms::ok(), v).encode(env),
        Err(e) => core_error(env, &e),
    }
}

#[rustler::nif]
fn index_new<'a>(
    env: Env<'a>,
    lanes: u32,
    overlay_limit: usize,
    max_segments: usize,
    mph: String,
    prefilter: bool,
) -> NifResult<Term<'a>> {
    let config = config(lanes, overlay_limit, max_segments, &mph, prefilter)?;
    let index = Index::new(config).map(|i| ResourceArc::new(IndexResource::new(i)));
    Ok(reply(env, index))
}

/// The options `LsmIndex` validated, as a core `Config`.
fn config(
    lanes: u32,
    overlay_limit: usize,
    max_segments: usize,
    mph: &str,
    prefilter: bool,
) -> NifResult<Config> {
    let mph = MphKind::from_name(mph).ok_or(rustler::Error::BadArg)?;
    Ok(Config {
        lanes,
        overlay_limit,
        max_segments,
        mph,
        prefilter,
        ..Config::default()
    })
}

/// Opens (or creates) a persistent index directory: I/O, so a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
#[allow(clippy::too_many_arguments)]
fn index_open<'a>(
    env: Env<'a>,
    path: String,
    lanes: u32,
    overlay_limit: usize,
    max_segments: usize,
    mph: String,
    prefilter: bool,
    verify_on_open: bool,
    sync: String,
) -> NifResult<Term<'a>> {
    let sync = match sync.as_str() {
        "flush" => SyncMode::Flush,
        "always" => SyncMode::Always,
        "none" => SyncMode::None,
        _ => return Err(rustler::Error::BadArg),
    };
    let config = Config {
        verify_on_open,
        sync,
        ..config(lanes, overlay_limit, max_segments, &mph, prefilter)?
    };
    let index = Index::open(std::path::Path::new(&path), config)
        .map(|i| ResourceArc::new(IndexResource::new(i)));
    Ok(reply(env, index))
}

/// Makes every write so far durable (an fsync of the write-ahead log).
#[rustler::nif(schedule = "DirtyIo")]
fn index_flush(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.flush())
}

/// A consistent online snapshot into the new directory `dest`.
#[rustler::nif(schedule = "DirtyIo")]
fn index_backup(env: Env<'_>, r: ResourceArc<IndexResource>, dest: String) -> Term<'_> {
    ok_or_error(env, r.index.backup(std::path::Path::new(&dest)))
}

/// Checkpoints and releases the directory; later calls fail with `{:error, {:closed, _}}`.
#[rustler::nif(schedule = "DirtyIo")]
fn index_close(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.close())
}

/// How a write ends: `:ok`, `:maintain` (done, and a flush is due: the caller runs
/// `index_maintain` on a dirty scheduler), or `{:error, _}`.
fn write_reply(env: Env<'_>, res: lsm_index_core::Result<bool>) -> Term<'_> {
    match res {
        Ok(false) => atoms::ok().encode(env),
        Ok(true) => atoms::maintain().encode(env),
        Err(e) => core_error(env, &e),
    }
}

/// A point write on a normal scheduler: it never compacts (sub-microsecond).
fn write_one<'a>(
    env: Env<'a>,
    r: &IndexResource,
    key: Term<'a>,
    h: u32,
    add: bool,
) -> NifResult<Term<'a>> {
    let k = key_bytes(key)?;
    let res = if add {
        r.index.add_deferred(&k, h)
    } else {
        r.index.remove_deferred(&k, h)
    };
    Ok(write_reply(env, res))
}

#[rustler::nif]
fn index_add<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
    h: u32,
) -> NifResult<Term<'a>> {
    write_one(env, &r, key, h, true)
}

#[rustler::nif]
fn index_remove<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
    h: u32,
) -> NifResult<Term<'a>> {
    write_one(env, &r, key, h, false)
}

/// A batch write; `inline` (dirty schedulers only) compacts full lanes as it goes, else
/// compaction is left to `index_maintain`.
fn write_many<'a>(
    env: Env<'a>,
    r: &IndexResource,
    pairs: Term<'a>,
    add: bool,
    inline: bool,
) -> NifResult<Term<'a>> {
    let list: Vec<(Term<'a>, u32)> = pairs.decode()?;
    let encoded = list
        .into_iter()
        .map(|(key, h)| Ok((key_bytes(key)?, h)))
        .collect::<NifResult<Vec<_>>>()?;
    let res = match (add, inline) {
        (true, true) => r.index.add_many(&encoded).map(|()| false),
        (false, true) => r.index.remove_many(&encoded).map(|()| false),
        (true, false) => r.index.add_many_deferred(&encoded),
        (false, false) => r.index.remove_many_deferred(&encoded),
    };
    Ok(write_reply(env, res))
}

#[rustler::nif]
fn index_add_many<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, true, false)
}

#[rustler::nif]
fn index_remove_many<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, false, false)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_add_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, true, true)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_remove_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, false, true)
}

/// Runs the flushes and merges that deferred writes left due.
#[rustler::nif(schedule = "DirtyCpu")]
fn index_maintain(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.maintain())
}

fn lookup_many<'a>(env: Env<'a>, r: &IndexResource, keys: Term<'a>) -> NifResult<Term<'a>> {
    let list: Vec<Term<'a>> = keys.decode()?;
    let encoded = list
        .into_iter()
        .map(key_bytes)
        .collect::<NifResult<Vec<_>>>()?;
    let lists = r.index.lookup_many(&encoded).map(|batch| {
        batch
            .iter()
            .map(|hs| hs.encode(env))
            .collect::<Vec<Term<'a>>>()
    });
    Ok(reply(env, lists))
}

/// The sorted handle list itself (no `{:ok, _}` wrapper: this is the hottest call), or
/// `{:error, {kind, message}}`.
#[rustler::nif]
fn index_lookup<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
) -> NifResult<Term<'a>> {
    let k = key_bytes(key)?;
    // No thread-local buffer: a TLS destructor in a NIF library can outlive the library.
    let mut out = Vec::new();
    Ok(match r.index.lookup_into(&k, &mut out) {
        Ok(()) => out.encode(env),
        Err(e) => core_error(env, &e),
    })
}

#[rustler::nif]
fn index_lookup_many<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    keys: Term<'a>,
) -> NifResult<Term<'a>> {
    lookup_many(env, &r, keys)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_lookup_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    keys: Term<'a>,
) -> NifResult<Term<'a>> {
    lookup_many(env, &r, keys)
}

#[rustler::nif]
fn index_drop_handle(env: Env<'_>, r: ResourceArc<IndexResource>, h: u32) -> Term<'_> {
    ok_or_error(env, r.index.drop_handle(h))
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_compact(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.compact())
}

/// `len()` may recount every key after a drop: dirty.
#[rustler::nif(schedule = "DirtyCpu")]
fn index_size(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    reply(env, r.index.len())
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_stats(env: Env<'_>, r: ResourceArc<IndexResource>) -> NifResult<Term<'_>> {
    let s = match r.index.stats() {
        Ok(s) => s,
        Err(e) => return Ok(core_error(env, &e)),
    };
    let per_level: Vec<(u32, u64)> = s.segments_per_level.into_iter().collect();
    let pairs: Vec<(&str, Term<'_>)> = vec![
        ("keys", s.keys.encode(env)),
        ("lanes", s.lanes.encode(env)),
        ("segments", s.segments.encode(env)),
        ("segments_per_level", per_level.encode(env)),
        ("segment_bytes", s.segment_bytes.encode(env)),
        ("mph_heap_bytes", s.mph_heap_bytes.encode(env)),
        ("overlay_keys", s.overlay_keys.encode(env)),
        ("overlay_bytes", s.overlay_bytes.encode(env)),
        ("pending_drops", s.pending_drops.encode(env)),
        ("ops", s.ops.encode(env)),
        ("bytes_ingested", s.bytes_ingested.encode(env)),
        ("bytes_flushed", s.bytes_flushed.encode(env)),
        ("bytes_merged", s.bytes_merged.encode(env)),
        ("flushes", s.flushes.encode(env)),
        ("merges", s.merges.encode(env)),
        ("write_amplification", s.write_amplification.encode(env)),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        map = map.map_put(Atom::from_str(env, k)?.encode(env), v)?;
    }
    Ok((atoms::ok(), map).encode(env))
}
