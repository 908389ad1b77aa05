//! Index key bytes: the tagged encodings that keys are hashed from. Part of the file format:
//! a persisted index finds its keys again only if they encode to the same bytes.
//!
//! ```text
//! Elixir key (LsmIndex):  tag u8 | body
//!   tag 1  integer         body = i64 big-endian
//!   tag 2  binary          body = the bytes
//!   tag 3  any other term  body = its deterministic external term format
//! ```
//!
//! Each kind has its own tag byte, so no two distinct Elixir keys share bytes.

use smallvec::SmallVec;

/// Key bytes: inline up to 32 bytes, so integer and short binary keys cost no allocation.
pub type KeyBytes = SmallVec<[u8; 32]>;

/// Tag of an integer key.
const TAG_INT: u8 = 1;
/// Tag of a binary key.
const TAG_BINARY: u8 = 2;
/// Tag of any other term's external form.
const TAG_TERM: u8 = 3;

/// The key bytes of an integer key.
pub fn int_key(i: i64) -> KeyBytes {
    tagged(TAG_INT, &i.to_be_bytes())
}

/// The key bytes of a binary key.
pub fn binary_key(bytes: &[u8]) -> KeyBytes {
    tagged(TAG_BINARY, bytes)
}

/// The key bytes of any other term, given its deterministic external term format.
pub fn term_key(external: &[u8]) -> KeyBytes {
    tagged(TAG_TERM, external)
}

fn tagged(tag: u8, body: &[u8]) -> KeyBytes {
    let mut k = KeyBytes::with_capacity(body.len() + 1);
    k.push(tag);
    k.extend_from_slice(body);
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodings_are_fixed_and_distinct() {
        assert_eq!(int_key(1).as_slice(), &[1, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(binary_key(b"ab").as_slice(), &[2, b'a', b'b']);
        assert_eq!(term_key(b"ab").as_slice(), &[3, b'a', b'b']);
        assert_ne!(binary_key(&1i64.to_be_bytes()), int_key(1));
    }
}
