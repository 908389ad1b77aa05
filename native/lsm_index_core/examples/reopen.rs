//! Reopen benchmark: builds a persistent index of N keys (default 10M), compacts and closes
//! it, then times `Index::open` with full verification and lazily, the resident memory after
//! opening, the first lookups (page faults) and a check that lookups equal what was written.
//! `./run bench reopen [--keys N] [--dir PATH]`.

mod common;

use common::{machine, rss_bytes};
use lsm_index_core::{Config, Index};
use std::path::PathBuf;
use std::time::Instant;

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

fn main() {
    let mut keys: u64 = 10_000_000;
    let mut dir: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--keys" => keys = args.next().and_then(|v| v.parse().ok()).expect("--keys N"),
            "--dir" => dir = args.next().map(PathBuf::from),
            other => panic!("unknown argument {other}"),
        }
    }
    let tmp = tempfile::tempdir_in(std::env::temp_dir()).expect("temp dir");
    let dir = dir.unwrap_or_else(|| tmp.path().join("index"));
    println!(
        "# reopen: {keys} keys in {}\nmachine: {}",
        dir.display(),
        machine()
    );

    let t = Instant::now();
    {
        let index = Index::open(&dir, Config::default()).expect("open new");
        let batch: Vec<([u8; 8], u32)> = Vec::with_capacity(100_000);
        let mut batch = batch;
        for i in 0..keys {
            batch.push((key(i), (i % 1000) as u32));
            if batch.len() == 100_000 {
                index.add_many(&batch).expect("add");
                batch.clear();
            }
        }
        index.add_many(&batch).expect("add");
        index.compact().expect("compact");
        index.close().expect("close");
    }
    let disk: u64 = walk(&dir);
    println!(
        "build + compact + close: {:.1} s; on disk {:.1} MB ({:.2} B/key)",
        t.elapsed().as_secs_f64(),
        disk as f64 / 1e6,
        disk as f64 / keys as f64
    );

    for (verify, cold) in [(true, false), (false, false), (true, true), (false, true)] {
        let cache = if cold && drop_page_cache() {
            "cold page cache"
        } else if cold {
            continue; // cannot drop caches here (not root)
        } else {
            "warm page cache"
        };
        let rss0 = rss_bytes();
        let t = Instant::now();
        let index = Index::open(
            &dir,
            Config {
                verify_on_open: verify,
                ..Config::default()
            },
        )
        .expect("reopen");
        let open_ms = t.elapsed().as_secs_f64() * 1e3;
        let rss_open = rss_bytes().saturating_sub(rss0);
        let t = Instant::now();
        let sample = 100_000u64.min(keys);
        for j in 0..sample {
            let i = (j.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % keys;
            assert_eq!(
                index.lookup(&key(i)).expect("lookup"),
                vec![(i % 1000) as u32]
            );
        }
        let lookup_ns = t.elapsed().as_nanos() as f64 / sample as f64;
        if verify && !cold {
            // every key, once: the reopened index answers exactly what was written
            for i in 0..keys {
                assert_eq!(
                    index.lookup(&key(i)).expect("lookup"),
                    vec![(i % 1000) as u32]
                );
            }
            println!("all {keys} lookups equal what was written");
        }
        let t = Instant::now();
        let len = index.len().expect("len");
        let len_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(len, keys);
        println!(
            "open ({cache}, verify_on_open: {verify}): {open_ms:.1} ms; RSS +{:.1} MB after open, \
             +{:.1} MB after {sample} random lookups ({lookup_ns:.0} ns each, cold, all equal); \
             first len() {len_ms:.0} ms",
            rss_open as f64 / 1e6,
            rss_bytes().saturating_sub(rss0) as f64 / 1e6,
        );
        index.close().expect("close");
    }
}

/// Empties the kernel's page cache (needs root), so the next open reads from the device.
fn drop_page_cache() -> bool {
    std::process::Command::new("sync").status().is_ok()
        && std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
}

fn walk(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let p = e.path();
                    if p.is_dir() {
                        walk(&p)
                    } else {
                        e.metadata().map_or(0, |m| m.len())
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}
