//! Assigns queued jobs to live nodes with a free slot, a GPU that fits and
//! caps that allow the job's limits; never to a node the job crashed on or
//! missed its deadline on, nor to a drained or quarantined node. Also ends
//! attempts past their deadline ([`deadlines`]).
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
use crate::state::{LiveNode, Shared};

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

/// The least busy live node that takes work and has a free slot (of the
/// slots its token allows) whose GPU and caps meet the job's needs
/// (`NodeCaps::refuses`), other than one it crashed on or missed its
/// deadline on.
fn pick_node(shared: &Shared, job: &QueuedJob) -> Option<u64> {
    let nodes = shared.nodes();
    // A token's cap counts the jobs of all its live sessions together: one
    // token may register on many connections, each clipped on its own.
    let mut per_token: HashMap<[u8; 32], u64> = HashMap::new();
    for n in nodes.values() {
        *per_token.entry(n.token_hash).or_default() += n.running.len() as u64;
    }
    let token_has_room = |n: &LiveNode| {
        per_token.get(&n.token_hash).copied().unwrap_or(0) < u64::from(n.token_max_slots)
    };
    nodes
        .iter()
        .filter(|(_, n)| n.takes_work() && n.has_free_slot() && token_has_room(n))
        .filter(|(_, n)| {
            n.fits(&job.spec)
                && !job.crashed_on.contains(&n.name)
                && !job.missed_on.contains(&n.name)
        })
        .min_by_key(|(id, n)| {
            let load = n.running.len() as u64 * 1000 / u64::from(n.allowed_slots.max(1));
            (load, **id)
        })
        .map(|(id, _)| *id)
}

fn place(shared: &Shared, job: &QueuedJob) -> Result<bool, suanli_ledger::LedgerError> {
    let Some(node_id) = pick_node(shared, job) else {
        return Ok(false);
    };
    // The ledger stays locked until the attempt's runner is recorded: a
    // cancel (which locks the ledger, then the nodes) must never see the
    // attempt running with no node to tell, or the job would run on to its
    // timeout. Lock order everywhere: ledger, then nodes.
    let mut ledger = shared.ledger();
    let attempt = match ledger.start_attempt(job.id, node_id, now_ms())? {
        Start::Started { attempt } => attempt,
        Start::NotQueued => return Ok(false),
        Start::OverCredit(reason) => {
            drop(ledger);
            shared.credit_wait(job.id, Some(format!("waiting for credit: {reason}")));
            return Ok(false);
        }
    };
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
    drop(ledger);
    shared.credit_wait(job.id, None);
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

/// How often running attempts are checked against their deadline.
const DEADLINE_TICK: Duration = Duration::from_secs(1);

/// Ends attempts no node reported by `started + timeout + dispatch limit +
/// attempt_grace`: a node that never reports cannot hold a job (and its
/// tenant's held credit) forever.
pub(crate) async fn deadlines(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(DEADLINE_TICK).await;
        let s = shared.clone();
        if let Err(err) = crate::server::blocking(move || end_overdue(&s)).await {
            tracing::error!(%err, "deadline pass failed");
        }
    }
}

/// One deadline pass: each overdue attempt ends `provider_fault` (unbilled;
/// the job is retried on another node token while attempts remain), its
/// node is told to cancel it, and the fault counts towards quarantine.
fn end_overdue(shared: &Shared) {
    let grace = shared.config.attempt_grace;
    let overdue = match shared
        .ledger()
        .overdue_attempts(now_ms(), grace.as_millis() as u64)
    {
        Ok(overdue) => overdue,
        Err(err) => {
            tracing::error!(%err, "cannot read overdue attempts");
            return;
        }
    };
    for (job, attempt, session) in overdue {
        let reason = format!(
            "{}: started + timeout + dispatch limit + {} s grace passed; the coordinator \
             ended it and will run the job on another node",
            suanli_ledger::DEADLINE_MISSED,
            grace.as_secs_f64()
        );
        match shared
            .ledger()
            .fault_attempt(job, attempt, now_ms(), &reason)
        {
            Ok(suanli_ledger::Recorded::Ended { state }) => {
                tracing::warn!(
                    job,
                    attempt,
                    node_id = session,
                    state = state.as_str(),
                    "attempt missed its deadline"
                );
            }
            Ok(_) => continue,
            Err(err) => {
                tracing::error!(job, %err, "cannot end an overdue attempt");
                continue;
            }
        }
        if let Some(node_id) = shared.runner_of(job, attempt)
            && let Some(node) = shared.nodes().get_mut(&node_id)
        {
            node.running.remove(&(job, attempt));
            let _ = node.tx.send(ToNode::Cancel { job, attempt });
        }
        shared.note_fault(session);
        shared.notify_job(job);
    }
    shared.wake_scheduler.notify_one();
}
