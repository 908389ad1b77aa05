//! Compiles a parsed WHERE clause for routing: the indexable conjunct (the equality-index
//! keys that every matching row must hit), the residual as bytecode for a small stack machine,
//! and the mask of columns the clause reads. The program and its machine are `program`.
//!
//! ```text
//! WHERE user_id = 7 AND status IN ('open', 'late')
//!   index:    user_id ∈ {7}                       (fewest keys among indexable conjuncts)
//!   residual: In(status, {'open','late'})         (everything else, AND-ed)
//!   mask:     {user_id, status}
//!
//! WHERE (user_id = 7 AND score > 2) OR status = 'late'      (no equality conjunct)
//!   index:    user_id ∈ {7}, status ∈ {'late'}    (an equality in every OR branch)
//!   residual: the whole clause
//! ```

use super::eval::compare;
pub use super::program::{InSet, Op, Program, Stack};
use super::{CmpOp, Expr, Func, Scalar, Value};
use std::cmp::Ordering;

/// How a shape is found: its rows all have `column` (or `lower`/`upper` of it) equal to one
/// of `keys`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexPlan {
    /// The indexed column.
    pub column: usize,
    /// `Some(lower or upper)`: the keys are that function of the column's value.
    pub func: Option<Func>,
    /// The values (no NULL: a NULL never equals anything).
    pub keys: Vec<Value>,
}

/// The column (and key function) a scalar is, when it can be indexed: a column, or
/// `lower`/`upper` of one.
fn key_of(s: &Scalar) -> Option<(usize, Option<Func>)> {
    match s {
        Scalar::Column(c) => Some((*c, None)),
        Scalar::Call(f, args, _) if f.fold("").is_some() => match args.as_slice() {
            [Scalar::Column(c)] => Some((*c, Some(*f))),
            _ => None,
        },
        _ => None,
    }
}

/// Why a shape is checked on every change instead of found through the equality index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScanReason {
    /// No equality on a column (or `lower`/`upper` of one) anywhere: `price > 10`.
    NoEquality,
    /// An OR has a branch without such an equality: `a = 1 OR price > 10`.
    BranchWithoutEquality,
    /// The clause is a constant: `TRUE`.
    Constant,
}

impl ScanReason {
    /// Every reason, in the order of [`ScanReason::index`].
    pub const ALL: [ScanReason; 3] = [
        ScanReason::NoEquality,
        ScanReason::BranchWithoutEquality,
        ScanReason::Constant,
    ];

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ScanReason::NoEquality => "no_equality",
            ScanReason::BranchWithoutEquality => "or_branch_without_equality",
            ScanReason::Constant => "constant",
        }
    }

    /// Its position in [`ScanReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// A compiled shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// How to find it through the equality index: a matching row hits a key of at least one
    /// plan (one plan per column); empty: it is checked on every change.
    pub index: Vec<IndexPlan>,
    /// The rest of the clause (the whole clause when not indexed).
    pub residual: Program,
    /// Columns the whole clause reads (bit `i` = column `i`).
    pub mask: Vec<u64>,
    /// Why it is scanned (`None`: indexed).
    pub scan: Option<ScanReason>,
}

/// Compiles `expr` (see the module doc).
pub fn compile(expr: &Expr) -> Compiled {
    let mut mask = Vec::new();
    collect_columns(expr, &mut mask);
    let terms: Vec<&Expr> = match expr {
        Expr::And(terms) => terms.iter().collect(),
        e => vec![e],
    };
    let best = terms
        .iter()
        .enumerate()
        .filter_map(|(i, t)| indexable(t).map(|plan| (i, plan)))
        .min_by_key(|(_, plan)| plan.keys.len());
    let (index, residual_terms): (Vec<IndexPlan>, Vec<&Expr>) = match best {
        // an equality conjunct: indexed, and left out of the residual (a key hit implies it)
        Some((i, plan)) => (
            vec![plan],
            terms
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, t)| *t)
                .collect(),
        ),
        // else a plan for every branch of its ORs, the whole clause checked on candidates
        None => (branch_plans(expr).map(by_column).unwrap_or_default(), terms),
    };
    let mut program = Program::default();
    match residual_terms.as_slice() {
        [] => program.ops.push(Op::Const(Some(true))),
        [one] => emit(one, &mut program),
        many => {
            for t in many {
                emit(t, &mut program);
            }
            program.ops.push(Op::And(many.len() as u32));
        }
    }
    let scan = index.is_empty().then(|| match expr {
        Expr::Const(_) => ScanReason::Constant,
        e if has_equality(e) => ScanReason::BranchWithoutEquality,
        _ => ScanReason::NoEquality,
    });
    Compiled {
        index,
        residual: program,
        mask,
        scan,
    }
}

/// Whether some part of `e` is an indexable equality.
fn has_equality(e: &Expr) -> bool {
    indexable(e).is_some()
        || match e {
            Expr::And(es) | Expr::Or(es) => es.iter().any(has_equality),
            _ => false,
        }
}

/// The index keys of a conjunct that is an equality (or a union of equalities) on one
/// column: `col = v`, `col IN (...)`, or an OR of those on the same column.
fn indexable(e: &Expr) -> Option<IndexPlan> {
    match e {
        Expr::Cmp {
            column,
            op: CmpOp::Eq,
            value,
        } => Some(IndexPlan {
            column: *column,
            func: None,
            keys: value.iter().cloned().collect(),
        }),
        Expr::In {
            column,
            values,
            negated: false,
        } => Some(IndexPlan {
            column: *column,
            func: None,
            keys: dedup(values.iter().flatten().cloned().collect()),
        }),
        // `lower(col) = 'x'`: the key is the function's result
        Expr::Compare {
            left,
            op: CmpOp::Eq,
            right: Scalar::Const(value),
        } => {
            let (column, func) = key_of(left)?;
            Some(IndexPlan {
                column,
                func,
                keys: value.iter().cloned().collect(),
            })
        }
        Expr::Or(alternatives) => {
            let mut plans = alternatives.iter().map(indexable);
            let mut first = plans.next()??;
            for p in plans {
                let p = p?;
                if (p.column, p.func) != (first.column, first.func) {
                    return None;
                }
                first.keys.extend(p.keys);
            }
            first.keys = dedup(first.keys);
            Some(first)
        }
        _ => None,
    }
}

/// Plans that every matching row hits one key of, through ORs and ANDs (no expansion into
/// disjunctive form: an OR needs a plan for every branch, an AND takes its term with the
/// fewest keys): `(a = 1 AND x > 2) OR (b = 5 AND x < 1)` gives `a ∈ {1}`, `b ∈ {5}`.
/// `None` when some branch has no equality to index.
fn branch_plans(e: &Expr) -> Option<Vec<IndexPlan>> {
    if let Some(plan) = indexable(e) {
        return Some(vec![plan]);
    }
    match e {
        Expr::Or(alternatives) => {
            let mut plans = Vec::new();
            for a in alternatives {
                plans.extend(branch_plans(a)?);
            }
            Some(plans)
        }
        Expr::And(terms) => terms
            .iter()
            .filter_map(branch_plans)
            .min_by_key(|plans| plans.iter().map(|p| p.keys.len()).sum::<usize>()),
        _ => None,
    }
}

/// `plans` merged per column (keys united), by column.
fn by_column(plans: Vec<IndexPlan>) -> Vec<IndexPlan> {
    let mut merged: Vec<IndexPlan> = Vec::new();
    for p in plans {
        match merged
            .iter_mut()
            .find(|m| (m.column, m.func) == (p.column, p.func))
        {
            Some(m) => m.keys.extend(p.keys),
            None => merged.push(p),
        }
    }
    for m in &mut merged {
        m.keys = dedup(std::mem::take(&mut m.keys));
    }
    merged.sort_by_key(|m| (m.column, m.func.map(|f| f as u8)));
    merged
}

fn dedup(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by(compare);
    values.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
    values
}

fn collect_columns(e: &Expr, mask: &mut Vec<u64>) {
    e.columns(&mut |c: usize| {
        if mask.len() <= c / 64 {
            mask.resize(c / 64 + 1, 0);
        }
        mask[c / 64] |= 1 << (c % 64);
    });
}

fn emit(e: &Expr, p: &mut Program) {
    match e {
        Expr::Const(b) => p.ops.push(Op::Const(*b)),
        Expr::Cmp { column, op, value } => {
            let constant = value.as_ref().map(|v| {
                p.constants.push(v.clone());
                (p.constants.len() - 1) as u32
            });
            p.ops.push(Op::Cmp {
                column: *column as u32,
                op: *op,
                constant,
            });
        }
        Expr::In {
            column,
            values,
            negated,
        } => {
            p.sets.push(InSet {
                values: dedup(values.iter().flatten().cloned().collect()),
                has_null: values.iter().any(Option::is_none),
            });
            p.ops.push(Op::In {
                column: *column as u32,
                set: (p.sets.len() - 1) as u32,
                negated: *negated,
            });
        }
        Expr::IsNull { column, negated } => p.ops.push(Op::IsNull {
            column: *column as u32,
            negated: *negated,
        }),
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated,
        } => {
            p.patterns.push(if *case_insensitive {
                crate::predicate::eval::fold_case(pattern)
            } else {
                pattern.clone()
            });
            p.ops.push(Op::Like {
                column: *column as u32,
                pattern: (p.patterns.len() - 1) as u32,
                case_insensitive: *case_insensitive,
                negated: *negated,
            });
        }
        Expr::Compare { .. } | Expr::IsNullOf { .. } | Expr::LikeOf { .. } | Expr::Truth(_) => {
            p.exprs.push(e.clone());
            p.ops.push(Op::Eval((p.exprs.len() - 1) as u32));
        }
        Expr::IsTruth {
            expr,
            value,
            negated,
        } => {
            emit(expr, p);
            p.ops.push(Op::IsTruth {
                value: *value,
                negated: *negated,
            });
        }
        Expr::Not(inner) => {
            emit(inner, p);
            p.ops.push(Op::Not);
        }
        Expr::And(es) | Expr::Or(es) => {
            for e in es {
                emit(e, p);
            }
            let n = es.len() as u32;
            p.ops.push(if matches!(e, Expr::And(_)) {
                Op::And(n)
            } else {
                Op::Or(n)
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::tests::columns;
    use crate::predicate::{eval, parse};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    #[test]
    fn picks_the_most_selective_equality() {
        let c = compile(&parse("s IN ('x', 'y', 'x') AND a = 7 AND f > 1", &columns()).unwrap());
        assert_eq!(
            c.index,
            vec![IndexPlan {
                column: 0,
                func: None,
                keys: vec![Value::Int(7)]
            }]
        );
        assert_eq!(c.mask, vec![0b111]);
        let c = compile(&parse("(a = 1 OR a IN (2, 3, NULL)) AND s = 'x'", &columns()).unwrap());
        assert_eq!(
            c.index.iter().map(|p| p.keys.len()).collect::<Vec<_>>(),
            vec![1],
            "s = 'x' has 1 key, a has 3"
        );
        let plan = |column, keys| IndexPlan {
            column,
            func: None,
            keys,
        };
        let c = compile(&parse("a = 1 OR s = 'x'", &columns()).unwrap());
        let (one, x) = (Value::Int(1), Value::Text("x".into()));
        assert_eq!(c.index, vec![plan(0, vec![one.clone()]), plan(1, vec![x])]);
        // every branch's equality; the whole clause is the residual
        let sql = "(a = 1 AND f > 2) OR (a IN (1, 2) AND f < 1) OR NOT (a <> 3)";
        assert!(compile(&parse(sql, &columns()).unwrap()).index.is_empty());
        let sql = "(a = 1 AND f > 2) OR (a IN (1, 2) AND f < 1)";
        let c = compile(&parse(sql, &columns()).unwrap());
        assert_eq!(c.index, vec![plan(0, vec![one, Value::Int(2)])]);
        assert_ne!(c.residual.ops, vec![Op::Const(Some(true))]);
        let c = compile(&parse("a <> 1", &columns()).unwrap());
        assert!(c.index.is_empty());
        let c = compile(&parse("a = 1", &columns()).unwrap());
        assert_eq!(c.residual.ops, vec![Op::Const(Some(true))]);
    }

    fn random_expr(rng: &mut StdRng, depth: u32) -> String {
        let leaf = |rng: &mut StdRng| -> String {
            let ops = ["=", "<>", "<", "<=", ">", ">="];
            let op = ops[rng.gen_range(0..ops.len())];
            match rng.gen_range(0..9) {
                0 => format!("a {op} {}", rng.gen_range(-2..3)),
                1 => format!(
                    "a IN ({}, {}{})",
                    rng.gen_range(-2..3),
                    rng.gen_range(-2..3),
                    if rng.gen_bool(0.3) { ", NULL" } else { "" }
                ),
                2 => format!(
                    "a NOT IN ({}{})",
                    rng.gen_range(-2..3),
                    if rng.gen_bool(0.3) { ", NULL" } else { "" }
                ),
                3 => format!("s {op} '{}'", ["a", "b", "ab", ""][rng.gen_range(0..4)]),
                4 => format!(
                    "s {}LIKE '{}'",
                    if rng.gen_bool(0.3) { "NOT " } else { "" },
                    ["a%", "%b", "_", "%"][rng.gen_range(0..4)]
                ),
                5 => format!(
                    "f {op} {}",
                    ["0", "1.5", "'NaN'", "'-Infinity'"][rng.gen_range(0..4)]
                ),
                6 => format!(
                    "{} IS {}NULL",
                    ["a", "s", "f", "b"][rng.gen_range(0..4)],
                    if rng.gen_bool(0.5) { "NOT " } else { "" }
                ),
                7 => "b".to_string(),
                _ => format!(
                    "a = {}",
                    if rng.gen_bool(0.2) {
                        "NULL".to_string()
                    } else {
                        rng.gen_range(-2..3).to_string()
                    }
                ),
            }
        };
        if depth == 0 || rng.gen_bool(0.35) {
            return leaf(rng);
        }
        match rng.gen_range(0..4) {
            0 => format!("NOT ({})", random_expr(rng, depth - 1)),
            1 => format!(
                "({} OR {})",
                random_expr(rng, depth - 1),
                random_expr(rng, depth - 1)
            ),
            _ => format!(
                "({} AND {})",
                random_expr(rng, depth - 1),
                random_expr(rng, depth - 1)
            ),
        }
    }

    fn random_row(rng: &mut StdRng) -> Vec<Option<Value>> {
        let null = |rng: &mut StdRng| rng.gen_bool(0.2);
        vec![
            (!null(rng)).then(|| Value::Int(rng.gen_range(-2..3))),
            (!null(rng))
                .then(|| Value::Text(["a", "b", "ab", "", "ba"][rng.gen_range(0..5)].into())),
            (!null(rng)).then(|| {
                Value::Float([0.0, 1.5, f64::NAN, f64::NEG_INFINITY, 3.0][rng.gen_range(0..5)])
            }),
            (!null(rng)).then(|| Value::Bool(rng.gen_bool(0.5))),
        ]
    }

    /// The compiled form (index conjunct + residual program) selects exactly the rows the
    /// reference evaluator says are true; the program alone agrees with it in all three values.
    #[test]
    fn compiled_agrees_with_the_reference_evaluator() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut stack = Stack::new();
        let mut matched = 0;
        for _ in 0..3_000 {
            let sql = random_expr(&mut rng, 4);
            let expr = parse(&sql, &columns()).unwrap();
            let c = compile(&expr);
            let whole = compile(&Expr::Not(Box::new(Expr::Not(Box::new(expr.clone())))));
            for _ in 0..20 {
                let row = random_row(&mut rng);
                let want = eval(&expr, &row).unwrap();
                assert_eq!(
                    whole.residual.run(&row, &mut stack),
                    Ok(want),
                    "{sql} on {row:?}"
                );
                let indexed = c.index.is_empty()
                    || c.index.iter().any(|p| {
                        row[p.column].as_ref().is_some_and(|v| {
                            p.keys.iter().any(|k| compare(k, v) == Ordering::Equal)
                        })
                    });
                let got = indexed && c.residual.run(&row, &mut stack) == Ok(Some(true));
                assert_eq!(got, want == Some(true), "{sql} on {row:?}");
                matched += usize::from(got);
            }
        }
        assert!(
            matched > 1_000,
            "the random shapes must match some rows: {matched}"
        );
    }
}
