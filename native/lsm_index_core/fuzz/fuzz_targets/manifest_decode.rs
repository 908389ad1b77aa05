//! Any bytes decoded as a manifest give an error or a validated manifest: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = lsm_index_core::manifest::Manifest::decode(data, "fuzz") {
        let _ = m.hash_secret();
    }
});
