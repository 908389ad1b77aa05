//! `index_*` NIFs: an `lsm_index_core::Index` in a resource.
//!
//! Keys arrive already encoded by `LsmIndex` (Elixir): an integer (i64), a binary, or
//! `{:__lsm_term__, binary}` for any other term (its deterministic external form). Each kind
//! gets its own tag byte, so no two distinct Elixir keys share bytes.
//!
//! Scheduling: lookups, point writes, small batches and `drop_handle` run on normal schedulers
//! and never wait: segment building runs on the core's background pool. A write that finds a
//! lane's overlay full (compaction behind) writes nothing and answers `:wait` (the caller
//! retries through the `*_dirty` variant, which waits on a dirty I/O scheduler) or
//! `{:error, :overloaded}` (`overload: :error`), as `error::write_reply` decides. Calls that
//! wait for the pool (`compact`, `close`) or do I/O run on dirty schedulers.

use lsm_index_core::key::{self, KeyBytes};
use lsm_index_core::{Batch, Index, JobEvent};
use rustler::{Atom, Binary, Encoder, Env, NifResult, Resource, ResourceArc, Term};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::error::{core_error, ok_or_error, reply, write_reply, Call};
use crate::index_events::{deliver, Subscribers};
use crate::options::config;
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        ok,
        __lsm_term__,
    }
}

/// One index, shared by every process holding the reference.
pub struct IndexResource {
    pub(crate) index: Arc<Index>,
    pub(crate) subscribers: Subscribers,
}

/// Index resources alive now: lets tests prove that dropped indexes are freed.
static LIVE: AtomicU64 = AtomicU64::new(0);

impl IndexResource {
    /// Wraps `index`, delivering its job events to subscribers (sent from the worker thread;
    /// see `deliver`).
    fn new(index: Arc<Index>) -> Self {
        LIVE.fetch_add(1, Ordering::Relaxed);
        let subscribers = Subscribers::default();
        let to = subscribers.clone();
        index.set_listener(Some(Arc::new(move |event: &JobEvent<'_>| {
            deliver(&to, event)
        })));
        IndexResource { index, subscribers }
    }
}

impl Drop for IndexResource {
    fn drop(&mut self) {
        // the listener holds only the subscriber list; jobs still running let go on their own
        self.index.set_listener(None);
        LIVE.fetch_sub(1, Ordering::Relaxed);
    }
}

#[rustler::resource_impl]
impl Resource for IndexResource {}

#[rustler::nif]
fn index_live_count() -> u64 {
    LIVE.load(Ordering::Relaxed)
}

/// The key bytes of an encoded key term (see `lsm_index_core::key`); `Err(badarg)` for
/// anything else.
fn key_bytes(term: Term<'_>) -> NifResult<KeyBytes> {
    if let Ok(i) = term.decode::<i64>() {
        Ok(key::int_key(i))
    } else if let Ok(b) = term.decode::<Binary<'_>>() {
        Ok(key::binary_key(b.as_slice()))
    } else {
        match term.decode::<(Atom, Binary<'_>)>() {
            Ok((atom, b)) if atom == atoms::__lsm_term__() => Ok(key::term_key(b.as_slice())),
            _ => Err(rustler::Error::BadArg),
        }
    }
}

/// Appends `term`'s key bytes to `out` (as [`key_bytes`] gives them).
fn push_key(term: Term<'_>, out: &mut Vec<u8>) -> NifResult<()> {
    if let Ok(i) = term.decode::<i64>() {
        key::push_int_key(i, out);
    } else if let Ok(b) = term.decode::<Binary<'_>>() {
        key::push_binary_key(b.as_slice(), out);
    } else {
        match term.decode::<(Atom, Binary<'_>)>() {
            Ok((atom, b)) if atom == atoms::__lsm_term__() => key::push_term_key(b.as_slice(), out),
            _ => return Err(rustler::Error::BadArg),
        }
    }
    Ok(())
}

/// Creates an in-memory index from the options map `LsmIndex` validated (see `options`).
#[rustler::nif]
fn index_new<'a>(env: Env<'a>, opts: Term<'a>) -> NifResult<Term<'a>> {
    let index = Index::new(config(opts)?).map(|i| ResourceArc::new(IndexResource::new(i)));
    Ok(reply(env, index))
}

/// Opens (or creates) a persistent index directory: I/O, so a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn index_open<'a>(env: Env<'a>, path: String, opts: Term<'a>) -> NifResult<Term<'a>> {
    let index = Index::open(std::path::Path::new(&path), config(opts)?)
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

/// The reply to a write of `r` (see `error::write_reply`).
fn written<'a>(
    env: Env<'a>,
    r: &IndexResource,
    call: Call,
    res: lsm_index_core::Result<()>,
) -> Term<'a> {
    write_reply(env, r.index.config().on_overload, call, res)
}

/// Tells the VM how much of a time slice (1 ms) a normal-scheduler call used, so that a
/// process making many batch calls yields as often as its time warrants.
pub(crate) fn consume(env: Env<'_>, started: Instant) {
    let percent = (started.elapsed().as_micros() / 10).clamp(1, 100) as i32;
    rustler::schedule::consume_timeslice(env, percent);
}

/// A point write on a normal scheduler: it never waits (sub-microsecond).
fn write_one<'a>(
    env: Env<'a>,
    r: &IndexResource,
    key: Term<'a>,
    h: u32,
    add: bool,
) -> NifResult<Term<'a>> {
    let k = key_bytes(key)?;
    let res = if add {
        r.index.try_add(&k, h)
    } else {
        r.index.try_remove(&k, h)
    };
    Ok(written(env, r, Call::NonBlocking, res))
}

#[rustler::nif]
fn index_add<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
    h: u32,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(0);
    write_one(env, &r, key, h, true)
}

#[rustler::nif]
fn index_remove<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
    h: u32,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(1);
    write_one(env, &r, key, h, false)
}

/// A batch write: non-blocking (all or nothing, see `write_reply`) on a normal scheduler,
/// or `blocking` (waits for room when the index waits when overloaded) on a dirty one.
fn write_many<'a>(
    env: Env<'a>,
    r: &IndexResource,
    pairs: Term<'a>,
    add: bool,
    blocking: bool,
) -> NifResult<Term<'a>> {
    let started = Instant::now();
    let list: Vec<(Term<'a>, u32)> = pairs.decode()?;
    let encoded = list
        .into_iter()
        .map(|(key, h)| Ok((key_bytes(key)?, h)))
        .collect::<NifResult<Vec<_>>>()?;
    let res = match (add, blocking) {
        (true, true) => r.index.add_many(&encoded),
        (false, true) => r.index.remove_many(&encoded),
        (true, false) => r.index.try_add_many(&encoded),
        (false, false) => r.index.try_remove_many(&encoded),
    };
    if !blocking {
        consume(env, started);
    }
    let call = if blocking {
        Call::Blocking
    } else {
        Call::NonBlocking
    };
    Ok(written(env, r, call, res))
}

#[rustler::nif]
fn index_add_many<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(2);
    write_many(env, &r, pairs, true, false)
}

#[rustler::nif]
fn index_remove_many<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(3);
    write_many(env, &r, pairs, false, false)
}

/// Large batches, and writes that must wait for room: a dirty I/O scheduler (waiting is
/// what it is for).
#[rustler::nif(schedule = "DirtyIo")]
fn index_add_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, true, true)
}

#[rustler::nif(schedule = "DirtyIo")]
fn index_remove_many_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    pairs: Term<'a>,
) -> NifResult<Term<'a>> {
    write_many(env, &r, pairs, false, true)
}

fn lookup_many<'a>(env: Env<'a>, r: &IndexResource, keys: Term<'a>) -> NifResult<Term<'a>> {
    let started = Instant::now();
    // the keys' bytes end to end in one buffer: no allocation per key
    let mut bytes = Vec::new();
    let mut ends = Vec::new();
    for term in keys.into_list_iterator()? {
        push_key(term, &mut bytes)?;
        ends.push(bytes.len());
    }
    let mut start = 0;
    let slices: Vec<&[u8]> = ends
        .iter()
        .map(|&end| {
            let key = &bytes[start..end];
            start = end;
            key
        })
        .collect();
    let lists = r
        .index
        .lookup_many(&slices)
        .map(|batch| handle_lists(env, &batch));
    consume(env, started);
    Ok(reply(env, lists))
}

/// Each key's handles as a list, in key order: built back to front, one cell per handle and
/// per key. Encoding each key's slice instead allocates a vector of terms per key (~10 ns a
/// key of a 256-key batch).
pub(crate) fn handle_lists<'a>(env: Env<'a>, batch: &Batch) -> Term<'a> {
    let empty = Term::list_new_empty(env);
    let mut lists = empty;
    for i in (0..batch.len()).rev() {
        let mut list = empty;
        for &h in batch.get(i).iter().rev() {
            list = list.list_prepend(h);
        }
        lists = lists.list_prepend(list);
    }
    lists
}

/// The sorted handle list itself (no `{:ok, _}` wrapper: this is the hottest call), or
/// `{:error, {kind, message}}`.
#[rustler::nif]
fn index_lookup<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    key: Term<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(4);
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
    let _timer = CallTimer::start(5);
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

/// O(1), no I/O: `:wait` when it would have to wait for the log (then `index_drop_handle_dirty`).
#[rustler::nif]
fn index_drop_handle(env: Env<'_>, r: ResourceArc<IndexResource>, h: u32) -> Term<'_> {
    let _timer = CallTimer::start(6);
    written(env, &r, Call::NonBlocking, r.index.try_drop_handle(h))
}

#[rustler::nif(schedule = "DirtyIo")]
fn index_drop_handle_dirty(env: Env<'_>, r: ResourceArc<IndexResource>, h: u32) -> Term<'_> {
    written(env, &r, Call::Blocking, r.index.drop_handle(h))
}

/// Waits for the pool to merge every lane: a dirty I/O scheduler.
#[rustler::nif(schedule = "DirtyIo")]
fn index_compact(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.compact())
}

/// Waits until no background job of the index is queued or running.
#[rustler::nif(schedule = "DirtyIo")]
fn index_wait_idle(env: Env<'_>, r: ResourceArc<IndexResource>) -> Term<'_> {
    ok_or_error(env, r.index.wait_idle())
}
