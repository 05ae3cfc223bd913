//! The node's HTTP endpoint (`suanli node --http ADDR`, off by default):
//! `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (connected to the coordinator, and every slot has a live
//! worker). Read-only and without secrets, so it has no authentication:
//! bind it to an address only the provider's monitoring reaches.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::Runtime;

/// Binds `addr` and serves until the process ends, within the default
/// [`suanli_http::HttpLimits`]; returns the bound address.
pub(crate) async fn serve(addr: SocketAddr, rt: Arc<Runtime>) -> std::io::Result<SocketAddr> {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .with_state(rt);
    let limits = suanli_http::HttpLimits::default();
    let bound = suanli_http::serve(addr, app, limits, std::future::pending()).await?;
    tracing::info!(%bound, "HTTP endpoint: /metrics /healthz /readyz");
    Ok(bound)
}

async fn metrics(State(rt): State<Arc<Runtime>>) -> impl IntoResponse {
    rt.metrics.blob_cache_bytes.set(clamp(rt.blobs.bytes()));
    let (busy, _, _) = rt.workers.counts();
    rt.metrics.slots_busy.set(clamp(busy as u64));
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        rt.metrics.encode(),
    )
}

async fn ready(State(rt): State<Arc<Runtime>>) -> (StatusCode, String) {
    let connected = rt.link().is_some();
    let (_, live, slots) = rt.workers.counts();
    match (connected, live == slots) {
        (true, true) => (
            StatusCode::OK,
            format!("ready: connected, {live} of {slots} slots live\n"),
        ),
        _ => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "not ready: {}, {live} of {slots} slots live\n",
                if connected {
                    "connected"
                } else {
                    "not connected to the coordinator"
                }
            ),
        ),
    }
}

fn clamp(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
