//! Credit budgets: so many credits per billing period, charged after the response.
//!
//! Some APIs meter a second budget beside their request rates: credits, spent
//! per enriched record or per page of search results, and only when data is
//! returned (seed 001: "if Apollo doesn't find credit-consuming data, the
//! request consumes 0 credits"). The cost of a request is therefore known only
//! from its response, so this module does not reserve credits ahead like the
//! rate limiter reserves room; it
//!
//! - checks, before sending, that the [`CreditBudget`] has a credit left,
//!   and otherwise fails fast or waits for the next period ([`Exhausted`]);
//! - charges, after the response, what the [`CreditRule`] reads in it (a
//!   records count header, a closure over status and headers).
//!
//! A request that starts with 1 credit left may cost 7: the budget then ends
//! the period overdrawn, like the server's own account would, and refuses the
//! requests after it. Requests that waited for a new period leave it only
//! while its credits cover them, not all at its first instant
//! ([`Exhausted::Wait`]). Requests the rule says are free (create, update, list:
//! [`seed001_rule_for`] answers [`Consumes::Never`]) pass a spent budget.
//!
//! [`CreditLayer`] composes with [`QuotaLayer`](crate::QuotaLayer) in one
//! `tower::ServiceBuilder`; put it first, so that a request waiting for credits
//! holds no rate-limit room.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use http::header::HeaderName;
//! use tower::{Service, ServiceBuilder, ServiceExt};
//! use tower_quota::clock::Nanos;
//! use tower_quota::credits::{CreditBudget, CreditLayer, CreditRule, Period};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let day = Period::new(Duration::from_secs(86_400), Nanos::ZERO);
//! let budget = Arc::new(CreditBudget::new("enrichment", 10, day));
//! let rule = CreditRule::per_record(HeaderName::from_static("x-records"));
//! let mut svc = ServiceBuilder::new()
//!     .layer(CreditLayer::new(budget.clone(), rule))
//!     .service(tower::service_fn(|_req: http::Request<()>| async {
//!         let response = http::Response::builder().header("x-records", "6").body(());
//!         Ok::<_, http::Error>(response?)
//!     }));
//! let request = || http::Request::post("/api/v1/people/bulk_match").body(()).unwrap_or_default();
//! for _ in 0..2 {
//!     // 0, then 6 of 10 credits spent: both may start.
//!     assert!(svc.ready().await.expect("ready").call(request()).await.is_ok());
//! }
//! assert_eq!(budget.spent(Nanos::ZERO), 12); // overdrawn, as the server would be
//! let refused = svc.ready().await.expect("ready").call(request()).await;
//! assert!(refused.is_err_and(|e| e.refusal().is_some()));
//! # }
//! ```

mod budget;
mod edge;
mod error;
mod future;
mod layer;
mod rule;
mod seed001;
mod service;

pub use budget::{CreditBudget, Period};
pub use error::{CreditError, CreditRefusal};
pub use future::CreditFuture;
pub use layer::{CreditLayer, Exhausted};
pub use rule::{
    reported_count, reported_count_up_to, Consumes, CreditRule, Exchange, DEFAULT_MAX_PER_RESPONSE,
};
pub use seed001::{seed001_endpoint, seed001_rule_for, Seed001Endpoint, SEED001_ENDPOINTS};
pub use service::CreditService;
