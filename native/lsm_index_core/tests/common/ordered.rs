//! The random shapes and rows of the ordered-index tests (`router_ordered.rs`,
//! `router_route_batch.rs`): a table of six ordered types, shapes of a few range and LIKE
//! templates with random parameters, values at the corners of each type.
#![allow(dead_code)]

use super::shapes::Rec;
use lsm_index_core::predicate::ColumnType;
use rand::rngs::StdRng;
use rand::Rng;

pub fn columns() -> Vec<(String, ColumnType)> {
    [
        ("i", ColumnType::Int8),
        ("f", ColumnType::Float8),
        ("n", ColumnType::Numeric),
        ("t", ColumnType::Text),
        ("ts", ColumnType::Timestamptz),
        ("d", ColumnType::Date),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

const INTS: [&str; 7] = [
    "-9223372036854775808",
    "-3",
    "0",
    "1",
    "2",
    "7",
    "9223372036854775807",
];
const FLOATS: [&str; 9] = [
    "-Infinity",
    "-2.5",
    "-0",
    "0",
    "1e-300",
    "1.5",
    "3",
    "Infinity",
    "NaN",
];
const NUMERICS: [&str; 9] = [
    "-1e400",
    "-2.50",
    "0",
    "1.00000000000000000001",
    "1",
    "1.5",
    "123456789012345678901234567890",
    "Infinity",
    "NaN",
];
const TEXTS: [&str; 14] = [
    "",
    "a",
    "ab",
    "abc",
    "abcdefgh",
    "abcdefghij",
    "abcdefghiz",
    "Bug report",
    "a bug",
    "DEBUG",
    "ünï",
    "ÜNÏ",
    "x%y",
    "x_y",
];
const STAMPS: [&str; 5] = [
    "-infinity",
    "1999-12-31 23:59:59+00",
    "2024-01-01 00:00:00+00",
    "2024-02-01 00:00:00.000001+00",
    "infinity",
];
const DATES: [&str; 4] = ["-infinity", "2000-01-01", "2024-02-29", "infinity"];
const PATTERNS: [&str; 16] = [
    "",
    "%",
    "%%",
    "_",
    "___",
    "_%",
    "a%",
    "ab%",
    "abcdefghi%",
    "%bug%",
    "%BUG%",
    "%ü%",
    "x\\%%",
    "x\\_y",
    "%y",
    "a_c%",
];

/// A column's value: its text (NULL now and then).
pub fn value(rng: &mut StdRng, column: usize) -> Option<String> {
    if rng.gen_ratio(1, 12) {
        return None;
    }
    let pool: &[&str] = match column {
        0 => &INTS,
        1 => &FLOATS,
        2 => &NUMERICS,
        3 => &TEXTS,
        4 => &STAMPS,
        _ => &DATES,
    };
    Some(pool[rng.gen_range(0..pool.len())].to_string())
}

/// A shape: one of a few templates, with random parameters (so many shapes share each).
pub fn shape(rng: &mut StdRng) -> (String, Vec<Option<String>>) {
    let col = rng.gen_range(0..6);
    let name = ["i", "f", "n", "t", "ts", "d"][col];
    let p = |rng: &mut StdRng| value(rng, col);
    let pattern = |rng: &mut StdRng| Some(PATTERNS[rng.gen_range(0..PATTERNS.len())].to_string());
    match rng.gen_range(0..9) {
        0 => (format!("{name} > $1 AND {name} < $2"), vec![p(rng), p(rng)]),
        1 => (format!("{name} BETWEEN $1 AND $2"), vec![p(rng), p(rng)]),
        2 => {
            let op = [">", ">=", "<", "<="][rng.gen_range(0..4)];
            (format!("{name} {op} $1"), vec![p(rng)])
        }
        3 => (format!("{name} >= $1 AND {name} <= $1"), vec![p(rng)]),
        4 => ("t LIKE $1".to_string(), vec![pattern(rng)]),
        5 => ("t ILIKE $1".to_string(), vec![pattern(rng)]),
        6 => {
            let f = ["lower", "upper"][rng.gen_range(0..2)];
            (format!("{f}(t) LIKE $1"), vec![pattern(rng)])
        }
        7 => (
            "t LIKE $1 AND i > $2".to_string(),
            vec![pattern(rng), value(rng, 0)],
        ),
        _ => (
            "t NOT LIKE $1 OR f < $2".to_string(),
            vec![pattern(rng), value(rng, 1)],
        ),
    }
}

pub fn row(rng: &mut StdRng) -> Rec {
    (0..6).map(|c| value(rng, c)).collect()
}
