//! Column types and their values: Postgres text parsed as PostgreSQL's input functions read
//! it; equal values compare equal and encode to equal keys (`key`).

use super::array;
use super::datetime::{self, Kind};
use super::decimal::Numeric;
use super::text::{
    float_text, parse_bool, parse_float, parse_float4, parse_uuid, trim_space, uuid_text,
    with_ascii_lowercase,
};
use std::borrow::Cow;
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
    /// An enum type: its name, if known, and its labels in declaration order (the order
    /// comparisons use).
    Enum(Arc<EnumType>),
    /// A one-dimensional array of the element type (never itself an array).
    Array(Arc<ColumnType>),
}

/// An enum type (`CREATE TYPE name AS ENUM (labels)`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EnumType {
    /// Its name, as a cast or a typed literal names it (`'sad'::mood`, `mood 'sad'`): an
    /// identifier as PostgreSQL folds it (an unquoted `Mood` is `mood`; `"Mood"` is itself).
    /// `None` for an enum known by its labels only, which SQL cannot name.
    pub name: Option<String>,
    /// Its labels, in declaration order.
    pub labels: Vec<String>,
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
    /// A one-dimensional array: its elements in order (`None`: a NULL element).
    Array(Vec<Option<Value>>),
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

    /// An enum type known by its labels only (`labels` in declaration order).
    pub fn enumeration<S: Into<String>>(labels: impl IntoIterator<Item = S>) -> ColumnType {
        ColumnType::Enum(Arc::new(EnumType {
            name: None,
            labels: labels.into_iter().map(Into::into).collect(),
        }))
    }

    /// The enum type `name` (as PostgreSQL spells the identifier) with `labels`.
    pub fn named_enum<S: Into<String>>(
        name: impl Into<String>,
        labels: impl IntoIterator<Item = S>,
    ) -> ColumnType {
        ColumnType::Enum(Arc::new(EnumType {
            name: Some(name.into()),
            labels: labels.into_iter().map(Into::into).collect(),
        }))
    }

    /// The array type whose elements are of this type (an array type itself for an array:
    /// PostgreSQL's `int4[][]` is `int4[]`).
    pub fn array_of(self) -> ColumnType {
        match self {
            a @ ColumnType::Array(_) => a,
            t => ColumnType::Array(Arc::new(t)),
        }
    }

    /// The element type of an array type.
    pub fn element(&self) -> Option<&ColumnType> {
        match self {
            ColumnType::Array(e) => Some(e),
            _ => None,
        }
    }

    /// The built-in type whose catalog name (`pg_type.typname`) is exactly `name`: what a
    /// double-quoted type name means (`'5'::"int4"`; `"integer"` is no type's catalog name;
    /// `"_int4"` is `int4[]`).
    pub fn from_catalog_name(name: &str) -> Option<ColumnType> {
        if let Some(element) = name.strip_prefix('_') {
            return match ColumnType::from_catalog_name(element)? {
                ColumnType::Array(_) => None,
                t => Some(t.array_of()),
            };
        }
        match name {
            "int2" | "int4" | "int8" | "float4" | "float8" | "numeric" | "bool" | "text"
            | "varchar" | "uuid" | "date" | "time" | "timestamp" | "timestamptz" => {
                ColumnType::from_name(name)
            }
            _ => None,
        }
    }

    /// Its canonical name: a named enum's name, `enum` for an enum known by its labels only,
    /// an array's its element's and `[]` (`int8[]`).
    pub fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed(match self {
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
            ColumnType::Enum(e) => e.name.as_deref().unwrap_or("enum"),
            ColumnType::Array(e) => return Cow::Owned(format!("{}[]", e.name())),
        })
    }

    /// Its full description: the name, and an enum's name and labels (`enum('open','late')`
    /// for an enum known by its labels, `enum "mood"('sad','ok')` for a named one; quotes
    /// doubled inside a name or label).
    pub fn describe(&self) -> String {
        match self {
            ColumnType::Enum(e) => {
                let quoted: Vec<String> = e
                    .labels
                    .iter()
                    .map(|l| format!("'{}'", l.replace('\'', "''")))
                    .collect();
                match &e.name {
                    None => format!("enum({})", quoted.join(",")),
                    Some(name) => {
                        format!(
                            "enum \"{}\"({})",
                            name.replace('"', "\"\""),
                            quoted.join(",")
                        )
                    }
                }
            }
            ColumnType::Array(e) => format!("{}[]", e.describe()),
            other => other.name().into_owned(),
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
            ColumnType::Enum(e) => e
                .labels
                .iter()
                .position(|l| l == text)
                .map(|i| Value::Enum(i as u32)),
            ColumnType::Array(e) => array::parse(e, text).map(Value::Array),
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
            (ColumnType::Enum(e), Value::Enum(i)) => e.labels.get(*i as usize)?.clone(),
            (_, Value::Enum(_)) => return None,
            (ColumnType::Array(e), Value::Array(items)) => array::text(e, items)?,
            (_, Value::Array(_)) => return None,
        })
    }

    /// Whether `v` is a value of this type.
    pub fn holds(&self, v: &Value) -> bool {
        match (self, v) {
            (t, Value::Int(i)) if t.is_integer() => t.int(*i).is_some(),
            (ColumnType::Enum(e), Value::Enum(i)) => (*i as usize) < e.labels.len(),
            (ColumnType::Array(e), Value::Array(items)) => {
                items.iter().flatten().all(|v| e.holds(v))
            }
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
