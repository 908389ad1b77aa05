//! `lookup_many` by batch size (1, 8, 32, 256 keys) at 1M and 10M keys, fully compacted, keys
//! in random order, beside the memory limits of the same machine and hour (`mem_probe`: a
//! dependent and an independent random read of 1 GiB), printed first (issue 25).
mod common;
#[path = "common/mem_probe.rs"]
mod mem_probe;
use common::sizes;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lsm_index_core::{Config, Index};

fn key(i: u64) -> [u8; 8] {
    i.to_le_bytes()
}

fn scatter(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) % n
}

fn bench(c: &mut Criterion) {
    let probe = mem_probe::mem_probe();
    println!(
        "memory probe (1 GiB, random 8-byte reads): dependent {:.1} ns, independent {:.1} ns \
         ({} cores)",
        probe.dependent_ns,
        probe.independent_ns,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    for n in sizes() {
        let index = Index::new(Config::default()).expect("config");
        let pairs: Vec<([u8; 8], u32)> = (0..n).map(|i| (key(i), (i % 100_000) as u32)).collect();
        index.add_many(&pairs).expect("add");
        index.compact().expect("compact");
        drop(pairs);
        let mut g = c.benchmark_group(format!("batch_{n}"));
        for size in [1u64, 8, 32, 256] {
            g.throughput(Throughput::Elements(size));
            let mut next = 0u64;
            g.bench_function(format!("lookup_many_{size}"), |b| {
                b.iter(|| {
                    let keys: Vec<[u8; 8]> = (0..size)
                        .map(|_| {
                            next += 1;
                            key(scatter(next, n))
                        })
                        .collect();
                    let refs: Vec<&[u8]> = keys.iter().map(|k| k.as_slice()).collect();
                    black_box(index.lookup_many(black_box(&refs)).expect("lookup_many"))
                })
            });
        }
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
