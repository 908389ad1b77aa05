//! Operands, from the highest precedence below comparisons down: `||`, `+ -`, `* / %`, unary
//! signs, `::` casts, and primaries (literals, typed literals `date '2024-01-01'`, `$n`,
//! columns, function calls, `CAST`, parentheses). A word that starts a construct outside the
//! language is named in the error.

use super::grammar::{missing_param, spanned, Node, Spanned};
use super::literal::Raw;
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::{error, Token};
use crate::predicate::{ArithOp, ArrayOp, ColumnType, Func};

impl Parser<'_> {
    /// `x || y`, `x @> y`, `x <@ y`, `x && y` (one level, left to right, as PostgreSQL's
    /// other operators).
    pub(super) fn concat_level(&mut self, depth: usize) -> Result<Spanned> {
        let mut left = self.additive(depth)?;
        loop {
            let array_op = match self.peek() {
                Some(Token::Arith("||")) => None,
                Some(Token::Arith(op)) => match ArrayOp::from_symbol(op) {
                    Some(op) => Some(op),
                    None => return Ok(left),
                },
                _ => return Ok(left),
            };
            self.at += 1;
            let right = Box::new(self.additive(depth)?);
            let (at, left_box) = (left.at, Box::new(left));
            left = spanned(
                at,
                match array_op {
                    Some(op) => Node::ArrayOp(op, left_box, right),
                    None => Node::Concat(left_box, right),
                },
            );
        }
    }

    fn additive(&mut self, depth: usize) -> Result<Spanned> {
        let mut left = self.multiplicative(depth)?;
        loop {
            let op = match self.peek() {
                Some(Token::Plus) => ArithOp::Add,
                Some(Token::Minus) => ArithOp::Sub,
                _ => return Ok(left),
            };
            self.at += 1;
            let right = self.multiplicative(depth)?;
            let at = left.at;
            left = spanned(at, Node::Arith(op, Box::new(left), Box::new(right)));
        }
    }

    fn multiplicative(&mut self, depth: usize) -> Result<Spanned> {
        let mut left = self.unary(depth)?;
        loop {
            let op = match self.peek() {
                Some(Token::Arith("*")) => ArithOp::Mul,
                Some(Token::Arith("/")) => ArithOp::Div,
                Some(Token::Arith("%")) => ArithOp::Mod,
                _ => return Ok(left),
            };
            self.at += 1;
            let right = self.unary(depth)?;
            let at = left.at;
            left = spanned(at, Node::Arith(op, Box::new(left), Box::new(right)));
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Spanned> {
        let at = self.position();
        let negative = match self.peek() {
            Some(Token::Minus) => true,
            Some(Token::Plus) => false,
            _ => return self.postfix(depth),
        };
        let depth = self.deeper(depth)?;
        self.at += 1;
        let operand = Box::new(self.unary(depth)?);
        Ok(spanned(
            at,
            if negative {
                Node::Neg(operand)
            } else {
                Node::Pos(operand)
            },
        ))
    }

    /// A primary with its `::type` casts.
    fn postfix(&mut self, depth: usize) -> Result<Spanned> {
        let mut e = self.primary(depth)?;
        if self.peek() == Some(&Token::LBracket) {
            return Err(error(
                self.position(),
                "a construct the engine supports: array subscripts (a[1]) are not supported yet",
            ));
        }
        while self.peek() == Some(&Token::Cast) {
            self.at += 1;
            let (type_at, ty) = self.type_after_cast()?;
            let at = e.at;
            e = spanned(at, Node::Cast(Box::new(e), ty, type_at));
        }
        Ok(e)
    }

    /// A type name (after `::` or `AS`) and its position.
    fn type_after_cast(&mut self) -> Result<(usize, ColumnType)> {
        let at = self.position();
        let (name, quoted) = match self.next() {
            Some(Token::Word(w)) => (self.type_name(w), false),
            Some(Token::Quoted(q)) => (q, true),
            _ => {
                self.at -= 1;
                return Err(self.expected("a type name"));
            }
        };
        let ty = self
            .type_named(&name, quoted)
            .ok_or_else(|| error(at, &format!("a supported type, found {name:?}")))?;
        Ok((
            at,
            if self.array_bounds()? {
                ty.array_of()
            } else {
                ty
            },
        ))
    }

    /// The array decoration after a type name, if any: `[]`, `[n]` (repeated), or `ARRAY`
    /// and an optional `[n]` (bounds are not checked, as in PostgreSQL).
    fn array_bounds(&mut self) -> Result<bool> {
        let mut array = false;
        if self.eat_keyword("array") {
            array = true;
            if self.peek() != Some(&Token::LBracket) {
                return Ok(true);
            }
        }
        while self.peek() == Some(&Token::LBracket) {
            self.at += 1;
            if let Some(Token::Integer(_)) = self.peek() {
                self.at += 1;
            }
            if self.next() != Some(Token::RBracket) {
                self.at -= 1;
                return Err(self.expected("']' in an array type"));
            }
            array = true;
        }
        Ok(array)
    }

    /// The type `name` names: a built-in one (`int8`, `double precision`; double-quoted, by
    /// its catalog name exactly: `"int4"`), else a named enum of the table's columns
    /// (`mood`, `"Mood"`); an element type's name after `_` is its array type (`_int4`).
    fn type_named(&self, name: &str, quoted: bool) -> Option<ColumnType> {
        if let Some(element) = name.strip_prefix('_') {
            if let Some(t) = self.type_named(element, true) {
                return (!matches!(t, ColumnType::Array(_))).then(|| t.array_of());
            }
        }
        let builtin = if quoted {
            ColumnType::from_catalog_name(name)
        } else {
            ColumnType::from_name(name)
        };
        // a named enum of a column, or of an array column's elements
        builtin.or_else(|| {
            self.columns
                .iter()
                .find_map(|(_, t)| match t.element().unwrap_or(t) {
                    e @ ColumnType::Enum(named) if named.name.as_deref() == Some(name) => {
                        Some(e.clone())
                    }
                    _ => None,
                })
        })
    }

    /// SQL's typed literal `type 'text'` (`date '2024-01-01'`, `timestamp with time zone
    /// '…'`, `mood 'sad'`), if one starts here: a type name, then a string constant. It is
    /// `'text'::type` exactly, and PostgreSQL reads it so even where a column has the name
    /// (`date '…'`; `date = '…'` is the column). Anything else leaves the position as it was.
    fn typed_literal(&mut self) -> Option<Result<Spanned>> {
        let (at, start) = (self.position(), self.at);
        let (name, quoted) = match self.next()? {
            Token::Word(w) if !is_reserved(&w) && unsupported(&w).is_none() => {
                (self.type_name(w), false)
            }
            Token::Quoted(q) => (q, true),
            _ => {
                self.at = start;
                return None;
            }
        };
        let text_at = self.position();
        let Some(Token::Str(text)) = self.peek().cloned() else {
            self.at = start;
            return None;
        };
        self.at += 1;
        let Some(ty) = self.type_named(&name, quoted) else {
            return Some(Err(error(at, &format!("a supported type, found {name:?}"))));
        };
        // an invalid text is reported at the text, as PostgreSQL does
        let text = Box::new(spanned(text_at, Node::Lit(Raw::Str(text))));
        Some(Ok(spanned(at, Node::Cast(text, ty, text_at))))
    }

    fn primary(&mut self, depth: usize) -> Result<Spanned> {
        if let Some(typed) = self.typed_literal() {
            return typed;
        }
        let at = self.position();
        let lit = |raw| Ok(spanned(at, Node::Lit(raw)));
        match self.next() {
            Some(Token::Integer(s)) => lit(Raw::Integer(s)),
            Some(Token::Decimal(s)) => lit(Raw::Decimal(s)),
            Some(Token::Str(s)) => lit(Raw::Str(s)),
            Some(Token::Param(n)) if self.defer_params => lit(Raw::Param(n)),
            Some(Token::Param(n)) => match self.params.get(n as usize - 1) {
                Some(Some(text)) => lit(Raw::Str(text.clone())),
                Some(None) => lit(Raw::Null),
                None => Err(missing_param(at, n, self.params.len())),
            },
            Some(Token::LParen) => {
                let depth = self.deeper(depth)?;
                if self.keyword("select") {
                    return Err(error(
                        at,
                        "a construct the engine supports: a scalar subquery (SELECT …) is not \
                         supported: write col IN (SELECT …)",
                    ));
                }
                let e = self.or(depth)?;
                if self.peek() != Some(&Token::Comma) {
                    self.close_paren()?;
                    return Ok(e);
                }
                // a row: `(a, b)`
                let mut items = vec![e];
                while self.peek() == Some(&Token::Comma) {
                    self.at += 1;
                    items.push(self.or(depth)?);
                }
                self.close_paren()?;
                Ok(spanned(at, Node::Row(items)))
            }
            Some(Token::Word(w)) if w == "true" => lit(Raw::Bool(true)),
            Some(Token::Word(w)) if w == "false" => lit(Raw::Bool(false)),
            Some(Token::Word(w)) if w == "null" => lit(Raw::Null),
            Some(Token::Word(w)) if w == "cast" && self.peek() == Some(&Token::LParen) => {
                self.at += 1;
                let depth = self.deeper(depth)?;
                let e = self.or(depth)?;
                if !self.eat_keyword("as") {
                    return Err(self.expected("AS and a type in CAST"));
                }
                let (type_at, ty) = self.type_after_cast()?;
                self.close_paren()?;
                Ok(spanned(at, Node::Cast(Box::new(e), ty, type_at)))
            }
            Some(Token::Word(w)) if w == "array" && self.peek() == Some(&Token::LBracket) => {
                self.at += 1;
                let depth = self.deeper(depth)?;
                let mut items = Vec::new();
                if self.peek() != Some(&Token::RBracket) {
                    loop {
                        items.push(self.or(depth)?);
                        match self.next() {
                            Some(Token::Comma) => {}
                            Some(Token::RBracket) => break,
                            _ => {
                                self.at -= 1;
                                return Err(self.expected("',' or ']' in ARRAY[...]"));
                            }
                        }
                    }
                } else {
                    self.at += 1;
                }
                Ok(spanned(at, Node::Array(items)))
            }
            Some(Token::Word(w)) if w == "exists" && self.peek() == Some(&Token::LParen) => {
                Err(error(
                    at,
                    "a construct the engine supports: EXISTS (a subquery) is not supported: \
                     write col IN (SELECT …)",
                ))
            }
            Some(Token::Word(w)) if self.unsupported_ahead(&w).is_some() => Err(error(
                at,
                &format!(
                    "a construct the engine supports: {} is not supported yet",
                    self.unsupported_ahead(&w).unwrap_or_default()
                ),
            )),
            Some(Token::Word(w)) if self.peek() == Some(&Token::LParen) => {
                let func = Func::from_name(&w)
                    .map(|f| f.under(self.folding))
                    .ok_or_else(|| {
                        error(
                            at,
                            &format!(
                                "a supported function (lower, upper, length, char_length, abs, \
                             coalesce), found {w:?}"
                            ),
                        )
                    })?;
                self.at += 1;
                let depth = self.deeper(depth)?;
                let mut args = Vec::new();
                if self.peek() != Some(&Token::RParen) {
                    loop {
                        args.push(self.or(depth)?);
                        if self.peek() != Some(&Token::Comma) {
                            break;
                        }
                        self.at += 1;
                    }
                }
                self.close_paren()?;
                Ok(spanned(at, Node::Call(func, args)))
            }
            Some(Token::Word(w)) if !is_reserved(&w) => self.column_ref(at, w),
            Some(Token::Quoted(q)) => self.column_ref(at, q),
            _ => {
                self.at -= 1;
                Err(self.expected("a literal, a column, a function call, '(' or a condition"))
            }
        }
    }

    pub(super) fn close_paren(&mut self) -> Result<()> {
        match self.next() {
            Some(Token::RParen) => Ok(()),
            _ => {
                self.at -= 1;
                Err(self.expected("')'"))
            }
        }
    }
}

/// What a word names when it starts or continues a construct outside the supported language
/// (arrays, subqueries, ...), so the error says so instead of "unknown column".
pub(super) fn unsupported(word: &str) -> Option<&'static str> {
    Some(match word {
        "select" | "exists" => "a subquery",
        "any" | "some" | "all" => {
            "ANY/SOME/ALL other than after a comparison operator (x = ANY(array))"
        }
        "array" => "ARRAY other than ARRAY[...] (a subquery)",
        "similar" => "SIMILAR TO",
        "escape" => "LIKE ... ESCAPE",
        "interval" => "an interval",
        "case" => "CASE",
        _ => return None,
    })
}

impl Parser<'_> {
    /// [`unsupported`] for the word just read where a value starts: reserved words always,
    /// the others (which may name columns) before `(` or a string.
    fn unsupported_ahead(&self, word: &str) -> Option<&'static str> {
        let call_like = matches!(self.peek(), Some(Token::LParen | Token::Str(_)));
        match word {
            "select" | "case" | "any" | "some" | "all" | "array" => unsupported(word),
            "exists" | "interval" if call_like => unsupported(word),
            _ => None,
        }
    }
}

/// Words that cannot be unquoted column names.
pub(super) fn is_reserved(w: &str) -> bool {
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
            | "cast"
    )
}
