//! Vendor-specific header sets that no guess could find, declared by the user.
//!
//! Seed 000's CRM sends one limit/remaining pair per window under its own names
//! (`x-rate-limit-minute` / `x-minute-requests-left`, then hourly and 24-hour
//! variants); OpenAI sends `x-ratelimit-limit-requests` with a Go-duration
//! `x-ratelimit-reset-requests`. A [`VendorSet`] names one such window's headers;
//! exactly those are read.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName};

use super::observation::WindowObservation;
use super::reset::ResetUnit;
use super::text::{count, elements, values};

/// The headers that describe one of a vendor's windows.
///
/// ```
/// use std::time::Duration;
/// use tower_quota::headers::{ResetUnit, VendorSet};
///
/// let minute = VendorSet::new("minute", "x-rate-limit-minute", "x-minute-requests-left")
///     .window(Duration::from_secs(60));
/// let openai = VendorSet::new("requests", "x-ratelimit-limit-requests", "x-ratelimit-remaining-requests")
///     .reset("x-ratelimit-reset-requests", ResetUnit::DurationString);
/// # let _ = (minute, openai);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VendorSet {
    name: String,
    /// The headers' names, parsed once (`None`: not a valid header name, so
    /// never in a response).
    limit: Option<HeaderName>,
    remaining: Option<HeaderName>,
    reset: Option<(Option<HeaderName>, ResetUnit)>,
    window: Option<Duration>,
}

/// `name` as a header name (any case).
fn header_name(name: &str) -> Option<HeaderName> {
    HeaderName::from_bytes(name.as_bytes()).ok()
}

impl VendorSet {
    /// A set called `name` (the [`WindowObservation::name`] it produces) whose limit
    /// and remaining count are in headers `limit` and `remaining` (any case).
    pub fn new(
        name: impl Into<String>,
        limit: impl AsRef<str>,
        remaining: impl AsRef<str>,
    ) -> VendorSet {
        VendorSet {
            name: name.into(),
            limit: header_name(limit.as_ref()),
            remaining: header_name(remaining.as_ref()),
            reset: None,
            window: None,
        }
    }

    /// Also read the window's reset from header `header`, written in `unit`.
    pub fn reset(mut self, header: impl AsRef<str>, unit: ResetUnit) -> VendorSet {
        self.reset = Some((header_name(header.as_ref()), unit));
        self
    }

    /// The window's length, which the vendor's headers do not say.
    pub fn window(mut self, window: Duration) -> VendorSet {
        self.window = Some(window);
        self
    }

    /// The set's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This set's window, if any of its headers was usable.
    pub(crate) fn read(
        &self,
        headers: &HeaderMap,
        received_at: SystemTime,
        server_now: SystemTime,
    ) -> Option<WindowObservation> {
        let w = WindowObservation {
            name: Some(self.name.clone()),
            window: self.window,
            limit: self
                .limit
                .as_ref()
                .and_then(|n| elements(headers, n).filter_map(count).min()),
            remaining: self
                .remaining
                .as_ref()
                .and_then(|n| elements(headers, n).filter_map(count).min()),
            reset: self.reset.as_ref().and_then(|(header, unit)| {
                // Not split on commas: an HTTP-date contains one.
                values(headers, header.as_ref()?)
                    .filter_map(|v| unit.read(v, received_at))
                    .reduce(|a, b| a.latest(b, server_now))
            }),
        };
        (!w.is_empty()).then_some(w)
    }
}
