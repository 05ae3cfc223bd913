//! The node's side of its slot workers: spawn one per slot, hand it jobs,
//! relay its log, and end the attempt whatever the worker does — report,
//! die, wedge or lie. A worker that died or asked for it is replaced in the
//! background while the attempt's result goes out.

use std::io::BufReader;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use suanli_gpu::{AdapterInfo, SlotLimits};
use suanli_proto::MAX_LOG_CHUNK_BYTES;
use tokio::sync::Notify;

use crate::ipc::{FromWorker, IpcError, RunJob, ToWorker, WorkerInit, WorkerReport};
use crate::ipc::{read_msg, write_msg};
use crate::lock;

/// How long a new worker may take to open its GPU device.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// Past the job's timeout and dispatch limit, how long the node waits for a
/// worker that neither reports nor dies (compilation of the job happens
/// before its clock starts) before killing it. Below the coordinator's
/// default attempt grace (30 s), so the node's `crashed` report arrives
/// before the coordinator gives the attempt up as `provider_fault`.
const BACKSTOP_SLACK: Duration = Duration::from_secs(20);
/// After a cancel, how long beyond the dispatch limit the worker has.
const CANCEL_SLACK: Duration = Duration::from_secs(2);
/// Frames from a worker buffered before it blocks on its pipe.
const INBOX: usize = 256;

/// How to start a worker: `program args...` (by default this executable's
/// `worker` subcommand).
#[derive(Clone, Debug)]
pub struct WorkerCommand {
    pub program: PathBuf,
    pub args: Vec<String>,
}

impl WorkerCommand {
    /// `suanli worker`, from the running executable.
    pub fn current_exe() -> WorkerCommand {
        WorkerCommand {
            program: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("suanli")),
            args: vec!["worker".into()],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error("cannot start the slot worker {program}: {source}")]
    Spawn {
        program: PathBuf,
        source: std::io::Error,
    },
    #[error("the slot worker could not open its GPU: {0}")]
    Failed(String),
    #[error("the slot worker did not start: {0}")]
    NotReady(String),
}

/// How an attempt ended in a worker.
pub(crate) enum Ran {
    Report(WorkerReport),
    /// The worker died or was killed; `gpu_ns` is what it had metered.
    Crashed {
        gpu_ns: u64,
        reason: String,
    },
}

/// One live worker process and its pipes.
pub(crate) struct Worker {
    child: Child,
    stdin: ChildStdin,
    inbox: Receiver<Result<FromWorker, IpcError>>,
    pub(crate) adapter: AdapterInfo,
    pub(crate) limits: SlotLimits,
    /// How it was started (its GPU): a replacement starts the same way.
    init: WorkerInit,
}

impl Worker {
    /// Its GPU and slot for metrics: the adapter index (or `default`) and
    /// the slot's number on the node.
    pub(crate) fn gpu_label(&self) -> crate::metrics::GpuLabel {
        crate::metrics::GpuLabel {
            gpu: self
                .init
                .adapter_index
                .map_or_else(|| "default".to_owned(), |i| i.to_string()),
            slot: self.init.slot.to_string(),
        }
    }

    /// Starts a worker and waits until its slot is open.
    pub(crate) fn spawn(cmd: &WorkerCommand, init: &WorkerInit) -> Result<Worker, WorkerError> {
        let spawn_err = |source| WorkerError::Spawn {
            program: cmd.program.clone(),
            source,
        };
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .env_clear()
            .envs(worker_env())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(spawn_err)?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(WorkerError::NotReady("no pipes".into()));
        };
        let (tx, inbox) = sync_channel(INBOX);
        std::thread::Builder::new()
            .name("suanli-worker-pipe".into())
            .spawn(move || {
                let mut reader = BufReader::new(stdout);
                loop {
                    let msg = read_msg::<FromWorker>(&mut reader).transpose();
                    let end = !matches!(msg, Some(Ok(_)));
                    if msg.is_none_or(|m| tx.send(m).is_err()) || end {
                        return;
                    }
                }
            })
            .map_err(spawn_err)?;
        let ready = match write_msg(&mut stdin, &ToWorker::Init(init.clone())) {
            Ok(()) => inbox.recv_timeout(READY_TIMEOUT).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let error = match ready {
            Ok(Ok(FromWorker::Ready { adapter, limits })) => {
                return Ok(Worker {
                    child,
                    stdin,
                    inbox,
                    adapter,
                    limits,
                    init: init.clone(),
                });
            }
            Ok(Ok(FromWorker::Failed(reason))) => WorkerError::Failed(reason),
            Ok(Ok(_)) => WorkerError::NotReady("unexpected first message".into()),
            Ok(Err(e)) => WorkerError::NotReady(format!(
                "{e} (is `{} {}` a suanli slot worker?)",
                cmd.program.display(),
                cmd.args.join(" ")
            )),
            Err(e) => WorkerError::NotReady(e),
        };
        let _ = child.kill();
        let _ = child.wait();
        Err(error)
    }

    /// Runs one job to its end. Never hangs: a worker that stops talking is
    /// killed at the backstop.
    pub(crate) fn run(&mut self, job: RunJob, cancel: &AtomicBool, on_log: &dyn Fn(&[u8])) -> Ran {
        let mut log = LogRelay::new(on_log);
        let ran = self.relay(job, cancel, &mut log);
        log.flush();
        ran
    }

    fn relay(&mut self, job: RunJob, cancel: &AtomicBool, log: &mut LogRelay) -> Ran {
        let limits = &job.limits;
        let dispatch = Duration::from_nanos(limits.max_dispatch_ns);
        let mut backstop =
            Instant::now() + Duration::from_nanos(limits.timeout_ns) + dispatch + BACKSTOP_SLACK;
        let mut gpu_ns = 0;
        if let Err(e) = write_msg(&mut self.stdin, &ToWorker::Run(job)) {
            return self.crashed(gpu_ns, format!("cannot hand the job to the worker: {e}"));
        }
        let mut cancel_sent = false;
        loop {
            if !cancel_sent && cancel.load(Ordering::Relaxed) {
                cancel_sent = true;
                let _ = write_msg(&mut self.stdin, &ToWorker::Cancel);
                backstop = backstop.min(Instant::now() + dispatch + CANCEL_SLACK);
            }
            if Instant::now() >= backstop {
                self.kill();
                return Ran::Crashed {
                    gpu_ns,
                    reason: "the worker neither ended the job nor answered in time; it was killed"
                        .into(),
                };
            }
            log.tick();
            match self.inbox.recv_timeout(Duration::from_millis(10)) {
                Ok(Ok(FromWorker::Log(bytes))) => log.push(&bytes),
                Ok(Ok(FromWorker::Metered { gpu_ns: g })) => gpu_ns = gpu_ns.max(g),
                Ok(Ok(FromWorker::Done(report))) => return Ran::Report(report),
                Ok(Ok(_)) => return self.crashed(gpu_ns, "the worker sent nonsense".into()),
                Ok(Err(e)) => return self.crashed(gpu_ns, format!("the worker's pipe broke: {e}")),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status();
                    return Ran::Crashed {
                        gpu_ns,
                        reason: format!("the worker process running the job died ({status})"),
                    };
                }
            }
        }
    }

    fn crashed(&mut self, gpu_ns: u64, reason: String) -> Ran {
        self.kill();
        Ran::Crashed { gpu_ns, reason }
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// How the process ended (killed after a second if it lingers).
    fn exit_status(&mut self) -> String {
        let until = Instant::now() + Duration::from_secs(1);
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return describe_exit(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(10)),
                _ => {
                    self.kill();
                    return "closed its pipe and was killed".into();
                }
            }
        }
    }
}

/// A job's log on its way from its worker to the coordinator: gathered
/// into chunks of up to [`MAX_LOG_CHUNK_BYTES`] (a job writing one byte at a
/// time would otherwise cost the coordinator a log append, with its ledger
/// lookup, per byte), sent at least every [`LOG_FLUSH`], and cut at the
/// worker's log limit whatever a worker sends.
struct LogRelay<'a> {
    on_log: &'a dyn Fn(&[u8]),
    pending: Vec<u8>,
    since: Option<Instant>,
    /// Bytes taken so far (sent or pending).
    taken: usize,
    limit: usize,
}

/// Longest a log byte waits in the node before it is sent on.
const LOG_FLUSH: Duration = Duration::from_millis(20);

impl<'a> LogRelay<'a> {
    fn new(on_log: &'a dyn Fn(&[u8])) -> LogRelay<'a> {
        LogRelay {
            on_log,
            pending: Vec::new(),
            since: None,
            taken: 0,
            limit: suanli_sandbox::JobLimits::default().max_log_bytes,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        let kept = &bytes[..bytes.len().min(self.limit.saturating_sub(self.taken))];
        if kept.is_empty() {
            return;
        }
        self.taken += kept.len();
        self.since.get_or_insert_with(Instant::now);
        self.pending.extend_from_slice(kept);
        if self.pending.len() >= MAX_LOG_CHUNK_BYTES {
            self.flush();
        }
    }

    fn tick(&mut self) {
        if self.since.is_some_and(|t| t.elapsed() >= LOG_FLUSH) {
            self.flush();
        }
    }

    fn flush(&mut self) {
        if !self.pending.is_empty() {
            (self.on_log)(&self.pending);
            self.pending.clear();
        }
        self.since = None;
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Environment variables a worker inherits: what GPU drivers, the dynamic
/// linker and logging read, and the test failpoint switch. Nothing else (a
/// node's `SUANLI_TOKEN` in particular) reaches the process that runs
/// strangers' code.
fn worker_env() -> impl Iterator<Item = (std::ffi::OsString, std::ffi::OsString)> {
    const PREFIXES: [&str; 9] = [
        "VK_", "MESA_", "LP_", "GALLIUM_", "__GL", "__NV", "NVIDIA_", "CUDA_", "WGPU_",
    ];
    const NAMES: [&str; 9] = [
        "PATH",
        "HOME",
        "LD_LIBRARY_PATH",
        "XDG_RUNTIME_DIR",
        "NODEVICE_SELECT",
        "DISPLAY",
        "RUST_LOG",
        "RUST_BACKTRACE",
        crate::worker::FAILPOINTS_ENV,
    ];
    std::env::vars_os().filter(|(key, _)| {
        key.to_str()
            .is_some_and(|k| NAMES.contains(&k) || PREFIXES.iter().any(|p| k.starts_with(p)))
    })
}

fn describe_exit(status: std::process::ExitStatus) -> String {
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = match signal {
                libc::SIGABRT => " (SIGABRT: abort, e.g. a stack overflow)",
                libc::SIGSEGV => " (SIGSEGV)",
                libc::SIGKILL => " (SIGKILL)",
                libc::SIGBUS => " (SIGBUS)",
                libc::SIGILL => " (SIGILL)",
                _ => "",
            };
            return format!("killed by signal {signal}{name}");
        }
    }
    status.to_string()
}

/// The node's idle workers, one per free slot. Jobs wait here for a slot;
/// a worker being restarted rejoins when its device is open.
pub(crate) struct WorkerPool {
    idle: Mutex<Vec<Worker>>,
    returned: Notify,
    command: WorkerCommand,
    /// Slots in all (one worker each).
    slots: usize,
    /// Workers being restarted now (their slots have no live worker).
    restarting: std::sync::atomic::AtomicUsize,
}

impl WorkerPool {
    /// Starts one worker per `inits` entry at once; fails if any cannot
    /// open its slot.
    pub(crate) fn start(
        command: WorkerCommand,
        inits: &[WorkerInit],
    ) -> Result<WorkerPool, WorkerError> {
        let workers: Vec<Result<Worker, WorkerError>> = std::thread::scope(|s| {
            let spawned: Vec<_> = inits
                .iter()
                .map(|init| s.spawn(|| Worker::spawn(&command, init)))
                .collect();
            spawned
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(WorkerError::NotReady("spawn thread".into())))
                })
                .collect()
        });
        let workers = workers.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok(WorkerPool {
            slots: workers.len(),
            idle: Mutex::new(workers),
            returned: Notify::new(),
            command,
            restarting: Default::default(),
        })
    }

    /// (slots running a job, slots with a live worker, slots in all).
    pub(crate) fn counts(&self) -> (usize, usize, usize) {
        let idle = lock(&self.idle).len();
        let restarting = self.restarting.load(std::sync::atomic::Ordering::Relaxed);
        let live = self.slots.saturating_sub(restarting);
        (live.saturating_sub(idle), live, self.slots)
    }

    /// The adapter and limits of each worker's device, with the adapter
    /// index it was asked for (`None`: the best adapter or `--adapter`).
    pub(crate) fn describe(&self) -> Vec<(Option<usize>, AdapterInfo, SlotLimits)> {
        lock(&self.idle)
            .iter()
            .map(|w| (w.init.adapter_index, w.adapter.clone(), w.limits))
            .collect()
    }

    /// A free worker, waiting up to `patience` for one.
    pub(crate) async fn take(&self, patience: Duration) -> Option<Worker> {
        let until = tokio::time::Instant::now() + patience;
        loop {
            let returned = self.returned.notified();
            if let Some(worker) = lock(&self.idle).pop() {
                return Some(worker);
            }
            if tokio::time::timeout_at(until, returned).await.is_err() {
                return None;
            }
        }
    }

    pub(crate) fn put(&self, worker: Worker) {
        lock(&self.idle).push(worker);
        self.returned.notify_one();
    }

    /// Replaces a worker that died or must not run another job: kills and
    /// reaps it, then retries (with backoff) until a new one opens its
    /// slot, and makes that one available. All of it on a blocking thread:
    /// reaping waits for the old process to exit (its GPU context torn
    /// down, or longer if it is stuck in a driver call), which must not
    /// stall the node's session.
    pub(crate) fn replace(self: &Arc<Self>, old: Worker) {
        let pool = self.clone();
        pool.restarting
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(move || {
            let init = old.init.clone();
            drop(old);
            let mut pauses = suanli_net::backoff::pauses(
                Duration::from_millis(100),
                Duration::from_secs(30),
                None,
            );
            loop {
                match Worker::spawn(&pool.command, &init) {
                    Ok(worker) => {
                        tracing::info!("slot worker restarted");
                        pool.restarting
                            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                        pool.put(worker);
                        return;
                    }
                    Err(err) => {
                        tracing::error!(%err, "cannot restart a slot worker; retrying");
                        std::thread::sleep(pauses.next().unwrap_or(Duration::from_secs(30)));
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn a_log_written_byte_by_byte_reaches_the_coordinator_in_few_chunks_within_the_limit() {
        let chunks = RefCell::new(Vec::<usize>::new());
        let on_log = |bytes: &[u8]| chunks.borrow_mut().push(bytes.len());
        let mut relay = LogRelay::new(&on_log);
        // A job printing one byte at a time, two million times (a
        // subverted worker would not stop at the job's log limit).
        for _ in 0..2_000_000 {
            relay.push(b"x");
            relay.tick();
        }
        relay.flush();
        let chunks = chunks.into_inner();
        let total: usize = chunks.iter().sum();
        assert_eq!(total, suanli_sandbox::JobLimits::default().max_log_bytes);
        assert!(
            chunks.len() <= 64,
            "{} log messages for {total} bytes",
            chunks.len()
        );
        // A short line is not held back.
        let seen = RefCell::new(0);
        let on_log = |bytes: &[u8]| *seen.borrow_mut() += bytes.len();
        let mut relay = LogRelay::new(&on_log);
        relay.push(b"hello\n");
        std::thread::sleep(LOG_FLUSH);
        relay.tick();
        assert_eq!(*seen.borrow(), 6);
    }
}
