//! Which header formats to read, per host, and the one entry point that reads
//! them all into an [`Observation`].

use std::time::SystemTime;

use http::HeaderMap;

use super::observation::{Observation, ResetAt};
use super::reset::{http_date, ResetUnit};
use super::text::{plausible, seconds, values};
use super::vendor::VendorSet;
use super::{ietf, x_ratelimit};

/// Which rate-limit header formats to read, and how.
///
/// [`HeaderRules::standard`] reads every common format; declare a vendor's own
/// headers with [`HeaderRules::vendor`], and stop guessing with
/// [`HeaderRules::only_declared`]. `Retry-After` and `Date` are always read: they
/// are HTTP's own fields, not guesses.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use http::HeaderMap;
/// use tower_quota::headers::{HeaderRules, ResetAt, ResetUnit};
///
/// // Seed 004: reset in Unix milliseconds, Retry-After in seconds on a 429.
/// let mut headers = HeaderMap::new();
/// headers.insert("x-ratelimit-limit", "60".parse().unwrap());
/// headers.insert("x-ratelimit-remaining", "0".parse().unwrap());
/// headers.insert("x-ratelimit-reset", "1779200000000".parse().unwrap());
/// headers.insert("retry-after", "30".parse().unwrap());
/// let received_at = UNIX_EPOCH + Duration::from_secs(1_779_199_970);
///
/// let seen = HeaderRules::standard()
///     .reset_unit(ResetUnit::EpochMillis)
///     .parse(&headers, received_at);
/// let window = &seen.windows[0];
/// assert_eq!((window.limit, window.remaining), (Some(60), Some(0)));
/// assert_eq!(window.reset, Some(ResetAt::At(UNIX_EPOCH + Duration::from_secs(1_779_200_000))));
/// assert_eq!(seen.retry_after, Some(ResetAt::After(Duration::from_secs(30))));
/// assert_eq!(seen.wait_hint(received_at), Some(Duration::from_secs(30)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderRules {
    standard: bool,
    reset_unit: ResetUnit,
    vendors: Vec<VendorSet>,
}

impl Default for HeaderRules {
    fn default() -> Self {
        HeaderRules::standard()
    }
}

impl HeaderRules {
    /// Every common format: `X-RateLimit-*` (reset unit guessed), the IETF
    /// `RateLimit` / `RateLimit-Policy` fields, the older `RateLimit-Limit` /
    /// `-Remaining` / `-Reset`, plus `Retry-After` and `Date`.
    pub fn standard() -> HeaderRules {
        HeaderRules {
            standard: true,
            reset_unit: ResetUnit::Auto,
            vendors: Vec::new(),
        }
    }

    /// How `X-RateLimit-Reset` is written, when the guess should not be trusted
    /// (seed 004: [`ResetUnit::EpochMillis`]).
    pub fn reset_unit(mut self, unit: ResetUnit) -> HeaderRules {
        self.reset_unit = unit;
        self
    }

    /// Also reads a vendor's own header set (one call per window).
    pub fn vendor(mut self, set: VendorSet) -> HeaderRules {
        self.vendors.push(set);
        self
    }

    /// Reads only the declared vendor sets (and `Retry-After` and `Date`), not the
    /// standard formats; for servers whose standard-looking headers mean
    /// something else.
    pub fn only_declared(mut self) -> HeaderRules {
        self.standard = false;
        self
    }

    /// Reads what `headers` say about the server's limits. `received_at` is the
    /// local wall-clock time the response arrived; it bounds what is plausible
    /// and anchors the reset-unit guess.
    ///
    /// Never panics. Malformed, negative, overflowing or absurd values are absent;
    /// a remaining count above the limit is read as the limit; repeated headers
    /// keep the smallest limit and remaining and the latest reset; repeated `Date`
    /// headers that disagree are absent.
    pub fn parse(&self, headers: &HeaderMap, received_at: SystemTime) -> Observation {
        let date = date(headers, received_at);
        let server_now = date.unwrap_or(received_at);
        let retry_after = values(headers, http::header::RETRY_AFTER)
            .filter_map(|v| retry_after(v, received_at))
            .reduce(|a, b| a.latest(b, server_now));
        let mut windows = Vec::new();
        for set in &self.vendors {
            windows.extend(set.read(headers, received_at, server_now));
        }
        if self.standard {
            windows.extend(x_ratelimit::read(
                headers,
                self.reset_unit,
                received_at,
                server_now,
            ));
            ietf::read(headers, received_at, server_now, &mut windows);
        }
        windows.retain(|w| !w.is_empty());
        for w in &mut windows {
            w.clamp();
        }
        Observation {
            windows,
            retry_after,
            date,
        }
    }
}

/// `Retry-After`: delay seconds (decimals tolerated) or an HTTP-date.
fn retry_after(v: &str, received_at: SystemTime) -> Option<ResetAt> {
    seconds(v).map(ResetAt::After).or_else(|| {
        http_date(v)
            .filter(|t| plausible(*t, received_at))
            .map(ResetAt::At)
    })
}

/// `Date`, absent when repeated with different values.
fn date(headers: &HeaderMap, received_at: SystemTime) -> Option<SystemTime> {
    let mut dates = values(headers, http::header::DATE).map(http_date);
    let first = dates.next()??;
    if dates.any(|d| d != Some(first)) || !plausible(first, received_at) {
        return None;
    }
    Some(first)
}

/// Header rules per host: what the user declared for a host wins, and a default
/// (usually [`HeaderRules::standard`]) covers the rest.
///
/// ```
/// use tower_quota::headers::{HeaderRules, HostRules, ResetUnit};
///
/// let rules = HostRules::new(HeaderRules::standard())
///     .host("api.campaigns.example", HeaderRules::standard().reset_unit(ResetUnit::EpochMillis));
/// assert_eq!(rules.for_host(Some("API.Campaigns.example:443")),
///            &HeaderRules::standard().reset_unit(ResetUnit::EpochMillis));
/// assert_eq!(rules.for_host(None), &HeaderRules::standard());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HostRules {
    default: HeaderRules,
    hosts: Vec<(String, HeaderRules)>,
}

impl HostRules {
    /// `default` for every host not declared.
    pub fn new(default: HeaderRules) -> HostRules {
        HostRules {
            default,
            hosts: Vec::new(),
        }
    }

    /// Uses `rules` for `host` (a name without port matches every port; one with a
    /// port only that port). Declaring a host twice keeps the later rules.
    pub fn host(mut self, host: &str, rules: HeaderRules) -> HostRules {
        let host = host.to_ascii_lowercase();
        self.hosts.retain(|(h, _)| *h != host);
        self.hosts.push((host, rules));
        self
    }

    /// The rules for `host` (as in a URI authority, port optional, any case).
    pub fn for_host(&self, host: Option<&str>) -> &HeaderRules {
        let Some(host) = host else {
            return &self.default;
        };
        let find = |name: &str| {
            self.hosts
                .iter()
                .find(|(h, _)| h.eq_ignore_ascii_case(name))
                .map(|(_, r)| r)
        };
        find(host)
            .or_else(|| find(without_port(host)))
            .unwrap_or(&self.default)
    }
}

/// `host` without a trailing `:port` (IPv6 literals keep their brackets).
fn without_port(host: &str) -> &str {
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    }
}
