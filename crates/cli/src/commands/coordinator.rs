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
}

pub async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let coordinator = Coordinator::start(CoordinatorConfig::new(args.listen, args.data)).await?;
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
