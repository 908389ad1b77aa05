//! The range index (`router::ranges`): one stab at 10k and 1M intervals over a key domain
//! of 1M, narrow ones (width 0-20) and a mix with 1% wide ones (up to 100k), the overlay
//! empty or holding 255 entries; and inserting 1M intervals one by one (the slowest single
//! insert, an L0-into-L1 merge, is printed). Timed in thread CPU time: the machine is shared.
//! `cargo bench -p lsm_index_core --bench ranges`; each stab case prints its matches per stab.
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lsm_index_core::internals::thread_cpu_time;
use lsm_index_core::router::ranges::Ranges;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::Duration;

const DOMAIN: u64 = 1_000_000;

/// `n` intervals over the domain: width 0-20, or 0-100k for one in `wide_every`.
fn intervals(n: u32, wide_every: Option<u32>, seed: u64) -> Vec<(u64, u64, u32)> {
    let mut rng = StdRng::seed_from_u64(seed);
    (0..n)
        .map(|i| {
            let lo = rng.gen_range(0..DOMAIN);
            let width = match wide_every {
                Some(w) if i % w == 0 => rng.gen_range(0..100_000),
                _ => rng.gen_range(0..=20),
            };
            (lo, lo + width, i)
        })
        .collect()
}

/// How a stab case's index is made.
#[derive(Clone, Copy)]
enum Build {
    /// One sorted level (`from_entries`): what a reopen gives.
    Sorted,
    /// One sorted level and 255 entries in the overlay: its worst case.
    Overlay255,
    /// Every entry inserted one by one: L1, L0 and the overlay all in use.
    OneByOne,
}

fn bench_stab(c: &mut Criterion) {
    let mut g = c.benchmark_group("ranges_stab");
    g.sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut rng = StdRng::seed_from_u64(7);
    let probes: Vec<u64> = (0..4096).map(|_| rng.gen_range(0..DOMAIN)).collect();
    let cases = [
        ("10k_narrow", 10_000, None, Build::Sorted),
        ("10k_narrow+overlay255", 10_000, None, Build::Overlay255),
        ("10k_mixed", 10_000, Some(100), Build::Sorted),
        ("1M_narrow", 1_000_000, None, Build::Sorted),
        ("1M_narrow_inserted", 1_000_000, None, Build::OneByOne),
        ("1M_mixed", 1_000_000, Some(100), Build::Sorted),
    ];
    for (name, n, wide, build) in cases {
        let entries = intervals(n, wide, 1);
        let mut r = match build {
            Build::OneByOne => Ranges::new(),
            _ => Ranges::from_entries(entries.clone()),
        };
        match build {
            Build::Sorted => {}
            Build::Overlay255 => {
                for (lo, hi, g) in intervals(255, wide, 2) {
                    r.insert(lo, hi, g + n);
                }
            }
            Build::OneByOne => {
                for (lo, hi, g) in entries {
                    r.insert(lo, hi, g);
                }
            }
        }
        let mut out = Vec::new();
        let mut matches = 0;
        for &v in &probes {
            out.clear();
            r.stab(v, &mut out);
            matches += out.len();
        }
        println!(
            "{name}: {:.2} matches per stab, {} heap bytes",
            matches as f64 / probes.len() as f64,
            r.heap_bytes()
        );
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let start = thread_cpu_time();
                for i in 0..iters as usize {
                    out.clear();
                    r.stab(black_box(probes[i % probes.len()]), &mut out);
                    black_box(out.len());
                }
                thread_cpu_time() - start
            })
        });
    }
    g.finish();
}

fn bench_insert(c: &mut Criterion) {
    let mut g = c.benchmark_group("ranges_insert");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(100))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Elements(1_000_000));
    let entries = intervals(1_000_000, Some(100), 3);
    let (mut r, mut slowest) = (Ranges::new(), Duration::ZERO);
    for &(lo, hi, g) in &entries {
        let start = thread_cpu_time();
        r.insert(lo, hi, g);
        slowest = slowest.max(thread_cpu_time() - start);
    }
    println!("1M inserts: slowest single insert {slowest:?}");
    g.bench_function("1M_one_by_one", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let mut r = Ranges::new();
                let start = thread_cpu_time();
                for &(lo, hi, g) in &entries {
                    r.insert(lo, hi, g);
                }
                total += thread_cpu_time() - start;
                black_box(r.len());
            }
            total
        })
    });
    g.finish();
}

criterion_group!(benches, bench_stab, bench_insert);
criterion_main!(benches);
