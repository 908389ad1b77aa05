//! Subqueries in the predicate language (`predicate::subquery`): every accepted form, every
//! refusal with its byte offset, types, polarity, chains and the normalised text. Rules
//! checked against PostgreSQL 15 (a throwaway cluster) where PostgreSQL decides them.

use lsm_index_core::predicate::{
    parse, parse_with_tables, CaseFolding, ColumnType, Expr, Parsed, Polarity, TableDef,
};
use lsm_index_core::Error;

/// issues(id, project_id, owner_id, f, tag, num), projects(id, owner_id, name, g, num),
/// orgs(id, active) in `public`, and audit.logs(id, project_id).
fn tables() -> Vec<TableDef> {
    let t = |schema: &str, name: &str, cols: &[(&str, ColumnType)]| TableDef {
        schema: schema.into(),
        name: name.into(),
        columns: cols
            .iter()
            .map(|(c, t)| (c.to_string(), t.clone()))
            .collect(),
    };
    use ColumnType::*;
    vec![
        t(
            "public",
            "issues",
            &[
                ("id", Int8),
                ("project_id", Int4),
                ("owner_id", Int8),
                ("f", Float8),
                ("tag", Text),
                ("num", Numeric),
            ],
        ),
        t(
            "public",
            "projects",
            &[
                ("id", Int8),
                ("owner_id", Int8),
                ("name", Text),
                ("g", Float4),
                ("num", Numeric),
            ],
        ),
        t("public", "orgs", &[("id", Int8), ("active", Bool)]),
        t("audit", "logs", &[("id", Int8), ("project_id", Int8)]),
    ]
}

fn parsed(sql: &str, params: &[&str]) -> Parsed {
    let params: Vec<Option<String>> = params.iter().map(|p| Some(p.to_string())).collect();
    parse_with_tables(sql, 0, &tables(), &params, CaseFolding::Unicode)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

fn refused(sql: &str) -> (usize, String) {
    match parse_with_tables(sql, 0, &tables(), &[], CaseFolding::Unicode) {
        Err(Error::InvalidPredicate { position, reason }) => (position, reason),
        other => panic!("{sql}: {other:?}"),
    }
}

fn occ(columns: Vec<usize>, position: u32, negated: bool) -> Expr {
    Expr::InSubquery {
        columns,
        position,
        negated,
    }
}

#[test]
fn in_any_and_all_forms_are_one_subquery() {
    let p = parsed(
        "project_id IN (SELECT id FROM projects WHERE owner_id = $1)",
        &["7"],
    );
    assert_eq!(p.expr, occ(vec![1], 0, false));
    let [def] = p.subqueries.as_slice() else {
        panic!("{p:?}")
    };
    assert_eq!((def.table, def.projection.as_slice()), (1, &[0][..]));
    assert_eq!((def.polarity, def.parent), (Polarity::Positive, None));
    assert_eq!(
        def.sql,
        "SELECT \"id\" FROM \"public\".\"projects\" WHERE \"owner_id\" = '7'::int8"
    );
    // the same subquery however written: one text (the key views are shared by)
    for sql in [
        "project_id = ANY (select \"id\" from public.projects p where p.owner_id = 7)",
        "project_id IN (SELECT DISTINCT projects.id FROM projects WHERE projects.owner_id = '7')",
        "project_id IN (SELECT id FROM public.projects AS pr WHERE pr.owner_id = 7)",
    ] {
        let q = parsed(sql, &[]);
        assert_eq!(q.expr, occ(vec![1], 0, false), "{sql}");
        assert_eq!(q.subqueries[0].sql, def.sql, "{sql}");
    }
    let q = parsed("project_id <> ALL (SELECT id FROM projects)", &[]);
    assert_eq!(q.expr, occ(vec![1], 0, true));
    assert_eq!(q.subqueries[0].polarity, Polarity::Negative);
    assert_eq!(q.subqueries[0].inner, Expr::Const(Some(true)));
    assert_eq!(
        q.subqueries[0].sql,
        "SELECT \"id\" FROM \"public\".\"projects\""
    );
    let q = parsed("project_id NOT IN (SELECT project_id FROM audit.logs)", &[]);
    assert_eq!((q.subqueries[0].table, q.expr), (3, occ(vec![1], 0, true)));
}

#[test]
fn rows_of_columns_and_qualified_outer_names() {
    let p = parsed(
        "(issues.project_id, public.issues.owner_id) IN (SELECT id, owner_id FROM projects)",
        &[],
    );
    assert_eq!(p.expr, occ(vec![1, 2], 0, false));
    assert_eq!(p.subqueries[0].projection, vec![0, 1]);
    // a table that is both outer and inner: its own columns inside
    let p = parsed(
        "owner_id IN (SELECT owner_id FROM issues WHERE id = 1)",
        &[],
    );
    assert_eq!(p.subqueries[0].table, 0);
}

#[test]
fn polarity_is_the_parity_of_the_nots_above() {
    let p = parsed(
        "NOT (project_id IN (SELECT id FROM projects)) OR (tag = 'x' AND NOT \
         project_id NOT IN (SELECT id FROM projects WHERE name = 'a'))",
        &[],
    );
    let polarity: Vec<Polarity> = p.subqueries.iter().map(|d| d.polarity).collect();
    assert_eq!(polarity, vec![Polarity::Negative, Polarity::Positive]);
    // params are numbered once for the outer and the inner clauses
    let p = parsed(
        "tag = $2 AND project_id IN (SELECT id FROM projects WHERE owner_id = $1)",
        &["7", "x"],
    );
    assert!(p.subqueries[0].sql.ends_with("'7'::int8"), "{p:?}");
}

#[test]
fn chains_are_numbered_in_textual_order() {
    let p = parsed(
        "project_id IN (SELECT id FROM projects WHERE owner_id IN (SELECT id FROM orgs WHERE \
         active) AND name <> 'x') AND owner_id IN (SELECT owner_id FROM projects)",
        &[],
    );
    let parents: Vec<Option<u32>> = p.subqueries.iter().map(|d| d.parent).collect();
    assert_eq!(parents, vec![None, Some(0), None]);
    assert_eq!(p.subqueries[1].table, 2);
    assert_eq!(
        p.subqueries[0].inner,
        Expr::And(vec![
            occ(vec![1], 1, false),
            parse("name <> 'x'", &tables()[1].columns).unwrap()
        ])
    );
    assert_eq!(
        p.subqueries[0].sql,
        "SELECT \"id\" FROM \"public\".\"projects\" WHERE ((\"owner_id\") IN (SELECT \"id\" \
         FROM \"public\".\"orgs\" WHERE \"active\" = 't'::bool)) AND (\"name\" <> 'x'::text)"
    );
    // four levels, not five
    let level = |inner: &str| format!("id IN (SELECT id FROM orgs WHERE {inner})");
    let four = level(&level(&level(&level("active"))));
    parsed(&four, &[]);
    let (at, why) = refused(&level(&four));
    assert!(why.contains("at most 4 levels"), "{why}");
    assert_eq!(at, 4 * (level("").len() - 1) + "id IN (".len(), "{why}");
}

#[test]
fn types_pair_within_one_key_family() {
    // int4 with int8, float8 with float4, text with text, numeric with numeric
    for sql in [
        "project_id IN (SELECT id FROM projects)",
        "f IN (SELECT g FROM projects)",
        "tag IN (SELECT name FROM projects)",
        "num IN (SELECT num FROM projects)",
    ] {
        parsed(sql, &[]);
    }
    // PostgreSQL promotes these across families: not supported yet
    for sql in [
        "project_id IN (SELECT num FROM projects)",
        "f IN (SELECT id FROM projects)",
    ] {
        let (at, why) = refused(sql);
        assert!(why.contains("not supported yet"), "{sql}: {why}");
        assert_eq!(at, sql.find(" IN ").unwrap() + 1, "{sql}");
    }
    // PostgreSQL has no operator: operator does not exist
    let (at, why) = refused("project_id IN (SELECT name FROM projects)");
    assert!(
        why.contains("operator does not exist: int4 = text"),
        "{why}"
    );
    assert_eq!(at, 11);
}

#[test]
fn column_counts_are_postgres_errors_at_in() {
    // PostgreSQL 15: ERROR: subquery has too many columns (at IN)
    assert_eq!(
        refused("project_id IN (SELECT id, owner_id FROM projects)"),
        (11, "subquery has too many columns".into())
    );
    assert_eq!(
        refused("(project_id, owner_id) IN (SELECT id FROM projects)"),
        (23, "subquery has too few columns".into())
    );
}

/// Each refusal names the construct and the byte offset where it starts.
#[test]
fn refusals_name_the_construct_and_offset() {
    for (sql, needle, at) in [
        ("EXISTS (SELECT 1 FROM projects)", "EXISTS", 0),
        ("id = (SELECT id FROM projects)", "scalar subquery", 5),
        ("id > ANY (SELECT id FROM projects)", "> ANY (SELECT", 3),
        ("id = ALL (SELECT id FROM projects)", "= ALL (SELECT", 3),
        ("id IN (SELECT * FROM projects)", "'*'", 14),
        ("id IN (SELECT id + 1 FROM projects)", "an expression", 17),
        ("id IN (SELECT true FROM projects)", "an expression", 14),
        (
            "id IN (SELECT id FROM projects, orgs)",
            "several FROM items",
            30,
        ),
        (
            "id IN (SELECT p.id FROM projects p JOIN orgs o ON true)",
            "JOIN",
            35,
        ),
        (
            "id IN (SELECT id FROM projects ORDER BY id)",
            "ORDER BY",
            31,
        ),
        (
            "id IN (SELECT id FROM projects WHERE true LIMIT 1)",
            "LIMIT",
            42,
        ),
        (
            "id IN (SELECT id FROM projects GROUP BY id)",
            "GROUP BY",
            31,
        ),
        (
            "id IN (SELECT DISTINCT ON (id) id FROM projects)",
            "DISTINCT ON",
            23,
        ),
        ("id IN (SELECT id FROM nowhere)", "unknown table", 22),
        (
            "id IN (SELECT id FROM projects WHERE tag = 'x')",
            "correlated",
            37,
        ),
        (
            "id IN (SELECT id FROM projects WHERE owner_id = issues.owner_id)",
            "correlated",
            48,
        ),
        ("id IN (SELECT nope FROM projects)", "unknown column", 14),
        // PostgreSQL: invalid reference to FROM-clause entry for table "projects"
        (
            "id IN (SELECT projects.id FROM projects p)",
            "FROM-clause entry",
            14,
        ),
        (
            "(id IN (SELECT id FROM projects)) IS TRUE",
            "condition under AND/OR/NOT",
            4,
        ),
        (
            "coalesce(id IN (SELECT id FROM projects), false)",
            "condition under",
            12,
        ),
        (
            "(id, owner_id) NOT IN (SELECT id, owner_id FROM projects)",
            "row of columns",
            19,
        ),
        (
            "NOT (id, owner_id) IN (SELECT id, owner_id FROM projects)",
            "row of columns",
            19,
        ),
        (
            "id + 1 IN (SELECT id FROM projects)",
            "a column before IN",
            0,
        ),
        (
            "id IN (SELECT id FROM projects WHERE NOT owner_id IN (SELECT id FROM orgs))",
            "inside a subquery",
            50,
        ),
        (
            "id IN (SELECT id FROM projects WHERE name = 'a' OR owner_id IN (SELECT id FROM orgs))",
            "inside a subquery",
            60,
        ),
        (
            "id IN (SELECT id FROM projects WHERE owner_id NOT IN (SELECT id FROM orgs))",
            "inside a subquery",
            50,
        ),
        ("nowhere.id = 1", "missing FROM-clause entry", 0),
        ("(id, owner_id) = 1", "only tested by IN (SELECT", 0),
    ] {
        let (position, why) = refused(sql);
        assert!(why.contains(needle), "{sql}: {why}");
        assert_eq!(position, at, "{sql}: {why}");
    }
}

/// Every prefix of a clause, and the clause with any one byte removed, parses or fails with an
/// offset inside it: never a panic.
#[test]
fn damaged_clauses_fail_cleanly() {
    for sql in [
        "(project_id, owner_id) IN (SELECT DISTINCT p.id, p.owner_id FROM public.projects AS p \
         WHERE p.owner_id IN (SELECT id FROM orgs WHERE active) AND name <> $1) OR NOT id <> ALL \
         (SELECT \"project_id\" FROM audit.logs l WHERE l.id = 1)",
        "id = ANY (SELECT true FROM projects) AND EXISTS (SELECT 1)",
    ] {
        let cut = (0..sql.len()).filter(|&i| sql.is_char_boundary(i));
        for text in cut
            .clone()
            .map(|i| sql[..i].to_string())
            .chain(cut.map(|i| format!("{}{}", &sql[..i], &sql[i + 1..])))
        {
            let params = [Some("x".to_string())];
            let r = parse_with_tables(&text, 0, &tables(), &params, CaseFolding::Unicode);
            if let Err(Error::InvalidPredicate { position, .. }) = r {
                assert!(position <= text.len(), "{text}");
            }
        }
    }
}

/// PostgreSQL 15 plans a subquery's WHERE even where the outer clause drops it: `FALSE AND
/// x IN (SELECT … WHERE 1/0 = 1)` fails with division by zero, as here.
#[test]
fn a_subquerys_planning_errors_are_raised_anywhere() {
    for sql in [
        "project_id IN (SELECT id FROM projects WHERE 1/0 = 1)",
        "FALSE AND project_id IN (SELECT id FROM projects WHERE 1/0 = 1)",
    ] {
        let (_, why) = refused(sql);
        assert!(why.contains("division by zero"), "{sql}: {why}");
    }
}

/// The single-table entry points have no tables: a subquery is refused as before.
#[test]
fn single_table_parsing_refuses_subqueries() {
    let cols = &tables()[0].columns;
    for (sql, at) in [
        ("project_id IN (SELECT id FROM projects)", 15),
        ("project_id = ANY (SELECT id FROM projects)", 18),
        ("issues.id = 1", 0),
    ] {
        match parse(sql, cols) {
            Err(Error::InvalidPredicate { position, reason }) => {
                assert_eq!(position, at, "{sql}: {reason}");
                assert!(reason.contains("router over its tables"), "{sql}: {reason}");
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
}

mod compiled;
