//! `Config::verify_on_open: false` (a "lazy" open), as documented: it answers like a
//! verified open; it still checks each segment's header, its length and header against the
//! manifest, its structure (offsets, lengths, directory and pool headers) and a format-1
//! MPH section's checksum; damage anywhere else in a data section goes unnoticed — lookups
//! may answer wrong, never panic — and only a verified open (or `lsm-index verify`) finds it.

mod common;

use lsm_index_core::{Config, Error, FileKind, Index, MphKind, SegmentLayout};
use std::fs;
use std::path::{Path, PathBuf};

const KEYS: u32 = 2_000;

fn config(layout: SegmentLayout, verify_on_open: bool) -> Config {
    Config {
        lanes: 4,
        overlay_limit: 64,
        layout,
        verify_on_open,
        ..common::config()
    }
}

fn key(i: u32) -> Vec<u8> {
    format!("user_id={i}").into_bytes()
}

/// A closed index of `KEYS` keys in one segment per lane, and lane 0's segment file.
fn built(layout: SegmentLayout) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(layout, true)).unwrap();
    for i in 0..KEYS {
        index.add(&key(i), i % 7).unwrap();
    }
    index.compact().unwrap();
    index.close().unwrap();
    let lane0 = dir.path().join("segments/lane-0");
    let mut files: Vec<PathBuf> = fs::read_dir(lane0)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    (dir, files.pop().unwrap())
}

/// The byte range of section `s` of a segment file (0 index, 1 prefilter, 2 records, 3
/// pool), read from its header (`segment` module doc: 4 x { offset u64, length u64, ... } at
/// byte 48).
fn section(bytes: &[u8], s: usize) -> std::ops::Range<usize> {
    let at = 48 + 24 * s;
    let word = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let (offset, len) = (word(at), word(at + 8));
    offset..offset + len
}

fn flip(path: &Path, at: usize) {
    let mut bytes = fs::read(path).unwrap();
    bytes[at] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn a_lazy_open_answers_like_a_verified_one() {
    for layout in [
        SegmentLayout::Quotient,
        SegmentLayout::Mph(MphKind::PtrHash),
    ] {
        let (dir, _) = built(layout);
        let index = Index::open(dir.path(), config(layout, false)).unwrap();
        assert_eq!(index.stats().unwrap().segments, 4);
        for i in 0..KEYS {
            assert_eq!(
                index.lookup(&key(i)).unwrap(),
                vec![i % 7],
                "{layout:?} key {i}"
            );
        }
        assert!(index.lookup(b"absent").unwrap().is_empty());
        assert_eq!(index.len().unwrap(), u64::from(KEYS));
    }
}

#[test]
fn a_lazy_open_still_refuses_a_damaged_header_or_a_file_of_another_size() {
    let (dir, seg) = built(SegmentLayout::Quotient);
    let original = fs::read(&seg).unwrap();
    // the key count, in the header
    flip(&seg, 16);
    let err = Index::open(dir.path(), config(SegmentLayout::Quotient, false)).err();
    assert!(
        matches!(err, Some(Error::ChecksumMismatch { file: FileKind::Segment, ref what, .. }) if what.contains("header")),
        "{err:?}"
    );
    fs::write(&seg, &original[..original.len() - 1]).unwrap();
    let err = Index::open(dir.path(), config(SegmentLayout::Quotient, false)).err();
    assert!(
        matches!(
            err,
            Some(Error::Corrupt {
                file: FileKind::Segment,
                ..
            })
        ),
        "{err:?}"
    );
    fs::write(&seg, &original).unwrap();
    Index::open(dir.path(), config(SegmentLayout::Quotient, false)).unwrap();
}

/// Format 1 decodes its MPH section into the heap, so that section's checksum is checked
/// even by a lazy open.
#[test]
fn a_lazy_open_checks_a_format_1_mph_section() {
    let layout = SegmentLayout::Mph(MphKind::PtrHash);
    let (dir, seg) = built(layout);
    let index_section = section(&fs::read(&seg).unwrap(), 0);
    assert!(!index_section.is_empty());
    flip(&seg, index_section.start + index_section.len() / 2);
    let err = Index::open(dir.path(), config(layout, false)).err();
    assert!(
        matches!(err, Some(Error::ChecksumMismatch { file: FileKind::Segment, ref what, .. }) if what.contains("index section")),
        "{err:?}"
    );
}

/// A byte flipped in each data section of a format-2 segment, at its start, middle and end:
/// a lazy open refuses it only where the structure is checked (the quotient directory's
/// header, the pool's first byte); otherwise it opens and every lookup answers (`Ok`, right
/// or not: the damage is not seen), while a verified open names the file and section.
#[test]
fn a_lazy_open_does_not_see_damage_a_verified_open_refuses() {
    let (dir, seg) = built(SegmentLayout::Quotient);
    let original = fs::read(&seg).unwrap();
    let mut opened_damaged = 0;
    for (s, name) in ["index", "prefilter", "records", "pool"]
        .into_iter()
        .enumerate()
    {
        let r = section(&original, s);
        for at in [r.start, r.start + r.len() / 2, r.end - 1] {
            flip(&seg, at);
            let err = Index::open(dir.path(), config(SegmentLayout::Quotient, true)).err();
            assert!(
                matches!(err, Some(Error::ChecksumMismatch { file: FileKind::Segment, ref what, .. })
                    if what.contains(&seg.display().to_string()) && what.contains(name)),
                "{name} byte {at}: verified open: {err:?}"
            );
            match Index::open(dir.path(), config(SegmentLayout::Quotient, false)) {
                Err(e) => assert!(
                    matches!(
                        e,
                        Error::Corrupt {
                            file: FileKind::Segment,
                            ..
                        }
                    ),
                    "{name} byte {at}: lazy open: {e:?}"
                ),
                Ok(index) => {
                    opened_damaged += 1;
                    for i in 0..KEYS + 500 {
                        index.lookup(&key(i)).unwrap();
                    }
                    index.len().unwrap();
                    common::release(index);
                }
            }
            fs::write(&seg, &original).unwrap();
        }
    }
    assert!(opened_damaged > 0, "every damage was refused lazily");
}

/// What a lazy open did not see, a merge does: it verifies every input it reads, so a
/// damaged segment is refused (the job fails and poisons the index, naming the file and
/// section) instead of being
/// rewritten into a new segment with valid checksums. The damaged file stays as it was, and
/// a verified open still names it.
#[test]
fn a_merge_refuses_damage_a_lazy_open_did_not_see() {
    let (dir, seg) = built(SegmentLayout::Quotient);
    let name = seg.file_name().unwrap().to_string_lossy().into_owned();
    let r = section(&fs::read(&seg).unwrap(), 2);
    flip(&seg, r.start + r.len() / 2);
    let damaged = fs::read(&seg).unwrap();

    let index = Index::open(dir.path(), config(SegmentLayout::Quotient, false)).unwrap();
    for i in KEYS..KEYS + 500 {
        index.add(&key(i), i % 7).unwrap(); // new keys in every lane: a full compaction merges
    }
    let err = index.compact().err();
    // a failed job poisons the index (as any compaction failure does), naming the damage
    assert!(
        matches!(err, Some(Error::Poisoned { ref cause })
            if cause.contains(&name) && cause.contains("records section")
                && cause.contains("checksum mismatch")),
        "compacting over a damaged segment: {err:?}"
    );
    common::release(index);

    assert_eq!(
        fs::read(&seg).unwrap(),
        damaged,
        "the damaged file was replaced"
    );
    let err = Index::open(dir.path(), config(SegmentLayout::Quotient, true)).err();
    assert!(
        matches!(err, Some(Error::ChecksumMismatch { ref what, .. }) if what.contains(&name)),
        "verified open after the failed merge: {err:?}"
    );
}

/// A lazily opened segment that is whole merges as any other (verified once, then read).
#[test]
fn a_merge_over_lazily_opened_whole_segments_keeps_every_key() {
    let (dir, _) = built(SegmentLayout::Quotient);
    let index = Index::open(dir.path(), config(SegmentLayout::Quotient, false)).unwrap();
    for i in KEYS..KEYS + 500 {
        index.add(&key(i), i % 7).unwrap();
    }
    index.compact().unwrap();
    for i in 0..KEYS + 500 {
        assert_eq!(index.lookup(&key(i)).unwrap(), vec![i % 7], "key {i}");
    }
    common::release(index);
}
