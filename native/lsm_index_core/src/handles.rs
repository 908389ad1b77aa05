//! Sorted, deduplicated sets of shape handles, small enough to live inline.

use smallvec::SmallVec;

/// A key's handle set: sorted ascending, no duplicates; empty means "deleted" (a tombstone).
pub type HandleSet = SmallVec<[u32; 2]>;

/// Inserts `h` into a sorted, unique list; returns whether it was absent.
pub fn insert(set: &mut Vec<u32>, h: u32) -> bool {
    match set.binary_search(&h) {
        Ok(_) => false,
        Err(pos) => {
            set.insert(pos, h);
            true
        }
    }
}

/// Removes `h` from a sorted, unique list; returns whether it was present.
pub fn remove(set: &mut Vec<u32>, h: u32) -> bool {
    match set.binary_search(&h) {
        Ok(pos) => {
            set.remove(pos);
            true
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insert_and_remove_keep_order_and_uniqueness() {
        let mut s = Vec::new();
        assert!(insert(&mut s, 5));
        assert!(insert(&mut s, 1));
        assert!(!insert(&mut s, 5));
        assert!(insert(&mut s, 9));
        assert_eq!(s.as_slice(), &[1, 5, 9]);
        assert!(remove(&mut s, 5));
        assert!(!remove(&mut s, 5));
        assert_eq!(s.as_slice(), &[1, 9]);
    }
}
