//! Shape predicates: the subset of SQL WHERE clauses that shapes use, parsed against a table's
//! column types into a typed expression tree (the ShapeRouter compiles it next). Values of
//! every type, one-dimensional arrays of them included (`array`), are read from PostgreSQL's
//! text output.
//!
//! ```text
//! text ─▶ lexer (tokens with byte offsets) ─▶ parser (precedence: OR < AND < NOT < predicate)
//!      ─▶ Expr, with every literal already a value of its column's type
//! ```
//!
//! Hostile input is bounded: at most [`MAX_SQL_BYTES`] of text and [`MAX_DEPTH`] levels of
//! nesting (parentheses and `NOT`), so no input can exhaust the stack. Every error names the
//! byte offset where it was found and what was expected there.

mod arith;
pub mod array;
mod column;
pub mod compile;
mod datetime;
mod decimal;
pub mod eval;
mod lexer;
pub mod like_plan;
pub mod membership;
pub mod order_key;
pub mod ordered;
mod parser;
mod plan;
mod program;
pub(crate) use program::HashWriter;
pub mod scalar;
pub mod sql;
pub mod subquery;
mod text;

pub use arith::{ArithOp, EvalError};
pub use array::ArrayOp;
pub use column::{ColumnType, EnumType, Value};
pub use decimal::Numeric;
pub use eval::eval;
pub use membership::{eval_with, Member, Membership};
pub use parser::{parse, parse_in, parse_with, parse_with_tables, Syntax};
pub use scalar::{Func, Scalar};
pub use subquery::{Parsed, Polarity, SubqueryDef, TableDef, Tables};
pub use text::uuid_text;

/// Longest WHERE text accepted, in bytes (an `IN` list of ~100k values fits).
pub const MAX_SQL_BYTES: usize = 1 << 20;

/// Deepest nesting of parentheses and `NOT`s accepted.
pub const MAX_DEPTH: usize = 64;

/// How `lower`, `upper` and `ILIKE` fold case: as PostgreSQL does under the database's
/// `LC_CTYPE`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum CaseFolding {
    /// A UTF-8 `LC_CTYPE` (`C.UTF-8`, `en_US.UTF-8`, ...): every character, one to one.
    #[default]
    Unicode,
    /// `LC_CTYPE=C`: ASCII letters only.
    Ascii,
}

impl CaseFolding {
    /// Its option name: `utf8` or `c`.
    pub fn name(self) -> &'static str {
        match self {
            CaseFolding::Unicode => "utf8",
            CaseFolding::Ascii => "c",
        }
    }

    /// The folding named `name` (`utf8`, `c`).
    pub fn from_name(name: &str) -> Option<CaseFolding> {
        match name {
            "utf8" => Some(CaseFolding::Unicode),
            "c" => Some(CaseFolding::Ascii),
            _ => None,
        }
    }
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `<>` or `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

impl CmpOp {
    /// Whether `a op b` holds when `a` compares to `b` as `ord`.
    pub fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq => ord == Equal,
            CmpOp::Ne => ord != Equal,
            CmpOp::Lt => ord == Less,
            CmpOp::Le => ord != Greater,
            CmpOp::Gt => ord == Greater,
            CmpOp::Ge => ord != Less,
        }
    }

    /// The operator with its operands swapped (`5 < a` is `a > 5`).
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            other => other,
        }
    }
}

/// A parsed WHERE clause. Columns are indexes into the table's column list; a literal is a
/// value of its column's type, or `None` for SQL `NULL`.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `TRUE`, `FALSE` or `NULL` as a whole condition.
    Const(Option<bool>),
    /// `column op literal` (a literal on the left is moved right, the operator flipped).
    Cmp {
        /// The column.
        column: usize,
        /// The operator.
        op: CmpOp,
        /// The literal.
        value: Option<Value>,
    },
    /// `column [NOT] IN (literal, ...)`.
    In {
        /// The column.
        column: usize,
        /// The list.
        values: Vec<Option<Value>>,
        /// `NOT IN`.
        negated: bool,
    },
    /// `column IS [NOT] NULL`.
    IsNull {
        /// The column.
        column: usize,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `column [NOT] LIKE | ILIKE 'pattern'` (`%` any run, `_` one character, `\` escapes).
    Like {
        /// The (text) column.
        column: usize,
        /// The pattern.
        pattern: String,
        /// `ILIKE`.
        case_insensitive: bool,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `left op right` over expressions (a column against a literal is [`Expr::Cmp`]); both
    /// sides evaluate to one type.
    Compare {
        /// The left side.
        left: Scalar,
        /// The operator.
        op: CmpOp,
        /// The right side.
        right: Scalar,
    },
    /// `expr IS [NOT] NULL` over an expression.
    IsNullOf {
        /// The expression.
        expr: Scalar,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `expr [NOT] LIKE | ILIKE 'pattern'` over a text expression.
    LikeOf {
        /// The (text) expression.
        expr: Scalar,
        /// The pattern.
        pattern: String,
        /// `ILIKE`.
        case_insensitive: bool,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// `left op right` on two arrays of one type (`@>`, `<@`, `&&`; a constant on the right):
    /// unknown when either is NULL.
    ArrayOp {
        /// The left array.
        left: Scalar,
        /// The operator.
        op: ArrayOp,
        /// The right array.
        right: Scalar,
    },
    /// `left op ANY | SOME | ALL (array)`, the left side and the array's elements of one
    /// type (see [`array::any_all`]). `column = ANY(constant)` is [`Expr::In`].
    AnyAll {
        /// The value compared with each element.
        left: Scalar,
        /// The operator.
        op: CmpOp,
        /// `ALL` (else `ANY`/`SOME`).
        all: bool,
        /// The array.
        array: Scalar,
    },
    /// A boolean expression as a condition (`coalesce(flag, false)`).
    Truth(Scalar),
    /// `e IS [NOT] TRUE | FALSE | UNKNOWN` (`value`: `None` for UNKNOWN): never unknown.
    IsTruth {
        /// The condition tested.
        expr: Box<Expr>,
        /// The truth value it is compared with.
        value: Option<bool>,
        /// `IS NOT`.
        negated: bool,
    },
    /// `columns [NOT] IN (SELECT …)` (or `= ANY (SELECT …)`, `<> ALL (SELECT …)`): a test of
    /// the row's value (a row of values for several columns) against the result of the
    /// shape's subquery `position` (see [`subquery`]; evaluated by [`eval_with`]).
    InSubquery {
        /// The columns tested, in the order of the subquery's select list.
        columns: Vec<usize>,
        /// The subquery's position among the shape's subqueries (textual order).
        position: u32,
        /// `NOT IN` (`<> ALL`).
        negated: bool,
    },
    /// `NOT e`.
    Not(Box<Expr>),
    /// `e AND e AND ...`.
    And(Vec<Expr>),
    /// `e OR e OR ...`.
    Or(Vec<Expr>),
}

impl Expr {
    /// Calls `out` with every column the condition reads (a column may come more than once).
    pub fn columns(&self, out: &mut impl FnMut(usize)) {
        match self {
            Expr::Const(_) => {}
            Expr::Cmp { column, .. }
            | Expr::In { column, .. }
            | Expr::IsNull { column, .. }
            | Expr::Like { column, .. } => out(*column),
            Expr::InSubquery { columns, .. } => columns.iter().for_each(|c| out(*c)),
            Expr::Compare { left, right, .. }
            | Expr::ArrayOp { left, right, .. }
            | Expr::AnyAll {
                left, array: right, ..
            } => {
                left.columns(out);
                right.columns(out);
            }
            Expr::IsNullOf { expr, .. } | Expr::LikeOf { expr, .. } | Expr::Truth(expr) => {
                expr.columns(out)
            }
            Expr::Not(inner) | Expr::IsTruth { expr: inner, .. } => inner.columns(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.columns(out)),
        }
    }

    /// Renumbers every column `c` it reads as `to(c)` (the same clause over a row of other
    /// columns, e.g. only those it reads).
    pub fn map_columns(&mut self, to: &impl Fn(usize) -> usize) {
        match self {
            Expr::Const(_) => {}
            Expr::Cmp { column, .. }
            | Expr::In { column, .. }
            | Expr::IsNull { column, .. }
            | Expr::Like { column, .. } => *column = to(*column),
            Expr::InSubquery { columns, .. } => columns.iter_mut().for_each(|c| *c = to(*c)),
            Expr::Compare { left, right, .. }
            | Expr::ArrayOp { left, right, .. }
            | Expr::AnyAll {
                left, array: right, ..
            } => {
                left.map_columns(to);
                right.map_columns(to);
            }
            Expr::IsNullOf { expr, .. } | Expr::LikeOf { expr, .. } | Expr::Truth(expr) => {
                expr.map_columns(to)
            }
            Expr::Not(inner) | Expr::IsTruth { expr: inner, .. } => inner.map_columns(to),
            Expr::And(es) | Expr::Or(es) => es.iter_mut().for_each(|e| e.map_columns(to)),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::ColumnType;

    /// The table the unit tests of this module parse against: `a` int8, `s` text, `f`
    /// float8, `b` bool.
    pub(crate) fn columns() -> Vec<(String, ColumnType)> {
        vec![
            ("a".into(), ColumnType::Int8),
            ("s".into(), ColumnType::Text),
            ("f".into(), ColumnType::Float8),
            ("b".into(), ColumnType::Bool),
        ]
    }
}
