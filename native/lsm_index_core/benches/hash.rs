//! Key hashing and lane selection: the fixed cost in front of every lookup and write.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lsm_index_core::internals::{jump_hash, HashSecret, KeyHasher};

fn bench(c: &mut Criterion) {
    let h = KeyHasher::new(HashSecret(*b"0123456789abcdef"));
    let mut g = c.benchmark_group("hash");
    for len in [8usize, 16, 36] {
        let key = vec![7u8; len];
        g.bench_function(format!("siphash13_{len}B"), |b| {
            b.iter(|| h.fingerprint(black_box(&key)))
        });
    }
    for lanes in [16u32, 64, 256] {
        let mut x = 0x1234_5678_9ABC_DEF0u64;
        g.bench_function(format!("jump_hash_{lanes}_lanes"), |b| {
            b.iter(|| {
                x = x.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(1);
                jump_hash(black_box(x), lanes)
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
