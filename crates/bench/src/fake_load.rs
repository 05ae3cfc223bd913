//! Open-loop load through the coordinator alone: arrivals at
//! [`FAKE_TARGET_RATE`] for [`FAKE_LOAD_SECONDS`], whatever the completions
//! do (an arrival finding [`FAKE_MAX_IN_FLIGHT`] jobs in flight is shed and
//! counted), on in-process nodes that answer at once with signed receipts.
//! Then `admin check`.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use suanli_coordinator::{Coordinator, CoordinatorConfig};
use suanli_net::Client;
use suanli_proto::{JobLimits, JobSpec, JobState, Request, Requirements, Response, Role};

use crate::BenchError;
use crate::cluster::{
    FAKE_CLIENTS, FAKE_LOAD_SECONDS, FAKE_MAX_IN_FLIGHT, FAKE_NODE_SLOTS, FAKE_NODES,
    FAKE_TARGET_RATE,
};

/// How long the jobs still in flight after the load may take to finish.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

pub(crate) struct FakeLoad {
    pub(crate) jobs_per_s: f64,
    pub(crate) p50_ns: u64,
    pub(crate) p99_ns: u64,
    pub(crate) offered_per_s: f64,
    pub(crate) shed: u64,
    pub(crate) check: Vec<String>,
}

fn failed(e: impl std::fmt::Display) -> BenchError {
    BenchError::Job(format!("fake-node load: {e}"))
}

/// What the load's tasks share.
#[derive(Default)]
struct Tally {
    in_flight: AtomicUsize,
    shed: AtomicU64,
    finished: AtomicU64,
    errors: AtomicU64,
    latencies: Mutex<Vec<u64>>,
}

pub(crate) async fn run() -> Result<FakeLoad, BenchError> {
    let dir = std::env::temp_dir().join(format!("suanli-bench-fake-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let coordinator = Coordinator::start(CoordinatorConfig::new(
        ([127, 0, 0, 1], 0).into(),
        dir.join("coordinator"),
    ))
    .await
    .map_err(failed)?;
    let measured = load(&coordinator).await;
    coordinator.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    measured
}

async fn load(coordinator: &Coordinator) -> Result<FakeLoad, BenchError> {
    let (addr, fp) = (coordinator.addr(), coordinator.fingerprint().to_owned());
    let admin_token = coordinator.new_admin_token.clone().unwrap_or_default();
    let admin = Client::connect(addr, &fp, &admin_token, Role::Admin).await?;
    let mut nodes = Vec::new();
    for n in 0..FAKE_NODES {
        let name = format!("fake-{n}");
        let token = admin
            .create_token_with(Role::Node, &name, Some(FAKE_NODE_SLOTS))
            .await?;
        let client = Client::connect(addr, &fp, &token, Role::Node).await?;
        nodes.push(tokio::spawn(crate::fake_node::serve_instantly(
            client,
            n + 1,
            FAKE_NODE_SLOTS,
        )));
    }
    while admin.nodes().await?.len() < usize::from(FAKE_NODES) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let tenant_token = admin.create_token(Role::Tenant, "load").await?;
    let mut clients = Vec::new();
    for _ in 0..FAKE_CLIENTS {
        clients.push(Client::connect(addr, &fp, &tenant_token, Role::Tenant).await?);
    }
    let (hashes, _) = clients[0]
        .ensure_blobs(&[b"fake module".as_slice(), b"fake input".as_slice()])
        .await?;
    let spec = JobSpec {
        module: hashes[0],
        input: hashes[1],
        requirements: Requirements::default(),
        limits: JobLimits::default(),
        max_attempts: 1,
    };
    let clients = Arc::new(clients);
    let tally = Arc::new(Tally::default());
    let (offered, window) = offer(&clients, &spec, &tally).await;
    let finished_in_window = tally.finished.load(Ordering::Relaxed);
    let drained = Instant::now();
    while tally.in_flight.load(Ordering::Relaxed) > 0 && drained.elapsed() < DRAIN_LIMIT {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let check = admin.check().await?;
    for node in nodes {
        node.abort();
    }
    let errors = tally.errors.load(Ordering::Relaxed);
    if errors > 0 {
        return Err(failed(format!("{errors} submissions or waits failed")));
    }
    let mut latencies = std::mem::take(&mut *tally.latencies.lock().map_err(failed)?);
    Ok(FakeLoad {
        jobs_per_s: finished_in_window as f64 / window,
        p50_ns: crate::floor::percentile(&mut latencies, 50),
        p99_ns: crate::floor::percentile(&mut latencies, 99),
        offered_per_s: offered as f64 / window,
        shed: tally.shed.load(Ordering::Relaxed),
        check,
    })
}

/// Offers arrivals at the target rate for the load's duration; returns how
/// many were offered and the seconds it took.
async fn offer(clients: &Arc<Vec<Client>>, spec: &JobSpec, tally: &Arc<Tally>) -> (u64, f64) {
    let started = Instant::now();
    let length = Duration::from_secs(FAKE_LOAD_SECONDS);
    let mut offered = 0u64;
    while started.elapsed() < length {
        let due = (started.elapsed().as_secs_f64() * FAKE_TARGET_RATE as f64) as u64;
        while offered < due {
            offered += 1;
            if tally.in_flight.load(Ordering::Relaxed) >= FAKE_MAX_IN_FLIGHT {
                tally.shed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            tally.in_flight.fetch_add(1, Ordering::Relaxed);
            let (clients, spec, tally) = (clients.clone(), spec.clone(), tally.clone());
            let which = offered as usize % clients.len();
            tokio::spawn(async move {
                one_job(&clients[which], spec, &tally).await;
                tally.in_flight.fetch_sub(1, Ordering::Relaxed);
            });
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    (offered, started.elapsed().as_secs_f64())
}

/// Submits one job and waits for it, recording submission → final.
async fn one_job(client: &Client, spec: JobSpec, tally: &Tally) {
    let started = Instant::now();
    let ended = async {
        let job = match client.call(&Request::Submit(spec)).await? {
            Response::Submitted { job } => job,
            other => return Err(failed(format!("unexpected answer {other:?}"))),
        };
        Ok::<_, BenchError>(client.wait(job).await?.state)
    }
    .await;
    match ended {
        Ok(JobState::Succeeded) => {
            tally.finished.fetch_add(1, Ordering::Relaxed);
            if let Ok(mut l) = tally.latencies.lock() {
                l.push(started.elapsed().as_nanos() as u64);
            }
        }
        _ => {
            tally.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}
