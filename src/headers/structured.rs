//! A tiny, tolerant reader for RFC 8941 structured-field lists and dictionaries,
//! enough for the IETF `RateLimit` and `RateLimit-Policy` fields.
//!
//! It reads members of the form `item;key=value;flag` and `key=item;params`,
//! where an item is a number, a quoted string, a token, a boolean, a byte
//! sequence or an inner list (the last three are skipped). A malformed member is
//! dropped and reading resumes after the next top-level comma, so one bad policy
//! does not hide the others. Output is bounded: at most [`MAX_MEMBERS`] members,
//! [`MAX_PARAMS`] parameters each, strings of at most [`MAX_STRING`] bytes.

/// Members read from one field, at most.
pub(crate) const MAX_MEMBERS: usize = 16;
/// Parameters kept per member, at most (later ones are read and dropped).
pub(crate) const MAX_PARAMS: usize = 8;
/// Longest string kept; longer strings are read as [`Bare::Other`].
pub(crate) const MAX_STRING: usize = 64;

/// One item's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Bare<'a> {
    /// An integer or decimal, as written (sign included).
    Number(&'a str),
    /// A quoted string, unescaped.
    String(String),
    /// A token.
    Token(&'a str),
    /// A boolean.
    Boolean(bool),
    /// Anything else (byte sequences, inner lists, dates, long strings).
    Other,
}

impl Bare<'_> {
    /// The text of a string or token.
    pub(crate) fn name(&self) -> Option<&str> {
        match self {
            Bare::String(s) => Some(s),
            Bare::Token(t) => Some(t),
            _ => None,
        }
    }

    /// The text of a number.
    pub(crate) fn number(&self) -> Option<&str> {
        match self {
            Bare::Number(n) => Some(n),
            _ => None,
        }
    }
}

/// One list or dictionary member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Member<'a> {
    /// The dictionary key, for `key=value` members.
    pub(crate) key: Option<&'a str>,
    /// The item.
    pub(crate) value: Bare<'a>,
    /// The parameters, in order.
    pub(crate) params: Vec<(&'a str, Bare<'a>)>,
}

impl<'a> Member<'a> {
    /// The value of parameter `key` (the first, compared case-insensitively).
    pub(crate) fn param(&self, key: &str) -> Option<&Bare<'a>> {
        self.params
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
}

/// Reads a list or dictionary; malformed members are skipped.
pub(crate) fn parse(input: &str) -> Vec<Member<'_>> {
    let mut cursor = Cursor { s: input, at: 0 };
    let mut members = Vec::new();
    loop {
        cursor.skip_ows();
        if cursor.peek().is_none() {
            break;
        }
        match cursor.member() {
            Some(m) if matches!(cursor.ows_then_peek(), None | Some(b',')) => {
                if members.len() < MAX_MEMBERS {
                    members.push(m);
                }
            }
            _ => cursor.skip_to_comma(),
        }
        if !cursor.eat(b',') {
            break;
        }
    }
    members
}

struct Cursor<'a> {
    s: &'a str,
    at: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.as_bytes().get(self.at).copied()
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.peek() == Some(b);
        if hit {
            self.at += 1;
        }
        hit
    }

    fn skip_ows(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.at += 1;
        }
    }

    fn ows_then_peek(&mut self) -> Option<u8> {
        self.skip_ows();
        self.peek()
    }

    /// The run of bytes from here that satisfy `ok`.
    fn take_while(&mut self, ok: impl Fn(u8) -> bool) -> &'a str {
        let start = self.at;
        while self.peek().is_some_and(&ok) {
            self.at += 1;
        }
        // Only ASCII bytes are accepted by every caller, so this is a char boundary.
        self.s.get(start..self.at).unwrap_or("")
    }

    /// Skips to the next comma outside a quoted string (or the end).
    fn skip_to_comma(&mut self) {
        let mut quoted = false;
        while let Some(b) = self.peek() {
            match b {
                b'\\' if quoted => self.at += 1,
                b'"' => quoted = !quoted,
                b',' if !quoted => return,
                _ => {}
            }
            self.at += 1;
        }
    }

    fn member(&mut self) -> Option<Member<'a>> {
        let mut value = self.item()?;
        let mut key = None;
        if let Bare::Token(t) = value {
            if self.eat(b'=') {
                key = Some(t);
                value = self.item()?;
            }
        }
        let mut params = Vec::new();
        while self.eat(b';') {
            self.skip_ows();
            let k = self.take_while(is_key_char);
            if k.is_empty() {
                return None;
            }
            let v = if self.eat(b'=') {
                self.bare()?
            } else {
                Bare::Boolean(true)
            };
            if params.len() < MAX_PARAMS {
                params.push((k, v));
            }
        }
        Some(Member { key, value, params })
    }

    /// A bare item or an inner list (read as [`Bare::Other`]).
    fn item(&mut self) -> Option<Bare<'a>> {
        if !self.eat(b'(') {
            return self.bare();
        }
        loop {
            self.skip_ows();
            if self.eat(b')') {
                return Some(Bare::Other);
            }
            self.bare()?;
            while self.eat(b';') {
                self.take_while(is_key_char);
                if self.eat(b'=') {
                    self.bare()?;
                }
            }
            if !matches!(self.peek(), Some(b' ' | b')')) {
                return None;
            }
        }
    }

    fn bare(&mut self) -> Option<Bare<'a>> {
        match self.peek()? {
            b'-' | b'0'..=b'9' => {
                let n = self.take_while(|b| b == b'-' || b == b'.' || b.is_ascii_digit());
                Some(Bare::Number(n))
            }
            b'"' => {
                self.at += 1;
                self.string()
            }
            b'*' | b'A'..=b'Z' | b'a'..=b'z' => Some(Bare::Token(self.take_while(is_token_char))),
            b'?' => {
                self.at += 1;
                let b = match self.peek()? {
                    b'0' => false,
                    b'1' => true,
                    _ => return None,
                };
                self.at += 1;
                Some(Bare::Boolean(b))
            }
            b':' => {
                self.at += 1;
                self.take_while(|b| b != b':');
                self.eat(b':').then_some(Bare::Other)
            }
            b'@' => {
                self.at += 1;
                self.take_while(|b| b == b'-' || b.is_ascii_digit());
                Some(Bare::Other)
            }
            _ => None,
        }
    }

    /// The rest of a quoted string (the opening quote already read).
    fn string(&mut self) -> Option<Bare<'a>> {
        let mut out = String::new();
        let mut long = false;
        loop {
            let b = self.peek()?;
            self.at += 1;
            let c = match b {
                b'"' => break,
                b'\\' => {
                    let e = self.peek().filter(|e| matches!(e, b'"' | b'\\'))?;
                    self.at += 1;
                    e
                }
                0x20..=0x7e => b,
                _ => return None,
            };
            if out.len() < MAX_STRING {
                out.push(char::from(c));
            } else {
                long = true;
            }
        }
        Some(if long { Bare::Other } else { Bare::String(out) })
    }
}

fn is_key_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'*')
}

fn is_token_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_named_policies() {
        let m = parse(r#""burst";q=100;w=60, "daily";q=1000;w=86400"#);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].value, Bare::String("burst".into()));
        assert_eq!(m[0].param("q"), Some(&Bare::Number("100")));
        assert_eq!(m[1].param("W"), Some(&Bare::Number("86400")));
    }

    #[test]
    fn dictionaries_flags_and_skipped_items() {
        let m = parse(r#"limit=100, remaining=50;x, reset=(1 2);a=1, k=:AAE=:, ?1"#);
        assert_eq!(m[0].key, Some("limit"));
        assert_eq!(m[0].value, Bare::Number("100"));
        assert_eq!(m[1].param("x"), Some(&Bare::Boolean(true)));
        assert_eq!(m[2].value, Bare::Other);
        assert_eq!(m[3].value, Bare::Other);
        assert_eq!(m[4].value, Bare::Boolean(true));
    }

    #[test]
    fn a_bad_member_does_not_hide_the_next() {
        let m = parse(r#""a,b" junk;q=1, "ok";q=2, "esc\"aped";q=3, "unterminated"#);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].value, Bare::String("ok".into()));
        assert_eq!(m[1].value, Bare::String("esc\"aped".into()));
    }

    #[test]
    fn output_is_bounded() {
        let many = vec!["1"; 100].join(",");
        assert_eq!(parse(&many).len(), MAX_MEMBERS);
        let long = format!("\"{}\";q=1", "x".repeat(1000));
        assert_eq!(parse(&long)[0].value, Bare::Other);
        let params = format!("1{}", ";a=1".repeat(100));
        assert_eq!(parse(&params)[0].params.len(), MAX_PARAMS);
        assert!(parse("").is_empty());
        assert!(parse(",,,").is_empty());
    }
}
