//! Any bytes as a router's shape catalog decode to shapes or an error: never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lsm_index_core::predicate::ColumnType;

fuzz_target!(|data: &[u8]| {
    let columns = vec![
        ("a".to_string(), ColumnType::Int8),
        ("s".to_string(), ColumnType::Text),
    ];
    let _ = lsm_index_core::router::catalog::decode(
        data,
        &columns,
        lsm_index_core::predicate::CaseFolding::Unicode,
    );
});
