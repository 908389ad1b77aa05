//! The manifest: which segment files make up a persistent index, installed atomically.
//!
//! ```text
//! <dir>/MANIFEST-<generation, 16 hex digits>.json
//! {"format_version": 1, "crc32c": <crc32c of the body's JSON bytes>, "body": {
//!    "generation": 7, "lanes": 64, "secret": "<32 hex digits>", "seed_id": <u64>,
//!    "next_segment_id": 912, "next_seq": 48_000_123,
//!    "dropped": [[handle, drop_seq], ...],             // drops not yet purged everywhere
//!    "lane_state": [                                    // one per lane, lane 0 first
//!      {"covered_seq": 47_999_000,                      // every write of the lane below it
//!       "segments": [                                   //   is in these segments, newest first
//!         {"id": 911, "level": 0, "keys": 16384, "bytes": 290123,
//!          "file": "segments/lane-0/000000000000038f.seg", "header_crc32c": 12345}]}]}}
//! ```
//!
//! Installing generation `g`: write `MANIFEST-g.json.tmp`, fsync it, rename it to
//! `MANIFEST-g.json`, fsync the directory. Only then are older manifests and the segment files
//! no longer referenced deleted. Opening picks the highest generation; a newest manifest that
//! does not parse or verify is an error (a rename is atomic, so it cannot be half written), and
//! leftover `*.tmp` files are removed.

use crate::durable::{self, io_error, CrashPoints};
use crate::error::{Error, FileKind, Result};
use crate::hash::HashSecret;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// The manifest format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const PREFIX: &str = "MANIFEST-";
const SUFFIX: &str = ".json";
/// Where a crash test can stop an install (see `failpoint`).
const CRASH_POINTS: CrashPoints = CrashPoints {
    written: "manifest:tmp_written",
    renamed: "manifest:renamed",
};

/// What a persistent index consists of at one generation.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Increases by one per install.
    pub generation: u64,
    /// Lane count (fixed for the life of the index: keys are placed by it).
    pub lanes: u32,
    /// The key-hash secret, 32 hex digits (the index directory is as private as its data).
    pub secret: String,
    /// Seed id of that secret; every segment records the same.
    pub seed_id: u64,
    /// Next segment id to allocate (file names never repeat).
    pub next_segment_id: u64,
    /// Sequence numbers continue above this after a reopen.
    pub next_seq: u64,
    /// Dropped handles not yet purged from every segment: `(handle, drop sequence)`.
    pub dropped: Vec<(u32, u64)>,
    /// Per lane, lane 0 first.
    pub lane_state: Vec<LaneManifest>,
}

/// One lane's persistent state.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Default)]
pub struct LaneManifest {
    /// Every write to this lane with a smaller sequence number is in `segments`.
    pub covered_seq: u64,
    /// Newest first, as `Version::segments`.
    pub segments: Vec<SegmentEntry>,
}

/// One segment file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SegmentEntry {
    /// Segment id (unique in the index).
    pub id: u64,
    /// Compaction level.
    pub level: u32,
    /// Keys it holds (tombstones included).
    pub keys: u64,
    /// File length.
    pub bytes: u64,
    /// Path relative to the index directory.
    pub file: String,
    /// The header checksum recorded in the file (it covers every section checksum), so a
    /// file swapped for another one is caught without reading it all.
    pub header_crc32c: u32,
}

#[derive(Serialize, Deserialize)]
struct Envelope {
    format_version: u32,
    crc32c: u32,
    body: serde_json::Value,
}

impl Manifest {
    /// A first manifest for an empty index.
    pub fn empty(lanes: u32, secret: &HashSecret, seed_id: u64) -> Manifest {
        Manifest {
            generation: 0,
            lanes,
            secret: hex(&secret.0),
            seed_id,
            next_segment_id: 1,
            next_seq: 1,
            dropped: Vec::new(),
            lane_state: vec![LaneManifest::default(); lanes as usize],
        }
    }

    /// The hash secret recorded in the manifest.
    pub fn hash_secret(&self) -> Result<HashSecret> {
        let bytes = unhex(&self.secret)
            .ok_or_else(|| corrupt("manifest", "secret is not 32 hex digits"))?;
        let arr: [u8; 16] = bytes
            .try_into()
            .map_err(|_| corrupt("manifest", "secret is not 16 bytes"))?;
        Ok(HashSecret(arr))
    }

    /// The file name of generation `generation`.
    pub fn file_name(generation: u64) -> String {
        durable::numbered_name(PREFIX, generation, SUFFIX)
    }

    /// Encodes this manifest (envelope with format version and checksum).
    pub fn encode(&self) -> Result<Vec<u8>> {
        let body = serde_json::to_value(self).map_err(|e| corrupt("manifest", &e.to_string()))?;
        let body_bytes =
            serde_json::to_vec(&body).map_err(|e| corrupt("manifest", &e.to_string()))?;
        let envelope = Envelope {
            format_version: FORMAT_VERSION,
            crc32c: crc32c::crc32c(&body_bytes),
            body,
        };
        serde_json::to_vec_pretty(&envelope).map_err(|e| corrupt("manifest", &e.to_string()))
    }

    /// Decodes and checks a manifest file's bytes.
    pub fn decode(bytes: &[u8], what: &str) -> Result<Manifest> {
        let envelope: Envelope = serde_json::from_slice(bytes)
            .map_err(|e| corrupt(what, &format!("not a manifest: {e}")))?;
        if envelope.format_version != FORMAT_VERSION {
            return Err(Error::UnsupportedVersion {
                file: FileKind::Manifest,
                what: what.to_string(),
                version: envelope.format_version,
            });
        }
        let body_bytes =
            serde_json::to_vec(&envelope.body).map_err(|e| corrupt(what, &e.to_string()))?;
        let got = crc32c::crc32c(&body_bytes);
        if got != envelope.crc32c {
            return Err(Error::ChecksumMismatch {
                file: FileKind::Manifest,
                what: what.to_string(),
                expected: envelope.crc32c,
                got,
            });
        }
        let m: Manifest =
            serde_json::from_value(envelope.body).map_err(|e| corrupt(what, &e.to_string()))?;
        m.validate(what)?;
        Ok(m)
    }

    /// Structural checks a decoded manifest must pass before anything trusts it.
    fn validate(&self, what: &str) -> Result<()> {
        if self.lanes == 0 || self.lane_state.len() != self.lanes as usize {
            return Err(corrupt(what, "lane count and lane list disagree"));
        }
        let mut ids = std::collections::HashSet::new();
        for (lane, state) in self.lane_state.iter().enumerate() {
            for s in &state.segments {
                if !ids.insert(s.id) || s.id >= self.next_segment_id {
                    return Err(corrupt(
                        what,
                        &format!("segment id {} repeated or unallocated", s.id),
                    ));
                }
                if s.file != segment_file(lane, s.id) {
                    return Err(corrupt(
                        what,
                        &format!("unexpected segment path {:?}", s.file),
                    ));
                }
            }
            if state.covered_seq > self.next_seq {
                return Err(corrupt(
                    what,
                    "a lane covers sequence numbers not yet allocated",
                ));
            }
        }
        self.hash_secret().map(|_| ())
    }
}

/// The relative path of segment `id` of lane `lane`.
pub fn segment_file(lane: usize, id: u64) -> String {
    format!("segments/lane-{lane}/{}", segment_name(id))
}

/// The file name of segment `id` (unique within an index: how errors name a segment).
pub fn segment_name(id: u64) -> String {
    format!("{id:016x}.seg")
}

/// Installs `m` in `dir` atomically (temp file, fsync, rename, fsync of the directory).
pub fn install(dir: &Path, m: &Manifest) -> Result<()> {
    let bytes = m.encode()?;
    let dest = dir.join(Manifest::file_name(m.generation));
    durable::write_atomically(&dest, &bytes, FileKind::Manifest, CRASH_POINTS)
}

/// The newest manifest in `dir`, or `None` when there is none.
pub fn load_latest(dir: &Path) -> Result<Option<Manifest>> {
    let Some((generation, path)) = manifests(dir)?.into_iter().max() else {
        return Ok(None);
    };
    let bytes = fs::read(&path).map_err(|e| io_error(FileKind::Manifest, &path, "read", &e))?;
    let m = Manifest::decode(&bytes, &path.display().to_string())?;
    if m.generation != generation {
        return Err(corrupt(
            &path.display().to_string(),
            "generation differs from the file name",
        ));
    }
    Ok(Some(m))
}

/// Every `MANIFEST-*.json` in `dir` with its generation.
pub fn manifests(dir: &Path) -> Result<Vec<(u64, PathBuf)>> {
    durable::numbered_files(dir, PREFIX, SUFFIX)
}

fn corrupt(what: &str, detail: &str) -> Error {
    Error::Corrupt {
        file: FileKind::Manifest,
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        let mut m = Manifest::empty(2, &HashSecret([7; 16]), 42);
        m.generation = 3;
        m.next_segment_id = 10;
        m.next_seq = 500;
        m.dropped = vec![(5, 400)];
        m.lane_state[1].covered_seq = 450;
        m.lane_state[1].segments.push(SegmentEntry {
            id: 9,
            level: 1,
            keys: 100,
            bytes: 4096,
            file: segment_file(1, 9),
            header_crc32c: 0xdead_beef,
        });
        m
    }

    #[test]
    fn round_trips_through_install_and_load() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_latest(dir.path()).unwrap(), None);
        let mut m = sample();
        install(dir.path(), &m).unwrap();
        m.generation = 4;
        m.next_seq = 600;
        install(dir.path(), &m).unwrap();
        assert_eq!(load_latest(dir.path()).unwrap(), Some(m.clone()));
        assert_eq!(m.hash_secret().unwrap().0, [7; 16]);
        assert_eq!(manifests(dir.path()).unwrap().len(), 2);
    }

    #[test]
    fn every_flipped_byte_and_truncation_is_refused() {
        let bytes = sample().encode().unwrap();
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            if let Ok(m) = Manifest::decode(&bad, "m") {
                // whitespace flips (space <-> '!') can leave valid JSON with the same body
                assert_eq!(m, sample(), "byte {i} changed the manifest silently");
            }
        }
        for len in 0..bytes.len() {
            assert!(
                Manifest::decode(&bytes[..len], "m").is_err(),
                "truncated to {len}"
            );
        }
    }

    proptest::proptest! {
        /// Decoder fuzzing (cargo-fuzz needs a nightly toolchain, absent here): arbitrary
        /// bytes, and valid manifests with random bytes overwritten, never panic.
        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            edits in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 1..8),
        ) {
            let _ = Manifest::decode(&bytes, "fuzz");
            let mut m = sample().encode().unwrap();
            for (at, b) in edits {
                let i = at % m.len();
                m[i] = b;
            }
            let _ = Manifest::decode(&m, "fuzz");
        }
    }

    #[test]
    fn inconsistent_manifests_are_refused() {
        let cases: Vec<fn(&mut Manifest)> = vec![
            |m| m.lanes = 3,
            |m| m.lane_state[1].segments[0].file = "../../etc/passwd".into(),
            |m| m.lane_state[1].segments[0].id = 99,
            |m| m.lane_state[1].covered_seq = 10_000,
            |m| m.secret = "zz".into(),
        ];
        for (i, break_it) in cases.into_iter().enumerate() {
            let mut m = sample();
            break_it(&mut m);
            let err = Manifest::decode(&m.encode().unwrap(), "m").unwrap_err();
            assert!(matches!(err, Error::Corrupt { .. }), "case {i}: {err:?}");
        }
    }
}
