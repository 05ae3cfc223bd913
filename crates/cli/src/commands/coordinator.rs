use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use suanli_coordinator::{Coordinator, CoordinatorConfig};

#[derive(clap::Args)]
pub struct Args {
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
    /// Largest blob accepted, in bytes.
    #[arg(long, default_value_t = 256 << 20)]
    max_blob_bytes: u64,
    /// Blob uploads in progress per tenant (or node).
    #[arg(long, default_value_t = 8)]
    max_uploads_per_peer: u32,
    /// Seconds a connection has to present its token.
    #[arg(long, default_value_t = 5.0)]
    handshake_timeout: f64,
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut config = CoordinatorConfig::new(args.listen, args.data);
    config.max_connections = args.max_connections;
    config.max_streams_per_connection = args.max_streams_per_connection;
    config.max_blob_bytes = args.max_blob_bytes;
    config.max_uploads_per_peer = args.max_uploads_per_peer;
    config.handshake_timeout = std::time::Duration::from_nanos(super::seconds_to_ns(
        "--handshake-timeout",
        args.handshake_timeout,
    )?);
    let coordinator = Coordinator::start(config).await?;
    println!("coordinator listening on {}", coordinator.addr());
    println!(
        "certificate fingerprint (sha-256): {}",
        coordinator.fingerprint()
    );
    match &coordinator.new_admin_token {
        Some(token) => println!("admin token (shown once): {token}"),
        None => println!(
            "admin token: unchanged (see {})",
            coordinator.client_file.display()
        ),
    }
    println!("client config: {}", coordinator.client_file.display());
    tokio::signal::ctrl_c().await?;
    eprintln!("shutting down");
    coordinator.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
