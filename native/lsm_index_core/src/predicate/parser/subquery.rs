//! Subqueries after the grammar: where they may be (a condition under AND/OR/NOT; nested ones
//! a positive top-level conjunct of their parent's WHERE) and their polarity, their typing
//! against the tested columns, and their normalised text.

use super::grammar::{Node, Spanned};
use super::scalar::{Ty, Typed};
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::error;
use crate::predicate::sql::{quote_identifier, to_sql_in};
use crate::predicate::subquery::{Polarity, SubqueryDef, Tables};
use crate::predicate::{ColumnType, Expr, Scalar};
use std::cell::RefCell;

type Defs = RefCell<Vec<Option<SubqueryDef>>>;

const CONDITION_ONLY: &str = "a construct the engine supports: a subquery as a condition under \
                              AND/OR/NOT only (not inside IS, a comparison, a function or an \
                              expression)";
const NESTED: &str = "a construct the engine supports: a subquery inside a subquery must be an \
                      `IN (SELECT …)` conjunct of its WHERE (not under OR or NOT, not NOT IN, \
                      not inside an expression)";

/// Checks where the subqueries of the shape's own clause `tree` are and records their
/// polarity.
pub(super) fn mark(tree: &Spanned, defs: &Defs) -> Result<()> {
    walk(tree, Some(false), CONDITION_ONLY, defs)
}

/// Checks that the subqueries of a subquery's WHERE `tree` are positive top-level conjuncts.
pub(super) fn mark_nested(tree: &Spanned, defs: &Defs) -> Result<()> {
    let mut conjuncts = Vec::new();
    top_conjuncts(tree, &mut conjuncts);
    for t in conjuncts {
        match &t.node {
            Node::Subquery {
                left,
                negated: false,
                ..
            } => walk(left, None, NESTED, defs)?,
            _ => walk(t, None, NESTED, defs)?,
        }
    }
    Ok(())
}

fn top_conjuncts<'t>(n: &'t Spanned, out: &mut Vec<&'t Spanned>) {
    match &n.node {
        Node::And(terms) => terms.iter().for_each(|t| top_conjuncts(t, out)),
        _ => out.push(n),
    }
}

/// `negative`: `Some(parity of the NOTs above)` where a subquery may be, else `None`.
fn walk(n: &Spanned, negative: Option<bool>, refusal: &str, defs: &Defs) -> Result<()> {
    match (&n.node, negative) {
        (Node::And(terms) | Node::Or(terms), _) => {
            for t in terms {
                walk(t, negative, refusal, defs)?;
            }
            Ok(())
        }
        (Node::Not(x), _) => walk(x, negative.map(|b| !b), refusal, defs),
        (
            Node::Subquery {
                left,
                position,
                negated,
            },
            Some(above),
        ) => {
            let negative = above != *negated;
            if negative && matches!(left.node, Node::Row(_)) {
                return Err(error(
                    n.at,
                    "a construct the engine supports: a row of columns tested by NOT IN \
                     (SELECT …) or under NOT is not supported yet",
                ));
            }
            if let Some(Some(def)) = defs.borrow_mut().get_mut(*position as usize) {
                def.polarity = if negative {
                    Polarity::Negative
                } else {
                    Polarity::Positive
                };
            }
            walk(left, None, refusal, defs)
        }
        (Node::Subquery { .. }, None) => Err(error(n.at, refusal)),
        (node, _) => {
            for c in children(node) {
                walk(c, None, refusal, defs)?;
            }
            Ok(())
        }
    }
}

/// The operands of `n`.
fn children(n: &Node) -> Vec<&Spanned> {
    match n {
        Node::Column(_) | Node::Lit(_) => vec![],
        Node::Neg(x) | Node::Pos(x) | Node::Cast(x, ..) | Node::Not(x) => vec![x],
        Node::IsNull(x, _) | Node::IsTruth(x, ..) => vec![x],
        Node::Call(_, xs) | Node::Array(xs) | Node::Row(xs) | Node::And(xs) | Node::Or(xs) => {
            xs.iter().collect()
        }
        Node::Arith(_, a, b)
        | Node::Concat(a, b)
        | Node::ArrayOp(_, a, b)
        | Node::Cmp(_, a, b)
        | Node::Distinct(a, b, _)
        | Node::AnyAll {
            left: a, array: b, ..
        }
        | Node::Like {
            expr: a,
            pattern: b,
            ..
        } => vec![a, b],
        Node::In { expr, list, .. } => std::iter::once(&**expr).chain(list).collect(),
        Node::Subquery { left, .. } => vec![left],
        Node::Between {
            expr, low, high, ..
        } => vec![expr, low, high],
    }
}

impl Parser<'_> {
    /// `left [NOT] IN (subquery position)` typed: columns on the left, as many as the
    /// subquery selects, each comparable with its selected column in one key family.
    pub(super) fn in_subquery(
        &self,
        left: &Spanned,
        position: u32,
        negated: bool,
        at: usize,
    ) -> Result<Expr> {
        let items = match &left.node {
            Node::Row(items) => items.iter().collect(),
            _ => vec![left],
        };
        let mut columns = Vec::with_capacity(items.len());
        for item in &items {
            match item.node {
                Node::Column(c) => columns.push(c),
                _ => {
                    return Err(error(
                        item.at,
                        "a construct the engine supports: a column before IN (SELECT …) \
                         (expressions on the left are not supported yet)",
                    ))
                }
            }
        }
        let defs = self.subqueries.borrow();
        let (Some(Some(def)), Some(scope)) = (defs.get(position as usize), &self.scope) else {
            return Err(error(at, "a subquery read before its test"));
        };
        let inner = scope.tables.columns(def.table).unwrap_or(&[]);
        if columns.len() != def.projection.len() {
            let which = if columns.len() < def.projection.len() {
                "many"
            } else {
                "few"
            };
            return Err(error(at, &format!("subquery has too {which} columns")));
        }
        for (&c, &p) in columns.iter().zip(&def.projection) {
            let (a, b) = (&self.columns[c].1, &inner[p].1);
            let typed = |ty: &ColumnType| Typed {
                s: Scalar::Column(c),
                ty: Ty::Known(ty.clone()),
                at,
            };
            if self.comparison_type(&typed(a), &typed(b)).is_err() {
                return Err(error(
                    at,
                    &format!(
                        "a subquery column comparable with {:?}: operator does not exist: {} = {}",
                        self.columns[c].0,
                        a.name(),
                        b.name()
                    ),
                ));
            }
            let family =
                a == b || (a.is_integer() && b.is_integer()) || (a.is_float() && b.is_float());
            if !family {
                return Err(error(
                    at,
                    &format!(
                        "a construct the engine supports: comparing {} with {} in IN (SELECT …) \
                         is not supported yet (a column and the selected column must both be \
                         integers, both floats, or of one type)",
                        a.name(),
                        b.name()
                    ),
                ));
            }
        }
        Ok(Expr::InSubquery {
            columns,
            position,
            negated,
        })
    }
}

/// The normalised text of a subquery: `SELECT "c", … FROM "schema"."table" [WHERE w]`, `w`
/// printed from its typed form (parameters inlined, nested subqueries written out).
pub(super) fn sql_of(
    tables: &dyn Tables,
    table: u32,
    projection: &[usize],
    inner: &Expr,
    defs: &Defs,
) -> String {
    let (schema, name) = tables.name(table).unwrap_or_default();
    let columns = tables.columns(table).unwrap_or(&[]);
    let list: Vec<String> = projection
        .iter()
        .filter_map(|&c| columns.get(c))
        .map(|(c, _)| quote_identifier(c))
        .collect();
    let mut out = format!(
        "SELECT {} FROM {}.{}",
        list.join(", "),
        quote_identifier(schema),
        quote_identifier(name)
    );
    if *inner != Expr::Const(Some(true)) {
        let defs = defs.borrow();
        let nested = |p: u32| {
            defs.get(p as usize)
                .and_then(Option::as_ref)
                .map_or_else(String::new, |d| d.sql.clone())
        };
        out.push_str(" WHERE ");
        out.push_str(&to_sql_in(inner, columns, &nested));
    }
    out
}
