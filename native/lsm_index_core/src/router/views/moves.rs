//! Moves: which rows of a shape a change of its view moves in or out, by the polarity of
//! the subquery occurrence (PostgreSQL's `IN` / `NOT IN` with NULLs; plan §2.2–2.3). Pure:
//! it reads how one attachment saw its view change ([`Seen`]) and answers with at most a
//! move-out and a move-in.
//!
//! ```text
//! occurrence  view event                                   move
//! positive    x: 0 → ≥1 / ≥1 → 0                           in [x] / out [x]
//! positive    NULL rows, emptiness                         none
//! negative    a NULL appears (none before)                 out :all
//! negative    the last NULL goes                           in :all
//! negative    no NULL before or after: x enters / leaves   out [x] / in [x]
//! negative    … and empty → not empty / not empty → empty  nil added to out / in
//! negative    NULLs before and after                       none (NOT IN is never TRUE)
//! any         truncated while not empty                    out :all (pos.) / in :all (neg.)
//! ```
//!
//! `nil` stands for the outer rows whose tested column is NULL (`NULL NOT IN ∅` is TRUE,
//! `NULL NOT IN V` for a non-empty V is NULL). Moves are sorted by shape, move-outs first.

/// Whether an occurrence counts its subquery's membership for (an even number of NOTs
/// above it) or against (odd; `NOT IN` counts one) the shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Polarity {
    /// `x IN (SELECT …)` under an even number of NOTs.
    Positive,
    /// `x NOT IN (SELECT …)`, or `IN` under an odd number of NOTs.
    Negative,
}

/// Which way rows move; move-outs sort first (as the host applies them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveKind {
    /// Rows may have left the shape.
    Out,
    /// Rows may have entered the shape.
    In,
}

/// One value of a move's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MoveValue {
    /// The outer rows whose tested column is NULL.
    Null,
    /// A value, by the index of the first delta of the batch that carried it (the caller
    /// holds its text).
    Delta(u32),
}

/// The rows a move concerns.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MoveValues {
    /// Every row of the shape (re-query or re-check them all).
    All,
    /// The rows whose tested column is one of these, ascending (`Null` first).
    Values(Vec<MoveValue>),
}

/// How one attachment saw its view change in one batch.
#[derive(Clone, Copy, Debug, Default)]
pub struct Seen<'a> {
    /// Values that entered its view (delta indices).
    pub entered: &'a [u32],
    /// Values that left its view (delta indices).
    pub left: &'a [u32],
    /// Whether its view held a NULL row (before, after).
    pub nulls: (bool, bool),
    /// Whether its view was empty (before, after).
    pub empty: (bool, bool),
}

/// The moves (out, in) an occurrence of `polarity` makes when its view changed as `seen`.
pub fn classify(polarity: Polarity, seen: &Seen<'_>) -> [Option<MoveValues>; 2] {
    let values = |xs: &[u32], nil: bool| -> Option<MoveValues> {
        let mut v: Vec<MoveValue> = xs.iter().map(|&d| MoveValue::Delta(d)).collect();
        if nil {
            v.push(MoveValue::Null);
        }
        v.sort_unstable();
        (!v.is_empty()).then_some(MoveValues::Values(v))
    };
    match polarity {
        Polarity::Positive => [values(seen.left, false), values(seen.entered, false)],
        Polarity::Negative => match seen.nulls {
            (false, true) => [Some(MoveValues::All), None],
            (true, false) => [None, Some(MoveValues::All)],
            (true, true) => [None, None],
            (false, false) => [
                values(seen.entered, seen.empty == (true, false)),
                values(seen.left, seen.empty == (false, true)),
            ],
        },
    }
}

/// The move a truncate of the inner table makes for an occurrence whose view was `empty`
/// or not before it.
pub fn truncated(polarity: Polarity, empty: bool) -> Option<MoveKind> {
    match (empty, polarity) {
        (true, _) => None,
        (false, Polarity::Positive) => Some(MoveKind::Out),
        (false, Polarity::Negative) => Some(MoveKind::In),
    }
}

/// One move: `kind` rows of `shape`'s occurrence `position`, those of `values` (a list of
/// [`Moves`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Move {
    /// The shape.
    pub shape: u32,
    /// Out or in.
    pub kind: MoveKind,
    /// Its subquery's position (textual order in its WHERE).
    pub position: u8,
    /// The list of values, in [`Moves::values`].
    pub values: u32,
}

/// The moves of one batch: flat, with each distinct list of values stored once (the shapes
/// of one view share theirs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Moves {
    moves: Vec<Move>,
    lists: Vec<MoveValues>,
}

impl Moves {
    /// Stores a list of values; returns its number.
    pub fn list(&mut self, values: MoveValues) -> u32 {
        self.lists.push(values);
        (self.lists.len() - 1) as u32
    }

    /// Adds a move (over a stored list).
    pub fn push(&mut self, m: Move) {
        self.moves.push(m);
    }

    /// Sorts by shape, then move-outs first, then position.
    pub fn sort(&mut self) {
        self.moves.sort_unstable();
    }

    /// The moves, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Move, &MoveValues)> {
        self.moves
            .iter()
            .map(|m| (m, &self.lists[m.values as usize]))
    }

    /// The list a move refers to.
    pub fn values(&self, list: u32) -> Option<&MoveValues> {
        self.lists.get(list as usize)
    }

    /// How many moves.
    pub fn len(&self) -> usize {
        self.moves.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.moves.is_empty()
    }

    /// Appends `other`'s moves, its lists' delta indices moved up by `by` (a later batch of
    /// one change, whose deltas follow the earlier batches').
    pub fn extend_shifted(&mut self, other: Moves, by: u32) {
        let base = self.lists.len() as u32;
        for list in other.lists {
            self.lists.push(match list {
                MoveValues::All => MoveValues::All,
                MoveValues::Values(vs) => MoveValues::Values(
                    vs.into_iter()
                        .map(|v| match v {
                            MoveValue::Delta(i) => MoveValue::Delta(i + by),
                            null => null,
                        })
                        .collect(),
                ),
            });
        }
        self.moves.extend(other.moves.into_iter().map(|m| Move {
            values: m.values + base,
            ..m
        }));
    }

    /// Forgets every move and list (keeps the room).
    pub fn clear(&mut self) {
        self.moves.clear();
        self.lists.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::MoveValue::{Delta, Null};
    use super::MoveValues::{All, Values};
    use super::Polarity::{Negative, Positive};
    use super::*;

    fn seen<'a>(
        entered: &'a [u32],
        left: &'a [u32],
        nulls: (bool, bool),
        empty: (bool, bool),
    ) -> Seen<'a> {
        Seen {
            entered,
            left,
            nulls,
            empty,
        }
    }

    /// Plan §2.3, row by row.
    #[test]
    fn the_polarity_table() {
        let none = [None, None];
        // positive: values only
        let s = seen(&[1], &[2], (false, false), (false, false));
        assert_eq!(
            classify(Positive, &s),
            [Some(Values(vec![Delta(2)])), Some(Values(vec![Delta(1)]))]
        );
        // positive: NULLs and emptiness never move
        let s = seen(&[], &[], (false, true), (true, false));
        assert_eq!(classify(Positive, &s), none);
        let s = seen(&[], &[], (true, false), (false, true));
        assert_eq!(classify(Positive, &s), none);
        // negative: a NULL appears: everything out, whatever values did
        let s = seen(&[1], &[], (false, true), (true, false));
        assert_eq!(classify(Negative, &s), [Some(All), None]);
        // negative: the last NULL goes: everything in
        let s = seen(&[], &[3], (true, false), (false, false));
        assert_eq!(classify(Negative, &s), [None, Some(All)]);
        // negative, no NULL: reversed
        let s = seen(&[1, 4], &[2], (false, false), (false, false));
        assert_eq!(
            classify(Negative, &s),
            [
                Some(Values(vec![Delta(1), Delta(4)])),
                Some(Values(vec![Delta(2)]))
            ]
        );
        // negative, no NULL, empty → not empty: the NULL rows go out with the value
        let s = seen(&[5], &[], (false, false), (true, false));
        assert_eq!(
            classify(Negative, &s),
            [Some(Values(vec![Null, Delta(5)])), None]
        );
        // negative, no NULL, not empty → empty: they come back
        let s = seen(&[], &[5], (false, false), (false, true));
        assert_eq!(
            classify(Negative, &s),
            [None, Some(Values(vec![Null, Delta(5)]))]
        );
        // negative with NULLs throughout: NOT IN is never TRUE, nothing moves
        let s = seen(&[1], &[2], (true, true), (false, false));
        assert_eq!(classify(Negative, &s), none);
        // truncates
        assert_eq!(truncated(Positive, false), Some(MoveKind::Out));
        assert_eq!(truncated(Negative, false), Some(MoveKind::In));
        assert_eq!(truncated(Positive, true), None);
        assert_eq!(truncated(Negative, true), None);
    }

    #[test]
    fn moves_sort_by_shape_outs_first_and_share_lists() {
        let mut m = Moves::default();
        let all = m.list(All);
        let some = m.list(Values(vec![Delta(0)]));
        for (shape, kind, position, values) in [
            (2, MoveKind::In, 0, some),
            (1, MoveKind::In, 1, all),
            (2, MoveKind::Out, 1, all),
            (1, MoveKind::Out, 0, some),
        ] {
            m.push(Move {
                shape,
                kind,
                position,
                values,
            });
        }
        m.sort();
        let got: Vec<(u32, MoveKind, &MoveValues)> =
            m.iter().map(|(m, v)| (m.shape, m.kind, v)).collect();
        assert_eq!(
            got,
            vec![
                (1, MoveKind::Out, &Values(vec![Delta(0)])),
                (1, MoveKind::In, &All),
                (2, MoveKind::Out, &All),
                (2, MoveKind::In, &Values(vec![Delta(0)])),
            ]
        );
        assert_eq!(m.len(), 4);
        m.clear();
        assert!(m.is_empty());
    }
}
