use super::*;
use crate::router::catalog::table::column_line;

fn cols() -> Vec<(String, ColumnType)> {
    vec![("a".into(), ColumnType::Int8)]
}

/// Opens with no stamp: every live shape.
fn open_full(
    dir: &Path,
    columns: &[(String, ColumnType)],
    folding: CaseFolding,
    sync: SyncMode,
) -> Result<(Catalog, Shapes)> {
    match Catalog::open(dir, columns, folding, sync, None)? {
        (c, Replay::Full(shapes)) => Ok((c, shapes)),
        (_, Replay::Tail(_)) => panic!("a tail replay without a stamp"),
    }
}

#[test]
fn a_record_is_length_checksum_payload() {
    let rec = record(ADD, 0x0102_0304, b"a = 1");
    let mut payload = vec![ADD];
    payload.extend_from_slice(&0x0102_0304u32.to_le_bytes());
    payload.extend_from_slice(b"a = 1");
    let mut expected = (payload.len() as u32).to_le_bytes().to_vec();
    expected.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    expected.extend_from_slice(&payload);
    assert_eq!(rec, expected);
}

#[test]
fn replays_adds_and_removes_and_cuts_a_torn_tail() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut c, shapes) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::Flush).unwrap();
        assert!(shapes.is_empty());
        c.add(1, "a = 1").unwrap();
        c.add(2, "a = 2").unwrap();
        c.add(1, "a = 3").unwrap();
        c.remove(2).unwrap();
        c.sync().unwrap();
    }
    let path = dir.path().join(FILE);
    let mut bytes = fs::read(&path).unwrap();
    bytes.extend_from_slice(&record(ADD, 9, b"a = 9")[..7]);
    fs::write(&path, &bytes).unwrap();
    let (_c, shapes) =
        open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::Flush).unwrap();
    assert_eq!(shapes, Shapes::from([(1, "a = 3".to_string())]));
}

#[test]
fn refuses_corruption_other_columns_and_a_second_opener() {
    let dir = tempfile::tempdir().unwrap();
    let (mut c, _) =
        open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::Always).unwrap();
    c.add(1, "a = 1").unwrap();
    assert!(matches!(
        open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::Flush),
        Err(Error::Locked { .. })
    ));
    drop(c);
    let other = vec![("b".to_string(), ColumnType::Text)];
    assert!(matches!(
        open_full(dir.path(), &other, CaseFolding::Unicode, SyncMode::Flush),
        Err(Error::TableMismatch { .. })
    ));
    let path = dir.path().join(FILE);
    let mut bytes = fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    fs::write(&path, &bytes).unwrap();
    assert!(matches!(
        open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::Flush),
        Err(Error::ChecksumMismatch {
            file: FileKind::Catalog,
            ..
        })
    ));
}

/// The columns of the proptest's table: it is made with the first, and gains the others.
fn grown() -> Vec<(String, ColumnType)> {
    let mut columns = cols();
    columns.push(("b".into(), ColumnType::Text));
    columns.push(("c".into(), ColumnType::Bool));
    columns
}

/// Catalog bytes for `ops` (add `Some(text)` / remove `None` of an id) of a table made with
/// `cols()`, the other columns of `grown()` recorded before the ops at `columns_at`; with
/// the offset where each record ends (the table record's first) and the shapes after each
/// prefix of the records (`prefixes[k]`: after the first k after the table record).
fn encoded(
    ops: &[(u32, Option<String>)],
    columns_at: &[usize],
) -> (Vec<u8>, Vec<usize>, Vec<Shapes>) {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&VERSION.to_le_bytes());
    let table = table_text(&cols(), CaseFolding::Unicode);
    bytes.extend_from_slice(&record(TABLE, 0, table.as_bytes()));
    let mut ends = vec![bytes.len()];
    let mut shapes = Shapes::new();
    let mut prefixes = vec![shapes.clone()];
    let mut known = cols().len();
    for (i, (id, text)) in ops.iter().enumerate() {
        for _ in columns_at.iter().filter(|&&at| at == i) {
            if let Some((name, ty)) = grown().get(known) {
                let line = column_line(name, ty);
                bytes.extend_from_slice(&record(COLUMN, known as u32, line.as_bytes()));
                known += 1;
                ends.push(bytes.len());
                prefixes.push(shapes.clone());
            }
        }
        match text {
            Some(text) => {
                bytes.extend_from_slice(&record(ADD, *id, text.as_bytes()));
                shapes.insert(*id, text.clone());
            }
            None => {
                bytes.extend_from_slice(&record(REMOVE, *id, b""));
                shapes.remove(id);
            }
        }
        ends.push(bytes.len());
        prefixes.push(shapes.clone());
    }
    (bytes, ends, prefixes)
}

/// The errors a damaged catalog may decode to: typed, naming the catalog.
fn typed(e: &Error) -> bool {
    matches!(
        e,
        Error::Corrupt {
            file: FileKind::Catalog,
            ..
        } | Error::ChecksumMismatch {
            file: FileKind::Catalog,
            ..
        } | Error::BadMagic {
            file: FileKind::Catalog,
            ..
        } | Error::UnsupportedVersion {
            file: FileKind::Catalog,
            ..
        } | Error::TableMismatch { .. }
    )
}

proptest::proptest! {
    /// The decoder against what was encoded (shape records, and column records among them):
    /// whole, a catalog decodes to exactly the shapes its records leave; cut anywhere, to
    /// the shapes of the whole records before the cut (a torn last record is ignored), or —
    /// cut inside the header or the table record — to a typed error; with bits flipped as
    /// well, to the shapes of some whole prefix (a length made longer reads as a torn tail)
    /// or a typed error. Never anything else, never a panic.
    #[test]
    fn catalogs_decode_to_what_was_encoded_or_a_typed_error(
        ops in proptest::collection::vec(
            (0u32..6, proptest::option::of("[a-z0-9 =']{0,12}")),
            0..10,
        ),
        columns_at in proptest::collection::vec(0usize..10, 0..3),
        cut in 0usize..1_000,
        flips in proptest::collection::vec((0usize..1_000, 0u8..8), 0..4),
    ) {
        let (bytes, ends, prefixes) = encoded(&ops, &columns_at);
        let whole = decode(&bytes, &grown(), CaseFolding::Unicode);
        proptest::prop_assert_eq!(whole.as_ref(), Ok(&prefixes[ends.len() - 1]));

        let cut = cut % (bytes.len() + 1);
        let kept = ends[1..].iter().filter(|&&end| end <= cut).count();
        let mut damaged = bytes[..cut].to_vec();
        let got = decode(&damaged, &grown(), CaseFolding::Unicode);
        if cut >= ends[0] {
            proptest::prop_assert_eq!(got.as_ref(), Ok(&prefixes[kept]), "cut at {}", cut);
        } else {
            proptest::prop_assert!(
                got.as_ref().is_err_and(typed),
                "cut at {} in the header or table record: {:?}", cut, got
            );
        }

        let mut flipped = false;
        for &(at, bit) in &flips {
            if let Some(b) = damaged.get_mut(at % cut.max(1)) {
                *b ^= 1 << bit;
                flipped = true;
            }
        }
        if flipped {
            match decode(&damaged, &grown(), CaseFolding::Unicode) {
                Ok(shapes) => proptest::prop_assert!(
                    prefixes[..=kept].contains(&shapes),
                    "flips {:?} decoded to {:?}, no prefix of the records", flips, shapes
                ),
                Err(e) => proptest::prop_assert!(typed(&e), "{:?}", e),
            }
        }
    }
}

#[test]
fn a_named_enum_is_part_of_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let mood = |name: &str| vec![("e".to_string(), ColumnType::named_enum(name, ["a", "b"]))];
    {
        let (mut c, _) = open_full(
            dir.path(),
            &mood("mood"),
            CaseFolding::Unicode,
            SyncMode::None,
        )
        .unwrap();
        c.add(1, "e = 'a'::mood").unwrap();
    }
    let (c, shapes) = open_full(
        dir.path(),
        &mood("mood"),
        CaseFolding::Unicode,
        SyncMode::None,
    )
    .unwrap();
    assert_eq!(shapes[&1], "e = 'a'::mood");
    drop(c);
    // another name, or the enum known by its labels only, is another table
    for other in [
        mood("feeling"),
        vec![("e".to_string(), ColumnType::enumeration(["a", "b"]))],
    ] {
        assert!(matches!(
            open_full(dir.path(), &other, CaseFolding::Unicode, SyncMode::None),
            Err(Error::TableMismatch { .. })
        ));
    }
    // the table record of an enum known by its labels is what version 1 always wrote
    let labels = vec![("e".to_string(), ColumnType::enumeration(["a", "b"]))];
    assert_eq!(
        table_text(&labels, CaseFolding::Unicode),
        "e\tenum('a','b')\n"
    );
}

#[test]
fn rewrites_when_mostly_dead() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (mut c, _) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
        for i in 0..3000 {
            c.add(i % 10, &format!("a = {i}")).unwrap();
        }
    }
    let before = fs::metadata(dir.path().join(FILE)).unwrap().len();
    let (_c, shapes) =
        open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
    let after = fs::metadata(dir.path().join(FILE)).unwrap().len();
    assert_eq!(shapes.len(), 10);
    assert_eq!(shapes[&9], "a = 2999");
    assert!(after < before / 100, "{before} -> {after}");
}

#[test]
fn a_stamp_covering_a_prefix_hands_back_the_records_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let stamp = {
        let (mut c, _) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
        c.add(1, "a = 1").unwrap();
        c.add(2, "a = 2").unwrap();
        let stamp = c.stamp().unwrap();
        // the running stamp is the file's
        assert_eq!(stamp, stamp_of(&fs::read(&path).unwrap(), 3));
        c.add(3, "a = 3").unwrap();
        c.remove(1).unwrap();
        c.add(2, "a = 22").unwrap();
        stamp
    };
    let whole = stamp_of(&fs::read(&path).unwrap(), 6);
    let open = |covered: Option<Stamp>| {
        Catalog::open(
            dir.path(),
            &cols(),
            CaseFolding::Unicode,
            SyncMode::None,
            covered.map(|s| (s, 1)),
        )
        .unwrap()
    };
    let (c, replay) = open(Some(stamp));
    let tail = vec![
        (3, Some("a = 3".to_string())),
        (1, None),
        (2, Some("a = 22".to_string())),
    ];
    assert_eq!(replay, Replay::Tail(tail));
    assert_eq!(c.stamp(), Some(whole));
    drop(c);
    let (_, replay) = open(Some(whole));
    assert_eq!(replay, Replay::Tail(vec![]));
    // another checksum, a prefix longer than the file, no records: not covered
    for other in [
        Stamp {
            crc: stamp.crc ^ 1,
            ..stamp
        },
        Stamp {
            len: whole.len + 1,
            ..whole
        },
        Stamp {
            records: 0,
            ..stamp
        },
    ] {
        let (_, replay) = open(Some(other));
        let live = Shapes::from([(2, "a = 22".to_string()), (3, "a = 3".to_string())]);
        assert_eq!(replay, Replay::Full(live), "{other:?}");
    }
}

/// Opens `dir`'s catalog with `columns` and no stamp: its live shapes, or the error.
fn shapes_with(dir: &Path, columns: &[(String, ColumnType)]) -> Result<Shapes> {
    open_full(dir, columns, CaseFolding::Unicode, SyncMode::None).map(|(_, shapes)| shapes)
}

#[test]
fn columns_are_recorded_in_order_and_opened_only_with_them_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(FILE);
    let all = grown();
    {
        let (mut c, _) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
        c.add(1, "a = 1").unwrap();
        c.add_column("b", &ColumnType::Text).unwrap();
        c.add(2, "b = 'x'").unwrap();
    }
    let with_b = fs::read(&path).unwrap();
    // the column record: kind 3, its position, `name\ttype`
    let rec = record(COLUMN, 1, b"b\ttext");
    assert!(with_b.windows(rec.len()).any(|w| w == rec));
    let both = Shapes::from([(1, "a = 1".to_string()), (2, "b = 'x'".to_string())]);
    assert_eq!(shapes_with(dir.path(), &all[..2]).unwrap(), both);
    assert!(matches!(
        shapes_with(dir.path(), &cols()),
        Err(Error::TableMismatch { columns, .. }) if columns == ["a\tint8", "b\ttext"]
    ));
    let other = vec![cols()[0].clone(), ("b".to_string(), ColumnType::Int8)];
    assert!(matches!(
        shapes_with(dir.path(), &other),
        Err(Error::TableMismatch { .. })
    ));
    // opened with one more: recorded at open
    assert_eq!(shapes_with(dir.path(), &all).unwrap(), both);
    assert!(matches!(
        shapes_with(dir.path(), &all[..2]),
        Err(Error::TableMismatch { .. })
    ));
    assert_eq!(shapes_with(dir.path(), &all).unwrap(), both);

    // the column record torn: cut, as any torn last record; the column is recorded again
    let table_end = HEADER + FRAMING.encoded_len(5 + "a\tint8\n".len());
    let add_end = table_end + FRAMING.encoded_len(5 + "a = 1".len());
    fs::write(&path, &with_b[..add_end + 6]).unwrap();
    let first = Shapes::from([(1, "a = 1".to_string())]);
    assert_eq!(shapes_with(dir.path(), &cols()).unwrap(), first);
    assert_eq!(shapes_with(dir.path(), &all[..2]).unwrap(), first);
    assert!(matches!(
        shapes_with(dir.path(), &cols()),
        Err(Error::TableMismatch { .. })
    ));
}

#[test]
fn a_column_record_out_of_place_or_in_a_version_1_file_is_corrupt() {
    let corrupt = |bytes: &[u8]| {
        matches!(
            decode(bytes, &grown(), CaseFolding::Unicode),
            Err(Error::Corrupt {
                file: FileKind::Catalog,
                ..
            })
        )
    };
    let (mut bytes, _, _) = encoded(&[(1, Some("a = 1".to_string()))], &[]);
    let good = bytes.clone();
    // column 2 where column 1 is next
    bytes.extend_from_slice(&record(COLUMN, 2, b"b\ttext"));
    assert!(corrupt(&bytes));
    // a column record in a version-1 file
    let mut bytes = good.clone();
    bytes.extend_from_slice(&record(COLUMN, 1, b"b\ttext"));
    assert!(decode(&bytes, &grown(), CaseFolding::Unicode).is_ok());
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert!(corrupt(&bytes));
    // version 1 without one: read as ever; version 3: not this build's
    let mut bytes = good;
    bytes[8..12].copy_from_slice(&1u32.to_le_bytes());
    assert!(decode(&bytes, &grown(), CaseFolding::Unicode).is_ok());
    bytes[8..12].copy_from_slice(&3u32.to_le_bytes());
    assert!(matches!(
        decode(&bytes, &grown(), CaseFolding::Unicode),
        Err(Error::UnsupportedVersion { version: 3, .. })
    ));
}

#[test]
fn a_rewrite_keeps_the_columns() {
    let dir = tempfile::tempdir().unwrap();
    let all = grown();
    {
        let (mut c, _) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
        c.add_column("b", &ColumnType::Text).unwrap();
        for i in 0..3000 {
            c.add(i % 10, &format!("a = {i}")).unwrap();
        }
        c.add_column("c", &ColumnType::Bool).unwrap();
    }
    let before = fs::metadata(dir.path().join(FILE)).unwrap().len();
    let (c, shapes) = open_full(dir.path(), &all, CaseFolding::Unicode, SyncMode::None).unwrap();
    assert_eq!(shapes.len(), 10);
    assert_eq!(c.created_columns(), 1);
    drop(c);
    let after = fs::metadata(dir.path().join(FILE)).unwrap().len();
    assert!(after < before / 100, "{before} -> {after}");
    assert_eq!(shapes_with(dir.path(), &all).unwrap(), shapes);
    for fewer in [&all[..1], &all[..2]] {
        assert!(matches!(
            shapes_with(dir.path(), fewer),
            Err(Error::TableMismatch { .. })
        ));
    }
    // and so does a rewrite after a tail replay (`rewrite_live`)
    let (mut c, _) = open_full(dir.path(), &all, CaseFolding::Unicode, SyncMode::None).unwrap();
    c.rewrite_live().unwrap();
    assert_eq!(c.created_columns(), 1);
    drop(c);
    assert_eq!(shapes_with(dir.path(), &all).unwrap(), shapes);
    assert!(shapes_with(dir.path(), &all[..2]).is_err());
}

#[test]
fn a_tail_read_counts_the_columns_from_the_stamp() {
    let dir = tempfile::tempdir().unwrap();
    let all = grown();
    let stamp = {
        let (mut c, _) =
            open_full(dir.path(), &cols(), CaseFolding::Unicode, SyncMode::None).unwrap();
        c.add(1, "a = 1").unwrap();
        c.add_column("b", &ColumnType::Text).unwrap();
        let stamp = c.stamp().unwrap();
        c.add_column("c", &ColumnType::Bool).unwrap();
        c.add(2, "c").unwrap();
        stamp
    };
    let open = |columns: &[(String, ColumnType)], then| {
        Catalog::open(
            dir.path(),
            columns,
            CaseFolding::Unicode,
            SyncMode::None,
            Some((stamp, then)),
        )
    };
    let (c, replay) = open(&all, 2).unwrap();
    assert_eq!(replay, Replay::Tail(vec![(2, Some("c".to_string()))]));
    assert_eq!(c.created_columns(), 1);
    drop(c);
    // told another column count at the stamp: not covered (the full read checks it all)
    let (_, replay) = open(&all, 1).unwrap();
    assert!(matches!(replay, Replay::Full(_)));
    assert!(matches!(
        open(&all[..2], 2),
        Err(Error::TableMismatch { .. })
    ));
}
