pub mod admin;
pub mod bench;
pub mod billing;
pub mod completions;
pub mod connect;
pub mod coordinator;
pub mod demo;
pub mod gpus;
pub mod jobs;
pub mod json;
pub mod login;
pub mod new;
pub mod node;
pub mod progress;
pub mod run;
pub mod server_config;
pub mod submit;
pub mod table;
pub mod time;
pub mod token;
pub mod units;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};

use self::units::{Bytes, Secs};

/// The limits a job runs under: the same flags for `run` and `submit`.
/// Durations take seconds (`0.5`) or units (`500ms`, `2m`); sizes bytes or
/// units (`512MiB`).
#[derive(clap::Args)]
pub struct LimitArgs {
    /// Stop the job with `gpu_budget_exceeded` once its metered GPU time
    /// passes this (default: no budget).
    #[arg(long, value_name = "DURATION")]
    pub max_gpu_seconds: Option<Secs>,
    /// Wall-time limit.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub timeout: Secs,
    /// Linear-memory limit of the job (all its memories together).
    #[arg(long, value_name = "SIZE", default_value = "512MiB")]
    pub max_memory: Bytes,
    /// Longest one dispatch may keep the GPU busy; past it the job ends
    /// `gpu_hang`. With --max-gpu-seconds it bounds the charge:
    /// min(timeout, GPU budget + this) of GPU time. On a cluster the job
    /// runs only on nodes that allow it.
    #[arg(long, value_name = "DURATION", default_value = "10s")]
    pub max_dispatch_seconds: Secs,
}

impl LimitArgs {
    pub fn max_gpu_ns(&self) -> Option<u64> {
        self.max_gpu_seconds.map(Secs::as_nanos)
    }

    pub fn max_dispatch(&self) -> anyhow::Result<Duration> {
        if self.max_dispatch_seconds.0.is_zero() {
            bail!("--max-dispatch-seconds must be more than 0");
        }
        Ok(self.max_dispatch_seconds.0)
    }

    pub fn timeout(&self) -> Duration {
        self.timeout.0
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
