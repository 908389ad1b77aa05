//! Compaction: a pure policy decides, the executor builds segments, the pool runs the builds
//! in the background.
pub mod executor;
pub mod pool;
pub mod strategy;
