//! Any bytes as a router snapshot decode to a snapshot or a typed error: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = lsm_index_core::router::snapshot::check(data);
});
