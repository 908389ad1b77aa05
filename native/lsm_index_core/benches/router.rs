//! The ShapeRouter's route of one change, by outcome: a value no shape is indexed on (stops at
//! the presence filter), one shape, eight shapes; with and without 5 scanned shapes.
use criterion::{black_box, criterion_group, criterion_main, Criterion};
use lsm_index_core::predicate::compile::{compile, Stack};
use lsm_index_core::predicate::{parse, CaseFolding, ColumnType, Value};
use lsm_index_core::router::{Change, Router};
use lsm_index_core::Config;

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

criterion_group!(benches, bench);
criterion_main!(benches);
