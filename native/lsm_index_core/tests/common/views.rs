//! Helpers of the subquery-view tests (`views_counts.rs`, `views_shapes.rs`).
#![allow(dead_code)]

use lsm_index_core::predicate::Value;
use lsm_index_core::router::views::{project, Projected};
use lsm_index_core::Config;

/// A view index that flushes and merges constantly (2 lanes, 4 keys an overlay).
pub fn config() -> Config {
    Config {
        lanes: 2,
        overlay_limit: 4,
        ..super::config()
    }
}

/// The value key of integer `v`, or NULL.
pub fn key(v: Option<u8>) -> Projected {
    match v {
        Some(v) => project(&[Some(&Value::Int(i64::from(v)))]),
        None => Projected::Null,
    }
}

/// The key bytes of a projection (`None`: NULL).
pub fn bytes(p: &Projected) -> Option<&[u8]> {
    match p {
        Projected::Key(k) => Some(&k[..]),
        Projected::Null => None,
    }
}
