//! A lane's mutable overlay: the full current handle set of each recently written key.

use crate::handles::HandleSet;
use hashbrown::HashMap;

/// One key's state in an overlay: its whole set as of sequence number `seq` (empty = tombstone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Sequence number of the write that produced this set.
    pub seq: u64,
    /// The key's complete handle set.
    pub handles: HandleSet,
}

/// Fingerprint -> entry, with the counts compaction decisions need.
#[derive(Default)]
pub struct Overlay {
    map: HashMap<u64, Entry, ahash::RandomState>,
    min_seq: Option<u64>,
    spilled_handles: usize,
}

/// Approximate heap bytes per overlay entry (key, entry, hashbrown control byte, load factor).
const ENTRY_BYTES: usize = (std::mem::size_of::<(u64, Entry)>() + 1) * 8 / 7;

impl Overlay {
    /// An empty overlay with room for `keys` entries (no rehashing while it fills).
    pub fn with_capacity(keys: usize) -> Overlay {
        Overlay {
            map: HashMap::with_capacity_and_hasher(keys, ahash::RandomState::default()),
            ..Overlay::default()
        }
    }

    /// Frees the table of an overlay that holds no key (one sized up front for writes that
    /// have since stopped), so that an idle lane holds no room.
    pub fn release_if_empty(&mut self) {
        if self.map.is_empty() && self.map.capacity() > 0 {
            *self = Overlay::default();
        }
    }

    /// The entry of `fp`, if this overlay has one.
    #[inline]
    pub fn get(&self, fp: u64) -> Option<&Entry> {
        self.map.get(&fp)
    }

    /// Sets `fp`'s entry, replacing any previous one.
    pub fn put(&mut self, fp: u64, entry: Entry) {
        self.min_seq = Some(self.min_seq.map_or(entry.seq, |m| m.min(entry.seq)));
        if entry.handles.spilled() {
            self.spilled_handles += entry.handles.len();
        }
        if let Some(old) = self.map.insert(fp, entry) {
            if old.handles.spilled() {
                self.spilled_handles -= old.handles.len();
            }
        }
    }

    /// Keys (tombstones included).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The smallest entry sequence number (every entry was dead-filtered as of its own seq).
    pub fn min_seq(&self) -> Option<u64> {
        self.min_seq
    }

    /// Approximate heap bytes held.
    pub fn approx_bytes(&self) -> usize {
        self.map.capacity() * ENTRY_BYTES + self.spilled_handles * 4
    }

    /// All entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Entry)> {
        self.map.iter().map(|(&fp, e)| (fp, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smallvec::smallvec;

    #[test]
    fn put_replaces_and_tombstones_are_kept() {
        let mut o = Overlay::default();
        o.put(
            1,
            Entry {
                seq: 5,
                handles: smallvec![1, 2],
            },
        );
        o.put(
            1,
            Entry {
                seq: 6,
                handles: smallvec![],
            },
        );
        assert_eq!(o.len(), 1);
        assert_eq!(
            o.get(1).unwrap().handles.len(),
            0,
            "empty set is a tombstone"
        );
        assert_eq!(o.min_seq(), Some(5));
        assert!(o.get(2).is_none());
    }

    #[test]
    fn spilled_handle_accounting_follows_replacements() {
        let mut o = Overlay::default();
        o.put(
            1,
            Entry {
                seq: 1,
                handles: (0..10).collect(),
            },
        );
        assert_eq!(o.spilled_handles, 10);
        o.put(
            1,
            Entry {
                seq: 2,
                handles: smallvec![1],
            },
        );
        assert_eq!(o.spilled_handles, 0);
        assert!(o.approx_bytes() > 0);
    }
}
