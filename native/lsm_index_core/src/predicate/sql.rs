//! An [`Expr`] written back as SQL that parses to the same meaning over the same columns:
//! how a condition over expressions reaches `LsmIndex.Filter`'s trees (as `{:sql, text}`),
//! and a readable form for messages.

use super::{CmpOp, ColumnType, Expr, Func, Scalar, Value};

/// `expr` as SQL over `columns` (identifiers double-quoted, literals typed).
/// A subquery is written `(subquery n)`, readable but not SQL: see [`to_sql_in`].
pub fn to_sql(expr: &Expr, columns: &[(String, ColumnType)]) -> String {
    to_sql_in(expr, columns, &|p| format!("subquery {p}"))
}

/// [`to_sql`] with the text of each subquery by position (a `SELECT …`).
pub fn to_sql_in(
    expr: &Expr,
    columns: &[(String, ColumnType)],
    subquery: &dyn Fn(u32) -> String,
) -> String {
    let mut out = String::new();
    Writer { columns, subquery }.expr(expr, &mut out);
    out
}

/// `name` as a double-quoted SQL identifier.
pub fn quote_identifier(name: &str) -> String {
    quote(name, '"')
}

struct Writer<'a> {
    columns: &'a [(String, ColumnType)],
    subquery: &'a dyn Fn(u32) -> String,
}

/// An operator's SQL text.
pub(crate) fn op_text(op: CmpOp) -> &'static str {
    match op {
        CmpOp::Eq => "=",
        CmpOp::Ne => "<>",
        CmpOp::Lt => "<",
        CmpOp::Le => "<=",
        CmpOp::Gt => ">",
        CmpOp::Ge => ">=",
    }
}

fn quote(text: &str, q: char) -> String {
    let doubled = format!("{q}{q}");
    format!("{q}{}{q}", text.replace(q, &doubled))
}

impl Writer<'_> {
    fn column(&self, c: usize) -> String {
        quote(&self.columns[c].0, '"')
    }

    /// A value of type `ty`: its text cast to the type (an enum's known by its labels only
    /// untyped: the context types it, as SQL cannot name its type).
    fn value(&self, ty: &ColumnType, v: Option<&Value>) -> String {
        let Some(v) = v else {
            return "NULL".into();
        };
        let text = quote(&ty.text(v).unwrap_or_default(), '\'');
        match type_name(ty) {
            None => text,
            Some(name) => format!("{text}::{name}"),
        }
    }

    fn expr(&self, e: &Expr, out: &mut String) {
        let col_ty = |c: &usize| &self.columns[*c].1;
        match e {
            Expr::Const(b) => out.push_str(match b {
                Some(true) => "TRUE",
                Some(false) => "FALSE",
                None => "NULL",
            }),
            Expr::Cmp { column, op, value } => {
                // an integer column's rewritten bounds may be outside its own type: int8
                let ty = if col_ty(column).is_integer() {
                    &ColumnType::Int8
                } else {
                    col_ty(column)
                };
                out.push_str(&format!(
                    "{} {} {}",
                    self.column(*column),
                    op_text(*op),
                    self.value(ty, value.as_ref())
                ))
            }
            Expr::In {
                column,
                values,
                negated,
            } => {
                let ty = if col_ty(column).is_integer() {
                    &ColumnType::Int8
                } else {
                    col_ty(column)
                };
                let list: Vec<String> = values.iter().map(|v| self.value(ty, v.as_ref())).collect();
                out.push_str(&format!(
                    "{} {}IN ({})",
                    self.column(*column),
                    if *negated { "NOT " } else { "" },
                    list.join(", ")
                ))
            }
            Expr::IsNull { column, negated } => out.push_str(&format!(
                "{} IS {}NULL",
                self.column(*column),
                if *negated { "NOT " } else { "" }
            )),
            Expr::Like {
                column,
                pattern,
                case_insensitive,
                negated,
            } => out.push_str(&format!(
                "{} {}{} {}",
                self.column(*column),
                if *negated { "NOT " } else { "" },
                if *case_insensitive { "ILIKE" } else { "LIKE" },
                quote(pattern, '\'')
            )),
            Expr::Compare { left, op, right } => {
                let hint = self.type_of(left).or_else(|| self.type_of(right));
                self.typed_scalar(left, hint.as_ref(), out);
                out.push_str(&format!(" {} ", op_text(*op)));
                self.typed_scalar(right, hint.as_ref(), out);
            }
            Expr::IsNullOf { expr, negated } => {
                self.scalar(expr, out);
                out.push_str(if *negated { " IS NOT NULL" } else { " IS NULL" });
            }
            Expr::LikeOf {
                expr,
                pattern,
                case_insensitive,
                negated,
            } => {
                self.scalar(expr, out);
                out.push_str(&format!(
                    " {}{} {}",
                    if *negated { "NOT " } else { "" },
                    if *case_insensitive { "ILIKE" } else { "LIKE" },
                    quote(pattern, '\'')
                ));
            }
            Expr::ArrayOp { left, op, right } => {
                let hint = self.type_of(left).or_else(|| self.type_of(right));
                self.typed_scalar(left, hint.as_ref(), out);
                out.push_str(&format!(" {} ", op.symbol()));
                self.typed_scalar(right, hint.as_ref(), out);
            }
            Expr::AnyAll {
                left,
                op,
                all,
                array,
            } => {
                let element = self
                    .type_of(left)
                    .or_else(|| self.type_of(array).and_then(|t| t.element().cloned()));
                self.typed_scalar(left, element.as_ref(), out);
                out.push_str(&format!(
                    " {} {} (",
                    op_text(*op),
                    if *all { "ALL" } else { "ANY" }
                ));
                let hint = element.map(ColumnType::array_of);
                self.typed_scalar(array, hint.as_ref(), out);
                out.push(')');
            }
            Expr::Truth(s) => self.scalar(s, out),
            Expr::IsTruth {
                expr,
                value,
                negated,
            } => {
                out.push('(');
                self.expr(expr, out);
                out.push_str(&format!(
                    ") IS {}{}",
                    if *negated { "NOT " } else { "" },
                    match value {
                        Some(true) => "TRUE",
                        Some(false) => "FALSE",
                        None => "UNKNOWN",
                    }
                ));
            }
            Expr::InSubquery {
                columns,
                position,
                negated,
            } => {
                let names: Vec<String> = columns.iter().map(|c| self.column(*c)).collect();
                out.push_str(&format!(
                    "({}) {}IN ({})",
                    names.join(", "),
                    if *negated { "NOT " } else { "" },
                    (self.subquery)(*position)
                ));
            }
            Expr::Not(inner) => {
                out.push_str("NOT (");
                self.expr(inner, out);
                out.push(')');
            }
            Expr::And(es) | Expr::Or(es) => {
                let word = if matches!(e, Expr::And(_)) {
                    " AND "
                } else {
                    " OR "
                };
                for (i, x) in es.iter().enumerate() {
                    if i > 0 {
                        out.push_str(word);
                    }
                    out.push('(');
                    self.expr(x, out);
                    out.push(')');
                }
            }
        }
    }

    /// The type of `s`, where it has one of its own (a constant's comes from its context).
    fn type_of(&self, s: &Scalar) -> Option<ColumnType> {
        match s {
            Scalar::Column(c) => Some(self.columns[*c].1.clone()),
            Scalar::Const(_) => None,
            Scalar::Cast(_, _, ty)
            | Scalar::Call(_, _, ty)
            | Scalar::Arith(_, _, _, ty)
            | Scalar::Negate(_, ty) => Some(ty.clone()),
            Scalar::Concat(..) => Some(ColumnType::Text),
            Scalar::Condition(_) => Some(ColumnType::Bool),
            Scalar::Array(_, ty) => Some(ty.clone().array_of()),
        }
    }

    /// `s`, a constant printed as a value of `hint` when given.
    fn typed_scalar(&self, s: &Scalar, hint: Option<&ColumnType>, out: &mut String) {
        match (s, hint) {
            (Scalar::Const(Some(v)), Some(ty)) if ty.holds(v) => {
                out.push_str(&self.value(ty, Some(v)))
            }
            _ => self.scalar(s, out),
        }
    }

    fn scalar(&self, s: &Scalar, out: &mut String) {
        match s {
            Scalar::Column(c) => out.push_str(&self.column(*c)),
            Scalar::Const(None) => out.push_str("NULL"),
            Scalar::Const(Some(v)) => {
                let ty = value_type(v);
                out.push_str(&self.value(&ty, Some(v)))
            }
            Scalar::Cast(x, _, to) => {
                out.push('(');
                self.scalar(x, out);
                out.push_str(&format!(")::{}", type_name(to).unwrap_or_default()));
            }
            Scalar::Call(f, args, ty) => {
                out.push_str(f.name());
                out.push('(');
                let hint = (*f == Func::Coalesce).then_some(ty);
                for (i, a) in args.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.typed_scalar(a, hint, out);
                }
                out.push(')');
            }
            Scalar::Arith(op, a, b, _) => {
                out.push('(');
                self.scalar(a, out);
                out.push_str(&format!(" {} ", op.symbol()));
                self.scalar(b, out);
                out.push(')');
            }
            Scalar::Condition(e) => {
                out.push('(');
                self.expr(e, out);
                out.push(')');
            }
            Scalar::Negate(x, _) => {
                out.push_str("(-");
                self.scalar(x, out);
                out.push(')');
            }
            Scalar::Concat(a, b) => {
                out.push('(');
                self.scalar(a, out);
                out.push_str(" || ");
                self.scalar(b, out);
                out.push(')');
            }
            Scalar::Array(items, ty) => {
                out.push_str("ARRAY[");
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    self.typed_scalar(x, Some(ty), out);
                }
                out.push(']');
                // typed even when empty or all NULL
                if let Some(name) = type_name(&ty.clone().array_of()) {
                    out.push_str(&format!("::{name}"));
                }
            }
        }
    }
}

/// The SQL name of type `ty`: a built-in's name, a named enum's name double-quoted, an
/// array's its element's and `[]` (`None` for an enum known by its labels only, and arrays
/// of it).
fn type_name(ty: &ColumnType) -> Option<String> {
    match ty {
        ColumnType::Enum(e) => e.name.as_deref().map(|n| quote(n, '"')),
        ColumnType::Array(e) => type_name(e).map(|n| format!("{n}[]")),
        t => Some(t.name().into_owned()),
    }
}

/// The type a constant's value prints as (integers as int8: any i64 reads back).
fn value_type(v: &Value) -> ColumnType {
    match v {
        Value::Int(_) => ColumnType::Int8,
        Value::Float(_) => ColumnType::Float8,
        Value::Numeric(_) => ColumnType::Numeric,
        Value::Bool(_) => ColumnType::Bool,
        Value::Text(_) => ColumnType::Text,
        Value::Uuid(_) => ColumnType::Uuid,
        Value::Date(_) => ColumnType::Date,
        Value::Time(_) => ColumnType::Time,
        Value::Timestamp(_) => ColumnType::Timestamp,
        Value::Timestamptz(_) => ColumnType::Timestamptz,
        // printed through a hint where one is known (see `typed_scalar`)
        Value::Enum(_) => ColumnType::Int8,
        // an array constant's type is known from where it is (`typed_scalar`); else the
        // type of its first element
        Value::Array(items) => items
            .iter()
            .flatten()
            .next()
            .map_or(ColumnType::Text, value_type)
            .array_of(),
    }
}
