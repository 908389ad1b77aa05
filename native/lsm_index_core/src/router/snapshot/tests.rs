use super::*;
use proptest::prelude::*;

/// A snapshot of every part, sized by `n`.
fn sample(n: u32) -> Snapshot<'static> {
    let groups = (0..n)
        .map(|g| GroupPart {
            handle: 2 * g + 1,
            template: g % 3,
            keys: if g % 2 == 0 {
                b"\x03\x00\x00\x00abc\x01\x00\x00\x00z"
            } else {
                b""
            },
            ordered: match g % 3 {
                0 => None,
                1 => Some(OrderedKey::Range(u64::from(g), u64::MAX - u64::from(g))),
                _ => Some(OrderedKey::Infix(format!("lit{g}").into())),
            },
            ids: (0..=g % 4).map(|i| 10 * g + i).collect(),
        })
        .collect();
    Snapshot {
        stamp: Stamp {
            len: 1234,
            crc: 0xdead_beef,
            records: 17,
        },
        table: "a\tint8\nb\ttext\n",
        templates: vec![
            ("a = $1\0v1", 7),
            ("b LIKE 'x%'", 0),
            ("b ILIKE '%é%'", u32::MAX),
        ],
        groups,
        refused: (0..n / 4).collect(),
        ranges: vec![RangePart {
            slot: 4,
            lo: vec![1, 2, 2].into(),
            hi: vec![5, 3, 9].into(),
            group: vec![3, 1, 7].into(),
        }],
        literals: vec![(8, vec![("lit1", 5, 1), ("é", 9, 2)]), (12, vec![])],
    }
}

/// Whether `e` is one of the errors a damaged snapshot decodes to.
fn typed(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt {
            file: FileKind::RouterSnapshot,
            ..
        } | Error::ChecksumMismatch {
            file: FileKind::RouterSnapshot,
            ..
        } | Error::BadMagic {
            file: FileKind::RouterSnapshot,
            ..
        } | Error::UnsupportedVersion {
            file: FileKind::RouterSnapshot,
            ..
        }
    )
}

#[test]
fn snapshots_round_trip_at_their_exact_encoded_length() {
    for n in [0, 1, 7, 100] {
        let s = sample(n);
        let bytes = encode(&s);
        assert_eq!(bytes.len(), encoded_len(&s), "n = {n}");
        assert_eq!(decode(&bytes).unwrap(), s);
    }
}

#[test]
fn the_header_is_magic_version_length_checksum() {
    let bytes = encode(&sample(3));
    assert_eq!(&bytes[..8], b"LSMRSNAP");
    assert_eq!(bytes[8..12], 1u32.to_le_bytes());
    assert_eq!(bytes[12..20], ((bytes.len() - 24) as u64).to_le_bytes());
    assert_eq!(bytes[20..24], crc32c::crc32c(&bytes[24..]).to_le_bytes());
    let mut other = bytes.clone();
    other[8] = 2;
    assert!(matches!(
        decode(&other),
        Err(Error::UnsupportedVersion { version: 2, .. })
    ));
    other = bytes.clone();
    other[0] = b'X';
    assert!(matches!(decode(&other), Err(Error::BadMagic { .. })));
    other = bytes.clone();
    *other.last_mut().unwrap() ^= 1;
    assert!(matches!(
        decode(&other),
        Err(Error::ChecksumMismatch { .. })
    ));
}

/// A body whose checksum is right but whose counts lie is refused, allocating nothing
/// absurd.
#[test]
fn a_count_larger_than_the_bytes_left_is_corruption() {
    let mut bytes = encode(&sample(0));
    // the template count, after the header, the stamp and the table
    let at = 24 + 20 + 4 + "a\tint8\nb\ttext\n".len();
    bytes[at..at + 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let crc = crc32c::crc32c(&bytes[24..]);
    bytes[20..24].copy_from_slice(&crc.to_le_bytes());
    assert!(
        matches!(decode(&bytes), Err(Error::Corrupt { detail, .. }) if detail.contains("do not fit"))
    );
}

proptest! {
    /// Arbitrary bytes decode to a snapshot or a typed error, never a panic.
    #[test]
    fn arbitrary_bytes_decode_or_fail_typed(
        bytes in proptest::collection::vec(any::<u8>(), 0..300),
        magic in any::<bool>(),
    ) {
        let mut bytes = bytes;
        if magic && bytes.len() >= 12 {
            bytes[..8].copy_from_slice(MAGIC);
            bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
        }
        if let Err(e) = decode(&bytes) {
            prop_assert!(typed(&e), "{:?}", e);
        }
    }

    /// A snapshot cut, with bits flipped, or with its body changed and its checksum made
    /// right again, decodes to a snapshot or a typed error, never a panic.
    #[test]
    fn damaged_snapshots_decode_or_fail_typed(
        n in 0u32..20,
        cut in any::<prop::sample::Index>(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..8), 0..6),
        fix_checksum in any::<bool>(),
    ) {
        let whole = encode(&sample(n));
        let mut bytes = whole[..cut.index(whole.len() + 1)].to_vec();
        for (at, bit) in &flips {
            if !bytes.is_empty() {
                let at = at.index(bytes.len());
                bytes[at] ^= 1 << bit;
            }
        }
        if fix_checksum && bytes.len() >= HEADER {
            let body = (bytes.len() - HEADER) as u64;
            bytes[12..20].copy_from_slice(&body.to_le_bytes());
            let crc = crc32c::crc32c(&bytes[HEADER..]);
            bytes[20..24].copy_from_slice(&crc.to_le_bytes());
        }
        match decode(&bytes) {
            Ok(s) => prop_assert!(bytes == whole || fix_checksum, "{:?}", s.stamp),
            Err(e) => prop_assert!(typed(&e), "{:?}", e),
        }
    }
}
