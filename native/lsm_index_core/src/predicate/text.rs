//! PostgreSQL's text forms of the scalar types that need more than `str::parse`: how its
//! input functions read bool, float and uuid text, and how its output functions print
//! floats and uuids (`ColumnType::parse` and `ColumnType::text` call them).

/// `f` of `text` lower-cased (ASCII letters only), without allocating for short text (the
/// router parses every row's values through here).
pub(super) fn with_ascii_lowercase<T>(text: &str, f: impl FnOnce(&str) -> Option<T>) -> Option<T> {
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
pub(super) fn parse_float(text: &str) -> Option<f64> {
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
pub(super) fn parse_float4(text: &str) -> Option<f64> {
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
pub(super) fn parse_uuid(text: &str) -> Option<u128> {
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
pub(super) fn parse_bool(word: &str) -> Option<bool> {
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
pub(super) fn trim_space(text: &str) -> &str {
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
