//! Benchmarks that matter, measured side by side in one process on one device:
//! the sandbox's overhead (a matmul job vs the same WGSL on native wgpu) and a
//! job's cold vs warm start. Numbers are printed, never asserted.

mod cluster;
mod fake_load;
pub mod fake_node;
mod floor;
mod metering;
mod native;
mod start;
mod transfer;

pub use cluster::{
    ClusterBenchConfig, ClusterReport, FAKE_CLIENTS, FAKE_LOAD_SECONDS, FAKE_MAX_IN_FLIGHT,
    FAKE_NODE_SLOTS, FAKE_NODES, FAKE_TARGET_RATE, run as run_cluster,
};
pub use metering::{MeteringBenchConfig, MeteringReport, run as run_metering};
pub use start::{StartBenchConfig, StartReport, run as run_start};
pub use transfer::{
    DEFAULT_SIZES as TRANSFER_SIZES, TransferBenchConfig, TransferReport, TransferSize,
    run as run_transfer,
};

use std::time::{Duration, Instant};

use serde::Serialize;
use suanli_gpu::{AdapterInfo, GpuError, Slot};
use suanli_sandbox::{CacheHit, JobLimits, Outcome, Sandbox, SandboxConfig, SandboxError};

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(transparent)]
    Gpu(#[from] GpuError),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("the benchmark job did not succeed: {0}")]
    Job(String),
    #[error("the job's result differs from native wgpu's (largest difference {0})")]
    Mismatch(f32),
    #[error(transparent)]
    Net(#[from] suanli_net::NetError),
}

/// What to measure.
#[derive(Clone, Debug)]
pub struct BenchConfig {
    /// The matmul example job's bytes.
    pub matmul_wasm: Vec<u8>,
    /// Matrix size.
    pub n: u32,
    /// Runs of each side; the median is reported.
    pub runs: usize,
}

/// Medians of one side of the comparison.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Side {
    /// Kernel time from GPU timestamps (the job's metered `gpu_ns`).
    pub gpu_ns: u64,
    /// Upload, dispatch and readback, measured on the host.
    pub wall_ns: u64,
}

#[derive(Clone, Debug, Serialize)]
pub struct Report {
    pub adapter: AdapterInfo,
    pub n: u32,
    pub runs: usize,
    pub job: Side,
    pub native: Side,
    /// Compiling the job (no cache) + running it.
    pub cold_start_ns: u64,
    pub cold_load_ns: u64,
    /// The same job again, compiled component in memory.
    pub warm_start_ns: u64,
    pub warm_load_ns: u64,
}

impl Report {
    pub fn gpu_ratio(&self) -> f64 {
        self.job.gpu_ns as f64 / self.native.gpu_ns.max(1) as f64
    }

    pub fn wall_ratio(&self) -> f64 {
        self.job.wall_ns as f64 / self.native.wall_ns.max(1) as f64
    }
}

pub fn run(slot: &Slot, config: &BenchConfig) -> Result<Report, BenchError> {
    let problem = matmul::reference::problem(config.n);
    let input = matmul::reference::encode_input(&problem);
    let limits = JobLimits {
        timeout: Duration::from_secs(600),
        ..JobLimits::default()
    };

    // Cold vs warm start: a fresh sandbox without a disk cache compiles.
    let sandbox = Sandbox::new(SandboxConfig::default())?;
    let cold = sandbox.run(slot, &config.matmul_wasm, &input, &limits)?;
    check(&cold)?;
    debug_assert_eq!(cold.cache, CacheHit::Miss);
    let warm = sandbox.run(slot, &config.matmul_wasm, &input, &limits)?;
    check(&warm)?;

    let timestamps = slot.info().metering == suanli_gpu::Metering::Timestamp;
    let mut job = Vec::new();
    let mut native = Vec::new();
    for _ in 0..config.runs.max(1) {
        // Interleaved, so drift in the machine's load hits both sides alike.
        let started = Instant::now();
        let r = sandbox.run(slot, &config.matmul_wasm, &input, &limits)?;
        let wall = started.elapsed();
        check(&r)?;
        job.push((r.gpu_ns, duration_ns(wall) - r.load_ns));
        let (device, queue) = slot.wgpu();
        let started = Instant::now();
        let run = native::matmul(device, queue, &problem, timestamps)?;
        let wall = started.elapsed();
        native.push((run.gpu_ns, duration_ns(wall)));
        let diff = r
            .output
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .zip(&run.c)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        if diff > 0.0 {
            return Err(BenchError::Mismatch(diff));
        }
    }
    Ok(Report {
        adapter: slot.info().clone(),
        n: config.n,
        runs: config.runs.max(1),
        job: median(&job),
        native: median(&native),
        cold_start_ns: cold.wall_ns,
        cold_load_ns: cold.load_ns,
        warm_start_ns: warm.wall_ns,
        warm_load_ns: warm.load_ns,
    })
}

fn check(r: &suanli_sandbox::JobReport) -> Result<(), BenchError> {
    if r.outcome == Outcome::Succeeded {
        Ok(())
    } else {
        Err(BenchError::Job(
            r.error.clone().unwrap_or_else(|| r.outcome.as_str().into()),
        ))
    }
}

fn median(samples: &[(u64, u64)]) -> Side {
    let pick = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    Side {
        gpu_ns: pick(samples.iter().map(|s| s.0).collect()),
        wall_ns: pick(samples.iter().map(|s| s.1).collect()),
    }
}

fn duration_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
