//! Compaction policies: pure functions from a lane's shape to a decision, so they can be
//! tested and simulated without building anything (see the simulator test below, whose table
//! DESIGN.md records).
//!
//! A frozen overlay is never written on its own if the lane is full: the policy may merge it
//! with the newest segments in the same build ([`Choice::Flush`]), so a lane never holds more
//! than its segment cap, even for a moment, and the flushed keys are not written twice.

/// One segment as a policy sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentShape {
    /// Level it was written at (0 for a plain flush; a merge's output is one above its inputs).
    pub level: u32,
    /// Keys it holds (tombstones included).
    pub keys: u64,
}

/// An immutable description of a lane: its segments and the overlay waiting to be flushed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LaneShape {
    /// Newest first.
    pub segments: Vec<SegmentShape>,
    /// Keys of the frozen overlay to flush now, if any.
    pub flush: Option<u64>,
}

/// What to do with a lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Nothing to do.
    Idle,
    /// Write the frozen overlay merged with the `merge` newest segments (0: on its own).
    Flush {
        /// Newest segments merged with it.
        merge: usize,
    },
    /// Merge `count` segments starting at index `start` (newest first) into one.
    Merge {
        /// Index of the newest input.
        start: usize,
        /// Number of adjacent inputs.
        count: usize,
    },
}

/// A compaction policy.
pub trait Strategy: Send + Sync {
    /// The next step for `lane`. With `lane.flush` set the answer must be [`Choice::Flush`].
    fn choose(&self, lane: &LaneShape) -> Choice;
}

/// The level of a build merging `inputs` (plus an overlay): one above the highest input.
pub fn output_level(inputs: &[SegmentShape]) -> u32 {
    inputs.iter().map(|s| s.level + 1).max().unwrap_or(0)
}

/// Triangular (lazy binary-carry) compaction, after lsmtk: nothing is merged until a flush
/// would exceed `max_segments`; then the flush is merged with the newest run of segments,
/// extended while the run so far is at least `1/size_ratio` of the next older segment — like
/// a binary counter carrying through every full digit at once. Under churn over a fixed key
/// set this gives the lowest write amplification of the policies simulated (DESIGN.md).
#[derive(Clone, Debug)]
pub struct Triangular {
    /// Most segments a lane holds (lookups probe at most this many, plus overlays).
    pub max_segments: usize,
    /// Carry into the next older segment when `run_keys * size_ratio >= older_keys`.
    pub size_ratio: f64,
}

impl Default for Triangular {
    fn default() -> Self {
        Triangular {
            max_segments: 4,
            size_ratio: 1.25,
        }
    }
}

impl Strategy for Triangular {
    fn choose(&self, lane: &LaneShape) -> Choice {
        let segs = &lane.segments;
        let Some(flush) = lane.flush else {
            return over_cap(segs, self.max_segments);
        };
        if segs.len() < self.max_segments {
            return Choice::Flush { merge: 0 };
        }
        // A merge must bring the count under the cap: at least `len - max + 1` segments.
        let min_merge = segs.len() + 1 - self.max_segments;
        let mut run = flush + segs[..min_merge].iter().map(|s| s.keys).sum::<u64>();
        let mut merge = min_merge;
        while merge < segs.len() && run as f64 * self.size_ratio >= segs[merge].keys as f64 {
            run += segs[merge].keys;
            merge += 1;
        }
        Choice::Flush { merge }
    }
}

/// Leveled compaction (size ratio): every segment holds at least `size_ratio` times the keys
/// of the newer one next to it, so a lane is a few levels growing geometrically. A flush
/// carries into the newer segments as long as the run would break that ratio — eagerly, at
/// every flush, not only at the cap: fewer segments, more rewriting.
#[derive(Clone, Debug)]
pub struct Leveled {
    /// Most segments a lane holds.
    pub max_segments: usize,
    /// Keys ratio between adjacent segments.
    pub size_ratio: f64,
}

impl Default for Leveled {
    fn default() -> Self {
        Leveled {
            max_segments: 4,
            size_ratio: 4.0,
        }
    }
}

impl Strategy for Leveled {
    fn choose(&self, lane: &LaneShape) -> Choice {
        let segs = &lane.segments;
        let Some(flush) = lane.flush else {
            return over_cap(segs, self.max_segments);
        };
        let mut run = flush;
        let mut merge = 0;
        while merge < segs.len() && run as f64 * self.size_ratio > segs[merge].keys as f64 {
            run += segs[merge].keys;
            merge += 1;
        }
        Choice::Flush {
            merge: merge.max((segs.len() + 1).saturating_sub(self.max_segments)),
        }
    }
}

/// Merges the newest segments when a lane holds more than `max` (after a configuration
/// change lowered the cap); idle otherwise.
fn over_cap(segs: &[SegmentShape], max: usize) -> Choice {
    if segs.len() > max {
        Choice::Merge {
            start: 0,
            count: segs.len() - max + 1,
        }
    } else {
        Choice::Idle
    }
}

/// Merge everything into one segment (used by a full `compact`).
#[derive(Clone, Debug, Default)]
pub struct Full;

impl Strategy for Full {
    fn choose(&self, lane: &LaneShape) -> Choice {
        match lane.flush {
            Some(_) => Choice::Flush {
                merge: lane.segments.len(),
            },
            None if lane.segments.len() >= 2 => Choice::Merge {
                start: 0,
                count: lane.segments.len(),
            },
            None => Choice::Idle,
        }
    }
}

/// The policies an index can be configured with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    /// [`Triangular`] (the default: lowest write amplification in the simulator).
    Triangular,
    /// [`Leveled`].
    Leveled,
}

impl PolicyKind {
    /// Every policy.
    pub const ALL: [PolicyKind; 2] = [PolicyKind::Triangular, PolicyKind::Leveled];

    /// Its name (the Elixir option's value).
    pub fn name(self) -> &'static str {
        match self {
            PolicyKind::Triangular => "triangular",
            PolicyKind::Leveled => "leveled",
        }
    }

    /// The policy for `name` (as [`PolicyKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<PolicyKind> {
        match name {
            "triangular" => Some(PolicyKind::Triangular),
            "leveled" => Some(PolicyKind::Leveled),
            _ => None,
        }
    }

    /// The size ratio used when none is configured (the simulator's best for each policy).
    pub fn default_size_ratio(self) -> f64 {
        match self {
            PolicyKind::Triangular => 1.25,
            PolicyKind::Leveled => 4.0,
        }
    }

    /// Builds the policy with a segment cap and size ratio.
    pub fn build(self, max_segments: usize, size_ratio: f64) -> Box<dyn Strategy> {
        match self {
            PolicyKind::Triangular => Box::new(Triangular {
                max_segments,
                size_ratio,
            }),
            PolicyKind::Leveled => Box::new(Leveled {
                max_segments,
                size_ratio,
            }),
        }
    }
}

/// A policy simulator: no disk, no keys — segment sizes only, under uniform random churn
/// over a fixed live key set, where a merge holds the distinct keys of its inputs. Run by the
/// simulator test, whose table DESIGN.md quotes.
#[cfg(test)]
pub mod simulator {
    use super::*;

    /// What a simulated run measured (after a warm-up).
    #[derive(Clone, Copy, Debug)]
    pub struct Report {
        /// Keys written by flushes and merges per key flushed.
        pub write_amplification: f64,
        /// Most segments a lane ever held.
        pub max_segments: usize,
        /// Most keys held over all segments, per live key (1.0 = no duplicates).
        pub space_amplification: f64,
        /// Mean segments per lane (the read cost of a miss without prefilters).
        pub mean_segments: f64,
    }

    /// Drives `policy` with `flushes` flushes of `flush` distinct keys into a lane of `live`
    /// keys under uniform churn, measuring after the first `warmup` flushes.
    pub fn run(
        policy: &dyn Strategy,
        flush: u64,
        live: u64,
        flushes: usize,
        warmup: usize,
    ) -> Report {
        let live_f = live as f64;
        // A segment is (updates it absorbed, distinct keys = live * (1 - e^(-updates/live))).
        let updates_of_flush = -live_f * (1.0 - flush as f64 / live_f).ln();
        let distinct = |u: f64| live_f * (1.0 - (-u / live_f).exp());
        let mut segs: Vec<(f64, SegmentShape)> = Vec::new();
        let shape = |segs: &[(f64, SegmentShape)], flush: Option<u64>| LaneShape {
            segments: segs.iter().map(|s| s.1).collect(),
            flush,
        };
        let (mut flushed, mut written, mut max_segs, mut space, mut seg_sum) =
            (0u64, 0u64, 0usize, 0f64, 0usize);
        let mut merge = |segs: &mut Vec<(f64, SegmentShape)>,
                         start: usize,
                         count: usize,
                         extra: f64,
                         measured: bool| {
            let inputs = &segs[start..start + count];
            let updates = extra + inputs.iter().map(|s| s.0).sum::<f64>();
            let level = if count == 0 {
                0
            } else {
                output_level(&inputs.iter().map(|s| s.1).collect::<Vec<_>>())
            };
            // the bottom holds exactly the live keys (tombstones dropped)
            let keys = if start + count == segs.len() && count > 0 {
                live
            } else {
                distinct(updates).round() as u64
            };
            if measured {
                written += keys;
            }
            segs.splice(
                start..start + count,
                [(updates, SegmentShape { level, keys })],
            );
        };
        for i in 0..flushes {
            let measured = i >= warmup;
            match policy.choose(&shape(&segs, Some(flush))) {
                Choice::Flush { merge: m } => {
                    let m = m.min(segs.len());
                    merge(&mut segs, 0, m, updates_of_flush, measured)
                }
                other => panic!("a flush must be a Flush decision, got {other:?}"),
            }
            if measured {
                flushed += flush;
            }
            while let Choice::Merge { start, count } = policy.choose(&shape(&segs, None)) {
                merge(&mut segs, start, count, 0.0, measured);
            }
            if measured {
                max_segs = max_segs.max(segs.len());
                seg_sum += segs.len();
                let held: u64 = segs.iter().map(|s| s.1.keys).sum();
                space = space.max(held as f64 / live_f);
            }
        }
        Report {
            write_amplification: written as f64 / flushed as f64,
            max_segments: max_segs,
            space_amplification: space,
            mean_segments: seg_sum as f64 / (flushes - warmup) as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(keys: &[u64], flush: Option<u64>) -> LaneShape {
        LaneShape {
            segments: keys
                .iter()
                .map(|&k| SegmentShape { level: 0, keys: k })
                .collect(),
            flush,
        }
    }

    #[test]
    fn triangular_is_lazy_until_the_cap() {
        let t = Triangular::default();
        assert_eq!(t.choose(&shape(&[], None)), Choice::Idle);
        assert_eq!(
            t.choose(&shape(&[10, 10, 10], Some(10))),
            Choice::Flush { merge: 0 }
        );
        assert_eq!(
            t.choose(&shape(&[10, 10, 10, 10], None)),
            Choice::Idle,
            "no merge without a flush while within the cap"
        );
    }

    #[test]
    fn triangular_carries_through_full_digits() {
        let t = Triangular::default();
        // 10 + 10 = 20 >= 20 / 1.25: carries into the 20, then 40 * 1.25 < 1000 stops.
        assert_eq!(
            t.choose(&shape(&[10, 20, 30, 1000], Some(10))),
            Choice::Flush { merge: 3 }
        );
        // the run is small next to the second segment: only the minimum merge
        assert_eq!(
            t.choose(&shape(&[10, 100, 1000, 10_000], Some(10))),
            Choice::Flush { merge: 1 }
        );
    }

    #[test]
    fn policies_restore_a_lowered_cap() {
        for policy in [
            PolicyKind::Triangular.build(2, 1.25),
            PolicyKind::Leveled.build(2, 4.0),
        ] {
            assert_eq!(
                policy.choose(&shape(&[1, 2, 3, 4], None)),
                Choice::Merge { start: 0, count: 3 }
            );
            match policy.choose(&shape(&[1, 2, 3, 4], Some(1))) {
                Choice::Flush { merge } => assert!(merge >= 3, "merge {merge}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn leveled_merges_flushes_into_the_top_level() {
        let l = Leveled::default();
        assert_eq!(l.choose(&shape(&[], Some(10))), Choice::Flush { merge: 0 });
        // 10 * 4 > 20: the flush joins the top level, and 30 * 4 < 1000 stops there
        assert_eq!(
            l.choose(&shape(&[20, 1000], Some(10))),
            Choice::Flush { merge: 1 }
        );
        // the top level is 4x the flush: the flush starts a new one
        assert_eq!(
            l.choose(&shape(&[40, 1000], Some(10))),
            Choice::Flush { merge: 0 }
        );
        // 10 + 30 = 40 breaks the ratio with 100 (x4 = 160 > 100): carried down
        assert_eq!(
            l.choose(&shape(&[30, 100, 10_000], Some(10))),
            Choice::Flush { merge: 2 }
        );
    }

    #[test]
    fn full_merges_everything() {
        assert_eq!(
            Full.choose(&shape(&[1, 2, 3], Some(1))),
            Choice::Flush { merge: 3 }
        );
        assert_eq!(
            Full.choose(&shape(&[1, 2, 3], None)),
            Choice::Merge { start: 0, count: 3 }
        );
        assert_eq!(Full.choose(&shape(&[1], None)), Choice::Idle);
    }

    /// The simulator table (DESIGN.md, "Compaction policy"): each policy over a long churn
    /// workload at several live/flush ratios. The default must keep write amplification
    /// <= 3 at the default ratio (10M keys over 64 lanes, 16,384-key overlays: ~9.5) and
    /// never hold more than 4 segments.
    #[test]
    fn simulator_table() {
        let candidates: Vec<(&str, Box<dyn Strategy>)> = vec![
            (
                "triangular cap 4 ratio 1.25 (default)",
                PolicyKind::Triangular.build(4, 1.25),
            ),
            (
                "triangular cap 4 ratio 1.0",
                PolicyKind::Triangular.build(4, 1.0),
            ),
            (
                "triangular cap 3 ratio 1.5",
                PolicyKind::Triangular.build(3, 1.5),
            ),
            ("leveled cap 4 ratio 4", PolicyKind::Leveled.build(4, 4.0)),
            ("leveled cap 4 ratio 2", PolicyKind::Leveled.build(4, 2.0)),
        ];
        println!(
            "{:<40} {:>10} {:>8} {:>10} {:>9} {:>9}",
            "policy", "live/flush", "WA", "max segs", "mean segs", "space amp"
        );
        for (name, policy) in &candidates {
            for live in [65_536u64, 156_250, 327_680, 655_360] {
                let r = simulator::run(policy.as_ref(), 16_384, live, 3000, 500);
                println!(
                    "{name:<40} {:>10.1} {:>8.2} {:>10} {:>9.2} {:>9.2}",
                    live as f64 / 16_384.0,
                    r.write_amplification,
                    r.max_segments,
                    r.mean_segments,
                    r.space_amplification
                );
                assert!(r.max_segments <= 4, "{name}: {r:?}");
            }
        }
        let default = Triangular::default();
        let r = simulator::run(&default, 16_384, 156_250, 3000, 500);
        assert!(r.write_amplification <= 3.0, "default policy: {r:?}");
        assert!(r.max_segments <= 4);
    }
}
