//! `index_lookup_many_packed*` NIFs (`LsmIndex.lookup_many_packed/2`): a batch of keys in
//! one binary, read in place.
//!
//! ```text
//! packed binary ─▶ packed::keys (borrowed slices, checked) ─▶ Index::lookup_many ─▶ [[handle]]
//! ```
//!
//! The binary is `LsmIndex.pack_keys/1`'s (layout: `lsm_index_core::packed`): the key bytes
//! the core hashes, already tagged, so no key is converted or copied here. A malformed one
//! raises `{:badarg, {:packed_keys, byte_offset, reason}}` (an `ArgumentError` in Elixir,
//! which `LsmIndex` words for the caller). The answer is the handle lists themselves (no
//! `{:ok, _}`), built cell by cell from the batch without an intermediate vector, or
//! `{:error, {kind, message}}` (a closed index). Scheduling as `index_lookup_many`: a normal
//! scheduler up to `LsmIndex`'s batch bound, the `_dirty` twin (dirty CPU) above it.

use lsm_index_core::packed;
use rustler::{Binary, Env, NifResult, ResourceArc, Term};
use std::time::Instant;

use crate::error::core_error;
use crate::index::{consume, handle_lists, IndexResource};
use crate::timing::CallTimer;

mod atoms {
    rustler::atoms! {
        badarg,
        packed_keys,
    }
}

fn lookup_many_packed<'a>(
    env: Env<'a>,
    r: &IndexResource,
    packed: Binary<'a>,
) -> NifResult<Term<'a>> {
    let started = Instant::now();
    let keys = packed::keys(packed.as_slice()).map_err(|e| {
        rustler::Error::RaiseTerm(Box::new((
            atoms::badarg(),
            (atoms::packed_keys(), e.offset, e.reason),
        )))
    })?;
    let answer = match r.index.lookup_many(&keys) {
        Ok(batch) => handle_lists(env, &batch),
        Err(e) => core_error(env, &e),
    };
    consume(env, started);
    Ok(answer)
}

#[rustler::nif]
fn index_lookup_many_packed<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    packed: Binary<'a>,
) -> NifResult<Term<'a>> {
    let _timer = CallTimer::start(17);
    lookup_many_packed(env, &r, packed)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn index_lookup_many_packed_dirty<'a>(
    env: Env<'a>,
    r: ResourceArc<IndexResource>,
    packed: Binary<'a>,
) -> NifResult<Term<'a>> {
    lookup_many_packed(env, &r, packed)
}
