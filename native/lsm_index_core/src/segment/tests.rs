use super::mph::MphKind;
use super::pool::TOMBSTONE;
use super::*;
use crate::error::Error;

fn opts(layout: SegmentLayout, prefilter: bool) -> WriteOptions {
    WriteOptions {
        layout,
        prefilter,
        level: 2,
        clean_seq: 77,
        seed_id: 0xABCD,
    }
}

fn fp(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17) ^ 0x5555
}

/// The set key `i` gets in these tests: mixes inline, pooled, large and tombstone values.
fn set_for(i: u64) -> Vec<u32> {
    match i % 7 {
        0 => vec![],
        1 => vec![i as u32 % 1000, 5000 + i as u32 % 3],
        2 => vec![u32::MAX - (i as u32 % 10)],
        3 => (0..(i % 20) as u32 + 2).map(|k| k * 3).collect(),
        _ => vec![i as u32 & 0x7FFF_FFFF],
    }
}

fn build(n: u64, o: WriteOptions) -> Vec<u8> {
    let mut w = SegmentWriter::with_capacity(o, n as usize);
    for i in 0..n {
        w.push(fp(i), &set_for(i)).unwrap();
    }
    w.finish().unwrap()
}

fn lookup<B: AsRef<[u8]>>(s: &Segment<B>, f: u64) -> Option<Vec<u32>> {
    match s.probe(f) {
        Probe::Found(v) => {
            let mut out = Vec::new();
            s.decode(v, &mut out).unwrap();
            Some(out)
        }
        _ => None,
    }
}

fn check(n: u64, layout: SegmentLayout, prefilter: bool) {
    let bytes = build(n, opts(layout, prefilter));
    let s = Segment::open(bytes, "test", true).unwrap();
    let info = s.info();
    assert_eq!(info.key_count, n);
    assert_eq!(info.clean_seq, 77);
    assert_eq!(info.seed_id, 0xABCD);
    assert_eq!(info.level, 2);
    let expected = match layout {
        SegmentLayout::Mph(_) if (n as usize) < writer::SMALL_SEGMENT_KEYS => {
            SegmentLayout::Mph(MphKind::BoomPhf)
        }
        _ => layout,
    };
    assert_eq!(info.layout, (n > 0).then_some(expected));
    assert_eq!(info.prefilter, prefilter && n >= prefilter::MIN_KEYS as u64);
    for i in 0..n {
        assert_eq!(
            lookup(&s, fp(i)).as_deref(),
            Some(&set_for(i)[..]),
            "key {i}"
        );
    }
    // Fingerprint verification rejects absent keys, whatever records they are sent to.
    for i in n..n + 10_000 {
        assert_eq!(lookup(&s, fp(i)), None, "absent key {i}");
    }
    assert_eq!(s.entries().count() as u64, n);
    if layout == SegmentLayout::Quotient {
        let fps: Vec<u64> = s.entries().map(|(f, _)| f).collect();
        assert!(
            fps.windows(2).all(|w| w[0] < w[1]),
            "entries in fingerprint order"
        );
    }
}

/// Every layout, for the tests that run on each.
const LAYOUTS: [SegmentLayout; 3] = [
    SegmentLayout::Quotient,
    SegmentLayout::Mph(MphKind::PtrHash),
    SegmentLayout::Mph(MphKind::BoomPhf),
];

#[test]
fn empty_single_and_small_segments_for_every_layout() {
    for layout in LAYOUTS {
        for n in [0, 1, 2, 15, 16, 17, 1000, 1024, 3000] {
            check(n, layout, true);
            check(n, layout, false);
        }
    }
}

#[test]
fn one_million_keys_for_every_layout() {
    check(1_000_000, SegmentLayout::Quotient, false);
    check(1_000_000, SegmentLayout::Mph(MphKind::PtrHash), true);
    check(1_000_000, SegmentLayout::Mph(MphKind::BoomPhf), false);
}

/// The quotient table's density at a lane's share of 10M keys: 50 remainder bits (64 - 14
/// bucket bits) and 18 value bits per record (8.5 B), ~0.42 B of directory per key.
#[test]
fn quotient_records_take_under_nine_bytes_per_key() {
    let n = 156_250u64;
    let mut w = SegmentWriter::with_capacity(opts(SegmentLayout::Quotient, false), n as usize);
    for i in 0..n {
        w.push(fp(i), &[(i % 100_000) as u32]).unwrap();
    }
    let bytes = w.finish().unwrap();
    let per_key = bytes.len() as f64 / n as f64;
    assert!((8.8..9.0).contains(&per_key), "{per_key} B/key");
}

#[test]
fn tombstones_are_found_as_empty_sets() {
    for layout in LAYOUTS {
        let mut w = SegmentWriter::new(opts(layout, true));
        w.push(1, &[]).unwrap();
        w.push(2, &[3]).unwrap();
        let s = Segment::open(w.finish().unwrap(), "t", true).unwrap();
        assert_eq!(s.probe(1), Probe::Found(TOMBSTONE));
        assert!(s.info().has_tombstones);
    }
}

#[test]
fn length_is_exactly_the_encoded_len_of_the_sections() {
    for (n, layout) in [0, 1, 100, 5000]
        .into_iter()
        .flat_map(|n| LAYOUTS.map(|l| (n, l)))
    {
        let bytes = build(n, opts(layout, true));
        let lens: [usize; SECTIONS] = std::array::from_fn(|k| {
            let at = 48 + 24 * k + 8;
            u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize
        });
        assert_eq!(bytes.len(), writer::encoded_len(&lens));
        let s = Segment::open(&bytes[..], "t", true).unwrap();
        assert_eq!(s.info().bytes as usize, bytes.len());
    }
}

#[test]
fn reads_in_place_from_borrowed_bytes() {
    let bytes = build(500, opts(SegmentLayout::Mph(MphKind::BoomPhf), true));
    let s = Segment::open(bytes.as_slice(), "borrowed", true).unwrap();
    assert_eq!(lookup(&s, fp(4)).unwrap(), set_for(4));
}

#[test]
fn every_corrupted_header_byte_is_refused() {
    for layout in LAYOUTS {
        let bytes = build(100, opts(layout, true));
        for at in 0..HEADER_CRC_AT + 4 {
            let mut bad = bytes.clone();
            bad[at] ^= 0x40;
            assert!(Segment::open(bad, "t", false).is_err(), "byte {at}");
        }
    }
}

#[test]
fn corrupted_sections_fail_their_checksum() {
    for (layout, sec) in LAYOUTS
        .into_iter()
        .flat_map(|l| Section::ALL.map(|s| (l, s)))
    {
        let bytes = build(1000, opts(layout, true));
        let at = 48 + 24 * sec as usize;
        let off = u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
        let mut bad = bytes.clone();
        bad[off + 3] ^= 1;
        match Segment::open(bad, "t", true) {
            Err(Error::ChecksumMismatch { what, .. }) => assert!(what.contains(sec.name())),
            other => panic!("{layout:?} {sec:?}: {other:?}"),
        }
    }
}

#[test]
fn quotient_segments_need_format_two() {
    let mut bytes = build(100, opts(SegmentLayout::Quotient, false));
    assert_eq!(&bytes[8..11], &[2, 0, 3]);
    bytes[8] = 1;
    let crc = crc32c::crc32c(&bytes[..HEADER_CRC_AT]);
    bytes[HEADER_CRC_AT..HEADER_CRC_AT + 4].copy_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        Segment::open(bytes, "t", false),
        Err(Error::Corrupt { .. })
    ));
    let mph = build(100, opts(SegmentLayout::Mph(MphKind::PtrHash), false));
    assert_eq!(&mph[8..10], &[1, 0], "MPH segments stay format 1");
}

#[test]
fn truncation_magic_and_version_errors() {
    let bytes = build(100, opts(SegmentLayout::Mph(MphKind::BoomPhf), true));
    for len in [0, 7, 100, HEADER_LEN, bytes.len() - 1] {
        assert!(
            Segment::open(&bytes[..len], "t", false).is_err(),
            "len {len}"
        );
    }
    let mut bad = bytes.clone();
    bad[0] = b'X';
    assert!(matches!(
        Segment::open(bad, "t", false),
        Err(Error::BadMagic { .. })
    ));
    let mut bad = bytes.clone();
    bad[8] = 9;
    assert!(matches!(
        Segment::open(bad, "t", false),
        Err(Error::UnsupportedVersion { version: 9, .. })
    ));
}

mod fuzz {
    //! Mutation fuzzing of the decoder (cargo-fuzz needs a nightly toolchain this machine
    //! cannot fetch; these run in `./run test` instead): any corruption of a valid segment
    //! must give `Err` at open or well-formed answers after, never a panic.
    use super::*;
    use proptest::prelude::*;

    fn probe_everything<B: AsRef<[u8]>>(s: &Segment<B>, n: u64) {
        let mut out = Vec::new();
        for i in 0..n + 50 {
            if let Probe::Found(v) = s.probe(fp(i)) {
                out.clear();
                let _ = s.decode(v, &mut out);
            }
        }
        for (_, v) in s.entries() {
            out.clear();
            let _ = s.decode(v, &mut out);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn mutated_segments_never_panic(
            layout in prop_oneof![
                Just(SegmentLayout::Quotient),
                Just(SegmentLayout::Mph(MphKind::PtrHash)),
                Just(SegmentLayout::Mph(MphKind::BoomPhf)),
            ],
            n in 0u64..300,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..8),
            verify in any::<bool>(),
        ) {
            let mut bytes = build(n, opts(layout, true));
            for (at, x) in &flips {
                let at = at.index(bytes.len());
                bytes[at] ^= x;
            }
            if let Ok(s) = Segment::open(&bytes[..], "fuzz", verify) {
                probe_everything(&s, n);
            }
        }

        #[test]
        fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = Segment::open(&bytes[..], "fuzz", false);
            let mut with_magic = MAGIC.to_vec();
            with_magic.extend_from_slice(&bytes);
            let _ = Segment::open(&with_magic[..], "fuzz", false);
        }
    }
}

/// Regression: a huge slot (e.g. a sentinel, or a corrupt MPH's answer) overflowed the
/// record offset computation instead of reading as absent.
#[test]
fn out_of_range_slots_read_as_absent() {
    for layout in LAYOUTS {
        let s = Segment::open(build(100, opts(layout, false)), "t", true).unwrap();
        for start in [100, 101, u32::MAX / 12, u32::MAX / 12 + 1, u32::MAX - 1] {
            let slots = Slots {
                start,
                end: start.saturating_add(1),
            };
            assert_eq!(s.value_in(slots, fp(0)), None, "slot {start}");
        }
    }
}
