pub mod admin;
pub mod bench;
pub mod billing;
pub mod connect;
pub mod coordinator;
pub mod demo;
pub mod gpus;
pub mod jobs;
pub mod json;
pub mod node;
pub mod run;
pub mod submit;
pub mod time;
pub mod token;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

/// Seconds as given on the command line (`0.05`, `30`) to nanoseconds.
pub fn seconds_to_ns(flag: &str, seconds: f64) -> anyhow::Result<u64> {
    if !seconds.is_finite() || !(0.0..=1e9).contains(&seconds) {
        bail!("{flag} must be a number of seconds between 0 and 1e9, not {seconds}");
    }
    Ok((seconds * 1e9).round() as u64)
}

/// The limits a job runs under: the same flags for `run` and `submit`.
#[derive(clap::Args)]
pub struct LimitArgs {
    /// Stop the job with `gpu_budget_exceeded` once its metered GPU time passes this.
    #[arg(long, value_name = "SECONDS")]
    pub max_gpu_seconds: Option<f64>,
    /// Wall-time limit.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
    /// Linear-memory limit of the job.
    #[arg(long, value_name = "BYTES", default_value_t = 512 << 20)]
    pub max_memory: u64,
    /// Longest one dispatch may keep the GPU busy; past it the job ends
    /// `gpu_hang`. With --max-gpu-seconds it bounds the charge:
    /// min(timeout, GPU budget + this) of GPU time. On a cluster the job
    /// runs only on nodes that allow it.
    #[arg(long, value_name = "SECONDS", default_value_t = suanli_proto::DEFAULT_MAX_DISPATCH_NS as f64 / 1e9)]
    pub max_dispatch_seconds: f64,
}

impl LimitArgs {
    pub fn max_gpu_ns(&self) -> anyhow::Result<Option<u64>> {
        self.max_gpu_seconds
            .map(|s| seconds_to_ns("--max-gpu-seconds", s))
            .transpose()
    }

    pub fn max_dispatch(&self) -> anyhow::Result<Duration> {
        let ns = seconds_to_ns("--max-dispatch-seconds", self.max_dispatch_seconds)?;
        if ns == 0 {
            bail!("--max-dispatch-seconds must be more than 0");
        }
        Ok(Duration::from_nanos(ns))
    }

    pub fn timeout(&self) -> anyhow::Result<Duration> {
        Ok(Duration::from_nanos(seconds_to_ns(
            "--timeout",
            self.timeout,
        )?))
    }
}

/// The job's input file, or empty input.
pub fn read_input(path: Option<&std::path::Path>) -> anyhow::Result<Vec<u8>> {
    match path {
        Some(path) => read_file("input", path),
        None => Ok(Vec::new()),
    }
}

/// `$XDG_CACHE_HOME/suanli/components`, else `~/.cache/suanli/components`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("suanli").join("components"))
}

pub fn read_file(what: &str, path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

/// Runs an async command on a multi-threaded tokio runtime.
pub fn block_on<F: std::future::Future<Output = anyhow::Result<std::process::ExitCode>>>(
    future: F,
) -> anyhow::Result<std::process::ExitCode> {
    block_on_value(future)
}

/// Runs a future to completion on a fresh multi-threaded runtime.
///
/// The runtime is never dropped: its worker and blocking threads (some of
/// which drove Vulkan) end with the process. Letting them exit earlier, after
/// the GPU devices were released, crashed NVIDIA's driver in thread teardown.
pub fn block_on_value<T, E: Into<anyhow::Error>>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        // Blocking threads run jobs on the GPU; keep them for the process's
        // life rather than letting idle ones exit (see above).
        .thread_keep_alive(std::time::Duration::from_secs(365 * 24 * 3600))
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(future).map_err(Into::into);
    std::mem::forget(runtime);
    result
}
