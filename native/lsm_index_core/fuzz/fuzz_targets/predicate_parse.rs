//! Any text parsed as a shape's WHERE clause gives an error or an expression: never a panic,
//! never a stack overflow (nesting is bounded).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::predicate::{parse, ColumnType};

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
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect();
    let _ = parse(sql, &columns);
});
