//! `lsm-index`: the operator's view of a persistent index directory. Read-only: it takes no
//! lock and changes nothing, so it can look at a live index.
//!
//! ```text
//! lsm-index inspect DIR    manifest, lanes, levels, key counts, bytes per key, log files
//! lsm-index verify DIR     every checksum of every file; exit 0 healthy, 1 damaged
//! lsm-index dump-wal DIR   every log frame: file, seq, operation, handle, key fingerprint
//! ```

use lsm_index_core::manifest::{self, Manifest};
use lsm_index_core::segment::Segment;
use lsm_index_core::wal::{self, Record};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

const USAGE: &str = "usage: lsm-index (inspect | verify | dump-wal) DIR";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [cmd, dir] = args.as_slice() else {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    };
    let dir = Path::new(dir);
    let result = match cmd.as_str() {
        "inspect" => inspect(dir),
        "verify" => verify(dir),
        "dump-wal" => dump_wal(dir),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lsm-index: {e}");
            ExitCode::from(1)
        }
    }
}

fn load(dir: &Path) -> lsm_index_core::Result<Manifest> {
    manifest::load_latest(dir)?.ok_or_else(|| lsm_index_core::Error::Io {
        file: lsm_index_core::FileKind::Manifest,
        path: dir.display().to_string(),
        op: "find",
        kind: std::io::ErrorKind::NotFound,
        message: "no MANIFEST-*.json: not an lsm_index directory".into(),
    })
}

fn inspect(dir: &Path) -> lsm_index_core::Result<ExitCode> {
    let m = load(dir)?;
    println!(
        "{}: manifest generation {}, {} lanes, seed id {:#018x}",
        dir.display(),
        m.generation,
        m.lanes,
        m.seed_id
    );
    println!(
        "next segment id {}, next seq {}, {} dropped handles pending",
        m.next_segment_id,
        m.next_seq,
        m.dropped.len()
    );
    let (mut keys, mut bytes, mut segments) = (0u64, 0u64, 0usize);
    let mut levels: BTreeMap<u32, (usize, u64, u64)> = BTreeMap::new();
    for (lane, state) in m.lane_state.iter().enumerate() {
        let lane_keys: u64 = state.segments.iter().map(|s| s.keys).sum();
        let lane_bytes: u64 = state.segments.iter().map(|s| s.bytes).sum();
        println!(
            "  lane {lane:>4}: covered seq {:>12}, {} segments, {lane_keys} keys, {lane_bytes} bytes",
            state.covered_seq,
            state.segments.len()
        );
        for s in &state.segments {
            let l = levels.entry(s.level).or_default();
            l.0 += 1;
            l.1 += s.keys;
            l.2 += s.bytes;
        }
        keys += lane_keys;
        bytes += lane_bytes;
        segments += state.segments.len();
    }
    println!("levels:");
    for (level, (n, k, b)) in &levels {
        println!("  L{level}: {n} segments, {k} keys, {b} bytes");
    }
    let per_key = if keys > 0 {
        bytes as f64 / keys as f64
    } else {
        0.0
    };
    println!(
        "total: {segments} segments, {keys} keys (tombstones included), {bytes} bytes, {per_key:.2} B/key"
    );
    for (first, path) in wal::files(dir)? {
        let len = std::fs::metadata(&path).map_or(0, |m| m.len());
        println!("log {} (first seq {first}): {len} bytes", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn verify(dir: &Path) -> lsm_index_core::Result<ExitCode> {
    let m = load(dir)?;
    let mut damaged = 0;
    let mut checked = 0;
    for s in m.lane_state.iter().flat_map(|l| &l.segments) {
        let path = dir.join(&s.file);
        checked += 1;
        let problem = match std::fs::read(&path) {
            Err(e) => Some(format!("unreadable: {e}")),
            Ok(bytes) if bytes.len() as u64 != s.bytes => Some(format!(
                "{} bytes, the manifest says {}",
                bytes.len(),
                s.bytes
            )),
            Ok(bytes) => match Segment::open(bytes, &path.display().to_string(), true) {
                Err(e) => Some(e.to_string()),
                Ok(seg)
                    if seg.info().header_crc32c != s.header_crc32c
                        || seg.info().key_count != s.keys
                        || seg.info().seed_id != m.seed_id =>
                {
                    Some("not the segment the manifest recorded".into())
                }
                Ok(_) => None,
            },
        };
        if let Some(p) = problem {
            damaged += 1;
            println!("DAMAGED {}: {p}", path.display());
        }
    }
    let mut frames = 0u64;
    match wal::read(dir, |_, _| {
        frames += 1;
        Ok(())
    }) {
        Ok(logs) => println!("{} log files, {frames} frames: ok", logs.len()),
        Err(e) => {
            damaged += 1;
            println!("DAMAGED log: {e} (after {frames} good frames)");
        }
    }
    if damaged == 0 {
        println!(
            "healthy: manifest generation {}, {checked} segment files verified",
            m.generation
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{damaged} problems");
        Ok(ExitCode::from(1))
    }
}

fn dump_wal(dir: &Path) -> lsm_index_core::Result<ExitCode> {
    let logs = wal::read(dir, |seq, r| {
        match r {
            Record::Add { fp, handle } => println!("{seq:>12} add    {handle:>10} {fp:016x}"),
            Record::Remove { fp, handle } => println!("{seq:>12} remove {handle:>10} {fp:016x}"),
            Record::Drop { handle } => println!("{seq:>12} drop   {handle:>10}"),
        }
        Ok(())
    })?;
    for (first, path) in logs {
        eprintln!("read {} (first seq {first})", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
