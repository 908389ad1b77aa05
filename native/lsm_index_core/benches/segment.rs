//! Segment build and probe (hit, miss) at 1M and 10M keys for both MPH kinds, with and
//! without the prefilter. One segment holds all keys here (an index splits them over lanes).
mod common;
use common::sizes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lsm_index_core::segment::mph::MphKind;
use lsm_index_core::segment::SegmentLayout;
use lsm_index_core::segment::{Probe, Segment, SegmentWriter, WriteOptions};

fn fp(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5_A5A5
}

fn build(n: u64, layout: SegmentLayout, prefilter: bool) -> Vec<u8> {
    let mut w = SegmentWriter::with_capacity(
        WriteOptions {
            layout,
            prefilter,
            level: 0,
            clean_seq: 0,
            seed_id: 0,
        },
        n as usize,
    );
    for i in 0..n {
        w.push(fp(i), &[(i % 1000) as u32]).expect("push");
    }
    w.finish().expect("finish")
}

fn bench(c: &mut Criterion) {
    for n in sizes() {
        let mut g = c.benchmark_group(format!("segment_{n}"));
        g.sample_size(10);
        for layout in [
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ] {
            g.throughput(Throughput::Elements(n));
            g.bench_function(format!("build_{}", layout.name()), |b| {
                b.iter_batched(|| (), |_| build(n, layout, true), BatchSize::PerIteration)
            });
        }
        g.finish();
        let mut g = c.benchmark_group(format!("segment_{n}"));
        for layout in [
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ] {
            for prefilter in [true, false] {
                let bytes = build(n, layout, prefilter);
                let tag = format!(
                    "{}_{}",
                    layout.name(),
                    if prefilter { "filter" } else { "nofilter" }
                );
                // Opening: header + bounds validation + MPH decode, with and without
                // verifying every section's crc32c.
                for verify in [true, false] {
                    let name = if verify { "open_verified" } else { "open_lazy" };
                    g.bench_function(format!("{name}_{tag}"), |b| {
                        b.iter(|| {
                            let s = Segment::open(black_box(&bytes[..]), "bench", verify);
                            s.expect("open").info().key_count
                        })
                    });
                }
                let seg = Segment::open(bytes, "bench", true).expect("open");
                let mut i = 0u64;
                g.bench_function(format!("probe_hit_{tag}"), |b| {
                    b.iter(|| {
                        i = (i + 7_777_777) % n;
                        matches!(seg.probe(black_box(fp(i))), Probe::Found(_))
                    })
                });
                g.bench_function(format!("probe_miss_{tag}"), |b| {
                    b.iter(|| {
                        i = (i + 7_777_777) % n;
                        matches!(seg.probe(black_box(fp(i + n))), Probe::Found(_))
                    })
                });
            }
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
