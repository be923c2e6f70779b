use http::header::HeaderName;
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use proptest::prelude::*;

use super::*;

const RECORDS: HeaderName = HeaderName::from_static("x-records");

fn headers(values: &[&[u8]]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in values {
        if let Ok(v) = HeaderValue::from_bytes(v) {
            h.append(RECORDS, v);
        }
    }
    h
}

fn credits(rule: &CreditRule, method: Method, path: &str, status: u16, h: &HeaderMap) -> u64 {
    rule.credits(&Exchange {
        method: &method,
        path,
        status: StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
        headers: h,
    })
}

#[test]
fn per_record_charges_the_reported_count_of_successes_only() {
    let rule = CreditRule::per_record(RECORDS);
    let post = || Method::POST;
    assert_eq!(credits(&rule, post(), "/x", 200, &headers(&[b"7"])), 7);
    assert_eq!(credits(&rule, post(), "/x", 201, &headers(&[b" 3 "])), 3);
    assert_eq!(credits(&rule, post(), "/x", 200, &headers(&[])), 0);
    assert_eq!(credits(&rule, post(), "/x", 429, &headers(&[b"7"])), 0);
    assert_eq!(credits(&rule, post(), "/x", 500, &headers(&[b"7"])), 0);
    assert!(rule.may_consume(&Method::GET, "/anything"));
}

#[test]
fn per_page_charges_one_for_a_page_with_results() {
    let rule = CreditRule::per_page_with_results(RECORDS);
    assert_eq!(
        credits(&rule, Method::POST, "/s", 200, &headers(&[b"25"])),
        1
    );
    assert_eq!(
        credits(&rule, Method::POST, "/s", 200, &headers(&[b"0"])),
        0
    );
    assert_eq!(credits(&rule, Method::POST, "/s", 200, &headers(&[])), 0);
    assert_eq!(
        credits(&rule, Method::POST, "/s", 404, &headers(&[b"3"])),
        0
    );
}

#[test]
fn never_charges_and_never_waits() {
    let rule = CreditRule::never();
    assert!(!rule.may_consume(&Method::POST, "/api/v1/people/match"));
    assert_eq!(credits(&rule, Method::POST, "/", 200, &headers(&[b"9"])), 0);
}

#[test]
fn malformed_counts_are_zero() {
    let rule = CreditRule::per_record(RECORDS);
    for bad in [
        &b"-1"[..],
        b"7a",
        b"1e3",
        b"0x10",
        b"",
        b"  ",
        b"3.5",
        b"99999999999999999999999",
        b"\xff\xfe",
        b"1,2",
    ] {
        assert_eq!(
            credits(&rule, Method::GET, "/", 200, &headers(&[bad])),
            0,
            "{bad:?}"
        );
    }
}

#[test]
fn several_values_count_the_largest_valid_one() {
    let h = headers(&[b"2", b"oops", b"5"]);
    assert_eq!(reported_count(&h, &RECORDS), 5);
}

#[test]
fn closures_see_the_request_and_the_response() {
    let rule = CreditRule::from_fn(|e: &Exchange<'_>| {
        if e.method == Method::GET && e.path.ends_with("/export") && e.status.is_success() {
            reported_count(e.headers, &RECORDS) * 2
        } else {
            0
        }
    })
    .only_for(|_, path| path.starts_with("/api/"));
    let h = headers(&[b"4"]);
    assert_eq!(credits(&rule, Method::GET, "/api/v1/x/export", 200, &h), 8);
    assert_eq!(credits(&rule, Method::POST, "/api/v1/x/export", 200, &h), 0);
    assert_eq!(credits(&rule, Method::GET, "/other/export", 200, &h), 0);
    assert!(rule.may_consume(&Method::GET, "/api/v1/x"));
    assert!(!rule.may_consume(&Method::GET, "/other"));
    assert!(format!("{rule:?}").contains("closure"));
}

#[test]
fn seed001_charges_by_endpoint() {
    let rule = CreditRule::seed001(RECORDS);
    let h = headers(&[b"7"]);
    assert_eq!(
        credits(&rule, Method::POST, "/api/v1/people/bulk_match", 200, &h),
        7
    );
    assert_eq!(
        credits(
            &rule,
            Method::POST,
            "/api/v1/mixed_companies/search",
            200,
            &h
        ),
        1
    );
    assert_eq!(credits(&rule, Method::POST, "/api/v1/contacts", 200, &h), 0);
    assert!(!rule.may_consume(&Method::POST, "/api/v1/contacts/search"));
    assert!(rule.may_consume(&Method::GET, "/api/v1/organizations/enrich"));
}

#[test]
fn consumes_converts_record_counts() {
    assert_eq!(Consumes::PerRecord.credits(12), 12);
    assert_eq!(Consumes::PerPage.credits(12), 1);
    assert_eq!(Consumes::PerPage.credits(0), 0);
    assert_eq!(Consumes::Never.credits(12), 0);
}

proptest! {
    /// Any bytes a server may send: no panic, and a count only for a plain
    /// decimal number (surrounding blanks allowed).
    #[test]
    fn hostile_header_values_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let h = headers(&[&bytes]);
        let got = reported_count(&h, &RECORDS);
        let expected = std::str::from_utf8(&bytes)
            .ok()
            .map(str::trim)
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
            .filter(|_| HeaderValue::from_bytes(&bytes).is_ok())
            .filter(|n| *n <= DEFAULT_MAX_PER_RESPONSE)
            .unwrap_or(0);
        prop_assert_eq!(got, expected);
        let page = CreditRule::per_page_with_results(RECORDS);
        prop_assert!(credits(&page, Method::GET, "/", 200, &h) <= 1);
    }

    /// Plain numbers read back, up to the plausible maximum; above it, 0.
    #[test]
    fn numeric_strings_round_trip(n in any::<u64>(), pad in 0usize..3, max in any::<u64>()) {
        let text = format!("{}{n}{}", " ".repeat(pad), " ".repeat(pad));
        let h = headers(&[text.as_bytes()]);
        let plausible = if n <= DEFAULT_MAX_PER_RESPONSE { n } else { 0 };
        prop_assert_eq!(reported_count(&h, &RECORDS), plausible);
        let plausible = if n <= max { n } else { 0 };
        prop_assert_eq!(reported_count_up_to(&h, &RECORDS, max), plausible);
    }
}

#[test]
fn absurd_counts_are_zero() {
    let rule = CreditRule::per_record(RECORDS);
    let post = || Method::POST;
    // One response saying u64::MAX records would spend any budget for a period.
    let max = headers(&[b"18446744073709551615"]);
    assert_eq!(credits(&rule, post(), "/x", 200, &max), 0);
    assert_eq!(reported_count(&max, &RECORDS), 0);
    let just = headers(&[b"1000000"]);
    assert_eq!(credits(&rule, post(), "/x", 200, &just), 1_000_000);
    let over = headers(&[b"1000001"]);
    assert_eq!(credits(&rule, post(), "/x", 200, &over), 0);
    // An absurd value beside plausible ones: the largest plausible counts.
    assert_eq!(
        reported_count(&headers(&[b"3", b"99999999", b"2"]), &RECORDS),
        3
    );

    // The maximum is the rule's to set, for every kind of rule.
    let rule = CreditRule::per_record(RECORDS).max_per_response(100);
    assert_eq!(credits(&rule, post(), "/x", 200, &headers(&[b"100"])), 100);
    assert_eq!(credits(&rule, post(), "/x", 200, &headers(&[b"101"])), 0);
    let page = CreditRule::per_page_with_results(RECORDS).max_per_response(100);
    assert_eq!(credits(&page, post(), "/x", 200, &headers(&[b"101"])), 0);
    let seed001 = CreditRule::seed001(RECORDS).max_per_response(10);
    let enrich = "/api/v1/people/bulk_match";
    assert_eq!(
        credits(&seed001, post(), enrich, 200, &headers(&[b"11"])),
        0
    );
    let closure = CreditRule::from_fn(|e: &Exchange<'_>| reported_count(e.headers, &RECORDS) * 2)
        .max_per_response(10);
    assert_eq!(credits(&closure, post(), "/x", 200, &headers(&[b"5"])), 10);
    assert_eq!(credits(&closure, post(), "/x", 200, &headers(&[b"6"])), 0);
    assert!(format!("{closure:?}").contains("max_per_response: 10"));
}
