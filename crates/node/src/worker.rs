//! The slot worker: a child process of the node (`suanli worker`) that owns
//! one GPU device and runs jobs on it, one at a time, in the sandbox.
//!
//! Everything a job can reach (wasmtime, naga, wgpu, the driver) lives here,
//! not in the node, so a stack overflow, an abort or a driver segfault ends
//! one attempt (`crashed`) instead of the provider's node and its other
//! slots. The node restarts the worker; a persistent worker per slot keeps
//! the warm path warm (device, engine and compiled components are reused).
//!
//! A watchdog thread enforces what wasmtime cannot: a job blocked in a WASI
//! host call (`sleep`, `poll`) is not interrupted by the epoch deadline, so
//! [`STOP_GRACE`] after its deadline or cancel, if it is not waiting on the
//! GPU, the watchdog reports the job ended and asks the node to restart the
//! worker. A GPU wait is left to end on its own (bounded by the dispatch
//! limit) so the kernel it waits for is metered and charged.

use std::io::Write;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use suanli_gpu::{Gpu, GpuOptions, Quotas, Slot};
use suanli_proto::{MAX_LOG_CHUNK_BYTES, Outcome};
use suanli_sandbox::{JobProbe, RunHooks, Sandbox, SandboxConfig};

use crate::ipc::{FromWorker, RunJob, ToWorker, WorkerInit, WorkerReport, read_msg, write_msg};
use crate::lock;

/// How long after its deadline or cancel a job not waiting on the GPU may
/// take to end by itself before the watchdog ends it (the epoch traps wasm
/// within one 10 ms tick; the rest is tearing the job down).
pub const STOP_GRACE: Duration = Duration::from_millis(50);
/// How often the watchdog looks.
const WATCH_TICK: Duration = Duration::from_millis(5);
/// Environment variable that turns on test-only failpoints: with it set to
/// `1`, a job whose log contains [`FAILPOINT_ABORT`] aborts its worker.
pub const FAILPOINTS_ENV: &str = "SUANLI_TEST_FAILPOINTS";
/// Log text that aborts the worker when failpoints are on.
pub const FAILPOINT_ABORT: &[u8] = b"suanli-failpoint:abort";

type Out = Arc<Mutex<std::fs::File>>;

fn send(out: &Out, msg: &FromWorker) {
    if let Err(err) = write_msg(&mut *lock(out), msg) {
        tracing::error!(%err, "cannot write to the node; exiting");
        std::process::exit(1);
    }
}

/// The job running now, as the watchdog and the cancel reader see it.
struct Running {
    cancel: Arc<AtomicBool>,
    probe: Arc<JobProbe>,
    /// `Done` was sent (by the job thread or the watchdog): only once.
    reported: AtomicBool,
    started: Instant,
    metered: AtomicU64,
    stop_seen: Mutex<Option<Instant>>,
}

type Current = Arc<Mutex<Option<Arc<Running>>>>;

/// The worker's entry point (`suanli worker`): reads [`ToWorker`] frames on
/// stdin, writes [`FromWorker`] frames on stdout. Exits when stdin closes.
pub fn worker_main() -> ExitCode {
    let out: Out = match protocol_stdout() {
        Ok(file) => Arc::new(Mutex::new(file)),
        Err(err) => {
            eprintln!("suanli worker: no usable stdout: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdin = std::io::stdin().lock();
    let init = match read_msg::<ToWorker>(&mut stdin) {
        Ok(Some(ToWorker::Init(init))) => init,
        _ => return ExitCode::FAILURE,
    };
    let (slot, sandbox, quotas) = match open_slot(&init) {
        Ok(opened) => opened,
        Err(reason) => {
            send(&out, &FromWorker::Failed(reason));
            return ExitCode::FAILURE;
        }
    };
    send(
        &out,
        &FromWorker::Ready {
            adapter: slot.info().clone(),
            limits: slot.limits(),
        },
    );
    drop(stdin);
    let current: Current = Arc::default();
    let (jobs, queue) = std::sync::mpsc::sync_channel::<(RunJob, Arc<Running>)>(1);
    std::thread::spawn({
        let current = current.clone();
        move || read_commands(jobs, current)
    });
    std::thread::spawn({
        let (current, out) = (current.clone(), out.clone());
        move || watchdog(current, out)
    });
    for (job, running) in queue {
        run_one(&slot, &sandbox, quotas, job, running, &current, &out);
    }
    ExitCode::SUCCESS
}

/// Opens the GPU, one device and the sandbox.
fn open_slot(init: &WorkerInit) -> Result<(Slot, Sandbox, Quotas), String> {
    let gpu = Gpu::open(&GpuOptions {
        adapter_name: init.adapter.clone(),
        adapter_index: init.adapter_index,
        ..GpuOptions::default()
    })
    .map_err(|e| e.to_string())?;
    let slot = gpu.new_slot().map_err(|e| e.to_string())?;
    let sandbox = Sandbox::new(SandboxConfig {
        cache_dir: Some(init.cache_dir.clone()),
        cache_max_bytes: init.cache_max_bytes,
        ..SandboxConfig::default()
    })
    .map_err(|e| e.to_string())?;
    let mut quotas = Quotas::default();
    if let Some(cap) = init.max_gpu_memory {
        quotas.max_buffer_bytes = quotas.max_buffer_bytes.min(cap);
    }
    Ok((slot, sandbox, quotas))
}

/// Reads the node's commands: jobs go to the job thread, cancels to the
/// running job. The node closing the pipe ends the worker.
///
/// A job becomes `current` here, in the order the node sent it, so a cancel
/// that follows its `Run` at once always finds it.
fn read_commands(jobs: std::sync::mpsc::SyncSender<(RunJob, Arc<Running>)>, current: Current) {
    let mut stdin = std::io::stdin().lock();
    loop {
        match read_msg::<ToWorker>(&mut stdin) {
            Ok(Some(ToWorker::Run(job))) => {
                let running = Arc::new(Running {
                    cancel: Arc::default(),
                    probe: Arc::default(),
                    reported: AtomicBool::new(false),
                    started: Instant::now(),
                    metered: AtomicU64::new(0),
                    stop_seen: Mutex::new(None),
                });
                *lock(&current) = Some(running.clone());
                if jobs.send((job, running)).is_err() {
                    break;
                }
            }
            Ok(Some(ToWorker::Cancel)) => {
                if let Some(running) = lock(&current).as_ref() {
                    running.cancel.store(true, Ordering::Relaxed);
                }
            }
            Ok(Some(ToWorker::Init(_))) => tracing::warn!("ignoring a second init"),
            Ok(None) | Err(_) => break,
        }
    }
    // The node is gone or confused: nobody wants our results.
    std::process::exit(0);
}

fn run_one(
    slot: &Slot,
    sandbox: &Sandbox,
    quotas: Quotas,
    job: RunJob,
    running: Arc<Running>,
    current: &Current,
    out: &Out,
) {
    let limits = suanli_sandbox::JobLimits {
        max_memory_bytes: usize::try_from(job.limits.max_memory_bytes).unwrap_or(usize::MAX),
        timeout: Duration::from_nanos(job.limits.timeout_ns),
        max_gpu_ns: job.limits.max_gpu_ns,
        max_dispatch: Duration::from_nanos(job.limits.max_dispatch_ns),
        gpu: quotas,
        ..suanli_sandbox::JobLimits::default()
    };
    let hooks = RunHooks {
        cancel: Some(running.cancel.clone()),
        on_log: Some(log_sink(out.clone())),
        probe: Some(running.probe.clone()),
    };
    let report = sandbox.run_with(slot, &job.module, &job.input, &limits, &hooks);
    {
        let mut now = lock(current);
        if now.as_ref().is_some_and(|r| Arc::ptr_eq(r, &running)) {
            *now = None;
        }
    }
    let report = match report {
        Ok(r) => WorkerReport {
            outcome: r.outcome,
            error: r.error,
            output: r.output,
            gpu_ns: r.gpu_ns,
            wall_ns: r.wall_ns,
            restart: r.slot_hung,
        },
        // The device is still busy with an earlier job's kernel.
        Err(e) => WorkerReport {
            outcome: Outcome::ProviderFault,
            error: Some(e.to_string()),
            output: Vec::new(),
            gpu_ns: 0,
            wall_ns: 0,
            restart: true,
        },
    };
    if !running.reported.swap(true, Ordering::AcqRel) {
        send(out, &FromWorker::Done(report));
    }
}

/// Forwards the job's log to the node in chunks that fit a frame; with
/// failpoints on, aborts the process on [`FAILPOINT_ABORT`].
fn log_sink(out: Out) -> suanli_sandbox::LogSink {
    let failpoints = std::env::var(FAILPOINTS_ENV).is_ok_and(|v| v == "1");
    Arc::new(move |bytes: &[u8]| {
        if failpoints
            && bytes
                .windows(FAILPOINT_ABORT.len())
                .any(|w| w == FAILPOINT_ABORT)
        {
            tracing::warn!("failpoint: aborting the worker");
            std::process::abort();
        }
        for chunk in bytes.chunks(MAX_LOG_CHUNK_BYTES) {
            send(&out, &FromWorker::Log(chunk.to_vec()));
        }
    })
}

/// Reports metered GPU time as it grows, and ends a job that outlives its
/// deadline or cancel by [`STOP_GRACE`] outside a GPU wait.
fn watchdog(current: Current, out: Out) {
    loop {
        std::thread::sleep(WATCH_TICK);
        // Held while reporting: the job thread clears `current` before it
        // sends its `Done`, so nothing about a job follows its `Done` (a
        // late `Metered` would be read by the node as the next job's).
        let now = lock(&current);
        let Some(running) = now.as_ref() else {
            continue;
        };
        let gpu_ns = running.probe.gpu_ns();
        if running.metered.swap(gpu_ns, Ordering::Relaxed) != gpu_ns {
            send(&out, &FromWorker::Metered { gpu_ns });
        }
        if let Some(outcome) = overdue(running)
            && !running.reported.swap(true, Ordering::AcqRel)
        {
            tracing::warn!(outcome = %outcome, "job stuck outside wasm and the GPU; restarting the worker");
            send(&out, &FromWorker::Done(stuck_report(running, outcome)));
        }
    }
}

/// `Some(outcome)` once the job should have stopped and has spent
/// [`STOP_GRACE`] since then outside GPU waits.
fn overdue(running: &Running) -> Option<Outcome> {
    let now = Instant::now();
    let reason = if running.cancel.load(Ordering::Relaxed) {
        Outcome::Cancelled
    } else if running.probe.deadline().is_some_and(|d| now >= d) {
        Outcome::Timeout
    } else {
        return None;
    };
    let mut seen = lock(&running.stop_seen);
    if running.probe.is_in_gpu_call() {
        // The kernel is metered when it ends; the grace starts after that.
        *seen = None;
        return None;
    }
    let since = *seen.get_or_insert(now);
    (now.duration_since(since) >= STOP_GRACE).then_some(reason)
}

fn stuck_report(running: &Running, outcome: Outcome) -> WorkerReport {
    let why = match outcome {
        Outcome::Cancelled => "the job was cancelled",
        _ => "time limit exceeded",
    };
    WorkerReport {
        outcome,
        error: Some(format!(
            "{why} while the job was blocked in a host call (e.g. sleep); it was stopped from outside"
        )),
        output: Vec::new(),
        gpu_ns: running.probe.gpu_ns(),
        wall_ns: u64::try_from(running.started.elapsed().as_nanos()).unwrap_or(u64::MAX),
        restart: true,
    }
}

/// The protocol's stdout: a private copy of fd 1, with fd 1 itself pointed
/// at stderr, so a library that prints (a driver, a panic hook) cannot
/// corrupt the frames.
#[cfg(unix)]
fn protocol_stdout() -> std::io::Result<std::fs::File> {
    use std::os::fd::{AsFd, AsRawFd};
    std::io::stdout().flush()?;
    let copy = std::io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: dup2 on two descriptors this process owns; fd 1 is replaced
    // atomically and `copy` stays valid.
    if unsafe { libc::dup2(std::io::stderr().as_raw_fd(), 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(std::fs::File::from(copy))
}

#[cfg(not(unix))]
fn protocol_stdout() -> std::io::Result<std::fs::File> {
    use std::os::windows::io::AsHandle;
    Ok(std::fs::File::from(
        std::io::stdout().as_handle().try_clone_to_owned()?,
    ))
}
