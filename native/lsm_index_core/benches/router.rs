//! The ShapeRouter's route of one change, by outcome: a value no shape is indexed on (stops at
//! the presence filter), one shape, eight shapes; with and without 5 scanned shapes. Then
//! `router_miss`: issue 24's miss (a 10-column `todos` row of a user no shape has) at 10k and
//! 100k template shapes, split by what it costs: the whole route with every column
//! referenced, the same with only the probed column referenced (the parse of the other
//! nine is the difference), an update, and a hit beside them.
#[path = "../examples/common/todos.rs"]
mod todos;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use lsm_index_core::predicate::compile::{compile, Stack};
use lsm_index_core::predicate::{parse, CaseFolding, ColumnType, Value};
use lsm_index_core::router::{Change, Router};
use lsm_index_core::Config;
use std::time::Duration;

const SHAPES: u32 = 100_000;
const UNINDEXED: [&str; 5] = [
    "status <> 'archived' AND score > 100",
    "note LIKE 'urgent%'",
    "user_id > 4000000000 OR score < -1000",
    "NOT (status IN ('open', 'late', 'done'))",
    "note ILIKE '%zzz%' AND score IS NOT NULL",
];

fn router(scanned: bool) -> Router {
    let columns = [
        ("id", ColumnType::Int8),
        ("user_id", ColumnType::Int8),
        ("status", ColumnType::Text),
        ("score", ColumnType::Float8),
        ("note", ColumnType::Text),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let r = Router::new(columns, CaseFolding::Unicode, Config::default()).expect("router");
    for id in 0..SHAPES {
        let value = if id < SHAPES - 800 {
            u64::from(id)
        } else {
            1_000_000_000 + u64::from(id % 100)
        };
        let residual = if id % 3 == 0 {
            " AND status IN ('open', 'late')"
        } else {
            ""
        };
        r.add_shape(id, &format!("user_id = {value}{residual}"))
            .expect("shape");
    }
    if scanned {
        for (i, sql) in UNINDEXED.iter().enumerate() {
            r.add_shape(SHAPES + i as u32, sql).expect("shape");
        }
    }
    r.wait_idle().expect("idle");
    r
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("router");
    for scanned in [false, true] {
        let r = router(scanned);
        let suffix = if scanned { "+5_scanned" } else { "" };
        for (name, user_id) in [
            ("miss", "2000000001"),
            ("hit", "4242"),
            ("fanout8", "1000000007"),
        ] {
            let rec: Vec<Option<&[u8]>> = vec![
                Some(b"17"),
                Some(user_id.as_bytes()),
                Some(b"open"),
                Some(b"1.5"),
                Some(b"row 17"),
            ];
            let mut out = Vec::new();
            g.bench_function(format!("{name}{suffix}"), |b| {
                b.iter(|| {
                    r.route(black_box(&Change::Insert(&rec)), &mut out)
                        .expect("route");
                    out.len()
                })
            });
        }
    }
    // the residual programs of the 5 scanned shapes on one parsed row
    let columns = router(false).columns().to_vec();
    let programs: Vec<_> = UNINDEXED
        .iter()
        .map(|sql| compile(&parse(sql, &columns).expect("parse")).residual)
        .collect();
    let row = [
        Some(Value::Int(17)),
        Some(Value::Int(2_000_000_001)),
        Some(Value::Text("open".into())),
        Some(Value::Float(1.5)),
        Some(Value::Text("row 17".into())),
    ];
    let mut stack = Stack::new();
    g.bench_function("eval_5_scanned_programs", |b| {
        b.iter(|| {
            programs
                .iter()
                .filter(|p| p.run(black_box(&row), &mut stack) == Ok(Some(true)))
                .count()
        })
    });
    g.finish();
}

/// The six templates of `bench/workloads.exs`, and a seventh reading the four columns they
/// leave (so every column of a row is referenced).
const TEMPLATES: [&str; 7] = [
    "user_id = $1",
    "user_id = $1 AND status <> 'done'",
    "user_id = $1 AND priority >= 3",
    "user_id = $1 AND due_at >= '2024-03-01 00:00:00+00' AND due_at < '2024-04-01 00:00:00+00'",
    "user_id = $1 AND lower(title) LIKE '%bug%'",
    "user_id = $1 AND estimate > 5.5",
    "user_id = $1 AND id > 0 AND project_id <> 7 AND created_at > '2023-01-01 00:00:00+00' AND NOT done",
];

/// A router of `n` shapes over `n / 24` users: shape `i` of user `i % users`, template
/// `(i / users) % templates.len()` (as `bench/workloads.exs` spreads them).
fn todos_router(n: u32, templates: &[&str]) -> Router {
    let r = Router::new(todos::columns(), CaseFolding::Unicode, Config::default()).expect("router");
    let users = (n / 24).max(1);
    for i in 0..n {
        let t = templates[((i / users) as usize) % templates.len()];
        let user = (i % users).to_string();
        r.add_shape_with(i, t, &[Some(user)]).expect("shape");
    }
    r.wait_idle().expect("idle");
    r
}

/// A `todos` row of `user_id` as Postgres text.
fn todos_row(user_id: &str) -> Vec<Option<Vec<u8>>> {
    [
        "1000000017",
        user_id,
        "412",
        "late",
        "4",
        "2024-03-17 13:00:00+00",
        "Fix bug 4711",
        "12.5",
        "2023-06-11 09:30:00+00",
        "f",
    ]
    .iter()
    .map(|s| Some(s.as_bytes().to_vec()))
    .collect()
}

fn bench_miss(c: &mut Criterion) {
    let mut g = c.benchmark_group("router_miss");
    g.sample_size(40).measurement_time(Duration::from_secs(3));
    let sizes: Vec<u32> = match std::env::var("LSM_BENCH_SHAPES") {
        Ok(s) => s.split(',').filter_map(|x| x.trim().parse().ok()).collect(),
        Err(_) => vec![10_000, 100_000],
    };
    let miss = todos_row("1000000000017");
    let miss: Vec<Option<&[u8]>> = miss.iter().map(|c| c.as_deref()).collect();
    let mut moved = todos_row("1000000000017");
    moved[4] = Some(b"5".to_vec());
    let moved: Vec<Option<&[u8]>> = moved.iter().map(|c| c.as_deref()).collect();
    let hit = todos_row("17");
    let hit: Vec<Option<&[u8]>> = hit.iter().map(|c| c.as_deref()).collect();
    for n in sizes {
        let mut out = Vec::new();
        let mut route = |g: &mut criterion::BenchmarkGroup<_>, name: &str, r: &Router, ch| {
            g.bench_function(BenchmarkId::new(name, n), |b| {
                let mut reader = r.reader();
                b.iter(|| {
                    reader.route(black_box(&ch), &mut out).expect("route");
                    out.len()
                })
            });
        };
        let all = todos_router(n, &TEMPLATES);
        route(&mut g, "insert_10_referenced", &all, Change::Insert(&miss));
        route(
            &mut g,
            "update_10_referenced",
            &all,
            Change::Update(&miss, &moved),
        );
        route(&mut g, "hit_10_referenced", &all, Change::Insert(&hit));
        drop(all);
        let probed = todos_router(n, &TEMPLATES[..1]);
        route(
            &mut g,
            "insert_1_referenced",
            &probed,
            Change::Insert(&miss),
        );
    }
    g.finish();
}

criterion_group!(benches, bench, bench_miss);
criterion_main!(benches);
