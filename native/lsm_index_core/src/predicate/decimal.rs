//! `numeric` values, exactly: PostgreSQL's arbitrary-precision decimal, read from its text
//! and compared digit by digit (never through a float), with `NaN` and the infinities.

use std::cmp::Ordering;

/// Most digits before the decimal point PostgreSQL's `numeric` holds.
const MAX_INTEGER_DIGITS: i64 = 131_072;
/// Most digits after the decimal point (its display scale).
const MAX_SCALE: i64 = 16_383;

/// A `numeric` value: equal values are equal (`1.50` = `1.5`) whatever their display scale,
/// which is kept only to print the value as PostgreSQL does. Ordered as PostgreSQL orders
/// them: `-Infinity` < numbers < `Infinity` < `NaN`.
#[derive(Clone, Debug)]
pub enum Numeric {
    /// `-Infinity`.
    NegInfinity,
    /// A number: `0.DIGITS x 10^exp`, negated when `negative`.
    Finite {
        /// Below zero (never for zero).
        negative: bool,
        /// ASCII digits without leading or trailing zeros; empty for zero.
        digits: Box<[u8]>,
        /// Power of ten of the digit string read as a fraction (`12.5` is `0.125 x 10^2`).
        exp: i32,
        /// Digits printed after the point (`1.50`: 2); not part of the value.
        scale: u32,
    },
    /// `Infinity`.
    Infinity,
    /// `NaN` (equal to itself, above everything else, as in PostgreSQL).
    NaN,
}

impl Numeric {
    /// The value of PostgreSQL `numeric` input text (white space around it skipped,
    /// `NaN`, `[+-]Inf[inity]`, `[+-]digits[.digits][e[+-]digits]`), `None` when it is not
    /// one or overflows the type.
    pub fn parse(text: &str) -> Option<Numeric> {
        let t = text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
        match t.to_ascii_lowercase().as_str() {
            "nan" => return Some(Numeric::NaN),
            "infinity" | "+infinity" | "inf" | "+inf" => return Some(Numeric::Infinity),
            "-infinity" | "-inf" => return Some(Numeric::NegInfinity),
            _ => {}
        }
        let negative = t.starts_with('-');
        let unsigned = t.strip_prefix(['+', '-']).unwrap_or(t);
        let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
            Some((m, e)) => {
                let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                // anything this large overflows anyway
                (m, e.parse::<i64>().ok().filter(|e| e.abs() < 1 << 40)?)
            }
            None => (unsigned, 0),
        };
        let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !all_digits(int) || !all_digits(frac) || (int.is_empty() && frac.is_empty()) {
            return None;
        }
        // PostgreSQL's limits: the display scale (digits after the point as written, shifted
        // by the exponent) and the digits before the point
        let scale = (frac.len() as i64 - exponent).max(0);
        if scale > MAX_SCALE {
            return None;
        }
        let n = Numeric::from_parts(negative, int, frac, exponent).with_scale(scale as u32);
        if let Numeric::Finite { exp, .. } = &n {
            if i64::from(*exp) > MAX_INTEGER_DIGITS {
                return None;
            }
        }
        Some(n)
    }

    /// The exact value `[-]INT.FRAC x 10^exponent` (digit strings, either may be empty).
    pub fn from_parts(negative: bool, int: &str, frac: &str, exponent: i64) -> Numeric {
        let all: Vec<u8> = int.bytes().chain(frac.bytes()).collect();
        let lead = all.iter().take_while(|&&b| b == b'0').count();
        let trail = all.iter().rev().take_while(|&&b| b == b'0').count();
        if lead == all.len() {
            return Numeric::zero();
        }
        let digits: Box<[u8]> = all[lead..all.len() - trail].into();
        let exp = int.len() as i64 - lead as i64 + exponent;
        Numeric::Finite {
            negative,
            digits,
            exp: exp.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32,
            scale: 0,
        }
    }

    /// The same value, printed with `scale` digits after the point.
    pub fn with_scale(self, scale: u32) -> Numeric {
        match self {
            Numeric::Finite {
                negative,
                digits,
                exp,
                ..
            } => Numeric::Finite {
                negative,
                digits,
                exp,
                scale,
            },
            special => special,
        }
    }

    /// Its display scale (0 for the special values).
    pub fn scale(&self) -> u32 {
        match self {
            Numeric::Finite { scale, .. } => *scale,
            _ => 0,
        }
    }

    /// An integer as a numeric.
    pub fn from_i64(i: i64) -> Numeric {
        Numeric::from_parts(i < 0, &i.unsigned_abs().to_string(), "", 0)
    }

    /// Zero.
    pub fn zero() -> Numeric {
        Numeric::Finite {
            negative: false,
            digits: Box::new([]),
            exp: 0,
            scale: 0,
        }
    }

    /// `-self`.
    pub fn negated(self) -> Numeric {
        match self {
            Numeric::Finite {
                negative,
                digits,
                exp,
                scale,
            } => Numeric::Finite {
                negative: !negative && !digits.is_empty(),
                digits,
                exp,
                scale,
            },
            Numeric::Infinity => Numeric::NegInfinity,
            Numeric::NegInfinity => Numeric::Infinity,
            Numeric::NaN => Numeric::NaN,
        }
    }

    /// PostgreSQL's text of it: plain decimal notation with its display scale (`1.50`,
    /// `-0.001`, `100`), or `NaN`, `Infinity`, `-Infinity` — what `parse` reads back.
    pub fn text(&self) -> String {
        let (negative, digits, exp, scale) = match self {
            Numeric::NaN => return "NaN".into(),
            Numeric::Infinity => return "Infinity".into(),
            Numeric::NegInfinity => return "-Infinity".into(),
            Numeric::Finite {
                negative,
                digits,
                exp,
                scale,
            } => (*negative, digits, i64::from(*exp), *scale as usize),
        };
        // integer part: the digits above the point; fraction: those below, padded to scale
        let digit_at = |pos: i64| -> u8 {
            // pos 0 is the first digit after the point's left neighbour... (10^(exp-1-i))
            let i = exp - 1 - pos;
            if i >= 0 && (i as usize) < digits.len() {
                digits[i as usize]
            } else {
                b'0'
            }
        };
        let mut out = String::new();
        if negative && !digits.is_empty() {
            out.push('-');
        }
        if exp <= 0 {
            out.push('0');
        } else {
            out.extend((0..exp).rev().map(|p| digit_at(p) as char));
        }
        let frac_len = scale.max(digits.len().saturating_sub(exp.max(0) as usize));
        if frac_len > 0 {
            out.push('.');
            out.extend((1..=frac_len as i64).map(|k| digit_at(-k) as char));
        }
        out
    }

    /// Key bytes: a kind byte, then (numbers) sign, exponent and digits — equal values,
    /// equal bytes.
    pub fn key_bytes(&self, out: &mut impl Extend<u8>) {
        match self {
            Numeric::NegInfinity => out.extend([0]),
            Numeric::Finite {
                negative,
                digits,
                exp,
                ..
            } => {
                out.extend([1, u8::from(*negative)]);
                out.extend(exp.to_le_bytes());
                out.extend(digits.iter().copied());
            }
            Numeric::Infinity => out.extend([2]),
            Numeric::NaN => out.extend([3]),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Numeric::NegInfinity => 0,
            Numeric::Finite { .. } => 1,
            Numeric::Infinity => 2,
            Numeric::NaN => 3,
        }
    }
}

impl Ord for Numeric {
    fn cmp(&self, other: &Numeric) -> Ordering {
        match (self, other) {
            (
                Numeric::Finite {
                    negative: na,
                    digits: da,
                    exp: ea,
                    ..
                },
                Numeric::Finite {
                    negative: nb,
                    digits: db,
                    exp: eb,
                    ..
                },
            ) => {
                let sign = |negative: bool, digits: &[u8]| match (digits.is_empty(), negative) {
                    (true, _) => 0,
                    (false, true) => -1,
                    (false, false) => 1,
                };
                let (sa, sb) = (sign(*na, da), sign(*nb, db));
                if sa != sb || sa == 0 {
                    return sa.cmp(&sb);
                }
                // same sign, both nonzero: the magnitudes, then flipped for negatives
                let magnitude = ea.cmp(eb).then_with(|| da.cmp(db));
                if sa < 0 {
                    magnitude.reverse()
                } else {
                    magnitude
                }
            }
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

impl PartialEq for Numeric {
    fn eq(&self, other: &Numeric) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Numeric {}

impl std::hash::Hash for Numeric {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let mut bytes = Vec::new();
        self.key_bytes(&mut bytes);
        bytes.hash(state);
    }
}

impl PartialOrd for Numeric {
    fn partial_cmp(&self, other: &Numeric) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(text: &str) -> Numeric {
        Numeric::parse(text).unwrap_or_else(|| panic!("{text} is a numeric"))
    }

    #[test]
    fn equal_values_are_equal_whatever_their_text() {
        assert_eq!(n("1.50"), n("1.5"));
        assert_eq!(n(" +001.5e0 "), n("15e-1"));
        assert_eq!(n("-0"), n("0.000"));
        assert_eq!(n(".5"), n("0.5"));
        assert_eq!(n("5."), n("5"));
        assert_eq!(n("inf"), Numeric::Infinity);
        assert_eq!(n("-Infinity"), Numeric::NegInfinity);
        assert_eq!(n("nan"), Numeric::NaN);
        assert_eq!(Numeric::from_i64(-120), n("-1.2e2"));
        assert_eq!(Numeric::from_i64(i64::MIN).text(), i64::MIN.to_string());
    }

    #[test]
    fn orders_exactly_as_postgres() {
        let sorted = [
            "-Infinity",
            "-1e100",
            "-2",
            "-1.5",
            "-0.0001",
            "0",
            "0.000000000000000000001",
            "1",
            "1.0000000000000000000000001",
            "1.5",
            "2",
            "10",
            "99999999999999999999999",
            "Infinity",
            "NaN",
        ];
        for (i, a) in sorted.iter().enumerate() {
            for (j, b) in sorted.iter().enumerate() {
                assert_eq!(n(a).cmp(&n(b)), i.cmp(&j), "{a} vs {b}");
            }
        }
    }

    #[test]
    fn refuses_what_postgres_refuses() {
        for bad in [
            "", "1_000", "1e", "e5", ".", "--1", "1.2.3", "-nan", "1e-16384",
        ] {
            assert_eq!(Numeric::parse(bad), None, "{bad}");
        }
        // 131072 digits before the point fit, one more overflows; 16383 after the point fit
        assert!(Numeric::parse("1e131071").is_some());
        assert_eq!(Numeric::parse("1e131072"), None);
        assert!(Numeric::parse("1e-16383").is_some());
        assert_eq!(Numeric::parse("1e99999999999999999999"), None);
    }

    #[test]
    fn text_round_trips() {
        for t in [
            "0",
            "1.5",
            "-0.001",
            "100",
            "123.456",
            "NaN",
            "Infinity",
            "-Infinity",
        ] {
            assert_eq!(n(t).text(), t);
            assert_eq!(n(&n(t).text()), n(t));
        }
        assert_eq!(n("1.50e3").text(), "1500");
    }
}
