//! The quickstart's run, without the printing: a seed-002 partner API on
//! loopback, a client that learns every limit from the API's usage endpoint,
//! and many tasks for several accounts reading through the layer.
//!
//! `examples/quickstart.rs` prints what this returns; `tests/quickstart_seed002.rs`
//! runs it for a shorter time and asserts the promise: no 429, the shared
//! ceiling used in full.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tower::{Service, ServiceBuilder, ServiceExt};
use tower_quota::clock::{Clock, Nanos, TokioClock};
use tower_quota::ledger::MaxWait;
use tower_quota::quota::{Limits, Quota};
use tower_quota::route::MethodResource;
use tower_quota::scope::KeySource;
use tower_quota::seed::{RefreshOutcome, Refresher, UsageEndpoint};
use tower_quota::testkit::{Config, Outcome, TestServer, DEFAULT_SYSTEM, DEFAULT_SYSTEM_KEY};
use tower_quota::{Limiter, OtherRoutes, QuotaLayer, SeedReport};

/// Any error of the run.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The accounts that send traffic. Together they want more than the ceiling
/// they share (8 x 25 > 100), so that ceiling binds.
pub const ACCOUNTS: [&str; 8] = [
    "acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka",
];

/// Tasks per account, each sending one request after the other.
pub const TASKS_PER_ACCOUNT: usize = 3;

/// The account the usage endpoint is polled with; it sends no other traffic.
pub const OPS_ACCOUNT: &str = "ops";

/// The server's route all traffic goes to, and its global ceiling's bucket.
pub const ROUTE: &str = "GET.people";

/// How long and how compressed a run is.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    /// API seconds per real second (60: an API minute lasts one second).
    pub scale: f64,
    /// API minutes of traffic.
    pub minutes: u32,
    /// How much later than the server's window the client lets units free
    /// again, for requests that reach the server late (see `LimiterBuilder::margin`).
    pub margin: Duration,
}

impl Settings {
    /// One API minute in real time.
    pub fn window(&self) -> Duration {
        Duration::from_secs_f64(60.0 / self.scale)
    }
}

/// What a run did.
pub struct RunReport {
    /// What the first poll of the usage endpoint applied.
    pub seed: SeedReport,
    /// Responses the tasks received.
    pub sent: u64,
    /// 429s among them.
    pub limited: u64,
    /// 429s the server answered (its own record).
    pub rejected: u64,
    /// Requests the server admitted in each of the run's `minutes` windows.
    pub admitted_per_minute: Vec<u64>,
    /// The global ceiling of `GET.people` per window (as the server enforces it).
    pub ceiling: u64,
    /// The per-account ceiling per window.
    pub account_ceiling: u64,
    /// Requests the server admitted per account during the run.
    pub admitted_per_account: BTreeMap<String, u64>,
    /// Real time the traffic ran.
    pub elapsed: Duration,
    /// Polls of the usage endpoint, the first included.
    pub polls: u64,
    /// The client's limiter (for its usage report).
    pub limiter: Arc<Limiter<TokioClock>>,
    /// The server (still running; shut it down when done).
    pub server: TestServer,
}

impl RunReport {
    /// Requests the server admitted during the run.
    pub fn admitted(&self) -> u64 {
        self.admitted_per_minute.iter().sum()
    }

    /// The most the shared ceiling allowed during the run: its limit times
    /// the number of windows (no schedule fits more in consecutive windows).
    pub fn allowance(&self) -> u64 {
        self.ceiling * self.admitted_per_minute.len() as u64
    }

    /// Admitted requests over the allowance of the shared ceiling.
    pub fn utilisation(&self) -> f64 {
        self.admitted() as f64 / self.allowance().max(1) as f64
    }
}

type Body = Empty<Bytes>;

/// Starts the server, seeds the client from the usage endpoint, drives the
/// traffic, and reports.
///
/// # Errors
///
/// When the server cannot start, the usage endpoint cannot be read, or a
/// request fails in transport.
pub async fn run(settings: &Settings) -> Result<RunReport, BoxError> {
    let clock = TokioClock::new();
    let window = settings.window();
    let mut config = Config::seed002()
        .time_scale(settings.scale)
        .clock(clock.clone())
        .api_key(OPS_ACCOUNT, key_of(OPS_ACCOUNT));
    for name in ACCOUNTS {
        config = config.api_key(name, key_of(name));
    }
    let server = TestServer::start(config).await?;

    // All the client knows beforehand is the partner's documentation: every
    // route has a ceiling across all accounts and one per account, per minute.
    // How many, the usage endpoint says; until it does, one: the safe side.
    // Buckets keep exact history for the limit they are built with: reserve
    // room for the limits the server will state (up to 1000 per window).
    let unknown: Limits = Quota::new(1, window).ok_or("a zero window")?.into();
    let unknown = unknown.capacity(1000);
    let limiter = Limiter::builder()
        .clock(clock.clone())
        .routes(
            MethodResource::seed002(),
            |_| None,
            OtherRoutes::Each {
                limits: unknown.clone(),
                cap: 1000,
            },
        )
        .per_account(KeySource::header("x-api-key"), unknown, 10_000)
        .max_wait(MaxWait::Forever)
        .margin(settings.margin)
        .build();
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let svc = ServiceBuilder::new()
        .layer(QuotaLayer::new(limiter.clone()))
        .service(client);

    // The usage endpoint, polled through the same stack, learns the ceilings.
    let endpoint = UsageEndpoint::partner(
        &server.base_url(),
        DEFAULT_SYSTEM,
        DEFAULT_SYSTEM_KEY,
        &key_of(OPS_ACCOUNT),
    )?
    .window(window);
    let refresher = Refresher::new(limiter.clone(), svc.clone(), endpoint).min_interval(window);
    let seed = match refresher.refresh_once().await? {
        RefreshOutcome::Applied(report) => report,
        RefreshOutcome::TooSoon { .. } => return Err("the first poll cannot be too soon".into()),
    };
    // ... and keeps polling once an API minute while the traffic runs.
    let polling = refresher.spawn();

    let started = clock.now();
    let deadline = tokio::time::Instant::now() + window * settings.minutes;
    let mut tasks = Vec::new();
    for account in ACCOUNTS {
        for _ in 0..TASKS_PER_ACCOUNT {
            let (svc, base) = (svc.clone(), server.base_url());
            tasks.push(tokio::spawn(read_people(svc, base, account, deadline)));
        }
    }
    let (mut sent, mut limited) = (0, 0);
    for task in tasks {
        let (s, l) = task.await??;
        sent += s;
        limited += l;
    }
    let elapsed = clock.now().saturating_since(started);
    let polls = polling.status().polls;
    drop(polling);

    let ceiling = global_ceiling(&server);
    let per_account = account_ceiling(&server);
    let (admitted_per_minute, admitted_per_account) =
        admitted_in(&server, started, window, settings.minutes);
    Ok(RunReport {
        seed,
        sent,
        limited,
        rejected: server.stats().rejected,
        admitted_per_minute,
        ceiling,
        account_ceiling: per_account,
        admitted_per_account,
        elapsed,
        polls,
        limiter,
        server,
    })
}

/// The secret an account sends in `X-Api-Key`.
fn key_of(account: &str) -> String {
    format!("key-{account}")
}

/// One task: `GET /people/{n}` as fast as the layer lets it, until
/// `deadline` (a request still waiting in the layer then is dropped, which
/// gives its place back). Returns the responses it received and how many of
/// them were 429s.
async fn read_people<S>(
    mut svc: S,
    base: String,
    account: &'static str,
    deadline: tokio::time::Instant,
) -> Result<(u64, u64), BoxError>
where
    S: Service<http::Request<Body>, Response = http::Response<Incoming>>,
    S::Error: Into<BoxError>,
{
    let (mut sent, mut limited) = (0, 0);
    while tokio::time::Instant::now() < deadline {
        let req = http::Request::get(format!("{base}/people/{}", sent + 1))
            .header("x-system", DEFAULT_SYSTEM)
            .header("x-system-key", DEFAULT_SYSTEM_KEY)
            .header("x-api-key", key_of(account))
            .body(Empty::new())?;
        let response = tokio::time::timeout_at(deadline, async {
            svc.ready().await.map_err(Into::into)?;
            svc.call(req).await.map_err(Into::into)
        });
        let Ok(response) = response.await else { break };
        sent += 1;
        if response?.status() == http::StatusCode::TOO_MANY_REQUESTS {
            limited += 1;
        }
    }
    Ok((sent, limited))
}

/// The server's global ceiling of `GET.people` per window.
fn global_ceiling(server: &TestServer) -> u64 {
    ceiling_of(server, "across_all_accounts")
}

/// The server's per-account ceiling per window.
fn account_ceiling(server: &TestServer) -> u64 {
    ceiling_of(server, "per_account")
}

/// The server's ceiling of `GET.people` per window in `scope`.
fn ceiling_of(server: &TestServer, scope: &str) -> u64 {
    let scopes = server.config().scopes();
    let windows = scopes.iter().find(|s| s.name == scope);
    windows
        .and_then(|s| s.windows_for(ROUTE).first())
        .map_or(0, |w| w.limit)
}

/// Requests the server admitted in each of the `windows` windows from
/// `start`, and per account over all of them.
fn admitted_in(
    server: &TestServer,
    start: Nanos,
    window: Duration,
    windows: u32,
) -> (Vec<u64>, BTreeMap<String, u64>) {
    let mut per_window = vec![0; windows as usize];
    let mut per_account: BTreeMap<String, u64> = BTreeMap::new();
    for e in server.recorder().events() {
        if e.outcome != Outcome::Admitted || e.at < start {
            continue;
        }
        let index = e.at.saturating_since(start).as_nanos() / window.as_nanos().max(1);
        if let Some(count) = usize::try_from(index)
            .ok()
            .and_then(|i| per_window.get_mut(i))
        {
            *count += 1;
            *per_account.entry(e.caller).or_default() += 1;
        }
    }
    (per_window, per_account)
}
