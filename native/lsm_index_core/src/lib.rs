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

pub mod batch;
pub mod clock;
pub mod compaction;
pub mod dead;
pub mod durable;
pub mod error;
pub mod failpoint;
pub mod handles;
pub mod hash;
pub mod index;
pub mod key;
pub mod lane;
pub mod malloc;
pub mod manifest;
pub mod overlay;
pub mod predicate;
pub mod router;
pub mod segment;
pub mod store;
pub mod version;
pub mod wal;

pub use batch::Batch;
pub use error::{Error, FileKind, Result};

/// Compiles and runs the README's usage example, so it stays true.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
pub use index::{Config, Index, JobReport, Overload, Stats};
pub use segment::mph::MphKind;
