//! Helpers shared by the integration tests.

use lsm_index_core::Index;
use std::sync::Arc;

/// Drops `index` as a crash would leave it (no checkpoint), once no background job holds
/// it: a running job keeps the index — and its directory lock — alive until it ends.
pub fn release(index: Arc<Index>) {
    let _ = index.wait_idle();
    drop(index);
}
