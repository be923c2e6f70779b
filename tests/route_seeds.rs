//! The routers against the testkit's servers, the crate's independent referee.
//!
//! For every seed-000 key, a request that reaches it (method and path) must be
//! named the same by [`Rails::seed000`] and by the CRM server, both through
//! `TestServer::route_of` and on the wire (the server echoes the route it
//! charged); the usage-stats body's keys must parse back to declared ids; the
//! seed-004 table must be the server's table, in the same order, with the same
//! limits; seed 002's overrides must be declared. Generated requests are in
//! `route_agreement.rs`.
#![cfg(feature = "testkit")]

use http::Method;
use tower_quota::clock::ManualClock;
use tower_quota::route::{
    parse_stats_key, MethodResource, Rails, RouteKey, Router, Templates, SEED000_KEYS,
    SEED004_TABLE,
};
use tower_quota::testkit::{Config, TestServer, DEFAULT_API_KEY, MASTER_API_KEY};

/// A request for every seed-000 key: method, path, and the key it reaches.
/// Collection actions are `POST|GET /controller/action`, member actions
/// `/controller/{id}/action`, resourceful actions `index`, `show`, `create`,
/// `update` by method.
const SEED000_REQUESTS: [(&str, &str, &str); 52] = [
    ("POST", "/api/v1/contacts/search", "api/v1/contacts#search"),
    (
        "POST",
        "/api/v1/contacts/intelligent_fuzzy_search",
        "api/v1/contacts#intelligent_fuzzy_search",
    ),
    ("POST", "/api/v1/contacts", "api/v1/contacts#create"),
    ("PUT", "/api/v1/contacts/66a1b2c3", "api/v1/contacts#update"),
    (
        "PATCH",
        "/api/v1/contacts/66a1b2c3",
        "api/v1/contacts#update",
    ),
    ("POST", "/api/v1/contacts/match", "api/v1/contacts#match"),
    (
        "POST",
        "/api/v1/contacts/bulk_match",
        "api/v1/contacts#bulk_match",
    ),
    (
        "GET",
        "/api/v1/contact_stages",
        "api/v1/contact_stages#index",
    ),
    ("POST", "/api/v1/accounts/search", "api/v1/accounts#search"),
    (
        "GET",
        "/api/v1/account_stages",
        "api/v1/account_stages#index",
    ),
    ("POST", "/api/v1/people/search", "api/v1/people#search"),
    ("POST", "/api/v1/people/match", "api/v1/people#match"),
    (
        "POST",
        "/api/v1/people/bulk_match",
        "api/v1/people#bulk_match",
    ),
    ("GET", "/api/v1/people/5f0c", "api/v1/people#show"),
    (
        "GET",
        "/api/v1/organizations/5f0c",
        "api/v1/organizations#show",
    ),
    (
        "GET",
        "/api/v1/organizations/5f0c/show_with_context",
        "api/v1/organizations#show_with_context",
    ),
    (
        "POST",
        "/api/v1/organizations/search",
        "api/v1/organizations#search",
    ),
    (
        "GET",
        "/api/v1/organizations/enrich",
        "api/v1/organizations#enrich",
    ),
    (
        "POST",
        "/api/v1/organizations/bulk_enrich",
        "api/v1/organizations#bulk_enrich",
    ),
    (
        "GET",
        "/api/v1/organizations/5f0c/job_postings",
        "api/v1/organizations#job_postings",
    ),
    (
        "GET",
        "/api/v1/organizations/employee_metrics",
        "api/v1/organizations#employee_metrics",
    ),
    (
        "POST",
        "/api/v1/mixed_companies/search",
        "api/v1/mixed_companies#search",
    ),
    (
        "POST",
        "/api/v1/mixed_people/add_to_my_prospects",
        "api/v1/mixed_people#add_to_my_prospects",
    ),
    (
        "POST",
        "/api/v1/mixed_people/search",
        "api/v1/mixed_people#search",
    ),
    (
        "GET",
        "/api/v1/mixed_people/organization_top_people",
        "api/v1/mixed_people#organization_top_people",
    ),
    (
        "POST",
        "/api/v1/conversation_shares",
        "api/v1/conversation_shares#create",
    ),
    (
        "PUT",
        "/api/v1/conversation_shares/cs-1",
        "api/v1/conversation_shares#update",
    ),
    (
        "GET",
        "/api/v1/conversation_shares/cs-1",
        "api/v1/conversation_shares#show",
    ),
    (
        "GET",
        "/api/v1/conversation_shares/cs-1/external",
        "api/v1/conversation_shares#external",
    ),
    (
        "POST",
        "/api/v1/conversations/ask_anything_v2_chat",
        "api/v1/conversations#ask_anything_v2_chat",
    ),
    (
        "GET",
        "/api/v1/conversations/export",
        "api/v1/conversations#export",
    ),
    (
        "GET",
        "/api/v1/voice_settings/get_available_phone_numbers",
        "api/v1/voice_settings#get_available_phone_numbers",
    ),
    ("POST", "/api/v1/tasks", "api/v1/tasks#create"),
    ("POST", "/api/v1/tasks/search", "api/v1/tasks#search"),
    (
        "POST",
        "/api/v1/tasks/bulk_complete",
        "api/v1/tasks#bulk_complete",
    ),
    (
        "POST",
        "/api/v1/reports/sync_report",
        "api/v1/reports#sync_report",
    ),
    ("POST", "/api/v1/mfa_config", "api/v1/mfa_config#create"),
    ("POST", "/api/v1/phone_calls", "api/v1/phone_calls#create"),
    (
        "PUT",
        "/api/v1/phone_calls/pc-9",
        "api/v1/phone_calls#update",
    ),
    (
        "POST",
        "/api/v1/paging_events",
        "api/v1/paging_events#create",
    ),
    (
        "GET",
        "/api/v1/crm/object_fields_mapping",
        "api/v1/crm#object_fields_mapping",
    ),
    (
        "GET",
        "/api/v1/emailer_campaigns/ec-1",
        "api/v1/emailer_campaigns#show",
    ),
    (
        "POST",
        "/api/v1/emailer_campaigns/search",
        "api/v1/emailer_campaigns#search",
    ),
    (
        "POST",
        "/api/v1/emailer_campaigns/ec-1/add_contact_ids",
        "api/v1/emailer_campaigns#add_contact_ids",
    ),
    (
        "POST",
        "/api/v1/emailer_campaigns/ec-1/remove_or_stop_contact_ids",
        "api/v1/emailer_campaigns#remove_or_stop_contact_ids",
    ),
    (
        "POST",
        "/api/v1/emailer_messages/search",
        "api/v1/emailer_messages#search",
    ),
    (
        "GET",
        "/api/v1/emailer_messages/em-1/activities",
        "api/v1/emailer_messages#activities",
    ),
    ("POST", "/api/v1/users/search", "api/v1/users#search"),
    (
        "GET",
        "/api/v1/email_accounts",
        "api/v1/email_accounts#index",
    ),
    ("GET", "/api/v1/labels", "api/v1/labels#index"),
    (
        "GET",
        "/api/v1/typed_custom_fields",
        "api/v1/typed_custom_fields#index",
    ),
    (
        "GET",
        "/api/v1/typed_custom_fields/",
        "api/v1/typed_custom_fields#index",
    ),
];

async fn server(config: Config) -> TestServer {
    TestServer::start(config.clock(ManualClock::new()))
        .await
        .expect("bind a loopback port")
}

fn method(m: &str) -> Method {
    Method::from_bytes(m.as_bytes()).expect("a method token")
}

/// The name a router gives a request (the label of a known route).
fn name_of(router: &dyn Router, m: &str, path: &str) -> Option<String> {
    Some(router.route(&method(m), path)?.name(router).to_owned())
}

/// The route the server says it charged, from its `{"route": ...}` body.
async fn charged(server: &TestServer, key: &str, m: &str, path: &str) -> String {
    let response = server
        .client()
        .send(method(m), path, &[("x-api-key", key)], Default::default())
        .await
        .expect("request");
    assert_eq!(response.status, 200, "{m} {path}: {}", response.text());
    let body: serde_json::Value = serde_json::from_str(&response.text()).expect("json body");
    body["route"].as_str().expect("a route").to_owned()
}

#[tokio::test]
async fn every_seed000_key_is_known_and_named_as_the_crm_server_names_it() {
    let server = server(Config::seed000()).await;
    let rails = Rails::seed000();
    for (controller, action) in SEED000_KEYS {
        let label = format!("{controller}#{action}");
        assert!(
            SEED000_REQUESTS.iter().any(|(_, _, k)| *k == label),
            "no request reaches {label}"
        );
    }
    for (m, path, want) in SEED000_REQUESTS {
        let key = rails.route(&method(m), path);
        let Some(RouteKey::Known(id)) = key else {
            panic!("{m} {path}: {key:?} is not a known route");
        };
        assert_eq!(rails.label(id), want, "{m} {path}");
        assert_eq!(
            server.route_of(m, path).as_deref(),
            Some(want),
            "{m} {path}"
        );
        assert_eq!(charged(&server, DEFAULT_API_KEY, m, path).await, want);
    }
    server.shutdown().await;
}

#[tokio::test]
async fn seed000_ids_follow_the_servers_table_and_its_usage_keys_parse_back() {
    let server = server(Config::seed000()).await;
    let rails = Rails::seed000();
    let table: Vec<&str> = server.config().scopes()[0]
        .routes
        .iter()
        .map(|(r, _)| r.as_str())
        .collect();
    let ours: Vec<&str> = (0..rails.len() as u32)
        .map(|i| rails.label(tower_quota::route::RouteId(i)))
        .collect();
    assert_eq!(
        ours, table,
        "ids are the server's (and the document's) order"
    );

    let response = server
        .client()
        .post(
            "/api/v1/usage_stats/api_usage_stats",
            &[("x-api-key", MASTER_API_KEY)],
            "",
        )
        .await
        .expect("usage stats");
    assert_eq!(response.status, 200);
    let body: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&response.text()).expect("json object");
    assert_eq!(body.len(), SEED000_KEYS.len());
    let mut seen = vec![false; rails.len()];
    for key in body.keys() {
        let (controller, action) = parse_stats_key(key).expect("a pair");
        let id = rails.find_key(&controller, &action).expect("declared");
        assert!(
            !std::mem::replace(&mut seen[id.index()], true),
            "{key} twice"
        );
        assert_eq!(
            rails.stats_key(id).as_deref(),
            Some(key.as_str()),
            "exact spacing"
        );
    }
    assert!(seen.iter().all(|s| *s), "every declared key is reported");
    // The usage endpoint itself is neither metered by the server nor by us.
    assert_eq!(
        name_of(&rails, "POST", "/api/v1/usage_stats/api_usage_stats"),
        None
    );
    server.shutdown().await;
}

#[tokio::test]
async fn the_seed004_table_is_the_campaign_servers_table() {
    let server = server(Config::seed004()).await;
    let templates = Templates::seed004();
    let routes = &server.config().scopes()[0].routes;
    assert_eq!(routes.len(), SEED004_TABLE.len());
    for (i, ((m, path, limit), (route, windows))) in SEED004_TABLE.iter().zip(routes).enumerate() {
        let label = format!("{m} {path}");
        assert_eq!(&label, route);
        assert_eq!(
            templates.label(tower_quota::route::RouteId(i as u32)),
            label
        );
        assert_eq!(
            windows.iter().map(|w| w.limit).collect::<Vec<_>>(),
            [u64::from(*limit)]
        );
        for id in ["42", "abc", "6f1c2a4e-8b0d-4c1e-9a7f-3b2d1c0e9f8a"] {
            let concrete = path.replace(":id", id);
            assert_eq!(
                name_of(&templates, m, &concrete).as_deref(),
                Some(label.as_str())
            );
            assert_eq!(
                server.route_of(m, &concrete).as_deref(),
                Some(label.as_str())
            );
            assert_eq!(charged(&server, DEFAULT_API_KEY, m, &concrete).await, label);
        }
    }
    server.shutdown().await;
}

#[tokio::test]
async fn seed002_routes_are_named_as_the_partner_server_names_them() {
    let server = server(Config::seed002()).await;
    let router = MethodResource::seed002();
    for (scope, (route, _)) in server
        .config()
        .scopes()
        .iter()
        .flat_map(|s| s.routes.iter().map(move |r| (s, r)))
    {
        assert!(
            router.find(route).is_some(),
            "{} override {route}",
            scope.name
        );
    }
    for (m, path, want) in [
        ("GET", "/people/123", "GET.people"),
        ("GET", "/people", "GET.people"),
        ("GET", "/people/123/emails", "GET.people"),
        ("POST", "/people", "POST.people"),
        ("DELETE", "/accounts/9", "DELETE.accounts"),
    ] {
        assert_eq!(name_of(&router, m, path).as_deref(), Some(want));
        assert_eq!(server.route_of(m, path).as_deref(), Some(want));
    }
    assert_eq!(server.route_of("GET", "/"), None);
    assert_eq!(name_of(&router, "GET", "/"), None);
    server.shutdown().await;
}
