//! One connection to the coordinator: register (reporting attempts in
//! flight), re-send unacknowledged results, then run assignments until the
//! connection ends. Jobs outlive a session: they finish into the outbox and
//! are delivered through whichever session is live.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use suanli_net::frame::{read_frame, write_frame};
use suanli_net::{Client, NetError};
use suanli_proto::{
    Assignment, AttemptResult, ErrorCode, FromNode, Hash, JobLimits, MAX_LOG_CHUNK_BYTES, Metering,
    NodeCaps, Outcome, Receipt, Role, ToNode, bounded_error,
};
use tokio::sync::mpsc;

use crate::ipc::RunJob;
use crate::supervisor::Ran;
use crate::{Link, NodeConfig, Runtime, lock};

/// Unacknowledged results are re-sent this often while connected.
const RESEND: Duration = Duration::from_secs(5);
/// How long an assignment waits for a slot (a worker being restarted takes
/// 40–60 ms on lavapipe); below the coordinator's default attempt grace.
const SLOT_PATIENCE: Duration = Duration::from_secs(20);
/// Largest output a job may return (the sandbox's default limit).
const MAX_OUTPUT_BYTES: usize = 256 << 20;

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

pub(crate) async fn run(config: &NodeConfig, rt: Arc<Runtime>) -> Result<(), NetError> {
    let client = Arc::new(
        Client::connect(
            config.coordinator,
            &config.fingerprint,
            &config.token,
            Role::Node,
        )
        .await?,
    );
    let running: Vec<(u64, u32)> = lock(&rt.running).keys().copied().collect();
    let mut info = rt.info.clone();
    info.in_flight = running.clone();
    info.in_flight.extend(rt.outbox.list());
    let (mut send, mut recv, node_id, adopted) = client.register(info).await?;
    tracing::info!(node_id, coordinator = %config.coordinator, adopted = adopted.len(), "registered with the coordinator");
    // Attempts we still run that the coordinator no longer assigns to us
    // were declared lost while we were away: stop them.
    let adopted: HashSet<(u64, u32)> = adopted.into_iter().collect();
    for key in running {
        if !adopted.contains(&key)
            && let Some(flag) = lock(&rt.running).get(&key)
        {
            tracing::info!(
                job = key.0,
                attempt = key.1,
                "stopping an attempt the coordinator declared lost"
            );
            flag.store(true, Ordering::Relaxed);
        }
    }
    let (up, mut up_rx) = mpsc::unbounded_channel::<FromNode>();
    let writer = tokio::spawn(async move {
        while let Some(message) = up_rx.recv().await {
            if let Err(err) = write_frame(&mut send, &message).await {
                tracing::warn!(%err, "cannot send to the coordinator");
                break;
            }
        }
    });
    if rt.draining.load(Ordering::Relaxed) {
        let _ = up.send(FromNode::Draining);
    }
    *lock(&rt.link) = Some(Link {
        client: client.clone(),
        up,
    });
    rt.metrics.connected.set(1);
    let resender = tokio::spawn(resend_loop(rt.clone()));
    let ended = loop {
        match read_frame::<ToNode>(&mut recv).await {
            Ok(Some(ToNode::Run(assignment))) => {
                let flag = Arc::new(AtomicBool::new(false));
                lock(&rt.running).insert((assignment.job, assignment.attempt), flag.clone());
                tokio::spawn(run_job(rt.clone(), node_id, assignment, flag));
            }
            Ok(Some(ToNode::Cancel { job, attempt })) => {
                if let Some(flag) = lock(&rt.running).get(&(job, attempt)) {
                    tracing::info!(job, attempt, "cancelling");
                    flag.store(true, Ordering::Relaxed);
                }
            }
            Ok(Some(ToNode::Ack {
                job,
                attempt,
                accepted,
                reason,
            })) => {
                if !accepted {
                    tracing::warn!(
                        job,
                        attempt,
                        reason = reason.as_deref().unwrap_or(""),
                        "the coordinator refused a result"
                    );
                }
                rt.outbox.remove((job, attempt));
                rt.changed.notify_waiters();
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    *lock(&rt.link) = None;
    rt.metrics.connected.set(0);
    resender.abort();
    writer.abort();
    ended
}

/// Sends every kept result now, then again every [`RESEND`] until acknowledged.
async fn resend_loop(rt: Arc<Runtime>) {
    loop {
        for key in rt.outbox.list() {
            deliver(&rt, key).await;
        }
        tokio::time::sleep(RESEND).await;
    }
}

/// Uploads a kept result's output and sends the result, if connected.
/// Failure leaves it in the outbox for the next try.
async fn deliver(rt: &Runtime, key: (u64, u32)) {
    let Some(link) = rt.link() else {
        return;
    };
    let (result, output) = match rt.outbox.load(key) {
        Ok(r) => r,
        Err(err) => {
            tracing::error!(job = key.0, attempt = key.1, %err, "unreadable result in the outbox; dropping it");
            rt.outbox.remove(key);
            return;
        }
    };
    let result = match upload_output(rt, &link, result, &output).await {
        Some(result) => result,
        None => return,
    };
    let _ = link.up.send(FromNode::Finished(Box::new(result)));
}

/// Uploads the result's output, if any. `None`: try again later (the
/// connection failed). An output the coordinator refuses for good (larger
/// than its blob limit) would be re-sent forever: the result is re-signed as
/// `job_error` without output instead, and kept so in the outbox.
async fn upload_output(
    rt: &Runtime,
    link: &Link,
    result: AttemptResult,
    output: &[u8],
) -> Option<AttemptResult> {
    if result.receipt.output.is_none() {
        return Some(result);
    }
    let key = (result.receipt.job, result.receipt.attempt);
    match link.client.put_blob(output).await {
        Ok(_) => Some(result),
        Err(NetError::Remote {
            code: ErrorCode::TooLarge,
            message,
        }) => {
            tracing::warn!(job = key.0, attempt = key.1, %message, "output refused for good; reporting job_error");
            let mut receipt = result.receipt;
            receipt.output = None;
            receipt.outcome = Outcome::JobError;
            let refused = AttemptResult {
                signature: rt.signer.sign(&receipt),
                receipt,
                error: Some(bounded_error(format!(
                    "the job's output of {} bytes was refused by the coordinator: {message}",
                    output.len()
                ))),
                output_bytes: 0,
            };
            if let Err(err) = rt.outbox.put(&refused, &[]) {
                tracing::error!(job = key.0, attempt = key.1, %err, "cannot keep the result on disk");
            }
            Some(refused)
        }
        Err(err) => {
            tracing::warn!(job = key.0, attempt = key.1, %err, "cannot upload the output; will retry");
            None
        }
    }
}

/// A testing aid (`suanli node --simulate-faults`): the node lies as a
/// dishonest provider would, after measuring and before signing, so its
/// receipt and output are what such a provider would send.
fn simulate_faults(
    sim: suanli_proto::FaultSimulation,
    mut measured: Measured,
    mut output: Option<Vec<u8>>,
) -> (Measured, Option<Vec<u8>>) {
    use rand::Rng;
    if let Some(out) = output.as_mut()
        && rand::rng().random_range(0..1_000_000u32) < sim.wrong_output_ppm
    {
        match out.first_mut() {
            Some(byte) => *byte ^= 0xff,
            None => out.push(0xff),
        }
    }
    let scaled = u128::from(measured.gpu_ns) * u128::from(sim.gpu_time_permille) / 1000;
    measured.gpu_ns = u64::try_from(scaled).unwrap_or(u64::MAX);
    (measured, output)
}

async fn run_job(rt: Arc<Runtime>, node_id: u64, a: Assignment, cancel: Arc<AtomicBool>) {
    let (job, attempt) = (a.job, a.attempt);
    let started_ms = now_ms();
    let ended = execute(&rt, &a, cancel).await;
    let (measured, error, output) = ended.unwrap_or_else(|(outcome, reason)| {
        tracing::warn!(job, attempt, %reason, outcome = outcome.as_str(), "attempt not run");
        (
            Measured {
                outcome,
                gpu_ns: 0,
                wall_ns: 0,
                metering: rt.info.gpu.metering,
                started_ms,
            },
            Some(reason),
            None,
        )
    });
    let (measured, output) = match rt.info.simulated_faults {
        Some(sim) => simulate_faults(sim, measured, output),
        None => (measured, output),
    };
    let receipt = Receipt {
        job,
        attempt,
        node_id,
        module: a.spec.module,
        input: a.spec.input,
        output: output.as_deref().map(Hash::of),
        gpu_ns: measured.gpu_ns,
        wall_ns: measured.wall_ns,
        outcome: measured.outcome,
        metering: measured.metering,
        started_ms: measured.started_ms,
        ended_ms: now_ms(),
    };
    let result = AttemptResult {
        signature: rt.signer.sign(&receipt),
        receipt,
        error: error.map(bounded_error),
        output_bytes: output.as_ref().map_or(0, |o| o.len() as u64),
    };
    let kept = rt
        .outbox
        .put(&result, output.as_deref().unwrap_or_default());
    lock(&rt.running).remove(&(job, attempt));
    match kept {
        Ok(()) => deliver(&rt, (job, attempt)).await,
        Err(err) => {
            // Not durable, but still worth sending once.
            tracing::error!(job, attempt, %err, "cannot keep the result on disk");
            if let Some(link) = rt.link() {
                let _ = link.up.send(FromNode::Finished(Box::new(result)));
            }
        }
    }
    rt.changed.notify_waiters();
}

/// What the node measured of one attempt (the receipt's body).
struct Measured {
    outcome: Outcome,
    gpu_ns: u64,
    wall_ns: u64,
    metering: Metering,
    started_ms: u64,
}

/// The job's limits, within the provider's caps whatever the assignment says.
fn capped(limits: &JobLimits, caps: &NodeCaps) -> JobLimits {
    JobLimits {
        max_gpu_ns: limits.max_gpu_ns,
        timeout_ns: limits.timeout_ns.min(caps.max_timeout_ns),
        max_memory_bytes: limits.max_memory_bytes.min(caps.max_memory_bytes),
        max_dispatch_ns: limits.max_dispatch_ns.min(caps.max_dispatch_ns),
    }
}

/// How long a fetch waits for a session to the coordinator when there is
/// none (between sessions) or the coordinator's shutdown cut it: a
/// restart, well within the coordinator's `attempt_grace` (30 s by
/// default) that covers fetching blobs.
const REFETCH_PATIENCE: Duration = Duration::from_secs(20);

/// A blob, through the cache. Without a session, or when the coordinator's
/// shutdown (a restart) cuts the fetch, it is tried on the next session
/// rather than ending the attempt as the provider's fault.
///
/// Without a connection for [`REFETCH_PATIENCE`] (counted from the fetch's
/// start or its last cut) the attempt ends `node_lost`, not
/// `provider_fault`: the coordinator's absence is not the provider's fault,
/// and the job is retried unbilled.
async fn fetch(rt: &Runtime, hash: Hash) -> Result<Vec<u8>, Unrun> {
    let mut patience = tokio::time::Instant::now() + REFETCH_PATIENCE;
    let mut cut: Option<Arc<Client>> = None;
    loop {
        let link = rt.link().map(|l| l.client);
        if let Some(client) = link
            && !cut.as_ref().is_some_and(|c| Arc::ptr_eq(c, &client))
        {
            match rt.blobs.get(&client, hash).await {
                Err(NetError::ShuttingDown { .. }) => {
                    tracing::info!(%hash, "the coordinator is shutting down; fetching again once reconnected");
                    cut = Some(client);
                    patience = tokio::time::Instant::now() + REFETCH_PATIENCE;
                }
                other => return other.map_err(|e| (Outcome::ProviderFault, e.to_string())),
            }
        }
        if tokio::time::Instant::now() >= patience {
            return Err((
                Outcome::NodeLost,
                format!("not connected to the coordinator (waited {REFETCH_PATIENCE:?})"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Why an attempt did not run, and how it ends: `provider_fault` (blobs,
/// slots: this node's fault) or `node_lost` (no coordinator to fetch from).
type Unrun = (Outcome, String);

/// Fetches the blobs and runs the job on a free slot; returns the
/// measurements, the job's error and its output (if it succeeded).
/// `Err` is not the job's fault: see [`Unrun`].
async fn execute(
    rt: &Arc<Runtime>,
    a: &Assignment,
    cancel: Arc<AtomicBool>,
) -> Result<(Measured, Option<String>, Option<Vec<u8>>), Unrun> {
    let started_ms = now_ms();
    let module = fetch(rt, a.spec.module)
        .await
        .map_err(|(o, e)| (o, format!("cannot fetch the module: {e}")))?;
    let input = fetch(rt, a.spec.input)
        .await
        .map_err(|(o, e)| (o, format!("cannot fetch the input: {e}")))?;
    let mut worker = rt.workers.take(SLOT_PATIENCE).await.ok_or((
        Outcome::ProviderFault,
        "no slot became free on this node".to_owned(),
    ))?;
    let job = RunJob {
        module,
        input,
        limits: capped(&a.spec.limits, &rt.info.caps),
    };
    let (id, attempt) = (a.job, a.attempt);
    let log_rt = rt.clone();
    let on_log = move |bytes: &[u8]| {
        if let Some(link) = log_rt.link() {
            for chunk in bytes.chunks(MAX_LOG_CHUNK_BYTES) {
                let _ = link.up.send(FromNode::Log {
                    job: id,
                    attempt,
                    data: chunk.to_vec(),
                });
            }
        }
    };
    let clock = std::time::Instant::now();
    let gpu = worker.gpu_label();
    let (worker, ran) = tokio::task::spawn_blocking(move || {
        let ran = worker.run(job, &cancel, &on_log);
        (worker, ran)
    })
    .await
    .map_err(|e| {
        (
            Outcome::ProviderFault,
            format!("the job's thread failed: {e}"),
        )
    })?;
    let report = match ran {
        Ran::Report(report) if !report.restart => {
            rt.workers.put(worker);
            report
        }
        Ran::Report(report) => {
            rt.workers.replace(worker);
            report
        }
        Ran::Crashed { gpu_ns, reason } => {
            tracing::warn!(job = id, attempt, %reason, "slot worker crashed");
            rt.workers.replace(worker);
            crate::ipc::WorkerReport {
                outcome: Outcome::Crashed,
                error: Some(reason),
                output: Vec::new(),
                gpu_ns,
                wall_ns: u64::try_from(clock.elapsed().as_nanos()).unwrap_or(u64::MAX),
                restart: true,
            }
        }
    };
    record_metrics(rt, gpu, report.outcome, report.gpu_ns, report.wall_ns);
    // The worker ran strangers' code: take nothing it says on trust.
    let output = (report.outcome == Outcome::Succeeded && report.output.len() <= MAX_OUTPUT_BYTES)
        .then_some(report.output);
    let outcome = match (&output, report.outcome) {
        (None, Outcome::Succeeded) => Outcome::JobError,
        (_, outcome) => outcome,
    };
    Ok((
        Measured {
            outcome,
            gpu_ns: report.gpu_ns,
            wall_ns: report.wall_ns,
            metering: rt.info.gpu.metering,
            started_ms,
        },
        report.error,
        output,
    ))
}

/// GPU time per GPU and attempt durations by outcome, for `/metrics`.
fn record_metrics(
    rt: &Runtime,
    gpu: crate::metrics::GpuLabel,
    outcome: Outcome,
    gpu_ns: u64,
    wall_ns: u64,
) {
    let m = &rt.metrics;
    m.gpu_busy_ns.get_or_create(&gpu).inc_by(gpu_ns);
    m.jobs
        .get_or_create(&crate::metrics::OutcomeLabel {
            outcome: outcome.as_str().to_owned(),
        })
        .observe(wall_ns as f64 / 1e9);
}
