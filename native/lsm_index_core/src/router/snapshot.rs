//! The router snapshot (`<dir>/router.snap`): a persistent router's published state as of a
//! stamp of its catalog, so that a reopen restores the groups instead of compiling every
//! shape again. An accelerator only: the catalog stays the source of truth, and a snapshot
//! that is missing, torn, corrupt, of another version or table, or that does not cover the
//! catalog's prefix (`catalog::Stamp`) is ignored — the catalog is then replayed in full. A
//! snapshot of the table before columns were added to it (its table record names the first
//! of the router's columns) is this table's: positions never move, so its state holds.
//!
//! ```text
//! 0        8             12             20                 24
//! ┌────────┬─────────────┬──────────────┬──────────────────┬──────────────────────────┐
//! │LSMRSNAP│ version u32 │ body len u64 │ crc32c(body) u32 │ body                     │
//! └────────┴─────────────┴──────────────┴──────────────────┴──────────────────────────┘
//! body       stamp: catalog len u64 | catalog crc32c u32 | catalog records u64
//!            table: str (the table's columns then, as a catalog's table record names them)
//!            templates: n u32 | (str | fingerprint u32) × n (a definition of one shape of
//!              each, and a checksum of what it compiled to)
//!            groups: n u32 | group × n, handles ascending
//!            refused: n u32 | handle u32 × n (ordered groups their index refused: scanned)
//!            ranges: n u32 | (slot u32 | m u32 | lo u64 × m | hi u64 × m | group u32 × m) × n
//!            literals: n u32 | (slot u32 | m u32 | (str | group u32 | refs u32) × m) × n
//! group      handle u32 | template u32 | keys: len u32 + bytes (each key: len u32 + bytes)
//!            | ordered: 0 | 1 lo u64 hi u64 | 2 str | ids: n u32 + u32 × n (ascending)
//! str        len u32 | UTF-8 bytes                      (all integers little-endian)
//! ```
//!
//! Templates are stored as the definition text of one of their shapes (compiling it gives
//! the template again) with a fingerprint of what it compiled to (a build that compiles it
//! otherwise — another plan, other key bytes — does not restore the snapshot); groups as their keys, ordered key and ids; the range indexes as
//! their sorted arrays (`Ranges::parts`), the literal indexes as their entries (the
//! automaton is built again). The decoder validates every length and count once and
//! returns a typed error (`FileKind::RouterSnapshot`), never a panic; what the parts mean
//! together (templates of the groups, groups of the index entries) is checked when the
//! router restores them (`reopen`).

use super::catalog::Stamp;
use super::ordered::OrderedKey;
use crate::durable::{self, CrashPoints};
use crate::error::{Error, FileKind, Result};
use smallvec::SmallVec;
use std::borrow::Cow;
use std::path::Path;

/// The snapshot's file name in the router's directory.
pub(super) const FILE: &str = "router.snap";
const MAGIC: &[u8; 8] = b"LSMRSNAP";
const HEADER: usize = 24;
/// Where a crash test can stop a snapshot write (see `failpoint`).
const CRASH_POINTS: CrashPoints = CrashPoints {
    written: "snapshot:tmp_written",
    renamed: "snapshot:renamed",
};

/// The format versions this build reads (and the one it writes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
enum Version {
    /// The first: the layout of the module doc.
    V1 = 1,
}

/// One group as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct GroupPart<'a> {
    /// Its handle in the equality index.
    pub(super) handle: u32,
    /// Its template, by position in [`Snapshot::templates`].
    pub(super) template: u32,
    /// Its keys, packed as `Group::packed_keys`.
    pub(super) keys: &'a [u8],
    /// What its ordered index files it under.
    pub(super) ordered: Option<OrderedKey>,
    /// Its shape ids, ascending.
    pub(super) ids: SmallVec<[u32; 4]>,
}

/// A range index as stored: its slot and its arrays in `(lo, hi, group)` order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct RangePart<'a> {
    pub(super) slot: u32,
    pub(super) lo: Cow<'a, [u64]>,
    pub(super) hi: Cow<'a, [u64]>,
    pub(super) group: Cow<'a, [u32]>,
}

/// A literal index as stored: its slot and (literal, group, references) entries.
pub(super) type LiteralPart<'a> = (u32, Vec<(&'a str, u32, u32)>);

/// A router's published state, as the file holds it (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Snapshot<'a> {
    /// The catalog prefix it covers.
    pub(super) stamp: Stamp,
    /// The table's columns as of the stamp and its folding, as a catalog's table record
    /// spells them (`catalog::table_text`).
    pub(super) table: &'a str,
    /// A definition of one shape of each template, and the fingerprint of its compiled
    /// form (see `restore`).
    pub(super) templates: Vec<(&'a str, u32)>,
    /// The groups, handles ascending.
    pub(super) groups: Vec<GroupPart<'a>>,
    /// Ordered groups their index refused, ascending.
    pub(super) refused: Vec<u32>,
    /// The range indexes.
    pub(super) ranges: Vec<RangePart<'a>>,
    /// The literal indexes.
    pub(super) literals: Vec<LiteralPart<'a>>,
}

/// Replaces `dir`'s snapshot file by `bytes` ([`encode`]'s) atomically (temp file, fsync,
/// rename, directory fsync): a crash leaves the old file, the new one or none.
pub(super) fn write_bytes(dir: &Path, bytes: &[u8]) -> Result<()> {
    let path = dir.join(FILE);
    durable::write_atomically(&path, bytes, FileKind::RouterSnapshot, CRASH_POINTS)
}

/// Whether `bytes` decode as a router snapshot (every length and count checked): the
/// decoder an open uses, for tools and fuzzing.
pub fn check(bytes: &[u8]) -> Result<()> {
    decode(bytes).map(drop)
}

/// Bytes [`encode`] writes for `s`.
pub(super) fn encoded_len(s: &Snapshot) -> usize {
    let str_len = |t: &str| 4 + t.len();
    let groups: usize = (s.groups.iter())
        .map(|g| {
            let ordered = match &g.ordered {
                None => 1,
                Some(OrderedKey::Range(..)) => 17,
                Some(OrderedKey::Infix(l)) => 1 + str_len(l),
            };
            8 + 4 + g.keys.len() + ordered + 4 + 4 * g.ids.len()
        })
        .sum();
    let ranges: usize = s.ranges.iter().map(|r| 8 + 20 * r.lo.len()).sum();
    let literals: usize = (s.literals.iter())
        .map(|(_, e)| 8 + e.iter().map(|(l, ..)| str_len(l) + 8).sum::<usize>())
        .sum();
    HEADER
        + 20
        + str_len(s.table)
        + 4
        + s.templates
            .iter()
            .map(|(t, _)| str_len(t) + 4)
            .sum::<usize>()
        + 4
        + groups
        + 4
        + 4 * s.refused.len()
        + 4
        + ranges
        + 4
        + literals
}

/// The file's bytes for `s`.
pub(super) fn encode(s: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(encoded_len(s));
    out.extend_from_slice(MAGIC);
    put32(&mut out, Version::V1 as u32);
    out.extend_from_slice(&[0; 12]); // body length and checksum, below
    put64(&mut out, s.stamp.len);
    put32(&mut out, s.stamp.crc);
    put64(&mut out, s.stamp.records);
    put_str(&mut out, s.table);
    put32(&mut out, s.templates.len() as u32);
    for (definition, fingerprint) in &s.templates {
        put_str(&mut out, definition);
        put32(&mut out, *fingerprint);
    }
    put32(&mut out, s.groups.len() as u32);
    for g in &s.groups {
        put32(&mut out, g.handle);
        put32(&mut out, g.template);
        put32(&mut out, g.keys.len() as u32);
        out.extend_from_slice(g.keys);
        match &g.ordered {
            None => out.push(0),
            Some(OrderedKey::Range(lo, hi)) => {
                out.push(1);
                put64(&mut out, *lo);
                put64(&mut out, *hi);
            }
            Some(OrderedKey::Infix(literal)) => {
                out.push(2);
                put_str(&mut out, literal);
            }
        }
        put32(&mut out, g.ids.len() as u32);
        g.ids.iter().for_each(|&id| put32(&mut out, id));
    }
    put32(&mut out, s.refused.len() as u32);
    s.refused.iter().for_each(|&g| put32(&mut out, g));
    put32(&mut out, s.ranges.len() as u32);
    for r in &s.ranges {
        put32(&mut out, r.slot);
        put32(&mut out, r.lo.len() as u32);
        r.lo.iter().for_each(|&v| put64(&mut out, v));
        r.hi.iter().for_each(|&v| put64(&mut out, v));
        r.group.iter().for_each(|&g| put32(&mut out, g));
    }
    put32(&mut out, s.literals.len() as u32);
    for (slot, entries) in &s.literals {
        put32(&mut out, *slot);
        put32(&mut out, entries.len() as u32);
        for (literal, group, refs) in entries {
            put_str(&mut out, literal);
            put32(&mut out, *group);
            put32(&mut out, *refs);
        }
    }
    let body_len = (out.len() - HEADER) as u64;
    let crc = crc32c::crc32c(&out[HEADER..]);
    out[12..20].copy_from_slice(&body_len.to_le_bytes());
    out[20..24].copy_from_slice(&crc.to_le_bytes());
    out
}

/// The snapshot `bytes` hold, every length and count checked; any damage is a typed
/// error of `FileKind::RouterSnapshot`.
pub(super) fn decode(bytes: &[u8]) -> Result<Snapshot<'_>> {
    let mut r = Reader { bytes, at: 0 };
    if r.take(8)? != MAGIC {
        return Err(Error::BadMagic {
            file: FileKind::RouterSnapshot,
            what: FILE.into(),
        });
    }
    let version = r.u32()?;
    if version != Version::V1 as u32 {
        return Err(Error::UnsupportedVersion {
            file: FileKind::RouterSnapshot,
            what: FILE.into(),
            version,
        });
    }
    let (body_len, expected) = (r.u64()?, r.u32()?);
    if body_len != (bytes.len() - HEADER) as u64 {
        return Err(r.corrupt(format!(
            "body of {body_len} bytes, {} in the file",
            bytes.len() - HEADER
        )));
    }
    let got = crc32c::crc32c(&bytes[HEADER..]);
    if got != expected {
        return Err(Error::ChecksumMismatch {
            file: FileKind::RouterSnapshot,
            what: FILE.into(),
            expected,
            got,
        });
    }
    let stamp = Stamp {
        len: r.u64()?,
        crc: r.u32()?,
        records: r.u64()?,
    };
    let table = r.str()?;
    let templates = r.list(8, |r| Ok((r.str()?, r.u32()?)))?;
    let groups = r.list(17, |r| {
        Ok(GroupPart {
            handle: r.u32()?,
            template: r.u32()?,
            keys: {
                let len = r.u32()? as usize;
                r.take(len)?
            },
            ordered: match r.take(1)?[0] {
                0 => None,
                1 => Some(OrderedKey::Range(r.u64()?, r.u64()?)),
                2 => Some(OrderedKey::Infix(r.str()?.into())),
                tag => return Err(r.corrupt(format!("ordered key tag {tag}"))),
            },
            ids: r.list(4, Reader::u32)?.into(),
        })
    })?;
    let refused = r.list(4, Reader::u32)?;
    let ranges = r.list(8, |r| {
        let slot = r.u32()?;
        let m = r.count(20)?;
        let lo = (0..m).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let hi = (0..m).map(|_| r.u64()).collect::<Result<Vec<_>>>()?;
        let group = (0..m).map(|_| r.u32()).collect::<Result<Vec<_>>>()?;
        Ok(RangePart {
            slot,
            lo: lo.into(),
            hi: hi.into(),
            group: group.into(),
        })
    })?;
    let literals = r.list(8, |r| {
        let slot = r.u32()?;
        let entries = r.list(12, |r| Ok((r.str()?, r.u32()?, r.u32()?)))?;
        Ok((slot, entries))
    })?;
    if r.at != bytes.len() {
        return Err(r.corrupt(format!("{} bytes after the body", bytes.len() - r.at)));
    }
    Ok(Snapshot {
        stamp,
        table,
        templates,
        groups,
        refused,
        ranges,
        literals,
    })
}

fn put32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put32(out, s.len() as u32);
    out.extend_from_slice(s.as_bytes());
}

/// Reads a snapshot's bytes front to back, every read bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn corrupt(&self, detail: String) -> Error {
        Error::Corrupt {
            file: FileKind::RouterSnapshot,
            what: FILE.into(),
            detail: format!("at byte {}: {detail}", self.at),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.corrupt(format!("{n} bytes past the end")));
        };
        let taken = &self.bytes[self.at..end];
        self.at = end;
        Ok(taken)
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64> {
        let b = self.take(8)?;
        let mut a = [0; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    fn str(&mut self) -> Result<&'a str> {
        let len = self.u32()? as usize;
        let b = self.take(len)?;
        std::str::from_utf8(b).map_err(|_| self.corrupt("text is not UTF-8".into()))
    }

    /// A count of items of at least `min` bytes each that the bytes left can hold (so a
    /// damaged count allocates nothing absurd).
    fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n.saturating_mul(min) > self.bytes.len() - self.at {
            return Err(self.corrupt(format!("{n} items do not fit")));
        }
        Ok(n)
    }

    /// A counted list of items of at least `min` bytes each, each read by `item`.
    fn list<T>(
        &mut self,
        min: usize,
        mut item: impl FnMut(&mut Reader<'a>) -> Result<T>,
    ) -> Result<Vec<T>> {
        let n = self.count(min)?;
        (0..n).map(|_| item(self)).collect()
    }
}

#[cfg(test)]
mod tests;
