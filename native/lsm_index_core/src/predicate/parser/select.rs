//! A subquery's text: `SELECT [DISTINCT] col, … FROM [schema.]table [[AS] alias] [WHERE w]`,
//! read into the clause's list of subqueries at the next position. Its WHERE is parsed and
//! typed right away by a parser over the inner table's columns (whose scope knows the
//! enclosing tables, to refuse correlation). Everything else SQL allows here is refused by
//! name at its offset.

use super::grammar::{spanned, Node, Spanned};
use super::operand::is_reserved;
use super::{subquery, Parser};
use crate::error::Result;
use crate::predicate::lexer::{error, Token};
use crate::predicate::subquery::{Polarity, SubqueryDef, MAX_SUBQUERY_DEPTH};
use crate::predicate::{CmpOp, Expr};

/// Where a subquery is refused when the clause has no tables.
const NEEDS_TABLES: &str = "a construct the engine supports: a subquery needs a router over \
                            its tables: ShapeRouter.new(tenant, %{table => columns}, opts)";

/// Clauses of a SELECT outside the language, by the word that starts them.
fn refused_clause(word: &str) -> Option<&'static str> {
    Some(match word {
        "join" | "inner" | "left" | "right" | "full" | "cross" | "natural" => "JOIN",
        "order" => "ORDER BY",
        "limit" | "fetch" => "LIMIT",
        "offset" => "OFFSET",
        "group" => "GROUP BY",
        "having" => "HAVING",
        "union" | "intersect" | "except" => "UNION, INTERSECT or EXCEPT",
        "window" => "WINDOW",
        "for" => "FOR UPDATE",
        "tablesample" => "TABLESAMPLE",
        _ => return None,
    })
}

impl Parser<'_> {
    /// `op ANY | SOME | ALL (SELECT …)` after `op ANY (`: `= ANY` is IN, `<> ALL` NOT IN.
    pub(super) fn quantified_subquery(
        &mut self,
        left: Spanned,
        (op_at, op): (usize, CmpOp),
        all: bool,
        depth: usize,
    ) -> Result<Spanned> {
        let negated = match (op, all) {
            (CmpOp::Eq, false) => false,
            (CmpOp::Ne, true) => true,
            _ => {
                let quantifier = if all { "ALL" } else { "ANY" };
                return Err(error(
                    op_at,
                    &format!(
                        "a construct the engine supports: {} {quantifier} (SELECT …) is not \
                         supported: only = ANY (IN) and <> ALL (NOT IN)",
                        super::super::sql::op_text(op)
                    ),
                ));
            }
        };
        let position = self.select(depth)?;
        self.close_paren()?;
        let left = Box::new(left);
        Ok(spanned(
            op_at,
            Node::Subquery {
                left,
                position,
                negated,
            },
        ))
    }

    /// The subquery starting at `SELECT`, read up to its closing parenthesis: its position.
    pub(super) fn select(&mut self, depth: usize) -> Result<u32> {
        let select_at = self.position();
        let Some(scope) = self.scope.clone() else {
            return Err(error(select_at, NEEDS_TABLES));
        };
        let level = self.parent.map_or(1, |(_, l)| l + 1);
        if level > MAX_SUBQUERY_DEPTH {
            return Err(error(
                select_at,
                &format!("at most {MAX_SUBQUERY_DEPTH} levels of nested subqueries"),
            ));
        }
        self.at += 1;
        if self.eat_keyword("distinct") {
            if self.keyword("on") {
                return Err(self.refused("DISTINCT ON"));
            }
        } else {
            self.eat_keyword("all");
        }
        // the select list: column names, resolved once the table is known
        let mut items = Vec::new();
        loop {
            let start = self.at;
            match self.next() {
                Some(Token::Word(w))
                    if w != "from" && refused_clause(&w).is_none() && !is_reserved(&w) => {}
                Some(Token::Quoted(_)) => {}
                _ => {
                    self.at -= 1;
                    return Err(self.select_list_error());
                }
            }
            while self.peek() == Some(&Token::Dot) {
                self.at += 2;
            }
            items.push(start);
            if self.peek() == Some(&Token::Comma) {
                self.at += 1;
            } else if !self.keyword("from") {
                return Err(self.select_list_error());
            } else {
                break;
            }
        }
        self.at += 1;
        // FROM [schema.]table [[AS] alias]
        let table_at = self.position();
        let mut parts = Vec::new();
        loop {
            match self.next() {
                Some(Token::Word(w)) => parts.push(w),
                Some(Token::Quoted(q)) => parts.push(q),
                _ => {
                    self.at -= 1;
                    return Err(self.expected("a table name after FROM"));
                }
            }
            if self.peek() != Some(&Token::Dot) {
                break;
            }
            self.at += 1;
        }
        let (schema, name) = match parts.as_slice() {
            [t] => ("public", t.as_str()),
            [s, t] => (s.as_str(), t.as_str()),
            _ => {
                return Err(error(
                    table_at,
                    "a table name of at most two parts (schema.table)",
                ))
            }
        };
        let tables = scope.tables;
        let table = tables.find(schema, name).ok_or_else(|| {
            error(
                table_at,
                &format!("a table of the router, found unknown table \"{schema}\".\"{name}\""),
            )
        })?;
        let columns = tables
            .columns(table)
            .ok_or_else(|| error(table_at, "a table with columns"))?;
        let alias = self.alias()?;
        if self.peek() == Some(&Token::Comma) {
            return Err(self.refused("several FROM items"));
        }
        // its position comes before any nested subquery's (textual order of the SELECTs)
        let position = {
            let mut defs = self.subqueries.borrow_mut();
            defs.push(None);
            (defs.len() - 1) as u32
        };
        let mut inner = Parser::new(
            self.tokens,
            self.end,
            columns,
            self.params,
            self.folding,
            self.subqueries,
        );
        inner.scope = Some(scope.inner(schema, name, alias, columns));
        inner.parent = Some((position, level));
        let mut projection = Vec::with_capacity(items.len());
        for start in items {
            inner.at = start;
            let at = inner.position();
            let first = match inner.next() {
                Some(Token::Word(w)) | Some(Token::Quoted(w)) => w,
                _ => return Err(error(at, "a column name")),
            };
            match inner.column_ref(at, first)?.node {
                Node::Column(c) => projection.push(c),
                _ => return Err(error(at, "a column name")),
            }
        }
        let expr = if self.eat_keyword("where") {
            inner.at = self.at;
            let tree = inner.or(self.deeper(depth)?)?;
            self.at = inner.at;
            subquery::mark_nested(&tree, self.subqueries)?;
            inner.condition(tree)?
        } else {
            Expr::Const(Some(true))
        };
        if let Some(Token::Word(w)) = self.peek() {
            if let Some(what) = refused_clause(w) {
                return Err(self.refused(what));
            }
        }
        let sql = subquery::sql_of(tables, table, &projection, &expr, self.subqueries);
        self.subqueries.borrow_mut()[position as usize] = Some(SubqueryDef {
            table,
            projection,
            inner: expr,
            polarity: Polarity::Positive,
            parent: self.parent.map(|(p, _)| p),
            sql,
        });
        Ok(position)
    }

    /// `[AS] alias` after a table name, if there is one.
    fn alias(&mut self) -> Result<Option<String>> {
        let explicit = self.eat_keyword("as");
        match self.peek().cloned() {
            Some(Token::Quoted(q)) => {
                self.at += 1;
                Ok(Some(q))
            }
            Some(Token::Word(w))
                if !matches!(w.as_str(), "where" | "on" | "using")
                    && refused_clause(&w).is_none() =>
            {
                self.at += 1;
                Ok(Some(w))
            }
            _ if explicit => Err(self.expected("an alias after AS")),
            _ => Ok(None),
        }
    }

    /// The refusal of `what` (a part of SELECT outside the language) where it starts.
    fn refused(&self, what: &str) -> crate::error::Error {
        error(
            self.position(),
            &format!("a construct the engine supports: {what} in a subquery is not supported"),
        )
    }

    fn select_list_error(&self) -> crate::error::Error {
        let what = match self.peek() {
            Some(Token::Arith("*")) => "'*'",
            None => "the end of the clause",
            _ => "an expression",
        };
        error(
            self.position(),
            &format!(
                "a subquery's select list of column names, found {what}: name its columns \
                 (expressions and * are not supported)"
            ),
        )
    }
}
