//! Arithmetic on values as PostgreSQL computes it: integers in their type's range (overflow is
//! an error), floats in IEEE double (or single for float4 with float4), numerics exactly with
//! PostgreSQL's display scales and division scale, dates plus days.

use super::decimal::Numeric;
use super::{ColumnType, Value};
use num_bigint::BigInt;
use num_integer::Integer;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Why an expression has no value on a row (PostgreSQL would raise an error there).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EvalError {
    /// A result outside its type's range.
    Overflow,
    /// Division (or modulo) by zero.
    DivisionByZero,
    /// A text that is not a value of the type it is cast to.
    InvalidText,
    /// A subquery tested without its result (evaluated by `eval` or `Program::run`, not
    /// `eval_with` or `Program::run_with`).
    NoView,
}

impl EvalError {
    /// A short description, as PostgreSQL's message.
    pub fn message(self) -> &'static str {
        match self {
            EvalError::Overflow => "value out of range",
            EvalError::DivisionByZero => "division by zero",
            EvalError::InvalidText => "invalid input syntax",
            EvalError::NoView => "a subquery's result is needed",
        }
    }
}

/// An arithmetic operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
}

impl ArithOp {
    /// Its SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Mod => "%",
        }
    }
}

type Out = Result<Value, EvalError>;

/// `a op b`, both already values of `ty` (the operator's result type: an integer type,
/// float4, float8 or numeric), or a date and days for date arithmetic.
pub fn apply(op: ArithOp, ty: &ColumnType, a: &Value, b: &Value) -> Out {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => int(op, ty, *x, *y),
        (Value::Float(x), Value::Float(y)) => float(op, ty, *x, *y),
        (Value::Numeric(x), Value::Numeric(y)) => numeric(op, x, y).map(Value::Numeric),
        (Value::Date(d), Value::Int(n)) => {
            let n = if op == ArithOp::Sub { -n } else { *n };
            date_plus(*d, n)
        }
        (Value::Date(x), Value::Date(y)) => {
            if *x == i32::MAX || *x == i32::MIN || *y == i32::MAX || *y == i32::MIN {
                return Err(EvalError::Overflow);
            }
            int(
                ArithOp::Sub,
                &ColumnType::Int4,
                i64::from(*x),
                i64::from(*y),
            )
        }
        _ => Err(EvalError::Overflow),
    }
}

/// `-v` for a number of type `ty`.
pub fn negate(ty: &ColumnType, v: &Value) -> Out {
    match v {
        Value::Int(i) => ty
            .int(i.checked_neg().ok_or(EvalError::Overflow)?)
            .ok_or(EvalError::Overflow),
        Value::Float(f) => Ok(Value::Float(-f)),
        Value::Numeric(n) => Ok(Value::Numeric(n.clone().negated())),
        _ => Err(EvalError::Overflow),
    }
}

/// `abs(v)` for a number of type `ty`.
pub fn abs(ty: &ColumnType, v: &Value) -> Out {
    match v {
        Value::Int(i) if *i < 0 => negate(ty, v),
        Value::Float(f) => Ok(Value::Float(f.abs())),
        Value::Numeric(Numeric::NegInfinity) => Ok(Value::Numeric(Numeric::Infinity)),
        Value::Numeric(n @ Numeric::Finite { negative: true, .. }) => {
            Ok(Value::Numeric(n.clone().negated()))
        }
        v => Ok(v.clone()),
    }
}

fn int(op: ArithOp, ty: &ColumnType, x: i64, y: i64) -> Out {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div | ArithOp::Mod if y == 0 => return Err(EvalError::DivisionByZero),
        // truncating toward zero, as C; MIN / -1 overflows, MIN % -1 is 0
        ArithOp::Div => x.checked_div(y),
        ArithOp::Mod => Some(x.checked_rem(y).unwrap_or(0)),
    };
    ty.int(r.ok_or(EvalError::Overflow)?)
        .ok_or(EvalError::Overflow)
}

fn float(op: ArithOp, ty: &ColumnType, x: f64, y: f64) -> Out {
    let r = match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div if y == 0.0 => return Err(EvalError::DivisionByZero),
        ArithOp::Div => x / y,
        ArithOp::Mod => return Err(EvalError::Overflow),
    };
    let r = if *ty == ColumnType::Float4 {
        f64::from(r as f32)
    } else {
        r
    };
    // PostgreSQL: an infinite result from finite inputs overflows; zero from nonzero
    // inputs of a multiplication or division underflows
    if r.is_infinite() && x.is_finite() && y.is_finite() {
        return Err(EvalError::Overflow);
    }
    let underflow = r == 0.0
        && x != 0.0
        && match op {
            ArithOp::Mul => y != 0.0,
            ArithOp::Div => y.is_finite(),
            _ => false,
        };
    if underflow {
        return Err(EvalError::Overflow);
    }
    Ok(Value::Float(r))
}

fn date_plus(d: i32, n: i64) -> Out {
    if d == i32::MAX || d == i32::MIN {
        return Ok(Value::Date(d));
    }
    let r = i64::from(d) + n;
    // within the date range PostgreSQL accepts (see datetime)
    if !(-2_451_545..2_145_031_949).contains(&r) {
        return Err(EvalError::Overflow);
    }
    Ok(Value::Date(r as i32))
}

/// A finite numeric as `mantissa x 10^exponent`.
fn big(n: &Numeric) -> Option<(BigInt, i64)> {
    match n {
        Numeric::Finite {
            negative,
            digits,
            exp,
            ..
        } => {
            if digits.is_empty() {
                return Some((BigInt::zero(), 0));
            }
            let m = BigInt::parse_bytes(digits, 10)?;
            let m = if *negative { -m } else { m };
            Some((m, i64::from(*exp) - digits.len() as i64))
        }
        _ => None,
    }
}

/// `m x 10^e` with display scale `scale`, if within numeric's range.
fn from_big(m: &BigInt, e: i64, scale: u32) -> Result<Numeric, EvalError> {
    let text = m.abs().to_string();
    let n = Numeric::from_parts(m.is_negative(), &text, "", e).with_scale(scale);
    match &n {
        Numeric::Finite { exp, .. } if i64::from(*exp) > 131_072 => Err(EvalError::Overflow),
        _ => Ok(n),
    }
}

fn pow10(k: u64) -> BigInt {
    num_traits::pow(BigInt::from(10), k as usize)
}

/// `x op y` for numerics, with PostgreSQL's special values and display scales.
pub fn numeric(op: ArithOp, x: &Numeric, y: &Numeric) -> Result<Numeric, EvalError> {
    use Numeric::{Infinity as Inf, NaN, NegInfinity as NegInf};
    let sign = |n: &Numeric| match n {
        Inf => 1,
        NegInf => -1,
        n => match big(n) {
            Some((m, _)) if m.is_positive() => 1,
            Some((m, _)) if m.is_negative() => -1,
            _ => 0,
        },
    };
    let inf = |s: i32| if s > 0 { Inf } else { NegInf };
    let special = |n: &Numeric| !matches!(n, Numeric::Finite { .. });
    if special(x) || special(y) {
        if matches!(x, NaN) || matches!(y, NaN) {
            return Ok(NaN);
        }
        let (sx, sy) = (sign(x), sign(y));
        return Ok(match op {
            ArithOp::Add | ArithOp::Sub => {
                let sy = if op == ArithOp::Sub { -sy } else { sy };
                match (special(x), special(y)) {
                    (true, true) if sx != sy => NaN,
                    (true, _) => inf(sx),
                    _ => inf(sy),
                }
            }
            ArithOp::Mul if sx == 0 || sy == 0 => NaN,
            ArithOp::Mul => inf(sx * sy),
            ArithOp::Div | ArithOp::Mod if special(y) && special(x) => NaN,
            ArithOp::Div | ArithOp::Mod if sy == 0 => return Err(EvalError::DivisionByZero),
            ArithOp::Div if special(x) => inf(sx * sy),
            ArithOp::Div => Numeric::zero(),
            ArithOp::Mod if special(x) => NaN,
            ArithOp::Mod => x.clone(),
        });
    }
    let ((a, ea), (b, eb)) = (
        big(x).ok_or(EvalError::Overflow)?,
        big(y).ok_or(EvalError::Overflow)?,
    );
    let (sa, sb) = (x.scale(), y.scale());
    // the two mantissas at a common exponent
    let align = |a: &BigInt, ea: i64, b: &BigInt, eb: i64| {
        let e = ea.min(eb);
        (a * pow10((ea - e) as u64), b * pow10((eb - e) as u64), e)
    };
    match op {
        ArithOp::Add | ArithOp::Sub => {
            let (a, b, e) = align(&a, ea, &b, eb);
            let r = if op == ArithOp::Add { a + b } else { a - b };
            from_big(&r, e, sa.max(sb))
        }
        ArithOp::Mul => from_big(&(a * b), ea + eb, sa + sb),
        ArithOp::Div | ArithOp::Mod if b.is_zero() => Err(EvalError::DivisionByZero),
        ArithOp::Div => {
            let scale = div_scale(x, y);
            // round(x / y, scale), half away from zero: (a x 10^(ea-eb+scale)) / b
            let shift = ea - eb + i64::from(scale);
            let (num, den) = if shift >= 0 {
                (a * pow10(shift as u64), b)
            } else {
                (a, b * pow10((-shift) as u64))
            };
            let (q, r) = num.div_rem(&den);
            let twice = r.abs() * 2;
            let q = if twice >= den.abs() {
                if num.is_negative() != den.is_negative() {
                    q - BigInt::one()
                } else {
                    q + BigInt::one()
                }
            } else {
                q
            };
            from_big(&q, -i64::from(scale), scale)
        }
        ArithOp::Mod => {
            let (a, b, e) = align(&a, ea, &b, eb);
            // truncated: the remainder has the dividend's sign
            from_big(&(a % b), e, sa.max(sb))
        }
    }
}

/// PostgreSQL's `select_div_scale`: at least 16 significant digits, and no less than either
/// input's display scale (weights and first digits in base 10000, as PostgreSQL stores them).
fn div_scale(x: &Numeric, y: &Numeric) -> u32 {
    let weight_and_first = |n: &Numeric| match n {
        Numeric::Finite { digits, exp, .. } if !digits.is_empty() => {
            let exp = i64::from(*exp);
            // the leading digit is at 10^(exp-1); its base-10000 group is floor((exp-1)/4)
            let weight = (exp - 1).div_euclid(4);
            let first = (0..4).fold(0i64, |acc, k| {
                let pos = 4 * weight + 3 - k; // power of ten of this digit
                let i = exp - 1 - pos;
                let d = if i >= 0 && (i as usize) < digits.len() {
                    i64::from(digits[i as usize] - b'0')
                } else {
                    0
                };
                acc * 10 + d
            });
            (weight, first)
        }
        _ => (0, 0),
    };
    let (w1, f1) = weight_and_first(x);
    let (w2, f2) = weight_and_first(y);
    let mut qweight = w1 - w2;
    if f1 <= f2 {
        qweight -= 1;
    }
    let scale = (16 - qweight * 4)
        .max(i64::from(x.scale()))
        .max(i64::from(y.scale()))
        .clamp(0, 1000);
    scale as u32
}

/// A float8 as a numeric, as PostgreSQL converts it (its text to 15 significant digits).
pub fn float_to_numeric(f: f64) -> Numeric {
    if f.is_nan() {
        return Numeric::NaN;
    }
    if f.is_infinite() {
        return if f > 0.0 {
            Numeric::Infinity
        } else {
            Numeric::NegInfinity
        };
    }
    // "%.15g": 15 significant digits, trailing zeros dropped
    let sci = format!("{f:.14e}");
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.trim_end_matches('0').trim_end_matches('.')
    } else {
        mantissa
    };
    Numeric::parse(&format!("{mantissa}e{exponent}")).unwrap_or_else(Numeric::zero)
}

/// A numeric as a float8 (rounded once, as `numeric_float8` reads its text).
pub fn numeric_to_float(n: &Numeric) -> f64 {
    match n {
        Numeric::NaN => f64::NAN,
        Numeric::Infinity => f64::INFINITY,
        Numeric::NegInfinity => f64::NEG_INFINITY,
        n => n.text().parse().unwrap_or(f64::NAN),
    }
}

/// A numeric rounded to an integer (half away from zero), if it fits i64.
pub fn numeric_to_int(n: &Numeric) -> Option<i64> {
    let (m, e) = big(n)?;
    if e >= 0 {
        return (m * pow10(e as u64)).to_i64();
    }
    let den = pow10((-e) as u64);
    let (q, r) = m.div_rem(&den);
    let q = if r.abs() * 2 >= den {
        if m.is_negative() {
            q - BigInt::one()
        } else {
            q + BigInt::one()
        }
    } else {
        q
    };
    q.to_i64()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(t: &str) -> Numeric {
        Numeric::parse(t).unwrap_or_else(|| panic!("{t}"))
    }

    fn num(op: ArithOp, a: &str, b: &str) -> String {
        match numeric(op, &n(a), &n(b)) {
            Ok(r) => r.text(),
            Err(e) => e.message().to_string(),
        }
    }

    #[test]
    fn numeric_arithmetic_matches_postgres() {
        // figures from PostgreSQL 15
        assert_eq!(num(ArithOp::Add, "1.50", "1"), "2.50");
        assert_eq!(num(ArithOp::Mul, "1.50", "2.0"), "3.000");
        assert_eq!(num(ArithOp::Div, "1", "3"), "0.33333333333333333333");
        assert_eq!(num(ArithOp::Div, "5.0", "2"), "2.5000000000000000");
        assert_eq!(num(ArithOp::Div, "-2", "3"), "-0.66666666666666666667");
        assert_eq!(num(ArithOp::Div, "1", "0"), "division by zero");
        assert_eq!(num(ArithOp::Mod, "-7.5", "2"), "-1.5");
        assert_eq!(num(ArithOp::Sub, "Infinity", "Infinity"), "NaN");
        assert_eq!(num(ArithOp::Mul, "Infinity", "0"), "NaN");
        assert_eq!(num(ArithOp::Div, "1", "Infinity"), "0");
        assert_eq!(num(ArithOp::Mod, "5", "Infinity"), "5");
    }

    #[test]
    fn integers_overflow_in_their_type() {
        let i2 = ColumnType::Int2;
        assert_eq!(int(ArithOp::Add, &i2, 32_767, 1), Err(EvalError::Overflow));
        assert_eq!(int(ArithOp::Div, &i2, 7, -2), Ok(Value::Int(-3)));
        assert_eq!(int(ArithOp::Mod, &i2, -7, 2), Ok(Value::Int(-1)));
        assert_eq!(int(ArithOp::Div, &i2, 1, 0), Err(EvalError::DivisionByZero));
        let i8 = ColumnType::Int8;
        assert_eq!(
            int(ArithOp::Div, &i8, i64::MIN, -1),
            Err(EvalError::Overflow)
        );
        assert_eq!(int(ArithOp::Mod, &i8, i64::MIN, -1), Ok(Value::Int(0)));
    }

    #[test]
    fn conversions() {
        assert_eq!(float_to_numeric(0.1).text(), "0.1");
        assert_eq!(float_to_numeric(1e300).text().len(), 301);
        assert_eq!(numeric_to_int(&n("2.5")), Some(3));
        assert_eq!(numeric_to_int(&n("-2.5")), Some(-3));
        assert_eq!(numeric_to_float(&n("0.1")), 0.1);
    }
}
