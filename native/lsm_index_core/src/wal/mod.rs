//! The write-ahead log: every add, remove and drop of a persistent index, framed and
//! checksummed, so writes acknowledged by a `flush` survive a crash before their lane's
//! overlay reaches a segment file.
//!
//! ```text
//! <dir>/wal-<first sequence number, 16 hex>.log   a header, then frames; oldest file first
//!
//! header: 0 ┌──────────────────┬─────────────┬──────────────────────┬──────────────┐
//!           │ magic "LSMIXWAL" │ version u32 │ previous file's      │ crc32c u32   │
//!           │                  │ (= 1)       │ first seq u64 (0: -) │ of bytes 0-20│
//!           └──────────────────┴─────────────┴──────────────────────┴──────────────┘
//!         each file names its predecessor, so a deleted log file in the middle is caught;
//!         the oldest file's predecessor may only be gone if the manifest covers it
//!
//! frame:  0 ┌──────────────┬──────────────┬──────────────┬─────────────────────────┐
//!           │ len u32 (=13)│ crc32c u32   │ seq u64      │ payload (len bytes)     │
//!           └──────────────┴──────────────┴──────────────┴─────────────────────────┘
//!         crc32c covers seq and payload; all integers little-endian
//!         (the `durable::frame` codec with the seq as its 8-byte prefix)
//! payload:  op u8 (1 add, 2 remove, 3 drop) │ handle u32 │ key fingerprint u64 (0 for drop)
//! ```
//!
//! Keys are logged by fingerprint: the index only ever uses a key's keyed SipHash, and the
//! secret is in the manifest. Appends go to an in-memory buffer under the writer's lane lock
//! (so a lane's frames are in sequence order); `sync` writes the buffer out and fsyncs it
//! (group commit: one fsync covers every append before it). Recovery reads frames in order:
//! an incomplete frame at the end of the newest file (a torn tail) is cut off; a complete
//! frame whose checksum fails, anywhere, is an error.
//!
//! `reader` reads and replays log files; `writer` is the `Wal` that appends, syncs and rolls
//! them over.

mod reader;
mod writer;

use crate::durable::Framing;

pub use reader::{file_name, files, oldest_link, read, replay};
pub use writer::Wal;

const PAYLOAD: usize = 13;
/// Frames: the sequence number is the checksummed prefix, the payload always 13 bytes.
const FRAMING: Framing = Framing {
    prefix: 8,
    min_payload: PAYLOAD,
    max_payload: PAYLOAD,
};
#[cfg(test)]
const FRAME: usize = FRAMING.encoded_len(PAYLOAD);
const MAGIC: &[u8; 8] = b"LSMIXWAL";
const PREFIX: &str = "wal-";
const SUFFIX: &str = ".log";
const VERSION: u32 = 1;
/// Bytes of a log file's header.
pub const FILE_HEADER: usize = 24;

/// One logged operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// `handle` added to the key with fingerprint `fp`.
    Add {
        /// Key fingerprint.
        fp: u64,
        /// Handle.
        handle: u32,
    },
    /// `handle` removed from the key with fingerprint `fp`.
    Remove {
        /// Key fingerprint.
        fp: u64,
        /// Handle.
        handle: u32,
    },
    /// `handle` dropped from every key.
    Drop {
        /// Handle.
        handle: u32,
    },
}

impl Record {
    fn encode(&self, seq: u64, out: &mut Vec<u8>) {
        let (op, handle, fp) = match *self {
            Record::Add { fp, handle } => (1u8, handle, fp),
            Record::Remove { fp, handle } => (2, handle, fp),
            Record::Drop { handle } => (3, handle, 0),
        };
        let mut payload = [0u8; PAYLOAD];
        payload[0] = op;
        payload[1..5].copy_from_slice(&handle.to_le_bytes());
        payload[5..13].copy_from_slice(&fp.to_le_bytes());
        FRAMING.encode(&seq.to_le_bytes(), &payload, out);
    }

    fn decode(payload: &[u8]) -> Option<Record> {
        let handle = u32::from_le_bytes(payload.get(1..5)?.try_into().ok()?);
        let fp = u64::from_le_bytes(payload.get(5..13)?.try_into().ok()?);
        match payload.first()? {
            1 => Some(Record::Add { fp, handle }),
            2 => Some(Record::Remove { fp, handle }),
            3 => Some(Record::Drop { handle }),
            _ => None,
        }
    }
}

/// When appends reach the disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SyncMode {
    /// On `Index::flush` (group commit): the default.
    #[default]
    Flush,
    /// Before every write call returns (one fsync per call; a batch is one call).
    Always,
    /// Never fsynced by us: `flush` hands the data to the OS, which survives a crash of the
    /// process but not of the machine.
    None,
}

impl SyncMode {
    /// Its name (the Elixir option's value).
    pub fn name(self) -> &'static str {
        match self {
            SyncMode::Flush => "flush",
            SyncMode::Always => "always",
            SyncMode::None => "none",
        }
    }

    /// The mode named `name` (as [`SyncMode::name`] spells it).
    pub fn from_name(name: &str) -> Option<SyncMode> {
        match name {
            "flush" => Some(SyncMode::Flush),
            "always" => Some(SyncMode::Always),
            "none" => Some(SyncMode::None),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::{Error, Result};
    use std::fs;
    use std::path::Path;

    fn records(dir: &Path) -> Result<Vec<(u64, Record)>> {
        let mut out = Vec::new();
        replay(dir, |seq, r| {
            out.push((seq, r));
            Ok(())
        })?;
        Ok(out)
    }

    #[test]
    fn a_frame_is_the_documented_29_bytes() {
        let mut out = Vec::new();
        let (seq, handle, fp) = (
            0x1122_3344_5566_7788u64,
            0x0a0b_0c0du32,
            0x0102_0304_0506_0708,
        );
        Record::Remove { fp, handle }.encode(seq, &mut out);
        let mut body = seq.to_le_bytes().to_vec();
        body.push(2);
        body.extend_from_slice(&handle.to_le_bytes());
        body.extend_from_slice(&fp.to_le_bytes());
        let mut expected = 13u32.to_le_bytes().to_vec();
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(out, expected);
        assert_eq!(out.len(), FRAME);
    }

    #[test]
    fn frames_round_trip_and_a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::Flush).unwrap();
        let written = vec![
            (1, Record::Add { fp: 7, handle: 1 }),
            (
                2,
                Record::Remove {
                    fp: u64::MAX,
                    handle: u32::MAX,
                },
            ),
            (3, Record::Drop { handle: 9 }),
        ];
        for &(seq, r) in &written {
            wal.append(seq, r);
        }
        wal.sync(true).unwrap();
        drop(wal);
        assert_eq!(records(dir.path()).unwrap(), written);

        // a partial frame at the end (a write cut short) is dropped, and the file truncated
        let path = dir.path().join(file_name(1));
        let full = fs::read(&path).unwrap();
        for cut in 1..FRAME {
            fs::write(&path, &full[..full.len() - cut]).unwrap();
            assert_eq!(
                records(dir.path()).unwrap(),
                written[..2].to_vec(),
                "cut {cut}"
            );
            assert_eq!(fs::read(&path).unwrap().len(), FILE_HEADER + 2 * FRAME);
        }
    }

    /// Group commit's bookkeeping: a sync fsyncs only when some append is not yet durable —
    /// also when it was written out already (by a non-durable sync) but not fsynced.
    #[test]
    fn a_sync_fsyncs_only_what_is_not_yet_durable() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::Flush).unwrap();
        wal.sync(true).unwrap();
        assert_eq!(wal.fsyncs(), 0, "nothing appended");
        wal.append(1, Record::Add { fp: 1, handle: 1 });
        wal.sync(false).unwrap();
        assert_eq!(
            (wal.fsyncs(), wal.buffered()),
            (0, 0),
            "written out, not fsynced"
        );
        wal.sync(true).unwrap();
        assert_eq!(wal.fsyncs(), 1);
        wal.sync(true).unwrap();
        wal.sync(false).unwrap();
        assert_eq!(wal.fsyncs(), 1, "already durable");
        wal.append(2, Record::Drop { handle: 1 });
        wal.sync(true).unwrap();
        assert_eq!(wal.fsyncs(), 2);
        drop(wal);
        assert_eq!(records(dir.path()).unwrap().len(), 2);

        // SyncMode::None writes out and never fsyncs
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::None).unwrap();
        wal.append(1, Record::Add { fp: 1, handle: 1 });
        wal.sync(true).unwrap();
        assert_eq!((wal.fsyncs(), wal.buffered()), (0, 0));
        drop(wal);
        assert_eq!(records(dir.path()).unwrap().len(), 1);
    }

    #[test]
    fn a_bad_checksum_on_a_complete_frame_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Wal::create(dir.path(), 1, Vec::new(), SyncMode::Flush).unwrap();
        for seq in 1..=3 {
            wal.append(seq, Record::Add { fp: seq, handle: 1 });
        }
        wal.sync(true).unwrap();
        let path = dir.path().join(file_name(1));
        let full = fs::read(&path).unwrap();
        for at in 0..full.len() {
            let mut bad = full.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            assert!(records(dir.path()).is_err(), "flip at {at} went unnoticed");
        }
    }

    #[test]
    fn a_missing_log_file_between_others_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut older = Vec::new();
        for first in [1u64, 10, 20] {
            let wal = Wal::create(dir.path(), first, older.clone(), SyncMode::Flush).unwrap();
            wal.append(first, Record::Drop { handle: 1 });
            wal.sync(true).unwrap();
            older.push((first, dir.path().join(file_name(first))));
        }
        assert_eq!(records(dir.path()).unwrap().len(), 3);
        assert_eq!(oldest_link(dir.path()).unwrap(), Some((1, 0)));
        fs::remove_file(dir.path().join(file_name(10))).unwrap();
        assert!(matches!(records(dir.path()), Err(Error::Corrupt { .. })));
        // the oldest may go (when covered): then its successor names it
        fs::remove_file(dir.path().join(file_name(1))).unwrap();
        assert_eq!(oldest_link(dir.path()).unwrap(), Some((20, 10)));
        assert_eq!(records(dir.path()).unwrap().len(), 1);
    }

    proptest::proptest! {
        /// Decoder fuzzing: any log file content is read without panicking.
        #[test]
        fn reading_arbitrary_log_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
        ) {
            let dir = tempfile::tempdir().unwrap();
            fs::write(dir.path().join(file_name(1)), &bytes).unwrap();
            let _ = records(dir.path());
        }
    }

    #[test]
    fn covered_files_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file_name(1)), b"").unwrap();
        fs::write(dir.path().join(file_name(50)), b"").unwrap();
        let older = files(dir.path()).unwrap();
        let wal = Wal::create(dir.path(), 100, older, SyncMode::Flush).unwrap();
        assert_eq!(wal.delete_covered(49), 0);
        assert_eq!(wal.delete_covered(50), 1);
        assert_eq!(wal.files_retained(), 2);
        assert_eq!(wal.delete_covered(100), 1);
        assert_eq!(files(dir.path()).unwrap().len(), 1);
    }
}
