//! The coordinator: authenticates tenants, admins and provider nodes over
//! QUIC, keeps the job queue and every attempt in the ledger (SQLite),
//! schedules queued jobs fairly onto live nodes whose GPU fits, and stores
//! blobs (modules, inputs, outputs) by content hash.
//!
//! **Architecture invariants:** the coordinator never runs jobs; a request is
//! acknowledged only after the ledger committed it; a tenant sees only its own
//! jobs, logs and blobs (another tenant's job is "not found", not "forbidden").

mod auth;
mod backup;
mod blobs;
mod connections;
mod data_dir;
mod gc;
mod http;
mod lifecycle;
mod metrics;
mod node_session;
mod scheduler;
mod server;
mod state;
mod storage;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

pub use data_dir::ClientFile;
pub use lifecycle::ShutdownReport;

use crate::state::Shared;

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error("data directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] suanli_ledger::LedgerError),
    #[error(transparent)]
    Net(#[from] suanli_net::NetError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("config file: {0}")]
    Config(String),
}

/// Settings of one coordinator. Every limit is explicit.
#[derive(Clone, Debug)]
pub struct CoordinatorConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// A connection must send its `Hello` within this. Default 5 s.
    pub handshake_timeout: Duration,
    /// Largest blob accepted. Default 256 MiB.
    pub max_blob_bytes: u64,
    /// Concurrent request streams per connection. Default 64.
    pub max_streams_per_connection: u32,
    /// Concurrent connections. Default 10,000.
    pub max_connections: usize,
    /// Concurrent connections from one source IP address, counted from the
    /// QUIC handshake on (before any token is seen). Default 1,024.
    pub max_connections_per_address: usize,
    /// Concurrent authenticated connections of one token, so one token
    /// cannot take every connection and lock nodes out. Default 256.
    pub max_connections_per_token: usize,
    /// A request stream must deliver its request frame within this, and an
    /// upload must bring bytes at least this often; a peer that opens a
    /// stream and drips bytes is cut off. Default 10 s.
    pub request_timeout: Duration,
    /// Blob uploads in progress per tenant or node name. Default 8.
    pub max_uploads_per_peer: u32,
    /// Log bytes kept per job. Default 1 MiB.
    pub max_log_bytes: u64,
    /// Bytes a tenant may store: blobs it uploaded or was granted as
    /// outputs, plus its jobs' logs, counted in the ledger. An upload or
    /// log append past it is refused (`QuotaExceeded`). Per-tenant
    /// overrides: `suanli tenant quota`. Default 10 GiB.
    pub storage_quota: u64,
    /// How long finished jobs' blobs (modules, inputs, outputs) and logs are
    /// kept after the job ended (and uploads no job used, after their
    /// upload). Ledger rows (jobs, attempts, usage) and receipts are kept
    /// forever. Default 7 days.
    pub retention: Duration,
    /// How often garbage collection runs (it also runs at start and on
    /// `suanli admin gc`). Default 1 hour.
    pub gc_interval: Duration,
    /// An unreferenced blob younger than this is not collected: a node's
    /// output is uploaded before the result that grants it arrives.
    /// Default 1 hour.
    pub orphan_grace: Duration,
    /// After a restart, how long attempts that were running wait for their
    /// node to reconnect and claim them before they end `node_lost`. Default 10 s.
    pub recovery_grace: Duration,
    /// An attempt not reported by `started + timeout + dispatch limit +
    /// attempt_grace` (coordinator's clock) ends `provider_fault`, unbilled,
    /// is cancelled on its node and retried on another node token. The
    /// grace covers fetching blobs, uploading the output and reporting.
    /// Default 30 s.
    pub attempt_grace: Duration,
    /// A node token with this many `provider_fault` attempts within
    /// `quarantine_window` is quarantined (no new jobs until `suanli node
    /// restore`). Default 3.
    pub quarantine_faults: u32,
    /// See `quarantine_faults`. Default 1 hour.
    pub quarantine_window: Duration,
    /// Where to serve HTTP (TCP): `/metrics`, `/healthz`, `/readyz` and the
    /// dashboard. Off (`None`) by default.
    pub http: Option<SocketAddr>,
    /// How long a dashboard login lasts. Default 12 hours.
    pub dashboard_session_ttl: Duration,
    /// Accept nodes that simulate faults on purpose (`suanli node
    /// --simulate-faults`), for tests and operators' drills of validation.
    /// Default false: such a node is refused at registration.
    pub allow_simulated_faults: bool,
    /// How often the dashboard samples slot utilisation for its plot (the
    /// last [`http::UTILISATION_SAMPLES`] samples are kept). Default 1 minute.
    pub utilisation_interval: Duration,
    /// The longest a shutdown (SIGTERM, Ctrl-C) takes: requests in flight
    /// get what is left of it to finish, then connections are closed with
    /// the shutdown code and the ledger writer commits what it holds.
    /// Whatever is still running at the limit is cut off, unacknowledged.
    /// Default 10 s.
    pub shutdown_timeout: Duration,
}

impl CoordinatorConfig {
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> CoordinatorConfig {
        CoordinatorConfig {
            listen,
            data_dir,
            handshake_timeout: Duration::from_secs(5),
            max_blob_bytes: 256 << 20,
            max_streams_per_connection: 64,
            max_connections: 10_000,
            max_connections_per_address: 1024,
            max_connections_per_token: 256,
            request_timeout: Duration::from_secs(10),
            max_uploads_per_peer: 8,
            max_log_bytes: 1 << 20,
            storage_quota: 10 << 30,
            retention: Duration::from_secs(7 * 24 * 3600),
            gc_interval: Duration::from_secs(3600),
            orphan_grace: Duration::from_secs(3600),
            recovery_grace: Duration::from_secs(10),
            attempt_grace: Duration::from_secs(30),
            quarantine_faults: 3,
            quarantine_window: Duration::from_secs(3600),
            http: None,
            allow_simulated_faults: false,
            dashboard_session_ttl: Duration::from_secs(12 * 3600),
            utilisation_interval: Duration::from_secs(60),
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// Counters for tests and operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Blob body bytes received from clients and nodes.
    pub blob_bytes_received: u64,
    pub connections_accepted: u64,
    pub handshakes_refused: u64,
    /// Connections asked to prove their source address (QUIC Retry) because
    /// more than half the connection permits were taken.
    pub address_retries: u64,
}

/// A running coordinator. Dropping it does not stop it; call [`Coordinator::shutdown`].
pub struct Coordinator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    /// Stops the HTTP endpoint once the shutdown is done.
    http_stop: Option<tokio::sync::oneshot::Sender<()>>,
    endpoint: quinn::Endpoint,
    /// Set when this start created the admin token (first start of a data directory).
    pub new_admin_token: Option<String>,
    pub client_file: PathBuf,
}

impl Coordinator {
    /// Opens (or creates) the data directory and starts serving. Must be
    /// called inside a tokio runtime.
    pub async fn start(config: CoordinatorConfig) -> Result<Coordinator, CoordinatorError> {
        let dir = data_dir::DataDir::open(&config.data_dir)?;
        let identity = dir.identity()?;
        let mut ledger = dir.ledger()?;
        let metrics = metrics::CoordinatorMetrics::new();
        let commits = metrics.ledger_commit.clone();
        ledger.observe_commits(Box::new(move |took| commits.observe(took.as_secs_f64())));
        let new_admin_token = auth::ensure_admin(&mut ledger)?;
        let server_config =
            suanli_net::tls::server_config(&identity, config.max_streams_per_connection)?;
        let endpoint = quinn::Endpoint::server(server_config, config.listen).map_err(|source| {
            CoordinatorError::Listen {
                addr: config.listen,
                source,
            }
        })?;
        let addr = endpoint
            .local_addr()
            .map_err(|source| CoordinatorError::Listen {
                addr: config.listen,
                source,
            })?;
        let client_file =
            dir.write_client_file(addr, &identity.fingerprint(), new_admin_token.as_deref())?;
        // The write connection moves to the writer thread; reads use their own.
        let reader = dir.reader()?;
        // The HTTP endpoint reads on a connection of its own, so a scrape or
        // a page never waits for (or holds up) the QUIC side's reads.
        let http_reader = config.http.map(|_| dir.reader()).transpose()?;
        let store: state::Store = Box::new(ledger);
        let (writer, _thread) = suanli_ledger::writer::Writer::start(
            store,
            suanli_ledger::writer::WriterConfig::default(),
        )?;
        let shared = Shared::new(config, reader, writer, dir, identity.fingerprint(), metrics)?;
        tokio::spawn(state::recover(shared.clone()));
        tokio::spawn(scheduler::run(shared.clone()));
        gc::once(shared.clone()).await;
        tokio::spawn(gc::periodic(shared.clone()));
        tokio::spawn(scheduler::deadlines(shared.clone()));
        tokio::spawn(server::accept_loop(endpoint.clone(), shared.clone()));
        let (http_addr, http_stop) = match (shared.config.http, http_reader) {
            (Some(at), Some(reader)) => {
                let (stop, stopped) = tokio::sync::oneshot::channel();
                let bound = http::serve(at, shared.clone(), reader, stopped)
                    .await
                    .map_err(|source| CoordinatorError::Listen { addr: at, source })?;
                (Some(bound), Some(stop))
            }
            _ => (None, None),
        };
        tracing::info!(%addr, "coordinator listening");
        Ok(Coordinator {
            shared,
            addr,
            http_addr,
            http_stop,
            endpoint,
            new_admin_token,
            client_file,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the HTTP endpoint (metrics, health, dashboard) listens, if on.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// SHA-256 of the certificate, which clients and nodes pin.
    pub fn fingerprint(&self) -> &str {
        &self.shared.fingerprint
    }

    pub fn stats(&self) -> Stats {
        let s = &self.shared.stats;
        Stats {
            blob_bytes_received: s.blob_bytes_received.load(Ordering::Relaxed),
            connections_accepted: s.connections_accepted.load(Ordering::Relaxed),
            handshakes_refused: s.handshakes_refused.load(Ordering::Relaxed),
            address_retries: s.address_retries.load(Ordering::Relaxed),
        }
    }

    /// Shuts down within `shutdown_timeout`: refuses new connections and
    /// requests, lets those in flight finish, closes every connection with
    /// [`suanli_net::CLOSE_SHUTDOWN`] (nodes reconnect soon and keep their
    /// jobs; clients hear "shutting down; retry shortly"), and drains the
    /// ledger writer (queued writes commit; nothing later is taken).
    pub async fn shutdown(mut self) -> ShutdownReport {
        let report = lifecycle::shutdown(&self.shared, &self.endpoint).await;
        if let Some(stop) = self.http_stop.take() {
            let _ = stop.send(());
        }
        report
    }
}
