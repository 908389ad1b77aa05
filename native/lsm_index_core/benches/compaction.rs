//! Compaction executor: merging segments (the cost behind write amplification) and flushing
//! an overlay, for both MPH kinds. `n` is the merge's total input keys.
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use lsm_index_core::internals::executor;
use lsm_index_core::internals::DeadHandles;
use lsm_index_core::internals::SegmentRef;
use lsm_index_core::internals::{Entry, Overlay};
use lsm_index_core::segment::mph::MphKind;
use lsm_index_core::segment::SegmentLayout;
use lsm_index_core::segment::{Segment, SegmentBytes, SegmentWriter, WriteOptions};
use smallvec::smallvec;
use std::sync::Arc;

mod common;
use common::sizes;

fn fp(i: u64) -> u64 {
    i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5_A5A5
}

fn opts(layout: SegmentLayout) -> WriteOptions {
    WriteOptions {
        layout,
        prefilter: true,
        level: 0,
        clean_seq: 1,
        seed_id: 0,
    }
}

/// A segment over keys `range`, every key holding `handle`.
fn segment(
    range: std::ops::Range<u64>,
    handle: u32,
    id: u64,
    layout: SegmentLayout,
) -> Arc<SegmentRef> {
    let mut w = SegmentWriter::with_capacity(opts(layout), (range.end - range.start) as usize);
    for i in range {
        w.push(fp(i), &[handle]).expect("push");
    }
    let bytes = w.finish().expect("finish");
    let segment = Segment::open(SegmentBytes::Heap(bytes), "bench", false).expect("open");
    Arc::new(SegmentRef { id, segment })
}

fn bench(c: &mut Criterion) {
    for n in sizes() {
        let mut g = c.benchmark_group(format!("compaction_{n}"));
        g.sample_size(10);
        g.throughput(Throughput::Elements(n));
        for layout in [
            SegmentLayout::Quotient,
            SegmentLayout::Mph(MphKind::PtrHash),
            SegmentLayout::Mph(MphKind::BoomPhf),
        ] {
            // Newest first: two upper segments overlapping the bottom (churn on existing keys).
            let inputs = vec![
                segment(0..n / 4, 2, 3, layout),
                segment(n / 8..n / 8 + n / 4, 1, 2, layout),
                segment(0..n / 2, 0, 1, layout),
            ];
            let dead = DeadHandles::default();
            g.bench_function(format!("merge_3_segments_{}", layout.name()), |b| {
                b.iter(|| {
                    executor::merge(black_box(&inputs), &dead, true, opts(layout))
                        .expect("merge")
                        .bytes
                        .map_or(0, |v| v.len())
                })
            });
        }
        g.finish();
    }
    let mut g = c.benchmark_group("compaction_flush");
    let keys = 16_384u64;
    g.throughput(Throughput::Elements(keys));
    for layout in [
        SegmentLayout::Quotient,
        SegmentLayout::Mph(MphKind::PtrHash),
        SegmentLayout::Mph(MphKind::BoomPhf),
    ] {
        g.bench_function(format!("flush_overlay_16384_{}", layout.name()), |b| {
            b.iter_batched(
                || {
                    let mut o = Overlay::default();
                    for i in 0..keys {
                        o.put(
                            fp(i),
                            Entry {
                                seq: i,
                                handles: smallvec![i as u32 % 100],
                            },
                        );
                    }
                    o
                },
                |o| {
                    executor::flush(&o, &[], &DeadHandles::default(), false, opts(layout))
                        .expect("flush")
                },
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
