//! Per-handle key counts: for each handle, how many keys' sets hold it. An index made with
//! `Config::count_handles` keeps them exact through every write, drop and reopen, so its
//! caller learns when a handle's last key goes without counting anything itself (the Elixir
//! filter's `LsmEqualityIndex`, whose shapes are handles).
//!
//! Compact for handles numbered densely (shape ids 0, 1, 2, ...: one byte each), and still
//! small when they are scattered over the `u32` range (four bytes each, plus the page).
//! Handles are split in pages of 2^16 by their high 16 bits; only pages holding a counted
//! handle exist:
//!
//! ```text
//! pages: h >> 16 ─▶ Sparse [(h & 0xffff: u16, count: u8)], sorted     4 B a counted handle
//!                or Dense  [count: u8; 65536] + live handles          1 B a slot
//! big:   h ─▶ exact count (u64), for every handle counted 255 or more (its slot says 255)
//! ```
//!
//! A sparse page turns dense when it reaches 16,384 handles (where 65,536 one-byte slots
//! cost what that many four-byte entries do) and back to sparse below 4,096 (hysteresis: a
//! page near the boundary does not flip on every write; a dense page thus costs at most 16 B
//! a counted handle). A page whose last handle goes is freed.

use ahash::AHashMap;

const PAGE_BITS: u32 = 16;
const PAGE_SLOTS: usize = 1 << PAGE_BITS;
const PAGE_MASK: u32 = (1 << PAGE_BITS) - 1;
/// A sparse page with this many handles turns dense.
const DENSE_AT: usize = PAGE_SLOTS / 4;
/// A dense page with fewer handles than this turns sparse.
const SPARSE_BELOW: usize = PAGE_SLOTS / 16;
/// A slot saying "255 or more: the exact count is in `big`".
const SPILLED: u8 = u8::MAX;

/// The counts of one page of 2^16 handles; it holds at least one counted handle.
#[derive(Debug)]
enum Page {
    /// `(low 16 bits, count)` of each counted handle, sorted by the low bits; counts > 0.
    Sparse(Vec<(u16, u8)>),
    /// One count per handle of the page (0: not counted), and how many are above 0.
    Dense { slots: Box<[u8]>, live: usize },
}

impl Page {
    /// The slot of handle `off` of this page (0 when not counted).
    fn get(&self, off: u16) -> u8 {
        match self {
            Page::Sparse(v) => v.binary_search_by_key(&off, |e| e.0).map_or(0, |i| v[i].1),
            Page::Dense { slots, .. } => slots[usize::from(off)],
        }
    }

    /// Sets the slot of handle `off` (0: not counted).
    fn put(&mut self, off: u16, slot: u8) {
        match self {
            Page::Sparse(v) => match (v.binary_search_by_key(&off, |e| e.0), slot) {
                (Ok(i), 0) => {
                    v.remove(i);
                    // a page that shrank gives its room back (amortized: only at 1/4 full)
                    if v.capacity() > 4 * v.len() + 16 {
                        v.shrink_to(2 * v.len());
                    }
                }
                (Ok(i), _) => v[i].1 = slot,
                (Err(i), 1..) => v.insert(i, (off, slot)),
                (Err(_), 0) => {}
            },
            Page::Dense { slots, live } => {
                let was = std::mem::replace(&mut slots[usize::from(off)], slot);
                if was == 0 && slot != 0 {
                    *live += 1;
                } else if was != 0 && slot == 0 {
                    *live -= 1;
                }
            }
        }
    }

    /// Counted handles of the page.
    fn live(&self) -> usize {
        match self {
            Page::Sparse(v) => v.len(),
            Page::Dense { live, .. } => *live,
        }
    }

    /// Turns the page dense or sparse when its handle count crossed a threshold.
    fn reshape(&mut self, dense_at: usize, sparse_below: usize) {
        match self {
            Page::Sparse(v) if v.len() >= dense_at => {
                let mut slots = vec![0u8; PAGE_SLOTS].into_boxed_slice();
                for &(off, slot) in v.iter() {
                    slots[usize::from(off)] = slot;
                }
                let live = v.len();
                *self = Page::Dense { slots, live };
            }
            Page::Dense { slots, live } if *live < sparse_below => {
                let mut v = Vec::with_capacity(*live);
                v.extend(
                    slots
                        .iter()
                        .enumerate()
                        .filter(|&(_, &slot)| slot != 0)
                        // a page has 2^16 slots: the position fits u16
                        .map(|(off, &slot)| (off as u16, slot)),
                );
                *self = Page::Sparse(v);
            }
            _ => {}
        }
    }

    /// Heap bytes the page holds.
    fn heap_bytes(&self) -> usize {
        match self {
            Page::Sparse(v) => v.capacity() * std::mem::size_of::<(u16, u8)>(),
            Page::Dense { slots, .. } => slots.len(),
        }
    }
}

/// Handle -> how many keys' sets hold it; handles counted 0 take no room. Not synchronized:
/// the index keeps it behind a mutex, updated under the locks of the writes it counts.
#[derive(Debug)]
pub struct HandleCounts {
    pages: AHashMap<u32, Page>,
    /// Exact counts of the handles whose slot is `SPILLED`.
    big: AHashMap<u32, u64>,
    /// Handles counted above 0.
    live: u64,
    dense_at: usize,
    sparse_below: usize,
}

impl Default for HandleCounts {
    fn default() -> Self {
        HandleCounts::with_thresholds(DENSE_AT, SPARSE_BELOW)
    }
}

impl HandleCounts {
    /// No handle counted.
    pub fn new() -> Self {
        HandleCounts::default()
    }

    /// Pages turn dense at `dense_at` handles and sparse below `sparse_below` (tests cross
    /// them with few handles).
    fn with_thresholds(dense_at: usize, sparse_below: usize) -> Self {
        HandleCounts {
            pages: AHashMap::new(),
            big: AHashMap::new(),
            live: 0,
            dense_at,
            sparse_below: sparse_below.min(dense_at),
        }
    }

    /// How many keys' sets hold `h`.
    pub fn get(&self, h: u32) -> u64 {
        let slot = self
            .pages
            .get(&(h >> PAGE_BITS))
            .map_or(0, |p| p.get((h & PAGE_MASK) as u16));
        exact(&self.big, h, slot)
    }

    /// One more key holds `h`.
    pub fn increment(&mut self, h: u32) {
        self.update(h, |c| c.saturating_add(1));
    }

    /// One key fewer holds `h` (a count already at 0 stays there).
    pub fn decrement(&mut self, h: u32) {
        self.update(h, |c| c.saturating_sub(1));
    }

    /// No key holds `h` any more (it was dropped); returns the count it had.
    pub fn clear(&mut self, h: u32) -> u64 {
        self.update(h, |_| 0)
    }

    /// Handles counted above 0.
    pub fn len(&self) -> u64 {
        self.live
    }

    /// Every handle counted above 0, ascending.
    pub fn handles(&self) -> Vec<u32> {
        let mut pages: Vec<(u32, &Page)> = self.pages.iter().map(|(&p, page)| (p, page)).collect();
        pages.sort_unstable_by_key(|&(p, _)| p);
        let mut out = Vec::with_capacity(usize::try_from(self.live).unwrap_or(0));
        for (p, page) in pages {
            let base = p << PAGE_BITS;
            match page {
                Page::Sparse(v) => out.extend(v.iter().map(|&(off, _)| base | u32::from(off))),
                Page::Dense { slots, .. } => out.extend(
                    slots
                        .iter()
                        .enumerate()
                        .filter(|&(_, &slot)| slot != 0)
                        .map(|(off, _)| base | off as u32),
                ),
            }
        }
        out
    }

    /// Heap bytes held (pages, their directory and the exact counts of large ones).
    pub fn heap_bytes(&self) -> u64 {
        let table = |cap: usize, entry: usize| cap * (entry + 1);
        let pages: usize = self.pages.values().map(Page::heap_bytes).sum();
        (table(self.pages.capacity(), std::mem::size_of::<(u32, Page)>())
            + pages
            + table(self.big.capacity(), std::mem::size_of::<(u32, u64)>())) as u64
    }

    /// Replaces `h`'s count `c` by `f(c)`; returns `c`.
    fn update(&mut self, h: u32, f: impl FnOnce(u64) -> u64) -> u64 {
        let (p, off) = (h >> PAGE_BITS, (h & PAGE_MASK) as u16);
        let HandleCounts {
            pages,
            big,
            live,
            dense_at,
            sparse_below,
        } = self;
        let page = pages.entry(p).or_insert_with(|| Page::Sparse(Vec::new()));
        let old = exact(big, h, page.get(off));
        let new = f(old);
        if new != old {
            let spilled = u64::from(SPILLED);
            if new >= spilled {
                big.insert(h, new);
            } else if old >= spilled {
                big.remove(&h);
            }
            page.put(off, new.min(spilled) as u8);
            if old == 0 {
                *live += 1;
            } else if new == 0 {
                *live -= 1;
            }
            page.reshape(*dense_at, *sparse_below);
        }
        if page.live() == 0 {
            pages.remove(&p);
        }
        old
    }
}

/// The count a slot stands for.
fn exact(big: &AHashMap<u32, u64>, h: u32, slot: u8) -> u64 {
    if slot == SPILLED {
        big.get(&h).copied().unwrap_or(u64::from(SPILLED))
    } else {
        u64::from(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// Checks `c` against the model, handle by handle and as a whole.
    fn same(c: &HandleCounts, model: &BTreeMap<u32, u64>) {
        for (&h, &n) in model {
            assert_eq!(c.get(h), n, "handle {h}");
        }
        let live: Vec<u32> = model
            .iter()
            .filter(|&(_, &n)| n > 0)
            .map(|(&h, _)| h)
            .collect();
        assert_eq!(c.handles(), live);
        assert_eq!(c.len(), live.len() as u64);
        assert!(c.pages.values().all(|p| p.live() > 0), "an empty page kept");
        assert_eq!(c.big.len(), model.values().filter(|&&n| n >= 255).count());
    }

    #[test]
    fn counts_go_up_and_down_and_pages_are_freed() {
        let mut c = HandleCounts::new();
        assert_eq!(c.get(7), 0);
        c.increment(7);
        c.increment(7);
        c.increment(u32::MAX);
        assert_eq!((c.get(7), c.get(u32::MAX), c.len()), (2, 1, 2));
        c.decrement(7);
        assert_eq!(c.get(7), 1);
        assert_eq!(c.clear(u32::MAX), 1);
        c.decrement(7);
        assert_eq!(c.len(), 0);
        assert!(c.pages.is_empty() && c.big.is_empty());
    }

    #[test]
    fn an_uncounted_handle_stays_at_zero() {
        let mut c = HandleCounts::new();
        c.decrement(3);
        assert_eq!(c.clear(3), 0);
        assert_eq!((c.get(3), c.len()), (0, 0));
        assert!(c.pages.is_empty());
    }

    #[test]
    fn counts_past_a_byte_are_exact() {
        let mut c = HandleCounts::new();
        let mut model = BTreeMap::new();
        for h in [5u32, 70_000] {
            for _ in 0..1_000 {
                c.increment(h);
            }
            model.insert(h, 1_000);
        }
        same(&c, &model);
        for _ in 0..746 {
            c.decrement(5);
        }
        model.insert(5, 254);
        same(&c, &model);
        assert_eq!(c.clear(70_000), 1_000);
        model.insert(70_000, 0);
        same(&c, &model);
    }

    #[test]
    fn dense_handles_take_a_byte_each_and_pages_turn_back() {
        let mut c = HandleCounts::new();
        let n = 1_000_000u32;
        for h in 0..n {
            c.increment(h);
        }
        assert_eq!(c.len(), u64::from(n));
        assert!(matches!(c.pages.get(&0), Some(Page::Dense { .. })));
        let per = c.heap_bytes() as f64 / f64::from(n);
        assert!(per < 1.2, "{per} B a handle");
        // empty most of page 0: below 4,096 handles it turns sparse, the rest still counted
        for h in 0..60_000 {
            c.decrement(h);
        }
        assert!(matches!(
            c.pages.get(&0),
            Some(Page::Dense { live: 5_536, .. })
        ));
        for h in 60_000..62_000 {
            c.decrement(h);
        }
        assert!(matches!(c.pages.get(&0), Some(Page::Sparse(v)) if v.len() == 3_536));
        assert_eq!((c.get(61_999), c.get(62_000), c.get(n - 1)), (0, 1, 1));
        assert_eq!(c.len(), u64::from(n - 62_000));
    }

    #[test]
    fn scattered_handles_stay_sparse() {
        // an odd multiplier permutes the u32 range: distinct handles, far apart
        let scattered = |n: u32| {
            let mut c = HandleCounts::new();
            for i in 0..n {
                c.increment(i.wrapping_mul(2_654_435_761));
            }
            assert!(c.pages.values().all(|p| matches!(p, Page::Sparse(_))));
            assert_eq!(c.len(), u64::from(n));
            c.heap_bytes() as f64 / f64::from(n)
        };
        // the worst case: one or two handles a page, each page an entry of the directory
        let per = scattered(100_000);
        assert!(per < 64.0, "{per} B a handle");
        // a million over the range: ~15 a page
        let per = scattered(1_000_000);
        assert!(per < 12.0, "{per} B a handle");
    }

    #[derive(Clone, Debug)]
    enum Op {
        Increment(u32),
        Decrement(u32),
        Clear(u32),
    }

    /// Handles in three pages, `spread` in each: with a few, counts pass 255; with many,
    /// pages fill, empty and change shape.
    fn op(spread: u32) -> impl Strategy<Value = Op> {
        let h = (0u32..3, 0..spread).prop_map(|(p, off)| (p << PAGE_BITS) | off);
        prop_oneof![
            6 => h.clone().prop_map(Op::Increment),
            3 => h.clone().prop_map(Op::Decrement),
            1 => h.prop_map(Op::Clear),
        ]
    }

    proptest! {
        #[test]
        fn matches_a_map_through_every_page_shape(
            ops in (1u32..=64).prop_flat_map(|spread| proptest::collection::vec(op(spread), 0..3_000))
        ) {
            // pages turn dense at 8 handles and sparse below 3
            let mut c = HandleCounts::with_thresholds(8, 3);
            let mut model: BTreeMap<u32, u64> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Increment(h) => {
                        c.increment(h);
                        *model.entry(h).or_default() += 1;
                    }
                    Op::Decrement(h) => {
                        c.decrement(h);
                        let n = model.entry(h).or_default();
                        *n = n.saturating_sub(1);
                    }
                    Op::Clear(h) => {
                        let n = model.insert(h, 0).unwrap_or(0);
                        prop_assert_eq!(c.clear(h), n);
                    }
                }
            }
            same(&c, &model);
        }
    }
}
