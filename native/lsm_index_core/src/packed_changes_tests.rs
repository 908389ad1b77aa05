use super::*;
use proptest::prelude::*;

/// Every change of `bytes`, read `chunk` at a time, packed back (with its width).
fn read_all(bytes: &[u8], chunk: usize) -> Result<Vec<u8>, PackedError> {
    let mut changes = Changes::new(bytes)?;
    let width = changes.width();
    let mut out = pack(width, &[]);
    let mut read = Chunk::default();
    let mut count = 0u32;
    loop {
        let n = changes.read(chunk, &mut read)?;
        let again = pack(width, &read.changes());
        out.extend_from_slice(&again[8..]);
        count += n as u32;
        if changes.remaining() == 0 {
            break;
        }
    }
    out[4..8].copy_from_slice(&count.to_le_bytes());
    Ok(out)
}

/// A row of borrowed cells.
type Cells = Vec<Option<&'static [u8]>>;

/// Random changes: per change an op number and both rows' cells, owned.
type Random = Vec<(u8, Vec<Option<Vec<u8>>>)>;

fn rows() -> (Cells, Cells) {
    (
        vec![Some(b"7"), None, Some(b"")],
        vec![Some(b"8"), Some("é".as_bytes()), None],
    )
}

#[test]
fn round_trips_with_an_exact_length() {
    let (a, b) = rows();
    let changes = [
        Change::Insert(&a),
        Change::Update(&a, &b),
        Change::Truncate,
        Change::Delete(&b),
        Change::Insert(&a),
    ];
    for n in 0..=changes.len() {
        let packed = pack(3, &changes[..n]);
        assert_eq!(packed.len(), packed_len(&changes[..n]));
        for chunk in [1, 2, 64] {
            assert_eq!(
                read_all(&packed, chunk),
                Ok(packed.clone()),
                "{n} by {chunk}"
            );
        }
    }
}

#[test]
fn layout_is_fixed() {
    let row: Vec<Option<&[u8]>> = vec![Some(b"7"), None, Some(b"ab")];
    let packed = pack(3, &[Change::Insert(&row), Change::Truncate]);
    let want = [
        3, 0, 0, 0, // width
        2, 0, 0, 0,    // count
        b'I', // ('7', NULL, 'ab'): the lengths, then the texts
        1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, b'7', b'a', b'b', //
        b'T',
    ];
    assert_eq!(packed, want);
}

#[test]
fn cells_are_borrowed_not_copied() {
    let row: Vec<Option<&[u8]>> = vec![Some(b"abc")];
    let packed = pack(1, &[Change::Insert(&row)]);
    let mut changes = Changes::new(&packed).expect("well formed");
    let mut chunk = Chunk::default();
    assert_eq!(changes.read(8, &mut chunk), Ok(1));
    let Change::Insert(row) = chunk.changes()[0] else {
        panic!("an insert")
    };
    let cell = row[0].expect("text");
    assert!(std::ptr::eq(cell.as_ptr(), packed[13..].as_ptr()));
    assert_eq!(&packed[13..], b"abc");
}

fn refused(packed: &[u8]) -> (usize, &'static str) {
    let e = read_all(packed, 64).expect_err("malformed");
    (e.offset, e.reason)
}

#[test]
fn malformed_changes_are_refused_with_their_offset() {
    assert_eq!(refused(&[]), (0, "truncated width"));
    assert_eq!(refused(&[1, 0, 0]), (0, "truncated width"));
    assert_eq!(
        refused(&[0, 0, 0, 0, 0, 0, 0, 0]),
        (0, "a table has 1 to 1600 columns")
    );
    assert_eq!(
        refused(&[0x41, 6, 0, 0, 0, 0, 0, 0]),
        (0, "a table has 1 to 1600 columns")
    );
    assert_eq!(refused(&[1, 0, 0, 0, 1, 0]), (4, "truncated count"));
    // fewer changes than counted
    assert_eq!(
        refused(&[1, 0, 0, 0, 1, 0, 0, 0]),
        (8, "truncated change (no op byte)")
    );
    assert_eq!(
        refused(&[1, 0, 0, 0, 1, 0, 0, 0, b'X']),
        (8, "unknown change op (not I, D, U or T)")
    );
    assert_eq!(
        refused(&[1, 0, 0, 0, 1, 0, 0, 0, b'I', 1, 0]),
        (9, "truncated cell lengths")
    );
    assert_eq!(
        refused(&[1, 0, 0, 0, 1, 0, 0, 0, b'I', 2, 0, 0, 0, b'7']),
        (9, "cell length past the end")
    );
    let huge = [1, 0, 0, 0, 1, 0, 0, 0, b'D', 0xfe, 0xff, 0xff, 0xff, b'7'];
    assert_eq!(refused(&huge), (9, "cell length past the end"));
    // the second length of a row past the end
    let two = [2, 0, 0, 0, 1, 0, 0, 0, b'I', 1, 0, 0, 0, 1, 0, 0, 0, b'a'];
    assert_eq!(refused(&two), (13, "cell length past the end"));
    // an update's second row cut short
    let mut update = vec![1, 0, 0, 0, 1, 0, 0, 0, b'U', 0xff, 0xff, 0xff, 0xff];
    assert_eq!(refused(&update), (13, "truncated cell lengths"));
    update.extend_from_slice(&[0xff; 4]);
    assert_eq!(read_all(&update, 1), Ok(update.clone()));
    // more bytes than counted
    update.push(b'T');
    assert_eq!(refused(&update), (17, "bytes after the last change"));
    assert_eq!(
        refused(&[1, 0, 0, 0, 0, 0, 0, 0, b'T']),
        (8, "bytes after the last change")
    );
    // the second change's offset
    let row: Vec<Option<&[u8]>> = vec![Some(b"ab")];
    let mut packed = pack(1, &[Change::Insert(&row), Change::Truncate]);
    packed[15] = b'?';
    assert_eq!(
        refused(&packed),
        (15, "unknown change op (not I, D, U or T)")
    );
}

#[test]
fn a_malformed_change_leaves_the_ones_before_it_read() {
    let row: Vec<Option<&[u8]>> = vec![Some(b"ab")];
    let mut packed = pack(
        1,
        &[Change::Insert(&row), Change::Delete(&row), Change::Truncate],
    );
    packed.truncate(packed.len() - 3);
    let mut changes = Changes::new(&packed).expect("header");
    let mut chunk = Chunk::default();
    let e = changes.read(64, &mut chunk).expect_err("cut short");
    assert_eq!((e.offset, e.reason), (16, "cell length past the end"));
    assert_eq!(chunk.len(), 1);
    assert_eq!(changes.position(), (1, 15));
}

#[test]
fn a_reader_resumes_where_another_stopped() {
    let (a, b) = rows();
    let all = [Change::Insert(&a), Change::Update(&a, &b), Change::Truncate];
    let packed = pack(3, &all);
    let mut first = Changes::new(&packed).expect("header");
    let mut chunk = Chunk::default();
    assert_eq!(first.read(2, &mut chunk), Ok(2));
    let mut rest = Changes::resume(&packed, first.position()).expect("position");
    assert_eq!(rest.read(64, &mut chunk), Ok(1));
    assert!(matches!(chunk.changes()[..], [Change::Truncate]));
    assert_eq!(rest.remaining(), 0);
    for bad in [(4, 20), (0, 7), (0, packed.len() + 1)] {
        let e = Changes::resume(&packed, bad).expect_err("outside");
        assert_eq!(e.reason, "a position outside the changes");
    }
}

/// Random changes over a table of 1 to 4 columns.
fn changes() -> impl Strategy<Value = (usize, Random)> {
    (1usize..5).prop_flat_map(|width| {
        let cell = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6));
        let change = (0u8..4, proptest::collection::vec(cell, 2 * width));
        (Just(width), proptest::collection::vec(change, 0..8))
    })
}

fn as_changes<'a>(
    width: usize,
    list: &'a [(u8, Vec<Option<Vec<u8>>>)],
    cells: &'a [Vec<Option<&'a [u8]>>],
) -> Vec<Change<'a>> {
    list.iter()
        .zip(cells)
        .map(|((op, _), c)| {
            let (old, new) = c.split_at(width);
            match op {
                0 => Change::Insert(old),
                1 => Change::Delete(old),
                2 => Change::Update(old, new),
                _ => Change::Truncate,
            }
        })
        .collect()
}

proptest! {
    /// Any bytes are refused or read to changes that pack back to exactly those bytes (the
    /// fuzz target `packed_changes` runs the same check unbounded).
    #[test]
    fn any_bytes_are_refused_or_round_trip(
        data in proptest::collection::vec(any::<u8>(), 0..64),
        chunk in 1usize..4,
    ) {
        if let Ok(back) = read_all(&data, chunk) {
            prop_assert_eq!(back, data);
        }
    }

    /// Packed changes read back as they were, in chunks of any size; with one byte changed
    /// or cut short, they never panic and, if still accepted, still round-trip.
    #[test]
    fn changes_round_trip_and_damage_never_panics(
        (width, list) in changes(),
        chunk in 1usize..5,
        at in 0usize..400,
        byte in any::<u8>(),
        cut in 0usize..400,
    ) {
        let cells: Vec<Vec<Option<&[u8]>>> = list
            .iter()
            .map(|(_, c)| c.iter().map(|c| c.as_deref()).collect())
            .collect();
        let changes = as_changes(width, &list, &cells);
        let packed = pack(width, &changes);
        prop_assert_eq!(packed.len(), packed_len(&changes));
        prop_assert_eq!(read_all(&packed, chunk), Ok(packed.clone()));
        let mut damaged = packed.clone();
        let at = at % damaged.len();
        damaged[at] = byte;
        damaged.truncate(damaged.len() - cut.min(damaged.len()));
        if let Ok(back) = read_all(&damaged, chunk) {
            prop_assert_eq!(back, damaged);
        }
    }
}
