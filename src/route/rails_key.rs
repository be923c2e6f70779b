//! Seed 000's route keys as its usage-stats JSON writes them.
//!
//! The usage-stats response keys its objects by a JSON-encoded pair,
//! `["api/v1/contacts", "search"]`: after the outer JSON is decoded, each key
//! is itself a small JSON array text. That text comes from the network, so
//! the parser here accepts any valid JSON spelling of a two-string array
//! (whitespace, escapes) and refuses everything else with an error that says
//! where and why, without panicking. A hand-written parser keeps `serde_json`
//! out of the crate's default dependencies.

use std::fmt;

/// The usage-stats key of a Rails route: `["controller", "action"]`, with the
/// document's spacing (one space after the comma) and JSON string escaping.
///
/// ```
/// use tower_quota::route::format_stats_key;
///
/// assert_eq!(
///     format_stats_key("api/v1/contacts", "search"),
///     r#"["api/v1/contacts", "search"]"#
/// );
/// ```
pub fn format_stats_key(controller: &str, action: &str) -> String {
    let mut out = String::with_capacity(controller.len() + action.len() + 8);
    out.push('[');
    push_json_string(&mut out, controller);
    out.push_str(", ");
    push_json_string(&mut out, action);
    out.push(']');
    out
}

/// The `(controller, action)` of a usage-stats key such as
/// `["api/v1/contacts", "search"]`.
///
/// Also accepts the key still JSON-encoded as a string, the way it appears in
/// the raw response (`"[\"api/v1/contacts\", \"search\"]"`).
///
/// ```
/// use tower_quota::route::{parse_stats_key, StatsKeyError};
///
/// let (c, a) = parse_stats_key(r#"["api/v1/contacts", "search"]"#)?;
/// assert_eq!((c.as_str(), a.as_str()), ("api/v1/contacts", "search"));
/// let (c, _) = parse_stats_key(r#""[\"api\/v1\/people\",\"match\"]""#)?;
/// assert_eq!(c, "api/v1/people");
/// assert!(matches!(
///     parse_stats_key(r#"["api/v1/contacts"]"#),
///     Err(StatsKeyError::NotAPair { elements: 1 })
/// ));
/// # Ok::<(), StatsKeyError>(())
/// ```
pub fn parse_stats_key(key: &str) -> Result<(String, String), StatsKeyError> {
    let mut p = Parser { text: key, at: 0 };
    p.skip_whitespace();
    if p.peek() == Some('"') {
        let inner = p.string()?;
        p.end()?;
        return parse_stats_key_array(&inner);
    }
    parse_stats_key_array(key)
}

fn parse_stats_key_array(key: &str) -> Result<(String, String), StatsKeyError> {
    let mut p = Parser { text: key, at: 0 };
    p.skip_whitespace();
    p.expect('[', "`[`")?;
    let mut parts = Vec::with_capacity(2);
    p.skip_whitespace();
    if p.peek() == Some(']') {
        p.at += 1;
    } else {
        loop {
            p.skip_whitespace();
            parts.push(p.string()?);
            p.skip_whitespace();
            match p.peek() {
                Some(',') => p.at += 1,
                Some(']') => {
                    p.at += 1;
                    break;
                }
                _ => return Err(p.expected("`,` or `]`")),
            }
        }
    }
    p.end()?;
    let elements = parts.len();
    let mut parts = parts.into_iter();
    match (parts.next(), parts.next(), parts.next()) {
        (Some(c), Some(a), None) if !c.is_empty() && !a.is_empty() => Ok((c, a)),
        (Some(_), Some(_), None) => Err(StatsKeyError::EmptyName),
        _ => Err(StatsKeyError::NotAPair { elements }),
    }
}

/// Why a usage-stats key is not a `["controller", "action"]` pair.
/// Offsets are in bytes from the start of the (innermost) key text.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatsKeyError {
    /// Something else was found where `expected` should be.
    Expected {
        /// What the parser wanted, e.g. ``"`[`"`` or `"a string"`.
        expected: &'static str,
        /// Where.
        at: usize,
    },
    /// A string is not closed before the end of the key.
    Unterminated {
        /// Where the string starts.
        at: usize,
    },
    /// An invalid `\` escape (or a lone UTF-16 surrogate).
    BadEscape {
        /// Where the escape starts.
        at: usize,
    },
    /// A raw control character inside a string.
    ControlCharacter {
        /// Where.
        at: usize,
    },
    /// The array does not hold exactly two strings.
    NotAPair {
        /// How many it holds.
        elements: usize,
    },
    /// The controller or the action is the empty string.
    EmptyName,
}

impl fmt::Display for StatsKeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("usage-stats route key is not a [\"controller\", \"action\"] pair: ")?;
        match self {
            StatsKeyError::Expected { expected, at } => {
                write!(f, "expected {expected} at byte {at}")
            }
            StatsKeyError::Unterminated { at } => {
                write!(f, "the string at byte {at} is not closed")
            }
            StatsKeyError::BadEscape { at } => write!(f, "invalid escape at byte {at}"),
            StatsKeyError::ControlCharacter { at } => {
                write!(f, "raw control character at byte {at}")
            }
            StatsKeyError::NotAPair { elements } => {
                write!(f, "the array holds {elements} strings, not 2")
            }
            StatsKeyError::EmptyName => f.write_str("the controller or action is empty"),
        }
    }
}

impl std::error::Error for StatsKeyError {}

struct Parser<'a> {
    text: &'a str,
    at: usize,
}

impl Parser<'_> {
    fn rest(&self) -> &str {
        self.text.get(self.at..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn skip_whitespace(&mut self) {
        let rest = self.rest();
        let trimmed = rest.trim_start_matches([' ', '\t', '\n', '\r']);
        self.at += rest.len() - trimmed.len();
    }

    fn expected(&self, expected: &'static str) -> StatsKeyError {
        StatsKeyError::Expected {
            expected,
            at: self.at,
        }
    }

    fn expect(&mut self, c: char, name: &'static str) -> Result<(), StatsKeyError> {
        if self.peek() != Some(c) {
            return Err(self.expected(name));
        }
        self.at += c.len_utf8();
        Ok(())
    }

    fn end(&mut self) -> Result<(), StatsKeyError> {
        self.skip_whitespace();
        match self.peek() {
            None => Ok(()),
            Some(_) => Err(self.expected("the end of the key")),
        }
    }

    /// A JSON string, decoded.
    fn string(&mut self) -> Result<String, StatsKeyError> {
        let start = self.at;
        self.expect('"', "a string")?;
        let mut out = String::new();
        loop {
            let Some(c) = self.peek() else {
                return Err(StatsKeyError::Unterminated { at: start });
            };
            let here = self.at;
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => out.push(self.escape(here)?),
                c if u32::from(c) < 0x20 => {
                    return Err(StatsKeyError::ControlCharacter { at: here })
                }
                c => out.push(c),
            }
        }
    }

    /// The character of the escape at `start` (its `\` already consumed).
    fn escape(&mut self, start: usize) -> Result<char, StatsKeyError> {
        let bad = StatsKeyError::BadEscape { at: start };
        let c = self
            .peek()
            .ok_or(StatsKeyError::Unterminated { at: start })?;
        self.at += c.len_utf8();
        Ok(match c {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let high = self.hex4().ok_or(bad.clone())?;
                if !(0xD800..0xDC00).contains(&high) {
                    return char::from_u32(high).ok_or(bad);
                }
                if !self.rest().starts_with("\\u") {
                    return Err(bad);
                }
                self.at += 2;
                let low = self.hex4().filter(|l| (0xDC00..0xE000).contains(l));
                let low = low.ok_or(bad.clone())?;
                char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)).ok_or(bad)?
            }
            _ => return Err(bad),
        })
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.rest().get(..4)?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        let value = u32::from_str_radix(digits, 16).ok()?;
        self.at += 4;
        Some(value)
    }
}

fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_document_and_round_trips() {
        let key = format_stats_key("api/v1/contacts", "search");
        assert_eq!(key, "[\"api/v1/contacts\", \"search\"]");
        for (c, a) in [("a\"b\\c", "x\ny\u{1}"), ("caf\u{e9}", "\u{1f600}")] {
            let parsed = parse_stats_key(&format_stats_key(c, a)).expect("round trip");
            assert_eq!(parsed, (c.to_owned(), a.to_owned()));
        }
    }

    #[test]
    fn accepts_any_json_spelling() {
        let want = ("api/v1/people".to_owned(), "match".to_owned());
        for key in [
            r#"["api/v1/people","match"]"#,
            " [ \"api\\/v1\\/people\" ,\n\"ma\\u0074ch\" ] ",
            r#""[\"api/v1/people\", \"match\"]""#,
        ] {
            assert_eq!(parse_stats_key(key), Ok(want.clone()), "{key}");
        }
        let smile = parse_stats_key(r#"["\ud83d\ude00", "a"]"#).expect("pair");
        assert_eq!(smile.0, "\u{1f600}");
    }

    #[test]
    fn refuses_everything_else_with_a_reason() {
        use StatsKeyError::*;
        let cases: [(&str, StatsKeyError); 12] = [
            (
                "",
                Expected {
                    expected: "`[`",
                    at: 0,
                },
            ),
            (
                "api/v1/contacts#search",
                Expected {
                    expected: "`[`",
                    at: 0,
                },
            ),
            ("[]", NotAPair { elements: 0 }),
            (r#"["a","b","c"]"#, NotAPair { elements: 3 }),
            (
                r#"["a", 1]"#,
                Expected {
                    expected: "a string",
                    at: 6,
                },
            ),
            (
                r#"["a", "b""#,
                Expected {
                    expected: "`,` or `]`",
                    at: 9,
                },
            ),
            (
                r#"["a", "b"] x"#,
                Expected {
                    expected: "the end of the key",
                    at: 11,
                },
            ),
            (r#"["a", "b"#, Unterminated { at: 6 }),
            (r#"["a\q", "b"]"#, BadEscape { at: 3 }),
            (r#"["\ud83d", "b"]"#, BadEscape { at: 2 }),
            ("[\"a\u{1}\", \"b\"]", ControlCharacter { at: 3 }),
            (r#"["", "b"]"#, EmptyName),
        ];
        for (key, want) in cases {
            assert_eq!(parse_stats_key(key), Err(want), "{key}");
        }
        assert!(parse_stats_key(r#"["a\u12"#).is_err());
        assert!(NotAPair { elements: 1 }.to_string().contains("not 2"));
    }
}
