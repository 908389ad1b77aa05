//! Any bytes as packed changes (`ShapeRouter.route_many_packed/2`'s input) are refused or
//! read to changes that pack back to exactly those bytes, whatever the chunk size: never a
//! panic, never a cell read outside the buffer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::packed_changes::{pack, Changes, Chunk};

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let Ok(mut changes) = Changes::new(bytes) else {
        return;
    };
    let width = changes.width();
    let mut back = pack(width, &[]);
    let mut read = Chunk::default();
    let mut count = 0u32;
    loop {
        let Ok(n) = changes.read(usize::from(chunk).max(1), &mut read) else {
            return;
        };
        back.extend_from_slice(&pack(width, &read.changes())[8..]);
        count += n as u32;
        if changes.remaining() == 0 {
            break;
        }
    }
    back[4..8].copy_from_slice(&count.to_le_bytes());
    assert_eq!(back, bytes);
});
