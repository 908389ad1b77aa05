//! lsm_index_core: a lane-partitioned LSM equality index mapping key bytes to sorted sets of
//! `u32` shape handles, built for tens of millions of keys under add/remove churn.
//!
//! ```
//! use lsm_index_core::{Config, Index};
//! let index = Index::new(Config::default()).unwrap();
//! index.add(b"user_id=42", 7).unwrap();
//! index.add(b"user_id=42", 3).unwrap();
//! assert_eq!(index.lookup(b"user_id=42").unwrap(), vec![3, 7]);
//! index.drop_handle(7).unwrap();
//! assert_eq!(index.lookup(b"user_id=42").unwrap(), vec![3]);
//! ```
#![deny(unsafe_code)]
#![warn(missing_docs)]

// The rooms are private (`pub(crate)` by default); what the NIF, the operator tool, benches
// and tests use is re-exported below. Public modules: the WHERE language and the router (each
// a subsystem with its own API), the documented file formats (`segment`, `manifest`,
// `wal`: the operator tool and the fuzz targets read them), and the key encodings (`key`,
// and `packed`: a batch of keys in one buffer, the NIF's packed lookups).
mod alloc;
mod batch;
mod clock;
mod compaction;
mod dead;
mod durable;
mod error;
mod failpoint;
mod handle_counts;
mod handles;
mod hash;
mod index;
pub mod key;
mod lane;
pub mod manifest;
mod overlay;
pub mod packed;
pub mod packed_changes;
pub mod predicate;
mod prefetch;
pub mod router;
pub mod segment;
mod store;
mod version;
pub mod wal;

pub use alloc::LargeBlocks;
pub use batch::Batch;
pub use compaction::strategy::PolicyKind;
pub use error::{Error, FileKind, Result};
pub use index::{
    on_done, Config, Edit, Index, JobEvent, JobFailure, JobReport, Listener, Overload, Stats,
    LOGICAL_OP_BYTES,
};
pub use segment::mph::MphKind;
pub use segment::SegmentLayout;
pub use wal::SyncMode;

/// Building blocks the criterion benches and the NIF's instrumentation reach into; not part of
/// the stable API.
#[doc(hidden)]
pub mod internals {
    pub use crate::clock::{current_cpu, monotonic, thread_cpu_time, thread_usage, ThreadUsage};
    pub use crate::compaction::executor;
    pub use crate::dead::DeadHandles;
    pub use crate::hash::{jump_hash, HashSecret, KeyHasher};
    pub use crate::overlay::{Entry, Overlay};
    pub use crate::version::SegmentRef;
}

/// Compiles and runs the README's usage example, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
