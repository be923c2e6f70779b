//! One request a task wants to send, and the moment it really left.
//!
//! Latency is measured the same way for every contender: from the moment the
//! task wanted to send (before any limiter) to the moment the attempt that
//! got the final answer was handed to the HTTP client. The innermost service,
//! [`StampedClient`], records that moment in the request's extensions, so it
//! is the same instant whatever sits in front of it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::{Client, ResponseFuture};
use hyper_util::rt::TokioExecutor;
use tower::Service;
use tower_quota::clock::{Clock, Nanos};

use super::run_clock::RunClock;
use super::scenario::TaskSpec;

/// Any error of a run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Request bodies: every request of the workload is bodiless.
pub type Body = Empty<Bytes>;

/// Where [`StampedClient`] writes when a request left (nanoseconds on the
/// run's clock, plus one; zero: not yet).
#[derive(Clone, Debug, Default)]
pub struct Departure(Arc<AtomicU64>);

impl Departure {
    fn stamp(&self, at: Nanos) {
        self.0
            .store(at.as_u64().saturating_add(1), Ordering::Release);
    }

    /// When the latest attempt left, if any did.
    pub fn at(&self) -> Option<Nanos> {
        let raw = self.0.load(Ordering::Acquire);
        raw.checked_sub(1).map(Nanos::new)
    }
}

/// One request a task wants to send.
#[derive(Debug)]
pub struct Want {
    /// What and where.
    pub task: Arc<TaskSpec>,
    /// Its number within the task.
    pub n: u64,
    /// When the task wanted to send it.
    pub wanted: Nanos,
    /// When it (its last attempt) left.
    pub departure: Departure,
}

impl Want {
    /// The `n`-th request of `task`, wanted now.
    pub fn new(task: Arc<TaskSpec>, n: u64, clock: &RunClock) -> Want {
        Want {
            task,
            n,
            wanted: clock.now(),
            departure: Departure::default(),
        }
    }

    /// A new attempt: the HTTP request to `base`.
    ///
    /// # Errors
    ///
    /// A header the scenario wrote is not valid.
    pub fn request(&self, base: &str) -> Result<Request<Body>, BoxError> {
        let path = self.task.path.replace("{n}", &self.n.to_string());
        let mut builder = Request::builder()
            .method(self.task.method.clone())
            .uri(format!("{base}{path}"))
            .extension(self.departure.clone());
        for (name, value) in &self.task.headers {
            builder = builder.header(*name, value.as_str());
        }
        Ok(builder.body(Empty::new())?)
    }

    /// From wanting to send to the final attempt's departure.
    pub fn added_latency(&self) -> Option<Duration> {
        Some(self.departure.at()?.saturating_since(self.wanted))
    }
}

/// hyper-util's pooled client, recording when each request leaves.
#[derive(Clone, Debug)]
pub struct StampedClient {
    inner: Client<HttpConnector, Body>,
    clock: RunClock,
}

impl StampedClient {
    /// A new client (its own connection pool) on the run's clock.
    pub fn new(clock: RunClock) -> StampedClient {
        StampedClient {
            inner: Client::builder(TokioExecutor::new()).build_http(),
            clock,
        }
    }
}

impl Service<Request<Body>> for StampedClient {
    type Response = Response<Incoming>;
    type Error = hyper_util::client::legacy::Error;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<Body>) -> Self::Future {
        if let Some(departure) = req.extensions().get::<Departure>() {
            departure.stamp(self.clock.now());
        }
        self.inner.call(req)
    }
}

/// The server as the contenders without a layer reach it: the stamped client
/// and the server's base URL.
#[derive(Clone, Debug)]
pub struct Upstream {
    client: StampedClient,
    base: String,
}

impl Upstream {
    /// A new client for `base` on the run's clock.
    pub fn new(clock: RunClock, base: String) -> Upstream {
        Upstream {
            client: StampedClient::new(clock),
            base,
        }
    }

    /// One attempt of `want`, its body read.
    ///
    /// # Errors
    ///
    /// A transport failure.
    pub async fn attempt(&self, want: &Want) -> Result<Response<()>, BoxError> {
        let mut client = self.client.clone();
        let response = client.call(want.request(&self.base)?).await?;
        finish(response).await
    }
}

/// Reads a response's body to the end (so the connection is reused) and
/// returns it without the body.
///
/// # Errors
///
/// The body broke off.
pub async fn finish(response: Response<Incoming>) -> Result<Response<()>, BoxError> {
    let (parts, body) = response.into_parts();
    body.collect().await?;
    Ok(Response::from_parts(parts, ()))
}
