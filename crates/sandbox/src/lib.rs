//! The sandbox that runs suanli jobs: wasm components of the `suanli:gpu/job`
//! world, on wasmtime, with their GPU calls bound to one `suanli-gpu` slot.
//!
//! A job gets WASI p2 with no preopened directories, no network and no
//! environment; its stdout and stderr go to a bounded log. Limits: linear
//! memory, wall time (epoch interruption plus a deadline on GPU waits),
//! metered GPU time, log size, and the GPU quotas of `suanli-gpu`.
//!
//! **Architecture invariant:** this crate knows nothing about networks or
//! billing. A job can only end in a [`JobReport`]: nothing a job does makes
//! [`Sandbox::run`] panic or fail, and the slot is clean for the next job.

mod bindings;
mod cache;
mod host;
mod limits;
mod log;
mod outcome;
mod pool;
mod probe;
mod ticker;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use suanli_gpu::{AdapterInfo, GpuError, JobGpu, Metering, Quotas, Slot};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Config, Engine, Store, UpdateDeadline};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

pub use cache::CacheHit;
pub use limits::{MAX_INSTANCES, MAX_MEMORIES, MAX_TABLES};
pub use outcome::Outcome;
pub use pool::{POOL_MAX_MEMORY_BYTES, PoolingConfig};
pub use probe::JobProbe;

use crate::cache::{ComponentCache, LoadError};
use crate::limits::MemoryLimiter;
use crate::log::LogPipe;
use crate::ticker::EpochTicker;

/// How often the epoch advances; the granularity of wall-time limits.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Settings of one sandbox (one per process, shared by all slots).
#[derive(Clone, Debug)]
pub struct SandboxConfig {
    /// Directory for compiled components; `None` keeps them in memory only.
    pub cache_dir: Option<PathBuf>,
    /// Bytes of compiled components kept in `cache_dir`; past it the least
    /// recently used are deleted. Several processes may share the
    /// directory (a node's slot workers): each evicts after it writes, and
    /// a file another deleted is a cache miss. Default 4 GiB.
    pub cache_max_bytes: u64,
    /// Compiled components kept in memory. Default 64.
    pub max_cached_components: usize,
    /// How long a job waits for its slot's device to finish an earlier job's
    /// kernel before the run fails (the provider's fault). Default 120 s.
    pub idle_wait: Duration,
    /// Instances, memories and tables from wasmtime's pooling allocator,
    /// sized from the per-job counts ([`MAX_INSTANCES`], [`MAX_MEMORIES`],
    /// [`MAX_TABLES`]): a warm start reuses a slot instead of mapping memory.
    /// `None` allocates on demand. Default: on, [`PoolingConfig::default`].
    pub pooling: Option<PoolingConfig>,
}

impl Default for SandboxConfig {
    fn default() -> SandboxConfig {
        SandboxConfig {
            cache_dir: None,
            cache_max_bytes: 4 << 30,
            max_cached_components: 64,
            idle_wait: Duration::from_secs(120),
            pooling: Some(PoolingConfig::default()),
        }
    }
}

/// Limits of one job. Every one is finite by default.
#[derive(Clone, Debug)]
pub struct JobLimits {
    /// Linear memory of all the job's memories together. Default 512 MiB.
    pub max_memory_bytes: usize,
    /// Wall time from instantiation to the end of `run`. Default 60 s.
    pub timeout: Duration,
    /// GPU budget: once this much GPU time is metered no dispatch starts and
    /// the job stops `gpu_budget_exceeded`. `None`: no budget beyond the timeout.
    pub max_gpu_ns: Option<u64>,
    /// Longest one dispatch (or copy) may keep the GPU busy; past it the job
    /// ends `gpu_hang` and the slot must be recovered. Default 10 s.
    pub max_dispatch: Duration,
    /// Bytes of stdout + stderr kept. Default 1 MiB.
    pub max_log_bytes: usize,
    /// End the job (`log_limit`) instead of truncating its log. Default false.
    pub kill_on_log_overflow: bool,
    /// Output bytes a job may return. Default 256 MiB.
    pub max_output_bytes: usize,
    pub gpu: Quotas,
}

impl Default for JobLimits {
    fn default() -> JobLimits {
        JobLimits {
            max_memory_bytes: 512 << 20,
            timeout: Duration::from_secs(60),
            max_gpu_ns: None,
            max_dispatch: suanli_gpu::DEFAULT_MAX_DISPATCH,
            max_log_bytes: 1 << 20,
            kill_on_log_overflow: false,
            max_output_bytes: 256 << 20,
            gpu: Quotas::default(),
        }
    }
}

/// How a caller follows and steers a running job.
#[derive(Clone, Default)]
pub struct RunHooks {
    /// Set to stop the job (outcome `cancelled`) within one epoch tick.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Receives the job's log as it is written (only the bytes kept).
    pub on_log: Option<LogSink>,
    /// Updated as the job runs, for a supervisor on another thread.
    pub probe: Option<Arc<JobProbe>>,
}

/// A callback for log bytes.
pub type LogSink = Arc<dyn Fn(&[u8]) + Send + Sync>;

/// Everything known about one run of a job.
#[derive(Clone, Debug, Serialize)]
pub struct JobReport {
    pub outcome: Outcome,
    /// Why the job did not succeed, for people; at most
    /// [`suanli_proto::MAX_ERROR_BYTES`].
    pub error: Option<String>,
    #[serde(skip)]
    pub output: Vec<u8>,
    pub output_bytes: usize,
    /// The job's stdout and stderr, interleaved, lossily decoded.
    pub log: String,
    /// Log bytes discarded past the limit.
    pub log_truncated_bytes: u64,
    /// Metered GPU-busy nanoseconds, including the overrun of a dispatch that
    /// crossed the GPU budget.
    pub gpu_ns: u64,
    /// Wall nanoseconds from load to the end of the job (includes compilation on a cache miss).
    pub wall_ns: u64,
    /// Wall nanoseconds spent compiling or loading the component.
    pub load_ns: u64,
    pub dispatches: u64,
    pub metering: Metering,
    pub adapter: AdapterInfo,
    /// BLAKE3 of the job's bytes.
    pub module_hash: String,
    pub cache: CacheHit,
    /// The slot's device may still run this job's kernel (`gpu_hang`): it
    /// must be recovered before another job uses it.
    pub slot_hung: bool,
}

/// A failure of the host, not of the job.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot set up the wasm engine: {0}")]
    Engine(String),
    #[error("cannot start the job on its GPU slot: {0}")]
    Slot(#[from] GpuError),
    /// Every instance slot of the pooling allocator is taken by jobs running
    /// now ([`PoolingConfig::concurrent_jobs`]): the host's capacity, not
    /// the job's fault; retry once one ends.
    #[error("the sandbox already runs as many jobs as its instance pool holds: {0}")]
    PoolExhausted(String),
    /// Only from [`Sandbox::instance_floor`]: the benchmark job did not
    /// instantiate or trapped.
    #[error("cannot measure the instantiation floor: {0}")]
    Floor(String),
}

/// The wasmtime engine, linker and compiled-component cache, reused across jobs.
pub struct Sandbox {
    idle_wait: Duration,
    engine: Engine,
    linker: Linker<JobState>,
    cache: ComponentCache,
    _ticker: EpochTicker,
}

/// A job's store data.
pub(crate) struct JobState {
    wasi: WasiCtx,
    table: ResourceTable,
    gpu: JobGpu,
    limiter: MemoryLimiter,
    max_gpu_ns: Option<u64>,
    probe: Arc<JobProbe>,
}

impl WasiView for JobState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Sandbox {
    pub fn new(config: SandboxConfig) -> Result<Sandbox, SandboxError> {
        let mut wasm = Config::new();
        wasm.wasm_component_model(true);
        wasm.epoch_interruption(true);
        // Bounded native stack for deeply recursive jobs: a stack overflow is a trap.
        wasm.max_wasm_stack(1 << 20);
        if let Some(pooling) = &config.pooling {
            wasm.allocation_strategy(pooling.strategy());
        }
        let engine = Engine::new(&wasm).map_err(|e| SandboxError::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        bindings::Job::add_to_linker::<_, HasSelf<_>>(&mut linker, |s| s)
            .map_err(|e| SandboxError::Engine(e.to_string()))?;
        let cache = ComponentCache::new(
            &engine,
            config.cache_dir,
            config.cache_max_bytes,
            config.max_cached_components,
        );
        let ticker = EpochTicker::start(engine.clone(), EPOCH_TICK);
        Ok(Sandbox {
            idle_wait: config.idle_wait,
            engine,
            linker,
            cache,
            _ticker: ticker,
        })
    }

    /// Runs `wasm` with `input` on `slot`. Errors only when the slot is busy
    /// or the instance pool is full; whatever the job does ends in a report.
    pub fn run(
        &self,
        slot: &Slot,
        wasm: &[u8],
        input: &[u8],
        limits: &JobLimits,
    ) -> Result<JobReport, SandboxError> {
        self.run_with(slot, wasm, input, limits, &RunHooks::default())
    }

    /// [`Sandbox::run`], with a cancel flag and a live log.
    pub fn run_with(
        &self,
        slot: &Slot,
        wasm: &[u8],
        input: &[u8],
        limits: &JobLimits,
        hooks: &RunHooks,
    ) -> Result<JobReport, SandboxError> {
        // A kernel of an earlier job may still run past that job's deadline;
        // this job's clock starts only once the device is free, and a device
        // that stays busy is the provider's problem, not this job's.
        if !slot.wait_idle(self.idle_wait) {
            return Err(SandboxError::Slot(suanli_gpu::GpuError::new(
                suanli_gpu::ErrorKind::SlotBusy,
                format!(
                    "the GPU is still busy with an earlier job's kernel after {} s",
                    self.idle_wait.as_secs()
                ),
            )));
        }
        let mut gpu = slot.begin_job(limits.gpu)?;
        gpu.set_max_dispatch(limits.max_dispatch);
        let probe = hooks.probe.clone().unwrap_or_default();
        let started = Instant::now();
        let hash = blake3::hash(wasm);
        let mut report = JobReport {
            outcome: Outcome::Succeeded,
            error: None,
            output: Vec::new(),
            output_bytes: 0,
            log: String::new(),
            log_truncated_bytes: 0,
            gpu_ns: 0,
            wall_ns: 0,
            load_ns: 0,
            dispatches: 0,
            metering: slot.info().metering,
            adapter: slot.info().clone(),
            module_hash: hash.to_hex().to_string(),
            cache: CacheHit::Miss,
            slot_hung: false,
        };
        let prepared = match outcome::check_header(wasm) {
            Err(reason) => Err((Outcome::InvalidJob, reason)),
            Ok(()) => self
                .cache
                .get_or_prepare(&self.engine, &self.linker, hash, wasm)
                .map_err(|e| outcome::classify_load(&e)),
        };
        report.load_ns = elapsed_ns(started);
        let prepared = match prepared {
            Ok((pre, hit)) => {
                report.cache = hit;
                pre
            }
            Err((outcome, reason)) => {
                report.outcome = outcome;
                report.error = Some(reason);
                report.wall_ns = elapsed_ns(started);
                return Ok(report);
            }
        };

        let log = LogPipe::new(
            limits.max_log_bytes,
            limits.kill_on_log_overflow,
            hooks.on_log.clone(),
        );
        let mut store = self.new_store(gpu, limits, &log, hooks.cancel.clone(), probe.clone());

        let result = prepared
            .instantiate(&mut store)
            .map_err(|e| (true, e))
            .and_then(|job| job.call_run(&mut store, input).map_err(|e| (false, e)));
        let state = store.data();
        let mut panicked = false;
        report.gpu_ns = state.gpu.gpu_ns();
        report.dispatches = state.gpu.dispatches();
        report.slot_hung = state.gpu.hung();
        probe.metered(report.gpu_ns, report.dispatches);
        match result {
            Ok(Ok(output)) if output.len() > limits.max_output_bytes => {
                report.outcome = Outcome::JobError;
                report.error = Some(format!(
                    "the job returned {} bytes of output; the limit is {} bytes",
                    output.len(),
                    limits.max_output_bytes
                ));
            }
            Ok(Ok(output)) => {
                report.output_bytes = output.len();
                report.output = output;
            }
            Ok(Err(message)) => {
                report.outcome = Outcome::JobError;
                report.error = Some(message);
            }
            Err((true, err)) if outcome::pool_exhausted(&err) => {
                return Err(SandboxError::PoolExhausted(outcome::describe(&err)));
            }
            Err((instantiating, err)) => {
                let (outcome, message) = outcome::classify(&err, state.limiter.hit, instantiating);
                report.outcome = outcome;
                report.error = Some(message);
                panicked = outcome == Outcome::Trap;
            }
        }
        drop(store);
        let contents = log.contents();
        report.log = String::from_utf8_lossy(&contents.bytes).into_owned();
        report.log_truncated_bytes = contents.dropped;
        if panicked && report.log.contains("panicked at") {
            report.error = report
                .error
                .map(|e| format!("the job panicked (its log says why): {e}"));
        }
        report.error = report.error.map(suanli_proto::bounded_error);
        report.wall_ns = elapsed_ns(started);
        tracing::debug!(
            outcome = report.outcome.as_str(),
            gpu_ns = report.gpu_ns,
            wall_ns = report.wall_ns,
            "job finished"
        );
        Ok(report)
    }

    /// A store for one job: WASI without files, network or environment, its
    /// log, the memory limiter, and the wall-time deadline checked every
    /// epoch tick (with the cancel flag).
    fn new_store(
        &self,
        gpu: JobGpu,
        limits: &JobLimits,
        log: &LogPipe,
        cancel: Option<Arc<AtomicBool>>,
        probe: Arc<JobProbe>,
    ) -> Store<JobState> {
        let wasi = WasiCtxBuilder::new()
            .stdout(log.clone())
            .stderr(log.clone())
            .allow_blocking_current_thread(false)
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        let mut store = Store::new(
            &self.engine,
            JobState {
                wasi,
                table: ResourceTable::new(),
                gpu,
                limiter: MemoryLimiter::new(limits.max_memory_bytes),
                max_gpu_ns: limits.max_gpu_ns,
                probe: probe.clone(),
            },
        );
        store.limiter(|s| &mut s.limiter);
        let deadline = Instant::now() + limits.timeout;
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                return Err(wasmtime::Error::new(host::HostTrap::Cancelled));
            }
            if Instant::now() >= deadline {
                return Ok(UpdateDeadline::Interrupt);
            }
            Ok(UpdateDeadline::Continue(1))
        });
        store.data_mut().gpu.set_deadline(Some(deadline));
        probe.set_deadline(deadline);
        store
    }

    /// For benchmarks: the floor of a warm start, the time of instantiating
    /// the (cached) component in a ready store and calling its `run` with
    /// `input` once. Compiling, building the store and WASI context, and
    /// taking the slot are outside the measured span; a job's output or
    /// error is ignored, only a failure to instantiate or a trap is an error.
    pub fn instance_floor(
        &self,
        slot: &Slot,
        wasm: &[u8],
        input: &[u8],
    ) -> Result<Duration, SandboxError> {
        let floor = |e: String| SandboxError::Floor(e);
        outcome::check_header(wasm).map_err(floor)?;
        let (prepared, _) = self
            .cache
            .get_or_prepare(&self.engine, &self.linker, blake3::hash(wasm), wasm)
            .map_err(|(LoadError::Compile(e) | LoadError::Link(e))| floor(outcome::describe(&e)))?;
        let limits = JobLimits::default();
        let log = LogPipe::new(limits.max_log_bytes, false, None);
        let gpu = slot.begin_job(limits.gpu)?;
        let mut store = self.new_store(gpu, &limits, &log, None, Arc::default());
        let started = Instant::now();
        let job = prepared
            .instantiate(&mut store)
            .map_err(|e| floor(outcome::describe(&e)))?;
        let _ = job
            .call_run(&mut store, input)
            .map_err(|e| floor(outcome::describe(&e)))?;
        Ok(started.elapsed())
    }
}

fn elapsed_ns(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
