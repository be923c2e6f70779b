//! Properties of every router on generated input:
//! (a) no path or method, however malformed, makes a router panic, and keys
//!     are stable under the canonical form;
//! (b) a query string, a trailing slash, doubled slashes, percent-encoded
//!     letters and the case of the method never change a key;
//! (c) known ids are dense: exactly `0..len`, each with a distinct label that
//!     `find` maps back to it, and nothing else is labelled;
//! (d) usage-stats keys round-trip and their parser never panics.

use http::Method;
use proptest::prelude::*;
use tower_quota::route::{
    format_stats_key, generalize_path, normalize_path, parse_stats_key, FnRouter, MethodResource,
    Rails, RouteId, RouteKey, Router, Templates, SEED000_KEYS,
};

fn routers() -> Vec<Box<dyn Router>> {
    let closure = FnRouter::new(|m: &Method, p: &str| {
        let p = normalize_path(p);
        (p != "/").then(|| format!("{m} {p}"))
    })
    .declare("GET /a");
    vec![
        Box::new(Templates::seed004()),
        Box::new(Rails::seed000()),
        Box::new(MethodResource::seed002()),
        Box::new(closure),
    ]
}

/// Any method token, in any case.
fn methods() -> impl Strategy<Value = Method> {
    "[A-Za-z!#$%&'*+.^_`|~0-9-]{1,10}"
        .prop_filter_map("a token", |m| Method::from_bytes(m.as_bytes()).ok())
}

/// Segments from every seed's vocabulary, plus ids.
fn segment() -> impl Strategy<Value = String> {
    let mut words: Vec<String> = [
        "api",
        "v1",
        "campaigns",
        "statistics",
        "users",
        "teams",
        "me",
        "analytics",
        "daily",
        "leads",
        "people",
        "accounts",
        "rateLimit",
        "usage",
        "42",
        "7f",
        "x-1",
    ]
    .map(String::from)
    .to_vec();
    for (c, a) in SEED000_KEYS {
        words.push(c.rsplit('/').next().unwrap_or(c).to_owned());
        words.push(a.to_owned());
    }
    prop_oneof![prop::sample::select(words), "[a-z0-9_~.-]{1,8}"]
}

fn plain_path() -> impl Strategy<Value = String> {
    prop::collection::vec(segment(), 0..6).prop_map(|s| format!("/{}", s.join("/")))
}

fn key(router: &dyn Router, method: &Method, path: &str) -> Option<String> {
    match router.route(method, path)? {
        RouteKey::Known(id) => Some(format!("known {}", id.0)),
        RouteKey::Other(name) => Some(format!("other {name}")),
    }
}

/// The same path spelled differently: doubled slashes, a trailing slash, a
/// query, escaped letters.
fn respell(path: &str, query: &str, escape: bool) -> String {
    let mut out = String::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        out.push_str("//");
        for c in segment.chars() {
            if escape && c.is_ascii_alphabetic() {
                out.push_str(&format!("%{:02x}", c as u32));
            } else {
                out.push(c);
            }
        }
    }
    out.push('/');
    out.push('?');
    out.push_str(query);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_input_never_panics(method in methods(), path in any::<String>()) {
        let canonical = normalize_path(&path);
        prop_assert!(canonical.starts_with('/'));
        prop_assert_eq!(&normalize_path(&canonical), &canonical, "idempotent");
        prop_assert!(matches!(normalize_path(&canonical), std::borrow::Cow::Borrowed(_)));
        let general = generalize_path(&path);
        prop_assert_eq!(&generalize_path(&general), &general);
        for router in routers() {
            let raw = key(&*router, &method, &path);
            prop_assert_eq!(&raw, &key(&*router, &method, &canonical));
            if let Some(RouteKey::Known(id)) = router.route(&method, &path) {
                prop_assert!(id.index() < router.len());
            }
        }
    }

    #[test]
    fn spelling_and_method_case_never_change_keys(
        method in prop::sample::select(vec!["GET", "POST", "PUT", "PATCH", "DELETE"]),
        path in plain_path(),
        query in "[a-z0-9=&/?]{0,12}",
        escape in any::<bool>(),
    ) {
        let upper = Method::from_bytes(method.as_bytes()).expect("token");
        let lower = Method::from_bytes(method.to_ascii_lowercase().as_bytes()).expect("token");
        let other = respell(&path, &query, escape);
        for router in routers().into_iter().take(3) {
            let want = key(&*router, &upper, &path);
            prop_assert_eq!(&want, &key(&*router, &lower, &path), "{} {}", method, path);
            prop_assert_eq!(&want, &key(&*router, &upper, &other), "{} {}", method, other);
        }
    }

    #[test]
    fn stats_keys_round_trip_and_never_panic(
        controller in "\\PC{1,20}",
        action in any::<String>(),
        junk in any::<String>(),
    ) {
        let _ = parse_stats_key(&junk);
        let key = format_stats_key(&controller, &action);
        match parse_stats_key(&key) {
            Ok(pair) => prop_assert_eq!(pair, (controller, action)),
            Err(e) => prop_assert!(action.is_empty(), "{}", e),
        }
    }
}

#[test]
fn known_ids_are_dense() {
    for router in routers() {
        let n = router.len();
        assert!(n > 0);
        let mut labels: Vec<&str> = Vec::new();
        for i in 0..n {
            let id = RouteId(u32::try_from(i).expect("small"));
            let label = router.label(id);
            assert!(!label.is_empty(), "id {i} has a label");
            assert!(!labels.contains(&label), "{label} twice");
            assert_eq!(router.find(label), Some(id), "{label}");
            labels.push(label);
        }
        assert_eq!(router.label(RouteId(u32::try_from(n).expect("small"))), "");
    }
    assert_eq!(Templates::seed004().len(), 10);
    assert_eq!(Rails::seed000().len(), 50);
    assert_eq!(MethodResource::seed002().len(), 1);
}
