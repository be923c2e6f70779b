//! The server's lifecycle: bind a free loopback port, accept connections, stop.

use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use super::client::TestClient;
use super::config::Config;
use super::dialect::Dialect;
use super::handler::{handle, Shared};
use super::record::{Recorder, Stats};
use super::{dialect_campaign, dialect_crm, dialect_partner};

/// A rate-limited HTTP/1.1 API server on `127.0.0.1`, for tests.
///
/// Dropping it (or [`TestServer::shutdown`]) stops the accept loop and closes
/// every connection.
#[derive(Debug)]
pub struct TestServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl TestServer {
    /// Binds `127.0.0.1:0` and starts serving `config` on the current tokio
    /// runtime.
    ///
    /// # Errors
    ///
    /// When the loopback port cannot be bound.
    pub async fn start(config: Config) -> io::Result<TestServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared::new(config));
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(accept_loop(listener, shared.clone(), stopped));
        Ok(TestServer {
            addr,
            shared,
            stop: Some(stop),
            task,
        })
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The URL of `path` (which starts with `/`) on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// A client for this server.
    pub fn client(&self) -> TestClient {
        TestClient::new(self.base_url())
    }

    /// The record of everything the server decided.
    pub fn recorder(&self) -> Recorder {
        self.shared.recorder.clone()
    }

    /// The statistics of the run so far (see [`Recorder::stats`]).
    pub fn stats(&self) -> Stats {
        self.shared.recorder.stats()
    }

    /// The configuration the server runs.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// The route name a request would be charged to (`None` where the dialect
    /// answers 404), as it appears in [`Stats`] and [`TestServer::consume`].
    pub fn route_of(&self, method: &str, path: &str) -> Option<String> {
        let config = &self.shared.config;
        match config.dialect {
            Dialect::Campaign => Some(dialect_campaign::resolve(&config.routes, method, path)),
            Dialect::Partner => dialect_partner::resolve(method, path),
            Dialect::Crm => dialect_crm::resolve(config, method, path),
        }
    }

    /// The co-consumer: charges `units` to the buckets `caller` (a credential
    /// *name*, e.g. `"default"`) would be charged for `route`, as another client
    /// of the same allowance would, all or nothing. Returns whether it fitted;
    /// admitted units are recorded as [`Outcome::CoConsumed`](super::Outcome).
    pub fn consume(&self, caller: &str, route: &str, units: u64) -> bool {
        self.shared.consume(caller, route, units)
    }

    /// From now on, a `share` in `[0, 1]` of requests skips the limiter: it is
    /// served 200 without rate-limit headers and charged to nothing (seed 004's
    /// "backend unavailable"). Which requests skip is deterministic: of any
    /// first `n` metered requests, exactly `floor(n * share)` skip.
    pub fn set_fault(&self, share: f64) {
        self.shared.set_fault(share);
    }

    /// From now on, every response is held back by a real duration drawn
    /// (deterministically, from the request's sequence number) from `range`,
    /// after the limiter decided: responses come back out of order and their
    /// headers describe the moment of the decision, not of the response.
    pub fn set_latency(&self, range: Range<Duration>) {
        self.shared.set_latency(Some(range));
    }

    /// Removes the injected latency.
    pub fn clear_latency(&self) {
        self.shared.set_latency(None);
    }

    /// Stops accepting, closes every connection and waits for the accept loop.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stopped: oneshot::Receiver<()>,
) {
    // Connections live in the set, so ending this task (shutdown or abort)
    // drops and cancels every one of them.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else {
                    // Out of file descriptors or similar: let others finish.
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                connections.spawn(async move {
                    let first = Arc::new(std::sync::atomic::AtomicBool::new(true));
                    let service = service_fn(move |req| {
                        let cold = first.swap(false, std::sync::atomic::Ordering::Relaxed);
                        handle(shared.clone(), req, cold)
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
    connections.shutdown().await;
}
