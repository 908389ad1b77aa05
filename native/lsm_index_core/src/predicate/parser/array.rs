//! Arrays typed as PostgreSQL types them: `ARRAY[...]` in its elements' common type (a direct
//! cast types the elements: `ARRAY[]::int4[]`), `@>` / `<@` / `&&` and array comparisons
//! between arrays of one type exactly (`int4[] = int8[]` has no operator; an untyped literal
//! takes the other side's type), `x op ANY | ALL (array)` in the type `x op element`
//! resolves to (an untyped array literal or parameter is an array of `x`'s type), and
//! `cardinality` / `array_length`. `column = ANY(constant)` becomes an IN list, so it is
//! indexed like one.

use super::fold::is_null;
use super::grammar::{Node, Spanned};
use super::scalar::{Ty, Typed};
use super::Parser;
use crate::error::Result;
use crate::predicate::eval::eval;
use crate::predicate::lexer::error;
use crate::predicate::{ArrayOp, CmpOp, ColumnType, Expr, Func, Scalar, Value};

fn known(s: Scalar, ty: ColumnType, at: usize) -> Typed {
    Typed {
        s,
        ty: Ty::Known(ty),
        at,
    }
}

impl Parser<'_> {
    /// `ARRAY[items]`, its elements cast to `element` when the constructor is cast directly
    /// (PostgreSQL coerces each element then; `ARRAY[]` needs such a cast).
    pub(super) fn array_ctor(
        &self,
        items: &[Spanned],
        element: Option<(&ColumnType, usize)>,
        at: usize,
    ) -> Result<Typed> {
        let typed: Vec<Typed> = items
            .iter()
            .map(|i| match element {
                Some((t, type_at)) => {
                    let cast = Node::Cast(Box::new(i.clone()), t.clone(), type_at);
                    self.scalar(&Spanned {
                        at: i.at,
                        node: cast,
                    })
                }
                None => self.scalar(i),
            })
            .collect::<Result<_>>()?;
        if let Some(t) = typed
            .iter()
            .find(|t| matches!(t.ty, Ty::Known(ColumnType::Array(_))))
        {
            return Err(error(
                t.at,
                "a one-dimensional array: multi-dimensional arrays are not supported",
            ));
        }
        let ty = match element {
            Some((t, _)) => t.clone(),
            None if typed.is_empty() => {
                return Err(error(
                    at,
                    "an ARRAY[] with a type: cannot determine the type of an empty array \
                     (cast it: ARRAY[]::int4[])",
                ))
            }
            None => self.common_type(&typed.iter().collect::<Vec<_>>())?,
        };
        let why = "elements of one type in ARRAY[...]";
        let items: Vec<Scalar> = typed
            .into_iter()
            .map(|t| self.coerce(t, &ty, why))
            .collect::<Result<_>>()?;
        let consts: Option<Vec<Option<Value>>> = items
            .iter()
            .map(|s| match s {
                Scalar::Const(v) => Some(v.clone()),
                _ => None,
            })
            .collect();
        Ok(match consts {
            Some(values) => known(Scalar::Const(Some(Value::Array(values))), ty.array_of(), at),
            None => known(Scalar::Array(items, ty.clone()), ty.array_of(), at),
        })
    }

    /// `l op r` for `@>`, `<@`, `&&`: two arrays of one type.
    pub(super) fn array_op(
        &self,
        op: ArrayOp,
        l: &Spanned,
        r: &Spanned,
        at: usize,
    ) -> Result<Expr> {
        let (l, r) = (self.scalar(l)?, self.scalar(r)?);
        let no_operator = |a: &Ty, b: &Ty| {
            let name = |t: &Ty| match t {
                Ty::Known(t) => t.name().into_owned(),
                Ty::Unknown(_) => "unknown".into(),
            };
            error(
                at,
                &format!(
                    "an operator PostgreSQL has, not {} {} {}",
                    name(a),
                    op.symbol(),
                    name(b)
                ),
            )
        };
        let ty = match (&l.ty, &r.ty) {
            (Ty::Known(a @ ColumnType::Array(_)), Ty::Unknown(_))
            | (Ty::Unknown(_), Ty::Known(a @ ColumnType::Array(_))) => a.clone(),
            (Ty::Known(a @ ColumnType::Array(_)), Ty::Known(b)) if a == b => a.clone(),
            (a, b) => return Err(no_operator(a, b)),
        };
        let why = "an array of the other side's type";
        let (l, r) = (self.coerce(l, &ty, why)?, self.coerce(r, &ty, why)?);
        Ok(match (l, r) {
            // strict: NULL, as the planner folds it
            (l, r) if is_null(&l) || is_null(&r) => Expr::Const(None),
            (Scalar::Const(Some(Value::Array(a))), Scalar::Const(Some(Value::Array(b)))) => {
                Expr::Const(Some(op.holds(&a, &b)))
            }
            (c @ Scalar::Const(_), e) => Expr::ArrayOp {
                left: e,
                op: op.flipped(),
                right: c,
            },
            (left, right) => Expr::ArrayOp { left, op, right },
        })
    }

    /// `left op ANY | ALL (array)`.
    pub(super) fn any_all(
        &self,
        op: CmpOp,
        all: bool,
        left: &Spanned,
        array: &Spanned,
    ) -> Result<Expr> {
        let (left, array) = (self.scalar(left)?, self.scalar(array)?);
        let element = match &array.ty {
            Ty::Known(ColumnType::Array(e)) => Some((**e).clone()),
            Ty::Known(_) => {
                return Err(error(
                    array.at,
                    "an array on the right side of ANY/ALL (op ANY/ALL (array))",
                ))
            }
            Ty::Unknown(_) => None,
        };
        if let Ty::Known(ColumnType::Array(_)) = &left.ty {
            return Err(error(
                left.at,
                "a value on the left of ANY/ALL: arrays of arrays are not supported",
            ));
        }
        // the type `left op element` is compared in (an untyped array is of left's type)
        let probe = |ty: Option<ColumnType>| Typed {
            s: Scalar::Const(None),
            ty: ty.map_or(Ty::Unknown(None), Ty::Known),
            at: array.at,
        };
        let ty = match (&left.ty, element) {
            (Ty::Unknown(_), None) => ColumnType::Text,
            (Ty::Unknown(_), Some(e)) => e,
            (Ty::Known(l), None) => l.clone(),
            (Ty::Known(l), e) => self.comparison_type(
                &Typed {
                    s: Scalar::Const(None),
                    ty: Ty::Known(l.clone()),
                    at: left.at,
                },
                &probe(e),
            )?,
        };
        let why = "a value of the compared type";
        let left = self.coerce(left, &ty, why)?;
        let array = self.coerce(
            array,
            &ty.clone().array_of(),
            "an array of the compared type",
        )?;
        let e = Expr::AnyAll {
            left,
            op,
            all,
            array,
        };
        let Expr::AnyAll { left, array, .. } = &e else {
            return Ok(e);
        };
        if let (Scalar::Const(_), Scalar::Const(_)) = (left, array) {
            // all constants: computed by the planner
            return Ok(Expr::Const(eval(&e, &[]).unwrap_or(None)));
        }
        // `column = ANY(constant)`: an IN list (`<> ALL`: NOT IN), indexed as one. Not an
        // empty array (false even for NULL) nor one NULL (`column IN (NULL)` is folded)
        let column = match left {
            Scalar::Column(c) => Some(*c),
            Scalar::Cast(x, from, to) if exact_widening(from, to) => match **x {
                Scalar::Column(c) => Some(c),
                _ => None,
            },
            _ => None,
        };
        if let (Some(column), Scalar::Const(Some(Value::Array(items)))) = (column, array) {
            let in_list = matches!((op, all), (CmpOp::Eq, false) | (CmpOp::Ne, true));
            if in_list && !items.is_empty() && items.as_slice() != [None] {
                return Ok(Expr::In {
                    column,
                    values: items.clone(),
                    negated: all,
                });
            }
        }
        Ok(e)
    }

    /// `cardinality(array)` or `array_length(array, dimension)` (an int4).
    pub(super) fn array_call(&self, f: Func, args: &[Spanned], at: usize) -> Result<Typed> {
        let args: Vec<Typed> = args.iter().map(|a| self.scalar(a)).collect::<Result<_>>()?;
        let arity = if f == Func::Cardinality { 1 } else { 2 };
        if args.len() != arity {
            return Err(error(
                at,
                &format!(
                    "{}() with {}",
                    f.name(),
                    if arity == 1 {
                        "one argument"
                    } else {
                        "two arguments"
                    }
                ),
            ));
        }
        let mut args = args.into_iter();
        let (Some(array), dim) = (args.next(), args.next()) else {
            return Err(error(at, "an array argument"));
        };
        let array = match &array.ty {
            Ty::Known(ColumnType::Array(_)) => array.s,
            Ty::Known(t) => {
                return Err(error(
                    array.at,
                    &format!("an array argument to {}(), found {}", f.name(), t.name()),
                ))
            }
            Ty::Unknown(_) => {
                return Err(error(
                    array.at,
                    &format!(
                        "an array of a known type in {}() (an untyped literal has none: \
                         cast it)",
                        f.name()
                    ),
                ))
            }
        };
        let mut out = vec![array];
        if let Some(dim) = dim {
            let why = "an int4 dimension in array_length()";
            out.push(self.coerce(dim, &ColumnType::Int4, why)?);
        }
        self.fold(Scalar::Call(f, out, ColumnType::Int4), ColumnType::Int4, at)
    }
}

/// What a literal of type `ty` must be, for an error: `a valid int4`, and for an array type
/// the array text this engine reads.
pub(super) fn valid(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Array(_) => format!(
            "a valid {} (one-dimensional array text such as '{{1,NULL}}': multi-dimensional \
             arrays and explicit bounds are not supported)",
            ty.name()
        ),
        t => format!("a valid {}", t.name()),
    }
}

/// Whether a cast from `from` to `to` keeps every value as it is (integers among themselves,
/// float4 to float8: float4 values are held widened).
fn exact_widening(from: &ColumnType, to: &ColumnType) -> bool {
    (from.is_integer() && to.is_integer())
        || (*from == ColumnType::Float4 && *to == ColumnType::Float8)
}
