//! The provider agent: connects to a coordinator (pinning its certificate),
//! registers its GPU and slots, and runs the jobs it is given, each in its own
//! slot's worker process through `suanli-sandbox`, streaming their logs and
//! returning output, outcome and metered usage. Reconnects with backoff when
//! the coordinator goes away.
//!
//! **Architecture invariants:** the node decides nothing about prices or
//! scheduling; it runs what it is assigned, at most one job per slot, within
//! its provider's caps; no job code (wasmtime, naga, wgpu, the driver) runs
//! in the node process itself: each slot is a supervised worker process
//! (`worker.rs`, `supervisor.rs`), so a job can end its attempt but never the node.

mod blob_cache;
mod http;
mod identity;
mod ipc;
mod metrics;
mod outbox;
mod session;
mod supervisor;
mod worker;

pub use supervisor::{WorkerCommand, WorkerError};
pub use worker::{FAILPOINT_ABORT, FAILPOINTS_ENV, STOP_GRACE, worker_main};

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use suanli_proto::{DeviceInfo, GpuInfo, Metering, NodeCaps, NodeInfo, ReceiptSigner};
use tokio::sync::{Notify, mpsc, watch};

use crate::supervisor::WorkerPool;

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error(transparent)]
    Worker(#[from] WorkerError),
    #[error("data directory {0}: {1}")]
    DataDir(PathBuf, std::io::Error),
    #[error("{0}")]
    Net(#[from] suanli_net::NetError),
    /// `gpus` names one adapter twice, or adapters of different models.
    #[error("{0}")]
    Gpus(String),
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub coordinator: SocketAddr,
    pub fingerprint: String,
    pub token: String,
    /// Jobs run at once (per GPU when `gpus` is set); each slot owns a
    /// wgpu device.
    pub slots: u32,
    pub data_dir: PathBuf,
    /// Without `gpus`: the adapter whose name contains this text (default:
    /// the best one).
    pub adapter: Option<String>,
    /// Adapter indexes (`suanli_gpu::list_adapters`, `suanli gpus`) to run
    /// `slots` workers on each. Empty: one adapter, chosen by `adapter`.
    /// They must all be the same model, since the node registers one GPU
    /// description; run one node per model otherwise.
    pub gpus: Vec<usize>,
    /// Longest pause between reconnection attempts. Default 5 s.
    pub max_backoff: Duration,
    /// GPU memory the provider offers, if less than the device has: the
    /// node advertises it to the scheduler and enforces it as each job's
    /// buffer quota.
    pub max_gpu_memory: Option<u64>,
    /// The most one job may take here; the coordinator assigns only jobs
    /// that fit, and the node enforces them whatever it is sent.
    pub caps: NodeCaps,
    /// How to start a slot worker (default: `suanli worker` from this executable).
    pub worker: WorkerCommand,
    /// Bytes of fetched modules and inputs kept in `DATA/blobs`; past it the
    /// least recently used are deleted. Default 10 GiB.
    pub blob_cache_bytes: u64,
    /// Bytes of compiled components kept in `DATA/compiled` (shared by the
    /// slot workers); past it the least recently used are deleted.
    /// Default 4 GiB.
    pub component_cache_bytes: u64,
    /// Faults to simulate on purpose (a testing aid for validation; a
    /// coordinator refuses such a node unless it allows them). Default none.
    pub simulate_faults: Option<suanli_proto::FaultSimulation>,
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
            gpus: Vec::new(),
            max_backoff: Duration::from_secs(5),
            max_gpu_memory: None,
            caps: NodeCaps::default(),
            worker: WorkerCommand::current_exe(),
            blob_cache_bytes: 10 << 30,
            component_cache_bytes: 4 << 30,
            simulate_faults: None,
        }
    }
}

/// What the node should be doing, as its owner tells it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeSignal {
    Run,
    /// Take no new jobs; return once running jobs finished and their results
    /// were acknowledged (or, after 30 s without a coordinator, kept on disk).
    Drain,
    /// Return now.
    Stop,
}

/// The live session's connection and upward channel.
#[derive(Clone)]
pub(crate) struct Link {
    pub(crate) client: Arc<suanli_net::Client>,
    pub(crate) up: mpsc::UnboundedSender<suanli_proto::FromNode>,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a node's sessions share: the sandbox, the slots, the blob cache,
/// the jobs running and the results not yet acknowledged.
pub(crate) struct Runtime {
    /// One worker process per slot.
    pub(crate) workers: Arc<WorkerPool>,
    pub(crate) info: NodeInfo,
    pub(crate) blobs: Arc<blob_cache::BlobCache>,
    /// Signs every attempt's receipt.
    pub(crate) signer: ReceiptSigner,
    pub(crate) outbox: outbox::Outbox,
    /// Attempts running now, with their cancel flags.
    pub(crate) running: Mutex<HashMap<(u64, u32), Arc<std::sync::atomic::AtomicBool>>>,
    /// The session that is up, if any.
    pub(crate) link: Mutex<Option<Link>>,
    pub(crate) draining: AtomicBool,
    /// Wakes a drain when a job ends or a result is acknowledged.
    pub(crate) changed: Notify,
    /// What `/metrics` reports.
    pub(crate) metrics: metrics::NodeMetrics,
}

impl Runtime {
    pub(crate) fn link(&self) -> Option<Link> {
        lock(&self.link).clone()
    }

    fn start_drain(&self) {
        if !self.draining.swap(true, Ordering::Relaxed) {
            tracing::info!("draining: taking no new jobs");
            if let Some(link) = self.link() {
                let _ = link.up.send(suanli_proto::FromNode::Draining);
            }
        }
    }

    /// Returns when no job runs and every result was acknowledged, or when
    /// results stayed undelivered for `patience` with nothing running.
    async fn drained(&self, patience: Duration) {
        let mut idle_since: Option<std::time::Instant> = None;
        loop {
            let running = !lock(&self.running).is_empty();
            if !running && self.outbox.is_empty() {
                return;
            }
            if running {
                idle_since = None;
            } else {
                let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                if since.elapsed() >= patience {
                    tracing::warn!(
                        kept = self.outbox.list().len(),
                        "results not acknowledged; they stay in the outbox for the next start"
                    );
                    return;
                }
            }
            tokio::select! {
                _ = self.changed.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
            }
        }
    }
}

/// One worker per slot: `slots` on the one default adapter, or `slots` on
/// each of `gpus` (indexes, no repeats).
fn worker_inits(
    base: &ipc::WorkerInit,
    gpus: &[usize],
    slots: u32,
) -> Result<Vec<ipc::WorkerInit>, NodeError> {
    let slots = slots.max(1) as usize;
    if gpus.is_empty() {
        return Ok(vec![base.clone(); slots]);
    }
    let mut seen = std::collections::BTreeSet::new();
    if let Some(dup) = gpus.iter().find(|g| !seen.insert(**g)) {
        return Err(NodeError::Gpus(format!(
            "GPU {dup} is given twice; give each GPU once and --slots for jobs per GPU"
        )));
    }
    Ok(gpus
        .iter()
        .flat_map(|&index| {
            std::iter::repeat_n(
                ipc::WorkerInit {
                    adapter_index: Some(index),
                    ..base.clone()
                },
                slots,
            )
        })
        .collect())
}

/// The node registers one GPU description for all its slots, so its GPUs
/// must be one model: the same name, vendor, device id and backend.
fn same_model(workers: &[(Option<usize>, suanli_gpu::AdapterInfo)]) -> Result<(), String> {
    let Some((_, first)) = workers.first() else {
        return Ok(());
    };
    let model =
        |a: &suanli_gpu::AdapterInfo| (a.name.clone(), a.vendor, a.device, a.backend.clone());
    if workers.iter().all(|(_, a)| model(a) == model(first)) {
        return Ok(());
    }
    let mut models: Vec<String> = workers
        .iter()
        .map(|(index, a)| match index {
            Some(i) => format!("{i}: {} ({})", a.name, a.backend),
            None => format!("{} ({})", a.name, a.backend),
        })
        .collect();
    models.dedup();
    Err(format!(
        "the selected GPUs are not all the same model ({}); a node registers one GPU model, \
         so run one node per model (e.g. `suanli node --gpu 0 --data node-a` and \
         `suanli node --gpu 1 --data node-b`)",
        models.join(", ")
    ))
}

/// Every GPU the workers opened, in index order, with its slot count: what
/// the node reports so `suanli nodes` shows each GPU as its own device.
fn devices(workers: &[(Option<usize>, suanli_gpu::AdapterInfo)]) -> Vec<DeviceInfo> {
    let mut by_index: std::collections::BTreeMap<usize, DeviceInfo> = Default::default();
    for (chosen, a) in workers {
        let index = chosen.unwrap_or(a.index);
        let device = by_index.entry(index).or_insert_with(|| DeviceInfo {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            name: a.name.clone(),
            pci_bus_id: a.pci_bus_id.clone(),
            slots: 0,
        });
        device.slots += 1;
    }
    by_index.into_values().collect()
}

/// A node, set up (GPU opened, slots created) but not yet connected.
pub struct Node {
    config: NodeConfig,
    runtime: Arc<Runtime>,
}

impl Node {
    /// Starts one worker per slot, each opening its own device (in
    /// parallel; 40–60 ms per worker on lavapipe).
    pub fn new(config: NodeConfig) -> Result<Node, NodeError> {
        std::fs::create_dir_all(&config.data_dir)
            .map_err(|e| NodeError::DataDir(config.data_dir.clone(), e))?;
        let signer = identity::load_or_create(&config.data_dir)
            .map_err(|e| NodeError::DataDir(config.data_dir.join("node.key"), e))?;
        let init = ipc::WorkerInit {
            adapter: config.adapter.clone(),
            adapter_index: None,
            cache_dir: config.data_dir.join("compiled"),
            cache_max_bytes: config.component_cache_bytes,
            max_gpu_memory: config.max_gpu_memory,
            slot: 0,
        };
        let mut inits = worker_inits(&init, &config.gpus, config.slots)?;
        for (slot, init) in inits.iter_mut().enumerate() {
            init.slot = slot;
        }
        let slots = u32::try_from(inits.len()).unwrap_or(u32::MAX);
        let workers = WorkerPool::start(config.worker.clone(), &inits)?;
        let described = workers.describe();
        let models: Vec<_> = described.iter().map(|(i, a, _)| (*i, a.clone())).collect();
        same_model(&models).map_err(NodeError::Gpus)?;
        let devices = devices(&models);
        let (_, info, limits) = described
            .into_iter()
            .next()
            .ok_or_else(|| WorkerError::NotReady("no slot".into()))?;
        let node_info = NodeInfo {
            gpu: GpuInfo {
                name: info.name.clone(),
                backend: info.backend.clone(),
                device_type: info.device_type.clone(),
                driver: info.driver_info.clone(),
                metering: match info.metering {
                    suanli_gpu::Metering::Timestamp => Metering::Timestamp,
                    suanli_gpu::Metering::Wall => Metering::Wall,
                },
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
            slots,
            caps: config.caps,
            public_key: signer.public_key(),
            in_flight: Vec::new(),
            devices,
            simulated_faults: config.simulate_faults,
        };
        let blobs =
            blob_cache::BlobCache::new(config.data_dir.join("blobs"), config.blob_cache_bytes)
                .map(Arc::new)
                .map_err(|e| NodeError::DataDir(config.data_dir.clone(), e))?;
        let outbox = outbox::Outbox::new(config.data_dir.join("outbox"))
            .map_err(|e| NodeError::DataDir(config.data_dir.clone(), e))?;
        let metrics = node_metrics(&node_info);
        Ok(Node {
            config,
            runtime: Arc::new(Runtime {
                workers: Arc::new(workers),
                info: node_info,
                blobs,
                signer,
                outbox,
                running: Mutex::new(HashMap::new()),
                link: Mutex::new(None),
                draining: AtomicBool::new(false),
                changed: Notify::new(),
                metrics,
            }),
        })
    }

    /// Serves `/metrics`, `/healthz` and `/readyz` on `addr` for the node's
    /// life; returns the bound address (`addr` may have port 0).
    pub async fn serve_http(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        http::serve(addr, self.runtime.clone()).await
    }

    pub fn info(&self) -> &NodeInfo {
        &self.runtime.info
    }

    /// Serves until `stop` turns true: connects, registers, runs jobs; on any
    /// connection loss waits (exponential backoff with jitter) and reconnects.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let (_signal_tx, signal) = watch::channel(NodeSignal::Run);
        let stopped = async move {
            while !*stop.borrow() {
                if stop.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
            }
        };
        tokio::select! {
            _ = self.run_until(signal) => {}
            _ = stopped => {}
        }
    }

    /// Serves until told to stop, or told to drain and drained.
    pub async fn run_until(self, signal: watch::Receiver<NodeSignal>) {
        self.serve(signal).await;
        tracing::debug!(
            references = Arc::strong_count(&self.runtime),
            "node stopped"
        );
    }

    async fn serve(&self, mut signal: watch::Receiver<NodeSignal>) {
        let rt = &self.runtime;
        let first = Duration::from_millis(100);
        let mut pauses = suanli_net::backoff::pauses(first, self.config.max_backoff, None);
        let mut sessions = 0u64;
        loop {
            if sessions > 0 {
                rt.metrics.reconnects.inc();
            }
            sessions += 1;
            let started = std::time::Instant::now();
            let Some(result) =
                unless_stopped(session::run(&self.config, rt.clone()), &mut signal, rt).await
            else {
                return;
            };
            let shutdown = matches!(result, Err(suanli_net::NetError::ShuttingDown { .. }));
            match result {
                Ok(()) => tracing::info!("session with the coordinator ended"),
                Err(suanli_net::NetError::ShuttingDown { .. }) => tracing::info!(
                    "the coordinator is shutting down (a restart): jobs keep running, \
                     results wait in the outbox; reconnecting soon"
                ),
                Err(err) => tracing::warn!(%err, "session with the coordinator failed"),
            }
            if shutdown {
                // A restart, not a failure: come back soon (still jittered,
                // so a fleet does not return in one instant), then back off
                // as usual while the coordinator is not up yet.
                pauses = suanli_net::backoff::pauses(
                    RECONNECT_AFTER_SHUTDOWN,
                    self.config.max_backoff,
                    None,
                );
            } else if started.elapsed() > Duration::from_secs(10) {
                // A session that lasted starts the pauses over.
                pauses = suanli_net::backoff::pauses(first, self.config.max_backoff, None);
            }
            let pause = pauses.next().unwrap_or(self.config.max_backoff);
            if unless_stopped(tokio::time::sleep(pause), &mut signal, rt)
                .await
                .is_none()
            {
                return;
            }
        }
    }
}

/// The first pause before reconnecting to a coordinator that closed the
/// session with the shutdown code (a restart): short, jittered (half to
/// all of it), then the pauses grow as after a failure.
pub const RECONNECT_AFTER_SHUTDOWN: Duration = Duration::from_millis(200);

/// The metrics of a node about to register `info`.
fn node_metrics(info: &NodeInfo) -> metrics::NodeMetrics {
    let m = metrics::NodeMetrics::new();
    m.slots.set(i64::from(info.slots));
    m.device
        .get_or_create(&metrics::DeviceLabels {
            name: info.gpu.name.clone(),
            backend: info.gpu.backend.clone(),
            driver: info.gpu.driver.clone(),
            metering: info.gpu.metering.as_str().to_owned(),
        })
        .set(1);
    m
}

/// Runs `work` to its end (`Some`), unless the owner says stop or a drain
/// completes first (`None`); a drain signal in between starts the drain.
async fn unless_stopped<T>(
    work: impl std::future::Future<Output = T>,
    signal: &mut watch::Receiver<NodeSignal>,
    rt: &Runtime,
) -> Option<T> {
    const PATIENCE: Duration = Duration::from_secs(30);
    tokio::pin!(work);
    loop {
        tokio::select! {
            r = &mut work => return Some(r),
            changed = signal.changed() => {
                let now = if changed.is_ok() { *signal.borrow() } else { NodeSignal::Stop };
                match now {
                    NodeSignal::Stop => return None,
                    NodeSignal::Drain => rt.start_drain(),
                    NodeSignal::Run => {}
                }
            }
            _ = rt.drained(PATIENCE), if rt.draining.load(Ordering::Relaxed) => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> ipc::WorkerInit {
        ipc::WorkerInit {
            adapter: Some("ignored with --gpu".into()),
            adapter_index: None,
            cache_dir: PathBuf::from("/nonexistent"),
            cache_max_bytes: 1,
            max_gpu_memory: None,
            slot: 0,
        }
    }

    #[test]
    fn slots_are_per_gpu_and_a_gpu_given_twice_is_refused() {
        let none = worker_inits(&base(), &[], 3).unwrap();
        assert_eq!(none.len(), 3);
        assert!(none.iter().all(|i| i.adapter_index.is_none()));
        let two = worker_inits(&base(), &[1, 0], 2).unwrap();
        let indexes: Vec<_> = two.iter().map(|i| i.adapter_index).collect();
        assert_eq!(indexes, [Some(1), Some(1), Some(0), Some(0)]);
        assert_eq!(worker_inits(&base(), &[2], 0).unwrap().len(), 1);
        let err = worker_inits(&base(), &[0, 1, 0], 1)
            .unwrap_err()
            .to_string();
        assert!(err.contains("GPU 0 is given twice"), "{err}");
    }

    fn adapter(name: &str, device: u32) -> suanli_gpu::AdapterInfo {
        suanli_gpu::AdapterInfo {
            name: name.into(),
            backend: "vulkan".into(),
            device_type: "discrete-gpu".into(),
            driver: String::new(),
            driver_info: String::new(),
            vendor: 0x10de,
            device,
            pci_bus_id: format!("0000:{device:02x}:00.0"),
            metering: suanli_gpu::Metering::Timestamp,
            index: device as usize,
        }
    }

    #[test]
    fn each_gpu_is_one_device_with_its_slots() {
        let (a, b) = (adapter("NVIDIA H100", 1), adapter("NVIDIA H100", 0));
        let workers = [
            (Some(1), a.clone()),
            (Some(1), a),
            (Some(0), b.clone()),
            (Some(0), b),
        ];
        let got = devices(&workers);
        let summary: Vec<_> = got
            .iter()
            .map(|d| (d.index, d.pci_bus_id.as_str(), d.slots))
            .collect();
        assert_eq!(summary, [(0, "0000:00:00.0", 2), (1, "0000:01:00.0", 2)]);
        // Without --gpu: the adapter the worker chose, by its own index.
        let one = devices(&[(None, adapter("llvmpipe", 3))]);
        assert_eq!((one[0].index, one[0].slots), (3, 1));
    }

    #[test]
    fn gpus_of_one_model_pass_and_mixed_models_are_refused_naming_them() {
        let h100 = adapter("NVIDIA H100", 1);
        let mut other_bus = h100.clone();
        other_bus.pci_bus_id = "0000:41:00.0".into();
        assert!(same_model(&[(Some(0), h100.clone()), (Some(1), other_bus)]).is_ok());
        assert!(same_model(&[]).is_ok());
        let err = same_model(&[
            (Some(0), h100.clone()),
            (Some(0), h100),
            (Some(1), adapter("NVIDIA A100", 2)),
        ])
        .unwrap_err();
        assert!(
            err.contains("0: NVIDIA H100 (vulkan), 1: NVIDIA A100 (vulkan)"),
            "{err}"
        );
        assert!(err.contains("one node per model"), "{err}");
    }
}
