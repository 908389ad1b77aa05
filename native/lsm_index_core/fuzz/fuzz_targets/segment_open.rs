//! Any bytes opened as a segment (fully verified or lazily) give an error or a segment whose
//! probes and decodes stay in bounds: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::segment::{Probe, Segment};

fuzz_target!(|data: &[u8]| {
    for verify in [true, false] {
        if let Ok(seg) = Segment::open(data.to_vec(), "fuzz", verify) {
            let mut out = Vec::new();
            for fp in [0u64, 1, u64::MAX, 0x9E37_79B9_7F4A_7C15] {
                if let Probe::Found(v) = seg.probe(fp) {
                    let _ = seg.decode(v, &mut out);
                }
            }
            let _ = seg.entries().count();
        }
    }
});
