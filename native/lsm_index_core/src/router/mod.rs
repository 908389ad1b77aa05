//! The ShapeRouter: for one table, which shapes (WHERE clauses) does a row change affect.
//!
//! ```text
//! change ─▶ parse each row's probed columns (Postgres text ─▶ typed values; the cells are
//!           read from the caller's source only now: `RowCells`)
//!        ─▶ per indexed column: [1] presence filter (miss: done) ─▶ [2] equality index
//!           (key = column id + canonical value) ─▶ candidate groups
//!        ─▶ per ordered slot: [2'] the value's order key in ranges, its text's literals
//!           ─▶ candidate groups
//!        ─▶ [3] each candidate group's residual program, once, on the row (its columns
//!           parsed first) ─▶ every shape of the group when true
//! shapes without an indexable conjunct ─▶ [3] on every change (scanned)
//! ```
//!
//! Semantics (the same as `LsmIndex.Filter`, which the differential test holds it to): a shape
//! matches a row when its WHERE is true (SQL three-valued logic); an update affects the shapes
//! that match the old or the new row, and a shape none of whose columns changed (their text)
//! is evaluated once; a truncate affects every shape. A value that does not parse for its
//! column's type routes to every shape found through that column (an index slot or a view
//! tuple on it: any value could have found the shape) and to every candidate and scanned
//! shape that reads it (its residual cannot tell); a shape found through other columns that
//! the row's values do not find cannot match whatever the cell holds, and is not routed (so
//! a miss never parses, nor reads, the columns only residuals read).
//!
//! Writers (add/remove) are serialised and touch the state lock only to publish: a shape
//! becomes visible (state + presence filter) after its keys are in the index, and invisible
//! before they are dropped, so a route never sees half a shape.
//!
//! Rooms, along the data paths:
//! - `mod.rs`: the [`Router`] and its lifecycle (new, flush, close);
//! - `reopen`: a persistent router's open (snapshot restored + catalog tail, or the whole
//!   catalog replayed) and its snapshot writes; `snapshot`: the snapshot file's format;
//!   `restore`: a snapshot made of the published state, and that state made of it again;
//! - `shapes`: the write path: compile a shape, write its keys, publish it in the shape table;
//!   `clauses`: the clauses read lately (a template's shapes read theirs once);
//! - `groups`: templates (compiled forms, interned) and groups (equal shapes, one index
//!   handle, one run per row);
//! - `ordered`: the range (`ranges`) and LIKE-literal (`patterns`) indexes of shapes no
//!   equality finds;
//! - `state`: the published shapes (shape table, groups, bookkeeping, presence, indexes);
//! - `route`: the read path: the [`Reader`], a change's probes and its candidate groups;
//!   `route_batch`: a transaction's changes routed in phases (their probes planned in
//!   `route_plan`, tested and looked up together, only the changes with candidates routed);
//! - `probe`: what a probed value finds (equality keys behind the presence filter);
//! - `evaluate`: a candidate group's evaluation (columns parsed, residual run once);
//! - `row`: a row's cells (`RowCells`: a slice, or the caller's reader) parsed into typed
//!   values as the route asks for them;
//! - `schema`: the columns as they grow: a column added to a router's table (`ALTER TABLE …
//!   ADD COLUMN`), an open-schema router's declared by its shapes as they are added;
//! - `presence`: the presence filter and its upkeep (when the live keys outgrow it);
//! - `set`: the routers of one filter's tables behind one handle; `ids`: shape names;
//! - `catalog`: a persistent router's shape log (and its table's columns); `metrics`: routing counters and latency;
//! - `views`: subquery views (storage only so far): shared value counts, per-shape diffs, moves;
//! - `slots`: index slots (a column, `lower`/`upper` of it, its elements); `bits`: column bitsets. Column keys are encoded by [`crate::key::column_key`].

mod bits;
pub mod catalog;
mod clauses;
mod evaluate;
mod groups;
pub mod ids;
mod inner;
mod journal;
mod linked;
mod linked_persist;
mod linked_route;
mod linked_seed;
mod links;
mod metrics;
mod ordered;
pub mod patterns;
mod presence;
mod probe;
pub mod ranges;
mod reopen;
mod restore;
mod route;
mod route_batch;
mod route_plan;
mod row;
mod schema;
pub mod set;
mod shapes;
mod slots;
pub mod snapshot;
mod state;
mod subqueries;
mod update;
mod view_slots;
pub mod views;
pub mod views_log;

use crate::index::{Config, Index, Listener};
pub use crate::predicate::compile::ScanReason;
use crate::predicate::CaseFolding;
use crate::predicate::ColumnType;
use crate::{Error, Result};
pub use metrics::{Metrics, Snapshot};
use parking_lot::{Mutex, RwLock};
pub use reopen::OpenReport;
use reopen::Persisted;
pub use route::{ChangeCells, Reader};
pub use route_batch::Routes;
pub use row::{RowCells, RowText};
use shapes::State;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};
pub use subqueries::{Moved, SeedQuery, SeedText, SeededShape, ValueText};

/// Shapes compiled (in parallel) and written per batch when a catalog is replayed.
pub(super) const REPLAY_CHUNK: usize = 65_536;

/// Most columns a table may have (Postgres' own limit).
pub const MAX_COLUMNS: usize = 1600;

/// A WAL change of the router's table.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// A new row.
    Insert(&'a RowText<'a>),
    /// A deleted row (its old values).
    Delete(&'a RowText<'a>),
    /// An updated row: old values, new values.
    Update(&'a RowText<'a>, &'a RowText<'a>),
    /// The table was truncated: every shape is affected.
    Truncate,
}

/// How many shapes a router holds, by how they are found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShapeCounts {
    /// Found through the equality index.
    pub indexed: usize,
    /// Evaluated on every change.
    pub scanned: usize,
    /// The scanned ones by why, in the order of [`ScanReason::ALL`].
    pub scanned_because: [usize; ScanReason::ALL.len()],
}

/// How a router's shapes are found, and how they share compiled forms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IndexCounts {
    /// Shapes found through the equality index (`col = v`, `col IN (…)`, `lower(col) = v`).
    pub equality: usize,
    /// Shapes found through a range of a column (`a > 5 AND a < 9`, `t LIKE 'abc%'`).
    pub range: usize,
    /// Shapes found through a literal their column's text holds (`t ILIKE '%bug%'`).
    pub literal: usize,
    /// Shapes found through a subquery's view.
    pub view: usize,
    /// Shapes evaluated on every change (why: [`ShapeCounts::scanned_because`]).
    pub scanned: usize,
    /// Groups: shapes of one compiled form and the same keys, evaluated once per row.
    pub groups: usize,
    /// Distinct compiled forms (templates) the groups share.
    pub templates: usize,
}

/// A table's columns (name, type) in row order, shared by the state and the writers that
/// compile against them.
pub type Columns = Arc<[(String, ColumnType)]>;

/// Routes changes of one table to the shapes they affect (see the module doc).
pub struct Router {
    /// How `lower`, `upper` and `ILIKE` fold case in its shapes.
    folding: CaseFolding,
    /// The equality index of the indexed shapes' keys, made by the first indexed shape (an
    /// empty router does not carry one).
    index: OnceLock<Arc<Index>>,
    /// Its configuration; `None` for the default one (a router carries no copy of it).
    config: Option<Box<Config>>,
    /// Serialises shape writes (add, remove, close).
    writer: Mutex<()>,
    state: RwLock<State>,
    /// Routing counters, made by the first route (an unrouted router carries none).
    metrics: OnceLock<Box<Metrics>>,
    /// The shape catalog of a persistent router and its snapshot's stamp (`None` in
    /// memory, or once closed).
    catalog: Mutex<Option<Box<Persisted>>>,
    persistent: bool,
    /// Whether shapes may add columns to the table ([`Router::new_open`]).
    open_schema: bool,
    /// A view router's (see `inner`): an evaluation error is no match, not a match.
    strict: bool,
    /// The view of the table the last shape was compiled against (open schema: `schema`).
    views: Mutex<Option<Box<schema::View>>>,
    /// The clauses read lately (a fixed-schema router's, made by its first shape).
    clauses: OnceLock<Box<clauses::Clauses>>,
    /// Batched routes' buffers between calls.
    batches: route_batch::ScratchPool,
    closed: AtomicBool,
}

impl Router {
    /// The shape index, made now if no shape was indexed before.
    fn index(&self) -> Result<&Arc<Index>> {
        if let Some(index) = self.index.get() {
            return Ok(index);
        }
        // writes hold the writer lock: no other index can be made meanwhile
        let config = self.config.as_deref().cloned().unwrap_or_default();
        let index = Index::new(config)?;
        Ok(self.index.get_or_init(|| index))
    }

    /// An empty router for a table with `columns` (name, type) in a database whose
    /// `LC_CTYPE` folds case as `folding` says; its equality index is an in-memory [`Index`]
    /// configured by `config`.
    pub fn new(
        columns: Vec<(String, ColumnType)>,
        folding: CaseFolding,
        config: Config,
    ) -> Result<Router> {
        config.validate()?;
        if columns.is_empty() {
            return Err(Error::InvalidColumns {
                reason: format!("a table has 1 to {MAX_COLUMNS} columns"),
            });
        }
        let mut router = Router::new_open(folding, config)?;
        router.open_schema = false;
        let st = router.state.get_mut();
        st.columns = schema::checked(columns)?;
        st.narrowest = st.columns.len();
        Ok(router)
    }

    /// An empty router whose table has no columns yet: each shape added with
    /// [`Router::add_shape_declared`] declares the columns it is written against, which the
    /// table gains (see `schema`). In memory only (`LsmIndex.Filter`'s tables).
    pub fn new_open(folding: CaseFolding, config: Config) -> Result<Router> {
        config.validate()?;
        Ok(Router {
            index: OnceLock::new(),
            config: (config != Config::default()).then(|| Box::new(config)),
            state: RwLock::new(State::new(Columns::from(Vec::new()))),
            open_schema: true,
            strict: false,
            views: Mutex::new(None),
            clauses: OnceLock::new(),
            folding,
            writer: Mutex::new(()),
            metrics: OnceLock::new(),
            catalog: Mutex::new(None),
            persistent: false,
            batches: Default::default(),
            closed: AtomicBool::new(false),
        })
    }

    /// Makes every shape change so far durable (persistent routers; a no-op in memory).
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        match self.catalog.lock().as_mut() {
            Some(p) => p.catalog.sync(),
            None => Ok(()),
        }
    }

    /// Flushes, writes the snapshot of a persistent router (see `reopen`; a failure to
    /// write it is not an error: the next open replays more of the catalog) and releases
    /// the directory; every later call fails with `Closed`.
    pub fn close(&self) -> Result<()> {
        let w = self.writer.lock();
        if self.closed.swap(true, RELAXED) {
            return Ok(());
        }
        let Some(mut p) = self.catalog.lock().take() else {
            return Ok(());
        };
        p.catalog.sync()?;
        let _ = self.snapshot_locked(&w, &mut p);
        Ok(())
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(RELAXED) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The table's columns, in row order, as of now ([`Router::add_column`] appends to a
    /// fixed-column router's, shapes to an open-schema router's).
    pub fn columns(&self) -> Columns {
        self.state.read().columns.clone()
    }

    /// Waits until the shape index's background compaction is idle (benchmarks, tests).
    pub fn wait_idle(&self) -> Result<()> {
        match self.index.get() {
            Some(index) => index.wait_idle(),
            None => Ok(()),
        }
    }

    /// Sets the listener of the shape index's background jobs, as [`Index::set_listener`]
    /// (the index is made now if no shape was indexed yet): how tests park its compaction.
    pub fn set_index_listener(&self, listener: Option<Listener>) -> Result<()> {
        // no writer lock: `index` hands every caller the one index the OnceLock keeps
        self.index()?.set_listener(listener);
        Ok(())
    }

    /// The shape index, if a shape was ever indexed (its statistics, for callers).
    pub fn shape_index(&self) -> Option<&Arc<Index>> {
        self.index.get()
    }

    /// Whether shape `id` is held.
    pub fn contains(&self, id: u32) -> bool {
        self.state.read().shapes.contains_key(&id)
    }

    /// How many shapes are held.
    pub fn shape_count(&self) -> usize {
        self.state.read().shapes.len()
    }

    /// Appends the id of every shape held to `out`.
    pub fn shape_handles_into(&self, out: &mut Vec<u32>) {
        out.extend(self.state.read().shapes.keys());
    }

    /// Whether some shape is found through an index on column `name` (its value, or
    /// `lower`/`upper` of it).
    pub fn is_indexed_on(&self, name: &str) -> bool {
        let st = self.state.read();
        st.indexed_on.iter().any(|&(slot, _)| {
            let c = shapes::slot_key(slot).column;
            st.columns.get(c).is_some_and(|(n, _)| n == name)
        })
    }

    /// Shapes held, by kind.
    pub fn shape_counts(&self) -> ShapeCounts {
        self.state.read().counts()
    }

    /// How the shapes share compiled forms: (groups, templates) — a group is the shapes
    /// found by the same keys with the same form, run once per row (see `groups`).
    pub fn sharing(&self) -> (usize, usize) {
        let st = self.state.read();
        (st.groups.len(), st.groups.template_count())
    }

    /// How the shapes are found (by index) and share compiled forms.
    pub fn index_counts(&self) -> IndexCounts {
        self.state.read().index_counts()
    }

    /// The router's metrics.
    pub fn metrics(&self) -> Snapshot {
        match self.metrics.get() {
            Some(m) => m.snapshot(),
            None => Metrics::default().snapshot(),
        }
    }

    /// The routing counters, made now if nothing was routed before.
    fn counters(&self) -> &Metrics {
        self.metrics.get_or_init(Box::default)
    }
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

/// The hasher of index keys for the presence filters: one per process, random, so that a
/// router carries none.
pub(crate) fn key_hasher() -> &'static ahash::RandomState {
    static HASHER: OnceLock<ahash::RandomState> = OnceLock::new();
    HASHER.get_or_init(ahash::RandomState::new)
}
