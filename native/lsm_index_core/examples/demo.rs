//! The core demo and summary benchmark: builds an index of N generated keys per MPH kind,
//! compacts it, and prints one table of heap bytes per key (counting allocator), lookup and
//! write speeds and write amplification. `./run bench` runs it; `--keys N` and `--churn N`
//! change the sizes (defaults 10M each).

mod common;

use common::machine;
use lsm_index_core::{Config, Index, MphKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Counts live heap bytes so memory per key is measured, not estimated.
struct Counting;
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// High-water mark of `LIVE` since the last `reset_peak`.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

// SAFETY: delegates every call to the system allocator unchanged and only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let now = LIVE.fetch_add(new, Ordering::Relaxed) + new;
        PEAK.fetch_max(now, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

/// A cheap permutation so lookups hit keys in random order without storing a shuffle.
fn scatter(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n
}

fn ns_per(d: Duration, n: u64) -> f64 {
    d.as_nanos() as f64 / n as f64
}

struct Row {
    mph: &'static str,
    prefilter: bool,
    ingest_mops: f64,
    compact_s: f64,
    bytes_per_key: f64,
    hit_ns: f64,
    miss_ns: f64,
    batch_ns: f64,
    churn_mops: f64,
    write_amp: f64,
    churn_peak_mb: f64,
    len_after_drop_ms: f64,
}

fn run(n: u64, churn: u64, mph: MphKind, prefilter: bool) -> Row {
    let before = LIVE.load(Ordering::Relaxed);
    let index = Index::new(Config {
        mph,
        prefilter,
        ..Config::default()
    })
    .expect("default config is valid");
    eprintln!("[{} prefilter={prefilter}] ingesting {n} keys…", mph.name());
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        batch.clear();
        batch.extend(chunk.iter().map(|&i| (key(i), (i % 100_000) as u32)));
        index.add_many(&batch).expect("add");
    }
    let ingest = t.elapsed();
    let t = Instant::now();
    index.compact().expect("compact");
    let compact = t.elapsed();
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    eprintln!("  compacted in {compact:.2?}; measuring lookups…");

    let probes = n.min(2_000_000);
    let mut out = Vec::with_capacity(16);
    let t = Instant::now();
    let mut found = 0u64;
    for i in 0..probes {
        out.clear();
        index
            .lookup_into(&key(scatter(i, n)), &mut out)
            .expect("lookup");
        found += out.len() as u64;
    }
    let hit = t.elapsed();
    assert_eq!(found, probes, "every present key has one handle");
    let t = Instant::now();
    for i in 0..probes {
        out.clear();
        index
            .lookup_into(&key(n + scatter(i, n)), &mut out)
            .expect("lookup");
        assert!(out.is_empty());
    }
    let miss = t.elapsed();
    // Transaction-sized batches: 100 keys, half present.
    let t = Instant::now();
    let keys: Vec<[u8; 8]> = (0..probes).map(|i| key(scatter(i, 2 * n))).collect();
    let t_start = t.elapsed();
    let t = Instant::now();
    for b in keys.chunks(100) {
        std::hint::black_box(index.lookup_many(b).expect("lookup_many"));
    }
    let batch_d = t.elapsed();
    let _ = t_start;
    drop(keys); // not part of the index: keep it out of the churn peak

    eprintln!("  churning {churn} add/remove operations…");
    let before_stats = index.stats().expect("stats");
    let t = Instant::now();
    let mut pairs = Vec::with_capacity(1000);
    let mut done = 0;
    reset_peak();
    while done < churn {
        pairs.clear();
        pairs.extend((0..500u64).map(|j| {
            let i = scatter(done + j, n);
            (key(i), 200_000 + (i % 7) as u32)
        }));
        index.add_many(&pairs).expect("add");
        index.remove_many(&pairs[..250]).expect("remove");
        done += 750;
    }
    let churn_d = t.elapsed();
    index.wait_idle().expect("compaction");
    let s = index.stats().expect("stats");
    // len() is O(lanes) until a drop_handle, then recounts once (every key) until the next.
    index.drop_handle(5).expect("drop");
    let t = Instant::now();
    index.len().expect("len");
    let len_after_drop = t.elapsed();
    let flushed = s.keys_flushed - before_stats.keys_flushed;
    let written = s.keys_written - before_stats.keys_written;
    Row {
        mph: mph.name(),
        prefilter,
        ingest_mops: n as f64 / ingest.as_secs_f64() / 1e6,
        compact_s: compact.as_secs_f64(),
        bytes_per_key: bytes as f64 / n as f64,
        hit_ns: ns_per(hit, probes),
        miss_ns: ns_per(miss, probes),
        batch_ns: ns_per(batch_d, probes),
        churn_mops: done as f64 / churn_d.as_secs_f64() / 1e6,
        write_amp: if flushed > 0 {
            written as f64 / flushed as f64
        } else {
            0.0
        },
        churn_peak_mb: PEAK.load(Ordering::Relaxed).saturating_sub(before) as f64 / 1048576.0,
        len_after_drop_ms: len_after_drop.as_secs_f64() * 1e3,
    }
}

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name} takes a number, got {v}"))
        })
        .unwrap_or(default)
}

fn main() {
    let n = arg("--keys", 10_000_000);
    let churn = arg("--churn", 10_000_000);
    let mut rows = Vec::new();
    for (mph, prefilter) in [
        (MphKind::PtrHash, true),
        (MphKind::PtrHash, false),
        (MphKind::BoomPhf, true),
        (MphKind::BoomPhf, false),
    ] {
        rows.push(run(n, churn, mph, prefilter));
    }
    println!("\nlsm_index_core demo: {n} keys (one handle each), 64 lanes, full compaction, then {churn} churn ops");
    println!("machine: {}", machine());
    println!(
        "| mph      | prefilter | ingest Mops/s | compact s | heap B/key | hit ns | miss ns | batch ns/key | churn Mops/s | write amp | churn peak heap MB | len after drop ms |"
    );
    println!(
        "|----------|-----------|---------------|-----------|------------|--------|---------|--------------|--------------|-----------|--------------------|-------------------|"
    );
    for r in rows {
        println!(
            "| {:<8} | {:<9} | {:>13.2} | {:>9.2} | {:>10.2} | {:>6.0} | {:>7.0} | {:>12.0} | {:>12.2} | {:>9.2} | {:>18.0} | {:>17.0} |",
            r.mph,
            if r.prefilter { "on" } else { "off" },
            r.ingest_mops,
            r.compact_s,
            r.bytes_per_key,
            r.hit_ns,
            r.miss_ns,
            r.batch_ns,
            r.churn_mops,
            r.write_amp,
            r.churn_peak_mb,
            r.len_after_drop_ms
        );
    }
}
