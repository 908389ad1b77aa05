//! Column types and their values: Postgres text parsed as PostgreSQL's input functions read
//! it; equal values compare equal and encode to equal keys (`key`).

use super::datetime::{self, Kind};
use super::decimal::Numeric;
use std::sync::Arc;

/// A supported column type.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ColumnType {
    /// `int2`/`smallint`.
    Int2,
    /// `int4`/`integer`.
    Int4,
    /// `int8`/`bigint`.
    Int8,
    /// `float4`/`real`: its values are held widened to float8, exactly.
    Float4,
    /// `float8`/`double precision`.
    Float8,
    /// `numeric`/`decimal`: exact.
    Numeric,
    /// `bool`/`boolean`.
    Bool,
    /// `text` (ordered bytewise: the `C` collation).
    Text,
    /// `uuid`.
    Uuid,
    /// `date`.
    Date,
    /// `time` (without time zone).
    Time,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`: an instant.
    Timestamptz,
    /// An enum type: its labels in declaration order (the order comparisons use).
    Enum(Arc<[String]>),
}

/// A canonical value of some column type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// An integer of an int2/int4/int8 column (within the type's range).
    Int(i64),
    /// A float8 or float4 (widened); NaN and the infinities as IEEE values; `-0.0` equal to
    /// `0.0` (in comparisons and keys) but printed as `-0`.
    Float(f64),
    /// A numeric.
    Numeric(Numeric),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// A UUID.
    Uuid(u128),
    /// A date: days since 2000-01-01 (`i32::MIN`/`MAX`: -infinity/infinity).
    Date(i32),
    /// A time: microseconds since midnight.
    Time(i64),
    /// A timestamp: microseconds since 2000-01-01 00:00 (`i64::MIN`/`MAX`: ∓infinity).
    Timestamp(i64),
    /// A timestamptz: microseconds since 2000-01-01 00:00 UTC (`i64::MIN`/`MAX`: ∓infinity).
    Timestamptz(i64),
    /// An enum value: its label's position in the declaration.
    Enum(u32),
}

impl ColumnType {
    /// The type named `name` (`int8`, `bigint`, `text`, ...), as in a cast or a schema.
    pub fn from_name(name: &str) -> Option<ColumnType> {
        Some(match name.to_ascii_lowercase().as_str() {
            "int2" | "smallint" => ColumnType::Int2,
            "int4" | "int" | "integer" => ColumnType::Int4,
            "int8" | "bigint" => ColumnType::Int8,
            "float4" | "real" => ColumnType::Float4,
            "float8" | "float" | "double precision" => ColumnType::Float8,
            "numeric" | "decimal" => ColumnType::Numeric,
            "bool" | "boolean" => ColumnType::Bool,
            "text" | "varchar" | "character varying" => ColumnType::Text,
            "uuid" => ColumnType::Uuid,
            "date" => ColumnType::Date,
            "time" | "time without time zone" => ColumnType::Time,
            "timestamp" | "timestamp without time zone" => ColumnType::Timestamp,
            "timestamptz" | "timestamp with time zone" => ColumnType::Timestamptz,
            _ => return None,
        })
    }

    /// Its canonical name (`enum` for every enum type).
    pub fn name(&self) -> &'static str {
        match self {
            ColumnType::Int2 => "int2",
            ColumnType::Int4 => "int4",
            ColumnType::Int8 => "int8",
            ColumnType::Float4 => "float4",
            ColumnType::Float8 => "float8",
            ColumnType::Numeric => "numeric",
            ColumnType::Bool => "bool",
            ColumnType::Text => "text",
            ColumnType::Uuid => "uuid",
            ColumnType::Date => "date",
            ColumnType::Time => "time",
            ColumnType::Timestamp => "timestamp",
            ColumnType::Timestamptz => "timestamptz",
            ColumnType::Enum(_) => "enum",
        }
    }

    /// Its full description: the name, and an enum's labels (`enum('open','late')`, quotes
    /// doubled inside a label).
    pub fn describe(&self) -> String {
        match self {
            ColumnType::Enum(labels) => {
                let quoted: Vec<String> = labels
                    .iter()
                    .map(|l| format!("'{}'", l.replace('\'', "''")))
                    .collect();
                format!("enum({})", quoted.join(","))
            }
            other => other.name().to_string(),
        }
    }

    /// Whether it is one of the integer types.
    pub fn is_integer(&self) -> bool {
        matches!(self, ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8)
    }

    /// Whether it is float4 or float8.
    pub fn is_float(&self) -> bool {
        matches!(self, ColumnType::Float4 | ColumnType::Float8)
    }

    /// The value of Postgres text `text` in a column of this type, or `None` if it is not one.
    pub fn parse(&self, text: &str) -> Option<Value> {
        match self {
            // PostgreSQL's int, float and bool input functions skip surrounding white space
            ColumnType::Int2 | ColumnType::Int4 | ColumnType::Int8 => {
                self.int(trim_space(text).parse().ok()?)
            }
            ColumnType::Float8 => {
                with_ascii_lowercase(trim_space(text), parse_float).map(Value::Float)
            }
            ColumnType::Float4 => {
                with_ascii_lowercase(trim_space(text), parse_float4).map(Value::Float)
            }
            ColumnType::Numeric => Numeric::parse(text).map(Value::Numeric),
            ColumnType::Bool => with_ascii_lowercase(trim_space(text), parse_bool).map(Value::Bool),
            ColumnType::Text => Some(Value::Text(text.to_string())),
            ColumnType::Uuid => parse_uuid(text).map(Value::Uuid),
            ColumnType::Date => datetime::parse(Kind::Date, text).map(|d| Value::Date(d as i32)),
            ColumnType::Time => datetime::parse(Kind::Time, text).map(Value::Time),
            ColumnType::Timestamp => datetime::parse(Kind::Timestamp, text).map(Value::Timestamp),
            ColumnType::Timestamptz => {
                datetime::parse(Kind::Timestamptz, text).map(Value::Timestamptz)
            }
            // enum_in: the label exactly as declared (no white space skipped)
            ColumnType::Enum(labels) => labels
                .iter()
                .position(|l| l == text)
                .map(|i| Value::Enum(i as u32)),
        }
    }

    /// PostgreSQL's text of `v`, a value of this type (`None` for a value of another type):
    /// what [`ColumnType::parse`] reads back as `v`.
    pub fn text(&self, v: &Value) -> Option<String> {
        Some(match (self, v) {
            (_, Value::Int(i)) => i.to_string(),
            (ColumnType::Float4, Value::Float(f)) => float_text(*f, 6),
            (_, Value::Float(f)) => float_text(*f, 15),
            (_, Value::Numeric(n)) => n.text(),
            (_, Value::Bool(b)) => if *b { "t" } else { "f" }.into(),
            (_, Value::Text(s)) => s.clone(),
            (_, Value::Uuid(u)) => uuid_text(*u),
            (_, Value::Date(d)) => datetime::text(Kind::Date, i64::from(*d)),
            (_, Value::Time(t)) => datetime::text(Kind::Time, *t),
            (_, Value::Timestamp(t)) => datetime::text(Kind::Timestamp, *t),
            (_, Value::Timestamptz(t)) => datetime::text(Kind::Timestamptz, *t),
            (ColumnType::Enum(labels), Value::Enum(i)) => labels.get(*i as usize)?.clone(),
            (_, Value::Enum(_)) => return None,
        })
    }

    /// Whether `v` is a value of this type.
    pub fn holds(&self, v: &Value) -> bool {
        match (self, v) {
            (t, Value::Int(i)) if t.is_integer() => t.int(*i).is_some(),
            (ColumnType::Enum(labels), Value::Enum(i)) => (*i as usize) < labels.len(),
            (t, v) => matches!(
                (t, v),
                (ColumnType::Float4 | ColumnType::Float8, Value::Float(_))
                    | (ColumnType::Numeric, Value::Numeric(_))
                    | (ColumnType::Bool, Value::Bool(_))
                    | (ColumnType::Text, Value::Text(_))
                    | (ColumnType::Uuid, Value::Uuid(_))
                    | (ColumnType::Date, Value::Date(_))
                    | (ColumnType::Time, Value::Time(_))
                    | (ColumnType::Timestamp, Value::Timestamp(_))
                    | (ColumnType::Timestamptz, Value::Timestamptz(_))
            ),
        }
    }

    /// `v` as a value of this integer type, if in its range.
    pub fn int(&self, v: i64) -> Option<Value> {
        let (min, max) = match self {
            ColumnType::Int2 => (i64::from(i16::MIN), i64::from(i16::MAX)),
            ColumnType::Int4 => (i64::from(i32::MIN), i64::from(i32::MAX)),
            ColumnType::Int8 => (i64::MIN, i64::MAX),
            _ => return None,
        };
        (min..=max).contains(&v).then_some(Value::Int(v))
    }
}

/// `f` of `text` lower-cased (ASCII letters only), without allocating for short text (the
/// router parses every row's values through here).
fn with_ascii_lowercase<T>(text: &str, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    let mut buf = [0u8; 64];
    match buf.get_mut(..text.len()) {
        Some(lower) => {
            lower.copy_from_slice(text.as_bytes());
            lower.make_ascii_lowercase();
            // ASCII case changes keep UTF-8 valid
            f(std::str::from_utf8(lower).ok()?)
        }
        None => f(&text.to_ascii_lowercase()),
    }
}

/// A float8 from lowercased text: `nan`, `[+-]inf[inity]`, or `[+-]digits[.digits][e[+-]digits]`
/// (a leading `.` allowed).
fn parse_float(text: &str) -> Option<f64> {
    match text {
        "nan" => return Some(f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Some(f64::INFINITY),
        "-infinity" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    let unsigned = text.strip_prefix(['+', '-']).unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once('e') {
        Some((m, e)) => (m, Some(e)),
        None => (unsigned, None),
    };
    let (int, frac) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let int_ok = digits(int) || (int.is_empty() && frac.is_some());
    // strtod's forms: `5.` and `5.e3` too
    let frac_ok = frac.is_none_or(|f| digits(f) || (f.is_empty() && !int.is_empty()));
    let exp_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !(int_ok && frac_ok && exp_ok) {
        return None;
    }
    let f: f64 = text.parse().ok()?;
    // out of range, as PostgreSQL's float8in refuses it: a finite text that overflows, or a
    // nonzero one that underflows to zero (subnormal results are kept)
    let nonzero = mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b));
    if f.is_infinite() || (f == 0.0 && nonzero) {
        return None;
    }
    // -0 stays -0 (it prints so), and equals 0 in comparisons and keys
    Some(f)
}

/// A float4 from lowercased text, as PostgreSQL's float4in reads it (rounded to the
/// nearest float4, out of float4's range refused), widened to float8 exactly.
fn parse_float4(text: &str) -> Option<f64> {
    let wide = parse_float(text)?;
    if !wide.is_finite() {
        return Some(wide);
    }
    let f: f32 = text.parse().ok()?;
    let nonzero = wide != 0.0;
    if f.is_infinite() || (f == 0.0 && nonzero) {
        return None;
    }
    Some(f64::from(f))
}

/// A UUID from 36 characters (8-4-4-4-12, hyphenated) or 32 hex digits, any case.
fn parse_uuid(text: &str) -> Option<u128> {
    // as PostgreSQL's uuid_in reads it: 32 hex digits, optionally in braces, with an optional
    // hyphen after any group of four digits (but not at the end)
    let bytes = text.as_bytes();
    let (mut rest, braces) = match bytes.strip_prefix(b"{") {
        Some(inner) => (inner, true),
        None => (bytes, false),
    };
    let mut v: u128 = 0;
    for i in 0..32 {
        let (&b, tail) = rest.split_first()?;
        v = (v << 4) | u128::from((b as char).to_digit(16)?);
        rest = tail;
        if i % 4 == 3 && i < 31 {
            if let Some(tail) = rest.strip_prefix(b"-") {
                rest = tail;
            }
        }
    }
    if braces {
        rest = rest.strip_prefix(b"}")?;
    }
    rest.is_empty().then_some(v)
}

/// A boolean as PostgreSQL's boolin reads it (lower-cased): `true`/`false`/`yes`/`no` or
/// any prefix of one of them, `on`, `off` or `of`, `1`, `0`.
fn parse_bool(word: &str) -> Option<bool> {
    let prefix_of = |full: &str| full.starts_with(word);
    match word.as_bytes().first()? {
        b't' if prefix_of("true") => Some(true),
        b'f' if prefix_of("false") => Some(false),
        b'y' if prefix_of("yes") => Some(true),
        b'n' if prefix_of("no") => Some(false),
        b'o' if word == "on" => Some(true),
        b'o' if word.len() >= 2 && prefix_of("off") => Some(false),
        b'1' if word.len() == 1 => Some(true),
        b'0' if word.len() == 1 => Some(false),
        _ => None,
    }
}

/// `text` without the white space PostgreSQL's input functions skip around a value.
fn trim_space(text: &str) -> &str {
    text.trim_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c'])
}

/// The canonical text of a UUID: 36 lowercase characters, 8-4-4-4-12 hyphenated (what
/// Postgres prints, and what [`ColumnType::parse`] reads back).
pub fn uuid_text(u: u128) -> String {
    let hex = format!("{u:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// PostgreSQL's `float8out` (`digits` 15) / `float4out` (6) text: the shortest digits that
/// read back exactly, in plain notation for exponents from -4 below `digits`, else
/// `d.ddde+XX`.
pub fn float_text(f: f64, digits: i32) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    let sci = if digits == 6 {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exponent.parse().unwrap_or(0);
    if (-4..digits).contains(&exp) {
        let negative = mantissa.starts_with('-');
        let ds: String = mantissa.chars().filter(char::is_ascii_digit).collect();
        let body = if exp < 0 {
            format!("0.{}{ds}", "0".repeat((-exp - 1) as usize))
        } else if (exp as usize) + 1 >= ds.len() {
            format!("{ds}{}", "0".repeat(exp as usize + 1 - ds.len()))
        } else {
            let (i, frac) = ds.split_at(exp as usize + 1);
            format!("{i}.{frac}")
        };
        return if negative { format!("-{body}") } else { body };
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_parse_like_postgres_text() {
        assert_eq!(ColumnType::Int8.parse("007"), Some(Value::Int(7)));
        assert_eq!(ColumnType::Int8.parse("-42"), Some(Value::Int(-42)));
        assert_eq!(ColumnType::Int2.parse("32768"), None);
        assert_eq!(
            ColumnType::Int4.parse("2147483647"),
            Some(Value::Int(2147483647))
        );
        assert_eq!(ColumnType::Int8.parse("1.0"), None);
        // PostgreSQL's int8in skips surrounding white space
        assert_eq!(ColumnType::Int8.parse(" 1\n"), Some(Value::Int(1)));
        assert_eq!(ColumnType::Int8.parse("1 2"), None);
        assert_eq!(ColumnType::Int8.parse("99999999999999999999"), None);
    }

    #[test]
    fn floats_fold_zero_and_know_the_special_values() {
        assert_eq!(ColumnType::Float8.parse("-0"), Some(Value::Float(0.0)));
        assert_eq!(ColumnType::Float8.parse(".5"), Some(Value::Float(0.5)));
        assert_eq!(
            ColumnType::Float8.parse("1.5E3"),
            Some(Value::Float(1500.0))
        );
        assert_eq!(
            ColumnType::Float8.parse("-Infinity"),
            Some(Value::Float(f64::NEG_INFINITY))
        );
        assert!(matches!(ColumnType::Float8.parse("NaN"), Some(Value::Float(f)) if f.is_nan()));
        // out of range as PostgreSQL's float8in says: overflow, or underflow to zero
        for bad in ["1e400", "-1e400", "1e-400"] {
            assert_eq!(ColumnType::Float8.parse(bad), None, "{bad}");
        }
        assert!(matches!(ColumnType::Float8.parse("1e-310"), Some(Value::Float(f)) if f > 0.0));
        assert_eq!(ColumnType::Float8.parse("0e999"), Some(Value::Float(0.0)));
        assert_eq!(ColumnType::Float8.parse("5."), Some(Value::Float(5.0)));
        assert_eq!(ColumnType::Float8.parse("5.e1"), Some(Value::Float(50.0)));
        for bad in [".", "1e", "abc", "", "1.2.3", "--1"] {
            assert_eq!(ColumnType::Float8.parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn floats_print_as_postgres() {
        // figures from PostgreSQL 15
        assert_eq!(float_text(1e15, 15), "1e+15");
        assert_eq!(float_text(1e14, 15), "100000000000000");
        assert_eq!(float_text(0.0001, 15), "0.0001");
        assert_eq!(float_text(0.00001, 15), "1e-05");
        assert_eq!(float_text(1.5e300, 15), "1.5e+300");
        assert_eq!(float_text(-0.0, 15), "-0");
        assert_eq!(
            float_text(123456789012345678.0, 15),
            "1.2345678901234568e+17"
        );
        assert_eq!(float_text(f64::from(1.1f32), 6), "1.1");
        assert_eq!(float_text(1e7, 6), "1e+07");
        assert_eq!(float_text(1e6, 6), "1e+06");
        assert_eq!(float_text(123456.0, 6), "123456");
        assert_eq!(float_text(-2.25, 15), "-2.25");
    }

    #[test]
    fn bools_and_uuids() {
        assert_eq!(ColumnType::Bool.parse("Yes"), Some(Value::Bool(true)));
        assert_eq!(ColumnType::Bool.parse("off"), Some(Value::Bool(false)));
        assert_eq!(ColumnType::Bool.parse("maybe"), None);
        let a = ColumnType::Uuid.parse("A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
        let b = ColumnType::Uuid.parse("a0eebc999c0b4ef8bb6d6bb9bd380a11");
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_eq!(
            ColumnType::Uuid.parse("a0eebc99-9c0b4-ef8-bb6d-6bb9bd380a11"),
            None
        );
    }

    #[test]
    fn uuid_text_is_canonical_and_parses_back() {
        let text = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
        let Some(Value::Uuid(u)) = ColumnType::Uuid.parse(&text.to_uppercase()) else {
            panic!("a valid uuid");
        };
        assert_eq!(uuid_text(u), text);
        assert_eq!(uuid_text(1), "00000000-0000-0000-0000-000000000001");
    }
}
