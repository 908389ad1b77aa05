//! Index options: the map `LsmIndex.options!/1` validated (only the keys the caller gave) as a
//! core `Config`, every absent key taking `Config::default()`'s value; and those defaults as
//! Elixir option values (`index_defaults/0`), so `LsmIndex` documents the core's, not its own.

use lsm_index_core::PolicyKind;
use lsm_index_core::SyncMode;
use lsm_index_core::{Config, Overload, SegmentLayout};
use rustler::{Atom, Decoder, Encoder, Env, NifResult, Term};

mod atoms {
    rustler::atoms! {
        nil,
        shared,
    }
}

/// The value of option `name`, or `None` when the map has no such key (or it is `nil`).
fn opt<'a, T: Decoder<'a>>(opts: Term<'a>, name: &str) -> NifResult<Option<T>> {
    let env = opts.get_env();
    let key = Atom::from_str(env, name)?.encode(env);
    match opts.map_get(key) {
        Err(_) => Ok(None),
        Ok(v) if v.decode::<Atom>().ok() == Some(atoms::nil()) => Ok(None),
        Ok(v) => v.decode().map(Some),
    }
}

/// An option whose value is an atom naming a core choice (`from_name` parses it).
fn named<T>(opts: Term<'_>, name: &str, from_name: fn(&str) -> Option<T>) -> NifResult<Option<T>> {
    match opt::<Term<'_>>(opts, name)? {
        None => Ok(None),
        Some(v) => from_name(&v.atom_to_string()?)
            .map(Some)
            .ok_or(rustler::Error::BadArg),
    }
}

/// The options map (atom keys, only those given) as a core `Config`. A value `LsmIndex`
/// should have refused raises `ArgumentError`; ranges are checked by `Config::validate`
/// when the index is made.
pub(crate) fn config(opts: Term<'_>) -> NifResult<Config> {
    if !opts.is_map() {
        return Err(rustler::Error::BadArg);
    }
    let d = Config::default();
    let threads = match opt::<Term<'_>>(opts, "compaction_threads")? {
        None => d.compaction_threads,
        Some(t) if t.decode::<Atom>().ok() == Some(atoms::shared()) => None,
        Some(t) => Some(t.decode()?),
    };
    Ok(Config {
        lanes: opt(opts, "lanes")?.unwrap_or(d.lanes),
        overlay_limit: opt(opts, "overlay_limit")?.unwrap_or(d.overlay_limit),
        max_overlay_keys: opt(opts, "max_overlay_keys")?.or(d.max_overlay_keys),
        max_segments: opt(opts, "max_segments")?.unwrap_or(d.max_segments),
        size_ratio: size_ratio(opts)?.or(d.size_ratio),
        policy: named(opts, "policy", PolicyKind::from_name)?.unwrap_or(d.policy),
        compaction_threads: threads,
        on_overload: named(opts, "overload", Overload::from_name)?.unwrap_or(d.on_overload),
        layout: named(opts, "layout", SegmentLayout::from_name)?.unwrap_or(d.layout),
        prefilter: opt(opts, "prefilter")?.unwrap_or(d.prefilter),
        verify_on_open: opt(opts, "verify")?.unwrap_or(d.verify_on_open),
        sync: named(opts, "sync", SyncMode::from_name)?.unwrap_or(d.sync),
        count_handles: opt(opts, "count_handles")?.unwrap_or(d.count_handles),
        ..d
    })
}

/// `:size_ratio`, an integer or a float.
fn size_ratio(opts: Term<'_>) -> NifResult<Option<f64>> {
    Ok(match opt::<Term<'_>>(opts, "size_ratio")? {
        None => None,
        Some(v) => Some(match v.decode::<f64>() {
            Ok(f) => f,
            Err(_) => v.decode::<i64>()? as f64,
        }),
    })
}

/// `Config::default()` as `LsmIndex` options: what an absent option means. `max_overlay_keys`
/// is `nil` (the core derives it: 4 x `overlay_limit`); `size_ratio` is the policy's own,
/// given per policy as `[triangular: r, leveled: r]`.
#[rustler::nif]
fn index_defaults(env: Env<'_>) -> NifResult<Term<'_>> {
    let d = Config::default();
    let atom = |name: &str| -> NifResult<Term<'_>> { Ok(Atom::from_str(env, name)?.encode(env)) };
    let nil = atoms::nil().encode(env);
    let threads = match d.compaction_threads {
        None => atoms::shared().encode(env),
        Some(n) => n.encode(env),
    };
    let pairs: [(&str, Term<'_>); 13] = [
        ("lanes", d.lanes.encode(env)),
        ("overlay_limit", d.overlay_limit.encode(env)),
        (
            "max_overlay_keys",
            d.max_overlay_keys.map_or(nil, |m| m.encode(env)),
        ),
        ("overload", atom(d.on_overload.name())?),
        ("policy", atom(d.policy.name())?),
        ("max_segments", d.max_segments.encode(env)),
        ("size_ratio", size_ratios(env, d.size_ratio)?),
        ("compaction_threads", threads),
        ("layout", atom(d.layout.name())?),
        ("prefilter", d.prefilter.encode(env)),
        ("verify", d.verify_on_open.encode(env)),
        ("sync", atom(d.sync.name())?),
        ("count_handles", d.count_handles.encode(env)),
    ];
    let mut map = Term::map_new(env);
    for (k, v) in pairs {
        map = map.map_put(atom(k)?, v)?;
    }
    Ok(map)
}

/// `ratio` when set, else each policy's default as `[{policy, ratio}]`.
fn size_ratios(env: Env<'_>, ratio: Option<f64>) -> NifResult<Term<'_>> {
    if let Some(r) = ratio {
        return Ok(r.encode(env));
    }
    let mut out = Vec::new();
    for policy in PolicyKind::ALL {
        out.push((
            Atom::from_str(env, policy.name())?,
            policy.default_size_ratio(),
        ));
    }
    Ok(out.encode(env))
}
