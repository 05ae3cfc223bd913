//! Assigns queued jobs to live nodes with a free slot, a GPU that fits and
//! caps that allow the job's limits; never to a node the job crashed on.
//!
//! Fairness: tenants take turns. Each round offers every tenant with queued
//! work one placement, tenants with fewer running jobs first and, among equals,
//! the one served longest ago; the ledger hands over at most [`PER_TENANT`]
//! queued jobs per tenant, so a tenant with 10,000 queued jobs costs no more
//! per round than a tenant with one.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use suanli_ledger::{QueuedJob, Start};
use suanli_proto::{Assignment, ToNode};

use crate::auth::now_ms;
use crate::state::Shared;

/// Queued jobs per tenant considered in one pass.
const PER_TENANT: u32 = 32;
/// A pass runs at least this often, even with no event.
const TICK: Duration = Duration::from_secs(1);

pub(crate) async fn run(shared: Arc<Shared>) {
    let mut turns = Turns::default();
    loop {
        let s = shared.clone();
        let ran = crate::server::blocking(move || {
            let placed = pass(&s, &mut turns);
            (turns, placed)
        })
        .await;
        match ran {
            Ok((t, placed)) => {
                turns = t;
                if let Err(err) = placed {
                    tracing::error!(%err, "scheduler pass failed");
                }
            }
            Err(err) => {
                tracing::error!(%err, "scheduler pass failed");
                turns = Turns::default();
            }
        }
        tokio::select! {
            _ = shared.wake_scheduler.notified() => {}
            _ = tokio::time::sleep(TICK) => {}
        }
    }
}

/// When each tenant was last given a slot, in placements.
#[derive(Default)]
struct Turns {
    clock: u64,
    last: HashMap<String, u64>,
}

impl Turns {
    fn last(&self, tenant: &str) -> u64 {
        self.last.get(tenant).copied().unwrap_or(0)
    }

    fn served(&mut self, tenant: &str) {
        self.clock += 1;
        self.last.insert(tenant.to_owned(), self.clock);
    }
}

/// One scheduling pass; returns how many jobs were placed.
fn pass(shared: &Shared, turns: &mut Turns) -> Result<usize, suanli_ledger::LedgerError> {
    let queued = shared.ledger().queued(PER_TENANT)?;
    if queued.is_empty() {
        return Ok(0);
    }
    let mut by_tenant: BTreeMap<String, VecDeque<QueuedJob>> = BTreeMap::new();
    for job in queued {
        by_tenant
            .entry(job.tenant.clone())
            .or_default()
            .push_back(job);
    }
    let mut running = running_per_tenant(shared);
    let mut placed = 0;
    loop {
        let mut tenants: Vec<String> = by_tenant.keys().cloned().collect();
        tenants.sort_by_key(|t| (running.get(t).copied().unwrap_or(0), turns.last(t)));
        let mut progress = false;
        for tenant in tenants {
            let Some(queue) = by_tenant.get_mut(&tenant) else {
                continue;
            };
            // The tenant's oldest job that some node can take now.
            let Some(pos) = queue
                .iter()
                .position(|job| pick_node(shared, job).is_some())
            else {
                by_tenant.remove(&tenant);
                continue;
            };
            let Some(job) = queue.remove(pos) else {
                continue;
            };
            if place(shared, &job)? {
                *running.entry(tenant.clone()).or_default() += 1;
                turns.served(&tenant);
                placed += 1;
                progress = true;
            }
            if queue.is_empty() {
                by_tenant.remove(&tenant);
            }
        }
        if !progress || by_tenant.is_empty() {
            return Ok(placed);
        }
    }
}

fn running_per_tenant(shared: &Shared) -> HashMap<String, u32> {
    let jobs: Vec<u64> = shared
        .nodes()
        .values()
        .flat_map(|n| n.running.iter().map(|(job, _)| *job))
        .collect();
    let ledger = shared.ledger();
    let mut out = HashMap::new();
    for job in jobs {
        if let Ok(Some(view)) = ledger.job(job) {
            *out.entry(view.tenant).or_default() += 1;
        }
    }
    out
}

/// The least busy live node with a free slot whose GPU and caps meet the
/// job's needs (`NodeCaps::refuses`), other than one it crashed on.
fn pick_node(shared: &Shared, job: &QueuedJob) -> Option<u64> {
    let nodes = shared.nodes();
    nodes
        .iter()
        .filter(|(_, n)| !n.draining && (n.running.len() as u32) < n.info.slots)
        .filter(|(_, n)| n.fits(&job.spec) && !job.crashed_on.contains(&n.name))
        .min_by_key(|(id, n)| (n.running.len() * 1000 / n.info.slots.max(1) as usize, **id))
        .map(|(id, _)| *id)
}

fn place(shared: &Shared, job: &QueuedJob) -> Result<bool, suanli_ledger::LedgerError> {
    let Some(node_id) = pick_node(shared, job) else {
        return Ok(false);
    };
    let attempt = match shared.ledger().start_attempt(job.id, node_id, now_ms())? {
        Start::Started { attempt } => attempt,
        Start::NotQueued => return Ok(false),
        Start::OverCredit(reason) => {
            shared.credit_wait(job.id, Some(format!("waiting for credit: {reason}")));
            return Ok(false);
        }
    };
    shared.credit_wait(job.id, None);
    let sent = {
        let mut nodes = shared.nodes();
        match nodes.get_mut(&node_id) {
            Some(node) => {
                node.running.insert((job.id, attempt));
                node.tx
                    .send(ToNode::Run(Assignment {
                        job: job.id,
                        attempt,
                        spec: job.spec.clone(),
                    }))
                    .is_ok()
            }
            None => false,
        }
    };
    if !sent {
        // The node vanished between picking and sending.
        shared.ledger().lose_attempt(
            job.id,
            attempt,
            now_ms(),
            "the node disconnected before the job started",
        )?;
    }
    tracing::debug!(job = job.id, attempt, node_id, "job assigned");
    shared.notify_job(job.id);
    Ok(sent)
}
