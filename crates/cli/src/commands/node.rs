use std::path::PathBuf;
use std::process::ExitCode;

use suanli_node::{Node, NodeConfig};

use super::connect::Connection;

#[derive(clap::Args)]
pub struct Args {
    /// Jobs to run at once (each slot owns a GPU device).
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Node data directory: compiled jobs and fetched blobs.
    #[arg(long, default_value = "suanli-node")]
    data: PathBuf,
    /// Use the adapter whose name contains this text.
    #[arg(long)]
    adapter: Option<String>,
    /// Offer at most this much GPU memory (bytes) to jobs.
    #[arg(long, value_name = "BYTES")]
    max_gpu_memory: Option<u64>,
}

pub async fn run(args: Args, conn: Connection) -> anyhow::Result<ExitCode> {
    let target = conn.resolve()?;
    let mut config = NodeConfig::new(target.address, target.fingerprint, target.token, args.data);
    config.slots = args.slots;
    config.adapter = args.adapter;
    config.max_gpu_memory = args.max_gpu_memory;
    let node = tokio::task::spawn_blocking(move || Node::new(config)).await??;
    let gpu = &node.info().gpu;
    println!(
        "node: {} ({}, metering {}), {} slots",
        gpu.name,
        gpu.backend,
        gpu.metering,
        node.info().slots
    );
    let (stop_tx, stop) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        let _ = stop_tx.send(true);
    });
    node.run(stop).await;
    Ok(ExitCode::SUCCESS)
}
