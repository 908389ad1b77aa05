//! Crash injection for the crash suite: with the `failpoints` feature (enabled for this
//! crate's own tests only), `LSM_FAILPOINT=<name>:<n>` aborts the process at the n-th time
//! execution reaches the point `<name>`, so kills land exactly inside a segment write, a
//! manifest install or a log sync; `LSM_FAILPOINT=<name>:<n>:panic` panics there instead
//! (a failing compaction worker). Without the feature every point compiles to nothing.

/// Marks a crash point.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static TARGET: OnceLock<Option<(String, u64, bool)>> = OnceLock::new();
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let target = TARGET.get_or_init(|| {
        let spec = std::env::var("LSM_FAILPOINT").ok()?;
        let (spec, panic) = match spec.strip_suffix(":panic") {
            Some(rest) => (rest.to_string(), true),
            None => (spec, false),
        };
        let (point, n) = spec.rsplit_once(':')?;
        Some((point.to_string(), n.parse().ok()?, panic))
    });
    if let Some((point, n, panic)) = target {
        if point == name && COUNT.fetch_add(1, Ordering::SeqCst) + 1 == *n {
            if *panic {
                panic!("failpoint {name} reached");
            }
            std::process::abort();
        }
    }
}

/// Marks a crash point (inert: the `failpoints` feature is off).
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}
