//! The IETF rate-limit fields, in both generations of the draft.
//!
//! - Current (draft-ietf-httpapi-ratelimit-headers-08 to -10):
//!   `RateLimit-Policy: "burst";q=100;w=60, "daily";q=1000;w=86400` declares named
//!   policies (quota `q`, window `w` seconds) and `RateLimit: "daily";r=1;t=36000`
//!   reports each one's remaining `r` and seconds to reset `t`; items are matched by
//!   name. Draft -07's dictionary `RateLimit: limit=100, remaining=50, reset=5` is
//!   read too.
//! - Older (draft -00 to -06, still the most deployed):
//!   `RateLimit-Limit: 100`, `RateLimit-Remaining: 50`, `RateLimit-Reset: 30`,
//!   with an optional `RateLimit-Policy: 10;w=1, 1000;w=3600` (or quota policies in
//!   `RateLimit-Limit` itself, `100, 100;w=60`). The current values describe the
//!   window closest to exhaustion; it gets its length when exactly one policy has
//!   its limit. `RateLimit-Reset` is read with [`ResetUnit::Auto`] because some
//!   servers (GitLab) send a Unix time there instead of the draft's delay.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderName};

use super::names::{
    RATELIMIT, RATELIMIT_LIMIT, RATELIMIT_POLICY, RATELIMIT_REMAINING, RATELIMIT_RESET,
};
use super::observation::{ResetAt, WindowObservation};
use super::reset::ResetUnit;
use super::structured::{self, Bare, Member};
use super::text::{count, decimal_nanos, duration_from_nanos, elements, values};

/// Reads the IETF fields into `out`.
pub(crate) fn read(
    headers: &HeaderMap,
    received_at: SystemTime,
    server_now: SystemTime,
    out: &mut Vec<WindowObservation>,
) {
    let policy_members = members(headers, &RATELIMIT_POLICY);
    let (named, mut anonymous): (Vec<_>, Vec<_>) = policy_members
        .iter()
        .partition(|m| m.value.name().is_some());

    // Current generation: named policies, matched with `RateLimit` items.
    let mut current: Vec<WindowObservation> = Vec::new();
    for m in named {
        let w = WindowObservation {
            name: m.value.name().map(str::to_owned),
            window: m.param("w").and_then(window),
            // `q` from draft -08 on; an intermediate revision named it `l`
            // (`RateLimit-Policy: default;l=100;w=10`).
            limit: m
                .param("q")
                .or_else(|| m.param("l"))
                .and_then(Bare::number)
                .and_then(count),
            ..WindowObservation::default()
        };
        upsert(&mut current, w, server_now);
    }
    let state = members(headers, &RATELIMIT);
    let mut draft07 = WindowObservation::default();
    for m in &state {
        if let Some(key) = m.key {
            // Draft -07: one dictionary describing one anonymous window.
            let number = m.value.number();
            match key.to_ascii_lowercase().as_str() {
                "limit" => draft07.limit = number.and_then(count),
                "remaining" => draft07.remaining = number.and_then(count),
                "reset" => draft07.reset = number.and_then(delay),
                _ => {}
            }
            continue;
        }
        let w = WindowObservation {
            name: m.value.name().map(str::to_owned),
            remaining: m.param("r").and_then(Bare::number).and_then(count),
            reset: m.param("t").and_then(Bare::number).and_then(delay),
            ..WindowObservation::default()
        };
        if w.name.is_some() {
            upsert(&mut current, w, server_now);
        }
    }
    out.extend(current);
    if !draft07.is_empty() {
        out.push(draft07);
    }

    // Older generation: separate fields for the window closest to exhaustion.
    let limit_members = members(headers, &RATELIMIT_LIMIT);
    let mut older = WindowObservation {
        limit: limit_members
            .iter()
            .filter(|m| m.params.is_empty())
            .filter_map(|m| m.value.number().and_then(count))
            .min(),
        remaining: elements(headers, &RATELIMIT_REMAINING)
            .filter_map(count)
            .min(),
        reset: elements(headers, &RATELIMIT_RESET)
            .filter_map(|v| ResetUnit::Auto.read(v, received_at))
            .reduce(|a, b| a.latest(b, server_now)),
        ..WindowObservation::default()
    };
    // Quota policies from `RateLimit-Limit` (drafts -00 to -02) count too.
    anonymous.extend(limit_members.iter().filter(|m| !m.params.is_empty()));
    let mut policies: Vec<WindowObservation> = anonymous
        .iter()
        .filter_map(|m| {
            Some(WindowObservation {
                limit: Some(m.value.number().and_then(count)?),
                window: m.param("w").or_else(|| m.param("window")).and_then(window),
                ..WindowObservation::default()
            })
        })
        .collect();
    if let Some(limit) = older.limit {
        let mut matching = policies.iter().filter(|p| p.limit == Some(limit));
        if let (Some(only), None) = (matching.next(), matching.next()) {
            older.window = only.window;
            policies.retain(|p| p.limit != Some(limit));
        }
    }
    if !older.is_empty() {
        out.push(older);
    }
    out.extend(policies);
}

/// Every member of every line of field `name`, bounded.
fn members<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Vec<Member<'a>> {
    let mut all = Vec::new();
    for v in values(headers, name) {
        let room = structured::MAX_MEMBERS.saturating_sub(all.len());
        all.extend(structured::parse(v).into_iter().take(room));
    }
    all
}

/// Adds `w` to `list`, merging it into the entry with the same name.
fn upsert(list: &mut Vec<WindowObservation>, w: WindowObservation, server_now: SystemTime) {
    match list.iter_mut().find(|x| x.name == w.name) {
        Some(existing) => existing.merge(w, server_now),
        None => list.push(w),
    }
}

/// A window length in seconds; zero and absurd lengths are absent.
fn window(v: &Bare<'_>) -> Option<Duration> {
    let d = duration_from_nanos(decimal_nanos(v.number()?)?)?;
    (!d.is_zero()).then_some(d)
}

/// A delay in seconds.
fn delay(v: &str) -> Option<ResetAt> {
    duration_from_nanos(decimal_nanos(v)?).map(ResetAt::After)
}
