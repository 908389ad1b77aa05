//! The infix index of LIKE '%literal%' patterns (`router::patterns`) at 1k and 100k distinct
//! literals (`PATTERNS_SIZES` to change), texts of 20-200 bytes: a text's matches on one
//! tier, with an almost full overlay, and on the tiers left by growing the index one insert
//! at a time; a build from scratch. Printed: heap bytes per literal, matches per text, and
//! growing by inserts: µs per insert (merges included), the slowest insert, the tiers left.
use criterion::measurement::WallTime;
use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use lsm_index_core::router::patterns::{InfixIndex, OVERLAY_MAX};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::time::{Duration, Instant};

/// Texts matched per iteration.
const TEXTS: usize = 256;

/// A lowercase word of `len` letters (letters skewed towards the front of the alphabet, so
/// words share substrings as text does).
fn word(rng: &mut StdRng, len: usize) -> String {
    (0..len)
        .map(|_| {
            let r: f64 = rng.gen();
            (b'a' + (r * r * 26.0) as u8) as char
        })
        .collect()
}

/// `n` distinct literals of 4-10 letters.
fn literals(n: usize, rng: &mut StdRng) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    while seen.len() < n {
        let len = rng.gen_range(4..=10);
        seen.insert(word(rng, len));
    }
    let mut out: Vec<String> = seen.into_iter().collect();
    out.sort();
    out
}

/// Texts of 20-200 bytes: words of 2-9 letters separated by spaces.
fn texts(rng: &mut StdRng) -> Vec<String> {
    (0..TEXTS)
        .map(|_| {
            let len = rng.gen_range(20..=200);
            let mut t = String::new();
            while t.len() < len {
                let w = rng.gen_range(2..10);
                t.push_str(&word(rng, w));
                t.push(' ');
            }
            t.truncate(len);
            t
        })
        .collect()
}

fn build(literals: &[String]) -> InfixIndex {
    let entries = literals.iter().enumerate();
    InfixIndex::from_entries(entries.map(|(i, l)| (l.as_str(), i as u32, 1))).expect("build")
}

/// Matches every text once per iteration.
fn matches(
    g: &mut criterion::BenchmarkGroup<'_, WallTime>,
    name: String,
    index: &InfixIndex,
    texts: &[String],
) {
    let mut out = Vec::new();
    g.throughput(Throughput::Elements(texts.len() as u64));
    g.bench_function(name, |b| {
        b.iter(|| {
            for t in texts {
                out.clear();
                index.matches(black_box(t), &mut out);
            }
            out.len()
        })
    });
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("patterns");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(10);
    let mut rng = StdRng::seed_from_u64(24);
    let sizes: Vec<usize> = match std::env::var("PATTERNS_SIZES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![1_000, 100_000],
    };
    for n in sizes {
        let lits = literals(n + OVERLAY_MAX, &mut rng);
        let (lits, fresh) = lits.split_at(n);
        let texts = texts(&mut rng);
        let index = build(lits);
        let mut out = Vec::new();
        let hits: usize = (texts.iter())
            .map(|t| {
                out.clear();
                index.matches(t, &mut out);
                out.len()
            })
            .sum();
        println!(
            "patterns/{n}: one tier: {:.0} heap bytes per literal, {:.2} groups matched per text",
            index.heap_bytes() as f64 / n as f64,
            hits as f64 / TEXTS as f64
        );
        matches(&mut g, format!("matches/{n}"), &index, &texts);
        let mut overlaid = index.clone();
        for (i, l) in fresh[..OVERLAY_MAX - 1].iter().enumerate() {
            overlaid.insert(l, (n + i) as u32).expect("insert");
        }
        assert_eq!(overlaid.overlay_len(), OVERLAY_MAX - 1);
        matches(
            &mut g,
            format!("matches_overlay{}/{n}", OVERLAY_MAX - 1),
            &overlaid,
            &texts,
        );
        // grown one insert at a time: the tiers the merge policy leaves, the cost per insert
        // (merges included) and the slowest insert (the largest merge)
        let (start, mut slowest) = (Instant::now(), Duration::ZERO);
        let mut grown = InfixIndex::new();
        for (i, l) in lits.iter().enumerate() {
            let one = Instant::now();
            grown.insert(l, i as u32).expect("insert");
            slowest = slowest.max(one.elapsed());
        }
        println!(
            "patterns/{n}: grown by inserts: {:.2} µs per insert (slowest {:.2} ms), {} tiers \
             + {} in the overlay, {:.0} heap bytes per literal",
            start.elapsed().as_secs_f64() * 1e6 / n as f64,
            slowest.as_secs_f64() * 1e3,
            grown.tiers(),
            grown.overlay_len(),
            grown.heap_bytes() as f64 / n as f64,
        );
        matches(&mut g, format!("matches_grown/{n}"), &grown, &texts);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("build/{n}"), |b| b.iter(|| build(black_box(lits))));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
