//! One connection to the coordinator: register, then run assignments until
//! the connection ends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use suanli_net::frame::{read_frame, write_frame};
use suanli_net::{Client, NetError};
use suanli_proto::{Assignment, AttemptResult, FromNode, Receipt, Role, ToNode};
use suanli_sandbox::{JobLimits, Outcome, RunHooks};
use tokio::sync::mpsc;

use crate::{NodeConfig, Runtime};

type Cancels = Arc<Mutex<HashMap<(u64, u32), Arc<AtomicBool>>>>;

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
    let (mut send, mut recv, node_id) = client.register(rt.info.clone()).await?;
    tracing::info!(node_id, coordinator = %config.coordinator, "registered with the coordinator");
    let (up, mut up_rx) = mpsc::unbounded_channel::<FromNode>();
    let writer = tokio::spawn(async move {
        while let Some(message) = up_rx.recv().await {
            if let Err(err) = write_frame(&mut send, &message).await {
                tracing::warn!(%err, "cannot send to the coordinator");
                break;
            }
        }
    });
    let cancels: Cancels = Arc::default();
    let ended = loop {
        match read_frame::<ToNode>(&mut recv).await {
            Ok(Some(ToNode::Run(assignment))) => {
                let flag = Arc::new(AtomicBool::new(false));
                lock(&cancels).insert((assignment.job, assignment.attempt), flag.clone());
                tokio::spawn(run_job(
                    client.clone(),
                    rt.clone(),
                    node_id,
                    assignment,
                    up.clone(),
                    flag,
                    cancels.clone(),
                ));
            }
            Ok(Some(ToNode::Cancel { job, attempt })) => {
                if let Some(flag) = lock(&cancels).get(&(job, attempt)) {
                    tracing::info!(job, attempt, "cancelling");
                    flag.store(true, Ordering::Relaxed);
                }
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    writer.abort();
    ended
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn run_job(
    client: Arc<Client>,
    rt: Arc<Runtime>,
    node_id: u64,
    a: Assignment,
    up: mpsc::UnboundedSender<FromNode>,
    cancel: Arc<AtomicBool>,
    cancels: Cancels,
) {
    let (job, attempt) = (a.job, a.attempt);
    let started_ms = now_ms();
    let ended = execute(&client, &rt, &a, &up, cancel).await;
    lock(&cancels).remove(&(job, attempt));
    let (measured, error, output_bytes) = ended.unwrap_or_else(|reason| {
        tracing::warn!(job, attempt, %reason, "provider fault");
        (
            Measured {
                outcome: "provider_fault".into(),
                output: None,
                gpu_ns: 0,
                wall_ns: 0,
                metering: rt.info.gpu.metering.clone(),
                started_ms,
            },
            Some(reason),
            0,
        )
    });
    let receipt = Receipt {
        job,
        attempt,
        node_id,
        module: a.spec.module,
        input: a.spec.input,
        output: measured.output,
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
        error,
        output_bytes,
    };
    let _ = up.send(FromNode::Finished(Box::new(result)));
}

/// What the node measured of one attempt (the receipt's body).
struct Measured {
    outcome: String,
    output: Option<suanli_proto::Hash>,
    gpu_ns: u64,
    wall_ns: u64,
    metering: String,
    started_ms: u64,
}

/// Fetches the blobs, runs the job on a free slot, uploads the output.
/// `Err` is the provider's fault (not the job's): blobs, slots, uploads.
async fn execute(
    client: &Client,
    rt: &Arc<Runtime>,
    a: &Assignment,
    up: &mpsc::UnboundedSender<FromNode>,
    cancel: Arc<AtomicBool>,
) -> Result<(Measured, Option<String>, u64), String> {
    let started_ms = now_ms();
    let module = rt
        .blobs
        .get(client, a.spec.module)
        .await
        .map_err(|e| format!("cannot fetch the module: {e}"))?;
    let input = rt
        .blobs
        .get(client, a.spec.input)
        .await
        .map_err(|e| format!("cannot fetch the input: {e}"))?;
    let slot = lock(&rt.slots).pop().ok_or("no free slot on this node")?;
    let limits = JobLimits {
        max_memory_bytes: usize::try_from(a.spec.limits.max_memory_bytes).unwrap_or(usize::MAX),
        timeout: Duration::from_nanos(a.spec.limits.timeout_ns),
        max_gpu_ns: a.spec.limits.max_gpu_ns,
        gpu: rt.quotas,
        ..JobLimits::default()
    };
    let (job, attempt) = (a.job, a.attempt);
    let log_up = up.clone();
    let hooks = RunHooks {
        cancel: Some(cancel),
        on_log: Some(Arc::new(move |bytes: &[u8]| {
            let _ = log_up.send(FromNode::Log {
                job,
                attempt,
                data: bytes.to_vec(),
            });
        })),
    };
    let runtime = rt.clone();
    let (slot, report) = tokio::task::spawn_blocking(move || {
        let report = runtime
            .sandbox
            .run_with(&slot, &module, &input, &limits, &hooks);
        (slot, report)
    })
    .await
    .map_err(|e| format!("the job's thread failed: {e}"))?;
    lock(&rt.slots).push(slot);
    let report = report.map_err(|e| e.to_string())?;
    let output = if report.outcome == Outcome::Succeeded {
        Some(
            client
                .put_blob(&report.output)
                .await
                .map_err(|e| format!("cannot upload the output: {e}"))?,
        )
    } else {
        None
    };
    Ok((
        Measured {
            outcome: report.outcome.as_str().to_owned(),
            output,
            gpu_ns: report.gpu_ns,
            wall_ns: report.wall_ns,
            metering: report.metering.as_str().to_owned(),
            started_ms,
        },
        report.error,
        report.output_bytes as u64,
    ))
}
