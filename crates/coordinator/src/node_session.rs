//! A node's control stream: assignments go down, logs and results come up.
//! When the stream or the connection ends, the node's running attempts are
//! lost (`node_lost`, billed nothing) and their jobs go back to the queue.

use std::sync::{Arc, Mutex};

use suanli_ledger::{NodeSession, Recorded, Registration};
use suanli_net::NetError;
use suanli_net::frame::{read_frame, write_frame};
use suanli_proto::{AttemptResult, ErrorCode, FromNode, NodeCaps, NodeInfo, Response, ToNode};
use tokio::sync::mpsc;

use crate::auth::now_ms;
use crate::server::{Peer, RecentUploads};
use crate::state::{LiveNode, Shared};

pub(crate) async fn run(
    shared: Arc<Shared>,
    peer: Peer,
    info: NodeInfo,
    mut send: quinn::SendStream,
    recv: quinn::RecvStream,
) -> Result<(), NetError> {
    let mut info = info;
    if peer.node_id.get().is_some() {
        write_frame(
            &mut send,
            &Response::Error {
                code: suanli_proto::ErrorCode::BadRequest,
                message: "this connection already registered a node".into(),
            },
        )
        .await?;
        return Ok(());
    }
    let refusal = refuse_caps(&info.caps)
        .or_else(|| refuse_info(&info))
        .or_else(|| refuse_simulation(&shared, &info));
    if let Some(reason) = refusal {
        tracing::warn!(name = %peer.name, "node refused: {reason}");
        write_frame(
            &mut send,
            &Response::Error {
                code: ErrorCode::BadRequest,
                message: reason,
            },
        )
        .await?;
        let _ = send.finish();
        return Ok(());
    }
    info.gpu.max_buffer_size = info.gpu.max_buffer_size.min(MAX_GPU_MEMORY_BYTES);
    let registered = {
        let (token, name, info) = (peer.token_hash, peer.name.clone(), info.clone());
        shared
            .writer
            .write(move |l| l.register_node(&token, &name, &info, now_ms()))
            .await
    };
    let (code, message) = match registered {
        Ok(Registration::Registered(session)) => {
            return serve(shared, peer, info, session, send, recv).await;
        }
        Ok(Registration::KeyMismatch(reason) | Registration::KeyTaken(reason)) => {
            tracing::warn!(name = %peer.name, key = %info.public_key.to_hex(), "node refused: {reason}");
            (ErrorCode::Forbidden, reason)
        }
        Err(e) => (ErrorCode::Internal, e.to_string()),
    };
    write_frame(&mut send, &Response::Error { code, message }).await?;
    let _ = send.finish();
    Ok(())
}

/// Longest string a node may report about its GPU (name, backend, device
/// type, driver, each feature).
pub(crate) const MAX_NODE_STRING_BYTES: usize = 256;
/// Most GPU features a node may report.
pub(crate) const MAX_NODE_FEATURES: usize = 256;
/// Most in-flight attempts a reconnecting node may claim.
pub(crate) const MAX_IN_FLIGHT_CLAIMS: usize = 10_000;
/// GPU memory (`max_buffer_size`) a node's claim is clipped to: 1 TiB.
pub(crate) const MAX_GPU_MEMORY_BYTES: u64 = 1 << 40;
/// Acks queued for a node before the coordinator stops reading its control
/// stream: a node that sends results and never reads its acks is held back
/// by QUIC flow control instead of growing the coordinator's queue.
const MAX_QUEUED_ACKS: usize = 64;
/// Slack for the coordinator's millisecond clock when checking a receipt's
/// GPU time against the attempt's wall time since assignment.
const CLOCK_SLACK_NS: u64 = 2_000_000;

/// Why what a node reports about itself is refused: strings and lists are
/// stored and shown to admins, so they are bounded; numbers above
/// `i64::MAX` cannot be stored as sent (clamping would change them).
fn refuse_info(info: &NodeInfo) -> Option<String> {
    let g = &info.gpu;
    let strings = [
        ("GPU name", &g.name),
        ("backend", &g.backend),
        ("device type", &g.device_type),
        ("driver", &g.driver),
    ];
    let features = g.features.iter().map(|f| ("feature", f));
    if let Some((what, s)) = strings
        .into_iter()
        .chain(features)
        .find(|(_, s)| s.len() > MAX_NODE_STRING_BYTES)
    {
        return Some(format!(
            "the node's {what} is {} bytes; at most {MAX_NODE_STRING_BYTES} are accepted",
            s.len()
        ));
    }
    if g.features.len() > MAX_NODE_FEATURES {
        return Some(format!(
            "the node reports {} GPU features; at most {MAX_NODE_FEATURES} are accepted",
            g.features.len()
        ));
    }
    if let Some(reason) = refuse_devices(&info.devices) {
        return Some(reason);
    }
    if info.in_flight.len() > MAX_IN_FLIGHT_CLAIMS {
        return Some(format!(
            "the node claims {} in-flight attempts; at most {MAX_IN_FLIGHT_CLAIMS} are accepted",
            info.in_flight.len()
        ));
    }
    let c = &info.caps;
    [
        ("max_memory_bytes", c.max_memory_bytes),
        ("max_timeout_ns", c.max_timeout_ns),
        ("max_dispatch_ns", c.max_dispatch_ns),
    ]
    .into_iter()
    .find(|(_, v)| i64::try_from(*v).is_err())
    .map(|(what, v)| format!("the node's cap {what} ({v}) is above {}", i64::MAX))
}

/// Why a node's device list is refused: it is stored per session and shown
/// in `suanli nodes`, so its count and strings are bounded like the GPU's.
fn refuse_devices(devices: &[suanli_proto::DeviceInfo]) -> Option<String> {
    if devices.len() > suanli_proto::MAX_NODE_DEVICES {
        return Some(format!(
            "the node reports {} GPUs; at most {} are accepted",
            devices.len(),
            suanli_proto::MAX_NODE_DEVICES
        ));
    }
    devices.iter().find_map(|d| {
        [("GPU name", &d.name), ("PCI bus id", &d.pci_bus_id)]
            .into_iter()
            .find(|(_, s)| s.len() > MAX_NODE_STRING_BYTES)
            .map(|(what, s)| {
                format!(
                    "the node's GPU {} {what} is {} bytes; at most {MAX_NODE_STRING_BYTES} are accepted",
                    d.index,
                    s.len()
                )
            })
    })
}

/// Why a result's output cannot be the node's: it names a blob this
/// connection did not upload. Otherwise a node could grant its job's tenant
/// any blob whose hash it knows (and keep it from garbage collection).
fn refuse_output(uploaded: &Mutex<RecentUploads>, r: &AttemptResult) -> Option<String> {
    let output = r.receipt.output?;
    let known = uploaded
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .contains(&output);
    (!known).then(|| {
        format!(
            "the result names output {} which the node did not upload on this connection",
            output.to_hex()
        )
    })
}

/// Why a receipt's GPU time cannot be true: more than the wall time since
/// the coordinator assigned the attempt (its own clock), so the node
/// metered time it cannot have used.
fn refuse_gpu_time(shared: &Shared, r: &AttemptResult) -> Option<String> {
    let (job, attempt) = (r.receipt.job, r.receipt.attempt);
    let started_ms = shared
        .reader()
        .attempt_started_ms(job, attempt)
        .ok()
        .flatten()?;
    let wall_ns = now_ms()
        .saturating_sub(started_ms)
        .saturating_mul(1_000_000);
    (r.receipt.gpu_ns > wall_ns.saturating_add(CLOCK_SLACK_NS)).then(|| {
        format!(
            "the receipt's gpu_ns ({}) is more than the {wall_ns} ns since the coordinator \
             assigned the attempt",
            r.receipt.gpu_ns
        )
    })
}

/// Why a node that simulates faults on purpose is refused: it is a testing
/// aid, and a production coordinator must never pay for its lies. With
/// `--allow-simulated-faults` it registers, with a warning.
fn refuse_simulation(shared: &Shared, info: &NodeInfo) -> Option<String> {
    let sim = info.simulated_faults?;
    if shared.config.allow_simulated_faults {
        tracing::warn!(faults = %sim.describe(), "a node simulating faults registered (allowed)");
        return None;
    }
    Some(format!(
        "this node simulates faults ({}), a testing aid; this coordinator does not \
         allow that (suanli coordinator --allow-simulated-faults)",
        sim.describe()
    ))
}

/// Why a node's caps are refused: a cap of 0 would accept no job, so it is
/// a configuration mistake to report, not a node to keep idle. Other values
/// are the provider's claim, and jobs are placed by them.
fn refuse_caps(caps: &NodeCaps) -> Option<String> {
    let zero = [
        (caps.max_memory_bytes, "max_memory_bytes (--max-job-memory)"),
        (caps.max_timeout_ns, "max_timeout_ns (--max-job-timeout)"),
        (
            caps.max_dispatch_ns,
            "max_dispatch_ns (--max-dispatch-seconds)",
        ),
    ]
    .into_iter()
    .find(|(value, _)| *value == 0)?;
    Some(format!(
        "the node's cap {} is 0, so it would accept no job; give it a positive value",
        zero.1
    ))
}

async fn serve(
    shared: Arc<Shared>,
    peer: Peer,
    info: NodeInfo,
    session: NodeSession,
    mut send: quinn::SendStream,
    mut recv: quinn::RecvStream,
) -> Result<(), NetError> {
    let node_id = session.id;
    let _ = peer.node_id.set(node_id);
    let (tx, mut rx) = mpsc::unbounded_channel::<ToNode>();
    let adopted = {
        let (s, token, info) = (shared.clone(), peer.token_hash, info.clone());
        crate::server::blocking(move || adopt(&s, &token, &info))
            .await
            .unwrap_or_default()
    };
    let allowed_slots = info.slots.min(session.max_slots);
    shared.nodes().insert(
        node_id,
        LiveNode {
            name: peer.name.clone(),
            token_hash: peer.token_hash,
            info: info.clone(),
            gpu_class: session.gpu_class.clone(),
            tx,
            running: adopted.iter().copied().collect(),
            connected_ms: now_ms(),
            jobs_run: 0,
            draining: false,
            drained: session.drained,
            allowed_slots,
            token_max_slots: session.max_slots,
            quarantine: session.quarantine.clone(),
        },
    );
    tracing::info!(node_id, name = %peer.name, gpu = %info.gpu.name, class = %session.gpu_class, slots = info.slots, allowed_slots, drained = session.drained, quarantined = session.quarantine.is_some(), caps = ?info.caps, adopted = adopted.len(), "node registered");
    write_frame(&mut send, &Response::Registered { node_id, adopted }).await?;
    shared.wake_scheduler.notify_one();

    // Acks go through a bounded queue filled by this loop only: before,
    // every result sent an ack into the unbounded queue, so a node sending
    // results without reading grew the coordinator's memory without bound.
    let (ack_tx, mut ack_rx) = mpsc::channel::<ToNode>(MAX_QUEUED_ACKS);
    let writer = tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                m = rx.recv() => m,
                m = ack_rx.recv() => m,
            };
            let Some(message) = message else { break };
            if write_frame(&mut send, &message).await.is_err() {
                break;
            }
        }
    });
    let ended = loop {
        tokio::select! {
            frame = read_frame::<FromNode>(&mut recv) => match frame {
                Ok(Some(message)) => {
                    let shared = shared.clone();
                    let uploaded = peer.uploaded.clone();
                    match crate::server::blocking(move || handle(&shared, node_id, &uploaded, message)).await {
                        Ok(Some(ack)) => {
                            // Waits while the node does not read its acks.
                            let _ = ack_tx.send(ack).await;
                        }
                        Ok(None) => {}
                        Err(e) => tracing::error!(node_id, %e, "cannot handle a node message"),
                    }
                }
                Ok(None) => break "the node closed its control stream".to_owned(),
                Err(e) => break format!("the node's connection ended: {e}"),
            },
            reason = peer.conn.closed() => break format!("the node's connection ended: {reason}"),
        }
    };
    writer.abort();
    disconnect(&shared, node_id, &ended).await;
    Ok(())
}

/// The node's in-flight attempts that are still running on its token and
/// key together: they move to this session (out of an older one not yet
/// noticed dead). The key alone is public, so it adopts nothing. Blocking.
fn adopt(shared: &Shared, token_hash: &[u8; 32], info: &NodeInfo) -> Vec<(u64, u32)> {
    let mut adopted = Vec::new();
    for &(job, attempt) in info.in_flight.iter().take(MAX_IN_FLIGHT_CLAIMS) {
        let ok = shared
            .reader()
            .adoptable(job, attempt, token_hash, &info.public_key.0)
            .unwrap_or(false);
        if ok {
            for node in shared.nodes().values_mut() {
                node.running.remove(&(job, attempt));
            }
            adopted.push((job, attempt));
        }
    }
    adopted
}

/// Handles one message from a node; returns the ack to send it, if any.
fn handle(
    shared: &Shared,
    node_id: u64,
    uploaded: &Mutex<RecentUploads>,
    message: FromNode,
) -> Option<ToNode> {
    match message {
        FromNode::Log { job, attempt, data } => {
            let runs_it = shared
                .nodes()
                .get(&node_id)
                .is_some_and(|n| n.running.contains(&(job, attempt)));
            if runs_it {
                shared.append_log(job, &data);
            }
            None
        }
        FromNode::Finished(result) => finished(shared, node_id, uploaded, *result),
        FromNode::Draining => {
            if let Some(node) = shared.nodes().get_mut(&node_id) {
                tracing::info!(node_id, name = %node.name, "node is draining");
                node.draining = true;
            }
            None
        }
    }
}

/// Records a node's result; returns the ack for the node.
fn finished(
    shared: &Shared,
    node_id: u64,
    uploaded: &Mutex<RecentUploads>,
    r: AttemptResult,
) -> Option<ToNode> {
    let (job, attempt) = (r.receipt.job, r.receipt.attempt);
    let runs_it = shared
        .nodes()
        .get(&node_id)
        .is_some_and(|n| n.running.contains(&(job, attempt)));
    let refusal = refuse_gpu_time(shared, &r).or_else(|| refuse_output(uploaded, &r));
    let recorded = match refusal.filter(|_| runs_it) {
        Some(reason) => Ok(Recorded::Rejected(reason)),
        None => {
            let result = r.clone();
            shared.write(move |l| l.finish_attempt(node_id, &result, now_ms()))
        }
    };
    let mut faulted = matches!(recorded, Ok(Recorded::Ended { .. }))
        && r.receipt.outcome == suanli_proto::Outcome::ProviderFault;
    let ack = |accepted: bool, reason: Option<&str>| {
        Some(ToNode::Ack {
            job,
            attempt,
            accepted,
            reason: reason.map(str::to_owned),
        })
    };
    let answer = match &recorded {
        Ok(Recorded::Ended { state }) => {
            tracing::info!(job, attempt, node_id, outcome = %r.receipt.outcome, gpu_ns = r.receipt.gpu_ns, state = state.as_str(), "attempt finished");
            ack(true, None)
        }
        Ok(Recorded::Duplicate) => {
            tracing::info!(
                job,
                attempt,
                "result already recorded or attempt already ended; ignored"
            );
            ack(
                true,
                Some("the attempt had already ended; this result was not recorded"),
            )
        }
        Ok(Recorded::Unknown) => {
            tracing::warn!(
                job,
                attempt,
                node_id,
                "result for an attempt this node does not run; ignored"
            );
            ack(false, Some("no such attempt of this node"))
        }
        Ok(Recorded::Rejected(reason)) => {
            let answer = ack(false, Some(reason));
            // Nothing of it is recorded or billed; the job is retried elsewhere.
            tracing::warn!(job, attempt, node_id, %reason, "receipt rejected");
            let why = format!("the node's receipt was rejected: {reason}");
            let ended = shared.write(move |l| l.fault_attempt(job, attempt, now_ms(), &why));
            match ended {
                Ok(Recorded::Ended { .. }) => faulted = true,
                Ok(_) => {}
                Err(e) => tracing::error!(job, %e, "cannot record rejected attempt"),
            }
            answer
        }
        Err(e) => {
            tracing::error!(job, %e, "cannot record result");
            None
        }
    };
    if let Some(node) = shared.nodes().get_mut(&node_id)
        && node.running.remove(&(job, attempt))
    {
        node.jobs_run += 1;
    }
    if faulted {
        shared.note_fault(node_id);
    }
    shared.notify_job(job);
    shared.wake_scheduler.notify_one();
    answer
}

/// Ends the node's running attempts `node_lost` (one write for all of
/// them, each in its own savepoint) and re-queues their jobs.
async fn disconnect(shared: &Shared, node_id: u64, reason: &str) {
    let Some(node) = shared.nodes().remove(&node_id) else {
        return;
    };
    if shared.lifecycle.stopping() {
        // Not lost: the node keeps running them and claims them when it
        // reconnects to the restarted coordinator (`recovery_grace`).
        tracing::info!(node_id, name = %node.name, running = node.running.len(), "node session closed by the shutdown; its attempts stay open");
        return;
    }
    if node.running.is_empty() {
        tracing::info!(node_id, name = %node.name, %reason, "node gone");
        shared.wake_scheduler.notify_one();
        return;
    }
    tracing::warn!(node_id, name = %node.name, %reason, running = node.running.len(), "node gone with running jobs");
    let running: Vec<(u64, u32)> = node.running.into_iter().collect();
    let why = reason.to_owned();
    let jobs: Vec<u64> = running.iter().map(|(job, _)| *job).collect();
    let lost = shared
        .writer
        .write(move |l| {
            let now = now_ms();
            Ok(running
                .into_iter()
                .map(|(job, attempt)| (job, attempt, l.lose_attempt(job, attempt, now, &why)))
                .collect::<Vec<_>>())
        })
        .await;
    match lost {
        Ok(lost) => {
            for (job, attempt, ended) in lost {
                match ended {
                    Ok(Recorded::Ended { state }) => {
                        tracing::info!(job, attempt, state = state.as_str(), "attempt lost")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(job, %e, "cannot record lost attempt"),
                }
            }
        }
        Err(e) => tracing::error!(node_id, %e, "cannot record lost attempts"),
    }
    for job in jobs {
        shared.notify_job(job);
    }
    shared.wake_scheduler.notify_one();
}
