//! What a response teaches the limiter (DESIGN.md, contract 5).
//!
//! The server is the authority, but only ever to tighten what the client
//! believes, except for an explicit new limit:
//! - `limit - remaining` is what the server had counted when it answered a
//!   request that left at `sent`. The bucket is raised to at least that many
//!   units in the window ending at `sent`. Requests sent after it (still in
//!   flight when the server counted) stay counted on top: the safe side.
//! - A new `limit` replaces ours, but only from the newest response seen:
//!   responses come back out of order.
//! - A rate-limited status blocks the bucket until `Retry-After` or the reset.
//!   If the headers still showed room, the window's limit drops to what we had
//!   actually sent: the server has a limit we did not know.
//! - Absolute reset times are taken on the server's clock, shifted by its offset
//!   from ours (estimated from `Date`). Resets are clamped to the window: a wild
//!   value blocks for at most a window.
//! - Missing or malformed headers change nothing.

use std::num::NonZeroU32;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};

use crate::clock::{Clock, ClockOffset, Nanos};
use crate::headers::{Observation, ResetAt, WindowObservation};
use crate::ledger::{Bucket, WindowCount};
use crate::limiter::{Charged, Limiter};
use crate::store::Correction;

/// `Date` has one-second resolution: offsets within it are noise.
const DATE_RESOLUTION_MS: i64 = 2_000;

impl<C: Clock> Limiter<C> {
    /// A request charged to `charged` left at `sent` and its response (or
    /// transport error) came back at `received`: a slow one widens the
    /// windows of its buckets (see `LimiterBuilder::hold_until_response`).
    pub(crate) fn note_latency(&self, charged: &Charged, sent: Nanos, received: Nanos) {
        if !self.hold_until_response {
            return;
        }
        let took = received.saturating_since(sent);
        for b in &charged.buckets {
            for (window, late) in b.lateness(took) {
                if !b.is_widened(window, received) {
                    tracing::debug!(bucket = %b.label(), window, ?late, "a response came back later than the margin: holding the window open");
                }
                b.widen(window, late, received);
                if self.shared.is_some() && b.late_is_news(window, late, received) {
                    self.share(charged, b, Correction::Late { window, late });
                }
            }
        }
    }

    /// Learns from the response to a request that left at `sent`.
    pub(crate) fn observe(
        &self,
        charged: &Charged,
        sent: Nanos,
        rules: usize,
        status: StatusCode,
        headers: &HeaderMap,
    ) {
        let received = self.clock.now();
        self.note_latency(charged, sent, received);
        let wall = self.clock.to_wall(received);
        self.history
            .record(wall, self.rate_limited.contains(&status));
        let obs = self.rules_at(rules).parse(headers, wall);
        self.learn_offset(&obs, wall);
        let limited = self.rate_limited.contains(&status);
        // Which bucket each observation speaks of: a server that charges several
        // scopes reports one of them (seed 002's reports the tightest).
        let mut touched: Vec<(&Arc<Bucket>, usize, bool)> = Vec::new();
        let mut resets = Vec::new();
        let mut counts: Vec<(&Arc<Bucket>, Vec<WindowCount>)> = Vec::new();
        for w in &obs.windows {
            let Some((bucket, index)) = self.bucket_of(charged, w) else {
                continue;
            };
            let length = bucket.window_length(index).unwrap_or(Duration::ZERO);
            let reset = w
                .reset
                .map(|r| self.clamp(self.instant_of(r, received), received, length));
            if let Some(r) = reset {
                resets.push(r);
            }
            if let Some(limit) = w
                .limit
                .and_then(|l| u32::try_from(l).ok())
                .and_then(NonZeroU32::new)
            {
                // A new limit from the server, within what the bucket was built
                // for: a huge or hostile value never loosens it further.
                // The ceiling is what the bucket was built for, or its current
                // limit if a seed already raised it past that: a server that
                // repeats that limit must not lower it.
                let ceiling = bucket.capacity(index).max(bucket.limit(index));
                let limit = match ceiling.and_then(NonZeroU32::new) {
                    Some(ceiling) => limit.min(ceiling),
                    None => limit,
                };
                if bucket.limit(index) != Some(limit.get()) && bucket.note_observation(sent) {
                    tracing::info!(bucket = %bucket.label(), window = ?length, limit = limit.get(), "server announced a new limit");
                    bucket.set_limit(index, limit);
                    self.share(
                        charged,
                        bucket,
                        Correction::Limit {
                            window: index,
                            limit: limit.get(),
                        },
                    );
                }
            }
            let mut room = false;
            if let (Some(limit), Some(remaining)) = (w.limit, w.remaining) {
                let used = limit.saturating_sub(remaining.min(limit));
                let count = WindowCount {
                    window: index,
                    used,
                    frees_at: reset,
                };
                match counts.iter_mut().find(|(b, _)| Arc::ptr_eq(b, bucket)) {
                    Some((_, c)) => c.push(count),
                    None => counts.push((bucket, vec![count])),
                }
                room = remaining > 0;
            }
            touched.push((bucket, index, room));
        }
        // A bucket's windows together: units a long window counts beyond a
        // shorter one's left before it, and must not fill it.
        for (bucket, c) in counts {
            if let (Some(store), Some(shared)) = (&self.shared, charged.shared_of(bucket)) {
                let used: Vec<(usize, u64)> = c.iter().map(|c| (c.window, c.used)).collect();
                store.correct_used(shared, &used);
            }
            let added = bucket.raise_used_together(&c, sent, received);
            if added > 0 {
                crate::metrics::corrected(bucket.label(), added);
                tracing::debug!(bucket = %bucket.label(), added, "server counted more than we did");
            }
        }
        if !limited {
            return;
        }
        let blocked: Vec<&Arc<Bucket>> = if touched.is_empty() {
            // No header said which bucket: the configured target, or, for a
            // request with no bucket of that scope (only an API key's, say),
            // the first it was charged to. A 429 always blocks something.
            charged.by_preference(self.target).take(1).collect()
        } else {
            touched.iter().map(|(b, _, _)| *b).collect()
        };
        for bucket in blocked {
            let longest = (0..bucket.window_count())
                .filter_map(|i| bucket.window_length(i))
                .max()
                .unwrap_or(Duration::ZERO)
                .max(Duration::from_secs(3600));
            let until = obs
                .retry_after
                .map(|r| self.clamp(self.instant_of(r, received), received, longest))
                .into_iter()
                .chain(resets.iter().copied())
                .max()
                .unwrap_or(received + self.block_without_headers);
            bucket.block_until(until);
            let duration = until.saturating_since(received);
            self.share(charged, bucket, Correction::Block { duration });
            crate::metrics::rate_limited(bucket.label());
            tracing::warn!(
                bucket = %bucket.label(),
                %status,
                blocked_for = ?until.saturating_since(received),
                "rate limited by the server"
            );
        }
        for (bucket, index, room) in touched {
            if !room {
                continue;
            }
            // The headers said there was room, yet the server refused: it
            // enforces less than we believed. Believe what it accepted.
            let used = bucket.state(sent).windows.get(index).map_or(0, |w| w.used);
            let tighter = u32::try_from(used).unwrap_or(u32::MAX).max(1);
            if bucket.limit(index).is_some_and(|l| l > tighter) {
                if let Some(limit) = NonZeroU32::new(tighter) {
                    tracing::warn!(bucket = %bucket.label(), limit = tighter, "a 429 with room left: tightening the limit");
                    bucket.set_limit(index, limit);
                }
            }
        }
    }

    /// Hands a correction of `bucket` to the shared store, if any.
    fn share(&self, charged: &Charged, bucket: &Arc<Bucket>, c: Correction) {
        if let (Some(store), Some(shared)) = (&self.shared, charged.shared_of(bucket)) {
            store.correct(shared, c);
        }
    }

    /// The charged bucket and window an observation speaks of: by its declared
    /// length, else by its limit (the configured target first); a limit matching
    /// no window is taken as a new limit only when the request was charged to a
    /// single one-window bucket.
    fn bucket_of<'c>(
        &self,
        charged: &'c Charged,
        w: &WindowObservation,
    ) -> Option<(&'c Arc<Bucket>, usize)> {
        let find = |pred: &dyn Fn(&Bucket, usize) -> bool| {
            charged
                .by_preference(self.target)
                .find_map(|b| (0..b.window_count()).find(|&i| pred(b, i)).map(|i| (b, i)))
        };
        if let Some(len) = w.window {
            // Buckets keep their windows lengthened by the margin.
            return find(&|b, i| b.window_of_length(len) == Some(i));
        }
        if let Some(limit) = w.limit {
            if let Some(found) = find(&|b, i| b.limit(i).map(u64::from) == Some(limit)) {
                return Some(found);
            }
        }
        match charged.buckets.as_slice() {
            [only] if only.window_count() == 1 => Some((only, 0)),
            _ => None,
        }
    }

    fn learn_offset(&self, obs: &Observation, wall: SystemTime) {
        let Some(date) = obs.date else { return };
        let ahead_ms = match date.duration_since(wall) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX),
        };
        let ahead_ms = if ahead_ms.abs() < DATE_RESOLUTION_MS {
            0
        } else {
            ahead_ms
        };
        self.offset_ms.store(ahead_ms, Ordering::Relaxed);
    }

    fn offset(&self) -> ClockOffset {
        let ms = self.offset_ms.load(Ordering::Relaxed);
        let by = Duration::from_millis(ms.unsigned_abs());
        if ms >= 0 {
            ClockOffset::ahead(by)
        } else {
            ClockOffset::behind(by)
        }
    }

    fn instant_of(&self, r: ResetAt, received: Nanos) -> Nanos {
        match r {
            ResetAt::After(d) => received + d,
            ResetAt::At(t) => self.clock.monotonic_at(t, self.offset()),
        }
    }

    /// A reset between now and one window from now.
    fn clamp(&self, t: Nanos, received: Nanos, window: Duration) -> Nanos {
        t.max(received).min(received + window)
    }
}
