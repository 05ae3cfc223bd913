//! Job start latency (`suanli bench --start`): the instantiation floor, a
//! warm start of a no-op job through the sandbox, and a cold start (a
//! component this process never saw: compilation included).

use std::time::Instant;

use serde::Serialize;
use suanli_gpu::{AdapterInfo, Slot};
use suanli_sandbox::{CacheHit, JobLimits, Sandbox, SandboxConfig};

use crate::{BenchError, check, duration_ns};

/// Runs before measuring, so caches, the allocator and the device are warm.
pub const WARM_UP_RUNS: usize = 20;
/// Least number of measured warm runs, whatever is asked (percentiles of
/// fewer say little).
pub const MIN_RUNS: usize = 100;
/// Cold starts measured (each on a fresh sandbox); the median is reported.
pub const COLD_RUNS: usize = 3;

/// What to measure.
#[derive(Clone, Debug)]
pub struct StartBenchConfig {
    /// A job that does nothing for `input` (the `misbehave` test job with
    /// input `ok`, or an `empty` job).
    pub wasm: Vec<u8>,
    pub input: Vec<u8>,
    /// Measured warm runs (at least [`MIN_RUNS`]).
    pub runs: usize,
    /// Settings of the sandboxes measured (pooling allocator on or off).
    pub sandbox: SandboxConfig,
}

#[derive(Clone, Debug, Serialize)]
pub struct StartReport {
    pub adapter: AdapterInfo,
    pub runs: usize,
    /// Median of instantiating the cached component in a ready store and
    /// calling `run` once ([`Sandbox::instance_floor`]).
    pub instance_floor_ns: u64,
    /// `Sandbox::run` of the no-op job, component cached: median and 99th
    /// percentile of the host wall time of the whole call.
    pub warm_start_p50_ns: u64,
    pub warm_start_p99_ns: u64,
    /// `Sandbox::run` on a fresh sandbox with no disk cache (compilation
    /// included), median of [`COLD_RUNS`].
    pub cold_start_ns: u64,
    /// The compilation part of `cold_start_ns`.
    pub cold_load_ns: u64,
}

pub fn run(slot: &Slot, config: &StartBenchConfig) -> Result<StartReport, BenchError> {
    let limits = JobLimits::default();
    let runs = config.runs.max(MIN_RUNS);

    let mut cold = Vec::new();
    for _ in 0..COLD_RUNS {
        let sandbox = Sandbox::new(config.sandbox.clone())?;
        let r = sandbox.run(slot, &config.wasm, &config.input, &limits)?;
        check(&r)?;
        debug_assert_eq!(r.cache, CacheHit::Miss);
        cold.push((r.wall_ns, r.load_ns));
    }

    let sandbox = Sandbox::new(config.sandbox.clone())?;
    let mut floor = Vec::with_capacity(runs);
    let mut warm = Vec::with_capacity(runs);
    for i in 0..WARM_UP_RUNS + runs {
        let f = sandbox.instance_floor(slot, &config.wasm, &config.input)?;
        let started = Instant::now();
        let r = sandbox.run(slot, &config.wasm, &config.input, &limits)?;
        let wall = started.elapsed();
        check(&r)?;
        if i >= WARM_UP_RUNS {
            floor.push(duration_ns(f));
            warm.push(duration_ns(wall));
        }
    }
    floor.sort_unstable();
    warm.sort_unstable();
    cold.sort_unstable();
    let (cold_start_ns, cold_load_ns) = cold[cold.len() / 2];
    Ok(StartReport {
        adapter: slot.info().clone(),
        runs,
        instance_floor_ns: percentile(&floor, 50),
        warm_start_p50_ns: percentile(&warm, 50),
        warm_start_p99_ns: percentile(&warm, 99),
        cold_start_ns,
        cold_load_ns,
    })
}

/// The `p`th percentile of sorted, non-empty `samples` (nearest rank).
fn percentile(samples: &[u64], p: usize) -> u64 {
    let rank = (samples.len() * p).div_ceil(100).max(1);
    samples[rank.min(samples.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentiles_are_nearest_rank() {
        let samples: Vec<u64> = (1..=200).collect();
        assert_eq!(percentile(&samples, 50), 100);
        assert_eq!(percentile(&samples, 99), 198);
        assert_eq!(percentile(&[7], 50), 7);
        assert_eq!(percentile(&[7], 99), 7);
    }
}
