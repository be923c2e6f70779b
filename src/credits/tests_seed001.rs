use std::collections::HashSet;

use http::Method;

use super::*;
use crate::route::{Rails, RouteKey, Router};

/// The document's endpoint names that spend credits, in its order.
const CONSUMING: [&str; 11] = [
    "People enrichment",
    "Bulk people enrichment",
    "Organization enrichment",
    "Bulk organization enrichment",
    "Organization search",
    "Organization job postings",
    "Get complete organization info",
    "News articles search",
    "Get conversations info",
    "Export conversations",
    "Get complete person info",
];

/// A request path for a template: every `:param` becomes an id.
fn concrete(template: &str) -> String {
    template
        .split('/')
        .map(|s| if s.starts_with(':') { "5" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).unwrap_or(Method::GET)
}

#[test]
fn every_named_endpoint_is_present_once_in_order() {
    let names: Vec<_> = SEED001_ENDPOINTS.iter().map(|e| e.name).collect();
    assert_eq!(names.len(), 64, "11 in the table, 53 in the list");
    assert_eq!(names[..11], CONSUMING);
    assert_eq!(names[11], "People API search");
    assert_eq!(names[63], "Get a list of notes");
    let unique: HashSet<_> = names.iter().collect();
    assert_eq!(unique.len(), names.len());
}

#[test]
fn the_table_spends_and_the_list_never_does() {
    for (i, e) in SEED001_ENDPOINTS.iter().enumerate() {
        if i < 11 {
            assert_ne!(e.consumes, Consumes::Never, "{}", e.name);
        } else {
            assert_eq!(e.consumes, Consumes::Never, "{}", e.name);
        }
    }
    let per_page: Vec<_> = SEED001_ENDPOINTS
        .iter()
        .filter(|e| e.consumes == Consumes::PerPage)
        .map(|e| e.name)
        .collect();
    assert_eq!(
        per_page,
        [
            "Organization search",
            "Organization job postings",
            "News articles search"
        ]
    );
}

#[test]
fn every_route_finds_its_own_endpoint() {
    for e in &SEED001_ENDPOINTS {
        if let Some((m, template)) = e.route {
            let found = seed001_endpoint(&method(m), &concrete(template));
            assert_eq!(found.map(|f| f.name), Some(e.name), "{m} {template}");
        }
    }
}

#[test]
fn routes_are_seed000_rails_routes() {
    // Each route reaches a `controller#action` of seed 000's table, or a
    // standard action of one of its controllers (marked "convention").
    let rails = Rails::seed000();
    let conventions = ["#create", "#show", "#update"];
    for e in &SEED001_ENDPOINTS {
        let Some((m, template)) = e.route else {
            continue;
        };
        if template == "/api/v1/usage_stats/api_usage_stats" {
            assert_eq!(rails.route(&method(m), template), None, "exempt");
            continue;
        }
        match rails.route(&method(m), &concrete(template)) {
            Some(RouteKey::Known(_)) => {}
            Some(RouteKey::Other(label)) => assert!(
                conventions.iter().any(|c| label.ends_with(c)),
                "{}: {label}",
                e.name
            ),
            None => panic!("{} is not a seed-000 route", e.name),
        }
    }
}

#[test]
fn requests_map_to_the_documented_rules() {
    let cases = [
        (Method::POST, "/api/v1/people/match", Consumes::PerRecord),
        (
            Method::POST,
            "/api/v1/people/bulk_match?x=1",
            Consumes::PerRecord,
        ),
        (
            Method::GET,
            "/api/v1/organizations/enrich",
            Consumes::PerRecord,
        ),
        (
            Method::GET,
            "/api/v1/organizations/abc123",
            Consumes::PerRecord,
        ),
        (
            Method::GET,
            "/api/v1/organizations/9/job_postings/",
            Consumes::PerPage,
        ),
        (
            Method::POST,
            "/api/v1/mixed_companies/search",
            Consumes::PerPage,
        ),
        (
            Method::POST,
            "/api/v1/conversations/export",
            Consumes::PerRecord,
        ),
        (Method::GET, "/api/v1/people/77", Consumes::PerRecord),
        (Method::POST, "/api/v1/mixed_people/search", Consumes::Never),
        (Method::PATCH, "/api/v1/contacts/12", Consumes::Never),
        (Method::PUT, "/api/v1/contacts/12", Consumes::Never),
        (Method::POST, "/api/v1/contacts", Consumes::Never),
        (Method::GET, "/api/v1/contact_stages", Consumes::Never),
        (
            Method::POST,
            "/api/v1/emailer_campaigns/3/add_contact_ids",
            Consumes::Never,
        ),
        (
            Method::POST,
            "/api/v1/usage_stats/api_usage_stats",
            Consumes::Never,
        ),
        (Method::GET, "/api/v1/labels", Consumes::Never),
        // Unknown: the safe side.
        (
            Method::POST,
            "/api/v1/news_articles/search",
            Consumes::PerRecord,
        ),
        (Method::DELETE, "/api/v1/contacts/12", Consumes::PerRecord),
        (Method::GET, "/", Consumes::PerRecord),
    ];
    for (m, path, want) in cases {
        assert_eq!(seed001_rule_for(&m, path), want, "{m} {path}");
    }
}

#[test]
fn name_only_endpoints_say_why_in_the_source() {
    // Kept by name: two that spend credits, the rest free.
    let named: Vec<_> = SEED001_ENDPOINTS
        .iter()
        .filter(|e| e.route.is_none())
        .collect();
    assert!(named.iter().any(|e| e.name == "News articles search"));
    assert!(named.iter().any(|e| e.name == "Get conversations info"));
    assert_eq!(
        named
            .iter()
            .filter(|e| e.consumes != Consumes::Never)
            .count(),
        2
    );
}
