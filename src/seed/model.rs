//! One type for what any usage endpoint says: the [`Seed`].
//!
//! Seed 000 (the CRM's usage stats) and seed 002 (the partner API's
//! `/rateLimit/usage`) describe the same things in different shapes: limits
//! per route key, per scope, per window, sometimes with what has been used.
//! Reading both into one model lets the refresher apply them with one piece of
//! code ([`apply_to_bucket`](super::apply_to_bucket)) and the report show them
//! with another, without either knowing which vendor spoke.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use super::warning::{SeedWarning, WarningKind};

/// Which usage endpoint a [`Seed`] was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeedSource {
    /// Seed 000: `POST /api/v1/usage_stats/api_usage_stats`.
    CrmUsageStats,
    /// Seed 002: `GET /rateLimit/usage`.
    PartnerUsage,
}

/// Whose allowance a figure describes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SeedScope {
    /// Shared by every account of the calling system (seed 002's
    /// `across_all_accounts`).
    Global,
    /// Each account's own ceiling (seed 002's `per_account`): one bucket per
    /// account, all with these limits.
    PerAccount,
    /// The allowance of the API key (in seed 000, the team behind it) that read
    /// the usage: seed 000 reports "your team's usage", which every key of the
    /// team shares. Apply it to the buckets of the key that fetched it.
    Key,
}

/// The route key a figure is for, as the crate's routers name it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum SeedRoute {
    /// A Rails `controller#action` (seed 000).
    Rails {
        /// The controller path as the server wrote it: `api/v1/contacts`.
        controller: String,
        /// The action: `search`.
        action: String,
        /// The label [`Rails`](crate::route::Rails) gives the route:
        /// `api/v1/contacts#search`.
        label: String,
    },
    /// A `METHOD.resource` key (seed 002): `GET.people`.
    MethodResource(String),
    /// The catch-all for routes without their own limits (seed 002's `default`).
    Default,
}

impl SeedRoute {
    /// The route of the usage-stats pair `[controller, action]`.
    ///
    /// ```
    /// use tower_quota::seed::SeedRoute;
    ///
    /// let r = SeedRoute::rails("api/v1/contacts", "search");
    /// assert_eq!(r.label(), "api/v1/contacts#search");
    /// assert_eq!(SeedRoute::Default.label(), "default");
    /// ```
    pub fn rails(controller: impl Into<String>, action: impl Into<String>) -> SeedRoute {
        let (controller, action) = (controller.into(), action.into());
        let label = format!("{}#{action}", controller.trim_matches('/'));
        SeedRoute::Rails {
            controller,
            action,
            label,
        }
    }

    /// The route's name as a router labels it (`api/v1/contacts#search`,
    /// `GET.people`), or `default` for the catch-all.
    pub fn label(&self) -> &str {
        match self {
            SeedRoute::Rails { label, .. } => label,
            SeedRoute::MethodResource(key) => key,
            SeedRoute::Default => "default",
        }
    }
}

/// One window's figures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedWindow {
    /// The window's name in the body (`minute`, `day`), or `configured` for a
    /// format that names none (seed 002).
    pub name: String,
    /// Its length, from the [`WindowNames`](super::WindowNames) table or the
    /// configuration.
    pub window: Duration,
    /// The server's limit in this window. Zero means nothing may be sent.
    pub limit: u64,
    /// Units the server counts in the window, read conservatively
    /// (`limit - remaining`); `None` when the format gives no usage (seed 002).
    pub used: Option<u64>,
    /// Units left, read conservatively: `min(left_over, limit - consumed)`;
    /// `None` when the format gives no usage (seed 002).
    pub remaining: Option<u64>,
    /// When the server's count resets, if it said. Neither seed 000 nor seed
    /// 002 says; the field is for formats that do.
    pub reset: Option<SystemTime>,
}

impl SeedWindow {
    /// Keeps the tighter of two readings of one window: the smaller limit and
    /// remaining, the larger used count.
    fn tighten(&mut self, other: SeedWindow) {
        self.limit = self.limit.min(other.limit);
        self.used = max_opt(self.used, other.used);
        let room = self.limit.saturating_sub(self.used.unwrap_or(0));
        self.remaining = min_opt(self.remaining, other.remaining).map(|r| r.min(room));
        self.reset = match (self.reset, other.reset) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

fn max_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn min_opt(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// The figures of one route in one scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedEntry {
    /// The route.
    pub route: SeedRoute,
    /// The scope.
    pub scope: SeedScope,
    /// Its windows, at most one per length, in the body's order.
    pub windows: Vec<SeedWindow>,
}

impl SeedEntry {
    /// An entry with no windows yet.
    pub fn new(route: SeedRoute, scope: SeedScope) -> SeedEntry {
        SeedEntry {
            route,
            scope,
            windows: Vec::new(),
        }
    }

    /// The window named `name`.
    pub fn window(&self, name: &str) -> Option<&SeedWindow> {
        self.windows.iter().find(|w| w.name == name)
    }

    /// The window of length `length`.
    pub fn window_of(&self, length: Duration) -> Option<&SeedWindow> {
        self.windows.iter().find(|w| w.window == length)
    }

    /// Adds `window`, or merges it into the window of the same length keeping
    /// the tighter figures; `true` if it merged.
    pub(crate) fn add_window(&mut self, window: SeedWindow) -> bool {
        match self.windows.iter_mut().find(|w| w.window == window.window) {
            Some(existing) => {
                existing.tighten(window);
                true
            }
            None => {
                self.windows.push(window);
                false
            }
        }
    }
}

/// The last 24 hours as seed 002 summarises them, for the report.
#[derive(Clone, Debug, PartialEq)]
pub struct DaySummary {
    /// The calling system's registered name (a name, not a secret).
    pub system: String,
    /// The period, documented as always `last_24h`.
    pub period: String,
    /// Calls attributed to the system in the last 24 hours.
    pub total_requests: u64,
    /// Of those, how many a rate limiter rejected.
    pub rate_limited_requests: u64,
    /// `rate_limited_requests / total_requests * 100`, rounded by the server to
    /// two decimals; 0 without traffic.
    pub rate_limit_percentage: f64,
    /// The hour with the most calls (`2026-05-19T14:00:00Z`); `None` without
    /// traffic.
    pub peak_hour: Option<String>,
}

/// Everything a usage body says, read conservatively.
#[derive(Clone, Debug, PartialEq)]
pub struct Seed {
    /// Where it came from.
    pub source: SeedSource,
    /// One entry per route and scope, in the body's order.
    pub entries: Vec<SeedEntry>,
    /// The 24-hour summary, if the format has one (seed 002) and it was well
    /// formed.
    pub summary: Option<DaySummary>,
    /// What the parser worked around; each was also logged with `tracing::warn!`.
    pub warnings: Vec<SeedWarning>,
}

impl Seed {
    /// A seed with nothing in it yet.
    pub fn new(source: SeedSource) -> Seed {
        Seed {
            source,
            entries: Vec::new(),
            summary: None,
            warnings: Vec::new(),
        }
    }

    /// The entry of the route labelled `label` in `scope`.
    ///
    /// ```
    /// use tower_quota::seed::{parse_partner_usage, SeedScope};
    ///
    /// let body = br#"{"system": "s", "period": "last_24h", "usage": {"total_requests": 0,
    ///   "rate_limited_requests": 0, "rate_limit_percentage": 0, "peak_hour": null,
    ///   "current_limits": {"across_all_accounts": {"default": 750, "GET.people": 100}}}}"#;
    /// let seed = parse_partner_usage(body, std::time::Duration::from_secs(60))?;
    /// let people = seed.entry(SeedScope::Global, "GET.people").expect("listed");
    /// assert_eq!(people.windows[0].limit, 100);
    /// # Ok::<(), tower_quota::seed::SeedError>(())
    /// ```
    pub fn entry(&self, scope: SeedScope, label: &str) -> Option<&SeedEntry> {
        self.entries
            .iter()
            .find(|e| e.scope == scope && e.route.label() == label)
    }

    /// The entries of `scope`.
    pub fn entries_in(&self, scope: SeedScope) -> impl Iterator<Item = &SeedEntry> {
        self.entries.iter().filter(move |e| e.scope == scope)
    }

    /// Records and logs a warning.
    pub(crate) fn warn(&mut self, route: Option<&str>, window: Option<&str>, kind: WarningKind) {
        let warning = SeedWarning::new(route, window, kind);
        warning.emit();
        self.warnings.push(warning);
    }

    /// Adds `entry`, merging it (tighter figures win) into an entry of the same
    /// route and scope, with a warning. `index` must have seen every entry
    /// added so far: it finds the earlier entry at once.
    pub(crate) fn add_entry(&mut self, entry: SeedEntry, index: &mut EntryIndex) {
        let key = (entry.scope, entry.route.label().to_owned());
        let Some(&at) = index.positions.get(&key) else {
            index.positions.insert(key, self.entries.len());
            self.entries.push(entry);
            return;
        };
        let mut merged = false;
        if let Some(existing) = self.entries.get_mut(at) {
            for w in entry.windows {
                merged |= existing.add_window(w);
            }
        }
        if merged {
            self.warn(Some(&key.1), None, WarningKind::Duplicate);
        }
    }
}

/// Where each route's entry is in a seed being read, by scope and label.
///
/// A body may name a route twice, and its figures must then be merged; finding
/// the earlier entry by searching them all made parsing quadratic in the
/// routes (a 4 MB body took seconds, on the runtime's thread). The parsers
/// keep this beside the [`Seed`] while they read, and drop it after: the seed
/// stays plain data its users may change.
#[derive(Debug, Default)]
pub(crate) struct EntryIndex {
    positions: HashMap<(SeedScope, String), usize>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(name: &str, secs: u64, limit: u64, used: Option<u64>) -> SeedWindow {
        SeedWindow {
            name: name.into(),
            window: Duration::from_secs(secs),
            limit,
            used,
            remaining: used.map(|u| limit.saturating_sub(u)),
            reset: None,
        }
    }

    #[test]
    fn duplicates_merge_to_the_tighter_figures() {
        let mut seed = Seed::new(SeedSource::CrmUsageStats);
        let mut index = EntryIndex::default();
        let mut a = SeedEntry::new(SeedRoute::rails("api/v1/x", "search"), SeedScope::Key);
        assert!(!a.add_window(w("minute", 60, 200, Some(10))));
        seed.add_entry(a, &mut index);
        let mut b = SeedEntry::new(SeedRoute::rails("/api/v1/x/", "search"), SeedScope::Key);
        assert!(!b.add_window(w("minute", 60, 100, Some(5))));
        assert!(!b.add_window(w("day", 86_400, 6000, Some(50))));
        seed.add_entry(b, &mut index);
        assert_eq!(seed.entries.len(), 1);
        let e = seed
            .entry(SeedScope::Key, "api/v1/x#search")
            .expect("merged");
        let minute = e.window("minute").expect("minute");
        assert_eq!(
            (minute.limit, minute.used, minute.remaining),
            (100, Some(10), Some(90))
        );
        assert_eq!(
            e.window_of(Duration::from_secs(86_400)).map(|w| w.limit),
            Some(6000)
        );
        assert_eq!(seed.warnings.len(), 1);
        assert_eq!(seed.warnings[0].kind, WarningKind::Duplicate);
        assert_eq!(seed.entries_in(SeedScope::Global).count(), 0);
    }

    #[test]
    fn merging_keeps_known_usage_and_the_later_reset() {
        let mut a = w("configured", 60, 750, None);
        let mut b = w("configured", 60, 800, Some(3));
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(5);
        b.reset = Some(t);
        a.tighten(b);
        assert_eq!(
            (a.limit, a.used, a.remaining, a.reset),
            (750, Some(3), Some(747), Some(t))
        );
    }
}
