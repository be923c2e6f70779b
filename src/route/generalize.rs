//! A stable name for a route nobody declared.
//!
//! Seed 004 gives every undeclared route 60 requests a minute, *per route*:
//! `GET /v1/leads/1` and `GET /v1/leads/2` are one route on the server,
//! `GET /v1/leads/:id`. A client that named the bucket after the literal path
//! would believe it had 60 requests per lead. The router cannot know the
//! server's templates, so it guesses which segments are ids, and guesses on the
//! side of merging: a shared bucket is stricter than the server, never looser.
//!
//! A segment is taken for an id, and written `:id`, when it is
//!
//! - all ASCII digits (`42`),
//! - a UUID (`8-4-4-4-12` hex digits, either case),
//! - 16 or more hex digits (object ids, hashes), or
//! - 20 or more ASCII letters and digits with at least one of each (ULIDs,
//!   random tokens).
//!
//! Words (`me`, `statistics`, `by-user`, `v1`) stay as they are. Ids the rules
//! miss (`org-1`, slugs) give each id its own bucket at the default limit:
//! declare a template for such a route.

use std::borrow::Cow;

use super::normalize::{normalize_path, segments};

/// The canonical path (see [`normalize_path`]) with every segment that looks
/// like an id replaced by `:id`; borrowed when nothing changes.
///
/// ```
/// use tower_quota::route::generalize_path;
///
/// assert_eq!(generalize_path("/v1/leads/123/notes/"), "/v1/leads/:id/notes");
/// assert_eq!(
///     generalize_path("/v1/leads/6f1c2a4e-8b0d-4c1e-9a7f-3b2d1c0e9f8a"),
///     "/v1/leads/:id"
/// );
/// assert_eq!(generalize_path("/v1/teams/me"), "/v1/teams/me");
/// ```
pub fn generalize_path(path: &str) -> Cow<'_, str> {
    let canonical = normalize_path(path);
    if !segments(&canonical).any(is_id) {
        return canonical;
    }
    let mut out = String::with_capacity(canonical.len());
    for segment in segments(&canonical) {
        out.push('/');
        out.push_str(if is_id(segment) { ":id" } else { segment });
    }
    Cow::Owned(out)
}

/// Whether a canonical segment looks like an identifier.
pub(super) fn is_id(segment: &str) -> bool {
    let b = segment.as_bytes();
    if b.is_empty() {
        return false;
    }
    let digits = b.iter().filter(|c| c.is_ascii_digit()).count();
    if digits == b.len() {
        return true;
    }
    if is_uuid(b) {
        return true;
    }
    if b.len() >= 16 && b.iter().all(u8::is_ascii_hexdigit) {
        return true;
    }
    b.len() >= 20 && digits > 0 && b.iter().all(u8::is_ascii_alphanumeric)
}

fn is_uuid(b: &[u8]) -> bool {
    b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_words() {
        for id in [
            "0",
            "42",
            "6F1C2A4E-8B0D-4C1E-9A7F-3B2D1C0E9F8A",
            "507f1f77bcf86cd799439011",
            "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        ] {
            assert!(is_id(id), "{id}");
        }
        for word in [
            "",
            "v1",
            "me",
            "by-user",
            "statistics",
            "add_to_campaign",
            "ask_anything_v2_chat",
            "org-1",
            "cafe",
        ] {
            assert!(!is_id(word), "{word}");
        }
    }

    #[test]
    fn unchanged_paths_are_borrowed() {
        assert!(matches!(generalize_path("/v1/users"), Cow::Borrowed(_)));
        assert_eq!(generalize_path("/1/2?x"), "/:id/:id");
        assert_eq!(generalize_path("/"), "/");
    }
}
