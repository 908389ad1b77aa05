//! The infix index: which groups' required literals (`'%bug%'` → `bug`) a text contains,
//! found in one scan of the text, however many literals there are.
//!
//! ```text
//! text ─▶ [1] Aho–Corasick automaton over the built literals (overlapping: every occurrence)
//!      ─▶ [2] each overlay literal (≤ OVERLAY_MAX memmem finders, the ones added since)
//!      ─▶ literal ─▶ its groups (refcounted) ─▶ each group once per text
//! ```
//!
//! One index serves one (column, folding) slot: the caller folds the text as it folded the
//! literals (see [`crate::predicate::like_plan`]). The automaton is immutable: a new literal
//! waits in the overlay until [`OVERLAY_MAX`] of them are there, then every live literal is
//! built into a new automaton (the rebuild). A literal that loses its last group is dropped
//! from the overlay at once; in the automaton it stays, skipped, until the dead outnumber
//! half the live, which rebuilds too. An empty literal is contained in every text (the router
//! keeps such patterns apart, as `AnyText`; here it is merely correct).
//!
//! Literal slots: `0..built` are the automaton's patterns (pattern id = slot), the rest are
//! overlay literals; slots are renumbered by each rebuild.

use crate::{Error, Result};
use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem::Finder;
use smallvec::SmallVec;
use std::collections::HashMap;

/// Most literals waiting in the overlay (each a memmem scan of every text) before a rebuild.
pub const OVERLAY_MAX: usize = 64;

/// The groups of one literal, each with how many times it was inserted.
type Groups = SmallVec<[(u32, u32); 1]>;

/// Distinct required literals, each mapped to the groups that require it (see the module
/// doc). A clone shares the automaton (copy-on-write by the caller).
#[derive(Clone, Default)]
pub struct InfixIndex {
    /// Each literal (live or dead-in-the-automaton) to its slot.
    slot_of: HashMap<Box<str>, u32>,
    /// Per slot: its groups with their reference counts (empty: dead or free).
    groups: Vec<Groups>,
    /// Overlay slots freed by a removal, for the next new literal.
    free: Vec<u32>,
    /// The automaton over slots `0..built` (`None` while nothing is built).
    automaton: Option<AhoCorasick>,
    /// How many slots the automaton holds.
    built: u32,
    /// The literals added since the last rebuild: their slot and finder.
    overlay: Vec<(u32, Finder<'static>)>,
    /// Automaton slots with no group left.
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
    /// exports them), built at once: the reopen and bulk path.
    pub fn from_entries<'a>(
        entries: impl IntoIterator<Item = (&'a str, u32, u32)>,
    ) -> Result<InfixIndex> {
        let mut index = InfixIndex::new();
        for (literal, group, refs) in entries {
            index.add_refs(literal, group, refs)?;
        }
        index.rebuild()?;
        Ok(index)
    }

    /// Adds one reference of `group` to `literal` (a new literal joins the overlay; a full
    /// overlay is rebuilt into the automaton). On error (the automaton would be too large,
    /// a reference count overflows) the index is unchanged.
    pub fn insert(&mut self, literal: &str, group: u32) -> Result<()> {
        let Some(slot) = self.add_refs(literal, group, 1)? else {
            return Ok(());
        };
        if self.overlay.len() < OVERLAY_MAX {
            let finder = Finder::new(literal.as_bytes()).into_owned();
            self.overlay.push((slot, finder));
            return Ok(());
        }
        self.rebuild().inspect_err(|_| {
            self.remove(literal, group);
        })
    }

    /// Adds `refs` references of `group` to `literal`; the literal's new slot if it had
    /// none (the caller puts it in the overlay or rebuilds).
    fn add_refs(&mut self, literal: &str, group: u32, refs: u32) -> Result<Option<u32>> {
        if refs == 0 {
            return Ok(None);
        }
        let (slot, new) = match self.slot_of.get(literal) {
            Some(&slot) => (slot, false),
            None => {
                let slot = self.free.pop().map_or(self.groups.len(), |s| s as usize);
                let slot = u32::try_from(slot).map_err(|_| too_large("infix literal slots"))?;
                if slot as usize == self.groups.len() {
                    self.groups.push(Groups::new());
                }
                self.slot_of.insert(literal.into(), slot);
                (slot, true)
            }
        };
        let groups = &mut self.groups[slot as usize];
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, count)) => {
                *count = count
                    .checked_add(refs)
                    .ok_or_else(|| too_large("infix group references"))?;
            }
            None => {
                if groups.is_empty() {
                    self.live += 1;
                    if slot < self.built {
                        self.dead -= 1;
                    }
                }
                groups.push((group, refs));
            }
        }
        Ok(new.then_some(slot))
    }

    /// Drops one reference of `group` to `literal`; whether there was one. A literal left
    /// with no group leaves the overlay at once and the automaton at the next rebuild (run
    /// here when the dead outnumber half the live; if it fails, the dead stay, skipped).
    pub fn remove(&mut self, literal: &str, group: u32) -> bool {
        let Some(&slot) = self.slot_of.get(literal) else {
            return false;
        };
        let groups = &mut self.groups[slot as usize];
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
        if slot >= self.built {
            self.overlay.retain(|(s, _)| *s != slot);
            self.slot_of.remove(literal);
            self.groups[slot as usize] = Groups::new();
            self.free.push(slot);
        } else {
            self.dead += 1;
        }
        if self.dead > self.live / 2 {
            // a build of fewer literals than the last one's: failing is not expected, and
            // the dead are skipped until a later rebuild if it does
            let _ = self.rebuild();
        }
        true
    }

    /// Builds every live literal into a new automaton and empties the overlay; on error the
    /// index is unchanged.
    fn rebuild(&mut self) -> Result<()> {
        let mut order: Vec<(&str, u32)> = (self.slot_of.iter())
            .filter(|&(_, &slot)| !self.groups[slot as usize].is_empty())
            .map(|(literal, &slot)| (&**literal, slot))
            .collect();
        // old slot order: a rebuild keeps the literals' relative order (deterministic)
        order.sort_unstable_by_key(|&(_, slot)| slot);
        let automaton = if order.is_empty() {
            None
        } else {
            let built = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .build(order.iter().map(|&(literal, _)| literal))
                .map_err(|_| too_large("infix automaton"))?;
            Some(built)
        };
        let mut renumbered = vec![u32::MAX; self.groups.len()];
        let mut groups = Vec::with_capacity(order.len());
        for (new, &(_, old)) in order.iter().enumerate() {
            renumbered[old as usize] = new as u32;
            groups.push(std::mem::take(&mut self.groups[old as usize]));
        }
        self.slot_of.retain(|_, slot| {
            *slot = renumbered[*slot as usize];
            *slot != u32::MAX
        });
        self.slot_of.shrink_to_fit();
        self.built = groups.len() as u32;
        self.groups = groups;
        self.automaton = automaton;
        self.overlay.clear();
        self.free.clear();
        self.dead = 0;
        Ok(())
    }

    /// Appends to `out` every group whose literal `text` contains, each once.
    pub fn matches(&self, text: &str, out: &mut Vec<u32>) {
        let start = out.len();
        // the slots already reported (a literal may occur many times)
        let mut seen: SmallVec<[u32; 8]> = SmallVec::new();
        let mut hit = |slot: u32, out: &mut Vec<u32>| {
            let groups = &self.groups[slot as usize];
            if !groups.is_empty() && !seen.contains(&slot) {
                seen.push(slot);
                out.extend(groups.iter().map(|&(g, _)| g));
            }
        };
        if let Some(automaton) = &self.automaton {
            for m in automaton.find_overlapping_iter(text) {
                hit(m.pattern().as_u32(), out);
            }
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

    /// Every (literal, group, references), for persistence ([`InfixIndex::from_entries`]
    /// rebuilds from them).
    pub fn literals(&self) -> impl Iterator<Item = (&str, u32, u32)> + '_ {
        self.slot_of.iter().flat_map(move |(literal, &slot)| {
            let groups = self.groups[slot as usize].iter();
            groups.map(move |&(group, refs)| (&**literal, group, refs))
        })
    }

    /// Heap bytes held, estimated: the automaton's own count, the literal map (keys, entries,
    /// control bytes), the group lists and the overlay's finders.
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let automaton = self.automaton.as_ref().map_or(0, AhoCorasick::memory_usage);
        let map_entry = size_of::<(Box<str>, u32)>() + 1;
        let keys: usize = self.slot_of.keys().map(|k| k.len()).sum();
        let spilled: usize = (self.groups.iter())
            .filter(|g| g.spilled())
            .map(|g| g.capacity() * size_of::<(u32, u32)>())
            .sum();
        let overlay: usize = (self.overlay.iter())
            .map(|(_, f)| size_of::<(u32, Finder)>() + f.needle().len())
            .sum();
        automaton
            + self.slot_of.capacity() * map_entry
            + keys
            + self.groups.capacity() * size_of::<Groups>()
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

/// The error of a limit of the infix index.
fn too_large(what: &'static str) -> Error {
    Error::TooLarge { what }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn groups(index: &InfixIndex, text: &str) -> Vec<u32> {
        let mut out = vec![];
        index.matches(text, &mut out);
        out.sort_unstable();
        out
    }

    #[test]
    fn overlapping_literals_each_report_their_groups_once() {
        let mut index = InfixIndex::new();
        for (literal, group) in [("ab", 1), ("abc", 2), ("bc", 3), ("bc", 1), ("zz", 4)] {
            index.insert(literal, group).unwrap();
        }
        assert_eq!(groups(&index, "xabcx"), [1, 2, 3]);
        assert_eq!(
            groups(&index, "ababab"),
            [1],
            "many occurrences, one report"
        );
        assert_eq!(
            groups(&index, "b"),
            [] as [u32; 0],
            "texts shorter than literals"
        );
        assert_eq!(index.len(), 4);
        let mut out = vec![7];
        index.matches("abc", &mut out);
        assert_eq!(out[0], 7, "appends");
    }

    #[test]
    fn references_count_per_literal_and_group() {
        let mut index = InfixIndex::new();
        index.insert("bug", 1).unwrap();
        index.insert("bug", 1).unwrap();
        assert!(index.remove("bug", 1));
        assert_eq!(groups(&index, "a bug"), [1]);
        assert!(index.remove("bug", 1));
        assert!(!index.remove("bug", 1), "no reference left");
        assert!(!index.remove("bug", 2) && !index.remove("nope", 1));
        assert!(index.is_empty() && groups(&index, "a bug").is_empty());
    }

    #[test]
    fn the_overlay_is_rebuilt_when_full_and_the_dead_when_many() {
        let mut index = InfixIndex::new();
        let literal = |i: usize| format!("<{i}>");
        for i in 0..OVERLAY_MAX {
            index.insert(&literal(i), i as u32).unwrap();
        }
        assert_eq!((index.overlay_len(), index.built), (OVERLAY_MAX, 0));
        index.insert(&literal(OVERLAY_MAX), 99).unwrap();
        assert_eq!(
            (index.overlay_len(), index.built),
            (0, OVERLAY_MAX as u32 + 1)
        );
        assert_eq!(groups(&index, "<3><64>"), [3, 99]);
        // 21 removed of 65: dead, skipped, until they outnumber half the live
        for i in 0..21 {
            assert!(index.remove(&literal(i), i as u32));
        }
        assert_eq!((index.dead, index.built), (21, 65));
        assert_eq!(groups(&index, "<3><30>"), [30], "dead literals are skipped");
        index.insert(&literal(3), 3).unwrap();
        assert_eq!(
            (index.dead, index.overlay_len()),
            (20, 0),
            "revived in place"
        );
        assert!(index.remove(&literal(21), 21));
        assert_eq!((index.dead, index.built), (21, 65), "21 dead, 44 live");
        assert!(index.remove(&literal(22), 22));
        assert_eq!(
            (index.dead, index.built, index.len()),
            (0, 43, 43),
            "22 > 43 / 2"
        );
        assert_eq!(groups(&index, "<3><22><30><64>"), [3, 30, 99]);
    }

    #[test]
    fn an_empty_literal_is_in_every_text() {
        let mut index = InfixIndex::new();
        index.insert("", 5).unwrap();
        assert_eq!(groups(&index, ""), [5]);
        let index = InfixIndex::from_entries([("", 5, 1), ("x", 6, 1)]).unwrap();
        assert_eq!(groups(&index, "ab"), [5]);
        assert_eq!(groups(&index, "xx"), [5, 6]);
    }

    #[test]
    fn export_and_rebuild_round_trip() {
        let mut index = InfixIndex::new();
        for i in 0..200u32 {
            index.insert(&format!("k{}", i % 70), i % 9).unwrap();
        }
        let mut exported: Vec<_> = index
            .literals()
            .map(|(l, g, r)| (l.to_string(), g, r))
            .collect();
        exported.sort();
        let again = InfixIndex::from_entries(exported.iter().map(|(l, g, r)| (l.as_str(), *g, *r)))
            .unwrap();
        let mut back: Vec<_> = again
            .literals()
            .map(|(l, g, r)| (l.to_string(), g, r))
            .collect();
        back.sort();
        assert_eq!(exported, back);
        assert_eq!(again.overlay_len(), 0);
        assert_eq!(groups(&index, "k1k69"), groups(&again, "k1k69"));
        assert!(index.heap_bytes() > 0 && again.heap_bytes() > 0);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(String, u32),
        /// Many inserts in a row (fills the overlay).
        Burst(Vec<(String, u32)>),
        /// Drops a reference of the n-th (literal, group) held, or of a random one.
        Remove(proptest::sample::Index, Option<(String, u32)>),
        Matches(String),
        /// Exports and rebuilds from the export (the reopen path).
        Reopen,
    }

    fn literal() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => proptest::sample::select(&["ab", "abc", "bc", "ü", "üb", "Σσ", "abcabcabcabcabc"][..])
                .prop_map(String::from),
            6 => "[abcüΣ]{1,4}",
            1 => Just(String::new()),
        ]
    }

    fn op() -> impl Strategy<Value = Op> {
        let random = proptest::option::weighted(0.2, (literal(), 0u32..6));
        prop_oneof![
            6 => (literal(), 0u32..6).prop_map(|(l, g)| Op::Insert(l, g)),
            1 => proptest::collection::vec(("[abcüΣ]{2,5}", 0u32..6), 30..100).prop_map(Op::Burst),
            4 => (any::<proptest::sample::Index>(), random).prop_map(|(i, r)| Op::Remove(i, r)),
            3 => "[abcüΣσx]{0,14}".prop_map(Op::Matches),
            1 => Just(Op::Reopen),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        #[test]
        fn infix_index_agrees_with_brute_force(ops in proptest::collection::vec(op(), 1..400)) {
            let mut index = InfixIndex::new();
            let mut model: BTreeMap<(String, u32), u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Insert(literal, group) => {
                        index.insert(&literal, group).unwrap();
                        *model.entry((literal, group)).or_default() += 1;
                    }
                    Op::Burst(inserts) => {
                        for (literal, group) in inserts {
                            index.insert(&literal, group).unwrap();
                            *model.entry((literal, group)).or_default() += 1;
                        }
                    }
                    Op::Remove(at, random) => {
                        let key = match random {
                            Some(key) => key,
                            None if model.is_empty() => continue,
                            None => model.keys().nth(at.index(model.len())).cloned().unwrap(),
                        };
                        let held = model.get(&key).copied().unwrap_or(0);
                        prop_assert_eq!(index.remove(&key.0, key.1), held > 0);
                        match held {
                            0 => {}
                            1 => { model.remove(&key); }
                            _ => { model.insert(key, held - 1); }
                        }
                    }
                    Op::Matches(text) => {
                        let mut got = vec![];
                        index.matches(&text, &mut got);
                        let len = got.len();
                        got.sort_unstable();
                        got.dedup();
                        prop_assert_eq!(got.len(), len, "a group twice for {:?}", text);
                        let mut want: Vec<u32> = (model.keys())
                            .filter(|(l, _)| text.contains(l.as_str()))
                            .map(|&(_, g)| g)
                            .collect();
                        want.sort_unstable();
                        want.dedup();
                        prop_assert_eq!(got, want, "{:?}", text);
                    }
                    Op::Reopen => {
                        let entries: Vec<_> = (index.literals())
                            .map(|(l, g, r)| (l.to_string(), g, r))
                            .collect();
                        index = InfixIndex::from_entries(
                            entries.iter().map(|(l, g, r)| (l.as_str(), *g, *r)),
                        ).unwrap();
                    }
                }
                let distinct: std::collections::BTreeSet<&str> =
                    model.keys().map(|(l, _)| l.as_str()).collect();
                prop_assert_eq!(index.len(), distinct.len());
                prop_assert!(index.overlay_len() <= OVERLAY_MAX);
                prop_assert!(index.dead <= index.live / 2, "dead {} live {}", index.dead, index.live);
            }
        }
    }
}
