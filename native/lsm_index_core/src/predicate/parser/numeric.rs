//! Numbers against integer columns, as PostgreSQL promotes them (numeric, float8), written as
//! the one integer comparison that means the same, exactly (never through a float).

use super::literal::{Literal, Raw};
use super::Parser;
use crate::error::Result;
use crate::predicate::datetime::date_to_timestamp;
use crate::predicate::lexer::error;
use crate::predicate::{CmpOp, ColumnType, Expr, Numeric, Value};
use std::cmp::Ordering;

impl Parser<'_> {
    /// Whether `literal` is a number of magnitude 2^53 or more (where float8 rounds).
    pub(super) fn beyond_2_53(&self, literal: &Literal, column: usize) -> bool {
        const EXACT: i64 = 1 << 53;
        matches!(self.int_number(literal, column), Ok(Some(Num::Beyond(_))))
            || match literal {
                // a float cast: its value
                Literal {
                    negative: _,
                    raw: Raw::Integer(text) | Raw::Decimal(text) | Raw::Str(text),
                    cast: Some((_, float @ (ColumnType::Float8 | ColumnType::Float4))),
                } => matches!(
                    float.parse(text),
                    Some(Value::Float(f)) if f.is_finite() && f.abs() >= EXACT as f64
                ),
                // a string in a float8 list is read as a float8
                Literal {
                    raw: Raw::Str(text),
                    cast: None,
                    ..
                } => matches!(
                    ColumnType::Float8.parse(text),
                    Some(Value::Float(f)) if f.abs() >= EXACT as f64
                ),
                Literal {
                    raw: Raw::Integer(_) | Raw::Str(_),
                    cast: None | Some((_, ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8)),
                    ..
                } => matches!(
                    self.typed(literal.clone(), column, 0),
                    Ok(Some(Value::Int(i))) if i.unsigned_abs() >= EXACT as u64
                ),
                _ => false,
            }
    }

    /// The values of an IN list on `column`, typed as PostgreSQL resolves the list (see
    /// [`Parser::in_list_type`]; a decimal, a float8 or a number beyond i64 makes an integer
    /// column's list numeric), and whether members that no value of the column can equal were
    /// left out.
    pub(super) fn in_list(
        &self,
        column: usize,
        literals: Vec<(usize, Literal)>,
    ) -> Result<(Vec<Option<Value>>, bool)> {
        let common = self.in_list_type(column, &literals);
        let numeric = literals
            .iter()
            .any(|(_, l)| !matches!(self.int_number(l, column), Ok(None)));
        let mut values = Vec::new();
        let mut left_out = false;
        for (at, literal) in literals {
            let number = match self
                .int_number(&literal, column)
                .map_err(|e| error(at, &e))?
            {
                Some(number) => Some(number),
                // a string in a numeric list is read as a numeric
                None => match &literal {
                    Literal {
                        raw: Raw::Str(text),
                        cast: None,
                        ..
                    } if numeric => Some(numeric_text(text).ok_or_else(|| {
                        error(at, &self.type_message(column, "expected a numeric"))
                    })?),
                    _ => None,
                },
            };
            match number {
                Some(Num::Int(i)) => values.push(Some(Value::Int(i))),
                // equal to no integer
                Some(_) => left_out = true,
                None => values.push(self.typed_as(literal, column, &common, at)?),
            }
        }
        Ok((values, left_out))
    }

    /// Whether comparing integer `column` with `literals` (one: `=`; several: an IN list) is
    /// better evaluated as written (a cast of the column) than rewritten in the column's
    /// type: an int8 column against a float of 2^53 or more (PostgreSQL rounds the column's
    /// values to float8 there), or a list with a float member (its members are rounded to the
    /// list's float type first).
    pub(super) fn rounds_column(&self, column: usize, literals: &[&Literal]) -> bool {
        let ty = &self.columns[column].1;
        let float =
            |l: &&Literal| matches!(&l.cast, Some((_, ColumnType::Float8 | ColumnType::Float4)));
        let float_list = literals.len() > 1 && ty.is_integer() && literals.iter().any(float);
        let big_float = *ty == ColumnType::Int8
            && literals.iter().any(float)
            && literals.iter().any(|l| self.beyond_2_53(l, column));
        float_list || big_float
    }

    /// `literal` as a plain value of `column` (no numeric rewrite needed), if it is one.
    pub(super) fn plain_value(&self, literal: &Literal, column: usize) -> Result<Option<Value>> {
        if !matches!(self.int_number(literal, column), Ok(None)) {
            return Ok(None);
        }
        self.typed(literal.clone(), column, 0)
    }

    /// `column op literal`.
    pub(super) fn comparison(
        &self,
        column: usize,
        op: CmpOp,
        literal: Literal,
        at: usize,
    ) -> Result<Expr> {
        if self.date_beyond_timestamps(&literal, column) {
            return Ok(beyond_timestamps_cmp(column, op, &self.columns[column].1));
        }
        let cmp = |op, v| Expr::Cmp {
            column,
            op,
            value: Some(Value::Int(v)),
        };
        match self
            .int_number(&literal, column)
            .map_err(|e| error(at, &e))?
        {
            Some(Num::Int(i)) => return Ok(cmp(op, i)),
            Some(Num::Beyond(side)) => return Ok(beyond_cmp(column, op, side)),
            // strictly between `floor` and `floor + 1`: no integer equals it
            Some(Num::Between(floor)) => {
                return Ok(match op {
                    CmpOp::Eq | CmpOp::Ne => beyond_cmp(column, op, Ordering::Greater),
                    CmpOp::Lt | CmpOp::Le => cmp(CmpOp::Le, floor),
                    CmpOp::Gt | CmpOp::Ge => match floor.checked_add(1) {
                        Some(ceil) => cmp(CmpOp::Ge, ceil),
                        None => beyond_cmp(column, op, Ordering::Greater),
                    },
                })
            }
            None => {}
        }
        let value = self.typed(literal, column, at)?;
        Ok(Expr::Cmp { column, op, value })
    }

    /// Whether `literal` is a date past the last timestamp (`'5874897-12-31'::date`) compared
    /// with a timestamp or timestamptz `column`: PostgreSQL's cross-type operators place it
    /// after every finite timestamp and before `infinity` (no cast, so no error).
    pub(super) fn date_beyond_timestamps(&self, literal: &Literal, column: usize) -> bool {
        let timestamps = matches!(
            self.columns[column].1,
            ColumnType::Timestamp | ColumnType::Timestamptz
        );
        match literal {
            Literal {
                negative: false,
                raw: Raw::Str(text),
                cast: Some((_, ColumnType::Date)),
            } if timestamps => matches!(
                ColumnType::Date.parse(text),
                Some(Value::Date(d)) if d != i32::MAX && date_to_timestamp(d).is_none()
            ),
            _ => false,
        }
    }

    /// The error of a cast literal that is not a value of type `name`: a string's is
    /// PostgreSQL's parser's; a number's is its planner's, not raised where it does not look
    /// (a stand-in instead: see `fold`).
    fn cast_error(
        &self,
        literal: &Literal,
        name: &str,
    ) -> std::result::Result<Option<Num>, String> {
        if !matches!(literal.raw, Raw::Str(_)) && self.stand_in() {
            return Ok(Some(Num::Int(0)));
        }
        Err(format!("a literal that is a valid {name}"))
    }

    /// A number PostgreSQL compares with an integer column in a wider type — a decimal or an
    /// integer beyond i64 (numeric: exactly), a float8 cast (float8: exactly too, for int2 and
    /// int4 values and for int8 values against floats below 2^53; larger ones are not
    /// rewritten: see [`Parser::rounds_column`]) — as the integer comparison it makes; `None`
    /// for any other literal (typed by the column as usual). `Err` (a message) for a cast
    /// literal that is not a value of its type.
    pub(super) fn int_number(
        &self,
        literal: &Literal,
        column: usize,
    ) -> std::result::Result<Option<Num>, String> {
        let ty = &self.columns[column].1;
        if !ty.is_integer() {
            return Ok(None);
        }
        match literal {
            Literal {
                negative,
                raw: Raw::Integer(text) | Raw::Decimal(text),
                cast: None,
            } => Ok(match decimal_number(*negative, text) {
                // an integer in i64: the column's own comparison
                Some(Num::Int(_)) if matches!(literal.raw, Raw::Integer(_)) => None,
                n => n,
            }),
            // a numeric cast: compared as numeric, exactly
            Literal {
                negative,
                raw: Raw::Integer(text) | Raw::Decimal(text) | Raw::Str(text),
                cast: Some((_, ColumnType::Numeric)),
            } => match ColumnType::Numeric.parse(text) {
                Some(Value::Numeric(n)) => Ok(Some(numeric_number(if *negative {
                    n.negated()
                } else {
                    n
                }))),
                _ => self.cast_error(literal, "numeric"),
            },
            // a float4 or float8 cast: compared in float8
            Literal {
                negative,
                raw: Raw::Integer(text) | Raw::Decimal(text) | Raw::Str(text),
                cast: Some((_, float @ (ColumnType::Float8 | ColumnType::Float4))),
            } => {
                let Some(Value::Float(f)) = float.parse(text) else {
                    return self.cast_error(literal, &float.name());
                };
                let f = if *negative { -f } else { f };
                Ok(Some(float_number(f)))
            }
            _ => Ok(None),
        }
    }
}

/// `column op BIG` for an integer literal beyond i64 on the `side` of it: every value of an
/// integer column lies within i64, so the comparison has one answer for every non-NULL
/// value, written as a comparison with i64's bound that gives it (and unknown for NULL).
pub(super) fn beyond_cmp(column: usize, op: CmpOp, side: Ordering) -> Expr {
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

/// `column op DATE` for a timestamp or timestamptz `column` of type `ty` and a date past its
/// last value but before `infinity` (see [`Parser::date_beyond_timestamps`]), as the
/// comparison with a bound that gives the same answer on every value (unknown for NULL).
pub(super) fn beyond_timestamps_cmp(column: usize, op: CmpOp, ty: &ColumnType) -> Expr {
    let (op, bound) = match op {
        CmpOp::Eq => (CmpOp::Lt, i64::MIN),
        CmpOp::Ne => (CmpOp::Ge, i64::MIN),
        CmpOp::Lt | CmpOp::Le => (CmpOp::Lt, i64::MAX),
        CmpOp::Gt | CmpOp::Ge => (CmpOp::Ge, i64::MAX),
    };
    let value = match ty {
        ColumnType::Timestamptz => Value::Timestamptz(bound),
        _ => Value::Timestamp(bound),
    };
    Expr::Cmp {
        column,
        op,
        value: Some(value),
    }
}

/// A number compared with an integer column, as the integer comparison it makes.
pub(super) enum Num {
    /// Equal to this integer.
    Int(i64),
    /// Strictly between this integer and the next.
    Between(i64),
    /// Beyond i64, on this side.
    Beyond(Ordering),
}

/// A decimal literal's text (digits, an optional fraction and exponent; `negative`: its
/// sign) as a [`Num`], exactly (never through a float).
pub(super) fn decimal_number(negative: bool, text: &str) -> Option<Num> {
    let (mantissa, exponent) = match text.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().ok()?),
        None => (text, 0),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits: String = format!("{int}{frac}");
    // the decimal point sits after `point` digits of `digits`
    let point = (int.len() as i64).saturating_add(exponent);
    let nonzero = |s: &str| s.bytes().any(|b| b != b'0');
    let (whole, fraction) = if point <= 0 {
        (String::new(), nonzero(&digits))
    } else if point as usize >= digits.len() {
        let zeros = (point as usize - digits.len()).min(64);
        (format!("{digits}{}", "0".repeat(zeros)), false)
    } else {
        let (w, f) = digits.split_at(point as usize);
        (w.to_string(), nonzero(f))
    };
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let side = if negative {
        Ordering::Less
    } else {
        Ordering::Greater
    };
    let signed = format!("{}{whole}", if negative { "-" } else { "" });
    let Ok(i) = signed.parse::<i64>() else {
        return Some(Num::Beyond(side));
    };
    Some(match (fraction, negative) {
        (false, _) => Num::Int(i),
        (true, false) => Num::Between(i),
        // -(w + f) lies between -w - 1 and -w
        (true, true) => match i.checked_sub(1) {
            Some(floor) => Num::Between(floor),
            None => Num::Beyond(Ordering::Less),
        },
    })
}

/// A float8 (finite or not) as a [`Num`] against an integer column.
pub(super) fn float_number(f: f64) -> Num {
    if f.is_nan() || f >= 9_223_372_036_854_775_808.0 {
        // NaN sorts above every number in PostgreSQL
        return Num::Beyond(Ordering::Greater);
    }
    if f < -9_223_372_036_854_775_808.0 {
        return Num::Beyond(Ordering::Less);
    }
    let floor = f.floor();
    if floor == f {
        Num::Int(f as i64)
    } else {
        Num::Between(floor as i64)
    }
}

/// A numeric value as a [`Num`] against an integer column.
fn numeric_number(n: Numeric) -> Num {
    match n {
        Numeric::NaN | Numeric::Infinity => Num::Beyond(Ordering::Greater),
        Numeric::NegInfinity => Num::Beyond(Ordering::Less),
        n => {
            let text = n.text();
            let negative = text.starts_with('-');
            decimal_number(negative, text.trim_start_matches('-')).unwrap_or(Num::Beyond(
                if negative {
                    Ordering::Less
                } else {
                    Ordering::Greater
                },
            ))
        }
    }
}

/// A numeric's text (`[+-]digits[.digits]`, white space around it skipped: a string in a
/// numeric IN list) as a [`Num`]; `None` when it is not such a text.
fn numeric_text(text: &str) -> Option<Num> {
    let t = text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !(digits(int) && digits(frac) && !(int.is_empty() && frac.is_empty())) {
        return None;
    }
    decimal_number(t.starts_with('-'), unsigned)
}
