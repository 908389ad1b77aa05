//! Process allocator tuning for long-running hosts (the BEAM).
//!
//! Compaction allocates and frees megabytes per job (merge buffers, the segments it
//! replaces). glibc hands such blocks back to the OS (`munmap`, heap trimming), and every
//! unmapping flushes the TLB of each core running the process: a reader's next lookups then
//! walk page tables. At 10M keys that made lookup p99 2.3x slower while compaction ran
//! (DESIGN.md, "Background compaction"); keeping freed memory for reuse brought it to 1.03x.
#![allow(unsafe_code)]

/// Largest block glibc serves from its heaps instead of a fresh mapping (its maximum, 32 MiB
/// on 64-bit): lane segments stay below it up to ~150M keys per index.
const MMAP_THRESHOLD: i32 = 32 << 20;

/// Free memory at the top of a heap is kept up to this much instead of being trimmed.
const TRIM_THRESHOLD: i32 = i32::MAX;

/// Asks the C allocator to keep freed memory for reuse rather than return it to the OS (see
/// the module doc). Process-wide and idempotent; returns whether it applied (glibc only).
pub fn retain_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: `mallopt` only records tuning parameters; both are documented glibc
        // options with values in their accepted ranges, and it is thread-safe.
        unsafe {
            let mmap = libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            let trim = libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            mmap == 1 && trim == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    false
}
