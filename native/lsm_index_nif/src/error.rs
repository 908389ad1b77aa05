//! Core results as Elixir replies: the one place that maps an `lsm_index_core::Error` to a
//! term, and that decides whether a write answers `:wait`.
//!
//! The contract (see `LsmIndex` and `LsmIndex.ShapeRouter`): a caller mistake raises
//! `ArgumentError` (`rustler::Error::BadArg` from the conversions); an operational failure
//! is `{:error, {kind, message}}`, except the bare `{:error, :locked}` of `open` and the bare
//! `{:error, :overloaded}` of a refused write. `:wait` is internal: only a non-blocking NIF
//! answers it, and the Elixir caller always retries through the blocking (dirty) variant,
//! which never answers it.

use lsm_index_core::{Error, FileKind, Overload};
use rustler::{Encoder, Env, Term};

mod atoms {
    rustler::atoms! {
        ok,
        wait,
        error,
        invalid_config,
        invalid_where,
        corrupt,
        checksum_mismatch,
        too_large,
        mph_build,
        io,
        locked,
        poisoned,
        closed,
        overloaded,
        internal,
        seed,
        unparseable,
    }
}

/// `{:error, {kind, message}}` for an operational failure of the core;
/// `{:error, {:invalid_where, byte_offset, message}}` for a WHERE clause that does not parse.
pub(crate) fn core_error<'a>(env: Env<'a>, e: &Error) -> Term<'a> {
    let kind = match e {
        // the contract of `open`: a bare `{:error, :locked}`
        Error::Locked { .. } => return (atoms::error(), atoms::locked()).encode(env),
        // the contract of a refused write: a bare `{:error, :overloaded}`
        Error::Overloaded { .. } => return (atoms::error(), atoms::overloaded()).encode(env),
        Error::InvalidPredicate { position, reason } => {
            let invalid = (atoms::invalid_where(), *position, reason.as_str());
            return (atoms::error(), invalid).encode(env);
        }
        // a shape's snapshot of subquery `position` is unusable: `{:error, {:seed, pos, msg}}`
        Error::InvalidSeed { position, reason } => {
            let seed = (atoms::seed(), *position, reason.as_str());
            return (atoms::error(), seed).encode(env);
        }
        // a change a view cannot count: `{:error, {:unparseable, table, column}}`
        Error::Unparseable { table, column } => {
            let bad = (atoms::unparseable(), *table, column.as_str());
            return (atoms::error(), bad).encode(env);
        }
        Error::InvalidConfig { .. }
        | Error::InvalidColumns { .. }
        | Error::TableMismatch { .. }
        | Error::ColumnCount { .. }
        | Error::NotPersistent { .. }
        | Error::NotCounting { .. } => atoms::invalid_config(),
        // the router's contract: every damaged shape catalog is `:corrupt`
        Error::Corrupt { .. }
        | Error::BadMagic { .. }
        | Error::UnsupportedVersion { .. }
        | Error::SeedMismatch { .. }
        | Error::ChecksumMismatch {
            file: FileKind::Catalog | FileKind::Views,
            ..
        } => atoms::corrupt(),
        Error::ChecksumMismatch { .. } => atoms::checksum_mismatch(),
        Error::TooLarge { .. } => atoms::too_large(),
        Error::MphBuild { .. } => atoms::mph_build(),
        Error::Io { .. } | Error::ThreadSpawn { .. } => atoms::io(),
        Error::Poisoned { .. } => atoms::poisoned(),
        Error::Closed => atoms::closed(),
        _ => atoms::internal(),
    };
    (atoms::error(), (kind, e.to_string())).encode(env)
}

/// `:ok` or the error term of `core_error`.
pub(crate) fn ok_or_error<'a>(env: Env<'a>, r: lsm_index_core::Result<()>) -> Term<'a> {
    match r {
        Ok(()) => atoms::ok().encode(env),
        Err(e) => core_error(env, &e),
    }
}

/// `{:ok, value}` or the error term of `core_error`.
pub(crate) fn reply<'a, T: Encoder>(env: Env<'a>, r: lsm_index_core::Result<T>) -> Term<'a> {
    match r {
        Ok(v) => (atoms::ok(), v).encode(env),
        Err(e) => core_error(env, &e),
    }
}

/// How a write NIF ran: whether it may answer `:wait`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    /// On a normal scheduler, through a `try_*` core call that never waits: a write that
    /// would have to wait writes nothing and answers `:wait` (the caller retries `Blocking`).
    NonBlocking,
    /// On a dirty scheduler, through a core call that waits when it must: never `:wait`.
    Blocking,
}

/// The reply to a write of an index (or a router's shape index) whose overload choice is
/// `overload`: `:ok`; `:wait` only from a `NonBlocking` call that would have had to wait
/// (for an fsync, a lock, or room in a full lane when the index waits when overloaded);
/// `{:error, :overloaded}` when the index refuses instead (`overload: :error`); else
/// `{:error, {kind, message}}`. The one place that decides between them.
pub(crate) fn write_reply<'a>(
    env: Env<'a>,
    overload: Overload,
    call: Call,
    r: lsm_index_core::Result<()>,
) -> Term<'a> {
    match r {
        Ok(()) => atoms::ok().encode(env),
        Err(Error::WouldBlock { .. }) if call == Call::NonBlocking => atoms::wait().encode(env),
        Err(Error::Overloaded { .. })
            if call == Call::NonBlocking && overload == Overload::Wait =>
        {
            atoms::wait().encode(env)
        }
        Err(e) => core_error(env, &e),
    }
}
