//! The grammar: tokens to an untyped syntax tree ([`Node`]) with PostgreSQL's operator
//! precedence, lowest first:
//!
//! ```text
//! OR < AND < NOT < IS < comparison < BETWEEN IN LIKE ILIKE < || < + - < * / % < unary - + < ::
//! ```
//!
//! Typing happens afterwards (`lower`), so a parenthesis can hold a condition or a value
//! alike. `$n` is replaced by its parameter as an untyped string (or NULL) right here.

use super::literal::Raw;
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::{error, Token};
use crate::predicate::{ArithOp, CmpOp, ColumnType, Func};

/// A node of the syntax tree with the byte offset it starts at.
#[derive(Clone, Debug)]
pub(super) struct Spanned {
    pub(super) at: usize,
    pub(super) node: Node,
}

/// The untyped syntax tree.
#[derive(Clone, Debug)]
pub(super) enum Node {
    Column(usize),
    Lit(Raw),
    Neg(Box<Spanned>),
    Pos(Box<Spanned>),
    /// The operand, the type, and where the type name is.
    Cast(Box<Spanned>, ColumnType, usize),
    Call(Func, Vec<Spanned>),
    Arith(ArithOp, Box<Spanned>, Box<Spanned>),
    Concat(Box<Spanned>, Box<Spanned>),
    Cmp(CmpOp, Box<Spanned>, Box<Spanned>),
    In {
        expr: Box<Spanned>,
        list: Vec<Spanned>,
        negated: bool,
    },
    Like {
        expr: Box<Spanned>,
        pattern: Box<Spanned>,
        case_insensitive: bool,
        negated: bool,
    },
    Between {
        expr: Box<Spanned>,
        low: Box<Spanned>,
        high: Box<Spanned>,
        symmetric: bool,
        negated: bool,
    },
    IsNull(Box<Spanned>, bool),
    /// `IS [NOT] TRUE | FALSE | UNKNOWN` (`None`: UNKNOWN).
    IsTruth(Box<Spanned>, Option<bool>, bool),
    /// `a IS [NOT] DISTINCT FROM b` (`true`: IS NOT DISTINCT).
    Distinct(Box<Spanned>, Box<Spanned>, bool),
    Not(Box<Spanned>),
    And(Vec<Spanned>),
    Or(Vec<Spanned>),
}

fn spanned(at: usize, node: Node) -> Spanned {
    Spanned { at, node }
}

impl Parser<'_> {
    pub(super) fn or(&mut self, depth: usize) -> Result<Spanned> {
        let at = self.position();
        let mut terms = vec![self.and(depth)?];
        while self.eat_keyword("or") {
            terms.push(self.and(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            spanned(at, Node::Or(terms))
        })
    }

    fn and(&mut self, depth: usize) -> Result<Spanned> {
        let at = self.position();
        let mut terms = vec![self.not(depth)?];
        while self.eat_keyword("and") {
            terms.push(self.not(depth)?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            spanned(at, Node::And(terms))
        })
    }

    fn not(&mut self, depth: usize) -> Result<Spanned> {
        if self.keyword("not") {
            let at = self.position();
            let depth = self.deeper(depth)?;
            self.at += 1;
            return Ok(spanned(at, Node::Not(Box::new(self.not(depth)?))));
        }
        self.is(depth)
    }

    /// `x IS [NOT] NULL | TRUE | FALSE | UNKNOWN | DISTINCT FROM y`, repeatable.
    fn is(&mut self, depth: usize) -> Result<Spanned> {
        let mut left = self.comparison_level(depth)?;
        let at = left.at;
        while self.eat_keyword("is") {
            let negated = self.eat_keyword("not");
            let operand = Box::new(left);
            let node = if self.eat_keyword("null") {
                Node::IsNull(operand, negated)
            } else if self.eat_keyword("true") {
                Node::IsTruth(operand, Some(true), negated)
            } else if self.eat_keyword("false") {
                Node::IsTruth(operand, Some(false), negated)
            } else if self.eat_keyword("unknown") {
                Node::IsTruth(operand, None, negated)
            } else if self.eat_keyword("distinct") {
                if !self.eat_keyword("from") {
                    return Err(self.expected("FROM after IS DISTINCT"));
                }
                let other = self.comparison_level(depth)?;
                Node::Distinct(operand, Box::new(other), negated)
            } else {
                return Err(self.expected("NULL, DISTINCT FROM, TRUE, FALSE or UNKNOWN after IS"));
            };
            left = spanned(at, node);
        }
        Ok(left)
    }

    /// `x op y` for one comparison operator (not associative).
    fn comparison_level(&mut self, depth: usize) -> Result<Spanned> {
        let left = self.predicate_level(depth)?;
        let Some(Token::Op(op)) = self.peek().cloned() else {
            return Ok(left);
        };
        self.at += 1;
        let right = self.predicate_level(depth)?;
        if matches!(self.peek(), Some(Token::Op(_))) {
            return Err(self.expected("AND, OR or ')' (comparisons do not chain)"));
        }
        let at = left.at;
        Ok(spanned(
            at,
            Node::Cmp(cmp_op(op), Box::new(left), Box::new(right)),
        ))
    }

    /// `x [NOT] IN (...)`, `x [NOT] LIKE | ILIKE p`, `x [NOT] BETWEEN [SYMMETRIC] a AND b`.
    fn predicate_level(&mut self, depth: usize) -> Result<Spanned> {
        let left = self.concat_level(depth)?;
        // NOT after an operand: only NOT IN, NOT LIKE, NOT ILIKE, NOT BETWEEN
        let negated = self.keyword("not");
        if negated {
            self.at += 1;
            if !matches!(self.peek(), Some(Token::Word(w)) if matches!(w.as_str(), "in" | "like" | "ilike" | "between"))
            {
                return Err(self.expected("IN, LIKE, ILIKE or BETWEEN after NOT"));
            }
        }
        // errors about the predicate point at its keyword
        let at = self.position();
        let expr = Box::new(left);
        if self.eat_keyword("in") {
            if self.next() != Some(Token::LParen) {
                self.at -= 1;
                return Err(self.expected("'(' after IN"));
            }
            let depth = self.deeper(depth)?;
            let mut list = Vec::new();
            loop {
                list.push(self.concat_level(depth)?);
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::RParen) => break,
                    _ => {
                        self.at -= 1;
                        return Err(self.expected("',' or ')' in the IN list"));
                    }
                }
            }
            return Ok(spanned(
                at,
                Node::In {
                    expr,
                    list,
                    negated,
                },
            ));
        }
        let like = self.keyword("like");
        if like || self.keyword("ilike") {
            self.at += 1;
            let pattern = Box::new(self.concat_level(depth)?);
            return Ok(spanned(
                at,
                Node::Like {
                    expr,
                    pattern,
                    case_insensitive: !like,
                    negated,
                },
            ));
        }
        if self.eat_keyword("between") {
            let symmetric = self.eat_keyword("symmetric");
            if !symmetric {
                self.eat_keyword("asymmetric");
            }
            let low = Box::new(self.concat_level(depth)?);
            if !self.eat_keyword("and") {
                return Err(self.expected("AND between the bounds of BETWEEN"));
            }
            let high = Box::new(self.concat_level(depth)?);
            return Ok(spanned(
                at,
                Node::Between {
                    expr,
                    low,
                    high,
                    symmetric,
                    negated,
                },
            ));
        }
        Ok(*expr)
    }

    /// `x || y`.
    fn concat_level(&mut self, depth: usize) -> Result<Spanned> {
        let mut left = self.additive(depth)?;
        while self.peek() == Some(&Token::Arith("||")) {
            self.at += 1;
            let right = self.additive(depth)?;
            let at = left.at;
            left = spanned(at, Node::Concat(Box::new(left), Box::new(right)));
        }
        Ok(left)
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
        match self.next() {
            Some(Token::Word(w)) => {
                let name = self.type_name(w.clone());
                ColumnType::from_name(&name)
                    .map(|t| (at, t))
                    .ok_or_else(|| error(at, &format!("a supported type, found {name:?}")))
            }
            _ => {
                self.at -= 1;
                Err(self.expected("a type name"))
            }
        }
    }

    fn primary(&mut self, depth: usize) -> Result<Spanned> {
        let at = self.position();
        let lit = |raw| Ok(spanned(at, Node::Lit(raw)));
        match self.next() {
            Some(Token::Integer(s)) => lit(Raw::Integer(s)),
            Some(Token::Decimal(s)) => lit(Raw::Decimal(s)),
            Some(Token::Str(s)) => lit(Raw::Str(s)),
            Some(Token::Param(n)) => match self.params.get(n as usize - 1) {
                Some(Some(text)) => lit(Raw::Str(text.clone())),
                Some(None) => lit(Raw::Null),
                None => Err(error(
                    at,
                    &format!(
                        "a parameter with a value: ${n} given, {} parameters passed",
                        self.params.len()
                    ),
                )),
            },
            Some(Token::LParen) => {
                let depth = self.deeper(depth)?;
                let e = self.or(depth)?;
                self.close_paren()?;
                Ok(e)
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
            Some(Token::Word(w)) if !is_reserved(&w) => self.column_named(at, w),
            Some(Token::Quoted(q)) => self.column_named(at, q),
            _ => {
                self.at -= 1;
                Err(self.expected("a literal, a column, a function call, '(' or a condition"))
            }
        }
    }

    fn close_paren(&mut self) -> Result<()> {
        match self.next() {
            Some(Token::RParen) => Ok(()),
            _ => {
                self.at -= 1;
                Err(self.expected("')'"))
            }
        }
    }

    fn column_named(&self, at: usize, name: String) -> Result<Spanned> {
        let c = self
            .columns
            .iter()
            .position(|(c, _)| *c == name)
            .ok_or_else(|| {
                error(
                    at,
                    &format!("a column of the table, found unknown column {name:?}"),
                )
            })?;
        Ok(spanned(at, Node::Column(c)))
    }
}

/// What a word names when it starts or continues a construct outside the supported language
/// (arrays, subqueries, ...), so the error says so instead of "unknown column".
pub(super) fn unsupported(word: &str) -> Option<&'static str> {
    Some(match word {
        "select" | "exists" => "a subquery",
        "any" | "some" | "all" => "a comparison with ANY/SOME/ALL (arrays and subqueries)",
        "array" => "an ARRAY constructor",
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
            | "cast"
    )
}
