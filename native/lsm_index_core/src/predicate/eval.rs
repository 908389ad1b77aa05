//! Reference evaluation of an [`Expr`] over a row, with SQL three-valued logic: `Ok(Some(true))`,
//! `Ok(Some(false))` or `Ok(None)` (unknown), and `Err` where PostgreSQL would raise an error
//! (overflow, division by zero: the router routes such a row to the shape). A row belongs to
//! a shape only when the result is `Ok(Some(true))`. The compiled form the router runs must
//! agree with this on every row.

use super::arith::EvalError;
use super::array::{any_all, compare_arrays};
use super::{Expr, Value};
use std::cmp::Ordering;

/// A condition's value on a row (see the module doc).
pub type Truth = Result<Option<bool>, EvalError>;

/// Evaluates `expr` over `row` (one entry per table column, `None` for NULL).
pub fn eval(expr: &Expr, row: &[Option<Value>]) -> Truth {
    match expr {
        Expr::Not(e) => eval(e, row).map(|b| b.map(|b| !b)),
        // an evaluation error anywhere wins (the row could match: it is routed), as in the
        // compiled program
        Expr::And(es) => {
            let (mut unknown, mut falsified) = (false, false);
            for e in es {
                match eval(e, row)? {
                    Some(false) => falsified = true,
                    None => unknown = true,
                    Some(true) => {}
                }
            }
            Ok(if falsified {
                Some(false)
            } else {
                (!unknown).then_some(true)
            })
        }
        Expr::Or(es) => {
            let (mut unknown, mut verified) = (false, false);
            for e in es {
                match eval(e, row)? {
                    Some(true) => verified = true,
                    None => unknown = true,
                    Some(false) => {}
                }
            }
            Ok(if verified {
                Some(true)
            } else {
                (!unknown).then_some(false)
            })
        }
        Expr::Compare { left, op, right } => Ok(match (left.eval(row)?, right.eval(row)?) {
            (Some(a), Some(b)) => Some(op.holds(compare(&a, &b))),
            _ => None,
        }),
        Expr::ArrayOp { left, op, right } => Ok(match (left.eval(row)?, right.eval(row)?) {
            (Some(Value::Array(a)), Some(Value::Array(b))) => Some(op.holds(&a, &b)),
            _ => None,
        }),
        Expr::AnyAll {
            left,
            op,
            all,
            array,
        } => {
            let x = left.eval(row)?;
            Ok(match array.eval(row)? {
                Some(Value::Array(items)) => any_all(x.as_ref(), *op, *all, &items),
                _ => None,
            })
        }
        Expr::IsNullOf { expr, negated } => Ok(Some(expr.eval(row)?.is_none() != *negated)),
        Expr::LikeOf {
            expr,
            pattern,
            case_insensitive,
            negated,
        } => Ok(match expr.eval(row)? {
            Some(Value::Text(text)) => {
                Some(like_either(&text, pattern, *case_insensitive) != *negated)
            }
            _ => None,
        }),
        Expr::Truth(s) => Ok(match s.eval(row)? {
            Some(Value::Bool(b)) => Some(b),
            _ => None,
        }),
        Expr::IsTruth {
            expr,
            value,
            negated,
        } => Ok(Some((eval(expr, row)? == *value) != *negated)),
        // only `eval_with` knows the subquery's result
        Expr::InSubquery { .. } => Err(EvalError::NoView),
        simple => Ok(eval_simple(simple, row)),
    }
}

/// `text [I]LIKE pattern` (the pattern as written).
fn like_either(text: &str, pattern: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        ilike_lowered(text, &fold_case(pattern))
    } else {
        like(text, pattern)
    }
}

/// The column-against-literal conditions and constants, which never raise an error.
fn eval_simple(expr: &Expr, row: &[Option<Value>]) -> Option<bool> {
    let value = |c: usize| row.get(c).and_then(|v| v.as_ref());
    match expr {
        Expr::Const(b) => *b,
        Expr::Cmp {
            column,
            op,
            value: lit,
        } => Some(op.holds(compare(value(*column)?, lit.as_ref()?))),
        Expr::In {
            column,
            values,
            negated,
        } => {
            let v = value(*column)?;
            let found = if values
                .iter()
                .flatten()
                .any(|lit| compare(v, lit) == Ordering::Equal)
            {
                Some(true)
            } else if values.iter().any(Option::is_none) {
                None
            } else {
                Some(false)
            };
            found.map(|f| f != *negated)
        }
        Expr::IsNull { column, negated } => Some(value(*column).is_none() != *negated),
        Expr::Like {
            column,
            pattern,
            case_insensitive,
            negated,
        } => {
            let Value::Text(text) = value(*column)? else {
                return None;
            };
            Some(like_either(text, pattern, *case_insensitive) != *negated)
        }
        // the compound and expression conditions: `eval`
        _ => eval(expr, row).ok().flatten(),
    }
}

/// Orders two non-null values of one column as Postgres does: numbers numerically, floats
/// and numerics with `-Infinity` < numbers < `Infinity` < `NaN` (and `NaN` = `NaN`),
/// `false` < `true`, text bytewise (the `C` collation), UUIDs bytewise, dates and times in
/// time, enums in declaration order, arrays element by element (a NULL element last), then
/// by length. Values of different kinds (which a
/// typed expression never compares) order by kind.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::Int(x), Value::Int(y)) => x.cmp(y),
        (Value::Float(x), Value::Float(y)) => match (x.is_nan(), y.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            _ => x.partial_cmp(y).unwrap_or(Ordering::Equal),
        },
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Text(x), Value::Text(y)) => x.as_bytes().cmp(y.as_bytes()),
        (Value::Uuid(x), Value::Uuid(y)) => x.cmp(y),
        (Value::Numeric(x), Value::Numeric(y)) => x.cmp(y),
        (Value::Date(x), Value::Date(y)) => x.cmp(y),
        (Value::Time(x), Value::Time(y))
        | (Value::Timestamp(x), Value::Timestamp(y))
        | (Value::Timestamptz(x), Value::Timestamptz(y)) => x.cmp(y),
        (Value::Enum(x), Value::Enum(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => compare_arrays(x, y),
        _ => kind(a).cmp(&kind(b)),
    }
}

fn kind(v: &Value) -> u8 {
    match v {
        Value::Int(_) => 0,
        Value::Float(_) => 1,
        Value::Bool(_) => 2,
        Value::Text(_) => 3,
        Value::Uuid(_) => 4,
        Value::Numeric(_) => 5,
        Value::Date(_) => 6,
        Value::Time(_) => 7,
        Value::Timestamp(_) => 8,
        Value::Timestamptz(_) => 9,
        Value::Enum(_) => 10,
        Value::Array(_) => 11,
    }
}

/// SQL `LIKE`: `%` matches any run of characters, `_` exactly one, `\\` makes the next
/// character literal. Greedy matching with one backtrack point per `%`: O(text x pattern)
/// at worst, no recursion, no allocation.
pub fn like(text: &str, pattern: &str) -> bool {
    like_folded(text, pattern, false)
}

/// `text ILIKE pattern` for a `pattern` already folded by [`fold_case`] (the compiled form
/// keeps it so): the text's characters are folded on the fly, without allocating.
pub fn ilike_lowered(text: &str, lowered_pattern: &str) -> bool {
    like_folded(text, lowered_pattern, true)
}

/// `c` lower-cased as PostgreSQL's ILIKE folds a character under a UTF-8 `LC_CTYPE`: one
/// character to one character (`towlower`), so a final `Σ` is `σ` (never `ς`) and `İ` is `i`.
pub fn fold_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_lowercase();
    }
    let mut lower = c.to_lowercase();
    match (lower.next(), lower.next()) {
        (Some(l), None) => l,
        // a lower case of several characters (only `İ`: `i` + a combining dot): its letter
        (Some(l), Some(_)) => l,
        (None, _) => c,
    }
}

/// `c` upper-cased as PostgreSQL's `upper` under a UTF-8 `LC_CTYPE`: one character to one
/// character (`towupper`), so `ß` stays `ß`.
pub fn upper_char(c: char) -> char {
    if c.is_ascii() {
        return c.to_ascii_uppercase();
    }
    let mut upper = c.to_uppercase();
    match (upper.next(), upper.next()) {
        (Some(u), None) => u,
        _ => c,
    }
}

/// `s` with every character folded by [`fold_char`] (an ILIKE pattern, once per shape).
pub fn fold_case(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

#[derive(Clone, Copy, PartialEq)]
enum Token {
    Any,
    One,
    Char(char),
}

/// The pattern token at byte `p` and the byte after it.
fn token(pattern: &str, p: usize) -> Option<(Token, usize)> {
    let mut chars = pattern.get(p..)?.chars();
    let c = chars.next()?;
    Some(match c {
        '%' => (Token::Any, p + 1),
        '_' => (Token::One, p + 1),
        '\\' => match chars.next() {
            Some(e) => (Token::Char(e), p + 1 + e.len_utf8()),
            None => (Token::Char('\\'), p + 1),
        },
        c => (Token::Char(c), p + c.len_utf8()),
    })
}

/// The matcher over byte offsets; `fold` folds text characters ([`fold_char`]) as they are
/// read (offsets stay those of the text as written).
fn like_folded(text: &str, pattern: &str, fold: bool) -> bool {
    let char_at = |t: usize| text.get(t..).and_then(|s| s.chars().next());
    let (mut t, mut p) = (0, 0);
    // (pattern byte after the last %, text byte where that % began matching)
    let mut star: Option<(usize, usize)> = None;
    while let Some(written) = char_at(t) {
        let c = if fold { fold_char(written) } else { written };
        match token(pattern, p) {
            Some((Token::Any, next)) => {
                star = Some((next, t));
                p = next;
            }
            Some((Token::One, next)) => {
                t += written.len_utf8();
                p = next;
            }
            Some((Token::Char(pc), next)) if pc == c => {
                t += written.len_utf8();
                p = next;
            }
            _ => match star {
                Some((after, st)) => {
                    let skipped = char_at(st).map_or(1, char::len_utf8);
                    p = after;
                    t = st + skipped;
                    star = Some((after, t));
                }
                None => return false,
            },
        }
    }
    loop {
        match token(pattern, p) {
            None => return true,
            Some((Token::Any, next)) => p = next,
            Some(_) => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::predicate::parse;
    use crate::predicate::tests::columns;

    fn check(sql: &str, row: &[Option<Value>]) -> Option<bool> {
        eval(&parse(sql, &columns()).unwrap(), row).unwrap()
    }

    #[test]
    fn three_valued_logic() {
        let null_row = [None, None, None];
        let row = [Some(Value::Int(1)), Some(Value::Text("open".into())), None];
        assert_eq!(check("a = 1", &row), Some(true));
        assert_eq!(check("a = NULL", &row), None);
        assert_eq!(check("a = 1", &null_row), None);
        assert_eq!(check("NOT a = 1", &null_row), None);
        assert_eq!(check("a = 1 OR a = 2", &null_row), None);
        assert_eq!(check("a IS NULL OR a = 2", &null_row), Some(true));
        assert_eq!(
            check("f = 1 AND a = 2", &row),
            Some(false),
            "false AND unknown"
        );
        assert_eq!(check("f = 1 OR a = 1", &row), Some(true), "unknown OR true");
        assert_eq!(check("a IN (2, NULL)", &row), None);
        assert_eq!(check("a IN (1, NULL)", &row), Some(true));
        assert_eq!(check("a NOT IN (2, NULL)", &row), None);
        assert_eq!(check("a NOT IN (2, 3)", &row), Some(true));
        assert_eq!(check("s IS NOT NULL", &row), Some(true));
    }

    #[test]
    fn ordering_follows_postgres() {
        let f = |x: f64| [None, None, Some(Value::Float(x))];
        assert_eq!(check("f > 'Infinity'", &f(f64::NAN)), Some(true));
        assert_eq!(check("f = 'NaN'", &f(f64::NAN)), Some(true));
        assert_eq!(check("f < 0", &f(f64::NEG_INFINITY)), Some(true));
        let s = |x: &str| [None, Some(Value::Text(x.into())), None];
        assert_eq!(check("s < 'b'", &s("B")), Some(true), "bytewise: 'B' < 'b'");
    }

    /// The obvious recursive matcher, for comparison on small inputs.
    fn like_reference(t: &[char], p: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| like_reference(&t[i..], &p[1..])),
            Some('_') => !t.is_empty() && like_reference(&t[1..], &p[1..]),
            Some('\\') if p.len() > 1 => {
                t.first() == Some(&p[1]) && like_reference(&t[1..], &p[2..])
            }
            Some(c) => t.first() == Some(c) && like_reference(&t[1..], &p[1..]),
        }
    }

    proptest::proptest! {
        #[test]
        fn like_agrees_with_the_reference(t in "[abAüÜΣσİi%_]{0,8}", p in "[abAüΣσİ%_\\\\]{0,6}") {
            let tc: Vec<char> = t.chars().collect();
            let pc: Vec<char> = p.chars().collect();
            proptest::prop_assert_eq!(like(&t, &p), like_reference(&tc, &pc), "{:?} LIKE {:?}", t, p);
            let (tl, pl) = (fold_case(&t), fold_case(&p));
            let (tlc, plc): (Vec<char>, Vec<char>) = (tl.chars().collect(), pl.chars().collect());
            proptest::prop_assert_eq!(ilike_lowered(&t, &pl), like_reference(&tlc, &plc), "{:?} ILIKE {:?}", t, p);
        }
    }

    #[test]
    fn ilike_folds_one_character_to_one_as_postgres() {
        // PostgreSQL (UTF-8 LC_CTYPE): 'σας' ILIKE 'ΣΑΣ' is false, 'istanbul' ILIKE 'İstanbul'
        // is true
        assert!(!ilike_lowered("σας", &fold_case("ΣΑΣ")));
        assert!(ilike_lowered("σασ", &fold_case("ΣΑΣ")));
        assert!(ilike_lowered("istanbul", &fold_case("İstanbul")));
        assert!(ilike_lowered("İSTANBUL", &fold_case("istanbul")));
        assert!(ilike_lowered("ÜBER", "über"));
        assert_eq!(fold_case("İΣ"), "iσ");
    }

    #[test]
    fn like_patterns() {
        assert!(like("open", "o_en"));
        assert!(like("open", "%"));
        assert!(like("", "%"));
        assert!(!like("", "_"));
        assert!(like("a%b", "a\\%b"));
        assert!(!like("axb", "a\\%b"));
        assert!(like("mississippi", "%iss%pi"));
        assert!(!like("mississippi", "%iss%pix"));
        assert!(like("ünïcode", "_n_code"));
        let s = [None, Some(Value::Text("Open".into())), None];
        assert_eq!(check("s ILIKE 'op%'", &s), Some(true));
        assert_eq!(check("s LIKE 'op%'", &s), Some(false));
        assert_eq!(check("s NOT LIKE 'op%'", &s), Some(true));
        assert_eq!(check("s LIKE 'x%'", &[None, None, None]), None);
    }
}
