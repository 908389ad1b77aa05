//! The router's counters: what every routed change cost and how well each stage filtered.
//! All relaxed atomics, updated by concurrent routes under the router's read lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::OnceLock;

/// Sub-buckets per power of two of the latency histogram (2 bits: <= 25% relative error).
const SUB: usize = 4;
/// Histogram buckets: every power of two of a u64 nanosecond count.
const BUCKETS: usize = 64 * SUB;

/// Counters of one router.
#[derive(Debug)]
pub struct Metrics {
    pub(super) changes: AtomicU64,
    pub(super) timed: AtomicU64,
    pub(super) route_ns: AtomicU64,
    pub(super) presence_probes: AtomicU64,
    pub(super) presence_passes: AtomicU64,
    pub(super) presence_false_positives: AtomicU64,
    pub(super) candidates: AtomicU64,
    pub(super) evaluations: AtomicU64,
    pub(super) evaluations_saved: AtomicU64,
    pub(super) unparseable_rows: AtomicU64,
    pub(super) evaluation_errors: AtomicU64,
    /// Allocated by the first timed route (an idle router does not pay its 2 KiB).
    latency: OnceLock<Box<[AtomicU64]>>,
}

/// Counts gathered by one reader and added to the shared counters when it is done (one
/// atomic add per counter per batch, not per change).
#[derive(Debug, Default)]
pub(super) struct Counts {
    pub changes: u64,
    pub timed: u64,
    pub route_ns: u64,
    pub presence_probes: u64,
    pub presence_passes: u64,
    pub presence_false_positives: u64,
    pub candidates: u64,
    pub evaluations: u64,
    pub evaluations_saved: u64,
    pub unparseable_rows: u64,
    pub evaluation_errors: u64,
}

/// A snapshot of a router's metrics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Snapshot {
    /// Changes routed (an update counts once).
    pub changes: u64,
    /// Mean route time per change, ns: every single `route`, and one change in eight of a
    /// batch (each timed alone), so the mean and quantiles are of a sample.
    pub mean_route_ns: f64,
    /// Median route time, ns (upper bound of its histogram bucket, <= 25% over).
    pub p50_route_ns: u64,
    /// 99th percentile route time, ns (same resolution).
    pub p99_route_ns: u64,
    /// Index probes (one per indexed column with a value, per row).
    pub presence_probes: u64,
    /// Probes the presence filter let through (the value may be indexed).
    pub presence_passes: u64,
    /// Probes let through whose index lookup found no shape.
    pub presence_false_positives: u64,
    /// Shapes the index returned, to be checked by their residual.
    pub candidates: u64,
    /// Residual programs run (candidates and scanned shapes).
    pub predicate_evaluations: u64,
    /// Shapes answered by another shape's run: the rest of a group, whose template ran once.
    pub evaluations_saved: u64,
    /// Rows with a value that did not parse for its column (routed conservatively).
    pub unparseable_rows: u64,
    /// Shape evaluations that raised an error (overflow, division by zero): the row was
    /// routed to the shape, as it could match.
    pub evaluation_errors: u64,
}

impl Snapshot {
    /// Share of probes the presence filter let through.
    pub fn presence_hit_rate(&self) -> f64 {
        ratio(self.presence_passes, self.presence_probes)
    }

    /// Share of the probes that found nothing which the presence filter still let through.
    pub fn presence_false_positive_rate(&self) -> f64 {
        let negatives =
            self.presence_probes - (self.presence_passes - self.presence_false_positives);
        ratio(self.presence_false_positives, negatives)
    }

    /// Index candidates per routed change.
    pub fn candidates_per_change(&self) -> f64 {
        ratio(self.candidates, self.changes)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            changes: AtomicU64::new(0),
            timed: AtomicU64::new(0),
            route_ns: AtomicU64::new(0),
            presence_probes: AtomicU64::new(0),
            presence_passes: AtomicU64::new(0),
            presence_false_positives: AtomicU64::new(0),
            candidates: AtomicU64::new(0),
            evaluations: AtomicU64::new(0),
            evaluations_saved: AtomicU64::new(0),
            unparseable_rows: AtomicU64::new(0),
            evaluation_errors: AtomicU64::new(0),
            latency: OnceLock::new(),
        }
    }
}

impl Metrics {
    /// Records one change routed in `ns` nanoseconds in the latency histogram (the totals
    /// come with [`Metrics::add`]).
    pub(super) fn record_latency(&self, ns: u64) {
        let latency = self
            .latency
            .get_or_init(|| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect());
        latency[bucket(ns)].fetch_add(1, Relaxed);
    }

    /// Adds a reader's counts.
    pub(super) fn add(&self, c: &Counts) {
        for (counter, n) in [
            (&self.changes, c.changes),
            (&self.timed, c.timed),
            (&self.route_ns, c.route_ns),
            (&self.presence_probes, c.presence_probes),
            (&self.presence_passes, c.presence_passes),
            (&self.presence_false_positives, c.presence_false_positives),
            (&self.candidates, c.candidates),
            (&self.evaluations, c.evaluations),
            (&self.evaluations_saved, c.evaluations_saved),
            (&self.unparseable_rows, c.unparseable_rows),
            (&self.evaluation_errors, c.evaluation_errors),
        ] {
            if n != 0 {
                counter.fetch_add(n, Relaxed);
            }
        }
    }

    /// A consistent-enough snapshot (each counter read once).
    pub fn snapshot(&self) -> Snapshot {
        let counts: Vec<u64> = match self.latency.get() {
            Some(latency) => latency.iter().map(|c| c.load(Relaxed)).collect(),
            None => vec![0; BUCKETS],
        };
        let changes = self.changes.load(Relaxed);
        Snapshot {
            changes,
            mean_route_ns: ratio(self.route_ns.load(Relaxed), self.timed.load(Relaxed)),
            p50_route_ns: quantile(&counts, 0.50),
            p99_route_ns: quantile(&counts, 0.99),
            presence_probes: self.presence_probes.load(Relaxed),
            presence_passes: self.presence_passes.load(Relaxed),
            presence_false_positives: self.presence_false_positives.load(Relaxed),
            candidates: self.candidates.load(Relaxed),
            predicate_evaluations: self.evaluations.load(Relaxed),
            evaluations_saved: self.evaluations_saved.load(Relaxed),
            unparseable_rows: self.unparseable_rows.load(Relaxed),
            evaluation_errors: self.evaluation_errors.load(Relaxed),
        }
    }
}

/// The histogram bucket of `ns`: its power of two and the next two bits below it.
fn bucket(ns: u64) -> usize {
    if ns < SUB as u64 {
        return ns as usize;
    }
    let log = 63 - ns.leading_zeros() as usize;
    let sub = ((ns >> (log - 2)) & (SUB as u64 - 1)) as usize;
    (log - 1) * SUB + sub
}

/// The largest value that falls in bucket `b`.
fn bucket_top(b: usize) -> u64 {
    if b < SUB {
        return b as u64;
    }
    let log = b / SUB + 1;
    let sub = (b % SUB) as u64;
    ((SUB as u64 + sub + 1) << (log - 2)) - 1
}

fn quantile(counts: &[u64], q: f64) -> u64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return 0;
    }
    let rank = ((total as f64 * q).ceil() as u64).max(1);
    let mut seen = 0;
    for (b, &c) in counts.iter().enumerate() {
        seen += c;
        if seen >= rank {
            return bucket_top(b);
        }
    }
    bucket_top(counts.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_their_values() {
        for ns in (0..5000).chain([1 << 20, (1 << 20) + 12345, u64::MAX / 3]) {
            let b = bucket(ns);
            assert!(
                ns <= bucket_top(b),
                "{ns} in bucket {b} tops at {}",
                bucket_top(b)
            );
            if b > 0 {
                assert!(ns > bucket_top(b - 1), "{ns} belongs below bucket {b}");
            }
            assert!(bucket_top(b) as f64 <= ns as f64 * 1.25 + 1.0);
        }
    }

    #[test]
    fn quantiles_of_recorded_routes() {
        let m = Metrics::default();
        for _ in 0..98 {
            m.record_latency(100);
        }
        m.record_latency(20_000);
        m.record_latency(20_000);
        m.add(&Counts {
            changes: 100,
            timed: 100,
            route_ns: 9800 + 40_000,
            ..Counts::default()
        });
        let s = m.snapshot();
        assert_eq!(s.changes, 100);
        assert!((100..=125).contains(&s.p50_route_ns), "{}", s.p50_route_ns);
        assert!(
            (20_000..=25_000).contains(&s.p99_route_ns),
            "{}",
            s.p99_route_ns
        );
        assert!((s.mean_route_ns - (9800.0 + 40_000.0) / 100.0).abs() < 1e-9);
    }
}
