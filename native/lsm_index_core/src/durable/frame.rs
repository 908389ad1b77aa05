//! The frame codec of the append-only files (write-ahead log, shape catalog).
//!
//! ```text
//! 0 ┌──────────┬──────────────┬──────────────────────┬──────────────────────┐
//!   │ len u32  │ crc32c u32   │ prefix (fixed size,  │ payload (len bytes)  │
//!   │          │              │ 0 bytes or more)     │                      │
//!   └──────────┴──────────────┴──────────────────────┴──────────────────────┘
//!   crc32c covers prefix and payload; len counts the payload only; little-endian
//! ```
//!
//! A `Framing` fixes the prefix size and the payload lengths a frame may declare: the log's
//! prefix is the 8-byte sequence number and its payload always 13 bytes; the catalog has no
//! prefix. Reading (`Frames`) yields whole frames in order and stops at the first of:
//! - the end of the bytes;
//! - a torn tail — fewer bytes left than the smallest frame, or than the frame the length
//!   field declares — reported by `Frames::torn` at `Frames::end`, for the caller to cut
//!   off (or refuse);
//! - a length outside the allowed range (`Error::Corrupt`) or a complete frame whose
//!   checksum fails (`Error::ChecksumMismatch`): never skipped.

use crate::error::{Error, FileKind, Result};

/// Bytes before a frame's prefix: the length and the checksum.
const HEADER: usize = 8;

/// One frame format: the prefix size and the payload lengths a frame may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Framing {
    /// Bytes between the checksum and the payload: covered by the checksum, not counted by
    /// the length field.
    pub prefix: usize,
    /// Smallest payload length accepted when reading.
    pub min_payload: usize,
    /// Largest payload length accepted when reading.
    pub max_payload: usize,
}

/// A whole frame read from a buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Frame<'a> {
    /// Offset of the frame in the buffer.
    pub at: usize,
    /// Its prefix (`Framing::prefix` bytes).
    pub prefix: &'a [u8],
    /// Its payload.
    pub payload: &'a [u8],
}

impl Framing {
    /// Bytes of an encoded frame with a `payload_len`-byte payload.
    pub const fn encoded_len(&self, payload_len: usize) -> usize {
        HEADER + self.prefix + payload_len
    }

    /// Appends the frame of `prefix` (exactly `self.prefix` bytes) and `payload` (shorter
    /// than 4 GiB) to `out`.
    pub fn encode(&self, prefix: &[u8], payload: &[u8], out: &mut Vec<u8>) {
        debug_assert_eq!(prefix.len(), self.prefix, "frame prefix size");
        debug_assert!(u32::try_from(payload.len()).is_ok(), "frame payload size");
        let start = out.len();
        out.reserve(self.encoded_len(payload.len()));
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(prefix);
        out.extend_from_slice(payload);
        let crc = crc32c::crc32c(&out[start + HEADER..]);
        out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
    }

    /// A reader of the frames in `bytes` from offset `start` on (after the file's own
    /// header), naming `what`, a `file`, in its errors.
    pub fn read<'a>(
        &self,
        bytes: &'a [u8],
        start: usize,
        file: FileKind,
        what: &'a str,
    ) -> Frames<'a> {
        Frames {
            framing: *self,
            bytes,
            at: start,
            file,
            what,
            torn: false,
            done: false,
        }
    }
}

/// The frames of a buffer, in order (see the module doc for where reading stops).
#[derive(Debug)]
pub struct Frames<'a> {
    framing: Framing,
    bytes: &'a [u8],
    /// Offset of the next frame: after iteration, the end of the last whole frame.
    at: usize,
    file: FileKind,
    what: &'a str,
    torn: bool,
    done: bool,
}

impl<'a> Frames<'a> {
    /// Offset just past the last whole frame read so far (where a torn tail starts).
    pub fn end(&self) -> usize {
        self.at
    }

    /// Whether reading stopped at an incomplete frame at the end of the bytes.
    pub fn torn(&self) -> bool {
        self.torn
    }

    fn next_frame(&mut self) -> Result<Option<Frame<'a>>> {
        let f = self.framing;
        let at = self.at;
        let rest = self.bytes.get(at..).unwrap_or_default();
        if rest.is_empty() {
            return Ok(None);
        }
        if rest.len() < f.encoded_len(f.min_payload) {
            self.torn = true;
            return Ok(None);
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        if !(f.min_payload..=f.max_payload).contains(&len) {
            let allowed = if f.min_payload == f.max_payload {
                format!("{}", f.min_payload)
            } else {
                format!("{}..={}", f.min_payload, f.max_payload)
            };
            return Err(Error::Corrupt {
                file: self.file,
                what: self.what.to_string(),
                detail: format!("frame at byte {at} has length {len} (expected {allowed})"),
            });
        }
        let Some(body) = rest.get(HEADER..f.encoded_len(len)) else {
            self.torn = true;
            return Ok(None);
        };
        let expected = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let got = crc32c::crc32c(body);
        if got != expected {
            return Err(Error::ChecksumMismatch {
                file: self.file,
                what: format!("{} frame at byte {at}", self.what),
                expected,
                got,
            });
        }
        self.at += f.encoded_len(len);
        let (prefix, payload) = body.split_at(f.prefix);
        Ok(Some(Frame {
            at,
            prefix,
            payload,
        }))
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = Result<Frame<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.next_frame().transpose();
        if !matches!(next, Some(Ok(_))) {
            self.done = true;
        }
        next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: Framing = Framing {
        prefix: 8,
        min_payload: 3,
        max_payload: 3,
    };
    const VAR: Framing = Framing {
        prefix: 0,
        min_payload: 1,
        max_payload: 100,
    };

    fn encode_all(f: Framing, frames: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = b"HEAD".to_vec();
        for (prefix, payload) in frames {
            let before = out.len();
            f.encode(prefix, payload, &mut out);
            assert_eq!(out.len() - before, f.encoded_len(payload.len()));
        }
        out
    }

    /// (prefix, payload) of each frame read.
    type Read = Vec<(Vec<u8>, Vec<u8>)>;

    /// Every frame read, the end offset and whether the tail was torn.
    fn read_all(f: Framing, bytes: &[u8]) -> Result<(Read, usize, bool)> {
        let mut frames = f.read(bytes, 4, FileKind::Wal, "t");
        let mut out = Vec::new();
        for frame in &mut frames {
            let frame = frame?;
            out.push((frame.prefix.to_vec(), frame.payload.to_vec()));
        }
        Ok((out, frames.end(), frames.torn()))
    }

    #[test]
    fn frames_round_trip_with_and_without_a_prefix() {
        let bytes = encode_all(LOG, &[(&7u64.to_le_bytes(), b"abc"), (&[0xff; 8], b"xyz")]);
        assert_eq!(bytes.len(), 4 + 2 * LOG.encoded_len(3));
        let (frames, end, torn) = read_all(LOG, &bytes).unwrap();
        assert_eq!(
            frames,
            vec![
                (7u64.to_le_bytes().to_vec(), b"abc".to_vec()),
                (vec![0xff; 8], b"xyz".to_vec())
            ]
        );
        assert_eq!((end, torn), (bytes.len(), false));

        let bytes = encode_all(VAR, &[(b"", b"a"), (b"", &[9; 100]), (b"", b"bc")]);
        let (frames, end, torn) = read_all(VAR, &bytes).unwrap();
        let payloads: Vec<_> = frames.into_iter().map(|(_, p)| p).collect();
        assert_eq!(payloads, vec![b"a".to_vec(), vec![9; 100], b"bc".to_vec()]);
        assert_eq!((end, torn), (bytes.len(), false));
    }

    #[test]
    fn the_checksum_covers_prefix_and_payload_and_the_layout_is_fixed() {
        let mut out = Vec::new();
        LOG.encode(&1u64.to_le_bytes(), b"xyz", &mut out);
        let mut body = 1u64.to_le_bytes().to_vec();
        body.extend_from_slice(b"xyz");
        let mut expected = 3u32.to_le_bytes().to_vec();
        expected.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        expected.extend_from_slice(&body);
        assert_eq!(out, expected);
    }

    #[test]
    fn a_torn_tail_is_reported_at_the_end_of_the_last_whole_frame() {
        for f in [LOG, VAR] {
            let prefix = vec![5u8; f.prefix];
            let bytes = encode_all(f, &[(&prefix, b"one"), (&prefix, b"two")]);
            let whole = 4 + f.encoded_len(3);
            for cut in 1..f.encoded_len(3) {
                let (frames, end, torn) = read_all(f, &bytes[..bytes.len() - cut]).unwrap();
                assert_eq!(frames.len(), 1, "cut {cut}");
                assert_eq!((end, torn), (whole, true), "cut {cut}");
            }
        }
        // a length that runs past the end is a torn tail too
        let mut bytes = encode_all(VAR, &[(b"", b"one")]);
        bytes.extend_from_slice(&50u32.to_le_bytes());
        bytes.extend_from_slice(&[0; 20]);
        assert_eq!(read_all(VAR, &bytes).unwrap().1, 4 + VAR.encoded_len(3));
        assert!(read_all(VAR, &bytes).unwrap().2);
    }

    #[test]
    fn a_bad_checksum_on_a_complete_frame_is_an_error() {
        for f in [LOG, VAR] {
            let prefix = vec![5u8; f.prefix];
            let bytes = encode_all(f, &[(&prefix, b"one"), (&prefix, b"two")]);
            let second = 4 + f.encoded_len(3);
            for at in second + 4..bytes.len() {
                let mut bad = bytes.clone();
                bad[at] ^= 0x01;
                match read_all(f, &bad) {
                    Err(Error::ChecksumMismatch { file, what, .. }) => {
                        assert_eq!(file, FileKind::Wal);
                        assert_eq!(what, format!("t frame at byte {second}"));
                    }
                    other => panic!("flip at {at}: {other:?}"),
                }
            }
        }
    }

    #[test]
    fn a_length_out_of_range_is_corruption() {
        let mut bytes = encode_all(LOG, &[(&[0; 8], b"one")]);
        bytes[4] = 4;
        assert!(matches!(
            read_all(LOG, &bytes),
            Err(Error::Corrupt { detail, .. }) if detail.contains("length 4 (expected 3)")
        ));
        let mut bytes = encode_all(VAR, &[(b"", b"one")]);
        bytes[4..8].copy_from_slice(&0u32.to_le_bytes());
        assert!(matches!(read_all(VAR, &bytes), Err(Error::Corrupt { .. })));
        // reading stops at the first error
        let mut frames = VAR.read(&bytes, 4, FileKind::Catalog, "t");
        assert!(frames.next().is_some_and(|r| r.is_err()));
        assert!(frames.next().is_none());
    }

    proptest::proptest! {
        /// Any bytes read as frames give frames, a torn tail or an error: never a panic, and
        /// the end never passes the buffer.
        #[test]
        fn reading_arbitrary_bytes_never_panics(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            start in 0usize..8,
        ) {
            for f in [LOG, VAR] {
                let mut frames = f.read(&bytes, start, FileKind::Catalog, "fuzz");
                for frame in &mut frames {
                    if frame.is_err() {
                        break;
                    }
                }
                proptest::prop_assert!(frames.end() <= bytes.len().max(start));
            }
        }
    }
}
