//! Whole-index operations at 1M and 10M keys (fully compacted, then probed in random
//! order): lookup hit and miss, transaction-sized batch lookups, add/remove throughput and
//! full compaction, for both MPH kinds.
mod common;
use common::sizes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lsm_index_core::{Config, Index, MphKind, SegmentLayout};

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

fn scatter(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n
}

fn filled(n: u64, layout: SegmentLayout) -> std::sync::Arc<Index> {
    let index = Index::new(Config {
        layout,
        ..Config::default()
    })
    .expect("config");
    let pairs: Vec<([u8; 8], u32)> = (0..n).map(|i| (key(i), (i % 100_000) as u32)).collect();
    index.add_many(&pairs).expect("add");
    index.compact().expect("compact");
    index
}

fn bench(c: &mut Criterion) {
    for n in sizes() {
        for layout in [
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ] {
            let index = filled(n, layout);
            let mut g = c.benchmark_group(format!("index_{n}_{}", layout.name()));
            let mut i = 0u64;
            let mut out = Vec::with_capacity(8);
            g.bench_function("lookup_hit", |b| {
                b.iter(|| {
                    i += 1;
                    out.clear();
                    index
                        .lookup_into(black_box(&key(scatter(i, n))), &mut out)
                        .expect("lookup");
                    out.len()
                })
            });
            g.bench_function("lookup_miss", |b| {
                b.iter(|| {
                    i += 1;
                    out.clear();
                    index
                        .lookup_into(black_box(&key(n + scatter(i, n))), &mut out)
                        .expect("lookup");
                    out.len()
                })
            });
            let batch: Vec<[u8; 8]> = (0..100).map(|j| key(scatter(j * 31, 2 * n))).collect();
            g.throughput(Throughput::Elements(100));
            g.bench_function("lookup_many_100", |b| {
                b.iter(|| {
                    index
                        .lookup_many(black_box(&batch))
                        .expect("lookup_many")
                        .len()
                })
            });
            g.throughput(Throughput::Elements(1000));
            let mut round = 0u64;
            g.bench_function("add_remove_1000", |b| {
                b.iter(|| {
                    round += 1;
                    let pairs: Vec<([u8; 8], u32)> = (0..500)
                        .map(|j| (key(scatter(round * 500 + j, n)), 200_000))
                        .collect();
                    index.add_many(&pairs).expect("add");
                    index.remove_many(&pairs).expect("remove");
                })
            });
            g.finish();
            drop(index);
        }
        let mut g = c.benchmark_group(format!("index_{n}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(n));
        for layout in [
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ] {
            g.bench_function(format!("ingest_and_compact_{}", layout.name()), |b| {
                b.iter_batched(|| (), |_| filled(n, layout), BatchSize::PerIteration)
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
