//! Software prefetch: a batch's pass asks for the cache lines a later pass will read, so
//! that the misses of many keys overlap instead of being paid one after another (a hint:
//! no effect on answers, a no-op off x86_64).
#![allow(unsafe_code)]

/// Starts loading the cache line holding `bytes[at]` (nothing when `at` is out of bounds).
#[inline(always)]
pub(crate) fn prefetch(bytes: &[u8], at: usize) {
    if at < bytes.len() {
        line(bytes.as_ptr().wrapping_add(at));
    }
}

/// Starts loading the cache line holding `words[at]` (nothing when `at` is out of bounds):
/// the router's presence filter blocks.
#[inline(always)]
pub(crate) fn prefetch_word(words: &[u64], at: usize) {
    if at < words.len() {
        line(words.as_ptr().wrapping_add(at).cast::<u8>());
    }
}

/// Starts loading the cache line holding `p`, which points into a live slice (the callers
/// check the bounds).
#[inline(always)]
fn line(p: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` needs SSE, which every x86_64 CPU has (it is part of the
    // target's baseline); a prefetch is a hint that never faults, reads nothing
    // architecturally and writes nothing, and `p` points into a slice anyway.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast::<i8>())
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
