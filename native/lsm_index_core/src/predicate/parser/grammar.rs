//! The grammar: tokens to an untyped syntax tree ([`Node`]) with PostgreSQL's operator
//! precedence, lowest first:
//!
//! ```text
//! OR < AND < NOT < IS < comparison < BETWEEN IN LIKE ILIKE < || < + - < * / % < unary - + < ::
//! ```
//!
//! This file holds the conditions' levels (down to `BETWEEN IN LIKE`); the operands below
//! them are `operand`'s. Typing happens afterwards (`lower`), so a parenthesis can hold a
//! condition or a value alike. `$n` is replaced by its parameter as an untyped string (or NULL) right here.

use super::literal::Raw;
use super::Parser;
use crate::error::Result;
use crate::predicate::lexer::Token;
use crate::predicate::{ArithOp, ArrayOp, CmpOp, ColumnType, Func};

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
    /// `ARRAY[...]`.
    Array(Vec<Spanned>),
    /// `a @> b`, `a <@ b`, `a && b`.
    ArrayOp(ArrayOp, Box<Spanned>, Box<Spanned>),
    Cmp(CmpOp, Box<Spanned>, Box<Spanned>),
    /// `left op ANY | SOME | ALL (array)` (`all`: ALL).
    AnyAll {
        op: CmpOp,
        all: bool,
        left: Box<Spanned>,
        array: Box<Spanned>,
    },
    In {
        expr: Box<Spanned>,
        list: Vec<Spanned>,
        negated: bool,
    },
    /// `left [NOT] IN (SELECT …)`, `left = ANY (SELECT …)`, `left <> ALL (SELECT …)`: the
    /// clause's subquery `position` (`left`: a value or a [`Node::Row`]).
    Subquery {
        left: Box<Spanned>,
        position: u32,
        negated: bool,
    },
    /// `(a, b, …)`: a row of values (only before `IN (SELECT …)`).
    Row(Vec<Spanned>),
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

pub(super) fn spanned(at: usize, node: Node) -> Spanned {
    Spanned { at, node }
}

impl Spanned {
    /// Replaces every `$n` of the tree by its value in `params` (an untyped string, or NULL),
    /// as reading the clause with them would have.
    pub(super) fn bind(&mut self, params: &[Option<String>]) -> Result<()> {
        let at = self.at;
        match &mut self.node {
            Node::Lit(raw) => {
                if let Raw::Param(n) = *raw {
                    *raw = match params.get(n as usize - 1) {
                        Some(Some(text)) => Raw::Str(text.clone()),
                        Some(None) => Raw::Null,
                        None => return Err(missing_param(at, n, params.len())),
                    };
                }
                Ok(())
            }
            Node::Column(_) => Ok(()),
            Node::Neg(x) | Node::Pos(x) | Node::Cast(x, ..) | Node::IsNull(x, _) => x.bind(params),
            Node::IsTruth(x, ..) | Node::Not(x) => x.bind(params),
            Node::Subquery { left, .. } => left.bind(params),
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
            } => {
                a.bind(params)?;
                b.bind(params)
            }
            Node::Between {
                expr, low, high, ..
            } => {
                expr.bind(params)?;
                low.bind(params)?;
                high.bind(params)
            }
            Node::In { expr, list, .. } => {
                expr.bind(params)?;
                list.iter_mut().try_for_each(|x| x.bind(params))
            }
            Node::Call(_, xs) | Node::Array(xs) | Node::Row(xs) | Node::And(xs) | Node::Or(xs) => {
                xs.iter_mut().try_for_each(|x| x.bind(params))
            }
        }
    }
}

/// The error of a `$n` with no value among `given` parameters.
pub(super) fn missing_param(at: usize, n: u32, given: usize) -> crate::Error {
    crate::predicate::lexer::error(
        at,
        &format!("a parameter with a value: ${n} given, {given} parameters passed"),
    )
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
        let op_at = self.position();
        self.at += 1;
        let at = left.at;
        if let Some(all) = self.quantifier() {
            // `op ANY | SOME | ALL (array)`
            self.at += 2;
            let depth = self.deeper(depth)?;
            if self.keyword("select") {
                return self.quantified_subquery(left, (op_at, cmp_op(op)), all, depth);
            }
            let array = self.or(depth)?;
            self.close_paren()?;
            let (left, array) = (Box::new(left), Box::new(array));
            let op = cmp_op(op);
            return Ok(spanned(
                at,
                Node::AnyAll {
                    op,
                    all,
                    left,
                    array,
                },
            ));
        }
        let right = self.predicate_level(depth)?;
        if matches!(self.peek(), Some(Token::Op(_))) {
            return Err(self.expected("AND, OR or ')' (comparisons do not chain)"));
        }
        Ok(spanned(
            at,
            Node::Cmp(cmp_op(op), Box::new(left), Box::new(right)),
        ))
    }

    /// `ANY (`, `SOME (` (`false`) or `ALL (` (`true`) ahead, if one is.
    fn quantifier(&self) -> Option<bool> {
        let all = match self.peek() {
            Some(Token::Word(w)) if w == "any" || w == "some" => false,
            Some(Token::Word(w)) if w == "all" => true,
            _ => return None,
        };
        matches!(self.tokens.get(self.at + 1), Some((_, Token::LParen))).then_some(all)
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
            if self.keyword("select") {
                let position = self.select(depth)?;
                self.close_paren()?;
                return Ok(spanned(
                    at,
                    Node::Subquery {
                        left: expr,
                        position,
                        negated,
                    },
                ));
            }
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
}

pub(super) fn cmp_op(op: &str) -> CmpOp {
    match op {
        "=" => CmpOp::Eq,
        "<>" => CmpOp::Ne,
        "<" => CmpOp::Lt,
        "<=" => CmpOp::Le,
        ">" => CmpOp::Gt,
        _ => CmpOp::Ge,
    }
}
