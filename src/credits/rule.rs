//! How many credits a response costs.
//!
//! Credit-metered APIs charge for what they return, not for being asked: an
//! enrichment that finds nothing costs 0, a search page with results costs 1,
//! an enrichment of 10 people costs up to 10. So the rule looks at the
//! response, and at the request's method and path to know which endpoint it
//! was. Before sending, the layer only asks the rule whether a request *may*
//! cost anything, so that free endpoints pass a spent budget.
//!
//! Counts come from the server and are untrusted: a missing, malformed or
//! absurd value counts as 0 and is logged, and nothing here panics. Absurd
//! means above what one response can plausibly report
//! ([`CreditRule::max_per_response`], by default
//! [`DEFAULT_MAX_PER_RESPONSE`]): one response claiming
//! `x-records: 18446744073709551615` would otherwise spend the budget for
//! the rest of its period.

use std::fmt;
use std::sync::Arc;

use http::header::HeaderName;
use http::{HeaderMap, Method, StatusCode};

use super::seed001::seed001_rule_for;

/// How an endpoint spends credits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Consumes {
    /// One credit per record the response returns.
    PerRecord,
    /// One credit per response that returns at least one record.
    PerPage,
    /// Never any credit.
    Never,
}

impl Consumes {
    /// The credits of a response that returned `records` records.
    pub fn credits(self, records: u64) -> u64 {
        match self {
            Consumes::PerRecord => records,
            Consumes::PerPage => u64::from(records > 0),
            Consumes::Never => 0,
        }
    }
}

/// One request and its response, as a rule sees them.
#[derive(Clone, Copy, Debug)]
pub struct Exchange<'a> {
    /// The request's method.
    pub method: &'a Method,
    /// The request's path, without the query string.
    pub path: &'a str,
    /// The response's status.
    pub status: StatusCode,
    /// The response's headers.
    pub headers: &'a HeaderMap,
}

/// The default [`CreditRule::max_per_response`]: a million records, far
/// above what one page or batch call returns, far below a garbage value
/// that would spend a budget for its whole period.
pub const DEFAULT_MAX_PER_RESPONSE: u64 = 1_000_000;

type CostFn = dyn Fn(&Exchange<'_>) -> u64 + Send + Sync;
type GateFn = dyn Fn(&Method, &str) -> bool + Send + Sync;

/// How many credits a response costs. Cheap to clone.
///
/// ```
/// use http::{header::HeaderName, HeaderMap, Method, StatusCode};
/// use tower_quota::credits::{CreditRule, Exchange};
///
/// let rule = CreditRule::per_record(HeaderName::from_static("x-records"));
/// let mut headers = HeaderMap::new();
/// headers.insert("x-records", "7".parse().expect("a valid value"));
/// let exchange = Exchange {
///     method: &Method::POST,
///     path: "/api/v1/people/bulk_match",
///     status: StatusCode::OK,
///     headers: &headers,
/// };
/// assert_eq!(rule.credits(&exchange), 7);
/// ```
#[derive(Clone)]
pub struct CreditRule {
    kind: Kind,
    gate: Option<Arc<GateFn>>,
    max_per_response: u64,
}

#[derive(Clone)]
enum Kind {
    Never,
    Count { header: HeaderName, unit: Consumes },
    Seed001 { header: HeaderName },
    Fn(Arc<CostFn>),
}

/// What a request in flight must remember to be charged for its response.
#[derive(Debug)]
pub(crate) enum Pending {
    /// It costs nothing, whatever comes back.
    Free,
    /// It costs per the count header, per `unit`.
    Count(Consumes),
    /// The user's closure decides; it needs the request's method and path.
    Fn { method: Method, path: Box<str> },
}

impl CreditRule {
    /// Nothing ever costs a credit.
    pub fn never() -> CreditRule {
        CreditRule::of(Kind::Never)
    }

    /// One credit per record, as counted by the server in the response header
    /// `header` (`x-records: 7` costs 7). 0 when the header is absent or
    /// malformed, or the status is not 2xx.
    pub fn per_record(header: HeaderName) -> CreditRule {
        CreditRule::of(Kind::Count {
            header,
            unit: Consumes::PerRecord,
        })
    }

    /// One credit per 2xx response whose header `header` counts at least one
    /// record (a search page with results), else 0.
    pub fn per_page_with_results(header: HeaderName) -> CreditRule {
        CreditRule::of(Kind::Count {
            header,
            unit: Consumes::PerPage,
        })
    }

    /// Seed 001's rules: each endpoint costs per record, per page or nothing
    /// as [`seed001_rule_for`] says, counting records in the header `header`.
    pub fn seed001(header: HeaderName) -> CreditRule {
        CreditRule::of(Kind::Seed001 { header })
    }

    /// The credits `cost` returns for each exchange. Every request may cost
    /// something (it waits for, or is refused by, a spent budget) unless
    /// [`only_for`](CreditRule::only_for) says otherwise.
    pub fn from_fn<F>(cost: F) -> CreditRule
    where
        F: Fn(&Exchange<'_>) -> u64 + Send + Sync + 'static,
    {
        CreditRule::of(Kind::Fn(Arc::new(cost)))
    }

    /// Restricts the rule to requests for which `may_consume(method, path)`
    /// holds: the others cost nothing and pass a spent budget.
    pub fn only_for<F>(mut self, may_consume: F) -> CreditRule
    where
        F: Fn(&Method, &str) -> bool + Send + Sync + 'static,
    {
        self.gate = Some(Arc::new(may_consume));
        self
    }

    /// The most one response can plausibly report: a record count (for
    /// [`per_record`](CreditRule::per_record),
    /// [`per_page_with_results`](CreditRule::per_page_with_results) and
    /// [`seed001`](CreditRule::seed001)) or a cost (for
    /// [`from_fn`](CreditRule::from_fn)) above it is absurd, counts as 0 and
    /// is logged with a warning. Default [`DEFAULT_MAX_PER_RESPONSE`]; set it
    /// to the largest page or batch your calls ask for.
    pub fn max_per_response(mut self, max: u64) -> CreditRule {
        self.max_per_response = max;
        self
    }

    fn of(kind: Kind) -> CreditRule {
        CreditRule {
            kind,
            gate: None,
            max_per_response: DEFAULT_MAX_PER_RESPONSE,
        }
    }

    /// Whether a request may cost credits, before it is sent.
    pub fn may_consume(&self, method: &Method, path: &str) -> bool {
        !matches!(self.pending(method, path), Pending::Free)
    }

    /// The credits of one exchange.
    pub fn credits(&self, exchange: &Exchange<'_>) -> u64 {
        let pending = self.pending(exchange.method, exchange.path);
        self.charge(&pending, exchange.status, exchange.headers)
    }

    pub(crate) fn pending(&self, method: &Method, path: &str) -> Pending {
        if let Some(gate) = &self.gate {
            if !gate(method, path) {
                return Pending::Free;
            }
        }
        match &self.kind {
            Kind::Never => Pending::Free,
            Kind::Count { unit, .. } => Pending::Count(*unit),
            Kind::Seed001 { .. } => match seed001_rule_for(method, path) {
                Consumes::Never => Pending::Free,
                unit => Pending::Count(unit),
            },
            Kind::Fn(_) => Pending::Fn {
                method: method.clone(),
                path: path.into(),
            },
        }
    }

    pub(crate) fn charge(&self, pending: &Pending, status: StatusCode, headers: &HeaderMap) -> u64 {
        match (pending, &self.kind) {
            (Pending::Free, _) | (_, Kind::Never) => 0,
            // Counts of failed responses are not charges (a 429 returns no data).
            (Pending::Count(unit), Kind::Count { header, .. } | Kind::Seed001 { header })
                if status.is_success() =>
            {
                unit.credits(reported_count_up_to(headers, header, self.max_per_response))
            }
            (Pending::Fn { method, path }, Kind::Fn(cost)) => {
                let cost = cost(&Exchange {
                    method,
                    path,
                    status,
                    headers,
                });
                plausible(cost, self.max_per_response).unwrap_or_else(|| {
                    tracing::warn!(
                        cost,
                        max = self.max_per_response,
                        "absurd credit cost (above CreditRule::max_per_response); counting 0"
                    );
                    0
                })
            }
            // A non-2xx count, or (never: a pending charge always comes from
            // the same rule) a mismatched pair.
            _ => 0,
        }
    }
}

impl fmt::Debug for CreditRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Never => "never".to_owned(),
            Kind::Count { header, unit } => format!("{unit:?} from `{header}`"),
            Kind::Seed001 { header } => format!("seed 001 from `{header}`"),
            Kind::Fn(_) => "closure".to_owned(),
        };
        f.debug_struct("CreditRule")
            .field("kind", &kind)
            .field("restricted", &self.gate.is_some())
            .field("max_per_response", &self.max_per_response)
            .finish()
    }
}

/// The record count the server reports in the header `name`: 0 when absent;
/// 0 with a warning when a value is not a plain decimal `u64`, or is above
/// [`DEFAULT_MAX_PER_RESPONSE`] (absurd). With several values, the largest
/// valid one counts (the safe side).
pub fn reported_count(headers: &HeaderMap, name: &HeaderName) -> u64 {
    reported_count_up_to(headers, name, DEFAULT_MAX_PER_RESPONSE)
}

/// [`reported_count`] with `max` as the largest plausible count: a value
/// above it counts as 0, with a warning.
pub fn reported_count_up_to(headers: &HeaderMap, name: &HeaderName, max: u64) -> u64 {
    let mut count = 0;
    for value in headers.get_all(name) {
        let parsed = value
            .to_str()
            .ok()
            .map(str::trim)
            .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|v| v.parse::<u64>().ok());
        match parsed.map(|n| (n, plausible(n, max))) {
            Some((_, Some(n))) => count = count.max(n),
            // A number: nothing secret in it.
            Some((n, None)) => tracing::warn!(
                header = %name,
                count = n,
                max,
                "absurd credit count header (above CreditRule::max_per_response); counting 0 for it"
            ),
            // The value itself stays out of the log: it is untrusted input.
            None => tracing::warn!(
                header = %name,
                len = value.len(),
                "malformed credit count header; counting 0 for it"
            ),
        }
    }
    count
}

/// `n`, unless it is above `max`.
fn plausible(n: u64, max: u64) -> Option<u64> {
    (n <= max).then_some(n)
}

#[cfg(test)]
#[path = "tests_rule.rs"]
mod tests;
