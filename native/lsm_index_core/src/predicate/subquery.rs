//! Subqueries in a WHERE clause: `x [NOT] IN (SELECT c FROM t [WHERE w])`, `(x, y) IN
//! (SELECT c, d FROM t …)`, and the synonyms `= ANY (SELECT …)` (IN) and `<> ALL (SELECT …)`
//! (NOT IN), parsed against the tables of a router ([`Tables`], by
//! [`parse_with_tables`](super::parse_with_tables)).
//!
//! ```text
//! project_id IN (SELECT id FROM projects WHERE owner_id = $1)
//!   expr:        InSubquery { columns: [project_id], position: 0, negated: false }
//!   subqueries:  [0] projects, projection [id], inner: owner_id = '7', positive,
//!                    sql: SELECT "id" FROM "public"."projects" WHERE "owner_id" = '7'::int8
//! ```
//!
//! Semantics are PostgreSQL's, NULLs included (see [`membership`](super::membership)). A
//! subquery is a condition under AND/OR/NOT only; its polarity is the parity of the NOTs above
//! it (`NOT IN` counting one). A subquery inside a subquery must be a positive top-level AND
//! conjunct of its parent's WHERE (a chain, at most [`MAX_SUBQUERY_DEPTH`] levels). Refused,
//! each at its byte offset: correlated subqueries, EXISTS, scalar subqueries, `ANY`/`ALL` with
//! another operator, JOIN, several FROM items, ORDER BY/LIMIT/…, expressions or `*` in the
//! select list, a row tested by NOT IN, and type pairs whose values do not share a key family
//! (int against numeric: not supported yet; int against text: no such operator).

use super::{ColumnType, Expr};

/// Deepest chain of subqueries accepted (a subquery in a subquery's WHERE is level 2).
pub const MAX_SUBQUERY_DEPTH: usize = 4;

/// The tables a clause may name, numbered as the router numbers them.
pub trait Tables {
    /// The number of table `schema.name` (`public` when the clause does not qualify it).
    fn find(&self, schema: &str, name: &str) -> Option<u32>;
    /// The schema and name of table `table`.
    fn name(&self, table: u32) -> Option<(&str, &str)>;
    /// The columns (name, type) of table `table`, in order.
    fn columns(&self, table: u32) -> Option<&[(String, ColumnType)]>;
}

/// A table of a router: its schema, name and columns.
#[derive(Clone, Debug, PartialEq)]
pub struct TableDef {
    /// The schema (`public`).
    pub schema: String,
    /// The table's name.
    pub name: String,
    /// Its columns (name, type), in order.
    pub columns: Vec<(String, ColumnType)>,
}

/// A list of tables is [`Tables`], numbered by position.
impl Tables for Vec<TableDef> {
    fn find(&self, schema: &str, name: &str) -> Option<u32> {
        self.iter()
            .position(|t| t.schema == schema && t.name == name)
            .map(|i| i as u32)
    }

    fn name(&self, table: u32) -> Option<(&str, &str)> {
        let t = self.get(table as usize)?;
        Some((&t.schema, &t.name))
    }

    fn columns(&self, table: u32) -> Option<&[(String, ColumnType)]> {
        self.get(table as usize).map(|t| t.columns.as_slice())
    }
}

/// Whether an occurrence sits under an even (positive) or odd (negative) number of NOTs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Polarity {
    /// `x IN (SELECT …)`, `NOT (x NOT IN (SELECT …))`: only `x ∈ V` can move its rows.
    Positive,
    /// `x NOT IN (SELECT …)`, `NOT (x IN (SELECT …))`: NULLs and emptiness matter too.
    Negative,
}

/// One subquery of a clause, at its position (textual order of its `SELECT`, nested ones
/// included).
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryDef {
    /// The table it reads ([`Tables`]' number).
    pub table: u32,
    /// The columns of `table` it selects, in order.
    pub projection: Vec<usize>,
    /// Its WHERE over `table`'s columns (`TRUE` when it has none); a nested subquery in it is
    /// an [`Expr::InSubquery`] naming that subquery's position.
    pub inner: Expr,
    /// The parity of the NOTs above its occurrence (nested ones: within their parent's WHERE,
    /// always positive).
    pub polarity: Polarity,
    /// The subquery whose WHERE holds it (`None`: it is in the shape's own WHERE).
    pub parent: Option<u32>,
    /// Its normalised text, parameters inlined as typed literals, nested subqueries written
    /// out: equal for equal subqueries however written (the key views are shared by), and a
    /// query PostgreSQL runs to get its result.
    pub sql: String,
}

/// A clause parsed against a router's tables: the condition and its subqueries.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The condition over the outer table's columns.
    pub expr: Expr,
    /// Its subqueries by position.
    pub subqueries: Vec<SubqueryDef>,
}
