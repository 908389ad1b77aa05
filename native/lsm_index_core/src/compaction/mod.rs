//! Compaction: a pure policy (`strategy`) decides, the `executor` builds segments, the
//! `workers` (a thread pool) run the builds in the background.
pub mod executor;
pub mod strategy;
pub mod workers;
