//! The batched read path ([`Reader::route_batch`]): a transaction's changes routed in
//! phases over a chunk of them, so that the presence filter's and the index's cache misses
//! of many changes overlap, and a change that finds nothing costs its probes and no more:
//!
//! ```text
//! chunk of ≤ 64 changes                                       (planning: `route_plan`)
//!  [A] plan    per row: parse the probed columns (`parse_probed`, as a route does); per
//!              index slot with a value (`route_row`'s order, an update's new row only where
//!              its text changed): its keys — the column key, `lower`/`upper` of it, each
//!              array element — laid end to end
//!      hash    every key's presence hash, its filter block prefetched (a pass of its own:
//!              see `ProbePlan::hash`)
//!  [B] test    every key against the presence filter (its block loaded by now)
//!  [C] lookup  the keys that passed, in one `Index::lookup_many` (`lookup_into` for one)
//!  [D] route   a change with candidates, with a probed value that did not parse, a
//!              truncate, or any change of a router with ordered or scanned shapes: the
//!              route of one change (`route_in`), its probes answered from [C] (`Planned`);
//!              every other change affects no shape
//! ```
//!
//! [D] parses a routed change's probed columns again (~10 ns each): keeping every change's
//! parsed row from [A] to [D] cost more in a miss-heavy batch than it saves (a 64-change
//! chunk's rows are ~90 KB to start and move). The batch's buffers are kept by the
//! router between calls (a reader lives for one NIF call; `ScratchPool`).
//!
//! The rows are `RowCells` sources ([`Reader::route_batch_cells`]; [`Reader::route_batch`]
//! over `RowText` slices): [A] reads a row's probed cells, [D] the rest a route asks for.
//!
//! The answers are those of [`Reader::route`] change by change (`tests/router_route_batch.rs`
//! holds it to that): [A] makes exactly the probes `route_row` would make, in its order, and
//! [D] is `route_row` itself. The metrics count as one by one, but for the latency histogram:
//! one sample per chunk, its mean per change. Subquery views are not batched: a router over
//! several tables routes its changes one at a time (`subqueries`, `linked_route`).

use super::route::Reader;
use super::route_plan::ProbePlan;
use super::row::{ParsedRows, RowText};
use super::shapes::State;
use super::{Change, ChangeCells};
use crate::Result;
use parking_lot::Mutex;
use std::time::Instant;

/// Changes planned together: their probes' filter blocks are asked for a pass before they are
/// tested (64 lines in flight at most), and one `lookup_many` takes their passes.
const CHUNK: usize = 64;

/// The answers of a batch of changes ([`Reader::route_batch`]): each change's sorted shape
/// ids, stored flat; made with [`Routes::keeping`], each change's kept ids too (see
/// [`Reader::route_keep`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Routes {
    ids: Vec<u32>,
    ends: Vec<usize>,
    /// The kept ids, when asked for ([`Routes::keeping`]).
    kept: Option<Box<Routes>>,
}

impl Routes {
    /// Routes that also hold, per change, the ids whose WHERE holds on the row after it.
    pub fn keeping() -> Routes {
        Routes {
            kept: Some(Box::default()),
            ..Routes::default()
        }
    }

    /// Whether the kept ids are asked for.
    pub fn keeps(&self) -> bool {
        self.kept.is_some()
    }

    /// Changes answered.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether no change was answered.
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The sorted ids of the shapes the `i`-th change affects.
    pub fn get(&self, i: usize) -> &[u32] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.ids[start..self.ends[i]]
    }

    /// The sorted ids of [`Routes::get`]`(i)` whose WHERE holds on the row after the `i`-th
    /// change (empty unless made with [`Routes::keeping`]).
    pub fn kept(&self, i: usize) -> &[u32] {
        self.kept.as_ref().map_or(&[], |k| k.get(i))
    }

    /// Each change's ids, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = &[u32]> {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Forgets every answer (keeps the buffers).
    pub fn clear(&mut self) {
        self.ids.clear();
        self.ends.clear();
        if let Some(k) = &mut self.kept {
            k.clear();
        }
    }

    /// Appends a change's answer and (when kept) its kept ids.
    fn push(&mut self, ids: &[u32], kept: &[u32]) {
        self.ids.extend_from_slice(ids);
        self.ends.push(self.ids.len());
        if let Some(k) = &mut self.kept {
            k.push(kept, &[]);
        }
    }
}

/// The candidates of a batched change's probes, found before it is routed: per probe (an
/// index slot with a value, in the order `route_row` meets them), its span of `handles`.
#[derive(Default)]
pub(super) struct Planned {
    /// Whether `route_row` takes its probes' candidates from here.
    pub(super) on: bool,
    /// Every probe's candidates, flat.
    pub(super) handles: Vec<u32>,
    /// Per probe of the batch: its candidates in `handles`.
    pub(super) spans: Vec<(u32, u32)>,
    /// The next probe's span.
    pub(super) next: usize,
}

impl Planned {
    /// Appends the next probe's candidates to `found`.
    pub(super) fn take_into(&mut self, found: &mut Vec<u32>) {
        if let Some(&(start, end)) = self.spans.get(self.next) {
            found.extend_from_slice(&self.handles[start as usize..end as usize]);
        }
        debug_assert!(
            self.next < self.spans.len(),
            "a probe the batch did not plan"
        );
        self.next += 1;
    }
}

/// A batch's buffers, reused from chunk to chunk and from call to call (`ScratchPool`).
#[derive(Default)]
struct BatchScratch {
    /// The rows of the change being planned or routed.
    rows: ParsedRows,
    plan: ProbePlan,
    /// The probes' candidates, lent to the reader's scratch while a batch routes.
    planned: Planned,
    /// One change's answer in [D].
    out: Vec<u32>,
    /// Its kept ids, when the routes keep them.
    keep: Vec<u32>,
}

/// A router's batch buffers between calls (a NIF call's reader is new each call): kept by the
/// router rather than per thread, so that they go with it (no thread-local state in a
/// library loaded into someone else's VM) — one per routing thread at most, `KEPT_BUFFERS`
/// in all.
#[derive(Default)]
pub(super) struct ScratchPool(Mutex<Vec<BatchScratch>>);

/// Batch buffers a router keeps between calls.
const KEPT_BUFFERS: usize = 8;

impl ScratchPool {
    fn take(&self) -> BatchScratch {
        self.0.lock().pop().unwrap_or_default()
    }

    fn give(&self, b: BatchScratch) {
        let mut kept = self.0.lock();
        if kept.len() < KEPT_BUFFERS {
            kept.push(b);
        }
    }
}

/// Candidates a thread's batch buffers keep room for between calls (a batch that found more,
/// a wide fan-out, gives the excess back).
const KEPT_HANDLES: usize = 1 << 16;

impl BatchScratch {
    /// Gives back what a batch of unusual size left.
    fn trim(&mut self) {
        for v in [
            &mut self.plan.handles,
            &mut self.planned.handles,
            &mut self.out,
            &mut self.keep,
        ] {
            if v.capacity() > KEPT_HANDLES {
                *v = Vec::new();
            }
        }
    }
}

impl Reader<'_> {
    /// [`Reader::route`] of each change, in order, appended to `routes` ([`Reader::route_keep`]
    /// for routes made with [`Routes::keeping`]): the same answers,
    /// routed in phases over chunks of changes (see the module doc). On an error, `routes`
    /// holds the changes before the first that failed.
    pub fn route_batch(&mut self, changes: &[Change], routes: &mut Routes) -> Result<()> {
        let mut texts: Vec<[&RowText; 2]> = Vec::with_capacity(changes.len().min(CHUNK));
        for chunk in changes.chunks(CHUNK) {
            texts.clear();
            texts.extend(chunk.iter().map(super::route::texts));
            let mut cells: Vec<ChangeCells> = (chunk.iter().zip(&mut texts))
                .map(|(change, [a, b])| super::route::cells_of(change, a, b))
                .collect();
            self.route_batch_cells(&mut cells, routes)?;
        }
        Ok(())
    }

    /// [`Reader::route_batch`] of changes whose cells are read from sources ([`RowCells`](super::RowCells)),
    /// each only when the batch needs it: a row's probed cells while the chunk is planned,
    /// the others when its change is routed (as [`Reader::route_cells`] reads them). On an
    /// error, `routes` holds the changes before the first that failed (a source's refusal
    /// included: the changes before it were routed, so the first refusal in route order is
    /// the one reported).
    pub fn route_batch_cells(
        &mut self,
        changes: &mut [ChangeCells<'_, '_>],
        routes: &mut Routes,
    ) -> Result<()> {
        self.router.check_open()?;
        let mut b = self.router.batches.take();
        std::mem::swap(&mut self.scratch.planned, &mut b.planned);
        b.plan.start(&self.state);
        let mut r = Ok(());
        for chunk in changes.chunks_mut(CHUNK) {
            r = self.route_chunk(chunk, &mut b, routes);
            if r.is_err() {
                break;
            }
        }
        std::mem::swap(&mut self.scratch.planned, &mut b.planned);
        b.trim();
        self.router.batches.give(b);
        r
    }

    fn route_chunk(
        &mut self,
        chunk: &mut [ChangeCells<'_, '_>],
        b: &mut BatchScratch,
        routes: &mut Routes,
    ) -> Result<()> {
        let started = Instant::now();
        let st: &State = &self.state;
        let p = &mut b.plan;
        p.clear();
        // [A]
        let mut failed = None;
        for change in chunk.iter_mut() {
            match p.change(st, change, &mut b.rows) {
                Ok(full) => p.changes.push((p.probes.len() as u32, full)),
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        p.hash(st);
        // [B]
        let counts = &mut self.scratch.counts;
        for (k, key) in p.keys.iter().enumerate() {
            if st.presence.may_contain(key.hash) {
                p.passing.push(k as u32);
            }
        }
        counts.presence_probes += p.keys.len() as u64;
        counts.presence_passes += p.passing.len() as u64;
        // [C]
        if let (Some(index), false) = (self.router.index.get(), p.passing.is_empty()) {
            // one key: the single lookup (its prefilter, no batch set-up); more: their
            // misses overlap (all hits at 1M shapes: ~5-10% less per change than one by one)
            if let [k] = p.passing[..] {
                let start = p.handles.len() as u32;
                let (s, e) = p.keys[k as usize].bytes;
                index.lookup_into(&p.key_bytes[s as usize..e as usize], &mut p.handles)?;
                p.keys[k as usize].found = (start, p.handles.len() as u32);
            } else {
                let keys: Vec<&[u8]> = p.passing.iter().map(|&k| p.key_bytes(k)).collect();
                let batch = index.lookup_many(&keys)?;
                for (i, &k) in p.passing.iter().enumerate() {
                    let start = p.handles.len() as u32;
                    p.handles.extend_from_slice(batch.get(i));
                    p.keys[k as usize].found = (start, p.handles.len() as u32);
                }
            }
        }
        counts.presence_false_positives += p
            .passing
            .iter()
            .filter(|&&k| {
                let (s, e) = p.keys[k as usize].found;
                s == e
            })
            .count() as u64;
        // each probe's candidates, as `Router::probe` appends them (none found, none to route:
        // a chunk of misses skips this)
        let found_any = !p.handles.is_empty();
        let every = !st.ordered.is_empty() || !st.scanned.is_empty();
        let routes_some = found_any || every || p.changes.iter().any(|&(_, full)| full);
        let planned = &mut self.scratch.planned;
        planned.handles.clear();
        planned.spans.clear();
        let mut k0 = 0;
        for &(keys_end, dedup) in p.probes.iter().filter(|_| routes_some) {
            let start = planned.handles.len();
            for key in &p.keys[k0..keys_end as usize] {
                let (s, e) = key.found;
                planned
                    .handles
                    .extend_from_slice(&p.handles[s as usize..e as usize]);
            }
            if dedup {
                let found = &mut planned.handles[start..];
                found.sort_unstable();
                let kept = dedup_sorted(found);
                planned.handles.truncate(start + kept);
            }
            planned
                .spans
                .push((start as u32, planned.handles.len() as u32));
            k0 = keys_end as usize;
        }
        // [D]
        let mut first_probe = 0;
        for (change, &(probes_end, full)) in chunk.iter_mut().zip(&p.changes) {
            let probes = first_probe..probes_end as usize;
            first_probe = probes.end;
            let spans = &self.scratch.planned.spans;
            let found = found_any && spans[probes.clone()].iter().any(|(s, e)| s != e);
            if !(full || every || found) {
                routes.push(&[], &[]);
                continue;
            }
            self.scratch.planned.on = true;
            self.scratch.planned.next = probes.start;
            let cells = match change {
                ChangeCells::Insert(cells) => ChangeCells::Insert(&mut **cells),
                ChangeCells::Delete(cells) => ChangeCells::Delete(&mut **cells),
                ChangeCells::Update(old, new) => ChangeCells::Update(&mut **old, &mut **new),
                ChangeCells::Truncate => ChangeCells::Truncate,
            };
            let scratch = &mut self.scratch;
            let rows = &mut b.rows;
            let keep = routes.keeps().then_some(&mut b.keep);
            let r = (self.router).route_in(st, cells, (&mut b.out, keep), scratch, rows, None);
            scratch.planned.on = false;
            r?;
            debug_assert_eq!(scratch.planned.next, probes.end, "probes planned, not made");
            routes.push(&b.out, &b.keep);
        }
        let n = p.changes.len() as u64;
        self.scratch.counts.changes += n;
        let ended = Instant::now();
        let ns = ended.duration_since(started).as_nanos() as u64;
        if let Some(mean) = ns.checked_div(n) {
            self.router.counters().record_latency(mean);
            self.scratch.counts.timed += n;
            self.scratch.counts.route_ns += ns;
        }
        self.last = Some(ended);
        failed.map_or(Ok(()), Err)
    }
}

/// Moves the distinct values of the sorted `found` to its front; how many there are.
fn dedup_sorted(found: &mut [u32]) -> usize {
    let mut kept = 0;
    for i in 0..found.len() {
        if kept == 0 || found[i] != found[kept - 1] {
            found[kept] = found[i];
            kept += 1;
        }
    }
    kept
}
