//! Any bytes as a packed key list (`LsmIndex.lookup_many_packed/2`'s input) are refused or
//! parsed to keys that pack back to exactly those bytes: never a panic, never a key read
//! outside the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::packed;

fuzz_target!(|data: &[u8]| {
    if let Ok(keys) = packed::keys(data) {
        assert_eq!(packed::pack(&keys), data);
    }
});
