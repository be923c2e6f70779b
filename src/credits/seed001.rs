//! Seed 001: which endpoints of the CRM spend credits, and how.
//!
//! The document lists eleven endpoints that may spend credits (per enriched
//! record, per page with results, per record found) and a long list that
//! never do (create, update, list, manage). It names endpoints, not routes, so
//! each name is matched here to a route of seed 000's Rails table (the same
//! vendor's `controller#action` keys, see [`SEED000_KEYS`](crate::route::SEED000_KEYS)):
//!
//! - a route whose `controller#action` is in seed 000's table is used as is;
//! - a standard Rails action (`create`, `show`, `update`) of a controller in
//!   that table is routed by Rails' conventions (`POST /api/v1/accounts`,
//!   `GET /api/v1/contacts/:id`), marked "convention" below;
//! - a name with no such route is kept by name only (`route: None`), with the
//!   reason in a comment. It matches no request.
//!
//! A request that matches no route is treated as [`Consumes::PerRecord`]: the
//! table is not complete (two credit-spending endpoints have no route), the
//! charge is still only what the server reports (0 when it reports no count),
//! and the worst case is that an unknown free endpoint waits for a spent budget
//! rather than an unknown paid one overspending it.

use http::Method;

use super::rule::Consumes;
use crate::route::normalize_path;

/// One endpoint named by seed 001.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seed001Endpoint {
    /// The name the document gives it.
    pub name: &'static str,
    /// `(METHOD, path template)`, `:name` segments matching any one segment;
    /// `None` when the document gives only a name and no route is known.
    pub route: Option<(&'static str, &'static str)>,
    /// How it spends credits.
    pub consumes: Consumes,
}

const fn at(
    name: &'static str,
    method: &'static str,
    template: &'static str,
    consumes: Consumes,
) -> Seed001Endpoint {
    Seed001Endpoint {
        name,
        route: Some((method, template)),
        consumes,
    }
}

const fn named(name: &'static str, consumes: Consumes) -> Seed001Endpoint {
    Seed001Endpoint {
        name,
        route: None,
        consumes,
    }
}

use Consumes::{Never, PerPage, PerRecord};

/// Every endpoint seed 001 names, in the document's order.
pub const SEED001_ENDPOINTS: [Seed001Endpoint; 64] = [
    // The table of endpoints that may spend credits.
    at(
        "People enrichment",
        "POST",
        "/api/v1/people/match",
        PerRecord,
    ),
    at(
        "Bulk people enrichment",
        "POST",
        "/api/v1/people/bulk_match",
        PerRecord,
    ),
    at(
        "Organization enrichment",
        "GET",
        "/api/v1/organizations/enrich",
        PerRecord,
    ),
    at(
        "Bulk organization enrichment",
        "POST",
        "/api/v1/organizations/bulk_enrich",
        PerRecord,
    ),
    at(
        "Organization search",
        "POST",
        "/api/v1/mixed_companies/search",
        PerPage,
    ),
    at(
        "Organization job postings",
        "GET",
        "/api/v1/organizations/:id/job_postings",
        PerPage,
    ),
    at(
        "Get complete organization info",
        "GET",
        "/api/v1/organizations/:id",
        PerRecord,
    ),
    // No news controller in seed 000's table.
    named("News articles search", PerPage),
    // No conversations#show in seed 000's table (conversation_shares#show is a
    // share, not the conversation): name only.
    named("Get conversations info", PerRecord),
    at(
        "Export conversations",
        "POST",
        "/api/v1/conversations/export",
        PerRecord,
    ),
    at(
        "Get complete person info",
        "GET",
        "/api/v1/people/:id",
        PerRecord,
    ),
    // The document gives this one no "uses credits" text: it opens the list
    // of endpoints that never spend credits.
    at(
        "People API search",
        "POST",
        "/api/v1/mixed_people/search",
        Never,
    ),
    at("Create an account", "POST", "/api/v1/accounts", Never), // convention
    at("Update an account", "PUT", "/api/v1/accounts/:id", Never), // convention
    // Bulk and owner actions: no such action in seed 000's table.
    named("Bulk create accounts", Never),
    named("Bulk update accounts", Never),
    at(
        "Search for accounts",
        "POST",
        "/api/v1/accounts/search",
        Never,
    ),
    at("View an account", "GET", "/api/v1/accounts/:id", Never), // convention
    named("Update account owner for multiple accounts", Never),
    at(
        "List account stages",
        "GET",
        "/api/v1/account_stages",
        Never,
    ),
    at("Create a contact", "POST", "/api/v1/contacts", Never),
    at("Update a contact", "PUT", "/api/v1/contacts/:id", Never),
    named("Bulk create contacts", Never),
    named("Bulk update contacts", Never),
    at(
        "Search for contacts",
        "POST",
        "/api/v1/contacts/search",
        Never,
    ),
    at("View a contact", "GET", "/api/v1/contacts/:id", Never), // convention
    named("Update contact stage for multiple contacts", Never),
    named("Update contact owner for multiple contacts", Never),
    at(
        "List contact stages",
        "GET",
        "/api/v1/contact_stages",
        Never,
    ),
    // No deals (opportunities) controller in seed 000's table.
    named("View associated deals", Never),
    // No conversations#search; conversations#export is taken by "Export
    // conversations", and Rails routes any method to it, so this one cannot
    // be told apart by route.
    named("Search conversations", Never),
    named("Get conversations export", Never),
    named("Create deal", Never),
    named("List all deals", Never),
    named("View deal", Never),
    named("Update deal", Never),
    named("List deal stages", Never),
    // Sequences are emailer campaigns ("Search for sequences" is
    // emailer_campaigns#search).
    at(
        "Create a sequence",
        "POST",
        "/api/v1/emailer_campaigns",
        Never,
    ), // convention
    at(
        "Update a sequence",
        "PUT",
        "/api/v1/emailer_campaigns/:id",
        Never,
    ), // convention
    at(
        "Search for sequences",
        "POST",
        "/api/v1/emailer_campaigns/search",
        Never,
    ),
    at(
        "Add contacts to a sequence",
        "POST",
        "/api/v1/emailer_campaigns/:id/add_contact_ids",
        Never,
    ),
    at(
        "Update contact status in a sequence",
        "POST",
        "/api/v1/emailer_campaigns/remove_or_stop_contact_ids",
        Never,
    ),
    // Activate, deactivate, archive: no such actions in seed 000's table.
    named("Activate a sequence", Never),
    named("Deactivate a sequence", Never),
    named("Archive a sequence", Never),
    at(
        "Search for outreach emails",
        "POST",
        "/api/v1/emailer_messages/search",
        Never,
    ),
    at(
        "Check email stats",
        "GET",
        "/api/v1/emailer_messages/:id/activities",
        Never,
    ),
    at("Create a task", "POST", "/api/v1/tasks", Never),
    named("Bulk create tasks", Never), // no tasks#bulk_create
    at("Search for tasks", "POST", "/api/v1/tasks/search", Never),
    at(
        "Query analytics report",
        "POST",
        "/api/v1/reports/sync_report",
        Never,
    ),
    at("Create call records", "POST", "/api/v1/phone_calls", Never),
    named("Search for calls", Never), // no phone_calls#search
    at(
        "Update call records",
        "PUT",
        "/api/v1/phone_calls/:id",
        Never,
    ),
    named("Poll webhook result", Never), // no webhook controller
    // Seed 000's own endpoint.
    at(
        "View API usage stats and rate limits",
        "POST",
        "/api/v1/usage_stats/api_usage_stats",
        Never,
    ),
    at("Get a list of users", "GET", "/api/v1/users/search", Never),
    named("Get authenticated user profile", Never), // no such users action
    at(
        "Get a list of email accounts",
        "GET",
        "/api/v1/email_accounts",
        Never,
    ),
    at("Get a list of all lists", "GET", "/api/v1/labels", Never),
    at(
        "Get a list of all custom fields",
        "GET",
        "/api/v1/typed_custom_fields",
        Never,
    ),
    // crm#object_fields_mapping may be it, but the document does not say.
    named("Get a list of fields", Never),
    at(
        "Create a custom field",
        "POST",
        "/api/v1/typed_custom_fields",
        Never,
    ), // convention
    named("Get a list of notes", Never), // no notes controller
];

/// The seed-001 endpoint a request goes to, if its route is known.
///
/// Paths are compared in canonical form (see
/// [`normalize_path`](crate::route::normalize_path)); methods ignore ASCII
/// case, and `PATCH` is `PUT` (Rails routes both to `update`). When several
/// templates match, the one with the most literal segments wins
/// (`GET /api/v1/organizations/enrich` is enrichment, not `show`).
pub fn seed001_endpoint(method: &Method, path: &str) -> Option<&'static Seed001Endpoint> {
    let path = normalize_path(path);
    let method = if *method == Method::PATCH {
        "PUT"
    } else {
        method.as_str()
    };
    let mut best: Option<(usize, &'static Seed001Endpoint)> = None;
    for endpoint in &SEED001_ENDPOINTS {
        let Some((m, template)) = endpoint.route else {
            continue;
        };
        if !m.eq_ignore_ascii_case(method) {
            continue;
        }
        if let Some(literals) = literal_match(template, &path) {
            if best.is_none_or(|(b, _)| literals > b) {
                best = Some((literals, endpoint));
            }
        }
    }
    best.map(|(_, e)| e)
}

/// How a request spends credits under seed 001; [`Consumes::PerRecord`] for a
/// request to no known route (see the module docs for why).
///
/// ```
/// use http::Method;
/// use tower_quota::credits::{seed001_rule_for, Consumes};
///
/// assert_eq!(seed001_rule_for(&Method::POST, "/api/v1/people/bulk_match"), Consumes::PerRecord);
/// assert_eq!(seed001_rule_for(&Method::POST, "/api/v1/mixed_companies/search"), Consumes::PerPage);
/// assert_eq!(seed001_rule_for(&Method::PUT, "/api/v1/contacts/42"), Consumes::Never);
/// ```
pub fn seed001_rule_for(method: &Method, path: &str) -> Consumes {
    seed001_endpoint(method, path).map_or(Consumes::PerRecord, |e| e.consumes)
}

/// The number of literal segments of `template` if it matches the canonical
/// `path`, segment by segment.
fn literal_match(template: &str, path: &str) -> Option<usize> {
    let mut pattern = template.split('/').filter(|s| !s.is_empty());
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let mut literals = 0;
    loop {
        match (pattern.next(), segments.next()) {
            (None, None) => return Some(literals),
            (Some(p), Some(_)) if p.starts_with(':') => {}
            (Some(p), Some(s)) if p == s => literals += 1,
            _ => return None,
        }
    }
}

#[cfg(test)]
#[path = "tests_seed001.rs"]
mod tests;
