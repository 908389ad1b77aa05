//! Resident bytes per shape of a router holding N shapes of issue 24's six templates (the
//! workload of `bench/workloads.exs`: N/24 users, 4 equal shapes per user and template), and
//! the time to add them, then the time to route rows of known users (hits: the user's 24
//! shapes are candidates) and of unknown ones (misses). `cargo run --release -p
//! lsm_index_core --example router_memory [N] [batch] [SECONDS]` (`batch`: in
//! `Router::add_shapes` calls of 100,000 shapes; SECONDS: of routing each kind, default 2 —
//! long enough to `perf record` it; a fourth argument `miss` or `batch-miss` routes only
//! misses, one by one or batched). Each kind is timed one by one (`Reader::route`) and
//! batched (`Reader::route_batch`, 100 rows a call), hits, misses and a 1%-hit stream.

#[path = "common/todos.rs"]
mod todos;

use lsm_index_core::predicate::CaseFolding;
use lsm_index_core::router::{Change, Router, Routes};
use lsm_index_core::Config;
use std::time::Instant;

/// Resident set size of this process, in bytes (Linux).
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let columns = todos::columns();
    let r = Router::new(columns, CaseFolding::Unicode, Config::default()).expect("router");
    let batch = std::env::args().nth(2).is_some_and(|a| a == "batch");
    let users = (n / 24).max(1);
    let shape = |i: u32| {
        let (template, params) = todos::shape(i, users);
        (i, template, params)
    };
    let before = rss();
    let mut took = std::time::Duration::ZERO;
    let mut next = 0;
    while next < n {
        // the shapes are made before the clock starts
        let end = n.min(next + 100_000);
        let shapes: Vec<_> = (next..end).map(shape).collect();
        let start = Instant::now();
        if batch {
            let each: Vec<_> = shapes
                .iter()
                .map(|(i, t, p)| (*i, *t, p.as_slice()))
                .collect();
            r.add_shapes(&each).expect("add_shapes");
        } else {
            for (i, t, params) in &shapes {
                r.add_shape_with(*i, t, params).expect("add");
            }
        }
        took += start.elapsed();
        next = end;
    }
    r.wait_idle().expect("idle");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let after = rss();
    let by = r.index_counts();
    println!(
        "{n} shapes: {:.1} B/shape resident, {} {:.2} µs/shape, {} groups, {} templates",
        (after.saturating_sub(before)) as f64 / f64::from(n),
        if batch { "add_shapes" } else { "add_shape" },
        took.as_secs_f64() * 1e6 / f64::from(n),
        by.groups,
        by.templates
    );
    let seconds: f64 = std::env::args()
        .nth(3)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    // `miss`: only misses (to `perf record` them), one by one or batched
    let only = std::env::args().nth(4).unwrap_or_default();
    for batched in [false, true] {
        let how = if batched { "route_batch" } else { "route" };
        if only == "miss" || only == "batch-miss" {
            if batched == (only == "batch-miss") {
                let (miss, _) = route_for(&r, seconds, batched, |k| users + k % users);
                println!("{how}: miss {miss:.0} ns");
            }
            continue;
        }
        let (hit, hit_candidates) = route_for(&r, seconds, batched, |k| k % users);
        let (miss, _) = route_for(&r, seconds, batched, |k| users + k % users);
        // 1% hits: one row in a hundred of a known user
        let (one, _) = route_for(&r, seconds, batched, |k| {
            if k % 100 == 0 {
                k % users
            } else {
                users + k % users
            }
        });
        println!(
            "{how}: hit {hit:.0} ns ({hit_candidates:.1} candidates: {:.0} ns each beyond a \
             miss), miss {miss:.0} ns, 1% hits {one:.0} ns per change",
            (hit - miss) / hit_candidates.max(1e-9)
        );
    }
}

/// Nanoseconds per routed insert of a 10-column row whose user is `user(k)` for the k-th row,
/// over about `seconds`, and candidates per row; `batched`: 100 rows per
/// `Reader::route_batch`, else one `Reader::route` each.
fn route_for(r: &Router, seconds: f64, batched: bool, user: impl Fn(u32) -> u32) -> (f64, f64) {
    // rows made up front: 4,096 users in a scattered order (their groups not in cache)
    let rows: Vec<Vec<Option<Vec<u8>>>> = (0..4096u32)
        .map(|k| {
            let u = user(k.wrapping_mul(2_654_435_761) >> 8).to_string();
            let cells = [
                "1000000017",
                &u,
                "412",
                "late",
                "4",
                "2024-03-17 13:00:00+00",
                "Fix bug 4711",
                "12.5",
                "2023-06-11 09:30:00+00",
                "f",
            ];
            cells.iter().map(|c| Some(c.as_bytes().to_vec())).collect()
        })
        .collect();
    let cells: Vec<Vec<Option<&[u8]>>> = rows
        .iter()
        .map(|row| row.iter().map(|c| c.as_deref()).collect())
        .collect();
    let changes: Vec<Change> = cells.iter().map(|c| Change::Insert(c)).collect();
    let before = r.metrics().candidates;
    let mut out = Vec::new();
    let mut routes = Routes::default();
    let (mut routed, start) = (0u64, Instant::now());
    while start.elapsed().as_secs_f64() < seconds {
        // a reader per 100 rows, as `route_many` batches
        for batch in changes.chunks(100) {
            let mut reader = r.reader();
            if batched {
                routes.clear();
                reader.route_batch(batch, &mut routes).expect("route");
            } else {
                for change in batch {
                    reader.route(change, &mut out).expect("route");
                }
            }
        }
        routed += cells.len() as u64;
    }
    let ns = start.elapsed().as_secs_f64() * 1e9 / routed as f64;
    (ns, (r.metrics().candidates - before) as f64 / routed as f64)
}
