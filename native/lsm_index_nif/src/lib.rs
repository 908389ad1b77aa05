//! The NIF library behind `LsmIndex.Native`: a pure adapter. It converts terms, holds the
//! core's indexes and routers in resources and maps core results to replies; no index,
//! router or predicate logic lives here. One file per Elixir domain:
//!
//! - `index`: `index_*` NIFs (`LsmIndex`), an `lsm_index_core::Index` in a resource
//! - `router`: `router_*` NIFs (`LsmIndex.ShapeRouter`), a core `Router` in a resource
//! - `predicate`: `where_parse_*` NIFs (`LsmIndex.Where`), the core's `Expr` as a tree
//! - `filter`: `filter_*` NIFs (`LsmIndex.Filter`): compiled residuals, parsed records and
//!   their evaluation, by the core's predicate engine
//! - `options`: the options map as a core `Config`, and the core's defaults
//! - `error`: core errors as terms, and the one `:wait` / `{:error, :overloaded}` decision
//! - `timing`: opt-in timing of normal-scheduler calls (the stress test)
#![deny(unsafe_code)]

mod error;
mod filter;
mod index;
mod options;
mod predicate;
mod router;
mod timing;

/// At load: keep freed memory for reuse (see `lsm_index_core::internals::retain_freed_memory`): compaction's
/// unmapping would otherwise flush every scheduler's TLB and slow lookups.
fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
    lsm_index_core::internals::retain_freed_memory();
    true
}

rustler::init!("Elixir.LsmIndex.Native", load = load);
