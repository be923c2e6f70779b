//! Scopes keyed per request: an account, an API key.
//!
//! Seed 002 charges every request to a global per-route ceiling *and* a
//! per-account ceiling; seed 004 limits per API key. A [`KeySource`] says where a
//! request's key is (a header, or a closure), and the scope keeps one bucket per
//! key, created on first use. Keys are hashed with a per-process random seed as
//! soon as they are read: the scope never holds them in clear, and bucket labels
//! show only the scope's name and a short fingerprint.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use http::HeaderName;

use crate::clock::Nanos;
use crate::ledger::{Bucket, KeyedBuckets, Refusal};
use crate::message::HttpRequest;
use crate::quota::Limits;

type KeyFn = dyn Fn(&dyn HttpRequest) -> Option<String> + Send + Sync;

/// Where a request's key for a scope comes from.
#[derive(Clone)]
pub enum KeySource {
    /// The value of a request header (e.g. `x-api-key`, `x-account-id`).
    Header(HeaderName),
    /// A closure over the request.
    With(Arc<KeyFn>),
}

impl KeySource {
    /// The value of header `name`; an invalid name matches nothing.
    pub fn header(name: &str) -> KeySource {
        match HeaderName::from_bytes(name.as_bytes()) {
            Ok(h) => KeySource::Header(h),
            Err(_) => KeySource::With(Arc::new(|_| None)),
        }
    }

    /// The key `f` returns for the request (`None`: the request is not in the scope).
    pub fn with(
        f: impl Fn(&dyn HttpRequest) -> Option<String> + Send + Sync + 'static,
    ) -> KeySource {
        KeySource::With(Arc::new(f))
    }
}

impl fmt::Debug for KeySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySource::Header(h) => write!(f, "Header({h})"),
            KeySource::With(_) => f.write_str("With(..)"),
        }
    }
}

/// A scope of buckets, one per key.
pub(crate) struct KeyScope {
    source: KeySource,
    hasher: foldhash::quality::RandomState,
    buckets: KeyedBuckets<u64>,
    name: &'static str,
}

impl fmt::Debug for KeyScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyScope")
            .field("source", &self.source)
            .field("buckets", &self.buckets)
            .finish()
    }
}

impl KeyScope {
    pub(crate) fn new(
        name: &'static str,
        source: KeySource,
        limits: Limits,
        cap: usize,
    ) -> KeyScope {
        KeyScope {
            name,
            source,
            hasher: foldhash::quality::RandomState::default(),
            buckets: KeyedBuckets::new(name, limits, cap),
        }
    }

    /// The bucket of `req`'s key, marked in flight for the caller to unmark
    /// (`KeyedBuckets::bucket_in_flight`), or `None` if the request has no
    /// key here.
    pub(crate) fn bucket_marked(
        &self,
        req: &dyn HttpRequest,
        now: Nanos,
    ) -> Result<Option<Arc<Bucket>>, Refusal> {
        let key = match &self.source {
            KeySource::Header(name) => match req.headers().get(name) {
                Some(v) => self.hasher.hash_one(v.as_bytes()),
                None => return Ok(None),
            },
            KeySource::With(f) => match f(req) {
                Some(k) => self.hasher.hash_one(k.as_bytes()),
                None => return Ok(None),
            },
        };
        self.buckets.bucket_marked(&key, now).map(Some)
    }

    /// The raw key of `req` in this scope, for a shared store to name its
    /// bucket (hashed there, never kept).
    pub(crate) fn raw_key<'r>(
        &self,
        req: &'r dyn HttpRequest,
    ) -> Option<std::borrow::Cow<'r, [u8]>> {
        match &self.source {
            KeySource::Header(name) => req
                .headers()
                .get(name)
                .map(|v| std::borrow::Cow::Borrowed(v.as_bytes())),
            KeySource::With(f) => f(req).map(|k| std::borrow::Cow::Owned(k.into_bytes())),
        }
    }

    /// The scope's name.
    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The scope's buckets by key (for seeding their limits).
    pub(crate) fn keyed(&self) -> &KeyedBuckets<u64> {
        &self.buckets
    }

    /// Every bucket of the scope (for reports).
    pub(crate) fn buckets(&self) -> Vec<Arc<Bucket>> {
        self.buckets.buckets()
    }
}
