//! What a LIKE pattern asks of a text, in the terms a pattern index can serve: a whole value
//! (equality), a prefix (equality on the text's first bytes), a required literal (the infix
//! index), every text, or nothing an index holds.
//!
//! ```text
//! pattern ─▶ [fold_case, for ILIKE] ─▶ tokens (`\` escapes, `_`, `%`) ─▶ literal runs
//!         ─▶ LikeShape + implied (the index's admission is the match: no residual)
//! ```
//!
//! The tokens are read with exactly the rules of [`like`](super::eval::like): `\` makes the
//! next character literal (a trailing `\` is itself), `_` is one character, `%` any run. A
//! text the pattern matches is always admitted by its shape (no false negatives); when
//! `implied`, a text is admitted exactly when it matches.
//!
//! Which text the shape is checked on is the caller's: the column's value for `LIKE`, its
//! [`fold_case`] (the same characters as `lower(col)` under a UTF-8 `LC_CTYPE`) for `ILIKE`,
//! `f(col)` for `f(col) LIKE` (the pattern as written). Under `LC_CTYPE=C` the parser already
//! turns `ILIKE` into `lower(col) LIKE lower(pattern)` with ASCII folding: that one.

use super::eval::fold_case;

/// Longest prefix literal a [`LikeShape::Prefix`] holds, in bytes (the prefix probe key's
/// length cap); longer leading literals are cut on a character boundary.
pub const MAX_PREFIX_BYTES: usize = 16;

/// What a LIKE pattern requires of a text (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LikeShape {
    /// No wildcard: the text equals this literal (`''` included).
    Exact(String),
    /// The pattern opens with a literal and a wildcard: the text starts with this literal,
    /// cut to at most [`MAX_PREFIX_BYTES`] on a character boundary.
    Prefix(String),
    /// The pattern opens with a wildcard and holds a literal: the text contains `required`,
    /// the longest literal run (in bytes; of equally long ones, the first).
    Infix {
        /// The literal every matching text contains.
        required: String,
    },
    /// Only `%`s: every non-NULL text.
    AnyText,
    /// Wildcards with no literal character (`_`, `___`, `_%`): nothing an index holds.
    NoLiteral,
}

/// A LIKE pattern analysed for the pattern index: its shape and whether the shape alone
/// decides the match.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LikePlan {
    /// What a matching text must be, start with or contain.
    pub shape: LikeShape,
    /// Whether a text is admitted by `shape` exactly when it matches (the LIKE needs no
    /// residual): no wildcard, `lit%` uncut, `%lit%`, only `%`s.
    pub implied: bool,
}

/// A pattern token (as `like()` reads it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Token {
    /// `%`.
    Any,
    /// `_`.
    One,
    /// A literal character (escaped or not).
    Char(char),
}

/// The tokens of `pattern`, with the escape rules of `like()`.
fn tokens(pattern: &str) -> impl Iterator<Item = Token> + '_ {
    let mut chars = pattern.chars();
    std::iter::from_fn(move || {
        Some(match chars.next()? {
            '%' => Token::Any,
            '_' => Token::One,
            '\\' => Token::Char(chars.next().unwrap_or('\\')),
            c => Token::Char(c),
        })
    })
}

impl LikePlan {
    /// The plan of `pattern`; `case_insensitive` (ILIKE) folds it first with [`fold_case`],
    /// as the compiled residual does, so the text must be folded the same way.
    pub fn new(pattern: &str, case_insensitive: bool) -> LikePlan {
        if case_insensitive {
            Self::analyse(&fold_case(pattern))
        } else {
            Self::analyse(pattern)
        }
    }

    /// The plan of a pattern as the residual matches it (already folded for ILIKE).
    fn analyse(pattern: &str) -> LikePlan {
        // literal runs, each ended by a wildcard; `runs[0]` is the leading one
        let mut runs: Vec<String> = vec![String::new()];
        let (mut any, mut one) = (0usize, 0usize);
        for token in tokens(pattern) {
            match token {
                Token::Char(c) => {
                    if let Some(run) = runs.last_mut() {
                        run.push(c);
                    }
                }
                wildcard => {
                    if wildcard == Token::Any {
                        any += 1;
                    } else {
                        one += 1;
                    }
                    // the first wildcard ends the leading run, even an empty one
                    if runs.len() == 1 || runs.last().is_some_and(|run| !run.is_empty()) {
                        runs.push(String::new());
                    }
                }
            }
        }
        if any + one == 0 {
            let literal = runs.swap_remove(0);
            return LikePlan {
                shape: LikeShape::Exact(literal),
                implied: true,
            };
        }
        let last_is_empty = runs.last().is_some_and(String::is_empty);
        let literal_runs = runs.iter().filter(|run| !run.is_empty()).count();
        if !runs[0].is_empty() || literal_runs == 0 {
            let leading = runs.swap_remove(0);
            return Self::opened(leading, literal_runs, one);
        }
        // the first longest run: `max_by_key` keeps the last of equals, so compare reversed
        let required = runs
            .into_iter()
            .filter(|run| !run.is_empty())
            .rev()
            .max_by_key(String::len)
            .unwrap_or_default();
        // `%lit%` exactly: one run, no `_`, and (as it opens with a wildcard and its last
        // run is empty) `%`s on both sides
        let implied = literal_runs == 1 && one == 0 && last_is_empty;
        LikePlan {
            shape: LikeShape::Infix { required },
            implied,
        }
    }

    /// The plan of a pattern with wildcards whose leading literal run is `leading` (or with
    /// no literal at all).
    fn opened(leading: String, literal_runs: usize, one: usize) -> LikePlan {
        if literal_runs == 0 {
            return LikePlan {
                shape: if one == 0 {
                    LikeShape::AnyText
                } else {
                    LikeShape::NoLiteral
                },
                implied: one == 0,
            };
        }
        let cut = char_floor(&leading, MAX_PREFIX_BYTES);
        // `lit%` exactly: the only run, uncut, followed by `%`s only
        let implied = literal_runs == 1 && one == 0 && cut == leading.len();
        let mut prefix = leading;
        prefix.truncate(cut);
        LikePlan {
            shape: LikeShape::Prefix(prefix),
            implied,
        }
    }

    /// Whether the index admits `text` (the value as the slot keys it: folded for ILIKE,
    /// `f(col)` for `f(col) LIKE`): equal, starts with, contains, any text.
    pub fn admits(&self, text: &str) -> bool {
        match &self.shape {
            LikeShape::Exact(literal) => text == literal,
            LikeShape::Prefix(prefix) => text.starts_with(prefix.as_str()),
            LikeShape::Infix { required } => text.contains(required.as_str()),
            LikeShape::AnyText | LikeShape::NoLiteral => true,
        }
    }
}

/// The largest character boundary of `s` at or below `max` bytes.
pub fn char_floor(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::eval::{ilike_lowered, like, upper_char};
    use crate::predicate::Func;
    use proptest::prelude::*;

    fn plan(pattern: &str) -> (LikeShape, bool) {
        let p = LikePlan::new(pattern, false);
        (p.shape, p.implied)
    }

    fn prefix(s: &str) -> LikeShape {
        LikeShape::Prefix(s.into())
    }

    fn infix(s: &str) -> LikeShape {
        LikeShape::Infix { required: s.into() }
    }

    #[test]
    fn shapes_of_patterns() {
        assert_eq!(plan(""), (LikeShape::Exact(String::new()), true));
        assert_eq!(plan("abc"), (LikeShape::Exact("abc".into()), true));
        assert_eq!(plan("a\\%b"), (LikeShape::Exact("a%b".into()), true));
        assert_eq!(plan("a\\_\\\\"), (LikeShape::Exact("a_\\".into()), true));
        assert_eq!(
            plan("ab\\"),
            (LikeShape::Exact("ab\\".into()), true),
            "trailing \\"
        );
        assert_eq!(plan("abc%"), (prefix("abc"), true));
        assert_eq!(plan("abc%%"), (prefix("abc"), true));
        assert_eq!(plan("abc_%"), (prefix("abc"), false));
        assert_eq!(plan("abc_"), (prefix("abc"), false));
        assert_eq!(plan("abc%d"), (prefix("abc"), false));
        assert_eq!(
            plan("a%longer%"),
            (prefix("a"), false),
            "the leading run wins"
        );
        assert_eq!(plan("a\\%%"), (prefix("a%"), true));
        assert_eq!(plan("%abc%"), (infix("abc"), true));
        assert_eq!(plan("%%abc%%"), (infix("abc"), true));
        assert_eq!(plan("%abc"), (infix("abc"), false));
        assert_eq!(plan("_abc%"), (infix("abc"), false));
        assert_eq!(plan("%ab%cde%"), (infix("cde"), false), "the longest run");
        assert_eq!(
            plan("%abc%de_f%xyz"),
            (infix("abc"), false),
            "the first of ties"
        );
        assert_eq!(plan("%a\\%b%"), (infix("a%b"), true));
        assert_eq!(
            plan("%üb%"),
            (infix("üb"), true),
            "runs are measured in bytes"
        );
        assert_eq!(plan("%"), (LikeShape::AnyText, true));
        assert_eq!(plan("%%%"), (LikeShape::AnyText, true));
        assert_eq!(plan("_"), (LikeShape::NoLiteral, false));
        assert_eq!(plan("___"), (LikeShape::NoLiteral, false));
        assert_eq!(plan("_%"), (LikeShape::NoLiteral, false));
        assert_eq!(plan("%_%"), (LikeShape::NoLiteral, false));
    }

    #[test]
    fn prefix_is_cut_to_the_probe_length_on_a_char_boundary() {
        assert_eq!(
            plan("0123456789abcdef%"),
            (prefix("0123456789abcdef"), true)
        );
        assert_eq!(
            plan("0123456789abcdefg%"),
            (prefix("0123456789abcdef"), false)
        );
        // `ü` is two bytes: 15 + 2 > 16, so the cut falls before it
        assert_eq!(
            plan("0123456789abcdeü%"),
            (prefix("0123456789abcde"), false)
        );
        assert_eq!(plan("ΣΣΣΣΣΣΣΣΣ%"), (prefix("ΣΣΣΣΣΣΣΣ"), false));
        let exact = "0123456789abcdefghij";
        assert_eq!(
            plan(exact),
            (LikeShape::Exact(exact.into()), true),
            "never cut"
        );
    }

    #[test]
    fn ilike_folds_the_literal_as_the_residual_does() {
        let p = |s| LikePlan::new(s, true).shape;
        assert_eq!(p("ABC%"), prefix("abc"));
        assert_eq!(p("%İSTANBUL%"), infix("istanbul"));
        assert_eq!(p("%ΣΑΣ"), infix("σασ"), "final sigma folds to σ, never ς");
        assert_eq!(
            p("STRAßE"),
            LikeShape::Exact("straße".into()),
            "ß stays one character"
        );
        assert_eq!(p("A\\%B"), LikeShape::Exact("a%b".into()));
        let plan = LikePlan::new("%BUG%", true);
        assert!(plan.implied && plan.admits(&fold_case("a BUG here")));
    }

    #[test]
    fn admits_by_shape() {
        let a = |p: &str, t: &str| LikePlan::new(p, false).admits(t);
        assert!(a("abc", "abc") && !a("abc", "abcd"));
        assert!(
            a("ab_%", "abx") && a("ab_%", "ab"),
            "a prefix, `_` left to the residual"
        );
        assert!(a("%bc%", "abcd") && !a("%bc%", "acbd"));
        assert!(a("%", "") && a("___", ""));
    }

    /// A text `pattern` matches: its literals (for ILIKE maybe upper-cased), `_` and `%`
    /// filled from `fill`.
    fn instance(pattern: &str, fill: &[char], upper: bool) -> String {
        let mut fill = fill.iter().copied().cycle();
        let mut text = String::new();
        for (i, token) in tokens(pattern).enumerate() {
            match token {
                Token::Char(c) if upper && i % 2 == 0 => text.push(upper_char(c)),
                Token::Char(c) => text.push(c),
                Token::One => text.extend(fill.next()),
                Token::Any => text.extend(fill.by_ref().take(i % 3)),
            }
        }
        text
    }

    /// Checks `plan` against `matched` on `text` (as the slot keys it): no false negative,
    /// and exact when implied.
    fn check(plan: &LikePlan, text: &str, matched: bool) -> Result<(), TestCaseError> {
        if matched {
            prop_assert!(plan.admits(text), "{:?} not admitted by {:?}", text, plan);
        }
        if plan.implied {
            prop_assert_eq!(plan.admits(text), matched, "{:?} by {:?}", text, plan);
        }
        Ok(())
    }

    const TEXT: &str = "[abAüÜΣσςİiß%_\\\\]{0,10}";
    const PATTERN: &str = "[abAüΣσİiß%_\\\\]{0,7}";

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4_000))]

        #[test]
        fn like_plans_admit_every_match(
            t in TEXT,
            p in PATTERN,
            fill in proptest::collection::vec(proptest::sample::select(vec!['a', 'ü', 'Σ', '%']), 1..4),
        ) {
            let plan = LikePlan::new(&p, false);
            check(&plan, &t, like(&t, &p))?;
            let hit = instance(&p, &fill, false);
            prop_assert!(like(&hit, &p), "instance {:?} of {:?}", hit, p);
            check(&plan, &hit, true)?;
            // `lower(col) LIKE p` and `upper(col) LIKE p`: the pattern as written, on f(col)
            for f in [Func::Lower, Func::Upper, Func::LowerAscii] {
                let ft = f.fold(&t).unwrap_or_default();
                check(&plan, &ft, like(&ft, &p))?;
            }
        }

        #[test]
        fn ilike_plans_admit_every_match_on_folded_text(
            t in TEXT,
            p in PATTERN,
            fill in proptest::collection::vec(proptest::sample::select(vec!['A', 'ü', 'İ', 'ς']), 1..4),
        ) {
            let plan = LikePlan::new(&p, true);
            let folded = fold_case(&p);
            check(&plan, &fold_case(&t), ilike_lowered(&t, &folded))?;
            let hit = instance(&p, &fill, true);
            prop_assert!(ilike_lowered(&hit, &folded), "instance {:?} of {:?}", hit, p);
            check(&plan, &fold_case(&hit), true)?;
            // the folded text is what `lower(col)` gives: one slot serves both
            prop_assert_eq!(Func::Lower.fold(&t), Some(fold_case(&t)));
        }
    }
}
