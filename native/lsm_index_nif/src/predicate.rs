//! `where_parse_*` NIFs: a WHERE clause parsed by the core (`lsm_index_core::predicate`)
//! and handed to `LsmIndex.Filter` as its expression tree; and the table-column list
//! conversion the router NIFs share.

use lsm_index_core::predicate::sql::to_sql;
use lsm_index_core::predicate::{parse, uuid_text, CmpOp, ColumnType, Expr, Value};
use lsm_index_core::router::MAX_COLUMNS;
use rustler::{Binary, Encoder, Env, NifResult, Term};

use crate::error::core_error;

mod atoms {
    rustler::atoms! {
        ok,
        nil,
        and,
        or,
        not,
        eq, ne, lt, le, gt, ge,
        in_ = "in",
        is_null,
        like,
        ilike,
        const_ = "const",
        sql,
        nan,
        infinity,
        neg_infinity,
    }
}

/// The table's columns from `[{name, type_name}]` (an enum's type as `{"enum", [label]}`, a
/// named enum's as `{"enum", name, [label]}`, an array's as `{"array", element_type}` with a
/// type that is not an array); `BadArg` for anything else.
pub(crate) fn columns(term: Term<'_>) -> NifResult<Vec<(String, ColumnType)>> {
    let list: Vec<(String, Term<'_>)> = term.decode()?;
    if list.len() > MAX_COLUMNS {
        return Err(rustler::Error::BadArg);
    }
    list.into_iter()
        .map(|(name, ty)| Ok((name, column_type(ty)?)))
        .collect()
}

/// One column type from its NIF form (see [`columns`]); `BadArg` for anything else.
pub(crate) fn column_type(term: Term<'_>) -> NifResult<ColumnType> {
    if let Ok(name) = term.decode::<String>() {
        return ColumnType::from_name(&name).ok_or(rustler::Error::BadArg);
    }
    if let Ok((kind, element)) = term.decode::<(String, Term<'_>)>() {
        if kind == "array" {
            return match column_type(element)? {
                ColumnType::Array(_) => Err(rustler::Error::BadArg),
                t => Ok(t.array_of()),
            };
        }
    }
    let (kind, name, labels): (String, Option<String>, Vec<String>) = match term.decode() {
        Ok((kind, labels)) => (kind, None, labels),
        Err(_) => {
            let (kind, name, labels): (String, String, Vec<String>) = term.decode()?;
            (kind, Some(name), labels)
        }
    };
    let mut seen = std::collections::HashSet::new();
    if kind != "enum"
        || labels.is_empty()
        || !labels.iter().all(|l| seen.insert(l))
        || name
            .as_ref()
            .is_some_and(|n| n.is_empty() || n.contains('\0'))
    {
        return Err(rustler::Error::BadArg);
    }
    Ok(match name {
        None => ColumnType::enumeration(labels),
        Some(name) => ColumnType::named_enum(name, labels),
    })
}

/// The text of a WHERE clause; `BadArg` when it is not UTF-8 (`LsmIndex` checks first).
pub(crate) fn sql_text<'b>(sql: &'b Binary<'_>) -> NifResult<&'b str> {
    std::str::from_utf8(sql.as_slice()).map_err(|_| rustler::Error::BadArg)
}

/// Parses `sql` against `[{name, type_name}]`: `{:ok, tree}` in `LsmIndex.Filter.Where`'s
/// form, or `{:error, {:invalid_where, position, message}}`.
fn where_parse<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    let cols = columns(cols)?;
    Ok(match parse(sql_text(&sql)?, &cols) {
        Ok(expr) => (atoms::ok(), tree(env, &expr, &cols)).encode(env),
        Err(e) => core_error(env, &e),
    })
}

#[rustler::nif]
fn where_parse_small<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    where_parse(env, sql, cols)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn where_parse_dirty<'a>(env: Env<'a>, sql: Binary<'a>, cols: Term<'a>) -> NifResult<Term<'a>> {
    where_parse(env, sql, cols)
}

/// `expr` as an `LsmIndex.Filter.Where` tree (depth is bounded by the parser).
fn tree<'a>(env: Env<'a>, expr: &Expr, cols: &[(String, ColumnType)]) -> Term<'a> {
    let name = |c: &usize| cols[*c].0.as_str();
    let literal = |env, c: &usize, v: Option<&Value>| literal(env, &cols[*c].1, v);
    let not = |t: Term<'a>, negated: bool| {
        if negated {
            (atoms::not(), t).encode(env)
        } else {
            t
        }
    };
    match expr {
        Expr::Const(b) => (atoms::const_(), opt_bool(env, *b)).encode(env),
        Expr::Cmp { column, op, value } => {
            let op = match op {
                CmpOp::Eq => atoms::eq(),
                CmpOp::Ne => atoms::ne(),
                CmpOp::Lt => atoms::lt(),
                CmpOp::Le => atoms::le(),
                CmpOp::Gt => atoms::gt(),
                CmpOp::Ge => atoms::ge(),
            };
            (op, name(column), literal(env, column, value.as_ref())).encode(env)
        }
        Expr::In {
            column,
            values,
            negated,
        } => {
            let lits: Vec<Term<'a>> = values
                .iter()
                .map(|v| literal(env, column, v.as_ref()))
                .collect();
            not((atoms::in_(), name(column), lits).encode(env), *negated)
        }
        Expr::IsNull { column, negated } => {
            not((atoms::is_null(), name(column)).encode(env), *negated)
        }
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated,
        } => {
            let op = if *case_insensitive {
                atoms::ilike()
            } else {
                atoms::like()
            };
            not((op, name(column), pattern.as_str()).encode(env), *negated)
        }
        Expr::Not(e) => (atoms::not(), tree(env, e, cols)).encode(env),
        // a condition over expressions: its SQL
        Expr::Compare { .. }
        | Expr::IsNullOf { .. }
        | Expr::LikeOf { .. }
        | Expr::Truth(_)
        | Expr::IsTruth { .. }
        | Expr::ArrayOp { .. }
        | Expr::AnyAll { .. }
        | Expr::InSubquery { .. } => (atoms::sql(), to_sql(expr, cols)).encode(env),
        Expr::And(es) | Expr::Or(es) => {
            let op = if matches!(expr, Expr::And(_)) {
                atoms::and()
            } else {
                atoms::or()
            };
            let list: Vec<Term<'a>> = es.iter().map(|e| tree(env, e, cols)).collect();
            (op, list).encode(env)
        }
    }
}

fn opt_bool(env: Env<'_>, b: Option<bool>) -> Term<'_> {
    match b {
        Some(b) => b.encode(env),
        None => atoms::nil().encode(env),
    }
}

/// A literal of a column of type `ty` as the tree's value (`nil` for NULL): integers,
/// floats (atoms for NaN and the infinities), booleans and text as themselves, every other
/// value (arrays too: `{1,NULL}`) as PostgreSQL's text of it (which the column's type reads
/// back).
fn literal<'a>(env: Env<'a>, ty: &ColumnType, v: Option<&Value>) -> Term<'a> {
    match v {
        None => atoms::nil().encode(env),
        Some(Value::Int(i)) => i.encode(env),
        Some(Value::Float(f)) if f.is_nan() => atoms::nan().encode(env),
        Some(Value::Float(f)) if *f == f64::INFINITY => atoms::infinity().encode(env),
        Some(Value::Float(f)) if *f == f64::NEG_INFINITY => atoms::neg_infinity().encode(env),
        Some(Value::Float(f)) => f.encode(env),
        Some(Value::Bool(b)) => b.encode(env),
        Some(Value::Text(s)) => s.as_str().encode(env),
        Some(Value::Uuid(u)) => uuid_text(*u).encode(env),
        Some(v) => ty.text(v).unwrap_or_default().encode(env),
    }
}
