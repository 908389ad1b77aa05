//! The random shapes and rows of the array tests (`router_arrays.rs`,
//! `router_route_batch.rs`): a table with a text array and an int4 array, shapes found
//! through their elements (`@>`, `&&`, `= ANY`) or scanned (`<@`, `cardinality`), rows with
//! NULL arrays, NULL and repeated elements, and multi-dimensional text that does not parse.
#![allow(dead_code)]

use super::shapes::Rec;
use lsm_index_core::predicate::ColumnType;
use rand::rngs::StdRng;
use rand::Rng;

pub fn columns() -> Vec<(String, ColumnType)> {
    [
        ("id", ColumnType::Int8),
        ("tags", ColumnType::Text.array_of()),
        ("nums", ColumnType::Int4.array_of()),
        ("user_id", ColumnType::Int8),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

pub const TAGS: [&str; 5] = ["a", "b", "c", "urgent", "x y"];

/// A text array literal's elements: distinct or repeated tags, NULLs.
fn tag_list(rng: &mut StdRng, max: usize) -> Vec<String> {
    (0..rng.gen_range(0..=max))
        .map(|_| {
            if rng.gen_ratio(1, 10) {
                "NULL".to_string()
            } else {
                format!("\"{}\"", TAGS[rng.gen_range(0..TAGS.len())])
            }
        })
        .collect()
}

fn num_list(rng: &mut StdRng, max: usize) -> Vec<String> {
    (0..rng.gen_range(0..=max))
        .map(|_| {
            if rng.gen_ratio(1, 10) {
                "NULL".into()
            } else {
                rng.gen_range(0..6).to_string()
            }
        })
        .collect()
}

fn clause(rng: &mut StdRng) -> String {
    let tag = || format!("'{}'", TAGS[rand::random::<usize>() % TAGS.len()]);
    match rng.gen_range(0..9) {
        0 => format!("tags @> '{{{}}}'", tag_list(rng, 3).join(",")),
        1 => format!("tags && '{{{}}}'", tag_list(rng, 3).join(",")),
        2 => format!("{} = ANY(tags)", tag()),
        3 => format!("nums @> ARRAY[{}]::int4[]", num_list(rng, 2).join(",")),
        4 => format!("{} = ANY(nums)", rng.gen_range(0..6)),
        5 => format!("tags <@ '{{{}}}'", tag_list(rng, 3).join(",")),
        6 => format!("user_id = {}", rng.gen_range(0..4)),
        7 => format!("cardinality(tags) > {}", rng.gen_range(0..3)),
        _ => format!("nums && '{{{}}}'", num_list(rng, 3).join(",")),
    }
}

pub fn shape_sql(rng: &mut StdRng) -> String {
    match rng.gen_range(0..5) {
        0 => format!("{} AND {}", clause(rng), clause(rng)),
        1 => format!("{} OR {}", clause(rng), clause(rng)),
        _ => clause(rng),
    }
}

pub fn record(rng: &mut StdRng) -> Rec {
    let array = |rng: &mut StdRng, list: Vec<String>| {
        if rng.gen_ratio(1, 12) {
            None
        } else if rng.gen_ratio(1, 40) {
            Some("{{1},{2}}".to_string()) // multi-dimensional: does not parse
        } else {
            Some(format!("{{{}}}", list.join(",")))
        }
    };
    let tags = tag_list(rng, 4);
    let nums = num_list(rng, 4);
    vec![
        Some(rng.gen_range(0..50).to_string()),
        array(rng, tags),
        array(rng, nums),
        Some(rng.gen_range(0..4).to_string()),
    ]
}
