//! lsm_index_core: a lane-partitioned LSM equality index mapping key bytes to sets of `u32`
//! shape handles, built for tens of millions of keys under add/remove churn.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod error;
pub mod handles;
pub mod hash;
pub mod segment;

pub use error::{Error, Result};
