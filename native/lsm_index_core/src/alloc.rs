//! A Rust global allocator that keeps large freed blocks for reuse, up to a bound.
//!
//! Compaction allocates and frees megabytes per job (segments, merge buffers, hash
//! construction). Returned to the OS — `munmap`, or an allocator trimming its heaps with
//! `madvise` — each such release flushes the TLB of every core running the process, and a
//! reader's next lookups walk page tables: at 10M keys lookup p99 was 5–6x slower while
//! compaction ran (DESIGN.md, "Background compaction"). Keeping every freed byte instead
//! (glibc's `mallopt`, process-wide) holds the process at its high-water mark.
//!
//! `LargeBlocks` serves allocations of [`LARGE`] bytes and more from anonymous mappings in
//! size classes (four per power of two: at most 25% rounding), and keeps freed blocks in a
//! small per-class cache — at most [`KEEP_BYTES`] — for the next job to reuse; a block the
//! cache has no room for is unmapped. When the compaction pool runs out of work the cache of
//! the [installed](LargeBlocks::install) allocator is emptied, so an idle index holds no
//! memory for reuse. Smaller allocations go to the system allocator.
//! It is a Rust global allocator: installed by the NIF library it serves only that library's
//! Rust code; the host VM's `malloc` is untouched.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Smallest allocation served from a mapping.
pub const LARGE: usize = 256 << 10;

/// Most bytes kept in freed blocks for reuse (while compaction runs).
pub const KEEP_BYTES: usize = 32 << 20;

/// Size classes: four per power of two from [`LARGE`] up to 2^47 bytes.
const CLASSES: usize = 4 * (47 - 17);

/// Freed blocks kept per class.
const SLOTS: usize = 8;

const PAGE: usize = 4096;

/// The allocator (see the module doc).
pub struct LargeBlocks {
    cached: [[AtomicPtr<u8>; SLOTS]; CLASSES],
    cached_bytes: AtomicUsize,
}

/// The allocator whose cache is emptied when compaction goes idle (see
/// [`LargeBlocks::install`]).
static INSTALLED: AtomicPtr<LargeBlocks> = AtomicPtr::new(ptr::null_mut());

/// Empties the installed allocator's cache (the compaction pool calls it when it runs out of
/// work).
pub(crate) fn release_cached() {
    let p = INSTALLED.load(Ordering::Acquire);
    if !p.is_null() {
        // SAFETY: only `install` stores here, from a `&'static LargeBlocks`
        unsafe { &*p }.trim(0);
    }
}

impl LargeBlocks {
    /// An allocator with an empty cache (for a `static`).
    #[allow(clippy::declare_interior_mutable_const)]
    pub const fn new() -> LargeBlocks {
        const EMPTY: AtomicPtr<u8> = AtomicPtr::new(ptr::null_mut());
        const ROW: [AtomicPtr<u8>; SLOTS] = [EMPTY; SLOTS];
        LargeBlocks {
            cached: [ROW; CLASSES],
            cached_bytes: AtomicUsize::new(0),
        }
    }

    /// Makes this (the global) allocator the one whose cache is emptied when compaction goes
    /// idle; the NIF library calls it at load.
    pub fn install(&'static self) {
        INSTALLED.store(ptr::from_ref(self).cast_mut(), Ordering::Release);
    }

    /// Bytes held in freed blocks right now.
    pub fn cached_bytes(&self) -> usize {
        self.cached_bytes.load(Ordering::Relaxed)
    }
}

impl Default for LargeBlocks {
    fn default() -> LargeBlocks {
        LargeBlocks::new()
    }
}

/// The class of a large `size` and the block size it rounds to.
fn class(size: usize) -> Option<(usize, usize)> {
    if !(LARGE..=(1 << 47)).contains(&size) {
        return None;
    }
    // size lies in (2^p, 2^(p+1)]: quarters of 2^p
    let p = usize::BITS as usize - 1 - (size - 1).leading_zeros() as usize;
    let step = 1usize << (p - 2);
    let k = (size - 1 - (1 << p)) / step; // 0..=3
    let block = (1 << p) + (k + 1) * step;
    let index = (p - 17) * 4 + k;
    (index < CLASSES).then_some((index, block.next_multiple_of(PAGE)))
}

fn large(layout: Layout) -> Option<(usize, usize)> {
    if layout.align() > PAGE {
        return None;
    }
    class(layout.size())
}

/// A fresh anonymous mapping of `len` bytes (zeroed), or null.
fn map(len: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's choosing touches no
    // existing memory; failure is MAP_FAILED, turned into null.
    let p = unsafe {
        libc::mmap(
            ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        ptr::null_mut()
    } else {
        p.cast()
    }
}

impl LargeBlocks {
    /// A cached block of class `index`, or null.
    fn take(&self, index: usize, block: usize) -> *mut u8 {
        for slot in &self.cached[index] {
            let p = slot.swap(ptr::null_mut(), Ordering::Acquire);
            if !p.is_null() {
                self.cached_bytes.fetch_sub(block, Ordering::Relaxed);
                return p;
            }
        }
        ptr::null_mut()
    }

    /// Keeps `p` (a block of class `index`) for reuse if there is room; whether it did.
    fn keep(&self, index: usize, block: usize, p: *mut u8) -> bool {
        if self.cached_bytes.fetch_add(block, Ordering::Relaxed) + block > KEEP_BYTES {
            self.cached_bytes.fetch_sub(block, Ordering::Relaxed);
            return false;
        }
        for slot in &self.cached[index] {
            if slot
                .compare_exchange(ptr::null_mut(), p, Ordering::Release, Ordering::Relaxed)
                .is_ok()
            {
                return true;
            }
        }
        self.cached_bytes.fetch_sub(block, Ordering::Relaxed);
        false
    }
}

impl LargeBlocks {
    /// Unmaps cached blocks, largest classes first, until at most `bound` bytes are cached.
    fn trim(&self, bound: usize) {
        for index in (0..CLASSES).rev() {
            for slot in &self.cached[index] {
                if self.cached_bytes.load(Ordering::Relaxed) <= bound {
                    return;
                }
                let p = slot.swap(ptr::null_mut(), Ordering::Acquire);
                if !p.is_null() {
                    let block = class_block(index);
                    self.cached_bytes.fetch_sub(block, Ordering::Relaxed);
                    // SAFETY: a cached block of class `index` is a mapping of that class's
                    // block size, owned by the cache alone (taken out by the swap)
                    unsafe { libc::munmap(p.cast(), block) };
                }
            }
        }
    }
}

/// The block size of class `index` (the inverse of [`class`]).
fn class_block(index: usize) -> usize {
    let (p, k) = (index / 4 + 17, index % 4);
    let step = 1usize << (p - 2);
    ((1usize << p) + (k + 1) * step).next_multiple_of(PAGE)
}

// SAFETY: every block handed out is either from `System` (small or over-aligned layouts, and
// given back to `System` by the same test on the layout) or a page-aligned mapping of at
// least the layout's size (its class's block size), given back by `dealloc` with the same
// layout, hence the same class: cached for reuse by a request of that class, or unmapped
// with the length it was mapped with. A cached block is in exactly one slot (taken by an
// atomic swap), so no block is handed out twice.
unsafe impl GlobalAlloc for LargeBlocks {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match large(layout) {
            None => System.alloc(layout),
            Some((index, block)) => {
                let p = self.take(index, block);
                if p.is_null() {
                    map(block)
                } else {
                    p
                }
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match large(layout) {
            None => System.alloc_zeroed(layout),
            Some((index, block)) => {
                let p = self.take(index, block);
                if p.is_null() {
                    // a fresh mapping is zeroed already
                    map(block)
                } else {
                    // SAFETY: `p` is a block of at least `layout.size()` bytes owned by us
                    unsafe { ptr::write_bytes(p, 0, layout.size()) };
                    p
                }
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        match large(layout) {
            None => System.dealloc(p, layout),
            Some((index, block)) => {
                if !self.keep(index, block, p) {
                    // SAFETY: `p` is a mapping of `block` bytes made by `map` (see above)
                    unsafe { libc::munmap(p.cast(), block) };
                }
            }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (large(layout), large(new_layout)) {
            // both small: the system allocator grows in place when it can
            (None, None) => System.realloc(p, layout, new_size),
            // the same block fits the new size
            (Some((a, _)), Some((b, _))) if a == b => p,
            _ => {
                let q = self.alloc(new_layout);
                if !q.is_null() {
                    // SAFETY: both blocks are ours and hold at least the smaller size
                    unsafe { ptr::copy_nonoverlapping(p, q, layout.size().min(new_size)) };
                    self.dealloc(p, layout);
                }
                q
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_round_up_by_at_most_a_quarter() {
        assert_eq!(class(LARGE - 1), None);
        for size in [
            LARGE,
            LARGE + 1,
            300_000,
            1 << 20,
            (1 << 20) + 1,
            3 << 20,
            100 << 20,
        ] {
            let (index, block) = class(size).unwrap_or_else(|| panic!("{size}"));
            assert!(
                block >= size && block <= size + size / 4 + PAGE,
                "{size} -> {block}"
            );
            assert_eq!(block % PAGE, 0);
            assert!(index < CLASSES);
            // every size of the class rounds to the same block
            assert_eq!(class(block).map(|c| c.1), Some(block), "{size}");
            assert_eq!(class_block(index), block, "{size}");
        }
    }

    #[test]
    fn blocks_are_reused_zeroed_and_bounded() {
        let a = LargeBlocks::new();
        let layout = Layout::from_size_align(1 << 20, 8).unwrap_or_else(|e| panic!("{e}"));
        // SAFETY: each block is used within its layout and freed once with it
        unsafe {
            let p = a.alloc(layout);
            assert!(!p.is_null());
            p.write_bytes(7, layout.size());
            a.dealloc(p, layout);
            assert!(a.cached_bytes() >= layout.size());
            let q = a.alloc_zeroed(layout);
            assert_eq!(q, p, "the freed block is reused");
            assert!(std::slice::from_raw_parts(q, layout.size())
                .iter()
                .all(|&b| b == 0));
            let r = a.realloc(q, layout, 3 << 20);
            assert!(!r.is_null());
            a.dealloc(r, Layout::from_size_align(3 << 20, 8).unwrap_or(layout));
            // more than the bound: the cache stays within it
            let big = Layout::from_size_align(40 << 20, 8).unwrap_or(layout);
            let (x, y) = (a.alloc(big), a.alloc(big));
            a.dealloc(x, big);
            a.dealloc(y, big);
            assert!(a.cached_bytes() <= KEEP_BYTES);
            a.trim(0);
            assert_eq!(a.cached_bytes(), 0);
            let small = Layout::from_size_align(64, 8).unwrap_or(layout);
            let s = a.alloc(small);
            a.dealloc(s, small);
        }
    }
}
