//! One canonical form per path, so that spelling never splits a route in two.
//!
//! Two requests a server routes the same way must land in the same bucket,
//! otherwise the client believes it has twice the allowance. The rules are on
//! [`normalize_path`].

use std::borrow::Cow;

/// The canonical form of a request path.
///
/// Servers ignore the query string, usually the trailing slash and empty
/// segments, and RFC 3986 (section 6.2.2) makes `%61` and `a` the same
/// character. The canonical form therefore:
///
/// - drops a query string (`?...`) and a fragment (`#...`), and the scheme and
///   authority of an absolute-form target (`http://host/x` becomes `/x`);
/// - starts with `/`, has no empty segment (`//`) and no trailing slash (the
///   root stays `/`);
/// - decodes percent-escapes of *unreserved* characters (letters, digits,
///   `-._~`), writes the other escapes with upper-case hex digits (`%2f`
///   becomes `%2F`, never `/`: decoding a slash would change the segments), and
///   writes a `%` that starts no valid escape as `%25`.
///
/// Dot segments (`.`, `..`) are kept as they are: URL parsers (the `url`
/// crate behind reqwest) remove them before a request is built, and a server
/// that sees one routes it literally.
///
/// The canonical form is its own canonical form, and a path that is already
/// canonical is borrowed, not copied: the common case costs no allocation.
///
/// ```
/// use tower_quota::route::normalize_path;
///
/// assert_eq!(normalize_path("/v1/campaigns/42"), "/v1/campaigns/42");
/// assert_eq!(normalize_path("/v1//campaigns/42/?page=2#top"), "/v1/campaigns/42");
/// assert_eq!(normalize_path("/v1/%63ampaigns/a%2fb"), "/v1/campaigns/a%2Fb");
/// assert_eq!(normalize_path("https://api.example.com/v1/users?x"), "/v1/users");
/// assert_eq!(normalize_path(""), "/");
/// assert_eq!(normalize_path("100%"), "/100%25");
/// ```
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    let path = strip_target(path);
    if is_canonical(path) {
        return Cow::Borrowed(path);
    }
    if path.split('/').all(str::is_empty) {
        return Cow::Borrowed("/");
    }
    let mut out = String::with_capacity(path.len() + 1);
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push('/');
        push_segment(&mut out, segment);
    }
    Cow::Owned(out)
}

/// The segments of a canonical path (none for `/`).
pub(super) fn segments(canonical: &str) -> impl Iterator<Item = &str> + Clone {
    canonical.split('/').filter(|s| !s.is_empty())
}

/// The path of a request target: no scheme and authority, no query, no fragment.
fn strip_target(target: &str) -> &str {
    let target = match target.find(['?', '#']) {
        Some(end) => target.get(..end).unwrap_or(""),
        None => target,
    };
    if target.starts_with('/') {
        return target;
    }
    match target.find("://") {
        Some(scheme_end) if is_scheme(target.get(..scheme_end).unwrap_or("")) => {
            let rest = target.get(scheme_end + 3..).unwrap_or("");
            rest.find('/').and_then(|i| rest.get(i..)).unwrap_or("")
        }
        _ => target,
    }
}

fn is_scheme(s: &str) -> bool {
    let mut bytes = s.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
}

fn is_canonical(path: &str) -> bool {
    if path == "/" {
        return true;
    }
    match path.strip_prefix('/') {
        Some(rest) => rest
            .split('/')
            .all(|s| !s.is_empty() && segment_is_canonical(s.as_bytes())),
        None => false,
    }
}

fn segment_is_canonical(segment: &[u8]) -> bool {
    let mut i = 0;
    while let Some(&b) = segment.get(i) {
        if b == b'%' {
            let escaped = match (upper_hex(segment.get(i + 1)), upper_hex(segment.get(i + 2))) {
                (Some(h), Some(l)) => h * 16 + l,
                _ => return false,
            };
            if is_unreserved(escaped) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// Appends the canonical form of one (non-empty) segment.
fn push_segment(out: &mut String, segment: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let bytes = segment.as_bytes();
    let (mut start, mut i) = (0, 0);
    while let Some(&b) = bytes.get(i) {
        if b != b'%' {
            i += 1;
            continue;
        }
        out.push_str(segment.get(start..i).unwrap_or(""));
        match (any_hex(bytes.get(i + 1)), any_hex(bytes.get(i + 2))) {
            (Some(h), Some(l)) => {
                let value = h * 16 + l;
                if is_unreserved(value) {
                    out.push(char::from(value));
                } else {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(h)]));
                    out.push(char::from(HEX[usize::from(l)]));
                }
                i += 3;
            }
            _ => {
                out.push_str("%25");
                i += 1;
            }
        }
        start = i;
    }
    out.push_str(segment.get(start..).unwrap_or(""));
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn any_hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

fn upper_hex(b: Option<&u8>) -> Option<u8> {
    b.filter(|b| !b.is_ascii_lowercase())
        .and_then(|b| any_hex(Some(b)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/v1/campaigns/42", "/a%2Fb", "/caf\u{e9}"] {
            assert!(
                matches!(normalize_path(p), Cow::Borrowed(q) if q == p),
                "{p}"
            );
        }
        assert!(matches!(normalize_path("/x?y=1"), Cow::Borrowed("/x")));
    }

    #[test]
    fn spelling_variants_meet() {
        let cases = [
            ("/v1/users/", "/v1/users"),
            ("v1/users", "/v1/users"),
            ("//v1///users//", "/v1/users"),
            ("/v1/%75sers", "/v1/users"),
            ("/a%2fb%3a", "/a%2Fb%3A"),
            ("/%", "/%25"),
            ("/%zz%4", "/%25zz%254"),
            ("/%%341", "/%2541"),
            ("?only=query", "/"),
            ("#frag", "/"),
            ("http://h", "/"),
            ("HTTPS://h:8080//x/", "/x"),
            ("not a url://x", "/not a url:/x"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_path(input), want, "{input}");
            assert_eq!(normalize_path(want), want, "{want} is canonical");
        }
    }

    #[test]
    fn segments_of_canonical_paths() {
        assert_eq!(segments("/a/b").collect::<Vec<_>>(), ["a", "b"]);
        assert_eq!(segments("/").count(), 0);
    }
}
