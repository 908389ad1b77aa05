//! The prefix length table of a prefix slot: which prefix lengths its groups' literals have,
//! so a row probes the equality index with `text[..ℓ]` for those lengths only.
//!
//! ```text
//! text ─▶ for each length ℓ present (ascending): text[..ℓ] on a char boundary ─▶ probe
//! ```
//!
//! A prefix literal is cut on a character boundary (at most [`MAX_PREFIX_BYTES`]), so a text
//! that starts with it has a boundary at its length: a length that falls inside one of the
//! text's characters (or past its end) cannot match and is skipped.

pub use crate::predicate::like_plan::MAX_PREFIX_BYTES;

/// How many prefix literals (of a slot's groups) have each length `1..=MAX_PREFIX_BYTES`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PrefixLengths {
    /// `counts[ℓ]`: prefixes of `ℓ` bytes (`counts[0]` stays 0: an empty prefix is any text).
    counts: [u32; MAX_PREFIX_BYTES + 1],
}

impl PrefixLengths {
    /// An empty table.
    pub fn new() -> PrefixLengths {
        PrefixLengths::default()
    }

    /// Counts one prefix of `len` bytes; false (and nothing counted) for a length outside
    /// `1..=MAX_PREFIX_BYTES` or a count at its limit.
    pub fn add(&mut self, len: usize) -> bool {
        match self.count_mut(len) {
            Some(count) if *count < u32::MAX => {
                *count += 1;
                true
            }
            _ => false,
        }
    }

    /// Uncounts one prefix of `len` bytes; whether one was counted.
    pub fn remove(&mut self, len: usize) -> bool {
        match self.count_mut(len) {
            Some(count) if *count > 0 => {
                *count -= 1;
                true
            }
            _ => false,
        }
    }

    /// The count of length `len`, if it is one the table holds.
    fn count_mut(&mut self, len: usize) -> Option<&mut u32> {
        (len > 0).then(|| self.counts.get_mut(len)).flatten()
    }

    /// How many prefixes of `len` bytes are counted.
    pub fn count(&self, len: usize) -> u32 {
        self.counts.get(len).copied().unwrap_or(0)
    }

    /// The lengths with at least one prefix, ascending.
    pub fn lengths(&self) -> impl Iterator<Item = usize> + '_ {
        (1..self.counts.len()).filter(|&len| self.counts[len] > 0)
    }

    /// Whether no prefix is counted.
    pub fn is_empty(&self) -> bool {
        self.lengths().next().is_none()
    }

    /// `text[..ℓ]` for each length ℓ present that is within `text` and on one of its
    /// character boundaries, ascending: the keys a row probes.
    pub fn prefixes_of<'t>(&self, text: &'t str) -> impl Iterator<Item = &'t str> + 't {
        // a copy of the 68-byte table: the iterator borrows only the text
        let counts = self.counts;
        (1..=MAX_PREFIX_BYTES.min(text.len()))
            .filter(move |&len| counts[len] > 0)
            .filter_map(move |len| text.get(..len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::eval::like;
    use crate::predicate::like_plan::{LikePlan, LikeShape};
    use proptest::prelude::*;

    #[test]
    fn lengths_count_and_skip_the_unusable() {
        let mut t = PrefixLengths::new();
        assert!(t.is_empty());
        assert!(!t.add(0) && !t.add(MAX_PREFIX_BYTES + 1), "outside 1..=16");
        assert!(t.add(1) && t.add(3) && t.add(3) && t.add(16));
        assert_eq!(t.lengths().collect::<Vec<_>>(), [1, 3, 16]);
        assert_eq!(t.count(3), 2);
        let got: Vec<_> = t.prefixes_of("abcdefghijklmnopqrs").collect();
        assert_eq!(got, ["a", "abc", "abcdefghijklmnop"]);
        assert_eq!(
            t.prefixes_of("ab").collect::<Vec<_>>(),
            ["a"],
            "past the end"
        );
        // `ü` spans bytes 0..2: length 1 falls inside it, length 3 is a boundary
        assert_eq!(t.prefixes_of("üx").collect::<Vec<_>>(), ["üx"]);
        assert_eq!(t.prefixes_of("").count(), 0);
        assert!(t.remove(3) && t.remove(3) && !t.remove(3) && !t.remove(0));
        assert_eq!(t.lengths().collect::<Vec<_>>(), [1, 16]);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Add(usize),
        Remove(usize),
        Probe(String),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0usize..20).prop_map(Op::Add),
            2 => (0usize..20).prop_map(Op::Remove),
            2 => "[aüΣ€𝄞]{0,8}".prop_map(Op::Probe),
        ]
    }

    proptest! {
        #[test]
        fn prefix_lengths_agree_with_brute_force(ops in proptest::collection::vec(op(), 0..200)) {
            let (mut t, mut model) = (PrefixLengths::new(), [0u32; 20]);
            for op in ops {
                match op {
                    Op::Add(len) => {
                        let ok = (1..=MAX_PREFIX_BYTES).contains(&len);
                        prop_assert_eq!(t.add(len), ok);
                        model[len] += u32::from(ok);
                    }
                    Op::Remove(len) => {
                        let ok = (1..=MAX_PREFIX_BYTES).contains(&len) && model[len] > 0;
                        prop_assert_eq!(t.remove(len), ok);
                        model[len] -= u32::from(ok);
                    }
                    Op::Probe(text) => {
                        let want: Vec<&str> = (1..20)
                            .filter(|&l| model[l] > 0 && text.is_char_boundary(l.min(text.len() + 1)))
                            .filter_map(|l| text.get(..l))
                            .collect();
                        prop_assert_eq!(t.prefixes_of(&text).collect::<Vec<_>>(), want);
                    }
                }
            }
        }

        /// A prefix plan's text (LIKE matches) always yields the plan's prefix as a probe key.
        #[test]
        fn a_matching_text_probes_its_prefix(
            lead in "[aüΣ€𝄞]{1,10}",
            rest in "[%_][%_a]{0,3}",
            tail in "[aüx]{0,6}",
        ) {
            let (p, t) = (format!("{lead}{rest}"), format!("{lead}{tail}"));
            let plan = LikePlan::new(&p, false);
            if let (LikeShape::Prefix(prefix), true) = (&plan.shape, like(&t, &p)) {
                let mut lengths = PrefixLengths::new();
                prop_assert!(lengths.add(prefix.len()));
                prop_assert!(lengths.prefixes_of(&t).any(|k| k == prefix), "{:?} {:?}", t, p);
            }
        }
    }
}
