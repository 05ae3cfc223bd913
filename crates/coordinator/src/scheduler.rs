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
        if shared.lifecycle.stopping() {
            tracing::info!("scheduler stopped: no new placements during the shutdown");
            return;
        }
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

/// One scheduling pass; returns how many jobs were placed. Two reads (the
/// queue, running jobs per tenant) whatever the number of jobs; each
/// placement reserves its slot at once and goes to the writer, and the pass
/// waits for all of them together (one batch, one commit).
fn pass(shared: &Arc<Shared>, turns: &mut Turns) -> Result<usize, suanli_ledger::LedgerError> {
    let queued = shared.reader().queued(PER_TENANT)?;
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
    let mut running = shared.reader().running_per_tenant()?;
    let mut pending = Vec::new();
    loop {
        let mut tenants: Vec<String> = by_tenant.keys().cloned().collect();
        tenants.sort_by_key(|t| (running.get(t).copied().unwrap_or(0), turns.last(t)));
        let mut progress = false;
        for tenant in tenants {
            let Some(queue) = by_tenant.get_mut(&tenant) else {
                continue;
            };
            // The tenant's oldest job that some node can take now.
            let Some(placed) = reserve_first(shared, queue) else {
                by_tenant.remove(&tenant);
                continue;
            };
            pending.push(placed);
            *running.entry(tenant.clone()).or_default() += 1;
            turns.served(&tenant);
            progress = true;
            if queue.is_empty() {
                by_tenant.remove(&tenant);
            }
        }
        if !progress || by_tenant.is_empty() {
            break;
        }
    }
    // Each placement's answer comes once its batch committed.
    Ok(pending.into_iter().filter(|p| p.recv() == Ok(true)).count())
}

/// Takes the first job of `queue` that a node can take now, reserves the
/// slot and hands the start to the writer; the answer says, once committed,
/// whether it was placed.
fn reserve_first(
    shared: &Arc<Shared>,
    queue: &mut VecDeque<QueuedJob>,
) -> Option<std::sync::mpsc::Receiver<bool>> {
    let (job, node_id) = {
        let mut nodes = shared.nodes();
        let (pos, node_id) = queue
            .iter()
            .enumerate()
            .find_map(|(pos, job)| Some((pos, pick_node(&nodes, job)?)))?;
        let job = queue.remove(pos)?;
        // Reserved now, so this pass does not offer the slot twice; the
        // attempt is the job's next (attempts are numbered 1, 2, ...).
        nodes
            .get_mut(&node_id)?
            .running
            .insert((job.id, job.attempts + 1));
        (job, node_id)
    };
    let (done, answer) = std::sync::mpsc::sync_channel(1);
    if let Err(err) = place(shared, job, node_id, done) {
        tracing::error!(%err, "cannot hand a placement to the ledger writer");
        return None;
    }
    Some(answer)
}

/// Starts the attempt on the writer thread, then (after the commit, on the
/// writer thread, in write order) sends the assignment. The runner is known
/// before the attempt exists in the ledger (its reservation), and the
/// assignment is sent before any later write's effects, so a cancel that
/// follows the start always finds the node to tell (the lost-cancel race
/// fixed in 83fb157 stays fixed). A node gone before the start gets none;
/// one gone after it had the attempt in its `running`, which its
/// disconnect ends `node_lost`.
fn place(
    shared: &Arc<Shared>,
    job: QueuedJob,
    node_id: u64,
    done: std::sync::mpsc::SyncSender<bool>,
) -> Result<(), suanli_ledger::LedgerError> {
    let (id, expected) = (job.id, job.attempts + 1);
    let s = shared.clone();
    let start = move |l: &mut crate::state::Store| {
        let mut nodes = s.nodes();
        let Some(node) = nodes
            .get_mut(&node_id)
            .filter(|n| n.running.contains(&(id, expected)))
        else {
            return Ok(Start::NotQueued);
        };
        // A shutdown began after this placement was chosen: its `Run` might
        // never reach the node, and the attempt would end `node_lost` after
        // the restart; the job stays queued instead. Checked here, on the
        // writer thread, so no start is committed after the drain began.
        if s.lifecycle.stopping() {
            node.running.remove(&(id, expected));
            return Ok(Start::NotQueued);
        }
        let started = l.start_attempt(id, node_id, now_ms());
        if !matches!(started, Ok(Start::Started { attempt }) if attempt == expected) {
            node.running.remove(&(id, expected));
        }
        if let Ok(Start::Started { attempt }) = &started {
            node.running.insert((id, *attempt));
        }
        started
    };
    let s = shared.clone();
    let after = move |started: Result<Start, suanli_ledger::LedgerError>| {
        let placed = match started {
            Ok(Start::Started { attempt }) => {
                let waited_ms = now_ms().saturating_sub(job.submitted_ms);
                s.metrics.scheduling_delay.observe(waited_ms as f64 / 1e3);
                assign(&s, node_id, job, attempt);
                true
            }
            Ok(Start::NotQueued) => false,
            Ok(Start::OverCredit(reason)) => {
                s.credit_wait(id, Some(format!("waiting for credit: {reason}")));
                false
            }
            Err(err) => {
                tracing::error!(job = id, %err, "cannot start an attempt");
                if let Some(node) = s.nodes().get_mut(&node_id) {
                    node.running.remove(&(id, expected));
                }
                false
            }
        };
        let _ = done.send(placed);
    };
    shared.writer.then_blocking(start, after)
}

/// Sends a committed assignment to its node (on the writer thread).
fn assign(shared: &Shared, node_id: u64, job: QueuedJob, attempt: u32) {
    let id = job.id;
    if let Some(node) = shared.nodes().get(&node_id) {
        // A closed channel: the session is ending, and its disconnect
        // ends this attempt with the others it ran.
        let _ = node.tx.send(ToNode::Run(Assignment {
            job: id,
            attempt,
            spec: job.spec,
        }));
    }
    shared.credit_wait(id, None);
    tracing::debug!(job = id, attempt, node_id, "job assigned");
    shared.notify_job(id);
}

/// The least busy live node that takes work and has a free slot (of the
/// slots its token allows) whose GPU and caps meet the job's needs
/// (`NodeCaps::refuses`), other than one it crashed on or missed its
/// deadline on.
fn pick_node(nodes: &HashMap<u64, LiveNode>, job: &QueuedJob) -> Option<u64> {
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
    let overdue =
        shared
            .reader()
            .overdue_attempts(now_ms(), grace.as_millis() as u64, shared.started_ms);
    let overdue = match overdue {
        Ok(overdue) => overdue,
        Err(err) => {
            tracing::error!(%err, "cannot read overdue attempts");
            return;
        }
    };
    for suanli_ledger::Overdue {
        job,
        attempt,
        node_id: session,
        started_ms,
    } in overdue
    {
        let reason = format!(
            "{}: started + timeout + dispatch limit + {} s grace passed; the coordinator \
             ended it and will run the job on another node",
            suanli_ledger::DEADLINE_MISSED,
            grace.as_secs_f64()
        );
        let ended = shared.write(move |l| l.fault_attempt(job, attempt, now_ms(), &reason));
        match ended {
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
        // An attempt that crossed a restart of the coordinator is not held
        // against its provider: the restart may be why it went unreported.
        if started_ms >= shared.started_ms {
            shared.note_fault(session);
        }
        shared.notify_job(job);
    }
    shared.wake_scheduler.notify_one();
}
