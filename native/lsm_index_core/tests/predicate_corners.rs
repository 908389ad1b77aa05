//! The last corners of the language (issue 20), each answer taken from PostgreSQL 15: SQL's
//! typed literals (`date '2024-01-01'`), named enum types (`'sad'::mood`), and constant
//! folding that raises only the errors PostgreSQL's planner raises (`false AND 1/0 = 1` is
//! valid, `1/0 = 1 AND false` is not).

use lsm_index_core::predicate::compile::{compile, Stack};
use lsm_index_core::predicate::sql::to_sql;
use lsm_index_core::predicate::{eval, parse, parse_with, ColumnType, Expr, Value};
use lsm_index_core::Error;

fn columns() -> Vec<(String, ColumnType)> {
    [
        ("i4", ColumnType::Int4),
        ("i2", ColumnType::Int2),
        ("f", ColumnType::Float8),
        ("s", ColumnType::Text),
        ("d", ColumnType::Date),
        ("ts", ColumnType::Timestamp),
        // columns named like types
        ("date", ColumnType::Date),
        ("text", ColumnType::Text),
        ("time", ColumnType::Time),
        ("e", ColumnType::named_enum("mood", ["sad", "ok", "happy"])),
        ("e2", ColumnType::named_enum("mood", ["sad", "ok", "happy"])),
        ("c", ColumnType::named_enum("Colour", ["red", "green"])),
        ("u", ColumnType::enumeration(["low", "high"])),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_string(), t))
    .collect()
}

fn ok(sql: &str) -> Expr {
    parse(sql, &columns()).unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The error's byte offset and message.
fn err(sql: &str) -> (usize, String) {
    match parse(sql, &columns()) {
        Err(Error::InvalidPredicate { position, reason }) => (position, reason),
        other => panic!("{sql}: expected a predicate error, got {other:?}"),
    }
}

/// The clause's truth on a row of the columns' texts (`None`: NULL), by the reference
/// evaluator and by the compiled program, which must agree.
fn truth(sql: &str, row: &[(&str, &str)]) -> Option<bool> {
    let cols = columns();
    let expr = ok(sql);
    let values: Vec<Option<Value>> = cols
        .iter()
        .map(|(name, ty)| {
            let text = row.iter().find(|(n, _)| n == name)?.1;
            Some(ty.parse(text).unwrap_or_else(|| panic!("{name}: {text}")))
        })
        .collect();
    let reference = eval(&expr, &values).unwrap_or_else(|e| panic!("{sql}: {e:?}"));
    let compiled = compile(&expr);
    if compiled.index.is_empty() {
        let program = compiled.residual.run(&values, &mut Stack::new());
        assert_eq!(program, Ok(reference), "{sql}");
    }
    reference
}

#[test]
fn a_typed_literal_is_its_text_cast_to_the_type() {
    for (typed, cast) in [
        ("d = DATE '2000-01-01'", "d = '2000-01-01'::date"),
        ("time < TIME '24:00:00'", "time < '24:00:00'::time"),
        (
            "ts = TIMESTAMP '2024-01-01 00:00:00'",
            "ts = '2024-01-01'::timestamp",
        ),
        (
            "ts = TIMESTAMPTZ '2024-01-01 00:00:00+05'",
            "ts = '2024-01-01 00:00:00+05'::timestamptz",
        ),
        (
            "ts = TIMESTAMP WITH TIME ZONE '2024-01-01'",
            "ts = '2024-01-01'::timestamptz",
        ),
        (
            "ts = timestamp without time zone '2024-01-01'",
            "ts = '2024-01-01'::timestamp",
        ),
        (
            "time = time without time zone '10:00'",
            "time = '10:00'::time",
        ),
        ("i4 = int4 ' 5 '", "i4 = '5'::int4"),
        ("i4 = integer '5'", "i4 = 5"),
        ("i4 = int '5'", "i4 = 5"),
        ("i4 = smallint '5'", "i4 = 5::int2"),
        ("i4 = bigint '5'", "i4 = 5::int8"),
        ("i4 = int2 '5'", "i4 = 5"),
        ("i4 = int8 '5'", "i4 = 5"),
        ("f = numeric '1.5'", "f = '1.5'::numeric"),
        ("f = decimal '1.5'", "f = '1.5'::numeric"),
        ("f = float8 '1e3'", "f = 1000"),
        ("f = float '1e3'", "f = 1000"),
        ("f = double precision '1e3'", "f = 1000"),
        ("f = real '1.5'", "f = '1.5'::float4"),
        ("f = float4 '1.5'", "f = '1.5'::float4"),
        ("bool 't'", "TRUE"),
        ("boolean 'off'", "FALSE"),
        ("s = text 'x'", "s = 'x'"),
        ("s = varchar 'x'", "s = 'x'"),
        ("s = character varying 'x'", "s = 'x'"),
        ("s LIKE text 'a%'", "s LIKE 'a%'"),
        ("-int4 '5' = i4", "i4 = -5"),
        ("s = int4 '5'::text", "s = '5'::int4::text"),
        ("d = date E'2000-01-01'", "d = '2000-01-01'::date"),
        ("d = \"date\" '2000-01-01'", "d = '2000-01-01'"),
        ("i4 = \"int4\" '5'", "i4 = 5"),
        ("i4 = '5'::\"int4\"", "i4 = 5"),
    ] {
        assert_eq!(ok(typed), ok(cast), "{typed}");
    }
    let uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    assert_eq!(
        ok(&format!("uuid '{uuid}'::text = s")),
        ok(&format!("'{uuid}'::uuid::text = s"))
    );
}

#[test]
fn a_column_named_like_a_type_is_the_column_unless_a_string_follows() {
    // `date = '…'` is the column; `date '…'` is a typed literal, even with a column `date`
    assert_eq!(ok("date = '2000-01-01'"), ok("\"date\" = '2000-01-01'"));
    assert_eq!(
        truth("date = '2000-01-01'", &[("date", "2000-01-01")]),
        Some(true)
    );
    assert_eq!(truth("date = '2000-01-01'", &[]), None);
    assert_eq!(
        truth("date '2000-01-01' = date", &[("date", "2000-01-02")]),
        Some(false)
    );
    assert_eq!(truth("text || 'y' = 'xy'", &[("text", "x")]), Some(true));
    assert_eq!(truth("text 'x' = text", &[("text", "x")]), Some(true));
    assert_eq!(truth("time = '10:00'", &[("time", "10:00")]), Some(true));
    assert_eq!(
        truth("time '10:00' = time", &[("time", "10:00")]),
        Some(true)
    );
}

#[test]
fn typed_literals_refuse_what_postgres_refuses() {
    // a typed literal takes a string constant only
    assert_eq!(err("d = DATE 5").0, 9);
    assert_eq!(err("d = date $1").0, 9);
    // its text is read by the type's input function: an error points at the text
    let (at, why) = err("i4 = int4 'x'");
    assert_eq!((at, why.as_str()), (10, "a literal that is a valid int4"));
    // unknown or unsupported types, and a double-quoted name that is no catalog name
    assert!(err("i4 = nosuch '5'")
        .1
        .contains("a supported type, found \"nosuch\""));
    assert!(err("i4 = \"integer\" '5'").1.contains("\"integer\""));
    assert!(err("i4 = \"INT4\" '5'").1.contains("\"INT4\""));
    assert!(err("time = time with time zone '10:00'")
        .1
        .contains("time with time zone"));
    assert!(err("s = character 'x'").1.contains("\"character\""));
    assert!(err("s = interval '1 day'")
        .1
        .contains("an interval is not supported"));
    // a column that is no type, before a string
    assert!(err("i4 = i4 '5'")
        .1
        .contains("a supported type, found \"i4\""));
}

#[test]
fn a_named_enum_is_named_by_casts_and_typed_literals() {
    for sql in [
        "e = 'sad'::mood",
        "e = CAST('sad' AS mood)",
        "e = mood 'sad'",
        "e = MOOD 'sad'",
        "e = \"mood\" 'sad'",
        "mood 'sad' = e",
        "e IN ('sad'::mood, 'happy')",
    ] {
        assert_eq!(truth(sql, &[("e", "sad")]), Some(true), "{sql}");
        assert_eq!(truth(sql, &[("e", "ok")]), Some(false), "{sql}");
    }
    // declaration order
    assert_eq!(truth("e > mood 'sad'", &[("e", "ok")]), Some(true));
    assert_eq!(truth("e < 'ok'::mood", &[("e", "happy")]), Some(false));
    assert_eq!(truth("e = e2", &[("e", "ok"), ("e2", "ok")]), Some(true));
    assert_eq!(truth("e < e2", &[("e", "ok"), ("e2", "happy")]), Some(true));
    // a quoted name is itself: `"Colour"`, not `colour`
    assert_eq!(truth("c = \"Colour\" 'red'", &[("c", "red")]), Some(true));
    assert!(err("c = colour 'red'").1.contains("\"colour\""));
    // text to the enum: its input function, on every row
    assert_eq!(truth("s::mood = 'happy'", &[("s", "happy")]), Some(true));
    assert_eq!(
        truth("CAST(s AS mood) > e", &[("s", "happy"), ("e", "ok")]),
        Some(true)
    );
    let expr = ok("s::mood = 'happy'");
    let row: Vec<Option<Value>> = columns()
        .iter()
        .map(|(n, _)| (n == "s").then(|| Value::Text("angry".into())))
        .collect();
    assert!(
        eval(&expr, &row).is_err(),
        "not a label: an evaluation error"
    );
    assert_eq!(truth("e::text = 'ok'", &[("e", "ok")]), Some(true));
    assert_eq!(truth("e::mood = 'ok'", &[("e", "ok")]), Some(true));
    // the enum known by its labels only still takes untyped labels
    assert_eq!(truth("u > 'low'", &[("u", "high")]), Some(true));
}

#[test]
fn named_enums_refuse_what_postgres_refuses() {
    // invalid input value for enum mood: "angry"
    let (at, why) = err("e = 'angry'::mood");
    assert_eq!((at, why.as_str()), (13, "a literal that is a valid mood"));
    assert_eq!(err("e = mood 'angry'").0, 9);
    assert!(err("e IN ('sad', 'angry')")
        .1
        .contains("expected a value of its type"));
    // labels are case-sensitive and white space is not skipped
    err("e = 'Sad'");
    err("e = ' sad'");
    // no operator mood = text, mood = Colour; no cast integer to mood or mood to integer
    err("e = s");
    err("e = c");
    err("e = 'red'::\"Colour\"");
    assert!(err("i4::mood = 'sad'")
        .1
        .contains("a cast PostgreSQL has: int4 to mood"));
    assert!(err("e::int4 = 1")
        .1
        .contains("a cast PostgreSQL has: mood to int4"));
    // an enum known by its labels only has no name
    err("u = 'low'::enum");
}

#[test]
fn named_enums_describe_themselves_and_print_back_as_sql() {
    let mood = ColumnType::named_enum("mood", ["sad", "it's"]);
    assert_eq!(mood.describe(), "enum \"mood\"('sad','it''s')");
    assert_eq!(mood.name(), "mood");
    assert_eq!(
        ColumnType::named_enum("a\"b", ["x"]).describe(),
        "enum \"a\"\"b\"('x')"
    );
    // the form catalogs written before named enums hold
    assert_eq!(
        ColumnType::enumeration(["a", "b"]).describe(),
        "enum('a','b')"
    );
    assert_ne!(
        ColumnType::named_enum("mood", ["a"]),
        ColumnType::named_enum("feeling", ["a"])
    );
    // the printed SQL of an expression over named enums parses back to the same
    for sql in [
        "s::mood = 'happy'",
        "CAST(s AS \"Colour\") = 'red'",
        "coalesce(e, 'ok'::mood) > 'sad'",
        "(s::mood)::text = 'ok'",
    ] {
        let expr = ok(sql);
        let printed = to_sql(&expr, &columns());
        assert_eq!(ok(&printed), expr, "{sql} -> {printed}");
    }
}

/// Clauses PostgreSQL 15 accepts although they hold an expression that fails: its planner
/// never folds the part (psql against a throwaway cluster), with the answer on every row.
#[test]
fn constant_folding_stops_where_the_planner_stops() {
    for (sql, answer) in [
        // COALESCE: up to its first non-NULL constant
        ("coalesce(NULL::int4, 1, 1 / 0) = 1", Some(true)),
        ("coalesce(i4, 1, 1 / 0) = 1", Some(true)),
        ("coalesce(i4 + NULL, 1, 1 / 0) = 1", Some(true)),
        ("coalesce(NULL, '1', 1 / 0) = 1", Some(true)),
        ("coalesce(1, '2147483648'::int8::int4) = 1", Some(true)),
        ("coalesce(false AND 1 / 0 = 1, true)", Some(false)),
        // AND at its first FALSE, OR at its first TRUE
        ("false AND 1 / 0 = 1", Some(false)),
        ("true OR 1 / 0 = 1", Some(true)),
        ("i4 = 1 AND false AND 1 / 0 = 1", Some(false)),
        ("NOT (true OR 1 / 0 = 1) AND 1 / 0 = 1", Some(false)),
        ("(i4 > 0 OR TRUE) OR 1 / 0 = 1", Some(true)),
        ("(NULL OR TRUE) OR 1 / 0 = 1", Some(true)),
        ("(FALSE OR NULL) IS NULL OR 1 / 0 = 1", Some(true)),
        ("(1 = 1) = true OR 1 / 0 = 1", Some(true)),
        ("'a' LIKE 'a%' OR 1 / 0 = 1", Some(true)),
        ("1 IS DISTINCT FROM 2 OR 1 / 0 = 1", Some(true)),
        // a strict operator with a NULL operand is NULL, whatever the column
        ("(i4 + NULL) IS NULL OR 1 / 0 = 1", Some(true)),
        ("(i4 = NULL) IS UNKNOWN OR 1 / 0 = 1", Some(true)),
        ("(i4 IN (NULL)) IS UNKNOWN OR 1 / 0 = 1", Some(true)),
        ("(lower(s) = NULL) IS NULL OR 1 / 0 = 1", Some(true)),
        // the planner's casts of constants, behind a FALSE
        ("false AND i2 = -32768::int2", Some(false)),
        ("false AND f < 1e400", Some(false)),
        ("false AND i4 = 99999999999::int4", Some(false)),
        ("false AND abs((-2147483647 - 1)::int4) = 1", Some(false)),
        ("false AND 'abc'::text::int4 = 1", Some(false)),
        (
            "false AND '5874897-12-31'::date::timestamp > ts",
            Some(false),
        ),
        (
            "false AND ts = '5874897-12-31'::date::timestamp",
            Some(false),
        ),
        // BETWEEN is `x >= low AND x <= high`; NOT BETWEEN `x < low OR x > high`
        ("1 BETWEEN 2 AND 1 / 0", Some(false)),
        ("0 NOT BETWEEN 1 AND 1 / 0", Some(true)),
    ] {
        assert_eq!(truth(sql, &[("i4", "1")]), answer, "{sql}");
    }
    // a cast of a number is the planner's: PostgreSQL rounds
    assert_eq!(truth("i4 = 1.5::int4", &[("i4", "2")]), Some(true));
    assert_eq!(truth("i4 = true::int4", &[("i4", "1")]), Some(true));
    assert_eq!(truth("s = 1e3::text", &[("s", "1000")]), Some(true));
}

/// Clauses PostgreSQL 15 refuses while planning (or parsing), laziness notwithstanding.
#[test]
fn constant_folding_raises_what_the_planner_raises() {
    for sql in [
        "coalesce(NULL::int4, 1 / 0, 1) = 1",
        "coalesce(i4 + 1 / 0, 1) = 1",
        "1 / 0 = 1 AND false",
        "NULL AND 1 / 0 = 1",
        "(i4 = 1 OR true) AND 1 / 0 = 1",
        "(i4 > 0 AND FALSE) OR 1 / 0 = 1",
        "abs(-2147483648::int4) = 1",
        "abs((-2147483647 - 1)::int4) = 1 OR true",
        "5 NOT BETWEEN 1 AND 1 / 0",
        "1 BETWEEN SYMMETRIC 2 AND 1 / 0",
        "1 IN (1, 1 / 0)",
        "1 IN (i4, 1 / 0)",
        "(i4 IN (NULL, NULL)) IS UNKNOWN OR 1 / 0 = 1",
        "i4 IS DISTINCT FROM NULL OR 1 / 0 = 1",
        "'abc'::text::int4 = 1",
        "true AND ts = '5874897-12-31'::date::timestamp",
        // a list of two is cast to its common type: the date does not fit
        "ts IN ('5874897-12-31'::date, '2000-01-01')",
        "coalesce(ts, '5874897-12-31'::date) > '2000-01-01'",
        // what the parser raises is raised behind a FALSE too
        "false AND i4 = 'abc'",
        "false AND i4 = 'abc'::int4",
        "false AND coalesce(1, 'abc') = 1",
        "coalesce(1, 'abc') = 1",
        "false AND e = 'angry'",
        "false AND mood 'angry' = e",
        "false AND i4 = s",
        "false AND nosuch = 1",
        "1 BETWEEN 2 AND 'x'",
        "coalesce(NULL, 1, 1 / 0 + 'x') = 1",
    ] {
        err(sql);
    }
}

/// A date past the last timestamp against a timestamp column: PostgreSQL's cross-type
/// operators compare it without a cast (after every finite timestamp, before `infinity`).
#[test]
fn a_date_past_the_last_timestamp_compares_without_a_cast() {
    let big = "'5874897-12-31'::date";
    for (ts, answers) in [
        ("2000-01-01", [false, true, true, true, false, false]),
        ("infinity", [false, true, false, false, true, true]),
        ("-infinity", [false, true, true, true, false, false]),
    ] {
        for (op, want) in ["=", "<>", "<", "<=", ">", ">="].iter().zip(answers) {
            let sql = format!("ts {op} {big}");
            assert_eq!(truth(&sql, &[("ts", ts)]), Some(want), "{sql} on {ts}");
            let flipped = format!("{big} {op} ts");
            let mirrored = match *op {
                "<" => ">",
                "<=" => ">=",
                ">" => "<",
                ">=" => "<=",
                other => other,
            };
            let sql = format!("ts {mirrored} {big}");
            assert_eq!(truth(&flipped, &[("ts", ts)]), truth(&sql, &[("ts", ts)]));
        }
        assert_eq!(truth(&format!("ts IN ({big})"), &[("ts", ts)]), Some(false));
        assert_eq!(
            truth(&format!("ts NOT IN ({big})"), &[("ts", ts)]),
            Some(true)
        );
    }
    assert_eq!(truth(&format!("ts < {big}"), &[]), None);
    assert_eq!(
        truth(
            &format!("ts BETWEEN '2000-01-01' AND {big}"),
            &[("ts", "2024-01-01")]
        ),
        Some(true)
    );
}

#[test]
fn parameters_and_null_folding_keep_their_meaning() {
    let cols = columns();
    let params = [Some("1".to_string())];
    assert!(parse_with("coalesce(NULL, $1, 1 / 0) = 1", &cols, &params).is_ok());
    // `NULL::int4 IS DISTINCT FROM 5` is TRUE: a NULL is distinct from a value
    assert_eq!(truth("NULL::int4 IS DISTINCT FROM 5", &[]), Some(true));
    assert_eq!(
        truth("(i4 + NULL) IS DISTINCT FROM 5", &[("i4", "1")]),
        Some(true)
    );
    assert_eq!(
        truth("(i4 + NULL) IS NOT DISTINCT FROM NULL", &[("i4", "1")]),
        Some(true)
    );
    // folded to NULL, not evaluated on the row (no overflow on i4 = 2147483647)
    assert_eq!(truth("i4 * 2 + NULL > 1", &[("i4", "2147483647")]), None);
}
