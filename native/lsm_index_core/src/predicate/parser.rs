//! Recursive-descent parser: tokens to a typed [`Expr`], checked against the table's columns.

use super::lexer::{error, tokens, Token};
use super::{eval, CmpOp, ColumnType, Expr, Value, MAX_DEPTH, MAX_SQL_BYTES};
use crate::error::Result;
use std::cmp::Ordering;

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

/// A literal before it is typed by the column it is compared with.
enum Raw {
    Null,
    Bool(bool),
    Integer(String),
    Decimal(String),
    Str(String),
}

/// A literal as written: its sign (a leading `-`), the literal, and a `::type` cast if any.
/// A cast binds tighter than the sign, as in PostgreSQL: `-32768::int2` is `-(32768::int2)`.
struct Literal {
    negative: bool,
    raw: Raw,
    cast: Option<(usize, ColumnType)>,
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

    fn column_tail(&mut self, column: usize) -> Result<Expr> {
        let negated = self.eat_keyword("not");
        if let Some(Token::Op(op)) = self.peek().cloned() {
            if negated {
                return Err(self.expected("IN, LIKE, ILIKE or BETWEEN after NOT"));
            }
            self.at += 1;
            let at = self.position();
            let literal = self.raw_literal()?;
            return self.comparison(column, cmp_op(op), literal, at);
        }
        if self.eat_keyword("in") {
            if self.next() != Some(Token::LParen) {
                self.at -= 1;
                return Err(self.expected("'(' after IN"));
            }
            let mut literals = Vec::new();
            loop {
                literals.push((self.position(), self.raw_literal()?));
                match self.next() {
                    Some(Token::Comma) => {}
                    Some(Token::RParen) => break,
                    _ => {
                        self.at -= 1;
                        return Err(self.expected("',' or ')' in the IN list"));
                    }
                }
            }
            // the list's strings take the type common to the column and the list's numbers
            let common = self.in_list_type(column, &literals);
            // a number beyond i64 makes it a numeric list
            let numeric = literals
                .iter()
                .any(|(_, l)| self.beyond_i64(l, column).is_some());
            let mut values = Vec::new();
            let mut beyond = false;
            for (at, literal) in literals {
                // an integer beyond i64 equals no value of an integer column: left out
                if self.beyond_i64(&literal, column).is_some() {
                    beyond = true;
                    continue;
                }
                if let (
                    true,
                    Literal {
                        raw: Raw::Str(text),
                        cast: None,
                        ..
                    },
                ) = (numeric, &literal)
                {
                    match numeric_as_integer(text) {
                        Some(Some(i)) => values.push(Some(Value::Int(i))),
                        // a numeric no integer column value equals: left out
                        Some(None) => beyond = true,
                        None => {
                            return Err(error(at, &self.type_message(column, "expected a numeric")))
                        }
                    }
                    continue;
                }
                values.push(self.typed_as(literal, column, common, at)?);
            }
            if values.is_empty() && beyond {
                // `x IN (BIG)`: false, or unknown for NULL, as `x = BIG`
                let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
                return Ok(beyond_cmp(column, op, Ordering::Greater));
            }
            return Ok(Expr::In {
                column,
                values,
                negated,
            });
        }
        let like = self.keyword("like");
        if like || self.keyword("ilike") {
            let at = self.position();
            self.at += 1;
            if self.columns[column].1 != ColumnType::Text {
                return Err(error(
                    at,
                    &self.type_message(column, "LIKE needs a text column"),
                ));
            }
            let pattern = match self.next() {
                Some(Token::Str(s)) => s,
                _ => {
                    self.at -= 1;
                    return Err(self.expected("a 'pattern' string after LIKE"));
                }
            };
            self.skip_cast_to(ColumnType::Text)?;
            let escapes = pattern.bytes().rev().take_while(|&b| b == b'\\').count();
            if escapes % 2 == 1 {
                return Err(error(
                    at,
                    "a LIKE pattern that does not end with the escape character '\\'",
                ));
            }
            return Ok(Expr::Like {
                column,
                pattern,
                case_insensitive: !like,
                negated,
            });
        }
        if negated && self.keyword("between") {
            return self.between(column, true);
        }
        if negated {
            return Err(self.expected("IN, LIKE, ILIKE or BETWEEN after NOT"));
        }
        if self.keyword("between") {
            return self.between(column, false);
        }
        if self.eat_keyword("is") {
            return self.is_tail(column);
        }
        if self.columns[column].1 == ColumnType::Bool {
            // a bare boolean column is the condition `column = true`
            return Ok(Expr::Cmp {
                column,
                op: CmpOp::Eq,
                value: Some(Value::Bool(true)),
            });
        }
        Err(self.expected("a comparison, IN, IS, LIKE, ILIKE or BETWEEN after the column"))
    }

    /// `column [NOT] BETWEEN [SYMMETRIC | ASYMMETRIC] low AND high` (at BETWEEN), as
    /// PostgreSQL defines it: `low <= column AND column <= high` (`NOT`: `column < low OR
    /// column > high`); SYMMETRIC swaps the bounds when `low > high`.
    fn between(&mut self, column: usize, negated: bool) -> Result<Expr> {
        self.at += 1;
        let symmetric = self.eat_keyword("symmetric");
        if !symmetric {
            self.eat_keyword("asymmetric");
        }
        let mut low = self.literal(column)?;
        if !self.eat_keyword("and") {
            return Err(self.expected("AND between the bounds of BETWEEN"));
        }
        let mut high = self.literal(column)?;
        if symmetric {
            if let (Some(l), Some(h)) = (&low, &high) {
                if eval::compare(l, h) == std::cmp::Ordering::Greater {
                    std::mem::swap(&mut low, &mut high);
                }
            }
        }
        let cmp = |op, value| Expr::Cmp { column, op, value };
        Ok(if negated {
            or_of(vec![cmp(CmpOp::Lt, low), cmp(CmpOp::Gt, high)])
        } else {
            and_of(vec![cmp(CmpOp::Ge, low), cmp(CmpOp::Le, high)])
        })
    }

    /// What follows `column IS`: `[NOT] NULL`, `[NOT] DISTINCT FROM literal`, or (a boolean
    /// column) `[NOT] TRUE | FALSE | UNKNOWN` — each written with the nodes that mean the
    /// same in three-valued logic (these tests are never unknown).
    fn is_tail(&mut self, column: usize) -> Result<Expr> {
        let negated = self.eat_keyword("not");
        let is_null = |negated| Expr::IsNull { column, negated };
        if self.eat_keyword("null") {
            return Ok(is_null(negated));
        }
        if self.eat_keyword("distinct") {
            if !self.eat_keyword("from") {
                return Err(self.expected("FROM after IS DISTINCT"));
            }
            let value = self.literal(column)?;
            let cmp = |op, value| Expr::Cmp { column, op, value };
            return Ok(match (value, negated) {
                // distinct from NULL: not NULL
                (None, distinct_is_not) => is_null(!distinct_is_not),
                (Some(v), false) => or_of(vec![is_null(false), cmp(CmpOp::Ne, Some(v))]),
                (Some(v), true) => and_of(vec![is_null(true), cmp(CmpOp::Eq, Some(v))]),
            });
        }
        let at = self.position();
        let truth = if self.eat_keyword("true") {
            Some(true)
        } else if self.eat_keyword("false") {
            Some(false)
        } else if self.eat_keyword("unknown") {
            None
        } else {
            return Err(self.expected("NULL, DISTINCT FROM, TRUE, FALSE or UNKNOWN after IS"));
        };
        if self.columns[column].1 != ColumnType::Bool {
            return Err(error(
                at,
                &self.type_message(column, "IS TRUE, FALSE or UNKNOWN needs a boolean column"),
            ));
        }
        Ok(match (truth, negated) {
            (None, negated) => is_null(negated),
            (Some(b), false) => and_of(vec![
                is_null(true),
                Expr::Cmp {
                    column,
                    op: CmpOp::Eq,
                    value: Some(Value::Bool(b)),
                },
            ]),
            (Some(b), true) => or_of(vec![
                is_null(false),
                Expr::Cmp {
                    column,
                    op: CmpOp::Ne,
                    value: Some(Value::Bool(b)),
                },
            ]),
        })
    }

    /// `column op literal`.
    fn comparison(&self, column: usize, op: CmpOp, literal: Literal, at: usize) -> Result<Expr> {
        if let Some(side) = self.beyond_i64(&literal, column) {
            return Ok(beyond_cmp(column, op, side));
        }
        let value = self.typed(literal, column, at)?;
        Ok(Expr::Cmp { column, op, value })
    }

    /// Whether `literal` is an integer (not cast) beyond i64's range compared with an integer
    /// column: PostgreSQL reads it as a numeric and compares; which side it lies on.
    fn beyond_i64(&self, literal: &Literal, column: usize) -> Option<Ordering> {
        let Literal {
            negative,
            raw: Raw::Integer(digits),
            cast: None,
        } = literal
        else {
            return None;
        };
        let signed = format!("{}{digits}", if *negative { "-" } else { "" });
        (self.columns[column].1.is_integer() && signed.parse::<i64>().is_err()).then_some(
            if *negative {
                Ordering::Less
            } else {
                Ordering::Greater
            },
        )
    }

    /// A literal compared with `column`, typed by it.
    fn literal(&mut self, column: usize) -> Result<Option<Value>> {
        let at = self.position();
        let literal = self.raw_literal()?;
        self.typed(literal, column, at)
    }

    /// A literal with its sign and cast, not yet typed.
    fn raw_literal(&mut self) -> Result<Literal> {
        let negative = matches!(self.peek(), Some(Token::Minus));
        let signed = negative || matches!(self.peek(), Some(Token::Plus));
        if signed {
            self.at += 1;
        }
        let raw = match self.next() {
            Some(Token::Integer(s)) => Raw::Integer(s),
            Some(Token::Decimal(s)) => Raw::Decimal(s),
            Some(Token::Str(s)) if !signed => Raw::Str(s),
            Some(Token::Word(w)) if !signed && w == "true" => Raw::Bool(true),
            Some(Token::Word(w)) if !signed && w == "false" => Raw::Bool(false),
            Some(Token::Word(w)) if !signed && w == "null" => Raw::Null,
            _ => {
                self.at -= 1;
                return Err(self.expected(if signed {
                    "a number after its sign"
                } else {
                    "a literal (number, 'string', TRUE, FALSE or NULL)"
                }));
            }
        };
        let cast = self.cast()?;
        Ok(Literal {
            negative,
            raw,
            cast,
        })
    }

    /// An optional `::type` after a literal.
    fn cast(&mut self) -> Result<Option<(usize, ColumnType)>> {
        if self.peek() != Some(&Token::Cast) {
            return Ok(None);
        }
        self.at += 1;
        let at = self.position();
        match self.next() {
            Some(Token::Word(w)) => match ColumnType::from_name(&self.type_name(w.clone())) {
                Some(t) => Ok(Some((at, t))),
                None => Err(error(
                    at,
                    &format!("a supported type after '::', found {w:?}"),
                )),
            },
            _ => {
                self.at -= 1;
                Err(self.expected("a type name after '::'"))
            }
        }
    }

    /// A type name starting with the word `first`: the two-word names take their second word.
    fn type_name(&mut self, first: String) -> String {
        let second = match first.as_str() {
            "double" => "precision",
            "character" => "varying",
            _ => return first,
        };
        match self.peek() {
            Some(Token::Word(w)) if w == second => {
                self.at += 1;
                format!("{first} {second}")
            }
            _ => first,
        }
    }

    fn skip_cast_to(&mut self, want: ColumnType) -> Result<()> {
        match self.cast()? {
            Some((at, t)) if t != want => Err(error(at, &format!("a cast to {}", want.name()))),
            _ => Ok(()),
        }
    }

    /// The type an IN list on `column` is compared in, as PostgreSQL resolves it: an integer
    /// column's type widened to the widest integer among the list's numbers (a literal that
    /// fits int4 is an int4, a larger one an int8) and integer casts; the column's otherwise.
    fn in_list_type(&self, column: usize, literals: &[(usize, Literal)]) -> ColumnType {
        let ty = self.columns[column].1;
        if !ty.is_integer() {
            return ty;
        }
        let rank = |t: ColumnType| match t {
            ColumnType::Int2 => 0,
            ColumnType::Int4 => 1,
            _ => 2,
        };
        literals.iter().fold(ty, |acc, (_, l)| {
            let t = match (&l.raw, l.cast) {
                (_, Some((_, t))) if t.is_integer() => t,
                (Raw::Integer(d), None) if d.parse::<i32>().is_ok() => ColumnType::Int4,
                (Raw::Integer(_), None) => ColumnType::Int8,
                _ => return acc,
            };
            if rank(t) > rank(acc) {
                t
            } else {
                acc
            }
        })
    }

    /// `literal` as a value of `column`'s type: cast first if it has a cast (then negated),
    /// else its signed text read as that type.
    fn typed(&self, literal: Literal, column: usize, at: usize) -> Result<Option<Value>> {
        self.typed_as(literal, column, self.columns[column].1, at)
    }

    /// [`Parser::typed`], reading an untyped string as `ty` (an integer type at least as wide
    /// as the column's, in an IN list).
    fn typed_as(
        &self,
        literal: Literal,
        column: usize,
        ty: ColumnType,
        at: usize,
    ) -> Result<Option<Value>> {
        let mismatch = || {
            error(
                at,
                &self.type_message(column, "expected a value of its type"),
            )
        };
        let Literal {
            negative,
            raw,
            cast,
        } = literal;
        // the literal as its cast type first (as Postgres evaluates the cast), then negated,
        // then widened to the column's type where that is exact (integer to integer or to
        // float8)
        if let Some((cast_at, to)) = cast {
            let is_integer = matches!(raw, Raw::Integer(_));
            let text = match raw {
                Raw::Null => return Ok(None),
                Raw::Bool(b) => b.to_string(),
                Raw::Integer(s) | Raw::Decimal(s) | Raw::Str(s) => s,
            };
            let v = match (is_integer, to) {
                // an integer (an int4) cast to bool: zero is false, anything else true
                (true, ColumnType::Bool) => text.parse::<i32>().ok().map(|i| Value::Bool(i != 0)),
                _ => to.parse(&text),
            }
            .ok_or_else(|| error(cast_at, &format!("a literal that is a valid {}", to.name())))?;
            let v = if negative {
                negate(v).ok_or_else(|| error(at, "a number to negate"))?
            } else {
                v
            };
            return widen(v, to, ty).map(Some).ok_or_else(mismatch);
        }
        let sign = if negative { "-" } else { "" };
        let value = match (raw, ty) {
            (Raw::Null, _) => return Ok(None),
            (Raw::Bool(b), ColumnType::Bool) => Some(Value::Bool(b)),
            // an integer literal is an int4 or int8 in Postgres, compared with a smaller
            // column type as it is: any i64 compares exactly
            (Raw::Integer(s), t) if t.is_integer() => {
                format!("{sign}{s}").parse::<i64>().ok().map(Value::Int)
            }
            (Raw::Integer(s) | Raw::Decimal(s), ColumnType::Float8) => {
                ColumnType::Float8.parse(&format!("{sign}{s}"))
            }
            // an untyped string literal takes the column's type, as in Postgres
            (Raw::Str(s), t) => t.parse(&s),
            _ => None,
        };
        value.map(Some).ok_or_else(mismatch)
    }

    fn type_message(&self, column: usize, what: &str) -> String {
        let (name, ty) = &self.columns[column];
        format!("{what} for column {name:?} ({})", ty.name())
    }
}

/// `v` (of type `from`) as a value of type `to`, where that is exact.
/// `column op BIG` for an integer literal beyond i64 on the `side` of it: every value of an
/// integer column lies within i64, so the comparison has one answer for every non-NULL
/// value, written as a comparison with i64's bound that gives it (and unknown for NULL).
fn beyond_cmp(column: usize, op: CmpOp, side: Ordering) -> Expr {
    let (op, bound) = match side {
        Ordering::Greater => match op {
            CmpOp::Lt | CmpOp::Le | CmpOp::Ne => (CmpOp::Le, i64::MAX),
            _ => (CmpOp::Gt, i64::MAX),
        },
        _ => match op {
            CmpOp::Gt | CmpOp::Ge | CmpOp::Ne => (CmpOp::Ge, i64::MIN),
            _ => (CmpOp::Lt, i64::MIN),
        },
    };
    Expr::Cmp {
        column,
        op,
        value: Some(Value::Int(bound)),
    }
}

/// A numeric's text (`[+-]digits[.digits]`, white space around it skipped) as the integer
/// it equals: `Some(Some(i))`; `Some(None)` when no i64 equals it (a fraction, or beyond
/// i64); `None` when it is not such a text.
fn numeric_as_integer(text: &str) -> Option<Option<i64>> {
    let t = text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty())) {
        return None;
    }
    if frac.bytes().any(|b| b != b'0') {
        return Some(None);
    }
    let sign = if t.starts_with('-') { "-" } else { "" };
    let int = if int.is_empty() { "0" } else { int };
    Some(format!("{sign}{int}").parse::<i64>().ok())
}

/// `-v` for a number (`None` for another value, or an integer that does not fit).
fn negate(v: Value) -> Option<Value> {
    match v {
        Value::Int(i) => i.checked_neg().map(Value::Int),
        Value::Float(f) => Some(Value::Float(if f == 0.0 { 0.0 } else { -f })),
        _ => None,
    }
}

fn widen(v: Value, from: ColumnType, to: ColumnType) -> Option<Value> {
    match (v, to) {
        // integers compare across integer types as they are (int2 = int4 is valid SQL)
        (Value::Int(i), t) if t.is_integer() => Some(Value::Int(i)),
        (Value::Int(i), ColumnType::Float8) => Some(Value::Float(i as f64)),
        (v, t) if t == from => Some(v),
        _ => None,
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
