//! The coordinator's HTTP endpoint (`suanli coordinator --http ADDR`, off by
//! default): `/metrics` (Prometheus text), `/healthz` (the process answers),
//! `/readyz` (the ledger takes a write and the QUIC endpoint is accepting)
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
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{get, post};

use crate::auth::now_ms;
use crate::state::Shared;

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

pub(crate) struct Http {
    pub(crate) shared: Arc<Shared>,
    pub(crate) sessions: session::Sessions,
    samples: Mutex<VecDeque<Sample>>,
}

impl Http {
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        samples.iter().copied().collect()
    }

    fn sample(&self) {
        let views = self.shared.node_views();
        let sample = Sample {
            at_ms: now_ms(),
            busy: views.iter().map(|v| u64::from(v.running)).sum(),
            slots: views.iter().map(|v| u64::from(v.allowed_slots)).sum(),
        };
        let mut samples = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        if samples.len() == UTILISATION_SAMPLES {
            samples.pop_front();
        }
        samples.push_back(sample);
    }
}

/// Binds `addr`, serves until the process ends; returns the bound address.
pub(crate) async fn serve(addr: SocketAddr, shared: Arc<Shared>) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let http = Arc::new(Http {
        sessions: session::Sessions::new(
            shared.config.dashboard_session_ttl,
            session::MAX_SESSIONS,
        ),
        shared,
        samples: Mutex::new(VecDeque::with_capacity(UTILISATION_SAMPLES)),
    });
    tokio::spawn(sample_utilisation(http.clone()));
    let app = router(http);
    tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(%err, "the HTTP endpoint stopped");
        }
    });
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
    let shared = http.shared.clone();
    let text =
        crate::server::blocking(move || shared.metrics.encode(&shared).map_err(|e| e.to_string()))
            .await
            .and_then(|r| r);
    match text {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")).into_response(),
    }
}

/// Ready when an (empty) ledger write commits in time and the QUIC endpoint
/// is open: what a load balancer or a service manager should wait for.
async fn ready(State(http): State<Arc<Http>>) -> (StatusCode, String) {
    let write = http.shared.writer.write(|_| Ok(()));
    match tokio::time::timeout(READY_WRITE_TIMEOUT, write).await {
        Ok(Ok(())) if http.shared.accepting() => {
            (StatusCode::OK, "ready: ledger writable, accepting\n".into())
        }
        Ok(Ok(())) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: shutting down\n".into(),
        ),
        Ok(Err(e)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: the ledger does not take writes: {e}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
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
