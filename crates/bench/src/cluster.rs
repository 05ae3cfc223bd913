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

/// Every figure measured in one run, side by side. `p50_ns`, `p99_ns` and
/// `jobs_per_second` are the older names of `round_trip_p50_ns`,
/// `round_trip_p99_ns` and `real_node_jobs_per_s` (kept for existing users).
#[derive(Clone, Debug, Serialize)]
pub struct ClusterReport {
    pub round_trips: usize,
    pub p50_ns: u64,
    pub p99_ns: u64,
    pub pipelined: usize,
    pub slots: u32,
    pub jobs_per_second: f64,
    /// A raw QUIC request/response of about a submission's size, on one
    /// persistent stream, with suanli's TLS and transport configuration.
    pub echo_rtt_p50_ns: u64,
    /// A 4 KiB write + fdatasync in the coordinator's data directory.
    pub fsync_p50_ns: u64,
    /// The job's own time in the sandbox (its receipt's `wall_ns`).
    pub job_exec_p50_ns: u64,
    /// Submit → result in hand for the small job with a real node.
    pub round_trip_p50_ns: u64,
    pub round_trip_p99_ns: u64,
    /// Jobs submitted back to back, all waited for, one real node.
    pub real_node_jobs_per_s: f64,
    /// Open-loop load through the coordinator alone (in-process nodes that
    /// answer at once with signed receipts): jobs finished per second.
    pub fake_node_jobs_per_s: f64,
    /// Submission → final state under that load.
    pub fake_node_p50_ns: u64,
    pub fake_node_p99_ns: u64,
    /// The rate the load offered and the arrivals shed because
    /// [`FAKE_MAX_IN_FLIGHT`] jobs were already in flight.
    pub fake_node_offered_per_s: f64,
    pub fake_node_shed: u64,
    /// What `admin check` found after the load (empty: consistent).
    pub admin_check_problems: Vec<String>,
    /// The ledger's durability mode in this run.
    pub durability: &'static str,
}

/// Open-loop load: arrivals per second offered to the coordinator.
pub const FAKE_TARGET_RATE: u64 = 10_000;
/// How long the open-loop load runs.
pub const FAKE_LOAD_SECONDS: u64 = 10;
/// Fake nodes, and the slots each announces (their tokens allow as many).
pub const FAKE_NODES: u8 = 4;
pub const FAKE_NODE_SLOTS: u32 = 256;
/// Tenant connections the load is spread over (each allows 64 streams).
pub const FAKE_CLIENTS: usize = 16;
/// Jobs in flight at most; an arrival beyond it is shed (counted).
pub const FAKE_MAX_IN_FLIGHT: usize = 16 * 60;
/// Echoes and fsyncs measured for the floors.
const FLOOR_ROUNDS: usize = 200;

/// A coordinator, one node and a tenant client in this process, on loopback.
pub(crate) struct LocalCluster {
    coordinator: Coordinator,
    admin: Client,
    pub(crate) tenant: Client,
    stop: tokio::sync::watch::Sender<bool>,
    node_task: tokio::task::JoinHandle<()>,
    pub(crate) dir: std::path::PathBuf,
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
    let echo_rtt_p50_ns = crate::floor::echo_rtt_p50_ns(FLOOR_ROUNDS).await?;
    let cluster = LocalCluster::start("bench", config.slots).await?;
    let fsync_p50_ns =
        crate::floor::fsync_p50_ns(cluster.dir.join("coordinator"), FLOOR_ROUNDS).await?;
    let real = real_node(&cluster, config).await;
    cluster.stop().await;
    let real = real?;
    let fake = crate::fake_load::run().await?;
    Ok(ClusterReport {
        round_trips: real.round_trips,
        p50_ns: real.p50_ns,
        p99_ns: real.p99_ns,
        pipelined: real.pipelined,
        slots: config.slots,
        jobs_per_second: real.jobs_per_s,
        echo_rtt_p50_ns,
        fsync_p50_ns,
        job_exec_p50_ns: real.exec_p50_ns,
        round_trip_p50_ns: real.p50_ns,
        round_trip_p99_ns: real.p99_ns,
        real_node_jobs_per_s: real.jobs_per_s,
        fake_node_jobs_per_s: fake.jobs_per_s,
        fake_node_p50_ns: fake.p50_ns,
        fake_node_p99_ns: fake.p99_ns,
        fake_node_offered_per_s: fake.offered_per_s,
        fake_node_shed: fake.shed,
        admin_check_problems: fake.check,
        durability: "WAL, synchronous = FULL",
    })
}

/// What the real node's part measured.
struct RealNode {
    round_trips: usize,
    p50_ns: u64,
    p99_ns: u64,
    exec_p50_ns: u64,
    pipelined: usize,
    jobs_per_s: f64,
}

/// Sequential round trips, then pipelined throughput, on the real node.
async fn real_node(
    cluster: &LocalCluster,
    config: &ClusterBenchConfig,
) -> Result<RealNode, BenchError> {
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
    let mut exec = Vec::with_capacity(config.round_trips);
    for _ in 0..config.round_trips.max(1) {
        let started = Instant::now();
        let job = submit().await?;
        let (view, _) = tenant.result(job).await?;
        check(view.state)?;
        samples.push(started.elapsed().as_nanos() as u64);
        exec.extend(view.attempts.last().map(|a| a.wall_ns));
    }
    let round_trips = samples.len();
    let p50_ns = crate::floor::percentile(&mut samples, 50);
    let p99_ns = crate::floor::percentile(&mut samples, 99);

    let started = Instant::now();
    let mut jobs = Vec::with_capacity(config.pipelined);
    for _ in 0..config.pipelined.max(1) {
        jobs.push(submit().await?);
    }
    for job in &jobs {
        check(tenant.wait(*job).await?.state)?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    Ok(RealNode {
        round_trips,
        p50_ns,
        p99_ns,
        exec_p50_ns: crate::floor::percentile(&mut exec, 50),
        pipelined: jobs.len(),
        jobs_per_s: jobs.len() as f64 / elapsed,
    })
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
