//! Expressions typed as PostgreSQL types them: an untyped string (or parameter) takes the
//! type it meets, numbers promote along int2 < int4 < int8 < numeric < float4 < float8 (an
//! operator on float4 and anything else but float4 works in float8), dates along date <
//! timestamp < timestamptz. Every conversion becomes an explicit cast, and constants are
//! folded here, so an error PostgreSQL raises while planning (`1/0`) is a parse error where
//! its planner would reach it (`fold`).

use super::coerce::{castable, is_number, rank};
use super::fold::{constant, strict_null};
use super::grammar::{Node, Spanned};
use super::literal::Raw;
use super::Parser;
use crate::error::Result;
use crate::predicate::eval::compare;
use crate::predicate::lexer::error;
use crate::predicate::{ArithOp, CmpOp, ColumnType, Expr, Func, Numeric, Scalar, Value};

/// The type of an expression, or of an untyped literal (a string or parameter: its text;
/// `None`: NULL) still waiting for one.
#[derive(Clone, Debug)]
pub(super) enum Ty {
    Known(ColumnType),
    Unknown(Option<String>),
}

/// A typed expression and where it starts.
#[derive(Clone, Debug)]
pub(super) struct Typed {
    pub(super) s: Scalar,
    pub(super) ty: Ty,
    pub(super) at: usize,
}

fn known(s: Scalar, ty: ColumnType, at: usize) -> Typed {
    Typed {
        s,
        ty: Ty::Known(ty),
        at,
    }
}

impl Parser<'_> {
    /// The typed expression `n` is.
    pub(super) fn scalar(&self, n: &Spanned) -> Result<Typed> {
        let at = n.at;
        Ok(match &n.node {
            Node::Column(c) => known(Scalar::Column(*c), self.columns[*c].1.clone(), at),
            Node::Lit(raw) => literal(raw, false, at)?,
            Node::Neg(x) => match &x.node {
                // `-9223372036854775808` is an int8, as PostgreSQL folds the sign in
                Node::Lit(raw @ (Raw::Integer(_) | Raw::Decimal(_))) => literal(raw, true, at)?,
                _ => {
                    let t = self.scalar(x)?;
                    let ty = self.number_type(&t, "a number to negate")?;
                    self.fold(Scalar::Negate(Box::new(t.s), ty.clone()), ty, at)?
                }
            },
            Node::Pos(x) => {
                let t = self.scalar(x)?;
                self.number_type(&t, "a number after '+'")?;
                t
            }
            // a cast of ARRAY[...] to an array type casts its elements (PostgreSQL's
            // transformArrayExpr)
            Node::Cast(x, ColumnType::Array(e), type_at) if matches!(x.node, Node::Array(_)) => {
                let Node::Array(items) = &x.node else {
                    unreachable!("matched above")
                };
                self.array_ctor(items, Some((e, *type_at)), at)?
            }
            Node::Array(items) => self.array_ctor(items, None, at)?,
            Node::Cast(x, to, type_at) => {
                let t = self.scalar(x)?;
                let invalid = || {
                    error(
                        *type_at,
                        &format!("a literal that is {}", super::array::valid(to)),
                    )
                };
                match t.ty {
                    Ty::Unknown(None) => known(Scalar::Const(None), to.clone(), at),
                    Ty::Unknown(Some(text)) => {
                        let v = to.parse(&text).ok_or_else(invalid)?;
                        known(Scalar::Const(Some(v)), to.clone(), at)
                    }
                    Ty::Known(from) if castable(&from, to) => {
                        let s = Scalar::Cast(Box::new(t.s), from, to.clone());
                        self.fold(s, to.clone(), at).map_err(|_| invalid())?
                    }
                    Ty::Known(from) => {
                        return Err(error(
                            *type_at,
                            &format!("a cast PostgreSQL has: {} to {}", from.name(), to.name()),
                        ))
                    }
                }
            }
            Node::Call(f, args) => self.call(*f, args, at)?,
            Node::Arith(op, a, b) => self.arith(*op, self.scalar(a)?, self.scalar(b)?, at)?,
            Node::Concat(a, b) => {
                let (a, b) = (self.scalar(a)?, self.scalar(b)?);
                let array = |t: &Typed| matches!(&t.ty, Ty::Known(ColumnType::Array(_)));
                if array(&a) || array(&b) {
                    return Err(error(
                        at,
                        "a construct the engine supports: '||' on arrays is not supported yet",
                    ));
                }
                let text_like =
                    |t: &Typed| matches!(&t.ty, Ty::Unknown(_) | Ty::Known(ColumnType::Text));
                if !text_like(&a) && !text_like(&b) {
                    return Err(error(at, "text on one side of '||'"));
                }
                let as_text = |t: Typed| match t.ty {
                    Ty::Known(ColumnType::Text) => t.s,
                    Ty::Unknown(v) => Scalar::Const(v.map(Value::Text)),
                    Ty::Known(other) => Scalar::Cast(Box::new(t.s), other, ColumnType::Text),
                };
                let s = Scalar::Concat(Box::new(as_text(a)), Box::new(as_text(b)));
                self.fold(s, ColumnType::Text, at)?
            }
            Node::Row(_) => {
                return Err(error(
                    at,
                    "a construct the engine supports: a row (a, b) is only tested by \
                     IN (SELECT …)",
                ))
            }
            // a condition as a boolean value (a constant as the planner folds it)
            _ => {
                let e = self.condition(n.clone())?;
                match constant(&e) {
                    Some(b) => known(Scalar::Const(b.map(Value::Bool)), ColumnType::Bool, at),
                    None => known(Scalar::Condition(Box::new(e)), ColumnType::Bool, at),
                }
            }
        })
    }

    fn number_type(&self, t: &Typed, why: &str) -> Result<ColumnType> {
        match &t.ty {
            Ty::Known(ty) if is_number(ty) => Ok(ty.clone()),
            _ => Err(error(t.at, why)),
        }
    }

    /// `s` of type `ty`, computed now when it reads no column (an error is PostgreSQL's
    /// planning-time error), or NULL for a strict function of a NULL constant.
    pub(super) fn fold(&self, s: Scalar, ty: ColumnType, at: usize) -> Result<Typed> {
        if strict_null(&s) {
            return Ok(known(Scalar::Const(None), ty, at));
        }
        let mut reads = false;
        s.columns(&mut |_| reads = true);
        if reads {
            return Ok(known(s, ty, at));
        }
        match s.eval(&[]) {
            Ok(v) => Ok(known(Scalar::Const(v), ty, at)),
            Err(e) => {
                let e = error(
                    at,
                    &format!("an expression PostgreSQL can evaluate ({})", e.message()),
                );
                self.at_plan_time(Err(e), || known(s, ty.clone(), at))
            }
        }
    }

    fn call(&self, f: Func, args: &[Spanned], at: usize) -> Result<Typed> {
        match f {
            Func::Coalesce => return self.coalesce(args, at),
            Func::Cardinality | Func::ArrayLength => return self.array_call(f, args, at),
            _ => {}
        }
        let args: Vec<Typed> = args.iter().map(|a| self.scalar(a)).collect::<Result<_>>()?;
        let [arg] = <[Typed; 1]>::try_from(args)
            .map_err(|_| error(at, &format!("{}() with one argument", f.name())))?;
        let (arg, ty) = match f {
            Func::Abs => {
                let ty = self.number_type(&arg, "a number in abs()")?;
                (arg.s, ty)
            }
            Func::Length => {
                let why = "a text argument to length()";
                (self.coerce(arg, &ColumnType::Text, why)?, ColumnType::Int4)
            }
            _ => {
                let why = "a text argument to lower() / upper()";
                (self.coerce(arg, &ColumnType::Text, why)?, ColumnType::Text)
            }
        };
        self.fold(Scalar::Call(f, vec![arg], ty.clone()), ty, at)
    }

    /// `coalesce(args)` in the arguments' common type. The planner stops at the first
    /// argument that folds to a non-NULL constant (its value is the answer wherever no
    /// argument before it is non-NULL): those after it are only parsed, and left out.
    fn coalesce(&self, args: &[Spanned], at: usize) -> Result<Typed> {
        if args.is_empty() {
            return Err(error(at, "coalesce with at least one argument"));
        }
        let mut typed = Vec::with_capacity(args.len());
        let mut reached = args.len();
        for (i, a) in args.iter().enumerate() {
            if i > reached {
                typed.push(self.skipping(|| self.scalar(a))?);
                continue;
            }
            let t = self.scalar(a)?;
            let non_null = match &t.ty {
                Ty::Unknown(v) => v.is_some(),
                Ty::Known(_) => matches!(t.s, Scalar::Const(Some(_))),
            };
            if non_null {
                reached = i;
            }
            typed.push(t);
        }
        let ty = self.common_type(&typed.iter().collect::<Vec<_>>())?;
        let why = "arguments of one type in coalesce";
        let mut kept = Vec::with_capacity(typed.len());
        for (i, t) in typed.into_iter().enumerate() {
            if i > reached {
                self.skipping(|| self.coerce(t, &ty, why))?;
            } else {
                kept.push(self.coerce(t, &ty, why)?);
            }
        }
        self.fold(Scalar::Call(Func::Coalesce, kept, ty.clone()), ty, at)
    }

    fn arith(&self, op: ArithOp, a: Typed, b: Typed, at: usize) -> Result<Typed> {
        use ColumnType as T;
        let missing = || {
            error(
                at,
                &format!("an operand of a known type for '{}'", op.symbol()),
            )
        };
        // an untyped operand takes the other's type
        let (ta, tb) = match (&a.ty, &b.ty) {
            (Ty::Unknown(_), Ty::Unknown(_)) => return Err(missing()),
            (Ty::Unknown(_), Ty::Known(t)) | (Ty::Known(t), Ty::Unknown(_)) => {
                (t.clone(), t.clone())
            }
            (Ty::Known(x), Ty::Known(y)) => (x.clone(), y.clone()),
        };
        let no_operator = || {
            error(
                at,
                &format!(
                    "an operator PostgreSQL has, not {} {} {}",
                    ta.name(),
                    op.symbol(),
                    tb.name()
                ),
            )
        };
        let (a, b, ty) = match (&ta, &tb) {
            (T::Date, i) if i.is_integer() && matches!(op, ArithOp::Add | ArithOp::Sub) => (
                self.coerce(a, &ta, "")?,
                self.coerce(b, &T::Int8, "")?,
                T::Date,
            ),
            (i, T::Date) if i.is_integer() && op == ArithOp::Add => (
                self.coerce(b, &tb, "")?,
                self.coerce(a, &T::Int8, "")?,
                T::Date,
            ),
            (T::Date, T::Date) if op == ArithOp::Sub => {
                (self.coerce(a, &ta, "")?, self.coerce(b, &tb, "")?, T::Int4)
            }
            (x, y) if is_number(x) && is_number(y) => {
                let ty = if x.is_float() || y.is_float() {
                    if *x == T::Float4 && *y == T::Float4 {
                        T::Float4
                    } else {
                        T::Float8
                    }
                } else if *x == T::Numeric || *y == T::Numeric {
                    T::Numeric
                } else if rank(x) >= rank(y) {
                    x.clone()
                } else {
                    y.clone()
                };
                if op == ArithOp::Mod && ty.is_float() {
                    return Err(no_operator());
                }
                let why = "a number";
                (self.coerce(a, &ty, why)?, self.coerce(b, &ty, why)?, ty)
            }
            _ => return Err(no_operator()),
        };
        self.fold(
            Scalar::Arith(op, Box::new(a), Box::new(b), ty.clone()),
            ty,
            at,
        )
    }

    /// `l op r` over expressions, in the type PostgreSQL's operator resolution picks.
    pub(super) fn compare_typed(&self, l: Typed, op: CmpOp, r: Typed) -> Result<Expr> {
        let ty = self.comparison_type(&l, &r)?;
        let why = "a value of the compared type";
        let (l, r) = (self.coerce(l, &ty, why)?, self.coerce(r, &ty, why)?);
        Ok(self.fold_compare(l, op, r))
    }

    /// The type PostgreSQL's operator resolution compares `l` and `r` in (arrays: only
    /// arrays of one type).
    pub(super) fn comparison_type(&self, l: &Typed, r: &Typed) -> Result<ColumnType> {
        use ColumnType as T;
        Ok(match (&l.ty, &r.ty) {
            (Ty::Unknown(_), Ty::Unknown(_)) => T::Text,
            (Ty::Unknown(_), Ty::Known(t)) | (Ty::Known(t), Ty::Unknown(_)) => t.clone(),
            (Ty::Known(a), Ty::Known(b)) if a == b => a.clone(),
            (Ty::Known(a), Ty::Known(b)) if is_number(a) && is_number(b) => {
                if a.is_float() || b.is_float() {
                    if *a == T::Float4 && *b == T::Float4 {
                        T::Float4
                    } else {
                        T::Float8
                    }
                } else if *a == T::Numeric || *b == T::Numeric {
                    T::Numeric
                } else {
                    T::Int8
                }
            }
            (Ty::Known(a), Ty::Known(b)) => match (rank(a), rank(b)) {
                (Some((1, x)), Some((1, y))) => {
                    if x >= y {
                        a.clone()
                    } else {
                        b.clone()
                    }
                }
                _ => {
                    return Err(error(
                        r.at,
                        &format!("a value comparable with {}, found {}", a.name(), b.name()),
                    ))
                }
            },
        })
    }

    /// `l op r` (both of one type), computed now when both are constants (NULL when either
    /// is NULL: the operator is strict); a constant on the left moves right (so `'x' =
    /// lower(s)` is indexed as `lower(s) = 'x'`).
    pub(super) fn fold_compare(&self, l: Scalar, op: CmpOp, r: Scalar) -> Expr {
        match (l, r) {
            (Scalar::Const(None), _) | (_, Scalar::Const(None)) => Expr::Const(None),
            (Scalar::Const(Some(a)), Scalar::Const(Some(b))) => {
                Expr::Const(Some(op.holds(compare(&a, &b))))
            }
            (c @ Scalar::Const(_), e) => Expr::Compare {
                left: e,
                op: op.flipped(),
                right: c,
            },
            (left, right) => Expr::Compare { left, op, right },
        }
    }
}

/// A literal's type and value (`negative`: with a leading minus).
pub(super) fn literal(raw: &Raw, negative: bool, at: usize) -> Result<Typed> {
    let sign = if negative { "-" } else { "" };
    Ok(match raw {
        Raw::Integer(s) => {
            let text = format!("{sign}{s}");
            match text.parse::<i64>() {
                Ok(i) if i32::try_from(i).is_ok() => {
                    known(Scalar::Const(Some(Value::Int(i))), ColumnType::Int4, at)
                }
                Ok(i) => known(Scalar::Const(Some(Value::Int(i))), ColumnType::Int8, at),
                Err(_) => numeric_literal(&text, at)?,
            }
        }
        Raw::Decimal(s) => numeric_literal(&format!("{sign}{s}"), at)?,
        Raw::Str(s) => Typed {
            s: Scalar::Const(None),
            ty: Ty::Unknown(Some(s.clone())),
            at,
        },
        Raw::Null => Typed {
            s: Scalar::Const(None),
            ty: Ty::Unknown(None),
            at,
        },
        Raw::Bool(b) => known(Scalar::Const(Some(Value::Bool(*b))), ColumnType::Bool, at),
        Raw::Param(n) => return Err(error(at, &format!("${n} bound before typing"))),
    })
}

fn numeric_literal(text: &str, at: usize) -> Result<Typed> {
    let n = Numeric::parse(text).ok_or_else(|| error(at, "a number within numeric's range"))?;
    Ok(known(
        Scalar::Const(Some(Value::Numeric(n))),
        ColumnType::Numeric,
        at,
    ))
}
