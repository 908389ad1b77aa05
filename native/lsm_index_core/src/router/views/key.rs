//! View keys and sharing: what makes two subqueries one view, the value keys a view counts,
//! and the registry that numbers views and frees them with their last user.
//!
//! ```text
//! view key   SipHash-1-3-128 (fixed keys) of: "lsm_index view v1" | table u32 LE |
//!            arity u16 LE | column u16 LE * arity | canonical inner WHERE (UTF-8)
//! value key  one column:  crate::key::value_key (tag | canonical bytes)
//!            k columns:   13 | k u8 | per column: 1 | its value key's length u32 LE | value key
//!            a NULL anywhere: no key (the row counts as a NULL row of the view)
//! ```
//!
//! The canonical WHERE is the caller's (step 7 prints the typed inner `Expr` with parameters
//! inlined): equal text, equal view. The text is not kept, only its 16-byte key.

use crate::key::{value_key, ColumnKey};
use crate::predicate::Value;
use crate::{Error, Result};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::collections::HashMap;
use std::hash::Hasher;

/// Tag of a row (composite) value key; tag 12 is the array's, whose framing it follows.
pub const TAG_ROW: u8 = 13;

/// Most columns a subquery may select (a row value's arity is one byte).
pub const MAX_ARITY: usize = 255;

/// Fixed SipHash keys of view keys: part of the persisted format once views are logged.
const VIEW_KEY_SEED: (u64, u64) = (0x6c73_6d5f_7669_6577, 0x6b65_795f_7631_0000);

/// A view's identity: the 128-bit hash of its inner table, projected columns and canonical
/// WHERE. Subqueries with equal keys share one view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ViewKey(pub u128);

impl ViewKey {
    /// The key of the view selecting `columns` of table number `table` where `canonical`
    /// (the inner WHERE's canonical text; empty for none) holds.
    pub fn of(table: u32, columns: &[u16], canonical: &str) -> ViewKey {
        let mut h = SipHasher13::new_with_keys(VIEW_KEY_SEED.0, VIEW_KEY_SEED.1);
        h.write(b"lsm_index view v1");
        h.write(&table.to_le_bytes());
        h.write(&(columns.len() as u16).to_le_bytes());
        for c in columns {
            h.write(&c.to_le_bytes());
        }
        h.write(canonical.as_bytes());
        ViewKey(h.finish128().as_u128())
    }
}

/// A subquery row's projection: the key of its value, or NULL (some column is NULL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Projected {
    /// The row's value key.
    Key(ColumnKey),
    /// The row holds a NULL in a projected column: it counts as a NULL row.
    Null,
}

/// The projection of one subquery row (its projected columns, in select-list order): a
/// scalar's value key, a row value's tag-13 key, or `Projected::Null`.
pub fn project(values: &[Option<&Value>]) -> Projected {
    let mut out = ColumnKey::new();
    match values {
        [Some(v)] => value_key(v, &mut out),
        [None] | [] => return Projected::Null,
        _ if values.iter().any(Option::is_none) => return Projected::Null,
        _ => {
            out.push(TAG_ROW);
            out.push(values.len().min(MAX_ARITY) as u8);
            for v in values.iter().flatten().take(MAX_ARITY) {
                out.push(1);
                let at = out.len();
                out.extend_from_slice(&[0; 4]);
                value_key(v, &mut out);
                let len = (out.len() - at - 4) as u32;
                out[at..at + 4].copy_from_slice(&len.to_le_bytes());
            }
        }
    }
    Projected::Key(out)
}

/// A view's number: its handle in the view index, recycled once freed.
pub type ViewId = u32;

/// One registered view.
#[derive(Clone, Debug)]
struct Slot {
    key: ViewKey,
    arity: u8,
    /// Attachments (shape, position) and dependents using it.
    users: u32,
}

/// View key ⇒ view number, with a user count per view: the first user creates a view, the
/// last one frees it (its number is then reused).
#[derive(Default, Debug)]
pub struct Registry {
    by_key: HashMap<ViewKey, ViewId>,
    slots: Vec<Option<Slot>>,
    free: Vec<ViewId>,
}

impl Registry {
    /// The view of `key` with one more user, created if new (`true` then). `arity` must
    /// match the existing view's (`Error::InvalidView` otherwise: a caller mixing
    /// definitions).
    pub fn acquire(&mut self, key: ViewKey, arity: u8) -> Result<(ViewId, bool)> {
        if let Some(&view) = self.by_key.get(&key) {
            let slot = self.slots[view as usize]
                .as_mut()
                .ok_or_else(|| missing(view))?;
            if slot.arity != arity {
                return Err(Error::InvalidView {
                    view,
                    reason: format!("it selects {} columns, not {arity}", slot.arity),
                });
            }
            slot.users += 1;
            return Ok((view, false));
        }
        let slot = Some(Slot {
            key,
            arity,
            users: 1,
        });
        let view = match self.free.pop() {
            Some(v) => {
                self.slots[v as usize] = slot;
                v
            }
            None => {
                self.slots.push(slot);
                (self.slots.len() - 1) as ViewId
            }
        };
        self.by_key.insert(key, view);
        Ok((view, true))
    }

    /// One user fewer for `view`; `true` when that was the last (the view is gone: its
    /// caller drops its counts, and its number will be reused).
    pub fn release(&mut self, view: ViewId) -> Result<bool> {
        let slot = self
            .slots
            .get_mut(view as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| missing(view))?;
        slot.users -= 1;
        if slot.users > 0 {
            return Ok(false);
        }
        let key = slot.key;
        self.slots[view as usize] = None;
        self.by_key.remove(&key);
        self.free.push(view);
        Ok(true)
    }

    /// The view of `key`, if registered.
    pub fn get(&self, key: ViewKey) -> Option<ViewId> {
        self.by_key.get(&key).copied()
    }

    /// How many users `view` has (0: not registered).
    pub fn users(&self, view: ViewId) -> u32 {
        self.slot(view).map_or(0, |s| s.users)
    }

    /// The number of columns `view` selects.
    pub fn arity(&self, view: ViewId) -> Option<u8> {
        self.slot(view).map(|s| s.arity)
    }

    /// Registered views.
    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    /// Whether no view is registered.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }

    /// The key of `view`, if registered.
    pub fn key(&self, view: ViewId) -> Option<ViewKey> {
        self.slot(view).map(|s| s.key)
    }

    fn slot(&self, view: ViewId) -> Option<&Slot> {
        self.slots.get(view as usize).and_then(Option::as_ref)
    }
}

/// The error for a view number nobody registered (a caller's bookkeeping mistake).
pub(super) fn missing(view: ViewId) -> Error {
    Error::InvalidView {
        view,
        reason: "not registered".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn view_keys_separate_tables_columns_and_text() {
        let k = ViewKey::of(1, &[2], "owner_id = 7");
        assert_eq!(k, ViewKey::of(1, &[2], "owner_id = 7"));
        assert_ne!(k, ViewKey::of(0, &[2], "owner_id = 7"));
        assert_ne!(k, ViewKey::of(1, &[3], "owner_id = 7"));
        assert_ne!(k, ViewKey::of(1, &[2, 3], "owner_id = 7"));
        assert_ne!(k, ViewKey::of(1, &[2], "owner_id = 8"));
    }

    #[test]
    fn projections_scalar_row_and_null() {
        let (a, b) = (Value::Int(3), Value::Text("x".into()));
        let mut scalar = ColumnKey::new();
        value_key(&a, &mut scalar);
        assert_eq!(project(&[Some(&a)]), Projected::Key(scalar.clone()));
        assert_eq!(project(&[None]), Projected::Null);
        assert_eq!(project(&[Some(&a), None]), Projected::Null);
        let Projected::Key(row) = project(&[Some(&a), Some(&b)]) else {
            panic!("a full row has a key")
        };
        assert_eq!(&row[..3], &[TAG_ROW, 2, 1]);
        assert_eq!(&row[3..7], &(scalar.len() as u32).to_le_bytes());
        assert_eq!(&row[7..7 + scalar.len()], &scalar[..]);
        // (3, 'x') and ('x', 3) differ; a row never equals a scalar
        assert_ne!(project(&[Some(&b), Some(&a)]), Projected::Key(row.clone()));
        assert_ne!(Projected::Key(scalar), Projected::Key(row));
    }

    #[test]
    fn registry_shares_frees_and_recycles() {
        let mut r = Registry::default();
        let (k1, k2) = (ViewKey(1), ViewKey(2));
        assert_eq!(r.acquire(k1, 1).unwrap(), (0, true));
        assert_eq!(r.acquire(k1, 1).unwrap(), (0, false));
        assert!(r.acquire(k1, 2).is_err(), "arity must agree");
        assert_eq!(r.acquire(k2, 2).unwrap(), (1, true));
        assert_eq!((r.users(0), r.arity(1), r.len()), (2, Some(2), 2));
        assert!(!r.release(0).unwrap());
        assert!(r.release(0).unwrap());
        assert!(r.release(0).is_err());
        assert_eq!(r.get(k1), None);
        assert_eq!(
            r.acquire(ViewKey(3), 1).unwrap(),
            (0, true),
            "number reused"
        );
        assert_eq!(r.get(ViewKey(3)), Some(0));
    }
}
