//! Helpers shared by the integration tests.

use lsm_index_core::Index;
use std::sync::Arc;

/// Drops `index` as a crash would leave it (no checkpoint), once no background job holds
/// it: a running job keeps the index — and its directory lock — alive until it ends.
pub fn release(index: Arc<Index>) {
    // `wait_idle` answers at once for a poisoned index; a job still finishing holds the index
    // (and its directory lock) a moment longer: wait for it to let go
    let _ = index.wait_idle();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while Arc::strong_count(&index) > 1 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    drop(index);
}
