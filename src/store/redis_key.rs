//! Redis key names: a prefix, the scope, and a salted hash of the bucket's
//! name, never a key in clear (DESIGN.md, contract 7).

use sha2::{Digest, Sha256};

/// The id every process gives the bucket named `raw` in `scope`: 24 hex digits
/// of SHA-256 over the prefix (as salt), the scope and the name.
pub(crate) fn bucket_id(prefix: &str, scope: &str, raw: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(prefix.as_bytes());
    h.update([0]);
    h.update(scope.as_bytes());
    h.update([0]);
    h.update(raw);
    let digest = h.finalize();
    let mut out = String::with_capacity(24);
    for byte in digest.iter().take(12) {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0xf)]));
    }
    out
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The meta key of a bucket (block, limit overrides).
pub(crate) fn meta(prefix: &str, scope: &str, id: &str) -> String {
    format!("{prefix}:{scope}:{id}:m")
}

/// The sorted set of window `i` of a bucket.
pub(crate) fn window(prefix: &str, scope: &str, id: &str, i: usize) -> String {
    format!("{prefix}:{scope}:{id}:{i}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_salted_and_never_the_key() {
        let a = bucket_id("tq", "api_key", b"sk_live_secret");
        assert_eq!(a, bucket_id("tq", "api_key", b"sk_live_secret"));
        assert_eq!(a.len(), 24);
        assert!(!a.contains("secret"));
        assert_ne!(a, bucket_id("other", "api_key", b"sk_live_secret"));
        assert_ne!(a, bucket_id("tq", "account", b"sk_live_secret"));
        assert!(meta("tq", "api_key", &a).starts_with("tq:api_key:"));
        assert!(window("tq", "api_key", &a, 2).ends_with(":2"));
    }
}
