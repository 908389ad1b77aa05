//! A persistent router's open and its snapshot: the catalog read, then either the snapshot
//! restored and the catalog's records after its stamp replayed, or — no usable snapshot —
//! every live shape of the catalog compiled and published again; and the snapshot written
//! back (at close, and at an open that replayed much or rewrote the catalog).
//!
//! ```text
//! open ─▶ router.snap decoded (any damage: ignored) ─▶ catalog opened with its stamp
//!        ├─ the stamp covers the catalog's prefix ─▶ one compile per template ─▶ groups,
//!        │   bookkeeping, presence, ordered indexes restored ─▶ ONE index add_many
//!        │   ─▶ the tail records replayed through add/remove
//!        └─ else ─▶ every live shape compiled (parallel chunks) and published
//! close ─▶ catalog fsync ─▶ state captured (writer + state lock) ─▶ router.snap replaced
//! ```

use super::catalog::{table_text, Catalog, Replay, Shapes, Stamp};
use super::groups::{Group, Template};
use super::ordered::{OrderedKey, OrderedSlots};
use super::patterns::InfixIndex;
use super::ranges::Ranges;
use super::snapshot::{self, GroupPart, RangePart, Snapshot};
use super::state::State;
use super::{Router, REPLAY_CHUNK};
use crate::index::Config;
use crate::predicate::{CaseFolding, ColumnType};
use crate::wal::SyncMode;
use crate::{FileKind, Result};
use parking_lot::{Mutex, MutexGuard};
use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Records an open replays beyond which it writes a snapshot at once (rather than at
/// close), so that a crash does not make the next open replay them again.
const SNAPSHOT_AFTER: usize = REPLAY_CHUNK;

/// What a persistent router's open did, and where its time went.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Whether the state came from the snapshot (else from a full replay of the catalog).
    pub from_snapshot: bool,
    /// Why a snapshot file that was there was not used (damaged, stale, another table).
    pub snapshot_ignored: Option<String>,
    /// Catalog records replayed after the snapshot's stamp.
    pub tail_records: usize,
    /// Shapes compiled by a full replay.
    pub replayed_shapes: usize,
    /// Whether the open rewrote the catalog (mostly dead records).
    pub rewrote_catalog: bool,
    /// Whether the open wrote a new snapshot.
    pub wrote_snapshot: bool,
    /// Reading and decoding the snapshot file.
    pub snapshot_read: Duration,
    /// Opening the catalog (reading it, checking the stamp).
    pub catalog_read: Duration,
    /// Compiling one definition per template of the snapshot.
    pub template_compiles: Duration,
    /// Restoring the groups, their bookkeeping and the ordered indexes.
    pub state_rebuild: Duration,
    /// The equality index's one bulk load of the groups' keys.
    pub index_load: Duration,
    /// Replaying catalog records (the tail, or everything).
    pub replay: Duration,
}

/// A persistent router's files while it is open: the catalog it appends to, the stamp of
/// the snapshot on disk (when it covers the catalog up to there), and what the open did.
pub(super) struct Persisted {
    pub(super) catalog: Catalog,
    snapshot: Option<Stamp>,
    report: OpenReport,
}

impl Router {
    /// Opens (creating if needed) the persistent router in `dir`: its state is restored
    /// from the snapshot `router.snap` and the catalog records after it, or — no usable
    /// snapshot — rebuilt from the whole shape catalog (see `catalog`, `snapshot`); every
    /// later add and remove is appended to the catalog, durable as `sync` says (`Flush`: on
    /// [`Router::flush`]).
    pub fn open(
        dir: &Path,
        columns: Vec<(String, ColumnType)>,
        folding: CaseFolding,
        config: Config,
        sync: SyncMode,
    ) -> Result<Router> {
        let mut router = Router::new(columns, folding, config)?;
        let columns = router.columns();
        let mut report = OpenReport::default();
        let clock = Instant::now();
        let table = table_text(&columns, folding);
        let file = match std::fs::read(dir.join(snapshot::FILE)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.snapshot_ignored = Some(format!("unreadable: {e}"));
                None
            }
        };
        let snap = file.as_deref().and_then(|b| match snapshot::decode(b) {
            Ok(s) if s.table == table => Some(s),
            Ok(_) => ignored(&mut report, "made for another table"),
            Err(e) => ignored(&mut report, &e.to_string()),
        });
        report.snapshot_read = clock.elapsed();
        let clock = Instant::now();
        let covered = snap.as_ref().map(|s| s.stamp);
        let (mut catalog, mut replay) = Catalog::open(dir, &columns, folding, sync, covered)?;
        report.catalog_read = clock.elapsed();
        let mut snapshot_stamp = None;
        if let (Replay::Tail(_), Some(snap)) = (&replay, &snap) {
            match router.restored_state(snap, &mut report) {
                Ok(state) => {
                    router.install(state, &mut report)?;
                    report.from_snapshot = true;
                    snapshot_stamp = covered;
                }
                Err(why) => {
                    // it matched the catalog yet does not restore: replay the catalog
                    report.snapshot_ignored = Some(why);
                    drop(catalog);
                    (catalog, replay) = Catalog::open(dir, &columns, folding, sync, None)?;
                }
            }
        } else if snap.is_some() {
            report.snapshot_ignored = Some("it does not cover the catalog".into());
        }
        let clock = Instant::now();
        let replayed = match replay {
            Replay::Tail(tail) => {
                report.tail_records = tail.len();
                router.replay_tail(dir, tail)?;
                report.tail_records
            }
            Replay::Full(shapes) => {
                report.replayed_shapes = shapes.len();
                router.replay_full(dir, shapes)?;
                report.replayed_shapes
            }
        };
        report.replay = clock.elapsed();
        if catalog.rewrite_due(router.shape_count()) {
            catalog.rewrite_live()?;
            report.rewrote_catalog = true;
        }
        let write = report.rewrote_catalog || replayed >= SNAPSHOT_AFTER;
        router.catalog = Mutex::new(Some(Box::new(Persisted {
            catalog,
            snapshot: snapshot_stamp,
            report,
        })));
        router.persistent = true;
        if write {
            // an accelerator: failing to write it leaves the next open a longer replay
            let wrote = router.write_snapshot().unwrap_or(false);
            if let Some(p) = router.catalog.get_mut().as_mut() {
                p.report.wrote_snapshot = wrote;
            }
        }
        Ok(router)
    }

    /// What the open of this persistent router did (`None` in memory, or once closed).
    pub fn open_report(&self) -> Option<OpenReport> {
        self.catalog.lock().as_ref().map(|p| p.report.clone())
    }

    /// Writes the snapshot of a persistent router now (the catalog fsynced first): whether
    /// it was written — not when the router is in memory, its state holds something a
    /// snapshot cannot (subquery views), its catalog failed, or the snapshot on disk covers
    /// the catalog as it is already. [`Router::close`] calls it; a caller may too.
    pub fn write_snapshot(&self) -> Result<bool> {
        self.check_open()?;
        let w = self.writer.lock();
        let mut files = self.catalog.lock();
        match files.as_mut() {
            Some(p) => self.snapshot_locked(&w, p),
            None => Ok(false),
        }
    }

    /// [`Router::write_snapshot`] under the writer lock `_w`, of the files `p`.
    pub(super) fn snapshot_locked(
        &self,
        _w: &MutexGuard<'_, ()>,
        p: &mut Persisted,
    ) -> Result<bool> {
        let Some(stamp) = p.catalog.stamp() else {
            return Ok(false);
        };
        if p.snapshot == Some(stamp) {
            return Ok(false);
        }
        p.catalog.sync()?;
        let bytes = {
            let mut st = self.state.write();
            let table = table_text(&st.columns.clone(), self.folding);
            match capture(&mut st, stamp, &table) {
                Some(snap) => snapshot::encode(&snap),
                None => return Ok(false),
            }
        };
        let dir = p.catalog.dir();
        snapshot::write_bytes(&dir, &bytes)?;
        p.snapshot = Some(stamp);
        Ok(true)
    }

    /// The state a snapshot holds, checked against its templates compiled again (one
    /// definition each); `Err` says why it cannot be restored.
    fn restored_state(
        &self,
        snap: &Snapshot,
        report: &mut OpenReport,
    ) -> std::result::Result<State, String> {
        let clock = Instant::now();
        let columns = self.columns();
        let mut templates = Vec::with_capacity(snap.templates.len());
        for definition in &snap.templates {
            let form = (self.prepare(definition, &columns)).map_err(|e| e.to_string())?;
            let template = Arc::new(form.template);
            template.source.note(definition);
            templates.push(template);
        }
        report.template_compiles = clock.elapsed();
        let clock = Instant::now();
        let mut state = State::new(columns);
        let shapes: usize = snap.groups.iter().map(|g| g.ids.len()).sum();
        let keys = snap.groups.iter().filter(|g| !g.keys.is_empty()).count();
        state.reserve(shapes, keys);
        let ordered = ordered_indexes(snap, &templates)?;
        let groups = snap.groups.iter().map(|part| {
            let template = templates
                .get(part.template as usize)
                .ok_or("no such template")?;
            let t = &**template;
            let kind = part
                .ordered
                .as_ref()
                .map(|k| matches!(k, OrderedKey::Infix(_)));
            if kind != t.ordered.map(|at| at.infix) || t.indexed.is_empty() && !part.keys.is_empty()
            {
                return Err(format!("group {} does not fit its template", part.handle));
            }
            let packed = Box::from(part.keys);
            let group = Group::restored(
                template.clone(),
                packed,
                part.ordered.clone(),
                part.ids.clone(),
            );
            Ok((
                part.handle,
                group.ok_or(format!("group {} is malformed", part.handle))?,
            ))
        });
        let groups: std::result::Result<Vec<_>, String> = groups.collect();
        if !snap.refused.windows(2).all(|w| w[0] < w[1]) {
            return Err("refused groups out of order".into());
        }
        state.restore(groups?, ordered, &snap.refused)?;
        report.state_rebuild = clock.elapsed();
        Ok(state)
    }

    /// Publishes the restored `state`, then writes its groups' keys to the equality index
    /// in one bulk load (no route sees this router yet).
    fn install(&self, state: State, report: &mut OpenReport) -> Result<()> {
        let clock = Instant::now();
        *self.state.write() = state;
        let st = self.state.read();
        let pairs: Vec<(&[u8], u32)> = (st.groups.iter())
            .flat_map(|(g, group)| group.keys().map(move |k| (k, g)))
            .collect();
        if !pairs.is_empty() {
            self.index()?.add_many(&pairs)?;
        }
        report.index_load = clock.elapsed();
        Ok(())
    }

    /// Replays every live shape of the catalog: compiled in chunks on all cores, each
    /// chunk's keys written in one batch, then published.
    fn replay_full(&self, dir: &Path, shapes: Shapes) -> Result<()> {
        let shapes: Vec<(u32, String)> = shapes.into_iter().collect();
        // about one key per shape: sized once instead of grown (and the filter rebuilt)
        self.state.write().reserve(shapes.len(), shapes.len());
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        for chunk in shapes.chunks(REPLAY_CHUNK) {
            let prepared = self.prepare_all(dir, chunk, threads)?;
            // no route can see this router yet: its groups are published before their keys
            let mut keys = Vec::new();
            {
                let mut st = self.state.write();
                for ((id, form), (_, definition)) in prepared.into_iter().zip(chunk) {
                    let placed = st.place(&form);
                    if placed.1 {
                        keys.extend(form.keys.iter().map(|k| (k.clone(), placed.0)));
                    }
                    st.insert(id, form, placed, definition);
                }
            }
            let pairs: Vec<(&[u8], u32)> = keys.iter().map(|(k, g)| (k.as_slice(), *g)).collect();
            if !pairs.is_empty() {
                self.index()?.add_many(&pairs)?;
            }
        }
        Ok(())
    }

    /// Replays the catalog records after a snapshot, in order, through the add and remove
    /// paths (the catalog not installed yet: nothing is appended again); the adds of each
    /// chunk are compiled on all cores first.
    fn replay_tail(&self, dir: &Path, tail: Vec<(u32, Option<String>)>) -> Result<()> {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get().min(8));
        let w = self.writer.lock();
        for chunk in tail.chunks(REPLAY_CHUNK) {
            let adds: Vec<(u32, String)> = (chunk.iter())
                .filter_map(|(id, d)| d.as_ref().map(|d| (*id, d.clone())))
                .collect();
            let mut forms = self
                .prepare_all(dir, &adds, threads)?
                .into_iter()
                .zip(&adds);
            for (id, definition) in chunk {
                if definition.is_none() {
                    self.remove_locked(&w, *id, true)?;
                } else if let Some(((id, form), (_, definition))) = forms.next() {
                    self.publish(&w, id, form, definition, None, true)?;
                }
            }
        }
        Ok(())
    }
}

/// Notes why the snapshot is not used; none is.
fn ignored<'a>(report: &mut OpenReport, why: &str) -> Option<Snapshot<'a>> {
    report.snapshot_ignored = Some(why.to_string());
    None
}

/// The snapshot of `st` as of the catalog's `stamp` (its table record `table`); `None`
/// when the state holds what a snapshot cannot: views, or a template whose source
/// definition is unknown.
fn capture<'a>(st: &'a mut State, stamp: Stamp, table: &'a str) -> Option<Snapshot<'a>> {
    let refused: Vec<u32> = st.refused().collect();
    let State {
        groups, ordered, ..
    } = st;
    let mut positions: HashMap<*const Template, u32> = HashMap::new();
    let mut templates = Vec::new();
    let mut parts = Vec::with_capacity(groups.len());
    for (g, group) in groups.iter() {
        let t = &group.template;
        if !group.views.is_empty() || !t.view_plans.is_empty() {
            return None;
        }
        let at = match positions.entry(Arc::as_ptr(t)) {
            Entry::Occupied(e) => *e.get(),
            Entry::Vacant(e) => {
                templates.push(t.source.get()?);
                *e.insert(templates.len() as u32 - 1)
            }
        };
        parts.push(GroupPart {
            handle: g,
            template: at,
            keys: group.packed_keys(),
            ordered: group.ordered.clone(),
            ids: group.ids.clone(),
        });
    }
    let (ranges, infixes) = ordered.parts();
    let ranges = (ranges.into_iter())
        .map(|(slot, (lo, hi, group))| RangePart {
            slot: slot as u32,
            lo: lo.into(),
            hi: hi.into(),
            group: group.into(),
        })
        .collect();
    let literals = (infixes.into_iter())
        .map(|(slot, index)| (slot as u32, index.literals().collect()))
        .collect();
    Some(Snapshot {
        stamp,
        table,
        templates,
        groups: parts,
        refused,
        ranges,
        literals,
    })
}

/// The ordered indexes a snapshot holds, each entry checked against its group: it exists,
/// its template files it in that slot's index under that key, it is filed once and not
/// refused; and every ordered group not refused is filed.
fn ordered_indexes(
    snap: &Snapshot,
    templates: &[Arc<Template>],
) -> std::result::Result<OrderedSlots, String> {
    let mut filed = vec![false; snap.groups.len()];
    let mut file = |g: u32, slot: u32, key: OrderedKey| {
        let at = (snap.groups.binary_search_by_key(&g, |p| p.handle)).ok();
        let fits = at.is_some_and(|at| {
            let part = &snap.groups[at];
            let t = templates.get(part.template as usize);
            let infix = matches!(key, OrderedKey::Infix(_));
            !filed[at]
                && part.ordered.as_ref() == Some(&key)
                && snap.refused.binary_search(&g).is_err()
                && t.is_some_and(|t| {
                    t.indexed.is_empty()
                        && t.ordered
                            .is_some_and(|o| (o.slot, o.infix) == (slot as usize, infix))
                })
        });
        match at {
            Some(at) if fits => {
                filed[at] = true;
                Ok(())
            }
            _ => Err(format!("an ordered entry of group {g} fits no group")),
        }
    };
    let mut ranges = Vec::with_capacity(snap.ranges.len());
    for r in &snap.ranges {
        let index = Ranges::from_parts(
            r.lo.to_vec(),
            r.hi.to_vec(),
            r.group.to_vec(),
            FileKind::RouterSnapshot,
            snapshot::FILE,
        )
        .map_err(|e| e.to_string())?;
        for ((&lo, &hi), &g) in r.lo.iter().zip(r.hi.iter()).zip(r.group.iter()) {
            file(g, r.slot, OrderedKey::Range(lo, hi))?;
        }
        ranges.push((r.slot as usize, index));
    }
    let mut infixes = Vec::with_capacity(snap.literals.len());
    for (slot, entries) in &snap.literals {
        for &(literal, g, refs) in entries {
            if refs != 1 {
                return Err(format!(
                    "literal {literal:?} of group {g} held {refs} times"
                ));
            }
            file(g, *slot, OrderedKey::Infix(literal.into()))?;
        }
        let index = InfixIndex::from_entries(entries.iter().copied()).map_err(|e| e.to_string())?;
        infixes.push((*slot as usize, index));
    }
    let slots = |s: &mut Vec<usize>| {
        s.sort_unstable();
        s.windows(2).all(|w| w[0] != w[1])
    };
    let unique = slots(&mut ranges.iter().map(|(s, _)| *s).collect())
        && slots(&mut infixes.iter().map(|(s, _)| *s).collect());
    let unfiled = (snap.groups.iter().zip(&filed)).any(|(part, &filed)| {
        let t = templates.get(part.template as usize);
        let ordered = t.is_some_and(|t| t.indexed.is_empty() && t.ordered.is_some());
        ordered && !filed && snap.refused.binary_search(&part.handle).is_err()
    });
    if !unique || unfiled {
        return Err("the ordered indexes do not hold their groups".into());
    }
    Ok(OrderedSlots::restored(ranges, infixes))
}
