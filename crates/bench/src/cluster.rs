//! Round trips of small jobs through a coordinator and a node on loopback,
//! and pipelined throughput: the protocol's and scheduler's overhead around a
//! job that does almost no GPU work.

use std::time::{Duration, Instant};

use serde::Serialize;
use suanli_coordinator::{Coordinator, CoordinatorConfig};
use suanli_net::Client;
use suanli_node::{Node, NodeConfig};
use suanli_proto::{JobLimits, JobState, Requirements, Role};

use crate::BenchError;

#[derive(Clone, Debug)]
pub struct ClusterBenchConfig {
    /// The vector-add example job's bytes.
    pub vector_add_wasm: Vec<u8>,
    /// Sequential round trips measured.
    pub round_trips: usize,
    /// Jobs submitted back to back for the throughput figure.
    pub pipelined: usize,
    /// Slots of the one node.
    pub slots: u32,
}

#[derive(Clone, Debug, Serialize)]
pub struct ClusterReport {
    pub round_trips: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub pipelined: usize,
    pub slots: u32,
    pub jobs_per_second: f64,
}

/// A coordinator, one node and a tenant client in this process, on loopback.
pub(crate) struct LocalCluster {
    coordinator: Coordinator,
    admin: Client,
    pub(crate) tenant: Client,
    stop: tokio::sync::watch::Sender<bool>,
    node_task: tokio::task::JoinHandle<()>,
    dir: std::path::PathBuf,
}

impl LocalCluster {
    pub(crate) async fn start(name: &str, slots: u32) -> Result<LocalCluster, BenchError> {
        let dir = std::env::temp_dir().join(format!("suanli-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let coordinator = Coordinator::start(CoordinatorConfig::new(
            ([127, 0, 0, 1], 0).into(),
            dir.join("coordinator"),
        ))
        .await
        .map_err(|e| BenchError::Job(e.to_string()))?;
        let (addr, fp) = (coordinator.addr(), coordinator.fingerprint().to_owned());
        let admin_token = coordinator.new_admin_token.clone().unwrap_or_default();
        let admin = Client::connect(addr, &fp, &admin_token, Role::Admin).await?;
        let tenant_token = admin.create_token(Role::Tenant, "bench").await?;
        let node_token = admin.create_token(Role::Node, "bench-node").await?;
        let mut node_config = NodeConfig::new(addr, fp.clone(), node_token, dir.join("node"));
        node_config.slots = slots;
        let node = tokio::task::spawn_blocking(move || Node::new(node_config))
            .await
            .map_err(|e| BenchError::Job(e.to_string()))?
            .map_err(|e| BenchError::Job(e.to_string()))?;
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let node_task = tokio::spawn(node.run(stop_rx));
        while admin.nodes().await?.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let tenant = Client::connect(addr, &fp, &tenant_token, Role::Tenant).await?;
        Ok(LocalCluster {
            coordinator,
            admin,
            tenant,
            stop,
            node_task,
            dir,
        })
    }

    /// Stops the node and waits for it, so its GPU devices are released
    /// before the runtime goes away (dropping live Vulkan devices at process
    /// teardown crashed NVIDIA's driver).
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), self.node_task).await;
        self.tenant.close().await;
        self.admin.close().await;
        self.coordinator.shutdown().await;
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub async fn run(config: &ClusterBenchConfig) -> Result<ClusterReport, BenchError> {
    let cluster = LocalCluster::start("bench", config.slots).await?;
    let tenant = &cluster.tenant;
    let input: Vec<u8> = (0..128u32).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let submit = || {
        tenant.submit(
            &config.vector_add_wasm,
            &input,
            Requirements::default(),
            JobLimits::default(),
            1,
        )
    };

    // Warm up: upload the blobs, compile the job on the node.
    let job = submit().await?;
    check(tenant.result(job).await?.0.state)?;

    let mut samples = Vec::with_capacity(config.round_trips);
    for _ in 0..config.round_trips.max(1) {
        let started = Instant::now();
        let job = submit().await?;
        let (view, _) = tenant.result(job).await?;
        check(view.state)?;
        samples.push(started.elapsed().as_nanos() as u64);
    }
    samples.sort_unstable();
    let pct = |p: usize| samples[(samples.len() * p / 100).min(samples.len() - 1)];

    let started = Instant::now();
    let mut jobs = Vec::with_capacity(config.pipelined);
    for _ in 0..config.pipelined.max(1) {
        jobs.push(submit().await?);
    }
    for job in &jobs {
        check(tenant.wait(*job).await?.state)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let report = ClusterReport {
        round_trips: samples.len(),
        p50_ns: pct(50),
        p99_ns: pct(99),
        pipelined: jobs.len(),
        slots: config.slots,
        jobs_per_second: jobs.len() as f64 / elapsed,
    };
    cluster.stop().await;
    Ok(report)
}

pub(crate) fn check(state: JobState) -> Result<(), BenchError> {
    if state == JobState::Succeeded {
        Ok(())
    } else {
        Err(BenchError::Job(format!(
            "a benchmark job ended {}",
            state.as_str()
        )))
    }
}
