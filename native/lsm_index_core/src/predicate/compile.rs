//! Compiles a parsed WHERE clause for routing: the indexable conjunct (the equality-index
//! keys that every matching row must hit), the residual as bytecode for a small stack machine,
//! and the mask of columns the clause reads. Which keys index a clause is `plan`; the program
//! and its machine are `program`.
//!
//! ```text
//! WHERE user_id = 7 AND status IN ('open', 'late')
//!   index:    user_id ∈ {7}                       (the most selective indexable conjunct)
//!   residual: In(status, {'open','late'})         (everything else, AND-ed)
//!   mask:     {user_id, status}
//!
//! WHERE (user_id = 7 AND score > 2) OR status = 'late'      (no equality conjunct)
//!   index:    user_id ∈ {7}, status ∈ {'late'}    (an equality in every OR branch)
//!   residual: the whole clause
//! ```

pub use super::ordered::{ordered_plan, OrderedKind, OrderedPlan, Upper};
use super::plan::{branch_plans, by_column, dedup, has_equality, has_negated_subquery, Plans};
pub use super::plan::{IndexPlan, ScanReason, ViewPlan};
pub use super::program::{InSet, Op, Program, Stack};
use super::{Expr, Scalar, Value};

/// A compiled shape.
#[derive(Clone, Debug, PartialEq)]
pub struct Compiled {
    /// How to find it through the equality index: a matching row hits a key of at least one
    /// plan (one plan per column) or has its value in the view of one of `views`; both empty:
    /// it is checked on every change.
    pub index: Vec<IndexPlan>,
    /// The subquery results a matching row's value may be found in (when no equality
    /// indexes it: see [`ViewPlan`]).
    pub views: Vec<ViewPlan>,
    /// How to find it through an ordered index (a range of a column, a literal its text
    /// holds) when neither keys nor views do (see [`ordered_plan`]).
    pub ordered: Option<OrderedPlan>,
    /// The rest of the clause (the whole clause when not indexed).
    pub residual: Program,
    /// Columns the whole clause reads (bit `i` = column `i`).
    pub mask: Vec<u64>,
    /// Why it is scanned (`None`: indexed).
    pub scan: Option<ScanReason>,
}

/// Compiles `expr` (see the module doc).
pub fn compile(expr: &Expr) -> Compiled {
    compile_in(expr, false)
}

/// [`compile`], but a conjunct found through a subquery's view is preferred to an equality
/// (the router chooses between the two by how many shapes each would share a key with).
pub fn compile_preferring_views(expr: &Expr) -> Compiled {
    compile_in(expr, true)
}

fn compile_in(expr: &Expr, prefer_views: bool) -> Compiled {
    let mut mask = Vec::new();
    collect_columns(expr, &mut mask);
    let terms: Vec<&Expr> = match expr {
        Expr::And(terms) => terms.iter().collect(),
        e => vec![e],
    };
    let best = terms
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Plans::of_conjunct(t).map(|plans| (i, plans)))
        .min_by_key(|(_, plans)| {
            let (view, keys) = plans.cost();
            (view != prefer_views, keys)
        });
    let (plans, residual_terms): (Plans, Vec<&Expr>) = match best {
        // an equality conjunct: indexed, and left out of the residual (a key hit implies it;
        // an element plan's or a view plan's does not: it stays)
        Some((i, plans)) => {
            let implied = plans.views.is_empty() && plans.keys.iter().all(|p| !p.element);
            let rest = terms
                .iter()
                .enumerate()
                .filter(|(j, _)| !implied || *j != i)
                .map(|(_, t)| *t)
                .collect();
            (plans, rest)
        }
        // else a plan for every branch of its ORs, the whole clause checked on candidates
        None => {
            let mut plans = branch_plans(expr).unwrap_or_default();
            plans.keys = by_column(plans.keys);
            (plans, terms)
        }
    };
    let Plans { keys: index, views } = plans;
    // no equality, no view: a range or a LIKE literal, the clause checked on candidates
    let ordered = (index.is_empty() && views.is_empty())
        .then(|| ordered_plan(&residual_terms))
        .flatten();
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
    let scan = (index.is_empty() && views.is_empty() && ordered.is_none()).then(|| match expr {
        Expr::Const(_) => ScanReason::Constant,
        e if has_negated_subquery(e, false) => ScanReason::NegatedSubquery,
        e if has_equality(e) => ScanReason::BranchWithoutEquality,
        _ if residual_terms.iter().any(|t| is_like(t)) => ScanReason::PatternWithoutLiteral,
        _ => ScanReason::NoEquality,
    });
    Compiled {
        index,
        views,
        ordered,
        residual: program,
        mask,
        scan,
    }
}

/// Whether conjunct `e` is a [NOT] [I]LIKE (of a column or a function of one).
fn is_like(e: &Expr) -> bool {
    match e {
        Expr::Like { .. } | Expr::LikeOf { .. } => true,
        Expr::Not(inner) => is_like(inner),
        _ => false,
    }
}

fn collect_columns(e: &Expr, mask: &mut Vec<u64>) {
    e.columns(&mut |c: usize| {
        if mask.len() <= c / 64 {
            mask.resize(c / 64 + 1, 0);
        }
        mask[c / 64] |= 1 << (c % 64);
    });
}

/// `v` added to the constant pool: its index.
fn constant(p: &mut Program, v: &Value) -> u32 {
    p.constants.push(v.clone());
    (p.constants.len() - 1) as u32
}

fn emit(e: &Expr, p: &mut Program) {
    match e {
        Expr::Const(b) => p.ops.push(Op::Const(*b)),
        Expr::Cmp { column, op, value } => {
            let constant = value.as_ref().map(|v| constant(p, v));
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
        Expr::InSubquery {
            columns,
            position,
            negated,
        } => {
            p.column_lists
                .push(columns.iter().map(|&c| c as u32).collect());
            p.ops.push(Op::InView {
                columns: (p.column_lists.len() - 1) as u32,
                position: *position,
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
        // an array column against a constant: read in place (no copy of the row's array)
        Expr::ArrayOp {
            left: Scalar::Column(column),
            op,
            right: Scalar::Const(Some(v @ Value::Array(_))),
        } => {
            let constant = constant(p, v);
            p.ops.push(Op::ArrayOp {
                column: *column as u32,
                op: *op,
                constant,
            });
        }
        Expr::AnyAll {
            left: Scalar::Const(x),
            op,
            all,
            array: Scalar::Column(column),
        } => {
            let constant = x.as_ref().map(|v| constant(p, v));
            p.ops.push(Op::AnyOf {
                column: *column as u32,
                op: *op,
                all: *all,
                constant,
            });
        }
        Expr::Compare { .. }
        | Expr::IsNullOf { .. }
        | Expr::LikeOf { .. }
        | Expr::Truth(_)
        | Expr::ArrayOp { .. }
        | Expr::AnyAll { .. } => {
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
    use crate::predicate::{eval, parse, ColumnType, Value};
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
                keys: vec![Value::Int(7)],
                element: false,
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
            element: false,
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

    /// A bool or enum column passes a large share of rows whatever its keys: another
    /// column's equality is indexed first, even with more keys (found by the end-to-end demo:
    /// `active AND id IN (...)` indexed on `active` made every change a candidate of it).
    #[test]
    fn small_domain_columns_are_indexed_last() {
        let mut cols = columns();
        cols.push(("e".into(), ColumnType::enumeration(["x", "y", "z"])));
        let indexed = |sql: &str| -> Vec<usize> {
            let c = compile(&parse(sql, &cols).unwrap());
            c.index.iter().map(|p| p.column).collect()
        };
        assert_eq!(indexed("b AND a IN (1, 2, 3)"), vec![0]);
        assert_eq!(indexed("e IN ('x', 'y') AND a IN (1, 2, 3)"), vec![0]);
        assert_eq!(indexed("e = 'x' AND f > 1"), vec![4], "the only equality");
        assert_eq!(
            indexed("(b AND a = 1) OR (e = 'x' AND s = 'q')"),
            vec![0, 1]
        );
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
                    || c.index
                        .iter()
                        .any(|p| row[p.column].as_ref().is_some_and(|v| p.finds(v)));
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
