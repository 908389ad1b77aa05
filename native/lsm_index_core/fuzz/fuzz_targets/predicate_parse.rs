//! Any text parsed as a shape's WHERE clause (with two parameters) gives an error or an
//! expression: never a panic, never a stack overflow (nesting is bounded); and an expression
//! compiles and evaluates on a few rows (every type, NULLs, edge values) without panicking,
//! with the compiled program agreeing with the reference evaluator.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::predicate::compile::{compile, Stack};
use lsm_index_core::predicate::{eval, parse_with, ColumnType};

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let columns: Vec<(String, ColumnType)> = [
        ("id", ColumnType::Int8),
        ("n", ColumnType::Int2),
        ("f", ColumnType::Float8),
        ("b", ColumnType::Bool),
        ("s", ColumnType::Text),
        ("u", ColumnType::Uuid),
        ("r", ColumnType::Float4),
        ("m", ColumnType::Numeric),
        ("d", ColumnType::Date),
        ("t", ColumnType::Time),
        ("ts", ColumnType::Timestamp),
        ("tz", ColumnType::Timestamptz),
        ("e", ColumnType::enumeration(["a", "b"])),
        ("ia", ColumnType::Int4.array_of()),
        ("ta", ColumnType::Text.array_of()),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let params = [Some("1".to_string()), None];
    let Ok(expr) = parse_with(sql, &columns, &params) else {
        return;
    };
    let compiled = compile(&expr);
    let texts: [[&str; 15]; 2] = [
        [
            "-9223372036854775808", "-32768", "-0", "t", "İΣ", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
            "3.4028235e38", "-1e131071", "-infinity", "24:00", "294276-12-31 23:59:59.999999",
            "4714-11-24 00:00:00+00 BC", "b", "{1,NULL,-2147483648}", r#"{"a b",NULL,""}"#,
        ],
        [
            "9223372036854775807", "32767", "NaN", "f", "", "00000000-0000-0000-0000-000000000000",
            "1e-45", "NaN", "5874897-12-31", "00:00", "infinity", "2024-01-01 10:00+05:30", "a",
            "{}", "{NULL}",
        ],
    ];
    let mut stack = Stack::new();
    for row_texts in texts {
        for nulls in [false, true] {
            let row: Vec<_> = columns
                .iter()
                .zip(row_texts)
                .enumerate()
                .map(|(i, ((_, ty), text))| {
                    if nulls && i % 2 == 1 {
                        None
                    } else {
                        ty.parse(text)
                    }
                })
                .collect();
            let reference = eval(&expr, &row);
            let program = compiled.residual.run(&row, &mut stack);
            if compiled.index.is_empty() {
                assert_eq!(reference.is_err(), program.is_err(), "{sql}");
                if let (Ok(a), Ok(b)) = (reference, program) {
                    assert_eq!(a, b, "{sql}");
                }
            }
        }
    }
});
