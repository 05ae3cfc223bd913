//! `suanli admin check`: the ledger's invariants, re-derived from its rows.

use rusqlite::params;
use suanli_proto::usage::UsageQuery;

use crate::billing::{charge_cap_ns, check_record, tenant_pays};
use crate::{Ledger, Result, i, u};

/// Rows named by the first columns of `sql`, each turned into a message.
fn rows(l: &Ledger, sql: &str, what: impl Fn(i64, i64) -> String) -> Result<Vec<String>> {
    let mut stmt = l.conn.prepare(sql)?;
    let found = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
    let mut out = Vec::new();
    for row in found {
        let (a, b) = row?;
        out.push(what(a, b));
    }
    Ok(out)
}

impl Ledger {
    /// Every violated invariant, as a sentence; empty when consistent.
    pub fn check(&self) -> Result<Vec<String>> {
        let mut v = Vec::new();
        v.extend(rows(
            self,
            "SELECT a.job, a.attempt FROM attempts a LEFT JOIN usage us ON us.job = a.job AND us.attempt = a.attempt
             WHERE a.outcome IS NOT NULL AND us.job IS NULL",
            |j, a| format!("job {j} attempt {a} ended without a usage row"),
        )?);
        v.extend(rows(
            self,
            "SELECT a.job, a.attempt FROM attempts a JOIN usage us ON us.job = a.job AND us.attempt = a.attempt
             WHERE a.outcome IS NULL OR us.outcome != a.outcome OR us.gpu_ns != a.gpu_ns OR us.wall_ns != a.wall_ns",
            |j, a| format!("job {j} attempt {a}: the usage row disagrees with the attempt"),
        )?);
        v.extend(rows(
            self,
            "SELECT us.job, us.attempt FROM usage us JOIN jobs j ON j.id = us.job WHERE us.tenant != j.tenant",
            |j, a| format!("job {j} attempt {a} is billed to another tenant than the job's"),
        )?);
        v.extend(rows(
            self,
            // `a.job IS NOT NULL`: a job with no attempt at all (cancelled
            // while queued) joins one all-NULL row, which is not an attempt.
            // A running job cancelled keeps its attempt open until its node
            // reports or the attempt's deadline passes.
            "SELECT j.id, COALESCE(SUM(a.job IS NOT NULL AND a.outcome IS NULL), 0) AS open FROM jobs j
             LEFT JOIN attempts a ON a.job = j.id GROUP BY j.id
             HAVING (j.state = 'running' AND open != 1)
                 OR (j.state = 'cancelled' AND open > 1)
                 OR (j.state NOT IN ('running', 'cancelled') AND open != 0)",
            |j, open| {
                format!("job {j} has {open} running attempts, which its state does not allow")
            },
        )?);
        v.extend(rows(
            self,
            "SELECT j.id, COUNT(a.attempt) FROM jobs j JOIN attempts a ON a.job = j.id
             GROUP BY j.id HAVING COUNT(a.attempt) > MAX(j.max_attempts, 1)",
            |j, n| format!("job {j} has {n} attempts, more than it allows"),
        )?);
        v.extend(rows(
            self,
            "SELECT j.id, 0 FROM jobs j WHERE j.state = 'succeeded' AND NOT EXISTS (
                SELECT 1 FROM attempts a WHERE a.job = j.id AND a.outcome = 'succeeded')",
            |j, _| format!("job {j} succeeded without a succeeded attempt"),
        )?);
        v.extend(rows(
            self,
            "SELECT job, COUNT(*) FROM usage WHERE outcome = 'succeeded' GROUP BY job HAVING COUNT(*) > 1",
            |j, n| format!("job {j} was billed for {n} successful attempts"),
        )?);
        v.extend(self.crash_violations()?);
        v.extend(self.cap_violations()?);
        // Per tenant: the usage table's totals equal the sum over the
        // tenant's jobs' attempts (two different paths to the same money).
        {
            let mut stmt = self.conn.prepare(
                "SELECT t.tenant, t.total, COALESCE(
                    (SELECT SUM(us.cost_micros) FROM jobs j JOIN attempts a ON a.job = j.id
                     JOIN usage us ON us.job = a.job AND us.attempt = a.attempt WHERE j.tenant = t.tenant), 0)
                 FROM (SELECT tenant, SUM(cost_micros) AS total FROM usage GROUP BY tenant) t",
            )?;
            let sums = stmt.query_map(params![], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                ))
            })?;
            for s in sums {
                let (tenant, billed, by_jobs) = s?;
                if billed != by_jobs {
                    v.push(format!(
                        "tenant {tenant}: usage totals {} but its jobs' attempts total {}",
                        u(billed),
                        u(by_jobs)
                    ));
                }
            }
        }
        v.extend(self.spend_violations()?);
        // Every record: its receipt and cost.
        let mut after = None;
        loop {
            let page = self.usage_records(&UsageQuery::default(), after, 500)?;
            let Some(last) = page.last() else { break };
            after = Some((last.receipt.job, last.receipt.attempt));
            for r in &page {
                if let Err(e) = check_record(r) {
                    v.push(e);
                }
                if r.signature.is_none() && tenant_pays(r.receipt.outcome) {
                    v.push(format!(
                        "job {} attempt {} ended {} without a signed receipt",
                        r.receipt.job, r.receipt.attempt, r.receipt.outcome
                    ));
                }
            }
        }
        Ok(v)
    }

    /// The retry rule for `crashed`: never again on a node (token name) it
    /// crashed on, and nothing after a second crash.
    fn crash_violations(&self) -> Result<Vec<String>> {
        let mut v = rows(
            self,
            "SELECT later.job, later.attempt FROM attempts c
             JOIN nodes cn ON cn.id = c.node_id
             JOIN attempts later ON later.job = c.job AND later.attempt > c.attempt
             JOIN nodes ln ON ln.id = later.node_id
             WHERE c.outcome = 'crashed' AND ln.name = cn.name",
            |j, a| format!("job {j} attempt {a} ran on a node its job had crashed on"),
        )?;
        v.extend(rows(
            self,
            "SELECT c.job, later.attempt FROM attempts c JOIN attempts later
                 ON later.job = c.job AND later.attempt > c.attempt
             WHERE c.outcome = 'crashed' AND (
                 SELECT COUNT(*) FROM attempts p
                 WHERE p.job = c.job AND p.attempt <= c.attempt AND p.outcome = 'crashed') = 2",
            |j, a| format!("job {j} attempt {a} started after the job's second crash"),
        )?);
        Ok(v)
    }

    /// No usage row was charged under a cap above its job's worst case,
    /// `min(timeout, budget + max_dispatch)`: what credit limits held.
    fn cap_violations(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT us.job, us.attempt, us.charge_cap_ns, j.max_gpu_ns, j.timeout_ns,
                    j.max_memory, j.max_dispatch_ns
             FROM usage us JOIN jobs j ON j.id = us.job",
        )?;
        let found = stmt.query_map([], |r| {
            let limits = crate::jobs::limits_from(r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?);
            Ok((
                r.get::<_, i64>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, i64>(2)?,
                limits,
            ))
        })?;
        let mut v = Vec::new();
        for row in found {
            let (job, attempt, cap, limits) = row?;
            let worst = charge_cap_ns(&limits);
            if cap > i(worst) {
                v.push(format!(
                    "job {job} attempt {attempt} was charged under a cap of {cap} GPU ns, \
                     above its job's worst case of {worst}"
                ));
            }
        }
        Ok(v)
    }

    /// Whether attempt (job, attempt) is still running on a node session of
    /// this token with this key: a node reconnecting with both may take it
    /// back. The key alone is public (usage records show it), so another
    /// token presenting it adopts nothing.
    pub fn adoptable(
        &self,
        job: u64,
        attempt: u32,
        token_hash: &[u8; 32],
        key: &[u8; 32],
    ) -> Result<bool> {
        Ok(self.conn.query_row(
            "SELECT EXISTS(SELECT 1 FROM attempts a JOIN nodes n ON n.id = a.node_id
             WHERE a.job = ?1 AND a.attempt = ?2 AND a.outcome IS NULL
               AND n.public_key = ?3 AND n.token_hash = ?4)",
            params![
                crate::i(job),
                attempt,
                key.as_slice(),
                token_hash.as_slice()
            ],
            |r| r.get(0),
        )?)
    }
}

impl Ledger {
    /// Each tenant's running total of spend (`tenant_spend`, what credit
    /// checks read) against the sum of its usage rows, summed here in Rust
    /// with the same saturation; a tenant with rows has a total.
    fn spend_violations(&self) -> Result<Vec<String>> {
        let mut sums: std::collections::BTreeMap<String, (u64, Option<u64>)> = Default::default();
        let mut stmt = self.conn.prepare("SELECT tenant, cost_micros FROM usage")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (tenant, cost) = row?;
            let sum = &mut sums.entry(tenant).or_default().0;
            *sum = sum.saturating_add(u(cost)).min(i64::MAX as u64);
        }
        let mut stmt = self
            .conn
            .prepare("SELECT tenant, micros FROM tenant_spend")?;
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))? {
            let (tenant, micros) = row?;
            sums.entry(tenant).or_default().1 = Some(u(micros));
        }
        let mut v = Vec::new();
        for (tenant, (rows, total)) in sums {
            if total.unwrap_or(0) != rows {
                v.push(format!(
                    "tenant {tenant}: its running spend total is {} but its usage rows sum to {rows}",
                    total.map_or_else(|| "missing".to_owned(), |t| t.to_string())
                ));
            }
        }
        Ok(v)
    }
}
