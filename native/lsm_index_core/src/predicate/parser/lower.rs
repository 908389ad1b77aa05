//! The syntax tree as conditions: a column against literals becomes the fast column nodes
//! (`tail`, `numeric`), anything else a condition over typed expressions (`scalar`).

use super::fold::{constant, is_null};
use super::grammar::{Node, Spanned};
use super::literal::{Literal, Raw};
use super::scalar::{Ty, Typed};
use super::{and_of, or_of, Parser};
use crate::error::Result;
use crate::predicate::lexer::error;
use crate::predicate::{CaseFolding, CmpOp, ColumnType, Expr, Func, Scalar, Value};

impl Parser<'_> {
    /// The condition `n` means.
    pub(super) fn condition(&self, n: Spanned) -> Result<Expr> {
        let at = n.at;
        match n.node {
            Node::And(terms) => self.junction(terms, true),
            Node::Or(terms) => self.junction(terms, false),
            Node::Not(x) => Ok(Expr::Not(Box::new(self.condition(*x)?))),
            Node::Column(c) if self.columns[c].1 == ColumnType::Bool => {
                // a bare boolean column is the condition `column = true`
                Ok(Expr::Cmp {
                    column: c,
                    op: CmpOp::Eq,
                    value: Some(Value::Bool(true)),
                })
            }
            Node::Column(c) => Err(error(
                self.after(at),
                &format!(
                    "a condition: a comparison, IN, IS, LIKE, ILIKE or BETWEEN after column {:?}",
                    self.columns[c].0
                ),
            )),
            Node::Cmp(op, l, r) => self.compare_nodes(op, *l, *r),
            Node::ArrayOp(op, l, r) => self.array_op(op, &l, &r, at),
            Node::AnyAll {
                op,
                all,
                left,
                array,
            } => self.any_all(op, all, &left, &array),
            Node::In {
                expr,
                list,
                negated,
            } => {
                if let Node::Column(c) = expr.node {
                    let literals: Option<Vec<(usize, Literal)>> =
                        list.iter().map(|x| Some((x.at, as_literal(x)?))).collect();
                    if let Some(literals) = literals {
                        let all: Vec<&Literal> = literals.iter().map(|(_, l)| l).collect();
                        if !self.rounds_column(c, &all) {
                            return self.column_in(c, literals, negated);
                        }
                    }
                }
                self.in_exprs(&expr, &list, negated)
            }
            Node::Subquery {
                left,
                position,
                negated,
            } => self.in_subquery(&left, position, negated, at),
            Node::Like {
                expr,
                pattern,
                case_insensitive,
                negated,
            } => {
                let literal = as_literal(&pattern)
                    .ok_or_else(|| error(pattern.at, "a 'pattern' string after LIKE"))?;
                let pattern = self.like_pattern(pattern.at, &literal)?;
                if let Node::Column(c) = expr.node {
                    if self.columns[c].1 != ColumnType::Text {
                        return Err(error(at, &self.type_message(c, "LIKE needs a text column")));
                    }
                }
                let ascii = case_insensitive && self.folding == CaseFolding::Ascii;
                if let (Node::Column(c), false) = (&expr.node, ascii) {
                    return Ok(self.column_like(*c, pattern, case_insensitive, negated));
                }
                let text = self.scalar(&expr)?;
                let expr = self.coerce(text, &ColumnType::Text, "LIKE needs a text expression")?;
                Ok(if ascii {
                    // ILIKE under LC_CTYPE=C: both sides with ASCII letters lowered, then LIKE
                    Expr::LikeOf {
                        expr: Scalar::Call(Func::LowerAscii, vec![expr], ColumnType::Text),
                        pattern: pattern.to_ascii_lowercase(),
                        case_insensitive: false,
                        negated,
                    }
                } else {
                    Expr::LikeOf {
                        expr,
                        pattern,
                        case_insensitive,
                        negated,
                    }
                })
            }
            Node::Between {
                expr,
                low,
                high,
                symmetric,
                negated,
            } => {
                if let (Node::Column(c), Some(l), Some(h)) =
                    (&expr.node, as_literal(&low), as_literal(&high))
                {
                    return self.column_between(
                        *c,
                        ((low.at, l), (high.at, h)),
                        symmetric,
                        negated,
                    );
                }
                let (x, low) = (self.scalar(&expr)?, self.scalar(&low)?);
                // PostgreSQL's BETWEEN is `x >= low AND x <= high` (NOT: `x < low OR x >
                // high`): a constant first comparison that decides leaves `high` unplanned
                let first = self.compare_typed(x.clone(), CmpOp::Ge, low.clone())?;
                let high = if !symmetric && constant(&first) == Some(Some(false)) {
                    let (high, whole) = self.skipped_whole(|| {
                        let high = self.scalar(&high)?;
                        self.compare_typed(x.clone(), CmpOp::Le, high.clone())?;
                        Ok(high)
                    })?;
                    if !whole {
                        return Ok(Expr::Const(Some(negated)));
                    }
                    high
                } else {
                    self.scalar(&high)?
                };
                let within = |low: &Typed, high: &Typed| -> Result<Expr> {
                    Ok(and_of(vec![
                        self.compare_typed(x.clone(), CmpOp::Ge, low.clone())?,
                        self.compare_typed(x.clone(), CmpOp::Le, high.clone())?,
                    ]))
                };
                let e = if symmetric {
                    or_of(vec![within(&low, &high)?, within(&high, &low)?])
                } else {
                    within(&low, &high)?
                };
                Ok(if negated { Expr::Not(Box::new(e)) } else { e })
            }
            Node::IsNull(x, negated) => {
                if let Node::Column(c) = x.node {
                    return Ok(Expr::IsNull { column: c, negated });
                }
                if is_condition(&x.node) {
                    return Ok(Expr::IsTruth {
                        expr: Box::new(self.condition(*x)?),
                        value: None,
                        negated,
                    });
                }
                let t = self.scalar(&x)?;
                Ok(match t.ty {
                    Ty::Unknown(v) => Expr::Const(Some(v.is_none() != negated)),
                    Ty::Known(_) => Expr::IsNullOf { expr: t.s, negated },
                })
            }
            Node::IsTruth(x, value, negated) => {
                if let Node::Column(c) = x.node {
                    if self.columns[c].1 != ColumnType::Bool {
                        let why = "IS TRUE, FALSE or UNKNOWN needs a boolean column";
                        return Err(error(at, &self.type_message(c, why)));
                    }
                    return Ok(self.column_truth(c, value, negated));
                }
                Ok(Expr::IsTruth {
                    expr: Box::new(self.condition(*x)?),
                    value,
                    negated,
                })
            }
            Node::Distinct(a, b, not_distinct) => {
                // a column against a plain value of its type (else: as written)
                let plain = |c: usize, n: &Spanned| {
                    as_literal(n).filter(|l| {
                        matches!(l.raw, Raw::Null) || matches!(self.plain_value(l, c), Ok(Some(_)))
                    })
                };
                match (&a.node, &b.node) {
                    (Node::Column(c), _) => {
                        if let Some(l) = plain(*c, &b) {
                            return self.column_distinct(*c, (b.at, l), not_distinct);
                        }
                    }
                    (_, Node::Column(c)) => {
                        if let Some(l) = plain(*c, &a) {
                            return self.column_distinct(*c, (a.at, l), not_distinct);
                        }
                    }
                    _ => {}
                }
                self.distinct(self.scalar(&a)?, self.scalar(&b)?, not_distinct)
            }
            _ => {
                let t = self.scalar(&n)?;
                let s = self.coerce(
                    t,
                    &ColumnType::Bool,
                    "a condition (a comparison, IN, IS, LIKE, BETWEEN or a boolean)",
                )?;
                Ok(match s {
                    Scalar::Const(None) => Expr::Const(None),
                    Scalar::Const(Some(Value::Bool(b))) => Expr::Const(Some(b)),
                    s => Expr::Truth(s),
                })
            }
        }
    }

    /// The offset of the token after the one at `at` (or the end of the clause).
    fn after(&self, at: usize) -> usize {
        let i = self.tokens.partition_point(|(p, _)| *p <= at);
        self.tokens.get(i).map_or(self.end, |(p, _)| *p)
    }

    /// `l op r`: a column against a literal in the column's type, else over expressions.
    fn compare_nodes(&self, op: CmpOp, l: Spanned, r: Spanned) -> Result<Expr> {
        if let (Node::Column(c), Some(lit)) = (&l.node, as_literal(&r)) {
            if !self.rounds_column(*c, &[&lit]) {
                return self.comparison(*c, op, lit, r.at);
            }
        }
        if let (Some(lit), Node::Column(c)) = (as_literal(&l), &r.node) {
            if !self.rounds_column(*c, &[&lit]) {
                return self.comparison(*c, op.flipped(), lit, l.at);
            }
        }
        self.compare_typed(self.scalar(&l)?, op, self.scalar(&r)?)
    }

    /// `x [NOT] IN (list)` over expressions: `x = a OR x = b ...` (`NOT IN`: `x <> a AND
    /// ...`) as PostgreSQL resolves it: the members converted to the common type of `x` and
    /// the members (`x` itself is not), then each compared with `x` (a list of one: `=`).
    fn in_exprs(&self, x: &Spanned, list: &[Spanned], negated: bool) -> Result<Expr> {
        let x = self.scalar(x)?;
        let mut items: Vec<Typed> = list.iter().map(|i| self.scalar(i)).collect::<Result<_>>()?;
        let op = if negated { CmpOp::Ne } else { CmpOp::Eq };
        if items.len() > 1 {
            let all: Vec<&Typed> = std::iter::once(&x).chain(&items).collect();
            let common = self.common_type(&all)?;
            items = items
                .into_iter()
                .map(|i| {
                    let at = i.at;
                    let s = self.coerce(i, &common, "a value of the list's type")?;
                    Ok(Typed {
                        s,
                        ty: Ty::Known(common.clone()),
                        at,
                    })
                })
                .collect::<Result<_>>()?;
        }
        let terms: Vec<Expr> = items
            .into_iter()
            .map(|i| self.compare_typed(x.clone(), op, i))
            .collect::<Result<_>>()?;
        Ok(if negated { and_of(terms) } else { or_of(terms) })
    }

    /// `a IS [NOT] DISTINCT FROM b` over expressions, never unknown.
    fn distinct(&self, a: Typed, b: Typed, not_distinct: bool) -> Result<Expr> {
        let ne = self.compare_typed(a.clone(), CmpOp::Ne, b.clone())?;
        let (a, b) = match ne {
            Expr::Compare { left, right, .. } => (left, right),
            // constants on both sides: folded
            other => {
                let null = |t: &Typed| matches!(t.ty, Ty::Unknown(None)) || is_null(&t.s);
                let differs = match (null(&a), null(&b)) {
                    (true, true) => false,
                    (true, false) | (false, true) => true,
                    (false, false) => other == Expr::Const(Some(true)),
                };
                return Ok(Expr::Const(Some(differs != not_distinct)));
            }
        };
        let is_null = |s: &Scalar, negated| Expr::IsNullOf {
            expr: s.clone(),
            negated,
        };
        let differs = or_of(vec![
            and_of(vec![is_null(&a, false), is_null(&b, true)]),
            and_of(vec![is_null(&a, true), is_null(&b, false)]),
            and_of(vec![
                is_null(&a, true),
                is_null(&b, true),
                Expr::Compare {
                    left: a.clone(),
                    op: CmpOp::Ne,
                    right: b.clone(),
                },
            ]),
        ]);
        Ok(if not_distinct {
            Expr::Not(Box::new(differs))
        } else {
            differs
        })
    }
}

/// Whether `n` is a condition (rather than a value): `(a = 1) IS NULL` tests a condition.
fn is_condition(n: &Node) -> bool {
    matches!(
        n,
        Node::Cmp(..)
            | Node::ArrayOp(..)
            | Node::AnyAll { .. }
            | Node::In { .. }
            | Node::Subquery { .. }
            | Node::Like { .. }
            | Node::Between { .. }
            | Node::IsNull(..)
            | Node::IsTruth(..)
            | Node::Distinct(..)
            | Node::Not(_)
            | Node::And(_)
            | Node::Or(_)
    )
}

/// `n` as a literal compared with a column in the column's type: `[+|-] literal [::type]`
/// (the cast binds before the sign), if it is one.
pub(super) fn as_literal(n: &Spanned) -> Option<Literal> {
    let cast_of = |x: &Spanned, negative| match &x.node {
        Node::Lit(raw) => Some(Literal {
            negative,
            raw: raw.clone(),
            cast: None,
        }),
        Node::Cast(inner, ty, type_at) => match &inner.node {
            Node::Lit(raw) => Some(Literal {
                negative,
                raw: raw.clone(),
                cast: Some((*type_at, ty.clone())),
            }),
            _ => None,
        },
        _ => None,
    };
    match &n.node {
        Node::Neg(x) | Node::Pos(x) => {
            let negative = matches!(n.node, Node::Neg(_));
            match &x.node {
                Node::Lit(Raw::Integer(_) | Raw::Decimal(_)) | Node::Cast(..) => {
                    cast_of(x, negative)
                }
                _ => None,
            }
        }
        _ => cast_of(n, false),
    }
}
