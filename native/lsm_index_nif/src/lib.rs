//! The NIF library behind `LsmIndex.Native`: a pure adapter. It converts terms, holds the
//! core's indexes and routers in resources and maps core results to replies; no index,
//! router or predicate logic lives here. One file per Elixir domain:
//!
//! - `index`: `index_*` NIFs (`LsmIndex`), an `lsm_index_core::Index` in a resource
//! - `index_packed`: `index_lookup_many_packed*`: a batch of keys read in place from one
//!   binary (`LsmIndex.pack_keys/1`)
//! - `index_stats`: the `index_*` NIFs that report on one: size, per-handle counts, stats
//! - `index_events`: an index's job events: subscribers (`index_subscribe`) and deliveries
//! - `router`: `router_*` NIFs (`LsmIndex.ShapeRouter`), a core `Router` in a resource;
//!   `router_packed`: `router_route_many_packed*`, a transaction's changes read in place from
//!   one binary (`ShapeRouter.pack_changes/2`) and routed in batches; `router_columns`: its
//!   table's columns, and a column added to them (an `ALTER TABLE … ADD COLUMN`)
//! - `router_set`: `router_set_*` NIFs (`LsmIndex.Filter` with `index: :lsm`), a core
//!   `RouterSet` (one open-schema router per table) in a resource; `router_set_route`: its
//!   routes; `router_set_views`: the router over declared tables (`LsmIndex.ShapeRouter`
//!   with a map of tables): shapes with their subquery snapshots, routes with moves;
//!   `router_set_tables`: its making, persistence (open, flush, close, position), figures
//! - `change`: change terms (both forms) as the core's `Change`
//! - `predicate`: `where_parse_*` NIFs (`LsmIndex.Where`), the core's `Expr` as a tree
//! - `filter`: `filter_*` NIFs (`LsmIndex.Filter`): compiled residuals, parsed records and
//!   their evaluation, by the core's predicate engine
//! - `filter_record`: the `filter_*` NIFs of `Index.Protocol.affected_shapes/4`: one
//!   column's key, and residuals evaluated, straight from a record map
//! - `options`: the options map as a core `Config`, and the core's defaults
//! - `error`: core errors as terms, and the one `:wait` / `{:error, :overloaded}` decision
//! - `timing`: opt-in timing of normal-scheduler calls (the stress test)
//! - `hold`: `*_hold_compaction`, a test hook parking the compaction worker of an index or
//!   of a router's shape index
#![deny(unsafe_code)]

mod change;
mod error;
mod filter;
mod filter_record;
mod hold;
mod index;
mod index_events;
mod index_packed;
mod index_stats;
mod options;
mod predicate;
mod router;
mod router_columns;
mod router_packed;
mod router_set;
mod router_set_route;
mod router_set_tables;
mod router_set_views;
mod router_shapes;
mod timing;

/// This library's Rust allocations: large blocks kept for reuse up to a bound, so compaction
/// neither returns memory on every job (each release flushes every scheduler's TLB and slows
/// lookups) nor holds the process at its high-water mark (`lsm_index_core::LargeBlocks`).
/// The host VM's `malloc` is untouched.
#[global_allocator]
static ALLOCATOR: lsm_index_core::LargeBlocks = lsm_index_core::LargeBlocks::new();

/// At load: the allocator's cache is emptied whenever compaction goes idle.
fn load(_env: rustler::Env, _info: rustler::Term) -> bool {
    ALLOCATOR.install();
    true
}

rustler::init!("Elixir.LsmIndex.Native", load = load);
