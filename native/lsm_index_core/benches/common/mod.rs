//! Helpers shared by the criterion benches.

/// Key counts to bench at: `LSM_BENCH_SIZES` (comma-separated), default 1M and 10M.
pub fn sizes() -> Vec<u64> {
    match std::env::var("LSM_BENCH_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1_000_000, 10_000_000],
    }
}
