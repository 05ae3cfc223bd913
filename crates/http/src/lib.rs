//! HTTP serving for the coordinator's and the node's endpoints (`--http
//! ADDR`), bounded the way the QUIC side is: anyone who can reach the port
//! can open connections, so their number, how long a request may take to
//! arrive and to be answered, and how many requests run at once are all
//! capped ([`HttpLimits`]). `axum::serve` sets none of these (hyper's
//! header timeout needs a timer it does not give), hence this loop.
//!
//! Each connection carries one request (no keep-alive): a browser or a
//! Prometheus scraper opens another, and a slow or idle peer can hold a
//! connection only until its deadline.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// The bounds of one HTTP listener.
#[derive(Clone, Copy, Debug)]
pub struct HttpLimits {
    /// Connections open at once; more are closed on accept.
    pub max_connections: usize,
    /// Requests being answered at once; more get 503 at once.
    pub max_in_flight: usize,
    /// A request's headers must arrive within this.
    pub header_timeout: Duration,
    /// A connection (its one request and answer) ends after this.
    pub connection_timeout: Duration,
}

/// Connections open at once by default.
pub const MAX_CONNECTIONS: usize = 256;
/// Requests answered at once by default.
pub const MAX_IN_FLIGHT: usize = 32;
/// Default deadline for a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default deadline for a whole connection.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(60);

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: MAX_CONNECTIONS,
            max_in_flight: MAX_IN_FLIGHT,
            header_timeout: HEADER_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
        }
    }
}

/// Binds `addr` and serves `app` within `limits` until `stop` completes;
/// returns the bound address.
pub async fn serve(
    addr: SocketAddr,
    app: Router,
    limits: HttpLimits,
    stop: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let app = limit_in_flight(app, limits.max_in_flight);
    tokio::spawn(async move {
        tokio::select! {
            () = accept_loop(listener, app, limits) => {}
            () = stop => tracing::info!(%bound, "HTTP endpoint stopped"),
        }
    });
    Ok(bound)
}

async fn accept_loop(listener: TcpListener, app: Router, limits: HttpLimits) {
    let open = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of descriptors and the like: pause rather than spin.
                tracing::warn!(%err, "HTTP accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            tracing::debug!("HTTP connection limit reached; closing a new connection");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_timeout)
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            match tokio::time::timeout(limits.connection_timeout, connection).await {
                Ok(Err(err)) => tracing::debug!(%err, "HTTP connection ended"),
                Err(_) => tracing::debug!("HTTP connection past its deadline; closed"),
                Ok(Ok(())) => {}
            }
            drop(permit);
        });
    }
}

/// Answers 503 at once when `max` requests are already being answered, so
/// a flood queues nowhere (not on the ledger, not on blocking threads).
fn limit_in_flight(app: Router, max: usize) -> Router {
    let permits = Arc::new(Semaphore::new(max.max(1)));
    app.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| {
            let permits = permits.clone();
            async move {
                match permits.try_acquire_owned() {
                    Ok(_permit) => next.run(request).await,
                    Err(_) => busy(),
                }
            }
        },
    ))
}

fn busy() -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [("retry-after", "1")],
        "busy: too many requests in flight; retry shortly\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::Instant;

    use axum::routing::get;

    use super::*;

    fn limits(header_timeout: Duration) -> HttpLimits {
        HttpLimits {
            max_connections: 2,
            max_in_flight: 1,
            header_timeout,
            connection_timeout: Duration::from_secs(10),
        }
    }

    async fn start(header_timeout: Duration) -> SocketAddr {
        let app = Router::new().route("/", get(|| async { "hi" })).route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(2)).await;
                "slow"
            }),
        );
        let limits = limits(header_timeout);
        serve(
            ([127, 0, 0, 1], 0).into(),
            app,
            limits,
            std::future::pending(),
        )
        .await
        .unwrap()
    }

    /// The status line of `GET path`, or "" when the server closed the
    /// connection without answering (the write may then fail too).
    fn get_status(addr: SocketAddr, path: &str) -> String {
        let mut s = TcpStream::connect(addr).unwrap();
        if write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").is_err() {
            return String::new();
        }
        let mut out = String::new();
        let _ = s.read_to_string(&mut out);
        out.lines().next().unwrap_or("").to_owned()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_silent_connection_is_closed_after_the_header_timeout() {
        let addr = start(Duration::from_millis(300)).await;
        let started = Instant::now();
        let closed = tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(b"GET / HTTP/1.1\r\nX: ").unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut buf = Vec::new();
            s.read_to_end(&mut buf).is_ok()
        })
        .await
        .unwrap();
        assert!(closed, "the server ended the connection");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
        let ok = tokio::task::spawn_blocking(move || get_status(addr, "/"))
            .await
            .unwrap();
        assert!(ok.contains("200"), "{ok}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_past_the_in_flight_cap_get_503_and_connections_past_the_cap_are_closed() {
        let addr = start(Duration::from_secs(5)).await;
        let slow = tokio::task::spawn_blocking(move || get_status(addr, "/slow"));
        tokio::time::sleep(Duration::from_millis(500)).await;
        let busy = tokio::task::spawn_blocking(move || get_status(addr, "/"))
            .await
            .unwrap();
        assert!(busy.contains("503"), "{busy}");
        assert!(slow.await.unwrap().contains("200"));
        // Two idle connections take both places; a third is closed at once.
        let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let third = tokio::task::spawn_blocking(move || get_status(addr, "/"))
            .await
            .unwrap();
        assert_eq!(third, "", "closed without an answer");
        drop(held);
    }
}
