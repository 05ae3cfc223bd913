//! The provider agent: connects to a coordinator (pinning its certificate),
//! registers its GPU and slots, and runs the jobs it is given, each in its own
//! slot through `suanli-sandbox`, streaming their logs and returning output,
//! outcome and metered usage. Reconnects with backoff when the coordinator
//! goes away.
//!
//! **Architecture invariant:** the node decides nothing about prices or
//! scheduling; it runs what it is assigned, at most one job per slot.

mod blob_cache;
mod identity;
mod session;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use suanli_gpu::{Gpu, GpuError, GpuOptions, Slot};
use suanli_proto::{GpuInfo, NodeInfo, ReceiptSigner};
use suanli_sandbox::{Sandbox, SandboxConfig, SandboxError};
use tokio::sync::watch;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("{0}")]
    Net(#[from] suanli_net::NetError),
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub coordinator: SocketAddr,
    pub fingerprint: String,
    pub token: String,
    /// Jobs run at once; each slot owns a wgpu device.
    pub slots: u32,
    pub data_dir: PathBuf,
    pub adapter: Option<String>,
    /// Longest pause between reconnection attempts. Default 5 s.
    pub max_backoff: Duration,
    /// GPU memory the provider offers, if less than the device has: the
    /// node advertises it to the scheduler and enforces it as each job's
    /// buffer quota.
    pub max_gpu_memory: Option<u64>,
}

impl NodeConfig {
    pub fn new(
        coordinator: SocketAddr,
        fingerprint: String,
        token: String,
        data_dir: PathBuf,
    ) -> NodeConfig {
        NodeConfig {
            coordinator,
            fingerprint,
            token,
            slots: 1,
            data_dir,
            adapter: None,
            max_backoff: Duration::from_secs(5),
            max_gpu_memory: None,
        }
    }
}

/// What a node's sessions share: the sandbox, the slots, the blob cache.
pub(crate) struct Runtime {
    pub(crate) sandbox: Sandbox,
    pub(crate) quotas: suanli_gpu::Quotas,
    pub(crate) slots: Mutex<Vec<Slot>>,
    pub(crate) info: NodeInfo,
    pub(crate) blobs: blob_cache::BlobCache,
    /// Signs every attempt's receipt.
    pub(crate) signer: ReceiptSigner,
}

/// A node, set up (GPU opened, slots created) but not yet connected.
pub struct Node {
    config: NodeConfig,
    runtime: Arc<Runtime>,
}

impl Node {
    /// Opens the GPU and creates the slots (slow: one device per slot).
    pub fn new(config: NodeConfig) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| NodeError::DataDir(config.data_dir.clone(), e))?;
        let signer = identity::load_or_create(&config.data_dir)
            .map_err(|e| NodeError::DataDir(config.data_dir.join("node.key"), e))?;
        let gpu = Gpu::open(&GpuOptions {
            adapter_name: config.adapter.clone(),
            ..GpuOptions::default()
        })?;
        let slots = (0..config.slots.max(1))
            .map(|_| gpu.new_slot())
            .collect::<Result<Vec<_>, _>>()?;
        let limits = slots[0].limits();
        let info = gpu.info();
        let node_info = NodeInfo {
            gpu: GpuInfo {
                name: info.name.clone(),
                backend: info.backend.clone(),
                device_type: info.device_type.clone(),
                driver: info.driver_info.clone(),
                metering: info.metering.as_str().to_owned(),
                max_buffer_size: config.max_gpu_memory.map_or(limits.max_buffer_size, |cap| {
                    cap.min(limits.max_buffer_size)
                }),
                max_storage_buffer_binding_size: limits.max_storage_buffer_binding_size,
                max_compute_workgroups_per_dimension: limits.max_compute_workgroups_per_dimension,
                features: if info.metering == suanli_gpu::Metering::Timestamp {
                    vec!["timestamp-query".into()]
                } else {
                    vec![]
                },
            },
            slots: slots.len() as u32,
            public_key: signer.public_key(),
        };
        let sandbox = Sandbox::new(SandboxConfig {
            cache_dir: Some(config.data_dir.join("compiled")),
            ..SandboxConfig::default()
        })?;
        let blobs = blob_cache::BlobCache::new(config.data_dir.join("blobs"))
            .map_err(|e| NodeError::DataDir(config.data_dir.clone(), e))?;
        let mut quotas = suanli_gpu::Quotas::default();
        if let Some(cap) = config.max_gpu_memory {
            quotas.max_buffer_bytes = quotas.max_buffer_bytes.min(cap);
        }
        Ok(Node {
            config,
            runtime: Arc::new(Runtime {
                quotas,
                sandbox,
                slots: Mutex::new(slots),
                info: node_info,
                blobs,
                signer,
            }),
        })
    }

    pub fn info(&self) -> &NodeInfo {
        &self.runtime.info
    }

    /// Serves until `stop` turns true: connects, registers, runs jobs; on any
    /// connection loss waits (exponential backoff with jitter) and reconnects.
    pub async fn run(self, stop: watch::Receiver<bool>) {
        self.serve(stop).await;
        tracing::debug!(
            references = Arc::strong_count(&self.runtime),
            "node stopped"
        );
    }

    async fn serve(&self, mut stop: watch::Receiver<bool>) {
        let mut backoff = Duration::from_millis(100);
        loop {
            if *stop.borrow() {
                return;
            }
            let started = std::time::Instant::now();
            let result = tokio::select! {
                r = session::run(&self.config, self.runtime.clone()) => r,
                _ = stop.changed() => return,
            };
            match result {
                Ok(()) => tracing::info!("session with the coordinator ended"),
                Err(err) => tracing::warn!(%err, "session with the coordinator failed"),
            }
            if started.elapsed() > Duration::from_secs(10) {
                backoff = Duration::from_millis(100);
            }
            let jitter = rand::random_range(0.5..1.5);
            let pause = backoff.mul_f64(jitter).min(self.config.max_backoff);
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = stop.changed() => return,
            }
            backoff = (backoff * 2).min(self.config.max_backoff);
        }
    }
}
