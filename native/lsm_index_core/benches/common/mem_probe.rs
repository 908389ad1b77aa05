//! The memory limits a lookup's figures are read against: random 8-byte reads of a 1 GiB
//! array, each depending on the last (the chain a single lookup cannot avoid) and
//! independent of each other (what a batch's staged probes can reach).

use std::hint::black_box;
use std::time::Instant;

/// Nanoseconds per random read of 1 GiB: dependent, independent.
#[derive(Clone, Copy, Debug)]
pub struct MemProbe {
    pub dependent_ns: f64,
    pub independent_ns: f64,
}

const WORDS_LOG2: u32 = 27; // 2^27 u64 = 1 GiB
const READS: u64 = 4_000_000;

/// Measures both loops once (about 2 s, most of it filling the array).
pub fn mem_probe() -> MemProbe {
    let words = 1usize << WORDS_LOG2;
    let mask = (words - 1) as u64;
    // random words, filled in order (a splitmix sequence): a read's value is the next address
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let array: Vec<u64> = (0..words)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        })
        .collect();
    let start = Instant::now();
    let mut at = 0u64;
    for k in 0..READS {
        at = (array[at as usize] ^ k) & mask;
    }
    black_box(at);
    let dependent_ns = start.elapsed().as_nanos() as f64 / READS as f64;
    let start = Instant::now();
    let mut sum = 0u64;
    for k in 0..READS {
        let j = k.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - WORDS_LOG2);
        sum = sum.wrapping_add(array[j as usize]);
    }
    black_box(sum);
    let independent_ns = start.elapsed().as_nanos() as f64 / READS as f64;
    MemProbe {
        dependent_ns,
        independent_ns,
    }
}
