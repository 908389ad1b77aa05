//! The core demo and summary benchmark: builds an index of N generated keys per segment
//! layout, compacts it, and prints one table: resident memory growth per key (the headline),
//! counted heap bytes per key, peak RSS during the build, lookup and write speeds and write
//! amplification. `./run bench` runs it; `--keys N` and `--churn N` change the sizes
//! (defaults 10M each). Each row runs in a child process of its own (`--row K`), so that one
//! row's freed memory is not the next row's baseline.

mod common;

use common::{machine, rss_bytes};
use lsm_index_core::{Config, Index, LargeBlocks, MphKind, SegmentLayout};
use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The NIF's allocator (`LargeBlocks`), counting live heap bytes so memory per key is
/// measured, not estimated.
struct Counting(LargeBlocks);
static LIVE: AtomicUsize = AtomicUsize::new(0);
/// High-water mark of `LIVE` since the last `reset_peak`.
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn reset_peak() {
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
}

// SAFETY: delegates every call to `LargeBlocks` unchanged and only counts sizes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let now = LIVE.fetch_add(l.size(), Ordering::Relaxed) + l.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same layout contract as our caller's.
        unsafe { self.0.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from `alloc` above with this layout.
        unsafe { self.0.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let now = LIVE.fetch_add(new, Ordering::Relaxed) + new;
        PEAK.fetch_max(now, Ordering::Relaxed);
        LIVE.fetch_sub(l.size(), Ordering::Relaxed);
        // SAFETY: `p` came from this allocator with layout `l`.
        unsafe { self.0.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting(LargeBlocks::new());

/// Resets the kernel's high-water mark of this process's RSS (`VmHWM`; Linux 4.0+).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// `VmHWM`: the highest RSS since the last `reset_peak_rss`, in bytes.
fn peak_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

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

/// Which handles the keys get.
#[derive(Clone, Copy)]
enum Handles {
    /// One each, `i % 100_000` (a segment's values need 18 bits).
    Few,
    /// One each, the key's number (24+ bits at 10M: the mix bench's `single`).
    Distinct,
    /// The key's number, and every fifth key also `n + i`: 1.2 handles per key (`mixed`).
    Mixed,
}

impl Handles {
    fn of(self, i: u64, n: u64) -> Vec<u32> {
        match self {
            Handles::Few => vec![(i % 100_000) as u32],
            Handles::Mixed if i.is_multiple_of(5) => vec![i as u32, (n + i) as u32],
            Handles::Distinct | Handles::Mixed => vec![i as u32],
        }
    }

    fn name(self) -> &'static str {
        match self {
            Handles::Few => "1 (i % 100k)",
            Handles::Distinct => "1 (i)",
            Handles::Mixed => "1.2",
        }
    }
}

/// The layouts, prefilter settings and handle mixes compared, one row each.
const ROWS: [(SegmentLayout, bool, Handles); 7] = [
    (SegmentLayout::Quotient, false, Handles::Few),
    (SegmentLayout::Quotient, true, Handles::Few),
    (SegmentLayout::Mph(MphKind::PtrHash), true, Handles::Few),
    (SegmentLayout::Mph(MphKind::PtrHash), false, Handles::Few),
    (SegmentLayout::Quotient, true, Handles::Distinct),
    (SegmentLayout::Quotient, true, Handles::Mixed),
    (SegmentLayout::Mph(MphKind::PtrHash), true, Handles::Mixed),
];

struct Row {
    ingest_mops: f64,
    compact_s: f64,
    rss_per_key: f64,
    bytes_per_key: f64,
    peak_rss_mb: f64,
    hit_ns: f64,
    miss_ns: f64,
    batch_ns: f64,
    churn_mops: f64,
    write_amp: f64,
    churn_peak_mb: f64,
    len_after_drop_ms: f64,
}

fn run(n: u64, churn: u64, (layout, prefilter, handles): (SegmentLayout, bool, Handles)) -> Row {
    GLOBAL.0.install();
    let rss_before = rss_bytes();
    reset_peak_rss();
    let before = LIVE.load(Ordering::Relaxed);
    let index = Index::new(Config {
        layout,
        prefilter,
        ..Config::default()
    })
    .expect("default config is valid");
    eprintln!(
        "[{} prefilter={prefilter}] ingesting {n} keys…",
        layout.name()
    );
    let t = Instant::now();
    let mut batch = Vec::with_capacity(1000);
    for chunk in (0..n).collect::<Vec<_>>().chunks(1000) {
        batch.clear();
        for &i in chunk {
            batch.extend(handles.of(i, n).into_iter().map(|h| (key(i), h)));
        }
        index.add_many(&batch).expect("add");
    }
    let ingest = t.elapsed();
    let t = Instant::now();
    index.compact().expect("compact");
    let compact = t.elapsed();
    index.wait_idle().expect("compaction");
    std::thread::sleep(Duration::from_secs(1));
    let bytes = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let rss = rss_bytes().saturating_sub(rss_before);
    let peak_rss = peak_rss_bytes().saturating_sub(rss_before);
    let st = index.stats().expect("stats");
    eprintln!(
        "  compacted in {compact:.2?}: {} segments, {:.2} B/key in segments, {} overlay bytes ({} keys, {} frozen); measuring lookups…",
        st.segments,
        (st.segment_bytes + st.mph_heap_bytes) as f64 / n as f64,
        st.overlay_bytes,
        st.overlay_keys,
        st.frozen_overlays
    );

    let probes = n.min(2_000_000);
    let mut out = Vec::with_capacity(16);
    let t = Instant::now();
    let mut found = 0u64;
    let mut want = 0u64;
    for i in 0..probes {
        want += handles.of(scatter(i, n), n).len() as u64;
        out.clear();
        index
            .lookup_into(&key(scatter(i, n)), &mut out)
            .expect("lookup");
        found += out.len() as u64;
    }
    let hit = t.elapsed();
    assert_eq!(found, want, "every present key has its handles");
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
        ingest_mops: n as f64 / ingest.as_secs_f64() / 1e6,
        compact_s: compact.as_secs_f64(),
        rss_per_key: rss as f64 / n as f64,
        bytes_per_key: bytes as f64 / n as f64,
        peak_rss_mb: peak_rss as f64 / 1048576.0,
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

impl Row {
    /// The row as one line of numbers (a child process's answer to its parent).
    fn encode(&self) -> String {
        [
            self.ingest_mops,
            self.compact_s,
            self.rss_per_key,
            self.bytes_per_key,
            self.peak_rss_mb,
            self.hit_ns,
            self.miss_ns,
            self.batch_ns,
            self.churn_mops,
            self.write_amp,
            self.churn_peak_mb,
            self.len_after_drop_ms,
        ]
        .map(|x| x.to_string())
        .join(" ")
    }

    fn decode(line: &str) -> Option<Row> {
        let v: Vec<f64> = line
            .split(' ')
            .map(|x| x.parse().ok())
            .collect::<Option<_>>()?;
        let [ingest_mops, compact_s, rss_per_key, bytes_per_key, peak_rss_mb, hit_ns, miss_ns, batch_ns, churn_mops, write_amp, churn_peak_mb, len_after_drop_ms] =
            v[..]
        else {
            return None;
        };
        Some(Row {
            ingest_mops,
            compact_s,
            rss_per_key,
            bytes_per_key,
            peak_rss_mb,
            hit_ns,
            miss_ns,
            batch_ns,
            churn_mops,
            write_amp,
            churn_peak_mb,
            len_after_drop_ms,
        })
    }
}

/// Runs row `k` in a child process of this program and reads its answer.
fn run_child(k: usize, n: u64, churn: u64) -> Row {
    let exe = std::env::current_exe().expect("current_exe");
    let out = std::process::Command::new(exe)
        .args(["--row", &k.to_string(), "--keys", &n.to_string()])
        .args(["--churn", &churn.to_string()])
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("run a row");
    assert!(out.status.success(), "row {k} failed: {}", out.status);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| Row::decode(l.strip_prefix("ROW ")?))
        .unwrap_or_else(|| panic!("row {k} printed no row: {text}"))
}

fn main() {
    let n = arg("--keys", 10_000_000);
    let churn = arg("--churn", 10_000_000);
    if std::env::args().any(|a| a == "--row") {
        println!(
            "ROW {}",
            run(n, churn, ROWS[arg("--row", 0) as usize]).encode()
        );
        return;
    }
    let rows: Vec<Row> = (0..ROWS.len()).map(|k| run_child(k, n, churn)).collect();
    println!("\nlsm_index_core demo: {n} keys, 64 lanes, full compaction, then {churn} churn ops");
    println!("machine: {}", machine());
    println!(
        "| layout   | prefilter | handles/key  | RSS B/key | counted B/key | peak RSS MB (build) | ingest Mops/s | compact s | hit ns | miss ns | batch ns/key | churn Mops/s | write amp | churn peak heap MB | len after drop ms |"
    );
    println!(
        "|----------|-----------|--------------|-----------|---------------|---------------------|---------------|-----------|--------|---------|--------------|--------------|-----------|--------------------|-------------------|"
    );
    for ((layout, prefilter, handles), r) in ROWS.iter().zip(rows) {
        println!(
            "| {:<8} | {:<9} | {:<12} | {:>9.2} | {:>13.2} | {:>19.0} | {:>13.2} | {:>9.2} | {:>6.0} | {:>7.0} | {:>12.0} | {:>12.2} | {:>9.2} | {:>18.0} | {:>17.0} |",
            layout.name(),
            if *prefilter { "on" } else { "off" },
            handles.name(),
            r.rss_per_key,
            r.bytes_per_key,
            r.peak_rss_mb,
            r.ingest_mops,
            r.compact_s,
            r.hit_ns,
            r.miss_ns,
            r.batch_ns,
            r.churn_mops,
            r.write_amp,
            r.churn_peak_mb,
            r.len_after_drop_ms
        );
    }
    println!(
        "RSS B/key: the process's resident growth after build + compaction + 1 s idle, over the keys; \
         counted: live heap bytes (every allocation the index holds); peak RSS: VmHWM during the build"
    );
}
