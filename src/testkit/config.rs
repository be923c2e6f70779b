//! How a [`TestServer`](crate::testkit::TestServer) is set up: dialect, limits,
//! credentials, time.
//!
//! Start from a seed ([`Config::seed004`], [`Config::seed002`],
//! [`Config::seed000`]) for the documented limits, or from [`Config::new`] for
//! an empty server of a dialect, then chain the builder methods.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use super::credentials::{
    Credential, Role, DEFAULT_API_KEY, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY, MASTER_API_KEY,
};
use super::crm_table::SEED000_LIMITS;
use super::dialect::Dialect;
use super::limits::{Scope, ScopeBy, Window};
use crate::clock::{Clock, SystemClock};

/// A server's configuration.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::testkit::{Config, Window};
///
/// let config = Config::seed004()
///     .limit("GET /v1/things/:id", vec![Window::per_minute(5)])
///     .cost("POST /v1/bulk", 10)
///     .time_scale(60.0); // an API minute lasts one real second
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct Config {
    pub(crate) dialect: Dialect,
    pub(crate) scopes: Vec<Scope>,
    pub(crate) routes: Vec<String>,
    pub(crate) costs: Vec<(String, u64)>,
    pub(crate) credentials: Vec<Credential>,
    pub(crate) time_scale: f64,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) fault: f64,
    pub(crate) latency: Option<Range<Duration>>,
    pub(crate) cold_connections: Duration,
    pub(crate) usage_cache: Duration,
    pub(crate) retry_after: bool,
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("dialect", &self.dialect)
            .field("scopes", &self.scopes)
            .field("routes", &self.routes)
            .field("costs", &self.costs)
            .field("credentials", &self.credentials)
            .field("time_scale", &self.time_scale)
            .field("fault", &self.fault)
            .field("latency", &self.latency)
            .field("cold_connections", &self.cold_connections)
            .field("usage_cache", &self.usage_cache)
            .field("retry_after", &self.retry_after)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// A server of `dialect` with its scopes, no limits (everything unlimited),
    /// no credentials, the system clock and no compression.
    ///
    /// Scopes: `api_key` (per caller) for [`Dialect::Campaign`];
    /// `across_all_accounts` (shared) and `per_account` (per caller) for
    /// [`Dialect::Partner`]; `team` (shared) for [`Dialect::Crm`].
    pub fn new(dialect: Dialect) -> Config {
        let scopes = match dialect {
            Dialect::Campaign => vec![Scope::new("api_key", ScopeBy::Caller, vec![])],
            Dialect::Partner => vec![
                Scope::new("across_all_accounts", ScopeBy::Everyone, vec![]),
                Scope::new("per_account", ScopeBy::Caller, vec![]),
            ],
            Dialect::Crm => vec![Scope::new("team", ScopeBy::Everyone, vec![])],
        };
        Config {
            dialect,
            scopes,
            routes: Vec::new(),
            costs: Vec::new(),
            credentials: Vec::new(),
            time_scale: 1.0,
            clock: Arc::new(SystemClock::new()),
            fault: 0.0,
            latency: None,
            cold_connections: Duration::ZERO,
            usage_cache: Duration::from_secs(30),
            retry_after: true,
        }
    }

    /// Seed 004: the per-route table (sliding 60 s windows), a default of 60 per
    /// 60 s for every other route, one API key [`DEFAULT_API_KEY`] named
    /// `"default"`.
    pub fn seed004() -> Config {
        let table: [(&str, u64); 10] = [
            ("GET /v1/analytics", 30),
            ("GET /v1/analytics/daily", 30),
            ("GET /v1/analytics/by-user", 30),
            ("POST /v1/leads/add_to_campaign", 20),
            ("GET /v1/campaigns", 60),
            ("GET /v1/campaigns/:id", 120),
            ("GET /v1/campaigns/:id/statistics", 30),
            ("GET /v1/users", 60),
            ("GET /v1/users/:id", 60),
            ("GET /v1/teams/me", 60),
        ];
        let mut c = Config::new(Dialect::Campaign)
            .default_limit(vec![Window::per_minute(60)])
            .api_key("default", DEFAULT_API_KEY);
        for (route, n) in table {
            c = c.limit(route, vec![Window::per_minute(n)]);
        }
        c
    }

    /// Seed 002: `across_all_accounts` `{ "default": 750, "GET.people": 100 }`
    /// and `per_account` `{ "default": 25 }`. The document gives no window, so
    /// these are ceilings per sliding 60 s. One system [`DEFAULT_SYSTEM`] and one
    /// account key [`DEFAULT_API_KEY`] named `"default"`.
    pub fn seed002() -> Config {
        Config::new(Dialect::Partner)
            .scope_default("across_all_accounts", vec![Window::per_minute(750)])
            .scope_limit(
                "across_all_accounts",
                "GET.people",
                vec![Window::per_minute(100)],
            )
            .scope_default("per_account", vec![Window::per_minute(25)])
            .system(DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY)
            .api_key("default", DEFAULT_API_KEY)
    }

    /// Seed 000: every route key of the document with its minute, hour and day
    /// limits, shared by the team. The document does not say how its windows
    /// move; `consumed` per `minute`/`hour`/`day` reads like calendar windows,
    /// so they are fixed windows aligned to the wall clock. Routes outside the
    /// table are unlimited. Keys: [`MASTER_API_KEY`] (`"master"`) and
    /// [`DEFAULT_API_KEY`] (`"default"`, not a master key).
    pub fn seed000() -> Config {
        let mut c = Config::new(Dialect::Crm)
            .master_key("master", MASTER_API_KEY)
            .api_key("default", DEFAULT_API_KEY);
        for &(controller, action, minute, hour, day) in SEED000_LIMITS {
            c = c.limit(
                format!("{controller}#{action}"),
                day_hour_minute(minute, hour, day),
            );
        }
        c
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The scopes, in charging order.
    pub fn scopes(&self) -> &[Scope] {
        &self.scopes
    }

    /// Adds a scope, or replaces the one with the same name.
    pub fn scope(mut self, scope: Scope) -> Config {
        match self.scopes.iter_mut().find(|s| s.name == scope.name) {
            Some(s) => *s = scope,
            None => self.scopes.push(scope),
        }
        self
    }

    /// Sets the windows of `route` in the first scope (the only one for seed 004
    /// and seed 000; `across_all_accounts` for seed 002). An empty list makes
    /// the route unlimited. Also declares the route (see [`Config::route`]).
    pub fn limit(self, route: impl Into<String>, windows: Vec<Window>) -> Config {
        let first = self
            .scopes
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.scope_limit(&first, route, windows)
    }

    /// Sets the windows of `route` in the scope named `scope` (a no-op if there
    /// is none), and declares the route.
    pub fn scope_limit(
        mut self,
        scope: &str,
        route: impl Into<String>,
        windows: Vec<Window>,
    ) -> Config {
        let route = route.into();
        if let Some(s) = self.scopes.iter_mut().find(|s| s.name == scope) {
            s.set_route(route.clone(), windows);
        }
        self.route(route)
    }

    /// Sets the windows of the routes without their own in the first scope.
    pub fn default_limit(self, windows: Vec<Window>) -> Config {
        let first = self
            .scopes
            .first()
            .map(|s| s.name.clone())
            .unwrap_or_default();
        self.scope_default(&first, windows)
    }

    /// Sets the default windows of the scope named `scope` (a no-op if there is none).
    pub fn scope_default(mut self, scope: &str, windows: Vec<Window>) -> Config {
        if let Some(s) = self.scopes.iter_mut().find(|s| s.name == scope) {
            s.default = windows;
        }
        self
    }

    /// Declares a route without limits of its own, so requests are matched to
    /// it (seed 004 templates such as `GET /v1/leads/:id`). Seed 002 and 000
    /// derive route names from paths and need no declarations.
    pub fn route(mut self, route: impl Into<String>) -> Config {
        let route = route.into();
        if !self.routes.contains(&route) {
            self.routes.push(route);
        }
        self
    }

    /// Every request to `route` costs `units` in every bucket (default 1).
    pub fn cost(mut self, route: impl Into<String>, units: u64) -> Config {
        let route = route.into();
        self.costs.retain(|(r, _)| *r != route);
        self.costs.push((route, units));
        self
    }

    /// Accepts the API key `secret`, recorded as `name`.
    pub fn api_key(self, name: impl Into<String>, secret: impl Into<String>) -> Config {
        self.credential(Role::ApiKey, name.into(), secret.into())
    }

    /// Accepts the master key `secret` (seed 000), recorded as `name`.
    pub fn master_key(self, name: impl Into<String>, secret: impl Into<String>) -> Config {
        self.credential(Role::MasterKey, name.into(), secret.into())
    }

    /// Registers the system `name` (`X-System`) with key `secret` (seed 002).
    pub fn system(self, name: impl Into<String>, secret: impl Into<String>) -> Config {
        self.credential(Role::System, name.into(), secret.into())
    }

    fn credential(mut self, role: Role, name: String, secret: String) -> Config {
        self.credentials
            .retain(|c| c.name != name || (c.role == Role::System) != (role == Role::System));
        self.credentials.push(Credential { role, name, secret });
        self
    }

    /// API seconds per real second: 60 makes an API minute last one real second.
    /// Limits and the usage cache are in API time; everything the server prints
    /// is real time. Non-positive or non-finite values mean 1.
    pub fn time_scale(mut self, scale: f64) -> Config {
        self.time_scale = scale;
        self
    }

    /// The clock the server reads (default: a [`SystemClock`] created with the
    /// config). Pass a [`ManualClock`](crate::clock::ManualClock) to drive time
    /// from a test.
    pub fn clock(mut self, clock: impl Clock) -> Config {
        self.clock = Arc::new(clock);
        self
    }

    /// The share of requests, in `[0, 1]`, that skip the limiter and carry no
    /// rate-limit headers (seed 004's "backend unavailable"); see
    /// [`TestServer::set_fault`](crate::testkit::TestServer::set_fault).
    pub fn fault(mut self, share: f64) -> Config {
        self.fault = share;
        self
    }

    /// Delays every response by a real duration drawn from `range`; see
    /// [`TestServer::set_latency`](crate::testkit::TestServer::set_latency).
    pub fn latency(mut self, range: Range<Duration>) -> Config {
        self.latency = Some(range);
        self
    }

    /// Holds the first request on every new connection `handshake` (real
    /// time) before the server decides it, as a cold connection's handshake
    /// (TCP, TLS, a proxy) would delay it: the server counts it that much
    /// later than the client let it go (default: none).
    pub fn cold_connections(mut self, handshake: Duration) -> Config {
        self.cold_connections = handshake;
        self
    }

    /// How long seed 002's usage response is cached, in API time (default 30 s).
    pub fn usage_cache(mut self, ttl: Duration) -> Config {
        self.usage_cache = ttl;
        self
    }

    /// Whether 429s carry `Retry-After` (default: yes, as seeds 004 and 002
    /// say; seed 000 never sends it).
    ///
    /// `Retry-After` is whole seconds, rounded up. Under heavy compression one
    /// second is many windows (two at 120x), so a client that honours it waits
    /// far longer than it would against the real server (one second of a
    /// 60-second window). A test that measures utilisation under compression
    /// can turn it off and leave clients `X-RateLimit-Reset`, in milliseconds.
    pub fn retry_after(mut self, send: bool) -> Config {
        self.retry_after = send;
        self
    }

    pub(crate) fn cost_of(&self, route: &str) -> u64 {
        self.costs
            .iter()
            .find(|(r, _)| r == route)
            .map_or(1, |(_, n)| *n)
    }

    pub(crate) fn find_credential(&self, role: &[Role], secret: &str) -> Option<&Credential> {
        self.credentials
            .iter()
            .find(|c| role.contains(&c.role) && c.secret == secret)
    }
}

/// Seed 000's three windows, longest first (the document's order).
fn day_hour_minute(minute: u64, hour: u64, day: u64) -> Vec<Window> {
    vec![
        Window::fixed(day, Duration::from_secs(86_400)),
        Window::fixed(hour, Duration::from_secs(3_600)),
        Window::fixed(minute, Duration::from_secs(60)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_carry_the_documented_limits() {
        let c = Config::seed004();
        assert_eq!(
            c.scopes[0].windows_for("GET /v1/campaigns/:id"),
            &[Window::per_minute(120)]
        );
        assert_eq!(
            c.scopes[0].windows_for("GET /v1/other"),
            &[Window::per_minute(60)]
        );
        let c = Config::seed002();
        assert_eq!(
            c.scopes[0].windows_for("GET.people"),
            &[Window::per_minute(100)]
        );
        assert_eq!(
            c.scopes[1].windows_for("GET.people"),
            &[Window::per_minute(25)]
        );
        let c = Config::seed000();
        assert_eq!(c.scopes[0].routes.len(), 50);
        let w = c.scopes[0].windows_for("api/v1/conversations#export");
        assert_eq!(w.iter().map(|w| w.limit).collect::<Vec<_>>(), [480, 20, 1]);
    }

    #[test]
    fn debug_never_shows_secrets() {
        let text = format!("{:?}", Config::seed000().system("s", "hush"));
        assert!(!text.contains(MASTER_API_KEY) && !text.contains("hush"));
        assert!(text.contains("<redacted>"));
    }
}
