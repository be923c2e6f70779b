//! A JSON tree that keeps every key in the server's order, and the reading of
//! counts from it.
//!
//! `serde_json::Value` (without its `preserve_order` feature) sorts object
//! keys and silently keeps only the last of two equal keys. A usage body that
//! names one route twice must be read conservatively (both figures, the tighter
//! wins), and a report should list routes as the server did, so the parsers
//! read into this tree instead. Syntax, truncation and nesting depth are still
//! checked by `serde_json` (its recursion limit keeps a hostile body from
//! exhausting the stack).
//!
//! A key given twice in one object is read the same way: every value counts.
//! A figure takes the conservative one ([`Tightest`]), an object is read
//! once per occurrence (its routes then merge, tighter figures winning), and
//! a name must be the same each time ([`Json::agreed_field`]). Taking the first
//! (or, as `serde_json` does, the last) could let a repeated `limit` raise a
//! bucket's limit.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

use super::error::SeedError;

/// A JSON value; objects are key-value pairs in document order, duplicates kept.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Json {
    Null,
    Bool(bool),
    /// A non-negative integer that fits in a `u64`.
    Unsigned(u64),
    /// A negative integer.
    Negative(i64),
    /// Any other number (a fraction, an exponent, an integer beyond `u64`).
    Float(f64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    /// What kind of value this is, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Unsigned(_) | Json::Negative(_) | Json::Float(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// Every value of `key` in an object, in document order: none for a
    /// value that is not an object.
    pub(crate) fn fields<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Json> + 'a {
        self.pairs()
            .iter()
            .filter(move |(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The value of `key` in an object, if it is given, and given the same
    /// each time.
    pub(crate) fn agreed_field<'a>(
        &'a self,
        key: &'a str,
    ) -> Result<Option<&'a Json>, Contradicted> {
        agreed(self.fields(key))
    }

    /// An object's key-value pairs in document order; none for another value.
    pub(crate) fn pairs(&self) -> &[(String, Json)] {
        match self {
            Json::Object(pairs) => pairs,
            _ => &[],
        }
    }
}

/// The one value `values` (one field's) give, if any, when they are all the same.
pub(crate) fn agreed<'a>(
    values: impl IntoIterator<Item = &'a Json>,
) -> Result<Option<&'a Json>, Contradicted> {
    let mut values = values.into_iter();
    let first = values.next();
    match first {
        Some(first) if values.any(|v| v != first) => Err(Contradicted),
        _ => Ok(first),
    }
}

/// A field given more than once with different values where only one can
/// be right (a name, not a figure).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Contradicted;

/// Which of a repeated figure's values is the conservative one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tightest {
    /// The smallest: a limit, what is left.
    Smallest,
    /// The largest: a count of what was used or sent.
    Largest,
}

/// A figure read from every value a field was given.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Figure {
    /// The conservative value.
    pub(crate) value: u64,
    /// Whether the values differed (worth a warning).
    pub(crate) contradicted: bool,
}

/// The count `values` (one field's, in document order) give: each must be a
/// count ([`count`]); of several, the `tightest`.
pub(crate) fn tightest_count<'a>(
    values: impl IntoIterator<Item = &'a Json>,
    tightest: Tightest,
) -> Result<Figure, BadCount> {
    tightest_of(values, tightest, count)
}

/// The limit `values` give: the smallest, each a count that fits the engine's
/// `u32` limits ([`limit`]).
pub(crate) fn tightest_limit<'a>(
    values: impl IntoIterator<Item = &'a Json>,
) -> Result<Figure, BadCount> {
    tightest_of(values, Tightest::Smallest, limit)
}

/// The `tightest` of `values`, each read with `read` (the first it refuses
/// is the error).
fn tightest_of<'a>(
    values: impl IntoIterator<Item = &'a Json>,
    tightest: Tightest,
    read: fn(Option<&Json>) -> Result<u64, BadCount>,
) -> Result<Figure, BadCount> {
    let mut figure: Option<Figure> = None;
    for value in values {
        let n = read(Some(value))?;
        figure = Some(match figure {
            None => Figure {
                value: n,
                contradicted: false,
            },
            Some(f) => Figure {
                value: match tightest {
                    Tightest::Smallest => f.value.min(n),
                    Tightest::Largest => f.value.max(n),
                },
                contradicted: f.contradicted || f.value != n,
            },
        });
    }
    figure.ok_or(BadCount::Missing)
}

/// Parses a whole body. A body cut short anywhere is [`SeedError::Truncated`].
pub(crate) fn parse(body: &[u8]) -> Result<Json, SeedError> {
    serde_json::from_slice(body).map_err(|e| SeedError::from_json(&e))
}

/// Why a value is not a usable count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadCount {
    /// The field is absent.
    Missing,
    /// A negative number.
    Negative,
    /// A number with a fraction or an exponent (`6000.0`, `6e3`, `0.5`).
    NotInteger,
    /// An integer too large to be a count (beyond `u64`, or beyond `u32` for a limit).
    TooLarge,
    /// Not a number at all (a string, `null`, an object, ...).
    NotANumber(&'static str),
}

impl fmt::Display for BadCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadCount::Missing => f.write_str("missing"),
            BadCount::Negative => f.write_str("negative"),
            BadCount::NotInteger => f.write_str("not a whole number"),
            BadCount::TooLarge => f.write_str("too large"),
            BadCount::NotANumber(kind) => write!(f, "{kind}, not a number"),
        }
    }
}

/// A count: a non-negative integer, nothing else (no strings, no `6000.0`).
pub(crate) fn count(value: Option<&Json>) -> Result<u64, BadCount> {
    match value {
        None => Err(BadCount::Missing),
        Some(Json::Unsigned(n)) => Ok(*n),
        Some(Json::Negative(_)) => Err(BadCount::Negative),
        Some(Json::Float(x)) if *x < 0.0 => Err(BadCount::Negative),
        Some(Json::Float(x)) if x.fract() == 0.0 && *x >= 1.8e19 => Err(BadCount::TooLarge),
        Some(Json::Float(_)) => Err(BadCount::NotInteger),
        Some(other) => Err(BadCount::NotANumber(other.kind())),
    }
}

/// A limit: a count that fits the engine's `u32` limits.
pub(crate) fn limit(value: Option<&Json>) -> Result<u64, BadCount> {
    let n = count(value)?;
    if n > u64::from(u32::MAX) {
        return Err(BadCount::TooLarge);
    }
    Ok(n)
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        d.deserialize_any(JsonVisitor)
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Json, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Json, D::Error> {
        Json::deserialize(d)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Json, E> {
        Ok(Json::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Json, E> {
        Ok(Json::Unsigned(n))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Json, E> {
        Ok(match u64::try_from(n) {
            Ok(n) => Json::Unsigned(n),
            Err(_) => Json::Negative(n),
        })
    }

    fn visit_f64<E>(self, x: f64) -> Result<Json, E> {
        Ok(Json::Float(x))
    }

    fn visit_str<E>(self, s: &str) -> Result<Json, E> {
        Ok(Json::String(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Json, E> {
        Ok(Json::String(s))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
        let mut pairs = Vec::new();
        while let Some((k, v)) = map.next_entry::<String, Json>()? {
            pairs.push((k, v));
        }
        Ok(Json::Object(pairs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_duplicates() {
        let j = parse(br#"{"b": 1, "a": [true, null], "b": -2, "c": 1.5}"#).expect("json");
        let Json::Object(pairs) = &j else {
            panic!("an object")
        };
        let keys: Vec<&str> = pairs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["b", "a", "b", "c"]);
        let b: Vec<&Json> = j.fields("b").collect();
        assert_eq!(b, [&Json::Unsigned(1), &Json::Negative(-2)]);
        assert_eq!(j.agreed_field("b"), Err(Contradicted));
        assert_eq!(
            j.agreed_field("a"),
            Ok(Some(&Json::Array(vec![Json::Bool(true), Json::Null])))
        );
        assert_eq!(j.agreed_field("zz"), Ok(None));
        assert_eq!(Json::Null.fields("a").count(), 0);
    }

    #[test]
    fn repeated_figures_keep_the_tightest_value() {
        let j = parse(br#"{"n": 7, "n": 3, "n": 9, "one": 4, "bad": 1, "bad": -1}"#).expect("json");
        let read = |key, tightest| tightest_count(j.fields(key), tightest);
        let figure = |value, contradicted| Figure {
            value,
            contradicted,
        };
        assert_eq!(read("n", Tightest::Smallest), Ok(figure(3, true)));
        assert_eq!(read("n", Tightest::Largest), Ok(figure(9, true)));
        assert_eq!(read("one", Tightest::Largest), Ok(figure(4, false)));
        assert_eq!(read("bad", Tightest::Smallest), Err(BadCount::Negative));
        assert_eq!(read("zz", Tightest::Smallest), Err(BadCount::Missing));
        let j = parse(br#"{"limit": 10, "limit": 4294967296}"#).expect("json");
        assert_eq!(tightest_limit(j.fields("limit")), Err(BadCount::TooLarge));
    }

    #[test]
    fn counts_are_non_negative_integers_only() {
        let p = |s: &str| parse(s.as_bytes()).expect("json");
        assert_eq!(count(Some(&p("0"))), Ok(0));
        assert_eq!(count(Some(&p("18446744073709551615"))), Ok(u64::MAX));
        assert_eq!(
            count(Some(&p("18446744073709551616"))),
            Err(BadCount::TooLarge)
        );
        assert_eq!(count(Some(&p("1e300"))), Err(BadCount::TooLarge));
        assert_eq!(count(Some(&p("-1"))), Err(BadCount::Negative));
        assert_eq!(count(Some(&p("-1e30"))), Err(BadCount::Negative));
        assert_eq!(count(Some(&p("6000.0"))), Err(BadCount::NotInteger));
        assert_eq!(count(Some(&p("0.5"))), Err(BadCount::NotInteger));
        assert_eq!(
            count(Some(&p("\"6000\""))),
            Err(BadCount::NotANumber("a string"))
        );
        assert_eq!(count(Some(&p("null"))), Err(BadCount::NotANumber("null")));
        assert_eq!(count(None), Err(BadCount::Missing));
        assert_eq!(limit(Some(&p("4294967295"))), Ok(4_294_967_295));
        assert_eq!(limit(Some(&p("4294967296"))), Err(BadCount::TooLarge));
        assert_eq!(
            BadCount::NotANumber("a string").to_string(),
            "a string, not a number"
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes()).is_err());
    }
}
