//! The infix index: which groups' required literals (`'%bug%'` → `bug`) a text contains,
//! found in one scan of the text per tier, however many literals there are.
//!
//! ```text
//! text ─▶ [1] each tier: an Aho–Corasick automaton, overlapping search (every occurrence)
//!      ─▶ [2] each overlay literal (≤ OVERLAY_MAX memmem finders, the newest)
//!      ─▶ literal slot ─▶ its groups (refcounted) ─▶ each group once per text
//! ```
//!
//! One index serves one (column, folding) slot of the router: the caller folds the text as
//! it folded the literals (see [`crate::predicate::like_plan`]). Automata are immutable: a
//! new literal waits in the overlay; a full overlay becomes a tier, and tiers merge by the
//! policy of [`super::tiers`]. A literal that loses its last group leaves the overlay
//! at once; in a tier it stays, skipped, until that tier is merged or the dead outnumber half
//! the live (then every tier is compacted into one). Each literal lives in one place (a tier
//! or the overlay), so only several literals can report a group twice.
//!
//! An empty literal is contained in every text: the router keeps such patterns apart (as
//! `AnyText`); here it is merely correct.

use super::tiers::{merge_count, Tier};
use crate::{Error, Result};
use hashbrown::HashTable;
use memchr::memmem::Finder;
use smallvec::SmallVec;

/// Most literals waiting in the overlay (each a memmem scan of every text, ~10-30 ns on a
/// 100-byte text) before they become a tier.
pub const OVERLAY_MAX: usize = 16;

/// The groups of one literal, each with how many times it was inserted.
type Groups = SmallVec<[(u32, u32); 1]>;

/// A literal slot: the literal and its groups (a free slot: empty, in the free list).
#[derive(Clone, Default)]
struct Literal {
    text: Box<str>,
    groups: Groups,
}

/// Distinct required literals, each mapped to the groups that require it (see the module
/// doc). A clone shares the automata.
#[derive(Clone, Default)]
pub struct InfixIndex {
    /// The slots of the literals held (live or dead in a tier), by their text's hash.
    table: HashTable<u32>,
    hasher: ahash::RandomState,
    /// Per slot: its literal and groups.
    slots: Vec<Literal>,
    /// Slots free for the next new literal.
    free: Vec<u32>,
    /// The automata, oldest (largest) first.
    tiers: Vec<Tier>,
    /// The literals not in a tier yet: their slot and finder.
    overlay: Vec<(u32, Finder<'static>)>,
    /// Tier slots with no group left.
    dead: usize,
    /// Literals with at least one group.
    live: usize,
}

impl InfixIndex {
    /// An empty index.
    pub fn new() -> InfixIndex {
        InfixIndex::default()
    }

    /// An index holding `entries` (literal, group, references; as [`InfixIndex::literals`]
    /// exports them) in one tier: the reopen and bulk path.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, u32, u32)>,
    ) -> Result<InfixIndex> {
        let mut index = InfixIndex::new();
        for (literal, group, refs) in entries {
            index.add_refs(literal, group, refs)?;
        }
        index.compact()?;
        Ok(index)
    }

    /// Adds one reference of `group` to `literal` (a new literal joins the overlay; a full
    /// overlay becomes a tier). On error (an automaton would be too large, a reference count
    /// overflows) the index is unchanged.
    pub fn insert(&mut self, literal: &str, group: u32) -> Result<()> {
        let Some(slot) = self.add_refs(literal, group, 1)? else {
            return Ok(());
        };
        let finder = Finder::new(literal.as_bytes()).into_owned();
        self.overlay.push((slot, finder));
        if self.overlay.len() < OVERLAY_MAX {
            return Ok(());
        }
        self.flush_overlay().inspect_err(|_| {
            self.remove(literal, group);
        })
    }

    /// The slot of `literal`, if held.
    fn find(&self, literal: &str) -> Option<u32> {
        let hash = self.hasher.hash_one(literal);
        let slots = &self.slots;
        (self.table)
            .find(hash, |&s| &*slots[s as usize].text == literal)
            .copied()
    }

    /// Adds `refs` references of `group` to `literal`; the literal's new slot if it was not
    /// held (the caller places it: overlay or tier).
    fn add_refs(&mut self, literal: &str, group: u32, refs: u32) -> Result<Option<u32>> {
        if refs == 0 {
            return Ok(None);
        }
        let (slot, new) = match self.find(literal) {
            Some(slot) => (slot, false),
            None => (self.new_slot(literal)?, true),
        };
        let groups = &mut self.slots[slot as usize].groups;
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, count)) => {
                *count = count.checked_add(refs).ok_or(Error::TooLarge {
                    what: "infix group references",
                })?;
            }
            None => {
                if groups.is_empty() {
                    self.live += 1;
                    // a dead tier literal comes back to life in place
                    self.dead -= usize::from(!new);
                }
                groups.push((group, refs));
            }
        }
        Ok(new.then_some(slot))
    }

    /// A slot for the new literal `literal`, in the table.
    fn new_slot(&mut self, literal: &str) -> Result<u32> {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                let slot = u32::try_from(self.slots.len()).map_err(|_| Error::TooLarge {
                    what: "infix literal slots",
                })?;
                self.slots.push(Literal::default());
                slot
            }
        };
        self.slots[slot as usize].text = literal.into();
        let (hasher, slots) = (&self.hasher, &self.slots);
        let hash = hasher.hash_one(literal);
        (self.table).insert_unique(hash, slot, |&s| hasher.hash_one(&*slots[s as usize].text));
        Ok(slot)
    }

    /// Frees slot `slot` (no group left, in no tier or overlay any more).
    fn free_slot(&mut self, slot: u32) {
        let literal = std::mem::take(&mut self.slots[slot as usize]);
        let hash = self.hasher.hash_one(&*literal.text);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        self.free.push(slot);
    }

    /// Drops one reference of `group` to `literal`; whether there was one. A literal left
    /// with no group leaves the overlay at once, a tier when it is merged; when the dead
    /// outnumber half the live, every tier is compacted (if that fails, the dead stay,
    /// skipped).
    pub fn remove(&mut self, literal: &str, group: u32) -> bool {
        let Some(slot) = self.find(literal) else {
            return false;
        };
        let groups = &mut self.slots[slot as usize].groups;
        let Some(at) = groups.iter().position(|(g, _)| *g == group) else {
            return false;
        };
        groups[at].1 -= 1;
        if groups[at].1 > 0 {
            return true;
        }
        groups.swap_remove(at);
        if !groups.is_empty() {
            return true;
        }
        self.live -= 1;
        match self.overlay.iter().position(|&(s, _)| s == slot) {
            Some(at) => {
                self.overlay.swap_remove(at);
                self.free_slot(slot);
            }
            None => self.dead += 1,
        }
        if self.dead > self.live / 2 {
            // fewer literals than built before: a failure is not expected, and harmless
            let _ = self.compact();
        }
        true
    }

    /// Turns the overlay into a tier, then merges the newest tiers by the policy; on error
    /// building the overlay's tier, the index is unchanged (a failed merge leaves its tiers
    /// as they were).
    fn flush_overlay(&mut self) -> Result<()> {
        let slots: Vec<u32> = self.overlay.iter().map(|&(s, _)| s).collect();
        let tier = self.build(slots)?;
        self.tiers.push(tier);
        self.overlay.clear();
        let sizes: Vec<usize> = self.tiers.iter().map(|t| t.slots().len()).collect();
        let merged = merge_count(&sizes);
        if merged > 0 {
            let _ = self.merge(self.tiers.len() - merged, false);
        }
        Ok(())
    }

    /// Folds every tier and the overlay into one tier, dropping the dead; on error the index
    /// is unchanged.
    pub fn compact(&mut self) -> Result<()> {
        self.merge(0, true)
    }

    /// Merges the tiers from `first` on (and the overlay, with `overlay`; with `first` 0 also
    /// the slots placed nowhere yet) into one tier, freeing their dead slots.
    fn merge(&mut self, first: usize, overlay: bool) -> Result<()> {
        let mut slots: Vec<u32> = if first == 0 && overlay {
            // every held slot: the free ones are the only empty literals not in the table
            let mut free = vec![false; self.slots.len()];
            self.free.iter().for_each(|&s| free[s as usize] = true);
            (0..self.slots.len() as u32)
                .filter(|&s| !free[s as usize])
                .collect()
        } else {
            let tiers = self.tiers[first..].iter();
            tiers.flat_map(|t| t.slots().iter().copied()).collect()
        };
        let is_live = |s: &u32| !self.slots[*s as usize].groups.is_empty();
        let dead: Vec<u32> = slots.iter().copied().filter(|s| !is_live(s)).collect();
        slots.retain(is_live);
        let tier = if slots.is_empty() {
            None
        } else {
            Some(self.build(slots)?)
        };
        self.tiers.truncate(first);
        self.tiers.extend(tier);
        if overlay {
            self.overlay.clear();
        }
        self.dead -= dead.len();
        dead.into_iter().for_each(|s| self.free_slot(s));
        Ok(())
    }

    /// A tier of the literals of `slots`.
    fn build(&self, slots: Vec<u32>) -> Result<Tier> {
        let literals: Vec<&str> = slots
            .iter()
            .map(|&s| &*self.slots[s as usize].text)
            .collect();
        Tier::build(&literals, slots)
    }

    /// Appends to `out` every group whose literal `text` contains, each once.
    pub fn matches(&self, text: &str, out: &mut Vec<u32>) {
        let start = out.len();
        // the slots already reported (a literal may occur many times)
        let mut seen: SmallVec<[u32; 8]> = SmallVec::new();
        let mut hit = |slot: u32, out: &mut Vec<u32>| {
            let groups = &self.slots[slot as usize].groups;
            if !groups.is_empty() && !seen.contains(&slot) {
                seen.push(slot);
                out.extend(groups.iter().map(|&(g, _)| g));
            }
        };
        for tier in &self.tiers {
            tier.scan(text, |slot| hit(slot, out));
        }
        for (slot, finder) in &self.overlay {
            if finder.find(text.as_bytes()).is_some() {
                hit(*slot, out);
            }
        }
        // a literal's groups are distinct: only several literals can repeat a group
        if seen.len() > 1 {
            dedup_tail(out, start);
        }
    }

    /// How many distinct literals have a group.
    pub fn len(&self) -> usize {
        self.live
    }

    /// Whether no literal has a group.
    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    /// How many literals wait in the overlay.
    pub fn overlay_len(&self) -> usize {
        self.overlay.len()
    }

    /// How many tiers (automata) a text is scanned by.
    pub fn tiers(&self) -> usize {
        self.tiers.len()
    }

    /// Every (literal, group, references), for persistence ([`InfixIndex::from_entries`]
    /// rebuilds from them).
    pub fn literals(&self) -> impl Iterator<Item = (&str, u32, u32)> + '_ {
        self.slots.iter().flat_map(|literal| {
            let text = &*literal.text;
            literal.groups.iter().map(move |&(g, refs)| (text, g, refs))
        })
    }

    /// Heap bytes held, estimated: the automata's own counts, the table, the literal slots
    /// (texts and spilled group lists) and the overlay's finders.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let tiers: usize = self.tiers.iter().map(Tier::heap_bytes).sum();
        let texts: usize = self.slots.iter().map(|l| l.text.len()).sum();
        let spilled: usize = (self.slots.iter())
            .filter(|l| l.groups.spilled())
            .map(|l| l.groups.capacity() * size_of::<(u32, u32)>())
            .sum();
        let overlay: usize = (self.overlay.iter())
            .map(|(_, f)| size_of::<(u32, Finder)>() + f.needle().len())
            .sum();
        tiers
            + self.table.capacity() * (size_of::<u32>() + 1)
            + self.slots.capacity() * size_of::<Literal>()
            + texts
            + spilled
            + self.free.capacity() * size_of::<u32>()
            + overlay
    }
}

/// Sorts and dedups `out[start..]` in place.
fn dedup_tail(out: &mut Vec<u32>, start: usize) {
    out[start..].sort_unstable();
    let mut kept = start;
    for i in start..out.len() {
        if kept == start || out[i] != out[kept - 1] {
            out[kept] = out[i];
            kept += 1;
        }
    }
    out.truncate(kept);
}

#[cfg(test)]
mod tests;
