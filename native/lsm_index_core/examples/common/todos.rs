//! Issue 24's workload (as `bench/workloads.exs` makes it): the 10-column `todos` table and
//! shapes of six templates over N/24 users, 4 equal shapes per user and template.
#![allow(dead_code)]

use lsm_index_core::predicate::ColumnType;

/// The six templates.
pub const TEMPLATES: [&str; 6] = [
    "user_id = $1",
    "user_id = $1 AND status <> 'done'",
    "user_id = $1 AND priority >= 3",
    "user_id = $1 AND due_at >= $2 AND due_at < $3",
    "user_id = $1 AND lower(title) LIKE '%bug%'",
    "user_id = $1 AND estimate > 5.5",
];

/// The `todos` table's columns.
pub fn columns() -> Vec<(String, ColumnType)> {
    let status = ColumnType::enumeration(["open", "late", "done", "archived"]);
    [
        ("id", ColumnType::Int8),
        ("user_id", ColumnType::Int8),
        ("project_id", ColumnType::Int8),
        ("status", status),
        ("priority", ColumnType::Int2),
        ("due_at", ColumnType::Timestamptz),
        ("title", ColumnType::Text),
        ("estimate", ColumnType::Numeric),
        ("created_at", ColumnType::Timestamptz),
        ("done", ColumnType::Bool),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

/// Shape `i` of `users` users: its template and parameters (user `i % users`, template
/// `(i / users) % 6`, the user's month of 2024 for the `due_at` template).
pub fn shape(i: u32, users: u32) -> (&'static str, Vec<Option<String>>) {
    let user = i % users;
    let t = ((i / users) % 6) as usize;
    let month = user % 12 + 1;
    let next = if month == 12 {
        "2025-01-01 00:00:00+00".to_string()
    } else {
        format!("2024-{:02}-01 00:00:00+00", month + 1)
    };
    let params = vec![
        Some(user.to_string()),
        Some(format!("2024-{month:02}-01 00:00:00+00")),
        Some(next),
    ];
    (TEMPLATES[t], params)
}
