//! The catalog's decoder: the header, then its records in order — the table record first,
//! column records checked against the router's table as they come (each the next column of
//! it, at the position its id says), adds and removals handed on. Whole, from a stamp on
//! (the tail after a snapshot), or for tools ([`super::decode`]).

use super::table::Table;
use super::{Stamp, ADD, COLUMN, FRAMING, HEADER, MAGIC, REMOVE, TABLE, VERSION};
use crate::error::{Error, FileKind, Result};
use std::path::Path;

/// What the records read so far say of the table: columns the table record names (its
/// columns when made), and columns in all (those and the column records').
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Columns {
    pub(super) created: usize,
    pub(super) known: usize,
}

/// What a read found: (bytes that are whole records, records read in all, the columns).
pub(super) type Read = (usize, usize, Columns);

/// The records after a stamp: (bytes that are whole records, the stamp there, the records
/// after the stamp in order, the columns).
pub(super) type Tail = (usize, Stamp, Vec<(u32, Option<String>)>, Columns);

/// The format version of catalog bytes `bytes` (one this build reads), or why not.
pub(super) fn version(path: &Path, bytes: &[u8]) -> Result<u32> {
    let what = path.display().to_string();
    match bytes.get(..HEADER) {
        Some(h) if &h[..8] == MAGIC => {}
        None if bytes.starts_with(MAGIC) => {
            return Err(Error::Corrupt {
                file: FileKind::Catalog,
                what,
                detail: "shorter than the catalog header".into(),
            })
        }
        _ => {
            return Err(Error::BadMagic {
                file: FileKind::Catalog,
                what,
            })
        }
    }
    match u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) {
        version @ (1 | VERSION) => Ok(version),
        version => Err(Error::UnsupportedVersion {
            file: FileKind::Catalog,
            what,
            version,
        }),
    }
}

/// Reads the whole of `bytes`, a catalog of format `version` of a router over `table`,
/// handing each add and removal to `each` (kind, shape id, text).
pub(super) fn read(
    path: &Path,
    bytes: &[u8],
    version: u32,
    table: &Table,
    each: impl FnMut(u8, u32, &str),
) -> Result<Read> {
    let from = From {
        at: HEADER,
        records: 0,
        columns: Columns::default(),
    };
    records(path, bytes, version, table, from, each)
}

/// The records of `bytes` after the prefix `covered` stamps, if it does stamp a prefix of
/// them and the table then had `then` columns (the snapshot of that stamp says): `None`
/// when it does not, or when the records do not read (the full read then says what is
/// wrong).
pub(super) fn read_tail(
    path: &Path,
    bytes: &[u8],
    version: u32,
    covered: Stamp,
    then: usize,
    table: &Table,
) -> Option<Tail> {
    let start = usize::try_from(covered.len).ok()?;
    let prefix = bytes.get(..start)?;
    if start < HEADER || covered.records == 0 || crc32c::crc32c(prefix) != covered.crc {
        return None;
    }
    // the table record alone, for the columns the table was made with
    let first = FRAMING
        .read(bytes, HEADER, FileKind::Catalog, "")
        .next()?
        .ok()?;
    if first.payload[0] != TABLE {
        return None;
    }
    let created = table.prefix_of(std::str::from_utf8(&first.payload[5..]).ok()?)?;
    if created == 0 || created > then {
        return None;
    }
    let from = From {
        at: start,
        records: covered.records as usize,
        columns: Columns {
            created,
            known: then,
        },
    };
    let mut tail = Vec::new();
    let each = |kind: u8, id: u32, text: &str| {
        tail.push((id, (kind == ADD).then(|| text.to_string())));
    };
    let (good, read, columns) = records(path, bytes, version, table, from, each).ok()?;
    let stamp = Stamp {
        len: good as u64,
        crc: crc32c::crc32c_append(covered.crc, &bytes[start..good]),
        records: read as u64,
    };
    Some((good, stamp, tail, columns))
}

/// Where a read starts: at byte `at`, after `records` records (the first record of a file
/// names the table) that told of `columns`.
struct From {
    at: usize,
    records: usize,
    columns: Columns,
}

/// Reads the records of a catalog of format `version` of a router over `table` from
/// `from`, handing each add and removal to `each` (kind, shape id, text).
fn records(
    path: &Path,
    bytes: &[u8],
    version: u32,
    table: &Table,
    from: From,
    mut each: impl FnMut(u8, u32, &str),
) -> Result<Read> {
    let what = path.display().to_string();
    let corrupt = |detail: String| Error::Corrupt {
        file: FileKind::Catalog,
        what: what.clone(),
        detail,
    };
    // the catalog's columns so far, for an error that says which it has
    let mismatch = |known: usize, more: &str| Error::TableMismatch {
        path: what.clone(),
        columns: (table.lines(0, known).iter().map(String::as_str))
            .chain(more.lines())
            .map(str::to_string)
            .collect(),
    };
    let mut columns = from.columns;
    let mut frames = FRAMING.read(bytes, from.at, FileKind::Catalog, &what);
    let mut records = from.records;
    for frame in &mut frames {
        let frame = frame?;
        let (at, payload) = (frame.at, frame.payload);
        let id = u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]);
        let text = std::str::from_utf8(&payload[5..])
            .map_err(|_| corrupt(format!("record at byte {at}: text is not UTF-8")))?;
        match (records, payload[0]) {
            (0, TABLE) => match table.prefix_of(text) {
                Some(k) if k > 0 => {
                    columns = Columns {
                        created: k,
                        known: k,
                    }
                }
                _ => return Err(mismatch(0, text)),
            },
            (0, _) => return Err(corrupt("the first record does not name the table".into())),
            (_, kind @ (ADD | REMOVE)) => each(kind, id, text),
            (_, COLUMN) if version >= 2 => {
                if id as usize != columns.known {
                    return Err(corrupt(format!(
                        "record at byte {at}: column {id} added to a table of {} columns",
                        columns.known
                    )));
                }
                if table.line(columns.known) != Some(text) {
                    return Err(mismatch(columns.known, text));
                }
                columns.known += 1;
            }
            (_, kind) => {
                return Err(corrupt(format!(
                    "record at byte {at}: kind {kind} (version {version})"
                )))
            }
        }
        records += 1;
    }
    if records == 0 {
        return Err(corrupt("the table record is missing".into()));
    }
    Ok((frames.end(), records, columns))
}
