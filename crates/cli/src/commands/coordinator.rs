use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use suanli_coordinator::{Coordinator, CoordinatorConfig};

use super::units::{Bytes, Secs};

#[derive(clap::Args)]
pub struct Args {
    /// Address to listen on (UDP: QUIC).
    #[arg(long, default_value = "127.0.0.1:7878")]
    listen: SocketAddr,
    /// Data directory: certificate, ledger, blobs, logs, client.toml.
    #[arg(long, default_value = "suanli-data")]
    data: PathBuf,
    /// Concurrent connections; more are refused.
    #[arg(long, default_value_t = 10_000)]
    max_connections: usize,
    /// Concurrent request streams per connection (more wait: QUIC flow control).
    #[arg(long, default_value_t = 64)]
    max_streams_per_connection: u32,
    /// Largest blob accepted (a job's module, input or output).
    #[arg(long, value_name = "SIZE", default_value = "256MiB")]
    max_blob_bytes: Bytes,
    /// Blob uploads in progress per tenant (or node).
    #[arg(long, default_value_t = 8)]
    max_uploads_per_peer: u32,
    /// Bytes each tenant may store (blobs it uploaded or got as outputs,
    /// plus its jobs' logs); uploads and log appends past it are refused.
    /// Per tenant: `suanli tenant quota`.
    #[arg(long, value_name = "SIZE", default_value = "10GiB")]
    storage_quota: Bytes,
    /// How long finished jobs' blobs and logs are kept (e.g. 7d, 12h, 30m,
    /// 90s); jobs, attempts, usage and receipts are kept forever.
    #[arg(long, value_name = "DURATION", default_value = "7d")]
    retention: Secs,
    /// How often garbage collection runs (also at start and on `suanli
    /// admin gc`).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    gc_interval: Secs,
    /// How long a blob nothing refers to is kept after its upload (a node's
    /// output waits for the result that grants it).
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    orphan_grace: Secs,
    /// How long a connection has to present its token.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    handshake_timeout: Secs,
    /// Concurrent connections from one IP address (counted before the token
    /// is seen); more are refused with the reason.
    #[arg(long, default_value_t = 1024)]
    max_connections_per_address: usize,
    /// Concurrent connections of one token, so that one token cannot take
    /// every connection; more are refused with the reason.
    #[arg(long, default_value_t = 256)]
    max_connections_per_token: usize,
    /// How long a request stream has to deliver its request, and the
    /// longest an upload or a download may stall; slower peers are cut off.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    request_timeout: Secs,
    /// How long past an attempt's timeout plus dispatch limit the
    /// coordinator waits before it ends an unreported attempt
    /// `provider_fault` and runs the job on another node.
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    attempt_grace: Secs,
    /// `provider_fault` attempts within --quarantine-window that quarantine
    /// a node token (no new jobs until `suanli node restore`).
    #[arg(long, value_name = "N", default_value_t = 3)]
    quarantine_faults: u32,
    /// The window over which --quarantine-faults are counted.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    quarantine_window: Secs,
    /// Serve HTTP (TCP) on this address: /metrics (Prometheus), /healthz,
    /// /readyz and the web dashboard (log in with a token). Off by default;
    /// plain HTTP, so bind it to localhost or put TLS in front.
    #[arg(long, value_name = "ADDR")]
    http: Option<SocketAddr>,
    /// How long a dashboard login lasts.
    #[arg(long, value_name = "DURATION", default_value = "12h")]
    dashboard_session_ttl: Secs,
    /// How often the dashboard samples slot utilisation for its plot (it
    /// keeps the last 1,440 samples).
    #[arg(long, value_name = "DURATION", default_value = "1m")]
    utilisation_interval: Secs,
    /// Accept nodes that simulate faults on purpose (`suanli node
    /// --simulate-faults`): for tests and drills of validation only.
    #[arg(long)]
    allow_simulated_faults: bool,
    /// The longest a shutdown (SIGTERM, Ctrl-C) takes: requests in flight
    /// finish, nodes and clients are told, queued ledger writes commit;
    /// whatever still runs at the limit is cut off, unacknowledged.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    shutdown_timeout: Secs,
}

/// The longest dashboard login `--dashboard-session-ttl` allows.
const MAX_DASHBOARD_SESSION_TTL: std::time::Duration =
    std::time::Duration::from_secs(30 * 24 * 3600);

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let coordinator = Coordinator::start(config_from(args)?).await?;
    announce(&coordinator);
    stop_signal().await?;
    eprintln!("shutting down: closing connections (nodes and clients reconnect)");
    let report = coordinator.shutdown().await;
    eprintln!(
        "shut down in {:.2} s ({} ledger writes committed at the end{})",
        report.elapsed.as_secs_f64(),
        report.writes_drained,
        if report.clean {
            String::new()
        } else {
            format!(
                "; cut off at --shutdown-timeout: {} requests unanswered",
                report.requests_cut_off
            )
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The coordinator's settings from its flags, each checked.
fn config_from(args: Args) -> anyhow::Result<CoordinatorConfig> {
    anyhow::ensure!(
        !args.gc_interval.0.is_zero(),
        "--gc-interval must be more than 0"
    );
    anyhow::ensure!(
        !args.request_timeout.0.is_zero(),
        "--request-timeout must be more than 0"
    );
    anyhow::ensure!(
        args.quarantine_faults > 0,
        "--quarantine-faults must be at least 1"
    );
    anyhow::ensure!(
        !args.dashboard_session_ttl.0.is_zero()
            && args.dashboard_session_ttl.0 <= MAX_DASHBOARD_SESSION_TTL,
        "--dashboard-session-ttl must be more than 0 and at most 30 days"
    );
    anyhow::ensure!(
        !args.utilisation_interval.0.is_zero(),
        "--utilisation-interval must be more than 0"
    );
    let mut config = CoordinatorConfig::new(args.listen, args.data);
    config.max_connections = args.max_connections;
    config.max_streams_per_connection = args.max_streams_per_connection;
    config.max_blob_bytes = args.max_blob_bytes.0;
    config.max_uploads_per_peer = args.max_uploads_per_peer;
    config.storage_quota = args.storage_quota.0;
    config.retention = args.retention.0;
    config.gc_interval = args.gc_interval.0;
    config.orphan_grace = args.orphan_grace.0;
    config.max_connections_per_address = args.max_connections_per_address;
    config.max_connections_per_token = args.max_connections_per_token;
    config.request_timeout = args.request_timeout.0;
    config.attempt_grace = args.attempt_grace.0;
    config.quarantine_faults = args.quarantine_faults;
    config.quarantine_window = args.quarantine_window.0;
    config.handshake_timeout = args.handshake_timeout.0;
    config.http = args.http;
    config.dashboard_session_ttl = args.dashboard_session_ttl.0;
    config.utilisation_interval = args.utilisation_interval.0;
    config.shutdown_timeout = args.shutdown_timeout.0;
    config.allow_simulated_faults = args.allow_simulated_faults;
    Ok(config)
}

/// What an operator (or a service's journal) needs at start: where it
/// listens, the fingerprint clients pin, where the admin token went (never
/// the token itself), the HTTP address. `client config:` comes last: tests
/// and scripts read up to it.
fn announce(coordinator: &Coordinator) {
    println!("coordinator listening on {}", coordinator.addr());
    println!(
        "certificate fingerprint (sha-256): {}",
        coordinator.fingerprint()
    );
    match &coordinator.new_admin_token {
        Some(_) => println!(
            "admin token: new, written to {} (mode 0600; install it with `suanli login {} --profile admin`)",
            coordinator.client_file.display(),
            coordinator.client_file.display()
        ),
        None => println!(
            "admin token: unchanged (see {})",
            coordinator.client_file.display()
        ),
    }
    if let Some(http) = coordinator.http_addr() {
        println!("http: http://{http}/ (dashboard; /metrics /healthz /readyz)");
    }
    println!("client config: {}", coordinator.client_file.display());
}

/// SIGTERM (a service manager's stop) or Ctrl-C.
async fn stop_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await?;
    Ok(())
}
