//! The records of `views.log` and their bytes (see the parent module's format table).

use super::FRAMING;

const TABLES: u8 = 0;
const SHAPE: u8 = 1;
const UNSHAPE: u8 = 2;
const COUNT: u8 = 3;
const NULLS: u8 = 4;
const TRUNCATE: u8 = 5;
const LINK: u8 = 6;
const LINK_CLEAR: u8 = 7;
const DROP: u8 = 8;
const DIFFS: u8 = 9;
const CHECKPOINT: u8 = 10;

/// A shape's diff on one of its subqueries, as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiffRecord {
    /// The shape's name (see [`name_bytes`](crate::router::ids)).
    pub name: Vec<u8>,
    /// The subquery's position.
    pub position: u8,
    /// NULL rows difference.
    pub nulls: i64,
    /// Distinct values difference.
    pub present: i64,
    /// (fingerprint, count difference), ascending.
    pub entries: Vec<(u64, i64)>,
}

/// A link pair's text: the x cells (`None`: NULL).
pub type Cells = Vec<Option<Vec<u8>>>;

/// One record (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Record {
    /// The tables, as text.
    Tables(String),
    /// A shape (re)defined.
    Shape {
        /// Its name.
        name: Vec<u8>,
        /// Its table.
        table: u32,
        /// Its definition.
        definition: String,
    },
    /// A shape removed.
    Unshape {
        /// Its name.
        name: Vec<u8>,
    },
    /// A value's count in a view (absolute).
    Count {
        /// The view's key.
        view: u128,
        /// The value's key.
        value: Vec<u8>,
        /// Its count (0: gone).
        count: u64,
    },
    /// A view's NULL rows (absolute).
    Nulls {
        /// The view's key.
        view: u128,
        /// NULL rows.
        count: u64,
    },
    /// A view emptied.
    Truncate {
        /// The view's key.
        view: u128,
    },
    /// A link pair's count (absolute).
    Link {
        /// The derived view's key.
        parent: u128,
        /// y's key.
        y: Vec<u8>,
        /// x's key (`None`: NULL).
        x: Option<Vec<u8>>,
        /// Rows (0: gone).
        count: i64,
        /// x's text.
        text: Cells,
    },
    /// A link emptied.
    LinkClear {
        /// The derived view's key.
        parent: u128,
    },
    /// A view freed.
    Drop {
        /// The view's key.
        view: u128,
    },
    /// Every diff now.
    Diffs(Vec<DiffRecord>),
    /// The end of a flush.
    Checkpoint {
        /// The caller's stream position.
        position: Vec<u8>,
    },
}

/// Appends record `r`'s frame to `out`.
pub fn encode(r: &Record, out: &mut Vec<u8>) {
    let mut p = Vec::new();
    match r {
        Record::Tables(text) => {
            p.push(TABLES);
            bytes(&mut p, text.as_bytes());
        }
        Record::Shape {
            name,
            table,
            definition,
        } => {
            p.push(SHAPE);
            bytes(&mut p, name);
            p.extend_from_slice(&table.to_le_bytes());
            bytes(&mut p, definition.as_bytes());
        }
        Record::Unshape { name } => {
            p.push(UNSHAPE);
            bytes(&mut p, name);
        }
        Record::Count { view, value, count } => {
            p.push(COUNT);
            p.extend_from_slice(&view.to_le_bytes());
            bytes(&mut p, value);
            p.extend_from_slice(&count.to_le_bytes());
        }
        Record::Nulls { view, count } => {
            p.push(NULLS);
            p.extend_from_slice(&view.to_le_bytes());
            p.extend_from_slice(&count.to_le_bytes());
        }
        Record::Truncate { view } | Record::LinkClear { parent: view } | Record::Drop { view } => {
            p.push(match r {
                Record::Truncate { .. } => TRUNCATE,
                Record::LinkClear { .. } => LINK_CLEAR,
                _ => DROP,
            });
            p.extend_from_slice(&view.to_le_bytes());
        }
        Record::Link {
            parent,
            y,
            x,
            count,
            text,
        } => {
            p.push(LINK);
            p.extend_from_slice(&parent.to_le_bytes());
            bytes(&mut p, y);
            cell(&mut p, x.as_deref());
            p.extend_from_slice(&count.to_le_bytes());
            p.push(text.len().min(255) as u8);
            for c in text.iter().take(255) {
                cell(&mut p, c.as_deref());
            }
        }
        Record::Diffs(diffs) => {
            p.push(DIFFS);
            p.extend_from_slice(&(diffs.len() as u32).to_le_bytes());
            for d in diffs {
                bytes(&mut p, &d.name);
                p.push(d.position);
                p.extend_from_slice(&d.nulls.to_le_bytes());
                p.extend_from_slice(&d.present.to_le_bytes());
                p.extend_from_slice(&(d.entries.len() as u32).to_le_bytes());
                for (fp, delta) in &d.entries {
                    p.extend_from_slice(&fp.to_le_bytes());
                    p.extend_from_slice(&delta.to_le_bytes());
                }
            }
        }
        Record::Checkpoint { position } => {
            p.push(CHECKPOINT);
            bytes(&mut p, position);
        }
    }
    FRAMING.encode(&[], &p, out);
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as u32).to_le_bytes());
    out.extend_from_slice(b);
}

fn cell(out: &mut Vec<u8>, c: Option<&[u8]>) {
    match c {
        None => out.push(0),
        Some(b) => {
            out.push(1);
            bytes(out, b);
        }
    }
}

/// A cursor over a payload.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Option<u64> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Some(u64::from_le_bytes(a))
    }
    fn i64(&mut self) -> Option<i64> {
        self.u64().map(|v| v as i64)
    }
    fn u128(&mut self) -> Option<u128> {
        let b = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Some(u128::from_le_bytes(a))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = self.u32()? as usize;
        self.take(n).map(<[u8]>::to_vec)
    }
    fn cell(&mut self) -> Option<Option<Vec<u8>>> {
        match self.u8()? {
            0 => Some(None),
            1 => self.bytes().map(Some),
            _ => None,
        }
    }
    fn text(&mut self) -> Option<String> {
        String::from_utf8(self.bytes()?).ok()
    }
}

/// A payload as a record (`None`: malformed).
pub(super) fn decode_record(payload: &[u8]) -> Option<Record> {
    let mut r = Reader(payload);
    let record = match r.u8()? {
        TABLES => Record::Tables(r.text()?),
        SHAPE => Record::Shape {
            name: r.bytes()?,
            table: r.u32()?,
            definition: r.text()?,
        },
        UNSHAPE => Record::Unshape { name: r.bytes()? },
        COUNT => Record::Count {
            view: r.u128()?,
            value: r.bytes()?,
            count: r.u64()?,
        },
        NULLS => Record::Nulls {
            view: r.u128()?,
            count: r.u64()?,
        },
        TRUNCATE => Record::Truncate { view: r.u128()? },
        LINK_CLEAR => Record::LinkClear { parent: r.u128()? },
        DROP => Record::Drop { view: r.u128()? },
        LINK => {
            let parent = r.u128()?;
            let y = r.bytes()?;
            let x = r.cell()?;
            let count = r.i64()?;
            let n = r.u8()?;
            let text = (0..n).map(|_| r.cell()).collect::<Option<Vec<_>>>()?;
            Record::Link {
                parent,
                y,
                x,
                count,
                text,
            }
        }
        DIFFS => {
            let n = r.u32()?;
            let mut diffs = Vec::new();
            for _ in 0..n {
                let name = r.bytes()?;
                let position = r.u8()?;
                let nulls = r.i64()?;
                let present = r.i64()?;
                let m = r.u32()?;
                let mut entries = Vec::new();
                for _ in 0..m {
                    entries.push((r.u64()?, r.i64()?));
                }
                diffs.push(DiffRecord {
                    name,
                    position,
                    nulls,
                    present,
                    entries,
                });
            }
            Record::Diffs(diffs)
        }
        CHECKPOINT => Record::Checkpoint {
            position: r.bytes()?,
        },
        _ => return None,
    };
    r.0.is_empty().then_some(record)
}

#[cfg(test)]
mod tests {
    use super::super::tests::sample;
    use super::*;

    #[test]
    fn every_record_round_trips() {
        for r in sample() {
            let mut frame = Vec::new();
            encode(&r, &mut frame);
            assert_eq!(decode_record(&frame[8..]), Some(r));
        }
    }
}
