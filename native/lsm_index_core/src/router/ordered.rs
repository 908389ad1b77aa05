//! The router's ordered indexes: the groups found through a range of a column's values
//! ([`Ranges`], over order keys: `priority > 2 AND priority < 9`, `title LIKE 'bug%'`) or a
//! literal their text holds ([`InfixIndex`]: `title ILIKE '%bug%'`), one index per slot (a
//! column, or `lower`/`upper` of it), shared by every template planned on it. Both are
//! prefilters: a group found runs its residual, which decides exactly.
//!
//! ```text
//! row value ─▶ fold (lower/upper) ─▶ order key ─▶ stab the slot's intervals ─▶ groups
//!                                 └▶ text ─▶ every literal it holds ─────────▶ groups
//! ```

use super::patterns::InfixIndex;
use super::ranges::Ranges;
use super::slots::{slot, slot_key};
use crate::predicate::compile::{OrderedKind, OrderedPlan};
use crate::predicate::order_key::key;
use crate::predicate::Value;
use crate::Result;

/// Where an ordered plan files its groups: the slot (see `slots`) and which index.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct OrderedSlot {
    /// The column and the function its text goes through.
    pub(super) slot: usize,
    /// Whether it is the literal index (else the range index).
    pub(super) infix: bool,
}

/// What one group is filed under in its slot's index.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(super) enum OrderedKey {
    /// A closed interval of order keys.
    Range(u64, u64),
    /// A literal its text holds.
    Infix(Box<str>),
}

/// The slot and key of an ordered plan (`None`: a bound of a type without order keys, which
/// the planner does not produce).
pub(super) fn ordered_key(plan: &OrderedPlan) -> Option<(OrderedSlot, OrderedKey)> {
    let slot = slot(plan.column, plan.func, false);
    Some(match &plan.kind {
        OrderedKind::Range { .. } => {
            let (lo, hi) = plan.key_range()?;
            (
                OrderedSlot { slot, infix: false },
                OrderedKey::Range(lo, hi),
            )
        }
        OrderedKind::Infix(literal) => (
            OrderedSlot { slot, infix: true },
            OrderedKey::Infix(literal.as_str().into()),
        ),
    })
}

/// A range index's slot and arrays (lo, hi, group), as [`Ranges::parts`] lends them.
pub(super) type RangeParts<'a> = (usize, (&'a [u64], &'a [u64], &'a [u32]));

/// The ordered indexes of a router's published groups.
#[derive(Default)]
pub(super) struct OrderedSlots {
    /// Per slot with range plans: its intervals.
    ranges: Vec<(usize, Ranges)>,
    /// Per slot with literal plans: its literals.
    infixes: Vec<(usize, InfixIndex)>,
}

impl std::fmt::Debug for OrderedSlots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (ranges, infixes) = self.counts();
        f.debug_struct("OrderedSlots")
            .field("ranges", &ranges)
            .field("infixes", &infixes)
            .finish()
    }
}

impl OrderedSlots {
    /// Whether no group is filed here.
    pub(super) fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.infixes.is_empty()
    }

    /// Indexes as a snapshot stored them: per slot, its ranges and its literals.
    pub(super) fn restored(
        ranges: Vec<(usize, Ranges)>,
        infixes: Vec<(usize, InfixIndex)>,
    ) -> OrderedSlots {
        OrderedSlots { ranges, infixes }
    }

    /// The indexes as a snapshot stores them: per range slot its arrays (as
    /// [`Ranges::parts`] lends them, compacted first), per literal slot its index.
    pub(super) fn parts(&mut self) -> (Vec<RangeParts<'_>>, Vec<(usize, &InfixIndex)>) {
        let ranges = (self.ranges.iter_mut())
            .map(|(s, r)| (*s, r.parts()))
            .collect();
        let infixes = self.infixes.iter().map(|(s, i)| (*s, i)).collect();
        (ranges, infixes)
    }

    /// Groups filed in the range indexes and in the literal indexes.
    pub(super) fn counts(&self) -> (usize, usize) {
        let ranges = self.ranges.iter().map(|(_, r)| r.len()).sum();
        let infixes = self.infixes.iter().map(|(_, i)| i.len()).sum();
        (ranges, infixes)
    }

    /// Files group `g` under `key` in `slot`'s index.
    pub(super) fn insert(&mut self, at: OrderedSlot, key: &OrderedKey, g: u32) -> Result<()> {
        match key {
            OrderedKey::Range(lo, hi) => {
                let i = match self.ranges.iter().position(|(s, _)| *s == at.slot) {
                    Some(i) => i,
                    None => {
                        self.ranges.push((at.slot, Ranges::new()));
                        self.ranges.len() - 1
                    }
                };
                self.ranges[i].1.insert(*lo, *hi, g);
            }
            OrderedKey::Infix(literal) => {
                let i = match self.infixes.iter().position(|(s, _)| *s == at.slot) {
                    Some(i) => i,
                    None => {
                        self.infixes.push((at.slot, InfixIndex::new()));
                        self.infixes.len() - 1
                    }
                };
                self.infixes[i].1.insert(literal, g)?;
            }
        }
        Ok(())
    }

    /// Unfiles group `g` (filed under `key` in `slot`'s index); an index left empty goes.
    pub(super) fn remove(&mut self, at: OrderedSlot, key: &OrderedKey, g: u32) {
        match key {
            OrderedKey::Range(lo, hi) => {
                if let Some(i) = self.ranges.iter().position(|(s, _)| *s == at.slot) {
                    self.ranges[i].1.remove(*lo, *hi, g);
                    if self.ranges[i].1.is_empty() {
                        self.ranges.swap_remove(i);
                    }
                }
            }
            OrderedKey::Infix(literal) => {
                if let Some(i) = self.infixes.iter().position(|(s, _)| *s == at.slot) {
                    self.infixes[i].1.remove(literal, g);
                    if self.infixes[i].1.is_empty() {
                        self.infixes.swap_remove(i);
                    }
                }
            }
        }
    }

    /// Appends to `out` the groups whose range holds a value of `row` or whose literal its
    /// text holds (NULLs find nothing).
    /// `folded`: a buffer for texts through `lower`/`upper`, reused from row to row.
    pub(super) fn candidates(
        &self,
        row: &[Option<Value>],
        folded: &mut String,
        out: &mut Vec<u32>,
    ) {
        let mut folded_value = Value::Text(std::mem::take(folded));
        let folded_buf = folded;
        let folded = &mut folded_value;
        for (slot, ranges) in &self.ranges {
            if let Some(k) = value_of(row, *slot, folded).and_then(key) {
                ranges.stab(k, out);
            }
        }
        for (slot, infixes) in &self.infixes {
            if let Some(Value::Text(text)) = value_of(row, *slot, folded) {
                infixes.matches(text, out);
            }
        }
        if let Value::Text(buf) = folded_value {
            *folded_buf = buf;
        }
    }
}

/// `row`'s value as index slot `slot` reads it: the column's value, or its text through the
/// slot's `lower`/`upper` (folded into `folded`, a text buffer reused from row to row).
fn value_of<'a>(row: &'a [Option<Value>], slot: usize, folded: &'a mut Value) -> Option<&'a Value> {
    let key = slot_key(slot);
    let v = row.get(key.column)?.as_ref()?;
    match (key.func, v) {
        (None, v) => Some(v),
        (Some(f), Value::Text(text)) => {
            if let Value::Text(buf) = folded {
                f.fold_into(text, buf);
            }
            Some(folded)
        }
        (Some(_), _) => None,
    }
}
