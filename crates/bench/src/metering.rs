//! Metering accuracy: the GPU time on a job's signed receipt (through a real
//! coordinator and node) vs the same kernel timed independently with native
//! wgpu timestamps on the same device, interleaved run by run.

use serde::Serialize;
use suanli_gpu::Slot;
use suanli_proto::usage::UsageQuery;
use suanli_proto::{JobLimits, Requirements};

use crate::BenchError;
use crate::cluster::{LocalCluster, check};

#[derive(Clone, Debug)]
pub struct MeteringBenchConfig {
    pub matmul_wasm: Vec<u8>,
    pub n: u32,
    pub runs: usize,
}

#[derive(Clone, Debug, Serialize)]
pub struct MeteringReport {
    pub n: u32,
    pub runs: usize,
    /// Median `gpu_ns` of the verified receipts.
    pub receipt_gpu_ns: u64,
    /// Median kernel time from native timestamps.
    pub native_gpu_ns: u64,
    /// |receipt − native| / native, of the medians.
    pub relative_error: f64,
    /// The largest per-pair relative error.
    pub worst_pair_error: f64,
}

/// `slot` is an independent device on the same adapter as the node's.
pub async fn run(slot: &Slot, config: &MeteringBenchConfig) -> Result<MeteringReport, BenchError> {
    let cluster = LocalCluster::start("metering", 1).await?;
    let problem = matmul::reference::problem(config.n);
    let input = matmul::reference::encode_input(&problem);
    let submit = || {
        cluster.tenant.submit(
            &config.matmul_wasm,
            &input,
            Requirements::default(),
            JobLimits {
                timeout_ns: 600_000_000_000,
                ..JobLimits::default()
            },
            1,
        )
    };
    // Warm up both sides (compile the job, the native pipeline).
    check(cluster.tenant.wait(submit().await?).await?.state)?;
    let timestamps = slot.info().metering == suanli_gpu::Metering::Timestamp;
    let mut pairs = Vec::new();
    for _ in 0..config.runs.max(1) {
        let job = submit().await?;
        check(cluster.tenant.wait(job).await?.state)?;
        let (device, queue) = slot.wgpu();
        let native = crate::native::matmul(device, queue, &problem, timestamps)?;
        pairs.push((job, native.gpu_ns));
    }
    let records = cluster.tenant.usage_records(UsageQuery::default()).await?;
    let mut receipt = Vec::new();
    let mut native = Vec::new();
    let mut worst = 0f64;
    for (job, native_ns) in &pairs {
        let record = records
            .iter()
            .find(|r| r.receipt.job == *job)
            .ok_or_else(|| BenchError::Job(format!("no usage record for job {job}")))?;
        suanli_ledger::billing::check_record(record).map_err(BenchError::Job)?;
        let r = record.receipt.gpu_ns;
        worst = worst.max((r as f64 - *native_ns as f64).abs() / (*native_ns).max(1) as f64);
        receipt.push(r);
        native.push(*native_ns);
    }
    cluster.stop().await;
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v[v.len() / 2]
    };
    let (r, n) = (median(receipt), median(native));
    Ok(MeteringReport {
        n: config.n,
        runs: pairs.len(),
        receipt_gpu_ns: r,
        native_gpu_ns: n,
        relative_error: (r as f64 - n as f64).abs() / n.max(1) as f64,
        worst_pair_error: worst,
    })
}
