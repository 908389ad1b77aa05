//! Keys against `compare`: monotone for every orderable type, exact where promised, and the
//! bounds of every comparison with no false negatives (`may_hold`).

use super::*;
use crate::predicate::eval::compare;
use proptest::prelude::*;
use std::cmp::Ordering;

const OPS: [CmpOp; 6] = [
    CmpOp::Eq,
    CmpOp::Ne,
    CmpOp::Lt,
    CmpOp::Le,
    CmpOp::Gt,
    CmpOp::Ge,
];

fn num(text: &str) -> Value {
    Value::Numeric(Numeric::parse(text).unwrap_or_else(|| panic!("{text} is a numeric")))
}

/// Everything the module promises about one pair of values of one type.
fn check_pair(a: &Value, b: &Value) -> Result<(), TestCaseError> {
    let ord = compare(a, b);
    let (Some(ka), Some(kb)) = (key(a), key(b)) else {
        return Err(TestCaseError::fail(format!("{a:?} or {b:?} has no key")));
    };
    match ord {
        Ordering::Less => prop_assert!(ka <= kb, "{a:?} < {b:?} but keys {ka:#x} > {kb:#x}"),
        Ordering::Equal => prop_assert_eq!(ka, kb, "{:?} = {:?}", a, b),
        Ordering::Greater => prop_assert!(ka >= kb, "{a:?} > {b:?} but keys {ka:#x} < {kb:#x}"),
    }
    if exact(a) {
        prop_assert_eq!(ka.cmp(&kb), ord, "exact keys of {:?}, {:?}", a, b);
    }
    for op in OPS {
        let holds = op.holds(ord);
        let may = may_hold(a, op, b);
        // no false negatives, ever
        prop_assert!(!holds || may, "{a:?} {op:?} {b:?} holds, the keys say no");
        // exact keys decide alone, but where a strict bound saturates at an end of the keys
        let saturated = (op == CmpOp::Gt && kb == u64::MAX) || (op == CmpOp::Lt && kb == 0);
        if exact(a) && !saturated {
            prop_assert_eq!(may, holds, "{:?} {:?} {:?}", a, op, b);
        }
    }
    Ok(())
}

/// `values` sorted ascending by `compare` (ties allowed): every pair checked.
fn check_sorted(values: &[Value]) {
    for (i, a) in values.iter().enumerate() {
        for b in &values[i..] {
            assert_ne!(
                compare(a, b),
                Ordering::Greater,
                "list not sorted at {a:?}, {b:?}"
            );
        }
        for b in values {
            if let Err(e) = check_pair(a, b) {
                panic!("{e}");
            }
        }
    }
}

#[test]
fn ints_and_instants_sort_with_their_infinities_at_the_ends() {
    let ints = [i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX];
    for make in [
        Value::Int,
        Value::Time,
        Value::Timestamp,
        Value::Timestamptz,
    ] {
        check_sorted(&ints.map(make));
    }
    check_sorted(&[i32::MIN, -1, 0, 1, i32::MAX].map(Value::Date));
    // timestamps' and dates' ±infinity are the least and greatest keys of their type
    assert_eq!(key(&Value::Timestamptz(i64::MIN)), Some(0));
    assert_eq!(key(&Value::Timestamp(i64::MAX)), Some(u64::MAX));
    assert!(key(&Value::Date(i32::MIN)) < key(&Value::Date(-2_451_545)));
    check_sorted(&[0, 1, 7, u32::MAX].map(Value::Enum));
}

#[test]
fn floats_sort_with_nan_above_infinity_and_one_zero() {
    let floats = [
        f64::NEG_INFINITY,
        f64::MIN,
        -1.0,
        -f64::MIN_POSITIVE,
        -f64::from_bits(1),
        -0.0,
        0.0,
        f64::from_bits(1),
        f64::MIN_POSITIVE,
        1.0,
        f64::MAX,
        f64::INFINITY,
        f64::NAN,
        -f64::NAN,
    ];
    check_sorted(&floats.map(Value::Float));
    assert_eq!(key(&Value::Float(-0.0)), key(&Value::Float(0.0)));
    assert_eq!(key(&Value::Float(-f64::NAN)), Some(u64::MAX));
    assert!(key(&Value::Float(f64::INFINITY)) < Some(u64::MAX));
}

#[test]
fn numerics_sort_beyond_the_float_range_and_precision() {
    let sorted = [
        "-Infinity",
        "-1e131071",
        "-1e400",
        "-1.7976931348623157e308",
        "-1",
        "-1e-400",
        "-0",
        "0",
        "1e-16383",
        "1e-400",
        "4.9e-324",
        "0.1",
        "1",
        "1.0000000000000000000000001",
        "1.00000000000000000000000011",
        "9007199254740993",
        "1.7976931348623157e308",
        "1.8e308",
        "1e131071",
        "Infinity",
        "NaN",
    ];
    check_sorted(&sorted.map(num));
    // beyond the float range: the infinities' keys, ties allowed
    assert_eq!(key(&num("1e400")), key(&num("Infinity")));
    assert!(key(&num("Infinity")) < key(&num("NaN")));
    assert_eq!(key(&num("1.5")), key(&Value::Float(1.5)));
}

#[test]
fn texts_sort_by_their_first_eight_bytes() {
    let sorted = [
        "",
        "\u{1}",
        "a",
        "ab",
        "abcdefg",
        "abcdefgh",
        "abcdefgh\u{1}",
        "abcdefghij",
        "abcdefgz",
        "b",
        "é",
        "\u{10FFFF}",
    ];
    check_sorted(&sorted.map(|t| Value::Text(t.into())));
    let k = |t: &str| key(&Value::Text(t.into()));
    assert_eq!(k("abcdefgh"), k("abcdefghzzz"));
    assert_eq!(k("ab"), Some(u64::from_be_bytes(*b"ab\0\0\0\0\0\0")));
}

#[test]
fn unorderable_types_have_no_key_and_ne_no_interval() {
    for v in [
        Value::Bool(true),
        Value::Uuid(7),
        Value::Array(vec![Some(Value::Int(1))]),
    ] {
        assert_eq!(key(&v), None);
        assert_eq!(interval(CmpOp::Gt, &v), None);
    }
    assert_eq!(interval(CmpOp::Ne, &Value::Int(1)), None);
}

#[test]
fn strict_bounds_tighten_on_exact_types_only() {
    let five = key(&Value::Int(5)).unwrap_or_default();
    assert_eq!(
        interval(CmpOp::Gt, &Value::Int(5)),
        Some((five + 1, u64::MAX))
    );
    assert_eq!(interval(CmpOp::Le, &Value::Int(5)), Some((0, five)));
    assert_eq!(interval(CmpOp::Eq, &Value::Int(5)), Some((five, five)));
    // `a > 5 AND a < 3` intersects to an empty interval
    let (lo, _) = interval(CmpOp::Gt, &Value::Int(5)).unwrap_or_default();
    let (_, hi) = interval(CmpOp::Lt, &Value::Int(3)).unwrap_or_default();
    assert!(lo > hi);
    let ab = Value::Text("ab".into());
    let kab = key(&ab).unwrap_or_default();
    assert_eq!(interval(CmpOp::Gt, &ab), Some((kab, u64::MAX)));
    assert_eq!(interval(CmpOp::Lt, &ab), Some((0, kab)));
    // saturation at the ends widens instead of wrapping
    assert_eq!(
        interval(CmpOp::Gt, &Value::Float(f64::NAN)),
        Some((u64::MAX, u64::MAX))
    );
    assert_eq!(
        interval(CmpOp::Lt, &Value::Timestamp(i64::MIN)),
        Some((0, 0))
    );
}

fn ints() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -3i64..3,
        Just(i64::MIN),
        Just(i64::MAX),
        Just(i64::MIN + 1),
        Just(i64::MAX - 1)
    ]
}

fn floats() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        -2.0f64..2.0,
        prop::sample::select(vec![
            f64::NAN,
            -f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.0,
            -0.0,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::from_bits(1),
        ]),
    ]
}

fn numerics() -> impl Strategy<Value = Numeric> {
    let finite = (any::<bool>(), "[0-9]{0,3}", "[0-9]{0,50}", -400i64..400)
        .prop_map(|(neg, int, frac, e)| Numeric::from_parts(neg, &int, &frac, e));
    prop_oneof![
        4 => finite,
        3 => (floats(), 0usize..60, "[0-9]{0,12}").prop_map(|(x, n, tail)| near(x, n, &tail)),
        1 => prop::sample::select(vec![
            Numeric::NaN,
            Numeric::Infinity,
            Numeric::NegInfinity,
            Numeric::zero(),
        ]),
    ]
}

/// Two numerics close to one float8 `x`, across its rounding boundaries.
fn near_pair() -> impl Strategy<Value = (Numeric, Numeric)> {
    (
        floats(),
        0usize..60,
        "[0-9]{0,12}",
        0usize..60,
        "[0-9]{0,12}",
    )
        .prop_map(|(x, n, t, m, u)| (near(x, n, &t), near(x, m, &u)))
}

/// `x` written with `precision` digits after the first (rounded: above or below `x`), then
/// `tail` appended: numerics within a few units of `x`'s last place, or on its far side.
fn near(x: f64, precision: usize, tail: &str) -> Numeric {
    let x = if x.is_finite() { x } else { 1.0 };
    let text = format!("{x:.precision$e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i64 = exp.parse().unwrap_or(0);
    let frac = format!("{}{tail}", &digits[1..]);
    Numeric::from_parts(x < 0.0, &digits[..1], &frac, exp)
}

fn texts() -> impl Strategy<Value = String> {
    prop_oneof![
        "(abcdefgh|abcdefg|abc)?[ab\u{1}\u{e9}]{0,12}",
        any::<String>(),
    ]
}

/// Two values of one type, often close together.
fn pairs() -> impl Strategy<Value = (Value, Value)> {
    let near_ints = (ints(), ints(), -2i64..=2).prop_map(|(a, b, d)| {
        let b = if d == 0 { b } else { a.saturating_add(d) };
        (Value::Int(a), Value::Int(b))
    });
    let instants = (ints(), ints(), 0u8..3).prop_map(|(a, b, kind)| match kind {
        0 => (Value::Timestamp(a), Value::Timestamp(b)),
        1 => (Value::Timestamptz(a), Value::Timestamptz(b)),
        _ => (
            Value::Time(a.rem_euclid(86_400_000_001)),
            Value::Time(b.rem_euclid(86_400_000_001)),
        ),
    });
    let dates = (
        prop_oneof![any::<i32>(), Just(i32::MIN), Just(i32::MAX), -3i32..3],
        any::<i32>(),
    )
        .prop_map(|(a, b)| (Value::Date(a), Value::Date(b)));
    let enums = (0u32..4, prop_oneof![0u32..4, Just(u32::MAX)])
        .prop_map(|(a, b)| (Value::Enum(a), Value::Enum(b)));
    prop_oneof![
        near_ints,
        instants,
        dates,
        enums,
        (floats(), floats()).prop_map(|(a, b)| (Value::Float(a), Value::Float(b))),
        (numerics(), numerics()).prop_map(|(a, b)| (Value::Numeric(a), Value::Numeric(b))),
        (texts(), texts()).prop_map(|(a, b)| (Value::Text(a), Value::Text(b))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    #[test]
    fn keys_are_monotone_exact_where_promised_and_bounds_have_no_false_negatives(
        (a, b) in pairs()
    ) {
        check_pair(&a, &b)?;
        check_pair(&b, &a)?;
        check_pair(&a, &a)?;
    }

    #[test]
    fn numerics_near_one_float_keep_their_order((a, b) in near_pair()) {
        check_pair(&Value::Numeric(a), &Value::Numeric(b))?;
    }
}
