//! Compaction: a pure policy decides, the executor builds segments.
pub mod executor;
pub mod strategy;
