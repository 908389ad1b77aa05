//! A persistent router's open and its snapshot: the catalog read, then either the snapshot
//! restored and the catalog's records after its stamp replayed, or — no usable snapshot —
//! every live shape of the catalog compiled and published again; and the snapshot written
//! back (at close, and at an open that replayed much or rewrote the catalog).
//!
//! ```text
//! open ─▶ router.snap decoded (any damage, another table: ignored; a table whose columns
//!        are the first of the router's — columns added since — is this one)
//!        ─▶ catalog opened with its stamp (columns the router has beyond it recorded)
//!        ├─ the stamp covers the catalog's prefix ─▶ one compile per template ─▶ groups,
//!        │   bookkeeping, presence, ordered indexes restored ─▶ ONE index add_many
//!        │   ─▶ the tail records replayed through add/remove
//!        └─ else ─▶ every live shape compiled (parallel chunks) and published
//! close ─▶ catalog fsync ─▶ state captured (writer + state lock) ─▶ router.snap replaced
//! ```

use super::catalog::{table_text, Catalog, Replay, Shapes, Stamp, Table};
use super::restore::{capture, form_fingerprint};
use super::snapshot::{self, Snapshot};
use super::state::State;
use super::{Router, REPLAY_CHUNK};
use crate::index::Config;
use crate::predicate::{CaseFolding, ColumnType};
use crate::wal::SyncMode;
use crate::Result;
use parking_lot::{Mutex, MutexGuard};
use std::path::Path;
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
    /// [`Router::flush`]). `columns` are the table's: the catalog's (those it was made with,
    /// then those [`Router::add_column`] added), then maybe more — added while the router
    /// was closed, recorded now as `add_column` would; other columns are `TableMismatch`.
    /// Rows as narrow as the table was made are read, their missing columns NULL.
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
        let table = Table::new(&columns, folding);
        let file = match std::fs::read(dir.join(snapshot::FILE)) {
            Ok(bytes) => Some(bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                report.snapshot_ignored = Some(format!("unreadable: {e}"));
                None
            }
        };
        // a snapshot of the table with these columns, or with the first of them (others were
        // added since): how many it had
        let snap = file.as_deref().and_then(|b| match snapshot::decode(b) {
            Ok(s) => match table.prefix_of(s.table) {
                Some(then) if then > 0 => Some((s, then)),
                _ => ignored(&mut report, "made for another table"),
            },
            Err(e) => ignored(&mut report, &e.to_string()),
        });
        report.snapshot_read = clock.elapsed();
        let clock = Instant::now();
        let covered = snap.as_ref().map(|(s, then)| (s.stamp, *then));
        let (mut catalog, mut replay) = Catalog::open(dir, &columns, folding, sync, covered)?;
        report.catalog_read = clock.elapsed();
        let mut snapshot_stamp = None;
        if let (Replay::Tail(_), Some((snap, _))) = (&replay, &snap) {
            match router.restored_state(snap, &mut report) {
                Ok(state) => {
                    router.install(state, &mut report)?;
                    report.from_snapshot = true;
                    snapshot_stamp = covered.map(|(stamp, _)| stamp);
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
        // rows as narrow as the table was made are read (columns added since: NULL)
        router.state.get_mut().narrowest = catalog.created_columns();
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
            let columns = st.columns.clone();
            let table = table_text(&columns, self.folding);
            let fingerprint = |definition: &str| {
                let form = self.compile_definition(definition, &columns).ok()?;
                Some(form_fingerprint(&form))
            };
            match capture(&mut st, stamp, &table, fingerprint) {
                Some(snap) => snapshot::encode(&snap),
                None => return Ok(false),
            }
        };
        let dir = p.catalog.dir();
        snapshot::write_bytes(&dir, &bytes)?;
        p.snapshot = Some(stamp);
        Ok(true)
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
fn ignored<'a>(report: &mut OpenReport, why: &str) -> Option<(Snapshot<'a>, usize)> {
    report.snapshot_ignored = Some(why.to_string());
    None
}
