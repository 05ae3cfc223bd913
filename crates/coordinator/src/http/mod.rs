//! The coordinator's HTTP endpoint (`suanli coordinator --http ADDR`, off by
//! default): `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (the ledger takes a write and no shutdown has begun)
//! and the web dashboard (`/`, `/jobs`, `/usage`, `/earnings`).
//!
//! The dashboard asks the same request handler the QUIC clients do
//! ([`crate::server::handle`]) as the logged-in token's role, so a page
//! shows exactly what `suanli usage` or `suanli jobs` would show that token,
//! under the same role table. Pages are rendered on the server (maud), plots
//! are inline SVG, there is no script, and a strict Content-Security-Policy
//! forbids loading anything from elsewhere.

mod pages;
mod session;
mod svg;
mod views;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use suanli_http::HttpLimits;
use suanli_ledger::{Ledger, LedgerError, LedgerStats};

use crate::auth::now_ms;
use crate::state::{Shared, SlotTotals};

/// Utilisation samples the dashboard keeps (a day at the default interval).
pub const UTILISATION_SAMPLES: usize = 1440;

/// Largest request body accepted (the login form).
const MAX_BODY_BYTES: usize = 16 << 10;

/// How long `/readyz` waits for its ledger write.
const READY_WRITE_TIMEOUT: Duration = Duration::from_secs(2);

/// Busy and total slots at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Sample {
    pub(crate) at_ms: u64,
    pub(crate) busy: u64,
    pub(crate) slots: u64,
}

/// How long a ledger snapshot (`Ledger::stats`, which scans whole tables)
/// serves scrapes and overviews before it is taken again. Concurrent
/// requests share one computation, so a flood of scrapes costs one scan
/// per period.
pub const SNAPSHOT_TTL: Duration = Duration::from_secs(5);

/// How long a readiness verdict (one ledger write) is reused.
const READY_TTL: Duration = Duration::from_secs(1);

type Cached<T> = tokio::sync::Mutex<Option<(Instant, T)>>;

pub(crate) struct Http {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sessions: session::Sessions,
    samples: Mutex<VecDeque<Sample>>,
    /// The endpoint's own read-only ledger connection.
    reader: Arc<Mutex<Ledger>>,
    snapshot: Cached<Arc<LedgerStats>>,
    ready: Cached<(StatusCode, String)>,
}

impl Http {
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().copied().collect()
    }

    fn sample(&self) {
        let totals = SlotTotals::of(&self.shared.node_views());
        let sample = Sample {
            at_ms: now_ms(),
            busy: totals.busy,
            slots: totals.slots,
        };
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == UTILISATION_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }

    /// Runs `read` on the endpoint's ledger connection on a blocking thread;
    /// a failure becomes an error page (details in the log only).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        read: impl FnOnce(&Ledger) -> Result<T, LedgerError> + Send + 'static,
    ) -> Result<T, axum::response::Response> {
        let reader = self.reader.clone();
        let result = crate::server::blocking(move || {
            let ledger = reader.lock().unwrap_or_else(|p| p.into_inner());
            read(&ledger).map_err(|e| e.to_string())
        })
        .await
        .and_then(|r| r);
        result.map_err(|e| pages::internal(&e))
    }

    /// The ledger snapshot, at most [`SNAPSHOT_TTL`] old.
    pub(crate) async fn stats(&self) -> Result<Arc<LedgerStats>, axum::response::Response> {
        let mut cached = self.snapshot.lock().await;
        if let Some((at, stats)) = cached.as_ref()
            && at.elapsed() < SNAPSHOT_TTL
        {
            return Ok(stats.clone());
        }
        let stats = Arc::new(self.read(|l| l.stats()).await?);
        *cached = Some((Instant::now(), stats.clone()));
        Ok(stats)
    }
}

/// Binds `addr` and serves until `stop` fires (the coordinator's shutdown
/// is done); returns the bound address.
pub(crate) async fn serve(
    addr: SocketAddr,
    shared: Arc<Shared>,
    reader: Ledger,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<SocketAddr> {
    let http = Arc::new(Http {
        sessions: session::Sessions::new(
            shared.config.dashboard_session_ttl,
            session::MAX_SESSIONS,
        ),
        shared,
        samples: Mutex::new(VecDeque::with_capacity(UTILISATION_SAMPLES)),
        reader: Arc::new(Mutex::new(reader)),
        snapshot: Cached::default(),
        ready: Cached::default(),
    });
    let sampler = tokio::spawn(sample_utilisation(http.clone()));
    let stopped = async move {
        // A dropped sender (the `Coordinator` dropped without a shutdown)
        // leaves the endpoint serving, like the QUIC side.
        if stop.await.is_err() {
            std::future::pending::<()>().await;
        }
        sampler.abort();
    };
    let bound = suanli_http::serve(addr, router(http), HttpLimits::default(), stopped).await?;
    tracing::info!(%bound, "HTTP endpoint: /metrics /healthz /readyz and the dashboard");
    Ok(bound)
}

fn router(http: Arc<Http>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/style.css", get(style))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/logout", post(pages::logout))
        .route("/", get(pages::overview))
        .route("/jobs", get(pages::jobs))
        .route("/jobs/{id}", get(pages::job))
        .route("/usage", get(pages::usage))
        .route("/earnings", get(pages::earnings))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(http)
}

/// Nothing on a page may come from elsewhere, run script, or be framed.
async fn security_headers(mut response: axum::response::Response) -> axum::response::Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn sample_utilisation(http: Arc<Http>) {
    let mut every = tokio::time::interval(
        http.shared
            .config
            .utilisation_interval
            .max(Duration::from_millis(100)),
    );
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        http.sample();
    }
}

async fn metrics(State(http): State<Arc<Http>>) -> axum::response::Response {
    match http.stats().await {
        Ok(stats) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            http.shared.metrics.encode(&http.shared, &stats),
        )
            .into_response(),
        Err(response) => response,
    }
}

/// Ready when an (empty) ledger write commits in time and no shutdown has
/// begun: what a load balancer or a service manager should wait for. The
/// verdict is reused for [`READY_TTL`], so probes cannot fill the writer's
/// queue.
async fn ready(State(http): State<Arc<Http>>) -> (StatusCode, String) {
    let mut cached = http.ready.lock().await;
    if let Some((at, verdict)) = cached.as_ref()
        && at.elapsed() < READY_TTL
    {
        return verdict.clone();
    }
    let verdict = readiness(&http.shared).await;
    *cached = Some((Instant::now(), verdict.clone()));
    verdict
}

async fn readiness(shared: &Shared) -> (StatusCode, String) {
    let unavailable = StatusCode::SERVICE_UNAVAILABLE;
    if shared.lifecycle.stopping() {
        return (unavailable, "not ready: shutting down\n".into());
    }
    let write = shared.writer.write(|_| Ok(()));
    match tokio::time::timeout(READY_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) => (StatusCode::OK, "ready: ledger writable, accepting\n".into()),
        Ok(Err(e)) => (
            unavailable,
            format!("not ready: the ledger does not take writes: {e}\n"),
        ),
        Err(_) => (
            unavailable,
            format!("not ready: a ledger write took over {READY_WRITE_TIMEOUT:?}\n"),
        ),
    }
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("style.css"),
    )
}
