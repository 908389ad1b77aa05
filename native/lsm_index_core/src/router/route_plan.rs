//! The planning phase of a batched route ([A] of `route_batch`): a chunk's rows parsed as a
//! route parses them, the probes `route_row` would make laid out as keys end to end, then
//! hashed and their presence filter blocks asked for; what the keys find is filled in by
//! the phases after ([B], [C]).

use super::bits::bit;
use super::probe::probed;
use super::row::{ParsedRows, Row};
use super::shapes::{slot_key, State};
use super::update::changed_columns;
use super::{key_hasher, ChangeCells};
use crate::key::{append_column_key, ColumnKey};
use crate::predicate::Value;
use crate::Result;

/// The probes of a chunk ([A]) and what they found ([B], [C]).
#[derive(Default)]
pub(super) struct ProbePlan {
    /// Per change: where its probes end in `probes`, and whether [D] must route it whatever
    /// they find.
    pub(super) changes: Vec<(u32, bool)>,
    /// Per probe: where its keys end in `keys`, and whether its candidates are sorted and
    /// deduplicated (an array's elements: a shape found through two is one candidate).
    pub(super) probes: Vec<(u32, bool)>,
    pub(super) keys: Vec<Key>,
    /// The keys' bytes, flat.
    pub(super) key_bytes: Vec<u8>,
    /// The keys the presence filter let through (indexes into `keys`).
    pub(super) passing: Vec<u32>,
    /// What the passing keys found, flat.
    pub(super) handles: Vec<u32>,
    key: ColumnKey,
    /// A text value lower- or upper-cased for a `lower(col)` slot's key.
    folded: String,
    /// The columns a route probes (`route::probed`, each once) and those it parses for the
    /// ordered indexes (`State::ordered_reads`): `parse_probed`'s, listed once per batch.
    probed: Vec<usize>,
    ordered_reads: Vec<usize>,
}

/// A probe's key: its bytes in `key_bytes`, its presence hash, its candidates in `handles`.
#[derive(Clone, Copy)]
pub(super) struct Key {
    pub(super) bytes: (u32, u32),
    pub(super) hash: u64,
    pub(super) found: (u32, u32),
}

impl ProbePlan {
    /// Lists the columns routes of `st` parse first.
    pub(super) fn start(&mut self, st: &State) {
        self.probed.clear();
        self.probed.extend(probed(st));
        self.probed.sort_unstable();
        self.probed.dedup();
        self.ordered_reads.clear();
        self.ordered_reads.extend(st.ordered_reads());
    }

    /// `parse_probed` of `row`, from the lists of `start`.
    fn parse(&self, row: &mut Row<'_, '_>, changed: Option<&[u64]>) -> Result<()> {
        for &c in &self.probed {
            if changed.is_none_or(|ch| bit(ch, c)) {
                row.parse_column(c)?;
            }
        }
        for &c in &self.ordered_reads {
            row.parse_column(c)?;
        }
        Ok(())
    }

    pub(super) fn clear(&mut self) {
        self.changes.clear();
        self.probes.clear();
        self.keys.clear();
        self.key_bytes.clear();
        self.passing.clear();
        self.handles.clear();
    }

    /// [A] for one change: its rows parsed into `rows` as a route parses them, and its probes
    /// planned. Whether [D] must route it whatever its probes find (a truncate, or a probed
    /// value that did not parse).
    pub(super) fn change(
        &mut self,
        st: &State,
        change: &mut ChangeCells<'_, '_>,
        rows: &mut ParsedRows,
    ) -> Result<bool> {
        let columns = &st.columns[..];
        match change {
            ChangeCells::Truncate => Ok(true),
            ChangeCells::Insert(cells) | ChangeCells::Delete(cells) => {
                let mut row = Row::new(&mut rows.old, &mut **cells, columns, st.narrowest)?;
                self.parse(&mut row, None)?;
                self.row(st, &row, None);
                Ok(row.any_bad())
            }
            ChangeCells::Update(old, new) => {
                // both rows checked before either is read, as `route_in` does
                Row::new(&mut rows.new, &mut **new, columns, st.narrowest)?;
                let mut row = Row::new(&mut rows.old, &mut **old, columns, st.narrowest)?;
                self.parse(&mut row, None)?;
                self.row(st, &row, None);
                let bad = row.any_bad();
                let mut row =
                    Row::new(&mut rows.new, &mut **new, columns, st.narrowest)?.after(&mut **old);
                let changed = changed_columns(st, &mut row)?;
                self.parse(&mut row, Some(&changed))?;
                self.row(st, &row, Some(&changed));
                Ok(bad || row.any_bad())
            }
        }
    }

    /// The probes `route_row` makes of `row` (see `Router::probe`): per index slot, unless
    /// the row is an update's new row whose column did not change (the old row's candidates
    /// are reused) or the value is NULL.
    fn row(&mut self, st: &State, row: &Row<'_, '_>, changed: Option<&[u64]>) {
        for &(slot, _) in &st.indexed_on {
            let key = slot_key(slot);
            if changed.is_some_and(|ch| !bit(ch, key.column)) {
                continue;
            }
            let Some(v) = row.value(key.column) else {
                continue;
            };
            let dedup = match (key.element, key.func, v) {
                (true, _, Value::Array(elements)) => {
                    for e in elements.iter().flatten() {
                        self.key(slot, e);
                    }
                    elements.len() > 1
                }
                (false, None, v) => {
                    self.key(slot, v);
                    false
                }
                (false, Some(f), Value::Text(text)) => {
                    let mut folded = Value::Text(std::mem::take(&mut self.folded));
                    if let Value::Text(buf) = &mut folded {
                        f.fold_into(text, buf);
                    }
                    self.key(slot, &folded);
                    if let Value::Text(buf) = folded {
                        self.folded = buf;
                    }
                    false
                }
                _ => false,
            };
            self.probes.push((self.keys.len() as u32, dedup));
        }
    }

    /// Plans the key of `v` in `slot` (hashed by [`ProbePlan::hash`]).
    fn key(&mut self, slot: usize, v: &Value) {
        let start = self.key_bytes.len();
        append_column_key(slot, v, &mut self.key_bytes, &mut self.key);
        self.keys.push(Key {
            bytes: (start as u32, self.key_bytes.len() as u32),
            hash: 0,
            found: (0, 0),
        });
    }

    /// Hashes every planned key and asks for its presence filter block. A pass of its own:
    /// hashed as it is written, a key is read back while its bytes are still in the store
    /// buffer, in stores of other widths than the hash's loads (a stall of ~15 cycles each).
    pub(super) fn hash(&mut self, st: &State) {
        let hasher = key_hasher();
        for key in &mut self.keys {
            let (start, end) = key.bytes;
            key.hash = hasher.hash_one(&self.key_bytes[start as usize..end as usize]);
            st.presence.prefetch(key.hash);
        }
    }

    pub(super) fn key_bytes(&self, k: u32) -> &[u8] {
        let (start, end) = self.keys[k as usize].bytes;
        &self.key_bytes[start as usize..end as usize]
    }
}
