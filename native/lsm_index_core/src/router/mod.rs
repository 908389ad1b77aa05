//! The ShapeRouter: for one table, which shapes (WHERE clauses) does a row change affect.
//!
//! ```text
//! change ─▶ parse the referenced columns of each row (Postgres text ─▶ typed values)
//!        ─▶ per indexed column: [1] presence filter (miss: done) ─▶ [2] equality index
//!           (key = column id + canonical value) ─▶ candidate shapes
//!        ─▶ [3] each candidate's residual program on the row ─▶ matched shapes
//! shapes without an indexable conjunct ─▶ [3] on every change (scanned)
//! ```
//!
//! Semantics (the same as `LsmIndex.Filter`, which the differential test holds it to): a shape
//! matches a row when its WHERE is true (SQL three-valued logic); an update affects the shapes
//! that match the old or the new row, and a shape none of whose columns changed is evaluated
//! once; a value that does not parse for its column's type routes to every shape that refers
//! to that column; a truncate affects every shape.
//!
//! Writers (add/remove) are serialised and touch the state lock only to publish: a shape
//! becomes visible (state + presence filter) after its keys are in the index, and invisible
//! before they are dropped, so a route never sees half a shape.

pub mod catalog;
pub mod metrics;
pub mod presence;

use crate::index::{Config, Index};
use crate::predicate::compile::{compile, Program, Stack};
use crate::predicate::eval::compare;
use crate::predicate::{parse, ColumnType, Value};
use crate::wal::SyncMode;
use crate::{Error, FileKind, Result};
use catalog::Catalog;
use metrics::Counts;
pub use metrics::{Metrics, Snapshot};
use parking_lot::{Mutex, RwLock, RwLockReadGuard};
use presence::Presence;
use smallvec::SmallVec;
use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

/// Compiled shapes with their index keys, ready to be written and published.
type Prepared = Vec<(u32, Shape, Vec<KeyBuf>)>;

/// Shapes compiled (in parallel) and written per batch when a catalog is replayed.
const REPLAY_CHUNK: usize = 65_536;

/// Most columns a table may have (Postgres' own limit).
pub const MAX_COLUMNS: usize = 1600;

/// One row of a change: per table column, its Postgres text, `None` for NULL or absent.
pub type Record<'a> = [Option<&'a [u8]>];

/// A WAL change of the router's table.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a> {
    /// A new row.
    Insert(&'a Record<'a>),
    /// A deleted row (its old values).
    Delete(&'a Record<'a>),
    /// An updated row: old values, new values.
    Update(&'a Record<'a>, &'a Record<'a>),
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
}

/// A compiled shape.
#[derive(Debug)]
struct Shape {
    residual: Program,
    mask: Box<[u64]>,
    /// The indexed column, or `None` when scanned.
    indexed: Option<usize>,
    /// Presence-filter hashes of its index keys (to rebuild the filter without the keys).
    key_hashes: Box<[u64]>,
}

#[derive(Debug)]
struct State {
    shapes: HashMap<u32, Arc<Shape>, ahash::RandomState>,
    /// Scanned shapes, sorted by id (no map lookup per change).
    scanned: Vec<(u32, Arc<Shape>)>,
    /// Per column: the shapes referring to it (conservative routing of unparseable values).
    refs: Vec<HashSet<u32, ahash::RandomState>>,
    /// Columns some shape refers to, ascending (the only ones a route reads).
    referenced: Vec<usize>,
    /// Per column: how many shapes are indexed on it.
    indexed_on: Vec<usize>,
    presence: Presence,
    /// Index keys of the live shapes.
    live_keys: usize,
}

/// Routes changes of one table to the shapes they affect (see the module doc).
pub struct Router {
    columns: Vec<(String, ColumnType)>,
    index: Arc<Index>,
    hasher: ahash::RandomState,
    writer: Mutex<()>,
    state: RwLock<State>,
    metrics: Metrics,
    /// The shape catalog of a persistent router (`None` in memory, or once closed).
    catalog: Mutex<Option<Catalog>>,
    persistent: bool,
    closed: AtomicBool,
}

/// Routes changes against one view of a router's shapes (see [`Router::reader`]).
pub struct Reader<'r> {
    router: &'r Router,
    state: RwLockReadGuard<'r, State>,
    scratch: Scratch,
    rows: Rows,
    /// Routes made through this reader (every `TIMING_SAMPLE`th is timed, the first one
    /// included).
    routed: u32,
    /// When the last timed route ended.
    last: Option<Instant>,
}

/// One route in this many through a reader is timed (two clock reads, ~33 ns each on this
/// VM: a tenth of a miss); a single `route` call is always timed.
const TIMING_SAMPLE: u32 = 8;

impl Reader<'_> {
    /// When the last timed route through this reader ended (at most `TIMING_SAMPLE` routes
    /// ago): batch callers bound their time slice with it instead of reading the clock.
    pub fn last_timed(&self) -> Option<Instant> {
        self.last
    }

    /// Shapes evaluated on every change (what bounds a route's cost from above).
    pub fn scanned_count(&self) -> usize {
        self.state.scanned.len()
    }

    /// The columns some shape refers to, ascending: a record's other columns cannot change
    /// any answer, so callers need only convert these.
    pub fn referenced_columns(&self) -> &[usize] {
        &self.state.referenced
    }

    /// Writes the sorted ids of the shapes `change` affects to `out` (cleared first).
    pub fn route(&mut self, change: &Change, out: &mut Vec<u32>) -> Result<()> {
        self.router.check_open()?;
        let start = self.routed.is_multiple_of(TIMING_SAMPLE).then(Instant::now);
        self.routed = self.routed.wrapping_add(1);
        let r = self
            .router
            .route_in(&self.state, change, out, &mut self.scratch, &mut self.rows);
        self.scratch.counts.changes += 1;
        if let Some(start) = start {
            let end = Instant::now();
            let ns = end.duration_since(start).as_nanos() as u64;
            self.router.metrics.record_latency(ns);
            self.scratch.counts.timed += 1;
            self.scratch.counts.route_ns += ns;
            self.last = Some(end);
        }
        r
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        self.router.metrics.add(&self.scratch.counts);
    }
}

/// A parsed row: typed values of the referenced columns and which columns did not parse.
/// Reused from change to change (text values keep their buffers).
#[derive(Default)]
struct Row {
    values: SmallVec<[Option<Value>; 16]>,
    bad: Bits,
}

/// An index key (column id, tag, value bytes), inline up to 40 bytes.
type KeyBuf = SmallVec<[u8; 40]>;

/// A column bitset, inline up to 256 columns.
type Bits = SmallVec<[u64; 4]>;

/// The parsed rows of a change (an update has two).
#[derive(Default)]
struct Rows {
    old: Row,
    new: Row,
}

/// Reusable buffers of one route call.
#[derive(Default)]
struct Scratch {
    key: KeyBuf,
    stack: Stack,
    /// Index candidates of the first row of an update, per indexed column.
    candidates: Vec<(usize, Vec<u32>)>,
    /// Metrics of this reader's routes, added to the router's when it is dropped.
    counts: Counts,
}

impl Router {
    /// An empty router for a table with `columns` (name, type); its equality index is an
    /// in-memory [`Index`] configured by `config`.
    pub fn new(columns: Vec<(String, ColumnType)>, config: Config) -> Result<Router> {
        if columns.is_empty() || columns.len() > MAX_COLUMNS {
            return Err(Error::InvalidColumns {
                reason: format!("a table has 1 to {MAX_COLUMNS} columns"),
            });
        }
        let mut names = HashSet::new();
        if let Some((name, _)) = columns.iter().find(|(name, _)| !names.insert(name)) {
            return Err(Error::InvalidColumns {
                reason: format!("column {name:?} appears twice"),
            });
        }
        let n = columns.len();
        Ok(Router {
            index: Index::new(config)?,
            columns,
            hasher: ahash::RandomState::new(),
            writer: Mutex::new(()),
            state: RwLock::new(State {
                shapes: HashMap::with_hasher(ahash::RandomState::new()),
                scanned: Vec::new(),
                refs: (0..n)
                    .map(|_| HashSet::with_hasher(ahash::RandomState::new()))
                    .collect(),
                referenced: Vec::new(),
                indexed_on: vec![0; n],
                presence: Presence::with_capacity(0),
                live_keys: 0,
            }),
            metrics: Metrics::default(),
            catalog: Mutex::new(None),
            persistent: false,
            closed: AtomicBool::new(false),
        })
    }

    /// Opens (creating if needed) the persistent router in `dir`: its shape catalog is
    /// replayed into a fresh in-memory index (see `catalog`); every later add and remove is
    /// appended to it, durable as `sync` says (`Flush`: on [`Router::flush`]).
    pub fn open(
        dir: &Path,
        columns: Vec<(String, ColumnType)>,
        config: Config,
        sync: SyncMode,
    ) -> Result<Router> {
        let mut router = Router::new(columns, config)?;
        let (catalog, shapes) = Catalog::open(dir, &router.columns, sync)?;
        let shapes: Vec<(u32, String)> = shapes.into_iter().collect();
        // about one key per shape: sized once instead of grown (and the filter rebuilt)
        router.state.write().reserve(shapes.len(), shapes.len());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        for chunk in shapes.chunks(REPLAY_CHUNK) {
            let prepared = router.prepare_all(dir, chunk, threads)?;
            let pairs: Vec<(&[u8], u32)> = prepared
                .iter()
                .flat_map(|(id, _, keys)| keys.iter().map(move |k| (k.as_slice(), *id)))
                .collect();
            router.index.add_many(&pairs)?;
            let mut st = router.state.write();
            for (id, shape, _) in prepared {
                st.insert(id, shape);
            }
        }
        router.catalog = Mutex::new(Some(catalog));
        router.persistent = true;
        Ok(router)
    }

    /// Makes every shape change so far durable (persistent routers; a no-op in memory).
    pub fn flush(&self) -> Result<()> {
        self.check_open()?;
        match self.catalog.lock().as_mut() {
            Some(c) => c.sync(),
            None => Ok(()),
        }
    }

    /// Flushes and releases the directory; every later call fails with `Closed`.
    pub fn close(&self) -> Result<()> {
        let _w = self.writer.lock();
        if self.closed.swap(true, RELAXED) {
            return Ok(());
        }
        match self.catalog.lock().take() {
            Some(mut c) => c.sync(),
            None => Ok(()),
        }
    }

    fn check_open(&self) -> Result<()> {
        if self.closed.load(RELAXED) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The table's columns, in record order.
    pub fn columns(&self) -> &[(String, ColumnType)] {
        &self.columns
    }

    /// Adds shape `id` with WHERE clause `sql`, replacing any shape with that id; waits if
    /// the index is overloaded.
    pub fn add_shape(&self, id: u32, sql: &str) -> Result<()> {
        self.add_in(id, sql, true)
    }

    /// Like [`Router::add_shape`] but never waits: `Overloaded` or `WouldBlock` if it would
    /// have to (then shape `id` is absent; retry with `add_shape`).
    pub fn try_add_shape(&self, id: u32, sql: &str) -> Result<()> {
        self.add_in(id, sql, false)
    }

    /// Removes shape `id` (no-op when absent).
    pub fn remove_shape(&self, id: u32) -> Result<()> {
        self.check_open()?;
        let _w = self.writer.lock();
        if self.remove_locked(id, true)? {
            self.record_removal(id)?;
        }
        Ok(())
    }

    /// Like [`Router::remove_shape`] but never waits (`WouldBlock` / `Overloaded`).
    pub fn try_remove_shape(&self, id: u32) -> Result<()> {
        self.check_open()?;
        if self.persistent {
            return Err(Error::WouldBlock {
                reason: "a persistent router writes its shape catalog",
            });
        }
        let _w = self.writer.try_lock().ok_or_else(busy)?;
        self.remove_locked(id, false).map(drop)
    }

    /// Appends the removal of `id` to the catalog (persistent routers).
    fn record_removal(&self, id: u32) -> Result<()> {
        match self.catalog.lock().as_mut() {
            Some(c) => c.remove(id),
            None => Ok(()),
        }
    }

    fn add_in(&self, id: u32, sql: &str, blocking: bool) -> Result<()> {
        self.check_open()?;
        if self.persistent && !blocking {
            return Err(Error::WouldBlock {
                reason: "a persistent router writes its shape catalog",
            });
        }
        let (shape, keys) = self.prepare(sql)?;
        let _w = if blocking {
            self.writer.lock()
        } else {
            self.writer.try_lock().ok_or_else(busy)?
        };
        self.remove_locked(id, blocking)?;
        let pairs: Vec<(&[u8], u32)> = keys.iter().map(|k| (k.as_slice(), id)).collect();
        if blocking {
            self.index.add_many(&pairs)?;
        } else {
            self.index.try_add_many(&pairs)?;
        }
        if let Some(catalog) = self.catalog.lock().as_mut() {
            if let Err(e) = catalog.add(id, sql) {
                // not recorded: not added (the keys are dropped again)
                let _ = self.index.drop_handle(id);
                return Err(e);
            }
        }
        self.state.write().insert(id, shape);
        Ok(())
    }

    /// The shapes of a catalog chunk compiled on `threads` threads (a clause that no longer
    /// compiles is a corrupt catalog).
    fn prepare_all(&self, dir: &Path, chunk: &[(u32, String)], threads: usize) -> Result<Prepared> {
        let load = |(id, sql): &(u32, String)| {
            let (shape, keys) = self.prepare(sql).map_err(|e| Error::Corrupt {
                file: FileKind::Catalog,
                what: dir.display().to_string(),
                detail: format!("shape {id} of the catalog no longer loads: {e}"),
            })?;
            Ok((*id, shape, keys))
        };
        let parts: Vec<Result<Prepared>> = std::thread::scope(|scope| {
            let workers: Vec<_> = chunk
                .chunks(chunk.len().div_ceil(threads).max(1))
                .map(|part| scope.spawn(move || part.iter().map(load).collect()))
                .collect();
            workers
                .into_iter()
                .map(|w| {
                    w.join().unwrap_or_else(|_| {
                        Err(Error::Poisoned {
                            cause: "a catalog replay thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        let mut all = Prepared::with_capacity(chunk.len());
        for part in parts {
            all.extend(part?);
        }
        Ok(all)
    }

    /// A shape compiled from `sql`, with its index keys.
    fn prepare(&self, sql: &str) -> Result<(Shape, Vec<KeyBuf>)> {
        let compiled = compile(&parse(sql, &self.columns)?);
        let mut keys = Vec::new();
        if let Some(plan) = &compiled.index {
            for v in &plan.keys {
                let mut k = KeyBuf::new();
                encode_key(plan.column, v, &mut k);
                keys.push(k);
            }
        }
        let shape = Shape {
            residual: compiled.residual,
            mask: compiled.mask.into_boxed_slice(),
            indexed: compiled.index.as_ref().map(|p| p.column),
            key_hashes: keys.iter().map(|k| self.hasher.hash_one(k)).collect(),
        };
        Ok((shape, keys))
    }

    /// Unpublishes shape `id`, then drops its keys; the caller holds the writer lock.
    /// Whether there was such a shape.
    fn remove_locked(&self, id: u32, blocking: bool) -> Result<bool> {
        let Some(shape) = self.state.write().remove(id) else {
            return Ok(false);
        };
        if shape.indexed.is_some() {
            if blocking {
                self.index.drop_handle(id)?;
            } else {
                self.index.try_drop_handle(id)?;
            }
        }
        Ok(true)
    }

    /// Waits until the shape index's background compaction is idle (benchmarks, tests).
    pub fn wait_idle(&self) -> Result<()> {
        self.index.wait_idle()
    }

    /// Shapes held, by kind.
    pub fn shape_counts(&self) -> ShapeCounts {
        let st = self.state.read();
        ShapeCounts {
            scanned: st.scanned.len(),
            indexed: st.shapes.len() - st.scanned.len(),
        }
    }

    /// The router's metrics.
    pub fn metrics(&self) -> Snapshot {
        self.metrics.snapshot()
    }

    /// Writes the sorted ids of the shapes `change` affects to `out` (cleared first).
    pub fn route(&self, change: &Change, out: &mut Vec<u32>) -> Result<()> {
        self.reader().route(change, out)
    }

    /// [`Router::route`] for each change, in one call (one transaction).
    pub fn route_many(&self, changes: &[Change], outs: &mut Vec<Vec<u32>>) -> Result<()> {
        let mut reader = self.reader();
        for change in changes {
            let mut out = Vec::new();
            reader.route(change, &mut out)?;
            outs.push(out);
        }
        Ok(())
    }

    /// A reader for routing several changes against one view of the shapes (it holds the
    /// shape set's read lock: adds and removes wait until it is dropped).
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            router: self,
            state: self.state.read(),
            scratch: Scratch::default(),
            rows: Rows::default(),
            routed: 0,
            last: None,
        }
    }

    fn route_in(
        &self,
        st: &State,
        change: &Change,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
        rows: &mut Rows,
    ) -> Result<()> {
        out.clear();
        match change {
            Change::Truncate => out.extend(st.shapes.keys()),
            Change::Insert(rec) | Change::Delete(rec) => {
                self.parse_row(st, rec, &mut rows.old)?;
                self.route_row(st, &rows.old, None, out, scratch)?;
            }
            Change::Update(old, new) => {
                self.parse_row(st, old, &mut rows.old)?;
                self.parse_row(st, new, &mut rows.new)?;
                let changed = changed_columns(&rows.old, &rows.new);
                self.route_row(st, &rows.old, None, out, scratch)?;
                self.route_row(st, &rows.new, Some(&changed), out, scratch)?;
            }
        }
        out.sort_unstable();
        out.dedup();
        Ok(())
    }

    /// Parses into `row` the columns some shape refers to (the others cannot change any
    /// answer, and no shape reads them, so their stale values are never looked at).
    fn parse_row(&self, st: &State, rec: &Record, row: &mut Row) -> Result<()> {
        let n = self.columns.len();
        if rec.len() != n {
            return Err(Error::ColumnCount {
                expected: n,
                got: rec.len(),
            });
        }
        if row.values.len() != n {
            row.values = smallvec::smallvec![None; n];
            row.bad = smallvec::smallvec![0; bitset_words(n)];
        }
        row.bad.iter_mut().for_each(|w| *w = 0);
        for &c in &st.referenced {
            let slot = &mut row.values[c];
            match rec[c] {
                None => *slot = None,
                Some(text) => {
                    if !parse_into(self.columns[c].1, text, slot) {
                        *slot = None;
                        set_bit(&mut row.bad, c);
                    }
                }
            }
        }
        Ok(())
    }

    /// Adds the shapes `row` matches to `out`. `changed`: `row` is the new row of an update
    /// whose old row was routed already, with these columns changed; shapes reading none of
    /// them had the same answer on the old row and are skipped.
    fn route_row(
        &self,
        st: &State,
        row: &Row,
        changed: Option<&[u64]>,
        out: &mut Vec<u32>,
        scratch: &mut Scratch,
    ) -> Result<()> {
        let fresh = |shape: &Shape| changed.is_none_or(|ch| intersects(&shape.mask, ch));
        if row.bad.iter().any(|&w| w != 0) {
            scratch.counts.unparseable_rows += 1;
            for (c, refs) in st.refs.iter().enumerate() {
                if bit(&row.bad, c) {
                    out.extend(refs.iter());
                }
            }
        }
        let mut evaluations = 0;
        let mut candidates_seen = 0;
        let mut saved = std::mem::take(&mut scratch.candidates);
        if changed.is_none() {
            saved.clear();
        }
        for (c, &n) in st.indexed_on.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let reuse = changed.is_some_and(|ch| !bit(ch, c));
            let mut found = Vec::new();
            let candidates: &[u32] = if reuse {
                saved
                    .iter()
                    .find(|(col, _)| *col == c)
                    .map_or(&[][..], |(_, ids)| ids.as_slice())
            } else {
                let Some(v) = &row.values[c] else { continue };
                scratch.key.clear();
                encode_key(c, v, &mut scratch.key);
                scratch.counts.presence_probes += 1;
                if !st.presence.may_contain(self.hasher.hash_one(&scratch.key)) {
                    continue;
                }
                scratch.counts.presence_passes += 1;
                self.index.lookup_into(&scratch.key, &mut found)?;
                if found.is_empty() {
                    scratch.counts.presence_false_positives += 1;
                }
                &found
            };
            for &id in candidates {
                // absent: being added or removed right now (not published)
                let Some(shape) = st.shapes.get(&id) else {
                    continue;
                };
                candidates_seen += 1;
                if !fresh(shape) {
                    continue;
                }
                evaluations += 1;
                if shape.residual.run(&row.values, &mut scratch.stack) == Some(true) {
                    out.push(id);
                }
            }
            if changed.is_none() {
                saved.push((c, found));
            }
        }
        scratch.candidates = saved;
        for (id, shape) in &st.scanned {
            if !fresh(shape) {
                continue;
            }
            evaluations += 1;
            if shape.residual.run(&row.values, &mut scratch.stack) == Some(true) {
                out.push(*id);
            }
        }
        scratch.counts.candidates += candidates_seen;
        scratch.counts.evaluations += evaluations;
        Ok(())
    }
}

const RELAXED: std::sync::atomic::Ordering = std::sync::atomic::Ordering::Relaxed;

impl State {
    fn insert(&mut self, id: u32, shape: Shape) {
        let shape = Arc::new(shape);
        for c in columns_of(&shape.mask) {
            self.refs[c].insert(id);
            if let Err(at) = self.referenced.binary_search(&c) {
                self.referenced.insert(at, c);
            }
        }
        match shape.indexed {
            Some(c) => {
                self.indexed_on[c] += 1;
                self.live_keys += shape.key_hashes.len();
                if self.presence.inserted() + shape.key_hashes.len() > self.presence.capacity() {
                    self.rebuild_presence(shape.key_hashes.len());
                }
                for &h in shape.key_hashes.iter() {
                    self.presence.insert(h);
                }
            }
            None => {
                let at = self.scanned.partition_point(|(s, _)| *s < id);
                self.scanned.insert(at, (id, shape.clone()));
            }
        }
        self.shapes.insert(id, shape);
    }

    fn remove(&mut self, id: u32) -> Option<Arc<Shape>> {
        let shape = self.shapes.remove(&id)?;
        for c in columns_of(&shape.mask) {
            self.refs[c].remove(&id);
            if self.refs[c].is_empty() {
                self.referenced.retain(|&r| r != c);
            }
        }
        match shape.indexed {
            Some(c) => {
                self.indexed_on[c] -= 1;
                self.live_keys -= shape.key_hashes.len();
                // more stale keys than live ones: rebuild so false positives stay rare
                if self.presence.inserted() > 2 * self.live_keys + 1024 {
                    self.rebuild_presence(0);
                }
            }
            None => {
                if let Ok(at) = self.scanned.binary_search_by_key(&id, |(s, _)| *s) {
                    self.scanned.remove(at);
                }
            }
        }
        Some(shape)
    }

    /// Room for `shapes` more shapes with `keys` more index keys.
    fn reserve(&mut self, shapes: usize, keys: usize) {
        self.shapes.reserve(shapes);
        if self.presence.inserted() + keys > self.presence.capacity() {
            self.rebuild_presence(keys);
        }
    }

    /// A fresh presence filter over the live shapes' keys, with room to double (`extra`
    /// keys are about to be inserted).
    fn rebuild_presence(&mut self, extra: usize) {
        let mut p = Presence::with_capacity(2 * (self.live_keys + extra));
        for shape in self.shapes.values() {
            for &h in shape.key_hashes.iter() {
                p.insert(h);
            }
        }
        self.presence = p;
    }
}

/// Parses Postgres text into `slot`; false if it is not a value of `ty` (or not UTF-8).
/// A text value reuses the buffer already in the slot.
fn parse_into(ty: ColumnType, text: &[u8], slot: &mut Option<Value>) -> bool {
    let Ok(text) = std::str::from_utf8(text) else {
        return false;
    };
    match (ty, slot.as_mut()) {
        (ColumnType::Text, Some(Value::Text(buf))) => {
            buf.clear();
            buf.push_str(text);
            true
        }
        _ => match ty.parse(text) {
            Some(v) => {
                *slot = Some(v);
                true
            }
            None => false,
        },
    }
}

/// The index key of `value` in `column`: column id, a type tag, the canonical value bytes.
fn encode_key(column: usize, value: &Value, out: &mut KeyBuf) {
    out.extend_from_slice(&(column as u16).to_le_bytes());
    match value {
        Value::Int(i) => {
            out.push(1);
            out.extend_from_slice(&i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(2);
            let bits = if f.is_nan() {
                f64::NAN.to_bits()
            } else {
                f.to_bits()
            };
            out.extend_from_slice(&bits.to_le_bytes());
        }
        Value::Bool(b) => out.extend_from_slice(&[3, u8::from(*b)]),
        Value::Text(s) => {
            out.push(4);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Uuid(u) => {
            out.push(5);
            out.extend_from_slice(&u.to_le_bytes());
        }
    }
}

/// Columns whose value differs between the two rows (a value that did not parse differs
/// from everything, itself included: it is routed conservatively anyway).
fn changed_columns(a: &Row, b: &Row) -> Bits {
    let mut changed: Bits = smallvec::smallvec![0; a.bad.len()];
    for (c, (x, y)) in a.values.iter().zip(&b.values).enumerate() {
        let same = match (x, y) {
            (None, None) => !bit(&a.bad, c) && !bit(&b.bad, c),
            (Some(x), Some(y)) => compare(x, y) == Ordering::Equal,
            _ => false,
        };
        if !same {
            set_bit(&mut changed, c);
        }
    }
    changed
}

fn bitset_words(bits: usize) -> usize {
    bits.div_ceil(64)
}

fn bit(set: &[u64], i: usize) -> bool {
    set.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
}

fn set_bit(set: &mut [u64], i: usize) {
    set[i / 64] |= 1 << (i % 64);
}

fn intersects(a: &[u64], b: &[u64]) -> bool {
    a.iter().zip(b).any(|(x, y)| x & y != 0)
}

fn columns_of(mask: &[u64]) -> impl Iterator<Item = usize> + '_ {
    mask.iter().enumerate().flat_map(|(w, &bits)| {
        (0..64)
            .filter(move |b| bits & (1 << b) != 0)
            .map(move |b| w * 64 + b)
    })
}

fn busy() -> Error {
    Error::WouldBlock {
        reason: "another shape is being added or removed",
    }
}
