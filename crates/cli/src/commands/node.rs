use std::path::PathBuf;
use std::process::ExitCode;

use suanli_node::{Node, NodeConfig, NodeSignal};
use suanli_proto::{NodeCaps, Role};

use super::connect::Connection;
use super::units::{Bytes, Secs};

#[derive(clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    command: Option<NodeCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Subcommand)]
enum NodeCommand {
    /// Assign no new jobs to a provider's nodes (node token name); running
    /// jobs finish. Kept across coordinator restarts until `undrain` (admin).
    Drain {
        /// The provider's node token name.
        node: String,
    },
    /// Lift `drain` of a provider's nodes (admin).
    Undrain {
        /// The provider's node token name.
        node: String,
    },
    /// Lift the quarantine of a provider's nodes, set after repeated
    /// `provider_fault`s (admin).
    Restore {
        /// The provider's node token name.
        node: String,
    },
}

#[derive(clap::Args)]
struct RunArgs {
    /// Jobs to run at once, per GPU with --gpu (each slot owns a GPU device).
    #[arg(long, default_value_t = 1)]
    slots: u32,
    /// Run on the adapter with this index in `suanli gpus`; repeat for
    /// several GPUs (`--gpu 0 --gpu 1`), which must be the same model.
    /// Default: the best adapter (or --adapter).
    #[arg(long = "gpu", value_name = "N", conflicts_with = "adapter")]
    gpus: Vec<usize>,
    /// Node data directory: compiled jobs and fetched blobs.
    #[arg(long, default_value = "suanli-node")]
    data: PathBuf,
    /// Use the adapter whose name contains this text.
    #[arg(long, value_name = "TEXT")]
    adapter: Option<String>,
    /// Offer at most this much GPU memory to jobs (default: all the
    /// adapter's largest buffer).
    #[arg(long, value_name = "SIZE")]
    max_gpu_memory: Option<Bytes>,
    /// Most wasm memory one job may use here; jobs asking more go elsewhere.
    #[arg(long, value_name = "SIZE", default_value = "4GiB")]
    max_job_memory: Bytes,
    /// Longest timeout a job may have here.
    #[arg(long, value_name = "DURATION", default_value = "1h")]
    max_job_timeout: Secs,
    /// Longest one dispatch of a job may keep the GPU busy here; past it the
    /// attempt ends `gpu_hang` and the slot's worker is restarted.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    max_dispatch_seconds: Secs,
    /// Fetched modules and inputs kept in DATA/blobs; the least recently
    /// used are deleted past it.
    #[arg(long, value_name = "SIZE", default_value = "10GiB")]
    blob_cache_bytes: Bytes,
    /// Compiled components kept in DATA/compiled (shared by the slot
    /// workers); the least recently used are deleted past it.
    #[arg(long, value_name = "SIZE", default_value = "4GiB")]
    component_cache_bytes: Bytes,
    /// Serve /metrics (Prometheus), /healthz and /readyz over HTTP on this
    /// address (off by default; no authentication: bind it where only your
    /// monitoring reaches, e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    http: Option<std::net::SocketAddr>,
    /// A testing aid, never for production: misbehave on purpose as a
    /// dishonest provider would, e.g. `wrong-output=0.5,inflate-gpu=3`
    /// (corrupt that share of outputs; report that many times the GPU time
    /// metered). A coordinator refuses such a node unless it runs with
    /// --allow-simulated-faults.
    #[arg(long, value_name = "FAULTS", value_parser = suanli_proto::FaultSimulation::parse)]
    simulate_faults: Option<suanli_proto::FaultSimulation>,
}

impl Args {
    /// Whether this runs a node (not `node drain` and the like).
    pub fn is_serve(&self) -> bool {
        self.command.is_none()
    }
}

pub async fn run(args: Args, conn: Connection) -> anyhow::Result<ExitCode> {
    match args.command {
        Some(NodeCommand::Drain { node }) => {
            let client = conn.connect(Role::Admin).await?;
            let known = client.drain_node(&node).await?;
            eprintln!("{node}: draining (no new jobs; running jobs finish)");
            super::billing::warn_unknown_node(&node, known, "drain");
            Ok(ExitCode::SUCCESS)
        }
        Some(NodeCommand::Undrain { node }) => {
            let client = conn.connect(Role::Admin).await?;
            let known = client.undrain_node(&node).await?;
            eprintln!("{node}: takes jobs again (drain lifted)");
            super::billing::warn_unknown_node(&node, known, "undrain");
            Ok(ExitCode::SUCCESS)
        }
        Some(NodeCommand::Restore { node }) => {
            let client = conn.connect(Role::Admin).await?;
            let known = client.restore_node(&node).await?;
            eprintln!(
                "{node}: takes jobs again (quarantine lifted; earlier faults no longer count)"
            );
            super::billing::warn_unknown_node(&node, known, "restore");
            Ok(ExitCode::SUCCESS)
        }
        None => serve(args.run, conn).await,
    }
}

/// Runs the node. SIGTERM or a first Ctrl-C drains it (no new jobs; exits
/// when running jobs finished and their results were acknowledged); a
/// second Ctrl-C stops it at once.
async fn serve(args: RunArgs, conn: Connection) -> anyhow::Result<ExitCode> {
    let target = conn.resolve()?;
    let mut config = NodeConfig::new(target.address, target.fingerprint, target.token, args.data);
    config.slots = args.slots;
    config.adapter = args.adapter;
    config.gpus = args.gpus.clone();
    let gpus = args.gpus;
    config.max_gpu_memory = args.max_gpu_memory.map(|b| b.0);
    config.blob_cache_bytes = args.blob_cache_bytes.0;
    config.component_cache_bytes = args.component_cache_bytes.0;
    config.simulate_faults = args.simulate_faults;
    config.caps = NodeCaps {
        max_memory_bytes: args.max_job_memory.0,
        max_timeout_ns: args.max_job_timeout.as_nanos(),
        max_dispatch_ns: args.max_dispatch_seconds.as_nanos(),
    };
    let node = tokio::task::spawn_blocking(move || Node::new(config)).await??;
    if let Some(addr) = args.http {
        let bound = node.serve_http(addr).await?;
        println!("http: http://{bound}/metrics /healthz /readyz");
    }
    let gpu = &node.info().gpu;
    let gpus = if gpus.is_empty() {
        String::new()
    } else {
        format!(
            " on GPUs {}",
            gpus.iter()
                .map(|g| g.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    println!(
        "node: {} ({}, metering {}), {} slots{gpus}",
        gpu.name,
        gpu.backend,
        gpu.metering,
        node.info().slots
    );
    let (signal_tx, signal) = tokio::sync::watch::channel(NodeSignal::Run);
    tokio::spawn(async move {
        #[cfg(unix)]
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        let mut interrupts = 0;
        loop {
            #[cfg(unix)]
            let terminated = async {
                match term.as_mut() {
                    Some(t) => {
                        t.recv().await;
                    }
                    None => std::future::pending().await,
                }
            };
            #[cfg(not(unix))]
            let terminated = std::future::pending::<()>();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => interrupts += 1,
                _ = terminated => {}
            }
            if interrupts >= 2 {
                eprintln!("stopping now");
                let _ = signal_tx.send(NodeSignal::Stop);
                return;
            }
            eprintln!("draining: running jobs finish, no new ones (Ctrl-C again to stop now)");
            let _ = signal_tx.send(NodeSignal::Drain);
        }
    });
    node.run_until(signal).await;
    Ok(ExitCode::SUCCESS)
}
