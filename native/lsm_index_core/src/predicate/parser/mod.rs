//! Recursive-descent parser: tokens to a typed [`Expr`], checked against the table's columns.
//!
//! `grammar` reads tokens into an untyped syntax tree with PostgreSQL's precedence (the
//! conditions; `operand` the values below comparisons); `lower`
//! types it into conditions (a column against literals keeps the fast column nodes, with
//! `tail`'s BETWEEN/IS rewrites); `scalar` types expressions as PostgreSQL resolves their
//! operators; `literal` how a literal is typed by its column, `numeric` how a number compares
//! with an integer column when PostgreSQL would promote it (numeric, float8); `array` the
//! array constructor, operators, `ANY`/`ALL` and functions; `fold` which constants
//! PostgreSQL's planner computes, and so which of its errors it raises.
//!
//! Errors come in PostgreSQL's two kinds. What its parser raises (an unknown column, a type
//! without the operator, a string literal that is not a value of its type: `'abc'::int4`) is
//! raised wherever it is. What its planner raises while folding constants (`1/0`,
//! `40000::int2`, `1e400` read as a float8) is raised only where the planner looks: not after
//! a constant FALSE in an AND, a constant TRUE in an OR, the first non-NULL constant of a
//! COALESCE, nor in BETWEEN's upper bound when the lower one already decides
//! (`fold::Parser::skipping`).

mod array;
mod coerce;
mod fold;
mod grammar;
mod literal;
mod lower;
mod names;
mod numeric;
mod operand;
mod scalar;
mod select;
mod subquery;
mod tail;

use super::lexer::{error, tokens, Token};
use super::subquery::{Parsed, SubqueryDef, Tables};
use super::{CaseFolding, ColumnType, Expr, MAX_DEPTH, MAX_SQL_BYTES};
use crate::error::Result;
use std::cell::{Cell, RefCell};

/// Parses the WHERE clause `sql` of a table whose columns are `columns` (name, type), in
/// order: a column in the result is its index there. Unknown columns, literals that are not
/// values of their column's type, and anything outside the supported subset are errors
/// naming the byte offset and what was expected.
pub fn parse(sql: &str, columns: &[(String, ColumnType)]) -> Result<Expr> {
    parse_with(sql, columns, &[])
}

/// [`parse`] with the values of `$1`, `$2`, ... (`params[0]` is `$1`; text, typed by where
/// it is used, as an untyped string literal; `None` is NULL).
pub fn parse_with(
    sql: &str,
    columns: &[(String, ColumnType)],
    params: &[Option<String>],
) -> Result<Expr> {
    parse_in(sql, columns, params, CaseFolding::Unicode)
}

/// [`parse_with`] for a database whose `LC_CTYPE` folds case as `folding` says (`lower`,
/// `upper`, `ILIKE`). A subquery is refused: it needs the tables ([`parse_with_tables`]).
pub fn parse_in(
    sql: &str,
    columns: &[(String, ColumnType)],
    params: &[Option<String>],
    folding: CaseFolding,
) -> Result<Expr> {
    Syntax::read(sql, columns, folding)?.lower(columns, params, folding)
}

/// A WHERE clause read but not typed, its parameters unbound: what [`parse_in`] does
/// before it looks at their values, so clauses that differ only in them (a template's
/// shapes) are read once ([`Syntax::read`]) and typed each with its own
/// ([`Syntax::lower`]).
#[derive(Clone, Debug)]
pub struct Syntax {
    tokens: Vec<(usize, Token)>,
    end: usize,
    tree: grammar::Spanned,
}

impl Syntax {
    /// Reads `sql` over a table of `columns` in a database folding case as `folding` says
    /// (the errors of [`parse_in`] that do not depend on parameter values).
    pub fn read(
        sql: &str,
        columns: &[(String, ColumnType)],
        folding: CaseFolding,
    ) -> Result<Syntax> {
        let tokens = lex(sql)?;
        let subqueries = RefCell::new(Vec::new());
        let mut p = Parser::new(&tokens, sql.len(), columns, &[], folding, &subqueries);
        p.defer_params = true;
        let tree = p.tree()?;
        Ok(Syntax {
            end: sql.len(),
            tree,
            tokens,
        })
    }

    /// The clause typed with `params` as `$1`, `$2`, ... (see [`parse_in`]) against the
    /// `columns` and `folding` it was read with.
    pub fn lower(
        &self,
        columns: &[(String, ColumnType)],
        params: &[Option<String>],
        folding: CaseFolding,
    ) -> Result<Expr> {
        let mut tree = self.tree.clone();
        tree.bind(params)?;
        let subqueries = RefCell::new(Vec::new());
        let p = Parser::new(
            &self.tokens,
            self.end,
            columns,
            params,
            folding,
            &subqueries,
        );
        p.condition(tree)
    }
}

/// Parses the WHERE clause `sql` of table `table` of `tables` (see [`parse_in`]), where a
/// condition may test a subquery over any of `tables` (see [`super::subquery`]).
pub fn parse_with_tables(
    sql: &str,
    table: u32,
    tables: &dyn Tables,
    params: &[Option<String>],
    folding: CaseFolding,
) -> Result<Parsed> {
    let (Some(columns), Some((schema, name))) = (tables.columns(table), tables.name(table)) else {
        return Err(error(
            0,
            &format!("a table of the router, found table number {table}"),
        ));
    };
    let tokens = lex(sql)?;
    let subqueries = RefCell::new(Vec::new());
    let mut p = Parser::new(&tokens, sql.len(), columns, params, folding, &subqueries);
    p.scope = Some(names::Scope::table(tables, schema, name, None, columns));
    let expr = p.clause()?;
    let subqueries = subqueries
        .into_inner()
        .into_iter()
        .collect::<Option<Vec<SubqueryDef>>>()
        .ok_or_else(|| error(0, "a complete subquery"))?;
    Ok(Parsed { expr, subqueries })
}

/// The tokens of `sql`, its length checked.
fn lex(sql: &str) -> Result<Vec<(usize, Token)>> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(error(
            MAX_SQL_BYTES,
            &format!("a WHERE clause of at most {MAX_SQL_BYTES} bytes"),
        ));
    }
    tokens(sql)
}

struct Parser<'a> {
    tokens: &'a [(usize, Token)],
    at: usize,
    end: usize,
    columns: &'a [(String, ColumnType)],
    params: &'a [Option<String>],
    folding: CaseFolding,
    /// How many enclosing parts of the clause PostgreSQL's constant folding never reaches
    /// (see `fold`): inside one, a planning-time error is not raised.
    skipped: Cell<u32>,
    /// How many values a stand-in replaced there (see `fold`).
    stood_in: Cell<u32>,
    /// The table the clause is over and its router's tables (`None`: a single table, no
    /// subqueries), with the tables of the enclosing queries (see `names`).
    scope: Option<names::Scope<'a>>,
    /// The clause's subqueries by position (`None` while one is being read).
    subqueries: &'a RefCell<Vec<Option<SubqueryDef>>>,
    /// The subquery whose WHERE this is (`None`: the shape's own clause), and its level.
    parent: Option<(u32, usize)>,
    /// `$n` read as [`literal::Raw::Param`], bound later (see [`Syntax`]).
    defer_params: bool,
}

impl<'a> Parser<'a> {
    fn new(
        tokens: &'a [(usize, Token)],
        end: usize,
        columns: &'a [(String, ColumnType)],
        params: &'a [Option<String>],
        folding: CaseFolding,
        subqueries: &'a RefCell<Vec<Option<SubqueryDef>>>,
    ) -> Parser<'a> {
        Parser {
            tokens,
            at: 0,
            end,
            columns,
            params,
            folding,
            skipped: Cell::new(0),
            stood_in: Cell::new(0),
            scope: None,
            subqueries,
            parent: None,
            defer_params: false,
        }
    }

    /// The whole clause: a condition, then the end.
    fn clause(mut self) -> Result<Expr> {
        let tree = self.tree()?;
        self.condition(tree)
    }

    /// The whole clause's syntax tree: a condition, then the end.
    fn tree(&mut self) -> Result<grammar::Spanned> {
        if self.peek().is_none() {
            return Err(self.expected("a condition"));
        }
        let tree = self.or(0)?;
        match self.peek() {
            None => {
                subquery::mark(&tree, self.subqueries)?;
                Ok(tree)
            }
            Some(Token::Word(w)) if operand::unsupported(w).is_some() => Err(error(
                self.position(),
                &format!(
                    "a construct the engine supports: {} is not supported yet",
                    operand::unsupported(w).unwrap_or_default()
                ),
            )),
            Some(_) => Err(self.expected("AND, OR or the end of the clause")),
        }
    }
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.at).map_or(self.end, |(p, _)| *p)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).map(|(_, t)| t.clone());
        self.at += 1;
        t
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w == word)
    }

    fn eat_keyword(&mut self, word: &str) -> bool {
        let yes = self.keyword(word);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn expected(&self, what: &str) -> crate::error::Error {
        let found = match self.peek() {
            None => "the end of the clause".to_string(),
            Some(t) => describe(t),
        };
        error(self.position(), &format!("expected {what}, found {found}"))
    }

    fn deeper(&self, depth: usize) -> Result<usize> {
        if depth >= MAX_DEPTH {
            return Err(error(
                self.position(),
                &format!("at most {MAX_DEPTH} levels of parentheses and NOT"),
            ));
        }
        Ok(depth + 1)
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::Word(w) => format!("{w:?}"),
        Token::Quoted(q) => format!("\"{q}\""),
        Token::Integer(s) | Token::Decimal(s) => format!("number {s}"),
        Token::Str(s) => format!("string '{s}'"),
        Token::Op(op) => format!("'{op}'"),
        Token::Minus => "'-'".into(),
        Token::Plus => "'+'".into(),
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Comma => "','".into(),
        Token::LBracket => "'['".into(),
        Token::RBracket => "']'".into(),
        Token::Cast => "'::'".into(),
        Token::Arith(op) => format!("'{op}'"),
        Token::Param(n) => format!("${n}"),
        Token::Dot => "'.'".into(),
    }
}

/// One `OR` of `terms`, nested `OR`s merged; a single term as itself.
fn or_of(terms: Vec<Expr>) -> Expr {
    let mut out = Vec::with_capacity(terms.len());
    for t in terms {
        match t {
            Expr::Or(inner) => out.extend(inner),
            t => out.push(t),
        }
    }
    single_or(out, Expr::Or)
}

/// One `AND` of `terms`, nested `AND`s merged; a single term as itself.
fn and_of(terms: Vec<Expr>) -> Expr {
    let mut out = Vec::with_capacity(terms.len());
    for t in terms {
        match t {
            Expr::And(inner) => out.extend(inner),
            t => out.push(t),
        }
    }
    single_or(out, Expr::And)
}

fn single_or(mut terms: Vec<Expr>, make: fn(Vec<Expr>) -> Expr) -> Expr {
    match terms.len() {
        1 => terms.pop().unwrap_or(Expr::Const(None)),
        _ => make(terms),
    }
}
