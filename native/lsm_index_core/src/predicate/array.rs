//! One-dimensional arrays: PostgreSQL's array text read and written as `array_in` and
//! `array_out` do, and the array operators with PostgreSQL's semantics (`@>`, `<@`, `&&`,
//! `op ANY | ALL`, ordering).
//!
//! ```text
//! text:  [ws] '{' [ws] [ element [ws] ( ',' [ws] element [ws] )* ] '}' [ws]
//! element: "quoted \"text\""  (\ escapes the next character; never NULL)
//!        | unquoted text       (no '"' '{' ',' '}'; \ escapes; trimmed; NULL in any case is NULL)
//! ```
//!
//! Multi-dimensional text (`{{1,2},{3,4}}`) and explicit bounds (`[0:1]={1,2}`) are not
//! read: such a value does not parse (a row holding one is routed conservatively, a literal
//! is refused). Element text is read by the element type's own input function.

use super::eval::compare;
use super::{CmpOp, ColumnType, Value};
use std::cmp::Ordering;

/// An operator between two arrays of one type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArrayOp {
    /// `a @> b`: every element of `b` is in `a` (a NULL element of `b` never is).
    Contains,
    /// `a <@ b`: `b @> a`.
    ContainedBy,
    /// `a && b`: some non-NULL element is in both.
    Overlaps,
}

impl ArrayOp {
    /// Its SQL symbol.
    pub fn symbol(self) -> &'static str {
        match self {
            ArrayOp::Contains => "@>",
            ArrayOp::ContainedBy => "<@",
            ArrayOp::Overlaps => "&&",
        }
    }

    /// The operator named by `symbol` (`@>`, `<@`, `&&`).
    pub fn from_symbol(symbol: &str) -> Option<ArrayOp> {
        Some(match symbol {
            "@>" => ArrayOp::Contains,
            "<@" => ArrayOp::ContainedBy,
            "&&" => ArrayOp::Overlaps,
            _ => return None,
        })
    }

    /// The operator with its operands swapped (`a <@ b` is `b @> a`).
    pub fn flipped(self) -> ArrayOp {
        match self {
            ArrayOp::Contains => ArrayOp::ContainedBy,
            ArrayOp::ContainedBy => ArrayOp::Contains,
            ArrayOp::Overlaps => ArrayOp::Overlaps,
        }
    }

    /// `a op b` on two (non-NULL) arrays: never unknown.
    pub fn holds(self, a: &[Option<Value>], b: &[Option<Value>]) -> bool {
        match self {
            ArrayOp::Contains => contains(a, b),
            ArrayOp::ContainedBy => contains(b, a),
            ArrayOp::Overlaps => a
                .iter()
                .flatten()
                .any(|x| b.iter().flatten().any(|y| compare(x, y) == Ordering::Equal)),
        }
    }
}

/// `a @> b` (PostgreSQL's `array_contain_compare`): NULL elements of `a` are skipped, one in
/// `b` makes it false.
fn contains(a: &[Option<Value>], b: &[Option<Value>]) -> bool {
    b.iter().all(|y| {
        y.as_ref()
            .is_some_and(|y| a.iter().flatten().any(|x| compare(x, y) == Ordering::Equal))
    })
}

/// `x op ANY (elements)` (`all`: `op ALL`), PostgreSQL's `ScalarArrayOpExpr`: an empty array
/// gives false (ANY) or true (ALL) even for a NULL `x`; else a NULL `x` gives unknown; else the
/// answer is decided by a non-NULL element, or unknown when a NULL element could decide it.
pub fn any_all(
    x: Option<&Value>,
    op: CmpOp,
    all: bool,
    elements: &[Option<Value>],
) -> Option<bool> {
    if elements.is_empty() {
        return Some(all);
    }
    let x = x?;
    let mut unknown = false;
    for e in elements {
        match e {
            None => unknown = true,
            Some(e) if op.holds(compare(x, e)) != all => return Some(!all),
            Some(_) => {}
        }
    }
    if unknown {
        None
    } else {
        Some(all)
    }
}

/// Orders two arrays as PostgreSQL's `btarraycmp`: element by element (a NULL element after
/// every value, equal to another NULL), then the shorter first.
pub fn compare_arrays(a: &[Option<Value>], b: &[Option<Value>]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        let ord = match (x, y) {
            (Some(x), Some(y)) => compare(x, y),
            (None, None) => Ordering::Equal,
            (None, Some(_)) => Ordering::Greater,
            (Some(_), None) => Ordering::Less,
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    a.len().cmp(&b.len())
}

/// PostgreSQL's white space in array text (`array_isspace`).
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// The elements of array text `text` whose elements are of type `element`, as `array_in`
/// reads it; `None` for text that is not a one-dimensional array of such elements.
pub fn parse(element: &ColumnType, text: &str) -> Option<Vec<Option<Value>>> {
    let mut items = Vec::new();
    for item in elements(text)? {
        items.push(match item {
            None => None,
            Some(t) => Some(element.parse(&t)?),
        });
    }
    Some(items)
}

/// The elements' texts of array text (`None`: a NULL element), or `None` if it is malformed,
/// multi-dimensional or has explicit bounds.
fn elements(text: &str) -> Option<Vec<Option<String>>> {
    let b = text.as_bytes();
    let mut i = 0;
    let skip = |i: &mut usize| {
        while *i < b.len() && is_space(b[*i]) {
            *i += 1;
        }
    };
    skip(&mut i);
    if b.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    skip(&mut i);
    let mut out = Vec::new();
    if b.get(i) == Some(&b'}') {
        i += 1;
    } else {
        loop {
            skip(&mut i);
            out.push(element(text, &mut i)?);
            skip(&mut i);
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    skip(&mut i);
    (i == b.len()).then_some(out)
}

/// One element starting at `*i` (after white space): its text, `None` for NULL; `*i` left
/// after it.
fn element(text: &str, i: &mut usize) -> Option<Option<String>> {
    let b = text.as_bytes();
    let mut out: Vec<u8> = Vec::new();
    if b.get(*i) == Some(&b'"') {
        *i += 1;
        loop {
            match *b.get(*i)? {
                b'"' => {
                    *i += 1;
                    break;
                }
                b'\\' => {
                    out.push(*b.get(*i + 1)?);
                    *i += 2;
                }
                c => {
                    out.push(c);
                    *i += 1;
                }
            }
        }
        return String::from_utf8(out).ok().map(Some);
    }
    // unquoted: up to ',' or '}', trailing white space (not escaped) trimmed
    let (mut escaped, mut kept) = (false, 0);
    loop {
        match *b.get(*i)? {
            b',' | b'}' => break,
            b'"' | b'{' => return None,
            b'\\' => {
                out.push(*b.get(*i + 1)?);
                *i += 2;
                escaped = true;
                kept = out.len();
            }
            c => {
                out.push(c);
                *i += 1;
                if !is_space(c) {
                    kept = out.len();
                }
            }
        }
    }
    out.truncate(kept);
    if out.is_empty() && !escaped {
        return None;
    }
    if !escaped && out.eq_ignore_ascii_case(b"NULL") {
        return Some(None);
    }
    String::from_utf8(out).ok().map(Some)
}

/// PostgreSQL's text of an array of `element`s (`array_out`): `{1,NULL,"a b"}`; an element
/// is double-quoted (`"` and `\` escaped) when it is empty, `NULL` in any case, or holds
/// white space, `"`, `\`, `{`, `}` or `,`.
pub fn text(element: &ColumnType, items: &[Option<Value>]) -> Option<String> {
    let mut out = String::from("{");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let Some(v) = item else {
            out.push_str("NULL");
            continue;
        };
        let t = element.text(v)?;
        let quote = t.is_empty()
            || t.eq_ignore_ascii_case("NULL")
            || t.bytes()
                .any(|c| is_space(c) || matches!(c, b'"' | b'\\' | b'{' | b'}' | b','));
        if quote {
            out.push('"');
            for c in t.chars() {
                if matches!(c, '"' | '\\') {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        } else {
            out.push_str(&t);
        }
    }
    out.push('}');
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(t: &str) -> Option<Vec<Option<String>>> {
        elements(t)
    }

    fn s(x: &str) -> Option<String> {
        Some(x.to_string())
    }

    /// Figures from PostgreSQL 15 (`'…'::text[]`).
    #[test]
    fn array_text_reads_as_postgres() {
        assert_eq!(
            texts(r#"{a b,c,"with \"quote\"","",NULL,"NULL", null, Null ,  x  y  }"#),
            Some(vec![
                s("a b"),
                s("c"),
                s("with \"quote\""),
                s(""),
                None,
                s("NULL"),
                None,
                None,
                s("x  y")
            ])
        );
        assert_eq!(texts("{}"), Some(vec![]));
        assert_eq!(texts(" { } "), Some(vec![]));
        assert_eq!(texts("{ 1 , 2 }"), Some(vec![s("1"), s("2")]));
        assert_eq!(texts(r#"{ "a" }"#), Some(vec![s("a")]));
        assert_eq!(texts(r"{ a\  }"), Some(vec![s("a ")]));
        assert_eq!(texts(r"{ \ a}"), Some(vec![s(" a")]));
        assert_eq!(texts(r#"{a\"b}"#), Some(vec![s("a\"b")]));
        assert_eq!(texts(r"{N\ULL}"), Some(vec![s("NULL")]));
        assert_eq!(texts("{NULLx}"), Some(vec![s("NULLx")]));
        assert_eq!(texts("{\u{c}a}"), Some(vec![s("a")]));
        for bad in [
            "{1,,2}",
            "{,}",
            "{a,}",
            r#"{"a",}"#,
            r#"{"a"  "b"}"#,
            r#"{a,"b"c}"#,
            r#"{a"b"}"#,
            r"{a\}",
            r"{a\",
            r#"{"a}"#,
            "{",
            "{}}",
            "{}x",
            "{a{b}",
            "{a}b}",
            "1",
            "",
            "{{1,2},{3,4}}",
            "{{}}",
            "[0:1]={1,2}",
        ] {
            assert_eq!(texts(bad), None, "{bad}");
        }
    }

    #[test]
    fn elements_are_read_by_their_type() {
        let ints = |t| parse(&ColumnType::Int4, t);
        assert_eq!(ints("{1,NULL}"), Some(vec![Some(Value::Int(1)), None]));
        assert_eq!(ints(r#"{" 1 "}"#), Some(vec![Some(Value::Int(1))]));
        assert_eq!(ints(r#"{"null"}"#), None);
        assert_eq!(ints("{1 2}"), None);
        assert_eq!(parse(&ColumnType::Int2, "{40000}"), None);
    }

    #[test]
    fn array_text_prints_as_postgres() {
        let t = |x: &str| Some(Value::Text(x.into()));
        let items = [
            t("a b"),
            t(""),
            None,
            t("NULL"),
            t("a\"b"),
            t("a\\b"),
            t("a,b"),
            t("{"),
            t("null"),
            t("a\tb"),
            t("x"),
        ];
        assert_eq!(
            text(&ColumnType::Text, &items).unwrap(),
            r#"{"a b","",NULL,"NULL","a\"b","a\\b","a,b","{","null","a	b",x}"#
        );
        let bools = [Some(Value::Bool(true)), Some(Value::Bool(false))];
        assert_eq!(text(&ColumnType::Bool, &bools).unwrap(), "{t,f}");
        assert_eq!(text(&ColumnType::Int8, &[]).unwrap(), "{}");
        let back = parse(&ColumnType::Text, &text(&ColumnType::Text, &items).unwrap());
        assert_eq!(back.as_deref(), Some(&items[..]));
    }

    #[test]
    fn operators_follow_postgres() {
        let a = |v: &[Option<i64>]| -> Vec<Option<Value>> {
            v.iter().map(|x| x.map(Value::Int)).collect()
        };
        let (one_null, null) = (a(&[Some(1), None]), a(&[None]));
        // '{1,NULL}' @> '{NULL}' is f, @> '{}' is t, && '{NULL}' is f
        assert!(!ArrayOp::Contains.holds(&one_null, &null));
        assert!(ArrayOp::Contains.holds(&one_null, &[]));
        assert!(!ArrayOp::Overlaps.holds(&one_null, &null));
        assert!(!ArrayOp::Overlaps.holds(&[], &[]));
        assert!(ArrayOp::ContainedBy.holds(&a(&[Some(1)]), &one_null));
        // NULL = ANY('{}') is f, NULL = ANY('{1}') unknown, 1 = ANY('{2,NULL}') unknown
        let one = Value::Int(1);
        assert_eq!(any_all(None, CmpOp::Eq, false, &[]), Some(false));
        assert_eq!(any_all(None, CmpOp::Eq, false, &a(&[Some(1)])), None);
        assert_eq!(
            any_all(Some(&one), CmpOp::Eq, false, &a(&[Some(2), None])),
            None
        );
        assert_eq!(
            any_all(Some(&one), CmpOp::Ne, true, &a(&[Some(2), None])),
            None
        );
        assert_eq!(any_all(Some(&one), CmpOp::Ne, true, &[]), Some(true));
        assert_eq!(any_all(Some(&one), CmpOp::Eq, false, &one_null), Some(true));
        assert_eq!(any_all(Some(&one), CmpOp::Ne, true, &one_null), Some(false));
        // '{1,NULL}' < '{1,2}' is f; '{}' < '{1}'; '{1}' < '{1,0}'
        assert_eq!(
            compare_arrays(&one_null, &a(&[Some(1), Some(2)])),
            Ordering::Greater
        );
        assert_eq!(compare_arrays(&[], &a(&[Some(1)])), Ordering::Less);
        assert_eq!(
            compare_arrays(&a(&[Some(1)]), &a(&[Some(1), Some(0)])),
            Ordering::Less
        );
        assert_eq!(compare_arrays(&one_null, &one_null), Ordering::Equal);
    }
}
