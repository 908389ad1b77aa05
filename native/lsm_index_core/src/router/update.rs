//! An update's two rows: which columns changed (the new row's route skips shapes that read
//! none of them and reuses the old row's index candidates), and which of the shapes the
//! update is routed to the new row matches (`keep`: where the row is afterwards).

use super::bits::{bit, bitset_words, intersects, set_bit, Bits};
use super::probe::{found_through, probed};
use super::row::Row;
use super::shapes::State;
use crate::Result;

/// What changed in an update, `row` its new row (see [`Row::after`]): the probed columns'
/// text is compared now (their old candidates are reused when it is the same); the other
/// referenced columns' only when a group reading them is about to run (`run_group`,
/// `takes`), "changed" until then.
pub(super) fn changed_columns(st: &State, row: &mut Row<'_, '_>) -> Result<Bits> {
    let mut changed: Bits = smallvec::smallvec![0; bitset_words(st.columns.len())];
    for &c in &st.referenced {
        set_bit(&mut changed, c);
    }
    for c in probed(st) {
        if !row.differs(c)? {
            changed[c / 64] &= !(1 << (c % 64));
        }
    }
    Ok(changed)
}

/// The shapes an update's new row `row` matches, into `keep` (sorted): those its own pass
/// added to `out` (from `old_routed` on: it evaluated the shapes reading a changed column),
/// and those the old row's pass routed (before `old_routed`) that read no changed column —
/// they answer the new row as they answered the old one — or that were found through a
/// probed column whose text did not parse (`old_bad`) and is the same in the new row
/// (routed, as the new row alone would route them; its pass parses only the changed probed
/// columns). A shape the old row matched that reads a changed column and the new row's pass
/// did not add does not match it: its probe found it again (same key) or could not (the key changed).
/// `changed`: the route's changed columns (`changed_columns`: a probed column's bit is
/// exact). A shape reading a changed probed column is decided without comparing its other
/// cells, so keeping reads no cell the route did not (a value that is not text is refused
/// where it is read: keeping must not refuse a change the route takes).
pub(super) fn kept_by_update(
    st: &State,
    row: &mut Row<'_, '_>,
    (out, old_routed): (&[u32], usize),
    (changed, old_bad): (&[u64], &[u64]),
    keep: &mut Vec<u32>,
) -> Result<()> {
    keep.extend_from_slice(&out[old_routed..]);
    // of the probed columns (compared already: `changed` is exact there), those that
    // changed, and those that did not parse in the old row and are the same in the new one
    // (what a route of the new row alone would find its bad-value shapes through)
    let mut probe_changed: Bits = smallvec::smallvec![0; changed.len()];
    let mut still_bad: Bits = smallvec::smallvec![0; changed.len()];
    for c in probed(st) {
        if bit(changed, c) {
            set_bit(&mut probe_changed, c);
        } else if bit(old_bad, c) {
            set_bit(&mut still_bad, c);
        }
    }
    for &id in &out[..old_routed] {
        // a shape with no published group cannot have been routed; kept if it were
        let Some(group) = st.group_of(id) else {
            keep.push(id);
            continue;
        };
        let mask = &group.template.mask;
        let fresh = intersects(mask, &probe_changed) || row.fresh(mask)?;
        if !fresh || found_through(&group.template, &still_bad) {
            keep.push(id);
        }
    }
    keep.sort_unstable();
    keep.dedup();
    Ok(())
}
