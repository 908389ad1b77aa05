//! A compiled residual: postfix bytecode over a parsed row, run by a small stack machine of
//! truth values (false, true, unknown) with SQL's three-valued logic; built by `compile`.

use super::array::any_all;
use super::eval::{compare, eval, ilike_lowered, like, Truth};
use super::membership::{occurrence, Membership};
use super::{ArrayOp, CmpOp, EvalError, Expr, Value};
use std::hash::{Hash, Hasher};

/// One instruction of the residual program (postfix: operands first).
#[derive(Clone, Debug, PartialEq, Hash)]
pub enum Op {
    /// Push a constant truth value (`None`: unknown).
    Const(Option<bool>),
    /// Push `row[column] op consts[constant]`.
    Cmp {
        /// Column read.
        column: u32,
        /// Operator.
        op: CmpOp,
        /// Index into the constant pool (`None`: the literal was NULL).
        constant: Option<u32>,
    },
    /// Push `row[column] [NOT] IN sets[set]`.
    In {
        /// Column read.
        column: u32,
        /// Index into the set pool.
        set: u32,
        /// `NOT IN`.
        negated: bool,
    },
    /// Push `row[column] IS [NOT] NULL`.
    IsNull {
        /// Column read.
        column: u32,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// Push `row[column] [NOT] [I]LIKE patterns[pattern]`.
    Like {
        /// Column read.
        column: u32,
        /// Index into the pattern pool (lower-cased already for ILIKE).
        pattern: u32,
        /// `ILIKE`.
        case_insensitive: bool,
        /// `NOT LIKE`.
        negated: bool,
    },
    /// Push `row[column] op consts[constant]` for an array column and an array constant
    /// (`@>`, `<@`, `&&`).
    ArrayOp {
        /// Column read (an array).
        column: u32,
        /// Operator.
        op: ArrayOp,
        /// Index into the constant pool (an array).
        constant: u32,
    },
    /// Push `consts[constant] op ANY | ALL (row[column])` for an array column (`$1 =
    /// ANY(member_ids)`).
    AnyOf {
        /// Column read (an array).
        column: u32,
        /// Operator.
        op: CmpOp,
        /// `ALL`.
        all: bool,
        /// Index into the constant pool (`None`: the value was NULL).
        constant: Option<u32>,
    },
    /// Push `row[column_lists[columns]] [NOT] IN (subquery position)`, the subquery's result
    /// probed through the [`Membership`] given to [`Program::run_with`] (an evaluation error
    /// under [`Program::run`]).
    InView {
        /// Index into the column-list pool: the tested columns.
        columns: u32,
        /// The subquery's position.
        position: u32,
        /// `NOT IN`.
        negated: bool,
    },
    /// Push `exprs[expr]` evaluated by the reference evaluator (a condition over
    /// expressions: `lower(s) = 'x'`, `a + 1 > b`).
    Eval(u32),
    /// Pop one, push whether it is (`negated`: is not) `value` (`None`: unknown).
    IsTruth {
        /// The truth value compared with.
        value: Option<bool>,
        /// `IS NOT`.
        negated: bool,
    },
    /// Pop one, push its negation.
    Not,
    /// Pop `n`, push their AND.
    And(u32),
    /// Pop `n`, push their OR.
    Or(u32),
}

/// A sorted set of an `IN` list (NULLs noted apart).
#[derive(Clone, Debug, PartialEq)]
pub struct InSet {
    /// Non-null values, sorted by [`compare`].
    pub values: Vec<Value>,
    /// Whether the list held a NULL (a miss is then unknown, not false).
    pub has_null: bool,
}

/// A residual program and its pools.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Program {
    /// Instructions, postfix.
    pub ops: Vec<Op>,
    /// Literals of comparisons.
    pub constants: Vec<Value>,
    /// `IN` lists.
    pub sets: Vec<InSet>,
    /// `LIKE` patterns.
    pub patterns: Vec<String>,
    /// Conditions over expressions.
    pub exprs: Vec<Expr>,
    /// Columns tested against subqueries.
    pub column_lists: Vec<Vec<u32>>,
}

/// The machine's stack: inline for the usual shallow programs (no allocation per run).
pub type Stack = smallvec::SmallVec<[u8; 32]>;

/// Truth values on the machine's stack; ERROR (an evaluation error) absorbs every other.
const FALSE: u8 = 0;
const TRUE: u8 = 1;
const UNKNOWN: u8 = 2;
const ERROR: u8 = 3;

fn tri(b: Option<bool>) -> u8 {
    match b {
        Some(true) => TRUE,
        Some(false) => FALSE,
        None => UNKNOWN,
    }
}

fn truth(t: u8) -> Option<bool> {
    match t {
        TRUE => Some(true),
        FALSE => Some(false),
        _ => None,
    }
}

impl Program {
    /// Feeds the program to `h` so that equal programs hash equal (what interning compiled
    /// forms needs: unequal ones may collide, a full compare follows); cheaper than
    /// formatting it.
    pub fn hash_into<H: Hasher>(&self, h: &mut H) {
        self.ops.hash(h);
        h.write_usize(self.constants.len());
        for v in &self.constants {
            hash_value(v, h);
        }
        h.write_usize(self.sets.len());
        for set in &self.sets {
            set.has_null.hash(h);
            h.write_usize(set.values.len());
            for v in &set.values {
                hash_value(v, h);
            }
        }
        self.patterns.hash(h);
        self.column_lists.hash(h);
        if !self.exprs.is_empty() {
            // conditions over expressions are rare: their text is exact and cheap enough
            let _ = std::fmt::write(&mut HashWriter(h), format_args!("{:?}", self.exprs));
        }
    }
}

/// Feeds `v` to `h`: equal values (`PartialEq`) hash equal, except `-0.0`/`0.0` and NaNs
/// (then two equal programs are merely held twice).
fn hash_value<H: Hasher>(v: &Value, h: &mut H) {
    std::mem::discriminant(v).hash(h);
    match v {
        Value::Int(i) | Value::Time(i) | Value::Timestamp(i) | Value::Timestamptz(i) => i.hash(h),
        Value::Float(f) => f.to_bits().hash(h),
        Value::Bool(b) => b.hash(h),
        Value::Text(t) => t.hash(h),
        Value::Uuid(u) => u.hash(h),
        Value::Date(d) => d.hash(h),
        Value::Enum(e) => e.hash(h),
        Value::Numeric(n) => {
            let _ = std::fmt::write(&mut HashWriter(h), format_args!("{n:?}"));
        }
        Value::Array(items) => {
            h.write_usize(items.len());
            for item in items {
                match item {
                    Some(v) => hash_value(v, h),
                    None => h.write_u8(0xFF),
                }
            }
        }
    }
}

/// Feeds formatted text to a hasher.
pub(crate) struct HashWriter<'a, H: Hasher>(pub(crate) &'a mut H);

impl<H: Hasher> std::fmt::Write for HashWriter<'_, H> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.write(s.as_bytes());
        Ok(())
    }
}

impl Program {
    /// Runs the program over `row` (one entry per column, `None` for NULL); `stack` is a
    /// reusable buffer. Same answers as `eval` on the expression it came from, except that an
    /// evaluation error anywhere makes the whole answer that error (the router then routes
    /// the row to the shape: it could match).
    pub fn run(&self, row: &[Option<Value>], stack: &mut Stack) -> Truth {
        self.exec(row, stack, None)
    }

    /// [`Program::run`] with the results of the shape's subqueries given by `views`.
    pub fn run_with(
        &self,
        row: &[Option<Value>],
        stack: &mut Stack,
        views: &mut dyn Membership,
    ) -> Truth {
        self.exec(row, stack, Some(views))
    }

    /// Whether it tests a subquery (it needs [`Program::run_with`]).
    pub fn has_views(&self) -> bool {
        self.ops.iter().any(|op| matches!(op, Op::InView { .. }))
    }

    fn exec(
        &self,
        row: &[Option<Value>],
        stack: &mut Stack,
        mut views: Option<&mut dyn Membership>,
    ) -> Truth {
        stack.clear();
        let mut error = EvalError::Overflow;
        let value = |c: u32| row.get(c as usize).and_then(|v| v.as_ref());
        for op in &self.ops {
            let t = match op {
                Op::Const(b) => tri(*b),
                Op::Cmp {
                    column,
                    op,
                    constant,
                } => match (
                    value(*column),
                    constant.map(|i| &self.constants[i as usize]),
                ) {
                    (Some(v), Some(lit)) => u8::from(op.holds(compare(v, lit))),
                    _ => UNKNOWN,
                },
                Op::In {
                    column,
                    set,
                    negated,
                } => match value(*column) {
                    None => UNKNOWN,
                    Some(v) => {
                        let s = &self.sets[*set as usize];
                        let hit = s.values.binary_search_by(|x| compare(x, v)).is_ok();
                        match (hit, s.has_null) {
                            (true, _) => u8::from(!*negated),
                            (false, true) => UNKNOWN,
                            (false, false) => u8::from(*negated),
                        }
                    }
                },
                Op::IsNull { column, negated } => u8::from(value(*column).is_none() != *negated),
                Op::ArrayOp {
                    column,
                    op,
                    constant,
                } => match (value(*column), &self.constants[*constant as usize]) {
                    (Some(Value::Array(a)), Value::Array(b)) => u8::from(op.holds(a, b)),
                    _ => UNKNOWN,
                },
                Op::AnyOf {
                    column,
                    op,
                    all,
                    constant,
                } => match value(*column) {
                    Some(Value::Array(items)) => {
                        let x = constant.map(|i| &self.constants[i as usize]);
                        tri(any_all(x, *op, *all, items))
                    }
                    _ => UNKNOWN,
                },
                Op::Like {
                    column,
                    pattern,
                    case_insensitive,
                    negated,
                } => match value(*column) {
                    Some(Value::Text(text)) => {
                        let pat = &self.patterns[*pattern as usize];
                        let hit = if *case_insensitive {
                            ilike_lowered(text, pat)
                        } else {
                            like(text, pat)
                        };
                        u8::from(hit != *negated)
                    }
                    _ => UNKNOWN,
                },
                Op::InView {
                    columns,
                    position,
                    negated,
                } => match views.as_deref_mut() {
                    Some(views) => {
                        let columns = self.column_lists[*columns as usize].iter();
                        let columns = columns.map(|&c| c as usize);
                        tri(occurrence(row, columns, *position, *negated, views))
                    }
                    None => {
                        error = EvalError::NoView;
                        ERROR
                    }
                },
                Op::Eval(i) => match eval(&self.exprs[*i as usize], row) {
                    Ok(b) => tri(b),
                    Err(e) => {
                        error = e;
                        ERROR
                    }
                },
                Op::IsTruth { value, negated } => match stack.pop() {
                    Some(ERROR) | None => ERROR,
                    Some(b) => u8::from((truth(b) == *value) != *negated),
                },
                Op::Not => match stack.pop() {
                    Some(b @ (UNKNOWN | ERROR)) => b,
                    Some(b) => 1 - b,
                    None => ERROR,
                },
                Op::And(n) => {
                    let at = stack.len().saturating_sub(*n as usize);
                    let r = stack[at..].iter().fold(TRUE, |acc, &b| match (acc, b) {
                        (ERROR, _) | (_, ERROR) => ERROR,
                        (FALSE, _) | (_, FALSE) => FALSE,
                        (UNKNOWN, _) | (_, UNKNOWN) => UNKNOWN,
                        _ => TRUE,
                    });
                    stack.truncate(at);
                    r
                }
                Op::Or(n) => {
                    let at = stack.len().saturating_sub(*n as usize);
                    let r = stack[at..].iter().fold(FALSE, |acc, &b| match (acc, b) {
                        (ERROR, _) | (_, ERROR) => ERROR,
                        (TRUE, _) | (_, TRUE) => TRUE,
                        (UNKNOWN, _) | (_, UNKNOWN) => UNKNOWN,
                        _ => FALSE,
                    });
                    stack.truncate(at);
                    r
                }
            };
            stack.push(t);
        }
        match stack.pop() {
            Some(ERROR) | None => Err(error),
            Some(t) => Ok(truth(t)),
        }
    }
}
