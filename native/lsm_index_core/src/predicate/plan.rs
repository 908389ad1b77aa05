//! Index planning: which equality keys every row matching a clause must hit (the conjunct
//! expected to be the most selective, see [`cost`], or a plan in every OR branch) or which
//! subquery result its value must be in (a view plan, after any equality), and why a clause
//! without one is scanned. `compile` turns the plans and the rest of the clause into what the router runs.

use super::eval::compare;
use super::{ArrayOp, CmpOp, Expr, Func, Scalar, Value};
use std::cmp::Ordering;

/// How a shape is found: its rows all have `column` (or `lower`/`upper` of it) equal to one
/// of `keys` — or, for an element plan, an array in `column` holding one of `keys`.
#[derive(Clone, Debug, PartialEq)]
pub struct IndexPlan {
    /// The indexed column.
    pub column: usize,
    /// `Some(lower or upper)`: the keys are that function of the column's value.
    pub func: Option<Func>,
    /// The values (no NULL: a NULL never equals anything).
    pub keys: Vec<Value>,
    /// The keys are elements of the column's array (`tags @> '{a}'`, `tags && '{a,b}'`,
    /// `$1 = ANY(tags)`): a row is found through each of its array's elements. A key hit
    /// does not imply the conjunct (`@>` is indexed under one of its elements), so an element
    /// plan's conjunct stays in the residual.
    pub element: bool,
}

impl IndexPlan {
    /// Whether a row whose indexed column holds `v` is found through this plan: `v` (or
    /// `lower`/`upper` of it) is one of the keys, or for an element plan one of `v`'s
    /// elements is. What the router's index answers, for tests and reference checks.
    pub fn finds(&self, v: &Value) -> bool {
        let is_key = |x: &Value| self.keys.iter().any(|k| compare(k, x) == Ordering::Equal);
        match (self.element, self.func, v) {
            (true, _, Value::Array(elements)) => elements.iter().flatten().any(is_key),
            (true, _, _) => false,
            (false, None, v) => is_key(v),
            (false, Some(f), Value::Text(t)) => f.fold(t).is_some_and(|t| is_key(&Value::Text(t))),
            (false, Some(_), _) => false,
        }
    }
}

/// How a shape is found through a subquery's result (its view): every matching row has the
/// values of `columns` in the result of subquery `position` (a positive occurrence; `NOT IN`
/// never plans). The occurrence stays in the residual: the router's view of a shape may
/// differ from the shared one it finds candidates through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ViewPlan {
    /// The tested columns.
    pub columns: Vec<usize>,
    /// The subquery's position.
    pub position: u32,
}

/// Key plans and view plans that together find every matching row.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Plans {
    pub(super) keys: Vec<IndexPlan>,
    pub(super) views: Vec<ViewPlan>,
}

impl Plans {
    /// [`cost`], any plan with a view after every plan without (a view holds a number of
    /// keys known only at run time).
    pub(super) fn cost(&self) -> (bool, (bool, bool, usize)) {
        (!self.views.is_empty(), cost(&self.keys))
    }

    /// The plans of one conjunct: an equality's keys, else a positive subquery's view.
    pub(super) fn of_conjunct(e: &Expr) -> Option<Plans> {
        if let Some(plan) = indexable(e) {
            return Some(Plans {
                keys: vec![plan],
                views: vec![],
            });
        }
        match e {
            Expr::InSubquery {
                columns,
                position,
                negated: false,
            } => Some(Plans {
                keys: vec![],
                views: vec![ViewPlan {
                    columns: columns.clone(),
                    position: *position,
                }],
            }),
            _ => None,
        }
    }
}

/// Whether `e` tests a subquery negatively (a `NOT IN`, or an `IN` under NOT).
pub(super) fn has_negated_subquery(e: &Expr, negative: bool) -> bool {
    match e {
        Expr::InSubquery { negated, .. } => *negated != negative,
        Expr::Not(x) => has_negated_subquery(x, !negative),
        Expr::And(es) | Expr::Or(es) => es.iter().any(|x| has_negated_subquery(x, negative)),
        _ => false,
    }
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ScanReason {
    /// No condition an index serves: no equality on a column (or `lower`/`upper` of one),
    /// no range of an orderable column, no LIKE (`price <> 10`, `length(t) > 3`).
    NoEquality,
    /// An OR has a branch without such an equality: `a = 1 OR price > 10`.
    BranchWithoutEquality,
    /// The clause is a constant: `TRUE`.
    Constant,
    /// A subquery tested by NOT IN (or under NOT) is in the way: `x NOT IN (SELECT …)`.
    NegatedSubquery,
    /// Found only through a subquery's view, but its snapshot of that subquery held values
    /// the shared view lacks (the view index cannot find it by them).
    StaleSnapshot,
    /// No condition an index serves but a LIKE whose pattern holds no literal to find it by,
    /// or a negated one: `t LIKE '___'`, `t LIKE '%'`, `t NOT LIKE 'a%'`.
    PatternWithoutLiteral,
}

impl ScanReason {
    /// Every reason, in the order of [`ScanReason::index`].
    pub const ALL: [ScanReason; 6] = [
        ScanReason::NoEquality,
        ScanReason::BranchWithoutEquality,
        ScanReason::Constant,
        ScanReason::NegatedSubquery,
        ScanReason::StaleSnapshot,
        ScanReason::PatternWithoutLiteral,
    ];

    /// Its name in metrics.
    pub fn name(self) -> &'static str {
        match self {
            ScanReason::NoEquality => "no_equality",
            ScanReason::BranchWithoutEquality => "or_branch_without_equality",
            ScanReason::Constant => "constant",
            ScanReason::NegatedSubquery => "negated_subquery",
            ScanReason::StaleSnapshot => "stale_snapshot",
            ScanReason::PatternWithoutLiteral => "pattern_without_literal",
        }
    }

    /// Its position in [`ScanReason::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// Whether some part of `e` is an indexable equality.
pub(super) fn has_equality(e: &Expr) -> bool {
    indexable(e).is_some()
        || match e {
            Expr::And(es) | Expr::Or(es) => es.iter().any(has_equality),
            _ => false,
        }
}

/// How many rows a plan is expected to let through, as an order (lower first): a plan on a
/// column with a small domain (bool, enum) passes a large share of every table's rows
/// whatever its keys — `active AND id IN (1, 2, 3)` is found through `id`, and
/// `project_id IN (1, 2, 3) AND status IN ('open', 'blocked')` through `project_id` —, so
/// plans on other columns come first; then fewer keys. There are no statistics to do
/// better: the domain is what the type says.
pub(super) fn cost(plans: &[IndexPlan]) -> (bool, bool, usize) {
    let coarse = plans.iter().any(|p| {
        p.keys
            .iter()
            .any(|k| matches!(k, Value::Bool(_) | Value::Enum(_)))
    });
    // an element plan after a plain equality: a row's array probes one key per element, and
    // its candidates are checked again (see [`IndexPlan::element`])
    let element = plans.iter().any(|p| p.element);
    (coarse, element, plans.iter().map(|p| p.keys.len()).sum())
}

/// The index keys of a conjunct that is an equality (or a union of equalities) on one
/// column: `col = v`, `col IN (...)`, or an OR of those on the same column.
pub(super) fn indexable(e: &Expr) -> Option<IndexPlan> {
    if let Some(plan) = element_plan(e) {
        return Some(plan);
    }
    let plan = equality(e)?;
    // arrays are not indexed (yet): an array equality is checked by the residual
    (!plan.keys.iter().any(|k| matches!(k, Value::Array(_)))).then_some(plan)
}

fn equality(e: &Expr) -> Option<IndexPlan> {
    match e {
        Expr::Cmp {
            column,
            op: CmpOp::Eq,
            value,
        } => Some(IndexPlan {
            column: *column,
            func: None,
            keys: value.iter().cloned().collect(),
            element: false,
        }),
        Expr::In {
            column,
            values,
            negated: false,
        } => Some(IndexPlan {
            column: *column,
            func: None,
            keys: dedup(values.iter().flatten().cloned().collect()),
            element: false,
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
                element: false,
            })
        }
        Expr::Or(alternatives) => {
            let mut plans = alternatives.iter().map(indexable);
            let mut first = plans.next()??;
            for p in plans {
                let p = p?;
                if (p.column, p.func, p.element) != (first.column, first.func, first.element) {
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

/// The element plan of an array conjunct on a column (see [`IndexPlan::element`]):
/// `col @> const` under one of the constant's elements (a row's array must hold them all; the
/// first, as no statistics tell the rarest), `col && const` under each (it must hold one),
/// `const = ANY(col)` under the constant. NULL elements are never equal to anything, so a
/// constant of NULLs only gives a plan with no key: never true, never found. `col @> '{}'`
/// (every non-NULL array) and `<@` (an empty array is in every array) are not indexable.
fn element_plan(e: &Expr) -> Option<IndexPlan> {
    let (column, keys) = match e {
        Expr::ArrayOp {
            left: Scalar::Column(column),
            op,
            right: Scalar::Const(Some(Value::Array(elements))),
        } => {
            let present = elements.iter().flatten().cloned();
            let keys: Vec<Value> = match op {
                ArrayOp::Contains if elements.is_empty() => return None,
                ArrayOp::Contains => present.take(1).collect(),
                ArrayOp::Overlaps => dedup(present.collect()),
                ArrayOp::ContainedBy => return None,
            };
            (*column, keys)
        }
        Expr::AnyAll {
            left: Scalar::Const(x),
            op: CmpOp::Eq,
            all: false,
            array: Scalar::Column(column),
        } => (*column, x.iter().cloned().collect()),
        _ => return None,
    };
    // an array of arrays is never a column type: elements are scalars (a plain key)
    Some(IndexPlan {
        column,
        func: None,
        keys,
        element: true,
    })
}

/// Plans that every matching row hits one key or view of, through ORs and ANDs (no
/// expansion into disjunctive form: an OR needs a plan for every branch, an AND takes its
/// term of the lowest cost): `(a = 1 AND x > 2) OR (b = 5 AND x < 1)` gives `a ∈ {1}`, `b ∈
/// {5}`. `None` when some branch has no equality or positive subquery to plan on.
pub(super) fn branch_plans(e: &Expr) -> Option<Plans> {
    if let Some(plans) = Plans::of_conjunct(e) {
        return Some(plans);
    }
    match e {
        Expr::Or(alternatives) => {
            let mut plans = Plans::default();
            for a in alternatives {
                let p = branch_plans(a)?;
                plans.keys.extend(p.keys);
                for v in p.views {
                    if !plans.views.contains(&v) {
                        plans.views.push(v);
                    }
                }
            }
            Some(plans)
        }
        Expr::And(terms) => terms
            .iter()
            .filter_map(branch_plans)
            .min_by_key(Plans::cost),
        _ => None,
    }
}

/// `plans` merged per column (keys united), by column.
pub(super) fn by_column(plans: Vec<IndexPlan>) -> Vec<IndexPlan> {
    let mut merged: Vec<IndexPlan> = Vec::new();
    for p in plans {
        match merged
            .iter_mut()
            .find(|m| (m.column, m.func, m.element) == (p.column, p.func, p.element))
        {
            Some(m) => m.keys.extend(p.keys),
            None => merged.push(p),
        }
    }
    for m in &mut merged {
        m.keys = dedup(std::mem::take(&mut m.keys));
    }
    merged.sort_by_key(|m| (m.column, m.func.map(|f| f as u8), m.element));
    merged
}

pub(super) fn dedup(mut values: Vec<Value>) -> Vec<Value> {
    values.sort_by(compare);
    values.dedup_by(|a, b| compare(a, b) == Ordering::Equal);
    values
}
