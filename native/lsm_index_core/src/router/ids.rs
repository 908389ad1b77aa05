//! Shape names as router handles: a router set's shapes are named by the caller with small
//! integers (their own handles) or by arbitrary byte strings (a sync service's shape
//! handles), which are interned as handles from [`FIRST_NAMED`] up, recycled once released.

use std::collections::HashMap;
use std::sync::Arc;

/// The first handle of a named shape: integers below it name themselves.
pub const FIRST_NAMED: u32 = 1 << 31;

/// A shape's name as the caller gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShapeName<'a> {
    /// An integer below [`FIRST_NAMED`]: its own handle.
    Handle(u32),
    /// Any byte string (interned).
    Bytes(&'a [u8]),
}

/// The interned names of a router set (see the module doc).
#[derive(Default, Debug)]
pub struct Names {
    handles: HashMap<Arc<[u8]>, u32, super::shapes::IdHasher>,
    /// Per named handle (from [`FIRST_NAMED`]): its name, `None` once released.
    names: Vec<Option<Arc<[u8]>>>,
    /// Released handles, reused first.
    free: Vec<u32>,
}

impl Names {
    /// The handle of `name`, if it is one or is interned.
    pub fn find(&self, name: ShapeName<'_>) -> Option<u32> {
        match name {
            ShapeName::Handle(h) => Some(h),
            ShapeName::Bytes(b) => self.handles.get(b).copied(),
        }
    }

    /// The handle of `name`, interned now if it was not.
    pub fn intern(&mut self, name: ShapeName<'_>) -> u32 {
        let bytes = match name {
            ShapeName::Handle(h) => return h,
            ShapeName::Bytes(b) => b,
        };
        if let Some(&h) = self.handles.get(bytes) {
            return h;
        }
        let name: Arc<[u8]> = Arc::from(bytes);
        let h = match self.free.pop() {
            Some(h) => {
                self.names[(h - FIRST_NAMED) as usize] = Some(name.clone());
                h
            }
            None => {
                self.names.push(Some(name.clone()));
                FIRST_NAMED + (self.names.len() - 1) as u32
            }
        };
        self.handles.insert(name, h);
        h
    }

    /// Forgets named handle `h` (integers are not interned: a no-op for them).
    pub fn release(&mut self, h: u32) {
        let Some(slot) = h
            .checked_sub(FIRST_NAMED)
            .and_then(|i| self.names.get_mut(i as usize))
        else {
            return;
        };
        if let Some(name) = slot.take() {
            self.handles.remove(&name);
            self.free.push(h);
        }
    }

    /// The name of handle `h`: itself below [`FIRST_NAMED`], else its interned bytes
    /// (`None`: not interned).
    pub fn name(&self, h: u32) -> Option<ShapeName<'_>> {
        match h.checked_sub(FIRST_NAMED) {
            None => Some(ShapeName::Handle(h)),
            Some(i) => self
                .names
                .get(i as usize)
                .and_then(|n| n.as_deref())
                .map(ShapeName::Bytes),
        }
    }

    /// How many names are interned.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether no name is interned.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[test]
    fn integers_name_themselves_and_bytes_are_interned_once() {
        let mut n = Names::default();
        assert_eq!(n.intern(ShapeName::Handle(7)), 7);
        let a = n.intern(ShapeName::Bytes(b"a"));
        assert_eq!(a, FIRST_NAMED);
        assert_eq!(n.intern(ShapeName::Bytes(b"a")), a);
        assert_eq!(n.name(a), Some(ShapeName::Bytes(b"a")));
        assert_eq!(
            n.name(FIRST_NAMED - 1),
            Some(ShapeName::Handle(FIRST_NAMED - 1))
        );
        n.release(a);
        assert_eq!(n.name(a), None);
        assert_eq!(n.find(ShapeName::Bytes(b"a")), None);
        // recycled
        assert_eq!(n.intern(ShapeName::Bytes(b"b")), a);
    }

    proptest! {
        /// Against a model: every interned name has one live handle, handles are distinct,
        /// and names round-trip.
        #[test]
        fn agrees_with_a_model(ops in proptest::collection::vec((any::<bool>(), 0u8..12), 0..300)) {
            let mut n = Names::default();
            let mut model: BTreeMap<u8, u32> = BTreeMap::new();
            for (add, k) in ops {
                let name = [k];
                if add {
                    let h = n.intern(ShapeName::Bytes(&name));
                    prop_assert!(h >= FIRST_NAMED);
                    if let Some(&old) = model.get(&k) {
                        prop_assert_eq!(old, h);
                    }
                    model.insert(k, h);
                } else if let Some(h) = model.remove(&k) {
                    n.release(h);
                }
                prop_assert_eq!(n.len(), model.len());
                let mut seen = std::collections::HashSet::new();
                for (&k, &h) in &model {
                    prop_assert!(seen.insert(h));
                    prop_assert_eq!(n.name(h), Some(ShapeName::Bytes(&[k][..])));
                    prop_assert_eq!(n.find(ShapeName::Bytes(&[k])), Some(h));
                }
            }
        }
    }
}
