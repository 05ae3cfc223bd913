//! The job queue and attempts: submission (with the credit check), start,
//! and the end of every attempt, which writes its usage row in the same
//! transaction.

use rusqlite::{Connection, OptionalExtension, params};
use suanli_proto::{
    AttemptResult, AttemptView, Hash, JobFilter, JobLimits, JobSpec, JobState, JobView, Metering,
    Outcome, PublicKey, Receipt, Requirements, Signature, bounded_error,
};

use crate::billing::{
    charge_cap_ns, charged_gpu_ns, cost_micros, units as micros, worst_case_micros,
};
use crate::{Ledger, LedgerError, Result, hash_from, i, u};

/// An attempt past its deadline ([`Ledger::overdue_attempts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overdue {
    pub job: u64,
    pub attempt: u32,
    /// The node session it was assigned to.
    pub node_id: u64,
    pub started_ms: u64,
}

/// A queued job as the scheduler sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedJob {
    pub id: u64,
    pub tenant: String,
    pub spec: JobSpec,
    /// Attempts made so far.
    pub attempts: u32,
    /// Node token names where an attempt of it ended `crashed`: it never
    /// runs there again (see [`crashed_on`]).
    pub crashed_on: Vec<String>,
    /// Node token names where an attempt of it missed its deadline: it
    /// runs elsewhere (see [`missed_deadline_on`]).
    pub missed_on: Vec<String>,
    /// When it was submitted (the scheduling delay is measured from it).
    pub submitted_ms: u64,
}

/// How the error of an attempt the coordinator ended at its deadline
/// begins (`provider_fault`): the scheduler reads it back from the ledger
/// to run the job on another node token, across restarts too.
pub const DEADLINE_MISSED: &str = "no result by the attempt's deadline";

/// The node token names where a job's attempts missed their deadline.
pub fn missed_deadline_on(view: &JobView) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in &view.attempts {
        let missed = a.outcome == Some(Outcome::ProviderFault)
            && a.error
                .as_deref()
                .is_some_and(|e| e.starts_with(DEADLINE_MISSED));
        if missed && !names.contains(&a.node) {
            names.push(a.node.clone());
        }
    }
    names
}

/// What happens to a job after an attempt ends with an outcome.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Retry {
    /// The job is final with this outcome (its own doing: running it again
    /// would end the same way).
    Final,
    /// Back to the queue while attempts remain (the provider's fault).
    Requeue,
    /// Back to the queue once, for another node (by token name); a second
    /// crash is final.
    OnceElsewhere,
}

/// The retry rule, as a `match` with no wildcard like `billing::tenant_pays`:
/// a new outcome does not compile until someone decides whether it is retried.
pub fn retry(outcome: Outcome) -> Retry {
    match outcome {
        Outcome::Succeeded
        | Outcome::JobError
        | Outcome::Trap
        | Outcome::Timeout
        | Outcome::MemoryLimit
        | Outcome::GpuBudgetExceeded
        | Outcome::LogLimit
        | Outcome::InvalidJob
        | Outcome::Cancelled
        | Outcome::GpuHang => Retry::Final,
        Outcome::Crashed => Retry::OnceElsewhere,
        Outcome::NodeLost | Outcome::ProviderFault => Retry::Requeue,
    }
}

/// The node token names a job's attempts crashed on, from its attempts (so
/// the ledger keeps them across coordinator restarts), in attempt order.
pub fn crashed_on(view: &JobView) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for a in &view.attempts {
        if a.outcome == Some(Outcome::Crashed) && !names.contains(&a.node) {
            names.push(a.node.clone());
        }
    }
    names
}

/// What a submission did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    Accepted(u64),
    /// Refused: the tenant's credit limit does not cover the worst case.
    OverCredit(String),
}

/// What starting an attempt did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Start {
    Started {
        attempt: u32,
    },
    /// The job is not queued any more.
    NotQueued,
    /// Starting it could take the tenant past its credit limit; it stays queued.
    OverCredit(String),
}

/// What recording an attempt's end did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// The attempt ended now; the job is in `state`.
    Ended { state: JobState },
    /// The attempt had already ended (a re-sent result): nothing changed.
    Duplicate,
    /// No such attempt of this node (e.g. another node's): nothing changed.
    Unknown,
    /// The receipt is not the attempt's or its signature is wrong: nothing
    /// was recorded for it.
    Rejected(String),
}

pub(crate) fn parse_state(s: &str) -> Result<JobState> {
    Ok(match s {
        "queued" => JobState::Queued,
        "running" => JobState::Running,
        "succeeded" => JobState::Succeeded,
        "failed" => JobState::Failed,
        "cancelled" => JobState::Cancelled,
        other => return Err(LedgerError::Corrupt(format!("unknown job state {other:?}"))),
    })
}

pub(crate) fn limits_from(
    max_gpu: Option<i64>,
    timeout: i64,
    max_mem: i64,
    max_dispatch: i64,
) -> JobLimits {
    JobLimits {
        max_gpu_ns: max_gpu.map(u),
        timeout_ns: u(timeout),
        max_memory_bytes: u(max_mem),
        max_dispatch_ns: u(max_dispatch),
    }
}

/// An outcome name read from the ledger (the CHECK constraints admit only
/// known ones; anything else is a corrupt row, never a panic).
pub(crate) fn parse_outcome(name: &str) -> Result<Outcome> {
    Outcome::parse(name).ok_or_else(|| LedgerError::Corrupt(format!("unknown outcome {name:?}")))
}

pub(crate) fn parse_metering(name: &str) -> Result<Metering> {
    Metering::parse(name)
        .ok_or_else(|| LedgerError::Corrupt(format!("unknown metering method {name:?}")))
}

/// The row of an attempt with what its end needs.
struct OpenAttempt {
    node_id: u64,
    ended: bool,
    node_key: Vec<u8>,
    node_name: String,
    gpu_class: String,
    price_micros: u64,
    tenant: String,
    state: JobState,
    module: Hash,
    input: Hash,
    limits: JobLimits,
    max_attempts: u32,
    started_ms: u64,
}

fn open_attempt(tx: &Connection, job: u64, attempt: u32) -> Result<Option<OpenAttempt>> {
    let row = tx
        .query_row(
            "SELECT a.node_id, a.outcome IS NOT NULL, n.public_key, n.name, a.gpu_class, a.price_micros,
                    j.tenant, j.state, j.module, j.input, j.max_gpu_ns, j.timeout_ns, j.max_memory,
                    j.max_attempts, a.started_ms, j.max_dispatch_ns
             FROM attempts a JOIN nodes n ON n.id = a.node_id JOIN jobs j ON j.id = a.job
             WHERE a.job = ?1 AND a.attempt = ?2",
            params![i(job), attempt],
            |r| {
                Ok((
                    (
                        r.get::<_, i64>(0)?,
                        r.get::<_, bool>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                        r.get::<_, String>(3)?,
                        r.get::<_, String>(4)?,
                        r.get::<_, i64>(5)?,
                    ),
                    (
                        r.get::<_, String>(6)?,
                        r.get::<_, String>(7)?,
                        r.get::<_, Vec<u8>>(8)?,
                        r.get::<_, Vec<u8>>(9)?,
                        r.get::<_, Option<i64>>(10)?,
                        r.get::<_, i64>(11)?,
                        r.get::<_, i64>(12)?,
                        r.get::<_, u32>(13)?,
                        r.get::<_, i64>(14)?,
                        r.get::<_, i64>(15)?,
                    ),
                ))
            },
        )
        .optional()?;
    let Some((a, j)) = row else {
        return Ok(None);
    };
    Ok(Some(OpenAttempt {
        node_id: u(a.0),
        ended: a.1,
        node_key: a.2,
        node_name: a.3,
        gpu_class: a.4,
        price_micros: u(a.5),
        tenant: j.0,
        state: parse_state(&j.1)?,
        module: hash_from(j.2)?,
        input: hash_from(j.3)?,
        limits: limits_from(j.4, j.5, j.6, j.9),
        max_attempts: j.7,
        started_ms: u(j.8),
    }))
}

/// The newest price of `class`, else of `default`, else 0.
pub(crate) fn price_for(tx: &Connection, class: &str) -> Result<u64> {
    let price: Option<i64> = tx
        .query_row(
            "SELECT micros FROM prices WHERE class IN (?1, 'default')
             ORDER BY class = ?1 DESC, id DESC LIMIT 1",
            params![class],
            |r| r.get(0),
        )
        .optional()?;
    Ok(price.map(u).unwrap_or(0))
}

/// The highest price in force: what a queued job may end up paying.
pub(crate) fn max_price(tx: &Connection) -> Result<u64> {
    let price: Option<i64> = tx.query_row(
        "SELECT MAX(micros) FROM prices p WHERE id = (SELECT MAX(id) FROM prices WHERE class = p.class)",
        [],
        |r| r.get(0),
    )?;
    Ok(price.map(u).unwrap_or(0))
}

pub(crate) fn credit_limit(tx: &Connection, tenant: &str) -> Result<Option<u64>> {
    Ok(tx
        .query_row(
            "SELECT micros FROM credit_limits WHERE tenant = ?1",
            params![tenant],
            |r| r.get::<_, i64>(0),
        )
        .optional()?
        .map(u))
}

/// What `tenant` has spent: its running total (schema 7), one row, never a
/// scan of its usage history. `check` holds it equal to the sum of rows.
pub(crate) fn spend(tx: &Connection, tenant: &str) -> Result<u64> {
    let micros: Option<i64> = tx
        .query_row(
            "SELECT micros FROM tenant_spend WHERE tenant = ?1",
            params![tenant],
            |r| r.get(0),
        )
        .optional()?;
    Ok(micros.map(u).unwrap_or(0))
}

/// What `tenant`'s queued and running jobs may still cost: each one's
/// worst case at `price` (the highest in force). Admission holds this back,
/// and `suanli tenant show` reports it.
pub(crate) fn held(tx: &Connection, tenant: &str, price: u64) -> Result<u64> {
    let mut stmt = tx.prepare_cached(
        "SELECT max_gpu_ns, timeout_ns, max_memory, max_dispatch_ns FROM jobs
         WHERE tenant = ?1 AND state IN ('queued', 'running')",
    )?;
    let rows = stmt.query_map(params![tenant], |r| {
        Ok(limits_from(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    let mut held = 0u64;
    for limits in rows {
        held = held.saturating_add(worst_case_micros(&limits?, price));
    }
    Ok(held)
}

impl Ledger {
    /// Queues a job, unless the tenant's credit limit cannot cover its worst
    /// case on top of what the tenant spent and what its queued and running
    /// jobs may still cost (each at the highest price in force).
    pub fn submit(&mut self, tenant: &str, spec: &JobSpec, now_ms: u64) -> Result<Admission> {
        let tx = self.conn.savepoint()?;
        if let Some(limit) = credit_limit(&tx, tenant)? {
            let price = max_price(&tx)?;
            let spent = spend(&tx, tenant)?;
            let held = held(&tx, tenant, price)?;
            let worst = worst_case_micros(&spec.limits, price);
            if spent.saturating_add(held).saturating_add(worst) > limit {
                return Ok(Admission::OverCredit(format!(
                    "credit limit reached: tenant {tenant} has spent {} of its limit of {} and {} \
                     is held for its queued and running jobs; this job may cost up to {} \
                     ({} GPU-seconds, min(timeout, GPU budget + dispatch limit), at the highest \
                     price, {} per GPU-second). Lower --max-gpu-seconds, --max-dispatch-seconds \
                     or --timeout, or ask the operator to raise the limit",
                    micros(spent),
                    micros(limit),
                    micros(held),
                    micros(worst),
                    crate::billing::seconds(charge_cap_ns(&spec.limits)),
                    micros(price),
                )));
            }
        }
        tx.execute(
            "INSERT INTO jobs (tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns, max_memory,
                               max_dispatch_ns, max_attempts, submitted_ms)
             VALUES (?1, 'queued', ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                tenant,
                spec.module.0.as_slice(),
                spec.input.0.as_slice(),
                i(spec.requirements.min_gpu_memory),
                spec.limits.max_gpu_ns.map(i),
                i(spec.limits.timeout_ns),
                i(spec.limits.max_memory_bytes),
                i(spec.limits.max_dispatch_ns),
                spec.max_attempts,
                i(now_ms),
            ],
        )?;
        let id = u(tx.last_insert_rowid());
        tx.commit()?;
        Ok(Admission::Accepted(id))
    }

    pub fn job(&self, id: u64) -> Result<Option<JobView>> {
        let mut views = self.query_jobs("WHERE id = ?1", params![i(id)])?;
        Ok(views.pop())
    }

    /// Jobs of one tenant, or of all tenants, newest first.
    /// Jobs newest first as `filter` says; a tenant's own, or every
    /// tenant's for `None`.
    pub fn jobs(&self, tenant: Option<&str>, filter: &JobFilter) -> Result<Vec<JobView>> {
        // NULLs switch a condition off, so one statement serves every filter.
        self.query_jobs(
            "WHERE (?1 IS NULL OR tenant = ?1) AND (?2 IS NULL OR state = ?2)
               AND (?3 IS NULL OR id < ?3)
             ORDER BY id DESC LIMIT ?4",
            params![
                tenant,
                filter.state.map(|s| s.as_str()),
                filter.before.map(i),
                filter.effective_limit()
            ],
        )
    }

    fn query_jobs(&self, tail: &str, args: impl rusqlite::Params) -> Result<Vec<JobView>> {
        let sql = format!(
            "SELECT id, tenant, state, module, input, min_gpu_memory, max_gpu_ns, timeout_ns, max_memory,
                    max_attempts, outcome, error, output, output_bytes, submitted_ms, finished_ms,
                    max_dispatch_ns
             FROM jobs {tail}"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        // Columns that need our own checks come out raw, beside the view.
        let rows = stmt.query_map(args, |r| {
            let view = JobView {
                id: u(r.get(0)?),
                tenant: r.get(1)?,
                state: JobState::Queued,
                spec: JobSpec {
                    module: Hash([0; 32]),
                    input: Hash([0; 32]),
                    requirements: Requirements {
                        min_gpu_memory: u(r.get(5)?),
                    },
                    limits: limits_from(r.get(6)?, r.get(7)?, r.get(8)?, r.get(16)?),
                    max_attempts: r.get(9)?,
                },
                waiting_reason: None,
                outcome: None,
                error: r.get(11)?,
                output: None,
                output_bytes: u(r.get(13)?),
                submitted_ms: u(r.get(14)?),
                finished_ms: r.get::<_, Option<i64>>(15)?.map(u),
                attempts: Vec::new(),
            };
            let raw = (
                r.get::<_, String>(2)?,
                r.get::<_, Vec<u8>>(3)?,
                r.get::<_, Vec<u8>>(4)?,
                r.get::<_, Option<String>>(10)?,
                r.get::<_, Option<Vec<u8>>>(12)?,
            );
            Ok((view, raw))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut view, (state, module, input, outcome, output)) = row?;
            view.state = parse_state(&state)?;
            view.spec.module = hash_from(module)?;
            view.spec.input = hash_from(input)?;
            view.outcome = outcome.as_deref().map(parse_outcome).transpose()?;
            view.output = output.map(hash_from).transpose()?;
            view.attempts = self.attempts(view.id)?;
            out.push(view);
        }
        Ok(out)
    }

    fn attempts(&self, job: u64) -> Result<Vec<AttemptView>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.attempt, a.node_id, n.name, a.outcome, a.error, a.gpu_ns, a.wall_ns, a.metering,
                    a.started_ms, a.ended_ms, a.gpu_class, a.price_micros,
                    COALESCE(us.charged_gpu_ns, 0), COALESCE(us.cost_micros, 0)
             FROM attempts a JOIN nodes n ON n.id = a.node_id
             LEFT JOIN usage us ON us.job = a.job AND us.attempt = a.attempt
             WHERE a.job = ?1 ORDER BY a.attempt",
        )?;
        let rows = stmt.query_map(params![i(job)], |r| {
            let names = (
                r.get::<_, Option<String>>(3)?,
                r.get::<_, Option<String>>(7)?,
            );
            let view = AttemptView {
                attempt: r.get(0)?,
                node_id: u(r.get(1)?),
                node: r.get(2)?,
                outcome: None,
                error: r.get(4)?,
                gpu_ns: u(r.get(5)?),
                wall_ns: u(r.get(6)?),
                metering: None,
                started_ms: u(r.get(8)?),
                ended_ms: r.get::<_, Option<i64>>(9)?.map(u),
                gpu_class: r.get(10)?,
                price_micros: u(r.get(11)?),
                charged_gpu_ns: u(r.get(12)?),
                cost_micros: u(r.get(13)?),
            };
            Ok((view, names))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (mut view, (outcome, metering)) = row?;
            view.outcome = outcome.as_deref().map(parse_outcome).transpose()?;
            view.metering = metering.as_deref().map(parse_metering).transpose()?;
            out.push(view);
        }
        Ok(out)
    }

    /// Up to `per_tenant` oldest queued jobs of every tenant, oldest first
    /// within a tenant. Bounded per tenant, so one tenant's 10,000 queued jobs
    /// cost the scheduler no more than another's one. Two queries whatever
    /// the number of jobs: the jobs, then their earlier attempts.
    pub fn queued(&self, per_tenant: u32) -> Result<Vec<QueuedJob>> {
        let mut out: Vec<QueuedJob> = {
            let mut stmt = self.conn.prepare_cached(
                "SELECT id, tenant, module, input, min_gpu_memory, max_gpu_ns, timeout_ns,
                        max_memory, max_dispatch_ns, max_attempts, submitted_ms FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY tenant ORDER BY id) AS rank
                    FROM jobs WHERE state = 'queued')
                 WHERE rank <= ?1 ORDER BY id",
            )?;
            let rows = stmt.query_map(params![per_tenant], |r| {
                Ok((
                    u(r.get(0)?),
                    r.get::<_, String>(1)?,
                    r.get::<_, Vec<u8>>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    u(r.get(4)?),
                    limits_from(r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?),
                    r.get::<_, u32>(9)?,
                    u(r.get(10)?),
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, tenant, module, input, min_gpu_memory, limits, max_attempts, submitted_ms) =
                    row?;
                out.push(QueuedJob {
                    id,
                    tenant,
                    spec: JobSpec {
                        module: hash_from(module)?,
                        input: hash_from(input)?,
                        requirements: Requirements { min_gpu_memory },
                        limits,
                        max_attempts,
                    },
                    attempts: 0,
                    crashed_on: Vec::new(),
                    missed_on: Vec::new(),
                    submitted_ms,
                });
            }
            out
        };
        self.add_past_attempts(&mut out)?;
        Ok(out)
    }

    /// Fills in the attempts made so far and the node token names each job
    /// crashed on or missed its deadline on (as [`crashed_on`] and
    /// [`missed_deadline_on`] derive them), in one query for all `jobs`.
    fn add_past_attempts(&self, jobs: &mut [QueuedJob]) -> Result<()> {
        if jobs.is_empty() {
            return Ok(());
        }
        let index: std::collections::HashMap<u64, usize> =
            jobs.iter().enumerate().map(|(n, j)| (j.id, n)).collect();
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.job, n.name, a.outcome = 'crashed',
                    a.outcome = 'provider_fault' AND substr(a.error, 1, ?1) = ?2
             FROM attempts a JOIN nodes n ON n.id = a.node_id
             WHERE a.job IN (SELECT id FROM jobs WHERE state = 'queued')
             ORDER BY a.job, a.attempt",
        )?;
        let rows = stmt.query_map(
            params![DEADLINE_MISSED.len() as i64, DEADLINE_MISSED],
            |r| {
                Ok((
                    u(r.get(0)?),
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<bool>>(2)?.unwrap_or(false),
                    r.get::<_, Option<bool>>(3)?.unwrap_or(false),
                ))
            },
        )?;
        for row in rows {
            let (job, node, crashed, missed) = row?;
            let Some(&n) = index.get(&job) else { continue };
            let j = &mut jobs[n];
            j.attempts += 1;
            if crashed && !j.crashed_on.contains(&node) {
                j.crashed_on.push(node.clone());
            }
            if missed && !j.missed_on.contains(&node) {
                j.missed_on.push(node);
            }
        }
        Ok(())
    }

    /// Running jobs per tenant, in one query (the scheduler's fairness).
    pub fn running_per_tenant(&self) -> Result<std::collections::HashMap<String, u32>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT tenant, COUNT(*) FROM jobs WHERE state = 'running' GROUP BY tenant",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Moves a queued job to running with a new attempt on `node_id`, at the
    /// price of the node's class now — unless the attempt's worst case would
    /// take the tenant past its credit limit (spend + running attempts'
    /// worst cases at their prices + this one).
    pub fn start_attempt(&mut self, job: u64, node_id: u64, now_ms: u64) -> Result<Start> {
        let tx = self.conn.savepoint()?;
        let row: Option<(String, JobLimits)> = tx
            .query_row(
                "SELECT tenant, max_gpu_ns, timeout_ns, max_memory, max_dispatch_ns FROM jobs
                 WHERE id = ?1 AND state = 'queued'",
                params![i(job)],
                |r| {
                    let limits = limits_from(r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?);
                    Ok((r.get(0)?, limits))
                },
            )
            .optional()?;
        let Some((tenant, limits)) = row else {
            return Ok(Start::NotQueued);
        };
        let gpu_class: String = tx
            .query_row(
                "SELECT gpu_class FROM nodes WHERE id = ?1",
                params![i(node_id)],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| LedgerError::Corrupt(format!("no node session {node_id}")))?;
        let price = price_for(&tx, &gpu_class)?;
        if let Some(limit) = credit_limit(&tx, &tenant)? {
            let mut held = 0u64;
            {
                let mut stmt = tx.prepare_cached(
                    "SELECT j.max_gpu_ns, j.timeout_ns, j.max_memory, j.max_dispatch_ns, a.price_micros
                     FROM attempts a JOIN jobs j ON j.id = a.job
                     WHERE j.tenant = ?1 AND a.outcome IS NULL",
                )?;
                let rows = stmt.query_map(params![tenant], |r| {
                    Ok((
                        limits_from(r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?),
                        r.get::<_, i64>(4)?,
                    ))
                })?;
                for row in rows {
                    let (l, p) = row?;
                    held = held.saturating_add(worst_case_micros(&l, u(p)));
                }
            }
            let spent = spend(&tx, &tenant)?;
            let worst = worst_case_micros(&limits, price);
            if spent.saturating_add(held).saturating_add(worst) > limit {
                return Ok(Start::OverCredit(format!(
                    "tenant {tenant}'s credit limit of {} is taken by {} spent and {} held by running jobs; \
                     this job may cost up to {} on a {gpu_class} node",
                    micros(limit),
                    micros(spent),
                    micros(held),
                    micros(worst)
                )));
            }
        }
        tx.execute(
            "UPDATE jobs SET state = 'running' WHERE id = ?1",
            params![i(job)],
        )?;
        let attempt: u32 = tx.query_row(
            "SELECT COALESCE(MAX(attempt), 0) + 1 FROM attempts WHERE job = ?1",
            params![i(job)],
            |r| r.get(0),
        )?;
        tx.execute(
            "INSERT INTO attempts (job, attempt, node_id, gpu_ns, wall_ns, started_ms, gpu_class, price_micros)
             VALUES (?1, ?2, ?3, 0, 0, ?4, ?5, ?6)",
            params![i(job), attempt, i(node_id), i(now_ms), gpu_class, i(price)],
        )?;
        tx.commit()?;
        Ok(Start::Started { attempt })
    }

    /// Records a node's signed result for an attempt, once, with its usage
    /// row. `session` is the node session it arrived on: it may be a later
    /// session of the same node (same key) than the one that ran it.
    ///
    /// What the job does next follows [`retry`]: final with the attempt's
    /// outcome (a job's own failure would fail again), back to the queue
    /// (`provider_fault`, or a `node_lost` a node claims), or, for
    /// `crashed`, back to the queue once for another node. A cancelled job
    /// stays cancelled. The error text is stored cut to
    /// [`suanli_proto::MAX_ERROR_BYTES`], whatever the node sent.
    pub fn finish_attempt(
        &mut self,
        session: u64,
        r: &AttemptResult,
        now_ms: u64,
    ) -> Result<Recorded> {
        let rec = &r.receipt;
        let tx = self.conn.savepoint()?;
        let Some(a) = open_attempt(&tx, rec.job, rec.attempt)? else {
            return Ok(Recorded::Unknown);
        };
        // The session must be the attempt's node by token and key together.
        let same_node: bool = tx.query_row(
            "SELECT EXISTS(SELECT 1 FROM nodes s JOIN nodes n ON n.id = ?2
             WHERE s.id = ?1 AND s.public_key = n.public_key AND s.token_hash = n.token_hash)",
            params![i(session), i(a.node_id)],
            |r| r.get(0),
        )?;
        if !same_node {
            return Ok(Recorded::Unknown);
        }
        if a.ended {
            return Ok(Recorded::Duplicate);
        }
        if let Some(reason) = beyond_sqlite(r) {
            return Ok(Recorded::Rejected(reason));
        }
        if rec.node_id != a.node_id || rec.module != a.module || rec.input != a.input {
            return Ok(Recorded::Rejected(format!(
                "the receipt does not describe attempt {} of job {} (node, module or input differ)",
                rec.attempt, rec.job
            )));
        }
        let key = <[u8; 32]>::try_from(a.node_key.as_slice())
            .map(PublicKey)
            .map_err(|_| LedgerError::Corrupt("node key is not 32 bytes".into()))?;
        if let Err(e) = rec.verify(&key, &r.signature) {
            return Ok(Recorded::Rejected(e.to_string()));
        }
        let error = r.error.clone().map(bounded_error);
        tx.execute(
            "UPDATE attempts SET outcome = ?3, error = ?4, gpu_ns = ?5, wall_ns = ?6, metering = ?7, ended_ms = ?8
             WHERE job = ?1 AND attempt = ?2",
            params![
                i(rec.job),
                rec.attempt,
                rec.outcome.as_str(),
                error,
                i(rec.gpu_ns),
                i(rec.wall_ns),
                rec.metering.as_str(),
                i(now_ms)
            ],
        )?;
        insert_usage(&tx, &a, rec, Some(&r.signature), now_ms)?;
        let state = job_after_result(&tx, &a, r, error.as_deref(), now_ms)?;
        tx.commit()?;
        Ok(Recorded::Ended { state })
    }

    /// Ends a running attempt whose node is gone (`node_lost`, billed
    /// nothing, no receipt) and puts the job back in the queue while
    /// attempts remain.
    pub fn lose_attempt(
        &mut self,
        job: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Recorded> {
        self.end_unbilled(job, attempt, Outcome::NodeLost, now_ms, reason)
    }

    /// Ends a running attempt whose node sent a result that cannot be
    /// recorded (a rejected receipt): `provider_fault`, billed nothing, retried.
    pub fn fault_attempt(
        &mut self,
        job: u64,
        attempt: u32,
        now_ms: u64,
        reason: &str,
    ) -> Result<Recorded> {
        self.end_unbilled(job, attempt, Outcome::ProviderFault, now_ms, reason)
    }

    fn end_unbilled(
        &mut self,
        job: u64,
        attempt: u32,
        outcome: Outcome,
        now_ms: u64,
        reason: &str,
    ) -> Result<Recorded> {
        let reason = bounded_error(reason.to_owned());
        let tx = self.conn.savepoint()?;
        let Some(a) = open_attempt(&tx, job, attempt)? else {
            return Ok(Recorded::Unknown);
        };
        if a.ended {
            return Ok(Recorded::Duplicate);
        }
        tx.execute(
            "UPDATE attempts SET outcome = ?5, error = ?3, ended_ms = ?4
             WHERE job = ?1 AND attempt = ?2",
            params![i(job), attempt, reason, i(now_ms), outcome.as_str()],
        )?;
        // The coordinator's description of the attempt, unsigned: nothing
        // was measured (its metering is stored as NULL, see `insert_usage`).
        let receipt = Receipt {
            job,
            attempt,
            node_id: a.node_id,
            module: a.module,
            input: a.input,
            output: None,
            gpu_ns: 0,
            wall_ns: 0,
            outcome,
            metering: Metering::Timestamp,
            started_ms: a.started_ms,
            ended_ms: now_ms,
        };
        insert_usage(&tx, &a, &receipt, None, now_ms)?;
        let state = if a.state == JobState::Cancelled {
            JobState::Cancelled
        } else {
            requeue_or_fail(&tx, job, attempt, &a, now_ms, outcome, &reason)?
        };
        tx.commit()?;
        Ok(Recorded::Ended { state })
    }

    /// Cancels a job that is not final. Returns its running attempt, if any,
    /// for the caller to stop on its node.
    pub fn cancel(&mut self, job: u64, now_ms: u64) -> Result<Option<Option<(u32, u64)>>> {
        let tx = self.conn.savepoint()?;
        let changed = tx.execute(
            "UPDATE jobs SET state = 'cancelled', outcome = 'cancelled', finished_ms = ?2
             WHERE id = ?1 AND state IN ('queued', 'running')",
            params![i(job), i(now_ms)],
        )?;
        if changed == 0 {
            return Ok(None);
        }
        let running: Option<(u32, i64)> = tx
            .query_row(
                "SELECT attempt, node_id FROM attempts WHERE job = ?1 AND outcome IS NULL",
                params![i(job)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        tx.commit()?;
        Ok(Some(running.map(|(a, n)| (a, u(n)))))
    }

    /// When attempt (job, attempt) started on the coordinator's clock.
    pub fn attempt_started_ms(&self, job: u64, attempt: u32) -> Result<Option<u64>> {
        let started: Option<i64> = self
            .conn
            .query_row(
                "SELECT started_ms FROM attempts WHERE job = ?1 AND attempt = ?2",
                params![i(job), attempt],
                |r| r.get(0),
            )
            .optional()?;
        Ok(started.map(u))
    }

    /// Running attempts past their deadline: started before `now_ms` minus
    /// the job's timeout, its dispatch limit (a kernel at the timeout is
    /// waited for) and `grace_ms` (fetching, uploading, reporting). As
    /// (job, attempt, node session).
    ///
    /// An attempt started before `since_ms` (the coordinator's start) is
    /// timed from `since_ms`: the coordinator's downtime is not the node's
    /// delay, and a node that finished during it reports after reconnecting.
    pub fn overdue_attempts(
        &self,
        now_ms: u64,
        grace_ms: u64,
        since_ms: u64,
    ) -> Result<Vec<Overdue>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT a.job, a.attempt, a.node_id, a.started_ms FROM attempts a
             JOIN jobs j ON j.id = a.job
             WHERE a.outcome IS NULL
               AND MAX(a.started_ms, ?3) + (j.timeout_ns + j.max_dispatch_ns) / 1000000 + ?2 < ?1
             ORDER BY a.job LIMIT 1000",
        )?;
        let rows = stmt.query_map(params![i(now_ms), i(grace_ms), i(since_ms)], |r| {
            Ok(Overdue {
                job: u(r.get(0)?),
                attempt: r.get(1)?,
                node_id: u(r.get(2)?),
                started_ms: u(r.get(3)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Attempts without an outcome: (job, attempt, node session).
    pub fn open_attempts(&self) -> Result<Vec<(u64, u32, u64)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT job, attempt, node_id FROM attempts WHERE outcome IS NULL ORDER BY job",
        )?;
        let rows = stmt.query_map([], |r| Ok((u(r.get(0)?), r.get(1)?, u(r.get(2)?))))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// Why a result holds a number SQLite cannot store (above `i64::MAX`):
/// clamping it would store a receipt that no longer verifies, so the
/// result is refused instead.
fn beyond_sqlite(r: &AttemptResult) -> Option<String> {
    let rec = &r.receipt;
    [
        ("gpu_ns", rec.gpu_ns),
        ("wall_ns", rec.wall_ns),
        ("started_ms", rec.started_ms),
        ("ended_ms", rec.ended_ms),
        ("output_bytes", r.output_bytes),
    ]
    .into_iter()
    .find(|(_, v)| i64::try_from(*v).is_err())
    .map(|(name, v)| {
        format!(
            "the receipt's {name} ({v}) is above the largest value stored, {}",
            i64::MAX
        )
    })
}

/// The job's state after a node's result for one of its attempts (already
/// recorded in `tx`), by [`retry`].
fn job_after_result(
    tx: &Connection,
    a: &OpenAttempt,
    r: &AttemptResult,
    error: Option<&str>,
    now_ms: u64,
) -> Result<JobState> {
    let rec = &r.receipt;
    if a.state == JobState::Cancelled {
        return Ok(JobState::Cancelled);
    }
    match retry(rec.outcome) {
        Retry::Requeue => {
            let reason = format!("{}: {}", rec.outcome, error.unwrap_or("no reason given"));
            requeue_or_fail(tx, rec.job, rec.attempt, a, now_ms, rec.outcome, &reason)
        }
        Retry::OnceElsewhere => after_crash(tx, a, rec, error, now_ms),
        Retry::Final => {
            let state = if rec.outcome == Outcome::Succeeded {
                JobState::Succeeded
            } else {
                JobState::Failed
            };
            tx.execute(
                "UPDATE jobs SET state = ?2, outcome = ?3, error = ?4, output = ?5, output_bytes = ?6, finished_ms = ?7
                 WHERE id = ?1 AND state = 'running'",
                params![
                    i(rec.job),
                    state.as_str(),
                    rec.outcome.as_str(),
                    error,
                    rec.output.map(|h| h.0.to_vec()),
                    i(r.output_bytes),
                    i(now_ms)
                ],
            )?;
            if let Some(output) = &rec.output {
                tx.execute(
                    "INSERT OR IGNORE INTO blob_grants (hash, tenant) VALUES (?1, ?2)",
                    params![output.0.as_slice(), a.tenant],
                )?;
            }
            Ok(state)
        }
    }
}

/// A `crashed` attempt: the job goes back to the queue for another node
/// (the scheduler skips the nodes in [`QueuedJob::crashed_on`]) if this is
/// its first crash and attempts remain; a second crash is final.
fn after_crash(
    tx: &Connection,
    a: &OpenAttempt,
    rec: &Receipt,
    error: Option<&str>,
    now_ms: u64,
) -> Result<JobState> {
    let nodes: Vec<String> = {
        let mut stmt = tx.prepare_cached(
            "SELECT n.name FROM attempts a JOIN nodes n ON n.id = a.node_id
             WHERE a.job = ?1 AND a.outcome = 'crashed' ORDER BY a.attempt",
        )?;
        stmt.query_map(params![i(rec.job)], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    let error = error.unwrap_or("no reason given");
    let why = if nodes.len() >= 2 {
        format!(
            "the job crashed the worker running it twice (on {}); a job that crashes two \
             workers is not retried. Last: {error}",
            nodes.join(" and ")
        )
    } else if rec.attempt < a.max_attempts {
        tx.execute(
            "UPDATE jobs SET state = 'queued' WHERE id = ?1 AND state = 'running'",
            params![i(rec.job)],
        )?;
        return Ok(JobState::Queued);
    } else {
        format!(
            "the job crashed the worker running it on {} and has no attempts left \
             (--max-attempts {}): {error}",
            a.node_name, a.max_attempts
        )
    };
    fail_job(tx, rec.job, Outcome::Crashed, &why, now_ms)?;
    Ok(JobState::Failed)
}

/// Marks a running job `failed` with `outcome` and `error` (bounded).
fn fail_job(tx: &Connection, job: u64, outcome: Outcome, error: &str, now_ms: u64) -> Result<()> {
    tx.execute(
        "UPDATE jobs SET state = 'failed', outcome = ?2, error = ?3, finished_ms = ?4
         WHERE id = ?1 AND state = 'running'",
        params![
            i(job),
            outcome.as_str(),
            bounded_error(error.to_owned()),
            i(now_ms)
        ],
    )?;
    Ok(())
}

/// The job goes back to the queue while it has attempts left, else fails.
fn requeue_or_fail(
    tx: &Connection,
    job: u64,
    attempt: u32,
    a: &OpenAttempt,
    now_ms: u64,
    outcome: Outcome,
    reason: &str,
) -> Result<JobState> {
    if attempt < a.max_attempts {
        tx.execute(
            "UPDATE jobs SET state = 'queued' WHERE id = ?1 AND state = 'running'",
            params![i(job)],
        )?;
        return Ok(JobState::Queued);
    }
    let error = format!(
        "all {} attempts ended without a result of the job's own; last: {reason}",
        a.max_attempts
    );
    fail_job(tx, job, outcome, &error, now_ms)?;
    Ok(JobState::Failed)
}

/// The usage row of an ended attempt: append-only, one per (job, attempt),
/// with the charge cap it was billed under. A row without a signature is
/// one the coordinator ended: nothing was measured, so its metering is NULL.
fn insert_usage(
    tx: &Connection,
    a: &OpenAttempt,
    rec: &Receipt,
    signature: Option<&Signature>,
    now_ms: u64,
) -> Result<()> {
    let cap = charge_cap_ns(&a.limits);
    let charged = charged_gpu_ns(rec.outcome, rec.gpu_ns, &a.limits);
    let metering = signature.map(|_| rec.metering.as_str());
    tx.execute(
        "INSERT INTO usage (job, attempt, tenant, node, node_id, node_key, gpu_class, module, input, output,
                            outcome, metering, gpu_ns, charged_gpu_ns, charge_cap_ns, wall_ns, price_micros,
                            cost_micros, started_ms, ended_ms, recorded_ms, signature)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        params![
            i(rec.job),
            rec.attempt,
            a.tenant,
            a.node_name,
            i(rec.node_id),
            a.node_key,
            a.gpu_class,
            rec.module.0.as_slice(),
            rec.input.0.as_slice(),
            rec.output.map(|h| h.0.to_vec()),
            rec.outcome.as_str(),
            metering,
            i(rec.gpu_ns),
            i(charged),
            i(cap),
            i(rec.wall_ns),
            i(a.price_micros),
            i(cost_micros(charged, a.price_micros)),
            i(rec.started_ms),
            i(rec.ended_ms),
            i(now_ms),
            signature.map(|s| s.to_bytes().to_vec()),
        ],
    )?;
    Ok(())
}
