//! Column names: `col`, `t.col`, `schema.t.col`, resolved as PostgreSQL does in the innermost
//! query first. A name only an enclosing query has makes the subquery correlated: refused.

use super::grammar::{spanned, Node, Spanned};
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::{error, Token};
use crate::predicate::subquery::Tables;
use crate::predicate::ColumnType;

/// One query level's table: how the clause may qualify its columns, and the columns.
#[derive(Clone)]
pub(super) struct Level<'a> {
    schema: String,
    name: String,
    /// `FROM t AS alias`: then only the alias qualifies (as in PostgreSQL).
    alias: Option<String>,
    columns: &'a [(String, ColumnType)],
}

impl Level<'_> {
    /// Whether `qualifier` (`t`, or `schema`, `t`) names this table.
    fn qualified_by(&self, qualifier: &[String]) -> bool {
        match (qualifier, &self.alias) {
            ([a], Some(alias)) => a == alias,
            ([t], None) => *t == self.name,
            ([s, t], None) => *s == self.schema && *t == self.name,
            _ => false,
        }
    }

    fn has(&self, column: &str) -> bool {
        self.columns.iter().any(|(c, _)| c == column)
    }
}

/// The tables a clause can name: the router's, this query's, and the enclosing queries'.
#[derive(Clone)]
pub(super) struct Scope<'a> {
    pub(super) tables: &'a dyn Tables,
    here: Level<'a>,
    /// The enclosing queries' tables, nearest last.
    outer: Vec<Level<'a>>,
}

impl<'a> Scope<'a> {
    /// The scope of a clause over table `schema.name` of `tables`.
    pub(super) fn table(
        tables: &'a dyn Tables,
        schema: &str,
        name: &str,
        alias: Option<String>,
        columns: &'a [(String, ColumnType)],
    ) -> Scope<'a> {
        Scope {
            tables,
            here: Level {
                schema: schema.to_string(),
                name: name.to_string(),
                alias,
                columns,
            },
            outer: Vec::new(),
        }
    }

    /// The scope of a subquery over `schema.name` inside this one.
    pub(super) fn inner(
        &self,
        schema: &str,
        name: &str,
        alias: Option<String>,
        columns: &'a [(String, ColumnType)],
    ) -> Scope<'a> {
        let mut s = Scope::table(self.tables, schema, name, alias, columns);
        s.outer = self.outer.clone();
        s.outer.push(self.here.clone());
        s
    }
}

/// The error for a name that reads an enclosing query's row.
pub(super) fn correlated(at: usize, name: &str) -> crate::error::Error {
    error(
        at,
        &format!(
            "a column of the subquery's table, found {name:?} of an enclosing query: a \
             correlated subquery (reading the outer row) is not supported"
        ),
    )
}

impl Parser<'_> {
    /// The column named by `first` and any `.part`s after it.
    pub(super) fn column_ref(&mut self, at: usize, first: String) -> Result<Spanned> {
        let mut parts = vec![first];
        while self.peek() == Some(&Token::Dot) {
            self.at += 1;
            match self.next() {
                Some(Token::Word(w)) => parts.push(w),
                Some(Token::Quoted(q)) => parts.push(q),
                _ => {
                    self.at -= 1;
                    return Err(self.expected("a name after '.'"));
                }
            }
        }
        if parts.len() > 3 {
            return Err(error(
                at,
                "a column name of at most three parts (schema.table.column)",
            ));
        }
        let Some((column, qualifier)) = parts.split_last() else {
            return Err(error(at, "a column name"));
        };
        let outer = self.scope.as_ref().map_or(&[][..], |s| s.outer.as_slice());
        if qualifier.is_empty() {
            if let Some(c) = self.columns.iter().position(|(c, _)| c == column) {
                return Ok(spanned(at, Node::Column(c)));
            }
            if outer.iter().any(|l| l.has(column)) {
                return Err(correlated(at, column));
            }
            return Err(error(
                at,
                &format!("a column of the table, found unknown column {column:?}"),
            ));
        }
        let written = parts.join(".");
        let Some(scope) = &self.scope else {
            return Err(error(
                at,
                &format!(
                    "a column of the table, found {written:?}: qualified names need a router \
                     over its tables"
                ),
            ));
        };
        if scope.here.qualified_by(qualifier) {
            return match self.columns.iter().position(|(c, _)| c == column) {
                Some(c) => Ok(spanned(at, Node::Column(c))),
                None => Err(error(
                    at,
                    &format!("a column of the table, found unknown column {written:?}"),
                )),
            };
        }
        if outer.iter().any(|l| l.qualified_by(qualifier)) {
            return Err(correlated(at, &written));
        }
        Err(error(
            at,
            &format!(
                "a table of the FROM clause before '.', found {:?} (missing FROM-clause entry)",
                qualifier.join(".")
            ),
        ))
    }
}
