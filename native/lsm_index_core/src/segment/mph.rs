//! Minimal perfect hash functions over a segment's fingerprints, behind one small trait.
//!
//! Two kinds are built and readable: `ptr_hash` (PtrHash, Groot Koerkamp 2025) and `boomphf`
//! (BBHash). The kind is recorded in each segment so both stay readable whichever is the
//! default. Every MPH maps *absent* keys to some slot too: the fingerprint array rejects them.

use crate::error::{Error, FileKind, Result};

/// Which MPH a segment was built with (stored as one byte in the segment header).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MphKind {
    /// PtrHash, single part, linear bucket function, remapped to `0..n`.
    PtrHash = 1,
    /// BBHash via boomphf, gamma 1.7.
    BoomPhf = 2,
}

impl MphKind {
    /// The kind stored as byte `b`, if any.
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            1 => Some(MphKind::PtrHash),
            2 => Some(MphKind::BoomPhf),
            _ => None,
        }
    }

    /// A stable lower-case name, used in options and stats.
    pub fn name(self) -> &'static str {
        match self {
            MphKind::PtrHash => "ptr_hash",
            MphKind::BoomPhf => "boomphf",
        }
    }

    /// The kind named `name` (as [`MphKind::name`] spells it).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "ptr_hash" => Some(MphKind::PtrHash),
            "boomphf" => Some(MphKind::BoomPhf),
            _ => None,
        }
    }
}

/// A minimal perfect hash over a set of distinct `u64` fingerprints.
pub trait Mph: Sized {
    /// The kind recorded in segments built with this MPH.
    const KIND: MphKind;
    /// Builds over `keys` (distinct, at least one).
    fn build(keys: &[u64]) -> Result<Self>;
    /// The slot in `0..n` of `key`; for absent keys, some slot or `None`.
    fn slot(&self, key: u64) -> Option<usize>;
    /// Appends the serialized form to `out`.
    fn write(&self, out: &mut Vec<u8>) -> Result<()>;
    /// Reads the serialized form written by [`Mph::write`]; `n` is the key count it must cover.
    fn read(bytes: &[u8], n: usize) -> Result<Self>;
    /// Heap bytes held, for memory accounting.
    fn heap_bytes(&self) -> usize;
}

fn corrupt(kind: MphKind, detail: impl Into<String>) -> Error {
    Error::Corrupt {
        file: FileKind::Segment,
        what: format!("{} section", kind.name()),
        detail: detail.into(),
    }
}

type PtrHashFn = ptr_hash::PtrHash<
    u64,
    ptr_hash::bucket_fn::Linear,
    Vec<u32>,
    ptr_hash::hash::StrongerIntHash,
    Vec<u8>,
    true,
    true,
>;

/// PtrHash with a storable hasher (`StrongerIntHash`) and the plain `Vec<u32>` remap.
pub struct PtrHashMph(PtrHashFn);

impl Mph for PtrHashMph {
    const KIND: MphKind = MphKind::PtrHash;

    fn build(keys: &[u64]) -> Result<Self> {
        PtrHashFn::try_new(keys, ptr_hash::PtrHashParams::default_fast())
            .map(PtrHashMph)
            .ok_or_else(|| Error::MphBuild {
                kind: "ptr_hash",
                detail: format!("construction failed for {} keys", keys.len()),
            })
    }

    #[inline]
    fn slot(&self, key: u64) -> Option<usize> {
        Some(self.0.index(&key))
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        use epserde::ser::Serialize;
        // SAFETY: epserde's serialization contract concerns the writer backend; Vec<u8> is
        // the backend epserde itself implements and tests.
        #[allow(unsafe_code)]
        let res = unsafe { self.0.serialize(out) };
        res.map(|_| ()).map_err(|e| Error::MphBuild {
            kind: "ptr_hash",
            detail: format!("serialize: {e}"),
        })
    }

    fn read(mut bytes: &[u8], n: usize) -> Result<Self> {
        use epserde::deser::Deserialize;
        // SAFETY: epserde trusts the bytes it decodes (no validity checks on values). The
        // caller passes only a section whose crc32c matched the checksum written with it, and
        // the type and alignment hashes in epserde's own header are checked here. Segment
        // directories are trusted storage: corruption is detected, a hostile writer is not
        // in the threat model (DESIGN.md, "Trust").
        #[allow(unsafe_code)]
        let f = unsafe { PtrHashFn::deserialize_full(&mut bytes) }
            .map_err(|e| corrupt(MphKind::PtrHash, format!("{e}")))?;
        if f.n() != n {
            return Err(corrupt(
                MphKind::PtrHash,
                format!("covers {} keys, segment has {n}", f.n()),
            ));
        }
        Ok(PtrHashMph(f))
    }

    fn heap_bytes(&self) -> usize {
        let (pilots, remap) = self.0.bits_per_element();
        ((pilots + remap) * self.0.n() as f64 / 8.0) as usize
    }
}

/// BBHash (boomphf) with gamma 1.7, serialized with bincode.
pub struct BoomMph(boomphf::Mphf<u64>);

/// BBHash's space/speed trade-off; 1.7 is the value RESEARCH.md measured (3.4 bits/key).
const BOOM_GAMMA: f64 = 1.7;

impl Mph for BoomMph {
    const KIND: MphKind = MphKind::BoomPhf;

    fn build(keys: &[u64]) -> Result<Self> {
        // boomphf panics when its level limit is exhausted (astronomically rare on distinct
        // keys); contain it so a build failure is an error, not a crash.
        std::panic::catch_unwind(|| boomphf::Mphf::new(BOOM_GAMMA, keys))
            .map(BoomMph)
            .map_err(|_| Error::MphBuild {
                kind: "boomphf",
                detail: format!("construction failed for {} keys", keys.len()),
            })
    }

    #[inline]
    fn slot(&self, key: u64) -> Option<usize> {
        self.0.try_hash(&key).map(|s| s as usize)
    }

    fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        bincode::serialize_into(out, &self.0).map_err(|e| Error::MphBuild {
            kind: "boomphf",
            detail: format!("serialize: {e}"),
        })
    }

    fn read(bytes: &[u8], n: usize) -> Result<Self> {
        let f: boomphf::Mphf<u64> = bincode::DefaultOptions::new()
            .with_fixint_encoding()
            .with_limit(bytes.len() as u64)
            .deserialize(bytes)
            .map_err(|e| corrupt(MphKind::BoomPhf, format!("{e}")))?;
        let _ = n; // boomphf does not expose its key count; the fingerprint check covers it.
        Ok(BoomMph(f))
    }

    fn heap_bytes(&self) -> usize {
        // boomphf does not report its size; its serialized form is its bit vectors.
        bincode::serialized_size(&self.0).unwrap_or(0) as usize
    }
}

use bincode::Options;

/// A decoded MPH of either kind (enum dispatch keeps lookups free of virtual calls).
pub enum AnyMph {
    /// See [`PtrHashMph`].
    PtrHash(PtrHashMph),
    /// See [`BoomMph`].
    Boom(BoomMph),
}

impl AnyMph {
    /// Builds an MPH of `kind` over `keys`.
    pub fn build(kind: MphKind, keys: &[u64]) -> Result<Self> {
        Ok(match kind {
            MphKind::PtrHash => AnyMph::PtrHash(PtrHashMph::build(keys)?),
            MphKind::BoomPhf => AnyMph::Boom(BoomMph::build(keys)?),
        })
    }

    /// Reads an MPH of `kind` covering `n` keys.
    pub fn read(kind: MphKind, bytes: &[u8], n: usize) -> Result<Self> {
        Ok(match kind {
            MphKind::PtrHash => AnyMph::PtrHash(PtrHashMph::read(bytes, n)?),
            MphKind::BoomPhf => AnyMph::Boom(BoomMph::read(bytes, n)?),
        })
    }

    /// The kind of this MPH.
    pub fn kind(&self) -> MphKind {
        match self {
            AnyMph::PtrHash(_) => MphKind::PtrHash,
            AnyMph::Boom(_) => MphKind::BoomPhf,
        }
    }

    /// See [`Mph::slot`].
    #[inline]
    pub fn slot(&self, key: u64) -> Option<usize> {
        match self {
            AnyMph::PtrHash(m) => m.slot(key),
            AnyMph::Boom(m) => m.slot(key),
        }
    }

    /// See [`Mph::write`].
    pub fn write(&self, out: &mut Vec<u8>) -> Result<()> {
        match self {
            AnyMph::PtrHash(m) => m.write(out),
            AnyMph::Boom(m) => m.write(out),
        }
    }

    /// See [`Mph::heap_bytes`].
    pub fn heap_bytes(&self) -> usize {
        match self {
            AnyMph::PtrHash(m) => m.heap_bytes(),
            AnyMph::Boom(m) => m.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: u64) -> Vec<u64> {
        (0..n)
            .map(|i| i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x1234)
            .collect()
    }

    fn check_bijection(kind: MphKind, n: u64) {
        let ks = keys(n);
        let m = AnyMph::build(kind, &ks).unwrap();
        let mut seen = vec![false; ks.len()];
        for &k in &ks {
            let s = m.slot(k).unwrap();
            assert!(s < ks.len(), "{kind:?} slot {s} out of range for n={n}");
            assert!(!seen[s], "{kind:?} slot {s} used twice");
            seen[s] = true;
        }
        let mut bytes = Vec::new();
        m.write(&mut bytes).unwrap();
        let back = AnyMph::read(kind, &bytes, ks.len()).unwrap();
        for &k in &ks {
            assert_eq!(back.slot(k), m.slot(k));
        }
        // Absent keys never panic and stay in range.
        for k in keys(1000).iter().map(|k| k ^ 0xFFFF_0000_0000) {
            if let Some(s) = back.slot(k) {
                assert!(s < ks.len());
            }
        }
    }

    #[test]
    fn both_kinds_are_bijections_that_round_trip() {
        for kind in [MphKind::PtrHash, MphKind::BoomPhf] {
            for n in [1, 2, 3, 10, 1000, 50_000] {
                check_bijection(kind, n);
            }
        }
    }

    #[test]
    fn truncated_bytes_are_errors() {
        for kind in [MphKind::PtrHash, MphKind::BoomPhf] {
            let ks = keys(1000);
            let m = AnyMph::build(kind, &ks).unwrap();
            let mut bytes = Vec::new();
            m.write(&mut bytes).unwrap();
            assert!(AnyMph::read(kind, &bytes[..bytes.len() / 2], 1000).is_err());
        }
    }

    #[test]
    fn names_round_trip() {
        for kind in [MphKind::PtrHash, MphKind::BoomPhf] {
            assert_eq!(MphKind::from_name(kind.name()), Some(kind));
            assert_eq!(MphKind::from_byte(kind as u8), Some(kind));
        }
        assert_eq!(MphKind::from_byte(0), None);
    }
}
