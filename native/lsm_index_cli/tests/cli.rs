//! The `lsm-index` binary against a real index directory: what each command reports, that
//! `verify` names the damaged file (segment, log frame, manifest) and exits 1, that
//! `dump-wal` prints each frame's seq, operation, handle and key fingerprint, and the
//! promise that the tool reads a directory — live or not — without locking or changing it.

use lsm_index_core::internals::{HashSecret, KeyHasher};
use lsm_index_core::{Config, Index};
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

/// A fixed key-hash secret: the test computes the fingerprints `dump-wal` must print.
const SECRET: HashSecret = HashSecret(*b"lsm-index cli ts");

struct Run {
    code: i32,
    stdout: String,
    /// stdout and stderr together.
    all: String,
}

fn run(args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_lsm-index"))
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let all = stdout.clone() + &String::from_utf8_lossy(&out.stderr);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout,
        all,
    }
}

fn config(lanes: u32, overlay_limit: usize) -> Config {
    Config {
        lanes,
        overlay_limit,
        secret: Some(SECRET),
        ..Config::default()
    }
}

/// Every file and directory under `dir`: relative path -> (bytes, modification time).
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, (Vec<u8>, SystemTime)> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        for entry in fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            let meta = fs::metadata(&path).unwrap();
            let bytes = if meta.is_dir() {
                pending.push(path.clone());
                Vec::new()
            } else {
                fs::read(&path).unwrap()
            };
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            out.insert(rel, (bytes, meta.modified().unwrap()));
        }
    }
    out.insert(
        PathBuf::from("."),
        (Vec::new(), fs::metadata(dir).unwrap().modified().unwrap()),
    );
    out
}

/// The files of `dir` whose name starts with `prefix`.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(prefix))
        .collect();
    out.sort();
    out
}

/// A directory with segments in both lanes, a pending drop, and writes only in the log.
fn populated() -> (tempfile::TempDir, std::sync::Arc<Index>) {
    let dir = tempfile::tempdir().unwrap();
    let index = Index::open(dir.path(), config(2, 50)).unwrap();
    for i in 0..300u32 {
        index.add(&i.to_le_bytes(), i % 5).unwrap();
    }
    index.drop_handle(4).unwrap();
    index.flush().unwrap();
    // segments are written in the background: let the flushes land
    index.wait_idle().unwrap();
    (dir, index)
}

#[test]
fn inspect_verify_and_dump_wal() {
    let (dir, index) = populated();
    let d = dir.path().to_str().unwrap();

    let r = run(&["inspect", d]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert!(
        r.all.contains("2 lanes") && r.all.contains("B/key") && r.all.contains("L0"),
        "{}",
        r.all
    );

    let r = run(&["dump-wal", d]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert!(
        r.all.contains(" add ") && r.all.contains(" drop "),
        "{}",
        r.all
    );

    let r = run(&["verify", d]);
    assert_eq!(r.code, 0, "{}", r.all);
    assert!(r.all.contains("healthy"), "{}", r.all);
    drop(index);

    // damage one segment file: verify names it and exits 1
    let seg = files(&dir.path().join("segments/lane-0"), "")
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "seg"))
        .unwrap();
    let mut bytes = fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    fs::write(&seg, bytes).unwrap();
    let r = run(&["verify", d]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(
        r.all.contains(&format!("DAMAGED {}", seg.display())),
        "{}",
        r.all
    );

    assert_eq!(run(&["verify"]).code, 2);
    assert_eq!(run(&["frobnicate", d]).code, 2);
    assert_eq!(run(&["inspect", "/nonexistent/dir"]).code, 1);
}

/// Every frame in order: consecutive sequence numbers, the operation, the handle and the
/// key's fingerprint under the index's secret (none for a drop); a write that changed
/// nothing (an add of a present pair) is not logged.
#[test]
fn dump_wal_prints_each_frame_field_by_field() {
    let dir = tempfile::tempdir().unwrap();
    // one lane (a batch's frames stay in call order) and no segment: all of it is in the log
    let index = Index::open(dir.path(), config(1, 1 << 20)).unwrap();
    index.add(b"alpha", 1).unwrap();
    index.add(b"beta", 4_000_000_000).unwrap();
    index.add(b"alpha", 1).unwrap(); // present already: not logged
    index.remove(b"alpha", 1).unwrap();
    index.drop_handle(7).unwrap();
    index
        .add_many(&[(b"gamma".to_vec(), 0), (b"delta".to_vec(), u32::MAX)])
        .unwrap();
    index.remove_many(&[(b"gamma".to_vec(), 0)]).unwrap();
    index.flush().unwrap();

    let fp = |key: &[u8]| Some(KeyHasher::new(SECRET).fingerprint(key));
    // (seq after the first, operation, handle, fingerprint): every write takes a sequence
    // number, the unlogged one too
    let expected: Vec<(u64, &str, u32, Option<u64>)> = vec![
        (0, "add", 1, fp(b"alpha")),
        (1, "add", 4_000_000_000, fp(b"beta")),
        (3, "remove", 1, fp(b"alpha")),
        (4, "drop", 7, None),
        (5, "add", 0, fp(b"gamma")),
        (6, "add", u32::MAX, fp(b"delta")),
        (7, "remove", 0, fp(b"gamma")),
    ];
    // read while the index is open: no lock taken
    let r = run(&["dump-wal", dir.path().to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.all);
    let frames: Vec<Vec<&str>> = r
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(frames.len(), expected.len(), "{}", r.stdout);
    let first: u64 = frames[0][0].parse().unwrap();
    for (fields, &(seq, op, handle, fp)) in frames.iter().zip(&expected) {
        let line = fields.join(" ");
        assert_eq!(
            fields[0].parse::<u64>().unwrap(),
            first + seq,
            "seq: {line}"
        );
        assert_eq!(fields[1], op, "operation: {line}");
        assert_eq!(fields[2].parse::<u32>().unwrap(), handle, "handle: {line}");
        let printed = fields.get(3).map(|f| u64::from_str_radix(f, 16).unwrap());
        assert_eq!(printed, fp, "fingerprint: {line}");
        assert_eq!(fields.len(), if fp.is_some() { 4 } else { 3 }, "{line}");
    }
    // the files it read, on stderr
    let log = &files(dir.path(), "wal-")[0];
    assert!(
        r.all.contains(&format!("read {}", log.display())),
        "{}",
        r.all
    );
    drop(index);
}

/// "Reads without locking or changing it": each command, on a live index (open in this
/// process, holding the lock) and on a closed one, leaves every file's bytes and modification
/// time as they were, creates and deletes nothing — also with a torn log tail, which `open`
/// would cut off and the tool only reports.
#[test]
fn the_tool_changes_nothing_it_reads() {
    let (dir, index) = populated();
    let d = dir.path().to_str().unwrap();
    let commands = ["inspect", "verify", "dump-wal"];
    let before = snapshot(dir.path());
    for cmd in commands {
        let r = run(&[cmd, d]);
        assert_eq!(r.code, 0, "{cmd} on a live index: {}", r.all);
    }
    assert!(
        snapshot(dir.path()) == before,
        "a command changed the live index's files"
    );
    drop(index);

    // closed, with half a frame at the end of the newest log
    let log = files(dir.path(), "wal-").pop().unwrap();
    let mut bytes = fs::read(&log).unwrap();
    bytes.extend_from_slice(&[13, 0, 0, 0, 0xab, 0xcd]);
    fs::write(&log, &bytes).unwrap();
    let before = snapshot(dir.path());
    for cmd in commands {
        let r = run(&[cmd, d]);
        let expected = if cmd == "inspect" { 0 } else { 1 };
        assert_eq!(r.code, expected, "{cmd} with a torn tail: {}", r.all);
        if cmd == "verify" {
            assert!(
                r.all.contains("DAMAGED log") && r.all.contains(&log.display().to_string()),
                "{}",
                r.all
            );
        }
    }
    assert!(
        snapshot(dir.path()) == before,
        "a command changed the closed index's files"
    );
    assert_eq!(fs::read(&log).unwrap(), bytes, "the torn tail was cut");
}

#[test]
fn verify_names_a_damaged_log_frame() {
    let (dir, index) = populated();
    drop(index);
    let d = dir.path().to_str().unwrap();
    // the log holds every write (none covered by a manifest yet: it is not checkpointed)
    let log = files(dir.path(), "wal-").pop().unwrap();
    let mut bytes = fs::read(&log).unwrap();
    assert!(bytes.len() > 24 + 2 * 29, "{} bytes", bytes.len());
    // a byte of the payload of the first frame (after the 24-byte header)
    bytes[24 + 20] ^= 0x01;
    fs::write(&log, &bytes).unwrap();
    let r = run(&["verify", d]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(
        r.all.contains("DAMAGED log") && r.all.contains(&log.display().to_string()),
        "{}",
        r.all
    );
    assert!(r.all.contains("checksum"), "{}", r.all);
    assert_eq!(run(&["dump-wal", d]).code, 1);
}

#[test]
fn verify_names_a_damaged_manifest() {
    let (dir, index) = populated();
    drop(index);
    let d = dir.path().to_str().unwrap();
    let manifest = files(dir.path(), "MANIFEST-").pop().unwrap();
    let text = fs::read_to_string(&manifest).unwrap();
    // a digit of the generation changed: still JSON, but not what the checksum covers
    let at = text.find("\"generation\":").unwrap() + "\"generation\":".len();
    let at = at + text[at..].find(|c: char| c.is_ascii_digit()).unwrap();
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'9' {
        b'8'
    } else {
        bytes[at] + 1
    };
    fs::write(&manifest, &bytes).unwrap();
    for cmd in ["verify", "inspect"] {
        let r = run(&[cmd, d]);
        assert_eq!(r.code, 1, "{cmd}: {}", r.all);
        assert!(
            r.all.contains(&manifest.display().to_string()),
            "{cmd} does not name the manifest: {}",
            r.all
        );
    }
    // cut short: not even JSON
    fs::write(&manifest, &bytes[..bytes.len() / 2]).unwrap();
    let r = run(&["verify", d]);
    assert_eq!(r.code, 1, "{}", r.all);
    assert!(r.all.contains(&manifest.display().to_string()), "{}", r.all);
}
