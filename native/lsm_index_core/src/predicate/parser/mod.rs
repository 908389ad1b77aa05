//! Recursive-descent parser: tokens to a typed [`Expr`], checked against the table's columns.
//!
//! This file holds the grammar down to a predicate; `tail` what follows a column (comparison,
//! IN, LIKE, BETWEEN, IS), `literal` how a literal is read and typed, `numeric` how a number
//! compares with an integer column when PostgreSQL would promote it (numeric, float8).

mod literal;
mod numeric;
mod tail;

use super::lexer::{error, tokens, Token};
use super::{CmpOp, ColumnType, Expr, MAX_DEPTH, MAX_SQL_BYTES};
use crate::error::Result;
use literal::Raw;

/// Parses the WHERE clause `sql` of a table whose columns are `columns` (name, type), in
/// order: a column in the result is its index there. Unknown columns, literals that are not
/// values of their column's type, and anything outside the supported subset are errors
/// naming the byte offset and what was expected.
pub fn parse(sql: &str, columns: &[(String, ColumnType)]) -> Result<Expr> {
    if sql.len() > MAX_SQL_BYTES {
        return Err(error(
            MAX_SQL_BYTES,
            &format!("a WHERE clause of at most {MAX_SQL_BYTES} bytes"),
        ));
    }
    let mut p = Parser {
        tokens: tokens(sql)?,
        at: 0,
        end: sql.len(),
        columns,
    };
    let expr = p.or(0)?;
    match p.peek() {
        None => Ok(expr),
        Some(_) => Err(p.expected("AND, OR or the end of the clause")),
    }
}

struct Parser<'a> {
    tokens: Vec<(usize, Token)>,
    at: usize,
    end: usize,
    columns: &'a [(String, ColumnType)],
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

    fn or(&mut self, depth: usize) -> Result<Expr> {
        let mut terms = vec![self.and(depth)?];
        while self.eat_keyword("or") {
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            or_of(terms)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Expr> {
        let mut terms = vec![self.not(depth)?];
        while self.eat_keyword("and") {
            terms.push(self.not(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            and_of(terms)
        })
    }

    fn not(&mut self, depth: usize) -> Result<Expr> {
        if self.keyword("not") {
            let depth = self.deeper(depth)?;
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.not(depth)?)));
        }
        self.predicate(depth)
    }

    fn predicate(&mut self, depth: usize) -> Result<Expr> {
        match self.peek() {
            Some(Token::LParen) => {
                let depth = self.deeper(depth)?;
                self.at += 1;
                let e = self.or(depth)?;
                match self.next() {
                    Some(Token::RParen) => Ok(e),
                    _ => {
                        self.at -= 1;
                        Err(self.expected("')'"))
                    }
                }
            }
            Some(Token::Word(_) | Token::Quoted(_)) if self.column_ahead() => {
                let column = self.column()?;
                self.column_tail(column)
            }
            None => Err(self.expected("a condition")),
            _ => {
                // a literal: a constant condition, or the left side of a comparison
                let at = self.position();
                let literal = self.raw_literal()?;
                let Some(Token::Op(op)) = self.peek().cloned() else {
                    return match (&literal.raw, &literal.cast) {
                        (Raw::Bool(b), None) => Ok(Expr::Const(Some(*b))),
                        (Raw::Null, None) => Ok(Expr::Const(None)),
                        _ => Err(self.expected("a comparison operator after the literal")),
                    };
                };
                self.at += 1;
                let column = self.column()?;
                self.comparison(column, cmp_op(op).flipped(), literal, at)
            }
        }
    }

    /// Whether the next token names a column (not a literal keyword).
    fn column_ahead(&self) -> bool {
        match self.peek() {
            Some(Token::Quoted(_)) => true,
            Some(Token::Word(w)) => !matches!(w.as_str(), "true" | "false" | "null"),
            _ => false,
        }
    }

    fn column(&mut self) -> Result<usize> {
        let at = self.position();
        let name = match self.next() {
            Some(Token::Word(w)) if !is_reserved(&w) => w,
            Some(Token::Quoted(q)) => q,
            _ => {
                self.at -= 1;
                return Err(self.expected("a column name"));
            }
        };
        self.columns
            .iter()
            .position(|(c, _)| *c == name)
            .ok_or_else(|| {
                error(
                    at,
                    &format!("a column of the table, found unknown column {name:?}"),
                )
            })
    }
}

fn cmp_op(op: &str) -> CmpOp {
    match op {
        "=" => CmpOp::Eq,
        "<>" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}

/// Words that cannot be unquoted column names.
fn is_reserved(w: &str) -> bool {
    matches!(
        w,
        "and"
            | "or"
            | "not"
            | "in"
            | "is"
            | "null"
            | "true"
            | "false"
            | "like"
            | "ilike"
            | "between"
    )
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
        Token::Cast => "'::'".into(),
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
