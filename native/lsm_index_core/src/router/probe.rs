//! What a row's probed value finds: the columns a route probes, the shapes a bad value there
//! reaches, and the equality index's candidates of a value (its key, `lower`/`upper` of it,
//! its array's elements), behind the presence filter.

use super::bits::{bit, intersects};
use super::groups::Template;
use super::route::Scratch;
use super::row::Row;
use super::shapes::{slot_key, SlotKey, State};
use super::{key_hasher, Router};
use crate::key::column_key;
use crate::predicate::Value;
use crate::Result;

/// The columns a route probes: its index slots' and its view tuples' (a column may repeat).
pub(super) fn probed(st: &State) -> impl Iterator<Item = usize> + '_ {
    let slots = st.indexed_on.iter().map(|&(slot, _)| slot_key(slot).column);
    let views = (!st.view_slots.is_empty()).then(|| st.view_slots.columns());
    slots
        .chain(views.into_iter().flatten())
        .chain(st.ordered_reads())
}

/// Whether a shape of `template` is found through a column of `bad` (an index slot's or a
/// subquery view tuple's).
pub(super) fn found_through(template: &Template, bad: &[u64]) -> bool {
    // found through a range or a literal: as a scanned shape, through any column it reads
    // (the map engine scans it; see `State::ordered_reads`)
    if template.ordered.is_some() && intersects(&template.mask, bad) {
        return true;
    }
    let slots = template.indexed.iter().map(|&s| slot_key(s).column);
    let tuples = template
        .view_plans
        .iter()
        .flat_map(|p| p.columns.iter().copied());
    slots.chain(tuples).any(|c| bit(bad, c))
}

impl Router {
    /// Appends to `found` the ids filed under the keys of value `v` in index slot `slot`
    /// (`key`: what the slot keys): the value's own key, `lower`/`upper` of a text value, or
    /// each element of an array (then sorted and deduplicated: a shape found through two
    /// elements is one candidate).
    pub(super) fn probe(
        &self,
        st: &State,
        slot: usize,
        key: SlotKey,
        v: &Value,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) -> Result<()> {
        match (key.element, key.func, v) {
            (true, _, Value::Array(elements)) => {
                for e in elements.iter().flatten() {
                    self.probe_key(st, slot, e, scratch, found)?;
                }
                if elements.len() > 1 {
                    found.sort_unstable();
                    found.dedup();
                }
            }
            (true, _, _) => {}
            (false, None, v) => self.probe_key(st, slot, v, scratch, found)?,
            // `lower(col) = 'x'`: the key of the function's result, folded into a reused buffer
            (false, Some(f), Value::Text(text)) => {
                let mut folded = Value::Text(std::mem::take(&mut scratch.folded));
                if let Value::Text(buf) = &mut folded {
                    f.fold_into(text, buf);
                }
                let probed = self.probe_key(st, slot, &folded, scratch, found);
                if let Value::Text(buf) = folded {
                    scratch.folded = buf;
                }
                probed?;
            }
            (false, Some(_), _) => {}
        }
        Ok(())
    }

    /// Appends to `found` the ids filed under `v`'s key in slot `slot`: the presence filter
    /// first, the index only when it may hold the key.
    fn probe_key(
        &self,
        st: &State,
        slot: usize,
        v: &Value,
        scratch: &mut Scratch,
        found: &mut Vec<u32>,
    ) -> Result<()> {
        column_key(slot, v, &mut scratch.key);
        scratch.counts.presence_probes += 1;
        if !st.presence.may_contain(key_hasher().hash_one(&scratch.key)) {
            return Ok(());
        }
        scratch.counts.presence_passes += 1;
        let before = found.len();
        if let Some(index) = self.index.get() {
            index.lookup_into(&scratch.key, found)?;
        }
        if found.len() == before {
            scratch.counts.presence_false_positives += 1;
        }
        Ok(())
    }
}

/// Parses the columns the route of `row` probes: index slots', those in `changed` for an
/// update's new row (the others reuse the old row's candidates); and always view tuples'
/// and the columns shapes found through an ordered index read (an update's new row is
/// looked up in the views and the ordered indexes again: their candidates are not kept
/// from the old row, so an unchanged tuple column must hold its value — a shape found
/// through its view whose other columns changed is a candidate of the new row too).
pub(super) fn parse_probed(
    st: &State,
    row: &mut Row<'_, '_>,
    changed: Option<&[u64]>,
) -> Result<()> {
    for c in probed(st) {
        if changed.is_none_or(|ch| bit(ch, c)) {
            row.parse_column(c)?;
        }
    }
    if !st.view_slots.is_empty() {
        for c in st.view_slots.columns() {
            row.parse_column(c)?;
        }
    }
    for c in st.ordered_reads() {
        row.parse_column(c)?;
    }
    Ok(())
}
